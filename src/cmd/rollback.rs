//! `nono rollback`: review and undo what a session started with
//! `--rollback` did: `list`, `show`, `restore`, `verify`, `prune`.

use crate::error::{Error, Result};
use crate::out::{fmt_time, print, warn};
use crate::registry::{self, Registry, Session};
use crate::rollback::capture;
use crate::rollback::diff;
use crate::rollback::plan::{self, Decision, Step, Target};
use crate::rollback::restore::{self, Journal, RecordInfo};
use crate::rollback::store::Store;
use crate::rollback::{self as rb, CaptureInfo, Entry, Index, Kind, Meta};
use crate::sys;
use lexopt::prelude::*;
use nanoserde::SerJson;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::{BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// `nono rollback --help`.
pub const USAGE: &str = "\
Usage: nono rollback list [--json]
       nono rollback show SESSION [--diff] [PATH...]
       nono rollback restore SESSION [--to baseline|final] [--undo] [--dry-run]
                             [--force] [--yes] [PATH...]
       nono rollback verify SESSION
       nono rollback prune [--dry-run] [--older-than DAYS] [--keep N]

Review and undo what a session started with 'nono run --rollback' changed
in its writable directories. 'list' shows sessions with captures; 'show'
lists each changed path (+ created, ~ modified, - deleted, m mode only);
'restore' puts paths back three-way: only where the tree still equals
what the session left (anything changed since is a conflict, skipped
unless --force), never deleting a path the session did not have,
recording what it changes so --undo can put it back, one restore at a
time in a directory, and finishing one cut off when run again; 'verify'
checks every stored object; 'prune' removes captures of ended sessions
and the objects nothing refers to any more. Gitignored paths, VCS metadata,
--rollback-exclude patterns and files over the size limit are never
touched. PATH limits show and restore to those paths.

Options:
      --json             list: print a JSON array
      --diff             show: print a unified diff of each text file
      --to WHICH         restore: baseline (default) or final
      --undo             restore: undo the latest restore of SESSION
  -n, --dry-run          restore, prune: print the plan; change nothing
      --force            restore: apply conflicts too (never deletes a
                         path in neither the baseline nor the final state)
  -y, --yes              restore: do not ask (required without a terminal)
      --older-than DAYS  prune: only sessions that ended DAYS ago or more
      --keep N           prune: keep the N most recent ended sessions
  -h, --help             show this help
";

/// Parsed command line.
#[derive(Default)]
struct Args {
    words: Vec<String>,
    json: bool,
    diff: bool,
    to: Option<Target>,
    undo: bool,
    dry: bool,
    force: bool,
    yes: bool,
    older_days: Option<f64>,
    keep: usize,
}

/// Parse and run `nono rollback`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let mut a = Args::default();
    while let Some(arg) = p.next()? {
        match arg {
            Long("json") => a.json = true,
            Long("diff") => a.diff = true,
            Long("to") => {
                let v = p.value()?.string()?;
                a.to = Some(match v.as_str() {
                    "baseline" => Target::Baseline,
                    "final" => Target::Final,
                    _ => {
                        return Err(Error::Usage(format!(
                            "--to takes 'baseline' or 'final', not '{v}'"
                        )))
                    }
                });
            }
            Long("undo") => a.undo = true,
            Short('n') | Long("dry-run") => a.dry = true,
            Long("force") => a.force = true,
            Short('y') | Long("yes") => a.yes = true,
            Long("older-than") => {
                a.older_days = Some(super::bounded(
                    p,
                    "--older-than",
                    f64::MAX,
                    "a number of days",
                )?)
            }
            Long("keep") => a.keep = super::value(p, "--keep", "a whole number")?,
            Short('h') | Long("help") => {
                print(USAGE)?;
                return Ok(0);
            }
            Value(v) => a.words.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let Some(sub) = a.words.first().cloned() else {
        return Err(Error::Usage(
            "rollback needs list, show, restore, verify or prune".into(),
        ));
    };
    let allowed: &[&str] = match sub.as_str() {
        "list" => &["json"],
        "show" => &["diff"],
        "restore" => &["to", "undo", "dry", "force", "yes"],
        "verify" => &[],
        "prune" => &["dry", "older", "keep"],
        other => {
            return Err(Error::Usage(format!(
                "unknown rollback command '{other}'; use list, show, restore, verify or prune"
            )))
        }
    };
    let given = [
        ("json", a.json, "--json"),
        ("diff", a.diff, "--diff"),
        ("to", a.to.is_some(), "--to"),
        ("undo", a.undo, "--undo"),
        ("dry", a.dry, "--dry-run"),
        ("force", a.force, "--force"),
        ("yes", a.yes, "--yes"),
        ("older", a.older_days.is_some(), "--older-than"),
        ("keep", a.keep > 0, "--keep"),
    ];
    if let Some((_, _, flag)) = given.iter().find(|(k, on, _)| *on && !allowed.contains(k)) {
        return Err(Error::Usage(format!("rollback {sub} does not take {flag}")));
    }
    if a.undo && a.to.is_some() {
        return Err(Error::Usage("give --undo or --to, not both".into()));
    }
    let rest = &a.words[1..];
    match sub.as_str() {
        "list" => no_more(rest, "list").and_then(|_| list(a.json)),
        "prune" => no_more(rest, "prune").and_then(|_| prune(&a)),
        _ => {
            let Some(query) = rest.first() else {
                return Err(Error::Usage(format!(
                    "rollback {sub} needs a SESSION (an id prefix or a name)"
                )));
            };
            let (dir, meta) = find(query)?;
            let paths = &rest[1..];
            match sub.as_str() {
                "show" => show(&dir, &meta, paths, a.diff),
                "restore" => restore_cmd(&dir, &meta, paths, &a),
                _ => no_more(paths, "verify").and_then(|_| verify(&dir, &meta)),
            }
        }
    }
}

/// Refuse extra operands.
fn no_more(rest: &[String], sub: &str) -> Result<()> {
    match rest.first() {
        None => Ok(()),
        Some(w) => Err(Error::Usage(format!("rollback {sub} takes no '{w}'"))),
    }
}

/// Every rollback session on disk: (dir, meta), oldest first; unreadable ones are warned about.
fn sessions() -> Result<Vec<(PathBuf, Meta)>> {
    let dir = rb::base_dir()?.join("sessions");
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n.len() != 16 || !n.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        match rb::read_meta(&e.path()) {
            Ok(m) => out.push((e.path(), m)),
            // A baseline still being written has no meta yet.
            Err(_) if !e.path().join("meta.json").exists() => {}
            Err(err) => warn(&format!("skipping {}: {err}", e.path().display())),
        }
    }
    out.sort_by_key(|(_, m)| (m.baseline.time, m.id.clone()));
    Ok(out)
}

/// Find a rollback session by id, id prefix or name (the latest of that name).
fn find(query: &str) -> Result<(PathBuf, Meta)> {
    let all = sessions()?;
    if let Some(s) = all.iter().find(|(_, m)| m.id == query) {
        return Ok(s.clone());
    }
    if let Some(s) = all.iter().rev().find(|(_, m)| m.name == query) {
        return Ok(s.clone());
    }
    let q = query.to_ascii_lowercase();
    let hits: Vec<&(PathBuf, Meta)> = all.iter().filter(|(_, m)| m.id.starts_with(&q)).collect();
    match hits.len() {
        1 => Ok(hits[0].clone()),
        0 => Err(Error::Msg(format!(
            "no rollback session matches '{query}'; 'nono rollback list' lists them"
        ))),
        _ => {
            let ids: Vec<String> = hits.iter().map(|(_, m)| m.id.clone()).collect();
            Err(Error::Ambiguous(query.into(), registry::short_ids(&ids)))
        }
    }
}

/// The nono session of a rollback session, if its record still exists.
fn session_of(id: &str) -> Option<Session> {
    let reg = Registry::open().ok()?;
    reg.resolve(id).ok().filter(|s| s.record.id == id)
}

/// Whether the session's supervisor still runs.
fn is_live(id: &str) -> bool {
    session_of(id).is_some_and(|s| s.state.is_live())
}

/// Short ids for all rollback sessions.
fn short_of(id: &str) -> String {
    let ids: Vec<String> = sessions()
        .map(|v| v.into_iter().map(|(_, m)| m.id).collect())
        .unwrap_or_default();
    let mut ids = ids;
    if !ids.iter().any(|i| i == id) {
        ids.push(id.to_string());
    }
    let shorts = registry::short_ids(&ids);
    ids.iter()
        .position(|i| i == id)
        .map_or_else(|| id.to_string(), |i| shorts[i].clone())
}

/// The baseline and final indexes of every root (final None when it was never captured).
fn indexes(dir: &Path, meta: &Meta) -> Result<Vec<(Index, Option<Index>)>> {
    (0..meta.roots.len())
        .map(|i| {
            let b = rb::read_index(&dir.join(capture::index_name("baseline", i)))?;
            let f = match meta.final_capture {
                Some(_) => Some(rb::read_index(&dir.join(capture::index_name("final", i)))?),
                None => None,
            };
            Ok((b, f))
        })
        .collect()
}

/// One line of `rollback list --json`.
#[derive(SerJson)]
#[nserde(serialize_none_as_null)]
struct ListItem {
    id: String,
    name: String,
    status: String,
    roots: Vec<String>,
    started_at: u64,
    final_at: Option<u64>,
    changed: Option<u64>,
    restores: u64,
    baseline: CaptureInfo,
    #[nserde(rename = "final")]
    final_capture: Option<CaptureInfo>,
}

/// The session's state as list shows it.
fn status(meta: &Meta) -> &'static str {
    if is_live(&meta.id) {
        "running"
    } else if meta.final_capture.is_some() {
        "ended"
    } else {
        "no-final"
    }
}

