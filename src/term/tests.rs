//! Unit tests of the emulator's tricky corners.

use super::*;

fn term(rows: u16, cols: u16) -> Terminal {
    Terminal::new(rows, cols, 100)
}

fn feed(t: &mut Terminal, s: &str) {
    t.feed(s.as_bytes());
}

#[test]
fn pending_wrap() {
    let mut t = term(3, 5);
    feed(&mut t, "abcde");
    assert_eq!(
        t.cursor(),
        CursorPos {
            x: 4,
            y: 0,
            pending_wrap: true
        }
    );
    feed(&mut t, "\rX");
    assert_eq!(t.screen_text(), ["Xbcde", "", ""]);
    feed(&mut t, "\x1b[1;5HYZ");
    assert_eq!(t.screen_text(), ["XbcdY", "Z", ""]);
    feed(&mut t, "\x1b[?7l\x1b[3;1Habcdefg");
    assert_eq!(t.screen_text()[2], "abcdg");
    assert!(!t.cursor().pending_wrap);
}

#[test]
fn backspace_from_pending_wrap_is_xterm_like() {
    let mut t = term(2, 5);
    feed(&mut t, "abcde\x08X");
    assert_eq!(t.screen_text()[0], "abcXe");
}

#[test]
fn wide_char_at_last_column_wraps() {
    let mut t = term(3, 5);
    feed(&mut t, "abcd中");
    assert_eq!(t.screen_text(), ["abcd", "中", ""]);
    assert_eq!(
        t.cursor(),
        CursorPos {
            x: 2,
            y: 1,
            pending_wrap: false
        }
    );
    feed(&mut t, "\x1b[1;1H中中");
    assert!(t.cursor().pending_wrap || t.cursor().x == 4);
    // Overwriting half a wide char blanks the other half.
    feed(&mut t, "\x1b[1;2Hx");
    assert_eq!(t.screen_text()[0], " x中");
    let mut t = term(2, 4);
    feed(&mut t, "ab中");
    assert_eq!(
        t.cursor(),
        CursorPos {
            x: 3,
            y: 0,
            pending_wrap: true
        }
    );
    let r = t.render();
    let mut u = term(2, 4);
    u.feed(&r);
    assert_eq!(u.cursor(), t.cursor());
}

#[test]
fn combining_chars() {
    let mut t = term(2, 4);
    feed(&mut t, "e\u{301}\u{302}\u{303}中\u{308}");
    let c = t.cell(0, 0).unwrap();
    assert_eq!(c.text(), "e\u{301}\u{302}");
    assert_eq!(t.cell(0, 1).unwrap().text(), "中\u{308}");
    assert_eq!(t.text_lines(), ["e\u{301}\u{302}中\u{308}"]);
    // At the pending-wrap position it attaches to the last cell.
    feed(&mut t, "\r\nabcd\u{301}");
    assert_eq!(t.cell(1, 3).unwrap().text(), "d\u{301}");
}

#[test]
fn alt_screen_1049_round_trip() {
    let mut t = term(3, 10);
    feed(&mut t, "main\x1b[31m\x1b[2;3H\x1b[?1049h");
    assert!(t.alternate_screen_active());
    assert_eq!(t.screen_text(), ["", "", ""]);
    feed(&mut t, "\x1b[0m\x1b[Halt\x1b[3;1H");
    feed(&mut t, "\x1b[?1049l");
    assert!(!t.alternate_screen_active());
    assert_eq!(t.screen_text(), ["main", "", ""]);
    assert_eq!(
        t.cursor(),
        CursorPos {
            x: 2,
            y: 1,
            pending_wrap: false
        }
    );
    assert_eq!(t.pen().fg, Color::Indexed(1));
    // 1047 does not restore the cursor.
    feed(&mut t, "\x1b[?1047hxy\x1b[?1047l");
    assert_eq!(t.cursor().x, 4);
    assert_eq!(t.screen_text(), ["main", "", ""]);
}

#[test]
fn scroll_region_insert_delete_lines() {
    let mut t = term(5, 3);
    feed(&mut t, "1\r\n2\r\n3\r\n4\r\n5");
    feed(&mut t, "\x1b[2;4r\x1b[3;1H\x1b[L");
    assert_eq!(t.screen_text(), ["1", "2", "", "3", "5"]);
    feed(&mut t, "\x1b[2M");
    assert_eq!(t.screen_text(), ["1", "2", "", "", "5"]);
    // Scrolling inside a region that does not start at the top keeps
    // history untouched.
    feed(&mut t, "\x1b[4;1Ha\nb\nc");
    assert_eq!(t.history_len(), 0);
    assert_eq!(t.screen_text(), ["1", "a", " b", "  c", "5"]);
}

