//! Redis-compatible RDB files: the fast loader that decodes a dump (or an AOF base / preamble) straight into
//! the keyspace, the writer that produces `REDIS0010` files redis-server 7.0 loads, and the value-level
//! encoding DUMP/RESTORE use. Byte layouts are in `engine/FORMAT.md` ("RDB") and FORMATS.md §4.
//!
//! Loading is not replay (DESIGN.md §4): [`load`] walks the file once from a byte slice, decodes each value
//! into its final encoding (thresholds from [`EngineConfig`], as Redis applies them on load) and hands it
//! to a [`LoadTarget`] (a [`Keyspace`], or the server's sharded view), pre-sized from RESIZEDB.
//! [`load_sharded`] does the same into one target per shard, decoding and inserting on shard threads
//! (one per shard, up to the CPUs left) while the calling thread scans the file: same result, same report, same errors.
//!
//! Submodules: `input` (primitive encodings), `blobs` (listpack, ziplist, intset, zipmap), `decode`
//! (values), `skip` (streams, modules, value extents), `load` (the opcode loop), `parallel`
//! ([`load_sharded`]), `filter` ([`LoadFilter`]: inserts that skip the duplicate search when a hash is
//! new), `encode` (values and listpacks), `writer` ([`RdbWriter`], [`save_store`]), `lzf`,
//! `crc64` and `crc64_clmul` (its carry-less-multiply fast path), `error`.

pub(crate) mod blobs;
pub mod crc64;
pub mod crc64_clmul;
mod decode;
mod encode;
mod error;
mod filter;
mod input;
mod load;
pub mod lzf;
mod parallel;
mod skip;
mod writer;

#[cfg(test)]
mod tests;

pub use decode::SkipKind;
pub use encode::{encode_value, WriteOptions};
pub use error::{Details, Doing, ErrorKind, RdbError};
pub use filter::LoadFilter;
pub use load::load;
pub use parallel::load_sharded;
pub use skip::module_name;
pub use writer::{save_keyspace, save_store, RdbEncoder, RdbStream, RdbWriter};

use crate::config::EngineConfig;
use crate::keyspace::Keyspace;
use crate::table::{hash_of, Entry, Prefetch, NO_EXPIRE};
use crate::types::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The RDB version Moon writes (Redis 7.0's).
pub const RDB_VERSION: u32 = 10;
/// Highest `REDISnnnn` version the loader reads (Redis 7.4).
pub const MAX_REDIS_VERSION: u32 = 12;
/// `VALKEYnnn` versions the loader reads (Valkey 9.0 and 9.2).
pub const VALKEY_VERSIONS: std::ops::RangeInclusive<u32> = 80..=81;

/// Value type ids (`rdb.h`, FORMATS.md §4.3).
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
}

/// Opcodes (`rdb.h`, FORMATS.md §4.2).
pub mod opcodes {
    /// Valkey 9: inline replication command during a forkless save.
    pub const UPDATE: u8 = 242;
    /// Valkey 9: slot import state.
    pub const SLOT_IMPORT: u8 = 243;
    /// Redis 7.4: per-slot sizes (ignored outside cluster mode).
    pub const SLOT_INFO: u8 = 244;
    pub const FUNCTION2: u8 = 245;
    /// 7.0 release candidates' function format.
    pub const FUNCTION_PRE_GA: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Drop keys whose expiry is before this unix time in ms (a dump.rdb loaded by a master at start-up);
    /// `None` keeps every key (an AOF base, a replica's load).
    pub drop_expired_before_ms: Option<i64>,
    /// Verify the trailing CRC-64 (skipped anyway when the file stores 0, i.e. was saved with
    /// `rdbchecksum no`).
    pub verify_checksum: bool,
    /// Encoding thresholds and the number of databases.
    pub cfg: EngineConfig,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { drop_expired_before_ms: None, verify_checksum: true, cfg: EngineConfig::default() }
    }
}

/// Where loaded keys go.
pub trait LoadTarget {
    /// RESIZEDB hint for `db`: about `keys` keys of which `expires` have a TTL (already capped by the
    /// loader to what the rest of the file can hold).
    fn resize(&mut self, db: usize, keys: u64, expires: u64);
    /// Adds a key. A key that already exists is an error ([`RdbError::duplicate_key`]), as in Redis.
    fn insert(&mut self, db: usize, key: &[u8], value: Value, expire_at: Option<i64>) -> Result<(), RdbError>;
    /// [`LoadTarget::insert`] of a key whose [`hash_of`] is `hash` (the parallel loader computes it once).
    fn insert_hashed(
        &mut self,
        db: usize,
        _hash: u64,
        key: &[u8],
        value: Value,
        expire_at: Option<i64>,
    ) -> Result<(), RdbError> {
        self.insert(db, key, value, expire_at)
    }
    /// Adds an entry made by [`Entry::detached`] (whose key's [`hash_of`] is `hash`), with the errors of
    /// [`LoadTarget::insert`].
    // Boxed because a keyspace links the allocation as it is; this fallback only unpacks it.
    #[allow(clippy::boxed_local)]
    fn insert_entry(&mut self, db: usize, hash: u64, entry: Box<Entry<Value>>) -> Result<(), RdbError> {
        let (key, value, expire_at) = entry.into_parts();
        self.insert_hashed(db, hash, &key, value, (expire_at != NO_EXPIRE).then_some(expire_at))
    }
    /// A key whose [`hash_of`] is `hash` will be inserted into `db` soon: a target with a hash table can warm
    /// its cache (see [`crate::table::Table::prefetch`]). The parallel loader calls this for each step, a few
    /// keys ahead, so that the memory misses of several inserts overlap.
    fn prefetch(&mut self, _db: usize, _hash: u64, _step: Prefetch) {}
}

