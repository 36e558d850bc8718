//! The object store: file contents named by SHA-256 under
//! `rollback/objects/ab/<62 hex>`, read-only (0400) from creation, shared
//! by all sessions. Copies use a reflink (FICLONE) where the filesystem
//! has them, else `copy_file_range`; an object is hashed from the copy
//! itself, so its name always matches its content.

use super::hash::{Digest, Sha256};
use crate::error::{Error, Result};
use crate::sys;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Bytes per read when hashing: large enough that syscalls do not show.
const READ_CHUNK: usize = 256 * 1024;

/// An open object store.
pub struct Store {
    /// `rollback/objects`.
    dir: PathBuf,
    /// The same, open.
    fd: OwnedFd,
}

/// How a copy was made (for the benchmark and tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct CopyStats {
    /// Copies that shared extents.
    pub reflinked: u64,
    /// Copies made in the kernel or by read/write.
    pub copied: u64,
    /// The filesystem refused a reflink once: do not ask again.
    pub no_reflink: bool,
}

impl Store {
    /// Open (creating) the store under `base` (`rollback/`).
    pub fn open(base: &Path) -> Result<Store> {
        let dir = base.join("objects");
        super::ensure_dir(&dir)?;
        let fd = sys::openat(
            None,
            dir.as_os_str(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )
        .map_err(|e| Error::io(format!("cannot open {}", dir.display()), e))?;
        Ok(Store { dir, fd })
    }

    /// Path of an object.
    pub fn path(&self, hash: &Digest) -> PathBuf {
        self.dir.join(hash.object_path())
    }

    /// Whether an object exists.
    pub fn has(&self, hash: &Digest) -> bool {
        sys::lstatat(self.fd.as_raw_fd(), OsStr::new(&hash.object_path()))
            .is_ok_and(|s| s.kind() == libc::S_IFREG)
    }

    /// Store the content of the open regular file `src` (`size` bytes as
    /// stat'ed): returns its hash and whether the object is new.
    pub fn put(&self, src: &File, size: u64, stats: &mut CopyStats) -> io::Result<(Digest, bool)> {
        let tmp = temp_name();
        let out = File::from(sys::openat(
            Some(self.fd.as_raw_fd()),
            &tmp,
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            0o400,
        )?);
        let res = (|| {
            copy(src, &out, size, stats)?;
            let digest = hash_file(&out)?;
            if self.has(&digest) {
                sys::unlinkat(self.fd.as_raw_fd(), &tmp, false)?;
                return Ok((digest, false));
            }
            let rel = OsString::from(digest.object_path());
            let d = self.fd.as_raw_fd();
            match sys::renameat(d, &tmp, d, &rel) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // First object of its prefix: make the directory, then retry.
                    let prefix = &rel.as_encoded_bytes()[..2];
                    match sys::mkdirat(d, OsStr::from_bytes(prefix), 0o700) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(e),
                    }
                    sys::renameat(d, &tmp, d, &rel)?;
                }
                other => other?,
            }
            Ok((digest, true))
        })();
        if res.is_err() {
            let _ = sys::unlinkat(self.fd.as_raw_fd(), &tmp, false);
        }
        res
    }

    /// Open an object for reading.
    pub fn open_object(&self, hash: &Digest) -> io::Result<File> {
        sys::openat(
            Some(self.fd.as_raw_fd()),
            OsStr::new(&hash.object_path()),
            libc::O_RDONLY | libc::O_NOFOLLOW,
            0,
        )
        .map(File::from)
    }

    /// Copy object `hash` into the empty file `dst`, checking the bytes
    /// against the name as they go: a damaged object is never restored
    /// (the caller discards `dst` on an error). Each byte is read once: a
    /// reflink shares the extents and the object is hashed; otherwise the
    /// bytes read for the hash are the bytes written.
    pub fn copy_out(
        &self,
        hash: &Digest,
        size: u64,
        dst: &File,
        stats: &mut CopyStats,
    ) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let src = self.open_object(hash)?;
        let got = if size > 0 && !stats.no_reflink && reflink(&src, dst, stats) {
            hash_file(&src)?
        } else {
            BUF.with(|b| -> io::Result<Digest> {
                let buf = &mut b.borrow_mut()[..];
                let mut h = Sha256::default();
                let mut off = 0u64;
                loop {
                    let n = src.read_at(buf, off)?;
                    if n == 0 {
                        return Ok(Digest(h.finish()));
                    }
                    h.update(&buf[..n]);
                    dst.write_all_at(&buf[..n], off)?;
                    off += n as u64;
                }
            })?
        };
        if got != *hash {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("object {hash} is damaged (its content hashes to {got}); run 'nono rollback verify'"),
            ));
        }
        Ok(())
    }

    /// Check one object: exists and hashes to its name.
    pub fn verify(&self, hash: &Digest) -> std::result::Result<(), String> {
        let mut f = self
            .open_object(hash)
            .map_err(|e| format!("missing ({e})"))?;
        let got = hash_reader(&mut f).map_err(|e| format!("unreadable ({e})"))?;
        if got == *hash {
            Ok(())
        } else {
            Err(format!("damaged: its content hashes to {got}"))
        }
    }

    /// Every object name and its size.
    pub fn list(&self) -> Vec<(Digest, u64)> {
        let mut out = Vec::new();
        let Ok(subs) = sys::read_dir_names(self.fd.as_raw_fd()) else {
            return out;
        };
        for sub in subs {
            let s = sub.to_string_lossy().to_string();
            if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let Ok(d) = sys::openat(
                Some(self.fd.as_raw_fd()),
                &sub,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            ) else {
                continue;
            };
            for name in sys::read_dir_names(d.as_raw_fd()).unwrap_or_default() {
                let n = name.to_string_lossy();
                // Lowercase only: that is how objects are named.
                let lower = n.bytes().all(|b| !b.is_ascii_uppercase());
                if let Some(h) = Digest::from_hex(&format!("{s}{n}")).filter(|_| lower) {
                    let size = sys::lstatat(d.as_raw_fd(), &name).map_or(0, |s| s.size);
                    out.push((h, size));
                }
            }
        }
        out
    }

    /// Remove an object (prune).
    pub fn remove(&self, hash: &Digest) -> io::Result<()> {
        sys::unlinkat(self.fd.as_raw_fd(), OsStr::new(&hash.object_path()), false)
    }
}

