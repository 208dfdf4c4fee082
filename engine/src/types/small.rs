//! [`SmallBuf`]: the byte buffer behind the small encodings (packed intsets, listpack-style hashes and
//! zsets). Up to [`INLINE`] bytes live inside the 16-byte value itself; longer contents take one allocation
//! of exactly their length plus a one- or two-byte length header.
//!
//! Why inline: a keyspace entry costs 16 bytes more than Redis's `dictEntry` plus its 16-byte object
//! header, so Moon matches Redis on a small collection only when its encoding is 16 bytes smaller than
//! Redis's. Keeping the smallest encodings (a three-integer set, a three-member zset of short members)
//! inside the value removes their allocation altogether.

use crate::util::inline_array;
use std::alloc::{self, Layout};
use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, Range};
use std::ptr::{self, NonNull};

/// Longest contents kept inline.
pub const INLINE: usize = 15;

/// An immutable byte buffer, inline up to [`INLINE`] bytes. 16 bytes, and the enums around it (set, hash
/// and zset values) stay 16 bytes too: their tags go in the inline length byte's unused values.
pub struct SmallBuf(Repr);

enum Repr {
    /// Length and bytes; bytes past the length are zero.
    Inline(Len, [u8; INLINE]),
    Heap(HeapBuf),
}

/// The length of inline contents. A byte with 16 valid values, so the compiler can encode the tags of
/// `Repr` and of the enums that hold a `SmallBuf` in the other 240.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Len {
    L0,
    L1,
    L2,
    L3,
    L4,
    L5,
    L6,
    L7,
    L8,
    L9,
    L10,
    L11,
    L12,
    L13,
    L14,
    L15,
}

const LENS: [Len; INLINE + 1] = [
    Len::L0,
    Len::L1,
    Len::L2,
    Len::L3,
    Len::L4,
    Len::L5,
    Len::L6,
    Len::L7,
    Len::L8,
    Len::L9,
    Len::L10,
    Len::L11,
    Len::L12,
    Len::L13,
    Len::L14,
    Len::L15,
];

impl SmallBuf {
    pub fn new(bytes: &[u8]) -> SmallBuf {
        let n = bytes.len();
        if n > INLINE {
            return SmallBuf(Repr::Heap(HeapBuf::new(&[bytes], n)));
        }
        // From whole words: a copy into a zeroed buffer made the value's moves wait (see `inline_array`).
        let buf = inline_array(bytes);
        SmallBuf(Repr::Inline(LENS[n], buf))
    }

    /// The concatenation of `parts`, in one allocation at most.
    pub fn concat(parts: &[&[u8]]) -> SmallBuf {
        let n = parts.iter().map(|p| p.len()).sum();
        if n > INLINE {
            return SmallBuf(Repr::Heap(HeapBuf::new(parts, n)));
        }
        let mut buf = [0; INLINE];
        let mut at = 0;
        for p in parts {
            buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        SmallBuf(Repr::Inline(LENS[n], buf))
    }

    /// The bytes `fill` appends to an empty vector, in one allocation of their exact size: `fill` writes into
    /// a buffer this thread reuses, so building a value (a loader builds millions) costs no growth and no
    /// free of a temporary.
    pub fn build(fill: impl FnOnce(&mut Vec<u8>)) -> SmallBuf {
        with_scratch(fill, SmallBuf::new)
    }

    /// A copy with the bytes in `range` replaced by `with`.
    pub fn spliced(&self, range: Range<usize>, with: &[u8]) -> SmallBuf {
        SmallBuf::concat(&[&self[..range.start], with, &self[range.end..]])
    }

    /// Bytes allocated on the heap (0 when inline).
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Repr::Inline(..) => 0,
            Repr::Heap(h) => h.layout().size(),
        }
    }

    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline(..))
    }
}

impl Default for SmallBuf {
    fn default() -> Self {
        SmallBuf(Repr::Inline(Len::L0, [0; INLINE]))
    }
}

impl Deref for SmallBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(n, b) => &b[..*n as usize],
            Repr::Heap(h) => h.as_slice(),
        }
    }
}

impl Clone for SmallBuf {
    fn clone(&self) -> Self {
        SmallBuf::new(self)
    }
}

impl PartialEq for SmallBuf {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for SmallBuf {}

impl fmt::Debug for SmallBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SmallBuf").field(&&**self).finish()
    }
}

/// Runs `fill` on an empty vector this thread reuses and gives what it wrote to `finish`.
fn with_scratch<T>(fill: impl FnOnce(&mut Vec<u8>), finish: impl FnOnce(&[u8]) -> T) -> T {
    /// Largest scratch buffer kept between calls.
    const KEEP: usize = 1 << 16;
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            fill(&mut buf);
            let out = finish(&buf);
            if buf.capacity() > KEEP {
                *buf = Vec::new();
            }
            out
        }
        // Only if `fill` itself builds a buffer.
        Err(_) => {
            let mut buf = Vec::new();
            fill(&mut buf);
            finish(&buf)
        }
    })
}

