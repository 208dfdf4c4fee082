//! String commands: GET SET ... (the strings family).

use super::args;
use super::ctx::Ctx;
use super::errors::SYNTAX;
use super::spec::{flags::*, spec, CommandSpec, Handler::Engine};
use super::CmdResult;
use crate::resp::Reply;
use crate::types::{StrValue, Value};
use crate::util::eq_ic;
use bytes::Bytes;

pub static COMMANDS: &[CommandSpec] = &[
    spec("get", 2, READONLY | FAST, 1, 1, 1, &["read", "string", "fast"], Engine(get)),
    spec("set", -3, WRITE | DENYOOM, 1, 1, 1, &["write", "string", "slow"], Engine(set)),
];

fn run(f: impl FnOnce() -> CmdResult) -> Reply {
    f().unwrap_or_else(|e| e)
}

/// GET key
pub fn get(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        Ok(match ctx.read_str(&a[1])? {
            Some(s) => Reply::bulk(s.to_bytes()),
            None => Reply::Nil,
        })
    })
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]
pub fn set(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
        let mut expire: Option<i64> = None;
        let mut i = 3;
        while i < a.len() {
            let o = &a[i];
            let next = a.get(i + 1);
            if eq_ic(o, "nx") && !xx {
                nx = true;
            } else if eq_ic(o, "xx") && !nx {
                xx = true;
            } else if eq_ic(o, "get") {
                get = true;
            } else if eq_ic(o, "keepttl") && expire.is_none() {
                keepttl = true;
            } else if (eq_ic(o, "ex") || eq_ic(o, "px") || eq_ic(o, "exat") || eq_ic(o, "pxat"))
                && !keepttl
                && expire.is_none()
                && next.is_some()
            {
                let v = args::int(next.map_or(&[][..], |b| &b[..]))?;
                let invalid = || Reply::err("ERR invalid expire time in 'set' command");
                if v <= 0 {
                    return Err(invalid());
                }
                let abs = if eq_ic(o, "ex") {
                    v.checked_mul(1000).and_then(|ms| ms.checked_add(ctx.now_ms))
                } else if eq_ic(o, "px") {
                    v.checked_add(ctx.now_ms)
                } else if eq_ic(o, "exat") {
                    v.checked_mul(1000)
                } else {
                    Some(v)
                };
                expire = Some(abs.ok_or_else(invalid)?);
                i += 1;
            } else {
                return Err(Reply::err(SYNTAX));
            }
            i += 1;
        }
        let key = &a[1];
        let old = if get {
            match ctx.read_str(key)? {
                Some(s) => Reply::bulk(s.to_bytes()),
                None => Reply::Nil,
            }
        } else {
            Reply::Nil
        };
        let exists = ctx.exists(key);
        if (nx && exists) || (xx && !exists) {
            return Ok(if get { old } else { Reply::Nil });
        }
        let ttl = if keepttl { ctx.expire_of(key) } else { expire };
        ctx.set_value(key, Value::Str(StrValue::from_bytes(&a[2])), ttl);
        ctx.dirty += 1;
        if let Some(at) = expire {
            // Logged with an absolute deadline so replay does not extend the key's life.
            let mut argv = vec![Bytes::from_static(b"SET"), a[1].clone(), a[2].clone()];
            argv.push(Bytes::from_static(b"PXAT"));
            argv.push(Bytes::from(at.to_string()));
            if keepttl {
                argv.push(Bytes::from_static(b"KEEPTTL"));
            }
            ctx.also_propagate(argv);
        }
        Ok(if get { old } else { Reply::ok() })
    })
}
