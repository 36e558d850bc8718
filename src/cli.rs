//! argv to command: dispatch to `cmd::*`, and the exit status.

use crate::cmd;
use crate::error::{Error, Result};
use crate::out::print;
use lexopt::prelude::*;

/// Parse argv and run the command; returns the process exit status.
pub fn main() -> i32 {
    let mut p = lexopt::Parser::from_env();
    match dispatch(&mut p) {
        Ok(code) => code,
        Err(Error::StdoutClosed) => 0,
        Err(e) => {
            crate::out::warn(&e.to_string());
            e.exit_code()
        }
    }
}

fn dispatch(p: &mut lexopt::Parser) -> Result<i32> {
    match p.next()? {
        Some(Value(v)) => {
            let name = v.string()?;
            let known = cmd::help::usage_of(&name).is_some();
            let result = match name.as_str() {
                "run" => cmd::run::main(p),
                "attach" => cmd::attach::main(p),
                "detach" => cmd::detach::main(p),
                "ps" => cmd::ps::main(p),
                "inspect" => cmd::inspect::main(p),
                "logs" => cmd::logs::main(p),
                "stop" => cmd::stop::main(p),
                "pending" => cmd::pending::main(p),
                "approve" => cmd::approve::approve(p),
                "deny" => cmd::approve::deny(p),
                "prune" => cmd::prune::main(p),
                "rollback" => cmd::rollback::main(p),
                "profile" => cmd::profile::main(p),
                "completions" => cmd::completions::main(p),
                "help" => cmd::help::main(p),
                other => Err(Error::Usage(format!("unknown command '{other}'"))),
            };
            // A command's usage error points at that command's help.
            result.map_err(|e| match e {
                Error::Usage(m) if known => Error::CommandUsage(name, m),
                e => e,
            })
        }
        Some(Short('h') | Long("help")) => {
            print(cmd::help::USAGE)?;
            Ok(0)
        }
        Some(Short('V') | Long("version")) => {
            print(&format!(
                "nono {} (attach protocol {})\n",
                env!("CARGO_PKG_VERSION"),
                crate::protocol::PROTOCOL_VERSION
            ))?;
            Ok(0)
        }
        Some(other) => Err(other.unexpected().into()),
        None => {
            eprint!("{}", cmd::help::USAGE);
            Ok(2)
        }
    }
}
