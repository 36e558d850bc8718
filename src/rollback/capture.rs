//! Capturing a root: a walk with `openat(O_NOFOLLOW)` that records regular
//! files (content and mode), symlinks (as links) and directories (empty
//! ones too), leaving out what `ignore` excludes. A file whose (device,
//! inode, size, mtime, ctime) match the previous capture of the same root
//! is not read again.

use super::ignore::Rules;
use super::store::{self, CopyStats, Store};
use super::{CaptureInfo, Entry, IgnoreFile, Index, Kind, Meta, StatKey};
use crate::error::{Error, Result};
use crate::sys::{self, Stat};
use nanoserde::SerJson;
use std::collections::BTreeMap;
use std::ffi::{CStr, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Largest `.gitignore` we read; real ones are a few KiB.
const MAX_IGNORE_FILE: u64 = 1024 * 1024;

/// One path found by the walk.
pub struct Walked {
    /// Relative path.
    pub path: Vec<u8>,
    /// Its lstat.
    pub st: Stat,
    /// A symlink's target.
    pub link: Option<Vec<u8>>,
}

/// The result of walking one root.
pub struct Walk {
    /// Paths in walk order (parents before children).
    pub entries: Vec<Walked>,
    /// Sockets, FIFOs, devices seen (never captured).
    pub special: u64,
}

/// Open a directory without following a symlink in its last component.
fn open_dir(dir: Option<RawFd>, name: &OsStr) -> std::io::Result<OwnedFd> {
    sys::openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

/// Open the root itself.
pub fn open_root(root: &Path) -> Result<OwnedFd> {
    open_dir(None, root.as_os_str())
        .map_err(|e| Error::io(format!("cannot open {} for rollback", root.display()), e))
}

/// Open `rel` (a directory path relative to `root`, '' for the root) one
/// component at a time, never following a symlink.
pub fn open_beneath(root: RawFd, rel: &[u8]) -> std::io::Result<OwnedFd> {
    let mut fd = open_dir(Some(root), OsStr::new("."))?;
    for comp in rel.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if comp == b".." || comp == b"." {
            return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
        }
        fd = open_dir(Some(fd.as_raw_fd()), OsStr::from_bytes(comp))?;
    }
    Ok(fd)
}

/// Read a small regular file in `dir` without following links; None if absent.
fn read_small_at(dir: RawFd, name: &str) -> Option<Vec<String>> {
    let fd = sys::openat(
        Some(dir),
        OsStr::new(name),
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
        0,
    )
    .ok()?;
    read_small_fd(fd)
}

/// The lines of an open regular file of at most `MAX_IGNORE_FILE` bytes.
fn read_small_fd(fd: OwnedFd) -> Option<Vec<String>> {
    let st = sys::fstat(fd.as_raw_fd()).ok()?;
    if st.kind() != libc::S_IFREG || st.size > MAX_IGNORE_FILE {
        return None;
    }
    let mut text = Vec::new();
    use std::io::Read;
    File::from(fd)
        .take(MAX_IGNORE_FILE)
        .read_to_end(&mut text)
        .ok()?;
    Some(
        String::from_utf8_lossy(&text)
            .lines()
            .map(String::from)
            .collect(),
    )
}

/// Walk `root`. With `gather`, `.gitignore` files met on the way are added
/// to `rules` (and recorded) before their directory's entries are judged.
pub fn walk(
    root: &Path,
    rules: &mut Rules,
    mut gather: Option<(&mut Vec<IgnoreFile>, usize, &str)>,
) -> Result<Walk> {
    let fd = open_root(root)?;
    let mut w = Walk {
        entries: Vec::new(),
        special: 0,
    };
    walk_dir(root, fd, Vec::new(), rules, &mut gather, &mut w)?;
    Ok(w)
}

/// Walk one directory (recursively).
fn walk_dir(
    root: &Path,
    fd: OwnedFd,
    prefix: Vec<u8>,
    rules: &mut Rules,
    gather: &mut Option<(&mut Vec<IgnoreFile>, usize, &str)>,
    w: &mut Walk,
) -> Result<()> {
    let shown = |p: &[u8]| root.join(OsStr::from_bytes(p)).display().to_string();
    if let Some((files, root_idx, top_prefix)) = gather.as_mut() {
        if let Some(lines) = read_small_at(fd.as_raw_fd(), ".gitignore") {
            let mut base = top_prefix.trim_end_matches('/').to_string();
            if !prefix.is_empty() {
                if !base.is_empty() {
                    base.push('/');
                }
                base.push_str(&String::from_utf8_lossy(&prefix));
            }
            rules.add_file(&base, &lines, false);
            files.push(IgnoreFile {
                root: *root_idx,
                base,
                exclude_file: false,
                lines,
            });
        }
    }
    // One buffer of NUL-terminated names per directory: the only
    // allocation per entry is its path, which becomes the index key.
    let mut raw = Vec::new();
    sys::read_dir_raw(fd.as_raw_fd(), &mut raw).map_err(|e| {
        Error::Msg(format!(
            "cannot list {}: {e}; exclude it with --rollback-exclude",
            shown(&prefix)
        ))
    })?;
    let mut names: Vec<&CStr> = raw
        .split_inclusive(|&b| b == 0)
        .filter_map(|n| CStr::from_bytes_with_nul(n).ok())
        .collect();
    names.sort_unstable_by(|a, b| a.to_bytes().cmp(b.to_bytes()));
    for cname in names {
        let name = OsStr::from_bytes(cname.to_bytes());
        let mut path = Vec::with_capacity(prefix.len() + 1 + name.len());
        path.extend_from_slice(&prefix);
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name.as_bytes());
        let st = match sys::lstatat_c(fd.as_raw_fd(), cname) {
            Ok(st) => st,
            // Gone since the listing: nothing to capture.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Msg(format!("cannot inspect {}: {e}", shown(&path)))),
        };
        match st.kind() {
            libc::S_IFDIR => {
                if rules.excluded(&path, true) {
                    continue;
                }
                let sub = open_dir(Some(fd.as_raw_fd()), name).map_err(|e| {
                    Error::Msg(format!(
                        "cannot open {}: {e}; exclude it with --rollback-exclude",
                        shown(&path)
                    ))
                })?;
                w.entries.push(Walked {
                    path: path.clone(),
                    st,
                    link: None,
                });
                walk_dir(root, sub, path, rules, gather, w)?;
            }
            libc::S_IFREG => {
                if !rules.excluded(&path, false) {
                    w.entries.push(Walked {
                        path,
                        st,
                        link: None,
                    });
                }
            }
            libc::S_IFLNK => {
                if rules.excluded(&path, false) {
                    continue;
                }
                let target = sys::readlinkat(fd.as_raw_fd(), name).map_err(|e| {
                    Error::Msg(format!("cannot read the link {}: {e}", shown(&path)))
                })?;
                w.entries.push(Walked {
                    path,
                    st,
                    link: Some(target.into_vec()),
                });
            }
            _ => {
                if !rules.excluded(&path, false) {
                    w.special += 1;
                }
            }
        }
    }
    Ok(())
}

