//! argv to command: the global usage text and dispatch to `cmd::*`, plus
//! the small output helpers every command shares.

use crate::cmd;
use crate::error::{Error, Result};
use lexopt::prelude::*;
use std::io::Write;

/// `nono --help`.
pub const USAGE: &str = "\
Usage: nono COMMAND [OPTIONS] [ARG...]
       nono --help | --version

Run programs in sessions that outlive your terminal.

Commands:
  run          start a program in a new, sandboxed session (attached unless -d)
  attach       attach this terminal to a running session
  detach       detach whichever client is attached
  ps           list sessions
  inspect      show everything about one session
  logs         print a session's history as text, without attaching
  stop         end a session: SIGTERM, then SIGKILL
  prune        remove the files of exited sessions
  rollback     review and undo what a --rollback session changed
  profile      list sandbox profiles, or show one resolved
  completions  print a shell completion script (bash, zsh or fish)
  help         show the usage of a command

'nono COMMAND --help' shows a command's options. SESSION is any unique
prefix of a session id, or a session name. While attached, press the
detach keys (default Ctrl-] d; see nono.toml(5)) to detach.

Options:
  -h, --help       show help
  -V, --version    show the version and the attach protocol version
";

/// `nono help --help`.
pub const HELP_USAGE: &str = "\
Usage: nono help [COMMAND]

Show the usage of COMMAND (the same text as 'nono COMMAND --help'), or of
nono itself.

Options:
  -h, --help    show this help
";

/// Write text to stdout; a closed pipe (`nono ps | head`) is not an error.
pub fn print(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Print a warning to stderr.
pub fn warn(text: &str) {
    eprintln!("nono: {text}");
}

/// Parse argv and run the command; returns the process exit status.
pub fn main() -> i32 {
    let mut p = lexopt::Parser::from_env();
    match dispatch(&mut p) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nono: {e}");
            e.exit_code()
        }
    }
}

/// Usage text of a command by name (what `nono NAME --help` prints).
pub fn usage_of(name: &str) -> Option<&'static str> {
    Some(match name {
        "run" => cmd::run::USAGE,
        "attach" => cmd::attach::USAGE,
        "detach" => cmd::detach::USAGE,
        "ps" => cmd::ps::USAGE,
        "inspect" => cmd::inspect::USAGE,
        "logs" => cmd::logs::USAGE,
        "stop" => cmd::stop::USAGE,
        "prune" => cmd::prune::USAGE,
        "rollback" => cmd::rollback::USAGE,
        "profile" => cmd::profile::USAGE,
        "completions" => cmd::completions::USAGE,
        "help" => HELP_USAGE,
        _ => return None,
    })
}

fn dispatch(p: &mut lexopt::Parser) -> Result<i32> {
    match p.next()? {
        Some(Value(v)) => {
            let name = v.string()?;
            match name.as_str() {
                "run" => cmd::run::main(p),
                "attach" => cmd::attach::main(p),
                "detach" => cmd::detach::main(p),
                "ps" => cmd::ps::main(p),
                "inspect" => cmd::inspect::main(p),
                "logs" => cmd::logs::main(p),
                "stop" => cmd::stop::main(p),
                "prune" => cmd::prune::main(p),
                "rollback" => cmd::rollback::main(p),
                "profile" => cmd::profile::main(p),
                "completions" => cmd::completions::main(p),
                "help" => {
                    let text = match p.next()? {
                        None => USAGE,
                        Some(Short('h') | Long("help")) => HELP_USAGE,
                        Some(Value(c)) => {
                            let c = c.string()?;
                            usage_of(&c)
                                .ok_or_else(|| Error::Usage(format!("unknown command '{c}'")))?
                        }
                        Some(other) => return Err(other.unexpected().into()),
                    };
                    print(text);
                    Ok(0)
                }
                other => Err(Error::Usage(format!("unknown command '{other}'"))),
            }
        }
        Some(Short('h') | Long("help")) => {
            print(USAGE);
            Ok(0)
        }
        Some(Short('V') | Long("version")) => {
            print(&format!(
                "nono {} (attach protocol {})\n",
                env!("CARGO_PKG_VERSION"),
                crate::protocol::PROTOCOL_VERSION
            ));
            Ok(0)
        }
        Some(other) => Err(other.unexpected().into()),
        None => {
            eprint!("{USAGE}");
            Ok(2)
        }
    }
}

/// An option as a command's flag handler sees it (owned, so the handler
/// may read the option's value from the parser).
pub enum Opt {
    /// `-x`
    Short(char),
    /// `--name`
    Long(String),
}

impl Opt {
    /// Whether this is `-short` or `--long`.
    pub fn is(&self, short: Option<char>, long: &str) -> bool {
        match self {
            Opt::Short(c) => Some(*c) == short,
            Opt::Long(l) => l == long,
        }
    }
}

/// Parse a command that takes exactly one SESSION and some flags; `flag`
/// handles the command's own options and returns false for unknown ones.
/// Returns None when help was printed.
pub fn parse_session_command(
    p: &mut lexopt::Parser,
    usage: &str,
    mut flag: impl FnMut(&Opt, &mut lexopt::Parser) -> Result<bool>,
) -> Result<Option<String>> {
    let mut session = None;
    while let Some(arg) = p.next()? {
        let opt = match arg {
            Short('h') | Long("help") => {
                print(usage);
                return Ok(None);
            }
            Value(v) if session.is_none() => {
                session = Some(v.string()?);
                continue;
            }
            Short(c) => Opt::Short(c),
            Long(l) => Opt::Long(l.to_string()),
            Value(_) => return Err(arg.unexpected().into()),
        };
        if !flag(&opt, p)? {
            let shown = match opt {
                Opt::Short(c) => format!("-{c}"),
                Opt::Long(l) => format!("--{l}"),
            };
            return Err(Error::Usage(format!("invalid option '{shown}'")));
        }
    }
    session
        .map(Some)
        .ok_or_else(|| Error::Usage("missing SESSION (an id prefix or a name)".into()))
}

/// A unix time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn fmt_time(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A duration in seconds as `45s`, `2m`, `3h`, `5d`.
pub fn fmt_age(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_ages_read_naturally() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_time(1_795_477_203), "2026-11-23 23:40:03 UTC");
        assert_eq!(fmt_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(fmt_age(59), "59s");
        assert_eq!(fmt_age(120), "2m");
        assert_eq!(fmt_age(3 * 3600 + 5), "3h");
        assert_eq!(fmt_age(5 * 86_400), "5d");
    }
}