/// Paths that differ between two captures.
fn changed_count(b: &Index, f: &Index) -> u64 {
    let keys: BTreeSet<&Vec<u8>> = b.keys().chain(f.keys()).collect();
    keys.into_iter()
        .filter(|k| match (b.get(*k), f.get(*k)) {
            (Some(x), Some(y)) => !x.same(y),
            _ => true,
        })
        .count() as u64
}

/// `rollback list`.
fn list(json: bool) -> Result<i32> {
    let all = sessions()?;
    let ids: Vec<String> = all.iter().map(|(_, m)| m.id.clone()).collect();
    let shorts = registry::short_ids(&ids);
    let mut items = Vec::new();
    for (dir, m) in &all {
        let changed = indexes(dir, m).ok().and_then(|ix| {
            ix.iter()
                .map(|(b, f)| f.as_ref().map(|f| changed_count(b, f)))
                .sum::<Option<u64>>()
        });
        items.push(ListItem {
            id: m.id.clone(),
            name: m.name.clone(),
            status: status(m).into(),
            roots: m.roots.clone(),
            started_at: m.baseline.time,
            final_at: m.final_capture.as_ref().map(|f| f.time),
            changed,
            restores: restore::records(dir).len() as u64,
            baseline: m.baseline.clone(),
            final_capture: m.final_capture.clone(),
        });
    }
    if json {
        print(&format!("{}\n", items.serialize_json()))?;
        return Ok(0);
    }
    if items.is_empty() {
        print(
            "No rollback sessions. Start one with 'nono run --rollback --allow-cwd -- COMMAND'.\n",
        )?;
        return Ok(0);
    }
    let mut rows = vec![[
        "SESSION".to_string(),
        "NAME".into(),
        "STATUS".into(),
        "STARTED".into(),
        "CHANGED".into(),
        "STORED".into(),
        "ROOT".into(),
    ]];
    for (it, short) in items.iter().zip(&shorts) {
        let stored =
            it.baseline.bytes_stored + it.final_capture.as_ref().map_or(0, |f| f.bytes_stored);
        rows.push([
            short.clone(),
            it.name.clone(),
            it.status.clone(),
            fmt_time(it.started_at),
            it.changed.map_or("-".into(), |c| c.to_string()),
            rb::human_bytes(stored),
            it.roots.join(", "),
        ]);
    }
    print(&columns(&rows))?;
    Ok(0)
}

