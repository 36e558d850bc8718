//! Operator experience: what a new user and a tmux/screen operator meet in
//! their first hour, driven through the real binary.

mod common;

use common::Env;
use std::process::Stdio;

#[test]
fn output_to_a_full_disk_is_an_error_but_a_closed_pipe_is_not() {
    let env = Env::new();
    let id = env.start(&["--", "sh", "-c", "echo hello; exec sleep 60"]);
    common::wait_until("the greeting in the logs", common::WAIT, || {
        env.run(&["logs", &id]).stdout.contains("hello")
    });
    for args in [
        vec!["ps", "--json"],
        vec!["inspect", id.as_str()],
        vec!["logs", id.as_str()],
        vec!["--help"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = env
            .cmd(&args)
            .stdin(Stdio::null())
            .stdout(full)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("cannot write to standard output: No space left on device"),
            "{args:?}: {err}"
        );
    }
    // `nono ps | true`: the reader is gone before we write; quiet success.
    let (r, w) = nono::sys::pipe().unwrap();
    drop(r);
    let o = env
        .cmd(&["ps", "--json"])
        .stdin(Stdio::null())
        .stdout(w)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(o.stderr.is_empty(), "{o:?}");
}
