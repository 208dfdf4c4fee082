//! LZF, the compression of RDB strings (`11000011 <len compressed> <len plain> <bytes>`, FORMATS.md §4.4).
//!
//! Stream format: a control byte `c`. If `c < 32`, `c + 1` literal bytes follow. Otherwise it is a back
//! reference: length `c >> 5` (7 means "7 plus the next byte"), plus 2; distance `((c & 31) << 8) + next
//! byte + 1` back from the end of the output; source and destination may overlap (run-length style).
//!
//! The compressor finds matches the way liblzf's default "very fast" mode does (a 64 Ki-slot table indexed
//! by a hash of the next three bytes, the newest position wins, two positions re-hashed after each match),
//! so for ordinary inputs its output is the bytes redis-server writes and Moon's DUMP payloads equal
//! Redis's. Any valid stream decompresses the same, so this is a nicety, not a requirement.

/// Literal runs hold at most 32 bytes.
const MAX_LIT: usize = 32;
/// Back references reach at most 8192 bytes back.
const MAX_OFF: usize = 1 << 13;
/// Longest back reference: 7 + 255 + 2 bytes.
const MAX_REF: usize = (1 << 8) + (1 << 3);
const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;

/// Largest expansion a valid stream can encode: a 3-byte reference yields 264 bytes.
pub const MAX_RATIO: usize = 88;

fn slot(h: u32) -> usize {
    ((h >> (24 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// Length of the match at `ip` against `r` (at least 3 bytes already known equal). liblzf first takes up to 16
/// steps without looking at `maxlen` when more than 16 bytes remain, so a match may run up to two bytes past
/// `maxlen` (still inside the input); Redis's output has such matches, so this does too.
fn match_len(input: &[u8], r: usize, ip: usize, maxlen: usize) -> usize {
    let mut len = 2;
    if maxlen > 16 {
        for _ in 0..16 {
            len += 1;
            if input[r + len] != input[ip + len] {
                return len;
            }
        }
    }
    loop {
        len += 1;
        if len >= maxlen || input[r + len] != input[ip + len] {
            return len;
        }
    }
}

/// The match table, kept per thread: a fresh zeroed 256 KiB table per string made saving a million short
/// strings take seconds. Each slot holds `generation << 32 | position`; a slot of an earlier call reads as
/// empty (position 0), exactly as a zeroed table would, so the output does not change.
struct Table {
    slots: Vec<u64>,
    generation: u64,
}

impl Table {
    /// The position stored in slot `s` by this call (0 = none), replaced by `ip`.
    fn swap(&mut self, s: usize, ip: usize) -> usize {
        let old = std::mem::replace(&mut self.slots[s], (self.generation << 32) | ip as u64);
        if old >> 32 == self.generation {
            (old & 0xffff_ffff) as usize
        } else {
            0
        }
    }
}

thread_local! {
    static TABLE: std::cell::RefCell<Table> = const { std::cell::RefCell::new(Table { slots: Vec::new(), generation: 0 }) };
}

/// Compresses `input` into at most `max_out` bytes; `None` when it does not fit (the caller then stores the
/// string as is). Redis asks for `len - 4` bytes at most, so only strings that shrink get compressed.
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    // Positions are stored in 32 bits; longer inputs (never produced by Redis) use a table of their own.
    if input.len() as u64 >= 1 << 32 {
        return compress_with(input, max_out, &mut Table { slots: vec![0; HSIZE], generation: 1 });
    }
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        if t.slots.is_empty() || t.generation == u64::from(u32::MAX) {
            *t = Table { slots: vec![0; HSIZE], generation: 0 };
        }
        t.generation += 1;
        compress_with(input, max_out, &mut t)
    })
}

fn compress_with(input: &[u8], max_out: usize, table: &mut Table) -> Option<Vec<u8>> {
    let n = input.len();
    if n == 0 {
        return None;
    }
    // Positions of earlier 3-byte sequences; 0 doubles as "empty", which is fine because a match at
    // position 0 is never taken (as in liblzf).
    let mut out: Vec<u8> = Vec::with_capacity(max_out.min(n + n / 16 + 8));
    // `hdr` is the index of the current literal run's control byte, `lit` its length so far.
    let mut hdr = 0;
    let mut lit = 0usize;
    out.push(0);
    let mut ip = 0usize;
    let mut h: u32 = if n >= 2 { (u32::from(input[0]) << 8) | u32::from(input[1]) } else { 0 };

    while ip + 2 < n {
        h = (h << 8) | u32::from(input[ip + 2]);
        let s = slot(h);
        let r = table.swap(s, ip);
        let is_match = r > 0
            && r < ip
            && ip - r - 1 < MAX_OFF
            && input[r + 2] == input[ip + 2]
            && input[r] == input[ip]
            && input[r + 1] == input[ip + 1];
        if is_match {
            let off = ip - r - 1;
            let maxlen = (n - ip - 2).min(MAX_REF);
            let undo = usize::from(lit == 0);
            if out.len() + 4 >= max_out && out.len() - undo + 4 >= max_out {
                return None;
            }
            // Close the literal run (or drop its unused control byte).
            if lit == 0 {
                out.pop();
            } else {
                out[hdr] = (lit - 1) as u8;
            }
            let len = match_len(input, r, ip, maxlen) - 2;
            ip += 1;
            if len < 7 {
                out.push(((off >> 8) + (len << 5)) as u8);
            } else {
                out.push(((off >> 8) + (7 << 5)) as u8);
                out.push((len - 7) as u8);
            }
            out.push(off as u8);
            hdr = out.len();
            lit = 0;
            out.push(0);
            ip += len + 1;
            if ip + 2 >= n {
                break;
            }
            // Index the last two positions of the match, as liblzf's very-fast mode does.
            ip -= 2;
            h = (u32::from(input[ip]) << 8) | u32::from(input[ip + 1]);
            for _ in 0..2 {
                h = (h << 8) | u32::from(input[ip + 2]);
                table.swap(slot(h), ip);
                ip += 1;
            }
        } else {
            if out.len() >= max_out {
                return None;
            }
            lit += 1;
            out.push(input[ip]);
            ip += 1;
            if lit == MAX_LIT {
                out[hdr] = (MAX_LIT - 1) as u8;
                hdr = out.len();
                lit = 0;
                out.push(0);
            }
        }
    }
    if out.len() + 3 > max_out {
        return None;
    }
    while ip < n {
        lit += 1;
        out.push(input[ip]);
        ip += 1;
        if lit == MAX_LIT {
            out[hdr] = (MAX_LIT - 1) as u8;
            hdr = out.len();
            lit = 0;
            out.push(0);
        }
    }
    if lit == 0 {
        out.pop();
    } else {
        out[hdr] = (lit - 1) as u8;
    }
    (out.len() <= max_out).then_some(out)
}

/// Decompresses `input`, which must yield exactly `out_len` bytes. `None` for any malformed stream.
/// The caller bounds `out_len` (at most [`MAX_RATIO`] times the input) before calling.
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    // The output is allocated once, at its exact length (a raw string value keeps the buffer as it is). A
    // stream claiming more than a MiB and more than four times its size is walked first, without writing:
    // a damaged length then costs no more than the bytes that back it.
    if out_len > input.len().saturating_mul(4).saturating_add(64).max(1 << 20) && output_len(input)? != out_len {
        return None;
    }
    let mut out = vec![0; out_len];
    (decompress_into(input, &mut out)? == out_len).then_some(out)
}

