//! The session registry: plain files under `$XDG_STATE_HOME/nono/sessions/`.
//! Owns paths, the private-directory checks, record format and atomic
//! writes, the event log, liveness and session lookup by id prefix or name.

// nanoserde's derives expand to code that trips this lint; ours does not rely on it.
#![allow(clippy::question_mark)]

use crate::defaults::{MAX_FILE_BYTES, SHORT_ID_MIN};
use crate::error::{Error, Result};
use crate::{procfs, sys};
use nanoserde::{DeJson, SerJson};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Major version of the record format; readers refuse newer ones.
pub const RECORD_VERSION: u32 = 1;

/// A session's record: written only by its supervisor, read by everyone.
/// Field names are a stable interface (`ps --json`, `inspect --json`).
#[derive(Clone, Debug, Default, SerJson, DeJson, PartialEq)]
#[nserde(serialize_none_as_null)]
pub struct Record {
    /// Record format version (major).
    pub version: u32,
    /// 16 lowercase hex digits.
    pub id: String,
    /// Human name, unique among live sessions.
    pub name: String,
    /// `starting`, `running`, `paused` or `exited` as the supervisor last wrote it.
    pub status: String,
    /// Whether a client is attached.
    pub attached: bool,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Directory the program started in.
    pub workdir: String,
    /// Sandbox profile as named at start; null when started `--no-sandbox`.
    pub profile: Option<String>,
    /// Network mode: `allowed` or `blocked`.
    pub network: String,
    /// What the kernel enforces on the program; null when unsandboxed.
    pub sandbox: Option<SandboxInfo>,
    /// Abstract Unix socket the supervisor listens on (the name without its
    /// leading NUL; a random part keeps other users from taking it first).
    /// Empty in records of older versions, which listened on `<id>.sock`.
    #[nserde(default)]
    pub socket: String,
    /// What keeps this session's program from reaching any session's
    /// socket: `kernel` (Landlock scope-abstract-unix, with the supervisors'
    /// check behind it) or `supervisor` (only the supervisors' check, which
    /// refuses every peer descending from a live supervisor: unsandboxed, or
    /// Landlock below ABI 6).
    #[nserde(default)]
    pub peer_guard: String,
    /// Process id of the supervisor.
    pub supervisor_pid: i32,
    /// Supervisor start time (clock ticks after boot) to detect pid reuse.
    pub supervisor_start_time: u64,
    /// Process id of the program (also its process group and session id).
    pub child_pid: Option<i32>,
    /// Unix time the session started.
    pub started_at: u64,
    /// The same instant in nanoseconds since the epoch, so that of two
    /// sessions started in one second the later wins; absent (None) in
    /// records written before it existed.
    pub started_at_ns: Option<u64>,
    /// Unix time the session ended; null while live or when unknown.
    pub ended_at: Option<u64>,
    /// Exit code when the program exited normally.
    pub exit_code: Option<i32>,
    /// Signal number when the program was killed by a signal.
    pub exit_signal: Option<i32>,
    /// Rollback snapshot session (reserved; always null for now).
    pub rollback_session: Option<String>,
    /// Whether opens outside the grant wait for approval (`--ask`).
    #[nserde(default)]
    pub ask: bool,
    /// Approval requests waiting for a person now.
    #[nserde(default)]
    pub waiting: u32,
    /// With `--ask`: `sync` when the kernel hands the CPU straight from the
    /// asking thread to the supervisor and back (Linux 6.6+), `plain`
    /// otherwise (each open then costs more); null without `--ask` and in
    /// records of older versions.
    #[nserde(default)]
    pub ask_wakeup: Option<String>,
    /// How the session's processes are contained: `namespaces` (own user,
    /// PID and mount namespaces; nothing outlives the supervisor) or
    /// `descendants` (the supervisor ends every descendant it finds at the
    /// end); null in records of older versions.
    #[nserde(default)]
    pub containment: Option<String>,
}

