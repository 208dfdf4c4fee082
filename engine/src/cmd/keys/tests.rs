//! Tests of the keys family on one shard, driven through the executor with a fake clock. Expected replies
//! and error texts were checked against redis-server 7.0.15.

use crate::cmd::spec::{flags, lookup};
use crate::cmd::testkit::{bulk, err, Kit};
use crate::resp::Reply;
use crate::types::{HashValue, ListValue, SetValue, Value, ZSetValue};
use bytes::Bytes;

const NX_XX: &str = "ERR NX and XX, GT or LT options at the same time are not compatible";
const GT_LT: &str = "ERR GT and LT options at the same time are not compatible";
const INT32: &str = "ERR value is out of range, value must between -2147483648 and 2147483647";
const SAME: &str = "ERR source and destination objects are the same";

pub(super) fn int(n: i64) -> Reply {
    Reply::Int(n)
}

pub(super) fn argv(items: &[&str]) -> Vec<Bytes> {
    items.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
}

/// The sorted key names of a KEYS reply.
pub(super) fn sorted(r: Reply) -> Vec<String> {
    let Reply::Array(items) = r else { panic!("not an array: {r:?}") };
    let mut v: Vec<String> = items
        .into_iter()
        .map(|i| match i {
            Reply::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("not a bulk: {other:?}"),
        })
        .collect();
    v.sort();
    v
}

/// Splits a SCAN reply into (cursor, keys).
pub(super) fn scan_reply(r: Reply) -> (u64, Vec<String>) {
    let Reply::Array(mut parts) = r else { panic!("bad scan reply {r:?}") };
    let keys = sorted(parts.pop().unwrap());
    let Some(Reply::Bulk(c)) = parts.pop() else { panic!("bad cursor") };
    (std::str::from_utf8(&c).unwrap().parse().unwrap(), keys)
}

fn put(k: &mut Kit, key: &str, v: Value) {
    k.ks.dbs[k.db].insert(key.as_bytes(), v, None);
}

pub(super) fn sample_values(k: &mut Kit) {
    put(k, "l", Value::List(Box::new(ListValue::new())));
    put(k, "h", Value::Hash(HashValue::new()));
    put(k, "s", Value::Set(SetValue::new()));
    put(k, "z", Value::ZSet(ZSetValue::new()));
}

#[test]
fn table_entries_match_command_info() {
    for name in ["keys", "scan", "randomkey", "dbsize", "flushdb", "flushall", "swapdb"] {
        assert!(lookup(name.as_bytes()).unwrap().has(flags::ALL_SHARDS), "{name}");
    }
    for name in ["del", "exists", "expire", "rename", "copy", "object", "select"] {
        assert!(!lookup(name.as_bytes()).unwrap().has(flags::ALL_SHARDS), "{name}");
    }
    let del = lookup(b"DEL").unwrap();
    assert_eq!((del.arity, del.first, del.last, del.step), (-2, 1, -1, 1));
    assert_eq!(del.key_indexes(&argv(&["del", "a", "b"])), vec![1, 2]);
    let rename = lookup(b"rename").unwrap();
    assert_eq!(rename.key_indexes(&argv(&["rename", "a", "b"])), vec![1, 2]);
    let object = lookup(b"object").unwrap();
    assert_eq!((object.arity, object.flags, object.first), (-2, 0, 0));
    assert_eq!(object.key_indexes(&argv(&["object", "ENCODING", "k"])), vec![2]);
    assert!(object.key_indexes(&argv(&["object", "help"])).is_empty());
    assert!(lookup(b"select").unwrap().has(flags::LOADING));
    assert!(!lookup(b"select").unwrap().is_write());
}

#[test]
fn del_unlink_exists_touch_count_like_redis() {
    let mut k = Kit::new();
    k.run_all(&["SET a 1", "SET b 2"]);
    assert_eq!(k.run("EXISTS a a b c"), int(3));
    assert_eq!(k.run("TOUCH a a b c"), int(3));
    assert_eq!(k.dirty, 0);
    assert_eq!(k.run("DEL a a b c"), int(2));
    assert_eq!(k.dirty, 2);
    assert_eq!(k.propagated, None, "DEL is logged as sent");
    assert_eq!(k.run("DEL a"), int(0));
    assert_eq!(k.dirty, 0);
    k.run("SET a 1");
    assert_eq!(k.run("UNLINK a a"), int(1));
    assert_eq!(k.run("EXISTS a"), int(0));
    assert_eq!(k.run("DEL"), err("ERR wrong number of arguments for 'del' command"));
    assert_eq!(k.run("exists"), err("ERR wrong number of arguments for 'exists' command"));
}

