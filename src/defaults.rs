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
/// wakeup: an echo or a short prompt is a few bytes, after which another
/// read would be an EAGAIN syscall on every keystroke (measured with strace
/// -c). Kept far below an 80-column line, because under a flood a short
/// read is often followed by more: 1 KiB here cost ~20% of attached
/// throughput (more, smaller writes to the client).
pub const PTY_SHORT_READ_BYTES: usize = 64;

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

/// Connections accepted per wakeup at most, so a connect flood leaves the
/// program's output and the attached client their turn: twice the pending
/// bound, enough to take a burst of real clients in one go.
pub const MAX_ACCEPTS_PER_WAKEUP: usize = 64;

/// Largest window a peer can give the session: 1000 rows by 2000 columns
/// (a 2-byte-wide font on an 8K screen is ~1900 columns), so the model's
/// two screens stay under ~64 MiB however large a hello claims to be.
pub const MAX_ROWS: u16 = 1000;
/// See `MAX_ROWS`.
pub const MAX_COLS: u16 = 2000;

/// Refusals logged one by one per minute; beyond that they are counted and
/// summed up in one event per minute. Ten is plenty to see who knocked.
pub const DENIED_EVENTS_PER_MINUTE: u32 = 10;

/// Bound of a session's event log: a real session writes a few KiB (one
/// line per attach, detach, stop); 1 MiB is thousands of those, and
/// `inspect --events` reads it whole.
pub const EVENT_LOG_MAX_BYTES: u64 = 1024 * 1024;

/// After an attachment in which the program queried the terminal, how long
/// the client waits for the terminal's answer to its own fence query
/// (DSR 5) so that earlier answers are swallowed rather than typed into the
/// operator's shell: terminals answer in well under 50 ms even over ssh
/// across a continent; a terminal that never answers DA1 costs this once.
pub const FENCE_TIMEOUT_MS: u64 = 500;

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

/// How long the supervisor waits for a session's init to report that its
/// namespaces are set up and the program started: the setup is a dozen
/// syscalls and an exec (milliseconds); generous for a loaded machine.
pub const NAMESPACE_SETUP_TIMEOUT_MS: u64 = 10_000;

/// Passes over /proc when ending a session's descendants without
/// namespaces: each pass kills all it finds, so only processes forked
/// during a pass survive it; a few passes end any ordinary process tree,
/// and the bound keeps a fork bomb from holding the supervisor.
pub const KILL_DESCENDANTS_ROUNDS: usize = 16;

/// Files larger than this are recorded by rollback as present but not
/// captured (and never touched by a restore): 64 MiB holds any source
/// file, lockfile or asset an agent edits, while build outputs, datasets
/// and VM images above it would dominate the store and are better
/// regenerated or versioned elsewhere.
pub const ROLLBACK_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Most files one rollback capture may hold: 10x a large repository's
/// working tree (~20,000 files), well below what makes a capture take
/// minutes; more means a dependency or build directory slipped in.
pub const ROLLBACK_MAX_FILES: u64 = 200_000;

/// Most bytes one rollback capture may hold: 4 GiB, eight times the
/// 500 MB benchmark tree, still seconds to copy on an SSD.
pub const ROLLBACK_MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Extra time `nono stop` gives the supervisor of a rollback session to
/// capture the final state before it counts as hung: a changed file of the
/// 500 MB benchmark tree is re-read in well under this on a loaded disk,
/// while a truly hung supervisor is still killed within about a minute.
/// A session whose baseline took longer gets twice the baseline's time
/// (`rollback::final_capture_grace_secs`).
pub const ROLLBACK_FINAL_GRACE_SECS: u64 = 60;

/// A capture that runs longer than this prints progress on stderr (the
/// issue's "about a second").
pub const ROLLBACK_PROGRESS_AFTER_MS: u64 = 1_000;
/// Approval requests (`--ask`) waiting at once, at most; more are refused
/// (EACCES) without asking. A person answers a handful at a time; 32 keeps
/// `nono pending`'s reply under one frame even with 1 KiB paths, and bounds
/// what a flooding program can make the supervisor hold.
pub const MAX_PENDING_APPROVALS: usize = 32;

/// Threads of one process waiting on the same request, at most; more are
/// refused. A thread pool opening one file at once stays far below.
pub const MAX_APPROVAL_WAITERS: usize = 64;

/// Standing answers (`a`, `d`, `--always`) a session keeps; beyond it an
/// answer applies once. Far more paths than a person decides by hand.
pub const MAX_STANDING_ANSWERS: usize = 1024;

/// Directory grants `--ask` keeps open (one O_PATH fd each) for its fast
/// check that an open stays inside the grant; opens under grants beyond
/// these are resolved in full (a few syscalls more). Built-in profiles have
/// about 15; 64 fds is a small share of the usual 1024-fd limit.
pub const MAX_GRANT_DIRS: usize = 64;

/// Notifications handled per wakeup before the pty and sockets get their
/// turn: as many as the pending table holds, so a burst clears in one go.
pub const NOTIFY_WAKEUP_MAX: usize = 32;

/// While requests wait, how often the supervisor checks that their threads
/// still wait (the kernel does not wake the listener when one is killed):
/// a dead request disappears within a second, at one wakeup a second.
pub const APPROVAL_RECHECK_MS: u64 = 1_000;

/// How long a change in the waiting count may wait before the record is
/// rewritten (each write is two fsyncs): `ps` is a fifth of a second
/// behind at worst, and a flood costs five writes a second.
pub const APPROVAL_SAVE_MS: u64 = 200;

/// Approval events written per minute, at most; beyond it they are counted
/// and the count logged later. A person decides far fewer; a flooding
/// program cannot grow the event log by more than ~100 KiB a minute.
pub const APPROVAL_EVENTS_PER_MINUTE: u32 = 600;

/// Connections a request makes at most when the supervisor drops them
/// unread (it makes room that way under a connect flood): a real client
/// loses that race rarely, twice in a row almost never; a dead supervisor
/// refuses the connect instead, so this never delays a real failure.
pub const REQUEST_ATTEMPTS: usize = 3;

/// How long a command waits for a supervisor to answer its hello before
/// saying it is frozen: a live supervisor answers in well under a
/// millisecond; 5 s leaves room for a loaded machine and swapping.
pub const REPLY_TIMEOUT_MS: u64 = 5_000;
