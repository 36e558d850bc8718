//! The wire format between a nono client and a session's supervisor: the
//! single source of truth for both sides.
//!
//! One Unix stream connection per request. Every message is a frame:
//! `type: u8, len: u32 big-endian, payload: len bytes`, with `len` at most
//! [`MAX_FRAME_PAYLOAD`]. The client speaks first with a [`Hello`]; the
//! supervisor answers with one [`Frame::Reply`]. After an ok attach the
//! client sends `Input`/`Resize`/`Eof`/`DetachMe` and the supervisor sends
//! `Output` and finally `Exited` or `Detached`. An `AttachTerminal` hello
//! carries the client's terminal (an fd, SCM_RIGHTS, sent with the hello's
//! bytes): when the ok reply says [`ATTACHED_TERMINAL`], the supervisor
//! reads keystrokes from it and writes output to it itself, and the socket
//! carries only `Resize`/`DetachMe` one way and, at the end, the unwritten
//! rest as `Output`, `Queried` and `Exited`/`Detached` the other; when it
//! says [`ATTACHED`], the terminal was not taken and everything is relayed
//! as for `Attach`. After an ok stop the
//! supervisor sends `Exited` when the session has ended (preceded by
//! `Notice`s when it could not record the end); after an ok logs
//! request it sends the history as `Output` text and closes (or, following,
//! keeps sending lines and ends with `Exited`).
//!
//! Compatibility: the frame header and the hello's first six bytes
//! (`NONO` + version) never change, so any two versions can at least tell
//! each other apart; a supervisor answers a hello of another version with
//! `ReplyStatus::VersionMismatch` carrying its own version in the message.

use crate::defaults::MAX_FRAME_PAYLOAD;
use crate::sys::WinSize;

/// Version of this protocol; bump on any incompatible change.
pub const PROTOCOL_VERSION: u16 = 1;

/// First bytes of every hello, so stray data is refused at once.
pub const MAGIC: &[u8; 4] = b"NONO";

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 5;

/// The ok reply's message to an attach whose keystrokes and output go
/// through the client (the socket relay).
pub const ATTACHED: &str = "attached";

/// The ok reply's message to an `AttachTerminal` whose terminal the
/// supervisor took: the client no longer reads or writes it until the end.
pub const ATTACHED_TERMINAL: &str = "attached to the terminal";

/// The refusal of whatever is not a hello, which a supervisor older than
/// `AttachTerminal` also gives that request.
pub const NOT_A_HELLO: &str = "expected a hello";

/// Longest detach sequence an `AttachTerminal` hello carries; a longer one
/// (no real key sequence is) makes the client attach without handing over.
pub const MAX_DETACH_BYTES: usize = 32;

/// What the supervisor needs to serve a handed-over terminal as the client
/// would: the settings of the user at that terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TerminalSettings {
    /// `[ui] allow_clipboard`: OSC 52 writes reach the terminal.
    pub allow_clipboard: bool,
    /// Bytes of `detach` in use.
    detach_len: u8,
    /// The detach sequence (`[ui] detach_sequence`), padded with zeros.
    detach: [u8; MAX_DETACH_BYTES],
}

impl TerminalSettings {
    /// Settings with this detach sequence (2 to `MAX_DETACH_BYTES` bytes, else None).
    pub fn new(detach_sequence: &[u8], allow_clipboard: bool) -> Option<TerminalSettings> {
        if !(2..=MAX_DETACH_BYTES).contains(&detach_sequence.len()) {
            return None;
        }
        let mut detach = [0; MAX_DETACH_BYTES];
        detach[..detach_sequence.len()].copy_from_slice(detach_sequence);
        Some(TerminalSettings {
            allow_clipboard,
            detach_len: detach_sequence.len() as u8,
            detach,
        })
    }

    /// The detach sequence's bytes.
    pub fn detach_sequence(&self) -> &[u8] {
        &self.detach[..self.detach_len as usize]
    }
}

