//! `nono attach`: connect this terminal to a running session.

use super::parse_session_command;
use crate::client;
use crate::config;
use crate::defaults::DETACH_SEQUENCE;
use crate::error::{Error, Result};
use crate::out::warn;
use crate::protocol::Request;
use crate::registry::Registry;
use crate::sys;

/// `nono attach --help`.
pub const USAGE: &str = "\
Usage: nono attach SESSION [-d]

Attach this terminal to a running session: the screen is redrawn as the
program shows it, your window size is applied, and keystrokes go to the
program. Press the detach keys (default Ctrl-] d) or run
'nono detach SESSION' to detach; the session keeps running. Only one
client may be attached at a time. When the program ends while you are
attached, a line such as '[session 3fa2c9 exited: code 0]' says so.

Options:
  -d, --detach-other    take over: detach the client attached elsewhere
                        first (as 'tmux attach -d' and 'screen -d -r')
  -h, --help            show this help

Standard input must be a terminal ('nono logs SESSION' prints the output
without one). If the configuration cannot be read, attach warns and uses
the default detach keys.

Exit status: 0 after detaching; the program's status if it ends while
attached; 1 if the session is not running, already has a client (without
-d), or its supervisor does not answer within 5 s.
";

/// Parse and run `nono attach`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let mut take_over = false;
    let Some(query) = parse_session_command(p, USAGE, |a, _| {
        Ok(a.is(Some('d'), "detach-other") && {
            take_over = true;
            true
        })
    })?
    else {
        return Ok(0);
    };
    // A broken config must not lock the operator out of running sessions.
    let config = config::load().unwrap_or_else(|e| {
        warn(&format!(
            "{e}; using the default detach keys ({DETACH_SEQUENCE})"
        ));
        config::Config::default()
    });
    let reg = Registry::open()?;
    let (s, short) = super::find(&reg, &query)?;
    if !s.state.is_live() {
        return Err(Error::Msg(format!(
            "session {short} has {}; 'nono inspect {short}' shows how it ended",
            ended_phrase(&s)
        )));
    }
    if !sys::isatty(0) {
        return Err(Error::Msg(format!(
            "attach needs a terminal, and standard input is not one; 'nono logs {short}' prints the session's output without attaching"
        )));
    }
    if take_over && s.record.attached {
        // "No client is attached" is fine: it may have just left.
        match client::request(&reg, &s, &short, Request::Detach) {
            Ok(_) => {}
            Err(Error::Msg(m)) if m.contains("no client is attached") => {}
            Err(e) => return Err(e),
        }
    }
    let term = client::UserTerminal::prepare(&config)?;
    let (stream, reader, handed) = client::attach(&reg, &s, &short, &term)?;
    let sandboxed = s.record.sandbox.is_some();
    client::run_attached(stream, reader, &short, &config, sandboxed, term, handed)
}

/// "exited (code 0)", "exited (killed by SIGTERM)", "exited (status unknown)".
pub fn ended_phrase(s: &crate::registry::Session) -> String {
    use crate::registry::{signal_name, State};
    match s.state {
        State::Exited(c) => format!("exited (code {c})"),
        State::Signaled(sig) => format!("exited (killed by SIG{})", signal_name(sig)),
        _ => "exited (status unknown: its supervisor is gone)".into(),
    }
}
