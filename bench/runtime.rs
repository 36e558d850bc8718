//! Runtime benchmarks: what a nono session costs compared with the same work
//! done without nono, each reported as a ratio (nono ÷ bare) in one table.
//!
//! 1. Attached throughput: a program prints fixed-size 80-byte lines on a
//!    real pty whose master this bench drains as fast as it can; bare runs
//!    the program on that pty, nono runs `nono run -- <program>` on it.
//! 2. Keystroke echo round trip: one byte written to the pty master, timed
//!    until it comes back; the echo is done by `cat` under `stty raw -echo`
//!    in both cases, so the only difference is nono's relay.
//! 3. Detached start: `nono run --detached -- sleep 1000` until it returns,
//!    against opening a pty and spawning `sleep 1000` on it (fork+exec).
//! 4. `nono ps --all` over synthetic exited records, against `cat` of the
//!    same record files.
//! 5. Idle supervisor RSS, against the RSS of a bare `sleep`.
//!
//! Every benchmark runs in its own HOME/XDG_STATE_HOME/XDG_CONFIG_HOME under
//! /tmp and stops every session it started. `NONO_BENCH_QUICK=1` shrinks the
//! sizes for a smoke test; `NONO_BIN` measures another binary.

use nanoserde::SerJson;
use nono::procfs;
use nono::registry::{self, Record, RECORD_VERSION};
use nono::sys::{self, PollFd, WinSize, POLLIN};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
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
}

impl Row {
    /// A row whose ratio is nono ÷ bare.
    fn new(bench: &str, nono: String, bare: String, nono_v: f64, bare_v: f64) -> Row {
        let ratio = if bare_v > 0.0 {
            format!("{:.2}x", nono_v / bare_v)
        } else {
            "-".into()
        };
        Row {
            bench: bench.into(),
            nono,
            bare,
            ratio,
        }
    }

