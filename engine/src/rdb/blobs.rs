//! Readers for the blobs Redis embeds in RDB strings (FORMATS.md §4.5): listpack, ziplist, intset, zipmap.
//!
//! Each reader validates the whole blob the way Redis's deep integrity check does (header sizes and
//! counts, every entry inside the blob, listpack back-lengths, ziplist previous-entry lengths, intset order)
//! and appends the entries to a caller-owned vector of [`Elem`]s that borrow from the blob, so decoding a
//! value allocates only for the value itself. A failure is reported as the blob's name; the caller adds
//! the offset of the blob in the file.

use crate::types::listpack::backlen_size;

/// One entry of a listpack or ziplist: a string or an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    /// Calls `f` with the entry's bytes (integers in decimal, without allocating).
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Elem::Str(s) => f(s),
            Elem::Int(v) => {
                let mut buf = [0u8; 20];
                f(format_i64(v, &mut buf))
            }
        }
    }

    /// Length of the entry's bytes.
    pub fn len(self) -> usize {
        self.with_bytes(<[u8]>::len)
    }
}

/// An entry's bytes without an allocation: borrowed from the blob, or an integer printed in place.
pub(crate) struct ElemBytes<'a> {
    slice: Option<&'a [u8]>,
    buf: [u8; 20],
    start: u8,
}

impl<'a> From<Elem<'a>> for ElemBytes<'a> {
    fn from(e: Elem<'a>) -> Self {
        match e {
            Elem::Str(s) => ElemBytes { slice: Some(s), buf: [0; 20], start: 0 },
            Elem::Int(v) => {
                let mut buf = [0u8; 20];
                let start = (20 - format_i64(v, &mut buf).len()) as u8;
                ElemBytes { slice: None, buf, start }
            }
        }
    }
}

impl AsRef<[u8]> for ElemBytes<'_> {
    fn as_ref(&self) -> &[u8] {
        match self.slice {
            Some(s) => s,
            None => &self.buf[usize::from(self.start)..],
        }
    }
}

impl From<ElemBytes<'_>> for Box<[u8]> {
    fn from(e: ElemBytes<'_>) -> Self {
        Box::from(e.as_ref())
    }
}

/// Writes `v` in decimal at the end of `buf` and returns that part.
pub(crate) fn format_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut x = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Why a blob was refused: its name, for `ErrorKind::BadBlob`.
pub(crate) type BlobResult<T> = Result<T, &'static str>;