/// One instruction of an LZF stream.
enum Op {
    /// Copy `len` bytes of the input, from `at`.
    Literal { at: usize, len: usize },
    /// Copy `len` bytes of the output, from `back` bytes before the end.
    Back { back: usize, len: usize },
}

/// Reads the instruction at `*ip` (which must be inside `input`) and moves past it; None when the input ends
/// inside it.
#[inline(always)]
fn next_op(input: &[u8], ip: &mut usize) -> Option<Op> {
    let ctrl = usize::from(input[*ip]);
    *ip += 1;
    if ctrl < 32 {
        let (at, len) = (*ip, ctrl + 1);
        if at + len > input.len() {
            return None;
        }
        *ip += len;
        return Some(Op::Literal { at, len });
    }
    let mut len = ctrl >> 5;
    if len == 7 {
        len += usize::from(*input.get(*ip)?);
        *ip += 1;
    }
    let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(*ip)?) + 1;
    *ip += 1;
    Some(Op::Back { back, len: len + 2 })
}

/// The length of `input`'s output, None if the stream is malformed.
fn output_len(input: &[u8]) -> Option<usize> {
    let (mut ip, mut op) = (0, 0usize);
    while ip < input.len() {
        match next_op(input, &mut ip)? {
            Op::Literal { len, .. } => op += len,
            Op::Back { back, len } if back <= op => op += len,
            Op::Back { .. } => return None,
        }
    }
    Some(op)
}

/// Decompresses `input` into `out` (as long as the whole output must be): the number of bytes written, or
/// None when the stream is malformed or does not fit.
///
/// Copies move fixed-size chunks rather than exactly the bytes asked for, which cost a `memcpy` call per
/// run: a literal run is copied as 32 bytes where `out` has room for them. The bytes it writes past the end
/// of the run are overwritten by the runs that follow, and nothing reads them before: a reference only reads
/// bytes before its start, and no copy writes before its own start.
fn decompress_into(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let end = out.len();
    let (mut ip, mut op) = (0, 0);
    while ip < input.len() {
        match next_op(input, &mut ip)? {
            Op::Literal { at, len } => {
                if op + len > end {
                    return None;
                }
                if at + MAX_LIT <= input.len() && op + MAX_LIT <= end {
                    out[op..op + MAX_LIT].copy_from_slice(&input[at..at + MAX_LIT]);
                } else {
                    out[op..op + len].copy_from_slice(&input[at..at + len]);
                }
                op += len;
            }
            Op::Back { back, len } => {
                if back > op || op + len > end {
                    return None;
                }
                copy_back(out, op, back, len);
                op += len;
            }
        }
    }
    Some(op)
}

