//! What `INFO persistence` reports about loading, RDB saves and the AOF. The persistence code updates these
//! fields as it works (plain atomics: any thread may write, INFO reads without a lock); until it does, they
//! hold the values of a server that has never saved, never rewritten and has nothing to load.
//! `rdb_changes_since_last_save` and `rdb_last_save_time` are `Server::dirty` and `Server::lastsave`.

use crate::server::{unix_ms, Server};
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Unix ms of a start, 0 when nothing is running.
type Started = AtomicI64;

pub struct PersistState {
    /// A dataset load is running (`loading`, and the `loading_*` fields).
    pub loading: AtomicBool,
    pub async_loading: AtomicBool,
    pub loading_started: Started,
    pub loading_total_bytes: AtomicU64,
    pub loading_loaded_bytes: AtomicU64,
    pub loading_rdb_used_mem: AtomicU64,
    /// Keys written so far by the running save, and the keys it will write.
    pub current_save_keys_processed: AtomicU64,
    pub current_save_keys_total: AtomicU64,
    /// A background RDB save is running since this time (`rdb_bgsave_in_progress`).
    pub rdb_bgsave_started: Started,
    pub rdb_last_bgsave_ok: AtomicBool,
    /// Duration of the last background save, -1 before the first.
    pub rdb_last_bgsave_time_sec: AtomicI64,
    pub rdb_saves: AtomicU64,
    pub rdb_last_load_keys_expired: AtomicU64,
    pub rdb_last_load_keys_loaded: AtomicU64,
    /// An AOF rewrite is running since this time (`aof_rewrite_in_progress`).
    pub aof_rewrite_started: Started,
    pub aof_rewrite_scheduled: AtomicBool,
    pub aof_last_rewrite_time_sec: AtomicI64,
    pub aof_last_bgrewrite_ok: AtomicBool,
    pub aof_rewrites: AtomicU64,
    pub aof_rewrites_consecutive_failures: AtomicU64,
    /// The AOF status the AOF pipeline's threads keep current (shared with them, see [`AofCells`]).
    /// False while writes to the AOF fail (`aof_last_write_status:err`); with `appendonly yes` writes are
    /// then refused with `-MISCONF Errors writing to the AOF file: <error>`, the error being
    /// [`PersistState::aof_last_write_error`] (see `bgsave::refusal`).
    pub aof_last_write_ok: Arc<AtomicBool>,
    /// The failed AOF write's (or fsync's) error text, as `strerror` prints it.
    pub aof_last_write_error: Arc<parking_lot::Mutex<String>>,
    /// Shown while the AOF is on: the size of all AOF files (base and incrs).
    pub aof_current_size: Arc<AtomicU64>,
    pub aof_base_size: AtomicU64,
    pub aof_buffer_length: Arc<AtomicU64>,
    pub aof_pending_bio_fsync: Arc<AtomicU64>,
    pub aof_delayed_fsync: Arc<AtomicU64>,
}

/// The AOF fields of [`PersistState`] that the AOF pipeline (`aof`) updates from its own threads, which do
/// not hold the server.
#[derive(Clone)]
pub struct AofCells {
    pub last_write_ok: Arc<AtomicBool>,
    pub last_write_error: Arc<parking_lot::Mutex<String>>,
    pub current_size: Arc<AtomicU64>,
    pub buffer_length: Arc<AtomicU64>,
    pub pending_bio_fsync: Arc<AtomicU64>,
    pub delayed_fsync: Arc<AtomicU64>,
}

impl Default for AofCells {
    fn default() -> Self {
        AofCells {
            last_write_ok: Arc::new(AtomicBool::new(true)),
            last_write_error: Arc::default(),
            current_size: Arc::default(),
            buffer_length: Arc::default(),
            pending_bio_fsync: Arc::default(),
            delayed_fsync: Arc::default(),
        }
    }
}

impl Default for PersistState {
    fn default() -> Self {
        let cells = AofCells::default();
        PersistState {
            loading: AtomicBool::new(false),
            async_loading: AtomicBool::new(false),
            loading_started: Started::new(0),
            loading_total_bytes: AtomicU64::new(0),
            loading_loaded_bytes: AtomicU64::new(0),
            loading_rdb_used_mem: AtomicU64::new(0),
            current_save_keys_processed: AtomicU64::new(0),
            current_save_keys_total: AtomicU64::new(0),
            rdb_bgsave_started: Started::new(0),
            rdb_last_bgsave_ok: AtomicBool::new(true),
            rdb_last_bgsave_time_sec: AtomicI64::new(-1),
            rdb_saves: AtomicU64::new(0),
            rdb_last_load_keys_expired: AtomicU64::new(0),
            rdb_last_load_keys_loaded: AtomicU64::new(0),
            aof_rewrite_started: Started::new(0),
            aof_rewrite_scheduled: AtomicBool::new(false),
            aof_last_rewrite_time_sec: AtomicI64::new(-1),
            aof_last_bgrewrite_ok: AtomicBool::new(true),
            aof_rewrites: AtomicU64::new(0),
            aof_rewrites_consecutive_failures: AtomicU64::new(0),
            aof_last_write_ok: cells.last_write_ok,
            aof_last_write_error: cells.last_write_error,
            aof_current_size: cells.current_size,
            aof_base_size: AtomicU64::new(0),
            aof_buffer_length: cells.buffer_length,
            aof_pending_bio_fsync: cells.pending_bio_fsync,
            aof_delayed_fsync: cells.delayed_fsync,
        }
    }
}

