//! Moon's files against the real thing: redis-check-rdb passes them and redis-server 7.0 loads them with
//! the same DEBUG DIGEST; Moon's DUMP payloads RESTORE in Redis to the same values and encodings.
//!
//! Runs only when `redis-server` and `redis-check-rdb` are on PATH; with `MOON_REQUIRE_REDIS` set, their
//! absence is a failure instead of a skip.

use super::super::{dump_payload, save_keyspace, LoadOptions, WriteOptions};
use super::{digest, fixture, load_into};
use crate::cmd::testkit::Kit;
use crate::digest::{to_hex, value_digest};
use crate::keyspace::Keyspace;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tools_present() -> bool {
    let ok = |t: &str| Command::new(t).arg("--version").output().is_ok_and(|o| o.status.success());
    let present = ok("redis-server") && ok("redis-check-rdb");
    if !present {
        assert!(
            std::env::var_os("MOON_REQUIRE_REDIS").is_none(),
            "MOON_REQUIRE_REDIS is set but redis-server is missing"
        );
        eprintln!("redis-server not found: skipping the real-Redis RDB tests");
    }
    present
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("moon-rdb-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A reply, as much of RESP2 as these tests need.
#[derive(Debug, PartialEq)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Resp>),
}

/// A redis-server child loading `dir/file`, killed on drop.
struct Server {
    child: Child,
    conn: BufReader<TcpStream>,
}

impl Server {
    fn start(dir: &Path, file: &str) -> Server {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes", "--daemonize", "no", "--dbfilename", file])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut child = child;
        let stream = loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                break s;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
                panic!("redis-server exited ({status}) loading {file}:\n{log}");
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let mut s = Server { child, conn: BufReader::new(stream) };
        // A server still loading answers -LOADING.
        while matches!(s.cmd(&[b"PING"]), Resp::Error(_)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn cmd(&mut self, args: &[&[u8]]) -> Resp {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.conn.get_mut().write_all(&req).expect("send");
        self.read()
    }

    fn read(&mut self) -> Resp {
        let mut line = String::new();
        self.conn.read_line(&mut line).expect("reply");
        let (kind, rest) = line.trim_end().split_at(1);
        match kind {
            "+" => Resp::Simple(rest.into()),
            "-" => Resp::Error(rest.into()),
            ":" => Resp::Int(rest.parse().expect("int")),
            "$" => {
                let n: i64 = rest.parse().expect("len");
                if n < 0 {
                    return Resp::Bulk(None);
                }
                let mut b = vec![0; n as usize + 2];
                self.conn.read_exact(&mut b).expect("bulk");
                b.truncate(n as usize);
                Resp::Bulk(Some(b))
            }
            "*" => Resp::Array((0..rest.parse::<usize>().expect("n")).map(|_| self.read()).collect()),
            _ => panic!("bad reply {line:?}"),
        }
    }

    fn text(&mut self, args: &[&[u8]]) -> String {
        match self.cmd(args) {
            Resp::Simple(s) => s,
            Resp::Bulk(Some(b)) => String::from_utf8(b).expect("utf8"),
            other => panic!("{args:?}: {other:?}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `ks` with `opts`, checks it with redis-check-rdb, loads it in redis-server and compares.
fn redis_loads_moon_file(ks: &Keyspace, opts: &WriteOptions, tag: &str) {
    let dir = temp_dir(tag);
    let path = dir.join("moon.rdb");
    let bytes = save_keyspace(ks, Vec::new(), opts, false).expect("save");
    std::fs::write(&path, &bytes).expect("write");
    let check = Command::new("redis-check-rdb").arg(&path).output().expect("redis-check-rdb");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && out.contains("RDB looks OK"), "redis-check-rdb on {tag}:\n{out}");
    let mut s = Server::start(&dir, "moon.rdb");
    assert_eq!(s.text(&[b"DEBUG", b"DIGEST"]), digest(ks), "{tag}: digest after redis-server loaded Moon's file");
    let keys: usize = ks.dbs.iter().map(|d| d.len()).sum();
    let mut redis_keys = 0;
    for db in 0..16 {
        s.text(&[b"SELECT", db.to_string().as_bytes()]);
        if let Resp::Int(n) = s.cmd(&[b"DBSIZE"]) {
            redis_keys += n as usize;
        }
    }
    assert_eq!(redis_keys, keys, "{tag}: key count");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redis_server_loads_what_moon_writes() {
    if !tools_present() {
        return;
    }
    let (all, r) = load_into(&fixture("all-types.rdb"), &LoadOptions::default());
    r.unwrap();
    redis_loads_moon_file(&all, &WriteOptions::default(), "all-types");
    let plain = WriteOptions { compression: false, checksum: false, ..WriteOptions::default() };
    redis_loads_moon_file(&all, &plain, "all-types-plain");
    let (legacy, r) = load_into(&fixture("legacy-v6-ziplist.rdb"), &LoadOptions::default());
    r.unwrap();
    redis_loads_moon_file(&legacy, &WriteOptions::default(), "legacy");

    let mut k = Kit::new();
    for line in include_str!("../../../../fixtures/digest/mixed.txt").lines() {
        assert!(!k.run(line).is_error(), "{line}");
    }
    redis_loads_moon_file(&k.ks, &WriteOptions::default(), "mixed");

    let big = super::roundtrip::big_keyspace(&crate::config::EngineConfig::default());
    redis_loads_moon_file(&big, &WriteOptions::default(), "big");
}

/// RESTORE of Moon's DUMP payloads in Redis gives the same value (DIGEST-VALUE) and the same encoding.
#[test]
fn redis_restores_moon_dump_payloads() {
    if !tools_present() {
        return;
    }
    let dir = temp_dir("restore");
    let mut s = Server::start(&dir, "none.rdb");
    let (ks, r) = load_into(&fixture("all-types.rdb"), &LoadOptions::default());
    r.unwrap();
    let opts = WriteOptions::default();
    let mut n = 0;
    for e in ks.dbs.iter().flat_map(|d| d.table.iter()) {
        let payload = dump_payload(&e.value, &opts);
        let reply = s.cmd(&[b"RESTORE", &e.key, b"0", &payload, b"REPLACE"]);
        assert_eq!(reply, Resp::Simple("OK".into()), "{}", e.key.escape_ascii());
        let got = match s.cmd(&[b"DEBUG", b"DIGEST-VALUE", &e.key]) {
            Resp::Array(mut v) if v.len() == 1 => match v.pop() {
                Some(Resp::Simple(d)) => d,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        // Restored without a TTL, so compare with the value's digest minus the expiry marker.
        let mut plain = Keyspace::new(1);
        plain.dbs[0].insert(&e.key, e.value.clone(), None);
        let want = to_hex(&value_digest(plain.dbs[0].get(&e.key)));
        assert_eq!(got, want, "{}", e.key.escape_ascii());
        let enc = s.text(&[b"OBJECT", b"ENCODING", &e.key]);
        assert_eq!(enc, e.value.encoding_name(), "{}", e.key.escape_ascii());
        n += 1;
    }
    assert_eq!(n, 47);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
