//! What a [`Table`](super::Table)'s entries are: the keyspace's [`Entry`] (expiry and snapshot epoch, kept
//! by its [`EntryKey`]) or a collection's [`Member`] (key and value only).
//!
//! A set's members, a big hash's fields and a big zset's dict never expire and are never snapshotted on
//! their own (a snapshot of the keyspace copies the whole collection when it emits its key), so carrying an
//! expiry and a version in each of them would cost 12 bytes per element and push a member of a string set
//! from jemalloc's 32-byte class to its 48-byte class. [`Members`] tables drop both, keep member keys of up
//! to [`INLINE_KEY`] bytes inside the entry (no second allocation), and let a small table use a single
//! bucket: a three-member set costs one 8-byte bucket array and three 32-byte entries.

use super::{Entry, EntryKey, Iter, Link, Snapshot, NO_EXPIRE};
use std::fmt;
use std::ops::Deref;

/// The table's view of an entry. Implemented by [`Entry`] and [`Member`] only.
pub trait Node: Sized {
    type Value;
    fn key(&self) -> &[u8];
    fn value(&self) -> &Self::Value;
    /// The next entry of the same bucket.
    #[doc(hidden)]
    fn link(&self) -> &Link<Self>;
    #[doc(hidden)]
    fn link_mut(&mut self) -> &mut Link<Self>;
    /// Replaces the value and expiry, returning the old ones.
    #[doc(hidden)]
    fn replace(&mut self, value: Self::Value, expire_at: i64) -> (Self::Value, i64);
    /// Heap bytes the stored key owns (for `heap_bytes`).
    #[doc(hidden)]
    fn key_heap_bytes(&self) -> usize;
    /// Whether this entry holds `key`, whose hash is `h`.
    #[doc(hidden)]
    fn is(&self, h: u64, key: &[u8]) -> bool;
    /// Whether the entry stores its key's hash (so `is` rarely reads the key's bytes).
    #[doc(hidden)]
    fn has_hash(&self) -> bool;
    /// The entry's bucket in an array of `mask + 1` buckets.
    #[doc(hidden)]
    fn rehash_index(&self, seed: u64, mask: usize) -> usize;
}

/// A key for [`Table::insert`](super::Table): an owned key or a borrowed one (what commands and loaders
/// hold), so that a table keeps a short key inline without a throw-away allocation (a keyspace entry up to
/// 15 bytes, a member up to [`INLINE_KEY`]).
pub trait IntoKey {
    fn bytes(&self) -> &[u8];
    fn into_member_key(self) -> MemberKey;
}

impl IntoKey for Box<[u8]> {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn into_member_key(self) -> MemberKey {
        MemberKey::from(self)
    }
}

impl IntoKey for &[u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn into_member_key(self) -> MemberKey {
        MemberKey::from(self)
    }
}

/// The entry layout of a table and the per-table state it needs.
pub trait Kind: Sized {
    type Entry<V>: Node<Value = V>;
    /// Per-table state: the snapshot machinery for [`Keys`], nothing for [`Members`].
    type State<V>;
    /// The smallest non-empty bucket array.
    const MIN_SIZE: usize;
    /// A table of `MIN_SIZE` buckets holds up to this many entries before it grows (0: grow at one entry per
    /// bucket, as every larger table does).
    const SMALL_MAX: usize;

