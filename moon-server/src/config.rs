//! The server's configuration, read and served exactly as redis-server 7.0 does: the command line
//! `moon-server [redis.conf] [--directive value ...]`, the redis.conf grammar (quotes, `include`, later lines
//! win), each directive's name, default, syntax and error text, and the runtime side: CONFIG GET patterns,
//! atomic CONFIG SET, CONFIG REWRITE. Moon departs from Redis's defaults in one place: it is durable by
//! default (`appendonly yes`, fsync `everysec`).
//!
//! Submodules: `syntax` has the C string rules (`sdssplitargs`, `memtoull` ...), `directives` the table of
//! settings Moon acts on and how each kind is parsed and printed, `compat_table` every other redis-server
//! 7.0 setting (accepted, shown and settable with Redis's rules, but without effect, so that stock
//! redis.conf files and Redis tooling work), `compat` the parsers and CONFIG SET side effects of those
//! with a syntax of their own, `load` the command line and file reader, `command` CONFIG GET/SET,
//! `rewrite` CONFIG REWRITE, `error` the start-up error.

mod command;
mod compat;
mod compat_table;
mod directives;
mod error;
mod load;
mod rewrite;
mod syntax;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use error::ConfigError;

/// The values of Redis's multi-choice settings, in the order Redis lists them in its error message.
pub(crate) trait ConfigEnum: Copy {
    const NAMES: &'static [&'static str];
    fn index(self) -> usize;
    fn from_index(i: usize) -> Self;
}

macro_rules! config_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $variant,)+ }

        impl ConfigEnum for $name {
            const NAMES: &'static [&'static str] = &[$($text),+];
            fn index(self) -> usize {
                self as usize
            }
            fn from_index(i: usize) -> Self {
                [$($name::$variant),+][i]
            }
        }

        impl $name {
            /// The name CONFIG GET prints.
            #[allow(dead_code)] // not every enum is printed outside CONFIG GET (which uses `NAMES`)
            pub fn as_str(self) -> &'static str {
                Self::NAMES[self as usize]
            }
        }
    };
}

config_enum! {
    /// `appendfsync`: when the AOF writer calls fsync, and therefore what an acknowledged write survives.
    pub enum AppendFsync {
        /// fsync once a second in the background: a crash of the machine loses at most about the last second
        /// of acknowledged writes; a crash of the process alone loses nothing already written.
        Everysec = "everysec",
        /// fsync before replying: an acknowledged write survives a power loss.
        Always = "always",
        /// never fsync; the kernel flushes when it likes (typically within 30 s). A process crash loses
        /// nothing written, a power loss may lose everything not yet flushed.
        No = "no",
    }
}

config_enum! {
    /// `loglevel`. Redis 7.0 has no `nothing` (7.2 added it), so neither does Moon.
    pub enum LogLevel {
        Debug = "debug",
        Verbose = "verbose",
        Notice = "notice",
        Warning = "warning",
    }
}

config_enum! {
    /// `maxmemory-policy`.
    pub enum MaxmemoryPolicy {
        VolatileLru = "volatile-lru",
        VolatileLfu = "volatile-lfu",
        VolatileRandom = "volatile-random",
        VolatileTtl = "volatile-ttl",
        AllkeysLru = "allkeys-lru",
        AllkeysLfu = "allkeys-lfu",
        AllkeysRandom = "allkeys-random",
        Noeviction = "noeviction",
    }
}

config_enum! {
    /// `enable-debug-command` and `enable-protected-configs`: who may use the guarded feature.
    pub enum ProtectedAction {
        No = "no",
        Yes = "yes",
        /// only clients connected over loopback or a Unix socket.
        Local = "local",
    }
}

impl ProtectedAction {
    /// Whether a client may use the feature (Redis's `allowProtectedAction`).
    pub fn allows(self, local_client: bool) -> bool {
        match self {
            ProtectedAction::No => false,
            ProtectedAction::Yes => true,
            ProtectedAction::Local => local_client,
        }
    }
}

/// One `save <seconds> <changes>` rule: snapshot when at least `changes` writes happened in `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveRule {
    pub seconds: u64,
    pub changes: u64,
}

