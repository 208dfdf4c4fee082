//! The shards and how commands reach them.
//!
//! Keys are spread over `shards` partitions by Redis Cluster's rule: CRC16 of the key (or of its `{hash tag}`)
//! gives a slot in 0..16384, and the slot modulo the shard count gives the shard. Each shard's [`Keyspace`]
//! sits behind its own mutex. A command locks exactly the shards its keys live on, in ascending shard order
//! (so two cross-shard commands can never deadlock), runs through the engine's single executor with a
//! [`LockedShards`] view, and releases. Single-shard commands take one uncontended lock.

use engine::keyspace::{Db, Keyspace, Store};
use parking_lot::{Mutex, MutexGuard};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Number of Redis Cluster hash slots.
pub const SLOTS: u16 = 16384;

/// CRC16/XMODEM lookup tables (polynomial 0x1021), built at compile time. `CRC16_TABLES[0]` is the classic
/// byte table; `CRC16_TABLES[k][x]` is the CRC of byte `x` followed by `k` zero bytes, so that 8 bytes are
/// folded in with 8 independent lookups (slice-by-8) instead of a chain of 8 dependent ones: routing a key
/// is on the path of every command and of every key a load reads.
const CRC16_TABLES: [[u16; 256]; 8] = {
    let mut tables = [[0u16; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = tables[k - 1][i];
            tables[k][i] = (prev << 8) ^ tables[0][(prev >> 8) as usize];
            i += 1;
        }
        k += 1;
    }
    tables
};

/// CRC16/XMODEM, as Redis Cluster's `keyHashSlot` uses.
fn crc16(data: &[u8]) -> u16 {
    let t = &CRC16_TABLES;
    // XMODEM starts from 0 with no final xor, so zero bytes in front leave the CRC unchanged: the first
    // `len % 8` bytes are read as the end of a zero-padded 8-byte chunk (independent lookups, where a
    // remainder taken a byte at a time at the end was a chain of dependent ones).
    let head = data.len() % 8;
    let mut crc = 0u16;
    for (j, &b) in data[..head].iter().enumerate() {
        crc ^= t[head - 1 - j][usize::from(b)];
    }
    for c in data[head..].chunks_exact(8) {
        // The register's two bytes fold into the first two data bytes.
        let [hi, lo] = crc.to_be_bytes();
        crc = t[7][usize::from(c[0] ^ hi)]
            ^ t[6][usize::from(c[1] ^ lo)]
            ^ t[5][usize::from(c[2])]
            ^ t[4][usize::from(c[3])]
            ^ t[3][usize::from(c[4])]
            ^ t[2][usize::from(c[5])]
            ^ t[1][usize::from(c[6])]
            ^ t[0][usize::from(c[7])];
    }
    crc
}

/// The cluster slot of a key, honouring `{hash tags}` exactly as Redis does.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = find_byte(key, b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&c| c == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) & (SLOTS - 1)
}

/// The first position of `byte` in `hay`, 8 bytes at a time (most keys have no `{`: the whole key is read).
fn find_byte(hay: &[u8], byte: u8) -> Option<usize> {
    const LOW: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let pattern = u64::from_le_bytes([byte; 8]);
    let mut words = hay.chunks_exact(8);
    for (i, w) in (&mut words).enumerate() {
        let x = u64::from_le_bytes(w.try_into().expect("8 bytes")) ^ pattern;
        // The lowest set bit marks the first zero byte of `x` exactly (a borrow only reaches higher bytes).
        let zero = x.wrapping_sub(LOW) & !x & HIGH;
        if zero != 0 {
            return Some(i * 8 + (zero.trailing_zeros() / 8) as usize);
        }
    }
    let done = hay.len() - words.remainder().len();
    words.remainder().iter().position(|&c| c == byte).map(|p| done + p)
}

/// A key in a numbered database.
pub type DbKey = (usize, Box<[u8]>);

