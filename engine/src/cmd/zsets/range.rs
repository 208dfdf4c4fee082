//! Rank, score and lex ranges: ZRANGE (BYSCORE, BYLEX, REV, LIMIT, WITHSCORES) with its older forms
//! (ZREVRANGE, Z[REV]RANGEBYSCORE, Z[REV]RANGEBYLEX) and ZRANGESTORE, ZCOUNT, ZLEXCOUNT and
//! ZREMRANGEBYRANK/SCORE/LEX. Every range becomes a span of ranks, so both encodings share one path and the
//! skiplist form finds a range's start in O(log n).

use super::{args, c_str, entries_reply, parse_range_float, run, Ctx, Entries};
use crate::cmd::errors::SYNTAX;
use crate::cmd::CmdResult;
use crate::resp::Reply;
use crate::types::zset::{Iter, Limits};
use crate::types::{Value, ZSetValue};
use crate::util::eq_ic;
use bytes::Bytes;

const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// A score interval; `(` makes a bound exclusive.
#[derive(Debug, Clone, Copy)]
struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> CmdResult<Self> {
        let bound = |b: &[u8]| match b.first() {
            Some(b'(') => parse_range_float(&b[1..]).map(|v| (v, true)),
            _ => parse_range_float(b).map(|v| (v, false)),
        };
        match (bound(min), bound(max)) {
            (Some((min, minex)), Some((max, maxex))) => Ok(ScoreRange { min, minex, max, maxex }),
            _ => Err(Reply::err(NOT_FLOAT_RANGE)),
        }
    }

    /// Ranks `start..end` of the entries inside the interval.
    fn ranks(&self, z: &ZSetValue) -> (usize, usize) {
        let start = z.lower_bound(|s, _| if self.minex { s <= self.min } else { s < self.min });
        let end = z.lower_bound(|s, _| if self.maxex { s < self.max } else { s <= self.max });
        (start, end.max(start))
    }
}

/// One end of a lex interval: `-`, `+`, `[inclusive` or `(exclusive`.
#[derive(Debug, Clone, Copy)]
enum Lex<'a> {
    Min,
    Max,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

impl<'a> Lex<'a> {
    fn parse(arg: &'a [u8]) -> Option<Self> {
        // `+` and `-` are C strings to Redis: anything after a NUL is ignored.
        match arg.first()? {
            b'+' if c_str(arg).len() == 1 => Some(Lex::Max),
            b'-' if c_str(arg).len() == 1 => Some(Lex::Min),
            b'[' => Some(Lex::Incl(&arg[1..])),
            b'(' => Some(Lex::Excl(&arg[1..])),
            _ => None,
        }
    }

    fn parse_pair(min: &'a [u8], max: &'a [u8]) -> CmdResult<(Self, Self)> {
        match (Lex::parse(min), Lex::parse(max)) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(Reply::err(NOT_LEX_RANGE)),
        }
    }

    fn at_or_after_min(self, m: &[u8]) -> bool {
        match self {
            Lex::Min => true,
            Lex::Max => false,
            Lex::Incl(b) => m >= b,
            Lex::Excl(b) => m > b,
        }
    }

    fn at_or_before_max(self, m: &[u8]) -> bool {
        match self {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(b) => m <= b,
            Lex::Excl(b) => m < b,
        }
    }

    /// Ranks `start..end` of the entries inside `[min, max]`, walked forward (or backward, `rev`). Members
    /// are compared as bytes, which orders the set when all scores are equal, the case Redis documents. With
    /// mixed scores Redis's result is unspecified; a listpack is then walked as Redis walks it (the first
    /// entry at or after `min`, and the run that follows up to `max`), so small sets still answer alike.
    fn ranks(min: Self, max: Self, z: &ZSetValue, rev: bool) -> (usize, usize) {
        let n = z.len();
        let (Some((head, _)), Some((tail, _))) = (z.get_by_rank(0), z.get_by_rank(n.wrapping_sub(1))) else {
            return (0, 0);
        };
        if !min.at_or_after_min(tail) || !max.at_or_before_max(head) {
            return (0, 0);
        }
        if let ZSetValue::Listpack(lp) = z {
            let v: Vec<(&[u8], f64)> = lp.iter().collect();
            let in_min = |i: usize| min.at_or_after_min(v[i].0);
            let in_max = |i: usize| max.at_or_before_max(v[i].0);
            return if rev {
                let Some(last) = (0..n).rev().find(|&i| in_max(i)) else { return (0, 0) };
                let start = (0..=last).rev().find(|&i| !in_min(i)).map_or(0, |i| i + 1);
                (start, last + 1)
            } else {
                let Some(first) = (0..n).find(|&i| in_min(i)) else { return (0, 0) };
                (first, (first..n).find(|&i| !in_max(i)).unwrap_or(n))
            };
        }
        let start = z.lower_bound(|_, m| !min.at_or_after_min(m));
        let end = z.lower_bound(|_, m| max.at_or_before_max(m));
        (start, end.max(start))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// A parsed ZRANGE-family request.
enum Range<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(Lex<'a>, Lex<'a>),
}

