//! The AOF while Moon runs and restarts: the legacy upgrade cases, the directory lock, SHUTDOWN / SIGTERM /
//! kill -9 under each fsync policy, DEBUG LOADAOF / RELOAD, and restarts with another shard count.

use super::{aof_commands, digest, info_field, resp, resp_all, shutdown, wait_until, Work};
use moon_tests::{keys_on_distinct_shards, RawConn, ServerOptions, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A Moon process started by hand (killed on drop).
pub struct Raw(pub std::process::Child);

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A dataset across types, databases, shards, TTLs and a cross-shard transaction.
pub fn write_dataset(c: &mut RawConn) {
    let keys = keys_on_distinct_shards("k", 8);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(c.cmd(&["SET", k, &format!("v{i}")]), Value::simple("OK"));
    }
    let mut mset = vec!["MSET"];
    for k in &keys[..4] {
        mset.push(k);
        mset.push("mset");
    }
    assert_eq!(c.cmd(&mset), Value::simple("OK"));
    for i in 0..100 {
        let v = format!("item-{i}");
        c.cmd(&["RPUSH", "list", &v]);
        c.cmd(&["HSET", "hash", &format!("f{i}"), &v]);
        c.cmd(&["SADD", "set", &v]);
        c.cmd(&["ZADD", "zset", &i.to_string(), &v]);
        c.cmd(&["INCR", "counter"]);
    }
    c.cmd(&["SET", "ttl", "v", "EX", "100000"]);
    c.cmd(&["INCRBYFLOAT", "float", "1.5"]);
    c.cmd(&["SPOP", "set"]);
    c.cmd(&["LPOP", "list"]);
    c.cmd(&["DEL", &keys[7]]);
    c.cmd(&["RENAME", &keys[5], &keys[6]]);
    c.cmd(&["MULTI"]);
    c.cmd(&["INCR", &keys[0]]);
    c.cmd(&["APPEND", &keys[1], "-tx"]);
    c.cmd(&["LPUSH", "list", "tx"]);
    assert_eq!(c.cmd(&["EXEC"]).array().len(), 3);
    assert_eq!(c.cmd(&["SELECT", "2"]), Value::simple("OK"));
    c.cmd(&["SET", "db2", "x"]);
    c.cmd(&["SWAPDB", "2", "3"]);
    assert_eq!(c.cmd(&["SELECT", "0"]), Value::simple("OK"));
}

/// Writes, SHUTDOWN, restart with the same and with another shard count: the same DEBUG DIGEST every time;
/// DEBUG LOADAOF and DEBUG RELOAD keep it too, and the AOF goes on after each.
fn restart_same_digest(shards: usize) {
    let w = Work::new();
    let mut s = w.moon(shards, &[]);
    let mut c = s.conn();
    write_dataset(&mut c);
    let expected = digest(&mut c);
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), Value::simple("OK"));
    assert_eq!(digest(&mut c), expected);
    assert!(s.log_text().contains("Append Only File loaded by DEBUG LOADAOF"));
    assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), Value::simple("OK"));
    assert_eq!(digest(&mut c), expected);
    c.cmd(&["SET", "after-reload", "1"]);
    let expected = digest(&mut c);
    shutdown(&mut s, &[]);
    for n in [shards, 5 - shards.min(4)] {
        let s = w.moon(n, &[]);
        let mut c = s.conn();
        assert_eq!(digest(&mut c), expected, "restart with {n} shards");
        assert_eq!(info_field(&mut c, "persistence", "aof_enabled"), "1");
    }
    assert_eq!(
        w.manifest_lines(),
        ["file appendonly.aof.1.base.rdb seq 1 type b", "file appendonly.aof.1.incr.aof seq 1 type i"]
    );
}

