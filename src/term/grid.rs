//! Screen rows and the compact scrollback history.
//!
//! Owns the cell-level editing primitives (write, erase, insert, delete)
//! that keep double-width characters consistent: a wide cell is always
//! followed by its spacer and a spacer always preceded by its wide cell;
//! any operation that would split a pair blanks both halves, as xterm and
//! tmux do. Also owns [`History`], where lines scrolled off the main screen
//! live as text plus run-length attribute spans instead of cells.

use std::collections::VecDeque;

use super::cell::{Cell, Color, Pen, KIND_NARROW, KIND_SPACER, KIND_WIDE};

/// One screen row: exactly `cols` cells.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) cells: Vec<Cell>,
    /// The text continues on the next row (autowrap happened here).
    pub(crate) wrapped: bool,
    /// Every cell from here on is a default blank, so clearing and
    /// trimming only touch the front (the scroll path's main cost was
    /// blanking whole rows). Code writing cells directly calls `touch`.
    dirty: usize,
    /// Guarantee that every cell has the default pen, is narrow and has
    /// no combining characters (false means "unknown"), so the history
    /// conversion can skip checking each cell.
    plain: bool,
}

/// A space with the default pen: what untouched cells hold.
const DEFAULT_BLANK: Cell = Cell::blank(Pen {
    fg: Color::Default,
    bg: Color::Default,
    underline_color: Color::Default,
    attrs: 0,
});

impl Row {
    /// A row of `cols` blanks drawn with `pen`.
    pub(crate) fn new(cols: usize, pen: Pen) -> Row {
        Row {
            cells: vec![Cell::blank(pen); cols],
            wrapped: false,
            dirty: if pen == Pen::default() { 0 } else { cols },
            plain: pen == Pen::default(),
        }
    }

    /// Note that a cell may now be styled, wide or combined.
    pub(crate) fn mark_styled(&mut self) {
        self.plain = false;
    }

    /// Note that cells before `end` may have been written.
    pub(crate) fn touch(&mut self, end: usize) {
        self.dirty = self.dirty.max(end.min(self.cells.len()));
    }

    /// Number of cells.
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// Blank every cell with `pen`.
    pub(crate) fn clear(&mut self, pen: Pen) {
        if pen == Pen::default() {
            let dirty = self.dirty.min(self.cells.len());
            if let Some(cells) = self.cells.get_mut(..dirty) {
                cells.fill(DEFAULT_BLANK);
            }
            self.dirty = 0;
            self.plain = true;
        } else {
            self.cells.fill(Cell::blank(pen));
            self.dirty = self.cells.len();
            self.plain = false;
        }
        self.wrapped = false;
    }

    /// Make column boundary `x` (between cells x-1 and x) safe to cut:
    /// if a wide character straddles it, both halves become blanks that
    /// keep the character's background.
    pub(crate) fn split_at(&mut self, x: usize) {
        if x == 0 {
            return;
        }
        let straddles = self.cells.get(x).is_some_and(|c| c.kind == KIND_SPACER);
        if straddles {
            if let Some(left) = self.cells.get_mut(x - 1) {
                *left = Cell::blank(left.pen.erase_pen());
            }
            if let Some(right) = self.cells.get_mut(x) {
                *right = Cell::blank(right.pen.erase_pen());
            }
        }
    }

    /// Blank cells `[from, to)` with `pen` (clamped to the row).
    pub(crate) fn erase(&mut self, from: usize, to: usize, pen: Pen) {
        let to = to.min(self.len());
        if from >= to {
            return;
        }
        self.split_at(from);
        self.split_at(to);
        if let Some(cells) = self.cells.get_mut(from..to) {
            cells.fill(Cell::blank(pen));
        }
        if pen != Pen::default() {
            self.touch(to);
            self.plain = false;
        }
    }