struct Request<'a> {
    range: Range<'a>,
    rev: bool,
    withscores: bool,
    offset: i64,
    /// Negative: no limit.
    limit: i64,
}

/// Parses the arguments after the source key at `a[src]`, as Redis's `zrangeGenericCommand` does:
/// options first, then their conflicts, then the range itself. `by` and `rev` are fixed by the older
/// command forms and may not be given again.
fn parse_request(a: &[Bytes], src: usize, store: bool, by: Option<By>, rev: Option<bool>) -> CmdResult<Request<'_>> {
    let (mut kind, mut dir) = (by, rev);
    let (mut withscores, mut offset, mut limit) = (false, 0, -1);
    let mut j = src + 3;
    while j < a.len() {
        let o = &a[j];
        if !store && eq_ic(o, "withscores") {
            withscores = true;
        } else if eq_ic(o, "limit") && j + 2 < a.len() {
            offset = args::int(&a[j + 1])?;
            limit = args::int(&a[j + 2])?;
            j += 2;
        } else if rev.is_none() && eq_ic(o, "rev") {
            dir = Some(true);
        } else if by.is_none() && kind.is_none() && eq_ic(o, "bylex") {
            kind = Some(By::Lex);
        } else if by.is_none() && kind.is_none() && eq_ic(o, "byscore") {
            kind = Some(By::Score);
        } else {
            return Err(Reply::err(SYNTAX));
        }
        j += 1;
    }
    let kind = kind.unwrap_or(By::Rank);
    let rev = dir.unwrap_or(false);
    if limit != -1 && kind == By::Rank {
        return Err(Reply::err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == By::Lex {
        return Err(Reply::err("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    let (mut lo, mut hi) = (&a[src + 1][..], &a[src + 2][..]);
    if rev && kind != By::Rank {
        // Reverse score and lex ranges are written max first.
        std::mem::swap(&mut lo, &mut hi);
    }
    let range = match kind {
        By::Rank => Range::Rank(args::int(lo)?, args::int(hi)?),
        By::Score => Range::Score(ScoreRange::parse(lo, hi)?),
        By::Lex => {
            let (min, max) = Lex::parse_pair(lo, hi)?;
            Range::Lex(min, max)
        }
    };
    Ok(Request { range, rev, withscores, offset, limit })
}

/// The entries a request selects, in reply order.
fn select<'z>(z: &'z ZSetValue, req: &Request) -> Iter<'z> {
    let len = z.len();
    let empty = z.range(0, 0, false);
    let (start, end) = match req.range {
        Range::Rank(s, e) => {
            let Some((s, e)) = args::clamp_range(s, e, len) else {
                return empty;
            };
            let first = if req.rev { len - 1 - s } else { s };
            return z.range(first, e - s + 1, req.rev);
        }
        Range::Score(r) => r.ranks(z),
        Range::Lex(min, max) => Lex::ranks(min, max, z, req.rev),
    };
    if req.offset < 0 || req.offset as u64 >= (end - start) as u64 {
        return empty;
    }
    let offset = req.offset as usize;
    let mut count = end - start - offset;
    if req.limit >= 0 {
        count = count.min(usize::try_from(req.limit).unwrap_or(usize::MAX));
    }
    if req.rev {
        z.range(end - 1 - offset, count, true)
    } else {
        z.range(start + offset, count, false)
    }
}

fn range_generic(ctx: &mut Ctx, a: &[Bytes], by: Option<By>, rev: Option<bool>) -> Reply {
    run(|| {
        let req = parse_request(a, 1, false, by, rev)?;
        let proto = ctx.proto;
        let Some(z) = ctx.read_zset(&a[1])? else {
            return Ok(Reply::Array(Vec::new()));
        };
        Ok(entries_reply(proto, select(z, &req), req.withscores))
    })
}

/// ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
pub fn zrange(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    range_generic(ctx, a, None, None)
}

/// ZREVRANGE key start stop [WITHSCORES]
pub fn zrevrange(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    range_generic(ctx, a, Some(By::Rank), Some(true))
}

/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
pub fn zrangebyscore(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    range_generic(ctx, a, Some(By::Score), Some(false))
}

/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
pub fn zrevrangebyscore(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    range_generic(ctx, a, Some(By::Score), Some(true))
}

/// ZRANGEBYLEX key min max [LIMIT offset count]
pub fn zrangebylex(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    range_generic(ctx, a, Some(By::Lex), Some(false))
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count]
pub fn zrevrangebylex(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    range_generic(ctx, a, Some(By::Lex), Some(true))
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
pub fn zrangestore(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let req = parse_request(a, 2, true, None, None)?;
        let (dst, src) = (&a[1], &a[2]);
        ctx.expire_if_needed(src);
        let mut items: Entries = match ctx.peek(src) {
            None => Vec::new(),
            Some(Value::ZSet(z)) => select(z, &req).map(|(m, s)| (Box::from(m), s)).collect(),
            Some(_) => return Err(Reply::err(crate::cmd::errors::WRONGTYPE)),
        };
        if req.rev {
            items.reverse();
        }
        store_result(ctx, dst, items)
    })
}

/// Writes a computed result to `dst` (sorted, distinct members), or deletes `dst` when the result is empty,
/// as Redis's store commands do. Replies with the result's size.
pub(super) fn store_result(ctx: &mut Ctx, dst: &[u8], items: Entries) -> CmdResult {
    let n = items.len();
    if n == 0 {
        if ctx.delete(dst) {
            ctx.dirty += 1;
        }
        return Ok(Reply::Int(0));
    }
    let z = ZSetValue::from_sorted(items, Limits::from_config(ctx.cfg));
    ctx.set_value(dst, Value::ZSet(z), None);
    ctx.dirty += 1;
    Ok(Reply::Int(n as i64))
}

/// ZCOUNT key min max
pub fn zcount(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let r = ScoreRange::parse(&a[2], &a[3])?;
        let (start, end) = ctx.read_zset(&a[1])?.map_or((0, 0), |z| r.ranks(z));
        Ok(Reply::Int((end - start) as i64))
    })
}