/// Every setting the server reads. Field docs name the directive; ranges and defaults are redis-server
/// 7.0's unless said otherwise. Change values at run time through [`Config::set`] so they stay valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `port` (0 = no TCP listener).
    pub port: u16,
    /// `bind`: addresses to listen on; a leading `-` means "skip if unavailable". Empty = no TCP listener.
    pub bind: Vec<String>,
    /// `dir`: the working directory for data files. Either the default `.` (the process's current
    /// directory, whatever it is when used) or an absolute, existing directory.
    pub dir: PathBuf,
    /// `requirepass`; `None` when unset or set to "".
    pub requirepass: Option<String>,
    /// `databases` (immutable).
    pub databases: usize,
    /// `maxclients`.
    pub maxclients: u32,
    /// `timeout`: idle seconds before a client is closed, 0 = never.
    pub timeout: u32,
    /// `tcp-keepalive` seconds, 0 = off.
    pub tcp_keepalive: u32,
    /// `save` rules; empty = no snapshots.
    pub save: Vec<SaveRule>,
    /// `appendonly`. Moon's default is `yes` (Redis's is `no`).
    pub appendonly: bool,
    /// `appendfsync`.
    pub appendfsync: AppendFsync,
    /// `appendfilename`: base name of the AOF files (immutable).
    pub appendfilename: String,
    /// `appenddirname`: directory of the AOF files and manifest, inside `dir` (immutable).
    pub appenddirname: String,
    /// `dbfilename`: the RDB file, inside `dir`.
    pub dbfilename: String,
    pub aof_use_rdb_preamble: bool,
    pub aof_load_truncated: bool,
    pub aof_timestamp_enabled: bool,
    pub aof_disable_auto_gc: bool,
    pub aof_rewrite_incremental_fsync: bool,
    pub no_appendfsync_on_rewrite: bool,
    pub auto_aof_rewrite_percentage: u32,
    /// `auto-aof-rewrite-min-size` in bytes.
    pub auto_aof_rewrite_min_size: u64,
    pub rdbcompression: bool,
    /// `rdbchecksum` (immutable).
    pub rdbchecksum: bool,
    pub stop_writes_on_bgsave_error: bool,
    pub loglevel: LogLevel,
    /// `logfile`; `None` (the default, "") logs to standard output (immutable).
    pub logfile: Option<PathBuf>,
    pub hash_max_listpack_entries: usize,
    /// bytes.
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub set_max_listpack_entries: usize,
    pub set_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    /// bytes.
    pub zset_max_listpack_value: usize,
    /// negative: -1 = 4kb ... -5 = 64kb per node; positive: entries per node.
    pub list_max_listpack_size: i32,
    pub list_compress_depth: u32,
    /// bytes.
    pub proto_max_bulk_len: u64,
    /// bytes.
    pub client_query_buffer_limit: u64,
    pub protected_mode: bool,
    /// `enable-debug-command` (immutable): who may run DEBUG.
    pub enable_debug_command: ProtectedAction,
    /// `enable-protected-configs` (immutable): who may CONFIG SET `dir` and `dbfilename`.
    pub enable_protected_configs: ProtectedAction,
    /// `daemonize` (immutable). Accepted for compatibility with existing files; Moon does not fork into the
    /// background, so the server should refuse or warn when it is `yes`.
    pub daemonize: bool,
    /// `pidfile` (immutable); `None` when unset.
    pub pidfile: Option<PathBuf>,
    /// `hz`, clamped to 1..=500 like Redis (values outside are accepted, then capped).
    pub hz: u32,
    /// `maxmemory` in bytes, 0 = no limit.
    pub maxmemory: u64,
    pub maxmemory_policy: MaxmemoryPolicy,
    pub lazyfree_lazy_eviction: bool,
    pub lazyfree_lazy_expire: bool,
    pub lazyfree_lazy_server_del: bool,
    pub lazyfree_lazy_user_del: bool,
    pub lazyfree_lazy_user_flush: bool,
    /// microseconds, -1 = log nothing, 0 = log everything.
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: u64,
    /// milliseconds, 0 = off.
    pub latency_monitor_threshold: u64,
    /// `shards` (Moon's own, immutable): shard threads; default the number of CPUs.
    pub shards: usize,
    /// Settings accepted only for compatibility (they have no effect), by name, in CONFIG GET form. Visible to
    /// the crate only so that `Config { shards: 4, ..Config::default() }` works; change it through `set`.
    pub(crate) compat: BTreeMap<&'static str, String>,
}

