//! BGSAVE on a fork-less snapshot (`snapshot`), the `save <seconds> <changes>` rules, and the refusals
//! persistence imposes on commands: `-LOADING` while a dataset loads, `-MISCONF` after a failed background
//! save (`stop-writes-on-bgsave-error`) or AOF write.
//!
//! A BGSAVE takes its point-in-time cut before it replies (`+Background saving started`), then a thread
//! (`moon-bgsave`) walks the snapshot into `temp-bg-<pid>.rdb` in `dir`, fsyncs it, renames it over
//! `dbfilename` and fsyncs the directory, as SAVE does. Redis's child writes `temp-<childpid>.rdb`; Moon has
//! no child, and a synchronous save (SHUTDOWN, DEBUG RELOAD, FLUSHALL with save points) can run in the same
//! process while the thread still writes, with `temp-<pid>.rdb`: the `bg` keeps the two files apart, and
//! tells an operator which kind of save left a stray temp file behind.
//!
//! FLUSHALL during a BGSAVE stops it, as Redis kills its child (status stays `ok`, the dirty counter is not
//! reset): the snapshot would stay correct across FLUSHALL, but keeping it means serialising every key not
//! yet written while FLUSHALL holds every shard, and with save points FLUSHALL then saves the empty
//! dataset synchronously anyway, which makes the old snapshot useless.

use crate::client::Client;
use crate::server::{unix_ms, Server};
use crate::shards::LockedShards;
use crate::snapshot::{self, Purpose, RdbEntries, SnapshotError};
use bytes::Bytes;
use engine::cmd::spec::flags;
use engine::cmd::CommandSpec;
use engine::rdb::{RdbEncoder, RdbStream};
use engine::resp::Reply;
use engine::util::eq_ic;
use parking_lot::{Mutex, MutexGuard};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Seconds before a failed background save is retried by the save rules or a scheduled BGSAVE (Redis's
/// `CONFIG_BGSAVE_RETRY_DELAY`).
const RETRY_DELAY_SECS: i64 = 5;
/// fsync the file every so many bytes while writing (Redis's `rdb-save-incremental-fsync`, 4 MB), so the
/// final fsync does not have to push the whole file at once.
const INCREMENTAL_FSYNC_BYTES: u64 = 4 << 20;

pub const LOADING: &str = "LOADING Redis is loading the dataset in memory";
pub const MISCONF_RDB: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// BGSAVE's state (the rest is in `Server::persist` and `Server::snapshots`).
#[derive(Default)]
pub struct BgSave {
    /// A BGSAVE waits for the running snapshot to end (Redis's `rdb_bgsave_scheduled`).
    scheduled: AtomicBool,
    /// Unix seconds of the last attempt (`lastbgsave_try`), for the retry delay.
    last_try: AtomicI64,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Every rename over `dbfilename` happens under this lock (see `persist::commit`).
    rename: Mutex<()>,
}

impl BgSave {
    pub fn rename_lock(&self) -> MutexGuard<'_, ()> {
        self.rename.lock()
    }
}

/// BGSAVE [SCHEDULE]. `in_exec`: queued in MULTI, where Redis always schedules.
pub fn command(server: &Server, a: &[Bytes], in_exec: bool) -> Reply {
    let schedule = match a.len() {
        1 => false,
        2 if eq_ic(&a[1], "schedule") => true,
        _ => return Reply::err(engine::cmd::errors::SYNTAX),
    };
    match crate::aof::rewrite::snapshot_running(server) {
        Some(Purpose::RdbSave) => return Reply::err("ERR Background save already in progress"),
        Some(_) if !(schedule || in_exec) => {
            return Reply::err("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.")
        }
        Some(_) => return schedule_bgsave(server),
        // EXEC holds shards, so the cut can't be taken here: the cron starts it right after.
        None if in_exec => return schedule_bgsave(server),
        None => {}
    }
    match start(server) {
        Ok(()) => Reply::Simple("Background saving started".into()),
        Err(_) => Reply::err("ERR"),
    }
}

fn schedule_bgsave(server: &Server) -> Reply {
    server.bgsave.scheduled.store(true, Ordering::Relaxed);
    Reply::Simple("Background saving scheduled".into())
}

