//! Signals as poll readiness: each handled signal sets a flag and writes a
//! byte to a self-pipe (both async-signal-safe, via signal-hook), so the
//! poll loops learn of signals the same way they learn of input.

use crate::error::{Error, Result};
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The read end of the self-pipe and one flag per handled signal.
pub struct Signals {
    /// Readable whenever a handled signal arrived.
    rx: UnixStream,
    /// (signal, set when it arrived).
    flags: Vec<(i32, Arc<AtomicBool>)>,
}

impl Signals {
    /// Handle `sigs` from now on (replacing their default action).
    pub fn new(sigs: &[i32]) -> Result<Signals> {
        let io = |e| Error::io("cannot set up signal handling", e);
        let (rx, tx) = UnixStream::pair().map_err(io)?;
        rx.set_nonblocking(true).map_err(io)?;
        let mut flags = Vec::new();
        for &sig in sigs {
            let flag = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(sig, Arc::clone(&flag)).map_err(io)?;
            signal_hook::low_level::pipe::register(sig, tx.try_clone().map_err(io)?).map_err(io)?;
            flags.push((sig, flag));
        }
        Ok(Signals { rx, flags })
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    /// Empty the pipe and return the signals that arrived since the last call.
    pub fn take(&mut self) -> Vec<i32> {
        let mut buf = [0u8; 64];
        while matches!((&self.rx).read(&mut buf), Ok(n) if n > 0) {}
        self.flags
            .iter()
            .filter(|(_, f)| f.swap(false, Ordering::SeqCst))
            .map(|(s, _)| *s)
            .collect()
    }
}
