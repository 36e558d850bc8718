//! `nono approve` and `nono deny`: answer a session's approval request
//! from any terminal of the user (the session's own programs are refused
//! by the supervisor's peer check, like every other request).

use crate::client;
use crate::error::{Error, Result};
use crate::out::print;
use crate::protocol::Request;
use crate::registry::Registry;
use lexopt::prelude::*;

/// `nono approve --help`.
pub const APPROVE_USAGE: &str = "\
Usage: nono approve SESSION [REQ] [--always]

Grant a request waiting in SESSION (started with --ask): the supervisor
opens the path it showed, as the program asked (its flags, and its mode
and umask when creating), and hands the program that file. REQ is the id
'nono pending' shows; it may be left out when only one request waits.

Options:
      --always  also grant this path, for this access, for the rest of the
                session without asking
  -h, --help    show this help

Exit status: 0 when the request was answered; 1 when no such request
waits or the session is not reachable; 2 on usage errors.
";

/// `nono deny --help`.
pub const DENY_USAGE: &str = "\
Usage: nono deny SESSION [REQ] [--always]

Refuse a request waiting in SESSION (started with --ask): the program's
open fails with EACCES (Permission denied), as it would without --ask.
REQ is the id 'nono pending' shows; it may be left out when only one
request waits.

Options:
      --always  also refuse this path for the rest of the session without
                asking
  -h, --help    show this help

Exit status: 0 when the request was answered; 1 when no such request
waits or the session is not reachable; 2 on usage errors.
";

/// Parse and run `nono approve`.
pub fn approve(p: &mut lexopt::Parser) -> Result<i32> {
    answer(p, true)
}

/// Parse and run `nono deny`.
pub fn deny(p: &mut lexopt::Parser) -> Result<i32> {
    answer(p, false)
}

/// `approve` (allow) or `deny`.
fn answer(p: &mut lexopt::Parser, allow: bool) -> Result<i32> {
    let usage = if allow { APPROVE_USAGE } else { DENY_USAGE };
    let mut session = None;
    let mut req = None;
    let mut always = false;
    while let Some(arg) = p.next()? {
        match arg {
            Long("always") => always = true,
            Short('h') | Long("help") => {
                print(usage)?;
                return Ok(0);
            }
            Value(v) if session.is_none() => session = Some(v.string()?),
            Value(v) if req.is_none() => {
                let v = v.string()?;
                let id: u32 = v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    Error::Usage(format!(
                        "invalid REQ '{v}': give a request id as 'nono pending' shows it"
                    ))
                })?;
                req = Some(id);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let query =
        session.ok_or_else(|| Error::Usage("missing SESSION (an id prefix or a name)".into()))?;
    let reg = Registry::open()?;
    let (s, short) = super::find_asking(&reg, &query)?;
    let decide = Request::Decide {
        id: req.unwrap_or(0),
        allow,
        always,
    };
    let msg = client::ask(&reg, &s, &short, decide)?;
    print(&format!("{msg}\n"))?;
    Ok(0)
}
