//! Screen rows and the compact scrollback history.
//!
//! Owns the cell-level editing primitives (write, erase, insert, delete)
//! that keep double-width characters consistent: a wide cell is always
//! followed by its spacer and a spacer always preceded by its wide cell;
//! any operation that would split a pair blanks both halves, as xterm and
//! tmux do. Also owns [`History`], where lines scrolled off the main screen
//! live as text plus run-length attribute spans instead of cells, packed
//! into a few large chunks rather than one allocation per line.

use std::collections::VecDeque;

use super::cell::{
    Cell, Color, Extra, GridCell, Pen, KIND_NARROW, KIND_SPACER, KIND_WIDE, MAX_COMBINING,
};

/// One screen row: exactly `cols` cells.
///
/// A row starts out in ASCII form: while everything on it is printable
/// ASCII in the default pen (most program output), it is kept as those
/// bytes, one per cell, so printing a line, scrolling it into the history
/// and clearing the row move a tenth of the memory they would as cells.
/// The first edit that needs more (a colour, a wide or combining
/// character, inserting or deleting cells) converts the row to cells, and
/// clearing it with the default pen turns it back.
///
/// In cell form only the first `dirty` cells are ever read: every cell
/// from there on is a default blank, whatever its memory holds, so
/// clearing is O(1) and trimming only looks at the front. Cells in
/// `dirty..stale` may hold old contents and are blanked when `dirty` moves
/// over them; cells from `stale` on hold default blanks.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    cells: Vec<GridCell>,
    /// The row in ASCII form: cell `i` is `bytes[i]` in the default pen,
    /// cells past the end are default blanks. Empty in cell form.
    bytes: Vec<u8>,
    /// Whether the row is in ASCII form.
    ascii: bool,
    /// Side table of the cells' combining characters and underline
    /// colours, indexed by `GridCell::extra - 1`. Entries of overwritten
    /// cells linger until the row is cleared or the table is compacted.
    extras: Vec<Extra>,
    /// The text continues on the next row (autowrap happened here).
    pub(crate) wrapped: bool,
    /// Cell form: cells from here on are default blanks (see the type's doc).
    dirty: usize,
    /// Cell form: cells from here on hold default blanks in memory too.
    stale: usize,
    /// Guarantee that every cell has the default pen, is narrow and has
    /// no extra (false means "unknown"), so the history conversion can
    /// skip checking each cell.
    plain: bool,
}

/// A space with the default pen: what untouched cells hold.
const DEFAULT_BLANK: GridCell = GridCell::blank(Pen {
    fg: Color::Default,
    bg: Color::Default,
    underline_color: Color::Default,
    attrs: 0,
});

/// Entries a row's side table may hold beyond one per cell before it is
/// compacted: compaction walks the row, so this keeps it rare while
/// bounding the table at about one entry per cell.
const EXTRAS_SLACK: usize = 16;

/// Whether `c` can be kept in a row's ASCII form.
fn is_printable_ascii(c: char) -> bool {
    (' '..='~').contains(&c)
}

impl Row {
    /// A row of `cols` blanks drawn with `pen` (an erase pen: its
    /// underline colour is not used).
    pub(crate) fn new(cols: usize, pen: Pen) -> Row {
        let ascii = pen == Pen::default();
        let end = if ascii { 0 } else { cols };
        Row {
            cells: vec![GridCell::blank(pen); cols],
            bytes: Vec::new(),
            ascii,
            extras: Vec::new(),
            wrapped: false,
            dirty: end,
            stale: end,
            plain: ascii,
        }
    }

    /// Convert an ASCII-form row to cell form (no-op in cell form).
    fn make_cells(&mut self) {
        if !self.ascii {
            return;
        }
        self.ascii = false;
        let n = self.bytes.len().min(self.cells.len());
        for (cell, &b) in self.cells.iter_mut().zip(&self.bytes) {
            *cell = DEFAULT_BLANK.with_char(char::from(b));
        }
        self.bytes.clear();
        self.dirty = n;
        self.stale = self.stale.max(n);
    }