/// One shard: its keys, plus the per-key bookkeeping that must change under the same lock as the keys.
pub struct Shard {
    pub ks: Keyspace,
    /// WATCHed keys and who watches them (MULTI/EXEC's check-and-set).
    pub watched: HashMap<DbKey, Vec<Watcher>>,
    /// Clients blocked on a key (BLPOP ...), first come first served (see `blocking`).
    pub blocked: HashMap<DbKey, std::collections::VecDeque<Arc<crate::blocking::Waiter>>>,
}

/// One client's watch on one key.
pub struct Watcher {
    /// The client's "dirty" flag: set when a watched key changes.
    pub dirty: Arc<AtomicBool>,
    /// The key had already expired when WATCH ran. As in Redis 7.0, its later deletion is then not a change,
    /// and EXEC does not abort because it is expired.
    pub expired: bool,
}

impl Shard {
    /// Marks every client watching `key` in `db` as dirty.
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        let gone = self.ks.dbs.get(db).is_none_or(|d| d.get(key).is_none());
        if let Some(watchers) = self.watched.get_mut(&(db, Box::from(key))) {
            for w in watchers {
                if w.expired && gone {
                    w.expired = false;
                    continue;
                }
                w.dirty.store(true, Ordering::Release);
            }
        }
    }

    /// Marks every client watching any key of `db` (all DBs when `None`) as dirty.
    pub fn touch_db(&mut self, db: Option<usize>) {
        for ((d, _), watchers) in &self.watched {
            if db.is_none_or(|x| x == *d) {
                for w in watchers {
                    w.dirty.store(true, Ordering::Release);
                }
            }
        }
    }
}

/// All shards of the server.
pub struct Shards {
    parts: Vec<Mutex<Shard>>,
    databases: usize,
}

impl Shards {
    pub fn new(count: usize, databases: usize) -> Self {
        let parts = (0..count.max(1))
            .map(|_| {
                Mutex::new(Shard { ks: Keyspace::new(databases), watched: HashMap::new(), blocked: HashMap::new() })
            })
            .collect();
        Shards { parts, databases }
    }

    pub fn databases(&self) -> usize {
        self.databases
    }

    pub fn count(&self) -> usize {
        self.parts.len()
    }

    /// The shard owning `key`.
    pub fn shard_of(&self, key: &[u8]) -> usize {
        match self.parts.len() {
            1 => 0,
            // A 32-bit division: several times cheaper than a 64-bit one, and a loader routes every key.
            n => (u32::from(key_slot(key)) % n as u32) as usize,
        }
    }

    /// Locks one shard.
    pub fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.parts[shard].lock()
    }

    /// Locks the given shards (any order, duplicates allowed) in ascending order.
    pub fn lock_set(&self, mut shards: Vec<usize>) -> LockedShards<'_> {
        shards.sort_unstable();
        shards.dedup();
        let guards = Guards::Many(shards.iter().map(|&s| (s, self.parts[s].lock())).collect());
        LockedShards { shards: self, guards, memo: KeyMemo::default() }
    }

    /// Locks exactly one shard (the common single-key case, without sorting or extra allocation).
    pub fn lock_single(&self, shard: usize) -> LockedShards<'_> {
        LockedShards {
            shards: self,
            guards: Guards::One([(shard, self.parts[shard].lock())]),
            memo: KeyMemo::default(),
        }
    }

    /// Locks every shard.
    pub fn lock_all(&self) -> LockedShards<'_> {
        self.lock_set((0..self.parts.len()).collect())
    }

    /// Locks the shards owning `keys`.
    pub fn lock_keys<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> LockedShards<'_> {
        self.lock_set(keys.into_iter().map(|k| self.shard_of(k)).collect())
    }
}

/// A set of locked shards: the [`Store`] the executor runs against.
pub struct LockedShards<'a> {
    shards: &'a Shards,
    guards: Guards<'a>,
    memo: KeyMemo,
}

/// Keys up to this long have their shard remembered by [`KeyMemo`].
const MEMO_MAX: usize = 32;

