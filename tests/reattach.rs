//! Reattach shows exactly what the program shows: real programs (less,
//! vim) in sessions, attached through real ptys. The test plays the user's
//! terminal: every byte the client writes is fed to a terminal emulator,
//! whose screen is compared with what the program is known to display.

mod common;

use common::{rss_kib, Env, Pty, WAIT};
use nono::term::Terminal;
use std::fs;
use std::time::Instant;

/// The user's side: a pty running `nono attach` and an emulator of the
/// terminal it draws on.
struct Viewer {
    pty: Pty,
    term: Terminal,
    fed: usize,
}

impl Viewer {
    fn attach(env: &Env, id: &str, rows: u16, cols: u16) -> Viewer {
        Viewer {
            pty: env.spawn_pty(&["attach", id], rows, cols),
            term: Terminal::new(rows, cols, 1000),
            fed: 0,
        }
    }

    /// Feed new client output to the emulator.
    fn sync(&mut self) {
        let new = &self.pty.out[self.fed..];
        self.term.feed(new);
        self.fed = self.pty.out.len();
    }

    /// Wait until the emulated screen satisfies `cond`.
    fn wait_screen(&mut self, what: &str, cond: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.sync();
            if cond(&self.term.screen_text()) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; screen:\n{}",
                    self.term.screen_text().join("\n")
                );
            }
            self.pty.pump(20);
        }
    }

    fn screen(&mut self) -> Vec<String> {
        self.sync();
        self.term.screen_text()
    }
}

/// Wait until the SIGWINCH an attach sends has been handled by the
/// session's process named `comm`: none pending, and it sleeps again.
fn wait_winch_handled(env: &Env, id: &str, comm: &str) {
    let sup = env.record(id).supervisor_pid;
    let winch = 1u64 << (libc::SIGWINCH - 1);
    let settled = |pid: i32| {
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            return false;
        };
        let mask = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or(u64::MAX)
        };
        (mask("SigPnd:") | mask("ShdPnd:")) & winch == 0
            && status.lines().any(|l| l.starts_with("State:\tS"))
    };
    common::wait_until("the attach's SIGWINCH to be handled", WAIT, || {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&p| nono::procfs::stat(p).is_some_and(|s| s.comm() == comm))
            .filter(|&p| nono::procfs::is_self_or_descendant(p, sup) == Some(true))
            .any(settled)
    });
}

