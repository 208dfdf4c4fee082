//! Loading an RDB file into every shard at once: the file is mapped (not copied), the engine's
//! [`rdb::load_sharded`] scans it on the calling thread and decodes and inserts each shard's keys on shard
//! threads (one per shard, up to the CPUs the scan leaves), straight into the shard's keyspace. Keys are
//! routed with [`Shards::shard_of`], the rule live traffic uses, so a key loaded here is found by every later
//! command.
//!
//! Each shard thread holds its shard's lock for one batch of keys at a time (see [`ShardTarget`]), so the
//! few commands allowed while loading (INFO, DEBUG DIGEST) wait at most one batch. The hidden
//! `key-load-delay` (microseconds per key, negative: 1 µs every `-n` keys) sleeps with the lock released, and
//! `loading_loaded_bytes` is estimated from the keys inserted against the RESIZEDB hints.

use crate::server::Server;
use crate::shards::{Shard, Shards};
use engine::keyspace::{encode_expire, Db};
use engine::rdb::{self, ErrorKind, LoadFilter, LoadOptions, LoadReport, LoadTarget, RdbError, ShardTarget};
use engine::table::{hash_of, Entry, Prefetch};
use engine::types::Value;
use parking_lot::MutexGuard;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Loads `path` into the server's shards (which must be empty of the file's keys: a key already present is
/// an error, as in Redis). Expiry and thresholds come from `opts`.
pub fn load_file(server: &Server, path: &Path, opts: &LoadOptions) -> Result<LoadReport, RdbError> {
    let io = |source| RdbError::new(ErrorKind::Io { path: path.to_path_buf(), source }, 0);
    let bytes = FileBytes::open(path).map_err(io)?;
    // `bytes` is dropped (unmapped) here, before the server serves: left to a background thread, the
    // mapping's pages still counted in the RSS the first clients saw.
    std::thread::scope(|s| {
        // The file's pages are mapped in on another thread, ahead of the scan, while the shard threads wait
        // for their first keys (mapping them all before the scan starts took 2% of a load's CPU, all of it
        // on the critical path). The scan faults in whatever it reaches first.
        if let FileBytes::Mapped { .. } = bytes {
            let _ = std::thread::Builder::new().name("rdb-populate".into()).spawn_scoped(s, || bytes.populate());
        }
        load_mapped(server, &bytes, opts)
    })
}

/// [`load_file`] of the file's bytes.
fn load_mapped(server: &Server, file: &FileBytes, opts: &LoadOptions) -> Result<LoadReport, RdbError> {
    let shards: &Shards = &server.shards;
    let progress = Progress { server, hinted: AtomicU64::new(0), inserted: AtomicU64::new(0) };
    let delay = crate::bgsave::key_delay(server, "key-load-delay");
    let mut parts: Vec<ShardLoad> = (0..shards.count())
        .map(|shard| ShardLoad { shards, shard, progress: &progress, delay, delayed: 0, filters: Vec::new() })
        .collect();
    let mut targets: Vec<&mut dyn ShardTarget> = parts.iter_mut().map(|p| p as &mut dyn ShardTarget).collect();
    let route = |key: &[u8]| shards.shard_of(key);
    // The pages the load is done with are dropped as it goes, rather than all of them by the unmap after the
    // load (about 3 ms of one CPU per 60 MB, with the other one idle): the mapped file no longer adds to the
    // load's peak RSS (mixed 1M keys: 203 -> 151 MB, below redis-server's 183 MB).
    rdb::load_sharded(file.as_slice(), opts, &route, &mut targets, &|n| file.release(n))
}

/// Keys announced and inserted over all shards, for `loading_loaded_bytes`.
struct Progress<'s> {
    server: &'s Server,
    hinted: AtomicU64,
    inserted: AtomicU64,
}

impl Progress<'_> {
    fn add(&self, hinted: u64, inserted: u64) {
        let hinted = self.hinted.fetch_add(hinted, Ordering::Relaxed) + hinted;
        let inserted = self.inserted.fetch_add(inserted, Ordering::Relaxed) + inserted;
        let p = &self.server.persist;
        let total = p.loading_total_bytes.load(Ordering::Relaxed);
        let loaded = (u128::from(total) * u128::from(inserted) / u128::from(hinted.max(inserted).max(1))) as u64;
        p.loading_loaded_bytes.store(loaded.min(total.saturating_sub(1)), Ordering::Relaxed);
        p.rdb_last_load_keys_loaded.store(inserted, Ordering::Relaxed);
    }
}

