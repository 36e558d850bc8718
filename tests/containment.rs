//! Containment on the real kernel, as the real unprivileged user: nothing a
//! session starts outlives it (after `nono stop`, after `kill -9` of the
//! supervisor, and without namespaces), a stop ends a shell as a hangup
//! would, the program sees a private /tmp, /dev/shm, /proc and terminals
//! and none of the user's, agent variables are scrubbed, and a profile the
//! program could edit is refused. Each promise is tested by doing what an
//! attacker inside would do.

mod common;

use common::{alive, test_user, Env, Pty, User, WAIT};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The unprivileged user, or None (printed) when it cannot be had.
fn user() -> Option<User> {
    let u = test_user();
    if u.is_none() {
        eprintln!(
            "skipped: no unprivileged test user (needs root to create {})",
            common::TEST_USER
        );
    }
    u
}

static TOKENS: AtomicUsize = AtomicUsize::new(0);

/// A number no other process on the machine has as an argument, for
/// `sleep TOKEN`: the processes of a session are found by it from outside
/// (their pids inside a namespace mean nothing here).
fn token() -> String {
    let n = TOKENS.fetch_add(1, Ordering::SeqCst);
    format!("7{:07}{n:02}", std::process::id())
}

/// Live processes (as seen from here) one of whose arguments starts with `token`.
fn procs_with(token: &str) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|&b| b == 0)
                    .any(|a| a.starts_with(token.as_bytes()))
            }) && alive(pid)
        })
        .collect()
}

/// A directory in the user's home, owned by them.
fn user_dir(env: &Env, name: &str) -> PathBuf {
    let p = env.home.join(name);
    fs::create_dir_all(&p).unwrap();
    if let Some(u) = env.user {
        std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
    }
    p
}

/// A shell script that leaves behind every kind of escapee: a setsid
/// double-forked daemon, a nohup'ed grandchild, and background jobs
/// (one a pipeline), each a `sleep T.N`; then waits.
fn escapees(t: &str) -> String {
    format!(
        "setsid sh -c 'sleep {t}.1 & exit' ; nohup sleep {t}.2 >/dev/null 2>&1 & \
         sleep {t}.3 & sleep {t}.4 | cat & echo started; wait"
    )
}

/// Wait until all four escapees of `t` run.
fn wait_escapees(t: &str) {
    common::wait_until("the session's processes to start", WAIT, || {
        procs_with(t).len() == 4
    });
}

#[test]
fn nono_stop_ends_every_process_the_session_started() {
    let Some(u) = user() else { return };
    let env = Env::for_user(u);
    let t = token();
    let id = env.start(&["--", "sh", "-c", &escapees(&t)]);
    wait_escapees(&t);
    let r = env.record(&id);
    assert_eq!(r.containment.as_deref(), Some("namespaces"), "{r:?}");
    let o = env.run(&["stop", &id]);
    assert_eq!(o.code, 0, "{o:?}");
    common::wait_until("every escapee to end", WAIT, || procs_with(&t).is_empty());
}

#[test]
fn kill_9_of_the_supervisor_ends_every_process_the_session_started() {
    let Some(u) = user() else { return };
    let env = Env::for_user(u);
    let t = token();
    let id = env.start(&["--", "sh", "-c", &escapees(&t)]);
    wait_escapees(&t);
    let r = env.record(&id);
    nono::sys::kill(r.supervisor_pid, libc::SIGKILL).unwrap();
    common::wait_until("every escapee to end", WAIT, || procs_with(&t).is_empty());
}

/// What makes this kernel seem to refuse user namespaces (a container's
/// seccomp profile, say) for nono and everything it starts.
fn no_user_namespaces() -> nono::sys::Confinement {
    nono::sys::Confinement {
        seccomp: Some(nono::sandbox::seccomp::no_user_namespaces_filter()),
        ..Default::default()
    }
}

