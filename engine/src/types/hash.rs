//! Hash values: `listpack` (insertion-ordered pairs) while small, `hashtable` past
//! `hash-max-listpack-entries` / `hash-max-listpack-value`. As in Redis 7.0 a hash never converts back.
//!
//! The large form is a [`Table`], so HSCAN gets the table's cursor guarantee (an element present for the
//! whole scan is returned at least once) however the hash grows or shrinks between calls.

use crate::config::EngineConfig;
use crate::table::{Members, Table, NO_EXPIRE};
use crate::types::listpack;
use crate::types::small::SmallBuf;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

/// One field and its value.
pub type Pair = (Box<[u8]>, Box<[u8]>);

/// The small form of a hash: fields and values alternating in insertion order in one listpack of string
/// entries ([`crate::types::listpack`]), the format Redis keeps: a Redis listpack without integer entries
/// is loaded as it is, and the RDB writer saves the buffer as it is. Empty: no buffer at all. One exactly
/// sized allocation (a listpack is never under 7 bytes, so it is inline only when empty or tiny). Lookups
/// are linear and every change rewrites the buffer, which is cheap at listpack sizes.
#[derive(Clone, Default)]
pub struct PackedPairs(SmallBuf);

/// Walks a [`PackedPairs`]: each item is the pair and the byte range it occupies.
struct Spans<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Iterator for Spans<'a> {
    type Item = (&'a [u8], &'a [u8], Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let start = self.pos;
        let (f, at) = listpack::read_str(self.buf, start);
        let (v, end) = listpack::read_str(self.buf, at);
        self.pos = end;
        Some((f, v, start..end))
    }
}

fn encode_pair(out: &mut Vec<u8>, field: &[u8], value: &[u8]) {
    listpack::put_str(out, field);
    listpack::put_str(out, value);
}

impl PackedPairs {
    /// A hash holding the pairs of `lp`, a listpack the RDB reader checked entry by entry and found to hold
    /// only string entries, an even number of them, the fields distinct. Kept as it is.
    pub(crate) fn from_listpack(lp: &[u8]) -> PackedPairs {
        debug_assert!(lp.len() > listpack::HEADER && lp[lp.len() - 1] == 0xff);
        PackedPairs(SmallBuf::new(lp))
    }

    /// The listpack (a valid Redis listpack of string entries), or None for the empty hash.
    pub fn as_listpack(&self) -> Option<&[u8]> {
        (!self.0.is_empty()).then_some(&self.0[..])
    }

    fn spans(&self) -> Spans<'_> {
        match self.0.len() {
            0 => Spans { buf: &[], pos: 0, end: 0 },
            _ => Spans { buf: &self.0, pos: listpack::HEADER, end: listpack::end(&self.0) },
        }
    }

    fn find(&self, field: &[u8]) -> Option<(&[u8], Range<usize>)> {
        self.spans().find(|(f, _, _)| *f == field).map(|(_, v, r)| (v, r))
    }

    /// The pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans().map(|(f, v, _)| (f, v))
    }

    /// Number of pairs (the header's count; a walk past 65534 entries).
    pub fn len(&self) -> usize {
        match self.0.len() {
            0 => 0,
            _ => listpack::header_count(&self.0).map_or_else(|| self.spans().count(), |n| n / 2),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Heap bytes of the buffer (0 while it is inline).
    pub fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }

    /// Bytes of the listpack (0 when empty).
    pub fn bytes(&self) -> usize {
        self.0.len()
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.find(field).map(|(v, _)| v)
    }

    /// Sets `field` to `value` (in place of the old pair, or appended); true when the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.set_counting(field, value).0
    }

    /// [`PackedPairs::set`] that also returns the number of pairs afterwards, counted by the walk that looks
    /// for `field`.
    fn set_counting(&mut self, field: &[u8], value: &[u8]) -> (bool, usize) {
        let (mut pairs, mut found) = (0, None);
        for (f, _, r) in self.spans() {
            pairs += 1;
            if found.is_none() && f == field {
                found = Some(r);
            }
        }
        let created = found.is_none();
        let pairs = pairs + usize::from(created);
        let mut pair = Vec::with_capacity(listpack::str_entry_len(field.len()) + listpack::str_entry_len(value.len()));
        encode_pair(&mut pair, field, value);
        let range = found.unwrap_or_else(|| {
            let end = self.spans().end;
            end..end
        });
        self.replace(range, &pair, pairs);
        (created, pairs)
    }

    /// The buffer with the entries at `range` replaced by `with`, `pairs` pairs in all.
    fn replace(&mut self, range: Range<usize>, with: &[u8], pairs: usize) {
        self.0 = listpack::replaced(&self.0, range, with, 2 * pairs);
    }

    /// Removes `field`; true when it existed. The other pairs keep their order.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.find(field) {
            Some((_, r)) => {
                let pairs = self.len() - 1;
                self.replace(r, &[], pairs);
                true
            }
            None => false,
        }
    }
}

