//! `nono prune`: remove the files of exited sessions; never a live one.

use crate::error::{Error, Result};
use crate::out::{print, warn};
use crate::registry::{self, Registry, Session};
use lexopt::prelude::*;

/// `nono prune --help`.
pub const USAGE: &str = "\
Usage: nono prune [--dry-run] [--older-than DAYS] [--keep N]

Remove the record, event log, saved history and any leftover socket of
exited sessions. Rollback captures are kept (it says how much); 'nono
rollback prune' removes them. A session whose supervisor is alive
(running or paused) is never touched.

Options:
  -n, --dry-run          print what would be removed; remove nothing
      --older-than DAYS  only sessions that ended at least DAYS ago (a
                         decimal number, such as 7 or 0.5)
      --keep N           keep the N most recently ended sessions
  -h, --help             show this help

Exit status: 0 when everything chosen was removed (or there was nothing
to remove); 1 when some session's files could not be removed (each is
named in a warning).
";

/// Parse and run `nono prune`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let mut dry = false;
    let mut older_days: Option<f64> = None;
    let mut keep = 0usize;
    while let Some(arg) = p.next()? {
        match arg {
            Short('n') | Long("dry-run") => dry = true,
            Long("older-than") => {
                older_days = Some(super::bounded(
                    p,
                    "--older-than",
                    f64::MAX,
                    "a number of days",
                )?)
            }
            Long("keep") => keep = super::value(p, "--keep", "a whole number")?,
            Short('h') | Long("help") => {
                print(USAGE)?;
                return Ok(0);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let reg = Registry::open()?;
    // Unreadable records are warned about and left alone: nono removes only what it can read.
    let (sessions, shorts) = super::listing(&reg)?;
    let mut ended: Vec<(u64, &Session, &String)> = sessions
        .iter()
        .zip(shorts.iter())
        .filter(|(s, _)| !s.state.is_live())
        .map(|(s, short)| (end_time(&reg, s), s, short))
        .collect();
    // Most recently ended first, so --keep skips the head.
    ended.sort_by_key(|e| std::cmp::Reverse(e.0));
    let now = registry::now();
    let mut out = String::new();
    let mut failed = 0;
    for (end, s, short) in ended.into_iter().skip(keep) {
        if let Some(days) = older_days {
            if (now.saturating_sub(end) as f64) < days * 86_400.0 {
                continue;
            }
        }
        // Re-check liveness right before removing: never race a live session.
        if !dry && Session::from_record(s.record.clone()).state.is_live() {
            continue;
        }
        let verb = if dry { "Would remove" } else { "Removed" };
        if !dry {
            if let Err(e) = reg.remove_files(&s.record.id) {
                warn(&format!("session {short} was not removed: {e}"));
                failed += 1;
                continue;
            }
            // Left behind only when the supervisor died without finishing.
            if let Some(t) = s.record.sandbox.as_ref().and_then(|b| b.tmpdir.as_ref()) {
                crate::sandbox::remove_tmpdir(t);
            }
        }
        out.push_str(&format!(
            "{verb} session {short} ({}, {}).\n",
            s.record.name,
            s.state.describe()
        ));
    }
    if out.is_empty() && failed == 0 {
        out.push_str("Nothing to prune.\n");
    }
    // Rollback captures outlive records: they are removed only on request.
    let (kept, bytes) = crate::cmd::rollback::kept();
    if kept > 0 {
        out.push_str(&format!(
            "Kept the rollback captures of {kept} sessions ({}); 'nono rollback prune' removes them.\n",
            crate::rollback::human_bytes(bytes)
        ));
    }
    print(&out)?;
    if failed > 0 {
        return Err(Error::Msg(format!(
            "{failed} session(s) could not be removed (see above); check the permissions of {}",
            reg.dir().display()
        )));
    }
    Ok(0)
}

/// When a session ended: its recorded end, or for one whose supervisor died
/// unrecorded, the last time its record was written.
fn end_time(reg: &Registry, s: &Session) -> u64 {
    s.record.ended_at.unwrap_or_else(|| {
        std::fs::metadata(reg.record_path(&s.record.id))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(s.record.started_at, |d| d.as_secs())
    })
}
