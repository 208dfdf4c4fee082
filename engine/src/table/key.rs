//! [`EntryKey`]: a keyspace entry's key, with the entry's expiry and snapshot epoch, in 16 bytes.
//!
//! Why: an [`Entry`](super::Entry) is key (16 bytes) + value (24) + chain link (8) = 48 bytes, jemalloc's
//! 48-byte class. An expiry of its own (8 bytes) and a snapshot version would push every entry to the
//! 64-byte class, though most keys never get a TTL. So the key carries both:
//! - **Inline** (no TTL, up to [`INLINE`] bytes: most keys): 15 bytes of key and one byte of metadata.
//! - **Heap** (a longer key, or any key with a TTL): one allocation holding the expiry (when there is one)
//!   and then the key's bytes; the 16 bytes keep the pointer, the length, 16 bits of the key's hash (a
//!   chain walk compares them before it reads the key's bytes, a likely cache miss) and the metadata byte.
//!
//! The metadata byte (the last of the 16, in both forms) holds: heap or inline, whether the allocation
//! starts with an expiry, the entry's 2-bit snapshot epoch (see the snapshot rule in `table.rs`), and an
//! inline key's length.
//!
//! Measured against the 64-byte entry (expiry, 32-bit version and 32-bit hash in the entry), on the 1M-key
//! `dump.rdb` loads of `tests/bench/compare.sh` (paired rounds): memory per key 75 -> 59 B for small
//! strings and 139 -> 127 B for the mixed dataset; load time -9% (strings) and -4% (mixed). The price is
//! paid by keys with a TTL: an allocation of their own (8 + key bytes) and, on a lookup, one more cache
//! miss to read the key and the expiry (Redis pays one too, for its `expires` dict).

use super::NO_EXPIRE;
use crate::util::padded_word;
use std::alloc::{self, Layout};
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;

/// Longest key kept inline (without a TTL).
pub const INLINE: usize = 15;

/// Metadata bits: the key is on the heap; its allocation starts with an expiry; the epoch; an inline length.
const HEAP: u8 = 0x80;
const TIMED: u8 = 0x40;
const EPOCH_SHIFT: u32 = 4;
const EPOCH: u8 = 0x30;
const LEN: u8 = 0x0f;

/// Bytes of a heap key's length: keys of up to 1 TiB.
const LEN_BYTES: usize = 5;
/// Size of the expiry at the start of a timed key's allocation.
const EXPIRY: usize = 8;

/// The heap form's 16 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
struct Heap {
    ptr: NonNull<u8>,
    len: [u8; LEN_BYTES],
    hash: [u8; 2],
    meta: u8,
}

#[repr(C)]
union Raw {
    /// Bytes 0..15 are the key (zero past its length), byte 15 the metadata.
    inline: [u8; 16],
    heap: Heap,
}

/// See the module documentation.
pub struct EntryKey(Raw);

// An EntryKey owns its allocation as a Box<[u8]> would.
unsafe impl Send for EntryKey {}
unsafe impl Sync for EntryKey {}

/// The 16 bits of a key's hash a heap key keeps (the top ones: the bucket index uses the low ones).
fn hash_tag(hash: u64) -> [u8; 2] {
    ((hash >> 48) as u16).to_le_bytes()
}

fn layout(len: usize, timed: bool) -> Layout {
    Layout::from_size_align(len + if timed { EXPIRY } else { 0 }, 8).expect("key too large")
}

impl EntryKey {
    /// `key` (whose [`hash_of`](super::hash_of) is `hash`) with `expire_at` ([`NO_EXPIRE`] for none), in
    /// epoch 0.
    pub fn new(key: &[u8], hash: u64, expire_at: i64) -> EntryKey {
        if expire_at == NO_EXPIRE && key.len() <= INLINE {
            let mut inline: [u8; 16] = crate::util::inline_array(key);
            inline[15] = key.len() as u8;
            return EntryKey(Raw { inline });
        }
        EntryKey::heap(key, hash_tag(hash), expire_at)
    }

