//! String commands (the strings family): GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX MGET MSET MSETNX
//! APPEND STRLEN GETRANGE SUBSTR SETRANGE INCR DECR INCRBY DECRBY INCRBYFLOAT LCS.
//!
//! Replies, errors, `OBJECT ENCODING` results and AOF propagation follow Redis 7.0: relative expiries are
//! logged as `SET k v PXAT <ms>` / `PEXPIREAT k <ms>`, INCRBYFLOAT as `SET k <v> KEEPTTL`, GETSET as SET,
//! GETDEL as DEL. Multi-key commands (MGET, MSET, MSETNX) touch each key through its own `Ctx` call because
//! the keys may live on different shards.

use super::args;
use super::ctx::Ctx;
use super::errors::{NOT_FLOAT, NOT_INT, OVERFLOW, SYNTAX};
use super::spec::{flags::*, spec, CommandSpec, Handler::Engine};
use super::{arity_error, CmdResult};
use crate::resp::Reply;
use crate::types::string::long_double::{incr_by_float, FloatError};
use crate::types::{StrValue, Value};
use crate::util::eq_ic;
use bytes::Bytes;

const READ_FAST: &[&str] = &["read", "string", "fast"];
const READ_SLOW: &[&str] = &["read", "string", "slow"];
const WRITE_FAST: &[&str] = &["write", "string", "fast"];
const WRITE_SLOW: &[&str] = &["write", "string", "slow"];

// One line per command reads like `COMMAND INFO`; rustfmt would spread each over ten lines.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("get", 2, READONLY | FAST, 1, 1, 1, READ_FAST, Engine(get)),
    spec("set", -3, WRITE | DENYOOM, 1, 1, 1, WRITE_SLOW, Engine(set)),
    spec("setnx", 3, WRITE | DENYOOM | FAST, 1, 1, 1, WRITE_FAST, Engine(setnx)),
    spec("setex", 4, WRITE | DENYOOM, 1, 1, 1, WRITE_SLOW, Engine(setex)),
    spec("psetex", 4, WRITE | DENYOOM, 1, 1, 1, WRITE_SLOW, Engine(setex)),
    spec("getset", 3, WRITE | DENYOOM | FAST, 1, 1, 1, WRITE_FAST, Engine(getset)),
    spec("getdel", 2, WRITE | FAST, 1, 1, 1, WRITE_FAST, Engine(getdel)),
    spec("getex", -2, WRITE | FAST, 1, 1, 1, WRITE_FAST, Engine(getex)),
    spec("mget", -2, READONLY | FAST, 1, -1, 1, READ_FAST, Engine(mget)),
    spec("mset", -3, WRITE | DENYOOM, 1, -1, 2, WRITE_SLOW, Engine(mset)),
    spec("msetnx", -3, WRITE | DENYOOM, 1, -1, 2, WRITE_SLOW, Engine(mset)),
    spec("append", 3, WRITE | DENYOOM | FAST, 1, 1, 1, WRITE_FAST, Engine(append)),
    spec("strlen", 2, READONLY | FAST, 1, 1, 1, READ_FAST, Engine(strlen)),
    spec("getrange", 4, READONLY, 1, 1, 1, READ_SLOW, Engine(getrange)),
    spec("substr", 4, READONLY, 1, 1, 1, READ_SLOW, Engine(getrange)),
    spec("setrange", 4, WRITE | DENYOOM, 1, 1, 1, WRITE_SLOW, Engine(setrange)),
    spec("incr", 2, WRITE | DENYOOM | FAST, 1, 1, 1, WRITE_FAST, Engine(incr)),
    spec("decr", 2, WRITE | DENYOOM | FAST, 1, 1, 1, WRITE_FAST, Engine(incr)),
    spec("incrby", 3, WRITE | DENYOOM | FAST, 1, 1, 1, WRITE_FAST, Engine(incr)),
    spec("decrby", 3, WRITE | DENYOOM | FAST, 1, 1, 1, WRITE_FAST, Engine(incr)),
    spec("incrbyfloat", 3, WRITE | DENYOOM | FAST, 1, 1, 1, WRITE_FAST, Engine(incrbyfloat)),
    spec("lcs", -3, READONLY, 1, 2, 1, READ_SLOW, Engine(lcs)),
];

const TOO_BIG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

fn run(f: impl FnOnce() -> CmdResult) -> Reply {
    f().unwrap_or_else(|e| e)
}

/// The lower-case command name, as Redis prints it in "invalid expire time in '<name>' command".
fn cmd_name(a: &[Bytes]) -> String {
    String::from_utf8_lossy(&a[0]).to_ascii_lowercase()
}

/// GET's reply for `key` (bulk or nil), counting a hit or miss; WRONGTYPE for another type.
fn get_reply(ctx: &mut Ctx, key: &[u8]) -> CmdResult {
    Ok(match ctx.read_str(key)? {
        Some(s) => Reply::bulk(s.to_bytes()),
        None => Reply::Nil,
    })
}

/// The largest string APPEND/SETRANGE may build. Replay of an AOF is not limited, as in Redis.
fn max_len(ctx: &Ctx) -> u128 {
    if ctx.loading {
        u128::MAX
    } else {
        ctx.cfg.proto_max_bulk_len as u128
    }
}

/// GET key
pub fn get(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| get_reply(ctx, &a[1]))
}

/// How an expiry argument is to be read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Unit {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// The options SET and GETEX share. `expire` is the unit and the index of its argument: the number is only
/// parsed after all options are known, so a syntax error wins over a bad number, as in Redis.
#[derive(Default)]
struct Opts {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(Unit, usize)>,
}

/// Parses `a[start..]` as SET options (`for_set`) or GETEX options. An expiry option may repeat (the last one
/// wins) but not mix with another unit, KEEPTTL or PERSIST; NX and XX exclude each other.
fn parse_opts(a: &[Bytes], start: usize, for_set: bool) -> CmdResult<Opts> {
    let mut o = Opts::default();
    let mut i = start;
    while i < a.len() {
        let opt = &a[i];
        let has_next = i + 1 < a.len();
        let unit = if eq_ic(opt, "ex") {
            Some(Unit::Ex)
        } else if eq_ic(opt, "px") {
            Some(Unit::Px)
        } else if eq_ic(opt, "exat") {
            Some(Unit::ExAt)
        } else if eq_ic(opt, "pxat") {
            Some(Unit::PxAt)
        } else {
            None
        };
        if for_set && eq_ic(opt, "nx") && !o.xx {
            o.nx = true;
        } else if for_set && eq_ic(opt, "xx") && !o.nx {
            o.xx = true;
        } else if for_set && eq_ic(opt, "get") {
            o.get = true;
        } else if for_set && eq_ic(opt, "keepttl") && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && eq_ic(opt, "persist") && o.expire.is_none() {
            o.persist = true;
        } else if let Some(u) =
            unit.filter(|&u| has_next && !o.keepttl && !o.persist && o.expire.is_none_or(|(prev, _)| prev == u))
        {
            o.expire = Some((u, i + 1));
            i += 1;
        } else {
            return Err(Reply::err(SYNTAX));
        }
        i += 1;
    }
    Ok(o)
}

