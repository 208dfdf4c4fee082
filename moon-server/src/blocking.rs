//! Blocking pops: BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP.
//!
//! A blocking command first tries to pop under its keys' shard locks, as the non-blocking form would. When
//! nothing is there it registers a [`Waiter`] in each key's queue (`Shard::blocked`), under the same locks,
//! and the connection awaits it (`Next::Block`). Clients are served as Redis serves them: after a write
//! command that touched a key somebody waits on (`note_ready`, called by the executor path), the writing
//! thread walks that key's queue in FIFO order and pops on behalf of each waiter while data remains
//! (`serve_ready`), handing the reply to the waiter and waking its connection on whatever thread it lives.
//! So a later command of the writer already sees the list emptied, and the log order is the execution order.
//!
//! A waiter is claimed exactly once, under its own small lock: by a server (reply stored), or by its
//! connection giving up (timeout, disconnect, CLIENT KILL). The connection then removes it from every queue.
//! A newcomer does not pop data that earlier waiters on the key are still owed: it queues behind them.

use crate::client::Client;
use crate::dispatch::{self, Next};
use crate::server::{unix_ms, Counters, Server};
use crate::shards::LockedShards;
use bytes::Bytes;
use engine::cmd::lists::{self, MoveLog};
use engine::cmd::{zsets, CommandSpec, Ctx};
use engine::resp::{Protocol, Reply};
use engine::types::Value;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Blocked clients by id (INFO `blocked_clients`, CLIENT UNBLOCK).
#[derive(Default)]
pub struct BlockedClients {
    by_id: Mutex<HashMap<u64, Arc<Waiter>>>,
}

/// INFO clients `blocked_clients`.
pub fn blocked_clients(server: &Server) -> usize {
    server.blocking.by_id.lock().len()
}

/// What a blocked client wants from a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// BLPOP / BRPOP (`count: None`), BLMPOP (`Some(n)`).
    Pop { left: bool, count: Option<usize> },
    /// BLMOVE / BRPOPLPUSH.
    Move { dst: Bytes, from_left: bool, to_left: bool, log: MoveLog },
    /// BZPOPMIN / BZPOPMAX (`count: None`), BZMPOP (`Some(n)`).
    ZPop { max: bool, count: Option<u64> },
}

/// One blocked client, queued on each of its keys.
pub struct Waiter {
    pub client_id: u64,
    db: usize,
    proto: Protocol,
    keys: Vec<Bytes>,
    op: Op,
    state: Mutex<WaitState>,
}

#[derive(Default)]
struct WaitState {
    /// Claimed: served (reply set) or given up by its connection.
    done: bool,
    reply: Option<Reply>,
    waker: Option<Waker>,
}

impl Waiter {
    fn is_done(&self) -> bool {
        self.state.lock().done
    }

