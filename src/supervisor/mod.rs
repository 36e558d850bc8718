//! The supervisor: one process per session, outside any sandbox. It owns the
//! pty master, the terminal model, the record and event log, the attach
//! socket and the program's lifetime. Its loop reads as "which fd woke us":
//! `pty_activity`, `listener_activity`, `client_activity`,
//! `pending_activity`, `signal_activity`, `notify_activity`, then deadlines.

mod approvals;
pub mod child;
mod follow;
pub use follow::tail as log_tail;
mod queue;
mod terminal;

pub use approvals::AskSpec;

use crate::defaults::{
    CLIENT_INPUT_READ_BYTES, CLIENT_QUEUE_MAX_BYTES, CLIENT_STALL_MS, DENIED_EVENTS_PER_MINUTE,
    EVENT_LOG_MAX_BYTES, EXIT_FLUSH_TIMEOUT_MS, HELLO_TIMEOUT_MS, MAX_ACCEPTS_PER_WAKEUP, MAX_COLS,
    MAX_PENDING_CONNECTIONS, MAX_ROWS, PTY_READ_BYTES, PTY_SHORT_READ_BYTES, STOP_TIMEOUT_SECS,
};
use crate::error::Error;
use crate::procfs;
use crate::protocol::{
    self, ExitStatus, Frame, FrameReader, Hello, ReplyStatus, Request, TerminalSettings,
};
use crate::registry::{self, Record, Registry, RECORD_VERSION};
use crate::sandbox::{self, Policy};
use crate::signals::Signals;
use crate::sys::{self, PollFd, WinSize, POLLERR_ANY, POLLIN, POLLOUT};
use crate::term::Terminal;
use follow::Follower;
use nanoserde::SerJson;
use queue::OutQueue;
use registry::Event;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use terminal::Tty;

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
    /// With `--rollback`: the session id the baseline was captured under
    /// (the record takes it), and the baseline's summary for the event log.
    pub rollback: Option<(String, String)>,
    /// `--ask`: opens outside the grant wait for approval (needs the sandbox).
    pub ask: Option<AskSpec>,
}

/// A connection that has not sent its hello yet.
struct Pending {
    /// The socket.
    stream: UnixStream,
    /// Partial frames.
    reader: FrameReader,
    /// An fd sent with the hello (an `AttachTerminal`'s terminal); at most one.
    fd: Option<OwnedFd>,
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
    /// An approval overlay covers the bottom row: program output reaches
    /// this client as redraws from the model, and keys answer the overlay.
    overlay: bool,
    /// The client's terminal, when it handed it over: keystrokes are read
    /// and output written here, and `out` carries only control frames.
    tty: Option<Tty>,
}

impl Client {
    /// A newly attached client, its ok reply already queued (saying
    /// whether its terminal was taken).
    fn new(stream: UnixStream, tty: Option<Tty>) -> Client {
        let mut out = OutQueue::default();
        let msg = match tty {
            Some(_) => protocol::ATTACHED_TERMINAL,
            None => protocol::ATTACHED,
        };
        out.push(&Frame::Reply(ReplyStatus::Ok, msg.into()));
        Client {
            stream,
            reader: FrameReader::new(),
            out,
            needs_redraw: false,
            leaving: false,
            stall_at: None,
            overlay: false,
            tty,
        }
    }

    /// Program output goes to this client now (it is neither leaving nor
    /// waiting for a redraw).
    fn takes_output(&self) -> bool {
        !self.leaving && !self.needs_redraw && !self.overlay
    }

    /// The backlog is over the bound: hold the program's output back.
    fn backlogged(&self) -> bool {
        self.takes_output() && self.pending() > CLIENT_QUEUE_MAX_BYTES
    }

    /// Queue bytes for the client's terminal: on the terminal itself (filtered), or as frames.
    fn push_output(&mut self, bytes: &[u8]) {
        match self.tty.as_mut() {
            Some(t) => t.push_output(bytes),
            None => self.out.push_output(bytes),
        }
    }

    /// Output for the client's terminal not yet written.
    fn pending(&self) -> usize {
        self.tty.as_ref().map_or(self.out.pending(), Tty::pending)
    }

    /// Drop the terminal's unwritten output (a stalled client, a detach).
    fn drop_unsent(&mut self) {
        match self.tty.as_mut() {
            Some(t) => t.drop_unsent(),
            None => self.out.drop_unsent(),
        }
    }

    /// Write what the terminal and the socket take; Err: the client is gone.
    fn flush(&mut self) -> io::Result<()> {
        if let Some(t) = self.tty.as_mut() {
            t.flush()?;
        }
        self.out.flush(self.stream.as_raw_fd())
    }

    /// The attachment ends: a handed-over terminal goes back to the client,
    /// with what was not written to it yet (as `Output`), and `Queried`
    /// when a query's answer may still be on its way. Frames pushed after
    /// this reach the terminal after everything we wrote to it.
    fn hand_back(&mut self) {
        if let Some(t) = self.tty.take() {
            let (rest, queried) = t.into_rest();
            self.out.push_output(&rest);
            if queried {
                self.out.push(&Frame::Queried);
            }
        }
    }
}

/// A `nono stop` waiting to hear how the session ended.
struct Stopper {
    /// The socket (non-blocking).
    stream: UnixStream,
    /// Frames for it.
    out: OutQueue,
}

/// Refusals logged in the current minute; beyond the limit they are
/// counted and summed up in one event, so a connect loop cannot grow the log.
struct Denials {
    /// When the current one-minute window began.
    since: Instant,
    /// Refusals logged one by one in this window.
    logged: u32,
    /// Refusals counted but not logged in this window.
    suppressed: u32,
    /// The last suppressed refusal's reason.
    last: String,
}

