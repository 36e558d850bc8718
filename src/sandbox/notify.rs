//! `--ask`: the seccomp user-notification filter for the open family
//! (`open`, `openat`, `openat2`, `creat`), and the pure parts of answering
//! a notification: which call it is, what access it wants, where its path
//! leads. The supervisor's side lives in `supervisor::approvals`.
//!
//! Kernels: user notification 5.0, CONTINUE 5.5, openat2 5.6, ADDFD 5.9,
//! ADDFD with SEND 5.14; nono asks for 5.14 as a whole.

use super::bpf::*;
use super::{READ, WRITE};
use libc::sock_filter;
use std::path::{Component, Path, PathBuf};

pub use super::bpf::AUDIT_ARCH;

/// Whether nono has the filter for this architecture.
pub const SUPPORTED: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// The oldest kernel with everything `--ask` uses (ADDFD with SEND).
pub const MIN_KERNEL: (u32, u32) = (5, 14);

/// Syscalls that open by path: (number, name, which argument holds the
/// open flags when the filter can see them; openat2's are in memory).
#[cfg(target_arch = "x86_64")]
const OPEN_FAMILY: [(i64, &str, Option<usize>); 4] = [
    (libc::SYS_open, "open", Some(1)),
    (libc::SYS_openat, "openat", Some(2)),
    (libc::SYS_openat2, "openat2", None),
    (libc::SYS_creat, "creat", None),
];
/// Syscalls that open by path. aarch64 has no open/creat.
#[cfg(target_arch = "aarch64")]
const OPEN_FAMILY: [(i64, &str, Option<usize>); 2] = [
    (libc::SYS_openat, "openat", Some(2)),
    (libc::SYS_openat2, "openat2", None),
];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const OPEN_FAMILY: [(i64, &str, Option<usize>); 0] = [];

const NOTIFY: u32 = libc::SECCOMP_RET_USER_NOTIF;

/// The filter: the open family goes to the supervisor, except O_PATH
/// opens where the filter can see the flags (Landlock never checks an
/// O_PATH open, so there is nothing to ask and no round trip to pay);
/// everything else, and calls through another ABI (i386, x32: Landlock
/// still decides those, they are just never asked about), passes untouched.
pub fn filter() -> Vec<sock_filter> {
    // Instructions: 4 in the head, 3 per member with visible flags, 1 per
    // other member, then "ret allow" and "ret notify".
    let body: usize = OPEN_FAMILY
        .iter()
        .map(|(_, _, f)| if f.is_some() { 3 } else { 1 })
        .sum();
    let allow = 4 + body;
    let notify = allow + 1;
    // The offset of a jump at `from` to `to`.
    let to = |from: usize, to: usize| (to - from - 1) as u8;
    let mut p = vec![
        op(LD_W_ABS, OFF_ARCH),                        // A = arch
        jump(JEQ_K, AUDIT_ARCH, 0, to(1, allow)),      // foreign ABI -> allow
        op(LD_W_ABS, OFF_NR),                          // A = syscall number
        jump(JGE_K, X32_SYSCALL_BIT, to(3, allow), 0), // x32 -> allow
    ];
    for (nr, _, flags) in OPEN_FAMILY {
        let at = p.len();
        match flags {
            Some(arg) => {
                p.push(jump(JEQ_K, nr as u32, 0, 2)); // not this call -> next member
                p.push(op(LD_W_ABS, off_arg_low(arg))); // A = its open flags
                p.push(jump(
                    JSET_K,
                    libc::O_PATH as u32,
                    to(at + 2, allow),
                    to(at + 2, notify),
                ));
            }
            None => p.push(jump(JEQ_K, nr as u32, to(at, notify), 0)), // -> notify
        }
    }
    p.push(op(RET_K, ALLOW));
    p.push(op(RET_K, NOTIFY));
    p
}

/// Whether a kernel release string (`uname -r`) is at least `MIN_KERNEL`.
pub fn kernel_supported(release: &str) -> bool {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor) >= MIN_KERNEL
}

/// One open call, decoded from its syscall arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenCall {
    /// Directory a relative path starts from (`AT_FDCWD`: the cwd).
    pub dirfd: i32,
    /// Address of the path in the caller's memory.
    pub path: u64,
    /// Open flags (for openat2: still to be read from `how`).
    pub flags: i32,
    /// Creation mode.
    pub mode: u32,
    /// openat2 only: address and size of its `struct open_how`.
    pub how: Option<(u64, u64)>,
}

