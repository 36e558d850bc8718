//! The one TOML reader for config and profiles: the subset nono uses —
//! `[section]` headers, `key = value` with a string ("basic" or 'literal'),
//! a decimal number, a boolean or a flat list of those (which may span
//! lines), and `#` comments — read into nanoserde's `Toml` values. Every
//! error names its true line, quotes it and says what is wrong; a key or a
//! table given twice is refused (TOML forbids both).

use nanoserde::Toml;
use std::collections::BTreeMap;

/// A parsed document.
#[derive(Debug, Default)]
pub struct Doc {
    /// `section.key` to its value.
    pub table: BTreeMap<String, Toml>,
    /// `section.key` to the 1-based line it is set on.
    pub lines: BTreeMap<String, usize>,
}

/// An error on line `n` (text `line`): `line N: 'TEXT': WHAT`.
fn err(n: usize, line: &str, what: &str) -> String {
    let mut shown: String = line.trim().chars().take(60).collect();
    if line.trim().chars().count() > 60 {
        shown.push('\u{2026}');
    }
    format!("line {n}: '{shown}': {what}")
}

/// Parse `text`.
pub fn parse(text: &str) -> Result<Doc, String> {
    let mut doc = Doc::default();
    let mut section = String::new();
    let mut tables: BTreeMap<String, usize> = BTreeMap::new();
    // A list still open: its key, its items so far, and its first line.
    let mut open: Option<(String, Vec<Toml>, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if let Some((key, mut items, start)) = open.take() {
            if list_items(raw, raw, n, &mut items)? {
                doc.table.insert(key, Toml::SimpleArray(items));
            } else {
                open = Some((key, items, start));
            }
            continue;
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            if rest.starts_with('[') {
                return Err(err(n, raw, "arrays of tables ([[...]]) are not supported"));
            }
            let (name, after) = rest
                .split_once(']')
                .ok_or_else(|| err(n, raw, "a table header needs its closing ']'"))?;
            let name = name.trim();
            if !is_key(name) || !is_blank_or_comment(after) {
                return Err(err(n, raw, "expected a table header such as '[ui]'"));
            }
            if let Some(first) = tables.get(name) {
                return Err(err(
                    n,
                    raw,
                    &format!("table [{name}] is defined twice (first on line {first}); merge them"),
                ));
            }
            tables.insert(name.to_string(), n);
            section = name.to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(err(
                n,
                raw,
                "expected 'key = value', '[table]' or a # comment",
            ));
        };
        let key = key.trim();
        if !is_key(key) {
            return Err(err(
                n,
                raw,
                "a key is letters, digits, '_' and '-' (quoted keys are not supported)",
            ));
        }
        let full = if section.is_empty() {
            key.to_string()
        } else {
            format!("{section}.{key}")
        };
        if let Some(first) = doc.lines.get(&full) {
            return Err(err(
                n,
                raw,
                &format!("'{full}' is set twice (first on line {first})"),
            ));
        }
        doc.lines.insert(full.clone(), n);
        let value = value.trim_start();
        if value.is_empty() || value.starts_with('#') {
            return Err(err(n, raw, &format!("'{key}' has no value after '='")));
        }
        if let Some(rest) = value.strip_prefix('[') {
            let mut items = Vec::new();
            if list_items(raw, rest, n, &mut items)? {
                doc.table.insert(full, Toml::SimpleArray(items));
            } else {
                open = Some((full, items, n));
            }
            continue;
        }
        let (v, rest) = scalar(value).map_err(|m| err(n, raw, &m))?;
        if !is_blank_or_comment(rest) {
            return Err(err(
                n,
                raw,
                &format!("unexpected '{}' after the value", rest.trim()),
            ));
        }
        doc.table.insert(full, v);
    }
    if let Some((key, _, start)) = open {
        let first = text.lines().nth(start - 1).unwrap_or_default();
        return Err(err(
            start,
            first,
            &format!("the list of '{key}' opened here is never closed with ']'"),
        ));
    }
    Ok(doc)
}

