//! Moon's engine: everything that does not need a network or an async runtime.
//!
//! Module map (who owns what, who calls it):
//! - [`resp`]: RESP2/RESP3 request parsing (streaming, zero-copy arguments) and reply encoding. Called by the
//!   server for every connection and by the AOF reader.
//! - [`table`]: the hash table each shard's database owns: incremental rehash, SCAN cursor that survives growth,
//!   and fork-less point-in-time snapshots through per-entry versions (DESIGN.md §1).
//! - [`types`]: the five value types with their compact and large encodings (`OBJECT ENCODING`).
//! - [`keyspace`]: databases (`Db`), the per-shard `Keyspace`, lazy and active expiry, and the [`keyspace::Store`]
//!   trait through which the executor reaches keys that may live on several shards.
//! - [`config`]: the engine-level settings (listpack thresholds, limits) shared by the server and the tools.
//! - [`cmd`]: the command table (name, arity, flags, key positions) and the single executor used by live
//!   traffic and by AOF replay; one file per command family.
//! - [`rdb`]: Redis-compatible RDB files: the loader that decodes a dump or AOF base straight into the keyspace,
//!   the writer of `REDIS0010` files, and the value encoding DUMP/RESTORE use. Called by the server's
//!   persistence code and by the tools.
//! - [`aof`]: Redis 7 multi-part AOF: manifest, directory state and its transitions, the command stream
//!   reader, loading (base then incr replay), the incr writer and the RESP rewrite form (DESIGN.md §5).
//! - [`digest`]: `DEBUG DIGEST` / `DEBUG DIGEST-VALUE`, bit-for-bit Redis 7.0's dataset fingerprint.
//! - [`glob`]: Redis-style glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE).
//! - [`util`]: number parsing and formatting exactly as Redis does it.

pub mod aof;
pub mod cmd;
pub mod config;
pub mod digest;
pub mod glob;
pub mod keyspace;
pub mod rdb;
pub mod resp;
pub mod table;
pub mod types;
pub mod util;