/// The stat fields of the fast path.
pub fn key(st: &Stat) -> StatKey {
    StatKey {
        dev: st.dev,
        ino: st.ino,
        size: st.size,
        mtime: st.mtime_ns,
        ctime: st.ctime_ns,
    }
}

/// Turn a walk into an index, reading only files the previous capture
/// does not vouch for; with a store, new contents are stored.
pub fn build(
    root: &Path,
    walk: &mut Walk,
    prev: Option<&Index>,
    store: Option<&Store>,
    max_file: u64,
    progress: &mut Progress,
) -> Result<(Index, CaptureInfo)> {
    let started = Instant::now();
    let mut info = CaptureInfo {
        special: walk.special,
        ..CaptureInfo::default()
    };
    // Collected, then built in one go (a sort of nearly sorted paths and a
    // bulk build beat an insert per path).
    let mut index: Vec<(Vec<u8>, Entry)> = Vec::with_capacity(walk.entries.len());
    let mut todo: Vec<usize> = Vec::new();
    for (i, w) in walk.entries.iter_mut().enumerate() {
        let mode = w.st.mode & 0o7777;
        let entry = match (w.st.kind(), &w.link) {
            (libc::S_IFDIR, _) => {
                info.dirs += 1;
                Entry {
                    kind: Kind::Dir,
                    mode,
                    stat: StatKey::default(),
                }
            }
            (_, Some(t)) => {
                info.links += 1;
                Entry {
                    kind: Kind::Link(t.clone()),
                    mode: 0,
                    stat: StatKey::default(),
                }
            }
            _ if w.st.size > max_file => {
                info.big += 1;
                Entry {
                    kind: Kind::Big(w.st.size),
                    mode,
                    stat: key(&w.st),
                }
            }
            _ => {
                let k = key(&w.st);
                let reuse = prev.and_then(|p| p.get(&w.path)).filter(|e| {
                    e.stat == k
                        && e.mode == mode
                        // The previous index's session still exists (it was read), so
                        // prune kept its objects: no need to check the store per file.
                        && matches!(e.kind, Kind::File { .. })
                });
                match reuse {
                    // A digest and numbers: the clone allocates nothing.
                    Some(e) => {
                        info.files += 1;
                        info.bytes += w.st.size;
                        e.clone()
                    }
                    None => {
                        todo.push(i);
                        continue;
                    }
                }
            }
        };
        index.push((std::mem::take(&mut w.path), entry));
    }
    // Read what changed, one directory at a time.
    let parent = |p: &[u8]| {
        p.iter()
            .rposition(|&b| b == b'/')
            .map_or(&p[..0], |i| &p[..i])
            .to_vec()
    };
    todo.sort_by_key(|&i| parent(&walk.entries[i].path));
    let root_fd = open_root(root)?;
    let mut dir: Option<(Vec<u8>, OwnedFd)> = None;
    let mut copies = CopyStats::default();
    progress.total = todo.iter().map(|&i| walk.entries[i].st.size).sum();
    for i in todo {
        let w = &walk.entries[i];
        let shown = || root.join(OsStr::from_bytes(&w.path)).display().to_string();
        let par = parent(&w.path);
        if dir.as_ref().is_none_or(|(p, _)| *p != par) {
            let fd = open_beneath(root_fd.as_raw_fd(), &par).map_err(|e| {
                Error::Msg(format!("cannot open the directory of {}: {e}", shown()))
            })?;
            dir = Some((par, fd));
        }
        let Some((_, dfd)) = dir.as_ref() else {
            continue;
        };
        let name = OsStr::from_bytes(
            &w.path[w.path.iter().rposition(|&b| b == b'/').map_or(0, |k| k + 1)..],
        );
        let mode = w.st.mode & 0o7777;
        let opened = sys::openat(
            Some(dfd.as_raw_fd()),
            name,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
            0,
        );
        let file = match opened {
            Ok(fd) => File::from(fd),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            // Unreadable (mode 000 and the like): present, not captured, never touched.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                info.big += 1;
                index.push((
                    w.path.clone(),
                    Entry {
                        kind: Kind::Big(w.st.size),
                        mode,
                        stat: key(&w.st),
                    },
                ));
                continue;
            }
            Err(e) => return Err(Error::Msg(format!("cannot read {}: {e}", shown()))),
        };
        let now = sys::fstat(file.as_raw_fd())
            .map_err(|e| Error::io(format!("cannot inspect {}", shown()), e))?;
        if now.kind() != libc::S_IFREG {
            continue;
        }
        let size = now.size;
        let hash = match store {
            Some(s) => {
                let (hash, new) = s
                    .put(&file, size, &mut copies)
                    .map_err(|e| Error::io(format!("cannot store {}", shown()), e))?;
                if new {
                    info.objects_new += 1;
                    info.bytes_stored += size;
                }
                hash
            }
            None => store::hash_file(&file)
                .map_err(|e| Error::io(format!("cannot read {}", shown()), e))?,
        };
        info.bytes_read += size;
        info.files += 1;
        info.bytes += size;
        progress.advance(size);
        // The key is the one from before the read: a change during it makes the next capture read again.
        let stat = if now == w.st {
            key(&w.st)
        } else {
            StatKey::default()
        };
        index.push((
            w.path.clone(),
            Entry {
                kind: Kind::File { hash, size },
                mode: now.mode & 0o7777,
                stat,
            },
        ));
    }
    info.ms = started.elapsed().as_millis() as u64;
    Ok((index.into_iter().collect(), info))
}

