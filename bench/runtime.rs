//! Runtime benchmarks: what a nono session costs compared with the same work
//! done without nono, each reported as a ratio (nono ÷ bare) in one table.
//!
//! 1. Attached throughput: a program prints fixed-size 80-byte lines on a
//!    real pty whose master this bench drains as fast as it can; bare runs
//!    the program on that pty, nono runs `nono run -- <program>` on it, and
//!    each installed peer (GNU screen, tmux, dtach) a new attached session.
//! 2. Keystroke echo round trip: one byte written to the pty master, timed
//!    until it comes back; the echo is done by `cat` under `stty raw -echo`
//!    on every side, so the only difference is the relay: nono's, each
//!    installed peer's, or none (bare): fresh starts, keystrokes interleaved.
//! 3. Detached start: `nono run --detached -- sleep 1000` until it returns,
//!    against opening a pty and spawning `sleep 1000` on it (fork+exec).
//! 4. `nono ps --all` over synthetic exited records, against `cat` of the
//!    same record files.
//! 5. Idle supervisor RSS, against the RSS of a bare `sleep`.
//! 6. Terminal model parse speed over plain 80-column text and over
//!    escape-heavy full-screen output, fed in 64 KiB chunks, against a bare
//!    pass over the same bytes that counts newlines.
//! 7. Terminal model render time for 10,000 lines of scrollback plus a full
//!    50x200 screen with attributes (no bare side).
//! 8. Supervisor RSS once a detached session has printed 100 MiB, against
//!    the RSS of an idle supervisor.
//! 9. Attach to first full frame: `nono attach` on a fresh pty until the
//!    session's screen (after thousands of lines) has arrived, against `cat`
//!    of the same text to a fresh pty.
//! 10. Rollback (bench/rollback.rs): first capture against `cp -a`, an
//!     unchanged capture against a bare stat walk, a restore of changed
//!     files against copying them back, SHA-256 against sha256sum/OpenSSL.
//!
//! Every benchmark runs in its own HOME/XDG_STATE_HOME/XDG_CONFIG_HOME under
//! /tmp and stops every session it started (peers' too). Rows measured
//! against peers are repeated side by side in a second table; a peer that
//! is not installed says so. A FAILED row makes the bench exit non-zero. `NONO_BENCH_QUICK=1` shrinks the
//! sizes for a smoke test; `NONO_BIN` measures another binary;
//! `NONO_BENCH_ONLY=throughput,echo` runs only the benchmarks whose names
//! contain one of the given words (for repeated runs of one case).

mod rollback;

use nanoserde::SerJson;
use nono::procfs;
use nono::registry::{self, Record, RECORD_VERSION};
use nono::sys::{self, PollFd, WinSize, POLLIN};
use nono::term::Terminal;
use std::fmt::Write as _;
use std::fs;
use std::hint::black_box;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Errors are messages: a failed benchmark becomes a row saying so.
type Res<T> = Result<T, String>;

/// Size of the pty every benchmark uses (a common default terminal).
const ROWS: u16 = 24;
/// See `ROWS`.
const COLS: u16 = 80;

/// One output line: 79 letters and a newline, so lines fill the 80-column
/// terminal without wrapping and the sizes below divide evenly.
const LINE_CHARS: usize = 79;

/// Longest the bench waits for output or an exit before declaring a hang.
const HANG: Duration = Duration::from_secs(30);

/// How much work one run does.
struct Sizes {
    /// Whether this is the quick smoke-test mode.
    quick: bool,
    /// Bytes the throughput program prints (before the pty adds CRs).
    throughput_bytes: u64,
    /// Throughput runs per side; the median is reported.
    throughput_reps: usize,
    /// Timed keystrokes per side.
    keystrokes: usize,
    /// Detached starts per side.
    starts: usize,
    /// Synthetic records for `ps`.
    records: usize,
    /// Timed `ps` runs per side.
    ps_reps: usize,
    /// Bytes of each corpus fed to the terminal model.
    parse_bytes: usize,
    /// Timed passes over each corpus per side; the median is reported.
    parse_reps: usize,
    /// Timed renders; the median is reported.
    render_reps: usize,
    /// Bytes the session prints before its RSS is read.
    output_bytes: u64,
    /// Lines of history in the session attached to.
    attach_lines: usize,
    /// Timed attaches (and `cat`s) per side.
    attaches: usize,
}

impl Sizes {
    /// Full sizes, or small ones when `NONO_BENCH_QUICK` is set (not "0").
    fn from_env() -> Sizes {
        let quick = std::env::var("NONO_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if quick {
            Sizes {
                quick,
                throughput_bytes: 20 * 1024 * 1024,
                throughput_reps: 1,
                keystrokes: 100,
                starts: 10,
                records: 100,
                ps_reps: 5,
                parse_bytes: 8 * 1024 * 1024,
                parse_reps: 1,
                render_reps: 3,
                output_bytes: 10 * 1024 * 1024,
                attach_lines: 5000,
                attaches: 3,
            }
        } else {
            Sizes {
                quick,
                throughput_bytes: 200 * 1024 * 1024,
                throughput_reps: 3,
                keystrokes: 500,
                starts: 50,
                records: 1000,
                ps_reps: 10,
                parse_bytes: 64 * 1024 * 1024,
                parse_reps: 3,
                render_reps: 5,
                output_bytes: 100 * 1024 * 1024,
                attach_lines: 5000,
                attaches: 10,
            }
        }
    }
}

/// One line of the results table.
struct Row {
    /// What was measured.
    bench: String,
    /// nono's figure, with its unit.
    nono: String,
    /// The bare figure, with its unit.
    bare: String,
    /// nono ÷ bare.
    ratio: String,
    /// The peers' figures in `PEERS` order, each with nono ÷ it (or "not
    /// installed"); empty for benchmarks without peers.
    peers: Vec<String>,
}

impl Row {
    /// A row whose ratio is nono ÷ bare.
    fn new(bench: &str, nono: String, bare: String, nono_v: f64, bare_v: f64) -> Row {
        Row {
            bench: bench.into(),
            nono,
            bare,
            ratio: ratio(nono_v, bare_v),
            peers: Vec::new(),
        }
    }

    /// A row for a benchmark that could not run.
    fn failed(bench: &str) -> Row {
        Row {
            bench: bench.into(),
            nono: FAILED.into(),
            bare: "-".into(),
            ratio: "-".into(),
            peers: Vec::new(),
        }
    }

    /// The cells that say a measurement failed (a bug, whoever's side it is).
    fn failures(&self) -> usize {
        std::iter::once(&self.nono)
            .chain(&self.peers)
            .filter(|c| c.starts_with(FAILED))
            .count()
    }
}

/// What a cell says when its measurement could not be made.
const FAILED: &str = "FAILED";

/// `a ÷ b` as a ratio cell, or "-" without a b.
fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

/// Lines printed under the table: method notes and anything odd seen.
type Notes = Vec<String>;

fn main() {
    let started = Instant::now();
    let sizes = Sizes::from_env();
    // Orphaned supervisors are reparented to us, so we reap them whatever init does.
    if let Err(e) = sys::set_child_subreaper() {
        eprintln!("runtime bench: cannot become a subreaper ({e}); exited supervisors may linger as zombies");
    }
    let nono = nono_bin();
    if !nono.is_file() {
        eprintln!(
            "runtime bench: no nono binary at {} (build it, or set NONO_BIN)",
            nono.display()
        );
        std::process::exit(1);
    }
    print_header(&sizes, &nono);
    let mut rows = Vec::new();
    let mut notes = Notes::new();
    type Bench = fn(&Sizes, &Path, &mut Notes) -> Res<Vec<Row>>;
    // A slice, not an array: adding a benchmark touches one line.
    let benches: &[(&str, Bench)] = &[
        ("attached throughput", bench_throughput),
        ("keystroke echo", bench_echo),
        ("detached start", bench_start),
        ("detached start, namespaces", bench_start_namespaces),
        ("ps --all", bench_ps),
        ("idle supervisor RSS", bench_rss),
        ("model parse, ASCII-heavy", bench_parse_text),
        ("model parse, escape-heavy", bench_parse_escapes),
        ("model render", bench_render),
        ("supervisor RSS after output", bench_rss_output),
        ("attach to first full frame", bench_attach_frame),
        ("rollback capture and restore", rollback::bench_rollback),
        ("rollback sha256", rollback::bench_sha256),
        ("open inside the grant, --ask", bench_ask_open),
        ("keystroke echo while a request waits", bench_ask_echo),
        (
            "attached throughput while a request waits",
            bench_ask_throughput,
        ),
    ];
    let only = std::env::var("NONO_BENCH_ONLY").unwrap_or_default();
    let wanted = |name: &str| {
        only.trim().is_empty()
            || only
                .split(',')
                .map(str::trim)
                .any(|w| !w.is_empty() && name.contains(w))
    };
    for &(name, f) in benches.iter().filter(|(name, _)| wanted(name)) {
        eprintln!("runtime bench: {name}...");
        match f(&sizes, &nono, &mut notes) {
            Ok(r) => rows.extend(r),
            Err(e) => {
                notes.push(format!("{name} FAILED: {e}"));
                rows.push(Row::failed(name));
            }
        }
    }
    print_table(&rows);
    println!();
    for n in &notes {
        println!("- {n}");
    }
    println!();
    println!("Total bench time: {:.1} s", started.elapsed().as_secs_f64());
    // A row that cannot run is a bug: fail `make bench` (and so CI) on it.
    let failed: usize = rows.iter().map(Row::failures).sum();
    if failed > 0 {
        eprintln!("runtime bench: {failed} benchmark(s) FAILED (see the notes above)");
        std::process::exit(1);
    }
}

// --- Peers -----------------------------------------------------------------

/// A tool of nono's shape (a client on the user's terminal, a socket, a
/// server that owns the program's pty), measured side by side with nono
/// where it is installed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// GNU screen.
    Screen,
    /// tmux.
    Tmux,
    /// dtach (a relay without a terminal model, like nono's floor).
    Dtach,
}

/// Every peer, in the order of the peers table's columns.
const PEERS: [Peer; 3] = [Peer::Screen, Peer::Tmux, Peer::Dtach];

/// Session name given to screen, so cleanup can find it.
const SCREEN_SESSION: &str = "nono-bench";

impl Peer {
    /// Its name in the table.
    fn name(self) -> &'static str {
        match self {
            Peer::Screen => "GNU screen",
            Peer::Tmux => "tmux",
            Peer::Dtach => "dtach",
        }
    }

    /// Its executable.
    fn program(self) -> &'static str {
        match self {
            Peer::Screen => "screen",
            Peer::Tmux => "tmux",
            Peer::Dtach => "dtach",
        }
    }

    /// Whether its executable is on PATH.
    fn installed(self) -> bool {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|d| {
                fs::metadata(d.join(self.program()))
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        })
    }
}

