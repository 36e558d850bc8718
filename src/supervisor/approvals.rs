//! Approvals (`--ask`): the supervisor's side of the seccomp user
//! notifications for the program's opens. A notification is answered at
//! once when its path is inside the grant (the kernel continues and
//! Landlock decides), inside nono's own directories (refused) or under a
//! standing answer; otherwise it becomes a waiting request, answered by the
//! attached client's overlay, `nono approve`/`nono deny`, the timeout or
//! `nono stop`. Only the asking thread waits: nothing here blocks the loop.
//! A grant opens the resolved path here (following no symlink) and injects
//! that fd as the call's result, so the program gets the inode the operator
//! saw, whatever it does to its memory or its symlinks meanwhile.
//! With namespaces, paths are resolved and opened in the program's own
//! view (beneath `/proc/<tid>/root`), never the supervisor's.

use super::Supervisor;
use crate::defaults::{
    APPROVAL_EVENTS_PER_MINUTE, APPROVAL_RECHECK_MS, APPROVAL_SAVE_MS, MAX_APPROVAL_WAITERS,
    MAX_FRAME_PAYLOAD, MAX_GRANT_DIRS, MAX_PENDING_APPROVALS, MAX_STANDING_ANSWERS,
    NOTIFY_WAKEUP_MAX,
};
use crate::protocol::{Frame, PendingRequest, ReplyStatus, Request};
use crate::sandbox::{access_name, notify};
use crate::sys::{self, Notif, PollFd, POLLERR_ANY, POLLIN};
use crate::term::{char_width, Terminal};
use crate::{procfs, registry};
use nanoserde::SerJson;
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// `nono run --ask` as the supervisor receives it.
#[derive(Clone, Copy, Debug, Default)]
pub struct AskSpec {
    /// Refuse a request nobody answered within this time (None: wait).
    pub timeout: Option<Duration>,
}

/// The approval state of a session.
pub struct Approvals {
    /// The seccomp listener; None once every process of the program is gone.
    listener: Option<OwnedFd>,
    /// What Landlock grants: canonical path and READ/WRITE.
    grants: Vec<(PathBuf, u8)>,
    /// nono's state and configuration directories (with namespaces also
    /// `/run/user/<uid>`): refused without asking.
    never: Vec<PathBuf>,
    /// Set when the program has its own mount namespace.
    view: Option<InView>,
    /// The kernel wakes us synchronously (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP).
    sync_wakeup: bool,
    /// The directory grants, opened, shallowest first: the fast check that
    /// an open stays inside one (see `inside_grant`).
    dirs: Vec<GrantDir>,
    /// Waiting requests, oldest first (the overlay shows the first).
    asks: Vec<Ask>,
    /// Id of the next request.
    next_id: u32,
    /// `a`/`d` answers (and `--always`): this path, decided for the session.
    standing: Vec<Standing>,
    /// `--ask-timeout`.
    timeout: Option<Duration>,
    /// When dead requests are next looked for, while any wait.
    recheck_at: Option<Instant>,
    /// When the record is next rewritten with the waiting count.
    save_at: Option<Instant>,
    /// Events left in this minute, and when the minute began.
    budget: (u32, Instant),
    /// Events not written because the budget ran out (reported once it refills).
    unlogged: u64,
    /// Esc on the overlay: requests up to this id stay off it (they still
    /// wait, for `nono approve`) until the next attach.
    hidden_upto: u32,
}

/// A request waiting for a person.
struct Ask {
    /// Its id.
    id: u32,
    /// The asking process.
    pid: i32,
    /// Its command name, escaped for display.
    command: String,
    /// The resolved path a grant opens.
    path: PathBuf,
    /// READ and/or WRITE.
    access: u8,
    /// The open creates the file.
    create: bool,
    /// Threads of `pid` waiting on this same path and access.
    waiters: Vec<Waiter>,
    /// When it was asked.
    since: Instant,
    /// Unix time it was asked.
    asked_at: u64,
}

/// One stopped thread.
#[derive(Clone, Copy)]
struct Waiter {
    /// Notification id.
    notif: u64,
    /// The thread.
    tid: i32,
    /// Its open flags.
    flags: i32,
    /// Its creation mode.
    mode: u32,
}

/// A decision for the rest of the session.
struct Standing {
    /// The resolved path.
    path: PathBuf,
    /// Allowed access (for a grant) or any access (for a refusal).
    access: u8,
    /// Grant or refuse.
    allow: bool,
}

/// What a notification needs, worked out without blocking.
enum Verdict {
    /// Let the kernel carry it out (Landlock decides).
    Continue,
    /// The thread stopped waiting meanwhile: nothing to answer.
    Gone,
    /// Refuse at once (EACCES) and log why.
    Refuse(Target, &'static str),
    /// A standing answer covers it.
    Standing(Target, bool),
    /// Ask a person.
    Ask(Target),
}

/// A notification worked out: who asks for what.
struct Target {
    /// The asking process.
    pid: i32,
    /// The waiting thread.
    waiter: Waiter,
    /// Resolved path.
    path: PathBuf,
    /// READ and/or WRITE.
    access: u8,
    /// The open would create the file.
    create: bool,
}

/// What resolving in the program's private view needs.
struct InView {
    /// Device and inode of each `never` directory as the supervisor sees
    /// it: refused by identity too, wherever the view puts it.
    never_ids: Vec<(u64, u64)>,
    /// The program's root (`/proc/<tid>/root`, a magic link into its mount
    /// namespace: paths resolved beneath it are the ones the program sees),
    /// opened at the first notification and kept. It cannot change: the
    /// program has no capabilities (chroot, pivot_root, setns and unshare
    /// of a mount namespace need them), may not make a user namespace to
    /// gain some (`max_user_namespaces` is 0 in its own), and Landlock
    /// refuses it every mount; its descendants inherit all of that.
    root: Option<OwnedFd>,
}

/// A directory grant, open, for `inside_grant`.
struct GrantDir {
    /// Its path in the program's view (canonical: no symlink, no `..`).
    path: PathBuf,
    /// READ and/or WRITE.
    access: u8,
    /// The directory (O_PATH), opened in the program's view once: an fd
    /// follows the inode, as Landlock's rule does.
    fd: OwnedFd,
}

/// Open the directory grants beneath `root` (None: our own `/`), the
/// shallowest first; grants of single files, and those that cannot be
/// opened, are left to the full resolution.
fn open_grant_dirs(root: Option<RawFd>, grants: &[(PathBuf, u8)]) -> Vec<GrantDir> {
    let dir = libc::O_PATH | libc::O_DIRECTORY;
    let mut dirs: Vec<GrantDir> = grants
        .iter()
        .filter_map(|(path, access)| {
            let fd = match root {
                Some(r) => sys::open_in_root(r, path, dir, 0, false),
                None => sys::open_no_symlinks(path, dir, 0),
            };
            let fd = fd.ok()?;
            Some(GrantDir {
                path: path.clone(),
                access: *access,
                fd,
            })
        })
        .collect();
    dirs.sort_by_key(|g| g.path.as_os_str().len());
    dirs.truncate(MAX_GRANT_DIRS);
    dirs
}

/// The part of the absolute `path` after the directory `dir` (both as
/// bytes; `dir` canonical), without leading slashes; None when `path` does
/// not start with `dir` as a whole component. Lexical only: what the rest
/// resolves to is for the kernel to say.
fn after_dir<'a>(path: &'a [u8], dir: &[u8]) -> Option<&'a [u8]> {
    let rest = path.strip_prefix(dir)?;
    if dir != b"/" && !rest.is_empty() && rest[0] != b'/' {
        return None;
    }
    let skip = rest.iter().take_while(|&&b| b == b'/').count();
    Some(&rest[skip..])
}

