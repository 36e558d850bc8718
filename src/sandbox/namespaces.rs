//! The session's private view of the machine, set up by its init inside a
//! new user, PID and mount namespace, in a fixed order that reads top to
//! bottom (as bubblewrap's does): map our ids, make every mount private,
//! mount our own /proc, a new devpts instance, an empty /tmp and /dev/shm,
//! mask nono's state and config directories and `/run/user/<uid>`, bind
//! back the granted paths those hid, and forbid further user namespaces.
//! Each step that fails names itself; the caller then falls back to the
//! weaker containment (or refuses to start, when namespaces are required).

use super::{Policy, READ, WRITE};
use crate::sys;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Directories replaced by an empty tmpfs of the session's own: programs
/// that ignore `$TMPDIR` and POSIX shared memory (Python's
/// `multiprocessing`) work, and nothing there is shared with the user's
/// other programs or outlives the session.
pub const PRIVATE_DIRS: [&str; 2] = ["/tmp", "/dev/shm"];

/// Where the session's devpts instance is mounted.
const PTS: &str = "/dev/pts";

/// What the init makes of the mount namespace.
#[derive(Clone, Debug)]
pub struct View {
    /// Our uid outside, mapped to itself inside.
    pub uid: u32,
    /// Our gid outside, mapped to itself inside.
    pub gid: u32,
    /// Directories covered by an empty tmpfs: nono's state and
    /// config directories, `/run/user/<uid>` (agent, bus and display sockets).
    pub masks: Vec<PathBuf>,
    /// Paths a mask hides that the session needs: granted paths and the
    /// working directory, bound back in place.
    pub keep: Vec<PathBuf>,
    /// The PRIVATE_DIRS made private. One under which the working directory
    /// or a grant lies stays shared: a Landlock grant of the private one
    /// would extend to everything bound back beneath it (rules follow the
    /// mount tree up), so the program gets a private `$TMPDIR` instead.
    pub private: Vec<PathBuf>,
}

/// Plan the view for `policy` started in `workdir`.
pub fn plan(policy: &Policy, workdir: &Path) -> View {
    let uid = sys::geteuid();
    let mut masks: Vec<PathBuf> = Vec::new();
    let canonical = |p: PathBuf| p.canonicalize().ok();
    masks.extend(crate::registry::state_dir().ok().and_then(canonical));
    masks.extend(crate::config::config_dir().and_then(canonical));
    masks.extend(canonical(PathBuf::from(format!("/run/user/{uid}"))));
    let needed: Vec<PathBuf> = policy
        .rules
        .iter()
        .map(|r| r.path.clone())
        .chain(workdir.canonicalize().ok())
        .collect();
    let private: Vec<PathBuf> = PRIVATE_DIRS
        .iter()
        .map(PathBuf::from)
        .filter(|d| !needed.iter().any(|p| p.starts_with(d) && p != d))
        .collect();
    let mut keep: Vec<PathBuf> = needed
        .into_iter()
        .filter(|p| masks.iter().any(|m| p.starts_with(m)))
        .collect();
    // Parents before children, so a child is bound inside its parent's bind.
    keep.sort();
    keep.dedup();
    View {
        uid,
        gid: sys::getegid(),
        masks,
        keep,
        private,
    }
}

/// The grants every session with a private view gets on top of its
/// profile: its own terminals, /tmp and /dev/shm (those made private).
pub fn private_grants(policy: &mut Policy, view: &View) {
    for d in view.private.iter().cloned().chain([PathBuf::from(PTS)]) {
        policy.grant(d, READ | WRITE, "private");
    }
}

impl View {
    /// Whether /tmp is the session's own.
    pub fn private_tmp(&self) -> bool {
        self.private.iter().any(|d| d == Path::new("/tmp"))
    }
}

/// A path to bind back: where, an O_PATH fd opened before it was hidden,
/// and whether it is a directory.
type Held<'a> = (&'a PathBuf, OwnedFd, bool);

/// A step of the setup failed: which, on what, why.
fn step(what: &str, path: &str, e: std::io::Error) -> String {
    format!("{what} {path}: {e}")
}

/// Write a small file of /proc (id maps, sysctls).
fn write_proc(path: &str, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| step("cannot write", path, e))
}

/// Mount `fstype` at `target` (an empty, private instance).
fn mount_fs(fstype: &str, target: &str, flags: libc::c_ulong, data: &str) -> Result<(), String> {
    sys::mount(fstype, Path::new(target), fstype, flags, data)
        .map_err(|e| step(&format!("cannot mount {fstype} on"), target, e))
}

