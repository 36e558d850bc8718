//! Packaging scenarios: `--help`, nono(1), the completion scripts and
//! `make install` are checked against the real binary, so none of them can
//! drift from what nono accepts.
//!
//! The command line is read three ways: from each command's `--help`, by
//! invoking the binary with each flag (an unknown option is refused with
//! "invalid option"), and from the `Long("..")`/`Short('.')` patterns of
//! the parsers in `src/`. The man page is read from its roff source.

mod common;

use common::{bin, Env, Out, Pty, WAIT};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Flags of one command: spelling to whether it takes a value.
type Flags = BTreeMap<String, bool>;

/// The command key used for nono's own options (`nono --help`).
const GLOBAL: &str = "";

/// `nono ARGS` in a throwaway environment.
fn nono(args: &[&str]) -> Out {
    Env::new().run(args)
}

/// The repository root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The commands `nono --help` lists under `Commands:`.
fn commands() -> Vec<String> {
    let o = nono(&["--help"]);
    assert_eq!(o.code, 0, "{o:?}");
    let mut out = Vec::new();
    let mut inside = false;
    for line in o.stdout.lines() {
        if !line.starts_with(' ') {
            inside = line == "Commands:";
        } else if inside && line.as_bytes().get(2).is_some_and(u8::is_ascii_lowercase) {
            out.push(line.split_whitespace().next().unwrap().to_string());
        }
    }
    assert!(
        out.len() >= 10 && out.iter().any(|c| c == "run") && out.iter().any(|c| c == "ps"),
        "too few commands read from nono --help: {out:?}"
    );
    out
}

/// The options a usage text lists under `Options:`.
fn usage_flags(usage: &str) -> Flags {
    let mut out = Flags::new();
    let mut inside = false;
    for line in usage.lines() {
        if !line.starts_with(' ') {
            inside = line == "Options:";
            continue;
        }
        let text = line.trim_start();
        if !inside || !text.starts_with('-') {
            continue;
        }
        let spec = text.split("  ").next().unwrap();
        let takes_value = spec.split(", ").any(|i| i.split_whitespace().count() > 1);
        for item in spec.split(", ") {
            out.insert(item.split_whitespace().next().unwrap().into(), takes_value);
        }
    }
    out
}

/// What `nono CMD --help` (or `nono --help`) lists.
fn help_flags(cmd: &str) -> Flags {
    let args: Vec<&str> = [cmd, "--help"]
        .into_iter()
        .filter(|a| !a.is_empty())
        .collect();
    let o = nono(&args);
    assert_eq!(o.code, 0, "{args:?}: {o:?}");
    assert!(o.stdout.starts_with("Usage: nono"), "{args:?}: {o:?}");
    usage_flags(&o.stdout)
}

/// Every command with its `--help` flags, nono's own under [`GLOBAL`].
fn all_help_flags() -> BTreeMap<String, Flags> {
    let mut all: BTreeMap<String, Flags> = commands()
        .into_iter()
        .map(|c| {
            let f = help_flags(&c);
            (c, f)
        })
        .collect();
    all.insert(GLOBAL.into(), help_flags(GLOBAL));
    let total: usize = all.values().map(Flags::len).sum();
    assert!(total >= 35, "only {total} flags read from --help: {all:?}");
    all
}

/// A roff line as text: escapes resolved, fonts dropped, and for a macro
/// line the macro name and quotes dropped.
fn unroff(line: &str) -> String {
    let mut s = line.to_string();
    for (from, to) in [
        ("\\-", "-"),
        ("\\(aq", "'"),
        ("\\(dq", "\""),
        ("\\(lq", "\""),
        ("\\(rq", "\""),
        ("\\(en", "-"),
        ("\\(bu", "*"),
        ("\\&", ""),
        ("\\e", "\\"),
        ("\\fB", ""),
        ("\\fI", ""),
        ("\\fR", ""),
        ("\\fP", ""),
    ] {
        s = s.replace(from, to);
    }
    if s.starts_with('.') {
        s = s
            .split_once(' ')
            .map_or("", |(_, rest)| rest)
            .replace('"', "");
    }
    s
}

