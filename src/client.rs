//! The attach client: connects to a supervisor, puts the user's terminal in
//! raw mode and hands it to the supervisor, which reads keystrokes from it
//! and writes output to it itself (where the terminal cannot be reopened,
//! the client relays both, through the detach matcher and the output
//! filter), and leaves the terminal as it found it. Also the one-shot
//! requests (detach, stop) share its connect/hello/reply steps.

use crate::config::{Config, DetachMatcher};
use crate::defaults::{CLIENT_READ_BYTES, REPLY_TIMEOUT_MS, REQUEST_ATTEMPTS};
use crate::error::{Error, Result};
use crate::procfs;
use crate::protocol::{
    self, ExitStatus, Frame, FrameReader, Hello, ReplyStatus, Request, TerminalSettings,
};
use crate::registry::{Registry, Session};
use crate::relay::OutputFilter;
use crate::signals::Signals;
use crate::sys::{self, PollFd, WinSize, POLLERR_ANY, POLLIN};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::{Duration, Instant};

/// Puts the user's terminal back the way it was, whatever the program
/// left: any sequence in progress cancelled (CAN), the full scroll region
/// with the cursor kept where it is (DECSC, DECSTBM, DECRC), G0 and G1 back
/// to ASCII with G0 selected, attributes and reverse video off, cursor
/// shown in the default shape, cursor keys and keypad in normal mode,
/// bracketed paste, mouse and focus reports off, insert off, autowrap on,
/// the kitty keyboard stack emptied, modifyOtherKeys reset and synchronized
/// output ended. It never clears the screen, so the user's scrollback
/// survives. (Origin mode and the alternate screen need the model: the
/// supervisor sends those before `Detached` or `Exited`.)
pub const RESTORE_TERMINAL: &[u8] = b"\x18\x1b7\x1b[r\x1b8\x1b(B\x1b)B\x0f\x1b[0m\x1b[?5l\
\x1b[?25h\x1b[0 q\x1b[?1l\x1b>\x1b[?66l\x1b[?2004l\x1b[?9l\x1b[?1000l\x1b[?1001l\x1b[?1002l\
\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[?1015l\x1b[?1016l\x1b[?1004l\x1b[4l\x1b[?7h\x1b[<999u\
\x1b[>4m\x1b[?2026l";

/// Connect to a live session's socket and verify, before a byte is sent,
/// that the server is that session's supervisor: our uid, and the pid and
/// start time its record names. Says clearly when it is not there.
pub fn connect(reg: &Registry, s: &Session, short: &str) -> Result<UnixStream> {
    let not_there = || {
        Error::Msg(format!(
            "session {short} is not accepting connections (its supervisor has exited or is exiting)"
        ))
    };
    let connected = if s.record.socket.is_empty() {
        // A record of an older nono: its socket is a file in the registry.
        let (path, _dir) = reg.socket_addr(&s.record.id)?;
        UnixStream::connect(&path)
    } else {
        SocketAddr::from_abstract_name(s.record.socket.as_bytes())
            .and_then(|a| UnixStream::connect_addr(&a))
    };
    let stream = connected.map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ECONNREFUSED) => not_there(),
        _ => Error::io(format!("cannot connect to session {short}"), e),
    })?;
    let cred = sys::peer_cred(stream.as_raw_fd())
        .map_err(|e| Error::io(format!("cannot check session {short}'s socket"), e))?;
    let r = &s.record;
    let me = sys::geteuid();
    if cred.uid != me
        || cred.pid != r.supervisor_pid
        || !procfs::is_same_process(cred.pid, r.supervisor_start_time)
    {
        return Err(Error::Msg(format!(
            "the socket of session {short} is not its supervisor's (it is served by pid {}, uid {}; the record names pid {}, uid {me}); nothing was sent",
            cred.pid, cred.uid, r.supervisor_pid
        )));
    }
    Ok(stream)
}

/// Send the hello for `req`. A supervisor that refuses us replies before
/// reading and closes, so a broken pipe here is not an error yet: the
/// reply (read next) says why.
pub fn send_hello(stream: &mut UnixStream, req: Request) -> Result<()> {
    send_hello_with(stream, req, None)
}

