//! Golden tests of the terminal model against tmux, plus render round
//! trips and a seeded fuzz run.
//!
//! Each `tests/vt/NAME.in` holds raw program output; `NAME.screen`,
//! `NAME.state` and (with the alternate screen on) `NAME.main` hold what
//! tmux reported after reading it (regenerate with
//! `python3 tools/gen-vt-golden.py`; no tmux is needed to run the tests).
//! Cells are compared one by one, text and attributes, parsing tmux's SGR
//! output independently of the model's own parser. tmux's capture stops at
//! the last cell a line ever used, so cells right of the captured text are
//! only required to be blank.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nono::term::{
    char_width, Color, MouseEncoding, MouseTracking, Pen, Terminal, ATTR_BLINK, ATTR_BOLD,
    ATTR_DIM, ATTR_HIDDEN, ATTR_INVERSE, ATTR_ITALIC, ATTR_OVERLINE, ATTR_STRIKE,
};

/// Same as HISTORY_LIMIT in tools/gen-vt-golden.py.
const HISTORY_LIMIT: usize = 2000;
/// Pane size used when a case has no NAME.size.
const DEFAULT_SIZE: (u16, u16) = (24, 80);

fn vt_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vt")
}

fn case_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(vt_dir())
        .expect("tests/vt exists")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".in").map(str::to_string))
        .collect();
    names.sort();
    names
}

fn case_size(name: &str) -> (u16, u16) {
    match std::fs::read_to_string(vt_dir().join(format!("{name}.size"))) {
        Ok(s) => {
            let v: Vec<u16> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
            (v[0], v[1])
        }
        Err(_) => DEFAULT_SIZE,
    }
}

/// A cell as the test compares it: text (empty for a wide char's right
/// half) and pen.
#[derive(Clone, Debug, PartialEq)]
struct TCell {
    text: String,
    pen: Pen,
}

/// Parse one line of `capture-pane -e` output into cells, continuing from
/// `pen` (tmux does not reset attributes at line ends).
fn parse_tmux_line(line: &str, pen: &mut Pen, acs: &mut bool) -> Vec<TCell> {
    let mut cells: Vec<TCell> = Vec::new();
    let mut chars = line.chars().peekable();
    // tmux prints line-drawing cells as SO, the ASCII letter, SI (and
    // like the pen, this state carries over to the next line).
    while let Some(c) = chars.next() {
        match c {
            '\x0e' => {
                *acs = true;
                continue;
            }
            '\x0f' => {
                *acs = false;
                continue;
            }
            _ => {}
        }
        let c = if *acs { dec_graphics(c) } else { c };
        if c == '\x1b' {
            assert_eq!(chars.next(), Some('['), "unexpected escape in capture");
            let mut params = String::new();
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
                params.push(d);
            }
            apply_sgr(pen, &params);
            continue;
        }
        let w = char_width(c);
        if w == 0 {
            if let Some(last) = cells.iter_mut().rev().find(|c| !c.text.is_empty()) {
                last.text.push(c);
            }
            continue;
        }
        cells.push(TCell {
            text: c.to_string(),
            pen: *pen,
        });
        if w == 2 {
            cells.push(TCell {
                text: String::new(),
                pen: *pen,
            });
        }
    }
    cells
}

/// xterm's DEC Special Graphics mapping for the ASCII letter tmux stores.
fn dec_graphics(c: char) -> char {
    const TABLE: &str = "\u{a0}◆▒␉␌␍␊°±␤␋┘┐┌└┼⎺⎻─⎼⎽├┤┴┬│≤≥π≠£·";
    match c {
        '\x5f'..='\x7e' => TABLE.chars().nth(c as usize - 0x5f).unwrap(),
        _ => c,
    }
}

