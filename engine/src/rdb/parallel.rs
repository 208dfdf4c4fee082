//! The parallel loader: one RDB decoded into several shard targets at once (DESIGN.md §4, "in parallel per
//! shard where it helps").
//!
//! The calling thread runs the same opcode loop as [`super::load`] (`load::walk`), but for each key it only
//! reads the key and finds where the value ends (`skip::value_extent`, lengths only). It routes the key with
//! the caller's function and appends (key, value extent, expiry, db) to that shard's batch. One shard thread
//! (one per shard, or one for several shards when there are fewer spare CPUs than shards) receives a
//! shard's batches in file order, decodes each value from the shared file bytes and inserts it
//! into its own target: every table is filled by exactly one thread, with no lock per key. While a shard
//! thread's queue is full the scan decodes that shard's values itself rather than wait, and builds their
//! table entries too (allocating and first touching their memory, the larger part of an insert), so the
//! shard thread only links them in: with one shard (or few) the two threads share the work. The scan also
//! computes each key's table hash once, for the shard thread's prefetches and its insert. RESIZEDB hints
//! travel in the same batches, split evenly over the shards. The scanning thread keeps the CRC up to date as it
//! goes (every 256 KB, while those bytes are in its cache) and finishes it at EOF, while the shard threads
//! finish; every few MB it tells the caller which bytes no thread will read again (a mapped file's pages
//! can go). Shard threads warm their table a few keys ahead
//! (`LoadTarget::prefetch`), so the cache misses of consecutive inserts overlap instead of adding up.
//!
//! **Same result, same errors as [`super::load`].** The scan stops at its first error; a shard thread stops at
//! its first error and the scan stops soon after, first sending every key it already routed. Each shard
//! sees its keys in file order, so duplicates and expiry are decided as in a sequential load. A shard's
//! error can only be about a key the scan already passed, so the error reported is the shard error of the
//! earliest key if there is one, else the scan's error, else the checksum's: exactly the error the
//! sequential loader meets first. Values the scan does not pass over by lengths (streams and modules, which
//! are skipped, and anything damaged) are decoded in place by the scan with the sequential code.

use super::decode::Decoded;
use super::error::{ErrorKind, RdbError, Result};
use super::input::Input;
use super::load::{self, KeyHead, Sink};
use super::{crc64_clmul, skip, Discard, LoadOptions, LoadReport, LoadTarget, ShardTarget};
use crate::keyspace::encode_expire;
use crate::table::{hash_of, prefetch_line, Entry, Prefetch};
use crate::types::Value;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::thread;

/// Keys per batch handed to a shard thread.
const BATCH: usize = 1024;
/// While a shard thread's queue is full, its pending batch grows (the scan decoding the values) up to this,
/// offered again every `RETRY` keys; at this size the scan waits.
const BATCH_MAX: usize = 8 * BATCH;
const RETRY: usize = 64;
/// Batches queued per shard thread before the scan waits (bounds memory when a shard falls behind).
const IN_FLIGHT: usize = 8;
/// How many keys ahead a shard thread warms the table, for each step of `Table::prefetch`.
const PREFETCH: [(usize, Prefetch); 3] = [(24, Prefetch::Slot), (16, Prefetch::Entry), (8, Prefetch::Key)];

/// A value as the scan hands it over.
enum Payload {
    /// Still encoded, at `start..end` of the file.
    Extent { start: usize, end: usize },
    /// Decoded by the scan into an entry ready to link (a value it could not pass over by lengths, or any
    /// value while the shard's thread is behind).
    Entry(Box<Entry<Value>>),
}

/// One message item for a shard thread, in file order.
enum Item<'a> {
    Resize {
        db: usize,
        keys: u64,
        expires: u64,
    },
    /// The key, its [`hash_of`] and its value.
    Key(KeyHead<'a>, u64, Payload),
}

type Batch<'a> = Vec<Item<'a>>;

/// An empty batch with room for [`BATCH_MAX`] items, so that a batch that grows while its thread is behind
/// is never reallocated (copying it and touching fresh pages for each doubling). Only the part written is
/// ever backed by memory, and batches are recycled.
fn new_batch<'a>() -> Batch<'a> {
    Vec::with_capacity(BATCH_MAX)
}

