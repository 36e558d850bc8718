//! Byte-level parser: turns the program's output bytes into actions.
//!
//! Owns the escape-sequence state machine (after Paul Williams' DEC
//! parser, as xterm, tmux and most emulators implement it) and the UTF-8
//! decoder. It holds no screen state; every recognised item is handed to a
//! [`Perform`] implementation. All buffers are fixed or capped, so no input
//! can grow memory, and any byte sequence is accepted without panicking:
//! invalid UTF-8 becomes U+FFFD, oversized sequences are dropped.

/// Parameters kept per CSI sequence; later ones are ignored (xterm keeps 30).
pub const MAX_PARAMS: usize = 32;
/// Intermediate bytes kept per sequence; sequences with more are ignored
/// (no standard sequence has more than two).
pub const MAX_INTERMEDIATES: usize = 2;
/// Longest OSC string kept (a title and then some); longer ones are ignored.
pub const MAX_OSC_BYTES: usize = 4096;

/// Bytes of a UTF-8 sequence at most.
const UTF8_MAX_LEN: u8 = 4;
/// The byte that aborts a sequence (CAN).
const CAN: u8 = 0x18;
/// The byte that aborts a sequence (SUB).
const SUB: u8 = 0x1a;
/// Escape.
const ESC: u8 = 0x1b;
/// Bell, which also terminates OSC strings (xterm extension).
const BEL: u8 = 0x07;
/// Delete: ignored everywhere.
const DEL: u8 = 0x7f;

/// Numeric parameters of a CSI sequence, with colon sub-parameter marks.
#[derive(Clone, Debug, Default)]
pub struct Params {
    values: [u16; MAX_PARAMS],
    /// Bit i set: parameter i followed a ':' (is a sub-parameter of i-1).
    sub: u64,
    len: usize,
}

impl Params {
    /// Number of parameters (an empty parameter counts, with value 0).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the sequence had no parameters.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Parameter `i`, 0 when missing or empty.
    pub fn get(&self, i: usize) -> u16 {
        if i < self.len {
            self.values.get(i).copied().unwrap_or(0)
        } else {
            0
        }
    }

    /// Parameter `i`, or `default` when missing or 0 (the usual CSI rule).
    pub fn get_or(&self, i: usize, default: u16) -> u16 {
        match self.get(i) {
            0 => default,
            v => v,
        }
    }

    /// True when parameter `i` was introduced by ':' rather than ';'.
    pub fn is_sub(&self, i: usize) -> bool {
        i < self.len && i < 64 && self.sub & (1u64 << i) != 0
    }

    fn push(&mut self, value: u16, after_colon: bool) {
        if self.len < MAX_PARAMS {
            if let Some(slot) = self.values.get_mut(self.len) {
                *slot = value;
            }
            if after_colon {
                self.sub |= 1u64 << self.len;
            }
            self.len += 1;
        }
    }

    fn clear(&mut self) {
        self.len = 0;
        self.sub = 0;
    }
}

/// Receiver of parsed actions.
pub trait Perform {
    /// A run of printable ASCII bytes (0x20..=0x7e), the fast path.
    fn print_ascii(&mut self, run: &[u8]);
    /// One decoded non-ASCII character (possibly U+FFFD).
    fn print(&mut self, c: char);
    /// A C0 control other than ESC, CAN and SUB.
    fn execute(&mut self, byte: u8);
    /// A complete CSI sequence; `private` is the leading `<=>?` byte or 0.
    fn csi(&mut self, params: &Params, private: u8, intermediates: &[u8], action: u8);
    /// A complete escape sequence (ESC, intermediates, final byte).
    fn esc(&mut self, intermediates: &[u8], action: u8);
    /// A complete OSC string (between `ESC ]` and BEL or ST).
    fn osc(&mut self, data: &[u8]);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Ground,
    Escape,
    EscapeIntermediate,
    CsiEntry,
    CsiParam,
    CsiIntermediate,
    CsiIgnore,
    Osc,
    /// DCS, SOS, PM and APC bodies: consumed until ST, without effect.
    StringIgnore,
}