/// One side of a comparison: what runs the program on the bench's pty.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// `nono run -- PROGRAM`.
    Nono,
    /// A new attached session of a peer running PROGRAM.
    Peer(Peer),
    /// PROGRAM straight on the pty.
    Bare,
}

impl Side {
    /// Its name in notes and errors.
    fn name(self) -> &'static str {
        match self {
            Side::Nono => "nono",
            Side::Peer(p) => p.name(),
            Side::Bare => "bare",
        }
    }
}

/// nono, every installed peer and the bare pty.
fn sides() -> Vec<Side> {
    std::iter::once(Side::Nono)
        .chain(PEERS.into_iter().filter(|p| p.installed()).map(Side::Peer))
        .chain(std::iter::once(Side::Bare))
        .collect()
}

/// The peers' cells of a row: each side's figure with nono ÷ it, in
/// `PEERS` order; `value` gives a side's figure (None: it failed).
fn peer_cells(
    sides: &[Side],
    nono_v: f64,
    value: impl Fn(Side) -> Option<f64>,
    show: impl Fn(f64) -> String,
) -> Vec<String> {
    PEERS
        .iter()
        .map(|&p| {
            if !sides.contains(&Side::Peer(p)) {
                return "not installed".into();
            }
            match value(Side::Peer(p)) {
                Some(v) => format!("{} ({})", show(v), ratio(nono_v, v)),
                None => FAILED.into(),
            }
        })
        .collect()
}

// --- 1. Attached throughput ------------------------------------------------

/// Median MiB/s of a line-printing program on a pty: bare, under `nono
/// run`, and in each installed peer.
fn bench_throughput(s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let sb = Sandbox::new("throughput", nono)?;
    let line = "a".repeat(LINE_CHARS);
    let script = format!("yes {line} | head -c {}", s.throughput_bytes);
    // ONLCR on the program's pty turns each "\n" into "\r\n".
    let expected = s.throughput_bytes + s.throughput_bytes / (LINE_CHARS as u64 + 1);
    let sides = sides();
    let mut runs: Vec<Res<Vec<(Duration, u64)>>> = sides.iter().map(|_| Ok(Vec::new())).collect();
    for rep in 0..s.throughput_reps {
        // Rotate the order so drift in machine load hits every side alike.
        for k in 0..sides.len() {
            let i = (k + rep) % sides.len();
            if runs[i].is_err() {
                continue;
            }
            let program = ["sh", "-c", script.as_str()];
            let run = match sides[i] {
                Side::Nono => drain_run(sb.nono(&["run", "--", "sh", "-c", &script])),
                Side::Peer(peer) => sb.peer(peer, &program).and_then(drain_run),
                Side::Bare => drain_run(sb.bare("sh", &program[1..])),
            };
            match run {
                Ok(r) => runs[i].iter_mut().for_each(|v| v.push(r)),
                Err(e) => runs[i] = Err(format!("run {}: {e}", rep + 1)),
            }
        }
    }
    sb.stop_all(notes)?;
    sb.stop_peers();
    let of = |side: Side| -> Res<&Vec<(Duration, u64)>> {
        let i = sides.iter().position(|&x| x == side).ok_or("not run")?;
        runs[i]
            .as_ref()
            .map_err(|e| format!("{}: {e}", side.name()))
    };
    // nono and bare relay every byte, so their rate counts what arrived;
    // screen and tmux draw screens (tmux skips what scrolls past), so a
    // peer's rate is the program's bytes over the time until it is done.
    let rate = |runs: &[(Duration, u64)], count_delivered: bool| -> (f64, u64) {
        let mut r: Vec<f64> = runs
            .iter()
            .map(|(d, n)| mib(if count_delivered { *n } else { expected }) / d.as_secs_f64())
            .collect();
        r.sort_by(f64::total_cmp);
        (r[r.len() / 2], runs.iter().map(|x| x.1).min().unwrap_or(0))
    };
    let (bare_rate, bare_min) = rate(of(Side::Bare)?, true);
    let (nono_rate, nono_min) = rate(of(Side::Nono)?, true);
    for side in sides.iter().filter(|s| matches!(s, Side::Peer(_))) {
        if let Err(e) = of(*side) {
            notes.push(format!("throughput FAILED for {e}"));
        }
    }
    for (who, got) in [("bare", bare_min), ("nono", nono_min)] {
        if got < expected {
            notes.push(format!(
                "throughput: {who} delivered only {got} of {expected} bytes in its worst run \
                 ({} lost; for nono: a client backlog over CLIENT_QUEUE_MAX_BYTES is dropped for \
                 a redraw from the terminal model); rates count delivered bytes",
                expected - got
            ));
        }
    }
    notes.push(format!(
        "throughput: {} MiB of {}-byte lines, median of {} run(s) per side in a rotated order; \
         ratio < 1 means nono is slower; a peer's rate is the program's bytes over the time until \
         its client exits (screen and tmux redraw rather than relay, tmux skipping what scrolls past)",
        s.throughput_bytes >> 20,
        LINE_CHARS + 1,
        s.throughput_reps
    ));
    let mut row = Row::new(
        &format!("attached throughput, {} MiB", s.throughput_bytes >> 20),
        format!("{nono_rate:.0} MiB/s"),
        format!("{bare_rate:.0} MiB/s"),
        nono_rate,
        bare_rate,
    );
    row.peers = peer_cells(
        &sides,
        nono_rate,
        |side| of(side).ok().map(|r| rate(r, false).0),
        |v| format!("{v:.0} MiB/s"),
    );
    Ok(vec![row])
}

/// Run `cmd` on a fresh pty, read everything it prints until the pty
/// closes, and check it succeeded; returns the elapsed time and byte count.
fn drain_run(cmd: Command) -> Res<(Duration, u64)> {
    let t0 = Instant::now();
    let mut p = OnPty::spawn(cmd)?;
    let n = drain(&p.master)?;
    let elapsed = t0.elapsed();
    let st = p.wait(HANG)?;
    if !st.success() {
        return Err(format!("the program exited with {st}"));
    }
    Ok((elapsed, n))
}

/// Read the master until every slave fd is closed (EIO); returns the byte count.
fn drain(master: &OwnedFd) -> Res<u64> {
    let fd = master.as_raw_fd();
    // Large reads: the kernel hands out at most what it has, so size only caps.
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        match sys::read(fd, &mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Poll only when empty, so a fast producer costs one syscall per read.
                let mut fds = [PollFd::new(fd, POLLIN)];
                let ready = sys::poll(&mut fds, HANG.as_millis() as i32).map_err(err("poll"))?;
                if ready == 0 {
                    return Err(format!(
                        "no output for {} s after {total} bytes",
                        HANG.as_secs()
                    ));
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EIO) => return Ok(total),
            Err(e) => return Err(format!("read pty: {e}")),
        }
    }
}

// --- 2. Keystroke echo -----------------------------------------------------

/// The echoing program: raw mode so `cat` gets each byte at once and the
/// kernel does not echo it, then a ready marker carrying its pid (`cat`'s,
/// after the exec), so a peer's session can be ended through it.
const ECHO_SCRIPT: &str = "stty raw -echo && printf 'R%s.' $$ && exec cat";

/// Keystrokes sent before timing starts (caches, page faults, first wakeups).
const ECHO_WARMUP: usize = 20;

/// Rounds of the echo benchmark: each starts every side afresh, in an
/// order rotated per round, so machine load that drifts hits all alike.
const ECHO_ROUNDS: usize = 3;

/// Median and p99 of one-byte round trips through `cat`: under `nono run`,
/// in each installed peer, and straight on the pty.
fn bench_echo(s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let sb = Sandbox::new("echo", nono)?;
    let sides = sides();
    let mut samples: Vec<Res<Vec<Duration>>> = sides.iter().map(|_| Ok(Vec::new())).collect();
    for round in 0..ECHO_ROUNDS {
        // Every side still working starts afresh, all at once.
        let mut runs = Vec::new();
        for (i, &side) in sides.iter().enumerate() {
            if samples[i].is_ok() {
                match start_echo(&sb, side) {
                    Ok(p) => runs.push((i, p)),
                    Err(e) => samples[i] = Err(format!("round {}: {e}", round + 1)),
                }
            }
        }
        let mut ready = Vec::new();
        for (i, p) in runs {
            match wait_for_ready(p.master.as_raw_fd(), HANG) {
                Ok(pid) => ready.push((i, p, pid)),
                Err(e) => {
                    samples[i] = Err(format!("round {}: ready marker: {e}", round + 1));
                    end_echo(&sb, sides[i], p, None, notes)?;
                }
            }
        }
        // One keystroke per side in turn, the order rotated each time, so
        // load that comes and goes hits every side alike.
        for k in 0..ECHO_WARMUP + s.keystrokes {
            for j in 0..ready.len() {
                let (i, p, _) = &ready[(j + k) % ready.len()];
                if samples[*i].is_err() {
                    continue;
                }
                match echo_once(p.master.as_raw_fd(), k) {
                    Ok(t) if k >= ECHO_WARMUP => samples[*i].iter_mut().for_each(|v| v.push(t)),
                    Ok(_) => {}
                    Err(e) => samples[*i] = Err(format!("round {}: {e}", round + 1)),
                }
            }
        }
        for (i, p, pid) in ready {
            end_echo(&sb, sides[i], p, Some(pid), notes)?;
        }
    }
    sb.stop_peers();
    let of = |side: Side| -> Res<&Vec<Duration>> {
        let i = sides.iter().position(|&x| x == side).ok_or("not run")?;
        samples[i]
            .as_ref()
            .map_err(|e| format!("{}: {e}", side.name()))
    };
    for side in sides.iter().filter(|s| matches!(s, Side::Peer(_))) {
        if let Err(e) = of(*side) {
            notes.push(format!("echo FAILED for {e}"));
        }
    }
    let (via, bare) = (of(Side::Nono)?, of(Side::Bare)?);
    let mut rows = Vec::new();
    for (label, pct) in [("median", 50.0), ("p99", 99.0)] {
        let (nv, bv) = (percentile(via, pct), percentile(bare, pct));
        let mut row = Row::new(
            &format!("keystroke echo, {label}"),
            us(nv),
            us(bv),
            nv.as_secs_f64(),
            bv.as_secs_f64(),
        );
        row.peers = peer_cells(
            &sides,
            nv.as_secs_f64(),
            |side| of(side).ok().map(|t| percentile(t, pct).as_secs_f64()),
            |v| us(Duration::from_secs_f64(v)),
        );
        rows.push(row);
    }
    let median = percentile(via, 50.0);
    let behind: Vec<&str> = sides
        .iter()
        .filter(|&&side| matches!(side, Side::Peer(Peer::Screen | Peer::Tmux)))
        .filter(|&&side| of(side).is_ok_and(|t| percentile(t, 50.0) < median))
        .map(|side| side.name())
        .collect();
    notes.push(format!(
        "echo: {ECHO_ROUNDS} rounds of {} keystrokes per side after {ECHO_WARMUP} warm-up, every side \
         started afresh each round and the keystrokes interleaved (one per side in turn, the order \
         rotated each time), samples pooled; echoed by `cat` under `stty raw \
         -echo`; peers in new attached sessions (screen without its startup message, tmux without \
         its status line, dtach -E -z -r none); ratios are nono ÷ the other side, > 1 means nono is slower",
        s.keystrokes
    ));
    notes.push(format!(
        "echo goals: nono's median at or below screen's and tmux's: {}; p99 {:.1}x nono's median (goal <= 3x)",
        if behind.is_empty() {
            "met".to_string()
        } else {
            format!("NOT met ({} faster)", behind.join(", "))
        },
        percentile(via, 99.0).as_secs_f64() / median.as_secs_f64().max(1e-9)
    ));
    Ok(rows)
}

