//! The only module with `unsafe`: thin, typed wrappers over the libc calls
//! std does not offer (ptys, poll, termios, peer credentials, prctl, fork,
//! getrandom). Every block states the invariant it relies on; callers above
//! this module never touch raw pointers.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Turn a libc return value of -1 into the thread's errno.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Retry a call interrupted by a signal (EINTR); every blocking call here can be.
fn retry<T, F: FnMut() -> io::Result<T>>(mut f: F) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A terminal window size as the kernel stores it (TIOCGWINSZ/TIOCSWINSZ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WinSize {
    /// Rows of character cells.
    pub rows: u16,
    /// Columns of character cells.
    pub cols: u16,
    /// Width in pixels (0 when the terminal does not say).
    pub xpixel: u16,
    /// Height in pixels (0 when the terminal does not say).
    pub ypixel: u16,
}

impl WinSize {
    /// A size with no pixel information.
    pub fn cells(rows: u16, cols: u16) -> WinSize {
        WinSize {
            rows,
            cols,
            xpixel: 0,
            ypixel: 0,
        }
    }
}

/// Open a new pseudo-terminal pair, both ends close-on-exec, neither ever
/// becoming our controlling terminal (O_NOCTTY), with the given size.
pub fn open_pty(size: WinSize) -> io::Result<(OwnedFd, OwnedFd)> {
    // SAFETY: posix_openpt takes flags only and returns a new fd or -1.
    let master =
        cvt(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    // SAFETY: `master` was just returned by posix_openpt and is owned by nobody else.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    // SAFETY: grantpt/unlockpt only take an fd, which is a valid pty master.
    cvt(unsafe { libc::grantpt(master.as_raw_fd()) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::unlockpt(master.as_raw_fd()) })?;
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: `name` is a writable buffer of the length we pass; ptsname_r
    // NUL-terminates on success.
    let rc = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated path.
    let path = unsafe { CStr::from_ptr(name.as_ptr()) };
    // SAFETY: `path` is a valid C string; open returns a new fd or -1.
    let slave = cvt(unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `slave` was just returned by open and is owned by nobody else.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    set_winsize(master.as_raw_fd(), size)?;
    Ok((master, slave))
}

/// Set the window size of the terminal behind `fd`.
pub fn set_winsize(fd: RawFd, size: WinSize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: size.xpixel,
        ws_ypixel: size.ypixel,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which is valid for the call.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// The window size of the terminal behind `fd`, or None if it is not a terminal.
pub fn get_winsize(fd: RawFd) -> Option<WinSize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` to the pointer, which is valid for the call.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    if rc == -1 || ws.ws_row == 0 || ws.ws_col == 0 {
        return None;
    }
    Some(WinSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
        xpixel: ws.ws_xpixel,
        ypixel: ws.ws_ypixel,
    })
}

/// The foreground process group of the terminal behind `fd` (the pty master works).
pub fn foreground_pgrp(fd: RawFd) -> Option<libc::pid_t> {
    // SAFETY: tcgetpgrp only reads the fd.
    let pgrp = unsafe { libc::tcgetpgrp(fd) };
    (pgrp > 0).then_some(pgrp)
}

/// The end-of-file character of the terminal behind `fd` when it is in
/// canonical mode (where that character means EOF), else None.
pub fn canonical_eof_char(fd: RawFd) -> Option<u8> {
    let t = get_termios(fd).ok()?;
    (t.0.c_lflag & libc::ICANON != 0).then_some(t.0.c_cc[libc::VEOF])
}

/// Saved terminal attributes, to put a terminal back as we found it.
#[derive(Clone)]
pub struct Termios(libc::termios);

/// Read the terminal attributes of `fd`.
pub fn get_termios(fd: RawFd) -> io::Result<Termios> {
    // SAFETY: termios is plain old data; all-zero is a valid value to be overwritten.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes one termios to the pointer, valid for the call.
    cvt(unsafe { libc::tcgetattr(fd, &mut t) })?;
    Ok(Termios(t))
}

/// Apply saved terminal attributes to `fd` (after output drains).
pub fn set_termios(fd: RawFd, t: &Termios) -> io::Result<()> {
    // SAFETY: tcsetattr reads one termios from the pointer, valid for the call.
    retry(|| cvt(unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, &t.0) })).map(drop)
}

/// Put the terminal behind `fd` in raw mode; returns the attributes to restore.
pub fn enter_raw_mode(fd: RawFd) -> io::Result<Termios> {
    let saved = get_termios(fd)?;
    let mut raw = saved.0;
    // SAFETY: cfmakeraw only modifies the struct it is given.
    unsafe { libc::cfmakeraw(&mut raw) };
    set_termios(fd, &Termios(raw))?;
    Ok(saved)
}

/// Whether `fd` refers to a terminal.
pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the fd.
    unsafe { libc::isatty(fd) == 1 }
}

/// Switch O_NONBLOCK on or off for `fd`.
pub fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL takes an int argument.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }).map(drop)
}

/// read(2) on a raw fd, retrying on EINTR.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: the pointer and length describe `buf`, writable for the call.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    })
}

/// read(2) of at most `max` bytes appended to `buf`, retrying on EINTR;
/// the byte count. Reading into the spare capacity saves zero-filling (or
/// a copy from another buffer) on the output hot path.
pub fn read_append(fd: RawFd, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let max = max.min(spare.len());
    let n = retry(|| {
        // SAFETY: the pointer and length describe the first `max` bytes of
        // the vector's spare capacity, allocated and writable for the call;
        // read(2) writes only bytes, so uninitialised memory is fine.
        let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), max) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    })?;
    let n = n.min(max);
    // SAFETY: the kernel initialised the first `n` bytes of the spare
    // capacity (n <= max <= spare capacity), so the new length covers only
    // initialised bytes within the allocation.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// write(2) on a raw fd, retrying on EINTR; may write less than asked.
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: the pointer and length describe `buf`, readable for the call.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    })
}

/// Write all of `buf` to a blocking fd.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write(fd, buf)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => buf = &buf[n..],
        }
    }
    Ok(())
}

/// Interest and readiness bits for `poll`.
pub const POLLIN: i16 = libc::POLLIN;
/// Writable.
pub const POLLOUT: i16 = libc::POLLOUT;
/// Hang-up, error or invalid fd: the fd needs attention (read it to learn which).
pub const POLLERR_ANY: i16 = libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;

/// One fd to watch in `poll`.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct PollFd(libc::pollfd);

impl PollFd {
    /// Watch `fd` for `events`.
    pub fn new(fd: RawFd, events: i16) -> PollFd {
        PollFd(libc::pollfd {
            fd,
            events,
            revents: 0,
        })
    }
    /// What happened to the fd during the last poll.
    pub fn revents(&self) -> i16 {
        self.0.revents
    }
}

/// poll(2): wait until one of `fds` is ready or `timeout_ms` passes (-1: forever).
/// EINTR is reported as zero ready fds so the caller re-checks its state.
pub fn poll(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: PollFd is repr(transparent) over pollfd, so the slice is a valid
    // array of `fds.len()` pollfd structs for the call.
    let n = unsafe {
        libc::poll(
            fds.as_mut_ptr().cast(),
            fds.len() as libc::nfds_t,
            timeout_ms,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

/// A pipe whose both ends are close-on-exec: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two fds into the array, valid for the call.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Result of `fork`.
pub enum Fork {
    /// We are the new process.
    Child,
    /// We are the original process; the new one has this pid.
    Parent(libc::pid_t),
}

/// fork(2).
///
/// # Safety
/// The calling process must be single-threaded, so the child does not
/// inherit locks held by threads that no longer exist.
pub unsafe fn fork() -> io::Result<Fork> {
    // SAFETY: the caller guarantees a single-threaded process.
    match cvt(unsafe { libc::fork() })? {
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(pid)),
    }
}

/// Start a new session with this process as its leader (no controlling terminal).
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid takes no arguments.
    cvt(unsafe { libc::setsid() }).map(drop)
}

/// Set the file-creation mask; returns the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Become a child subreaper: orphaned descendants are reparented to us, so
/// they stay our descendants and we can reap and account for them.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// Replace fds 0, 1 and 2 with /dev/null and close every other fd except `keep`.
/// Used by a freshly forked supervisor so nothing of the caller's stays open.
pub fn detach_stdio_and_close_others(keep: &[RawFd]) -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for target in 0..3 {
        // SAFETY: dup2 takes two fds; `null` stays open for the call.
        cvt(unsafe { libc::dup2(null.as_raw_fd(), target) })?;
    }
    drop(null);
    close_others(keep)
}

/// Close every fd above 2 except `keep`: a process that does not exec (a
/// session's init) must not hold what its parent had open.
pub fn close_others(keep: &[RawFd]) -> io::Result<()> {
    let mut to_close = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let fd: RawFd = match entry?.file_name().to_str().and_then(|s| s.parse().ok()) {
            Some(fd) => fd,
            None => continue,
        };
        if fd > 2 && !keep.contains(&fd) {
            to_close.push(fd);
        }
    }
    for fd in to_close {
        // SAFETY: closing an fd we were handed by our parent and do not own
        // elsewhere; the read_dir handle is already dropped (EBADF ignored).
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// How a child changed state, from waitpid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
    /// Stopped by this signal (job control).
    Stopped(i32),
    /// Continued after a stop.
    Continued,
}

/// waitpid(pid, WNOHANG | WUNTRACED | WCONTINUED): the next state change of
/// `pid` (-1: any child), or None when nothing is pending.
pub fn wait_nohang(pid: libc::pid_t) -> io::Result<Option<(libc::pid_t, WaitStatus)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid writes one int to the pointer, valid for the call.
    let got = retry(|| {
        cvt(unsafe {
            libc::waitpid(
                pid,
                &mut status,
                libc::WNOHANG | libc::WUNTRACED | libc::WCONTINUED,
            )
        })
    })?;
    if got == 0 {
        return Ok(None);
    }
    let ws = if libc::WIFEXITED(status) {
        WaitStatus::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        WaitStatus::Signaled(libc::WTERMSIG(status))
    } else if libc::WIFSTOPPED(status) {
        WaitStatus::Stopped(libc::WSTOPSIG(status))
    } else {
        WaitStatus::Continued
    };
    Ok(Some((got, ws)))
}

/// Send `sig` to process `pid`.
pub fn kill(pid: libc::pid_t, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes two integers.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Send `sig` to every process in group `pgid`.
pub fn killpg(pgid: libc::pid_t, sig: i32) -> io::Result<()> {
    // SAFETY: killpg takes two integers.
    cvt(unsafe { libc::killpg(pgid, sig) }).map(drop)
}

/// This process's id.
pub fn getpid() -> libc::pid_t {
    std::process::id() as libc::pid_t
}

/// The effective user id.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Credentials of the process at the other end of a Unix socket, as the
/// kernel recorded them at connect time (SO_PEERCRED).
#[derive(Clone, Copy, Debug)]
pub struct PeerCred {
    /// Process id of the peer.
    pub pid: libc::pid_t,
    /// Effective user id of the peer.
    pub uid: u32,
}

/// SO_PEERCRED of a connected Unix socket.
pub fn peer_cred(fd: RawFd) -> io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, which is that size.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
    })
}

/// `SO_PEERPIDFD` (Linux 6.5+; the asm-generic value x86_64 and arm64
/// use), which the libc crate does not export.
const SO_PEERPIDFD: libc::c_int = 77;

/// A pidfd for the process that connected a Unix socket: unlike the pid in
/// SO_PEERCRED it cannot come to name another process. None on a kernel
/// without SO_PEERPIDFD.
pub fn peer_pidfd(fd: RawFd) -> io::Result<Option<OwnedFd>> {
    let mut pidfd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `pidfd`, which is that size.
    let r = cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut pidfd as *mut libc::c_int).cast(),
            &mut len,
        )
    });
    match r {
        Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => Ok(None),
        Err(e) => Err(e),
        // SAFETY: on success the kernel installed a new fd that nothing else owns.
        Ok(_) => Ok(Some(unsafe { OwnedFd::from_raw_fd(pidfd) })),
    }
}

/// Name this process (`PR_SET_NAME`, shown as `comm` in `/proc`); at most
/// 15 bytes are kept.
pub fn set_process_name(name: &str) -> io::Result<()> {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes; `buf` is one.
    cvt(unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr() as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// Take an exclusive `flock` on `fd`, waiting for it; released when the fd closes.
pub fn lock_exclusive(fd: RawFd) -> io::Result<()> {
    // SAFETY: flock takes an fd and flags.
    retry(|| cvt(unsafe { libc::flock(fd, libc::LOCK_EX) }).map(drop))
}

/// Free blocks of the file system holding `fd` are all gone (statvfs: no
/// block available to us).
pub fn fs_full(fd: RawFd) -> bool {
    // SAFETY: fstatvfs fills the zeroed struct it is given.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable statvfs.
    let r = unsafe { libc::fstatvfs(fd, &mut st) };
    r == 0 && st.f_bavail == 0
}

/// Fill `buf` with random bytes from the kernel (getrandom, blocking until seeded).
pub fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe `rest`, writable for the call.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    Ok(())
}

/// What the child applies to itself just before exec, once it is the
/// session leader: the sandbox. Everything here was built by the supervisor
/// beforehand, so the child between fork and exec only makes syscalls.
#[derive(Default)]
pub struct Confinement {
    /// Empty the capability bounding set, so exec grants none even to uid
    /// 0 (inside a user namespace the process starts with every capability).
    pub drop_capabilities: bool,
    /// A Landlock ruleset to enforce (`landlock_restrict_self`); it implies
    /// `PR_SET_NO_NEW_PRIVS`.
    pub landlock: Option<OwnedFd>,
    /// A seccomp filter program to install (`SECCOMP_SET_MODE_FILTER`).
    pub seccomp: Option<Vec<libc::sock_filter>>,
    /// `--ask`: the approval filter, installed last (see `install_approval_filter`).
    pub notify: Option<NotifySetup>,
}

/// What the program's own process needs to hand its approval listener to
/// the supervisor: the user-notification filter and the program's end of a
/// socket pair made before the fork.
pub struct NotifySetup {
    /// The filter (`SECCOMP_RET_USER_NOTIF` for the open family).
    pub filter: Vec<libc::sock_filter>,
    /// Where the listener fd is sent (SCM_RIGHTS); close-on-exec.
    pub sock: OwnedFd,
}

impl Confinement {
    /// Whether anything is applied at all (false for `--no-sandbox`).
    pub fn is_empty(&self) -> bool {
        self.landlock.is_none()
            && self.seccomp.is_none()
            && self.notify.is_none()
            && !self.drop_capabilities
    }
}

/// Make the spawned program a session leader with stdin (the pty slave) as
/// its controlling terminal, killed when its parent (`parent`: the
/// supervisor, or 1 for a session's init) dies, and confined by `confine`
/// (applied last, so the setup above needs no grant). This is the single
/// place where the program's process is set up before exec.
pub fn make_session_leader_on_exec(cmd: &mut Command, parent: libc::pid_t, confine: Confinement) {
    let sandboxed = !confine.is_empty();
    let drop_caps = confine.drop_capabilities;
    let ruleset = confine.landlock;
    let filter = confine.seccomp;
    let notify = confine.notify;
    // SAFETY: the closure runs between fork and exec in the child and only
    // makes async-signal-safe calls (sigprocmask, setsid, ioctl, prctl,
    // getppid, syscall, _exit); it allocates nothing and touches no lock
    // (the signal set is a local): the ruleset fd and the filter were
    // built before the fork and are only borrowed here, and
    // `fprog` points into `filter`, which the closure owns and outlives the
    // seccomp() call (the kernel copies the program).
    unsafe {
        cmd.pre_exec(move || {
            // A session's init blocks every signal; the program starts with none blocked.
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            if libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) == -1 {
                return Err(io::Error::last_os_error());
            }
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) == -1
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before PDEATHSIG was armed.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            if drop_caps {
                // Every capability number the kernel may know; EINVAL past the last.
                for cap in 0..64 {
                    if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) == -1 {
                        let e = io::Error::last_os_error();
                        if e.raw_os_error() != Some(libc::EINVAL) {
                            return Err(e);
                        }
                    }
                }
            }
            if sandboxed && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            if let Some(fd) = &ruleset {
                if libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(prog) = &filter {
                let fprog = libc::sock_fprog {
                    len: prog.len() as libc::c_ushort,
                    filter: prog.as_ptr() as *mut libc::sock_filter,
                };
                if libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &fprog as *const libc::sock_fprog,
                ) == -1
                {
                    return Err(io::Error::last_os_error());
                }
            }
            // Last, so nothing above is held up by it; the program's own
            // process must install it (the kernel notifies for this task's
            // filters only).
            if let Some(n) = &notify {
                install_approval_filter(&n.filter, n.sock.as_raw_fd())?;
            }
            Ok(())
        });
    }
}

/// The approval hook of the pre-exec sequence: install the user-notification
/// filter in this process (the program, about to exec), send the listener
/// to the supervisor over `sock` and close it here, so the program never
/// holds it. Async-signal-safe: syscalls only, nothing allocated.
pub fn install_approval_filter(filter: &[libc::sock_filter], sock: RawFd) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: filter.len() as libc::c_ushort,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points into `filter`, borrowed for the call (the
    // kernel copies the program); NEW_LISTENER makes it return a new fd.
    let listener = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if listener < 0 {
        return Err(io::Error::last_os_error());
    }
    let listener = listener as RawFd;
    let sent = send_fd(sock, listener);
    // SAFETY: `listener` was just returned by seccomp() and nothing else owns it.
    unsafe { libc::close(listener) };
    sent
}

/// Space for one control message carrying one fd, 8-byte aligned as
/// `cmsghdr` needs (CMSG_SPACE(4) is 24 bytes on 64-bit Linux).
#[repr(C, align(8))]
struct FdCmsg([u8; 32]);

/// Send `fd` over the Unix socket `sock` (SCM_RIGHTS, with one data byte).
/// Async-signal-safe: it runs in the child before exec.
pub fn send_fd(sock: RawFd, fd: RawFd) -> io::Result<()> {
    send_with_fd(sock, &[0u8], fd).map(drop)
}

/// Send `bytes` over the Unix stream socket `sock` with `fd` attached
/// (SCM_RIGHTS); the bytes sent (the fd goes with the first of them).
/// Async-signal-safe: it allocates nothing.
pub fn send_with_fd(sock: RawFd, bytes: &[u8], fd: RawFd) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let mut space = FdCmsg([0; 32]);
    // SAFETY: msghdr is plain old data (musl has private padding fields, so
    // it is zeroed rather than built); all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as _;
    // SAFETY: the control buffer is 32 bytes, aligned, and at least
    // CMSG_SPACE(4) long, so the first header and its 4 data bytes lie
    // inside it; `msg` points at live locals for the sendmsg call, and
    // sendmsg only reads through `iov_base` (the cast to *mut is the C API's).
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd);
        loop {
            let n = libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL);
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Space for the control messages of a read that may carry fds: room for
/// 16 of them (more are closed by the kernel and reported as truncation).
#[repr(C, align(8))]
struct FdsCmsg([u8; 128]);

/// recvmsg(2) of at most `max` bytes appended to `buf`, retrying on EINTR
/// (the socket must be non-blocking, or the call may wait). Fds that came
/// with the bytes (SCM_RIGHTS) are appended to `fds`, close-on-exec.
/// Returns the byte count and whether fds were lost because more came
/// than fit (the kernel closes those).
pub fn recv_append_with_fds(
    sock: RawFd,
    buf: &mut Vec<u8>,
    max: usize,
    fds: &mut Vec<OwnedFd>,
) -> io::Result<(usize, bool)> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let max = max.min(spare.len());
    let mut iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: max,
    };
    let mut space = FdsCmsg([0; 128]);
    // SAFETY: msghdr is plain old data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.0.as_mut_ptr().cast();
    msg.msg_controllen = space.0.len() as _;
    let n = retry(|| {
        // SAFETY: `msg` points at live, writable locals of the sizes it
        // names; the iovec covers the first `max` bytes of the vector's
        // spare capacity (recvmsg writes only bytes there).
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    })?;
    // SAFETY: recvmsg initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    let truncated = msg.msg_flags & libc::MSG_CTRUNC != 0;
    // SAFETY: recvmsg filled `msg`; CMSG_FIRSTHDR and CMSG_NXTHDR check
    // msg_controllen and return only headers that lie inside `space`,
    // which is alive; each SCM_RIGHTS header's length bounds its ints.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let first = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                for i in 0..data / 4 {
                    let fd = std::ptr::read_unaligned(first.add(i));
                    // SCM_RIGHTS installed a new fd in this process; we own it.
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n, truncated))
}

/// Open the slave side of the pty whose master is `master` (TIOCGPTPEER),
/// never as a controlling terminal; close-on-exec.
pub fn pty_peer(master: RawFd) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes its flags as an int argument and returns a
    // new fd or -1.
    let fd = cvt(unsafe { libc::ioctl(master, libc::TIOCGPTPEER, flags) })?;
    // SAFETY: the ioctl just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `fd` is the master side of a pty (TIOCGPTN answers only there).
pub fn is_pty_master(fd: RawFd) -> bool {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int to the pointer, valid for the call.
    unsafe { libc::ioctl(fd, libc::TIOCGPTN, &mut n) == 0 }
}

/// Receive one fd sent with `send_fd`, without waiting (it was sent before
/// the program's exec, which the caller has seen). Close-on-exec.
pub fn recv_fd(sock: RawFd) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut space = FdCmsg([0; 32]);
    // SAFETY: msghdr is plain old data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.0.as_mut_ptr().cast();
    msg.msg_controllen = space.0.len() as _;
    // SAFETY: `msg` points at live, writable locals of the sizes it names.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: recvmsg filled `msg`; CMSG_FIRSTHDR checks msg_controllen
    // before returning a header inside the buffer.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    // SAFETY: a non-null header lies inside `space`, which is still alive.
    let ok = !cmsg.is_null()
        && unsafe {
            (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS
                && (*cmsg).cmsg_len as usize >= libc::CMSG_LEN(4) as usize
        };
    if !ok {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no file descriptor arrived",
        ));
    }
    // SAFETY: the header says it carries at least one int, inside `space`.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>()) };
    // SAFETY: SCM_RIGHTS installed a new fd in this process; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One seccomp user notification: a thread waits in `nr` until answered.
#[derive(Clone, Copy, Debug)]
pub struct Notif {
    /// Cookie for ID_VALID and the answer.
    pub id: u64,
    /// The waiting thread, in our pid namespace.
    pub tid: i32,
    /// Syscall number.
    pub nr: i32,
    /// `AUDIT_ARCH_*` the call was made with.
    pub arch: u32,
    /// The six syscall arguments.
    pub args: [u64; 6],
}

/// A buffer the kernel's notification structs fit in (checked by
/// `notif_supported`), 8-byte aligned and zeroed as RECV requires.
#[repr(C, align(8))]
struct NotifBuf([u8; 256]);

/// Whether this kernel has seccomp user notification with structs that fit
/// our buffers (`SECCOMP_GET_NOTIF_SIZES`, Linux 5.0).
pub fn notif_supported() -> bool {
    let mut sizes = libc::seccomp_notif_sizes {
        seccomp_notif: 0,
        seccomp_notif_resp: 0,
        seccomp_data: 0,
    };
    // SAFETY: GET_NOTIF_SIZES writes one seccomp_notif_sizes to the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_NOTIF_SIZES,
            0,
            &mut sizes as *mut libc::seccomp_notif_sizes,
        )
    };
    rc == 0
        && (sizes.seccomp_notif as usize) <= std::mem::size_of::<NotifBuf>()
        && (sizes.seccomp_notif as usize) >= std::mem::size_of::<libc::seccomp_notif>()
        && (sizes.seccomp_notif_resp as usize) == std::mem::size_of::<libc::seccomp_notif_resp>()
}

/// SECCOMP_IOCTL_NOTIF_RECV: take the next notification. Call after poll
/// reported the listener readable (it would block otherwise); ENOENT when
/// the waiting thread was killed meanwhile.
pub fn notif_recv(listener: RawFd) -> io::Result<Notif> {
    let mut buf = NotifBuf([0; 256]);
    // SAFETY: the buffer is zeroed, aligned and at least as large as the
    // kernel's seccomp_notif (notif_supported checked it); RECV writes it.
    retry(|| {
        cvt(unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, buf.0.as_mut_ptr()) })
    })?;
    // SAFETY: the kernel wrote a seccomp_notif at the start of the aligned buffer.
    let n: libc::seccomp_notif = unsafe { std::ptr::read(buf.0.as_ptr().cast()) };
    Ok(Notif {
        id: n.id,
        tid: n.pid as i32,
        nr: n.data.nr,
        arch: n.data.arch,
        args: n.data.args,
    })
}

/// SECCOMP_IOCTL_NOTIF_ID_VALID: whether the thread behind `id` still
/// waits (so what we read of it in between belongs to it).
pub fn notif_id_valid(listener: RawFd, id: u64) -> bool {
    // SAFETY: ID_VALID reads one u64 from the pointer, valid for the call.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
}

/// Answer notification `id`: `Ok(())` lets the kernel carry the call out
/// as if never stopped (SECCOMP_USER_NOTIF_FLAG_CONTINUE, Linux 5.5);
/// `Err(errno)` fails it with that errno.
pub fn notif_answer(listener: RawFd, id: u64, result: Result<(), i32>) -> io::Result<()> {
    let resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: match result {
            Ok(()) => 0,
            Err(e) => -e,
        },
        flags: if result.is_ok() {
            libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32
        } else {
            0
        },
    };
    // SAFETY: SEND reads one seccomp_notif_resp from the pointer.
    retry(|| {
        cvt(unsafe {
            libc::ioctl(
                listener,
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &resp as *const libc::seccomp_notif_resp,
            )
        })
    })
    .map(drop)
}

/// Answer notification `id` with a copy of our `fd` installed in the waiting
/// process, as the call's return value, atomically (SECCOMP_IOCTL_NOTIF_ADDFD
/// with SECCOMP_ADDFD_FLAG_SEND, Linux 5.14). Returns the fd number it got.
pub fn notif_send_fd(listener: RawFd, id: u64, fd: RawFd, cloexec: bool) -> io::Result<i32> {
    let add = libc::seccomp_notif_addfd {
        id,
        flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
        srcfd: fd as u32,
        newfd: 0,
        newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
    };
    // SAFETY: ADDFD reads one seccomp_notif_addfd from the pointer; `fd` is open.
    retry(|| {
        cvt(unsafe {
            libc::ioctl(
                listener,
                libc::SECCOMP_IOCTL_NOTIF_ADDFD,
                &add as *const libc::seccomp_notif_addfd,
            )
        })
    })
}

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (linux/seccomp.h, Linux 6.6; not in
/// the libc crate): wake the listener's waiter on the notifying task's CPU.
const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: libc::c_ulong = 1;

/// Ask the kernel to wake us synchronously for each notification on
/// `listener` (SECCOMP_IOCTL_NOTIF_SET_FLAGS); fails on kernels before 6.6.
pub fn notif_sync_wakeup(listener: RawFd) -> io::Result<()> {
    // SAFETY: SET_FLAGS takes its flags by value; no memory is passed.
    cvt(unsafe {
        libc::ioctl(
            listener,
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
        )
    })
    .map(drop)
}

/// Read up to `buf.len()` bytes at `addr` in process `pid`
/// (process_vm_readv). The remote range is split at page boundaries so an
/// unmapped page ends the read there instead of failing it; the count read.
/// At most three pages are touched (callers read a path or a struct, never
/// more than PATH_MAX): a longer read is cut short.
pub fn read_process_memory(pid: libc::pid_t, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    const PAGE: u64 = 4096;
    let empty = libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    };
    let mut remote = [empty; 3];
    let mut used = 0;
    let mut at = addr;
    let end = addr.saturating_add(buf.len() as u64);
    while at < end && used < remote.len() {
        let next = ((at / PAGE) + 1).saturating_mul(PAGE).min(end);
        remote[used] = libc::iovec {
            iov_base: at as usize as *mut libc::c_void,
            iov_len: (next - at) as usize,
        };
        used += 1;
        at = next;
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: (at - addr) as usize,
    };
    // SAFETY: `local` describes the start of `buf`, writable for the call;
    // the remote iovecs are addresses in the other process, which the
    // kernel checks.
    let n = unsafe {
        libc::process_vm_readv(pid, &local, 1, remote.as_ptr(), used as libc::c_ulong, 0)
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Whether the relative `path` resolves beneath the directory `dir`
/// without ever leaving it (openat2 of an O_PATH fd, closed at once, with
/// RESOLVE_BENEATH: `..` above `dir` and absolute symlinks fail with EXDEV;
/// magic links are not followed). With `nofollow` a final symlink is
/// itself the result. Err: why not (ENOENT: a component is missing).
pub fn resolves_beneath(dir: RawFd, path: &CStr, nofollow: bool) -> io::Result<()> {
    let mut flags = libc::O_PATH;
    if nofollow {
        flags |= libc::O_NOFOLLOW;
    }
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    openat2_c(dir, path, flags, 0, resolve).map(drop)
}

/// Whether an open with `flags` can create a file (O_CREAT, or O_TMPFILE,
/// whose value includes O_DIRECTORY's bit, so it is compared whole).
pub fn may_create(flags: i32) -> bool {
    flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE
}

/// `struct open_how` for openat2 (libc's is non-exhaustive, so it cannot be built here).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Open an absolute `path` following no symlink at all, magic links
/// included (openat2 with RESOLVE_NO_SYMLINKS, Linux 5.6): what is opened
/// is exactly the path as written. `mode` applies with O_CREAT/O_TMPFILE.
pub fn open_no_symlinks(path: &std::path::Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let resolve = libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    openat2(libc::AT_FDCWD, path, flags, mode, resolve)
}

/// openat2 relative to `dirfd` with `resolve` flags, close-on-exec;
/// `mode` is passed only when the open can create a file.
fn openat2(
    dirfd: RawFd,
    path: &std::path::Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    openat2_c(dirfd, &c, flags, mode, resolve)
}

/// [`openat2`] with a path that is already a C string (no allocation: the
/// `--ask` path checks run per request).
fn openat2_c(dirfd: RawFd, c: &CStr, flags: i32, mode: u32, resolve: u64) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u32 as u64,
        mode: if may_create(flags) { mode as u64 } else { 0 },
        resolve,
    };
    // SAFETY: `c` is NUL-terminated and `how` a valid open_how of the size
    // we pass, both alive for the call; the kernel only reads them.
    let fd = retry(|| {
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as RawFd)
        }
    })?;
    // SAFETY: openat2 returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The kernel release (`uname -r`), e.g. "6.18.0".
pub fn kernel_release() -> String {
    // SAFETY: utsname is plain old data; all-zero is valid.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname writes one utsname to the pointer.
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    // SAFETY: uname NUL-terminates the release field.
    unsafe { CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The Landlock ABI version this kernel offers; an error (ENOSYS,
/// EOPNOTSUPP) when Landlock is missing or disabled.
pub fn landlock_abi() -> io::Result<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute, size 0 and the VERSION flag the call
    // only returns a number; it reads no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as u32)
    }
}

/// `struct landlock_ruleset_attr` as of ABI 6. Older kernels accept the
/// larger struct as long as the fields they do not know are zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LandlockRulesetAttr {
    /// Filesystem rights the ruleset handles (denies unless granted).
    pub handled_access_fs: u64,
    /// Network rights it handles (ABI 4+).
    pub handled_access_net: u64,
    /// IPC scopes (ABI 6+).
    pub scoped: u64,
}

/// Create a Landlock ruleset (the fd is close-on-exec).
pub fn landlock_create_ruleset(attr: &LandlockRulesetAttr) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is a valid, initialized struct of the size we pass;
    // the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            attr as *const LandlockRulesetAttr,
            std::mem::size_of::<LandlockRulesetAttr>(),
            0,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// Grant `access` beneath the file or directory `parent` (an O_PATH fd).
pub fn landlock_add_path_rule(ruleset: &OwnedFd, parent: &OwnedFd, access: u64) -> io::Result<()> {
    const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;
    // `struct landlock_path_beneath_attr` is packed in the kernel's uapi.
    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }
    let attr = PathBeneath {
        allowed_access: access,
        parent_fd: parent.as_raw_fd(),
    };
    // SAFETY: both fds are open for the duration of the call and `attr`
    // is a valid packed struct the kernel only reads.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const PathBeneath,
            0,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Open `path` as if `root` were `/` (openat2 with RESOLVE_IN_ROOT, Linux
/// 5.6): `..` and absolute symlinks stay beneath it, magic links are never
/// followed, and with `follow` false no symlink at all is. Approvals use it
/// with `/proc/<pid>/root` to open what the program's own view names.
pub fn open_in_root(
    root: RawFd,
    path: &std::path::Path,
    flags: i32,
    mode: u32,
    follow: bool,
) -> io::Result<OwnedFd> {
    let mut resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    if !follow {
        resolve |= libc::RESOLVE_NO_SYMLINKS;
    }
    openat2(root, path, flags, mode, resolve)
}

/// Open `path` for use as a Landlock rule anchor: O_PATH (no read or
/// write access is taken, no device is opened), following symlinks,
/// close-on-exec. (std's OpenOptions is not used: with musl it loses O_PATH
/// and opens the file for reading, which fails for /dev/tty.)
pub fn open_path(path: &std::path::Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the
    // call; open takes no other pointer.
    let fd = cvt(unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) })?;
    // SAFETY: open returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The namespaces a session's init is cloned into: its own user namespace
/// (so an unprivileged user may create the others), PID namespace (the
/// kernel kills every process in it when init dies) and mount namespace.
pub const SESSION_NAMESPACES: libc::c_int =
    libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS;

/// clone(2) into new namespaces with fork semantics (no new stack: the
/// child continues on a copy of ours); with CLONE_NEWPID the child is pid 1
/// of its namespace.
///
/// # Safety
/// As for `fork`: the calling process must be single-threaded.
pub unsafe fn clone_into(namespaces: libc::c_int) -> io::Result<Fork> {
    // SAFETY: with a null stack pointer and no CLONE_VM, clone duplicates
    // the calling (single-threaded, per the caller) process like fork; the
    // tid pointers are unused without the SETTID flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (namespaces | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(pid as libc::pid_t)),
    }
}

/// A NUL-terminated copy of a path for a syscall.
fn c_path(p: &std::path::Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// mount(2). `source` and `fstype` may be empty (remounts, propagation changes).
pub fn mount(
    source: &str,
    target: &std::path::Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> io::Result<()> {
    let src = std::ffi::CString::new(source).map_err(|_| io::ErrorKind::InvalidInput)?;
    let fs = std::ffi::CString::new(fstype).map_err(|_| io::ErrorKind::InvalidInput)?;
    let data = std::ffi::CString::new(data).map_err(|_| io::ErrorKind::InvalidInput)?;
    let target = c_path(target)?;
    let opt = |c: &std::ffi::CString| {
        if c.as_bytes().is_empty() {
            std::ptr::null()
        } else {
            c.as_ptr()
        }
    };
    // SAFETY: every pointer is null or a NUL-terminated string that lives
    // for the whole call; the kernel only reads them.
    cvt(unsafe {
        libc::mount(
            opt(&src),
            target.as_ptr(),
            opt(&fs),
            flags,
            opt(&data).cast(),
        )
    })
    .map(drop)
}

/// Ask for `sig` when our parent dies (PR_SET_PDEATHSIG).
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes an integer signal number.
    cvt(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// A set of signals, for blocking and waiting.
pub struct SigSet(libc::sigset_t);

impl SigSet {
    /// Every signal.
    pub fn full() -> SigSet {
        // SAFETY: sigset_t is plain data; sigfillset initialises all of it.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t for the call.
        unsafe { libc::sigfillset(&mut set) };
        SigSet(set)
    }
}

/// Block every signal in `set` for this (single-threaded) process.
pub fn block_signals(set: &SigSet) -> io::Result<()> {
    // SAFETY: the set pointer is valid for the call; the old set is not wanted.
    let rc = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set.0, std::ptr::null_mut()) };
    cvt(rc).map(drop)
}

/// Wait for one of the (blocked) signals in `set`; its number.
pub fn wait_signal(set: &SigSet) -> io::Result<i32> {
    let mut sig: libc::c_int = 0;
    // SAFETY: both pointers are valid for the call; sigwait writes one int.
    let rc = unsafe { libc::sigwait(&set.0, &mut sig) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(sig)
}

/// End this process at once, without running destructors or atexit
/// handlers (a forked child must not flush its parent's buffers).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and does not return.
    unsafe { libc::_exit(code) }
}

/// The effective group id.
pub fn getegid() -> u32 {
    // SAFETY: getegid cannot fail.
    unsafe { libc::getegid() }
}

/// waitpid(pid) until it exits or is killed; its status. For a child we
/// know is about to end (a session's init that reported a failed setup).
pub fn wait_exit(pid: libc::pid_t) -> io::Result<WaitStatus> {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid writes one int to the pointer, valid for the call.
    retry(|| cvt(unsafe { libc::waitpid(pid, &mut status, 0) }))?;
    Ok(if libc::WIFEXITED(status) {
        WaitStatus::Exited(libc::WEXITSTATUS(status))
    } else {
        WaitStatus::Signaled(libc::WTERMSIG(status))
    })
}

/// Put every catchable signal back to its default action (handlers
/// inherited from a parent that does not exec must not run).
pub fn reset_signal_handlers() -> io::Result<()> {
    for sig in 1..32 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is a valid disposition for every catchable signal.
        if unsafe { libc::signal(sig, libc::SIG_DFL) } == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

// ---- Rollback: directory-relative file access that never follows a link ----

/// What `fstatat` reports about one directory entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status-change time in nanoseconds since the epoch.
    pub ctime_ns: i64,
    /// The device a character or block special file stands for.
    pub rdev: u64,
    /// Hard links to the inode.
    pub nlink: u64,
}

impl Stat {
    /// File type bits only.
    pub fn kind(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
}

/// Convert a name to a C string (names never contain NUL; one that does is invalid).
fn cname(name: &std::ffi::OsStr) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(name.as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Convert a `stat` buffer (field types differ between targets, hence the casts).
#[allow(clippy::unnecessary_cast)]
fn stat_of(st: &libc::stat) -> Stat {
    Stat {
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
        mode: st.st_mode as u32,
        size: st.st_size as u64,
        mtime_ns: st.st_mtime as i64 * 1_000_000_000 + st.st_mtime_nsec as i64,
        ctime_ns: st.st_ctime as i64 * 1_000_000_000 + st.st_ctime_nsec as i64,
        rdev: st.st_rdev as u64,
        nlink: st.st_nlink as u64,
    }
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`; `dir` None is the current directory.
pub fn openat(
    dir: Option<RawFd>,
    name: &std::ffi::OsStr,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    let c = cname(name)?;
    // SAFETY: `c` is a valid NUL-terminated string for the call; openat
    // takes no other pointer.
    let fd = cvt(unsafe {
        libc::openat(
            dir.unwrap_or(libc::AT_FDCWD),
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: openat returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: the entry itself, never a link's target.
pub fn lstatat(dir: RawFd, name: &std::ffi::OsStr) -> io::Result<Stat> {
    lstatat_c(dir, &cname(name)?)
}

/// `fstat(fd)`.
pub fn fstat(fd: RawFd) -> io::Result<Stat> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a writable stat buffer valid for the call.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(stat_of(&st))
}

/// The names in directory `fd` (without `.` and `..`), read with
/// getdents64 on a duplicate so `fd`'s own offset is untouched.
pub fn read_dir_names(fd: RawFd) -> io::Result<Vec<std::ffi::OsString>> {
    use std::os::unix::ffi::OsStrExt;
    let mut raw = Vec::new();
    read_dir_raw(fd, &mut raw)?;
    Ok(raw
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| std::ffi::OsStr::from_bytes(n).to_os_string())
        .collect())
}

/// The names in directory `fd` (without `.` and `..`) appended to `out`,
/// each followed by its NUL: one buffer for a whole directory, no
/// allocation per name (a capture walks tens of thousands). Read with
/// getdents64 on a duplicate so `fd`'s own offset is untouched.
pub fn read_dir_raw(fd: RawFd, out: &mut Vec<u8>) -> io::Result<()> {
    let dir = openat(
        Some(fd),
        std::ffi::OsStr::new("."),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
    )?;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: `buf` is writable for `buf.len()` bytes for the call;
        // the kernel writes at most that many.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(());
        }
        // linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name NUL-terminated.
        let mut off = 0usize;
        while off + 19 <= n as usize {
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen == 0 || off + reclen > n as usize {
                break;
            }
            let raw = &buf[off + 19..off + reclen];
            let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
            if !name.is_empty() && name != b"." && name != b".." {
                out.extend_from_slice(name);
                out.push(0);
            }
            off += reclen;
        }
    }
}

/// `lstatat` with a name that is already a C string (no allocation).
pub fn lstatat_c(dir: RawFd, name: &std::ffi::CStr) -> io::Result<Stat> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated and `st` is a writable stat buffer,
    // both valid for the call.
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(stat_of(&st))
}

/// `mkdirat(dir, name, mode)`.
pub fn mkdirat(dir: RawFd, name: &std::ffi::OsStr, mode: u32) -> io::Result<()> {
    let c = cname(name)?;
    // SAFETY: `c` is NUL-terminated and valid for the call.
    cvt(unsafe { libc::mkdirat(dir, c.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// `unlinkat(dir, name)`, with AT_REMOVEDIR for a directory (which must be empty).
pub fn unlinkat(dir: RawFd, name: &std::ffi::OsStr, is_dir: bool) -> io::Result<()> {
    let c = cname(name)?;
    let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: `c` is NUL-terminated and valid for the call.
    cvt(unsafe { libc::unlinkat(dir, c.as_ptr(), flags) }).map(drop)
}

/// `renameat(from_dir, from, to_dir, to)`: atomic replace.
pub fn renameat(
    from_dir: RawFd,
    from: &std::ffi::OsStr,
    to_dir: RawFd,
    to: &std::ffi::OsStr,
) -> io::Result<()> {
    let (a, b) = (cname(from)?, cname(to)?);
    // SAFETY: both names are NUL-terminated and valid for the call.
    cvt(unsafe { libc::renameat(from_dir, a.as_ptr(), to_dir, b.as_ptr()) }).map(drop)
}

/// `symlinkat(target, dir, name)`.
pub fn symlinkat(target: &std::ffi::OsStr, dir: RawFd, name: &std::ffi::OsStr) -> io::Result<()> {
    let (t, c) = (cname(target)?, cname(name)?);
    // SAFETY: both strings are NUL-terminated and valid for the call.
    cvt(unsafe { libc::symlinkat(t.as_ptr(), dir, c.as_ptr()) }).map(drop)
}

/// `readlinkat(dir, name)`: a symlink's target, as stored.
pub fn readlinkat(dir: RawFd, name: &std::ffi::OsStr) -> io::Result<std::ffi::OsString> {
    use std::os::unix::ffi::OsStringExt;
    let c = cname(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: `c` is NUL-terminated; `buf` is writable for its length.
    let n = unsafe { libc::readlinkat(dir, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(std::ffi::OsString::from_vec(buf))
}

/// `fchmod(fd, mode)`.
pub fn fchmod(fd: RawFd, mode: u32) -> io::Result<()> {
    // SAFETY: plain syscall on an fd; no pointers.
    cvt(unsafe { libc::fchmod(fd, mode as libc::mode_t) }).map(drop)
}

/// Share `src`'s extents with the empty file `dst` (FICLONE); fails with
/// EOPNOTSUPP/EXDEV/EINVAL where the filesystem cannot.
pub fn ficlone(dst: RawFd, src: RawFd) -> io::Result<()> {
    // SAFETY: FICLONE takes the source fd as its integer argument; no pointers.
    cvt(unsafe { libc::ioctl(dst, libc::FICLONE as _, src) }).map(drop)
}

/// Copy `len` bytes from the start of `src` to the start of `dst` in the
/// kernel (copy_file_range, called as a raw syscall so musl builds have it);
/// returns the bytes copied (short at EOF).
pub fn copy_file_range(src: RawFd, dst: RawFd, len: u64) -> io::Result<u64> {
    let (mut off_in, mut off_out): (i64, i64) = (0, 0);
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(1 << 30) as usize;
        // SAFETY: the offsets are valid writable i64s for the call.
        let n = unsafe {
            libc::syscall(
                libc::SYS_copy_file_range,
                src,
                &mut off_in as *mut i64,
                dst,
                &mut off_out as *mut i64,
                want,
                0u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            break;
        }
        done += n as u64;
    }
    Ok(done)
}

/// Whether this CPU has the SHA extensions (and the SSE levels they need).
pub fn has_sha_ni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("sha")
            && std::is_x86_feature_detected!("sse4.1")
            && std::is_x86_feature_detected!("ssse3")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// SHA-256 compression of whole 64-byte `blocks` into `state` with the
/// CPU's SHA extensions; returns false (state untouched) without them.
pub fn sha256_blocks_ni(state: &mut [u32; 8], blocks: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if !has_sha_ni() {
            return false;
        }
        // SAFETY: the features the function is compiled for were just
        // detected on this CPU.
        unsafe { sha256_ni_x86(state, blocks) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (state, blocks);
        false
    }
}

/// The SHA-NI rounds: state kept as ABEF/CDGH, four rounds per
/// `sha256rnds2` pair, message schedule with `sha256msg1/2`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn sha256_ni_x86(state: &mut [u32; 8], blocks: &[u8]) {
    use std::arch::x86_64::*;
    const K: [u32; 64] = crate::rollback::hash::K;
    // Byte order within each 32-bit word: the message is big-endian.
    let bswap = _mm_set_epi64x(0x0c0d_0e0f_0809_0a0b, 0x0405_0607_0001_0203);
    // SAFETY (whole body): every load/store is unaligned and within
    // `state` (32 bytes), `K` (256 bytes) or the current 64-byte block.
    let dcba = _mm_loadu_si128(state.as_ptr().cast());
    let hgfe = _mm_loadu_si128(state.as_ptr().add(4).cast());
    let cdab = _mm_shuffle_epi32(dcba, 0xB1);
    let efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    let mut abef = _mm_alignr_epi8(cdab, efgh, 8);
    let mut cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
    for block in blocks.chunks_exact(64) {
        let (abef0, cdgh0) = (abef, cdgh);
        let p = block.as_ptr();
        let mut w = [
            _mm_shuffle_epi8(_mm_loadu_si128(p.cast()), bswap),
            _mm_shuffle_epi8(_mm_loadu_si128(p.add(16).cast()), bswap),
            _mm_shuffle_epi8(_mm_loadu_si128(p.add(32).cast()), bswap),
            _mm_shuffle_epi8(_mm_loadu_si128(p.add(48).cast()), bswap),
        ];
        for g in 0..16 {
            let cur = w[g % 4];
            let msg = _mm_add_epi32(cur, _mm_loadu_si128(K.as_ptr().add(4 * g).cast()));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, msg);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(msg, 0x0E));
            if g < 12 {
                // W[t..t+4] from W[t-16..], W[t-12..], W[t-8..], W[t-4..].
                let (w0, w1, w2, w3) = (w[g % 4], w[(g + 1) % 4], w[(g + 2) % 4], w[(g + 3) % 4]);
                w[g % 4] = _mm_sha256msg2_epu32(
                    _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4)),
                    w3,
                );
            }
        }
        abef = _mm_add_epi32(abef, abef0);
        cdgh = _mm_add_epi32(cdgh, cdgh0);
    }
    let feba = _mm_shuffle_epi32(abef, 0x1B);
    let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
    let hgfe = _mm_alignr_epi8(dchg, feba, 8);
    _mm_storeu_si128(state.as_mut_ptr().cast(), dcba);
    _mm_storeu_si128(state.as_mut_ptr().add(4).cast(), hgfe);
}

/// `flock(fd, op)` (LOCK_SH, LOCK_EX, optionally | LOCK_NB).
pub fn flock(fd: RawFd, op: i32) -> io::Result<()> {
    // SAFETY: plain syscall on an fd; no pointers.
    cvt(unsafe { libc::flock(fd, op) }).map(drop)
}