impl Default for Config {
    /// redis-server 7.0's defaults, except `appendonly yes`.
    fn default() -> Self {
        let mut config = Config {
            port: 6379,
            bind: vec!["*".into(), "-::*".into()],
            dir: PathBuf::from("."),
            requirepass: None,
            databases: 16,
            maxclients: 10000,
            timeout: 0,
            tcp_keepalive: 300,
            save: [(3600, 1), (300, 100), (60, 10000)].map(|(seconds, changes)| SaveRule { seconds, changes }).to_vec(),
            appendonly: true,
            appendfsync: AppendFsync::Everysec,
            appendfilename: "appendonly.aof".into(),
            appenddirname: "appendonlydir".into(),
            dbfilename: "dump.rdb".into(),
            aof_use_rdb_preamble: true,
            aof_load_truncated: true,
            aof_timestamp_enabled: false,
            aof_disable_auto_gc: false,
            aof_rewrite_incremental_fsync: true,
            no_appendfsync_on_rewrite: false,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 << 20,
            rdbcompression: true,
            rdbchecksum: true,
            stop_writes_on_bgsave_error: true,
            loglevel: LogLevel::Notice,
            logfile: None,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            set_max_listpack_entries: 128,
            set_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
            list_compress_depth: 0,
            proto_max_bulk_len: 512 << 20,
            client_query_buffer_limit: 1 << 30,
            protected_mode: true,
            enable_debug_command: ProtectedAction::No,
            enable_protected_configs: ProtectedAction::No,
            daemonize: false,
            pidfile: None,
            hz: 10,
            maxmemory: 0,
            maxmemory_policy: MaxmemoryPolicy::Noeviction,
            lazyfree_lazy_eviction: false,
            lazyfree_lazy_expire: false,
            lazyfree_lazy_server_del: false,
            lazyfree_lazy_user_del: false,
            lazyfree_lazy_user_flush: false,
            slowlog_log_slower_than: 10000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            compat: BTreeMap::new(),
        };
        config.compat = directives::compat_defaults();
        config
    }
}

impl Config {
    /// Reads redis-server's command line (without the program name): an optional configuration file first
    /// (any first argument not starting with `-`), `-` as the first or last argument to read configuration
    /// text from stdin, then `--directive value ...` pairs applied after the file. Returns the
    /// configuration and the absolute path of the file, for CONFIG REWRITE. `--version` and `--help` are
    /// not handled here. Like Redis, a `dir` directive must name an existing directory and a `logfile`
    /// must be openable for appending (it is created if missing).
    pub fn from_args(args: &[String]) -> Result<(Config, Option<PathBuf>), ConfigError> {
        load::from_args(args, &mut std::io::stdin().lock())
    }

    /// CONFIG GET for one pattern: `(name, value)` pairs with values as redis-server prints them. A
    /// pattern without `*`, `?` or `[` is an exact, case-insensitive name and is echoed as given.
    #[cfg_attr(not(test), allow(dead_code))] // CONFIG GET itself uses `get_many`
    pub fn get(&self, pattern: &[u8]) -> Vec<(String, String)> {
        command::get(self, &[pattern])
    }

    /// CONFIG GET with several patterns, each name reported once.
    pub fn get_many(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        command::get(self, patterns)
    }

    /// CONFIG SET `name value [name value ...]`, all or nothing, as a client that is not local (so `dir`
    /// and `dbfilename` need `enable-protected-configs yes`). The error is the exact reply text,
    /// starting with "ERR". Only the values change: the server applies them (rebinds, reopens files) and,
    /// if that fails, restores a clone taken before the call.
    #[cfg_attr(not(test), allow(dead_code))] // CONFIG SET itself uses `set_from`
    pub fn set(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), String> {
        command::set(self, pairs, false)
    }

    /// [`Config::set`] for a client whose locality is known (`enable-protected-configs local`).
    pub fn set_from(&mut self, pairs: &[(Vec<u8>, Vec<u8>)], local_client: bool) -> Result<(), String> {
        command::set(self, pairs, local_client)
    }

    /// CONFIG REWRITE: rewrites `path` keeping comments, `include` lines and the order of what is there,
    /// replacing the lines of changed settings in place and appending the others after a
    /// "# Generated by CONFIG REWRITE" line. Written to a temporary file, fsynced and renamed over `path`.
    pub fn rewrite(&self, path: &Path) -> std::io::Result<()> {
        rewrite::rewrite(self, path)
    }

    /// The settings the engine consults.
    pub fn engine_config(&self) -> engine::config::EngineConfig {
        engine::config::EngineConfig {
            databases: self.databases,
            hash_max_listpack_entries: self.hash_max_listpack_entries,
            hash_max_listpack_value: self.hash_max_listpack_value,
            set_max_intset_entries: self.set_max_intset_entries,
            set_max_listpack_entries: self.set_max_listpack_entries,
            set_max_listpack_value: self.set_max_listpack_value,
            zset_max_listpack_entries: self.zset_max_listpack_entries,
            zset_max_listpack_value: self.zset_max_listpack_value,
            list_max_listpack_size: i64::from(self.list_max_listpack_size),
            list_compress_depth: i64::from(self.list_compress_depth),
            proto_max_bulk_len: usize::try_from(self.proto_max_bulk_len).unwrap_or(usize::MAX),
        }
    }

    /// The value of a setting accepted only for compatibility (e.g. `tcp-backlog`, `cluster-enabled`), as
    /// CONFIG GET prints it.
    #[cfg_attr(not(test), allow(dead_code))] // no server code reads a compatibility value yet
    pub fn compat_value(&self, name: &str) -> Option<&str> {
        self.compat.get(name).map(String::as_str)
    }
}
