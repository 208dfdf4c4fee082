//! Encoding values as Redis 7.0 saves them (`rdbSaveObject`), in the RDB type matching the value's
//! current encoding, with listpacks byte-identical to the ones Redis builds:
//!
//! | Moon value | RDB type | body |
//! | --- | --- | --- |
//! | string | 0 | int8/16/32 when canonical and ≤ 11 bytes, LZF when `compression` and > 20 bytes and it saves ≥ 4 bytes |
//! | list | 18 QUICKLIST_2 | packed listpack nodes split as RPUSH would under `list-max-listpack-size` |
//! | set intset / hashtable | 11 / 2 | intset blob (narrowest width) / members |
//! | hash listpack / hashtable | 16 / 4 | listpack of field, value / pairs |
//! | zset listpack / skiplist | 17 / 5 | listpack of member, score / members from the highest score, binary doubles |
//!
//! Listpack entries: strings that are canonical integers (`string2ll`, ≤ 20 bytes) become integers in the
//! smallest of 7-bit, 13-bit, 16/24/32/64-bit forms; zset scores are integers when `double2ll` holds
//! (integral and within ±2^62), otherwise `%.17g` text.

use super::lzf;
use super::types::*;
use crate::config::EngineConfig;
use crate::types::listpack;
use crate::types::zset;
use crate::types::{HashValue, ListValue, SetValue, StrValue, Value, ZSetValue};
use crate::util::parse_i64;

/// How to write (the `rdbcompression`, `rdbchecksum` and `list-max-listpack-size` settings, and the AUX
/// fields of the header).
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// `rdbcompression`: LZF for strings (and blobs) longer than 20 bytes.
    pub compression: bool,
    /// `rdbchecksum`: store the CRC-64, else 0.
    pub checksum: bool,
    /// `list-max-listpack-size`, for splitting lists into nodes.
    pub list_max_listpack_size: i64,
    /// The `redis-ver` AUX field.
    pub redis_ver: String,
    /// The `ctime` AUX field (unix seconds); `None` = now.
    pub ctime_secs: Option<i64>,
    /// The `used-mem` AUX field.
    pub used_mem: u64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: true,
            checksum: true,
            list_max_listpack_size: -2,
            redis_ver: "7.0.15".into(),
            ctime_secs: None,
            used_mem: 0,
        }
    }
}

impl WriteOptions {
    /// Defaults with the list node size of `cfg`.
    pub fn from_config(cfg: &EngineConfig) -> Self {
        WriteOptions { list_max_listpack_size: cfg.list_max_listpack_size, ..WriteOptions::default() }
    }
}

