//! The supervisor: one process per session, outside any sandbox. It owns the
//! pty master, the terminal model, the record and event log, the attach
//! socket and the program's lifetime. Its loop reads as "which fd woke us":
//! `pty_activity`, `listener_activity`, `client_activity`,
//! `pending_activity`, `signal_activity`, then deadlines.

mod follow;
mod queue;

use crate::defaults::{
    CLIENT_INPUT_READ_BYTES, CLIENT_QUEUE_MAX_BYTES, CLIENT_STALL_MS, EXIT_FLUSH_TIMEOUT_MS,
    HELLO_TIMEOUT_MS, MAX_PENDING_CONNECTIONS, PTY_READ_BYTES, PTY_SHORT_READ_BYTES,
    STOP_TIMEOUT_SECS,
};
use crate::error::Error;
use crate::procfs;
use crate::protocol::{self, ExitStatus, Frame, FrameReader, Hello, ReplyStatus, Request};
use crate::registry::{self, Record, Registry, RECORD_VERSION};
use crate::sandbox::{self, Policy};
use crate::signals::Signals;
use crate::sys::{self, Confinement, PollFd, WinSize, POLLERR_ANY, POLLIN, POLLOUT};
use crate::term::Terminal;
use follow::Follower;
use nanoserde::SerJson;
use queue::OutQueue;
use registry::Event;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the launcher asks the supervisor to start.
pub struct StartSpec {
    /// Program and arguments, as the user typed them.
    pub command: Vec<String>,
    /// The file to execute: `command[0]` found as the user's shell would
    /// (`program::find`), checked before the start.
    pub program: PathBuf,
    /// Session name (already validated and checked for uniqueness).
    pub name: String,
    /// Working directory for the program.
    pub workdir: PathBuf,
    /// Initial window size (a pre-attached client's hello overrides it).
    pub size: WinSize,
    /// History lines for the terminal model.
    pub scrollback: usize,
    /// The sandbox; None for `--no-sandbox`.
    pub policy: Option<Policy>,
}

/// A connection that has not sent its hello yet.
struct Pending {
    /// The socket.
    stream: UnixStream,
    /// Partial frames.
    reader: FrameReader,
    /// When it is dropped if still silent.
    deadline: Instant,
}

/// The attached client.
struct Client {
    /// The socket (non-blocking).
    stream: UnixStream,
    /// Partial frames from it.
    reader: FrameReader,
    /// Frames for it.
    out: OutQueue,
    /// Output was dropped because it fell behind; send a fresh render once drained.
    needs_redraw: bool,
    /// Detached: flush what is queued, then close.
    leaving: bool,
    /// While the backlog is over the bound: when it counts as stalled.
    stall_at: Option<Instant>,
}

impl Client {
    /// A newly attached client, its ok reply already queued.
    fn new(stream: UnixStream) -> Client {
        let mut out = OutQueue::default();
        out.push(&Frame::Reply(ReplyStatus::Ok, "attached".into()));
        Client {
            stream,
            reader: FrameReader::new(),
            out,
            needs_redraw: false,
            leaving: false,
            stall_at: None,
        }
    }

    /// Program output goes to this client now (it is neither leaving nor
    /// waiting for a redraw).
    fn takes_output(&self) -> bool {
        !self.leaving && !self.needs_redraw
    }

    /// The backlog is over the bound: hold the program's output back.
    fn backlogged(&self) -> bool {
        self.takes_output() && self.out.pending() > CLIENT_QUEUE_MAX_BYTES
    }
}

/// A `nono stop` waiting to hear how the session ended.
struct Stopper {
    /// The socket (non-blocking).
    stream: UnixStream,
    /// Frames for it.
    out: OutQueue,
}

/// The running supervisor's state.
struct Supervisor {
    /// Where records live.
    reg: Registry,
    /// Our record; we are its only writer.
    record: Record,
    /// Append-only event log.
    events: File,
    /// The attach socket.
    listener: UnixListener,
    /// Path the socket is bound at (possibly via /proc/self/fd).
    sock_path: PathBuf,
    /// Keeps `/proc/self/fd/N` in `sock_path` valid.
    _sock_dir: Option<File>,
    /// The pty master (non-blocking).
    master: OwnedFd,
    /// The program's pid, process group and session.
    child: libc::pid_t,
    /// Signals as readiness.
    signals: Signals,
    /// What the program's screen looks like.
    term: Terminal,
    /// The attached client, if any.
    client: Option<Client>,
    /// Connections awaiting their hello.
    pending: Vec<Pending>,
    /// Stop requests waiting for the end.
    stoppers: Vec<Stopper>,
    /// `nono logs` connections.
    followers: Vec<Follower>,
    /// Keystrokes not yet taken by the pty.
    to_pty: Vec<u8>,
    /// Read buffer for the pty, allocated once (zeroing 64 KiB per read showed in profiles).
    pty_buf: Vec<u8>,
    /// The master returned EOF/EIO: nothing holds the slave open any more.
    pty_closed: bool,
    /// When the stop escalates to SIGKILL.
    kill_at: Option<Instant>,
    /// How the program ended, once it has.
    exit: Option<ExitStatus>,
}

