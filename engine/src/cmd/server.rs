//! Commands the server runs itself (they need the connection, other clients or server state). They are
//! listed here so that `COMMAND`, arity checks and key positions cover every command Moon accepts.

use super::spec::{flags::*, spec, CommandSpec, Handler::Server, KeySpec};

const CONN: &[&str] = &["fast", "connection"];
const ADMIN_ACL: &[&str] = &["admin", "slow", "dangerous"];

pub static COMMANDS: &[CommandSpec] = &[
    spec("ping", -1, FAST, 0, 0, 0, CONN, Server),
    spec("echo", 2, FAST, 0, 0, 0, CONN, Server),
    spec("quit", -1, ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH, 0, 0, 0, CONN, Server),
    spec("reset", 1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, 0, 0, 0, CONN, Server),
    spec("hello", -1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, 0, 0, 0, CONN, Server),
    spec("auth", -2, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, 0, 0, 0, CONN, Server),
    spec("client", -2, 0, 0, 0, 0, &["slow", "connection"], Server),
    spec("info", -1, LOADING | STALE, 0, 0, 0, &["slow", "dangerous"], Server),
    spec("command", -1, LOADING | STALE, 0, 0, 0, &["slow", "connection"], Server),
    spec("time", 1, LOADING | STALE | FAST, 0, 0, 0, &["fast"], Server),
    spec("lastsave", 1, LOADING | STALE | FAST, 0, 0, 0, &["fast", "admin", "dangerous"], Server),
    spec("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY, 0, 0, 0, ADMIN_ACL, Server),
    spec("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, ADMIN_ACL, Server),
    spec("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, ADMIN_ACL, Server),
    spec("slowlog", -2, ADMIN | LOADING | STALE, 0, 0, 0, ADMIN_ACL, Server),
    spec("latency", -2, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, ADMIN_ACL, Server),
    spec("memory", -2, READONLY, 0, 0, 0, &["slow"], Server),
    spec("config", -2, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, ADMIN_ACL, Server),
    spec("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, 0, 0, 0, &["fast", "transaction"], Server),
    spec("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, 0, 0, 0, &["slow", "transaction"], Server),
    spec("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, 0, 0, 0, &["fast", "transaction"], Server),
    spec("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, 1, -1, 1, &["fast", "transaction"], Server),
    spec("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, 0, 0, 0, &["fast", "transaction"], Server),
    spec("blpop", -3, WRITE | BLOCKING, 1, -2, 1, &["write", "list", "slow", "blocking"], Server),
    spec("brpop", -3, WRITE | BLOCKING, 1, -2, 1, &["write", "list", "slow", "blocking"], Server),
    spec("brpoplpush", 4, WRITE | DENYOOM | BLOCKING, 1, 2, 1, &["write", "list", "slow", "blocking"], Server),
    spec("blmove", 6, WRITE | DENYOOM | BLOCKING, 1, 2, 1, &["write", "list", "slow", "blocking"], Server),
    spec("blmpop", -5, WRITE | BLOCKING, 0, 0, 0, &["write", "list", "slow", "blocking"], Server)
        .with_keys(KeySpec::Numkeys { numkeys_at: 2, extra: None }),
    spec("bzpopmin", -3, WRITE | BLOCKING | FAST, 1, -2, 1, &["write", "sortedset", "fast", "blocking"], Server),
    spec("bzpopmax", -3, WRITE | BLOCKING | FAST, 1, -2, 1, &["write", "sortedset", "fast", "blocking"], Server),
    spec("bzmpop", -5, WRITE | BLOCKING, 0, 0, 0, &["write", "sortedset", "slow", "blocking"], Server)
        .with_keys(KeySpec::Numkeys { numkeys_at: 2, extra: None }),
    spec("publish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, 0, 0, 0, &["pubsub", "fast"], Server),
    spec("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, 0, 0, 0, &["pubsub", "slow"], Server),
    spec("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, 0, 0, 0, &["pubsub", "slow"], Server),
    spec("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, 0, 0, 0, &["pubsub", "slow"], Server),
    spec("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, 0, 0, 0, &["pubsub", "slow"], Server),
    spec("pubsub", -2, 0, 0, 0, 0, &["slow"], Server),
    spec("save", 1, ADMIN | NOSCRIPT | NO_MULTI, 0, 0, 0, ADMIN_ACL, Server),
    spec("bgsave", -1, ADMIN | NOSCRIPT, 0, 0, 0, ADMIN_ACL, Server),
    spec("bgrewriteaof", 1, ADMIN | NOSCRIPT, 0, 0, 0, ADMIN_ACL, Server),
];
