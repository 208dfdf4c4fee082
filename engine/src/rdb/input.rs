//! A bounds-checked cursor over the RDB bytes: the primitive encodings of FORMATS.md §4.4 (lengths, strings
//! with their integer and LZF forms, doubles, raw little-endian integers).
//!
//! Every read checks the remaining bytes first, and every length that will size an allocation is checked
//! against what is left of the input (or, for LZF, against the largest expansion LZF can encode), so hostile
//! input gives an error rather than a panic or a huge allocation. Plain strings are borrowed from the
//! input: decoding copies each byte once, into the value that keeps it.

use super::error::{err, ErrorKind, Result};
use super::lzf;
use crate::util::parse_double_text;
use std::borrow::Cow;

/// Special string encodings (`11xxxxxx` length bytes).
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// A string as stored: bytes, or one of the integer encodings (kept as a number so that a string value can
/// become an `int`-encoded `StrValue` without printing and parsing it).
pub(crate) enum RdbStr<'a> {
    Bytes(Cow<'a, [u8]>),
    Int(i64),
}

impl<'a> RdbStr<'a> {
    pub fn into_bytes(self) -> Cow<'a, [u8]> {
        match self {
            RdbStr::Bytes(b) => b,
            RdbStr::Int(v) => Cow::Owned(v.to_string().into_bytes()),
        }
    }
}

/// A length, or the marker of a specially encoded string.
enum Len {
    Plain(u64),
    Special(u8),
}

