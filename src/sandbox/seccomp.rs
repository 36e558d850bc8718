//! The seccomp filter for `--net blocked`: refuse `socket()` and
//! `socketpair()` for every address family but `AF_UNIX` (so UDP, raw,
//! packet and netlink sockets are refused too, which Landlock cannot do),
//! and refuse `io_uring_setup()`, whose rings can create sockets without
//! passing through the socket syscalls this filter sees.
//!
//! The program is classic BPF over `struct seccomp_data`, written out one
//! instruction per line. Jump offsets count instructions skipped after the
//! jump (0 = fall through to the next line).

use super::bpf::*;
use libc::sock_filter;

const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;

const fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA)
}

/// What a refused socket() returns: "permission denied".
const REFUSED: u32 = errno(libc::EACCES);
/// What io_uring_setup() returns: "not implemented", which programs
/// already handle by falling back to plain system calls.
const NOT_SUPPORTED: u32 = errno(libc::ENOSYS);

/// Whether nono can build the network filter for this architecture.
pub const SUPPORTED: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// The filter program for a session with the network blocked.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn network_filter() -> Vec<sock_filter> {
    let socket = libc::SYS_socket as u32;
    let socketpair = libc::SYS_socketpair as u32;
    let io_uring_setup = libc::SYS_io_uring_setup as u32;
    let af_unix = libc::AF_UNIX as u32;
    vec![
        /* 0 */ op(LD_W_ABS, OFF_ARCH), // A = arch
        /* 1 */ jump(JEQ_K, AUDIT_ARCH, 0, 11), // foreign ABI? -> 13 kill
        /* 2 */ op(LD_W_ABS, OFF_NR), // A = syscall number
        /* 3 */ jump(JGE_K, X32_SYSCALL_BIT, 9, 0), // x32 number? -> 13 kill
        /* 4 */ jump(JEQ_K, socket, 3, 0), // socket() -> 8 check family
        /* 5 */ jump(JEQ_K, socketpair, 2, 0), // socketpair() -> 8 check family
        /* 6 */ jump(JEQ_K, io_uring_setup, 5, 0), // io_uring_setup() -> 12 ENOSYS
        /* 7 */ op(RET_K, ALLOW), // anything else: allowed
        /* 8 */ op(LD_W_ABS, OFF_ARG0_LOW), // A = address family
        /* 9 */ jump(JEQ_K, af_unix, 1, 0), // AF_UNIX -> 11 allow
        /* 10 */ op(RET_K, REFUSED), // other families: EACCES
        /* 11 */ op(RET_K, ALLOW), // Unix sockets: allowed
        /* 12 */ op(RET_K, NOT_SUPPORTED), // io_uring: ENOSYS, so programs fall back
        /* 13 */ op(RET_K, KILL), // foreign ABI: kill the process
    ]
}

/// A filter under which this kernel seems to refuse user namespaces, as a
/// container runtime's seccomp profile does: clone() with CLONE_NEWUSER
/// and unshare() fail with EPERM, clone3() with ENOSYS (so libc falls back
/// to clone(), whose flags a filter can see). Tests and benchmarks put it
/// on a launcher to take the fallback path on a kernel that has them.
pub fn no_user_namespaces_filter() -> Vec<sock_filter> {
    let eperm = errno(libc::EPERM);
    let enosys = errno(libc::ENOSYS);
    vec![
        /* 0 */ op(LD_W_ABS, OFF_NR), // A = syscall number
        /* 1 */ jump(JEQ_K, libc::SYS_clone3 as u32, 6, 0), // -> 8 ENOSYS
        /* 2 */ jump(JEQ_K, libc::SYS_unshare as u32, 4, 0), // -> 7 EPERM
        /* 3 */ jump(JEQ_K, libc::SYS_clone as u32, 0, 2), // not clone -> 6 allow
        /* 4 */ op(LD_W_ABS, OFF_ARG0_LOW), // A = clone flags
        /* 5 */ jump(JSET_K, libc::CLONE_NEWUSER as u32, 1, 0), // -> 7 EPERM
        /* 6 */ op(RET_K, ALLOW),
        /* 7 */ op(RET_K, eperm),
        /* 8 */ op(RET_K, enosys),
    ]
}

/// No filter exists for other architectures; the caller refuses to start.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn network_filter() -> Vec<sock_filter> {
    Vec::new()
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;

    #[test]
    fn the_filter_does_what_its_comments_say() {
        let p = network_filter();
        let sock = libc::SYS_socket as u32;
        let pair = libc::SYS_socketpair as u32;
        assert_eq!(eval(&p, AUDIT_ARCH, sock, libc::AF_UNIX as u32), ALLOW);
        assert_eq!(eval(&p, AUDIT_ARCH, pair, libc::AF_UNIX as u32), ALLOW);
        for fam in [
            libc::AF_INET,
            libc::AF_INET6,
            libc::AF_PACKET,
            libc::AF_NETLINK,
        ] {
            assert_eq!(eval(&p, AUDIT_ARCH, sock, fam as u32), REFUSED);
            assert_eq!(eval(&p, AUDIT_ARCH, pair, fam as u32), REFUSED);
        }
        assert_eq!(
            eval(&p, AUDIT_ARCH, libc::SYS_io_uring_setup as u32, 0),
            errno(libc::ENOSYS)
        );
        assert_eq!(eval(&p, AUDIT_ARCH, libc::SYS_read as u32, 0), ALLOW);
        assert_eq!(eval(&p, 0x4000_0003, 102, 0), KILL); // i386 socketcall
        assert_eq!(eval(&p, AUDIT_ARCH, X32_SYSCALL_BIT | sock, 2), KILL);
    }
}
