//! The state every thread of the server shares: configuration, shards, clients, counters.

use crate::client::Registry;
use crate::config::Config;
use crate::shards::Shards;
use engine::config::EngineConfig;
use parking_lot::RwLock;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Counters shown by `INFO stats` (reset by `CONFIG RESETSTAT` where Redis resets them).
#[derive(Default)]
pub struct Counters {
    pub total_connections_received: AtomicU64,
    pub total_commands_processed: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub expired_keys: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub total_error_replies: AtomicU64,
    pub unexpected_error_replies: AtomicU64,
    pub auth_failures: AtomicU64,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        if n != 0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        for c in [
            &self.total_connections_received,
            &self.total_commands_processed,
            &self.rejected_connections,
            &self.expired_keys,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.total_error_replies,
            &self.unexpected_error_replies,
            &self.auth_failures,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

pub struct Server {
    pub config: RwLock<Config>,
    /// The engine's view of the configuration (encoding thresholds), refreshed on CONFIG SET.
    pub engine_cfg: RwLock<EngineConfig>,
    /// The file the server started with, for CONFIG REWRITE.
    pub config_file: Option<PathBuf>,
    pub shards: Shards,
    pub clients: Registry,
    pub stats: Counters,
    /// Command, error and latency statistics, slow log, latency monitor.
    pub obs: crate::stats::Observability,
    /// CLIENT PAUSE.
    pub pause: crate::shutdown::Pause,
    /// What INFO persistence reports; the persistence code keeps it current.
    pub persist: crate::persist_state::PersistState,
    pub started: Instant,
    pub run_id: String,
    /// Set by SIGTERM/SIGINT or SHUTDOWN: every thread stops accepting and exits.
    pub shutting_down: AtomicBool,
    /// Changes since the last save (`rdb_changes_since_last_save`).
    pub dirty: AtomicU64,
    /// Unix seconds of the last successful save.
    pub lastsave: AtomicI64,
    /// TCP port actually listened on.
    pub port: u16,
    /// Pub/Sub subscriptions, MONITOR clients and blocked clients (see those modules).
    pub pubsub: crate::pubsub::PubSub,
    pub monitors: crate::monitor::Monitors,
    pub blocking: crate::blocking::BlockedClients,
    /// `DEBUG SET-ACTIVE-EXPIRE 0|1`: whether the cron deletes expired keys by itself.
    pub active_expire: AtomicBool,
    /// The running fork-less snapshot (BGSAVE or an AOF rewrite), at most one.
    pub snapshots: crate::snapshot::Slot,
    /// BGSAVE's own state: scheduling, retry delay, the background thread.
    pub bgsave: crate::bgsave::BgSave,
    /// The `Arc` this server lives in (set once at start-up), for commands that start background threads.
    me: OnceLock<Weak<Server>>,
    /// The AOF write path (off until `aof::start`).
    pub aof: crate::aof::Aof,
    /// The AOF directory's persistence state (manifest, file set, transitions): `Some` from start-up when
    /// `appendonly yes`, or once `CONFIG SET appendonly yes` opens it; `None` while AOF was never on.
    pub aof_dir: parking_lot::Mutex<Option<engine::aof::dir::AofDir>>,
    /// The advisory lock on the AOF directory (see `engine::aof::lock`), held until the process exits.
    pub aof_lock: parking_lot::Mutex<Option<engine::aof::lock::AofLock>>,
    /// BGREWRITEAOF's state: the running rewrite, its thread, the failure back-off.
    pub aof_rewrite: crate::aof::rewrite::Rewrites,
}

impl Server {
    pub fn new(config: Config, config_file: Option<PathBuf>, port: u16) -> Self {
        let engine_cfg = config.engine_config();
        let shards = Shards::new(config.shards, config.databases);
        let persist = crate::persist_state::PersistState::default();
        let aof = crate::aof::Aof::new(crate::aof::Settings::from_config(&config), persist.aof_cells());
        let run_id: String = (0..40).map(|_| char::from(b"0123456789abcdef"[fastrand::usize(..16)])).collect();
        Server {
            engine_cfg: RwLock::new(engine_cfg),
            config_file,
            shards,
            clients: Registry::default(),
            stats: Counters::default(),
            obs: crate::stats::Observability::new(&config),
            pause: crate::shutdown::Pause::default(),
            persist,
            started: Instant::now(),
            run_id,
            shutting_down: AtomicBool::new(false),
            dirty: AtomicU64::new(0),
            lastsave: AtomicI64::new(unix_ms() / 1000),
            port,
            pubsub: Default::default(),
            monitors: Default::default(),
            blocking: Default::default(),
            active_expire: AtomicBool::new(true),
            snapshots: Default::default(),
            bgsave: Default::default(),
            me: OnceLock::new(),
            aof,
            aof_dir: parking_lot::Mutex::new(None),
            aof_lock: parking_lot::Mutex::new(None),
            aof_rewrite: Default::default(),
            config: RwLock::new(config),
        }
    }

    /// Wraps a new server in its `Arc` and remembers it (see [`Server::arc`]).
    pub fn new_shared(config: Config, config_file: Option<PathBuf>, port: u16) -> Arc<Self> {
        let server = Arc::new(Server::new(config, config_file, port));
        let _ = server.me.set(Arc::downgrade(&server));
        server
    }

    /// The `Arc` holding this server; `None` for a server not made by [`Server::new_shared`] (unit tests).
    pub fn arc(&self) -> Option<Arc<Server>> {
        self.me.get().and_then(Weak::upgrade)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }
}

/// Wall clock in unix milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