/// Left-aligned columns, two spaces apart.
fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut w = [0usize; N];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(&format!("{c:<width$}  ", width = w[i]));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A path for humans (lossy UTF-8, control characters escaped).
fn shown(path: &[u8]) -> String {
    let text = String::from_utf8_lossy(path);
    if !text.chars().any(char::is_control) {
        return text.into_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What a change from `a` to `b` is: `+`, `-`, `~` or `m`.
fn symbol(a: Option<&Entry>, b: Option<&Entry>) -> char {
    match (a, b) {
        (None, _) => '+',
        (_, None) => '-',
        (Some(x), Some(y)) if x.kind == y.kind => 'm',
        _ => '~',
    }
}

/// A short description of an entry.
fn describe(e: &Entry) -> String {
    match &e.kind {
        Kind::File { size, .. } => format!("{} {:o}", rb::human_bytes(*size), e.mode),
        Kind::Big(size) => format!("{} (not captured)", rb::human_bytes(*size)),
        Kind::Link(t) => format!("symlink -> {}", shown(t)),
        Kind::Dir => format!("directory {:o}", e.mode),
    }
}

/// Turn PATH arguments into root-relative filters per root.
fn filters(meta: &Meta, paths: &[String]) -> Result<Vec<Vec<Vec<u8>>>> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::io("cannot determine the current directory", e))?;
    let mut per = vec![Vec::new(); meta.roots.len()];
    for p in paths {
        let abs = normalize(&cwd.join(p));
        let hit = meta.roots.iter().enumerate().find_map(|(i, r)| {
            abs.strip_prefix(r)
                .ok()
                .map(|rel| (i, rel.as_os_str().as_bytes().to_vec()))
        });
        match hit {
            Some((i, rel)) if rel.is_empty() => per[i].clear(),
            Some((i, rel)) => per[i].push(rel),
            None => {
                return Err(Error::Usage(format!(
                    "{p} is not under the session's captured directories ({})",
                    meta.roots.join(", ")
                )))
            }
        }
    }
    // A root given no PATH while others were is skipped entirely.
    if !paths.is_empty() {
        for (i, f) in per.iter_mut().enumerate() {
            if f.is_empty()
                && !paths
                    .iter()
                    .any(|p| normalize(&cwd.join(p)) == Path::new(&meta.roots[i]))
            {
                f.push(b"\0none".to_vec());
            }
        }
    }
    Ok(per)
}

