//! Set values: `intset` (sorted i64s) while every member is an integer and the count is within
//! `set-max-intset-entries`; packed while a set of strings is small; `hashtable` otherwise. A set only
//! converts back when a command builds a new one (SPOP's rebuild, the *STORE commands), as in Redis.
//!
//! A member belongs in an intset when it is the canonical decimal form of an i64 ([`parse_i64`]): "12" does,
//! "012", "+12" and "-0" do not. The large form is a member [`Table`] ([`Members`]), so SSCAN gets the
//! table's cursor guarantee: one 32-byte entry per member of up to 22 bytes and an 8-byte bucket array up to
//! 8 members, against Redis's entry, member string and 32-byte bucket array.
//!
//! Redis 7.0 has no small form for sets of strings; Redis 7.2 added listpack sets, with the limits
//! `set-max-listpack-entries` (128) and `set-max-listpack-value` (64 bytes). Moon keeps such sets packed
//! ([`PackedSet`]: one allocation instead of a table, its bucket array and an entry per member) but
//! reports them as 7.0 does: `OBJECT ENCODING` says `hashtable` and the RDB writer saves a plain set.
//! Only what 7.0 clients cannot observe differs: memory, and SSCAN returning such a set in one call.
//!
//! The intset is packed as Redis packs it ([`IntSet`]): every member at the narrowest width (16, 32 or 64
//! bits) that fits them all, in one buffer, widened when a wider member arrives. The buffer is a
//! [`SmallBuf`]: up to seven 16-bit or three 32-bit members need no allocation.

use crate::config::EngineConfig;
use crate::table::{Members, Table, NO_EXPIRE};
use crate::types::small::{put_varint, read_elem, SmallBuf, ThinBuf};
use crate::util::parse_i64;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

/// Sorted, distinct i64s in one buffer: a width byte (2, 4 or 8) followed by every member little-endian at
/// that width. The empty set has an empty buffer and width 2. As in Redis, the width only grows (on adding a
/// member that needs more) and never shrinks on removal.
#[derive(Clone, Default)]
pub struct IntSet {
    buf: SmallBuf,
}

