//! The incr file being appended to: where the last good byte is, what a short write leaves behind, and the
//! poisoning rule for fsync (STYLE.md "Errors", FORMATS.md §1.8).
//!
//! - [`IncrWriter::write`] writes a whole buffer or reports how much of it stayed in the file. As Redis does
//!   after a short write (`flushAppendOnlyFile`), it truncates the file back to the last good size so no torn
//!   command is left behind; if even that truncation fails, the bytes that reached the file stay, count as
//!   written ([`WriteError::Failed::kept`]), and the caller must write the rest of the buffer next, so the file
//!   is again a prefix of the command stream once the rest is written.
//! - A write error is not fatal here: the caller may retry with the same bytes (Redis refuses writes with
//!   MISCONF until a retry succeeds).
//! - A failed fsync POISONS the writer. Linux reports a writeback error to one fsync only and may drop the
//!   dirty pages, so a later fsync that succeeds proves nothing about the earlier data. Every later write and
//!   fsync of this writer returns [`WriteError::Poisoned`] / the [`Poison`], without touching the file again.
//!   Only a fresh file (the next rewrite's new incr) gives a usable writer.
//! - [`Syncer`] fsyncs the same file from another thread (Redis's background fsync for `everysec`); its
//!   failure poisons the writer it came from.
//!
//! The file is reached through [`AofFile`], so tests can inject short writes and failing fsyncs.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The operations the writer needs from its file. `std::fs::File` opened with `append(true)` is the real
/// one; every method takes `&self` so a [`Syncer`] can fsync while the writer writes.
pub trait AofFile: Send + Sync {
    /// Appends bytes at the end of the file; may write fewer than given (a short write).
    fn append(&self, buf: &[u8]) -> io::Result<usize>;
    /// `fdatasync(2)`.
    fn sync_data(&self) -> io::Result<()>;
    /// `ftruncate(2)`.
    fn truncate(&self, len: u64) -> io::Result<()>;
}

impl AofFile for File {
    fn append(&self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// What poisoned a writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoisonCause {
    /// fsync failed.
    Fsync,
    /// The owner decided a write failure is fatal (`appendfsync always`).
    Write,
}

/// Why a writer refuses to work: the failure that poisoned it. Cloneable, so every refused caller can be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poison {
    pub cause: PoisonCause,
    pub kind: io::ErrorKind,
    /// The errno, when the failure came from the OS (for `strerror`).
    pub os_error: Option<i32>,
    pub message: String,
}

impl Poison {
    fn new(cause: PoisonCause, e: &io::Error) -> Self {
        Poison { cause, kind: e.kind(), os_error: e.raw_os_error(), message: e.to_string() }
    }

    /// The original failure as an `io::Error` (same errno when there was one).
    pub fn to_io_error(&self) -> io::Error {
        match self.os_error {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(self.kind, self.message.clone()),
        }
    }
}

impl std::fmt::Display for Poison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.cause {
            PoisonCause::Fsync => "fsync",
            PoisonCause::Write => "write",
        };
        write!(f, "{what} failed: {}", self.message)
    }
}

/// A failed [`IncrWriter::write`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The write failed (ENOSPC, EIO ...). `kept` bytes from the start of the buffer remain in the file
    /// (non-zero only when truncating back to the last good size failed too, see `truncate_error`): the
    /// caller drops them from its buffer and writes the rest later. With `kept == 0` the file is unchanged.
    #[error("Error writing to the AOF file: {error}")]
    Failed { error: io::Error, kept: usize, truncate_error: Option<io::Error> },
    /// An earlier failure poisoned the writer; the file was not touched.
    #[error("the AOF writer is poisoned: {0}")]
    Poisoned(Poison),
}

/// State shared by a writer and its syncers.
#[derive(Debug, Default)]
struct SyncState {
    poisoned: AtomicBool,
    poison: Mutex<Option<Poison>>,
    /// Bytes known to be on stable storage.
    synced: AtomicU64,
}

impl SyncState {
    fn poison(&self) -> Option<Poison> {
        if !self.poisoned.load(Ordering::Acquire) {
            return None;
        }
        self.poison.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the first failure; later ones keep the first cause.
    fn set(&self, p: Poison) {
        let mut slot = self.poison.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(p);
        }
        self.poisoned.store(true, Ordering::Release);
    }
}

