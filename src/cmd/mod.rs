//! One file per subcommand: its usage text, its flags and its execution.

pub mod approve;
pub mod attach;
pub mod completions;
pub mod detach;
pub mod help;
pub mod inspect;
pub mod logs;
pub mod pending;
pub mod profile;
pub mod prune;
pub mod ps;
pub mod rollback;
pub mod run;
pub mod stop;

use crate::error::{Error, Result};
use crate::out::{print, warn};
use crate::registry::{self, Registry, Session};
use lexopt::prelude::*;

/// Resolve a session and the id to show humans for it.
pub fn find(reg: &Registry, query: &str) -> Result<(Session, String)> {
    let s = reg.resolve(query)?;
    let short = reg.short_id(&s.record.id);
    Ok((s, short))
}

/// Resolve a session that is still running; an ended one is an error
/// that says how it ended.
pub fn find_live(reg: &Registry, query: &str) -> Result<(Session, String)> {
    let (s, short) = find(reg, query)?;
    if !s.state.is_live() {
        return Err(Error::Msg(format!(
            "session {short} has {}",
            attach::ended_phrase(&s)
        )));
    }
    Ok((s, short))
}

/// Resolve a running session started with `--ask` (for `pending`,
/// `approve` and `deny`).
pub fn find_asking(reg: &Registry, query: &str) -> Result<(Session, String)> {
    let (s, short) = find_live(reg, query)?;
    if !s.record.ask {
        return Err(Error::Msg(format!(
            "session {short} was not started with --ask, so nothing in it waits for approval"
        )));
    }
    Ok((s, short))
}

/// Every readable session with its short id (same order); each unreadable
/// record gets one warning naming its file.
pub fn listing(reg: &Registry) -> Result<(Vec<Session>, Vec<String>)> {
    let (sessions, bad) = reg.list()?;
    for b in &bad {
        warn(&b.to_string());
    }
    let ids: Vec<String> = sessions.iter().map(|s| s.record.id.clone()).collect();
    let shorts = registry::short_ids(&ids);
    Ok((sessions, shorts))
}

/// The value of `option`, parsed; a usage error says what it takes.
pub fn value<T: std::str::FromStr>(p: &mut lexopt::Parser, option: &str, takes: &str) -> Result<T> {
    let v = p.value()?.string()?;
    v.parse()
        .map_err(|_| Error::Usage(format!("invalid {option} '{v}': give {takes}")))
}

/// A number of seconds or days from 0 to `max`, for `option`.
pub fn bounded(p: &mut lexopt::Parser, option: &str, max: f64, takes: &str) -> Result<f64> {
    let text = p.value()?.string()?;
    // Plain decimal numbers only: not "nan", "inf" or "1e3".
    let plain = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    match text.parse::<f64>() {
        Ok(v) if plain && v.is_finite() && (0.0..=max).contains(&v) => Ok(v),
        _ => Err(Error::Usage(format!(
            "invalid {option} '{text}': give {takes}"
        ))),
    }
}

/// An option as a command's flag handler sees it (owned, so the handler
/// may read the option's value from the parser).
pub enum Opt {
    /// `-x`
    Short(char),
    /// `--name`
    Long(String),
}

impl Opt {
    /// Whether this is `-short` or `--long`.
    pub fn is(&self, short: Option<char>, long: &str) -> bool {
        match self {
            Opt::Short(c) => Some(*c) == short,
            Opt::Long(l) => l == long,
        }
    }
}

/// Parse a command that takes exactly one SESSION and some flags; `flag`
/// handles the command's own options and returns false for unknown ones.
/// Returns None when help was printed.
pub fn parse_session_command(
    p: &mut lexopt::Parser,
    usage: &str,
    mut flag: impl FnMut(&Opt, &mut lexopt::Parser) -> Result<bool>,
) -> Result<Option<String>> {
    let mut session = None;
    while let Some(arg) = p.next()? {
        let opt = match arg {
            Short('h') | Long("help") => {
                print(usage)?;
                return Ok(None);
            }
            Value(v) if session.is_none() => {
                session = Some(v.string()?);
                continue;
            }
            Short(c) => Opt::Short(c),
            Long(l) => Opt::Long(l.to_string()),
            Value(_) => return Err(arg.unexpected().into()),
        };
        if !flag(&opt, p)? {
            let shown = match opt {
                Opt::Short(c) => format!("-{c}"),
                Opt::Long(l) => format!("--{l}"),
            };
            return Err(Error::Usage(format!("invalid option '{shown}'")));
        }
    }
    session
        .map(Some)
        .ok_or_else(|| Error::Usage("missing SESSION (an id prefix or a name)".into()))
}
