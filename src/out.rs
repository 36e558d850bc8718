//! What every command shares for talking to the user: writing output
//! (where a failed write is an error, except a closed pipe) and warnings,
//! and the formatting of times and ages.

use crate::error::{Error, Result};
use std::io::{self, Write};

/// Write text to stdout. A reader that went away (`nono ps | head`) ends
/// the command quietly with status 0; any other failure (a full disk,
/// `> /dev/full`) is an error naming standard output.
pub fn print(text: &str) -> Result<()> {
    print_bytes(text.as_bytes())
}

/// [`print`] for raw bytes (a session's output).
pub fn print_bytes(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    // Flush now: a buffered tail written at exit would lose its error.
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(Error::StdoutClosed),
        Err(e) => Err(Error::io("cannot write to standard output", e)),
    }
}

/// Print a warning to stderr, its control characters shown escaped (it may
/// quote a program's name or output). There is nowhere to report a failure to.
pub fn warn(text: &str) {
    let _ = writeln!(
        io::stderr().lock(),
        "nono: {}",
        crate::escape::message(text)
    );
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