/// Writes `out[at..at + len]`, each byte a copy of the one `back` places before it (`back <= at`,
/// `at + len <= out.len()`); when the source overlaps what is being written (`back < len`) the output repeats
/// with period `back`. Distances of 8 bytes or more go in chunks; shorter ones (a repeated byte, a short
/// pattern) and short copies a byte at a time.
fn copy_back(out: &mut [u8], at: usize, back: usize, len: usize) {
    let from = at - back;
    if back >= 16 && len >= 16 {
        copy_chunks::<16>(out, from, at, len);
    } else if back >= 8 && len >= 8 {
        copy_chunks::<8>(out, from, at, len);
    } else if back == 1 {
        let b = out[from];
        out[at..at + len].fill(b);
    } else {
        for i in at..at + len {
            out[i] = out[i - back];
        }
    }
}

/// [`copy_back`] in `K`-byte chunks (`at - from >= K`, `len >= K`): each chunk reads bytes at least `K` places
/// behind what it writes, so only bytes already final. A last partial chunk is taken as the `K` bytes that
/// end the copy, which rewrites some bytes with the values they already hold.
#[inline(always)]
fn copy_chunks<const K: usize>(out: &mut [u8], from: usize, at: usize, len: usize) {
    let mut i = 0;
    while i + K <= len {
        out.copy_within(from + i..from + i + K, at + i);
        i += K;
    }
    if i < len {
        let last = len - K;
        out.copy_within(from + last..from + last + K, at + last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(data: &[u8]) {
        if let Some(c) = compress(data, data.len().saturating_sub(4)) {
            assert!(c.len() <= data.len() - 4);
            assert_eq!(decompress(&c, data.len()).as_deref(), Some(data));
        }
        // With room to spare every input compresses (possibly growing).
        let c = compress(data, data.len() * 2 + 16).expect("room");
        assert_eq!(decompress(&c, data.len()).as_deref(), Some(data), "{data:?}");
    }

    #[test]
    fn roundtrips() {
        roundtrip(b"a");
        roundtrip(b"ab");
        roundtrip(b"abc");
        roundtrip(&[b'a'; 21]);
        roundtrip(&b"abcabcabcabcabcabcabcabcabc".repeat(40));
        let noise: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        roundtrip(&noise);
        let text: Vec<u8> = (0..3000).flat_map(|i| format!("line {i:05} of text\n").into_bytes()).collect();
        roundtrip(&text);
        let long_run = vec![7u8; 100_000];
        roundtrip(&long_run);
        // Over a MiB and more than 4x: the length is walked before the output is allocated.
        roundtrip(&vec![3u8; 3 << 20]);
    }

    /// What redis-server 7.0 stored for `SET k aaaaaaaaaaaaaaaaaaaaa` (21 bytes): `c3 06 15 01 61 61 e0 0a 00`,
    /// an LZF stream of 6 bytes after the two lengths (the match runs past liblzf's `maxlen`).
    #[test]
    fn same_bytes_as_redis_for_a_run() {
        let c = compress(&[b'a'; 21], 17).expect("compressible");
        assert_eq!(c, [0x01, 0x61, 0x61, 0xe0, 0x0a, 0x00]);
    }

    /// The per-thread table, reused across calls, gives the bytes a zeroed table gives: earlier calls'
    /// positions are invisible (they would otherwise be taken as matches into the new input).
    #[test]
    fn reused_table_matches_a_fresh_one() {
        let inputs: Vec<Vec<u8>> = vec![
            (0..5000).flat_map(|i| format!("key:{i} ").into_bytes()).collect(),
            b"abcabcabcabcabcabcabcabcabcabc".to_vec(),
            vec![b'x'; 64],
            (0..200).map(|i| (i * 7 % 13) as u8 + b'a').collect(),
        ];
        for round in 0..3 {
            for input in &inputs {
                let fresh = compress_with(input, input.len(), &mut Table { slots: vec![0; HSIZE], generation: 1 });
                assert_eq!(compress(input, input.len()), fresh, "round {round}");
            }
        }
    }

    /// Chunked back references write what copying one byte at a time writes, for every distance and length
    /// a stream can encode (periods that do and do not divide the length, sources that do not overlap), and
    /// nothing after the copy.
    #[test]
    fn back_references_match_a_byte_by_byte_copy() {
        let seed: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        for back in (1..=300).step_by(7).chain(1..=20) {
            for len in 2..=MAX_REF {
                let mut want = seed[..back].to_vec();
                for _ in 0..len {
                    want.push(want[want.len() - back]);
                }
                let mut got = seed[..back].to_vec();
                got.resize(back + len + 16, 0xee);
                copy_back(&mut got, back, back, len);
                assert_eq!(got[..back + len], want[..], "back {back} len {len}");
                assert!(got[back + len..].iter().all(|&b| b == 0xee), "back {back} len {len}: wrote past the end");
            }
        }
    }

    /// The fast path's results equal the walk-first path's on valid and damaged streams alike: every
    /// prefix and every one-byte change of some compressed inputs.
    #[test]
    fn chunked_copies_decode_like_the_length_walk() {
        let inputs: Vec<Vec<u8>> = vec![
            (0..3000).flat_map(|i| format!("field:{i} ").into_bytes()).collect(),
            b"abcdefgh".repeat(40),
            vec![b'x'; 700],
            (0..900u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 % 5).collect(),
        ];
        for data in &inputs {
            let c = compress(data, data.len()).expect("compressible");
            assert_eq!(decompress(&c, data.len()).as_deref(), Some(&data[..]));
            let mut damaged = c.clone();
            for i in (0..c.len()).step_by(3) {
                damaged[i] ^= 0x5a;
                let want = output_len(&damaged);
                for claim in [data.len(), want.unwrap_or(0)] {
                    let got = decompress(&damaged, claim);
                    assert_eq!(got.is_some(), want == Some(claim), "byte {i} claim {claim}");
                    if let (Some(got), Some(_)) = (&got, want) {
                        assert_eq!(got.len(), claim);
                    }
                }
                damaged[i] = c[i];
            }
            for n in 0..c.len() {
                assert_eq!(decompress(&c[..n], data.len()), None, "prefix {n}");
            }
        }
    }

    /// The format decoded one byte at a time, the obvious way: what the chunked copies must agree with.
    fn reference(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut ip = 0;
        while ip < input.len() {
            let ctrl = usize::from(input[ip]);
            ip += 1;
            if ctrl < 32 {
                for _ in 0..=ctrl {
                    out.push(*input.get(ip)?);
                    ip += 1;
                }
            } else {
                let mut len = ctrl >> 5;
                if len == 7 {
                    len += usize::from(*input.get(ip)?);
                    ip += 1;
                }
                let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(ip)?) + 1;
                ip += 1;
                for _ in 0..len + 2 {
                    out.push(out[out.len().checked_sub(back)?]);
                }
            }
            if out.len() > out_len {
                return None;
            }
        }
        (out.len() == out_len).then_some(out)
    }

    /// Arbitrary bytes as streams (most malformed, some valid, with short and long references at every
    /// distance), each with the length it decodes to and lengths next to it: the same result as the
    /// reference decoder, every time.
    #[test]
    fn random_streams_decode_like_the_reference() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000 {
            let n = (next() % 64) as usize + 1;
            let mut stream: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            // A valid start (a literal) in most rounds, so references have something to copy.
            if round % 4 != 0 {
                stream[0] %= 32;
            }
            let len = reference(&stream, usize::MAX).map_or(0, |v| v.len());
            for claim in [len, len.saturating_sub(1), len + 1, (next() % 300) as usize] {
                assert_eq!(decompress(&stream, claim), reference(&stream, claim), "{stream:?} claim {claim}");
            }
        }
    }

    /// The output is reserved once, to the exact length (a raw string value keeps the buffer as it is).
    #[test]
    fn output_is_reserved_exactly() {
        let data = b"abcdefgh".repeat(40);
        let c = compress(&data, data.len()).expect("compressible");
        assert!(c.len() * 4 + 64 < data.len(), "a stream that expands more than 4x");
        let out = decompress(&c, data.len()).expect("valid");
        assert_eq!((out.len(), out.capacity()), (data.len(), data.len()));
    }

    #[test]
    fn refuses_what_does_not_fit_and_bad_streams() {
        let noise: Vec<u8> = (0..100u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        assert_eq!(compress(&noise, 96), None);
        assert_eq!(decompress(&[0x20, 0x05], 3), None, "reference before the start");
        assert_eq!(decompress(&[0x02, b'a', b'b'], 3), None, "short literal");
        assert_eq!(decompress(&[0x00, b'a'], 2), None, "short output");
        assert_eq!(decompress(&[0x00, b'a', 0x20], 10), None, "truncated reference");
        assert_eq!(decompress(&[0x00, b'a', 0x20, 0x00], 4), Some(b"aaaa".to_vec()));
    }
}