/// The writer of one open incr file.
pub struct IncrWriter {
    file: Arc<dyn AofFile>,
    /// The last good size: every byte before it belongs to complete writes (or to kept partial ones).
    size: u64,
    sync: Arc<SyncState>,
    /// A short write could not be truncated away: the file ends inside a command until the rest is written.
    partial: bool,
}

impl IncrWriter {
    /// A writer appending to `file`, which currently holds `size` bytes (all of them counted as synced:
    /// they were there before this writer existed).
    pub fn new(file: Arc<dyn AofFile>, size: u64) -> Self {
        let sync = Arc::new(SyncState { synced: AtomicU64::new(size), ..SyncState::default() });
        IncrWriter { file, size, sync, partial: false }
    }

    /// A writer over a real file opened for append; its size is read from the file system.
    pub fn from_file(file: File) -> io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(IncrWriter::new(Arc::new(file), size))
    }

    /// The file's size as far as this writer knows (the last good size).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes known to be fsynced.
    pub fn synced(&self) -> u64 {
        self.sync.synced.load(Ordering::Acquire)
    }

    /// The failure that poisoned this writer, if any.
    pub fn poisoned(&self) -> Option<Poison> {
        self.sync.poison()
    }

    /// True while the file ends inside a command (a short write that could not be truncated away).
    pub fn has_partial_write(&self) -> bool {
        self.partial
    }

    /// Poisons the writer with a failure the owner considers fatal (a write error under `appendfsync
    /// always`). No-op when it is already poisoned.
    pub fn poison_with(&self, cause: PoisonCause, error: &io::Error) {
        self.sync.set(Poison::new(cause, error));
    }

    /// Writes all of `buf`, or reports what stayed in the file. See the module docs.
    pub fn write(&mut self, buf: &[u8]) -> Result<(), WriteError> {
        if let Some(p) = self.sync.poison() {
            return Err(WriteError::Poisoned(p));
        }
        let mut done = 0;
        let mut failure = None;
        while done < buf.len() {
            match self.file.append(&buf[done..]) {
                Ok(0) => {
                    failure = Some(io::Error::new(io::ErrorKind::WriteZero, "write returned 0"));
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let Some(error) = failure else {
            self.size += buf.len() as u64;
            self.partial = false;
            return Ok(());
        };
        if done == 0 {
            return Err(WriteError::Failed { error, kept: 0, truncate_error: None });
        }
        match self.file.truncate(self.size) {
            Ok(()) => Err(WriteError::Failed { error, kept: 0, truncate_error: None }),
            Err(te) => {
                // The partial command stays; the next write must continue it.
                self.size += done as u64;
                self.partial = true;
                Err(WriteError::Failed { error, kept: done, truncate_error: Some(te) })
            }
        }
    }

    /// fsyncs what was written so far. Returns the synced size. A failure poisons the writer.
    pub fn fsync(&self) -> Result<u64, Poison> {
        self.syncer().fsync(self.size)
    }

    /// A handle that fsyncs this file from another thread.
    pub fn syncer(&self) -> Syncer {
        Syncer { file: self.file.clone(), sync: self.sync.clone() }
    }
}

/// fsyncs a writer's file from another thread; a failure poisons the writer.
#[derive(Clone)]
pub struct Syncer {
    file: Arc<dyn AofFile>,
    sync: Arc<SyncState>,
}

impl Syncer {
    /// fsyncs the file. `upto` is the writer's size when the caller decided to sync (everything before it was
    /// written before this call), and is what the synced size becomes on success.
    pub fn fsync(&self, upto: u64) -> Result<u64, Poison> {
        if let Some(p) = self.sync.poison() {
            return Err(p);
        }
        match self.file.sync_data() {
            Ok(()) => {
                self.sync.synced.fetch_max(upto, Ordering::AcqRel);
                Ok(upto)
            }
            Err(e) => {
                let p = Poison::new(PoisonCause::Fsync, &e);
                self.sync.set(p.clone());
                Err(self.sync.poison().unwrap_or(p))
            }
        }
    }

    /// The failure that poisoned the writer, if any.
    pub fn poisoned(&self) -> Option<Poison> {
        self.sync.poison()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    /// An in-memory file whose writes, truncations and fsyncs fail on demand.
    #[derive(Default)]
    struct Faulty {
        state: StdMutex<FaultState>,
    }

    #[derive(Default)]
    struct FaultState {
        data: Vec<u8>,
        /// Bytes the "disk" still accepts; `None` = unlimited. A write beyond it is cut short, then ENOSPC.
        space: Option<usize>,
        /// Largest chunk one write call accepts (to exercise short writes that are not errors).
        chunk: Option<usize>,
        fail_truncate: bool,
        fail_fsync: bool,
        interrupt_next: bool,
        fsync_calls: usize,
        synced_len: usize,
    }

    impl Faulty {
        fn with(f: impl FnOnce(&mut FaultState)) -> Arc<Faulty> {
            let file = Arc::new(Faulty::default());
            f(&mut file.state.lock().unwrap());
            file
        }

        fn set(&self, f: impl FnOnce(&mut FaultState)) {
            f(&mut self.state.lock().unwrap());
        }

        fn data(&self) -> Vec<u8> {
            self.state.lock().unwrap().data.clone()
        }
    }

    impl AofFile for Faulty {
        fn append(&self, buf: &[u8]) -> io::Result<usize> {
            let mut st = self.state.lock().unwrap();
            if std::mem::take(&mut st.interrupt_next) {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            let mut n = buf.len();
            if let Some(c) = st.chunk {
                n = n.min(c);
            }
            if let Some(space) = st.space {
                if space == 0 {
                    return Err(io::Error::from_raw_os_error(28)); // ENOSPC
                }
                n = n.min(space);
                st.space = Some(space - n);
            }
            st.data.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn sync_data(&self) -> io::Result<()> {
            let mut st = self.state.lock().unwrap();
            st.fsync_calls += 1;
            if st.fail_fsync {
                return Err(io::Error::from_raw_os_error(5)); // EIO
            }
            st.synced_len = st.data.len();
            Ok(())
        }

        fn truncate(&self, len: u64) -> io::Result<()> {
            let mut st = self.state.lock().unwrap();
            if st.fail_truncate {
                return Err(io::Error::from_raw_os_error(1)); // EPERM
            }
            let len = len as usize;
            let cut = st.data.len().saturating_sub(len);
            st.data.truncate(len);
            if let Some(space) = st.space.as_mut() {
                *space += cut;
            }
            Ok(())
        }
    }

    fn writer(file: &Arc<Faulty>) -> IncrWriter {
        let size = file.data().len() as u64;
        IncrWriter::new(file.clone(), size)
    }

    #[test]
    fn writes_whole_buffers_through_short_writes_and_eintr() {
        let file = Faulty::with(|s| {
            s.data = b"old".to_vec();
            s.chunk = Some(3);
            s.interrupt_next = true;
        });
        let mut w = writer(&file);
        assert_eq!((w.size(), w.synced()), (3, 3));
        w.write(b"*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(file.data(), b"old*1\r\n$4\r\nPING\r\n");
        assert_eq!((w.size(), w.synced()), (17, 3));
        assert_eq!(w.fsync(), Ok(17));
        assert_eq!(w.synced(), 17);
    }

    #[test]
    fn short_write_is_truncated_back_to_the_last_good_size() {
        let file = Faulty::with(|s| s.space = Some(10));
        let mut w = writer(&file);
        w.write(b"12345").unwrap();
        let Err(WriteError::Failed { error, kept: 0, truncate_error: None }) = w.write(b"abcdefgh") else {
            panic!("expected a failed write");
        };
        assert_eq!(error.raw_os_error(), Some(28));
        assert_eq!((file.data(), w.size()), (b"12345".to_vec(), 5), "the torn bytes were removed");
        assert!(!w.has_partial_write());
        // Space frees up: the same bytes go through, nothing is poisoned.
        file.set(|s| s.space = None);
        w.write(b"abcdefgh").unwrap();
        assert_eq!(file.data(), b"12345abcdefgh");
        assert_eq!(w.size(), 13);
    }

    #[test]
    fn a_write_that_writes_nothing_changes_nothing() {
        let file = Faulty::with(|s| s.space = Some(0));
        let mut w = writer(&file);
        let err = w.write(b"abc").unwrap_err();
        assert!(matches!(err, WriteError::Failed { kept: 0, truncate_error: None, .. }), "{err:?}");
        assert_eq!((file.data().len(), w.size()), (0, 0));
        assert!(err.to_string().starts_with("Error writing to the AOF file: No space left on device"), "{err}");
    }

    #[test]
    fn untruncatable_short_write_keeps_the_prefix_and_continues_it() {
        let file = Faulty::with(|s| {
            s.space = Some(4);
            s.fail_truncate = true;
        });
        let mut w = writer(&file);
        let buf = b"*1\r\n$4\r\nPING\r\n";
        let Err(WriteError::Failed { kept, truncate_error: Some(te), .. }) = w.write(buf) else {
            panic!("expected a kept partial write");
        };
        assert_eq!((kept, te.raw_os_error()), (4, Some(1)));
        assert_eq!((w.size(), w.has_partial_write()), (4, true));
        file.set(|s| s.space = None);
        w.write(&buf[kept..]).unwrap();
        assert_eq!(file.data(), buf, "the file is whole again");
        assert_eq!((w.size(), w.has_partial_write()), (buf.len() as u64, false));
    }

    #[test]
    fn failed_fsync_poisons_and_is_never_retried() {
        let file = Faulty::default();
        let file = Arc::new(file);
        let mut w = writer(&file);
        w.write(b"abc").unwrap();
        file.set(|s| s.fail_fsync = true);
        let p = w.fsync().unwrap_err();
        assert_eq!((p.cause, p.os_error), (PoisonCause::Fsync, Some(5)));
        assert_eq!(p.to_io_error().raw_os_error(), Some(5));
        // The disk "recovers": nothing changes, the file is not touched again.
        file.set(|s| s.fail_fsync = false);
        assert_eq!(w.fsync(), Err(p.clone()));
        assert!(matches!(w.write(b"def"), Err(WriteError::Poisoned(ref q)) if *q == p));
        assert_eq!(w.poisoned(), Some(p));
        let st = file.state.lock().unwrap();
        assert_eq!((st.fsync_calls, st.data.as_slice(), st.synced_len), (1, &b"abc"[..], 0));
        assert_eq!(w.synced(), 0);
    }

    #[test]
    fn background_syncer_failure_poisons_the_writer() {
        let file = Arc::new(Faulty::default());
        let mut w = writer(&file);
        w.write(b"0123456789").unwrap();
        let syncer = w.syncer();
        let upto = w.size();
        assert_eq!(std::thread::spawn(move || syncer.fsync(upto)).join().unwrap(), Ok(10));
        assert_eq!(w.synced(), 10);
        w.write(b"x").unwrap();
        file.set(|s| s.fail_fsync = true);
        let syncer = w.syncer();
        let upto = w.size();
        let p = std::thread::spawn(move || syncer.fsync(upto)).join().unwrap().unwrap_err();
        assert!(matches!(w.write(b"y"), Err(WriteError::Poisoned(ref q)) if *q == p));
        assert_eq!(w.synced(), 10, "the failed fsync covered nothing");
    }

    #[test]
    fn the_owner_can_poison_after_a_write_error() {
        let file = Faulty::with(|s| s.space = Some(0));
        let mut w = writer(&file);
        let WriteError::Failed { error, .. } = w.write(b"abc").unwrap_err() else { panic!() };
        w.poison_with(PoisonCause::Write, &error);
        file.set(|s| s.space = None);
        assert!(matches!(w.write(b"abc"), Err(WriteError::Poisoned(Poison { cause: PoisonCause::Write, .. }))));
        assert!(w.fsync().is_err());
        assert_eq!(file.state.lock().unwrap().fsync_calls, 0);
    }

    #[test]
    fn real_file_appends_and_syncs() {
        let path = std::env::temp_dir().join(format!("moon-aof-writer-{}.aof", std::process::id()));
        std::fs::write(&path, b"*1\r\n$4\r\nPING\r\n").unwrap();
        let file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        let mut w = IncrWriter::from_file(file).unwrap();
        assert_eq!(w.size(), 14);
        w.write(b"*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(w.fsync(), Ok(28));
        assert_eq!(std::fs::read(&path).unwrap().len(), 28);
        std::fs::remove_file(&path).unwrap();
    }
}