/// Progress on stderr for slow captures (the launcher's; the supervisor has none).
pub struct Progress {
    /// Whether to print at all.
    pub enabled: bool,
    /// Bytes to read in total.
    pub total: u64,
    /// Read so far.
    pub done: u64,
    /// When the capture began.
    pub start: Instant,
    /// Last print.
    pub last: Option<Instant>,
    /// What is being captured.
    pub what: String,
}

impl Progress {
    /// A reporter; silent unless `enabled`.
    pub fn new(enabled: bool, what: &str) -> Progress {
        Progress {
            enabled,
            total: 0,
            done: 0,
            start: Instant::now(),
            last: None,
            what: what.into(),
        }
    }

    /// Count bytes read; print at most a few times a second once slow.
    pub fn advance(&mut self, n: u64) {
        self.done += n;
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let slow = now.duration_since(self.start).as_millis() as u64
            >= crate::defaults::ROLLBACK_PROGRESS_AFTER_MS;
        if slow
            && self
                .last
                .is_none_or(|l| now.duration_since(l).as_millis() >= 250)
        {
            self.last = Some(now);
            eprint!(
                "\rnono: capturing {}: {} of {}   ",
                self.what,
                super::human_bytes(self.done),
                super::human_bytes(self.total)
            );
        }
    }

