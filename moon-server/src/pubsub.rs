//! Pub/Sub: PUBLISH, (P)SUBSCRIBE, (P)UNSUBSCRIBE and PUBSUB, as Redis 7.0 has them.
//!
//! One registry for the whole server maps channels and patterns to the subscribers' [`Outbox`]es. A
//! publisher on any thread encodes the message once per protocol and queues it on each subscriber's outbox
//! while holding the registry lock; (un)subscribe confirmations are queued under the same lock, so a
//! subscriber always sees its confirmation before any message of that channel, and every subscriber sees the
//! messages of all publishers in one order (as with Redis's single thread).
//!
//! In RESP2 a subscribed client may only run (P)(UN)SUBSCRIBE, PING, QUIT and RESET ([`context_error`]).

use crate::client::Client;
use crate::dispatch::Next;
use crate::outbox::Outbox;
use crate::server::Server;
use bytes::Bytes;
use engine::cmd::CommandSpec;
use engine::glob::glob_match;
use engine::resp::{encode, Protocol, Reply};
use engine::util::eq_ic;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Every subscription of the server.
#[derive(Default)]
pub struct PubSub {
    inner: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    channels: HashMap<Bytes, Vec<Arc<Outbox>>>,
    patterns: HashMap<Bytes, Vec<Arc<Outbox>>>,
}

impl Registry {
    fn table(&mut self, pattern: bool) -> &mut HashMap<Bytes, Vec<Arc<Outbox>>> {
        if pattern {
            &mut self.patterns
        } else {
            &mut self.channels
        }
    }
}

/// One client's subscriptions.
#[derive(Default)]
pub struct Subscriptions {
    pub channels: Names,
    pub patterns: Names,
}

impl Subscriptions {
    /// Channels plus patterns: the count Redis puts in (un)subscribe confirmations.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    fn set(&mut self, pattern: bool) -> &mut Names {
        if pattern {
            &mut self.patterns
        } else {
            &mut self.channels
        }
    }
}

/// A set of channel or pattern names that remembers the order they were added in, so that UNSUBSCRIBE
/// without arguments answers in subscription order (as Redis 7.0 does for patterns).
#[derive(Default)]
pub struct Names {
    seq: u64,
    names: HashMap<Bytes, u64>,
}

impl Names {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    fn insert(&mut self, name: Bytes) -> bool {
        if self.names.contains_key(&name) {
            return false;
        }
        self.seq += 1;
        self.names.insert(name, self.seq);
        true
    }

    fn remove(&mut self, name: &Bytes) -> bool {
        self.names.remove(name).is_some()
    }

    /// Every name, oldest first.
    fn ordered(&self) -> Vec<Bytes> {
        let mut v: Vec<(&Bytes, &u64)> = self.names.iter().collect();
        v.sort_unstable_by_key(|(_, &s)| s);
        v.into_iter().map(|(n, _)| n.clone()).collect()
    }
}

/// INFO stats `pubsub_channels` and `pubsub_patterns`: distinct channels and patterns with subscribers.
pub fn counts(server: &Server) -> (usize, usize) {
    let r = server.pubsub.inner.lock();
    (r.channels.len(), r.patterns.len())
}

/// The client's outbox, created on first use (the connection then switches to its writer task).
pub fn outbox(client: &mut Client) -> Arc<Outbox> {
    let proto = client.proto;
    client.outbox.get_or_insert_with(|| Outbox::new(client.shared.clone(), proto)).clone()
}

/// Whether the client is in RESP2 subscribed mode, where only a few commands are allowed.
pub fn resp2_subscribed(client: &Client) -> bool {
    client.proto == Protocol::Resp2 && client.subscriptions.count() > 0
}

/// Commands with subcommands, which Redis names `name|sub` in the subscribed-context error.
const CONTAINERS: &[&str] =
    &["client", "config", "pubsub", "command", "object", "memory", "slowlog", "latency", "debug"];

