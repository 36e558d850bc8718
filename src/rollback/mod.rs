//! Rollback: capture a session's writable directories before the program
//! starts and after it ends, review the difference, and restore three-way
//! without ever destroying what the session did not change.
//!
//! Layout under `$XDG_STATE_HOME/nono/rollback/`:
//! `objects/ab/<62 hex>` content by SHA-256, shared by all sessions;
//! `sessions/<id>/` per session: `meta.json`, `baseline.N` and `final.N`
//! indexes (one per root), `restores/K/` (pre and post indexes, journal);
//! `roots/<sha256 of root>`: which index last captured that root (the
//! stat fast path).

#![allow(clippy::question_mark)]

pub mod capture;
pub mod diff;
pub mod hash;
pub mod ignore;
pub mod plan;
pub mod restore;
pub mod store;

use crate::error::{Error, Result};
use crate::registry;
pub use hash::Digest;
use nanoserde::{DeJson, SerJson};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Version of `meta.json` and the index format; readers refuse newer ones.
pub const FORMAT_VERSION: u32 = 1;

/// What a path is, as captured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file: its content's SHA-256 and size.
    File {
        /// Object name.
        hash: Digest,
        /// Bytes.
        size: u64,
    },
    /// A symlink and its target, as stored (never followed).
    Link(Vec<u8>),
    /// A directory.
    Dir,
    /// A regular file over the size limit: present, not captured, never touched.
    Big(u64),
}

/// The stat fields of the fast path: a file whose fields all match was not changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatKey {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size.
    pub size: u64,
    /// mtime (ns).
    pub mtime: i64,
    /// ctime (ns).
    pub ctime: i64,
}

/// One captured path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What it is.
    pub kind: Kind,
    /// Permission bits (07777); 0 for symlinks.
    pub mode: u32,
    /// For files: stat fields when captured (fast path).
    pub stat: StatKey,
}

impl Entry {
    /// Same content, type and mode (what the planner compares).
    pub fn same(&self, other: &Entry) -> bool {
        self.kind == other.kind && (matches!(self.kind, Kind::Link(_)) || self.mode == other.mode)
    }

    /// Size for humans: file bytes, link target length, 0 for directories.
    pub fn size(&self) -> u64 {
        match &self.kind {
            Kind::File { size, .. } | Kind::Big(size) => *size,
            Kind::Link(t) => t.len() as u64,
            Kind::Dir => 0,
        }
    }
}

/// A capture of one root: relative path (bytes, `/`-separated) to entry.
pub type Index = BTreeMap<Vec<u8>, Entry>;

/// Escape a byte string for one space-separated field: `%XX` for `%`,
/// space, controls and non-ASCII.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    escape_into(&mut s, bytes);
    s
}

/// `escape`, appended to `out`.
pub fn escape_into(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if bytes.is_empty() {
        out.push('%');
    }
    for &b in bytes {
        if b <= b' ' || b >= 0x7f || b == b'%' {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        } else {
            out.push(b as char);
        }
    }
}

/// Undo `escape` (a lone `%` is the empty string).
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    if s == "%" {
        return Some(Vec::new());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// First line of every index file.
const INDEX_HEADER: &str = "nono-rollback-index 1";

/// An index as text: one line per path, sorted.
pub fn index_to_text(index: &Index) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(index.len() * 140);
    out.push_str(INDEX_HEADER);
    out.push('\n');
    for (path, e) in index {
        let s = &e.stat;
        // Writing to a String cannot fail.
        let _ = match &e.kind {
            Kind::File { hash, size } => write!(
                out,
                "F {:o} {size} {hash} {} {} {} {} ",
                e.mode, s.dev, s.ino, s.mtime, s.ctime
            ),
            Kind::Big(size) => write!(
                out,
                "B {:o} {size} {} {} {} {} ",
                e.mode, s.dev, s.ino, s.mtime, s.ctime
            ),
            Kind::Link(t) => {
                out.push_str("L ");
                escape_into(&mut out, t);
                out.push(' ');
                Ok(())
            }
            Kind::Dir => write!(out, "D {:o} ", e.mode),
        };
        escape_into(&mut out, path);
        out.push('\n');
    }
    out
}

