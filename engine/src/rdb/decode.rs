//! Decoding one value (`rdbLoadObject`): every RDB type id into Moon's [`Value`], choosing the encoding
//! with the engine's thresholds the way Redis 7.0 does on load (FORMATS.md §4.3):
//!
//! | RDB type | Moon encoding |
//! | --- | --- |
//! | 0 string | `int` when canonical and ≤ 20 bytes, else `embstr` (≤ 44 bytes) or `raw` (`tryObjectEncoding`) |
//! | 1, 10, 14, 18 lists | quicklist (the only list encoding) |
//! | 2 set | intset when every member is an integer and count ≤ `set-max-intset-entries`, else hashtable (packed within `set-max-listpack-*`, still reported as hashtable) |
//! | 11 intset, 20 set listpack | same rule (7.0 has no listpack sets) |
//! | 4 hash | listpack when count ≤ `hash-max-listpack-entries` and every field and value ≤ `hash-max-listpack-value` |
//! | 9 zipmap | same rule as type 4 |
//! | 13 ziplist, 16 listpack hashes | listpack unless count > `hash-max-listpack-entries` (length not checked, as 7.0) |
//! | 3, 5 zsets | listpack when count ≤ `zset-max-listpack-entries` and members ≤ `zset-max-listpack-value` |
//! | 12 ziplist, 17 listpack zsets | listpack unless count > `zset-max-listpack-entries` |
//!
//! Like a `sanitize-dump-payload yes` load, duplicates (set members, hash fields, zset members) and NaN
//! scores are errors; empty collections are reported as [`Decoded::Empty`] (Redis skips such keys).
//! Streams and module values are validated and skipped ([`Decoded::Skipped`]).
//!
//! [`read_object`] depends only on the bytes of one value, so a future parallel loader can hand value
//! ranges found by a quick scan to worker threads.

use super::blobs::{self, format_i64, Elem, ElemBytes};
use super::error::{err, ErrorKind, RdbError, Result};
use super::input::{Input, RdbStr};
use super::skip;
use super::types::*;
use crate::config::EngineConfig;
use crate::table::{Table, NO_EXPIRE};
use crate::types::hash::PackedPairs;
use crate::types::listpack;
use crate::types::set::{IntSet, PackedSet};
use crate::types::string::EMBSTR_LIMIT;
use crate::types::zset::{compare, Limits, PackedEntries};
use crate::types::{HashValue, ListValue, SetValue, StrValue, Value, ZSetValue};
use crate::util::parse_i64;
use crate::util::{padded_word, parse_double_text};
use std::borrow::Cow;
use std::cell::Cell;

/// What one value decoded to.
pub(crate) enum Decoded {
    Value(Value),
    /// A collection with no elements: Redis skips the key ("rdbLoadObject skipping empty key").
    Empty,
    /// A value Moon cannot hold; it was validated and passed over.
    Skipped(SkipKind),
}

/// Kinds of values the loader passes over.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipKind {
    /// A stream (RDB types 15, 19, 21).
    Stream,
    /// A module value (RDB type 7) of the named module type.
    Module(String),
}

/// Most elements reserved up front from a count read in the file. A count is already bounded by the bytes
/// left, but an element in memory is larger than its smallest encoding, so a hostile count could still
/// reserve many times the file's size; past this, vectors grow as elements actually arrive.
const PREALLOC: usize = 1 << 16;

/// Context for turning a blob reader's failure into an error at the blob's offset.
fn blob_err(at: usize) -> impl Fn(&'static str) -> RdbError {
    move |name| RdbError::new(ErrorKind::BadBlob(name), at)
}

fn bad_value<T>(msg: &str, at: usize) -> Result<T> {
    err(ErrorKind::BadValue(msg.into()), at)
}