/// The running supervisor's state.
struct Supervisor {
    /// Where records live.
    reg: Registry,
    /// Our record; we are its only writer.
    record: Record,
    /// Append-only event log.
    events: File,
    /// Bytes written to the event log so far.
    events_bytes: u64,
    /// The event log reached its bound: only the end is still recorded.
    events_full: bool,
    /// Peer refusals, rate-limited.
    denials: Denials,
    /// The attach socket (abstract); None once the session is ending.
    listener: Option<UnixListener>,
    /// The pty master (non-blocking).
    master: OwnedFd,
    /// The program's pid, process group and session (outside any namespace).
    child: libc::pid_t,
    /// The session's init, when it has namespaces: our child, whose death
    /// ends every process of the session.
    init: Option<libc::pid_t>,
    /// The init's reports of the program's state changes.
    reports: Option<UnixStream>,
    /// Partial report lines.
    report_buf: Vec<u8>,
    /// How the program ended, as the init reported it.
    program_end: Option<ExitStatus>,

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
    /// `--ask`: the seccomp listener and the waiting requests.
    approvals: Option<approvals::Approvals>,
    /// Device and inode of the session's own pty (its slave side), which
    /// no client may hand over as its terminal.
    own_pty: Option<(u64, u64)>,
    /// What went wrong recording the end (a full disk), for `nono stop`.
    end_errors: Vec<String>,
}

/// Keystrokes queued for the pty beyond which we stop reading the client,
/// so a paste into a program that does not read cannot grow us.
const TO_PTY_MAX: usize = 64 * 1024;

