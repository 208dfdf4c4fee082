//! BGREWRITEAOF on the fork-less snapshot (`snapshot`), the automatic rewrite, and `CONFIG SET appendonly`
//! / `aof-disable-auto-gc` at run time (FORMATS.md §1.6, §1.7). The file transitions are
//! `engine::aof::dir::AofDir`'s (engine/FORMAT.md "AOF"); this module drives them, switches the write
//! pipeline (`aof::rotate` / `start` / `stop`) and keeps Redis's replies, log lines and INFO fields.
//!
//! **Start** ([`command`], the cron, `CONFIG SET appendonly yes`): the caller only checks, marks the rewrite
//! in progress and starts thread `moon-aofrw`, so no client's shard thread waits for the fsyncs below (BGSAVE
//! already sees it as running: [`snapshot_running`]). The thread then, under this module's control lock:
//! `AofDir::start_rewrite` creates the next incr and persists a manifest listing it (AOF on), or opens
//! `temp-<name>.incr` (WaitRewrite), or nothing (AOF off), holding no shard; then, with every shard held,
//! the pipeline switches to the new file and the snapshot's cut is taken: every write before that instant is
//! in the new base, every later one in the new incr. An empty incr listed a moment before it receives writes
//! is harmless: the older incr still precedes it in the manifest.
//!
//! **Run** (the same thread): first waits until the writer thread has written, fsynced and closed the old
//! incr (before anything of the new base can become durable, and before the new incr's first fsync, which
//! the writer thread orders itself), then walks the snapshot into `temp-rewriteaof-bg-<pid>.aof` in the
//! working directory (an RDB with `aof-base=1` when `aof-use-rdb-preamble yes`, else RESP with `SELECT` per
//! database and `#TS:` first when `aof-timestamp-enabled yes`), fsyncing every 4 MB
//! (`aof-rewrite-incremental-fsync`) and at the end, then `AofDir::rewrite_done` renames it to the next base,
//! persists the manifest and removes the history files, all on this thread.
//!
//! **Failures** count as Redis's do (`aof_last_bgrewrite_status:err`, `aof_rewrites_consecutive_failures`);
//! the incr opened at the start stays in the manifest, so repeated failures accumulate incrs. After three in
//! a row, automatic and scheduled rewrites wait 1, 2, 4 ... 60 minutes between attempts; BGREWRITEAOF is not
//! limited. In WaitRewrite a failure stops logging, removes the temp incr and schedules the rewrite again.
//! A rewrite is killed like Redis's child when its temp file disappears (the cron checks it; tests remove
//! it, or put a directory in its place so that it cannot be created at all); `rdb-key-save-delay` slows the
//! walk down, as it slows Redis's child.
//!
//! Lock order: the control lock of this module, then the shards or `Server::aof_dir` (never both at once
//! here). The rewrite thread holds the control lock to begin and to finish, never during the walk; the
//! cron only tries it.

use crate::server::{unix_ms, Server};
use crate::snapshot::{DbSize, Encoder, Purpose};
use engine::aof::dir::{AofDir, AofOptions, AofPaths, AofState, DirError, HistoryRemoval};
use engine::aof::rewrite::{rewrite_key, rewrite_select};
use engine::resp::Reply;
use engine::types::Value;
use parking_lot::Mutex;
use std::cell::Cell;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

const STARTED: &str = "Background append only file rewriting started";
const SCHEDULED: &str = "Background append only file rewriting scheduled";
const IN_PROGRESS: &str = "ERR Background append only file rewriting already in progress";
const CANT: &str = "ERR Can't execute an AOF background rewriting. Please check the server logs for more information.";
const CANT_ENABLE: &str =
    "ERR CONFIG SET failed (possibly related to argument 'appendonly') - Unable to turn on AOF. Check server logs.";
/// Consecutive failures after which automatic rewrites are delayed (Redis's `AOF_REWRITE_LIMITE_THRESHOLD`).
const LIMIT_THRESHOLD: u64 = 3;
/// The longest delay between limited attempts, in minutes (`AOF_REWRITE_LIMITE_MAX_MINUTES`).
const LIMIT_MAX_MINUTES: i64 = 60;
/// The RESP form of a base (`aof-use-rdb-preamble no`): `SELECT` at every database switch, then per key
/// the commands of `engine::aof::rewrite`.
pub struct RespEntries;

impl Encoder for RespEntries {
    fn select_db(&self, out: &mut Vec<u8>, db: usize, _first: Option<DbSize>) {
        rewrite_select(out, db);
    }