/// Reads the value of RDB type `ty` at the cursor. `valkey` selects the meaning of type ids above 21.
pub(crate) fn read_object(inp: &mut Input, ty: u8, cfg: &EngineConfig, valkey: bool) -> Result<Decoded> {
    let at = inp.pos();
    let value = match ty {
        STRING => Value::Str(str_value(inp.rdb_str()?)),
        LIST => return list_plain(inp),
        LIST_ZIPLIST | LIST_QUICKLIST | LIST_QUICKLIST_2 => return list_nodes(inp, ty),
        SET => return set_plain(inp, cfg),
        SET_INTSET => {
            let blob = inp.blob()?;
            let (width, members) = blobs::intset(&blob).map_err(blob_err(at))?;
            let ints = IntSet::from_le(width, members);
            Value::Set(if ints.len() > cfg.set_max_intset_entries {
                let mut t = Table::with_capacity(ints.len());
                let mut buf = [0u8; 20];
                for i in ints.iter() {
                    t.insert_ref(format_i64(i, &mut buf), (), NO_EXPIRE);
                }
                SetValue::Table(Box::new(t))
            } else {
                SetValue::Intset(ints)
            })
        }
        SET_LISTPACK => {
            let blob = inp.blob()?;
            return with_elems(|elems| {
                blobs::listpack(&blob, elems).map_err(blob_err(at))?;
                set_from(elems.iter().map(|&e| Member::Elem(e)).collect(), cfg, at)
            });
        }
        ZSET | ZSET_2 => return zset_plain(inp, ty, cfg),
        ZSET_ZIPLIST | ZSET_LISTPACK => {
            let blob = inp.blob()?;
            return with_elems(|elems| {
                let parsed =
                    if ty == ZSET_ZIPLIST { blobs::ziplist(&blob, elems) } else { blobs::listpack(&blob, elems) };
                parsed.map_err(blob_err(at))?;
                let kept = (ty == ZSET_LISTPACK).then_some(&blob[..]);
                zset_from_pairs(elems, kept, cfg, at)
            });
        }
        HASH => return hash_plain(inp, cfg),
        HASH_ZIPMAP | HASH_ZIPLIST | HASH_LISTPACK => {
            let blob = inp.blob()?;
            return with_elems(|elems| {
                let parsed = match ty {
                    HASH_ZIPMAP => blobs::zipmap(&blob, elems),
                    HASH_ZIPLIST => blobs::ziplist(&blob, elems),
                    _ => blobs::listpack(&blob, elems),
                };
                parsed.map_err(blob_err(at))?;
                let kept = (ty == HASH_LISTPACK).then_some(&blob[..]);
                hash_from_elems(elems, ty == HASH_ZIPMAP, kept, cfg, at)
            });
        }
        STREAM_LISTPACKS | STREAM_LISTPACKS_2 | STREAM_LISTPACKS_3 => {
            skip::stream(inp, ty)?;
            return Ok(Decoded::Skipped(SkipKind::Stream));
        }
        MODULE_2 => return Ok(Decoded::Skipped(SkipKind::Module(skip::module_value(inp)?))),
        MODULE_PRE_GA => {
            return err(
                ErrorKind::Unsupported("Module value of the pre-release format (RDB type 6) can't be loaded".into()),
                at,
            )
        }
        22 | 23 if valkey => {
            let what = if ty == 22 { "hash with field expiration" } else { "path hash" };
            return err(ErrorKind::Unsupported(format!("Valkey 9 {what} (RDB type {ty}) is not supported")), at);
        }
        22..=25 if !valkey => {
            return err(
                ErrorKind::Unsupported(format!(
                    "Redis 7.4 hash with field expiration (RDB type {ty}) is not supported"
                )),
                at,
            )
        }
        _ => return err(ErrorKind::BadType(ty), at),
    };
    Ok(Decoded::Value(value))
}

/// A string value, encoded as `SET` would (`tryObjectEncoding`).
fn str_value(s: RdbStr) -> StrValue {
    match s {
        RdbStr::Int(v) => StrValue::Int(v),
        RdbStr::Bytes(Cow::Borrowed(b)) => StrValue::from_bytes(b),
        RdbStr::Bytes(Cow::Owned(v)) => {
            // Keep the decompressed buffer instead of copying it again.
            if v.len() <= 20 {
                if let Some(i) = parse_i64(&v) {
                    return StrValue::Int(i);
                }
            }
            if v.len() <= EMBSTR_LIMIT {
                StrValue::from_bytes_no_int(&v)
            } else {
                StrValue::from_raw(v)
            }
        }
    }
}

fn list_value(l: ListValue) -> Decoded {
    if l.is_empty() {
        Decoded::Empty
    } else {
        Decoded::Value(Value::List(Box::new(l)))
    }
}

fn list_plain(inp: &mut Input) -> Result<Decoded> {
    let n = inp.count(1)?;
    let mut l = ListValue::new();
    for _ in 0..n {
        l.push_back(&inp.string()?);
    }
    Ok(list_value(l))
}

