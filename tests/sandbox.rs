//! The sandbox, on the real kernel with real programs: what a session's
//! program can and cannot reach, as the user sees it (the program's own
//! output on the terminal, its exit status, files on disk, `ps`/`inspect`).

mod common;

use common::{alive, python, wait_until, Env, Pty, WAIT};
use std::fs;
use std::io::{ErrorKind, Read};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A project directory to run from (the test HOME itself holds the state
/// directory, so it could never be granted).
fn project(env: &Env) -> PathBuf {
    let p = env.home.join("proj");
    fs::create_dir_all(&p).unwrap();
    p
}

/// Run `nono ARGS` attached, from `cwd`, on a real terminal; returns the
/// exit status and everything the terminal showed.
fn run_attached(env: &Env, cwd: &Path, args: &[&str]) -> (i32, String) {
    let mut cmd = env.cmd(args);
    cmd.current_dir(cwd);
    let mut pty = Pty::spawn(cmd, 24, 200);
    let code = pty.wait();
    (code, pty.text().replace("\r\n", "\n"))
}

/// The Landlock ABI of this kernel (the tests need one: nono refuses to
/// start sandboxed sessions without it).
fn abi() -> u32 {
    nono::sys::landlock_abi().expect("these tests need a kernel with Landlock")
}

#[test]
fn the_program_reaches_exactly_what_was_granted() {
    let env = Env::new();
    let proj = project(&env);
    let ssh = env.home.join(".ssh");
    fs::create_dir_all(&ssh).unwrap();
    fs::write(ssh.join("id_test"), "SECRET-KEY\n").unwrap();
    let ro = env.home.join("ro");
    let wo = env.home.join("wo");
    fs::create_dir_all(&ro).unwrap();
    fs::create_dir_all(&wo).unwrap();
    fs::write(ro.join("f"), "readable\n").unwrap();
    fs::write(wo.join("f"), "hidden\n").unwrap();
    let script = r#"
        cat "$HOME/.ssh/id_test"
        echo out > "$HOME/outside" || echo OUTSIDE-REFUSED
        echo in > ./made && echo INSIDE-OK
        cat "$1/f"
        echo x > "$1/g" || echo RO-WRITE-REFUSED
        cat "$2/f" || echo WO-READ-REFUSED
        echo w > "$2/f" && echo WO-WRITE-OK
        exit 3
    "#;
    let (code, text) = run_attached(
        &env,
        &proj,
        &[
            "run",
            "--allow-cwd",
            "-r",
            ro.to_str().unwrap(),
            "-w",
            wo.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            script,
            "sh",
            ro.to_str().unwrap(),
            wo.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 3, "{text}");
    // EACCES, in the words every program prints it.
    assert!(
        text.contains(&format!(
            "{}: Permission denied",
            ssh.join("id_test").display()
        )),
        "{text}"
    );
    assert!(!text.contains("SECRET-KEY"), "{text}");
    for marker in [
        "OUTSIDE-REFUSED",
        "INSIDE-OK",
        "readable",
        "RO-WRITE-REFUSED",
        "WO-READ-REFUSED",
        "WO-WRITE-OK",
    ] {
        assert!(text.contains(marker), "missing {marker}: {text}");
    }
    assert!(!env.home.join("outside").exists());
    assert_eq!(fs::read_to_string(proj.join("made")).unwrap(), "in\n");
    assert!(!ro.join("g").exists());
    assert_eq!(fs::read_to_string(wo.join("f")).unwrap(), "w\n");
}

#[test]
fn without_allow_cwd_the_working_directory_is_not_granted() {
    let env = Env::new();
    let proj = project(&env);
    fs::write(proj.join("notes"), "private\n").unwrap();
    let (code, text) = run_attached(
        &env,
        &proj,
        &["run", "--", "sh", "-c", "cat notes; echo x > new; exit 0"],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("notes: Permission denied"), "{text}");
    assert!(!text.contains("private"), "{text}");
    assert!(!proj.join("new").exists());
}

/// A python probe: one line per check, `NAME ok` or `NAME ERRNAME`.
const NET_PROBE: &str = r#"
import errno, socket, sys
port_tcp, port_udp = int(sys.argv[1]), int(sys.argv[2])
def check(name, f):
    try:
        f()
        print(name, "ok", flush=True)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno), flush=True)