/// Read the NUL-terminated path at `addr` in thread `tid` into `buf`: its
/// length, None when unreadable or longer than `buf`. The first read stops
/// at the end of the page, so the usual short path costs one page; only a
/// path that crosses into the next needs a second read.
fn read_path(tid: i32, addr: u64, buf: &mut [u8]) -> Option<usize> {
    let first = ((4096 - addr % 4096) as usize).min(buf.len());
    let n = sys::read_process_memory(tid, addr, &mut buf[..first]).ok()?;
    if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
        return Some(end);
    }
    if n < first {
        return None;
    }
    let more = sys::read_process_memory(tid, addr + first as u64, &mut buf[first..]).ok()?;
    let end = buf[first..first + more].iter().position(|&b| b == 0)?;
    Some(first + end)
}

/// The path of an fd we hold, as its own mount namespace names it (the
/// kernel stops at that namespace's root).
fn fd_path(fd: &OwnedFd) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .ok()
        .filter(|p| p.is_absolute())
}

/// `notify::resolve` in the program's view: symlinks are followed beneath
/// `root` (the program's `/`), never out of it, magic links not at all.
fn resolve_in_view(root: RawFd, full: &Path, nofollow: bool) -> Option<(PathBuf, bool)> {
    let mut full = full.to_path_buf();
    for _ in 0..notify::MAX_SYMLINKS {
        if !nofollow {
            if let Ok(fd) = sys::open_in_root(root, &full, libc::O_PATH, 0, true) {
                return Some((fd_path(&fd)?, true));
            }
        }
        let name = match full.components().next_back()? {
            Component::Normal(n) => n.to_os_string(),
            _ => return None,
        };
        let dir = libc::O_PATH | libc::O_DIRECTORY;
        let parent = sys::open_in_root(root, full.parent()?, dir, 0, true).ok()?;
        let parent_path = fd_path(&parent)?;
        match sys::lstatat(parent.as_raw_fd(), &name) {
            // A dangling symlink: the open follows it (and O_CREAT makes its target).
            Ok(st) if !nofollow && st.mode & libc::S_IFMT == libc::S_IFLNK => {
                let target = sys::readlinkat(parent.as_raw_fd(), &name).ok()?;
                full = parent_path.join(target);
            }
            found => return Some((parent_path.join(name), found.is_ok())),
        }
    }
    None
}

/// Whether the resolved `path` beneath `root`, or a directory above it, is
/// one of `ids` (walked up by `..` to the program's root; anything that
/// cannot be walked counts as one).
fn under_never(root: RawFd, path: &Path, ids: &[(u64, u64)]) -> bool {
    let id = |s: sys::Stat| (s.dev, s.ino);
    let Ok(top) = sys::fstat(root).map(id) else {
        return true;
    };
    let dir = libc::O_PATH | libc::O_DIRECTORY;
    let Some(parent) = path.parent() else {
        return ids.contains(&top);
    };
    let Ok(mut cur) = sys::open_in_root(root, parent, dir, 0, false) else {
        return true;
    };
    if let Some(name) = path.file_name() {
        if sys::lstatat(cur.as_raw_fd(), name).is_ok_and(|s| ids.contains(&id(s))) {
            return true;
        }
    }
    for _ in 0..libc::PATH_MAX {
        let Ok(here) = sys::fstat(cur.as_raw_fd()).map(id) else {
            return true;
        };
        if ids.contains(&here) {
            return true;
        }
        if here == top {
            return false;
        }
        match sys::openat(Some(cur.as_raw_fd()), OsStr::new(".."), dir, 0) {
            Ok(up) if sys::fstat(up.as_raw_fd()).map(id).ok() != Some(here) => cur = up,
            // The namespace's own top, above the program's root: not ours.
            Ok(_) => return false,
            Err(_) => return true,
        }
    }
    true
}

/// A thread's process and thread ids in its own (innermost) PID namespace.
fn inner_ids(tid: i32) -> Option<(i32, i32)> {
    let last = |f: &str| -> Option<i32> {
        procfs::status_field(tid, f)?
            .split_whitespace()
            .last()?
            .parse()
            .ok()
    };
    Some((last("NStgid")?, last("NSpid")?))
}

/// Whether `--ask` can work here; the reason when not.
pub fn check_support() -> std::result::Result<(), String> {
    let hint = "; nothing was started (start it without --ask)";
    if !notify::SUPPORTED {
        return Err(format!(
            "--ask is not available: nono has no approval filter for this architecture{hint}"
        ));
    }
    let release = sys::kernel_release();
    if !notify::kernel_supported(&release) || !sys::notif_supported() {
        return Err(format!(
            "--ask needs Linux {}.{} or later (seccomp user notification with ADDFD and SEND); this kernel is {release}{hint}",
            notify::MIN_KERNEL.0,
            notify::MIN_KERNEL.1
        ));
    }
    Ok(())
}