#[test]
fn split_utf8_across_feeds() {
    let mut t = term(1, 10);
    let bytes = "é中😀".as_bytes();
    for b in bytes {
        t.feed(std::slice::from_ref(b));
    }
    assert_eq!(t.screen_text(), ["é中😀"]);
    t.feed(b"\xff\xe4\xb8");
    t.feed(b"x");
    assert_eq!(t.screen_text(), ["é中😀\u{fffd}\u{fffd}x"]);
}

#[test]
fn scrollback_and_ed3() {
    let mut t = Terminal::new(2, 5, 3);
    for i in 0..10 {
        feed(&mut t, &format!("l{i}\r\n"));
    }
    assert_eq!(t.history_len(), 3);
    assert_eq!(t.lines_scrolled_off(), 9);
    assert_eq!(t.text_lines(), ["l6", "l7", "l8", "l9"]);
    feed(&mut t, "\x1b[3J");
    assert_eq!(t.history_len(), 0);
    assert_eq!(t.lines_scrolled_off(), 9);
}

#[test]
fn sgr_forms() {
    let mut t = term(1, 5);
    feed(&mut t, "\x1b[1;4:3;38:2::1:2:3;48;5;200;58:5:9m");
    let p = t.pen();
    assert_eq!(p.fg, Color::Rgb(1, 2, 3));
    assert_eq!(p.bg, Color::Indexed(200));
    assert_eq!(p.underline_color, Color::Indexed(9));
    assert_eq!(p.underline(), 3);
    assert!(p.attrs & ATTR_BOLD != 0);
    feed(&mut t, "\x1b[38:2:4:5:6;22;24;91m");
    let p = t.pen();
    assert_eq!(p.fg, Color::Indexed(9));
    assert_eq!(p.attrs, 0);
    feed(&mut t, "\x1b[38;2;7;8;9m");
    assert_eq!(t.pen().fg, Color::Rgb(7, 8, 9));
}

#[test]
fn erase_uses_background() {
    let mut t = term(2, 4);
    feed(&mut t, "\x1b[44;1mab\x1b[K");
    let c = t.cell(0, 3).unwrap();
    assert_eq!(c.pen().bg, Color::Indexed(4));
    assert_eq!(c.pen().attrs, 0);
}

#[test]
fn tabs() {
    let mut t = term(1, 20);
    feed(&mut t, "\tx\x1b[3g\x1b[1;4H\x1bH\rA\tB\x1b[Z\x1b[ZC");
    assert_eq!(t.screen_text(), ["C  B    x"]);
    assert_eq!(t.tab_stops(), [3]);
}

#[test]
fn render_round_trip_basic() {
    let mut t = Terminal::new(4, 10, 50);
    feed(
        &mut t,
        "\x1b]2;hello\x07\x1b[?1h\x1b=\x1b[?2004h\x1b[?1002h\x1b[?1006h\x1b[5 q",
    );
    for i in 0..8 {
        feed(&mut t, &format!("\x1b[3{}mline {i} 中\r\n", i % 8));
    }
    feed(&mut t, "\x1b[2;3r\x1b[?6h\x1b[2;1H\x1b(0q\x1b[?25l");
    let r = t.render();
    let mut u = Terminal::new(4, 10, 50);
    u.feed(&r);
    assert_eq!(u.screen_text(), t.screen_text());
    assert_eq!(u.text_lines(), t.text_lines());
    assert_eq!(u.modes(), t.modes());
    assert_eq!(u.cursor(), t.cursor());
    assert_eq!(u.pen(), t.pen());
    assert_eq!(u.title(), "hello");
    assert_eq!(u.scroll_region(), t.scroll_region());
    for i in 0..t.history_len() {
        assert_eq!(u.history_runs(i), t.history_runs(i));
    }
}

#[test]
fn resize_keeps_cursor_in_range() {
    let mut t = Terminal::new(5, 10, 100);
    feed(&mut t, "a\r\nb\r\nc\r\nd\r\ne");
    t.resize(3, 4);
    assert_eq!(t.size(), (3, 4));
    assert_eq!(t.screen_text(), ["c", "d", "e"]);
    assert_eq!(t.history_len(), 2);
    t.resize(5, 4);
    assert_eq!(t.screen_text(), ["c", "d", "e", "", ""]);
    assert_eq!(t.history_line(1).as_deref(), Some("b"));
    assert_eq!(t.main_row_text(2).as_deref(), Some("e"));
    t.resize(0, 0);
    assert_eq!(t.size(), (1, 1));
    feed(&mut t, "中xyz\x1b[5;5H");
    assert_eq!(t.cursor().x, 0);
}

