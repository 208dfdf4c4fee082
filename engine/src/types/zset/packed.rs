//! The small form of a sorted set ([`PackedEntries`], the role of Redis's listpack): entries sorted by
//! (score, member) in one exactly sized buffer.
//!
//! Each entry is one header byte, the member bytes and the score:
//!
//! | header bits | meaning |
//! |---|---|
//! | 0..5 (`len`) | member length; 31 = the length follows as a LEB128 varint |
//! | 5..8 (`kind`) | score form: 0 = integer (zigzag varint), 1..=4 = decimal `m / 10^kind` (zigzag varint `m`), 5 = raw f64 (8 bytes little-endian) |
//!
//! Scores are what a listpack's text form gives back, so small integers and short decimals take one or two
//! bytes: a three-member zset of short members fits the 15 bytes a [`SmallBuf`] keeps inline. A score is
//! encoded in a short form only when decoding that form gives back the same bits, so every score
//! round-trips exactly.

use super::compare;
use crate::types::small::put_varint;
use crate::types::small::SmallBuf;
use std::cmp::Ordering;
use std::ops::Range;

/// A listpack holds scores as text, where `-0` is written `0`.
pub(super) fn listpack_score(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

const LEN_BITS: u8 = 0x1f;
/// Header length value meaning "the length follows as a varint".
const LEN_ESCAPE: usize = 31;
const KIND_INT: u8 = 0;
/// Decimal kinds 1..=4: the score is `m / 10^kind`.
const KIND_DECIMAL_MAX: u8 = 4;
const KIND_RAW: u8 = 5;
const POW10: [f64; 5] = [1.0, 10.0, 100.0, 1000.0, 10000.0];
/// Integers of at most this magnitude are exact in an f64.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

fn put_uvarint(out: &mut Vec<u8>, v: u64) {
    put_varint(out, v as usize);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads a varint at `pos`; returns it and the position after it.
fn read_uvarint(buf: &[u8], mut pos: usize) -> (u64, usize) {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let b = buf[pos];
        pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return (v, pos);
        }
        shift += 7;
    }
}

/// The shortest form of `score`: its kind and, for the integer and decimal kinds, the integer to store.
fn score_form(score: f64) -> (u8, i64) {
    if score.abs() < EXACT_INT {
        if score.fract() == 0.0 {
            return (KIND_INT, score as i64);
        }
        for kind in 1..=KIND_DECIMAL_MAX {
            let m = (score * POW10[usize::from(kind)]).round();
            if m.abs() < EXACT_INT && (m / POW10[usize::from(kind)]).to_bits() == score.to_bits() {
                return (kind, m as i64);
            }
        }
    }
    (KIND_RAW, 0)
}

/// Appends one entry.
fn put_entry(out: &mut Vec<u8>, member: &[u8], score: f64) {
    let score = listpack_score(score);
    let (kind, m) = score_form(score);
    let len = member.len().min(LEN_ESCAPE) as u8;
    out.push(len | (kind << 5));
    if member.len() >= LEN_ESCAPE {
        put_varint(out, member.len());
    }
    out.extend_from_slice(member);
    if kind == KIND_RAW {
        out.extend_from_slice(&score.to_le_bytes());
    } else {
        put_uvarint(out, zigzag(m));
    }
}

fn encode_entry(member: &[u8], score: f64) -> Vec<u8> {
    let mut out = Vec::with_capacity(member.len() + 11);
    put_entry(&mut out, member, score);
    out
}

/// Reads the entry at `pos`: member, score, and the position after it.
pub(super) fn read_entry(buf: &[u8], pos: usize) -> (&[u8], f64, usize) {
    let header = buf[pos];
    let (kind, mut len, mut at) = (header >> 5, usize::from(header & LEN_BITS), pos + 1);
    if len == LEN_ESCAPE {
        let (n, next) = read_uvarint(buf, at);
        (len, at) = (n as usize, next);
    }
    let member = &buf[at..at + len];
    at += len;
    if kind == KIND_RAW {
        let score = f64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
        return (member, score, at + 8);
    }
    let (v, end) = read_uvarint(buf, at);
    let m = unzigzag(v) as f64;
    let score = if kind == KIND_INT { m } else { m / POW10[usize::from(kind)] };
    (member, score, end)
}

/// Entries sorted by (score, member) in one [`SmallBuf`] (see the module docs): inline up to 15 bytes, else
/// one exactly sized allocation. Lookups are linear and every change rewrites the buffer, which is cheap at
/// listpack sizes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PackedEntries(SmallBuf);

/// Walks a [`PackedEntries`] from a byte position: each item is an entry and the byte range it occupies.
struct Spans<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Spans<'a> {
    type Item = (&'a [u8], f64, Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let (m, s, end) = read_entry(self.buf, start);
        self.pos = end;
        Some((m, s, start..end))
    }
}

