//! What the attach client lets through to the operator's terminal. The
//! program's output passes, minus what would act on the operator rather
//! than on the session: clipboard writes (OSC 52) unless the config allows
//! them, clipboard reads, title reports and window operations always, tmux
//! passthrough always, and every terminal query when its answer could not
//! reach the program (the client does not relay the keyboard). Sequences
//! split across reads are held until they can be classified (a few bytes);
//! strings being passed or dropped are streamed, never buffered.

/// Longest sequence head held back while classifying it; beyond this a
/// CSI passes untouched (the terminal ignores what it cannot parse).
const MAX_HELD: usize = 256;

/// Where the filter is in the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Plain text and C0 controls.
    Ground,
    /// After ESC.
    Esc,
    /// After ESC and intermediates (`ESC ( 0`).
    EscInter,
    /// Inside a CSI, held until its final byte.
    Csi,
    /// A CSI too long to hold, passed through to its final byte.
    CsiPass,
    /// The head of an OSC (`]`) or DCS (`P`), held until it is classified.
    StrHead(u8),
    /// A string being passed (`true`) or dropped (`false`) up to its
    /// terminator; the second flag: an OSC, which BEL also ends.
    Str(bool, bool),
    /// An ESC inside such a string: ST, or (passing) a new sequence.
    StrEsc(bool, bool),
}

/// The output filter of one attachment.
pub struct OutputFilter {
    /// `[ui] allow_clipboard`: OSC 52 writes pass.
    allow_clipboard: bool,
    /// The terminal's answers reach the program (the client relays an
    /// interactive keyboard), so queries may pass.
    answers_reach_program: bool,
    /// Where we are.
    state: State,
    /// The bytes of the sequence being classified.
    seq: Vec<u8>,
    /// A query went to the terminal since [`OutputFilter::take_queried`].
    queried: bool,
}

impl OutputFilter {
    /// A filter for one attachment.
    pub fn new(allow_clipboard: bool, answers_reach_program: bool) -> OutputFilter {
        OutputFilter {
            allow_clipboard,
            answers_reach_program,
            state: State::Ground,
            seq: Vec::new(),
            queried: false,
        }
    }

    /// Start afresh at a frame boundary of our own (after the bytes of a
    /// sequence in progress were dropped): whatever was held is forgotten.
    pub fn reset(&mut self) {
        self.state = State::Ground;
        self.seq.clear();
    }

    /// Whether a query went to the terminal since the last call: its answer
    /// may still be on the way when the attachment ends.
    pub fn take_queried(&mut self) -> bool {
        std::mem::take(&mut self.queried)
    }