/// What a client asks for in its hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Become the session's attached client, with this window size.
    Attach(WinSize),
    /// `Attach`, handing over the client's terminal (the fd sent with the
    /// hello) to be served with these settings. A supervisor that refuses
    /// the fd attaches as for `Attach` and says so in its ok reply; one
    /// older than this request refuses the hello, and the client asks again
    /// with `Attach`.
    AttachTerminal(WinSize, TerminalSettings),
    /// Detach whichever client is attached.
    Detach,
    /// End the session: SIGTERM, then SIGKILL after `timeout_ms` (at once with `force`).
    Stop {
        /// Kill at once with SIGKILL.
        force: bool,
        /// Milliseconds between SIGTERM and SIGKILL.
        timeout_ms: u32,
    },
    /// The session's history as plain text (`Output` frames); with
    /// `follow`, new lines until the session ends (then `Exited`).
    Logs {
        /// Keep the connection and send lines as they complete.
        follow: bool,
        /// Only the last this many lines of the history (0: all).
        lines: u32,
    },
    /// List the approval requests waiting (`--ask` sessions). The ok
    /// reply's message is a JSON array of [`PendingRequest`], oldest first
    /// (cut short, never split, before the frame limit).
    Pending,
    /// Answer an approval request. The ok reply's message says what was
    /// decided; `Refused` when no such request waits.
    Decide {
        /// The request's id (0: the only one waiting; refused when several wait).
        id: u32,
        /// Grant (true) or deny (false).
        allow: bool,
        /// Also decide this path the same way for the rest of the session.
        always: bool,
    },
}

/// One waiting approval request, as `Request::Pending` lists it (JSON).
/// Field names are a stable interface (`nono pending --json`).
#[derive(Clone, Debug, Default, PartialEq, nanoserde::SerJson, nanoserde::DeJson)]
pub struct PendingRequest {
    /// Id to answer it by, unique within the session.
    pub id: u32,
    /// Process (thread group) that asked.
    pub pid: i32,
    /// Its command name (as the process calls itself: not proof of anything).
    pub command: String,
    /// The resolved path (symlinks followed), which a grant opens.
    pub path: String,
    /// `read`, `write` or `read-write`.
    pub access: String,
    /// Whether the open creates the file.
    pub create: bool,
    /// Unix time it was asked.
    pub asked_at: u64,
    /// Threads waiting on it (the same process asking again is one request).
    pub waiters: u32,
}

/// How the session's program ended, as carried by `Exited`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with a code.
    Code(i32),
    /// Killed by a signal.
    Signal(i32),
}

impl ExitStatus {
    /// The shell convention: the code, or 128 + signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

/// The supervisor's answer to a hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyStatus {
    /// Request accepted.
    Ok = 0,
    /// Another client is attached.
    Busy = 1,
    /// The peer may not talk to this session (other uid, or inside it).
    Denied = 2,
    /// The hello's protocol version differs from the supervisor's.
    VersionMismatch = 3,
    /// The request could not be carried out; the message says why.
    Refused = 4,
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Client's first frame: protocol version and request.
    Hello(Hello),
    /// Keyboard input for the program.
    Input(Vec<u8>),
    /// The client's window changed size.
    Resize(WinSize),
    /// The client's input ended (stdin was not a terminal and hit EOF).
    Eof,
    /// The client typed the detach sequence and wants to be let go.
    DetachMe,
    /// Supervisor's answer to the hello, with a human-readable message.
    Reply(ReplyStatus, String),
    /// Bytes for the client's terminal.
    Output(Vec<u8>),
    /// The session ended.
    Exited(ExitStatus),
    /// The client was detached; the message says by whom.
    Detached(String),
    /// Something the operator should know, sent to a `stop` before its
    /// `Exited` (the session's end could not be recorded, and why).
    Notice(String),
    /// Before `Exited`/`Detached` to a client whose terminal the supervisor
    /// served: a query went to the terminal, whose answer may still be on
    /// the way (the client fences it off before giving the terminal back).
    Queried,
}

/// The hello's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version the client speaks.
    pub version: u16,
    /// What it asks for (None when the version is not ours and we cannot parse it).
    pub request: Option<Request>,
}

