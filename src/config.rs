//! `$XDG_CONFIG_HOME/nono/config.toml`, and the detach-sequence grammar and
//! matcher the attach client runs over the user's keystrokes.

use crate::defaults;
use crate::error::{Error, Result};
use nanoserde::Toml;
use std::path::{Path, PathBuf};

/// The user's settings, with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Bytes of the detach sequence (from `[ui] detach_sequence`).
    pub detach_sequence: Vec<u8>,
    /// The sequence as the user wrote it, for messages.
    pub detach_sequence_text: String,
    /// Main-screen history lines the terminal model keeps (`[ui] scrollback_lines`).
    pub scrollback_lines: usize,
    /// Let programs set this terminal's clipboard (OSC 52; `[ui] allow_clipboard`).
    pub allow_clipboard: bool,
    /// Rollback: files larger than this are not captured (`[rollback] max_file_bytes`).
    pub rollback_max_file_bytes: u64,
    /// Rollback: most files one capture may hold (`[rollback] max_files`).
    pub rollback_max_files: u64,
    /// Rollback: most bytes one capture may hold (`[rollback] max_bytes`).
    pub rollback_max_bytes: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            detach_sequence: parse_detach_sequence(defaults::DETACH_SEQUENCE)
                .unwrap_or_else(|_| vec![0x1d, b'd']),
            detach_sequence_text: defaults::DETACH_SEQUENCE.into(),
            scrollback_lines: defaults::SCROLLBACK_LINES,
            allow_clipboard: false,
            rollback_max_file_bytes: defaults::ROLLBACK_MAX_FILE_BYTES,
            rollback_max_files: defaults::ROLLBACK_MAX_FILES,
            rollback_max_bytes: defaults::ROLLBACK_MAX_BYTES,
        }
    }
}

/// `$XDG_CONFIG_HOME/nono`, or `~/.config/nono`.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| Path::new(v).is_absolute()) {
        return Some(PathBuf::from(x).join("nono"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".config/nono"))
}

/// Largest scrollback we accept: beyond this a session's memory is better
/// spent elsewhere (1,000,000 lines is ~100 MiB of text).
const MAX_SCROLLBACK_LINES: usize = 1_000_000;

/// Refuse a config directory or file that someone else could change: it
/// must be ours and not writable by group or others. Symlinks (dotfile
/// managers) are followed and their target is what gets checked; a
/// missing path is fine (defaults apply).
fn check_not_writable_by_others(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        _ => check_trusted(path, false),
    }
}

/// Our own config directory found writable by group or others (a
/// sandboxed program can chmod it: Landlock does not cover metadata) is put
/// back without those bits, with a warning; anything else is left to
/// `check_trusted` to refuse.
fn repair_own_dir(path: &Path) {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return;
    };
    let mode = md.mode() & 0o7777;
    if !md.is_dir() || md.uid() != crate::sys::geteuid() || mode & 0o022 == 0 {
        return;
    }
    let fixed = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .and_then(|d| {
            if d.metadata()?.ino() != md.ino() {
                return Err(std::io::ErrorKind::PermissionDenied.into());
            }
            d.set_permissions(std::fs::Permissions::from_mode(mode & !0o022))
        });
    if fixed.is_ok() {
        crate::out::warn(&format!(
            "{} was writable by group or others (mode {mode:04o}); put it back to {:04o}",
            path.display(),
            mode & !0o022
        ));
    }
}