    /// Append what of `input` may reach the terminal to `out`.
    pub fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Ground => {
                    let rest = &input[i..];
                    match find_esc(rest) {
                        None => {
                            out.extend_from_slice(rest);
                            return;
                        }
                        Some(k) => {
                            out.extend_from_slice(&rest[..k]);
                            self.seq.clear();
                            self.seq.push(0x1b);
                            self.state = State::Esc;
                            i += k + 1;
                        }
                    }
                }
                State::Str(pass, osc) => {
                    let rest = &input[i..];
                    let k = rest
                        .iter()
                        .position(|&b| matches!(b, 0x1b | 0x18 | 0x1a) || osc && b == 0x07)
                        .unwrap_or(rest.len());
                    if pass {
                        out.extend_from_slice(&rest[..k]);
                    }
                    i += k;
                    let Some(&b) = input.get(i) else {
                        return;
                    };
                    i += 1;
                    if b == 0x1b {
                        self.state = State::StrEsc(pass, osc);
                    } else {
                        // BEL ends it; CAN and SUB abort it.
                        if pass {
                            out.push(b);
                        }
                        self.state = State::Ground;
                    }
                }
                State::StrEsc(pass, osc) => {
                    if input[i] == b'\\' {
                        if pass {
                            out.extend_from_slice(b"\x1b\\");
                        }
                        i += 1;
                        self.state = State::Ground;
                    } else if !pass {
                        // Dropping, err on the side of dropping more: only
                        // ST ends it (tmux passthrough doubles its ESCs).
                        i += 1;
                        self.state = State::Str(false, osc);
                    } else {
                        // Unterminated: the ESC begins a new sequence.
                        self.seq.clear();
                        self.seq.push(0x1b);
                        self.state = State::Esc;
                    }
                }
                State::CsiPass => {
                    let b = input[i];
                    i += 1;
                    out.push(b);
                    if (0x40..=0x7e).contains(&b) {
                        self.state = State::Ground;
                    }
                }
                State::Esc | State::EscInter | State::Csi | State::StrHead(_) => {
                    let b = input[i];
                    i += 1;
                    self.step(b, out);
                }
            }
        }
    }

    /// One byte of a held sequence.
    fn step(&mut self, b: u8, out: &mut Vec<u8>) {
        if b == 0x1b {
            // A new sequence aborts the held one, which goes out as it was.
            out.extend_from_slice(&self.seq);
            self.seq.clear();
            self.seq.push(0x1b);
            self.state = State::Esc;
            return;
        }
        self.seq.push(b);
        match self.state {
            State::Esc => match b {
                b'[' => self.state = State::Csi,
                b']' | b'P' => self.state = State::StrHead(b),
                b'_' | b'^' | b'X' => self.pass_string(out, false),
                0x20..=0x2f => self.state = State::EscInter,
                _ => self.emit(out),
            },
            State::EscInter if !(0x20..=0x2f).contains(&b) => self.emit(out),
            State::Csi => {
                if (0x40..=0x7e).contains(&b) {
                    match csi_kind(&self.seq) {
                        Kind::Pass => self.emit(out),
                        Kind::Drop => self.drop_seq(),
                        Kind::Query => self.query(out),
                    }
                } else if matches!(b, 0x18 | 0x1a) {
                    self.emit(out);
                } else if self.seq.len() > MAX_HELD {
                    out.extend_from_slice(&self.seq);
                    self.seq.clear();
                    self.state = State::CsiPass;
                }
            }
            State::StrHead(kind) => {
                let end = matches!(b, 0x18 | 0x1a) || (kind == b']' && b == 0x07);
                let decided = if kind == b']' {
                    osc_kind(&self.seq, end, self.allow_clipboard)
                } else {
                    dcs_kind(&self.seq, end)
                };
                let decided = decided.or((self.seq.len() > MAX_HELD).then_some(Kind::Pass));
                if let Some(k) = decided {
                    let k = match k {
                        Kind::Query if !self.answers_reach_program => Kind::Drop,
                        k => k,
                    };
                    if k == Kind::Query {
                        self.queried = true;
                    }
                    match (k, end) {
                        (Kind::Drop, true) => self.drop_seq(),
                        (Kind::Drop, false) => {
                            self.seq.clear();
                            self.state = State::Str(false, kind == b']');
                        }
                        (_, true) => self.emit(out),
                        (_, false) => self.pass_string(out, kind == b']'),
                    }
                }
            }
            _ => {}
        }
    }

    /// The held sequence goes out whole; back to text.
    fn emit(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seq);
        self.seq.clear();
        self.state = State::Ground;
    }

    /// The held sequence is dropped; back to text.
    fn drop_seq(&mut self) {
        self.seq.clear();
        self.state = State::Ground;
    }

    /// A query: passes only when its answer reaches the program.
    fn query(&mut self, out: &mut Vec<u8>) {
        if self.answers_reach_program {
            self.queried = true;
            self.emit(out);
        } else {
            self.drop_seq();
        }
    }

    /// The string's head goes out; the rest streams through (`osc`: BEL ends it too).
    fn pass_string(&mut self, out: &mut Vec<u8>, osc: bool) {
        out.extend_from_slice(&self.seq);
        self.seq.clear();
        self.state = State::Str(true, osc);
    }
}

