//! The hash table each shard's database owns (DESIGN.md §1): keys are binary strings, values are generic.
//!
//! It gives three things a plain `HashMap` cannot:
//! - **Pause-free growth.** Two power-of-two bucket arrays with separate chaining, resized the way Redis's
//!   `dict` does it: a resize allocates the new array and every later mutating call moves at most one
//!   non-empty bucket (looking at no more than ten empty ones) from the old array to the new; the owner also
//!   calls [`Table::rehash_step`] from its idle loop. The table grows when it holds as many entries as
//!   buckets (a member table's single bucket takes up to [`Kind::SMALL_MAX`] entries first) and shrinks when
//!   less than 10% of the buckets would be used. No call moves the whole table.
//! - **A stable SCAN cursor.** [`Table::scan`] is Redis's `dictScan`: the cursor counts with its bits
//!   reversed, so a key present for the whole scan is returned at least once (maybe more) however the table
//!   grows or shrinks between calls, including while both arrays are live.
//! - **Fork-less point-in-time snapshots.** Every entry carries a 2-bit epoch, the table's epoch at its last
//!   write (or the last snapshot's visit). With no snapshot running every entry is in the table's epoch;
//!   [`Table::snapshot_begin`] moves the table to the next epoch (mod 4) in O(1), and from then on an entry
//!   is *pending* while its epoch differs from the table's. [`Table::snapshot_step`] walks the table with its
//!   own SCAN cursor, hands each pending entry to the [`SnapshotSink`] and moves it to the current epoch, so
//!   a finished walk leaves every entry there. A snapshot ended unfinished leaves the entries it did not reach
//!   in older epochs: up to 2 such endings in a row still leave the next epoch free, and after a third one
//!   `snapshot_begin` first puts every entry back in one epoch (an O(n) walk, only after such a run).
//!
//! **The snapshot rule.** While a snapshot is running, *before any mutation of a pending entry* (through
//! [`Table::get_mut`], [`Table::insert`] over it, [`Table::remove`], [`Table::clear`]) the table passes the
//! entry's current contents to the sink and moves it to the current epoch, so it stops being pending.
//! Entries written after the snapshot began are in the current epoch and are never pending. Together with
//! the SCAN guarantee this gives the sink exactly the entries present at `snapshot_begin`, as they were then,
//! each exactly once, while writes go on. Mutations of single entries apply the rule in [`Kind::touch`];
//! `clear` emits every pending entry before it frees them.
//!
//! **Two kinds of table** ([`Kind`]): the keyspace's ([`Keys`], the default) stores [`Entry`]s with an expiry
//! and a snapshot epoch; a collection's ([`Members`]: big sets, hashes and zset dicts) stores [`Member`]s
//! with key and value only, short keys inline, and no snapshot state. Both share the bucket arrays, rehash,
//! SCAN and random sampling below.
//!
//! Memory: a keyspace entry is one allocation, `Entry<V>` (16-byte [`EntryKey`], value, chain link: 24 bytes
//! and the `V`, so 48 bytes for a `Value`), while its key fits the 15 bytes kept inline and has no TTL; a longer
//! key, or a key with a TTL, takes a second allocation (its bytes, after the expiry if it has one). A member
//! is one allocation (24-byte key, value, chain link) while its key fits [`INLINE_KEY`]. Plus 8 to 16 bytes of
//! bucket array per entry, and a 64-byte (members) or 80-byte (keyspace) header.

use crate::types::small::SmallBuf;
use std::alloc::{self, Layout};
use std::fmt;
use std::mem;
use std::sync::OnceLock;

mod key;
mod kind;
#[cfg(test)]
mod member_tests;
#[cfg(test)]
mod tests;

pub use key::EntryKey;
pub use kind::{IntoKey, KeyState, Keys, Kind, Member, MemberKey, Members, Node, INLINE_KEY};

/// `Entry::expire_at` of a key with no TTL.
pub const NO_EXPIRE: i64 = i64::MIN;

/// Empty buckets one rehash step may look at per bucket it is allowed to move (Redis's `empty_visits`).
const EMPTY_VISITS: usize = 10;
/// Random probes `random_entry` makes before it falls back to a linear search of the buckets.
const RANDOM_PROBES: usize = 1000;
/// How many buckets ahead a rehash step prefetches the entries it will move.
const REHASH_AHEAD: usize = 32;
/// `rehash_idx` while no resize is in progress.
const NOT_REHASHING: usize = usize::MAX;

/// A bucket slot, or an entry's link to the next entry of its bucket.
pub type Link<E> = Option<Box<E>>;