def tcp():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(("127.0.0.1", port_tcp))
    s.sendall(b"hello")
    s.close()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"hello", ("127.0.0.1", port_udp))
def unix():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    a.sendall(b"x")
    assert b.recv(1) == b"x"
check("tcp", tcp)
check("udp", udp)
check("unix", unix)
"#;

/// Run the network probe with `net_args`; returns what it printed, and
/// whether the test's TCP listener and UDP socket heard from it.
fn net_probe(env: &Env, py: &Path, net_args: &[&str]) -> (String, bool, bool) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tport = tcp.local_addr().unwrap().port().to_string();
    let uport = udp.local_addr().unwrap().port().to_string();
    let mut args = vec!["run"];
    args.extend_from_slice(net_args);
    args.extend_from_slice(&["--", py.to_str().unwrap(), "-c", NET_PROBE, &tport, &uport]);
    let (code, text) = run_attached(env, &project(env), &args);
    assert_eq!(code, 0, "{text}");
    // The probe has exited: whatever it sent is already queued here.
    tcp.set_nonblocking(true).unwrap();
    let tcp_heard = match tcp.accept() {
        Ok((mut s, _)) => {
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            got == b"hello"
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    };
    udp.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    let udp_heard = udp.recv(&mut buf).is_ok();
    (text, tcp_heard, udp_heard)
}

#[test]
fn blocked_network_refuses_tcp_and_udp_but_not_unix_sockets() {
    let Some(py) = python() else {
        eprintln!("note: no python3; skipping");
        return;
    };
    let env = Env::new();
    let (text, tcp, udp) = net_probe(&env, &py, &["--net", "blocked"]);
    assert!(text.contains("tcp EACCES"), "{text}");
    assert!(text.contains("udp EACCES"), "{text}");
    assert!(text.contains("unix ok"), "{text}");
    assert!(!tcp && !udp, "the listener heard from a blocked program");
    // --block-net is the same thing.
    let (text, tcp, _) = net_probe(&env, &py, &["--block-net"]);
    assert!(text.contains("tcp EACCES") && !tcp, "{text}");

    let (text, tcp, udp) = net_probe(&env, &py, &["--net", "allowed"]);
    assert!(text.contains("tcp ok"), "{text}");
    assert!(text.contains("udp ok"), "{text}");
    assert!(
        tcp && udp,
        "the listener did not hear from an allowed program"
    );
}

#[test]
fn blocked_network_is_recorded_and_shown() {
    let env = Env::new();
    let id = env.start(&["--net", "blocked", "--", "sleep", "60"]);
    let r = env.record(&id);
    assert_eq!(r.network, "blocked");
    let sb = r.sandbox.expect("a sandbox in the record");
    assert!(sb.enforced.iter().any(|e| e == "seccomp-sockets"), "{sb:?}");
    if abi() >= 4 {
        assert!(sb.enforced.iter().any(|e| e == "tcp"), "{sb:?}");
    }
    let o = env.run(&["inspect", &id]);
    assert!(o.stdout.contains("Network:        blocked"), "{o:?}");
    assert!(o.stdout.contains("Profile:        default"), "{o:?}");
    assert!(
        o.stdout.contains(&format!("Landlock ABI {}", abi())),
        "{o:?}"
    );
}

