//! A connection's outgoing frames: bytes waiting for a non-blocking socket,
//! droppable at frame boundaries so a slow client can be resynchronised.

use crate::protocol::{Frame, HEADER_LEN};
use std::io;
use std::os::fd::RawFd;

/// Encoded frames not yet written, plus how much of them was.
#[derive(Default)]
pub struct OutQueue {
    /// Concatenated frames; always starts at a frame boundary.
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    sent: usize,
}

/// Compact the buffer once this much has been written, so it does not grow
/// with the lifetime of the connection.
const COMPACT_AFTER: usize = 256 * 1024;

impl OutQueue {
    /// Queue one frame.
    pub fn push(&mut self, frame: &Frame) {
        frame.encode(&mut self.buf);
    }

    /// Queue already-encoded frames.
    pub fn push_encoded(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes still to write.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Offset just past the frame that contains byte `at` (or `at` itself
    /// when it lies on a boundary).
    fn boundary_after(&self, at: usize) -> usize {
        let mut pos = 0;
        while pos < at && pos + HEADER_LEN <= self.buf.len() {
            let len = u32::from_be_bytes([
                self.buf[pos + 1],
                self.buf[pos + 2],
                self.buf[pos + 3],
                self.buf[pos + 4],
            ]) as usize;
            pos += HEADER_LEN + len;
        }
        pos.min(self.buf.len())
    }

    /// Drop every frame not yet begun; a partly written frame is kept so the
    /// stream stays well-formed.
    pub fn drop_unsent(&mut self) {
        let keep = self.boundary_after(self.sent);
        self.buf.truncate(keep);
    }

    /// Write as much as the non-blocking `fd` takes. Ok(()) also when it
    /// would block; Err means the peer is gone.
    pub fn flush(&mut self, fd: RawFd) -> io::Result<()> {
        while self.sent < self.buf.len() {
            match crate::sys::write(fd, &self.buf[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        } else if self.sent >= COMPACT_AFTER {
            let cut = self.boundary_after(self.sent);
            let cut = if cut > self.sent {
                // Inside a frame: cut at that frame's start instead.
                self.frame_start_before(self.sent)
            } else {
                cut
            };
            self.buf.drain(..cut);
            self.sent -= cut;
        }
        Ok(())
    }

    /// Start of the frame containing byte `at`.
    fn frame_start_before(&self, at: usize) -> usize {
        let mut pos = 0;
        loop {
            if pos + HEADER_LEN > self.buf.len() {
                return pos;
            }
            let len = u32::from_be_bytes([
                self.buf[pos + 1],
                self.buf[pos + 2],
                self.buf[pos + 3],
                self.buf[pos + 4],
            ]) as usize;
            let next = pos + HEADER_LEN + len;
            if next > at {
                return pos;
            }
            pos = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FrameReader;

    #[test]
    fn dropping_unsent_frames_keeps_the_stream_well_formed() {
        let mut q = OutQueue::default();
        q.push(&Frame::Output(b"hello".to_vec()));
        q.push(&Frame::Output(b"world".to_vec()));
        // Pretend 3 bytes of the first frame went out.
        q.sent = 3;
        q.drop_unsent();
        assert_eq!(q.pending(), HEADER_LEN + 5 - 3);
        q.push(&Frame::Detached("bye".into()));
        let mut r = FrameReader::new();
        r.push(&q.buf);
        assert_eq!(r.next_frame(), Ok(Some(Frame::Output(b"hello".to_vec()))));
        assert_eq!(r.next_frame(), Ok(Some(Frame::Detached("bye".into()))));
    }
}