/// [`send_hello`], with `fd` (the terminal of an `AttachTerminal`) sent
/// along with the hello's bytes.
pub fn send_hello_with(stream: &mut UnixStream, req: Request, fd: Option<RawFd>) -> Result<()> {
    let hello = Frame::Hello(Hello {
        version: protocol::PROTOCOL_VERSION,
        request: Some(req),
    })
    .to_bytes();
    let sent = match fd {
        Some(fd) => sys::send_with_fd(stream.as_raw_fd(), &hello, fd)
            .and_then(|n| stream.write_all(&hello[n..])),
        None => stream.write_all(&hello),
    };
    match sent {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Error::io("cannot talk to the supervisor", e))
        }
        _ => Ok(()),
    }
}

/// Read frames (blocking) until one arrives; None when the connection closed.
pub fn read_frame(stream: &mut UnixStream, reader: &mut FrameReader) -> Result<Option<Frame>> {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match reader.next_frame() {
            Ok(Some(f)) => return Ok(Some(f)),
            Ok(None) => {}
            Err(e) => return Err(Error::Msg(format!("bad data from the supervisor: {e}"))),
        }
        match stream.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => reader.push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(Error::Msg("the supervisor did not answer in time".into()))
            }
            Err(e) => return Err(Error::io("cannot read from the supervisor", e)),
        }
    }
}

/// Wait for the supervisor's reply to our hello; anything but ok becomes an error.
pub fn expect_ok(stream: &mut UnixStream, reader: &mut FrameReader, short: &str) -> Result<String> {
    match read_frame(stream, reader)? {
        Some(Frame::Reply(ReplyStatus::Ok, m)) => Ok(m),
        Some(Frame::Reply(ReplyStatus::Busy, _)) => Err(Error::Msg(format!(
            "session {short} already has a client attached; detach it first with 'nono detach {short}'"
        ))),
        Some(Frame::Reply(ReplyStatus::Denied, m)) => {
            Err(Error::Msg(format!("session {short} refused the connection: {m}")))
        }
        Some(Frame::Reply(ReplyStatus::VersionMismatch, m)) => Err(Error::Msg(format!(
            "session {short} was started by another version of nono ({m}; this nono speaks protocol {}); use that version's binary to reach it",
            protocol::PROTOCOL_VERSION
        ))),
        Some(Frame::Reply(ReplyStatus::Refused, m)) => {
            Err(Error::Msg(format!("session {short}: {m}")))
        }
        Some(_) => Err(Error::Msg(format!(
            "session {short} answered out of turn; is it run by a compatible nono?"
        ))),
        None => Err(Error::Msg(format!(
            "session {short} closed the connection (its supervisor is exiting)"
        ))),
    }
}

/// Connect to a live session, send the hello for `req` and wait for its
/// ok. A supervisor that does not answer within `REPLY_TIMEOUT_MS` (say,
/// stopped with SIGSTOP) is named with its pid rather than waited on.
pub fn request(
    reg: &Registry,
    s: &Session,
    short: &str,
    req: Request,
) -> Result<(UnixStream, FrameReader)> {
    request_with(reg, s, short, req, None).map(|(stream, reader, _)| (stream, reader))
}

/// [`request`], sending `fd` with the hello; also returns the ok reply's message.
fn request_with(
    reg: &Registry,
    s: &Session,
    short: &str,
    req: Request,
    fd: Option<RawFd>,
) -> Result<(UnixStream, FrameReader, String)> {
    // A supervisor that makes room under a connect flood drops the oldest
    // connection whose hello it has not read; ours never reached it, so
    // asking again is safe.
    for _ in 1..REQUEST_ATTEMPTS {
        if let Some(done) = request_once(reg, s, short, req, fd)? {
            return Ok(done);
        }
    }
    request_once(reg, s, short, req, fd)?.ok_or_else(|| {
        Error::Msg(format!(
            "session {short} closed the connection (its supervisor is exiting)"
        ))
    })
}

