//! Every tunable in one place, each with how its value was chosen.

/// Grace given to a stopped child between SIGTERM and SIGKILL; matches
/// `docker stop` and systemd's shorter timeouts, long enough for an agent to
/// save its state.
pub const STOP_TIMEOUT_SECS: u64 = 10;

/// How long `nono stop` waits beyond the stop timeout for the supervisor to
/// finish (drain the pty, write the record) before killing the supervisor.
pub const STOP_SUPERVISOR_GRACE_SECS: u64 = 5;

/// Detach sequence when the config does not set one: Ctrl-] is telnet's and
/// the original nono's escape, and almost no program binds it.
pub const DETACH_SEQUENCE: &str = "ctrl-] d";

/// Main-screen history lines the terminal model keeps (issue: 10,000).
pub const SCROLLBACK_LINES: usize = 10_000;

/// Size of a pty read: 64 KiB matches the kernel's pty buffer (a read
/// returns at most the line discipline's 4 KiB, but asking for more costs
/// nothing).
pub const PTY_READ_BYTES: usize = 64 * 1024;

/// A pty read shorter than this ends the supervisor's reading for the
/// wakeup: under a flood reads return the line discipline's ~4 KiB, while
/// an echo or a prompt is a few bytes, after which another read would be
/// an EAGAIN syscall on every keystroke (measured with strace -c).
pub const PTY_SHORT_READ_BYTES: usize = 1024;

/// Program output the supervisor reads per wakeup before it serves its
/// other fds again: sixteen full pty reads, so a flood costs few polls,
/// while keystrokes and new connections wait at most ~0.3 ms (kernel read
/// plus model at 2026-11 speeds) behind it.
pub const PTY_WAKEUP_BYTES: usize = 64 * 1024;

/// Largest read the supervisor makes from the attached client's socket:
/// keystrokes arrive a few bytes at a time, and 16 KiB takes a large paste
/// in few reads (the pty takes at most ~4 KiB per write anyway).
pub const CLIENT_INPUT_READ_BYTES: usize = 16 * 1024;

/// Largest read the attach client makes from the supervisor's socket: four
/// 64 KiB frames, so a backlog reaches the terminal in few large writes.
pub const CLIENT_READ_BYTES: usize = 256 * 1024;

/// Output queued for an attached client beyond which the supervisor stops
/// reading the program's output until the client catches up (as a real
/// terminal would throttle it): a few screens of a fast program, small
/// enough that a stalled client costs little memory.
pub const CLIENT_QUEUE_MAX_BYTES: usize = 1024 * 1024;

/// How long a backlogged client may hold the program back. A client that
/// cannot take its backlog in this time (a stopped terminal, a dead link,
/// anything under ~2 MiB/s) has the backlog dropped and is redrawn from the
/// model once it drains; the program never waits longer than this. Half a
/// second is far above a healthy terminal's ~20 ms for 1 MiB and short
/// enough that an agent barely notices.
pub const CLIENT_STALL_MS: u64 = 500;

/// Largest frame payload either side accepts; output is chunked below this.
/// 64 KiB keeps one pty read in one frame.
pub const MAX_FRAME_PAYLOAD: usize = 64 * 1024;

/// How long a new connection may take to send its hello before it is dropped,
/// so a stalled or hostile peer cannot hold a slot.
pub const HELLO_TIMEOUT_MS: u64 = 2_000;

/// Connections that have not finished their hello, at most; more are refused
/// at once so a connect flood cannot grow the supervisor.
pub const MAX_PENDING_CONNECTIONS: usize = 32;

/// How long an exiting supervisor keeps flushing final output to the attached
/// client before giving up on it.
pub const EXIT_FLUSH_TIMEOUT_MS: u64 = 5_000;

/// How long the launcher waits for a new supervisor to report ready; exec of
/// a large binary on a loaded machine stays well under this.
pub const START_TIMEOUT_MS: u64 = 30_000;

/// Window size used when the caller has no terminal (scripts, CI).
pub const FALLBACK_ROWS: u16 = 24;
/// See `FALLBACK_ROWS`.
pub const FALLBACK_COLS: u16 = 80;

/// Shortest id prefix shown to humans: 6 hex digits make a collision among
/// a few hundred sessions unlikely, and we lengthen it when one happens.
pub const SHORT_ID_MIN: usize = 6;

/// Largest record or config file we read; real ones are under 4 KiB, so
/// anything larger is corrupt or hostile.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Largest saved history `nono logs` reads: 1,000,000 lines (the most
/// scrollback allowed) of about 100 bytes, rounded up.
pub const MAX_LOG_BYTES: u64 = 128 * 1024 * 1024;
