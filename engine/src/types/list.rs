//! List values: a deque of chunks, each a compact byte buffer of entries (a quicklist of listpacks, in spirit).
//! `OBJECT ENCODING` always says `quicklist`, as Redis 7.0 does for every list.
//!
//! Entry layout inside a chunk: a listpack's string entries ([`crate::types::listpack`]: encoding, bytes,
//! back-length), so an entry can be read from either end (pops at both ends, reverse iteration) with two
//! bytes of overhead for elements under 64 bytes, instead of a pointer plus an allocation per element; and a
//! node of a Redis list whose elements are all strings becomes a chunk by one copy of its entries.
//!
//! Invariants: no chunk is empty; `len` is the sum of the chunk counts; a chunk holds more than
//! [`CHUNK_BYTES`] only when it holds a single element (like Redis's plain nodes for big elements).
//! Index access walks chunk counts from the nearer end, then entries inside one chunk.

use crate::types::listpack;
use std::collections::VecDeque;
use std::fmt;

/// Target size of a chunk's buffer: Redis's default `list-max-listpack-size -2` (8 kB). Tests use a tiny
/// size so that every operation crosses chunk boundaries.
const CHUNK_BYTES: usize = if cfg!(test) { 40 } else { 8 * 1024 };

/// Encoded size of an entry holding `len` bytes.
fn entry_size(len: usize) -> usize {
    listpack::str_entry_len(len)
}

fn write_entry(out: &mut Vec<u8>, v: &[u8]) {
    listpack::put_str(out, v);
}

fn encode_entry(v: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(entry_size(v.len()));
    write_entry(&mut e, v);
    e
}

/// Reads the entry starting at `pos`: (data start, data length, end of the entry).
fn read_fwd(buf: &[u8], pos: usize) -> (usize, usize, usize) {
    listpack::str_at(buf, pos)
}

/// Reads the entry ending at `end` (exclusive): (start of the entry, data start, data length).
fn read_back(buf: &[u8], end: usize) -> (usize, usize, usize) {
    listpack::str_before(buf, end)
}

/// A run of consecutive elements in one buffer.
#[derive(Clone, Default)]
struct Chunk {
    buf: Vec<u8>,
    count: usize,
}

impl Chunk {
    fn with_entry(v: &[u8]) -> Chunk {
        Chunk { buf: encode_entry(v), count: 1 }
    }

    /// Byte offset of entry `i` (`i == count` gives the end), scanning from the nearer end.
    fn offset(&self, i: usize) -> usize {
        if i <= self.count / 2 {
            (0..i).fold(0, |p, _| read_fwd(&self.buf, p).2)
        } else {
            (i..self.count).fold(self.buf.len(), |p, _| read_back(&self.buf, p).0)
        }
    }

    /// Byte offset `n` entries after offset `pos`.
    fn skip(&self, pos: usize, n: usize) -> usize {
        (0..n).fold(pos, |p, _| read_fwd(&self.buf, p).2)
    }

    fn get(&self, i: usize) -> &[u8] {
        let (s, l, _) = read_fwd(&self.buf, self.offset(i));
        &self.buf[s..s + l]
    }

    fn insert(&mut self, i: usize, v: &[u8]) {
        let off = self.offset(i);
        self.buf.splice(off..off, encode_entry(v));
        self.count += 1;
    }

    fn replace(&mut self, i: usize, v: &[u8]) {
        let off = self.offset(i);
        let end = read_fwd(&self.buf, off).2;
        self.buf.splice(off..end, encode_entry(v));
    }

    /// Removes `n` entries starting at entry `i`.
    fn remove(&mut self, i: usize, n: usize) {
        let a = self.offset(i);
        let b = self.skip(a, n);
        self.buf.drain(a..b);
        self.count -= n;
    }