/// SIGTERM, `SHUTDOWN NOSAVE` and a `SHUTDOWN SAVE FORCE` whose final save fails flush the AOF under
/// `appendfsync no` (nothing else would), with no dump.rdb to fall back on. The save is made to fail as in
/// Redis's log for it ("Error moving temp DB file ...: Is a directory"): `dump.rdb` is a directory.
#[test]
fn shutdown_flushes_the_aof() {
    for how in ["sigterm", "nosave", "failed-save-force"] {
        let w = Work::new();
        let mut s = w.moon(4, &[("appendfsync", "no")]);
        let mut c = s.conn();
        let n = 2000;
        let bytes: Vec<u8> = (0..n).flat_map(|i| resp(&["SET", &format!("key:{i}"), "x"])).collect();
        assert!(c.pipeline(bytes, n).iter().all(|v| *v == Value::simple("OK")));
        let expected = digest(&mut c);
        match how {
            "sigterm" => assert!(s.terminate(Duration::from_secs(20)).success()),
            "nosave" => shutdown(&mut s, &["NOSAVE"]),
            _ => {
                std::fs::create_dir_all(w.path().join("dump.rdb").join("occupied")).unwrap();
                let refused = Value::Error("ERR Errors trying to SHUTDOWN. Check logs.".into());
                assert_eq!(c.cmd(&["SHUTDOWN", "SAVE"]), refused);
                assert!(s.log_text().contains("Error trying to save the DB, can't exit."), "{}", s.log_text());
                // Still serving, writes included: the refused shutdown left the AOF open.
                assert_eq!(c.cmd(&["SET", "after", "refusal"]), Value::simple("OK"));
                let expected = digest(&mut c);
                shutdown(&mut s, &["SAVE", "FORCE"]);
                assert!(s.log_text().contains("Error trying to save the DB. Exit anyway."), "{}", s.log_text());
                assert!(s.log_text().contains("Calling fsync() on the AOF file."), "{}", s.log_text());
                std::fs::remove_dir_all(w.path().join("dump.rdb")).unwrap();
                let s = w.moon(1, &[]);
                assert_eq!(digest(&mut s.conn()), expected, "{how}");
                continue;
            }
        }
        assert!(s.log_text().contains("Calling fsync() on the AOF file."), "{}", s.log_text());
        assert!(!w.path().join("dump.rdb").exists());
        let s = w.moon(1, &[]);
        assert_eq!(digest(&mut s.conn()), expected, "{how}");
    }
}

/// Under `appendfsync always` a reply means the record is in the file: read the file after each reply.
fn always_reply_implies_file(shards: usize) {
    let w = Work::new();
    let s = w.moon(shards, &[("appendfsync", "always")]);
    let mut c = s.conn();
    let path = w.aof_path("appendonly.aof.1.incr.aof");
    for (i, k) in keys_on_distinct_shards("always", 20).iter().enumerate() {
        let v = format!("value-{i}");
        assert_eq!(c.cmd(&["SET", k, &v]), Value::simple("OK"));
        let file = std::fs::read(&path).unwrap();
        assert!(file.ends_with(&resp(&["SET", k, &v])), "record {i} not in the file after its reply");
    }
}

