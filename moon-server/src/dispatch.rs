//! Turns one parsed command into a reply: authentication, MULTI queueing, server-level commands, and the
//! path every data command takes: lock the shards its keys live on (ascending order), run the engine's
//! executor against that view, note what it touched (WATCH), release.

use crate::client::Client;
use crate::server::{unix_ms, Counters, Server};
use crate::shards::LockedShards;
use bytes::Bytes;
use engine::cmd::spec::flags;
use engine::cmd::{self, CommandSpec, Ctx, Handler};
use engine::resp::Reply;
use std::sync::atomic::Ordering;

/// What the connection should do after a command.
pub enum Next {
    Reply(Reply),
    /// Send the reply, then close the connection.
    Close(Reply),
    /// Several replies, or none: (P)(UN)SUBSCRIBE and MONITOR queue theirs on the client's outbox.
    Replies(Vec<Reply>),
    /// The client blocks (BLPOP ...): the connection awaits the waiter or its deadline, then replies.
    Block(crate::blocking::Blocked),
}

/// What [`Next::reply`] shows for commands whose reply is not known yet (blocked) or already queued.
static NO_REPLY: Reply = Reply::Array(Vec::new());

impl Next {
    /// The reply to account for (stats): for `Replies` and `Block` an empty array, which is not an error.
    pub fn reply(&self) -> &Reply {
        match self {
            Next::Reply(r) | Next::Close(r) => r,
            Next::Replies(_) | Next::Block(_) => &NO_REPLY,
        }
    }
}

pub const NOAUTH: &str = "NOAUTH Authentication required.";

/// Refuses a command before it runs: counted as rejected (INFO commandstats/errorstats), and it poisons an
/// open MULTI as Redis does.
fn refuse(server: &Server, client: &mut Client, spec: Option<&CommandSpec>, args: &[Bytes], reply: Reply) -> Next {
    // A refused EXEC ends the transaction, and Redis reports it as EXECABORT with the reason (`ERR ` dropped).
    let reply = match reply {
        Reply::Error(msg) if spec.is_some_and(|s| s.name == "exec") && !msg.starts_with("EXECABORT") => {
            if client.multi.take().is_some() {
                client.multi_failed = false;
                unwatch(server, client);
            }
            let reason = msg.strip_prefix("ERR ").unwrap_or(&msg);
            Reply::err(format!("EXECABORT Transaction discarded because of: {reason}"))
        }
        other => other,
    };
    client.multi_failed |= client.multi.is_some();
    crate::stats::rejected(server, spec, args, &reply);
    Next::Reply(reply)
}

/// Runs one command for `client`.
pub fn dispatch(server: &Server, client: &mut Client, args: Vec<Bytes>) -> Next {
    Counters::add(&server.stats.total_commands_processed, 1);
    // Within a batch this command starts where the previous one ended (the connection clears the chain
    // whenever it waits): one clock reading per command. The duration then also holds the parsing of this
    // command and the encoding of the previous reply, tens of nanoseconds.
    let started = client.chain.take().unwrap_or_else(std::time::Instant::now);
    client.tick_clock();
    client.shared.last_cmd_ms.store(client.now_ms, Ordering::Relaxed);
    let Some(spec) = client.last_spec.lookup(&args[0]) else {
        let reply = cmd::unknown_command(&args);
        return refuse(server, client, None, &args, reply);
    };
    if !std::ptr::eq(client.last_cmd, spec.name) {
        *client.shared.last_cmd.lock() = spec.name;
        client.last_cmd = spec.name;
    }
    if !spec.arity_ok(args.len()) {
        return refuse(server, client, Some(spec), &args, cmd::arity_error(spec.name));
    }
    if !client.authenticated && !spec.has(flags::NO_AUTH) {
        return refuse(server, client, Some(spec), &args, Reply::err(NOAUTH));
    }
    if let Some(e) = crate::bgsave::refusal(server, client, spec, &args) {
        return refuse(server, client, Some(spec), &args, e);
    }
    if let Some(e) = crate::pubsub::context_error(client, spec, &args) {
        return refuse(server, client, Some(spec), &args, e);
    }
    if client.multi.is_some() && !matches!(spec.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset") {
        if spec.has(flags::NO_MULTI) {
            let reply = Reply::err("ERR Command not allowed inside a transaction");
            return refuse(server, client, Some(spec), &args, reply);
        }
        if let Some(q) = client.multi.as_mut() {
            q.push(args);
        }
        return Next::Reply(Reply::Simple("QUEUED".into()));
    }
    let next = match spec.handler {
        Handler::Engine(_) => Next::Reply(run_data_command(server, client, spec, &args)),
        Handler::Server => crate::commands::run(server, client, spec, &args),
    };
    let ended = std::time::Instant::now();
    client.chain.set(Some(ended));
    crate::stats::record(server, client, spec, &args, ended.saturating_duration_since(started), &next);
    crate::monitor::feed(server, client, spec, &args);
    if !client.ready_keys.is_empty() {
        crate::blocking::serve_ready(server, client);
    }
    next
}