/// Start the echoing program on one side on a fresh pty.
fn start_echo(sb: &Sandbox, side: Side) -> Res<OnPty> {
    let program = ["sh", "-c", ECHO_SCRIPT];
    let cmd = match side {
        Side::Nono => sb.nono(&["run", "--", "sh", "-c", ECHO_SCRIPT]),
        Side::Peer(peer) => sb.peer(peer, &program)?,
        Side::Bare => sb.bare("sh", &program[1..]),
    };
    OnPty::spawn(cmd)
}

/// End one side's echoing program (`pid`, from its ready marker) and its
/// session; dropping `p` kills the client (and, bare, `cat` itself).
fn end_echo(
    sb: &Sandbox,
    side: Side,
    mut p: OnPty,
    pid: Option<i32>,
    notes: &mut Notes,
) -> Res<()> {
    match side {
        Side::Nono => {
            // Ending the session ends the client with it (status 128+9).
            sb.stop_all(notes)?;
            let _ = drain_for(&p.master, Duration::from_millis(100));
            if p.wait(Duration::from_secs(10)).is_err() {
                notes.push(
                    "echo: the attached client did not exit after its session was stopped".into(),
                );
            }
        }
        Side::Peer(peer) => {
            // The program's end ends the peer's session, its server and client.
            if let Some(pid) = pid {
                let _ = sys::kill(pid, libc::SIGKILL);
                if drain(&p.master).is_err() || p.wait(Duration::from_secs(10)).is_err() {
                    notes.push(format!(
                        "echo: the {} client did not exit after its program was killed",
                        peer.name()
                    ));
                }
            }
        }
        Side::Bare => {}
    }
    Ok(())
}

/// Read the (non-blocking) master until the echo program's ready marker
/// (`R<pid>.`) arrives; its pid.
fn wait_for_ready(fd: i32, timeout: Duration) -> Res<i32> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sys::read(fd, &mut buf) {
            Ok(0) => return Err("the pty closed".into()),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if let Some(pid) = find_ready_marker(&got) {
                    return Ok(pid);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(format!(
                        "not within {timeout:?}; got {:?}",
                        String::from_utf8_lossy(&got[got.len().saturating_sub(200)..])
                    ));
                }
                let mut fds = [PollFd::new(fd, POLLIN)];
                sys::poll(&mut fds, left.as_millis() as i32 + 1).map_err(err("poll"))?;
            }
            Err(e) => return Err(format!("read pty: {e}")),
        }
    }
}

/// The pid in the first `R<digits>.` of `bytes`.
fn find_ready_marker(bytes: &[u8]) -> Option<i32> {
    bytes.iter().enumerate().find_map(|(i, &b)| {
        if b != b'R' {
            return None;
        }
        let rest = &bytes[i + 1..];
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || rest.get(digits) != Some(&b'.') {
            return None;
        }
        std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
    })
}

/// Time `n` single-byte echoes (after the warm-up) on a ready echo program.
fn echo_round_trips(fd: i32, n: usize) -> Res<Vec<Duration>> {
    let mut times = Vec::with_capacity(n);
    for i in 0..ECHO_WARMUP + n {
        let t = echo_once(fd, i)?;
        if i >= ECHO_WARMUP {
            times.push(t);
        }
    }
    Ok(times)
}

/// Time keystroke number `i`: one byte written, until it comes back.
fn echo_once(fd: i32, i: usize) -> Res<Duration> {
    // Letters only: no control character the client or pty would act on.
    let key = b'a' + (i % 26) as u8;
    let t0 = Instant::now();
    sys::write_all(fd, &[key]).map_err(err("write pty"))?;
    wait_for_byte(fd, key, Duration::from_secs(5)).map_err(|e| format!("keystroke {i}: {e}"))?;
    Ok(t0.elapsed())
}

/// Read the (non-blocking) master until `want` arrives; other bytes are skipped.
fn wait_for_byte(fd: i32, want: u8, timeout: Duration) -> Res<()> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        match sys::read(fd, &mut buf) {
            Ok(0) => return Err("the pty closed".into()),
            Ok(n) if buf[..n].contains(&want) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(format!("no {:?} within {timeout:?}", want as char));
                }
                let mut fds = [PollFd::new(fd, POLLIN)];
                sys::poll(&mut fds, left.as_millis() as i32 + 1).map_err(err("poll"))?;
            }
            Err(e) => return Err(format!("read pty: {e}")),
        }
    }
}

/// Read and discard whatever arrives for `how_long` (lets a client finish writing).
fn drain_for(master: &OwnedFd, how_long: Duration) -> Res<()> {
    let deadline = Instant::now() + how_long;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let mut fds = [PollFd::new(master.as_raw_fd(), POLLIN)];
        sys::poll(&mut fds, 10).map_err(err("poll"))?;
        while let Ok(n) = sys::read(master.as_raw_fd(), &mut buf) {
            if n == 0 {
                break;
            }
        }
    }
    Ok(())
}

// --- 3. Detached start -----------------------------------------------------

/// Median time for `nono run --detached -- sleep 1000` against spawning it on a fresh pty.
fn bench_start(s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let sb = Sandbox::new("start", nono)?;
    let mut via = Vec::with_capacity(s.starts);
    let result = (|| -> Res<()> {
        for _ in 0..s.starts {
            let t0 = Instant::now();
            let out = sb
                .nono(&["run", "--detached", "--", "sleep", "1000"])
                .stdin(Stdio::null())
                .output()
                .map_err(err("run nono"))?;
            via.push(t0.elapsed());
            check_output(&out, "nono run --detached")?;
            let text = String::from_utf8_lossy(&out.stdout);
            if !text.starts_with("Started detached session ") {
                return Err(format!("unexpected output: {text:?}"));
            }
        }
        Ok(())
    })();
    let live = sb.records().iter().filter(|r| r.status != "exited").count();
    sb.stop_all(notes)?;
    result?;
    if live != s.starts {
        notes.push(format!(
            "start: {live} live records after {} starts",
            s.starts
        ));
    }
    let mut bare = Vec::with_capacity(s.starts);
    let mut kids = Vec::with_capacity(s.starts);
    for _ in 0..s.starts {
        // Keep every sleep alive until the end, as the nono side does.
        let t0 = Instant::now();
        let p = OnPty::spawn(sb.bare("sleep", &["1000"]))?;
        bare.push(t0.elapsed());
        kids.push(p);
    }
    drop(kids);
    let (nm, bm) = (percentile(&via, 50.0), percentile(&bare, 50.0));
    notes.push(format!(
        "start: median of {} starts; bare = open a pty and fork+exec `sleep 1000` on it as session leader (until spawn returns)",
        s.starts
    ));
    Ok(vec![Row::new(
        "detached start, median",
        ms(nm),
        ms(bm),
        nm.as_secs_f64(),
        bm.as_secs_f64(),
    )])
}

/// Median time for `nono run --detached -- sleep 1000` with namespace
/// containment against the same start where user namespaces are refused
/// (a seccomp filter on the launcher), so the session falls back to
/// `descendants`; both run on a fresh pty, interleaved.
fn bench_start_namespaces(s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let sb = Sandbox::new("start-ns", nono)?;
    let mut with = Vec::with_capacity(s.starts);
    let mut without = Vec::with_capacity(s.starts);
    let result = (|| -> Res<()> {
        for i in 0..2 * s.starts {
            let confine = if i % 2 == 0 {
                sys::Confinement::default()
            } else {
                sys::Confinement {
                    seccomp: Some(nono::sandbox::seccomp::no_user_namespaces_filter()),
                    ..sys::Confinement::default()
                }
            };
            let t0 = Instant::now();
            let mut p = OnPty::spawn_confined(
                sb.nono(&["run", "--detached", "--", "sleep", "1000"]),
                confine,
            )?;
            let st = p.wait(Duration::from_secs(30))?;
            let took = t0.elapsed();
            if !st.success() {
                return Err(format!("nono run --detached exited with {st}"));
            }
            if i % 2 == 0 { &mut with } else { &mut without }.push(took);
        }
        Ok(())
    })();
    let records = sb.records();
    sb.stop_all(notes)?;
    result?;
    let count = |c: &str| {
        records
            .iter()
            .filter(|r| r.containment.as_deref() == Some(c))
            .count()
    };
    if count("namespaces") != s.starts || count("descendants") != s.starts {
        return Err(format!(
            "expected {0} sessions with namespaces and {0} without; got {1} and {2}",
            s.starts,
            count("namespaces"),
            count("descendants")
        ));
    }
    let (nm, bm) = (percentile(&with, 50.0), percentile(&without, 50.0));
    notes.push(format!(
        "start, namespaces: median of {} starts each; \"bare\" = the same start with user namespaces refused (containment descendants)",
        s.starts
    ));
    Ok(vec![Row::new(
        "detached start, namespaces vs none",
        ms(nm),
        ms(bm),
        nm.as_secs_f64(),
        bm.as_secs_f64(),
    )])
}

// --- 4. ps over many records ----------------------------------------------