/// The sandbox a session's program runs in, as applied at start.
#[derive(Clone, Debug, Default, SerJson, DeJson, PartialEq)]
#[nserde(serialize_none_as_null)]
pub struct SandboxInfo {
    /// Landlock ABI version of the kernel that enforced it.
    pub landlock_abi: u32,
    /// Protections in force: `no-new-privs`, `filesystem`, `refer`,
    /// `truncate`, `ioctl-dev`, `tcp`, `seccomp-sockets`, `scope-signal`,
    /// `scope-abstract-unix`.
    pub enforced: Vec<String>,
    /// The private temporary directory (`$TMPDIR` of the program).
    pub tmpdir: Option<String>,
    /// Every granted path.
    pub paths: Vec<PathGrant>,
}

/// One granted path of a sandbox.
#[derive(Clone, Debug, Default, SerJson, DeJson, PartialEq)]
pub struct PathGrant {
    /// Canonical path.
    pub path: String,
    /// `read`, `write` or `read-write`.
    pub access: String,
}

/// Parse one event-log line (checked first, like records).
pub fn parse_event(line: &str) -> std::result::Result<Event, String> {
    crate::json::check(line)?;
    Event::deserialize_json(line).map_err(|e| e.to_string())
}

/// One line of a session's event log (`<id>.events`, JSON lines).
#[derive(Clone, Debug, SerJson, DeJson)]
pub struct Event {
    /// Unix time.
    pub time: u64,
    /// What happened: started, attached, detached, denied, stop, paused, resumed, exited, error.
    pub event: String,
    /// Details for humans.
    pub detail: String,
}

/// What a reader concludes about a session, combining the record with
/// whether its supervisor still lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Supervisor alive, program running.
    Running,
    /// Supervisor alive, program's process group stopped.
    Paused,
    /// Ended with a code.
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
    /// The supervisor is gone without writing how the program ended.
    Unknown,
}

impl State {
    /// Whether the supervisor is alive.
    pub fn is_live(self) -> bool {
        matches!(self, State::Running | State::Paused)
    }

    /// The `status` word used in JSON output.
    pub fn word(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Paused => "paused",
            _ => "exited",
        }
    }

    /// Short human form for `ps`: `running`, `paused`, `exited(7)`, `killed(TERM)`, `exited(?)`.
    pub fn describe(self) -> String {
        match self {
            State::Running | State::Paused => self.word().into(),
            State::Exited(c) => format!("exited({c})"),
            State::Signaled(s) => format!("killed({})", signal_name(s)),
            State::Unknown => "exited(?)".into(),
        }
    }
}

/// A record as read from disk, with its derived state.
#[derive(Clone, Debug)]
pub struct Session {
    /// The record as the supervisor wrote it.
    pub record: Record,
    /// Derived state (the record's status, overruled when the supervisor is gone).
    pub state: State,
}

impl Session {
    /// Derive the state: a live-looking record whose supervisor is gone
    /// (dead, or its pid reused by another process) ended unknown.
    pub fn from_record(record: Record) -> Session {
        let state = match record.status.as_str() {
            "exited" => match (record.exit_code, record.exit_signal) {
                (Some(c), _) => State::Exited(c),
                (None, Some(s)) => State::Signaled(s),
                _ => State::Unknown,
            },
            _ if !procfs::is_same_process(record.supervisor_pid, record.supervisor_start_time) => {
                State::Unknown
            }
            "paused" => State::Paused,
            _ => State::Running,
        };
        Session { record, state }
    }

    /// The record as shown to readers: status and attachment follow the derived state.
    pub fn effective_record(&self) -> Record {
        let mut r = self.record.clone();
        r.status = self.state.word().into();
        if !self.state.is_live() {
            r.attached = false;
            r.waiting = 0;
        }
        r
    }
}

