//! Session lifecycle scenarios: the real binary, a private HOME, real ptys.

mod common;

use common::{alive, group_members, wait_until, Env, WAIT};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn detached_start_prints_exactly_the_id_and_attach_hint() {
    let env = Env::new();
    let o = env.run(&["run", "--detached", "--", "sleep", "60"]);
    assert_eq!(o.code, 0, "{o:?}");
    let id = o.stdout.lines().next().unwrap()["Started detached session ".len()..]
        .trim_end_matches('.')
        .to_string();
    assert_eq!(id.len(), 6);
    assert_eq!(
        o.stdout,
        format!("Started detached session {id}.\nAttach with: nono attach {id}\n")
    );
    // Fail-closed: by the time run returned, the record, socket and program exist.
    let r = env.record(&id);
    assert_eq!(r.status, "running");
    assert!(alive(r.child_pid.unwrap()));
    let unix = fs::read_to_string("/proc/net/unix").unwrap();
    assert!(
        r.socket.starts_with(&format!("nono-{}-", r.id))
            && unix.contains(&format!(" @{}\n", r.socket)),
        "not listening on its abstract socket: {r:?}"
    );
    assert!(!env.sessions_dir().join(format!("{}.sock", r.id)).exists());
    let ps = env.run(&["ps"]);
    let row = ps.stdout.lines().nth(1).expect("a row");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[0], id);
    assert_eq!(cols[2], "running");
    assert_eq!(cols[3], "detached");
    assert_eq!(cols[4], r.child_pid.unwrap().to_string());
    assert_eq!(&cols[7..], ["sleep", "60"]);
}

#[test]
fn attached_run_returns_the_programs_exit_code() {
    let env = Env::new();
    for (script, code) in [
        ("exit 0", 0),
        ("echo seven; exit 7", 7),
        ("kill -TERM $$", 128 + 15),
    ] {
        let mut pty = env.spawn_pty(&["run", "--", "sh", "-c", script], 24, 80);
        assert_eq!(pty.wait(), code, "{script}: {:?}", pty.text());
    }
    let records = env.records();
    assert_eq!(records.len(), 3);
    assert!(records.iter().any(|r| r.exit_code == Some(7)));
    assert!(records.iter().any(|r| r.exit_signal == Some(15)));
}

#[test]
fn attached_run_shows_output_printed_before_it_could_attach() {
    let env = Env::new();
    let mut pty = env.spawn_pty(&["run", "--", "sh", "-c", "echo early-bird"], 24, 80);
    assert_eq!(pty.wait(), 0);
    assert!(pty.text().contains("early-bird"), "{:?}", pty.text());
}