/// One key with its value and expiry: 48 bytes, jemalloc's 48-byte class (the expiry and the snapshot epoch
/// live in the key: see [`EntryKey`]).
pub struct Entry<V> {
    /// Never change the key through [`Table::get_mut`]: the entry would sit in the wrong bucket. Inline up to
    /// 15 bytes when the key has no TTL (most keys): no allocation of its own, and a lookup reads it from
    /// the entry's cache line.
    pub key: EntryKey,
    pub value: V,
    next: Link<Entry<V>>,
}

impl<V> Entry<V> {
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Unix time in milliseconds, or [`NO_EXPIRE`].
    #[inline]
    pub fn expire_at(&self) -> i64 {
        self.key.expire_at()
    }

    pub fn has_expire(&self) -> bool {
        self.key.has_expire()
    }

    /// Sets the expiry ([`NO_EXPIRE`] removes it). Only through [`Table::get_mut`], which applies the
    /// snapshot rule first.
    pub fn set_expire_at(&mut self, expire_at: i64) {
        self.key.set_expire_at(expire_at);
    }

    /// The key, value and expiry, by value.
    pub fn into_parts(self) -> (SmallBuf, V, i64) {
        let expire_at = self.expire_at();
        (SmallBuf::new(&self.key), self.value, expire_at)
    }

    /// An entry for [`Table::insert_entry`], built ahead of the insert (a bulk loader builds entries on one
    /// thread and links them into the table on another). `hash` is the key's [`hash_of`].
    pub fn detached(hash: u64, key: &[u8], value: V, expire_at: i64) -> Box<Entry<V>> {
        debug_assert_eq!(hash, hash_of(key));
        Box::new(Entry { key: EntryKey::new(key, hash, expire_at), value, next: None })
    }
}

impl<V: fmt::Debug> fmt::Debug for Entry<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("value", &self.value)
            .field("expire_at", &self.expire_at())
            .finish()
    }
}

/// Receives the old contents of entries for an in-progress snapshot (an RDB writer, an AOF rewriter).
/// `Send` because the table holding it moves to its shard's thread.
pub trait SnapshotSink<V>: Send {
    fn emit(&mut self, entry: &Entry<V>);
}

/// One bucket array and the number of entries chained from it.
struct Buckets<E> {
    slots: Box<[Link<E>]>,
    used: usize,
}

impl<E: Node> Buckets<E> {
    fn empty() -> Self {
        Buckets { slots: Box::default(), used: 0 }
    }

    /// `n` empty buckets from zeroed memory: the allocator hands large arrays out as fresh zero pages, so
    /// growing to millions of buckets costs no memset and no page faults up front (the rehash touches the
    /// pages gradually). Filling a `Vec` with `None` would write the whole array inside one request.
    fn with_size(n: usize) -> Self {
        assert!(n.is_power_of_two());
        let layout = Layout::array::<Link<E>>(n).expect("bucket array too large");
        // SAFETY: `layout` is non-zero-sized (n >= 1, a link is pointer-sized). `alloc_zeroed` returns memory
        // for `n` links with every byte zero, and std documents that an all-zero `Option<Box<T>>` with
        // `T: Sized` is `None` (std::option, "Representation"), so all `n` elements are initialised.
        // `from_raw_parts` gets the global allocator's pointer with the same layout, length and capacity.
        let slots = unsafe {
            let p = alloc::alloc_zeroed(layout).cast::<Link<E>>();
            if p.is_null() {
                alloc::handle_alloc_error(layout);
            }
            Vec::from_raw_parts(p, n, n)
        };
        // Length equals capacity: no reallocation.
        let slots = slots.into_boxed_slice();
        Buckets { slots, used: 0 }
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Writes one slot of each page of the array (a no-op to the contents: every slot is `None`).
    fn touch_pages(&mut self) {
        const PAGE_SLOTS: usize = 4096 / mem::size_of::<usize>();
        debug_assert_eq!(self.used, 0);
        for i in (0..self.slots.len()).step_by(PAGE_SLOTS) {
            // SAFETY: `i` is in bounds and the slot is `None`, so overwriting it drops nothing. Volatile: the
            // compiler knows the memory came zeroed and would drop a plain store of `None`.
            unsafe { std::ptr::write_volatile(&mut self.slots[i], None) };
        }
    }

    /// Frees the array without running drop code for each slot. Only for arrays whose entries have all been
    /// moved out (`used == 0`): freeing a million-bucket array slot by slot would be one long pause.
    fn free_drained(self) {
        debug_assert_eq!(self.used, 0);
        let mut slots = Vec::from(self.slots);
        // SAFETY: `set_len(0)` is always sound (0 <= capacity, no element needs to be initialised); the worst
        // a wrong caller could cause is a leak. With `used == 0` every slot is `None`, so nothing leaks.
        unsafe { slots.set_len(0) };
    }

    /// Drops every chain iteratively (no recursion down a long chain) and empties the array.
    fn drop_all(&mut self) {
        for slot in &mut self.slots {
            let mut chain = slot.take();
            while let Some(mut e) = chain {
                chain = e.link_mut().take();
            }
        }
        self.used = 0;
    }
}

/// A running snapshot of a keyspace table. Entries in an epoch other than the table's are pending.
struct Snapshot<V> {
    cursor: u64,
    done: bool,
    sink: Box<dyn SnapshotSink<V>>,
}

/// A hash table keyed by binary strings; see the module documentation.
pub struct Table<V, K: Kind = Keys> {
    /// `ht[0]` is the live array; `ht[1]` is the resize target while rehashing, else empty.
    ht: [Buckets<K::Entry<V>>; 2],
    /// The next bucket of `ht[0]` to move while rehashing, or [`NOT_REHASHING`].
    rehash_idx: usize,
    /// Heap bytes of the stored keys (for `heap_bytes`).
    key_bytes: usize,
    /// The snapshot epoch and state for the keyspace; nothing for members.
    state: K::State<V>,
    /// What the last rehash call did: non-empty buckets moved and buckets looked at.
    #[cfg(test)]
    last_rehash: (usize, usize),
}

impl<V, K: Kind> Default for Table<V, K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V, K: Kind> fmt::Debug for Table<V, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len())
            .field("buckets", &[self.ht[0].slots.len(), self.ht[1].slots.len()])
            .field("rehashing", &self.is_rehashing())
            .finish()
    }
}