    /// Insert `n` blanks at `x`, shifting the rest right and dropping what
    /// falls off the end.
    pub(crate) fn insert(&mut self, x: usize, n: usize, pen: Pen) {
        let len = self.len();
        if x >= len || n == 0 {
            return;
        }
        let n = n.min(len - x);
        self.split_at(x);
        // The cell that will end up last must not be a wide char whose
        // spacer is pushed off.
        self.split_at(len - n);
        if let Some(tail) = self.cells.get_mut(x..) {
            tail.rotate_right(n);
        }
        if let Some(cells) = self.cells.get_mut(x..x + n) {
            cells.fill(Cell::blank(pen));
        }
        let end = if pen == Pen::default() {
            self.dirty + n
        } else {
            self.plain = false;
            len
        };
        self.touch(end);
    }

    /// Delete `n` cells at `x`, shifting the rest left and filling the end
    /// with blanks.
    pub(crate) fn delete(&mut self, x: usize, n: usize, pen: Pen) {
        let len = self.len();
        if x >= len || n == 0 {
            return;
        }
        let n = n.min(len - x);
        self.split_at(x);
        self.split_at(x + n);
        if let Some(tail) = self.cells.get_mut(x..) {
            tail.rotate_left(n);
        }
        if let Some(cells) = self.cells.get_mut(len - n..) {
            cells.fill(Cell::blank(pen));
        }
        if pen != Pen::default() {
            self.touch(len);
            self.plain = false;
        }
    }

    /// Change the width to `cols`, truncating or padding with default blanks.
    pub(crate) fn resize(&mut self, cols: usize) {
        if cols < self.len() {
            self.split_at(cols);
            self.cells.truncate(cols);
            self.cells.shrink_to_fit();
            // A wide char in the last column would have lost its spacer.
            if let Some(last) = self.cells.last_mut() {
                if last.kind == KIND_WIDE {
                    *last = Cell::blank(last.pen.erase_pen());
                }
            }
        } else {
            self.cells.resize(cols, Cell::default());
        }
        self.dirty = self.dirty.min(cols);
    }

    /// Index just past the last cell that is not a default blank.
    pub(crate) fn used_len(&self) -> usize {
        let dirty = self.dirty.min(self.cells.len());
        self.cells
            .get(..dirty)
            .unwrap_or(&[])
            .iter()
            .rposition(|c| *c != DEFAULT_BLANK)
            .map_or(0, |i| i + 1)
    }

    /// The row's text: wide characters once, trailing blanks trimmed.
    pub(crate) fn text(&self) -> String {
        let mut s = String::with_capacity(self.len());
        for c in &self.cells {
            c.push_text(&mut s);
        }
        s.truncate(s.trim_end_matches(' ').len());
        s
    }

    /// Compact copy for the history.
    pub(crate) fn to_history(&self) -> HistoryLine {
        let used = self.used_len();
        let cells = self.cells.get(..used).unwrap_or(&[]);
        // Fast path for the common plain line: default pen, no wide or
        // combining characters, so the text is just the base characters.
        let plain = self.plain
            || cells
                .iter()
                .all(|c| c.pen == Pen::default() && c.kind == KIND_NARROW && c.comb[0] == '\0');
        if plain {
            // ASCII (the bulk of program output) is copied byte by byte;
            // UTF-8 encoding each char was the model's hottest loop.
            let mut bytes = Vec::with_capacity(used);
            let mut ascii = true;
            for c in cells {
                ascii &= c.ch.is_ascii();
                bytes.push(c.ch as u8);
            }
            let text = match ascii {
                true => String::from_utf8(bytes).unwrap_or_default(),
                false => cells.iter().map(|c| c.ch).collect(),
            };
            return HistoryLine {
                text: text.into_boxed_str(),
                spans: Box::new([]),
                wrapped: self.wrapped,
            };
        }
        let mut text = String::with_capacity(used);
        let mut spans: Vec<Span> = Vec::new();
        for c in cells {
            if c.kind == KIND_SPACER {
                continue;
            }
            c.push_text(&mut text);
            let end = u32::try_from(text.len()).unwrap_or(u32::MAX);
            match spans.last_mut() {
                Some(last) if last.pen == c.pen => last.end = end,
                _ => spans.push(Span { end, pen: c.pen }),
            }
        }
        // All-default lines (the common case) carry no spans at all.
        if spans.len() == 1 && spans.first().is_some_and(|s| s.pen == Pen::default()) {
            spans.clear();
        }
        HistoryLine {
            text: text.into_boxed_str(),
            spans: spans.into_boxed_slice(),
            wrapped: self.wrapped,
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.cells.capacity() * std::mem::size_of::<Cell>()
    }
}

/// A run of text sharing one pen, ending at byte offset `end` of the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) end: u32,
    pub(crate) pen: Pen,
}