/// One shard's side of the load: locks the shard for each batch.
struct ShardLoad<'s> {
    shards: &'s Shards,
    shard: usize,
    progress: &'s Progress<'s>,
    delay: i64,
    /// Keys seen, for a negative `key-load-delay`.
    delayed: u64,
    /// By database: the hashes this load inserted (made when RESIZEDB pre-sizes an empty database).
    filters: Vec<Option<LoadFilter>>,
}

impl ShardTarget for ShardLoad<'_> {
    fn batch(&mut self, f: &mut dyn FnMut(&mut dyn LoadTarget)) {
        let mut guard = self.shards.lock(self.shard);
        let mut held = Held {
            guard: &mut guard,
            progress: self.progress,
            hinted: 0,
            inserted: 0,
            delay: self.delay,
            delayed: &mut self.delayed,
            filters: &mut self.filters,
        };
        f(&mut held);
        held.report();
    }
}

/// Keys between two progress updates (a slowed-down load reports every key).
const PROGRESS_EVERY: u64 = 256;

/// A shard while its thread holds it.
struct Held<'g, 's> {
    guard: &'g mut MutexGuard<'s, Shard>,
    progress: &'s Progress<'s>,
    /// Counts not yet added to `progress`.
    hinted: u64,
    inserted: u64,
    delay: i64,
    delayed: &'g mut u64,
    filters: &'g mut Vec<Option<LoadFilter>>,
}

impl Held<'_, '_> {
    fn report(&mut self) {
        self.progress.add(std::mem::take(&mut self.hinted), std::mem::take(&mut self.inserted));
    }
}

impl LoadTarget for Held<'_, '_> {
    fn resize(&mut self, db: usize, keys: u64, _expires: u64) {
        self.hinted += keys;
        if let Some(d) = self.guard.ks.dbs.get_mut(db) {
            // A table a snapshot walks can't be replaced (its sink would be dropped).
            if d.is_empty() && !d.table.snapshot_active() {
                *d = Db::with_capacity(keys as usize);
                if self.filters.len() <= db {
                    self.filters.resize_with(db + 1, || None);
                }
                self.filters[db] = LoadFilter::new(d, keys as usize);
            }
        }
    }

    fn prefetch(&mut self, db: usize, hash: u64, step: Prefetch) {
        if let Some(d) = self.guard.ks.dbs.get(db) {
            match self.filters.get(db) {
                Some(Some(f)) => f.prefetch(d, hash, step),
                _ => d.table.prefetch_hashed(hash, step),
            }
        }
    }

    fn insert(&mut self, db: usize, key: &[u8], value: Value, expire_at: Option<i64>) -> Result<(), RdbError> {
        self.insert_hashed(db, hash_of(key), key, value, expire_at)
    }

    fn insert_entry(&mut self, db: usize, hash: u64, entry: Box<Entry<Value>>) -> Result<(), RdbError> {
        let databases = self.guard.ks.dbs.len();
        let Some(d) = self.guard.ks.dbs.get_mut(db) else {
            return Err(RdbError::new(ErrorKind::DbIndex { db: db as u64, databases }, 0));
        };
        // A key already there is an error (the loader names it), and the start-up stops.
        let inserted = match self.filters.get_mut(db) {
            Some(Some(f)) => f.insert(d, hash, entry),
            _ => d.insert_entry(hash, entry),
        };
        if inserted.is_err() {
            return Err(RdbError::new(ErrorKind::DuplicateKey, 0));
        }
        self.inserted_one();
        Ok(())
    }

    /// Builds the entry here and links it like one the scan built (no search when the filter allows).
    fn insert_hashed(
        &mut self,
        db: usize,
        hash: u64,
        key: &[u8],
        value: Value,
        expire_at: Option<i64>,
    ) -> Result<(), RdbError> {
        self.insert_entry(db, hash, Entry::detached(hash, key, value, encode_expire(expire_at)))
    }
}

impl Held<'_, '_> {
    /// Counts an inserted key: progress, and the `key-load-delay` sleep.
    fn inserted_one(&mut self) {
        self.inserted += 1;
        if self.inserted >= PROGRESS_EVERY || self.delay != 0 {
            self.report();
        }
        if self.delay != 0 {
            let us = if self.delay > 0 {
                self.delay as u64
            } else {
                *self.delayed += 1;
                u64::from(self.delayed.is_multiple_of(self.delay.unsigned_abs()))
            };
            if us > 0 {
                MutexGuard::unlocked(self.guard, || std::thread::sleep(Duration::from_micros(us)));
            }
        }
    }
}