/// Send one request that must not be repeated and return the text of its
/// ok reply (a supervisor that does not answer within `REPLY_TIMEOUT_MS`
/// is an error).
pub fn ask(reg: &Registry, s: &Session, short: &str, req: Request) -> Result<String> {
    let mut stream = connect(reg, s, short)?;
    let _ = stream.set_read_timeout(Some(Duration::from_millis(REPLY_TIMEOUT_MS)));
    send_hello(&mut stream, req)?;
    expect_ok(&mut stream, &mut FrameReader::new(), short)
}

/// One connect, hello and reply; None when the supervisor closed the
/// connection without a word (our hello unread).
fn request_once(
    reg: &Registry,
    s: &Session,
    short: &str,
    req: Request,
    fd: Option<RawFd>,
) -> Result<Option<(UnixStream, FrameReader, String)>> {
    let mut stream = connect(reg, s, short)?;
    let limit = Duration::from_millis(REPLY_TIMEOUT_MS);
    // Backstops for a supervisor that stops mid-reply.
    let _ = stream.set_write_timeout(Some(limit));
    let _ = stream.set_read_timeout(Some(limit));
    send_hello_with(&mut stream, req, fd)?;
    // A signal caught meanwhile (an attach catches SIGWINCH and SIGTERM
    // from before its hello) interrupts the wait without ending it.
    let deadline = Instant::now() + limit;
    let ready = loop {
        let mut fds = [PollFd::new(stream.as_raw_fd(), POLLIN)];
        let left = deadline.saturating_duration_since(Instant::now());
        let n =
            sys::poll(&mut fds, left.as_millis() as i32 + 1).map_err(|e| Error::io("poll", e))?;
        if n > 0 || left.is_zero() {
            break n;
        }
    };
    if ready == 0 {
        let pid = s.record.supervisor_pid;
        return Err(Error::Msg(format!(
            "session {short}'s supervisor (pid {pid}) did not answer within {} s; it may be stopped ('kill -CONT {pid}' resumes it) or hung ('nono stop {short}' ends it)",
            limit.as_secs()
        )));
    }
    let mut reader = FrameReader::new();
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf) {
        Ok(0) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
        Ok(n) => reader.push(&buf[..n]),
        // Anything else, expect_ok's read meets again and names.
        Err(_) => {}
    }
    let msg = expect_ok(&mut stream, &mut reader, short)?;
    let _ = stream.set_write_timeout(None);
    let _ = stream.set_read_timeout(None);
    Ok(Some((stream, reader, msg)))
}

/// Attach to a live session from `term`, handing the terminal over when
/// it can be; the connection, and whether the supervisor took the terminal.
pub fn attach(
    reg: &Registry,
    s: &Session,
    short: &str,
    term: &UserTerminal,
) -> Result<(UnixStream, FrameReader, bool)> {
    let size = window_size();
    let req = term.attach_request(size);
    if let Request::AttachTerminal(..) = req {
        match request_with(reg, s, short, req, term.handoff_fd()) {
            Ok((stream, reader, msg)) => {
                return Ok((stream, reader, msg == protocol::ATTACHED_TERMINAL))
            }
            // A supervisor of an older nono does not know the request:
            // ask again the way it does.
            Err(Error::Msg(m)) if m.ends_with(protocol::NOT_A_HELLO) => {}
            Err(e) => return Err(e),
        }
    }
    let (stream, reader, _) = request_with(reg, s, short, Request::Attach(size), None)?;
    Ok((stream, reader, false))
}

/// The line a client prints when the session's program ends while it is
/// attached, as tmux prints `[exited]`; a sandboxed program that failed
/// gets a pointer to its grants, since Landlock refusals are silent.
pub fn exit_line(short: &str, st: ExitStatus, sandboxed: bool) -> String {
    let how = match st {
        ExitStatus::Code(c) => format!("code {c}"),
        ExitStatus::Signal(sig) => format!("killed by SIG{}", crate::registry::signal_name(sig)),
    };
    let hint = if sandboxed && st != ExitStatus::Code(0) {
        "; sandboxed: 'nono run --dry-run' shows grants, -r PATH adds one".to_string()
    } else {
        String::new()
    };
    format!("[session {short} exited: {how}{hint}]")
}