impl Approvals {
    /// Approvals for a program whose Landlock grants are `grants`, over
    /// the seccomp `listener` it sent us. `masks`: the directories the
    /// program's private view hides (None: it shares ours).
    pub fn new(
        listener: OwnedFd,
        grants: Vec<(PathBuf, u8)>,
        spec: AskSpec,
        masks: Option<Vec<PathBuf>>,
    ) -> Approvals {
        // Wake us on the asking thread's CPU and hand it back the same way
        // (Linux 6.6): a round trip per open is most of what --ask costs,
        // and on a VM a wakeup on another, idle CPU can cost several times
        // as much (7x in make bench's floor rows on 2 vCPUs). Older
        // kernels lack the flag and work as before.
        let sync_wakeup = sys::notif_sync_wakeup(listener.as_raw_fd()).is_ok();
        let canon = |p: PathBuf| p.canonicalize().unwrap_or(p);
        let mut never: Vec<PathBuf> = registry::state_dir()
            .ok()
            .into_iter()
            .chain(crate::config::config_dir())
            .map(canon)
            .collect();
        let view = masks.map(|masks| {
            never.extend(masks);
            never.sort();
            never.dedup();
            let never_ids = never
                .iter()
                .filter_map(|d| std::fs::metadata(d).ok())
                .map(|m| {
                    (
                        std::os::unix::fs::MetadataExt::dev(&m),
                        std::os::unix::fs::MetadataExt::ino(&m),
                    )
                })
                .collect();
            InView {
                never_ids,
                root: None,
            }
        });
        // Without a view of its own the program sees our `/`; with one,
        // the grants are opened beneath its root once that is known.
        let dirs = match view {
            Some(_) => Vec::new(),
            None => open_grant_dirs(None, &grants),
        };
        Approvals {
            listener: Some(listener),
            grants,
            never,
            view,
            sync_wakeup,
            dirs,
            asks: Vec::new(),
            next_id: 1,
            standing: Vec::new(),
            timeout: spec.timeout,
            recheck_at: None,
            save_at: None,
            budget: (APPROVAL_EVENTS_PER_MINUTE, Instant::now()),
            unlogged: 0,
            hidden_upto: 0,
        }
    }