/// A file or directory that decides what nono does (config, profiles) must
/// be owned by us (or by root when `root_ok`) and not writable by group or
/// others: whoever can change it decides. Symlinks are followed.
pub fn check_trusted(path: &Path, root_ok: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path)
        .map_err(|e| Error::io(format!("cannot inspect {}", path.display()), e))?;
    let p = path.display();
    let me = crate::sys::geteuid();
    if md.uid() != me && !(root_ok && md.uid() == 0) {
        let whom = if root_ok { " or root" } else { "" };
        return Err(Error::Msg(format!(
            "{p} is owned by uid {}, not by you (uid {me}){whom}; nono reads only configuration you own",
            md.uid()
        )));
    }
    if md.mode() & 0o022 != 0 {
        return Err(Error::Msg(format!(
            "{p} is writable by group or others (mode {:04o}); run 'chmod go-w {p}'",
            md.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Load the config file; a missing file means defaults.
pub fn load() -> Result<Config> {
    let Some(dir) = config_dir() else {
        return Ok(Config::default());
    };
    repair_own_dir(&dir);
    check_not_writable_by_others(&dir)?;
    let path = dir.join("config.toml");
    check_not_writable_by_others(&path)?;
    // The config may be a symlink (dotfile managers make them); records may not.
    let text = match crate::registry::read_small_file(&path, true) {
        Ok(t) => t,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && std::fs::symlink_metadata(&path).is_err() =>
        {
            return Ok(Config::default())
        }
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    parse(&text).map_err(|m| Error::Msg(format!("{}: {m}", path.display())))
}

/// Parse config text; errors name the line and key.
pub fn parse(text: &str) -> std::result::Result<Config, String> {
    let crate::toml::Doc { table, lines } = crate::toml::parse(text)?;
    let mut cfg = Config::default();
    for (key, value) in &table {
        let at = lines.get(key).copied().unwrap_or(0);
        let wrong = |what: &str| format!("line {at}: '{key}' must be {what}");
        match key.as_str() {
            "ui.detach_sequence" => {
                let Toml::Str(s) = value else {
                    return Err(wrong("a string such as \"ctrl-] d\""));
                };
                if s.trim().is_empty() {
                    return Err(format!(
                        "line {at}: '{key}' is empty; give at least two keys, such as \"ctrl-] d\" (the default), or remove the line"
                    ));
                }
                cfg.detach_sequence =
                    parse_detach_sequence(s).map_err(|m| format!("line {at}: '{key}': {m}"))?;
                cfg.detach_sequence_text = s.clone();
            }
            "ui.scrollback_lines" => {
                let Toml::Num(n) = value else {
                    return Err(wrong("a whole number"));
                };
                if n.fract() != 0.0 || *n < 0.0 || *n > MAX_SCROLLBACK_LINES as f64 {
                    return Err(wrong(&format!(
                        "a whole number from 0 to {MAX_SCROLLBACK_LINES}"
                    )));
                }
                cfg.scrollback_lines = *n as usize;
            }
            "ui.allow_clipboard" => {
                let Toml::Bool(b) = value else {
                    return Err(wrong("true or false"));
                };
                cfg.allow_clipboard = *b;
            }
            "rollback.max_file_bytes" | "rollback.max_files" | "rollback.max_bytes" => {
                let n = match value {
                    Toml::Num(n) if n.fract() == 0.0 && *n >= 0.0 && *n <= 2f64.powi(53) => *n as u64,
                    _ => return Err(wrong("a whole number")),
                };
                match key.as_str() {
                    "rollback.max_file_bytes" => cfg.rollback_max_file_bytes = n,
                    "rollback.max_files" => cfg.rollback_max_files = n,
                    _ => cfg.rollback_max_bytes = n,
                }
            }
            _ => {
                return Err(format!(
                "line {at}: unknown key '{key}' (known: ui.detach_sequence, ui.scrollback_lines, ui.allow_clipboard, rollback.max_file_bytes, rollback.max_files, rollback.max_bytes)"
            ))
            }
        }
    }
    Ok(cfg)
}

/// Bytes one key token sends, or None when the token is not a key.
fn key_bytes(token: &str) -> Option<Vec<u8>> {
    let lower = token.to_ascii_lowercase();
    let named = match lower.as_str() {
        "esc" | "escape" => Some(0x1b),
        "tab" => Some(b'\t'),
        "enter" | "return" => Some(b'\r'),
        "space" => Some(b' '),
        _ => None,
    };
    if let Some(b) = named {
        return Some(vec![b]);
    }
    if let Some(rest) = lower.strip_prefix("ctrl-") {
        let mut chars = rest.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return (rest == "space").then(|| vec![0]);
        };
        return match c {
            'a'..='z' => Some(vec![c as u8 - b'a' + 1]),
            '@' => Some(vec![0]),
            '[' | '\\' | ']' | '^' | '_' => Some(vec![c as u8 - b'@']),
            '?' => Some(vec![0x7f]),
            _ => None,
        };
    }
    let mut chars = token.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if !c.is_control() => Some(c.to_string().into_bytes()),
        _ => None,
    }
}

/// Parse a detach sequence such as `ctrl-] d` into the bytes it sends.
/// At least two keys; the first may not be `esc` (a lone Esc must never be
/// held back waiting for a second key).
pub fn parse_detach_sequence(text: &str) -> std::result::Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let mut keys = 0;
    for token in text.split_whitespace() {
        let b = key_bytes(token).ok_or_else(|| {
            format!(
                "'{token}' is not a key (use a single character, esc, tab, enter, space or ctrl-X)"
            )
        })?;
        if keys == 0 && b == [0x1b] {
            return Err("the first key may not be esc: a lone Esc would be delayed".into());
        }
        bytes.extend_from_slice(&b);
        keys += 1;
    }
    if keys < 2 {
        return Err(format!(
            "'{text}' has {keys} key(s); a detach sequence needs at least two, such as \"ctrl-] d\""
        ));
    }
    Ok(bytes)
}

/// Watches the keystroke stream for the detach sequence. Keys that may
/// begin the sequence are held back until the next key decides; everything
/// else passes at once, in order.
#[derive(Clone, Debug)]
pub struct DetachMatcher {
    /// The sequence's bytes.
    seq: Vec<u8>,
    /// How many leading bytes of `seq` are held back.
    held: usize,
}

impl DetachMatcher {
    /// A matcher for `seq` (non-empty).
    pub fn new(seq: Vec<u8>) -> DetachMatcher {
        DetachMatcher { seq, held: 0 }
    }

    /// Feed keystrokes; bytes for the program are appended to `out`. Returns
    /// true when the sequence completed (input after it is dropped).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if self.held < self.seq.len() && self.seq[self.held] == b {
                self.held += 1;
                if self.held == self.seq.len() {
                    self.held = 0;
                    return true;
                }
                continue;
            }
            // Mismatch: forward the shortest head of held+b whose tail can
            // still begin the sequence, and keep holding that tail.
            let mut pending = self.seq[..self.held].to_vec();
            pending.push(b);
            let start = (1..=pending.len())
                .find(|&s| self.seq.starts_with(&pending[s..]))
                .unwrap_or(pending.len());
            out.extend_from_slice(&pending[..start]);
            self.held = pending.len() - start;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seq: &str, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut m = DetachMatcher::new(parse_detach_sequence(seq).unwrap());
        let mut out = Vec::new();
        for c in chunks {
            if m.feed(c, &mut out) {
                return (out, true);
            }
        }
        (out, false)
    }

    #[test]
    fn grammar_accepts_the_documented_tokens() {
        assert_eq!(parse_detach_sequence("ctrl-] d").unwrap(), vec![0x1d, b'd']);
        assert_eq!(
            parse_detach_sequence("ctrl-a tab enter space esc é").unwrap(),
            vec![1, 9, 13, 32, 27, 0xc3, 0xa9]
        );
        assert_eq!(parse_detach_sequence("CTRL-B x").unwrap(), vec![2, b'x']);
    }

    #[test]
    fn grammar_errors_name_the_bad_token() {
        assert!(parse_detach_sequence("ctrl-] dd")
            .unwrap_err()
            .contains("'dd'"));
        assert!(parse_detach_sequence("ctrl-1 d")
            .unwrap_err()
            .contains("'ctrl-1'"));
        assert!(parse_detach_sequence("d")
            .unwrap_err()
            .contains("at least two"));
        assert!(parse_detach_sequence("")
            .unwrap_err()
            .contains("at least two"));
        assert!(parse_detach_sequence("esc d").unwrap_err().contains("esc"));
    }

    #[test]
    fn sequence_split_across_reads_detaches_and_is_not_forwarded() {
        assert_eq!(
            run("ctrl-] d", &[b"ab\x1d", b"d", b"zz"]),
            (b"ab".to_vec(), true)
        );
    }

    #[test]
    fn a_failed_partial_match_is_forwarded_intact() {
        assert_eq!(
            run("ctrl-] d", &[b"\x1d", b"x"]),
            (b"\x1dx".to_vec(), false)
        );
        // The failing key may itself start a new match.
        assert_eq!(
            run("ctrl-] d", &[b"\x1d\x1d", b"d"]),
            (b"\x1d".to_vec(), true)
        );
        assert_eq!(run("a a b", &[b"aaab"]), (b"a".to_vec(), true));
    }

    #[test]
    fn a_lone_esc_is_never_held() {
        let mut m = DetachMatcher::new(parse_detach_sequence("ctrl-a esc").unwrap());
        let mut out = Vec::new();
        assert!(!m.feed(b"\x1b", &mut out));
        assert_eq!(out, b"\x1b");
    }

    #[test]
    fn config_keys_are_checked_with_line_numbers() {
        let c = parse("[ui]\ndetach_sequence = \"ctrl-a q\"\nscrollback_lines = 500\n").unwrap();
        assert_eq!(c.detach_sequence, vec![1, b'q']);
        assert_eq!(c.scrollback_lines, 500);
        let e = parse("[ui]\nscrollback_lines = 1e3\n").unwrap_err();
        assert!(
            e.starts_with("line 2: 'scrollback_lines = 1e3': '1e3': numbers with an exponent"),
            "{e}"
        );
        for (text, line) in [
            ("[ui\nx=1\n", 1),
            ("[ui]\ndetach_sequence = = 1\n", 2),
            ("[ui]\n\n\nfoo bar\n", 4),
        ] {
            let e = parse(text).unwrap_err();
            let quoted = text.lines().nth(line - 1).unwrap();
            assert!(
                e.starts_with(&format!("line {line}: '{quoted}': ")),
                "{text:?}: {e}"
            );
        }
        // What the issue found refused or garbled.
        let e = parse("[ui]\ndetach_sequence = \"\"\n").unwrap_err();
        assert!(
            e.starts_with("line 2: 'ui.detach_sequence' is empty; give at least two keys"),
            "{e}"
        );
        let c = parse("[ui]\ndetach_sequence = 'ctrl-b d'\n").unwrap();
        assert_eq!(c.detach_sequence, vec![2, b'd']);
        let e = parse("[ui]\nscrollback_lines = 5\n[ui]\n").unwrap_err();
        assert!(
            e.contains("line 3") && e.contains("table [ui] is defined twice"),
            "{e}"
        );
        let e = parse("[ui]\n\ndetach_sequnce = \"x y\"\n").unwrap_err();
        assert!(
            e.contains("line 3") && e.contains("ui.detach_sequnce"),
            "{e}"
        );
        let e = parse("[ui]\ndetach_sequence = \"ctrl-] dd\"\n").unwrap_err();
        assert!(e.contains("'dd'"), "{e}");
        assert!(parse("[ui]\nscrollback_lines = -3\n").is_err());
        assert!(parse("[ui\n").is_err());
    }

    #[test]
    fn random_config_text_never_panics() {
        let mut x: u64 = 7;
        let alphabet = b"[]=\"'#.\n abcui_-0123456789{},";
        for _ in 0..3_000 {
            let mut s = String::new();
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(alphabet[(x % alphabet.len() as u64) as usize] as char);
            }
            let _ = parse(&s);
            let _ = parse_detach_sequence(&s);
        }
    }
}