/// ZLEXCOUNT key min max
pub fn zlexcount(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let (min, max) = Lex::parse_pair(&a[2], &a[3])?;
        let (start, end) = ctx.read_zset(&a[1])?.map_or((0, 0), |z| Lex::ranks(min, max, z, false));
        Ok(Reply::Int((end - start) as i64))
    })
}

/// Removes the ranks `span` picks (parsed before the key is looked up, as Redis does).
fn remrange(ctx: &mut Ctx, key: &[u8], span: impl FnOnce(&ZSetValue) -> (usize, usize)) -> CmdResult {
    let Some(z) = ctx.write_zset(key)? else {
        return Ok(Reply::Int(0));
    };
    let (start, end) = span(z);
    let removed = z.remove_range(start, end);
    ctx.remove_if_empty(key);
    ctx.dirty += removed as u64;
    Ok(Reply::Int(removed as i64))
}

/// ZREMRANGEBYRANK key start stop
pub fn zremrangebyrank(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let (s, e) = (args::int(&a[2])?, args::int(&a[3])?);
        remrange(ctx, &a[1], |z| args::clamp_range(s, e, z.len()).map_or((0, 0), |(s, e)| (s, e + 1)))
    })
}

/// ZREMRANGEBYSCORE key min max
pub fn zremrangebyscore(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let r = ScoreRange::parse(&a[2], &a[3])?;
        remrange(ctx, &a[1], |z| r.ranks(z))
    })
}

/// ZREMRANGEBYLEX key min max
pub fn zremrangebylex(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let (min, max) = Lex::parse_pair(&a[2], &a[3])?;
        remrange(ctx, &a[1], |z| Lex::ranks(min, max, z, false))
    })
}