/// The shards a data command must hold.
pub fn lock_for<'s>(server: &'s Server, spec: &CommandSpec, args: &[Bytes]) -> LockedShards<'s> {
    if spec.has(flags::ALL_SHARDS) {
        server.shards.lock_all()
    } else if let engine::cmd::KeySpec::Range { first: 1, last: 1, .. } = spec.keys {
        // Single-key commands (most traffic): one shard, no key-list allocation, the key hashed once.
        let shard = server.shards.shard_of(&args[1]);
        let view = server.shards.lock_single(shard);
        view.remember(&args[1], shard);
        view
    } else {
        let keys = spec.key_indexes(args);
        server.shards.lock_keys(keys.iter().map(|&i| &args[i][..]))
    }
}

/// Runs one data command with its own locks.
pub fn run_data_command(server: &Server, client: &mut Client, spec: &CommandSpec, args: &[Bytes]) -> Reply {
    let mut view = lock_for(server, spec, args);
    exec_in_view(server, client, &mut view, spec, args)
}

/// Runs one data command against shards already locked (a single command, or one of an EXEC's).
pub fn exec_in_view(
    server: &Server,
    client: &mut Client,
    view: &mut LockedShards<'_>,
    spec: &CommandSpec,
    args: &[Bytes],
) -> Reply {
    let cfg = client.engine_cfg.get(server, |s| s.engine_cfg.read().clone()).clone();
    let mut ctx = Ctx::new(view, &cfg, client.now_ms);
    ctx.db = client.db;
    ctx.proto = client.proto;
    // Only the AOF replay runs data commands while the dataset loads (clients get -LOADING): no lazy expiry.
    ctx.loading = server.persist.loading.load(Ordering::Relaxed);
    let reply = cmd::execute_spec(&mut ctx, spec, args);
    crate::aof::feed(server, &mut ctx, client.db, Some(args));
    let (db, dirty, stats) = (ctx.db, ctx.dirty, ctx.stats);
    let expired = std::mem::take(&mut ctx.expired);
    drop(ctx);
    if db != client.db {
        client.db = db;
        client.shared.db.store(db as u64, Ordering::Relaxed);
    }
    for (edb, key) in &expired {
        view.shard_for(key).touch(*edb, key);
    }
    if dirty > 0 {
        server.dirty.fetch_add(dirty, Ordering::Relaxed);
        touch_keys(view, spec, args, client.db);
        crate::blocking::note_ready(view, spec, args, client.db, &mut client.ready_keys);
        if spec.name == "flushall" {
            crate::bgsave::after_flushall(server, view);
        }
    }
    Counters::add(&server.stats.keyspace_hits, stats.keyspace_hits);
    Counters::add(&server.stats.keyspace_misses, stats.keyspace_misses);
    Counters::add(&server.stats.expired_keys, stats.expired_keys);
    reply
}

/// Marks WATCHers of whatever a write command changed.
fn touch_keys(view: &mut LockedShards<'_>, spec: &CommandSpec, args: &[Bytes], db: usize) {
    if view.each().all(|s| s.watched.is_empty()) {
        return;
    }
    match spec.name {
        "flushall" => view.each().for_each(|s| s.touch_db(None)),
        "flushdb" => view.each().for_each(|s| s.touch_db(Some(db))),
        "swapdb" => {
            let a = engine::util::parse_i64(&args[1]).unwrap_or(-1);
            let b = engine::util::parse_i64(&args[2]).unwrap_or(-1);
            for d in [a, b] {
                if d >= 0 {
                    view.each().for_each(|s| s.touch_db(Some(d as usize)));
                }
            }
        }
        "move" | "copy" => {
            // The other DB's key changes too; touching every DB's copy of the key is simple and safe.
            use engine::keyspace::Store;
            let key = &args[1];
            let dbs = view.num_dbs();
            for d in 0..dbs {
                view.shard_for(key).touch(d, key);
            }
            if spec.name == "copy" {
                let dst = &args[2];
                for d in 0..dbs {
                    view.shard_for(dst).touch(d, dst);
                }
            }
        }
        _ => {
            for i in spec.key_indexes(args) {
                let key = &args[i];
                view.shard_for(key).touch(db, key);
            }
        }
    }
}

/// MULTI
pub fn multi(client: &mut Client) -> Reply {
    if client.multi.is_some() {
        return Reply::err("ERR MULTI calls can not be nested");
    }
    client.multi = Some(Vec::new());
    client.multi_failed = false;
    Reply::ok()
}