#[test]
fn attached_run_without_a_terminal_relays_input_and_status() {
    let env = Env::new();
    let mut child = env
        .cmd(&["run", "--", "sh", "-c", "read line; echo got:$line; exit 3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("got:hello"));
    // EOF on stdin reaches the program as end of input.
    let o = env
        .cmd(&["run", "--", "cat"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
}

#[test]
fn missing_or_unexecutable_command_fails_with_the_real_error_and_leaves_nothing() {
    let env = Env::new();
    let o = env.run(&["run", "--detached", "--", "no-such-program-xyz"]);
    assert_eq!(o.code, 127, "{o:?}");
    assert!(
        o.stderr.contains("no-such-program-xyz") && o.stderr.contains("not found in PATH"),
        "{o:?}"
    );
    let script = env.home.join("not-exec.sh");
    fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let o = env.run(&["run", "--", script.to_str().unwrap()]);
    assert_eq!(o.code, 126, "{o:?}");
    assert!(o.stderr.contains("is not executable"), "{o:?}");
    assert!(env.records().is_empty(), "a failed start left a record");
    let left: Vec<_> = fs::read_dir(env.sessions_dir())
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn a_command_that_exits_at_once_is_not_a_failed_start() {
    let env = Env::new();
    let id = env.start(&["--", "true"]);
    let r = env.wait_record(&id, "exit recorded", |r| r.status == "exited");
    assert_eq!(r.exit_code, Some(0));
    let ps = env.run(&["ps", "--all"]);
    assert!(ps.stdout.contains("exited(0)"), "{ps:?}");
    assert!(!env.run(&["ps"]).stdout.contains(&id));
}

#[test]
fn kill_9_of_the_supervisor_ends_the_program_and_shows_exited_unknown() {
    let env = Env::new();
    // A shell with a grandchild: the whole process group must go, not just the child.
    let id = env.start(&["--", "sh", "-c", "sleep 300; true"]);
    let r = env.record(&id);
    let child = r.child_pid.unwrap();
    wait_until("the grandchild", WAIT, || group_members(child).len() == 2);
    nono::sys::kill(r.supervisor_pid, libc::SIGKILL).unwrap();
    let t = Instant::now();
    wait_until("the process group to die with its supervisor", WAIT, || {
        group_members(child).is_empty()
    });
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    let ps = env.run(&["ps", "--all"]);
    assert!(ps.stdout.contains("exited(?)"), "{ps:?}");
    let json = env.run(&["inspect", &id, "--json"]);
    assert!(json.stdout.contains("\"status\":\"exited\""), "{json:?}");
    let pr = env.run(&["prune"]);
    assert!(
        pr.stdout.contains(&format!("Removed session {id}")),
        "{pr:?}"
    );
    assert!(env.records().is_empty());
}

#[test]
fn sigterm_to_the_supervisor_stops_the_session_cleanly() {
    let env = Env::new();
    let id = env.start(&["--", "sleep", "300"]);
    let r = env.record(&id);
    nono::sys::kill(r.supervisor_pid, libc::SIGTERM).unwrap();
    let r = env.wait_record(&id, "exit", |r| r.status == "exited");
    assert_eq!(r.exit_signal, Some(15));
}

#[test]
fn stop_kills_a_hung_supervisor_and_says_so() {
    let env = Env::new();
    let id = env.start(&["--", "sleep", "300"]);
    let r = env.record(&id);
    nono::sys::kill(r.supervisor_pid, libc::SIGSTOP).unwrap();
    let o = env.run(&["stop", &id, "--timeout", "0.5"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains("did not finish") && o.stderr.contains("killed it"),
        "{o:?}"
    );
    assert!(o.stdout.contains("how is unknown"), "{o:?}");
    wait_until("the program to die", WAIT, || !alive(r.child_pid.unwrap()));
}

#[test]
fn stop_ends_an_obedient_program_by_sigterm_quickly() {
    let env = Env::new();
    let id = env.start(&["--", "sleep", "300"]);
    let t = Instant::now();
    let o = env.run(&["stop", &id]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(
        o.stdout,
        format!("Stopped session {id}: terminated by SIGTERM.\n")
    );
    let r = env.record(&id);
    assert_eq!((r.status.as_str(), r.exit_signal), ("exited", Some(15)));
    assert!(!env.sessions_dir().join(format!("{}.sock", r.id)).exists());
    wait_until("the supervisor to exit", WAIT, || !alive(r.supervisor_pid));
}

#[test]
fn stop_escalates_to_sigkill_when_the_program_ignores_sigterm() {
    let env = Env::new();
    let id = env.start(&[
        "--",
        "sh",
        "-c",
        "trap '' TERM HUP; echo ready; while :; do sleep 0.05; done",
    ]);
    wait_until("the trap to be set", WAIT, || {
        fs::read_to_string(
            env.sessions_dir()
                .join(format!("{}.events", env.record(&id).id)),
        )
        .is_ok_and(|e| e.contains("started"))
    });
    // Give sh a moment to install the trap: wait until it runs its loop (a sleep child exists).
    let child = env.record(&id).child_pid.unwrap();
    wait_until("the loop to run", WAIT, || {
        fs::read_to_string(format!("/proc/{child}/task/{child}/children"))
            .is_ok_and(|c| !c.trim().is_empty())
    });
    let t = Instant::now();
    let o = env.run(&["stop", &id, "--timeout", "1"]);
    let took = t.elapsed();
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("killed by SIGKILL after the 1s timeout"),
        "{o:?}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(env.record(&id).exit_signal, Some(9));
}

#[test]
fn stop_force_kills_at_once_and_stop_of_an_ended_session_says_so() {
    let env = Env::new();
    let id = env.start(&["--", "sh", "-c", "trap '' TERM; sleep 300"]);
    let o = env.run(&["stop", "--force", &id]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout,
        format!("Stopped session {id}: terminated by SIGKILL.\n")
    );
    let again = env.run(&["stop", &id]);
    assert_eq!(again.code, 0);
    assert!(
        again
            .stdout
            .contains("had already exited (killed by SIGKILL)"),
        "{again:?}"
    );
}

#[test]
fn a_paused_program_shows_paused_and_can_still_be_stopped() {
    let env = Env::new();
    let id = env.start(&["--", "sleep", "300"]);
    let child = env.record(&id).child_pid.unwrap();
    nono::sys::kill(child, libc::SIGSTOP).unwrap();
    env.wait_record(&id, "paused", |r| r.status == "paused");
    assert!(env.run(&["ps"]).stdout.contains("paused"));
    nono::sys::kill(child, libc::SIGCONT).unwrap();
    env.wait_record(&id, "running again", |r| r.status == "running");
    nono::sys::kill(child, libc::SIGSTOP).unwrap();
    env.wait_record(&id, "paused", |r| r.status == "paused");
    let o = env.run(&["stop", &id, "--timeout", "5"]);
    assert!(o.stdout.contains("terminated by SIGTERM"), "{o:?}");
}

#[test]
fn attach_redraws_nothing_lost_and_a_second_attach_is_refused() {
    let env = Env::new();
    let id = env.start(&["--", "sh"]);
    let mut a = env.spawn_pty(&["attach", &id], 24, 80);
    a.send(b"echo one-$((40+2))\r");
    a.expect("one-42");
    env.wait_record(&id, "attached", |r| r.attached);
    assert!(env.run(&["ps"]).stdout.contains("attached"));
    let mut second = env.spawn_pty(&["attach", &id], 24, 80);
    assert_eq!(second.wait(), 1, "{:?}", second.text());
    assert!(
        second.text().contains("already has a client attached"),
        "{:?}",
        second.text()
    );
    // The first client is unaffected.
    a.send(b"echo two-$((40+3))\r");
    a.expect("two-43");
}

#[test]
fn detach_by_command_prints_one_line_and_keeps_the_session() {
    let env = Env::new();
    let id = env.start(&["--", "sh"]);
    let mut a = env.spawn_pty(&["attach", &id], 24, 80);
    a.send(b"echo ready-$((1+1))\r");
    a.expect("ready-2");
    let o = env.run(&["detach", &id]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(a.wait(), 0);
    assert!(
        a.text().contains(&format!("[detached from session {id}]")),
        "{:?}",
        a.text()
    );
    let r = env.wait_record(&id, "detached", |r| !r.attached);
    assert_eq!(r.status, "running");
    // With nobody attached, detach is an error.
    let o = env.run(&["detach", &id]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("no client is attached"), "{o:?}");
}

#[test]
fn detach_keys_split_across_writes_detach_and_are_not_forwarded() {
    let env = Env::new();
    let echo = "while read -r l; do printf 'got:%s|\\n' \"$l\" | od -c | head -1; done";
    let id = env.start(&["--", "sh", "-c", echo]);
    let mut a = env.spawn_pty(&["attach", &id], 24, 80);
    // Output from the program proves the client is attached in raw mode.
    a.send(b"abc\r");
    a.expect("g   o   t   :   a   b   c   |");
    a.send(b"\x1d");
    std::thread::sleep(Duration::from_millis(50)); // a separate read for each key
    a.send(b"d");
    assert_eq!(a.wait(), 0);
    assert!(
        a.text().contains("[detached from session"),
        "{:?}",
        a.text()
    );
    // Reattach: a partial match followed by another key is forwarded intact
    // (od shows the Ctrl-] byte as octal 035).
    let mut b = env.spawn_pty(&["attach", &id], 24, 80);
    b.send(b"hi\r");
    b.expect("g   o   t   :   h   i   |");
    b.send(b"\x1dx\r");
    b.expect("g   o   t   : 035   x   |");
    b.send(b"\x1dd");
    assert_eq!(b.wait(), 0);
    // Nothing of the first detach sequence reached the program.
    let log = b.text();
    assert_eq!(log.matches(" 035 ").count(), 1, "{log:?}");
}

#[test]
fn a_configured_detach_sequence_is_used_and_a_bad_one_is_named() {
    let env = Env::new();
    let cfg = env.home.join("config/nono");
    fs::create_dir_all(&cfg).unwrap();
    fs::write(
        cfg.join("config.toml"),
        "[ui]\ndetach_sequence = \"ctrl-a q\"\n",
    )
    .unwrap();
    let id = env.start(&["--", "cat"]);
    let mut a = env.spawn_pty(&["attach", &id], 24, 80);
    a.send(b"\x1dd\r");
    a.send(b"\x01q");
    assert_eq!(a.wait(), 0);
    assert!(
        a.text().contains("[detached from session"),
        "{:?}",
        a.text()
    );
    fs::write(
        cfg.join("config.toml"),
        "[ui]\ndetach_sequence = \"ctrl-a qq\"\n",
    )
    .unwrap();
    let o = env.run(&["attach", &id]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("'qq'") && o.stderr.contains("line 2"),
        "{o:?}"
    );
}

#[test]
fn resize_reaches_the_program_on_attach_and_on_sigwinch() {
    let env = Env::new();
    let mut a = env.spawn_pty(&["run", "--", "sh"], 30, 100);
    a.send(b"stty size\r");
    a.expect("30 100");
    a.resize(40, 120);
    // The resize travels: client SIGWINCH -> frame -> supervisor TIOCSWINSZ.
    let deadline = Instant::now() + WAIT;
    loop {
        a.send(b"stty size\r");
        if a.expect_new("40 120", Duration::from_millis(500)) {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", a.text());
    }
    a.send(b"exit 5\r");
    assert_eq!(a.wait(), 5);
}

#[test]
fn closing_the_terminal_leaves_the_session_running() {
    let env = Env::new();
    let mut a = env.spawn_pty(&["run", "--name", "keeper", "--", "sh"], 24, 80);
    a.send(b"echo alive-$((2*3))\r");
    a.expect("alive-6");
    let r = env.records().pop().unwrap();
    // Hang up the terminal: the client goes, the supervisor is in its own session.
    a.child.kill().unwrap();
    let _ = a.child.wait();
    drop(a);
    env.wait_record(&r.id, "detached after hangup", |r| !r.attached);
    assert_eq!(env.record(&r.id).status, "running");
    assert!(alive(r.child_pid.unwrap()));
    let mut b = env.spawn_pty(&["attach", "keeper"], 24, 80);
    b.send(b"echo back-$((3*3))\r");
    b.expect("back-9");
}

#[test]
fn attaching_to_an_exited_session_says_so() {
    let env = Env::new();
    let id = env.start(&["--", "sh", "-c", "exit 4"]);
    env.wait_record(&id, "exit", |r| r.status == "exited");
    let o = env.run(&["attach", &id]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("has exited (code 4)"), "{o:?}");
}

#[test]
fn sessions_are_found_by_prefix_or_name_with_clear_errors() {
    let env = Env::new();
    let id = env.start(&["--name", "builder", "--", "sleep", "60"]);
    assert_eq!(env.run(&["inspect", "builder", "--json"]).code, 0);
    assert_eq!(env.run(&["inspect", &id[..4], "--json"]).code, 0);
    let o = env.run(&["inspect", "nope"]);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr,
        "nono: no session matches 'nope'; 'nono ps --all' lists sessions\n"
    );
    // Names are unique among live sessions.
    let o = env.run(&["run", "-d", "--name", "builder", "--", "true"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("already named 'builder'"), "{o:?}");
    let o = env.run(&["run", "-d", "--name", "bad name", "--", "true"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert_eq!(env.run(&["frobnicate"]).code, 2);
    assert_eq!(env.run(&["ps", "--bogus"]).code, 2);
}

#[test]
fn an_ambiguous_prefix_lists_the_candidates() {
    let env = Env::new();
    // Plant two records that share a prefix, as two past sessions would.
    fs::create_dir_all(env.sessions_dir()).unwrap();
    fs::set_permissions(
        env.home.join("state/nono"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    fs::set_permissions(env.sessions_dir(), fs::Permissions::from_mode(0o700)).unwrap();
    for id in ["abcdef0000000001", "abcdef0000000002"] {
        let rec = format!(
            "{{\"version\":1,\"id\":\"{id}\",\"name\":\"n{}\",\"status\":\"exited\",\"attached\":false,\"command\":[\"x\"],\"workdir\":\"/\",\"profile\":null,\"network\":\"allowed\",\"supervisor_pid\":1,\"supervisor_start_time\":0,\"child_pid\":null,\"started_at\":1,\"ended_at\":2,\"exit_code\":0,\"exit_signal\":null,\"rollback_session\":null}}",
            &id[15..]
        );
        fs::write(env.sessions_dir().join(format!("{id}.json")), rec).unwrap();
    }
    let o = env.run(&["inspect", "abc"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("matches 2 sessions (abcdef0000000001, abcdef0000000002)"),
        "{o:?}"
    );
    let ps = env.run(&["ps", "-a"]);
    assert!(ps.stdout.contains("abcdef0000000001 "), "{ps:?}");
}

#[test]
fn a_corrupt_record_is_named_and_the_others_still_list() {
    let env = Env::new();
    let id = env.start(&["--", "sleep", "60"]);
    fs::write(
        env.sessions_dir().join("00000000000000ff.json"),
        "{\"version\":1,",
    )
    .unwrap();
    let ps = env.run(&["ps"]);
    assert_eq!(ps.code, 0);
    assert!(ps.stdout.contains(&id));
    assert!(
        ps.stderr.contains("00000000000000ff.json") && ps.stderr.contains("not a valid record"),
        "{ps:?}"
    );
}

#[test]
fn inspect_shows_every_field_and_the_event_log() {
    let env = Env::new();
    let id = env.start(&["--name", "inspected", "--", "sh", "-c", "sleep 60"]);
    let o = env.run(&["inspect", &id]);
    for key in [
        "Session:",
        "Name:",
        "Status:",
        "Attached:",
        "Command:",
        "Workdir:",
        "Profile:",
        "Network:",
        "Sandbox:",
        "Temp dir:",
        "Grants:",
        "Program PID:",
        "Supervisor PID:",
        "Started:",
        "Ended:",
        "Exit code:",
        "Exit signal:",
        "Rollback:",
    ] {
        assert!(o.stdout.contains(key), "{key} missing: {}", o.stdout);
    }
    let json = env.run(&["inspect", &id, "--json"]).stdout;
    for field in [
        "\"id\"",
        "\"name\":\"inspected\"",
        "\"status\":\"running\"",
        "\"attached\":false",
        "\"child_pid\"",
        "\"supervisor_pid\"",
        "\"started_at\"",
        "\"ended_at\":null",
        "\"exit_code\":null",
        "\"exit_signal\":null",
        "\"command\":[\"sh\",\"-c\",\"sleep 60\"]",
        "\"profile\":\"default\"",
        "\"sandbox\":{\"landlock_abi\":",
        "\"workdir\"",
        "\"network\":\"allowed\"",
        "\"rollback_session\":null",
        &format!("\"containment\":\"{}\"", common::expected_containment()),
    ] {
        assert!(json.contains(field), "{field} missing: {json}");
    }
    let mut a = env.spawn_pty(&["attach", &id], 24, 80);
    env.wait_record(&id, "attached", |r| r.attached);
    env.run(&["detach", &id]);
    a.wait();
    env.run(&["stop", &id]);
    let ev = env.run(&["inspect", &id, "--events"]).stdout;
    let kinds: Vec<&str> = ev
        .lines()
        .map(|l| l.split_whitespace().nth(3).unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["started", "attached", "detached", "stop", "exited"],
        "{ev}"
    );
}

#[test]
fn a_hundred_detached_sessions_are_listed_correctly() {
    let env = Env::new();
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids.push(env.start(&["--", "sleep", "120"]));
    }
    let ps = env.run(&["ps"]);
    let rows: Vec<&str> = ps.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 100, "{}", ps.stdout);
    for id in &ids {
        assert!(
            rows.iter().any(|r| r.starts_with(id.as_str())),
            "{id} missing"
        );
    }
    let json = env.run(&["ps", "--json"]).stdout;
    assert_eq!(json.matches("\"status\":\"running\"").count(), 100);
}

#[test]
fn prune_removes_only_exited_sessions_honouring_keep_and_age() {
    let env = Env::new();
    let live = env.start(&["--", "sleep", "120"]);
    let mut ended = Vec::new();
    for code in 1..=3 {
        let id = env.start(&["--", "sh", "-c", &format!("exit {code}")]);
        env.wait_record(&id, "exit", |r| r.status == "exited");
        ended.push(id);
    }
    let o = env.run(&["prune", "--older-than", "1"]);
    assert_eq!(o.stdout, "Nothing to prune.\n");
    let o = env.run(&["prune", "--dry-run", "--keep", "1"]);
    assert_eq!(
        o.stdout
            .lines()
            .filter(|l| l.starts_with("Would remove"))
            .count(),
        2,
        "{o:?}"
    );
    assert_eq!(env.records().len(), 4);
    let o = env.run(&["prune"]);
    assert_eq!(o.stdout.lines().count(), 3, "{o:?}");
    let left = env.records();
    assert_eq!(left.len(), 1);
    assert!(left[0].id.starts_with(&live));
    assert!(alive(left[0].child_pid.unwrap()));
}

#[test]
fn an_unsafe_registry_directory_is_refused_with_the_fix() {
    let env = Env::new();
    env.start(&["--", "true"]);
    // Opened up (a sandboxed program can chmod it): put back, with a warning.
    let dir = env.home.join("state/nono");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let o = env.run(&["ps"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains("was open to group or others (mode 0755)")
            && o.stderr.contains("put it back to 0700"),
        "{o:?}"
    );
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let o = env.run(&["ps"]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{o:?}");

    let moved = env.home.join("elsewhere");
    fs::rename(&dir, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &dir).unwrap();
    let o = env.run(&["ps"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("is a symlink"), "{o:?}");
    fs::remove_file(&dir).unwrap();
    fs::write(&dir, "").unwrap();
    let o = env.run(&["ps"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("is not a directory"), "{o:?}");
}

#[test]
fn a_socket_path_longer_than_sun_path_still_works() {
    let env = Env::new();
    let deep = env.home.join("a".repeat(60)).join("b".repeat(60));
    fs::create_dir_all(&deep).unwrap();
    let o = env
        .cmd(&["run", "-d", "--", "cat"])
        .env("XDG_STATE_HOME", &deep)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let id = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches('.')
        .to_string();
    let mut c = env.cmd(&["attach", &id]);
    c.env("XDG_STATE_HOME", &deep);
    let mut a = common::Pty::spawn(c, 24, 80);
    a.send(b"long-path-ok\r");
    // Once from this terminal's own echo before attaching, then from the
    // session (its echo and cat): only then is the client attached.
    let deadline = std::time::Instant::now() + WAIT;
    while a.count("long-path-ok") < 2 {
        assert!(std::time::Instant::now() < deadline, "{:?}", a.text());
        a.pump(50);
    }
    let st = env
        .cmd(&["stop", &id])
        .env("XDG_STATE_HOME", &deep)
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(0), "{st:?}");
    assert_eq!(a.wait(), 128 + 15, "{:?}", a.text());
}

#[test]
fn a_program_inside_a_session_cannot_drive_its_own_supervisor() {
    let env = Env::new();
    let nono = common::bin();
    let script = format!(
        "{0} detach insider; echo detach-rc=$?; {0} stop insider; echo stop-rc=$?",
        nono.display()
    );
    // Unsandboxed, so the program can run nono and reach the socket: the
    // supervisor's peer check alone must refuse it.
    let mut a = env.spawn_pty(
        &[
            "run",
            "--no-sandbox",
            "--name",
            "insider",
            "--",
            "sh",
            "-c",
            &script,
        ],
        24,
        100,
    );
    assert_eq!(a.wait(), 0);
    let text = a.text();
    assert!(
        text.contains("detach-rc=1") && text.contains("stop-rc=1"),
        "{text:?}"
    );
    assert!(
        text.contains("refused the connection") && text.contains("runs inside this session"),
        "{text:?}"
    );
    let id = env.records()[0].id.clone();
    let ev = env.run(&["inspect", &id, "--events"]).stdout;
    assert_eq!(ev.matches("denied").count(), 2, "{ev}");
}

#[test]
fn a_config_that_others_can_change_is_refused_with_the_fix() {
    let env = Env::new();
    let dir = env.home.join("config/nono");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("config.toml"),
        "[ui]\ndetach_sequence = \"ctrl-a q\"\n",
    )
    .unwrap();
    // mkdir's usual 0755 is fine: others may read, not write.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(env.run(&["run", "--", "true"]).code, 0);
    // Opened to all (a sandboxed program can chmod it): put back, with a warning.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let o = env.run(&["run", "--", "true"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr
            .contains("was writable by group or others (mode 0777); put it back to 0755"),
        "{o:?}"
    );
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o755
    );
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(dir.join("config.toml"), fs::Permissions::from_mode(0o666)).unwrap();
    let o = env.run(&["run", "--", "true"]);
    assert!(
        o.stderr
            .contains("config.toml is writable by group or others"),
        "{o:?}"
    );
    fs::set_permissions(dir.join("config.toml"), fs::Permissions::from_mode(0o644)).unwrap();
    if !common::can_act_as_others() {
        eprintln!(
            "skipped the foreign-owner case: cannot chown here (not root, or inside a session)"
        );
        return;
    }
    std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
    let o = env.run(&["run", "--", "true"]);
    assert!(o.stderr.contains("owned by uid 65534"), "{o:?}");
}

#[test]
fn an_unprivileged_user_runs_lists_and_stops_a_sandboxed_session() {
    let Some(user) = common::test_user() else {
        eprintln!("skipped: no unprivileged test user (needs root to create it)");
        return;
    };
    let env = Env::for_user(user);
    let id = env.start(&["--", "sleep", "60"]);
    let r = env.record(&id);
    assert_eq!(r.status, "running");
    let owner = fs::metadata(format!("/proc/{}", r.child_pid.unwrap()))
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    assert_eq!(owner, user.uid, "the program runs as the test user");
    let ps = env.run(&["ps"]);
    assert!(ps.stdout.contains(&id), "{ps:?}");
    let o = env.run(&["stop", &id]);
    assert_eq!(o.code, 0, "{o:?}");
    env.wait_record(&id, "the session to end", |r| r.status == "exited");
}