/// Loads an RDB from `bytes` into `targets`, the shards of one dataset: each key goes to
/// `targets[route(key)]` (taken modulo the number of targets), decoded and inserted by one thread per
/// target (or per group of targets: no more threads than the CPUs the scan leaves), in file order. The
/// result, the report and any error are those [`super::load`] gives for a target that routes keys the same
/// way. RESIZEDB hints reach every shard divided by the number of shards. With no
/// targets the file is only validated.
///
/// As the scan goes it calls `release(n)` (with `n` growing) once the load will read none of `bytes[..n]`
/// any more, the last time at the end of the file while the shard threads finish: a caller that mapped
/// the file can drop those pages as it goes, instead of unmapping them all after the load (one CPU's
/// work at the end, waiting on the other's acknowledgement of each TLB flush).
pub fn load_sharded(
    bytes: &[u8],
    opts: &LoadOptions,
    route: &dyn Fn(&[u8]) -> usize,
    targets: &mut [&mut dyn ShardTarget],
    release: &dyn Fn(usize),
) -> std::result::Result<LoadReport, RdbError> {
    // The scan keeps one CPU busy: more shard threads than the other CPUs would only take turns with it
    // (on 2 CPUs, 2 shard threads cost about a third more CPU time than 1 serving both shards).
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    load_on_threads(bytes, opts, route, targets, cpus.saturating_sub(1), release)
}

/// [`load_sharded`] with at most `max_threads` shard threads (at least one).
pub(crate) fn load_on_threads(
    bytes: &[u8],
    opts: &LoadOptions,
    route: &dyn Fn(&[u8]) -> usize,
    targets: &mut [&mut dyn ShardTarget],
    max_threads: usize,
    release: &dyn Fn(usize),
) -> std::result::Result<LoadReport, RdbError> {
    if targets.is_empty() {
        return load::load(bytes, opts, &mut Discard);
    }
    // The header first: the shard threads need to know whether type ids are Valkey's.
    let (_, valkey) = load::header(&mut Input::new(bytes))?;
    let failed = AtomicBool::new(false);
    // One thread per shard, but no more than `max_threads`: shard `i` is served by thread `i % threads`.
    let shards = targets.len();
    let threads = shards.min(max_threads.max(1));
    let outcome = thread::scope(|s| {
        let (recycle_tx, recycle_rx) = mpsc::channel::<Batch>();
        let mut groups: Vec<Vec<&mut dyn ShardTarget>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, target) in targets.iter_mut().enumerate() {
            groups[i % threads].push(&mut **target);
        }
        let mut senders = Vec::with_capacity(threads);
        let mut workers = Vec::with_capacity(threads);
        let mut sent = Vec::with_capacity(threads);
        for (w, group) in groups.into_iter().enumerate() {
            let (tx, rx) = mpsc::sync_channel::<(usize, Batch)>(IN_FLIGHT * group.len());
            sent.push(Sent { window: IN_FLIGHT * group.len() + 1, firsts: VecDeque::new() });
            let (recycle, failed) = (recycle_tx.clone(), &failed);
            let spawned = thread::Builder::new()
                .name(format!("rdb-load-{w}"))
                .spawn_scoped(s, move || shard_thread(bytes, opts, valkey, rx, recycle, group, threads, failed));
            match spawned {
                Ok(h) => {
                    workers.push(h);
                    senders.push(tx);
                }
                // No thread: give up on parallelism (the started threads get no work).
                Err(_) => return None,
            }
        }
        let lanes = (0..shards)
            .map(|i| Lane {
                shard: i,
                thread: i % threads,
                pending: new_batch(),
                tx: Some(senders[i % threads].clone()),
                busy: false,
            })
            .collect();
        drop(senders);
        drop(recycle_tx);
        let crc = Crc { on: opts.verify_checksum, value: 0, at: 0 };
        let mut scan = Scan {
            route,
            opts,
            bytes,
            lanes,
            recycle: recycle_rx,
            failed: &failed,
            stopped: false,
            crc,
            sent,
            release,
            released: 0,
            release_check: RELEASE_STEP,
        };
        let scanned = load::walk(bytes, opts, &mut scan);
        // Everything routed so far goes out (a shard's earlier error may be in there), then the lanes close.
        for i in 0..scan.lanes.len() {
            scan.flush(i);
        }
        let (stopped, crc, released) = (scan.stopped, scan.crc, scan.released);
        let unread = scan.sent.iter().map(Sent::oldest).min().unwrap_or(usize::MAX).min(bytes.len());
        drop(scan);
        // The rest of the CRC runs here while the shard threads finish their queues; then the bytes before
        // every key they may still read go.
        let scanned = scanned.and_then(|(mut report, eof_end)| {
            load::checksum_from(bytes, eof_end, opts, &mut report, (crc.value, crc.at))?;
            if unread > released {
                release(unread);
            }
            Ok(report)
        });
        let mut first: Option<(usize, RdbError)> = None;
        let mut parts = Vec::with_capacity(workers.len());
        for h in workers {
            let out = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            if let Some((at, e)) = out.error {
                if first.as_ref().is_none_or(|(f, _)| at < *f) {
                    first = Some((at, e));
                }
            }
            parts.push(out.report);
        }
        if let Some((_, e)) = first {
            return Some(Err(e));
        }
        debug_assert!(!stopped, "the scan stops early only after a shard thread failed");
        Some(scanned.map(|mut report| {
            for part in parts {
                merge(&mut report, part);
            }
            report
        }))
    });
    match outcome {
        Some(result) => result,
        None => load::load(bytes, opts, &mut Routed { route, targets }),
    }
}

