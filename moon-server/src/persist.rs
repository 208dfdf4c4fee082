//! Synchronous RDB persistence: SAVE (and the save SHUTDOWN, DEBUG RELOAD and FLUSHALL with save points do)
//! writes `<dir>/<dbfilename>` through the engine's [`engine::rdb`] writer; start-up (see `loading`) and
//! DEBUG RELOAD load it back straight into the shards (loading is not replay, DESIGN.md §4). BGSAVE is in
//! `bgsave`, on a fork-less snapshot.
//!
//! A save is atomic: `temp-<pid>.rdb` in `dir` is written, fsynced, renamed over `dbfilename`, then the
//! directory is fsynced. A crash at any step leaves either the old file or the new one, plus at worst a
//! stray temp file. Paths are built from the `dir` setting (not the working directory), so CONFIG SET dir
//! takes effect for the next save.

use crate::server::{unix_ms, Server};
use crate::shards::LockedShards;
use crate::snapshot::Purpose;
use engine::keyspace::{Db, Store};
use engine::rdb::{self, ErrorKind, LoadOptions, LoadReport, LoadTarget, RdbError, WriteOptions};
use engine::resp::Reply;
use engine::types::Value;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The RDB file: `dbfilename` inside `dir`.
pub fn rdb_path(server: &Server) -> PathBuf {
    let cfg = server.config.read();
    cfg.dir.join(&cfg.dbfilename)
}

/// The directory holding the RDB file (for temp files and the directory fsync).
pub fn rdb_dir(server: &Server) -> PathBuf {
    server.config.read().dir.clone()
}

/// How to write, from the configuration.
pub fn write_options(server: &Server) -> WriteOptions {
    let cfg = server.config.read();
    WriteOptions {
        compression: cfg.rdbcompression,
        checksum: cfg.rdbchecksum,
        list_max_listpack_size: server.engine_cfg.read().list_max_listpack_size,
        ..WriteOptions::default()
    }
}

/// SAVE: writes the RDB with every shard locked. Replies `+OK`, or `-ERR` as Redis does when the save fails.
/// Refused while a BGSAVE runs, as in Redis (an AOF rewrite does not stop it).
pub fn save_command(server: &Server) -> Reply {
    if server.snapshots.running() == Some(Purpose::RdbSave) {
        return Reply::err("ERR Background save already in progress");
    }
    match save_rdb(server) {
        Ok(()) => {
            server.persist.rdb_saves.fetch_add(1, Ordering::Relaxed);
            Reply::ok()
        }
        Err(_) => Reply::err("ERR"),
    }
}

/// Locks every shard and saves. The error is the text already logged.
pub fn save_rdb(server: &Server) -> Result<(), String> {
    let view = server.shards.lock_all();
    save_locked(server, &view)
}

/// Saves the dataset held by `view` (every shard) to `dbfilename`, and on success updates LASTSAVE, the
/// dirty counter and INFO persistence. A running BGSAVE is stopped first: this file is newer than its
/// snapshot, which must not be renamed over it afterwards (its thread lets go of the tables once the shards
/// are released; meanwhile writes stop copying pre-images for it).
pub fn save_locked(server: &Server, view: &LockedShards<'_>) -> Result<(), String> {
    if server.persist.loading.load(Ordering::Acquire) {
        // Only part of the dataset is in: saving it would replace the file with part of itself.
        let msg = "Can't save while the dataset is loading".to_string();
        crate::warning!("{msg}");
        return Err(msg);
    }
    if server.snapshots.abort(Purpose::RdbSave, "a synchronous save") {
        crate::notice!("Background saving stopped: a synchronous save supersedes it");
    }
    let target = rdb_path(server);
    let dir = rdb_dir(server);
    let opts = write_options(server);
    let temp = dir.join(format!("temp-{}.rdb", std::process::id()));
    let file = match File::create(&temp) {
        Ok(f) => f,
        Err(e) => {
            let msg = open_error(&temp, &e);
            crate::warning!("{msg}");
            return Err(msg);
        }
    };
    if let Err(e) = write_and_rename(server, view, file, &temp, &target, &opts) {
        let _ = std::fs::remove_file(&temp);
        let msg = format!("Write error saving DB on disk: {}", io_text(&e));
        crate::warning!("{msg}");
        return Err(msg);
    }
    crate::notice!("DB saved on disk");
    server.dirty.store(0, Ordering::Relaxed);
    server.lastsave.store(unix_ms() / 1000, Ordering::Relaxed);
    server.persist.rdb_last_bgsave_ok.store(true, Ordering::Relaxed);
    Ok(())
}

/// Redis's message when the temp file can't be created.
pub fn open_error(temp: &Path, e: &std::io::Error) -> String {
    let cwd = std::env::current_dir().map_or_else(|_| "unknown".into(), |d| d.display().to_string());
    let name = temp.file_name().map_or_else(|| temp.display().to_string(), |n| n.to_string_lossy().into_owned());
    format!("Failed opening the temp RDB file {name} (in server root dir {cwd}) for saving: {}", io_text(e))
}

/// An I/O error as Redis prints it (`strerror`), without Rust's " (os error N)".
pub fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn write_and_rename(
    server: &Server,
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
    commit(server, temp, target, || true)
}

