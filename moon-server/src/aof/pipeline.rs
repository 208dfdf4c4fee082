//! The pipeline's shared state and its two threads: the writer (takes the ordered buffer, writes it, fsyncs
//! inline under `always`) and the background fsync thread of `everysec` (Redis's bio). Stream offsets count
//! bytes appended since the server started and are never reset, so a reply can wait for "offset X is
//! durable" across rotations.
//!
//! Lock order: `io` before `log` and `bio`; `waiters`, `failure` and `lost` are leaves. Appenders (under shard
//! locks) take only `log`; nothing here ever takes a shard lock.

use super::{Incomplete, Policy, Settings};
use crate::persist_state::AofCells;
use engine::aof::writer::{AofFile, IncrWriter, PoisonCause, Syncer, WriteError};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// How often the writer looks at the clock when idle (everysec fsync, retries after a write error).
const TICK: Duration = Duration::from_millis(100);
/// Under load (`everysec` / `no`), the writer gathers records this long after a write instead of sleeping
/// until an appender wakes it: appenders then never pay for a wake-up, and one write carries many records.
/// It bounds how long an acknowledged record stays in memory only.
const LINGER: Duration = Duration::from_millis(1);
/// A failed write is retried this often (Redis retries on every event-loop turn and every second).
const RETRY_EVERY: Duration = Duration::from_millis(100);
/// Write failures are logged at most this often (Redis's AOF_WRITE_LOG_ERROR_RATE).
const LOG_ERROR_EVERY: Duration = Duration::from_secs(30);
/// A buffer that grew beyond this is given back to the allocator once written.
const KEEP_CAPACITY: usize = 16 << 20;

/// The ordered buffer every command appends to.
pub(super) struct Log {
    /// Authoritative "logging is on" (the atomic in [`Shared`] is the hot path's hint).
    pub on: bool,
    pub buf: Vec<u8>,
    /// Stream offset of the end of `buf`.
    pub end: u64,
    /// The DB the last logged command ran in (`None`: the next record starts with SELECT).
    pub selected_db: Option<usize>,
    /// Unix second of the last `#TS:` annotation.
    pub last_ts: i64,
    /// The writer sleeps waiting for data: the next appender wakes it.
    pub writer_idle: bool,
    pub quit: bool,
    /// Rotations not yet carried out by the writer, oldest first.
    switches: Vec<Switch>,
}

/// A rotation asked for by [`Shared::rotate`]: the records before it end the current file, later ones go to
/// `file`.
struct Switch {
    file: Arc<dyn AofFile>,
    size: u64,
    /// The log's buffer at the switch: the last records of the file being retired.
    tail: Vec<u8>,
    /// Stream offset of the switch.
    end: u64,
    done: Arc<Retired>,
}

/// The outcome of retiring a file after a rotation: its final size, or why it is incomplete.
#[derive(Default)]
pub struct Retired {
    result: Mutex<Option<Result<u64, Incomplete>>>,
    cv: Condvar,
}

impl Retired {
    fn set(&self, r: Result<u64, Incomplete>) {
        *self.result.lock() = Some(r);
        self.cv.notify_all();
    }

    /// Blocks until the retired file is written, fsynced and closed.
    pub fn wait(&self) -> Result<u64, Incomplete> {
        let mut r = self.result.lock();
        loop {
            if let Some(r) = r.as_ref() {
                return r.clone();
            }
            self.cv.wait(&mut r);
        }
    }
}

/// The open incr file.
pub(super) struct Io {
    pub writer: IncrWriter,
    /// Bytes taken from the log and not yet written; they start at stream offset `Shared::written`.
    pub pending: Vec<u8>,
    pub generation: u64,
}

#[derive(Default)]
struct Failure {
    /// The last write failed: refused until a write succeeds (everysec / no).
    write_error: Option<String>,
    /// The current file is poisoned: refused until a new file is installed.
    poison: Option<String>,
    /// A rotation retired a file that misses records (its write or fsync failed): the files on disk lack
    /// writes that only the rewrite's new base holds, so writes are refused until a rewrite succeeds
    /// ([`Shared::rewrite_done`]). Accepting them into the new incr would let them outlive a restart that
    /// loses the earlier ones.
    gap: Option<String>,
    last_logged: Option<Instant>,
}

