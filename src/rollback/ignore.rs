//! Which paths a capture leaves out: VCS metadata, paths git ignores
//! (root and nested `.gitignore`, `.git/info/exclude`) and
//! `--rollback-exclude` patterns. Matching follows gitignore(5): the last
//! matching line of the most specific file decides, `!` re-includes, a
//! trailing `/` matches directories only, a slash elsewhere anchors the
//! pattern to its file's directory, `*`/`?`/`[...]` do not cross `/`, and
//! `**` spans directories.

/// Directory names never captured or touched, at any depth.
pub const VCS_DIRS: &[&[u8]] = &[b".git", b".hg", b".svn", b".jj", b".bzr"];

/// One pattern line.
#[derive(Clone, Debug)]
struct Pattern {
    /// `!pattern`: re-include.
    negated: bool,
    /// `pattern/`: directories only.
    dir_only: bool,
    /// Contains a slash before its end: matched against the whole path
    /// relative to the file's directory, not the last component.
    anchored: bool,
    /// The glob (leading `/` removed).
    glob: Vec<u8>,
    /// How it can be matched without the general matcher.
    shape: Shape,
}

/// Most ignore lines are a name (`node_modules`) or `*` and a suffix
/// (`*.log`): those are compared directly, which keeps a capture of a
/// tree under a long `.gitignore` close to a bare walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// No wildcard or escape: equal or not.
    Literal,
    /// `*` then no wildcard or escape: a suffix, with no `/` before it.
    Suffix,
    /// Anything else: `wildmatch`.
    Glob,
}

/// The shape of a glob.
fn shape(glob: &[u8]) -> Shape {
    let special = |b: &u8| matches!(b, b'*' | b'?' | b'[' | b'\\');
    if !glob.iter().any(special) {
        Shape::Literal
    } else if glob[0] == b'*' && !glob[1..].iter().any(special) {
        Shape::Suffix
    } else {
        Shape::Glob
    }
}

/// The patterns of one file, with where they apply.
#[derive(Clone, Debug)]
struct Set {
    /// Directory the file is in, relative to the repository top ('' for the top).
    base: Vec<u8>,
    /// Patterns in file order.
    pats: Vec<Pattern>,
}

/// Every rule that applies to one captured root.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// `.gitignore` files (any order; the deepest matching one decides).
    sets: Vec<Set>,
    /// `.git/info/exclude`: below every `.gitignore`.
    exclude_file: Vec<Set>,
    /// `--rollback-exclude`: excluded whatever git says.
    always: Vec<Pattern>,
    /// The root relative to the repository top, with a trailing `/` ('' at the top).
    prefix: Vec<u8>,
}

/// Parse the lines of an ignore file.
fn parse(lines: &[String]) -> Vec<Pattern> {
    lines
        .iter()
        .filter_map(|l| parse_line(l.as_bytes()))
        .collect()
}

/// One line: None for blanks and comments.
fn parse_line(line: &[u8]) -> Option<Pattern> {
    let mut l = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
    // Trailing spaces go unless escaped with a backslash.
    while l.last() == Some(&b' ') && !(l.len() >= 2 && l[l.len() - 2] == b'\\') {
        l.pop();
    }
    if l.is_empty() || l[0] == b'#' {
        return None;
    }
    let mut negated = false;
    if l[0] == b'!' {
        negated = true;
        l.remove(0);
    } else if l.starts_with(b"\\!") || l.starts_with(b"\\#") {
        l.remove(0);
    }
    let mut dir_only = false;
    if l.last() == Some(&b'/') {
        dir_only = true;
        l.pop();
    }
    if l.is_empty() {
        return None;
    }
    let anchored = l.contains(&b'/');
    if l[0] == b'/' {
        l.remove(0);
    }
    Some(Pattern {
        negated,
        dir_only,
        anchored,
        shape: shape(&l),
        glob: l,
    })
}

