//! `nono completions`: completion scripts for bash, zsh and fish. They are
//! generated from the usage texts `--help` prints, so an option is completed
//! as soon as it is documented, and never one that is not.

use super::help;
use crate::error::{Error, Result};
use crate::out::print;
use lexopt::prelude::*;

/// `nono completions --help`.
pub const USAGE: &str = "\
Usage: nono completions bash|zsh|fish

Print a completion script for the shell: it completes commands, options,
the ids and names of sessions (listed with 'nono ps --quiet') and the
names of profiles (after --profile).
'make install' installs all three. To load one by hand:

  bash   source <(nono completions bash)
  zsh    nono completions zsh > ~/.zfunc/_nono  (a directory in $fpath)
  fish   nono completions fish > ~/.config/fish/completions/nono.fish

Options:
  -h, --help    show this help
";

/// Commands whose SESSION must be live; the others also complete ended ones.
const LIVE_ONLY: &[&str] = &["attach", "detach", "stop", "pending", "approve", "deny"];

/// Parse and run `nono completions`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let mut shell = None;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => {
                print(USAGE)?;
                return Ok(0);
            }
            Value(v) if shell.is_none() => shell = Some(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let specs = specs();
    let global = flags(help::USAGE);
    let script = match shell.as_deref() {
        Some("bash") => bash(&specs, &global),
        Some("zsh") => zsh(&specs, &global),
        Some("fish") => fish(&specs, &global),
        Some(other) => {
            return Err(Error::Usage(format!(
                "unknown shell '{other}': give bash, zsh or fish"
            )))
        }
        None => {
            return Err(Error::Usage(
                "completions needs a shell: bash, zsh or fish".into(),
            ))
        }
    };
    print(&script)?;
    Ok(0)
}

/// One option as a usage text lists it under `Options:`.
#[derive(Debug, PartialEq)]
pub struct Flag {
    /// Its spellings: `-d`, `--detached`.
    pub names: Vec<String>,
    /// The placeholder of its value (`NAME`, `SECS`, `PATH`), if it takes one.
    pub value: Option<String>,
    /// The first line of its description.
    pub help: String,
}

impl Flag {
    /// Whether its value is a sandbox profile (completed with their names).
    fn takes_profile(&self) -> bool {
        self.value.as_deref() == Some("PROFILE")
    }

    /// Whether its value is a file name (completed as one).
    fn takes_path(&self) -> bool {
        self.value
            .as_deref()
            .is_some_and(|v| matches!(v, "PATH" | "FILE" | "DIR"))
    }
}

/// What follows a command's options.
#[derive(Debug, PartialEq)]
pub enum Operand {
    /// Nothing.
    Nothing,
    /// A session.
    Session {
        /// Ended sessions too.
        all: bool,
    },
    /// The name of a nono command (`help`).
    Command,
    /// A program and its arguments (`run`).
    Program,
    /// One of these words (`bash|zsh|fish`, subcommands).
    Words(Vec<String>),
    /// A subcommand, then a session (`rollback show SESSION`).
    WordsThenSession(Vec<String>),
}

/// A command as its usage text describes it.
#[derive(Debug)]
pub struct Spec {
    /// `run`, `attach`, …
    pub name: String,
    /// Its line in the global usage.
    pub summary: String,
    /// Its options.
    pub flags: Vec<Flag>,
    /// What follows them.
    pub operand: Operand,
}

/// Every command of the global usage, described by its own usage text.
pub fn specs() -> Vec<Spec> {
    commands(help::USAGE)
        .into_iter()
        .map(|(name, summary)| {
            let usage = help::usage_of(&name).unwrap_or("");
            Spec {
                flags: flags(usage),
                operand: operand(&name, usage),
                name,
                summary,
            }
        })
        .collect()
}

/// The names and summaries under `Commands:` in a usage text.
pub fn commands(usage: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut inside = false;
    for line in usage.lines() {
        if !line.starts_with(' ') {
            inside = line == "Commands:";
            continue;
        }
        let Some(rest) = line.strip_prefix("  ").filter(|_| inside) else {
            continue;
        };
        if rest.starts_with(' ') {
            // A summary pushed to the next line by a long synopsis.
            if let Some(last) = out.last_mut().filter(|l| l.1.is_empty()) {
                last.1 = rest.trim().to_string();
            }
            continue;
        }
        let name = rest.split_whitespace().next().unwrap_or_default();
        let summary = rest.find("  ").map_or("", |i| rest[i..].trim());
        out.push((name.to_string(), summary.to_string()));
    }
    out
}