/// The parser state machine. Feed it with [`Parser::advance`].
#[derive(Clone, Debug)]
pub struct Parser {
    state: State,
    params: Params,
    /// Value of the parameter being read.
    param: u16,
    /// A digit, ';' or ':' was seen, so there is a parameter to finish.
    param_started: bool,
    /// The parameter being read follows a ':'.
    param_after_colon: bool,
    private: u8,
    intermediates: [u8; MAX_INTERMEDIATES],
    n_intermediates: usize,
    /// Too many intermediates: the sequence is consumed but ignored.
    intermediates_overflow: bool,
    osc: Vec<u8>,
    osc_overflow: bool,
    /// UTF-8 decoding: code point so far, bytes still needed, and the
    /// allowed range of the next byte (narrower after some lead bytes to
    /// reject overlong forms and surrogates).
    utf8_cp: u32,
    utf8_need: u8,
    utf8_lo: u8,
    utf8_hi: u8,
}

impl Default for Parser {
    fn default() -> Parser {
        Parser::new()
    }
}

impl Parser {
    /// A parser in the ground state.
    pub fn new() -> Parser {
        Parser {
            state: State::Ground,
            params: Params::default(),
            param: 0,
            param_started: false,
            param_after_colon: false,
            private: 0,
            intermediates: [0; MAX_INTERMEDIATES],
            n_intermediates: 0,
            intermediates_overflow: false,
            osc: Vec::new(),
            osc_overflow: false,
            utf8_cp: 0,
            utf8_need: 0,
            utf8_lo: 0x80,
            utf8_hi: 0xbf,
        }
    }

    /// Heap bytes held (the OSC buffer).
    pub fn heap_bytes(&self) -> usize {
        self.osc.capacity()
    }