// Frame type bytes; client to supervisor below 16, supervisor to client from 16.
const T_HELLO: u8 = 1;
const T_INPUT: u8 = 2;
const T_RESIZE: u8 = 3;
const T_EOF: u8 = 4;
const T_DETACH_ME: u8 = 5;
const T_REPLY: u8 = 16;
const T_OUTPUT: u8 = 17;
const T_EXITED: u8 = 18;
const T_DETACHED: u8 = 19;
const T_NOTICE: u8 = 20;
const T_QUERIED: u8 = 21;

// Request bytes inside a hello.
const R_ATTACH: u8 = 1;
const R_DETACH: u8 = 2;
const R_STOP: u8 = 3;
const R_LOGS: u8 = 4;
const R_PENDING: u8 = 5;
const R_DECIDE: u8 = 6;
const R_ATTACH_TERMINAL: u8 = 7;

/// Why a frame could not be decoded; the connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Length field beyond the maximum.
    TooLong(u32),
    /// Unknown frame type.
    UnknownType(u8),
    /// Payload does not match its type.
    Malformed(u8),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooLong(n) => write!(f, "frame of {n} bytes exceeds the limit"),
            DecodeError::UnknownType(t) => write!(f, "unknown frame type {t}"),
            DecodeError::Malformed(t) => write!(f, "malformed frame of type {t}"),
        }
    }
}

