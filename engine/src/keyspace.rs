//! Databases and the per-shard keyspace.
//!
//! A [`Db`] is one numbered database's share of keys on one shard: a [`Table`] of [`Value`]s with their
//! expiry. A [`Keyspace`] is all databases of one shard. The executor never touches these directly: it goes
//! through the [`Store`] trait, which a single `Keyspace` implements (one shard) and the server implements
//! for a set of locked shards (cross-shard commands), so live traffic and replay share one code path.
//!
//! Expiry follows Redis: a key is deleted lazily when a command touches it after its deadline, and an
//! active cycle ([`Db::active_expire_step`]) that the server drives samples keys with a TTL.

use crate::table::{hash_of, Entry, IntoKey, Table, NO_EXPIRE};
use crate::types::Value;

/// Stores an optional deadline in the table's sentinel form. `i64::MIN` is the sentinel, so a real deadline
/// that low (long past anyway) is nudged up by one millisecond.
pub fn encode_expire(expire_at: Option<i64>) -> i64 {
    match expire_at {
        None => NO_EXPIRE,
        Some(t) => t.max(NO_EXPIRE + 1),
    }
}

/// One database's keys on one shard.
pub struct Db {
    pub table: Table<Value>,
    /// Keys with a TTL (what `INFO keyspace` reports as `expires`).
    expires: usize,
    /// Where the active expiry cycle resumes its scan.
    expire_cursor: u64,
}

impl Default for Db {
    fn default() -> Self {
        Db::new()
    }
}

impl Db {
    pub fn new() -> Self {
        Db { table: Table::new(), expires: 0, expire_cursor: 0 }
    }

    pub fn with_capacity(n: usize) -> Self {
        Db { table: Table::with_capacity(n), expires: 0, expire_cursor: 0 }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Number of keys that carry a TTL.
    pub fn expires_count(&self) -> usize {
        self.expires
    }

    /// Whether `key` exists and has expired at `now_ms`.
    pub fn is_expired(&self, key: &[u8], now_ms: i64) -> bool {
        // Most databases hold no key with a TTL: no lookup then.
        self.expires != 0 && matches!(self.table.get(key), Some(e) if e.has_expire() && e.expire_at() <= now_ms)
    }

    /// Deletes `key` if it has expired; returns true when it did.
    pub fn expire_if_needed(&mut self, key: &[u8], now_ms: i64) -> bool {
        if self.is_expired(key, now_ms) {
            self.remove(key);
            true
        } else {
            false
        }
    }

    /// Read access with no expiry check (callers run `expire_if_needed` first).
    pub fn get(&self, key: &[u8]) -> Option<&Entry<Value>> {
        self.table.get(key)
    }

    /// Write access to a value (the table saves the pre-image for a running snapshot first).
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.table.get_mut(key).map(|e| &mut e.value)
    }

    /// The expiry of `key` in unix ms, if it has one.
    pub fn expire_of(&self, key: &[u8]) -> Option<i64> {
        self.table.get(key).and_then(|e| e.has_expire().then(|| e.expire_at()))
    }

