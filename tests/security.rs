//! Security scenarios (issue 4): who may talk to a session, what the
//! registry's files look like on disk, hostile bytes on the socket, corrupt
//! files, and faults. The real binary, a private HOME per test, real ptys.
//! Tests that need root (running as another uid, mount) say so and skip
//! with a note when they cannot.

mod common;

use common::{alive, bin, group_members, python, rss_kib, wait_until, Env, Out, WAIT};
use nono::protocol::{Frame, FrameReader, Hello, ReplyStatus, Request, PROTOCOL_VERSION};
use nono::sys::WinSize;
use std::fs;
use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The unprivileged uid and gid tests run foreign clients as.
const NOBODY: u32 = 65534;

// ---------------------------------------------------------------- helpers

/// Deterministic xorshift64 generator for the randomized tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Whether we can act as another user (the tests run as root in CI, and
/// not inside a nono session, where root has no capabilities).
fn is_root() -> bool {
    common::can_act_as_others()
}

/// Raw socket client and in-session prober, run with python3.
/// `probe PATH HEX`: connect, send the bytes, print the reply as hex.
/// `inside DIR HEX OUT`: as a session's program, probe its own session's
/// socket (named in its record in DIR) from itself and from a double-forked daemon, writing the replies to
/// OUT/child and OUT/daemon, then exec sleep.
/// `vanish DIR HEX OUT N`: connect from a child that exits (and is reaped)
/// before sending, N times; write the non-denied replies to OUT/vanish.
const PY: &str = r#"
import glob, os, socket, sys
def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect('\0' + path[1:] if path.startswith('@') else path)
    return s
def endpoint(d):
    # Our own session: the record whose program we are (it may not say so yet).
    import json, time
    for _ in range(400):
        for p in glob.glob(os.path.join(d, '*.json')):
            try:
                r = json.load(open(p))
            except (OSError, ValueError):
                continue
            if r.get('child_pid') == os.getpid() and r.get('socket'):
                return '@' + r['socket']
        time.sleep(0.05)
    raise SystemExit('no record names this program')
def exchange(s, data):
    try:
        s.sendall(data)
    except OSError:
        pass
    got = b''
    while True:
        try:
            b = s.recv(65536)
        except OSError:
            break
        if not b:
            break
        got += b
    return got.hex()
def put(out, name, text):
    tmp = os.path.join(out, '.' + name)
    with open(tmp, 'w') as f:
        f.write(text)
    os.rename(tmp, os.path.join(out, name))
mode = sys.argv[1]
if mode == 'probe':
    print(exchange(connect(sys.argv[2]), bytes.fromhex(sys.argv[3])))
    sys.exit(0)
d, data, out = sys.argv[2], bytes.fromhex(sys.argv[3]), sys.argv[4]
path = endpoint(d)
if mode == 'inside':
    put(out, 'child', exchange(connect(path), data))
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            put(out, 'daemon', exchange(connect(path), data))
        os._exit(0)
    os.wait()
    os.execvp('sleep', ['sleep', '300'])
if mode == 'vanish':
    wins = []
    for _ in range(int(sys.argv[5])):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            try:
                s.connect('\0' + path[1:] if path.startswith('@') else path)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        s.settimeout(10)
        r = exchange(s, data)
        if not r.startswith('10') or r[10:12] != '02':
            wins.append(r)
    put(out, 'vanish', '\n'.join(wins))
    os.execvp('sleep', ['sleep', '300'])
"#;

/// The full id of the session `short`.
fn full_id(env: &Env, short: &str) -> String {
    env.record(short).id
}

/// Where older versions had session `id` (full) listen: a file in the registry.
fn sock_path(env: &Env, id: &str) -> PathBuf {
    env.sessions_dir().join(format!("{id}.sock"))
}

/// The abstract socket session `id` listens on.
fn endpoint(env: &Env, id: &str) -> SocketAddr {
    let r = env.record(id);
    assert!(!r.socket.is_empty(), "{r:?}");
    SocketAddr::from_abstract_name(r.socket.as_bytes()).unwrap()
}

/// Open fds of process `pid`.
fn fds(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// A hello for `req` in this protocol version.
fn hello(req: Request) -> Vec<u8> {
    Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        request: Some(req),
    })
    .to_bytes()
}

/// The frames in `bytes`, up to the first incomplete or undecodable one.
fn frames(bytes: &[u8]) -> Vec<Frame> {
    let mut r = FrameReader::new();
    r.push(bytes);
    let mut v = Vec::new();
    while let Ok(Some(f)) = r.next_frame() {
        v.push(f);
    }
    v
}

/// Read until the peer closes or `timeout` passes; (bytes, closed, elapsed).
fn read_to_close(s: &mut UnixStream, timeout: Duration) -> (Vec<u8>, bool, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return (got, false, start.elapsed());
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (got, true, start.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            // A reset is a close, too.
            Err(_) => return (got, true, start.elapsed()),
        }
    }
}

/// Decode hex text (as printed by the python client).
fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Lowercase hex.
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Mode bits (with the type) of `p` without following a symlink.
fn lmode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode()
}

/// Set the permission bits of `p`.
fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A copy of the binary that any uid can execute (the build directory may not be).
fn public_bin(env: &Env) -> PathBuf {
    chmod(&env.home, 0o755);
    let p = env.home.join("nono-bin");
    fs::copy(bin(), &p).unwrap();
    chmod(&p, 0o755);
    p
}

/// Run `program ARGS` as uid/gid 65534 with the environment's HOME and XDG dirs.
fn as_nobody(env: &Env, program: &Path, args: &[&str]) -> Out {
    let o = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &env.home)
        .env("XDG_STATE_HOME", env.home.join("state"))
        .env("XDG_CONFIG_HOME", env.home.join("config"))
        .env("TERM", "xterm-256color")
        .current_dir(&env.home)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .output()
        .expect("run as nobody");
    Out::from(o)
}

/// `nono inspect ID --events`.
fn events(env: &Env, id: &str) -> String {
    env.run(&["inspect", id, "--events"]).stdout
}

