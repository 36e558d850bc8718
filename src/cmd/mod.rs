//! One file per subcommand: its usage text, its flags and its execution.

pub mod attach;
pub mod detach;
pub mod inspect;
pub mod logs;
pub mod prune;
pub mod ps;
pub mod run;
pub mod stop;

use crate::error::Result;
use crate::registry::{Registry, Session};

/// Resolve a session and the id to show humans for it.
pub fn find(reg: &Registry, query: &str) -> Result<(Session, String)> {
    let s = reg.resolve(query)?;
    let short = reg.short_id(&s.record.id);
    Ok((s, short))
}