/// Behaviours where tmux (the golden oracle) deviates from xterm, so they
/// are checked here instead of in tests/vt.
#[test]
fn xterm_behaviours_tmux_lacks() {
    // CUB from the pending-wrap position: one left of the last column.
    let mut t = term(2, 5);
    feed(&mut t, "abcde\x1b[DX");
    assert_eq!(t.screen_text()[0], "abcXe");
    // LF cancels the pending wrap (xterm CursorDown resets it).
    let mut t = term(3, 5);
    feed(&mut t, "abcde\nX");
    assert_eq!(t.screen_text(), ["abcde", "    X", ""]);
    // EL at the pending-wrap position erases the last column.
    let mut t = term(2, 5);
    feed(&mut t, "abcde\x1b[KX");
    assert_eq!(t.screen_text(), ["abcdX", ""]);
    // ?1048 saves and restores the cursor.
    let mut t = term(5, 10);
    feed(&mut t, "\x1b[2;3H\x1b[?1048h\x1b[5;5H\x1b[?1048lX");
    assert_eq!(t.screen_text()[1], "  X");
    // DECSTR resets modes, margins and pen but keeps the screen.
    let mut t = term(5, 10);
    feed(
        &mut t,
        "keep\x1b[?25l\x1b[4h\x1b[2;4r\x1b[?6h\x1b[1;31m\x1b[?1h\x1b=\x1b[!p",
    );
    let m = t.modes();
    assert!(m.cursor_visible && !m.insert && !m.origin && !m.cursor_keys_app && !m.keypad_app);
    assert_eq!(t.scroll_region(), (0, 4));
    assert_eq!(t.pen(), Pen::default());
    assert_eq!(t.screen_text()[0], "keep");
    // IL outside the scroll region does nothing.
    let mut t = term(4, 3);
    feed(&mut t, "a\r\nb\r\nc\r\nd\x1b[1;2r\x1b[4;1H\x1b[L");
    assert_eq!(t.screen_text(), ["a", "b", "c", "d"]);
    // REP repeats non-ASCII characters too.
    let mut t = term(1, 10);
    feed(&mut t, "中\x1b[2b");
    assert_eq!(t.screen_text(), ["中中中"]);
    // HPR and VPR.
    let mut t = term(5, 10);
    feed(&mut t, "\x1b[2a\x1b[2eX");
    assert_eq!(t.screen_text()[2], "  X");
}

#[test]
fn mouse_and_encoding_modes() {
    let mut t = term(2, 5);
    feed(&mut t, "\x1b[?9h");
    assert_eq!(t.modes().mouse, MouseTracking::X10);
    feed(&mut t, "\x1b[?1003h\x1b[?1015h\x1b[?1004h\x1b[?12h\x1b[3 q");
    let m = t.modes();
    assert_eq!(m.mouse, MouseTracking::AnyEvent);
    assert_eq!(m.mouse_encoding, MouseEncoding::Urxvt);
    assert!(m.focus_events && m.cursor_blink);
    assert_eq!(m.cursor_style, 3);
    let mut u = term(2, 5);
    u.feed(&t.render());
    assert_eq!(u.modes(), t.modes());
    feed(&mut t, "\x1b[?1000l\x1b[?1006l");
    assert_eq!(t.modes().mouse, MouseTracking::Off);
    assert_eq!(t.modes().mouse_encoding, MouseEncoding::Default);
}

#[test]
fn alt_screen_render_keeps_main_and_saved_cursor() {
    let mut t = term(4, 10);
    feed(
        &mut t,
        "main1\r\nmain2\x1b[33m\x1b[?1049h\x1b[0mALT\x1b[2;2H\x1b7\x1b[4;4H",
    );
    let mut u = term(4, 10);
    u.feed(&t.render());
    assert!(u.alternate_screen_active());
    assert_eq!(u.screen_text(), t.screen_text());
    assert_eq!(u.cursor(), t.cursor());
    feed(&mut t, "\x1b8Y\x1b[?1049l");
    feed(&mut u, "\x1b8Y\x1b[?1049l");
    assert_eq!(u.screen_text(), ["main1", "main2", "", ""]);
    assert_eq!(u.cursor(), t.cursor());
    assert_eq!(u.pen(), t.pen());
}

#[test]
fn osc_title_is_sanitised_and_bounded() {
    let mut t = term(1, 5);
    t.feed(b"\x1b]2;a\xc3\xa9\x01b\x1b\\");
    assert_eq!(t.title(), "aéb");
    let long = format!("\x1b]0;{}\x07", "x".repeat(MAX_TITLE_CHARS * 2));
    feed(&mut t, &long);
    assert_eq!(t.title().chars().count(), MAX_TITLE_CHARS);
}