/// Turns an expiry argument into an absolute unix-ms deadline, with Redis's checks: the number must be
/// positive and the deadline must not overflow.
fn deadline(ctx: &Ctx, arg: &[u8], unit: Unit, cmd: &str) -> CmdResult<i64> {
    let v = args::int(arg)?;
    let invalid = || Reply::err(format!("ERR invalid expire time in '{cmd}' command"));
    if v <= 0 {
        return Err(invalid());
    }
    let ms = match unit {
        Unit::Ex | Unit::ExAt => v.checked_mul(1000).ok_or_else(invalid)?,
        Unit::Px | Unit::PxAt => v,
    };
    match unit {
        Unit::Ex | Unit::Px => ms.checked_add(ctx.now_ms).filter(|&t| t > 0).ok_or_else(invalid),
        Unit::ExAt | Unit::PxAt => Ok(ms),
    }
}

/// `SET key value PXAT <ms>`: how every write with an expiry is logged, so replay never extends a life.
fn propagate_set_pxat(ctx: &mut Ctx, key: &Bytes, value: &Bytes, at: i64) {
    ctx.also_propagate(vec![
        Bytes::from_static(b"SET"),
        key.clone(),
        value.clone(),
        Bytes::from_static(b"PXAT"),
        Bytes::from(at.to_string()),
    ]);
}

/// Stores a SET-style value: integer-looking short values become `int`, others `embstr`/`raw`.
fn store(ctx: &mut Ctx, key: &[u8], value: &[u8], expire_at: Option<i64>) {
    ctx.set_value(key, Value::Str(StrValue::from_bytes(value)), expire_at);
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]
pub fn set(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let o = parse_opts(a, 3, true)?;
        let expire = match o.expire {
            Some((unit, at)) => Some(deadline(ctx, &a[at], unit, "set")?),
            None => None,
        };
        let key = &a[1];
        let old = if o.get { Some(get_reply(ctx, key)?) } else { None };
        // Redis's lookupKeyWrite: a key whose TTL has passed goes first (and is logged as DEL).
        ctx.expire_if_needed(key);
        if o.nx || o.xx {
            let exists = ctx.exists(key);
            if (o.nx && exists) || (o.xx && !exists) {
                return Ok(old.unwrap_or(Reply::Nil));
            }
        }
        let ttl = if o.keepttl { ctx.expire_of(key) } else { expire };
        store(ctx, key, &a[2], ttl);
        ctx.dirty += 1;
        if let Some(at) = expire {
            // Redis 7.0 logs exactly this, dropping NX/XX/GET, whatever the unit was.
            propagate_set_pxat(ctx, key, &a[2], at);
        }
        Ok(old.unwrap_or_else(Reply::ok))
    })
}

/// SETNX key value
pub fn setnx(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    if ctx.exists(&a[1]) {
        return Reply::Int(0);
    }
    store(ctx, &a[1], &a[2], None);
    ctx.dirty += 1;
    Reply::Int(1)
}

/// SETEX key seconds value / PSETEX key milliseconds value
pub fn setex(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let unit = if eq_ic(&a[0], "psetex") { Unit::Px } else { Unit::Ex };
        let at = deadline(ctx, &a[2], unit, &cmd_name(a))?;
        ctx.expire_if_needed(&a[1]);
        store(ctx, &a[1], &a[3], Some(at));
        ctx.dirty += 1;
        propagate_set_pxat(ctx, &a[1], &a[3], at);
        Ok(Reply::ok())
    })
}

/// GETSET key value (logged as SET, as Redis does; the TTL is dropped)
pub fn getset(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let old = get_reply(ctx, &a[1])?;
        store(ctx, &a[1], &a[2], None);
        ctx.dirty += 1;
        ctx.also_propagate(vec![Bytes::from_static(b"SET"), a[1].clone(), a[2].clone()]);
        Ok(old)
    })
}

/// GETDEL key (logged as DEL)
pub fn getdel(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let old = get_reply(ctx, &a[1])?;
        if ctx.delete(&a[1]) {
            ctx.dirty += 1;
            ctx.also_propagate(vec![Bytes::from_static(b"DEL"), a[1].clone()]);
        }
        Ok(old)
    })
}

/// GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]
///
/// Logged as `PEXPIREAT k <ms>`, `PERSIST k`, or `DEL k` when an absolute deadline has already passed; plain
/// GETEX and PERSIST on a key without TTL change nothing and log nothing.
pub fn getex(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let o = parse_opts(a, 2, false)?;
        let key = &a[1];
        // A missing key answers nil before the expiry argument is even looked at (Redis order).
        let value = match ctx.read_str(key)? {
            Some(s) => Reply::bulk(s.to_bytes()),
            None => return Ok(Reply::Nil),
        };
        if let Some((unit, at)) = o.expire {
            let when = deadline(ctx, &a[at], unit, "getex")?;
            let absolute = matches!(unit, Unit::ExAt | Unit::PxAt);
            if absolute && when <= ctx.now_ms && !ctx.loading {
                ctx.delete(key);
                ctx.also_propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
            } else {
                ctx.db_mut(key).set_expire(key, Some(when));
                let argv = vec![Bytes::from_static(b"PEXPIREAT"), key.clone(), Bytes::from(when.to_string())];
                ctx.also_propagate(argv);
            }
            ctx.dirty += 1;
        } else if o.persist && ctx.expire_of(key).is_some() {
            ctx.db_mut(key).set_expire(key, None);
            ctx.dirty += 1;
            ctx.also_propagate(vec![Bytes::from_static(b"PERSIST"), key.clone()]);
        }
        Ok(value)
    })
}

/// MGET key [key ...]: nil for missing keys and for keys of another type.
pub fn mget(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    let items = a[1..]
        .iter()
        .map(|k| match ctx.lookup_read(k) {
            Some(Value::Str(s)) => Reply::bulk(s.to_bytes()),
            _ => Reply::Nil,
        })
        .collect();
    Reply::Array(items)
}

/// MSET key value [key value ...] / MSETNX key value [key value ...]
///
/// MSETNX checks every key before writing any; a key given twice takes its last value.
pub fn mset(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    if a.len().is_multiple_of(2) {
        return arity_error(&cmd_name(a));
    }
    let nx = eq_ic(&a[0], "msetnx");
    if nx && a[1..].chunks(2).any(|kv| ctx.exists(&kv[0])) {
        return Reply::Int(0);
    }
    for kv in a[1..].chunks(2) {
        ctx.expire_if_needed(&kv[0]);
        store(ctx, &kv[0], &kv[1], None);
    }
    ctx.dirty += (a.len() / 2) as u64;
    if nx {
        Reply::Int(1)
    } else {
        Reply::ok()
    }
}

/// APPEND key value: creates the key like SET would, otherwise appends in place (the value becomes `raw`).
pub fn append(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let (key, tail) = (&a[1], &a[2]);
        let limit = max_len(ctx);
        let len = match ctx.write_str(key)? {
            Some(s) => {
                if (s.len() + tail.len()) as u128 > limit {
                    return Err(Reply::err(TOO_BIG));
                }
                s.append(tail)
            }
            None => {
                store(ctx, key, tail, None);
                tail.len()
            }
        };
        ctx.dirty += 1;
        Ok(Reply::Int(len as i64))
    })
}

/// STRLEN key
pub fn strlen(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(Reply::Int(ctx.read_str(&a[1])?.map_or(0, |s| s.len() as i64))))
}

/// GETRANGE's index rules over a string of `len` bytes: negative indexes count from the end and are then
/// clamped to 0 (so `-10 -8` on "hello" is "h"), both negative with start > end is empty.
fn substr_range(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    let n = len as i64;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let s = if start < 0 { n + start } else { start }.max(0);
    let e = (if end < 0 { n + end } else { end }.max(0)).min(n - 1);
    (n > 0 && s <= e).then_some((s as usize, e as usize))
}