/// Name of a signal without the SIG prefix, or its number.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "HUP",
        libc::SIGINT => "INT",
        libc::SIGQUIT => "QUIT",
        libc::SIGILL => "ILL",
        libc::SIGABRT => "ABRT",
        libc::SIGBUS => "BUS",
        libc::SIGFPE => "FPE",
        libc::SIGKILL => "KILL",
        libc::SIGUSR1 => "USR1",
        libc::SIGSEGV => "SEGV",
        libc::SIGUSR2 => "USR2",
        libc::SIGPIPE => "PIPE",
        libc::SIGALRM => "ALRM",
        libc::SIGTERM => "TERM",
        libc::SIGSTKFLT => "STKFLT",
        libc::SIGCHLD => "CHLD",
        libc::SIGCONT => "CONT",
        libc::SIGSTOP => "STOP",
        libc::SIGTSTP => "TSTP",
        libc::SIGTTIN => "TTIN",
        libc::SIGTTOU => "TTOU",
        libc::SIGURG => "URG",
        libc::SIGXCPU => "XCPU",
        libc::SIGXFSZ => "XFSZ",
        libc::SIGVTALRM => "VTALRM",
        libc::SIGPROF => "PROF",
        libc::SIGWINCH => "WINCH",
        libc::SIGIO => "IO",
        libc::SIGPWR => "PWR",
        libc::SIGSYS => "SYS",
        libc::SIGTRAP => "TRAP",
        _ => return sig.to_string(),
    };
    name.into()
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Record {
    /// When the session started, for ordering: nanoseconds when the
    /// record has them, else its whole second.
    pub fn start_key(&self) -> u128 {
        self.started_at_ns
            .map_or(u128::from(self.started_at) * 1_000_000_000, u128::from)
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The registry directory: `$XDG_STATE_HOME/nono`, or `~/.local/state/nono`.
pub fn state_dir() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| Path::new(v).is_absolute()) {
        return Ok(PathBuf::from(x).join("nono"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/state/nono")),
        None => Err(Error::Msg(
            "neither XDG_STATE_HOME nor HOME is set; set one so nono knows where to keep sessions"
                .into(),
        )),
    }
}

/// Refuse a directory that is a symlink, not a directory or not ours; the
/// message names the path and the fix. One of ours opened to group or
/// others (a sandboxed program can chmod it: Landlock does not cover
/// metadata) is put back to 0700 with a warning, so nono never stays locked
/// out of its own sessions.
pub fn check_private_dir(path: &Path) -> Result<()> {
    let md = fs::symlink_metadata(path)
        .map_err(|e| Error::io(format!("cannot inspect {}", path.display()), e))?;
    let p = path.display();
    if md.file_type().is_symlink() {
        crate::bail!("{p} is a symlink; nono keeps state only in a real directory it owns: remove the link and run again");
    }
    if !md.is_dir() {
        crate::bail!("{p} is not a directory; move it out of the way and run again");
    }
    let me = sys::geteuid();
    if md.uid() != me {
        crate::bail!(
            "{p} is owned by uid {}, not by you (uid {me}); remove it or point XDG_STATE_HOME elsewhere",
            md.uid()
        );
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o077 != 0 {
        // Through an O_NOFOLLOW|O_DIRECTORY handle, so a swapped-in link is
        // never chmod'ed (O_PATH: a mode without read bits must not stop us;
        // a narrower mode is the owner's choice and left alone).
        let fixed = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)
            .and_then(|d| {
                let dmd = d.metadata()?;
                if dmd.uid() != me || dmd.ino() != md.ino() {
                    return Err(std::io::ErrorKind::PermissionDenied.into());
                }
                // fchmod refuses O_PATH handles; chmod through /proc/self/fd does not follow links.
                use std::os::fd::AsRawFd;
                fs::set_permissions(
                    format!("/proc/self/fd/{}", d.as_raw_fd()),
                    fs::Permissions::from_mode(0o700),
                )
            });
        let what = format!("was open to group or others (mode {mode:04o})");
        match fixed {
            Ok(()) => crate::out::warn(&format!(
                "{p} {what}; put it back to 0700 (files in it not owned by you are ignored)"
            )),
            Err(e) => {
                crate::bail!("{p} {what} and could not be put back ({e}); run 'chmod 700 {p}'")
            }
        }
    }
    Ok(())
}

/// Create `path` (and missing parents) with mode 0700 from the start, then check it.
fn ensure_private_dir(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let created = fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path);
            created.map_err(|e| denied(format!("cannot create {}", path.display()), e))?;
        }
        Err(e) => return Err(Error::io(format!("cannot inspect {}", path.display()), e)),
    }
    check_private_dir(path)
}

