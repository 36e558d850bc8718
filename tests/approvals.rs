//! Approvals (`--ask`) on the real kernel with real programs: an open
//! outside the grant waits for a person (the overlay of an attached client,
//! or `nono approve`/`nono deny` from another terminal), and nothing else
//! in the session waits with it.

mod common;

use common::{python, rss_kib, wait_until, Env, Pty, WAIT};
use nanoserde::DeJson;
use nono::cmd::pending::Entry;
use nono::term::Terminal;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Whether this kernel can run `--ask`; prints why not.
fn supported() -> bool {
    let release = nono::sys::kernel_release();
    let ok = nono::sandbox::notify::kernel_supported(&release) && nono::sys::notif_supported();
    if !ok {
        eprintln!(
            "skipped: seccomp user notification with ADDFD+SEND is not available on {release}"
        );
    }
    ok
}

/// A project directory to run from, and a directory outside any grant
/// holding `secret.txt`.
fn dirs(env: &Env) -> (PathBuf, PathBuf) {
    let proj = env.home.join("proj");
    let out = env.home.join("outside");
    fs::create_dir_all(&proj).unwrap();
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("secret.txt"), "THE-SECRET\n").unwrap();
    (proj, out)
}

/// Start a detached `--ask` session from `proj`; its short id.
fn start_asking(env: &Env, proj: &Path, extra: &[&str], script: &str) -> String {
    let mut args = vec!["run", "-d", "--ask", "--allow-cwd"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    let o = env.cmd(&args).current_dir(proj).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "start failed: {text} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("Started detached session "))
        .and_then(|l| l.strip_suffix('.'))
        .unwrap_or_else(|| panic!("unexpected start output: {text}"))
        .to_string()
}

/// `nono pending ID --json`, parsed.
fn pending(env: &Env, id: &str) -> Vec<Entry> {
    let o = env.run(&["pending", id, "--json"]);
    assert_eq!(o.code, 0, "{o:?}");
    Vec::<Entry>::deserialize_json(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {o:?}"))
}

/// Wait until `n` requests wait in session `id`; returns them.
fn wait_pending(env: &Env, id: &str, n: usize) -> Vec<Entry> {
    let mut last = Vec::new();
    wait_until(&format!("{n} pending requests"), WAIT, || {
        last = pending(env, id);
        last.len() == n
    });
    last
}

/// Wait until the session's history contains `needle`; returns it.
fn wait_logs(env: &Env, id: &str, needle: &str) -> String {
    let mut text = String::new();
    wait_until(&format!("{needle:?} in the logs"), WAIT, || {
        text = env.run(&["logs", id]).stdout;
        text.contains(needle)
    });
    text
}

/// The session's event log as text.
fn events(env: &Env, id: &str) -> String {
    env.run(&["inspect", id, "--events"]).stdout
}

#[test]
fn an_out_of_grant_read_waits_until_nono_approve_grants_it() {
    if !supported() {
        return;
    }
    let env = Env::new();
    let (proj, out) = dirs(&env);
    let secret = out.join("secret.txt");
    let script = format!("cat {}; echo cat-exit=$?; sleep 60", secret.display());
    let id = start_asking(&env, &proj, &[], &script);
    let reqs = wait_pending(&env, &id, 1);
    assert_eq!(
        reqs[0].path,
        secret.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(
        (reqs[0].access.as_str(), reqs[0].command.as_str()),
        ("read", "cat")
    );
    // The record says how the kernel wakes the supervisor (6.6+: sync).
    let release = nono::sys::kernel_release();
    let mut v = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse().unwrap_or(0));
    let sync = (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (6, 6);
    let json = env.run(&["inspect", &id, "--json"]).stdout;
    let want = if sync { "sync" } else { "plain" };
    assert!(
        json.contains(&format!("\"ask_wakeup\":\"{want}\"")),
        "{json}"
    );
    // Detached and waiting: ps says so, nothing was granted on its own.
    wait_until("ps to show the waiting request", WAIT, || {
        env.run(&["ps"]).stdout.contains("running, 1 waiting")
    });
    assert!(!env.run(&["logs", &id]).stdout.contains("THE-SECRET"));
    let o = env.run(&["approve", &id]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.starts_with("Approved request 1"), "{o:?}");
    let logs = wait_logs(&env, &id, "cat-exit=");
    assert!(logs.contains("THE-SECRET\ncat-exit=0"), "{logs}");
    assert!(pending(&env, &id).is_empty());
    let ev = events(&env, &id);
    assert!(
        ev.contains("asked") && ev.contains("read ") && ev.contains("by 'nono approve' (pid "),
        "{ev}"
    );
    env.run(&["stop", &id]);
}

#[test]
fn a_denied_request_fails_with_permission_denied() {
    if !supported() {
        return;
    }
    let env = Env::new();
    let (proj, out) = dirs(&env);
    let script = format!(
        "cat {}/secret.txt; echo cat-exit=$?; sleep 60",
        out.display()
    );
    let id = start_asking(&env, &proj, &[], &script);
    wait_pending(&env, &id, 1);
    // Answering a request that does not exist changes nothing.
    let o = env.run(&["deny", &id, "7"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("no request 7 is waiting"), "{o:?}");
    assert_eq!(env.run(&["deny", &id]).code, 0);
    let logs = wait_logs(&env, &id, "cat-exit=");
    assert!(logs.contains("Permission denied\ncat-exit=1"), "{logs}");
    assert!(!logs.contains("THE-SECRET"));
    assert!(events(&env, &id).contains("denied by 'nono deny' (pid "));
    env.run(&["stop", &id]);
}

#[test]
fn an_unanswered_request_is_denied_after_the_ask_timeout() {
    if !supported() {
        return;
    }
    let env = Env::new();
    let (proj, out) = dirs(&env);
    let script = format!(
        "cat {}/secret.txt; echo cat-exit=$?; sleep 60",
        out.display()
    );
    let id = start_asking(&env, &proj, &["--ask-timeout", "1"], &script);
    let logs = wait_logs(&env, &id, "cat-exit=");
    assert!(logs.contains("Permission denied\ncat-exit=1"), "{logs}");
    let ev = events(&env, &id);
    assert!(ev.contains("denied by the 1s timeout"), "{ev}");
    env.run(&["stop", &id]);
}

#[test]
fn stop_denies_what_waits_and_a_dead_asker_s_request_disappears() {
    if !supported() {
        return;
    }
    let env = Env::new();
    let (proj, out) = dirs(&env);
    let script = format!(
        "cat {0}/secret.txt & cat {0}/secret.txt; sleep 60",
        out.display()
    );
    let id = start_asking(&env, &proj, &[], &script);
    // Pids as seen here (the program's own `$!` counts in its PID namespace).
    let pid = wait_pending(&env, &id, 2)[0].pid;
    nono::sys::kill(pid, libc::SIGKILL).unwrap();
    let left = wait_pending(&env, &id, 1);
    assert_ne!(left[0].pid, pid);
    assert!(events(&env, &id).contains("withdrawn"));
    assert_eq!(env.run(&["stop", &id]).code, 0);
    assert!(events(&env, &id).contains("denied by the session stopping"));
}

#[test]
fn the_state_directory_is_refused_without_asking() {
    if !supported() {
        return;
    }
    let env = Env::new();
    let (proj, _) = dirs(&env);
    // The state directory itself: with namespaces, what is beneath it is
    // masked (does not exist), so only the directory can be asked for.
    let state = env.home.join("state/nono");
    let script = format!("ls {}; echo ls-exit=$?; sleep 60", state.display());
    let id = start_asking(&env, &proj, &[], &script);
    // Wrapped at 80 columns wherever the path ends: compare without spaces.
    let logs: String = wait_logs(&env, &id, "ls-exit=")
        .split_whitespace()
        .collect();
    assert!(logs.contains("Permissiondenied"), "{logs}");
    assert!(!logs.contains("ls-exit=0"), "{logs}");
    let ev = events(&env, &id);
    assert!(!ev.contains("asked"), "{ev}");
    assert!(
        ev.contains("nono's own directories are never granted"),
        "{ev}"
    );
    env.run(&["stop", &id]);
}

#[test]
fn a_created_file_gets_the_program_s_mode_under_its_umask() {
    if !supported() {
        return;
    }
    let env = Env::new();
    let (proj, out) = dirs(&env);
    let target = out.join("new.txt");
    let script = format!(
        "umask 027; echo made > {}; echo write-exit=$?; sleep 60",
        target.display()
    );
    let id = start_asking(&env, &proj, &[], &script);
    let reqs = wait_pending(&env, &id, 1);
    assert!(reqs[0].create, "{reqs:?}");
    assert!(!target.exists());
    assert_eq!(env.run(&["approve", &id, "1"]).code, 0);
    wait_logs(&env, &id, "write-exit=0");
    assert_eq!(fs::read_to_string(&target).unwrap(), "made\n");
    // The shell creates with 0666; its umask 027 leaves 0640.
    let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "{mode:o}");
    env.run(&["stop", &id]);
}

#[test]
fn a_path_that_starts_inside_the_grant_but_leads_out_of_it_still_asks() {
    if !supported() {
        return;
    }
    let env = Env::new();
    let (proj, out) = dirs(&env);
    fs::write(proj.join("inside.txt"), "INSIDE\n").unwrap();
    // Stays inside: read at once. Leaves by a relative link, by `..`, and
    // by a dangling link whose target a redirection would create.
    std::os::unix::fs::symlink("inside.txt", proj.join("near")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", proj.join("rel")).unwrap();
    std::os::unix::fs::symlink(out.join("new.txt"), proj.join("dangling")).unwrap();
    let script = format!(
        "cat near missing 2>&1; echo first-exit=$?; \
         cat rel & cat {}/../outside/secret.txt & echo made > dangling & sleep 60",
        proj.display()
    );
    let id = start_asking(&env, &proj, &[], &script);
    let logs = wait_logs(&env, &id, "first-exit=");
    assert!(logs.contains("INSIDE\n"), "{logs}");
    assert!(logs.contains("No such file"), "{logs}");
    let mut got: Vec<(String, bool)> = wait_pending(&env, &id, 3)
        .into_iter()
        .map(|r| (r.path, r.create))
        .collect();
    got.sort();
    let secret = out.join("secret.txt").canonicalize().unwrap();
    let created = out.canonicalize().unwrap().join("new.txt");
    let mut want = vec![
        (created.to_str().unwrap().to_string(), true),
        (secret.to_str().unwrap().to_string(), false),
        (secret.to_str().unwrap().to_string(), false),
    ];
    want.sort();
    assert_eq!(got, want);
    // Nothing was asked about the paths that stay inside.
    let ev = events(&env, &id);
    assert_eq!(ev.matches(" asked ").count(), 3, "{ev}");
    env.run(&["stop", &id]);
}

#[test]
fn the_program_cannot_change_the_root_the_supervisor_resolves_in() {
    // The supervisor opens the program's root once per session; that holds
    // only while no process of the session can chroot or take another
    // mount namespace.
    if !supported() {
        return;
    }
    if !common::user_namespaces_available() {
        eprintln!("skipped: no user namespaces here, so the program shares our view");
        return;
    }
    let env = Env::new();
    let (proj, _) = dirs(&env);
    let script = "unshare -m true 2>/dev/null; echo unshare-m=$?; \
                  unshare -U true 2>/dev/null; echo unshare-U=$?; \
                  chroot / true 2>/dev/null; echo chroot=$?; sleep 60";
    let id = start_asking(&env, &proj, &[], script);
    let logs = wait_logs(&env, &id, "chroot=");
    for step in ["unshare-m", "unshare-U", "chroot"] {
        assert!(logs.contains(&format!("{step}=")), "{logs}");
        assert!(!logs.contains(&format!("{step}=0")), "{logs}");
    }
    env.run(&["stop", &id]);
}

/// The user's terminal: a pty running a nono client, and an emulator of
/// what it shows.
struct Viewer {
    pty: Pty,
    term: Terminal,
    fed: usize,
}

impl Viewer {
    fn new(pty: Pty, rows: u16, cols: u16) -> Viewer {
        Viewer {
            pty,
            term: Terminal::new(rows, cols, 1000),
            fed: 0,
        }
    }

    fn wait_screen(&mut self, what: &str, cond: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            self.term.feed(&self.pty.out[self.fed..]);
            self.fed = self.pty.out.len();
            let screen = self.term.screen_text();
            if cond(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; screen:\n{}",
                    screen.join("\n")
                );
            }
            self.pty.pump(20);
        }
    }
}

#[test]
fn detach_while_a_request_waits_then_answer_it_with_the_overlay_keys() {
    if !supported() {
        return;
    }
    let env = Env::new();
    let (proj, out) = dirs(&env);
    let script = format!(
        "echo first-line; cat {}/secret.txt; echo cat-exit=$?; sleep 60",
        out.display()
    );
    let mut cmd = env.cmd(&[
        "run",
        "--ask",
        "--allow-cwd",
        "-n",
        "keys",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    cmd.current_dir(&proj);
    let mut v = Viewer::new(Pty::spawn(cmd, 24, 100), 24, 100);
    let overlay =
        |s: &[String]| s[23].contains("(cat) asks to read") && s[23].contains("secret.txt");
    v.wait_screen("the overlay", overlay);
    v.pty.send(b"\x1dd");
    assert_eq!(v.pty.wait(), 0);
    // Still waiting while nobody is attached.
    assert_eq!(wait_pending(&env, "keys", 1).len(), 1);
    let mut a = Viewer::new(env.spawn_pty(&["attach", "keys"], 24, 100), 24, 100);
    a.wait_screen("the overlay again on attach", |s| {
        overlay(s) && s[0] == "first-line"
    });
    // Keys other than the answers go nowhere while it shows.
    a.pty.send(b"x");
    a.pty.send(b"y");
    let screen = a.wait_screen("the secret and the overlay gone", |s| {
        s.iter().any(|l| l == "cat-exit=0") && !s.iter().any(|l| l.contains("asks to"))
    });
    assert!(screen.iter().any(|l| l == "THE-SECRET"), "{screen:?}");
    assert!(
        !screen
            .iter()
            .any(|l| l.contains('x') && !l.starts_with("cat-exit")),
        "{screen:?}"
    );
    assert!(events(&env, "keys").contains("approved by the attached client"));
    a.pty.send(b"\x1dd");
    a.pty.wait();
    env.run(&["stop", "keys"]);
}

#[test]
fn always_means_the_next_open_of_that_path_does_not_ask() {
    if !supported() {
        return;
    }
    let env = Env::new();
    let (proj, out) = dirs(&env);
    let script = format!(
        "cat {0}/secret.txt; cat {0}/secret.txt; echo both-done; sleep 60",
        out.display()
    );
    let mut cmd = env.cmd(&[
        "run",
        "--ask",
        "--allow-cwd",
        "-n",
        "always",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    cmd.current_dir(&proj);
    let mut v = Viewer::new(Pty::spawn(cmd, 24, 100), 24, 100);
    v.wait_screen("the overlay", |s| s[23].contains("asks to read"));
    v.pty.send(b"a");
    let screen = v.wait_screen("both reads", |s| s.iter().any(|l| l == "both-done"));
    assert_eq!(
        screen.iter().filter(|l| *l == "THE-SECRET").count(),
        2,
        "{screen:?}"
    );
    let ev = events(&env, "always");
    assert_eq!(ev.matches(" asked ").count(), 1, "{ev}");
    assert!(ev.contains("always, for this path"), "{ev}");
    assert!(ev.contains("by a standing answer"), "{ev}");
    v.pty.send(b"\x1dd");
    v.pty.wait();
    env.run(&["stop", "always"]);
}

#[test]
fn another_thread_keeps_printing_to_the_attached_client_while_one_waits() {
    if !supported() {
        return;
    }
    let Some(py) = python() else {
        eprintln!("skipped: python3 is missing");
        return;
    };
    let env = Env::new();
    let (proj, out) = dirs(&env);
    let script = r#"
import sys, threading, time
def ask():
    with open(sys.argv[1]) as f:
        print("READ", f.read().strip(), flush=True)
threading.Thread(target=ask, daemon=True).start()
for i in range(100000):
    print("tick", i, flush=True)
    time.sleep(0.05)
"#;
    fs::write(proj.join("ticker.py"), script).unwrap();
    let secret = format!("{}/secret.txt", out.display());
    let mut cmd = env.cmd(&[
        "run",
        "--ask",
        "--allow-cwd",
        "-n",
        "ticker",
        "--",
        py.to_str().unwrap(),
        "ticker.py",
        &secret,
    ]);
    cmd.current_dir(&proj);
    let mut v = Viewer::new(Pty::spawn(cmd, 24, 100), 24, 100);
    v.wait_screen("the overlay", |s| s[23].contains("asks to read"));
    let last_tick = |s: &[String]| {
        s.iter()
            .filter_map(|l| l.strip_prefix("tick ").and_then(|n| n.parse::<u32>().ok()))
            .max()
    };
    let before = last_tick(&v.wait_screen("ticks", |s| last_tick(s).is_some())).unwrap();
    // Output keeps arriving, under the overlay, while the request waits.
    v.wait_screen("ten more ticks under the overlay", |s| {
        last_tick(s).is_some_and(|t| t >= before + 10) && s[23].contains("asks to read")
    });
    assert_eq!(pending(&env, "ticker").len(), 1);
    assert_eq!(env.run(&["approve", "ticker"]).code, 0);
    v.wait_screen("the read", |s| s.iter().any(|l| l == "READ THE-SECRET"));
    v.pty.send(b"\x1dd");
    v.pty.wait();
    env.run(&["stop", "ticker"]);
}

#[test]
fn the_program_gets_the_inode_that_was_approved_whatever_it_changes_after_asking() {
    if !supported() {
        return;
    }
    let Some(py) = python() else {
        eprintln!("skipped: python3 is missing");
        return;
    };
    let env = Env::new();
    let (proj, out) = dirs(&env);
    fs::write(out.join("a"), "AAA\n").unwrap();
    fs::write(out.join("b"), "BBB\n").unwrap();
    std::os::unix::fs::symlink(out.join("a"), proj.join("link")).unwrap();
    // Asks through a symlink with a path buffer it owns, then rewrites the
    // buffer and points the symlink elsewhere while the request waits.
    let script = r#"
import ctypes, os, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(b"link", 64)
got = []
def ask():
    got.append(libc.open(buf, os.O_RDONLY))
t = threading.Thread(target=ask)
t.start()
while not os.path.exists("go"):
    time.sleep(0.01)
buf.value = sys.argv[1].encode()
os.symlink(sys.argv[1], "link2")
os.replace("link2", "link")
open("swapped", "w").close()
t.join()
st = os.fstat(got[0])
print("GOT", st.st_dev, st.st_ino, os.read(got[0], 10).decode().strip(), flush=True)
time.sleep(60)
"#;
    fs::write(proj.join("swap.py"), script).unwrap();
    let b = out.join("b");
    let mut args = vec!["run", "-d", "--ask", "--allow-cwd", "-n", "swap", "--"];
    args.extend_from_slice(&[py.to_str().unwrap(), "swap.py", b.to_str().unwrap()]);
    let o = env.cmd(&args).current_dir(&proj).output().unwrap();
    assert!(o.status.success());
    let reqs = wait_pending(&env, "swap", 1);
    assert_eq!(
        reqs[0].path,
        out.join("a").canonicalize().unwrap().to_str().unwrap()
    );
    fs::write(proj.join("go"), "").unwrap();
    wait_until("the swap", WAIT, || proj.join("swapped").exists());
    assert_eq!(fs::read_link(proj.join("link")).unwrap(), b);
    assert_eq!(env.run(&["approve", "swap", "1"]).code, 0);
    let logs = wait_logs(&env, "swap", "GOT ");
    let a = fs::metadata(out.join("a")).unwrap();
    assert!(
        logs.contains(&format!("GOT {} {} AAA", a.dev(), a.ino())),
        "{logs}"
    );
    env.run(&["stop", "swap"]);
}

#[test]
fn the_program_cannot_answer_its_own_request() {
    if !supported() {
        return;
    }
    let env = Env::new();
    let (proj, out) = dirs(&env);
    let bin = fs::canonicalize(common::bin()).unwrap();
    let script = format!(
        "cat {}/secret.txt & sleep 1; {} approve self; echo self-approve=$?; sleep 60",
        out.display(),
        bin.display()
    );
    let id = start_asking(
        &env,
        &proj,
        &["-n", "self", "-r", bin.to_str().unwrap()],
        &script,
    );
    wait_logs(&env, &id, "self-approve=");
    let logs = env.run(&["logs", &id]).stdout;
    assert!(logs.contains("self-approve=1"), "{logs}");
    assert!(!logs.contains("THE-SECRET"), "{logs}");
    assert_eq!(pending(&env, &id).len(), 1);
    env.run(&["stop", &id]);
}

#[test]
fn a_flood_of_requests_is_bounded_and_does_not_stall_the_relay() {
    if !supported() {
        return;
    }
    let Some(py) = python() else {
        eprintln!("skipped: python3 is missing");
        return;
    };
    let env = Env::new();
    let (proj, out) = dirs(&env);
    for i in 0..200 {
        fs::write(out.join(format!("f{i}")), "x").unwrap();
    }
    let script = r#"
import os, sys, threading, time
denied = []
def ask(i):
    try:
        os.close(os.open(os.path.join(sys.argv[1], "f%d" % i), os.O_RDONLY))
    except PermissionError:
        denied.append(i)
for i in range(200):
    threading.Thread(target=ask, args=(i,), daemon=True).start()
time.sleep(1)
print("denied", len(denied), flush=True)
for i in range(100000):
    print("tick", i, flush=True)
    time.sleep(0.02)
"#;
    fs::write(proj.join("flood.py"), script).unwrap();
    let mut args = vec!["run", "-d", "--ask", "--allow-cwd", "-n", "flood", "--"];
    args.extend_from_slice(&[py.to_str().unwrap(), "flood.py", out.to_str().unwrap()]);
    let o = env.cmd(&args).current_dir(&proj).output().unwrap();
    assert!(o.status.success());
    let cap = nono::defaults::MAX_PENDING_APPROVALS;
    let logs = wait_logs(&env, "flood", "denied ");
    let reqs = pending(&env, "flood");
    assert_eq!(reqs.len(), cap, "the table is bounded");
    assert!(logs.contains(&format!("denied {}", 200 - cap)), "{logs}");
    // The relay keeps going while the table is full.
    let r = env
        .records()
        .into_iter()
        .find(|r| r.name == "flood")
        .unwrap();
    let rss = rss_kib(r.supervisor_pid);
    wait_logs(&env, "flood", "tick 20\n");
    assert!(rss < 64 * 1024, "supervisor RSS {rss} KiB");
    wait_until("ps to show the full table", WAIT, || {
        env.run(&["ps"])
            .stdout
            .contains(&format!("running, {cap} waiting"))
    });
    env.run(&["stop", "flood"]);
}

#[test]
fn esc_puts_a_request_off_the_screen_and_keys_reach_the_program_again() {
    if !supported() {
        return;
    }
    let env = Env::new();
    let (proj, out) = dirs(&env);
    let script = format!("cat {}/secret.txt & exec cat", out.display());
    let mut cmd = env.cmd(&[
        "run",
        "--ask",
        "--allow-cwd",
        "-n",
        "later",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    cmd.current_dir(&proj);
    let mut v = Viewer::new(Pty::spawn(cmd, 24, 100), 24, 100);
    v.wait_screen("the overlay", |s| s[23].contains("asks to read"));
    v.pty.send(b"\x1b");
    v.wait_screen("the overlay gone", |s| !s[23].contains("asks to"));
    v.pty.send(b"typed\r");
    // The terminal's echo and cat's copy: the keys reached the program.
    v.wait_screen("the keys echoed", |s| {
        s.iter().filter(|l| *l == "typed").count() == 2
    });
    assert_eq!(pending(&env, "later").len(), 1, "it still waits");
    assert_eq!(env.run(&["approve", "later"]).code, 0);
    v.wait_screen("the secret", |s| s.iter().any(|l| l == "THE-SECRET"));
    v.pty.send(b"\x1dd");
    v.pty.wait();
    env.run(&["stop", "later"]);
}

#[test]
fn asking_needs_the_sandbox_and_a_timeout_needs_asking() {
    let env = Env::new();
    let o = env.run(&["run", "--ask", "--no-sandbox", "--", "true"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr
            .contains("--no-sandbox cannot be combined with --ask"),
        "{o:?}"
    );
    let o = env.run(&["run", "--ask-timeout", "5", "--", "true"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("--ask-timeout needs --ask"), "{o:?}");
    assert!(env.records().is_empty(), "nothing started");
}

#[test]
fn a_profile_can_turn_asking_on() {
    if !supported() {
        return;
    }
    let env = Env::new();
    let (proj, out) = dirs(&env);
    let profiles = env.home.join("config/nono/profiles");
    fs::create_dir_all(&profiles).unwrap();
    fs::write(
        profiles.join("asking.toml"),
        "[meta]\nextends = \"default\"\n\n[approvals]\nask = true\n",
    )
    .unwrap();
    let dry = env
        .cmd(&["run", "--dry-run", "--profile", "asking", "--", "true"])
        .current_dir(&proj)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("Ask:       opens outside the grant wait")
    );
    let script = format!("cat {}/secret.txt; sleep 60", out.display());
    let o = env
        .cmd(&[
            "run",
            "-d",
            "-n",
            "prof",
            "--profile",
            "asking",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .current_dir(&proj)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(env.records()[0].ask);
    assert_eq!(wait_pending(&env, "prof", 1)[0].command, "cat");
    wait_until("inspect to show the request", WAIT, || {
        let inspect = env.run(&["inspect", "prof"]).stdout;
        // "(--ask, synchronous wakeups)" on Linux 6.6+, "plain wakeups" before.
        inspect.contains("opens outside the grant ask (--ask, ") && inspect.contains("); 1 waiting")
    });
    env.run(&["stop", "prof"]);
}

#[test]
fn an_unprivileged_user_s_request_is_answered_with_that_user_s_file() {
    if !supported() {
        return;
    }
    let Some(u) = common::test_user() else {
        eprintln!("skipped: no unprivileged test user (needs root to create it)");
        return;
    };
    let env = Env::for_user(u);
    let (proj, out) = dirs(&env);
    for p in [&proj, &out, &out.join("secret.txt")] {
        std::os::unix::fs::chown(p, Some(u.uid), Some(u.gid)).unwrap();
    }
    // Only its owner may read it: the supervisor opens it as that user.
    fs::set_permissions(out.join("secret.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    let script = format!(
        "cat {0}/secret.txt; umask 077; echo made > {0}/new; echo exit=$?; sleep 60",
        out.display()
    );
    let id = start_asking(&env, &proj, &[], &script);
    wait_pending(&env, &id, 1);
    assert_eq!(env.run(&["approve", &id]).code, 0);
    let reqs = wait_pending(&env, &id, 1);
    assert!(reqs[0].create, "{reqs:?}");
    assert_eq!(env.run(&["approve", &id]).code, 0);
    let logs = wait_logs(&env, &id, "exit=");
    assert!(
        logs.contains("THE-SECRET") && logs.contains("exit=0"),
        "{logs}"
    );
    let m = fs::metadata(out.join("new")).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (u.uid, 0o600));
    env.run(&["stop", &id]);
}

// ---- With namespaces: paths mean what they mean in the session's view ----

static SCRATCH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A directory owned by `u` (removed when dropped) under `base`, a name no
/// other test uses.
struct Scratch(PathBuf);

impl Scratch {
    fn new(base: &str, u: common::User) -> Scratch {
        let n = SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = PathBuf::from(format!("{base}/nono-view-{}-{n}", std::process::id()));
        fs::create_dir_all(&p).unwrap();
        std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
        Scratch(p)
    }

    /// Write `name` with `text`, owned by `u`.
    fn file(&self, name: &str, text: &str, u: common::User) -> PathBuf {
        let f = self.0.join(name);
        fs::write(&f, text).unwrap();
        std::os::unix::fs::chown(&f, Some(u.uid), Some(u.gid)).unwrap();
        f
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// As the unprivileged user, from `/` (nothing granted under /tmp, so the
/// session gets a private /tmp): its env, or None (printed) when it cannot.
fn private_view_user() -> Option<(Env, common::User)> {
    if !supported() {
        return None;
    }
    let Some(u) = common::test_user() else {
        eprintln!("skipped: no unprivileged test user (needs root to create it)");
        return None;
    };
    Some((Env::for_user(u), u))
}

/// Start a detached `--ask` session from `/`; its short id.
fn start_in_private_view(env: &Env, script: &str) -> String {
    let id = start_asking_from(env, Path::new("/"), script);
    let o = env.run(&["inspect", &id]);
    assert!(o.stdout.contains("namespaces"), "no private view: {o:?}");
    id
}

/// `start_asking` without `--allow-cwd`.
fn start_asking_from(env: &Env, dir: &Path, script: &str) -> String {
    let o = env
        .cmd(&["run", "-d", "--ask", "--", "sh", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "start failed: {o:?}");
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("Started detached session "))
        .and_then(|l| l.strip_suffix('.'))
        .unwrap_or_else(|| panic!("unexpected start output: {text}"))
        .to_string()
}

#[test]
fn a_tmp_path_means_the_session_s_private_file_not_the_host_s() {
    let Some((env, u)) = private_view_user() else {
        return;
    };
    let out = Scratch::new("/var/tmp", u);
    let mine = out.file("mine", "MINE\n", u);
    let decoy = out.file("decoy", "HOST\n", u);
    // The same /tmp path on the host leads to the decoy...
    let host_tmp = Scratch::new("/tmp", u);
    let link = host_tmp.0.join("f");
    std::os::unix::fs::symlink(&decoy, &link).unwrap();
    // ...and in the session's private /tmp to the program's own file.
    let script = format!(
        "mkdir -p {d} && ln -s {mine} {link} && echo WRITTEN >> {link}; echo exit=$?; sleep 60",
        d = host_tmp.0.display(),
        mine = mine.display(),
        link = link.display()
    );
    let id = start_in_private_view(&env, &script);
    let reqs = wait_pending(&env, &id, 1);
    assert_eq!(
        (reqs[0].path.as_str(), reqs[0].access.as_str()),
        (mine.to_str().unwrap(), "write"),
        "the operator must be shown the file the program would get"
    );
    assert_eq!(env.run(&["approve", &id]).code, 0);
    let logs = wait_logs(&env, &id, "exit=");
    assert!(logs.contains("exit=0"), "{logs}");
    assert_eq!(fs::read_to_string(&mine).unwrap(), "MINE\nWRITTEN\n");
    assert_eq!(fs::read_to_string(&decoy).unwrap(), "HOST\n");
    assert_eq!(fs::read_link(&link).unwrap(), decoy);
    env.run(&["stop", &id]);
}

#[test]
fn a_relative_path_after_cd_into_the_private_tmp_resolves_in_the_session_s_view() {
    let Some((env, u)) = private_view_user() else {
        return;
    };
    let out = Scratch::new("/var/tmp", u);
    let secret = out.file("secret", "THE-SECRET\n", u);
    // A directory only the session's /tmp has.
    let n = SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let inside = format!("/tmp/nono-view-cwd-{}-{n}/a", std::process::id());
    assert!(!Path::new(&inside).exists());
    let rel = format!("../../..{}", secret.display());
    let script = format!("mkdir -p {inside} && cd {inside} && cat {rel}; echo exit=$?; sleep 60");
    let id = start_in_private_view(&env, &script);
    let reqs = wait_pending(&env, &id, 1);
    assert_eq!(reqs[0].path, secret.to_str().unwrap());
    assert_eq!(env.run(&["approve", &id]).code, 0);
    let logs = wait_logs(&env, &id, "exit=");
    assert!(logs.contains("THE-SECRET\nexit=0"), "{logs}");
    env.run(&["stop", &id]);
}

#[test]
fn the_runtime_and_state_directories_are_refused_by_their_path_in_the_session() {
    let Some((env, u)) = private_view_user() else {
        return;
    };
    // The user's runtime directory, made as a login would if it is missing
    // (left in place: other sessions of this user may be masking it now).
    let run = PathBuf::from(format!("/run/user/{}", u.uid));
    if !run.exists() {
        fs::create_dir_all("/run/user").unwrap();
        let _ = fs::create_dir(&run);
        std::os::unix::fs::chown(&run, Some(u.uid), Some(u.gid)).unwrap();
        fs::set_permissions(&run, fs::Permissions::from_mode(0o700)).unwrap();
    }
    let n = SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let host = run.join(format!("nono-view-{}-{n}", std::process::id()));
    fs::write(&host, "HOST-RUNTIME\n").unwrap();
    let made = run.join(format!("nono-view-new-{}-{n}", std::process::id()));
    let state = env.home.join("state/nono");
    let script = format!(
        "cat {h}; echo cat=$?; echo x > {m}; echo run=$?; echo y > {s}/new; echo state=$?; sleep 60",
        h = host.display(),
        m = made.display(),
        s = state.display()
    );
    let id = start_in_private_view(&env, &script);
    let logs = wait_logs(&env, &id, "state=");
    let _ = fs::remove_file(&host);
    assert!(
        !logs.contains("HOST-RUNTIME") && !logs.contains("cat=0"),
        "{logs}"
    );
    assert!(
        !logs.contains("run=0") && !logs.contains("state=0"),
        "{logs}"
    );
    assert!(!made.exists() && !state.join("new").exists());
    let ev = events(&env, &id);
    assert!(!ev.contains("asked"), "{ev}");
    // The state directory lies under the host's /tmp here, so the session
    // has no such path at all (ENOENT); the runtime file is refused.
    assert!(
        ev.contains(&format!(
            "create {}: nono's own directories are never granted",
            made.display()
        )),
        "{ev}"
    );
    env.run(&["stop", &id]);
}