/// tmux's SGR output, decoded without the model's parser.
fn apply_sgr(pen: &mut Pen, params: &str) {
    let ps: Vec<&str> = params.split(';').collect();
    let mut i = 0;
    let num = |s: &str| s.parse::<u16>().unwrap_or(0);
    while i < ps.len() {
        let p = ps[i];
        if p == "5:3" {
            // tmux 3.3a writes overline (53) as "5:3" in captures.
            pen.attrs |= ATTR_OVERLINE;
            i += 1;
            continue;
        }
        if p.contains(':') {
            let sub: Vec<u16> = p.split(':').map(num).collect();
            match sub[0] {
                4 => pen.set_underline(sub[1]),
                38 | 48 | 58 => {
                    let c = match sub[1] {
                        5 => Color::Indexed(sub[2] as u8),
                        _ => {
                            let n = sub.len();
                            Color::Rgb(sub[n - 3] as u8, sub[n - 2] as u8, sub[n - 1] as u8)
                        }
                    };
                    match sub[0] {
                        38 => pen.fg = c,
                        48 => pen.bg = c,
                        _ => pen.underline_color = c,
                    }
                }
                _ => panic!("unknown sub-parameter SGR {p}"),
            }
            i += 1;
            continue;
        }
        let n = num(p);
        match n {
            0 => *pen = Pen::default(),
            1 => pen.attrs |= ATTR_BOLD,
            2 => pen.attrs |= ATTR_DIM,
            3 => pen.attrs |= ATTR_ITALIC,
            4 => pen.set_underline(1),
            5 => pen.attrs |= ATTR_BLINK,
            7 => pen.attrs |= ATTR_INVERSE,
            8 => pen.attrs |= ATTR_HIDDEN,
            9 => pen.attrs |= ATTR_STRIKE,
            21 => pen.set_underline(2),
            53 => pen.attrs |= ATTR_OVERLINE,
            30..=37 => pen.fg = Color::Indexed((n - 30) as u8),
            39 => pen.fg = Color::Default,
            40..=47 => pen.bg = Color::Indexed((n - 40) as u8),
            49 => pen.bg = Color::Default,
            59 => pen.underline_color = Color::Default,
            90..=97 => pen.fg = Color::Indexed((n - 82) as u8),
            100..=107 => pen.bg = Color::Indexed((n - 92) as u8),
            38 | 48 | 58 => {
                let (c, used) = match num(ps[i + 1]) {
                    5 => (Color::Indexed(num(ps[i + 2]) as u8), 2),
                    _ => (
                        Color::Rgb(
                            num(ps[i + 2]) as u8,
                            num(ps[i + 3]) as u8,
                            num(ps[i + 4]) as u8,
                        ),
                        4,
                    ),
                };
                match n {
                    38 => pen.fg = c,
                    48 => pen.bg = c,
                    _ => pen.underline_color = c,
                }
                i += used;
            }
            _ => panic!("unknown SGR {n} in {params}"),
        }
        i += 1;
    }
}

/// The model's cells of one screen row.
fn model_row(t: &Terminal, alternate: bool, row: u16) -> Vec<TCell> {
    let (_, cols) = t.size();
    (0..cols)
        .map(|x| {
            let c = t.grid_cell(alternate, row, x).unwrap();
            TCell {
                text: c.text(),
                pen: c.pen(),
            }
        })
        .collect()
}

/// The model's cells of one history line.
fn model_history(t: &Terminal, i: usize) -> Vec<TCell> {
    let mut cells = Vec::new();
    for (text, pen) in t.history_runs(i).unwrap() {
        for c in text.chars() {
            match char_width(c) {
                0 => {
                    if let Some(last) = cells
                        .iter_mut()
                        .rev()
                        .find(|c: &&mut TCell| !c.text.is_empty())
                    {
                        last.text.push(c);
                    }
                }
                w => {
                    cells.push(TCell {
                        text: c.to_string(),
                        pen,
                    });
                    if w == 2 {
                        cells.push(TCell {
                            text: String::new(),
                            pen,
                        });
                    }
                }
            }
        }
    }
    cells
}

