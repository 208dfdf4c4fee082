//! The AOF write path: what each executed command propagates, in one ordered stream, appended to the open
//! incr file by a writer thread under the `appendfsync` policy. (The file set, the manifest and start-up
//! loading are `engine::aof::dir` / `load`; this module only appends to an incr file it is handed.)
//!
//! **Capture** ([`capture`]): right after a command runs, while it still holds the shard locks it ran under,
//! its propagated form (the client's argv, or the engine's replacements: `SET ... PXAT`, `SREM` for SPOP, ...,
//! lazily expired keys as `DEL`/`UNLINK` first) is encoded into a thread-local scratch buffer and then copied
//! into ONE ordered buffer under a short mutex, where `SELECT` and `#TS:` are decided. Because every write
//! holds the locks of every shard it touches while it appends, two commands touching a common key append in
//! the order they executed, whatever shards and threads they ran on (DESIGN.md §2). EXEC appends once, at
//! its end, still holding all its shards; several propagated commands from one command or one EXEC are
//! wrapped in MULTI/EXEC, as Redis 7.0 does.
//!
//! **Writing** ([`pipeline`]): a writer thread (std, not monoio) takes the whole buffer, writes it with
//! [`engine::aof::writer::IncrWriter`] and fsyncs per [`Policy`]; `everysec` fsyncs on a second, background
//! thread. Under `always`, connections hold their replies until the fsync that covers their records
//! ([`durable`]): one fsync serves every record appended meanwhile, by any client (group commit). Under
//! `everysec` and `no` they hold them until the write(2) that covers them, the same way.
//!
//! **Failures** (FORMATS.md §1.8): a failed write sets `aof_last_write_status:err` (the shared
//! `PersistState` cells), so `dispatch` refuses write commands (and PING) with `MISCONF Errors writing to
//! the AOF file: <strerror>` (`bgsave::refusal`) until a retry succeeds; reads keep working. A failed fsync,
//! or under `always` any write failure, poisons the file: writes are refused until a rewrite installs a
//! fresh incr file ([`rotate`]) and completes ([`Aof::rewrite_done`]: until then the files on disk miss
//! records only the new base holds), and replies waiting for records that never became durable become that
//! error, never `+OK`. The same holds when a rotation retires a file whose last write failed.
//!
//! Entry points for start-up / rewrite / CONFIG SET appendonly: [`start`], [`stop`], [`rotate`]; call them
//! while holding every shard (`lock_all`) when clients may be running, so that no command straddles them.
//!
//! Start-up with `appendonly yes` ([`start_up`]: lock, manifest, legacy upgrade, loading, opening the last
//! incr), DEBUG LOADAOF ([`debug_loadaof`]) and the AOF's part of the shutdown ([`close_for_exit`]) are in
//! `startup`; loading the files (RDB straight into the shards, RESP replayed through the dispatcher) in
//! `replay`.

mod capture;
mod durable;
mod fault;
mod pipeline;
mod replay;
mod replay_par;
pub mod rewrite;
mod startup;
#[cfg(test)]
mod tests;

pub use capture::{begin_exec, end_exec, feed, feed_expired, read_barrier, take_wait_target};
pub use startup::{close_for_exit, debug_loadaof, start as start_up, AofLoading};

use crate::persist_state::AofCells;
use crate::server::Server;
use engine::aof::writer::AofFile;
use parking_lot::Mutex;
use pipeline::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

/// `appendfsync`: when the AOF file is fsynced, hence what an acknowledged write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Policy {
    /// fsync before replying. A write command's reply is sent only once the fsync covering its record has
    /// succeeded, so every acknowledged write survives a crash of the process or of the machine; any other
    /// reply waits too for the records appended before its command ran, so no client sees data a crash
    /// could still take away. One fsync covers all records appended while the previous one ran (group
    /// commit); a pipelined batch waits once. If the write or the fsync fails, the replies of the writes
    /// waiting for it are errors, never `+OK`.
    Always = 0,
    /// A write command's reply is sent once its record has been handed to the kernel (write(2), no fsync),
    /// as Redis writes its AOF buffer before it sends the replies of an event-loop turn; a background
    /// thread fsyncs once a second. So a crash of the process (kill -9, OOM killer, panic) loses no
    /// acknowledged write, and a crash of the machine loses at most about the last 1-2 seconds. Unlike
    /// Redis, writes are not postponed while the background fsync runs (`aof_delayed_fsync` stays 0): the
    /// writer thread writes alongside it, and only it would block. One exception, Redis's too: while
    /// writing fails (MISCONF), the replies of commands that already ran are not held (their records stay
    /// buffered and are retried). Reads do not wait.
    Everysec = 1,
    /// As `everysec` for replies (sent once the record is handed to the kernel, so a process crash loses
    /// no acknowledged write), but Moon never fsyncs (except when the file is closed or rotated): the
    /// kernel writes back when it likes (typically within 30 s), and a machine crash may lose everything
    /// not yet written back.
    No = 2,
}

