//! The execution context a command handler gets: the store (one or several shards), the selected database,
//! the clock, the settings, and what the command did (dirty count, what to propagate to the AOF, which keys
//! were found expired). Typed lookups here produce Redis's WRONGTYPE error in one place.

use super::errors::WRONGTYPE;
use super::CmdResult;
use crate::config::EngineConfig;
use crate::keyspace::{Db, Store};
use crate::resp::{Protocol, Reply};
use crate::types::{HashValue, ListValue, SetValue, StrValue, Value, ZSetValue};
use bytes::Bytes;

/// Counters a command may bump; the caller folds them into `INFO stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
}

/// Everything a handler may read or change.
pub struct Ctx<'a> {
    pub store: &'a mut dyn Store,
    /// Selected database.
    pub db: usize,
    /// Wall clock in unix milliseconds, fixed for the whole command (Redis caches it too).
    pub now_ms: i64,
    pub cfg: &'a EngineConfig,
    /// Protocol of the client, for the few replies that differ in RESP3.
    pub proto: Protocol,
    /// True while loading an AOF: keys are not expired lazily (as Redis), so replay sees what was logged.
    pub loading: bool,
    /// Number of changes made (Redis's `server.dirty`): 0 means nothing is logged.
    pub dirty: u64,
    /// When set, these commands are logged instead of the client's (absolute expiries, SPOP as SREM ...).
    pub propagate: Option<Vec<Vec<Bytes>>>,
    /// Keys deleted because they were found expired: (db, key). Logged as DEL before the command.
    pub expired: Vec<(usize, Box<[u8]>)>,
    pub stats: Stats,
}

macro_rules! typed_access {
    ($read:ident, $write:ident, $create:ident, $variant:ident, $ty:ty) => {
        /// Read access to a value of this type; WRONGTYPE for another type; counts a hit or a miss.
        pub fn $read(&mut self, key: &[u8]) -> CmdResult<Option<&$ty>> {
            match self.lookup_read(key) {
                None => Ok(None),
                Some(Value::$variant(v)) => Ok(Some(v)),
                Some(_) => Err(Reply::err(WRONGTYPE)),
            }
        }

        /// Write access to an existing value of this type; WRONGTYPE for another type.
        pub fn $write(&mut self, key: &[u8]) -> CmdResult<Option<&mut $ty>> {
            match self.lookup_write(key) {
                None => Ok(None),
                Some(Value::$variant(v)) => Ok(Some(v)),
                Some(_) => Err(Reply::err(WRONGTYPE)),
            }
        }

        /// Write access, creating an empty value when the key does not exist.
        pub fn $create(&mut self, key: &[u8]) -> CmdResult<&mut $ty> {
            self.expire_if_needed(key);
            let db = self.db;
            let d = self.store.db_for(db, key);
            if d.get(key).is_none() {
                d.insert(key, Value::$variant(Default::default()), None);
            }
            match d.get_mut(key) {
                Some(Value::$variant(v)) => Ok(v),
                _ => Err(Reply::err(WRONGTYPE)),
            }
        }
    };
}