/// A bare key: letters, digits, `_`, `-` (and `.` for dotted names).
fn is_key(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

fn is_blank_or_comment(s: &str) -> bool {
    let s = s.trim_start();
    s.is_empty() || s.starts_with('#')
}

/// One scalar at the start of `s`: its value and the rest of the line.
fn scalar(s: &str) -> Result<(Toml, &str), String> {
    if s.starts_with("\"\"\"") || s.starts_with("'''") {
        return Err("multi-line strings are not supported; use one line".into());
    }
    if let Some(body) = s.strip_prefix('"') {
        return basic_string(body);
    }
    if let Some(body) = s.strip_prefix('\'') {
        let end = body
            .find('\'')
            .ok_or("this 'string' is never closed with '")?;
        return Ok((Toml::Str(body[..end].to_string()), &body[end + 1..]));
    }
    if s.starts_with(['{', '[']) {
        return Err("nested lists and inline tables are not supported".into());
    }
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || "+-._:".contains(c)))
        .unwrap_or(s.len());
    let (token, rest) = s.split_at(end);
    match token {
        "true" => return Ok((Toml::Bool(true), rest)),
        "false" => return Ok((Toml::Bool(false), rest)),
        "" => return Err(format!("expected a value, found '{}'", first_word(s))),
        _ => {}
    }
    number(token).map(|v| (Toml::Num(v), rest))
}

/// The first whitespace-delimited word of `s`, for messages.
fn first_word(s: &str) -> String {
    s.split_whitespace()
        .next()
        .unwrap_or_default()
        .chars()
        .take(30)
        .collect()
}

/// A plain decimal number: an optional sign, digits (with `_` between
/// them), an optional fraction.
fn number(token: &str) -> Result<f64, String> {
    let body = token.strip_prefix(['+', '-']).unwrap_or(token);
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "nan" {
        return Err(format!(
            "'{token}' is not a number nono accepts; give digits"
        ));
    }
    if lower.starts_with("0x") || lower.starts_with("0o") || lower.starts_with("0b") {
        return Err(format!("'{token}': hexadecimal, octal and binary numbers are not supported; give decimal digits"));
    }
    if body.starts_with(|c: char| c.is_ascii_digit()) && lower.contains('e') {
        return Err(format!(
            "'{token}': numbers with an exponent are not supported; write the digits out (1e3 is 1000)"
        ));
    }
    if token.contains(':') || body.matches('-').count() > 0 {
        return Err(format!(
            "'{token}' is not a value nono reads (dates and times are not supported; strings go in \"quotes\")"
        ));
    }
    let digits_ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with('_')
            && !part.ends_with('_')
            && !part.contains("__")
            && part.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if !digits_ok(int) || frac.is_some_and(|f| !digits_ok(f)) {
        return Err(format!(
            "'{token}' is not a value: strings go in \"quotes\", numbers are digits, booleans are true or false"
        ));
    }
    token
        .replace('_', "")
        .parse()
        .map_err(|_| format!("'{token}' is not a number"))
}

/// The rest of a "basic string" after its opening quote, unescaped.
fn basic_string(body: &str) -> Result<(Toml, &str), String> {
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Toml::Str(out), &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next().ok_or("a string ends in a lone '\\'")?;
                match e {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'e' => out.push('\u{1b}'),
                    'u' | 'U' => {
                        let len = if e == 'u' { 4 } else { 8 };
                        let hex: String = chars.by_ref().take(len).map(|(_, h)| h).collect();
                        let ch = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == len)
                            .and_then(char::from_u32)
                            .ok_or_else(|| format!("'\\{e}{hex}' is not a valid escape"))?;
                        out.push(ch);
                    }
                    other => {
                        return Err(format!(
                            "'\\{other}' is not an escape TOML knows; write '\\\\' for a backslash, or use a 'literal string'"
                        ))
                    }
                }
            }
            c if c.is_control() && c != '\t' => {
                return Err("a string may not contain control characters; use escapes".into())
            }
            c => out.push(c),
        }
    }
    Err("this \"string\" is never closed with \"".into())
}