/// Keystrokes queued for the pty beyond which we stop reading the client,
/// so a paste into a program that does not read cannot grow us.
const TO_PTY_MAX: usize = 64 * 1024;

/// Run a new session's supervisor in this freshly forked process; never returns.
/// `ready` receives `ok <id>` or `err <code> <message>`; `pre` is the
/// launcher's end of an attach connection, for attached starts.
pub fn run(spec: StartSpec, ready: OwnedFd, pre: Option<UnixStream>) -> ! {
    let mut keep = vec![ready.as_raw_fd()];
    keep.extend(pre.as_ref().map(|p| p.as_raw_fd()));
    // Leave the caller's session and terminal, and every fd it had open.
    let _ = sys::setsid();
    let _ = sys::detach_stdio_and_close_others(&keep);
    sys::umask(0o077);
    let code = match Supervisor::start(spec, pre) {
        Ok(mut sup) => {
            let id = sup.record.id.clone();
            let _ = sys::write_all(ready.as_raw_fd(), format!("ok {id}\n").as_bytes());
            drop(ready);
            sup.run_loop();
            0
        }
        Err((code, msg)) => {
            let line = format!("err {code} {}\n", msg.replace('\n', " "));
            let _ = sys::write_all(ready.as_raw_fd(), line.as_bytes());
            1
        }
    };
    std::process::exit(code)
}

/// The launcher's view of the ready pipe's content.
pub enum Ready {
    /// Started; the full session id.
    Started(String),
    /// Failed with this exit status and message.
    Failed(i32, String),
}

/// Decode what the supervisor wrote to the ready pipe (None: nothing usable).
pub fn parse_ready(text: &str) -> Option<Ready> {
    let line = text.lines().next()?;
    if let Some(id) = line.strip_prefix("ok ") {
        return Some(Ready::Started(id.to_string()));
    }
    let rest = line.strip_prefix("err ")?;
    let (code, msg) = rest.split_once(' ')?;
    Some(Ready::Failed(code.parse().ok()?, msg.to_string()))
}

/// Exit status and message for a program that could not be started.
fn spawn_failure(program: &str, e: &io::Error) -> (i32, String) {
    let code = match e.raw_os_error() {
        Some(libc::ENOENT) => 127,
        _ => 126,
    };
    (code, format!("cannot run '{program}': {e}"))
}

/// Read a pre-attached client's hello, blocking briefly: it is sent by our
/// own launcher right after fork.
fn read_pre_hello(stream: &mut UnixStream) -> Option<WinSize> {
    stream
        .set_read_timeout(Some(Duration::from_millis(HELLO_TIMEOUT_MS)))
        .ok()?;
    let mut reader = FrameReader::new();
    let mut buf = [0u8; 256];
    loop {
        match reader.next_frame() {
            Ok(Some(Frame::Hello(Hello {
                request: Some(Request::Attach(size)),
                ..
            }))) => return Some(size),
            Ok(None) => {}
            _ => return None,
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => reader.push(&buf[..n]),
        }
    }
}

