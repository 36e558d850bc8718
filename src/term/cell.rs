//! One screen cell and the graphic rendition ("pen") it was drawn with.
//!
//! Owns the value types shared by the grid, the history and the renderer:
//! [`Color`], [`Pen`] (SGR attributes), [`Cell`] (a cell as the API reports
//! it) and `GridCell` with its `Extra` (a cell as the grid stores it), plus
//! the canonical SGR encoding of a pen.

use std::fmt::Write as _;

/// A colour as programs select it with SGR.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub enum Color {
    /// The terminal's default foreground or background.
    #[default]
    Default,
    /// A palette entry: 0-7 (SGR 30-37), 8-15 (SGR 90-97) or 16-255 (38;5;n).
    Indexed(u8),
    /// A 24-bit colour (SGR 38;2;r;g;b).
    Rgb(u8, u8, u8),
}

/// Bold (SGR 1).
pub const ATTR_BOLD: u16 = 1 << 0;
/// Faint / dim (SGR 2).
pub const ATTR_DIM: u16 = 1 << 1;
/// Italic (SGR 3).
pub const ATTR_ITALIC: u16 = 1 << 2;
/// Blinking (SGR 5 or 6).
pub const ATTR_BLINK: u16 = 1 << 3;
/// Reverse video (SGR 7).
pub const ATTR_INVERSE: u16 = 1 << 4;
/// Invisible (SGR 8).
pub const ATTR_HIDDEN: u16 = 1 << 5;
/// Crossed out (SGR 9).
pub const ATTR_STRIKE: u16 = 1 << 6;
/// Overlined (SGR 53).
pub const ATTR_OVERLINE: u16 = 1 << 7;
/// Bit position of the 3-bit underline style inside [`Pen::attrs`].
pub const UNDERLINE_SHIFT: u16 = 8;
/// Mask of the underline style: 0 none, 1 single, 2 double, 3 curly,
/// 4 dotted, 5 dashed (the SGR 4:n numbering).
pub const UNDERLINE_MASK: u16 = 0b111 << UNDERLINE_SHIFT;
/// Highest underline style number SGR 4:n defines.
pub const UNDERLINE_MAX_STYLE: u16 = 5;

/// Graphic rendition: colours and attributes a cell is drawn with.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub struct Pen {
    /// Foreground colour.
    pub fg: Color,
    /// Background colour.
    pub bg: Color,
    /// Underline colour (SGR 58), `Default` meaning "same as foreground".
    pub underline_color: Color,
    /// `ATTR_*` bits plus the underline style under [`UNDERLINE_MASK`].
    pub attrs: u16,
}

impl Pen {
    /// The underline style number (0 = no underline, 1 = single, ...).
    pub fn underline(&self) -> u16 {
        (self.attrs & UNDERLINE_MASK) >> UNDERLINE_SHIFT
    }

    /// Set the underline style (values above 5 are clamped to single).
    pub fn set_underline(&mut self, style: u16) {
        let style = if style > UNDERLINE_MAX_STYLE {
            1
        } else {
            style
        };
        self.attrs = (self.attrs & !UNDERLINE_MASK) | (style << UNDERLINE_SHIFT);
    }

    /// The pen erase operations fill with: only the background survives
    /// (background colour erase, as xterm and tmux do).
    pub fn erase_pen(&self) -> Pen {
        Pen {
            bg: self.bg,
            ..Pen::default()
        }
    }