/// `.` and `..` removed lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Read a stored object (for diffs), at most `limit` bytes.
fn object(store: &Store, hash: &rb::Digest, limit: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut v = Vec::new();
    store
        .open_object(hash)
        .ok()?
        .take(limit)
        .read_to_end(&mut v)
        .ok()?;
    Some(v)
}

/// Largest file `--diff` compares.
const DIFF_MAX: u64 = 8 * 1024 * 1024;

/// `rollback show`.
fn show(dir: &Path, meta: &Meta, paths: &[String], with_diff: bool) -> Result<i32> {
    let filt = filters(meta, paths)?;
    let ixs = indexes(dir, meta)?;
    let store = Store::open(&rb::base_dir()?)?;
    let short = short_of(&meta.id);
    let mut out = format!(
        "Session {short} ({}): {}\n",
        meta.name,
        meta.command.join(" ")
    );
    if meta.final_capture.is_none() {
        out.push_str(if is_live(&meta.id) {
            "Still running: showing its changes so far (the tree now against the baseline).\n"
        } else {
            "The final state was never captured (the supervisor died): showing the tree now against the baseline.\n"
        });
    }
    let mut total = 0;
    for (i, (b, f)) in ixs.iter().enumerate() {
        let now;
        let f = match f {
            Some(f) => f,
            None => {
                now = capture::current(meta, i, Some(b))?.0;
                &now
            }
        };
        out.push_str(&format!("{}:\n", meta.roots[i]));
        let keys: BTreeSet<&Vec<u8>> = b.keys().chain(f.keys()).collect();
        let mut n = 0;
        for k in keys {
            if !plan::selected(k, &filt[i]) {
                continue;
            }
            let (x, y) = (b.get(k), f.get(k));
            if matches!((x, y), (Some(x), Some(y)) if x.same(y)) {
                continue;
            }
            n += 1;
            let what = match (x, y) {
                (Some(x), Some(y)) if x.kind == y.kind => {
                    format!("mode {:o} -> {:o}", x.mode, y.mode)
                }
                (Some(x), Some(y)) => format!("{} -> {}", describe(x), describe(y)),
                (None, Some(y)) => describe(y),
                (Some(x), None) => describe(x),
                (None, None) => String::new(),
            };
            out.push_str(&format!("  {} {}  ({what})\n", symbol(x, y), shown(k)));
            if with_diff {
                out.push_str(&file_diff(&store, &shown(k), x, y));
            }
        }
        if n == 0 {
            out.push_str("  no changes\n");
        }
        total += n;
    }
    if total > 0 {
        out.push_str(&format!(
            "{total} changed. Undo them with: nono rollback restore {short}\n"
        ));
    }
    print(&out)?;
    Ok(0)
}

