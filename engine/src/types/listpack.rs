//! Redis's listpack format, for the small encodings that keep one (hashes): a 6-byte header (total bytes,
//! u32 little-endian; entry count, u16, 65535 when unknown), the entries, and a 0xFF terminator. Each entry
//! is its encoding and data followed by a back-length (the size of encoding plus data, readable from the
//! end), so a listpack is read in either direction.
//!
//! Moon writes only string entries (6-, 12- and 32-bit length encodings), never Redis's integer ones: a
//! reader then hands out every element as bytes borrowed from the buffer. Redis reads string entries holding
//! digits like any other, so these buffers go into RDB files as they are, and a Redis listpack without
//! integer entries loads as it is (a copy, no re-encoding).

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
    let start = p - len;
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
