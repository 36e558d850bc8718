//! `nono logs` connections: a snapshot of the session's history as plain
//! text, and for `--follow`, each line once it is complete.
//!
//! Lines are numbered from the first line the session ever printed
//! (`lines_scrolled_off` + screen row). A line is complete once the cursor
//! is below it. A follower prints each complete line once; a line still on
//! the screen whose text changed since it was printed (after a clear or a
//! redraw) is printed again, like a terminal transcript would show it.
//! While the alternate screen is active nothing advances: full-screen
//! frames are not history.

use super::queue::OutQueue;
use crate::protocol::{self, Frame};
use crate::term::Terminal;
use std::collections::VecDeque;
use std::os::unix::net::UnixStream;

/// One `nono logs` connection.
pub struct Follower {
    /// The socket (non-blocking).
    pub stream: UnixStream,
    /// Frames for it.
    pub out: OutQueue,
    /// Keep sending new lines (`--follow`); otherwise close once flushed.
    pub follow: bool,
    /// Absolute number of the next line never printed.
    next: u64,
    /// Lines printed that may still be on the screen: (absolute number, text).
    on_screen: VecDeque<(u64, String)>,
}

/// Absolute number of the first main-screen row.
fn screen_base(t: &Terminal) -> u64 {
    t.lines_scrolled_off()
}

/// Absolute number one past the last complete line, or None while the
/// alternate screen is shown.
fn complete_upto(t: &Terminal) -> Option<u64> {
    if t.alternate_screen_active() {
        return None;
    }
    Some(screen_base(t) + u64::from(t.cursor().y))
}

/// Text of absolute line `abs`, if it is still held (history or screen).
fn line_text(t: &Terminal, abs: u64) -> Option<String> {
    let base = screen_base(t);
    if abs >= base {
        return t.main_row_text(usize::try_from(abs - base).ok()?);
    }
    let first = base - t.history_len() as u64;
    if abs < first {
        return None;
    }
    t.history_line(usize::try_from(abs - first).ok()?)
}

/// The last `n` lines (0: all), newline-terminated unless empty: what `nono logs`
/// prints without `--follow`, from a live session or its saved history.
pub fn tail<S: std::borrow::Borrow<str>>(all: &[S], n: u32) -> String {
    let skip = if n == 0 {
        0
    } else {
        all.len().saturating_sub(n as usize)
    };
    let mut text = all[skip..].join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

impl Follower {
    /// Answer a logs request: the last `lines` lines (0: all) of history
    /// and screen, then (with `follow`) new lines as they complete.
    pub fn new(stream: UnixStream, t: &Terminal, follow: bool, lines: u32) -> Follower {
        let mut f = Follower {
            stream,
            out: OutQueue::default(),
            follow,
            next: 0,
            on_screen: VecDeque::new(),
        };
        f.out
            .push(&Frame::Reply(protocol::ReplyStatus::Ok, "logs".into()));
        if !follow {
            f.send(tail(&t.text_lines(), lines).as_bytes());
            return f;
        }
        let base = screen_base(t);
        let first = base - t.history_len() as u64;
        let upto = complete_upto(t).unwrap_or(base);
        f.next = if lines == 0 {
            first
        } else {
            upto.saturating_sub(u64::from(lines)).max(first)
        };
        f.advance(t);
        f
    }

    /// Queue text as output frames.
    fn send(&mut self, text: &[u8]) {
        self.out.push_output(text);
    }

    /// Print lines that completed (or changed) since the last call.
    pub fn advance(&mut self, t: &Terminal) {
        let Some(upto) = complete_upto(t) else {
            return;
        };
        self.print_through(t, upto);
    }

    /// The session ended: print the rest of the screen, through its last non-blank line.
    pub fn finish(&mut self, t: &Terminal) {
        let base = screen_base(t);
        let rows = t.size().0 as usize;
        let last = (0..rows)
            .rev()
            .find(|&r| t.main_row_text(r).is_some_and(|s| !s.is_empty()));
        let upto = last.map_or(base, |r| base + r as u64 + 1);
        self.print_through(t, upto.max(complete_upto(t).unwrap_or(0)));
    }

    /// Print lines [.., upto): new ones, and on-screen ones whose text changed.
    fn print_through(&mut self, t: &Terminal, upto: u64) {
        let base = screen_base(t);
        while self.on_screen.front().is_some_and(|(abs, _)| *abs < base) {
            self.on_screen.pop_front();
        }
        let mut text = String::new();
        // Lines printed before that are complete again and now read
        // differently (the screen was cleared or redrawn): print them again.
        for (abs, printed) in self.on_screen.iter_mut() {
            if *abs >= upto {
                break;
            }
            if let Some(now) = line_text(t, *abs) {
                if now != *printed {
                    text.push_str(&now);
                    text.push('\n');
                    *printed = now;
                }
            }
        }
        while self.next < upto {
            let abs = self.next;
            self.next += 1;
            let Some(now) = line_text(t, abs) else {
                continue;
            };
            text.push_str(&now);
            text.push('\n');
            if abs >= base {
                self.on_screen.push_back((abs, now));
            }
        }
        if !text.is_empty() {
            self.send(text.as_bytes());
        }
    }
}