    /// The heap form of `key`, timed unless `expire_at` is [`NO_EXPIRE`], in epoch 0. Only for a key with a
    /// TTL or longer than [`INLINE`]: never an empty allocation.
    fn heap(key: &[u8], hash: [u8; 2], expire_at: i64) -> EntryKey {
        let timed = expire_at != NO_EXPIRE;
        debug_assert!(timed || key.len() > INLINE);
        assert!((key.len() as u64) < 1 << (8 * LEN_BYTES), "key of {} bytes", key.len());
        let layout = layout(key.len(), timed);
        // SAFETY: the layout's size is non-zero (an expiry, or more than 15 bytes of key).
        let p = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(p) else { alloc::handle_alloc_error(layout) };
        let at = if timed { EXPIRY } else { 0 };
        // SAFETY: the allocation holds `at + key.len()` bytes, aligned to 8 for the expiry.
        unsafe {
            if timed {
                ptr.as_ptr().cast::<i64>().write(expire_at);
            }
            std::ptr::copy_nonoverlapping(key.as_ptr(), ptr.as_ptr().add(at), key.len());
        }
        let mut len = [0; LEN_BYTES];
        len.copy_from_slice(&(key.len() as u64).to_le_bytes()[..LEN_BYTES]);
        let meta = HEAP | if timed { TIMED } else { 0 };
        EntryKey(Raw { heap: Heap { ptr, len, hash, meta } })
    }

    fn meta(&self) -> u8 {
        // SAFETY: byte 15 is the metadata byte in both forms, always initialised.
        unsafe { self.0.inline[15] }
    }

    fn set_meta(&mut self, meta: u8) {
        // SAFETY: as in `meta`; writing it changes no other byte.
        unsafe { self.0.inline[15] = meta }
    }

    fn is_heap(&self) -> bool {
        self.meta() & HEAP != 0
    }

    fn is_timed(&self) -> bool {
        self.meta() & TIMED != 0
    }

    /// The heap form's fields (only when `is_heap`).
    fn heap_parts(&self) -> (NonNull<u8>, usize, [u8; 2]) {
        debug_assert!(self.is_heap());
        // SAFETY: the metadata says the heap form is in use.
        let h = unsafe { self.0.heap };
        let mut len = [0; 8];
        len[..LEN_BYTES].copy_from_slice(&h.len);
        (h.ptr, u64::from_le_bytes(len) as usize, h.hash)
    }

    /// Whether the key has a TTL (without reading it).
    #[inline]
    pub fn has_expire(&self) -> bool {
        self.is_timed()
    }

    /// The expiry in Unix milliseconds, or [`NO_EXPIRE`].
    #[inline]
    pub fn expire_at(&self) -> i64 {
        if !self.is_timed() {
            return NO_EXPIRE;
        }
        let (ptr, ..) = self.heap_parts();
        // SAFETY: a timed key's allocation starts with its expiry, aligned to 8.
        unsafe { ptr.as_ptr().cast::<i64>().read() }
    }

    /// Sets the expiry ([`NO_EXPIRE`] removes it), keeping the epoch. Giving a key its first TTL moves it to
    /// the heap; removing the TTL brings a short key back inline.
    pub fn set_expire_at(&mut self, expire_at: i64) {
        if self.is_timed() && expire_at != NO_EXPIRE {
            let (ptr, ..) = self.heap_parts();
            // SAFETY: as in `expire_at`; `&mut self` owns the allocation.
            unsafe { ptr.as_ptr().cast::<i64>().write(expire_at) };
            return;
        }
        if !self.is_timed() && expire_at == NO_EXPIRE {
            return;
        }
        let hash = if self.is_heap() { self.heap_parts().2 } else { hash_tag(super::hash_of(self)) };
        let epoch = self.meta() & EPOCH;
        let mut fresh = if expire_at == NO_EXPIRE && self.len() <= INLINE {
            EntryKey::new(self, 0, NO_EXPIRE)
        } else {
            EntryKey::heap(self, hash, expire_at)
        };
        fresh.set_epoch(epoch >> EPOCH_SHIFT);
        *self = fresh;
    }

    /// The entry's snapshot epoch (0 to 3).
    #[inline]
    pub(super) fn epoch(&self) -> u8 {
        (self.meta() & EPOCH) >> EPOCH_SHIFT
    }

    #[inline]
    pub(super) fn set_epoch(&mut self, epoch: u8) {
        self.set_meta((self.meta() & !EPOCH) | ((epoch << EPOCH_SHIFT) & EPOCH));
    }