impl<V, K: Kind> Drop for Table<V, K> {
    fn drop(&mut self) {
        for b in &mut self.ht {
            b.drop_all();
        }
    }
}

impl<V, K: Kind> Table<V, K> {
    pub fn new() -> Self {
        Table {
            ht: [Buckets::empty(), Buckets::empty()],
            rehash_idx: NOT_REHASHING,
            key_bytes: 0,
            state: K::state(),
            #[cfg(test)]
            last_rehash: (0, 0),
        }
    }

    /// A table that holds `n` entries without resizing (RDB `RESIZEDB`). The caller is about to fill it, so
    /// the bucket array's pages are written now: a first read of a fresh page maps the shared zero page, and
    /// the first insert into it would then fault again and flush every CPU's TLB to replace it.
    pub fn with_capacity(n: usize) -> Self {
        let mut t = Self::new();
        if n > 0 {
            t.ht[0] = Buckets::with_size(Self::size_for(n));
            t.ht[0].touch_pages();
        }
        t
    }

    /// The bucket count for `n` entries.
    fn size_for(n: usize) -> usize {
        if n <= K::SMALL_MAX {
            K::MIN_SIZE
        } else {
            n.max(K::MIN_SIZE).next_power_of_two()
        }
    }

    pub fn len(&self) -> usize {
        self.ht[0].used + self.ht[1].used
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of buckets in both arrays (for `DEBUG HTSTATS`-like reports).
    pub fn buckets(&self) -> usize {
        self.ht[0].slots.len() + self.ht[1].slots.len()
    }

    fn hash(&self, key: &[u8]) -> u64 {
        hash_key(process_seed(), key)
    }

    /// How many of `ht` hold entries: 2 while rehashing, else 1.
    fn tables(&self) -> usize {
        1 + usize::from(self.is_rehashing())
    }

    /// Read access. Reads never interact with a snapshot.
    pub fn get(&self, key: &[u8]) -> Option<&K::Entry<V>> {
        let h = self.hash(key);
        for b in &self.ht[..self.tables()] {
            let Some(slot) = b.slots.get(h as usize & b.mask()) else {
                continue;
            };
            let mut cur = slot.as_deref();
            while let Some(e) = cur {
                if e.is(h, key) {
                    return Some(e);
                }
                cur = e.link().as_deref();
            }
        }
        None
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Write access. If a snapshot still needs this entry, its current contents are emitted first.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut K::Entry<V>> {
        self.rehash(1);
        let h = self.hash(key);
        let tables = self.tables();
        let (_, link) = find_link(&mut self.ht[..tables], h, key)?;
        let e = link.as_deref_mut()?;
        K::touch(&mut self.state, e);
        Some(e)
    }

    /// Inserts `key`, or replaces the value and expiry of an existing `key` (keeping the stored key),
    /// returning the old value and expiry. A pending old entry is emitted to the snapshot first. Member
    /// tables take [`NO_EXPIRE`] and return it.
    pub fn insert(&mut self, key: impl IntoKey, value: V, expire_at: i64) -> Option<(V, i64)> {
        self.insert_key(key, value, expire_at)
    }

    /// [`Table::insert`] with a borrowed key, copied only when it is new (and only to the heap when a member
    /// table cannot keep it inline).
    pub fn insert_ref(&mut self, key: &[u8], value: V, expire_at: i64) -> Option<(V, i64)> {
        self.insert_key(key, value, expire_at)
    }

    /// [`Table::insert`] of a key whose [`hash_of`] the caller already has (a bulk loader computes it once
    /// for routing, prefetching and the insert).
    pub fn insert_hashed(&mut self, h: u64, key: impl IntoKey, value: V, expire_at: i64) -> Option<(V, i64)> {
        debug_assert_eq!(h, self.hash(key.bytes()));
        self.insert_at(h, key, value, expire_at)
    }

    fn insert_key(&mut self, key: impl IntoKey, value: V, expire_at: i64) -> Option<(V, i64)> {
        let h = self.hash(key.bytes());
        self.insert_at(h, key, value, expire_at)
    }

    fn insert_at(&mut self, h: u64, key: impl IntoKey, value: V, expire_at: i64) -> Option<(V, i64)> {
        self.rehash(1);
        let tables = self.tables();
        if let Some((_, link)) = find_link(&mut self.ht[..tables], h, key.bytes()) {
            let e = link.as_deref_mut().expect("find_link returns an occupied link");
            K::touch(&mut self.state, e);
            return Some(e.replace(value, expire_at));
        }
        self.expand_if_needed();
        // New entries go to the resize target while rehashing, so `ht[0]` only drains.
        let b = &mut self.ht[usize::from(self.rehash_idx != NOT_REHASHING)];
        let i = h as usize & b.mask();
        let next = b.slots[i].take();
        let e = Box::new(K::make(&self.state, h, key, value, expire_at, next));
        self.key_bytes += e.key_heap_bytes();
        b.slots[i] = Some(e);
        b.used += 1;
        None
    }

    /// Warms the cache for an insert or lookup of `key` coming soon, so that a bulk loader can overlap the
    /// memory misses of several keys. Called at each [`Prefetch`] step in turn, a few keys apart, each step
    /// fetches what the next one reads. Changes nothing; a wrong guess only costs the fetch.
    pub fn prefetch(&self, key: &[u8], step: Prefetch) {
        self.prefetch_hashed(self.hash(key), step)
    }

    /// [`Table::prefetch`] of a key whose [`hash_of`] is `h`.
    #[inline]
    pub fn prefetch_hashed(&self, h: u64, step: Prefetch) {
        // While rehashing, a lookup walks the key's bucket in both arrays (unless it has already moved).
        for (t, b) in self.ht[..self.tables()].iter().enumerate() {
            let i = h as usize & b.mask();
            if t == 0 && self.is_rehashing() && i < self.rehash_idx {
                continue;
            }
            let Some(slot) = b.slots.get(i) else {
                continue;
            };
            match (step, slot) {
                (Prefetch::Slot, _) => prefetch_line(slot),
                (Prefetch::Entry, Some(e)) => prefetch_line(&**e),
                (Prefetch::Key, Some(e)) => {
                    // A keyspace entry's stored hash rules out most keys without reading their bytes.
                    if !e.has_hash() {
                        prefetch_line(&e.key()[0..0]);
                    }
                    if let Some(next) = e.link() {
                        prefetch_line(&**next);
                    }
                }
                (_, None) => {}
            }
        }
    }

    /// Removes `key`. A pending entry is emitted to the snapshot first.
    pub fn remove(&mut self, key: &[u8]) -> Option<K::Entry<V>> {
        self.rehash(1);
        let h = self.hash(key);
        let tables = self.tables();
        let (t, link) = find_link(&mut self.ht[..tables], h, key)?;
        let mut e = link.take()?;
        *link = e.link_mut().take();
        self.ht[t].used -= 1;
        K::touch(&mut self.state, &mut e);
        self.key_bytes -= e.key_heap_bytes();
        self.shrink_if_needed();
        Some(*e)
    }

    /// Removes everything (FLUSHDB). A running snapshot first receives every entry it still needs, which is
    /// O(n), as freeing the entries is.
    pub fn clear(&mut self) {
        K::before_clear(&mut self.state, Iter::new(&self.ht, self.ht[0].used + self.ht[1].used));
        for b in &mut self.ht {
            b.drop_all();
            *b = Buckets::empty();
        }
        self.rehash_idx = NOT_REHASHING;
        self.key_bytes = 0;
    }

    /// One SCAN step: calls `f` for the entries of one bucket of the smaller array and, while rehashing,
    /// of all its expansions in the larger one. Returns the next cursor; 0 means the scan is complete.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&K::Entry<V>)) -> u64 {
        scan_step(self.scan_sizes(), cursor, |t, i| {
            let mut cur = self.ht[t].slots[i].as_deref();
            while let Some(e) = cur {
                f(e);
                cur = e.link().as_deref();
            }
        })
    }

    /// The bucket array sizes a scan step walks (0 for an array not in use).
    fn scan_sizes(&self) -> [usize; 2] {
        [self.ht[0].slots.len(), if self.is_rehashing() { self.ht[1].slots.len() } else { 0 }]
    }

    /// A random entry, chosen like Redis's `dictGetRandomKey`: a random non-empty bucket, then a random
    /// entry of its chain. `None` when the table is empty.
    pub fn random_entry(&self) -> Option<&K::Entry<V>> {
        if self.is_empty() {
            return None;
        }
        // Buckets of `ht[0]` below `rehash_idx` are known to be empty.
        let start = if self.is_rehashing() { self.rehash_idx } else { 0 };
        let n0 = self.ht[0].slots.len();
        let end = n0 + self.scan_sizes()[1];
        let slot = |i: usize| {
            if i < n0 {
                &self.ht[0].slots[i]
            } else {
                &self.ht[1].slots[i - n0]
            }
        };
        let head = (0..RANDOM_PROBES)
            .map(|_| slot(fastrand::usize(start..end)))
            .find(|s| s.is_some())
            // A nearly empty table (a shrink still in progress): search linearly from a random bucket.
            .or_else(|| {
                let r = fastrand::usize(start..end);
                (r..end).chain(start..r).map(slot).find(|s| s.is_some())
            })?
            .as_deref()?;
        let chain = || std::iter::successors(Some(head), |e| e.link().as_deref());
        chain().nth(fastrand::usize(..chain().count()))
    }

    /// Every entry, in bucket order. The table cannot change while the iterator lives.
    pub fn iter(&self) -> Iter<'_, V, K> {
        Iter::new(&self.ht, self.len())
    }

