//! Redis's listpack format, for the small encodings that keep one (hashes, zsets): a 6-byte header (total bytes,
//! u32 little-endian; entry count, u16, 65535 when unknown), the entries, and a 0xFF terminator. Each entry
//! is its encoding and data followed by a back-length (the size of encoding plus data, readable from the
//! end), so a listpack is read in either direction.
//!
//! Moon writes elements as string entries (6-, 12- and 32-bit length encodings), never Redis's integer ones:
//! a reader then hands out every element as bytes borrowed from the buffer. Redis reads string entries
//! holding digits like any other, so these buffers go into RDB files as they are, and a Redis listpack
//! without integer elements loads as it is (a copy, no re-encoding). Zset scores are the exception: they are
//! numbers, stored as Redis stores them (an integer entry, or `%.17g` text), read by [`entry_at`].

use crate::types::small::SmallBuf;

/// Header bytes before the first entry.
pub const HEADER: usize = 6;
/// The count field's "unknown" value (a listpack of 65535 entries or more).
const UNKNOWN: usize = 65535;
/// Largest listpack kept: past it a value converts to its large form (Redis's `LISTPACK_MAX_SAFETY_SIZE`; the
/// header's total is a u32).
pub const MAX_SAFE: usize = 1 << 30;

/// Number of bytes of the back-length of an entry whose encoding+data take `len` bytes.
pub(crate) fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// Appends the back-length of an entry of `len` bytes (most significant 7-bit group first; every byte but
/// the first has its top bit set, so a reader going backwards knows where it ends).
pub(crate) fn push_backlen(out: &mut Vec<u8>, len: usize) {
    let n = backlen_size(len);
    for i in (0..n).rev() {
        let group = ((len >> (7 * i)) & 127) as u8;
        out.push(if i == n - 1 { group } else { group | 128 });
    }
}

/// The size of the encoding byte(s) of a string of `n` bytes.
fn str_header(n: usize) -> usize {
    match n {
        0..=63 => 1,
        64..=4095 => 2,
        _ => 5,
    }
}

/// Bytes a string entry of `n` bytes takes, back-length included.
pub fn str_entry_len(n: usize) -> usize {
    let len = str_header(n) + n;
    len + backlen_size(len)
}

/// Appends `s` as a string entry.
pub fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    out.reserve(str_entry_len(n));
    match str_header(n) {
        1 => out.push(0x80 | n as u8),
        2 => out.extend_from_slice(&[0xe0 | (n >> 8) as u8, n as u8]),
        _ => {
            out.push(0xf0);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
    }
    out.extend_from_slice(s);
    push_backlen(out, str_header(n) + n);
}

/// Starts a listpack at the end of `out` (its header, filled in by [`finish`]); returns where it starts.
pub fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    start
}

/// Ends the listpack begun at `start` with `count` entries: the terminator, then the header.
pub fn finish(out: &mut Vec<u8>, start: usize, count: usize) {
    out.push(0xff);
    let total = u32::try_from(out.len() - start).expect("listpacks stay under MAX_SAFE");
    out[start..start + 4].copy_from_slice(&total.to_le_bytes());
    out[start + 4..start + 6].copy_from_slice(&(count.min(UNKNOWN) as u16).to_le_bytes());
}

/// The entry count of listpack `lp` from its header; None when the header says "unknown".
pub fn header_count(lp: &[u8]) -> Option<usize> {
    let count = usize::from(u16::from_le_bytes([lp[4], lp[5]]));
    (count != UNKNOWN).then_some(count)
}

/// Appends `v` as an integer entry, in the smallest of Redis's encodings that holds it (7-bit unsigned,
/// 13-, 16-, 24-, 32- or 64-bit signed), as `lpAppendInteger` does.
pub fn put_int(out: &mut Vec<u8>, v: i64) {
    let start = out.len();
    if (0..=127).contains(&v) {
        out.push(v as u8);
    } else if (-4096..=4095).contains(&v) {
        let u = (v as u64) & 0x1fff;
        out.extend_from_slice(&[0xc0 | (u >> 8) as u8, u as u8]);
    } else if let Ok(h) = i16::try_from(v) {
        out.push(0xf1);
        out.extend_from_slice(&h.to_le_bytes());
    } else if (-(1 << 23)..(1 << 23)).contains(&v) {
        out.push(0xf2);
        out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
    } else if let Ok(w) = i32::try_from(v) {
        out.push(0xf3);
        out.extend_from_slice(&w.to_le_bytes());
    } else {
        out.push(0xf4);
        out.extend_from_slice(&v.to_le_bytes());
    }
    let len = out.len() - start;
    push_backlen(out, len);
}

/// One entry of a listpack: a string (borrowed) or an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    Str(&'a [u8]),
    Int(i64),
}