    /// Ready once a server (or CLIENT UNBLOCK) has stored the reply.
    pub fn poll_reply(&self, cx: &mut Context<'_>) -> Poll<Reply> {
        let mut st = self.state.lock();
        if let Some(r) = st.reply.take() {
            return Poll::Ready(r);
        }
        if !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            st.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Claims the waiter for its connection; the reply instead when it was served meanwhile.
    fn give_up(&self) -> Option<Reply> {
        let mut st = self.state.lock();
        st.done = true;
        st.reply.take()
    }

    /// Stores the reply if nobody claimed the waiter yet; wakes the connection.
    fn complete(&self, reply: Reply) -> bool {
        let waker = {
            let mut st = self.state.lock();
            if st.done {
                return false;
            }
            st.done = true;
            st.reply = Some(reply);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }
}

/// What the connection awaits for a blocked command.
pub struct Blocked {
    pub waiter: Arc<Waiter>,
    /// None: wait forever (timeout 0).
    pub deadline: Option<Instant>,
}

/// A parsed blocking command.
struct Parsed {
    op: Op,
    keys: Vec<Bytes>,
    /// Milliseconds; 0 = forever.
    timeout_ms: i64,
}

/// Redis's `getTimeoutFromObjectOrReply` for seconds: a float, rounded up to milliseconds. Values beyond
/// the 64-bit range come out negative, as they do in Redis (the conversion saturates to LLONG_MIN there).
fn parse_timeout(arg: &[u8]) -> Result<i64, Reply> {
    let not_float = || Reply::err("ERR timeout is not a float or out of range");
    let s = std::str::from_utf8(arg).map_err(|_| not_float())?;
    let secs = parse_c_float(s).ok_or_else(not_float)?;
    let ms = (secs * 1000.0).ceil();
    // 2^63 ms and beyond do not fit; Redis's conversion makes them negative. (`-0.0` is fine: forever.)
    if !(0.0..9_223_372_036_854_775_808.0).contains(&ms) {
        return Err(Reply::err("ERR timeout is negative"));
    }
    Ok(ms as i64)
}

/// A float as C's strtold reads it (decimal, `inf`, hexadecimal integers); no spaces, no NaN.
fn parse_c_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let (neg, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let v = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()? as f64
    } else {
        if body.starts_with(['+', '-']) {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    if v.is_nan() {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// The keys of `a` in order, without repeats (a key given twice is waited on once, as in Redis).
fn unique(keys: &[Bytes]) -> Vec<Bytes> {
    let mut out: Vec<Bytes> = Vec::with_capacity(keys.len());
    for k in keys {
        if !out.contains(k) {
            out.push(k.clone());
        }
    }
    out
}

/// Parses a blocking command with Redis's order of checks.
fn parse(name: &str, a: &[Bytes]) -> Result<Parsed, Reply> {
    let last = a.len() - 1;
    Ok(match name {
        "blpop" | "brpop" => Parsed {
            timeout_ms: parse_timeout(&a[last])?,
            op: Op::Pop { left: name == "blpop", count: None },
            keys: unique(&a[1..last]),
        },
        "bzpopmin" | "bzpopmax" => Parsed {
            timeout_ms: parse_timeout(&a[last])?,
            op: Op::ZPop { max: name == "bzpopmax", count: None },
            keys: unique(&a[1..last]),
        },
        "brpoplpush" => Parsed {
            timeout_ms: parse_timeout(&a[3])?,
            op: Op::Move { dst: a[2].clone(), from_left: false, to_left: true, log: MoveLog::Rpoplpush },
            keys: vec![a[1].clone()],
        },
        "blmove" => {
            let from_left = lists::parse_side(&a[3])?;
            let to_left = lists::parse_side(&a[4])?;
            Parsed {
                timeout_ms: parse_timeout(&a[5])?,
                op: Op::Move { dst: a[2].clone(), from_left, to_left, log: MoveLog::Lmove },
                keys: vec![a[1].clone()],
            }
        }
        "blmpop" => {
            let p = lists::parse_mpop(a, 2)?;
            Parsed {
                timeout_ms: parse_timeout(&a[1])?,
                op: Op::Pop { left: p.left, count: Some(p.count) },
                keys: unique(&a[p.keys]),
            }
        }
        _ => {
            let p = zsets::parse_mpop(a, 2)?;
            Parsed {
                timeout_ms: parse_timeout(&a[1])?,
                op: Op::ZPop { max: p.max, count: Some(p.count) },
                keys: unique(&p.keys),
            }
        }
    })
}

/// What trying a waiter's operation on one key gave.
enum Outcome {
    Served(Reply),
    /// The key is missing or empty: nobody else can be served from it now.
    Empty,
    /// The key holds another type than this waiter wants: try the next waiter.
    WrongType,
}

/// The operation for a waiter on `key`, when serving it later.
fn serve_one(ctx: &mut Ctx, op: &Op, key: &Bytes) -> Outcome {
    let res = match op {
        Op::Pop { left, count } => lists::pop_for_blocking(ctx, key, *left, *count),
        Op::ZPop { max, count: None } => zsets::serve_bzpop(ctx, key, *max),
        Op::ZPop { max, count: Some(n) } => zsets::serve_bzmpop(ctx, key, *max, *n),
        Op::Move { dst, from_left, to_left, log } => {
            ctx.expire_if_needed(key);
            match ctx.peek(key) {
                None => return Outcome::Empty,
                Some(Value::List(_)) => {}
                Some(_) => return Outcome::WrongType,
            }
            // A destination of another type unblocks the client with WRONGTYPE, as Redis does.
            match lists::lmove_once(ctx, key, dst, *from_left, *to_left, *log) {
                Err(e) => return Outcome::Served(e),
                Ok(r) => Ok(r),
            }
        }
    };
    match res {
        Ok(Some(r)) => Outcome::Served(r),
        Ok(None) => Outcome::Empty,
        Err(_) => Outcome::WrongType,
    }
}

/// The command at call time (or inside EXEC): the first key with data is served; a key of another type is
/// an error. `None` when nothing is there; otherwise the reply and the key it came from.
fn serve_now(ctx: &mut Ctx, p: &Parsed, a: &[Bytes]) -> Option<(Reply, Bytes)> {
    if let Op::Move { dst, log, .. } = &p.op {
        let src = &p.keys[0];
        ctx.expire_if_needed(src);
        match ctx.peek(src) {
            None => return None,
            Some(Value::List(_)) => {}
            Some(_) => return Some((Reply::err(engine::cmd::errors::WRONGTYPE), src.clone())),
        }
        // Served at once: run the non-blocking form, which is also what gets logged.
        let argv = match log {
            MoveLog::Lmove => vec![Bytes::from_static(b"LMOVE"), src.clone(), dst.clone(), a[3].clone(), a[4].clone()],
            MoveLog::Rpoplpush => vec![Bytes::from_static(b"RPOPLPUSH"), src.clone(), dst.clone()],
        };
        let reply = engine::cmd::execute(ctx, &argv);
        if ctx.dirty > 0 && ctx.propagate.is_none() {
            ctx.also_propagate(argv);
        }
        return Some((reply, src.clone()));
    }
    for key in &p.keys {
        let res = match p.op {
            Op::Pop { left, count } => lists::pop_for_blocking(ctx, key, left, count),
            Op::ZPop { max, count: None } => zsets::serve_bzpop(ctx, key, max),
            Op::ZPop { max, count: Some(n) } => zsets::serve_bzmpop(ctx, key, max, n),
            Op::Move { .. } => Ok(None),
        };
        match res {
            Ok(Some(r)) => return Some((r, key.clone())),
            Ok(None) => {}
            Err(e) => return Some((e, key.clone())),
        }
    }
    None
}

/// Runs `f` with an engine context on `view` and does the executor's bookkeeping (expired keys, dirty
/// count, stats). Returns `f`'s result and the dirty count.
fn with_ctx<R>(
    server: &Server,
    view: &mut LockedShards<'_>,
    db: usize,
    proto: Protocol,
    f: impl FnOnce(&mut Ctx) -> R,
) -> (R, u64) {
    let cfg = server.engine_cfg.read();
    let mut ctx = Ctx::new(view, &cfg, unix_ms());
    ctx.db = db;
    ctx.proto = proto;
    let r = f(&mut ctx);
    crate::aof::feed(server, &mut ctx, db, None);
    let (dirty, stats) = (ctx.dirty, ctx.stats);
    let expired = std::mem::take(&mut ctx.expired);
    drop(ctx);
    drop(cfg);
    for (edb, key) in &expired {
        view.shard_for(key).touch(*edb, key);
    }
    Counters::add(&server.dirty, dirty);
    Counters::add(&server.stats.keyspace_hits, stats.keyspace_hits);
    Counters::add(&server.stats.keyspace_misses, stats.keyspace_misses);
    Counters::add(&server.stats.expired_keys, stats.expired_keys);
    (r, dirty)
}

/// After a blocking op changed `key`: WATCHers are told, and a BLMOVE destination with waiters of its own
/// is noted as ready.
fn after_write(view: &mut LockedShards<'_>, db: usize, key: &Bytes, op: &Op, ready: &mut Vec<(usize, Bytes)>) {
    view.shard_for(key).touch(db, key);
    if let Op::Move { dst, .. } = op {
        let shard = view.shard_for(dst);
        shard.touch(db, dst);
        if !shard.blocked.is_empty() && shard.blocked.contains_key(&(db, Box::from(&dst[..]))) {
            ready.push((db, dst.clone()));
        }
    }
}

/// Whether `key` has waiters that have not been served yet.
fn has_live_waiters(view: &mut LockedShards<'_>, db: usize, key: &[u8]) -> bool {
    let shard = view.shard_for(key);
    !shard.blocked.is_empty()
        && shard.blocked.get(&(db, Box::from(key))).is_some_and(|q| q.iter().any(|w| !w.is_done()))
}

/// A blocking command outside a transaction: served at once, or the client blocks.
pub fn run(server: &Server, client: &mut Client, spec: &CommandSpec, a: &[Bytes]) -> Next {
    let p = match parse(spec.name, a) {
        Ok(p) => p,
        Err(e) => return Next::Reply(e),
    };
    let db = client.db;
    let mut view = dispatch::lock_for(server, spec, a);
    // Data that earlier waiters are owed is theirs: queue behind them instead of taking it.
    let owed = p.keys.iter().any(|k| has_live_waiters(&mut view, db, k));
    if !owed {
        let (reply, dirty) = with_ctx(server, &mut view, db, client.proto, |ctx| serve_now(ctx, &p, a));
        if let Some((reply, key)) = reply {
            if dirty > 0 {
                after_write(&mut view, db, &key, &p.op, &mut client.ready_keys);
            }
            return Next::Reply(reply);
        }
    }
    let waiter = Arc::new(Waiter {
        client_id: client.id(),
        db,
        proto: client.proto,
        keys: p.keys,
        op: p.op,
        state: Mutex::new(WaitState::default()),
    });
    for key in &waiter.keys {
        view.shard_for(key).blocked.entry((db, Box::from(&key[..]))).or_default().push_back(waiter.clone());
        if owed {
            client.ready_keys.push((db, key.clone()));
        }
    }
    drop(view);
    server.blocking.by_id.lock().insert(client.id(), waiter.clone());
    crate::pubsub::refresh_flags(client, true);
    // A deadline beyond what the clock can represent is as good as forever.
    let deadline = (p.timeout_ms > 0).then(|| Instant::now().checked_add(Duration::from_millis(p.timeout_ms as u64)));
    let deadline = deadline.flatten();
    Next::Block(Blocked { waiter, deadline })
}

/// A blocking command queued in MULTI: never blocks; nothing there gives a null reply.
pub fn run_in_exec(
    server: &Server,
    client: &mut Client,
    view: &mut LockedShards<'_>,
    spec: &CommandSpec,
    a: &[Bytes],
) -> Reply {
    let p = match parse(spec.name, a) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let db = client.db;
    let (reply, dirty) = with_ctx(server, view, db, client.proto, |ctx| serve_now(ctx, &p, a));
    match reply {
        Some((reply, key)) => {
            if dirty > 0 {
                after_write(view, db, &key, &p.op, &mut client.ready_keys);
            }
            reply
        }
        None if matches!(p.op, Op::Move { .. }) => Reply::Nil,
        None => Reply::NilArray,
    }
}

/// The connection stopped waiting: the deadline passed. Returns the reply to send (the real one if the
/// client was served at the last moment, otherwise Redis's null array).
pub fn timed_out(server: &Server, client: &Client, b: &Blocked) -> Reply {
    let reply = b.waiter.give_up().unwrap_or(Reply::NilArray);
    finish(server, client, &b.waiter);
    reply
}

/// The connection is going away while blocked.
pub fn abandon(server: &Server, client: &Client, b: &Blocked) {
    b.waiter.give_up();
    finish(server, client, &b.waiter);
}

/// Removes a finished waiter from every queue and from the blocked-clients registry.
pub fn finish(server: &Server, client: &Client, waiter: &Arc<Waiter>) {
    for key in &waiter.keys {
        let mut shard = server.shards.lock(server.shards.shard_of(key));
        let k = (waiter.db, Box::from(&key[..]));
        if let Some(q) = shard.blocked.get_mut(&k) {
            q.retain(|w| !Arc::ptr_eq(w, waiter));
            if q.is_empty() {
                shard.blocked.remove(&k);
            }
        }
    }
    let mut by_id = server.blocking.by_id.lock();
    if by_id.get(&waiter.client_id).is_some_and(|w| Arc::ptr_eq(w, waiter)) {
        by_id.remove(&waiter.client_id);
    }
    drop(by_id);
    crate::pubsub::refresh_flags(client, false);
}

/// CLIENT UNBLOCK client-id [TIMEOUT|ERROR]: 1 when the client was blocked and is now released (with
/// the timeout reply, or the UNBLOCKED error).
pub fn client_unblock(server: &Server, a: &[Bytes]) -> Reply {
    match a.len() {
        3 | 4 => {}
        2 => return engine::cmd::arity_error("client|unblock"),
        _ => {
            return Reply::err(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&a[1])
            ))
        }
    }
    let Some(id) = engine::util::parse_i64(&a[2]) else {
        return Reply::err(engine::cmd::errors::NOT_INT);
    };
    let error = match a.get(3) {
        None => false,
        Some(r) if engine::util::eq_ic(r, "timeout") => false,
        Some(r) if engine::util::eq_ic(r, "error") => true,
        Some(_) => return Reply::err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let Some(w) = u64::try_from(id).ok().and_then(|id| server.blocking.by_id.lock().get(&id).cloned()) else {
        return Reply::Int(0);
    };
    let reply = if error { Reply::err("UNBLOCKED client unblocked via CLIENT UNBLOCK") } else { Reply::NilArray };
    Reply::Int(i64::from(w.complete(reply)))
}

/// Notes the keys a write command changed that have waiters (called under the command's locks when it
/// changed something). `swapdb`, `move` and `copy` can bring data into another database.
pub fn note_ready(
    view: &mut LockedShards<'_>,
    spec: &CommandSpec,
    args: &[Bytes],
    db: usize,
    ready: &mut Vec<(usize, Bytes)>,
) {
    if view.each().all(|s| s.blocked.is_empty()) {
        return;
    }
    match spec.name {
        "flushall" | "flushdb" => {}
        "swapdb" => {
            let dbs: Vec<usize> = [&args[1], &args[2]]
                .iter()
                .filter_map(|a| engine::util::parse_i64(a))
                .filter(|&d| d >= 0)
                .map(|d| d as usize)
                .collect();
            for shard in view.each() {
                for (d, key) in shard.blocked.keys() {
                    if dbs.contains(d) {
                        ready.push((*d, Bytes::copy_from_slice(key)));
                    }
                }
            }
        }
        "move" | "copy" => {
            use engine::keyspace::Store;
            let dbs = view.num_dbs();
            for key in &args[1..3] {
                let shard = view.shard_for(key);
                for d in 0..dbs {
                    if shard.blocked.contains_key(&(d, Box::from(&key[..]))) {
                        ready.push((d, key.clone()));
                    }
                }
            }
        }
        _ => {
            for i in spec.key_indexes(args) {
                let key = &args[i];
                let shard = view.shard_for(key);
                if !shard.blocked.is_empty() && shard.blocked.contains_key(&(db, Box::from(&key[..]))) {
                    ready.push((db, key.clone()));
                }
            }
        }
    }
}

/// Serves the waiters of every key in `client.ready_keys`, FIFO per key, while data remains. Runs on the
/// writer's thread right after its command, with no locks held.
pub fn serve_ready(server: &Server, client: &mut Client) {
    let mut work: VecDeque<(usize, Bytes)> = VecDeque::new();
    for rk in client.ready_keys.drain(..) {
        if !work.contains(&rk) {
            work.push_back(rk);
        }
    }
    while let Some((db, key)) = work.pop_front() {
        let sid = server.shards.shard_of(&key);
        let candidates: Vec<Arc<Waiter>> = {
            let mut shard = server.shards.lock(sid);
            let k = (db, Box::from(&key[..]));
            let Some(q) = shard.blocked.get_mut(&k) else { continue };
            q.retain(|w| !w.is_done());
            if q.is_empty() {
                shard.blocked.remove(&k);
                continue;
            }
            q.iter().cloned().collect()
        };
        for w in candidates {
            let mut shards = vec![sid];
            if let Op::Move { dst, .. } = &w.op {
                shards.push(server.shards.shard_of(dst));
            }
            let mut view = server.shards.lock_set(shards);
            let mut st = w.state.lock();
            if st.done {
                continue;
            }
            let (outcome, dirty) = with_ctx(server, &mut view, w.db, w.proto, |ctx| serve_one(ctx, &w.op, &key));
            let reply = match outcome {
                Outcome::Empty => break,
                Outcome::WrongType => continue,
                Outcome::Served(r) => r,
            };
            st.done = true;
            st.reply = Some(reply);
            let waker = st.waker.take();
            drop(st);
            let shard = view.shard_for(&key);
            let k = (db, Box::from(&key[..]));
            if let Some(q) = shard.blocked.get_mut(&k) {
                q.retain(|x| !Arc::ptr_eq(x, &w));
                if q.is_empty() {
                    shard.blocked.remove(&k);
                }
            }
            if dirty > 0 {
                let mut more = Vec::new();
                after_write(&mut view, db, &key, &w.op, &mut more);
                work.extend(more);
            }
            drop(view);
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Shared;
    use crate::config::Config;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn argv(s: &str) -> Vec<Bytes> {
        s.split(' ').map(b).collect()
    }

    fn client(id: u64) -> Client {
        let shared = Shared::for_test(id);
        Client::new(shared, true)
    }

    fn server() -> Server {
        let cfg = Config { shards: 4, ..Config::default() };
        Server::new(cfg, None, 0)
    }

    fn run_cmd(server: &Server, c: &mut Client, line: &str) -> Next {
        crate::dispatch::dispatch(server, c, argv(line))
    }

    fn blocked(n: Next) -> Blocked {
        match n {
            Next::Block(b) => b,
            _ => panic!("expected the client to block"),
        }
    }

    fn reply(n: Next) -> Reply {
        match n {
            Next::Reply(r) => r,
            _ => panic!("expected a reply"),
        }
    }

    fn take(b: &Blocked) -> Option<Reply> {
        b.waiter.state.lock().reply.take()
    }

    #[test]
    fn timeouts_parse_like_redis() {
        assert_eq!(parse_timeout(b"0"), Ok(0));
        assert_eq!(parse_timeout(b"1.5"), Ok(1500));
        assert_eq!(parse_timeout(b"1e-9"), Ok(1));
        assert_eq!(parse_timeout(b".01"), Ok(10));
        assert_eq!(parse_timeout(b"-0"), Ok(0));
        assert_eq!(parse_timeout(b"0x10"), Ok(16000));
        let nf = Err(Reply::err("ERR timeout is not a float or out of range"));
        let neg = Err(Reply::err("ERR timeout is negative"));
        for bad in ["abc", "", " 1", "1 ", "nan", "1..2", "--1"] {
            assert_eq!(parse_timeout(bad.as_bytes()), nf, "{bad}");
        }
        assert_eq!(parse_timeout(b"-0.0001"), Ok(0), "rounds up to 0: forever, as in Redis");
        for bad in ["-1", "-0.001", "inf", "1e100", "9223372036854776"] {
            assert_eq!(parse_timeout(bad.as_bytes()), neg, "{bad}");
        }
    }

    #[test]
    fn parse_checks_in_redis_order() {
        let e = |s: &str| {
            let a = argv(s);
            parse(std::str::from_utf8(&a[0]).unwrap(), &a).err()
        };
        assert_eq!(e("blmpop abc 0 k left"), Some(Reply::err("ERR numkeys should be greater than 0")));
        assert_eq!(e("blmpop abc 1 k foo"), Some(Reply::err("ERR syntax error")));
        assert_eq!(e("blmove a b foo right abc"), Some(Reply::err("ERR syntax error")));
        assert_eq!(e("blmove a b left right abc"), Some(Reply::err("ERR timeout is not a float or out of range")));
        assert_eq!(e("bzmpop -1 1 k MIN"), Some(Reply::err("ERR timeout is negative")));
        let p = parse("blpop", &argv("blpop a b a 0")).unwrap();
        assert_eq!(p.keys, vec![b("a"), b("b")]);
    }

    #[test]
    fn waiters_are_served_fifo_by_the_writer() {
        let s = server();
        let (mut c1, mut c2, mut c3, mut w) = (client(1), client(2), client(3), client(4));
        let b1 = blocked(run_cmd(&s, &mut c1, "BLPOP l 0"));
        let b2 = blocked(run_cmd(&s, &mut c2, "BRPOP other l 0"));
        let b3 = blocked(run_cmd(&s, &mut c3, "BLMPOP 0 1 l LEFT COUNT 5"));
        assert_eq!(blocked_clients(&s), 3);
        assert_eq!(reply(run_cmd(&s, &mut w, "RPUSH l a b")), Reply::Int(2));
        // Served before the writer's next command: the list is already empty.
        assert_eq!(reply(run_cmd(&s, &mut w, "LLEN l")), Reply::Int(0));
        assert_eq!(take(&b1), Some(Reply::Array(vec![Reply::bulk(b("l")), Reply::bulk(b("a"))])));
        assert_eq!(take(&b2), Some(Reply::Array(vec![Reply::bulk(b("l")), Reply::bulk(b("b"))])));
        assert_eq!(take(&b3), None);
        finish(&s, &c1, &b1.waiter);
        finish(&s, &c2, &b2.waiter);
        assert_eq!(blocked_clients(&s), 1);
        assert_eq!(reply(run_cmd(&s, &mut w, "LPUSH l x y z")), Reply::Int(3));
        let all = Reply::Array(vec![
            Reply::bulk(b("l")),
            Reply::Array(vec![Reply::bulk(b("z")), Reply::bulk(b("y")), Reply::bulk(b("x"))]),
        ]);
        assert_eq!(take(&b3), Some(all));
        finish(&s, &c3, &b3.waiter);
        assert_eq!(blocked_clients(&s), 0);
        assert!((0..4).all(|i| s.shards.lock(i).blocked.is_empty()));
    }

    #[test]
    fn newcomer_queues_behind_waiters_and_types_are_respected() {
        let s = server();
        let (mut z, mut l, mut w) = (client(1), client(2), client(3));
        let bz = blocked(run_cmd(&s, &mut z, "BZPOPMIN k 0"));
        let bl = blocked(run_cmd(&s, &mut l, "BLPOP k 0"));
        // A list arrives: the zset waiter is skipped, the list waiter served.
        run_cmd(&s, &mut w, "RPUSH k v");
        assert_eq!(take(&bl), Some(Reply::Array(vec![Reply::bulk(b("k")), Reply::bulk(b("v"))])));
        finish(&s, &l, &bl.waiter);
        run_cmd(&s, &mut w, "ZADD k 1 m");
        assert_eq!(take(&bz), Some(Reply::Array(vec![Reply::bulk(b("k")), Reply::bulk(b("m")), Reply::Double(1.0)])));
        finish(&s, &z, &bz.waiter);
        // Timed out: nothing stays queued.
        let bt = blocked(run_cmd(&s, &mut l, "BLPOP k2 k3 1"));
        assert_eq!(timed_out(&s, &l, &bt), Reply::NilArray);
        assert_eq!(blocked_clients(&s), 0);
        assert!((0..4).all(|i| s.shards.lock(i).blocked.is_empty()));
    }

    #[test]
    fn blmove_chains_and_wrong_destination() {
        let s = server();
        let (mut m, mut p, mut w) = (client(1), client(2), client(3));
        let bm = blocked(run_cmd(&s, &mut m, "BLMOVE src dst LEFT RIGHT 0"));
        let bp = blocked(run_cmd(&s, &mut p, "BLPOP dst 0"));
        run_cmd(&s, &mut w, "RPUSH src a");
        assert_eq!(take(&bm), Some(Reply::bulk(b("a"))));
        assert_eq!(take(&bp), Some(Reply::Array(vec![Reply::bulk(b("dst")), Reply::bulk(b("a"))])));
        finish(&s, &m, &bm.waiter);
        finish(&s, &p, &bp.waiter);
        run_cmd(&s, &mut w, "SET str x");
        let bm = blocked(run_cmd(&s, &mut m, "BRPOPLPUSH src str 0"));
        run_cmd(&s, &mut w, "RPUSH src a");
        assert_eq!(take(&bm), Some(Reply::err(engine::cmd::errors::WRONGTYPE)));
        finish(&s, &m, &bm.waiter);
        assert_eq!(reply(run_cmd(&s, &mut w, "LLEN src")), Reply::Int(1));
    }

    #[test]
    fn multi_never_blocks() {
        let s = server();
        let mut c = client(1);
        run_cmd(&s, &mut c, "MULTI");
        run_cmd(&s, &mut c, "BLPOP l 0");
        run_cmd(&s, &mut c, "BLMOVE a b LEFT LEFT 0");
        assert_eq!(reply(run_cmd(&s, &mut c, "EXEC")), Reply::Array(vec![Reply::NilArray, Reply::Nil]));
        assert_eq!(blocked_clients(&s), 0);
    }
}
