//! Operator experience: what a new user and a tmux/screen operator meet in
//! their first hour, driven through the real binary.

mod common;

use common::Env;
use std::process::Stdio;

#[test]
fn output_to_a_full_disk_is_an_error_but_a_closed_pipe_is_not() {
    let env = Env::new();
    let id = env.start(&["--", "sh", "-c", "echo hello; exec sleep 60"]);
    common::wait_until("the greeting in the logs", common::WAIT, || {
        env.run(&["logs", &id]).stdout.contains("hello")
    });
    for args in [
        vec!["ps", "--json"],
        vec!["inspect", id.as_str()],
        vec!["logs", id.as_str()],
        vec!["--help"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = env
            .cmd(&args)
            .stdin(Stdio::null())
            .stdout(full)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("cannot write to standard output: No space left on device"),
            "{args:?}: {err}"
        );
    }
    // `nono ps | true`: the reader is gone before we write; quiet success.
    let (r, w) = nono::sys::pipe().unwrap();
    drop(r);
    let o = env
        .cmd(&["ps", "--json"])
        .stdin(Stdio::null())
        .stdout(w)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(o.stderr.is_empty(), "{o:?}");
}

/// Write `text` to `path` (parents created) with `mode`.
fn put(path: &std::path::Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Run `nono ARGS` attached on a real terminal from `cwd`, with `path`
/// as PATH; returns the exit status and what the terminal showed.
fn attached_in(env: &Env, cwd: &std::path::Path, path: &str, args: &[&str]) -> (i32, String) {
    let mut cmd = env.cmd(args);
    cmd.current_dir(cwd).env("PATH", path);
    let mut pty = common::Pty::spawn(cmd, 24, 200);
    let code = pty.wait();
    (code, pty.text().replace("\r\n", "\n"))
}

#[test]
fn the_dev_profile_runs_home_toolchains_and_git_config_but_never_credentials() {
    let env = Env::new();
    let h = &env.home;
    let proj = h.join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    // Toolchains as rustup, pyenv and npm lay them out, each a script that
    // reads a file of its own installation.
    put(
        &h.join(".rustup/toolchains/stable/lib/rt"),
        "RUSTUP-OK\n",
        0o644,
    );
    put(
        &h.join(".cargo/bin/cargo"),
        "#!/bin/sh\ncat \"$HOME/.rustup/toolchains/stable/lib/rt\"\n",
        0o755,
    );
    put(
        &h.join(".pyenv/versions/3.12/lib/site"),
        "PYENV-OK\n",
        0o644,
    );
    put(
        &h.join(".pyenv/shims/python3"),
        "#!/bin/sh\ncat \"$HOME/.pyenv/versions/3.12/lib/site\"\n",
        0o755,
    );
    put(
        &h.join(".local/bin/tool"),
        "#!/bin/sh\necho LOCAL-OK\n",
        0o755,
    );
    put(
        &h.join(".gitconfig"),
        "[user]\n\tname = GITCONFIG-OK\n",
        0o644,
    );
    put(&h.join(".config/git/ignore"), "GITIGNORE-OK\n", 0o644);
    let secrets = [
        ".ssh/id_ed25519",
        ".aws/credentials",
        ".cargo/credentials.toml",
        ".npmrc",
        ".pypirc",
        ".config/gh/hosts.yml",
        ".netrc",
        ".git-credentials",
        ".config/git/credentials",
        ".docker/config.json",
        ".gnupg/private-keys-v1.d/k.key",
        ".kube/config",
    ];
    for s in secrets {
        put(&h.join(s), "SECRET\n", 0o600);
    }
    let path = format!(
        "{0}/.cargo/bin:{0}/.pyenv/shims:{0}/.local/bin:/usr/bin:/bin",
        h.display()
    );
    let mut script = String::from(
        "cargo; python3; tool; cat ~/.gitconfig ~/.config/git/ignore; echo made > ./out && echo WORKDIR-OK\n",
    );
    for s in secrets {
        script.push_str(&format!("cat ~/{s} 2>/dev/null || echo REFUSED:{s}\n"));
    }
    let (code, text) = attached_in(
        &env,
        &proj,
        &path,
        &["run", "--profile", "dev", "--", "sh", "-c", &script],
    );
    assert_eq!(code, 0, "{text}");
    for ok in [
        "RUSTUP-OK",
        "PYENV-OK",
        "LOCAL-OK",
        "GITCONFIG-OK",
        "GITIGNORE-OK",
        "WORKDIR-OK",
    ] {
        assert!(text.contains(ok), "{ok} missing: {text}");
    }
    assert!(!text.contains("SECRET"), "{text}");
    for s in secrets {
        assert!(text.contains(&format!("REFUSED:{s}")), "{s}: {text}");
    }
    // `profile list` names it, with what it is for.
    let list = env.run(&["profile", "list"]);
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with("dev ") && l.contains("developer")),
        "{list:?}"
    );
}

