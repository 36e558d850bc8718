//! Applying a plan: every write goes through directories opened one
//! component at a time with `O_NOFOLLOW` from the root, so a directory
//! swapped for a symlink can never lead a write outside the root. Files
//! and links are written to a temporary name and renamed into place
//! (atomic, with their final mode from creation); each finished path is
//! journaled. A restore interrupted at any point converges when run again:
//! replanning finds the paths already done equal to the target.
//!
//! Before its first write a restore records what it is about to change
//! (`pre`, with the contents stored) and what it writes (`post`), so
//! `--undo` is itself a three-way restore from `post` back to `pre`.

#![allow(clippy::question_mark)]

use super::capture;
use super::plan::Step;
use super::store::{CopyStats, Store};
use super::{escape, Entry, Index, Kind};
use crate::error::{Error, Result};
use crate::sys;
use nanoserde::{DeJson, SerJson};
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A restore record (`restores/N/info.json`).
#[derive(Clone, Debug, Default, SerJson, DeJson, PartialEq)]
#[nserde(serialize_none_as_null)]
pub struct RecordInfo {
    /// Its number (1, 2, ...).
    pub n: u32,
    /// Unix time it started.
    pub time: u64,
    /// `baseline`, `final` or `undo`.
    pub target: String,
    /// For an undo: the record it undid.
    pub undo_of: Option<u32>,
    /// Whether every step ran.
    pub complete: bool,
    /// Paths written.
    pub done: u64,
}

/// Where restore records live.
pub fn records_dir(session_dir: &Path) -> PathBuf {
    session_dir.join("restores")
}

/// Every restore record of a session, oldest first.
pub fn records(session_dir: &Path) -> Vec<(PathBuf, RecordInfo)> {
    let dir = records_dir(session_dir);
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(text) = super::read_own(&p.join("info.json"), 64 * 1024) else {
            continue;
        };
        if crate::json::check(&text).is_err() {
            continue;
        }
        if let Ok(info) = RecordInfo::deserialize_json(&text) {
            out.push((p, info));
        }
    }
    out.sort_by_key(|(_, i)| i.n);
    out
}

/// Write a record's info.
pub fn write_info(dir: &Path, info: &RecordInfo) -> Result<()> {
    super::write_atomic(&dir.join("info.json"), info.serialize_json().as_bytes())
}

/// The journal of one restore: what it will do, then each path as it is done.
pub struct Journal {
    file: File,
}

impl Journal {
    /// Open (appending; created 0600) a record's journal.
    pub fn open(dir: &Path) -> Result<Journal> {
        let path = dir.join("journal");
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        Ok(Journal { file })
    }

    /// Append a line: `plan ROOT PATH`, `done ROOT PATH`, `fail ROOT PATH`, `complete`.
    pub fn note(&mut self, what: &str, root: usize, path: &[u8]) {
        // One write per line (a formatted write would issue one per piece).
        let line = format!("{what} {root} {}\n", escape(path));
        let _ = self.file.write_all(line.as_bytes());
    }

    /// Append `complete` and make the journal durable.
    pub fn complete(&mut self) {
        let _ = writeln!(self.file, "complete");
        let _ = self.file.sync_all();
    }
}

/// Split a relative path into its parent and last component.
fn split(rel: &[u8]) -> (&[u8], &OsStr) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(k) => (&rel[..k], OsStr::from_bytes(&rel[k + 1..])),
        None => (&rel[..0], OsStr::from_bytes(rel)),
    }
}

/// A random temporary name next to the target.
fn temp_name() -> OsString {
    let mut rnd = [0u8; 6];
    let _ = sys::getrandom(&mut rnd);
    OsString::from(format!(".nono-restore.{}", crate::registry::hex(&rnd)))
}

/// Apply `steps` (in path order) under `root`. Returns the paths that
/// could not be done, with why; the rest are journaled as done.
pub fn apply(
    root: &Path,
    root_idx: usize,
    steps: &[&Step],
    store: &Store,
    journal: &mut Journal,
) -> Result<Vec<(Vec<u8>, String)>> {
    let root_fd = capture::open_root(root)?;
    let mut failed: Vec<(Vec<u8>, String)> = Vec::new();
    let copies = std::cell::RefCell::new(CopyStats::default());
    // Modes are given exactly: no umask in between (we are single-threaded).
    let old_umask = sys::umask(0);
    // Removals deepest first: what is in the way of the target, or what
    // the target does not have.
    for s in steps.iter().rev() {
        let Some(now) = &s.now else { continue };
        let in_the_way = match &s.to {
            None => true,
            Some(to) => matches!(now.kind, Kind::Dir) != matches!(to.kind, Kind::Dir),
        };
        if in_the_way {
            if let Err(e) = remove(root_fd.as_raw_fd(), &s.path, matches!(now.kind, Kind::Dir)) {
                failed.push((s.path.clone(), e));
            } else if s.to.is_none() {
                journal.note("done", root_idx, &s.path);
            }
        }
    }
    // Creations parents first. Consecutive paths in one directory share its
    // fd: a step that replaces the directory itself sorts before them.
    let mut cache: Option<(Vec<u8>, OwnedFd)> = None;
    for s in steps.iter() {
        if failed.iter().any(|(p, _)| *p == s.path) {
            continue;
        }
        let Some(to) = &s.to else { continue };
        let (par, name) = split(&s.path);
        if cache.as_ref().is_none_or(|(p, _)| p.as_slice() != par) {
            cache = None;
            match parent(root_fd.as_raw_fd(), &s.path) {
                Ok((fd, _)) => cache = Some((par.to_vec(), fd)),
                Err(e) => {
                    journal.note("fail", root_idx, &s.path);
                    failed.push((s.path.clone(), e));
                    continue;
                }
            }
        }
        let Some((_, pfd)) = cache.as_ref() else {
            continue;
        };
        let res = write(pfd.as_raw_fd(), name, to, store, &copies);
        match res {
            Ok(()) => journal.note("done", root_idx, &s.path),
            Err(e) => {
                journal.note("fail", root_idx, &s.path);
                failed.push((s.path.clone(), e));
            }
        }
    }
    // Directories whose mode withholds our own access get it last, deepest first.
    for s in steps.iter().rev() {
        let Some(
            to @ Entry {
                kind: Kind::Dir, ..
            },
        ) = &s.to
        else {
            continue;
        };
        if to.mode & 0o700 == 0o700 || failed.iter().any(|(p, _)| *p == s.path) {
            continue;
        }
        let res = parent(root_fd.as_raw_fd(), &s.path).and_then(|(pfd, name)| {
            let fd = sys::openat(
                Some(pfd.as_raw_fd()),
                &name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )
            .map_err(|e| e.to_string())?;
            sys::fchmod(fd.as_raw_fd(), to.mode).map_err(|e| e.to_string())
        });
        if let Err(e) = res {
            failed.push((s.path.clone(), e));
        }
    }
    sys::umask(old_umask);
    Ok(failed)
}