fn le_uint(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

/// Sign-extends the low `bits` bits of `v`.
fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Checks that `b` starts with the back-length of an entry of `len` bytes (as [`push_backlen`](crate::types::listpack::push_backlen) writes it);
/// returns the back-length's size.
#[inline]
fn backlen_at(b: &[u8], len: usize) -> Option<usize> {
    if len < 128 {
        // Most entries: a one-byte back-length equal to the entry's size.
        return (b.first() == Some(&(len as u8))).then_some(1);
    }
    let n = backlen_size(len);
    let stored = b.get(..n)?;
    let ok = stored.iter().enumerate().all(|(j, &byte)| {
        let i = n - 1 - j;
        let group = ((len >> (7 * i)) & 127) as u8;
        byte == if i == n - 1 { group } else { group | 128 }
    });
    ok.then_some(n)
}

/// Decodes a listpack, appending its entries to `out`.
pub(crate) fn listpack<'a>(lp: &'a [u8], out: &mut Vec<Elem<'a>>) -> BlobResult<()> {
    const NAME: &str = "Listpack";
    if lp.len() < 7 || le_uint(&lp[0..4]) != lp.len() as u64 || lp[lp.len() - 1] != 0xff {
        return Err(NAME);
    }
    let declared = le_uint(&lp[4..6]) as usize;
    let start = out.len();
    let end = lp.len() - 1;
    // Each entry takes at least two bytes.
    out.reserve(if declared == 65535 { 0 } else { declared.min(lp.len() / 2) });
    let mut p = 6;
    while p < end {
        let b = lp[p];
        let rest = &lp[p..end];
        let (elem, size) = match b {
            0x00..=0x7f => (Elem::Int(i64::from(b)), 1),
            0x80..=0xbf => {
                let n = usize::from(b & 0x3f);
                (Elem::Str(rest.get(1..1 + n).ok_or(NAME)?), 1 + n)
            }
            0xc0..=0xdf => {
                let lo = *rest.get(1).ok_or(NAME)?;
                (Elem::Int(sign_extend((u64::from(b & 0x1f) << 8) | u64::from(lo), 13)), 2)
            }
            0xe0..=0xef => {
                let lo = *rest.get(1).ok_or(NAME)?;
                let n = (usize::from(b & 0x0f) << 8) | usize::from(lo);
                (Elem::Str(rest.get(2..2 + n).ok_or(NAME)?), 2 + n)
            }
            0xf0 => {
                let n = le_uint(rest.get(1..5).ok_or(NAME)?) as usize;
                (Elem::Str(rest.get(5..5usize.checked_add(n).ok_or(NAME)?).ok_or(NAME)?), 5 + n)
            }
            0xf1..=0xf4 => {
                let width = [2usize, 3, 4, 8][usize::from(b - 0xf1)];
                let v = le_uint(rest.get(1..1 + width).ok_or(NAME)?);
                (Elem::Int(sign_extend(v, 8 * width as u32)), 1 + width)
            }
            _ => return Err(NAME),
        };
        let backlen = backlen_at(rest.get(size..).unwrap_or_default(), size).ok_or(NAME)?;
        out.push(elem);
        p += size + backlen;
    }
    if p != end || (declared != 65535 && declared != out.len() - start) {
        return Err(NAME);
    }
    Ok(())
}

/// Decodes a ziplist, appending its entries to `out`.
pub(crate) fn ziplist<'a>(zl: &'a [u8], out: &mut Vec<Elem<'a>>) -> BlobResult<()> {
    const NAME: &str = "Ziplist";
    if zl.len() < 11 || le_uint(&zl[0..4]) != zl.len() as u64 || zl[zl.len() - 1] != 0xff {
        return Err(NAME);
    }
    let tail = le_uint(&zl[4..8]) as usize;
    let declared = le_uint(&zl[8..10]) as usize;
    let start = out.len();
    let end = zl.len() - 1;
    let (mut p, mut prev, mut last) = (10, 0usize, 10);
    while p < end {
        let rest = &zl[p..end];
        let (prevlen, mut q) = match rest[0] {
            0..=253 => (usize::from(rest[0]), 1),
            254 => (le_uint(rest.get(1..5).ok_or(NAME)?) as usize, 5),
            _ => return Err(NAME),
        };
        if prevlen != prev {
            return Err(NAME);
        }
        let b = *rest.get(q).ok_or(NAME)?;
        q += 1;
        let elem = match b >> 6 {
            0 => {
                let n = usize::from(b & 0x3f);
                let s = rest.get(q..q + n).ok_or(NAME)?;
                q += n;
                Elem::Str(s)
            }
            1 => {
                let n = (usize::from(b & 0x3f) << 8) | usize::from(*rest.get(q).ok_or(NAME)?);
                q += 1;
                let s = rest.get(q..q + n).ok_or(NAME)?;
                q += n;
                Elem::Str(s)
            }
            2 => {
                let hdr = rest.get(q..q + 4).ok_or(NAME)?;
                let n = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
                q += 4;
                let s = rest.get(q..q.checked_add(n).ok_or(NAME)?).ok_or(NAME)?;
                q += n;
                Elem::Str(s)
            }
            _ => {
                let width = match b {
                    0xc0 => 2,
                    0xd0 => 4,
                    0xe0 => 8,
                    0xf0 => 3,
                    0xfe => 1,
                    0xf1..=0xfd => 0,
                    _ => return Err(NAME),
                };
                if width == 0 {
                    Elem::Int(i64::from(b & 0x0f) - 1)
                } else {
                    let v = le_uint(rest.get(q..q + width).ok_or(NAME)?);
                    q += width;
                    Elem::Int(sign_extend(v, 8 * width as u32))
                }
            }
        };
        out.push(elem);
        last = p;
        prev = q;
        p += q;
    }
    if p != end || tail != last || (declared != 65535 && declared != out.len() - start) {
        return Err(NAME);
    }
    Ok(())
}