/// Run `nono ARGS` on a terminal, under `no_user_namespaces`; exit status and output.
fn run_without_namespaces(env: &Env, args: &[&str]) -> (i32, String) {
    let mut pty = Pty::spawn_confined(env.cmd(args), 24, 200, no_user_namespaces());
    let code = pty.wait();
    (code, pty.text().replace("\r\n", "\n"))
}

/// Start `sh -c SCRIPT` detached where user namespaces are refused; its id.
fn start_without_namespaces(env: &Env, script: &str) -> String {
    let (code, text) = run_without_namespaces(env, &["run", "-d", "--", "sh", "-c", script]);
    assert_eq!(code, 0, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Started detached session "))
        .and_then(|s| s.strip_suffix('.'))
        .unwrap_or_else(|| panic!("{text}"))
        .to_string()
}

#[test]
fn without_namespaces_nono_stop_still_ends_every_descendant() {
    let Some(u) = user() else { return };
    let env = Env::for_user(u);
    for force in [false, true] {
        let t = token();
        let id = start_without_namespaces(&env, &escapees(&t));
        wait_escapees(&t);
        let r = env.record(&id);
        assert_eq!(r.containment.as_deref(), Some("descendants"), "{r:?}");
        let events = env.run(&["inspect", "--events", &id]).stdout;
        assert!(events.contains("no namespaces"), "{events}");
        let o = if force {
            env.run(&["stop", "--force", &id])
        } else {
            env.run(&["stop", &id])
        };
        assert_eq!(o.code, 0, "{o:?}");
        assert!(o.stdout.contains("Stopped session"), "{o:?}");
        common::wait_until("every escapee to end", WAIT, || procs_with(&t).is_empty());
    }
}

#[test]
fn a_session_that_requires_namespaces_does_not_start_without_them() {
    let Some(u) = user() else { return };
    let env = Env::for_user(u);
    let (code, text) =
        run_without_namespaces(&env, &["run", "--require-namespaces", "--", "echo", "RAN"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("requires namespaces"), "{text}");
    assert!(!text.contains("RAN"), "{text}");
    assert!(env.records().is_empty(), "a session was recorded");
}

#[test]
fn nono_stop_hangs_up_an_interactive_shell_and_its_jobs_without_sigkill() {
    let Some(u) = user() else { return };
    let env = Env::for_user(u);
    let t = token();
    let mut pty = env.spawn_pty(
        &["run", "-n", "shell", "--", "bash", "--norc", "-i"],
        24,
        100,
    );
    pty.send(format!("sleep {t}.1 & sleep {t}.2 | cat &\n").as_bytes());
    common::wait_until("the shell's jobs to start", WAIT, || {
        procs_with(&t).len() == 2
    });
    let r = env.record("");
    let child = r.child_pid.unwrap();
    let o = env.run(&["stop", "shell"]);
    assert_eq!(o.code, 0, "{o:?}");
    pty.wait();
    let r = env.wait_record("", "the session to end", |r| r.status == "exited");
    assert_eq!(r.exit_signal, Some(libc::SIGHUP), "{r:?}");
    let events = env.run(&["inspect", "--events", "shell"]).stdout;
    assert!(events.contains("SIGHUP"), "{events}");
    assert!(!events.contains("grace period over"), "{events}");
    assert!(!alive(child));
    common::wait_until("the jobs to end", WAIT, || procs_with(&t).is_empty());
}

#[test]
fn a_program_that_handles_sigterm_gets_sigterm_first() {
    let Some(u) = user() else { return };
    let env = Env::for_user(u);
    let id = env.start(&[
        "--",
        "sh",
        "-c",
        "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done",
    ]);
    env.wait_record(&id, "the program to run", |r| r.status == "running");
    common::wait_until("the trap to be set", WAIT, || {
        env.run(&["logs", &id]).stdout.contains("ready")
    });
    let o = env.run(&["stop", &id]);
    assert_eq!(o.code, 0, "{o:?}");
    let r = env.wait_record(&id, "the session to end", |r| r.status == "exited");
    assert_eq!(r.exit_code, Some(7), "{r:?}");
    assert!(env.run(&["logs", &id]).stdout.contains("got TERM"));
}

/// Run `sh -c SCRIPT` in an attached session as the env's user, from
/// `cwd`, with extra nono flags; exit status and screen text.
fn inside(env: &Env, cwd: &Path, flags: &[&str], script: &str) -> (i32, String) {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    let mut cmd = env.cmd(&args);
    cmd.current_dir(cwd);
    let mut pty = Pty::spawn(cmd, 24, 200);
    let code = pty.wait();
    (code, pty.text().replace("\r\n", "\n"))
}

#[test]
fn the_operators_terminal_cannot_be_opened_but_new_terminals_work() {
    let Some(u) = user() else { return };
    let env = Env::for_user(u);
    let home = env.home.clone();
    // The operator's shell terminal, which the user can open outside.
    let (master, slave) = nono::sys::open_pty(nono::sys::WinSize::cells(24, 80)).unwrap();
    std::os::unix::fs::fchown(&slave, Some(u.uid), Some(u.gid)).unwrap();
    let name = fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&slave)
    ))
    .unwrap();
    let name = name.to_str().unwrap();
    let attack = format!("printf 'PWNED' > {name} && echo OPENED; echo done");
    let (code, text) = inside(&env, &home, &[], &attack);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("done"), "{text}");
    // (The session's own terminal is /dev/pts/0 of its instance: that one opens.)
    assert!(name.ends_with("/0") || !text.contains("OPENED"), "{text}");
    nono::sys::set_nonblocking(std::os::fd::AsRawFd::as_raw_fd(&master), true).unwrap();
    let mut buf = [0u8; 64];
    let got = nono::sys::read(std::os::fd::AsRawFd::as_raw_fd(&master), &mut buf);
    assert!(
        !matches!(got, Ok(n) if n > 0),
        "bytes reached the operator's terminal"
    );

    // The session's own terminal has a name in its devpts instance.
    let (code, text) = inside(&env, &home, &[], "tty");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");

    let Some(py) = common::python() else { return };
    let script = format!(
        "script -qc true /dev/null && echo SCRIPT-OK; \
         {} -c 'import pty, sys; sys.exit(pty.spawn([\"true\"]))' && echo PTY-OK",
        py.display()
    );
    let (code, text) = inside(&env, &home, &[], &script);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("SCRIPT-OK") && text.contains("PTY-OK"),
        "{text}"
    );
}