/// An I/O error on the state directory; refused access from a process
/// with no-new-privs (as every sandboxed program has) means we run inside
/// a session, where the state directory is out of reach by design.
fn denied(context: String, e: std::io::Error) -> Error {
    let no_new_privs = fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.split_whitespace().eq(["NoNewPrivs:", "1"]))
    });
    if e.kind() == std::io::ErrorKind::PermissionDenied && no_new_privs {
        return Error::Msg(format!(
            "nono cannot manage sessions from inside a sandboxed session ({context}: {e}); run it from a terminal outside the session"
        ));
    }
    Error::io(context, e)
}

/// Read a small regular file, refusing oversized content and, unless
/// `follow` is set, a symlink in the last component.
pub fn read_small_file(path: &Path, follow: bool) -> std::io::Result<String> {
    read_file_limited(path, follow, MAX_FILE_BYTES, false)
}

/// Read one of our own files of at most `limit` bytes, never through a
/// symlink; a file owned by another uid is refused (PermissionDenied).
pub fn read_small_file_limited(path: &Path, limit: u64) -> std::io::Result<String> {
    read_file_limited(path, false, limit, true)
}

/// Open one of our own registry files for reading: never through a
/// symlink, a regular file, owned by our euid (anything else is an error
/// that says so).
pub fn open_own_file(path: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    let md = f.metadata()?;
    if !md.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    if md.uid() != sys::geteuid() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("owned by uid {}, not by you; ignored", md.uid()),
        ));
    }
    Ok(f)
}

/// Read a regular file of at most `limit` bytes (lossy UTF-8); with `own`
/// it must be one of ours (see [`open_own_file`]).
fn read_file_limited(path: &Path, follow: bool, limit: u64, own: bool) -> std::io::Result<String> {
    let f = if own {
        open_own_file(path)?
    } else {
        let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
        OpenOptions::new()
            .read(true)
            .custom_flags(nofollow | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)?
    };
    let md = f.metadata()?;
    if !md.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let size = md.len().min(limit + 1);
    let mut bytes = Vec::with_capacity(size as usize + 1);
    f.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Parse a record's text; errors say what is wrong.
pub fn parse_record(text: &str) -> std::result::Result<Record, String> {
    crate::json::check(text).map_err(|e| format!("not a valid record ({e})"))?;
    let r = Record::deserialize_json(text).map_err(|e| format!("not a valid record ({e})"))?;
    if r.version > RECORD_VERSION {
        return Err(format!(
            "written by a newer nono (record format {}, this nono reads {RECORD_VERSION}); upgrade nono",
            r.version
        ));
    }
    if r.id.len() != 16 || !r.id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("invalid session id {:?}", r.id));
    }
    Ok(r)
}

/// A record that could not be read, for a warning that names the file.
#[derive(Debug)]
pub struct BadRecord {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for BadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skipping {}: {}", self.path.display(), self.reason)
    }
}

/// The registry: a checked private directory of session files.
pub struct Registry {
    /// `.../nono/sessions`
    dir: PathBuf,
}