/// Parse an index; errors name the line.
pub fn index_from_text(text: &str) -> std::result::Result<Index, String> {
    let mut lines = text.lines();
    if lines.next() != Some(INDEX_HEADER) {
        return Err("not a rollback index (or written by a newer nono)".into());
    }
    // Collected, then built in one go: the lines are sorted already.
    let mut index = Vec::new();
    for (n, line) in lines.enumerate() {
        let bad = || format!("line {}: malformed", n + 2);
        // At most 9 fields; no allocation per line.
        let mut fields = [""; 10];
        let mut count = 0;
        for part in line.split(' ') {
            if count == fields.len() {
                return Err(bad());
            }
            fields[count] = part;
            count += 1;
        }
        let f = &fields[..count];
        let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
        let inum = |s: &str| s.parse::<i64>().map_err(|_| bad());
        let mode = |s: &str| u32::from_str_radix(s, 8).map_err(|_| bad());
        let stat = |f: &[&str]| -> std::result::Result<StatKey, String> {
            Ok(StatKey {
                dev: num(f[0])?,
                ino: num(f[1])?,
                mtime: inum(f[2])?,
                ctime: inum(f[3])?,
                size: 0,
            })
        };
        let (path, entry) = match f {
            ["F", m, size, hash, rest @ ..] if rest.len() == 5 => {
                let hash = Digest::from_hex(hash).ok_or_else(bad)?;
                let size = num(size)?;
                let mut st = stat(rest)?;
                st.size = size;
                let kind = Kind::File { hash, size };
                (
                    rest[4],
                    Entry {
                        kind,
                        mode: mode(m)?,
                        stat: st,
                    },
                )
            }
            ["B", m, size, rest @ ..] if rest.len() == 5 => {
                let size = num(size)?;
                let mut st = stat(rest)?;
                st.size = size;
                (
                    rest[4],
                    Entry {
                        kind: Kind::Big(size),
                        mode: mode(m)?,
                        stat: st,
                    },
                )
            }
            ["L", target, p] => {
                let t = unescape(target).ok_or_else(bad)?;
                (
                    *p,
                    Entry {
                        kind: Kind::Link(t),
                        mode: 0,
                        stat: StatKey::default(),
                    },
                )
            }
            ["D", m, p] => (
                *p,
                Entry {
                    kind: Kind::Dir,
                    mode: mode(m)?,
                    stat: StatKey::default(),
                },
            ),
            _ => return Err(bad()),
        };
        let path = unescape(path).ok_or_else(bad)?;
        if !valid_rel(&path) {
            return Err(format!("line {}: invalid path", n + 2));
        }
        index.push((path, entry));
    }
    Ok(index.into_iter().collect())
}