/// The options under `Options:` in a usage text.
pub fn flags(usage: &str) -> Vec<Flag> {
    let mut out = Vec::new();
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
        let (spec, help) = text
            .find("  ")
            .map_or((text, ""), |i| (&text[..i], text[i..].trim()));
        let mut flag = Flag {
            names: Vec::new(),
            value: None,
            help: help.to_string(),
        };
        for item in spec.split(", ") {
            let mut words = item.split_whitespace();
            flag.names.extend(words.next().map(String::from));
            if let Some(v) = words.next() {
                flag.value = Some(v.to_string());
            }
        }
        out.push(flag);
    }
    out
}

/// What follows the options, from the synopsis lines (`nono NAME ...`).
fn operand(name: &str, usage: &str) -> Operand {
    let prefix = format!("nono {name}");
    let mut words = Vec::new();
    let mut rest = String::new();
    for line in usage.lines() {
        let line = line.trim_start();
        let line = line.strip_prefix("Usage:").unwrap_or(line).trim();
        let Some(args) = line.strip_prefix(&prefix) else {
            continue;
        };
        if !args.is_empty() && !args.starts_with(' ') {
            continue;
        }
        // A first argument in lower case is a word to type as is.
        if let Some(first) = args.split_whitespace().next() {
            let first = first.trim_matches(|c| matches!(c, '[' | ']' | '(' | ')' | '{' | '}'));
            if first.starts_with(|c: char| c.is_ascii_lowercase()) {
                words.extend(first.split('|').map(String::from));
            }
        }
        rest.push_str(args);
        rest.push(' ');
    }
    if rest.contains("SESSION") && !words.is_empty() {
        Operand::WordsThenSession(words)
    } else if rest.contains("SESSION") {
        Operand::Session {
            all: !LIVE_ONLY.contains(&name),
        }
    } else if rest.contains("ARG...") {
        Operand::Program
    } else if rest.contains("COMMAND") {
        Operand::Command
    } else if !words.is_empty() {
        Operand::Words(words)
    } else {
        Operand::Nothing
    }
}