    /// Moves up to `buckets` non-empty buckets to the resize target (and starts a pending shrink). Returns
    /// true while a resize is still in progress. The owner calls this from its idle loop.
    pub fn rehash_step(&mut self, buckets: usize) -> bool {
        self.rehash(buckets);
        self.shrink_if_needed();
        self.is_rehashing()
    }

    pub fn is_rehashing(&self) -> bool {
        self.rehash_idx != NOT_REHASHING
    }

    /// Redis's `dictRehash`: moves up to `n` non-empty buckets of `ht[0]` to `ht[1]`, looking at no more
    /// than `10 * n` empty ones; swaps the arrays when `ht[0]` is drained.
    #[inline]
    fn rehash(&mut self, n: usize) {
        if self.is_rehashing() {
            self.rehash_some(n);
        }
    }

    /// [`Table::rehash`] while rehashing (out of line: every operation calls `rehash`, few find work).
    #[inline(never)]
    fn rehash_some(&mut self, n: usize) {
        let mut idx = self.rehash_idx;
        let seed = process_seed();
        let mut empty_visits = n.saturating_mul(EMPTY_VISITS);
        let mut moved = 0;
        let [old, new] = &mut self.ht;
        let new_mask = new.mask();
        while moved < n && old.used > 0 {
            // Each call moves about one bucket, and its entries are cache misses (a growing keyspace spends
            // most of its rehash time waiting on them): fetch the entries a few buckets ahead, and the new
            // slot of an entry fetched earlier, so that later calls find them in the cache.
            if let Some(Some(e)) = old.slots.get(idx + REHASH_AHEAD) {
                prefetch_line(&**e);
            }
            if let Some(Some(e)) = old.slots.get(idx + REHASH_AHEAD / 2) {
                prefetch_line(&new.slots[e.rehash_index(seed, new_mask)]);
                if let Some(next) = e.link() {
                    prefetch_line(&**next);
                }
            }
            let Some(mut chain) = old.slots[idx].take() else {
                idx += 1;
                empty_visits -= 1;
                if empty_visits == 0 {
                    break;
                }
                continue;
            };
            loop {
                let next = chain.link_mut().take();
                let j = chain.rehash_index(seed, new_mask);
                *chain.link_mut() = new.slots[j].take();
                new.slots[j] = Some(chain);
                old.used -= 1;
                new.used += 1;
                let Some(e) = next else { break };
                chain = e;
            }
            idx += 1;
            moved += 1;
        }
        #[cfg(test)]
        {
            self.last_rehash = (moved, n.saturating_mul(EMPTY_VISITS) - empty_visits + moved);
        }
        if self.ht[0].used == 0 {
            let target = mem::replace(&mut self.ht[1], Buckets::empty());
            mem::replace(&mut self.ht[0], target).free_drained();
            self.rehash_idx = NOT_REHASHING;
        } else {
            self.rehash_idx = idx;
        }
    }