/// Checks an intset: sorted, distinct integers of one width (2, 4 or 8 bytes); an empty intset is invalid,
/// as in Redis. Returns the width and the members' bytes (little-endian at that width: [`IntSet`]'s layout
/// after its width byte, so loading one copies it as it is).
///
/// [`IntSet`]: crate::types::set::IntSet
pub(crate) fn intset(blob: &[u8]) -> BlobResult<(usize, &[u8])> {
    const NAME: &str = "Intset";
    if blob.len() < 8 {
        return Err(NAME);
    }
    let width = le_uint(&blob[0..4]) as usize;
    let count = le_uint(&blob[4..8]) as usize;
    if !matches!(width, 2 | 4 | 8) || count == 0 || Some(blob.len()) != count.checked_mul(width).map(|b| b + 8) {
        return Err(NAME);
    }
    let members = &blob[8..];
    let ascending = match width {
        2 => strictly_ascending(members, |c: [u8; 2]| i64::from(i16::from_le_bytes(c))),
        4 => strictly_ascending(members, |c: [u8; 4]| i64::from(i32::from_le_bytes(c))),
        _ => strictly_ascending(members, i64::from_le_bytes),
    };
    if !ascending {
        return Err(NAME);
    }
    Ok((width, members))
}

/// Whether the `W`-byte integers of `members` (read by `read`) are in strictly ascending order: one loop per
/// width, so each member is a single load.
fn strictly_ascending<const W: usize>(members: &[u8], read: impl Fn([u8; W]) -> i64) -> bool {
    let mut values = members.chunks_exact(W).map(|c| read(c.try_into().expect("chunks of W bytes")));
    let Some(mut last) = values.next() else { return true };
    for v in values {
        if v <= last {
            return false;
        }
        last = v;
    }
    true
}