/// The diff of one changed path for `show --diff`.
fn file_diff(store: &Store, name: &str, a: Option<&Entry>, b: Option<&Entry>) -> String {
    let content = |e: Option<&Entry>| -> std::result::Result<Option<Vec<u8>>, String> {
        match e.map(|e| &e.kind) {
            None => Ok(None),
            Some(Kind::File { size, .. }) if *size > DIFF_MAX => Err("too large to diff".into()),
            Some(Kind::File { hash, .. }) => object(store, hash, DIFF_MAX)
                .map(Some)
                .ok_or_else(|| "content missing from the store".into()),
            Some(_) => Err(String::new()),
        }
    };
    match (content(a), content(b)) {
        (Ok(x), Ok(y)) => {
            if x.as_deref().is_some_and(diff::is_binary)
                || y.as_deref().is_some_and(diff::is_binary)
            {
                return format!("    Binary files a/{name} and b/{name} differ\n");
            }
            diff::unified(name, x.as_deref(), y.as_deref())
        }
        (Err(m), _) | (_, Err(m)) if !m.is_empty() => format!("    ({m})\n"),
        _ => String::new(),
    }
}

/// Which restore a `restore` invocation is.
enum Mode {
    /// To a capture.
    To(Target),
    /// Undo record N.
    Undo(PathBuf, RecordInfo),
}