#[test]
fn make_run_uses_the_dev_profile() {
    let makefile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Makefile")).unwrap();
    let recipe: Vec<&str> = makefile
        .lines()
        .skip_while(|l| !l.starts_with("run:"))
        .skip(1)
        .take_while(|l| l.starts_with('\t'))
        .collect();
    // The dev profile, plus a worktree's repository so git works there.
    assert!(
        recipe.iter().any(|l| l
            .contains("nono run --profile dev $(if $(GIT_COMMON_DIR),-a $(GIT_COMMON_DIR)) --")),
        "{recipe:?}"
    );
}

#[test]
fn dry_run_and_the_real_run_find_the_same_program_as_the_shell() {
    let env = Env::new();
    let h = &env.home;
    let proj = h.join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    let shims = h.join(".pyenv/shims");
    put(
        &shims.join("python3"),
        "#!/bin/sh\necho FROM-THE-SHIM\n",
        0o755,
    );
    let path = format!("{}:/usr/bin:/bin", shims.display());
    let run = |args: &[&str]| {
        let mut c = env.cmd(args);
        c.current_dir(&proj).env("PATH", &path).stdin(Stdio::null());
        common::Out::from(c.output().unwrap())
    };
    // Not granted: both refuse, naming the file and the grant; nothing starts
    // (in particular not /usr/bin/python3, a different interpreter).
    let shim = shims.canonicalize().unwrap().join("python3");
    let dry = run(&["run", "--dry-run", "--", "python3", "-c", "pass"]);
    assert_eq!(dry.code, 126, "{dry:?}");
    let want = format!("-r {}", shim.display());
    assert!(
        dry.stdout.contains("Program:   will not start") && dry.stdout.contains(&want),
        "{dry:?}"
    );
    let real = run(&["run", "-d", "--", "python3", "-c", "pass"]);
    assert_eq!(real.code, 126, "{real:?}");
    assert!(real.stderr.contains(&want), "{real:?}");
    assert!(env.records().is_empty());
    // Granted: both name the shim, and the shim is what runs.
    let shims_s = shims.to_str().unwrap();
    let dry = run(&["run", "--dry-run", "-r", shims_s, "--", "python3"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout.contains(&format!(
            "Program:   {} (granted)",
            shims.join("python3").display()
        )),
        "{dry:?}"
    );
    let mut c = env.cmd(&["run", "-r", shims_s, "--", "python3"]);
    c.current_dir(&proj).env("PATH", &path);
    let mut pty = common::Pty::spawn(c, 24, 80);
    assert_eq!(pty.wait(), 0);
    assert!(pty.text().contains("FROM-THE-SHIM"), "{}", pty.text());
}

#[test]
fn a_program_that_cannot_run_is_reported_as_what_it_is() {
    let env = Env::new();
    let proj = env.home.join("proj");
    put(&proj.join("noexec.sh"), "#!/bin/sh\necho hi\n", 0o644);
    put(&proj.join("badinterp"), "#!/nonexistent\necho hi\n", 0o755);
    std::fs::create_dir_all(proj.join("adir")).unwrap();
    for (prog, code, says) in [
        ("./noexec.sh", 126, "is not executable (mode 0644)"),
        (
            "./badinterp",
            126,
            "its interpreter '/nonexistent' (named on its #! line) does not exist",
        ),
        ("./adir", 126, "it is a directory"),
        ("./missing", 127, "No such file or directory"),
        ("no-such-command-anywhere", 127, "command not found in PATH"),
    ] {
        for mode in ["--dry-run", "-d"] {
            let mut c = env.cmd(&["run", "--allow-cwd", mode, "--", prog]);
            c.current_dir(&proj).stdin(Stdio::null());
            let o = common::Out::from(c.output().unwrap());
            assert_eq!(o.code, code, "{prog} {mode}: {o:?}");
            let text = o.stdout + &o.stderr;
            assert!(text.contains(says), "{prog} {mode}: {text}");
            assert!(
                !text.contains("sandbox does not grant"),
                "{prog} {mode}: {text}"
            );
        }
    }
    assert!(env.records().is_empty());
}

#[test]
fn attach_d_takes_over_from_a_client_attached_elsewhere() {
    let env = Env::new();
    let id = env.start(&["--", "sh", "-c", "echo ready; exec sleep 60"]);
    let mut first = env.spawn_pty(&["attach", &id], 24, 80);
    first.expect("ready");
    env.wait_record(&id, "the first client attached", |r| r.attached);
    // Without -d the second is refused, as before.
    let mut refused = env.spawn_pty(&["attach", &id], 24, 80);
    assert_eq!(refused.wait(), 1);
    assert!(refused.text().contains("already has a client attached"));
    let mut second = env.spawn_pty(&["attach", "-d", &id], 24, 80);
    second.expect("ready");
    assert_eq!(first.wait(), 0, "{}", first.text());
    assert!(first
        .text()
        .contains(&format!("[detached from session {id}]")));
    let r = env.wait_record(&id, "the second client attached", |r| r.attached);
    assert_eq!(r.status, "running");
    second.send(b"\x1dd");
    assert_eq!(second.wait(), 0, "{}", second.text());
}

#[test]
fn a_session_that_ends_while_attached_says_so_on_its_own_line() {
    let env = Env::new();
    let mut pty = env.spawn_pty(
        &["run", "--", "sh", "-c", "printf partial; exit 3"],
        24,
        120,
    );
    assert_eq!(pty.wait(), 3);
    let text = pty.text();
    assert!(text.contains("partial"), "{text:?}");
    let r = env.records().remove(0);
    let short = &r.id[..6];
    // Sandboxed and failed: the line points at the grants.
    assert!(
        text.contains(&format!("\r\n[session {short} exited: code 3; sandboxed: 'nono run --dry-run' shows grants, -r PATH adds one]\r\n")),
        "{text:?}"
    );
    let mut pty = env.spawn_pty(
        &["run", "--no-sandbox", "--", "sh", "-c", "exit 0"],
        24,
        120,
    );
    assert_eq!(pty.wait(), 0);
    assert!(
        pty.text().contains("exited: code 0]\r\n"),
        "{:?}",
        pty.text()
    );
    assert!(!pty.text().contains("sandboxed:"), "{:?}", pty.text());
}

#[test]
fn attach_without_a_terminal_is_refused_and_does_not_hold_the_session() {
    let env = Env::new();
    let id = env.start(&["--", "bash"]);
    let o = env.run(&["attach", &id]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("attach needs a terminal"), "{o:?}");
    assert!(o.stderr.contains(&format!("'nono logs {id}'")), "{o:?}");
    let r = env.record(&id);
    assert!(!r.attached && r.status == "running", "{r:?}");
    // A terminal can attach at once.
    let mut pty = env.spawn_pty(&["attach", &id], 24, 80);
    env.wait_record(&id, "attached", |r| r.attached);
    pty.send(b"\x1dd");
    assert_eq!(pty.wait(), 0);
}

#[test]
fn a_frozen_supervisor_is_named_with_its_pid_instead_of_hanging() {
    let env = Env::new();
    let id = env.start(&["--", "sleep", "60"]);
    let pid = env.record(&id).supervisor_pid;
    nono::sys::kill(pid, libc::SIGSTOP).unwrap();
    let want = format!("supervisor (pid {pid}) did not answer within 5 s");
    for args in [vec!["logs", id.as_str()], vec!["detach", id.as_str()]] {
        let o = env.run(&args);
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        assert!(o.stderr.contains(&want), "{args:?}: {o:?}");
    }
    let mut pty = env.spawn_pty(&["attach", &id], 24, 80);
    assert_eq!(pty.wait(), 1);
    assert!(pty.text().contains(&want), "{}", pty.text());
    nono::sys::kill(pid, libc::SIGCONT).unwrap();
    assert_eq!(env.run(&["logs", &id]).code, 0);
}

#[test]
fn a_broken_config_does_not_lock_the_operator_out() {
    let env = Env::new();
    let id = env.start(&["--", "sh", "-c", "echo ready; exec sleep 60"]);
    put(
        &env.home.join("config/nono/config.toml"),
        "[ui\ndetach_sequence = \n",
        0o600,
    );
    let mut pty = env.spawn_pty(&["attach", &id], 24, 80);
    pty.expect("ready");
    assert!(
        pty.text()
            .contains("using the default detach keys (ctrl-] d)"),
        "{}",
        pty.text()
    );
    pty.send(b"\x1dd");
    assert_eq!(pty.wait(), 0, "{}", pty.text());
    assert!(pty.text().contains("[detached from session"));
}

/// A program that asks its terminal what crossterm-style TUIs ask at
/// start-up and prints each answer (ESC removed) as it arrives.
const QUERIES: &str = r#"stty -echo -icanon
printf 'abc\033[6n'; IFS= read -r -d R a; echo "CPR=${a#?}R"
printf '\033[5n'; IFS= read -r -d n a; echo "DSR=${a#?}n"
printf '\033[c'; IFS= read -r -d c a; echo "DA1=${a#?}c"
printf '\033[>c'; IFS= read -r -d c a; echo "DA2=${a#?}c"
exec sleep 60"#;

#[test]
fn terminal_queries_are_answered_while_detached_and_by_the_terminal_while_attached() {
    let env = Env::new();
    let id = env.start(&["--", "bash", "-c", QUERIES]);
    let mut text = String::new();
    common::wait_until("the answers", common::WAIT, || {
        text = env.run(&["logs", &id]).stdout;
        text.contains("DA2=")
    });
    assert!(text.contains("abcCPR=[1;4R"), "{text}");
    assert!(text.contains("DSR=[0n"), "{text}");
    assert!(text.contains("DA1=[?62;22c"), "{text}");
    assert!(text.contains("DA2=[>1;10;0c"), "{text}");
    // Attached, the operator's terminal answers, and only it.
    let ask = "stty -echo -icanon; read -r -n 1 go; printf '\\033[6n'; IFS= read -r -d R a; echo \"CPR=${a#?}R\"; exec sleep 60";
    let id = env.start(&["--", "bash", "-c", ask]);
    let mut pty = env.spawn_pty(&["attach", &id], 24, 80);
    env.wait_record(&id, "attached", |r| r.attached);
    pty.send(b"g");
    pty.expect("\x1b[6n");
    pty.send(b"\x1b[7;7R");
    pty.expect("CPR=[7;7R");
}

#[test]
fn of_two_runs_with_one_name_in_one_second_the_later_wins() {
    let env = Env::new();
    for _ in 0..3 {
        let first = env.start(&["-n", "twin", "--", "true"]);
        env.wait_record(&first, "the first to end", |r| r.status == "exited");
        let second = env.start(&["-n", "twin", "--", "true"]);
        env.wait_record(&second, "the second to end", |r| r.status == "exited");
        let (a, b) = (env.record(&first), env.record(&second));
        assert!(b.started_at_ns > a.started_at_ns, "{a:?} {b:?}");
        let o = env.run(&["inspect", "twin", "--json"]);
        assert!(o.stdout.contains(&format!("\"id\":\"{}\"", b.id)), "{o:?}");
        let ps = env.run(&["ps", "-a"]).stdout;
        let rows: Vec<&str> = ps.lines().filter(|l| l.contains("twin")).collect();
        let last = rows.iter().rposition(|l| l.starts_with(&second));
        let prev = rows.iter().rposition(|l| l.starts_with(&first));
        assert!(last > prev, "{ps}");
        assert_eq!(env.run(&["prune"]).code, 0);
    }
    // A record from before sub-second times still parses and orders.
    let old = "{\"version\":1,\"id\":\"0123456789abcdef\",\"name\":\"old\",\"status\":\"exited\",\"attached\":false,\"command\":[\"x\"],\"workdir\":\"/\",\"profile\":null,\"network\":\"allowed\",\"supervisor_pid\":1,\"supervisor_start_time\":0,\"child_pid\":null,\"started_at\":1,\"ended_at\":2,\"exit_code\":0,\"exit_signal\":null,\"rollback_session\":null}";
    put(
        &env.sessions_dir().join("0123456789abcdef.json"),
        old,
        0o600,
    );
    let o = env.run(&["inspect", "old"]);
    assert_eq!(o.code, 0, "{o:?}");
}

#[test]
fn nono_inside_a_session_says_it_cannot_manage_sessions_from_there() {
    let env = Env::new();
    let bin = common::bin().canonicalize().unwrap();
    let b = bin.to_str().unwrap();
    let script =
        format!("for c in 'ps' 'run -d -- true' 'attach x'; do {b} $c; echo \"rc=$?\"; done");
    let (code, text) = attached_in(
        &env,
        &env.home,
        &std::env::var("PATH").unwrap(),
        &["run", "-r", b, "--", "sh", "-c", &script],
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        text.matches("nono cannot manage sessions from inside a sandboxed session")
            .count(),
        3,
        "{text}"
    );
    assert_eq!(text.matches("rc=1").count(), 3, "{text}");
}

/// `nono ps ARGS` on a terminal `cols` wide: its lines as the screen shows them.
fn ps_at(env: &Env, cols: u16) -> Vec<String> {
    let mut pty = env.spawn_pty(&["ps"], 24, cols);
    assert_eq!(pty.wait(), 0, "{}", pty.text());
    pty.text()
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn ps_fits_narrow_terminals_and_long_names_without_wrapping() {
    let env = Env::new();
    let long = "n".repeat(64);
    let a = env.start(&["-n", &long, "--", "sleep", "61"]);
    let b = env.start(&[
        "--",
        "sh",
        "-c",
        "exec sleep 62 # a long command line that will not fit anywhere narrow",
    ]);
    for cols in [120u16, 80, 60, 40, 20] {
        let lines = ps_at(&env, cols);
        assert_eq!(lines.len(), 3, "{cols}: {lines:#?}");
        for l in &lines {
            assert!(l.chars().count() <= cols as usize, "{cols}: {l:?} wraps");
        }
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        let rows: Vec<&String> = lines[1..].iter().collect();
        if cols >= 40 {
            // The columns that identify a session stay, COMMAND included.
            assert_eq!(
                header[..3],
                ["SESSION", "NAME", "STATUS"],
                "{cols}: {lines:#?}"
            );
            assert_eq!(header.last(), Some(&"COMMAND"), "{cols}: {lines:#?}");
            assert!(rows.iter().any(|r| r.starts_with(&a)), "{lines:#?}");
            assert!(rows.iter().any(|r| r.starts_with(&b)), "{lines:#?}");
            // The long name is cut with an ellipsis, and COMMAND still shows.
            let ra = rows.iter().find(|r| r.starts_with(&a)).unwrap();
            assert!(
                ra.contains("nnnnnn\u{2026}") && !ra.contains(&long),
                "{cols}: {ra:?}"
            );
            assert!(ra.contains("sleep"), "{cols}: {ra:?}");
            let rb = rows.iter().find(|r| r.starts_with(&b)).unwrap();
            assert!(rb.ends_with('\u{2026}'), "{cols}: {rb:?}");
        }
        if cols == 120 {
            assert!(
                header.contains(&"PROFILE") && header.contains(&"PID"),
                "{lines:#?}"
            );
        }
        if cols == 40 {
            assert!(
                !header.contains(&"PID") && !header.contains(&"UPTIME"),
                "{lines:#?}"
            );
        }
    }
    // Piped: nothing is cut.
    let o = env.run(&["ps"]);
    assert!(
        o.stdout.contains(&long) && o.stdout.contains("will not fit anywhere narrow"),
        "{o:?}"
    );
}

#[test]
fn prune_in_a_read_only_state_directory_reports_failure_and_removes_nothing_it_claims() {
    use std::os::unix::fs::PermissionsExt;
    // As root, permissions would not stop the removal: act as a real user.
    let Some(user) = common::test_user() else {
        eprintln!("skipped: no unprivileged test user");
        return;
    };
    let env = Env::for_user(user);
    let a = env.start(&["--", "true"]);
    let b = env.start(&["--", "true"]);
    env.wait_record(&a, "exit", |r| r.status == "exited");
    env.wait_record(&b, "exit", |r| r.status == "exited");
    let dir = env.sessions_dir();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    let o = env.run(&["prune"]);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(o.code, 1, "{o:?}");
    assert!(!o.stdout.contains("Removed"), "{o:?}");
    for id in [&a, &b] {
        assert!(
            o.stderr
                .contains(&format!("session {id} was not removed: cannot remove"))
                && o.stderr.contains("Permission denied"),
            "{o:?}"
        );
    }
    assert!(
        o.stderr.contains("2 session(s) could not be removed"),
        "{o:?}"
    );
    assert_eq!(env.records().len(), 2);
    // Writable again: prune works and says so.
    let o = env.run(&["prune"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout.matches("Removed session").count(), 2, "{o:?}");
}

#[test]
fn older_than_takes_only_a_plain_number_of_days() {
    let env = Env::new();
    for bad in ["nan", "NaN", "inf", "-1", "1e400", "x"] {
        let o = env.run(&["prune", "--older-than", bad]);
        assert_eq!(o.code, 2, "{bad}: {o:?}");
        assert!(
            o.stderr.contains(&format!(
                "invalid --older-than '{bad}': give a number of days"
            )),
            "{bad}: {o:?}"
        );
    }
    assert_eq!(env.run(&["prune", "--older-than", "0.5"]).code, 0);
}

#[test]
fn a_usage_error_points_at_the_commands_own_help() {
    let env = Env::new();
    for (args, help) in [
        (vec!["ps", "--bogus"], "nono ps --help"),
        (vec!["logs"], "nono logs --help"),
        (vec!["run"], "nono run --help"),
        (vec!["prune", "--older-than", "nan"], "nono prune --help"),
        (vec!["bogus"], "nono --help"),
        (vec!["--bogus"], "nono --help"),
    ] {
        let o = env.run(&args);
        assert_eq!(o.code, 2, "{args:?}: {o:?}");
        assert!(
            o.stderr.ends_with(&format!("(see '{help}')\n")) && o.stderr.lines().count() == 1,
            "{args:?}: {o:?}"
        );
    }
}

#[test]
fn config_errors_quote_the_line_and_valid_toml_is_accepted() {
    let env = Env::new();
    let cfg = env.home.join("config/nono/config.toml");
    for (text, says) in [
        (
            "[ui]\ndetach_sequence = \"\"\n",
            "line 2: 'ui.detach_sequence' is empty; give at least two keys",
        ),
        (
            "# mine\n[ui]\nscrollback_lines = 1e3\n",
            "line 3: 'scrollback_lines = 1e3': '1e3': numbers with an exponent are not supported",
        ),
        (
            "[ui]\nscrollback_lines = 5\n\n[ui]\n",
            "line 4: '[ui]': table [ui] is defined twice (first on line 1)",
        ),
        (
            "[ui]\n\n\ndetach_sequence = ctrl-b d\n",
            "line 4: 'detach_sequence = ctrl-b d'",
        ),
    ] {
        put(&cfg, text, 0o600);
        let o = env.run(&["run", "-d", "--", "true"]);
        assert_eq!(o.code, 1, "{text:?}: {o:?}");
        assert!(o.stderr.contains(says), "{text:?}: {o:?}");
        assert_eq!(o.stderr.lines().count(), 1, "{o:?}");
    }
    // A single-quoted string is TOML, as in profiles.
    put(&cfg, "[ui]\ndetach_sequence = 'ctrl-b d'\n", 0o600);
    let id = env.start(&["--", "sh", "-c", "echo ready; exec sleep 60"]);
    let mut pty = env.spawn_pty(&["attach", &id], 24, 80);
    pty.expect("ready");
    pty.send(b"\x02d");
    assert_eq!(pty.wait(), 0, "{}", pty.text());
}

#[test]
fn a_profile_that_extends_itself_is_told_so_plainly() {
    let env = Env::new();
    let dir = env.home.join("config/nono/profiles");
    put(
        &dir.join("mine.toml"),
        "[meta]\nextends = \"mine\"\n",
        0o600,
    );
    put(&dir.join("a.toml"), "[meta]\nextends = \"b\"\n", 0o600);
    put(&dir.join("b.toml"), "[meta]\nextends = \"a\"\n", 0o600);
    std::fs::set_permissions(
        env.home.join("config/nono"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let o = env.run(&["profile", "show", "mine"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("extends 'mine', its own name") && !o.stderr.contains("no profile named"),
        "{o:?}"
    );
    let o = env.run(&["profile", "show", "a"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("profile 'a' extends itself: a -> b -> a"),
        "{o:?}"
    );
}

#[test]
fn sessions_started_inside_a_session_are_manageable_from_it() {
    // What 'make test' inside 'make run' does: nono with its own state
    // directory, from a sandboxed session's shell.
    if !common::user_namespaces_available() {
        // Already inside a session: one more level would be a session
        // without namespaces, whose program may not open new terminals.
        eprintln!("skipped: sessions here get no namespaces (running inside a session?)");
        return;
    }
    let env = Env::new();
    let bin = common::bin().canonicalize().unwrap();
    let b = bin.to_str().unwrap();
    let script = format!(
        "export HOME=$TMPDIR XDG_STATE_HOME=$TMPDIR/s XDG_CONFIG_HOME=$TMPDIR/c
         {b} run -d -n inner -- sh -c 'echo inner-ready; exec sleep 60' >/dev/null || exit 9
         for i in $(seq 200); do {b} logs inner | grep -q inner-ready && break; sleep 0.05; done
         {b} logs inner; {b} stop inner"
    );
    let (code, text) = attached_in(
        &env,
        &env.home,
        &std::env::var("PATH").unwrap(),
        &["run", "-r", b, "--", "sh", "-c", &script],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("inner-ready"), "{text}");
    assert!(text.contains("Stopped session"), "{text}");
}