    fn entry(&self, out: &mut Vec<u8>, key: &[u8], value: &Value, expire_at: Option<i64>) {
        rewrite_key(out, key, value, expire_at);
    }
}

/// The rewrite's state (one per server, `Server::aof_rewrite`); the INFO fields live in `PersistState`.
#[derive(Default)]
pub struct Rewrites {
    ctl: Mutex<Ctl>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Rewrites started that have not taken their cut (or given up) yet (see [`snapshot_running`]).
    starting: AtomicUsize,
}

/// What the control lock guards: which rewrite is running and the failure back-off.
#[derive(Default)]
struct Ctl {
    job: Option<Arc<Running>>,
    limit: Limit,
}

/// Redis's `aofRewriteLimited` state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Limit {
    minutes: i64,
    /// Unix seconds before which limited rewrites do not start.
    next_at: Option<i64>,
}

/// The running rewrite, shared between its thread and the controllers.
struct Running {
    temp: PathBuf,
    /// Device and inode of the temp file once created (the cron checks it is still there).
    ident: OnceLock<(u64, u64)>,
    stop: Mutex<Option<Stop>>,
}

/// Why a running rewrite was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// `CONFIG SET appendonly no`: detached, not a failure (Redis kills its child with SIGUSR1).
    Disabled,
    /// `CONFIG SET appendonly yes` while a rewrite with AOF off ran: it collects no incr, so it can't be the
    /// first base; detached, not a failure.
    Replaced,
    /// SHUTDOWN: its temp files are removed, not a failure.
    Shutdown,
    /// Its temp file was removed or replaced: a failure, like a killed child.
    TempRemoved,
}

impl Stop {
    fn reason(self) -> &'static str {
        match self {
            Stop::Disabled => "CONFIG SET appendonly no",
            Stop::Replaced => "CONFIG SET appendonly yes",
            Stop::Shutdown => "shutdown",
            Stop::TempRemoved => "the removal of its temporary file",
        }
    }
}

