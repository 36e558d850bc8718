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
use super::{escape_into, Digest, Entry, Index, Kind, StatKey};
use crate::error::{Error, Result};
use crate::sys;
use nanoserde::{DeJson, SerJson};
use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
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

/// The journal of one restore: what it will do, then each path as it is
/// done. A log for people and post-mortems: a rerun converges by
/// replanning (a path already done equals its target), so lines are
/// buffered and written in batches rather than one syscall each.
pub struct Journal {
    file: File,
    /// Lines not yet written.
    buf: String,
}

/// Journal bytes buffered before a write.
const JOURNAL_BATCH: usize = 4096;

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
        Ok(Journal {
            file,
            buf: String::new(),
        })
    }

    /// Append a line: `temps ROOT PREFIX` (the temporary names it will
    /// use), `plan ROOT PATH`, `inplace ROOT PATH` (an in-place write
    /// begins), `done ROOT PATH`, `fail ROOT PATH`, `complete`.
    pub fn note(&mut self, what: &str, root: usize, path: &[u8]) {
        use std::fmt::Write as _;
        // Writing to a String cannot fail.
        let _ = write!(self.buf, "{what} {root} ");
        escape_into(&mut self.buf, path);
        self.buf.push('\n');
        if self.buf.len() >= JOURNAL_BATCH {
            self.flush();
        }
    }

    /// Write the buffered lines.
    pub fn flush(&mut self) {
        let _ = self.file.write_all(self.buf.as_bytes());
        self.buf.clear();
    }

    /// Append `complete` and make the journal durable.
    pub fn complete(&mut self) {
        self.buf.push_str("complete\n");
        self.flush();
        let _ = self.file.sync_all();
    }
}

/// The path (root index, relative path) whose in-place write an
/// interrupted restore began and never finished: the journal's last line,
/// when it is an `inplace` line (each is flushed before its write, and
/// the line after it once the write ends).
pub fn cut_off_write(record_dir: &Path) -> Option<(usize, Vec<u8>)> {
    let text = super::read_own(&record_dir.join("journal"), super::index_limit()).ok()?;
    let last = text.lines().rev().find(|l| !l.is_empty())?;
    let mut f = last.split(' ');
    if f.next()? != "inplace" {
        return None;
    }
    let root = f.next()?.parse().ok()?;
    let path = super::unescape(f.next()?)?;
    f.next().is_none().then_some((root, path))
}

/// The temporary-name prefixes of every restore of a session that did not
/// complete: a file of that name in the tree is one it was writing when
/// it was killed, never anyone else's.
pub fn leftover_prefixes(session_dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (dir, info) in records(session_dir) {
        if info.complete {
            continue;
        }
        let Ok(text) = super::read_own(&dir.join("journal"), super::index_limit()) else {
            continue;
        };
        for line in text.lines() {
            let mut f = line.split(' ');
            if f.next() != Some("temps") || f.next().is_none() {
                continue;
            }
            let prefix = f.next().and_then(super::unescape);
            if let Some(p) = prefix.filter(|p| p.starts_with(TEMP_PREFIX.as_bytes())) {
                out.push(p);
            }
        }
    }
    out
}

/// Whether `rel`'s last component is a temporary name with one of `prefixes`.
pub fn is_leftover(rel: &[u8], prefixes: &[Vec<u8>]) -> bool {
    let name = rel.rsplit(|&b| b == b'/').next().unwrap_or(rel);
    prefixes.iter().any(|p| name.starts_with(p))
}

/// Remove a temporary file or link a killed restore left at `rel` (never
/// a directory, never through a link).
pub fn remove_leftover(root: &Path, rel: &[u8]) -> std::result::Result<(), String> {
    let root_fd = capture::open_root(root).map_err(|e| e.to_string())?;
    let mut dirs = DirStack::new(root_fd.as_raw_fd());
    remove(&mut dirs, rel, false)
}

/// Split a relative path into its parent and last component.
fn split(rel: &[u8]) -> (&[u8], &OsStr) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(k) => (&rel[..k], OsStr::from_bytes(&rel[k + 1..])),
        None => (&rel[..0], OsStr::from_bytes(rel)),
    }
}

/// How every temporary name of a restore begins.
const TEMP_PREFIX: &str = ".nono-restore.";

/// Temporary names next to the targets: one random part per restore and a
/// counter (O_EXCL refuses a clash, which then fails that one path).
struct TempNames {
    /// `.nono-restore.<random>.`
    prefix: String,
    /// Names handed out.
    n: u64,
}

impl TempNames {
    /// A fresh random prefix.
    fn new() -> TempNames {
        let mut rnd = [0u8; 6];
        let _ = sys::getrandom(&mut rnd);
        TempNames {
            prefix: format!("{TEMP_PREFIX}{}.", crate::registry::hex(&rnd)),
            n: 0,
        }
    }

