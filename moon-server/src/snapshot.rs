//! Fork-less point-in-time snapshots of the whole dataset (DESIGN.md §1), for BGSAVE now and the AOF rewrite
//! later: the same walk, another [`Encoder`].
//!
//! **Begin** ([`begin`]): with every shard locked, each non-empty database table of each shard starts a table
//! snapshot (O(1) per table, `engine::table`) whose sink is a [`Sink`] for that database. Because every
//! command holds the shards it touches, the instant all shards are held is one cut across the whole dataset;
//! the dirty counter and the key counts read there belong to the same cut.
//!
//! **Walk** ([`Snapshot::run`], on a background thread): shard by shard, lock one shard, let its tables walk
//! up to a few hundred buckets for at most about 50 µs, unlock (fairly, so a waiting shard thread goes first),
//! yield the CPU, write what was produced. Clients keep being served between steps (a single huge value is
//! the exception: it is serialised in one piece while its shard is held).
//!
//! **Using it for another output** (the AOF rewrite): `begin(server, Purpose::AofRewrite, encoder)` right
//! where the rewrite must cut (it returns `Err(purpose)` while another snapshot runs: schedule and retry),
//! write the file's head, `run` into the file, write its tail, then `release` with the bookkeeping to do
//! before the next snapshot may start. A scheduled BGSAVE starts from the cron once the slot is free.
//!
//! **Writes during the walk**: before a write touches an entry the walk has not reached, the table hands the
//! entry's old contents to the sink (the snapshot rule in `engine::table`), which serialises it at once.
//! The only extra memory is therefore the serialised pre-images of keys written during the snapshot, plus
//! the output buffer between two drains.
//!
//! **Output**: every sink serialises into one shared buffer, under its lock, through the job's [`Encoder`];
//! whenever the database of the next entry differs from the last one written, the encoder is asked for a
//! database switch first (RDB: SELECTDB, which Redis's loader, `redis-check-rdb` and ours accept anywhere;
//! RESP: SELECT). The walking thread drains the buffer to the output. Framing (an RDB header, EOF and
//! checksum) is the caller's: it wraps the output (e.g. in `engine::rdb::RdbStream`) around [`Snapshot::run`].
//!
//! **One at a time**: like Redis's single fork child, one snapshot runs at a time ([`Slot`]); its
//! [`Purpose`] tells BGSAVE whether it is itself or an AOF rewrite that is running.
//!
//! **Abort**: [`Slot::abort`] (no locks needed) makes every sink drop what it is given (so a FLUSHALL that
//! clears the tables does not serialise them first) and the walk end each table's snapshot at its next visit.
//! A sink that is dropped without the walk ending it (a table replaced wholesale) makes the snapshot fail
//! rather than silently miss keys.

use crate::server::Server;
use engine::rdb::{RdbEncoder, WriteOptions};
use engine::table::{Entry, SnapshotSink};
use engine::types::Value;
use parking_lot::{Mutex, MutexGuard};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Buckets one `snapshot_step` call walks.
const STEP_BUCKETS: usize = 64;
/// Steps per shard lock hold, at most; a hold also ends once it has lasted [`MAX_HOLD`]. Measured on a loaded
/// 2-core machine (tests/bench/bgsave_latency.py), 50 µs holds with a yield after each gave a p99.9 client
/// round trip during the walk several times lower than 250 µs holds without one, and a shorter save.
const STEPS_PER_HOLD: usize = 4;
const MAX_HOLD: Duration = Duration::from_micros(50);
/// The walker writes the shared buffer out once it holds this much.
const DRAIN_AT: usize = 256 * 1024;

/// What a running snapshot is for (Redis's `child_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// BGSAVE (and the save rules).
    RdbSave,
    /// BGREWRITEAOF.
    AofRewrite,
}

/// Keys and keys with a TTL of one database at the instant the snapshot began (all shards).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbSize {
    pub keys: u64,
    pub expires: u64,
}