/// Renames a finished, fsynced `temp` over `target` and fsyncs the directory, if `still_wanted()` says so
/// (checked under the same lock every save renames under, so a superseded BGSAVE can never land after a
/// newer save). Returns `Interrupted` when it was not wanted any more.
pub fn commit(server: &Server, temp: &Path, target: &Path, still_wanted: impl FnOnce() -> bool) -> std::io::Result<()> {
    {
        let _order = server.bgsave.rename_lock();
        if !still_wanted() {
            return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "superseded"));
        }
        std::fs::rename(temp, target)?;
    }
    // The rename is durable only once the directory entry is.
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// Pre-sizes `db` on every shard of `view` for about `keys` keys (RESIZEDB), when that part is empty and no
/// snapshot walks its table (replacing the table would drop the snapshot's sink).
pub fn presize(view: &mut LockedShards<'_>, db: usize, keys: u64) {
    if db >= view.num_dbs() {
        return;
    }
    let shards = view.shard_count();
    let per_shard = (keys as usize).div_ceil(shards);
    for s in 0..shards {
        let d = view.shard_db(s, db);
        if d.is_empty() && !d.table.snapshot_active() {
            *d = Db::with_capacity(per_shard);
        }
    }
}

/// Puts one loaded key into the shard of `view` that owns it. With `merge` (DEBUG RELOAD MERGE) a key
/// already present is replaced instead of being an error.
pub fn insert_loaded(
    view: &mut LockedShards<'_>,
    db: usize,
    key: &[u8],
    value: Value,
    expire_at: Option<i64>,
    merge: bool,
) -> Result<(), RdbError> {
    let databases = view.num_dbs();
    if db >= databases {
        return Err(RdbError::new(ErrorKind::DbIndex { db: db as u64, databases }, 0));
    }
    let d = view.db_for(db, key);
    if !merge && d.get(key).is_some() {
        return Err(RdbError::duplicate_key(key));
    }
    d.insert(key, value, expire_at);
    Ok(())
}

/// Routes loaded keys into the shard that owns them, with every shard held throughout.
struct ShardLoader<'v, 'a> {
    view: &'v mut LockedShards<'a>,
    merge: bool,
}

impl LoadTarget for ShardLoader<'_, '_> {
    fn resize(&mut self, db: usize, keys: u64, _expires: u64) {
        presize(self.view, db, keys);
    }

    fn insert(&mut self, db: usize, key: &[u8], value: Value, expire_at: Option<i64>) -> Result<(), RdbError> {
        insert_loaded(self.view, db, key, value, expire_at, self.merge)
    }
}

/// Loads `path` into the shards held by `view` (every shard), dropping keys that have already expired, as
/// a master does (DEBUG RELOAD).
pub fn load_locked(
    server: &Server,
    view: &mut LockedShards<'_>,
    path: &Path,
    merge: bool,
) -> Result<LoadReport, RdbError> {
    set_loading(server, Some(path));
    let result = load_into(server, path, &mut ShardLoader { view, merge });
    set_loading(server, None);
    result
}

/// Raises the `loading` flag (clients get -LOADING) for `path`, or lowers it.
pub fn set_loading(server: &Server, path: Option<&Path>) {
    let p = &server.persist;
    match path {
        Some(path) => {
            let size = std::fs::metadata(path).map_or(0, |m| m.len());
            p.loading_total_bytes.store(size, Ordering::Relaxed);
            p.loading_loaded_bytes.store(0, Ordering::Relaxed);
            p.loading_started.store(unix_ms(), Ordering::Relaxed);
            p.loading.store(true, Ordering::Release);
        }
        None => {
            p.loading.store(false, Ordering::Release);
            p.loading_started.store(0, Ordering::Relaxed);
        }
    }
}

/// Loads `path` into `target` (the caller raises the `loading` flag); logs like Redis and updates INFO
/// persistence.
pub fn load_into(server: &Server, path: &Path, target: &mut dyn LoadTarget) -> Result<LoadReport, RdbError> {
    load_with(server, |opts| rdb::load_file(path, opts, target))
}

/// [`load_into`] with any loader: `load` runs with the options, then the report is logged.
pub fn load_with(
    server: &Server,
    load: impl FnOnce(&LoadOptions) -> Result<LoadReport, RdbError>,
) -> Result<LoadReport, RdbError> {
    let started = Instant::now();
    let opts = LoadOptions {
        drop_expired_before_ms: Some(unix_ms()),
        verify_checksum: true,
        cfg: server.engine_cfg.read().clone(),
    };
    let report = load(&opts)?;
    let p = &server.persist;
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

/// The start-up error for a file that can't be loaded: the offset and where to look.
pub fn fatal_load_error(path: &Path, e: &RdbError) -> String {
    if matches!(e.kind(), ErrorKind::Io { .. }) {
        return format!("Fatal error loading the DB: {e}. Exiting.");
    }
    format!(
        "Fatal error loading the DB from '{}': {e}. The file is corrupt or truncated at byte offset {}: check \
         it with `redis-check-rdb {0}` or `moon-aof-tool check {0}`. Exiting.",
        path.display(),
        e.offset()
    )
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