/// A file of numbered lines.
fn numbered(env: &Env, n: usize) -> String {
    let path = env.home.join("lines.txt");
    let text: String = (1..=n).map(|i| format!("line {i:04}\n")).collect();
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn less_is_redrawn_exactly_after_reattach_at_the_same_and_another_size() {
    let env = Env::new();
    let file = numbered(&env, 200);
    let id = env.start(&["-r", &file, "--", "less", "-S", &file]);
    let mut v = Viewer::attach(&env, &id, 24, 80);
    v.wait_screen("less to show the file", |s| {
        s[0] == "line 0001" && s[22] == "line 0023"
    });
    // The attach signals less (SIGWINCH); less's handler can drop a key
    // read at that instant, so type once it has handled it.
    wait_winch_handled(&env, &id, "less");
    v.pty.send(b"5j");
    v.wait_screen("less to scroll", |s| s[0] == "line 0006");
    v.pty.send(b"\x1dd");
    assert_eq!(v.pty.wait(), 0);
    // After detaching, the user's terminal is back on the main screen, in
    // cooked mode, with the modes less turned on turned off again.
    v.sync();
    assert!(!v.term.alternate_screen_active());
    let m = v.term.modes();
    assert!(!m.cursor_keys_app && !m.keypad_app && m.cursor_visible);
    let master = std::os::fd::AsRawFd::as_raw_fd(&v.pty.master);
    assert!(
        nono::sys::canonical_eof_char(master).is_some(),
        "terminal left in raw mode"
    );

    // Same size: the screen comes back from the model, identical.
    let mut w = Viewer::attach(&env, &id, 24, 80);
    w.wait_screen("the redraw", |s| {
        s[0] == "line 0006" && s[22] == "line 0028"
    });
    let expected: Vec<String> = (6..=28).map(|i| format!("line {i:04}")).collect();
    assert_eq!(&w.screen()[..23], &expected[..]);
    assert!(
        w.term.alternate_screen_active(),
        "less runs on the alternate screen"
    );
    assert!(w.term.modes().keypad_app, "keypad mode survives reattach");
    w.pty.send(b"\x1dd");
    assert_eq!(w.pty.wait(), 0);

    // Another size: less repaints for the new size after the forced SIGWINCH.
    let mut x = Viewer::attach(&env, &id, 30, 100);
    x.wait_screen("less to repaint at 30 rows", |s| {
        s.len() == 30 && s[0] == "line 0006" && s[28] == "line 0034"
    });
    x.pty.send(b"q");
    assert_eq!(x.pty.wait(), 0);
}

#[test]
fn input_modes_survive_reattach_and_are_undone_on_detach() {
    let env = Env::new();
    // Turn on application cursor keys, bracketed paste, SGR mouse and focus
    // events, then echo keys so the program's view of input is visible.
    let script =
        "printf '\\033[?1h\\033[?2004h\\033[?1002h\\033[?1006h\\033[?1004hmodes-on\\n'; exec cat";
    let id = env.start(&["--", "sh", "-c", script]);
    let mut v = Viewer::attach(&env, &id, 24, 80);
    v.wait_screen("the marker", |s| s.iter().any(|l| l == "modes-on"));
    let m = v.term.modes();
    assert!(m.cursor_keys_app && m.bracketed_paste && m.focus_events);
    assert_eq!(m.mouse, nono::term::MouseTracking::ButtonEvent);
    assert_eq!(m.mouse_encoding, nono::term::MouseEncoding::Sgr);
    v.pty.send(b"\x1dd");
    assert_eq!(v.pty.wait(), 0);
    v.sync();
    let m = v.term.modes();
    assert!(!m.cursor_keys_app && !m.bracketed_paste && !m.focus_events);
    assert_eq!(m.mouse, nono::term::MouseTracking::Off);
}

#[test]
fn output_while_detached_is_shown_on_attach_and_in_logs() {
    let env = Env::new();
    let id = env.start(&[
        "--",
        "sh",
        "-c",
        "i=1; while [ $i -le 60 ]; do echo \"out $i\"; i=$((i+1)); done; exec cat",
    ]);
    // Nobody was attached: the model kept it all (once the program wrote it).
    common::wait_until("the program's last line", WAIT, || {
        env.run(&["logs", &id, "--lines", "1"]).stdout == "out 60\n"
    });
    let logs = env.run(&["logs", &id]);
    assert_eq!(logs.code, 0, "{logs:?}");
    let expected: Vec<String> = (1..=60).map(|i| format!("out {i}")).collect();
    assert_eq!(logs.stdout.lines().collect::<Vec<_>>(), expected);
    let last = env.run(&["logs", &id, "--lines", "3"]);
    assert_eq!(last.stdout, "out 58\nout 59\nout 60\n");
    let mut v = Viewer::attach(&env, &id, 24, 80);
    v.wait_screen("the last lines", |s| s.iter().any(|l| l == "out 60"));
    // The history went through the client's terminal, into its scrollback.
    assert!(v.pty.text().contains("out 1\r\n"));
    v.pty.send(b"\x1dd");
    v.pty.wait();
    env.run(&["stop", &id]);
    // After the session ended, the saved history is still readable.
    let after = env.run(&["logs", &id, "-n", "2"]);
    assert_eq!(after.code, 0, "{after:?}");
    assert_eq!(after.stdout, "out 59\nout 60\n");
}

#[test]
fn logs_follow_prints_new_lines_until_the_session_ends() {
    let env = Env::new();
    let id = env.start(&[
        "--",
        "sh",
        "-c",
        "echo first; read x; echo \"second $x\"; read y; exit 3",
    ]);
    let mut f = Pty::spawn(env.cmd(&["logs", &id, "--follow"]), 24, 80);
    f.expect("first");
    // Type into the session from an attached client, then detach.
    let mut a = Viewer::attach(&env, &id, 24, 80);
    a.wait_screen("first", |s| s[0] == "first");
    a.pty.send(b"go\r");
    f.expect("second go");
    a.pty.send(b"\r");
    assert_eq!(a.pty.wait(), 3);
    assert_eq!(f.wait(), 0);
    let text = f.text().replace('\r', "");
    assert_eq!(text.matches("first\n").count(), 1, "{text:?}");
    assert_eq!(text.matches("second go\n").count(), 1, "{text:?}");
}

#[test]
fn vim_is_redrawn_after_reattach() {
    if std::process::Command::new("vim")
        .arg("--version")
        .output()
        .is_err()
    {
        // CI installs vim: there a missing one is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "vim is missing; .ci/run installs it"
        );
        eprintln!("vim is not installed; .ci/run installs it");
        return;
    }
    let env = Env::new();
    let file = numbered(&env, 100);
    let id = env.start(&["-r", &file, "--", "vim", "-u", "NONE", "-N", "-n", &file]);
    let mut v = Viewer::attach(&env, &id, 24, 80);
    v.wait_screen("vim to show the file", |s| s[0] == "line 0001");
    v.pty.send(b"50G");
    v.wait_screen("vim to jump", |s| s.iter().any(|l| l == "line 0050"));
    let before = v.screen();
    let cursor = (v.term.cursor().x, v.term.cursor().y);
    v.pty.send(b"\x1dd");
    assert_eq!(v.pty.wait(), 0);
    let mut w = Viewer::attach(&env, &id, 24, 80);
    w.wait_screen("the same screen", |s| s == &before[..]);
    assert_eq!(
        (w.term.cursor().x, w.term.cursor().y),
        cursor,
        "cursor position survives"
    );
    w.pty.send(b":q!\r");
    assert_eq!(w.pty.wait(), 0);
}