/// A shard's queue as the scan sees it.
struct Lane<'a> {
    shard: usize,
    /// The shard thread serving it.
    thread: usize,
    pending: Batch<'a>,
    /// The queue of the thread serving the shard; None once that thread has stopped.
    tx: Option<SyncSender<(usize, Batch<'a>)>>,
    /// The thread's queue was full at the last offer: the scan decodes this shard's values meanwhile.
    busy: bool,
}

/// The scanning sink: routes keys and their value extents to the shard threads.
struct Scan<'a, 'x> {
    route: &'x dyn Fn(&[u8]) -> usize,
    opts: &'x LoadOptions,
    lanes: Vec<Lane<'a>>,
    /// Emptied batches coming back from the shard threads.
    recycle: Receiver<Batch<'a>>,
    failed: &'x AtomicBool,
    /// A shard thread failed: the scan ended early on purpose.
    stopped: bool,
    /// The file's CRC so far.
    crc: Crc,
    bytes: &'a [u8],
    /// By shard thread: the batches it may not have finished.
    sent: Vec<Sent>,
    /// Told of the bytes the load is done with, and how far it was told.
    release: &'x dyn Fn(usize),
    released: usize,
    /// The file offset at which the scan next works out what it can release.
    release_check: usize,
}

/// The last batches sent to one shard thread: its channel holds `window - 1` batches, so every batch sent
/// before the last `window` ones has been received and a later one received after it, which the thread only
/// does once it has finished the batch. Only those last ones can still be read.
struct Sent {
    window: usize,
    /// The file offset of each one's first key (`usize::MAX` for a batch of RESIZEDB hints only), oldest first.
    firsts: VecDeque<usize>,
}

/// The file offset of a batch's first key.
fn first_key_at(batch: &Batch) -> Option<usize> {
    batch.iter().find_map(|item| match item {
        Item::Key(head, ..) => Some(head.at),
        Item::Resize { .. } => None,
    })
}

impl Sent {
    /// Notes a batch sent, by [`first_key_at`].
    fn record(&mut self, first: Option<usize>) {
        if self.firsts.len() == self.window {
            self.firsts.pop_front();
        }
        self.firsts.push_back(first.unwrap_or(usize::MAX));
    }

    /// The lowest file offset the thread may still read (items of a batch are in file order).
    fn oldest(&self) -> usize {
        self.firsts.iter().copied().min().unwrap_or(usize::MAX)
    }
}

/// The CRC-64 of the bytes the scan has passed, kept up to date a step at a time while they are still in the
/// cache: done at the end, it read the whole file again from memory while the shard threads had run out of
/// work (a tail of several milliseconds on one CPU).
#[derive(Clone, Copy)]
struct Crc {
    /// Whether the load verifies the checksum.
    on: bool,
    /// The CRC of `bytes[..at]`.
    value: u64,
    at: usize,
}

/// Bytes the scan passes between two CRC updates.
const CRC_STEP: usize = 256 * 1024;

/// Bytes the load is done with before the scan has them released (less in tests, whose files are small);
/// the scan looks every quarter of that.
const RELEASE_STEP: usize = if cfg!(test) { 16 << 10 } else { 4 << 20 };

