//! nono: a small, auditable session supervisor for sandboxed programs.
//!
//! `cli` parses argv and dispatches to one file per command under `cmd`,
//! which share `out` for writing to the user;
//! `supervisor` runs a session; `client` attaches to one; `protocol` is the
//! wire format between them; `registry` is the on-disk state; `sys` is the
//! only module with `unsafe`.

#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod cmd;
pub mod config;
pub mod defaults;
pub mod error;
pub mod escape;
pub mod json;
pub mod out;
pub mod procfs;
pub mod program;
pub mod protocol;
pub mod registry;
pub mod relay;
pub mod rollback;
pub mod sandbox;
pub mod signals;
pub mod supervisor;
pub mod sys;
pub mod term;
pub mod toml;
