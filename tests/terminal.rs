//! The operator's terminal stays the operator's (issue 10, part 4): what a
//! program leaves behind is undone at detach and at its end, clipboard
//! writes and title reports do not reach it, answers to the program's
//! queries do not land in the operator's shell, and what nono prints for
//! humans never carries a program's control characters. The real binary
//! on a real pty; what the operator's terminal received is replayed into
//! nono's own terminal model to see the state it is left in.

mod common;

use common::{wait_until, Env, Pty, WAIT};
use nono::term::{Modes, Terminal};
use std::fs;

/// Everything a hostile program can leave a terminal in.
const GARBLE: &str = r"\033[1;3r\033(0\016\033[?6h\033[?5h\033[7m\033[>1u\033[>4;2m\033[?1000h\033[?1006h\033[?1004h\033[?2004h\033[?25l\033[5 q\033=\033[?1h\033[?2026h";

/// A program that prints some lines, garbles the terminal, goes two lines
/// down (inside the new scroll region), says `ready` and waits.
fn garbler() -> String {
    format!("printf 'line1\\nline2\\nline3\\n'; printf '{GARBLE}'; printf '\\n\\nready'; read x")
}

/// Replay what the operator's terminal received, then print `qqq` on a new
/// line: the state the operator's shell would find.
fn replay(bytes: &[u8]) -> Terminal {
    let mut t = Terminal::new(24, 80, 100);
    t.feed(bytes);
    t.feed(b"\r\nqqq");
    t
}

/// The operator's terminal is as a fresh one would be.
fn assert_restored(t: &Terminal, bytes: &[u8]) {
    assert_eq!(t.scroll_region(), (0, 23), "scroll region");
    assert_eq!(t.modes(), Modes::default(), "modes");
    assert_eq!(t.pen(), Terminal::new(24, 80, 0).pen(), "attributes");
    // G0/G1 and SI: `q` is a q, not a line-drawing piece.
    let row = t.cursor().y as usize;
    assert_eq!(
        t.screen_text()[row].trim_end(),
        "qqq",
        "{:?}",
        t.screen_text()
    );
    // The program left its cursor after `ready`: the operator's prompt
    // follows it, not the top of the screen.
    // (A newline echoed inside the 3-line region may have scrolled it once.)
    let ready = t.screen_text().iter().position(|l| l.contains("ready"));
    assert!(
        ready.is_some_and(|r| r >= 1 && row > r + 1),
        "{:?}",
        t.screen_text()
    );
    // What the model does not track: the bytes after the program's last say.
    let tail = &bytes[bytes.windows(5).rposition(|w| w == b"ready").unwrap()..];
    for seq in [
        &b"\x1b[?5l"[..],
        b"\x1b[<999u",
        b"\x1b[>4m",
        b"\x1b[?2026l",
        b"\x1b[?1004l",
        b"\x1b[?6l",
    ] {
        assert!(
            tail.windows(seq.len()).any(|w| w == seq),
            "{} not undone",
            String::from_utf8_lossy(seq).escape_debug()
        );
    }
}

#[test]
fn detach_restores_the_operators_terminal_completely() {
    let env = Env::new();
    let id = env.start(&["--", "sh", "-c", &garbler()]);
    let mut a = env.spawn_pty(&["attach", &id], 24, 80);
    a.expect("ready");
    a.send(b"\x1dd");
    assert_eq!(a.wait(), 0, "{}", a.text());
    assert!(a.text().contains("[detached from session"));
    let t = replay(&a.out);
    assert_restored(&t, &a.out);
}

#[test]
fn the_session_ending_restores_the_operators_terminal_completely() {
    let env = Env::new();
    let mut a = env.spawn_pty(&["run", "--", "sh", "-c", &garbler()], 24, 80);
    a.expect("ready");
    a.send(b"\r");
    assert_eq!(a.wait(), 0, "{}", a.text());
    let t = replay(&a.out);
    assert_restored(&t, &a.out);
}

/// Run `sh -c SCRIPT` in a session, attach in a pty, let it go on with a
/// newline once it says `go` (so what follows is relayed live, not drawn
/// from the model), wait for `done`, detach; the bytes the terminal received.
fn shown(env: &Env, script: &str) -> Vec<u8> {
    let id = env.start(&["--", "sh", "-c", &format!("printf go; read x; {script}")]);
    let mut a = env.spawn_pty(&["attach", &id], 24, 80);
    a.expect("go");
    a.send(b"\r");
    a.expect("done");
    a.send(b"\x1dd");
    assert_eq!(a.wait(), 0, "{}", a.text());
    std::mem::take(&mut a.out)
}