/// Appends `len` as a LEB128 varint (7 bits a byte, low bits first).
pub(crate) fn put_varint(out: &mut Vec<u8>, mut len: usize) {
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
}

/// Reads one varint-prefixed string at `pos` of a buffer written by [`put_varint`]; returns it and the
/// position after it.
pub(crate) fn read_elem(buf: &[u8], mut pos: usize) -> (&[u8], usize) {
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let b = buf[pos];
        pos += 1;
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (&buf[pos..pos + len], pos + len)
}

/// A byte buffer that always lives on the heap, behind one 8-byte pointer: its length is a varint at the
/// start of the allocation, as in a [`SmallBuf`]'s heap form. For contents that seldom fit inline, inside an
/// enum whose inline space another variant already uses (two `SmallBuf` variants would make it 24 bytes).
pub struct ThinBuf(HeapBuf);

impl ThinBuf {
    /// The concatenation of `parts`, in one allocation.
    pub fn concat(parts: &[&[u8]]) -> ThinBuf {
        ThinBuf(HeapBuf::new(parts, parts.iter().map(|p| p.len()).sum()))
    }

    /// What `fill` appends to an empty vector, in one allocation of its exact size (see [`SmallBuf::build`]).
    pub fn build(fill: impl FnOnce(&mut Vec<u8>)) -> ThinBuf {
        with_scratch(fill, |b| ThinBuf::concat(&[b]))
    }

    /// A copy with the bytes in `range` replaced by `with`.
    pub fn spliced(&self, range: Range<usize>, with: &[u8]) -> ThinBuf {
        ThinBuf::concat(&[&self[..range.start], with, &self[range.end..]])
    }

    /// Bytes of the allocation (the length header included).
    pub fn heap_bytes(&self) -> usize {
        self.0.layout().size()
    }
}

impl Deref for ThinBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl Clone for ThinBuf {
    fn clone(&self) -> Self {
        ThinBuf::concat(&[self])
    }
}

impl PartialEq for ThinBuf {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for ThinBuf {}

impl fmt::Debug for ThinBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ThinBuf").field(&&**self).finish()
    }
}

/// `n` bytes on the heap after their length as a LEB128 varint, in one allocation of exactly that size.
struct HeapBuf(NonNull<u8>);

// SAFETY: a `HeapBuf` owns its allocation alone and never shares it, as a `Box<[u8]>` does.
unsafe impl Send for HeapBuf {}
// SAFETY: shared access only reads.
unsafe impl Sync for HeapBuf {}