/// A relative path that stays beneath its root: no empty, `.` or `..`
/// component, no leading slash, no NUL.
pub fn valid_rel(path: &[u8]) -> bool {
    !path.is_empty()
        && !path.contains(&0)
        && path
            .split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

/// Summary of one capture, kept in the session's meta.
#[derive(Clone, Debug, Default, SerJson, DeJson, PartialEq)]
pub struct CaptureInfo {
    /// Unix time the capture finished.
    pub time: u64,
    /// How long it took (ms).
    pub ms: u64,
    /// Regular files captured.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks.
    pub links: u64,
    /// Files over the size limit (present, not captured).
    pub big: u64,
    /// Sockets, FIFOs and devices (never captured or touched).
    pub special: u64,
    /// Total bytes of the captured files.
    pub bytes: u64,
    /// Bytes read from the tree (files not matched by the stat fast path).
    pub bytes_read: u64,
    /// New objects written to the store.
    pub objects_new: u64,
    /// Bytes of those new objects.
    pub bytes_stored: u64,
}

impl CaptureInfo {
    /// Add another root's numbers.
    pub fn add(&mut self, o: &CaptureInfo) {
        self.files += o.files;
        self.dirs += o.dirs;
        self.links += o.links;
        self.big += o.big;
        self.special += o.special;
        self.bytes += o.bytes;
        self.bytes_read += o.bytes_read;
        self.objects_new += o.objects_new;
        self.bytes_stored += o.bytes_stored;
    }

    /// One line for events and progress.
    pub fn describe(&self) -> String {
        format!(
            "{} files, {} dirs, {} symlinks ({}); read {}, stored {} in {} new objects; {} over the size limit; {} ms",
            self.files,
            self.dirs,
            self.links,
            human_bytes(self.bytes),
            human_bytes(self.bytes_read),
            human_bytes(self.bytes_stored),
            self.objects_new,
            self.big,
            self.ms
        )
    }
}

/// A `.gitignore`-style file as frozen at the baseline.
#[derive(Clone, Debug, Default, SerJson, DeJson, PartialEq)]
pub struct IgnoreFile {
    /// Index of the root in `Meta::roots`.
    pub root: usize,
    /// Its directory relative to the repository top (or the root), `/`-separated.
    pub base: String,
    /// Lower precedence than every `.gitignore` (`.git/info/exclude`).
    pub exclude_file: bool,
    /// Its lines.
    pub lines: Vec<String>,
}

/// A rollback session's description (`meta.json`).
#[derive(Clone, Debug, Default, SerJson, DeJson, PartialEq)]
#[nserde(serialize_none_as_null)]
pub struct Meta {
    /// Format version.
    pub version: u32,
    /// The nono session id (also this rollback session's id).
    pub id: String,
    /// The session's name.
    pub name: String,
    /// The program.
    pub command: Vec<String>,
    /// Captured roots (canonical absolute paths).
    pub roots: Vec<String>,
    /// Where each root's paths start relative to its repository top ('' when the root is the top).
    pub root_prefixes: Vec<String>,
    /// `--rollback-exclude` patterns.
    pub excludes: Vec<String>,
    /// Frozen ignore files.
    pub ignore: Vec<IgnoreFile>,
    /// Files larger than this were not captured.
    pub max_file_bytes: u64,
    /// The baseline capture.
    pub baseline: CaptureInfo,
    /// The final capture; null until the program ended (and forever if the supervisor died).
    pub final_capture: Option<CaptureInfo>,
}

/// `$XDG_STATE_HOME/nono/rollback`.
pub fn base_dir() -> Result<PathBuf> {
    Ok(registry::state_dir()?.join("rollback"))
}

/// Create a private directory (0700) and its missing parents.
pub fn ensure_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
    registry::check_private_dir(path)
}

/// The directory of rollback session `id`.
pub fn session_dir(id: &str) -> Result<PathBuf> {
    Ok(base_dir()?.join("sessions").join(id))
}

/// Write `bytes` to `path` atomically (temp file 0600, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file(path, bytes, true)
}

/// `write_atomic` without the fsync, for hints that may be lost.
pub fn write_atomic_fast(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file(path, bytes, false)
}

/// Temp file, optional fsync, rename.
fn write_file(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let mut rnd = [0u8; 6];
    crate::sys::getrandom(&mut rnd).map_err(|e| Error::io("getrandom", e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", registry::hex(&rnd)));
    registry::write_new_file(&tmp, bytes, durable, path)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(format!("cannot write {}", path.display()), e)
    })
}

/// Read one of our own files (never through a symlink), up to `limit` bytes.
pub fn read_own(path: &Path, limit: u64) -> Result<String> {
    registry::read_small_file_limited(path, limit)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))
}

/// Largest index we read: ~200 bytes a line for the file budget, twice over.
pub fn index_limit() -> u64 {
    crate::defaults::ROLLBACK_MAX_FILES * 400 + (1 << 20)
}

