//! `nono stop`: end a session through its supervisor, which escalates from
//! SIGTERM to SIGKILL; if the supervisor itself hangs, kill it.

use super::parse_session_command;
use crate::client;
use crate::defaults::{STOP_SUPERVISOR_GRACE_SECS, STOP_TIMEOUT_SECS};
use crate::error::{Error, Result};
use crate::out::{print, warn};
use crate::protocol::{ExitStatus, Frame, FrameReader, Request};
use crate::registry::{signal_name, Registry, State};
use crate::{procfs, sys};
use std::time::{Duration, Instant};

/// `nono stop --help`.
pub const USAGE: &str = "\
Usage: nono stop SESSION [--timeout SECS] [--force]

End a session: its supervisor sends SIGTERM and SIGCONT (so a paused
program can act on it) to the program's process group, or, to a program
that ignores SIGTERM (an interactive shell), SIGHUP as a terminal hang-up
would; waits up to the timeout, then kills every process of the session.
It then records how the program ended, removes the socket and exits. This
command returns once the record says exited, and reports how.

Options:
  -t, --timeout SECS   seconds between SIGTERM and SIGKILL (default 10)
  -f, --force          send SIGKILL at once
  -h, --help           show this help

Exit status: 0 when the session has ended (or had already), 1 on errors.
";

/// Parse and run `nono stop`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let mut timeout = Duration::from_secs(STOP_TIMEOUT_SECS);
    let mut force = false;
    let Some(query) = parse_session_command(p, USAGE, |a, p| {
        if a.is(Some('t'), "timeout") {
            let secs = super::bounded(p, "--timeout", 86_400.0, "seconds from 0 to 86400")?;
            timeout = Duration::from_secs_f64(secs);
        } else if a.is(Some('f'), "force") {
            force = true;
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
        print(&format!(
            "Session {short} had already {}.\n",
            super::attach::ended_phrase(&s)
        ))?;
        return Ok(0);
    }
    let mut stream = client::connect(&reg, &s, &short)?;
    // Everything below is bounded: a supervisor that hangs is killed, not waited on.
    // A rollback session captures its final state before it reports the end.
    let grace = STOP_SUPERVISOR_GRACE_SECS
        + s.record
            .rollback_session
            .as_ref()
            .map_or(0, |id| crate::rollback::final_capture_grace_secs(id));
    let deadline = Instant::now() + timeout + Duration::from_secs(grace);
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let _ = stream.set_read_timeout(Some(left()));
    let _ = stream.set_write_timeout(Some(left()));
    client::send_hello(
        &mut stream,
        Request::Stop {
            force,
            timeout_ms: timeout.as_millis().min(u32::MAX as u128) as u32,
        },
    )?;
    let mut reader = FrameReader::new();
    // How the supervisor said the program ended, and what it could not record.
    let mut heard: Option<ExitStatus> = None;
    let mut notices: Vec<String> = Vec::new();
    match client::expect_ok(&mut stream, &mut reader, &short) {
        Ok(_) => loop {
            let _ = stream.set_read_timeout(Some(left()));
            match client::read_frame(&mut stream, &mut reader) {
                Ok(Some(Frame::Notice(m))) => notices.push(m),
                Ok(Some(Frame::Exited(st))) => {
                    heard = Some(st);
                    break;
                }
                _ => break,
            }
        },
        // Denied, version mismatch and the like are real errors; silence is a hang.
        Err(_)
            if !procfs::is_same_process(
                s.record.supervisor_pid,
                s.record.supervisor_start_time,
            ) => {}
        Err(e) if Instant::now() < deadline => return Err(e),
        Err(_) => {}
    }
    // `connect` verified that this pid, with this start time, serves the
    // session's socket: the fallback never signals a pid a record merely names.
    let sup = s.record.supervisor_pid;
    let sup_start = s.record.supervisor_start_time;
    if heard.is_none() && procfs::is_same_process(sup, sup_start) {
        let _ = sys::kill(sup, libc::SIGKILL);
        let gone_by = Instant::now() + Duration::from_secs(5);
        while procfs::is_same_process(sup, sup_start) && Instant::now() < gone_by {
            std::thread::sleep(Duration::from_millis(20));
        }
        warn(&format!(
            "the supervisor of session {short} (pid {sup}) did not finish within {grace}s of the timeout; killed it (the program dies with it)"
        ));
        if let Some(id) = &s.record.rollback_session {
            if !crate::rollback::has_final_capture(id) {
                warn(&format!(
                    "session {short}'s final rollback capture was cut off: 'nono rollback show {short}' shows the tree now against the baseline, and a restore takes every difference for a conflict (applied with --force)"
                ));
            }
        }
    }
    for n in &notices {
        warn(&format!("session {short}: {}", crate::escape::text(n)));
    }
    let after = reg.resolve(&s.record.id)?;
    let state = match (after.state, heard) {
        // The supervisor told us, but could not write it down (a full disk).
        (State::Running | State::Paused | State::Unknown, Some(ExitStatus::Code(c))) => {
            State::Exited(c)
        }
        (State::Running | State::Paused | State::Unknown, Some(ExitStatus::Signal(sig))) => {
            State::Signaled(sig)
        }
        (st, _) => st,
    };
    let how = match state {
        State::Exited(c) => format!("exited with code {c}"),
        State::Signaled(libc::SIGKILL) if !force => {
            format!("killed by SIGKILL after the {}s timeout", timeout.as_secs_f64())
        }
        State::Signaled(sig) => format!("terminated by SIG{}", signal_name(sig)),
        State::Unknown => "ended; how is unknown (its supervisor was killed)".into(),
        State::Running | State::Paused => {
            return Err(Error::Msg(format!(
                "session {short} is still running after the stop request; try 'nono stop --force {short}'"
            )))
        }
    };
    if !notices.is_empty() && !matches!(after.state, State::Exited(_) | State::Signaled(_)) {
        warn(&format!(
            "session {short}'s record still says it runs: its supervisor could not write the end (see above)"
        ));
    }
    print(&format!("Stopped session {short}: {how}.\n"))?;
    Ok(0)
}
