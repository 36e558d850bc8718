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

/// Columns `c` occupies: 0 for combining/format characters, 2 for wide
/// (East Asian W/F) characters, 1 otherwise. Control characters are 1 here;
/// the parser never prints them.
pub fn char_width(c: char) -> u8 {
    let cp = c as u32;
    if cp < FIRST_NON_SINGLE {
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
    fn tables_sorted_and_disjoint() {
        for t in [ZERO_WIDTH, DOUBLE_WIDTH] {
            for w in t.windows(2) {
                assert!(w[0].0 <= w[0].1 && w[0].1 < w[1].0);
            }
        }
    }
}
