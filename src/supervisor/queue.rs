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
/// with the lifetime of the connection (a handed-over terminal's too).
pub(super) const COMPACT_AFTER: usize = 256 * 1024;

/// Write `buf[*sent..]` to the non-blocking `fd`, as much as it takes,
/// advancing `sent`. Ok(()) also when it would block; Err means the peer
/// is gone.
pub(super) fn write_pending(fd: RawFd, buf: &[u8], sent: &mut usize) -> io::Result<()> {
    while *sent < buf.len() {
        match crate::sys::write(fd, &buf[*sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl OutQueue {
    /// Queue one frame.
    pub fn push(&mut self, frame: &Frame) {
        frame.encode(&mut self.buf);
    }

    /// Queue bytes for the client's terminal as `Output` frames.
    pub fn push_output(&mut self, bytes: &[u8]) {
        crate::protocol::push_output(&mut self.buf, bytes);
    }

    /// Read program output from `fd` straight into a new `Output` frame
    /// (see [`crate::protocol::read_output`]); the byte count.
    pub fn read_output(&mut self, fd: RawFd, max: usize) -> io::Result<usize> {
        crate::protocol::read_output(&mut self.buf, fd, max)
    }

    /// The last `n` bytes queued: the payload [`OutQueue::read_output`] just added.
    pub fn tail(&self, n: usize) -> &[u8] {
        &self.buf[self.buf.len().saturating_sub(n)..]
    }

    /// Bytes still to write.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Offset just past the frame that starts at `pos` (clamped to the buffer).
    fn frame_end(&self, pos: usize) -> usize {
        let len = match self.buf.get(pos + 1..pos + HEADER_LEN) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]) as usize,
            _ => return self.buf.len(),
        };
        (pos + HEADER_LEN + len).min(self.buf.len())
    }

    /// Offset just past the frame that contains byte `at` (or `at` itself
    /// when it lies on a boundary).
    fn boundary_after(&self, at: usize) -> usize {
        let mut pos = 0;
        while pos < at && pos < self.buf.len() {
            pos = self.frame_end(pos);
        }
        pos
    }

    /// Start of the frame that contains byte `at`.
    fn boundary_before(&self, at: usize) -> usize {
        let mut pos = 0;
        while pos < self.buf.len() && self.frame_end(pos) <= at {
            pos = self.frame_end(pos);
        }
        pos
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
        write_pending(fd, &self.buf, &mut self.sent)?;
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        } else if self.sent >= COMPACT_AFTER {
            let cut = self.boundary_before(self.sent);
            self.buf.drain(..cut);
            self.sent -= cut;
        }
        Ok(())
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

    #[test]
    fn frames_arrive_whole_and_in_order_across_partial_writes_and_compaction() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let mut q = OutQueue::default();
        // Frames of odd sizes so partial writes end mid-frame.
        for i in 0..300u32 {
            q.push(&Frame::Output(vec![i as u8; 3001 + i as usize]));
        }
        let mut r = FrameReader::new();
        let mut got = 0u32;
        let mut buf = vec![0u8; 8192];
        while got < 300 {
            q.flush(a.as_raw_fd()).unwrap();
            while let Ok(n) = b.read(&mut buf) {
                if n == 0 {
                    break;
                }
                r.push(&buf[..n]);
            }
            while let Some(f) = r.next_frame().unwrap() {
                assert_eq!(f, Frame::Output(vec![got as u8; 3001 + got as usize]));
                got += 1;
            }
        }
        assert_eq!(q.pending(), 0);
    }
}
