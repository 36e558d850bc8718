//! `nono inspect`: everything about one session, or its event log.

use super::parse_session_command;
use crate::defaults::MAX_FILE_BYTES;
use crate::error::{Error, Result};
use crate::escape;
use crate::out::{fmt_age, fmt_time, print, warn};
use crate::registry::{self, Registry};
use nanoserde::SerJson;

/// `nono inspect --help`.
pub const USAGE: &str = "\
Usage: nono inspect SESSION [--json] [--events]

Show a session's id, name, status, attachment, program and supervisor
pids, start and end times, exit code or signal, command, profile, working
directory, network mode and rollback session.

Options:
      --json      print the full record as JSON (see nono(1) for fields)
      --events    print the session's event log instead (with --json: the
                  raw JSON lines)
  -h, --help      show this help
";

/// The rollback session and its capture sizes.
fn rollback_line(id: Option<&str>) -> String {
    let Some(id) = id else {
        return "-".into();
    };
    let meta = crate::rollback::session_dir(id).and_then(|d| crate::rollback::read_meta(&d));
    let Ok(m) = meta else {
        return format!("{id} (captures removed)");
    };
    let size = |c: &crate::rollback::CaptureInfo| {
        format!(
            "{} files, {}, {} stored",
            c.files,
            crate::rollback::human_bytes(c.bytes),
            crate::rollback::human_bytes(c.bytes_stored)
        )
    };
    let fin = m
        .final_capture
        .as_ref()
        .map_or("not captured".into(), &size);
    format!(
        "{id}\n{:16}baseline: {}\n{:16}final: {fin}",
        "",
        size(&m.baseline),
        ""
    )
}