/// `rollback restore`.
fn restore_cmd(dir: &Path, meta: &Meta, paths: &[String], a: &Args) -> Result<i32> {
    let short = short_of(&meta.id);
    if is_live(&meta.id) {
        return Err(Error::Msg(format!(
            "session {short} is still running; stop it first ('nono stop {short}'), then restore"
        )));
    }
    let filt = filters(meta, paths)?;
    let records = restore::records(dir);
    let mode = if a.undo {
        let Some((rdir, info)) = records.last().cloned() else {
            return Err(Error::Msg(format!(
                "session {short} has no restore to undo"
            )));
        };
        // An undo that was cut off is finished, not undone in turn.
        let undone = info
            .undo_of
            .filter(|_| !info.complete)
            .and_then(|n| records.iter().find(|(_, r)| r.n == n).cloned());
        match undone {
            Some((d, r)) => Mode::Undo(d, r),
            None => Mode::Undo(rdir, info),
        }
    } else {
        let t = a.to.unwrap_or(Target::Baseline);
        if t == Target::Final && meta.final_capture.is_none() {
            return Err(Error::Msg(format!(
                "session {short} has no final capture (its supervisor died), so there is nothing to restore --to final"
            )));
        }
        Mode::To(t)
    };
    // One restore at a time in a root; a dry run only reads.
    let _roots_lock = if a.dry {
        None
    } else {
        let who = format!(
            "'nono rollback restore {short}' is writing there (pid {}, since {})",
            std::process::id(),
            fmt_time(registry::now())
        );
        Some(rb::lock_roots(&meta.roots, &who, true)?)
    };
    let _lock = rb::lock_store(false)?;
    let store = Store::open(&rb::base_dir()?)?;
    // The record: resume an interrupted restore of the same kind, else a new one.
    let kind = match &mode {
        Mode::To(Target::Baseline) => "baseline",
        Mode::To(Target::Final) => "final",
        Mode::Undo(..) => "undo",
    };
    let undo_of = match &mode {
        Mode::Undo(_, info) => Some(info.n),
        _ => None,
    };
    let resume = records
        .last()
        .filter(|(_, r)| !r.complete && r.target == kind && r.undo_of == undo_of)
        .cloned();
    // A path whose in-place write the interrupted run began and never
    // finished holds part of its target: finishing it is ours to do.
    let cut_off = resume.as_ref().and_then(|(d, _)| restore::cut_off_write(d));
    let leftover = restore::leftover_prefixes(dir);
    let mut leftovers: Vec<Vec<Vec<u8>>> = Vec::new();
    // Per root: (B', F', C, plan) where for an undo B' = pre and F' = post.
    let mut plans = Vec::new();
    for (i, filter) in filt.iter().enumerate() {
        let (b, f) = match &mode {
            Mode::To(_) => {
                let b = rb::read_index(&dir.join(capture::index_name("baseline", i)))?;
                let f = match meta.final_capture {
                    Some(_) => Some(rb::read_index(&dir.join(capture::index_name("final", i)))?),
                    None => None,
                };
                (b, f)
            }
            Mode::Undo(rdir, _) => (
                read_or_empty(&rdir.join(capture::index_name("pre", i)))?,
                Some(read_or_empty(&rdir.join(capture::index_name("post", i)))?),
            ),
        };
        let prev = f.as_ref().unwrap_or(&b);
        let (mut c, _) = capture::current(meta, i, Some(prev))?;
        // Temporary files a killed restore left: removed, never planned.
        let mut gone: Vec<Vec<u8>> = Vec::new();
        c.retain(|k, _| {
            let ours = restore::is_leftover(k, &leftover);
            if ours {
                gone.push(k.clone());
            }
            !ours
        });
        leftovers.push(gone);
        let target = match &mode {
            Mode::To(t) => *t,
            Mode::Undo(..) => Target::Baseline,
        };
        if let Mode::Undo(..) = mode {
            // Only what that restore touched.
            let touched: BTreeSet<Vec<u8>> = b
                .keys()
                .chain(f.iter().flat_map(|f| f.keys()))
                .cloned()
                .collect();
            c.retain(|k, _| touched.contains(k));
        }
        let mut p = plan::plan(&b, f.as_ref(), &c, target, filter);
        if let Some((root, path)) = &cut_off {
            for s in p.steps.iter_mut().filter(|s| *root == i && s.path == *path) {
                if matches!(s.decision, Decision::Conflict(_)) {
                    s.decision = Decision::Revert;
                }
            }
        }
        plans.push(p);
    }
    let what = match &mode {
        Mode::To(Target::Baseline) => "its baseline (before the program started)".to_string(),
        Mode::To(Target::Final) => "its final state (as the program left it)".to_string(),
        Mode::Undo(_, info) => format!("before restore #{} (undo)", info.n),
    };
    let mut out = format!("Restore session {short} ({}) to {what}:\n", meta.name);
    let mut apply = 0;
    let mut conflicts = 0;
    for (i, p) in plans.iter().enumerate() {
        if p.steps.is_empty() {
            continue;
        }
        out.push_str(&format!("{}:\n", meta.roots[i]));
        for s in &p.steps {
            let sym = symbol(s.now.as_ref(), s.to.as_ref());
            let detail = match (&s.now, &s.to) {
                (Some(x), Some(y)) if x.kind == y.kind => {
                    format!("mode {:o} -> {:o}", x.mode, y.mode)
                }
                (_, Some(y)) => describe(y),
                (Some(x), None) => describe(x),
                (None, None) => String::new(),
            };
            let line = match s.decision {
                Decision::Revert => {
                    apply += 1;
                    format!("  {sym} {}  ({detail})\n", shown(&s.path))
                }
                Decision::Conflict(why) => {
                    conflicts += 1;
                    let verdict = if a.force {
                        "applied: --force"
                    } else {
                        "skipped"
                    };
                    if a.force {
                        apply += 1;
                    }
                    format!(
                        "  ! {} {}  (conflict: {why}; {verdict})\n",
                        sym,
                        shown(&s.path)
                    )
                }
                Decision::Keep(why) => format!("  = {}  (left alone: {why})\n", shown(&s.path)),
                Decision::Nothing => String::new(),
            };
            out.push_str(&line);
        }
    }
    if apply == 0 && conflicts == 0 {
        out.push_str("Nothing to restore: the tree already matches.\n");
    } else {
        out.push_str(&format!("{apply} to apply, {conflicts} conflicts"));
        if conflicts > 0 && !a.force {
            out.push_str(" (skipped; --force applies them)");
        }
        out.push_str(".\n");
    }
    print(&out)?;
    if a.dry {
        return Ok(0);
    }
    if apply == 0 {
        // An interrupted restore whose every path is done: tidy up after
        // it and close its record.
        remove_temporaries(meta, &leftovers);
        if let Some((d, mut r)) = resume {
            r.complete = true;
            restore::write_info(&d, &r)?;
        }
        return Ok(0);
    }
    if !a.yes {
        if !sys::isatty(0) {
            return Err(Error::Msg(
                "not on a terminal: pass --yes to restore (or --dry-run to only see the plan)"
                    .into(),
            ));
        }
        print(&format!("Apply {apply} changes? [y/N] "))?;
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            print("Nothing changed.\n")?;
            return Ok(1);
        }
    }
    let (rdir, mut info) = match resume {
        Some((d, r)) => {
            print(&format!("Resuming the interrupted restore #{}.\n", r.n))?;
            (d, r)
        }
        None => {
            let n = records.iter().map(|(_, r)| r.n).max().unwrap_or(0) + 1;
            let d = restore::records_dir(dir).join(n.to_string());
            rb::ensure_dir(&d)?;
            let r = RecordInfo {
                n,
                time: registry::now(),
                target: kind.into(),
                undo_of,
                complete: false,
                done: 0,
            };
            (d, r)
        }
    };
    // Capture what is about to change, before the first write.
    let mut journal = Journal::open(&rdir)?;
    for (i, p) in plans.iter().enumerate() {
        let steps: Vec<&Step> = p.applied(a.force).collect();
        let mut pre = read_or_empty(&rdir.join(capture::index_name("pre", i)))?;
        let mut post = read_or_empty(&rdir.join(capture::index_name("post", i)))?;
        let root = PathBuf::from(&meta.roots[i]);
        for (k, e) in restore::capture_pre(&root, &steps, &store)? {
            pre.entry(k).or_insert(e);
        }
        for s in &steps {
            match &s.to {
                Some(e) => {
                    post.insert(s.path.clone(), e.clone());
                }
                None => {
                    post.remove(&s.path);
                }
            }
            journal.note("plan", i, &s.path);
        }
        rb::write_index(&rdir.join(capture::index_name("pre", i)), &pre)?;
        rb::write_index(&rdir.join(capture::index_name("post", i)), &post)?;
    }
    journal.flush();
    restore::write_info(&rdir, &info)?;
    remove_temporaries(meta, &leftovers);
    let mut failed = Vec::new();
    let mut done = 0u64;
    for (i, p) in plans.iter().enumerate() {
        let steps: Vec<&Step> = p.applied(a.force).collect();
        let root = PathBuf::from(&meta.roots[i]);
        let f = restore::apply(&root, i, &steps, &store, &mut journal)?;
        done += (steps.len() - f.len()) as u64;
        failed.extend(
            f.into_iter()
                .map(|(p, why)| (root.join(OsStr::from_bytes(&p)), why)),
        );
    }
    journal.complete();
    info.complete = true;
    info.done += done;
    restore::write_info(&rdir, &info)?;
    let mut msg = format!(
        "Restored {done} paths (restore #{}); undo with: nono rollback restore {short} --undo\n",
        info.n
    );
    for (p, why) in &failed {
        msg.push_str(&format!("nono: not restored: {}: {why}\n", p.display()));
    }
    print(&msg)?;
    rb::session_event(
        &meta.id,
        "restore",
        &format!(
            "#{} to {kind}: {done} paths written, {} conflicts {}, {} failed",
            info.n,
            conflicts,
            if a.force { "forced" } else { "skipped" },
            failed.len()
        ),
    );
    Ok(if failed.is_empty() { 0 } else { 1 })
}