    /// ASCII form: put `run` (printable ASCII) at `x`, padding with blanks.
    fn put_ascii(&mut self, x: usize, run: &[u8]) {
        if self.bytes.len() < x {
            self.bytes.resize(x, b' ');
        }
        let overlap = (self.bytes.len() - x).min(run.len());
        if let Some(old) = self.bytes.get_mut(x..x + overlap) {
            old.copy_from_slice(run.get(..overlap).unwrap_or(&[]));
        }
        self.bytes
            .extend_from_slice(run.get(overlap..).unwrap_or(&[]));
        self.bytes.truncate(self.cells.len());
    }

    /// Make cells before `end` readable: blank the old contents below it
    /// and move `dirty` up to it (cell form).
    fn expose(&mut self, end: usize) {
        let end = end.min(self.cells.len());
        if end <= self.dirty {
            return;
        }
        let old = self.stale.min(end);
        if let Some(cells) = self.cells.get_mut(self.dirty..old) {
            cells.fill(DEFAULT_BLANK);
        }
        self.dirty = end;
        self.stale = self.stale.max(end);
    }

    /// Blank every old cell, so all memory holds what the cells read as
    /// (cell form, before operations that move cells around).
    fn materialize(&mut self) {
        if let Some(cells) = self.cells.get_mut(self.dirty..self.stale) {
            cells.fill(DEFAULT_BLANK);
        }
        self.stale = self.dirty;
    }

    /// Cells `[.., end)` were all just written: move `dirty` up to `end`.
    fn written(&mut self, end: usize) {
        self.dirty = self.dirty.max(end.min(self.cells.len()));
        self.stale = self.stale.max(self.dirty);
    }

    /// Number of cells.
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// The row's text when it is in ASCII form (trailing blanks
    /// included); `None` in cell form, where [`Row::cells`] has it.
    pub(crate) fn ascii_text(&self) -> Option<&[u8]> {
        self.ascii.then_some(&self.bytes[..])
    }

    /// Cell form: the cells that may differ from a default blank (the
    /// rest of the row is blank; empty in ASCII form); resolve pens and
    /// text with [`Row::pen_of`] and [`Row::push_text`].
    pub(crate) fn cells(&self) -> &[GridCell] {
        if self.ascii {
            return &[];
        }
        self.cells.get(..self.dirty).unwrap_or(&[])
    }

    /// Cell `x`, `None` outside the row.
    pub(crate) fn cell(&self, x: usize) -> Option<GridCell> {
        if x >= self.cells.len() {
            return None;
        }
        if self.ascii {
            let b = self.bytes.get(x).copied().unwrap_or(b' ');
            return Some(DEFAULT_BLANK.with_char(char::from(b)));
        }
        Some(match self.cells.get(x) {
            Some(c) if x < self.dirty => *c,
            _ => DEFAULT_BLANK,
        })
    }

    /// The extra of `c`, if it has one.
    fn extra_of(&self, c: &GridCell) -> Option<&Extra> {
        self.extras.get(usize::from(c.extra()).checked_sub(1)?)
    }

    /// The full pen of a cell of this row.
    pub(crate) fn pen_of(&self, c: &GridCell) -> Pen {
        Pen {
            fg: c.fg(),
            bg: c.bg(),
            underline_color: self
                .extra_of(c)
                .map_or(Color::Default, |e| e.underline_color),
            attrs: c.attrs(),
        }
    }

    /// Append a cell's text (base and combining characters; nothing for
    /// a spacer) to `out`.
    pub(crate) fn push_text(&self, c: &GridCell, out: &mut String) {
        if c.kind() == KIND_SPACER {
            return;
        }
        out.push(c.ch());
        if let Some(e) = self.extra_of(c) {
            out.extend(e.comb.iter().copied().take_while(|&c| c != '\0'));
        }
    }