impl Rules {
    /// Rules for a root whose paths sit under `prefix` in their repository.
    pub fn new(prefix: &str) -> Rules {
        let mut p = prefix.as_bytes().to_vec();
        if !p.is_empty() && !p.ends_with(b"/") {
            p.push(b'/');
        }
        Rules {
            prefix: p,
            ..Rules::default()
        }
    }

    /// Add a `.gitignore` found in `base` (relative to the repository top).
    pub fn add_file(&mut self, base: &str, lines: &[String], exclude_file: bool) {
        let set = Set {
            base: base.trim_matches('/').as_bytes().to_vec(),
            pats: parse(lines),
        };
        if exclude_file {
            self.exclude_file.push(set);
        } else {
            self.sets.push(set);
        }
    }

    /// Add `--rollback-exclude` patterns (relative to the root).
    pub fn add_excludes(&mut self, globs: &[String]) {
        self.always
            .extend(globs.iter().filter_map(|g| parse_line(g.as_bytes())));
    }

    /// Whether `path` (relative to the root) is left out, given that none
    /// of its parent directories is.
    pub fn excluded(&self, path: &[u8], is_dir: bool) -> bool {
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        if is_dir && VCS_DIRS.contains(&name) || name == b".git" {
            return true;
        }
        if self
            .always
            .iter()
            .any(|p| !p.negated && matches(p, path, is_dir))
        {
            return true;
        }
        if self.sets.is_empty() && self.exclude_file.is_empty() {
            return false;
        }
        // Relative to the repository top; no copy when the root is the top.
        let full: std::borrow::Cow<[u8]> = if self.prefix.is_empty() {
            path.into()
        } else {
            let mut full = self.prefix.clone();
            full.extend_from_slice(path);
            full.into()
        };
        // The deepest .gitignore with a matching line decides.
        let mut best: Option<(usize, bool)> = None;
        for s in &self.sets {
            let Some(rel) = beneath(&s.base, &full) else {
                continue;
            };
            if let Some(neg) = last_match(&s.pats, rel, is_dir) {
                if best.is_none_or(|(depth, _)| s.base.len() >= depth) {
                    best = Some((s.base.len(), !neg));
                }
            }
        }
        if let Some((_, ignored)) = best {
            return ignored;
        }
        for s in &self.exclude_file {
            if let Some(rel) = beneath(&s.base, &full) {
                if let Some(neg) = last_match(&s.pats, rel, is_dir) {
                    return !neg;
                }
            }
        }
        false
    }
}

/// `path` relative to directory `base` (both relative to the top), if beneath it.
fn beneath<'a>(base: &[u8], path: &'a [u8]) -> Option<&'a [u8]> {
    if base.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(base)?;
    rest.strip_prefix(b"/")
}

/// Whether the last matching pattern is a negation; None when none matches.
fn last_match(pats: &[Pattern], rel: &[u8], is_dir: bool) -> Option<bool> {
    pats.iter()
        .rev()
        .find(|p| matches(p, rel, is_dir))
        .map(|p| p.negated)
}

/// Whether one pattern matches `rel` (relative to its file's directory).
fn matches(p: &Pattern, rel: &[u8], is_dir: bool) -> bool {
    if p.dir_only && !is_dir {
        return false;
    }
    let t = if p.anchored {
        rel
    } else {
        rel.rsplit(|&b| b == b'/').next().unwrap_or(rel)
    };
    match p.shape {
        Shape::Literal => p.glob == t,
        Shape::Suffix => {
            let suffix = &p.glob[1..];
            t.len() >= suffix.len()
                && t.ends_with(suffix)
                && !t[..t.len() - suffix.len()].contains(&b'/')
        }
        Shape::Glob => wildmatch(&p.glob, t),
    }
}

