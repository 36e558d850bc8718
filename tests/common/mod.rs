//! Test harness: a private HOME per test, the real `nono` binary, and a real
//! pty to drive it as a user would. Dropping an `Env` kills every session
//! it started, so tests leave no process behind.
#![allow(dead_code)]

use nono::registry::Record;
use nono::sys::{self, PollFd, WinSize, POLLIN};
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Generous upper bound for anything a test waits on; tests normally
/// finish far sooner (they wait on conditions, not on this).
pub const WAIT: Duration = Duration::from_secs(20);

/// Path of the binary under test.
pub fn bin() -> PathBuf {
    std::env::var_os("NONO_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_nono")))
}

/// Poll `cond` until it holds or `timeout` passes; panics with `what`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether process `pid` exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A real unprivileged account the tests act as, because root is not the
/// case that matters: `nono-test`, created with `useradd` on first use.
#[derive(Clone, Copy, Debug)]
pub struct User {
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

/// Name of the account `test_user` creates.
pub const TEST_USER: &str = "nono-test";

/// Whether this process can become another user and hand it files: root
/// with CAP_SETUID, CAP_SETGID and CAP_CHOWN, in a user namespace that maps
/// other uids (inside a nono session, root has neither).
pub fn can_act_as_others() -> bool {
    if sys::geteuid() != 0 {
        return false;
    }
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    // CAP_CHOWN (0), CAP_SETGID (6), CAP_SETUID (7), from capability.h.
    let needed: u64 = (1 << 0) | (1 << 6) | (1 << 7);
    // "0 0 4294967295" is the initial namespace; a session maps one uid.
    let mapped = fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.lines().any(|l| l.split_whitespace().nth(2) != Some("1")))
        .unwrap_or(false);
    caps & needed == needed && mapped
}