fn put_size(out: &mut Vec<u8>, s: WinSize) {
    for v in [s.rows, s.cols, s.xpixel, s.ypixel] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn get_size(p: &[u8]) -> Option<WinSize> {
    if p.len() != 8 {
        return None;
    }
    let v = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
    Some(WinSize {
        rows: v(0),
        cols: v(2),
        xpixel: v(4),
        ypixel: v(6),
    })
}

impl Frame {
    /// Append this frame's bytes to `out`. Payloads must fit [`MAX_FRAME_PAYLOAD`];
    /// callers chunk `Input`/`Output` (see [`push_output`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        let ty = match self {
            Frame::Hello(h) => {
                out.extend_from_slice(MAGIC);
                out.extend_from_slice(&h.version.to_be_bytes());
                match h.request {
                    Some(Request::Attach(size)) => {
                        out.push(R_ATTACH);
                        put_size(out, size);
                    }
                    Some(Request::AttachTerminal(size, t)) => {
                        out.push(R_ATTACH_TERMINAL);
                        put_size(out, size);
                        out.push(t.allow_clipboard as u8);
                        out.extend_from_slice(t.detach_sequence());
                    }
                    Some(Request::Detach) => out.push(R_DETACH),
                    Some(Request::Stop { force, timeout_ms }) => {
                        out.push(R_STOP);
                        out.push(force as u8);
                        out.extend_from_slice(&timeout_ms.to_be_bytes());
                    }
                    Some(Request::Logs { follow, lines }) => {
                        out.push(R_LOGS);
                        out.push(follow as u8);
                        out.extend_from_slice(&lines.to_be_bytes());
                    }
                    Some(Request::Pending) => out.push(R_PENDING),
                    Some(Request::Decide { id, allow, always }) => {
                        out.push(R_DECIDE);
                        out.extend_from_slice(&id.to_be_bytes());
                        out.push(allow as u8);
                        out.push(always as u8);
                    }
                    None => {}
                }
                T_HELLO
            }
            Frame::Input(b) => {
                out.extend_from_slice(b);
                T_INPUT
            }
            Frame::Resize(s) => {
                put_size(out, *s);
                T_RESIZE
            }
            Frame::Eof => T_EOF,
            Frame::DetachMe => T_DETACH_ME,
            Frame::Reply(st, msg) => {
                out.push(*st as u8);
                out.extend_from_slice(msg.as_bytes());
                T_REPLY
            }
            Frame::Output(b) => {
                out.extend_from_slice(b);
                T_OUTPUT
            }
            Frame::Exited(st) => {
                let (kind, v) = match st {
                    ExitStatus::Code(c) => (0u8, *c),
                    ExitStatus::Signal(s) => (1u8, *s),
                };
                out.push(kind);
                out.extend_from_slice(&v.to_be_bytes());
                T_EXITED
            }
            Frame::Detached(msg) => {
                out.extend_from_slice(msg.as_bytes());
                T_DETACHED
            }
            Frame::Notice(msg) => {
                out.extend_from_slice(msg.as_bytes());
                T_NOTICE
            }
            Frame::Queried => T_QUERIED,
        };
        let len = (out.len() - start - HEADER_LEN) as u32;
        out[start] = ty;
        out[start + 1..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    }

    /// This frame as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Decode one frame from a type byte and its payload.
    fn decode(ty: u8, p: &[u8]) -> Result<Frame, DecodeError> {
        let bad = DecodeError::Malformed(ty);
        Ok(match ty {
            T_HELLO => {
                if p.len() < 6 || &p[..4] != MAGIC {
                    return Err(bad);
                }
                let version = u16::from_be_bytes([p[4], p[5]]);
                if version != PROTOCOL_VERSION {
                    return Ok(Frame::Hello(Hello {
                        version,
                        request: None,
                    }));
                }
                let rest = &p[6..];
                let request = match rest.split_first() {
                    Some((&R_ATTACH, s)) => Request::Attach(get_size(s).ok_or(bad)?),
                    Some((&R_ATTACH_TERMINAL, s)) if s.len() > 9 => {
                        let (size, rest) = s.split_at(8);
                        let settings = match rest.split_first() {
                            Some((&f, seq)) if f <= 1 => TerminalSettings::new(seq, f == 1),
                            _ => None,
                        };
                        Request::AttachTerminal(get_size(size).ok_or(bad)?, settings.ok_or(bad)?)
                    }
                    Some((&R_DETACH, [])) => Request::Detach,
                    Some((&R_STOP, [f, a, b, c, d])) if *f <= 1 => Request::Stop {
                        force: *f == 1,
                        timeout_ms: u32::from_be_bytes([*a, *b, *c, *d]),
                    },
                    Some((&R_LOGS, [f, a, b, c, d])) if *f <= 1 => Request::Logs {
                        follow: *f == 1,
                        lines: u32::from_be_bytes([*a, *b, *c, *d]),
                    },
                    Some((&R_PENDING, [])) => Request::Pending,
                    Some((&R_DECIDE, [a, b, c, d, allow, always]))
                        if *allow <= 1 && *always <= 1 =>
                    {
                        Request::Decide {
                            id: u32::from_be_bytes([*a, *b, *c, *d]),
                            allow: *allow == 1,
                            always: *always == 1,
                        }
                    }
                    _ => return Err(bad),
                };
                Frame::Hello(Hello {
                    version,
                    request: Some(request),
                })
            }
            T_INPUT => Frame::Input(p.to_vec()),
            T_RESIZE => Frame::Resize(get_size(p).ok_or(bad)?),
            T_EOF if p.is_empty() => Frame::Eof,
            T_DETACH_ME if p.is_empty() => Frame::DetachMe,
            T_REPLY => {
                let (st, msg) = p.split_first().ok_or(bad)?;
                let st = match st {
                    0 => ReplyStatus::Ok,
                    1 => ReplyStatus::Busy,
                    2 => ReplyStatus::Denied,
                    3 => ReplyStatus::VersionMismatch,
                    4 => ReplyStatus::Refused,
                    _ => return Err(bad),
                };
                Frame::Reply(st, String::from_utf8_lossy(msg).into_owned())
            }
            T_OUTPUT => Frame::Output(p.to_vec()),
            T_EXITED => match p {
                [kind, a, b, c, d] => {
                    let v = i32::from_be_bytes([*a, *b, *c, *d]);
                    match kind {
                        0 => Frame::Exited(ExitStatus::Code(v)),
                        1 => Frame::Exited(ExitStatus::Signal(v)),
                        _ => return Err(bad),
                    }
                }
                _ => return Err(bad),
            },
            T_DETACHED => Frame::Detached(String::from_utf8_lossy(p).into_owned()),
            T_NOTICE => Frame::Notice(String::from_utf8_lossy(p).into_owned()),
            T_QUERIED if p.is_empty() => Frame::Queried,
            T_EOF | T_DETACH_ME | T_QUERIED => return Err(bad),
            other => return Err(DecodeError::UnknownType(other)),
        })
    }
}