/// GETRANGE key start end / SUBSTR key start end: an empty string (not nil) for a missing key.
pub fn getrange(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let start = args::int(&a[2])?;
        let end = args::int(&a[3])?;
        let Some(s) = ctx.read_str(&a[1])? else {
            return Ok(Reply::bulk(Bytes::new()));
        };
        Ok(s.with_bytes(|b| match substr_range(b.len(), start, end) {
            Some((s, e)) => Reply::bulk(Bytes::copy_from_slice(&b[s..=e])),
            None => Reply::bulk(Bytes::new()),
        }))
    })
}

/// SETRANGE key offset value: zero-pads as needed; an empty value changes nothing and creates no key.
pub fn setrange(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let offset = args::int(&a[2])?;
        if offset < 0 {
            return Err(Reply::err("ERR offset is out of range"));
        }
        let (key, bytes) = (&a[1], &a[3]);
        let too_big = offset as u128 + bytes.len() as u128 > max_len(ctx);
        let len = match ctx.write_str(key)? {
            Some(s) if bytes.is_empty() => return Ok(Reply::Int(s.len() as i64)),
            None if bytes.is_empty() => return Ok(Reply::Int(0)),
            _ if too_big => return Err(Reply::err(TOO_BIG)),
            Some(s) => s.set_range(offset as usize, bytes),
            None => {
                let mut v = StrValue::from_raw(Vec::new());
                let len = v.set_range(offset as usize, bytes);
                ctx.set_value(key, Value::Str(v), None);
                len
            }
        };
        ctx.dirty += 1;
        Ok(Reply::Int(len as i64))
    })
}

/// INCR key / DECR key / INCRBY key n / DECRBY key n: the result is stored `int`, the TTL is kept.
pub fn incr(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let name = &a[0];
        let by = if eq_ic(name, "incr") {
            1
        } else if eq_ic(name, "decr") {
            -1
        } else if eq_ic(name, "incrby") {
            args::int(&a[2])?
        } else {
            let n = args::int(&a[2])?;
            n.checked_neg().ok_or_else(|| Reply::err("ERR decrement would overflow"))?
        };
        let key = &a[1];
        let value = match ctx.write_str(key)? {
            Some(s) => {
                let old = s.as_i64().ok_or_else(|| Reply::err(NOT_INT))?;
                let new = old.checked_add(by).ok_or_else(|| Reply::err(OVERFLOW))?;
                *s = StrValue::from_i64(new);
                new
            }
            None => {
                ctx.set_value(key, Value::Str(StrValue::from_i64(by)), None);
                by
            }
        };
        ctx.dirty += 1;
        Ok(Reply::Int(value))
    })
}

/// INCRBYFLOAT key increment: computed in emulated 80-bit long double and printed in Redis's human form
/// ("10.6", "5200", "1000.09999999999999998"), stored without the integer encoding, TTL kept, logged as
/// `SET key <result> KEEPTTL` so replay does not redo float arithmetic.
pub fn incrbyfloat(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let key = &a[1];
        let result = match ctx.write_str(key)? {
            Some(s) => s.with_bytes(|cur| incr_by_float(cur, &a[2])),
            None => incr_by_float(b"0", &a[2]),
        };
        let text = Bytes::from(result.map_err(|e| {
            Reply::err(match e {
                FloatError::NotFloat => NOT_FLOAT,
                FloatError::NanOrInfinity => "ERR increment would produce NaN or Infinity",
            })
        })?);
        let value = StrValue::from_bytes_no_int(&text);
        match ctx.write_str(key)? {
            Some(s) => *s = value,
            None => ctx.set_value(key, Value::Str(value), None),
        }
        ctx.dirty += 1;
        let set = Bytes::from_static(b"SET");
        ctx.also_propagate(vec![set, key.clone(), text.clone(), Bytes::from_static(b"KEEPTTL")]);
        Ok(Reply::Bulk(text))
    })
}

/// One common run of LCS IDX: inclusive ranges in the first and the second string.
type Match = ((usize, usize), (usize, usize));

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
///
/// Missing keys are empty strings. Matches are reported from the end of the strings backwards, as Redis
/// walks its dynamic-programming table, and the table may not need more than proto-max-bulk-len bytes.
pub fn lcs(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let mut fetch = |key: &[u8]| match ctx.lookup_read(key) {
            None => Some(Vec::new()),
            Some(Value::Str(s)) => Some(s.to_bytes()),
            Some(_) => None,
        };
        let (Some(x), Some(y)) = (fetch(&a[1]), fetch(&a[2])) else {
            return Err(Reply::err("ERR The specified keys must contain string values"));
        };
        let (mut want_len, mut want_idx, mut with_len, mut min_len) = (false, false, false, 0i64);
        let mut i = 3;
        while i < a.len() {
            let opt = &a[i];
            if eq_ic(opt, "idx") {
                want_idx = true;
            } else if eq_ic(opt, "len") {
                want_len = true;
            } else if eq_ic(opt, "withmatchlen") {
                with_len = true;
            } else if eq_ic(opt, "minmatchlen") && i + 1 < a.len() {
                min_len = args::int(&a[i + 1])?.max(0);
                i += 1;
            } else {
                return Err(Reply::err(SYNTAX));
            }
            i += 1;
        }
        if want_idx && want_len {
            return Err(Reply::err("ERR If you want both the length and indexes, please just use IDX."));
        }
        if x.len() >= u32::MAX as usize - 1 || y.len() >= u32::MAX as usize - 1 {
            return Err(Reply::err("ERR String too long for LCS"));
        }
        let cells = (x.len() as u128 + 1) * (y.len() as u128 + 1);
        if cells * 4 > ctx.cfg.proto_max_bulk_len as u128 {
            return Err(Reply::err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
        }
        let (common, matches) = lcs_walk(&x, &y, !want_len || want_idx, min_len);
        if want_idx {
            let items = matches
                .iter()
                .map(|&((a0, a1), (b0, b1))| {
                    let mut m = vec![
                        Reply::Array(vec![Reply::Int(a0 as i64), Reply::Int(a1 as i64)]),
                        Reply::Array(vec![Reply::Int(b0 as i64), Reply::Int(b1 as i64)]),
                    ];
                    if with_len {
                        m.push(Reply::Int((a1 - a0 + 1) as i64));
                    }
                    Reply::Array(m)
                })
                .collect();
            return Ok(Reply::Map(vec![
                (Reply::bulk("matches"), Reply::Array(items)),
                (Reply::bulk("len"), Reply::Int(common.len() as i64)),
            ]));
        }
        if want_len {
            return Ok(Reply::Int(common.len() as i64));
        }
        Ok(Reply::bulk(common))
    })
}