/// The narrowest intset width that holds `v`.
fn width_for(v: i64) -> usize {
    if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

/// Appends `v` little-endian in `width` bytes (which must hold it).
fn put_int(out: &mut Vec<u8>, v: i64, width: usize) {
    out.extend_from_slice(&v.to_le_bytes()[..width]);
}

impl IntSet {
    /// An intset of `sorted` (ascending, distinct), at the narrowest width that fits them all.
    pub fn from_sorted(sorted: &[i64]) -> IntSet {
        debug_assert!(sorted.windows(2).all(|w| w[0] < w[1]), "intset members must be sorted and distinct");
        if sorted.is_empty() {
            return IntSet::default();
        }
        let width = sorted.iter().map(|&v| width_for(v)).max().unwrap_or(2);
        Self::build(width, sorted.len(), sorted.iter().copied())
    }

    /// The intset of `members`: sorted, distinct integers already little-endian at `width` (2, 4 or 8), as
    /// an RDB intset blob holds them after its header. The width is kept even when a narrower one would do,
    /// as Redis keeps it.
    pub fn from_le(width: usize, members: &[u8]) -> IntSet {
        debug_assert!(matches!(width, 2 | 4 | 8) && members.len().is_multiple_of(width));
        if members.is_empty() {
            return IntSet::default();
        }
        IntSet { buf: SmallBuf::concat(&[&[width as u8], members]) }
    }

    /// A buffer of `count` members at `width` taken from `members`.
    fn build(width: usize, count: usize, members: impl Iterator<Item = i64>) -> IntSet {
        let mut out = Vec::with_capacity(1 + width * count);
        out.push(width as u8);
        for v in members {
            put_int(&mut out, v, width);
        }
        debug_assert_eq!(out.len(), 1 + width * count);
        IntSet { buf: SmallBuf::new(&out) }
    }

    /// Bytes per member.
    pub fn width(&self) -> usize {
        self.buf.first().map_or(2, |&w| usize::from(w))
    }

    pub fn len(&self) -> usize {
        self.buf.len().saturating_sub(1) / self.width()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.len() <= 1
    }

    /// The member at sorted position `i` (< `len()`).
    pub fn get(&self, i: usize) -> i64 {
        let w = self.width();
        let b = &self.buf[1 + i * w..1 + (i + 1) * w];
        match w {
            2 => i64::from(i16::from_le_bytes([b[0], b[1]])),
            4 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            _ => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        }
    }

    /// `Ok(position)` of `v`, or `Err(position)` where it would be inserted.
    pub fn search(&self, v: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(&v) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    pub fn contains(&self, v: i64) -> bool {
        self.search(v).is_ok()
    }

    /// Adds `v`; true when it was not there. Widens every member when `v` needs more bytes.
    pub fn insert(&mut self, v: i64) -> bool {
        let Err(at) = self.search(v) else {
            return false;
        };
        let w = self.width();
        if !self.is_empty() && width_for(v) <= w {
            // Same width: one splice of `v`'s bytes (little-endian, so its low `w` bytes are `v` at width `w`).
            let at = 1 + at * w;
            self.buf = self.buf.spliced(at..at, &v.to_le_bytes()[..w]);
            return true;
        }
        let n = self.len();
        let width = w.max(width_for(v));
        let members = self.iter().take(at).chain(std::iter::once(v)).chain(self.iter().skip(at));
        *self = Self::build(width, n + 1, members);
        true
    }

    /// Removes `v`; true when it was there. The width is kept.
    pub fn remove(&mut self, v: i64) -> bool {
        let Ok(at) = self.search(v) else {
            return false;
        };
        let w = self.width();
        self.buf =
            if self.len() > 1 { self.buf.spliced(1 + at * w..1 + (at + 1) * w, &[]) } else { SmallBuf::default() };
        true
    }

    /// Members in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    pub fn to_vec(&self) -> Vec<i64> {
        self.iter().collect()
    }

    /// Heap bytes of the packed buffer (0 while it is inline).
    pub fn heap_bytes(&self) -> usize {
        self.buf.heap_bytes()
    }
}

/// From ascending, distinct integers (e.g. an RDB intset blob).
impl From<Vec<i64>> for IntSet {
    fn from(sorted: Vec<i64>) -> Self {
        IntSet::from_sorted(&sorted)
    }
}

/// Equal when the members are (whatever the widths).
impl PartialEq for IntSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for IntSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A small set of strings: each member as a varint length and its bytes, in insertion order, in one
/// allocation (the role of Redis 7.2's listpack sets). Lookups are linear and every change rewrites the
/// buffer, which is cheap within `set-max-listpack-entries`.
#[derive(Clone)]
pub struct PackedSet(ThinBuf);

/// Walks a [`PackedSet`]: each item is a member and the byte range it occupies.
struct Spans<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Spans<'a> {
    type Item = (&'a [u8], Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let (m, end) = read_elem(self.buf, start);
        self.pos = end;
        Some((m, start..end))
    }
}