/// Median time of `nono ps --all` over synthetic exited records against `cat` of the same files.
fn bench_ps(s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let sb = Sandbox::new("ps", nono)?;
    let dir = sb.sessions_dir();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(err("create the sessions directory"))?;
    let paths = write_records(&dir, s.records)?;
    let mut via = Vec::with_capacity(s.ps_reps);
    let mut bare = Vec::with_capacity(s.ps_reps);
    let path_args: Vec<&str> = paths.iter().filter_map(|p| p.to_str()).collect();
    // An untimed run of each checks the output and warms the page cache.
    let out = sb
        .nono(&["ps", "--all"])
        .stdin(Stdio::null())
        .output()
        .map_err(err("run nono ps"))?;
    check_output(&out, "nono ps --all")?;
    let lines = out.stdout.iter().filter(|&&b| b == b'\n').count();
    if lines != s.records + 1 {
        return Err(format!(
            "nono ps --all printed {lines} lines for {} records",
            s.records
        ));
    }
    let out = sb
        .bare("cat", &path_args)
        .stdin(Stdio::null())
        .output()
        .map_err(err("run cat"))?;
    check_output(&out, "cat")?;
    for _ in 0..s.ps_reps {
        // Output to /dev/null: a pipe would time our reading (and cat's one write per file).
        via.push(time_quiet(sb.nono(&["ps", "--all"]))?);
        bare.push(time_quiet(sb.bare("cat", &path_args))?);
    }
    let (nm, bm) = (percentile(&via, 50.0), percentile(&bare, 50.0));
    notes.push(format!(
        "ps: {} exited records, median of {} runs; bare = `cat` of the same {} files, both writing to /dev/null (the same exec + open/read work, so the ratio is nono's parsing, checks and table layout)",
        s.records, s.ps_reps, s.records
    ));
    Ok(vec![Row::new(
        &format!("ps --all, {} records", s.records),
        ms(nm),
        ms(bm),
        nm.as_secs_f64(),
        bm.as_secs_f64(),
    )])
}

/// Write `n` exited records with distinct random-looking ids; returns their paths.
fn write_records(dir: &Path, n: usize) -> Res<Vec<PathBuf>> {
    let now = registry::now();
    let mut seed = 0x6e6f_6e6f_u64;
    let mut paths = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("{:016x}", splitmix64(&mut seed));
        let started = now - 86_400 + i as u64 * 60;
        let rec = Record {
            version: RECORD_VERSION,
            id: id.clone(),
            name: format!("bench-{i}"),
            status: "exited".into(),
            attached: false,
            command: vec!["sh".into(), "-c".into(), format!("make -j8 test-{i}")],
            workdir: "/tmp".into(),
            profile: None,
            network: "allowed".into(),
            sandbox: None,
            socket: String::new(),
            peer_guard: "supervisor".into(),
            supervisor_pid: 100_000 + i as i32,
            supervisor_start_time: 1_000 + i as u64,
            child_pid: Some(100_001 + i as i32),
            started_at: started,
            ended_at: Some(started + 30),
            exit_code: Some((i % 3) as i32),
            exit_signal: None,
            rollback_session: None,
            ..Record::default()
        };
        let path = dir.join(format!("{id}.json"));
        let mut text = rec.serialize_json();
        text.push('\n');
        fs::write(&path, text).map_err(err("write a record"))?;
        paths.push(path);
    }
    Ok(paths)
}

/// A deterministic 64-bit pseudo-random sequence (so runs are comparable).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

// --- 5. Idle supervisor RSS -----------------------------------------------

/// Settling time before reading RSS, so start-up work is done.
const SETTLE: Duration = Duration::from_millis(300);

/// VmRSS of an idle supervisor against that of a bare `sleep`.
fn bench_rss(_s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let sb = Sandbox::new("rss", nono)?;
    let result = (|| -> Res<(u64, Option<u64>)> {
        let out = sb
            .nono(&["run", "--detached", "--", "sleep", "1000"])
            .stdin(Stdio::null())
            .output()
            .map_err(err("run nono"))?;
        check_output(&out, "nono run --detached")?;
        let recs = sb.records();
        let rec = recs
            .iter()
            .find(|r| r.status == "running")
            .ok_or_else(|| "no running record after a detached start".to_string())?;
        std::thread::sleep(SETTLE);
        let sup = vm_rss_kib(rec.supervisor_pid)?;
        let child = rec.child_pid.map(vm_rss_kib).transpose()?;
        Ok((sup, child))
    })();
    sb.stop_all(notes)?;
    let (sup, child) = result?;
    let mut bare = sb
        .bare("sleep", &["1000"])
        .stdin(Stdio::null())
        .spawn()
        .map_err(err("spawn sleep"))?;
    std::thread::sleep(SETTLE);
    let bare_rss = vm_rss_kib(bare.id() as i32);
    let _ = bare.kill();
    let _ = bare.wait();
    let bare_rss = bare_rss?;
    notes.push(format!(
        "rss: VmRSS from /proc/PID/status {} ms after start; the session's own `sleep` uses {} KiB",
        SETTLE.as_millis(),
        child.map_or("?".into(), |c| c.to_string())
    ));
    Ok(vec![Row::new(
        "idle supervisor RSS",
        format!("{sup} KiB"),
        format!("{bare_rss} KiB"),
        sup as f64,
        bare_rss as f64,
    )])
}

/// VmRSS of a process in KiB.
fn vm_rss_kib(pid: i32) -> Res<u64> {
    vm_kib(pid, "VmRSS")
}

/// A `Vm*` field of /proc/PID/status in KiB.
fn vm_kib(pid: i32, field: &str) -> Res<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} for pid {pid}"))
}

// --- 6. Terminal model parse speed -----------------------------------------

/// Chunk size the model is fed in (a large pty read in the supervisor).
const FEED_CHUNK: usize = 64 * 1024;

/// Scrollback of the models fed by the parse benchmarks (the default).
const MODEL_SCROLLBACK: usize = 10_000;

/// Tokens of the plain-text corpus: the vocabulary of build and server logs.
const WORDS: &[&str] = &[
    "the",
    "build",
    "Compiling",
    "warning:",
    "error[E0308]:",
    "src/main.rs:42:7",
    "ok",
    "test",
    "passed",
    "failed",
    "GET",
    "/api/v1/items",
    "status",
    "latency",
    "ms",
    "user",
    "session",
    "request",
    "done",
    "INFO",
    "DEBUG",
    "=>",
    "nono",
    "v0.1.0",
    "(cached)",
    "Finished",
    "release",
    "in",
    "of",
    "and",
];

/// MiB/s of `Terminal::feed` over 80-column text, against counting its newlines.
fn bench_parse_text(s: &Sizes, _nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let mut rng = 0x7465_7874_u64;
    let mut corpus = Vec::with_capacity(s.parse_bytes + 2 * usize::from(COLS));
    while corpus.len() < s.parse_bytes {
        text_line(&mut rng, LINE_CHARS, &mut corpus);
        // What the program's `\n` becomes on a pty (ONLCR).
        corpus.extend_from_slice(b"\r\n");
    }
    let row = parse_row("model parse, ASCII-heavy", &corpus, s, notes)?;
    notes.push(
        "parse ASCII: lines of up to 79 columns of words, numbers and the odd tab, ending in CR LF"
            .into(),
    );
    Ok(vec![row])
}

/// MiB/s of `Terminal::feed` over full-screen-program output, against counting its newlines.
fn bench_parse_escapes(s: &Sizes, _nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let corpus = escape_corpus(s.parse_bytes);
    let row = parse_row("model parse, escape-heavy", &corpus, s, notes)?;
    notes.push(
        "parse escapes: CUP, SGR (16/256/truecolour), EL, 1-20 character runs (some box drawing), \
         scroll-region scrolls and alternate-screen switches, from a fixed-seed PRNG"
            .into(),
    );
    Ok(vec![row])
}

/// Time the model and the bare newline count over `corpus`; one row of median MiB/s.
fn parse_row(name: &str, corpus: &[u8], s: &Sizes, notes: &mut Notes) -> Res<Row> {
    let mut model = Vec::with_capacity(s.parse_reps);
    let mut bare = Vec::with_capacity(s.parse_reps);
    let mut heap = 0;
    for _ in 0..s.parse_reps {
        let mut t = Terminal::new(ROWS, COLS, MODEL_SCROLLBACK);
        let t0 = Instant::now();
        for chunk in corpus.chunks(FEED_CHUNK) {
            t.feed(chunk);
        }
        model.push(t0.elapsed());
        heap = black_box(&t).heap_bytes();
        let t0 = Instant::now();
        let mut newlines = 0;
        for chunk in corpus.chunks(FEED_CHUNK) {
            // black_box: the count must not be hoisted or skipped.
            newlines += black_box(chunk).iter().filter(|&&b| b == b'\n').count();
        }
        black_box(newlines);
        bare.push(t0.elapsed());
    }
    let size = mib(corpus.len() as u64);
    let (mr, br) = (
        size / percentile(&model, 50.0).as_secs_f64(),
        size / percentile(&bare, 50.0).as_secs_f64(),
    );
    notes.push(format!(
        "{name}: {size:.0} MiB in {} KiB chunks into Terminal::new({ROWS}, {COLS}, {MODEL_SCROLLBACK}), \
         median of {} pass(es); bare = counting b'\\n' over the same chunks (no parsing, just \
         touching every byte), so the ratio is the model's cost per byte; model heap afterwards {} KiB",
        FEED_CHUNK >> 10,
        s.parse_reps,
        heap >> 10
    ));
    Ok(Row::new(
        &format!("{name}, {size:.0} MiB"),
        format!("{mr:.0} MiB/s"),
        format!("{br:.0} MiB/s"),
        mr,
        br,
    ))
}

/// Append one line of words, numbers and the odd tab, at most `width`
/// columns, without a line end.
fn text_line(rng: &mut u64, width: usize, out: &mut Vec<u8>) {
    let mut col = 0;
    let mut after_tab = false;
    let mut tok = String::new();
    loop {
        let r = splitmix64(rng);
        let pick = (r >> 16) as usize;
        tok.clear();
        match r % 10 {
            0 if col > 0 => {
                let next = (col / 8 + 1) * 8;
                if next >= width {
                    return;
                }
                out.push(b'\t');
                col = next;
                after_tab = true;
                continue;
            }
            1 | 2 => {
                let _ = write!(tok, "{}", pick % 100_000);
            }
            _ => tok.push_str(WORDS[pick % WORDS.len()]),
        }
        let sep = usize::from(col > 0 && !after_tab);
        if col + sep + tok.len() > width {
            return;
        }
        if sep == 1 {
            out.push(b' ');
        }
        out.extend_from_slice(tok.as_bytes());
        col += sep + tok.len();
        after_tab = false;
    }
}

