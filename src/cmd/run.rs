//! `nono run`: start a program in a new session. An attached start is a
//! detached start plus an attach over a socket pair made before the fork, so
//! not a byte of early output is missed and the exit status always arrives.

use crate::client;
use crate::config;
use crate::defaults::START_TIMEOUT_MS;
use crate::error::{Error, Result};
use crate::out::{print, warn};
use crate::program;
use crate::protocol::{self, FrameReader};
use crate::registry::{self, Registry};
use crate::sandbox::{self, Policy};
use crate::supervisor::{self, Ready, StartSpec};
use crate::sys::{self, Fork, PollFd, POLLIN};
use lexopt::prelude::*;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// `nono run --help`.
pub const USAGE: &str = "\
Usage: nono run [OPTIONS] [--] COMMAND [ARG...]

Start COMMAND in a new session whose supervisor owns its terminal. The
program runs sandboxed (Landlock, and seccomp when the network is blocked)
with only what its profile and the flags below grant. Attached (the
default): this terminal shows the session until the program ends (nono
exits with its status, 128+N for signal N) or you detach (the detach keys,
default Ctrl-] d). Detached: print the session id and return at once.

Options:
  -d, --detached        start in the background
  -n, --name NAME       name the session (default: a random adjective-noun)
      --profile PROFILE sandbox profile: a name or a path (default: default)
      --allow-cwd       grant the working directory read-write
  -a, --allow PATH      grant PATH read-write (repeatable)
  -r, --read PATH       grant PATH read-only (repeatable)
  -w, --write PATH      grant PATH write-only (repeatable)
      --net MODE        network: allowed or blocked (default: the profile's)
      --block-net       same as --net blocked
      --rollback        capture the writable directories first, so what the
                        program changes can be reviewed and undone (see
                        'nono rollback --help')
      --rollback-exclude GLOB
                        leave paths matching GLOB (gitignore syntax) out of
                        the capture (repeatable)
      --ask             opens outside the grant wait for your approval instead
                        of failing ('nono approve', or keys while attached)
      --ask-timeout SECS  deny a request nobody answered within SECS
      --env NAME        pass NAME to the program although it leads to an
                        agent or display (SSH_AUTH_SOCK...; repeatable)
      --require-namespaces  refuse to start without namespace containment
      --no-sandbox      run unconfined, with all of your access (recorded)
      --dry-run         print the program and the resolved sandbox and exit;
                        start nothing (126 or 127 when it would not start)
  -h, --help            show this help

PATH may be a file or a directory; ~ expands; relative paths start from the
current directory; a PATH that does not exist is an error. COMMAND is found
as your shell finds it (PATH in order); if the sandbox does not grant that
file, nothing starts and the error names the -r to add.

Exit status: the program's status when attached; 0 when started detached;
127 if COMMAND was not found, 126 if it could not be executed, 1 on other
errors, 2 on usage errors.
";

/// Parse and run `nono run`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let mut detached = false;
    let mut name = None;
    let mut command = Vec::new();
    let mut req = sandbox::Request::default();
    let mut no_sandbox = false;
    let mut sandbox_flag: Option<&str> = None;
    let mut dry_run = false;
    let mut rollback = false;
    let mut excludes: Vec<String> = Vec::new();
    let mut ask_timeout = None;
    while let Some(arg) = p.next()? {
        match arg {
            Short('d') | Long("detached") => detached = true,
            Short('n') | Long("name") => name = Some(p.value()?.string()?),
            Long("profile") => {
                req.profile = Some(p.value()?.string()?);
                sandbox_flag = Some("--profile");
            }
            Long("allow-cwd") => {
                req.allow_cwd = true;
                sandbox_flag = Some("--allow-cwd");
            }
            Short('a') | Long("allow") => {
                req.allow.push(p.value()?.string()?);
                sandbox_flag = Some("--allow");
            }
            Short('r') | Long("read") => {
                req.read.push(p.value()?.string()?);
                sandbox_flag = Some("--read");
            }
            Short('w') | Long("write") => {
                req.write.push(p.value()?.string()?);
                sandbox_flag = Some("--write");
            }
            Long("net") => {
                let v = p.value()?.string()?;
                req.net_blocked = Some(match v.as_str() {
                    "allowed" => false,
                    "blocked" => true,
                    _ => {
                        return Err(Error::Usage(format!(
                            "--net takes 'allowed' or 'blocked', not '{v}'"
                        )))
                    }
                });
                sandbox_flag = Some("--net");
            }
            Long("env") => {
                req.env.push(p.value()?.string()?);
                sandbox_flag = Some("--env");
            }
            Long("require-namespaces") => {
                req.require_namespaces = true;
                sandbox_flag = Some("--require-namespaces");
            }
            Long("block-net") => {
                req.net_blocked = Some(true);
                sandbox_flag = Some("--block-net");
            }
            Long("rollback") => rollback = true,
            Long("rollback-exclude") => {
                excludes.push(p.value()?.string()?);
                rollback = true;
            }
            Long("ask") => {
                req.ask = Some(true);
                sandbox_flag = Some("--ask");
            }
            Long("ask-timeout") => {
                let secs = super::bounded(p, "--ask-timeout", 86_400.0, "seconds from 0 to 86400")?;
                ask_timeout = Some(std::time::Duration::from_secs_f64(secs));
                sandbox_flag = Some("--ask-timeout");
            }
            Long("no-sandbox") => no_sandbox = true,
            Long("dry-run") => dry_run = true,
            Short('h') | Long("help") => {
                print(USAGE)?;
                return Ok(0);
            }
            Value(v) => {
                command.push(v.string()?);
                for a in p.raw_args()? {
                    command.push(
                        a.into_string().map_err(|a| {
                            Error::Usage(format!("argument {a:?} is not valid UTF-8"))
                        })?,
                    );
                }
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    if command.is_empty() {
        return Err(Error::Usage(
            "run needs a command, as in 'nono run -- bash'".into(),
        ));
    }
    if let (true, Some(flag)) = (no_sandbox, sandbox_flag) {
        return Err(Error::Usage(format!(
            "--no-sandbox cannot be combined with {flag}: there is no sandbox to configure"
        )));
    }
    let workdir = std::env::current_dir()
        .map_err(|e| Error::io("cannot determine the current directory", e))?;
    let policy = if no_sandbox {
        None
    } else {
        Some(sandbox::resolve(&req, Some(&workdir))?)
    };
    // A profile may turn rollback on and add exclusions; flags add to it.
    if let Some(pol) = &policy {
        rollback |= pol.rollback;
        excludes.splice(0..0, pol.rollback_exclude.iter().cloned());
    }
    let roots = match (&policy, rollback) {
        (_, false) => Vec::new(),
        (None, true) => {
            return Err(Error::Usage(
                "--rollback captures the session's writable directory grants, and --no-sandbox has none: grant the directory with --allow-cwd or -a DIR instead".into(),
            ))
        }
        (Some(pol), true) => {
            let roots = crate::rollback::roots_of(pol);
            if roots.is_empty() {
                return Err(Error::Usage(
                    "--rollback: this session has no writable directory to capture; grant one with --allow-cwd or -a DIR".into(),
                ));
            }
            roots
        }
    };
    let asks = policy.as_ref().is_some_and(|p| p.ask);
    if ask_timeout.is_some() && !asks {
        return Err(Error::Usage(
            "--ask-timeout needs --ask (or a profile with approvals.ask = true)".into(),
        ));
    }
    // One resolution for the report and the start, so they cannot disagree.
    let path_var = std::env::var_os("PATH");
    let program = program::find(&command[0], &workdir, path_var.as_deref()).and_then(|p| {
        program::check(
            &command[0],
            &p,
            &workdir,
            path_var.as_deref(),
            policy.as_ref(),
        )?;
        Ok(p)
    });
    if dry_run {
        let mut report = dry_run_report(policy.as_ref(), &command, &workdir, &program);
        for r in &roots {
            report.push_str(&format!(
                "Rollback:  {} (captured before start)\n",
                r.display()
            ));
        }
        print(&report)?;
        return Ok(program.map_or_else(|r| r.code, |_| 0));
    }
    let program = match program {
        Ok(p) => p,
        Err(r) => {
            warn(&r.message);
            return Ok(r.code);
        }
    };
    if policy.is_none() {
        warn(&format!(
            "--no-sandbox: '{}' runs unconfined, with all of your access",
            command[0]
        ));
    }
    let config = config::load()?;
    let reg = Registry::open()?;
    let (sessions, _) = reg.list()?;
    let live: Vec<&str> = sessions
        .iter()
        .filter(|s| s.state.is_live())
        .map(|s| s.record.name.as_str())
        .collect();
    // Checked here for a quick answer; the supervisor claims the name
    // under the registry's lock, which is what makes it unique.
    let name = match name {
        Some(n) => {
            registry::validate_name(&n)?;
            if let Some(why) = registry::name_conflict(&sessions, &n) {
                return Err(Error::Msg(why));
            }
            n
        }
        None => registry::new_name(&live)?,
    };
    let rollback = if roots.is_empty() {
        None
    } else {
        Some(capture_baseline(
            &name, &command, &roots, &excludes, &config,
        )?)
    };
    let rollback_id = rollback.as_ref().map(|(id, _)| id.clone());
    let sandboxed = policy.is_some();
    let spec = StartSpec {
        command,
        program,
        name,
        workdir,
        size: client::window_size(),
        scrollback: config.scrollback_lines,
        policy,
        rollback,
        ask: asks.then_some(supervisor::AskSpec {
            timeout: ask_timeout,
        }),
    };
    let (ready_r, ready_w) = sys::pipe().map_err(|e| Error::io("pipe", e))?;
    let pair = if detached {
        None
    } else {
        Some(UnixStream::pair().map_err(|e| Error::io("socketpair", e))?)
    };
    // SAFETY: nono never starts threads, so this process is single-threaded.
    match unsafe { sys::fork() }.map_err(|e| Error::io("cannot fork", e))? {
        Fork::Child => {
            drop(ready_r);
            supervisor::run(spec, ready_w, pair.map(|(_, sup_end)| sup_end))
        }
        Fork::Parent(_) => {
            drop(ready_w);
            let mut ours = pair.map(|(ours, _)| ours);
            // The supervisor reads the hello before it opens the pty; it
            // may use the terminal from then on, so raw mode comes first.
            let term = match ours.as_mut() {
                Some(s) => {
                    let t = client::UserTerminal::prepare(&config)?;
                    client::send_hello_with(s, t.attach_request(spec.size), t.handoff_fd())?;
                    Some(t)
                }
                None => None,
            };
            let id = match wait_ready(ready_r)? {
                Ready::Started(id) => id,
                Ready::Failed(code, msg) => {
                    // The terminal back to normal before the message.
                    drop(term);
                    if let Some(id) = &rollback_id {
                        crate::rollback::discard(id);
                    }
                    warn(&msg);
                    return Ok(code);
                }
            };
            let short = reg.short_id(&id);
            match ours.zip(term) {
                None => {
                    print(&format!(
                        "Started detached session {short}.\nAttach with: nono attach {short}\n"
                    ))?;
                    Ok(0)
                }
                Some((mut stream, term)) => {
                    let mut reader = FrameReader::new();
                    let msg = client::expect_ok(&mut stream, &mut reader, &short)?;
                    let handed = msg == protocol::ATTACHED_TERMINAL;
                    client::run_attached(stream, reader, &short, &config, sandboxed, term, handed)
                }
            }
        }
    }
}

/// Capture the rollback baseline before anything starts; returns the
/// session id to use and a summary for the event log. Slow captures show
/// progress and then what they took.
fn capture_baseline(
    name: &str,
    command: &[String],
    roots: &[std::path::PathBuf],
    excludes: &[String],
    config: &config::Config,
) -> Result<(String, String)> {
    use crate::rollback::capture::{self, Limits, NewSession, Progress};
    let id = registry::new_id()?;
    let what = roots
        .iter()
        .map(|r| r.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut progress = Progress::new(sys::isatty(2), &what);
    let s = NewSession {
        id: &id,
        name,
        command,
        roots,
        excludes,
        limits: Limits {
            max_file: config.rollback_max_file_bytes,
            max_files: config.rollback_max_files,
            max_bytes: config.rollback_max_bytes,
        },
    };
    let started = Instant::now();
    let meta = capture::baseline(&s, &mut progress)?;
    let summary = meta.baseline.describe();
    if started.elapsed() >= Duration::from_millis(crate::defaults::ROLLBACK_PROGRESS_AFTER_MS) {
        warn(&format!("rollback baseline of {what}: {summary}"));
    }
    Ok((id, summary))
}

/// Read the supervisor's one-line report: it arrives only after the record
/// exists, the socket listens and exec succeeded.
fn wait_ready(fd: OwnedFd) -> Result<Ready> {
    let deadline = Instant::now() + Duration::from_millis(START_TIMEOUT_MS);
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Msg(
                "the session's supervisor did not report ready in time".into(),
            ));
        }
        let mut fds = [PollFd::new(fd.as_raw_fd(), POLLIN)];
        sys::poll(&mut fds, left.as_millis() as i32 + 1).map_err(|e| Error::io("poll", e))?;
        if fds[0].revents() == 0 {
            continue;
        }
        match sys::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) => return Err(Error::io("cannot read the supervisor's report", e)),
        }
        if text.ends_with(b"\n") {
            break;
        }
    }
    supervisor::parse_ready(&String::from_utf8_lossy(&text))
        .ok_or_else(|| Error::Msg("the session's supervisor exited before it was ready".into()))
}

/// What `--dry-run` prints: the resolved sandbox and where the program
/// would come from, without starting anything.
fn dry_run_report(
    policy: Option<&Policy>,
    command: &[String],
    cwd: &std::path::Path,
    program: &std::result::Result<std::path::PathBuf, program::Refusal>,
) -> String {
    let mut out = String::new();
    out.push_str(&format!("Command:   {}\n", command.join(" ")));
    match program {
        Ok(p) if policy.is_some() => {
            out.push_str(&format!("Program:   {} (granted)\n", p.display()))
        }
        Ok(p) => out.push_str(&format!("Program:   {}\n", p.display())),
        Err(r) => out.push_str(&format!("Program:   will not start: {}\n", r.message)),
    }
    match policy {
        Some(policy) => out.push_str(&sandbox::describe(policy, Some(cwd))),
        None => out
            .push_str("Sandbox:   none (--no-sandbox): the program runs with all of your access\n"),
    }
    out
}
