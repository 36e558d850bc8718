//! Classic BPF over `struct seccomp_data`, shared by the seccomp filters
//! (`seccomp` for `--net blocked`, `notify` for `--ask`): the constants
//! they are written with, and (for tests) an interpreter that runs a
//! program the way the kernel does.

use libc::sock_filter;

/// `AUDIT_ARCH_*` of the architecture nono was built for: a process may
/// enter the kernel through another ABI (int 0x80 on x86-64 gives i386
/// numbers, where `socketcall` exists), so filters check it first.
#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH: u32 = 0xC000_003E; // EM_X86_64 | 64BIT | LE
/// `AUDIT_ARCH_*` of the architecture nono was built for.
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH: u32 = 0xC000_00B7; // EM_AARCH64 | 64BIT | LE

/// On x86-64, syscall numbers with this bit set are the x32 ABI: same
/// architecture value, other numbers. No native number has it.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offset of `nr` in `struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }`.
pub const OFF_NR: u32 = 0;
/// Offset of `arch` in `struct seccomp_data`.
pub const OFF_ARCH: u32 = 4;
/// Low 32 bits of args[0] (little-endian).
pub const OFF_ARG0_LOW: u32 = 16;

/// Offset of the low 32 bits of args[i] (little-endian; each arg is a u64).
pub const fn off_arg_low(i: usize) -> u32 {
    OFF_ARG0_LOW + 8 * i as u32
}

/// A = the 32-bit word at offset k.
pub const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
/// Jump on A == k.
pub const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
/// Jump on A >= k.
pub const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
/// Jump on A & k != 0.
pub const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
/// Return k (the seccomp action).
pub const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Let the call through.
pub const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

/// An instruction that does not jump.
pub const fn op(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A conditional jump: skip `jt` instructions if true, `jf` if false.
pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Run `prog` the way the kernel does, for one syscall (number `nr`
/// through ABI `arch`, first argument `arg0`).
#[cfg(test)]
pub fn eval(prog: &[sock_filter], arch: u32, nr: u32, arg0: u32) -> u32 {
    eval_args(prog, arch, nr, [arg0, 0, 0, 0, 0, 0])
}

/// `eval` with the low 32 bits of all six arguments.
#[cfg(test)]
pub fn eval_args(prog: &[sock_filter], arch: u32, nr: u32, args: [u32; 6]) -> u32 {
    let mut pc = 0;
    let mut a = 0u32;
    loop {
        let i = prog[pc];
        match i.code {
            LD_W_ABS => {
                a = match i.k {
                    OFF_NR => nr,
                    OFF_ARCH => arch,
                    k if k >= OFF_ARG0_LOW && (k - OFF_ARG0_LOW) % 8 == 0 => {
                        args[((k - OFF_ARG0_LOW) / 8) as usize]
                    }
                    k => panic!("load of offset {k}"),
                };
                pc += 1;
            }
            JEQ_K | JGE_K | JSET_K => {
                let hit = match i.code {
                    JEQ_K => a == i.k,
                    JGE_K => a >= i.k,
                    _ => a & i.k != 0,
                };
                pc += 1 + if hit { i.jt } else { i.jf } as usize;
            }
            RET_K => return i.k,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}