/// Compare a model line with tmux's: equal where tmux printed, blank after.
fn compare_line(what: &str, model: &[TCell], golden: &[TCell], errors: &mut Vec<String>) {
    for (x, m) in model.iter().enumerate() {
        let ok = match golden.get(x) {
            Some(g) => g == m,
            None => m.text == " " || m.text.is_empty(),
        };
        if !ok {
            errors.push(format!(
                "{what} col {x}: model {:?} {:?}, tmux {:?}",
                m.text,
                m.pen,
                golden.get(x)
            ));
            return;
        }
    }
    if golden.len() > model.len() && golden[model.len()..].iter().any(|g| g.text != " ") {
        errors.push(format!("{what}: tmux has more text: {golden:?}"));
    }
}

fn parse_capture(data: &str) -> Vec<Vec<TCell>> {
    let mut pen = Pen::default();
    let mut acs = false;
    let mut lines: Vec<&str> = data.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    lines
        .iter()
        .map(|l| parse_tmux_line(l, &mut pen, &mut acs))
        .collect()
}

fn feed_chunked(t: &mut Terminal, bytes: &[u8], seed: u64) {
    let mut rng = XorShift(seed | 1);
    let mut i = 0;
    while i < bytes.len() {
        let n = 1 + (rng.next() % 13) as usize;
        let end = (i + n).min(bytes.len());
        t.feed(&bytes[i..end]);
        i = end;
    }
}

