//! The three-way restore planner. B is the baseline, F the final state,
//! C the tree now, T the target (B by default, F with `--to final`) and E
//! the other one: the state the session left the path in. A path goes
//! back to T only where C still equals E; anything else that differs is a
//! conflict (applied only with `--force`), and a path in neither B nor F
//! is never deleted.

use super::{Entry, Index, Kind};

/// Which capture a restore goes back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The state before the program started.
    Baseline,
    /// The state the program left.
    Final,
}

/// What the planner decides for one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Already as the target has it.
    Nothing,
    /// Unchanged since the session: put the target back.
    Revert,
    /// Changed since the session (or its end state is unknown): listed,
    /// applied only with `--force`.
    Conflict(&'static str),
    /// Never touched, even with `--force`.
    Keep(&'static str),
}

/// Decide one path. `f_known` is false when the final capture is missing
/// (the supervisor died): then nothing counts as "unchanged since".
pub fn decide(
    b: Option<&Entry>,
    f: Option<&Entry>,
    f_known: bool,
    c: Option<&Entry>,
    target: Target,
) -> Decision {
    let big = |e: Option<&Entry>| e.is_some_and(|e| matches!(e.kind, Kind::Big(_)));
    if big(b) || big(f) || big(c) {
        return Decision::Keep("over the size limit or unreadable: not captured");
    }
    let same = |x: Option<&Entry>, y: Option<&Entry>| match (x, y) {
        (None, None) => true,
        (Some(x), Some(y)) => x.same(y),
        _ => false,
    };
    let (t, e, t_known) = match target {
        Target::Baseline => (b, f, true),
        Target::Final => (f, b, f_known),
    };
    if !t_known {
        return Decision::Keep("the final state was never captured");
    }
    if same(c, t) {
        return Decision::Nothing;
    }
    let e_known = match target {
        Target::Baseline => f_known,
        Target::Final => true,
    };
    if e_known && same(c, e) {
        return Decision::Revert;
    }
    if t.is_none() && b.is_none() && (f.is_none() || !f_known) {
        return Decision::Keep("in neither the baseline nor the final state: never deleted");
    }
    if !e_known {
        return Decision::Conflict("the final state is unknown (the supervisor died)");
    }
    Decision::Conflict(match (c, e) {
        (None, _) => "deleted since the session",
        (Some(_), None) => "created since the session",
        _ => "changed since the session",
    })
}

/// One path the restore would change.
#[derive(Clone, Debug)]
pub struct Step {
    /// Relative path.
    pub path: Vec<u8>,
    /// What is there now (None: absent).
    pub now: Option<Entry>,
    /// What it becomes (None: removed).
    pub to: Option<Entry>,
    /// Why it is (or is not) applied.
    pub decision: Decision,
}

/// A root's plan: every path whose decision is not `Nothing`.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Steps in path order.
    pub steps: Vec<Step>,
}

impl Plan {
    /// Steps that will be applied (reverts, and conflicts with `force`).
    pub fn applied(&self, force: bool) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |s| {
            matches!(s.decision, Decision::Revert)
                || (force && matches!(s.decision, Decision::Conflict(_)))
        })
    }
}

/// Whether `path` is selected by the PATH arguments (relative to the
/// root): itself or beneath one of them; all when none are given.
pub fn selected(path: &[u8], filters: &[Vec<u8>]) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| {
            path == f.as_slice() || (path.starts_with(f) && path.get(f.len()) == Some(&b'/'))
        })
}

/// The entry at the head of a sorted index iterator if its path is `p`.
fn take<'a>(
    it: &mut std::iter::Peekable<std::collections::btree_map::Iter<'a, Vec<u8>, Entry>>,
    p: &[u8],
) -> Option<&'a Entry> {
    it.next_if(|(k, _)| k.as_slice() == p).map(|(_, e)| e)
}

