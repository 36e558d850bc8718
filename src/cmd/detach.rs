//! `nono detach`: drop a session's current attachment from anywhere.

use super::parse_session_command;
use crate::client;
use crate::error::Result;
use crate::out::print;
use crate::protocol::Request;
use crate::registry::Registry;

/// `nono detach --help`.
pub const USAGE: &str = "\
Usage: nono detach SESSION

Detach whichever client is attached to SESSION. That client prints
'[detached from session ID]', restores its terminal and exits 0; the
session keeps running.

Options:
  -h, --help    show this help

Exit status: 0 when a client was detached; 1 when none was attached or
the session is not running.
";

/// Parse and run `nono detach`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let Some(query) = parse_session_command(p, USAGE, |_, _| Ok(false))? else {
        return Ok(0);
    };
    let reg = Registry::open()?;
    let (s, short) = super::find_live(&reg, &query)?;
    client::request(&reg, &s, &short, Request::Detach)?;
    print(&format!("Detached session {short}.\n"))?;
    Ok(0)
}