/// kill -9 while clients write under `appendfsync always`: after a restart every acknowledged write is
/// there (counters at least their last acknowledged value, transactions whole).
fn kill9_keeps_acknowledged_writes(shards: usize) {
    let w = Work::new();
    let s = w.moon(shards, &[("appendfsync", "always")]);
    let port = s.port();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..4 {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let mut c = RawConn::connect(port);
            let keys = keys_on_distinct_shards(&format!("t{t}"), 4);
            let (mut acked, mut sent) = (0i64, 0i64);
            while !stop.load(Ordering::Relaxed) {
                sent += 1;
                let v = sent.to_string();
                // A counter, a list and a cross-shard pair, all moved together in one transaction.
                let tx = resp_all(&[
                    &["MULTI"],
                    &["INCR", &keys[0]],
                    &["RPUSH", &keys[1], &v],
                    &["MSET", &keys[2], &v, &keys[3], &v],
                    &["EXEC"],
                ]);
                if c.try_send(&tx).is_err() {
                    break;
                }
                let replies: Result<Vec<Value>, _> = (0..5).map(|_| c.try_read()).collect();
                match replies {
                    Ok(r) if r[4].array().len() == 3 => acked = sent,
                    _ => break,
                }
            }
            (keys, acked, sent)
        }));
    }
    std::thread::sleep(Duration::from_millis(700));
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let s = w.moon(5 - shards.min(4), &[]);
    let mut c = s.conn();
    for (keys, acked, sent) in results {
        assert!(acked > 0, "no write was acknowledged");
        let n: i64 = c.cmd(&["GET", &keys[0]]).text().parse().unwrap();
        assert!(n >= acked && n <= sent, "counter {n}, acknowledged {acked}, sent {sent}");
        assert_eq!(c.cmd(&["LLEN", &keys[1]]).int(), n, "the transaction is whole");
        assert_eq!(c.cmd(&["GET", &keys[2]]), Value::bulk(&n.to_string()));
        assert_eq!(c.cmd(&["GET", &keys[3]]), Value::bulk(&n.to_string()));
    }
}

/// A second server on the same AOF is refused (the first keeps its lock), with a clear message.
#[test]
fn second_server_on_the_same_aof_is_refused() {
    let w = Work::new();
    let s = w.moon(1, &[]);
    s.conn().cmd(&["SET", "k", "v"]);
    let text = w.moon_fails(1, &[]);
    assert!(text.contains("is in use by another process"), "{text}");
    assert!(text.contains(&format!("pid {}", s.pid())), "{text}");
    assert_eq!(s.conn().cmd(&["GET", "k"]), Value::bulk("v"));
}

// ---- legacy single-file upgrade (FORMATS.md §2) ----

const UPGRADED: [&str; 2] = ["file appendonly.aof seq 1 type b", "file appendonly.aof.1.incr.aof seq 1 type i"];

/// A legacy `appendonly.aof` without and with an RDB preamble is moved into the directory, loaded as the
/// base, DEBUG LOADAOF keeps the digest, and BGREWRITEAOF then replaces it.
fn legacy_upgrade(shards: usize) {
    for preamble in [false, true] {
        let w = Work::new();
        let mut legacy = Vec::new();
        if preamble {
            // A dump.rdb as the preamble: what a pre-7.0 server's rewrite wrote before its RESP tail.
            let rdb_dir = Work::new();
            let other = ServerOptions::moon(1).arg("dir", &rdb_dir.path().display().to_string()).start();
            let mut c = other.conn();
            c.cmd(&["RPUSH", "rdb-list", "a", "b"]);
            assert_eq!(c.cmd(&["SAVE"]), Value::simple("OK"));
            legacy = std::fs::read(rdb_dir.path().join("dump.rdb")).unwrap();
        }
        legacy.extend(resp_all(&[&["select", "0"], &["set", "foo", "bar"], &["incr", "n"], &["rpush", "l", "x"]]));
        std::fs::write(w.path().join("appendonly.aof"), &legacy).unwrap();
        let s = w.moon(shards, &[("appendfsync", "always")]);
        let mut c = s.conn();
        let log = s.log_text();
        assert!(
            log.contains(
                "Successfully migrated an old-style AOF file (appendonly.aof) into the AOF directory (appendonlydir)."
            ),
            "{log}"
        );
        assert_eq!(w.manifest_lines(), UPGRADED);
        assert!(!w.path().join("appendonly.aof").exists());
        assert_eq!(std::fs::read(w.aof_path("appendonly.aof")).unwrap(), legacy);
        assert_eq!(c.cmd(&["GET", "foo"]), Value::bulk("bar"));
        assert_eq!(c.cmd(&["DBSIZE"]).int(), if preamble { 4 } else { 3 });
        c.cmd(&["SET", "after", "1"]);
        let expected = digest(&mut c);
        assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), Value::simple("OK"));
        assert_eq!(digest(&mut c), expected);
        assert!(!c.cmd(&["BGREWRITEAOF"]).is_error());
        wait_until(Duration::from_secs(20), "the rewrite", || {
            w.manifest_lines()
                == ["file appendonly.aof.2.base.rdb seq 2 type b", "file appendonly.aof.2.incr.aof seq 2 type i"]
        });
        wait_until(Duration::from_secs(5), "the history removal", || !w.aof_path("appendonly.aof").exists());
        assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), Value::simple("OK"));
        assert_eq!(digest(&mut c), expected);
    }
}

