//! Landlock: the access rights each ABI version offers, and the ruleset
//! for a resolved policy. The ruleset handles every right the running
//! kernel knows, so whatever is not granted is denied.

use super::{Policy, READ, WRITE};
use crate::sys::{self, LandlockRulesetAttr};
use std::os::fd::OwnedFd;

// Filesystem rights (`LANDLOCK_ACCESS_FS_*`), with the ABI that added them.
const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
const REMOVE_DIR: u64 = 1 << 4;
const REMOVE_FILE: u64 = 1 << 5;
const MAKE_CHAR: u64 = 1 << 6;
const MAKE_DIR: u64 = 1 << 7;
const MAKE_REG: u64 = 1 << 8;
const MAKE_SOCK: u64 = 1 << 9;
const MAKE_FIFO: u64 = 1 << 10;
const MAKE_BLOCK: u64 = 1 << 11;
const MAKE_SYM: u64 = 1 << 12;
/// ABI 2: link or rename a file into another directory.
const REFER: u64 = 1 << 13;
/// ABI 3: truncate(2), ftruncate(2), O_TRUNC.
const TRUNCATE: u64 = 1 << 14;
/// ABI 5: ioctl(2) on character and block devices.
const IOCTL_DEV: u64 = 1 << 15;

// Network rights (ABI 4).
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;

// Scopes (ABI 6).
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

/// What `read` grants: read files, list directories, execute.
const READ_RIGHTS: u64 = EXECUTE | READ_FILE | READ_DIR;

/// What `write` grants: write, truncate, create (no device nodes), remove,
/// rename and link, and device ioctls (terminals need them).
const WRITE_RIGHTS: u64 = WRITE_FILE
    | TRUNCATE
    | REMOVE_DIR
    | REMOVE_FILE
    | MAKE_DIR
    | MAKE_REG
    | MAKE_SOCK
    | MAKE_FIFO
    | MAKE_SYM
    | REFER
    | IOCTL_DEV;

/// The rights that apply to a file that is not a directory (the kernel
/// refuses the others in a rule on such a file).
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;

/// Filesystem rights the kernel with this ABI can restrict.
fn handled_fs(abi: u32) -> u64 {
    let mut all = EXECUTE
        | WRITE_FILE
        | READ_FILE
        | READ_DIR
        | REMOVE_DIR
        | REMOVE_FILE
        | MAKE_CHAR
        | MAKE_DIR
        | MAKE_REG
        | MAKE_SOCK
        | MAKE_FIFO
        | MAKE_BLOCK
        | MAKE_SYM;
    if abi >= 2 {
        all |= REFER;
    }
    if abi >= 3 {
        all |= TRUNCATE;
    }
    if abi >= 5 {
        all |= IOCTL_DEV;
    }
    all
}

/// The rights one rule grants, limited to what this ABI handles and to
/// what applies to the kind of file the path is.
fn rule_rights(access: u8, is_dir: bool, abi: u32) -> u64 {
    let mut r = 0;
    if access & READ != 0 {
        r |= READ_RIGHTS;
    }
    if access & WRITE != 0 {
        r |= WRITE_RIGHTS;
    }
    if !is_dir {
        r &= FILE_RIGHTS;
    }
    r & handled_fs(abi)
}

/// The kernel's Landlock ABI version, or a message saying why there is none.
pub fn abi() -> Result<u32, String> {
    sys::landlock_abi().map_err(|e| match e.raw_os_error() {
        Some(libc::ENOSYS) => "this kernel has no Landlock support".to_string(),
        Some(libc::EOPNOTSUPP) => {
            "Landlock is disabled on this system (add 'landlock' to the lsm= boot parameter)"
                .to_string()
        }
        _ => format!("cannot query Landlock: {e}"),
    })
}

