//! The operator's terminal, handed over by the attach client: the
//! supervisor reads keystrokes from it and writes the program's output to
//! it itself, so a keystroke crosses one process on its way to the program
//! and back instead of three (GNU screen's server opens the user's terminal
//! itself; tmux's receives its client's). What the client would do for that
//! terminal happens here: the detach sequence, the output filter
//! (`relay`), and a bounded non-blocking queue, so a stalled terminal never
//! blocks the loop.

use super::queue::{write_pending, COMPACT_AFTER};
use crate::config::DetachMatcher;
use crate::protocol::TerminalSettings;
use crate::relay::OutputFilter;
use crate::sys;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// A terminal the supervisor serves for the attached client.
pub struct Tty {
    /// The terminal: the client's own open of it, sent over the socket
    /// (non-blocking, close-on-exec, never anyone's controlling terminal here).
    fd: OwnedFd,
    /// Filtered bytes for the terminal; `out[sent..]` is not written yet.
    out: Vec<u8>,
    /// Bytes of `out` already written.
    sent: usize,
    /// The last read's keystrokes (kept: a keystroke allocates nothing).
    keys: Vec<u8>,
    /// What of `keys` goes on (the detach sequence held back or taken out).
    fed: Vec<u8>,
    /// The detach sequence of the user at this terminal.
    matcher: DetachMatcher,
    /// What of the program's output may reach this terminal.
    filter: OutputFilter,
}

impl Tty {
    /// Take `fd` as the attach client's terminal, or say why not: only a
    /// terminal (a character device that answers terminal ioctls), neither a
    /// pty master nor this session's own pty (`own_pty`: its device and
    /// inode; device numbers alone repeat across devpts instances).
    pub fn accept(
        fd: OwnedFd,
        settings: &TerminalSettings,
        own_pty: Option<(u64, u64)>,
    ) -> Result<Tty, String> {
        let raw = fd.as_raw_fd();
        let st = sys::fstat(raw).map_err(|e| format!("cannot inspect it ({e})"))?;
        if st.kind() != libc::S_IFCHR {
            return Err(format!("it is {}, not a terminal", kind_name(st.kind())));
        }
        if !sys::isatty(raw) {
            return Err("it is a character device but not a terminal".into());
        }
        if sys::is_pty_master(raw) {
            return Err("it is the master side of a pty, not a terminal".into());
        }
        if own_pty == Some((st.dev, st.ino)) {
            return Err("it is this session's own terminal".into());
        }
        sys::set_nonblocking(raw, true)
            .map_err(|e| format!("cannot make it non-blocking ({e})"))?;
        Ok(Tty {
            fd,
            out: Vec::new(),
            sent: 0,
            keys: Vec::new(),
            fed: Vec::new(),
            matcher: DetachMatcher::new(settings.detach_sequence().to_vec()),
            // Keystrokes reach the program from here, so queries may pass.
            filter: OutputFilter::new(settings.allow_clipboard, true),
        })
    }

    /// The terminal's fd, for poll.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Queue program output (or a render of the model) for the terminal, filtered.
    pub fn push_output(&mut self, bytes: &[u8]) {
        self.filter.filter(bytes, &mut self.out);
    }

    /// Bytes still to write.
    pub fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Write as much as the terminal takes. Ok(()) also when it would
    /// block; Err means the terminal is gone (hung up).
    pub fn flush(&mut self) -> io::Result<()> {
        write_pending(self.fd.as_raw_fd(), &self.out, &mut self.sent)?;
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        } else if self.sent >= COMPACT_AFTER {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
        Ok(())
    }

    /// Drop what is not written yet (a stalled terminal, a detach). A
    /// sequence cut in half is cancelled (CAN), and the filter starts afresh
    /// on what comes next (a render of the model, or the restore).
    pub fn drop_unsent(&mut self) {
        if self.pending() > 0 {
            self.out.truncate(self.sent);
            self.out.push(0x18);
        }
        self.filter.reset();
    }

    /// Read what was typed (non-blocking); the byte count (0: the terminal
    /// hung up). Then [`Tty::feed`] says what of it goes on.
    pub fn read_keys(&mut self, max: usize) -> io::Result<usize> {
        self.keys.clear();
        sys::read_append(self.fd(), &mut self.keys, max)
    }

    /// The keys just read, through the detach matcher: what goes on to the
    /// program (or the overlay), and whether the detach sequence completed
    /// (keys after it are dropped, as the client's matcher does).
    pub fn feed(&mut self) -> (&[u8], bool) {
        self.fed.clear();
        let hit = self.matcher.feed(&self.keys, &mut self.fed);
        (&self.fed, hit)
    }

    /// The attachment ends: what was not written to the terminal yet (the
    /// client writes it, after which the terminal is its own again), and
    /// whether a query went to the terminal, whose answer may be on its way.
    pub fn into_rest(mut self) -> (Vec<u8>, bool) {
        let rest = self.out.split_off(self.sent);
        (rest, self.filter.take_queried())
    }
}

/// "a fifo", "a directory" … for the refusal of what is not a terminal.
fn kind_name(kind: u32) -> &'static str {
    match kind {
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a directory",
        libc::S_IFIFO => "a pipe",
        libc::S_IFSOCK => "a socket",
        libc::S_IFBLK => "a block device",
        libc::S_IFLNK => "a symlink",
        _ => "an anonymous file",
    }
}