    /// Moves entries `i..` into a new chunk.
    fn split_off(&mut self, i: usize) -> Chunk {
        let off = self.offset(i);
        let tail = self.buf.split_off(off);
        let c = Chunk { buf: tail, count: self.count - i };
        self.count = i;
        self.buf.shrink_to_fit();
        c
    }

    fn pop_front(&mut self) -> Vec<u8> {
        let (s, l, e) = read_fwd(&self.buf, 0);
        let v = self.buf[s..s + l].to_vec();
        self.buf.drain(..e);
        self.count -= 1;
        v
    }

    fn pop_back(&mut self) -> Vec<u8> {
        let (start, s, l) = read_back(&self.buf, self.buf.len());
        let v = self.buf[s..s + l].to_vec();
        self.buf.truncate(start);
        self.count -= 1;
        v
    }

    /// Removes the entries equal to `v`, at most `limit`, scanning from the tail when `from_tail`.
    /// Returns how many were removed.
    fn remove_matching(&mut self, v: &[u8], limit: usize, from_tail: bool) -> usize {
        let mut spans = Vec::with_capacity(self.count);
        let mut p = 0;
        while p < self.buf.len() {
            let (s, l, e) = read_fwd(&self.buf, p);
            spans.push((p, e, &self.buf[s..s + l] == v));
            p = e;
        }
        let mut drop = vec![false; spans.len()];
        let mut removed = 0;
        let order: Box<dyn Iterator<Item = usize>> =
            if from_tail { Box::new((0..spans.len()).rev()) } else { Box::new(0..spans.len()) };
        for i in order {
            if removed == limit {
                break;
            }
            if spans[i].2 {
                drop[i] = true;
                removed += 1;
            }
        }
        if removed > 0 {
            let mut out = Vec::with_capacity(self.buf.len());
            for (i, &(a, b, _)) in spans.iter().enumerate() {
                if !drop[i] {
                    out.extend_from_slice(&self.buf[a..b]);
                }
            }
            self.buf = out;
            self.count -= removed;
        }
        removed
    }

    fn contains(&self, v: &[u8]) -> bool {
        let mut p = 0;
        while p < self.buf.len() {
            let (s, l, e) = read_fwd(&self.buf, p);
            if &self.buf[s..s + l] == v {
                return true;
            }
            p = e;
        }
        false
    }
}

/// A list of byte strings with O(1) pushes and pops at both ends.
#[derive(Clone, Default)]
pub struct ListValue {
    chunks: VecDeque<Chunk>,
    len: usize,
}

