//! `nono attach`: connect this terminal to a running session.

use super::parse_session_command;
use crate::client;
use crate::config;
use crate::error::{Error, Result};
use crate::protocol::{FrameReader, Request};
use crate::registry::Registry;

/// `nono attach --help`.
pub const USAGE: &str = "\
Usage: nono attach SESSION

Attach this terminal to a running session: the screen is redrawn as the
program shows it, your window size is applied, and keystrokes go to the
program. Press the detach keys (default Ctrl-] d) or run
'nono detach SESSION' to detach; the session keeps running. Only one
client may be attached at a time.

Options:
  -h, --help    show this help

Exit status: 0 after detaching; the program's status if it ends while
attached; 1 if the session is not running or already has a client.
";

/// Parse and run `nono attach`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let Some(query) = parse_session_command(p, USAGE, |_, _| Ok(false))? else {
        return Ok(0);
    };
    let config = config::load()?;
    let reg = Registry::open()?;
    let (s, short) = super::find(&reg, &query)?;
    if !s.state.is_live() {
        return Err(Error::Msg(format!(
            "session {short} has {}; 'nono inspect {short}' shows how it ended",
            ended_phrase(&s)
        )));
    }
    let mut stream = client::connect(&reg, &s, &short)?;
    client::send_hello(&mut stream, Request::Attach(client::window_size()))?;
    let mut reader = FrameReader::new();
    client::expect_ok(&mut stream, &mut reader, &short)?;
    client::run_attached(stream, reader, &short, &config)
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