pub(crate) struct Input<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Input { buf, pos: 0 }
    }

    /// A cursor at offset `pos` of `buf` (a value found by a scan, decoded later with its file offsets).
    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Input { buf, pos: pos.min(buf.len()) }
    }

    /// Moves the cursor back to `pos` (an offset this cursor already passed).
    pub fn rewind(&mut self, pos: usize) {
        debug_assert!(pos <= self.pos);
        self.pos = pos;
    }

    /// Offset of the next byte.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return err(ErrorKind::UnexpectedEof, self.pos);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => err(ErrorKind::UnexpectedEof, self.pos),
        }
    }

    pub fn i32_le(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    pub fn i64_le(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub fn u64_le(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// An 8-byte IEEE-754 double, little-endian (ZSET_2 scores, module doubles).
    pub fn f64_le(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    fn len_or_special(&mut self) -> Result<Len> {
        let at = self.pos;
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(self.u8()?)),
            3 => Len::Special(b & 0x3f),
            _ => match b {
                0x80 => Len::Plain(u64::from(u32::from_be_bytes(self.array()?))),
                0x81 => Len::Plain(u64::from_be_bytes(self.array()?)),
                _ => return err(ErrorKind::BadLength(b), at),
            },
        })
    }

    /// The length `n` of a plain string of under 64 bytes at the cursor (one length byte), when that is what
    /// is there and all its bytes are in the input: most keys, short values and counts, taken without the
    /// general decoding.
    #[inline]
    fn short(&self) -> Option<usize> {
        let &b = self.buf.get(self.pos)?;
        let n = usize::from(b);
        (b < 0x40 && n < self.remaining()).then_some(n)
    }

    /// A length (`rdbLoadLen`); a special-encoding byte here is an error.
    #[inline]
    pub fn len(&mut self) -> Result<u64> {
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x40 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.len_general()
    }

    /// [`Input::len`] of anything but a one-byte length.
    #[inline(never)]
    fn len_general(&mut self) -> Result<u64> {
        let at = self.pos;
        match self.len_or_special()? {
            Len::Plain(n) => Ok(n),
            Len::Special(_) => err(ErrorKind::BadLength(self.buf[at]), at),
        }
    }

    /// A count of items that take at least `min_bytes` each: refused (as a truncated file) when the rest of
    /// the input cannot hold that many, so callers may size buffers from it.
    pub fn count(&mut self, min_bytes: usize) -> Result<usize> {
        let at = self.pos;
        let n = self.len()?;
        let fits = n.checked_mul(min_bytes.max(1) as u64).is_some_and(|b| b <= self.remaining() as u64);
        if !fits {
            return err(ErrorKind::UnexpectedEof, at);
        }
        Ok(n as usize)
    }

    /// A string in any of its encodings.
    #[inline]
    pub fn rdb_str(&mut self) -> Result<RdbStr<'a>> {
        match self.take_short() {
            Some(s) => Ok(RdbStr::Bytes(Cow::Borrowed(s))),
            None => self.rdb_str_general(),
        }
    }

    /// The bytes of a [`Input::short`] string, passed over.
    #[inline]
    fn take_short(&mut self) -> Option<&'a [u8]> {
        let n = self.short()?;
        let s = &self.buf[self.pos + 1..self.pos + 1 + n];
        self.pos += 1 + n;
        Some(s)
    }

    /// [`Input::rdb_str`] of anything but a one-byte length.
    #[inline(never)]
    fn rdb_str_general(&mut self) -> Result<RdbStr<'a>> {
        let at = self.pos;
        match self.len_or_special()? {
            Len::Plain(n) => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                Ok(RdbStr::Bytes(Cow::Borrowed(self.take(n).map_err(|e| e.with_offset(at))?)))
            }
            Len::Special(ENC_INT8) => Ok(RdbStr::Int(i64::from(self.u8()? as i8))),
            Len::Special(ENC_INT16) => Ok(RdbStr::Int(i64::from(i16::from_le_bytes(self.array()?)))),
            Len::Special(ENC_INT32) => Ok(RdbStr::Int(i64::from(self.i32_le()?))),
            Len::Special(ENC_LZF) => {
                let clen = self.len()?;
                let ulen = self.len()?;
                let clen = usize::try_from(clen).unwrap_or(usize::MAX);
                let packed = self.take(clen).map_err(|e| e.with_offset(at))?;
                let plausible = ulen <= (clen as u64).saturating_mul(lzf::MAX_RATIO as u64);
                match plausible.then(|| lzf::decompress(packed, ulen as usize)).flatten() {
                    Some(v) => Ok(RdbStr::Bytes(Cow::Owned(v))),
                    None => err(ErrorKind::BadLzf, at),
                }
            }
            Len::Special(other) => err(ErrorKind::BadStringEncoding(other), at),
        }
    }

    /// Passes over a string in any encoding without decoding it (LZF data is not inflated: its lengths
    /// are checked when the value is decoded).
    #[inline]
    pub fn skip_str(&mut self) -> Result<()> {
        if let Some(n) = self.short() {
            self.pos += 1 + n;
            return Ok(());
        }
        self.skip_str_general()
    }

    /// [`Input::skip_str`] of anything but a one-byte length.
    #[inline(never)]
    fn skip_str_general(&mut self) -> Result<()> {
        let n = match self.len_or_special()? {
            Len::Plain(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Len::Special(ENC_INT8) => 1,
            Len::Special(ENC_INT16) => 2,
            Len::Special(ENC_INT32) => 4,
            Len::Special(ENC_LZF) => {
                let clen = self.len()?;
                self.len()?;
                usize::try_from(clen).unwrap_or(usize::MAX)
            }
            Len::Special(other) => return err(ErrorKind::BadStringEncoding(other), self.pos - 1),
        };
        self.take(n).map(|_| ())
    }

    /// A string's bytes (integers in decimal).
    #[inline]
    pub fn string(&mut self) -> Result<Cow<'a, [u8]>> {
        match self.take_short() {
            Some(s) => Ok(Cow::Borrowed(s)),
            None => Ok(self.rdb_str_general()?.into_bytes()),
        }
    }

    /// A string that must be plain bytes or LZF (a blob: listpack, ziplist, intset ...).
    pub fn blob(&mut self) -> Result<Cow<'a, [u8]>> {
        let at = self.pos;
        match self.rdb_str()? {
            RdbStr::Bytes(b) => Ok(b),
            RdbStr::Int(_) => err(ErrorKind::BadBlob("Integer-encoded blob"), at),
        }
    }

    /// A double in the old text form of type 3 zsets: u8 length then ASCII, or 253 NaN, 254 +inf, 255 -inf.
    pub fn string_double(&mut self) -> Result<f64> {
        let at = self.pos;
        match self.u8()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let text = self.take(usize::from(n))?;
                match parse_double_text(text) {
                    Some(v) => Ok(v),
                    None => err(ErrorKind::BadValue("Bad double value".into()), at),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        let mut i = Input::new(&[0x3f, 0x41, 0x02, 0x80, 0, 0, 1, 0, 0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(i.len().unwrap(), 63);
        assert_eq!(i.len().unwrap(), 0x102);
        assert_eq!(i.len().unwrap(), 0x100);
        assert_eq!(i.len().unwrap(), 1 << 32);
        assert_eq!(i.remaining(), 0);
        assert_eq!(Input::new(&[0x82]).len().unwrap_err().code(), "bad-length");
        assert_eq!(Input::new(&[0xc0]).len().unwrap_err().code(), "bad-length");
        assert_eq!(Input::new(&[0x80, 0]).len().unwrap_err().code(), "unexpected-eof");
        // 5 items of at least 1 byte do not fit in 4 bytes.
        assert_eq!(Input::new(&[5, 1, 2, 3, 4]).count(1).unwrap_err().code(), "unexpected-eof");
        assert_eq!(Input::new(&[4, 1, 2, 3, 4]).count(1).unwrap(), 4);
        assert_eq!(
            Input::new(&[0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).count(8).unwrap_err().code(),
            "unexpected-eof"
        );
    }

    #[test]
    fn strings() {
        let data = [0x03, b'a', b'b', b'c', 0xc0, 0xfb, 0xc1, 0x39, 0x30, 0xc2, 0, 0x94, 0x35, 0x77];
        let mut i = Input::new(&data);
        assert_eq!(&*i.string().unwrap(), b"abc");
        assert!(matches!(i.rdb_str().unwrap(), RdbStr::Int(-5)));
        assert_eq!(&*i.string().unwrap(), b"12345");
        assert!(matches!(i.rdb_str().unwrap(), RdbStr::Int(2_000_000_000)));
        let lzf = [0xc3, 0x06, 0x15, 0x01, 0x61, 0x61, 0xe0, 0x0a, 0x00];
        assert_eq!(&*Input::new(&lzf).string().unwrap(), &[b'a'; 21][..]);
        // An uncompressed length far beyond what 6 bytes of LZF can produce is refused before allocating.
        let huge = [0xc3, 0x06, 0x81, 0, 0, 0, 1, 0, 0, 0, 0, 0x01, 0x61, 0x61, 0xe0, 0x0a, 0x00];
        assert_eq!(Input::new(&huge).string().unwrap_err().code(), "bad-lzf");
        assert_eq!(Input::new(&[0xc4]).string().unwrap_err().code(), "bad-string-encoding");
        assert_eq!(Input::new(&[0x05, b'a']).string().unwrap_err().code(), "unexpected-eof");
        assert_eq!(Input::new(&[0xc0, 1]).blob().unwrap_err().code(), "bad-blob");
    }

    #[test]
    fn doubles() {
        let mut i = Input::new(&[0xfd, 0xfe, 0xff, 3, b'1', b'.', b'5', 2, b'z', b'z']);
        assert!(i.string_double().unwrap().is_nan());
        assert_eq!(i.string_double().unwrap(), f64::INFINITY);
        assert_eq!(i.string_double().unwrap(), f64::NEG_INFINITY);
        assert_eq!(i.string_double().unwrap(), 1.5);
        assert_eq!(i.string_double().unwrap_err().code(), "bad-value");
    }
}