impl ListValue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn encoding_name(&self) -> &'static str {
        "quicklist"
    }

    /// Elements from head to tail (double-ended, exact size).
    pub fn iter(&self) -> Iter<'_> {
        let bend = self.chunks.back().map_or(0, |c| c.buf.len());
        Iter {
            chunks: &self.chunks,
            fc: 0,
            fpos: 0,
            bc: self.chunks.len().saturating_sub(1),
            bend,
            remaining: self.len,
        }
    }

    /// Elements `start..=end` (both must be valid indexes, `start <= end`), found by walking chunk counts.
    pub fn range(&self, start: usize, end: usize) -> Iter<'_> {
        assert!(start <= end && end < self.len, "list range out of bounds");
        let (fc, fi) = self.locate(start);
        let fpos = self.chunks[fc].offset(fi);
        let (bc, bi) = self.locate(end);
        let bend = read_fwd(&self.chunks[bc].buf, self.chunks[bc].offset(bi)).2;
        Iter { chunks: &self.chunks, fc, fpos, bc, bend, remaining: end - start + 1 }
    }

    pub fn push_back(&mut self, v: &[u8]) {
        let need = entry_size(v.len());
        match self.chunks.back_mut() {
            Some(c) if c.buf.len() + need <= CHUNK_BYTES => {
                write_entry(&mut c.buf, v);
                c.count += 1;
            }
            last => {
                // The old tail is full: give back its growth slack once.
                if let Some(c) = last {
                    c.buf.shrink_to_fit();
                }
                self.new_chunk_room();
                self.chunks.push_back(Chunk::with_entry(v));
            }
        }
        self.len += 1;
    }

    /// Bytes an element of `len` bytes takes in a chunk (for [`ListValue::push_back_sized`]).
    pub fn entry_bytes(len: usize) -> usize {
        entry_size(len)
    }

    /// [`ListValue::push_back`] when `rest` bytes of entries ([`ListValue::entry_bytes`] each, this one
    /// included) are about to be pushed, as when a list is loaded: a chunk is allocated once at its final
    /// size instead of doubling (and keeping the slack of its last doubling).
    pub fn push_back_sized(&mut self, v: &[u8], rest: usize) {
        let need = entry_size(v.len());
        match self.chunks.back_mut() {
            Some(c) if c.buf.len() + need <= CHUNK_BYTES => {
                if c.buf.capacity() - c.buf.len() < need {
                    c.buf.reserve_exact(rest.max(need).min(CHUNK_BYTES - c.buf.len()));
                }
                write_entry(&mut c.buf, v);
                c.count += 1;
            }
            last => {
                if let Some(c) = last {
                    c.buf.shrink_to_fit();
                }
                self.new_chunk_room();
                let mut buf = Vec::with_capacity(rest.min(CHUNK_BYTES).max(need));
                write_entry(&mut buf, v);
                self.chunks.push_back(Chunk { buf, count: 1 });
            }
        }
        self.len += 1;
    }

    /// Appends `count` elements given as chunk entries (the entries of a listpack whose entries are all
    /// strings, which the caller guarantees): one copy, into the last chunk when they fit, else as a chunk of
    /// their own. False, and nothing appended, when they would make a chunk of several elements over
    /// [`CHUNK_BYTES`].
    pub(crate) fn push_back_entries(&mut self, entries: &[u8], count: usize) -> bool {
        if count == 0 || (count > 1 && entries.len() > CHUNK_BYTES) {
            return count == 0;
        }
        match self.chunks.back_mut() {
            Some(c) if c.buf.len() + entries.len() <= CHUNK_BYTES => {
                c.buf.reserve_exact(entries.len());
                c.buf.extend_from_slice(entries);
                c.count += count;
            }
            last => {
                if let Some(c) = last {
                    c.buf.shrink_to_fit();
                }
                self.new_chunk_room();
                self.chunks.push_back(Chunk { buf: entries.to_vec(), count });
            }
        }
        self.len += count;
        true
    }

    pub fn push_front(&mut self, v: &[u8]) {
        let need = entry_size(v.len());
        match self.chunks.front_mut() {
            Some(c) if c.buf.len() + need <= CHUNK_BYTES => c.insert(0, v),
            first => {
                if let Some(c) = first {
                    c.buf.shrink_to_fit();
                }
                self.new_chunk_room();
                self.chunks.push_front(Chunk::with_entry(v));
            }
        }
        self.len += 1;
    }

    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let c = self.chunks.front_mut()?;
        let v = c.pop_front();
        if c.count == 0 {
            self.chunks.pop_front();
        }
        self.len -= 1;
        Some(v)
    }

    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let c = self.chunks.back_mut()?;
        let v = c.pop_back();
        if c.count == 0 {
            self.chunks.pop_back();
        }
        self.len -= 1;
        Some(v)
    }

    /// The element at `index` (0 = head).
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        if index >= self.len {
            return None;
        }
        let (ci, i) = self.locate(index);
        Some(self.chunks[ci].get(i))
    }

    /// Replaces the element at `index`; false when out of range.
    pub fn set(&mut self, index: usize, v: &[u8]) -> bool {
        if index >= self.len {
            return false;
        }
        let (ci, i) = self.locate(index);
        self.chunks[ci].replace(i, v);
        self.split_if_big(ci);
        true
    }

    /// Inserts `v` so that it becomes the element at `index` (`index == len` appends).
    pub fn insert(&mut self, index: usize, v: &[u8]) {
        assert!(index <= self.len, "list insert out of bounds");
        if index == 0 {
            return self.push_front(v);
        }
        if index == self.len {
            return self.push_back(v);
        }
        let (ci, i) = self.locate(index);
        self.chunks[ci].insert(i, v);
        self.len += 1;
        self.split_if_big(ci);
    }

    /// Index of the first element equal to `v`.
    pub fn position(&self, v: &[u8]) -> Option<usize> {
        self.iter().position(|e| e == v)
    }

    /// Removes `n` elements starting at `start` (clamped to the list).
    pub fn remove_range(&mut self, start: usize, n: usize) {
        let n = n.min(self.len.saturating_sub(start));
        if n == 0 {
            return;
        }
        let (mut ci, mut i) = self.locate(start);
        let mut left = n;
        while left > 0 {
            let c = &mut self.chunks[ci];
            let take = left.min(c.count - i);
            if i == 0 && take == c.count {
                self.chunks.remove(ci);
            } else {
                c.remove(i, take);
                ci += 1;
            }
            left -= take;
            i = 0;
        }
        self.len -= n;
        // `ci` is the first chunk after the removed run; its predecessor may now be small.
        if ci > 0 {
            self.merge_near(ci - 1);
        }
    }

    /// Keeps only elements `start..=end` (LTRIM semantics after clamping); `None` empties the list.
    /// Returns how many elements were removed.
    pub fn retain_range(&mut self, keep: Option<(usize, usize)>) -> usize {
        let before = self.len;
        match keep {
            None => self.clear(),
            Some((start, end)) => {
                self.remove_range(end + 1, self.len);
                self.remove_range(0, start);
            }
        }
        before - self.len
    }

    /// Removes elements equal to `v` (LREM semantics): `count > 0` the first `count` from the head,
    /// `count < 0` the last `|count|` from the tail, `0` all. Returns how many were removed.
    pub fn remove_matching(&mut self, v: &[u8], count: i64) -> usize {
        let limit = if count == 0 { usize::MAX } else { usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX) };
        let from_tail = count < 0;
        let mut removed = 0;
        let n = self.chunks.len();
        for k in 0..n {
            if removed == limit {
                break;
            }
            let ci = if from_tail { n - 1 - k } else { k };
            let c = &mut self.chunks[ci];
            if c.contains(v) {
                removed += c.remove_matching(v, limit - removed, from_tail);
            }
        }
        if removed > 0 {
            self.len -= removed;
            self.chunks.retain(|c| c.count > 0);
            let mut i = 0;
            while i + 1 < self.chunks.len() {
                if !self.try_merge(i) {
                    i += 1;
                }
            }
        }
        removed
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    /// Heap bytes owned by the list.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.chunks.iter().map(|c| c.buf.capacity()).sum::<usize>()
    }

    /// Most lists are small: the first chunk gets a deque of capacity 1 instead of std's minimum of 4.
    fn new_chunk_room(&mut self) {
        if self.chunks.capacity() == 0 {
            self.chunks.reserve_exact(1);
        }
    }

    /// (chunk index, index inside the chunk) of element `index < len`, walking from the nearer end.
    fn locate(&self, index: usize) -> (usize, usize) {
        debug_assert!(index < self.len);
        if index < self.len / 2 {
            let mut rem = index;
            for (ci, c) in self.chunks.iter().enumerate() {
                if rem < c.count {
                    return (ci, rem);
                }
                rem -= c.count;
            }
        } else {
            let mut rem = self.len - 1 - index;
            for (ci, c) in self.chunks.iter().enumerate().rev() {
                if rem < c.count {
                    return (ci, c.count - 1 - rem);
                }
                rem -= c.count;
            }
        }
        unreachable!("list length out of sync with its chunks")
    }

    /// Splits chunk `ci` in halves until every piece is within [`CHUNK_BYTES`] or holds one element.
    fn split_if_big(&mut self, ci: usize) {
        let c = &mut self.chunks[ci];
        if c.buf.len() <= CHUNK_BYTES || c.count < 2 {
            return;
        }
        let tail = c.split_off(c.count / 2);
        self.chunks.insert(ci + 1, tail);
        // The right half first: splitting the left one shifts it.
        self.split_if_big(ci + 1);
        self.split_if_big(ci);
    }

    /// Merges chunk `a` with chunk `a + 1` when both fit in one; returns whether it did.
    fn try_merge(&mut self, a: usize) -> bool {
        if a + 1 >= self.chunks.len() || self.chunks[a].buf.len() + self.chunks[a + 1].buf.len() > CHUNK_BYTES {
            return false;
        }
        let Some(b) = self.chunks.remove(a + 1) else {
            return false;
        };
        let c = &mut self.chunks[a];
        c.buf.extend_from_slice(&b.buf);
        c.count += b.count;
        true
    }

    /// Merges chunk `ci` with its neighbours where they fit.
    fn merge_near(&mut self, ci: usize) {
        self.try_merge(ci);
        if ci > 0 {
            self.try_merge(ci - 1);
        }
    }

    /// Checks the invariants (tests).
    #[cfg(test)]
    fn check(&self) {
        assert_eq!(self.len, self.chunks.iter().map(|c| c.count).sum::<usize>());
        for c in &self.chunks {
            assert!(c.count > 0, "empty chunk");
            assert!(c.buf.len() <= CHUNK_BYTES || c.count == 1, "oversized chunk");
            let mut p = 0;
            let mut n = 0;
            while p < c.buf.len() {
                p = read_fwd(&c.buf, p).2;
                n += 1;
            }
            assert_eq!(p, c.buf.len());
            assert_eq!(n, c.count);
        }
    }
}