/// Write `bytes` to the new file `tmp` (0600 from creation, O_EXCL,
/// O_NOFOLLOW), fsynced when `durable`; on failure it is removed and the
/// error names `shown`.
pub(crate) fn write_new_file(tmp: &Path, bytes: &[u8], durable: bool, shown: &Path) -> Result<()> {
    let ctx = || format!("cannot write {}", shown.display());
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(tmp)
        .map_err(|e| Error::io(ctx(), e))?;
    let written = f
        .write_all(bytes)
        .and_then(|_| if durable { f.sync_all() } else { Ok(()) });
    if let Err(e) = written {
        let _ = fs::remove_file(tmp);
        return Err(Error::io(ctx(), e));
    }
    Ok(())
}

impl Registry {
    /// Open (creating if needed) and check the registry directories.
    pub fn open() -> Result<Registry> {
        let base = state_dir()?;
        ensure_private_dir(&base)?;
        let dir = base.join("sessions");
        ensure_private_dir(&dir)?;
        Ok(Registry { dir })
    }

    /// The sessions directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a session's record.
    pub fn record_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Path of a session's attach socket.
    pub fn socket_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.sock"))
    }

    /// A path through which the socket can be bound or connected, and the
    /// directory handle that must stay open while it is used. Paths longer
    /// than `sun_path` (108 bytes) go through `/proc/self/fd/N/`.
    pub fn socket_addr(&self, id: &str) -> Result<(PathBuf, Option<File>)> {
        let path = self.socket_path(id);
        if path.as_os_str().len() < 100 {
            return Ok((path, None));
        }
        let dir = File::open(&self.dir)
            .map_err(|e| Error::io(format!("cannot open {}", self.dir.display()), e))?;
        use std::os::fd::AsRawFd;
        let short = PathBuf::from(format!("/proc/self/fd/{}/{id}.sock", dir.as_raw_fd()));
        Ok((short, Some(dir)))
    }

    /// Hold the registry's lock (an exclusive `flock` on the sessions
    /// directory itself, so no lock file is left around) until the returned
    /// handle is dropped: a name is checked and claimed under it, so two
    /// starts cannot both take one name.
    pub fn lock(&self) -> Result<File> {
        let d = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.dir)
            .map_err(|e| Error::io(format!("cannot open {}", self.dir.display()), e))?;
        use std::os::fd::AsRawFd;
        sys::lock_exclusive(d.as_raw_fd())
            .map_err(|e| Error::io(format!("cannot lock {}", self.dir.display()), e))?;
        Ok(d)
    }

    /// Path of a session's saved history (written by the supervisor at exit).
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.log"))
    }

    /// Path of a session's event log.
    pub fn events_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.events"))
    }

    /// Write `rec` to a new temporary file (0600, O_EXCL, O_NOFOLLOW) and fsync it.
    fn write_temp(&self, rec: &Record) -> Result<PathBuf> {
        let mut text = rec.serialize_json();
        text.push('\n');
        self.write_temp_bytes(&rec.id, text.as_bytes(), true)
    }

    /// Write `bytes` to a new temporary file (0600, O_EXCL, O_NOFOLLOW),
    /// fsynced when `durable`.
    fn write_temp_bytes(&self, id: &str, bytes: &[u8], durable: bool) -> Result<PathBuf> {
        let mut rnd = [0u8; 8];
        sys::getrandom(&mut rnd).map_err(|e| Error::io("getrandom", e))?;
        let tmp = self.dir.join(format!(".{id}.{}.tmp", hex(&rnd)));
        write_new_file(&tmp, bytes, durable, &tmp)?;
        Ok(tmp)
    }

    /// Make the directory entry changes durable.
    fn sync_dir(&self) {
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
    }

    /// Create a record whose id must be new (Ok(Err) on a collision). Not
    /// fsynced: it only reserves the id, and the supervisor's next write,
    /// before it reports ready, is durable.
    pub fn create_record(&self, rec: &Record) -> Result<std::result::Result<(), ()>> {
        let mut text = rec.serialize_json();
        text.push('\n');
        let tmp = self.write_temp_bytes(&rec.id, text.as_bytes(), false)?;
        let linked = fs::hard_link(&tmp, self.record_path(&rec.id));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Ok(())),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Err(())),
            Err(e) => Err(Error::io(
                format!("cannot create {}", self.record_path(&rec.id).display()),
                e,
            )),
        }
    }

    /// Atomically replace a record (temp file, fsync, rename, fsync directory).
    pub fn write_record(&self, rec: &Record) -> Result<()> {
        let tmp = self.write_temp(rec)?;
        self.replace(tmp, self.record_path(&rec.id))
    }

    /// Atomically write a session's saved history.
    pub fn write_log(&self, id: &str, text: &[u8]) -> Result<()> {
        let tmp = self.write_temp_bytes(id, text, true)?;
        self.replace(tmp, self.log_path(id))
    }

    /// Rename a finished temporary file over `path` and make it durable.
    fn replace(&self, tmp: PathBuf, path: PathBuf) -> Result<()> {
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(format!("cannot replace {}", path.display()), e));
        }
        self.sync_dir();
        Ok(())
    }

    /// Remove a session's record, event log, saved history and socket. The socket is
    /// removed only when `lstat` shows a socket we own and nothing accepts
    /// connections on it: a file or symlink planted at its path is left alone. Returns whether the record existed;
    /// a file that exists but cannot be removed is an error naming it.
    pub fn remove_files(&self, id: &str) -> Result<bool> {
        let sock = self.socket_path(id);
        if let Ok(md) = fs::symlink_metadata(&sock) {
            use std::os::unix::fs::FileTypeExt;
            let refused = || {
                self.socket_addr(id).is_ok_and(|(p, _dir)| {
                    std::os::unix::net::UnixStream::connect(p)
                        .is_err_and(|e| e.raw_os_error() == Some(libc::ECONNREFUSED))
                })
            };
            if md.file_type().is_socket() && md.uid() == sys::geteuid() && refused() {
                let _ = fs::remove_file(&sock);
            }
        }
        let remove = |path: PathBuf| match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
        };
        let events = remove(self.events_path(id));
        let log = remove(self.log_path(id));
        // The record last: while it exists, prune can try again.
        let existed = events.and(log).and_then(|_| remove(self.record_path(id)));
        self.sync_dir();
        existed
    }

    /// Ids of every record on disk (names only; nothing is parsed).
    pub fn ids(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".json")?;
                (stem.len() == 16 && stem.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| stem.to_string())
            })
            .collect()
    }

    /// The id to show humans: the shortest unique prefix of at least 6 digits.
    pub fn short_id(&self, id: &str) -> String {
        let mut ids = self.ids();
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
        let shorts = short_ids(&ids);
        ids.iter()
            .position(|i| i == id)
            .map_or_else(|| id.to_string(), |i| shorts[i].clone())
    }

    /// Every readable session, and a note for every record that is not.
    pub fn list(&self) -> Result<(Vec<Session>, Vec<BadRecord>)> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| denied(format!("cannot read {}", self.dir.display()), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            if stem.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let parsed = read_small_file_limited(&path, MAX_FILE_BYTES)
                .map_err(|e| e.to_string())
                .and_then(|t| parse_record(&t))
                .and_then(|r| {
                    if r.id == stem {
                        Ok(r)
                    } else {
                        Err(format!("its id {} does not match its file name", r.id))
                    }
                });
            match parsed {
                Ok(r) => good.push(Session::from_record(r)),
                Err(reason) => bad.push(BadRecord { path, reason }),
            }
        }
        good.sort_by(|a, b| {
            (a.record.start_key(), &a.record.id).cmp(&(b.record.start_key(), &b.record.id))
        });
        Ok((good, bad))
    }

    /// Find one session by exact id, exact name (live sessions first, then
    /// the most recent exited one), or unique id prefix.
    pub fn resolve(&self, query: &str) -> Result<Session> {
        let (all, _) = self.list()?;
        resolve_in(&all, query)
    }

    /// Create a new session's event log for appending (supervisor only):
    /// O_EXCL, so an existing file or a planted link is never reused.
    pub fn open_events(&self, id: &str) -> Result<File> {
        let path = self.events_path(id);
        OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))
    }
}