/// Turns entries into the bytes of one output format. Called on whichever thread emits (a shard thread
/// writing a key the walk has not reached yet, or the walker), so it must be cheap to share: `&self` only.
pub trait Encoder: Send + Sync {
    /// The entries that follow belong to `db`. `first` carries the database's size the first time it is
    /// selected in this output (an RDB's RESIZEDB), `None` on later switches back to it.
    fn select_db(&self, out: &mut Vec<u8>, db: usize, first: Option<DbSize>);
    /// One key of the current database.
    fn entry(&self, out: &mut Vec<u8>, key: &[u8], value: &Value, expire_at: Option<i64>);
}

/// The RDB form of the entries: SELECTDB at every switch, RESIZEDB the first time a database appears.
pub struct RdbEntries(pub RdbEncoder);

impl RdbEntries {
    pub fn new(opts: WriteOptions) -> Self {
        RdbEntries(RdbEncoder::new(opts))
    }
}

impl Encoder for RdbEntries {
    fn select_db(&self, out: &mut Vec<u8>, db: usize, first: Option<DbSize>) {
        self.0.select_db(out, db);
        if let Some(size) = first {
            self.0.resize_db(out, size.keys, size.expires);
        }
    }

    fn entry(&self, out: &mut Vec<u8>, key: &[u8], value: &Value, expire_at: Option<i64>) {
        self.0.entry(out, key, value, expire_at);
    }
}

/// Why a snapshot did not complete.
#[derive(Debug)]
pub enum SnapshotError {
    /// Writing the output failed.
    Io(io::Error),
    /// Stopped on purpose ([`Slot::abort`]); the text says by what.
    Aborted(&'static str),
    /// A table was replaced while its snapshot was running, so keys would be missing.
    Lost,
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Io(e) => write!(f, "{e}"),
            SnapshotError::Aborted(why) => write!(f, "aborted by {why}"),
            SnapshotError::Lost => f.write_str("a database was replaced while the snapshot ran"),
        }
    }
}

impl From<io::Error> for SnapshotError {
    fn from(e: io::Error) -> Self {
        SnapshotError::Io(e)
    }
}

/// The output buffer every sink appends to.
struct Output {
    bytes: Vec<u8>,
    /// The database of the last entry written, to know when a switch is needed.
    db: Option<usize>,
    /// Databases already announced with their size.
    announced: Vec<bool>,
}

/// What the sinks, the walker and an aborting thread share.
struct Shared {
    out: Mutex<Output>,
    encoder: Box<dyn Encoder>,
    sizes: Vec<DbSize>,
    aborted: AtomicBool,
    abort_reason: Mutex<&'static str>,
    /// Entries serialised so far.
    keys: AtomicU64,
    /// Table snapshots begun, and ended by the walk or an abort; a sink dropped otherwise is lost.
    begun: AtomicUsize,
    ended: AtomicUsize,
    /// The longest hold of a shard by this snapshot so far, in nanoseconds (see [`Slot::latest_max_hold_us`]).
    max_hold_ns: AtomicU64,
}

impl Shared {
    /// Stops the snapshot; the first reason given is the one reported.
    fn abort(&self, reason: &'static str) {
        let mut why = self.abort_reason.lock();
        if !self.is_aborted() {
            *why = reason;
            self.aborted.store(true, Ordering::Release);
        }
    }

    fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    fn note_hold(&self, held: Duration) {
        self.max_hold_ns.fetch_max(u64::try_from(held.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Appends one serialised entry of `db`, switching database first when needed.
    fn append(&self, db: usize, entry: &[u8]) {
        let mut out = self.out.lock();
        let out = &mut *out;
        if out.db != Some(db) {
            let first = !std::mem::replace(&mut out.announced[db], true);
            self.encoder.select_db(&mut out.bytes, db, first.then(|| self.sizes[db]));
            out.db = Some(db);
        }
        out.bytes.extend_from_slice(entry);
    }

    fn take_output(&self) -> Vec<u8> {
        std::mem::take(&mut self.out.lock().bytes)
    }
}

/// One database table's sink. Serialises into a scratch buffer of its own (only its shard's thread, holding
/// the shard lock, calls it), then appends under the shared buffer's lock, which is held for a copy only.
struct Sink {
    db: usize,
    shared: Arc<Shared>,
    scratch: Vec<u8>,
}

impl SnapshotSink<Value> for Sink {
    fn emit(&mut self, e: &Entry<Value>) {
        if self.shared.is_aborted() {
            return;
        }
        self.scratch.clear();
        let expire = e.has_expire().then_some(e.expire_at());
        self.shared.encoder.entry(&mut self.scratch, &e.key, &e.value, expire);
        self.shared.append(self.db, &self.scratch);
        self.shared.keys.fetch_add(1, Ordering::Relaxed);
        if self.scratch.capacity() > 1 << 20 {
            self.scratch = Vec::new();
        }
    }
}

/// Which snapshot runs, if any.
#[derive(Default)]
pub struct Slot {
    running: Mutex<Option<(Purpose, Arc<Shared>)>>,
    /// The longest time, in microseconds, one shard was held for the last snapshot that ran to its end
    /// (INFO `latest_snapshot_max_hold_usec`): Moon's counterpart of Redis's `latest_fork_usec`, the
    /// longest a request could wait on this snapshot's account.
    pub latest_max_hold_us: AtomicU64,
}

impl Slot {
    pub fn running(&self) -> Option<Purpose> {
        self.running.lock().as_ref().map(|(p, _)| *p)
    }

    /// Asks the running snapshot, if it is for `purpose`, to stop; returns whether one was asked.
    pub fn abort(&self, purpose: Purpose, reason: &'static str) -> bool {
        match &*self.running.lock() {
            Some((p, shared)) if *p == purpose => {
                shared.abort(reason);
                true
            }
            _ => false,
        }
    }
}

/// Ends every table snapshot still active in `dbs` (they are all this snapshot's: one runs at a time).
fn end_tables(shared: &Shared, dbs: &mut [engine::keyspace::Db]) {
    for db in dbs {
        if db.table.snapshot_active() {
            shared.ended.fetch_add(1, Ordering::AcqRel);
            drop(db.table.snapshot_end());
        }
    }
}

/// A snapshot that has begun: the point-in-time cut is taken; [`Snapshot::run`] writes it out. Holds the
/// [`Slot`] until dropped or [`Snapshot::release`]d.
pub struct Snapshot {
    server: Arc<Server>,
    shared: Arc<Shared>,
    released: bool,
    /// `Server::dirty` at the cut (BGSAVE subtracts it once the file is safe).
    pub dirty_at_begin: u64,
    /// Keys in the snapshot.
    pub keys_total: u64,
}

/// Begins a snapshot of every database of every shard for `purpose`, or returns the purpose of the one
/// already running. Holds every shard for O(shards × databases) work.
pub fn begin(server: &Arc<Server>, purpose: Purpose, encoder: Box<dyn Encoder>) -> Result<Snapshot, Purpose> {
    if let Some(p) = server.snapshots.running() {
        return Err(p);
    }
    let mut view = server.shards.lock_all();
    let held = Instant::now();
    let snap = begin_locked(server, &mut view, purpose, encoder);
    drop(view);
    if let Ok(snap) = &snap {
        snap.note_hold(held.elapsed());
    }
    snap
}

/// [`begin`] with every shard already held by `view` (`Shards::lock_all`), for a caller that must do more
/// at the same cut (the AOF rewrite switches incr files there).
pub fn begin_locked(
    server: &Arc<Server>,
    view: &mut crate::shards::LockedShards<'_>,
    purpose: Purpose,
    encoder: Box<dyn Encoder>,
) -> Result<Snapshot, Purpose> {
    debug_assert!(view.holds_all());
    let databases = server.shards.databases();
    // Lock order: shards, then the slot; nothing locks a shard while holding the slot.
    let mut running = server.snapshots.running.lock();
    if let Some((p, _)) = &*running {
        return Err(*p);
    }
    let dirty_at_begin = server.dirty.load(Ordering::Relaxed);
    let mut sizes = vec![DbSize::default(); databases];
    for shard in view.each() {
        for (i, db) in shard.ks.dbs.iter().enumerate() {
            sizes[i].keys += db.len() as u64;
            sizes[i].expires += db.expires_count() as u64;
        }
    }
    let shared = Arc::new(Shared {
        out: Mutex::new(Output { bytes: Vec::new(), db: None, announced: vec![false; databases] }),
        encoder,
        sizes,
        aborted: AtomicBool::new(false),
        abort_reason: Mutex::new(""),
        keys: AtomicU64::new(0),
        begun: AtomicUsize::new(0),
        ended: AtomicUsize::new(0),
        max_hold_ns: AtomicU64::new(0),
    });
    let keys_total = shared.sizes.iter().map(|s| s.keys).sum();
    *running = Some((purpose, shared.clone()));
    drop(running);
    let mut begun = 0;
    for shard in view.each() {
        for (i, db) in shard.ks.dbs.iter_mut().enumerate() {
            if db.table.snapshot_active() {
                // Left behind by a snapshot whose thread died: none is running (this one holds the slot).
                drop(db.table.snapshot_end());
            }
            // An empty table has nothing pending: whatever it gets later is newer than the cut.
            if db.is_empty() {
                continue;
            }
            let sink = Sink { db: i, shared: shared.clone(), scratch: Vec::new() };
            if db.table.snapshot_begin(Box::new(sink)).is_ok() {
                begun += 1;
            }
        }
    }
    shared.begun.store(begun, Ordering::Release);
    Ok(Snapshot { server: server.clone(), shared, released: false, dirty_at_begin, keys_total })
}

impl Snapshot {
    /// Counts a hold of every shard by the caller of [`begin_locked`] (from the moment it had them all to
    /// the moment it let go) towards the snapshot's longest hold.
    pub fn note_hold(&self, held: Duration) {
        self.shared.note_hold(held);
    }

    /// Why the snapshot was stopped, if it was.
    pub fn aborted(&self) -> Option<&'static str> {
        self.shared.is_aborted().then(|| *self.shared.abort_reason.lock())
    }

    /// Entries serialised so far (walked, or saved by a write before the walk reached them).
    pub fn keys_processed(&self) -> u64 {
        self.shared.keys.load(Ordering::Relaxed)
    }

    /// Walks every table to the end, writing the entries to `out` as they are produced; returns when the
    /// whole snapshot has been written (not flushed: the caller ends and syncs the file). `key_delay_us`
    /// slows the walk down per key written by it (Redis's `rdb-key-save-delay`, for tests): positive =
    /// microseconds per key, negative = one microsecond every `-n` keys. `progress` sees the number of
    /// entries written so far after every step.
    pub fn run(&mut self, out: &mut dyn Write, key_delay_us: i64, progress: &dyn Fn(u64)) -> Result<(), SnapshotError> {
        let result = self.walk(out, key_delay_us, progress);
        if result.is_err() {
            // Stop the writers' pre-image copies and let go of every table.
            self.shared.abort("an error");
            self.end_all();
        }
        result
    }

    /// Walks database by database (every shard's table of database 0, then of 1, ...), so the output
    /// selects each database once, as Redis's does, apart from pre-images that writers hand over out of turn.
    fn walk(&mut self, out: &mut dyn Write, key_delay_us: i64, progress: &dyn Fn(u64)) -> Result<(), SnapshotError> {
        let server = self.server.clone();
        let shards = server.shards.count();
        let mut delayed_keys = 0u64;
        for db in 0..server.shards.databases() {
            let mut done = vec![false; shards];
            while done.iter().any(|d| !d) {
                for (s, finished) in done.iter_mut().enumerate() {
                    if *finished {
                        continue;
                    }
                    let before = self.keys_processed();
                    let mut guard = server.shards.lock(s);
                    let held = Instant::now();
                    *finished = if self.shared.is_aborted() {
                        end_tables(&self.shared, &mut guard.ks.dbs);
                        true
                    } else {
                        self.step_table(&mut guard.ks.dbs[db], key_delay_us != 0)
                    };
                    MutexGuard::unlock_fair(guard);
                    self.shared.note_hold(held.elapsed());
                    // A shard thread that was waiting for this shard needs a CPU to run now, more than the walk.
                    std::thread::yield_now();
                    if self.shared.is_aborted() {
                        continue;
                    }
                    let out_len = self.shared.out.lock().bytes.len();
                    if out_len >= DRAIN_AT {
                        out.write_all(&self.shared.take_output())?;
                    }
                    progress(self.keys_processed());
                    if key_delay_us != 0 {
                        delayed_keys += self.keys_processed() - before;
                        delayed_keys = self.delay(key_delay_us, delayed_keys);
                    }
                }
            }
        }
        if self.shared.is_aborted() {
            return Err(SnapshotError::Aborted(*self.shared.abort_reason.lock()));
        }
        if self.shared.ended.load(Ordering::Acquire) != self.shared.begun.load(Ordering::Acquire) {
            return Err(SnapshotError::Lost);
        }
        out.write_all(&self.shared.take_output())?;
        progress(self.keys_processed());
        Ok(())
    }

    /// One lock hold of one shard: a few steps over one of its tables. Returns true once that table no
    /// longer has this snapshot active.
    fn step_table(&self, db: &mut engine::keyspace::Db, slow: bool) -> bool {
        let started = Instant::now();
        // Slowed down (`rdb-key-save-delay`): one bucket per step, but keep stepping over empty buckets until
        // a key is written, so a sparse table does not cost one lock hand-over per empty bucket.
        let (budget, steps) = if slow { (1, usize::MAX) } else { (STEP_BUCKETS, STEPS_PER_HOLD) };
        let keys_before = self.keys_processed();
        let mut taken = 0;
        while db.table.snapshot_active() && taken < steps {
            taken += 1;
            if db.table.snapshot_step(budget) {
                self.shared.ended.fetch_add(1, Ordering::AcqRel);
                drop(db.table.snapshot_end());
            }
            if started.elapsed() >= MAX_HOLD || (slow && self.keys_processed() > keys_before) {
                break;
            }
        }
        !db.table.snapshot_active()
    }

    /// Sleeps for `keys` keys of `rdb-key-save-delay` in slices, so an abort is noticed quickly; returns
    /// the keys not yet accounted for (negative delays sleep 1 µs per `-delay` keys).
    fn delay(&self, delay_us: i64, keys: u64) -> u64 {
        let (total_us, left) = if delay_us > 0 {
            (delay_us as u64 * keys, 0)
        } else {
            let every = delay_us.unsigned_abs();
            (keys / every, keys % every)
        };
        let end = Instant::now() + Duration::from_micros(total_us);
        while !self.shared.is_aborted() {
            let now = Instant::now();
            if now >= end {
                break;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(10)));
        }
        left
    }

    /// Ends every table snapshot still active (after an error), shard by shard.
    fn end_all(&self) {
        for s in 0..self.server.shards.count() {
            let mut guard = self.server.shards.lock(s);
            end_tables(&self.shared, &mut guard.ks.dbs);
        }
    }

    /// Frees the slot, running `f` first while it is still held (so that, e.g., INFO can never show the
    /// job as finished while a new one would still be refused).
    pub fn release(mut self, f: impl FnOnce()) {
        let mut running = self.server.snapshots.running.lock();
        if !self.shared.is_aborted() {
            let us = self.shared.max_hold_ns.load(Ordering::Relaxed) / 1000;
            self.server.snapshots.latest_max_hold_us.store(us, Ordering::Relaxed);
        }
        f();
        *running = None;
        self.released = true;
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Not run to the end (an early error or a panic): make sure no table keeps a sink alive.
        self.shared.abort("an error");
        self.end_all();
        *self.server.snapshots.running.lock() = None;
    }
}