/// Plan one root: a merge of the three sorted indexes, one pass, with
/// entries cloned only for the paths that differ.
pub fn plan(b: &Index, f: Option<&Index>, c: &Index, target: Target, filters: &[Vec<u8>]) -> Plan {
    let empty = Index::new();
    let mut ib = b.iter().peekable();
    let mut if_ = f.unwrap_or(&empty).iter().peekable();
    let mut ic = c.iter().peekable();
    let mut plan = Plan::default();
    // The smallest path at the head of any index, until all are done.
    while let Some(p) = [ib.peek(), if_.peek(), ic.peek()]
        .into_iter()
        .flatten()
        .map(|(k, _)| *k)
        .min()
    {
        let (bb, ff, cc) = (take(&mut ib, p), take(&mut if_, p), take(&mut ic, p));
        if !selected(p, filters) {
            continue;
        }
        let d = decide(bb, ff, f.is_some(), cc, target);
        if d == Decision::Nothing {
            continue;
        }
        let to = match target {
            Target::Baseline => bb,
            Target::Final => ff,
        };
        plan.steps.push(Step {
            path: p.to_vec(),
            now: cc.cloned(),
            to: to.cloned(),
            decision: d,
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollback::StatKey;

    fn file(v: &str) -> Entry {
        Entry {
            kind: Kind::File {
                hash: crate::rollback::Digest([v.as_bytes()[0]; 32]),
                size: 1,
            },
            mode: 0o644,
            stat: StatKey::default(),
        }
    }

    /// B, F, C drawn from {absent, x, y, z}: every combination of
    /// presence and equality (values named in order of appearance), for
    /// both targets, final known and unknown, with the expected decision.
    #[test]
    fn planner_decides_every_combination_of_presence_and_equality() {
        use Decision::*;
        const NEITHER: Decision =
            Keep("in neither the baseline nor the final state: never deleted");
        const UNKNOWN: Decision = Conflict("the final state is unknown (the supervisor died)");
        const CHANGED: Decision = Conflict("changed since the session");
        const CREATED: Decision = Conflict("created since the session");
        const DELETED: Decision = Conflict("deleted since the session");
        const NO_FINAL: Decision = Keep("the final state was never captured");
        // (B, F, C) -> (to baseline, to final, to baseline with F unknown)
        let table: &[(&str, &str, &str, Decision, Decision, Decision)] = &[
            ("-", "-", "-", Nothing, Nothing, Nothing),
            ("-", "-", "x", NEITHER, NEITHER, NEITHER),
            ("-", "x", "-", Nothing, Revert, Nothing),
            ("-", "x", "x", Revert, Nothing, NEITHER),
            ("-", "x", "y", CHANGED, CREATED, NEITHER),
            ("x", "-", "-", Revert, Nothing, UNKNOWN),
            ("x", "-", "x", Nothing, Revert, Nothing),
            ("x", "-", "y", CREATED, CHANGED, UNKNOWN),
            ("x", "x", "-", DELETED, DELETED, UNKNOWN),
            ("x", "x", "x", Nothing, Nothing, Nothing),
            ("x", "x", "y", CHANGED, CHANGED, UNKNOWN),
            ("x", "y", "-", DELETED, DELETED, UNKNOWN),
            ("x", "y", "x", Nothing, Revert, Nothing),
            ("x", "y", "y", Revert, Nothing, UNKNOWN),
            ("x", "y", "z", CHANGED, CHANGED, UNKNOWN),
        ];
        for &(b, f, c, to_b, to_f, to_b_unknown) in table {
            let e = |v: &str| (v != "-").then(|| file(v));
            let (be, fe, ce) = (e(b), e(f), e(c));
            let want = [
                (Target::Baseline, true, to_b),
                (Target::Final, true, to_f),
                (Target::Baseline, false, to_b_unknown),
                (Target::Final, false, NO_FINAL),
            ];
            for (target, known, want) in want {
                let fe = if known { fe.as_ref() } else { None };
                let got = decide(be.as_ref(), fe, known, ce.as_ref(), target);
                assert_eq!(
                    got, want,
                    "B={b} F={f} C={c} target {target:?} final known {known}"
                );
            }
        }
        // The table is every canonical combination: 15 of them.
        assert_eq!(table.len(), 15);
        // Mode-only differences count as differences; symlink modes do not.
        let mut x_exec = file("x");
        x_exec.mode = 0o755;
        assert_eq!(
            decide(
                Some(&file("x")),
                Some(&x_exec),
                true,
                Some(&x_exec),
                Target::Baseline
            ),
            Revert
        );
        let big = Entry {
            kind: Kind::Big(1 << 40),
            mode: 0o644,
            stat: StatKey::default(),
        };
        assert!(matches!(
            decide(
                Some(&file("x")),
                Some(&big),
                true,
                Some(&big),
                Target::Baseline
            ),
            Keep(_)
        ));
    }

    /// The merge visits every path of the three indexes once, in order,
    /// whichever index holds it.
    #[test]
    fn plan_merges_the_three_indexes_in_path_order() {
        let ix = |v: &[(&str, &str)]| -> Index {
            v.iter()
                .map(|(p, c)| (p.as_bytes().to_vec(), file(c)))
                .collect()
        };
        let b = ix(&[("a", "x"), ("c", "x"), ("e", "x"), ("g", "x")]);
        let f = ix(&[("b", "y"), ("c", "y"), ("e", "x"), ("g", "x")]);
        let c = ix(&[("b", "y"), ("c", "y"), ("d", "z"), ("g", "z")]);
        let p = plan(&b, Some(&f), &c, Target::Baseline, &[]);
        let got: Vec<(&[u8], Decision)> = p
            .steps
            .iter()
            .map(|s| (s.path.as_slice(), s.decision))
            .collect();
        assert_eq!(
            got,
            vec![
                (&b"a"[..], Decision::Revert),
                (&b"b"[..], Decision::Revert),
                (&b"c"[..], Decision::Revert),
                (
                    &b"d"[..],
                    Decision::Keep("in neither the baseline nor the final state: never deleted")
                ),
                (&b"e"[..], Decision::Conflict("deleted since the session")),
                (&b"g"[..], Decision::Conflict("changed since the session")),
            ]
        );
        let p = plan(&b, Some(&f), &c, Target::Baseline, &[b"c".to_vec()]);
        assert_eq!(p.steps.len(), 1);
    }

    #[test]
    fn path_filters_select_the_path_and_what_is_beneath_it() {
        let f = vec![b"src".to_vec()];
        assert!(selected(b"src", &f));
        assert!(selected(b"src/a", &f));
        assert!(!selected(b"srcx", &f));
        assert!(selected(b"anything", &[]));
    }
}
