//! Turning the model back into bytes: [`Terminal::render`] for attaching
//! clients, plus read-only views of the scrollback for tests and logs.
//!
//! The output assumes a freshly reset xterm-compatible terminal of the
//! model's size. It first scrolls the history through the client so the
//! lines land in the client's own scrollback, then draws the screens and
//! finally restores margins, saved cursors, the cursor (including the
//! pending-wrap state, by reprinting the last-column cell), the pen,
//! character sets, modes and the title.

use std::fmt::Write as _;

use super::cell::{Pen, KIND_SPACER};
use super::grid::{HistoryLine, Row};
use super::width::char_width;
use super::{Charset, Emulator, MouseEncoding, MouseTracking, SavedCursor, Terminal};

/// Starting point: default pen, no margins, origin off, autowrap on,
/// insert off, ASCII charsets, cursor home, screen cleared.
const PRELUDE: &str = "\x1b[0m\x1b[r\x1b[?6l\x1b[?7h\x1b[4l\x1b(B\x1b)B\x0f\x1b[H\x1b[2J";
/// Character sets back to ASCII in G0 and G1, G0 invoked.
const CHARSETS_ASCII: &str = "\x1b(B\x1b)B\x0f";

/// Incremental writer tracking the pen the client currently has.
struct Out {
    s: String,
    pen: Pen,
}

impl Out {
    fn set_pen(&mut self, pen: Pen) {
        if pen != self.pen {
            self.s.push_str("\x1b[");
            pen.write_sgr_params(&mut self.s);
            self.s.push('m');
            self.pen = pen;
        }
    }

    fn force_pen(&mut self, pen: Pen) {
        self.s.push_str("\x1b[");
        pen.write_sgr_params(&mut self.s);
        self.s.push('m');
        self.pen = pen;
    }

    /// CUP to 0-based `(row, col)`.
    fn cup(&mut self, row: usize, col: usize) {
        let _ = write!(self.s, "\x1b[{};{}H", row + 1, col + 1);
    }

    fn row(&mut self, row: &Row) {
        let used = row.used_len();
        if let Some(text) = row.ascii_text() {
            // ASCII form: default pen throughout.
            self.set_pen(Pen::default());
            self.s
                .push_str(&String::from_utf8_lossy(text.get(..used).unwrap_or(&[])));
            return;
        }
        for c in row.cells().get(..used).unwrap_or(&[]) {
            if c.kind() == KIND_SPACER {
                continue;
            }
            self.set_pen(row.pen_of(c));
            row.push_text(c, &mut self.s);
        }
        // Pen back to default so scrolled-in lines come out blank.
        self.set_pen(Pen::default());
    }

    /// A history line, broken into rows of at most `cols` columns by
    /// explicit line ends (a line from before the screen got narrower):
    /// relying on autowrap would fill the new row with the current
    /// background colour. Characters wider than the screen are dropped.
    fn history_line(&mut self, line: HistoryLine<'_>, cols: usize) {
        let mut col = 0;
        let mut skipping = false;
        for (text, pen) in line.runs() {
            for c in text.chars() {
                let w = usize::from(char_width(c));
                if w == 0 {
                    if !skipping {
                        self.s.push(c);
                    }
                    continue;
                }
                skipping = w > cols;
                if skipping {
                    continue;
                }
                if col + w > cols {
                    self.set_pen(Pen::default());
                    self.s.push_str("\r\n");
                    col = 0;
                }
                self.set_pen(pen);
                self.s.push(c);
                col += w;
            }
        }
        self.set_pen(Pen::default());
    }

    fn mode(&mut self, decset: u16, on: bool) {
        let _ = write!(self.s, "\x1b[?{}{}", decset, if on { 'h' } else { 'l' });
    }
}

impl Terminal {
    /// Bytes that reproduce the model's state on a freshly reset
    /// xterm-compatible terminal of the same size: the scrollback (so it
    /// scrolls into the client's own history), the main screen, then, if
    /// active, `?1049h` and the alternate screen; then margins, saved
    /// cursors, cursor position (pending wrap included), shape and
    /// visibility, pen, character sets, title and every input mode.
    pub fn render(&self) -> Vec<u8> {
        self.render_from(true)
    }

    /// [`render`](Self::render) without the scrollback: the screen as it
    /// is now, for repainting a client that already has the history (the
    /// approval overlay's redraws).
    pub fn render_screen(&self) -> Vec<u8> {
        self.render_from(false)
    }