/// About `size` bytes of what a full-screen program writes, from a fixed seed.
fn escape_corpus(size: usize) -> Vec<u8> {
    const TEXT: &[u8] =
        b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,:;-_/[]()";
    let (rows, cols) = (u64::from(ROWS), u64::from(COLS));
    let mut rng = 0x6573_6361_u64;
    let mut o = String::with_capacity(size + 256);
    let mut alt = true;
    o.push_str("\x1b[?1049h\x1b[H\x1b[2J");
    while o.len() < size {
        let r = splitmix64(&mut rng);
        let (a, b, c) = ((r >> 10) & 0xff, (r >> 18) & 0xff, (r >> 26) & 0xff);
        let _ = match r % 1000 {
            0..=249 => write!(o, "\x1b[{};{}H", a % rows + 1, b % cols + 1),
            250..=349 => match c % 4 {
                0 => write!(o, "\x1b[0m"),
                1 => write!(o, "\x1b[1;{}m", 30 + a % 8),
                2 => write!(o, "\x1b[{};{}m", 90 + a % 8, 40 + b % 8),
                _ => write!(o, "\x1b[0;7;{}m", 30 + a % 8),
            },
            350..=429 => write!(o, "\x1b[{};5;{a}m", if c % 2 == 0 { 38 } else { 48 }),
            430..=479 => write!(o, "\x1b[38;2;{a};{b};{c}m"),
            480..=539 => write!(o, "\x1b[{}K", ["", "1", "2"][(c % 3) as usize]),
            540..=969 => {
                let n = 1 + (a % 20) as usize;
                if c % 8 == 0 {
                    // Box drawing: multi-byte UTF-8, as TUIs draw borders.
                    (0..n).for_each(|_| o.push('─'));
                } else {
                    let start = (b as usize) % (TEXT.len() - n);
                    o.push_str(std::str::from_utf8(&TEXT[start..start + n]).unwrap_or("x"));
                }
                Ok(())
            }
            970..=997 => {
                // Scroll a region: margins, line feeds at its bottom, margins reset.
                let top = 1 + a % (rows / 2);
                let bottom = top + 1 + b % (rows - top);
                write!(o, "\x1b[{top};{bottom}r\x1b[{bottom};1H")
                    .and_then(|_| write!(o, "{}", "\n".repeat(1 + (c % 3) as usize)))
                    .and_then(|_| write!(o, "\x1b[r"))
            }
            _ => {
                alt = !alt;
                write!(o, "\x1b[?1049{}", if alt { 'h' } else { 'l' })
            }
        };
    }
    o.into_bytes()
}

// --- 7. Terminal model render time -----------------------------------------

/// Screen of the render benchmark.
const RENDER_ROWS: u16 = 50;
/// See `RENDER_ROWS`.
const RENDER_COLS: u16 = 200;

/// Median time of `Terminal::render` with full scrollback and an attributed screen.
fn bench_render(s: &Sizes, _nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let mut t = Terminal::new(RENDER_ROWS, RENDER_COLS, MODEL_SCROLLBACK);
    let mut rng = 0x7265_6e64_u64;
    let mut text = String::new();
    let lines = MODEL_SCROLLBACK + usize::from(RENDER_ROWS);
    for i in 0..lines {
        attributed_line(&mut rng, usize::from(RENDER_COLS), &mut text);
        // No line end after the last line, so the screen stays full.
        if i + 1 < lines {
            text.push_str("\r\n");
        }
    }
    t.feed(text.as_bytes());
    if t.history_len() != MODEL_SCROLLBACK {
        return Err(format!(
            "the model holds {} scrollback lines, not {MODEL_SCROLLBACK}",
            t.history_len()
        ));
    }
    // One untimed render warms the allocator and caches.
    let size = t.render().len();
    let mut times = Vec::with_capacity(s.render_reps);
    for _ in 0..s.render_reps {
        let t0 = Instant::now();
        black_box(t.render());
        times.push(t0.elapsed());
    }
    let m = percentile(&times, 50.0);
    notes.push(format!(
        "render: {MODEL_SCROLLBACK} scrollback lines + a full {RENDER_ROWS}x{RENDER_COLS} screen, every line \
         {RENDER_COLS} columns of words in changing SGR colours/attributes; median of {} renders; \
         {} KiB of output ({:.0} MiB/s); no bare side (nothing comparable to render)",
        s.render_reps,
        size >> 10,
        mib(size as u64) / m.as_secs_f64()
    ));
    Ok(vec![Row::new(
        &format!("model render, {MODEL_SCROLLBACK} + {RENDER_ROWS}x{RENDER_COLS}"),
        ms(m),
        "-".into(),
        m.as_secs_f64(),
        0.0,
    )])
}

/// Append exactly `cols` columns of words, each run in its own SGR, then reset the pen.
fn attributed_line(rng: &mut u64, cols: usize, out: &mut String) {
    let mut col = 0;
    while col < cols {
        let r = splitmix64(rng);
        let (a, b, c) = ((r >> 10) & 0xff, (r >> 18) & 0xff, (r >> 26) & 0xff);
        let _ = match r % 4 {
            0 => write!(out, "\x1b[0;1;{}m", 30 + a % 8),
            1 => write!(out, "\x1b[0;38;5;{a};48;5;{b}m"),
            2 => write!(out, "\x1b[0;3;38;2;{a};{b};{c}m"),
            _ => write!(out, "\x1b[0;4;7;{}m", 90 + a % 8),
        };
        let word = WORDS[(r >> 34) as usize % WORDS.len()];
        let n = word.len().min(cols - col);
        out.push_str(&word[..n]);
        col += n;
        if col < cols {
            out.push(' ');
            col += 1;
        }
    }
    out.push_str("\x1b[0m");
}

// --- 8. Supervisor RSS after output ----------------------------------------

/// Printed by the output program after its text, so we know it was all consumed.
const DONE_MARK: &str = "nono-bench-output-done";

/// Longest the supervisor may take to consume the output program's text.
const OUTPUT_TIMEOUT: Duration = Duration::from_secs(300);

/// Target for a supervisor's RSS after heavy output, in KiB (from the issue).
const RSS_TARGET_KIB: u64 = 8 * 1024;

/// VmRSS of a supervisor whose program printed `output_bytes`, against an idle one.
fn bench_rss_output(s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let sb = Sandbox::new("rss-output", nono)?;
    let result = (|| -> Res<(u64, u64, u64, Duration)> {
        let idle_id = start_detached(&sb, "idle", &[], &["sleep", "1000"])?;
        std::thread::sleep(SETTLE);
        let idle = vm_rss_kib(supervisor_pid(&sb, &idle_id)?)?;
        // One 79-character line of words (no tabs, no quotes) for `yes`.
        let mut line = Vec::new();
        text_line(&mut 0x7273_735f_u64, LINE_CHARS, &mut line);
        let mut line = String::from_utf8_lossy(&line).replace('\t', " ");
        while line.len() < LINE_CHARS {
            line.push('.');
        }
        let script = format!(
            "yes '{line}' | head -c {}; echo {DONE_MARK}; exec sleep 1000",
            s.output_bytes
        );
        let t0 = Instant::now();
        let id = start_detached(&sb, "output", &[], &["sh", "-c", &script])?;
        wait_for_last_line(&sb, &id, DONE_MARK, OUTPUT_TIMEOUT)?;
        let consumed = t0.elapsed();
        std::thread::sleep(SETTLE);
        let pid = supervisor_pid(&sb, &id)?;
        Ok((vm_rss_kib(pid)?, vm_kib(pid, "VmHWM")?, idle, consumed))
    })();
    sb.stop_all(notes)?;
    let (rss, hwm, idle, consumed) = result?;
    let size = s.output_bytes >> 20;
    notes.push(format!(
        "rss after output: {size} MiB of 80-byte lines (`yes | head -c`) then an end marker, default scrollback \
         ({} lines); VmRSS read {} ms after `nono logs ID --lines 1` showed the marker (all consumed \
         {:.1} s after the start, ~{:.0} MiB/s with 50 ms polling); peak VmHWM {hwm} KiB; bare = an idle \
         supervisor's VmRSS; target < {} KiB: {}",
        nono::defaults::SCROLLBACK_LINES,
        SETTLE.as_millis(),
        consumed.as_secs_f64(),
        size as f64 / consumed.as_secs_f64(),
        RSS_TARGET_KIB,
        if rss < RSS_TARGET_KIB { "met" } else { "NOT met" }
    ));
    Ok(vec![Row::new(
        &format!("supervisor RSS after {size} MiB output"),
        format!("{rss} KiB"),
        format!("{idle} KiB idle"),
        rss as f64,
        idle as f64,
    )])
}

/// `nono run --detached --name NAME FLAGS... -- COMMAND...`; returns the session id.
fn start_detached(sb: &Sandbox, name: &str, flags: &[&str], command: &[&str]) -> Res<String> {
    let mut args = vec!["run", "--detached", "--name", name];
    args.extend_from_slice(flags);
    args.push("--");
    args.extend_from_slice(command);
    let out = sb
        .nono(&args)
        .stdin(Stdio::null())
        .output()
        .map_err(err("run nono"))?;
    check_output(&out, "nono run --detached")?;
    sb.records()
        .into_iter()
        .find(|r| r.name == name)
        .map(|r| r.id)
        .ok_or_else(|| format!("no record named {name} after a detached start"))
}

/// The supervisor's pid, as `nono inspect ID --json` reports it.
fn supervisor_pid(sb: &Sandbox, id: &str) -> Res<i32> {
    let out = sb
        .nono(&["inspect", id, "--json"])
        .stdin(Stdio::null())
        .output()
        .map_err(err("run nono inspect"))?;
    check_output(&out, "nono inspect --json")?;
    let rec = registry::parse_record(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| format!("nono inspect --json: {e}"))?;
    Ok(rec.supervisor_pid)
}

/// Poll `nono logs ID --lines 1` until the last line starts with `prefix`.
fn wait_for_last_line(sb: &Sandbox, id: &str, prefix: &str, timeout: Duration) -> Res<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let out = sb
            .nono(&["logs", id, "--lines", "1"])
            .stdin(Stdio::null())
            .output()
            .map_err(err("run nono logs"))?;
        let last = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && last.starts_with(prefix) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the session's last line was still {:?} after {timeout:?} ({})",
                last.trim_end(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        // Each poll is a process and a history dump; do not crowd the supervisor.
        std::thread::sleep(Duration::from_millis(50));
    }
}

// --- 10. Approvals (--ask) --------------------------------------------------

/// The interpreter the open benchmark runs (under /usr, so every profile grants it).
const PYTHON: &str = "/usr/bin/python3";

/// Times `n` open+close pairs of a granted file (after a warm-up) and
/// prints the mean in nanoseconds as `OPENS <ns>`.
const OPEN_LOOP: &str = "
import os, sys, time
p, n = sys.argv[1], int(sys.argv[2])
for _ in range(200):
    os.close(os.open(p, os.O_RDONLY))