/// One shard's target in [`load_sharded`], used from that shard's loader thread. The loader hands over keys
/// in batches, in file order: `batch` runs `f` with the [`LoadTarget`] that takes the next batch, so a
/// target that lives behind a lock takes it once per batch (not once per key) and releases it between
/// batches. Every `LoadTarget + Send` is a `ShardTarget` that needs no lock.
pub trait ShardTarget: Send {
    fn batch(&mut self, f: &mut dyn FnMut(&mut dyn LoadTarget));
}

impl<T: LoadTarget + Send> ShardTarget for T {
    fn batch(&mut self, f: &mut dyn FnMut(&mut dyn LoadTarget)) {
        f(self)
    }
}

impl LoadTarget for Keyspace {
    fn resize(&mut self, db: usize, keys: u64, _expires: u64) {
        if let Some(d) = self.dbs.get_mut(db) {
            if d.is_empty() {
                *d = crate::keyspace::Db::with_capacity(keys as usize);
            }
        }
    }

    fn prefetch(&mut self, db: usize, hash: u64, step: Prefetch) {
        if let Some(d) = self.dbs.get(db) {
            d.table.prefetch_hashed(hash, step);
        }
    }

    fn insert(&mut self, db: usize, key: &[u8], value: Value, expire_at: Option<i64>) -> Result<(), RdbError> {
        self.insert_hashed(db, hash_of(key), key, value, expire_at)
    }

    fn insert_entry(&mut self, db: usize, hash: u64, entry: Box<Entry<Value>>) -> Result<(), RdbError> {
        let databases = self.dbs.len();
        let Some(d) = self.dbs.get_mut(db) else {
            return Err(RdbError::new(ErrorKind::DbIndex { db: db as u64, databases }, 0));
        };
        d.insert_entry(hash, entry).map_err(|_| RdbError::new(ErrorKind::DuplicateKey, 0))
    }

    fn insert_hashed(
        &mut self,
        db: usize,
        hash: u64,
        key: &[u8],
        value: Value,
        expire_at: Option<i64>,
    ) -> Result<(), RdbError> {
        let databases = self.dbs.len();
        let Some(d) = self.dbs.get_mut(db) else {
            return Err(RdbError::new(ErrorKind::DbIndex { db: db as u64, databases }, 0));
        };
        // One lookup instead of a check then an insert: a key that was already there is an error (the loader
        // adds the key's name), and a failed load is abandoned anyway.
        match d.insert_hashed(hash, key, value, expire_at) {
            None => Ok(()),
            Some(_) => Err(RdbError::new(ErrorKind::DuplicateKey, 0)),
        }
    }
}

/// A target that keeps nothing: validates a file (a `check` tool) without building a keyspace.
#[derive(Debug, Default)]
pub struct Discard;

impl LoadTarget for Discard {
    fn resize(&mut self, _db: usize, _keys: u64, _expires: u64) {}
    fn insert(&mut self, _db: usize, _key: &[u8], _value: Value, _expire_at: Option<i64>) -> Result<(), RdbError> {
        Ok(())
    }
}

/// Per-database counts of a load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbStats {
    pub keys: u64,
    pub expires: u64,
    /// The RESIZEDB hint, if the file had one.
    pub resize_hint: Option<(u64, u64)>,
}

/// Outcome of the trailing checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumStatus {
    /// RDB < 5: the format has no checksum.
    #[default]
    Absent,
    /// Stored as 0 (`rdbchecksum no`): "RDB file was saved with checksum disabled: no check performed."
    Disabled,
    /// Present, not verified (`LoadOptions::verify_checksum` off).
    NotChecked(u64),
    Verified(u64),
}

/// A name and a value, as AUX fields are stored.
pub type AuxField = (Box<[u8]>, Box<[u8]>);

/// A key that was passed over (streams, module values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    pub db: usize,
    pub key: Box<[u8]>,
    pub kind: SkipKind,
}

