//! CLIENT ID / SETNAME / GETNAME / LIST / INFO / KILL / NO-EVICT / PAUSE / UNPAUSE / REPLY / HELP.

use crate::client::{Client, Shared};
use crate::server::{unix_ms, Server};
use bytes::Bytes;
use engine::resp::Reply;
use engine::util::eq_ic;
use std::sync::atomic::Ordering;

/// CLIENT SETNAME rule: no spaces, newlines or other special characters.
pub fn valid_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Reply::err("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

/// One CLIENT LIST line (without the trailing newline).
fn describe(server: &Server, c: &Shared, me: Option<&Client>) -> String {
    let now = unix_ms();
    let name = c.name.lock().as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
    let db = me.map_or(c.db.load(Ordering::Relaxed), |m| m.db as u64);
    let multi = me.and_then(|m| m.multi.as_ref().map(|q| q.len() as i64)).unwrap_or(-1);
    let resp = me.map_or(2, |m| if m.proto == engine::resp::Protocol::Resp3 { 3 } else { 2 });
    let _ = server;
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=16384 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        name,
        (now - c.created_ms) / 1000,
        (now - c.last_cmd_ms.load(Ordering::Relaxed)) / 1000,
        c.flags.lock(),
        db,
        c.subs.load(Ordering::Relaxed),
        c.psubs.load(Ordering::Relaxed),
        multi,
        c.last_cmd.lock(),
        resp
    )
}

pub fn run(server: &Server, client: &mut Client, a: &[Bytes]) -> Reply {
    let sub = &a[1];
    let arity = |n: usize, name: &str| -> Option<Reply> {
        (a.len() != n).then(|| engine::cmd::arity_error(&format!("client|{name}")))
    };
    if eq_ic(sub, "id") {
        return arity(2, "id").unwrap_or(Reply::Int(client.id() as i64));
    }
    if eq_ic(sub, "getname") {
        if let Some(e) = arity(2, "getname") {
            return e;
        }
        return client.shared.name.lock().clone().map_or(Reply::Nil, Reply::Bulk);
    }
    if eq_ic(sub, "setname") {
        if let Some(e) = arity(3, "setname") {
            return e;
        }
        if let Err(e) = valid_name(&a[2]) {
            return e;
        }
        *client.shared.name.lock() = if a[2].is_empty() { None } else { Some(a[2].clone()) };
        return Reply::ok();
    }
    if eq_ic(sub, "info") {
        if let Some(e) = arity(2, "info") {
            return e;
        }
        return Reply::Verbatim("txt".into(), Bytes::from(describe(server, &client.shared, Some(client)) + "\n"));
    }
    if eq_ic(sub, "list") {
        let mut ids: Option<Vec<u64>> = None;
        if a.len() > 2 {
            if eq_ic(&a[2], "id") && a.len() > 3 {
                let mut v = Vec::new();
                for x in &a[3..] {
                    match engine::util::parse_i64(x).filter(|&n| n > 0) {
                        Some(n) => v.push(n as u64),
                        None => return Reply::err("ERR Invalid client ID"),
                    }
                }
                ids = Some(v);
            } else if eq_ic(&a[2], "type") && a.len() == 4 {
                if !["normal", "master", "replica", "pubsub"].iter().any(|t| eq_ic(&a[3], t)) {
                    return Reply::err(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(&a[3])));
                }
                if !eq_ic(&a[3], "normal") && !eq_ic(&a[3], "pubsub") {
                    return Reply::Verbatim("txt".into(), Bytes::new());
                }
            } else {
                return Reply::err(engine::cmd::errors::SYNTAX);
            }
        }
        let mut text = String::new();
        for c in server.clients.snapshot() {
            if ids.as_ref().is_some_and(|v| !v.contains(&c.id)) {
                continue;
            }
            let me = (c.id == client.id()).then_some(&*client);
            text.push_str(&describe(server, &c, me));
            text.push('\n');
        }
        return Reply::Verbatim("txt".into(), Bytes::from(text));
    }
    if eq_ic(sub, "kill") {
        return kill(server, client, a);
    }
    if eq_ic(sub, "unblock") {
        return crate::blocking::client_unblock(server, a);
    }
    if eq_ic(sub, "no-evict") || eq_ic(sub, "no-touch") {
        if let Some(e) = arity(3, "no-evict") {
            return e;
        }
        return if eq_ic(&a[2], "on") || eq_ic(&a[2], "off") {
            Reply::ok()
        } else {
            Reply::err(engine::cmd::errors::SYNTAX)
        };
    }
    if eq_ic(sub, "reply") {
        if let Some(e) = arity(3, "reply") {
            return e;
        }
        if eq_ic(&a[2], "on") {
            client.reply_off = false;
            client.reply_skip = false;
            return Reply::ok();
        } else if eq_ic(&a[2], "off") {
            client.reply_off = true;
        } else if eq_ic(&a[2], "skip") {
            client.reply_skip = true;
        } else {
            return Reply::err(engine::cmd::errors::SYNTAX);
        }
        // OFF and SKIP send no reply for themselves either.
        client.reply_skip = client.reply_skip || client.reply_off;
        return Reply::ok();
    }
    if eq_ic(sub, "pause") {
        return crate::shutdown::client_pause(server, a);
    }
    if eq_ic(sub, "unpause") {
        return crate::shutdown::client_unpause(server, a);
    }
    Reply::err(format!("ERR unknown subcommand '{}'. Try CLIENT HELP.", String::from_utf8_lossy(sub)))
}