fn status(ok: &AtomicBool) -> &'static str {
    if ok.load(Ordering::Relaxed) {
        "ok"
    } else {
        "err"
    }
}

/// Seconds since `started`, or -1 when nothing is running.
fn running_secs(started: &Started, now_ms: i64) -> i64 {
    match started.load(Ordering::Relaxed) {
        0 => -1,
        t => (now_ms - t).max(0) / 1000,
    }
}

impl PersistState {
    /// Handles on the AOF fields, for the AOF pipeline.
    pub fn aof_cells(&self) -> AofCells {
        AofCells {
            last_write_ok: self.aof_last_write_ok.clone(),
            last_write_error: self.aof_last_write_error.clone(),
            current_size: self.aof_current_size.clone(),
            buffer_length: self.aof_buffer_length.clone(),
            pending_bio_fsync: self.aof_pending_bio_fsync.clone(),
            delayed_fsync: self.aof_delayed_fsync.clone(),
        }
    }

    /// CONFIG RESETSTAT resets `aof_delayed_fsync`, as in Redis.
    pub fn reset_stats(&self) {
        self.aof_delayed_fsync.store(0, Ordering::Relaxed);
    }

    /// The `# Persistence` section, fields in Redis 7.0's order.
    pub fn render(&self, server: &Server, aof_enabled: bool, out: &mut String) {
        let now = unix_ms();
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let b = |a: &AtomicBool| u8::from(a.load(Ordering::Relaxed));
        let bgsave = running_secs(&self.rdb_bgsave_started, now);
        let rewrite = running_secs(&self.aof_rewrite_started, now);
        let _ = write!(
            out,
            "# Persistence\r\nloading:{}\r\nasync_loading:{}\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:{}\r\ncurrent_save_keys_total:{}\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{bgsave}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\naof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{rewrite}\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
            b(&self.loading),
            b(&self.async_loading),
            g(&self.current_save_keys_processed),
            g(&self.current_save_keys_total),
            server.dirty.load(Ordering::Relaxed),
            u8::from(bgsave >= 0),
            server.lastsave.load(Ordering::Relaxed),
            status(&self.rdb_last_bgsave_ok),
            self.rdb_last_bgsave_time_sec.load(Ordering::Relaxed),
            g(&self.rdb_saves),
            g(&self.rdb_last_load_keys_expired),
            g(&self.rdb_last_load_keys_loaded),
            u8::from(aof_enabled),
            u8::from(rewrite >= 0),
            b(&self.aof_rewrite_scheduled),
            self.aof_last_rewrite_time_sec.load(Ordering::Relaxed),
            status(&self.aof_last_bgrewrite_ok),
            g(&self.aof_rewrites),
            g(&self.aof_rewrites_consecutive_failures),
            status(&self.aof_last_write_ok),
        );
        if aof_enabled {
            let _ = write!(
                out,
                "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:{}\r\naof_pending_bio_fsync:{}\r\naof_delayed_fsync:{}\r\n",
                g(&self.aof_current_size),
                g(&self.aof_base_size),
                b(&self.aof_rewrite_scheduled),
                g(&self.aof_buffer_length),
                g(&self.aof_pending_bio_fsync),
                g(&self.aof_delayed_fsync),
            );
        }
        if self.loading.load(Ordering::Relaxed) {
            let started = self.loading_started.load(Ordering::Relaxed);
            let total = g(&self.loading_total_bytes);
            let loaded = g(&self.loading_loaded_bytes);
            let perc = if total > 0 { loaded as f64 * 100.0 / total as f64 } else { 0.0 };
            let elapsed = ((now - started).max(0) / 1000) as u64;
            let eta = if loaded > 0 && total > loaded { elapsed * (total - loaded) / loaded } else { 1 };
            let _ = write!(
                out,
                "loading_start_time:{}\r\nloading_total_bytes:{total}\r\nloading_rdb_used_mem:{}\r\nloading_loaded_bytes:{loaded}\r\nloading_loaded_perc:{perc:.2}\r\nloading_eta_seconds:{eta}\r\n",
                started / 1000,
                g(&self.loading_rdb_used_mem),
            );
        }
    }
}