    fn state<V>() -> Self::State<V>;
    /// A new entry; `h` is the key's hash.
    fn make<V>(
        state: &Self::State<V>,
        h: u64,
        key: impl IntoKey,
        value: V,
        expire_at: i64,
        next: Link<Self::Entry<V>>,
    ) -> Self::Entry<V>;
    /// Runs before any mutation of `e` (the snapshot rule of the module docs).
    fn touch<V>(state: &mut Self::State<V>, e: &mut Self::Entry<V>);
    /// Runs before `clear` frees every entry.
    fn before_clear<V>(state: &mut Self::State<V>, entries: Iter<'_, V, Self>);
}

/// The keyspace: entries with an expiry and a snapshot epoch ([`Entry`]).
#[derive(Debug)]
pub struct Keys;

/// Collection elements: key and value only ([`Member`]).
#[derive(Debug)]
pub struct Members;

/// The snapshot state of a keyspace table.
pub struct KeyState<V> {
    /// The epoch (0 to 3) new writes get. With no snapshot running, every entry is in this epoch, except
    /// after snapshots ended unfinished (see `mixed`).
    pub(super) epoch: u8,
    /// Snapshots ended unfinished since every entry was last in `epoch`: each leaves the entries it did
    /// not reach in an older epoch. A new snapshot needs every entry in an epoch other than its own, which
    /// 2 bits guarantee for up to 2 such endings; after 3 the entries are put back in one epoch first.
    pub(super) mixed: u8,
    /// Boxed: rare.
    pub(super) snapshot: Option<Box<Snapshot<V>>>,
}

impl Kind for Keys {
    type Entry<V> = Entry<V>;
    type State<V> = KeyState<V>;
    const MIN_SIZE: usize = 4;
    const SMALL_MAX: usize = 0;

    fn state<V>() -> KeyState<V> {
        KeyState { epoch: 0, mixed: 0, snapshot: None }
    }

    fn make<V>(
        state: &KeyState<V>,
        h: u64,
        key: impl IntoKey,
        value: V,
        expire_at: i64,
        next: Link<Entry<V>>,
    ) -> Entry<V> {
        let mut key = EntryKey::new(key.bytes(), h, expire_at);
        key.set_epoch(state.epoch);
        Entry { key, value, next }
    }

    /// Hands a pending entry's current contents to the snapshot sink, then marks the entry as written in the
    /// current epoch.
    fn touch<V>(state: &mut KeyState<V>, e: &mut Entry<V>) {
        if let Some(s) = &mut state.snapshot {
            if !s.done && e.key.epoch() != state.epoch {
                s.sink.emit(e);
            }
        }
        e.key.set_epoch(state.epoch);
    }

    /// A running snapshot first receives every entry it still needs.
    fn before_clear<V>(state: &mut KeyState<V>, entries: Iter<'_, V, Keys>) {
        if let Some(s) = &mut state.snapshot {
            if !s.done {
                for e in entries.filter(|e| e.key.epoch() != state.epoch) {
                    s.sink.emit(e);
                }
            }
        }
    }
}

impl<V> Node for Entry<V> {
    type Value = V;
    fn key(&self) -> &[u8] {
        &self.key
    }
    fn value(&self) -> &V {
        &self.value
    }
    fn link(&self) -> &Link<Self> {
        &self.next
    }
    fn link_mut(&mut self) -> &mut Link<Self> {
        &mut self.next
    }
    fn replace(&mut self, value: V, expire_at: i64) -> (V, i64) {
        let old = self.expire_at();
        self.key.set_expire_at(expire_at);
        (std::mem::replace(&mut self.value, value), old)
    }
    /// A key longer than 15 bytes is always on the heap; a short one only while it has a TTL, so its TTL's
    /// allocation (which comes and goes behind the table's back, through `get_mut`) is left out.
    fn key_heap_bytes(&self) -> usize {
        if self.key.len() > super::key::INLINE {
            self.key.len()
        } else {
            0
        }
    }
    #[inline]
    fn is(&self, h: u64, key: &[u8]) -> bool {
        self.key.matches(h, key)
    }
    fn has_hash(&self) -> bool {
        true
    }
    #[inline]
    fn rehash_index(&self, seed: u64, mask: usize) -> usize {
        super::hash_key(seed, &self.key) as usize & mask
    }
}

impl Kind for Members {
    type Entry<V> = Member<V>;
    type State<V> = ();
    const MIN_SIZE: usize = 1;
    /// Up to 8 elements share one bucket: a lookup compares at most 8 short keys, and a small collection
    /// pays for an 8-byte bucket array instead of a 32-byte one.
    const SMALL_MAX: usize = 8;