impl Supervisor {
    /// Everything up to a running program: record, socket, pty, exec.
    /// Errors carry the launcher's exit status and message; nothing is left behind.
    fn start(
        spec: StartSpec,
        mut pre: Option<UnixStream>,
    ) -> std::result::Result<Supervisor, (i32, String)> {
        let fail = |e: Error| (1, e.to_string());
        sys::set_child_subreaper()
            .map_err(|e| fail(Error::io("cannot become a child subreaper", e)))?;
        let signals = Signals::new(&[libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP])
            .map_err(fail)?;
        let reg = Registry::open().map_err(fail)?;
        let mut size = spec.size;
        if let Some(p) = pre.as_mut() {
            size = read_pre_hello(p).ok_or((1, "the launcher sent no attach request".into()))?;
        }
        let me = sys::getpid();
        let my_start = procfs::stat(me).map_or(0, |s| s.start_time);
        let mut record = Record {
            version: RECORD_VERSION,
            id: String::new(),
            name: spec.name.clone(),
            status: "starting".into(),
            attached: false,
            command: spec.command.clone(),
            workdir: spec.workdir.display().to_string(),
            profile: spec.policy.as_ref().map(|p| p.profile.clone()),
            network: match &spec.policy {
                Some(p) if p.network_blocked => "blocked".into(),
                _ => "allowed".into(),
            },
            sandbox: None,
            supervisor_pid: me,
            supervisor_start_time: my_start,
            child_pid: None,
            started_at: registry::now(),
            ended_at: None,
            exit_code: None,
            exit_signal: None,
            rollback_session: None,
        };
        // Reserve a fresh id: the record is linked in only if the name is new.
        let mut created = false;
        for _ in 0..8 {
            record.id = registry::new_id().map_err(fail)?;
            if reg.create_record(&record).map_err(fail)?.is_ok() {
                created = true;
                break;
            }
        }
        if !created {
            return Err((1, "could not allocate a session id".into()));
        }
        let id = record.id.clone();
        let mut tmpdir: Option<String> = None;
        let cleanup = |reg: &Registry, tmpdir: &Option<String>| {
            reg.remove_files(&id);
            if let Some(t) = tmpdir {
                sandbox::remove_tmpdir(t);
            }
        };
        let res = (|| {
            let events = reg.open_events(&id).map_err(fail)?;
            let confinement = match &spec.policy {
                None => Confinement::default(),
                Some(policy) => {
                    let mut policy = policy.clone();
                    let dir = sandbox::make_tmpdir().map_err(|e| {
                        fail(Error::io(
                            "cannot create the session's temporary directory",
                            e,
                        ))
                    })?;
                    tmpdir = Some(dir.display().to_string());
                    policy.tmpdir = Some(dir);
                    let (c, info) = sandbox::confine(&policy).map_err(|m| (1, m))?;
                    record.sandbox = Some(info);
                    c
                }
            };
            let (sock_path, sock_dir) = reg.socket_addr(&id).map_err(fail)?;
            // The socket is created 0600: the umask is the only way to set a
            // socket's mode at bind time, and we are single-threaded.
            let old = sys::umask(0o177);
            let bound = UnixListener::bind(&sock_path);
            sys::umask(old);
            let listener = bound.map_err(|e| {
                fail(Error::io(
                    format!("cannot listen on {}", reg.socket_path(&id).display()),
                    e,
                ))
            })?;
            listener
                .set_nonblocking(true)
                .map_err(|e| fail(Error::io("socket", e)))?;
            let (master, slave) =
                sys::open_pty(size).map_err(|e| fail(Error::io("cannot open a pty", e)))?;
            let child = spawn_child(&spec, slave, confinement, tmpdir.as_deref())?;
            sys::set_nonblocking(master.as_raw_fd(), true)
                .map_err(|e| fail(Error::io("pty", e)))?;
            Ok((events, listener, sock_path, sock_dir, master, child))
        })();
        let (events, listener, sock_path, sock_dir, master, child) = match res {
            Ok(v) => v,
            Err(e) => {
                cleanup(&reg, &tmpdir);
                return Err(e);
            }
        };
        let mut term = Terminal::new(size.rows, size.cols, spec.scrollback);
        term.resize(size.rows, size.cols);
        let mut sup = Supervisor {
            reg,
            record,
            events,
            listener,
            sock_path,
            _sock_dir: sock_dir,
            master,
            child,
            signals,
            term,
            client: None,
            pending: Vec::new(),
            stoppers: Vec::new(),
            followers: Vec::new(),
            to_pty: Vec::new(),
            pty_buf: vec![0u8; PTY_READ_BYTES],
            pty_closed: false,
            kill_at: None,
            exit: None,
        };
        sup.record.status = "running".into();
        sup.record.child_pid = Some(child);
        sup.event(
            "started",
            &format!("pid {child}: {}", spec.command.join(" ")),
        );
        if let Some(stream) = pre {
            let _ = stream.set_read_timeout(None);
            let _ = stream.set_nonblocking(true);
            sup.client = Some(Client::new(stream));
            sup.record.attached = true;
            sup.event("attached", "by the launching terminal");
        }
        if let Err(e) = sup.reg.write_record(&sup.record) {
            let _ = sys::killpg(child, libc::SIGKILL);
            let _ = sys::wait_nohang(child);
            // Our own listener still accepts, so remove_files would rightly
            // keep the socket: unlink it ourselves.
            let _ = std::fs::remove_file(&sup.sock_path);
            cleanup(&sup.reg, &tmpdir);
            return Err(fail(e));
        }
        Ok(sup)
    }

    /// Append an event line; failures are ignored (the log is informational).
    fn event(&mut self, event: &str, detail: &str) {
        let e = Event {
            time: registry::now(),
            event: event.into(),
            detail: detail.into(),
        };
        let mut line = e.serialize_json();
        line.push('\n');
        let _ = self.events.write_all(line.as_bytes());
    }

    /// Rewrite our record (atomic replace); a failure is logged, not fatal.
    fn save(&mut self) {
        if let Err(e) = self.reg.write_record(&self.record) {
            self.event("error", &format!("cannot update the record: {e}"));
        }
    }

