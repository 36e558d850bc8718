//! One screen cell and the graphic rendition ("pen") it was drawn with.
//!
//! Owns the value types shared by the grid, the history and the renderer:
//! [`Color`], [`Pen`] (SGR attributes) and [`Cell`], plus the canonical SGR
//! encoding of a pen.

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

/// One character cell of the grid.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cell {
    pub(crate) ch: char,
    pub(crate) comb: [char; MAX_COMBINING],
    pub(crate) pen: Pen,
    pub(crate) kind: u8,
}

impl Default for Cell {
    fn default() -> Cell {
        Cell::blank(Pen::default())
    }
}

impl Cell {
    /// A space drawn with `pen`.
    pub(crate) const fn blank(pen: Pen) -> Cell {
        Cell {
            ch: ' ',
            comb: ['\0'; MAX_COMBINING],
            pen,
            kind: KIND_NARROW,
        }
    }

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
        self.push_text(&mut s);
        s
    }

    /// Append [`Cell::text`] to `out`.
    pub(crate) fn push_text(&self, out: &mut String) {
        if self.kind != KIND_SPACER {
            out.push(self.ch);
            out.extend(self.combining());
        }
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
    fn cell_size_is_compact() {
        assert!(std::mem::size_of::<Cell>() <= 28);
    }
}