/// Run a command to completion, killing it if it takes longer than `limit`.
fn run_bounded(mut c: Command, limit: Duration) -> Out {
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let watchdog = std::thread::spawn(move || {
        let t = Instant::now();
        while !d2.load(Ordering::SeqCst) {
            if t.elapsed() > limit {
                let _ = nono::sys::kill(pid, libc::SIGKILL);
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    });
    let o = child.wait_with_output().unwrap();
    done.store(true, Ordering::SeqCst);
    assert!(!watchdog.join().unwrap(), "command hung past {limit:?}");
    Out::from(o)
}

/// A tmpfs mounted for one test; unmounted on drop (lazily, so a busy
/// mount never wedges the suite).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mount a tmpfs of `size` at `dir`; None (with a note) when not permitted.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir)
            .output();
        match o {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            other => {
                eprintln!("note: cannot mount a tmpfs ({other:?}); skipping this part");
                None
            }
        }
    }

    fn remount(&self, opt: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,{opt}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(o.status.success(), "remount {opt}: {o:?}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

/// `nono ARGS` in `env` but with the registry under `state`.
fn run_in(env: &Env, state: &Path, args: &[&str]) -> Out {
    let o = env
        .cmd(args)
        .env("XDG_STATE_HOME", state)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out::from(o)
}

// ------------------------------------------------------- 1. another uid

#[test]
fn another_uid_cannot_attach_detach_stop_or_read_a_session() {
    if !is_root() {
        eprintln!("note: not root; cannot act as another uid; skipping");
        return;
    }
    let env = Env::new();
    let nb = public_bin(&env);
    let id = env.start(&["--", "sh"]);
    let full = full_id(&env, &id);
    let rec_path = env.sessions_dir().join(format!("{full}.json"));
    let before = fs::read(&rec_path).unwrap();
    let r = env.record(&id);

    // Through the CLI: the registry itself is closed to other users.
    for args in [
        vec!["attach", id.as_str()],
        vec!["detach", id.as_str()],
        vec!["stop", id.as_str()],
        vec!["inspect", id.as_str()],
        vec!["inspect", id.as_str(), "--events"],
        vec!["logs", id.as_str()],
        vec!["ps"],
        vec!["prune"],
    ] {
        let o = as_nobody(&env, &nb, &args);
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        assert!(
            o.stderr.starts_with("nono: ") && o.stderr.contains("Permission denied"),
            "{args:?}: {o:?}"
        );
        assert!(
            !o.stdout.contains(&id),
            "{args:?} leaked the session: {o:?}"
        );
    }
    // With the directories above the registry opened up, the ownership check names the problem.
    let state = env.home.join("state");
    chmod(&state, 0o711);
    let o = as_nobody(&env, &nb, &["attach", &id]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr
            .contains(&format!("is owned by uid 0, not by you (uid {NOBODY})")),
        "{o:?}"
    );
    chmod(&state, 0o700);
    assert_eq!(fs::read(&rec_path).unwrap(), before, "record changed");
    assert_eq!(env.record(&id).status, "running");
    assert!(alive(r.child_pid.unwrap()) && alive(r.supervisor_pid));
    assert!(!events(&env, &id).contains("denied"));

    // The socket is abstract: any uid can connect to it, and the kernel's
    // peer credentials keep the other uid out. Loosen the directories too.
    let Some(py) = python() else {
        eprintln!("note: no python3; skipping the raw peer-credential check");
        return;
    };
    let nono_dir = env.home.join("state/nono");
    let sessions = env.sessions_dir();
    let sock = format!("@{}", r.socket);
    for d in [&state, &nono_dir, &sessions] {
        chmod(d, 0o711);
    }
    // The record itself stays private even then.
    let cat = as_nobody(&env, Path::new("/bin/cat"), &[rec_path.to_str().unwrap()]);
    let size = WinSize::cells(24, 80);
    let raw = as_nobody(
        &env,
        &py,
        &[
            "-c",
            PY,
            "probe",
            &sock,
            &hex(&hello(Request::Attach(size))),
        ],
    );
    for d in [&state, &nono_dir, &sessions] {
        chmod(d, 0o700);
    }
    assert_ne!(cat.code, 0, "nobody read the record: {cat:?}");
    assert_eq!(raw.code, 0, "{raw:?}");
    let reply = unhex(&raw.stdout);
    assert!(reply.len() > 6, "no reply: {raw:?}");
    assert_eq!(
        (reply[0], reply[5]),
        (16, ReplyStatus::Denied as u8),
        "{reply:?}"
    );
    match frames(&reply).first() {
        Some(Frame::Reply(ReplyStatus::Denied, m)) => {
            assert!(m.contains(&format!("uid {NOBODY}")), "{m}")
        }
        other => panic!("expected a Denied reply, got {other:?}"),
    }
    let ev = events(&env, &id);
    let denied: Vec<&str> = ev.lines().filter(|l| l.contains("denied")).collect();
    assert_eq!(denied.len(), 1, "{ev}");
    assert!(denied[0].contains(&format!("uid {NOBODY}")), "{ev}");
    assert_eq!(env.record(&id).status, "running");
    assert!(alive(r.child_pid.unwrap()) && alive(r.supervisor_pid));
    assert_eq!(env.run(&["ps"]).code, 0);
}

// ------------------------------------------------- 2. inside the session

#[test]
fn a_process_inside_the_session_is_refused_and_not_told_where_the_socket_is() {
    let Some(py) = python() else {
        eprintln!("note: no python3; skipping");
        return;
    };
    let env = Env::new();
    let out = env.home.join("probe-out");
    fs::create_dir_all(&out).unwrap();
    let size = WinSize::cells(24, 80);
    // Unsandboxed: the peer check must hold on its own (a sandboxed
    // program cannot even list the registry; see tests/sandbox.rs).
    let id = env.start(&[
        "--no-sandbox",
        "--",
        py.to_str().unwrap(),
        "-c",
        PY,
        "inside",
        env.sessions_dir().to_str().unwrap(),
        &hex(&hello(Request::Attach(size))),
        out.to_str().unwrap(),
    ]);
    let r = env.record(&id);
    for who in ["child", "daemon"] {
        let p = out.join(who);
        wait_until(&format!("the {who}'s probe"), WAIT, || p.exists());
        let reply = unhex(&fs::read_to_string(&p).unwrap());
        match frames(&reply).first() {
            Some(Frame::Reply(ReplyStatus::Denied, m)) => {
                assert!(m.contains("runs inside this session"), "{who}: {m}")
            }
            other => panic!("{who}: expected Denied, got {other:?} ({reply:?})"),
        }
    }
    let ev = events(&env, &id);
    assert_eq!(
        ev.lines()
            .filter(|l| l.contains("denied") && l.contains("runs inside this session"))
            .count(),
        2,
        "{ev}"
    );
    assert_eq!(env.record(&id).status, "running");
    assert!(!env.record(&id).attached);
    // The program was told nothing about its supervisor's socket.
    let child = r.child_pid.unwrap();
    wait_until("the program to exec sleep", WAIT, || {
        fs::read_to_string(format!("/proc/{child}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    let environ = fs::read(format!("/proc/{child}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    for secret in [
        sock_path(&env, &r.id).to_string_lossy().into_owned(),
        r.id.clone(),
        id.clone(),
        ".sock".to_string(),
    ] {
        assert!(
            !environ.contains(&secret),
            "{secret} is in the program's environment: {environ:?}"
        );
    }
}

#[test]
fn a_process_inside_the_session_cannot_connect_through_a_vanished_child() {
    let Some(py) = python() else {
        eprintln!("note: no python3; skipping");
        return;
    };
    let env = Env::new();
    let out = env.home.join("probe-out");
    fs::create_dir_all(&out).unwrap();
    // The socket is connected by a child that exits at once and is reaped;
    // the parent, inside the session, then speaks on it. Detach is harmless:
    // any answer but Denied shows the supervisor took the request.
    // Unsandboxed: the peer check must hold on its own (a sandboxed
    // program cannot even list the registry; see tests/sandbox.rs).
    let id = env.start(&[
        "--no-sandbox",
        "--",
        py.to_str().unwrap(),
        "-c",
        PY,
        "vanish",
        env.sessions_dir().to_str().unwrap(),
        &hex(&hello(Request::Detach)),
        out.to_str().unwrap(),
        "200",
    ]);
    let p = out.join("vanish");
    wait_until("the probes", WAIT, || p.exists());
    let wins = fs::read_to_string(&p).unwrap();
    let ev = events(&env, &id);
    let accepted: Vec<Vec<Frame>> = wins.lines().map(|l| frames(&unhex(l))).collect();
    assert!(
        accepted.is_empty(),
        "{} of 200 connections from inside the session were not denied: {:?}\nevents:\n{ev}",
        accepted.len(),
        accepted.first()
    );
}

// --------------------------------------------- 3. registry of another uid

#[test]
fn a_registry_directory_owned_by_another_uid_is_refused() {
    if !is_root() {
        eprintln!("note: not root; cannot chown; skipping");
        return;
    }
    let env = Env::new();
    env.start(&["--", "true"]);
    for dir in [env.home.join("state/nono"), env.sessions_dir()] {
        std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
        for args in [&["ps"][..], &["run", "-d", "--", "true"], &["prune"]] {
            let o = env.run(args);
            assert_eq!(o.code, 1, "{args:?}: {o:?}");
            assert_eq!(
                o.stderr,
                format!(
                    "nono: {} is owned by uid {NOBODY}, not by you (uid 0); remove it or point XDG_STATE_HOME elsewhere\n",
                    dir.display()
                ),
                "{args:?}"
            );
        }
        std::os::unix::fs::chown(&dir, Some(0), Some(0)).unwrap();
        assert_eq!(env.run(&["ps", "-a"]).code, 0);
    }
    assert_eq!(env.records().len(), 1, "a refused run left a record");
}

// ------------------------------------------------- 4. modes on creation

#[test]
fn files_are_never_wider_than_0600_while_sessions_are_created_even_with_umask_0() {
    let env = Env::new();
    let dir = env.sessions_dir();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeMap::<&'static str, usize>::new();
            let mut bad = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let Ok(entries) = fs::read_dir(&dir) else {
                    continue;
                };
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let Ok(md) = fs::symlink_metadata(e.path()) else {
                        continue; // gone between readdir and lstat
                    };
                    let kind = if name.starts_with('.') && name.ends_with(".tmp") {
                        "temp"
                    } else if name.ends_with(".json") {
                        "json"
                    } else if name.ends_with(".events") {
                        "events"
                    } else if name.ends_with(".log") {
                        "log"
                    } else {
                        "other"
                    };
                    *seen.entry(kind).or_default() += 1;
                    let perm = md.mode() & 0o7777;
                    // No socket files at all: sessions listen on abstract sockets.
                    let type_ok = md.file_type().is_file();
                    if perm & !0o600 != 0 || !type_ok || kind == "other" {
                        bad.push(format!("{name}: {:o}", md.mode()));
                    }
                }
            }
            (seen, bad)
        })
    };
    let mut ids = Vec::new();
    for i in 0..20 {
        let prog = if i % 2 == 0 { "sleep 60" } else { "true" };
        if i % 2 == 0 {
            // The caller's umask must not matter; the first start creates the directories.
            let out = env
                .sh(
                    "umask 0; exec \"$0\" run -d -- sh -c \"$1\"",
                    &[bin().to_str().unwrap(), prog],
                )
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let o = Out::from(out);
            assert_eq!(o.code, 0, "{o:?}");
            ids.push(
                o.stdout
                    .split_whitespace()
                    .nth(3)
                    .unwrap()
                    .trim_end_matches('.')
                    .to_string(),
            );
        } else {
            ids.push(env.start(&["--", "sh", "-c", prog]));
        }
    }
    for id in ids.iter().skip(1).step_by(2) {
        env.wait_record(id, "exit", |r| r.status == "exited");
    }
    stop.store(true, Ordering::SeqCst);
    let (seen, bad) = sampler.join().unwrap();
    assert!(bad.is_empty(), "too-wide or unexpected entries: {bad:?}");
    for kind in ["json", "events", "log"] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) > 0,
            "never saw a {kind}: {seen:?}"
        );
    }
    eprintln!("sampled entries: {seen:?}");
    for d in [
        env.home.join("state"),
        env.home.join("state/nono"),
        dir.clone(),
    ] {
        assert_eq!(lmode(&d) & 0o7777, 0o700, "{}", d.display());
    }
    for e in fs::read_dir(&dir).unwrap().flatten() {
        let m = lmode(&e.path()) & 0o7777;
        assert_eq!(m, 0o600, "{:?}", e.file_name());
    }
}

// ------------------------------------- 5. planted files at socket paths