/// Append `bytes` to `out` as `Output` frames, chunked below the payload
/// limit and encoded in place (this is the hot path for program output).
pub fn push_output(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + HEADER_LEN * (bytes.len() / MAX_FRAME_PAYLOAD + 1));
    for chunk in bytes.chunks(MAX_FRAME_PAYLOAD) {
        out.push(T_OUTPUT);
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Read at most `max` (at most [`MAX_FRAME_PAYLOAD`]) bytes from the
/// non-blocking `fd` into a new `Output` frame at the end of `out`; the
/// byte count, the payload being the last that many bytes of `out` (no
/// frame is added when nothing was read). The program's output goes from
/// the pty into the client's queue without a copy.
pub fn read_output(
    out: &mut Vec<u8>,
    fd: std::os::fd::RawFd,
    max: usize,
) -> std::io::Result<usize> {
    let start = out.len();
    out.push(T_OUTPUT);
    out.extend_from_slice(&[0; HEADER_LEN - 1]);
    let read = crate::sys::read_append(fd, out, max.min(MAX_FRAME_PAYLOAD));
    match read {
        Ok(n) if n > 0 => {
            out[start + 1..start + HEADER_LEN].copy_from_slice(&(n as u32).to_be_bytes());
        }
        _ => out.truncate(start),
    }
    read
}

/// Append `bytes` to `out` as `Input` frames, chunked below the payload limit.
pub fn push_input(out: &mut Vec<u8>, bytes: &[u8]) {
    // Encoded in place (as `Frame::Input` would be), without a Vec per keystroke.
    for chunk in bytes.chunks(MAX_FRAME_PAYLOAD) {
        out.push(T_INPUT);
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Reassembles frames from a byte stream that arrives in arbitrary pieces.
/// Memory is bounded: besides the room for one read, at most one header
/// plus one maximal payload is held (a frame is never longer).
#[derive(Default)]
pub struct FrameReader {
    /// Bytes received; `buf[start..]` is not yet consumed as frames.
    buf: Vec<u8>,
    /// Start of the unconsumed bytes.
    start: usize,
}

impl FrameReader {
    /// A reader with nothing buffered.
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Drop the consumed bytes before appending more: they are all of the
    /// buffer, or followed by less than one frame once complete frames
    /// are taken, so this moves little.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Add received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// One read of at most `max` bytes from the non-blocking `fd` straight
    /// into the buffer; the byte count (0: end of stream).
    pub fn read_from(&mut self, fd: std::os::fd::RawFd, max: usize) -> std::io::Result<usize> {
        self.compact();
        crate::sys::read_append(fd, &mut self.buf, max)
    }

    /// Whether a partial frame is buffered.
    pub fn has_partial(&self) -> bool {
        self.start < self.buf.len()
    }

    /// Type and payload range of the next complete frame, without consuming it.
    fn peek(&self) -> Result<Option<(u8, std::ops::Range<usize>)>, DecodeError> {
        let Some(&[ty, a, b, c, d]) = self.buf.get(self.start..self.start + HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([a, b, c, d]);
        if len as usize > MAX_FRAME_PAYLOAD {
            return Err(DecodeError::TooLong(len));
        }
        let payload = self.start + HEADER_LEN..self.start + HEADER_LEN + len as usize;
        if payload.end > self.buf.len() {
            return Ok(None);
        }
        Ok(Some((ty, payload)))
    }

    /// The next complete frame, None if more bytes are needed, or an error
    /// (after which the connection must be closed).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        let Some((ty, payload)) = self.peek()? else {
            return Ok(None);
        };
        self.start = payload.end;
        Frame::decode(ty, &self.buf[payload]).map(Some)
    }

    /// Append the payloads of the `Output` frames at the front to `out`
    /// (the attach client's hot path: no frame is built per payload), then
    /// return the next frame of another type like [`FrameReader::next_frame`].
    pub fn take_output(&mut self, out: &mut Vec<u8>) -> Result<Option<Frame>, DecodeError> {
        self.take_run(T_OUTPUT, out)
    }

    /// [`FrameReader::take_output`] for `Input` frames: the supervisor's
    /// keystroke path, with no Vec per keystroke.
    pub fn take_input(&mut self, out: &mut Vec<u8>) -> Result<Option<Frame>, DecodeError> {
        self.take_run(T_INPUT, out)
    }

    /// Append the payloads of the frames of type `ty` at the front to
    /// `out`, then return the next frame like [`FrameReader::next_frame`].
    fn take_run(&mut self, ty: u8, out: &mut Vec<u8>) -> Result<Option<Frame>, DecodeError> {
        while let Some((t, payload)) = self.peek()? {
            if t != ty {
                break;
            }
            self.start = payload.end;
            out.extend_from_slice(&self.buf[payload]);
        }
        self.next_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(f: Frame) {
        let bytes = f.to_bytes();
        let mut r = FrameReader::new();
        // Feed one byte at a time: frames split anywhere must reassemble.
        for (i, b) in bytes.iter().enumerate() {
            r.push(&[*b]);
            let got = r.next_frame().unwrap();
            if i + 1 < bytes.len() {
                assert_eq!(got, None);
            } else {
                assert_eq!(got, Some(f.clone()));
            }
        }
    }

    #[test]
    fn every_frame_survives_a_byte_by_byte_round_trip() {
        let size = WinSize {
            rows: 40,
            cols: 120,
            xpixel: 960,
            ypixel: 800,
        };
        for req in [
            Request::Attach(size),
            Request::AttachTerminal(size, TerminalSettings::new(&[0x1d, b'd'], true).unwrap()),
            Request::AttachTerminal(
                size,
                TerminalSettings::new(&[1; MAX_DETACH_BYTES], false).unwrap(),
            ),
            Request::Detach,
            Request::Stop {
                force: true,
                timeout_ms: 1500,
            },
            Request::Logs {
                follow: true,
                lines: 20,
            },
            Request::Pending,
            Request::Decide {
                id: 7,
                allow: true,
                always: false,
            },
            Request::Decide {
                id: 0,
                allow: false,
                always: true,
            },
        ] {
            round_trip(Frame::Hello(Hello {
                version: PROTOCOL_VERSION,
                request: Some(req),
            }));
        }
        round_trip(Frame::Input(b"ls\r".to_vec()));
        round_trip(Frame::Resize(size));
        round_trip(Frame::Eof);
        round_trip(Frame::DetachMe);
        round_trip(Frame::Reply(ReplyStatus::Busy, "attached elsewhere".into()));
        round_trip(Frame::Output(vec![0x1b, b'[', b'H']));
        round_trip(Frame::Exited(ExitStatus::Code(7)));
        round_trip(Frame::Exited(ExitStatus::Signal(9)));
        round_trip(Frame::Detached("by request".into()));
        round_trip(Frame::Notice("cannot save the history".into()));
        round_trip(Frame::Queried);
        assert!(TerminalSettings::new(&[1; MAX_DETACH_BYTES + 1], false).is_none());
        assert!(TerminalSettings::new(&[1], false).is_none());
    }

    #[test]
    fn keystrokes_encoded_in_place_are_the_input_frames_the_supervisor_decodes() {
        let mut bytes = Vec::new();
        push_input(&mut bytes, b"k");
        let big = vec![b'x'; MAX_FRAME_PAYLOAD + 3];
        push_input(&mut bytes, &big);
        let mut want = Frame::Input(b"k".to_vec()).to_bytes();
        Frame::Input(big[..MAX_FRAME_PAYLOAD].to_vec()).encode(&mut want);
        Frame::Input(b"xxx".to_vec()).encode(&mut want);
        assert_eq!(bytes, want);
    }

    #[test]
    fn input_frames_are_taken_in_place_and_other_frames_stop_the_run() {
        let mut bytes = Vec::new();
        push_input(&mut bytes, b"ab");
        push_input(&mut bytes, b"c");
        Frame::DetachMe.encode(&mut bytes);
        push_input(&mut bytes, b"d");
        let mut r = FrameReader::new();
        r.push(&bytes);
        let mut keys = Vec::new();
        assert_eq!(r.take_input(&mut keys), Ok(Some(Frame::DetachMe)));
        assert_eq!(keys, b"abc");
        assert_eq!(r.take_input(&mut keys), Ok(None));
        assert_eq!(keys, b"abcd");
    }

    #[test]
    fn output_frames_are_taken_in_place_and_other_frames_stop_the_run() {
        let mut bytes = Vec::new();
        push_output(&mut bytes, b"hello ");
        push_output(&mut bytes, b"world");
        Frame::Exited(ExitStatus::Code(3)).encode(&mut bytes);
        push_output(&mut bytes, b"!");
        let mut r = FrameReader::new();
        let mut out = Vec::new();
        // Split everywhere: partial frames wait for the rest.
        for chunk in bytes.chunks(3) {
            r.push(chunk);
            if let Some(f) = r.take_output(&mut out).unwrap() {
                assert_eq!(f, Frame::Exited(ExitStatus::Code(3)));
                assert_eq!(out, b"hello world");
            }
        }
        assert_eq!(r.take_output(&mut out), Ok(None));
        assert_eq!(out, b"hello world!");
        assert!(!r.has_partial());
    }

    #[test]
    fn output_read_from_an_fd_becomes_one_frame() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut q = Frame::Reply(ReplyStatus::Ok, "x".into()).to_bytes();
        a.write_all(b"program output").unwrap();
        assert_eq!(read_output(&mut q, b.as_raw_fd(), 64).unwrap(), 14);
        // Nothing to read: an error, and no empty frame left behind.
        let before = q.len();
        assert!(read_output(&mut q, b.as_raw_fd(), 64).is_err());
        assert_eq!(q.len(), before);
        let mut r = FrameReader::new();
        r.push(&q);
        assert!(matches!(r.next_frame(), Ok(Some(Frame::Reply(..)))));
        assert_eq!(
            r.next_frame(),
            Ok(Some(Frame::Output(b"program output".to_vec())))
        );
    }

    #[test]
    fn reads_go_straight_into_the_buffer() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut r = FrameReader::new();
        for i in 0..50u8 {
            a.write_all(&Frame::Output(vec![i; 1000 + i as usize]).to_bytes())
                .unwrap();
            // Small reads, so frames straddle reads and the buffer compacts.
            while r.read_from(b.as_raw_fd(), 777).is_ok() {}
            while let Some(f) = r.next_frame().unwrap() {
                assert_eq!(f, Frame::Output(vec![i; 1000 + i as usize]));
            }
        }
        assert!(!r.has_partial());
        assert!(r.buf.capacity() <= 4 * (HEADER_LEN + 1100 + 777));
    }

    #[test]
    fn oversized_and_unknown_frames_are_errors() {
        let mut r = FrameReader::new();
        r.push(&[T_INPUT, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(r.next_frame(), Err(DecodeError::TooLong(_))));
        let mut r = FrameReader::new();
        r.push(&[99, 0, 0, 0, 0]);
        assert_eq!(r.next_frame(), Err(DecodeError::UnknownType(99)));
        let mut r = FrameReader::new();
        r.push(&[T_HELLO, 0, 0, 0, 3, b'x', b'y', b'z']);
        assert_eq!(r.next_frame(), Err(DecodeError::Malformed(T_HELLO)));
    }

    #[test]
    fn a_hello_of_another_version_is_recognised_not_rejected() {
        let mut bytes = vec![T_HELLO, 0, 0, 0, 7];
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&99u16.to_be_bytes());
        bytes.push(42);
        let mut r = FrameReader::new();
        r.push(&bytes);
        assert_eq!(
            r.next_frame(),
            Ok(Some(Frame::Hello(Hello {
                version: 99,
                request: None
            })))
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..5_000 {
            let mut r = FrameReader::new();
            let n = (x % 64) as usize;
            let mut bytes = Vec::with_capacity(n);
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Keep lengths small so frames complete and decode gets exercised.
                bytes.push(if bytes.len() % 5 == 1 { 0 } else { x as u8 });
            }
            r.push(&bytes);
            while let Ok(Some(_)) = r.next_frame() {}
        }
    }
}