/// What to do with a classified sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Let it through.
    Pass,
    /// Never let it through.
    Drop,
    /// A query: through only when the answer reaches the program.
    Query,
}

/// Classify a complete CSI (`ESC [ ... final`).
fn csi_kind(seq: &[u8]) -> Kind {
    let body = &seq[2..seq.len() - 1];
    let fin = seq[seq.len() - 1];
    let (prefix, rest) = match body.first() {
        Some(&p @ (b'<' | b'=' | b'>' | b'?')) => (p, &body[1..]),
        _ => (0, body),
    };
    let inter: Vec<u8> = rest
        .iter()
        .copied()
        .filter(|b| (0x20..=0x2f).contains(b))
        .collect();
    let first: u32 = rest
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u32, |n, &d| {
            n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
        });
    match (prefix, inter.as_slice(), fin) {
        // Window operations: title/icon reports (20, 21) would type the
        // program's text into the operator's shell; moving, resizing or
        // iconifying the operator's window is not the program's business.
        // Title stack push/pop (22, 23) and size reports are harmless.
        (0, [], b't') => match first {
            22 | 23 => Kind::Pass,
            11 | 13 | 14 | 15 | 16 | 18 | 19 => Kind::Query,
            _ => Kind::Drop,
        },
        // Device attributes (DA1, DA2, DA3).
        (0 | b'>' | b'=', [], b'c') => Kind::Query,
        // Device status and cursor position reports.
        (0 | b'?', [], b'n') => Kind::Query,
        // DECRQM (mode queries).
        (0 | b'?', [b'$'], b'p') => Kind::Query,
        // XTVERSION, kitty keyboard flags, XTQMODKEYS, XTSMGRAPHICS, DECREQTPARM.
        (b'>', [], b'q') | (b'?', [], b'u') | (b'?', [], b'm') | (b'?', [], b'S') => Kind::Query,
        (0, [], b'x') => Kind::Query,
        _ => Kind::Pass,
    }
}

/// Classify an OSC head (`ESC ] ...`) once its number is known; `end`:
/// the string just ended (BEL, CAN or SUB is the last byte). None: more
/// bytes are needed.
fn osc_kind(seq: &[u8], end: bool, allow_clipboard: bool) -> Option<Kind> {
    let body = &seq[2..];
    let body = if end { &body[..body.len() - 1] } else { body };
    let Some(semi) = body.iter().position(|&b| b == b';') else {
        return end
            .then_some(Kind::Pass)
            .or((body.len() > 8).then_some(Kind::Pass));
    };
    match &body[..semi] {
        b"52" => {
            if !allow_clipboard {
                return Some(Kind::Drop);
            }
            // `52;SEL;DATA`: a DATA of `?` reads the clipboard: never.
            let after = &body[semi + 1..];
            let Some(s2) = after.iter().position(|&b| b == b';') else {
                return (end || after.len() > 16).then_some(Kind::Drop);
            };
            match after.get(s2 + 1) {
                Some(b'?') => Some(Kind::Drop),
                Some(_) => Some(Kind::Pass),
                None if end => Some(Kind::Drop),
                None => None,
            }
        }
        // Colour queries (`4;N;?`, `10;?` …) are answered; setting passes.
        b"4" | b"5" | b"10" | b"11" | b"12" | b"13" | b"14" | b"15" | b"16" | b"17" | b"18"
        | b"19" => {
            if body[semi..].contains(&b'?') {
                Some(Kind::Query)
            } else if end || body.len() > 24 {
                Some(Kind::Pass)
            } else {
                None
            }
        }
        _ => Some(Kind::Pass),
    }
}

