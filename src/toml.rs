//! The subset of TOML nono reads (config and profiles), checked before
//! nanoserde sees it: `[section]` headers, `key = value` with a string,
//! number, boolean or a flat array of those (which may span lines), and
//! `#` comments. The check gives every error its true line, finds each
//! key's line for later messages, and refuses duplicate keys and nesting —
//! nanoserde's own line numbers drift, a repeated key silently wins, and
//! its array parser recurses without bound.

use std::collections::BTreeMap;

/// Check `text`; on success, the 1-based line of every `section.key`.
pub fn check(text: &str) -> Result<BTreeMap<String, usize>, String> {
    let mut keys = BTreeMap::new();
    let mut section = String::new();
    // Line where the array still open began.
    let mut open_array: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if open_array.is_some() {
            if array_items(raw, n)? {
                open_array = None;
            }
            continue;
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            if rest.starts_with('[') {
                return Err(format!(
                    "line {n}: arrays of tables ('[[...]]') are not supported"
                ));
            }
            let (name, after) = rest.split_once(']').ok_or_else(|| expected(n, line))?;
            let name = name.trim();
            if !is_key(name) || !is_blank_or_comment(after) {
                return Err(expected(n, line));
            }
            section = name.to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(expected(n, line));
        };
        let key = key.trim();
        if !is_key(key) {
            return Err(expected(n, line));
        }
        let full = if section.is_empty() {
            key.to_string()
        } else {
            format!("{section}.{key}")
        };
        if let Some(first) = keys.get(&full) {
            return Err(format!(
                "line {n}: '{full}' is set twice (first on line {first})"
            ));
        }
        keys.insert(full, n);
        let value = value.trim_start();
        if let Some(items) = value.strip_prefix('[') {
            if !array_items(items, n)? {
                open_array = Some(n);
            }
        } else {
            let rest = scalar(value).ok_or_else(|| expected(n, line))?;
            if !is_blank_or_comment(rest) {
                return Err(expected(n, line));
            }
        }
    }
    if let Some(n) = open_array {
        return Err(format!("line {n}: the list opened here is never closed"));
    }
    Ok(keys)
}

/// The error for a line that is not a header, key = value, comment or blank.
fn expected(n: usize, line: &str) -> String {
    format!(
        "line {n}: expected '[section]', 'key = value' or a comment, found '{}'",
        line.chars().take(60).collect::<String>()
    )
}

/// A bare key: letters, digits, `_`, `-` (and `.` for dotted names).
fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

fn is_blank_or_comment(s: &str) -> bool {
    let s = s.trim_start();
    s.is_empty() || s.starts_with('#')
}

/// Consume one scalar value at the start of `s`; the rest of the line, or
/// None when `s` does not start with a value.
fn scalar(s: &str) -> Option<&str> {
    let bytes = s.as_bytes();
    match bytes.first()? {
        b'"' => {
            if s.starts_with("\"\"\"") {
                return None;
            }
            let mut escaped = false;
            for (i, c) in s.char_indices().skip(1) {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => return Some(&s[i + 1..]),
                    _ => {}
                }
            }
            None
        }
        b'\'' => {
            if s.starts_with("'''") {
                return None;
            }
            let end = s[1..].find('\'')?;
            Some(&s[end + 2..])
        }
        _ => {
            let end = s
                .find(|c: char| !(c.is_ascii_alphanumeric() || "+-._:".contains(c)))
                .unwrap_or(s.len());
            let token = &s[..end];
            let numeric = token.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-');
            (numeric || token == "true" || token == "false").then_some(&s[end..])
        }
    }
}

/// Check array items on one line (`a, "b", 3`); true once `]` closes it.
fn array_items(mut s: &str, n: usize) -> Result<bool, String> {
    loop {
        s = s.trim_start_matches([' ', '\t', ',']);
        if s.is_empty() || s.starts_with('#') {
            return Ok(false);
        }
        if let Some(rest) = s.strip_prefix(']') {
            if !is_blank_or_comment(rest) {
                return Err(format!(
                    "line {n}: unexpected '{}' after the end of the list",
                    rest.trim()
                ));
            }
            return Ok(true);
        }
        if s.starts_with('[') || s.starts_with('{') {
            return Err(format!(
                "line {n}: nested lists and inline tables are not supported"
            ));
        }
        let rest = scalar(s).ok_or_else(|| {
            format!(
                "line {n}: expected a list item (a \"string\", number or true/false), found '{}'",
                s.trim().chars().take(40).collect::<String>()
            )
        })?;
        if !(rest.trim_start().is_empty() || rest.trim_start().starts_with([',', ']', '#'])) {
            return Err(format!(
                "line {n}: expected ',' or ']' after a list item, found '{}'",
                rest.trim().chars().take(40).collect::<String>()
            ));
        }
        s = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_get_their_lines_and_sections() {
        let k = check("a = 1\n[meta]\n# c\ndescription = \"x # y\" # z\n[fs]\nallow = [\n  \"/a\", # one\n  '/b',\n]\nn = true\n").unwrap();
        assert_eq!(k["a"], 1);
        assert_eq!(k["meta.description"], 4);
        assert_eq!(k["fs.allow"], 6);
        assert_eq!(k["fs.n"], 10);
    }

    #[test]
    fn malformed_input_names_its_line() {
        for (text, line) in [
            ("[ui\n", 1),
            ("[ui]\nx = = 1\n", 2),
            ("[ui]\n\n\nfoo bar\n", 4),
            ("x = allowed\n", 1),
            ("x = \"open\n", 1),
            ("x = [\"a\",\n\n  [\"b\"]]\n", 3),
            ("x = [\"a\" \"b\"]\n", 1),
            ("x = [\"a\",\n", 1),
            ("x = 1\nx = 2\n", 2),
            ("[[t]]\n", 1),
            ("x = {a = 1}\n", 1),
            ("x = \"\"\"long\"\"\"\n", 1),
            ("x = [1] 2\n", 1),
        ] {
            let e = check(text).unwrap_err();
            assert!(e.starts_with(&format!("line {line}:")), "{text:?}: {e}");
        }
    }

    #[test]
    fn random_text_never_panics() {
        let mut x: u64 = 11;
        let alphabet = "[]=\"'#.\n abc_-0123456789{},\\é";
        let chars: Vec<char> = alphabet.chars().collect();
        for _ in 0..5_000 {
            let mut s = String::new();
            for _ in 0..(x % 50) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(chars[(x % chars.len() as u64) as usize]);
            }
            if check(&s).is_ok() {
                // What passes the check must not trip nanoserde either.
                let _ = nanoserde::TomlParser::parse(&s);
            }
        }
    }
}