    /// Cell `x` as the API reports it.
    pub(crate) fn view(&self, x: usize) -> Option<Cell> {
        let c = self.cell(x)?;
        let comb = self.extra_of(&c).map_or(['\0'; MAX_COMBINING], |e| e.comb);
        Some(Cell {
            ch: c.ch(),
            comb,
            pen: self.pen_of(&c),
            kind: c.kind(),
        })
    }

    /// Give readable cell `x` the extra `e`, reusing its own entry when it
    /// has one; compacts the table when it is full (cell form).
    fn set_extra(&mut self, x: usize, e: Extra) {
        let Some(cell) = self.cells.get(..self.dirty).and_then(|c| c.get(x)) else {
            return;
        };
        if let Some(slot) = usize::from(cell.extra())
            .checked_sub(1)
            .and_then(|i| self.extras.get_mut(i))
        {
            *slot = e;
            return;
        }
        let limit = (self.cells.len() + EXTRAS_SLACK).min(usize::from(u16::MAX));
        if self.extras.len() >= limit {
            self.compact_extras();
        }
        // After compaction at most one entry per other cell remains, so
        // this fits in u16 (rows are at most u16::MAX cells).
        let Ok(index) = u16::try_from(self.extras.len() + 1) else {
            return;
        };
        self.extras.push(e);
        if let Some(cell) = self.cells.get_mut(x) {
            cell.set_extra(index);
        }
    }

    /// Drop side-table entries no cell refers to (cell form).
    fn compact_extras(&mut self) {
        let old = std::mem::take(&mut self.extras);
        let cells = self.cells.get_mut(..self.dirty).unwrap_or(&mut []);
        for cell in cells.iter_mut().filter(|c| c.extra() != 0) {
            match old.get(usize::from(cell.extra()) - 1) {
                Some(e) => {
                    self.extras.push(*e);
                    cell.set_extra(u16::try_from(self.extras.len()).unwrap_or(0));
                }
                None => cell.set_extra(0),
            }
        }
    }

    /// Blank every cell with `pen`.
    pub(crate) fn clear(&mut self, pen: Pen) {
        if pen == Pen::default() {
            // O(1): back to the (empty) ASCII form; old cells become
            // unreadable (see the type's doc).
            if !self.ascii {
                self.stale = self.stale.max(self.dirty);
                self.dirty = 0;
                self.ascii = true;
            }
            self.bytes.clear();
            self.plain = true;
        } else {
            self.ascii = false;
            self.bytes.clear();
            self.cells.fill(GridCell::blank(pen));
            self.dirty = self.cells.len();
            self.stale = self.dirty;
            self.plain = false;
        }
        self.extras.clear();
        self.wrapped = false;
    }

    /// Make column boundary `x` (between cells x-1 and x) safe to cut:
    /// if a wide character straddles it, both halves become blanks that
    /// keep the character's background.
    pub(crate) fn split_at(&mut self, x: usize) {
        // Blanks from `dirty` on are never spacers, nor are ASCII cells.
        if self.ascii || x == 0 || x >= self.dirty {
            return;
        }
        let straddles = self.cells.get(x).is_some_and(|c| c.kind() == KIND_SPACER);
        if straddles {
            for i in [x - 1, x] {
                if let Some(c) = self.cells.get_mut(i) {
                    *c = GridCell::blank(Pen {
                        bg: c.bg(),
                        ..Pen::default()
                    });
                }
            }
        }
    }

    /// Write character `c` of width `w` (1 or 2) at `x` with `pen`; the
    /// caller has made room (`x + w` within the row).
    pub(crate) fn write_char(&mut self, x: usize, c: char, w: usize, pen: Pen) {
        if self.ascii && w == 1 && pen == Pen::default() && is_printable_ascii(c) {
            self.put_ascii(x, &[c as u8]);
            return;
        }
        self.make_cells();
        self.split_at(x);
        self.split_at(x + w);
        self.expose(x + w);
        let kinds: &[u8] = if w == 2 {
            &[KIND_WIDE, KIND_SPACER]
        } else {
            &[KIND_NARROW]
        };
        for (i, &kind) in kinds.iter().enumerate() {
            let Some(cell) = self.cells.get_mut(x + i) else {
                break;
            };
            let extra = cell.extra();
            *cell = GridCell::blank(pen);
            cell.set_kind(kind);
            if kind != KIND_SPACER {
                cell.set_ch(c);
            }
            // A spacer carries the pen too (the API reports it), so it
            // gets the underline colour as well.
            if pen.underline_color != Color::Default {
                cell.set_extra(extra);
                self.set_extra(
                    x + i,
                    Extra {
                        underline_color: pen.underline_color,
                        ..Extra::default()
                    },
                );
            }
        }
        if w == 2 || pen != Pen::default() {
            self.plain = false;
        }
    }