fn check_case(name: &str) -> Vec<String> {
    let dir = vt_dir();
    let input = std::fs::read(dir.join(format!("{name}.in"))).unwrap();
    let (rows, cols) = case_size(name);
    let mut t = Terminal::new(rows, cols, HISTORY_LIMIT);
    t.feed(&input);
    let mut errors = Vec::new();

    // Chunking must not matter.
    let mut split = Terminal::new(rows, cols, HISTORY_LIMIT);
    feed_chunked(&mut split, &input, name.len() as u64);
    if split.render() != t.render() {
        errors.push("feeding in small chunks gives a different state".to_string());
    }

    // NAME.note documents a known tmux/xterm difference; "ignore-history"
    // there means tmux's history differs by design (see the note).
    let note = std::fs::read_to_string(dir.join(format!("{name}.note"))).unwrap_or_default();
    let ignore_history = note.lines().any(|l| l.starts_with("ignore-history"));
    // "ignore-cell ROW COL": a screen cell where tmux deviates from xterm.
    let ignored_cells: Vec<(usize, usize)> = note
        .lines()
        .filter_map(|l| l.strip_prefix("ignore-cell "))
        .map(|l| {
            let v: Vec<usize> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            (v[0], v[1])
        })
        .collect();
    let state_text = std::fs::read_to_string(dir.join(format!("{name}.state"))).unwrap();
    let state: HashMap<&str, &str> = state_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    let num = |k: &str| -> usize { state[k].parse().unwrap() };
    let flag = |k: &str| -> bool { state[k] == "1" };
    let mut expect = |what: &str, model: String, tmux: String| {
        if model != tmux {
            errors.push(format!("{what}: model {model}, tmux {tmux}"));
        }
    };
    expect(
        "size",
        format!("{:?}", t.size()),
        format!("({}, {})", num("pane_height"), num("pane_width")),
    );
    let cur = t.cursor();
    // tmux keeps the pending-wrap position as x == width.
    let tmux_x = num("cursor_x");
    expect(
        "cursor",
        format!("{} {} {}", cur.x, cur.y, cur.pending_wrap),
        format!(
            "{} {} {}",
            tmux_x.min(cols as usize - 1),
            num("cursor_y"),
            tmux_x >= cols as usize
        ),
    );
    let m = t.modes();
    expect(
        "cursor visible",
        m.cursor_visible.to_string(),
        flag("cursor_flag").to_string(),
    );
    expect(
        "insert",
        m.insert.to_string(),
        flag("insert_flag").to_string(),
    );
    expect(
        "DECCKM",
        m.cursor_keys_app.to_string(),
        flag("keypad_cursor_flag").to_string(),
    );
    expect(
        "keypad",
        m.keypad_app.to_string(),
        flag("keypad_flag").to_string(),
    );
    expect(
        "autowrap",
        m.autowrap.to_string(),
        flag("wrap_flag").to_string(),
    );
    expect(
        "origin",
        m.origin.to_string(),
        flag("origin_flag").to_string(),
    );
    expect(
        "mouse",
        format!("{:?}", m.mouse),
        format!(
            "{:?}",
            if flag("mouse_all_flag") {
                MouseTracking::AnyEvent
            } else if flag("mouse_button_flag") {
                MouseTracking::ButtonEvent
            } else if flag("mouse_standard_flag") {
                MouseTracking::Normal
            } else {
                MouseTracking::Off
            }
        ),
    );
    expect(
        "mouse encoding",
        format!("{:?}", m.mouse_encoding),
        format!(
            "{:?}",
            if flag("mouse_sgr_flag") {
                MouseEncoding::Sgr
            } else if flag("mouse_utf8_flag") {
                MouseEncoding::Utf8
            } else {
                MouseEncoding::Default
            }
        ),
    );
    expect(
        "alternate",
        t.alternate_screen_active().to_string(),
        flag("alternate_on").to_string(),
    );
    expect(
        "scroll region",
        format!("{:?}", t.scroll_region()),
        format!(
            "({}, {})",
            num("scroll_region_upper"),
            num("scroll_region_lower")
        ),
    );
    if !ignore_history {
        expect(
            "history size",
            t.history_len().to_string(),
            state["history_size"].to_string(),
        );
    }
    let tabs: Vec<String> = t.tab_stops().iter().map(|x| x.to_string()).collect();
    expect("tabs", tabs.join(","), state["pane_tabs"].to_string());
    expect(
        "title",
        t.title().to_string(),
        state["pane_title"].to_string(),
    );

    let screen = std::fs::read_to_string(dir.join(format!("{name}.screen"))).unwrap();
    let golden = parse_capture(&screen);
    let hist = golden.len().saturating_sub(rows as usize);
    if hist == t.history_len() && !ignore_history {
        for (i, g) in golden.iter().take(hist).enumerate() {
            compare_line(
                &format!("history {i}"),
                &model_history(&t, i),
                g,
                &mut errors,
            );
        }
    }
    let alt = t.alternate_screen_active();
    for (y, g) in golden.iter().skip(hist).enumerate() {
        let mut model = model_row(&t, alt, y as u16);
        let g = g.clone();
        for &(_, x) in ignored_cells.iter().filter(|(r, _)| *r == y) {
            if let (Some(m), Some(gc)) = (model.get_mut(x), g.get(x)) {
                *m = gc.clone();
            }
        }
        compare_line(&format!("row {y}"), &model, &g, &mut errors);
    }
    if let Ok(main) = std::fs::read_to_string(dir.join(format!("{name}.main"))) {
        for (y, g) in parse_capture(&main).iter().enumerate() {
            compare_line(
                &format!("main row {y}"),
                &model_row(&t, false, y as u16),
                g,
                &mut errors,
            );
        }
    }
    errors
}