/// Whether sessions started by this test process get their own
/// namespaces: not when it runs inside a nono session itself (`make test`
/// from `make run`'s shell), where user namespaces are switched off.
pub fn user_namespaces_available() -> bool {
    Command::new("unshare")
        .args(["--user", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The containment a sandboxed session started by this test gets.
pub fn expected_containment() -> &'static str {
    if user_namespaces_available() {
        "namespaces"
    } else {
        "descendants"
    }
}

/// The unprivileged test account, created if missing (needs root); None
/// when it neither exists nor can be created, or when this process cannot
/// act as it (`can_act_as_others`), so the caller can skip with a printed
/// reason. Safe to call from parallel tests and processes.
pub fn test_user() -> Option<User> {
    if !can_act_as_others() {
        return None;
    }
    let lookup = || {
        let o = Command::new("id").args(["-u", TEST_USER]).output().ok()?;
        let g = Command::new("id").args(["-g", TEST_USER]).output().ok()?;
        if !o.status.success() || !g.status.success() {
            return None;
        }
        let uid = String::from_utf8_lossy(&o.stdout).trim().parse().ok()?;
        let gid = String::from_utf8_lossy(&g.stdout).trim().parse().ok()?;
        Some(User { uid, gid })
    };
    if let Some(u) = lookup() {
        return Some(u);
    }
    // A parallel test may win the race; useradd then fails and the lookup
    // below finds the account it made.
    let _ = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/bin/sh",
            TEST_USER,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    lookup()
}

/// A private HOME with XDG directories for one test.
pub struct Env {
    /// The temporary home directory.
    pub home: PathBuf,
    /// Who the commands run as (None: as the test process itself).
    pub user: Option<User>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Env {
    /// A fresh, empty environment.
    pub fn new() -> Env {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let home = std::env::temp_dir().join(format!("nono-t{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&home);
        fs::create_dir_all(&home).unwrap();
        Env { home, user: None }
    }

    /// A fresh environment owned by `user` (mode 0700), whose commands
    /// (`cmd`, `sh`, `tool`, `run`, `start`, `spawn_pty`) run as that user.
    pub fn for_user(user: User) -> Env {
        use std::os::unix::fs::PermissionsExt;
        let mut env = Env::new();
        std::os::unix::fs::chown(&env.home, Some(user.uid), Some(user.gid)).unwrap();
        fs::set_permissions(&env.home, fs::Permissions::from_mode(0o700)).unwrap();
        env.user = Some(user);
        env
    }

    /// The registry's sessions directory.
    pub fn sessions_dir(&self) -> PathBuf {
        self.home.join("state/nono/sessions")
    }

    /// A `nono` command with this environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args);
        self.apply(&mut c);
        c
    }

    /// `/bin/sh -c SCRIPT ARGS...` with this environment (`$0` is the first arg).
    pub fn sh(&self, script: &str, args: &[&str]) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script).args(args);
        self.apply(&mut c);
        c
    }

    /// Any program with this environment, and `nono` (the binary under
    /// test) first on its PATH, as an installed nono would be.
    pub fn tool(&self, program: &str, args: &[&str]) -> Command {
        let dir = self.home.join("bin");
        let link = dir.join("nono");
        if !link.exists() {
            fs::create_dir_all(&dir).unwrap();
            let target = fs::canonicalize(bin()).unwrap_or_else(|_| bin());
            std::os::unix::fs::symlink(target, &link).unwrap();
        }
        let mut path = std::ffi::OsString::from(&dir);
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        let mut c = Command::new(program);
        c.args(args);
        self.apply(&mut c);
        c.env("PATH", path);
        c
    }

    /// Give `c` this environment: nothing inherited but PATH.
    fn apply(&self, c: &mut Command) {
        if let Some(u) = self.user {
            use std::os::unix::process::CommandExt;
            // std drops supplementary groups when root sets a uid.
            c.uid(u.uid).gid(u.gid);
        }
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_STATE_HOME", self.home.join("state"))
            .env("XDG_CONFIG_HOME", self.home.join("config"))
            .env("TERM", "xterm-256color")
            .current_dir(&self.home);
    }

    /// Run `nono ARGS` to completion with no terminal and empty stdin.
    pub fn run(&self, args: &[&str]) -> Out {
        let o = self
            .cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("run nono");
        Out::from(o)
    }

    /// Start a detached session; returns its short id.
    pub fn start(&self, args: &[&str]) -> String {
        let mut full = vec!["run", "--detached"];
        full.extend_from_slice(args);
        let o = self.run(&full);
        assert_eq!(o.code, 0, "start failed: {o:?}");
        let first = o.stdout.lines().next().unwrap_or_default().to_string();
        let id = first
            .strip_prefix("Started detached session ")
            .and_then(|s| s.strip_suffix('.'))
            .unwrap_or_else(|| panic!("unexpected start output: {o:?}"));
        id.to_string()
    }

    /// Every record in the registry (parsed with the library's own parser).
    pub fn records(&self) -> Vec<Record> {
        let Ok(entries) = fs::read_dir(self.sessions_dir()) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            // The library's reader: no symlinks, no FIFOs, bounded size.
            .filter_map(|e| nono::registry::read_small_file(&e.path(), false).ok())
            .filter_map(|t| nono::registry::parse_record(&t).ok())
            .collect()
    }

    /// The record of the session whose id starts with `prefix`.
    pub fn record(&self, prefix: &str) -> Record {
        let mut hits: Vec<Record> = self
            .records()
            .into_iter()
            .filter(|r| r.id.starts_with(prefix))
            .collect();
        assert_eq!(hits.len(), 1, "records matching {prefix}");
        hits.remove(0)
    }

    /// Wait until the record of `prefix` satisfies `cond`.
    pub fn wait_record(&self, prefix: &str, what: &str, cond: impl Fn(&Record) -> bool) -> Record {
        let mut last = None;
        wait_until(what, WAIT, || {
            let r = self.record(prefix);
            let ok = cond(&r);
            last = Some(r);
            ok
        });
        last.unwrap()
    }

    /// Spawn `nono ARGS` on a new pty of the given size, as a user at a terminal would.
    pub fn spawn_pty(&self, args: &[&str], rows: u16, cols: u16) -> Pty {
        Pty::spawn(self.cmd(args), rows, cols)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for r in self.records() {
            if r.status != "exited" && alive(r.supervisor_pid) {
                let _ = sys::kill(r.supervisor_pid, libc::SIGKILL);
            }
            if let Some(c) = r.child_pid {
                if r.status != "exited" && alive(c) {
                    let _ = sys::killpg(c, libc::SIGKILL);
                }
            }
            // A supervisor killed above leaves its sandbox's TMPDIR behind.
            if let Some(t) = r.sandbox.as_ref().and_then(|s| s.tmpdir.as_ref()) {
                if r.status != "exited" {
                    wait_until("the supervisor to die", WAIT, || !alive(r.supervisor_pid));
                    nono::sandbox::remove_tmpdir(t);
                    // That removes only our own; the test user's is left to us.
                    if let Some(u) = self.user {
                        remove_users_tmpdir(Path::new(t), u);
                    }
                }
            }
        }
        let _ = fs::remove_dir_all(&self.home);
    }
}

/// Remove a session's TMPDIR that `user` owns, as nono would: only a
/// `nono-*` directory (not a symlink) directly in the temp dir.
fn remove_users_tmpdir(t: &Path, user: User) {
    use std::os::unix::fs::MetadataExt;
    let named = t
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("nono-"));
    let in_tmp = t.parent() == Some(std::env::temp_dir().as_path());
    let theirs = fs::symlink_metadata(t).is_ok_and(|m| m.is_dir() && m.uid() == user.uid);
    if named && in_tmp && theirs {
        let _ = fs::remove_dir_all(t);
    }
}

/// A finished command's status and output.
#[derive(Debug)]
pub struct Out {
    /// Exit status (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A process running on a pty we hold the master of.
pub struct Pty {
    /// Our end.
    pub master: OwnedFd,
    /// The process.
    pub child: Child,
    /// Everything it printed so far.
    pub out: Vec<u8>,
    /// Its exit code once known.
    status: Option<i32>,
}

impl Pty {
    /// Start `cmd` as a session leader with a new pty as its controlling terminal.
    pub fn spawn(cmd: Command, rows: u16, cols: u16) -> Pty {
        Pty::spawn_confined(cmd, rows, cols, sys::Confinement::default())
    }

    /// `spawn`, with `confine` applied to the process before exec (tests
    /// use it to take kernel features away from nono).
    pub fn spawn_confined(
        mut cmd: Command,
        rows: u16,
        cols: u16,
        confine: sys::Confinement,
    ) -> Pty {
        let (master, slave) = sys::open_pty(WinSize::cells(rows, cols)).expect("openpty");
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        sys::make_session_leader_on_exec(&mut cmd, sys::getpid(), confine);
        let child = cmd.spawn().expect("spawn on pty");
        sys::set_nonblocking(master.as_raw_fd(), true).unwrap();
        Pty {
            master,
            child,
            out: Vec::new(),
            status: None,
        }
    }

    /// Type bytes.
    pub fn send(&mut self, mut bytes: &[u8]) {
        let deadline = Instant::now() + WAIT;
        while !bytes.is_empty() {
            match sys::write(self.master.as_raw_fd(), bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "pty input is stuck");
                    self.pump(10);
                }
                Err(e) => panic!("write to pty: {e}"),
            }
        }
    }

    /// Read whatever is available, waiting up to `ms` for something to arrive.
    pub fn pump(&mut self, ms: i32) {
        let mut fds = [PollFd::new(self.master.as_raw_fd(), POLLIN)];
        let _ = sys::poll(&mut fds, ms);
        let mut buf = [0u8; 65536];
        while let Ok(n) = sys::read(self.master.as_raw_fd(), &mut buf) {
            if n == 0 {
                break;
            }
            self.out.extend_from_slice(&buf[..n]);
        }
    }

    /// Output so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }

    /// Wait until the output contains `needle`.
    pub fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.text().contains(needle) {
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {needle:?}; output so far: {:?}",
                    self.text()
                );
            }
            self.pump(50);
        }
    }

    /// Wait up to `timeout` for `needle` to appear in output arriving from now on.
    pub fn expect_new(&mut self, needle: &str, timeout: Duration) -> bool {
        let start = self.out.len();
        let deadline = Instant::now() + timeout;
        loop {
            if String::from_utf8_lossy(&self.out[start..]).contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            self.pump(20);
        }
    }

    /// Number of times `needle` occurs in the output.
    pub fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }

    /// Wait for the process to exit, draining its output; returns the exit code.
    pub fn wait(&mut self) -> i32 {
        if let Some(s) = self.status {
            return s;
        }
        let deadline = Instant::now() + WAIT;
        loop {
            self.pump(20);
            if let Some(st) = self.child.try_wait().unwrap() {
                self.pump(0);
                let code = st.code().unwrap_or(-1);
                self.status = Some(code);
                return code;
            }
            if Instant::now() > deadline {
                panic!("nono did not exit; output: {:?}", self.text());
            }
        }
    }

    /// Change the terminal size (the kernel sends SIGWINCH to the client).
    pub fn resize(&self, rows: u16, cols: u16) {
        sys::set_winsize(self.master.as_raw_fd(), WinSize::cells(rows, cols)).unwrap();
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A python3 that any uid can run (pyenv shims under /root are not).
pub fn python() -> Option<PathBuf> {
    let found = ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    // CI installs python3: there a missing one is a failure, not a skip.
    assert!(
        found.is_some() || std::env::var_os("CI").is_none(),
        "python3 is missing; .ci/run installs it"
    );
    found
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Live (non-zombie) processes in process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                let f: Vec<&str> = s
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect();
                f.first() != Some(&"Z") && f.get(2) == Some(&pgid.to_string().as_str())
            })
        })
        .collect()
}

/// Remove a path whatever it is (file, dir, symlink).
pub fn remove_any(p: &Path) {
    let _ = fs::remove_file(p).or_else(|_| fs::remove_dir_all(p));
}