/// Read and parse an index file.
pub fn read_index(path: &Path) -> Result<Index> {
    let text = read_own(path, index_limit())?;
    index_from_text(&text).map_err(|m| Error::Msg(format!("{}: {m}", path.display())))
}

/// Write an index file.
pub fn write_index(path: &Path, index: &Index) -> Result<()> {
    write_atomic(path, index_to_text(index).as_bytes())
}

/// Read a session's meta.
pub fn read_meta(dir: &Path) -> Result<Meta> {
    let path = dir.join("meta.json");
    let text = read_own(&path, crate::defaults::MAX_FILE_BYTES)?;
    crate::json::check(&text).map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
    let m = Meta::deserialize_json(&text).map_err(|e| {
        Error::Msg(format!(
            "{}: not a rollback meta file ({e})",
            path.display()
        ))
    })?;
    if m.version > FORMAT_VERSION {
        crate::bail!("{}: written by a newer nono; upgrade nono", path.display());
    }
    Ok(m)
}

/// Write a session's meta.
pub fn write_meta(dir: &Path, meta: &Meta) -> Result<()> {
    write_atomic(&dir.join("meta.json"), meta.serialize_json().as_bytes())
}

/// Bytes for humans: `512 B`, `3.4 KiB`, `12.0 MiB`, `1.2 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Append an event to nono session `id`'s event log, if it still exists
/// (never creating it, never through a link).
pub fn session_event(id: &str, event: &str, detail: &str) {
    let Ok(reg) = registry::Registry::open() else {
        return;
    };
    let line = registry::Event {
        time: registry::now(),
        event: event.into(),
        detail: detail.into(),
    };
    let mut text = line.serialize_json();
    text.push('\n');
    if let Ok(mut f) = OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(reg.events_path(id))
    {
        let _ = f.write_all(text.as_bytes());
    }
}

/// The writable directory grants of a sandbox: what `--rollback`
/// captures. Device, proc and sys trees are not files anyone restores;
/// a grant inside another is covered by it.
pub fn roots_of(policy: &crate::sandbox::Policy) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = policy
        .rules
        .iter()
        .filter(|r| r.access & crate::sandbox::WRITE != 0 && r.path.is_dir())
        .map(|r| r.path.clone())
        .filter(|p| !["/dev", "/proc", "/sys"].iter().any(|s| p.starts_with(s)))
        .collect();
    roots.sort();
    let mut out: Vec<PathBuf> = Vec::new();
    for r in roots {
        if !out.iter().any(|o| r.starts_with(o)) {
            out.push(r);
        }
    }
    out
}

/// Seconds `nono stop` gives the supervisor of rollback session `id` for
/// its final capture: the default grace, or twice what the baseline took
/// when that is longer (the final capture reads at most what the baseline
/// read, and a big tree must not be cut off just for being big).
pub fn final_capture_grace_secs(id: &str) -> u64 {
    let baseline_ms = session_dir(id)
        .and_then(|d| read_meta(&d))
        .map_or(0, |m| m.baseline.ms);
    crate::defaults::ROLLBACK_FINAL_GRACE_SECS.max(baseline_ms.saturating_mul(2) / 1000)
}

/// Whether rollback session `id` has its final capture.
pub fn has_final_capture(id: &str) -> bool {
    session_dir(id)
        .and_then(|d| read_meta(&d))
        .is_ok_and(|m| m.final_capture.is_some())
}

/// Remove a session's captures (its supervisor never started).
pub fn discard(id: &str) {
    if let Ok(dir) = session_dir(id) {
        let _ = fs::remove_dir_all(dir);
    }
}

/// Open a lock file, created 0600 and never through a symlink; what a
/// holder wrote in it is kept.
fn open_lock_file(path: &Path) -> Result<fs::File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))
}

/// The store lock: captures and restores hold it shared while they write
/// objects not yet named by an index; prune takes it exclusively, so it
/// never collects an object a running capture is about to reference.
pub struct StoreLock {
    _file: std::fs::File,
}