#[test]
fn a_stopped_client_neither_blocks_the_program_nor_grows_the_supervisor() {
    let env = Env::new();
    let id = env.start(&[
        "--",
        "sh",
        "-c",
        "read go; yes 'filler line' | head -n 400000; echo all-done; exec cat",
    ]);
    let mut v = Viewer::attach(&env, &id, 24, 80);
    v.wait_screen("the attach", |_| true);
    env.wait_record(&id, "attached", |r| r.attached);
    // From here on nobody reads the client's terminal: it stops, as a
    // suspended ssh or a terminal under Ctrl-S would.
    v.pty.send(b"\r");
    let sup = env.record(&id).supervisor_pid;
    common::wait_until(
        "the program to finish despite the stopped client",
        WAIT,
        || env.run(&["logs", &id, "--lines", "1"]).stdout == "all-done\n",
    );
    assert!(
        rss_kib(sup) < 16 * 1024,
        "supervisor RSS {} KiB",
        rss_kib(sup)
    );
    // Reading again: the client catches up with a redraw of the current screen.
    v.wait_screen("the redraw", |s| s.iter().any(|l| l == "all-done"));
    v.pty.send(b"\x1dd");
    assert_eq!(v.pty.wait(), 0);
}

#[test]
fn sigterm_to_an_attached_client_detaches_it_and_leaves_the_alternate_screen() {
    let env = Env::new();
    let file = numbered(&env, 100);
    let id = env.start(&["-r", &file, "--", "less", &file]);
    let mut v = Viewer::attach(&env, &id, 24, 80);
    v.wait_screen("less", |s| s[0] == "line 0001");
    assert!(v.term.alternate_screen_active());
    nono::sys::kill(v.pty.child.id() as i32, libc::SIGTERM).unwrap();
    assert_eq!(v.pty.wait(), 128 + 15);
    v.sync();
    assert!(
        !v.term.alternate_screen_active(),
        "left on the alternate screen"
    );
    assert!(v.pty.text().contains("[detached from session"));
    assert_eq!(env.record(&id).status, "running");
}

