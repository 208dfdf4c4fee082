//! Server-level commands: the ones that need the connection, other clients or server state. Data commands
//! never come here; they go through the engine's executor in `dispatch`.

use crate::client::Client;
use crate::dispatch::{self, Next};
use crate::server::{unix_ms, Server};
use crate::shards::LockedShards;
use bytes::Bytes;
use engine::cmd::{self, CommandSpec};
use engine::resp::{Protocol, Reply};
use engine::util::eq_ic;
use std::sync::atomic::Ordering;

/// Runs a server-level command outside a transaction.
pub fn run(server: &Server, client: &mut Client, spec: &CommandSpec, a: &[Bytes]) -> Next {
    let reply = match spec.name {
        "quit" => return Next::Close(Reply::ok()),
        "multi" => dispatch::multi(client),
        "exec" => dispatch::exec(server, client),
        "discard" => dispatch::discard(server, client),
        "watch" => dispatch::watch(server, client, &a[1..]),
        "unwatch" => {
            dispatch::unwatch(server, client);
            Reply::ok()
        }
        "reset" => reset(server, client),
        "hello" => hello(server, client, a),
        "auth" => auth(server, client, a),
        "debug" => crate::debug::run(server, client, a),
        "config" => crate::config_cmd::run(server, client, a),
        "info" => crate::info::run(server, a),
        "client" => crate::client_cmd::run(server, client, a),
        "memory" => crate::memory_cmd::run(server, client.db, a),
        "shutdown" => return crate::shutdown::command(server, client, a),
        "save" => crate::persist::save_command(server),
        "bgsave" => crate::bgsave::command(server, a, false),
        "bgrewriteaof" => crate::aof::rewrite::command(server, false),
        "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "publish" | "pubsub" => {
            return crate::pubsub::run(server, client, spec, a)
        }
        "monitor" => return crate::monitor::start(server, client),
        "blpop" | "brpop" | "brpoplpush" | "blmove" | "blmpop" | "bzpopmin" | "bzpopmax" | "bzmpop" => {
            return crate::blocking::run(server, client, spec, a)
        }
        "ping" if crate::pubsub::resp2_subscribed(client) => crate::pubsub::ping(a),
        _ => common(server, client, spec, a),
    };
    Next::Reply(reply)
}

/// Runs a server-level command queued in MULTI, while EXEC holds `view`. Commands that would lock shards
/// themselves use the view instead.
pub fn run_in_exec(
    server: &Server,
    client: &mut Client,
    view: &mut LockedShards<'_>,
    spec: &CommandSpec,
    a: &[Bytes],
) -> Reply {
    match spec.name {
        "debug" if a.len() >= 2 && (eq_ic(&a[1], "digest") || eq_ic(&a[1], "digest-value")) => {
            crate::debug::digest_in_view(view, client, a)
        }
        "info" => Reply::err("ERR INFO is not supported inside MULTI by Moon"),
        "client" => crate::client_cmd::run(server, client, a),
        "config" => crate::aof::rewrite::in_exec(|| crate::config_cmd::run(server, client, a)),
        "memory" => crate::memory_cmd::run_in_view(server, client.db, view, a),
        "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "publish" | "pubsub" => {
            crate::pubsub::run_in_exec(server, client, spec, a)
        }
        "monitor" => crate::monitor::in_exec(),
        "bgsave" => crate::bgsave::command(server, a, true),
        "bgrewriteaof" => crate::aof::rewrite::command(server, true),
        "blpop" | "brpop" | "brpoplpush" | "blmove" | "blmpop" | "bzpopmin" | "bzpopmax" | "bzmpop" => {
            crate::blocking::run_in_exec(server, client, view, spec, a)
        }
        _ => common(server, client, spec, a),
    }
}

