//! One file per subcommand: its usage text, its flags and its execution.

pub mod attach;
pub mod completions;
pub mod detach;
pub mod inspect;
pub mod logs;
pub mod profile;
pub mod prune;
pub mod ps;
pub mod rollback;
pub mod run;
pub mod stop;

use crate::cli::warn;
use crate::error::{Error, Result};
use crate::registry::{self, Registry, Session};
use lexopt::ValueExt;

/// Resolve a session and the id to show humans for it.
pub fn find(reg: &Registry, query: &str) -> Result<(Session, String)> {
    let s = reg.resolve(query)?;
    let short = reg.short_id(&s.record.id);
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
    let v: f64 = value(p, option, takes)?;
    if !(v.is_finite() && (0.0..=max).contains(&v)) {
        return Err(Error::Usage(format!(
            "invalid {option} '{v}': give {takes}"
        )));
    }
    Ok(v)
}