impl Policy {
    fn from_u8(v: u8) -> Policy {
        match v {
            0 => Policy::Always,
            1 => Policy::Everysec,
            _ => Policy::No,
        }
    }

    fn from_config(f: crate::config::AppendFsync) -> Policy {
        match f {
            crate::config::AppendFsync::Always => Policy::Always,
            crate::config::AppendFsync::Everysec => Policy::Everysec,
            crate::config::AppendFsync::No => Policy::No,
        }
    }
}

/// The settings the pipeline follows (from the configuration; changeable at run time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub policy: Policy,
    /// `aof-timestamp-enabled`: `#TS:<unix secs>` before the first record of each new second.
    pub timestamps: bool,
    /// `lazyfree-lazy-expire`: expired keys are logged as UNLINK instead of DEL.
    pub unlink_expired: bool,
}

impl Settings {
    pub fn from_config(cfg: &crate::config::Config) -> Settings {
        Settings {
            policy: Policy::from_config(cfg.appendfsync),
            timestamps: cfg.aof_timestamp_enabled,
            unlink_expired: cfg.lazyfree_lazy_expire,
        }
    }
}

/// What [`rotate`] hands back: the old file's fate, settled by the writer thread.
pub struct Rotation(Arc<pipeline::Retired>);

impl Rotation {
    /// Blocks until the old file is written, fsynced and closed: its final size, or why it is incomplete.
    /// It waits for disk I/O: not while holding shard locks.
    #[allow(dead_code)] // used by the rewrite wiring (next step) and the tests
    pub fn wait(&self) -> Result<u64, Incomplete> {
        self.0.wait()
    }
}

/// A failed [`stop`] or [`Rotation::wait`]: the old file does not hold every record (a write or fsync failed, now or
/// earlier). Its records that were not durable are lost from that file; replies waiting for them got errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    /// What failed, for the log.
    pub reason: String,
    /// The old file's size as far as the writer knows.
    pub size: u64,
}

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the AOF file is incomplete ({}), size {}", self.reason, self.size)
    }
}

/// The pipeline (one per server). Off until [`start`].
pub struct Aof {
    shared: Arc<Shared>,
    /// The writer and fsync threads while on.
    threads: Mutex<Option<(JoinHandle<()>, JoinHandle<()>)>>,
}

impl Aof {
    /// `cells`: the INFO fields it keeps current (`PersistState::aof_cells`).
    pub fn new(settings: Settings, cells: AofCells) -> Self {
        Aof { shared: Arc::new(Shared::new(settings, cells)), threads: Mutex::new(None) }
    }

    /// Whether commands are being logged (a hint for the hot path; the log's own flag is authoritative).
    #[inline]
    pub fn is_on(&self) -> bool {
        self.shared.on.load(Ordering::Relaxed)
    }

    /// Starts appending to `file` (an incr file opened for append that holds `size` bytes). `other_size` is
    /// the size of the other files of the AOF (base and earlier incrs), for `aof_current_size`. The first
    /// record will be preceded by SELECT. Errors when the pipeline is already on.
    #[allow(dead_code)] // the entry points of the start-up, rewrite and CONFIG SET appendonly wiring (next step)
    pub fn start_on(
        &self,
        file: Arc<dyn AofFile>,
        size: u64,
        other_size: u64,
        settings: Settings,
    ) -> Result<(), String> {
        let mut threads = self.threads.lock();
        self.shared.start(file, size, other_size, settings)?;
        let spawn = |name: &str, main: fn(Arc<Shared>)| {
            let sh = self.shared.clone();
            std::thread::Builder::new().name(name.into()).spawn(move || main(sh))
        };
        let writer = spawn("moon-aof-writer", pipeline::writer_main);
        let bio = spawn("moon-aof-fsync", pipeline::bio_main);
        match (writer, bio) {
            (Ok(w), Ok(b)) => {
                *threads = Some((w, b));
                Ok(())
            }
            (w, b) => {
                let e = match (&w, &b) {
                    (Err(e), _) | (_, Err(e)) => e.to_string(),
                    _ => String::new(),
                };
                self.shared.quit_writer();
                self.shared.quit_bio();
                for h in [w.ok(), b.ok()].into_iter().flatten() {
                    let _ = h.join();
                }
                let _ = self.shared.stop();
                Err(format!("can't start the AOF threads: {e}"))
            }
        }
    }

    /// Flushes everything appended so far, fsyncs and closes the file; logging stops. Returns the file's
    /// final size.
    pub fn close(&self) -> Result<u64, Incomplete> {
        let mut threads = self.threads.lock();
        if let Some((writer, bio)) = threads.take() {
            // The writer first, so no fsync job can be handed over after the fsync thread has gone.
            self.shared.quit_writer();
            let _ = writer.join();
            self.shared.quit_bio();
            let _ = bio.join();
        }
        self.shared.stop()
    }

