//! Tests of the commands that visit the whole database (KEYS SCAN RANDOMKEY DBSIZE FLUSHDB FLUSHALL) on
//! one shard; the three-shard versions are in `shard_tests`. Replies were checked against redis-server 7.0.15.

use super::tests::{int, sample_values, scan_reply, sorted};
use crate::cmd::testkit::{bulk, err, Kit};
use crate::resp::Reply;

#[test]
fn keys_matches_patterns_and_skips_expired() {
    let mut k = Kit::new();
    assert_eq!(k.run("KEYS *"), Reply::Array(vec![]));
    k.run_all(&["SET foo:1 x", "SET foo:2 x", "SET bar x", "SET dead x", "PEXPIRE dead 5"]);
    k.now += 5;
    assert_eq!(sorted(k.run("KEYS *")), ["bar", "foo:1", "foo:2"]);
    assert_eq!(sorted(k.run("KEYS foo:*")), ["foo:1", "foo:2"]);
    assert_eq!(sorted(k.run("KEYS f?o:[12]")), ["foo:1", "foo:2"]);
    assert_eq!(sorted(k.run("KEYS FOO*")), Vec::<String>::new());
    assert_eq!(sorted(k.run("KEYS b\\ar")), ["bar"]);
    // KEYS does not reclaim expired keys: DBSIZE still counts it, as in Redis.
    assert_eq!(k.run("DBSIZE"), int(4));
    k.run("SELECT 1");
    assert_eq!(k.run("KEYS *"), Reply::Array(vec![]));
    assert_eq!(k.run("DBSIZE"), int(0));
}

#[test]
fn scan_options_and_errors() {
    let mut k = Kit::new();
    k.run_all(&["SET foo:1 x", "SET foo:2 x", "SET bar x"]);
    sample_values(&mut k);
    let all = ["bar", "foo:1", "foo:2", "h", "l", "s", "z"];
    assert_eq!(scan_reply(k.run("SCAN 0 COUNT 100")), (0, all.map(String::from).to_vec()));
    assert_eq!(scan_reply(k.run("scan 0 match foo* count 100")).1, ["foo:1", "foo:2"]);
    assert_eq!(scan_reply(k.run("SCAN 0 TYPE STRING COUNT 100")).1, ["bar", "foo:1", "foo:2"]);
    assert_eq!(scan_reply(k.run("SCAN 0 type list")).1, ["l"]);
    assert_eq!(scan_reply(k.run("SCAN 0 TYPE zset MATCH z")).1, ["z"]);
    assert_eq!(scan_reply(k.run("SCAN 0 TYPE nosuchtype")).1, Vec::<String>::new());
    assert_eq!(scan_reply(k.run("SCAN 0 MATCH *")).1.len(), 7);
    // Cursor syntax follows strtoul: sign allowed, empty is 0, -1 wraps, no spaces or junk.
    assert_eq!(scan_reply(k.run_args(&[b"SCAN", b""])).1.len(), 7);
    assert_eq!(scan_reply(k.run("SCAN +0")).1.len(), 7);
    assert_eq!(scan_reply(k.run("SCAN -0")).1.len(), 7);
    assert_eq!(scan_reply(k.run("SCAN -1")).0, 0);
    assert_eq!(scan_reply(k.run("SCAN 18446744073709551615")).0, 0);
    for bad in [&b" 0"[..], b"0x", b"18446744073709551616", b"-", b"+", b"1 ", b"abc"] {
        assert_eq!(k.run_args(&[b"SCAN", bad]), err("ERR invalid cursor"), "{bad:?}");
    }
    assert_eq!(k.run("SCAN 0 COUNT 0"), err("ERR syntax error"));
    assert_eq!(k.run("SCAN 0 COUNT -1"), err("ERR syntax error"));
    assert_eq!(k.run("SCAN 0 COUNT x"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("SCAN 0 COUNT"), err("ERR syntax error"));
    assert_eq!(k.run("SCAN 0 MATCH"), err("ERR syntax error"));
    assert_eq!(k.run("SCAN 0 foo bar"), err("ERR syntax error"));
    assert_eq!(k.run("SCAN"), err("ERR wrong number of arguments for 'scan' command"));
}

/// Drives a full SCAN with the given COUNT, calling `between` after every call; returns every key seen.
fn full_scan(k: &mut Kit, count: usize, mut between: impl FnMut(&mut Kit, usize)) -> Vec<String> {
    let mut cursor = 0u64;
    let mut seen = Vec::new();
    for round in 0.. {
        let (next, keys) = scan_reply(k.run(&format!("SCAN {cursor} COUNT {count}")));
        seen.extend(keys);
        between(k, round);
        cursor = next;
        if cursor == 0 {
            break;
        }
        assert!(round < 100_000, "scan does not terminate");
    }
    seen
}

#[test]
fn scan_returns_every_key_present_throughout_while_keys_are_added() {
    let mut k = Kit::new();
    for i in 0..200 {
        k.run(&format!("SET key:{i} v"));
    }
    // Growing the table by 2000 keys during the scan forces several resizes (and rehashes in progress).
    let seen = full_scan(&mut k, 7, |k, round| {
        for j in 0..20 {
            k.run(&format!("SET new:{round}:{j} v"));
        }
    });
    let seen: std::collections::HashSet<String> = seen.into_iter().collect();
    for i in 0..200 {
        assert!(seen.contains(&format!("key:{i}")), "key:{i} missed");
    }
    // And when keys are deleted during the scan, the survivors are still all returned.
    let mut k = Kit::new();
    for i in 0..500 {
        k.run(&format!("SET key:{i} v"));
    }
    let seen = full_scan(&mut k, 5, |k, round| {
        for j in 0..10 {
            let victim = 250 + round * 10 + j;
            if victim < 500 {
                k.run(&format!("DEL key:{victim}"));
            }
        }
    });
    let seen: std::collections::HashSet<String> = seen.into_iter().collect();
    for i in 0..250 {
        assert!(seen.contains(&format!("key:{i}")), "key:{i} missed");
    }
}

#[test]
fn scan_count_bounds_the_work_of_one_call() {
    let mut k = Kit::new();
    for i in 0..1000 {
        k.run(&format!("SET key:{i} v"));
    }
    let (cursor, keys) = scan_reply(k.run("SCAN 0 COUNT 10"));
    assert_ne!(cursor, 0);
    assert!(!keys.is_empty() && keys.len() < 100, "{}", keys.len());
    // A selective MATCH returns few keys per call but still terminates within 10 * COUNT buckets per call.
    let (cursor, keys) = scan_reply(k.run("SCAN 0 MATCH nomatch COUNT 1"));
    assert_ne!(cursor, 0);
    assert!(keys.is_empty());
}

#[test]
fn randomkey_and_dbsize() {
    let mut k = Kit::new();
    assert_eq!(k.run("RANDOMKEY"), Reply::Nil);
    assert_eq!(k.run("DBSIZE"), int(0));
    k.run_all(&["SET a 1", "SET b 2", "SET c 3"]);
    assert_eq!(k.run("DBSIZE"), int(3));
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let Reply::Bulk(b) = k.run("RANDOMKEY") else { panic!() };
        seen.insert(b);
    }
    assert_eq!(seen.len(), 3);
    // Expired keys are skipped and reclaimed on the way.
    for i in 0..50 {
        k.run(&format!("SET dead:{i} x"));
        k.run(&format!("PEXPIRE dead:{i} 1"));
    }
    k.now += 1;
    assert_eq!(k.run("DBSIZE"), int(53));
    for _ in 0..20 {
        let r = k.run("RANDOMKEY");
        assert!([bulk("a"), bulk("b"), bulk("c")].contains(&r), "{r:?}");
    }
    k.run_all(&["DEL a b c"]);
    assert_eq!(k.run("RANDOMKEY"), Reply::Nil);
    assert_eq!(k.run("DBSIZE"), int(0));
}

