//! Synchronous RDB persistence: SAVE (and the save SHUTDOWN and DEBUG RELOAD do) writes `<dir>/<dbfilename>`
//! through the engine's [`engine::rdb`] writer; start-up and DEBUG RELOAD load it back straight into the
//! shards (loading is not replay, DESIGN.md §4).
//!
//! A save is atomic: `temp-<pid>.rdb` in the working directory (the server chdirs into `dir` at start) is
//! written, fsynced, renamed over `dbfilename`, then the directory is fsynced. A crash at any step leaves
//! either the old file or the new one, plus at worst a stray temp file.

use crate::server::{unix_ms, Server};
use crate::shards::LockedShards;
use engine::keyspace::{Db, Store};
use engine::rdb::{self, ErrorKind, LoadOptions, LoadReport, LoadTarget, RdbError, WriteOptions};
use engine::resp::Reply;
use engine::types::Value;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The RDB file, relative to the working directory (`dir`).
pub fn rdb_path(server: &Server) -> PathBuf {
    PathBuf::from(&server.config.read().dbfilename)
}

/// SAVE: writes the RDB with every shard locked. Replies `+OK`, or `-ERR` as Redis does when the save fails.
pub fn save_command(server: &Server) -> Reply {
    match save_rdb(server) {
        Ok(()) => Reply::ok(),
        Err(_) => Reply::err("ERR"),
    }
}

/// Locks every shard and saves. The error is the text already logged.
pub fn save_rdb(server: &Server) -> Result<(), String> {
    let view = server.shards.lock_all();
    save_locked(server, &view)
}

/// Saves the dataset held by `view` (every shard) to `dbfilename`, and on success updates LASTSAVE, the
/// dirty counter and INFO persistence.
pub fn save_locked(server: &Server, view: &LockedShards<'_>) -> Result<(), String> {
    let (target, opts) = {
        let cfg = server.config.read();
        let opts = WriteOptions {
            compression: cfg.rdbcompression,
            checksum: cfg.rdbchecksum,
            list_max_listpack_size: server.engine_cfg.read().list_max_listpack_size,
            ..WriteOptions::default()
        };
        (PathBuf::from(&cfg.dbfilename), opts)
    };
    let temp = PathBuf::from(format!("temp-{}.rdb", std::process::id()));
    let file = match File::create(&temp) {
        Ok(f) => f,
        Err(e) => {
            let cwd = std::env::current_dir().map_or_else(|_| "unknown".into(), |d| d.display().to_string());
            let msg = format!(
                "Failed opening the temp RDB file {} (in server root dir {cwd}) for saving: {}",
                temp.display(),
                io_text(&e)
            );
            crate::warning!("{msg}");
            return Err(msg);
        }
    };
    if let Err(e) = write_and_rename(view, file, &temp, &target, &opts) {
        let _ = std::fs::remove_file(&temp);
        let msg = format!("Write error saving DB on disk: {}", io_text(&e));
        crate::warning!("{msg}");
        return Err(msg);
    }
    crate::notice!("DB saved on disk");
    server.dirty.store(0, Ordering::Relaxed);
    server.lastsave.store(unix_ms() / 1000, Ordering::Relaxed);
    server.persist.rdb_saves.fetch_add(1, Ordering::Relaxed);
    server.persist.rdb_last_bgsave_ok.store(true, Ordering::Relaxed);
    Ok(())
}