    /// The next name.
    fn next(&mut self) -> OsString {
        self.n += 1;
        OsString::from(format!("{}{}", self.prefix, self.n))
    }
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
    let w = Writer {
        store,
        copies: RefCell::new(CopyStats::default()),
        names: RefCell::new(TempNames::new()),
    };
    // Before the first temporary file: a kill can leave one behind, and a
    // later restore recognises it by this prefix and removes it.
    journal.note("temps", root_idx, w.names.borrow().prefix.as_bytes());
    journal.flush();
    // Modes are given exactly: no umask in between (we are single-threaded).
    let old_umask = sys::umask(0);
    // Removals deepest first: what is in the way of the target, or what
    // the target does not have.
    let mut dirs = DirStack::new(root_fd.as_raw_fd());
    for s in steps.iter().rev() {
        let Some(now) = &s.now else { continue };
        let in_the_way = match &s.to {
            None => true,
            Some(to) => matches!(now.kind, Kind::Dir) != matches!(to.kind, Kind::Dir),
        };
        if in_the_way {
            if let Err(e) = remove(&mut dirs, &s.path, matches!(now.kind, Kind::Dir)) {
                failed.push((s.path.clone(), e));
            } else if s.to.is_none() {
                journal.note("done", root_idx, &s.path);
            }
        }
    }
    // Creations parents first, along open directories: a step that
    // creates a directory sorts before the paths beneath it, and the
    // stack opens it only when they need it.
    let mut dirs = DirStack::new(root_fd.as_raw_fd());
    for s in steps.iter() {
        if failed.iter().any(|(p, _)| *p == s.path) {
            continue;
        }
        let Some(to) = &s.to else { continue };
        let (par, name) = split(&s.path);
        let pfd = match dirs.open(par) {
            Ok(fd) => fd,
            Err(e) => {
                journal.note("fail", root_idx, &s.path);
                failed.push((s.path.clone(), refusal(e)));
                continue;
            }
        };
        let in_place = match (&s.now, &to.kind) {
            (Some(now), Kind::File { hash, size }) => w.in_place(
                pfd, name, now, to.mode, hash, *size, journal, root_idx, &s.path,
            ),
            _ => None,
        };
        let was_in_place = in_place.is_some();
        let res = in_place.unwrap_or_else(|| w.write(pfd, name, to));
        match res {
            Ok(()) => journal.note("done", root_idx, &s.path),
            Err(e) => {
                journal.note("fail", root_idx, &s.path);
                failed.push((s.path.clone(), e));
            }
        }
        if was_in_place {
            // Finished, either way: a rerun must not take it for cut off.
            journal.flush();
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
    let fd = capture::open_beneath(root, par).map_err(refusal)?;
    Ok((fd, name.to_os_string()))
}

/// Why a directory on a path could not be opened, for the user.
fn refusal(e: std::io::Error) -> String {
    if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) {
        "a directory on its path is now a symlink or a file: not followed".to_string()
    } else {
        format!("cannot open its directory: {e}")
    }
}

/// The directories along the path last opened, each opened from the one
/// before with `O_NOFOLLOW`: the next path in the same or a nearby
/// directory reuses them instead of walking again from the root.
struct DirStack {
    /// The root.
    root: RawFd,
    /// (component, its fd), outermost first.
    open: Vec<(Vec<u8>, OwnedFd)>,
}

impl DirStack {
    /// An empty stack at `root`.
    fn new(root: RawFd) -> DirStack {
        DirStack {
            root,
            open: Vec::new(),
        }
    }