    /// Append the SGR parameters selecting this pen from a reset state,
    /// starting with `0` (so `ESC [` + this + `m` is a complete sequence).
    pub fn write_sgr_params(&self, out: &mut String) {
        out.push('0');
        const FLAGS: [(u16, &str); 7] = [
            (ATTR_BOLD, "1"),
            (ATTR_DIM, "2"),
            (ATTR_ITALIC, "3"),
            (ATTR_BLINK, "5"),
            (ATTR_INVERSE, "7"),
            (ATTR_HIDDEN, "8"),
            (ATTR_STRIKE, "9"),
        ];
        for (bit, code) in FLAGS {
            if self.attrs & bit != 0 {
                out.push(';');
                out.push_str(code);
            }
        }
        match self.underline() {
            0 => {}
            1 => out.push_str(";4"),
            n => {
                let _ = write!(out, ";4:{n}");
            }
        }
        if self.attrs & ATTR_OVERLINE != 0 {
            out.push_str(";53");
        }
        write_color(out, self.fg, 30, 90, "38");
        write_color(out, self.bg, 40, 100, "48");
        match self.underline_color {
            Color::Default => {}
            Color::Indexed(n) => {
                let _ = write!(out, ";58:5:{n}");
            }
            Color::Rgb(r, g, b) => {
                let _ = write!(out, ";58:2::{r}:{g}:{b}");
            }
        }
    }
}

/// Number of colours reachable through the short SGR forms (30-37 / 90-97).
const BASIC_COLORS: u8 = 8;

/// Append `;<colour>` in the shortest form xterm understands.
fn write_color(out: &mut String, c: Color, base: u8, bright_base: u8, ext: &str) {
    let _ = match c {
        Color::Default => Ok(()),
        Color::Indexed(n) if n < BASIC_COLORS => write!(out, ";{}", base + n),
        Color::Indexed(n) if n < 2 * BASIC_COLORS => {
            write!(out, ";{}", bright_base + (n - BASIC_COLORS))
        }
        Color::Indexed(n) => write!(out, ";{ext};5;{n}"),
        Color::Rgb(r, g, b) => write!(out, ";{ext};2;{r};{g};{b}"),
    };
}

/// Cell kind: an ordinary (narrow) character.
pub(crate) const KIND_NARROW: u8 = 0;
/// Cell kind: the left half of a double-width character.
pub(crate) const KIND_WIDE: u8 = 1;
/// Cell kind: the right half of a double-width character (no text of its own).
pub(crate) const KIND_SPACER: u8 = 2;

/// Combining characters kept per cell; further ones are dropped (tmux
/// keeps more, but two covers accents plus a variation selector).
pub const MAX_COMBINING: usize = 2;

/// One character cell as the API reports it: the character with its
/// combining characters and the full pen. The grid stores cells more
/// compactly (see [`GridCell`]); this is the resolved view.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cell {
    pub(crate) ch: char,
    pub(crate) comb: [char; MAX_COMBINING],
    pub(crate) pen: Pen,
    pub(crate) kind: u8,
}

impl Default for Cell {
    fn default() -> Cell {
        Cell {
            ch: ' ',
            comb: ['\0'; MAX_COMBINING],
            pen: Pen::default(),
            kind: KIND_NARROW,
        }
    }
}

impl Cell {
    /// The base character (a space for blanks and for wide-char spacers).
    pub fn ch(&self) -> char {
        self.ch
    }

    /// Combining characters attached to the base character.
    pub fn combining(&self) -> impl Iterator<Item = char> + '_ {
        self.comb.iter().copied().take_while(|&c| c != '\0')
    }

    /// Base character plus combining characters; empty for a spacer.
    pub fn text(&self) -> String {
        let mut s = String::new();
        if self.kind != KIND_SPACER {
            s.push(self.ch);
            s.extend(self.combining());
        }
        s
    }

    /// The rendition the cell was drawn with.
    pub fn pen(&self) -> Pen {
        self.pen
    }

    /// True for the left half of a double-width character.
    pub fn is_wide(&self) -> bool {
        self.kind == KIND_WIDE
    }

    /// True for the right half of a double-width character.
    pub fn is_spacer(&self) -> bool {
        self.kind == KIND_SPACER
    }

    /// True for a space with the default pen (what an untouched cell holds).
    pub fn is_default_blank(&self) -> bool {
        self.ch == ' '
            && self.kind == KIND_NARROW
            && self.comb[0] == '\0'
            && self.pen == Pen::default()
    }
}