/// Commands whose behaviour is the same inside and outside EXEC.
fn common(server: &Server, _client: &mut Client, spec: &CommandSpec, a: &[Bytes]) -> Reply {
    match spec.name {
        "ping" => ping(a),
        "echo" => Reply::Bulk(a[1].clone()),
        "time" => {
            let us = unix_ms() * 1000;
            Reply::Array(vec![Reply::bulk((us / 1_000_000).to_string()), Reply::bulk((us % 1_000_000).to_string())])
        }
        "lastsave" => Reply::Int(server.lastsave.load(Ordering::Relaxed)),
        "command" => crate::command_cmd::run(a),
        "slowlog" => crate::slowlog::run(server, a),
        "latency" => crate::latency::run(server, a),
        _ => Reply::err(format!("ERR '{}' is not available in this version of Moon", spec.name)),
    }
}

fn ping(a: &[Bytes]) -> Reply {
    match a.len() {
        1 => Reply::Simple("PONG".into()),
        2 => Reply::Bulk(a[1].clone()),
        _ => cmd::arity_error("ping"),
    }
}

/// RESET: back to a fresh connection's state.
fn reset(server: &Server, client: &mut Client) -> Reply {
    crate::pubsub::clear(server, client);
    crate::monitor::stop(server, client);
    client.multi = None;
    client.multi_failed = false;
    dispatch::unwatch(server, client);
    client.db = 0;
    client.shared.db.store(0, Ordering::Relaxed);
    client.proto = Protocol::Resp2;
    client.reply_off = false;
    client.reply_skip = false;
    *client.shared.name.lock() = None;
    client.authenticated = server.config.read().requirepass.is_none();
    Reply::Simple("RESET".into())
}

/// Checks a password against `requirepass` (Redis's default user).
fn check_password(server: &Server, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Reply> {
    let cfg = server.config.read();
    let ok = match (&cfg.requirepass, user) {
        (_, Some(u)) if u != b"default" => false,
        (Some(p), _) => p.as_bytes() == pass,
        (None, Some(_)) => true,
        (None, None) => {
            return Err(Reply::err(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ))
        }
    };
    if ok {
        Ok(())
    } else {
        crate::server::Counters::add(&server.stats.auth_failures, 1);
        Err(Reply::err("WRONGPASS invalid username-password pair or user is disabled."))
    }
}

/// AUTH [username] password
fn auth(server: &Server, client: &mut Client, a: &[Bytes]) -> Reply {
    let (user, pass) = match a.len() {
        2 => (None, &a[1]),
        3 => (Some(&a[1][..]), &a[2]),
        _ => return Reply::err(engine::cmd::errors::SYNTAX),
    };
    match check_password(server, user, pass) {
        Ok(()) => {
            client.authenticated = true;
            Reply::ok()
        }
        Err(e) => e,
    }
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(server: &Server, client: &mut Client, a: &[Bytes]) -> Reply {
    let mut proto = client.proto;
    let mut i = 1;
    if a.len() >= 2 {
        match engine::util::parse_i64(&a[1]) {
            Some(2) => proto = Protocol::Resp2,
            Some(3) => proto = Protocol::Resp3,
            Some(_) => return Reply::err("NOPROTO unsupported protocol version"),
            None => return Reply::err("ERR Protocol version is not an integer or out of range"),
        }
        i = 2;
    }
    let mut setname = None;
    while i < a.len() {
        if eq_ic(&a[i], "auth") && i + 2 < a.len() {
            if let Err(e) = check_password(server, Some(&a[i + 1]), &a[i + 2]) {
                return e;
            }
            client.authenticated = true;
            i += 3;
        } else if eq_ic(&a[i], "setname") && i + 1 < a.len() {
            if let Err(e) = crate::client_cmd::valid_name(&a[i + 1]) {
                return e;
            }
            setname = Some(a[i + 1].clone());
            i += 2;
        } else {
            return Reply::err(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(&a[i])));
        }
    }
    if !client.authenticated {
        return Reply::err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(n) = setname {
        *client.shared.name.lock() = if n.is_empty() { None } else { Some(n) };
    }
    client.proto = proto;
    let s = |v: &str| Reply::bulk(v.to_string());
    Reply::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s("7.0.15")),
        (s("proto"), Reply::Int(if proto == Protocol::Resp3 { 3 } else { 2 })),
        (s("id"), Reply::Int(client.id() as i64)),
        (s("mode"), s("standalone")),
        (s("role"), s("master")),
        (s("modules"), Reply::Array(vec![])),
    ])
}