impl<'a> Scan<'a, '_> {
    /// Sends lane `i`'s pending batch, waiting for room. Marks the scan stopped when the thread is gone or
    /// any shard failed.
    fn flush(&mut self, i: usize) {
        let lane = &mut self.lanes[i];
        if lane.pending.is_empty() {
            return;
        }
        let fresh = self.recycle.try_recv().unwrap_or_else(|_| new_batch());
        let batch = std::mem::replace(&mut lane.pending, fresh);
        lane.busy = false;
        if let Some(tx) = &lane.tx {
            self.sent[lane.thread].record(first_key_at(&batch));
            if tx.send((lane.shard, batch)).is_err() {
                lane.tx = None;
                self.stopped = true;
            }
        }
        if self.failed.load(Ordering::Relaxed) {
            self.stopped = true;
        }
    }

    /// Sends lane `i`'s pending batch if the thread has room for it; else marks the lane busy.
    fn offer(&mut self, i: usize) {
        let lane = &mut self.lanes[i];
        let Some(tx) = &lane.tx else {
            self.stopped = true;
            return;
        };
        let batch = std::mem::take(&mut lane.pending);
        let first = first_key_at(&batch);
        match tx.try_send((lane.shard, batch)) {
            Ok(()) => {
                self.sent[lane.thread].record(first);
                lane.pending = self.recycle.try_recv().unwrap_or_else(|_| new_batch());
                lane.busy = false;
            }
            Err(TrySendError::Full((_, batch))) => {
                lane.pending = batch;
                lane.busy = true;
            }
            Err(TrySendError::Disconnected(_)) => {
                lane.tx = None;
                self.stopped = true;
            }
        }
        if self.failed.load(Ordering::Relaxed) {
            self.stopped = true;
        }
    }

    /// Releases the bytes before every one the load may still read, the scan being at the key record at
    /// `at`: the keys of the batches a shard thread may not have finished or not yet received, and the CRC's
    /// next bytes.
    fn release_done(&mut self, at: usize) {
        let pending = self.lanes.iter().filter_map(|l| first_key_at(&l.pending));
        let sent = self.sent.iter().map(Sent::oldest);
        let crc = if self.crc.on { self.crc.at } else { at };
        let done = pending.chain(sent).fold(at.min(crc), usize::min);
        if done >= self.released + RELEASE_STEP {
            (self.release)(done);
            self.released = done;
        }
    }

    fn push(&mut self, i: usize, item: Item<'a>) -> Result<()> {
        let lane = &mut self.lanes[i];
        lane.pending.push(item);
        let n = lane.pending.len();
        if n >= BATCH_MAX {
            self.flush(i);
        } else if n >= BATCH && (!lane.busy || n.is_multiple_of(RETRY)) {
            self.offer(i);
        }
        if self.stopped {
            // Any error will do: a shard thread's error is the one reported.
            return Err(RdbError::new(ErrorKind::Unsupported("load stopped".into()), 0));
        }
        Ok(())
    }
}

impl<'a> Sink<'a> for Scan<'a, '_> {
    fn resize(&mut self, db: usize, keys: u64, expires: u64) {
        let n = self.lanes.len() as u64;
        for lane in &mut self.lanes {
            lane.pending.push(Item::Resize { db, keys: keys.div_ceil(n), expires: expires.div_ceil(n) });
        }
    }

    fn key_value(&mut self, inp: &mut Input<'a>, head: KeyHead<'a>, report: &mut LoadReport) -> Result<()> {
        // Routes are normally in range already: no division then.
        let (route, lanes) = ((self.route)(&head.key), self.lanes.len());
        let shard = if route < lanes { route } else { route % lanes };
        let hash = hash_of(&head.key);
        let start = inp.pos();
        // While the shard thread is behind, the scan decodes values and builds their entries (allocating
        // and first touching their memory) instead of waiting.
        let extent = if self.lanes[shard].busy { Ok(false) } else { skip::value_extent(inp, head.ty) };
        let payload = match extent {
            Ok(true) => Payload::Extent { start, end: inp.pos() },
            // Also streams, modules and damaged values: decoded here, exactly as the sequential loader does.
            _ => {
                inp.rewind(start);
                match load::decode_at(inp, &head, self.opts, report.valkey)? {
                    Decoded::Value(v) if !load::expired(head.expire_at, self.opts) => {
                        let exp = encode_expire(head.expire_at);
                        Payload::Entry(Entry::detached(hash, &head.key, v, exp))
                    }
                    other => return load::store(other, head, None, self.opts, &mut Discard, report),
                }
            }
        };
        let end = inp.pos();
        if self.crc.on && end - self.crc.at >= CRC_STEP {
            self.crc.value = crc64_clmul::update(self.crc.value, &self.bytes[self.crc.at..end]);
            self.crc.at = end;
        }
        if end >= self.release_check {
            self.release_done(head.at);
            self.release_check = end + RELEASE_STEP / 4;
        }
        self.push(shard, Item::Key(head, hash, payload))
    }
}

