//! Sandbox profiles: TOML files under `$XDG_CONFIG_HOME/nono/profiles/`,
//! a path, or one of the built-ins compiled into the binary.

use crate::error::{Error, Result};
use crate::sandbox::{READ, WRITE};
use nanoserde::Toml;
use std::path::{Path, PathBuf};

/// The built-in profiles: name and TOML text (the same format as a user's).
pub const BUILT_INS: &[(&str, &str)] = &[
    ("default", include_str!("profiles/default.toml")),
    ("claude-code", include_str!("profiles/claude-code.toml")),
    ("codex", include_str!("profiles/codex.toml")),
    ("dev", include_str!("profiles/dev.toml")),
];

/// How deep `extends` may chain: far more than any sane profile needs,
/// few enough that a mistake is reported rather than followed forever.
const MAX_EXTENDS: usize = 8;

/// Every key a profile may set.
const KNOWN_KEYS: &str = "meta.description, meta.extends, filesystem.allow, filesystem.read, \
filesystem.write, workdir.access, network.mode, approvals.ask, environment.pass, \
containment.namespaces, rollback.enabled, rollback.exclude";

/// What the working directory is granted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Workdir {
    /// Not granted.
    #[default]
    None,
    /// Read (and execute).
    Read,
    /// Read and write.
    ReadWrite,
}

impl Workdir {
    /// The word used in profiles and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Workdir::None => "none",
            Workdir::Read => "read",
            Workdir::ReadWrite => "readwrite",
        }
    }
}

/// One path entry of a profile, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// As written (`~` not yet expanded).
    pub text: String,
    /// The list it is in: `read` (READ), `write` (WRITE) or `allow` (both).
    pub access: u8,
    /// Line of the list in its file.
    pub line: usize,
}

/// One parsed profile file (not yet merged with what it extends).
#[derive(Clone, Debug)]
pub struct Profile {
    /// The name it was found by (or the path given).
    pub name: String,
    /// Where its text came from: `built-in` or the file's path.
    pub origin: String,
    /// `[meta] description`.
    pub description: String,
    /// `[meta] extends`.
    pub extends: Option<String>,
    /// `[filesystem]` entries, in file order.
    pub entries: Vec<Entry>,
    /// `[workdir] access`, when set.
    pub workdir: Option<Workdir>,
    /// `[network] mode`, when set: true for `blocked`.
    pub net_blocked: Option<bool>,
    /// `[approvals] ask`, when set: opens outside the grant wait for approval.
    pub ask: Option<bool>,
    /// `[rollback] enabled`, when set: capture for `nono rollback`.
    pub rollback: Option<bool>,
    /// `[rollback] exclude`: patterns left out of the capture.
    pub rollback_exclude: Vec<String>,
    /// `[environment] pass`: scrubbed variables passed on purpose.
    pub env_pass: Vec<String>,
    /// `[containment] namespaces`, when set: true for `required`.
    pub namespaces_required: Option<bool>,
}

/// `$XDG_CONFIG_HOME/nono/profiles`.
pub fn user_dir() -> Option<PathBuf> {
    crate::config::config_dir().map(|d| d.join("profiles"))
}

/// Whether `s` names a profile (rather than being a path to one).
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        && !s.ends_with(".toml")
}