impl<'a> Ctx<'a> {
    pub fn new(store: &'a mut dyn Store, cfg: &'a EngineConfig, now_ms: i64) -> Self {
        Ctx {
            store,
            db: 0,
            now_ms,
            cfg,
            proto: Protocol::Resp2,
            loading: false,
            dirty: 0,
            propagate: None,
            expired: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Resets the per-command outputs before running the next command with the same context.
    pub fn reset_effects(&mut self) {
        self.dirty = 0;
        self.propagate = None;
        self.expired.clear();
    }

    /// The selected database on the shard owning `key`.
    pub fn db_mut(&mut self, key: &[u8]) -> &mut Db {
        self.store.db_for(self.db, key)
    }

    /// Read-only form of [`Ctx::db_mut`].
    pub fn db_ref(&self, key: &[u8]) -> &Db {
        self.store.db_for_ref(self.db, key)
    }

    /// Deletes `key` if its TTL has passed (not while loading). Returns true when it did.
    pub fn expire_if_needed(&mut self, key: &[u8]) -> bool {
        if self.loading {
            return false;
        }
        let (db, now) = (self.db, self.now_ms);
        if self.store.db_for(db, key).expire_if_needed(key, now) {
            self.stats.expired_keys += 1;
            self.expired.push((db, key.into()));
            true
        } else {
            false
        }
    }

    /// Looks a key up for reading: expires it if due, counts a keyspace hit or miss.
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<&Value> {
        self.expire_if_needed(key);
        let found = self.store.db_for_ref(self.db, key).get(key);
        if found.is_some() {
            self.stats.keyspace_hits += 1;
        } else {
            self.stats.keyspace_misses += 1;
        }
        found.map(|e| &e.value)
    }

    /// Looks a key up for writing: expires it if due; no hit/miss accounting.
    pub fn lookup_write(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.expire_if_needed(key);
        self.db_mut(key).get_mut(key)
    }

    /// A key's value with no expiry check and no accounting; call [`Ctx::expire_if_needed`] first. Lets a
    /// command hold several keys' values at once (SINTER, ZUNION ...).
    pub fn peek(&self, key: &[u8]) -> Option<&Value> {
        self.db_ref(key).get(key).map(|e| &e.value)
    }

    /// Whether `key` exists (after expiry).
    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.expire_if_needed(key);
        self.db_ref(key).get(key).is_some()
    }

    /// The expiry of `key` in unix ms (after expiry check).
    pub fn expire_of(&mut self, key: &[u8]) -> Option<i64> {
        self.expire_if_needed(key);
        self.db_ref(key).expire_of(key)
    }

    /// Stores `value` under `key`, replacing whatever was there, with the given expiry.
    pub fn set_value(&mut self, key: &[u8], value: Value, expire_at: Option<i64>) {
        self.db_mut(key).insert(key, value, expire_at);
    }

    /// Deletes `key`; returns true when it existed (an expired key does not count).
    pub fn delete(&mut self, key: &[u8]) -> bool {
        self.expire_if_needed(key);
        self.db_mut(key).remove(key).is_some()
    }

    /// Removes `key` and returns its value and expiry (after expiry check).
    pub fn take(&mut self, key: &[u8]) -> Option<(Value, Option<i64>)> {
        self.expire_if_needed(key);
        self.db_mut(key).remove(key)
    }

    /// Deletes `key` if it holds an empty collection (Redis never keeps empty collections).
    pub fn remove_if_empty(&mut self, key: &[u8]) {
        let empty = match self.peek(key) {
            Some(Value::List(v)) => v.is_empty(),
            Some(Value::Hash(v)) => v.is_empty(),
            Some(Value::Set(v)) => v.is_empty(),
            Some(Value::ZSet(v)) => v.is_empty(),
            _ => false,
        };
        if empty {
            self.db_mut(key).remove(key);
        }
    }

    /// Logs `argv` for this command (may be called several times); the client's own command is then not logged.
    pub fn also_propagate(&mut self, argv: Vec<Bytes>) {
        self.propagate.get_or_insert_with(Vec::new).push(argv);
    }

    /// Logs nothing for this command even though it may have changed something.
    pub fn propagate_nothing(&mut self) {
        self.propagate = Some(Vec::new());
    }

    typed_access!(read_str, write_str, str_or_default, Str, StrValue);
    typed_access!(read_list, write_list, list_or_create, List, Box<ListValue>);
    typed_access!(read_hash, write_hash, hash_or_create, Hash, HashValue);
    typed_access!(read_set, write_set, set_or_create, Set, SetValue);
    typed_access!(read_zset, write_zset, zset_or_create, ZSet, ZSetValue);
}

impl Default for StrValue {
    fn default() -> Self {
        StrValue::Emb(Box::default())
    }
}