#[test]
fn type_names() {
    let mut k = Kit::new();
    k.run("SET str x");
    sample_values(&mut k);
    for (key, t) in [("str", "string"), ("l", "list"), ("h", "hash"), ("s", "set"), ("z", "zset"), ("no", "none")] {
        assert_eq!(k.run(&format!("TYPE {key}")), Reply::Simple(t.into()), "{key}");
    }
    assert_eq!(k.run("TYPE a b"), err("ERR wrong number of arguments for 'type' command"));
}

#[test]
fn rename_moves_value_and_ttl() {
    let mut k = Kit::new();
    k.run_all(&["SET a 1", "PEXPIRE a 5000", "SET b 2"]);
    assert_eq!(k.run("RENAME a b"), Reply::ok());
    assert_eq!(k.dirty, 1);
    assert_eq!(k.run("GET b"), bulk("1"));
    assert_eq!(k.run("PTTL b"), int(5000));
    assert_eq!(k.run("EXISTS a"), int(0));
    assert_eq!(k.run("RENAME a c"), err("ERR no such key"));
    assert_eq!(k.run("RENAMENX a c"), err("ERR no such key"));
    // Onto itself: OK / 0, nothing changed, nothing logged; a missing key is still an error.
    assert_eq!(k.run("RENAME b b"), Reply::ok());
    assert_eq!(k.dirty, 0);
    assert_eq!(k.run("RENAMENX b b"), int(0));
    assert_eq!(k.run("RENAME nokey nokey"), err("ERR no such key"));
    assert_eq!(k.run("RENAMENX nokey nokey"), err("ERR no such key"));
    assert_eq!(k.run("PTTL b"), int(5000));
    // RENAMENX refuses to overwrite, RENAME overwrites (and the destination's TTL goes with it).
    k.run_all(&["SET c 3", "PEXPIRE c 100"]);
    assert_eq!(k.run("RENAMENX b c"), int(0));
    assert_eq!(k.dirty, 0);
    assert_eq!(k.run("RENAMENX b d"), int(1));
    assert_eq!(k.run("PTTL d"), int(5000));
    k.run("PERSIST d");
    assert_eq!(k.run("RENAME d c"), Reply::ok());
    assert_eq!(k.run("PTTL c"), int(-1));
    assert_eq!(k.run("GET c"), bulk("1"));
    // An expired source does not exist; an expired destination does not block RENAMENX.
    k.run_all(&["SET e 1", "PEXPIRE e 10"]);
    k.now += 10;
    assert_eq!(k.run("RENAME e f"), err("ERR no such key"));
    k.run_all(&["SET g 1", "PEXPIRE g 10"]);
    k.now += 20;
    assert_eq!(k.run("RENAMENX c g"), int(1));
    assert_eq!(k.run("GET g"), bulk("1"));
}