    /// Grows when the table holds as many entries as buckets, or a smallest table its `SMALL_MAX` entries
    /// (called before an insert of a new key).
    #[inline]
    fn expand_if_needed(&mut self) {
        let (size, used) = (self.ht[0].slots.len(), self.ht[0].used);
        if !self.is_rehashing() && (size == 0 || used >= size.max(K::SMALL_MAX)) {
            self.expand();
        }
    }

    /// [`Table::expand_if_needed`] once it found that the table must grow (or get its first buckets).
    #[inline(never)]
    fn expand(&mut self) {
        if self.ht[0].slots.is_empty() {
            self.ht[0] = Buckets::with_size(K::MIN_SIZE);
        } else {
            self.start_resize(Self::size_for(self.ht[0].used + 1));
        }
    }

    /// Shrinks when less than 10% of the buckets would be used.
    fn shrink_if_needed(&mut self) {
        let (size, used) = (self.ht[0].slots.len(), self.ht[0].used);
        if !self.is_rehashing() && size > K::MIN_SIZE && used * 10 < size {
            self.start_resize(Self::size_for(used));
        }
    }

    fn start_resize(&mut self, size: usize) {
        debug_assert!(!self.is_rehashing());
        if size == self.ht[0].slots.len() {
            return;
        }
        let target = Buckets::with_size(size);
        if self.ht[0].used == 0 {
            mem::replace(&mut self.ht[0], target).free_drained();
        } else {
            self.ht[1] = target;
            self.rehash_idx = 0;
        }
    }