/// Parse profile text; errors start with `origin: line N:`.
pub fn parse(name: &str, origin: &str, text: &str) -> Result<Profile> {
    let fail = |m: String| Error::Msg(format!("{origin}: {m}"));
    let crate::toml::Doc { table, lines } = crate::toml::parse(text).map_err(fail)?;
    let mut p = Profile {
        name: name.to_string(),
        origin: origin.to_string(),
        description: String::new(),
        extends: None,
        entries: Vec::new(),
        workdir: None,
        net_blocked: None,
        ask: None,
        rollback: None,
        rollback_exclude: Vec::new(),
        env_pass: Vec::new(),
        namespaces_required: None,
    };
    for (key, value) in &table {
        let at = lines.get(key).copied().unwrap_or(0);
        let wrong = |what: &str| fail(format!("line {at}: '{key}' must be {what}"));
        let string = |v: &Toml| match v {
            Toml::Str(s) => Some(s.clone()),
            _ => None,
        };
        match key.as_str() {
            "meta.description" => {
                p.description = string(value).ok_or_else(|| wrong("a string"))?;
            }
            "meta.extends" => {
                let parent = string(value).ok_or_else(|| wrong("a profile name"))?;
                if parent.is_empty() {
                    return Err(wrong("a profile name"));
                }
                p.extends = Some(parent);
            }
            "filesystem.allow" | "filesystem.read" | "filesystem.write" => {
                let access = match key.as_str() {
                    "filesystem.allow" => READ | WRITE,
                    "filesystem.read" => READ,
                    _ => WRITE,
                };
                let Toml::SimpleArray(items) = value else {
                    return Err(wrong("a list of paths, such as [\"~/.cache/tool\"]"));
                };
                for item in items {
                    let text =
                        string(item).ok_or_else(|| wrong("a list of paths (strings in quotes)"))?;
                    if !(text.starts_with('/') || text == "~" || text.starts_with("~/")) {
                        return Err(fail(format!(
                            "line {at}: '{key}' entry '{text}' must be absolute or start with ~/"
                        )));
                    }
                    p.entries.push(Entry {
                        text,
                        access,
                        line: at,
                    });
                }
            }
            "workdir.access" => {
                p.workdir = Some(match string(value).as_deref() {
                    Some("none") => Workdir::None,
                    Some("read") => Workdir::Read,
                    Some("readwrite") => Workdir::ReadWrite,
                    _ => return Err(wrong("\"none\", \"read\" or \"readwrite\"")),
                });
            }
            "network.mode" => {
                p.net_blocked = Some(match string(value).as_deref() {
                    Some("allowed") => false,
                    Some("blocked") => true,
                    _ => return Err(wrong("\"allowed\" or \"blocked\"")),
                });
            }
            "approvals.ask" => {
                p.ask = Some(match value {
                    Toml::Bool(b) => *b,
                    _ => return Err(wrong("true or false")),
                });
            }
            "rollback.enabled" => {
                p.rollback = Some(match value {
                    Toml::Bool(b) => *b,
                    _ => return Err(wrong("true or false")),
                });
            }
            "rollback.exclude" => {
                let Toml::SimpleArray(items) = value else {
                    return Err(wrong("a list of patterns, such as [\"data/\"]"));
                };
                for item in items {
                    let pat = string(item)
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| wrong("a list of patterns (strings in quotes)"))?;
                    p.rollback_exclude.push(pat);
                }
            }
            "environment.pass" => {
                let Toml::SimpleArray(items) = value else {
                    return Err(wrong(
                        "a list of variable names, such as [\"SSH_AUTH_SOCK\"]",
                    ));
                };
                for item in items {
                    let name = string(item)
                        .filter(|n| crate::sandbox::env_name_ok(n))
                        .ok_or_else(|| wrong("a list of variable names (letters, digits, _)"))?;
                    p.env_pass.push(name);
                }
            }
            "containment.namespaces" => {
                p.namespaces_required = Some(match string(value).as_deref() {
                    Some("preferred") => false,
                    Some("required") => true,
                    _ => return Err(wrong("\"preferred\" or \"required\"")),
                });
            }
            _ => {
                return Err(fail(format!(
                    "line {at}: unknown key '{key}' (known: {KNOWN_KEYS})"
                )))
            }
        }
    }
    Ok(p)
}