/// Whether a BGSAVE is scheduled (for an AOF rewrite deciding whether to go first, as Redis's cron does).
#[allow(dead_code)] // the AOF rewrite's cron will ask
pub fn is_scheduled(server: &Server) -> bool {
    server.bgsave.scheduled.load(Ordering::Relaxed)
}

/// Takes the point-in-time cut and starts the thread that writes it. `Err` when another snapshot runs or
/// the thread can't start (then logged, and the save counts as failed, as Redis's failed fork).
pub fn start(server: &Server) -> Result<(), ()> {
    let Some(me) = server.arc() else { return Err(()) };
    server.bgsave.last_try.store(unix_ms() / 1000, Ordering::Relaxed);
    let opts = crate::persist::write_options(server);
    let delay = key_delay(server, "rdb-key-save-delay");
    let snap = snapshot::begin(&me, Purpose::RdbSave, Box::new(RdbEntries::new(opts.clone()))).map_err(|_| ())?;
    let p = &server.persist;
    p.rdb_bgsave_started.store(unix_ms().max(1), Ordering::Relaxed);
    p.current_save_keys_total.store(snap.keys_total, Ordering::Relaxed);
    p.current_save_keys_processed.store(0, Ordering::Relaxed);
    p.rdb_saves.fetch_add(1, Ordering::Relaxed);
    let job = Job {
        dir: crate::persist::rdb_dir(server),
        target: crate::persist::rdb_path(server),
        encoder: RdbEncoder::new(opts),
        delay,
    };
    let thread = std::thread::Builder::new().name("moon-bgsave".into()).spawn(move || job.run(me, snap));
    match thread {
        Ok(h) => {
            // A finished thread's handle is simply replaced; SHUTDOWN joins the current one.
            *server.bgsave.thread.lock() = Some(h);
            crate::notice!("Background saving started by pid {} (thread moon-bgsave)", std::process::id());
            Ok(())
        }
        Err(e) => {
            // The closure, with the snapshot, was dropped: its tables are released already.
            p.rdb_bgsave_started.store(0, Ordering::Relaxed);
            p.rdb_last_bgsave_ok.store(false, Ordering::Relaxed);
            crate::warning!("Can't save in background: thread: {e}");
            Err(())
        }
    }
}