    /// Bytes this table allocated: bucket arrays, entries and keys (not the values' own heap, and not the
    /// allocator's rounding; for a keyspace, not the allocations of keys of up to 15 bytes with a TTL).
    pub fn heap_bytes(&self) -> usize {
        self.heap_bytes_without_keys() + self.key_bytes
    }

    /// [`Table::heap_bytes`] without the keys' own allocations: bucket arrays and entries.
    pub fn heap_bytes_without_keys(&self) -> usize {
        let arrays: usize = self.ht.iter().map(|b| b.slots.len() * mem::size_of::<Link<K::Entry<V>>>()).sum();
        arrays + self.len() * mem::size_of::<K::Entry<V>>()
    }
}

/// The snapshot API: keyspace tables only.
impl<V> Table<V, Keys> {
    /// Links an entry made by [`Entry::detached`] (with the same `hash`) into the table, unless its key is
    /// already present: then the table is unchanged and the entry comes back.
    pub fn insert_entry(&mut self, hash: u64, e: Box<Entry<V>>) -> Result<(), Box<Entry<V>>> {
        self.rehash(1);
        let tables = self.tables();
        if find_link(&mut self.ht[..tables], hash, &e.key).is_some() {
            return Err(e);
        }
        self.link_new(hash, e);
        Ok(())
    }

    /// [`Table::insert_entry`] of an entry whose key the caller knows is absent (a bulk loader that keeps a
    /// filter of the hashes it inserted): links it without walking its bucket, so the insert reads no other
    /// entry (each one a likely cache and TLB miss). A wrong caller leaves two entries with one key (a logic
    /// error, caught in debug builds), never unsound memory.
    pub fn insert_entry_absent(&mut self, hash: u64, e: Box<Entry<V>>) {
        self.rehash(1);
        debug_assert!(self.get(&e.key).is_none(), "insert_entry_absent of a present key");
        self.link_new(hash, e);
    }

    /// Links a new entry at the head of its bucket (in the resize target while rehashing).
    fn link_new(&mut self, hash: u64, mut e: Box<Entry<V>>) {
        self.expand_if_needed();
        let b = &mut self.ht[usize::from(self.rehash_idx != NOT_REHASHING)];
        let i = hash as usize & b.mask();
        e.key.set_epoch(self.state.epoch);
        e.next = b.slots[i].take();
        self.key_bytes += e.key_heap_bytes();
        b.slots[i] = Some(e);
        b.used += 1;
    }