    /// Write a run of printable ASCII at `x` with `pen`, which has no
    /// underline colour; the caller has made room. The hot path for
    /// program output.
    pub(crate) fn write_ascii(&mut self, x: usize, run: &[u8], pen: Pen) {
        if self.ascii && pen == Pen::default() {
            self.put_ascii(x, run);
            return;
        }
        self.make_cells();
        let end = x + run.len();
        self.split_at(x);
        self.split_at(end);
        self.expose(x);
        let template = GridCell::blank(pen);
        if let Some(cells) = self.cells.get_mut(x..end) {
            for (cell, &b) in cells.iter_mut().zip(run) {
                *cell = template.with_char(char::from(b));
            }
        }
        self.written(end);
        if pen != Pen::default() {
            self.plain = false;
        }
    }

    /// Overwrite the character of cell `x`, keeping its pen (the last
    /// column without autowrap).
    pub(crate) fn set_char(&mut self, x: usize, c: char) {
        if self.ascii && is_printable_ascii(c) {
            if x < self.cells.len() {
                self.put_ascii(x, &[c as u8]);
            }
            return;
        }
        self.make_cells();
        self.expose(x + 1);
        if let Some(cell) = self.cells.get_mut(x) {
            cell.set_ch(c);
        }
    }

    /// Attach combining character `c` to cell `x` (or to the wide
    /// character whose spacer `x` is).
    pub(crate) fn combine(&mut self, x: usize, c: char) {
        self.make_cells();
        self.expose(x + 1);
        let x = match self.cells.get(x) {
            Some(cell) if cell.kind() == KIND_SPACER && x > 0 => x - 1,
            _ => x,
        };
        let Some(cell) = self.cells.get(x) else {
            return;
        };
        let mut e = self.extra_of(cell).copied().unwrap_or_default();
        if e.add_combining(c) {
            self.set_extra(x, e);
        }
        self.plain = false;
    }

    /// Fill the row with `c` in the default pen (DECALN).
    pub(crate) fn fill_char(&mut self, c: char) {
        self.clear(Pen::default());
        self.make_cells();
        self.cells.fill(DEFAULT_BLANK.with_char(c));
        self.dirty = self.cells.len();
        self.stale = self.dirty;
    }