    /// Switches to `file` (holding `size` bytes) at the current end of the stream: later records go there,
    /// starting with SELECT. The writer thread finishes the old file (its last records, fsync, close);
    /// [`Rotation::wait`] gives its final size. `None` when the pipeline is off.
    #[allow(dead_code)] // the entry points of the start-up, rewrite and CONFIG SET appendonly wiring (next step)
    pub fn rotate_to(&self, file: Arc<dyn AofFile>, size: u64) -> Option<Rotation> {
        self.shared.rotate(file, size).map(Rotation)
    }

    /// `aof_current_size` counts the other files of the AOF plus the open incr file; the rewrite sets the
    /// former when the set of files changes.
    #[allow(dead_code)] // the entry points of the start-up, rewrite and CONFIG SET appendonly wiring (next step)
    pub fn set_other_files_size(&self, bytes: u64) {
        self.shared.set_other_size(bytes);
    }

    /// A rewrite finished with success: writes refused because a rotation retired an incomplete file are
    /// accepted again (the new base holds what that file missed).
    pub fn rewrite_done(&self) {
        self.shared.rewrite_done();
    }

    /// Applies changed settings (CONFIG SET appendfsync / aof-timestamp-enabled / lazyfree-lazy-expire).
    pub fn apply(&self, settings: Settings) {
        self.shared.apply(settings);
    }

    /// Whether the reply waiting for `target` must still wait (see [`Aof::durable`]).
    pub fn outcome_pending(&self, target: u64) -> bool {
        self.shared.outcome(target).is_pending()
    }

    /// `everysec` / `no`: writes the records up to `target` now, on this thread, if the writer thread is not
    /// already at it (see `Shared::write_inline`); then [`Aof::durable`] is usually ready at once.
    pub fn write_inline(&self, target: u64) {
        self.shared.write_inline(target);
    }

    /// Waits (without blocking the thread) until the record ending at stream offset `target` is durable:
    /// `Err` with the error reply's text when it never will be.
    pub fn durable(&self, target: u64) -> durable::Durable<'_> {
        durable::Durable::new(&self.shared, target)
    }

    /// The outcome for a record already waited for (see [`Aof::durable`]); `Ok` when still pending.
    pub fn outcome(&self, target: u64) -> Result<(), String> {
        match self.shared.outcome(target) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => Ok(()),
        }
    }
}

impl Drop for Aof {
    fn drop(&mut self) {
        if self.is_on() || self.threads.get_mut().is_some() {
            let _ = self.close();
        }
    }
}

/// Starts logging to `file`, an incr file opened for append (`OpenOptions::new().append(true)`), positioned
/// anywhere: its current length is read here. `other_size`: the other files' total size (INFO). Call
/// before accepting clients, or under `lock_all`.
#[allow(dead_code)] // the entry points of the start-up, rewrite and CONFIG SET appendonly wiring (next step)
pub fn start(server: &Server, file: std::fs::File, other_size: u64) -> std::io::Result<()> {
    let size = file.metadata()?.len();
    let settings = Settings::from_config(&server.config.read());
    server.aof.start_on(Arc::new(file), size, other_size, settings).map_err(std::io::Error::other)
}

/// CONFIG SET appendonly no / SHUTDOWN: flush, fsync, close. Returns the file's final size.
#[allow(dead_code)] // the entry points of the start-up, rewrite and CONFIG SET appendonly wiring (next step)
pub fn stop(server: &Server) -> Result<u64, Incomplete> {
    server.aof.close()
}

/// BGREWRITEAOF's rotation: call it under `lock_all`, so the switch falls exactly at the point the rewrite's
/// snapshot is taken. It only takes the log's lock (no I/O): every record appended before it ends the old
/// incr file, every later one goes to `new_file` (an incr file opened for append), which begins with SELECT.
/// The writer thread then writes the old file's last records, fsyncs and closes it; [`Rotation::wait`]
/// (after releasing the shards) gives the old file's final size, or [`Incomplete`] when it misses records
/// (a write or fsync failed): those are covered by the snapshot, so only a rewrite that completes makes the
/// AOF whole again. `Ok(None)` when the AOF is off.
#[allow(dead_code)] // the entry points of the start-up, rewrite and CONFIG SET appendonly wiring (next step)
pub fn rotate(server: &Server, new_file: std::fs::File) -> std::io::Result<Option<Rotation>> {
    let size = new_file.metadata()?.len();
    Ok(server.aof.rotate_to(Arc::new(new_file), size))
}

/// After CONFIG SET: picks up appendfsync, aof-timestamp-enabled and lazyfree-lazy-expire.
pub fn config_changed(server: &Server) {
    let settings = Settings::from_config(&server.config.read());
    server.aof.apply(settings);
}

/// `strerror` text of an I/O error ("No space left on device"), as Redis prints it.
pub(crate) fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match (e.raw_os_error(), s.rfind(" (os error ")) {
        (Some(_), Some(i)) => s[..i].to_string(),
        _ => s,
    }
}