/// Equal when they hold the same pairs in the same order.
impl PartialEq for PackedPairs {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for PackedPairs {}

impl<'a> IntoIterator for &'a PackedPairs {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = Box<dyn Iterator<Item = (&'a [u8], &'a [u8])> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl<F: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(F, V)> for PackedPairs {
    /// Packs the pairs as given (the caller keeps fields distinct).
    fn from_iter<I: IntoIterator<Item = (F, V)>>(iter: I) -> Self {
        let mut pairs = 0;
        let packed = SmallBuf::build(|out| {
            let start = listpack::begin(out);
            for (f, v) in iter {
                encode_pair(out, f.as_ref(), v.as_ref());
                pairs += 1;
            }
            listpack::finish(out, start, 2 * pairs);
        });
        PackedPairs(if pairs == 0 { SmallBuf::default() } else { packed })
    }
}

impl From<Vec<Pair>> for PackedPairs {
    fn from(pairs: Vec<Pair>) -> Self {
        pairs.into_iter().collect()
    }
}

/// Field/value pairs of one hash.
pub enum HashValue {
    /// Pairs in insertion order (Redis's listpack encoding), packed in one buffer.
    Listpack(PackedPairs),
    /// Field -> value in a member table (Redis's hashtable encoding).
    /// Boxed so that the common small form keeps the enum small (the table header is 64 bytes).
    Table(Box<Table<Box<[u8]>, Members>>),
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::Listpack(PackedPairs::default())
    }
}

impl Clone for HashValue {
    fn clone(&self) -> Self {
        match self {
            HashValue::Listpack(v) => HashValue::Listpack(v.clone()),
            HashValue::Table(t) => {
                let mut copy = Table::with_capacity(t.len());
                for e in t.iter() {
                    copy.insert_ref(&e.key, e.value.clone(), NO_EXPIRE);
                }
                HashValue::Table(Box::new(copy))
            }
        }
    }
}

/// Equal when both use the same encoding and hold the same pairs (in the same order for listpacks).
impl PartialEq for HashValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HashValue::Listpack(a), HashValue::Listpack(b)) => a == b,
            (HashValue::Table(a), HashValue::Table(b)) => {
                a.len() == b.len() && a.iter().all(|e| b.get(&e.key).is_some_and(|o| o.value == e.value))
            }
            _ => false,
        }
    }
}

impl fmt::Debug for HashValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = self.iter().map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v)));
        f.debug_struct("HashValue")
            .field("encoding", &self.encoding_name())
            .field("pairs", &pairs.collect::<Vec<_>>())
            .finish()
    }
}