    /// Starts a point-in-time snapshot in O(1): `sink` will receive every entry present now, as it is now,
    /// exactly once, through [`Table::snapshot_step`] and through writes to entries not yet emitted. Gives
    /// the sink back if a snapshot is already active (a finished one must be ended first).
    pub fn snapshot_begin(&mut self, sink: Box<dyn SnapshotSink<V>>) -> Result<(), Box<dyn SnapshotSink<V>>> {
        if self.state.snapshot.is_some() {
            return Err(sink);
        }
        if self.state.mixed >= 3 {
            self.settle_epochs();
        }
        self.state.snapshot = Some(Box::new(Snapshot { cursor: 0, done: false, sink }));
        self.state.epoch = (self.state.epoch + 1) % 4;
        Ok(())
    }

    /// Puts every entry in the current epoch: after 3 snapshots ended unfinished, entries may be in all 4
    /// (an O(n) walk, only after such a run of abandoned snapshots).
    fn settle_epochs(&mut self) {
        let epoch = self.state.epoch;
        for b in &mut self.ht {
            for slot in &mut b.slots {
                let mut cur = slot.as_deref_mut();
                while let Some(e) = cur {
                    e.key.set_epoch(epoch);
                    cur = e.next.as_deref_mut();
                }
            }
        }
        self.state.mixed = 0;
    }

    /// True from `snapshot_begin` until `snapshot_end`, finished or not.
    pub fn snapshot_active(&self) -> bool {
        self.state.snapshot.is_some()
    }

    /// Walks about `budget` buckets of the snapshot (at least one SCAN step), emitting the pending entries
    /// it meets. Returns true when the walk is complete (also when no snapshot is active): the sink then has
    /// the whole snapshot and [`Table::snapshot_end`] returns it.
    pub fn snapshot_step(&mut self, budget: usize) -> bool {
        let sizes = self.scan_sizes();
        let epoch = self.state.epoch;
        let Some(s) = &mut self.state.snapshot else {
            return true;
        };
        let mut visited = 0;
        while !s.done {
            s.cursor = scan_step(sizes, s.cursor, |t, i| {
                visited += 1;
                let mut cur = self.ht[t].slots[i].as_deref_mut();
                while let Some(e) = cur {
                    if e.key.epoch() != epoch {
                        s.sink.emit(e);
                        e.key.set_epoch(epoch);
                    }
                    cur = e.next.as_deref_mut();
                }
            });
            s.done = s.cursor == 0;
            if visited >= budget {
                break;
            }
        }
        s.done
    }

    /// Ends the snapshot (finished, or abandoned) and returns its sink.
    pub fn snapshot_end(&mut self) -> Option<Box<dyn SnapshotSink<V>>> {
        let s = self.state.snapshot.take()?;
        // A finished walk left every entry in the current epoch; an abandoned one, those it did not reach
        // in the previous one.
        self.state.mixed = if s.done || self.is_empty() { 0 } else { self.state.mixed + 1 };
        Some(s.sink)
    }
}

/// Finds the link (bucket slot or `next` field) that holds `key`, searching `ht` in order.
fn find_link<'a, E: Node>(ht: &'a mut [Buckets<E>], h: u64, key: &[u8]) -> Option<(usize, &'a mut Link<E>)> {
    for (t, b) in ht.iter_mut().enumerate() {
        let mask = b.mask();
        let Some(mut link) = b.slots.get_mut(h as usize & mask) else {
            continue;
        };
        while link.as_ref().is_some_and(|e| !e.is(h, key)) {
            link = link.as_mut()?.link_mut();
        }
        if link.is_some() {
            return Some((t, link));
        }
    }
    None
}

/// The steps of [`Table::prefetch`], furthest ahead first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefetch {
    /// The key's bucket slot.
    Slot,
    /// The first entry of the bucket (read from the slot).
    Entry,
    /// That entry's key bytes (compared with the key) and the next entry of the bucket.
    Key,
}