#[test]
fn randomkey_gives_up_after_bounded_tries() {
    let mut k = Kit::new();
    for i in 0..300 {
        k.run(&format!("SET dead:{i} x"));
        k.run(&format!("PEXPIRE dead:{i} 1"));
    }
    k.run("SET alive x");
    k.now += 1;
    // Each call reclaims at most 100 expired keys; the live key is found eventually.
    let mut calls = 0;
    loop {
        calls += 1;
        let Reply::Bulk(_) = k.run("RANDOMKEY") else { panic!("nil with a live key") };
        let size = match k.run("DBSIZE") {
            Reply::Int(n) => n,
            r => panic!("{r:?}"),
        };
        assert!(size >= 301 - 100 * calls, "a call reclaimed more than it may");
        if size == 1 {
            break;
        }
        assert!(calls < 400);
    }
    assert_eq!(k.run("RANDOMKEY"), bulk("alive"));
}

#[test]
fn flushdb_and_flushall() {
    let mut k = Kit::new();
    assert_eq!(k.run("FLUSHDB"), Reply::ok());
    assert_eq!(k.dirty, 1, "an empty flush is still logged");
    assert_eq!(k.run("FLUSHALL"), Reply::ok());
    assert_eq!(k.dirty, 1);
    for cmd in ["FLUSHDB", "FLUSHALL"] {
        assert_eq!(k.run(&format!("{cmd} foo")), err("ERR syntax error"));
        assert_eq!(k.run(&format!("{cmd} async sync")), err("ERR syntax error"));
        assert_eq!(k.run(&format!("{cmd} sync sync")), err("ERR syntax error"));
    }
    k.run_all(&["SET a 1", "SET b 2", "SELECT 1", "SET c 3"]);
    assert_eq!(k.run("FLUSHDB ASYNC"), Reply::ok());
    assert_eq!(k.dirty, 1);
    assert_eq!(k.run("DBSIZE"), int(0));
    k.run("SELECT 0");
    assert_eq!(k.run("DBSIZE"), int(2), "other databases untouched");
    assert_eq!(k.run("flushdb sync"), Reply::ok());
    assert_eq!(k.dirty, 2);
    k.run_all(&["SET a 1", "EXPIRE a 10", "SELECT 2", "SET c 3", "SET d 4"]);
    assert_eq!(k.run("FLUSHALL async"), Reply::ok());
    assert_eq!(k.dirty, 4, "three keys and the flush itself");
    assert_eq!(k.run("DBSIZE"), int(0));
    k.run("SELECT 0");
    assert_eq!(k.run("DBSIZE"), int(0));
    assert_eq!(k.ks.dbs[0].expires_count(), 0);
    k.run("SET a 1");
    assert_eq!(k.run("FLUSHALL SYNC"), Reply::ok());
    assert_eq!(k.run("EXISTS a"), int(0));
}

#[test]
fn one_shard_cursor_is_the_tables_own() {
    let mut k = Kit::new();
    for i in 0..100 {
        k.run(&format!("SET key:{i} v"));
    }
    let mut table_cursors = vec![];
    let mut c = 0;
    loop {
        c = k.ks.dbs[0].table.scan(c, |_| {});
        table_cursors.push(c);
        if c == 0 {
            break;
        }
    }
    let mut cursor = 0;
    loop {
        let (next, _) = scan_reply(k.run(&format!("SCAN {cursor} COUNT 1")));
        assert!(table_cursors.contains(&next), "{next} is not a table cursor");
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
}