/// Open the parent directory of `rel` beneath the root (no links followed).
fn parent(
    root: std::os::fd::RawFd,
    rel: &[u8],
) -> std::result::Result<(OwnedFd, OsString), String> {
    let (par, name) = split(rel);
    let fd = capture::open_beneath(root, par).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) {
            "a directory on its path is now a symlink or a file: not followed".to_string()
        } else {
            format!("cannot open its directory: {e}")
        }
    })?;
    Ok((fd, name.to_os_string()))
}

/// Remove one path (a directory only when empty).
fn remove(root: std::os::fd::RawFd, rel: &[u8], dir: bool) -> std::result::Result<(), String> {
    let (pfd, name) = parent(root, rel)?;
    let st = match sys::lstatat(pfd.as_raw_fd(), &name) {
        Ok(st) => st,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let really_dir = st.kind() == libc::S_IFDIR;
    if really_dir != dir {
        return Err("its type changed while restoring".into());
    }
    match writable(pfd.as_raw_fd(), || {
        sys::unlinkat(pfd.as_raw_fd(), &name, really_dir)
    }) {
        Ok(()) => Ok(()),
        Err(e)
            if e.raw_os_error() == Some(libc::ENOTEMPTY)
                || e.raw_os_error() == Some(libc::EEXIST) =>
        {
            Err(
                "directory not empty: it holds paths nono leaves alone (ignored or created since)"
                    .into(),
            )
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Run `op` on directory `dir`; if it is refused because the directory
/// withholds write access from its owner (us), grant it for the call and
/// put the mode back (the directory's own step, if any, sets it later).
fn writable<T>(dir: std::os::fd::RawFd, op: impl Fn() -> std::io::Result<T>) -> std::io::Result<T> {
    match op() {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let st = sys::fstat(dir)?;
            let mode = st.mode & 0o7777;
            if mode & 0o300 == 0o300 {
                return Err(e);
            }
            sys::fchmod(dir, mode | 0o700)?;
            let res = op();
            sys::fchmod(dir, mode)?;
            res
        }
        other => other,
    }
}

/// Make `name` in directory `d` what `to` says.
fn write(
    d: std::os::fd::RawFd,
    name: &OsStr,
    to: &Entry,
    store: &Store,
    copies: &std::cell::RefCell<CopyStats>,
) -> std::result::Result<(), String> {
    match &to.kind {
        Kind::Dir => {
            // Writable by us until its children are in place; `finish_dir`
            // gives a read-only directory its mode last.
            let mode = to.mode | 0o700;
            match sys::mkdirat(d, name, mode) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.to_string()),
            }
            let fd = sys::openat(
                Some(d),
                name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )
            .map_err(|e| format!("cannot open it: {e}"))?;
            sys::fchmod(fd.as_raw_fd(), mode).map_err(|e| e.to_string())
        }
        Kind::File { hash, size } => {
            let tmp = temp_name();
            writable(d, || {
                let fd = sys::openat(
                    Some(d),
                    &tmp,
                    libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                    to.mode,
                )?;
                let file = File::from(fd);
                let res = store
                    .copy_out(hash, *size, &file, &mut copies.borrow_mut())
                    .and_then(|_| sys::renameat(d, &tmp, d, name));
                if res.is_err() {
                    let _ = sys::unlinkat(d, &tmp, false);
                }
                res
            })
            .map_err(|e| e.to_string())
        }
        Kind::Link(target) => {
            let tmp = temp_name();
            sys::symlinkat(OsStr::from_bytes(target), d, &tmp).map_err(|e| e.to_string())?;
            sys::renameat(d, &tmp, d, name).map_err(|e| {
                let _ = sys::unlinkat(d, &tmp, false);
                e.to_string()
            })
        }
        Kind::Big(_) => Err("not captured".into()),
    }
}

/// The `pre` entries of steps: what is there now, with file contents
/// stored so an undo can bring them back.
pub fn capture_pre(root: &Path, steps: &[&Step], store: &Store) -> Result<Index> {
    let mut pre = Index::new();
    for s in steps {
        let Some(now) = &s.now else { continue };
        let entry = match &now.kind {
            // Content already stored (usually the final capture's): nothing to copy.
            Kind::File { hash, .. } if store.has(hash) => now.clone(),
            Kind::File { .. } => match capture::store_one(store, root, &s.path)? {
                Some(e) => e,
                None => continue,
            },
            _ => now.clone(),
        };
        pre.insert(s.path.clone(), entry);
    }
    Ok(pre)
}
