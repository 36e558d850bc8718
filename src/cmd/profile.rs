//! `nono profile list` and `nono profile show NAME`: which sandbox profiles
//! exist, and what one resolves to on this machine and kernel.

use crate::error::{Error, Result};
use crate::out::print;
use crate::sandbox::{self, profile};
use lexopt::prelude::*;

/// `nono profile --help`.
pub const USAGE: &str = "\
Usage: nono profile list
       nono profile show PROFILE

Sandbox profiles decide what a session's program may touch (see
nono-profile(5)). 'list' shows the built-in profiles and yours
($XDG_CONFIG_HOME/nono/profiles/NAME.toml). 'show' prints one fully
resolved: every path with its access, the working-directory grant, the
network mode, and what this kernel's Landlock enforces. PROFILE is a name
or a path to a profile file.

Options:
  -h, --help    show this help
";

/// Parse and run `nono profile`.
pub fn main(p: &mut lexopt::Parser) -> Result<i32> {
    let mut words = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => {
                print(USAGE)?;
                return Ok(0);
            }
            Value(v) => words.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["list"] => {
            print(&list())?;
            Ok(0)
        }
        ["show", name] => {
            let req = sandbox::Request {
                profile: Some(name.to_string()),
                ..Default::default()
            };
            let policy = sandbox::resolve(&req, None)?;
            print(&sandbox::describe(&policy, None))?;
            Ok(0)
        }
        ["show"] => Err(Error::Usage(
            "profile show needs a PROFILE, as in 'nono profile show default'".into(),
        )),
        [] => Err(Error::Usage(
            "profile needs 'list' or 'show PROFILE'".into(),
        )),
        _ => Err(Error::Usage(format!(
            "unknown profile command '{}'; use 'list' or 'show PROFILE'",
            words.join(" ")
        ))),
    }
}

/// One line per profile: yours first (they shadow built-ins of the same
/// name), a profile that does not parse shown with its error.
fn list() -> String {
    let mut rows = vec![(
        "NAME".to_string(),
        "SOURCE".to_string(),
        "DESCRIPTION".to_string(),
    )];
    let user = profile::user_names();
    let dir = profile::user_dir();
    for name in &user {
        let desc = match profile::load_chain(name) {
            Ok(chain) => chain[0].description.clone(),
            Err(e) => format!("error: {e}"),
        };
        let src = dir
            .as_ref()
            .map(|d| d.join(format!("{name}.toml")).display().to_string())
            .unwrap_or_default();
        rows.push((name.clone(), src, desc));
    }
    for (name, text) in profile::BUILT_INS {
        let desc = profile::parse(name, "built-in", text)
            .map(|p| p.description)
            .unwrap_or_default();
        let src = if user.iter().any(|u| u == name) {
            "built-in (shadowed by yours)"
        } else {
            "built-in"
        };
        rows.push((name.to_string(), src.to_string(), desc));
    }
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    rows.iter()
        .map(|(a, b, c)| format!("{a:<w0$}  {b:<w1$}  {c}\n"))
        .collect()
}