/// Rows holding only plain ASCII are kept as bytes until an edit needs
/// cells (see `grid::Row`); every edit must read and render the same in
/// both forms.
#[test]
fn plain_ascii_rows_behave_like_cell_rows() {
    const EDITS: &[&str] = &[
        "hello world",
        "hello world\x1b[5G\x1b[K",
        "hello world\x1b[3GAB\x1b[1K",
        "abc\x1b[8Gxyz",
        "abc\x1b[8Gxyz\x1b[2K",
        "0123456789ab\x1b[3G\x1b[X\x1b[6G\x1b[3X",
        "\x1b[?7l0123456789abcdef",
        "\x1b[?7l0123456789\x1b[9G~",
        "0123456789x",
        "abcdef\x1b[3G\x1b[2@\x1b[1P",
        "abcdef\x1b[3G\x1b[4h12\x1b[4l",
        "abc\x1b[2Gb\u{301}",
        "ab\x1b(0qx\x1b(Bq",
        "abc\x1b[5b",
        "one\r\ntwo\r\nthree\r\nfour",
        "abcdef\x1b[4G\x1b[44m\x1b[K",
    ];
    for edit in EDITS {
        let mut ascii = term(3, 10);
        // A wide character overwritten by blanks leaves the same (empty)
        // screen, but with its row in cell form.
        let mut cells = term(3, 10);
        feed(&mut cells, "中\r  \r");
        feed(&mut ascii, edit);
        feed(&mut cells, edit);
        assert_eq!(ascii.screen_text(), cells.screen_text(), "{edit:?}");
        assert_eq!(ascii.cursor(), cells.cursor(), "{edit:?}");
        for y in 0..3 {
            for x in 0..10 {
                assert_eq!(ascii.cell(y, x), cells.cell(y, x), "{edit:?} at {y},{x}");
            }
        }
        assert_eq!(ascii.render(), cells.render(), "{edit:?}");
        assert_eq!(ascii.text_lines(), cells.text_lines(), "{edit:?}");
    }
}

/// Scrolling keeps the history exact across plain, styled and wide lines,
/// and a clear turns a styled row back into a plain one.
#[test]
fn history_lines_keep_text_and_attributes_in_order() {
    let mut t = Terminal::new(2, 8, 5);
    let lines = [
        "plain",
        "\x1b[1mbold\x1b[0m",
        "wide中",
        "e\u{301}",
        "x\x1b[58;5;3;4my",
    ];
    for l in lines.iter().cycle().take(12) {
        feed(&mut t, l);
        feed(&mut t, "\r\n");
    }
    // Lines 7 to 11 of the 11 that scrolled off.
    assert_eq!(t.history_len(), 5);
    assert_eq!(t.lines_scrolled_off(), 11);
    let texts: Vec<String> = (0..5).filter_map(|i| t.history_line(i)).collect();
    assert_eq!(texts, ["bold", "wide中", "e\u{301}", "xy", "plain"]);
    let bold = t.history_runs(0).unwrap();
    assert_eq!(bold[0].0, "bold");
    assert!(bold[0].1.attrs & ATTR_BOLD != 0);
    let ul = t.history_runs(3).unwrap();
    assert_eq!(ul[1].1.underline_color, Color::Indexed(3));
    let mut u = Terminal::new(2, 8, 5);
    u.feed(&t.render());
    for i in 0..5 {
        assert_eq!(u.history_runs(i), t.history_runs(i));
    }
}

#[test]
fn queries_are_answered_from_the_model() {
    let mut t = Terminal::new(24, 80, 100);
    t.feed(b"\x1b[5;10H\x1b[6n");
    assert_eq!(t.take_replies(), b"\x1b[5;10R");
    assert!(t.take_replies().is_empty());
    // Origin mode: relative to the scroll region.
    t.feed(b"\x1b[3;20r\x1b[?6h\x1b[2;4H\x1b[6n\x1b[?6n");
    assert_eq!(t.take_replies(), b"\x1b[2;4R\x1b[?2;4R");
    t.feed(b"\x1b[5n\x1b[c\x1b[0c\x1b[>c\x1b[>0c\x1b[1c");
    assert_eq!(
        t.take_replies(),
        b"\x1b[0n\x1b[?62;22c\x1b[?62;22c\x1b[>1;10;0c\x1b[>1;10;0c"
    );
    // Split anywhere, and bounded.
    t.feed(b"\x1b[");
    t.feed(b"6n");
    assert_eq!(t.take_replies().len(), b"\x1b[2;4R".len());
    for _ in 0..10_000 {
        t.feed(b"\x1b[c");
    }
    assert!(t.take_replies().len() <= 4096);
}