/// Read list items from `s`, part of line `n` (`raw`), into `items`; true
/// once `]` closes the list.
fn list_items(raw: &str, s: &str, n: usize, items: &mut Vec<Toml>) -> Result<bool, String> {
    let mut s = s;
    let mut need_comma = false;
    loop {
        s = s.trim_start();
        if s.is_empty() || s.starts_with('#') {
            return Ok(false);
        }
        if let Some(rest) = s.strip_prefix(']') {
            if !is_blank_or_comment(rest) {
                return Err(err(
                    n,
                    raw,
                    &format!("unexpected '{}' after the end of the list", rest.trim()),
                ));
            }
            return Ok(true);
        }
        if let Some(rest) = s.strip_prefix(',') {
            if !need_comma {
                return Err(err(n, raw, "a list item is missing before ','"));
            }
            need_comma = false;
            s = rest;
            continue;
        }
        if need_comma {
            return Err(err(n, raw, "expected ',' or ']' between list items"));
        }
        let (v, rest) = scalar(s).map_err(|m| err(n, raw, &m))?;
        items.push(v);
        need_comma = true;
        s = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn str_of(d: &Doc, k: &str) -> String {
        match &d.table[k] {
            Toml::Str(s) => s.clone(),
            other => panic!("{k}: {other:?}"),
        }
    }

    #[test]
    fn keys_get_their_lines_sections_and_values() {
        let d = parse("a = 1\n[meta]\n# c\ndescription = \"x # y\" # z\n[fs]\nallow = [\n  \"/a\", # one\n  '/b\\c',\n]\nn = true\nq = ''\nf = -1_000.5\n").unwrap();
        assert_eq!(d.lines["a"], 1);
        assert_eq!(d.lines["meta.description"], 4);
        assert_eq!(d.lines["fs.allow"], 6);
        assert_eq!(d.lines["fs.n"], 10);
        assert_eq!(str_of(&d, "meta.description"), "x # y");
        assert_eq!(str_of(&d, "fs.q"), "");
        assert_eq!(
            d.table["fs.allow"],
            Toml::SimpleArray(vec![Toml::Str("/a".into()), Toml::Str("/b\\c".into())])
        );
        assert_eq!(d.table["fs.n"], Toml::Bool(true));
        assert_eq!(d.table["fs.f"], Toml::Num(-1000.5));
        assert_eq!(d.table["a"], Toml::Num(1.0));
        let d = parse("s = \"tab\\t\\u00e9\\\"\"").unwrap();
        assert_eq!(str_of(&d, "s"), "tab\t\u{e9}\"");
    }

    #[test]
    fn malformed_input_names_and_quotes_its_line_and_says_what_is_wrong() {
        for (text, line, says) in [
            ("[ui\n", 1, "closing ']'"),
            ("[ui]\nx = = 1\n", 2, "expected a value"),
            ("[ui]\n\n\nfoo bar\n", 4, "expected 'key = value'"),
            ("x = allowed\n", 1, "strings go in \"quotes\""),
            ("x = \"open\n", 1, "never closed"),
            ("x = [\"a\",\n\n  [\"b\"]]\n", 3, "nested lists"),
            ("x = [\"a\" \"b\"]\n", 1, "expected ',' or ']'"),
            ("x = [\"a\",\n", 1, "never closed with ']'"),
            ("x = 1\nx = 2\n", 2, "set twice (first on line 1)"),
            (
                "[ui]\na = 1\n[ui]\nb = 2\n",
                3,
                "table [ui] is defined twice (first on line 1)",
            ),
            ("[[t]]\n", 1, "arrays of tables"),
            ("x = {a = 1}\n", 1, "inline tables"),
            ("x = \"\"\"long\"\"\"\n", 1, "multi-line strings"),
            ("x = [1] 2\n", 1, "after the end of the list"),
            ("\n\nx = 1e3\n", 3, "exponent"),
            ("x = nan\n", 1, "not a number"),
            ("x = 0x10\n", 1, "hexadecimal"),
            ("x = 1979-05-27\n", 1, "dates"),
            ("x =\n", 1, "no value"),
            ("x = \"\\q\"\n", 1, "not an escape"),
            ("x = 'a\n", 1, "never closed"),
        ] {
            let e = parse(text).unwrap_err();
            let quoted = text.lines().nth(line - 1).unwrap().trim();
            assert!(
                e.starts_with(&format!("line {line}: '{quoted}': ")) && e.contains(says),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn random_text_never_panics() {
        let mut x: u64 = 11;
        let alphabet = "[]=\"'#.\n abc_-0123456789{},\\éeu";
        let chars: Vec<char> = alphabet.chars().collect();
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(x % 50) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(chars[(x % chars.len() as u64) as usize]);
            }
            let _ = parse(&s);
        }
    }
}