/// A line in the scrollback: its text (wide characters once, trailing
/// default blanks trimmed) and attribute runs (none when all default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HistoryLine {
    pub(crate) text: Box<str>,
    pub(crate) spans: Box<[Span]>,
    pub(crate) wrapped: bool,
}

impl HistoryLine {
    /// `(text, pen)` runs covering the line.
    pub(crate) fn runs(&self) -> Vec<(&str, Pen)> {
        if self.spans.is_empty() {
            return vec![(&self.text, Pen::default())];
        }
        let mut out = Vec::with_capacity(self.spans.len());
        let mut start = 0usize;
        for span in self.spans.iter() {
            let end = (span.end as usize).min(self.text.len());
            if let Some(s) = self.text.get(start..end) {
                out.push((s, span.pen));
            }
            start = end;
        }
        out
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.text.len() + self.spans.len() * std::mem::size_of::<Span>()
    }
}

/// Bounded scrollback of the main screen, oldest line first.
#[derive(Clone, Debug)]
pub(crate) struct History {
    pub(crate) lines: VecDeque<HistoryLine>,
    pub(crate) limit: usize,
    /// Lines ever pushed (monotonic, survives clearing and trimming).
    pub(crate) total: u64,
    /// Running sum of the lines' heap bytes, kept so heap_bytes is O(1).
    bytes: usize,
}

impl History {
    /// An empty history keeping at most `limit` lines.
    pub(crate) fn new(limit: usize) -> History {
        History {
            lines: VecDeque::new(),
            limit,
            total: 0,
            bytes: 0,
        }
    }

    /// Append a line, dropping the oldest beyond the limit.
    pub(crate) fn push(&mut self, row: &Row) {
        self.total = self.total.saturating_add(1);
        if self.limit == 0 {
            return;
        }
        if self.lines.len() >= self.limit {
            if let Some(old) = self.lines.pop_front() {
                self.bytes = self.bytes.saturating_sub(old.heap_bytes());
            }
        }
        let line = row.to_history();
        self.bytes += line.heap_bytes();
        self.lines.push_back(line);
    }

    /// Forget every line (ED 3); the total stays.
    pub(crate) fn clear(&mut self) {
        self.lines = VecDeque::new();
        self.bytes = 0;
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes + self.lines.capacity() * std::mem::size_of::<HistoryLine>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide(c: char) -> [Cell; 2] {
        let mut a = Cell::blank(Pen::default());
        a.ch = c;
        a.kind = KIND_WIDE;
        let mut b = Cell::blank(Pen::default());
        b.kind = KIND_SPACER;
        [a, b]
    }

    #[test]
    fn editing_never_leaves_half_wide_chars() {
        let mut r = Row::new(6, Pen::default());
        let [a, b] = wide('中');
        r.cells[1] = a;
        r.cells[2] = b;
        r.cells[4] = a;
        r.cells[5] = b;
        r.touch(6);
        r.mark_styled();
        r.delete(2, 1, Pen::default());
        assert_eq!(r.text(), "   中");
        r.insert(0, 1, Pen::default());
        assert_eq!(r.text(), "    中");
        r.insert(0, 1, Pen::default());
        assert_eq!(r.text(), "");
        assert!(r.cells.iter().all(|c| c.kind == KIND_NARROW));
    }

    #[test]
    fn history_is_compact() {
        let mut r = Row::new(10, Pen::default());
        r.cells[0].ch = 'h';
        r.cells[1].ch = 'i';
        r.touch(2);
        let line = r.to_history();
        assert_eq!(&*line.text, "hi");
        assert!(line.spans.is_empty());
        let red = Pen {
            bg: Color::Indexed(1),
            ..Pen::default()
        };
        r.erase(3, 5, red);
        let line = r.to_history();
        assert_eq!(&*line.text, "hi   ");
        assert_eq!(line.spans.len(), 2);
        assert_eq!(line.runs(), vec![("hi ", Pen::default()), ("  ", red)]);
    }
}