/// Builds the LCS table of `x` and `y` and walks it back from the end. Returns the common subsequence (only
/// its length is meaningful unless `walk`) and the runs of consecutive matches of at least `min_len` bytes,
/// last run first. On a tie the walk moves along `y` first, which decides which runs Redis reports.
fn lcs_walk(x: &[u8], y: &[u8], walk: bool, min_len: i64) -> (Vec<u8>, Vec<Match>) {
    let w = y.len() + 1;
    let mut t = vec![0u32; (x.len() + 1) * w];
    for i in 1..=x.len() {
        for j in 1..=y.len() {
            t[i * w + j] = if x[i - 1] == y[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let total = t[x.len() * w + y.len()] as usize;
    if !walk {
        return (vec![0; total], Vec::new());
    }
    let mut common = Vec::with_capacity(total);
    let mut matches = Vec::new();
    let mut run: Option<Match> = None;
    let mut flush = |run: &mut Option<Match>| {
        if let Some(m) = run.take() {
            if (m.0 .1 - m.0 .0 + 1) as i64 >= min_len {
                matches.push(m);
            }
        }
    };
    let (mut i, mut j) = (x.len(), y.len());
    while i > 0 && j > 0 {
        if x[i - 1] == y[j - 1] {
            common.push(x[i - 1]);
            i -= 1;
            j -= 1;
            // Walking backwards, a run only ever grows at its start.
            run = Some(match run {
                Some(((_, a1), (_, b1))) => ((i, a1), (j, b1)),
                None => ((i, i), (j, j)),
            });
            if i == 0 || j == 0 {
                flush(&mut run);
            }
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            flush(&mut run);
        }
    }
    flush(&mut run);
    common.reverse();
    (common, matches)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{bulk, err, Kit};
    use super::*;
    use crate::resp::Protocol;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    fn enc(k: &Kit, key: &str) -> &'static str {
        k.ks.dbs[0].get(key.as_bytes()).expect("key exists").value.encoding_name()
    }

    fn ttl(k: &Kit, key: &str) -> Option<i64> {
        k.ks.dbs[0].expire_of(key.as_bytes())
    }

    fn exists(k: &Kit, key: &str) -> bool {
        k.ks.dbs[0].get(key.as_bytes()).is_some()
    }

    /// What the last command asked to log, as text.
    fn logged(k: &Kit) -> Option<Vec<String>> {
        let p = k.propagated.as_ref()?;
        Some(
            p.iter()
                .map(|argv| {
                    let words: Vec<String> = argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
                    words.join(" ")
                })
                .collect(),
        )
    }

    fn logs(lines: &[&str]) -> Option<Vec<String>> {
        Some(lines.iter().map(|s| s.to_string()).collect())
    }

    fn with_hash(k: &mut Kit, key: &str) {
        k.ks.dbs[0].insert(key.as_bytes(), Value::Hash(Default::default()), None);
    }

    fn empty() -> Reply {
        bulk("")
    }

    #[test]
    fn get_and_plain_set() {
        let mut k = Kit::new();
        assert_eq!(k.run("GET k"), Reply::Nil);
        assert_eq!(k.run("SET k v"), Reply::ok());
        assert_eq!((k.dirty, k.propagated.clone()), (1, None));
        assert_eq!(k.run("GET k"), bulk("v"));
        with_hash(&mut k, "h");
        assert_eq!(k.run("GET h"), err(WRONGTYPE));
        // SET replaces any type and drops the TTL.
        assert_eq!(k.run("SET h 12"), Reply::ok());
        assert_eq!(enc(&k, "h"), "int");
        assert_eq!(k.run("SET k v EX 10"), Reply::ok());
        assert_eq!(k.run("SET k w"), Reply::ok());
        assert_eq!(ttl(&k, "k"), None);
        assert_eq!(k.run("set"), err("ERR wrong number of arguments for 'set' command"));
    }

    #[test]
    fn set_encodings() {
        let mut k = Kit::new();
        k.run("SET a 12345");
        assert_eq!(enc(&k, "a"), "int");
        k.run("SET a -9223372036854775808");
        assert_eq!(enc(&k, "a"), "int");
        for v in ["012", "1.5", "9223372036854775808", "+1", " 1"] {
            k.run_args(&[b"SET", b"a", v.as_bytes()]);
            assert_eq!(enc(&k, "a"), "embstr", "{v}");
        }
        k.run_args(&[b"SET", b"a", &[b'x'; 44]]);
        assert_eq!(enc(&k, "a"), "embstr");
        k.run_args(&[b"SET", b"a", &[b'x'; 45]]);
        assert_eq!(enc(&k, "a"), "raw");
    }

    #[test]
    fn set_expiry_options_and_propagation() {
        let mut k = Kit::new();
        let now = k.now;
        assert_eq!(k.run("SET k v EX 10"), Reply::ok());
        assert_eq!(ttl(&k, "k"), Some(now + 10_000));
        assert_eq!(logged(&k), logs(&[&format!("SET k v PXAT {}", now + 10_000)]));
        k.run("SET k v PX 1500 NX");
        assert_eq!(k.dirty, 0);
        k.run("SET k v2 px 1500 xx get");
        assert_eq!(logged(&k), logs(&[&format!("SET k v2 PXAT {}", now + 1500)]));
        k.run("SET k v EXAT 2000000000");
        assert_eq!(logged(&k), logs(&["SET k v PXAT 2000000000000"]));
        k.run("SET k v PXAT 2000000000123");
        assert_eq!(logged(&k), logs(&["SET k v PXAT 2000000000123"]));
        assert_eq!(ttl(&k, "k"), Some(2_000_000_000_123));
        // The last of repeated options of the same unit wins.
        k.run("SET k v EX 10 EX 20");
        assert_eq!(ttl(&k, "k"), Some(now + 20_000));
        // KEEPTTL keeps the deadline and is logged as sent.
        assert_eq!(k.run("SET k w KEEPTTL"), Reply::ok());
        assert_eq!(ttl(&k, "k"), Some(now + 20_000));
        assert_eq!((k.dirty, k.propagated.clone()), (1, None));
        // A past absolute deadline is accepted; the key is then gone for readers.
        assert_eq!(k.run("SET k v PXAT 1"), Reply::ok());
        assert_eq!(k.run("GET k"), Reply::Nil);
        // Expiry passes with the clock.
        k.run("SET k v PX 100");
        k.now += 100;
        assert_eq!(k.run("GET k"), Reply::Nil);
    }

    #[test]
    fn set_option_errors() {
        let mut k = Kit::new();
        let syntax = err(SYNTAX);
        for line in [
            "SET k v NX XX",
            "SET k v XX NX",
            "SET k v EX 10 PX 100",
            "SET k v KEEPTTL EX 10",
            "SET k v EX 10 KEEPTTL",
            "SET k v PXAT 10 EXAT 10",
            "SET k v EX",
            "SET k v EX abc NX XX",
            "SET k v KEEPTTL PERSIST",
            "SET k v FOO",
        ] {
            assert_eq!(k.run(line), syntax, "{line}");
        }
        let invalid = err("ERR invalid expire time in 'set' command");
        for line in [
            "SET k v EX 0",
            "SET k v EX -1",
            "SET k v PX 0",
            "SET k v EXAT 0",
            "SET k v EX 9223372036854775807",
            "SET k v PX 9223372036854775807",
            "SET k v EXAT 9223372036854775807",
        ] {
            assert_eq!(k.run(line), invalid, "{line}");
        }
        assert_eq!(k.run("SET k v EX abc"), err(NOT_INT));
        assert_eq!(k.run("SET k v EX 1.5"), err(NOT_INT));
        assert_eq!(k.run("SET k v PXAT 9223372036854775807"), Reply::ok());
        assert!(!exists(&k, "j"));
    }

    #[test]
    fn set_nx_xx_get() {
        let mut k = Kit::new();
        assert_eq!(k.run("SET k v XX"), Reply::Nil);
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("SET k v NX GET"), Reply::Nil);
        assert_eq!(k.dirty, 1);
        assert_eq!(k.run("SET k v2 NX GET"), bulk("v"));
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("SET k v2 NX"), Reply::Nil);
        assert_eq!(k.run("SET k v3 XX GET"), bulk("v"));
        assert_eq!(k.run("SET k v4 GET GET"), bulk("v3"));
        assert_eq!(k.run("SET k v5 nx nx"), Reply::Nil);
        assert_eq!(k.run("SET n v GET"), Reply::Nil);
        assert_eq!(k.run("GET n"), bulk("v"));
        with_hash(&mut k, "h");
        assert_eq!(k.run("SET h v GET"), err(WRONGTYPE));
        assert_eq!(k.run("SET h v NX"), Reply::Nil);
        assert_eq!(k.run("SET h v XX"), Reply::ok());
        // An expired key counts as missing.
        k.run("SET e v PX 10");
        k.now += 10;
        assert_eq!(k.run("SET e w NX"), Reply::ok());
        assert_eq!(ttl(&k, "e"), None);
    }

    #[test]
    fn setnx_setex_psetex() {
        let mut k = Kit::new();
        let now = k.now;
        assert_eq!(k.run("SETNX k 5"), Reply::Int(1));
        assert_eq!(enc(&k, "k"), "int");
        assert_eq!(k.run("SETNX k 6"), Reply::Int(0));
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("GET k"), bulk("5"));

        assert_eq!(k.run("SETEX s 10 v"), Reply::ok());
        assert_eq!(ttl(&k, "s"), Some(now + 10_000));
        assert_eq!(logged(&k), logs(&[&format!("SET s v PXAT {}", now + 10_000)]));
        assert_eq!(k.run("PSETEX p 1500 42"), Reply::ok());
        assert_eq!(enc(&k, "p"), "int");
        assert_eq!(logged(&k), logs(&[&format!("SET p 42 PXAT {}", now + 1500)]));
        for t in ["0", "-1", "9223372036854775807"] {
            let e = "ERR invalid expire time in 'setex' command";
            assert_eq!(k.run(&format!("SETEX s {t} v")), err(e));
            let e = "ERR invalid expire time in 'psetex' command";
            assert_eq!(k.run(&format!("PSETEX s {t} v")), err(e));
        }
        assert_eq!(k.run("SETEX s abc v"), err(NOT_INT));
        assert_eq!(k.run("SETEX s 10"), err("ERR wrong number of arguments for 'setex' command"));
        with_hash(&mut k, "h");
        assert_eq!(k.run("SETEX h 10 v"), Reply::ok());
        assert_eq!(k.run("GET h"), bulk("v"));
    }

    #[test]
    fn getset_and_getdel() {
        let mut k = Kit::new();
        assert_eq!(k.run("GETSET k 10"), Reply::Nil);
        assert_eq!(logged(&k), logs(&["SET k 10"]));
        assert_eq!(enc(&k, "k"), "int");
        k.run("SET k 10 EX 100");
        assert_eq!(k.run("GETSET k abc"), bulk("10"));
        assert_eq!(enc(&k, "k"), "embstr");
        assert_eq!(ttl(&k, "k"), None);
        with_hash(&mut k, "h");
        assert_eq!(k.run("GETSET h v"), err(WRONGTYPE));

        assert_eq!(k.run("GETDEL k"), bulk("abc"));
        assert_eq!((k.dirty, logged(&k)), (1, logs(&["DEL k"])));
        assert!(!exists(&k, "k"));
        assert_eq!(k.run("GETDEL k"), Reply::Nil);
        assert_eq!((k.dirty, k.propagated.clone()), (0, None));
        assert_eq!(k.run("GETDEL h"), err(WRONGTYPE));
        assert!(exists(&k, "h"));
    }

    #[test]
    fn getex_options() {
        let mut k = Kit::new();
        let now = k.now;
        assert_eq!(k.run("GETEX nokey EX 0"), Reply::Nil);
        assert_eq!(k.run("GETEX nokey EX abc"), Reply::Nil);
        assert_eq!(k.run("GETEX nokey FOO"), err(SYNTAX));
        k.run("SET k v");
        assert_eq!(k.run("GETEX k"), bulk("v"));
        assert_eq!((k.dirty, k.propagated.clone()), (0, None));
        assert_eq!(k.run("GETEX k EX 10"), bulk("v"));
        assert_eq!(ttl(&k, "k"), Some(now + 10_000));
        assert_eq!(logged(&k), logs(&[&format!("PEXPIREAT k {}", now + 10_000)]));
        assert_eq!(k.run("GETEX k PX 10 PX 20"), bulk("v"));
        assert_eq!(ttl(&k, "k"), Some(now + 20));
        k.run("GETEX k EXAT 2000000000");
        assert_eq!(logged(&k), logs(&["PEXPIREAT k 2000000000000"]));
        k.run("GETEX k PXAT 2000000000001");
        assert_eq!(ttl(&k, "k"), Some(2_000_000_000_001));
        assert_eq!(k.run("GETEX k PERSIST"), bulk("v"));
        assert_eq!((ttl(&k, "k"), logged(&k)), (None, logs(&["PERSIST k"])));
        assert_eq!(k.run("GETEX k PERSIST"), bulk("v"));
        assert_eq!((k.dirty, k.propagated.clone()), (0, None));
        // A deadline already passed deletes the key (logged as DEL) but still answers the value.
        assert_eq!(k.run("GETEX k PXAT 1"), bulk("v"));
        assert_eq!((k.dirty, logged(&k)), (1, logs(&["DEL k"])));
        assert!(!exists(&k, "k"));
        k.run("SET k v");
        for line in ["GETEX k NX", "GETEX k KEEPTTL", "GETEX k GET", "GETEX k PERSIST EX 10"] {
            assert_eq!(k.run(line), err(SYNTAX), "{line}");
        }
        assert_eq!(k.run("GETEX k EX 10 PERSIST"), err(SYNTAX));
        assert_eq!(k.run("GETEX k EX 10 PX 10"), err(SYNTAX));
        assert_eq!(k.run("GETEX k EX"), err(SYNTAX));
        assert_eq!(k.run("GETEX k EX 0"), err("ERR invalid expire time in 'getex' command"));
        assert_eq!(k.run("GETEX k EX abc"), err(NOT_INT));
        with_hash(&mut k, "h");
        assert_eq!(k.run("GETEX h"), err(WRONGTYPE));
        assert_eq!(k.run("GETEX h EX 0"), err(WRONGTYPE));
        assert_eq!(k.run("GETEX h FOO"), err(SYNTAX));
    }

    #[test]
    fn mget_mset_msetnx() {
        let mut k = Kit::new();
        assert_eq!(k.run("MSET a 1 b abc"), Reply::ok());
        assert_eq!(k.dirty, 2);
        assert_eq!((enc(&k, "a"), enc(&k, "b")), ("int", "embstr"));
        with_hash(&mut k, "h");
        let r = k.run("MGET a b h nokey");
        assert_eq!(r, Reply::Array(vec![bulk("1"), bulk("abc"), Reply::Nil, Reply::Nil]));
        assert_eq!(k.run("MSET a"), err("ERR wrong number of arguments for 'mset' command"));
        assert_eq!(k.run("MSET a 1 b"), err("ERR wrong number of arguments for 'mset' command"));
        assert_eq!(k.run("MSETNX a"), err("ERR wrong number of arguments for 'msetnx' command"));
        assert_eq!(k.run("MSETNX x 1 a 2"), Reply::Int(0));
        assert_eq!(k.dirty, 0);
        assert!(!exists(&k, "x"));
        assert_eq!(k.run("MSETNX x 1 y 2 x 3"), Reply::Int(1));
        assert_eq!((k.dirty, k.propagated.clone()), (3, None));
        assert_eq!(k.run("MGET x y"), Reply::Array(vec![bulk("3"), bulk("2")]));
        // MSET drops TTLs and overwrites other types.
        k.run("SET t v EX 100");
        k.run("MSET t w h 1");
        assert_eq!((ttl(&k, "t"), k.run("GET h")), (None, bulk("1")));
    }

    #[test]
    fn append_and_strlen() {
        let mut k = Kit::new();
        assert_eq!(k.run_args(&[b"APPEND", b"e", b""]), Reply::Int(0));
        assert!(exists(&k, "e"));
        assert_eq!(enc(&k, "e"), "embstr");
        assert_eq!(k.run("APPEND n 123"), Reply::Int(3));
        assert_eq!(enc(&k, "n"), "int");
        assert_eq!(k.run("APPEND n 4"), Reply::Int(4));
        assert_eq!((enc(&k, "n"), k.run("GET n")), ("raw", bulk("1234")));
        assert_eq!(k.run("INCR n"), Reply::Int(1235));
        assert_eq!(enc(&k, "n"), "int");
        k.run("SET d 1 EX 100");
        assert_eq!(k.run_args(&[b"APPEND", b"d", b""]), Reply::Int(1));
        assert_eq!(k.dirty, 1);
        assert_eq!((enc(&k, "d"), ttl(&k, "d")), ("raw", Some(k.now + 100_000)));
        assert_eq!(k.run_args(&[b"APPEND", b"l", &[b'a'; 50]]), Reply::Int(50));
        assert_eq!(enc(&k, "l"), "raw");

        assert_eq!(k.run("STRLEN nokey"), Reply::Int(0));
        assert_eq!(k.run("STRLEN l"), Reply::Int(50));
        k.run("SET i -120");
        assert_eq!(k.run("STRLEN i"), Reply::Int(4));
        with_hash(&mut k, "h");
        assert_eq!(k.run("STRLEN h"), err(WRONGTYPE));
        assert_eq!(k.run("APPEND h x"), err(WRONGTYPE));

        k.cfg.proto_max_bulk_len = 10;
        k.run("SET s 12345");
        assert_eq!(k.run("APPEND s 67890"), Reply::Int(10));
        let too_big = err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        assert_eq!(k.run("APPEND s x"), too_big);
        assert_eq!(k.run("STRLEN s"), Reply::Int(10));
    }

    #[test]
    fn getrange_like_redis() {
        let mut k = Kit::new();
        k.run("SET s hello");
        let cases = [
            ("0 -1", "hello"),
            ("-10 -8", "h"),
            ("0 -100", "h"),
            ("-1 -2", ""),
            ("3 1", ""),
            ("2 100", "llo"),
            ("-3 -1", "llo"),
            ("5 5", ""),
            ("4 4", "o"),
            ("-9223372036854775808 9223372036854775807", "hello"),
        ];
        for (range, want) in cases {
            assert_eq!(k.run(&format!("GETRANGE s {range}")), bulk(want), "{range}");
            assert_eq!(k.run(&format!("SUBSTR s {range}")), bulk(want), "{range}");
        }
        assert_eq!(k.run("GETRANGE nokey 0 -1"), empty());
        k.run("SET i -1234");
        assert_eq!(k.run("GETRANGE i 1 2"), bulk("12"));
        k.run_args(&[b"SET", b"e", b""]);
        assert_eq!(k.run("GETRANGE e 0 -1"), empty());
        assert_eq!(k.run("GETRANGE e -1 0"), empty());
        assert_eq!(k.run("GETRANGE s a 1"), err(NOT_INT));
        assert_eq!(k.run("GETRANGE s 1 b"), err(NOT_INT));
        with_hash(&mut k, "h");
        assert_eq!(k.run("GETRANGE h 0 1"), err(WRONGTYPE));
        assert_eq!(k.run("GETRANGE h x 1"), err(NOT_INT));
    }

    #[test]
    fn setrange_like_redis() {
        let mut k = Kit::new();
        assert_eq!(k.run("SETRANGE n 3 ab"), Reply::Int(5));
        assert_eq!(k.run("GET n"), Reply::Bulk(Bytes::from_static(b"\0\0\0ab")));
        assert_eq!(enc(&k, "n"), "raw");
        assert_eq!(k.run_args(&[b"SETRANGE", b"m", b"5", b""]), Reply::Int(0));
        assert!(!exists(&k, "m"));
        assert_eq!(k.dirty, 0);
        k.run("SET i 123");
        assert_eq!(k.run_args(&[b"SETRANGE", b"i", b"9", b""]), Reply::Int(3));
        assert_eq!((k.dirty, enc(&k, "i")), (0, "int"));
        assert_eq!(k.run("SETRANGE i 1 x"), Reply::Int(3));
        assert_eq!((k.run("GET i"), enc(&k, "i")), (bulk("1x3"), "raw"));
        k.run("SET s hello EX 100");
        assert_eq!(k.run("SETRANGE s 6 world"), Reply::Int(11));
        assert_eq!((k.dirty, k.propagated.clone()), (1, None));
        assert_eq!(k.run("GET s"), Reply::Bulk(Bytes::from_static(b"hello\0world")));
        assert_eq!(ttl(&k, "s"), Some(k.now + 100_000));
        assert_eq!(k.run("SETRANGE s -1 x"), err("ERR offset is out of range"));
        assert_eq!(k.run("SETRANGE s a x"), err(NOT_INT));
        let too_big = err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        assert_eq!(k.run("SETRANGE s 536870912 x"), too_big);
        assert_eq!(k.run("SETRANGE s 9223372036854775807 x"), too_big);
        assert_eq!(k.run("SETRANGE z 536870912 x"), too_big);
        assert_eq!(k.run_args(&[b"SETRANGE", b"z", b"9223372036854775807", b""]), Reply::Int(0));
        with_hash(&mut k, "h");
        assert_eq!(k.run_args(&[b"SETRANGE", b"h", b"0", b""]), err(WRONGTYPE));
        assert_eq!(k.run("SETRANGE h -1 x"), err("ERR offset is out of range"));
    }

    #[test]
    fn incr_family() {
        let mut k = Kit::new();
        assert_eq!(k.run("INCR k"), Reply::Int(1));
        assert_eq!((enc(&k, "k"), k.propagated.clone()), ("int", None));
        assert_eq!(k.run("INCRBY k 9223372036854775806"), Reply::Int(i64::MAX));
        assert_eq!(k.run("INCR k"), err(OVERFLOW));
        assert_eq!(k.run("DECRBY k -1"), err(OVERFLOW));
        assert_eq!(k.run("GET k"), bulk("9223372036854775807"));
        k.run("SET k -9223372036854775808");
        assert_eq!(k.run("DECR k"), err(OVERFLOW));
        assert_eq!(k.run("INCRBY k -1"), err(OVERFLOW));
        assert_eq!(k.run("DECRBY k 9223372036854775807"), err(OVERFLOW));
        assert_eq!(k.run("DECRBY k -9223372036854775808"), err("ERR decrement would overflow"));
        assert_eq!(k.run("DECRBY k -9223372036854775807"), Reply::Int(-1));
        assert_eq!(k.run("DECR d"), Reply::Int(-1));
        assert_eq!(k.run("DECRBY d 10"), Reply::Int(-11));
        assert_eq!(k.run("INCRBY d 20"), Reply::Int(9));
        for bad in ["abc", "01", "1.5", " 1", "12345678901234567890"] {
            k.run_args(&[b"SET", b"b", bad.as_bytes()]);
            assert_eq!(k.run("INCR b"), err(NOT_INT), "{bad}");
        }
        assert_eq!(k.run("INCRBY x abc"), err(NOT_INT));
        assert_eq!(k.run("INCRBY x 1.0"), err(NOT_INT));
        assert!(!exists(&k, "x"));
        with_hash(&mut k, "h");
        assert_eq!(k.run("INCR h"), err(WRONGTYPE));
        assert_eq!(k.run("INCRBY h abc"), err(NOT_INT));
        // The TTL survives, a raw value becomes int.
        k.run("SET t 5 EX 100");
        k.run("APPEND t 0");
        assert_eq!(k.run("INCR t"), Reply::Int(51));
        assert_eq!((enc(&k, "t"), ttl(&k, "t")), ("int", Some(k.now + 100_000)));
    }

    #[test]
    fn incrbyfloat_formats_and_propagates() {
        let mut k = Kit::new();
        let cases = [
            ("10.5", "0.1", "10.6"),
            ("5.0e3", "2.0e2", "5200"),
            ("3.0", "0", "3"),
            ("1", "-1", "0"),
            ("0", "-0.0", "0"),
            ("1e20", "0", "100000000000000000000"),
            ("0.1", "0.2", "0.3"),
            ("10", "-20.25", "-10.25"),
            // Redis's long double shows through for larger values (checked against redis-server 7.0.15).
            ("1000", "0.1", "1000.09999999999999998"),
            ("123456.789", "0.1", "123456.8890000000000029"),
            ("0x10", "1", "17"),
            ("-1e-30", "0", "0"),
        ];
        for (start, by, want) in cases {
            k.run_args(&[b"SET", b"f", start.as_bytes()]);
            assert_eq!(k.run(&format!("INCRBYFLOAT f {by}")), bulk(want), "{start} + {by}");
            assert_eq!(logged(&k), logs(&[&format!("SET f {want} KEEPTTL")]));
            assert_eq!(enc(&k, "f"), "embstr");
        }
        assert_eq!(k.run("INCRBYFLOAT n 1"), bulk("1"));
        assert_eq!(enc(&k, "n"), "embstr");
        k.run("SET t 1 EX 100");
        assert_eq!(k.run("INCRBYFLOAT t 1.5"), bulk("2.5"));
        assert_eq!(ttl(&k, "t"), Some(k.now + 100_000));
        assert_eq!(k.run("INCRBYFLOAT t abc"), err(NOT_FLOAT));
        let nan_inf = err("ERR increment would produce NaN or Infinity");
        assert_eq!(k.run("INCRBYFLOAT t inf"), nan_inf);
        k.run("SET t 1e4932");
        assert_eq!(k.run("INCRBYFLOAT t 1e4932"), nan_inf);
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("INCRBYFLOAT t 1e4933"), err(NOT_FLOAT));
        assert_eq!(k.run("INCRBYFLOAT u 0.12345678901234567890123456789"), bulk("0.12345678901234568"));
        k.run("SET u 1e30");
        assert_eq!(k.run("INCRBYFLOAT u 0.5"), bulk("1000000000000000000024696061952"));
        assert_eq!(enc(&k, "u"), "embstr");
        k.run("SET u 1e50");
        k.run("INCRBYFLOAT u 0");
        assert_eq!(enc(&k, "u"), "raw");
        k.run("SET s abc");
        assert_eq!(k.run("INCRBYFLOAT s 1"), err(NOT_FLOAT));
        with_hash(&mut k, "h");
        assert_eq!(k.run("INCRBYFLOAT h abc"), err(WRONGTYPE));
    }

    #[test]
    fn lcs_replies_match_redis() {
        let mut k = Kit::new();
        k.run("MSET key1 ohmytext key2 mynewtext");
        let resp2 = |k: &mut Kit, line: &str| String::from_utf8(k.run(line).to_vec(Protocol::Resp2)).unwrap();
        // Byte strings captured from redis-server 7.0.15.
        let cases = [
            ("LCS key1 key2", "$6\r\nmytext\r\n"),
            ("LCS key1 key2 LEN", ":6\r\n"),
            ("LCS key1 key2 IDX", "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"),
            ("LCS key1 key2 IDX MINMATCHLEN 4", "*4\r\n$7\r\nmatches\r\n*1\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n$3\r\nlen\r\n:6\r\n"),
            ("LCS key1 key2 IDX MINMATCHLEN 4 WITHMATCHLEN", "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"),
            ("LCS key1 key2 IDX WITHMATCHLEN", "*4\r\n$7\r\nmatches\r\n*2\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n*3\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n:2\r\n$3\r\nlen\r\n:6\r\n"),
            ("LCS key1 key2 MINMATCHLEN -5 IDX", "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"),
            ("LCS key1 key2 WITHMATCHLEN", "$6\r\nmytext\r\n"),
            ("LCS key1 key2 LEN WITHMATCHLEN MINMATCHLEN 3", ":6\r\n"),
            ("LCS key1 key2 LEN IDX", "-ERR If you want both the length and indexes, please just use IDX.\r\n"),
            ("LCS key1 key2 FOO", "-ERR syntax error\r\n"),
            ("LCS key1 key2 MINMATCHLEN", "-ERR syntax error\r\n"),
            ("LCS key1 key2 MINMATCHLEN abc", "-ERR value is not an integer or out of range\r\n"),
            ("LCS key1 nokey", "$0\r\n\r\n"),
            ("LCS key1 nokey LEN", ":0\r\n"),
            ("LCS nokey key1 IDX", "*4\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n"),
        ];
        for (line, want) in cases {
            assert_eq!(resp2(&mut k, line), want, "{line}");
        }
        k.run("MSET a1 abcabc b1 cbacba i1 12345 i2 2345");
        assert_eq!(
            resp2(&mut k, "LCS a1 b1 IDX WITHMATCHLEN"),
            "*4\r\n$7\r\nmatches\r\n*3\r\n*3\r\n*2\r\n:5\r\n:5\r\n*2\r\n:3\r\n:3\r\n:1\r\n*3\r\n*2\r\n:4\r\n:4\r\n*2\r\n:1\r\n:1\r\n:1\r\n*3\r\n*2\r\n:2\r\n:2\r\n*2\r\n:0\r\n:0\r\n:1\r\n$3\r\nlen\r\n:3\r\n"
        );
        assert_eq!(
            resp2(&mut k, "LCS i1 i2 IDX"),
            "*4\r\n$7\r\nmatches\r\n*1\r\n*2\r\n*2\r\n:1\r\n:4\r\n*2\r\n:0\r\n:3\r\n$3\r\nlen\r\n:4\r\n"
        );
        k.proto = Protocol::Resp3;
        let r = String::from_utf8(k.run("LCS key1 key2 IDX WITHMATCHLEN").to_vec(Protocol::Resp3)).unwrap();
        assert_eq!(r, "%2\r\n$7\r\nmatches\r\n*2\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n*3\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n:2\r\n$3\r\nlen\r\n:6\r\n");
        with_hash(&mut k, "h");
        let not_str = err("ERR The specified keys must contain string values");
        assert_eq!(k.run("LCS key1 h"), not_str);
        assert_eq!(k.run("LCS h key1 FOO"), not_str);
        k.cfg.proto_max_bulk_len = 80;
        let too_big = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len";
        assert_eq!(k.run("LCS key1 key2"), err(too_big));
    }

    #[test]
    fn command_table_matches_redis() {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), 22);
        let lcs = COMMANDS.iter().find(|c| c.name == "lcs").unwrap();
        assert_eq!((lcs.arity, lcs.first, lcs.last, lcs.step), (-3, 1, 2, 1));
        let mset = COMMANDS.iter().find(|c| c.name == "mset").unwrap();
        let args: Vec<Bytes> = ["mset", "a", "1", "b", "2"].iter().map(|s| Bytes::from(*s)).collect();
        assert_eq!(mset.key_indexes(&args), vec![1, 3]);
    }

    /// One step of the model test.
    #[derive(Debug, Clone)]
    enum Op {
        Set(usize, Vec<u8>),
        Append(usize, Vec<u8>),
        IncrBy(usize, i64),
        GetRange(usize, i64, i64),
        SetRange(usize, usize, Vec<u8>),
        Strlen(usize),
        Del(usize),
        MSet(Vec<(usize, Vec<u8>)>),
        Get(usize),
    }

    const KEYS: [&[u8]; 3] = [b"a", b"b", b"c"];

    fn value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (-1000i64..1000).prop_map(|n| n.to_string().into_bytes()),
            Just(b"9223372036854775800".to_vec()),
            proptest::collection::vec(prop_oneof![Just(b'x'), Just(b'0'), Just(b'7'), Just(b'-')], 0..6),
            proptest::collection::vec(any::<u8>(), 40..50),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = 0..KEYS.len();
        prop_oneof![
            (key.clone(), value()).prop_map(|(k, v)| Op::Set(k, v)),
            (key.clone(), value()).prop_map(|(k, v)| Op::Append(k, v)),
            (key.clone(), prop_oneof![-100i64..100, Just(i64::MAX), Just(i64::MIN)])
                .prop_map(|(k, n)| Op::IncrBy(k, n)),
            (key.clone(), -60i64..60, -60i64..60).prop_map(|(k, s, e)| Op::GetRange(k, s, e)),
            (key.clone(), 0usize..60, value()).prop_map(|(k, o, v)| Op::SetRange(k, o, v)),
            key.clone().prop_map(Op::Strlen),
            key.clone().prop_map(Op::Del),
            key.clone().prop_map(Op::Get),
            proptest::collection::vec((key, value()), 1..4).prop_map(Op::MSet),
        ]
    }

    /// GETRANGE in the model, written as the documented rules rather than as the handler's arithmetic.
    fn model_range(v: &[u8], start: i64, end: i64) -> Vec<u8> {
        let n = v.len() as i64;
        if start < 0 && end < 0 && start > end {
            return Vec::new();
        }
        let from_end = |i: i64| if i < 0 { (n + i).max(0) } else { i };
        let (s, e) = (from_end(start), from_end(end).min(n - 1));
        (0..n).filter(|&i| i >= s && i <= e).map(|i| v[i as usize]).collect()
    }

    /// Runs one op against the model and returns the reply Redis would give.
    fn model_step(m: &mut HashMap<Vec<u8>, Vec<u8>>, op: &Op) -> Reply {
        let int = |n: usize| Reply::Int(n as i64);
        match op {
            Op::Set(k, v) => {
                m.insert(KEYS[*k].to_vec(), v.clone());
                Reply::ok()
            }
            Op::Append(k, v) => {
                let cur = m.entry(KEYS[*k].to_vec()).or_default();
                cur.extend_from_slice(v);
                int(cur.len())
            }
            Op::IncrBy(k, n) => {
                let cur = m.get(KEYS[*k]).cloned().unwrap_or_else(|| b"0".to_vec());
                let Some(old) = crate::util::parse_i64(&cur) else {
                    return err(NOT_INT);
                };
                let Some(new) = old.checked_add(*n) else {
                    return err(OVERFLOW);
                };
                m.insert(KEYS[*k].to_vec(), new.to_string().into_bytes());
                Reply::Int(new)
            }
            Op::GetRange(k, s, e) => Reply::bulk(model_range(m.get(KEYS[*k]).map_or(&[][..], |v| v), *s, *e)),
            Op::SetRange(k, off, v) => {
                if v.is_empty() {
                    return int(m.get(KEYS[*k]).map_or(0, Vec::len));
                }
                let cur = m.entry(KEYS[*k].to_vec()).or_default();
                if cur.len() < off + v.len() {
                    cur.resize(off + v.len(), 0);
                }
                cur[*off..off + v.len()].copy_from_slice(v);
                int(cur.len())
            }
            Op::Strlen(k) => int(m.get(KEYS[*k]).map_or(0, Vec::len)),
            Op::Del(k) => {
                m.remove(KEYS[*k]);
                Reply::Nil
            }
            Op::Get(k) => m.get(KEYS[*k]).map_or(Reply::Nil, |v| Reply::bulk(v.clone())),
            Op::MSet(kvs) => {
                for (k, v) in kvs {
                    m.insert(KEYS[*k].to_vec(), v.clone());
                }
                Reply::ok()
            }
        }
    }

    fn kit_step(k: &mut Kit, op: &Op) -> Reply {
        match op {
            Op::Set(i, v) => k.run_args(&[b"SET", KEYS[*i], v]),
            Op::Append(i, v) => k.run_args(&[b"APPEND", KEYS[*i], v]),
            Op::IncrBy(i, n) => k.run_args(&[b"INCRBY", KEYS[*i], n.to_string().as_bytes()]),
            Op::GetRange(i, s, e) => {
                k.run_args(&[b"GETRANGE", KEYS[*i], s.to_string().as_bytes(), e.to_string().as_bytes()])
            }
            Op::SetRange(i, o, v) => k.run_args(&[b"SETRANGE", KEYS[*i], o.to_string().as_bytes(), v]),
            Op::Strlen(i) => k.run_args(&[b"STRLEN", KEYS[*i]]),
            Op::Del(i) => {
                k.ks.dbs[0].remove(KEYS[*i]);
                Reply::Nil
            }
            Op::Get(i) => k.run_args(&[b"GET", KEYS[*i]]),
            Op::MSet(kvs) => {
                let mut argv: Vec<&[u8]> = vec![b"MSET"];
                for (i, v) in kvs {
                    argv.push(KEYS[*i]);
                    argv.push(v);
                }
                k.run_args(&argv)
            }
        }
    }

    proptest! {
        #[test]
        fn string_commands_agree_with_a_model(ops in proptest::collection::vec(op(), 1..60)) {
            let mut k = Kit::new();
            let mut m: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            for op in &ops {
                let want = model_step(&mut m, op);
                prop_assert_eq!(kit_step(&mut k, op), want, "{:?}", op);
                for key in KEYS {
                    let got = k.ks.dbs[0].get(key).map(|e| match &e.value {
                        Value::Str(s) => {
                            // The encoding invariants OBJECT ENCODING relies on.
                            match s {
                                StrValue::Int(n) => assert_eq!(StrValue::from_bytes(n.to_string().as_bytes()), *s),
                                StrValue::Emb(b) => assert!(b.len() <= crate::types::string::EMBSTR_LIMIT),
                                StrValue::Inline(_) => {}
                                StrValue::Raw(_) => {}
                            }
                            s.to_bytes()
                        }
                        other => panic!("not a string: {other:?}"),
                    });
                    prop_assert_eq!(got.as_ref(), m.get(key), "key {:?} after {:?}", key, op);
                }
            }
        }
    }
}