    /// A row for a benchmark that could not run.
    fn failed(bench: &str) -> Row {
        Row {
            bench: bench.into(),
            nono: "FAILED".into(),
            bare: "-".into(),
            ratio: "-".into(),
        }
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
    let benches: [(&str, Bench); 5] = [
        ("attached throughput", bench_throughput),
        ("keystroke echo", bench_echo),
        ("detached start", bench_start),
        ("ps --all", bench_ps),
        ("idle supervisor RSS", bench_rss),
    ];
    for (name, f) in benches {
        eprintln!("runtime bench: {name}...");
        match f(&sizes, &nono, &mut notes) {
            Ok(r) => rows.extend(r),
            Err(e) => {
                notes.push(format!("{name} FAILED: {e}"));
                rows.push(Row::failed(name));
            }
        }
    }
    rows.extend(term_model_rows(&sizes, &mut notes));
    print_table(&rows);
    println!();
    for n in &notes {
        println!("- {n}");
    }
    println!();
    println!("Total bench time: {:.1} s", started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------
// TERMINAL MODEL HOOK. The terminal model (src/term/) is being written
// separately, so this bench deliberately does not call it yet. Add its
// parse-speed rows here once `nono::term::Terminal` is stable: build fixed
// corpora (plain 80-column lines, SGR-heavy colour output, cursor-addressed
// full-screen redraws, wide and combining UTF-8), time `Terminal::feed` over
// each in 64 KiB chunks, and report MiB/s against a bare pass over the same
// bytes (e.g. counting newlines) with `Row::new`. The attached-throughput
// row above already includes whatever `feed` costs inside the supervisor.
// ---------------------------------------------------------------------------

/// Parse-speed rows for the terminal model; none until it lands (see above).
fn term_model_rows(_sizes: &Sizes, notes: &mut Notes) -> Vec<Row> {
    notes.push("terminal model parse speed: not measured yet (hook in term_model_rows)".into());
    Vec::new()
}

// --- 1. Attached throughput ------------------------------------------------

/// Median MiB/s of a line-printing program on a pty, bare and under `nono run`.
fn bench_throughput(s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let sb = Sandbox::new("throughput", nono)?;
    let line = "a".repeat(LINE_CHARS);
    let script = format!("yes {line} | head -c {}", s.throughput_bytes);
    // ONLCR on the program's pty turns each "\n" into "\r\n".
    let expected = s.throughput_bytes + s.throughput_bytes / (LINE_CHARS as u64 + 1);
    let mut bare = Vec::new();
    let mut via = Vec::new();
    for _ in 0..s.throughput_reps {
        // Alternate sides so drift in machine load hits both alike.
        bare.push(drain_run(sb.bare("sh", &["-c", &script]))?);
        via.push(drain_run(sb.nono(&["run", "--", "sh", "-c", &script]))?);
    }
    sb.stop_all(notes)?;
    let rate = |runs: &[(Duration, u64)]| -> (f64, u64) {
        let mut r: Vec<f64> = runs
            .iter()
            .map(|(d, n)| mib(*n) / d.as_secs_f64())
            .collect();
        r.sort_by(f64::total_cmp);
        (r[r.len() / 2], runs.iter().map(|x| x.1).min().unwrap_or(0))
    };
    let (bare_rate, bare_min) = rate(&bare);
    let (nono_rate, nono_min) = rate(&via);
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
        "throughput: {} MiB of {}-byte lines, median of {} run(s) per side; ratio < 1 means nono is slower",
        s.throughput_bytes >> 20,
        LINE_CHARS + 1,
        s.throughput_reps
    ));
    Ok(vec![Row::new(
        &format!("attached throughput, {} MiB", s.throughput_bytes >> 20),
        format!("{nono_rate:.0} MiB/s"),
        format!("{bare_rate:.0} MiB/s"),
        nono_rate,
        bare_rate,
    )])
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
/// kernel does not echo it, then a marker saying it is ready.
const ECHO_SCRIPT: &str = "stty raw -echo && printf R && exec cat";

/// Keystrokes sent before timing starts (caches, page faults, first wakeups).
const ECHO_WARMUP: usize = 20;

/// Median and p99 of one-byte round trips through `cat`, bare and under `nono run`.
fn bench_echo(s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let sb = Sandbox::new("echo", nono)?;
    let bare = {
        // Dropping `p` kills `cat`.
        let p = OnPty::spawn(sb.bare("sh", &["-c", ECHO_SCRIPT]))?;
        echo_round_trips(&p.master, s.keystrokes).map_err(|e| format!("bare: {e}"))?
    };
    let via = {
        let mut p = OnPty::spawn(sb.nono(&["run", "--", "sh", "-c", ECHO_SCRIPT]))?;
        let r = echo_round_trips(&p.master, s.keystrokes).map_err(|e| format!("nono: {e}"));
        // Ending the session ends the client with it (status 128+9).
        sb.stop_all(notes)?;
        let _ = drain_for(&p.master, Duration::from_millis(100));
        if p.wait(Duration::from_secs(10)).is_err() {
            notes.push(
                "echo: the attached client did not exit after its session was stopped".into(),
            );
        }
        r?
    };
    let (bm, b99) = (percentile(&bare, 50.0), percentile(&bare, 99.0));
    let (nm, n99) = (percentile(&via, 50.0), percentile(&via, 99.0));
    notes.push(format!(
        "echo: {} keystrokes after {ECHO_WARMUP} warm-up, echoed by `cat` under `stty raw -echo` on both sides; ratio > 1 means nono is slower",
        s.keystrokes
    ));
    Ok(vec![
        Row::new(
            "keystroke echo, median",
            us(nm),
            us(bm),
            nm.as_secs_f64(),
            bm.as_secs_f64(),
        ),
        Row::new(
            "keystroke echo, p99",
            us(n99),
            us(b99),
            n99.as_secs_f64(),
            b99.as_secs_f64(),
        ),
    ])
}

/// Wait for the program's ready marker, then time `n` single-byte echoes.
fn echo_round_trips(master: &OwnedFd, n: usize) -> Res<Vec<Duration>> {
    let fd = master.as_raw_fd();
    wait_for_byte(fd, b'R', HANG).map_err(|e| format!("ready marker: {e}"))?;
    let mut times = Vec::with_capacity(n);
    for i in 0..ECHO_WARMUP + n {
        // Letters only: no control character the client or pty would act on.
        let key = b'a' + (i % 26) as u8;
        let t0 = Instant::now();
        sys::write_all(fd, &[key]).map_err(err("write pty"))?;
        wait_for_byte(fd, key, Duration::from_secs(5))
            .map_err(|e| format!("keystroke {i}: {e}"))?;
        if i >= ECHO_WARMUP {
            times.push(t0.elapsed());
        }
    }
    Ok(times)
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
            supervisor_pid: 100_000 + i as i32,
            supervisor_start_time: 1_000 + i as u64,
            child_pid: Some(100_001 + i as i32),
            started_at: started,
            ended_at: Some(started + 30),
            exit_code: Some((i % 3) as i32),
            exit_signal: None,
            rollback_session: None,
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
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS for pid {pid}"))
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
                    "cleanup: `nono stop {} --force` failed: {stopped:?}",
                    r.id
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
    fn spawn(mut cmd: Command) -> Res<OnPty> {
        let (master, slave) =
            sys::open_pty(WinSize::cells(ROWS, COLS)).map_err(err("open a pty"))?;
        let dup = |f: &OwnedFd| f.try_clone().map_err(err("dup the pty"));
        cmd.stdin(Stdio::from(dup(&slave)?))
            .stdout(Stdio::from(dup(&slave)?))
            .stderr(Stdio::from(slave));
        sys::make_session_leader_on_exec(&mut cmd, sys::getpid());
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

/// The results as an aligned `benchmark | nono | bare | ratio` table.
fn print_table(rows: &[Row]) {
    let head = ["benchmark", "nono", "bare", "ratio"];
    let cells: Vec<[&str; 4]> = std::iter::once(head)
        .chain(
            rows.iter()
                .map(|r| [&*r.bench, &*r.nono, &*r.bare, &*r.ratio]),
        )
        .collect();
    let mut w = [0usize; 4];
    for row in &cells {
        for (w, c) in w.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[&str; 4]| {
        // Text left-aligned, figures right-aligned.
        format!(
            "{:<a$} | {:>b$} | {:>c$} | {:>d$}",
            row[0],
            row[1],
            row[2],
            row[3],
            a = w[0],
            b = w[1],
            c = w[2],
            d = w[3]
        )
    };
    println!("{}", line(&cells[0]));
    println!(
        "{}-+-{}-+-{}-+-{}",
        "-".repeat(w[0]),
        "-".repeat(w[1]),
        "-".repeat(w[2]),
        "-".repeat(w[3])
    );
    for row in &cells[1..] {
        println!("{}", line(row));
    }
}