    /// How the kernel wakes us for a notification, as the record says it:
    /// `sync` (Linux 6.6+) or `plain`.
    pub fn wakeup(&self) -> &'static str {
        if self.sync_wakeup {
            "sync"
        } else {
            "plain"
        }
    }

    /// The listener, while the program lives.
    pub fn fd(&self) -> Option<RawFd> {
        self.listener.as_ref().map(|l| l.as_raw_fd())
    }

    /// The request the overlay shows: the oldest one not put off with Esc.
    fn on_overlay(&self) -> Option<&Ask> {
        self.asks.iter().find(|k| k.id > self.hidden_upto)
    }

    /// The nearest time something here must be done.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timeouts = self
            .timeout
            .and_then(|t| self.asks.first().map(|a| a.since + t));
        [timeouts, self.recheck_at, self.save_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// The program's root with namespaces (Ok(None): it shares ours),
    /// opened at the first notification, and the grants beneath it. Err:
    /// it cannot be opened, or the thread that asked is gone (so its tid
    /// may name another process now).
    fn program_root(
        &mut self,
        listener: RawFd,
        n: &Notif,
    ) -> std::result::Result<Option<RawFd>, ()> {
        let Some(v) = self.view.as_mut() else {
            return Ok(None);
        };
        if v.root.is_none() {
            let root = sys::open_path(Path::new(&format!("/proc/{}/root", n.tid))).map_err(drop)?;
            // Opened while the thread still waits: the root is the program's.
            if !sys::notif_id_valid(listener, n.id) {
                return Err(());
            }
            self.dirs = open_grant_dirs(Some(root.as_raw_fd()), &self.grants);
            v.root = Some(root);
        }
        Ok(v.root.as_ref().map(|r| r.as_raw_fd()))
    }

    /// The fast answer for the usual open, inside a directory grant: Some
    /// (continue) when `full` (absolute, in the program's view) resolves
    /// beneath a granted directory whose rights cover the open; or is
    /// missing there and the call does not create it (the kernel fails it
    /// with ENOENT); or is missing, nothing by its name exists (not even a
    /// dangling symlink the open would follow out), and the directory's
    /// rights cover creating it. One openat2 of an O_PATH fd (two for a
    /// new file), no path built. None: not sure, resolve it in full.
    fn inside_grant(&self, full: &[u8], flags: i32, nofollow: bool) -> Option<()> {
        // The program's /proc/self is not ours: resolved in full.
        if after_dir(full, b"/proc").is_some() {
            return None;
        }
        // The rights it needs if the file exists (else the ENOENT case below).
        let access = notify::access_of(flags, true);
        let (dir, rest) = self
            .dirs
            .iter()
            .filter(|d| d.access & access == access)
            .find_map(|d| Some((d, after_dir(full, d.path.as_os_str().as_bytes())?)))?;
        let rest = if rest.is_empty() {
            b".".as_slice()
        } else {
            rest
        };
        let mut c = [0u8; libc::PATH_MAX as usize + 1];
        c.get_mut(..rest.len())?.copy_from_slice(rest);
        let c = std::ffi::CStr::from_bytes_until_nul(&c).ok()?;
        let missing = |e: &std::io::Error| e.raw_os_error() == Some(libc::ENOENT);
        match sys::resolves_beneath(dir.fd.as_raw_fd(), c, nofollow) {
            Ok(()) => Some(()),
            Err(e) if !missing(&e) => None,
            Err(_) if !sys::may_create(flags) => Some(()),
            Err(_) => {
                let create = notify::access_of(flags, false);
                if dir.access & create != create {
                    return None;
                }
                // Already not following: nothing by that name. Else look again without following.
                let absent = nofollow
                    || sys::resolves_beneath(dir.fd.as_raw_fd(), c, true)
                        .is_err_and(|e| missing(&e));
                absent.then_some(())
            }
        }
    }

    /// Work out what notification `n` needs. Before anything but letting
    /// the call continue, what was read of the program (its memory, its
    /// cwd, its pid) is checked with ID_VALID, so it belonged to the thread
    /// that still waits.
    fn classify(&mut self, listener: RawFd, n: &Notif) -> Verdict {
        if n.arch != notify::AUDIT_ARCH {
            return Verdict::Continue;
        }
        let Some(mut call) = notify::decode(n.nr, &n.args) else {
            return Verdict::Continue;
        };
        if let Some((addr, size)) = call.how {
            // openat2: flags, mode and resolve are in its `struct open_how`.
            let mut how = [0u8; 24];
            if size < 24 || sys::read_process_memory(n.tid, addr, &mut how).ok() != Some(24) {
                return Verdict::Continue;
            }
            let word =
                |i: usize| u64::from_ne_bytes(how[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            // RESOLVE_* constraints cannot be honoured from outside: not asked about.
            if word(2) != 0 {
                return Verdict::Continue;
            }
            call.flags = word(0) as i32;
            call.mode = word(1) as u32 & 0o7777;
        }
        // O_PATH opens are not checked by Landlock, so there is nothing to ask.
        if call.flags & libc::O_PATH != 0 {
            return Verdict::Continue;
        }
        let mut buf = [0u8; libc::PATH_MAX as usize];
        let Some(end) = read_path(n.tid, call.path, &mut buf) else {
            return Verdict::Continue;
        };
        if end == 0 {
            return Verdict::Continue;
        }
        let raw = Path::new(OsStr::from_bytes(&buf[..end]));
        let full = if raw.is_absolute() {
            std::borrow::Cow::Borrowed(raw)
        } else {
            let link = if call.dirfd == libc::AT_FDCWD {
                format!("/proc/{}/cwd", n.tid)
            } else {
                format!("/proc/{}/fd/{}", n.tid, call.dirfd)
            };
            match std::fs::read_link(&link) {
                Ok(base) if base.is_absolute() => std::borrow::Cow::Owned(base.join(raw)),
                _ => return Verdict::Continue,
            }
        };
        let excl = libc::O_CREAT | libc::O_EXCL;
        let nofollow = call.flags & libc::O_NOFOLLOW != 0 || call.flags & excl == excl;
        let root = match self.program_root(listener, n) {
            Ok(r) => r,
            Err(()) => return Verdict::Continue,
        };
        // Continuing needs no check that what we read was the waiting
        // thread's: Landlock decides either way. Anything else does.
        if self
            .inside_grant(full.as_os_str().as_bytes(), call.flags, nofollow)
            .is_some()
        {
            return Verdict::Continue;
        }
        // Which process asks is read only where it matters (a /proc path
        // names it; a request shows it): it costs a file read per open.
        let pid = if full.starts_with("/proc") {
            Some(procfs::tgid(n.tid).ok_or(()))
        } else {
            None
        };
        let pid = match pid {
            Some(Ok(p)) => Some(p),
            Some(Err(())) => return Verdict::Gone,
            None => None,
        };
        // With namespaces the program's /proc numbers its own PID namespace.
        let full = match (pid, &self.view) {
            (Some(_), Some(_)) => match inner_ids(n.tid) {
                Some((p, t)) => notify::program_view(&full, p, t),
                None => return Verdict::Gone,
            },
            (Some(pid), None) => notify::program_view(&full, pid, n.tid),
            (None, _) => full.into_owned(),
        };
        let resolved = match root {
            Some(r) => resolve_in_view(r, &full, nofollow),
            None => notify::resolve(&full, nofollow),
        };
        let Some((path, exists)) = resolved else {
            return Verdict::Continue;
        };
        // A missing file the call will not create: the kernel says ENOENT
        // before Landlock is asked, so there is nothing to approve.
        let tmpfile = call.flags & libc::O_TMPFILE == libc::O_TMPFILE;
        if !exists && call.flags & libc::O_CREAT == 0 && !tmpfile {
            return Verdict::Continue;
        }
        let access = notify::access_of(call.flags, exists);
        if notify::granted(&self.grants, &path) & access == access {
            return Verdict::Continue;
        }
        let pid = match pid.or_else(|| procfs::tgid(n.tid)) {
            Some(p) if sys::notif_id_valid(listener, n.id) => p,
            _ => return Verdict::Gone,
        };
        let target = Target {
            pid,
            waiter: Waiter {
                notif: n.id,
                tid: n.tid,
                flags: call.flags,
                mode: call.mode,
            },
            path,
            access,
            create: !exists && call.flags & libc::O_CREAT != 0,
        };
        let by_identity = match (root, &self.view) {
            (Some(r), Some(v)) => under_never(r, &target.path, &v.never_ids),
            _ => false,
        };
        if by_identity || self.never.iter().any(|d| target.path.starts_with(d)) {
            return Verdict::Refuse(target, "nono's own directories are never granted");
        }
        let standing = self.standing.iter().find(|s| {
            s.path == target.path && (!s.allow || s.access & target.access == target.access)
        });
        match standing {
            Some(s) => Verdict::Standing(target, s.allow),
            None => Verdict::Ask(target),
        }
    }

    /// Whether an event may be written now (the log's growth is bounded
    /// under a flood; what is skipped is counted and reported).
    fn spend(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.budget.1) >= Duration::from_secs(60) {
            self.budget = (APPROVAL_EVENTS_PER_MINUTE, now);
        }
        if self.budget.0 == 0 {
            self.unlogged += 1;
            return false;
        }
        self.budget.0 -= 1;
        true
    }
}

/// Show `text` on a terminal or in a log line: a hostile name or path
/// could carry escape sequences.
fn printable(text: &str) -> String {
    crate::escape::text(text).into_owned()
}

/// A path for display.
fn shown(path: &Path) -> String {
    printable(&path.to_string_lossy())
}

/// "read /x", "write /x (create)".
fn what(access: u8, create: bool, path: &Path) -> String {
    let verb = if create {
        "create"
    } else {
        access_name(access)
    };
    format!("{verb} {}", shown(path))
}

/// Open the approved `path` as the waiting thread asked (its flags, its
/// mode under its umask), following no symlink, and make that fd the
/// result of its call. Err: the errno its call returns instead.
fn grant_waiter(
    listener: RawFd,
    w: &Waiter,
    path: &Path,
    view: Option<&InView>,
) -> std::result::Result<(), i32> {
    // The path is the program's: open it beneath its root (known since
    // the thread's notification was classified).
    let root = match view {
        Some(v) => Some(v.root.as_ref().ok_or(libc::ENOENT)?.as_raw_fd()),
        None => None,
    };
    let umask = procfs::umask(w.tid).unwrap_or(0o022);
    // The umask read was the waiting thread's (a dead thread's id could be reused).
    if !sys::notif_id_valid(listener, w.notif) {
        return Err(libc::ENOENT);
    }
    // Never a controlling terminal for us; never block the loop (a FIFO
    // with no writer): non-blocking for the open, put back after.
    let flags = (w.flags & !libc::O_CLOEXEC) | libc::O_NOCTTY | libc::O_NONBLOCK;
    // The umask is per process and we are single-threaded.
    let old = sys::umask(umask);
    let opened = match &root {
        Some(r) => sys::open_in_root(*r, path, flags, w.mode, false),
        None => sys::open_no_symlinks(path, flags, w.mode),
    };
    sys::umask(old);
    let fd = opened.map_err(|e| e.raw_os_error().unwrap_or(libc::EACCES))?;
    if let Some(v) = view {
        let st = sys::fstat(fd.as_raw_fd()).map_err(|_| libc::EACCES)?;
        if v.never_ids.contains(&(st.dev, st.ino)) {
            return Err(libc::EACCES);
        }
    }
    if w.flags & libc::O_NONBLOCK == 0 {
        let _ = sys::set_nonblocking(fd.as_raw_fd(), false);
    }
    let cloexec = w.flags & libc::O_CLOEXEC != 0;
    sys::notif_send_fd(listener, w.notif, fd.as_raw_fd(), cloexec)
        .map(drop)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EACCES))
}

/// Answer every waiter of a request; how many were answered.
fn answer_all(
    listener: RawFd,
    waiters: &[Waiter],
    path: &Path,
    allow: bool,
    view: Option<&InView>,
) -> usize {
    let mut answered = 0;
    for w in waiters {
        let ok = if allow {
            match grant_waiter(listener, w, path, view) {
                Ok(()) => true,
                Err(libc::ENOENT) if !sys::notif_id_valid(listener, w.notif) => false,
                Err(e) => sys::notif_answer(listener, w.notif, Err(e)).is_ok(),
            }
        } else {
            sys::notif_answer(listener, w.notif, Err(libc::EACCES)).is_ok()
        };
        answered += ok as usize;
    }
    answered
}