/// The entry at `pos` (string or integer) and where the next one starts. The buffer's maker guarantees the
/// entry (see [`str_at`]).
pub fn entry_at(lp: &[u8], pos: usize) -> (Entry<'_>, usize) {
    let b = lp[pos];
    let int = |n: usize| {
        let mut raw = [0u8; 8];
        raw[..n].copy_from_slice(&lp[pos + 1..pos + 1 + n]);
        // Sign-extend from n bytes.
        let v = i64::from_le_bytes(raw) << (64 - 8 * n) >> (64 - 8 * n);
        (Entry::Int(v), pos + 1 + n + backlen_size(1 + n))
    };
    match b {
        0x00..=0x7f => (Entry::Int(i64::from(b)), pos + 2),
        0xc0..=0xdf => {
            let u = (i64::from(b & 0x1f) << 8) | i64::from(lp[pos + 1]);
            (Entry::Int(if u >= 4096 { u - 8192 } else { u }), pos + 3)
        }
        0xf1 => int(2),
        0xf2 => int(3),
        0xf3 => int(4),
        0xf4 => int(8),
        _ => {
            let (data, n, next) = str_at(lp, pos);
            (Entry::Str(&lp[data..data + n]), next)
        }
    }
}

/// Where the entry that ends at `end` (exclusive) starts, read backwards through its back-length.
pub fn start_before(lp: &[u8], end: usize) -> usize {
    let (mut len, mut shift, mut p) = (0usize, 0u32, end);
    loop {
        p -= 1;
        let b = lp[p];
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    p - len
}

/// A copy of listpack `old` (empty: none yet) with the entry bytes at `range` replaced by `with`, holding
/// `count` entries in all; no buffer at all when `count` is 0.
pub fn replaced(old: &[u8], range: std::ops::Range<usize>, with: &[u8], count: usize) -> SmallBuf {
    if count == 0 {
        return SmallBuf::default();
    }
    SmallBuf::build(|out| {
        let start = begin(out);
        if old.is_empty() {
            out.extend_from_slice(with);
        } else {
            out.extend_from_slice(&old[HEADER..range.start]);
            out.extend_from_slice(with);
            out.extend_from_slice(&old[range.end..end(old)]);
        }
        finish(out, start, count);
    })
}

/// The string entry at `pos` of a run of string entries (a listpack's, or a list chunk's): where its bytes
/// start, their length, and where the next entry starts. The buffer's maker guarantees the entries (a Redis
/// listpack is checked entry by entry by the RDB reader before it is kept).
pub fn str_at(lp: &[u8], pos: usize) -> (usize, usize, usize) {
    let b = lp[pos];
    let (header, n) = match b {
        0x80..=0xbf => (1, usize::from(b & 0x3f)),
        0xe0..=0xef => (2, (usize::from(b & 0x0f) << 8) | usize::from(lp[pos + 1])),
        0xf0 => (5, u32::from_le_bytes([lp[pos + 1], lp[pos + 2], lp[pos + 3], lp[pos + 4]]) as usize),
        _ => unreachable!("a Moon listpack holds only string entries (byte {b:#x} at {pos})"),
    };
    let data = pos + header;
    (data, n, data + n + backlen_size(header + n))
}

/// The string entry that ends at `end` (exclusive), read backwards through its back-length: where the entry
/// starts, where its bytes start, and their length.
pub fn str_before(lp: &[u8], end: usize) -> (usize, usize, usize) {
    let start = start_before(lp, end);
    let (data, n, _) = str_at(lp, start);
    (start, data, n)
}

/// [`str_at`] as the entry's bytes and the position of the next entry.
pub fn read_str(lp: &[u8], pos: usize) -> (&[u8], usize) {
    let (data, n, next) = str_at(lp, pos);
    (&lp[data..data + n], next)
}

/// The position of the terminator of a non-empty listpack (the end of its entries).
pub fn end(lp: &[u8]) -> usize {
    lp.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::blobs::{listpack, Elem};

    #[test]
    fn string_entries_read_back_and_pass_the_rdb_reader() {
        let items: Vec<Vec<u8>> = [0usize, 1, 63, 64, 127, 128, 4095, 4096, 20_000]
            .iter()
            .map(|&n| (0..n).map(|i| b'a' + (i % 26) as u8).collect())
            .chain([b"123".to_vec(), b"-7".to_vec()])
            .collect();
        let mut lp = Vec::new();
        let start = begin(&mut lp);
        for s in &items {
            let before = lp.len();
            put_str(&mut lp, s);
            assert_eq!(lp.len() - before, str_entry_len(s.len()));
        }
        finish(&mut lp, start, items.len());
        assert_eq!(header_count(&lp), Some(items.len()));
        let (mut pos, mut got) = (HEADER, Vec::new());
        while pos < end(&lp) {
            let (s, next) = read_str(&lp, pos);
            got.push(s.to_vec());
            pos = next;
        }
        assert_eq!(got, items);
        let (mut end, mut back) = (end(&lp), Vec::new());
        while end > HEADER {
            let (start, data, n) = str_before(&lp, end);
            back.push(lp[data..data + n].to_vec());
            end = start;
        }
        back.reverse();
        assert_eq!(back, items);
        // The RDB reader (Redis's full check: header, every entry, every back-length) agrees, digits and all.
        let mut elems = Vec::new();
        listpack(&lp, &mut elems).unwrap();
        let want: Vec<Elem> = items.iter().map(|s| Elem::Str(s)).collect();
        assert_eq!(elems, want);
    }
}