/// Find and parse the profile `spec`: a name (the user's profiles
/// directory first, then the built-ins) or a path to a file. `below`, when
/// set, is the profile that extends this one: a user profile extending its
/// own name means the built-in of that name.
fn find(spec: &str, below: Option<&Profile>) -> Result<Profile> {
    if is_name(spec) {
        let own_name = below.is_some_and(|b| b.name == spec && b.origin != "built-in");
        if !own_name {
            if let Some(dir) = user_dir() {
                let file = dir.join(format!("{spec}.toml"));
                if std::fs::symlink_metadata(&file).is_ok() {
                    check_owner(&dir)?;
                    return read_file(spec, &file);
                }
            }
        }
        if let Some((_, text)) = BUILT_INS.iter().find(|(n, _)| *n == spec) {
            return parse(spec, "built-in", text);
        }
        let built_in: Vec<&str> = BUILT_INS.iter().map(|(n, _)| *n).collect();
        if let Some(b) = below.filter(|_| own_name) {
            return Err(Error::Msg(format!(
                "profile '{spec}' ({}) extends '{spec}', its own name: a profile may extend the built-in of its name ({}), never itself; name another profile in [meta] extends",
                b.origin,
                built_in.join(", ")
            )));
        }
        let mut yours = user_names().join(", ");
        if yours.is_empty() {
            yours = "none".into();
        }
        return Err(Error::Msg(format!(
            "no profile named '{spec}' (built-in: {}; yours: {yours}); see 'nono profile list'",
            built_in.join(", ")
        )));
    }
    // A path: relative ones start from the caller's directory.
    let cwd = std::env::current_dir().ok();
    let path = crate::sandbox::expand(spec, cwd.as_deref()).map_err(Error::Msg)?;
    read_file(spec, &path)
}

/// A profile decides what the next session may touch: it (and its
/// directory) must be ours or root's and writable by nobody else.
fn check_owner(path: &Path) -> Result<()> {
    crate::config::check_trusted(path, true)
}

fn read_file(name: &str, path: &Path) -> Result<Profile> {
    check_owner(path)?;
    let text = crate::registry::read_small_file(path, true)
        .map_err(|e| Error::io(format!("cannot read profile {}", path.display()), e))?;
    parse(name, &path.display().to_string(), &text)
}

/// Names of the user's profiles (files `NAME.toml` in the profiles directory).
pub fn user_names() -> Vec<String> {
    let Some(dir) = user_dir() else {
        return Vec::new();
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let stem = n.strip_suffix(".toml")?;
            is_name(stem).then(|| stem.to_string())
        })
        .collect();
    names.sort();
    names
}

/// Load `spec` and everything it extends: the chain from `spec` down to
/// the profile that extends nothing.
pub fn load_chain(spec: &str) -> Result<Vec<Profile>> {
    let mut chain = vec![find(spec, None)?];
    while let Some(parent) = chain.last().and_then(|p| p.extends.clone()) {
        if chain.len() > MAX_EXTENDS {
            return Err(Error::Msg(format!(
                "profile '{spec}' extends more than {MAX_EXTENDS} levels deep; is there a loop?"
            )));
        }
        let next = find(&parent, chain.last())?;
        if chain
            .iter()
            .any(|p| p.name == next.name && p.origin == next.origin)
        {
            let path: Vec<&str> = chain.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::Msg(format!(
                "profile '{}' extends itself: {} -> {}; remove one of these extends",
                chain[0].name,
                path.join(" -> "),
                next.name
            )));
        }
        chain.push(next);
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_parse() {
        for (name, text) in BUILT_INS {
            let p = parse(name, "built-in", text).unwrap();
            assert!(!p.description.is_empty(), "{name}");
            assert!(!p.entries.is_empty(), "{name}");
        }
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let e = parse(
            "x",
            "/p/x.toml",
            "[meta]\nextends = \"default\"\n[filesystem]\nalow = [\"/a\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("/p/x.toml: line 4: unknown key 'filesystem.alow'"),
            "{e}"
        );
        let e = parse("x", "f", "[network]\nmode = \"off\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2: 'network.mode' must be"), "{e}");
        let e = parse("x", "f", "[filesystem]\nread = [\"rel/path\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("rel/path"), "{e}");
        let e = parse("x", "f", "[workdir]\naccess = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2: 'workdir.access'"), "{e}");
    }
}