/// What a shard thread did.
struct Outcome {
    /// Its keys' counts (`keys_loaded`, `expired_dropped`, per-db stats ...).
    report: LoadReport,
    /// Its earliest error, with the offset of the key's record (the order in which errors are reported).
    error: Option<(usize, RdbError)>,
}

/// Decodes and inserts the batches of the shards in `group` (shard `i` is `group[i / stride]`). After an
/// error the thread keeps taking batches, to find an earlier error in another of its shards (batches of
/// different shards arrive in the order they filled up, not in file order); keys after the earliest error
/// are passed over.
#[allow(clippy::too_many_arguments)]
fn shard_thread<'a>(
    bytes: &'a [u8],
    opts: &LoadOptions,
    valkey: bool,
    rx: Receiver<(usize, Batch<'a>)>,
    recycle: Sender<Batch<'a>>,
    mut group: Vec<&mut dyn ShardTarget>,
    stride: usize,
    failed: &AtomicBool,
) -> Outcome {
    let mut report = LoadReport::default();
    let mut first: Option<(usize, RdbError)> = None;
    for (shard, mut batch) in rx {
        let limit = first.as_ref().map_or(usize::MAX, |(at, _)| *at);
        let mut error = None;
        group[shard / stride].batch(&mut |t| {
            // Items are moved out, not overwritten: the batch's memory goes back to the scan's CPU clean, so
            // its next writes there need not fetch lines this CPU modified.
            let mut items = batch.drain(..);
            loop {
                // Warm the table for the keys a few places ahead (see `LoadTarget::prefetch`): the rest's
                // item `ahead` is that many places after the one taken next.
                for (ahead, step) in PREFETCH {
                    if let Some(Item::Key(h, hash, payload)) = items.as_slice().get(ahead) {
                        t.prefetch(h.db, *hash, step);
                        // An entry the scan built sits in the other CPU's cache.
                        if let (Prefetch::Entry, Payload::Entry(e)) = (step, payload) {
                            prefetch_line(&**e);
                        }
                    }
                }
                let Some(item) = items.next() else { break };
                let (head, hash, payload) = match item {
                    Item::Resize { db, keys, expires } => {
                        t.resize(db, keys, expires);
                        continue;
                    }
                    Item::Key(head, hash, payload) => (head, hash, payload),
                };
                let at = head.at;
                if at >= limit {
                    return;
                }
                let stored = match payload {
                    Payload::Extent { start, end } => {
                        load::decode_at(&mut Input::at(&bytes[..end], start), &head, opts, valkey)
                            .and_then(|v| load::store(v, head, Some(hash), opts, t, &mut report))
                    }
                    Payload::Entry(e) => load::store_entry(head, hash, e, t, &mut report),
                };
                if let Err(e) = stored {
                    error = Some((at, e));
                    return;
                }
            }
        });
        if error.is_some() {
            failed.store(true, Ordering::Relaxed);
            first = error;
        }
        batch.clear();
        // The scan may already be gone; an unused batch is simply freed.
        let _ = recycle.send(batch);
    }
    Outcome { report, error: first }
}

/// Adds a shard thread's counts to the scan's report.
fn merge(into: &mut LoadReport, part: LoadReport) {
    into.keys_loaded += part.keys_loaded;
    into.expires_loaded += part.expires_loaded;
    into.expired_dropped += part.expired_dropped;
    into.empty_skipped += part.empty_skipped;
    for (db, stats) in part.dbs {
        let d = into.dbs.entry(db).or_default();
        d.keys += stats.keys;
        d.expires += stats.expires;
    }
}

/// The sequential equivalent of [`load_sharded`]: one target that routes keys to the shard targets (a batch
/// of one key each).
struct Routed<'r, 't, 'u> {
    route: &'r dyn Fn(&[u8]) -> usize,
    targets: &'t mut [&'u mut dyn ShardTarget],
}

impl LoadTarget for Routed<'_, '_, '_> {
    fn resize(&mut self, db: usize, keys: u64, expires: u64) {
        let n = self.targets.len() as u64;
        for t in self.targets.iter_mut() {
            t.batch(&mut |t| t.resize(db, keys.div_ceil(n), expires.div_ceil(n)));
        }
    }

    fn insert(&mut self, db: usize, key: &[u8], value: Value, expire_at: Option<i64>) -> Result<()> {
        let i = (self.route)(key) % self.targets.len();
        let mut slot = Some((key, value));
        let mut result = Ok(());
        self.targets[i].batch(&mut |t| {
            if let Some((key, value)) = slot.take() {
                result = t.insert(db, key, value, expire_at);
            }
        });
        result
    }
}