/// The varint encoding of `n` and its length.
fn varint(mut n: usize) -> ([u8; 10], usize) {
    let (mut out, mut i) = ([0; 10], 0);
    while n >= 0x80 {
        out[i] = (n as u8) | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    (out, i + 1)
}

impl HeapBuf {
    fn layout_for(header: usize, n: usize) -> Layout {
        Layout::from_size_align(header + n, 1).expect("buffer larger than isize::MAX")
    }

    /// A buffer holding the concatenation of `parts`, `n` bytes in all.
    fn new(parts: &[&[u8]], n: usize) -> HeapBuf {
        let (header, h) = varint(n);
        let layout = Self::layout_for(h, n);
        // SAFETY: the layout is not zero-sized (h >= 1). The allocation gets exactly `h + n` bytes: the
        // header, then the parts, whose lengths sum to `n`; no copy overlaps a source.
        unsafe {
            let p = alloc::alloc(layout);
            let Some(p) = NonNull::new(p) else { alloc::handle_alloc_error(layout) };
            ptr::copy_nonoverlapping(header.as_ptr(), p.as_ptr(), h);
            let mut at = h;
            for part in parts {
                ptr::copy_nonoverlapping(part.as_ptr(), p.as_ptr().add(at), part.len());
                at += part.len();
            }
            debug_assert_eq!(at, h + n);
            HeapBuf(p)
        }
    }

    /// The header's length and the contents' length.
    fn header(&self) -> (usize, usize) {
        let (mut n, mut shift, mut i) = (0usize, 0, 0);
        loop {
            // SAFETY: `new` wrote a complete varint at the start of the allocation; the loop stops at its
            // last byte, so every byte read is inside the allocation and initialised.
            let b = unsafe { *self.0.as_ptr().add(i) };
            n |= usize::from(b & 0x7f) << shift;
            i += 1;
            if b & 0x80 == 0 {
                return (i, n);
            }
            shift += 7;
        }
    }

    fn layout(&self) -> Layout {
        let (h, n) = self.header();
        Self::layout_for(h, n)
    }

    fn as_slice(&self) -> &[u8] {
        let (h, n) = self.header();
        // SAFETY: bytes `h..h + n` of the allocation were initialised by `new` and live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(h), n) }
    }
}

impl Drop for HeapBuf {
    fn drop(&mut self) {
        let layout = self.layout();
        // SAFETY: allocated by `new` with this same layout (rebuilt from the header it wrote).
        unsafe { alloc::dealloc(self.0.as_ptr(), layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// Every inline length keeps its bytes and zeroes the rest, as the concatenation does.
    #[test]
    fn new_matches_concat_at_every_inline_length() {
        let src: Vec<u8> = (1..=INLINE as u8 + 1).map(|i| i.wrapping_mul(41) | 1).collect();
        for n in 0..=INLINE + 1 {
            let (a, b) = (SmallBuf::new(&src[..n]), SmallBuf::concat(&[&src[..n]]));
            assert_eq!((&a[..], a.is_inline()), (&b[..], b.is_inline()), "{n}");
            if let (Repr::Inline(_, x), Repr::Inline(_, y)) = (&a.0, &b.0) {
                assert_eq!(x, y, "{n}");
            }
        }
    }

    #[test]
    fn stays_sixteen_bytes_with_room_for_tags() {
        assert_eq!(size_of::<SmallBuf>(), 16);
        assert_eq!(size_of::<Option<SmallBuf>>(), 16);
        enum Outer {
            _Small(SmallBuf),
            _Big(Box<u64>),
        }
        assert_eq!(size_of::<Outer>(), 16);
    }

    #[test]
    fn build_gives_what_fill_wrote_even_when_nested() {
        for n in [0usize, 15, 16, 300, 70_000] {
            let want: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let got = SmallBuf::build(|out| out.extend_from_slice(&want));
            assert_eq!(&*got, &want[..]);
        }
        // A fill that builds another buffer gets a scratch of its own.
        let outer = SmallBuf::build(|out| {
            let inner = SmallBuf::build(|o| o.extend_from_slice(b"inner"));
            out.extend_from_slice(b"outer+");
            out.extend_from_slice(&inner);
        });
        assert_eq!(&*outer, b"outer+inner");
    }

    #[test]
    fn inline_up_to_fifteen_bytes_then_one_exact_allocation() {
        let all: Vec<u8> = (0..=255).collect();
        for n in [0, 1, 14, 15, 16, 17, 127, 128, 129, 200, 256] {
            let src: Vec<u8> = all.iter().cycle().take(n).copied().collect();
            let b = SmallBuf::new(&src);
            assert_eq!(&*b, &src[..], "{n}");
            assert_eq!(b.is_inline(), n <= INLINE);
            let header = if n < 128 { 1 } else { 2 };
            assert_eq!(b.heap_bytes(), if n <= INLINE { 0 } else { header + n });
            assert_eq!(b.clone(), b);
        }
        assert!(SmallBuf::default().is_empty());
        assert_eq!(SmallBuf::default(), SmallBuf::new(b""));
    }

    #[test]
    fn thin_buffers_are_one_pointer_and_one_exact_allocation() {
        assert_eq!(size_of::<ThinBuf>(), 8);
        enum Outer {
            _Small(SmallBuf),
            _Thin(ThinBuf),
            _Big(Box<u64>),
        }
        assert_eq!(size_of::<Outer>(), 16);
        for n in [0usize, 1, 127, 128, 20_000] {
            let src: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let b = ThinBuf::build(|out| out.extend_from_slice(&src));
            assert_eq!(&*b, &src[..]);
            assert_eq!(b.heap_bytes(), n + if n < 128 { 1 } else { 2 } + usize::from(n >= 16_384));
            assert_eq!(b.clone(), b);
        }
        let b = ThinBuf::concat(&[b"ab", b"", b"cd"]);
        assert_eq!(&*b.spliced(1..3, b"XYZ"), b"aXYZd");
        assert_eq!(&*b.spliced(0..4, b""), b"");
    }

    #[test]
    fn concat_and_splice_cross_the_inline_limit() {
        let b = SmallBuf::concat(&[b"hello ", b"", b"world"]);
        assert_eq!(&*b, b"hello world");
        let grown = b.spliced(5..6, b", wonderful ");
        assert_eq!(&*grown, b"hello, wonderful world");
        assert!(!grown.is_inline());
        let shrunk = grown.spliced(5..17, b" ");
        assert_eq!((&*shrunk, shrunk.is_inline()), (&b"hello world"[..], true));
        let big = SmallBuf::new(&[7; 100_000]);
        assert_eq!((big.len(), big.heap_bytes()), (100_000, 100_003));
        assert_eq!(&*big.spliced(1..100_000, b""), &[7][..]);
    }
}
