//! Rollback end to end with the real binary: an agent (a shell script in a
//! real sandboxed session) changes a tree; the review shows it; restores
//! put it back three-way without touching what the session did not
//! change, never write outside the tree, survive SIGKILL, and can be
//! undone.

mod common;

use common::{wait_until, Env, Out, WAIT};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// Every path under `dir` (but `.git`) as "kind mode content".
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut names: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            if rel == ".git" {
                continue;
            }
            let md = fs::symlink_metadata(&p).unwrap();
            let mode = md.permissions().mode() & 0o7777;
            let desc = if md.file_type().is_symlink() {
                format!("l {}", fs::read_link(&p).unwrap().display())
            } else if md.is_dir() {
                walk(base, &p, out);
                format!("d {mode:o}")
            } else {
                format!(
                    "f {mode:o} {}",
                    String::from_utf8_lossy(&fs::read(&p).unwrap())
                )
            };
            out.insert(rel, desc);
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// A project directory inside the test's home, with `files` (path, content).
fn project(env: &Env, files: &[(&str, &str)]) -> PathBuf {
    let dir = env.home.join("proj");
    fs::create_dir_all(&dir).unwrap();
    for (p, c) in files {
        let path = dir.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, c).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    }
    dir
}

/// Start a detached session with rollback over `dir`, working in it;
/// returns its short id.
fn start_in(env: &Env, dir: &Path, args: &[&str]) -> String {
    let d = dir.display().to_string();
    let mut full = vec!["run", "-d", "-a", &d, "--rollback"];
    full.extend_from_slice(args);
    let o = Out::from(
        env.cmd(&full)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(o.code, 0, "{o:?}");
    o.stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Started detached session "))
        .and_then(|l| l.strip_suffix('.'))
        .unwrap_or_else(|| panic!("{o:?}"))
        .to_string()
}

/// Run `script` as the agent in a session with rollback over `dir`, to
/// its end; returns the session id.
fn agent(env: &Env, dir: &Path, script: &str, extra: &[&str]) -> String {
    let mut args = extra.to_vec();
    args.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    let id = start_in(env, dir, &args);
    env.wait_record(&id, "the agent to finish", |r| r.status == "exited");
    id
}

/// `nono rollback ARGS` with the project as the working directory.
fn rollback(env: &Env, dir: &Path, args: &[&str]) -> Out {
    let mut full = vec!["rollback"];
    full.extend_from_slice(args);
    let o = env
        .cmd(&full)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Out::from(o)
}

/// The number after `"key":` in the first object of a JSON text.
fn json_number(text: &str, object: &str, key: &str) -> u64 {
    let at = text
        .find(&format!("\"{object}\":{{"))
        .unwrap_or_else(|| panic!("{object} in {text}"));
    let rest = &text[at..];
    let k = rest.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    rest[k..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The journal of restore number `n` of session `id`.
fn restore_journal(env: &Env, id: &str, n: u32) -> PathBuf {
    env.home
        .join("state/nono/rollback/sessions")
        .join(&env.record(id).id)
        .join(format!("restores/{n}/journal"))
}

/// Spin (no sleep: the window it waits for may be short) until `cond`
/// holds; `never` is the failure message if it does not within `WAIT`.
fn spin_until(never: &str, cond: impl FnMut() -> bool) {
    assert!(spin(cond), "{never}");
}

/// Whether `cond` came to hold within `WAIT`, spinning.
fn spin(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + WAIT;
    while !cond() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

/// Run `nono rollback <args>` and SIGKILL it the moment `cond` holds
/// (killed and reaped also when it never does, then the test fails).
fn kill_when(env: &Env, args: &[&str], never: &str, cond: impl FnMut() -> bool) {
    let mut all = vec!["rollback"];
    all.extend_from_slice(args);
    let mut child = env
        .cmd(&all)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let held = spin(cond);
    let _ = child.kill();
    child.wait().unwrap();
    assert!(held, "{never}");
}

#[test]
fn restore_to_baseline_undoes_edits_deletes_creations_chmods_and_a_symlink_swap_but_not_ignored_paths(
) {
    let env = Env::new();
    let dir = project(
        &env,
        &[
            (".gitignore", ".env\nnode_modules/\n"),
            (".env", "SECRET=1\n"),
            ("node_modules/dep/index.js", "dep\n"),
            ("src/main.rs", "fn main() {}\n"),
            ("README", "read me\n"),
            ("old.txt", "old\n"),
            ("run.sh", "echo hi\n"),
            ("config", "real file\n"),
        ],
    );
    fs::create_dir(dir.join("empty")).unwrap();
    symlink("README", dir.join("link")).unwrap();
    let before = snapshot(&dir);
    let id = agent(
        &env,
        &dir,
        "echo changed >> src/main.rs; rm old.txt; echo new > new.txt; mkdir -p gen/deep; echo g > gen/deep/x; \
         chmod 755 run.sh; rm config; ln -s /etc/hostname config; rmdir empty; \
         echo SECRET=2 > .env; echo more > node_modules/dep/more.js",
        &[],
    );
    let record = env.record(&id);
    assert_eq!(record.rollback_session.as_deref(), Some(record.id.as_str()));

    let show = rollback(&env, &dir, &["show", &id]);
    assert_eq!(show.code, 0, "{show:?}");
    for line in [
        "~ src/main.rs",
        "- old.txt",
        "+ new.txt",
        "+ gen/deep/x",
        "m run.sh",
        "~ config",
        "- empty",
    ] {
        assert!(
            show.stdout.contains(line),
            "{line} missing from {}",
            show.stdout
        );
    }
    let review: String = show.stdout.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert!(
        !review.contains(".env") && !review.contains("node_modules"),
        "{review}"
    );
    let diff = rollback(&env, &dir, &["show", &id, "--diff", "src"]);
    assert!(diff.stdout.contains("+changed\n"), "{}", diff.stdout);
    assert!(
        !diff.stdout.contains("- old.txt"),
        "PATH limits the review: {}",
        diff.stdout
    );

    // Without a terminal, a restore needs --yes and changes nothing.
    let refused = rollback(&env, &dir, &["restore", &id]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("--yes"), "{refused:?}");
    assert!(dir.join("new.txt").exists());

    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    let mut want = before.clone();
    // Ignored paths are opaque: the agent's changes there stay.
    want.insert(".env".into(), "f 644 SECRET=2\n".into());
    let after = snapshot(&dir);
    let more = after.get("node_modules/dep/more.js").cloned();
    assert!(more.is_some_and(|m| m.ends_with("more\n")), "{after:?}");
    let mut after = after;
    after.remove("node_modules/dep/more.js");
    assert_eq!(after, want);
    let events = env.run(&["inspect", "--events", &id]);
    assert!(events.stdout.contains("rollback baseline"), "{events:?}");
    assert!(events.stdout.contains("rollback final"), "{events:?}");
    assert!(events.stdout.contains("restore"), "{events:?}");
}

#[test]
fn files_the_user_changed_after_the_session_are_conflicts_and_force_never_deletes_them() {
    let env = Env::new();
    let dir = project(&env, &[("a.txt", "a0\n"), ("b.txt", "b0\n")]);
    let id = agent(
        &env,
        &dir,
        "echo a1 > a.txt; echo b1 > b.txt; echo c > c.txt",
        &[],
    );
    // The user edits one of the agent's files and creates one of their own.
    fs::write(dir.join("a.txt"), "mine\n").unwrap();
    fs::write(dir.join("user.txt"), "user\n").unwrap();
    fs::write(dir.join("c.txt"), "c edited\n").unwrap();

    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout
            .contains("! ~ a.txt  (conflict: changed since the session; skipped)"),
        "{o:?}"
    );
    assert!(o.stdout.contains("= user.txt  (left alone"), "{o:?}");
    assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "mine\n");
    assert_eq!(fs::read_to_string(dir.join("b.txt")).unwrap(), "b0\n");
    assert_eq!(fs::read_to_string(dir.join("c.txt")).unwrap(), "c edited\n");
    assert_eq!(fs::read_to_string(dir.join("user.txt")).unwrap(), "user\n");

    let o = rollback(&env, &dir, &["restore", &id, "--yes", "--force"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "a0\n");
    // c.txt was the agent's: --force removes it; user.txt never was.
    assert!(!dir.join("c.txt").exists());
    assert_eq!(fs::read_to_string(dir.join("user.txt")).unwrap(), "user\n");
}

#[test]
fn undo_puts_the_tree_back_as_it_was_before_the_restore() {
    let env = Env::new();
    let dir = project(&env, &[("a.txt", "a0\n"), ("gone.txt", "g\n")]);
    let id = agent(
        &env,
        &dir,
        "echo a1 > a.txt; rm gone.txt; mkdir d; echo n > d/new.txt",
        &[],
    );
    let agent_state = snapshot(&dir);
    assert_eq!(rollback(&env, &dir, &["restore", &id, "--yes"]).code, 0);
    assert!(!dir.join("d").exists());
    let o = rollback(&env, &dir, &["restore", &id, "--undo", "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(snapshot(&dir), agent_state);
    // --to final redoes nothing more: the tree is already the final state.
    let o = rollback(&env, &dir, &["restore", &id, "--to", "final", "--dry-run"]);
    assert!(o.stdout.contains("Nothing to restore"), "{o:?}");
}

#[test]
fn a_restore_killed_with_sigkill_converges_when_run_again() {
    let env = Env::new();
    let dir = project(&env, &[("keep", "k\n")]);
    let before = snapshot(&dir);
    // Enough files that the restore is still writing when it is killed.
    let id = agent(
        &env,
        &dir,
        "mkdir m; i=0; while [ $i -lt 4000 ]; do echo $i > m/f$i; i=$((i+1)); done",
        &[],
    );
    let agent_state = snapshot(&dir);
    let journal = restore_journal(&env, &id, 1);
    // Kill it as soon as it has written something (no sleep: spin on the journal).
    kill_when(
        &env,
        &["restore", &id, "--yes"],
        "the restore never started writing",
        || fs::read_to_string(&journal).is_ok_and(|j| j.contains("\ndone ")),
    );
    let j = fs::read_to_string(&journal).unwrap();
    assert!(
        !j.contains("complete"),
        "the restore finished before it was killed"
    );
    assert_ne!(
        snapshot(&dir),
        before,
        "the restore did nothing before the kill"
    );

    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("Resuming the interrupted restore #1"),
        "{o:?}"
    );
    assert_eq!(snapshot(&dir), before);
    // The undo covers the whole restore, both runs of it.
    let o = rollback(&env, &dir, &["restore", &id, "--undo", "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(snapshot(&dir), agent_state);
}

#[test]
fn a_directory_swapped_for_a_symlink_to_outside_is_never_written_through() {
    let env = Env::new();
    let dir = project(&env, &[("sub/f", "inside\n")]);
    let outside = env.home.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("f"), "outside\n").unwrap();
    let outside_before = snapshot(&outside);
    let id = agent(&env, &dir, "echo agent > sub/f", &[]);
    // After the session, the directory becomes a link to outside the root.
    fs::remove_dir_all(dir.join("sub")).unwrap();
    symlink(&outside, dir.join("sub")).unwrap();
    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(snapshot(&outside), outside_before);
    let o = rollback(&env, &dir, &["restore", &id, "--yes", "--force"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        snapshot(&outside),
        outside_before,
        "written through the link"
    );
    assert!(fs::symlink_metadata(dir.join("sub")).unwrap().is_dir());
    assert_eq!(fs::read_to_string(dir.join("sub/f")).unwrap(), "inside\n");
}

#[test]
fn a_capture_over_budget_refuses_to_start_and_names_the_biggest_directory() {
    let env = Env::new();
    let files: Vec<(String, String)> = (0..30)
        .map(|i| (format!("data/d{i}"), "x".repeat(100)))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let dir = project(&env, &refs);
    fs::write(dir.join("small"), "s").unwrap();
    fs::create_dir_all(env.home.join("config/nono")).unwrap();
    fs::write(
        env.home.join("config/nono/config.toml"),
        "[rollback]\nmax_files = 10\n",
    )
    .unwrap();
    let d = dir.display().to_string();
    let o = env.run(&["run", "-d", "-a", &d, "--rollback", "--", "true"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("31 files (limit 10)"), "{o:?}");
    assert!(o.stderr.contains(&format!("{d}/data (30 files")), "{o:?}");
    assert!(o.stderr.contains("--rollback-exclude 'data/'"), "{o:?}");
    assert!(env.records().is_empty(), "a session started anyway");
    let id = env.start(&["-a", &d, "--rollback-exclude", "data/", "--", "true"]);
    env.wait_record(&id, "the session to end", |r| r.status == "exited");
    let list = env.run(&["rollback", "list", "--json"]);
    assert_eq!(
        json_number(&list.stdout, "baseline", "files"),
        1,
        "{list:?}"
    );
}

#[test]
fn rollback_without_a_writable_directory_is_refused() {
    let env = Env::new();
    let o = env.run(&["run", "-d", "--rollback", "--", "true"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("no writable directory to capture"),
        "{o:?}"
    );
    let o = env.run(&["run", "-d", "--no-sandbox", "--rollback", "--", "true"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(env.records().is_empty());
}

#[test]
fn a_capture_reads_no_file_the_previous_capture_of_the_same_root_vouches_for() {
    let env = Env::new();
    let big = "b".repeat(300_000);
    let dir = project(
        &env,
        &[("big", &big), ("small", "s\n"), ("sub/other", "o\n")],
    );
    let first = agent(&env, &dir, "echo s2 > small", &[]);
    let list = env.run(&["rollback", "list", "--json"]);
    assert_eq!(
        json_number(&list.stdout, "baseline", "bytes_read"),
        300_000 + 2 + 2
    );
    // The final capture read only the file the agent wrote.
    assert_eq!(
        json_number(&list.stdout, "final", "bytes_read"),
        3,
        "{list:?}"
    );
    // A second session in the same tree reads nothing at its start.
    let second = agent(&env, &dir, "true", &[]);
    let list = env.run(&["rollback", "list", "--json"]);
    let at = list.stdout.find(&env.record(&second).id).unwrap();
    let tail = &list.stdout[at..];
    assert_eq!(json_number(tail, "baseline", "bytes_read"), 0, "{list:?}");
    assert_eq!(json_number(tail, "baseline", "objects_new"), 0, "{list:?}");
    let _ = first;
}

#[test]
fn a_detached_session_stopped_with_nono_stop_is_captured_and_restorable() {
    let env = Env::new();
    let dir = project(&env, &[("a", "a0\n")]);
    let id = start_in(
        &env,
        &dir,
        &[
            "--",
            "/bin/sh",
            "-c",
            "echo a1 > a; echo x > made; exec sleep 600",
        ],
    );
    wait_until("the agent to write", WAIT, || dir.join("made").exists());
    let ps = env.run(&["ps"]);
    assert!(
        ps.stdout.contains("rollback"),
        "ps marks rollback sessions: {ps:?}"
    );
    // Prune never takes the captures of a live session.
    let pruned = env.run(&["rollback", "prune"]);
    assert_eq!(pruned.code, 0, "{pruned:?}");
    assert!(
        !pruned.stdout.contains("Removed the rollback"),
        "{pruned:?}"
    );
    let list = env.run(&["rollback", "list"]);
    assert!(list.stdout.contains("running"), "{list:?}");
    let live = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(live.code, 1, "a live session is not restored: {live:?}");
    assert!(live.stderr.contains("still running"), "{live:?}");
    let o = env.run(&["stop", &id]);
    assert_eq!(o.code, 0, "{o:?}");
    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "a0\n");
    assert!(!dir.join("made").exists());
    let inspect = env.run(&["inspect", &id]);
    assert!(inspect.stdout.contains("baseline"), "{inspect:?}");
}

#[test]
fn after_the_supervisor_is_killed_the_baseline_is_listed_restorable_and_prunable() {
    let env = Env::new();
    let dir = project(&env, &[("a", "a0\n"), ("b", "b0\n")]);
    let id = start_in(
        &env,
        &dir,
        &[
            "--",
            "/bin/sh",
            "-c",
            "echo a1 > a; rm b; echo c > c; exec sleep 600",
        ],
    );
    wait_until("the agent to write", WAIT, || dir.join("c").exists());
    let r = env.record(&id);
    nono::sys::kill(r.supervisor_pid, libc::SIGKILL).unwrap();
    wait_until("the supervisor to die", WAIT, || {
        !common::alive(r.supervisor_pid)
    });
    if let Some(c) = r.child_pid {
        let _ = nono::sys::killpg(c, libc::SIGKILL);
    }
    let list = env.run(&["rollback", "list"]);
    assert!(list.stdout.contains("no-final"), "{list:?}");
    // Without the final state every difference is a conflict.
    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("final state is unknown"), "{o:?}");
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "a1\n");
    let o = rollback(&env, &dir, &["restore", &id, "--yes", "--force"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "a0\n");
    assert_eq!(fs::read_to_string(dir.join("b")).unwrap(), "b0\n");
    // Not in the baseline, final unknown: never deleted.
    assert!(dir.join("c").exists());
    let o = env.run(&["prune"]);
    assert!(
        o.stdout
            .contains("Kept the rollback captures of 1 sessions"),
        "{o:?}"
    );
    let o = env.run(&["rollback", "verify", &id]);
    assert_eq!(o.code, 0, "{o:?}");
    let o = env.run(&["rollback", "prune"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout
            .contains("Removed the rollback captures of session"),
        "{o:?}"
    );
    let list = env.run(&["rollback", "list"]);
    assert!(list.stdout.starts_with("No rollback sessions"), "{list:?}");
}

#[test]
fn verify_names_a_damaged_object() {
    let env = Env::new();
    let dir = project(&env, &[("a", "precious\n")]);
    let id = agent(&env, &dir, "echo b > a", &[]);
    assert_eq!(env.run(&["rollback", "verify", &id]).code, 0);
    // Damage the baseline's object for "a" (objects are read-only: make it writable first).
    let objects = env.home.join("state/nono/rollback/objects");
    let target = fs::read_dir(&objects)
        .unwrap()
        .flatten()
        .flat_map(|d| fs::read_dir(d.path()).into_iter().flatten().flatten())
        .find(|f| fs::read(f.path()).is_ok_and(|c| c == b"precious\n"))
        .unwrap()
        .path();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&target, "tampered\n").unwrap();
    let o = env.run(&["rollback", "verify", &id]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("damaged"), "{o:?}");
    // A restore refuses to write damaged content.
    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "b\n");
}

#[test]
fn a_profile_can_turn_rollback_on_and_exclude_paths() {
    let env = Env::new();
    let dir = project(&env, &[("src/a", "a0\n"), ("data/big", "d0\n")]);
    let profile = env.home.join("agent.toml");
    fs::write(
        &profile,
        format!(
            "[meta]\nextends = \"default\"\n[filesystem]\nallow = [\"{}\"]\n[rollback]\nenabled = true\nexclude = [\"data/\"]\n",
            dir.display()
        ),
    )
    .unwrap();
    let p = profile.display().to_string();
    let shown = env.run(&["profile", "show", &p]);
    assert!(shown.stdout.contains("Rollback:  enabled"), "{shown:?}");
    let o = Out::from(
        env.cmd(&[
            "run",
            "-d",
            "--profile",
            &p,
            "--",
            "/bin/sh",
            "-c",
            "echo a1 > src/a; echo d1 > data/big",
        ])
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap(),
    );
    assert_eq!(o.code, 0, "{o:?}");
    let id = o
        .stdout
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches('.')
        .to_string();
    env.wait_record(&id, "the agent to finish", |r| r.status == "exited");
    assert!(env.record(&id).rollback_session.is_some());
    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(fs::read_to_string(dir.join("src/a")).unwrap(), "a0\n");
    // Excluded by the profile: the agent's change stays.
    assert_eq!(fs::read_to_string(dir.join("data/big")).unwrap(), "d1\n");
}

#[test]
fn an_agent_cannot_hide_its_changes_or_aim_the_restore_outside_the_tree() {
    let env = Env::new();
    let dir = project(
        &env,
        &[
            (".gitignore", "*.log\n"),
            ("secret.txt", "s0\n"),
            ("sub/f", "inside\n"),
        ],
    );
    let outside = env.home.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("f"), "outside\n").unwrap();
    let outside_before = snapshot(&outside);
    // The agent ignores the file it changes (rules are frozen at the start)
    // and replaces a directory with a link to outside the tree.
    let script = format!(
        "echo secret.txt >> .gitignore; echo s1 > secret.txt; rm -r sub; ln -s {} sub",
        outside.display()
    );
    let id = agent(&env, &dir, &script, &[]);
    let show = rollback(&env, &dir, &["show", &id]);
    assert!(show.stdout.contains("~ secret.txt"), "{show:?}");
    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(fs::read_to_string(dir.join("secret.txt")).unwrap(), "s0\n");
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        "*.log\n"
    );
    assert!(fs::symlink_metadata(dir.join("sub")).unwrap().is_dir());
    assert_eq!(fs::read_to_string(dir.join("sub/f")).unwrap(), "inside\n");
    assert_eq!(
        snapshot(&outside),
        outside_before,
        "the restore wrote outside the tree"
    );
}

#[test]
fn rollback_prune_keeps_the_newest_and_frees_what_nothing_refers_to() {
    let env = Env::new();
    let dir = project(&env, &[("a", "a0\n")]);
    let first = agent(&env, &dir, "echo first-only-content > a", &[]);
    let second = agent(&env, &dir, "echo second > a", &[]);
    let o = env.run(&["rollback", "prune", "--keep", "1", "--dry-run"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains(&format!(
            "Would remove the rollback captures of session {}",
            &env.record(&first).id[..6]
        )),
        "{o:?}"
    );
    let o = env.run(&["rollback", "prune", "--keep", "1"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("Freed"), "{o:?}");
    let list = env.run(&["rollback", "list", "--json"]);
    assert!(!list.stdout.contains(&env.record(&first).id), "{list:?}");
    assert!(list.stdout.contains(&env.record(&second).id), "{list:?}");
    // The kept session is whole.
    assert_eq!(env.run(&["rollback", "verify", &second]).code, 0);
    let objects = env.home.join("state/nono/rollback/objects");
    let stored = |content: &[u8]| {
        fs::read_dir(&objects)
            .unwrap()
            .flatten()
            .filter(|d| d.path().is_dir())
            .flat_map(|d| fs::read_dir(d.path()).into_iter().flatten().flatten())
            .any(|f| fs::read(f.path()).is_ok_and(|c| c == content))
    };
    assert!(
        !stored(b"a0\n"),
        "an object only the pruned session used is still stored"
    );
    // The first session's final state is the second's baseline: kept.
    assert!(stored(b"first-only-content\n"));
}

#[test]
fn restore_on_a_terminal_shows_the_plan_and_asks_first() {
    let env = Env::new();
    let dir = project(&env, &[("a", "a0\n")]);
    let id = agent(&env, &dir, "echo a1 > a", &[]);
    let mut no = env.spawn_pty(&["rollback", "restore", &id], 24, 100);
    no.expect("Apply 1 changes? [y/N]");
    no.send(b"n\r");
    assert_eq!(no.wait(), 1);
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "a1\n");
    let mut yes = env.spawn_pty(&["rollback", "restore", &id], 24, 100);
    yes.expect("~ a");
    yes.expect("Apply 1 changes? [y/N]");
    yes.send(b"y\r");
    assert_eq!(yes.wait(), 0);
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "a0\n");
}

#[test]
fn restore_of_some_paths_leaves_the_others_and_binary_files_are_named_not_diffed() {
    let env = Env::new();
    let dir = project(&env, &[("src/a", "a0\n"), ("b", "b0\n")]);
    fs::write(dir.join("blob"), b"\x00\x01\x02").unwrap();
    let id = agent(
        &env,
        &dir,
        "echo a1 > src/a; echo b1 > b; printf '\\000\\003' > blob",
        &[],
    );
    let show = rollback(&env, &dir, &["show", &id, "--diff"]);
    assert!(
        show.stdout
            .contains("Binary files a/blob and b/blob differ"),
        "{show:?}"
    );
    assert!(show.stdout.contains("-b0\n+b1\n"), "{show:?}");
    let o = rollback(&env, &dir, &["restore", &id, "--yes", "src"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(fs::read_to_string(dir.join("src/a")).unwrap(), "a0\n");
    assert_eq!(fs::read_to_string(dir.join("b")).unwrap(), "b1\n");
    let outside = rollback(&env, &dir, &["restore", &id, "--yes", "/etc"]);
    assert_eq!(outside.code, 2, "{outside:?}");
    assert!(
        outside
            .stderr
            .contains("not under the session's captured directories"),
        "{outside:?}"
    );
}

#[test]
fn an_unprivileged_user_restores_read_only_directories_and_modes() {
    let Some(u) = common::test_user() else {
        eprintln!("skipped: no unprivileged test user (needs root to create it)");
        return;
    };
    let env = Env::for_user(u);
    let dir = env.home.join("proj");
    // Made by the user: a read-only directory holding a file.
    let o = Out::from(
        env.sh(
            "mkdir -p proj/ro && echo f0 > proj/ro/f && echo x > proj/x && chmod 555 proj/ro",
            &[],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(o.code, 0, "{o:?}");
    let before = snapshot(&dir);
    let id = agent(
        &env,
        &dir,
        "chmod 755 ro; rm ro/f; echo new > ro/g; chmod 500 ro; chmod 600 x",
        &[],
    );
    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(snapshot(&dir), before);
    let o = rollback(&env, &dir, &["restore", &id, "--undo", "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(!dir.join("ro/f").exists());
}

#[test]
fn rollback_prune_removes_a_capture_interrupted_before_it_finished() {
    let env = Env::new();
    // What a launcher killed mid-baseline leaves: a session directory
    // without its meta, and a temporary file in the store.
    let base = env.home.join("state/nono/rollback");
    let orphan = base.join("sessions/00112233aabbccdd");
    fs::create_dir_all(&orphan).unwrap();
    fs::write(orphan.join("baseline.0"), "nono-rollback-index 1\n").unwrap();
    fs::create_dir_all(base.join("objects")).unwrap();
    fs::write(base.join("objects/tmp.0123456789abcdef"), "partial").unwrap();
    let list = env.run(&["rollback", "list"]);
    assert!(list.stdout.starts_with("No rollback sessions"), "{list:?}");
    let o = env.run(&["rollback", "prune"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("Removed an unfinished capture"), "{o:?}");
    assert!(!orphan.exists());
    assert!(!base.join("objects/tmp.0123456789abcdef").exists());
}

#[test]
fn every_writable_directory_is_captured_and_restored_on_its_own() {
    let env = Env::new();
    let dir = project(&env, &[("a", "a0\n")]);
    let other = env.home.join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("o"), "o0\n").unwrap();
    let o = other.display().to_string();
    let id = agent(
        &env,
        &dir,
        &format!("echo a1 > a; echo o1 > {o}/o"),
        &["-a", &o],
    );
    let list = env.run(&["rollback", "list", "--json"]);
    assert!(list.stdout.contains(&format!("\"{o}\"")), "{list:?}");
    let show = rollback(&env, &dir, &["show", &id]);
    assert!(show.stdout.contains(&format!("{o}:\n  ~ o")), "{show:?}");
    // Only the other directory: the project keeps the agent's change.
    let r = rollback(&env, &dir, &["restore", &id, "--yes", &o]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fs::read_to_string(other.join("o")).unwrap(), "o0\n");
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "a1\n");
}

#[test]
fn paths_in_gits_global_excludes_file_are_left_alone() {
    let env = Env::new();
    fs::create_dir_all(env.home.join("config/git")).unwrap();
    fs::write(env.home.join("config/git/ignore"), "*.swp\n").unwrap();
    let dir = project(&env, &[("a", "a0\n")]);
    let id = agent(&env, &dir, "echo a1 > a; echo swap > .a.swp", &[]);
    let show = rollback(&env, &dir, &["show", &id]);
    assert!(
        !show.stdout.lines().skip(1).any(|l| l.contains(".a.swp")),
        "{show:?}"
    );
    assert_eq!(rollback(&env, &dir, &["restore", &id, "--yes"]).code, 0);
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "a0\n");
    assert_eq!(fs::read_to_string(dir.join(".a.swp")).unwrap(), "swap\n");
}

#[test]
fn a_file_over_the_size_limit_is_recorded_but_never_touched() {
    let env = Env::new();
    let dir = project(&env, &[("small", "s0\n"), ("big", "0123456789abcdef\n")]);
    fs::create_dir_all(env.home.join("config/nono")).unwrap();
    fs::write(
        env.home.join("config/nono/config.toml"),
        "[rollback]\nmax_file_bytes = 10\n",
    )
    .unwrap();
    let id = agent(
        &env,
        &dir,
        "echo s1 > small; echo agent-wrote-this-big > big",
        &[],
    );
    let list = env.run(&["rollback", "list", "--json"]);
    assert_eq!(json_number(&list.stdout, "baseline", "big"), 1, "{list:?}");
    let o = rollback(&env, &dir, &["restore", &id, "--yes", "--force"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("= big  (left alone: over the size limit"),
        "{o:?}"
    );
    assert_eq!(fs::read_to_string(dir.join("small")).unwrap(), "s0\n");
    assert_eq!(
        fs::read_to_string(dir.join("big")).unwrap(),
        "agent-wrote-this-big\n"
    );
}

#[test]
fn paths_in_the_excludes_file_git_config_names_are_left_alone() {
    let env = Env::new();
    // core.excludesFile set in git's global config, with `~`, as users do.
    fs::write(
        env.home.join(".gitconfig"),
        "[core]\n\texcludesFile = ~/my-global-ignores\n",
    )
    .unwrap();
    fs::write(env.home.join("my-global-ignores"), "*.log\n").unwrap();
    let dir = project(&env, &[("a", "a0\n")]);
    let id = agent(&env, &dir, "echo a1 > a; echo trace > run.log", &[]);
    let show = rollback(&env, &dir, &["show", &id]);
    assert!(show.stdout.contains("~ a"), "{show:?}");
    assert!(
        !show.stdout.lines().skip(1).any(|l| l.contains("run.log")),
        "{show:?}"
    );
    let o = rollback(&env, &dir, &["restore", &id, "--yes", "--force"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "a0\n");
    assert_eq!(fs::read_to_string(dir.join("run.log")).unwrap(), "trace\n");
}

#[test]
fn a_second_restore_in_the_same_tree_is_refused_and_names_the_one_running() {
    let env = Env::new();
    let dir = project(&env, &[("a", "a0\n")]);
    let first = agent(&env, &dir, "echo a1 > a", &[]);
    // A second session in the same tree: its restore writes there too.
    let second = agent(&env, &dir, "echo b > b", &[]);
    // The first restore holds the tree's lock while it asks.
    let mut asking = env.spawn_pty(&["rollback", "restore", &first], 24, 120);
    asking.expect("Apply 1 changes? [y/N]");
    for id in [&first, &second] {
        let o = rollback(&env, &dir, &["restore", id, "--yes"]);
        assert_eq!(o.code, 1, "{o:?}");
        let line = o.stderr.lines().next().unwrap_or_default().to_string();
        assert!(
            line.contains(&format!(
                "{} is busy: 'nono rollback restore ",
                dir.display()
            )) && line.contains("' is writing there (pid ")
                && line.contains("wait for it to finish"),
            "{o:?}"
        );
    }
    // Reviewing is never locked out.
    let o = rollback(&env, &dir, &["restore", &second, "--dry-run"]);
    assert_eq!(o.code, 0, "{o:?}");
    // Nor is a baseline captured from a tree being restored.
    let d = dir.display().to_string();
    let o = env.run(&["run", "-d", "-a", &d, "--rollback", "--", "true"]);
    assert_ne!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains("--rollback: ") && o.stderr.contains("is busy: 'nono rollback restore "),
        "{o:?}"
    );
    assert!(fs::read_to_string(dir.join("b")).is_ok());
    asking.send(b"y\r");
    assert_eq!(asking.wait(), 0);
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "a0\n");
    // Released with its process: the next one runs.
    let o = rollback(&env, &dir, &["restore", &second, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(!dir.join("b").exists());
}

#[test]
fn a_restore_killed_in_the_middle_of_rewriting_a_file_finishes_it_when_run_again() {
    let env = Env::new();
    // Large enough that the kill lands while its content is being written.
    let big: String = (0..1_500_000).map(|i| format!("{i}\n")).collect();
    let dir = project(&env, &[("big.txt", &big), ("small", "s0\n")]);
    let before = snapshot(&dir);
    let id = agent(&env, &dir, "echo agent > big.txt; echo s1 > small", &[]);
    let journal = restore_journal(&env, &id, 1);
    // Kill it once the rewrite of big.txt has begun (spin, no sleep).
    kill_when(
        &env,
        &["restore", &id, "--yes"],
        "the restore never began rewriting big.txt",
        || fs::read_to_string(&journal).is_ok_and(|j| j.contains("inplace 0 big.txt")),
    );
    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains(", 0 conflicts"), "{o:?}");
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn a_supervisor_killed_during_the_final_capture_leaves_a_baseline_that_lists_restores_and_prunes() {
    let env = Env::new();
    let dir = project(&env, &[("a", "a0\n")]);
    // The agent's last act: 64 MiB of new content, so the final capture is
    // still storing it when the supervisor is killed.
    let id = start_in(
        &env,
        &dir,
        &[
            "--",
            "/bin/sh",
            "-c",
            "echo a1 > a; mkdir out; i=0; while [ $i -lt 64 ]; do head -c 1048576 /dev/urandom > out/$i; i=$((i+1)); done",
        ],
    );
    let r = env.record(&id);
    let objects = env.home.join("state/nono/rollback/objects");
    // Kill it once the final capture writes into the store (spin, no sleep).
    let storing = || {
        fs::read_dir(&objects).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("tmp."))
        })
    };
    spin_until("the final capture never began storing", storing);
    nono::sys::kill(r.supervisor_pid, libc::SIGKILL).unwrap();
    wait_until("the supervisor to die", WAIT, || {
        !common::alive(r.supervisor_pid)
    });
    let list = env.run(&["rollback", "list"]);
    assert!(list.stdout.contains("no-final"), "{list:?}");
    let show = rollback(&env, &dir, &["show", &id]);
    assert_eq!(show.code, 0, "{show:?}");
    assert!(show.stdout.contains("never captured"), "{show:?}");
    assert!(show.stdout.contains("~ a"), "{show:?}");
    let o = rollback(&env, &dir, &["restore", &id, "--yes", "--force"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "a0\n");
    // Not in the baseline and the final state unknown: never deleted.
    assert!(dir.join("out/0").exists());
    let o = env.run(&["rollback", "verify", &id]);
    assert_eq!(o.code, 0, "{o:?}");
    let o = env.run(&["rollback", "prune"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        !storing(),
        "prune left the cut-off capture's temporary files"
    );
    assert!(env
        .run(&["rollback", "list"])
        .stdout
        .starts_with("No rollback sessions"),);
}

#[test]
fn a_program_killed_from_outside_gets_its_final_capture() {
    let env = Env::new();
    let dir = project(&env, &[("a", "a0\n")]);
    // A sleep no other test runs, so it can be found in /proc.
    let nap = format!("{}", 600_000 + std::process::id() % 100_000);
    let id = start_in(
        &env,
        &dir,
        &[
            "--",
            "/bin/sh",
            "-c",
            &format!("echo a1 > a; echo x > made; exec sleep {nap}"),
        ],
    );
    wait_until("the agent to write", WAIT, || dir.join("made").exists());
    let program = || {
        fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = fs::read(e.path().join("cmdline")).ok()?;
            (cmd == format!("sleep\0{nap}\0").as_bytes()).then_some(pid)
        })
    };
    let mut pid = None;
    wait_until("the program to be found", WAIT, || {
        pid = program();
        pid.is_some()
    });
    nono::sys::kill(pid.unwrap(), libc::SIGKILL).unwrap();
    env.wait_record(&id, "the session to end", |r| r.status == "exited");
    let list = env.run(&["rollback", "list"]);
    assert!(list.stdout.contains("ended"), "{list:?}");
    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("2 to apply, 0 conflicts"), "{o:?}");
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "a0\n");
    assert!(!dir.join("made").exists());
}

#[test]
fn a_restore_never_writes_through_a_hard_link_to_a_file_outside_the_tree() {
    let env = Env::new();
    let dir = project(&env, &[("f", "f0\n")]);
    let outside = env.home.join("store");
    fs::create_dir(&outside).unwrap();
    let id = agent(&env, &dir, "echo f1 > f", &[]);
    // After the session a tool (a package manager's store, `cp -al`)
    // replaces the file with a hard link to a file outside the tree that
    // holds the same content as the agent left.
    fs::write(outside.join("shared"), "f1\n").unwrap();
    fs::remove_file(dir.join("f")).unwrap();
    fs::hard_link(outside.join("shared"), dir.join("f")).unwrap();
    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(fs::read_to_string(dir.join("f")).unwrap(), "f0\n");
    assert_eq!(
        fs::read_to_string(outside.join("shared")).unwrap(),
        "f1\n",
        "the restore wrote through the hard link"
    );
}

#[test]
fn an_undo_killed_with_sigkill_is_finished_not_undone_when_run_again() {
    let env = Env::new();
    let dir = project(&env, &[("keep", "k\n")]);
    let id = agent(
        &env,
        &dir,
        "mkdir m; i=0; while [ $i -lt 4000 ]; do echo $i > m/f$i; i=$((i+1)); done",
        &[],
    );
    let agent_state = snapshot(&dir);
    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    let journal = restore_journal(&env, &id, 2);
    // Kill the undo once it has written something (spin, no sleep).
    kill_when(
        &env,
        &["restore", &id, "--undo", "--yes"],
        "the undo never started writing",
        || fs::read_to_string(&journal).is_ok_and(|j| j.contains("\ndone ")),
    );
    assert!(
        !fs::read_to_string(&journal).unwrap().contains("complete"),
        "the undo finished before it was killed"
    );
    // The same command again finishes that undo (it does not undo it).
    let o = rollback(&env, &dir, &["restore", &id, "--undo", "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("Resuming the interrupted restore #2"),
        "{o:?}"
    );
    assert_eq!(snapshot(&dir), agent_state);
}

#[test]
fn a_temporary_file_left_by_a_killed_restore_is_removed_by_the_next_one() {
    let env = Env::new();
    let dir = project(&env, &[("a", "a0\n")]);
    let id = agent(&env, &dir, "mkdir d; echo a1 > a; echo x > d/x", &[]);
    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    // The state a kill between creating a temporary file and renaming it
    // leaves: the record not complete, the file in the tree.
    let record = env
        .home
        .join("state/nono/rollback/sessions")
        .join(&env.record(&id).id)
        .join("restores/1");
    let journal = fs::read_to_string(record.join("journal")).unwrap();
    let prefix = journal
        .lines()
        .find_map(|l| l.strip_prefix("temps 0 "))
        .unwrap_or_else(|| panic!("no temps line in {journal}"))
        .to_string();
    let info = fs::read_to_string(record.join("info.json")).unwrap();
    fs::write(
        record.join("info.json"),
        info.replace("\"complete\":true", "\"complete\":false"),
    )
    .unwrap();
    let before = snapshot(&dir);
    fs::write(dir.join(format!("{prefix}7")), "half").unwrap();
    // Someone else's file of a similar name is not ours to remove.
    fs::write(dir.join(".nono-restore.mine"), "mine").unwrap();
    let o = rollback(&env, &dir, &["restore", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(!o.stdout.contains(&prefix), "{o:?}");
    assert!(!dir.join(format!("{prefix}7")).exists());
    assert_eq!(
        fs::read_to_string(dir.join(".nono-restore.mine")).unwrap(),
        "mine"
    );
    fs::remove_file(dir.join(".nono-restore.mine")).unwrap();
    assert_eq!(snapshot(&dir), before);
    let info = fs::read_to_string(record.join("info.json")).unwrap();
    assert!(info.contains("\"complete\":true"), "{info}");
}