/// Decode a notified call; None for anything outside the open family.
pub fn decode(nr: i32, a: &[u64; 6]) -> Option<OpenCall> {
    let nr = nr as i64;
    let call = |dirfd: u64, path, flags: u64, mode: u64| OpenCall {
        dirfd: dirfd as i32,
        path,
        flags: flags as i32,
        mode: mode as u32 & 0o7777,
        how: None,
    };
    #[cfg(target_arch = "x86_64")]
    {
        if nr == libc::SYS_open {
            return Some(call(libc::AT_FDCWD as u64, a[0], a[1], a[2]));
        }
        if nr == libc::SYS_creat {
            let flags = (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64;
            return Some(call(libc::AT_FDCWD as u64, a[0], flags, a[1]));
        }
    }
    if nr == libc::SYS_openat {
        return Some(call(a[0], a[1], a[2], a[3]));
    }
    if nr == libc::SYS_openat2 {
        let mut c = call(a[0], a[1], 0, 0);
        c.how = Some((a[2], a[3]));
        return Some(c);
    }
    None
}

/// The access an open with `flags` needs: READ and/or WRITE (creating a
/// file that does not exist, and truncating, are writes).
pub fn access_of(flags: i32, exists: bool) -> u8 {
    let mut a = match flags & libc::O_ACCMODE {
        libc::O_WRONLY => WRITE,
        libc::O_RDWR => READ | WRITE,
        _ => READ,
    };
    if flags & libc::O_TRUNC != 0 || (flags & libc::O_CREAT != 0 && !exists) {
        a |= WRITE;
    }
    if flags & libc::O_TMPFILE == libc::O_TMPFILE {
        a |= WRITE;
    }
    a
}

/// The path as the program means it: `/proc/self` and
/// `/proc/thread-self` name the program, not the supervisor reading it.
pub fn program_view(path: &Path, pid: i32, tid: i32) -> PathBuf {
    let mut comps = path.components();
    let mut out = PathBuf::new();
    let mut seen_proc = false;
    let mut first = true;
    while let Some(c) = comps.next() {
        match c {
            Component::RootDir if first => out.push("/"),
            Component::Normal(n) if seen_proc && out == Path::new("/proc") => {
                if n == "self" {
                    out.push(pid.to_string());
                } else if n == "thread-self" {
                    out.push(format!("{pid}/task/{tid}"));
                } else {
                    out.push(n);
                }
                out.extend(comps);
                return out;
            }
            Component::Normal(n) if out == Path::new("/") && n == "proc" => {
                seen_proc = true;
                out.push(n);
            }
            other => {
                out.push(other);
                out.extend(comps);
                return out;
            }
        }
        first = false;
    }
    out
}

/// Where `full` (absolute) leads, and whether it exists: every symlink
/// resolved, except a final one when `nofollow` (O_NOFOLLOW, O_CREAT|O_EXCL
/// do not follow it either). A missing final component resolves through
/// its parent; a dangling final symlink leads to its target (the open would
/// create that). None when even the parent cannot be resolved (the kernel
/// will fail the call by itself) or the links loop.
pub fn resolve(full: &Path, nofollow: bool) -> Option<(PathBuf, bool)> {
    let mut full = full.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        if !nofollow {
            if let Ok(c) = full.canonicalize() {
                return Some((c, true));
            }
        }
        let name = match full.components().next_back()? {
            Component::Normal(n) => n.to_os_string(),
            _ => return None,
        };
        let parent = full.parent()?.canonicalize().ok()?;
        let p = parent.join(name);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if !nofollow && m.file_type().is_symlink() => {
                full = parent.join(std::fs::read_link(&p).ok()?);
            }
            found => return Some((p, found.is_ok())),
        }
    }
    None
}

/// Symlinks a path resolution follows before the kernel gives up (ELOOP).
pub const MAX_SYMLINKS: usize = 40;

