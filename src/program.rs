//! Which file `nono run CMD` executes: found exactly as the user's shell
//! would find it (PATH in order), checked before anything starts, so that
//! `--dry-run` and the real run agree and a failure says what it is.

use crate::sandbox::{Policy, READ};
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why a program cannot run: the exit status a shell would give (127 not
/// found, 126 found but not runnable) and a message for the user.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 127 or 126.
    pub code: i32,
    /// What is wrong and what to do.
    pub message: String,
}

fn refuse(code: i32, message: String) -> Refusal {
    Refusal { code, message }
}

/// Find `name` as a POSIX shell does: a name with a slash is a path from
/// `cwd`; otherwise the first PATH entry (empty = `cwd`) holding an
/// executable regular file, or failing that the first holding a regular
/// file at all (which then fails as not executable).
pub fn find(name: &str, cwd: &Path, path_var: Option<&OsStr>) -> Result<PathBuf, Refusal> {
    if name.is_empty() {
        return Err(refuse(127, "cannot run '': the command is empty".into()));
    }
    if name.contains('/') {
        // Joined without its `./` parts, as the shell would show it.
        let p: PathBuf = cwd.join(name).components().collect();
        return match std::fs::metadata(&p) {
            Ok(_) => Ok(p),
            Err(e) => Err(refuse(127, format!("cannot run '{name}': {e}"))),
        };
    }
    let dirs: Vec<PathBuf> = path_var
        .map(|v| std::env::split_paths(v).collect())
        .unwrap_or_default();
    let mut non_executable = None;
    for d in dirs {
        let p = cwd.join(d).join(name);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => return Ok(p),
            Ok(m) if m.is_file() && non_executable.is_none() => non_executable = Some(p),
            _ => {}
        }
    }
    non_executable.ok_or_else(|| {
        refuse(
            127,
            format!("cannot run '{name}': command not found in PATH"),
        )
    })
}

/// Check that `program` (as found by [`find`]) can run under `policy`:
/// it is an executable regular file, its `#!` interpreter exists, and the
/// sandbox grants both. Returns the canonical path of the program.
pub fn check(
    name: &str,
    program: &Path,
    cwd: &Path,
    path_var: Option<&OsStr>,
    policy: Option<&Policy>,
) -> Result<PathBuf, Refusal> {
    let shown = program.display();
    let meta = std::fs::metadata(program)
        .map_err(|e| refuse(127, format!("cannot run '{shown}': {e}")))?;
    if meta.is_dir() {
        return Err(refuse(
            126,
            format!("cannot run '{shown}': it is a directory"),
        ));
    }
    if !meta.is_file() {
        return Err(refuse(
            126,
            format!("cannot run '{shown}': it is not a regular file"),
        ));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(refuse(
            126,
            format!(
                "cannot run '{shown}': it is not executable (mode {:04o}); 'chmod +x {shown}' makes it so",
                meta.permissions().mode() & 0o7777
            ),
        ));
    }
    let canon = program
        .canonicalize()
        .map_err(|e| refuse(126, format!("cannot run '{shown}': {e}")))?;
    let mut needed = vec![(canon.clone(), format!("'{name}' is {shown}"))];
    if let Some(interp) = interpreter(program) {
        let ip = Path::new(&interp.0);
        match ip.canonicalize() {
            Ok(c) => needed.push((c, format!("its interpreter {}", ip.display()))),
            Err(_) => {
                return Err(refuse(
                    126,
                    format!(
                        "cannot run '{shown}': its interpreter '{}' (named on its #! line) does not exist",
                        ip.display()
                    ),
                ))
            }
        }
        // `#!/usr/bin/env prog` runs prog from PATH: it must be granted too.
        if ip.file_name() == Some(OsStr::new("env")) {
            if let Some(arg) = interp.1.filter(|a| !a.starts_with('-')) {
                if let Ok(p) = find(&arg, cwd, path_var) {
                    if let Ok(c) = p.canonicalize() {
                        needed.push((c, format!("its interpreter {arg} ({})", p.display())));
                    }
                }
            }
        }
    }
    if let Some(policy) = policy {
        for (path, what) in &needed {
            if !policy.allows(path, READ) {
                let dir = path.parent().unwrap_or(path);
                return Err(refuse(
                    126,
                    format!(
                        "cannot run '{name}': {what}, which the sandbox does not grant; add -r {} (or -r {}), or use a profile that grants it ('nono run --dry-run' shows the grants)",
                        path.display(),
                        dir.display()
                    ),
                ));
            }
        }
    }
    Ok(canon)
}

/// The `#!` line of a script: interpreter path and its optional argument.
fn interpreter(program: &Path) -> Option<(String, Option<String>)> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let mut f = std::fs::File::open(program).ok()?;
    let n = f.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    let line = String::from_utf8_lossy(&line[..end]);
    let mut words = line.split_ascii_whitespace();
    let path = words.next()?.to_string();
    let arg = words.next().map(str::to_string);
    Some((path, arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_searched_in_order_and_a_non_executable_is_the_fallback() {
        let d = std::env::temp_dir().join(format!("nono-prog-{}", std::process::id()));
        let (a, b) = (d.join("a"), d.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("t"), "").unwrap();
        std::fs::write(b.join("t"), "").unwrap();
        std::fs::set_permissions(b.join("t"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([&a, &b]).unwrap();
        assert_eq!(find("t", &d, Some(&path)), Ok(b.join("t")));
        std::fs::set_permissions(b.join("t"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(find("t", &d, Some(&path)), Ok(a.join("t")));
        assert_eq!(find("nope", &d, Some(&path)).unwrap_err().code, 127);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
