//! The AOF at start-up, at DEBUG LOADAOF and at exit, in Redis 7.0's order (FORMATS.md §1.4-§1.5, §2):
//!
//! 1. [`start`] (main thread, before any client is accepted), with `appendonly yes`: take the directory's
//!    advisory lock (another Moon on the same AOF is refused), read the manifest, migrate a legacy
//!    `appendonly.aof`, list the files to load. A bad manifest or a missing file stops start-up here.
//! 2. Loading (a thread, while clients get `-LOADING` exactly as during an RDB load): the base decoded
//!    straight into the shards, the incr files replayed through the dispatcher (`replay`), a torn tail of
//!    the last file cut under `aof-load-truncated yes`. With AOF on, `dump.rdb` is never read.
//! 3. Then, still before the `loading` flag drops: create the first base on a fresh start, open (or create)
//!    the last incr, persist the manifest, remove history files, and start the write pipeline on that incr
//!    ([`crate::aof::start`]). The [`AofDir`] is kept in `Server::aof_dir` for rewrites and CONFIG SET.
//!
//! [`debug_loadaof`] is DEBUG LOADAOF; [`close_for_exit`] is the last step of SHUTDOWN / SIGTERM.
//!
//! Lock order: the shards (`lock_all`) before `Server::aof_dir`.

use super::replay;
use crate::server::Server;
use engine::aof::dir::{AofDir, AofOptions, AofPaths, AofState, DirError, LoadPlan, LoadStatus};
use engine::aof::lock::AofLock;
use engine::aof::manifest::{AofKind, BaseFormat};
use engine::aof::RecoveryPolicy;
use engine::rdb::{RdbWriter, WriteOptions};
use engine::resp::Reply;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// A start-up load of the AOF in progress (see [`start`]).
pub struct AofLoading {
    thread: crate::loading::LoaderThread<Result<(), String>>,
}

impl AofLoading {
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits up to `timeout` for the load to end.
    pub fn wait(&self, timeout: std::time::Duration) {
        self.thread.wait(timeout);
    }