    /// End the progress line, if one was printed.
    pub fn done(&mut self) {
        if self.last.is_some() {
            eprintln!();
        }
    }
}

/// Where a root sits in its git repository: (top, root relative to top).
fn repo_top(root: &Path) -> (PathBuf, String) {
    for a in root.ancestors() {
        if std::fs::symlink_metadata(a.join(".git")).is_ok() {
            let rel = root
                .strip_prefix(a)
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_default();
            return (a.to_path_buf(), rel);
        }
    }
    (root.to_path_buf(), String::new())
}

/// git's global ignore file: `core.excludesFile` as git itself resolves
/// it in the repository (every config file git reads, `~` expanded), else
/// git's default `$XDG_CONFIG_HOME/git/ignore` (`~/.config/git/ignore`),
/// which is also what applies where git is not installed.
fn global_excludes_file(top: &Path) -> Option<PathBuf> {
    let configured = std::process::Command::new("git")
        .args(["config", "--path", "--get", "core.excludesFile"])
        .current_dir(top)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| OsString::from_vec(o.stdout))
        .map(|s| {
            let b = s.as_bytes();
            PathBuf::from(OsStr::from_bytes(b.strip_suffix(b"\n").unwrap_or(b)))
        })
        .filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = configured {
        // git reads a relative path from where it runs: the repository top.
        return Some(if p.is_absolute() { p } else { top.join(p) });
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|c| c.join("git").join("ignore"))
}

/// The ignore files that apply to a root from outside it: `.gitignore`s
/// of the directories between the repository top and the root, and
/// `.git/info/exclude`.
fn outer_ignores(root: &Path, root_idx: usize) -> (String, Vec<IgnoreFile>) {
    let (top, prefix) = repo_top(root);
    let mut files = Vec::new();
    if let Ok(fd) = open_dir(None, top.join(".git/info").as_os_str()) {
        if let Some(lines) = read_small_at(fd.as_raw_fd(), "exclude") {
            files.push(IgnoreFile {
                root: root_idx,
                base: String::new(),
                exclude_file: true,
                lines,
            });
        }
    }
    // git's core.excludesFile, below .git/info/exclude.
    // Links are followed here, unlike inside the roots: dotfiles are often
    // links, and the file is read before the program starts.
    let global = global_excludes_file(&top).and_then(|g| {
        let fd = sys::openat(
            None,
            g.as_os_str(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
            0,
        )
        .ok()?;
        read_small_fd(fd)
    });
    if let Some(lines) = global {
        files.push(IgnoreFile {
            root: root_idx,
            base: String::new(),
            exclude_file: true,
            lines,
        });
    }
    if !prefix.is_empty() {
        let mut dir = top.clone();
        let mut base = String::new();
        let comps: Vec<String> = Path::new(&prefix)
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        for c in &comps {
            if let Ok(fd) = open_dir(None, dir.as_os_str()) {
                if let Some(lines) = read_small_at(fd.as_raw_fd(), ".gitignore") {
                    files.push(IgnoreFile {
                        root: root_idx,
                        base: base.clone(),
                        exclude_file: false,
                        lines,
                    });
                }
            }
            dir.push(c);
            if !base.is_empty() {
                base.push('/');
            }
            base.push_str(c);
        }
    }
    (prefix, files)
}

/// The frozen rules of root `i` of a session.
pub fn rules_for(meta: &Meta, i: usize) -> Rules {
    let mut r = Rules::new(meta.root_prefixes.get(i).map_or("", String::as_str));
    for f in meta.ignore.iter().filter(|f| f.root == i) {
        r.add_file(&f.base, &f.lines, f.exclude_file);
    }
    r.add_excludes(&meta.excludes);
    r
}

/// Limits a capture must stay within.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Files larger than this are not captured.
    pub max_file: u64,
    /// Most files a capture may hold.
    pub max_files: u64,
    /// Most bytes a capture may hold.
    pub max_bytes: u64,
}

