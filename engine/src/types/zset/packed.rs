//! The small form of a sorted set ([`PackedEntries`]): a Redis listpack ([`crate::types::listpack`]) of
//! member, score, member, score ... sorted by (score, member), the form Redis 7 keeps.
//!
//! Members are string entries. A score is stored as Redis's `zzlInsertAt` stores it: an integer entry when
//! `double2ll` accepts it (integral and within ±2^62), else its `%.17g` text; reading a text score parses it,
//! as Redis does. So a Redis listpack whose members are all strings loads as it is (a copy after the
//! checks), the RDB writer saves the buffer as it is, and a negative zero is stored as the integer 0 and
//! reads back as `0`.

use super::compare;
use crate::resp::format_double_g17;
use crate::types::listpack::{self, Entry};
use crate::types::small::SmallBuf;
use crate::util::parse_double_text;
use std::cmp::Ordering;
use std::ops::Range;

/// Redis's `double2ll`: `d` as an i64 when it is integral and within ±(i64::MAX / 2).
pub(crate) fn score_int(d: f64) -> Option<i64> {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if !(-LIMIT..=LIMIT).contains(&d) {
        return None;
    }
    let v = d as i64;
    (v as f64 == d).then_some(v)
}

/// Appends `score` as a listpack entry, as Redis stores a zset score.
pub(crate) fn put_score(out: &mut Vec<u8>, score: f64) {
    match score_int(score) {
        Some(v) => listpack::put_int(out, v),
        None => listpack::put_str(out, format_double_g17(score).as_bytes()),
    }
}

/// Reads the pair at `pos`: member, score, and the position after it.
pub(super) fn read_entry(lp: &[u8], pos: usize) -> (&[u8], f64, usize) {
    let (member, at) = listpack::read_str(lp, pos);
    let (score, next) = listpack::entry_at(lp, at);
    (member, self::score(score), next)
}

/// Reads the pair that ends at `end`: member, score, and where the pair starts.
pub(super) fn read_entry_before(lp: &[u8], end: usize) -> (&[u8], f64, usize) {
    let score_at = listpack::start_before(lp, end);
    let (start, data, n) = listpack::str_before(lp, score_at);
    let (score, _) = listpack::entry_at(lp, score_at);
    (&lp[data..data + n], self::score(score), start)
}

/// Most bytes a pair with a member of `n` bytes takes (a `%.17g` score is at most 24 characters).
pub(super) fn pair_bytes(n: usize) -> usize {
    listpack::str_entry_len(n) + listpack::str_entry_len(24)
}

/// Bytes of one pair's entries.
fn encode_entry(member: &[u8], score: f64) -> Vec<u8> {
    let mut out = Vec::with_capacity(pair_bytes(member.len()));
    listpack::put_str(&mut out, member);
    put_score(&mut out, score);
    out
}

/// Entries sorted by (score, member) in one listpack (see the module docs), in one exactly sized allocation
/// (no buffer at all when empty). Lookups are linear and every change rewrites the buffer, which is cheap at
/// listpack sizes.
#[derive(Clone, Default)]
pub struct PackedEntries(SmallBuf);

/// Walks a [`PackedEntries`] from a byte position: each item is a member, its score's entry (parsed only by
/// the walks that need scores: a text score costs a parse, as in Redis) and the byte range of the pair.
struct Spans<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Iterator for Spans<'a> {
    type Item = (&'a [u8], Entry<'a>, Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let start = self.pos;
        let (member, at) = listpack::read_str(self.buf, start);
        let (score, end) = listpack::entry_at(self.buf, at);
        self.pos = end;
        Some((member, score, start..end))
    }
}

/// A score entry's value: an integer, or text as Redis reads it. Scores were checked when the buffer was
/// made (see [`PackedEntries::from_listpack`]), so text always parses.
fn score(e: Entry<'_>) -> f64 {
    match e {
        Entry::Int(v) => v as f64,
        Entry::Str(s) => parse_double_text(s).unwrap_or_default(),
    }
}

impl PackedEntries {
    /// A zset holding the pairs of `lp`, a listpack the RDB reader checked entry by entry and found to hold
    /// string members, distinct, with scores that parse and are not NaN, in ascending order. Kept as it is.
    pub(crate) fn from_listpack(lp: &[u8]) -> PackedEntries {
        debug_assert!(lp.len() > listpack::HEADER && lp[lp.len() - 1] == 0xff);
        PackedEntries(SmallBuf::new(lp))
    }

