//! `nono logs`: a session's history as plain text, without attaching.

use super::parse_session_command;
use crate::client;
use crate::error::{Error, Result};
use crate::out::{print, print_bytes};
use crate::protocol::{Frame, Request};
use crate::registry::{self, Registry};

/// `nono logs --help`.
pub const USAGE: &str = "\
Usage: nono logs SESSION [--follow] [--lines N]

Print a session's history as plain text: its scrollback, then its screen,
with trailing blanks trimmed, without attaching or touching its keyboard.
Works while the session runs and, from the copy its supervisor saves at
exit, after it has ended (until 'nono prune').

Options:
  -f, --follow     keep printing lines as they complete, until the session
                   ends (for an ended session: print the saved copy)
  -n, --lines N    print only the last N lines first (0: all, the default)
  -h, --help       show this help
";

/// Parse and run `nono logs`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let mut follow = false;
    let mut lines: u32 = 0;
    let Some(query) = parse_session_command(p, USAGE, |a, p| {
        if a.is(Some('f'), "follow") {
            follow = true;
        } else if a.is(Some('n'), "lines") {
            lines = super::value(p, "--lines", "a whole number")?;
        } else {
            return Ok(false);
        }
        Ok(true)
    })?
    else {
        return Ok(0);
    };
    let reg = Registry::open()?;
    let (s, short) = super::find(&reg, &query)?;
    if !s.state.is_live() {
        let path = reg.log_path(&s.record.id);
        let text = registry::read_small_file_limited(&path, crate::defaults::MAX_LOG_BYTES)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::Msg(format!(
                    "session {short} has {} and left no saved history (its supervisor did not finish normally)",
                    super::attach::ended_phrase(&s)
                )),
                _ => Error::io(format!("cannot read {}", path.display()), e),
            })?;
        let all: Vec<&str> = text.lines().collect();
        let skip = if lines == 0 {
            0
        } else {
            all.len().saturating_sub(lines as usize)
        };
        let mut out = all[skip..].join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        print(&out)?;
        return Ok(0);
    }
    let (mut stream, mut reader) =
        client::request(&reg, &s, &short, Request::Logs { follow, lines })?;
    if !follow {
        // A snapshot comes at once; a supervisor that stops mid-way is named.
        let limit = std::time::Duration::from_millis(crate::defaults::REPLY_TIMEOUT_MS);
        let _ = stream.set_read_timeout(Some(limit));
    }
    loop {
        match client::read_frame(&mut stream, &mut reader)? {
            Some(Frame::Output(b)) => {
                print_bytes(&b)?;
            }
            Some(Frame::Exited(_)) | None => return Ok(0),
            Some(_) => {
                return Err(Error::Msg(format!(
                    "session {short} sent something unexpected"
                )))
            }
        }
    }
}