/// The file name of root `i`'s index of `which` capture.
pub fn index_name(which: &str, i: usize) -> String {
    format!("{which}.{i}")
}

/// Pointer file for the stat fast path of `root`.
fn root_pointer(base: &Path, root: &str) -> PathBuf {
    base.join("roots")
        .join(super::hash::hex_digest(root.as_bytes()))
}

/// A capture read back: where its index file is, and the index.
pub type Previous = (PathBuf, Index);

/// The most recent capture of `root` by any session, if still on disk.
pub fn previous_capture(base: &Path, root: &str) -> Option<Previous> {
    let text = super::read_own(&root_pointer(base, root), 4096).ok()?;
    let path = PathBuf::from(text.trim());
    if !path.starts_with(base) {
        return None;
    }
    let index = super::read_index(&path).ok()?;
    Some((path, index))
}

/// Record `index_path` as the latest capture of `root`. A hint, not
/// data: no fsync (losing it costs one full read of the tree).
fn set_previous(base: &Path, root: &str, index_path: &Path) {
    let pointer = root_pointer(base, root);
    let text = index_path.display().to_string();
    if super::read_own(&pointer, 4096).is_ok_and(|t| t == text) {
        return;
    }
    let dir = base.join("roots");
    if super::ensure_dir(&dir).is_ok() {
        let _ = super::write_atomic_fast(&pointer, text.as_bytes());
    }
}

/// Write a capture's index to `path`. When it equals the previous capture
/// (nothing changed: the common second capture), the previous file is
/// hard-linked instead: no formatting, no write, no fsync, since that file
/// is already durable and index files are only ever replaced, never
/// changed in place. Returns whether anything was written.
fn save_index(path: &Path, index: &Index, prev: Option<&Previous>) -> Result<bool> {
    if let Some((prev_path, _)) = prev.filter(|(_, p)| p == index) {
        if prev_path == path {
            return Ok(false);
        }
        let _ = std::fs::remove_file(path);
        if std::fs::hard_link(prev_path, path).is_ok() {
            return Ok(false);
        }
    }
    super::write_index(path, index)?;
    Ok(true)
}

/// Sizes per top-level directory of the roots, biggest first, for the
/// budget message.
fn biggest_dirs(roots: &[PathBuf], walks: &[Walk], max_file: u64) -> Vec<(String, u64, u64)> {
    let mut per: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (root, w) in roots.iter().zip(walks) {
        for e in w
            .entries
            .iter()
            .filter(|e| e.st.kind() == libc::S_IFREG && e.st.size <= max_file)
        {
            let Some(slash) = e.path.iter().position(|&b| b == b'/') else {
                continue;
            };
            let dir = root
                .join(OsStr::from_bytes(&e.path[..slash]))
                .display()
                .to_string();
            let t = per.entry(dir).or_default();
            t.0 += 1;
            t.1 += e.st.size;
        }
    }
    let mut v: Vec<(String, u64, u64)> = per.into_iter().map(|(d, (n, b))| (d, n, b)).collect();
    v.sort_by_key(|(_, n, b)| std::cmp::Reverse((*b, *n)));
    v.truncate(3);
    v
}