    /// Whether this is `key`, whose hash is `hash`: an inline key compares its bytes (in the entry's cache
    /// line), a heap key its length and hash bits first.
    #[inline]
    pub(super) fn matches(&self, hash: u64, key: &[u8]) -> bool {
        if !self.is_heap() {
            // SAFETY: the inline form is in use.
            let b = unsafe { &self.0.inline };
            let n = key.len();
            if usize::from(b[15] & LEN) != n {
                return false;
            }
            // Two word compares instead of a memcmp call: the inline bytes past the length are zero, as
            // `padded_word` pads.
            let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
            return word(0) == padded_word(key) && (n <= 8 || word(8) & (u64::MAX >> 8) == padded_word(&key[8..]));
        }
        let (_, len, tag) = self.heap_parts();
        len == key.len() && tag == hash_tag(hash) && **self == *key
    }

    /// Bytes allocated on the heap (0 when inline).
    pub fn heap_bytes(&self) -> usize {
        if self.is_heap() {
            layout(self.heap_parts().1, self.is_timed()).size()
        } else {
            0
        }
    }
}

impl Deref for EntryKey {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        if !self.is_heap() {
            // SAFETY: the inline form is in use; its length is at most 15.
            let b = unsafe { &self.0.inline };
            return &b[..usize::from(b[15] & LEN)];
        }
        let (ptr, len, _) = self.heap_parts();
        let at = if self.is_timed() { EXPIRY } else { 0 };
        // SAFETY: the allocation holds the key's `len` bytes after the expiry, if any.
        unsafe { std::slice::from_raw_parts(ptr.as_ptr().add(at), len) }
    }
}

impl Drop for EntryKey {
    fn drop(&mut self) {
        if self.is_heap() {
            let (ptr, len, _) = self.heap_parts();
            // SAFETY: allocated by `heap` with this layout, and owned by `self`.
            unsafe { alloc::dealloc(ptr.as_ptr(), layout(len, self.is_timed())) };
        }
    }
}

impl PartialEq for EntryKey {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for EntryKey {}

impl fmt::Debug for EntryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::super::hash_of;
    use super::*;

    fn key(b: &[u8], expire_at: i64) -> EntryKey {
        EntryKey::new(b, hash_of(b), expire_at)
    }

    #[test]
    fn sixteen_bytes() {
        assert_eq!(std::mem::size_of::<EntryKey>(), 16);
    }

    #[test]
    fn every_form_keeps_its_bytes_expiry_and_epoch() {
        for len in [0usize, 1, 7, 8, 14, 15, 16, 17, 40, 300] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
            for exp in [NO_EXPIRE, 0, -5, 1_700_000_000_123, i64::MAX] {
                let mut k = key(&bytes, exp);
                assert_eq!(&*k, &bytes[..], "{len} {exp}");
                assert_eq!((k.expire_at(), k.has_expire()), (exp, exp != NO_EXPIRE));
                assert_eq!(k.is_heap(), len > INLINE || exp != NO_EXPIRE);
                assert_eq!(k.heap_bytes(), if k.is_heap() { len + if exp == NO_EXPIRE { 0 } else { 8 } } else { 0 });
                for epoch in 0..4 {
                    k.set_epoch(epoch);
                    assert_eq!(k.epoch(), epoch);
                    assert_eq!(&*k, &bytes[..]);
                    assert_eq!(k.expire_at(), exp);
                }
                assert!(k.matches(hash_of(&bytes), &bytes));
                let mut other = bytes.clone();
                other.push(0);
                assert!(!k.matches(hash_of(&other), &other));
                if len > 0 {
                    other.pop();
                    other[len - 1] ^= 1;
                    assert!(!k.matches(hash_of(&other), &other));
                }
            }
        }
    }

    #[test]
    fn setting_the_expiry_moves_between_forms_and_keeps_the_epoch() {
        for len in [0usize, 3, 15, 16, 30] {
            let bytes = vec![b'k'; len];
            let mut k = key(&bytes, NO_EXPIRE);
            k.set_epoch(2);
            for exp in [5, 7, NO_EXPIRE, NO_EXPIRE, i64::MIN + 1, 9, NO_EXPIRE] {
                k.set_expire_at(exp);
                assert_eq!((k.expire_at(), k.epoch(), &*k), (exp, 2, &bytes[..]), "{len} {exp}");
                assert_eq!(k.has_expire(), exp != NO_EXPIRE);
                assert_eq!(k.is_heap(), len > INLINE || exp != NO_EXPIRE);
                assert!(k.matches(hash_of(&bytes), &bytes));
            }
        }
    }
}