t = time.perf_counter()
for _ in range(n):
    os.close(os.open(p, os.O_RDONLY))
print('OPENS %d' % ((time.perf_counter() - t) / n * 1e9), flush=True)
";

/// The ways `bench_ask_open` runs `OPEN_LOOP`.
#[derive(Clone, Copy, PartialEq)]
enum OpenSide {
    /// `nono run --ask`.
    Ask,
    /// `nono run` (same sandbox, no --ask).
    Plain,
    /// No nono; python under the approval filter, answered by a loop that
    /// only polls, receives and continues: the kernel's floor.
    Floor,
    /// `Floor` with `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` on the listener.
    FloorSync,
    /// No nono, no filter.
    Bare,
}

/// Mean open+close cost (ns) of python3 running `OPEN_LOOP` on a pty, the `side` way.
fn open_cost(sb: &Sandbox, side: OpenSide, count: &str) -> Res<f64> {
    let script = [PYTHON, "-c", OPEN_LOOP, "/etc/passwd", count];
    let nono_run = |flags: &[&str]| {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.push("--");
        args.extend_from_slice(&script);
        sb.nono(&args)
    };
    let mut python = Command::new(PYTHON);
    python.args(&script[1..]);
    let (mut p, listener) = match side {
        OpenSide::Ask => (OnPty::spawn(nono_run(&["--ask"]))?, None),
        OpenSide::Plain => (OnPty::spawn(nono_run(&[]))?, None),
        OpenSide::Bare => (OnPty::spawn(python)?, None),
        OpenSide::Floor | OpenSide::FloorSync => {
            let (ours, theirs) =
                std::os::unix::net::UnixStream::pair().map_err(err("socket pair"))?;
            let confine = sys::Confinement {
                notify: Some(sys::NotifySetup {
                    filter: nono::sandbox::notify::filter(),
                    sock: theirs.into(),
                }),
                ..Default::default()
            };
            let p = OnPty::spawn_confined(python, confine)?;
            // Sent before exec, which spawn has seen.
            let l = sys::recv_fd(ours.as_raw_fd()).map_err(err("receive the listener"))?;
            if side == OpenSide::FloorSync {
                sys::notif_sync_wakeup(l.as_raw_fd())
                    .map_err(err("SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6+)"))?;
            }
            (p, Some(l))
        }
    };
    let master = p.master.as_raw_fd();
    let deadline = Instant::now() + HANG;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen);
        if let Some(ns) = text
            .split("OPENS ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .filter(|_| text.ends_with('\n'))
            .and_then(|v| v.parse::<f64>().ok())
        {
            let _ = p.wait(HANG);
            return Ok(ns);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no OPENS line after {HANG:?}: {:?}",
                text.trim_end()
            ));
        }
        // The answering loop: one poll, then RECV and CONTINUE, as the
        // supervisor's loop does for an open inside the grant.
        let mut fds = vec![PollFd::new(master, POLLIN)];
        if let Some(l) = &listener {
            fds.push(PollFd::new(l.as_raw_fd(), POLLIN));
        }
        sys::poll(&mut fds, 1000).map_err(err("poll"))?;
        if let Some(l) = &listener {
            if fds[1].revents() & POLLIN != 0 {
                if let Ok(n) = sys::notif_recv(l.as_raw_fd()) {
                    let _ = sys::notif_answer(l.as_raw_fd(), n.id, Ok(()));
                }
            }
        }
        if fds[0].revents() != 0 {
            match sys::read(master, &mut buf) {
                Ok(0) => return Err("the pty closed before an OPENS line".into()),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(format!("the pty ended before an OPENS line ({e})")),
            }
        }
    }
}

/// Mean cost of an open of a granted file in a `--ask` session (each open
/// makes a round trip through the supervisor, which lets the kernel
/// continue) against the same sandbox without `--ask`; and the kernel's
/// floor for the mechanism: python under the same filter answered by a
/// loop that does nothing else, against python alone. All sides attached
/// on a pty (nothing talks to the supervisor while it times), interleaved.
fn bench_ask_open(s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    if !Path::new(PYTHON).is_file() {
        return Err(format!("{PYTHON} is missing (CI installs it)"));
    }
    let sb = Sandbox::new("ask-open", nono)?;
    let n = if s.quick { 5_000 } else { 50_000 };
    let count = n.to_string();
    use OpenSide::*;
    let sides = [Ask, Plain, Floor, FloorSync, Bare];
    let mut costs: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    let mut sync_missing = None;
    let result = (|| -> Res<()> {
        for round in 0..3 {
            for k in 0..sides.len() {
                // Each round starts with another side.
                let i = (k + round) % sides.len();
                if sides[i] == FloorSync && sync_missing.is_some() {
                    continue;
                }
                match open_cost(&sb, sides[i], &count) {
                    Ok(ns) => costs[i].push(ns),
                    Err(e) if sides[i] == FloorSync && e.starts_with("SECCOMP_USER") => {
                        sync_missing = Some(e)
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    })();
    sb.stop_all(notes)?;
    result?;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let m: Vec<f64> = costs.iter_mut().map(median).collect();
    let (ask, plain, floor, sync, bare) = (m[0], m[1], m[2], m[3], m[4]);
    let fast = if sync > 0.0 { floor.min(sync) } else { floor };
    let us1 = |ns: f64| format!("{:.1} us", ns / 1000.0);
    notes.push(format!(
        "ask open: median of 3 runs each side of {n} open+close pairs of /etc/passwd (inside the default \
         profile's grant) timed inside python3, attached on a pty, sides interleaved; every open with --ask \
         is a seccomp notification the supervisor answers with CONTINUE once the path is checked to resolve \
         inside a granted directory: --ask adds {} an open to nono's {}; the kernel's floor for the mechanism \
         (python under the same filter, answered by a loop that only polls, receives and continues) adds {} \
         to python's bare {} ({}); what nono adds is {:.2}x what the floor adds; goal within 2x: {}{}",
        us1(ask - plain),
        us1(plain),
        us1(fast - bare),
        us1(bare),
        match &sync_missing {
            Some(_) => "no SYNC_WAKE_UP on this kernel (6.6+)".to_string(),
            None => format!("SYNC_WAKE_UP {} vs {} without", us1(sync), us1(floor)),
        },
        (ask - plain) / (fast - bare),
        if ask <= 2.0 * plain { "met" } else { "NOT met" },
        if fast > 2.0 * bare {
            format!(
                "; not reachable with this mechanism here: the floor alone is {:.2}x bare",
                fast / bare
            )
        } else {
            String::new()
        }
    ));
    let mut rows = vec![
        Row::new(
            "open+close inside the grant, --ask",
            us1(ask),
            format!("{} no --ask", us1(plain)),
            ask,
            plain,
        ),
        Row::new(
            "open+close, seccomp notify floor (poll+RECV+CONTINUE)",
            us1(floor),
            format!("{} no filter", us1(bare)),
            floor,
            bare,
        ),
    ];
    if sync > 0.0 {
        rows.push(Row::new(
            "open+close, notify floor with SYNC_WAKE_UP",
            us1(sync),
            format!("{} no filter", us1(bare)),
            sync,
            bare,
        ));
    }
    Ok(rows)
}

/// Median keystroke echo in a `--ask` session while a request waits (put
/// off the overlay with Esc) against the same session with none waiting.
fn bench_ask_echo(s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let sb = Sandbox::new("ask-echo", nono)?;
    let outside = sb.root.join("outside");
    fs::write(&outside, "x").map_err(err("write the outside file"))?;
    let asking = format!("cat {} & {ECHO_SCRIPT}", outside.display());
    let result = (|| -> Res<(Vec<Duration>, Vec<Duration>)> {
        let (mut waiting, mut idle) = (Vec::new(), Vec::new());
        for round in 0..ECHO_ROUNDS {
            for wait in [round % 2 == 0, round % 2 != 0] {
                let script = if wait { asking.as_str() } else { ECHO_SCRIPT };
                let mut p = OnPty::spawn(sb.nono(&["run", "--ask", "--", "sh", "-c", script]))?;
                let fd = p.master.as_raw_fd();
                let run = (|| {
                    if wait {
                        // The marker and the overlay (it ends with the file's
                        // name whatever its width), in either order; then Esc.
                        wait_for_text(fd, &[b"R", b"outside  y"], HANG)?;
                        sys::write_all(fd, b"\x1b").map_err(err("write pty"))?;
                        drain_for(&p.master, Duration::from_millis(200))?;
                    } else {
                        wait_for_ready(fd, HANG)?;
                    }
                    echo_round_trips(fd, s.keystrokes)
                })();
                sb.stop_all(notes)?;
                let _ = drain_for(&p.master, Duration::from_millis(100));
                let _ = p.wait(Duration::from_secs(10));
                let t = run?;
                if wait { &mut waiting } else { &mut idle }.extend(t);
            }
        }
        Ok((waiting, idle))
    })();
    sb.stop_all(notes)?;
    let (waiting, idle) = result?;
    let (w, i) = (percentile(&waiting, 50.0), percentile(&idle, 50.0));
    notes.push(format!(
        "ask echo: {ECHO_ROUNDS} rounds of {} keystrokes each way in `nono run --ask`; waiting = a `cat` of a \
         path outside the grant waits in the background (put off the overlay with Esc, as an operator \
         would to keep typing); the approvals code is off the keystroke path, so the goal is no change",
        s.keystrokes
    ));
    Ok(vec![Row::new(
        "keystroke echo, a request waiting",
        us(w),
        format!("{} none", us(i)),
        w.as_secs_f64(),
        i.as_secs_f64(),
    )])
}

/// How fast a `--ask` session's program gets its output out while a
/// request waits with the overlay shown (output then reaches the client as
/// redraws from the model), against the same session with none waiting:
/// the program's bytes over the time until the attached client is done.
fn bench_ask_throughput(s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let sb = Sandbox::new("ask-throughput", nono)?;
    let outside = sb.root.join("outside");
    fs::write(&outside, "x").map_err(err("write the outside file"))?;
    let line = "a".repeat(LINE_CHARS);
    let bytes = s.throughput_bytes / 2;
    let plain = format!("sleep 0.1; yes {line} | head -c {bytes}");
    let asking = format!("cat {} & {plain}", outside.display());
    let result = (|| -> Res<(Vec<f64>, Vec<f64>)> {
        let (mut waiting, mut idle) = (Vec::new(), Vec::new());
        for rep in 0..s.throughput_reps.max(2) {
            for wait in [rep % 2 == 0, rep % 2 != 0] {
                let script = if wait { &asking } else { &plain };
                let (d, _) = drain_run(sb.nono(&["run", "--ask", "--", "sh", "-c", script]))?;
                let rate = mib(bytes) / d.as_secs_f64();
                if wait { &mut waiting } else { &mut idle }.push(rate);
            }
        }
        Ok((waiting, idle))
    })();
    sb.stop_all(notes)?;
    let (mut waiting, mut idle) = result?;
    waiting.sort_by(f64::total_cmp);
    idle.sort_by(f64::total_cmp);
    let (w, i) = (waiting[waiting.len() / 2], idle[idle.len() / 2]);
    notes.push(format!(
        "ask throughput: {} MiB of 80-byte lines in `nono run --ask`, attached; waiting = a `cat` of a path \
         outside the grant waits in the background with the overlay shown; rate = the program's bytes \
         over the time until the client is done (median; includes the start and a 0.1 s sleep); goal: no slower",
        bytes >> 20
    ));
    Ok(vec![Row::new(
        "attached throughput, a request waiting",
        format!("{w:.0} MiB/s"),
        format!("{i:.0} MiB/s none"),
        w,
        i,
    )])
}

/// Read the (non-blocking) master until each of `needles` has appeared.
fn wait_for_text(fd: i32, needles: &[&[u8]], timeout: Duration) -> Res<()> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if needles
            .iter()
            .all(|n| seen.windows(n.len()).any(|w: &[u8]| w == *n))
        {
            return Ok(());
        }
        match sys::read(fd, &mut buf) {
            Ok(0) => return Err("the pty closed".into()),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(format!(
                        "no {needles:?} within {timeout:?}; got {:?}",
                        String::from_utf8_lossy(&seen[seen.len().saturating_sub(400)..])
                    ));
                }
                let mut fds = [PollFd::new(fd, POLLIN)];
                sys::poll(&mut fds, left.as_millis() as i32 + 1).map_err(err("poll"))?;
            }
            Err(e) => return Err(format!("read pty: {e}")),
        }
    }
}