/// One cell as the grid stores it: 16 bytes (the resolved [`Cell`] is 28).
/// Every byte a program prints is written to a cell and copied into the
/// history when its line scrolls off, so the cell size is the model's
/// memory traffic. The rare parts of a cell, combining characters and an
/// underline colour, live in its row's side table ([`Extra`]).
///
/// The fields are packed into two words so that writing a cell is two
/// stores (with named fields and the `Color` enum the compiler stored
/// each field separately, five per cell, in the model's hottest loop):
/// * `char_fg`: the base character (a space for blanks and spacers) in
///   bits 0-31, the packed foreground colour ([`pack_color`]) in 32-63;
/// * `bg_meta`: the packed background colour in bits 0-31, the pen's
///   `attrs` in 32-43, the `KIND_*` in 44-47, and in 48-63 one plus the
///   index of the cell's [`Extra`] in its row (0: none). An extra belongs
///   to one cell only (never shared), so it can be changed in place.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct GridCell {
    char_fg: u64,
    bg_meta: u64,
}

/// Where the pen's `attrs` start in [`GridCell`]'s `bg_meta`.
const ATTRS_SHIFT: u32 = 32;
/// The pen's `attrs` bits (`ATTR_*` and the underline style: 12 bits).
const ATTRS_MASK: u16 = 0xfff;
/// Where the cell kind starts in `bg_meta`.
const KIND_SHIFT: u32 = 44;
/// Where the extra index starts in `bg_meta`.
const EXTRA_SHIFT: u32 = 48;

/// The rare parts of a cell, kept in a side table of its row.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Extra {
    /// Combining characters, `'\0'`-padded.
    pub(crate) comb: [char; MAX_COMBINING],
    /// Underline colour (SGR 58).
    pub(crate) underline_color: Color,
}

impl Extra {
    /// Attach a combining character; false when there is no room left.
    pub(crate) fn add_combining(&mut self, c: char) -> bool {
        for slot in self.comb.iter_mut() {
            if *slot == '\0' {
                *slot = c;
                return true;
            }
        }
        false
    }
}

impl GridCell {
    /// A space drawn with `pen`, ignoring its underline colour (the
    /// caller stores that as an [`Extra`] when it matters; erase pens
    /// never carry one).
    pub(crate) const fn blank(pen: Pen) -> GridCell {
        GridCell {
            char_fg: ' ' as u64 | (pack_color(pen.fg) as u64) << 32,
            bg_meta: pack_color(pen.bg) as u64 | ((pen.attrs & ATTRS_MASK) as u64) << ATTRS_SHIFT,
        }
    }

    /// This cell with `c` as its character.
    pub(crate) const fn with_char(self, c: char) -> GridCell {
        GridCell {
            char_fg: (self.char_fg & !0xffff_ffff) | c as u64,
            bg_meta: self.bg_meta,
        }
    }

    /// The base character.
    pub(crate) fn ch(&self) -> char {
        char::from_u32(self.char_fg as u32).unwrap_or(' ')
    }

    /// The base character's code point (cheaper than [`GridCell::ch`]).
    pub(crate) fn code(&self) -> u32 {
        self.char_fg as u32
    }

    /// Set the base character.
    pub(crate) fn set_ch(&mut self, c: char) {
        *self = self.with_char(c);
    }

    /// Foreground colour.
    pub(crate) fn fg(&self) -> Color {
        unpack_color((self.char_fg >> 32) as u32)
    }

    /// Background colour.
    pub(crate) fn bg(&self) -> Color {
        unpack_color(self.bg_meta as u32)
    }

    /// The pen's `attrs` bits.
    pub(crate) fn attrs(&self) -> u16 {
        (self.bg_meta >> ATTRS_SHIFT) as u16 & ATTRS_MASK
    }

    /// The cell kind (`KIND_*`).
    pub(crate) fn kind(&self) -> u8 {
        (self.bg_meta >> KIND_SHIFT) as u8 & 0xf
    }

    /// Set the cell kind.
    pub(crate) fn set_kind(&mut self, kind: u8) {
        self.bg_meta = (self.bg_meta & !(0xf << KIND_SHIFT)) | u64::from(kind & 0xf) << KIND_SHIFT;
    }

    /// One plus the index of the cell's extra, or 0.
    pub(crate) fn extra(&self) -> u16 {
        (self.bg_meta >> EXTRA_SHIFT) as u16
    }