/// Lists made of blobs: one ziplist (10), ziplist nodes (14), or plain/packed nodes (18). Empty nodes are
/// skipped, as Redis does.
fn list_nodes(inp: &mut Input, ty: u8) -> Result<Decoded> {
    let mut l = ListValue::new();
    let nodes = if ty == LIST_ZIPLIST { 1 } else { inp.count(if ty == LIST_QUICKLIST_2 { 2 } else { 1 })? };
    for _ in 0..nodes {
        let at = inp.pos();
        if ty == LIST_QUICKLIST_2 {
            match inp.len()? {
                1 => {
                    l.push_back(&inp.string()?);
                    continue;
                }
                2 => {}
                _ => return err(ErrorKind::BadBlob("Quicklist"), at),
            }
        }
        let at = inp.pos();
        let blob = inp.blob()?;
        with_elems(|elems| {
            let parsed =
                if ty == LIST_QUICKLIST_2 { blobs::listpack(&blob, elems) } else { blobs::ziplist(&blob, elems) };
            parsed.map_err(blob_err(at))?;
            // A listpack of strings holds its elements as a chunk does: one copy of its entries.
            if ty == LIST_QUICKLIST_2
                && elems.iter().all(|e| matches!(e, Elem::Str(_)))
                && l.push_back_entries(&blob[listpack::HEADER..listpack::end(&blob)], elems.len())
            {
                return Ok(());
            }
            let mut rest: usize = elems.iter().map(|e| ListValue::entry_bytes(e.len())).sum();
            for &e in elems.iter() {
                e.with_bytes(|b| l.push_back_sized(b, rest));
                rest -= ListValue::entry_bytes(e.len());
            }
            Ok(())
        })?;
    }
    Ok(list_value(l))
}

/// A set member as read: from a plain set (type 2) or from a listpack.
enum Member<'a> {
    Str(RdbStr<'a>),
    Elem(Elem<'a>),
}

impl Member<'_> {
    fn as_int(&self) -> Option<i64> {
        match self {
            Member::Str(RdbStr::Int(v)) | Member::Elem(Elem::Int(v)) => Some(*v),
            Member::Str(RdbStr::Bytes(b)) => parse_i64(b),
            Member::Elem(Elem::Str(b)) => parse_i64(b),
        }
    }

    /// The length of the member's bytes.
    fn len(&self) -> usize {
        match self {
            Member::Str(RdbStr::Bytes(b)) => b.len(),
            _ => self.with_bytes(|b| b.len()),
        }
    }

    /// Calls `f` with the member's bytes (integers printed in place).
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Member::Str(RdbStr::Bytes(b)) => f(b),
            Member::Str(RdbStr::Int(v)) => f(format_i64(*v, &mut [0u8; 20])),
            Member::Elem(e) => e.with_bytes(f),
        }
    }
}

fn set_plain(inp: &mut Input, cfg: &EngineConfig) -> Result<Decoded> {
    let at = inp.pos();
    let n = inp.count(1)?;
    let mut members = Vec::with_capacity(n.min(PREALLOC));
    for _ in 0..n {
        members.push(Member::Str(inp.rdb_str()?));
    }
    set_from(members, cfg, at)
}

/// Builds a set: intset when every member is an integer and the count fits, packed while
/// `set-max-listpack-*` allow, else a hashtable.
fn set_from(members: Vec<Member>, cfg: &EngineConfig, at: usize) -> Result<Decoded> {
    const DUP: &str = "Duplicate set members detected";
    let n = members.len();
    if n == 0 {
        return Ok(Decoded::Empty);
    }
    if n <= cfg.set_max_intset_entries {
        let ints: Option<Vec<i64>> = members.iter().map(Member::as_int).collect();
        if let Some(mut ints) = ints {
            ints.sort_unstable();
            if ints.windows(2).any(|w| w[0] == w[1]) {
                return bad_value(DUP, at);
            }
            return Ok(Decoded::Value(Value::Set(SetValue::Intset(ints.into()))));
        }
    }
    if n <= cfg.set_max_listpack_entries && members.iter().all(|m| m.len() <= cfg.set_max_listpack_value) {
        let packed = PackedSet::build(|out| {
            for m in &members {
                m.with_bytes(|b| PackedSet::put(out, b));
            }
        });
        if has_duplicates(packed.iter()) {
            return bad_value(DUP, at);
        }
        return Ok(Decoded::Value(Value::Set(SetValue::Packed(packed))));
    }
    let mut t = Table::with_capacity(n);
    for m in &members {
        // Short members are kept inline by the table: no allocation for them.
        if m.with_bytes(|b| t.insert_ref(b, (), NO_EXPIRE)).is_some() {
            return bad_value(DUP, at);
        }
    }
    Ok(Decoded::Value(Value::Set(SetValue::Table(Box::new(t)))))
}