/// Bytes of the file [`FileBytes::populate`] maps in per call (a multiple of any page size).
const POPULATE_STEP: usize = 2 << 20;

/// A file's bytes: a private read-only mapping, or (where mapping fails) a copy in memory.
enum FileBytes {
    Mapped {
        ptr: *mut libc::c_void,
        len: usize,
        /// How far from the start [`FileBytes::release`] has dropped the pages.
        released: AtomicUsize,
    },
    Read(Vec<u8>),
}

impl FileBytes {
    fn open(path: &Path) -> std::io::Result<FileBytes> {
        use std::os::fd::AsRawFd;
        let file = File::open(path)?;
        let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        if len == 0 {
            return Ok(FileBytes::Read(Vec::new()));
        }
        // SAFETY: mmap(2) with a null hint, a length the file has, and a descriptor open for reading; the
        // result is checked against MAP_FAILED before use.
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return std::fs::read(path).map(FileBytes::Read);
        }
        Ok(FileBytes::Mapped { ptr, len, released: AtomicUsize::new(0) })
    }

    /// Maps every page of a mapped file in (one call per [`POPULATE_STEP`] instead of a fault per 16 pages);
    /// only saves time. The kernel holds the address space's lock (shared) through each call, and every
    /// `mmap` of the load threads (the allocator growing, a thread's stack) waits for it: over the whole
    /// file at once that kept the shard threads from starting for milliseconds.
    fn populate(&self) {
        if let FileBytes::Mapped { ptr, len, .. } = *self {
            let mut at = 0;
            while at < len {
                let n = POPULATE_STEP.min(len - at);
                // SAFETY: advice on `n` bytes inside the live mapping made in `open` (unmapped only by
                // `drop`, which cannot run while `self` is borrowed), starting on a page boundary (`at` is a
                // multiple of the step, the mapping starts on a page). MADV_POPULATE_READ only faults pages
                // in, as reading them would; a kernel without it (before 5.14) answers EINVAL and the scan
                // faults them in.
                if unsafe { libc::madvise(ptr.cast::<u8>().add(at).cast(), n, libc::MADV_POPULATE_READ) } != 0 {
                    return;
                }
                at += n;
            }
        }
    }

    /// Drops the mapping's pages of `bytes[..n]` (whole pages only), those not dropped by an earlier call.
    /// The mapping stays, so those bytes still read the same (from the page cache) if anything reads them
    /// again; the unmap then has less to do.
    fn release(&self, n: usize) {
        if let FileBytes::Mapped { ptr, len, released } = self {
            // SAFETY: page size from sysconf, always positive.
            let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
            let n = n.min(*len) / page * page;
            let from = released.fetch_max(n, Ordering::Relaxed);
            if n > from {
                // SAFETY: advice on bytes `from..n` of the live mapping made in `open` (page-aligned: the
                // mapping starts on a page, and both ends are multiples of the page size). MADV_DONTNEED on a
                // private, read-only, never written file mapping only drops page table entries: later reads
                // fault the same file bytes back in.
                unsafe { libc::madvise(ptr.cast::<u8>().add(from).cast(), n - from, libc::MADV_DONTNEED) };
            }
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            // SAFETY: `ptr` is a live PROT_READ mapping of `len` bytes (unmapped only in `drop`, which needs
            // `&mut self`). Moon replaces dump.rdb by renaming a new file over it, which leaves this mapping's
            // inode untouched; as for any reader of a mapped file, another process truncating the file during
            // the load would fault.
            FileBytes::Mapped { ptr, len, .. } => unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), *len) },
            FileBytes::Read(v) => v,
        }
    }
}

// SAFETY: the mapping is private to its `FileBytes`, read-only, and unmapped once, by `drop` (which needs
// `&mut self`): reading it from several threads (the scan, the shard threads, the populating thread) is as
// safe as for a `Vec<u8>`.
unsafe impl Sync for FileBytes {}

impl Drop for FileBytes {
    fn drop(&mut self) {
        if let FileBytes::Mapped { ptr, len, .. } = *self {
            // SAFETY: unmaps exactly the mapping made in `open`; no slice of it outlives `self`.
            unsafe { libc::munmap(ptr, len) };
        }
    }
}