/// The overlay for the first waiting request: a reverse-video line over
/// the bottom row, the cursor and its attributes put back after (DECSC/
/// DECRC; the full redraw when the overlay goes restores everything).
fn overlay_bytes(a: &Approvals, term: &Terminal) -> Vec<u8> {
    let Some(head) = a.on_overlay() else {
        return Vec::new();
    };
    let (rows, cols) = term.size();
    // One short of the width: no pending wrap, so nothing can scroll.
    let width = (cols as usize).saturating_sub(1).max(1);
    let more = match a.asks.len() {
        1 => String::new(),
        n => format!(" [{n} waiting]"),
    };
    let verb = if head.create {
        "create"
    } else {
        access_name(head.access)
    };
    let cells = |t: &str| t.chars().map(|c| char_width(c) as usize).sum::<usize>();
    let mut path = shown(&head.path);
    // The path matters most: the wording gets terser before it is cut.
    let forms = [
        (
            format!("nono: pid {} ({}) asks to {verb} ", head.pid, head.command),
            format!("{more}  y once  a always  n deny  d always deny  Esc later"),
        ),
        (
            format!("nono: pid {} ({}) asks to {verb} ", head.pid, head.command),
            format!("{more}  y/a/n/d/Esc"),
        ),
        (
            format!("nono: {} {} {verb} ", head.pid, head.command),
            format!("{more}  y/a/n/d/Esc"),
        ),
    ];
    let fits = |(h, k): &(String, String)| cells(h) + cells(&path) + cells(k) <= width;
    let (head_text, keys) = forms.iter().find(|f| fits(f)).unwrap_or(&forms[2]);
    let room = width.saturating_sub(cells(head_text) + cells(keys));
    if cells(&path) > room {
        // Keep the end of the path, where the file's name is.
        let mut keep = Vec::new();
        let mut used = 1; // the ellipsis
        for c in path.chars().rev() {
            used += char_width(c) as usize;
            if used > room {
                break;
            }
            keep.push(c);
        }
        path = std::iter::once('…').chain(keep.into_iter().rev()).collect();
    }
    let mut line = String::new();
    let mut used = 0;
    for c in format!("{head_text}{path}{keys}").chars() {
        let w = char_width(c) as usize;
        if used + w > width {
            break;
        }
        used += w;
        line.push(c);
    }
    line.extend(std::iter::repeat_n(' ', width - used));
    // DECSC/DECRC keep the cursor, its attributes and origin mode; origin
    // mode goes off in between so the row is the screen's last, whatever
    // scroll region the program set.
    format!("\x1b7\x1b[?6l\x1b[{rows};1H\x1b[0;7m{line}\x1b[0m\x1b8").into_bytes()
}

impl Supervisor {
    /// Write an approval event, within the budget.
    fn approval_event(&mut self, event: &str, detail: &str) {
        let Some(a) = self.approvals.as_mut() else {
            return;
        };
        if a.unlogged > 0 && a.budget.0 > 1 && a.spend() {
            let n = std::mem::take(&mut a.unlogged);
            self.event(
                "error",
                &format!("{n} approval events were not logged (more than {APPROVAL_EVENTS_PER_MINUTE} a minute)"),
            );
        }
        let Some(a) = self.approvals.as_mut() else {
            return;
        };
        if a.spend() {
            self.event(event, detail);
        }
    }

    /// The waiting count changed: rewrite the record soon (coalesced, so a
    /// flood of requests does not become a flood of fsyncs).
    fn approvals_changed(&mut self) {
        let Some(a) = self.approvals.as_mut() else {
            return;
        };
        self.record.waiting = a.asks.len() as u32;
        if a.save_at.is_none() {
            a.save_at = Some(Instant::now() + Duration::from_millis(APPROVAL_SAVE_MS));
        }
        if !a.asks.is_empty() && a.recheck_at.is_none() {
            a.recheck_at = Some(Instant::now() + Duration::from_millis(APPROVAL_RECHECK_MS));
        }
        self.refresh_overlay();
    }

    /// The seccomp listener is readable (or every process of the program is gone).
    pub(super) fn notify_activity(&mut self, rev: i16) {
        let Some(fd) = self.approvals.as_ref().and_then(Approvals::fd) else {
            return;
        };
        if rev & POLLIN == 0 && rev & POLLERR_ANY != 0 {
            // No process uses the filter any more: nothing can ask again.
            if let Some(a) = self.approvals.as_mut() {
                a.listener = None;
                a.asks.clear();
            }
            self.approvals_changed();
            return;
        }
        // Bounded per wakeup so the pty and the sockets get their turn under a flood.
        for _ in 0..NOTIFY_WAKEUP_MAX {
            match sys::notif_recv(fd) {
                Ok(n) => self.on_notification(fd, n),
                Err(_) => break,
            }
            let mut p = [PollFd::new(fd, POLLIN)];
            if !matches!(sys::poll(&mut p, 0), Ok(1)) || p[0].revents() & POLLIN == 0 {
                break;
            }
        }
    }

    /// Answer, or file, one notification.
    fn on_notification(&mut self, listener: RawFd, n: Notif) {
        let Some(a) = self.approvals.as_mut() else {
            return;
        };
        match a.classify(listener, &n) {
            Verdict::Continue => {
                let _ = sys::notif_answer(listener, n.id, Ok(()));
            }
            Verdict::Gone => {}
            Verdict::Refuse(t, why) => {
                let _ = sys::notif_answer(listener, n.id, Err(libc::EACCES));
                let detail = format!(
                    "pid {}: {}: {why}; refused without asking",
                    t.pid,
                    what(t.access, t.create, &t.path)
                );
                self.approval_event("refused", &detail);
            }
            Verdict::Standing(t, allow) => {
                answer_all(listener, &[t.waiter], &t.path, allow, a.view.as_ref());
                let detail = format!(
                    "pid {}: {} by a standing answer",
                    t.pid,
                    what(t.access, t.create, &t.path)
                );
                self.approval_event(if allow { "approved" } else { "refused" }, &detail);
            }
            Verdict::Ask(t) => self.file_request(listener, t),
        }
    }