#[test]
fn golden_cases_match_tmux() {
    let names = case_names();
    assert!(!names.is_empty());
    let mut failed = Vec::new();
    for name in &names {
        let errors = check_case(name);
        if !errors.is_empty() {
            eprintln!("--- {name}");
            for e in errors.iter().take(8) {
                eprintln!("  {e}");
            }
            failed.push(name.clone());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases differ: {failed:?}",
        failed.len(),
        names.len()
    );
}

/// Everything render() must reproduce, in comparable form.
fn snapshot(t: &Terminal) -> String {
    let (rows, _) = t.size();
    let mut s = format!(
        "size {:?} cursor {:?} modes {:?} pen {:?} title {:?} alt {} region {:?} tabs {:?}\n",
        t.size(),
        t.cursor(),
        t.modes(),
        t.pen(),
        t.title(),
        t.alternate_screen_active(),
        t.scroll_region(),
        t.tab_stops()
    );
    for alt in [false, true] {
        if alt && !t.alternate_screen_active() {
            continue;
        }
        for y in 0..rows {
            s.push_str(&format!("{alt} {y}: {:?}\n", model_row(t, alt, y)));
        }
    }
    s
}

/// History lines as a client shows them after render(): lines wider than
/// the screen (from before a resize) wrap.
fn history_snapshot(t: &Terminal) -> Vec<String> {
    let (_, cols) = t.size();
    let mut out = Vec::new();
    for i in 0..t.history_len() {
        for part in wrap_cells(&model_history(t, i), cols as usize) {
            out.push(format!("{part:?}"));
        }
    }
    out
}

/// Split a line's cells into rows of at most `cols` columns the way
/// autowrap does (a wide char that does not fit moves to the next row),
/// trimming trailing default blanks of each row.
fn wrap_cells(cells: &[TCell], cols: usize) -> Vec<Vec<TCell>> {
    let mut rows: Vec<Vec<TCell>> = vec![Vec::new()];
    let mut i = 0;
    while i < cells.len() {
        let w = if cells.get(i + 1).is_some_and(|c| c.text.is_empty()) {
            2
        } else {
            1
        };
        if w > cols {
            // The client drops characters wider than the screen.
            i += w;
            continue;
        }
        if rows.last().unwrap().len() + w > cols {
            rows.push(Vec::new());
        }
        rows.last_mut().unwrap().extend_from_slice(&cells[i..i + w]);
        i += w;
    }
    for r in rows.iter_mut() {
        while r
            .last()
            .is_some_and(|c| c.text == " " && c.pen == Pen::default())
        {
            r.pop();
        }
    }
    rows
}

fn round_trip(t: &Terminal, limit: usize) -> Result<(), String> {
    let (rows, cols) = t.size();
    // Room for history lines that wrap on the client.
    let mut u = Terminal::new(rows, cols, limit * 4 + rows as usize);
    u.feed(&t.render());
    let (ha, hb) = (history_snapshot(t), history_snapshot(&u));
    let keep = ha.len().min(limit * 4 + rows as usize);
    if hb.len() != keep || hb[..] != ha[ha.len() - keep..] {
        let first = (0..keep).find(|&i| hb.get(i) != ha.get(ha.len() - keep + i));
        if let Some(f) = first {
            for i in f.saturating_sub(2)..(f + 3).min(keep) {
                eprintln!("{i}: {:?}\n   {:?}", ha.get(ha.len() - keep + i), hb.get(i));
            }
        }
        return Err(format!(
            "history: model {} lines, rendered {}; first difference at {first:?}",
            ha.len(),
            hb.len()
        ));
    }
    let (a, b) = (snapshot(t), snapshot(&u));
    if a == b {
        return Ok(());
    }
    if std::env::var("VT_DEBUG").is_ok() {
        eprintln!(
            "MODEL\n{a}\nRENDERED\n{b}\nBYTES {:?}",
            String::from_utf8_lossy(&t.render())
        );
    }
    let diff: Vec<String> = a
        .lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .take(3)
        .map(|(x, y)| format!("  model:    {x}\n  rendered: {y}"))
        .collect();
    Err(diff.join("\n"))
}

#[test]
fn render_round_trips_every_case() {
    let mut failed = Vec::new();
    for name in case_names() {
        let input = std::fs::read(vt_dir().join(format!("{name}.in"))).unwrap();
        let (rows, cols) = case_size(&name);
        let mut t = Terminal::new(rows, cols, HISTORY_LIMIT);
        t.feed(&input);
        if let Err(e) = round_trip(&t, HISTORY_LIMIT) {
            eprintln!("--- {name}\n{e}");
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "render round trip differs: {failed:?}");
}

/// Tiny deterministic PRNG (xorshift64).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A chunk of escape-sequence-shaped garbage, text or raw bytes.
fn random_chunk(rng: &mut XorShift) -> Vec<u8> {
    const FINALS: &[&str] = &[
        "@", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "P", "S", "T", "X",
        "Z", "`", "a", "b", "d", "e", "f", "g", "h", "l", "m", "n", "r", "s", "u", " q", "!p",
        "$p", "t", "c",
    ];
    const PRIVATE: &[&str] = &["", "", "", "?", ">", "<", "="];
    const PARAMS: &[&str] = &[
        "", "0", "1", "2", "3", "4", "5", "6", "7", "9", "12", "25", "38", "48", "58", "47",
        "1000", "1002", "1003", "1004", "1005", "1006", "1015", "1047", "1048", "1049", "2004",
        "65535", "99999999", "200", "255",
    ];
    const TEXT: &[&str] = &[
        "hello ",
        "wide 中文字 ",
        "e\u{301}\u{302}\u{303}",
        "😀",
        "\r\n",
        "\n",
        "\r",
        "\t",
        "\x08",
        "\x0e",
        "\x0f",
        "\x07",
        "\u{200b}",
        "ｶﾀｶﾅ",
        "\u{fe0f}",
        "x",
    ];
    const ESC: &[&str] = &[
        "\x1b7",
        "\x1b8",
        "\x1bD",
        "\x1bE",
        "\x1bM",
        "\x1bH",
        "\x1bc",
        "\x1b=",
        "\x1b>",
        "\x1b(0",
        "\x1b(B",
        "\x1b)0",
        "\x1b#8",
        "\x1b]2;title\x07",
        "\x1b]0;t\x1b\\",
        "\x1bPq#0;1~\x1b\\",
        "\x1b_apc\x1b\\",
        "\x1b]8;;http://x\x07",
        "\x1b[",
        "\x1b",
        "\x1b]",
    ];
    let mut out = Vec::new();
    match rng.below(10) {
        0 => {
            for _ in 0..rng.below(64) {
                out.push(rng.next() as u8);
            }
        }
        1..=4 => {
            out.extend_from_slice(b"\x1b[");
            out.extend_from_slice(rng.pick(PRIVATE).as_bytes());
            for i in 0..rng.below(6) {
                if i > 0 {
                    out.push(if rng.below(5) == 0 { b':' } else { b';' });
                }
                out.extend_from_slice(rng.pick(PARAMS).as_bytes());
            }
            out.extend_from_slice(rng.pick(FINALS).as_bytes());
        }
        5 | 6 => out.extend_from_slice(rng.pick(ESC).as_bytes()),
        _ => {
            for _ in 0..1 + rng.below(4) {
                out.extend_from_slice(rng.pick(TEXT).as_bytes());
            }
        }
    }
    out
}

#[test]
fn fuzz_no_panic_bounded_memory_and_round_trip() {
    const SEEDS: u64 = 6;
    const CHUNKS: usize = 3000;
    const LIMIT: usize = 200;
    // VT_FUZZ_SEEDS=N explores more seeds (e.g. with --release).
    let seeds = std::env::var("VT_FUZZ_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SEEDS);
    for seed in 1..=seeds {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ seed);
        let mut t = Terminal::new(1 + rng.below(40) as u16, 1 + rng.below(100) as u16, LIMIT);
        let (mut max_rows, mut max_cols) = (0, 0);
        for i in 0..CHUNKS {
            let chunk = random_chunk(&mut rng);
            t.feed(&chunk);
            if rng.below(200) == 0 {
                t.resize(rng.below(50) as u16, rng.below(120) as u16);
            }
            let (rows, cols) = t.size();
            max_rows = max_rows.max(rows as usize);
            max_cols = max_cols.max(cols as usize);
            // Grids, LIMIT history lines as wide as the widest screen so
            // far (with spans), parser buffers: generously bounded.
            let bound = 4 * (max_rows * max_cols * 32) + LIMIT * (max_cols * 40 + 128) + 64 * 1024;
            assert!(
                t.heap_bytes() <= bound,
                "seed {seed} chunk {i}: {} > {bound}",
                t.heap_bytes()
            );
            if i % 50 == 49 {
                if let Err(e) = round_trip(&t, LIMIT) {
                    panic!("seed {seed} chunk {i}: round trip differs\n{e}");
                }
            }
        }
    }
}