#[test]
fn prune_leaves_files_planted_at_old_socket_paths_alone() {
    let env = Env::new();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(full_id(&env, &env.start(&["--", "sleep", "60"])));
    }
    for id in &ids {
        let o = env.run(&["stop", &id[..8]]);
        assert_eq!(o.code, 0, "{o:?}");
        let sup = env.record(id).supervisor_pid;
        wait_until("the supervisor to exit", WAIT, || !alive(sup));
    }
    let target = env.home.join("precious");
    fs::write(&target, "keep me").unwrap();
    let [file, link, live, foreign, stale] = [0, 1, 2, 3, 4].map(|i| sock_path(&env, &ids[i]));
    fs::write(&file, "planted").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let listener = UnixListener::bind(&live).unwrap();
    drop(UnixListener::bind(&stale).unwrap());
    let foreign_owner = is_root();
    drop(UnixListener::bind(&foreign).unwrap());
    if foreign_owner {
        std::os::unix::fs::chown(&foreign, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let o = env.run(&["prune"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout.lines().count(), 5, "{o:?}");
    assert!(
        env.records().is_empty(),
        "records left: {:?}",
        env.records()
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "planted");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
    assert!(fs::symlink_metadata(&live).unwrap().file_type().is_socket());
    UnixStream::connect(&live).expect("the planted listener still works");
    drop(listener);
    if foreign_owner {
        assert!(
            fs::symlink_metadata(&foreign).is_ok(),
            "another uid's socket was removed"
        );
    }
    // Our own stale socket is a leftover and goes.
    assert!(
        fs::symlink_metadata(&stale).is_err(),
        "a stale socket of ours was kept"
    );
    for id in &ids {
        for ext in ["json", "events", "log"] {
            assert!(!env.sessions_dir().join(format!("{id}.{ext}")).exists());
        }
    }
}

// -------------------------------------------------- 6. malformed frames

#[test]
fn malformed_frames_floods_and_stalls_do_not_hurt_the_session_or_its_client() {
    let env = Env::new();
    let id = env.start(&["--", "sh"]);
    let r = env.record(&id);
    let sup = r.supervisor_pid;
    let sock = endpoint(&env, &r.id);
    let mut a = env.spawn_pty(&["attach", &id], 24, 80);
    a.send(b"echo pre-$((2+2))\r");
    a.expect("pre-4");
    env.wait_record(&id, "attached", |r| r.attached);
    let fd_base = fds(sup).len();
    let rss_base = rss_kib(sup);

    // A stalled half-frame: three bytes of a header, then silence; the
    // thread says when the supervisor closed it.
    let stall = || {
        let t0 = Instant::now();
        let mut stalled = UnixStream::connect_addr(&sock).unwrap();
        stalled.write_all(&[1, 0, 0]).unwrap();
        let staller = std::thread::spawn(move || {
            let (got, closed, _) = read_to_close(&mut stalled, Duration::from_secs(15));
            (got, closed, Instant::now())
        });
        (t0, staller)
    };
    // Others are served meanwhile: ps and logs finish well before the
    // stalled connection's 2 s are up. A run where the loaded machine took
    // longer than that for them proves nothing either way, so it is retried;
    // a supervisor that waits on the stalled peer never passes.
    let mut tries = Vec::new();
    let (t0, staller) = loop {
        let (t0, staller) = stall();
        let ps = env.run(&["ps"]);
        assert!(ps.code == 0 && ps.stdout.contains(&id), "{ps:?}");
        let logs = env.run(&["logs", &id]);
        assert!(logs.code == 0 && logs.stdout.contains("pre-4"), "{logs:?}");
        let took = t0.elapsed();
        if took < Duration::from_millis(1900) {
            assert!(
                !staller.is_finished(),
                "the stalled connection closed early"
            );
            break (t0, staller);
        }
        tries.push(took);
        assert!(
            tries.len() < 5,
            "ps and logs were not served while a connection stalled ({tries:?})"
        );
        let _ = staller.join();
    };

    let expect_refused = |bytes: &[u8], what: &str| {
        let mut s = UnixStream::connect_addr(&sock).unwrap();
        let _ = s.write_all(bytes);
        let (got, closed, took) = read_to_close(&mut s, Duration::from_secs(10));
        assert!(closed, "{what}: not closed after {took:?}");
        match frames(&got).as_slice() {
            [Frame::Reply(ReplyStatus::Refused, _)] => {}
            other => panic!("{what}: expected one Refused reply, got {other:?}"),
        }
    };
    expect_refused(&[2, 0xff, 0xff, 0xff, 0xff], "oversized input frame");
    expect_refused(&[1, 0xff, 0xff, 0xff, 0xff], "oversized hello");
    expect_refused(&[99, 0, 0, 0, 0], "unknown frame type");
    expect_refused(
        &Frame::Input(b"rm -rf /\r".to_vec()).to_bytes(),
        "input before hello",
    );
    expect_refused(&[1, 0, 0, 0, 6, b'N', b'O', b'P', b'E', 0, 1], "bad magic");
    let mut short_attach = hello(Request::Attach(WinSize::cells(24, 80)));
    short_attach.truncate(short_attach.len() - 1);
    short_attach[4] -= 1;
    expect_refused(&short_attach, "attach hello with a short size");
    // Another version is told which one this is, not dropped silently.
    let mut other = vec![1, 0, 0, 0, 7];
    other.extend_from_slice(b"NONO");
    other.extend_from_slice(&99u16.to_be_bytes());
    other.push(1);
    let mut s = UnixStream::connect_addr(&sock).unwrap();
    s.write_all(&other).unwrap();
    let (got, closed, _) = read_to_close(&mut s, Duration::from_secs(10));
    assert!(closed);
    assert!(
        matches!(
            frames(&got).as_slice(),
            [Frame::Reply(ReplyStatus::VersionMismatch, _)]
        ),
        "{got:?}"
    );
    // A second attach is busy, not a takeover.
    let mut s = UnixStream::connect_addr(&sock).unwrap();
    s.write_all(&hello(Request::Attach(WinSize::cells(10, 10))))
        .unwrap();
    let (got, _, _) = read_to_close(&mut s, Duration::from_secs(10));
    assert!(
        matches!(
            frames(&got).as_slice(),
            [Frame::Reply(ReplyStatus::Busy, _)]
        ),
        "{got:?}"
    );

    // Truncated headers, then close.
    for n in 1..5 {
        let mut s = UnixStream::connect_addr(&sock).unwrap();
        s.write_all(&[1, 0, 0, 0][..n]).unwrap();
    }
    // Random bytes, in batches so some are pending at once.
    let mut rng = Rng(0x5eed_0006);
    for _ in 0..4 {
        let mut batch = Vec::new();
        for _ in 0..12 {
            let mut s = UnixStream::connect_addr(&sock).unwrap();
            let n = 1 + rng.below(4096);
            let mut junk = rng.bytes(n);
            if junk[0] == 1 {
                junk[0] = 2; // a hello would need the magic anyway
            }
            let _ = s.write_all(&junk);
            batch.push(s);
        }
        for mut s in batch {
            let (got, closed, took) = read_to_close(&mut s, Duration::from_secs(10));
            assert!(closed, "random bytes: not closed after {took:?}");
            for f in frames(&got) {
                assert!(matches!(f, Frame::Reply(ReplyStatus::Refused, _)), "{f:?}");
            }
        }
    }
    // A thousand rapid connect/disconnects.
    for _ in 0..1000 {
        drop(UnixStream::connect_addr(&sock).unwrap());
    }
    let (_, closed, closed_at) = staller.join().unwrap();
    let stall_took = closed_at - t0;
    assert!(closed, "the stalled connection was never closed");
    assert!(
        stall_took >= Duration::from_millis(1800) && stall_took < Duration::from_secs(8),
        "stalled connection closed after {stall_took:?}, expected ~2 s"
    );

    a.send(b"echo ok-$((1+1))\r");
    a.expect("ok-2");
    let rec = env.record(&id);
    assert!(rec.status == "running" && rec.attached, "{rec:?}");
    let mut now = 0;
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        now = fds(sup).len();
        if now == fd_base {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(now, fd_base, "supervisor fds: {:?}", fds(sup));
    let rss = rss_kib(sup);
    assert!(
        rss <= rss_base + 1024,
        "VmRSS grew from {rss_base} KiB to {rss} KiB"
    );
    let ev = events(&env, &id);
    assert!(!ev.contains("denied") && !ev.contains("detached"), "{ev}");
}

// -------------------------------------------------- 7. randomized parsers

/// An exited session's record as a supervisor writes it (exited, so the
/// harness never signals its made-up pids).
const GOOD_RECORD: &str = "{\"version\":1,\"id\":\"0123456789abcdef\",\"name\":\"calm-node\",\"status\":\"exited\",\"attached\":false,\"command\":[\"sh\",\"-c\",\"echo \\\"hi\\\"\"],\"workdir\":\"/home/u\",\"profile\":null,\"network\":\"allowed\",\"supervisor_pid\":4242,\"supervisor_start_time\":123456,\"child_pid\":4243,\"started_at\":1700000000,\"ended_at\":1700000001,\"exit_code\":3,\"exit_signal\":null,\"rollback_session\":null}\n";

/// One random edit of `v`, biased towards the characters parsers care about.
fn mutate(rng: &mut Rng, v: &mut Vec<u8>, alphabet: &[u8]) {
    let len = v.len();
    match rng.below(8) {
        0 if len > 0 => v[rng.below(len)] = rng.byte(),
        1 if len > 0 => v[rng.below(len)] = *rng.pick(alphabet),
        2 => v.insert(rng.below(len + 1), *rng.pick(alphabet)),
        3 if len > 0 => {
            let a = rng.below(len);
            let b = (a + 1 + rng.below(16)).min(len);
            v.drain(a..b);
        }
        4 if len > 0 => {
            let a = rng.below(len);
            let b = (a + 1 + rng.below(32)).min(len);
            let chunk = v[a..b].to_vec();
            let at = rng.below(len + 1);
            v.splice(at..at, chunk);
        }
        5 => v.truncate(rng.below(len + 1)),
        6 if len > 1 => {
            let (a, b) = (rng.below(len), rng.below(len));
            v.swap(a, b);
        }
        _ => {
            const EDGES: [&[u8]; 12] = [
                b"99999999999999999999999",
                b"-1",
                b"1e400",
                b"-0",
                b"4294967296",
                b"18446744073709551616",
                b"\\u0000",
                b"\\ud800",
                b"\"",
                b"null",
                b"[[[[",
                b"{}",
            ];
            let digits = rng.pick(&EDGES);
            let at = rng.below(len + 1);
            v.splice(at..at, digits.iter().copied());
        }
    }
}

/// Run `f(input)`, turning a panic into a failure that shows the input.
fn no_panic<T>(what: &str, input: &[u8], f: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => panic!(
            "{what} panicked on input {:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

#[test]
fn randomized_records_never_panic_or_hang_and_errors_are_messages() {
    let mut rng = Rng(0x5eed_0701);
    let alphabet = b"{}[]\":,-+.0123456789eEtrufalsn \\\n\tx";
    let mut inputs: Vec<String> = Vec::new();
    for case in 0..6000 {
        let mut v = if case % 5 == 4 {
            (0..rng.below(200)).map(|_| *rng.pick(alphabet)).collect()
        } else {
            GOOD_RECORD.as_bytes().to_vec()
        };
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut v, alphabet);
        }
        inputs.push(String::from_utf8_lossy(&v).into_owned());
    }
    // The minimal forms of what the mutations find, and deep nesting.
    inputs.push("{\"x\":}".into());
    inputs.push("{\"x\":[".into());
    inputs.push(format!("{{\"x\":{}", "[".repeat(100_000)));
    // A hang cannot be caught: parse in a worker and give up on it after a deadline.
    let inputs = Arc::new(inputs);
    let current = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let (inputs, current) = (inputs.clone(), current.clone());
        std::thread::spawn(move || {
            let mut ok = 0;
            for (i, text) in inputs.iter().enumerate() {
                current.store(i, Ordering::SeqCst);
                let got = std::panic::catch_unwind(|| nono::registry::parse_record(text));
                let verdict = match got {
                    Err(_) => Err(format!("panicked on {text:?}")),
                    Ok(Ok(r)) => {
                        ok += 1;
                        let id_ok = r.id.len() == 16 && r.id.bytes().all(|b| b.is_ascii_hexdigit());
                        if r.version > nono::registry::RECORD_VERSION || !id_ok {
                            Err(format!("accepted an invalid record {text:?}"))
                        } else {
                            Ok(())
                        }
                    }
                    Ok(Err(m)) if m.trim().is_empty() => Err(format!("empty error for {text:?}")),
                    Ok(Err(_)) => Ok(()),
                };
                if let Err(e) = verdict {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
            let _ = tx.send(Ok(ok));
        });
    }
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(ok)) => assert!(ok > 0, "no mutation was accepted; the mutator is broken"),
        Ok(Err(e)) => panic!("parse_record {e}"),
        Err(_) => {
            let i = current.load(Ordering::SeqCst);
            let t = &inputs[i];
            panic!(
                "parse_record did not return within 20 s on input {i} ({} bytes): {:?}",
                t.len(),
                &t[..t.len().min(300)]
            )
        }
    }
}

/// A random frame of any kind.
fn random_frame(rng: &mut Rng) -> Frame {
    let size = WinSize {
        rows: rng.next() as u16,
        cols: rng.next() as u16,
        xpixel: rng.next() as u16,
        ypixel: rng.next() as u16,
    };
    let n = rng.below(300);
    let text: String = (0..rng.below(40))
        .map(|_| (b'a' + rng.below(26) as u8) as char)
        .collect();
    match rng.below(13) {
        0 => Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            request: Some(Request::Attach(size)),
        }),
        1 => Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            request: Some(Request::Detach),
        }),
        2 => Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            request: Some(Request::Stop {
                force: rng.below(2) == 1,
                timeout_ms: rng.next() as u32,
            }),
        }),
        3 => Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            request: Some(Request::Logs {
                follow: rng.below(2) == 1,
                lines: rng.next() as u32,
            }),
        }),
        4 => Frame::Input(rng.bytes(n)),
        5 => Frame::Resize(size),
        6 => Frame::Eof,
        7 => Frame::DetachMe,
        8 => Frame::Reply(
            *rng.pick(&[
                ReplyStatus::Ok,
                ReplyStatus::Busy,
                ReplyStatus::Denied,
                ReplyStatus::VersionMismatch,
                ReplyStatus::Refused,
            ]),
            text,
        ),
        9 => Frame::Output(rng.bytes(n)),
        10 => Frame::Exited(nono::protocol::ExitStatus::Code(rng.next() as i32)),
        11 => Frame::Exited(nono::protocol::ExitStatus::Signal(rng.next() as i32)),
        _ => Frame::Detached(text),
    }
}

