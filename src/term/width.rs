//! Display width of a character in terminal columns (0, 1 or 2).
//!
//! Owns the lookup only; the data lives in the generated `width_table.rs`
//! (regenerate with `python3 tools/gen-width-table.py > src/term/width_table.rs`),
//! so the answer never depends on the C library or the locale.

use super::width_table::{DOUBLE_WIDTH, ZERO_WIDTH};

/// Unicode version the width table was generated from.
pub const UNICODE_VERSION: &str = super::width_table::UNICODE_VERSION;

/// First code point that can have a width other than 1 (U+0300 COMBINING
/// GRAVE ACCENT; U+00AD, the only earlier format character, is kept at 1
/// like glibc does), so everything below skips the search.
const FIRST_NON_SINGLE: u32 = 0x300;

/// Code points per block of [`SINGLE_BLOCKS`].
const BLOCK: u32 = 64;
/// Blocks of the Basic Multilingual Plane, where nearly all text is.
const BMP_BLOCKS: usize = 0x10000 / BLOCK as usize;

/// One bit per 64-code-point block of the BMP, set when no range of either
/// table touches the block, so every character in it is 1 column: box
/// drawing, most scripts and symbols skip both searches (they were a
/// seventh of the model's time on full-screen output). Computed from the
/// tables at compile time.
static SINGLE_BLOCKS: [u64; BMP_BLOCKS / 64] = single_blocks();

/// See [`SINGLE_BLOCKS`].
const fn single_blocks() -> [u64; BMP_BLOCKS / 64] {
    let mut bits = [u64::MAX; BMP_BLOCKS / 64];
    let tables = [ZERO_WIDTH, DOUBLE_WIDTH];
    let mut t = 0;
    while t < tables.len() {
        let mut i = 0;
        while i < tables[t].len() {
            let (lo, hi) = tables[t][i];
            let mut b = lo / BLOCK;
            while b <= hi / BLOCK && (b as usize) < BMP_BLOCKS {
                bits[b as usize / 64] &= !(1 << (b % 64));
                b += 1;
            }
            i += 1;
        }
        t += 1;
    }
    bits
}

/// Columns `c` occupies: 0 for combining/format characters, 2 for wide
/// (East Asian W/F) characters, 1 otherwise. Control characters are 1 here;
/// the parser never prints them.
pub fn char_width(c: char) -> u8 {
    let cp = c as u32;
    if cp < FIRST_NON_SINGLE {
        return 1;
    }
    let block = (cp / BLOCK) as usize;
    if SINGLE_BLOCKS
        .get(block / 64)
        .is_some_and(|w| w & (1 << (block % 64)) != 0)
    {
        return 1;
    }
    if in_ranges(DOUBLE_WIDTH, cp) {
        2
    } else if in_ranges(ZERO_WIDTH, cp) {
        0
    } else {
        1
    }
}

/// Binary search of sorted, disjoint inclusive ranges.
fn in_ranges(ranges: &[(u32, u32)], cp: u32) -> bool {
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        assert_eq!(char_width('a'), 1);
        assert_eq!(char_width('\u{e9}'), 1);
        assert_eq!(char_width('\u{301}'), 0);
        assert_eq!(char_width('\u{200b}'), 0);
        assert_eq!(char_width('\u{200d}'), 0);
        assert_eq!(char_width('\u{4e2d}'), 2);
        assert_eq!(char_width('\u{ff21}'), 2);
        assert_eq!(char_width('\u{1f600}'), 2);
        assert_eq!(char_width('\u{2500}'), 1);
        assert_eq!(char_width('\u{ad}'), 1);
        assert_eq!(char_width('\u{10ffff}'), 1);
        assert!(!UNICODE_VERSION.is_empty());
    }

    #[test]
    fn block_shortcut_agrees_with_the_tables() {
        for cp in 0..0x11000 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let want = if in_ranges(DOUBLE_WIDTH, cp) {
                2
            } else if cp >= FIRST_NON_SINGLE && in_ranges(ZERO_WIDTH, cp) {
                0
            } else {
                1
            };
            assert_eq!(char_width(c), want, "U+{cp:04X}");
        }
        // Box drawing, the bulk of full-screen programs' non-ASCII, takes it.
        let block = 0x2500 / BLOCK as usize;
        assert!(SINGLE_BLOCKS[block / 64] & (1 << (block % 64)) != 0);
    }

    #[test]
    fn tables_sorted_and_disjoint() {
        for t in [ZERO_WIDTH, DOUBLE_WIDTH] {
            for w in t.windows(2) {
                assert!(w[0].0 <= w[0].1 && w[0].1 < w[1].0);
            }
        }
    }
}