    /// Parse `bytes`, calling `p` for each action. Sequences and characters
    /// may be split across calls anywhere.
    pub fn advance<P: Perform>(&mut self, p: &mut P, bytes: &[u8]) {
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if self.state == State::Ground && self.utf8_need == 0 && (0x20..DEL).contains(&b) {
                // Fast path: hand over the whole run of printable ASCII.
                let rest = bytes.get(i..).unwrap_or(&[]);
                let n = printable_run(rest);
                p.print_ascii(rest.get(..n).unwrap_or(&[]));
                i += n;
                continue;
            }
            if matches!(self.state, State::CsiEntry | State::CsiParam) && is_param_byte(b) {
                // The parameters, the bulk of a CSI sequence, in one loop.
                let rest = bytes.get(i..).unwrap_or(&[]);
                let n = rest.iter().take_while(|&&c| is_param_byte(c)).count();
                for &c in rest.get(..n).unwrap_or(&[]) {
                    self.param_byte(c);
                }
                i += n;
                continue;
            }
            self.byte(p, b);
            i += 1;
        }
    }

    fn byte<P: Perform>(&mut self, p: &mut P, b: u8) {
        match self.state {
            State::Ground => self.ground(p, b),
            State::Escape | State::EscapeIntermediate => self.escape(p, b),
            State::CsiEntry | State::CsiParam | State::CsiIntermediate | State::CsiIgnore => {
                self.csi(p, b)
            }
            State::Osc => self.osc_byte(p, b),
            State::StringIgnore => match b {
                ESC => self.enter_escape(),
                CAN | SUB => self.state = State::Ground,
                _ => {}
            },
        }
    }

    fn ground<P: Perform>(&mut self, p: &mut P, b: u8) {
        if self.utf8_need > 0 {
            if (self.utf8_lo..=self.utf8_hi).contains(&b) {
                self.utf8_cp = (self.utf8_cp << 6) | u32::from(b & 0x3f);
                self.utf8_need -= 1;
                self.utf8_lo = 0x80;
                self.utf8_hi = 0xbf;
                if self.utf8_need == 0 {
                    p.print(char::from_u32(self.utf8_cp).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                return;
            }
            // A truncated sequence: one U+FFFD, then the byte on its own.
            self.utf8_need = 0;
            self.utf8_lo = 0x80;
            self.utf8_hi = 0xbf;
            p.print(char::REPLACEMENT_CHARACTER);
        }
        match b {
            ESC => self.enter_escape(),
            CAN | SUB => {}
            0..=0x1f => p.execute(b),
            0x20..=0x7e => p.print_ascii(&[b]),
            DEL => {}
            _ => self.utf8_start(p, b),
        }
    }

    fn utf8_start<P: Perform>(&mut self, p: &mut P, b: u8) {
        let (need, bits, lo, hi) = match b {
            0xc2..=0xdf => (1, b & 0x1f, 0x80, 0xbf),
            0xe0 => (2, b & 0x0f, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, b & 0x0f, 0x80, 0xbf),
            0xed => (2, b & 0x0f, 0x80, 0x9f),
            0xf0 => (3, b & 0x07, 0x90, 0xbf),
            0xf1..=0xf3 => (3, b & 0x07, 0x80, 0xbf),
            0xf4 => (3, b & 0x07, 0x80, 0x8f),
            _ => {
                p.print(char::REPLACEMENT_CHARACTER);
                return;
            }
        };
        debug_assert!(need < UTF8_MAX_LEN);
        self.utf8_cp = u32::from(bits);
        self.utf8_need = need;
        self.utf8_lo = lo;
        self.utf8_hi = hi;
    }

    fn enter_escape(&mut self) {
        self.state = State::Escape;
        self.n_intermediates = 0;
        self.intermediates_overflow = false;
    }

    fn collect(&mut self, b: u8) {
        match self.intermediates.get_mut(self.n_intermediates) {
            Some(slot) => {
                *slot = b;
                self.n_intermediates += 1;
            }
            None => self.intermediates_overflow = true,
        }
    }

    fn intermediates(&self) -> &[u8] {
        self.intermediates
            .get(..self.n_intermediates)
            .unwrap_or(&[])
    }

    fn escape<P: Perform>(&mut self, p: &mut P, b: u8) {
        match b {
            ESC => self.enter_escape(),
            CAN | SUB => self.state = State::Ground,
            0..=0x1f => p.execute(b),
            0x20..=0x2f => {
                self.collect(b);
                self.state = State::EscapeIntermediate;
            }
            DEL => {}
            0x30..=0x7e if self.state == State::EscapeIntermediate => {
                self.state = State::Ground;
                if !self.intermediates_overflow {
                    p.esc(self.intermediates(), b);
                }
            }
            b'[' => {
                self.state = State::CsiEntry;
                self.params.clear();
                self.param = 0;
                self.param_started = false;
                self.param_after_colon = false;
                self.private = 0;
            }
            b']' => {
                self.state = State::Osc;
                self.osc.clear();
                self.osc_overflow = false;
            }
            b'P' | b'X' | b'^' | b'_' => self.state = State::StringIgnore,
            0x30..=0x7e => {
                self.state = State::Ground;
                p.esc(&[], b);
            }
            _ => {
                // A non-ASCII byte cannot continue an escape: drop the
                // escape and decode the byte as text.
                self.state = State::Ground;
                self.ground(p, b);
            }
        }
    }

    /// A digit, ';' or ':' of a CSI sequence's parameters (in the entry or
    /// parameter state).
    fn param_byte(&mut self, b: u8) {
        self.state = State::CsiParam;
        self.param_started = true;
        match b {
            b';' | b':' => {
                self.finish_param();
                self.param_after_colon = b == b':';
            }
            _ => {
                // Saturating, computed wide and clamped (no overflow branch).
                let v = u32::from(self.param) * 10 + u32::from(b.wrapping_sub(b'0'));
                self.param = u16::try_from(v).unwrap_or(u16::MAX);
            }
        }
    }

    fn finish_param(&mut self) {
        self.params.push(self.param, self.param_after_colon);
        self.param = 0;
    }

    fn csi<P: Perform>(&mut self, p: &mut P, b: u8) {
        match b {
            ESC => self.enter_escape(),
            CAN | SUB => self.state = State::Ground,
            0..=0x1f => p.execute(b),
            DEL => {}
            _ if self.state == State::CsiIgnore => {
                if (0x40..=0x7e).contains(&b) {
                    self.state = State::Ground;
                }
            }
            b'0'..=b'9' | b';' | b':' if self.state != State::CsiIntermediate => self.param_byte(b),
            b'<'..=b'?' if self.state == State::CsiEntry => {
                self.private = b;
                self.state = State::CsiParam;
            }
            0x20..=0x2f => {
                self.collect(b);
                self.state = State::CsiIntermediate;
            }
            0x40..=0x7e => {
                if self.param_started {
                    self.finish_param();
                }
                self.state = State::Ground;
                if !self.intermediates_overflow {
                    p.csi(&self.params, self.private, self.intermediates(), b);
                }
            }
            // Parameter bytes after intermediates, a second private marker,
            // or non-ASCII: malformed, so consume the rest silently.
            _ => self.state = State::CsiIgnore,
        }
    }

    fn osc_byte<P: Perform>(&mut self, p: &mut P, b: u8) {
        match b {
            BEL => {
                self.state = State::Ground;
                self.dispatch_osc(p);
            }
            ESC => {
                // ST (ESC \) or any other escape ends the string.
                self.dispatch_osc(p);
                self.enter_escape();
            }
            CAN | SUB => self.state = State::Ground,
            0..=0x1f => {}
            _ => {
                if self.osc.len() < MAX_OSC_BYTES {
                    self.osc.push(b);
                } else {
                    self.osc_overflow = true;
                }
            }
        }
    }

    fn dispatch_osc<P: Perform>(&mut self, p: &mut P) {
        if !self.osc_overflow {
            p.osc(&self.osc);
        }
        self.osc.clear();
        if self.osc.capacity() > MAX_OSC_BYTES {
            self.osc.shrink_to(MAX_OSC_BYTES);
        }
    }
}

/// A byte of a CSI sequence's parameters: digit, ';' or ':'.
fn is_param_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b';' | b':')
}

