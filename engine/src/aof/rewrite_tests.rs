//! Tests of the RESP rewrite: exact command forms, batching at 64 items, score formatting, and a round trip
//! (every type and encoding, rewritten, checked, loaded back) with the same DEBUG DIGEST and encodings.

use super::*;
use crate::aof::check::{check_reader, CheckOptions};
use crate::aof::load::{load_one, KeyspaceReplayer, LoadFile, LoadOptions};
use crate::aof::manifest::AofKind;
use crate::aof::stream::{AofReader, Event};
use crate::aof::test_support::{cmd, cmds, render_check_aof, run_check_aof, TempDir};
use crate::aof::RecoveryPolicy;
use crate::cmd::testkit::Kit;
use crate::config::EngineConfig;
use crate::digest::{dataset_digest, to_hex};
use crate::keyspace::Keyspace;
use bytes::Bytes;

fn key_form(k: &mut Kit, key: &str) -> Vec<u8> {
    let e = k.ks.dbs[k.db].get(key.as_bytes()).expect("key exists");
    let mut out = Vec::new();
    rewrite_key(&mut out, &e.key, &e.value, e.has_expire().then_some(e.expire_at()));
    out
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn command_forms() {
    let mut k = Kit::new();
    k.run_all(&["SET s hello", "SET i 12345", "PEXPIREAT s 4102444800000", "HSET h f v", "SADD set 7"]);
    assert_eq!(key_form(&mut k, "s"), cmds(&[&["SET", "s", "hello"], &["PEXPIREAT", "s", "4102444800000"]]));
    assert_eq!(key_form(&mut k, "i"), cmd(&["SET", "i", "12345"]));
    assert_eq!(key_form(&mut k, "h"), cmd(&["HMSET", "h", "f", "v"]));
    assert_eq!(key_form(&mut k, "set"), cmd(&["SADD", "set", "7"]));

    // %.17g scores, as 7.0's rioWriteBulkDouble.
    k.run_all(&["ZADD z 0.1 a", "ZADD z inf b", "ZADD z -inf c", "ZADD z 3 d", "ZADD z 1e300 e"]);
    assert_eq!(
        key_form(&mut k, "z"),
        cmd(&[
            "ZADD",
            "z",
            "-inf",
            "c",
            "0.10000000000000001",
            "a",
            "3",
            "d",
            "1.0000000000000001e+300",
            "e",
            "inf",
            "b"
        ])
    );

    // 64 items per command: 130 elements give 64 + 64 + 2.
    let items: Vec<String> = (0..130).map(|i| format!("e{i}")).collect();
    let mut push = vec!["RPUSH".to_string(), "l".into()];
    push.extend(items.iter().cloned());
    k.run_args(&push.iter().map(|s| s.as_bytes()).collect::<Vec<_>>());
    let mut want = Vec::new();
    for chunk in items.chunks(AOF_REWRITE_ITEMS_PER_CMD) {
        let mut c = vec!["RPUSH".to_string(), "l".into()];
        c.extend(chunk.iter().cloned());
        want.extend(cmd(&strs(&c)));
    }
    assert_eq!(key_form(&mut k, "l"), want);

    // Pairs count as one item: 65 fields give 64 + 1 HMSET commands.
    for i in 0..65 {
        k.run(&format!("HSET big f{i} v{i}"));
    }
    let mut r = AofReader::from_bytes(Bytes::from(key_form(&mut k, "big")));
    let mut sizes = Vec::new();
    while let Some(Event::Command(c)) = r.next_event().unwrap() {
        assert_eq!(&c.argv[0][..], b"HMSET");
        sizes.push(c.argv.len());
    }
    assert_eq!(sizes, [2 + 128, 2 + 2]);
}

/// Every type in every encoding Moon has, TTLs, binary keys, several databases.
fn dataset() -> Kit {
    let mut k = Kit::new();
    let big = "x".repeat(100);
    let lines = vec![
        "SET int 12345".to_string(),
        "SET neg -42".into(),
        "SET emb hello".into(),
        format!("SET raw {big}"),
        "SET float 3.14".into(),
        "RPUSH small a b 1 2".into(),
        "SADD intset 1 2 3 -7".into(),
        "SADD strset a b c".into(),
        "HSET hsmall f v n 1".into(),
        format!("HSET hbig long {big}"),
        "ZADD zsmall 1 a 2.5 b -inf c".into(),
        format!("ZADD zbig 1 {big}"),
        "PEXPIREAT emb 4102444800000".into(),
        "PEXPIREAT small 4102444800000".into(),
        "SELECT 9".into(),
        "SET other-db x".into(),
        "SELECT 0".into(),
    ];
    for l in &lines {
        assert!(!k.run(l).is_error(), "{l}");
    }
    for i in 0..700 {
        k.run(&format!("RPUSH biglist item-{i}"));
        k.run(&format!("SADD bigintset {i}"));
        k.run(&format!("SADD bigset m{i}"));
        k.run(&format!("HSET bighash f{i} {i}"));
        k.run(&format!("ZADD bigzset {}.25 m{i}", i % 50));
    }
    k.run_args(&[b"SET", b"bin\x00\r\nkey", b"\xff\x00\r\n"]);
    k.run_args(&[b"RPUSH", b"bin-list", b"", b"\r\n*1\r\n"]);
    k
}

fn encodings(ks: &Keyspace) -> Vec<(usize, Vec<u8>, &'static str)> {
    let mut v: Vec<_> = ks
        .dbs
        .iter()
        .enumerate()
        .flat_map(|(i, db)| db.table.iter().map(move |e| (i, e.key.to_vec(), e.value.encoding_name())))
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_keeps_digest_and_encodings() {
    let k = dataset();
    let (bytes, n) = rewrite_store(&k.ks, Vec::new(), &RewriteOptions { timestamp: Some(1_700_000_000) }).unwrap();
    assert_eq!(n, bytes.len() as u64);
    assert!(bytes.starts_with(b"#TS:1700000000\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"));

    // Our checker and redis-check-aof both call it valid.
    let v = check_reader(AofReader::from_bytes(Bytes::from(bytes.clone())), &CheckOptions::default()).unwrap();
    assert!(v.loads_in_redis(), "{:?}", v.damage);
    let dir = TempDir::new("rewrite");
    if let Some(run) = run_check_aof(&dir, "appendonly.aof", &bytes, &[]) {
        let name = dir.path().join("appendonly.aof").display().to_string();
        assert_eq!(String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&render_check_aof(&v, &name)));
        assert_eq!(run.code, 0);
    }

    let cfg = EngineConfig::default();
    let mut ks = Keyspace::new(cfg.databases);
    let file = LoadFile { path: "appendonly.aof".into(), name: "appendonly.aof".into(), kind: AofKind::Base };
    let mut rp = KeyspaceReplayer::new(&mut ks, &cfg);
    let opts = LoadOptions::new(RecoveryPolicy::Strict, cfg.clone());
    let report = load_one(&file, AofReader::from_bytes(Bytes::from(bytes)), true, &opts, &mut rp).unwrap();
    assert_eq!(rp.error_replies, 0, "{:?}", rp.first_error_reply);
    assert_eq!(report.annotations, 1);
    assert_eq!(to_hex(&dataset_digest(&ks)), to_hex(&dataset_digest(&k.ks)));
    assert_eq!(encodings(&ks), encodings(&k.ks));
    // Every encoding was exercised.
    let names: std::collections::BTreeSet<_> = encodings(&k.ks).into_iter().map(|(_, _, e)| e).collect();
    for e in ["int", "embstr", "raw", "quicklist", "intset", "hashtable", "listpack", "skiplist"] {
        assert!(names.contains(e), "{e} missing from {names:?}");
    }
}

#[test]
fn empty_store_rewrites_to_nothing() {
    let ks = Keyspace::new(16);
    let (bytes, n) = rewrite_store(&ks, Vec::new(), &RewriteOptions::default()).unwrap();
    assert!(bytes.is_empty() && n == 0);
}