#[test]
fn tmp_and_shared_memory_are_private_and_vanish_with_the_session() {
    let Some(u) = user() else { return };
    let Some(py) = common::python() else { return };
    let env = Env::for_user(u);
    let t = token();
    let marker = format!("/tmp/nono-marker-{t}");
    let script = format!(
        "echo x > {marker} && cat {marker} >/dev/null && echo TMP-OK; \
         {} -c 'import multiprocessing; multiprocessing.Lock(); print(\"LOCK-OK\")'",
        py.display()
    );
    // From outside /tmp: with the working directory (or a grant) under
    // /tmp, the host's stays visible (and ungranted) and $TMPDIR is private.
    let root = Path::new("/");
    let (code, text) = inside(&env, root, &[], &script);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("TMP-OK") && text.contains("LOCK-OK"),
        "{text}"
    );
    assert!(
        !Path::new(&marker).exists(),
        "the session wrote the user's /tmp"
    );
    let (_, text) = inside(&env, root, &[], &format!("test -e {marker} || echo GONE"));
    assert!(text.contains("GONE"), "{text}");
}

#[test]
fn proc_shows_only_the_sessions_processes() {
    let Some(u) = user() else { return };
    let env = Env::for_user(u);
    let home = env.home.clone();
    let (code, text) = inside(
        &env,
        &home,
        &[],
        "echo \"PIDS $(ls /proc | grep -c '^[0-9]')\"",
    );
    assert_eq!(code, 0, "{text}");
    let n: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("PIDS "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    // The init, the shell, ls and grep.
    assert!(n <= 5, "{n} processes visible: {text}");
}

/// A listening Unix socket at `path`, made by the user (as an agent or a
/// bus would be); it is closed when dropped.
fn listen_as(u: User, path: &Path) -> std::process::Child {
    let py = common::python().expect("python3");
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(py);
    c.args([
        "-c",
        "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); print('up', flush=True); time.sleep(600)",
        path.to_str().unwrap(),
    ])
    .uid(u.uid)
    .gid(u.gid)
    .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "up");
    child
}