    /// The redraw, with or without the scrollback first.
    fn render_from(&self, history: bool) -> Vec<u8> {
        let e = &self.emu;
        let mut o = Out {
            s: String::with_capacity(e.rows * e.cols * 2),
            pen: Pen::default(),
        };
        o.s.push_str(PRELUDE);
        if history {
            for line in e.history.iter() {
                o.history_line(line, e.cols);
                o.s.push_str("\r\n");
            }
        }
        for (i, row) in e.main.rows.iter().enumerate() {
            if i > 0 {
                o.s.push_str("\r\n");
            }
            o.row(row);
        }

        let tabs_default = e
            .tabs
            .iter()
            .enumerate()
            .all(|(i, &t)| t == (i > 0 && i % super::TAB_WIDTH == 0));
        if !tabs_default {
            o.s.push_str("\x1b[3g");
            for (i, _) in e.tabs.iter().enumerate().filter(|(_, &t)| t) {
                o.cup(0, i);
                o.s.push_str("\x1bH");
            }
        }
        if e.top != 0 || e.bottom != e.rows - 1 {
            let _ = write!(o.s, "\x1b[{};{}r", e.top + 1, e.bottom + 1);
        }

        if e.alt_active {
            let saved = e.main.saved.unwrap_or_default();
            e.emit_cursor_state(&mut o, &e.main, &saved);
            o.s.push_str("\x1b[?1049h");
            o.s.push_str(CHARSETS_ASCII);
            o.s.push_str("\x1b[?6l");
            for (y, row) in e.alt.rows.iter().enumerate() {
                if row.used_len() > 0 {
                    o.cup(y, 0);
                    o.row(row);
                }
            }
            if let Some(saved) = e.alt.saved {
                e.emit_cursor_state(&mut o, &e.alt, &saved);
                o.s.push_str("\x1b7");
            }
        } else if let Some(saved) = e.main.saved {
            e.emit_cursor_state(&mut o, &e.main, &saved);
            o.s.push_str("\x1b7");
        }
        let current = SavedCursor {
            x: e.x,
            y: e.y,
            pending_wrap: e.pending_wrap,
            pen: e.pen,
            origin: e.modes.origin,
            charsets: e.charsets,
            gl: e.gl,
        };
        e.emit_cursor_state(&mut o, e.screen(), &current);

        let m = &e.modes;
        if !m.autowrap {
            o.mode(7, false);
        }
        if m.insert {
            o.s.push_str("\x1b[4h");
        }
        if m.cursor_keys_app {
            o.mode(1, true);
        }
        if m.keypad_app {
            o.s.push_str("\x1b=");
        }
        if m.bracketed_paste {
            o.mode(2004, true);
        }
        if m.mouse != MouseTracking::Off {
            o.mode(m.mouse.decset(), true);
        }
        if m.mouse_encoding != MouseEncoding::Default {
            o.mode(m.mouse_encoding.decset(), true);
        }
        if m.focus_events {
            o.mode(1004, true);
        }
        if m.cursor_style != 0 {
            let _ = write!(o.s, "\x1b[{} q", m.cursor_style);
        }
        if m.cursor_blink {
            o.mode(12, true);
        }
        if !m.cursor_visible {
            o.mode(25, false);
        }
        if !e.title.is_empty() {
            let _ = write!(o.s, "\x1b]2;{}\x07", e.title);
        }
        o.s.into_bytes()
    }

    /// History line `index` (0 = oldest) as `(text, pen)` runs; trailing
    /// default blanks are not stored.
    pub fn history_runs(&self, index: usize) -> Option<Vec<(String, Pen)>> {
        let line = self.emu.history.get(index)?;
        Some(
            line.runs()
                .into_iter()
                .filter(|(t, _)| !t.is_empty())
                .map(|(t, p)| (t.to_string(), p))
                .collect(),
        )
    }
}

impl Emulator {
    /// Position the client's cursor, pen, origin mode and character sets
    /// as `s` describes, on `screen` (already drawn on the client).
    fn emit_cursor_state(&self, o: &mut Out, screen: &super::Screen, s: &SavedCursor) {
        o.s.push_str(CHARSETS_ASCII);
        o.mode(6, s.origin);
        let y = s.y.min(self.rows - 1);
        let row = if s.origin {
            y.clamp(self.top, self.bottom) - self.top
        } else {
            y
        };
        let x = s.x.min(self.cols - 1);
        let last = self.cols - 1;
        let mut placed = false;
        if s.pending_wrap && x == last {
            // Reprint the last-column cell so the client sets its own
            // pending-wrap flag.
            if let Some(r) = screen.rows.get(y) {
                match r.cell(last) {
                    Some(c) if c.kind() == KIND_SPACER && last > 0 => {
                        if let Some(wide) = r.cell(last - 1) {
                            o.cup(row, last - 1);
                            o.force_pen(r.pen_of(&wide));
                            r.push_text(&wide, &mut o.s);
                            placed = true;
                        }
                    }
                    Some(c) => {
                        o.cup(row, last);
                        o.force_pen(r.pen_of(&c));
                        r.push_text(&c, &mut o.s);
                        placed = true;
                    }
                    None => {}
                }
            }
        }
        if !placed {
            o.cup(row, x);
        }
        o.force_pen(s.pen);
        if s.charsets.first() == Some(&Charset::DecGraphics) {
            o.s.push_str("\x1b(0");
        }
        if s.charsets.get(1) == Some(&Charset::DecGraphics) {
            o.s.push_str("\x1b)0");
        }
        if s.gl == 1 {
            o.s.push('\x0e');
        }
    }
}
