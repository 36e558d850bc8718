//! `nono ps`: list sessions, fitted to the terminal width.

use crate::error::{Error, Result};
use crate::out::{fmt_age, print};
use crate::registry::{self, Record, Registry, Session};
use crate::sys;
use lexopt::prelude::*;
use nanoserde::SerJson;

/// `nono ps --help`.
pub const USAGE: &str = "\
Usage: nono ps [--all] [--quiet | --json]

List running and paused sessions, oldest first.

Columns: SESSION (shortest unique id prefix), NAME, STATUS (running,
paused, exited(CODE), killed(SIGNAL), exited(?) when the supervisor died
without recording an end), ATTACH (attached or detached), PID (the
program's), UPTIME (how long it has run, or ran), PROFILE (with
'+rollback' when started with --rollback), COMMAND. In a narrow terminal
NAME is cut first, then PID, UPTIME, ATTACH and PROFILE are left out in
that order; a cut ends in an ellipsis and no line wraps. Piped, nothing
is cut.

Options:
  -a, --all     include exited sessions
  -q, --quiet   print only each session's short id and name, separated by
                a tab, one session per line, without a header
      --json    print a JSON array of full records (see nono(1))
  -h, --help    show this help
";

/// Parse and run `nono ps`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let mut all = false;
    let mut json = false;
    let mut quiet = false;
    while let Some(arg) = p.next()? {
        match arg {
            Short('a') | Long("all") => all = true,
            Short('q') | Long("quiet") => quiet = true,
            Long("json") => json = true,
            Short('h') | Long("help") => {
                print(USAGE)?;
                return Ok(0);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    if quiet && json {
        return Err(Error::Usage("give --quiet or --json, not both".into()));
    }
    let reg = Registry::open()?;
    let (sessions, shorts) = super::listing(&reg)?;
    let shown: Vec<(&Session, &String)> = sessions
        .iter()
        .zip(shorts.iter())
        .filter(|(s, _)| all || s.state.is_live())
        .collect();
    if quiet {
        // For scripts and shell completion: nothing to parse but a tab.
        let lines: String = shown
            .iter()
            .map(|(s, short)| format!("{short}\t{}\n", crate::escape::text(&s.record.name)))
            .collect();
        print(&lines)?;
        return Ok(0);
    }
    if json {
        let records: Vec<Record> = shown.iter().map(|(s, _)| s.effective_record()).collect();
        print(&format!("{}\n", records.serialize_json()))?;
        return Ok(0);
    }
    let width = sys::isatty(1)
        .then(|| sys::get_winsize(1).map(|w| w.cols as usize))
        .flatten();
    print(&table(&shown, registry::now(), width))?;
    Ok(0)
}

/// The human table, fitted to `width` columns when given.
fn table(rows: &[(&Session, &String)], now: u64, width: Option<usize>) -> String {
    let header = [
        "SESSION", "NAME", "STATUS", "ATTACH", "PID", "UPTIME", "PROFILE", "COMMAND",
    ];
    let mut cells: Vec<[String; 8]> = vec![header.map(String::from)];
    for (s, short) in rows {
        let r = &s.record;
        let live = s.state.is_live();
        let end = if live { now } else { r.ended_at.unwrap_or(now) };
        cells.push([
            (*short).clone(),
            crate::escape::text(&r.name).into_owned(),
            match r.waiting {
                n if n > 0 && live => format!("{}, {n} waiting", s.state.describe()),
                _ => s.state.describe(),
            },
            if !live {
                "-".into()
            } else if r.attached {
                "attached".into()
            } else {
                "detached".into()
            },
            match (live, r.child_pid) {
                (true, Some(pid)) => pid.to_string(),
                _ => "-".into(),
            },
            if live || r.ended_at.is_some() {
                fmt_age(end.saturating_sub(r.started_at))
            } else {
                "-".into()
            },
            match (&r.profile, &r.sandbox, &r.rollback_session) {
                (Some(p), Some(_), Some(_)) => format!("{p}+rollback"),
                (Some(p), Some(_), None) => p.clone(),
                _ => "UNSANDBOXED".into(),
            },
            crate::escape::command(&r.command),
        ]);
    }
    fit(&cells, width)
}

/// Columns dropped, in this order, when the terminal is too narrow: PID,
/// UPTIME, ATTACH, then PROFILE (last: it shows UNSANDBOXED). SESSION,
/// NAME, STATUS and COMMAND stay.
const DROP_ORDER: [usize; 4] = [4, 5, 3, 6];
/// NAME is cut to this many characters before any column is dropped.
const NAME_CAP: usize = 20;
/// NAME is never cut below this.
const NAME_MIN: usize = 8;
/// COMMAND keeps at least this much room before columns are dropped.
const COMMAND_MIN: usize = 12;

/// `s` cut to `n` characters, the last one an ellipsis when anything was cut.
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    if n > 0 {
        out.push('\u{2026}');
    }
    out
}

/// Lay the cells out in `width` columns (None: no limit): NAME capped,
/// then low-priority columns dropped, then NAME and COMMAND cut with an
/// ellipsis, so no line ever wraps.
fn fit(cells: &[[String; 8]], width: Option<usize>) -> String {
    let mut widths = [0usize; 8];
    for row in cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut shown: Vec<usize> = (0..7).collect();
    // Width of the columns before COMMAND, with their two-space gaps.
    let fixed = |shown: &[usize], widths: &[usize; 8]| -> usize {
        shown.iter().map(|&i| widths[i] + 2).sum()
    };
    if let Some(limit) = width {
        let command = widths[7].min(COMMAND_MIN);
        if fixed(&shown, &widths) + widths[7] > limit {
            widths[1] = widths[1].min(NAME_CAP);
        }
        for col in DROP_ORDER {
            if fixed(&shown, &widths) + command <= limit {
                break;
            }
            shown.retain(|&i| i != col);
        }
        let over = (fixed(&shown, &widths) + command).saturating_sub(limit);
        widths[1] = widths[1].saturating_sub(over).max(NAME_MIN).max(4);
    }
    let mut out = String::new();
    for row in cells {
        let mut line = String::new();
        for &i in &shown {
            let w = widths[i];
            line.push_str(&format!("{:<w$}  ", cut(&row[i], w)));
        }
        match width {
            Some(limit) => {
                let room = limit.saturating_sub(line.chars().count());
                line.push_str(&cut(&row[7], room));
                // Narrower than even the kept columns: cut the line itself.
                line = cut(&line, limit);
            }
            None => line.push_str(&row[7]),
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::State;

    #[test]
    fn command_is_cut_to_the_width_never_wrapped() {
        let s = Session {
            record: Record {
                id: "a3f7c20000000000".into(),
                name: "calm-node".into(),
                attached: false,
                child_pid: Some(4821),
                started_at: 1000,
                command: vec!["claude".into(), "--a-very-long-flag".repeat(10)],
                ..Record::default()
            },
            state: State::Running,
        };
        let short = "a3f7c2".to_string();
        let text = table(&[(&s, &short)], 1120, Some(80));
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "{line}");
        }
        let row = text.lines().nth(1).unwrap();
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            &words[..7],
            [
                "a3f7c2",
                "calm-node",
                "running",
                "detached",
                "4821",
                "2m",
                "UNSANDBOXED"
            ]
        );
        assert!(words[7].starts_with("claude"));
    }
}