    /// The poll loop; returns when the session has ended and been recorded.
    fn run_loop(&mut self) {
        #[derive(Clone, Copy)]
        enum Token {
            Signal,
            Pty,
            Listener,
            Client,
            Pending(usize),
            Follower(usize),
        }
        let mut fds: Vec<PollFd> = Vec::new();
        let mut tokens: Vec<Token> = Vec::new();
        loop {
            if let Some(st) = self.exit {
                self.finish(st);
                return;
            }
            fds.clear();
            tokens.clear();
            fds.push(PollFd::new(self.signals.fd(), POLLIN));
            tokens.push(Token::Signal);
            if !self.pty_closed {
                let backlogged = self.client.as_ref().is_some_and(Client::backlogged);
                let mut ev = if backlogged { 0 } else { POLLIN };
                if !self.to_pty.is_empty() {
                    ev |= POLLOUT;
                }
                fds.push(PollFd::new(self.master.as_raw_fd(), ev));
                tokens.push(Token::Pty);
            }
            fds.push(PollFd::new(self.listener.as_raw_fd(), POLLIN));
            tokens.push(Token::Listener);
            if let Some(c) = &self.client {
                let mut ev = 0;
                if self.to_pty.len() < TO_PTY_MAX && !c.leaving {
                    ev |= POLLIN;
                }
                if c.out.pending() > 0 || c.needs_redraw {
                    ev |= POLLOUT;
                }
                fds.push(PollFd::new(c.stream.as_raw_fd(), ev));
                tokens.push(Token::Client);
            }
            for (i, p) in self.pending.iter().enumerate() {
                fds.push(PollFd::new(p.stream.as_raw_fd(), POLLIN));
                tokens.push(Token::Pending(i));
            }
            for (i, f) in self.followers.iter().enumerate() {
                let ev = if f.out.pending() > 0 {
                    POLLIN | POLLOUT
                } else {
                    POLLIN
                };
                fds.push(PollFd::new(f.stream.as_raw_fd(), ev));
                tokens.push(Token::Follower(i));
            }
            let timeout = self.next_timeout();
            if sys::poll(&mut fds, timeout).is_err() {
                // Only EINVAL/ENOMEM are possible; avoid spinning.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let mut pending_ready = Vec::new();
            let mut followers_ready = Vec::new();
            for (fd, tok) in fds.iter().zip(tokens.iter()) {
                let rev = fd.revents();
                if rev == 0 {
                    continue;
                }
                match *tok {
                    Token::Signal => self.signal_activity(),
                    Token::Pty => self.pty_activity(rev),
                    Token::Listener => self.listener_activity(),
                    Token::Client => self.client_activity(rev),
                    Token::Pending(i) => pending_ready.push(i),
                    Token::Follower(i) => followers_ready.push((i, rev)),
                }
            }
            for (i, rev) in followers_ready.into_iter().rev() {
                self.follower_activity(i, rev);
            }
            // Highest index first so removals keep the others valid.
            for i in pending_ready.into_iter().rev() {
                self.pending_activity(i);
            }
            self.deadlines();
        }
    }

    /// Milliseconds until the nearest deadline, or -1 for none (an idle
    /// session costs no wakeups).
    fn next_timeout(&self) -> i32 {
        let nearest = self
            .pending
            .iter()
            .map(|p| p.deadline)
            .chain(self.kill_at)
            .chain(self.client.as_ref().and_then(|c| c.stall_at))
            .min();
        match nearest {
            None => -1,
            Some(t) => {
                let ms = t.saturating_duration_since(Instant::now()).as_millis();
                ms.min(i32::MAX as u128) as i32 + 1
            }
        }
    }

    /// Drop silent connections; give up on a stalled client's backlog;
    /// escalate a stop whose grace ran out.
    fn deadlines(&mut self) {
        let now = Instant::now();
        if let Some(c) = self.client.as_mut() {
            if c.stall_at.is_some_and(|t| t <= now) {
                c.stall_at = None;
                if c.backlogged() {
                    // Slow or stopped: stop holding the program back; redraw later.
                    c.out.drop_unsent();
                    c.needs_redraw = true;
                }
            }
        }
        self.pending.retain(|p| p.deadline > now);
        if self.kill_at.is_some_and(|t| t <= now) {
            self.kill_at = None;
            let _ = sys::killpg(self.child, libc::SIGKILL);
            self.event(
                "stop",
                "grace period over: sent SIGKILL to the process group",
            );
        }
    }

    /// Signals arrived: reap children, or begin a stop.
    fn signal_activity(&mut self) {
        for sig in self.signals.take() {
            match sig {
                libc::SIGCHLD => self.reap(),
                libc::SIGTERM | libc::SIGINT => {
                    let detail = format!("SIG{} to the supervisor", registry::signal_name(sig));
                    self.event("stop", &detail);
                    self.begin_stop(false, Duration::from_secs(STOP_TIMEOUT_SECS));
                }
                _ => {}
            }
        }
    }

    /// Collect every child state change; orphans adopted as subreaper are reaped silently.
    fn reap(&mut self) {
        while let Ok(Some((pid, st))) = sys::wait_nohang(-1) {
            if pid != self.child {
                continue;
            }
            match st {
                sys::WaitStatus::Exited(c) => self.exit = Some(ExitStatus::Code(c)),
                sys::WaitStatus::Signaled(s) => self.exit = Some(ExitStatus::Signal(s)),
                sys::WaitStatus::Stopped(s) => {
                    self.record.status = "paused".into();
                    self.save();
                    self.event(
                        "paused",
                        &format!("stopped by SIG{}", registry::signal_name(s)),
                    );
                }
                sys::WaitStatus::Continued => {
                    self.record.status = "running".into();
                    self.save();
                    self.event("resumed", "");
                }
            }
        }
    }

    /// SIGTERM (and SIGCONT) to the program's group now, SIGKILL after `grace`;
    /// `force` kills at once. Repeated requests keep the earliest deadline.
    fn begin_stop(&mut self, force: bool, grace: Duration) {
        if force {
            let _ = sys::killpg(self.child, libc::SIGKILL);
            self.kill_at = None;
            return;
        }
        let _ = sys::killpg(self.child, libc::SIGTERM);
        let _ = sys::killpg(self.child, libc::SIGCONT);
        let at = Instant::now() + grace;
        self.kill_at = Some(self.kill_at.map_or(at, |k| k.min(at)));
    }

    /// Program output: into the model, then to the attached client.
    fn pty_activity(&mut self, rev: i16) {
        if rev & POLLOUT != 0 {
            self.write_to_pty();
        }
        if rev & (POLLIN | POLLERR_ANY) != 0 {
            self.read_pty(false);
        }
    }

    /// Read the pty until it would block (`drain`: until it is empty or closed).
    fn read_pty(&mut self, drain: bool) {
        let mut buf = std::mem::take(&mut self.pty_buf);
        self.read_pty_into(&mut buf, drain);
        self.pty_buf = buf;
        // One write per wakeup rather than per read: fewer syscalls and
        // client wakeups, and an echo still goes out in this same wakeup.
        if let Some(c) = self.client.as_mut() {
            // A failure shows up as a hang-up on the next poll.
            let _ = c.out.flush(c.stream.as_raw_fd());
            if c.backlogged() && c.stall_at.is_none() {
                c.stall_at = Some(Instant::now() + Duration::from_millis(CLIENT_STALL_MS));
            }
        }
    }

    /// `read_pty` with the buffer lent out of `self`.
    fn read_pty_into(&mut self, buf: &mut [u8], drain: bool) {
        // Until the pty is empty (a pty read returns at most the 4 KiB
        // line-discipline buffer), bounded per wakeup so sockets get their
        // turn under a flood.
        let mut budget = if drain {
            usize::MAX
        } else {
            crate::defaults::PTY_WAKEUP_BYTES
        };
        let fd = self.master.as_raw_fd();
        while budget > 0 {
            // With a client taking output, the bytes are read straight
            // into its queue as a frame (no copy); otherwise into `buf`.
            let read = match self.client.as_mut().filter(|c| c.takes_output()) {
                Some(c) => c.out.read_output(fd, PTY_READ_BYTES).map(|n| (n, true)),
                None => sys::read(fd, buf).map(|n| (n, false)),
            };
            match read {
                Ok((0, _)) => {
                    self.pty_closed = true;
                    return;
                }
                Ok((n, queued)) => {
                    budget = budget.saturating_sub(n);
                    let Supervisor {
                        term,
                        followers,
                        client,
                        ..
                    } = self;
                    let bytes = match client {
                        Some(c) if queued => c.out.tail(n),
                        _ => buf.get(..n).unwrap_or(&[]),
                    };
                    model_output(term, followers, bytes);
                    // A short read found the pty drained: the next read
                    // would almost surely be EAGAIN (a syscall per
                    // keystroke), and if more came, poll says so.
                    if !drain
                        && (n < PTY_SHORT_READ_BYTES
                            || self.client.as_ref().is_some_and(Client::backlogged))
                    {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // EIO: every slave fd is closed.
                Err(_) => {
                    self.pty_closed = true;
                    return;
                }
            }
        }
    }

    /// Send queued keystrokes to the program.
    fn write_to_pty(&mut self) {
        while !self.to_pty.is_empty() {
            match sys::write(self.master.as_raw_fd(), &self.to_pty) {
                Ok(n) if n > 0 => {
                    self.to_pty.drain(..n);
                }
                _ => break,
            }
        }
    }

    /// New connections: check the peer before reading a byte.
    fn listener_activity(&mut self) {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return,
            };
            if let Err(reason) = self.check_peer(&stream) {
                self.event("denied", &reason);
                let _ = stream.set_nonblocking(true);
                let reply = Frame::Reply(ReplyStatus::Denied, reason).to_bytes();
                let _ = sys::write(stream.as_raw_fd(), &reply);
                continue;
            }
            if self.pending.len() >= MAX_PENDING_CONNECTIONS
                || stream.set_nonblocking(true).is_err()
            {
                continue;
            }
            self.pending.push(Pending {
                stream,
                reader: FrameReader::new(),
                deadline: Instant::now() + Duration::from_millis(HELLO_TIMEOUT_MS),
            });
        }
    }

    /// Same uid only, and never from inside the session.
    fn check_peer(&self, stream: &UnixStream) -> std::result::Result<(), String> {
        let cred = sys::peer_cred(stream.as_raw_fd())
            .map_err(|e| format!("cannot read peer credentials: {e}"))?;
        if cred.uid != sys::geteuid() {
            return Err(format!(
                "uid {} (pid {}) may not use a session of uid {}",
                cred.uid,
                cred.pid,
                sys::geteuid()
            ));
        }
        // Fail closed: a peer whose ancestry cannot be read (it connected
        // and exited, handing the socket to another process) is refused.
        match procfs::is_self_or_descendant(cred.pid, sys::getpid()) {
            Some(false) => Ok(()),
            Some(true) => Err(format!(
                "pid {} runs inside this session; a session cannot control itself",
                cred.pid
            )),
            None => Err(format!(
                "pid {} exited before its origin could be checked",
                cred.pid
            )),
        }
    }

    /// A not-yet-hello'd connection sent bytes (or hung up).
    fn pending_activity(&mut self, i: usize) {
        let mut buf = [0u8; 512];
        let p = &mut self.pending[i];
        match sys::read(p.stream.as_raw_fd(), &mut buf) {
            Ok(0) => {
                self.pending.swap_remove(i);
                return;
            }
            Ok(n) => p.reader.push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => {
                self.pending.swap_remove(i);
                return;
            }
        }
        match p.reader.next_frame() {
            Ok(None) => {}
            Ok(Some(Frame::Hello(h))) => {
                let p = self.pending.swap_remove(i);
                self.hello(p.stream, h);
            }
            Ok(Some(_)) | Err(_) => {
                let p = self.pending.swap_remove(i);
                let reply = Frame::Reply(ReplyStatus::Refused, "expected a hello".into());
                let _ = sys::write(p.stream.as_raw_fd(), &reply.to_bytes());
            }
        }
    }

    /// Answer a hello.
    fn hello(&mut self, stream: UnixStream, h: Hello) {
        let reply = |status, msg: String| {
            let _ = sys::write(stream.as_raw_fd(), &Frame::Reply(status, msg).to_bytes());
        };
        let Some(req) = h
            .request
            .filter(|_| h.version == protocol::PROTOCOL_VERSION)
        else {
            reply(
                ReplyStatus::VersionMismatch,
                format!(
                    "this session's supervisor speaks protocol {}",
                    protocol::PROTOCOL_VERSION
                ),
            );
            return;
        };
        match req {
            Request::Attach(size) => {
                if self.client.as_ref().is_some_and(|c| !c.leaving) {
                    reply(
                        ReplyStatus::Busy,
                        "another client is attached; detach it first with 'nono detach'".into(),
                    );
                    return;
                }
                self.attach(stream, size);
            }
            Request::Detach => match self.client.as_ref() {
                Some(c) if !c.leaving => {
                    self.detach_client("by 'nono detach'");
                    reply(ReplyStatus::Ok, "detached".into());
                }
                _ => reply(ReplyStatus::Refused, "no client is attached".into()),
            },
            Request::Logs { follow, lines } => {
                if self.followers.len() >= MAX_PENDING_CONNECTIONS {
                    reply(ReplyStatus::Refused, "too many logs readers".into());
                    return;
                }
                let mut f = Follower::new(stream, &self.term, follow, lines);
                let sent = f.out.flush(f.stream.as_raw_fd()).is_ok();
                // A snapshot that went out whole is done; closing ends the reader's stream.
                if sent && (follow || f.out.pending() > 0) {
                    self.followers.push(f);
                }
            }
            Request::Stop { force, timeout_ms } => {
                if self.stoppers.len() >= MAX_PENDING_CONNECTIONS {
                    reply(ReplyStatus::Refused, "too many stop requests".into());
                    return;
                }
                let how = if force {
                    "force".to_string()
                } else {
                    format!("timeout {timeout_ms} ms")
                };
                self.event("stop", &format!("requested ({how})"));
                self.begin_stop(force, Duration::from_millis(timeout_ms as u64));
                let mut out = OutQueue::default();
                out.push(&Frame::Reply(ReplyStatus::Ok, "stopping".into()));
                let _ = out.flush(stream.as_raw_fd());
                self.stoppers.push(Stopper { stream, out });
            }
        }
    }

    /// Make `stream` the attached client at `size`, and draw the screen for it.
    fn attach(&mut self, stream: UnixStream, size: WinSize) {
        self.client = None; // a leaving client is let go at once
        self.apply_size(size, true);
        let mut c = Client::new(stream);
        c.out.push_output(&self.term.render());
        let _ = c.out.flush(c.stream.as_raw_fd());
        self.client = Some(c);
        self.record.attached = true;
        self.save();
        self.event("attached", &format!("{}x{}", size.cols, size.rows));
    }

    /// Resize the pty and the model. `force_winch`: signal the program even
    /// when the size did not change, so full-screen programs repaint.
    fn apply_size(&mut self, size: WinSize, force_winch: bool) {
        if size.rows == 0 || size.cols == 0 {
            return;
        }
        let fd = self.master.as_raw_fd();
        let unchanged = sys::get_winsize(fd) == Some(size);
        let _ = sys::set_winsize(fd, size);
        self.term.resize(size.rows, size.cols);
        if unchanged && force_winch {
            if let Some(pg) = sys::foreground_pgrp(fd) {
                let _ = sys::killpg(pg, libc::SIGWINCH);
            }
        }
    }

    /// Let the attached client go: it gets `Detached` after what is queued.
    fn detach_client(&mut self, why: &str) {
        let Some(c) = self.client.as_mut() else {
            return;
        };
        c.out.drop_unsent();
        c.out.push(&Frame::Output(leave_screen(&self.term)));
        c.out.push(&Frame::Detached(why.into()));
        c.leaving = true;
        let _ = c.out.flush(c.stream.as_raw_fd());
        self.record.attached = false;
        self.save();
        self.event("detached", why);
    }

    /// The client vanished without detaching.
    fn client_gone(&mut self) {
        let was_leaving = self.client.take().is_some_and(|c| c.leaving);
        if !was_leaving {
            self.record.attached = false;
            self.save();
            self.event("detached", "client disconnected");
        }
    }

    /// A logs connection is writable, or its reader hung up.
    fn follower_activity(&mut self, i: usize, rev: i16) {
        let f = &mut self.followers[i];
        let mut gone = false;
        if rev & (POLLIN | POLLERR_ANY) != 0 {
            // Readers send nothing after the hello; any read result but
            // "would block" means they are gone or misbehaving.
            let mut buf = [0u8; 64];
            gone = !matches!(sys::read(f.stream.as_raw_fd(), &mut buf),
                Err(ref e) if e.kind() == io::ErrorKind::WouldBlock);
        }
        if !gone && f.out.flush(f.stream.as_raw_fd()).is_err() {
            gone = true;
        }
        if gone || (!f.follow && f.out.pending() == 0) {
            self.followers.swap_remove(i);
        }
    }

    /// The attached client is readable or writable.
    fn client_activity(&mut self, rev: i16) {
        if rev & POLLOUT != 0 {
            self.flush_client();
        }
        if rev & (POLLIN | POLLERR_ANY) != 0 {
            self.read_client();
        }
    }

    /// Write the client's queue; redraw once a dropped backlog has drained.
    fn flush_client(&mut self) {
        let Some(c) = self.client.as_mut() else {
            return;
        };
        if c.out.flush(c.stream.as_raw_fd()).is_err() {
            self.client_gone();
            return;
        }
        if !c.backlogged() {
            c.stall_at = None;
        }
        if c.out.pending() == 0 {
            if c.leaving {
                self.client = None;
            } else if c.needs_redraw {
                c.needs_redraw = false;
                c.out.push_output(&self.term.render());
            }
        }
    }

    /// Frames from the attached client.
    fn read_client(&mut self) {
        let Some(c) = self.client.as_mut() else {
            return;
        };
        // Straight into the frame buffer: a zeroed stack buffer per read
        // was 16 KiB of memset per keystroke (90% of the supervisor's work).
        match c
            .reader
            .read_from(c.stream.as_raw_fd(), CLIENT_INPUT_READ_BYTES)
        {
            Ok(0) => return self.client_gone(),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => return self.client_gone(),
        }
        loop {
            let Some(c) = self.client.as_mut() else {
                return;
            };
            match c.reader.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Input(bytes))) => self.to_pty.extend_from_slice(&bytes),
                Ok(Some(Frame::Resize(size))) => self.apply_size(size, false),
                Ok(Some(Frame::Eof)) => {
                    if let Some(eof) = sys::canonical_eof_char(self.master.as_raw_fd()) {
                        self.to_pty.push(eof);
                    }
                }
                Ok(Some(Frame::DetachMe)) => {
                    self.detach_client("by the detach keys");
                    break;
                }
                Ok(Some(_)) | Err(_) => {
                    // A protocol violation ends this connection, never the session.
                    self.event("error", "malformed frame from the attached client");
                    self.client_gone();
                    return;
                }
            }
        }
        self.write_to_pty();
    }

    /// The program ended: drain its output, record the end, tell the
    /// clients, remove the socket.
    fn finish(&mut self, st: ExitStatus) {
        if !self.pty_closed {
            self.read_pty(true);
        }
        // Nothing of the session outlives it: leftovers in its process group go too.
        let _ = sys::killpg(self.child, libc::SIGKILL);
        while let Ok(Some(_)) = sys::wait_nohang(-1) {}
        if let Some(t) = self.record.sandbox.as_ref().and_then(|s| s.tmpdir.as_ref()) {
            sandbox::remove_tmpdir(t);
        }
        // The history stays readable with `nono logs` until `prune`; it is
        // saved before the record says exited, so readers never miss it.
        let mut text = self.term.text_lines().join("\n");
        text.push('\n');
        if let Err(e) = self.reg.write_log(&self.record.id, text.as_bytes()) {
            self.event("error", &format!("cannot save the history: {e}"));
        }
        self.record.status = "exited".into();
        self.record.ended_at = Some(registry::now());
        self.record.attached = false;
        match st {
            ExitStatus::Code(c) => self.record.exit_code = Some(c),
            ExitStatus::Signal(s) => self.record.exit_signal = Some(s),
        }
        self.save();
        let detail = match st {
            ExitStatus::Code(c) => format!("exit code {c}"),
            ExitStatus::Signal(s) => format!("killed by SIG{}", registry::signal_name(s)),
        };
        self.event("exited", &detail);
        let _ = std::fs::remove_file(&self.sock_path);
        let deadline = Instant::now() + Duration::from_millis(EXIT_FLUSH_TIMEOUT_MS);
        let mut outs: Vec<(RawFd, &mut OutQueue)> = Vec::new();
        if let Some(c) = self.client.as_mut() {
            if !c.leaving {
                if c.needs_redraw {
                    c.out.push_output(&self.term.render());
                }
                c.out.push(&Frame::Output(leave_screen(&self.term)));
                c.out.push(&Frame::Exited(st));
            }
            outs.push((c.stream.as_raw_fd(), &mut c.out));
        }
        for s in self.stoppers.iter_mut() {
            s.out.push(&Frame::Exited(st));
            outs.push((s.stream.as_raw_fd(), &mut s.out));
        }
        for f in self.followers.iter_mut() {
            if f.follow {
                f.finish(&self.term);
                f.out.push(&Frame::Exited(st));
            }
            outs.push((f.stream.as_raw_fd(), &mut f.out));
        }
        flush_until(&mut outs, deadline);
    }
}

