//! Text meant for humans never carries a program's control characters:
//! escaping for one-line fields (`ps`, `inspect`, error messages), for
//! multi-line text (`logs`), and shell quoting for commands.

use std::borrow::Cow;

/// Bidirectional overrides and isolates: they reorder what a terminal shows
/// (U+202A..U+202E, U+2066..U+2069).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Characters a terminal would act on instead of showing: C0, DEL, C1 and
/// the bidi controls.
fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// How one unsafe character is shown: `\n`, `\t`, `\r`, `\e`, `\xNN` or
/// `\u{NNNN}` (`\uNNNN` in a shell's `$'...'`).
fn push_escaped(out: &mut String, c: char) {
    push_escaped_as(out, c, false)
}

/// See [`push_escaped`]; `shell` picks bash's `$'...'` spelling.
fn push_escaped_as(out: &mut String, c: char, shell: bool) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\x1b' => out.push_str("\\e"),
        c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if shell => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// A one-line field for humans: every control character (newline
/// included) and bidi control is shown escaped, and so is a backslash
/// that would make the result ambiguous.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// An error or warning line: like [`text`], but a newline the message
/// itself carries stays one.
pub fn message(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && c != '\n') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.split('\n').map(text).collect::<Vec<_>>().join("\n"))
}

/// Multi-line text for a terminal (`nono logs`): newlines and tabs stay,
/// every other control character and bidi control is shown escaped.
/// Invalid UTF-8 passes through as it came (a terminal shows it as U+FFFD).
pub fn lines_into(bytes: &[u8], out: &mut Vec<u8>) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (v, b) = rest.split_at(e.valid_up_to());
                // from_utf8 just said this prefix is valid.
                (std::str::from_utf8(v).unwrap_or(""), b)
            }
        };
        for c in valid.chars() {
            if is_unsafe(c) && c != '\n' && c != '\t' {
                let mut s = String::new();
                push_escaped(&mut s, c);
                out.extend_from_slice(s.as_bytes());
            } else {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
        if bad.is_empty() {
            break;
        }
        // One invalid byte at a time, then go on decoding.
        out.push(bad[0]);
        rest = &bad[1..];
    }
}

/// Bytes that need no quoting in a POSIX shell word.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c)
}

/// One argument as a shell would need it typed: as is when plain, in
/// single quotes otherwise, or as `$'...'` when it holds a control or bidi
/// character (so `python3 -c 'print(1)'` and a newline as `$'\n'`).
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(is_plain) {
        return arg.to_string();
    }
    if !arg.chars().any(is_unsafe) {
        return format!("'{}'", arg.replace('\'', "'\\''"));
    }
    let mut out = String::from("$'");
    for c in arg.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c if is_unsafe(c) => push_escaped_as(&mut out, c, true),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A command line for humans: each argument shell-quoted, joined by spaces.
pub fn command(args: &[String]) -> String {
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_shown_escaped() {
        assert_eq!(text("plain name"), "plain name");
        assert_eq!(
            text("a\x1b[2Jb\n\u{202e}c\u{2066}"),
            "a\\e[2Jb\\n\\u{202e}c\\u{2066}"
        );
        assert_eq!(text("\x07\u{9b}\x7f"), "\\x07\\x9b\\x7f");
        let mut out = Vec::new();
        lines_into(b"one\n\ttwo\x1b]2;title\x07\r\n\xe2\x80\xae!\xff", &mut out);
        assert_eq!(
            out,
            b"one\n\ttwo\\e]2;title\\x07\\r\n\\u{202e}!\xff".to_vec()
        );
    }

    #[test]
    fn commands_are_shell_quoted() {
        let args: Vec<String> = ["python3", "-c", "print(1)", "", "it's", "a\nb", "x\u{202e}"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            command(&args),
            "python3 -c 'print(1)' '' 'it'\\''s' $'a\\nb' $'x\\u202e'"
        );
    }
}