/// Enter the view; runs in the session's init, pid 1 of its namespaces,
/// holding every capability of its user namespace (none outside it).
pub fn enter(view: &View) -> Result<(), String> {
    // 1. Ids: the same uid and gid inside, nothing else mapped.
    write_proc("/proc/self/setgroups", "deny")?;
    write_proc("/proc/self/uid_map", &format!("{0} {0} 1\n", view.uid))?;
    write_proc("/proc/self/gid_map", &format!("{0} {0} 1\n", view.gid))?;
    // 2. No mount made here reaches the user's namespace, nor theirs ours.
    sys::mount("", Path::new("/"), "", libc::MS_REC | libc::MS_PRIVATE, "")
        .map_err(|e| step("cannot make mounts private under", "/", e))?;
    // 3. Hold on to what the next steps hide, to bind it back.
    let mut held: Vec<Held> = Vec::new();
    for p in &view.keep {
        let fd = sys::open_path(p).map_err(|e| step("cannot open", &p.display().to_string(), e))?;
        let dir = fs::metadata(p).map(|m| m.is_dir()).unwrap_or(true);
        held.push((p, fd, dir));
    }
    let nosuid = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // 4. Our own /proc: only the session's processes.
    mount_fs("proc", "/proc", nosuid, "")?;
    // 5. Our own terminals: a new devpts instance, and /dev/ptmx opening in it.
    mount_fs(
        "devpts",
        PTS,
        libc::MS_NOSUID | libc::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620",
    )?;
    sys::mount(
        "/dev/pts/ptmx",
        Path::new("/dev/ptmx"),
        "",
        libc::MS_BIND,
        "",
    )
    .map_err(|e| step("cannot bind /dev/pts/ptmx on", "/dev/ptmx", e))?;
    // 6. Empty private /tmp and /dev/shm (unless a grant lies beneath).
    for d in &view.private {
        let d = d.display().to_string();
        mount_fs("tmpfs", &d, libc::MS_NOSUID | libc::MS_NODEV, "mode=1777")?;
    }
    // 7. Granted paths and the working directory back where they were,
    //    and masks over what they bring back; parents first, so a mask
    //    lands inside a bound directory and a grant inside a mask.
    let mut ops: Vec<(&PathBuf, Option<&Held>)> = held.iter().map(|h| (h.0, Some(h))).collect();
    ops.extend(
        view.masks
            .iter()
            .filter(|m| !view.keep.contains(m))
            .map(|m| (m, None)),
    );
    ops.sort_by(|a, b| a.0.cmp(b.0));
    for (p, bind) in ops {
        let path = p.display().to_string();
        let Some((_, fd, dir)) = bind else {
            // Empty, ours and private (nono inside finds a state directory
            // it may not write, as Landlock has it); Landlock denies the rest.
            if fs::symlink_metadata(p).is_ok_and(|md| md.is_dir()) {
                mount_fs("tmpfs", &path, nosuid, "mode=0700")?;
            }
            continue;
        };
        if same_file(p, fd) {
            continue; // already in view, through a parent bound back before it
        }
        if fs::symlink_metadata(p).is_err() {
            let made = if *dir {
                fs::create_dir_all(p)
            } else {
                p.parent()
                    .map_or(Ok(()), fs::create_dir_all)
                    .and_then(|_| fs::File::create(p).map(drop))
            };
            made.map_err(|e| step("cannot make a mount point at", &path, e))?;
        }
        let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
        sys::mount(&source, p, "", libc::MS_BIND | libc::MS_REC, "")
            .map_err(|e| step("cannot bind back", &path, e))?;
    }
    // 8. No user namespaces of the program's own: less kernel to attack,
    //    and no way to map itself root and remount what we set up.
    write_proc("/proc/sys/user/max_user_namespaces", "0")?;
    Ok(())
}

/// Whether `path` (followed) is the file `fd` refers to.
fn same_file(path: &Path, fd: &OwnedFd) -> bool {
    use std::os::unix::fs::MetadataExt;
    let held = fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    match (fs::metadata(path), held) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(paths: &[&str]) -> Policy {
        let mut p = Policy {
            profile: "t".into(),
            ..Policy::default()
        };
        for path in paths {
            p.grant(PathBuf::from(path), READ, "test");
        }
        p
    }

    #[test]
    fn tmp_is_private_unless_something_needed_lies_beneath() {
        let v = plan(&policy(&["/usr"]), Path::new("/"));
        assert!(v.private_tmp(), "{v:?}");
        assert_eq!(v.private.len(), PRIVATE_DIRS.len());
        let v = plan(&policy(&["/usr", "/tmp/project"]), Path::new("/"));
        assert!(!v.private_tmp(), "{v:?}");
        assert!(v.private.iter().any(|d| d == Path::new("/dev/shm")));
        // A grant of /tmp itself means the private one.
        let v = plan(&policy(&["/tmp"]), Path::new("/"));
        assert!(v.private_tmp(), "{v:?}");
    }

    #[test]
    fn private_grants_cover_terminals_and_only_private_dirs() {
        let mut p = policy(&["/tmp/project"]);
        let v = plan(&p, Path::new("/"));
        private_grants(&mut p, &v);
        assert!(p.allows(Path::new("/dev/pts/3"), READ | WRITE));
        assert!(p.allows(Path::new("/dev/shm/x"), READ | WRITE));
        assert!(!p.allows(Path::new("/tmp/other"), READ));
    }
}
