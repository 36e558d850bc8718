//! `nono pending`: the approval requests waiting in `--ask` sessions.

use crate::client;
use crate::error::{Error, Result};
use crate::out::{fmt_age, print, warn};
use crate::protocol::{PendingRequest, Request};
use crate::registry::{self, Registry, Session};
use lexopt::prelude::*;
use nanoserde::{DeJson, SerJson};

/// `nono pending --help`.
pub const USAGE: &str = "\
Usage: nono pending [SESSION] [--json]

List the requests waiting for approval in sessions started with --ask
(every running one, or SESSION's): which process asks (pid and command
name), for which access (read, write, read-write, create), to which path
(resolved: symlinks followed, as a grant would open it), and for how
long. Answer them with 'nono approve' or 'nono deny'.

Columns: SESSION, REQ (the request's id), PID, COMMAND, ACCESS, WAITING,
PATH.

Options:
      --json    print a JSON array of requests (see nono(1))
  -h, --help    show this help

Exit status: 0 (also when nothing waits); 1 on errors.
";

/// One waiting request with its session, as `--json` prints it.
#[derive(Clone, Debug, Default, SerJson, DeJson)]
pub struct Entry {
    /// The session's full id.
    pub session: String,
    /// The session's name.
    pub name: String,
    /// The request's id within the session.
    pub id: u32,
    /// Process that asked.
    pub pid: i32,
    /// Its command name.
    pub command: String,
    /// Resolved path.
    pub path: String,
    /// `read`, `write` or `read-write`.
    pub access: String,
    /// Whether the open creates the file.
    pub create: bool,
    /// Unix time it was asked.
    pub asked_at: u64,
    /// Threads waiting on it.
    pub waiters: u32,
}

/// Ask one live session for its waiting requests.
pub fn fetch(reg: &Registry, s: &Session, short: &str) -> Result<Vec<PendingRequest>> {
    let text = client::ask(reg, s, short, Request::Pending)?;
    crate::json::check(&text)
        .and_then(|()| Vec::<PendingRequest>::deserialize_json(&text).map_err(|e| e.to_string()))
        .map_err(|e| Error::Msg(format!("session {short} sent a bad request list: {e}")))
}

/// Parse and run `nono pending`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let mut json = false;
    let mut query = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("json") => json = true,
            Short('h') | Long("help") => {
                print(USAGE)?;
                return Ok(0);
            }
            Value(v) if query.is_none() => query = Some(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let reg = Registry::open()?;
    let targets: Vec<(Session, String)> = match &query {
        Some(q) => vec![super::find_asking(&reg, q)?],
        None => {
            let (sessions, shorts) = super::listing(&reg)?;
            sessions
                .into_iter()
                .zip(shorts)
                .filter(|(s, _)| s.state.is_live() && s.record.ask)
                .collect()
        }
    };
    let mut entries = Vec::new();
    let mut shorts = Vec::new();
    let mut failed = false;
    for (s, short) in &targets {
        let list = match fetch(&reg, s, short) {
            Ok(l) => l,
            // One unreachable session does not hide the others' requests.
            Err(e) if query.is_none() => {
                warn(&e.to_string());
                failed = true;
                continue;
            }
            Err(e) => return Err(e),
        };
        for r in list {
            shorts.push(short.clone());
            entries.push(Entry {
                session: s.record.id.clone(),
                name: s.record.name.clone(),
                id: r.id,
                pid: r.pid,
                command: r.command,
                path: r.path,
                access: r.access,
                create: r.create,
                asked_at: r.asked_at,
                waiters: r.waiters,
            });
        }
    }
    if json {
        print(&format!("{}\n", entries.serialize_json()))?;
    } else if entries.is_empty() {
        print("No requests are waiting.\n")?;
    } else {
        print(&table(&entries, &shorts, registry::now()))?;
    }
    Ok(if failed { 1 } else { 0 })
}

/// The human table.
fn table(entries: &[Entry], shorts: &[String], now: u64) -> String {
    let mut rows = vec![[
        "SESSION", "REQ", "PID", "COMMAND", "ACCESS", "WAITING", "PATH",
    ]
    .map(String::from)];
    for (e, short) in entries.iter().zip(shorts) {
        rows.push([
            short.clone(),
            e.id.to_string(),
            e.pid.to_string(),
            escape(&e.command),
            if e.create {
                "create".into()
            } else {
                e.access.clone()
            },
            fmt_age(now.saturating_sub(e.asked_at)),
            escape(&e.path),
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Control characters (a hostile path may carry escape sequences) escaped.
fn escape(text: &str) -> String {
    crate::escape::text(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_and_escapes_control_characters() {
        let e = Entry {
            id: 3,
            pid: 42,
            command: "cat".into(),
            path: "/x/\x1b[2Jevil".into(),
            access: "read".into(),
            asked_at: 90,
            ..Entry::default()
        };
        let t = table(&[e], &["a3f7c2".into()], 100);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("SESSION  REQ  PID  COMMAND  ACCESS  WAITING  PATH"));
        assert_eq!(
            lines[1],
            "a3f7c2   3    42   cat      read    10s      /x/\\e[2Jevil"
        );
    }
}