#[test]
fn sockets_in_the_state_config_and_runtime_directories_are_out_of_reach() {
    let Some(u) = user() else { return };
    let Some(py) = common::python() else { return };
    let env = Env::for_user(u);
    let home = env.home.clone();
    let mut socks = Vec::new();
    let mut listeners = Vec::new();
    for dir in ["state", "config"] {
        let d = user_dir(&env, dir).join("nono");
        fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(u.uid), Some(u.gid)).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
        let s = d.join("probe.sock");
        listeners.push(listen_as(u, &s));
        socks.push(s);
    }
    // The user's runtime directory, where agents, buses and displays listen
    // (made here when the machine has none for this user; removed after).
    let run = PathBuf::from(format!("/run/user/{}", u.uid));
    let made_run = !run.exists() && Path::new("/run/user").is_dir() && fs::create_dir(&run).is_ok();
    if run.is_dir() {
        std::os::unix::fs::chown(&run, Some(u.uid), Some(u.gid)).unwrap();
        let s = run.join(format!("nono-probe-{}.sock", token()));
        listeners.push(listen_as(u, &s));
        socks.push(s);
    }
    for s in &socks {
        let script = format!(
            "{} -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(\"CONNECTED\")' {} 2>&1; echo done",
            py.display(),
            s.display()
        );
        let (_, text) = inside(&env, &home, &[], &script);
        assert!(
            text.contains("done") && !text.contains("CONNECTED"),
            "{text}"
        );
    }
    for mut l in listeners {
        let _ = l.kill();
        let _ = l.wait();
    }
    if made_run {
        let _ = fs::remove_dir_all(&run);
    } else if let Some(s) = socks.iter().find(|s| s.starts_with(&run)) {
        let _ = fs::remove_file(s);
    }
}

#[test]
fn the_program_cannot_create_user_namespaces() {
    let Some(u) = user() else { return };
    let env = Env::for_user(u);
    let home = env.home.clone();
    let (_, text) = inside(
        &env,
        &home,
        &[],
        "unshare -U true && echo NESTED; echo done",
    );
    assert!(text.contains("done") && !text.contains("NESTED"), "{text}");
}

#[test]
fn the_ssh_agent_is_out_of_reach_unless_passed_on_purpose() {
    let Some(u) = user() else { return };
    if Command::new("ssh-agent").arg("-h").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "ssh-agent is missing; .ci/run installs it"
        );
        return;
    }
    let env = Env::for_user(u);
    let home = env.home.clone();
    let dir = user_dir(&env, "agent");
    let sock = dir.join("agent.sock");
    use std::os::unix::process::CommandExt;
    let agent = Command::new("ssh-agent")
        .args(["-D", "-a", sock.to_str().unwrap()])
        .uid(u.uid)
        .gid(u.gid)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed however the test ends.
    struct Agent(std::process::Child);
    impl Drop for Agent {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Agent(agent);
    // The socket file exists from bind(), before the agent listens on it.
    common::wait_until("the agent to listen", WAIT, || {
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    });
    let ssh_add = |flags: &[&str]| {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "sh", "-c", "ssh-add -L; echo done"]);
        let mut cmd = env.cmd(&args);
        cmd.current_dir(&home).env("SSH_AUTH_SOCK", &sock);
        let mut pty = Pty::spawn(cmd, 24, 200);
        pty.wait();
        pty.text()
    };
    // Outside, the same user reaches it.
    let o = env
        .tool("ssh-add", &["-L"])
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("no identities"),
        "{o:?}"
    );
    let text = ssh_add(&[]);
    assert!(
        text.contains("done") && !text.contains("no identities"),
        "{text}"
    );
    let dir_s = dir.to_str().unwrap();
    let text = ssh_add(&["--env", "SSH_AUTH_SOCK", "-a", dir_s]);
    assert!(text.contains("no identities"), "{text}");
}

