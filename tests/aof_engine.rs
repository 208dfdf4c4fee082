//! The engine's AOF reading side and RESP rewrite against the real thing, without moon-server:
//! - appendonlydirs written by redis-server 7.0 (RDB base and RESP base, a second incr, transactions,
//!   propagated forms) load through `engine::aof::load` to redis-server's DEBUG DIGEST, also as a legacy
//!   single file (RDB preamble + RESP tail) that redis-check-aof passes;
//! - a torn last incr is cut by our loader at the offset redis-server itself truncates it to;
//! - a dataset rewritten by `engine::aof::rewrite` plus an incr built with `encode_command` passes
//!   redis-check-aof and loads in redis-server with our digest.

use engine::aof::check::{check_file, CheckOptions};
use engine::aof::load::{load_files, KeyspaceReplayer, LoadFile, LoadOptions};
use engine::aof::manifest::AofKind;
use engine::aof::rewrite::{rewrite_store, RewriteOptions};
use engine::aof::{encode_command, RecoveryPolicy};
use engine::config::EngineConfig;
use engine::digest::{dataset_digest, to_hex};
use engine::keyspace::Keyspace;
use moon_tests::{have_redis_tools, redis_tool, run_with_timeout, RawConn, Server, ServerOptions, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn info_field(c: &mut RawConn, field: &str) -> String {
    let text = c.cmd(&["INFO", "persistence"]).text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO persistence:\n{text}"))
        .trim()
        .to_string()
}

fn wait_rewrite_done(c: &mut RawConn) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(c, "aof_rewrite_in_progress") != "0" || info_field(c, "aof_rewrite_scheduled") != "0" {
        assert!(Instant::now() < deadline, "BGREWRITEAOF did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn redis_on(dir: &Path, preamble: bool) -> Server {
    let mut opts = ServerOptions::redis()
        .arg("appendonly", "yes")
        .arg("save", "")
        .arg("aof-use-rdb-preamble", if preamble { "yes" } else { "no" })
        .arg("aof-load-truncated", "yes")
        // everysec may postpone a write while a background fsync runs: the files would lag the replies.
        .arg("appendfsync", "always")
        .arg("dir", &dir.display().to_string());
    opts.persistence = true;
    opts.start()
}

/// Base then incr files of `<dir>/appendonlydir` in manifest order (the test's names need no quoting).
fn manifest_files(dir: &Path) -> Vec<LoadFile> {
    let aof_dir = dir.join("appendonlydir");
    let text = std::fs::read_to_string(aof_dir.join("appendonly.aof.manifest")).expect("manifest");
    let mut base = Vec::new();
    let mut incrs = Vec::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split(' ').collect();
        assert_eq!((t[0], t[2], t[4]), ("file", "seq", "type"), "{line}");
        let kind = match t[5] {
            "b" => AofKind::Base,
            "i" => AofKind::Incr,
            _ => continue,
        };
        let f = LoadFile { path: aof_dir.join(t[1]), name: t[1].to_string(), kind };
        if kind == AofKind::Base {
            base.push(f);
        } else {
            incrs.push(f);
        }
    }
    base.extend(incrs);
    base
}

/// Loads `files` into a fresh keyspace; returns the digest and the summary's torn-tail offset.
fn load_digest(files: &[LoadFile], policy: RecoveryPolicy) -> (String, Option<u64>) {
    let cfg = EngineConfig::default();
    let mut ks = Keyspace::new(cfg.databases);
    let mut rp = KeyspaceReplayer::new(&mut ks, &cfg);
    let summary = load_files(files, &LoadOptions::new(policy, cfg.clone()), &mut rp)
        .unwrap_or_else(|e| panic!("load failed: {e}"));
    assert_eq!(rp.error_replies, 0, "{:?}", rp.first_error_reply);
    let torn = summary.torn().map(|t| t.offset);
    (to_hex(&dataset_digest(&ks)), torn)
}

fn ok(c: &mut RawConn, args: &[&str]) {
    let r = c.cmd(args);
    assert!(!r.is_error(), "{args:?}: {r:?}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn redis_written(preamble: bool) {
    let dir = tempfile::Builder::new().prefix("moon-aof-engine-").tempdir().unwrap();
    let server = redis_on(dir.path(), preamble);
    let mut c = server.conn();
    let big = "v".repeat(80);
    for i in 0..200 {
        ok(&mut c, &["RPUSH", "list", &format!("e{i}")]);
        ok(&mut c, &["SADD", "ints", &i.to_string()]);
        ok(&mut c, &["HSET", "hash", &format!("f{i}"), &big]);
        ok(&mut c, &["ZADD", "zset", &format!("{}.5", i % 17), &format!("m{i}")]);
    }
    ok(&mut c, &["SET", "s", "hello"]);
    ok(&mut c, &["SET", "ttl", "x", "PX", "100000000"]);
    ok(&mut c, &["SADD", "small", "a", "b"]);
    ok(&mut c, &["SELECT", "4"]);
    ok(&mut c, &["SET", "db4", "1"]);
    ok(&mut c, &["SELECT", "0"]);
    assert!(!c.cmd(&["BGREWRITEAOF"]).is_error());
    wait_rewrite_done(&mut c);
    // The new incr: propagated forms and transactions.
    ok(&mut c, &["MULTI"]);
    ok(&mut c, &["INCR", "counter"]);
    ok(&mut c, &["LPUSH", "list", "head"]);
    assert_eq!(c.cmd(&["EXEC"]).array().len(), 2);
    ok(&mut c, &["SPOP", "small"]);
    ok(&mut c, &["EXPIRE", "s", "100000"]);
    ok(&mut c, &["SET", "f", "1.5"]);
    ok(&mut c, &["INCRBYFLOAT", "f", "0.25"]);
    ok(&mut c, &["HINCRBYFLOAT", "h2", "x", "1.5"]);
    ok(&mut c, &["ZINCRBY", "zset", "2", "m3"]);
    ok(&mut c, &["SELECT", "4"]);
    ok(&mut c, &["DEL", "db4"]);
    ok(&mut c, &["RPUSH", "last", "a", "b", "c"]);
    let digest = c.cmd(&["DEBUG", "DIGEST"]).text();
    assert_ne!(digest, "0".repeat(40));

    let files = manifest_files(dir.path());
    assert_eq!(files.len(), 2, "one base, one incr");
    assert_eq!(files[0].name.ends_with(".rdb"), preamble);
    assert_eq!(load_digest(&files, RecoveryPolicy::Strict).0, digest, "appendonlydir (preamble {preamble})");

    // The same data as a legacy single file: base then incr concatenated (RDB preamble + RESP tail).
    let legacy_dir = tempfile::Builder::new().prefix("moon-aof-legacy-").tempdir().unwrap();
    let legacy = legacy_dir.path().join("appendonly.aof");
    let bytes: Vec<u8> = files.iter().flat_map(|f| std::fs::read(&f.path).unwrap()).collect();
    std::fs::write(&legacy, &bytes).unwrap();
    let one = [LoadFile { path: legacy.clone(), name: "appendonly.aof".into(), kind: AofKind::Base }];
    assert_eq!(load_digest(&one, RecoveryPolicy::Strict).0, digest, "legacy file (preamble {preamble})");
    let v = check_file(&legacy, &CheckOptions::default()).unwrap();
    assert!(v.loads_in_redis() && v.rdb.is_some() == preamble, "{:?}", v.damage);
    let out = run_with_timeout(
        {
            let mut cmd = Command::new(redis_tool("redis-check-aof").unwrap());
            cmd.arg(&legacy);
            cmd
        },
        None,
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let name = legacy.display().to_string();
    assert!(text.contains(&v.summary_line(&name, v.ok_up_to_line())), "{text}");
    assert_eq!(text.contains("RDB preamble is OK, proceeding with AOF tail"), preamble, "{text}");

    // A torn last incr: our loader cuts where redis-server cuts, and both see the same data.
    let torn_dir = tempfile::Builder::new().prefix("moon-aof-torn-").tempdir().unwrap();
    copy_dir(&dir.path().join("appendonlydir"), &torn_dir.path().join("appendonlydir"));
    drop(c);
    drop(server);
    let torn_files = manifest_files(torn_dir.path());
    let incr = &torn_files[1].path;
    let len = std::fs::metadata(incr).unwrap().len();
    // Inside the RPUSH of the last command.
    std::fs::OpenOptions::new().write(true).open(incr).unwrap().set_len(len - 4).unwrap();
    let strict = load_digest_result(&torn_files, RecoveryPolicy::Strict).expect_err("strict refuses a torn tail");
    assert!(strict.starts_with("Unexpected end of file reading the append only file"), "{strict}");
    let (our_digest, cut) = load_digest(&torn_files, RecoveryPolicy::TruncateTornTail);
    let cut = cut.expect("a torn tail");
    assert_eq!(std::fs::metadata(incr).unwrap().len(), len - 4, "our loader never writes");
    let server = redis_on(torn_dir.path(), preamble);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["DEBUG", "DIGEST"]).text(), our_digest);
    assert_eq!(std::fs::metadata(incr).unwrap().len(), cut, "redis-server truncated to the same offset");
    assert!(server.log_text().contains(&format!("Truncating the AOF {} at offset {cut}", torn_files[1].name)));
}

fn load_digest_result(files: &[LoadFile], policy: RecoveryPolicy) -> Result<(), String> {
    let cfg = EngineConfig::default();
    let mut ks = Keyspace::new(cfg.databases);
    let mut rp = KeyspaceReplayer::new(&mut ks, &cfg);
    load_files(files, &LoadOptions::new(policy, cfg.clone()), &mut rp).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn redis_written_rdb_base_loads_with_the_same_digest() {
    if !have_redis_tools("aof_engine", &["redis-server", "redis-check-aof"]) {
        return;
    }
    redis_written(true);
}

#[test]
fn redis_written_resp_base_loads_with_the_same_digest() {
    if !have_redis_tools("aof_engine", &["redis-server", "redis-check-aof"]) {
        return;
    }
    redis_written(false);
}

#[test]
fn moon_rewrite_passes_redis_check_aof_and_loads_in_redis() {
    if !have_redis_tools("aof_engine", &["redis-server", "redis-check-aof"]) {
        return;
    }
    // The dataset is built by loading commands through the engine (the loader is tested elsewhere).
    let seed_dir = tempfile::Builder::new().prefix("moon-aof-seed-").tempdir().unwrap();
    let mut seed = Vec::new();
    let big = "w".repeat(100);
    for i in 0..300 {
        encode_command(&mut seed, &["RPUSH", "list", &format!("e{i}")]);
        encode_command(&mut seed, &["SADD", "ints", &i.to_string()]);
        encode_command(&mut seed, &["SADD", "strs", &format!("s{i}")]);
        encode_command(&mut seed, &["HSET", "hash", &format!("f{i}"), &i.to_string()]);
        encode_command(&mut seed, &["ZADD", "zset", &format!("{}", f64::from(i) / 7.0), &format!("m{i}")]);
    }
    for args in [
        &["SET", "int", "-12345"][..],
        &["SET", "emb", "hello"],
        &["SET", "raw", &big],
        &["RPUSH", "small", "a", "", "1"],
        &["HSET", "hsmall", "f", "v"],
        &["HSET", "hbig", "f", &big],
        &["ZADD", "zsmall", "0.1", "a", "inf", "b", "-inf", "c"],
        &["SADD", "iset", "1", "-2"],
        &["PEXPIREAT", "emb", "4102444800000"],
        &["PEXPIREAT", "zsmall", "4102444800000"],
        &["SELECT", "7"],
        &["SET", "db7", "x"],
    ] {
        encode_command(&mut seed, args);
    }
    let seed_path = seed_dir.path().join("seed.aof");
    std::fs::write(&seed_path, &seed).unwrap();
    let cfg = EngineConfig::default();
    let mut ks = Keyspace::new(cfg.databases);
    {
        let mut rp = KeyspaceReplayer::new(&mut ks, &cfg);
        let seed_file = [LoadFile { path: seed_path, name: "seed.aof".into(), kind: AofKind::Base }];
        load_files(&seed_file, &LoadOptions::new(RecoveryPolicy::Strict, cfg.clone()), &mut rp).unwrap();
        assert_eq!(rp.error_replies, 0, "{:?}", rp.first_error_reply);
    }
    let dir = tempfile::Builder::new().prefix("moon-aof-rewrite-").tempdir().unwrap();
    let aof_dir = dir.path().join("appendonlydir");
    std::fs::create_dir(&aof_dir).unwrap();
    let (base, _) = rewrite_store(&ks, Vec::new(), &RewriteOptions { timestamp: Some(1_700_000_000) }).unwrap();
    std::fs::write(aof_dir.join("appendonly.aof.1.base.aof"), &base).unwrap();
    let mut incr = Vec::new();
    incr.extend_from_slice(b"#TS:1700000001\r\n");
    for args in [
        &["SELECT", "0"][..],
        &["MULTI"],
        &["INCR", "counter"],
        &["RPUSH", "list", "tail"],
        &["EXEC"],
        &["SELECT", "7"],
        &["SET", "db7-b", "y"],
    ] {
        encode_command(&mut incr, args);
    }
    std::fs::write(aof_dir.join("appendonly.aof.1.incr.aof"), &incr).unwrap();
    std::fs::write(
        aof_dir.join("appendonly.aof.manifest"),
        "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
    )
    .unwrap();
    let files: Vec<PathBuf> =
        ["appendonly.aof.1.base.aof", "appendonly.aof.1.incr.aof"].map(|n| aof_dir.join(n)).into();
    for f in &files {
        assert!(check_file(f, &CheckOptions::default()).unwrap().loads_in_redis());
    }
    let (ours, _) = load_digest(&manifest_files(dir.path()), RecoveryPolicy::Strict);

    let out = run_with_timeout(
        {
            let mut cmd = Command::new(redis_tool("redis-check-aof").unwrap());
            cmd.arg(aof_dir.join("appendonly.aof.manifest"));
            cmd
        },
        None,
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("All AOF files and manifest are valid"), "{text}");
    assert!(text.contains("Start to check BASE AOF (RESP format)"), "{text}");

    let server = redis_on(dir.path(), false);
    let mut c = server.conn();
    assert_eq!(c.cmd(&["DEBUG", "DIGEST"]).text(), ours);
    assert_eq!(c.cmd(&["GET", "counter"]), Value::bulk("1"));
    assert_eq!(c.cmd(&["LLEN", "list"]).int(), 301);
}