    /// A request for a person: joins the same process's identical request,
    /// or waits as a new one, or is refused when too many wait.
    fn file_request(&mut self, listener: RawFd, t: Target) {
        let Some(a) = self.approvals.as_mut() else {
            return;
        };
        if let Some(ask) = a
            .asks
            .iter_mut()
            .find(|k| k.pid == t.pid && k.path == t.path && k.access == t.access)
        {
            ask.waiters
                .retain(|w| sys::notif_id_valid(listener, w.notif));
            if ask.waiters.len() < MAX_APPROVAL_WAITERS {
                ask.waiters.push(t.waiter);
                return;
            }
            let _ = sys::notif_answer(listener, t.waiter.notif, Err(libc::EACCES));
            return;
        }
        if a.asks.len() >= MAX_PENDING_APPROVALS {
            let _ = sys::notif_answer(listener, t.waiter.notif, Err(libc::EACCES));
            let detail = format!(
                "pid {}: {}: {MAX_PENDING_APPROVALS} requests already wait; refused without asking",
                t.pid,
                what(t.access, t.create, &t.path)
            );
            self.approval_event("refused", &detail);
            return;
        }
        let id = a.next_id;
        a.next_id = a.next_id.wrapping_add(1).max(1);
        let command = procfs::status_field(t.pid, "Name").unwrap_or_default();
        let ask = Ask {
            id,
            pid: t.pid,
            command: printable(&command),
            path: t.path,
            access: t.access,
            create: t.create,
            waiters: vec![t.waiter],
            since: Instant::now(),
            asked_at: registry::now(),
        };
        let detail = format!(
            "request {id}: pid {} ({}) {}",
            ask.pid,
            ask.command,
            what(ask.access, ask.create, &ask.path)
        );
        a.asks.push(ask);
        self.approval_event("asked", &detail);
        self.approvals_changed();
    }

    /// Answer request `id` (0: the only one); `who` decided. Ok: what was
    /// done, for the decider; Err: why nothing was.
    fn decide(
        &mut self,
        id: u32,
        allow: bool,
        always: bool,
        who: &str,
    ) -> std::result::Result<String, String> {
        self.drop_dead_requests();
        let Some(a) = self.approvals.as_mut() else {
            return Err("this session was not started with --ask".into());
        };
        let Some(listener) = a.fd() else {
            return Err("no request is waiting (the program has ended)".into());
        };
        let i = match id {
            0 if a.asks.len() == 1 => 0,
            0 if a.asks.is_empty() => return Err("no request is waiting".into()),
            0 => {
                return Err(format!(
                    "{} requests are waiting; name one (see 'nono pending')",
                    a.asks.len()
                ))
            }
            _ => a
                .asks
                .iter()
                .position(|k| k.id == id)
                .ok_or_else(|| format!("no request {id} is waiting (see 'nono pending')"))?,
        };
        let ask = a.asks.remove(i);
        answer_all(listener, &ask.waiters, &ask.path, allow, a.view.as_ref());
        let mut also = Vec::new();
        let mut rule = "once";
        if always {
            if a.standing.len() < MAX_STANDING_ANSWERS {
                a.standing.push(Standing {
                    path: ask.path.clone(),
                    access: ask.access,
                    allow,
                });
                rule = "always, for this path";
                // Others waiting on the same path get the same answer.
                let mut k = 0;
                while k < a.asks.len() {
                    let o = &a.asks[k];
                    if o.path == ask.path && (!allow || ask.access & o.access == o.access) {
                        let o = a.asks.remove(k);
                        answer_all(listener, &o.waiters, &o.path, allow, a.view.as_ref());
                        also.push(o.id);
                    } else {
                        k += 1;
                    }
                }
            } else {
                rule = "once (too many standing answers to keep another)";
            }
        }
        let waited = ask.since.elapsed().as_secs_f64();
        let (event, verb) = if allow {
            ("approved", "approved")
        } else {
            ("refused", "denied")
        };
        let thing = what(ask.access, ask.create, &ask.path);
        let mut detail = format!(
            "request {}: pid {} ({}) {thing}: {verb} by {who} after {waited:.1}s, {rule}",
            ask.id, ask.pid, ask.command
        );
        for o in &also {
            detail.push_str(&format!("; request {o} too"));
        }
        self.approval_event(event, &detail);
        self.approvals_changed();
        Ok(format!(
            "{} request {} of pid {} ({}): {thing} ({rule})",
            if allow { "Approved" } else { "Denied" },
            ask.id,
            ask.pid,
            ask.command
        ))
    }

    /// Forget requests whose threads no longer wait (killed, or interrupted
    /// by a signal: a restarted call comes back as a new notification).
    fn drop_dead_requests(&mut self) {
        let Some(a) = self.approvals.as_mut() else {
            return;
        };
        let Some(listener) = a.fd() else {
            return;
        };
        let before = a.asks.len();
        let mut gone = Vec::new();
        a.asks.retain_mut(|k| {
            k.waiters.retain(|w| sys::notif_id_valid(listener, w.notif));
            if k.waiters.is_empty() {
                gone.push(format!(
                    "request {}: pid {} {}: the process stopped waiting",
                    k.id,
                    k.pid,
                    what(k.access, k.create, &k.path)
                ));
            }
            !k.waiters.is_empty()
        });
        let changed = a.asks.len() != before;
        for g in gone {
            self.approval_event("withdrawn", &g);
        }
        if changed {
            self.approvals_changed();
        }
    }

    /// Refuse everything waiting (the session is stopping).
    pub(super) fn refuse_all_requests(&mut self, who: &str) {
        loop {
            let Some(id) = self
                .approvals
                .as_ref()
                .and_then(|a| a.asks.first().map(|k| k.id))
            else {
                return;
            };
            if self.decide(id, false, false, who).is_err() {
                return;
            }
        }
    }

    /// Timeouts, dead requests, the coalesced record write.
    pub(super) fn approval_deadlines(&mut self, now: Instant) {
        let Some(a) = self.approvals.as_mut() else {
            return;
        };
        if a.recheck_at.is_some_and(|t| t <= now) {
            a.recheck_at = None;
            self.drop_dead_requests();
            let Some(a) = self.approvals.as_mut() else {
                return;
            };
            if !a.asks.is_empty() && a.recheck_at.is_none() {
                a.recheck_at = Some(now + Duration::from_millis(APPROVAL_RECHECK_MS));
            }
        }
        loop {
            let Some(a) = self.approvals.as_ref() else {
                return;
            };
            let expired = a.timeout.and_then(|t| {
                a.asks
                    .iter()
                    .find(|k| k.since + t <= now)
                    .map(|k| (k.id, t))
            });
            let Some((id, t)) = expired else {
                break;
            };
            let who = format!("the {}s timeout (--ask-timeout)", t.as_secs_f64());
            if self.decide(id, false, false, &who).is_err() {
                break;
            }
        }
        let Some(a) = self.approvals.as_mut() else {
            return;
        };
        if a.save_at.is_some_and(|t| t <= now) {
            a.save_at = None;
            self.save();
        }
    }