    /// Sets or clears the expiry of an existing key; returns false when the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], expire_at: Option<i64>) -> bool {
        let Some(e) = self.table.get_mut(key) else { return false };
        let had = e.has_expire();
        e.set_expire_at(encode_expire(expire_at));
        match (had, expire_at.is_some()) {
            (false, true) => self.expires += 1,
            (true, false) => self.expires -= 1,
            _ => {}
        }
        true
    }

    /// Inserts or replaces `key`, with an optional expiry. Returns the old value if there was one.
    pub fn insert(&mut self, key: &[u8], value: Value, expire_at: Option<i64>) -> Option<Value> {
        self.insert_hashed(hash_of(key), key, value, expire_at)
    }

    /// [`Db::insert`] of a key whose [`hash_of`] is `hash`.
    pub fn insert_hashed(
        &mut self,
        hash: u64,
        key: impl IntoKey,
        value: Value,
        expire_at: Option<i64>,
    ) -> Option<Value> {
        let exp = encode_expire(expire_at);
        let old = self.table.insert_hashed(hash, key, value, exp);
        if let Some((_, old_exp)) = &old {
            if *old_exp != NO_EXPIRE {
                self.expires -= 1;
            }
        }
        if exp != NO_EXPIRE {
            self.expires += 1;
        }
        old.map(|(v, _)| v)
    }

    /// Adds an entry made by [`Entry::detached`] whose key's hash is `hash`, unless the key is already present
    /// (then the entry comes back and nothing changes).
    pub fn insert_entry(&mut self, hash: u64, e: Box<Entry<Value>>) -> Result<(), Box<Entry<Value>>> {
        let has_expire = e.has_expire();
        self.table.insert_entry(hash, e)?;
        self.expires += usize::from(has_expire);
        Ok(())
    }

    /// [`Db::insert_entry`] of a key the caller knows is absent (see [`Table::insert_entry_absent`]).
    pub fn insert_entry_absent(&mut self, hash: u64, e: Box<Entry<Value>>) {
        self.expires += usize::from(e.has_expire());
        self.table.insert_entry_absent(hash, e);
    }

    /// Replaces the value of `key` keeping its TTL (or inserts with no TTL).
    pub fn insert_keep_ttl(&mut self, key: &[u8], value: Value) -> Option<Value> {
        let exp = self.expire_of(key);
        self.insert(key, value, exp)
    }

    /// Removes `key`, returning its value and expiry.
    pub fn remove(&mut self, key: &[u8]) -> Option<(Value, Option<i64>)> {
        let e = self.table.remove(key)?;
        let exp = e.has_expire().then(|| e.expire_at());
        if exp.is_some() {
            self.expires -= 1;
        }
        Some((e.value, exp))
    }

    pub fn clear(&mut self) {
        self.table.clear();
        self.expires = 0;
        self.expire_cursor = 0;
    }

    /// One step of the active expiry cycle: scans about `budget` buckets from where the last step stopped and
    /// deletes keys whose deadline has passed. Returns the deleted keys (the caller logs them as DEL).
    pub fn active_expire_step(&mut self, now_ms: i64, budget: usize) -> Vec<Box<[u8]>> {
        let mut dead = Vec::new();
        if self.expires == 0 {
            return dead;
        }
        let mut cursor = self.expire_cursor;
        for _ in 0..budget {
            cursor = self.table.scan(cursor, |e| {
                if e.has_expire() && e.expire_at() <= now_ms {
                    dead.push(e.key[..].into());
                }
            });
            if cursor == 0 {
                break;
            }
        }
        self.expire_cursor = cursor;
        for k in &dead {
            self.remove(k);
        }
        dead
    }
}

/// All databases of one shard.
pub struct Keyspace {
    pub dbs: Vec<Db>,
}

impl Keyspace {
    pub fn new(databases: usize) -> Self {
        Keyspace { dbs: (0..databases.max(1)).map(|_| Db::new()).collect() }
    }
}

/// How the executor reaches keys. One shard: [`Keyspace`]. Several shards: the server's view of the shards a
/// command has locked. Routing is by key, so the executor never needs to know about shards.
pub trait Store {
    /// Number of databases (`databases`).
    fn num_dbs(&self) -> usize;
    /// Database `db` on the shard that owns `key`.
    fn db_for(&mut self, db: usize, key: &[u8]) -> &mut Db;
    /// Read-only form of [`Store::db_for`].
    fn db_for_ref(&self, db: usize, key: &[u8]) -> &Db;
    /// Number of shards in this view (for commands that visit every key: KEYS, SCAN, DBSIZE, FLUSHDB ...).
    fn shard_count(&self) -> usize;
    /// Shard `shard`'s part of database `db`.
    fn shard_db(&mut self, shard: usize, db: usize) -> &mut Db;
    /// Read-only form of [`Store::shard_db`].
    fn shard_db_ref(&self, shard: usize, db: usize) -> &Db;
    /// SWAPDB: exchange two databases on every shard.
    fn swap_dbs(&mut self, a: usize, b: usize);
}

impl Store for Keyspace {
    fn num_dbs(&self) -> usize {
        self.dbs.len()
    }
    fn db_for(&mut self, db: usize, _key: &[u8]) -> &mut Db {
        &mut self.dbs[db]
    }
    fn db_for_ref(&self, db: usize, _key: &[u8]) -> &Db {
        &self.dbs[db]
    }
    fn shard_count(&self) -> usize {
        1
    }
    fn shard_db(&mut self, _shard: usize, db: usize) -> &mut Db {
        &mut self.dbs[db]
    }
    fn shard_db_ref(&self, _shard: usize, db: usize) -> &Db {
        &self.dbs[db]
    }
    fn swap_dbs(&mut self, a: usize, b: usize) {
        self.dbs.swap(a, b);
    }
}