/// Length of the run of printable ASCII (0x20..=0x7e) that starts `bytes`.
/// Eight bytes are checked at a time (byte by byte, this scan was the
/// parser's main cost on plain text).
fn printable_run(bytes: &[u8]) -> usize {
    /// 0x01 in every byte.
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    /// 0x80 in every byte.
    const HIGH: u64 = ONES << 7;
    let mut n = 0;
    for word in bytes.chunks_exact(8) {
        let mut b = [0; 8];
        b.copy_from_slice(word);
        let w = u64::from_ne_bytes(b);
        // Standard bit tricks, exact about whether any byte qualifies:
        // some byte is below 0x20, or some byte is above 0x7e.
        let below = w.wrapping_sub(ONES * 0x20) & !w;
        let above = w.wrapping_add(ONES) | w;
        if (below | above) & HIGH != 0 {
            break;
        }
        n += 8;
    }
    let rest = bytes.get(n..).unwrap_or(&[]);
    n + rest
        .iter()
        .position(|&c| !(0x20..DEL).contains(&c))
        .unwrap_or(rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_runs_end_at_the_first_other_byte() {
        for len in 0..20 {
            for stop in 0..=255u8 {
                let mut v = vec![b'a'; len];
                v.push(stop);
                v.extend_from_slice(b"bcdefghijk");
                let want = if (0x20..DEL).contains(&stop) {
                    v.len()
                } else {
                    len
                };
                assert_eq!(printable_run(&v), want, "len {len} stop {stop:#x}");
            }
        }
        assert_eq!(printable_run(b" ~~~~~~~~~~~~~~~~~"), 18);
    }

    #[derive(Default)]
    struct Log(Vec<String>);

    impl Perform for Log {
        fn print_ascii(&mut self, run: &[u8]) {
            self.0.push(format!("p:{}", String::from_utf8_lossy(run)));
        }
        fn print(&mut self, c: char) {
            self.0.push(format!("c:{c}"));
        }
        fn execute(&mut self, byte: u8) {
            self.0.push(format!("x:{byte}"));
        }
        fn csi(&mut self, params: &Params, private: u8, inter: &[u8], action: u8) {
            let ps: Vec<String> = (0..params.len())
                .map(|i| {
                    format!(
                        "{}{}",
                        if params.is_sub(i) { ":" } else { "" },
                        params.get(i)
                    )
                })
                .collect();
            self.0.push(format!(
                "csi:{}{}{}{}",
                private as char,
                ps.join(","),
                String::from_utf8_lossy(inter),
                action as char
            ));
        }
        fn esc(&mut self, inter: &[u8], action: u8) {
            self.0.push(format!(
                "esc:{}{}",
                String::from_utf8_lossy(inter),
                action as char
            ));
        }
        fn osc(&mut self, data: &[u8]) {
            self.0
                .push(format!("osc:{}", String::from_utf8_lossy(data)));
        }
    }

    fn parse_split(input: &[u8]) -> Vec<String> {
        // Every split point must give the same actions (modulo ASCII runs).
        let mut whole = Log::default();
        Parser::new().advance(&mut whole, input);
        for cut in 0..input.len() {
            let mut log = Log::default();
            let mut p = Parser::new();
            p.advance(&mut log, &input[..cut]);
            p.advance(&mut log, &input[cut..]);
            assert_eq!(normalize(&log.0), normalize(&whole.0), "cut at {cut}");
        }
        whole.0
    }

    fn normalize(v: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in v {
            if let (Some(last), Some(rest)) = (out.last_mut(), s.strip_prefix("p:")) {
                if last.starts_with("p:") {
                    last.push_str(rest);
                    continue;
                }
            }
            out.push(s.clone());
        }
        out
    }

    #[test]
    fn csi_with_subparams() {
        let v = parse_split(b"a\x1b[38:2::1:2:3;4mb\x1b[?25l");
        assert_eq!(
            v,
            ["p:a", "csi:\u{0}38,:2,:0,:1,:2,:3,4m", "p:b", "csi:?25l"]
        );
    }

    #[test]
    fn utf8_split_and_invalid() {
        let v = parse_split("é中😀".as_bytes());
        assert_eq!(v, ["c:é", "c:中", "c:😀"]);
        let v = parse_split(b"\xe4\xb8x\xff\xc0\x80\xed\xa0\x80");
        assert_eq!(v[0], "c:\u{fffd}");
        assert_eq!(v[1], "p:x");
        assert!(v[2..].iter().all(|s| s == "c:\u{fffd}"));
    }

    #[test]
    fn osc_terminators_and_strings() {
        let v = parse_split(b"\x1b]2;hi\x07\x1b]0;yo\x1b\\\x1bPq#0~\x1b\\z\x1b_apc\x07x\x1b\\");
        assert_eq!(
            v,
            ["osc:2;hi", "osc:0;yo", "esc:\\", "esc:\\", "p:z", "esc:\\"]
        );
    }

    #[test]
    fn controls_inside_csi_and_cancel() {
        let v = parse_split(b"\x1b[1\n2H\x1b[3\x18A\x1b(0");
        assert_eq!(v, ["x:10", "csi:\u{0}12H", "p:A", "esc:(0"]);
    }

    #[test]
    fn caps_are_respected() {
        let mut log = Log::default();
        let mut p = Parser::new();
        let mut long = b"\x1b]2;".to_vec();
        long.extend(vec![b'x'; MAX_OSC_BYTES * 3]);
        long.push(BEL);
        p.advance(&mut log, &long);
        assert!(log.0.is_empty());
        assert!(p.heap_bytes() <= MAX_OSC_BYTES * 2);
        let mut many = b"\x1b[".to_vec();
        for _ in 0..1000 {
            many.extend_from_slice(b"99999999;");
        }
        many.push(b'm');
        p.advance(&mut log, &many);
        assert_eq!(log.0.len(), 1);
    }
}