/// The window size of the user's terminal, or the fallback.
pub fn window_size() -> WinSize {
    sys::get_winsize(0)
        .or_else(|| sys::get_winsize(1))
        .unwrap_or(WinSize::cells(
            crate::defaults::FALLBACK_ROWS,
            crate::defaults::FALLBACK_COLS,
        ))
}

/// Raw mode for the user's terminal while attached; restored on drop.
struct RawGuard {
    /// Attributes to put back.
    saved: sys::Termios,
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        let _ = sys::set_termios(0, &self.saved);
    }
}

/// The user's terminal for one attachment: in raw mode until this is
/// dropped, and reopened for the supervisor when it can be.
pub struct UserTerminal {
    /// Raw mode (None: standard input is not a terminal).
    guard: Option<RawGuard>,
    /// Our own open of the terminal, to hand over, and what the supervisor
    /// needs to serve it (None: it stays with us, and we relay).
    handoff: Option<(OwnedFd, TerminalSettings)>,
    /// The signals an attachment handles, caught from before the hello:
    /// once the supervisor has the terminal, the program's screen can show
    /// before we are in our loop, and a SIGTERM then must still detach.
    signals: Signals,
    /// The window size the attach request gave the supervisor: a resize
    /// from then on is sent, even one made before our loop runs (the
    /// program's screen may show, and the user resize, before it does).
    asked: Cell<Option<WinSize>>,
}

impl UserTerminal {
    /// Put standard input's terminal in raw mode (before the hello: from
    /// the ok reply on, the supervisor may read and write it) and reopen it
    /// for the supervisor. Not a terminal: nothing to do.
    pub fn prepare(config: &Config) -> Result<UserTerminal> {
        let signals = Signals::new(&[libc::SIGWINCH, libc::SIGTERM, libc::SIGHUP, libc::SIGINT])?;
        if !sys::isatty(0) {
            return Ok(UserTerminal {
                guard: None,
                handoff: None,
                signals,
                asked: Cell::new(None),
            });
        }
        let saved = sys::enter_raw_mode(0).map_err(|e| Error::io("cannot set raw mode", e))?;
        let settings = TerminalSettings::new(&config.detach_sequence, config.allow_clipboard);
        Ok(UserTerminal {
            guard: Some(RawGuard { saved }),
            handoff: settings.and_then(|t| Some((reopen_terminal()?, t))),
            signals,
            asked: Cell::new(None),
        })
    }

    /// The attach request for this terminal at `size`.
    pub fn attach_request(&self, size: WinSize) -> Request {
        self.asked.set(Some(size));
        match &self.handoff {
            Some((_, settings)) => Request::AttachTerminal(size, *settings),
            None => Request::Attach(size),
        }
    }

    /// The fd to send with the attach request.
    pub fn handoff_fd(&self) -> Option<RawFd> {
        self.handoff.as_ref().map(|(fd, _)| fd.as_raw_fd())
    }
}

