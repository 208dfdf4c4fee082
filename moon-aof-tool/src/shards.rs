//! A dataset split over one keyspace per core by key hash, so that an RDB base decodes on every core
//! (`rdb::load_sharded`, the server's parallel loader) and the RESP files replay through the engine's
//! executor as on the server's sharded store (commands reach each key's shard through [`Store`]).

use crate::dataset::key_hash;
use engine::keyspace::{Db, Keyspace, Store};
use engine::rdb::{self, LoadOptions, LoadReport, LoadTarget, RdbError, ShardTarget};
use engine::table::Entry;
use engine::types::Value;

pub struct Shards {
    parts: Vec<Keyspace>,
}

impl Shards {
    pub fn new(shards: usize, databases: usize) -> Shards {
        Shards { parts: (0..shards.max(1)).map(|_| Keyspace::new(databases)).collect() }
    }

    /// One shard per rayon thread (at most 16).
    pub fn per_core(databases: usize) -> Shards {
        Shards::new(rayon::current_num_threads().clamp(1, 16), databases)
    }

    fn route(key: &[u8]) -> usize {
        key_hash(0, 0, key) as usize
    }

    fn shard_of(&self, key: &[u8]) -> usize {
        Shards::route(key) % self.parts.len()
    }

    /// Keys of database `db`.
    pub fn db_len(&self, db: usize) -> usize {
        self.parts.iter().map(|p| p.dbs[db].len()).sum()
    }

    /// Keys with a TTL in database `db`.
    pub fn db_expires(&self, db: usize) -> usize {
        self.parts.iter().map(|p| p.dbs[db].expires_count()).sum()
    }

    pub fn keys(&self) -> usize {
        (0..self.num_dbs()).map(|db| self.db_len(db)).sum()
    }

    /// Every entry of database `db`, shard after shard.
    pub fn entries(&self, db: usize) -> impl Iterator<Item = &Entry<Value>> {
        self.parts.iter().flat_map(move |p| p.dbs[db].table.iter())
    }

    /// Decodes an RDB into the shards on every core (`Err` as `rdb::load` reports it).
    pub fn load_rdb(&mut self, bytes: &[u8], opts: &LoadOptions) -> Result<LoadReport, RdbError> {
        let mut targets: Vec<&mut dyn ShardTarget> = self.parts.iter_mut().map(|p| p as &mut dyn ShardTarget).collect();
        rdb::load_sharded(bytes, opts, &Shards::route, &mut targets, &|_| {})
    }
}

impl Store for Shards {
    fn num_dbs(&self) -> usize {
        self.parts[0].dbs.len()
    }
    fn db_for(&mut self, db: usize, key: &[u8]) -> &mut Db {
        let s = self.shard_of(key);
        &mut self.parts[s].dbs[db]
    }
    fn db_for_ref(&self, db: usize, key: &[u8]) -> &Db {
        &self.parts[self.shard_of(key)].dbs[db]
    }
    fn shard_count(&self) -> usize {
        self.parts.len()
    }
    fn shard_db(&mut self, shard: usize, db: usize) -> &mut Db {
        &mut self.parts[shard].dbs[db]
    }
    fn shard_db_ref(&self, shard: usize, db: usize) -> &Db {
        &self.parts[shard].dbs[db]
    }
    fn swap_dbs(&mut self, a: usize, b: usize) {
        for p in &mut self.parts {
            p.dbs.swap(a, b);
        }
    }
}

/// Sequential RDB loading (an RDB part the parallel path did not take): each key to its shard.
impl LoadTarget for Shards {
    fn resize(&mut self, _db: usize, _keys: u64, _expires: u64) {}

    fn insert(&mut self, db: usize, key: &[u8], value: Value, expire_at: Option<i64>) -> Result<(), RdbError> {
        let s = self.shard_of(key);
        LoadTarget::insert(&mut self.parts[s], db, key, value, expire_at)
    }
}

/// Replays into [`Shards`] through the engine's executor, as into one keyspace (`ks` is the shards).
pub type ShardsReplayer<'a> = engine::aof::load::KeyspaceReplayer<'a, Shards>;