impl PackedEntries {
    fn spans(&self) -> Spans<'_> {
        Spans { buf: &self.0, pos: 0 }
    }

    /// The encoded bytes (for walks that start at a byte offset).
    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn find(&self, member: &[u8]) -> Option<(usize, f64, Range<usize>)> {
        self.spans().enumerate().find(|(_, (m, _, _))| *m == member).map(|(i, (_, s, r))| (i, s, r))
    }

    /// Byte offset of the entry of rank `rank` (the end of the buffer when there is none).
    pub(super) fn offset_of(&self, rank: usize) -> usize {
        self.spans().nth(rank).map_or(self.0.len(), |(_, _, r)| r.start)
    }

    /// Entries in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        self.spans().map(|(m, s, _)| (m, s))
    }

    /// Number of entries (a walk: the buffer has no header).
    pub fn len(&self) -> usize {
        self.spans().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Heap bytes of the buffer (0 while it is inline).
    pub fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|(_, s, _)| s)
    }

    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        self.find(member).map(|(i, _, _)| i)
    }

    /// Inserts a member known to be absent at its place in the order.
    fn insert_new(&mut self, member: &[u8], score: f64) {
        let score = listpack_score(score);
        let at = self
            .spans()
            .find(|(m, s, _)| compare(*s, m, score, member) != Ordering::Less)
            .map_or(self.0.len(), |(_, _, r)| r.start);
        self.0 = self.0.spliced(at..at, &encode_entry(member, score));
    }

    /// Adds `member` or moves it to `score`; returns the previous score (unchanged when equal).
    pub(super) fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        match self.find(member) {
            Some((_, old, r)) => {
                if old != score {
                    self.0 = self.0.spliced(r, &[]);
                    self.insert_new(member, score);
                }
                Some(old)
            }
            None => {
                self.insert_new(member, score);
                None
            }
        }
    }

    pub(super) fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (_, score, r) = self.find(member)?;
        self.0 = self.0.spliced(r, &[]);
        Some(score)
    }

    pub(super) fn lower_bound(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        self.iter().take_while(|(m, s)| before(*s, m)).count()
    }

    pub(super) fn pop(&mut self, max: bool) -> Option<(Box<[u8]>, f64)> {
        let (m, s, r) = if max { self.spans().last()? } else { self.spans().next()? };
        let out = (Box::from(m), s);
        self.0 = self.0.spliced(r, &[]);
        Some(out)
    }

    /// Removes ranks `start..end` (both within the set).
    pub(super) fn remove_range(&mut self, start: usize, end: usize) {
        let (a, b) = (self.offset_of(start), self.offset_of(end));
        self.0 = self.0.spliced(a..b, &[]);
    }
}

impl<'a> IntoIterator for &'a PackedEntries {
    type Item = (&'a [u8], f64);
    type IntoIter = Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl<M: AsRef<[u8]>> FromIterator<(M, f64)> for PackedEntries {
    /// Packs entries given in (score, member) order with distinct members.
    fn from_iter<I: IntoIterator<Item = (M, f64)>>(iter: I) -> Self {
        PackedEntries(SmallBuf::build(|out| {
            for (m, s) in iter {
                put_entry(out, m.as_ref(), s);
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(score: f64) -> f64 {
        let p: PackedEntries = [(&b"m"[..], score)].into_iter().collect();
        let got: Vec<_> = p.iter().collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, b"m");
        got[0].1
    }

    #[test]
    fn every_score_round_trips_exactly() {
        let fixed = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            2.5,
            0.1,
            -0.3,
            1.0001,
            2.71,
            123456.789,
            1e15,
            -1e15,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            1e300,
            -1e-300,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.30000000000000004,
            4503599627370495.5,
        ];
        let mut rng = fastrand::Rng::with_seed(11);
        let random = (0..20_000).map(|i| match i % 4 {
            0 => f64::from_bits(rng.u64(..)),
            1 => rng.i64(-1_000_000..1_000_000) as f64 / 100.0,
            2 => rng.f64() * 1e6 - 5e5,
            _ => rng.i64(..) as f64,
        });
        for s in fixed.into_iter().chain(random).filter(|s| !s.is_nan()) {
            assert_eq!(round_trip(s).to_bits(), listpack_score(s).to_bits(), "{s:e}");
        }
    }

    #[test]
    fn short_scores_and_members_take_few_bytes() {
        let p: PackedEntries = [(&b"m123456"[..], 1.0), (b"x", 2.5), (b"y", 3.0)].into_iter().collect();
        assert_eq!((p.bytes().len(), p.heap_bytes()), (15, 0));
        assert_eq!(p.iter().collect::<Vec<_>>(), [(&b"m123456"[..], 1.0), (b"x", 2.5), (b"y", 3.0)]);
        let one = |m: &[u8], s: f64| [(m, s)].into_iter().collect::<PackedEntries>().bytes().len();
        assert_eq!(one(b"a", -1.0), 3);
        assert_eq!(one(b"a", 0.25), 3);
        assert_eq!(one(b"a", 1.5e300), 10);
        let long = vec![b'x'; 200];
        assert_eq!(one(&long, 7.0), 1 + 2 + 200 + 1);
        let p: PackedEntries = [(&long[..30], 1.0), (&long[..31], 2.0), (&long[..], 3.0)].into_iter().collect();
        let lens: Vec<_> = p.iter().map(|(m, s)| (m.len(), s)).collect();
        assert_eq!(lens, [(30, 1.0), (31, 2.0), (200, 3.0)]);
    }
}