fn zset_plain(inp: &mut Input, ty: u8, cfg: &EngineConfig) -> Result<Decoded> {
    let at = inp.pos();
    let n = inp.count(if ty == ZSET_2 { 9 } else { 2 })?;
    let mut items = Vec::with_capacity(n.min(PREALLOC));
    for _ in 0..n {
        let member = inp.string()?;
        let score = if ty == ZSET_2 { inp.f64_le()? } else { inp.string_double()? };
        if score.is_nan() {
            return bad_value("Zset with NAN score detected", at);
        }
        items.push((member, score));
    }
    zset_finish(items, false, cfg, at)
}

/// Member/score pairs of a ziplist or listpack zset; scores are integers or text. `listpack` is the blob
/// when it is a listpack: kept as it is when its members are strings, in order and distinct, and it is
/// within `zset-max-listpack-entries`.
fn zset_from_pairs(elems: &[Elem], listpack: Option<&[u8]>, cfg: &EngineConfig, at: usize) -> Result<Decoded> {
    if !elems.len().is_multiple_of(2) {
        return err(ErrorKind::BadBlob("Zset listpack"), at);
    }
    let score = |e: Elem| {
        let s = match e {
            Elem::Int(v) => v as f64,
            Elem::Str(s) => match parse_double_text(s) {
                Some(v) => v,
                None => return bad_value("Zset score is not a valid number", at),
            },
        };
        if s.is_nan() {
            return bad_value("Zset with NAN score detected", at);
        }
        Ok(s)
    };
    let n = elems.len() / 2;
    if let Some(lp) = listpack.filter(|_| n > 0 && n <= cfg.zset_max_listpack_entries) {
        let mut prev: Option<(&[u8], f64)> = None;
        let mut keep = true;
        for pair in elems.chunks_exact(2) {
            let s = score(pair[1])?;
            let Elem::Str(m) = pair[0] else {
                keep = false;
                break;
            };
            if prev.is_some_and(|(pm, ps)| compare(ps, pm, s, m) != std::cmp::Ordering::Less) {
                keep = false;
                break;
            }
            prev = Some((m, s));
        }
        if keep {
            if has_duplicates(firsts(elems)) {
                return bad_value(ZSET_DUP, at);
            }
            return Ok(Decoded::Value(Value::ZSet(ZSetValue::Listpack(PackedEntries::from_listpack(lp)))));
        }
    }
    let mut items = Vec::with_capacity(n);
    for pair in elems.chunks_exact(2) {
        items.push((ElemBytes::from(pair[0]), score(pair[1])?));
    }
    zset_finish(items, true, cfg, at)
}

const ZSET_DUP: &str = "Duplicate zset fields detected";

/// Builds a sorted set from members and scores (members may repeat only in a damaged file).
fn zset_finish<M>(mut items: Vec<(M, f64)>, from_blob: bool, cfg: &EngineConfig, at: usize) -> Result<Decoded>
where
    M: AsRef<[u8]> + Into<Box<[u8]>>,
{
    if items.is_empty() {
        return Ok(Decoded::Empty);
    }
    // Redis writes a listpack's members in order and a skiplist's in reverse (greatest first): a reversal
    // then, and a sort only for files from elsewhere.
    let order = |a: &(M, f64), b: &(M, f64)| compare(a.1, a.0.as_ref(), b.1, b.0.as_ref());
    if !items.is_sorted_by(|a, b| order(a, b).is_le()) {
        if items.is_sorted_by(|a, b| order(a, b).is_ge()) {
            items.reverse();
        } else {
            items.sort_by(order);
        }
    }
    // 7.0 keeps a loaded listpack whatever its members' lengths (packed again, it must still fit a listpack).
    let lim = Limits::from_config(cfg);
    let small = if from_blob { Limits { value: usize::MAX, ..lim } } else { lim };
    let z = if ZSetValue::fits_listpack(&items, small) {
        if has_duplicates(items.iter().map(|(m, _)| m.as_ref())) {
            return bad_value(ZSET_DUP, at);
        }
        // A listpack holds -0 as 0.
        ZSetValue::Listpack(items.iter().map(|(m, s)| (m.as_ref(), if *s == 0.0 { 0.0 } else { *s })).collect())
    } else {
        match ZSetValue::skiplist_from_sorted(items.into_iter().map(|(m, s)| (m.into(), s)).collect()) {
            Some(z) => z,
            None => return bad_value(ZSET_DUP, at),
        }
    };
    Ok(Decoded::Value(Value::ZSet(z)))
}