/// A random temporary name in the store's top directory.
fn temp_name() -> OsString {
    let mut rnd = [0u8; 8];
    let _ = sys::getrandom(&mut rnd);
    OsString::from(format!("tmp.{}", crate::registry::hex(&rnd)))
}

/// Copy `size` bytes from the start of `src` into the empty file `dst`:
/// reflink, else copy_file_range, else read and write.
pub fn copy(src: &File, dst: &File, size: u64, stats: &mut CopyStats) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    if size > 0 && !stats.no_reflink && reflink(src, dst, stats) {
        return Ok(());
    }
    stats.copied += 1;
    match sys::copy_file_range(src.as_raw_fd(), dst.as_raw_fd(), size) {
        Ok(_) => return Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EXDEV | libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP)
            ) => {}
        Err(e) => return Err(e),
    }
    let mut buf = vec![0u8; READ_CHUNK];
    let mut off = 0u64;
    loop {
        let n = src.read_at(&mut buf, off)?;
        if n == 0 {
            return Ok(());
        }
        dst.write_all_at(&buf[..n], off)?;
        off += n as u64;
    }
}

thread_local! {
    /// One read buffer for every hash (zeroing 256 KiB per small file showed).
    static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; READ_CHUNK]);
}

/// Share `src`'s extents with the empty file `dst` (FICLONE); false when
/// the filesystem cannot, remembering a refusal that will not change.
fn reflink(src: &File, dst: &File, stats: &mut CopyStats) -> bool {
    match sys::ficlone(dst.as_raw_fd(), src.as_raw_fd()) {
        Ok(()) => {
            stats.reflinked += 1;
            true
        }
        Err(e) => {
            stats.no_reflink = matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EXDEV | libc::EINVAL | libc::ENOTTY)
            );
            false
        }
    }
}

/// SHA-256 of a whole file from offset 0 (its own offset untouched).
pub fn hash_file(f: &File) -> io::Result<Digest> {
    BUF.with(|b| hash_file_with(f, &mut b.borrow_mut()))
}

/// `hash_file` with the caller's buffer.
fn hash_file_with(f: &File, buf: &mut [u8]) -> io::Result<Digest> {
    use std::os::unix::fs::FileExt;
    let mut h = Sha256::default();
    let mut off = 0u64;
    loop {
        let n = f.read_at(buf, off)?;
        if n == 0 {
            return Ok(Digest(h.finish()));
        }
        h.update(&buf[..n]);
        off += n as u64;
    }
}

/// SHA-256 of everything `r` yields.
pub fn hash_reader(r: &mut impl Read) -> io::Result<Digest> {
    let mut h = Sha256::default();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(Digest(h.finish()));
        }
        h.update(&buf[..n]);
    }
}