/// Our own open of the terminal on standard input and output, for the
/// supervisor: by its name, as a new open file description (so the
/// O_NONBLOCK the supervisor needs never reaches the shell's), checked to
/// be the same device as both. None where it cannot be reopened (no name,
/// no permission as after su, or stdin and stdout are different things).
fn reopen_terminal() -> Option<OwnedFd> {
    if !sys::isatty(1) {
        return None;
    }
    let path = std::fs::read_link("/proc/self/fd/0").ok()?;
    if !path.starts_with("/dev/") {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(&path)
        .ok()?;
    let fd = OwnedFd::from(file);
    let new = sys::fstat(fd.as_raw_fd()).ok()?;
    let same = |other: RawFd| {
        sys::fstat(other).is_ok_and(|st| st.kind() == libc::S_IFCHR && st.rdev == new.rdev)
    };
    (new.kind() == libc::S_IFCHR && same(0) && same(1)).then_some(fd)
}

/// How an attachment ended.
enum End {
    /// The program ended.
    Exited(ExitStatus),
    /// We were detached.
    Detached,
    /// The supervisor went away without a word.
    Lost,
    /// We got a signal.
    Signal(i32),
}

/// Stay attached to a session until it ends or we detach; returns the exit
/// status for the nono process. The hello (from `term`) must have been
/// answered ok already; `handed`: the supervisor took the terminal, so we
/// only pass on window sizes and detach requests, and otherwise relay
/// keystrokes and output between the terminal and the socket.
pub fn run_attached(
    mut stream: UnixStream,
    mut reader: FrameReader,
    short: &str,
    config: &Config,
    sandboxed: bool,
    term: UserTerminal,
    handed: bool,
) -> Result<i32> {
    let UserTerminal {
        guard,
        handoff,
        mut signals,
        asked,
    } = term;
    // The supervisor has its own; ours is of no further use.
    drop(handoff);
    let interactive = guard.is_some();
    let stdout_tty = sys::isatty(1);
    let mut matcher = DetachMatcher::new(config.detach_sequence.clone());
    stream
        .set_nonblocking(true)
        .map_err(|e| Error::io("socket", e))?;
    let mut stdin_open = true;
    let mut detaching = false;
    // A signal that asked us to detach: our exit status becomes 128 + it.
    let mut by_signal: Option<i32> = None;
    // Buffers live across iterations: a keystroke allocates nothing.
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    let mut term_out = Vec::new();
    let mut frames = Vec::new();
    // What reaches a terminal is filtered; a file or pipe gets it all (as
    // does the terminal at the end of a hand-off: the supervisor filtered it).
    let mut filter =
        (stdout_tty && !handed).then(|| OutputFilter::new(config.allow_clipboard, interactive));
    // The supervisor sent a query to the terminal we handed over.
    let mut queried = false;
    let mut filtered = Vec::new();
    let stream_fd = stream.as_raw_fd();
    // Compared with what the supervisor was told, not with the size now: a
    // resize since the hello has its SIGWINCH pending, and one made before
    // the signals were caught is sent here.
    let mut last_size = asked.get().unwrap_or_else(window_size);
    let now = window_size();
    if now != last_size {
        last_size = now;
        let _ = send_all(&mut stream, &Frame::Resize(now).to_bytes());
    }
    let end = 'outer: loop {
        // Frames already buffered are handled before sleeping; their
        // output goes to the terminal in one write.
        term_out.clear();
        let last = loop {
            break match reader.take_output(&mut term_out) {
                Ok(Some(Frame::Queried)) => {
                    queried = true;
                    continue;
                }
                Ok(Some(Frame::Exited(st))) => Some(End::Exited(st)),
                Ok(Some(Frame::Detached(_))) => Some(End::Detached),
                Ok(Some(_)) | Err(_) => Some(End::Lost),
                Ok(None) => None,
            };
        };
        let shown = match filter.as_mut() {
            Some(f) => {
                filtered.clear();
                f.filter(&term_out, &mut filtered);
                &filtered
            }
            None => &term_out,
        };
        if sys::write_all(1, shown).is_err() {
            break 'outer End::Lost;
        }
        if let Some(end) = last {
            break 'outer end;
        }
        // A handed-over terminal is only watched for a hang-up.
        let mut fds = [
            PollFd::new(stream_fd, POLLIN),
            PollFd::new(signals.fd(), POLLIN),
            PollFd::new(0, if handed { 0 } else { POLLIN }),
        ];
        let watched = if stdin_open && !detaching { 3 } else { 2 };
        let fds = &mut fds[..watched];
        sys::poll(fds, -1).map_err(|e| Error::io("poll", e))?;
        if fds[1].revents() != 0 {
            for sig in signals.take() {
                if sig == libc::SIGWINCH {
                    let size = window_size();
                    if size != last_size {
                        last_size = size;
                        let _ = send_all(&mut stream, &Frame::Resize(size).to_bytes());
                    }
                } else if sig == libc::SIGHUP || detaching {
                    // The terminal is gone, or a detach already timed out on us.
                    break 'outer End::Signal(sig);
                } else {
                    // Detach properly, so the supervisor sends what puts the
                    // terminal back (it alone knows the alternate screen).
                    if send_all(&mut stream, &Frame::DetachMe.to_bytes()).is_err() {
                        break 'outer End::Signal(sig);
                    }
                    detaching = true;
                    by_signal = Some(sig);
                }
            }
        }
        if fds.len() > 2 && fds[2].revents() != 0 && handed {
            break 'outer End::Lost;
        }
        if fds.len() > 2 && fds[2].revents() != 0 {
            match sys::read(0, &mut buf) {
                Ok(0) | Err(_) if interactive => break 'outer End::Lost,
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    let _ = send_all(&mut stream, &Frame::Eof.to_bytes());
                }
                Ok(n) => {
                    frames.clear();
                    if interactive {
                        out.clear();
                        let hit = matcher.feed(&buf[..n], &mut out);
                        protocol::push_input(&mut frames, &out);
                        if hit {
                            Frame::DetachMe.encode(&mut frames);
                            detaching = true;
                        }
                    } else {
                        protocol::push_input(&mut frames, &buf[..n]);
                    }
                    if send_all(&mut stream, &frames).is_err() {
                        break 'outer End::Lost;
                    }
                }
            }
        }
        if fds[0].revents() & (POLLIN | POLLERR_ANY) != 0 {
            // Straight into the frame buffer; Output payloads are then
            // copied once, into the terminal write.
            match reader.read_from(stream_fd, CLIENT_READ_BYTES) {
                Ok(0) => break 'outer End::Lost,
                Ok(_) => {}
                // EINTR is retried inside; EAGAIN is a spurious wakeup.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break 'outer End::Lost,
            }
        }
    };
    if stdout_tty {
        let _ = sys::write_all(1, RESTORE_TERMINAL);
    }
    if guard.is_some() && (queried || filter.as_mut().is_some_and(OutputFilter::take_queried)) {
        swallow_answers();
    }
    drop(guard);
    match end {
        End::Exited(st) => {
            if stdout_tty {
                let line = exit_line(short, st, sandboxed);
                // The terminal is back in cooked mode: \n is a newline.
                let _ = sys::write_all(1, format!("\n{line}\n").as_bytes());
            }
            Ok(st.shell_code())
        }
        End::Detached => {
            let _ = sys::write_all(
                1,
                format!("\r\n[detached from session {short}]\r\n").as_bytes(),
            );
            Ok(by_signal.map_or(0, |s| 128 + s))
        }
        End::Lost => Err(Error::Msg(format!(
            "lost the connection to session {short}; 'nono inspect {short}' shows its state"
        ))),
        End::Signal(sig) => Ok(128 + sig),
    }
}