    /// Blank cells `[from, to)` with `pen` (clamped to the row).
    pub(crate) fn erase(&mut self, from: usize, to: usize, pen: Pen) {
        let to = to.min(self.len());
        if from >= to {
            return;
        }
        if self.ascii && pen == Pen::default() {
            // Blanks past the end of the bytes are implied.
            if to >= self.bytes.len() {
                self.bytes.truncate(from);
            } else if let Some(b) = self.bytes.get_mut(from..to) {
                b.fill(b' ');
            }
            return;
        }
        self.make_cells();
        self.split_at(from);
        self.split_at(to);
        if pen == Pen::default() {
            // Cells from `dirty` on are blank already.
            let end = to.min(self.dirty);
            if let Some(cells) = self.cells.get_mut(from..end) {
                cells.fill(DEFAULT_BLANK);
            }
        } else {
            self.expose(from);
            if let Some(cells) = self.cells.get_mut(from..to) {
                cells.fill(GridCell::blank(pen));
            }
            self.written(to);
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
        self.make_cells();
        let n = n.min(len - x);
        self.split_at(x);
        // The cell that will end up last must not be a wide char whose
        // spacer is pushed off.
        self.split_at(len - n);
        self.materialize();
        if let Some(tail) = self.cells.get_mut(x..) {
            tail.rotate_right(n);
        }
        if let Some(cells) = self.cells.get_mut(x..x + n) {
            cells.fill(GridCell::blank(pen));
        }
        let end = if pen == Pen::default() {
            self.dirty + n
        } else {
            self.plain = false;
            len
        };
        self.written(end);
    }

    /// Delete `n` cells at `x`, shifting the rest left and filling the end
    /// with blanks.
    pub(crate) fn delete(&mut self, x: usize, n: usize, pen: Pen) {
        let len = self.len();
        if x >= len || n == 0 {
            return;
        }
        self.make_cells();
        let n = n.min(len - x);
        self.split_at(x);
        self.split_at(x + n);
        self.materialize();
        if let Some(tail) = self.cells.get_mut(x..) {
            tail.rotate_left(n);
        }
        if let Some(cells) = self.cells.get_mut(len - n..) {
            cells.fill(GridCell::blank(pen));
        }
        if pen != Pen::default() {
            self.written(len);
            self.plain = false;
        }
    }

    /// Change the width to `cols`, truncating or padding with default blanks.
    pub(crate) fn resize(&mut self, cols: usize) {
        self.make_cells();
        self.materialize();
        if cols < self.len() {
            self.split_at(cols);
            self.cells.truncate(cols);
            self.cells.shrink_to_fit();
            // A wide char in the last column would have lost its spacer.
            if let Some(last) = self.cells.last_mut() {
                if last.kind() == KIND_WIDE {
                    *last = GridCell::blank(Pen {
                        bg: last.bg(),
                        ..Pen::default()
                    });
                }
            }
            self.dirty = self.dirty.min(cols);
            self.stale = self.dirty;
            self.compact_extras();
        } else {
            self.cells.resize(cols, DEFAULT_BLANK);
        }
    }

    /// Index just past the last cell that is not a default blank.
    pub(crate) fn used_len(&self) -> usize {
        if self.ascii {
            return self
                .bytes
                .iter()
                .rposition(|&b| b != b' ')
                .map_or(0, |i| i + 1);
        }
        self.cells()
            .iter()
            .rposition(|c| *c != DEFAULT_BLANK)
            .map_or(0, |i| i + 1)
    }

    /// The row's text: wide characters once, trailing blanks trimmed.
    pub(crate) fn text(&self) -> String {
        if self.ascii {
            let used = self.used_len();
            return String::from_utf8_lossy(self.bytes.get(..used).unwrap_or(&[])).into_owned();
        }
        let mut s = String::with_capacity(self.len());
        for c in self.cells() {
            self.push_text(c, &mut s);
        }
        s.truncate(s.trim_end_matches(' ').len());
        s
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.cells.capacity() * std::mem::size_of::<GridCell>()
            + self.bytes.capacity()
            + self.extras.capacity() * std::mem::size_of::<Extra>()
    }
}

/// A run of text sharing one pen, ending at byte offset `end` of the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) end: u32,
    pub(crate) pen: Pen,
}

/// A line in the scrollback, borrowed from its chunk: its text (wide
/// characters once, trailing default blanks trimmed) and attribute runs
/// (none when all default).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HistoryLine<'a> {
    pub(crate) text: &'a str,
    pub(crate) spans: &'a [Span],
}

