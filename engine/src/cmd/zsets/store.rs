//! ZUNION, ZINTER, ZDIFF, their STORE forms, and ZINTERCARD. Inputs may be sorted sets or plain sets (every
//! member of a set scores 1), as in Redis. Union and intersection visit the inputs from the smallest to the
//! largest (a stable order, like the merge sort behind glibc's `qsort`), so weighted sums are added in the
//! order Redis adds them and round the same way.

use super::range::store_result;
use super::{args, entries_reply, parse_score, ranged_int, run, Ctx, Entries};
use crate::cmd::errors::{SYNTAX, WRONGTYPE};
use crate::cmd::CmdResult;
use crate::resp::Reply;
use crate::types::zset::compare;
use crate::types::{SetValue, Value, ZSetValue};
use crate::util::eq_ic;
use bytes::Bytes;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

/// Where the result goes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Reply,
    Store,
    Card,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Redis's `zunionInterAggregate`: an infinite sum of opposite signs counts as 0.
    fn apply(self, target: &mut f64, v: f64) {
        match self {
            Aggregate::Sum => {
                *target += v;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min if v < *target => *target = v,
            Aggregate::Max if v > *target => *target = v,
            _ => {}
        }
    }
}

/// One input.
enum Src<'a> {
    Missing,
    Z(&'a ZSetValue),
    S(&'a SetValue),
}

impl Src<'_> {
    fn len(&self) -> usize {
        match self {
            Src::Missing => 0,
            Src::Z(z) => z.len(),
            Src::S(s) => s.len(),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match self {
            Src::Missing => {}
            Src::Z(z) => z.iter().for_each(|(m, s)| f(m, s)),
            Src::S(s) => s.for_each(|m| f(m, 1.0)),
        }
    }

    /// The score `m` has in this input (1 for a set member).
    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::Missing => None,
            Src::Z(z) => z.score(m),
            Src::S(s) => s.contains(m).then_some(1.0),
        }
    }
}

/// ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]
pub fn zunionstore(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| generic(ctx, a, Op::Union, Mode::Store))
}

/// ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]
pub fn zinterstore(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| generic(ctx, a, Op::Inter, Mode::Store))
}

/// ZDIFFSTORE destination numkeys key [key ...]
pub fn zdiffstore(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| generic(ctx, a, Op::Diff, Mode::Store))
}

/// ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zunion(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| generic(ctx, a, Op::Union, Mode::Reply))
}

/// ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zinter(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| generic(ctx, a, Op::Inter, Mode::Reply))
}

/// ZDIFF numkeys key [key ...] [WITHSCORES]
pub fn zdiff(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| generic(ctx, a, Op::Diff, Mode::Reply))
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn zintercard(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| generic(ctx, a, Op::Inter, Mode::Card))
}

fn generic(ctx: &mut Ctx, a: &[Bytes], op: Op, mode: Mode) -> CmdResult {
    let numkeys_at = if mode == Mode::Store { 2 } else { 1 };
    let numkeys = args::int(&a[numkeys_at])?;
    if numkeys < 1 {
        let name = String::from_utf8_lossy(&a[0]).to_ascii_lowercase();
        return Err(Reply::err(format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    let first = numkeys_at + 1;
    if numkeys as u64 > (a.len() - first) as u64 {
        return Err(Reply::err(SYNTAX));
    }
    let n = numkeys as usize;
    let keys = &a[first..first + n];
    // Keys may live on different shards: expire each, then hold them all with shared borrows.
    for k in keys {
        ctx.expire_if_needed(k);
        let found = match ctx.peek(k) {
            None => false,
            Some(Value::ZSet(_) | Value::Set(_)) => true,
            Some(_) => return Err(Reply::err(WRONGTYPE)),
        };
        if mode != Mode::Store {
            let stats = &mut ctx.stats;
            *if found { &mut stats.keyspace_hits } else { &mut stats.keyspace_misses } += 1;
        }
    }

    let (mut weights, mut agg, mut withscores, mut limit) = (vec![1.0; n], Aggregate::Sum, false, 0usize);
    let mut j = first + n;
    while j < a.len() {
        let left = a.len() - j;
        let o = &a[j];
        if op != Op::Diff && mode != Mode::Card && left > n && eq_ic(o, "weights") {
            for (w, arg) in weights.iter_mut().zip(&a[j + 1..]) {
                *w = parse_score(arg).ok_or_else(|| Reply::err("ERR weight value is not a float"))?;
            }
            j += n + 1;
        } else if op != Op::Diff && mode != Mode::Card && left >= 2 && eq_ic(o, "aggregate") {
            let v = &a[j + 1];
            agg = if eq_ic(v, "sum") {
                Aggregate::Sum
            } else if eq_ic(v, "min") {
                Aggregate::Min
            } else if eq_ic(v, "max") {
                Aggregate::Max
            } else {
                return Err(Reply::err(SYNTAX));
            };
            j += 2;
        } else if mode == Mode::Reply && eq_ic(o, "withscores") {
            withscores = true;
            j += 1;
        } else if mode == Mode::Card && left >= 2 && eq_ic(o, "limit") {
            limit = ranged_int(&a[j + 1], 0, i64::MAX, Some("ERR LIMIT can't be negative"))? as usize;
            j += 2;
        } else {
            return Err(Reply::err(SYNTAX));
        }
    }

    let srcs: Vec<Src> = keys
        .iter()
        .map(|k| match ctx.peek(k) {
            Some(Value::ZSet(z)) => Src::Z(z),
            Some(Value::Set(s)) => Src::S(s),
            _ => Src::Missing,
        })
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    if op != Op::Diff {
        order.sort_by_key(|&i| srcs[i].len());
    }

    let mut result: Entries = Vec::new();
    match op {
        Op::Union => {
            let mut acc: HashMap<Box<[u8]>, f64> = HashMap::new();
            for &i in &order {
                srcs[i].for_each(|m, s| {
                    let mut v = weights[i] * s;
                    if v.is_nan() {
                        v = 0.0;
                    }
                    match acc.get_mut(m) {
                        Some(t) => agg.apply(t, v),
                        None => {
                            acc.insert(m.into(), v);
                        }
                    }
                });
            }
            result.extend(acc);
        }
        Op::Inter => {
            let (head, rest) = order.split_first().expect("numkeys >= 1");
            let others: Vec<(&Src, f64)> = rest.iter().map(|&i| (&srcs[i], weights[i])).collect();
            let mut card = 0usize;
            srcs[*head].for_each(|m, s| {
                if limit > 0 && card >= limit {
                    return;
                }
                let mut score = weights[*head] * s;
                if score.is_nan() {
                    score = 0.0;
                }
                for (other, w) in &others {
                    match other.score(m) {
                        Some(v) => agg.apply(&mut score, v * w),
                        None => return,
                    }
                }
                card += 1;
                if mode != Mode::Card {
                    result.push((m.into(), score));
                }
            });
            if mode == Mode::Card {
                return Ok(Reply::Int(card as i64));
            }
        }
        Op::Diff => {
            let others = &srcs[1..];
            srcs[0].for_each(|m, s| {
                if others.iter().all(|o| o.score(m).is_none()) {
                    result.push((m.into(), s));
                }
            });
        }
    }
    result.sort_by(|x, y| compare(x.1, &x.0, y.1, &y.0));
    drop(srcs);
    match mode {
        Mode::Store => store_result(ctx, &a[1], result),
        _ => Ok(entries_reply(ctx.proto, result.iter().map(|(m, s)| (&m[..], *s)), withscores)),
    }
}