/// Glob match where `*`, `?` and classes stop at `/` and `**` between
/// slashes (or at either end) matches any number of directories.
pub fn wildmatch(p: &[u8], t: &[u8]) -> bool {
    let mut pi = 0;
    let mut ti = 0;
    while pi < p.len() {
        match p[pi] {
            b'*' => {
                let double = p.get(pi + 1) == Some(&b'*');
                if double {
                    let at_start = pi == 0 || p[pi - 1] == b'/';
                    let mut end = pi + 2;
                    while p.get(end) == Some(&b'*') {
                        end += 1;
                    }
                    let at_end = end == p.len();
                    if at_start && at_end {
                        return true;
                    }
                    if at_start && p[end] == b'/' {
                        // `**/`: zero or more whole directories.
                        let rest = &p[end + 1..];
                        let mut i = ti;
                        loop {
                            if wildmatch(rest, &t[i..]) {
                                return true;
                            }
                            match t[i..].iter().position(|&b| b == b'/') {
                                Some(k) => i += k + 1,
                                None => return false,
                            }
                        }
                    }
                }
                // A single star (or a `**` not between slashes): no `/`.
                let rest = &p[pi + 1..];
                let rest = if double { &p[pi + 2..] } else { rest };
                let mut i = ti;
                loop {
                    if wildmatch(rest, &t[i..]) {
                        return true;
                    }
                    if i >= t.len() || t[i] == b'/' {
                        return false;
                    }
                    i += 1;
                }
            }
            b'?' => {
                if ti >= t.len() || t[ti] == b'/' {
                    return false;
                }
                pi += 1;
                ti += 1;
            }
            b'[' => {
                let Some((ok, next)) = class(p, pi, t.get(ti).copied()) else {
                    // An unclosed `[` is a literal.
                    if t.get(ti) != Some(&b'[') {
                        return false;
                    }
                    pi += 1;
                    ti += 1;
                    continue;
                };
                if !ok {
                    return false;
                }
                pi = next;
                ti += 1;
            }
            b'\\' if pi + 1 < p.len() => {
                if t.get(ti) != Some(&p[pi + 1]) {
                    return false;
                }
                pi += 2;
                ti += 1;
            }
            c => {
                if t.get(ti) != Some(&c) {
                    return false;
                }
                pi += 1;
                ti += 1;
            }
        }
    }
    ti == t.len()
}

