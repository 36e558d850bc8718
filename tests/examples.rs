//! Every example in README.md, nono(1) and nono-profile(5) runs as
//! written: each `$ nono ...` line is run by bash on a real terminal, in
//! order, with stand-ins for the programs the examples name (make, claude,
//! my-agent, ./migrate.sh) and the files they use. An example followed by
//! a `nono: ...` line must fail with that message; every other one must
//! exit 0. Attached ones are detached with the default keys.

mod common;

use common::{wait_until, Env, Pty, WAIT};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One example line: a command and what the documentation shows after it.
#[derive(Debug)]
struct Example {
    /// Where it was found, for messages.
    origin: String,
    /// The command line, comment removed.
    command: String,
    /// The documented error it must fail with (a `nono: ...` line after it).
    fails_with: Option<String>,
}

/// The command part of `$ CMD   # comment`.
fn strip_comment(line: &str) -> String {
    let cut = line.find("  #").or_else(|| line.find(" # "));
    cut.map_or(line, |i| &line[..i]).trim().to_string()
}

/// Group `(origin, text)` lines into blocks of examples: `$ ` lines are
/// commands, a following `nono: ` line is the error they show.
fn examples_of(lines: &[(String, String)]) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    for (origin, l) in lines {
        if let Some(cmd) = l.strip_prefix("$ ") {
            if !cmd.contains("<Tab>") {
                out.push(Example {
                    origin: origin.clone(),
                    command: strip_comment(cmd),
                    fails_with: None,
                });
            }
        } else if let (Some(msg), Some(last)) = (l.strip_prefix("nono: "), out.last_mut()) {
            last.fails_with = Some(msg.to_string());
        }
    }
    out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README's ```console blocks.