/// Where each fd of process `pid` points.
fn fd_targets(pid: i32) -> Vec<String> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| fs::read_link(e.path()).ok())
                .map(|t| t.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The terminal a client process has on its stdin.
fn client_tty(v: &Viewer) -> String {
    let t = fs::read_link(format!("/proc/{}/fd/0", v.pty.child.id())).unwrap();
    t.to_string_lossy().into_owned()
}

#[test]
fn the_supervisor_holds_the_attached_terminal_only_while_its_client_lives() {
    let env = Env::new();
    let id = env.start(&["--", "sh", "-c", "stty -echo; exec cat"]);
    let sup = env.record(&id).supervisor_pid;
    let mut v = Viewer::attach(&env, &id, 24, 80);
    env.wait_record(&id, "attached", |r| r.attached);
    v.pty.send(b"first-key\r");
    v.wait_screen("the echo", |s| s[0] == "first-key");
    let tty = client_tty(&v);
    assert!(fd_targets(sup).contains(&tty), "not handed over: {tty}");
    // Detached: the terminal is the client's (and its shell's) alone again.
    v.pty.send(b"\x1dd");
    assert_eq!(v.pty.wait(), 0, "{}", v.pty.text());
    assert!(v.pty.text().contains("[detached from session"));
    common::wait_until("the supervisor to let the terminal go", WAIT, || {
        !fd_targets(sup).contains(&tty)
    });
    env.wait_record(&id, "detached", |r| !r.attached);
    // Killed with SIGKILL: the session lives on without the terminal, and
    // a new attach gets it all back.
    let mut v = Viewer::attach(&env, &id, 24, 80);
    env.wait_record(&id, "attached", |r| r.attached);
    v.pty.send(b"second-key\r");
    v.wait_screen("the echo", |s| s.iter().any(|l| l == "second-key"));
    let tty = client_tty(&v);
    assert!(fd_targets(sup).contains(&tty), "not handed over: {tty}");
    v.pty.child.kill().unwrap();
    let _ = v.pty.child.wait();
    let r = env.wait_record(&id, "detached", |r| !r.attached);
    assert_eq!(r.status, "running");
    common::wait_until("the supervisor to let the terminal go", WAIT, || {
        !fd_targets(sup).contains(&tty)
    });
    let mut v = Viewer::attach(&env, &id, 24, 80);
    env.wait_record(&id, "attached", |r| r.attached);
    v.pty.send(b"third-key\r");
    v.wait_screen("the echo after a killed client", |s| {
        s.iter().any(|l| l == "third-key")
    });
    v.pty.send(b"\x1dd");
    assert_eq!(v.pty.wait(), 0);
}

/// A seccomp filter under which the client cannot reopen its terminal
/// (as after `su`, where it belongs to another user): every open with
/// O_NOCTTY, which only that reopen uses, fails with EACCES (`openat`,
/// and `open`, which musl uses).
fn no_reopen() -> nono::sys::Confinement {
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let jset = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    let ja = (libc::BPF_JMP | libc::BPF_JA) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    nono::sys::Confinement {
        seccomp: Some(vec![
            /* 0 */ ins(ld, 0, 0, 0),
            /* 1 */ ins(jeq, 0, 2, libc::SYS_openat as u32),
            // openat: the flags are args[2] (their low half at offset 32).
            /* 2 */
            ins(ld, 0, 0, 32),
            /* 3 */ ins(ja, 0, 0, 2),
            /* 4 */ ins(jeq, 0, 3, libc::SYS_open as u32),
            // open: args[1], at offset 24.
            /* 5 */ ins(ld, 0, 0, 24),
            /* 6 */ ins(jset, 0, 1, libc::O_NOCTTY as u32),
            /* 7 */ ins(ret, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EACCES as u32),
            /* 8 */ ins(ret, 0, 0, libc::SECCOMP_RET_ALLOW),
        ]),
        ..Default::default()
    }
}

#[test]
fn a_terminal_that_cannot_be_reopened_is_relayed_by_its_client_as_before() {
    let env = Env::new();
    let id = env.start(&[
        "--",
        "sh",
        "-c",
        r"stty -echo; read go; printf '\033]52;c;c2VjcmV0\007\033[?1049hon-the-alternate-screen\r\n'; exec cat",
    ]);
    let sup = env.record(&id).supervisor_pid;
    let attach = |env: &Env| Viewer {
        pty: common::Pty::spawn_confined(env.cmd(&["attach", &id]), 24, 80, no_reopen()),
        term: Terminal::new(24, 80, 1000),
        fed: 0,
    };
    let mut v = attach(&env);
    env.wait_record(&id, "attached", |r| r.attached);
    v.pty.send(b"\r");
    v.wait_screen("the program's screen", |s| {
        s[0] == "on-the-alternate-screen"
    });
    let tty = client_tty(&v);
    assert!(!fd_targets(sup).contains(&tty), "handed over after all");
    // Keys, the output filter and the detach keys work as ever.
    v.pty.send(b"relayed\r");
    v.wait_screen("the echo", |s| s.iter().any(|l| l == "relayed"));
    assert!(
        !v.pty.text().contains("\x1b]52;"),
        "the clipboard write passed"
    );
    v.pty.send(b"\x1dd");
    assert_eq!(v.pty.wait(), 0, "{}", v.pty.text());
    v.sync();
    assert!(
        !v.term.alternate_screen_active(),
        "left on the alternate screen"
    );
    assert!(v.pty.text().contains("[detached from session"));
    // And the next client, which can reopen it, gets the same screen.
    let mut w = Viewer::attach(&env, &id, 24, 80);
    w.wait_screen("the same screen", |s| {
        s[0] == "on-the-alternate-screen" && s[1] == "relayed"
    });
    assert!(fd_targets(sup).contains(&client_tty(&w)));
    w.pty.send(b"\x1dd");
    assert_eq!(w.pty.wait(), 0);
}