/// All spellings of `flags`, space-separated.
fn spellings<'a>(flags: impl IntoIterator<Item = &'a Flag>) -> String {
    flags
        .into_iter()
        .flat_map(|f| f.names.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The bash script: one function, no dependency on bash-completion.
fn bash(specs: &[Spec], global: &[Flag]) -> String {
    let mut opts = format!("        '') echo '{}' ;;\n", spellings(global));
    let mut valued = String::new();
    let mut paths = String::new();
    let mut profiles = String::new();
    let mut operands = String::new();
    for s in specs {
        let n = &s.name;
        opts += &format!("        {n}) echo '{}' ;;\n", spellings(&s.flags));
        let v = spellings(s.flags.iter().filter(|f| f.value.is_some()));
        if !v.is_empty() {
            valued += &format!("        {n}) echo '{v}' ;;\n");
        }
        let v = spellings(s.flags.iter().filter(|f| f.takes_path()));
        if !v.is_empty() {
            paths += &format!("        {n}) echo '{v}' ;;\n");
        }
        let v = spellings(s.flags.iter().filter(|f| f.takes_profile()));
        if !v.is_empty() {
            profiles += &format!("        {n}) echo '{v}' ;;\n");
        }
        let words = match &s.operand {
            Operand::Session { all: false } => "$(command nono ps --quiet 2>/dev/null)".into(),
            Operand::Session { all: true } => "$(command nono ps --all --quiet 2>/dev/null)".into(),
            Operand::Command => command_names(specs),
            Operand::Words(w) => w.join(" "),
            Operand::WordsThenSession(w) => {
                operands += &format!(
                    "        {n}) case $2 in 0) echo \"{}\" ;; 1) echo \"$(command nono ps --all --quiet 2>/dev/null)\" ;; esac ;;\n",
                    w.join(" ")
                );
                continue;
            }
            Operand::Nothing | Operand::Program => continue,
        };
        operands += &format!("        {n}) [[ $2 -eq 0 ]] && echo \"{words}\" ;;\n");
    }
    BASH.replace("@COMMANDS@", &command_names(specs))
        .replace("@OPTS@", &opts)
        .replace("@VALUED@", &valued)
        .replace("@PATHS@", &paths)
        .replace("@PROFILES@", &profiles)
        .replace("@OPERANDS@", &operands)
}

/// Every command name, space-separated.
fn command_names(specs: &[Spec]) -> String {
    specs
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

const BASH: &str = r#"# bash completion for nono(1); generated by 'nono completions bash'.

# _nono_opts CMD: the options of CMD ('' for nono itself).
_nono_opts() {
    case $1 in
@OPTS@    esac
}

# _nono_valued CMD: the options of CMD that take a value.
_nono_valued() {
    case $1 in
@VALUED@    esac
}

# _nono_paths CMD: the options of CMD whose value is a file name.
_nono_paths() {
    case $1 in
@PATHS@    esac
}

# _nono_profile_opts CMD: the options of CMD whose value is a profile.
_nono_profile_opts() {
    case $1 in
@PROFILES@    esac
}

# _nono_profiles: the names 'nono profile list' shows.
_nono_profiles() {
    local n _
    command nono profile list 2>/dev/null | while read -r n _; do
        [[ $n != NAME ]] && echo "$n"
    done
}

# _nono_operand CMD N: candidates for operand N (from 0) of CMD.
_nono_operand() {
    case $1 in
@OPERANDS@    esac
}

# _nono_program I: complete the command line of the program that 'nono run'
# starts, which begins at word I.
_nono_program() {
    if [[ $1 -eq $COMP_CWORD ]]; then
        COMPREPLY=($(compgen -c -- "${COMP_WORDS[COMP_CWORD]}"))
    elif declare -F _command_offset >/dev/null; then
        _command_offset "$1"
    else
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "${COMP_WORDS[COMP_CWORD]}"))
    fi
}

_nono() {
    local cur=${COMP_WORDS[COMP_CWORD]} cmd= value= ended= n=0 i w words=
    COMPREPLY=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ -n $value ]]; then
            value=
        elif [[ -z $cmd ]]; then
            [[ $w == -* ]] || cmd=$w
        elif [[ -z $ended && $w == -- ]]; then
            ended=1
        elif [[ -z $ended && $w == -?* ]]; then
            [[ $w != *=* && " $(_nono_valued "$cmd") " == *" $w "* ]] && value=$w
        elif [[ $cmd == run ]]; then
            _nono_program "$i"
            return
        else
            n=$((n + 1))
        fi
    done
    if [[ -n $value ]]; then
        if [[ " $(_nono_paths "$cmd") " == *" $value "* ]]; then
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
        elif [[ " $(_nono_profile_opts "$cmd") " == *" $value "* ]]; then
            COMPREPLY=($(compgen -W "$(_nono_profiles)" -- "$cur"))
        fi
        return
    fi
    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then words=$(_nono_opts ''); else words='@COMMANDS@'; fi
    elif [[ -z $ended && $cur == -* ]]; then
        words=$(_nono_opts "$cmd")
    elif [[ $cmd == run ]]; then
        _nono_program "$COMP_CWORD"
        return
    else
        words=$(_nono_operand "$cmd" "$n")
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

complete -F _nono nono
"#;