/// Run a new session's supervisor in this freshly forked process; never returns.
/// `ready` receives `ok <id>` or `err <code> <message>`; `pre` is the
/// launcher's end of an attach connection, for attached starts.
pub fn run(spec: StartSpec, ready: OwnedFd, pre: Option<UnixStream>) -> ! {
    // First of all: from now on every process below us counts as inside a
    // session, for every supervisor's peer check.
    let _ = sys::set_process_name(procfs::SUPERVISOR_COMM);
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

/// A pre-attached client's hello: its window size, and its terminal and
/// settings when it hands the terminal over.
type PreHello = (WinSize, Option<(OwnedFd, TerminalSettings)>);

/// Read a pre-attached client's hello, blocking briefly: it is sent by our
/// own launcher right after fork.
fn read_pre_hello(stream: &mut UnixStream) -> Option<PreHello> {
    stream
        .set_read_timeout(Some(Duration::from_millis(HELLO_TIMEOUT_MS)))
        .ok()?;
    let mut reader = FrameReader::new();
    let mut bytes = Vec::new();
    let mut fds = Vec::new();
    loop {
        match reader.next_frame() {
            Ok(Some(Frame::Hello(Hello {
                request: Some(Request::Attach(size)),
                ..
            }))) => return Some((size, None)),
            Ok(Some(Frame::Hello(Hello {
                request: Some(Request::AttachTerminal(size, settings)),
                ..
            }))) => return Some((size, fds.pop().map(|fd| (fd, settings)))),
            Ok(None) => {}
            _ => return None,
        }
        bytes.clear();
        match sys::recv_append_with_fds(stream.as_raw_fd(), &mut bytes, 256, &mut fds) {
            Ok((0, _)) | Err(_) => return None,
            Ok(_) => reader.push(&bytes),
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
        let mut pre_tty = None;
        if let Some(p) = pre.as_mut() {
            (size, pre_tty) =
                read_pre_hello(p).ok_or((1, "the launcher sent no attach request".into()))?;
        }
        let size = clamp_size(size);
        let me = sys::getpid();
        let my_start = procfs::stat(me).map_or(0, |s| s.start_time);
        let started_ns = registry::now_ns();
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
            socket: String::new(),
            peer_guard: "supervisor".into(),
            supervisor_pid: me,
            supervisor_start_time: my_start,
            child_pid: None,
            started_at: started_ns / 1_000_000_000,
            started_at_ns: Some(started_ns),
            ended_at: None,
            exit_code: None,
            exit_signal: None,
            rollback_session: spec.rollback.as_ref().map(|(id, _)| id.clone()),
            ask: spec.ask.is_some(),
            waiting: 0,
            ask_wakeup: None,
            containment: None,
        };
        // Claim the name and a fresh id under the registry's lock, so two
        // starts can never both take one name; the record is linked in
        // only if its id is new.
        let lock = reg.lock().map_err(fail)?;
        let (all, _) = reg.list().map_err(fail)?;
        if let Some(why) = registry::name_conflict(&all, &spec.name) {
            return Err((1, why));
        }
        let mut created = false;
        for attempt in 0..8 {
            record.id = match (&spec.rollback, attempt) {
                // The captures are filed under this id already.
                (Some((id, _)), 0) => id.clone(),
                (Some(_), _) => break,
                _ => registry::new_id().map_err(fail)?,
            };
            record.socket = registry::new_socket_name(&record.id).map_err(fail)?;
            if reg.create_record(&record).map_err(fail)?.is_ok() {
                created = true;
                break;
            }
        }
        drop(lock);
        if !created {
            return Err((1, "could not allocate a session id".into()));
        }
        let id = record.id.clone();
        let mut tmpdir: Option<String> = None;
        let cleanup = |reg: &Registry, tmpdir: &Option<String>| {
            let _ = reg.remove_files(&id);
            if let Some(t) = tmpdir {
                sandbox::remove_tmpdir(t);
            }
        };
        let res = (|| {
            let events = reg.open_events(&id).map_err(fail)?;
            // --ask: the program's process sends its listener over this pair.
            let (notify_pair, notify) = match spec.ask {
                Some(_) => {
                    approvals::check_support().map_err(|m| (1, m))?;
                    let (ours, theirs) = UnixStream::pair()
                        .map_err(|e| fail(Error::io("cannot make a socket pair", e)))?;
                    let setup = sys::NotifySetup {
                        filter: sandbox::notify::filter(),
                        sock: theirs.into(),
                    };
                    (Some(ours), Some(setup))
                }
                None => (None, None),
            };
            // An abstract socket: no file anyone could chmod, replace or
            // delete, and out of reach of a Landlock domain that scopes them.
            let listener = SocketAddr::from_abstract_name(record.socket.as_bytes())
                .and_then(|a| UnixListener::bind_addr(&a))
                .map_err(|e| fail(Error::io("cannot listen on the session's socket", e)))?;
            listener
                .set_nonblocking(true)
                .map_err(|e| fail(Error::io("socket", e)))?;
            let (mut master, slave) =
                sys::open_pty(size).map_err(|e| fail(Error::io("cannot open a pty", e)))?;
            if spec.command.is_empty() {
                return Err((2, "no command given".to_string()));
            }
            let mut spawned = child::spawn(&spec, slave, notify)?;
            if let Some(m) = spawned.master.take() {
                master = m;
            }
            tmpdir.clone_from(&spawned.tmpdir);
            if let Some(info) = &spawned.sandbox {
                if info.enforced.iter().any(|e| e == "scope-abstract-unix") {
                    record.peer_guard = "kernel".into();
                }
            }
            // Exec succeeded, so the listener was sent before it.
            let notify = match notify_pair {
                Some(ours) => match sys::recv_fd(ours.as_raw_fd()) {
                    Ok(fd) => Some(approvals::Approvals::new(
                        fd,
                        spawned.grants.clone(),
                        spec.ask.unwrap_or_default(),
                        spawned.masks.clone(),
                    )),
                    Err(e) => {
                        child::kill_all(spawned.init, spawned.program);
                        let _ = sys::wait_nohang(-1);
                        return Err(fail(Error::io(
                            "the program did not hand over its approval listener",
                            e,
                        )));
                    }
                },
                None => None,
            };
            sys::set_nonblocking(master.as_raw_fd(), true)
                .map_err(|e| fail(Error::io("pty", e)))?;
            Ok((events, listener, master, spawned, notify))
        })();
        let (events, listener, master, spawned, notify) = match res {
            Ok(v) => v,
            Err(e) => {
                cleanup(&reg, &tmpdir);
                return Err(e);
            }
        };
        let child = spawned.program;
        record.sandbox = spawned.sandbox;
        record.containment = Some(spawned.containment.word().into());
        let mut term = Terminal::new(size.rows, size.cols, spec.scrollback);
        term.resize(size.rows, size.cols);
        let own_pty = sys::pty_peer(master.as_raw_fd())
            .and_then(|slave| sys::fstat(slave.as_raw_fd()))
            .ok()
            .map(|st| (st.dev, st.ino));
        let mut sup = Supervisor {
            reg,
            record,
            events,
            events_bytes: 0,
            events_full: false,
            denials: Denials {
                since: Instant::now(),
                logged: 0,
                suppressed: 0,
                last: String::new(),
            },
            listener: Some(listener),
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
            init: spawned.init,
            reports: spawned.reports,
            report_buf: Vec::new(),
            program_end: None,
            approvals: notify,
            own_pty,
            end_errors: Vec::new(),
        };
        sup.record.status = "running".into();
        sup.record.child_pid = Some(child);
        sup.record.ask_wakeup = sup.approvals.as_ref().map(|a| a.wakeup().into());
        let how = match (&spawned.fallback_reason, spawned.containment) {
            (Some(why), c) => format!("{}: no namespaces ({why})", c.word()),
            (None, c) => c.word().to_string(),
        };
        sup.event(
            "started",
            &format!(
                "pid {child}: {} (containment {how})",
                spec.command.join(" ")
            ),
        );
        if let Some((_, summary)) = &spec.rollback {
            sup.event("capture", &format!("rollback baseline: {summary}"));
        }
        if let Some(stream) = pre {
            let _ = stream.set_read_timeout(None);
            let _ = stream.set_nonblocking(true);
            let tty = pre_tty.and_then(|(fd, settings)| sup.take_terminal(fd, &settings));
            sup.client = Some(Client::new(stream, tty));
            sup.record.attached = true;
            sup.event("attached", "by the launching terminal");
        }
        if let Err(e) = sup.reg.write_record(&sup.record) {
            sup.kill_all();
            let _ = sys::wait_nohang(-1);
            cleanup(&sup.reg, &tmpdir);
            return Err(fail(e));
        }
        Ok(sup)
    }

    /// Append an event line; failures are ignored (the log is
    /// informational). Past its bound only the session's end is recorded.
    fn event(&mut self, event: &str, detail: &str) {
        let mut line = Event {
            time: registry::now(),
            event: event.into(),
            detail: detail.into(),
        }
        .serialize_json();
        line.push('\n');
        if self.events_bytes + line.len() as u64 > EVENT_LOG_MAX_BYTES && event != "exited" {
            if self.events_full {
                return;
            }
            self.events_full = true;
            line = Event {
                time: registry::now(),
                event: "error".into(),
                detail: format!(
                    "the event log reached its bound ({EVENT_LOG_MAX_BYTES} bytes); later events are not recorded, except the end"
                ),
            }
            .serialize_json();
            line.push('\n');
        }
        if self.events.write_all(line.as_bytes()).is_ok() {
            self.events_bytes += line.len() as u64;
        }
    }

    /// A refused peer: an event naming it, at most
    /// `DENIED_EVENTS_PER_MINUTE` a minute; the rest are summed up once the
    /// minute is over.
    fn denied_event(&mut self, reason: &str) {
        self.flush_denials(Instant::now());
        if self.denials.logged < DENIED_EVENTS_PER_MINUTE {
            self.denials.logged += 1;
            self.event("denied", reason);
        } else {
            self.denials.suppressed += 1;
            self.denials.last = reason.to_string();
        }
    }

    /// Close the refusal window if a minute has passed, logging the sum of
    /// what was counted in it.
    fn flush_denials(&mut self, now: Instant) {
        if now < self.denials.since + Duration::from_secs(60) {
            return;
        }
        if self.denials.suppressed > 0 {
            let d = format!(
                "x{} more in the last minute (the last: {})",
                self.denials.suppressed, self.denials.last
            );
            self.event("denied", &d);
        }
        self.denials = Denials {
            since: now,
            logged: 0,
            suppressed: 0,
            last: String::new(),
        };
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
            Tty,
            Pending(usize),
            Follower(usize),
            Init,
            Notify,
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
            if let Some(l) = &self.listener {
                fds.push(PollFd::new(l.as_raw_fd(), POLLIN));
                tokens.push(Token::Listener);
            }
            if let Some(c) = &self.client {
                let takes_keys = self.to_pty.len() < TO_PTY_MAX && !c.leaving;
                // With a terminal the socket carries only control frames.
                let mut ev = 0;
                if takes_keys || c.tty.is_some() {
                    ev |= POLLIN;
                }
                if c.out.pending() > 0 || (c.needs_redraw && c.tty.is_none()) {
                    ev |= POLLOUT;
                }
                fds.push(PollFd::new(c.stream.as_raw_fd(), ev));
                tokens.push(Token::Client);
                // After the socket, so a client that hung up is let go
                // before a key meant for the shell behind it is read.
                if let Some(t) = &c.tty {
                    let mut ev = if takes_keys { POLLIN } else { 0 };
                    if t.pending() > 0 || c.needs_redraw {
                        ev |= POLLOUT;
                    }
                    fds.push(PollFd::new(t.fd(), ev));
                    tokens.push(Token::Tty);
                }
            }
            for (i, p) in self.pending.iter().enumerate() {
                fds.push(PollFd::new(p.stream.as_raw_fd(), POLLIN));
                tokens.push(Token::Pending(i));
            }
            if let Some(r) = &self.reports {
                fds.push(PollFd::new(r.as_raw_fd(), POLLIN));
                tokens.push(Token::Init);
            }
            if let Some(fd) = self.approvals.as_ref().and_then(approvals::Approvals::fd) {
                fds.push(PollFd::new(fd, POLLIN));
                tokens.push(Token::Notify);
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
                    Token::Tty => self.tty_activity(rev),
                    Token::Pending(i) => pending_ready.push(i),
                    Token::Follower(i) => followers_ready.push((i, rev)),
                    Token::Init => self.init_activity(),
                    Token::Notify => self.notify_activity(rev),
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
            .chain(self.approvals.as_ref().and_then(|a| a.next_deadline()))
            .chain(
                (self.denials.suppressed > 0).then(|| self.denials.since + Duration::from_secs(60)),
            )
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
                    c.drop_unsent();
                    c.needs_redraw = true;
                }
            }
        }
        self.pending.retain(|p| p.deadline > now);
        self.approval_deadlines(now);
        self.flush_denials(now);
        if self.kill_at.is_some_and(|t| t <= now) {
            self.kill_at = None;
            self.kill_all();
            self.event(
                "stop",
                "grace period over: killed every process of the session",
            );
        }
    }

    /// Signals arrived: reap children, or begin a stop.
    fn signal_activity(&mut self) {
        for sig in self.signals.take() {
            match sig {
                libc::SIGCHLD => self.reap(),
                libc::SIGTERM | libc::SIGINT => {
                    let sent = self.begin_stop(false, Duration::from_secs(STOP_TIMEOUT_SECS));
                    let detail = format!(
                        "SIG{} to the supervisor: {sent}",
                        registry::signal_name(sig)
                    );
                    self.event("stop", &detail);
                }
                _ => {}
            }
        }
    }

    /// Reports from the session's init: the program stopped, continued or ended.
    fn init_activity(&mut self) {
        let Some(r) = self.reports.as_ref() else {
            return;
        };
        let mut buf = [0u8; 512];
        let closed = loop {
            match sys::read(r.as_raw_fd(), &mut buf) {
                Ok(0) => break true,
                Ok(n) => self.report_buf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(_) => break true,
            }
        };
        while let Some(nl) = self.report_buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.report_buf.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line[..nl]).into_owned();
            match child::parse_report(&text) {
                Some(child::Report::Stopped(s)) => self.program_state(sys::WaitStatus::Stopped(s)),
                Some(child::Report::Continued) => self.program_state(sys::WaitStatus::Continued),
                Some(child::Report::Ended(st)) => self.program_end = Some(st),
                None => {}
            }
        }
        if closed {
            self.reports = None;
        }
    }

    /// Collect every child state change; orphans adopted as subreaper are reaped silently.
    fn reap(&mut self) {
        while let Ok(Some((pid, st))) = sys::wait_nohang(-1) {
            if Some(pid) == self.init {
                if matches!(
                    st,
                    sys::WaitStatus::Exited(_) | sys::WaitStatus::Signaled(_)
                ) {
                    // Its last reports are in the socket: read them first.
                    self.init_activity();
                    self.exit = Some(self.program_end.unwrap_or(match st {
                        sys::WaitStatus::Exited(c) => ExitStatus::Code(c),
                        sys::WaitStatus::Signaled(s) => ExitStatus::Signal(s),
                        _ => ExitStatus::Code(1),
                    }));
                }
                continue;
            }
            if pid != self.child || self.init.is_some() {
                continue;
            }
            self.program_state(st);
        }
    }

    /// The program changed state (seen by waitpid, or reported by the init).
    fn program_state(&mut self, st: sys::WaitStatus) {
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

    /// End what a terminal close ends: SIGTERM (and SIGCONT) to the
    /// program's group now, or, when the program ignores SIGTERM (an
    /// interactive shell), a hangup (SIGHUP to it and to the terminal's
    /// foreground group); everything after `grace`. `force` kills at once.
    /// Repeated requests keep the earliest deadline.
    fn begin_stop(&mut self, force: bool, grace: Duration) -> &'static str {
        self.refuse_all_requests("the session stopping");
        if force {
            self.kill_all();
            self.kill_at = None;
            return "killed every process of the session";
        }
        let sent = if child::ignores_sigterm(self.child) {
            let _ = sys::killpg(self.child, libc::SIGHUP);
            if let Some(pg) = sys::foreground_pgrp(self.master.as_raw_fd()) {
                if pg != self.child {
                    let _ = sys::killpg(pg, libc::SIGHUP);
                    let _ = sys::killpg(pg, libc::SIGCONT);
                }
            }
            "sent SIGHUP (the program ignores SIGTERM)"
        } else {
            let _ = sys::killpg(self.child, libc::SIGTERM);
            "sent SIGTERM"
        };
        let _ = sys::killpg(self.child, libc::SIGCONT);
        let at = Instant::now() + grace;
        self.kill_at = Some(self.kill_at.map_or(at, |k| k.min(at)));
        sent
    }

    /// SIGKILL every process of the session: its init (the kernel ends the
    /// namespace with it), or the program's group and every descendant.
    fn kill_all(&mut self) {
        child::kill_all(self.init, self.child);
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
        let got = self.read_pty_into(&mut buf, drain);
        self.pty_buf = buf;
        if got > 0 && self.client.as_ref().is_some_and(|c| c.overlay) {
            self.repaint_under_overlay();
        }
        // One write per wakeup rather than per read: fewer syscalls and
        // client wakeups, and an echo still goes out in this same wakeup.
        if let Some(c) = self.client.as_mut() {
            // A failure shows up as a hang-up on the next poll.
            let _ = c.flush();
            if c.backlogged() && c.stall_at.is_none() {
                c.stall_at = Some(Instant::now() + Duration::from_millis(CLIENT_STALL_MS));
            }
        }
    }

    /// `read_pty` with the buffer lent out of `self`; the bytes read.
    fn read_pty_into(&mut self, buf: &mut [u8], drain: bool) -> usize {
        // Until the pty is empty (a pty read returns at most the 4 KiB
        // line-discipline buffer), bounded per wakeup so sockets get their
        // turn under a flood.
        let mut budget = if drain {
            usize::MAX
        } else {
            crate::defaults::PTY_WAKEUP_BYTES
        };
        let fd = self.master.as_raw_fd();
        let mut total = 0;
        while budget > 0 {
            // With a client taking output over the socket, the bytes are
            // read straight into its queue as a frame (no copy); otherwise
            // into `buf` (and from there, filtered, to a handed-over terminal).
            let read = match self
                .client
                .as_mut()
                .filter(|c| c.takes_output() && c.tty.is_none())
            {
                Some(c) => c.out.read_output(fd, PTY_READ_BYTES).map(|n| (n, true)),
                None => sys::read(fd, buf).map(|n| (n, false)),
            };
            match read {
                Ok((0, _)) => {
                    self.pty_closed = true;
                    return total;
                }
                Ok((n, queued)) => {
                    budget = budget.saturating_sub(n);
                    total += n;
                    let Supervisor {
                        term,
                        followers,
                        client,
                        ..
                    } = self;
                    let read_bytes = buf.get(..n).unwrap_or(&[]);
                    // Whether a terminal will see these bytes: read into the
                    // client's queue, or given (filtered) to the terminal it
                    // handed over, which is written once per wakeup in `read_pty`.
                    let shown = queued
                        || match client
                            .as_mut()
                            .filter(|c| c.takes_output())
                            .and_then(|c| c.tty.as_mut())
                        {
                            Some(t) => {
                                t.push_output(read_bytes);
                                true
                            }
                            None => false,
                        };
                    let bytes = match client {
                        Some(c) if queued => c.out.tail(n),
                        _ => read_bytes,
                    };
                    model_output(term, followers, bytes);
                    // Queries in bytes no terminal will see (none attached,
                    // or one waiting for a redraw) are answered from the model.
                    let replies = term.take_replies();
                    if !shown && self.to_pty.len() + replies.len() <= TO_PTY_MAX {
                        self.to_pty.extend_from_slice(&replies);
                    }
                    // A short read found the pty drained: the next read
                    // would almost surely be EAGAIN (a syscall per
                    // keystroke), and if more came, poll says so.
                    if !drain
                        && (n < PTY_SHORT_READ_BYTES
                            || self.client.as_ref().is_some_and(Client::backlogged))
                    {
                        return total;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
                // EIO: every slave fd is closed.
                Err(_) => {
                    self.pty_closed = true;
                    return total;
                }
            }
        }
        total
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

    /// New connections: check the peer before reading a byte. Every
    /// request passes here first, whatever it asks for.
    fn listener_activity(&mut self) {
        // Bounded per wakeup, so a connect flood cannot starve the program.
        for _ in 0..MAX_ACCEPTS_PER_WAKEUP {
            let Some(listener) = &self.listener else {
                return;
            };
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(_) => return,
            };
            if let Err(reason) = check_peer(&stream) {
                self.denied_event(&reason);
                let _ = stream.set_nonblocking(true);
                let reply = Frame::Reply(ReplyStatus::Denied, reason).to_bytes();
                let _ = sys::write(stream.as_raw_fd(), &reply);
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            // Silent connections cannot lock anyone out: the one closest to
            // its deadline makes room for the newcomer.
            // Those that hung up or whose hello came meanwhile go first: a
            // real client's hello still unread is never what gets evicted.
            if self.pending.len() >= MAX_PENDING_CONNECTIONS {
                for i in (0..self.pending.len()).rev() {
                    self.pending_activity(i);
                }
            }
            if self.pending.len() >= MAX_PENDING_CONNECTIONS {
                if let Some(oldest) =
                    (0..self.pending.len()).min_by_key(|&i| self.pending[i].deadline)
                {
                    self.pending.swap_remove(oldest);
                }
            }
            self.pending.push(Pending {
                stream,
                reader: FrameReader::new(),
                fd: None,
                deadline: Instant::now() + Duration::from_millis(HELLO_TIMEOUT_MS),
            });
            // A real client's hello is usually there already: answer it now,
            // before more connections can push it out.
            self.pending_activity(self.pending.len() - 1);
        }
    }

    /// A not-yet-hello'd connection sent bytes (or hung up). The bytes are
    /// read with any fds that came with them (an attach's terminal).
    fn pending_activity(&mut self, i: usize) {
        let mut buf = Vec::new();
        let mut fds = Vec::new();
        let p = &mut self.pending[i];
        match sys::recv_append_with_fds(p.stream.as_raw_fd(), &mut buf, 512, &mut fds) {
            Ok((0, _)) => {
                self.pending.swap_remove(i);
                return;
            }
            Ok((_, truncated)) => {
                p.reader.push(&buf);
                // At most one fd per connection is ever held.
                if truncated || fds.len() + usize::from(p.fd.is_some()) > 1 {
                    // Recorded before the close, which the peer sees at once.
                    self.denied_event(
                        "a connection sent more than one file descriptor; it was closed",
                    );
                    self.pending.swap_remove(i);
                    return;
                }
                if let Some(fd) = fds.pop() {
                    p.fd = Some(fd);
                }
            }
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
                self.hello(p.stream, h, p.fd);
            }
            Ok(Some(_)) | Err(_) => {
                let p = self.pending.swap_remove(i);
                let reply = Frame::Reply(ReplyStatus::Refused, protocol::NOT_A_HELLO.into());
                let _ = sys::write(p.stream.as_raw_fd(), &reply.to_bytes());
            }
        }
    }

    /// The terminal an attach request handed over, if it is one we may
    /// serve; anything else is refused (closed) with an event, and the
    /// client is served over the socket instead.
    fn take_terminal(&mut self, fd: OwnedFd, settings: &TerminalSettings) -> Option<Tty> {
        match Tty::accept(fd, settings, self.own_pty) {
            Ok(t) => Some(t),
            Err(why) => {
                self.denied_event(&format!(
                    "the terminal sent with an attach request was refused: {why}; the client is served over the socket"
                ));
                None
            }
        }
    }

    /// Answer a hello (`fd`: a file descriptor that came with it).
    fn hello(&mut self, stream: UnixStream, h: Hello, fd: Option<OwnedFd>) {
        let reply = |status, msg: String| {
            let _ = sys::write(stream.as_raw_fd(), &Frame::Reply(status, msg).to_bytes());
        };
        let fd = match (h.request, fd) {
            (Some(Request::AttachTerminal(..)), fd) => fd,
            (_, Some(_)) => {
                self.denied_event(
                    "a file descriptor came with a request that takes none; it was closed",
                );
                None
            }
            (_, None) => None,
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
            Request::Attach(size) | Request::AttachTerminal(size, _) => {
                if self.client.as_ref().is_some_and(|c| !c.leaving) {
                    reply(
                        ReplyStatus::Busy,
                        "another client is attached; detach it first with 'nono detach'".into(),
                    );
                    return;
                }
                let tty = match (req, fd) {
                    (Request::AttachTerminal(_, settings), Some(fd)) => {
                        self.take_terminal(fd, &settings)
                    }
                    _ => None,
                };
                self.attach(stream, size, tty);
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
                let sent = self.begin_stop(force, Duration::from_millis(timeout_ms as u64));
                self.event("stop", &format!("requested ({how}): {sent}"));
                let mut out = OutQueue::default();
                out.push(&Frame::Reply(ReplyStatus::Ok, "stopping".into()));
                let _ = out.flush(stream.as_raw_fd());
                self.stoppers.push(Stopper { stream, out });
            }
            Request::Pending | Request::Decide { .. } => self.approval_hello(stream, req),
        }
    }

    /// Make `stream` the attached client at `size` (serving its terminal
    /// `tty` when it handed one over), and draw the screen for it.
    fn attach(&mut self, stream: UnixStream, size: WinSize, tty: Option<Tty>) {
        let size = clamp_size(size);
        self.client = None; // a leaving client is let go at once
        self.apply_size(size, true);
        let mut c = Client::new(stream, tty);
        c.push_output(&self.term.render());
        let _ = c.flush();
        self.client = Some(c);
        // Requests that arrived while detached show now.
        self.overlay_on_attach();
        self.record.attached = true;
        self.save();
        self.event("attached", &format!("{}x{}", size.cols, size.rows));
    }

    /// Resize the pty and the model. `force_winch`: signal the program even
    /// when the size did not change, so full-screen programs repaint.
    fn apply_size(&mut self, size: WinSize, force_winch: bool) {
        let size = clamp_size(size);
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
        c.drop_unsent();
        c.hand_back();
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

    /// The client's handed-over terminal is readable (keys) or writable.
    fn tty_activity(&mut self, rev: i16) {
        if rev & POLLOUT != 0 {
            self.flush_client();
        }
        if rev & (POLLIN | POLLERR_ANY) != 0 {
            self.read_tty();
        }
    }

    /// Keystrokes from the handed-over terminal: through the detach matcher
    /// to the program (or the approval overlay), as the client would relay them.
    fn read_tty(&mut self) {
        let Supervisor { client, to_pty, .. } = self;
        let Some(c) = client.as_mut() else {
            return;
        };
        let Some(t) = c.tty.as_mut() else {
            return;
        };
        match t.read_keys(CLIENT_INPUT_READ_BYTES) {
            Ok(0) => return self.client_gone(),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            // EIO: the terminal hung up (its client gets SIGHUP).
            Err(_) => return self.client_gone(),
        }
        let (keys, detach) = t.feed();
        if c.overlay {
            let keys = keys.to_vec();
            self.overlay_input(&keys);
        } else {
            to_pty.extend_from_slice(keys);
        }
        self.write_to_pty();
        if detach {
            self.detach_client("by the detach keys");
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
        if c.flush().is_err() {
            self.client_gone();
            return;
        }
        if !c.backlogged() {
            c.stall_at = None;
        }
        if c.leaving && c.out.pending() == 0 {
            self.client = None;
        } else if c.needs_redraw && c.pending() == 0 {
            c.needs_redraw = false;
            c.push_output(&self.term.render());
            if c.overlay {
                let overlay = self.overlay_now();
                if let Some(c) = self.client.as_mut() {
                    c.push_output(&overlay);
                }
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
            let Supervisor { client, to_pty, .. } = self;
            let Some(c) = client.as_mut() else {
                return;
            };
            // Keystrokes go from the frame buffer to the pty queue in place;
            // while the overlay shows, frames are taken one at a time.
            let next = if c.overlay || c.tty.is_some() {
                c.reader.next_frame()
            } else {
                c.reader.take_input(to_pty)
            };
            match next {
                Ok(None) => break,
                // Keys come from the handed-over terminal, never from the
                // socket (where they would not be bounded by `TO_PTY_MAX`).
                Ok(Some(Frame::Input(_) | Frame::Eof)) if c.tty.is_some() => {
                    self.event(
                        "error",
                        "keystrokes over the socket from a client whose terminal we serve",
                    );
                    self.client_gone();
                    return;
                }
                // While the overlay shows, keys answer it and reach nothing else.
                Ok(Some(Frame::Input(bytes))) if c.overlay => self.overlay_input(&bytes),
                Ok(Some(Frame::Input(bytes))) => self.to_pty.extend_from_slice(&bytes),
                Ok(Some(Frame::Resize(size))) => {
                    self.apply_size(size, false);
                    // The overlay moves to the new bottom row.
                    self.repaint_under_overlay();
                }
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

    /// With `--rollback`: capture the tree as the program left it (after
    /// its whole process group is gone, so nothing changes under us).
    fn rollback_final(&mut self) {
        let Some(id) = self.record.rollback_session.clone() else {
            return;
        };
        match crate::rollback::capture::final_capture(&id) {
            Ok(info) => self.event("capture", &format!("rollback final: {}", info.describe())),
            Err(e) => self.event("error", &format!("rollback final capture failed: {e}")),
        }
    }

    /// The program ended: drain its output, record the end, tell the
    /// clients, remove the socket.
    fn finish(&mut self, st: ExitStatus) {
        if !self.pty_closed {
            self.read_pty(true);
        }
        // Nothing of the session outlives it: with namespaces the kernel
        // ended the rest with the init; without, we end every descendant.
        if self.init.is_none() {
            let _ = sys::killpg(self.child, libc::SIGKILL);
            let n = child::kill_descendants();
            if n > 0 {
                self.event("exited", &format!("killed {n} leftover processes"));
            }
        }
        while let Ok(Some(_)) = sys::wait_nohang(-1) {}
        self.rollback_final();
        if let Some(t) = self.record.sandbox.as_ref().and_then(|s| s.tmpdir.as_ref()) {
            sandbox::remove_tmpdir(t);
        }
        // The history stays readable with `nono logs` until `prune`; it is
        // saved before the record says exited, so readers never miss it.
        let mut text = self.term.text_lines().join("\n");
        text.push('\n');
        if let Err(e) = self.reg.write_log(&self.record.id, text.as_bytes()) {
            let msg = format!("cannot save the history: {e}");
            self.event("error", &msg);
            self.end_errors.push(msg);
        }
        self.record.status = "exited".into();
        // Requests end with the program.
        self.record.waiting = 0;
        self.record.ended_at = Some(registry::now());
        self.record.attached = false;
        match st {
            ExitStatus::Code(c) => self.record.exit_code = Some(c),
            ExitStatus::Signal(s) => self.record.exit_signal = Some(s),
        }
        if let Err(e) = self.reg.write_record(&self.record) {
            let msg = format!("cannot record the end: {e}");
            self.event("error", &msg);
            self.end_errors.push(msg);
        }
        let detail = match st {
            ExitStatus::Code(c) => format!("exit code {c}"),
            ExitStatus::Signal(s) => format!("killed by SIG{}", registry::signal_name(s)),
        };
        self.flush_denials(Instant::now() + Duration::from_secs(60));
        self.event("exited", &detail);
        // New connections now fail at once instead of waiting in the backlog.
        self.listener = None;
        let deadline = Instant::now() + Duration::from_millis(EXIT_FLUSH_TIMEOUT_MS);
        let mut outs: Vec<(RawFd, &mut OutQueue)> = Vec::new();
        if let Some(c) = self.client.as_mut() {
            if !c.leaving {
                if c.needs_redraw {
                    c.push_output(&self.term.render());
                }
                c.hand_back();
                c.out.push(&Frame::Output(leave_screen(&self.term)));
                c.out.push(&Frame::Exited(st));
            }
            outs.push((c.stream.as_raw_fd(), &mut c.out));
        }
        for s in self.stoppers.iter_mut() {
            for e in &self.end_errors {
                s.out.push(&Frame::Notice(e.clone()));
            }
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

/// A window size the model can afford: at most `MAX_ROWS` x `MAX_COLS`
/// (a peer's hello asking for 65535x65535 must not cost gigabytes).
fn clamp_size(size: WinSize) -> WinSize {
    WinSize {
        rows: size.rows.min(MAX_ROWS),
        cols: size.cols.min(MAX_COLS),
        ..size
    }
}

/// Same uid only, and never from inside any session: a peer that is, or
/// descends from, a live supervisor (this one or another) is refused,
/// because a sandbox without abstract-socket scoping (or no sandbox) does
/// not keep it away from our socket.
fn check_peer(stream: &UnixStream) -> std::result::Result<(), String> {
    let cred = sys::peer_cred(stream.as_raw_fd())
        .map_err(|e| format!("cannot read peer credentials: {e}"))?;
    // Taken now, checked after the walk below: SO_PEERCRED's pid may be
    // reused once the peer is gone, and only a pidfd tells which it names.
    let pidfd = sys::peer_pidfd(stream.as_raw_fd()).map_err(|e| {
        format!(
            "pid {} exited before its origin could be checked ({e})",
            cred.pid
        )
    })?;
    let me = sys::geteuid();
    if cred.uid != me {
        return Err(format!(
            "uid {} (pid {}) may not use a session of uid {me}",
            cred.uid, cred.pid
        ));
    }
    // Fail closed: a peer whose ancestry cannot be read (it connected and
    // exited, handing the socket to another process) is refused. Our own
    // descendants first, so a helper of ours named like a supervisor (an
    // init forked without exec) still reads as this session.
    if procfs::is_self_or_descendant(cred.pid, sys::getpid()) == Some(true) {
        return Err(format!(
            "pid {} runs inside this session; a session cannot control itself",
            cred.pid
        ));
    }
    let origin = procfs::origin(cred.pid);
    // The verdict is about the peer only if the pid still names it now.
    let reused = pidfd
        .as_ref()
        .is_some_and(|p| procfs::pidfd_pid(p.as_raw_fd()) != Some(cred.pid));
    match origin.filter(|_| !reused) {
        Some(procfs::Origin::Outside) => Ok(()),
        Some(procfs::Origin::InSession(sup)) if sup == sys::getpid() => Err(format!(
            "pid {} runs inside this session; a session cannot control itself",
            cred.pid
        )),
        // This supervisor itself runs inside that session (nono used from
        // a session's shell, as 'make test' in 'make run'): the peer can
        // reach no more through us than it already can.
        Some(procfs::Origin::InSession(sup)) if enclosing_session() == Some(sup) => Ok(()),
        Some(procfs::Origin::InSession(sup)) => Err(format!(
            "pid {} runs inside another session (supervisor pid {sup}); no session may reach another",
            cred.pid
        )),
        None => Err(format!(
            "pid {} exited before its origin could be checked",
            cred.pid
        )),
    }
}

/// The supervisor of the session this supervisor was started inside, if
/// any (walked from our parent: we are a supervisor ourselves).
fn enclosing_session() -> Option<i32> {
    let parent = procfs::stat(sys::getpid())?.ppid;
    match procfs::origin(parent)? {
        procfs::Origin::InSession(sup) => Some(sup),
        procfs::Origin::Outside => None,
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
/// to be back on the user's screen, from what only the model knows: any
/// sequence in progress cancelled (CAN), origin mode off and the full
/// scroll region (both send the cursor home), the cursor back where the
/// program left it, G0/G1 to ASCII, and the alternate screen left when the
/// program is in it (leaving it when not in it would move the user's cursor).
fn leave_screen(t: &Terminal) -> Vec<u8> {
    let c = t.cursor();
    let mut out = format!(
        "\x18\x1b[?6l\x1b[r\x1b[{};{}H\x1b(B\x1b)B\x0f",
        u32::from(c.y) + 1,
        u32::from(c.x) + 1
    )
    .into_bytes();
    if t.alternate_screen_active() {
        out.extend_from_slice(b"\x1b[?1049l");
    }
    out
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