#[derive(Default)]
pub(super) struct Bio {
    job: Option<Job>,
    busy: bool,
    quit: bool,
}

struct Job {
    syncer: Syncer,
    file_upto: u64,
    stream_upto: u64,
    generation: u64,
}

pub(super) struct Shared {
    pub on: AtomicBool,
    pub log: Mutex<Log>,
    /// Wakes the writer (data appended while idle, a finished background fsync, quit).
    wake: Condvar,
    io: Mutex<Option<Io>>,
    policy: AtomicU8,
    pub timestamps: AtomicBool,
    pub unlink_expired: AtomicBool,
    /// Stream offset of the end of everything appended (`Log::end`, readable without the lock).
    pub appended: AtomicU64,
    /// Stream offset written to the kernel.
    written: AtomicU64,
    /// Every record ending at or before this offset is durable, or lost (see `lost`).
    resolved: AtomicU64,
    /// Stream ranges that never became durable (a failed file was closed or replaced), with the error.
    lost: Mutex<Vec<(u64, u64, String)>>,
    has_lost: AtomicBool,
    poisoned: AtomicBool,
    failure: Mutex<Failure>,
    waiters: Mutex<Vec<(u64, Waker)>>,
    bio: Mutex<Bio>,
    bio_cv: Condvar,
    generation: AtomicU64,
    /// Sizes of the other AOF files and of the open incr file (their sum is `aof_current_size`).
    other_size: AtomicU64,
    file_size: AtomicU64,
    /// INFO fields, shared with `PersistState`; `cells.pending_bio_fsync` is also "the fsync thread is busy".
    pub cells: AofCells,
}

fn unix_secs() -> i64 {
    crate::server::unix_ms() / 1000
}

fn misconf(reason: &str) -> String {
    format!("MISCONF Errors writing to the AOF file: {reason}")
}

impl Shared {
    pub fn new(settings: Settings, cells: AofCells) -> Self {
        let sh = Shared {
            on: AtomicBool::new(false),
            log: Mutex::new(Log {
                on: false,
                buf: Vec::new(),
                end: 0,
                selected_db: None,
                last_ts: 0,
                writer_idle: false,
                quit: false,
                switches: Vec::new(),
            }),
            wake: Condvar::new(),
            io: Mutex::new(None),
            policy: AtomicU8::new(settings.policy as u8),
            timestamps: AtomicBool::new(settings.timestamps),
            unlink_expired: AtomicBool::new(settings.unlink_expired),
            appended: AtomicU64::new(0),
            written: AtomicU64::new(0),
            resolved: AtomicU64::new(0),
            lost: Mutex::new(Vec::new()),
            has_lost: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            failure: Mutex::new(Failure::default()),
            waiters: Mutex::new(Vec::new()),
            bio: Mutex::new(Bio::default()),
            bio_cv: Condvar::new(),
            generation: AtomicU64::new(0),
            other_size: AtomicU64::new(0),
            file_size: AtomicU64::new(0),
            cells,
        };
        sh.apply(settings);
        sh
    }

    pub fn policy(&self) -> Policy {
        Policy::from_u8(self.policy.load(Ordering::Relaxed))
    }

    pub fn apply(&self, s: Settings) {
        self.policy.store(s.policy as u8, Ordering::Relaxed);
        self.timestamps.store(s.timestamps, Ordering::Relaxed);
        self.unlink_expired.store(s.unlink_expired, Ordering::Relaxed);
        // A switch to `always` must not leave waiters behind an idle writer.
        let _log = self.log.lock();
        self.wake.notify_one();
    }

    /// Wakes the writer if it sleeps waiting for data. Called with the log locked, by appenders.
    #[inline]
    pub fn wake_writer(&self, log: &mut Log) -> bool {
        std::mem::replace(&mut log.writer_idle, false)
    }

    pub fn notify_writer(&self) {
        self.wake.notify_one();
    }