/// Refuse a capture over the file-count or byte budget, naming the
/// biggest directories and how to leave them out.
fn check_budget(roots: &[PathBuf], walks: &[Walk], limits: &Limits) -> Result<()> {
    let (mut files, mut bytes) = (0u64, 0u64);
    for w in walks {
        for e in w
            .entries
            .iter()
            .filter(|e| e.st.kind() == libc::S_IFREG && e.st.size <= limits.max_file)
        {
            files += 1;
            bytes += e.st.size;
        }
    }
    if files <= limits.max_files && bytes <= limits.max_bytes {
        return Ok(());
    }
    let over = if files > limits.max_files {
        format!("{files} files (limit {})", limits.max_files)
    } else {
        format!(
            "{} (limit {})",
            super::human_bytes(bytes),
            super::human_bytes(limits.max_bytes)
        )
    };
    let big: Vec<String> = biggest_dirs(roots, walks, limits.max_file)
        .iter()
        .map(|(d, n, b)| format!("{d} ({n} files, {})", super::human_bytes(*b)))
        .collect();
    let example = biggest_dirs(roots, walks, limits.max_file)
        .first()
        .map(|(d, _, _)| {
            let name = Path::new(d)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("--rollback-exclude '{name}/'")
        })
        .unwrap_or_else(|| "--rollback-exclude GLOB".into());
    Err(Error::Msg(format!(
        "--rollback: the capture would hold {over}; biggest directories: {}; leave them out with {example} (or .gitignore them), or raise the [rollback] limits in nono.toml(5); nothing was started",
        if big.is_empty() { "none (the files are at the top)".into() } else { big.join(", ") }
    )))
}

/// Everything the baseline needs to know about a new session.
pub struct NewSession<'a> {
    /// nono session id (also the rollback id).
    pub id: &'a str,
    /// Session name.
    pub name: &'a str,
    /// Program.
    pub command: &'a [String],
    /// Roots (canonical).
    pub roots: &'a [PathBuf],
    /// `--rollback-exclude` patterns.
    pub excludes: &'a [String],
    /// Limits.
    pub limits: Limits,
}

