//! The TTL commands: EXPIRE PEXPIRE EXPIREAT PEXPIREAT (with 7.0's NX XX GT LT), EXPIRETIME PEXPIRETIME
//! TTL PTTL and PERSIST.
//!
//! Propagation follows Redis 7.0: a deadline that is set is logged as `PEXPIREAT key <unix-ms>` so that
//! replaying the AOF later does not extend the key's life; a deadline already in the past deletes the key
//! and is logged as `DEL key`.

use super::run;
use crate::cmd::ctx::Ctx;
use crate::cmd::{args, CmdResult};
use crate::resp::Reply;
use crate::util::eq_ic;
use bytes::Bytes;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
}

/// EXPIRE key seconds [NX|XX|GT|LT]
pub(super) fn expire(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| expire_generic(ctx, a, "expire", Unit::Seconds, true))
}

/// PEXPIRE key milliseconds [NX|XX|GT|LT]
pub(super) fn pexpire(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| expire_generic(ctx, a, "pexpire", Unit::Millis, true))
}

/// EXPIREAT key unix-time-seconds [NX|XX|GT|LT]
pub(super) fn expireat(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| expire_generic(ctx, a, "expireat", Unit::Seconds, false))
}

/// PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]
pub(super) fn pexpireat(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| expire_generic(ctx, a, "pexpireat", Unit::Millis, false))
}

/// The 7.0 condition flags of the EXPIRE commands.
#[derive(Default)]
struct Conditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl Conditions {
    /// Parses the trailing options; Redis reports an unknown option before a bad combination.
    fn parse(opts: &[Bytes]) -> CmdResult<Conditions> {
        let mut c = Conditions::default();
        for o in opts {
            if eq_ic(o, "nx") {
                c.nx = true;
            } else if eq_ic(o, "xx") {
                c.xx = true;
            } else if eq_ic(o, "gt") {
                c.gt = true;
            } else if eq_ic(o, "lt") {
                c.lt = true;
            } else {
                return Err(Reply::err(format!("ERR Unsupported option {}", String::from_utf8_lossy(o))));
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(Reply::err("ERR NX and XX, GT or LT options at the same time are not compatible"));
        }
        if c.gt && c.lt {
            return Err(Reply::err("ERR GT and LT options at the same time are not compatible"));
        }
        Ok(c)
    }

    /// Whether a key whose current deadline is `current` gets the new deadline `when`. No TTL counts as an
    /// infinite deadline: GT can never beat it and LT always does.
    fn allow(&self, current: Option<i64>, when: i64) -> bool {
        match current {
            None => !self.xx && !self.gt,
            Some(c) => !(self.nx || (self.gt && when <= c) || (self.lt && when >= c)),
        }
    }
}

fn expire_generic(ctx: &mut Ctx, a: &[Bytes], name: &str, unit: Unit, relative: bool) -> CmdResult {
    let key = &a[1];
    let cond = Conditions::parse(&a[3..])?;
    let invalid = || Reply::err(format!("ERR invalid expire time in '{name}' command"));
    let mut when = args::int(&a[2])?;
    if unit == Unit::Seconds {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    if relative {
        when = when.checked_add(ctx.now_ms).ok_or_else(invalid)?;
    }
    if !ctx.exists(key) {
        return Ok(Reply::Int(0));
    }
    if !cond.allow(ctx.db_ref(key).expire_of(key), when) {
        return Ok(Reply::Int(0));
    }
    ctx.dirty += 1;
    // While loading an AOF a past deadline is kept as logged; the key expires once the server runs.
    if when <= ctx.now_ms && !ctx.loading {
        ctx.db_mut(key).remove(key);
        ctx.also_propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
        return Ok(Reply::Int(1));
    }
    // i64::MIN is the table's "no TTL" marker; a deadline that early is already past anyway.
    let when = when.max(i64::MIN + 1);
    ctx.db_mut(key).set_expire(key, Some(when));
    ctx.also_propagate(vec![Bytes::from_static(b"PEXPIREAT"), key.clone(), Bytes::from(when.to_string())]);
    Ok(Reply::Int(1))
}

/// What the TTL commands report: remaining or absolute time, in seconds or milliseconds.
fn ttl_generic(ctx: &mut Ctx, key: &[u8], unit: Unit, absolute: bool) -> Reply {
    if ctx.lookup_read(key).is_none() {
        return Reply::Int(-2);
    }
    let Some(at) = ctx.db_ref(key).expire_of(key) else {
        return Reply::Int(-1);
    };
    let t = if absolute { at } else { at.saturating_sub(ctx.now_ms) }.max(0);
    Reply::Int(match unit {
        Unit::Millis => t,
        // Rounded to the nearest second, written so that i64::MAX does not overflow.
        Unit::Seconds => t / 1000 + i64::from(t % 1000 >= 500),
    })
}

/// TTL key
pub(super) fn ttl(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    ttl_generic(ctx, &a[1], Unit::Seconds, false)
}

/// PTTL key
pub(super) fn pttl(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    ttl_generic(ctx, &a[1], Unit::Millis, false)
}

/// EXPIRETIME key
pub(super) fn expiretime(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    ttl_generic(ctx, &a[1], Unit::Seconds, true)
}

/// PEXPIRETIME key
pub(super) fn pexpiretime(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    ttl_generic(ctx, &a[1], Unit::Millis, true)
}

/// PERSIST key
pub(super) fn persist(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    let key = &a[1];
    if ctx.expire_of(key).is_none() {
        return Reply::Int(0);
    }
    ctx.db_mut(key).set_expire(key, None);
    ctx.dirty += 1;
    Reply::Int(1)
}