    pub fn start(&self, file: Arc<dyn AofFile>, size: u64, other_size: u64, s: Settings) -> Result<(), String> {
        let mut io = self.io.lock();
        if io.is_some() {
            return Err("the AOF is already being written".into());
        }
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        *io = Some(Io { writer: IncrWriter::new(super::fault::wrap(file), size), pending: Vec::new(), generation });
        self.apply(s);
        self.clear_failure();
        self.other_size.store(other_size, Ordering::Relaxed);
        self.set_file_size(size);
        *self.bio.lock() = Bio::default();
        self.cells.pending_bio_fsync.store(0, Ordering::Release);
        self.cells.buffer_length.store(0, Ordering::Relaxed);
        let mut log = self.log.lock();
        log.buf.clear();
        log.selected_db = None;
        log.last_ts = 0;
        log.quit = false;
        log.on = true;
        self.written.store(log.end, Ordering::Release);
        self.resolved.fetch_max(log.end, Ordering::AcqRel);
        self.on.store(true, Ordering::Release);
        Ok(())
    }

    /// Asks the writer thread to finish (the caller joins it before [`Shared::quit_bio`]).
    pub fn quit_writer(&self) {
        let mut log = self.log.lock();
        log.quit = true;
        self.wake.notify_all();
    }

    /// Asks the fsync thread to finish once its job, if any, is done (after the writer has stopped, so no
    /// job can come after it has gone).
    pub fn quit_bio(&self) {
        let mut b = self.bio.lock();
        b.quit = true;
        self.bio_cv.notify_all();
    }

    /// Logging off: carries out pending rotations, then flushes, fsyncs and closes the file (the threads
    /// have been joined).
    pub fn stop(&self) -> Result<u64, Incomplete> {
        let mut io = self.io.lock();
        let (switches, buf, end) = {
            let mut log = self.log.lock();
            log.on = false;
            log.quit = false;
            self.on.store(false, Ordering::Release);
            (std::mem::take(&mut log.switches), std::mem::take(&mut log.buf), log.end)
        };
        let Some(cur) = io.as_mut() else {
            return Err(Incomplete { reason: "the AOF is off".into(), size: 0 });
        };
        for sw in switches {
            self.retire(cur, sw);
        }
        let res = match io.take() {
            Some(mut old) => self.finish_file(&mut old, buf, end),
            None => Err(Incomplete { reason: "the AOF is off".into(), size: 0 }),
        };
        drop(io);
        // Off: nothing is refused any more (Redis checks the AOF state first).
        self.clear_failure();
        self.wake_waiters();
        res
    }

    /// Switches to a new incr file at the current end of the stream (see `aof::rotate`). Only the log's lock
    /// is taken: the writer thread finishes the old file. `None` when logging is off.
    pub fn rotate(&self, file: Arc<dyn AofFile>, size: u64) -> Option<Arc<Retired>> {
        let mut log = self.log.lock();
        if !log.on {
            return None;
        }
        let done = Arc::new(Retired::default());
        let tail = std::mem::take(&mut log.buf);
        let end = log.end;
        log.switches.push(Switch { file, size, tail, end, done: done.clone() });
        log.selected_db = None;
        log.last_ts = 0;
        drop(log);
        self.wake.notify_one();
        Some(done)
    }

    /// Carries out a rotation: `cur` becomes the new file; the old one gets its last records, is fsynced and
    /// closed (dropped), and the outcome is handed to whoever asked for the rotation.
    fn retire(&self, cur: &mut Io, sw: Switch) {
        // A running background fsync of the old file must end first: if it fails, the kernel may report the
        // error to it alone and our own fsync would then succeed on lost data. Its failure poisons the old
        // writer, which our fsync then reports. (No new one can start: the caller holds `io`.)
        self.wait_bio_idle();
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let fresh =
            Io { writer: IncrWriter::new(super::fault::wrap(sw.file), sw.size), pending: Vec::new(), generation };
        let mut old = std::mem::replace(cur, fresh);
        let res = self.finish_file(&mut old, sw.tail, sw.end);
        drop(old);
        let gap = match &res {
            Ok(_) => self.failure.lock().gap.take(),
            Err(e) => Some(e.reason.clone()),
        };
        self.clear_failure();
        if let Some(reason) = gap {
            crate::warning!("Writes are refused until an AOF rewrite succeeds: the AOF files miss writes ({reason})");
            let mut f = self.failure.lock();
            f.gap = Some(reason);
            self.publish(&f);
        }
        self.set_file_size(sw.size);
        self.wake_waiters();
        sw.done.set(res);
    }