#[test]
fn the_clipboard_is_written_only_when_the_config_allows_it() {
    let env = Env::new();
    let script = r"printf '\033]52;c;c2VjcmV0\007\033]52;c;?\007\033[21t\033[8;10;10tdone'; read x";
    let out = String::from_utf8_lossy(&shown(&env, script)).into_owned();
    assert!(out.contains("done"));
    for never in ["\x1b]52;", "\x1b[21t", "\x1b[8;10;10t"] {
        assert!(
            !out.contains(never),
            "{never:?} reached the terminal: {out:?}"
        );
    }
    let dir = env.home.join("config/nono");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("config.toml"), "[ui]\nallow_clipboard = true\n").unwrap();
    let out = String::from_utf8_lossy(&shown(&env, script)).into_owned();
    assert!(out.contains("\x1b]52;c;c2VjcmV0\x07"), "{out:?}");
    // Reading the operator's clipboard, title reports and window operations: never.
    for never in ["\x1b]52;c;?", "\x1b[21t", "\x1b[8;10;10t"] {
        assert!(
            !out.contains(never),
            "{never:?} reached the terminal: {out:?}"
        );
    }
    fs::write(dir.join("config.toml"), "[ui]\nallow_clipboard = \"yes\"\n").unwrap();
    let o = env.run(&["attach", "x"]);
    assert!(
        o.stderr.contains("allow_clipboard' must be true or false"),
        "{o:?}"
    );
}

#[test]
fn answers_to_the_programs_queries_never_reach_the_operators_shell() {
    let env = Env::new();
    let id = env.start(&[
        "--",
        "sh",
        "-c",
        r"printf go; read x; printf '\033[cdone'; read x",
    ]);
    let out = env.home.join("leftover");
    // After nono, whatever is left in the terminal's input is read by the shell.
    let script = format!("\"$0\" attach {id}; stty -echo; cat -v > {}", out.display());
    let mut a = Pty::spawn(env.sh(&script, &[common::bin().to_str().unwrap()]), 24, 80);
    a.expect("go");
    a.send(b"\r");
    a.expect("done");
    assert!(
        a.text().contains("\x1b[c"),
        "the query was passed while attached"
    );
    a.send(b"\x1dd");
    // The client's fence; the terminal answers it after the late answer to
    // the program's query, as a slow link would deliver them.
    wait_until("the fence query", WAIT, || {
        a.pump(20);
        a.text().contains("\x1b[5n")
    });
    a.send(b"\x1b[?62;22c\x1b[0n");
    a.expect("[detached from session");
    wait_until("the shell after nono", WAIT, || {
        a.pump(20);
        fs::metadata(&out).is_ok()
    });
    a.send(b"typed\r\x04");
    assert_eq!(a.wait(), 0, "{}", a.text());
    assert_eq!(fs::read_to_string(&out).unwrap(), "typed\n");
}

#[test]
fn ps_inspect_and_logs_never_carry_a_programs_control_characters() {
    let Some(py) = common::python() else {
        eprintln!("note: no python3; skipping");
        return;
    };
    let env = Env::new();
    let nasty = "\x1b[2J\x1b]2;pwned\x07\u{202e}evil";
    let id = env.start(&[
        "--",
        py.to_str().unwrap(),
        "-c",
        "import sys; print(sys.argv[1]); input()",
        nasty,
    ]);
    wait_until("the output", WAIT, || {
        env.run(&["logs", &id]).stdout.contains("evil")
    });
    let ps = env.run(&["ps"]).stdout;
    let inspect = env.run(&["inspect", &id]).stdout;
    let logs = env.run(&["logs", &id]).stdout;
    for (what, text) in [("ps", &ps), ("inspect", &inspect), ("logs", &logs)] {
        assert!(
            !text.contains('\x1b') && !text.contains('\x07') && !text.contains('\u{202e}'),
            "{what}: {text:?}"
        );
    }
    let quoted = format!(
        "{} -c 'import sys; print(sys.argv[1]); input()' $'\\e[2J\\e]2;pwned\\x07\\u202eevil'",
        py.display()
    );
    assert!(
        inspect.contains(&format!("Command:        {quoted}")),
        "{inspect}"
    );
    assert!(ps.contains(" -c 'import sys;"), "{ps}");
    // The model keeps no control characters; what it keeps is shown escaped.
    assert!(logs.contains("evil"), "{logs:?}");
}

#[test]
fn names_that_read_as_ids_are_refused_and_a_name_is_claimed_once() {
    let env = Env::new();
    let id = env.start(&["--", "sleep", "300"]);
    let full = env.record(&id).id;
    for bad in [id.as_str(), full.as_str(), "deadbeef", "ABCDEF12"] {
        let o = env.run(&["run", "-d", "-n", bad, "--", "true"]);
        assert_eq!(o.code, 2, "{bad}: {o:?}");
        assert!(o.stderr.contains("read as a session id"), "{bad}: {o:?}");
    }
    // Eight starts race for one name: exactly one gets it.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            env.cmd(&["run", "-d", "-n", "only-one", "--", "sleep", "300"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = racers
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(won, 1, "{outs:?}");
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("already named 'only-one'"),
            "{o:?}"
        );
    }
    let live = env
        .records()
        .into_iter()
        .filter(|r| r.name == "only-one" && r.status != "exited")
        .count();
    assert_eq!(live, 1);
}