// --- 9. Attach to first full frame -----------------------------------------

/// The attach client's detach keys (the default Ctrl-] d).
const DETACH_KEYS: [u8; 2] = [0x1d, b'd'];

/// Output gap after which the screen is checked even without the marker.
const QUIET: Duration = Duration::from_millis(100);

/// Median time from spawning `nono attach` until the whole redraw has
/// arrived, against `cat` of the same text to a pty.
fn bench_attach_frame(s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let sb = Sandbox::new("attach", nono)?;
    let path = sb.root.join("home/history.txt");
    let mut text = Vec::new();
    let mut rng = 0x6869_7374_u64;
    for i in 1..=s.attach_lines {
        // Numbered lines make the last screen unique; numbers in the text have no leading zeros.
        text.extend_from_slice(format!("{i:06} ").as_bytes());
        text_line(&mut rng, LINE_CHARS - 7, &mut text);
        text.push(b'\n');
    }
    fs::write(&path, &text).map_err(err("write the history text"))?;
    let want = {
        let mut t = Terminal::new(ROWS, COLS, 0);
        for line in text.split_inclusive(|&b| b == b'\n') {
            t.feed(&line[..line.len() - 1]);
            t.feed(b"\r\n");
        }
        t.screen_text()
    };
    let marker = format!("{:06} ", s.attach_lines);
    let path_arg = path.to_str().ok_or("non-UTF-8 temp path")?;
    let result = (|| -> Res<(Vec<Duration>, Vec<Duration>)> {
        // The text lies outside the sandbox's default grant: grant it read-only.
        let id = start_detached(
            &sb,
            "history",
            &["--read", path_arg],
            &["sh", "-c", &format!("cat '{path_arg}'; exec sleep 1000")],
        )?;
        wait_for_last_line(&sb, &id, &marker, HANG)?;
        let mut via = Vec::with_capacity(s.attaches);
        let mut bare = Vec::with_capacity(s.attaches);
        for i in 0..s.attaches {
            // Alternate sides so drift in machine load hits both alike.
            via.push(
                attach_once(&sb, &id, &want, &marker)
                    .map_err(|e| format!("attach {}: {e}", i + 1))?,
            );
            bare.push(
                cat_once(&sb, path_arg, &want, &marker)
                    .map_err(|e| format!("cat {}: {e}", i + 1))?,
            );
        }
        Ok((via, bare))
    })();
    sb.stop_all(notes)?;
    let (via, bare) = result?;
    let (nm, bm) = (percentile(&via, 50.0), percentile(&bare, 50.0));
    notes.push(format!(
        "attach: a detached session that printed {} numbered lines ({} KiB, so the redraw carries \
         scrollback) and sleeps; median of {} attaches, each timed from spawning `nono attach` on a \
         fresh {ROWS}x{COLS} pty to the last byte after which a Terminal fed with the client's output \
         shows the session's final screen (parsed once the last line's number has arrived, or after \
         {} ms of quiet, so checking does not slow the client), then detached with Ctrl-] d; \
         bare = `cat` of the same text to a fresh pty, detected the same way",
        s.attach_lines,
        text.len() >> 10,
        s.attaches,
        QUIET.as_millis()
    ));
    Ok(vec![Row::new(
        "attach to first full frame, median",
        ms(nm),
        ms(bm),
        nm.as_secs_f64(),
        bm.as_secs_f64(),
    )])
}

/// Attach on a fresh pty, time the full frame, detach and check the client exits 0.
fn attach_once(sb: &Sandbox, id: &str, want: &[String], marker: &str) -> Res<Duration> {
    let t0 = Instant::now();
    // Dropping `p` on an error kills the client.
    let mut p = OnPty::spawn(sb.nono(&["attach", id]))?;
    let took = wait_for_screen(&p.master, want, marker, t0)?;
    sys::write_all(p.master.as_raw_fd(), &DETACH_KEYS).map_err(err("write pty"))?;
    drain(&p.master)?;
    let st = p.wait(Duration::from_secs(10))?;
    if !st.success() {
        return Err(format!("the client exited with {st} after detaching"));
    }
    Ok(took)
}

/// `cat` the history text on a fresh pty and time it the same way.
fn cat_once(sb: &Sandbox, path: &str, want: &[String], marker: &str) -> Res<Duration> {
    let t0 = Instant::now();
    let mut p = OnPty::spawn(sb.bare("cat", &[path]))?;
    let took = wait_for_screen(&p.master, want, marker, t0)?;
    drain(&p.master)?;
    let st = p.wait(HANG)?;
    if !st.success() {
        return Err(format!("cat exited with {st}"));
    }
    Ok(took)
}

/// Read the master until a terminal fed with the output shows `want`;
/// returns the time from `t0` to the arrival of the last byte read.
/// Bytes are parsed only when `marker` has arrived or output has paused,
/// so a slow check does not hold the writer back.
fn wait_for_screen(master: &OwnedFd, want: &[String], marker: &str, t0: Instant) -> Res<Duration> {
    let fd = master.as_raw_fd();
    let marker = marker.as_bytes();
    let mut term = Terminal::new(ROWS, COLS, 0);
    let mut got = Vec::new();
    let (mut fed, mut scanned) = (0, 0);
    let mut seen = false;
    let mut last = t0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match sys::read(fd, &mut buf) {
            Ok(0) => return Err("the pty closed before the full screen".into()),
            Ok(n) => {
                last = Instant::now();
                got.extend_from_slice(&buf[..n]);
                if !seen {
                    seen = got[scanned..].windows(marker.len()).any(|w| w == marker);
                    scanned = got.len().saturating_sub(marker.len() - 1);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if seen || last.elapsed() >= QUIET {
                    term.feed(&got[fed..]);
                    fed = got.len();
                    if term.screen_text() == want {
                        return Ok(last - t0);
                    }
                }
                if t0.elapsed() > HANG {
                    return Err(format!(
                        "no full screen within {} s ({} bytes; last row shown {:?})",
                        HANG.as_secs(),
                        got.len(),
                        term.screen_text().iter().rev().find(|l| !l.is_empty())
                    ));
                }
                let mut fds = [PollFd::new(fd, POLLIN)];
                sys::poll(&mut fds, QUIET.as_millis() as i32).map_err(err("poll"))?;
            }
            Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                // The writer is gone (a fast `cat`): whatever it wrote is all there is.
                term.feed(&got[fed..]);
                if term.screen_text() == want {
                    return Ok(last - t0);
                }
                return Err(format!(
                    "the pty closed before the full screen: {:?}",
                    String::from_utf8_lossy(&got[got.len().saturating_sub(300)..])
                ));
            }
            Err(e) => return Err(format!("read pty: {e}")),
        }
    }
}

// --- Environment -----------------------------------------------------------

/// The binary under test: `NONO_BIN`, else the one Cargo built for this bench.
fn nono_bin() -> PathBuf {
    std::env::var_os("NONO_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_nono")))
}

/// A private HOME with XDG directories for one benchmark; dropping it stops
/// every session still live there and removes it.
struct Sandbox {
    /// Root of the temporary tree.
    root: PathBuf,
    /// The nono binary.
    nono: PathBuf,
}

impl Sandbox {
    /// A fresh, empty tree under /tmp.
    fn new(name: &str, nono: &Path) -> Res<Sandbox> {
        let root = PathBuf::from(format!("/tmp/nono-bench-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for sub in ["home", "state", "config"] {
            fs::create_dir_all(root.join(sub)).map_err(err("create the temp HOME"))?;
        }
        Ok(Sandbox {
            root,
            nono: nono.to_path_buf(),
        })
    }

    /// The registry's sessions directory.
    fn sessions_dir(&self) -> PathBuf {
        self.root.join("state/nono/sessions")
    }

    /// `program ARGS` with this sandbox's environment, nothing else inherited.
    fn bare(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        self.setup(&mut c, args);
        c
    }

    /// `nono ARGS` with the same environment as `bare`.
    fn nono(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.nono);
        self.setup(&mut c, args);
        c
    }