/// The error Redis gives a RESP2 subscribed client for any command but (P)(UN)SUBSCRIBE, PING, QUIT, RESET.
pub fn context_error(client: &Client, spec: &CommandSpec, args: &[Bytes]) -> Option<Reply> {
    if !resp2_subscribed(client) {
        return None;
    }
    if matches!(spec.name, "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "ping" | "quit" | "reset") {
        return None;
    }
    let name = match args.get(1) {
        Some(sub) if CONTAINERS.contains(&spec.name) => {
            format!("{}|{}", spec.name, String::from_utf8_lossy(sub).to_ascii_lowercase())
        }
        _ => spec.name.to_string(),
    };
    Some(Reply::err(format!(
        "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    )))
}

/// PING in RESP2 subscribed mode: `["pong", message-or-""]`.
pub fn ping(a: &[Bytes]) -> Reply {
    match a.len() {
        1 | 2 => Reply::Array(vec![
            Reply::bulk(Bytes::from_static(b"pong")),
            Reply::Bulk(a.get(1).cloned().unwrap_or_default()),
        ]),
        _ => engine::cmd::arity_error("ping"),
    }
}

/// Runs SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, PUBLISH or PUBSUB outside a transaction.
pub fn run(server: &Server, client: &mut Client, spec: &CommandSpec, a: &[Bytes]) -> Next {
    match spec.name {
        "subscribe" | "psubscribe" => {
            Next::Replies(subscribe(server, client, &a[1..], spec.name == "psubscribe", true))
        }
        "unsubscribe" | "punsubscribe" => {
            Next::Replies(unsubscribe(server, client, &a[1..], spec.name == "punsubscribe", true))
        }
        "publish" => Next::Reply(Reply::Int(publish(server, &a[1], &a[2]) as i64)),
        _ => Next::Reply(pubsub_command(server, a)),
    }
}

/// The same commands queued in MULTI: their confirmations become part of EXEC's reply.
pub fn run_in_exec(server: &Server, client: &mut Client, spec: &CommandSpec, a: &[Bytes]) -> Reply {
    let mut replies = match spec.name {
        "subscribe" | "psubscribe" => subscribe(server, client, &a[1..], spec.name == "psubscribe", false),
        "unsubscribe" | "punsubscribe" => unsubscribe(server, client, &a[1..], spec.name == "punsubscribe", false),
        "publish" => return Reply::Int(publish(server, &a[1], &a[2]) as i64),
        _ => return pubsub_command(server, a),
    };
    if replies.len() == 1 {
        replies.pop().unwrap_or(Reply::NilArray)
    } else {
        Reply::Array(replies)
    }
}

fn confirmation(kind: &'static str, name: Option<&Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk(Bytes::from_static(kind.as_bytes())),
        name.map_or(Reply::Nil, |n| Reply::Bulk(n.clone())),
        Reply::Int(count as i64),
    ])
}

/// Queues `replies` on the outbox (called with the registry locked, so no message can overtake them).
fn queue_replies(ob: &Outbox, replies: &[Reply]) {
    let mut buf = Vec::new();
    for r in replies {
        encode(r, ob.proto(), &mut buf);
    }
    ob.push(Bytes::from(buf));
}

/// SUBSCRIBE / PSUBSCRIBE. With `direct`, the confirmations are queued on the outbox and nothing is returned.
fn subscribe(server: &Server, client: &mut Client, names: &[Bytes], pattern: bool, direct: bool) -> Vec<Reply> {
    let ob = outbox(client);
    ob.set_proto(client.proto);
    let kind = if pattern { "psubscribe" } else { "subscribe" };
    let mut reg = server.pubsub.inner.lock();
    let mut replies = Vec::with_capacity(names.len());
    for name in names {
        if client.subscriptions.set(pattern).insert(name.clone()) {
            reg.table(pattern).entry(name.clone()).or_default().push(ob.clone());
        }
        replies.push(confirmation(kind, Some(name), client.subscriptions.count()));
    }
    sync_counts(client);
    if direct {
        queue_replies(&ob, &replies);
        replies.clear();
    }
    replies
}

/// UNSUBSCRIBE / PUNSUBSCRIBE; no names means all of them.
fn unsubscribe(server: &Server, client: &mut Client, names: &[Bytes], pattern: bool, direct: bool) -> Vec<Reply> {
    let kind = if pattern { "punsubscribe" } else { "unsubscribe" };
    let mut reg = server.pubsub.inner.lock();
    let names: Vec<Bytes> = if names.is_empty() { client.subscriptions.set(pattern).ordered() } else { names.to_vec() };
    let mut replies = Vec::with_capacity(names.len().max(1));
    for name in &names {
        if client.subscriptions.set(pattern).remove(name) {
            remove_from(&mut reg, pattern, name, client);
        }
        replies.push(confirmation(kind, Some(name), client.subscriptions.count()));
    }
    if names.is_empty() {
        replies.push(confirmation(kind, None, client.subscriptions.count()));
    }
    sync_counts(client);
    match client.outbox.as_ref() {
        Some(ob) if direct => {
            queue_replies(ob, &replies);
            Vec::new()
        }
        _ => replies,
    }
}

fn remove_from(reg: &mut Registry, pattern: bool, name: &Bytes, client: &Client) {
    let Some(ob) = client.outbox.as_ref() else { return };
    let table = reg.table(pattern);
    if let Some(list) = table.get_mut(name) {
        list.retain(|o| !Arc::ptr_eq(o, ob));
        if list.is_empty() {
            table.remove(name);
        }
    }
}

fn sync_counts(client: &Client) {
    client.shared.subs.store(client.subscriptions.channels.len() as u64, Ordering::Relaxed);
    client.shared.psubs.store(client.subscriptions.patterns.len() as u64, Ordering::Relaxed);
    refresh_flags(client, false);
}

/// Drops every subscription without replies (RESET, disconnect).
pub fn clear(server: &Server, client: &mut Client) {
    if client.subscriptions.count() == 0 {
        return;
    }
    let mut reg = server.pubsub.inner.lock();
    for pattern in [false, true] {
        let names = std::mem::take(client.subscriptions.set(pattern)).ordered();
        for name in &names {
            remove_from(&mut reg, pattern, name, client);
        }
    }
    drop(reg);
    sync_counts(client);
}

/// The CLIENT LIST flags this module and its neighbours maintain: O (monitor), P (pub/sub), b (blocked).
pub fn refresh_flags(client: &Client, blocked: bool) {
    let mut f = String::new();
    if client.monitor {
        f.push('O');
    }
    if client.subscriptions.count() > 0 {
        f.push('P');
    }
    if blocked {
        f.push('b');
    }
    if f.is_empty() {
        f.push('N');
    }
    *client.shared.flags.lock() = f;
}

/// A message encoded lazily, once per protocol, shared by every receiver.
struct Encoded {
    items: Vec<Reply>,
    forms: [Option<Bytes>; 2],
}

impl Encoded {
    fn new(items: Vec<Reply>) -> Self {
        Encoded { items, forms: [None, None] }
    }

    fn get(&mut self, proto: Protocol) -> Bytes {
        let i = usize::from(proto == Protocol::Resp3);
        let items = &self.items;
        self.forms[i]
            .get_or_insert_with(|| {
                let mut buf = Vec::new();
                encode(&Reply::Push(items.clone()), proto, &mut buf);
                Bytes::from(buf)
            })
            .clone()
    }
}

/// PUBLISH channel message: delivers to channel subscribers, then to matching patterns; returns the number
/// of receivers (a client subscribed through several patterns counts once per pattern, as in Redis).
pub fn publish(server: &Server, channel: &Bytes, message: &Bytes) -> usize {
    let reg = server.pubsub.inner.lock();
    let mut receivers = 0;
    if let Some(subs) = reg.channels.get(channel) {
        let mut msg = Encoded::new(vec![
            Reply::bulk(Bytes::from_static(b"message")),
            Reply::Bulk(channel.clone()),
            Reply::Bulk(message.clone()),
        ]);
        for ob in subs {
            ob.push(msg.get(ob.proto()));
        }
        receivers += subs.len();
    }
    for (pattern, subs) in &reg.patterns {
        if !glob_match(pattern, channel, false) {
            continue;
        }
        let mut msg = Encoded::new(vec![
            Reply::bulk(Bytes::from_static(b"pmessage")),
            Reply::Bulk(pattern.clone()),
            Reply::Bulk(channel.clone()),
            Reply::Bulk(message.clone()),
        ]);
        for ob in subs {
            ob.push(msg.get(ob.proto()));
        }
        receivers += subs.len();
    }
    receivers
}

const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// PUBSUB CHANNELS | NUMSUB | NUMPAT | SHARDCHANNELS | SHARDNUMSUB | HELP. Moon has no sharded channels
/// (no SSUBSCRIBE), so the SHARD forms report none.
fn pubsub_command(server: &Server, a: &[Bytes]) -> Reply {
    let sub = &a[1];
    let typed = String::from_utf8_lossy(sub);
    let exact = |n: usize, name: &str| (a.len() != n).then(|| engine::cmd::arity_error(&format!("pubsub|{name}")));
    let pattern_arg = || -> Result<Option<&Bytes>, Reply> {
        match a.len() {
            2 => Ok(None),
            3 => Ok(Some(&a[2])),
            _ => Err(Reply::err(format!(
                "ERR unknown subcommand or wrong number of arguments for '{typed}'. Try PUBSUB HELP."
            ))),
        }
    };
    if eq_ic(sub, "help") {
        if let Some(e) = exact(2, "help") {
            return e;
        }
        return Reply::Array(HELP.iter().map(|l| Reply::Simple((*l).to_string())).collect());
    }
    if eq_ic(sub, "channels") {
        let pattern = match pattern_arg() {
            Ok(p) => p,
            Err(e) => return e,
        };
        let reg = server.pubsub.inner.lock();
        let list = reg.channels.keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)));
        return Reply::Array(list.map(|c| Reply::Bulk(c.clone())).collect());
    }
    if eq_ic(sub, "numsub") {
        let reg = server.pubsub.inner.lock();
        let mut out = Vec::with_capacity((a.len() - 2) * 2);
        for ch in &a[2..] {
            out.push(Reply::Bulk(ch.clone()));
            out.push(Reply::Int(reg.channels.get(ch).map_or(0, |v| v.len()) as i64));
        }
        return Reply::Array(out);
    }
    if eq_ic(sub, "numpat") {
        if let Some(e) = exact(2, "numpat") {
            return e;
        }
        return Reply::Int(server.pubsub.inner.lock().patterns.len() as i64);
    }
    if eq_ic(sub, "shardchannels") {
        return match pattern_arg() {
            Ok(_) => Reply::Array(Vec::new()),
            Err(e) => e,
        };
    }
    if eq_ic(sub, "shardnumsub") {
        return Reply::Array(a[2..].iter().flat_map(|ch| [Reply::Bulk(ch.clone()), Reply::Int(0)]).collect());
    }
    Reply::err(format!("ERR unknown subcommand '{typed}'. Try PUBSUB HELP."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Shared;
    use crate::config::Config;

    fn client(id: u64) -> Client {
        let shared = Shared::for_test(id);
        Client::new(shared, true)
    }

    fn run(server: &Server, c: &mut Client, line: &str) -> Reply {
        let args: Vec<Bytes> = line.split(' ').map(b).collect();
        match crate::dispatch::dispatch(server, c, args) {
            Next::Reply(r) => r,
            Next::Replies(v) if v.is_empty() => Reply::Simple("(queued on the outbox)".into()),
            _ => panic!("unexpected"),
        }
    }

    fn queued(c: &Client) -> String {
        String::from_utf8(c.outbox.as_ref().map(|o| o.take_all()).unwrap_or_default()).unwrap()
    }

    #[test]
    fn registry_delivers_and_forgets() {
        let s = Server::new(Config::default(), None, 0);
        let (mut a, mut p3, mut pb) = (client(1), client(2), client(3));
        p3.proto = Protocol::Resp3;
        run(&s, &mut a, "SUBSCRIBE news other");
        run(&s, &mut p3, "PSUBSCRIBE n* ne?s");
        assert_eq!(
            queued(&a),
            "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$5\r\nother\r\n:2\r\n"
        );
        queued(&p3);
        assert_eq!(counts(&s), (2, 2));
        assert_eq!(run(&s, &mut pb, "PUBLISH news hi"), Reply::Int(3));
        assert_eq!(queued(&a), "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
        let pm = queued(&p3);
        assert!(
            pm.starts_with(">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n")
                || pm.starts_with(">4\r\n$8\r\npmessage\r\n$4\r\nne?s\r\n")
        );
        assert_eq!(pm.matches("pmessage").count(), 2);
        assert_eq!(run(&s, &mut pb, "PUBLISH nothing x"), Reply::Int(1));
        assert_eq!(run(&s, &mut pb, "PUBLISH zzz x"), Reply::Int(0));
        assert_eq!(
            run(&s, &mut pb, "PUBSUB NUMSUB news zzz"),
            Reply::Array(vec![Reply::bulk(b("news")), Reply::Int(1), Reply::bulk(b("zzz")), Reply::Int(0)])
        );
        assert!(run(&s, &mut a, "GET x").is_error());
        run(&s, &mut a, "UNSUBSCRIBE");
        assert_eq!(
            queued(&a),
            "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$5\r\nother\r\n:0\r\n"
        );
        assert_eq!(run(&s, &mut a, "GET x"), Reply::Nil);
        clear(&s, &mut p3);
        assert_eq!(counts(&s), (0, 0));
        assert_eq!(run(&s, &mut pb, "PUBLISH news hi"), Reply::Int(0));
        assert_eq!(*p3.shared.flags.lock(), "N");
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn encodes_once_per_protocol() {
        let mut m = Encoded::new(vec![Reply::bulk(b("message")), Reply::bulk(b("ch")), Reply::bulk(b("hi"))]);
        assert_eq!(&m.get(Protocol::Resp2)[..], b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        assert_eq!(&m.get(Protocol::Resp3)[..], b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        assert!(m.forms.iter().all(Option::is_some));
    }

    #[test]
    fn confirmation_without_channel_is_nil() {
        let r = confirmation("unsubscribe", None, 0);
        assert_eq!(r.to_vec(Protocol::Resp2), b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
        assert_eq!(r.to_vec(Protocol::Resp3), b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n");
    }

    #[test]
    fn subscriptions_count_both_kinds_and_keep_order() {
        let mut s = Subscriptions::default();
        assert!(s.set(false).insert(b("a")));
        assert!(s.set(true).insert(b("a*")));
        assert!(!s.set(false).insert(b("a")));
        assert_eq!(s.count(), 2);
        for n in ["z", "b", "y", "c"] {
            s.set(false).insert(b(n));
        }
        assert!(s.set(false).remove(&b("b")));
        assert_eq!(s.channels.ordered(), vec![b("a"), b("z"), b("y"), b("c")]);
    }
}