impl PartialEq for ListValue {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for ListValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

impl<'a> FromIterator<&'a [u8]> for ListValue {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> Self {
        let mut l = ListValue::new();
        l.extend(iter);
        l
    }
}

impl<'a> Extend<&'a [u8]> for ListValue {
    fn extend<I: IntoIterator<Item = &'a [u8]>>(&mut self, iter: I) {
        for v in iter {
            self.push_back(v);
        }
    }
}

/// Iterator over a list's elements (or a range of them), from either end.
#[derive(Clone)]
pub struct Iter<'a> {
    chunks: &'a VecDeque<Chunk>,
    /// Front cursor: chunk and byte offset of the next element.
    fc: usize,
    fpos: usize,
    /// Back cursor: chunk and byte offset just past the next element from the back.
    bc: usize,
    bend: usize,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        let chunks: &'a VecDeque<Chunk> = self.chunks;
        while self.fpos >= chunks[self.fc].buf.len() {
            self.fc += 1;
            self.fpos = 0;
        }
        let buf = &chunks[self.fc].buf;
        let (s, l, e) = read_fwd(buf, self.fpos);
        self.fpos = e;
        self.remaining -= 1;
        Some(&buf[s..s + l])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<'a> DoubleEndedIterator for Iter<'a> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        let chunks: &'a VecDeque<Chunk> = self.chunks;
        while self.bend == 0 {
            self.bc -= 1;
            self.bend = chunks[self.bc].buf.len();
        }
        let buf = &chunks[self.bc].buf;
        let (start, s, l) = read_back(buf, self.bend);
        self.bend = start;
        self.remaining -= 1;
        Some(&buf[s..s + l])
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn elems(l: &ListValue) -> Vec<Vec<u8>> {
        l.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn entries_read_both_ways() {
        for len in [0usize, 1, 63, 64, 127, 128, 300, 4095, 4096, 16_383, 16_384, 70_000] {
            let v = vec![b'x'; len];
            let mut buf = b"prev".to_vec();
            write_entry(&mut buf, &v);
            assert_eq!(buf.len(), 4 + entry_size(len));
            let header = if len < 64 {
                1
            } else if len < 4096 {
                2
            } else {
                5
            };
            assert_eq!(read_fwd(&buf, 4), (4 + header, len, buf.len()));
            assert_eq!(read_back(&buf, buf.len()), (4, 4 + header, len));
        }
    }

    #[test]
    fn listpack_entries_append_as_chunks() {
        let lp = |items: &[&[u8]]| {
            let mut out = Vec::new();
            items.iter().for_each(|i| write_entry(&mut out, i));
            out
        };
        let mut l = ListValue::new();
        assert!(l.push_back_entries(&lp(&[b"a", b"bc"]), 2));
        assert!(l.push_back_entries(&lp(&[b"d"]), 1));
        assert!(l.push_back_entries(&[], 0));
        let big = vec![b'x'; CHUNK_BYTES];
        // Several elements over a chunk's size: refused, nothing changes; one alone is a chunk of its own.
        assert!(!l.push_back_entries(&lp(&[b"e", &big]), 2));
        assert!(l.push_back_entries(&lp(&[&big]), 1));
        l.push_back(b"f");
        l.check();
        assert_eq!(elems(&l), [&b"a"[..], b"bc", b"d", &big, b"f"]);
        assert_eq!(l.iter().next_back(), Some(&b"f"[..]));
        assert_eq!(l.pop_front().as_deref(), Some(&b"a"[..]));
    }

    /// Sized pushes build the same list as plain ones, with no spare capacity in any chunk.
    #[test]
    fn sized_pushes_allocate_exactly() {
        let items: Vec<Vec<u8>> = (0..40usize).map(|i| vec![b'a' + (i % 26) as u8; i % 7 + (i / 13) * 30]).collect();
        let (mut plain, mut sized) = (ListValue::new(), ListValue::new());
        let mut rest: usize = items.iter().map(|v| ListValue::entry_bytes(v.len())).sum();
        for v in &items {
            plain.push_back(v);
            sized.push_back_sized(v, rest);
            rest -= ListValue::entry_bytes(v.len());
        }
        assert_eq!(elems(&plain), elems(&sized));
        assert_eq!(plain, sized);
        assert!(sized.chunks.iter().all(|c| c.buf.capacity() == c.buf.len()), "slack in a sized chunk");
    }

    #[test]
    fn pushes_pops_and_big_elements() {
        let mut l = ListValue::new();
        let big = vec![b'b'; 500];
        for i in 0..50u8 {
            l.push_back(&[i]);
            l.push_front(&[100 + i]);
            if i % 10 == 0 {
                l.push_back(&big);
            }
            l.check();
        }
        assert_eq!(l.len(), 105);
        assert_eq!(l.get(0), Some(&[149u8][..]));
        assert_eq!(l.get(104), Some(&[49u8][..]));
        assert_eq!(l.iter().len(), 105);
        let fwd = elems(&l);
        let mut back: Vec<Vec<u8>> = l.iter().rev().map(<[u8]>::to_vec).collect();
        back.reverse();
        assert_eq!(fwd, back);
        for (i, e) in fwd.iter().enumerate() {
            assert_eq!(l.get(i), Some(&e[..]));
            assert_eq!(l.range(i, 104).next(), Some(&e[..]));
            assert_eq!(l.range(0, i).next_back(), Some(&e[..]));
        }
        while let Some(v) = l.pop_back() {
            assert_eq!(Some(v), fwd.get(l.len()).cloned());
            l.check();
        }
        assert!(l.is_empty() && l.pop_front().is_none());
    }

    #[derive(Debug, Clone)]
    enum Op {
        PushBack(Vec<u8>),
        PushFront(Vec<u8>),
        PopFront,
        PopBack,
        Set(usize, Vec<u8>),
        Insert(usize, Vec<u8>),
        RemoveRange(usize, usize),
        RemoveMatching(Vec<u8>, i64),
        Retain(usize, usize),
    }

    fn elem() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => prop::collection::vec(b'a'..b'd', 0..3),
            1 => prop::collection::vec(any::<u8>(), 0..200),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            elem().prop_map(Op::PushBack),
            elem().prop_map(Op::PushFront),
            Just(Op::PopFront),
            Just(Op::PopBack),
            (0..40usize, elem()).prop_map(|(i, v)| Op::Set(i, v)),
            (0..40usize, elem()).prop_map(|(i, v)| Op::Insert(i, v)),
            (0..40usize, 0..10usize).prop_map(|(i, n)| Op::RemoveRange(i, n)),
            (elem(), -3..3i64).prop_map(|(v, c)| Op::RemoveMatching(v, c)),
            (0..40usize, 0..40usize).prop_map(|(a, b)| Op::Retain(a, b)),
        ]
    }

    proptest! {
        #[test]
        fn agrees_with_a_deque(ops in prop::collection::vec(op(), 0..120)) {
            let mut l = ListValue::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for op in ops {
                match op {
                    Op::PushBack(v) => { l.push_back(&v); m.push_back(v); }
                    Op::PushFront(v) => { l.push_front(&v); m.push_front(v); }
                    Op::PopFront => prop_assert_eq!(l.pop_front(), m.pop_front()),
                    Op::PopBack => prop_assert_eq!(l.pop_back(), m.pop_back()),
                    Op::Set(i, v) => {
                        let ok = i < m.len();
                        prop_assert_eq!(l.set(i, &v), ok);
                        if ok { m[i] = v; }
                    }
                    Op::Insert(i, v) => {
                        let i = i.min(m.len());
                        l.insert(i, &v);
                        m.insert(i, v);
                    }
                    Op::RemoveRange(i, n) => {
                        l.remove_range(i, n);
                        let end = (i + n).min(m.len());
                        if i < end { m.drain(i..end); }
                    }
                    Op::RemoveMatching(v, c) => {
                        let mut left = if c == 0 { usize::MAX } else { c.unsigned_abs() as usize };
                        let mut idx: Vec<usize> = (0..m.len()).filter(|&i| m[i] == v).collect();
                        if c < 0 { idx.reverse(); }
                        idx.truncate(left.min(idx.len()));
                        left = idx.len();
                        idx.sort_unstable();
                        for &i in idx.iter().rev() { m.remove(i); }
                        prop_assert_eq!(l.remove_matching(&v, c), left);
                    }
                    Op::Retain(a, b) => {
                        let keep = (a <= b && a < m.len()).then(|| (a, b.min(m.len().saturating_sub(1))));
                        let before = m.len();
                        match keep {
                            None => m.clear(),
                            Some((a, b)) => { m.truncate(b + 1); m.drain(..a); }
                        }
                        prop_assert_eq!(l.retain_range(keep), before - m.len());
                    }
                }
                l.check();
                let want: Vec<Vec<u8>> = m.iter().cloned().collect();
                prop_assert_eq!(elems(&l), want.clone());
                let mut back: Vec<Vec<u8>> = l.iter().rev().map(<[u8]>::to_vec).collect();
                back.reverse();
                prop_assert_eq!(back, want);
                if !m.is_empty() {
                    let (a, b) = (m.len() / 3, m.len() - 1 - m.len() / 4);
                    let r: Vec<Vec<u8>> = l.range(a, b).map(<[u8]>::to_vec).collect();
                    prop_assert_eq!(r, m.range(a..=b).cloned().collect::<Vec<_>>());
                    let r: Vec<Vec<u8>> = l.range(a, b).rev().map(<[u8]>::to_vec).collect();
                    prop_assert_eq!(r, m.range(a..=b).rev().cloned().collect::<Vec<_>>());
                }
            }
        }
    }
}