#[test]
fn randomized_frames_reassemble_exactly_and_mutations_never_panic() {
    let mut rng = Rng(0x5eed_0702);
    for case in 0..3000 {
        let originals: Vec<Frame> = (0..1 + rng.below(6))
            .map(|_| random_frame(&mut rng))
            .collect();
        let mut bytes = Vec::new();
        for f in &originals {
            f.encode(&mut bytes);
        }
        let mutated = case % 3 != 0;
        if mutated {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(bytes.len());
                bytes[i] = if rng.below(2) == 0 {
                    rng.byte()
                } else {
                    bytes[i] ^ (1 << rng.below(8))
                };
            }
        }
        let decoded = no_panic("FrameReader", &bytes, || {
            let mut r = FrameReader::new();
            let mut got = Vec::new();
            let mut rest = &bytes[..];
            'feed: while !rest.is_empty() {
                let n = (1 + rng.below(64)).min(rest.len());
                r.push(&rest[..n]);
                rest = &rest[n..];
                loop {
                    match r.next_frame() {
                        Ok(Some(f)) => got.push(f),
                        Ok(None) => break,
                        Err(e) => {
                            assert!(!e.to_string().is_empty());
                            break 'feed;
                        }
                    }
                }
            }
            got
        });
        if !mutated {
            assert_eq!(decoded, originals, "case {case}");
        }
        // Whatever decodes re-encodes to something that decodes the same.
        for f in decoded {
            let mut r = FrameReader::new();
            r.push(&f.to_bytes());
            assert_eq!(r.next_frame(), Ok(Some(f.clone())), "case {case}");
            assert!(!r.has_partial());
        }
    }
}

#[test]
fn randomized_config_and_detach_sequences_never_panic() {
    let mut rng = Rng(0x5eed_0703);
    let bases = [
        "[ui]\ndetach_sequence = \"ctrl-a q\"\nscrollback_lines = 5000\n",
        "# comment\n[ui]\nscrollback_lines = 0\n",
        "ui.detach_sequence = \"ctrl-] d\"\n",
        "[ui]\ndetach_sequence = 'tab x'\n",
        "",
    ];
    let alphabet = b"[]{}=\"'#.\n \t-_uidetachsqcrl0123456789e+";
    for case in 0..6000 {
        let mut v = bases[case % bases.len()].as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut v, alphabet);
        }
        let text = String::from_utf8_lossy(&v).into_owned();
        match no_panic("config::parse", &v, || nono::config::parse(&text)) {
            Ok(c) => {
                assert!(c.detach_sequence.len() >= 2, "{text:?}");
                assert!(c.scrollback_lines <= 1_000_000, "{text:?}");
            }
            Err(m) => assert!(m.starts_with("line "), "{m:?} for {text:?}"),
        }
    }
    let tokens = [
        "ctrl-]",
        "ctrl-a",
        "ctrl-space",
        "ctrl-@",
        "ctrl-?",
        "ctrl-",
        "ctrl-ab",
        "ctrl-é",
        "d",
        "q",
        "esc",
        "ESC",
        "tab",
        "enter",
        "space",
        "é",
        "日",
        "\u{7f}",
        "\u{1b}",
        "x",
        "",
        "  ",
        "\t",
    ];
    for _ in 0..5000 {
        let mut text = String::new();
        for _ in 0..rng.below(5) {
            let t: &&str = rng.pick(&tokens);
            text.push_str(t);
            let sep: &&str = rng.pick(&[" ", "  ", "\t", ""]);
            text.push_str(sep);
        }
        if rng.below(4) == 0 {
            let n = rng.below(8);
            let junk = rng.bytes(n);
            text.push_str(&String::from_utf8_lossy(&junk));
        }
        match no_panic("parse_detach_sequence", text.as_bytes(), || {
            nono::config::parse_detach_sequence(&text)
        }) {
            Ok(seq) => {
                assert!(seq.len() >= 2, "{text:?} -> {seq:?}");
                assert_ne!(seq[0], 0x1b, "{text:?} starts with esc");
                let mut m = nono::config::DetachMatcher::new(seq.clone());
                let mut out = Vec::new();
                assert!(
                    m.feed(&seq, &mut out),
                    "{text:?}: its own bytes do not detach"
                );
            }
            Err(m) => assert!(!m.is_empty()),
        }
    }
}

#[test]
fn corrupt_huge_truncated_binary_and_odd_record_files_are_each_named_once() {
    let env = Env::new();
    let id = env.start(&["--", "sleep", "60"]);
    let dir = env.sessions_dir();
    let mut rng = Rng(0x5eed_0704);
    let mut planted = Vec::new();
    let mut plant = |n: u32| {
        let p = dir.join(format!("{n:016x}.json"));
        planted.push(p.clone());
        p
    };
    fs::write(plant(1), &GOOD_RECORD[..GOOD_RECORD.len() / 2]).unwrap();
    let mut huge = GOOD_RECORD.trim_end().to_string();
    huge.push_str(&" ".repeat(1024 * 1024 + 10));
    fs::write(plant(2), huge).unwrap();
    fs::write(plant(3), rng.bytes(700)).unwrap();
    fs::write(plant(4), "").unwrap();
    fs::write(
        plant(5),
        GOOD_RECORD.replace("\"version\":1", "\"version\":99"),
    )
    .unwrap();
    fs::write(plant(6), GOOD_RECORD).unwrap(); // id does not match the name
    let fifo = plant(7);
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let elsewhere = env.home.join("record.json");
    fs::write(
        &elsewhere,
        GOOD_RECORD.replace("0123456789abcdef", "0000000000000008"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&elsewhere, plant(8)).unwrap();
    fs::create_dir(plant(9)).unwrap();
    let o = run_bounded(env.cmd(&["ps"]), Duration::from_secs(20));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains(&id), "{o:?}");
    assert_eq!(o.stdout.lines().count(), 2, "{o:?}");
    for p in &planted {
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(o.stderr.matches(name).count(), 1, "{name}: {}", o.stderr);
    }
    assert_eq!(o.stderr.lines().count(), planted.len(), "{}", o.stderr);
    assert!(o.stderr.contains("larger than"), "{}", o.stderr);
    assert!(o.stderr.contains("newer nono"), "{}", o.stderr);
    assert!(
        o.stderr.contains("does not match its file name"),
        "{}",
        o.stderr
    );
    // Nothing it cannot read is pruned.
    let o = run_bounded(env.cmd(&["prune"]), Duration::from_secs(20));
    assert_eq!(o.code, 0, "{o:?}");
    for p in &planted {
        assert!(
            fs::symlink_metadata(p).is_ok(),
            "{} was removed",
            p.display()
        );
        // The harness reads records with plain reads on drop; a FIFO would block it.
        common::remove_any(p);
    }
}

