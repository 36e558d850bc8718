//! A strict JSON syntax check (RFC 8259) run before nanoserde sees a file
//! we read. nanoserde 0.2 loops forever or panics on some malformed input
//! while skipping unknown fields (`{"x":[` spins, `{"x":}` panics), so only
//! well-formed, shallow JSON reaches it.

/// Nesting deeper than this is refused: our records are flat, and the
/// bound keeps the recursion below small and the stack safe.
const MAX_DEPTH: usize = 32;

/// Ok when `text` is one well-formed JSON value (with optional whitespace
/// around it); otherwise what is wrong and at which byte.
pub fn check(text: &str) -> Result<(), String> {
    let mut p = Checker {
        b: text.as_bytes(),
        i: 0,
    };
    p.ws();
    p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(p.err("unexpected data after the value"));
    }
    Ok(())
}

/// Cursor over the bytes.
struct Checker<'a> {
    /// The text.
    b: &'a [u8],
    /// Position of the next byte.
    i: usize,
}

impl Checker<'_> {
    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.i)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), String> {
        if self
            .b
            .get(self.i..)
            .is_some_and(|rest| rest.starts_with(word))
        {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    fn value(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        match self.peek() {
            Some(b'{') => self.container(depth, b'}', true),
            Some(b'[') => self.container(depth, b']', false),
            Some(b'"') => self.string(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end")),
        }
    }

    /// An object (`keyed`) or array, the opening bracket at the cursor.
    fn container(&mut self, depth: usize, close: u8, keyed: bool) -> Result<(), String> {
        self.i += 1;
        self.ws();
        if self.eat(close) {
            return Ok(());
        }
        loop {
            self.ws();
            if keyed {
                self.string()?;
                self.ws();
                if !self.eat(b':') {
                    return Err(self.err("expected ':'"));
                }
                self.ws();
            }
            self.value(depth + 1)?;
            self.ws();
            if self.eat(b',') {
                continue;
            }
            if self.eat(close) {
                return Ok(());
            }
            return Err(self.err("expected ',' or a closing bracket"));
        }
    }

    fn string(&mut self) -> Result<(), String> {
        if !self.eat(b'"') {
            return Err(self.err("expected a string"));
        }
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                    return Err(self.err("bad \\u escape"));
                                }
                                self.i += 1;
                            }
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                Some(c) if c < 0x20 => return Err(self.err("control character in a string")),
                Some(_) => self.i += 1,
            }
        }
    }

    fn number(&mut self) -> Result<(), String> {
        self.eat(b'-');
        if !self.eat(b'0') && self.digits() == 0 {
            return Err(self.err("bad number"));
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.err("bad fraction"));
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(self.err("bad exponent"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn well_formed_json_passes() {
        for ok in [
            "{}",
            " [ ] ",
            r#"{"a":[1,-2.5e+3,0,true,false,null,"x\u00e9\n"],"b":{"c":{}}}"#,
            "\"just a string\"",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn the_inputs_that_hang_or_crash_nanoserde_are_refused() {
        for bad in [
            "{\"x\":[",
            "{\"x\":[1,",
            "{\"version\":1,\"x\":{",
            "{\"x\":}",
            "{\"x\":",
            "{\"x\":]",
            "{\"ersion\"::1}",
            "",
            "{} x",
            "01",
            "1.",
            "\"\u{1}\"",
            "[\"\\q\"]",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(check(&deep).unwrap_err().contains("too deeply"));
    }
}
