//! Rollback benchmarks (issue 12), each against the bare tool doing the
//! same work on the same generated tree, caches warm on both sides:
//!
//! - first capture (walk, copy into the store, SHA-256) against `cp -a`;
//! - an unchanged second capture (the stat fast path) against a bare
//!   `lstat` walk of the tree;
//! - `nono rollback restore` of 1,000 changed files against `cp -a` of
//!   the same files back;
//! - SHA-256 of one file, in-tree (SHA-NI and portable), against
//!   `sha256sum` and `openssl dgst -sha256`.

use super::{Notes, Res, Row, Sizes};
use nono::rollback::capture::{self, Limits, NewSession, Progress};
use nono::rollback::hash::{Engine, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The generated tree: (files, total bytes, files per directory).
fn shape(s: &Sizes) -> (usize, u64, usize) {
    if s.quick {
        (2_000, 20 << 20, 100)
    } else {
        (20_000, 500 << 20, 100)
    }
}

/// Files the restore row changes.
fn changed(s: &Sizes) -> usize {
    if s.quick {
        200
    } else {
        1_000
    }
}

/// Write the tree: mostly small files (0.5 to 16 KiB, like source) and
/// one large file per directory carrying the rest of the bytes.
fn generate(root: &Path, files: usize, bytes: u64, per_dir: usize) -> Res<()> {
    let mut rng = 0x1234_5678_u64;
    let dirs = files.div_ceil(per_dir);
    let small_total: u64 = (files - dirs) as u64 * 8 * 1024;
    let big = bytes.saturating_sub(small_total) / dirs as u64;
    let mut buf = Vec::new();
    for d in 0..dirs {
        let dir = root.join(format!("d{d:03}"));
        fs::create_dir_all(&dir).map_err(|e| format!("mkdir: {e}"))?;
        for f in 0..per_dir.min(files - d * per_dir) {
            let size = if f == 0 {
                big as usize
            } else {
                512 + (super::splitmix64(&mut rng) % (15 * 1024 + 512)) as usize
            };
            buf.clear();
            while buf.len() < size {
                buf.extend_from_slice(&super::splitmix64(&mut rng).to_le_bytes());
            }
            buf.truncate(size);
            fs::write(dir.join(format!("f{f:03}.txt")), &buf).map_err(|e| format!("write: {e}"))?;
        }
    }
    Ok(())
}

/// Run a command to success; its wall time.
fn timed(cmd: &mut Command) -> Res<f64> {
    let t = Instant::now();
    let o = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Every path under `dir`, lstat'ed (the bare walk).
fn stat_walk(dir: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(md) = fs::symlink_metadata(e.path()) {
                n += 1;
                if md.is_dir() {
                    n += stat_walk(&e.path());
                }
            }
        }
    }
    n
}

/// Timed runs per side of the first-capture and restore rows (alternated; medians).
const REPS: usize = 3;

/// Timed runs per side of the unchanged-capture row: each is tens of
/// milliseconds, so more runs cost little and steady the median.
const FAST_REPS: usize = 9;

/// Median of a few timings.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Milliseconds for humans.
fn ms(v: f64) -> String {
    format!("{:.0} ms", v * 1000.0)
}