    /// Writes what the old file still owes (`taken`: the log's buffer and its end offset), fsyncs it, and
    /// resolves every offset up to the end: durable on success, lost otherwise.
    fn finish_file(&self, old: &mut Io, buf: Vec<u8>, end: u64) -> Result<u64, Incomplete> {
        old.pending.extend_from_slice(&buf);
        let mut outcome = match old.writer.write(&old.pending) {
            Ok(()) => Ok(()),
            Err(WriteError::Failed { error, .. }) => Err(super::strerror(&error)),
            Err(WriteError::Poisoned(p)) => Err(super::strerror(&p.to_io_error())),
            Err(e) => Err(e.to_string()),
        };
        if outcome.is_ok() {
            self.written.store(end, Ordering::Release);
            outcome = match old.writer.fsync() {
                Ok(_) => Ok(()),
                Err(p) => Err(super::strerror(&p.to_io_error())),
            };
        }
        let size = old.writer.size();
        self.cells.buffer_length.store(0, Ordering::Relaxed);
        match outcome {
            Ok(()) => {
                self.resolved.fetch_max(end, Ordering::AcqRel);
                Ok(size)
            }
            Err(reason) => {
                crate::warning!("The AOF file could not be completed before closing it: {reason}");
                let from = self.resolved.load(Ordering::Acquire);
                if end > from {
                    self.lost.lock().push((from, end, misconf(&reason)));
                    self.has_lost.store(true, Ordering::Release);
                }
                self.written.store(end, Ordering::Release);
                self.resolved.fetch_max(end, Ordering::AcqRel);
                Err(Incomplete { reason, size })
            }
        }
    }

    fn wait_bio_idle(&self) {
        let mut b = self.bio.lock();
        while b.busy {
            self.bio_cv.wait(&mut b);
        }
    }

    fn bio_busy(&self) -> bool {
        self.cells.pending_bio_fsync.load(Ordering::Acquire) != 0
    }

    pub fn set_other_size(&self, bytes: u64) {
        self.other_size.store(bytes, Ordering::Relaxed);
        self.set_file_size(self.file_size.load(Ordering::Relaxed));
    }

    fn set_file_size(&self, bytes: u64) {
        self.file_size.store(bytes, Ordering::Relaxed);
        self.cells.current_size.store(self.other_size.load(Ordering::Relaxed) + bytes, Ordering::Relaxed);
    }

    /// A fresh file (or the AOF off): nothing is refused.
    fn clear_failure(&self) {
        let mut f = self.failure.lock();
        *f = Failure::default();
        self.poisoned.store(false, Ordering::Release);
        self.publish(&f);
    }

    /// A rewrite succeeded: its base holds every write a retired file missed (see [`Failure::gap`]).
    pub fn rewrite_done(&self) {
        let mut f = self.failure.lock();
        if f.gap.take().is_some() {
            crate::notice!("AOF rewrite done: the AOF holds every write again, Moon can write again.");
            self.publish(&f);
        }
    }

    /// Mirrors the failure state into INFO / the MISCONF refusal (`aof_last_write_status`).
    fn publish(&self, f: &Failure) {
        match f.poison.as_ref().or(f.gap.as_ref()).or(f.write_error.as_ref()) {
            Some(reason) => {
                *self.cells.last_write_error.lock() = reason.clone();
                self.cells.last_write_ok.store(false, Ordering::Release);
            }
            None => self.cells.last_write_ok.store(true, Ordering::Release),
        }
    }

    /// Whether writes are refused now.
    pub fn failing(&self) -> bool {
        !self.cells.last_write_ok.load(Ordering::Relaxed)
    }

    fn refusal(&self) -> Option<String> {
        let f = self.failure.lock();
        f.poison.as_deref().or(f.gap.as_deref()).or(f.write_error.as_deref()).map(misconf)
    }