/// Classify a DCS head (`ESC P ...`): DECRQSS (`$q`) and XTGETTCAP (`+q`)
/// are queries; tmux passthrough (`tmux;`) would reach past the operator's
/// tmux (to its clipboard, say) and is dropped.
fn dcs_kind(seq: &[u8], end: bool) -> Option<Kind> {
    let body = &seq[2..];
    if body.starts_with(b"$q") || body.starts_with(b"+q") {
        return Some(Kind::Query);
    }
    if body.starts_with(b"tmux;") {
        return Some(Kind::Drop);
    }
    if end || body.len() >= 5 || !b"tmux;".starts_with(body) && body.len() >= 2 {
        return Some(Kind::Pass);
    }
    None
}

/// Index of the first ESC, eight bytes at a time (the common case is long
/// runs of text between escape sequences).
fn find_esc(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const ESC: u64 = 0x1b * LO;
    let mut i = 0;
    while i + 8 <= s.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        let x = u64::from_le_bytes(w) ^ ESC;
        if x.wrapping_sub(LO) & !x & HI != 0 {
            break;
        }
        i += 8;
    }
    s[i..].iter().position(|&b| b == 0x1b).map(|k| i + k)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Filter `input` in every possible two-piece split; all must agree.
    fn run(allow_clipboard: bool, answers: bool, input: &[u8]) -> Vec<u8> {
        let mut whole = Vec::new();
        OutputFilter::new(allow_clipboard, answers).filter(input, &mut whole);
        for cut in 0..input.len() {
            let mut f = OutputFilter::new(allow_clipboard, answers);
            let mut out = Vec::new();
            f.filter(&input[..cut], &mut out);
            f.filter(&input[cut..], &mut out);
            assert_eq!(out, whole, "split at {cut}");
        }
        whole
    }

    #[test]
    fn text_and_ordinary_sequences_pass_untouched() {
        let s = b"plain \x1b[1;31mred\x1b[0m \x1b(0q\x1b(B \x1b]0;title\x07 \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x1b[?1049h\x1b[2J";
        assert_eq!(run(false, true, s), s.to_vec());
        assert_eq!(run(false, false, s), s.to_vec());
        assert_eq!(find_esc(b"0123456789abcdef\x1b"), Some(16));
        assert_eq!(find_esc(b"0123456789"), None);
    }

    #[test]
    fn clipboard_writes_pass_only_when_allowed_and_reads_never() {
        let write = b"a\x1b]52;c;aGVsbG8=\x07b\x1b]52;p;aGk=\x1b\\c";
        assert_eq!(run(false, true, write), b"abc".to_vec());
        assert_eq!(run(true, true, write), write.to_vec());
        let read = b"a\x1b]52;c;?\x07b";
        assert_eq!(run(true, true, read), b"ab".to_vec());
        // tmux passthrough would carry it past the operator's tmux.
        let smuggled = b"a\x1bPtmux;\x1b\x1b]52;c;aGk=\x07\x1b\\b";
        assert_eq!(run(false, true, smuggled), b"ab".to_vec());
    }

    #[test]
    fn title_reports_and_window_operations_never_pass() {
        let s = b"a\x1b[21tb\x1b[20tc\x1b[8;100;300td\x1b[22;0te\x1b[2t";
        assert_eq!(run(false, true, s), b"abcd\x1b[22;0te".to_vec());
    }

    #[test]
    fn queries_pass_only_when_answers_reach_the_program() {
        let q =
            b"a\x1b[c\x1b[>c\x1b[6n\x1b[?u\x1b[?2004$p\x1b[>q\x1b]11;?\x07\x1bP$qm\x1b\\\x1b[18tb";
        let mut f = OutputFilter::new(false, true);
        let mut out = Vec::new();
        f.filter(q, &mut out);
        assert_eq!(out, q.to_vec());
        assert!(f.take_queried());
        assert!(!f.take_queried());
        assert_eq!(run(false, false, q), b"ab".to_vec());
        // Setting a colour is not a query.
        let set = b"\x1b]11;#000000\x07\x1b[>4;1m";
        assert_eq!(run(false, false, set), set.to_vec());
    }
}