/// An I/O error as Redis prints it (`strerror`), without Rust's " (os error N)".
fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn write_and_rename(
    view: &LockedShards<'_>,
    file: File,
    temp: &Path,
    target: &Path,
    opts: &WriteOptions,
) -> std::io::Result<()> {
    let out = rdb::save_store(view, BufWriter::new(file), opts, false)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(temp, target)?;
    // The rename is durable only once the directory entry is.
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// Routes loaded keys into the shard that owns them.
struct ShardLoader<'v, 'a> {
    view: &'v mut LockedShards<'a>,
    /// DEBUG RELOAD MERGE: a key already present is replaced instead of being an error.
    merge: bool,
}

impl LoadTarget for ShardLoader<'_, '_> {
    fn resize(&mut self, db: usize, keys: u64, _expires: u64) {
        if db >= self.view.num_dbs() {
            return;
        }
        let shards = self.view.shard_count();
        let per_shard = (keys as usize).div_ceil(shards);
        for s in 0..shards {
            let d = self.view.shard_db(s, db);
            if d.is_empty() {
                *d = Db::with_capacity(per_shard);
            }
        }
    }

    fn insert(&mut self, db: usize, key: Box<[u8]>, value: Value, expire_at: Option<i64>) -> Result<(), RdbError> {
        let databases = self.view.num_dbs();
        if db >= databases {
            return Err(RdbError::new(ErrorKind::DbIndex { db: db as u64, databases }, 0));
        }
        let d = self.view.db_for(db, &key);
        if !self.merge && d.get(&key).is_some() {
            return Err(RdbError::duplicate_key(&key));
        }
        d.insert_boxed(key, value, expire_at);
        Ok(())
    }
}

/// Loads `path` into the shards held by `view` (every shard), dropping keys that have already expired, as
/// a master does. Logs like Redis and updates INFO persistence.
pub fn load_locked(
    server: &Server,
    view: &mut LockedShards<'_>,
    path: &Path,
    merge: bool,
) -> Result<LoadReport, RdbError> {
    let started = Instant::now();
    let opts = LoadOptions {
        drop_expired_before_ms: Some(unix_ms()),
        verify_checksum: true,
        cfg: server.engine_cfg.read().clone(),
    };
    let p = &server.persist;
    p.loading_started.store(unix_ms(), Ordering::Relaxed);
    p.loading.store(true, Ordering::Relaxed);
    let result = rdb::load_file(path, &opts, &mut ShardLoader { view, merge });
    p.loading.store(false, Ordering::Relaxed);
    p.loading_started.store(0, Ordering::Relaxed);
    let report = result?;
    if let Some(v) = report.aux("redis-ver") {
        crate::notice!("Loading RDB produced by version {}", String::from_utf8_lossy(v));
    }
    if let Some(ctime) = report.aux("ctime").and_then(engine::util::parse_i64) {
        crate::notice!("RDB age {} seconds", (unix_ms() / 1000 - ctime).max(0));
    }
    if let Some(mem) = report.aux("used-mem").and_then(engine::util::parse_i64) {
        crate::notice!("RDB memory usage when created {:.2} Mb", mem as f64 / (1024.0 * 1024.0));
    }
    for w in report.warnings() {
        crate::warning!("{w}");
    }
    crate::notice!("Done loading RDB, keys loaded: {}, keys expired: {}.", report.keys_loaded, report.expired_dropped);
    crate::notice!("DB loaded from disk: {:.3} seconds", started.elapsed().as_secs_f64());
    p.rdb_last_load_keys_loaded.store(report.keys_loaded, Ordering::Relaxed);
    p.rdb_last_load_keys_expired.store(report.expired_dropped, Ordering::Relaxed);
    Ok(report)
}

/// Start-up: with `appendonly no`, loads `dbfilename` when it exists. A file that can't be loaded stops
/// the server: starting empty would lose the data at the next save.
pub fn load_at_startup(server: &Server) -> Result<(), String> {
    if server.config.read().appendonly {
        return Ok(());
    }
    let path = rdb_path(server);
    if !path.exists() {
        return Ok(());
    }
    let mut view = server.shards.lock_all();
    match load_locked(server, &mut view, &path, false) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::Io { .. }) => Err(format!("Fatal error loading the DB: {e}. Exiting.")),
        Err(e) => Err(format!(
            "Fatal error loading the DB from '{}': {e}. The file is corrupt or truncated at byte offset {}: check \
             it with `redis-check-rdb {0}` or `moon-aof-tool check {0}`. Exiting.",
            path.display(),
            e.offset()
        )),
    }
}

/// Empties every database of every shard held by `view` (DEBUG RELOAD without NOFLUSH).
pub fn flush_locked(view: &mut LockedShards<'_>) {
    for shard in view.each() {
        for db in shard.ks.dbs.iter_mut() {
            db.clear();
        }
        shard.touch_db(None);
    }
}