#[test]
fn a_record_with_a_broken_unknown_field_is_named_not_fatal() {
    let env = Env::new();
    let id = env.start(&["--", "sleep", "60"]);
    let dir = env.sessions_dir();
    let mut failures = Vec::new();
    for (n, text) in ["{\"x\":[", "{\"version\":1,\"x\":{", "{\"x\":}", "{\"x\":"]
        .iter()
        .enumerate()
    {
        let p = dir.join(format!("{:016x}.json", 0xbad0 + n));
        fs::write(&p, text).unwrap();
        let mut c = env.cmd(&["ps"]);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let o = status.map(|_| Out::from(child.wait_with_output().unwrap()));
        // Remove it before anything else parses it (Env's drop does).
        fs::remove_file(&p).unwrap();
        match o {
            None => failures.push(format!("{text:?}: nono ps still running after 5 s")),
            Some(o) if o.code != 0 || !o.stdout.contains(&id) => failures.push(format!(
                "{text:?}: exit {} {:?}",
                o.code,
                o.stderr.lines().next()
            )),
            Some(o) if o.stderr.lines().count() != 1 => {
                failures.push(format!("{text:?}: warnings {:?}", o.stderr))
            }
            Some(_) => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ------------------------------------------------------------ 8. faults

#[test]
fn killing_the_attached_client_mid_output_leaves_a_session_that_reattaches() {
    let env = Env::new();
    let id = env.start(&[
        "--",
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo tick-$i; [ $((i % 200)) -eq 0 ] && sleep 0.01; done",
    ]);
    let mut a = env.spawn_pty(&["attach", &id], 24, 80);
    a.expect("tick-");
    env.wait_record(&id, "attached", |r| r.attached);
    a.pump(50);
    let last = max_tick(&a.text());
    a.child.kill().unwrap();
    let _ = a.child.wait();
    drop(a);
    let r = env.wait_record(&id, "detached", |r| !r.attached);
    assert_eq!(r.status, "running");
    assert!(alive(r.child_pid.unwrap()));
    let mut b = env.spawn_pty(&["attach", &id], 24, 80);
    let deadline = Instant::now() + WAIT;
    while max_tick(&b.text()) <= last {
        assert!(
            Instant::now() < deadline,
            "no new output after reattach: {:?}",
            b.text()
        );
        b.pump(50);
    }
    let ev = events(&env, &id);
    assert!(ev.contains("client disconnected"), "{ev}");
    drop(b);
    let o = env.run(&["stop", &id, "--timeout", "5"]);
    assert_eq!(o.code, 0, "{o:?}");
}

/// The largest N in `tick-N` in `text`.
fn max_tick(text: &str) -> u64 {
    text.split("tick-")
        .skip(1)
        .filter_map(|s| {
            let d: String = s.chars().take_while(char::is_ascii_digit).collect();
            d.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn killing_the_supervisor_during_stop_still_ends_the_stop_and_every_process() {
    let env = Env::new();
    let id = env.start(&[
        "--",
        "sh",
        "-c",
        "trap '' TERM HUP; while :; do sleep 0.05; done",
    ]);
    let r = env.record(&id);
    let child = r.child_pid.unwrap();
    let stop = env
        .cmd(&["stop", &id, "--timeout", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let events_file = env.sessions_dir().join(format!("{}.events", r.id));
    wait_until("the stop request", WAIT, || {
        fs::read_to_string(&events_file).is_ok_and(|e| e.contains("\"event\":\"stop\""))
    });
    nono::sys::kill(r.supervisor_pid, libc::SIGKILL).unwrap();
    let killed = Instant::now();
    let o = Out::from(stop.wait_with_output().unwrap());
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        killed.elapsed()
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout,
        format!("Stopped session {id}: ended; how is unknown (its supervisor was killed).\n")
    );
    wait_until("every process of the session to end", WAIT, || {
        group_members(child).is_empty() && !alive(r.supervisor_pid)
    });
    assert!(env.run(&["ps", "-a"]).stdout.contains("exited(?)"));
}

#[test]
fn a_full_or_read_only_registry_fails_the_start_cleanly() {
    if !is_root() {
        eprintln!("note: not root; cannot mount; skipping");
        return;
    }
    let env = Env::new();
    let mnt = env.home.join("mnt");
    let Some(fs_) = Tmpfs::mount(&mnt, "64k") else {
        return;
    };
    let state = mnt.join("state");
    assert_eq!(run_in(&env, &state, &["ps"]).code, 0); // creates the registry
    let sessions = state.join("nono/sessions");
    // Full: not a byte left.
    let filler = mnt.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    while f.write_all(&[0u8; 4096]).is_ok() {}
    drop(f);
    let o = run_in(&env, &state, &["run", "-d", "--", "sleep", "60"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.starts_with("nono: cannot write ") && o.stderr.contains("No space left on device"),
        "{o:?}"
    );
    let left: Vec<_> = fs::read_dir(&sessions)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind on a full disk: {left:?}");
    fs::remove_file(&filler).unwrap();
    // Read-only: the start fails, reading still works.
    fs_.remount("ro");
    let o = run_in(&env, &state, &["run", "-d", "--", "sleep", "60"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    assert_eq!(run_in(&env, &state, &["ps", "-a"]).code, 0);
    fs_.remount("rw");
    assert!(fs::read_dir(&sessions).unwrap().next().is_none());
    // With room again, it starts (and is stopped: this registry is not the Env's).
    let o = run_in(&env, &state, &["run", "-d", "--", "sleep", "60"]);
    assert_eq!(o.code, 0, "{o:?}");
    let short = o
        .stdout
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches('.');
    assert_eq!(run_in(&env, &state, &["stop", "--force", short]).code, 0);
}

#[test]
fn a_start_that_runs_out_of_space_midway_leaves_nothing_behind() {
    if !is_root() {
        eprintln!("note: not root; cannot mount; skipping");
        return;
    }
    let env = Env::new();
    // 16 pages; the record takes one, the first event line one, the durable
    // rewrite one: with one or two free the start fails after binding the socket.
    // tmpfs counts pages per CPU in batches, so where exactly the space runs
    // out varies: try each amount a few times.
    for attempt in 0..15u64 {
        let free_pages = attempt % 5;
        let mnt = env.home.join(format!("mnt{attempt}"));
        let Some(_fs) = Tmpfs::mount(&mnt, "64k") else {
            return;
        };
        let state = mnt.join("state");
        assert_eq!(run_in(&env, &state, &["ps"]).code, 0);
        // Filled in page-sized writes, as a filling disk would be.
        let mut f = fs::File::create(mnt.join("filler")).unwrap();
        for _ in 0..16 - free_pages {
            f.write_all(&[0u8; 4096]).unwrap();
        }
        drop(f);
        let o = run_in(&env, &state, &["run", "-d", "--", "sleep", "60"]);
        if o.code == 0 {
            let short = o
                .stdout
                .split_whitespace()
                .nth(3)
                .unwrap()
                .trim_end_matches('.');
            run_in(&env, &state, &["stop", "--force", short]);
            continue;
        }
        assert!(
            o.stderr.contains("No space left on device"),
            "{free_pages}: {o:?}"
        );
        let left: Vec<_> = fs::read_dir(state.join("nono/sessions"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            left.is_empty(),
            "{free_pages} free page(s): a failed start left {left:?}"
        );
    }
}

// ------------------------------------------------------------ 9. fd leaks

#[test]
fn the_program_gets_only_the_pty_and_attach_cycles_leak_no_fds() {
    let env = Env::new();
    // An fd the caller leaks into nono must reach neither supervisor nor program.
    let out = env
        .sh(
            "exec 7</etc/hostname; exec \"$0\" run -d -- cat",
            &[bin().to_str().unwrap()],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let o = Out::from(out);
    assert_eq!(o.code, 0, "{o:?}");
    let id = o
        .stdout
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches('.')
        .to_string();
    let r = env.record(&id);
    let child = r.child_pid.unwrap();
    assert_eq!(fds(child), [0, 1, 2], "program fds");
    let tty = fs::read_link(format!("/proc/{child}/fd/0")).unwrap();
    assert!(tty.to_string_lossy().starts_with("/dev/pts/"), "{tty:?}");
    for fd in [1, 2] {
        assert_eq!(
            fs::read_link(format!("/proc/{child}/fd/{fd}")).unwrap(),
            tty
        );
    }
    let sup = r.supervisor_pid;
    let leaked = fds(sup)
        .into_iter()
        .filter_map(|fd| fs::read_link(format!("/proc/{sup}/fd/{fd}")).ok())
        .find(|t| t.to_string_lossy().contains("hostname"));
    assert!(
        leaked.is_none(),
        "the supervisor kept the caller's fd: {leaked:?}"
    );

    // An attached start: the launcher's socket pair must not reach the program.
    let mut a = env.spawn_pty(&["run", "--name", "attached", "--", "sleep", "300"], 24, 80);
    a.pump(0);
    let mut prog = None;
    wait_until("the attached session", WAIT, || {
        prog = env
            .records()
            .into_iter()
            .find(|r| r.name == "attached" && r.status == "running")
            .and_then(|r| r.child_pid);
        prog.is_some()
    });
    assert_eq!(fds(prog.unwrap()), [0, 1, 2]);

    let base = fds(sup);
    for i in 0..20 {
        let mut c = env.spawn_pty(&["attach", &id], 24, 80);
        // cat echoes the line back once the terminal has been echoed: two copies.
        c.send(format!("cycle-{i}.\r").as_bytes());
        let line = format!("cycle-{i}.");
        wait_until("the echo", WAIT, || {
            c.pump(20);
            c.count(&line) >= 2
        });
        c.send(b"\x1dd");
        assert_eq!(c.wait(), 0, "{:?}", c.text());
    }
    env.wait_record(&id, "detached", |r| !r.attached);
    let mut now = Vec::new();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        now = fds(sup);
        if now == base {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(now, base, "supervisor fds after 20 attach/detach cycles");
    assert_eq!(fds(child), [0, 1, 2]);
}

// ------------------------------------- 10. no session reaches another

/// The attacker's script, run as a session's program: wait for OUT/targets
/// (the victims' ids and its own session's), find each one's socket in /proc/net/unix as an attacker
/// would (abstract `@nono-ID-…` or, from older versions, `ID.sock`), and
/// send each request (NAME=HEX) on a fresh connection. Writes one line per
/// attempt to OUT/ME: `ID REQUEST errno:NAME` or `ID REQUEST HEX-REPLY`,
/// then sleeps so the session stays live.
const ATTACK: &str = r#"
import errno, os, socket, sys, time
out, me, reqs = sys.argv[1], sys.argv[2], [a.split('=') for a in sys.argv[3:]]
tf = os.path.join(out, 'targets')
while not os.path.exists(tf):
    time.sleep(0.05)
# Victims, and NAME=ID for each attacker: its own session is a target too.
ids = [t.split('=')[-1] for t in open(tf).read().split() if '=' not in t or t.split('=')[0] == me]
found = {}
for line in open('/proc/net/unix').read().splitlines()[1:]:
    f = line.split()
    if len(f) < 8:
        continue
    for i in ids:
        if f[7].startswith('@nono-' + i) or f[7].endswith('/' + i + '.sock'):
            found.setdefault(i, set()).add(f[7])
lines = []
for i in ids:
    if i not in found:
        lines.append(i + ' - unseen')
    for p in sorted(found.get(i, [])):
        for name, data in reqs:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            try:
                s.connect('\0' + p[1:] if p.startswith('@') else p)
            except OSError as e:
                lines.append('%s %s errno:%s' % (i, name, errno.errorcode.get(e.errno, e.errno)))
                continue
            # A refusal comes at once and closes; an accepted attach stays open.
            s.settimeout(1)
            try:
                s.sendall(bytes.fromhex(data))
            except OSError:
                pass
            got = b''
            while True:
                try:
                    b = s.recv(65536)
                except OSError:
                    break
                if not b:
                    break
                got += b
            lines.append('%s %s %s' % (i, name, got.hex() or 'empty'))
tmp = os.path.join(out, '.' + me)
with open(tmp, 'w') as f:
    f.write('\n'.join(lines) + '\n')
os.rename(tmp, os.path.join(out, me))
os.execvp('sleep', ['sleep', '300'])
"#;

#[test]
fn no_program_in_any_session_reaches_any_session_sandboxed_or_not() {
    let Some(py) = python() else {
        eprintln!("note: no python3; skipping");
        return;
    };
    let env = Env::new();
    let out = env.home.join("attack");
    fs::create_dir_all(&out).unwrap();
    let secret = "SECRET-TOKEN-123";
    let show = format!("printf '%s\\n' {secret}; exec sleep 300");
    let victims = [
        env.start(&["-n", "victim-sandboxed", "--", "sh", "-c", &show]),
        env.start(&["-n", "victim-open", "--no-sandbox", "--", "sh", "-c", &show]),
    ];
    let size = WinSize::cells(24, 80);
    let reqs: Vec<String> = [
        (
            "logs",
            Request::Logs {
                follow: false,
                lines: 0,
            },
        ),
        ("attach", Request::Attach(size)),
        ("detach", Request::Detach),
        (
            "stop",
            Request::Stop {
                force: true,
                timeout_ms: 0,
            },
        ),
    ]
    .iter()
    .map(|(n, r)| format!("{n}={}", hex(&hello(*r))))
    .collect();
    let o = out.to_str().unwrap();
    let attack = |name: &str, flags: &[&str]| {
        let mut args = vec!["-n", name];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", py.to_str().unwrap(), "-c", ATTACK, o, name]);
        args.extend(reqs.iter().map(String::as_str));
        env.start(&args)
    };
    let attackers = [
        ("sandboxed", attack("sandboxed", &["-a", o])),
        (
            "net-allowed",
            attack("net-allowed", &["-a", o, "--net", "allowed"]),
        ),
        ("unsandboxed", attack("unsandboxed", &["--no-sandbox"])),
    ];
    wait_until("the victims to show the secret", WAIT, || {
        victims
            .iter()
            .all(|v| env.run(&["logs", v]).stdout.contains(secret))
    });
    let mut targets: Vec<String> = victims.iter().map(|v| full_id(&env, v)).collect();
    targets.extend(
        attackers
            .iter()
            .map(|(n, a)| format!("{n}={}", full_id(&env, a))),
    );
    fs::write(out.join(".targets"), targets.join("\n")).unwrap();
    fs::rename(out.join(".targets"), out.join("targets")).unwrap();

    let mut report = String::new();
    for (name, id) in &attackers {
        let p = out.join(name);
        wait_until(&format!("the {name} attacker's report"), 3 * WAIT, || {
            p.exists()
        });
        let text = fs::read_to_string(&p).unwrap();
        let kernel = env.record(id).peer_guard == "kernel";
        for line in text.lines() {
            report.push_str(&format!("{name}: {line}\n"));
            let f: Vec<&str> = line.split(' ').collect();
            assert_ne!(f[1], "-", "{name} did not even find {}: {text}", f[0]);
            let outcome = f[2];
            if kernel {
                // The kernel refuses: the supervisor never sees the attempt.
                assert_eq!(outcome, "errno:EPERM", "{name}: {line}");
                continue;
            }
            let reply = frames(&unhex(outcome));
            match reply.as_slice() {
                [Frame::Reply(ReplyStatus::Denied, m)] => assert!(
                    m.contains("runs inside this session")
                        || m.contains("runs inside another session"),
                    "{name}: {m}"
                ),
                other => panic!("{name} got through: {line} -> {other:?}"),
            }
        }
    }
    eprintln!("{report}");
    assert!(!report.contains(&hex(secret.as_bytes())), "{report}");
    // Every session still runs, nobody attached, nothing stopped.
    for id in victims.iter().chain(attackers.iter().map(|(_, a)| a)) {
        let r = env.record(id);
        assert!(r.status == "running" && !r.attached, "{r:?}");
        assert!(alive(r.supervisor_pid) && alive(r.child_pid.unwrap()));
    }
    // Refusals that reached a supervisor are in the target's log, naming the peer.
    let open_pid = env.record(&attackers[2].1).child_pid.unwrap();
    for v in &victims {
        let ev = events(&env, v);
        assert!(
            ev.lines()
                .filter(|l| l.contains("denied")
                    && l.contains(&format!("pid {open_pid} runs inside another session")))
                .count()
                == 4,
            "{ev}"
        );
    }
    let own = events(&env, &attackers[2].1);
    assert!(
        own.contains(&format!("pid {open_pid} runs inside this session")),
        "{own}"
    );
    if abi() >= 6 {
        for (name, id) in &attackers[..2] {
            assert_eq!(env.record(id).peer_guard, "kernel", "{name}");
        }
    }
    assert_eq!(env.record(&attackers[2].1).peer_guard, "supervisor");
    let inspect = env.run(&["inspect", &attackers[2].1]).stdout;
    assert!(
        inspect
            .lines()
            .any(|l| l.starts_with("Peer guard:") && l.contains("supervisors only")),
        "{inspect}"
    );
}

/// The kernel's Landlock ABI (0 without Landlock).
fn abi() -> u32 {
    nono::sys::landlock_abi().unwrap_or(0)
}

// ------------------------------- 11. clients trust nothing unverified

/// Plant a record that says session `id` runs under supervisor `pid` and
/// listens on the abstract socket `socket`.
fn plant_record(env: &Env, id: &str, pid: i32, socket: &str) {
    let start = nono::procfs::stat(pid).unwrap().start_time;
    let rec = nono::registry::Record {
        version: nono::registry::RECORD_VERSION,
        id: id.into(),
        name: "planted".into(),
        status: "running".into(),
        command: vec!["planted".into()],
        network: "allowed".into(),
        socket: socket.into(),
        supervisor_pid: pid,
        supervisor_start_time: start,
        child_pid: Some(pid),
        started_at: nono::registry::now(),
        ..Default::default()
    };
    fs::create_dir_all(env.sessions_dir()).unwrap();
    fs::write(
        env.sessions_dir().join(format!("{id}.json")),
        nanoserde::SerJson::serialize_json(&rec),
    )
    .unwrap();
}

#[test]
fn stop_never_kills_a_pid_a_record_merely_names() {
    let env = Env::new();
    assert_eq!(env.run(&["ps"]).code, 0);
    let mut sleep = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = sleep.id() as i32;
    // The planted record's socket is served, silently, by someone else (us).
    let name = format!("nono-planted-{}", std::process::id());
    let squat =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    squat.set_nonblocking(true).unwrap();
    let id = "0123456789abcdef";
    plant_record(&env, id, pid, &name);
    let t0 = Instant::now();
    let o = env.run(&["stop", "-t", "0", id]);
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(o.stderr.lines().count(), 1, "{o:?}");
    assert!(
        o.stderr
            .contains("is not its supervisor's (it is served by pid")
            && o.stderr.contains("nothing was sent"),
        "{o:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(alive(pid), "stop killed an unrelated process");
    // Nothing was sent: the squatter's connection carries no byte.
    let (mut c, _) = squat.accept().expect("stop connected");
    let (got, _, _) = read_to_close(&mut c, Duration::from_millis(200));
    assert!(got.is_empty(), "sent {got:?}");
    // Not served at all: nothing to verify, nothing killed.
    drop(squat);
    // A parallel test's fork holds a copy of the listener until it execs.
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    wait_until("the squatter's socket to close", WAIT, || {
        UnixStream::connect_addr(&addr).is_err()
    });
    let o = env.run(&["stop", "--force", id]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("not accepting connections"), "{o:?}");
    assert!(alive(pid));
    for args in [&["logs", id][..], &["detach", id]] {
        let o = env.run(args);
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        assert!(alive(pid));
    }
    fs::remove_file(env.sessions_dir().join(format!("{id}.json"))).unwrap();
    sleep.kill().unwrap();
    sleep.wait().unwrap();
}

#[test]
fn clients_refuse_a_socket_not_served_by_the_sessions_supervisor() {
    let env = Env::new();
    let id = env.start(&["--", "sleep", "300"]);
    let r = env.record(&id);
    // A record naming the real supervisor, but whose socket we serve: every
    // client refuses before sending a byte.
    let name = format!("nono-fake-{}", std::process::id());
    let squat =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let fake = "fedcba9876543210";
    plant_record(&env, fake, r.supervisor_pid, &name);
    let mut a = env.spawn_pty(&["attach", fake], 24, 80);
    assert_eq!(a.wait(), 1, "{}", a.text());
    assert!(a.text().contains("is not its supervisor's"), "{}", a.text());
    let (mut c, _) = squat.accept().unwrap();
    let (got, _, _) = read_to_close(&mut c, Duration::from_millis(100));
    assert!(got.is_empty(), "attach sent {got:?}");
    for args in [
        &["logs", fake][..],
        &["logs", "-f", fake],
        &["detach", fake],
        &["stop", fake],
    ] {
        let o = env.run(args);
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        assert_eq!(o.stderr.lines().count(), 1, "{args:?}: {o:?}");
        assert!(
            o.stderr.contains("is not its supervisor's"),
            "{args:?}: {o:?}"
        );
        let (mut c, _) = squat.accept().unwrap();
        let (got, _, _) = read_to_close(&mut c, Duration::from_millis(100));
        assert!(got.is_empty(), "{args:?} sent {got:?}");
    }
    fs::remove_file(env.sessions_dir().join(format!("{fake}.json"))).unwrap();
    assert!(alive(r.supervisor_pid) && alive(r.child_pid.unwrap()));
    assert_eq!(env.run(&["logs", &id]).code, 0);
}

#[test]
fn files_of_another_uid_in_the_registry_are_named_once_and_ignored() {
    let Some(user) = common::test_user() else {
        eprintln!("note: no unprivileged test user; skipping");
        return;
    };
    let env = Env::for_user(user);
    let id = env.start(&["--", "sleep", "300"]);
    let r = env.record(&id);
    // The sessions directory was opened up (chmod from inside a sandbox) and
    // another uid (root here) planted a record and an event log.
    let dir = env.sessions_dir();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let foreign = "00000000000000aa";
    let rec = fs::read_to_string(dir.join(format!("{}.json", r.id)))
        .unwrap()
        .replace(&r.id, foreign)
        .replace("\"name\":\"", "\"name\":\"x");
    fs::write(dir.join(format!("{foreign}.json")), rec).unwrap();
    fs::write(dir.join(format!("{foreign}.events")), "{}\n").unwrap();
    let ps = env.run(&["ps"]);
    assert_eq!(ps.code, 0, "{ps:?}");
    assert!(
        ps.stdout.contains(&id) && !ps.stdout.contains("000000"),
        "{ps:?}"
    );
    let warned: Vec<&str> = ps.stderr.lines().collect();
    assert!(
        warned.iter().any(|l| l.contains("put it back to 0700")),
        "{ps:?}"
    );
    assert_eq!(
        warned
            .iter()
            .filter(|l| l.contains(&format!("{foreign}.json")) && l.contains("owned by uid 0"))
            .count(),
        1,
        "{ps:?}"
    );
    assert_eq!(lmode(&dir) & 0o777, 0o700);
    let o = env.run(&["inspect", foreign]);
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(env.run(&["stop", &id]).code, 0);
    let o = env.run(&["inspect", &id, "--events"]);
    assert!(o.code == 0 && o.stdout.contains("started"), "{o:?}");
    fs::remove_file(dir.join(format!("{foreign}.json"))).unwrap();
}

// ------------------------------- 12. nothing a peer sends grows a supervisor

#[test]
fn a_huge_window_in_a_hello_is_clamped_not_allocated() {
    let env = Env::new();
    let id = env.start(&["--", "sh"]);
    let r = env.record(&id);
    let sock = endpoint(&env, &r.id);
    let mut s = UnixStream::connect_addr(&sock).unwrap();
    s.write_all(&hello(Request::Attach(WinSize::cells(65535, 65535))))
        .unwrap();
    let mut reader = FrameReader::new();
    let mut buf = [0u8; 65536];
    s.set_read_timeout(Some(WAIT)).unwrap();
    loop {
        // A signal to this test process (another test's) may interrupt the read.
        let n = match s.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r.unwrap(),
        };
        assert!(n > 0, "the supervisor hung up");
        reader.push(&buf[..n]);
        if let Ok(Some(f)) = reader.next_frame() {
            assert_eq!(f, Frame::Reply(ReplyStatus::Ok, "attached".into()));
            break;
        }
    }
    let mut input = Vec::new();
    nono::protocol::push_input(&mut input, b"stty size\r");
    s.write_all(&input).unwrap();
    let mut seen = Vec::new();
    wait_until("the clamped size", WAIT, || {
        if let Ok(n) = s.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).contains("1000 2000")
    });
    assert!(
        rss_kib(r.supervisor_pid) < 256 * 1024,
        "{} KiB",
        rss_kib(r.supervisor_pid)
    );
    drop(s);
    assert_eq!(env.record(&id).status, "running");
    assert_eq!(env.run(&["logs", &id]).code, 0);
}

#[test]
fn a_refusal_flood_is_summed_up_not_logged_line_by_line() {
    let Some(user) = common::test_user() else {
        eprintln!("note: no unprivileged test user; skipping");
        return;
    };
    let env = Env::for_user(user);
    let id = env.start(&["--", "sleep", "300"]);
    let r = env.record(&id);
    let sock = endpoint(&env, &r.id);
    // We are root: another uid to this session. 2000 knocks in a loop.
    for _ in 0..2000 {
        let mut s = UnixStream::connect_addr(&sock).unwrap();
        let mut b = [0u8; 256];
        let _ = s.read(&mut b);
    }
    assert_eq!(env.run(&["stop", &id]).code, 0);
    let ev = events(&env, &id);
    let denied: Vec<&str> = ev.lines().filter(|l| l.contains("denied")).collect();
    assert_eq!(denied.len(), 11, "{ev}");
    assert!(
        denied[..10]
            .iter()
            .all(|l| l.contains("uid 0 (pid ") && l.contains(&std::process::id().to_string())),
        "{ev}"
    );
    assert!(denied[10].contains("x1990 more in the last minute"), "{ev}");
    let size = fs::metadata(env.sessions_dir().join(format!("{}.events", r.id)))
        .unwrap()
        .len();
    assert!(size < 8 * 1024, "{size} bytes of events");
}

#[test]
fn inspect_shows_the_tail_of_a_large_event_log() {
    let env = Env::new();
    let id = env.start(&["--", "true"]);
    let r = env.wait_record(&id, "the end", |r| r.status == "exited");
    let path = env.sessions_dir().join(format!("{}.events", r.id));
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    for i in 0..60_000 {
        writeln!(
            f,
            "{{\"time\":1,\"event\":\"denied\",\"detail\":\"knock {i:06} from a connect loop\"}}"
        )
        .unwrap();
    }
    drop(f);
    assert!(fs::metadata(&path).unwrap().len() > 3 * 1024 * 1024);
    let o = env.run(&["inspect", &id, "--events"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let first = o.stdout.lines().next().unwrap();
    assert!(first.contains("are left out; the last"), "{first}");
    assert!(o
        .stdout
        .trim_end()
        .ends_with("knock 059999 from a connect loop"));
    assert!(o.stderr.is_empty(), "{}", o.stderr);
}

#[test]
fn silent_connections_cannot_lock_out_a_real_client() {
    let env = Env::new();
    let id = env.start(&["--", "sh", "-c", "echo ready; exec sleep 300"]);
    let r = env.record(&id);
    // The program may not have printed yet when the start returns.
    wait_until("the program's output", WAIT, || {
        env.run(&["logs", &id]).stdout.contains("ready")
    });
    let sock = endpoint(&env, &r.id);
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood = {
        let (sock, stop, rounds) = (sock.clone(), stop.clone(), rounds.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                rounds.fetch_add(1, Ordering::SeqCst);
                // 40 silent connections, renewed every 1.9 s.
                let held: Vec<UnixStream> = (0..40)
                    .filter_map(|_| UnixStream::connect_addr(&sock).ok())
                    .collect();
                let until = Instant::now() + Duration::from_millis(1900);
                while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                drop(held);
            }
        })
    };
    // At least ten requests, and across two renewals of the flood: a real
    // client that connects while the silent ones are replaced must get in too.
    let (mut runs, mut failed) = (0, Vec::new());
    while runs < 10 || rounds.load(Ordering::SeqCst) < 3 {
        let o = env.run(&["logs", &id]);
        if o.code != 0 || !o.stdout.contains("ready") {
            failed.push(o);
        }
        runs += 1;
    }
    stop.store(true, Ordering::SeqCst);
    flood.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} of {runs} failed: {failed:?}",
        failed.len()
    );
}

#[test]
fn on_a_full_disk_stop_and_logs_say_what_happened() {
    if !is_root() {
        eprintln!("note: not root; cannot mount; skipping");
        return;
    }
    let env = Env::new();
    let mnt = env.home.join("mnt");
    let Some(_fs) = Tmpfs::mount(&mnt, "1m") else {
        return;
    };
    let state = mnt.join("state");
    let o = run_in(
        &env,
        &state,
        &["run", "-d", "--", "sh", "-c", "seq 1 20000; exec sleep 300"],
    );
    assert_eq!(o.code, 0, "{o:?}");
    let short = o
        .stdout
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches('.')
        .to_string();
    wait_until("the output", WAIT, || {
        run_in(&env, &state, &["logs", &short])
            .stdout
            .contains("20000")
    });
    // Fill the disk: the history and the final record cannot be written.
    let mut f = fs::File::create(mnt.join("filler")).unwrap();
    while f.write_all(&[0u8; 4096]).is_ok() {}
    drop(f);
    let o = run_in(&env, &state, &["stop", &short]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout
            .starts_with(&format!("Stopped session {short}: terminated by SIGTERM")),
        "{o:?}"
    );
    assert!(
        o.stderr.contains("cannot save the history")
            && o.stderr.contains("No space left on device"),
        "{o:?}"
    );
    let sessions = state.join("nono/sessions");
    let id = fs::read_dir(&sessions)
        .unwrap()
        .flatten()
        .find_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".json")
                .map(String::from)
        })
        .unwrap();
    let sup = nono::registry::parse_record(
        &fs::read_to_string(sessions.join(format!("{id}.json"))).unwrap(),
    )
    .unwrap()
    .supervisor_pid;
    wait_until("the supervisor to exit", WAIT, || !alive(sup));
    let o = run_in(&env, &state, &["logs", &short]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("left no saved history")
            && (o.stderr.contains("could not save it: cannot write")
                && o.stderr.contains("No space left on device")
                || o.stderr.contains("is full")),
        "{o:?}"
    );
    fs::remove_file(mnt.join("filler")).unwrap();
}

/// Attach on `s`, wait for the ok, ask to be detached and wait for it.
fn attach_then_detach(s: &mut UnixStream) {
    s.write_all(&hello(Request::Attach(WinSize::cells(2, 2))))
        .unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut r = FrameReader::new();
    let mut b = [0u8; 4096];
    let mut sent = false;
    loop {
        match r.next_frame() {
            Ok(Some(Frame::Detached(_))) => return,
            Ok(Some(Frame::Reply(ReplyStatus::Ok, _))) if !sent => {
                s.write_all(&Frame::DetachMe.to_bytes()).unwrap();
                sent = true;
            }
            Ok(Some(_)) => {}
            _ => {
                let n = s.read(&mut b).unwrap();
                assert!(n > 0, "closed before the detach");
                r.push(&b[..n]);
            }
        }
    }
}

// About 8,500 attach/detach cycles (two fsynced record writes each): two
// minutes on a loaded 2-core VM, so it runs on request:
// `cargo test --test security -- --ignored`.
#[test]
#[ignore]
fn an_attach_detach_loop_cannot_grow_the_event_log_past_its_bound() {
    let env = Env::new();
    let id = env.start(&["--", "sleep", "300"]);
    let r = env.record(&id);
    let sock = endpoint(&env, &r.id);
    let path = env.sessions_dir().join(format!("{}.events", r.id));
    let bound = 1024 * 1024;
    let mut cycles = 0;
    // Each cycle logs an attach and a detach (~130 bytes): run past the bound.
    while fs::metadata(&path).unwrap().len() < bound - 4096 || cycles % 100 != 0 {
        let mut s = UnixStream::connect_addr(&sock).unwrap();
        attach_then_detach(&mut s);
        cycles += 1;
    }
    for _ in 0..200 {
        let mut s = UnixStream::connect_addr(&sock).unwrap();
        attach_then_detach(&mut s);
    }
    assert_eq!(env.run(&["stop", &id]).code, 0);
    // The bound, plus the line that says so and the session's end.
    let len = fs::metadata(&path).unwrap().len();
    assert!(len <= bound + 512, "{len} bytes after {cycles} cycles");
    let ev = events(&env, &id);
    assert!(
        ev.contains("the event log reached its bound"),
        "{}",
        &ev[ev.len() - 500..]
    );
    // The end is still recorded.
    assert!(
        ev.trim_end().lines().last().unwrap().contains("exited"),
        "{}",
        &ev[ev.len() - 500..]
    );
}

// ------------------------------------- 11. what an attach hands over

/// Read frames from `s` until `done` says enough arrived (or `WAIT` passes).
fn frames_until(s: &mut UnixStream, done: impl Fn(&[Frame]) -> bool) -> Vec<Frame> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let f = frames(&got);
        if done(&f) || Instant::now() > deadline {
            return f;
        }
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return frames(&got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
}

#[test]
fn what_an_attach_hands_over_must_be_a_terminal_and_anything_else_is_refused() {
    use nono::protocol::{TerminalSettings, ATTACHED, ATTACHED_TERMINAL};
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::fs::OpenOptionsExt;
    let env = Env::new();
    let id = env.start(&["--", "sh", "-c", "stty -echo; exec cat"]);
    let r = env.record(&id);
    let sup = r.supervisor_pid;
    let sock = endpoint(&env, &r.id);
    let base = fds(sup);
    let settings = TerminalSettings::new(&[0x1d, b'd'], false).unwrap();
    let attach = hello(Request::AttachTerminal(WinSize::cells(24, 80), settings));
    let connect_with = |fd: &OwnedFd, bytes: &[u8]| {
        let s = UnixStream::connect_addr(&sock).unwrap();
        let n = nono::sys::send_with_fd(s.as_raw_fd(), bytes, fd.as_raw_fd()).unwrap();
        (&s).write_all(&bytes[n..]).unwrap();
        s
    };
    let detached = || env.wait_record(&id, "detached", |r| !r.attached);

    // A real terminal is taken: keys typed on it reach the program, and its
    // output comes back on it, not over the socket.
    let (master, slave) = nono::sys::open_pty(WinSize::cells(24, 80)).unwrap();
    let mut s = connect_with(&slave, &attach);
    drop(slave);
    let got = frames_until(&mut s, |f| !f.is_empty());
    assert_eq!(
        got.first(),
        Some(&Frame::Reply(ReplyStatus::Ok, ATTACHED_TERMINAL.into()))
    );
    nono::sys::set_nonblocking(master.as_raw_fd(), true).unwrap();
    nono::sys::write_all(master.as_raw_fd(), b"typed-on-the-terminal\r").unwrap();
    let mut seen = Vec::new();
    wait_until("the echo on the handed-over terminal", WAIT, || {
        let mut fds = [nono::sys::PollFd::new(
            master.as_raw_fd(),
            nono::sys::POLLIN,
        )];
        let _ = nono::sys::poll(&mut fds, 50);
        let mut buf = [0u8; 4096];
        while let Ok(n) = nono::sys::read(master.as_raw_fd(), &mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).contains("typed-on-the-terminal")
    });
    s.write_all(&Frame::DetachMe.to_bytes()).unwrap();
    let got = frames_until(&mut s, |f| {
        f.iter().any(|f| matches!(f, Frame::Detached(_)))
    });
    assert!(
        !got.iter().any(
            |f| matches!(f, Frame::Output(o) if String::from_utf8_lossy(o).contains("typed-on"))
        ),
        "program output went over the socket: {got:?}"
    );
    assert!(matches!(got.last(), Some(Frame::Detached(_))), "{got:?}");
    drop(s);
    detached();
    // Keys over the socket from a client whose terminal is served would
    // bypass the bound on queued input: the connection ends.
    let (_master, slave) = nono::sys::open_pty(WinSize::cells(24, 80)).unwrap();
    let mut s = connect_with(&slave, &attach);
    let got = frames_until(&mut s, |f| !f.is_empty());
    assert_eq!(
        got.first(),
        Some(&Frame::Reply(ReplyStatus::Ok, ATTACHED_TERMINAL.into()))
    );
    s.write_all(&Frame::Input(b"smuggled\r".to_vec()).to_bytes())
        .unwrap();
    let (_, closed, _) = read_to_close(&mut s, WAIT);
    assert!(closed, "still attached after keys over the socket");
    detached();
    assert!(events(&env, &id).contains("keystrokes over the socket"));

    // Anything else is refused with an event naming it, and the client is
    // served over the socket as one that kept its terminal.
    let file_path = env.home.join("a-file");
    fs::write(&file_path, "x").unwrap();
    let (pipe_r, _pipe_w) = nono::sys::pipe().unwrap();
    let (pty_master, _pty_slave) = nono::sys::open_pty(WinSize::cells(24, 80)).unwrap();
    let (sock_a, _sock_b) = UnixStream::pair().unwrap();
    let own_pty: OwnedFd = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(format!("/proc/{}/fd/0", r.child_pid.unwrap()))
        .unwrap()
        .into();
    let cases: Vec<(&str, OwnedFd, &str)> = vec![
        ("a pipe", pipe_r, "it is a pipe, not a terminal"),
        (
            "a regular file",
            fs::File::open(&file_path).unwrap().into(),
            "it is a regular file, not a terminal",
        ),
        (
            "/dev/null",
            fs::File::open("/dev/null").unwrap().into(),
            "a character device but not a terminal",
        ),
        ("a socket", sock_a.into(), "it is a socket, not a terminal"),
        ("a pty master", pty_master, "the master side of a pty"),
        (
            "the session's own pty",
            own_pty,
            "this session's own terminal",
        ),
    ];
    for (what, fd, why) in &cases {
        let mut s = connect_with(fd, &attach);
        let got = frames_until(&mut s, |f| !f.is_empty());
        assert_eq!(
            got.first(),
            Some(&Frame::Reply(ReplyStatus::Ok, ATTACHED.into())),
            "{what}"
        );
        // Served over the socket: keys in, echo out.
        s.write_all(&Frame::Input(format!("relayed-{}\r", what.len()).into_bytes()).to_bytes())
            .unwrap();
        let want = format!("relayed-{}", what.len());
        let got = frames_until(&mut s, |f| {
            f.iter().any(
                |f| matches!(f, Frame::Output(o) if String::from_utf8_lossy(o).contains(&want)),
            )
        });
        assert!(
            got.iter().any(
                |f| matches!(f, Frame::Output(o) if String::from_utf8_lossy(o).contains(&want))
            ),
            "{what}: no relayed echo in {got:?}"
        );
        drop(s);
        detached();
        let ev = events(&env, &id);
        assert!(ev.contains(why), "{what}: no '{why}' in\n{ev}");
    }

    // Two fds with one hello: the connection is closed, nothing is attached.
    let (p1, _w1) = nono::sys::pipe().unwrap();
    let (p2, _w2) = nono::sys::pipe().unwrap();
    let mut s = UnixStream::connect_addr(&sock).unwrap();
    nono::sys::send_with_fd(s.as_raw_fd(), &attach[..1], p1.as_raw_fd()).unwrap();
    nono::sys::send_with_fd(s.as_raw_fd(), &attach[1..], p2.as_raw_fd()).unwrap();
    let (got, closed, _) = read_to_close(&mut s, WAIT);
    assert!(closed && got.is_empty(), "{got:?}");
    assert!(events(&env, &id).contains("more than one file descriptor"));
    // An fd with a request that takes none is closed; the request is served.
    let mut s = connect_with(
        &p1,
        &hello(Request::Logs {
            follow: false,
            lines: 0,
        }),
    );
    let (got, closed, _) = read_to_close(&mut s, WAIT);
    assert!(closed, "logs did not end");
    assert!(
        matches!(frames(&got).first(), Some(Frame::Reply(ReplyStatus::Ok, _))),
        "{got:?}"
    );
    assert!(events(&env, &id).contains("a request that takes none"));

    // Nothing was kept, and a real attach works as ever.
    wait_until("the supervisor to hold no fd it was sent", WAIT, || {
        fds(sup) == base
    });
    let mut a = env.spawn_pty(&["attach", &id], 24, 80);
    a.send(b"after-it-all\r");
    a.expect("after-it-all");
    a.send(b"\x1dd");
    assert_eq!(a.wait(), 0, "{}", a.text());
    assert_eq!(env.record(&id).status, "running");
}

#[test]
fn a_sandboxed_program_cannot_reach_the_terminal_handed_to_its_supervisor() {
    // Told where the operator's terminal sits in its supervisor, the
    // program tries to open it and to list the supervisor's fds.
    let script = r#"printf 'ready\r\n'; read sup fd
( : < "/proc/$sup/fd/$fd" ) 2>/dev/null && echo "tty OPENED" || echo "tty REFUSED"
ls "/proc/$sup/fd" >/dev/null 2>&1 && echo "fds LISTED" || echo "fds UNLISTED"
exec cat"#;
    let env = Env::new();
    let id = env.start(&["--", "sh", "-c", script]);
    let r = env.record(&id);
    assert!(r.sandbox.is_some(), "{r:?}");
    let sup = r.supervisor_pid;
    let mut a = env.spawn_pty(&["attach", &id], 24, 80);
    a.expect("ready");
    env.wait_record(&id, "attached", |r| r.attached);
    let tty = fs::read_link(format!("/proc/{}/fd/0", a.child.id())).unwrap();
    let fd = fds(sup)
        .into_iter()
        .find(|fd| fs::read_link(format!("/proc/{sup}/fd/{fd}")).ok().as_ref() == Some(&tty))
        .expect("the supervisor holds the attached terminal");
    a.send(format!("{sup} {fd}\r").as_bytes());
    wait_until("the program's verdict", WAIT, || {
        a.pump(20);
        a.text().contains("fds LISTED") || a.text().contains("fds UNLISTED")
    });
    let text = a.text();
    assert!(text.contains("tty REFUSED"), "{text}");
    assert!(text.contains("fds UNLISTED"), "{text}");
    a.send(b"\x1dd");
    assert_eq!(a.wait(), 0, "{}", a.text());
}
