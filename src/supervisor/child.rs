//! Starting the session's program, and how the session contains it.
//!
//! With namespaces (`namespaces`): the supervisor clones an init into a new
//! user, PID and mount namespace. The init sets up the private view
//! (`sandbox::namespaces`), builds the Landlock ruleset there, starts the
//! program, reaps, forwards signals, reports the program's state changes
//! and exits with it. It dies with the supervisor (PDEATHSIG), and when it
//! dies the kernel kills every process of the namespace: nothing the
//! session started outlives it, even after `kill -9` of the supervisor.
//!
//! Without (`descendants`): the program is the supervisor's child; the
//! supervisor, a subreaper, ends every descendant it finds when the
//! session ends. A supervisor killed with -9 cannot do that.

use super::StartSpec;
use crate::procfs;
use crate::protocol::ExitStatus;
use crate::registry::SandboxInfo;
use crate::sandbox::{self, namespaces, Policy};
use crate::sys::{self, Confinement, Fork, PollFd, WaitStatus, POLLERR_ANY, POLLIN};
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How the session's processes are contained; the record's `containment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Containment {
    /// Own user, PID and mount namespaces under an init that dies with the supervisor.
    Namespaces,
    /// The supervisor ends every descendant it finds (no namespaces).
    Descendants,
}

impl Containment {
    /// The word in records and output.
    pub fn word(self) -> &'static str {
        match self {
            Containment::Namespaces => "namespaces",
            Containment::Descendants => "descendants",
        }
    }
}

/// A started program.
pub struct Spawned {
    /// The program's pid (outside any namespace): also its process group.
    pub program: libc::pid_t,
    /// The init whose death ends the session's namespace, when it has one.
    pub init: Option<libc::pid_t>,
    /// The init's reports of the program's state changes.
    pub reports: Option<UnixStream>,
    /// How the session is contained.
    pub containment: Containment,
    /// Why namespaces were not used, when they were wanted.
    pub fallback_reason: Option<String>,
    /// The sandbox as applied.
    pub sandbox: Option<SandboxInfo>,
    /// A temporary directory the supervisor made, to remove at the end.
    pub tmpdir: Option<String>,
    /// Every granted path with its access, as applied (for approvals).
    pub grants: Vec<(PathBuf, u8)>,
    /// The master of the program's terminal when the init made it in the
    /// session's own devpts instance (so it has a name there); it replaces
    /// the supervisor's.
    pub master: Option<OwnedFd>,
    /// The directories the program's private view masks (None: no view).
    pub masks: Option<Vec<PathBuf>>,
}

/// The applied policy's grants, for approvals.
fn grants_of(applied: &Policy) -> Vec<(PathBuf, u8)> {
    applied
        .rules
        .iter()
        .map(|r| (r.path.clone(), r.access))
        .collect()
}

/// Why the namespace path did not start the program.
enum NsFailure {
    /// The kernel (or a policy above us) refused a namespace step: fall back.
    Unavailable(String),
    /// The program could not be started at all: the launcher's status and message.
    Start(i32, String),
}

/// Start the program on the pty `slave`, contained as well as this kernel
/// allows. Errors carry the launcher's exit status and message.
/// `notify` (`--ask`) is installed by the program's own process, last.
pub fn spawn(
    spec: &StartSpec,
    slave: OwnedFd,
    notify: Option<sys::NotifySetup>,
) -> Result<Spawned, (i32, String)> {
    let Some(policy) = &spec.policy else {
        let confine = Confinement {
            notify,
            ..Confinement::default()
        };
        let program = spawn_direct(spec, slave, confine, None, None)?;
        return Ok(Spawned {
            master: None,
            masks: None,
            grants: Vec::new(),
            program,
            init: None,
            reports: None,
            containment: Containment::Descendants,
            fallback_reason: None,
            sandbox: None,
            tmpdir: None,
        });
    };
    let abi = sandbox::prepare(policy).map_err(|m| (1, m))?;
    let reason = match spawn_in_namespaces(spec, &slave, policy, abi, notify.as_ref()) {
        Ok(s) => return Ok(s),
        Err(NsFailure::Start(code, msg)) => return Err((code, msg)),
        Err(NsFailure::Unavailable(why)) => why,
    };
    if policy.require_namespaces {
        return Err((
            1,
            format!(
                "this session requires namespaces, but {reason}; nothing was started (unprivileged user namespaces may be disabled: see nono(1), CONTAINMENT)"
            ),
        ));
    }
    let mut policy = policy.clone();
    let dir = sandbox::make_tmpdir().map_err(|e| {
        (
            1,
            format!("cannot create the session's temporary directory: {e}"),
        )
    })?;
    let tmpdir = dir.display().to_string();
    policy.tmpdir = Some(dir);
    // Its own terminal, never the others of /dev/pts.
    if let Ok(tty) = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd())) {
        policy.grant(tty, sandbox::READ | sandbox::WRITE, "terminal");
    }
    let grants = grants_of(&sandbox::applied(&policy));
    let started = sandbox::confine(&policy)
        .map_err(|m| (1, m))
        .and_then(|(mut c, info)| {
            c.notify = notify;
            let p = spawn_direct(spec, slave, c, Some(&tmpdir), Some(&policy))?;
            Ok((p, info))
        });
    match started {
        Ok((program, info)) => Ok(Spawned {
            master: None,
            masks: None,
            grants,
            program,
            init: None,
            reports: None,
            containment: Containment::Descendants,
            fallback_reason: Some(reason),
            sandbox: Some(info),
            tmpdir: Some(tmpdir),
        }),
        Err(e) => {
            sandbox::remove_tmpdir(&tmpdir);
            Err(e)
        }
    }
}

/// The program's command: arguments, working directory, the pty as its
/// stdio, and its environment (TERM, TMPDIR, scrubbed of agent sockets).
fn command(
    spec: &StartSpec,
    slave: &OwnedFd,
    tmpdir: Option<&str>,
    policy: Option<&Policy>,
) -> io::Result<Command> {
    let mut cmd = Command::new(&spec.program);
    // argv[0] as typed, as a shell passes it.
    std::os::unix::process::CommandExt::arg0(&mut cmd, &spec.command[0]);
    cmd.args(&spec.command[1..])
        .current_dir(&spec.workdir)
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave.try_clone()?));
    if std::env::var_os("TERM").is_none_or(|t| t.is_empty()) {
        cmd.env("TERM", "xterm-256color");
    }
    if let Some(t) = tmpdir {
        cmd.env("TMPDIR", t);
    }
    if let Some(p) = policy {
        for name in p.env_dropped() {
            cmd.env_remove(name);
        }
    }
    Ok(cmd)
}

/// Exit status and message for a program that could not be started.
fn spawn_failure(program: &str, e: &io::Error, sandboxed: bool) -> (i32, String) {
    let code = match e.raw_os_error() {
        Some(libc::ENOENT) => 127,
        _ => 126,
    };
    let mut msg = format!("cannot run '{program}': {e}");
    if sandboxed && e.raw_os_error() == Some(libc::EACCES) {
        msg.push_str(
            " (the sandbox may not grant it: check 'nono run --dry-run', add -r PATH, or use --no-sandbox)",
        );
    }
    (code, msg)
}

/// Start the program as the supervisor's own child: a session leader on the
/// pty, confined by `confine`; exec failures come back with the real errno.
fn spawn_direct(
    spec: &StartSpec,
    slave: OwnedFd,
    confine: Confinement,
    tmpdir: Option<&str>,
    policy: Option<&Policy>,
) -> Result<libc::pid_t, (i32, String)> {
    let mut cmd = command(spec, &slave, tmpdir, policy)
        .map_err(|e| (1, format!("cannot set up the pty: {e}")))?;
    drop(slave);
    let sandboxed = !confine.is_empty();
    sys::make_session_leader_on_exec(&mut cmd, sys::getpid(), confine);
    match cmd.spawn() {
        Ok(child) => Ok(child.id() as libc::pid_t),
        Err(e) => Err(spawn_failure(&spec.command[0], &e, sandboxed)),
    }
}

/// Clone the session's init into new namespaces and wait for its report:
/// the program started, a namespace step failed, or the program could not
/// be started.
fn spawn_in_namespaces(
    spec: &StartSpec,
    slave: &OwnedFd,
    policy: &Policy,
    abi: u32,
    notify: Option<&sys::NotifySetup>,
) -> Result<Spawned, NsFailure> {
    let unavailable = |e: io::Error| NsFailure::Unavailable(format!("cannot set up: {e}"));
    let (ours, theirs) = UnixStream::pair().map_err(unavailable)?;
    let view = namespaces::plan(policy, &spec.workdir);
    let mut policy = policy.clone();
    // A shared /tmp: the program gets a private TMPDIR there, as without namespaces.
    let host_tmpdir = if view.private_tmp() {
        None
    } else {
        let dir = sandbox::make_tmpdir().map_err(|e| {
            NsFailure::Start(
                1,
                format!("cannot create the session's temporary directory: {e}"),
            )
        })?;
        policy.tmpdir = Some(dir.clone());
        Some(dir.display().to_string())
    };
    let tmpdir = host_tmpdir.clone().unwrap_or_else(|| "/tmp".into());
    let mut applied = sandbox::applied(&policy);
    namespaces::private_grants(&mut applied, &view);
    // SAFETY: the supervisor is single-threaded.
    let init = match unsafe { sys::clone_into(sys::SESSION_NAMESPACES) } {
        Err(e) => {
            if let Some(t) = &host_tmpdir {
                sandbox::remove_tmpdir(t);
            }
            return Err(NsFailure::Unavailable(format!(
                "the kernel refused new namespaces: {e}"
            )));
        }
        Ok(Fork::Child) => {
            drop(ours);
            let plan = InitPlan {
                spec,
                view: &view,
                applied: &applied,
                abi,
                tmpdir: &tmpdir,
                notify,
            };
            init_main(theirs, slave, &plan)
        }
        Ok(Fork::Parent(pid)) => pid,
    };
    drop(theirs);
    let mut reader = BufReader::new(ours);
    let _ = reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(
            crate::defaults::NAMESPACE_SETUP_TIMEOUT_MS,
        )));
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    let line = line.trim_end();
    let failed = |f: NsFailure| {
        let _ = sys::kill(init, libc::SIGKILL);
        let _ = sys::wait_exit(init);
        if let Some(t) = &host_tmpdir {
            sandbox::remove_tmpdir(t);
        }
        Err(f)
    };
    if let Some(why) = line.strip_prefix("unavailable ") {
        return failed(NsFailure::Unavailable(why.to_string()));
    }
    if let Some(rest) = line.strip_prefix("err ") {
        let (code, msg) = rest.split_once(' ').unwrap_or(("1", rest));
        return failed(NsFailure::Start(code.parse().unwrap_or(1), msg.to_string()));
    }
    if line != "ready" {
        return failed(NsFailure::Start(
            1,
            "the session's init ended during setup".into(),
        ));
    }
    let Some(program) = procfs::children(init).first().copied() else {
        return failed(NsFailure::Start(
            1,
            "the program ended before it could be recorded".into(),
        ));
    };
    let mut reports = reader.into_inner();
    if reports.write_all(b"g").is_err() {
        return failed(NsFailure::Start(
            1,
            "the session's init ended during setup".into(),
        ));
    }
    // The program's terminal, made by the init in the session's devpts.
    let mut fds = [PollFd::new(reports.as_raw_fd(), POLLIN)];
    let timeout = crate::defaults::NAMESPACE_SETUP_TIMEOUT_MS as i32;
    let master = match sys::poll(&mut fds, timeout) {
        Ok(1) => sys::recv_fd(reports.as_raw_fd()),
        _ => Err(io::ErrorKind::TimedOut.into()),
    };
    let master = match master {
        Ok(m) => m,
        Err(e) => {
            return failed(NsFailure::Start(
                1,
                format!("the session's init did not hand over the terminal: {e}"),
            ))
        }
    };
    let _ = reports.set_read_timeout(None);
    let _ = reports.set_nonblocking(true);
    Ok(Spawned {
        program,
        init: Some(init),
        reports: Some(reports),
        containment: Containment::Namespaces,
        fallback_reason: None,
        sandbox: Some(sandbox::info(&applied, abi, Some(tmpdir))),
        tmpdir: host_tmpdir,
        grants: grants_of(&applied),
        master: Some(master),
        masks: Some(view.masks.clone()),
    })
}

/// What the init needs, prepared by the supervisor before the clone.
struct InitPlan<'a> {
    /// What to start.
    spec: &'a StartSpec,
    /// The private view to set up.
    view: &'a namespaces::View,
    /// The policy with the private grants, resolved again inside the view.
    applied: &'a Policy,
    /// The Landlock ABI to use.
    abi: u32,
    /// The program's TMPDIR.
    tmpdir: &'a str,
    /// `--ask`: the approval filter and socket, for the program's process.
    notify: Option<&'a sys::NotifySetup>,
}

/// The session's init: pid 1 of the session's namespaces. Sets up the
/// view, starts the program, then reaps every process, forwards signals to
/// the program and reports its state changes until it ends; exits with it.
fn init_main(report: UnixStream, slave: &OwnedFd, plan: &InitPlan) -> ! {
    let fd = report.as_raw_fd();
    // Nothing of the supervisor's stays open here but what we use.
    let mut keep = vec![fd, slave.as_raw_fd()];
    keep.extend(plan.notify.map(|n| n.sock.as_raw_fd()));
    let _ = sys::close_others(&keep);
    let mut report = report;
    let mut say = |line: &str| {
        let _ = report.write_all(format!("{}\n", line.replace('\n', " ")).as_bytes());
    };
    let all = sys::SigSet::full();
    // Signals are taken with sigwait; the supervisor's handlers must not
    // run here, nor in the program before its exec.
    if sys::block_signals(&all).is_err()
        || sys::reset_signal_handlers().is_err()
        || sys::set_parent_death_signal(libc::SIGKILL).is_err()
    {
        say("unavailable cannot prepare the session's init");
        sys::exit_now(1);
    }
    // The supervisor may have died before the death signal was armed.
    if supervisor_gone(fd) {
        sys::exit_now(1);
    }
    if let Err(m) = namespaces::enter(plan.view) {
        say(&format!("unavailable {m}"));
        sys::exit_now(1);
    }
    let mut confine = match sandbox::confinement(plan.applied, plan.abi) {
        Ok(c) => c,
        Err(m) => {
            say(&format!("err 1 {m}"));
            sys::exit_now(1);
        }
    };
    confine.drop_capabilities = true;
    // The approval hook runs in the program's process (see sys::make_session_leader_on_exec).
    if let Some(n) = plan.notify {
        match n.sock.try_clone() {
            Ok(sock) => {
                confine.notify = Some(sys::NotifySetup {
                    filter: n.filter.clone(),
                    sock,
                })
            }
            Err(e) => {
                say(&format!("err 1 cannot pass the approval socket: {e}"));
                sys::exit_now(1);
            }
        }
    }
    // The session's terminal, from its own devpts instance, the size of the
    // supervisor's: the program finds its name there (tty, GPG_TTY).
    let size = sys::get_winsize(slave.as_raw_fd()).unwrap_or(sys::WinSize::cells(24, 80));
    let (master, own_slave) = match sys::open_pty(size) {
        Ok(pair) => pair,
        Err(e) => {
            say(&format!(
                "unavailable cannot open a terminal in the session's devpts: {e}"
            ));
            sys::exit_now(1);
        }
    };
    let mut cmd = match command(plan.spec, &own_slave, Some(plan.tmpdir), Some(plan.applied)) {
        Ok(c) => c,
        Err(e) => {
            say(&format!("err 1 cannot set up the pty: {e}"));
            sys::exit_now(1);
        }
    };
    sys::make_session_leader_on_exec(&mut cmd, 1, confine);
    let program = match cmd.spawn() {
        Ok(child) => child.id() as libc::pid_t,
        Err(e) => {
            let (code, msg) = spawn_failure(&plan.spec.command[0], &e, true);
            say(&format!("err {code} {msg}"));
            sys::exit_now(1);
        }
    };
    drop(cmd);
    drop(own_slave);
    say("ready");
    // Not reaped until the supervisor has found the program's pid (an
    // unreaped program that already exited is still listed, as a zombie).
    let mut go = [0u8; 1];
    if !matches!(sys::read(fd, &mut go), Ok(1)) || sys::send_fd(fd, master.as_raw_fd()).is_err() {
        sys::exit_now(1);
    }
    drop(master);
    loop {
        let Ok(sig) = sys::wait_signal(&all) else {
            continue;
        };
        if sig != libc::SIGCHLD {
            let _ = sys::kill(program, sig);
            continue;
        }
        while let Ok(Some((pid, st))) = sys::wait_nohang(-1) {
            if pid != program {
                continue;
            }
            match st {
                WaitStatus::Stopped(s) => say(&format!("stopped {s}")),
                WaitStatus::Continued => say("continued"),
                WaitStatus::Exited(c) => {
                    say(&format!("exit {c}"));
                    sys::exit_now(c);
                }
                WaitStatus::Signaled(s) => {
                    say(&format!("signal {s}"));
                    sys::exit_now(128 + s);
                }
            }
        }
    }
}

/// Whether the supervisor's end of `fd` (a socket pair) is closed.
fn supervisor_gone(fd: i32) -> bool {
    let mut fds = [PollFd::new(fd, POLLIN)];
    matches!(sys::poll(&mut fds, 0), Ok(1) if fds[0].revents() & POLLERR_ANY != 0)
}

/// One report of the init, as the supervisor reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// The program was stopped by this signal.
    Stopped(i32),
    /// The program continued.
    Continued,
    /// The program ended.
    Ended(ExitStatus),
}

/// Decode one report line.
pub fn parse_report(line: &str) -> Option<Report> {
    let (word, n) = line.split_once(' ').unwrap_or((line, ""));
    let n = n.parse::<i32>();
    match (word, n) {
        ("stopped", Ok(s)) => Some(Report::Stopped(s)),
        ("continued", _) => Some(Report::Continued),
        ("exit", Ok(c)) => Some(Report::Ended(ExitStatus::Code(c))),
        ("signal", Ok(s)) => Some(Report::Ended(ExitStatus::Signal(s))),
        _ => None,
    }
}

/// Kill every descendant of this process (the supervisor, a subreaper, so
/// orphans of the session are among them) until none is left; bounded so
/// a fork bomb cannot keep us here. Returns how many were signalled.
pub fn kill_descendants() -> usize {
    let me = sys::getpid();
    // Distinct pids: one still dying when the next pass looks is found again.
    let mut killed: Vec<i32> = Vec::new();
    for _ in 0..crate::defaults::KILL_DESCENDANTS_ROUNDS {
        let found = procfs::descendants(me);
        if found.is_empty() {
            break;
        }
        for pid in &found {
            let _ = sys::kill(*pid, libc::SIGKILL);
            if !killed.contains(pid) {
                killed.push(*pid);
            }
        }
        // Not reaped here: the program's status is the caller's to collect
        // (the scan skips zombies).
    }
    killed.len()
}

/// Whether `pid` ignores SIGTERM (an interactive shell does): its
/// `/proc/<pid>/status` SigIgn mask.
pub fn ignores_sigterm(pid: libc::pid_t) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
}

/// SIGKILL every process of a session: its init (the kernel ends the
/// namespace with it), or the program's group and every descendant.
pub fn kill_all(init: Option<libc::pid_t>, program: libc::pid_t) {
    match init {
        Some(init) => {
            let _ = sys::kill(init, libc::SIGKILL);
        }
        None => {
            let _ = sys::killpg(program, libc::SIGKILL);
            kill_descendants();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_reports_decode_and_junk_is_ignored() {
        assert_eq!(parse_report("stopped 19"), Some(Report::Stopped(19)));
        assert_eq!(parse_report("continued"), Some(Report::Continued));
        assert_eq!(
            parse_report("exit 3"),
            Some(Report::Ended(ExitStatus::Code(3)))
        );
        assert_eq!(
            parse_report("signal 9"),
            Some(Report::Ended(ExitStatus::Signal(9)))
        );
        for junk in ["", "exit", "exit x", "stopped", "ready", "signal 9 9"] {
            assert_eq!(parse_report(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn our_own_sigterm_disposition_is_read_from_proc() {
        // The test process does not ignore SIGTERM; pid 0 does not exist.
        assert!(!ignores_sigterm(sys::getpid()));
        assert!(!ignores_sigterm(0));
    }
}