/// Program output (already queued for the client, if one takes it) into
/// the model, then to `nono logs --follow` readers.
fn model_output(term: &mut Terminal, followers: &mut [Follower], bytes: &[u8]) {
    term.feed(bytes);
    for f in followers.iter_mut().filter(|f| f.follow) {
        // A follower over the bound is paused (not buffered without
        // bound); lines that leave the history meanwhile are skipped.
        if f.out.pending() <= CLIENT_QUEUE_MAX_BYTES {
            f.advance(term);
        }
    }
}

/// What the client's terminal needs, beyond the client's own fixed reset,
/// to be back on the user's screen: leaving the alternate screen when the
/// program is in it (only the model knows; leaving it when not in it would
/// move the user's cursor).
fn leave_screen(t: &Terminal) -> Vec<u8> {
    if t.alternate_screen_active() {
        b"\x1b[?1049l".to_vec()
    } else {
        Vec::new()
    }
}

/// Write queues until all are empty, their peers are gone, or `deadline`.
fn flush_until(outs: &mut [(RawFd, &mut OutQueue)], deadline: Instant) {
    loop {
        let mut fds: Vec<PollFd> = Vec::new();
        for (fd, q) in outs.iter_mut() {
            if q.pending() > 0 && q.flush(*fd).is_ok() && q.pending() > 0 {
                fds.push(PollFd::new(*fd, POLLOUT));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if fds.is_empty() || left.is_zero() {
            return;
        }
        let _ = sys::poll(&mut fds, left.as_millis().min(1000) as i32 + 1);
    }
}

/// Start the program on the pty slave as a session leader with it as the
/// controlling terminal; exec failures come back with the real errno.
fn spawn_child(
    spec: &StartSpec,
    slave: OwnedFd,
    confine: Confinement,
    tmpdir: Option<&str>,
) -> std::result::Result<libc::pid_t, (i32, String)> {
    let io_fail = |e: io::Error| (1, format!("cannot set up the pty: {e}"));
    let program = spec
        .command
        .first()
        .ok_or((2, "no command given".to_string()))?;
    let mut cmd = Command::new(&spec.program);
    // argv[0] as typed, as a shell passes it.
    std::os::unix::process::CommandExt::arg0(&mut cmd, program);
    cmd.args(&spec.command[1..])
        .current_dir(&spec.workdir)
        .stdin(Stdio::from(slave.try_clone().map_err(io_fail)?))
        .stdout(Stdio::from(slave.try_clone().map_err(io_fail)?))
        .stderr(Stdio::from(slave));
    if std::env::var_os("TERM").is_none_or(|t| t.is_empty()) {
        cmd.env("TERM", "xterm-256color");
    }
    if let Some(t) = tmpdir {
        cmd.env("TMPDIR", t);
    }
    let sandboxed = !confine.is_empty();
    sys::make_session_leader_on_exec(&mut cmd, sys::getpid(), confine);
    match cmd.spawn() {
        Ok(child) => Ok(child.id() as libc::pid_t),
        Err(e) => {
            let (code, mut msg) = spawn_failure(program, &e);
            if sandboxed && e.raw_os_error() == Some(libc::EACCES) {
                msg.push_str(
                    " (the sandbox may not grant it: check 'nono run --dry-run', add -r PATH, or use --no-sandbox)",
                );
            }
            Err((code, msg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_round_trip() {
        assert!(
            matches!(parse_ready("ok 0011223344556677\n"), Some(Ready::Started(id)) if id == "0011223344556677")
        );
        assert!(
            matches!(parse_ready("err 127 cannot run 'x': nope\n"), Some(Ready::Failed(127, m)) if m == "cannot run 'x': nope")
        );
        assert!(parse_ready("").is_none());
        assert!(parse_ready("err x y").is_none());
    }
}