/// What a load found.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LoadReport {
    pub version: u32,
    /// The file started with `VALKEY` rather than `REDIS`.
    pub valkey: bool,
    /// AUX fields Moon knows ([`KNOWN_AUX`]), in file order. Others are skipped (counted in `aux_unknown`).
    pub aux: Vec<AuxField>,
    pub aux_unknown: u64,
    /// Function libraries (FUNCTION2 records): each library's code, `#!lua name=...` first.
    pub functions: Vec<Box<[u8]>>,
    pub dbs: BTreeMap<usize, DbStats>,
    pub keys_loaded: u64,
    pub expires_loaded: u64,
    /// Keys dropped because they had expired (`LoadOptions::drop_expired_before_ms`).
    pub expired_dropped: u64,
    /// Empty collections skipped, as Redis does.
    pub empty_skipped: u64,
    pub streams_skipped: u64,
    pub modules_skipped: u64,
    pub module_aux_skipped: u64,
    /// The first [`SKIPPED_SAMPLES`] skipped keys, for the log.
    pub skipped_samples: Vec<SkippedKey>,
    pub checksum: ChecksumStatus,
    /// Bytes of the input that belong to the RDB (through the checksum): an AOF with an RDB preamble
    /// continues with commands here.
    pub bytes_consumed: usize,
}

/// AUX fields kept in [`LoadReport::aux`].
pub const KNOWN_AUX: &[&str] = &[
    "redis-ver",
    "redis-bits",
    "ctime",
    "used-mem",
    "repl-stream-db",
    "repl-id",
    "repl-offset",
    "aof-base",
    "aof-preamble",
    "valkey-ver",
];

/// How many skipped keys [`LoadReport::skipped_samples`] keeps.
pub const SKIPPED_SAMPLES: usize = 16;

impl LoadReport {
    /// The value of a known AUX field.
    pub fn aux(&self, name: &str) -> Option<&[u8]> {
        self.aux.iter().find(|(k, _)| &k[..] == name.as_bytes()).map(|(_, v)| &v[..])
    }

    /// Whether the file says it is an AOF base (`aof-base 1`, or the older `aof-preamble 1`).
    pub fn is_aof_base(&self) -> bool {
        self.aux("aof-base").or_else(|| self.aux("aof-preamble")) == Some(b"1")
    }

    /// One line per thing an operator should know about (skipped streams and modules, empty keys).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.streams_skipped > 0 {
            w.push(format!("{} stream key(s) skipped: Moon has no stream type", self.streams_skipped));
        }
        if self.modules_skipped > 0 {
            w.push(format!("{} module value(s) skipped: Moon has no modules", self.modules_skipped));
        }
        if self.module_aux_skipped > 0 {
            w.push(format!("{} module AUX record(s) skipped", self.module_aux_skipped));
        }
        if self.empty_skipped > 0 {
            w.push(format!("{} empty key(s) skipped", self.empty_skipped));
        }
        for s in &self.skipped_samples {
            w.push(format!("skipped {:?} in db {}: '{}'", s.kind, s.db, s.key.escape_ascii()));
        }
        w
    }
}

/// Reads the whole file, then [`load`]s it.
pub fn load_file(path: &Path, opts: &LoadOptions, target: &mut dyn LoadTarget) -> Result<LoadReport, RdbError> {
    let bytes =
        std::fs::read(path).map_err(|source| RdbError::new(ErrorKind::Io { path: path.to_path_buf(), source }, 0))?;
    load(&bytes, opts, target)
}

/// Decodes one value of RDB type `rdb_type` from `bytes` (RESTORE's payload body). `Ok(None)` for an empty
/// collection. Streams and module values are refused. Trailing bytes are ignored, as Redis does.
pub fn decode_value(rdb_type: u8, bytes: &[u8], cfg: &EngineConfig) -> Result<Option<Value>, RdbError> {
    let mut inp = input::Input::new(bytes);
    match decode::read_object(&mut inp, rdb_type, cfg, false)? {
        decode::Decoded::Value(v) => Ok(Some(v)),
        decode::Decoded::Empty => Ok(None),
        decode::Decoded::Skipped(kind) => {
            Err(RdbError::new(ErrorKind::Unsupported(format!("{kind:?} values can't be restored")), 0))
        }
    }
}

/// A DUMP payload: type byte, value, RDB version (u16 LE), CRC-64 of all that (u64 LE).
pub fn dump_payload(value: &Value, opts: &WriteOptions) -> Vec<u8> {
    let mut out = vec![0];
    out[0] = encode::encode_value_into(value, opts, &mut out);
    out.extend_from_slice(&(RDB_VERSION as u16).to_le_bytes());
    let crc = crc64::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a DUMP payload's footer like Redis 7.0's `verifyDumpPayload`: at least 10 bytes, RDB version at
/// most [`RDB_VERSION`], CRC-64 matching. Returns the type byte and the bytes after it, footer included:
/// Redis decodes the value from the whole buffer, so a value that runs into the footer still restores, and
/// so it does here.
pub fn verify_dump_payload(p: &[u8]) -> Option<(u8, &[u8])> {
    if p.len() < 10 {
        return None;
    }
    let footer = p.len() - 10;
    let version = u16::from_le_bytes([p[footer], p[footer + 1]]);
    if u32::from(version) > RDB_VERSION {
        return None;
    }
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&p[footer + 2..]);
    if crc64_clmul::crc64(&p[..footer + 2]) != u64::from_le_bytes(stored) {
        return None;
    }
    let (&ty, rest) = p.split_first()?;
    Some((ty, rest))
}