/// Names of the protections a sandbox with this ABI and network mode
/// enforces, as recorded in `sandbox.enforced` (a stable interface).
pub fn protections(abi: u32, net_blocked: bool) -> Vec<&'static str> {
    let mut p = vec!["no-new-privs", "filesystem"];
    if abi >= 2 {
        p.push("refer");
    }
    if abi >= 3 {
        p.push("truncate");
    }
    if abi >= 5 {
        p.push("ioctl-dev");
    }
    if net_blocked {
        if abi >= 4 {
            p.push("tcp");
        }
        p.push("seccomp-sockets");
    }
    if abi >= 6 {
        p.push("scope-signal");
        p.push("scope-abstract-unix");
    }
    p
}

/// What this ABI leaves unrestricted that a reader would expect restricted.
pub fn not_enforced(abi: u32, net_blocked: bool) -> Vec<&'static str> {
    let mut n = Vec::new();
    if abi < 2 {
        n.push("renaming or linking files between directories is always refused (ABI < 2)");
    }
    if abi < 3 {
        n.push("truncating writable-elsewhere files (ABI < 3)");
    }
    if abi < 5 {
        n.push("ioctl on devices (ABI < 5)");
    }
    if net_blocked && abi < 4 {
        n.push("TCP bind/connect by Landlock (ABI < 4; the seccomp filter still refuses non-Unix sockets)");
    }
    if abi < 6 {
        n.push("signals to and abstract Unix sockets of processes outside the sandbox (ABI < 6)");
    }
    if !net_blocked {
        n.push("the network (mode allowed)");
    }
    n.push("stat, chmod, chown and other metadata changes on any path (no Landlock version)");
    n.push("connecting to named Unix sockets reachable by path (no Landlock version)");
    n
}

/// Build the ruleset for `policy` (rules already resolved to existing
/// paths). An error names the path that could not be added.
pub fn ruleset(policy: &Policy, abi: u32) -> Result<OwnedFd, String> {
    let net_blocked = policy.network_blocked;
    let attr = LandlockRulesetAttr {
        handled_access_fs: handled_fs(abi),
        handled_access_net: if net_blocked && abi >= 4 {
            NET_BIND_TCP | NET_CONNECT_TCP
        } else {
            0
        },
        scoped: if abi >= 6 {
            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        } else {
            0
        },
    };
    let rs = sys::landlock_create_ruleset(&attr)
        .map_err(|e| format!("cannot create a Landlock ruleset: {e}"))?;
    for rule in &policy.rules {
        let p = rule.path.display();
        let fd = sys::open_path(&rule.path)
            .map_err(|e| format!("cannot open {p} for the sandbox: {e}"))?;
        let ft = std::fs::File::from(fd.try_clone().map_err(|e| format!("{p}: {e}"))?)
            .metadata()
            .map_err(|e| format!("cannot inspect {p}: {e}"))?
            .file_type();
        let rights = rule_rights(rule.access, ft.is_dir(), abi);
        if rights == 0 {
            continue;
        }
        sys::landlock_add_path_rule(&rs, &fd, rights)
            .map_err(|e| format!("cannot grant {p} in the sandbox: {e}"))?;
    }
    Ok(rs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_follow_the_abi_and_the_file_kind() {
        assert_eq!(rule_rights(READ, true, 1), READ_RIGHTS);
        assert_eq!(rule_rights(READ, false, 1), EXECUTE | READ_FILE);
        assert_eq!(rule_rights(WRITE, false, 1), WRITE_FILE);
        assert_eq!(rule_rights(WRITE, false, 3), WRITE_FILE | TRUNCATE);
        assert_eq!(
            rule_rights(WRITE, false, 5),
            WRITE_FILE | TRUNCATE | IOCTL_DEV
        );
        // Device nodes are never creatable.
        assert_eq!(
            rule_rights(READ | WRITE, true, 7) & (MAKE_CHAR | MAKE_BLOCK),
            0
        );
        assert_eq!(handled_fs(7) & WRITE_RIGHTS, WRITE_RIGHTS);
    }
}