#[test]
fn move_between_databases() {
    let mut k = Kit::new();
    k.run_all(&["SET a 1", "PEXPIRE a 3000"]);
    assert_eq!(k.run("MOVE a 0"), err(SAME));
    assert_eq!(k.run("MOVE nokey 0"), err(SAME));
    assert_eq!(k.run("MOVE a 16"), err("ERR DB index is out of range"));
    assert_eq!(k.run("MOVE a -1"), err("ERR DB index is out of range"));
    assert_eq!(k.run("MOVE a 4294967296"), err(INT32));
    assert_eq!(k.run("MOVE a x"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("MOVE nokey 1"), int(0));
    assert_eq!(k.run("MOVE a 1"), int(1));
    assert_eq!(k.dirty, 1);
    assert_eq!(k.run("EXISTS a"), int(0));
    k.run("SET a 2");
    assert_eq!(k.run("MOVE a 1"), int(0), "target exists");
    k.run("SELECT 1");
    assert_eq!(k.run("GET a"), bulk("1"));
    assert_eq!(k.run("PTTL a"), int(3000));
    // An expired key in the target database does not block the move.
    k.now += 3000;
    k.run("SELECT 0");
    assert_eq!(k.run("MOVE a 1"), int(1));
    k.run("SELECT 1");
    assert_eq!(k.run("GET a"), bulk("2"));
}

#[test]
fn copy_with_db_and_replace() {
    let mut k = Kit::new();
    k.run_all(&["SET a 1", "PEXPIRE a 4000", "SET b 2"]);
    assert_eq!(k.run("COPY a a"), err(SAME));
    assert_eq!(k.run("COPY nokey nokey"), err(SAME));
    assert_eq!(k.run("COPY a a DB 0"), err(SAME));
    assert_eq!(k.run("COPY a b DB 16"), err("ERR DB index is out of range"));
    assert_eq!(k.run("COPY a b DB -1"), err("ERR DB index is out of range"));
    assert_eq!(k.run("COPY a b DB 4294967296"), err(INT32));
    assert_eq!(k.run("COPY a b DB x"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("COPY a b DB"), err("ERR syntax error"));
    assert_eq!(k.run("COPY a b foo"), err("ERR syntax error"));
    assert_eq!(k.run("COPY nokey c"), int(0));
    assert_eq!(k.run("COPY a b"), int(0));
    assert_eq!(k.dirty, 0);
    assert_eq!(k.run("COPY a b replace REPLACE"), int(1));
    assert_eq!(k.dirty, 1);
    assert_eq!(k.run("GET b"), bulk("1"));
    assert_eq!(k.run("PTTL b"), int(4000));
    // The copy is independent of the original.
    k.run("SET a 9");
    assert_eq!(k.run("GET b"), bulk("1"));
    assert_eq!(k.run("COPY a a DB 1"), int(1));
    assert_eq!(k.run("COPY a a db 1"), int(0));
    assert_eq!(k.run("COPY b a DB 1 REPLACE"), int(1));
    k.run("SELECT 1");
    assert_eq!(k.run("GET a"), bulk("1"));
    assert_eq!(k.run("PTTL a"), int(4000));
    // Collections are deep-copied too.
    k.run("SELECT 0");
    sample_values(&mut k);
    assert_eq!(k.run("COPY l l2"), int(1));
    assert_eq!(k.run("TYPE l2"), Reply::Simple("list".into()));
}

#[test]
fn select_and_swapdb() {
    let mut k = Kit::new();
    k.run("SET a 0");
    assert_eq!(k.run("SELECT 1"), Reply::ok());
    assert_eq!(k.db, 1);
    assert_eq!(k.dirty, 0);
    k.run("SET a 1");
    for bad in ["16", "-1"] {
        assert_eq!(k.run(&format!("SELECT {bad}")), err("ERR DB index is out of range"));
    }
    assert_eq!(k.run("SELECT x"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("SELECT 4294967296"), err(INT32));
    assert_eq!(k.db, 1);
    assert_eq!(k.run("SWAPDB 0 1"), Reply::ok());
    assert_eq!(k.dirty, 1);
    assert_eq!(k.run("GET a"), bulk("0"));
    assert_eq!(k.run("SWAPDB 0 0"), Reply::ok());
    assert_eq!(k.dirty, 1);
    assert_eq!(k.run("SWAPDB 0 16"), err("ERR DB index is out of range"));
    assert_eq!(k.run("SWAPDB 0 -1"), err("ERR DB index is out of range"));
    assert_eq!(k.run("SWAPDB x 0"), err("ERR invalid first DB index"));
    assert_eq!(k.run("SWAPDB 0 x"), err("ERR invalid second DB index"));
    assert_eq!(k.run("SWAPDB 99 x"), err("ERR invalid second DB index"));
    assert_eq!(k.run("SWAPDB 4294967296 0"), err("ERR invalid first DB index"));
}

#[test]
fn expire_options_and_errors() {
    let mut k = Kit::new();
    k.run("SET k v");
    assert_eq!(k.run("EXPIRE k 100 nx xx"), err(NX_XX));
    assert_eq!(k.run("EXPIRE k 100 NX gt"), err(NX_XX));
    assert_eq!(k.run("EXPIRE k 100 gt lt nx"), err(NX_XX));
    assert_eq!(k.run("EXPIRE k 100 gt LT"), err(GT_LT));
    assert_eq!(k.run("EXPIRE k 100 Foo"), err("ERR Unsupported option Foo"));
    assert_eq!(k.run("EXPIRE k 100 nx xx foo"), err("ERR Unsupported option foo"));
    assert_eq!(k.run("EXPIRE k x foo"), err("ERR Unsupported option foo"));
    assert_eq!(k.run("EXPIRE k x nx xx"), err(NX_XX));
    assert_eq!(k.run("EXPIRE k x"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("EXPIRE nokey x"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("EXPIRE k"), err("ERR wrong number of arguments for 'expire' command"));
    let invalid = |c: &str| err(&format!("ERR invalid expire time in '{c}' command"));
    assert_eq!(k.run("EXPIRE k 9223372036854775807"), invalid("expire"));
    assert_eq!(k.run("EXPIRE k 9223372036854774"), invalid("expire"), "overflows once now is added");
    assert_eq!(k.run("EXPIRE nokey 9223372036854775807"), invalid("expire"));
    assert_eq!(k.run("EXPIRE k -9223372036854775808"), invalid("expire"));
    assert_eq!(k.run("PEXPIRE k 9223372036854775000"), invalid("pexpire"));
    assert_eq!(k.run("EXPIREAT k 9223372036854776"), invalid("expireat"));
    assert_eq!(k.run("EXPIREAT k -9223372036854776"), invalid("expireat"));
    assert_eq!(k.dirty, 0);
    assert_eq!(k.run("TTL k"), int(-1));
    // Far deadlines that still fit are accepted.
    assert_eq!(k.run("EXPIREAT k 9223372036854775"), int(1));
    assert_eq!(k.run("PEXPIRETIME k"), int(9_223_372_036_854_775_000));
    assert_eq!(k.run("PEXPIREAT k 9223372036854775807"), int(1));
    assert_eq!(k.run("EXPIRETIME k"), int(9_223_372_036_854_776));
    assert_eq!(k.run("PEXPIRETIME k"), int(i64::MAX));
    k.run("PERSIST k");

    // The conditions, step by step as checked against Redis.
    assert_eq!(k.run("EXPIRE k 100 xx"), int(0));
    assert_eq!(k.run("EXPIRE k 100 gt"), int(0), "no TTL counts as infinite");
    assert_eq!(k.run("EXPIRE k 100 nx nx"), int(1));
    assert_eq!(k.run("EXPIRE k 100 nx"), int(0));
    assert_eq!(k.run("EXPIRE k 100 lt"), int(0), "equal is not less");
    assert_eq!(k.run("EXPIRE k 100 gt"), int(0), "equal is not greater");
    assert_eq!(k.run("EXPIRE k 200 XX"), int(1));
    assert_eq!(k.run("EXPIRE k 300 GT"), int(1));
    assert_eq!(k.run("EXPIRE k 200 gt"), int(0));
    assert_eq!(k.run("EXPIRE k 100 lt xx"), int(1));
    assert_eq!(k.run("TTL k"), int(100));
    assert_eq!(k.run("EXPIRE k 100 xx gt"), int(0));
    k.run("PERSIST k");
    assert_eq!(k.run("EXPIRE k 100 lt"), int(1), "any deadline is less than none");
    assert_eq!(k.run("EXPIRE nokey 100"), int(0));
    assert_eq!(k.run("EXPIRE nokey 100 nx"), int(0));
    assert_eq!(k.dirty, 0);
}

#[test]
fn expire_propagates_absolute_deadline() {
    let mut k = Kit::new();
    let now = k.now;
    k.run("SET k v");
    let pexpireat = |at: i64| Some(vec![argv(&["PEXPIREAT", "k", &at.to_string()])]);
    assert_eq!(k.run("EXPIRE k 100"), int(1));
    assert_eq!((k.dirty, k.propagated.clone()), (1, pexpireat(now + 100_000)));
    assert_eq!(k.run("PEXPIRE k 1500 GT"), int(0));
    assert_eq!((k.dirty, k.propagated.clone()), (0, None));
    assert_eq!(k.run("PEXPIRE k 1500 LT"), int(1));
    assert_eq!(k.propagated, pexpireat(now + 1500));
    assert_eq!(k.run("EXPIREAT k 1800000000"), int(1));
    assert_eq!(k.propagated, pexpireat(1_800_000_000_000));
    assert_eq!(k.run("PEXPIREAT k 1800000000123"), int(1));
    assert_eq!(k.propagated, pexpireat(1_800_000_000_123));
    assert_eq!(k.run("PEXPIRETIME k"), int(1_800_000_000_123));
    assert_eq!(k.run("EXPIRETIME k"), int(1_800_000_000));
}

#[test]
fn expire_in_the_past_deletes_and_propagates_del() {
    let mut k = Kit::new();
    let del = Some(vec![argv(&["DEL", "k"])]);
    for cmd in ["EXPIRE k 0", "EXPIRE k -5 lt", "PEXPIRE k -9223372036854775808", "EXPIREAT k 1", "PEXPIREAT k 0"] {
        k.run("SET k v");
        assert_eq!(k.run(cmd), int(1), "{cmd}");
        assert_eq!((k.dirty, k.propagated.clone()), (1, del.clone()), "{cmd}");
        assert_eq!(k.run("EXISTS k"), int(0), "{cmd}");
    }
    // A deadline equal to now is already past.
    k.run("SET k v");
    let now = k.now.to_string();
    assert_eq!(k.run_args(&[b"PEXPIREAT", b"k", now.as_bytes()]), int(1));
    assert_eq!(k.propagated, del);
    // GT keeps a key without TTL alive even with a past time: the condition is checked first.
    k.run("SET k v");
    assert_eq!(k.run("EXPIRE k 0 gt"), int(0));
    assert_eq!(k.run("EXISTS k"), int(1));
}

#[test]
fn expire_while_loading_keeps_past_deadlines() {
    use crate::cmd::{execute, Ctx};
    let mut k = Kit::new();
    k.run("SET k v");
    let mut ctx = Ctx::new(&mut k.ks, &k.cfg, k.now);
    ctx.loading = true;
    assert_eq!(execute(&mut ctx, &argv(&["PEXPIREAT", "k", "5"])), int(1));
    assert_eq!(execute(&mut ctx, &argv(&["PEXPIRETIME", "k"])), int(5));
    assert_eq!(execute(&mut ctx, &argv(&["TTL", "k"])), int(0));
    assert_eq!(execute(&mut ctx, &argv(&["PEXPIREAT", "k", "-9223372036854775808"])), int(1));
    assert_eq!(execute(&mut ctx, &argv(&["PEXPIRETIME", "k"])), int(0));
    assert_eq!(k.ks.dbs[0].expires_count(), 1);
    // Once loaded, the key is gone.
    assert_eq!(k.run("EXISTS k"), int(0));
    assert_eq!(k.ks.dbs[0].expires_count(), 0);
}

#[test]
fn ttl_family_rounding() {
    let mut k = Kit::new();
    assert_eq!(k.run("TTL nokey"), int(-2));
    assert_eq!(k.run("PTTL nokey"), int(-2));
    assert_eq!(k.run("EXPIRETIME nokey"), int(-2));
    assert_eq!(k.run("PEXPIRETIME nokey"), int(-2));
    k.run("SET k v");
    for c in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(k.run(&format!("{c} k")), int(-1), "{c}");
    }
    for (ms, secs) in [(1500, 2), (1499, 1), (500, 1), (499, 0), (1, 0)] {
        k.run(&format!("PEXPIRE k {ms}"));
        assert_eq!(k.run("TTL k"), int(secs), "{ms}");
        assert_eq!(k.run("PTTL k"), int(ms));
    }
    k.run("PEXPIREAT k 4000000001500");
    assert_eq!(k.run("EXPIRETIME k"), int(4_000_000_002));
    k.run("PEXPIREAT k 4000000001499");
    assert_eq!(k.run("EXPIRETIME k"), int(4_000_000_001));
    k.now = 4_000_000_001_000;
    assert_eq!(k.run("PTTL k"), int(499));
    k.now += 499;
    assert_eq!(k.run("PTTL k"), int(-2), "deadline reached");
}

#[test]
fn persist_removes_ttl() {
    let mut k = Kit::new();
    assert_eq!(k.run("PERSIST nokey"), int(0));
    k.run("SET k v");
    assert_eq!(k.run("PERSIST k"), int(0));
    assert_eq!(k.dirty, 0);
    k.run("EXPIRE k 10");
    assert_eq!(k.ks.dbs[0].expires_count(), 1);
    assert_eq!(k.run("PERSIST k"), int(1));
    assert_eq!((k.dirty, k.propagated.clone()), (1, None));
    assert_eq!(k.run("TTL k"), int(-1));
    assert_eq!(k.ks.dbs[0].expires_count(), 0);
    k.run("EXPIRE k 10");
    k.now += 10_000;
    assert_eq!(k.run("PERSIST k"), int(0));
    assert_eq!(k.run("EXISTS k"), int(0));
}

#[test]
fn expired_key_is_gone_for_every_command() {
    let probes: &[(&str, Reply)] = &[
        ("EXISTS k", int(0)),
        ("TOUCH k", int(0)),
        ("TYPE k", Reply::Simple("none".into())),
        ("TTL k", int(-2)),
        ("PTTL k", int(-2)),
        ("EXPIRETIME k", int(-2)),
        ("PEXPIRETIME k", int(-2)),
        ("PERSIST k", int(0)),
        ("EXPIRE k 100", int(0)),
        ("DEL k", int(0)),
        ("UNLINK k", int(0)),
        ("RENAME k k2", err("ERR no such key")),
        ("RENAMENX k k2", err("ERR no such key")),
        ("MOVE k 1", int(0)),
        ("COPY k k2", int(0)),
        ("OBJECT ENCODING k", Reply::Nil),
        ("OBJECT FREQ k", Reply::Nil),
        ("KEYS *", Reply::Array(vec![])),
        ("RANDOMKEY", Reply::Nil),
        ("GET k", Reply::Nil),
    ];
    for (cmd, want) in probes {
        let mut k = Kit::new();
        k.run_all(&["SET k v", "PEXPIRE k 100"]);
        k.now += 99;
        assert_eq!(k.run("EXISTS k"), int(1), "{cmd}: still alive 1 ms before");
        k.now += 1;
        assert_eq!(&k.run(cmd), want, "{cmd}");
        assert_eq!(k.run("KEYS *"), Reply::Array(vec![]), "{cmd}");
        k.run("SELECT 1");
        assert_eq!(k.run("EXISTS k2 k"), int(0), "{cmd}: nothing moved to db 1");
    }
    let mut k = Kit::new();
    k.run_all(&["SET k v", "PEXPIRE k 100"]);
    k.now += 100;
    assert_eq!(scan_reply(k.run("SCAN 0")), (0, vec![]));
    assert_eq!(k.run("DBSIZE"), int(0), "SCAN reclaimed the expired key");
}

#[test]
fn object_subcommands() {
    let mut k = Kit::new();
    k.run_all(&["SET small 1", "SET edge 9999", "SET big 10000", "SET neg -1", "SET str hello"]);
    k.run_args(&[b"SET", b"long", &[b'x'; 45]]);
    sample_values(&mut k);
    for (key, enc) in [
        ("small", "int"),
        ("neg", "int"),
        ("str", "embstr"),
        ("long", "raw"),
        ("l", ListValue::new().encoding_name()),
        ("h", "listpack"),
        ("z", "listpack"),
    ] {
        assert_eq!(k.run(&format!("object encoding {key}")), bulk(enc), "{key}");
    }
    assert_eq!(k.run("OBJECT Encoding nokey"), Reply::Nil);
    assert_eq!(k.run("OBJECT REFCOUNT small"), int(2_147_483_647));
    assert_eq!(k.run("OBJECT REFCOUNT edge"), int(2_147_483_647));
    assert_eq!(k.run("OBJECT REFCOUNT big"), int(1));
    assert_eq!(k.run("OBJECT REFCOUNT neg"), int(1));
    assert_eq!(k.run("OBJECT REFCOUNT l"), int(1));
    assert_eq!(k.run("OBJECT REFCOUNT nokey"), Reply::Nil);
    assert_eq!(k.run("OBJECT IDLETIME str"), int(0));
    assert_eq!(k.run("OBJECT IDLETIME nokey"), Reply::Nil);
    assert_eq!(k.run("OBJECT FREQ nokey"), Reply::Nil);
    assert_eq!(
        k.run("OBJECT FREQ str"),
        err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when \
             switching between policies at runtime LRU and LFU data will take some time to adjust.")
    );
    assert_eq!(k.run("OBJECT FOO"), err("ERR unknown subcommand 'FOO'. Try OBJECT HELP."));
    assert_eq!(k.run("object foo bar"), err("ERR unknown subcommand 'foo'. Try OBJECT HELP."));
    assert_eq!(k.run("OBJECT"), err("ERR wrong number of arguments for 'object' command"));
    assert_eq!(k.run("OBJECT ENCODING"), err("ERR wrong number of arguments for 'object|encoding' command"));
    assert_eq!(k.run("OBJECT ENCODING a b"), err("ERR wrong number of arguments for 'object|encoding' command"));
    assert_eq!(k.run("OBJECT FREQ"), err("ERR wrong number of arguments for 'object|freq' command"));
    assert_eq!(k.run("OBJECT help x"), err("ERR wrong number of arguments for 'object|help' command"));
    let Reply::Array(help) = k.run("OBJECT Help") else { panic!() };
    assert_eq!(help.len(), 15);
    assert_eq!(help[0], Reply::Simple("OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".into()));
    assert_eq!(help[14], Reply::Simple("    Prints this help.".into()));
}