/// Lookup rules, separated from the filesystem for testing.
pub fn resolve_in(all: &[Session], query: &str) -> Result<Session> {
    if query.is_empty() {
        return Err(Error::Usage("empty session id".into()));
    }
    if let Some(s) = all.iter().find(|s| s.record.id == query) {
        return Ok(s.clone());
    }
    let named: Vec<&Session> = all.iter().filter(|s| s.record.name == query).collect();
    if let Some(s) = named.iter().find(|s| s.state.is_live()) {
        return Ok((*s).clone());
    }
    if let Some(s) = named.iter().max_by_key(|s| s.record.start_key()) {
        return Ok((*s).clone());
    }
    let q = query.to_ascii_lowercase();
    let hits: Vec<&Session> = all.iter().filter(|s| s.record.id.starts_with(&q)).collect();
    match hits.len() {
        0 => Err(Error::NoSuchSession(query.into())),
        1 => Ok(hits[0].clone()),
        _ => {
            let ids: Vec<String> = hits.iter().map(|s| s.record.id.clone()).collect();
            let short = short_ids(&ids);
            Err(Error::Ambiguous(query.into(), short))
        }
    }
}

/// For each id, its shortest prefix of at least `SHORT_ID_MIN` digits that no
/// other id in `ids` shares. Same order as `ids`.
pub fn short_ids(ids: &[String]) -> Vec<String> {
    let mut sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let common = |a: &str, b: &str| a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    ids.iter()
        .map(|id| {
            let i = sorted.binary_search(&id.as_str()).unwrap_or(0);
            let mut need = SHORT_ID_MIN;
            if i > 0 {
                need = need.max(common(id, sorted[i - 1]) + 1);
            }
            if let Some(next) = sorted.get(i + 1) {
                need = need.max(common(id, next) + 1);
            }
            id[..need.min(id.len())].to_string()
        })
        .collect()
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random session id: 16 lowercase hex digits.
pub fn new_id() -> Result<String> {
    let mut b = [0u8; 8];
    sys::getrandom(&mut b).map_err(|e| Error::io("getrandom", e))?;
    Ok(hex(&b))
}

/// A fresh abstract socket name for session `id`: the random part keeps
/// anyone who does not read the record from binding it first.
pub fn new_socket_name(id: &str) -> Result<String> {
    let mut b = [0u8; 16];
    sys::getrandom(&mut b).map_err(|e| Error::io("getrandom", e))?;
    Ok(format!("nono-{id}-{}", hex(&b)))
}

/// A readable random name such as `calm-node`, not used by `taken`.
pub fn new_name(taken: &[&str]) -> Result<String> {
    const ADJ: [&str; 32] = [
        "amber", "bold", "brave", "brisk", "calm", "clear", "cool", "crisp", "eager", "fair",
        "fast", "fond", "glad", "gold", "keen", "kind", "lively", "lucid", "mild", "neat", "noble",
        "proud", "quick", "quiet", "rapid", "sharp", "shy", "sleek", "swift", "tidy", "vivid",
        "warm",
    ];
    const NOUN: [&str; 32] = [
        "atlas", "birch", "brook", "cedar", "cliff", "cloud", "comet", "coral", "delta", "dune",
        "ember", "fern", "field", "fjord", "grove", "harbor", "heron", "lake", "maple", "marsh",
        "mesa", "node", "oak", "orbit", "otter", "pine", "reef", "ridge", "river", "spark",
        "stone", "wren",
    ];
    for attempt in 0..64 {
        let mut b = [0u8; 2];
        sys::getrandom(&mut b).map_err(|e| Error::io("getrandom", e))?;
        let mut name = format!("{}-{}", ADJ[b[0] as usize % 32], NOUN[b[1] as usize % 32]);
        if attempt >= 32 {
            name.push_str(&format!("-{attempt}"));
        }
        if !taken.contains(&name.as_str()) {
            return Ok(name);
        }
    }
    Err(Error::Msg(
        "could not pick a free session name; pass --name".into(),
    ))
}

/// Check a user-chosen name: short, printable, not mistakable for an
/// option, and not mistakable for an id (six or more hex digits, which
/// `stop` and the others would read as an id prefix).
pub fn validate_name(name: &str) -> Result<()> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if name.is_empty() || name.len() > 64 || !ok_chars || name.starts_with('-') {
        return Err(Error::Usage(format!(
            "invalid session name '{}': use 1 to 64 letters, digits, '-', '_' or '.', not starting with '-'",
            crate::escape::text(name)
        )));
    }
    if name.len() >= SHORT_ID_MIN && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Usage(format!(
            "invalid session name '{name}': {SHORT_ID_MIN} or more hex digits read as a session id; add a letter beyond f or a '-'"
        )));
    }
    Ok(())
}