#[test]
fn the_program_cannot_signal_its_supervisor_or_open_the_registry() {
    let env = Env::new();
    let state = env.home.join("state/nono");
    let script = r#"
        kill -TERM "$PPID" && echo SIGNAL-SENT
        ls "$1" || echo REGISTRY-REFUSED
        ls "$1/sessions" || echo SESSIONS-REFUSED
        exit 0
    "#;
    let (code, text) = run_attached(
        &env,
        &project(&env),
        &[
            "run",
            "--",
            "sh",
            "-c",
            script,
            "sh",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("REGISTRY-REFUSED"), "{text}");
    assert!(text.contains("SESSIONS-REFUSED"), "{text}");
    assert!(text.contains("Permission denied"), "{text}");
    if abi() >= 6 {
        assert!(!text.contains("SIGNAL-SENT"), "{text}");
        assert!(text.contains("Operation not permitted"), "{text}");
        // The session ran to its own end, not to a SIGTERM of its supervisor.
        let r = &env.records()[0];
        assert_eq!(r.exit_code, Some(0), "{r:?}");
    } else {
        eprintln!("note: Landlock ABI {} has no signal scoping", abi());
    }
}

#[test]
fn the_program_gets_a_private_tmpdir_and_nothing_else_inherited() {
    let env = Env::new();
    let id = env.start(&[
        "--",
        "sh",
        "-c",
        "echo data > \"$TMPDIR/f\" && cat \"$TMPDIR/f\"; ls -1 /proc/self/fd; sleep 60",
    ]);
    let r = env.record(&id);
    let tmp = PathBuf::from(r.sandbox.unwrap().tmpdir.unwrap());
    wait_until("the program to write its TMPDIR", WAIT, || {
        tmp.join("f").exists()
    });
    let md = fs::symlink_metadata(&tmp).unwrap();
    assert!(md.is_dir());
    assert_eq!(md.permissions().mode() & 0o777, 0o700);
    // Until ls's own fd (3) is listed: "data" alone may arrive before the list.
    wait_until("the program's output", WAIT, || {
        let logs = env.run(&["logs", &id]).stdout;
        logs.lines().skip_while(|l| *l != "data").any(|l| l == "3")
    });
    // stdin, stdout, stderr (the pty) and ls's own directory fd: nothing else.
    let logs = env.run(&["logs", &id]).stdout;
    let fds: Vec<&str> = logs.lines().skip_while(|l| *l != "data").skip(1).collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{logs}");
    assert_eq!(env.run(&["stop", &id]).code, 0);
    assert!(!tmp.exists(), "the TMPDIR outlived its session");
}

/// Write a profile into the user's profiles directory.
fn write_profile(env: &Env, name: &str, text: &str) -> PathBuf {
    let dir = env.home.join("config/nono/profiles");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_user_profile_extends_default() {
    let env = Env::new();
    let data = env.home.join("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("f"), "shared\n").unwrap();
    let mine = write_profile(
        &env,
        "mine",
        "[meta]\ndescription = \"my tool\"\nextends = \"default\"\n\n[filesystem]\nread = [\n  \"~/data\",\n]\n\n[network]\nmode = \"blocked\"\n",
    );
    let o = env.run(&["profile", "show", "mine"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("extends default (built-in)") && o.stdout.contains("my tool"),
        "{o:?}"
    );
    assert!(
        o.stdout.lines().any(|l| l.contains("read")
            && l.contains(&*data.to_string_lossy())
            && l.contains("mine")),
        "{o:?}"
    );
    assert!(
        o.stdout.lines().any(|l| l.contains("read")
            && l.trim_end().ends_with("default")
            && l.contains(" /usr ")),
        "{o:?}"
    );
    assert!(o.stdout.contains("Network:   blocked"), "{o:?}");
    // The same file by path gives the same resolution.
    let by_path = env.run(&["profile", "show", mine.to_str().unwrap()]);
    assert_eq!(by_path.code, 0, "{by_path:?}");
    assert!(
        by_path.stdout.contains(&*data.to_string_lossy()),
        "{by_path:?}"
    );
    let list = env.run(&["profile", "list"]).stdout;
    for name in ["mine", "default", "claude-code", "codex"] {
        assert!(list.lines().any(|l| l.starts_with(name)), "{list}");
    }
    let (code, text) = run_attached(
        &env,
        &project(&env),
        &[
            "run",
            "--profile",
            "mine",
            "--",
            "cat",
            data.join("f").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("shared"), "{text}");
    let r = &env.records()[0];
    assert_eq!(r.profile.as_deref(), Some("mine"));
    assert_eq!(r.network, "blocked");
}

#[test]
fn a_profile_with_a_typo_names_file_line_and_key_and_starts_nothing() {
    let env = Env::new();
    let path = write_profile(
        &env,
        "typo",
        "[meta]\nextends = \"default\"\n\n[filesystem]\nalow = [\"~/x\"]\n",
    );
    for args in [
        &["run", "--profile", "typo", "--", "true"][..],
        &["profile", "show", "typo"][..],
    ] {
        let o = env.run(args);
        assert_eq!(o.code, 1, "{o:?}");
        let want = format!(
            "nono: {}: line 5: unknown key 'filesystem.alow'",
            path.display()
        );
        assert!(o.stderr.starts_with(&want), "{o:?}");
    }
    write_profile(&env, "badnet", "[network]\nmode = \"off\"\n");
    let o = env.run(&["run", "--profile", "badnet", "--", "true"]);
    assert!(
        o.stderr
            .contains("line 2: 'network.mode' must be \"allowed\" or \"blocked\""),
        "{o:?}"
    );
    // A profile others could change decides nothing.
    let open = write_profile(&env, "open", "[meta]\ndescription = \"x\"\n");
    fs::set_permissions(&open, fs::Permissions::from_mode(0o666)).unwrap();
    let o = env.run(&["run", "--profile", "open", "--", "true"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("writable by group or others") && o.stderr.contains("chmod go-w"),
        "{o:?}"
    );
    let o = env.run(&["run", "--profile", "nosuch", "--", "true"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("no profile named 'nosuch'"), "{o:?}");
    assert!(env.records().is_empty(), "a session was started");
}

#[test]
fn the_state_directory_is_never_granted() {
    let env = Env::new();
    let state = env.home.join("state");
    fs::create_dir_all(&state).unwrap();
    write_profile(
        &env,
        "greedy",
        "[meta]\nextends = \"default\"\n[filesystem]\nallow = [\"~/state\"]\n",
    );
    // Through a profile, a flag, a parent directory, or a path not yet there.
    for args in [
        vec!["run", "--profile", "greedy", "--", "true"],
        vec!["run", "-r", "~", "--", "true"],
        vec!["run", "-r", state.to_str().unwrap(), "--", "true"],
        vec!["profile", "show", "greedy"],
    ] {
        let o = env.run(&args);
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        assert!(
            o.stderr.contains("nono's state directory") && o.stderr.contains("state/nono"),
            "{args:?}: {o:?}"
        );
    }
    write_profile(
        &env,
        "sneaky",
        "[filesystem]\nallow = [\"~/state/nono/sessions/later\"]\n",
    );
    let o = env.run(&["run", "--profile", "sneaky", "--", "true"]);
    assert_eq!(o.code, 1, "{o:?}");
    // And a sandboxed program may not rewrite its own profiles.
    let o = env.run(&["run", "-a", "~/config", "--", "true"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("nono's configuration"), "{o:?}");
    assert!(env.records().is_empty(), "a session was started");
}

#[test]
fn profile_show_resolves_each_built_in() {
    let env = Env::new();
    fs::create_dir_all(env.home.join(".claude")).unwrap();
    fs::create_dir_all(env.home.join(".codex")).unwrap();
    let home = env.home.canonicalize().unwrap();
    for (name, own) in [
        ("default", None),
        ("claude-code", Some(".claude")),
        ("codex", Some(".codex")),
    ] {
        let o = env.run(&["profile", "show", name]);
        assert_eq!(o.code, 0, "{name}: {o:?}");
        let s = &o.stdout;
        assert!(
            s.starts_with(&format!("Profile:   {name} (built-in)")),
            "{s}"
        );
        assert!(
            s.contains(&format!("Kernel:    Landlock ABI {}", abi())),
            "{s}"
        );
        assert!(s.contains("Enforced:  no-new-privs, filesystem"), "{s}");
        assert!(
            s.lines()
                .any(|l| l.starts_with("  read ") && l.contains(" /usr ")),
            "{s}"
        );
        assert!(
            s.lines()
                .any(|l| l.starts_with("  read-write") && l.contains(" /dev/null ")),
            "{s}"
        );
        let granted_home: Vec<&str> = s
            .lines()
            .filter(|l| l.starts_with("  read") || l.starts_with("  write"))
            .filter(|l| l.contains(&*home.to_string_lossy()))
            .collect();
        match own {
            None => {
                assert!(granted_home.is_empty(), "default grants $HOME: {s}");
                assert!(s.contains("Workdir:   not granted"), "{s}");
            }
            Some(dir) => {
                let want = home.join(dir).display().to_string();
                assert!(
                    granted_home
                        .iter()
                        .any(|l| l.starts_with("  read-write") && l.contains(&want)),
                    "{s}"
                );
                assert!(s.contains("Workdir:   readwrite"), "{s}");
            }
        }
    }
}

#[test]
fn dry_run_prints_the_resolution_and_starts_nothing() {
    let env = Env::new();
    let proj = project(&env);
    let mut cmd = env.cmd(&[
        "run",
        "--dry-run",
        "--allow-cwd",
        "--block-net",
        "--",
        "sh",
        "-c",
        "true",
    ]);
    cmd.current_dir(&proj);
    let o = cmd.output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{o:?}");
    assert!(out.contains("Command:   sh -c true"), "{out}");
    assert!(
        out.contains("Program:   ") && out.contains("(granted)"),
        "{out}"
    );
    let proj = proj.canonicalize().unwrap();
    assert!(
        out.contains(&format!("Workdir:   readwrite {}", proj.display())),
        "{out}"
    );
    assert!(out.contains("Network:   blocked"), "{out}");
    assert!(env.records().is_empty());
}

#[test]
fn no_sandbox_runs_unconfined_and_says_so_everywhere() {
    let env = Env::new();
    let ssh = env.home.join(".ssh");
    fs::create_dir_all(&ssh).unwrap();
    fs::write(ssh.join("id_test"), "SECRET-KEY\n").unwrap();
    let o = env.run(&[
        "run",
        "-d",
        "--no-sandbox",
        "--",
        "sh",
        "-c",
        "cat \"$HOME/.ssh/id_test\"; sleep 60",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains("--no-sandbox") && o.stderr.contains("unconfined"),
        "{o:?}"
    );
    let id = o
        .stdout
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches('.')
        .to_string();
    wait_until("the program's output", WAIT, || {
        env.run(&["logs", &id]).stdout.contains("SECRET-KEY")
    });
    let r = env.record(&id);
    assert!(r.sandbox.is_none() && r.profile.is_none(), "{r:?}");
    let ps = env.run(&["ps"]).stdout;
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&id) && l.contains("UNSANDBOXED")),
        "{ps}"
    );
    let inspect = env.run(&["inspect", &id]).stdout;
    assert!(inspect.contains("UNSANDBOXED"), "{inspect}");
    assert!(alive(r.child_pid.unwrap()));
    // Sandbox flags make no sense with it.
    let o = env.run(&["run", "--no-sandbox", "--allow-cwd", "--", "true"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("cannot be combined with --allow-cwd"),
        "{o:?}"
    );
}

#[test]
fn a_missing_path_is_an_error_naming_it() {
    let env = Env::new();
    let o = env.run(&["run", "-r", "~/nope", "--", "true"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("--read ~/nope")
            && o.stderr.contains(&*env.home.join("nope").to_string_lossy()),
        "{o:?}"
    );
    let o = env.run(&["run", "--net", "maybe", "--", "true"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(env.records().is_empty());
}

#[test]
fn a_program_the_sandbox_does_not_grant_fails_with_a_hint() {
    let env = Env::new();
    let bin = env.home.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let tool = bin.join("tool");
    fs::write(&tool, "#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
    let o = env.run(&["run", "-d", "--", tool.to_str().unwrap()]);
    assert_eq!(o.code, 126, "{o:?}");
    assert!(
        o.stderr.contains("which the sandbox does not grant")
            && o.stderr.contains(&format!(
                "add -r {}",
                tool.canonicalize().unwrap().display()
            )),
        "{o:?}"
    );
    let o = env.run(&[
        "run",
        "-d",
        "-r",
        tool.to_str().unwrap(),
        "--",
        tool.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 0, "{o:?}");
}

#[test]
fn abstract_unix_sockets_outside_the_sandbox_are_out_of_reach() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    let Some(py) = python() else {
        eprintln!("note: no python3; skipping");
        return;
    };
    if abi() < 6 {
        eprintln!(
            "note: Landlock ABI {} has no abstract-socket scoping",
            abi()
        );
        return;
    }
    let env = Env::new();
    // The test HOME's name is unique to this test run.
    let name = format!(
        "{}-abstract",
        env.home.file_name().unwrap().to_string_lossy()
    );
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    let probe = r#"
import errno, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect("\0" + sys.argv[1])
    print("abstract ok", flush=True)
except OSError as e:
    print("abstract", errno.errorcode.get(e.errno, e.errno), flush=True)
"#;
    let (code, text) = run_attached(
        &env,
        &project(&env),
        &["run", "--", py.to_str().unwrap(), "-c", probe, &name],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("abstract EPERM"), "{text}");
    assert!(listener.accept().is_err(), "the listener was reached");
    // Unconfined, the same probe connects: the refusal is the sandbox's.
    let (_, text) = run_attached(
        &env,
        &project(&env),
        &[
            "run",
            "--no-sandbox",
            "--",
            py.to_str().unwrap(),
            "-c",
            probe,
            &name,
        ],
    );
    assert!(text.contains("abstract ok"), "{text}");
}

/// A seccomp filter under which the kernel seems to have no Landlock:
/// `landlock_create_ruleset` fails with ENOSYS, as on a kernel built without it.
fn no_landlock() -> nono::sys::Confinement {
    let ld_nr = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    nono::sys::Confinement {
        landlock: None,
        seccomp: Some(vec![
            ins(ld_nr, 0, 0, 0),
            ins(jeq, 0, 1, libc::SYS_landlock_create_ruleset as u32),
            ins(ret, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
            ins(ret, 0, 0, libc::SECCOMP_RET_ALLOW),
        ]),
        ..Default::default()
    }
}

#[test]
fn without_landlock_nothing_starts_unless_asked_to_run_unconfined() {
    let env = Env::new();
    let run = |args: &[&str]| {
        let mut cmd = env.cmd(args);
        cmd.current_dir(project(&env));
        let mut pty = Pty::spawn_confined(cmd, 24, 200, no_landlock());
        let code = pty.wait();
        (code, pty.text())
    };
    let (code, text) = run(&["run", "--", "echo", "RAN"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("nono: cannot sandbox the session: this kernel has no Landlock support")
            && text.contains("--no-sandbox"),
        "{text}"
    );
    assert!(!text.contains("RAN"), "{text}");
    assert!(env.records().is_empty(), "a session was recorded");
    let (code, text) = run(&["run", "--dry-run", "--", "true"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("will not start"), "{text}");
    let (code, text) = run(&["run", "--no-sandbox", "--", "echo", "RAN"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("RAN"), "{text}");
}