thread_local! {
    /// This thread runs a command queued in MULTI (EXEC holds shards): nothing here may lock shards or
    /// wait for the rewrite thread, which needs them.
    static IN_EXEC: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` as a command queued in MULTI (commands::run_in_exec wraps CONFIG with it).
pub fn in_exec<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_EXEC.set(self.0);
        }
    }
    let _restore = Restore(IN_EXEC.replace(true));
    f()
}

/// Why a rewrite did not start.
#[derive(Debug, PartialEq, Eq)]
enum StartError {
    /// Another snapshot (a BGSAVE) runs: schedule it.
    Busy,
    /// Logged already.
    Failed,
}

/// BGREWRITEAOF. `in_exec`: queued in MULTI, where Redis always schedules.
pub fn command(server: &Server, in_exec: bool) -> Reply {
    let mut ctl = server.aof_rewrite.ctl.lock();
    if ctl.job.is_some() {
        return Reply::err(IN_PROGRESS);
    }
    // (A rewrite stopped by CONFIG SET appendonly inside EXEC may still hold the snapshot: it counts as
    // another background operation.)
    match server.snapshots.running() {
        Some(_) => return schedule_by_command(server),
        None if in_exec || IN_EXEC.get() => return schedule_by_command(server),
        None => {}
    }
    match start(server, &mut ctl) {
        Ok(()) => Reply::Simple(STARTED.into()),
        Err(StartError::Busy) => schedule_by_command(server),
        Err(StartError::Failed) => Reply::err(CANT),
    }
}

/// A rewrite asked for by a user waits for the running snapshot; like Redis, asking resets the failure
/// count so the back-off does not delay it.
fn schedule_by_command(server: &Server) -> Reply {
    server.persist.aof_rewrite_scheduled.store(true, Ordering::Relaxed);
    server.persist.aof_rewrites_consecutive_failures.store(0, Ordering::Relaxed);
    Reply::Simple(SCHEDULED.into())
}

/// The cron's share (shard 0, every tick): notices a rewrite whose temp file vanished, starts a scheduled
/// rewrite once no snapshot runs, else an automatic one when the AOF grew by `auto-aof-rewrite-percentage`
/// over its size after the last rewrite and is above `auto-aof-rewrite-min-size`. Never waits: if the
/// control lock is busy (a rewrite finishing), the next tick looks again.
pub fn cron(server: &Server) {
    if server.persist.loading.load(Ordering::Acquire) {
        return;
    }
    let Some(mut ctl) = server.aof_rewrite.ctl.try_lock() else { return };
    if let Some(job) = &ctl.job {
        check_temp(server, job);
        return;
    }
    if server.snapshots.running().is_some() {
        return;
    }
    let p = &server.persist;
    let now = unix_ms() / 1000;
    let failures = p.aof_rewrites_consecutive_failures.load(Ordering::Relaxed);
    if p.aof_rewrite_scheduled.load(Ordering::Relaxed) {
        if !limited(&mut ctl.limit, failures, now) {
            let _ = start(server, &mut ctl);
        }
        return;
    }
    if !server.aof.is_on() {
        return;
    }
    let (percentage, min_size) = {
        let cfg = server.config.read();
        (i64::from(cfg.auto_aof_rewrite_percentage), cfg.auto_aof_rewrite_min_size)
    };
    let current = p.aof_current_size.load(Ordering::Relaxed);
    if percentage == 0 || current <= min_size {
        return;
    }
    let base = p.aof_base_size.load(Ordering::Relaxed).max(1);
    let growth = i64::try_from(u128::from(current) * 100 / u128::from(base)).unwrap_or(i64::MAX) - 100;
    if growth >= percentage && !limited(&mut ctl.limit, failures, now) {
        crate::notice!("Starting automatic rewriting of AOF on {growth}% growth");
        let _ = start(server, &mut ctl);
    }
}

/// Redis's `aofRewriteLimited`: after [`LIMIT_THRESHOLD`] consecutive failures, an automatic attempt is
/// allowed once every 1, 2, 4 ... [`LIMIT_MAX_MINUTES`] minutes. Fewer failures reset the back-off.
fn limited(limit: &mut Limit, failures: u64, now: i64) -> bool {
    if failures < LIMIT_THRESHOLD {
        *limit = Limit::default();
        return false;
    }
    if let Some(at) = limit.next_at {
        if now < at {
            return true;
        }
        limit.next_at = None;
        return false;
    }
    limit.minutes = if limit.minutes == 0 { 1 } else { (limit.minutes * 2).min(LIMIT_MAX_MINUTES) };
    limit.next_at = Some(now + limit.minutes * 60);
    crate::warning!(
        "Background AOF rewrite has repeatedly failed and triggered the limit, will retry in {} minutes",
        limit.minutes
    );
    true
}

/// Stops the running rewrite if its temp file is gone or was replaced (what killing Redis's child does).
fn check_temp(server: &Server, job: &Running) {
    let Some(&(dev, ino)) = job.ident.get() else { return };
    let same = fs::symlink_metadata(&job.temp).is_ok_and(|m| m.dev() == dev && m.ino() == ino);
    if !same {
        let mut stop = job.stop.lock();
        if stop.is_none() {
            *stop = Some(Stop::TempRemoved);
            server.snapshots.abort(Purpose::AofRewrite, Stop::TempRemoved.reason());
        }
    }
}

/// The settings `CONFIG SET` may change that this module acts on, read before the change.
#[derive(Debug, Clone, Copy)]
pub struct ConfigBefore {
    appendonly: bool,
    disable_auto_gc: bool,
}

pub fn config_before(cfg: &crate::config::Config) -> ConfigBefore {
    ConfigBefore { appendonly: cfg.appendonly, disable_auto_gc: cfg.aof_disable_auto_gc }
}

/// After CONFIG SET: `appendonly` turned on or off, `aof-disable-auto-gc` changed. `Err` is the reply when
/// AOF could not be turned on (the setting is then back to `no`).
pub fn config_changed(server: &Server, before: ConfigBefore) -> Result<(), Reply> {
    let (appendonly, gc) = {
        let cfg = server.config.read();
        (cfg.appendonly, cfg.aof_disable_auto_gc)
    };
    if gc != before.disable_auto_gc {
        set_disable_auto_gc(server, gc);
    }
    if appendonly && !before.appendonly {
        if enable(server).is_err() {
            server.config.write().appendonly = false;
            return Err(Reply::err(CANT_ENABLE));
        }
    } else if !appendonly && before.appendonly {
        disable(server);
    }
    Ok(())
}

fn set_disable_auto_gc(server: &Server, disable: bool) {
    let _ctl = server.aof_rewrite.ctl.lock();
    let mut guard = server.aof_dir.lock();
    let Some(dir) = guard.as_mut() else { return };
    match dir.set_disable_auto_gc(disable) {
        Ok(Some(removed)) => log_history(&removed),
        Ok(None) => {}
        Err(e) => crate::warning!("Can't remove the AOF history files: {e}"),
    }
}

/// `CONFIG SET appendonly yes` (Redis's `startAppendOnly`): WaitRewrite, and a rewrite now, or scheduled when
/// a BGSAVE runs, inside EXEC or while loading. A rewrite running with AOF off is stopped first.
fn enable(server: &Server) -> Result<(), ()> {
    let rw = &server.aof_rewrite;
    let mut ctl = rw.ctl.lock();
    {
        let mut guard = server.aof_dir.lock();
        let dir = open_dir(server, &mut guard).map_err(|e| crate::warning!("Can't enable the AOF: {e}"))?;
        if dir.state() != AofState::Off {
            return Ok(());
        }
        dir.enable().map_err(|e| crate::warning!("Can't enable the AOF: {e}"))?;
    }
    let replaced = kill_running(server, &mut ctl, Stop::Replaced);
    let schedule = |why: &str| {
        server.persist.aof_rewrite_scheduled.store(true, Ordering::Relaxed);
        crate::warning!("{why}");
        Ok(())
    };
    if server.persist.loading.load(Ordering::Acquire) {
        return schedule("AOF was enabled while loading. An AOF background was scheduled to start when possible.");
    }
    if server.snapshots.running().is_some_and(|p| p != Purpose::AofRewrite) {
        return schedule("AOF was enabled but there is already another background operation. An AOF background was scheduled to start when possible.");
    }
    if IN_EXEC.get() {
        return schedule(
            "AOF was enabled during a transaction. An AOF background was scheduled to start when possible.",
        );
    }
    if replaced {
        crate::warning!("AOF was enabled but there is already an AOF rewriting in background. Stopping background AOF and starting a rewrite now.");
        drop(ctl);
        join_thread(server);
        ctl = rw.ctl.lock();
    }
    match start(server, &mut ctl) {
        Ok(()) => Ok(()),
        Err(StartError::Busy) => {
            server.persist.aof_rewrite_scheduled.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(StartError::Failed) => {
            if let Some(dir) = server.aof_dir.lock().as_mut() {
                dir.disable();
            }
            crate::warning!("Moon needs to enable the AOF but can't trigger a background AOF rewrite operation. Check the above logs for more info about the error.");
            Err(())
        }
    }
}

/// `CONFIG SET appendonly no` (Redis's `stopAppendOnly`): stops a running rewrite, flushes, fsyncs and closes
/// the incr, and forgets a scheduled rewrite. No file is deleted, except the temp files of WaitRewrite.
fn disable(server: &Server) {
    let mut ctl = server.aof_rewrite.ctl.lock();
    let killed = kill_running(server, &mut ctl, Stop::Disabled);
    if killed {
        crate::notice!("Killing running AOF rewrite child: {}", std::process::id());
    }
    server.persist.aof_rewrite_scheduled.store(false, Ordering::Relaxed);
    if server.aof.is_on() {
        if let Err(e) = super::stop(server) {
            crate::warning!("Fail to fsync the AOF file: {}", e.reason);
        }
    }
    if let Some(dir) = server.aof_dir.lock().as_mut() {
        dir.disable();
    }
    drop(ctl);
    if killed {
        join_thread(server);
    }
}

/// SHUTDOWN: stops a running rewrite (its temp files are removed) and waits for its thread. Call with no
/// shard held.
pub fn stop_and_wait(server: &Server) {
    let ctl = server.aof_rewrite.ctl.lock();
    if let Some(job) = &ctl.job {
        *job.stop.lock() = Some(Stop::Shutdown);
        server.snapshots.abort(Purpose::AofRewrite, Stop::Shutdown.reason());
        crate::warning!("There is a child rewriting the AOF. Killing it!");
    }
    drop(ctl);
    join_thread(server);
}

/// Whether the first rewrite after `CONFIG SET appendonly yes` is running: until it ends nothing of the
/// dataset is in the AOF, so a shutdown now (with `appendonly yes` in the config file) would restart empty.
/// Redis refuses SHUTDOWN then ("Writing initial AOF, can't exit."), unless FORCE ("Writing initial AOF.
/// Exit anyway.").
pub fn writing_initial_aof(server: &Server) -> bool {
    let ctl = server.aof_rewrite.ctl.lock();
    ctl.job.is_some() && server.aof_dir.lock().as_ref().is_some_and(|d| d.state() == AofState::WaitRewrite)
}

/// Detaches the running rewrite and stops it (not a failure: its thread only lets go of the snapshot).
/// Returns whether one was running.
fn kill_running(server: &Server, ctl: &mut Ctl, stop: Stop) -> bool {
    let Some(job) = ctl.job.take() else { return false };
    *job.stop.lock() = Some(stop);
    server.snapshots.abort(Purpose::AofRewrite, stop.reason());
    let p = &server.persist;
    p.aof_rewrite_started.store(0, Ordering::Relaxed);
    p.current_save_keys_processed.store(0, Ordering::Relaxed);
    p.current_save_keys_total.store(0, Ordering::Relaxed);
    true
}

/// Waits for the rewrite thread, unless this thread runs a command in EXEC (its shards would be needed).
fn join_thread(server: &Server) {
    if IN_EXEC.get() {
        return;
    }
    let handle = server.aof_rewrite.thread.lock().take();
    if let Some(h) = handle {
        let _ = h.join();
    }
}

/// The server's `AofDir`, opened from the configuration if nothing opened it yet (AOF never on).
fn open_dir<'a>(server: &Server, guard: &'a mut Option<AofDir>) -> Result<&'a mut AofDir, DirError> {
    let dir = match guard.take() {
        Some(dir) => dir,
        None => {
            let cfg = server.config.read();
            let paths = AofPaths::new(cfg.dir.clone(), cfg.appenddirname.as_bytes(), cfg.appendfilename.as_bytes())?;
            AofDir::open(paths, AofOptions { disable_auto_gc: cfg.aof_disable_auto_gc })?
        }
    };
    Ok(guard.insert(dir))
}

/// Redis's `rewriteAppendOnlyFileBackground`, as far as the caller sees it: checks what can be checked
/// at once, marks the rewrite as in progress and starts its thread, which does the file work and takes the
/// cut ([`begin`]). Call with the control lock held and no shard.
fn start(server: &Server, ctl: &mut Ctl) -> Result<(), StartError> {
    let Some(me) = server.arc() else { return Err(StartError::Failed) };
    if snapshot_running(server).is_some() {
        return Err(StartError::Busy);
    }
    let temp = {
        let mut guard = server.aof_dir.lock();
        let dir = open_dir(server, &mut guard).map_err(|e| {
            crate::warning!("Can't rewrite append only file in background: {e}");
            StartError::Failed
        })?;
        if dir.is_poisoned() {
            crate::warning!(
                "Can't rewrite append only file in background: the AOF directory {} is in an unknown state after a failed directory fsync; restart the server",
                dir.paths().aof_dir().display()
            );
            return Err(StartError::Failed);
        }
        dir.paths().rewrite_temp_path(std::process::id())
    };
    let settings = job::Settings::read(server);
    let running = Arc::new(Running { temp, ident: OnceLock::new(), stop: Mutex::new(None) });
    let p = &server.persist;
    p.aof_rewrite_started.store(unix_ms().max(1), Ordering::Relaxed);
    p.aof_rewrites.fetch_add(1, Ordering::Relaxed);
    p.aof_rewrite_scheduled.store(false, Ordering::Relaxed);
    p.current_save_keys_processed.store(0, Ordering::Relaxed);
    server.aof_rewrite.starting.fetch_add(1, Ordering::AcqRel);
    let job = running.clone();
    match std::thread::Builder::new().name("moon-aofrw".into()).spawn(move || job::rewrite_main(me, job, settings)) {
        Ok(handle) => {
            // A finished thread's handle is simply replaced.
            *server.aof_rewrite.thread.lock() = Some(handle);
            ctl.job = Some(running);
            crate::notice!(
                "Background append only file rewriting started by pid {} (thread moon-aofrw)",
                std::process::id()
            );
            Ok(())
        }
        Err(e) => {
            server.aof_rewrite.starting.fetch_sub(1, Ordering::AcqRel);
            p.aof_rewrite_started.store(0, Ordering::Relaxed);
            p.aof_last_bgrewrite_ok.store(false, Ordering::Relaxed);
            crate::warning!("Can't rewrite append only file in background: thread: {e}");
            Err(StartError::Failed)
        }
    }
}

/// The purpose of the running snapshot, counting a rewrite that was started and has not taken its cut yet
/// (BGSAVE must find it running at once, as Redis finds its child).
pub fn snapshot_running(server: &Server) -> Option<Purpose> {
    server
        .snapshots
        .running()
        .or_else(|| (server.aof_rewrite.starting.load(Ordering::Acquire) > 0).then_some(Purpose::AofRewrite))
}

fn log_history(removed: &HistoryRemoval) {
    for name in &removed.removed {
        crate::notice!("Removing the history file {} in the background", String::from_utf8_lossy(name));
    }
    for (name, e) in &removed.failed {
        crate::warning!("Can't remove the history file {}: {}", String::from_utf8_lossy(name), super::strerror(e));
    }
}

#[path = "rewrite_job.rs"]
mod job;

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