/// The flags (`-x`, `--long`) in a line of text; `--` alone is not one.
fn flags_in(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '='))
        .filter(|t| {
            let body = t.trim_start_matches('-');
            (t.starts_with('-') && t.len() - body.len() <= 2)
                && body.starts_with(|c: char| c.is_ascii_alphabetic())
        })
        .map(|t| t.split('=').next().unwrap().to_string())
        .collect()
}

/// What nono(1) says about each command's flags.
#[derive(Debug, Default)]
struct Man {
    /// Flags in the command's SYNOPSIS entry.
    synopsis: BTreeMap<String, BTreeSet<String>>,
    /// Flags in the command's `.SS` title and `.TP` tags: the ones it describes.
    described: BTreeMap<String, BTreeSet<String>>,
    /// Every flag mentioned in the command's section, and after `nono CMD`
    /// anywhere (examples, prose).
    mentioned: BTreeMap<String, BTreeSet<String>>,
    /// The whole page as text.
    text: String,
    /// Each `.SH` section's text, by its name.
    sections: BTreeMap<String, String>,
}

/// The command a `nono WORD ...` title is about (GLOBAL for `nono -h`).
fn command_of(title: &str) -> Option<String> {
    let mut words = title.split_whitespace();
    (words.next()? == "nono").then_some(())?;
    let w = words.next().unwrap_or_default();
    Some(if w.starts_with('-') { GLOBAL } else { w }.to_string())
}

/// The flags of a line of text by the command they are given to: after
/// `nono CMD`, CMD's (up to a ` -- `, where a program's own command line
/// starts, or a `|`, `;`, `&`, `<`, `>` of a shell command line); before
/// any, None (the section's command).
fn mentions(text: &str) -> Vec<(Option<String>, Vec<String>)> {
    let mut out = Vec::new();
    let mut who = None;
    let mut rest = text;
    loop {
        let at = rest.match_indices("nono ").map(|(i, _)| i).find(|&i| {
            i == 0 || !rest[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
        });
        let chunk = &rest[..at.unwrap_or(rest.len())];
        let own = chunk.split(" -- ").next().unwrap();
        let own = own.split(['|', ';', '&', '<', '>']).next().unwrap();
        out.push((who.take(), flags_in(own)));
        let Some(at) = at else {
            return out;
        };
        rest = &rest[at + "nono ".len()..];
        let word = rest.split_whitespace().next().unwrap_or_default();
        let name = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-');
        if name.starts_with('-') {
            who = Some(GLOBAL.to_string());
        } else if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase()) {
            who = Some(name.to_string());
            rest = &rest[word.len()..];
        }
    }
}

/// Parse `man/nono.1`.
fn man() -> Man {
    let src = fs::read_to_string(root().join("man/nono.1")).unwrap();
    let lines: Vec<&str> = src.lines().collect();
    let mut m = Man::default();
    let mut section = String::new();
    let mut cmd: Option<String> = None; // the command whose text this is
    for (i, raw) in lines.iter().enumerate() {
        let text = unroff(raw);
        m.text.push_str(&text);
        m.text.push('\n');
        if let Some(s) = raw.strip_prefix(".SH ") {
            section = s.trim_matches('"').to_string();
            cmd = None;
            continue;
        }
        let in_section = m.sections.entry(section.clone()).or_default();
        in_section.push_str(&text);
        in_section.push('\n');
        if section == "SYNOPSIS" {
            if *raw == ".YS" {
                cmd = None;
            } else if *raw == ".SY nono" {
                cmd = lines
                    .get(i + 1)
                    .and_then(|l| command_of(&format!("nono {}", unroff(l))));
            } else if let Some(c) = &cmd {
                m.synopsis
                    .entry(c.clone())
                    .or_default()
                    .extend(flags_in(&text));
            }
            continue;
        }
        if raw.starts_with(".SS ") {
            cmd = (section == "COMMANDS").then(|| command_of(&text)).flatten();
            if let Some(c) = &cmd {
                m.described
                    .entry(c.clone())
                    .or_default()
                    .extend(flags_in(&text));
            }
        }
        if let Some(c) = cmd.as_ref().filter(|_| i > 0 && lines[i - 1] == ".TP") {
            m.described
                .entry(c.clone())
                .or_default()
                .extend(flags_in(&text));
        }
        for (who, flags) in mentions(&text) {
            if let Some(who) = who.or_else(|| cmd.clone()).filter(|_| !flags.is_empty()) {
                m.mentioned.entry(who).or_default().extend(flags);
            }
        }
    }
    m
}