/// The capture and restore rows.
pub fn bench_rollback(s: &Sizes, nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let root = PathBuf::from(format!("/tmp/nono-bench-{}-rollback", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let tree = root.join("tree");
    let state = root.join("state");
    fs::create_dir_all(&state).map_err(|e| e.to_string())?;
    let res = (|| {
        let (files, bytes, per_dir) = shape(s);
        generate(&tree, files, bytes, per_dir)?;
        // The library resolves its store from the environment, like the binary.
        std::env::set_var("XDG_STATE_HOME", &state);
        std::env::set_var("HOME", &root);
        let mut rows = Vec::new();

        // 1. First capture against cp -a (both read a warm tree), alternated,
        // each capture into an empty store; medians.
        let copy = root.join("copy");
        let roots = vec![tree.clone()];
        let limits = Limits {
            max_file: nono::defaults::ROLLBACK_MAX_FILE_BYTES,
            max_files: nono::defaults::ROLLBACK_MAX_FILES,
            max_bytes: nono::defaults::ROLLBACK_MAX_BYTES,
        };
        let (mut cps, mut firsts) = (Vec::new(), Vec::new());
        let mut kept = None;
        for rep in 0..REPS {
            cps.push(timed(Command::new("cp").arg("-a").arg(&tree).arg(&copy))?);
            let _ = fs::remove_dir_all(&copy);
            let _ = fs::remove_dir_all(&state);
            let id = nono::registry::new_id().map_err(|e| e.to_string())?;
            let session = NewSession {
                id: &id,
                name: "bench",
                command: &[],
                roots: &roots,
                excludes: &[],
                limits,
            };
            let t = Instant::now();
            let meta = capture::baseline(&session, &mut Progress::new(false, ""))
                .map_err(|e| e.to_string())?;
            firsts.push(t.elapsed().as_secs_f64());
            if rep == REPS - 1 {
                kept = Some((id, meta));
            }
        }
        let (id, meta) = kept.ok_or("no capture")?;
        let (cp, first) = (median(&mut cps), median(&mut firsts));
        rows.push(Row::new(
            &format!(
                "rollback first capture ({files} files, {} MiB) vs cp -a",
                bytes >> 20
            ),
            ms(first),
            ms(cp),
            first,
            cp,
        ));
        notes.push(format!(
            "rollback first capture: {} (goal: at most 1.5x cp -a)",
            meta.baseline.describe()
        ));

        // 2. Unchanged second capture against a bare lstat walk: both are
        // tens of milliseconds, so many runs, interleaved (the order flipped
        // each time), medians: one hiccup of a shared machine moves neither.
        let (mut walks, mut seconds, mut walked) = (Vec::new(), Vec::new(), 0);
        let capture = || -> Res<f64> {
            let t = Instant::now();
            let info = capture::final_capture(&id).map_err(|e| e.to_string())?;
            let took = t.elapsed().as_secs_f64();
            if info.bytes_read != 0 {
                return Err(format!(
                    "the unchanged capture read {} bytes",
                    info.bytes_read
                ));
            }
            Ok(took)
        };
        // A first one unmeasured: it links the index the later ones keep.
        capture()?;
        for rep in 0..FAST_REPS {
            let mut walk = || {
                let t = Instant::now();
                walked = stat_walk(&tree);
                t.elapsed().as_secs_f64()
            };
            if rep % 2 == 0 {
                walks.push(walk());
                seconds.push(capture()?);
            } else {
                seconds.push(capture()?);
                walks.push(walk());
            }
        }
        let (walk, second) = (median(&mut walks), median(&mut seconds));
        rows.push(Row::new(
            &format!("rollback unchanged capture ({walked} paths) vs stat walk"),
            ms(second),
            ms(walk),
            second,
            walk,
        ));
        notes.push(format!(
            "rollback unchanged capture: goal at most 2x a bare lstat walk (read_dir + symlink_metadata of every path); median of {FAST_REPS} runs each, interleaved; it read 0 bytes"
        ));

        // 3. Restore of changed files against copying them back: each round
        // the agent's change is made again and captured, then the restore
        // and `cp -a` of the originals back are timed; medians.
        let n = changed(s);
        let backup = root.join("backup");
        fs::create_dir_all(&backup).map_err(|e| e.to_string())?;
        let dirs: Vec<String> = (0..n.div_ceil(per_dir))
            .map(|d| format!("d{d:03}"))
            .collect();
        for d in &dirs {
            timed(Command::new("cp").arg("-a").arg(tree.join(d)).arg(&backup))?;
        }
        let (mut restores, mut backs) = (Vec::new(), Vec::new());
        for _ in 0..REPS {
            for d in &dirs {
                for f in fs::read_dir(tree.join(d))
                    .map_err(|e| e.to_string())?
                    .flatten()
                {
                    fs::write(f.path(), b"changed by the agent\n").map_err(|e| e.to_string())?;
                }
            }
            capture::final_capture(&id).map_err(|e| e.to_string())?;
            let t = Instant::now();
            let o = Command::new(nono)
                .args(["rollback", "restore", &id, "--yes"])
                .env("XDG_STATE_HOME", &state)
                .env("HOME", &root)
                .output()
                .map_err(|e| e.to_string())?;
            restores.push(t.elapsed().as_secs_f64());
            if !o.status.success() {
                return Err(format!("restore: {}", String::from_utf8_lossy(&o.stderr)));
            }
            let restored = String::from_utf8_lossy(&o.stdout);
            if !restored.contains(&format!("Restored {n} paths")) {
                return Err(format!("restore did not write {n} paths: {restored}"));
            }
            let mut cp_back = Command::new("cp");
            cp_back.arg("-a");
            for d in &dirs {
                cp_back.arg(backup.join(d));
            }
            cp_back.arg(&tree);
            backs.push(timed(&mut cp_back)?);
        }
        let (restore, back) = (median(&mut restores), median(&mut backs));
        rows.push(Row::new(
            &format!("rollback restore of {n} changed files vs cp -a back"),
            ms(restore),
            ms(back),
            restore,
            back,
        ));
        notes.push(format!("rollback restore: the whole command (walk, plan, journal, copy from the store verifying each hash), median of {REPS} rounds; cp -a of the same files over them; goal at most 2x"));
        Ok(rows)
    })();
    let _ = fs::remove_dir_all(&root);
    res
}

/// SHA-256 throughput against sha256sum and OpenSSL on the same file.
pub fn bench_sha256(s: &Sizes, _nono: &Path, notes: &mut Notes) -> Res<Vec<Row>> {
    let size: usize = if s.quick { 32 << 20 } else { 256 << 20 };
    let path = PathBuf::from(format!("/tmp/nono-bench-{}-sha256", std::process::id()));
    let mut rng = 42u64;
    let data: Vec<u8> = (0..size / 8)
        .flat_map(|_| super::splitmix64(&mut rng).to_le_bytes())
        .collect();
    fs::write(&path, &data).map_err(|e| e.to_string())?;
    let res = (|| {
        let mb = size as f64 / (1 << 20) as f64;
        let ours = |engine: Engine| -> Res<f64> {
            let t = Instant::now();
            let content = fs::read(&path).map_err(|e| e.to_string())?;
            let mut h = Sha256::with_engine(engine);
            h.update(&content);
            std::hint::black_box(h.finish());
            Ok(t.elapsed().as_secs_f64())
        };
        let ni = ours(Engine::best())?;
        let portable = ours(Engine::Portable)?;
        let speed = |t: f64| format!("{:.0} MiB/s", mb / t);
        let mut rows = Vec::new();
        let engine = if Engine::best() == Engine::ShaNi {
            "SHA-NI"
        } else {
            "portable"
        };
        for (tool, args) in [("sha256sum", vec![]), ("openssl", vec!["dgst", "-sha256"])] {
            let mut c = Command::new(tool);
            c.args(&args).arg(&path);
            match timed(&mut c) {
                // Ratio of times: above 1 means nono is slower.
                Ok(t) => {
                    rows.push(Row::new(
                        &format!("sha256 {engine} vs {tool}"),
                        speed(ni),
                        speed(t),
                        ni,
                        t,
                    ));
                    rows.push(Row::new(
                        &format!("sha256 portable vs {tool}"),
                        speed(portable),
                        speed(t),
                        portable,
                        t,
                    ));
                }
                Err(e) => notes.push(format!("sha256 vs {tool}: not measured ({e})")),
            }
        }
        notes.push(format!(
            "sha256: one {mb:.0} MiB file read and hashed; ratios are of times"
        ));
        Ok(rows)
    })();
    let _ = fs::remove_file(&path);
    res
}