/// A query the program sent may still have its answer on the way: ask the
/// terminal for its status (DSR 5, which programs seldom send themselves)
/// and read, still in raw mode, until that answer arrives (terminals answer
/// in order) or `FENCE_TIMEOUT_MS` passes, so no answer lands in the
/// operator's shell as typed input. Keys typed in that instant go with it.
fn swallow_answers() {
    if sys::write_all(1, b"\x1b[5n").is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_millis(crate::defaults::FENCE_TIMEOUT_MS);
    let mut got: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let mut fds = [PollFd::new(0, POLLIN)];
        if sys::poll(&mut fds, left.as_millis() as i32 + 1).is_err() || fds[0].revents() == 0 {
            continue;
        }
        match sys::read(0, &mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return,
        }
        // The status answer: ESC [ 0 n (ok) or ESC [ 3 n (malfunction).
        let answered = got.windows(4).any(|w| w == b"\x1b[0n" || w == b"\x1b[3n");
        // Bounded: a terminal that floods us is not waited on.
        if answered || got.len() > 64 * 1024 {
            return;
        }
    }
}

/// Write all bytes to a non-blocking socket, waiting for room as needed
/// (bounded: a supervisor that takes nothing for 10 s is gone).
fn send_all(stream: &mut UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    // Set on the first full socket only: a keystroke reads no clock.
    let mut deadline = None;
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let deadline =
                    *deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(10));
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                let mut fds = [PollFd::new(stream.as_raw_fd(), sys::POLLOUT)];
                sys::poll(&mut fds, left.as_millis() as i32 + 1)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