    /// The listpack (a valid Redis zset listpack), or None for the empty set.
    pub fn as_listpack(&self) -> Option<&[u8]> {
        (!self.0.is_empty()).then_some(&self.0[..])
    }

    fn spans(&self) -> Spans<'_> {
        match self.0.len() {
            0 => Spans { buf: &[], pos: 0, end: 0 },
            _ => Spans { buf: &self.0, pos: listpack::HEADER, end: listpack::end(&self.0) },
        }
    }

    /// The listpack's bytes (for walks that start at a byte offset; empty when the set is).
    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn find(&self, member: &[u8]) -> Option<(usize, f64, Range<usize>)> {
        self.spans().enumerate().find(|(_, (m, _, _))| *m == member).map(|(i, (_, s, r))| (i, score(s), r))
    }

    /// Byte offset of the pair of rank `rank` (the end of the entries when there is none).
    pub(super) fn offset_of(&self, rank: usize) -> usize {
        let mut spans = self.spans();
        spans.nth(rank).map_or(spans.end, |(_, _, r)| r.start)
    }

    /// Entries in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        self.spans().map(|(m, s, _)| (m, score(s)))
    }

    /// Number of entries (the header's count; a walk past 32767 pairs).
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
    pub fn byte_len(&self) -> usize {
        self.0.len()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|(_, s, _)| s)
    }

    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        self.find(member).map(|(i, _, _)| i)
    }

    /// The buffer with the pairs at `range` replaced by `with`, `pairs` pairs in all.
    fn replace(&mut self, range: Range<usize>, with: &[u8], pairs: usize) {
        self.0 = listpack::replaced(&self.0, range, with, 2 * pairs);
    }

    /// Inserts a member known to be absent at its place in the order; `len` is the count before.
    fn insert_new(&mut self, member: &[u8], score: f64, len: usize) {
        let mut spans = self.spans();
        let at = spans
            .find(|(m, s, _)| compare(self::score(*s), m, score, member) != Ordering::Less)
            .map_or(spans.end, |(_, _, r)| r.start);
        self.replace(at..at, &encode_entry(member, score), len + 1);
    }

    /// Adds `member` or moves it to `score`; returns the previous score (unchanged when equal).
    pub(super) fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let len = self.len();
        match self.find(member) {
            Some((_, old, r)) => {
                if old != score {
                    self.replace(r, &[], len - 1);
                    self.insert_new(member, score, len - 1);
                }
                Some(old)
            }
            None => {
                self.insert_new(member, score, len);
                None
            }
        }
    }

    pub(super) fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (_, score, r) = self.find(member)?;
        let len = self.len();
        self.replace(r, &[], len - 1);
        Some(score)
    }

    pub(super) fn lower_bound(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        self.iter().take_while(|(m, s)| before(*s, m)).count()
    }

    pub(super) fn pop(&mut self, max: bool) -> Option<(Box<[u8]>, f64)> {
        if self.is_empty() {
            return None;
        }
        let (m, s, r) = if max {
            let end = listpack::end(&self.0);
            let (m, s, start) = read_entry_before(&self.0, end);
            (m, s, start..end)
        } else {
            let (m, s, r) = self.spans().next()?;
            (m, score(s), r)
        };
        let out = (Box::from(m), s);
        let len = self.len();
        self.replace(r, &[], len - 1);
        Some(out)
    }

    /// Removes ranks `start..end` (both within the set).
    pub(super) fn remove_range(&mut self, start: usize, end: usize) {
        let (a, b) = (self.offset_of(start), self.offset_of(end));
        let len = self.len();
        self.replace(a..b, &[], len - (end - start));
    }
}