impl PackedSet {
    /// Packs `members` as given: the caller keeps them distinct.
    pub fn from_distinct<'m>(members: impl IntoIterator<Item = &'m [u8]>) -> PackedSet {
        PackedSet::build(|out| {
            for m in members {
                PackedSet::put(out, m);
            }
        })
    }

    /// Packs what `fill` writes with [`PackedSet::put`]: the caller keeps the members distinct.
    pub(crate) fn build(fill: impl FnOnce(&mut Vec<u8>)) -> PackedSet {
        PackedSet(ThinBuf::build(fill))
    }

    /// Appends one member for [`PackedSet::build`].
    pub(crate) fn put(out: &mut Vec<u8>, member: &[u8]) {
        put_varint(out, member.len());
        out.extend_from_slice(member);
    }

    fn spans(&self) -> Spans<'_> {
        Spans { buf: &self.0, pos: 0 }
    }

    /// The members in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.spans().map(|(m, _)| m)
    }

    /// Number of members (a walk: the buffer has no header).
    pub fn len(&self) -> usize {
        self.spans().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.iter().any(|m| m == member)
    }

    /// Appends `member` unless present; returns the count afterwards when it was added.
    fn insert(&mut self, member: &[u8]) -> Option<usize> {
        let mut n = 0;
        for m in self.iter() {
            if m == member {
                return None;
            }
            n += 1;
        }
        self.0 = ThinBuf::build(|out| {
            out.extend_from_slice(&self.0);
            PackedSet::put(out, member);
        });
        Some(n + 1)
    }

    /// Removes `member`; true when it was there. The others keep their order.
    fn remove(&mut self, member: &[u8]) -> bool {
        match self.spans().find(|(m, _)| *m == member) {
            Some((_, r)) => {
                self.0 = self.0.spliced(r, &[]);
                true
            }
            None => false,
        }
    }

    /// The member at insertion position `i`, if any.
    fn nth(&self, i: usize) -> Option<&[u8]> {
        self.iter().nth(i)
    }
}

/// Equal when they hold the same members, in any order.
impl PartialEq for PackedSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(m))
    }
}

/// The members of one set.
pub enum SetValue {
    /// Sorted, distinct integers (Redis's intset encoding).
    Intset(IntSet),
    /// A small set of strings, packed (reported as `hashtable`, see the module's notes).
    Packed(PackedSet),
    /// Members as keys of a member table (Redis's hashtable encoding): one 32-byte entry per member of up
    /// to 22 bytes, one bucket for up to 8 members. Boxed so that the intset form keeps the enum small (the
    /// table header is 64 bytes).
    Table(Box<Table<(), Members>>),
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue::Intset(IntSet::default())
    }
}

impl Clone for SetValue {
    fn clone(&self) -> Self {
        match self {
            SetValue::Intset(v) => SetValue::Intset(v.clone()),
            SetValue::Packed(p) => SetValue::Packed(p.clone()),
            SetValue::Table(t) => {
                let mut copy = Table::with_capacity(t.len());
                for e in t.iter() {
                    copy.insert_ref(&e.key, (), NO_EXPIRE);
                }
                SetValue::Table(Box::new(copy))
            }
        }
    }
}

/// Equal when both use the same encoding and hold the same members.
impl PartialEq for SetValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SetValue::Intset(a), SetValue::Intset(b)) => a == b,
            (SetValue::Packed(a), SetValue::Packed(b)) => a == b,
            (SetValue::Table(a), SetValue::Table(b)) => a.len() == b.len() && a.iter().all(|e| b.contains_key(&e.key)),
            _ => false,
        }
    }
}

impl fmt::Debug for SetValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let members: Vec<_> = self.iter().map(|m| String::from_utf8_lossy(&m).into_owned()).collect();
        f.debug_struct("SetValue").field("encoding", &self.encoding_name()).field("members", &members).finish()
    }
}

/// The decimal form of an intset member.
fn int_bytes<'a>(i: i64) -> Cow<'a, [u8]> {
    Cow::Owned(i.to_string().into_bytes())
}

impl SetValue {
    pub fn new() -> Self {
        Self::default()
    }

