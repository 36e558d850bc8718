//! Reading `/proc/<pid>/stat`: process start times (to tell a live
//! supervisor from a reused pid) and parent links (to tell whether a peer
//! runs inside a session).

use std::fs;

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Command name (`comm`, at most 15 bytes), as the process set it.
    pub comm: [u8; 16],
    /// State letter: R, S, D, T, Z (zombie), X (dead), …
    pub state: char,
    /// Parent process id.
    pub ppid: i32,
    /// Start time in clock ticks after boot; with the pid it names one process.
    pub start_time: u64,
}

/// Parse the stat line; the command name may contain spaces and ')' so we
/// split after the last ')'.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let name = line.get(open + 1..close)?.as_bytes();
    let mut comm = [0u8; 16];
    let n = name.len().min(15);
    comm[..n].copy_from_slice(&name[..n]);
    let rest = &line[close + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // After the name: state is field 3, ppid field 4, starttime field 22.
    Some(Stat {
        comm,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The stat of a live process, or None when there is no such process.
pub fn stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether `pid` is alive (not a zombie) and is the same process that
/// started at `start_time`.
pub fn is_same_process(pid: i32, start_time: u64) -> bool {
    stat(pid).is_some_and(|s| s.start_time == start_time && !matches!(s.state, 'Z' | 'X'))
}

/// The pid the process behind `pidfd` has now (the `Pid:` line of its
/// fdinfo), or None once it has been reaped (the kernel shows -1) or the
/// line cannot be read.
pub fn pidfd_pid(pidfd: i32) -> Option<i32> {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{pidfd}")).ok()?;
    let pid: i32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))?
        .trim()
        .parse()
        .ok()?;
    (pid > 0).then_some(pid)
}

/// The name every supervisor gives itself (`PR_SET_NAME`), so any process
/// can be told to run inside some session by walking its parents.
pub const SUPERVISOR_COMM: &str = "nono-supervisor";

impl Stat {
    /// The command name as text.
    pub fn comm(&self) -> &str {
        let n = self.comm.iter().position(|&b| b == 0).unwrap_or(16);
        std::str::from_utf8(&self.comm[..n]).unwrap_or("")
    }
}

/// Where a process runs, as far as sessions go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Neither it nor any ancestor is a live supervisor.
    Outside,
    /// It is, or descends from, the live supervisor with this pid.
    InSession(i32),
}

/// Whether `pid` is, or descends from, a live nono supervisor (a process
/// named [`SUPERVISOR_COMM`]), walking parent links from `/proc`. Each
/// parent must have started no later than its child, so a pid reused while
/// we walk breaks the chain instead of misleading us. None when it cannot be
/// told (a process on the way is gone, or the chain is inconsistent): the
/// caller fails closed.
pub fn origin(pid: i32) -> Option<Origin> {
    let mut cur = pid;
    let mut child_start = u64::MAX;
    for _ in 0..4096 {
        if cur == 0 {
            return Some(Origin::Outside);
        }
        let st = stat(cur)?;
        if st.start_time > child_start || matches!(st.state, 'Z' | 'X') {
            return None;
        }
        if st.comm() == SUPERVISOR_COMM {
            return Some(Origin::InSession(cur));
        }
        if cur == 1 {
            return Some(Origin::Outside);
        }
        child_start = st.start_time;
        cur = st.ppid;
    }
    None
}

/// Whether `pid` is `ancestor` or one of its descendants (walking parent
/// links, bounded so a racing /proc cannot loop us forever). None when it
/// cannot be told: `pid`, or a process between it and init, is gone.
pub fn is_self_or_descendant(pid: i32, ancestor: i32) -> Option<bool> {
    let mut cur = pid;
    for _ in 0..4096 {
        if cur == ancestor {
            return Some(true);
        }
        if cur <= 1 {
            return Some(false);
        }
        cur = stat(cur)?.ppid;
    }
    None
}

/// Every process as (pid, ppid), from one pass over /proc; zombies too
/// when `zombies`.
fn all_parents(zombies: bool) -> Vec<(i32, i32)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let s = stat(pid)?;
            (zombies || !matches!(s.state, 'Z' | 'X')).then_some((pid, s.ppid))
        })
        .collect()
}

/// The children of `pid` (as this /proc numbers them), zombies included.
pub fn children(pid: i32) -> Vec<i32> {
    // One small file where the kernel has CONFIG_PROC_CHILDREN, else a scan.
    if let Ok(list) = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        return list
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    all_parents(true)
        .into_iter()
        .filter(|&(_, ppid)| ppid == pid)
        .map(|(p, _)| p)
        .collect()
}

/// Every live descendant of `pid`, not counting itself.
pub fn descendants(pid: i32) -> Vec<i32> {
    let all = all_parents(false);
    let mut found = vec![pid];
    let mut i = 0;
    // Bounded by the snapshot, so a pid reused mid-scan cannot loop us.
    while i < found.len() && found.len() <= all.len() + 1 {
        let parent = found[i];
        found.extend(all.iter().filter(|&&(_, pp)| pp == parent).map(|&(p, _)| p));
        i += 1;
    }
    found.remove(0);
    found
}

/// A field of `/proc/<pid>/status` (`Tgid`, `Umask`, …) as text, trimmed.
pub fn status_field(pid: i32, name: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == name).then(|| v.trim().to_string())
    })
}

/// The thread group (process) a thread belongs to.
pub fn tgid(tid: i32) -> Option<i32> {
    status_field(tid, "Tgid")?.parse().ok()
}

/// A process's umask (Linux 4.7+ shows it in status).
pub fn umask(pid: i32) -> Option<u32> {
    u32::from_str_radix(&status_field(pid, "Umask")?, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_pidfd_names_the_connecting_process() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&a);
        // Kernels before 6.5 have no SO_PEERPIDFD; the supervisor then
        // relies on the start-time checks alone.
        if let Some(pidfd) = crate::sys::peer_pidfd(fd).unwrap() {
            let pidfd = std::os::fd::AsRawFd::as_raw_fd(&pidfd);
            assert_eq!(pidfd_pid(pidfd), Some(std::process::id() as i32));
        }
    }

    #[test]
    fn a_name_with_parens_and_spaces_does_not_confuse_the_parser() {
        let line =
            "4821 (we (ird) name) S 77 4821 4821 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                comm: *b"we (ird) name\0\0\0",
                state: 'S',
                ppid: 77,
                start_time: 123456
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn we_are_our_own_descendant_and_alive() {
        let me = std::process::id() as i32;
        let s = stat(me).expect("own stat");
        assert!(is_same_process(me, s.start_time));
        assert!(!is_same_process(me, s.start_time + 1));
        assert_eq!(is_self_or_descendant(me, s.ppid), Some(true));
        assert_eq!(is_self_or_descendant(s.ppid, me), Some(false));
        assert_eq!(tgid(me), Some(me));
        assert!(umask(me).is_some_and(|m| m <= 0o777));
        // A pid that does not exist cannot be vouched for.
        assert_eq!(is_self_or_descendant(i32::MAX, me), None);
    }
}