    fn state<V>() {}

    fn make<V>(_: &(), _h: u64, key: impl IntoKey, value: V, expire_at: i64, next: Link<Member<V>>) -> Member<V> {
        debug_assert_eq!(expire_at, NO_EXPIRE, "collection elements do not expire");
        Member { key: key.into_member_key(), value, next }
    }

    fn touch<V>(_: &mut (), _: &mut Member<V>) {}

    fn before_clear<V>(_: &mut (), _: Iter<'_, V, Members>) {}
}

/// One element of a collection's table.
pub struct Member<V> {
    /// Never change the key through `get_mut`: the entry would sit in the wrong bucket.
    pub key: MemberKey,
    pub value: V,
    next: Link<Member<V>>,
}

impl<V> Member<V> {
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

impl<V: fmt::Debug> fmt::Debug for Member<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member").field("key", &self.key).field("value", &self.value).finish()
    }
}

impl<V> Node for Member<V> {
    type Value = V;
    fn key(&self) -> &[u8] {
        &self.key
    }
    fn value(&self) -> &V {
        &self.value
    }
    fn link(&self) -> &Link<Self> {
        &self.next
    }
    fn link_mut(&mut self) -> &mut Link<Self> {
        &mut self.next
    }
    fn replace(&mut self, value: V, _expire_at: i64) -> (V, i64) {
        (std::mem::replace(&mut self.value, value), NO_EXPIRE)
    }
    fn key_heap_bytes(&self) -> usize {
        self.key.heap_bytes()
    }
    #[inline]
    fn is(&self, _h: u64, key: &[u8]) -> bool {
        *self.key == *key
    }
    fn has_hash(&self) -> bool {
        false
    }
    fn rehash_index(&self, seed: u64, mask: usize) -> usize {
        super::hash_key(seed, &self.key) as usize & mask
    }
}

/// Longest member key stored inside its entry.
pub const INLINE_KEY: usize = 22;

/// A member's bytes: inline up to [`INLINE_KEY`] bytes (most members), else on the heap. 24 bytes either way.
#[derive(Clone)]
pub struct MemberKey(Repr);

#[derive(Clone)]
enum Repr {
    /// Length and bytes; bytes past the length are zero.
    Inline(u8, [u8; INLINE_KEY]),
    Heap(Box<[u8]>),
}

impl MemberKey {
    /// Heap bytes owned (0 when inline).
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Repr::Inline(..) => 0,
            Repr::Heap(b) => b.len(),
        }
    }

    pub fn into_boxed(self) -> Box<[u8]> {
        match self.0 {
            Repr::Inline(n, b) => b[..usize::from(n)].into(),
            Repr::Heap(b) => b,
        }
    }

    fn inline(b: &[u8]) -> Option<MemberKey> {
        (b.len() <= INLINE_KEY).then(|| MemberKey(Repr::Inline(b.len() as u8, crate::util::inline_array(b))))
    }
}

impl Deref for MemberKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(n, b) => &b[..usize::from(*n)],
            Repr::Heap(b) => b,
        }
    }
}

impl From<&[u8]> for MemberKey {
    fn from(b: &[u8]) -> Self {
        MemberKey::inline(b).unwrap_or_else(|| MemberKey(Repr::Heap(b.into())))
    }
}

/// Keeps the allocation of a long key; copies a short one inline (freeing the box).
impl From<Box<[u8]>> for MemberKey {
    fn from(b: Box<[u8]>) -> Self {
        MemberKey::inline(&b).unwrap_or(MemberKey(Repr::Heap(b)))
    }
}

impl PartialEq for MemberKey {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for MemberKey {}

impl fmt::Debug for MemberKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}