/// Match a bracket class starting at `p[start] == '['` against `c`:
/// (matched, index after `]`), or None when the class is not closed.
fn class(p: &[u8], start: usize, c: Option<u8>) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let b = *p.get(i)?;
        if b == b']' && !first {
            break;
        }
        first = false;
        let (lo, mut len) = if b == b'\\' {
            (*p.get(i + 1)?, 2)
        } else {
            (b, 1)
        };
        let mut hi = lo;
        if p.get(i + len) == Some(&b'-') && p.get(i + len + 1).is_some_and(|&x| x != b']') {
            hi = p[i + len + 1];
            len += 2;
        }
        if let Some(c) = c {
            if c != b'/' && lo <= c && c <= hi {
                hit = true;
            }
        }
        i += len;
    }
    let Some(c) = c else {
        return Some((false, i + 1));
    };
    let _ = c;
    Some((hit != negate && c != b'/', i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    #[test]
    fn wildmatch_handles_stars_classes_and_escapes() {
        assert!(wildmatch(b"*.log", b"a.log"));
        assert!(!wildmatch(b"*.log", b"d/a.log"));
        assert!(wildmatch(b"**/x", b"a/b/x"));
        assert!(wildmatch(b"**/x", b"x"));
        assert!(wildmatch(b"a/**/b", b"a/b"));
        assert!(wildmatch(b"a/**/b", b"a/x/y/b"));
        assert!(wildmatch(b"a/**", b"a/x/y"));
        assert!(wildmatch(b"[a-c]?", b"bz"));
        assert!(!wildmatch(b"[!a-c]?", b"bz"));
        assert!(wildmatch(b"\\*", b"*"));
        assert!(!wildmatch(b"\\*", b"x"));
    }

    /// The direct comparisons give what the general matcher gives.
    #[test]
    fn literal_and_suffix_patterns_match_as_the_glob_would() {
        assert_eq!(shape(b"node_modules"), Shape::Literal);
        assert_eq!(shape(b"*.log"), Shape::Suffix);
        assert_eq!(shape(b"*"), Shape::Suffix);
        assert_eq!(shape(b"*.l?g"), Shape::Glob);
        assert_eq!(shape(b"a*"), Shape::Glob);
        assert_eq!(shape(b"\\#x"), Shape::Glob);
        let texts: &[&[u8]] = &[
            b"",
            b"a.log",
            b".log",
            b"log",
            b"d/a.log",
            b"node_modules",
            b"x/node_modules",
            b"a.log.txt",
            b"d/",
            b"d/e/.log",
        ];
        for line in [
            "node_modules",
            "*.log",
            "*",
            "d/*.log",
            "/*.log",
            "x/node_modules",
        ] {
            let p = parse_line(line.as_bytes()).unwrap();
            for t in texts {
                let general = Pattern {
                    shape: Shape::Glob,
                    ..p.clone()
                };
                assert_eq!(
                    matches(&p, t, false),
                    matches(&general, t, false),
                    "{line} against {}",
                    String::from_utf8_lossy(t)
                );
            }
        }
    }

    /// Compare with `git check-ignore` over a real repository.
    #[test]
    fn ignore_rules_agree_with_git_check_ignore() {
        if Command::new("git").arg("--version").output().is_err() {
            eprintln!("skipped: git is not installed");
            return;
        }
        let dir = std::env::temp_dir().join(format!("nono-ignore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .current_dir(&dir)
                .env("HOME", &dir)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .output()
                .unwrap()
        };
        assert!(git(&["init", "-q"]).status.success());
        let root_ignore = "# comment\n*.log\n!keep.log\n/top-only\nbuild/\nnode_modules/\n.env\ndoc/*.tmp\n**/deep/z\na/**/b.txt\n[abc].cls\n\\#hash\nspace\\ \ntrail   \n!/build/ignored-anyway\n*.o\n";
        std::fs::write(dir.join(".gitignore"), root_ignore).unwrap();
        std::fs::create_dir_all(dir.join("sub/inner")).unwrap();
        std::fs::write(
            dir.join("sub/.gitignore"),
            "!*.log\n*.txt\n/rooted\ninner/\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(".git/info/exclude"),
            "excluded-by-info\n*.o\n!keep.o\n",
        )
        .unwrap();
        let files = [
            "a.log",
            "keep.log",
            "top-only",
            "sub/top-only",
            "build/x",
            "src/build/y",
            "node_modules/p/q",
            ".env",
            "sub/.env",
            "doc/x.tmp",
            "doc/sub/x.tmp",
            "deep/z",
            "q/deep/z",
            "a/b.txt",
            "a/x/y/b.txt",
            "a.cls",
            "d.cls",
            "#hash",
            "space ",
            "trail",
            "sub/a.log",
            "sub/t.txt",
            "sub/rooted",
            "rooted",
            "sub/inner/f",
            "excluded-by-info",
            "x.o",
            "keep.o",
            "sub/keep.o",
            "plain.rs",
            "src/main.rs",
            "sub/z/rooted",
        ];
        for f in files {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "x").unwrap();
        }
        let mut rules = Rules::new("");
        for (base, file, excl) in [
            ("", ".gitignore", false),
            ("sub", "sub/.gitignore", false),
            ("", ".git/info/exclude", true),
        ] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let lines: Vec<String> = text.lines().map(String::from).collect();
            rules.add_file(base, &lines, excl);
        }
        // Ours, with parents first as a walk sees them.
        let ours = |path: &str| {
            let comps: Vec<&str> = path.split('/').collect();
            (1..=comps.len()).any(|n| {
                let p = comps[..n].join("/");
                rules.excluded(
                    p.as_bytes(),
                    dir.join(&p).is_dir() && Path::new(&p) != Path::new(path),
                )
            })
        };
        for f in files {
            let o = git(&["check-ignore", "-q", "--no-index", f]);
            let theirs = o.status.code() == Some(0);
            assert_eq!(ours(f), theirs, "{f}: ours vs git check-ignore");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