    /// `command` in a new attached session of `peer`, set up for measuring:
    /// no startup message or status line, no detach or suspend key, its
    /// sockets and state in this sandbox.
    fn peer(&self, peer: Peer, command: &[&str]) -> Res<Command> {
        let path = |name: &str| -> Res<String> {
            let p = self.root.join(name);
            p.to_str()
                .map(str::to_string)
                .ok_or_else(|| format!("non-UTF-8 temp path {}", p.display()))
        };
        let write = |name: &str, text: &str| {
            fs::write(self.root.join(name), text).map_err(err("write a peer's config"))
        };
        let mut args: Vec<String> = match peer {
            Peer::Screen => {
                // screen insists on a private socket directory.
                let dir = self.root.join("screen");
                if !dir.is_dir() {
                    fs::DirBuilder::new()
                        .mode(0o700)
                        .create(&dir)
                        .map_err(err("create screen's socket directory"))?;
                }
                write("screenrc", "startup_message off\n")?;
                vec![
                    "-c".into(),
                    path("screenrc")?,
                    "-S".into(),
                    SCREEN_SESSION.into(),
                ]
            }
            Peer::Tmux => {
                write("tmux.conf", "set -g status off\n")?;
                vec![
                    "-S".into(),
                    path("tmux.sock")?,
                    "-f".into(),
                    path("tmux.conf")?,
                    "new-session".into(),
                ]
            }
            Peer::Dtach => {
                // A fresh socket each time: dtach refuses one that exists.
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let sock = path(&format!("dtach-{n}.sock"))?;
                ["-c", &sock, "-E", "-z", "-r", "none"]
                    .map(String::from)
                    .to_vec()
            }
        };
        args.extend(command.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = self.bare(peer.program(), &args);
        if peer == Peer::Screen {
            c.env("SCREENDIR", self.root.join("screen"));
        }
        Ok(c)
    }

    /// End any tmux server or screen session still running in this sandbox
    /// (dtach's end with their programs).
    fn stop_peers(&self) {
        let quiet = |mut c: Command| {
            let _ = c
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        let sock = self.root.join("tmux.sock");
        if sock.exists() {
            quiet(self.bare("tmux", &["-S", &sock.to_string_lossy(), "kill-server"]));
        }
        let dir = self.root.join("screen");
        if dir.is_dir() && fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
            let mut c = self.bare("screen", &["-S", SCREEN_SESSION, "-X", "quit"]);
            c.env("SCREENDIR", &dir);
            quiet(c);
        }
    }

    /// Arguments, a cleared environment pointing at this sandbox, and its HOME as cwd.
    fn setup(&self, c: &mut Command, args: &[&str]) {
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.root.join("home"))
            .env("XDG_STATE_HOME", self.root.join("state"))
            .env("XDG_CONFIG_HOME", self.root.join("config"))
            .env("TERM", "xterm-256color")
            .env("LC_ALL", "C")
            .current_dir(self.root.join("home"));
    }

    /// Every readable record.
    fn records(&self) -> Vec<Record> {
        let Ok(entries) = fs::read_dir(self.sessions_dir()) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.ends_with(".json") && !n.starts_with('.')
            })
            .filter_map(|e| fs::read_to_string(e.path()).ok())
            .filter_map(|t| registry::parse_record(&t).ok())
            .collect()
    }

    /// Stop every live session with `nono stop --force`; SIGKILL whatever
    /// survives that (and say so in the notes).
    fn stop_all(&self, notes: &mut Notes) -> Res<()> {
        let live: Vec<Record> = self
            .records()
            .into_iter()
            .filter(|r| procfs::is_same_process(r.supervisor_pid, r.supervisor_start_time))
            .collect();
        for r in &live {
            let stopped = self
                .nono(&["stop", &r.id, "--force"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(err("run nono stop"))
                .and_then(|mut c| wait_timeout(&mut c, Duration::from_secs(10)));
            if !matches!(&stopped, Ok(st) if st.success()) {
                notes.push(format!(
                    "cleanup: `nono stop {} --force` ({}) failed: {stopped:?}",
                    r.id,
                    r.containment.as_deref().unwrap_or("?")
                ));
            }
        }
        // The supervisor may still be flushing after `stop` returns; give it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        for r in &live {
            while procfs::is_same_process(r.supervisor_pid, r.supervisor_start_time)
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            if kill_leftovers(r) {
                notes.push(format!(
                    "cleanup: session {} outlived `nono stop --force`; killed it",
                    r.id
                ));
            }
        }
        Ok(())
    }
}

/// SIGKILL a session's supervisor and program if they still run; whether any did.
fn kill_leftovers(r: &Record) -> bool {
    let mut any = false;
    if procfs::is_same_process(r.supervisor_pid, r.supervisor_start_time) {
        let _ = sys::kill(r.supervisor_pid, libc::SIGKILL);
        any = true;
    }
    if let Some(c) = r.child_pid {
        if procfs::stat(c).is_some_and(|s| !matches!(s.state, 'Z' | 'X')) && r.status != "exited" {
            let _ = sys::killpg(c, libc::SIGKILL);
            any = true;
        }
    }
    any
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let mut notes = Notes::new();
        let _ = self.stop_all(&mut notes);
        self.stop_peers();
        for r in self.records() {
            kill_leftovers(&r);
        }
        // Every `Child` of this sandbox is reaped by now; what is left are adopted supervisors.
        while let Ok(Some(_)) = sys::wait_nohang(-1) {}
        for n in notes {
            eprintln!("runtime bench: {n}");
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// A process on a pty whose master we hold, started as a terminal emulator
/// starts a shell: session leader, the pty its controlling terminal.
struct OnPty {
    /// Our end (non-blocking).
    master: OwnedFd,
    /// The process.
    child: Child,
    /// Reaped already.
    done: bool,
}

impl OnPty {
    /// Start `cmd` on a new `ROWS`x`COLS` pty.
    fn spawn(cmd: Command) -> Res<OnPty> {
        OnPty::spawn_confined(cmd, sys::Confinement::default())
    }

    /// `spawn`, with `confine` applied before exec (to take kernel features away).
    fn spawn_confined(mut cmd: Command, confine: sys::Confinement) -> Res<OnPty> {
        let (master, slave) =
            sys::open_pty(WinSize::cells(ROWS, COLS)).map_err(err("open a pty"))?;
        let dup = |f: &OwnedFd| f.try_clone().map_err(err("dup the pty"));
        cmd.stdin(Stdio::from(dup(&slave)?))
            .stdout(Stdio::from(dup(&slave)?))
            .stderr(Stdio::from(slave));
        sys::make_session_leader_on_exec(&mut cmd, sys::getpid(), confine);
        let child = cmd.spawn().map_err(err("spawn on the pty"))?;
        // Our copies of the slave go with `cmd`, so EIO on the master marks the end.
        drop(cmd);
        sys::set_nonblocking(master.as_raw_fd(), true).map_err(err("pty"))?;
        Ok(OnPty {
            master,
            child,
            done: false,
        })
    }

    /// Wait for the process to exit.
    fn wait(&mut self, timeout: Duration) -> Res<ExitStatus> {
        let st = wait_timeout(&mut self.child, timeout)?;
        self.done = true;
        Ok(st)
    }

    /// SIGKILL the process group and reap the leader.
    fn kill(&mut self) {
        if !self.done {
            let _ = sys::killpg(self.child.id() as i32, libc::SIGKILL);
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.done = true;
        }
    }
}

impl Drop for OnPty {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Wait for `child` up to `timeout`; kill it on timeout.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Res<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().map_err(err("wait"))? {
            return Ok(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "pid {} did not exit within {timeout:?}",
                child.id()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Time `cmd` to completion with no input and output to /dev/null; it must succeed.
fn time_quiet(mut cmd: Command) -> Res<Duration> {
    let t0 = Instant::now();
    let st = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(err("run"))?;
    let elapsed = t0.elapsed();
    if !st.success() {
        return Err(format!("{:?} exited with {st}", cmd.get_program()));
    }
    Ok(elapsed)
}

/// Fail unless a finished command exited 0 with nothing on stderr.
fn check_output(out: &Output, what: &str) -> Res<()> {
    if out.status.success() && out.stderr.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{what} exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// Turn an io::Error into a message with context.
fn err(what: &'static str) -> impl Fn(io::Error) -> String {
    move |e| format!("{what}: {e}")
}

// --- Statistics and output -------------------------------------------------

/// The `p`th percentile (nearest rank) of `samples`.
fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut v = samples.to_vec();
    v.sort_unstable();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Bytes as MiB.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A duration in microseconds.
fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// A duration in milliseconds.
fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// First line of a command's output, or "unknown".
fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Date, kernel, CPU and mode, so results can be compared across machines.
fn print_header(s: &Sizes, nono: &Path) {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "nono runtime benchmarks ({})",
        if s.quick { "quick" } else { "full" }
    );
    println!("date:   {}", command_line("date", &["-u"]));
    println!("kernel: {}", command_line("uname", &["-sr"]));
    println!("cpu:    {cpu} (nproc {nproc})");
    println!("binary: {}", nono.display());
    println!();
}

/// The results as an aligned `benchmark | nono | bare | ratio` table, then
/// the rows measured against peers as `benchmark | nono | peers... | bare`.
fn print_table(rows: &[Row]) {
    let head = ["benchmark", "nono", "bare", "ratio"]
        .map(String::from)
        .to_vec();
    let main = rows.iter().map(|r| {
        vec![
            r.bench.clone(),
            r.nono.clone(),
            r.bare.clone(),
            r.ratio.clone(),
        ]
    });
    print_grid(&std::iter::once(head).chain(main).collect::<Vec<_>>());
    let with_peers: Vec<&Row> = rows.iter().filter(|r| !r.peers.is_empty()).collect();
    if with_peers.is_empty() {
        return;
    }
    println!();
    println!("Side by side with peers, same run (in brackets: nono ÷ that side):");
    println!();
    let head = std::iter::once("benchmark")
        .chain(std::iter::once("nono"))
        .chain(PEERS.iter().map(|p| p.name()))
        .chain(std::iter::once("bare pty"))
        .map(String::from)
        .collect();
    let lines = with_peers.iter().map(|r| {
        let mut cells = vec![r.bench.clone(), r.nono.clone()];
        cells.extend(r.peers.iter().cloned());
        cells.push(format!("{} ({})", r.bare, r.ratio));
        cells
    });
    print_grid(&std::iter::once(head).chain(lines).collect::<Vec<_>>());
}

/// Print `cells` (a header row first) aligned in columns: text left-aligned,
/// figures right-aligned, a rule under the header.
fn print_grid(cells: &[Vec<String>]) {
    let n = cells.iter().map(Vec::len).max().unwrap_or(0);
    let mut w = vec![0usize; n];
    for row in cells {
        for (w, c) in w.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut out = String::new();
        for (i, (c, w)) in row.iter().zip(&w).enumerate() {
            if i == 0 {
                let _ = write!(out, "{c:<w$}");
            } else {
                let _ = write!(out, " | {c:>w$}");
            }
        }
        out
    };
    for (i, row) in cells.iter().enumerate() {
        println!("{}", line(row));
        if i == 0 {
            let rule: Vec<String> = w.iter().map(|&w| "-".repeat(w)).collect();
            println!("{}", rule.join("-+-"));
        }
    }
}