/// The interrupted upgrade (manifest written, file not moved yet) goes on; a stray outer file is ignored
/// when the manifest's file is inside; a manifest naming a file that is nowhere is fatal.
fn legacy_upgrade_edge_cases(shards: usize) {
    let w = Work::new();
    std::fs::write(w.path().join("appendonly.aof"), resp(&["set", "k", "interrupted"])).unwrap();
    w.write_manifest("file appendonly.aof seq 1 type b\n");
    let s = w.moon(shards, &[]);
    assert_eq!(s.conn().cmd(&["GET", "k"]), Value::bulk("interrupted"));
    assert_eq!(w.manifest_lines(), UPGRADED);
    assert!(!w.path().join("appendonly.aof").exists());
    drop(s);

    let w = Work::new();
    std::fs::write(w.path().join("appendonly.aof"), resp(&["set", "k", "outer"])).unwrap();
    w.write_aof("appendonly.aof", &resp(&["set", "k", "inner"]));
    w.write_aof("appendonly.aof.1.incr.aof", &resp(&["set", "k2", "v2"]));
    w.write_manifest("file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n");
    let s = w.moon(shards, &[]);
    assert_eq!(s.conn().cmd(&["GET", "k"]), Value::bulk("inner"));
    assert_eq!(s.conn().cmd(&["GET", "k2"]), Value::bulk("v2"));
    assert!(w.path().join("appendonly.aof").exists(), "the outer file is kept");
    drop(s);

    let w = Work::new();
    w.write_aof("appendonly.aof.1.incr.aof", &resp(&["set", "k2", "v2"]));
    w.write_manifest("file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n");
    let text = w.moon_fails(shards, &[]);
    assert!(text.contains("appendonly.aof length. stat: No such file or directory"), "{text}");
}

/// Two servers sharing a working directory with different `appendfilename`s each migrate their own file
/// into the shared `appendonlydir`.
#[test]
fn two_servers_share_a_directory() {
    let w = Work::new();
    std::fs::write(w.path().join("appendonly.aof"), resp(&["set", "k", "one"])).unwrap();
    std::fs::write(w.path().join("appendonly.aof2"), resp(&["set", "k", "two"])).unwrap();
    let a = w.moon(1, &[]);
    let b = w.moon(4, &[("appendfilename", "appendonly.aof2")]);
    assert_eq!(a.conn().cmd(&["GET", "k"]), Value::bulk("one"));
    assert_eq!(b.conn().cmd(&["GET", "k"]), Value::bulk("two"));
    assert_eq!(w.manifest_lines(), UPGRADED);
    let m2 = std::fs::read_to_string(w.aof_path("appendonly.aof2.manifest")).unwrap();
    assert_eq!(m2, "file appendonly.aof2 seq 1 type b\nfile appendonly.aof2.1.incr.aof seq 1 type i\n");
    let cmds = aof_commands(&w.aof_path("appendonly.aof2"));
    assert_eq!(cmds, [["set", "k", "two"]]);
}

shard_tests!(
    restart_same_digest,
    always_reply_implies_file,
    kill9_keeps_acknowledged_writes,
    legacy_upgrade,
    legacy_upgrade_edge_cases
);