#[test]
fn dry_run_and_profile_show_list_scrubbed_variables() {
    let env = Env::new();
    let o = env
        .cmd(&["run", "--dry-run", "--env", "DISPLAY", "--", "true"])
        .env("SSH_AUTH_SOCK", "/tmp/x")
        .env("DISPLAY", ":0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    let dropped = text
        .lines()
        .find(|l| l.contains("dropped"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        dropped.contains("SSH_AUTH_SOCK") && !dropped.contains("DISPLAY"),
        "{text}"
    );
    let passed = text
        .lines()
        .find(|l| l.contains("passed"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(passed.contains("DISPLAY (--env)"), "{text}");
    let o = env.cmd(&["profile", "show", "default"]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("SSH_AUTH_SOCK"), "{text}");
    assert!(text.contains("Containment:"), "{text}");
}

#[test]
fn a_profile_the_program_could_edit_is_refused() {
    let env = Env::new();
    let proj = env.home.join("proj");
    fs::create_dir_all(&proj).unwrap();
    fs::write(proj.join("agent.toml"), "[meta]\nextends = \"default\"\n").unwrap();
    let o = env
        .cmd(&[
            "run",
            "--profile",
            "./agent.toml",
            "--allow-cwd",
            "--",
            "true",
        ])
        .current_dir(&proj)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("could rewrite its own next sandbox"), "{err}");
    assert!(env.records().is_empty());
    // Read-only, it is fine.
    let o = env
        .cmd(&["run", "--profile", "./agent.toml", "--", "true"])
        .current_dir(&proj)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn inspect_and_ps_json_show_the_containment() {
    let env = Env::new();
    let want = common::expected_containment();
    let id = env.start(&["--", "sleep", "60"]);
    let text = env.run(&["inspect", &id]).stdout;
    assert!(
        text.contains("Containment:") && text.contains(want),
        "{text}"
    );
    let json = env.run(&["ps", "--json"]).stdout;
    assert!(
        json.contains(&format!("\"containment\":\"{want}\"")),
        "{json}"
    );
    let id = env.start(&["--no-sandbox", "--", "sleep", "60"]);
    assert_eq!(env.record(&id).containment.as_deref(), Some("descendants"));
}

#[test]
fn without_namespaces_only_the_sessions_own_terminal_is_granted() {
    let Some(u) = user() else { return };
    let env = Env::for_user(u);
    let (master, slave) = nono::sys::open_pty(nono::sys::WinSize::cells(24, 80)).unwrap();
    std::os::unix::fs::fchown(&slave, Some(u.uid), Some(u.gid)).unwrap();
    let fd = |f: &std::os::fd::OwnedFd| std::os::fd::AsRawFd::as_raw_fd(f);
    let name = fs::read_link(format!("/proc/self/fd/{}", fd(&slave))).unwrap();
    let name = name.to_str().unwrap();
    let script = format!(
        "printf PWNED > {name} && echo OPENED; printf OWN > \"$(tty)\" && echo OWN-OK; echo done"
    );
    let (code, text) = run_without_namespaces(&env, &["run", "--", "sh", "-c", &script]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("done") && text.contains("OWN-OK"), "{text}");
    assert!(!text.contains("OPENED"), "{text}");
    nono::sys::set_nonblocking(fd(&master), true).unwrap();
    let mut buf = [0u8; 64];
    let got = nono::sys::read(fd(&master), &mut buf);
    assert!(
        !matches!(got, Ok(n) if n > 0),
        "bytes reached the operator's terminal"
    );
    let shown = env.run(&["profile", "show", "default"]).stdout;
    assert!(shown.contains("script, tmux, pty.spawn fail"), "{shown}");
}