/// How the binary takes `flag` of `cmd`: Ok(takes a value) when it is
/// accepted, Err(what it said) when it is refused as an unknown option.
/// Nothing runs: a flag that takes a value is given none, and one that
/// takes none is given one, so the parser stops on it either way.
fn accepted(cmd: &str, flag: &str) -> Result<bool, String> {
    let mut args: Vec<String> = [cmd]
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| c.to_string())
        .collect();
    args.push(flag.to_string());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = nono(&argv);
    if o.stderr
        .contains(&format!("missing argument for option '{flag}'"))
    {
        return Ok(true);
    }
    let with_value = format!("{flag}=x");
    let argv: Vec<&str> = argv[..argv.len() - 1]
        .iter()
        .copied()
        .chain([with_value.as_str()])
        .collect();
    let o = nono(&argv);
    if o.stderr
        .contains(&format!("unexpected argument for option '{flag}'"))
        || (o.code == 0 && !o.stdout.is_empty())
    {
        return Ok(false);
    }
    Err(format!("{argv:?}: {o:?}"))
}

#[test]
fn an_unknown_option_is_refused_by_every_command() {
    // The control for `accepted`: refusal is visible, so acceptance means something.
    for cmd in commands().iter().map(String::as_str).chain([GLOBAL]) {
        let args: Vec<&str> = [cmd, "--no-such-option"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let o = nono(&args);
        assert_eq!(o.code, 2, "{args:?}: {o:?}");
        assert!(
            o.stderr
                .starts_with("nono: invalid option '--no-such-option'"),
            "{args:?}: {o:?}"
        );
        assert!(accepted(cmd, "--no-such-option").is_err());
    }
}

#[test]
fn every_flag_in_help_is_accepted_and_takes_a_value_as_help_says() {
    for (cmd, flags) in all_help_flags() {
        for (flag, takes_value) in flags {
            match accepted(&cmd, &flag) {
                Ok(v) => assert_eq!(
                    v, takes_value,
                    "nono {cmd} {flag}: --help says it takes a value: {takes_value}; the parser: {v}"
                ),
                Err(e) => panic!("nono {cmd} --help lists {flag}, but it is refused: {e}"),
            }
        }
    }
}

#[test]
fn every_command_has_a_synopsis_and_a_section_in_the_man_page_and_no_other() {
    let m = man();
    let cmds: BTreeSet<String> = commands().into_iter().chain([GLOBAL.into()]).collect();
    let synopsis: BTreeSet<String> = m.synopsis.keys().cloned().collect();
    let sections: BTreeSet<String> = m.described.keys().cloned().collect();
    assert_eq!(synopsis, cmds, "SYNOPSIS of nono(1) against nono --help");
    assert_eq!(sections, cmds, "COMMANDS of nono(1) against nono --help");
}

#[test]
fn every_flag_in_help_is_in_the_man_pages_synopsis_and_described() {
    let m = man();
    let synopsis = m.sections["SYNOPSIS"]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        synopsis.contains("Every command also accepts -h and --help"),
        "nono(1) must say that every command takes -h and --help"
    );
    let mut checked = 0;
    for (cmd, flags) in all_help_flags() {
        assert!(
            flags.contains_key("-h") && flags.contains_key("--help"),
            "nono {cmd} --help does not list -h, --help"
        );
        for flag in flags.keys() {
            // -h and --help of a command are covered by the sentence above.
            if cmd != GLOBAL && (flag == "-h" || flag == "--help") {
                continue;
            }
            let none = BTreeSet::new();
            let what = format!("nono {cmd} --help lists {flag}");
            assert!(
                m.synopsis.get(&cmd).unwrap_or(&none).contains(flag),
                "{what}; add it to the SYNOPSIS of man/nono.1"
            );
            assert!(
                m.described.get(&cmd).unwrap_or(&none).contains(flag),
                "{what}; describe it (.TP) in the command's section of man/nono.1"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} flags checked");
}

#[test]
fn every_flag_in_the_man_page_is_accepted_and_listed_by_help() {
    let m = man();
    let help = all_help_flags();
    let mut checked = 0;
    for (cmd, flags) in m.synopsis.iter().chain(&m.mentioned) {
        for flag in flags {
            if let Err(e) = accepted(cmd, flag) {
                panic!("nono(1) gives nono {cmd} the flag {flag}, but it is refused: {e}");
            }
            assert!(
                help.get(cmd).is_some_and(|h| h.contains_key(flag)),
                "nono(1) gives nono {cmd} the flag {flag}, but 'nono {cmd} --help' does not list it"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} flags read from nono(1)");
}

#[test]
fn every_flag_the_parsers_match_is_listed_by_help() {
    // Long("x"), Short('x'), and the `.is(Some('x'), "y")` of session commands.
    let help = all_help_flags();
    let mut files: Vec<PathBuf> = fs::read_dir(root().join("src/cmd"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(root().join("src/cli.rs"));
    let mut checked = 0;
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        let cmd = if stem == "cli" {
            GLOBAL.to_string()
        } else {
            stem
        };
        let Some(listed) = help.get(&cmd) else {
            continue; // a helper module, not a command
        };
        let src = fs::read_to_string(&file).unwrap();
        let mut found = Vec::new();
        for (open, close, dashes) in [
            ("Long(\"", '"', "--"),
            ("Short('", '\'', "-"),
            (".is(Some('", '\'', "-"),
            ("'), \"", '"', "--"),
            (".is(None, \"", '"', "--"),
        ] {
            for (i, _) in src.match_indices(open) {
                let rest = &src[i + open.len()..];
                let name = &rest[..rest.find(close).unwrap()];
                found.push(format!("{dashes}{name}"));
            }
        }
        for flag in found {
            assert!(
                listed.contains_key(&flag),
                "{} parses {flag}, but 'nono {cmd} --help' does not list it",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} flags found in the parsers");
}

#[test]
fn version_names_the_package_and_protocol_and_the_man_pages_agree() {
    let version = env!("CARGO_PKG_VERSION");
    for flag in ["-V", "--version"] {
        let o = nono(&[flag]);
        assert_eq!(o.code, 0);
        assert_eq!(
            o.stdout,
            format!(
                "nono {version} (attach protocol {})\n",
                nono::protocol::PROTOCOL_VERSION
            )
        );
    }
    for page in man_pages() {
        let src = fs::read_to_string(&page).unwrap();
        let th = src.lines().find(|l| l.starts_with(".TH ")).unwrap();
        assert!(
            th.contains(&format!("\"nono {version}\"")),
            "{}: {th} does not name nono {version}",
            page.display()
        );
    }
}

#[test]
fn help_for_a_command_is_the_same_text_as_its_help_flag() {
    for cmd in commands() {
        let a = nono(&["help", &cmd]);
        let b = nono(&[&cmd, "--help"]);
        let c = nono(&[&cmd, "-h"]);
        assert_eq!(a.code, 0);
        assert_eq!(a.stdout, b.stdout, "nono help {cmd}");
        assert_eq!(b.stdout, c.stdout, "nono {cmd} -h");
        let longest = a.stdout.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(
            longest <= 80,
            "nono {cmd} --help has a line of {longest} columns"
        );
    }
    let o = nono(&["help"]);
    assert_eq!((o.code, &o.stdout), (0, &nono(&["--help"]).stdout));
    let longest = o.stdout.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(longest <= 80, "nono --help has a line of {longest} columns");
}

#[test]
fn errors_go_to_stderr_prefixed_and_exit_1_or_2() {
    let env = Env::new();
    for (args, code) in [
        (&["frobnicate"][..], 2),
        (&["ps", "--bogus"], 2),
        (&["ps", "--quiet", "--json"], 2),
        (&["stop", "--timeout"], 2),
        (&["attach"], 2),
        (&["help", "frobnicate"], 2),
        (&["completions", "tcsh"], 2),
        (&["completions"], 2),
        (&["attach", "nothing-here"], 1),
        (&["inspect", "nothing-here"], 1),
    ] {
        let o = env.run(args);
        assert_eq!(o.code, code, "{args:?}: {o:?}");
        assert_eq!(o.stdout, "", "{args:?}");
        assert!(
            o.stderr.starts_with("nono: ") && o.stderr.lines().count() == 1,
            "{args:?}: {o:?}"
        );
    }
    // Without a command: the usage, on stderr, and the usage-error status.
    let o = env.run(&[]);
    assert_eq!(o.code, 2);
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str()),
        ("", nono(&["--help"]).stdout.as_str())
    );
}

#[test]
fn nothing_nono_prints_on_a_terminal_has_colour() {
    // nono(1) says nono uses no colour (so NO_COLOR has nothing to turn off).
    let env = Env::new();
    let id = env.start(&["-n", "plain", "--", "sleep", "60"]);
    for args in [
        &["ps", "--all"][..],
        &["inspect", &id],
        &["inspect", &id, "--events"],
        &["--help"],
        &["stop", &id],
        &["prune", "--dry-run"],
    ] {
        let mut pty = env.spawn_pty(args, 24, 80);
        assert_eq!(pty.wait(), 0, "{args:?}: {}", pty.text());
        assert!(!pty.text().contains('\x1b'), "{args:?}: {:?}", pty.text());
    }
}

#[test]
fn json_fields_are_the_ones_nono1_documents_with_their_types() {
    let env = Env::new();
    let id = env.start(&["-n", "fields", "--", "sleep", "60"]);
    let inspect = env.run(&["inspect", "--json", &id]);
    assert_eq!(inspect.code, 0, "{inspect:?}");
    let ps = env.run(&["ps", "--json"]);
    assert_eq!(ps.stdout.trim(), format!("[{}]", inspect.stdout.trim()));
    let fields = json_fields(&inspect.stdout);
    assert!(fields.len() >= 15, "{fields:?}");

    let m = man();
    let doc = &m.sections["JSON OUTPUT"];
    // Each field is a tag: `NAME (TYPE)`.
    let documented: BTreeMap<String, String> = doc
        .lines()
        .filter_map(|l| {
            let (name, ty) = l.split_once(" (")?;
            let (name, ty) = (name.trim(), ty.strip_suffix(')')?);
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_')
                .then(|| (name.to_string(), ty.to_string()))
        })
        .collect();
    let names: BTreeSet<&String> = fields.iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        documented.keys().collect(),
        "record fields against JSON OUTPUT in nono(1)"
    );
    for (name, kind) in &fields {
        let ty = &documented[name];
        let ok = ty.starts_with(kind) || (kind == "null" && ty.ends_with("or null"));
        assert!(ok, "{name} is a {kind} but nono(1) says {ty}");
    }
    let events = env.run(&["inspect", "--events", "--json", &id]);
    for line in events.stdout.lines() {
        let keys: Vec<String> = json_fields(line).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["time", "event", "detail"], "{line}");
    }
    for word in ["time", "event", "detail"] {
        assert!(
            doc.contains(word),
            "nono(1) JSON OUTPUT does not name {word}"
        );
    }
}

/// The keys of a JSON object and the kind of each value (string, number,
/// boolean, array, object, null).
fn json_fields(text: &str) -> Vec<(String, String)> {
    let c: Vec<char> = text.trim().chars().collect();
    assert_eq!(c.first(), Some(&'{'), "{text}");
    let mut out = Vec::new();
    let (mut depth, mut i, mut key_next) = (0, 0, false);
    while i < c.len() {
        match c[i] {
            '{' | '[' => {
                depth += 1;
                key_next = depth == 1;
            }
            '}' | ']' => depth -= 1,
            ',' => key_next = depth == 1,
            '"' => {
                let start = i + 1;
                i += 1;
                while c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                if key_next {
                    let key: String = c[start..i].iter().collect();
                    let mut j = i + 1;
                    while c[j] == ':' || c[j] == ' ' {
                        j += 1;
                    }
                    let kind = match c[j] {
                        '"' => "string",
                        '[' => "array",
                        '{' => "object",
                        't' | 'f' => "boolean",
                        'n' => "null",
                        _ => "number",
                    };
                    out.push((key, kind.to_string()));
                    key_next = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

#[test]
fn ps_quiet_prints_short_ids_and_names_for_scripts() {
    let env = Env::new();
    let o = env.run(&["ps", "--quiet"]);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, "", ""));
    let live = env.start(&["-n", "quiet-live", "--", "sleep", "60"]);
    let done = env.start(&["-n", "quiet-done", "--", "true"]);
    env.wait_record(&done, "the short session to end", |r| r.status == "exited");
    assert_eq!(
        env.run(&["ps", "-q"]).stdout,
        format!("{live}\tquiet-live\n")
    );
    let all = env.run(&["ps", "--all", "--quiet"]);
    let mut lines: Vec<&str> = all.stdout.lines().collect();
    lines.sort();
    let mut want = [format!("{live}\tquiet-live"), format!("{done}\tquiet-done")];
    want.sort();
    assert_eq!(lines, want);
    // The ids are the SESSION column of the table.
    let table = env.run(&["ps", "-a"]).stdout;
    for id in [&live, &done] {
        assert!(
            table.lines().any(|l| l.starts_with(&format!("{id} "))),
            "{table}"
        );
    }
}

/// The completion script for `shell`, as the binary prints it.
fn script(shell: &str) -> String {
    let o = nono(&["completions", shell]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("nono"), "{o:?}");
    o.stdout
}

/// Whether `program` runs; under CI (which installs it) a missing one fails.
fn have(program: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is missing; .ci/run installs it"
        );
        eprintln!("{program} is not installed; .ci/run installs it");
    }
    ok
}

/// A live session and an ended one, for completing SESSION.
fn two_sessions(env: &Env) -> (String, String) {
    let live = env.start(&["-n", "comp-live", "--", "sleep", "60"]);
    let done = env.start(&["-n", "comp-done", "--", "true"]);
    env.wait_record(&done, "the short session to end", |r| r.status == "exited");
    (live, done)
}

/// What bash completes for `line` (the last word is the one completed).
fn bash_complete(env: &Env, script_path: &Path, line: &str) -> BTreeSet<String> {
    let prog = "source \"$1\"
        read -ra COMP_WORDS <<< \"$2\"
        [[ $2 == *' ' ]] && COMP_WORDS+=('')
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        _nono
        printf '%s\\n' \"${COMPREPLY[@]}\"";
    let o = env
        .tool(
            "bash",
            &[
                "--norc",
                "--noprofile",
                "-c",
                prog,
                "bash",
                script_path.to_str().unwrap(),
                line,
            ],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{line}: {o:?}");
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn bash_completes_commands_every_flag_and_sessions() {
    let env = Env::new();
    let path = env.home.join("nono.bash");
    fs::write(&path, script("bash")).unwrap();
    let o = env
        .tool("bash", &["-n", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "bash -n: {o:?}");

    let cmds: BTreeSet<String> = commands().into_iter().collect();
    assert_eq!(bash_complete(&env, &path, "nono "), cmds);
    assert_eq!(bash_complete(&env, &path, "nono help "), cmds);
    for (cmd, flags) in all_help_flags() {
        let line = format!("nono {cmd} -").replace("  ", " ");
        let got = bash_complete(&env, &path, &line);
        assert_eq!(got, flags.keys().cloned().collect(), "{line}");
    }
    let words = bash_complete(&env, &path, "nono completions ");
    assert_eq!(words, ["bash", "fish", "zsh"].map(String::from).into());
    assert!(bash_complete(&env, &path, "nono run -n x sle").contains("sleep"));
    assert!(bash_complete(&env, &path, "nono run --name ").is_empty());
    let profiles = bash_complete(&env, &path, "nono run --profile ");
    for p in ["default", "claude-code", "codex", "dev"] {
        assert!(profiles.contains(p), "{p}: {profiles:?}");
    }
    assert_eq!(
        bash_complete(&env, &path, "nono run --profile co"),
        ["codex".to_string()].into()
    );

    let (live, done) = two_sessions(&env);
    let attach = bash_complete(&env, &path, "nono attach ");
    assert_eq!(attach, [live.clone(), "comp-live".into()].into());
    let logs = bash_complete(&env, &path, "nono logs --lines 5 comp");
    assert_eq!(logs, ["comp-live", "comp-done"].map(String::from).into());
    assert_eq!(
        bash_complete(&env, &path, &format!("nono inspect {done}")),
        [done].into()
    );
    assert!(bash_complete(&env, &path, "nono attach comp-live ").is_empty());
}

#[test]
fn fish_completes_commands_every_flag_and_sessions() {
    if !have("fish") {
        return;
    }
    let env = Env::new();
    let path = env.home.join("nono.fish");
    fs::write(&path, script("fish")).unwrap();
    let o = env
        .tool("fish", &["--no-execute", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "fish --no-execute: {o:?}");
    let complete = |line: &str| -> BTreeSet<String> {
        let prog = "source $argv[1]; complete -C $argv[2]";
        let o = env
            .tool("fish", &["-c", prog, path.to_str().unwrap(), line])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success() && o.stderr.is_empty(), "{line}: {o:?}");
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    };
    let cmds: BTreeSet<String> = commands().into_iter().collect();
    assert_eq!(complete("nono "), cmds);
    for (cmd, flags) in all_help_flags() {
        let line = format!("nono {cmd} -").replace("  ", " ");
        assert_eq!(complete(&line), flags.keys().cloned().collect(), "{line}");
    }
    let (live, _) = two_sessions(&env);
    assert_eq!(complete("nono attach "), [live, "comp-live".into()].into());
    assert_eq!(
        complete("nono inspect comp-"),
        ["comp-live", "comp-done"].map(String::from).into()
    );
    assert!(complete("nono run -d sle").contains("sleep"));
    let profiles = complete("nono run --profile ");
    for p in ["default", "claude-code", "codex", "dev"] {
        assert!(profiles.contains(p), "{p}: {profiles:?}");
    }
}

#[test]
fn zsh_completes_commands_flags_and_sessions_at_a_real_prompt() {
    if !have("zsh") {
        return;
    }
    let env = Env::new();
    let dir = env.home.join("zfunc");
    fs::create_dir_all(&dir).unwrap();
    let text = script("zsh");
    fs::write(dir.join("_nono"), &text).unwrap();
    let o = env
        .tool("zsh", &["-n", dir.join("_nono").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "zsh -n: {o:?}");
    // Every option of every command has an _arguments spec.
    for (cmd, flags) in all_help_flags() {
        for flag in flags.keys() {
            let spec = ["[", "=[", "+["].map(|s| format!("'{flag}{s}"));
            assert!(
                spec.iter().any(|s| text.contains(s)),
                "no zsh spec for nono {cmd} {flag}"
            );
        }
    }
    let (live, _) = two_sessions(&env);

    // An interactive zsh on a pty, with the script on its fpath: type a
    // partial word and Tab, then go to the line's start and make it an echo,
    // so the completed line is printed whole.
    let mut cmd = env.tool("zsh", &["-f", "-i"]);
    cmd.env("ZDOTDIR", &env.home);
    let mut pty = Pty::spawn(cmd, 24, 200);
    let setup = format!(
        "PS1='%% '; bindkey -e; fpath=({} $fpath); autoload -U compinit; compinit -u -d {}/zcompdump; echo RE''ADY\r",
        dir.display(),
        env.home.display()
    );
    pty.send(setup.as_bytes());
    pty.expect("READY\r\n");
    for (typed, want) in [
        ("nono insp", "nono inspect "),
        ("nono ps --qu", "nono ps --quiet "),
        ("nono attach comp-l", "nono attach comp-live "),
        (
            &format!("nono stop {}", &live[..5]),
            &format!("nono stop {live} "),
        ),
        ("nono completions fi", "nono completions fish "),
        ("nono run -d -n x slee", "nono run -d -n x sleep "),
        (
            "nono run --profile claude-c",
            "nono run --profile claude-code ",
        ),
    ] {
        pty.send(format!("{typed}\t").as_bytes());
        // Ctrl-A, then 'echo :' before the line, and Enter.
        pty.send(b"\x01echo :\r");
        let shown = format!(":{want}");
        assert!(
            pty.expect_new(&format!("\r\n{}", shown.trim_end()), WAIT),
            "zsh completed {typed:?} into something else: {:?}",
            pty.text()
        );
    }
    pty.send(b"exit\r");
    pty.wait();
}

/// Every page under man/.
fn man_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = fs::read_dir(root().join("man"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("1" | "5")))
        .collect();
    pages.sort();
    assert!(pages.len() >= 2, "{pages:?}");
    pages
}

/// Every regular file under `dir`, relative to it.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// `make TARGET DESTDIR=dest PREFIX=/usr NONO_BIN=<the binary under test>`.
fn make(target: &str, dest: &Path) -> Out {
    let o = Command::new("make")
        .arg("-C")
        .arg(root())
        .arg(target)
        .arg(format!("DESTDIR={}", dest.display()))
        .arg("PREFIX=/usr")
        .arg(format!(
            "NONO_BIN={}",
            fs::canonicalize(bin()).unwrap().display()
        ))
        .env_remove("MAKEFLAGS")
        .stdin(Stdio::null())
        .output()
        .expect("run make");
    Out::from(o)
}

#[test]
fn make_install_puts_exactly_these_files_and_uninstall_removes_them() {
    if !have("make") {
        return;
    }
    let env = Env::new();
    let dest = env.home.join("dest");
    let o = make("install", &dest);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        !o.stdout.contains("cargo build"),
        "install rebuilt nono: {o:?}"
    );

    let mut want: BTreeSet<String> = [
        "usr/bin/nono",
        "usr/share/bash-completion/completions/nono",
        "usr/share/zsh/site-functions/_nono",
        "usr/share/fish/vendor_completions.d/nono.fish",
    ]
    .map(String::from)
    .into();
    for page in man_pages() {
        let name = page.file_name().unwrap().to_string_lossy().to_string();
        let section = &name[name.len() - 1..];
        want.insert(format!("usr/share/man/man{section}/{name}.gz"));
    }
    assert_eq!(files_under(&dest), want);

    use std::os::unix::fs::PermissionsExt;
    for f in &want {
        let mode = fs::metadata(dest.join(f)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(
            mode,
            if f.ends_with("bin/nono") {
                0o755
            } else {
                0o644
            },
            "{f}"
        );
    }
    // The binary works and is stripped.
    let installed = dest.join("usr/bin/nono");
    let v = Command::new(&installed).arg("--version").output().unwrap();
    assert!(
        String::from_utf8_lossy(&v.stdout).starts_with("nono "),
        "{v:?}"
    );
    if let Ok(o) = Command::new("readelf").arg("-SW").arg(&installed).output() {
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains(".symtab"),
            "not stripped"
        );
    }
    // Man pages: gzip without name or time stamp (reproducible), same text.
    for page in man_pages() {
        let name = page.file_name().unwrap().to_string_lossy().to_string();
        let gz = dest.join(format!(
            "usr/share/man/man{}/{name}.gz",
            &name[name.len() - 1..]
        ));
        let bytes = fs::read(&gz).unwrap();
        assert_eq!(&bytes[..3], [0x1f, 0x8b, 8], "{name}: not gzip");
        assert_eq!(bytes[3] & 0x08, 0, "{name}: has a file name");
        assert_eq!(&bytes[4..8], [0, 0, 0, 0], "{name}: has a time stamp");
        let text = Command::new("gzip")
            .arg("-dc")
            .arg(&gz)
            .output()
            .unwrap()
            .stdout;
        assert_eq!(text, fs::read(&page).unwrap(), "{name}");
    }
    // The completions are what the binary prints.
    for (shell, f) in [
        ("bash", "usr/share/bash-completion/completions/nono"),
        ("zsh", "usr/share/zsh/site-functions/_nono"),
        ("fish", "usr/share/fish/vendor_completions.d/nono.fish"),
    ] {
        assert_eq!(
            fs::read_to_string(dest.join(f)).unwrap(),
            script(shell),
            "{f}"
        );
    }

    let o = make("uninstall", &dest);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(files_under(&dest), BTreeSet::new());
}