/// Take the store lock (`exclusive` for prune); a busy exclusive lock is
/// an error that says to try again.
pub fn lock_store(exclusive: bool) -> Result<StoreLock> {
    use std::os::fd::AsRawFd;
    let base = base_dir()?;
    ensure_dir(&base)?;
    let path = base.join("lock");
    let file = open_lock_file(&path)?;
    let op = if exclusive {
        libc::LOCK_EX | libc::LOCK_NB
    } else {
        libc::LOCK_SH
    };
    crate::sys::flock(file.as_raw_fd(), op).map_err(|e| {
        if exclusive && e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Msg(
                "a rollback capture or restore is running; prune again when it is done".into(),
            )
        } else {
            Error::io(format!("cannot lock {}", path.display()), e)
        }
    })?;
    Ok(StoreLock { _file: file })
}

/// Locks held on roots: a restore holds its roots exclusively, so one
/// restore at a time writes in a root (whichever session it restores) and
/// no baseline is captured from a half-restored tree; a baseline holds
/// them shared. Released when dropped (or when the process dies: flock).
pub struct RootLocks {
    _files: Vec<std::fs::File>,
}

/// Take the lock of every root without waiting (`exclusive` for a
/// restore, shared for a baseline): a busy one is an error that names
/// who holds it, from what the holder wrote in the lock file. `who` is
/// what this process writes there for the next one.
pub fn lock_roots(roots: &[String], who: &str, exclusive: bool) -> Result<RootLocks> {
    use std::io::{Read, Seek};
    use std::os::fd::AsRawFd;
    let dir = base_dir()?.join("locks");
    ensure_dir(&dir)?;
    let mut files = Vec::new();
    for root in roots {
        let path = dir.join(hash::hex_digest(root.as_bytes()));
        let mut file = open_lock_file(&path)?;
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        match crate::sys::flock(file.as_raw_fd(), op | libc::LOCK_NB) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut holder = String::new();
                let _ = Read::by_ref(&mut file)
                    .take(512)
                    .read_to_string(&mut holder);
                let holder = crate::escape::text(holder.trim()).into_owned();
                let holder = if holder.is_empty() {
                    "a nono that is still starting".to_string()
                } else {
                    holder
                };
                crate::bail!(
                    "{root} is busy: {holder}; wait for it to finish, then run this again"
                );
            }
            Err(e) => return Err(Error::io(format!("cannot lock {}", path.display()), e)),
        }
        // Shared holders (baselines) write too: a restore refused by one
        // names one of them.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = file.write_all(who.as_bytes());
        files.push(file);
    }
    Ok(RootLocks { _files: files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_text_round_trips_odd_names() {
        let mut idx = Index::new();
        let st = StatKey {
            dev: 1,
            ino: 2,
            size: 3,
            mtime: -4,
            ctime: 5,
        };
        idx.insert(
            b"a dir/f%\n\xff".to_vec(),
            Entry {
                kind: Kind::File {
                    hash: Digest([0xab; 32]),
                    size: 3,
                },
                mode: 0o4755,
                stat: st,
            },
        );
        idx.insert(
            b"a dir".to_vec(),
            Entry {
                kind: Kind::Dir,
                mode: 0o700,
                stat: StatKey::default(),
            },
        );
        idx.insert(
            b"l".to_vec(),
            Entry {
                kind: Kind::Link(b"../x y".to_vec()),
                mode: 0,
                stat: StatKey::default(),
            },
        );
        idx.insert(
            b"big".to_vec(),
            Entry {
                kind: Kind::Big(9),
                mode: 0o644,
                stat: StatKey { size: 9, ..st },
            },
        );
        let text = index_to_text(&idx);
        assert_eq!(index_from_text(&text).unwrap(), idx);
        assert!(index_from_text("nono-rollback-index 1\nD 755 ../x\n").is_err());
        assert!(index_from_text("nono-rollback-index 1\nD 755 /abs\n").is_err());
        assert!(index_from_text("garbage").is_err());
    }
}