fn readme() -> Vec<Vec<Example>> {
    let text = fs::read_to_string(root().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut cur: Option<Vec<(String, String)>> = None;
    for (i, l) in text.lines().enumerate() {
        match (&mut cur, l.trim_end()) {
            (None, "```console") => cur = Some(Vec::new()),
            (Some(_), "```") => blocks.push(examples_of(&cur.take().unwrap())),
            (Some(b), _) => b.push((format!("README.md:{}", i + 1), l.to_string())),
            _ => {}
        }
    }
    blocks
}

/// Roff text as the reader sees it.
fn unroff(l: &str) -> String {
    l.replace("\\-", "-")
        .replace("\\(aq", "'")
        .replace("\\(ti", "~")
        .replace("\\e", "\\")
        .replace("\\&", "")
}

/// The example blocks (`.EX`/`.EE` or `.nf`/`.fi`) of a page's EXAMPLES
/// section; in `.nf` blocks a line starting with `nono ` is a command.
fn man(page: &str) -> Vec<Vec<Example>> {
    let text = fs::read_to_string(root().join("man").join(page)).unwrap();
    let mut blocks = Vec::new();
    let mut in_examples = false;
    let mut cur: Option<Vec<(String, String)>> = None;
    for (i, l) in text.lines().enumerate() {
        if l.starts_with(".SH") {
            in_examples = l.trim() == ".SH EXAMPLES";
            continue;
        }
        if !in_examples {
            continue;
        }
        match (&mut cur, l) {
            (None, ".EX" | ".nf") => cur = Some(Vec::new()),
            (Some(_), ".EE" | ".fi") => blocks.push(examples_of(&cur.take().unwrap())),
            (Some(b), _) => {
                let t = unroff(l);
                let t = if t.starts_with("nono ") {
                    format!("$ {t}")
                } else {
                    t
                };
                b.push((format!("{page}:{}", i + 1), t));
            }
            _ => {}
        }
    }
    blocks
}

/// A directory of stand-in programs under /opt (which the default profile
/// grants read access to, as it would a real install), removed on drop.
struct StandIns(PathBuf);

impl Drop for StandIns {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn script(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The world the examples assume: programs on PATH, a project, a dump.
fn world(env: &Env) -> Option<StandIns> {
    let bin = PathBuf::from(format!("/opt/nono-examples-{}", std::process::id()));
    if fs::create_dir_all(&bin).is_err() {
        return None;
    }
    // A long build, an agent that reads a note outside its grant and edits
    // the project, and one that prints a few lines and ends.
    script(
        &bin.join("make"),
        "#!/bin/sh\necho building\nexec sleep 300\n",
    );
    script(
        &bin.join("claude"),
        "#!/bin/sh\ncat \"$HOME/notes/design.md\" >/dev/null 2>&1\n[ -d src ] && echo '// edited' >> src/main.rs\necho agent ready\nexec sleep 300\n",
    );
    script(
        &bin.join("my-agent"),
        "#!/bin/sh\nfor i in 1 2 3; do echo \"step $i\"; done\n",
    );
    let h = &env.home;
    let proj = h.join("src/project");
    fs::create_dir_all(proj.join("src")).unwrap();
    fs::create_dir_all(proj.join("logs")).unwrap();
    fs::write(proj.join("src/main.rs"), "fn main() {}\n").unwrap();
    script(
        &proj.join("migrate.sh"),
        "#!/bin/sh\nwc -c < \"$HOME/dumps/prod.sql\" > logs/migrate.log\n",
    );
    fs::create_dir_all(h.join("dumps")).unwrap();
    fs::write(h.join("dumps/prod.sql"), "insert into t values (1);\n").unwrap();
    fs::create_dir_all(h.join("notes")).unwrap();
    fs::write(h.join("notes/design.md"), "# design\n").unwrap();
    fs::create_dir_all(h.join(".claude")).unwrap();
    fs::write(h.join(".claude.json"), "{}\n").unwrap();
    Some(StandIns(bin))
}

/// `text` with session ids (runs of 6 to 16 hex digits) replaced by `ID`.
fn ids_out(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        let is_id = (6..=16).contains(&run.len()) && run.chars().any(|c| c.is_ascii_digit());
        out.push_str(if is_id { "ID" } else { &run });
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// The words of a simple command line.
fn words(cmd: &str) -> Vec<&str> {
    cmd.split_whitespace().collect()
}

/// The session an attaching command attaches to, if it attaches.
fn attaches_to(w: &[&str]) -> Option<String> {
    match w {
        ["nono", "attach", .., last] => Some(last.to_string()),
        ["nono", "run", rest @ ..] => {
            let detached = rest
                .iter()
                .any(|a| ["-d", "--detached", "--dry-run"].contains(a));
            let name = rest.iter().position(|a| *a == "-n").map(|i| rest[i + 1]);
            (!detached).then(|| name.unwrap_or_default().to_string())
        }
        _ => None,
    }
}

/// Whether a session named `name` (any, for "") is live and has a client.
fn attached(env: &Env, name: &str) -> bool {
    env.records()
        .iter()
        .any(|r| (name.is_empty() || r.name == name) && r.attached && r.status != "exited")
}

struct Runner<'a> {
    env: &'a Env,
    path: String,
    cwd: PathBuf,
}

impl Runner<'_> {
    /// `bash -c CMD` on a terminal, from the current directory.
    fn spawn(&self, cmd: &str) -> Pty {
        let mut c = self.env.tool("/bin/bash", &["-c", cmd]);
        c.current_dir(&self.cwd).env("PATH", &self.path);
        Pty::spawn(c, 24, 200)
    }

    /// Run one example to its end, answering what a user would: the
    /// detach keys once attached, "y" to a confirmation.
    fn run(&self, ex: &Example) -> (i32, String) {
        let w = words(&ex.command);
        // One that must fail never attaches (another client may be).
        let target = attaches_to(&w).filter(|_| ex.fails_with.is_none());
        let mut pty = self.spawn(&ex.command);
        let deadline = Instant::now() + WAIT;
        let mut detached = false;
        let mut answered = 0;
        loop {
            pty.pump(20);
            if let Ok(Some(_)) = pty.child.try_wait() {
                let code = pty.wait();
                return (code, pty.text());
            }
            assert!(
                Instant::now() < deadline,
                "{}: '{}' did not finish: {:?}",
                ex.origin,
                ex.command,
                pty.text()
            );
            if let Some(name) = target.as_deref().filter(|_| !detached) {
                if attached(self.env, name) {
                    pty.send(b"\x1dd");
                    detached = true;
                }
            }
            if pty.count("[y/N] ") > answered {
                answered += 1;
                pty.send(b"y\r");
            }
        }
    }
}

#[test]
fn every_documented_example_runs_as_written() {
    if nono::sys::geteuid() != 0 {
        eprintln!("skipped: the stand-in programs go under /opt, which needs root");
        return;
    }
    let env = Env::new();
    let Some(_standins) = world(&env) else {
        eprintln!("skipped: cannot write the stand-in programs under /opt");
        return;
    };
    // The stand-ins, then nono itself (env.tool links it there), then the system.
    let mut path = format!("{}:{}/bin:", _standins.0.display(), env.home.display());
    path.push_str(&std::env::var("PATH").unwrap_or_default());
    let mut runner = Runner {
        env: &env,
        path,
        cwd: PathBuf::new(),
    };
    let mut blocks = readme();
    blocks.extend(man("nono.1"));
    blocks.extend(man("nono-profile.5"));
    let total: usize = blocks.iter().map(Vec::len).sum();
    assert!(total >= 40, "only {total} examples found");
    // The examples are typed in a project directory (never in $HOME here:
    // it holds the state directory, which no sandbox may be granted).
    let project = env.home.join("src/project");
    for block in &blocks {
        runner.cwd = project.clone();
        // Each block is its own workflow: a name it starts is free again.
        for ex in block {
            let w = words(&ex.command);
            if let Some(i) = w
                .iter()
                .position(|a| *a == "-n")
                .filter(|_| w.get(1) == Some(&"run"))
            {
                let name = w[i + 1];
                if env
                    .records()
                    .iter()
                    .any(|r| r.name == name && r.status != "exited")
                {
                    let _ = env.run(&["stop", "-f", name]);
                }
            }
        }
        let mut holders = Vec::new();
        for ex in block {
            let w = words(&ex.command);
            if w.first() == Some(&"cd") {
                let to = w[1].replacen('~', &env.home.display().to_string(), 1);
                runner.cwd = PathBuf::from(to);
                continue;
            }
            // The situation the documented error describes (the other
            // client stays attached for the lines that follow).
            if ex
                .fails_with
                .as_deref()
                .is_some_and(|m| m.contains("already has a client attached"))
            {
                let name = w.last().unwrap().to_string();
                let p = runner.spawn(&format!("nono attach {name}"));
                wait_until("the other client", WAIT, || attached(&env, &name));
                holders.push(p);
            }
            // Approving needs a request waiting.
            if w.get(1) == Some(&"approve") {
                wait_until("a request to approve", WAIT, || {
                    env.run(&["pending", w[2]]).stdout.lines().count() >= 2
                });
            }
            let (code, text) = runner.run(ex);
            match &ex.fails_with {
                Some(msg) => {
                    let want = format!("nono: {}", ids_out(msg));
                    assert!(
                        code == 1 && ids_out(&text).contains(&want),
                        "{}: '{}' should fail with '{want}', got {code}: {text:?}",
                        ex.origin,
                        ex.command
                    );
                }
                None => assert_eq!(code, 0, "{}: '{}' failed: {text:?}", ex.origin, ex.command),
            }
        }
    }
    // The migration of the README wrote its log through its grant.
    let log = env.home.join("src/project/logs/migrate.log");
    assert!(log.exists(), "the migration example did not run");
}

#[test]
fn the_ps_quiet_example_renders_with_a_tab_in_the_manual() {
    let Ok(o) = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-P-c"])
        .arg(root().join("man/nono.1"))
        .output()
    else {
        eprintln!("skipped: groff is not installed ('make check-man' installs it)");
        return;
    };
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("3fa2c9") && l.contains("build"))
        .expect("the ps --quiet example");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words, ["3fa2c9", "build"], "{line:?}");
}
