//! The one error type: every failure a user can see, with a message that
//! says what went wrong and what to do.

use std::fmt;
use std::io;

/// A failure of a nono command.
#[derive(Debug)]
pub enum Error {
    /// Bad command-line usage (exit status 2).
    Usage(String),
    /// Bad usage of a command: the command's name, and the message.
    CommandUsage(String, String),
    /// No session matches what the user typed.
    NoSuchSession(String),
    /// A prefix matches several sessions; the candidates' short ids.
    Ambiguous(String, Vec<String>),
    /// An I/O failure, with what we were doing.
    Io(String, io::Error),
    /// Any other failure, already phrased for the user.
    Msg(String),
    /// Whoever read our output went away (`| head`): end quietly, status 0.
    StdoutClosed,
}

/// Result with our error.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Exit status for this error: 2 for usage, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::CommandUsage(..) => 2,
            Error::StdoutClosed => 0,
            _ => 1,
        }
    }

    /// Wrap an I/O error with what we were doing.
    pub fn io(context: impl Into<String>, e: io::Error) -> Error {
        Error::Io(context.into(), e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m} (see 'nono --help')"),
            Error::CommandUsage(c, m) => write!(f, "{m} (see 'nono {c} --help')"),
            Error::NoSuchSession(q) => {
                write!(
                    f,
                    "no session matches '{q}'; 'nono ps --all' lists sessions"
                )
            }
            Error::Ambiguous(q, c) => write!(
                f,
                "'{q}' matches {} sessions ({}); type more of the id",
                c.len(),
                c.join(", ")
            ),
            Error::Io(ctx, e) => write!(f, "{ctx}: {e}"),
            Error::Msg(m) => f.write_str(m),
            Error::StdoutClosed => f.write_str("standard output was closed"),
        }
    }
}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Error {
        Error::Usage(e.to_string())
    }
}

/// Shorthand for `Err(Error::Msg(format!(...)))`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::error::Error::Msg(format!($($arg)*))) };
}
