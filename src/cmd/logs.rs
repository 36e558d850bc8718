//! `nono logs`: a session's history as plain text, without attaching.

use super::parse_session_command;
use crate::client;
use crate::error::{Error, Result};
use crate::out::print_bytes;
use crate::protocol::{Frame, Request};
use crate::registry::{self, Registry, Session};
use crate::sys;

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
        return print_saved(&reg, &s, &short, lines);
    }
    let (mut stream, mut reader) =
        match client::request(&reg, &s, &short, Request::Logs { follow, lines }) {
            Ok(c) => c,
            // Ending as we asked: what it saved at exit is the answer.
            Err(e) => match ended_meanwhile(&reg, &s) {
                Some(ended) => return print_saved(&reg, &ended, &short, lines),
                None => return Err(e),
            },
        };
    if !follow {
        // A snapshot comes at once; a supervisor that stops mid-way is named.
        let limit = std::time::Duration::from_millis(crate::defaults::REPLY_TIMEOUT_MS);
        let _ = stream.set_read_timeout(Some(limit));
    }
    let mut out = Vec::new();
    loop {
        match client::read_frame(&mut stream, &mut reader)? {
            Some(Frame::Output(b)) => {
                // The program's text, never its control characters.
                out.clear();
                crate::escape::lines_into(&b, &mut out);
                print_bytes(&out)?;
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

/// Print the history an ended session's supervisor saved at exit.
fn print_saved(reg: &Registry, s: &Session, short: &str, lines: u32) -> Result<i32> {
    let path = reg.log_path(&s.record.id);
    let text =
        registry::read_small_file_limited(&path, crate::defaults::MAX_LOG_BYTES).map_err(|e| {
            match e.kind() {
                std::io::ErrorKind::NotFound => Error::Msg(format!(
                    "session {short} has {} and left no saved history ({})",
                    super::attach::ended_phrase(s),
                    missing_history_cause(reg, &s.record.id)
                )),
                _ => Error::io(format!("cannot read {}", path.display()), e),
            }
        })?;
    let all: Vec<&str> = text.lines().collect();
    let text = crate::supervisor::log_tail(&all, lines);
    let mut out = Vec::with_capacity(text.len());
    crate::escape::lines_into(text.as_bytes(), &mut out);
    print_bytes(&out)?;
    Ok(0)
}

/// The session's record once its supervisor has finished, if it finishes
/// within the reply timeout (it saves the history before it exits).
fn ended_meanwhile(reg: &Registry, s: &Session) -> Option<Session> {
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_millis(crate::defaults::REPLY_TIMEOUT_MS);
    loop {
        let now = reg.resolve(&s.record.id).ok()?;
        if !now.state.is_live() {
            return Some(now);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Why an ended session has no saved history: what its supervisor logged
/// about it, a full file system, or a supervisor that did not finish.
fn missing_history_cause(reg: &Registry, id: &str) -> String {
    let logged =
        registry::read_small_file_limited(&reg.events_path(id), crate::defaults::MAX_FILE_BYTES)
            .ok()
            .and_then(|t| {
                t.lines()
                    .rev()
                    .filter_map(|l| registry::parse_event(l).ok())
                    .find(|e| e.event == "error" && e.detail.starts_with("cannot save the history"))
            });
    if let Some(e) = logged {
        let why = e.detail.trim_start_matches("cannot save the history: ");
        return format!(
            "its supervisor could not save it: {}",
            crate::escape::text(why)
        );
    }
    let full = std::fs::File::open(reg.dir())
        .is_ok_and(|d| sys::fs_full(std::os::fd::AsRawFd::as_raw_fd(&d)));
    if full {
        return format!(
            "the file system holding {} is full; free space for later sessions",
            reg.dir().display()
        );
    }
    "its supervisor did not finish normally".into()
}