/// Parse and run `nono inspect`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let mut json = false;
    let mut events = false;
    let Some(query) = parse_session_command(p, USAGE, |a, _| {
        if a.is(None, "json") {
            json = true;
        } else if a.is(None, "events") {
            events = true;
        } else {
            return Ok(false);
        }
        Ok(true)
    })?
    else {
        return Ok(0);
    };
    let reg = Registry::open()?;
    let (s, short) = super::find(&reg, &query)?;
    if events {
        let path = reg.events_path(&s.record.id);
        let (text, skipped) = read_tail(&path, MAX_FILE_BYTES)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let mut out = String::new();
        if skipped > 0 && !json {
            out.push_str(&format!(
                "(the first {skipped} bytes of the event log are left out; the last {} follow)\n",
                MAX_FILE_BYTES
            ));
        }
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            if json {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            match registry::parse_event(line) {
                Ok(e) => out.push_str(&format!(
                    "{}  {:<9} {}\n",
                    fmt_time(e.time),
                    escape::text(&e.event),
                    escape::text(&e.detail)
                )),
                Err(_) => warn(&format!(
                    "{}: line {} is not an event",
                    path.display(),
                    n + 1
                )),
            }
        }
        print(&out)?;
        return Ok(0);
    }
    let r = s.effective_record();
    if json {
        print(&format!("{}\n", r.serialize_json()))?;
        return Ok(0);
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let live = s.state.is_live();
    let status = match s.state {
        registry::State::Unknown => {
            "exited (status unknown: the supervisor died without recording an end)".into()
        }
        st => st.describe(),
    };
    let now = registry::now();
    let fields = [
        ("Session", format!("{short} ({})", r.id)),
        ("Name", escape::text(&r.name).into_owned()),
        ("Status", status),
        ("Attached", if r.attached { "yes" } else { "no" }.into()),
        ("Command", escape::command(&r.command)),
        ("Workdir", escape::text(&r.workdir).into_owned()),
        (
            "Profile",
            match (&r.profile, &r.sandbox) {
                (Some(p), Some(_)) => p.clone(),
                _ => "none: UNSANDBOXED (--no-sandbox), the program has all of your access".into(),
            },
        ),
        ("Network", r.network.clone()),
        (
            "Approvals",
            if r.ask {
                let wakeup = match r.ask_wakeup.as_deref() {
                    Some("sync") => ", synchronous wakeups",
                    Some("plain") => ", plain wakeups (Linux 6.6 makes opens cheaper)",
                    _ => "",
                };
                format!(
                    "opens outside the grant ask (--ask{wakeup}); {} waiting",
                    r.waiting
                )
            } else {
                "off: opens outside the grant fail (--ask makes them ask)".into()
            },
        ),
        ("Peer guard", peer_guard(&r.peer_guard)),
        (
            "Containment",
            match r.containment.as_deref() {
                Some("namespaces") => {
                    "namespaces: own user, PID and mount namespaces; nothing outlives the session"
                        .into()
                }
                Some("descendants") => {
                    "descendants: no namespaces; the supervisor ends every descendant at the end"
                        .into()
                }
                Some(other) => other.to_string(),
                None => "-".into(),
            },
        ),
        (
            "Sandbox",
            match &r.sandbox {
                Some(sb) => format!(
                    "Landlock ABI {}: {}",
                    sb.landlock_abi,
                    sb.enforced.join(", ")
                ),
                None => "none".into(),
            },
        ),
        (
            "Temp dir",
            opt(r.sandbox.as_ref().and_then(|sb| sb.tmpdir.clone())),
        ),
        (
            "Grants",
            match &r.sandbox {
                Some(sb) => sb
                    .paths
                    .iter()
                    .map(|g| format!("{:<10}  {}", g.access, escape::text(&g.path)))
                    .collect::<Vec<_>>()
                    .join(&format!("\n{:16}", "")),
                None => "everything you can access".into(),
            },
        ),
        (
            "Program PID",
            opt(r.child_pid.filter(|_| live).map(|p| p.to_string())),
        ),
        (
            "Supervisor PID",
            if live {
                r.supervisor_pid.to_string()
            } else {
                "-".into()
            },
        ),
        (
            "Started",
            format!(
                "{} ({} ago)",
                fmt_time(r.started_at),
                fmt_age(now.saturating_sub(r.started_at))
            ),
        ),
        ("Ended", opt(r.ended_at.map(fmt_time))),
        ("Exit code", opt(r.exit_code.map(|c| c.to_string()))),
        (
            "Exit signal",
            opt(r
                .exit_signal
                .map(|sig| format!("{sig} (SIG{})", registry::signal_name(sig)))),
        ),
        ("Rollback", rollback_line(r.rollback_session.as_deref())),
    ];
    let mut out = String::new();
    for (k, v) in fields {
        out.push_str(&format!("{:<15} {v}\n", format!("{k}:")));
    }
    print(&out)?;
    Ok(0)
}

/// What keeps the session's program from other sessions, for humans.
fn peer_guard(guard: &str) -> String {
    match guard {
        "kernel" => "kernel: Landlock keeps the program from every session's socket (scope-abstract-unix); supervisors also refuse it".into(),
        "supervisor" => "supervisors only: they refuse any process inside a session (no abstract-socket scoping: unsandboxed or Landlock ABI < 6)".into(),
        "" => "unknown (started by an older nono)".into(),
        other => escape::text(other).into_owned(),
    }
}

/// The last `limit` bytes of one of our files, from a line start, and how
/// many bytes before them were left out.
fn read_tail(path: &std::path::Path, limit: u64) -> std::io::Result<(String, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = registry::open_own_file(path)?;
    let len = f.metadata()?.len();
    let mut skip = len.saturating_sub(limit);
    f.seek(SeekFrom::Start(skip))?;
    let mut bytes = Vec::new();
    f.take(limit).read_to_end(&mut bytes)?;
    if skip > 0 {
        // Start at the first whole line.
        let cut = bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        bytes.drain(..cut);
        skip += cut as u64;
    }
    Ok((String::from_utf8_lossy(&bytes).into_owned(), skip))
}