/// Asks the CPU to bring the cache line at `p` in (a hint: nothing happens on other architectures).
#[inline(always)]
pub(crate) fn prefetch_line<T: ?Sized>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache; it reads nothing the program sees and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((p as *const T).cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// One step of Redis's `dictScan` over arrays of `sizes` (0 = array not in use): `visit(array, bucket)` for
/// the cursor's bucket in the smaller array and all its expansions in the larger; returns the next cursor.
fn scan_step(sizes: [usize; 2], cursor: u64, mut visit: impl FnMut(usize, usize)) -> u64 {
    // Increments the cursor's bits above `mask`, counting from the most significant bit down.
    fn next(v: u64, mask: u64) -> u64 {
        (v | !mask).reverse_bits().wrapping_add(1).reverse_bits()
    }
    let mut v = cursor;
    if sizes[1] == 0 {
        if sizes[0] == 0 {
            return 0;
        }
        let m0 = sizes[0] as u64 - 1;
        visit(0, (v & m0) as usize);
        return next(v, m0);
    }
    let (small, big) = if sizes[0] < sizes[1] { (0, 1) } else { (1, 0) };
    let (m0, m1) = (sizes[small] as u64 - 1, sizes[big] as u64 - 1);
    visit(small, (v & m0) as usize);
    loop {
        visit(big, (v & m1) as usize);
        v = next(v, m1);
        if v & (m0 ^ m1) == 0 {
            return v;
        }
    }
}

/// Iterator over every entry of a [`Table`].
pub struct Iter<'a, V, K: Kind = Keys> {
    ht: &'a [Buckets<K::Entry<V>>; 2],
    table: usize,
    bucket: usize,
    node: Option<&'a K::Entry<V>>,
    remaining: usize,
}

impl<'a, V, K: Kind> Iter<'a, V, K> {
    fn new(ht: &'a [Buckets<K::Entry<V>>; 2], len: usize) -> Self {
        Iter { ht, table: 0, bucket: 0, node: None, remaining: len }
    }
}

impl<'a, V, K: Kind> Iterator for Iter<'a, V, K> {
    type Item = &'a K::Entry<V>;

    fn next(&mut self) -> Option<&'a K::Entry<V>> {
        while self.remaining > 0 {
            if let Some(e) = self.node {
                self.node = e.link().as_deref();
                self.remaining -= 1;
                return Some(e);
            }
            let slots = &self.ht.get(self.table)?.slots;
            match slots.get(self.bucket) {
                Some(slot) => {
                    self.node = slot.as_deref();
                    self.bucket += 1;
                }
                None => (self.table, self.bucket) = (self.table + 1, 0),
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<V, K: Kind> ExactSizeIterator for Iter<'_, V, K> {}

/// The hash every table of this process uses for `key` (for [`Table::insert_hashed`] and
/// [`Table::prefetch_hashed`]).
pub fn hash_of(key: &[u8]) -> u64 {
    hash_key(process_seed(), key)
}

/// The hash seed, random per process so clients cannot aim keys at one bucket, already mixed as [`hash_key`]
/// takes it.
fn process_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| mix_seed(fastrand::u64(..)))
}

/// wyhash's first step, which depends on the seed alone: done once per process instead of once per key.
fn mix_seed(seed: u64) -> u64 {
    seed ^ mum(seed ^ P0, P1)
}

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
const P3: u64 = 0x5899_65cc_7537_4cc3;

fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

fn read8(b: &[u8], i: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

fn read4(b: &[u8], i: usize) -> u64 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[i..i + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// wyhash (final version 4, Wang Yi, public domain) of `key` with a seed `s`, given as `mix_seed(s)`: fast on
/// short binary keys, well mixed in the low bits the bucket index uses.
pub(crate) fn hash_key(mixed_seed: u64, key: &[u8]) -> u64 {
    let len = key.len();
    let mut seed = mixed_seed;
    let (a, b);
    if len <= 16 {
        if len >= 4 {
            let off = (len >> 3) << 2;
            a = (read4(key, 0) << 32) | read4(key, off);
            b = (read4(key, len - 4) << 32) | read4(key, len - 4 - off);
        } else if len > 0 {
            a = (u64::from(key[0]) << 16) | (u64::from(key[len >> 1]) << 8) | u64::from(key[len - 1]);
            b = 0;
        } else {
            (a, b) = (0, 0);
        }
    } else {
        let (mut p, mut i) = (0, len);
        if i > 48 {
            let (mut s1, mut s2) = (seed, seed);
            while i > 48 {
                seed = mum(read8(key, p) ^ P1, read8(key, p + 8) ^ seed);
                s1 = mum(read8(key, p + 16) ^ P2, read8(key, p + 24) ^ s1);
                s2 = mum(read8(key, p + 32) ^ P3, read8(key, p + 40) ^ s2);
                p += 48;
                i -= 48;
            }
            seed ^= s1 ^ s2;
        }
        while i > 16 {
            seed = mum(read8(key, p) ^ P1, read8(key, p + 8) ^ seed);
            p += 16;
            i -= 16;
        }
        a = read8(key, len - 16);
        b = read8(key, len - 8);
    }
    let r = u128::from(a ^ P1) * u128::from(b ^ seed);
    mum((r as u64) ^ P0 ^ len as u64, ((r >> 64) as u64) ^ P1)
}