fn hash_plain(inp: &mut Input, cfg: &EngineConfig) -> Result<Decoded> {
    let at = inp.pos();
    let n = inp.count(2)?;
    let mut pairs = Vec::with_capacity(n.min(PREALLOC));
    let mut maxlen = 0;
    for _ in 0..n {
        let f = inp.string()?;
        let v = inp.string()?;
        maxlen = maxlen.max(f.len()).max(v.len());
        pairs.push((f, v));
    }
    let small = n <= cfg.hash_max_listpack_entries && maxlen <= cfg.hash_max_listpack_value;
    hash_finish(pairs, small, at)
}

/// A hash from the elements of a blob; `listpack` is the blob when it is a listpack (kept as it is when it
/// holds no integer entries).
fn hash_from_elems(
    elems: &[Elem],
    zipmap: bool,
    listpack: Option<&[u8]>,
    cfg: &EngineConfig,
    at: usize,
) -> Result<Decoded> {
    if !elems.len().is_multiple_of(2) {
        return err(ErrorKind::BadBlob("Hash listpack"), at);
    }
    let n = elems.len() / 2;
    // 7.0 re-checks value lengths only for zipmaps (converted entry by entry); ziplists and listpacks
    // are kept whole unless they have too many fields.
    let small =
        n <= cfg.hash_max_listpack_entries && (!zipmap || elems.iter().all(|e| e.len() <= cfg.hash_max_listpack_value));
    let pairs = elems.chunks_exact(2).map(|p| (ElemBytes::from(p[0]), ElemBytes::from(p[1])));
    if small && n > 0 {
        // The listpack as it is when every entry is a string (a copy, no parsing), else packed from the
        // elements; the duplicate check reads the packed fields.
        let packed: PackedPairs = match listpack {
            Some(lp) if elems.iter().all(|e| matches!(e, Elem::Str(_))) => {
                if has_duplicates(firsts(elems)) {
                    return bad_value(HASH_DUP, at);
                }
                return Ok(Decoded::Value(Value::Hash(HashValue::Listpack(PackedPairs::from_listpack(lp)))));
            }
            _ if packs(elems.iter().map(|e| e.len())) => pairs.collect(),
            _ => return hash_finish(pairs.collect(), false, at),
        };
        if has_duplicates(packed.iter().map(|(f, _)| f)) {
            return bad_value(HASH_DUP, at);
        }
        return Ok(Decoded::Value(Value::Hash(HashValue::Listpack(packed))));
    }
    hash_finish(pairs.collect(), small, at)
}

/// The first of each pair of a blob whose elements are all strings (hash fields, zset members).
fn firsts<'a, 'e>(elems: &'e [Elem<'a>]) -> impl Iterator<Item = &'a [u8]> + 'e {
    elems.iter().step_by(2).map(|e| match e {
        Elem::Str(s) => *s,
        Elem::Int(_) => unreachable!("the caller checked every element is a string"),
    })
}

const HASH_DUP: &str = "Duplicate hash fields detected";

/// Whether strings of these lengths fit in one listpack (under its 1 GB safety limit, as Redis checks).
fn packs(lens: impl Iterator<Item = usize>) -> bool {
    let bytes = lens.fold(listpack::HEADER + 1, |sum, n| sum.saturating_add(listpack::str_entry_len(n)));
    bytes <= listpack::MAX_SAFE
}

fn hash_finish<F: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: Vec<(F, V)>, small: bool, at: usize) -> Result<Decoded> {
    if pairs.is_empty() {
        return Ok(Decoded::Empty);
    }
    if small && packs(pairs.iter().flat_map(|(f, v)| [f.as_ref().len(), v.as_ref().len()])) {
        if has_duplicates(pairs.iter().map(|(f, _)| f.as_ref())) {
            return bad_value(HASH_DUP, at);
        }
        return Ok(Decoded::Value(Value::Hash(HashValue::Listpack(pairs.iter().map(|(f, v)| (f, v)).collect()))));
    }
    let mut t = Table::with_capacity(pairs.len());
    for (f, v) in &pairs {
        if t.insert_ref(f.as_ref(), Box::from(v.as_ref()), NO_EXPIRE).is_some() {
            return bad_value(HASH_DUP, at);
        }
    }
    Ok(Decoded::Value(Value::Hash(HashValue::Table(Box::new(t)))))
}