    /// Whether the record ending at `target` is safe to acknowledge (`Ok`), never will be (`Err`), or not
    /// yet: under `always` once fsynced; under `everysec` / `no` once written to the kernel, or at once while
    /// writing fails (see [`Policy::Everysec`]).
    pub fn outcome(&self, target: u64) -> Poll<Result<(), String>> {
        if target <= self.resolved.load(Ordering::Acquire) {
            if self.has_lost.load(Ordering::Acquire) {
                if let Some((_, _, e)) = self.lost.lock().iter().find(|(a, b, _)| *a < target && target <= *b) {
                    return Poll::Ready(Err(e.clone()));
                }
            }
            return Poll::Ready(Ok(()));
        }
        if self.poisoned.load(Ordering::Acquire) {
            return Poll::Ready(Err(self.refusal().unwrap_or_else(|| misconf("fsync failed"))));
        }
        if self.policy() != Policy::Always
            && (target <= self.written.load(Ordering::Acquire) || self.failing() || !self.on.load(Ordering::Acquire))
        {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    /// `everysec` / `no`: writes the buffered records up to at least `target` on the calling thread (a
    /// connection's, about to wait for its replies), as Redis writes its AOF buffer before it sends the
    /// replies of an event-loop turn: no hand-over to the writer thread and back. Everything else stays the
    /// writer thread's: nothing is done when it holds the file (it will write these records next), when a
    /// rotation is pending, or while writing fails (its retries).
    pub fn write_inline(&self, target: u64) {
        let policy = self.policy();
        if policy == Policy::Always
            || target <= self.written.load(Ordering::Acquire)
            || self.failing()
            || self.poisoned.load(Ordering::Acquire)
        {
            return;
        }
        let Some(mut guard) = self.io.try_lock() else { return };
        let Some(io) = guard.as_mut() else { return };
        {
            let mut log = self.log.lock();
            if !log.switches.is_empty() {
                return;
            }
            if io.pending.is_empty() {
                std::mem::swap(&mut io.pending, &mut log.buf);
            } else {
                let buf = std::mem::take(&mut log.buf);
                io.pending.extend_from_slice(&buf);
            }
        }
        if io.pending.is_empty() {
            return;
        }
        // A failure is recorded for everyone (`write_failed`); the writer thread retries on its own clock.
        let mut st = WriterState::new(self);
        write_pending(self, io, policy, &mut st);
        self.cells.buffer_length.store(io.pending.len() as u64, Ordering::Relaxed);
    }

    pub fn add_waiter(&self, target: u64, waker: &Waker) {
        self.waiters.lock().push((target, waker.clone()));
        // Under `always` the append already woke the writer, which fsyncs whatever it wrote. Otherwise it may
        // be lingering to gather more records: a waiting reply wants the write now.
        if self.policy() != Policy::Always {
            let _log = self.log.lock();
            self.wake.notify_one();
        }
    }

    fn has_waiters(&self) -> bool {
        !self.waiters.lock().is_empty()
    }

    /// Wakes every waiter whose outcome is known.
    fn wake_waiters(&self) {
        let mut ready = Vec::new();
        {
            let mut w = self.waiters.lock();
            if w.is_empty() {
                return;
            }
            let all = std::mem::take(&mut *w);
            for (t, waker) in all {
                if self.outcome(t).is_ready() {
                    ready.push(waker);
                } else {
                    w.push((t, waker));
                }
            }
        }
        for w in ready {
            w.wake();
        }
    }

    fn resolve(&self, upto: u64) {
        self.resolved.fetch_max(upto, Ordering::AcqRel);
        self.wake_waiters();
    }

    fn poison(&self, reason: String) {
        {
            let mut f = self.failure.lock();
            if f.poison.is_none() {
                f.poison = Some(reason);
            }
            self.poisoned.store(true, Ordering::Release);
            self.publish(&f);
        }
        self.wake_waiters();
    }

    fn write_failed(&self, reason: String) {
        {
            let mut f = self.failure.lock();
            f.write_error = Some(reason);
            self.publish(&f);
        }
        // `everysec` / `no`: replies are not held while writing fails.
        self.wake_waiters();
    }

    fn write_succeeded(&self) {
        if !self.failing() {
            return;
        }
        let mut f = self.failure.lock();
        if f.write_error.take().is_some() {
            crate::notice!("AOF write error looks solved, Moon can write again.");
        }
        self.publish(&f);
    }

    /// Logs a write failure, at most once per [`LOG_ERROR_EVERY`].
    fn log_write_error(&self, msg: impl FnOnce() -> String) {
        let mut f = self.failure.lock();
        let now = Instant::now();
        if f.last_logged.is_none_or(|t| now.duration_since(t) >= LOG_ERROR_EVERY) {
            f.last_logged = Some(now);
            drop(f);
            crate::warning!("{}", msg());
        }
    }
}

/// The writer thread's own bookkeeping.
struct WriterState {
    /// Unix second of the last background fsync request (everysec: at most one per second).
    last_fsync_sec: i64,
    /// Stream offset the last background fsync covers.
    asked: u64,
    /// A write failed: the next attempt is not before this.
    retry_at: Option<Instant>,
    /// The last round wrote something (see [`LINGER`]).
    wrote: bool,
}

impl WriterState {
    fn new(sh: &Shared) -> Self {
        WriterState {
            last_fsync_sec: unix_secs(),
            asked: sh.written.load(Ordering::Acquire),
            retry_at: None,
            wrote: false,
        }
    }
}

pub(super) fn writer_main(sh: Arc<Shared>) {
    let mut st = WriterState::new(&sh);
    while wait_for_work(&sh, &st) {
        round(&sh, &mut st);
    }
}

/// Sleeps until there is data to write (or a tick passes). False when asked to quit.
fn wait_for_work(sh: &Shared, st: &WriterState) -> bool {
    let mut log = sh.log.lock();
    if st.wrote && sh.policy() != Policy::Always && !sh.has_waiters() {
        // `writer_idle` stays false: appenders do not wake us (a waiting reply does, see `add_waiter`).
        sh.wake.wait_for(&mut log, LINGER);
    }
    loop {
        if log.quit {
            return false;
        }
        let now = Instant::now();
        // Data that can't be written now must not make every appender wake us.
        let held = st.retry_at.is_some_and(|t| now < t) || sh.poisoned.load(Ordering::Acquire);
        if (!log.buf.is_empty() && !held) || !log.switches.is_empty() {
            return true;
        }
        let mut timeout = TICK;
        if let Some(t) = st.retry_at {
            timeout = timeout.min(t.saturating_duration_since(now));
        }
        log.writer_idle = !held;
        let timed_out = sh.wake.wait_for(&mut log, timeout).timed_out();
        log.writer_idle = false;
        if timed_out || sh.has_waiters() {
            return !log.quit;
        }
    }
}

/// One turn: write what is buffered, then fsync as the policy says.
fn round(sh: &Shared, st: &mut WriterState) {
    let mut guard = sh.io.lock();
    let Some(io) = guard.as_mut() else { return };
    let (switches, buf) = {
        let mut log = sh.log.lock();
        let switches = std::mem::take(&mut log.switches);
        if switches.is_empty() && io.pending.is_empty() {
            std::mem::swap(&mut io.pending, &mut log.buf);
            (switches, None)
        } else {
            // After any rotation below, the buffer belongs to the newest file.
            (switches, Some(std::mem::take(&mut log.buf)))
        }
    };
    if !switches.is_empty() {
        for sw in switches {
            sh.retire(io, sw);
        }
        *st = WriterState::new(sh);
    }
    if let Some(buf) = buf {
        io.pending.extend_from_slice(&buf);
    }
    sh.cells.buffer_length.store(io.pending.len() as u64, Ordering::Relaxed);
    if sh.poisoned.load(Ordering::Acquire) {
        return;
    }
    let policy = sh.policy();
    let now = Instant::now();
    st.wrote = false;
    if !io.pending.is_empty() && st.retry_at.is_none_or(|t| now >= t) {
        // Unlike Redis, `everysec` does not postpone writes while the background fsync runs: Redis does so
        // that write(2) cannot block its event loop behind the fsync, but here only this thread would wait,
        // and replies wait for the write anyway (so `aof_delayed_fsync` stays 0).
        st.wrote = true;
        write_pending(sh, io, policy, st);
        sh.cells.buffer_length.store(io.pending.len() as u64, Ordering::Relaxed);
    }
    if sh.poisoned.load(Ordering::Acquire) {
        return;
    }
    let written = sh.written.load(Ordering::Acquire);
    if written > sh.resolved.load(Ordering::Acquire) && policy == Policy::Always {
        match io.writer.fsync() {
            Ok(_) => {
                st.asked = st.asked.max(written);
                sh.resolve(written);
            }
            Err(p) => {
                let reason = super::strerror(&p.to_io_error());
                crate::warning!(
                    "Can't persist AOF for fsync error when the AOF fsync policy is '{}': {reason}. Writes are refused until the AOF is rewritten.",
                    if policy == Policy::Always { "always" } else { "everysec" }
                );
                sh.poison(reason);
            }
        }
    } else if policy == Policy::Everysec && written > st.asked && !sh.bio_busy() {
        let sec = unix_secs();
        if sec > st.last_fsync_sec {
            st.last_fsync_sec = sec;
            st.asked = written;
            let job = Job {
                syncer: io.writer.syncer(),
                file_upto: io.writer.size(),
                stream_upto: written,
                generation: io.generation,
            };
            let mut b = sh.bio.lock();
            b.job = Some(job);
            b.busy = true;
            sh.cells.pending_bio_fsync.store(1, Ordering::Release);
            sh.bio_cv.notify_all();
        }
    }
    if io.pending.capacity() > KEEP_CAPACITY && io.pending.is_empty() {
        io.pending = Vec::new();
    }
}

fn write_pending(sh: &Shared, io: &mut Io, policy: Policy, st: &mut WriterState) {
    let len = io.pending.len();
    match io.writer.write(&io.pending) {
        Ok(()) => {
            io.pending.clear();
            sh.written.fetch_add(len as u64, Ordering::AcqRel);
            sh.set_file_size(io.writer.size());
            st.retry_at = None;
            sh.write_succeeded();
            if policy != Policy::Always {
                // Replies waiting for these records to reach the kernel can go.
                sh.wake_waiters();
            }
        }
        Err(WriteError::Failed { error, kept, truncate_error }) => {
            io.pending.drain(..kept);
            sh.written.fetch_add(kept as u64, Ordering::AcqRel);
            sh.set_file_size(io.writer.size());
            let reason = super::strerror(&error);
            sh.log_write_error(|| match &truncate_error {
                None => format!("Error writing to the AOF file: {reason}"),
                Some(te) => format!(
                    "Error writing to the AOF file: {reason}. Could not remove short write from the append-only file. Moon may refuse to load the AOF the next time it starts. ftruncate: {}",
                    super::strerror(te)
                ),
            });
            if policy == Policy::Always {
                crate::warning!("Can't recover from AOF write error when the AOF fsync policy is 'always'. Writes are refused until the AOF is rewritten.");
                io.writer.poison_with(PoisonCause::Write, &error);
                sh.poison(reason);
            } else {
                sh.write_failed(reason);
                st.retry_at = Some(Instant::now() + RETRY_EVERY);
            }
        }
        Err(WriteError::Poisoned(p)) => sh.poison(super::strerror(&p.to_io_error())),
        Err(e) => {
            sh.write_failed(e.to_string());
            st.retry_at = Some(Instant::now() + RETRY_EVERY);
        }
    }
}

/// The background fsync thread (`everysec`).
pub(super) fn bio_main(sh: Arc<Shared>) {
    loop {
        let job = {
            let mut b = sh.bio.lock();
            loop {
                if let Some(j) = b.job.take() {
                    break j;
                }
                if b.quit {
                    return;
                }
                sh.bio_cv.wait(&mut b);
            }
        };
        match job.syncer.fsync(job.file_upto) {
            Ok(_) => {
                sh.resolve(job.stream_upto);
            }
            // (A job for a replaced file cannot end here: a rotation waits for the job first.)
            Err(p) if job.generation == sh.generation.load(Ordering::Acquire) => {
                let reason = super::strerror(&p.to_io_error());
                crate::warning!("Fail to fsync the AOF file: {reason}. Writes are refused until the AOF is rewritten.");
                sh.poison(reason);
            }
            Err(_) => {}
        }
        {
            let mut b = sh.bio.lock();
            b.busy = false;
            sh.cells.pending_bio_fsync.store(0, Ordering::Release);
            sh.bio_cv.notify_all();
        }
        // The writer may be postponing writes for this fsync.
        let _log = sh.log.lock();
        sh.wake.notify_one();
    }
}