/// A hidden delay setting (`rdb-key-save-delay`, `key-load-delay`) in microseconds per key.
pub fn key_delay(server: &Server, name: &str) -> i64 {
    server.config.read().compat_value(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// One background save's file side.
struct Job {
    dir: PathBuf,
    target: PathBuf,
    encoder: RdbEncoder,
    delay: i64,
}

impl Job {
    fn run(self, server: Arc<Server>, mut snap: snapshot::Snapshot) {
        let started = Instant::now();
        let temp = self.dir.join(format!("temp-bg-{}.rdb", std::process::id()));
        let result = self.write(&server, &mut snap, &temp);
        let p = &server.persist;
        match result {
            Ok(()) => {
                crate::notice!("DB saved on disk");
                let before = snap.dirty_at_begin;
                let _ =
                    server.dirty.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| Some(d.saturating_sub(before)));
                server.lastsave.store(unix_ms() / 1000, Ordering::Relaxed);
                p.rdb_last_bgsave_ok.store(true, Ordering::Relaxed);
                crate::notice!("Background saving terminated with success");
            }
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                match e {
                    // Stopped on purpose: like Redis's SIGUSR1 to its child, not an error.
                    Failure::Aborted(why) => crate::warning!("Background saving terminated by {why}"),
                    Failure::Error(msg) => {
                        crate::warning!("{msg}");
                        crate::warning!("Background saving error");
                        p.rdb_last_bgsave_ok.store(false, Ordering::Relaxed);
                    }
                }
            }
        }
        let secs = started.elapsed().as_secs() as i64;
        snap.release(|| {
            p.rdb_last_bgsave_time_sec.store(secs, Ordering::Relaxed);
            p.current_save_keys_processed.store(0, Ordering::Relaxed);
            p.current_save_keys_total.store(0, Ordering::Relaxed);
            p.rdb_bgsave_started.store(0, Ordering::Relaxed);
        });
    }

    fn write(&self, server: &Server, snap: &mut snapshot::Snapshot, temp: &Path) -> Result<(), Failure> {
        let file = File::create(temp).map_err(|e| Failure::Error(crate::persist::open_error(temp, &e)))?;
        let write_err =
            |e: io::Error| Failure::Error(format!("Write error saving DB on disk: {}", crate::persist::io_text(&e)));
        let mut out = RdbStream::new(SyncEvery { file, unsynced: 0 }, self.encoder.opts().checksum);
        let mut header = Vec::new();
        self.encoder.header(&mut header, false);
        out.write_all(&header).map_err(write_err)?;
        let progress = |n: u64| server.persist.current_save_keys_processed.store(n, Ordering::Relaxed);
        match snap.run(&mut out, self.delay, &progress) {
            Ok(()) => {}
            Err(SnapshotError::Aborted(why)) => return Err(Failure::Aborted(why)),
            Err(SnapshotError::Io(e)) => return Err(write_err(e)),
            Err(e @ SnapshotError::Lost) => return Err(Failure::Error(format!("Background save failed: {e}"))),
        }
        let file = out.finish().map_err(write_err)?.file;
        file.sync_all().map_err(write_err)?;
        drop(file);
        crate::testhook::pause("bgsave-temp-synced");
        let superseded = std::cell::Cell::new(None);
        let committed = crate::persist::commit(server, temp, &self.target, || {
            superseded.set(snap.aborted());
            superseded.get().is_none()
        });
        match (committed, superseded.get()) {
            (_, Some(why)) => Err(Failure::Aborted(why)),
            (Ok(()), None) => Ok(()),
            // The rename failed when the temp file is still there; otherwise the directory fsync did.
            (Err(e), None) if temp.exists() => Err(Failure::Error(format!(
                "Error moving temp DB file {} on the final destination {} (in server root dir {}): {}",
                temp.display(),
                self.target.display(),
                self.dir.display(),
                crate::persist::io_text(&e)
            ))),
            (Err(e), None) => Err(Failure::Error(format!(
                "Failed to fsync directory while saving DB: {}",
                crate::persist::io_text(&e)
            ))),
        }
    }
}