    /// `nono pending`, `nono approve`, `nono deny`: answer on the connection.
    pub(super) fn approval_hello(&mut self, stream: UnixStream, req: Request) {
        let reply = |status, msg: String| {
            let _ = sys::write(stream.as_raw_fd(), &Frame::Reply(status, msg).to_bytes());
        };
        match req {
            Request::Pending => {
                self.drop_dead_requests();
                let list = self.pending_list();
                reply(ReplyStatus::Ok, list);
            }
            Request::Decide { id, allow, always } => {
                let pid = sys::peer_cred(stream.as_raw_fd()).map_or(0, |c| c.pid);
                let cmd = if allow { "nono approve" } else { "nono deny" };
                match self.decide(id, allow, always, &format!("'{cmd}' (pid {pid})")) {
                    Ok(m) => reply(ReplyStatus::Ok, m),
                    Err(m) => reply(ReplyStatus::Refused, m),
                }
            }
            _ => {}
        }
    }

    /// The waiting requests as `Request::Pending`'s JSON, cut short (at a
    /// whole entry) before the frame limit.
    fn pending_list(&self) -> String {
        let mut list: Vec<PendingRequest> = Vec::new();
        let mut size = 2;
        for k in self.approvals.iter().flat_map(|a| a.asks.iter()) {
            let p = PendingRequest {
                id: k.id,
                pid: k.pid,
                command: k.command.clone(),
                path: k.path.to_string_lossy().into_owned(),
                access: access_name(k.access).into(),
                create: k.create,
                asked_at: k.asked_at,
                waiters: k.waiters.len() as u32,
            };
            size += p.serialize_json().len() + 1;
            if size > MAX_FRAME_PAYLOAD - 64 {
                break;
            }
            list.push(p);
        }
        list.serialize_json()
    }

    /// Show, update or take down the overlay on the attached client.
    pub(super) fn refresh_overlay(&mut self) {
        let Supervisor {
            client,
            term,
            approvals,
            ..
        } = self;
        let Some(c) = client.as_mut().filter(|c| !c.leaving) else {
            return;
        };
        let want = approvals.as_ref().is_some_and(|a| a.on_overlay().is_some());
        if want {
            c.overlay = true;
            if !c.needs_redraw {
                if let Some(a) = approvals.as_ref() {
                    c.push_output(&overlay_bytes(a, term));
                }
            }
        } else if c.overlay {
            c.overlay = false;
            if !c.needs_redraw {
                c.push_output(&term.render_screen());
            }
        } else {
            return;
        }
        let _ = c.flush();
    }

    /// The client's screen from the model, with the overlay on top (program
    /// output while the overlay shows goes this way, so the overlay is
    /// never scrolled into the picture).
    pub(super) fn repaint_under_overlay(&mut self) {
        let Supervisor {
            client,
            term,
            approvals,
            ..
        } = self;
        let (Some(c), Some(a)) = (client.as_mut(), approvals.as_ref()) else {
            return;
        };
        if !c.overlay || c.leaving || c.needs_redraw {
            return;
        }
        if c.pending() > crate::defaults::CLIENT_QUEUE_MAX_BYTES {
            c.drop_unsent();
            c.needs_redraw = true;
            return;
        }
        c.push_output(&term.render_screen());
        c.push_output(&overlay_bytes(a, term));
    }

    /// The overlay bytes, for a redraw of the client (empty when none shows).
    pub(super) fn overlay_now(&self) -> Vec<u8> {
        match &self.approvals {
            Some(a) => overlay_bytes(a, &self.term),
            None => Vec::new(),
        }
    }

    /// Keys typed while the overlay shows answer its request and go nowhere
    /// else: y once, a always, n deny, d always deny, Esc later (it goes
    /// off the screen and keeps waiting). One answer per input frame, so a
    /// paste cannot answer the requests behind it.
    pub(super) fn overlay_input(&mut self, bytes: &[u8]) {
        let Some(a) = self.approvals.as_mut() else {
            return;
        };
        let Some(id) = a.on_overlay().map(|k| k.id) else {
            return;
        };
        // A lone Esc (not the start of a key's sequence): answer later.
        if bytes == b"\x1b" {
            a.hidden_upto = a.asks.iter().map(|k| k.id).max().unwrap_or(0);
            self.refresh_overlay();
            return;
        }
        for b in bytes {
            let (allow, always) = match b.to_ascii_lowercase() {
                b'y' => (true, false),
                b'a' => (true, true),
                b'n' => (false, false),
                b'd' => (false, true),
                _ => continue,
            };
            let _ = self.decide(id, allow, always, "the attached client");
            return;
        }
    }