/// Equal when they hold the same entries.
impl PartialEq for PackedEntries {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for PackedEntries {}

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
        let mut pairs = 0;
        let packed = SmallBuf::build(|out| {
            let start = listpack::begin(out);
            for (m, s) in iter {
                listpack::put_str(out, m.as_ref());
                put_score(out, s);
                pairs += 1;
            }
            listpack::finish(out, start, 2 * pairs);
        });
        PackedEntries(if pairs == 0 { SmallBuf::default() } else { packed })
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
            4_611_686_018_427_387_904.0,
            4_611_686_018_427_388_928.0,
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
            assert_eq!(round_trip(s).to_bits(), s.to_bits(), "{s:e}");
        }
        // A listpack has no negative zero: Redis stores it as the integer 0.
        assert_eq!(round_trip(-0.0).to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn scores_as_redis_stores_them() {
        assert_eq!(score_int(-0.0), Some(0));
        assert_eq!(score_int(1e17), Some(100_000_000_000_000_000));
        assert_eq!(score_int(4_611_686_018_427_387_904.0), Some(1 << 62));
        assert_eq!(score_int(4_611_686_018_427_388_928.0), None);
        assert_eq!(score_int(1.5), None);
        assert_eq!(score_int(f64::INFINITY), None);
        assert_eq!(score_int(f64::NAN), None);
        // FORMATS.md §4.7: "a" 1.5, "b" 2 is the text "1.5" and the 7-bit integer 2.
        let p: PackedEntries = [(&b"a"[..], 1.5), (b"b", 2.0)].into_iter().collect();
        assert_eq!(
            p.as_listpack().unwrap(),
            [0x14, 0, 0, 0, 4, 0, 0x81, b'a', 2, 0x83, b'1', b'.', b'5', 4, 0x81, b'b', 2, 2, 1, 0xff]
        );
        assert_eq!(PackedEntries::default().as_listpack(), None);
    }

    /// Integer scores of every width Redis writes read back, forwards and backwards.
    #[test]
    fn integer_scores_of_every_width_read_both_ways() {
        let scores = [-(1i64 << 62), -(1 << 40), -(1 << 31), -(1 << 23), -70_000, -32_768, -4096, -1, 0, 5, 127, 128]
            .into_iter()
            .chain([4095, 4096, 32_767, 40_000, (1 << 23) - 1, 1 << 23, i64::from(i32::MAX), 1 << 40, 1 << 62]);
        let items: Vec<(Vec<u8>, f64)> =
            scores.enumerate().map(|(i, s)| (format!("m{i}").into_bytes(), s as f64)).collect();
        let p: PackedEntries = items.iter().map(|(m, s)| (m, *s)).collect();
        let fwd: Vec<(Vec<u8>, f64)> = p.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(fwd, items);
        let (lp, mut end, mut back) = (p.bytes(), listpack::end(p.bytes()), Vec::new());
        while end > listpack::HEADER {
            let (m, s, start) = read_entry_before(lp, end);
            back.push((m.to_vec(), s));
            end = start;
        }
        back.reverse();
        assert_eq!(back, items);
        assert_eq!(p.len(), items.len());
    }

    #[test]
    fn edits_keep_the_order_and_the_header() {
        let mut p = PackedEntries::default();
        let mut model: Vec<(Vec<u8>, f64)> = Vec::new();
        let mut rng = fastrand::Rng::with_seed(5);
        for step in 0..3000 {
            let m = format!("k{}", rng.u8(..40)).into_bytes();
            let s = [rng.i64(-300..300) as f64, rng.f64(), -0.0, 1e300][rng.usize(..4)];
            match rng.u8(..6) {
                0..=2 => {
                    let old = model.iter().position(|(x, _)| *x == m).map(|i| model.remove(i).1);
                    assert_eq!(p.insert(&m, s), old);
                    model.push((m, if s == 0.0 { 0.0 } else { s }));
                }
                3 => {
                    let old = model.iter().position(|(x, _)| *x == m).map(|i| model.remove(i).1);
                    assert_eq!(p.remove(&m), old);
                }
                4 => {
                    let max = rng.bool();
                    model.sort_by(|a, b| compare(a.1, &a.0, b.1, &b.0));
                    let want = if max {
                        model.pop()
                    } else if model.is_empty() {
                        None
                    } else {
                        Some(model.remove(0))
                    };
                    assert_eq!(p.pop(max).map(|(m, s)| (m.to_vec(), s)), want);
                }
                _ if !model.is_empty() => {
                    model.sort_by(|a, b| compare(a.1, &a.0, b.1, &b.0));
                    let a = rng.usize(..model.len());
                    let b = rng.usize(a..=model.len());
                    p.remove_range(a, b);
                    model.drain(a..b);
                }
                _ => {}
            }
            model.sort_by(|a, b| compare(a.1, &a.0, b.1, &b.0));
            let got: Vec<(Vec<u8>, f64)> = p.iter().map(|(m, s)| (m.to_vec(), s)).collect();
            assert_eq!(got, model, "step {step}");
            assert_eq!(p.len(), model.len());
            if let Some(lp) = p.as_listpack() {
                // What the RDB reader's full check says of it: valid, and the count in the header.
                let mut elems = Vec::new();
                crate::rdb::blobs::listpack(lp, &mut elems).unwrap();
                assert_eq!(elems.len(), 2 * model.len());
                assert_eq!(listpack::header_count(lp), Some(2 * model.len()));
            }
        }
    }
}