    /// The fd of directory `rel` ('' for the root), opening what is not open yet.
    fn open(&mut self, rel: &[u8]) -> std::io::Result<RawFd> {
        let comps = rel.split(|&b| b == b'/').filter(|c| !c.is_empty());
        // Components of `rel` seen so far; `open[..depth]` are theirs.
        let mut depth = 0;
        for c in comps {
            if c == b".." || c == b"." {
                return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
            }
            if self.open.get(depth).is_none_or(|(name, _)| name != c) {
                self.open.truncate(depth);
                let at = self.open.last().map_or(self.root, |(_, fd)| fd.as_raw_fd());
                let fd = sys::openat(
                    Some(at),
                    OsStr::from_bytes(c),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                )?;
                self.open.push((c.to_vec(), fd));
            }
            depth += 1;
        }
        self.open.truncate(depth);
        Ok(self.open.last().map_or(self.root, |(_, fd)| fd.as_raw_fd()))
    }
}

/// Remove one path (a directory only when empty).
fn remove(dirs: &mut DirStack, rel: &[u8], dir: bool) -> std::result::Result<(), String> {
    let (par, name) = split(rel);
    let pfd = dirs.open(par).map_err(refusal)?;
    let st = match sys::lstatat(pfd, name) {
        Ok(st) => st,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let really_dir = st.kind() == libc::S_IFDIR;
    if really_dir != dir {
        return Err("its type changed while restoring".into());
    }
    match writable(pfd, || sys::unlinkat(pfd, name, really_dir)) {
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

/// Writing to a file clears its set-id bits: give them back when `mode` has any.
fn setid_again(file: &File, mode: u32) -> std::io::Result<()> {
    match mode & 0o6000 {
        0 => Ok(()),
        _ => sys::fchmod(file.as_raw_fd(), mode),
    }
}

/// What writes files and links: the store, and state kept across paths.
struct Writer<'a> {
    /// Where contents come from.
    store: &'a Store,
    /// How copies were made (reflink refused once: not asked again).
    copies: RefCell<CopyStats>,
    /// Temporary names.
    names: RefCell<TempNames>,
}

impl Writer<'_> {
    /// Write a file over the regular file that is there now, in place:
    /// no new inode and no rename, which is most of what a restore costs
    /// per file. Only when the file is exactly the one planned against
    /// (same inode, size and times, so same content) and has no other
    /// hard link (whose other name could be outside the root); None when
    /// not, and the caller writes a new file and renames it. The one
    /// write that can leave a path half-written is journaled (and
    /// flushed) first, so a rerun after a kill finishes it; on an error
    /// the old content goes back (it is stored: `capture_pre`).
    #[allow(clippy::too_many_arguments)]
    fn in_place(
        &self,
        d: RawFd,
        name: &OsStr,
        now: &Entry,
        mode: u32,
        hash: &Digest,
        size: u64,
        journal: &mut Journal,
        root: usize,
        path: &[u8],
    ) -> Option<std::result::Result<(), String>> {
        let Kind::File {
            hash: old_hash,
            size: old_size,
        } = &now.kind
        else {
            return None;
        };
        if now.stat == StatKey::default() {
            return None;
        }
        let fd = sys::openat(
            Some(d),
            name,
            libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
            0,
        )
        .ok()?;
        let st = sys::fstat(fd.as_raw_fd()).ok()?;
        if st.kind() != libc::S_IFREG || st.nlink != 1 || capture::key(&st) != now.stat {
            return None;
        }
        // The mode first, before anything is written: a file we may write
        // but not chmod (another user's, group-writable) gets a new file
        // of ours instead, as before in-place writes.
        let old_mode = st.mode & 0o7777;
        if old_mode != mode && sys::fchmod(fd.as_raw_fd(), mode).is_err() {
            return None;
        }
        // A mode-only change: the content stays.
        if old_hash == hash && *old_size == size {
            return Some(Ok(()));
        }
        let file = File::from(fd);
        journal.note("inplace", root, path);
        journal.flush();
        let mut copies = self.copies.borrow_mut();
        let res = file
            .set_len(0)
            .and_then(|_| self.store.copy_out(hash, size, &file, &mut copies))
            .and_then(|_| setid_again(&file, mode));
        let res = match res {
            Ok(()) => Ok(()),
            Err(e) => {
                let back = file
                    .set_len(0)
                    .and_then(|_| self.store.copy_out(old_hash, *old_size, &file, &mut copies))
                    .and_then(|_| sys::fchmod(file.as_raw_fd(), old_mode));
                Err(match back {
                    Ok(()) => e.to_string(),
                    Err(_) => format!(
                        "{e}; what it held is kept in the restore record (--undo brings it back)"
                    ),
                })
            }
        };
        Some(res)
    }

    /// Make `name` in directory `d` what `to` says.
    fn write(
        &self,
        d: std::os::fd::RawFd,
        name: &OsStr,
        to: &Entry,
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
                let tmp = self.names.borrow_mut().next();
                writable(d, || {
                    let fd = sys::openat(
                        Some(d),
                        &tmp,
                        libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                        to.mode,
                    )?;
                    let file = File::from(fd);
                    let res = self
                        .store
                        .copy_out(hash, *size, &file, &mut self.copies.borrow_mut())
                        .and_then(|_| setid_again(&file, to.mode))
                        .and_then(|_| sys::renameat(d, &tmp, d, name));
                    if res.is_err() {
                        let _ = sys::unlinkat(d, &tmp, false);
                    }
                    res
                })
                .map_err(|e| e.to_string())
            }
            Kind::Link(target) => {
                let tmp = self.names.borrow_mut().next();
                sys::symlinkat(OsStr::from_bytes(target), d, &tmp).map_err(|e| e.to_string())?;
                sys::renameat(d, &tmp, d, name).map_err(|e| {
                    let _ = sys::unlinkat(d, &tmp, false);
                    e.to_string()
                })
            }
            Kind::Big(_) => Err("not captured".into()),
        }
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