/// Whether any two items are equal. Compares cheap fingerprints (length, first and last 8 bytes: the whole
/// item up to 16 bytes) and looks at the bytes only when those match: quadratic and on the stack for a
/// handful of items, sorting otherwise.
fn has_duplicates<'a>(mut items: impl Iterator<Item = &'a [u8]>) -> bool {
    type Fingerprint = (usize, u64, u64);
    /// The first and last (up to) 8 bytes as words: an item of up to 16 bytes entirely.
    fn fingerprint(b: &[u8]) -> Fingerprint {
        (b.len(), padded_word(b), padded_word(&b[b.len().saturating_sub(8)..]))
    }
    const FEW: usize = 8;
    let mut few = [((0, 0, 0), &[][..]); FEW];
    for (n, b) in items.by_ref().enumerate() {
        let item = (fingerprint(b), b);
        if n == FEW {
            let mut v: Vec<(Fingerprint, &[u8])> = few.into_iter().chain([item]).collect();
            v.extend(items.map(|b| (fingerprint(b), b)));
            v.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
            return v.windows(2).any(|w| w[0].0 == w[1].0 && w[0].1 == w[1].1);
        }
        if few[..n].iter().any(|f| f.0 == item.0 && f.1 == item.1) {
            return true;
        }
        few[n] = item;
    }
    false
}