/// `text` inside single quotes for the shell, with `[]:\` escaped for a
/// zsh `_arguments` description.
fn zsh_quote(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            '[' | ']' | ':' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `_arguments` specs for `flags`, one per spelling.
fn zsh_flags(flags: &[Flag]) -> String {
    let mut out = String::new();
    for f in flags {
        for name in &f.names {
            let help = zsh_quote(&f.help);
            match &f.value {
                None => out += &format!("    '{name}[{help}]' \\\n"),
                Some(v) => {
                    let how = if name.starts_with("--") { "=" } else { "+" };
                    let action = if f.takes_path() {
                        "_files"
                    } else if f.takes_profile() {
                        "_nono_profiles"
                    } else {
                        " "
                    };
                    out += &format!("    '{name}{how}[{help}]:{}:{action}' \\\n", zsh_quote(v));
                }
            }
        }
    }
    out
}

/// The zsh script: an autoloadable `_nono` that also works when sourced.
fn zsh(specs: &[Spec], global: &[Flag]) -> String {
    let mut commands = String::new();
    let mut cases = String::new();
    for s in specs {
        commands += &format!("    '{}:{}'\n", s.name, zsh_quote(&s.summary));
        let operand = match &s.operand {
            Operand::Nothing => String::new(),
            Operand::Session { all: false } => "    '1:session:_nono_sessions' \\\n".into(),
            Operand::Session { all: true } => "    '1:session:_nono_sessions --all' \\\n".into(),
            Operand::Command => "    '1:command:_nono_commands' \\\n".into(),
            Operand::Program => {
                "    '1:program:_command_names -e' \\\n    '*::program arguments:_normal' \\\n"
                    .into()
            }
            Operand::Words(w) => format!("    '1:word:({})' \\\n", w.join(" ")),
            Operand::WordsThenSession(w) => format!(
                "    '1:word:({})' \\\n    '2:session:_nono_sessions --all' \\\n",
                w.join(" ")
            ),
        };
        cases += &format!(
            "  ({})\n    _arguments -S \\\n{}{}    && return 0\n    ;;\n",
            s.name,
            zsh_flags(&s.flags),
            operand
        );
    }
    ZSH.replace("@GLOBAL@", &zsh_flags(global))
        .replace("@COMMANDS@", &commands)
        .replace("@CASES@", &cases)
}

const ZSH: &str = r#"#compdef nono
# zsh completion for nono(1); generated by 'nono completions zsh'.

# Sessions as id:name and name:id (live ones; with --all, every one).
_nono_sessions() {
  local -a entries ps=(ps --quiet)
  local line
  [[ $1 == --all ]] && ps+=(--all)
  for line in ${(f)"$(_call_program sessions command nono $ps 2>/dev/null)"}; do
    entries+=("${line%%$'\t'*}:${line#*$'\t'}" "${line#*$'\t'}:${line%%$'\t'*}")
  done
  _describe -t sessions session entries
}

# Profile names, as 'nono profile list' shows them.
_nono_profiles() {
  local -a lines=(${(f)"$(_call_program profiles command nono profile list 2>/dev/null)"})
  compadd -- ${${lines[2,-1]}%% *}
}

_nono_commands() {
  local -a commands=(
@COMMANDS@  )
  _describe -t commands 'nono command' commands
}

_nono() {
  local curcontext=$curcontext state state_descr line
  local -A opt_args
  _arguments -C \
@GLOBAL@    '1:command:_nono_commands' \
    '*:: :->args' && return 0
  curcontext=${curcontext%:*:*}:nono-$words[1]:
  case $words[1] in
@CASES@  esac
  return 1
}

if [[ $funcstack[1] == _nono ]]; then
  _nono "$@"
else
  compdef _nono nono
fi
"#;

/// `text` in fish single quotes.
fn fish_quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The fish script.
fn fish(specs: &[Spec], global: &[Flag]) -> String {
    let mut valued = String::new();
    let mut lines = String::new();
    let flag_lines = |cond: &str, flags: &[Flag]| {
        let mut out = String::new();
        for f in flags {
            let mut line = format!("complete -c nono -n {}", fish_quote(cond));
            for name in &f.names {
                match name.strip_prefix("--") {
                    Some(long) => line += &format!(" -l {long}"),
                    None => line += &format!(" -s {}", name.trim_start_matches('-')),
                }
            }
            if f.takes_path() {
                line += " -r -F";
            } else if f.takes_profile() {
                line += " -xa '(__nono_profiles)'";
            } else if f.value.is_some() {
                line += " -x";
            }
            out += &format!("{line} -d {}\n", fish_quote(&f.help));
        }
        out
    };
    lines += &flag_lines("__nono_needs_command", global);
    for s in specs {
        lines += &format!(
            "complete -c nono -n __nono_needs_command -a {} -d {}\n",
            s.name,
            fish_quote(&s.summary)
        );
    }
    for s in specs {
        let n = &s.name;
        let v = spellings(s.flags.iter().filter(|f| f.value.is_some()));
        if !v.is_empty() {
            valued += &format!("        case {n}\n            echo {v}\n");
        }
        // A program's own options are not nono's.
        let cond = if s.operand == Operand::Program {
            format!("__nono_at {n} 0")
        } else {
            format!("__nono_is {n}")
        };
        lines += &flag_lines(&cond, &s.flags);
        let at = fish_quote(&format!("__nono_at {n} 0"));
        lines += &match &s.operand {
            Operand::Nothing => String::new(),
            Operand::Session { all } => format!(
                "complete -c nono -n {at} -a '(__nono_sessions{})'\n",
                if *all { " --all" } else { "" }
            ),
            Operand::Command => format!("complete -c nono -n {at} -a '{}'\n", command_names(specs)),
            Operand::Words(w) => format!("complete -c nono -n {at} -a '{}'\n", w.join(" ")),
            Operand::WordsThenSession(w) => format!(
                "complete -c nono -n {at} -a '{}'\ncomplete -c nono -n {} -a '(__nono_sessions --all)'\n",
                w.join(" "),
                fish_quote(&format!("__nono_at {n} 1"))
            ),
            Operand::Program => format!(
                "complete -c nono -n {at} -a '(__fish_complete_command)'\n\
                 complete -c nono -n '__nono_in_program {n}' -a '(__nono_program)'\n"
            ),
        };
    }
    FISH.replace("@VALUED@", &valued)
        .replace("@COMPLETE@", &lines)
}

const FISH: &str = r#"# fish completion for nono(1); generated by 'nono completions fish'.

# The nono command on the command line, if one was typed.
function __nono_command
    set -l words (commandline -opc)
    set -e words[1]
    for w in $words
        if not string match -q -- '-*' $w
            echo $w
            return
        end
    end
end

# The options of a command that take a value.
function __nono_valued
    switch $argv[1]
@VALUED@    end
end

# The operands typed after the command (for run: the program's command line).
function __nono_operands
    set -l cmd (__nono_command)
    set -l valued (__nono_valued $cmd)
    set -l seen 0
    set -l value 0
    set -l ended 0
    set -l words (commandline -opc)
    set -e words[1]
    for w in $words
        if test $seen = 0
            string match -q -- '-*' $w; or set seen 1
        else if test $value = 1
            set value 0
        else if test $ended = 1; or not string match -q -- '-?*' $w
            echo $w
            test "$cmd" = run; and set ended 1
        else if string match -q -- -- $w
            set ended 1
        else if contains -- $w $valued
            set value 1
        end
    end
end

function __nono_needs_command
    set -l cmd (__nono_command)
    test -z "$cmd"
end

# __nono_is CMD: the command typed is CMD.
function __nono_is
    set -l cmd (__nono_command)
    test "$cmd" = $argv[1]
end

# __nono_at CMD N: the command is CMD and N operands are typed.
function __nono_at
    __nono_is $argv[1]; and test (count (__nono_operands)) -eq $argv[2]
end

# __nono_in_program CMD: past the program's name on 'nono CMD'.
function __nono_in_program
    __nono_is $argv[1]; and test (count (__nono_operands)) -gt 0
end

# The program's arguments, completed as if it were typed alone.
function __nono_program
    complete -C (string join ' ' -- (string escape -- (__nono_operands)) (commandline -ct))
end

# Sessions: id with the name as description, and name with the id.
function __nono_sessions
    for line in (command nono ps --quiet $argv 2>/dev/null)
        set -l f (string split \t -- $line)
        printf '%s\t%s\n' $f[1] $f[2] $f[2] $f[1]
    end
end

# Profile names, as 'nono profile list' shows them.
function __nono_profiles
    command nono profile list 2>/dev/null | tail -n +2 | string replace -r ' .*' ''
end

complete -c nono -f
@COMPLETE@"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_texts_are_read_as_the_completions_need() {
        let specs = specs();
        let run = specs.iter().find(|s| s.name == "run").unwrap();
        assert_eq!(run.operand, Operand::Program);
        let name = run.flags.iter().find(|f| f.names == ["-n", "--name"]);
        assert_eq!(name.unwrap().value.as_deref(), Some("NAME"));
        let get = |n: &str| &specs.iter().find(|s| s.name == n).unwrap().operand;
        assert_eq!(get("attach"), &Operand::Session { all: false });
        assert_eq!(get("logs"), &Operand::Session { all: true });
        assert_eq!(get("help"), &Operand::Command);
        assert_eq!(get("ps"), &Operand::Nothing);
        assert_eq!(
            get("completions"),
            &Operand::Words(vec!["bash".into(), "zsh".into(), "fish".into()])
        );
        let prune = specs.iter().find(|s| s.name == "prune").unwrap();
        assert_eq!(prune.summary, "remove the files of exited sessions");
        let older = prune.flags.iter().find(|f| f.names == ["--older-than"]);
        assert_eq!(older.unwrap().value.as_deref(), Some("DAYS"));
        let global = flags(help::USAGE);
        assert_eq!(global.len(), 2);
        assert_eq!(global[1].names, ["-V", "--version"]);
    }

    #[test]
    fn rollback_completes_its_subcommands_then_a_session() {
        let specs = specs();
        let rb = specs.iter().find(|s| s.name == "rollback").unwrap();
        let Operand::WordsThenSession(w) = &rb.operand else {
            panic!("{:?}", rb.operand);
        };
        assert_eq!(w, &["list", "show", "restore", "verify", "prune"]);
        assert!(bash(&specs, &[])
            .contains("rollback) case $2 in 0) echo \"list show restore verify prune\""));
    }

    #[test]
    fn subcommand_words_come_from_each_synopsis_line() {
        let usage = "Usage: nono profile list\n       nono profile show NAME\n";
        assert_eq!(
            operand("profile", usage),
            Operand::Words(vec!["list".into(), "show".into()])
        );
    }
}