    /// Waits for the load. On success the pipeline is on and the `loading` flag drops; on failure the flag
    /// stays up (the server exits) and the fatal error's text is returned.
    pub fn finish(self, server: &Server) -> Result<(), String> {
        match self.thread.join() {
            Ok(Ok(())) => {
                crate::persist::set_loading(server, None);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err("Fatal error loading the append only file: the loader panicked. Exiting.".into()),
        }
    }
}

/// The AOF's paths from the configuration.
fn paths(server: &Server) -> Result<AofPaths, String> {
    let cfg = server.config.read();
    AofPaths::new(cfg.dir.clone(), cfg.appenddirname.as_bytes(), cfg.appendfilename.as_bytes())
        .map_err(|e| e.to_string())
}

fn options(server: &Server) -> AofOptions {
    AofOptions { disable_auto_gc: server.config.read().aof_disable_auto_gc }
}

fn policy(server: &Server) -> RecoveryPolicy {
    if server.config.read().aof_load_truncated {
        RecoveryPolicy::TruncateTornTail
    } else {
        RecoveryPolicy::Strict
    }
}

/// A directory error as start-up reports it: a bad manifest gets Redis's FATAL block in the log.
fn dir_error(e: DirError) -> String {
    if let DirError::Manifest { error, .. } = &e {
        for line in error.log_lines() {
            crate::warning!("{line}");
        }
    }
    e.to_string()
}

/// Start-up with `appendonly yes` (nothing otherwise): steps 1-3 of the module docs. When there is data
/// to load, raises the `loading` flag and returns the running load; the caller finishes it before saying
/// "Ready to accept connections". An empty or missing AOF is set up before returning.
pub fn start(server: &Arc<Server>) -> anyhow::Result<Option<AofLoading>> {
    if !server.config.read().appendonly {
        return Ok(None);
    }
    let paths = paths(server).map_err(anyhow::Error::msg)?;
    let lock =
        AofLock::acquire(&paths, "moon-server").map_err(|e| anyhow::anyhow!("Can't start with appendonly yes: {e}"))?;
    *server.aof_lock.lock() = Some(lock);
    let mut dir = AofDir::open(paths, options(server)).map_err(|e| anyhow::Error::msg(dir_error(e)))?;
    if let Some(up) = dir.upgrade_legacy().map_err(|e| anyhow::Error::msg(dir_error(e)))? {
        crate::notice!("{}", up.log_line());
    }
    let plan = dir.load_plan().map_err(|e| anyhow::Error::msg(dir_error(e)))?;
    if plan.status() != LoadStatus::Data {
        load_and_open(server, dir, plan, Instant::now()).map_err(anyhow::Error::msg)?;
        return Ok(None);
    }
    raise_loading(server, plan.total_size());
    let srv = server.clone();
    let started = Instant::now();
    let thread =
        crate::loading::LoaderThread::spawn("moon-aof-loader", move || load_and_open(&srv, dir, plan, started))?;
    Ok(Some(AofLoading { thread }))
}

/// Raises the `loading` flag for `total` bytes of AOF files.
fn raise_loading(server: &Server, total: u64) {
    let p = &server.persist;
    p.loading_total_bytes.store(total, Ordering::Relaxed);
    p.loading_loaded_bytes.store(0, Ordering::Relaxed);
    p.loading_started.store(crate::server::unix_ms(), Ordering::Relaxed);
    p.loading.store(true, Ordering::Release);
}

/// Loads the plan's files, then opens the AOF for appending and starts the pipeline (steps 2-3).
fn load_and_open(server: &Server, mut dir: AofDir, plan: LoadPlan, started: Instant) -> Result<(), String> {
    if plan.status() == LoadStatus::Data {
        replay::load_files(server, &plan.files, policy(server), None)?;
    }
    if plan.status() != LoadStatus::NotExist {
        crate::notice!("DB loaded from append only file: {:.3} seconds", started.elapsed().as_secs_f64());
    }
    open_and_start(server, &mut dir)?;
    *server.aof_dir.lock() = Some(dir);
    Ok(())
}

/// Redis's `aofOpenIfNeededOnServerStart` and `aofDelHistoryFiles`, then the pipeline on the last incr.
fn open_and_start(server: &Server, dir: &mut AofDir) -> Result<(), String> {
    let (format, timestamps) = {
        let cfg = server.config.read();
        (if cfg.aof_use_rdb_preamble { BaseFormat::Rdb } else { BaseFormat::Resp }, cfg.aof_timestamp_enabled)
    };
    let wopts = crate::persist::write_options(server);
    let opened =
        dir.open_on_start(format, |f| write_empty_base(f, format, &wopts, timestamps)).map_err(|e| e.to_string())?;
    if let Some(b) = &opened.created_base {
        crate::notice!("Creating AOF base file {} on server start", b.name_lossy());
    }
    let incr_name = String::from_utf8_lossy(&opened.incr.name).into_owned();
    if opened.incr.created {
        crate::notice!("Creating AOF incr file {incr_name} on server start");
    } else {
        crate::notice!("Opening AOF incr file {incr_name} on server start");
    }
    remove_history(dir);
    let (base, others) = sizes(dir, &opened.incr.name);
    server.persist.aof_base_size.store(base, Ordering::Relaxed);
    crate::aof::start(server, opened.incr.file, others)
        .map_err(|e| format!("Can't start appending to the AOF file {incr_name}: {}", crate::aof::strerror(&e)))
}

/// A fresh start's base: an empty dataset, as an RDB marked `aof-base` or as RESP (nothing, or the
/// `#TS:` annotation Redis puts first when timestamps are on).
fn write_empty_base(f: &mut File, format: BaseFormat, opts: &WriteOptions, timestamps: bool) -> std::io::Result<()> {
    match format {
        BaseFormat::Rdb => {
            let mut w = RdbWriter::new(BufWriter::new(f), opts.clone());
            w.write_header(true)?;
            w.finish()?.flush()
        }
        BaseFormat::Resp if timestamps => write!(f, "#TS:{}\r\n", crate::server::unix_ms() / 1000),
        BaseFormat::Resp => Ok(()),
    }
}

/// Deletes history files (unless `aof-disable-auto-gc`); failures are logged, not fatal.
fn remove_history(dir: &mut AofDir) {
    match dir.remove_history() {
        Ok(r) => {
            for name in &r.removed {
                crate::notice!("Removing the history file {} in the background", String::from_utf8_lossy(name));
            }
            for (name, e) in &r.failed {
                crate::warning!("Can't remove the history file {}: {}", String::from_utf8_lossy(name), e);
            }
        }
        Err(e) => crate::warning!("Can't remove the AOF history files: {e}"),
    }
}

/// The base's size, and the size of every file of the AOF but the open incr (`aof_current_size` counts
/// those plus what the pipeline appends).
fn sizes(dir: &AofDir, open_incr: &[u8]) -> (u64, u64) {
    let (mut base, mut others) = (0, 0);
    for info in dir.manifest().files_to_load() {
        let size = std::fs::metadata(dir.paths().file_path(&info.name)).map_or(0, |m| m.len());
        if info.kind == AofKind::Base {
            base = size;
        }
        if info.name != open_incr {
            others += size;
        }
    }
    (base, others)
}

/// DEBUG LOADAOF, as Redis 7.0: flush the AOF, empty the dataset, read the manifest again, remove history
/// files, load every file; reopen the last incr when the AOF is on. As in Redis, a load that fails (or a
/// manifest naming no file) ends the process with exit code 1. Moon refuses while a rewrite is pending
/// (its files would change under the load).
pub fn debug_loadaof(server: &Server) -> Reply {
    let mut view = server.shards.lock_all();
    let mut guard = server.aof_dir.lock();
    if let Some(d) = guard.as_ref() {
        if d.rewrite_in_progress().is_some() || d.state() == AofState::WaitRewrite {
            return Reply::err("ERR Background append only file rewriting in progress, try DEBUG LOADAOF later");
        }
    }
    let was_on = server.aof.is_on();
    if was_on {
        if let Err(e) = crate::aof::stop(server) {
            die(&format!("DEBUG LOADAOF: flushing the AOF failed: {e}"));
        }
    }
    crate::persist::flush_locked(&mut view);
    let mut fresh = None;
    let dir = match guard.as_mut() {
        Some(d) => {
            d.reload().unwrap_or_else(|e| die(&dir_error(e)));
            d
        }
        None => {
            let paths = paths(server).unwrap_or_else(|e| die(&e));
            fresh.insert(AofDir::open(paths, options(server)).unwrap_or_else(|e| die(&dir_error(e))))
        }
    };
    remove_history(dir);
    let plan = dir.load_plan().unwrap_or_else(|e| die(&dir_error(e)));
    if plan.status() == LoadStatus::NotExist {
        die("DEBUG LOADAOF: the AOF manifest lists no file to load");
    }
    raise_loading(server, plan.total_size());
    let loaded = replay::load_files(server, &plan.files, policy(server), Some(&mut view)).unwrap_or_else(|e| die(&e));
    if let Some(t) = &loaded.torn {
        // Redis treats a truncated load here as a failure too.
        die(&format!("DEBUG LOADAOF: the AOF file {} had a torn tail (truncated at offset {})", t.name, t.offset));
    }
    if was_on {
        open_and_start(server, dir).unwrap_or_else(|e| die(&e));
    }
    crate::persist::set_loading(server, None);
    server.dirty.store(0, Ordering::Relaxed);
    drop(guard);
    drop(view);
    let mut client = loaded.client;
    if !client.ready_keys.is_empty() {
        crate::blocking::serve_ready(server, &mut client);
    }
    crate::warning!("Append Only File loaded by DEBUG LOADAOF");
    Reply::ok()
}

/// Logs `msg` and exits with code 1 (what Redis does when DEBUG LOADAOF cannot load).
fn die(msg: &str) -> ! {
    crate::warning!("{msg}");
    std::process::exit(1)
}

/// The AOF's part of the shutdown, after the final RDB save: every shard is taken and never given back
/// (the process is about to exit, and no write may run once the file is closed: it would be acknowledged
/// and lost), then the pipeline flushes, fsyncs and closes the incr file. A failure is logged, as Redis
/// does ("Fail to fsync the AOF file"), and the shutdown goes on.
pub fn close_for_exit(server: &Server) {
    let view = server.shards.lock_all();
    if server.aof.is_on() {
        crate::notice!("Calling fsync() on the AOF file.");
        if let Err(e) = crate::aof::stop(server) {
            crate::warning!("Fail to fsync the AOF file: {e}.");
        }
    }
    std::mem::forget(view);
}
