//! A filter of the key hashes a bulk load has put into one database, so that most inserts skip the search of
//! their bucket.
//!
//! A load must refuse a key that is already present, so each insert walks its bucket's chain; during a load
//! of millions of keys the entries met there are random reads over the whole keyspace (a cache miss and,
//! on a VM, a nested TLB walk each). The filter is one bit per hash slot (about 8 bits per expected key,
//! indexed by the top bits of [`hash_of`](crate::table::hash_of)) set for every key inserted. A clear bit
//! proves the key absent, and the entry is linked without the walk
//! ([`Db::insert_entry_absent`]); a set bit (about one insert in 16 on average) takes the checked path. It
//! never says "absent" for a key that is present, so no duplicate check is skipped.
//!
//! The filter describes the database only while it saw every key of it: it is made for an empty database
//! and stops being used for good once `Db::len` differs from the count of keys it inserted (something else
//! wrote to the database). Then every insert is checked, as without a filter.

use crate::keyspace::Db;
use crate::table::{prefetch_line, Entry, Prefetch};
use crate::types::Value;

/// Filter bits per expected key: a one-bit-per-key filter this size is at most 1/8 full at the end of the
/// load (on average half that): that share of inserts takes the checked path.
const BITS_PER_KEY: usize = 8;

/// See the module documentation.
pub struct LoadFilter {
    words: Box<[u64]>,
    /// A hash's bit index is `hash >> shift`.
    shift: u32,
    /// `Db::len` right after this filter's last insert; None once the database changed behind its back.
    len: Option<usize>,
}

impl LoadFilter {
    /// A filter for `db`, about to receive about `keys` keys. None unless `db` is empty (the filter would
    /// miss the keys already there) or `keys` is 0.
    pub fn new(db: &Db, keys: usize) -> Option<LoadFilter> {
        if !db.is_empty() || keys == 0 {
            return None;
        }
        let bits = keys.checked_mul(BITS_PER_KEY)?.checked_next_power_of_two()?.max(64);
        let mut words = vec![0u64; bits / 64].into_boxed_slice();
        // The allocator hands out fresh zero pages: the first read of one (a prefetch, a lookup) would map
        // the shared zero page, and the first bit set then faults again and flushes the TLB of every CPU.
        // Writing each page first maps it once. `black_box` keeps the store of a zero into zeroed memory.
        for w in words.iter_mut().step_by(4096 / 8) {
            *w = std::hint::black_box(0);
        }
        Some(LoadFilter { words, shift: 64 - bits.trailing_zeros(), len: Some(0) })
    }

    /// The word and mask of `hash`'s bit.
    fn slot(&self, hash: u64) -> (usize, u64) {
        let bit = (hash >> self.shift) as usize;
        (bit / 64, 1 << (bit % 64))
    }

    /// Whether a key with this hash may already be in the database (false: it is certainly absent).
    fn may_hold(&self, hash: u64) -> bool {
        let (w, m) = self.slot(hash);
        self.words[w] & m != 0
    }

    /// Whether the filter still describes `db`.
    fn in_sync(&self, db: &Db) -> bool {
        self.len == Some(db.len())
    }

    /// Adds `e` (made by [`Entry::detached`] with this `hash`) to `db`, unless its key is already present:
    /// then `db` is unchanged and the entry comes back ([`Db::insert_entry`]'s contract).
    pub fn insert(&mut self, db: &mut Db, hash: u64, e: Box<Entry<Value>>) -> Result<(), Box<Entry<Value>>> {
        if !self.in_sync(db) {
            self.len = None;
            return db.insert_entry(hash, e);
        }
        if self.may_hold(hash) {
            db.insert_entry(hash, e)?;
        } else {
            db.insert_entry_absent(hash, e);
        }
        let (w, m) = self.slot(hash);
        self.words[w] |= m;
        self.len = Some(db.len());
        Ok(())
    }

    /// [`Table::prefetch_hashed`](crate::table::Table::prefetch_hashed) for an insert through this filter:
    /// with the bucket slot, the filter's word; the entries of the bucket only when the insert will search
    /// them.
    #[inline]
    pub fn prefetch(&self, db: &Db, hash: u64, step: Prefetch) {
        match step {
            Prefetch::Slot => {
                let (w, _) = self.slot(hash);
                prefetch_line(&self.words[w]);
                db.table.prefetch_hashed(hash, step);
            }
            _ if self.may_hold(hash) || !self.in_sync(db) => db.table.prefetch_hashed(hash, step),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::encode_expire;
    use crate::table::hash_of;
    use crate::types::StrValue;

    fn entry(key: &[u8]) -> (u64, Box<Entry<Value>>) {
        let h = hash_of(key);
        (h, Entry::detached(h, key, Value::Str(StrValue::from_bytes(b"v")), encode_expire(None)))
    }

    #[test]
    fn refuses_duplicates_and_keeps_every_key() {
        let mut db = Db::with_capacity(1000);
        let mut f = LoadFilter::new(&db, 10).unwrap();
        // 10 expected keys but 2000 inserted: the filter fills up and most inserts take the checked path.
        for i in 0..2000 {
            let (h, e) = entry(format!("k{i}").as_bytes());
            assert!(f.insert(&mut db, h, e).is_ok());
        }
        for i in (0..2000).step_by(7) {
            let (h, e) = entry(format!("k{i}").as_bytes());
            assert_eq!(f.insert(&mut db, h, e).unwrap_err().key(), format!("k{i}").as_bytes());
        }
        assert_eq!(db.len(), 2000);
        assert!((0..2000).all(|i| db.get(format!("k{i}").as_bytes()).is_some()));
    }

    #[test]
    fn a_clear_bit_means_absent() {
        let mut db = Db::new();
        let mut f = LoadFilter::new(&db, 1 << 12).unwrap();
        for i in 0..(1 << 12) {
            let (h, e) = entry(format!("key:{i}").as_bytes());
            f.insert(&mut db, h, e).unwrap();
        }
        // Every inserted key's bit is set; the filter is sparse enough that most new keys' bits are clear.
        assert!((0..(1 << 12)).all(|i| f.may_hold(hash_of(format!("key:{i}").as_bytes()))));
        let clear = (0..1000).filter(|i| !f.may_hold(hash_of(format!("new:{i}").as_bytes()))).count();
        assert!(clear > 800, "{clear}");
    }

    #[test]
    fn stops_when_the_database_changes_behind_it() {
        let mut db = Db::new();
        assert!(LoadFilter::new(&db, 0).is_none());
        let mut f = LoadFilter::new(&db, 100).unwrap();
        let (h, e) = entry(b"a");
        f.insert(&mut db, h, e).unwrap();
        // A key the filter never saw: its bit is clear, but the filter is out of sync and searches.
        db.insert(b"b", Value::Str(StrValue::from_bytes(b"x")), None);
        let (h, e) = entry(b"b");
        assert!(f.insert(&mut db, h, e).is_err());
        assert_eq!(db.len(), 2);
        // Out of sync for good, even once the counts agree again.
        db.remove(b"b");
        let (h, e) = entry(b"b");
        f.insert(&mut db, h, e).unwrap();
        assert!(f.len.is_none());
        assert!(LoadFilter::new(&db, 100).is_none(), "not for a database with keys");
    }
}