impl<'a> HistoryLine<'a> {
    /// `(text, pen)` runs covering the line.
    pub(crate) fn runs(&self) -> Vec<(&'a str, Pen)> {
        if self.spans.is_empty() {
            return vec![(self.text, Pen::default())];
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
}

/// Where one line of a chunk ends in the chunk's text and spans.
#[derive(Clone, Copy, Debug)]
struct LineEnd {
    text: u32,
    spans: u32,
}

/// Text bytes per history chunk: a 10,000-line scrollback of 80-column
/// lines fills about 25; beyond the lines kept, at most the dropped part
/// of the oldest chunk and one spare chunk are held (64 KiB).
const CHUNK_BYTES: usize = 32 * 1024;

/// Consecutive history lines packed together, so appending a line is a
/// copy into a buffer that is already there instead of an allocation.
#[derive(Clone, Debug, Default)]
struct Chunk {
    /// Number of the chunk's first line, counted as `History::pushed`.
    start: u64,
    /// The lines' texts back to back, each valid UTF-8 (bytes, so plain
    /// ASCII lines are appended without encoding each character).
    text: Vec<u8>,
    /// The lines' spans back to back.
    spans: Vec<Span>,
    /// Per line, where it ends in `text` and `spans`.
    ends: Vec<LineEnd>,
}

impl Chunk {
    /// Line `i` of this chunk.
    fn line(&self, i: usize) -> Option<HistoryLine<'_>> {
        let end = self.ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(p) => self.ends.get(p).copied()?,
            None => LineEnd { text: 0, spans: 0 },
        };
        let text = self.text.get(start.text as usize..end.text as usize)?;
        Some(HistoryLine {
            text: std::str::from_utf8(text).ok()?,
            spans: self.spans.get(start.spans as usize..end.spans as usize)?,
        })
    }

    /// Close the line whose text and spans were just appended.
    fn end_line(&mut self) {
        self.ends.push(LineEnd {
            text: u32::try_from(self.text.len()).unwrap_or(u32::MAX),
            spans: u32::try_from(self.spans.len()).unwrap_or(u32::MAX),
        });
    }

    /// Heap bytes held.
    fn heap_bytes(&self) -> usize {
        self.text.capacity()
            + self.spans.capacity() * std::mem::size_of::<Span>()
            + self.ends.capacity() * std::mem::size_of::<LineEnd>()
    }

    /// Empty it, keeping the allocations for reuse.
    fn reset(&mut self) {
        self.text.clear();
        self.spans.clear();
        self.ends.clear();
    }
}

/// Append `c` as UTF-8.
fn push_char(out: &mut Vec<u8>, c: char) {
    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
}

/// Bounded scrollback of the main screen, oldest line first.
#[derive(Clone, Debug)]
pub(crate) struct History {
    /// The lines, oldest chunk first; the first `skip` lines of the front
    /// chunk have been dropped already.
    chunks: VecDeque<Chunk>,
    /// Dropped lines at the start of the front chunk.
    skip: usize,
    /// Lines held.
    len: usize,
    /// A chunk that was dropped, kept to be refilled.
    spare: Option<Chunk>,
    /// Most lines kept.
    limit: usize,
    /// Lines ever stored in a chunk: numbers them for lookups.
    pushed: u64,
    /// Lines ever pushed (monotonic, survives clearing and trimming).
    pub(crate) total: u64,
}

impl History {
    /// An empty history keeping at most `limit` lines.
    pub(crate) fn new(limit: usize) -> History {
        History {
            chunks: VecDeque::new(),
            skip: 0,
            len: 0,
            spare: None,
            limit,
            pushed: 0,
            total: 0,
        }
    }