/// The last short key routed in a view and its shard: a command looks its key up several times (lock,
/// expiry check, read or write), and with several shards each would hash it again. Compared by content, so
/// a key built in a reused buffer is never mistaken for another.
struct KeyMemo {
    len: Cell<usize>,
    bytes: Cell<[u8; MEMO_MAX]>,
    shard: Cell<usize>,
}

impl Default for KeyMemo {
    fn default() -> Self {
        KeyMemo { len: Cell::new(usize::MAX), bytes: Cell::new([0; MEMO_MAX]), shard: Cell::new(0) }
    }
}

impl KeyMemo {
    fn get(&self, key: &[u8]) -> Option<usize> {
        (key.len() == self.len.get() && self.bytes.get()[..key.len()] == *key).then(|| self.shard.get())
    }

    fn set(&self, key: &[u8], shard: usize) {
        if key.len() <= MEMO_MAX {
            let mut b = [0; MEMO_MAX];
            b[..key.len()].copy_from_slice(key);
            self.bytes.set(b);
            self.len.set(key.len());
            self.shard.set(shard);
        }
    }
}

/// The held guards, ascending by shard. One shard (most commands) is kept inline: no allocation per command.
enum Guards<'a> {
    One([(usize, MutexGuard<'a, Shard>); 1]),
    Many(Vec<(usize, MutexGuard<'a, Shard>)>),
}

impl<'a> Guards<'a> {
    fn as_slice(&self) -> &[(usize, MutexGuard<'a, Shard>)] {
        match self {
            Guards::One(g) => g,
            Guards::Many(g) => g,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [(usize, MutexGuard<'a, Shard>)] {
        match self {
            Guards::One(g) => g,
            Guards::Many(g) => g,
        }
    }
}

impl<'a> LockedShards<'a> {
    /// The shard owning `key` (hashed once per key and view, see [`KeyMemo`]).
    fn shard_of(&self, key: &[u8]) -> usize {
        if self.shards.count() == 1 {
            return 0;
        }
        if let Some(s) = self.memo.get(key) {
            return s;
        }
        let s = self.shards.shard_of(key);
        self.memo.set(key, s);
        s
    }

    /// Records that `key` lives on `shard` (the caller routed it already).
    pub fn remember(&self, key: &[u8], shard: usize) {
        if self.shards.count() > 1 {
            self.memo.set(key, shard);
        }
    }

    fn position(&self, shard: usize) -> usize {
        let guards = self.guards.as_slice();
        if let [(only, _)] = guards {
            if *only == shard {
                return 0;
            }
        }
        match guards.binary_search_by_key(&shard, |(s, _)| *s) {
            Ok(i) => i,
            // A command touched a key outside its declared key positions: a bug in the command table.
            Err(_) => panic!("shard {shard} used without being locked"),
        }
    }

    /// Whether this view holds every shard.
    pub fn holds_all(&self) -> bool {
        self.guards.as_slice().len() == self.shards.count()
    }

    /// Shard ids held, ascending.
    pub fn held(&self) -> impl Iterator<Item = usize> + '_ {
        self.guards.as_slice().iter().map(|(s, _)| *s)
    }

    /// The locked shard owning `key`.
    pub fn shard_for(&mut self, key: &[u8]) -> &mut Shard {
        let i = self.position(self.shard_of(key));
        &mut self.guards.as_mut_slice()[i].1
    }

    /// Every locked shard.
    pub fn each(&mut self) -> impl Iterator<Item = &mut Shard> + use<'_, 'a> {
        self.guards.as_mut_slice().iter_mut().map(|(_, g)| &mut **g)
    }
}

impl Store for LockedShards<'_> {
    fn num_dbs(&self) -> usize {
        self.shards.databases
    }

    fn db_for(&mut self, db: usize, key: &[u8]) -> &mut Db {
        let i = self.position(self.shard_of(key));
        &mut self.guards.as_mut_slice()[i].1.ks.dbs[db]
    }

    fn db_for_ref(&self, db: usize, key: &[u8]) -> &Db {
        let i = self.position(self.shard_of(key));
        &self.guards.as_slice()[i].1.ks.dbs[db]
    }

    fn shard_count(&self) -> usize {
        self.guards.as_slice().len()
    }

    fn shard_db(&mut self, shard: usize, db: usize) -> &mut Db {
        &mut self.guards.as_mut_slice()[shard].1.ks.dbs[db]
    }

    fn shard_db_ref(&self, shard: usize, db: usize) -> &Db {
        &self.guards.as_slice()[shard].1.ks.dbs[db]
    }

    fn swap_dbs(&mut self, a: usize, b: usize) {
        for (_, g) in self.guards.as_mut_slice() {
            g.ks.dbs.swap(a, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_by_8_crc16_matches_the_bitwise_definition() {
        fn bitwise(data: &[u8]) -> u16 {
            let mut crc = 0u16;
            for &b in data {
                crc ^= u16::from(b) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
                }
            }
            crc
        }
        let mut rng = fastrand::Rng::with_seed(16);
        for len in 0..80 {
            for _ in 0..20 {
                let data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
                assert_eq!(crc16(&data), bitwise(&data), "{data:?}");
            }
        }
    }

    #[test]
    fn find_byte_finds_the_first_occurrence() {
        let mut rng = fastrand::Rng::with_seed(123);
        for len in 0..40 {
            for _ in 0..50 {
                // Few distinct bytes (and 0x7a/0x7c around '{'), so matches and near-misses are frequent.
                let hay: Vec<u8> = (0..len).map(|_| [b'{', b'z', b'|', 0x00, 0xfb, b'a'][rng.usize(..6)]).collect();
                assert_eq!(find_byte(&hay, b'{'), hay.iter().position(|&c| c == b'{'), "{hay:?}");
            }
        }
    }

    #[test]
    fn slots_match_redis_cluster() {
        // Values from `redis-cli CLUSTER KEYSLOT` / the Redis Cluster spec.
        assert_eq!(key_slot(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }

    #[test]
    fn a_key_goes_to_its_slot_modulo_the_shard_count() {
        for n in 1..=7 {
            let s = Shards::new(n, 1);
            for i in 0..2000 {
                let key = format!("key:{i}");
                assert_eq!(s.shard_of(key.as_bytes()), usize::from(key_slot(key.as_bytes())) % n, "{n} shards");
            }
        }
    }

    #[test]
    fn remembered_keys_route_by_content() {
        let s = Shards::new(4, 16);
        let mut view = s.lock_all();
        // One buffer rewritten in place: the same address and length with other bytes must route anew.
        let mut buf = *b"key:00";
        for i in 0..100u8 {
            buf[4] = b'0' + i / 10;
            buf[5] = b'0' + i % 10;
            let v = engine::types::Value::Str(engine::types::StrValue::from_bytes(b"1"));
            view.db_for(0, &buf).insert(&buf, v, None);
        }
        view.remember(b"key:07", s.shard_of(b"key:07"));
        let long = vec![b'x'; MEMO_MAX + 5];
        view.db_for(0, &long).insert(&long, engine::types::Value::Str(engine::types::StrValue::from_bytes(b"1")), None);
        drop(view);
        let mut total = 0;
        for i in 0..100u8 {
            let key = [b'k', b'e', b'y', b':', b'0' + i / 10, b'0' + i % 10];
            assert!(s.lock(s.shard_of(&key)).ks.dbs[0].get(&key).is_some());
        }
        for shard in 0..4 {
            total += s.lock(shard).ks.dbs[0].len();
        }
        assert_eq!(total, 101);
        assert!(s.lock(s.shard_of(&long)).ks.dbs[0].get(&long).is_some());
    }

    #[test]
    fn locks_in_order_and_routes() {
        let s = Shards::new(4, 16);
        let mut view = s.lock_keys([&b"a"[..], b"b", b"c", b"a"]);
        let n = view.shard_count();
        assert!((1..=3).contains(&n));
        view.db_for(0, b"a").insert(b"a", engine::types::Value::Str(engine::types::StrValue::from_bytes(b"1")), None);
        drop(view);
        let g = s.lock(s.shard_of(b"a"));
        assert!(g.ks.dbs[0].get(b"a").is_some());
    }
}