/// An RDB length (FORMATS.md §4.4).
pub(crate) fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// The int8/16/32 string encodings, when `v` fits one.
fn put_int_encoded(out: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(b) = i8::try_from(v) {
        out.extend_from_slice(&[0xc0, b as u8]);
    } else if let Ok(h) = i16::try_from(v) {
        out.push(0xc1);
        out.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(v) {
        out.push(0xc2);
        out.extend_from_slice(&w.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// A string as `rdbSaveRawString` writes it.
pub(crate) fn put_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = parse_i64(s) {
            if put_int_encoded(out, v) {
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(c) = lzf::compress(s, s.len() - 4) {
            out.push(0xc3);
            put_len(out, c.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// An integer string value (`rdbSaveLongLongAsStringObject`): int-encoded when it fits 32 bits, else its
/// decimal text, never compressed.
fn put_i64_string(out: &mut Vec<u8>, v: i64) {
    if !put_int_encoded(out, v) {
        let text = v.to_string();
        put_len(out, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
    }
}

/// Builds a listpack exactly as Redis's `lpAppend` does.
pub(crate) struct Listpack {
    buf: Vec<u8>,
    count: usize,
}

impl Listpack {
    pub fn new() -> Self {
        Listpack { buf: vec![0; 6], count: 0 }
    }

    /// Size of the finished listpack (header, entries, terminator): Redis's `lpBytes`.
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn push_int(&mut self, v: i64) {
        listpack::put_int(&mut self.buf, v);
        self.count += 1;
    }

    /// A string entry; canonical integers are stored as integers.
    pub fn push(&mut self, s: &[u8]) {
        if let Some(v) = parse_i64(s) {
            return self.push_int(v);
        }
        listpack::put_str(&mut self.buf, s);
        self.count += 1;
    }

    /// A zset score, as Redis stores it (see [`put_score`]).
    pub fn push_score(&mut self, score: f64) {
        zset::put_score(&mut self.buf, score);
        self.count += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xff);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let count = self.count.min(65535) as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// Elements at least this long get a node of their own, stored plain (Redis's `packed_threshold`, 1 GB).
const PLAIN_THRESHOLD: usize = 1 << 30;
/// Node byte limits for `list-max-listpack-size` -1 ... -5 (smaller values use the last).
const NODE_BYTES: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// A node never grows past this under a count limit (`SIZE_SAFETY_LIMIT`).
const SAFETY_LIMIT: usize = 8192;
/// What Redis 7.0.15 assumes one entry adds to a listpack on top of its bytes (`SIZE_ESTIMATE_OVERHEAD`).
const ENTRY_OVERHEAD: usize = 8;

/// Whether an element of `len` bytes may join a node (`_quicklistNodeAllowInsert`, checked against the
/// node splits of lists saved by redis-server 7.0.15).
fn node_accepts(node: &Listpack, len: usize, fill: i64) -> bool {
    let new_size = node.bytes() + len + ENTRY_OVERHEAD;
    if fill < 0 {
        let level = usize::try_from(-fill - 1).unwrap_or(usize::MAX).min(NODE_BYTES.len() - 1);
        new_size <= NODE_BYTES[level]
    } else {
        new_size <= SAFETY_LIMIT && (node.count() as u64) < (fill as u64).max(1)
    }
}

/// A list as QUICKLIST_2: node count, then per node its container (1 plain, 2 packed) and its string.
fn put_list(out: &mut Vec<u8>, l: &ListValue, opts: &WriteOptions) {
    enum Node<'a> {
        Plain(&'a [u8]),
        Packed(Vec<u8>),
    }
    let mut nodes = Vec::new();
    let mut cur: Option<Listpack> = None;
    for e in l.iter() {
        if e.len() >= PLAIN_THRESHOLD {
            nodes.extend(cur.take().map(|n| Node::Packed(n.finish())));
            nodes.push(Node::Plain(e));
            continue;
        }
        match &mut cur {
            Some(n) if node_accepts(n, e.len(), opts.list_max_listpack_size) => n.push(e),
            _ => {
                nodes.extend(cur.take().map(|n| Node::Packed(n.finish())));
                let mut n = Listpack::new();
                n.push(e);
                cur = Some(n);
            }
        }
    }
    nodes.extend(cur.map(|n| Node::Packed(n.finish())));
    put_len(out, nodes.len() as u64);
    for n in &nodes {
        match n {
            Node::Plain(e) => {
                put_len(out, 1);
                put_string(out, e, opts.compression);
            }
            Node::Packed(lp) => {
                put_len(out, 2);
                put_string(out, lp, opts.compression);
            }
        }
    }
}

/// An intset blob with the narrowest width that holds every member.
fn intset_blob(v: &[i64]) -> Vec<u8> {
    let (lo, hi) = (v.first().copied().unwrap_or(0), v.last().copied().unwrap_or(0));
    let width: usize = if i16::try_from(lo).is_ok() && i16::try_from(hi).is_ok() {
        2
    } else if i32::try_from(lo).is_ok() && i32::try_from(hi).is_ok() {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * v.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    for &x in v {
        out.extend_from_slice(&x.to_le_bytes()[..width]);
    }
    out
}

/// Appends the encoding of `v` to `out` and returns its RDB type.
pub(crate) fn encode_value_into(v: &Value, opts: &WriteOptions, out: &mut Vec<u8>) -> u8 {
    let compress = opts.compression;
    match v {
        Value::Str(StrValue::Int(i)) => {
            put_i64_string(out, *i);
            STRING
        }
        Value::Str(s) => {
            s.with_bytes(|b| put_string(out, b, compress));
            STRING
        }
        Value::List(l) => {
            put_list(out, l, opts);
            LIST_QUICKLIST_2
        }
        Value::Set(s) => match s {
            SetValue::Intset(ints) => {
                put_string(out, &intset_blob(&ints.to_vec()), compress);
                SET_INTSET
            }
            SetValue::Table(t) => {
                put_len(out, t.len() as u64);
                for e in t.iter() {
                    put_string(out, &e.key, compress);
                }
                SET
            }
            // Saved as Redis 7.0 saves any set of strings (it has no listpack sets).
            SetValue::Packed(p) => {
                put_len(out, p.len() as u64);
                for m in p.iter() {
                    put_string(out, m, compress);
                }
                SET
            }
        },
        Value::Hash(h) => match h {
            HashValue::Listpack(pairs) => {
                let numeric = |s: &[u8]| parse_i64(s).is_some();
                match pairs.as_listpack() {
                    // Already the listpack Redis writes when no element is an integer (Redis stores those
                    // as integer entries; Moon's buffer holds strings only): saved as it is.
                    Some(lp) if !pairs.iter().any(|(f, x)| numeric(f) || numeric(x)) => put_string(out, lp, compress),
                    _ => {
                        let mut lp = Listpack::new();
                        for (f, x) in pairs {
                            lp.push(f);
                            lp.push(x);
                        }
                        put_string(out, &lp.finish(), compress);
                    }
                }
                HASH_LISTPACK
            }
            HashValue::Table(t) => {
                put_len(out, t.len() as u64);
                for e in t.iter() {
                    put_string(out, &e.key, compress);
                    put_string(out, &e.value, compress);
                }
                HASH
            }
        },
        Value::ZSet(z) => match z {
            ZSetValue::Listpack(items) => {
                // The listpack as it is unless a member is an integer, which Redis stores as one (the
                // scores already are as Redis stores them).
                if let Some(lp) = items.as_listpack().filter(|_| items.iter().all(|(m, _)| parse_i64(m).is_none())) {
                    put_string(out, lp, compress);
                    return ZSET_LISTPACK;
                }
                let mut lp = Listpack::new();
                for (m, s) in items {
                    lp.push(m);
                    lp.push_score(s);
                }
                put_string(out, &lp.finish(), compress);
                ZSET_LISTPACK
            }
            ZSetValue::Skiplist(_) => {
                put_len(out, z.len() as u64);
                // From the highest score down, as Redis walks its skiplist backwards.
                let n = z.len();
                for (m, s) in z.range(n.saturating_sub(1), n, true) {
                    put_string(out, m, compress);
                    out.extend_from_slice(&s.to_le_bytes());
                }
                ZSET_2
            }
        },
    }
}

/// The RDB type and body of `v` (DUMP's payload without its footer).
pub fn encode_value(v: &Value, opts: &WriteOptions) -> (u8, Vec<u8>) {
    let mut out = Vec::new();
    let ty = encode_value_into(v, opts, &mut out);
    (ty, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(items: &[&[u8]]) -> Vec<u8> {
        let mut l = Listpack::new();
        for i in items {
            l.push(i);
        }
        l.finish()
    }

    /// The HASH_LISTPACK and ZSET_LISTPACK bytes of FORMATS.md §4.7.
    #[test]
    fn listpacks_like_redis() {
        let mut z = Listpack::new();
        z.push(b"a");
        z.push_score(1.5);
        z.push(b"b");
        z.push_score(2.0);
        assert_eq!(
            z.finish(),
            [0x14, 0, 0, 0, 4, 0, 0x81, b'a', 2, 0x83, b'1', b'.', b'5', 4, 0x81, b'b', 2, 2, 1, 0xff]
        );
        assert_eq!(lp(&[b"f", b"v"]), [13, 0, 0, 0, 2, 0, 0x81, b'f', 2, 0x81, b'v', 2, 0xff]);
    }

    #[test]
    fn listpack_integers_roundtrip() {
        let vals = [0i64, 127, 128, -1, -4096, 4095, 4096, -32768, 32767, 32768, -(1 << 23), (1 << 23) - 1, 1 << 23];
        let more = [i64::from(i32::MIN), i64::from(i32::MAX), i64::MIN, i64::MAX];
        let mut l = Listpack::new();
        for v in vals.iter().chain(&more) {
            l.push_int(*v);
        }
        let bytes = l.finish();
        let mut out = Vec::new();
        super::super::blobs::listpack(&bytes, &mut out).unwrap();
        let got: Vec<i64> =
            out.iter().map(|e| if let super::super::blobs::Elem::Int(v) = e { *v } else { 0 }).collect();
        assert_eq!(got, vals.iter().chain(&more).copied().collect::<Vec<_>>());
    }

    #[test]
    fn strings_like_rdb_save_raw_string() {
        let enc = |s: &[u8]| {
            let mut v = Vec::new();
            put_string(&mut v, s, true);
            v
        };
        assert_eq!(enc(b"12345"), [0xc1, 0x39, 0x30]);
        assert_eq!(enc(b"-5"), [0xc0, 0xfb]);
        assert_eq!(enc(b"2000000000"), [0xc2, 0x00, 0x94, 0x35, 0x77]);
        assert_eq!(enc(b"0123"), [4, b'0', b'1', b'2', b'3']);
        assert_eq!(enc(b"9223372036854775807")[0], 19);
        assert_eq!(enc(&[b'a'; 21]), [0xc3, 0x06, 0x15, 0x01, 0x61, 0x61, 0xe0, 0x0a, 0x00]);
        assert_eq!(enc(&[b'b'; 20])[0], 20);
        let mut v = Vec::new();
        put_len(&mut v, 16384);
        put_len(&mut v, 1 << 32);
        assert_eq!(v, [0x80, 0, 0, 0x40, 0, 0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn intset_widths() {
        assert_eq!(intset_blob(&[1, 2])[0], 2);
        assert_eq!(intset_blob(&[-70000, 2])[0], 4);
        assert_eq!(intset_blob(&[1, i64::MAX])[0], 8);
    }
}