enum Failure {
    Aborted(&'static str),
    Error(String),
}

/// A file that is fsynced every [`INCREMENTAL_FSYNC_BYTES`] as it is written.
struct SyncEvery {
    file: File,
    unsynced: u64,
}

impl Write for SyncEvery {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n as u64;
        if self.unsynced >= INCREMENTAL_FSYNC_BYTES {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Stops a running BGSAVE and waits for its thread (SHUTDOWN, which then saves synchronously). Call with
/// no shard held: the thread needs the shards to let go of the tables.
pub fn stop_and_wait(server: &Server) {
    if server.snapshots.abort(Purpose::RdbSave, "shutdown") {
        crate::warning!("There is a child saving an .rdb. Killing it!");
    }
    let handle = server.bgsave.thread.lock().take();
    if let Some(h) = handle {
        let _ = h.join();
    }
}

/// The cron's share (one thread): a scheduled BGSAVE, else the save points, as Redis's `serverCron`.
pub fn cron(server: &Server) {
    if server.persist.loading.load(Ordering::Acquire) || server.snapshots.running().is_some() {
        return;
    }
    let now = unix_ms() / 1000;
    let retry_ok = now - server.bgsave.last_try.load(Ordering::Relaxed) > RETRY_DELAY_SECS
        || server.persist.rdb_last_bgsave_ok.load(Ordering::Relaxed);
    if !retry_ok {
        return;
    }
    if server.bgsave.scheduled.load(Ordering::Relaxed) {
        if start(server).is_ok() {
            server.bgsave.scheduled.store(false, Ordering::Relaxed);
        }
        return;
    }
    let dirty = server.dirty.load(Ordering::Relaxed);
    let since = now - server.lastsave.load(Ordering::Relaxed);
    let rule = server.config.read().save.iter().copied().find(|r| dirty >= r.changes && since > r.seconds as i64);
    if let Some(r) = rule {
        crate::notice!("{} changes in {} seconds. Saving...", r.changes, r.seconds);
        let _ = start(server);
    }
}

/// FLUSHALL just ran with `view` holding every shard: with save points, save the empty dataset at once, as
/// Redis does, so a restart can't bring the flushed keys back. Its dirty count is reset by the save.
pub fn after_flushall(server: &Server, view: &LockedShards<'_>) {
    if !server.config.read().save.is_empty() {
        let _ = crate::persist::save_locked(server, view);
    }
}

/// The refusals persistence imposes, checked by `dispatch` before a command runs or is queued: `-LOADING`,
/// `-MISCONF` (for EXEC, the transaction is discarded with `-EXECABORT`, as Redis), and FLUSHALL stopping
/// a running BGSAVE before it clears the tables.
pub fn refusal(server: &Server, client: &mut Client, spec: &CommandSpec, args: &[Bytes]) -> Option<Reply> {
    if let Some(msg) = disk_error(server) {
        let writes =
            spec.is_write() || spec.name == "ping" || (spec.name == "exec" && queued(client).any(|s| s.is_write()));
        if writes {
            if spec.name == "exec" && client.multi.take().is_some() {
                crate::dispatch::unwatch(server, client);
                return Some(Reply::err(format!("EXECABORT Transaction discarded because of: {msg}")));
            }
            return Some(Reply::err(msg));
        }
    }
    if server.persist.loading.load(Ordering::Acquire) && !allowed_while_loading(spec, args) {
        return Some(Reply::err(LOADING));
    }
    let flushall = match spec.name {
        "flushall" => client.multi.is_none(),
        "exec" => queued(client).any(|s| s.name == "flushall"),
        _ => false,
    };
    if flushall && server.snapshots.abort(Purpose::RdbSave, "FLUSHALL") {
        crate::notice!("Background saving stopped by FLUSHALL");
    }
    None
}

/// The specs of the commands queued in the client's MULTI.
fn queued(client: &Client) -> impl Iterator<Item = &'static CommandSpec> + '_ {
    client.multi.iter().flatten().filter_map(|a| engine::cmd::lookup(&a[0]))
}

/// Why writes are refused now, if they are (Redis's `writeCommandsDeniedByDiskError`). Two atomic loads
/// when all is well.
fn disk_error(server: &Server) -> Option<String> {
    let p = &server.persist;
    let rdb_failed = !p.rdb_last_bgsave_ok.load(Ordering::Relaxed);
    let aof_failed = !p.aof_last_write_ok.load(Ordering::Relaxed);
    if !rdb_failed && !aof_failed {
        return None;
    }
    let cfg = server.config.read();
    if rdb_failed && cfg.stop_writes_on_bgsave_error && !cfg.save.is_empty() {
        return Some(MISCONF_RDB.into());
    }
    if aof_failed && cfg.appendonly {
        return Some(format!("MISCONF Errors writing to the AOF file: {}", p.aof_last_write_error.lock()));
    }
    None
}

/// Redis 7.0's `loading` flag: whether the command may run while the dataset loads. The command table
/// carries it for plain commands; for these containers it depends on the subcommand.
fn allowed_while_loading(spec: &CommandSpec, args: &[Bytes]) -> bool {
    if spec.has(flags::LOADING) {
        return true;
    }
    match spec.name {
        // Redis flags ECHO `loading`; Moon's table does not.
        "echo" => true,
        // Every CLIENT and PUBSUB subcommand is `loading`.
        "client" | "pubsub" => true,
        "memory" | "object" => args.get(1).is_some_and(|s| eq_ic(s, "help")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> &'static CommandSpec {
        engine::cmd::lookup(name.as_bytes()).unwrap()
    }

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    /// As `COMMAND INFO` of redis-server 7.0.15 reports the `loading` flag.
    #[test]
    fn loading_flag_as_redis() {
        for (line, ok) in [
            ("info", true),
            ("ping", false),
            ("get a", false),
            ("set a b", false),
            ("select 1", true),
            ("echo x", true),
            ("client id", true),
            ("config get save", true),
            ("memory usage a", false),
            ("memory help", true),
            ("object encoding a", false),
            ("dbsize", false),
            ("lastsave", true),
            ("bgsave", false),
            ("save", false),
            ("shutdown", true),
            ("multi", true),
            ("exec", true),
            ("auth x", true),
        ] {
            let a = args(line);
            assert_eq!(allowed_while_loading(spec(line.split(' ').next().unwrap()), &a), ok, "{line}");
        }
    }
}