/// Capture the baseline of a new session: gather and freeze the ignore
/// rules, walk every root, check the budget, store, and write the meta.
pub fn baseline(s: &NewSession, progress: &mut Progress) -> Result<Meta> {
    let base = super::base_dir()?;
    super::ensure_dir(&base)?;
    let roots: Vec<String> = s.roots.iter().map(|r| r.display().to_string()).collect();
    let who = format!(
        "'nono run --rollback' is capturing it (pid {}, since {})",
        std::process::id(),
        crate::out::fmt_time(crate::registry::now())
    );
    let _roots_lock = super::lock_roots(&roots, &who, false)
        .map_err(|e| Error::Msg(format!("--rollback: {e}; nothing was started")))?;
    let _lock = super::lock_store(false)?;
    let store = Store::open(&base)?;
    let started = Instant::now();
    let mut meta = Meta {
        version: super::FORMAT_VERSION,
        id: s.id.into(),
        name: s.name.into(),
        command: s.command.to_vec(),
        roots,
        excludes: s.excludes.to_vec(),
        max_file_bytes: s.limits.max_file,
        ..Meta::default()
    };
    let mut walks = Vec::new();
    for (i, root) in s.roots.iter().enumerate() {
        let (prefix, mut files) = outer_ignores(root, i);
        let mut rules = Rules::new(&prefix);
        for f in &files {
            rules.add_file(&f.base, &f.lines, f.exclude_file);
        }
        rules.add_excludes(s.excludes);
        let w = walk(root, &mut rules, Some((&mut files, i, &prefix)))?;
        meta.root_prefixes.push(prefix);
        meta.ignore.extend(files);
        walks.push(w);
    }
    check_budget(s.roots, &walks, &s.limits)?;
    let dir = super::session_dir(s.id)?;
    super::ensure_dir(&dir)?;
    let res = (|| {
        let mut total = CaptureInfo::default();
        for (i, (root, w)) in s.roots.iter().zip(walks.iter_mut()).enumerate() {
            let prev = previous_capture(&base, &meta.roots[i]);
            let (index, info) = build(
                root,
                w,
                prev.as_ref().map(|(_, p)| p),
                Some(&store),
                s.limits.max_file,
                progress,
            )?;
            let path = dir.join(index_name("baseline", i));
            save_index(&path, &index, prev.as_ref())?;
            set_previous(&base, &meta.roots[i], &path);
            total.add(&info);
        }
        total.time = crate::registry::now();
        total.ms = started.elapsed().as_millis() as u64;
        meta.baseline = total;
        super::write_meta(&dir, &meta)
    })();
    progress.done();
    if let Err(e) = res {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok(meta)
}

/// Capture the final state of session `id` (the program has ended).
pub fn final_capture(id: &str) -> Result<CaptureInfo> {
    let base = super::base_dir()?;
    let dir = super::session_dir(id)?;
    let mut meta = super::read_meta(&dir)?;
    let _lock = super::lock_store(false)?;
    let store = Store::open(&base)?;
    let started = Instant::now();
    let mut total = CaptureInfo::default();
    let mut progress = Progress::new(false, "");
    let mut wrote = false;
    for (i, root) in meta.roots.iter().enumerate() {
        let mut rules = rules_for(&meta, i);
        let root_path = PathBuf::from(root);
        let mut w = walk(&root_path, &mut rules, None)?;
        let prev = previous_capture(&base, root).or_else(|| {
            let p = dir.join(index_name("baseline", i));
            super::read_index(&p).ok().map(|ix| (p, ix))
        });
        let (index, info) = build(
            &root_path,
            &mut w,
            prev.as_ref().map(|(_, p)| p),
            Some(&store),
            meta.max_file_bytes,
            &mut progress,
        )?;
        let path = dir.join(index_name("final", i));
        wrote |= save_index(&path, &index, prev.as_ref())?;
        set_previous(&base, root, &path);
        total.add(&info);
    }
    total.time = crate::registry::now();
    total.ms = started.elapsed().as_millis() as u64;
    meta.final_capture = Some(total.clone());
    // The meta is what marks the final capture done, so it is written
    // last. With nothing changed it needs no fsync: were it lost, the
    // session would only look as if its final state were unknown, which
    // makes a restore more careful, never less.
    let text = meta.serialize_json();
    if wrote {
        super::write_atomic(&dir.join("meta.json"), text.as_bytes())?;
    } else {
        super::write_atomic_fast(&dir.join("meta.json"), text.as_bytes())?;
    }
    Ok(total)
}

/// The tree of root `i` now, hashed but not stored; files the `prev`
/// index vouches for are not read.
pub fn current(meta: &Meta, i: usize, prev: Option<&Index>) -> Result<(Index, CaptureInfo)> {
    let mut rules = rules_for(meta, i);
    let root = PathBuf::from(&meta.roots[i]);
    let mut w = walk(&root, &mut rules, None)?;
    let mut progress = Progress::new(false, "");
    build(
        &root,
        &mut w,
        prev,
        None,
        meta.max_file_bytes,
        &mut progress,
    )
}

/// Store the content of the current file at `rel` under `root` (for the
/// capture a restore makes before it writes); returns its entry.
pub fn store_one(store: &Store, root: &Path, rel: &[u8]) -> Result<Option<Entry>> {
    let shown = || root.join(OsStr::from_bytes(rel)).display().to_string();
    let root_fd = open_root(root)?;
    let (par, name) = match rel.iter().rposition(|&b| b == b'/') {
        Some(k) => (&rel[..k], &rel[k + 1..]),
        None => (&rel[..0], rel),
    };
    let Ok(dir) = open_beneath(root_fd.as_raw_fd(), par) else {
        return Ok(None);
    };
    let name = OsString::from_vec(name.to_vec());
    let Ok(fd) = sys::openat(
        Some(dir.as_raw_fd()),
        &name,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    ) else {
        return Ok(None);
    };
    let st = sys::fstat(fd.as_raw_fd())
        .map_err(|e| Error::io(format!("cannot inspect {}", shown()), e))?;
    if st.kind() != libc::S_IFREG {
        return Ok(None);
    }
    let mut copies = CopyStats::default();
    let (hash, _) = store
        .put(&File::from(fd), st.size, &mut copies)
        .map_err(|e| Error::io(format!("cannot store {}", shown()), e))?;
    Ok(Some(Entry {
        kind: Kind::File {
            hash,
            size: st.size,
        },
        mode: st.mode & 0o7777,
        stat: key(&st),
    }))
}