/// Decodes a zipmap (the hash encoding of RDB 1-3): appends field, value, field, value ...
pub(crate) fn zipmap<'a>(zm: &'a [u8], out: &mut Vec<Elem<'a>>) -> BlobResult<()> {
    const NAME: &str = "Zipmap";
    let declared = usize::from(*zm.first().ok_or(NAME)?);
    let start = out.len();
    let mut p = 1;
    let read_len = |p: &mut usize| -> BlobResult<usize> {
        let b = *zm.get(*p).ok_or(NAME)?;
        *p += 1;
        match b {
            0..=253 => Ok(usize::from(b)),
            254 => {
                let n = le_uint(zm.get(*p..*p + 4).ok_or(NAME)?) as usize;
                *p += 4;
                Ok(n)
            }
            _ => Err(NAME),
        }
    };
    loop {
        match zm.get(p) {
            Some(0xff) => break,
            None => return Err(NAME),
            Some(_) => {}
        }
        let n = read_len(&mut p)?;
        out.push(Elem::Str(zm.get(p..p.checked_add(n).ok_or(NAME)?).ok_or(NAME)?));
        p += n;
        let n = read_len(&mut p)?;
        let free = usize::from(*zm.get(p).ok_or(NAME)?);
        p += 1;
        out.push(Elem::Str(zm.get(p..p.checked_add(n).ok_or(NAME)?).ok_or(NAME)?));
        p += n + free;
    }
    let pairs = (out.len() - start) / 2;
    if p != zm.len() - 1 || (declared < 254 && declared != pairs) {
        return Err(NAME);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::listpack::push_backlen;

    fn lp(entries: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        for e in entries {
            let start = body.len();
            body.push(0x80 | e.len() as u8);
            body.extend_from_slice(e);
            let len = body.len() - start;
            push_backlen(&mut body, len);
        }
        let mut out = ((body.len() + 7) as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(0xff);
        out
    }

    #[test]
    fn formats_integers() {
        let mut b = [0u8; 20];
        for v in [0, 7, -7, 10, i64::MAX, i64::MIN, -1000] {
            assert_eq!(format_i64(v, &mut b), v.to_string().as_bytes());
        }
    }

    #[test]
    fn backlens() {
        for (len, bytes) in [(1usize, vec![1u8]), (127, vec![127]), (128, vec![1, 128]), (16382, vec![127, 254])] {
            let mut v = Vec::new();
            push_backlen(&mut v, len);
            assert_eq!(v, bytes, "{len}");
        }
        assert_eq!(backlen_size(16383), 3);
        // The reader accepts exactly what the writer writes, for every size class.
        for len in [1usize, 127, 128, 300, 16_382, 16_383, 2_097_150, 2_097_151, 268_435_455] {
            let mut v = Vec::new();
            push_backlen(&mut v, len);
            v.push(0xaa);
            assert_eq!(backlen_at(&v, len), Some(v.len() - 1), "{len}");
            assert_eq!(backlen_at(&v, len + 1), None, "{len}");
            assert_eq!(backlen_at(&v[..v.len() - 2], len), None, "{len}");
        }
    }

    /// The ZSET_LISTPACK of FORMATS.md §4.7: "a", "1.5", "b", 2.
    #[test]
    fn listpack_sample() {
        let blob = [0x14, 0, 0, 0, 4, 0, 0x81, b'a', 2, 0x83, b'1', b'.', b'5', 4, 0x81, b'b', 2, 2, 1, 0xff];
        let mut out = Vec::new();
        listpack(&blob, &mut out).unwrap();
        assert_eq!(out, [Elem::Str(b"a"), Elem::Str(b"1.5"), Elem::Str(b"b"), Elem::Int(2)]);
    }

    #[test]
    fn listpack_rejects_damage() {
        let good = lp(&[b"ab", b"c"]);
        let mut out = Vec::new();
        assert!(listpack(&good, &mut out).is_ok());
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            // Some flips still give a valid listpack (e.g. a data byte); none may panic.
            let _ = listpack(&bad, &mut Vec::new());
        }
        assert!(listpack(&good[..good.len() - 1], &mut out).is_err());
        let mut wrong_count = good.clone();
        wrong_count[4] = 3;
        assert!(listpack(&wrong_count, &mut out).is_err());
        let mut unknown = good.clone();
        unknown[4] = 0xff;
        unknown[5] = 0xff;
        assert!(listpack(&unknown, &mut out).is_ok(), "65535 means 'count unknown'");
    }

    #[test]
    fn intsets() {
        let mut b = vec![2, 0, 0, 0, 3, 0, 0, 0];
        for v in [1i16, 2, 3] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(intset(&b).unwrap(), (2, &b[8..]));
        let mut unsorted = b.clone();
        unsorted.swap(8, 10);
        assert!(intset(&unsorted).is_err());
        assert!(intset(&b[..b.len() - 1]).is_err());
        assert!(intset(&[2, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(intset(&[3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0]).is_err());
        assert!(intset(&[8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn zipmaps() {
        let zm = [2, 1, b'a', 1, 0, b'b', 2, b'c', b'd', 3, 2, b'e', b'f', b'g', 0, 0, 0xff];
        let mut out = Vec::new();
        zipmap(&zm, &mut out).unwrap();
        assert_eq!(out, [Elem::Str(b"a"), Elem::Str(b"b"), Elem::Str(b"cd"), Elem::Str(b"efg")]);
        for cut in 0..zm.len() {
            out.clear();
            assert!(zipmap(&zm[..cut], &mut out).is_err());
        }
    }
}