/// Remove the temporary files killed restores left, per root (warning
/// about any that cannot go).
fn remove_temporaries(meta: &Meta, leftovers: &[Vec<Vec<u8>>]) {
    for (i, gone) in leftovers.iter().enumerate() {
        let root = PathBuf::from(&meta.roots[i]);
        for rel in gone {
            if let Err(why) = restore::remove_leftover(&root, rel) {
                warn(&format!(
                    "cannot remove {}, left by an interrupted restore: {why}; it holds nothing of yours: remove it by hand",
                    root.join(OsStr::from_bytes(rel)).display()
                ));
            }
        }
    }
}

/// An index file, or an empty index when it does not exist.
fn read_or_empty(path: &Path) -> Result<Index> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(Index::new());
    }
    rb::read_index(path)
}

/// Every object hash a session's indexes name.
fn referenced(dir: &Path, meta: &Meta) -> BTreeSet<rb::Digest> {
    let mut out = BTreeSet::new();
    let mut files = Vec::new();
    for i in 0..meta.roots.len() {
        files.push(dir.join(capture::index_name("baseline", i)));
        files.push(dir.join(capture::index_name("final", i)));
        for (r, _) in restore::records(dir) {
            files.push(r.join(capture::index_name("pre", i)));
            files.push(r.join(capture::index_name("post", i)));
        }
    }
    for f in files {
        if let Ok(ix) = read_or_empty(&f) {
            for e in ix.values() {
                if let Kind::File { hash, .. } = &e.kind {
                    out.insert(*hash);
                }
            }
        }
    }
    out
}

/// `rollback verify`.
fn verify(dir: &Path, meta: &Meta) -> Result<i32> {
    let store = Store::open(&rb::base_dir()?)?;
    // Indexes that do not parse are damage too.
    indexes(dir, meta)?;
    let hashes = referenced(dir, meta);
    let mut bad = Vec::new();
    for h in &hashes {
        if let Err(why) = store.verify(h) {
            bad.push(format!("nono: object {h}: {why}\n"));
        }
    }
    let short = short_of(&meta.id);
    if bad.is_empty() {
        print(&format!(
            "Session {short}: all {} objects intact.\n",
            hashes.len()
        ))?;
        return Ok(0);
    }
    eprint!("{}", bad.concat());
    Err(Error::Msg(format!(
        "session {short}: {} of {} objects missing or damaged; paths that use them cannot be restored",
        bad.len(),
        hashes.len()
    )))
}