impl HashValue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        match self {
            HashValue::Listpack(v) => v.len(),
            HashValue::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            HashValue::Listpack(_) => "listpack",
            HashValue::Table(_) => "hashtable",
        }
    }

    /// Field/value pairs (listpack: insertion order).
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            HashValue::Listpack(v) => Box::new(v.iter()),
            HashValue::Table(t) => Box::new(t.iter().map(|e| (&e.key[..], &e.value[..]))),
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            HashValue::Listpack(v) => v.heap_bytes(),
            HashValue::Table(t) => t.heap_bytes() + t.iter().map(|e| e.value.len()).sum::<usize>(),
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            HashValue::Listpack(v) => v.get(field),
            HashValue::Table(t) => t.get(field).map(|e| &e.value[..]),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Before setting `pairs` (an HSET's, which cannot fail once it starts): a listpack that would convert to
    /// a hashtable during the sets converts now, so the sets go straight to the table instead of into a
    /// listpack rewritten on every set first. The result is the same: the hash only grows during the sets
    /// and never converts back, so it ends a hashtable exactly when one set breaks a limit. (Redis 7.0 also
    /// converts up front for a long field or value.)
    pub fn prepare_for<'p>(&mut self, pairs: impl ExactSizeIterator<Item = (&'p [u8], &'p [u8])>, cfg: &EngineConfig) {
        let HashValue::Listpack(v) = self else { return };
        let (len, count) = (v.len(), pairs.len());
        if count < 2 {
            return;
        }
        // Only a command that could pass the count needs its distinct new fields counted.
        let may_pass = len + count > cfg.hash_max_listpack_entries;
        let mut new = HashSet::with_capacity(if may_pass { count } else { 0 });
        for (f, val) in pairs {
            if f.len() > cfg.hash_max_listpack_value || val.len() > cfg.hash_max_listpack_value {
                return self.convert_to_table();
            }
            if may_pass {
                new.insert(f);
            }
        }
        new.retain(|f| v.get(f).is_none());
        if len + new.len() > cfg.hash_max_listpack_entries {
            self.convert_to_table();
        }
    }

    /// Sets `field` to `value`; true when the field is new. Converts to a hashtable, as Redis does, when the
    /// field or the value is longer than `hash-max-listpack-value` or the listpack would pass 1 GB (before
    /// writing), or when the hash ends up with more than `hash-max-listpack-entries` fields.
    pub fn set(&mut self, field: &[u8], value: &[u8], cfg: &EngineConfig) -> bool {
        let too_big = |v: &PackedPairs| {
            field.len() > cfg.hash_max_listpack_value
                || value.len() > cfg.hash_max_listpack_value
                || v.bytes() + listpack::str_entry_len(field.len()) + listpack::str_entry_len(value.len())
                    > listpack::MAX_SAFE
        };
        if matches!(self, HashValue::Listpack(v) if too_big(v)) {
            self.convert_to_table();
        }
        let created = match self {
            HashValue::Listpack(v) => {
                let (created, len) = v.set_counting(field, value);
                if len > cfg.hash_max_listpack_entries {
                    self.convert_to_table();
                }
                return created;
            }
            HashValue::Table(t) => match t.get_mut(field) {
                Some(e) => {
                    e.value = value.into();
                    false
                }
                None => {
                    t.insert_ref(field, value.into(), NO_EXPIRE);
                    true
                }
            },
        };
        if self.len() > cfg.hash_max_listpack_entries {
            self.convert_to_table();
        }
        created
    }

    /// Removes `field`; true when it existed. A listpack keeps the order of the other fields.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            HashValue::Listpack(v) => v.remove(field),
            HashValue::Table(t) => t.remove(field).is_some(),
        }
    }

    /// Switches to the hashtable encoding (no-op when already there).
    pub fn convert_to_table(&mut self) {
        if let HashValue::Listpack(v) = self {
            let mut t = Table::with_capacity(v.len());
            for (f, x) in v.iter() {
                t.insert_ref(f, x.into(), NO_EXPIRE);
            }
            *self = HashValue::Table(Box::new(t));
        }
    }

    /// One HSCAN step from `cursor`: calls `f` for some pairs and returns the next cursor (0 = done). A listpack
    /// is returned whole with cursor 0, as Redis does; a table is walked like Redis's `scanGenericCommand`, at
    /// most `10 * count` buckets, stopping once `count` pairs were seen.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self {
            HashValue::Listpack(v) => {
                for (k, x) in v.iter() {
                    f(k, x);
                }
                0
            }
            HashValue::Table(t) => {
                let (mut cursor, mut seen, mut budget) = (cursor, 0usize, count.saturating_mul(10));
                loop {
                    cursor = t.scan(cursor, |e| {
                        seen += 1;
                        f(&e.key, &e.value);
                    });
                    budget = budget.saturating_sub(1);
                    if cursor == 0 || budget == 0 || seen >= count {
                        return cursor;
                    }
                }
            }
        }
    }

    /// A uniformly chosen pair (a random bucket then a random chain entry for a table, as Redis).
    pub fn random_pair(&self) -> Option<(&[u8], &[u8])> {
        match self {
            HashValue::Listpack(v) if v.is_empty() => None,
            HashValue::Listpack(v) => v.iter().nth(fastrand::usize(..v.len())),
            HashValue::Table(t) => t.random_entry().map(|e| (&e.key[..], &e.value[..])),
        }
    }

    /// `count` random pairs, possibly repeated (HRANDFIELD with a negative count).
    pub fn random_pairs(&self, count: usize) -> Vec<(&[u8], &[u8])> {
        (0..count).map_while(|_| self.random_pair()).collect()
    }

    /// `count` distinct random pairs; all pairs (in iteration order) when `count >= len`.
    pub fn random_pairs_unique(&self, count: usize) -> Vec<(&[u8], &[u8])> {
        if count >= self.len() {
            return self.iter().collect();
        }
        if count.saturating_mul(3) > self.len() {
            // A large share of the hash: drop random pairs from a full copy (Redis's "case 3").
            let mut all: Vec<_> = self.iter().collect();
            while all.len() > count {
                all.swap_remove(fastrand::usize(..all.len()));
            }
            return all;
        }
        // A small share: draw until enough distinct fields were seen.
        let mut seen = HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let Some((f, x)) = self.random_pair() else {
                break;
            };
            if seen.insert(f) {
                out.push((f, x));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EngineConfig {
        EngineConfig { hash_max_listpack_entries: 3, hash_max_listpack_value: 4, ..EngineConfig::default() }
    }

    /// The pairs of `p` as the RDB reader sees its buffer: a valid listpack whose header agrees.
    fn read_back(p: &PackedPairs) -> Vec<(Vec<u8>, Vec<u8>)> {
        let Some(lp) = p.as_listpack() else { return Vec::new() };
        let mut elems = Vec::new();
        crate::rdb::blobs::listpack(lp, &mut elems).expect("a valid listpack");
        assert_eq!(listpack::header_count(lp), Some(elems.len()));
        let bytes = |e: &crate::rdb::blobs::Elem| match e {
            crate::rdb::blobs::Elem::Str(s) => s.to_vec(),
            other => panic!("an integer entry: {other:?}"),
        };
        elems.chunks(2).map(|c| (bytes(&c[0]), bytes(&c[1]))).collect()
    }

    #[test]
    fn the_small_form_is_always_a_valid_listpack() {
        let mut p = PackedPairs::default();
        let mut model: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for step in 0..3000 {
            let f = format!("f{}", fastrand::u8(..20)).into_bytes();
            // Lengths around the 6- and 12-bit string encodings and the back-length's sizes; digits too.
            let v: Vec<u8> = match fastrand::u8(..4) {
                0 => fastrand::i64(..).to_string().into_bytes(),
                1 => vec![b'x'; fastrand::usize(60..70)],
                2 => vec![b'y'; fastrand::usize(4090..4100)],
                _ => vec![b'z'; fastrand::usize(..3)],
            };
            if step % 3 == 0 {
                let had = model.iter().position(|(k, _)| *k == f);
                assert_eq!(p.remove(&f), had.is_some());
                if let Some(i) = had {
                    model.remove(i);
                }
            } else {
                let created = p.set(&f, &v);
                match model.iter_mut().find(|(k, _)| *k == f) {
                    Some(pair) => {
                        assert!(!created);
                        pair.1 = v;
                    }
                    None => {
                        assert!(created);
                        model.push((f, v));
                    }
                }
            }
            assert_eq!(p.len(), model.len());
            if step % 50 == 0 {
                assert_eq!(read_back(&p), model);
            }
        }
        assert_eq!(read_back(&p), model);
        let copy: PackedPairs = model.iter().map(|(f, v)| (f, v)).collect();
        assert!(copy == p);
        assert_eq!(copy.as_listpack(), p.as_listpack(), "built in one go or pair by pair: the same bytes");
        assert!(PackedPairs::from_iter(Vec::<(&[u8], &[u8])>::new()).as_listpack().is_none());
    }

    #[test]
    fn converts_on_count_and_length_and_never_back() {
        let c = cfg();
        let mut h = HashValue::new();
        for f in [&b"a"[..], b"b", b"c"] {
            assert!(h.set(f, b"1", &c));
        }
        assert_eq!(h.encoding_name(), "listpack");
        assert!(!h.set(b"a", b"2", &c));
        assert_eq!(h.iter().map(|(f, _)| f.to_vec()).collect::<Vec<_>>(), [b"a", b"b", b"c"]);
        assert!(h.set(b"d", b"1", &c));
        assert_eq!(h.encoding_name(), "hashtable");
        assert!(h.remove(b"d") && h.remove(b"c"));
        assert_eq!(h.encoding_name(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&b"2"[..]));

        let mut long = HashValue::new();
        long.set(b"a", b"1234", &c);
        assert_eq!(long.encoding_name(), "listpack");
        long.set(b"abcde", b"1", &c);
        assert_eq!(long.encoding_name(), "hashtable");
    }

    #[test]
    fn clone_and_eq() {
        let c = cfg();
        let mut h = HashValue::new();
        for i in 0..10 {
            h.set(format!("f{i}").as_bytes(), b"v", &c);
        }
        let copy = h.clone();
        assert_eq!(copy, h);
        h.set(b"f1", b"w", &c);
        assert_ne!(copy, h);
    }

    #[test]
    fn small_form_is_one_compact_buffer() {
        let c = EngineConfig::default();
        let mut h = HashValue::new();
        h.set(b"name", b"n123456", &c);
        h.set(b"age", b"42", &c);
        h.set(b"city", b"c123456", &c);
        assert_eq!(h.encoding_name(), "listpack");
        assert!(h.heap_bytes() < 80, "{} bytes", h.heap_bytes());
        // Lengths past one varint byte, replacing in the middle, removing keeps order.
        let c = EngineConfig { hash_max_listpack_value: 1000, ..EngineConfig::default() };
        let long = vec![b'x'; 300];
        assert!(h.set(&long, &long, &c));
        assert!(!h.set(b"age", &long, &c));
        assert_eq!(h.get(b"age"), Some(&long[..]));
        assert_eq!(h.get(&long), Some(&long[..]));
        assert!(h.remove(b"name") && !h.remove(b"name"));
        let fields: Vec<_> = h.iter().map(|(f, _)| f.to_vec()).collect();
        assert_eq!(fields, [b"age".to_vec(), b"city".to_vec(), long.clone()]);
        assert_eq!(h.len(), 3);
        let mut n = 0;
        assert_eq!(h.scan(0, 10, |_, _| n += 1), 0);
        assert_eq!(n, 3);
        assert!(h.random_pair().is_some_and(|(f, _)| h.contains(f)));
        h.convert_to_table();
        assert_eq!(h.get(b"age"), Some(&long[..]));
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn random_unique_is_distinct() {
        let c = EngineConfig::default();
        let mut h = HashValue::new();
        for i in 0..300 {
            h.set(format!("f{i}").as_bytes(), b"v", &c);
        }
        for n in [1, 50, 150, 299, 300, 1000] {
            let got = h.random_pairs_unique(n);
            let distinct: HashSet<_> = got.iter().map(|(f, _)| *f).collect();
            assert_eq!(got.len(), n.min(300));
            assert_eq!(distinct.len(), got.len());
        }
        assert_eq!(h.random_pairs(7).len(), 7);
    }
}