    /// Lines held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Line `index` (0 = oldest).
    pub(crate) fn get(&self, index: usize) -> Option<HistoryLine<'_>> {
        if index >= self.len {
            return None;
        }
        let first = self.chunks.front()?.start + self.skip as u64;
        let abs = first + index as u64;
        // The last chunk starting at or before the line.
        let n = self.chunks.partition_point(|c| c.start <= abs);
        let chunk = self.chunks.get(n.checked_sub(1)?)?;
        chunk.line(usize::try_from(abs - chunk.start).ok()?)
    }

    /// Every line, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = HistoryLine<'_>> + '_ {
        let skip = self.skip;
        self.chunks.iter().enumerate().flat_map(move |(n, c)| {
            let from = if n == 0 { skip } else { 0 };
            (from..c.ends.len()).filter_map(move |i| c.line(i))
        })
    }

    /// Append a row as a line, dropping the oldest beyond the limit.
    pub(crate) fn push(&mut self, row: &Row) {
        self.total = self.total.saturating_add(1);
        if self.limit == 0 {
            return;
        }
        if self.len >= self.limit {
            self.drop_oldest();
        }
        let used = row.used_len();
        if let Some(text) = row.ascii_text() {
            // ASCII form: the bytes are the line.
            let text = text.get(..used).unwrap_or(&[]);
            let Some(chunk) = self.chunk_with_room(text.len()) else {
                return;
            };
            chunk.text.extend_from_slice(text);
            chunk.end_line();
            self.len += 1;
            return;
        }
        let cells = row.cells().get(..used).unwrap_or(&[]);
        // Fast path for the common plain line: default pen, no wide or
        // combining characters, so the text is just the base characters.
        let plain = row.plain
            || cells.iter().all(|c| {
                c.has_default_colors_and_attrs() && c.kind() == KIND_NARROW && c.extra() == 0
            });
        // Worst case of the line's UTF-8 text: 4 bytes per character.
        let room = used * 4 * if plain { 1 } else { 1 + MAX_COMBINING };
        let Some(chunk) = self.chunk_with_room(room) else {
            return;
        };
        if plain {
            // The bulk of program output is ASCII: one byte per cell,
            // checked in the same pass (the cells are read only once).
            let line_start = chunk.text.len();
            let mut any = 0;
            chunk.text.extend(cells.iter().map(|c| {
                any |= c.code();
                c.code() as u8
            }));
            if any >= 0x80 {
                chunk.text.truncate(line_start);
                for c in cells {
                    push_char(&mut chunk.text, c.ch());
                }
            }
        } else {
            let line_start = chunk.text.len();
            let spans_start = chunk.spans.len();
            for c in cells {
                if c.kind() == KIND_SPACER {
                    continue;
                }
                push_char(&mut chunk.text, c.ch());
                if let Some(e) = row.extra_of(c) {
                    for &m in e.comb.iter().take_while(|&&m| m != '\0') {
                        push_char(&mut chunk.text, m);
                    }
                }
                let end = u32::try_from(chunk.text.len() - line_start).unwrap_or(u32::MAX);
                let pen = row.pen_of(c);
                let open = chunk.spans.len() > spans_start;
                match chunk.spans.last_mut() {
                    Some(last) if open && last.pen == pen => last.end = end,
                    _ => chunk.spans.push(Span { end, pen }),
                }
            }
            // All-default lines carry no spans at all.
            if chunk.spans.len() == spans_start + 1
                && chunk.spans.last().is_some_and(|s| s.pen == Pen::default())
            {
                chunk.spans.pop();
            }
        }
        chunk.end_line();
        self.len += 1;
    }

    /// The chunk to append the next line to, with at least `room` bytes
    /// of text capacity left (a fresh or recycled one when the last is full).
    fn chunk_with_room(&mut self, room: usize) -> Option<&mut Chunk> {
        let full = self
            .chunks
            .back()
            .is_none_or(|c| c.text.len() + room > c.text.capacity());
        if full {
            let mut chunk = self.spare.take().unwrap_or_default();
            chunk.text.reserve(CHUNK_BYTES.max(room));
            chunk.start = self.pushed;
            self.chunks.push_back(chunk);
        }
        self.pushed += 1;
        self.chunks.back_mut()
    }

    /// Forget the oldest line; a chunk whose lines are all gone is freed
    /// (or kept as the spare).
    fn drop_oldest(&mut self) {
        if self.len == 0 {
            return;
        }
        self.len -= 1;
        self.skip += 1;
        if self
            .chunks
            .front()
            .is_some_and(|c| self.skip >= c.ends.len())
        {
            self.skip = 0;
            if let Some(mut old) = self.chunks.pop_front() {
                old.reset();
                self.spare = Some(old);
            }
        }
    }

    /// Forget every line (ED 3); the total stays.
    pub(crate) fn clear(&mut self) {
        self.chunks = VecDeque::new();
        self.spare = None;
        self.skip = 0;
        self.len = 0;
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.chunks.iter().map(Chunk::heap_bytes).sum::<usize>()
            + self.spare.as_ref().map_or(0, Chunk::heap_bytes)
            + self.chunks.capacity() * std::mem::size_of::<Chunk>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editing_never_leaves_half_wide_chars() {
        let mut r = Row::new(6, Pen::default());
        r.write_char(1, '中', 2, Pen::default());
        r.write_char(4, '中', 2, Pen::default());
        r.delete(2, 1, Pen::default());
        assert_eq!(r.text(), "   中");
        r.insert(0, 1, Pen::default());
        assert_eq!(r.text(), "    中");
        r.insert(0, 1, Pen::default());
        assert_eq!(r.text(), "");
        assert!(r.cells.iter().all(|c| c.kind() == KIND_NARROW));
    }

    #[test]
    fn history_is_compact() {
        let mut h = History::new(10);
        let mut r = Row::new(10, Pen::default());
        r.write_ascii(0, b"hi", Pen::default());
        h.push(&r);
        let line = h.get(0).unwrap();
        assert_eq!(line.text, "hi");
        assert!(line.spans.is_empty());
        let red = Pen {
            bg: Color::Indexed(1),
            ..Pen::default()
        };
        r.erase(3, 5, red);
        h.push(&r);
        let line = h.get(1).unwrap();
        assert_eq!(line.text, "hi   ");
        assert_eq!(line.spans.len(), 2);
        assert_eq!(line.runs(), vec![("hi ", Pen::default()), ("  ", red)]);
    }

    #[test]
    fn history_keeps_exactly_its_limit_across_chunks() {
        let limit = 3 * CHUNK_BYTES / 100;
        let mut h = History::new(limit);
        let mut r = Row::new(100, Pen::default());
        for i in 0..limit * 5 {
            let text = format!("{i:0100}");
            r.write_ascii(0, text.as_bytes(), Pen::default());
            h.push(&r);
            assert_eq!(h.len(), (i + 1).min(limit));
        }
        assert_eq!(h.total, limit as u64 * 5);
        let first = limit * 4;
        for (i, line) in h.iter().enumerate() {
            assert_eq!(line.text, format!("{:0100}", first + i));
            assert_eq!(h.get(i).map(|l| l.text), Some(line.text));
        }
        assert!(h.get(limit).is_none());
        // Lines of the dropped chunks are not held: about the limit's
        // worth of text plus at most two chunks.
        assert!(h.heap_bytes() < limit * 100 + 3 * CHUNK_BYTES + 64 * 1024);
        h.clear();
        assert_eq!((h.len(), h.iter().count()), (0, 0));
    }

    #[test]
    fn extras_stay_bounded_and_attached_to_their_cells() {
        let mut r = Row::new(4, Pen::default());
        let ul = Pen {
            underline_color: Color::Indexed(3),
            ..Pen::default()
        };
        // Rewriting the same cells over and over reuses or compacts entries.
        for i in 0..1000u32 {
            let x = (i % 4) as usize;
            r.write_char(x, 'a', 1, ul);
            r.combine(x, '\u{301}');
            if i % 3 == 0 {
                r.write_char(x, 'b', 1, Pen::default());
                r.combine(x, '\u{302}');
            }
            assert!(r.extras.len() <= 4 + EXTRAS_SLACK);
        }
        r.write_char(0, 'x', 1, ul);
        r.combine(0, '\u{303}');
        r.write_char(1, 'y', 1, Pen::default());
        let c = r.view(0).unwrap();
        assert_eq!((c.text(), c.pen()), ("x\u{303}".to_string(), ul));
        assert_eq!(r.view(1).unwrap().text(), "y");
        r.delete(0, 1, Pen::default());
        assert_eq!(r.view(0).unwrap().text(), "y");
        r.insert(0, 1, Pen::default());
        assert_eq!(r.view(1).unwrap().text(), "y");
        r.clear(Pen::default());
        assert!(r.extras.is_empty());
    }
}