/// When a rollback session ended: its final capture, else its record's
/// end, else its baseline.
fn ended_at(meta: &Meta) -> u64 {
    meta.final_capture
        .as_ref()
        .map(|f| f.time)
        .or_else(|| session_of(&meta.id).and_then(|s| s.record.ended_at))
        .unwrap_or(meta.baseline.time)
}

/// `rollback prune`.
fn prune(a: &Args) -> Result<i32> {
    let _lock = rb::lock_store(true)?;
    let all = sessions()?;
    let ids: Vec<String> = all.iter().map(|(_, m)| m.id.clone()).collect();
    let shorts = registry::short_ids(&ids);
    type Ended<'a> = (
        (u64, Option<std::time::SystemTime>),
        &'a PathBuf,
        &'a Meta,
        &'a String,
    );
    let mut ended: Vec<Ended> = all
        .iter()
        .zip(&shorts)
        .filter(|((_, m), _)| !is_live(&m.id))
        .map(|((d, m), s)| {
            // Ties within a second go by when the meta was last written.
            let written = std::fs::metadata(d.join("meta.json"))
                .and_then(|md| md.modified())
                .ok();
            ((ended_at(m), written), d, m, s)
        })
        .collect();
    ended.sort_by_key(|e| std::cmp::Reverse(e.0));
    let now = registry::now();
    let verb = if a.dry { "Would remove" } else { "Removed" };
    let mut out = String::new();
    let mut removed: BTreeSet<PathBuf> = BTreeSet::new();
    for (end, d, m, short) in ended.into_iter().skip(a.keep) {
        if let Some(days) = a.older_days {
            if (now.saturating_sub(end.0) as f64) < days * 86_400.0 {
                continue;
            }
        }
        if !a.dry {
            if is_live(&m.id) {
                continue;
            }
            std::fs::remove_dir_all(d)
                .map_err(|e| Error::io(format!("cannot remove {}", d.display()), e))?;
        }
        removed.insert(d.clone());
        out.push_str(&format!(
            "{verb} the rollback captures of session {short} ({}).\n",
            m.name
        ));
    }
    // Leftovers of captures that were interrupted (the launcher killed
    // mid-baseline): no meta, and no capture runs while we hold the lock.
    if !a.dry {
        remove_leftovers(&mut out)?;
    }
    // Objects no remaining session refers to.
    let mut keep = BTreeSet::new();
    for (d, m) in all.iter().filter(|(d, _)| !removed.contains(d)) {
        keep.extend(referenced(d, m));
    }
    let store = Store::open(&rb::base_dir()?)?;
    let (mut n, mut bytes, mut kept) = (0u64, 0u64, 0u64);
    for (h, size) in store.list() {
        if keep.contains(&h) {
            kept += size;
            continue;
        }
        if a.dry || store.remove(&h).is_ok() {
            n += 1;
            bytes += size;
        }
    }
    let freed = if a.dry { "Would free" } else { "Freed" };
    out.push_str(&format!(
        "{freed} {} in {n} objects; {} kept for {} sessions.\n",
        rb::human_bytes(bytes),
        rb::human_bytes(kept),
        all.len() - removed.len()
    ));
    print(&out)?;
    Ok(0)
}

/// Remove session directories without a meta (a baseline interrupted
/// before it finished) and temporary files left in the store. Only called
/// with the store lock held exclusively.
fn remove_leftovers(out: &mut String) -> Result<()> {
    let base = rb::base_dir()?;
    if let Ok(entries) = std::fs::read_dir(base.join("sessions")) {
        for e in entries.flatten() {
            let p = e.path();
            let is_dir = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
            if is_dir && std::fs::symlink_metadata(p.join("meta.json")).is_err() {
                std::fs::remove_dir_all(&p)
                    .map_err(|err| Error::io(format!("cannot remove {}", p.display()), err))?;
                out.push_str(&format!(
                    "Removed an unfinished capture ({}).\n",
                    p.display()
                ));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(base.join("objects")) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("tmp.") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// Rollback data on disk, for `nono prune`'s note: (sessions, bytes).
pub fn kept() -> (usize, u64) {
    let n = sessions().map_or(0, |v| v.len());
    let bytes = rb::base_dir()
        .ok()
        .and_then(|b| Store::open(&b).ok())
        .map_or(0, |s| s.list().iter().map(|(_, z)| z).sum());
    (n, bytes)
}
