//! `nono help` and `nono --help`: the global usage text, and every
//! command's usage by name (which completions are generated from).

use super::{
    approve, attach, completions, detach, inspect, logs, pending, profile, prune, ps, rollback,
    run, stop,
};
use crate::error::{Error, Result};
use crate::out::print;
use lexopt::prelude::*;

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
  pending      list requests waiting for approval (sessions run with --ask)
  approve      grant a waiting request
  deny         refuse a waiting request
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

/// Usage text of a command by name (what `nono NAME --help` prints).
pub fn usage_of(name: &str) -> Option<&'static str> {
    Some(match name {
        "run" => run::USAGE,
        "attach" => attach::USAGE,
        "detach" => detach::USAGE,
        "ps" => ps::USAGE,
        "inspect" => inspect::USAGE,
        "logs" => logs::USAGE,
        "stop" => stop::USAGE,
        "pending" => pending::USAGE,
        "approve" => approve::APPROVE_USAGE,
        "deny" => approve::DENY_USAGE,
        "prune" => prune::USAGE,
        "rollback" => rollback::USAGE,
        "profile" => profile::USAGE,
        "completions" => completions::USAGE,
        "help" => HELP_USAGE,
        _ => return None,
    })
}

/// Parse and run `nono help`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let text = match p.next()? {
        None => USAGE,
        Some(Short('h') | Long("help")) => HELP_USAGE,
        Some(Value(c)) => {
            let c = c.string()?;
            usage_of(&c).ok_or_else(|| Error::Usage(format!("unknown command '{c}'")))?
        }
        Some(other) => return Err(other.unexpected().into()),
    };
    print(text)?;
    Ok(0)
}