/// The access `rules` give `path`: Landlock unions the rights of every
/// granted ancestor.
pub fn granted(rules: &[(PathBuf, u8)], path: &Path) -> u8 {
    rules
        .iter()
        .filter(|(p, _)| path.starts_with(p))
        .fold(0, |a, (_, r)| a | r)
}

/// The syscall's name, for events.
pub fn call_name(nr: i32) -> &'static str {
    OPEN_FAMILY
        .iter()
        .find(|(n, _, _)| *n == nr as i64)
        .map_or("open", |(_, s, _)| s)
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;

    /// The filter, for a call with no flags set.
    fn eval(prog: &[sock_filter], arch: u32, nr: u32) -> u32 {
        super::super::bpf::eval(prog, arch, nr, 0)
    }

    #[test]
    fn the_filter_notifies_the_open_family_and_nothing_else() {
        let p = filter();
        for (nr, _, flags) in OPEN_FAMILY {
            assert_eq!(eval(&p, AUDIT_ARCH, nr as u32), NOTIFY);
            // O_PATH (never checked by Landlock) passes where the flags are visible.
            if let Some(i) = flags {
                let mut args = [0; 6];
                args[i] = (libc::O_PATH | libc::O_CLOEXEC) as u32;
                assert_eq!(eval_args(&p, AUDIT_ARCH, nr as u32, args), ALLOW);
                args[i] = (libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC) as u32;
                assert_eq!(eval_args(&p, AUDIT_ARCH, nr as u32, args), NOTIFY);
                // Another argument with the bit set changes nothing.
                let other = if i == 1 { 2 } else { 1 };
                let mut args = [0; 6];
                args[other] = libc::O_PATH as u32;
                assert_eq!(eval_args(&p, AUDIT_ARCH, nr as u32, args), NOTIFY);
            }
        }
        for nr in [libc::SYS_read, libc::SYS_execve, libc::SYS_mkdirat] {
            assert_eq!(eval(&p, AUDIT_ARCH, nr as u32), ALLOW);
        }
        // Other ABIs pass (Landlock still decides for them).
        assert_eq!(eval(&p, 0x4000_0003, 5), ALLOW);
        assert_eq!(
            eval(&p, AUDIT_ARCH, X32_SYSCALL_BIT | libc::SYS_openat as u32),
            ALLOW
        );
    }

    #[test]
    fn calls_decode_with_their_flags_and_access() {
        let c = decode(libc::SYS_openat as i32, &[3, 0x1000, 0o101, 0o644, 0, 0]).unwrap();
        assert_eq!(
            (c.dirfd, c.path, c.flags, c.mode),
            (3, 0x1000, 0o101, 0o644)
        );
        assert!(decode(libc::SYS_read as i32, &[0; 6]).is_none());
        assert_eq!(access_of(libc::O_RDONLY, true), READ);
        assert_eq!(access_of(libc::O_RDWR, true), READ | WRITE);
        assert_eq!(access_of(libc::O_RDONLY | libc::O_CREAT, true), READ);
        assert_eq!(
            access_of(libc::O_RDONLY | libc::O_CREAT, false),
            READ | WRITE
        );
        assert_eq!(access_of(libc::O_WRONLY | libc::O_TRUNC, true), WRITE);
        assert!(kernel_supported("6.18.0-rc1"));
        assert!(kernel_supported("5.14.0"));
        assert!(!kernel_supported("5.13.19"));
        assert!(!kernel_supported("garbage"));
    }

    #[test]
    fn proc_self_means_the_program() {
        assert_eq!(
            program_view(Path::new("/proc/self/status"), 7, 9),
            Path::new("/proc/7/status")
        );
        assert_eq!(
            program_view(Path::new("/proc/thread-self/comm"), 7, 9),
            Path::new("/proc/7/task/9/comm")
        );
        assert_eq!(
            program_view(Path::new("/home/x/proc/self"), 7, 9),
            Path::new("/home/x/proc/self")
        );
    }

    #[test]
    fn grants_union_like_landlock() {
        let rules = vec![(PathBuf::from("/a"), READ), (PathBuf::from("/a/b"), WRITE)];
        assert_eq!(granted(&rules, Path::new("/a/b/f")), READ | WRITE);
        assert_eq!(granted(&rules, Path::new("/a/c")), READ);
        assert_eq!(granted(&rules, Path::new("/ab")), 0);
    }
}