/// Why `name` cannot be claimed now, given every readable session: a live
/// session has it, or it equals (or starts) an existing id.
pub fn name_conflict(all: &[Session], name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if all.iter().any(|s| s.record.id == lower) {
        return Some(format!(
            "'{name}' is the id of an existing session; choose another --name"
        ));
    }
    all.iter()
        .any(|s| s.state.is_live() && s.record.name == name)
        .then(|| format!("a running session is already named '{name}'; choose another --name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, name: &str, state: State, started: u64) -> Session {
        Session {
            record: Record {
                id: id.into(),
                name: name.into(),
                started_at: started,
                ..Record::default()
            },
            state,
        }
    }

    #[test]
    fn short_ids_grow_until_unique() {
        let ids = vec![
            "a3f7c2aa00000000".to_string(),
            "a3f7c2ab00000000".to_string(),
            "ffffff0000000000".to_string(),
        ];
        assert_eq!(short_ids(&ids), vec!["a3f7c2aa", "a3f7c2ab", "ffffff"]);
    }

    #[test]
    fn lookup_prefers_exact_id_then_name_then_prefix() {
        let all = vec![
            session("abcdef0000000001", "web", State::Running, 1),
            session("abcdef0000000002", "db", State::Unknown, 2),
            session("0123450000000003", "db", State::Running, 3),
        ];
        assert_eq!(
            resolve_in(&all, "web").unwrap().record.id,
            "abcdef0000000001"
        );
        // A live session wins a name shared with an exited one.
        assert_eq!(
            resolve_in(&all, "db").unwrap().record.id,
            "0123450000000003"
        );
        assert_eq!(
            resolve_in(&all, "0123").unwrap().record.id,
            "0123450000000003"
        );
        assert!(matches!(resolve_in(&all, "abcdef"), Err(Error::Ambiguous(_, c)) if c.len() == 2));
        assert!(matches!(
            resolve_in(&all, "zzz"),
            Err(Error::NoSuchSession(_))
        ));
    }

    #[test]
    fn records_round_trip_and_newer_formats_are_refused() {
        let r = Record {
            version: RECORD_VERSION,
            id: "0011223344556677".into(),
            name: "calm-node".into(),
            status: "running".into(),
            command: vec!["sh".into(), "-c".into(), "echo \"hi\"".into()],
            ..Record::default()
        };
        let text = r.serialize_json();
        assert!(text.contains("\"exit_code\":null"), "{text}");
        assert_eq!(parse_record(&text).unwrap(), r);
        let newer = text.replace("\"version\":1", "\"version\":2");
        assert!(parse_record(&newer).unwrap_err().contains("newer nono"));
        assert!(parse_record("{\"version\":1").is_err());
        assert!(parse_record("").is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("build-42.x_y").is_ok());
        for bad in ["", "-x", "has space", "semi;colon", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        // Ids and what reads as one are refused; short hex and words are names.
        for bad in ["a3f7c2", "0011223344556677", "DEADBEEF"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        for good in ["cafe", "a3f7c", "a3f7c2-x", "beef-42"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
    }
}