    /// Set the extra index (see [`GridCell::extra`]).
    pub(crate) fn set_extra(&mut self, extra: u16) {
        self.bg_meta = (self.bg_meta & !(0xffff << EXTRA_SHIFT)) | u64::from(extra) << EXTRA_SHIFT;
    }

    /// True when fg, bg and attrs are the defaults (the underline colour,
    /// kept in the extra, is not looked at).
    pub(crate) fn has_default_colors_and_attrs(&self) -> bool {
        self.char_fg >> 32 == u64::from(PACKED_DEFAULT)
            && self.bg_meta as u32 == PACKED_DEFAULT
            && self.attrs() == 0
    }
}

/// [`Color::Default`] packed.
const PACKED_DEFAULT: u32 = 0;
/// Tag of a packed [`Color::Indexed`] (above the 24 colour bits).
const PACKED_INDEXED: u32 = 1 << 24;
/// Tag of a packed [`Color::Rgb`].
const PACKED_RGB: u32 = 2 << 24;

/// A colour as a u32: a tag in the top byte, the value below.
const fn pack_color(c: Color) -> u32 {
    match c {
        Color::Default => PACKED_DEFAULT,
        Color::Indexed(n) => PACKED_INDEXED | n as u32,
        Color::Rgb(r, g, b) => PACKED_RGB | (r as u32) << 16 | (g as u32) << 8 | b as u32,
    }
}

/// The colour [`pack_color`] packed.
fn unpack_color(v: u32) -> Color {
    let byte = |shift: u32| (v >> shift) as u8;
    match v & !0xff_ffff {
        PACKED_INDEXED => Color::Indexed(byte(0)),
        PACKED_RGB => Color::Rgb(byte(16), byte(8), byte(0)),
        _ => Color::Default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgr_encoding() {
        let mut p = Pen::default();
        p.attrs |= ATTR_BOLD | ATTR_OVERLINE;
        p.set_underline(3);
        p.fg = Color::Indexed(9);
        p.bg = Color::Rgb(1, 2, 3);
        p.underline_color = Color::Indexed(200);
        let mut s = String::new();
        p.write_sgr_params(&mut s);
        assert_eq!(s, "0;1;4:3;53;91;48;2;1;2;3;58:5:200");
    }

    #[test]
    fn colors_pack_losslessly() {
        for c in [
            Color::Default,
            Color::Indexed(0),
            Color::Indexed(255),
            Color::Rgb(0, 0, 0),
            Color::Rgb(255, 1, 128),
        ] {
            assert_eq!(unpack_color(pack_color(c)), c);
        }
    }

    #[test]
    fn stored_cell_is_16_bytes_and_round_trips() {
        assert_eq!(std::mem::size_of::<GridCell>(), 16);
        // Every pen attribute bit fits below the kind bits.
        assert_eq!(UNDERLINE_MASK | ATTR_OVERLINE | 0x7f, UNDERLINE_MASK | 0xff);
        assert_eq!(ATTRS_MASK & (UNDERLINE_MASK | 0xff), UNDERLINE_MASK | 0xff);
        assert!(u32::from(ATTRS_MASK).count_ones() <= KIND_SHIFT - ATTRS_SHIFT);
        let pen = Pen {
            fg: Color::Rgb(1, 2, 3),
            bg: Color::Indexed(200),
            underline_color: Color::Default,
            attrs: ATTR_BOLD | ATTR_OVERLINE | UNDERLINE_MASK,
        };
        let mut c = GridCell::blank(pen).with_char('\u{10ffff}');
        c.set_kind(KIND_SPACER);
        c.set_extra(u16::MAX);
        assert_eq!(
            (c.ch(), c.fg(), c.bg(), c.attrs()),
            ('\u{10ffff}', pen.fg, pen.bg, pen.attrs)
        );
        assert_eq!((c.kind(), c.extra()), (KIND_SPACER, u16::MAX));
        c.set_kind(KIND_WIDE);
        c.set_extra(0);
        assert_eq!((c.kind(), c.extra(), c.attrs()), (KIND_WIDE, 0, pen.attrs));
    }
}