/// CLIENT KILL addr | CLIENT KILL [ID id] [ADDR a] [LADDR a] [SKIPME yes/no] [TYPE t] [USER u]
fn kill(server: &Server, client: &Client, a: &[Bytes]) -> Reply {
    if a.len() == 3 {
        let addr = String::from_utf8_lossy(&a[2]).into_owned();
        for c in server.clients.snapshot() {
            if c.addr.to_string() == addr {
                c.kill();
                return Reply::ok();
            }
        }
        return Reply::err("ERR No such client");
    }
    if a.len() < 4 || !a.len().is_multiple_of(2) {
        return Reply::err(engine::cmd::errors::SYNTAX);
    }
    let (mut id, mut addr, mut laddr, mut skipme) = (None, None, None, true);
    for pair in a[2..].chunks(2) {
        let v = String::from_utf8_lossy(&pair[1]).into_owned();
        if eq_ic(&pair[0], "id") {
            match engine::util::parse_i64(&pair[1]).filter(|&n| n > 0) {
                Some(n) => id = Some(n as u64),
                None => return Reply::err("ERR client-id should be greater than 0"),
            }
        } else if eq_ic(&pair[0], "addr") {
            addr = Some(v);
        } else if eq_ic(&pair[0], "laddr") {
            laddr = Some(v);
        } else if eq_ic(&pair[0], "skipme") {
            skipme = match v.as_str() {
                "yes" => true,
                "no" => false,
                _ => return Reply::err(engine::cmd::errors::SYNTAX),
            };
        } else if eq_ic(&pair[0], "type") || eq_ic(&pair[0], "user") || eq_ic(&pair[0], "maxage") {
            // Every Moon client is a normal client of the default user.
        } else {
            return Reply::err(engine::cmd::errors::SYNTAX);
        }
    }
    let mut killed = 0;
    for c in server.clients.snapshot() {
        if id.is_some_and(|i| i != c.id)
            || addr.as_ref().is_some_and(|x| *x != c.addr.to_string())
            || laddr.as_ref().is_some_and(|x| *x != c.laddr.to_string())
            || (skipme && c.id == client.id())
        {
            continue;
        }
        c.kill();
        killed += 1;
    }
    Reply::Int(killed)
}