    /// A set holding `members`, encoded as Redis encodes a set built by adding them one by one to an empty
    /// intset (SINTERSTORE, SUNIONSTORE, SPOP's rebuild ...): intset when possible.
    pub fn from_members<'m>(members: impl IntoIterator<Item = &'m [u8]>, cfg: &EngineConfig) -> Self {
        let mut s = SetValue::new();
        for m in members {
            s.add(m, cfg);
        }
        s
    }

    pub fn len(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.len(),
            SetValue::Packed(p) => p.len(),
            SetValue::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoding Redis 7.0 would report: `hashtable` for a packed set too (7.0 has no small form).
    pub fn encoding_name(&self) -> &'static str {
        match self {
            SetValue::Intset(_) => "intset",
            SetValue::Packed(_) | SetValue::Table(_) => "hashtable",
        }
    }

    /// Calls `f` with each member's bytes (integers in decimal).
    pub fn for_each(&self, mut f: impl FnMut(&[u8])) {
        for m in self.iter() {
            f(&m);
        }
    }

    /// Every member (intset: ascending; packed: insertion order; table: bucket order).
    pub fn iter(&self) -> Box<dyn Iterator<Item = Cow<'_, [u8]>> + '_> {
        match self {
            SetValue::Intset(v) => Box::new(v.iter().map(int_bytes)),
            SetValue::Packed(p) => Box::new(p.iter().map(Cow::Borrowed)),
            SetValue::Table(t) => Box::new(t.iter().map(|e| Cow::Borrowed(&e.key[..]))),
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.heap_bytes(),
            SetValue::Packed(p) => p.heap_bytes(),
            SetValue::Table(t) => t.heap_bytes(),
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => parse_i64(member).is_some_and(|i| v.contains(i)),
            SetValue::Packed(p) => p.contains(member),
            SetValue::Table(t) => t.contains_key(member),
        }
    }

    /// Adds `member`; true when it is new. An intset converts for a non-integer member (packed while
    /// `set-max-listpack-*` allow) or when the count would pass `set-max-intset-entries`; a packed set
    /// converts to a table past `set-max-listpack-*`.
    pub fn add(&mut self, member: &[u8], cfg: &EngineConfig) -> bool {
        if let SetValue::Intset(v) = self {
            match parse_i64(member) {
                Some(i) => {
                    if !v.insert(i) {
                        return false;
                    }
                    if v.len() > cfg.set_max_intset_entries {
                        self.convert_to_table();
                    }
                    return true;
                }
                None if v.len() < cfg.set_max_listpack_entries && member.len() <= cfg.set_max_listpack_value => {
                    let ints: Vec<String> = v.iter().map(|i| i.to_string()).collect();
                    *self = SetValue::Packed(PackedSet::from_distinct(ints.iter().map(|i| i.as_bytes())));
                }
                None => self.convert_to_table(),
            }
        }
        if let SetValue::Packed(p) = self {
            if member.len() <= cfg.set_max_listpack_value {
                let added = p.insert(member);
                if added.is_some_and(|n| n > cfg.set_max_listpack_entries) {
                    self.convert_to_table();
                }
                return added.is_some();
            }
            self.convert_to_table();
        }
        let SetValue::Table(t) = self else { unreachable!("converted above") };
        // An existing member keeps its stored key; its value is `()` either way.
        t.insert_ref(member, (), NO_EXPIRE).is_none()
    }

    /// Removes `member`; true when it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => parse_i64(member).is_some_and(|i| v.remove(i)),
            SetValue::Packed(p) => p.remove(member),
            SetValue::Table(t) => t.remove(member).is_some(),
        }
    }

    /// Switches to the hashtable encoding (no-op when already there).
    pub fn convert_to_table(&mut self) {
        let t = match self {
            SetValue::Table(_) => return,
            SetValue::Intset(v) => {
                let mut t = Table::with_capacity(v.len());
                for i in v.iter() {
                    t.insert_ref(i.to_string().as_bytes(), (), NO_EXPIRE);
                }
                t
            }
            SetValue::Packed(p) => {
                let mut t = Table::with_capacity(p.len());
                for m in p.iter() {
                    t.insert_ref(m, (), NO_EXPIRE);
                }
                t
            }
        };
        *self = SetValue::Table(Box::new(t));
    }

    /// One SSCAN step; see [`crate::types::HashValue::scan`]: an intset is returned whole with cursor 0.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8])) -> u64 {
        match self {
            SetValue::Intset(_) | SetValue::Packed(_) => {
                self.for_each(f);
                0
            }
            SetValue::Table(t) => {
                let (mut cursor, mut seen, mut budget) = (cursor, 0usize, count.saturating_mul(10));
                loop {
                    cursor = t.scan(cursor, |e| {
                        seen += 1;
                        f(&e.key);
                    });
                    budget = budget.saturating_sub(1);
                    if cursor == 0 || budget == 0 || seen >= count {
                        return cursor;
                    }
                }
            }
        }
    }

    /// A uniformly chosen member.
    pub fn random_member(&self) -> Option<Cow<'_, [u8]>> {
        match self {
            SetValue::Intset(v) if v.is_empty() => None,
            SetValue::Intset(v) => Some(int_bytes(v.get(fastrand::usize(..v.len())))),
            SetValue::Packed(p) => p.nth(fastrand::usize(..p.len().max(1))).map(Cow::Borrowed),
            SetValue::Table(t) => t.random_entry().map(|e| Cow::Borrowed(&e.key[..])),
        }
    }

    /// Removes and returns a random member.
    pub fn pop_random(&mut self) -> Option<Vec<u8>> {
        let m = self.random_member()?.into_owned();
        self.remove(&m);
        Some(m)
    }

    /// `count` random members, possibly repeated (SRANDMEMBER with a negative count).
    pub fn random_members(&self, count: usize) -> Vec<Cow<'_, [u8]>> {
        (0..count).map_while(|_| self.random_member()).collect()
    }

    /// `count` distinct random members; all members (in iteration order) when `count >= len`.
    pub fn random_members_unique(&self, count: usize) -> Vec<Cow<'_, [u8]>> {
        if count >= self.len() {
            return self.iter().collect();
        }
        if count.saturating_mul(3) > self.len() {
            // A large share of the set: drop random members from a full copy (Redis's "case 3").
            let mut all: Vec<_> = self.iter().collect();
            while all.len() > count {
                all.swap_remove(fastrand::usize(..all.len()));
            }
            return all;
        }
        let mut out: Vec<Cow<'_, [u8]>> = Vec::with_capacity(count);
        let mut seen: HashSet<Cow<'_, [u8]>> = HashSet::with_capacity(count);
        while out.len() < count {
            let Some(m) = self.random_member() else { break };
            if seen.insert(m.clone()) {
                out.push(m);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EngineConfig {
        EngineConfig { set_max_intset_entries: 3, ..EngineConfig::default() }
    }

    fn members(s: &SetValue) -> Vec<String> {
        let mut v: Vec<_> = s.iter().map(|m| String::from_utf8_lossy(&m).into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn intset_holds_canonical_integers_only() {
        let c = cfg();
        let mut s = SetValue::new();
        assert!(s.add(b"3", &c) && s.add(b"-1", &c) && !s.add(b"3", &c));
        assert_eq!(s, SetValue::Intset(vec![-1, 3].into()));
        assert!(!s.contains(b"03") && !s.remove(b"+3") && s.contains(b"3"));
        s.add(b"03", &c);
        assert_eq!(s.encoding_name(), "hashtable");
        assert_eq!(members(&s), ["-1", "03", "3"]);
        assert!(s.remove(b"03"));
        assert_eq!(s.encoding_name(), "hashtable");
    }

    #[test]
    fn small_string_sets_stay_packed_but_report_hashtable() {
        let c = EngineConfig { set_max_listpack_entries: 4, set_max_listpack_value: 8, ..EngineConfig::default() };
        let mut s = SetValue::from_members([&b"1"[..], b"2"], &c);
        assert!(matches!(s, SetValue::Intset(_)));
        // A string member: the integers move into a packed set, still reported as 7.0 reports it.
        assert!(s.add(b"abc", &c) && !s.add(b"abc", &c) && !s.add(b"2", &c));
        assert!(matches!(s, SetValue::Packed(_)), "{s:?}");
        assert_eq!((s.encoding_name(), s.len()), ("hashtable", 3));
        assert!(s.contains(b"1") && s.contains(b"abc") && !s.contains(b"ab"));
        assert_eq!(s.iter().collect::<Vec<_>>(), [&b"1"[..], b"2", b"abc"]);
        assert!(s.heap_bytes() > 0 && s.heap_bytes() < 16);
        let mut seen = Vec::new();
        assert_eq!(s.scan(0, 1, |m| seen.push(m.to_vec())), 0);
        assert_eq!(seen.len(), 3);
        assert!(s.remove(b"2") && !s.remove(b"2"));
        assert_eq!(members(&s), ["1", "abc"]);
        let copy = s.clone();
        assert_eq!(copy, s);
        // Past the count limit, and a member past the length limit: a table.
        for m in [&b"x"[..], b"y"] {
            s.add(m, &c);
        }
        assert!(matches!(s, SetValue::Packed(_)));
        s.add(b"z", &c);
        assert!(matches!(s, SetValue::Table(_)));
        assert_eq!(members(&s), ["1", "abc", "x", "y", "z"]);
        let mut long = SetValue::from_members([&b"a"[..]], &c);
        assert!(matches!(long, SetValue::Packed(_)));
        long.add(b"123456789", &c);
        assert!(matches!(long, SetValue::Table(_)));
        assert_eq!(members(&long), ["123456789", "a"]);
        // A first member that is too long skips the packed form.
        assert!(matches!(SetValue::from_members([&b"123456789x"[..]], &c), SetValue::Table(_)));
    }

    #[test]
    fn every_form_matches_a_model() {
        let c = EngineConfig {
            set_max_intset_entries: 6,
            set_max_listpack_entries: 10,
            set_max_listpack_value: 5,
            ..EngineConfig::default()
        };
        for round in 0..300 {
            let mut s = SetValue::new();
            let mut model = std::collections::BTreeSet::new();
            for _ in 0..fastrand::usize(1..40) {
                let m = match fastrand::u8(..4) {
                    0 | 1 => fastrand::i64(-20..20).to_string(),
                    2 => format!("s{}", fastrand::u8(..30)),
                    _ => "long".repeat(fastrand::usize(1..3)),
                };
                if round % 2 == 0 && fastrand::u8(..3) == 0 {
                    assert_eq!(s.remove(m.as_bytes()), model.remove(&m));
                } else {
                    assert_eq!(s.add(m.as_bytes(), &c), model.insert(m.clone()));
                }
                assert_eq!(s.len(), model.len());
                assert!(model.iter().all(|m| s.contains(m.as_bytes())));
            }
            assert_eq!(members(&s), model.iter().cloned().collect::<Vec<_>>());
            let r = s.random_members_unique(3);
            assert_eq!(r.len(), model.len().min(3));
        }
    }

    #[test]
    fn intset_converts_past_the_limit() {
        let c = cfg();
        let s = SetValue::from_members([&b"1"[..], b"2", b"3"], &c);
        assert_eq!(s.encoding_name(), "intset");
        let s = SetValue::from_members([&b"1"[..], b"2", b"3", b"4"], &c);
        assert_eq!(s.encoding_name(), "hashtable");
        assert_eq!(members(&s), ["1", "2", "3", "4"]);
        assert_eq!(s.clone(), s);
    }

    #[test]
    fn random_and_pop() {
        let c = EngineConfig::default();
        let names: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        let mut s = SetValue::from_members(names.iter().map(|n| n.as_bytes()), &c);
        for n in [0, 1, 20, 40, 99, 100, 500] {
            let got = s.random_members_unique(n);
            let distinct: HashSet<_> = got.iter().collect();
            assert_eq!((got.len(), distinct.len()), (n.min(100), n.min(100)));
        }
        assert_eq!(s.random_members(250).len(), 250);
        let mut popped = HashSet::new();
        while let Some(m) = s.pop_random() {
            assert!(popped.insert(m));
        }
        assert_eq!(popped.len(), 100);
        assert!(s.random_member().is_none());
    }

    #[test]
    fn intset_is_packed_at_the_narrowest_width() {
        assert!(std::mem::size_of::<SetValue>() <= 16);
        let c = EngineConfig::default();
        // Width byte + three 16-bit members: 7 bytes, inline.
        let s = SetValue::from_members([&b"7"[..], b"8", b"9"], &c);
        assert_eq!(s.heap_bytes(), 0);
        let SetValue::Intset(v) = &s else { panic!("not an intset") };
        assert_eq!((v.width(), v.to_vec()), (2, vec![7, 8, 9]));
        assert_eq!(SetValue::new().heap_bytes(), 0);
        // Three 32-bit members still fit (13 bytes); a fourth goes to the heap with a length byte.
        let mut v = IntSet::from_sorted(&[70_000, 70_001, 70_002]);
        assert_eq!((v.width(), v.heap_bytes()), (4, 0));
        v.insert(70_003);
        assert_eq!((v.heap_bytes(), v.to_vec()), (1 + 17, vec![70_000, 70_001, 70_002, 70_003]));
        v.remove(70_000);
        assert_eq!((v.heap_bytes(), v.len()), (0, 3));
    }

    #[test]
    fn intset_widens_and_keeps_order() {
        let mut v = IntSet::default();
        assert!(v.is_empty() && v.to_vec().is_empty() && !v.contains(0) && !v.remove(0));
        for x in [5, -3, 32767, -32768] {
            assert!(v.insert(x));
        }
        assert_eq!((v.width(), v.to_vec()), (2, vec![-32768, -3, 5, 32767]));
        assert!(!v.insert(5));
        assert!(v.insert(32768));
        assert_eq!(v.width(), 4);
        assert!(v.insert(i64::from(i32::MIN)));
        assert_eq!(v.width(), 4);
        assert!(v.insert(i64::MIN) && v.insert(i64::MAX));
        assert_eq!(v.width(), 8);
        let want = vec![i64::MIN, i64::from(i32::MIN), -32768, -3, 5, 32767, 32768, i64::MAX];
        assert_eq!(v.to_vec(), want);
        assert_eq!(v.heap_bytes(), 1 + 1 + 8 * want.len());
        for &x in &want {
            assert!(v.contains(x));
        }
        assert!(!v.contains(4) && !v.contains(i64::MAX - 1));
        // Removing the wide members keeps the width (as Redis does) but equality looks at members only.
        assert!(v.remove(i64::MIN) && v.remove(i64::MAX) && v.remove(32768) && v.remove(i64::from(i32::MIN)));
        assert!(!v.remove(i64::MAX));
        assert_eq!(v.width(), 8);
        assert_eq!(v, IntSet::from_sorted(&[-32768, -3, 5, 32767]));
        assert_eq!(IntSet::from_sorted(&[-32768, -3, 5, 32767]).width(), 2);
        for x in [-32768, -3, 5, 32767] {
            assert!(v.remove(x));
        }
        assert!(v.is_empty());
        assert_eq!(v.heap_bytes(), 0);
    }

    #[test]
    fn intset_matches_a_sorted_model() {
        let mut model = std::collections::BTreeSet::new();
        let mut v = IntSet::default();
        let pick = |r: u32| -> i64 {
            match r % 4 {
                0 => fastrand::i64(-40..40),
                1 => fastrand::i64(-70_000..70_000),
                2 => fastrand::i64(-5_000_000_000..5_000_000_000),
                _ => fastrand::i64(..),
            }
        };
        for step in 0..4000u32 {
            let x = if step % 3 == 0 && !model.is_empty() {
                v.get(fastrand::usize(..v.len()))
            } else {
                pick(fastrand::u32(..))
            };
            if fastrand::bool() {
                assert_eq!(v.insert(x), model.insert(x));
            } else {
                assert_eq!(v.remove(x), model.remove(&x));
            }
            assert_eq!(v.len(), model.len());
        }
        assert_eq!(v.to_vec(), model.iter().copied().collect::<Vec<_>>());
    }
}