/// Runs `f` with an empty vector of blob elements that this thread reuses from one value to the next: a
/// load decodes hundreds of thousands of small blobs, and each would otherwise allocate and free its own.
fn with_elems<'b, R>(f: impl FnOnce(&mut Vec<Elem<'b>>) -> R) -> R {
    /// Largest vector kept between calls.
    const KEEP: usize = 4096;
    thread_local! {
        static SPARE: Cell<Vec<Elem<'static>>> = const { Cell::new(Vec::new()) };
    }
    let mut elems: Vec<Elem<'b>> = SPARE.take();
    let out = f(&mut elems);
    if elems.capacity() <= KEEP {
        elems.clear();
        // Empty, and the same layout for any lifetime: collected in place, this keeps the allocation.
        SPARE.set(elems.into_iter().map(|_| -> Elem<'static> { unreachable!("the vector is empty") }).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates() {
        assert!(!has_duplicates([&b"a"[..], b"b"].into_iter()));
        assert!(has_duplicates([&b"a"[..], b"b", b"a"].into_iter()));
        let many: Vec<Vec<u8>> = (0..100).map(|i| format!("f{i}").into_bytes()).collect();
        assert!(!has_duplicates(many.iter().map(|v| &v[..])));
        assert!(has_duplicates(many.iter().map(|v| &v[..]).chain([&b"f42"[..]])));
        // Same length, first and last 8 bytes: only the middle differs.
        let (a, b) = (&b"aaaaaaaaXbbbbbbbb"[..], &b"aaaaaaaaYbbbbbbbb"[..]);
        assert!(!has_duplicates([a, b].into_iter()));
        assert!(has_duplicates([a, b, a].into_iter()));
        assert!(!has_duplicates(many.iter().map(|v| &v[..]).chain([a, b])));
        assert!(has_duplicates(many.iter().map(|v| &v[..]).chain([a, b, b])));
        assert!(!has_duplicates([&b""[..], b"\0"].into_iter()));
        // Items that differ in one byte, at every position of every length the fingerprint reads in parts.
        for len in 1..=20 {
            for at in 0..len {
                let a = vec![b'a'; len];
                let mut b = a.clone();
                b[at] = b'b';
                assert!(!has_duplicates([&a[..], &b[..]].into_iter()), "{len} {at}");
                assert!(has_duplicates([&a[..], &b[..], &b[..]].into_iter()), "{len} {at}");
            }
        }
        // Around the switch from the stack to sorting: a duplicate before, at and after the ninth item.
        for n in 7..=10 {
            let items: Vec<Vec<u8>> = (0..n).map(|i| vec![b'a' + i as u8; 3]).collect();
            assert!(!has_duplicates(items.iter().map(|v| &v[..])), "{n}");
            for at in 0..n {
                let dup = items.iter().map(|v| &v[..]).chain([&items[at][..]]);
                assert!(has_duplicates(dup), "{n} {at}");
            }
        }
    }

    #[test]
    fn blob_elements_reuse_one_vector() {
        let blob = b"0123456789".to_vec();
        let cap = with_elems(|e| {
            assert!(e.is_empty());
            e.extend(blob.chunks(2).map(Elem::Str));
            e.capacity()
        });
        // Empty again, with the same allocation (in-place collection keeps it; without it only speed suffers).
        assert_eq!(with_elems(|e| (e.len(), e.capacity())), (0, cap));
        // Nested use gets a vector of its own.
        with_elems(|outer| {
            outer.push(Elem::Int(1));
            with_elems(|inner| assert!(inner.is_empty()));
            assert_eq!(outer.len(), 1);
        });
    }

    /// A type 2 (plain) set of `members`, as `read_object` sees it.
    fn plain_set(members: &[&[u8]], cfg: &EngineConfig) -> Result<Decoded> {
        let mut raw = vec![members.len() as u8];
        for m in members {
            raw.push(m.len() as u8);
            raw.extend_from_slice(m);
        }
        read_object(&mut Input::new(&raw), SET, cfg, false)
    }

    #[test]
    fn plain_sets_take_each_form_and_refuse_duplicates() {
        let cfg = EngineConfig { set_max_listpack_entries: 3, set_max_listpack_value: 8, ..EngineConfig::default() };
        let form = |members: &[&[u8]]| match plain_set(members, &cfg) {
            Ok(Decoded::Value(Value::Set(s))) => {
                let form = match s {
                    SetValue::Intset(_) => "intset",
                    SetValue::Packed(_) => "packed",
                    SetValue::Table(_) => "table",
                };
                assert_eq!(s.len(), members.len());
                assert!(members.iter().all(|m| s.contains(m)));
                form.to_string()
            }
            Ok(_) => "not a set".to_string(),
            Err(e) => e.to_string(),
        };
        assert_eq!(form(&[b"1", b"2", b"3", b"4"]), "intset");
        assert_eq!(form(&[b"1", b"a", b"b"]), "packed");
        assert_eq!(form(&[b"1", b"a", b"b", b"c"]), "table");
        assert_eq!(form(&[b"123456789x", b"a"]), "table");
        assert_eq!(form(&[b"12345678", b"a"]), "packed");
        for dup in [&[&b"1"[..], b"2", b"1"][..], &[b"a", b"b", b"a"], &[b"a", b"b", b"c", b"a"]] {
            let e = form(dup);
            assert!(e.starts_with("Duplicate set members detected"), "{e}");
        }
    }

    #[test]
    fn listpack_hashes_of_strings_are_kept_as_they_are() {
        let cfg = EngineConfig::default();
        let hash = |lp: &[u8]| {
            // A blob of 7 to 63 bytes: one length byte, then the bytes.
            let mut raw = vec![lp.len() as u8];
            raw.extend_from_slice(lp);
            match read_object(&mut Input::new(&raw), HASH_LISTPACK, &cfg, false) {
                Ok(Decoded::Value(Value::Hash(HashValue::Listpack(p)))) => p,
                _ => panic!("not a listpack hash"),
            }
        };
        let mut strings = Vec::new();
        let start = listpack::begin(&mut strings);
        for s in [&b"name"[..], b"moon", b"a", b"b"] {
            listpack::put_str(&mut strings, s);
        }
        listpack::finish(&mut strings, start, 4);
        let kept = hash(&strings);
        assert_eq!(kept.as_listpack(), Some(&strings[..]));
        // Redis stores "12" as an integer entry: that one is packed again, as strings.
        let mut ints = super::super::encode::Listpack::new();
        for s in [&b"name"[..], b"moon", b"n", b"12"] {
            ints.push(s);
        }
        let ints = ints.finish();
        let packed = hash(&ints);
        assert_ne!(packed.as_listpack(), Some(&ints[..]));
        assert_eq!(packed.iter().collect::<Vec<_>>(), [(&b"name"[..], &b"moon"[..]), (b"n", b"12")]);
    }

    #[test]
    fn listpack_zsets_of_string_members_are_kept_as_they_are() {
        let cfg = EngineConfig::default();
        let zset = |lp: &[u8]| {
            let mut raw = vec![0x40 | (lp.len() >> 8) as u8, lp.len() as u8];
            raw.extend_from_slice(lp);
            match read_object(&mut Input::new(&raw), ZSET_LISTPACK, &cfg, false) {
                Ok(Decoded::Value(Value::ZSet(ZSetValue::Listpack(p)))) => Ok(p),
                Ok(_) => panic!("not a listpack zset"),
                Err(e) => Err(e.to_string()),
            }
        };
        let build = |pairs: &[(&[u8], &[u8])]| {
            // As Redis writes them: canonical integers as integer entries, scores through the same rule.
            let mut lp = super::super::encode::Listpack::new();
            for (m, s) in pairs {
                lp.push(m);
                lp.push(s);
            }
            lp.finish()
        };
        let kept = build(&[(b"a", b"-5000"), (b"b", b"1.5"), (b"c", b"1.5"), (b"d", b"70000"), (b"e", b"inf")]);
        let z = zset(&kept).unwrap();
        assert_eq!(z.as_listpack(), Some(&kept[..]));
        let want = [(&b"a"[..], -5000.0), (b"b", 1.5), (b"c", 1.5), (b"d", 70000.0), (b"e", f64::INFINITY)];
        assert_eq!(z.iter().collect::<Vec<_>>(), want);
        // An integer member, or members out of order: packed again, in order.
        let int_member = build(&[(b"7", b"1"), (b"x", b"2")]);
        let z = zset(&int_member).unwrap();
        assert_ne!(z.as_listpack(), Some(&int_member[..]));
        assert_eq!(z.iter().collect::<Vec<_>>(), [(&b"7"[..], 1.0), (b"x", 2.0)]);
        let unordered = build(&[(b"b", b"2"), (b"a", b"2"), (b"c", b"-1")]);
        let z = zset(&unordered).unwrap();
        assert_eq!(z.iter().collect::<Vec<_>>(), [(&b"c"[..], -1.0), (b"a", 2.0), (b"b", 2.0)]);
        // Damage is refused whichever way the pairs would have gone.
        for (pairs, msg) in [
            (&[(&b"a"[..], &b"1"[..]), (b"a", b"2")][..], "Duplicate zset fields detected"),
            (&[(b"a", b"1"), (b"b", b"1"), (b"a", b"0")], "Duplicate zset fields detected"),
            (&[(b"a", b"x1")], "Zset score is not a valid number"),
            (&[(b"a", b"1"), (b"b", b"nan")], "Zset with NAN score detected"),
        ] {
            let e = zset(&build(pairs)).err().expect("refused");
            assert!(e.contains(msg), "{e}");
        }
    }

    #[test]
    fn plain_zsets_with_a_repeated_member_are_refused_in_either_form() {
        let cfg = EngineConfig::default();
        let zset = |members: &[Vec<u8>]| {
            // ZSET_2: the count, then each member and its score as an f64 (lengths in the 14-bit form).
            let len14 = |n: usize| [0x40 | (n >> 8) as u8, n as u8];
            let mut raw = len14(members.len()).to_vec();
            for (i, m) in members.iter().enumerate() {
                raw.extend_from_slice(&len14(m.len()));
                raw.extend_from_slice(m);
                raw.extend_from_slice(&(i as f64).to_le_bytes());
            }
            read_object(&mut Input::new(&raw), ZSET_2, &cfg, false)
        };
        let long = [b'x'; 65];
        for (n, member) in [(3usize, &b"m"[..]), (300, b"m"), (3, &long[..])] {
            let mut members: Vec<Vec<u8>> = (0..n).map(|i| [member, format!("{i}").as_bytes()].concat()).collect();
            let form = match zset(&members) {
                Ok(Decoded::Value(Value::ZSet(z))) => z.encoding_name(),
                Ok(_) => "not a zset",
                Err(e) => panic!("{e}"),
            };
            assert_eq!(form, if n > 128 || member.len() > 64 { "skiplist" } else { "listpack" });
            members[n - 1] = members[0].clone();
            let e = zset(&members).err().expect("refused").to_string();
            assert!(e.contains("Duplicate zset fields detected"), "{e}");
        }
    }

    #[test]
    fn string_encodings() {
        assert_eq!(str_value(RdbStr::Int(5)), StrValue::Int(5));
        assert_eq!(str_value(RdbStr::Bytes(Cow::Borrowed(b"12"))), StrValue::Int(12));
        assert_eq!(str_value(RdbStr::Bytes(Cow::Owned(b"012".to_vec()))).encoding_name(), "embstr");
        assert_eq!(str_value(RdbStr::Bytes(Cow::Owned(vec![b'x'; 45]))).encoding_name(), "raw");
    }
}