/// DISCARD
pub fn discard(server: &Server, client: &mut Client) -> Reply {
    if client.multi.take().is_none() {
        return Reply::err("ERR DISCARD without MULTI");
    }
    client.multi_failed = false;
    unwatch(server, client);
    Reply::ok()
}

/// EXEC: every queued command runs while all the shards any of them touches are held, so the transaction is
/// atomic and isolated across shards.
pub fn exec(server: &Server, client: &mut Client) -> Reply {
    let Some(queue) = client.multi.take() else {
        return Reply::err("ERR EXEC without MULTI");
    };
    if std::mem::take(&mut client.multi_failed) {
        unwatch(server, client);
        return Reply::err("EXECABORT Transaction discarded because of previous errors.");
    }
    let specs: Vec<&'static CommandSpec> = queue.iter().filter_map(|a| cmd::lookup(&a[0])).collect();
    let all = specs.iter().any(|s| s.has(flags::ALL_SHARDS));
    let mut view = if all {
        server.shards.lock_all()
    } else {
        let mut shards = Vec::new();
        for (spec, args) in specs.iter().zip(&queue) {
            shards.extend(spec.key_indexes(args).into_iter().map(|i| server.shards.shard_of(&args[i])));
        }
        // Watched keys are checked under the same locks, so nothing can slip in between check and run.
        shards.extend(client.watched.iter().map(|(_, k)| server.shards.shard_of(k)));
        server.shards.lock_set(shards)
    };
    let aborted = client.watch_dirty.load(Ordering::Acquire) || watched_expired(&mut view, client);
    if aborted {
        drop(view);
        unwatch(server, client);
        return Reply::NilArray;
    }
    let mut replies = Vec::with_capacity(queue.len());
    // Logged once, at the end, while every shard of the transaction is still held.
    crate::aof::begin_exec();
    for (spec, args) in specs.iter().zip(&queue) {
        let started = std::time::Instant::now();
        let r = match spec.handler {
            Handler::Engine(_) => exec_in_view(server, client, &mut view, spec, args),
            Handler::Server => crate::commands::run_in_exec(server, client, &mut view, spec, args),
        };
        crate::stats::record_in_exec(server, client, spec, args, started.elapsed(), &r);
        crate::monitor::feed(server, client, spec, args);
        replies.push(r);
    }
    crate::aof::end_exec(server);
    drop(view);
    unwatch(server, client);
    Reply::Array(replies)
}

/// Whether a watched key has expired since WATCH (Redis 7.0 aborts the transaction then; a key already
/// expired when it was watched does not count).
fn watched_expired(view: &mut LockedShards<'_>, client: &Client) -> bool {
    let now = unix_ms();
    client.watched.iter().any(|(db, key)| {
        let shard = view.shard_for(key);
        let expired_at_watch = shard
            .watched
            .get(&(*db, Box::from(&key[..])))
            .and_then(|ws| ws.iter().find(|w| std::sync::Arc::ptr_eq(&w.dirty, &client.watch_dirty)))
            .is_some_and(|w| w.expired);
        !expired_at_watch && shard.ks.dbs[*db].is_expired(key, now)
    })
}

/// WATCH key [key ...]
pub fn watch(server: &Server, client: &mut Client, keys: &[Bytes]) -> Reply {
    if client.multi.is_some() {
        return Reply::err("ERR WATCH inside MULTI is not allowed");
    }
    for key in keys {
        if client.watched.iter().any(|(d, k)| *d == client.db && k == key) {
            continue;
        }
        let mut shard = server.shards.lock(server.shards.shard_of(key));
        let expired = shard.ks.dbs[client.db].is_expired(key, unix_ms());
        let watcher = crate::shards::Watcher { dirty: client.watch_dirty.clone(), expired };
        shard.watched.entry((client.db, Box::from(&key[..]))).or_default().push(watcher);
        client.watched.push((client.db, key.clone()));
    }
    Reply::ok()
}

/// Forgets every watched key (UNWATCH, EXEC, DISCARD, RESET, disconnect).
pub fn unwatch(server: &Server, client: &mut Client) {
    for (db, key) in client.watched.drain(..) {
        let mut shard = server.shards.lock(server.shards.shard_of(&key));
        let k = (db, Box::from(&key[..]));
        if let Some(list) = shard.watched.get_mut(&k) {
            list.retain(|w| !std::sync::Arc::ptr_eq(&w.dirty, &client.watch_dirty));
            if list.is_empty() {
                shard.watched.remove(&k);
            }
        }
    }
    client.watch_dirty.store(false, Ordering::Release);
}