    /// A new client attached: every waiting request shows again.
    pub(super) fn overlay_on_attach(&mut self) {
        if let Some(a) = self.approvals.as_mut() {
            a.hidden_upto = 0;
        }
        self.refresh_overlay();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Approvals with one waiting request for `path` (the listener is a
    /// pipe: nothing here talks to the kernel).
    fn with_request(path: &str) -> Approvals {
        let (r, _w) = sys::pipe().unwrap();
        let mut a = Approvals::new(r, Vec::new(), AskSpec::default(), None);
        a.asks.push(Ask {
            id: 1,
            pid: 4242,
            command: "cat".into(),
            path: PathBuf::from(path),
            access: crate::sandbox::READ,
            create: false,
            waiters: Vec::new(),
            since: Instant::now(),
            asked_at: 0,
        });
        a
    }

    /// A fresh directory to act as a program's root.
    fn scratch_root(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nono-view-unit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("a/nono")).unwrap();
        std::fs::write(d.join("a/f"), "x").unwrap();
        d
    }

    #[test]
    fn symlinks_resolve_beneath_the_program_s_root_never_out_of_it() {
        let d = scratch_root("resolve");
        std::os::unix::fs::symlink("/a/f", d.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../a/f", d.join("a/up")).unwrap();
        let root = sys::open_path(&d).unwrap();
        let r = root.as_raw_fd();
        let f = d.join("a/f").canonicalize().unwrap();
        assert_eq!(
            resolve_in_view(r, Path::new("/abs"), false),
            Some((f.clone(), true))
        );
        assert_eq!(
            resolve_in_view(r, Path::new("/a/up"), false),
            Some((f, true))
        );
        // Not followed: the link itself; missing: through its parent.
        let link = d.canonicalize().unwrap().join("abs");
        assert_eq!(
            resolve_in_view(r, Path::new("/abs"), true),
            Some((link, true))
        );
        let new = d.canonicalize().unwrap().join("a/new");
        assert_eq!(
            resolve_in_view(r, Path::new("/a/new"), false),
            Some((new, false))
        );
        assert_eq!(resolve_in_view(r, Path::new("/nope/x"), false), None);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_part_after_a_granted_directory_is_found_by_whole_components() {
        fn after<'a>(p: &'a str, d: &str) -> Option<&'a [u8]> {
            after_dir(p.as_bytes(), d.as_bytes())
        }
        assert_eq!(after("/etc/passwd", "/etc"), Some(b"passwd".as_slice()));
        assert_eq!(after("/etc//x/y", "/etc"), Some(b"x/y".as_slice()));
        assert_eq!(after("/etc", "/etc"), Some(b"".as_slice()));
        assert_eq!(after("/etc/", "/etc"), Some(b"".as_slice()));
        assert_eq!(after("/etcetera/x", "/etc"), None);
        assert_eq!(after("/usr/x", "/etc"), None);
        assert_eq!(after("/x/y", "/"), Some(b"x/y".as_slice()));
        // `..` is left for the kernel to refuse (RESOLVE_BENEATH).
        assert_eq!(after("/etc/../x", "/etc"), Some(b"../x".as_slice()));
    }

    #[test]
    fn the_fast_check_continues_only_what_resolves_inside_a_grant() {
        let d = scratch_root("fast").canonicalize().unwrap();
        std::fs::create_dir_all(d.join("b")).unwrap();
        std::fs::write(d.join("b/x"), "x").unwrap();
        std::os::unix::fs::symlink("f", d.join("a/near")).unwrap();
        std::os::unix::fs::symlink("../b/x", d.join("a/out")).unwrap();
        std::os::unix::fs::symlink(d.join("a/f"), d.join("a/abs")).unwrap();
        let (r, _w) = sys::pipe().unwrap();
        let grants = vec![(d.join("a"), crate::sandbox::READ)];
        let a = Approvals::new(r, grants, AskSpec::default(), None);
        let inside = |p: &Path, flags: i32| {
            a.inside_grant(p.as_os_str().as_bytes(), flags, false)
                .is_some()
        };
        let rd = libc::O_RDONLY;
        assert!(inside(&d.join("a/f"), rd));
        assert!(inside(&d.join("a/near"), rd));
        assert!(inside(&d.join("a"), rd | libc::O_DIRECTORY));
        // Missing and not created: the kernel says ENOENT by itself.
        assert!(inside(&d.join("a/missing"), rd));
        // Everything else goes to the full resolution.
        assert!(!inside(&d.join("a/missing"), rd | libc::O_CREAT));
        assert!(!inside(&d.join("a/f"), libc::O_WRONLY));
        assert!(!inside(&d.join("a/out"), rd));
        assert!(!inside(&d.join("a/abs"), rd));
        assert!(!inside(&d.join("a/../b/x"), rd));
        assert!(!inside(&d.join("b/x"), rd));
        assert!(!inside(Path::new("/proc/self/status"), rd));
        // A writable grant: a new file is made beneath it, unless its name
        // is a dangling symlink, which the open would follow out.
        std::os::unix::fs::symlink(d.join("b/new"), d.join("b/dangling")).unwrap();
        let (r, _w) = sys::pipe().unwrap();
        let grants = vec![(d.join("b"), crate::sandbox::READ | crate::sandbox::WRITE)];
        let b = Approvals::new(r, grants, AskSpec::default(), None);
        let inside = |p: &Path, flags: i32, nofollow: bool| {
            b.inside_grant(p.as_os_str().as_bytes(), flags, nofollow)
                .is_some()
        };
        let create = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
        assert!(inside(&d.join("b/made"), create, false));
        assert!(inside(&d.join("b/made"), create | libc::O_EXCL, true));
        assert!(!inside(&d.join("b/dangling"), create, false));
        assert!(inside(&d.join("b/dangling"), create | libc::O_EXCL, true));
        assert!(!inside(&d.join("b/../a/made"), create, false));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_dangling_symlink_leads_to_the_file_an_open_would_create() {
        let d = scratch_root("dangling");
        std::os::unix::fs::symlink("/a/new", d.join("a/dangling")).unwrap();
        let root = sys::open_path(&d).unwrap();
        let new = d.canonicalize().unwrap().join("a/new");
        assert_eq!(
            resolve_in_view(root.as_raw_fd(), Path::new("/a/dangling"), false),
            Some((new, false))
        );
        let link = d.canonicalize().unwrap().join("a/dangling");
        assert_eq!(
            resolve_in_view(root.as_raw_fd(), Path::new("/a/dangling"), true),
            Some((link, true))
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn nono_s_directories_are_recognised_by_identity_wherever_they_appear() {
        let d = scratch_root("never");
        let root = sys::open_path(&d).unwrap();
        let r = root.as_raw_fd();
        let st = sys::lstatat(r, OsStr::new("a/nono")).unwrap();
        let ids = [(st.dev, st.ino)];
        std::fs::create_dir_all(d.join("a/nono/deep")).unwrap();
        // The directory itself, a missing file two levels down, not beside it.
        assert!(under_never(r, Path::new("/a/nono"), &ids));
        assert!(under_never(r, Path::new("/a/nono/deep/x"), &ids));
        assert!(!under_never(r, Path::new("/a/f"), &ids));
        assert!(!under_never(r, Path::new("/a/new"), &ids));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn repaints_under_the_overlay_carry_the_screen_not_the_history() {
        let mut term = Terminal::new(5, 20, 100);
        for i in 0..50 {
            term.feed(format!("line {i}\r\n").as_bytes());
        }
        let full = String::from_utf8(term.render()).unwrap();
        let screen = String::from_utf8(term.render_screen()).unwrap();
        assert!(full.contains("line 3\r\n"));
        assert!(!screen.contains("line 3\r\n") && screen.contains("line 49"));
        let mut client = Terminal::new(5, 20, 100);
        client.feed(&term.render_screen());
        assert_eq!(client.screen_text(), term.screen_text());
    }

    #[test]
    fn the_overlay_covers_the_last_row_and_leaves_the_cursor_and_scroll_region_alone() {
        let long = format!("/home/u/{}/界界界/notes.md", "deep/".repeat(30));
        let a = with_request(&long);
        let mut term = Terminal::new(10, 60, 100);
        // A program with a scroll region, origin mode on, the cursor mid-screen.
        term.feed(b"\x1b[2;5r\x1b[?6h\x1b[2;3Hhello");
        let before = term.cursor();
        let bytes = overlay_bytes(&a, &term);
        let mut shown = Terminal::new(10, 60, 100);
        shown.feed(b"\x1b[2;5r\x1b[?6h\x1b[2;3Hhello");
        shown.feed(&bytes);
        let last = &shown.screen_text()[9];
        assert!(last.starts_with("nono: 4242 cat read …"), "{last}");
        assert!(last.contains("界界/notes.md  y/a/n/d/Esc"), "{last}");
        // Wide enough: every word.
        let a = with_request("/etc/x");
        let wide = Terminal::new(10, 100, 100);
        let text = String::from_utf8(overlay_bytes(&a, &wide)).unwrap();
        assert!(text.contains("nono: pid 4242 (cat) asks to read /etc/x  y once  a always  n deny  d always deny  Esc later"), "{text}");
        // Never into the last column: no pending wrap, nothing scrolls.
        assert!(shown.cell(9, 59).is_none_or(|c| c.text().trim().is_empty()));
        assert_eq!(shown.cursor(), before);
        assert_eq!(shown.screen_text()[..9], term.screen_text()[..9]);
    }
}
