//! The write path through `dispatch`, in process: what lands in the file (Redis 7.0's propagated forms,
//! checked against redis-server 7.0.15), order under concurrency across shards (replayed through the
//! engine's executor), group commit under `always`, and write / fsync failures.

use super::{Policy, Settings};
use crate::client::{Client, Shared as ClientShared};
use crate::config::Config;
use crate::dispatch::{dispatch, Next};
use crate::server::Server;
use bytes::Bytes;
use engine::aof::writer::AofFile;
use engine::resp::Reply;
use parking_lot::Mutex;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

fn client(id: u64) -> Client {
    let shared = ClientShared::for_test(id);
    Client::new(shared, true)
}

fn server(shards: usize) -> Server {
    Server::new(Config { shards, save: Vec::new(), ..Config::default() }, None, 0)
}

fn settings(policy: Policy) -> Settings {
    Settings { policy, timestamps: false, unlink_expired: false }
}

/// Runs one command line (arguments split on spaces) as the connection would.
fn run(server: &Server, c: &mut Client, line: &str) -> Next {
    c.clock_budget = 0;
    dispatch(server, c, line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect())
}

fn reply(n: Next) -> Reply {
    match n {
        Next::Reply(r) => r,
        _ => panic!("expected a reply"),
    }
}

/// A temp file removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(tag: &str) -> (TempFile, std::fs::File) {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("moon-aof-{tag}-{}-{n}.incr.aof", std::process::id()));
        std::fs::File::create(&path).unwrap();
        let file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        (TempFile(path), file)
    }

    fn read(&self) -> Vec<u8> {
        std::fs::read(&self.0).unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts the pipeline on a real temp file.
fn start_file(server: &Server, tag: &str, s: Settings) -> TempFile {
    let (tmp, file) = TempFile::new(tag);
    server.aof.start_on(Arc::new(file), 0, 0, s).unwrap();
    tmp
}

/// The commands of an AOF stream (`#` annotation lines as they are).
fn decode(data: &[u8]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        if data[pos] == b'#' {
            let end = pos + data[pos..].windows(2).position(|w| w == b"\r\n").expect("annotation line");
            out.push(vec![String::from_utf8_lossy(&data[pos..end]).into_owned()]);
            pos = end + 2;
            continue;
        }
        let (frame, used) = engine::resp::parse_frame(&data[pos..]).unwrap().expect("complete command");
        let argv = frame.into_command().expect("a command");
        out.push(argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect());
        pos += used;
    }
    out
}

fn lines(data: &[u8]) -> Vec<String> {
    decode(data).into_iter().map(|c| c.join(" ")).collect()
}

/// Replays an AOF stream through the engine's executor on a fresh keyspace (MULTI/EXEC just run their
/// commands in order; nothing expires lazily while loading, as in Redis).
fn replay(data: &[u8], databases: usize) -> engine::keyspace::Keyspace {
    let mut ks = engine::keyspace::Keyspace::new(databases);
    let cfg = engine::config::EngineConfig::default();
    let mut ctx = engine::cmd::Ctx::new(&mut ks, &cfg, crate::server::unix_ms());
    ctx.loading = true;
    for argv in decode(data) {
        if argv[0].starts_with('#') || argv[0].eq_ignore_ascii_case("multi") || argv[0].eq_ignore_ascii_case("exec") {
            continue;
        }
        let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        ctx.reset_effects();
        let r = engine::cmd::execute(&mut ctx, &argv);
        assert!(!r.is_error(), "replaying {argv:?}: {r:?}");
    }
    drop(ctx);
    ks
}

fn live_digest(server: &Server) -> String {
    let view = server.shards.lock_all();
    engine::digest::to_hex(&engine::digest::dataset_digest(&view))
}

/// An in-memory incr file whose writes and fsyncs fail on demand; it counts fsyncs and what they covered.
#[derive(Default)]
struct MemFile {
    data: Mutex<Vec<u8>>,
    synced: AtomicUsize,
    fsyncs: AtomicU64,
    fail_write: AtomicBool,
    fail_fsync: AtomicBool,
    /// How long an fsync takes (a disk's flush), in microseconds.
    fsync_us: AtomicU64,
}

impl AofFile for MemFile {
    fn append(&self, buf: &[u8]) -> io::Result<usize> {
        if self.fail_write.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(28));
        }
        self.data.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.fsyncs.fetch_add(1, Ordering::SeqCst);
        let len = self.data.lock().len();
        std::thread::sleep(Duration::from_micros(self.fsync_us.load(Ordering::SeqCst)));
        if self.fail_fsync.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.synced.fetch_max(len, Ordering::SeqCst);
        Ok(())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.data.lock().truncate(len as usize);
        Ok(())
    }
}

fn start_mem(server: &Server, s: Settings) -> Arc<MemFile> {
    let file = Arc::new(MemFile::default());
    server.aof.start_on(file.clone(), 0, 0, s).unwrap();
    file
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls a future on this thread, parking between polls. Panics if a wake-up never comes.
fn block_on<F: Future>(f: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        assert!(Instant::now() < deadline, "no wake-up");
        std::thread::park_timeout(Duration::from_secs(1));
    }
}

/// Waits for whatever this thread's last command must see durable; what the connection does before replying.
fn settle(server: &Server) -> Result<(), String> {
    match super::take_wait_target() {
        0 => Ok(()),
        t => block_on(server.aof.durable(t)),
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn pxat(cmd: &[String], at: usize, expect_ms: i64) {
    let v: i64 = cmd[at].parse().unwrap();
    assert!((v - expect_ms).abs() < 5_000, "{cmd:?}: {v} vs {expect_ms}");
}

#[test]
fn logs_the_forms_redis_7_propagates() {
    let srv = server(1);
    let tmp = start_file(&srv, "forms", settings(Policy::Everysec));
    let mut c = client(1);
    let now = crate::server::unix_ms();
    for line in [
        "SET a 1 EX 100",
        "SETEX b 100 v",
        "EXPIRE a 200",
        "set f 1.5",
        "INCRBYFLOAT f 0.1",
        "SADD s x",
        "SPOP s",
        "GETEX a PERSIST",
        "GETEX b",
        "GET nosuchkey",
        "DEL nosuchkey",
        "SADD t x y z",
        "SPOP t 2",
        "RPUSH l a b c",
        "BLMPOP 0 1 l RIGHT COUNT 2",
        "ZADD z 1 a 2 b 3 c",
        "BZMPOP 0 1 z MAX COUNT 2",
        "BLPOP l 0",
        "FLUSHDB",
        "FLUSHALL",
        "FLUSHALL",
    ] {
        assert!(!reply(run(&srv, &mut c, line)).is_error(), "{line}");
    }
    srv.aof.close().unwrap();
    let cmds = decode(&tmp.read());
    assert_eq!(cmds[0], ["SELECT", "0"]);
    assert_eq!(cmds[1][..4], ["SET", "a", "1", "PXAT"]);
    pxat(&cmds[1], 4, now + 100_000);
    assert_eq!(cmds[2][..4], ["SET", "b", "v", "PXAT"]);
    pxat(&cmds[2], 4, now + 100_000);
    assert_eq!(cmds[3][..2], ["PEXPIREAT", "a"]);
    pxat(&cmds[3], 2, now + 200_000);
    let rest: Vec<String> = cmds[4..].iter().map(|c| c.join(" ")).collect();
    let srem_t = &cmds[12];
    assert_eq!((srem_t[0].as_str(), srem_t[1].as_str()), ("SREM", "t"));
    let expected = [
        "set f 1.5",
        "SET f 1.6 KEEPTTL",
        "SADD s x",
        "SREM s x",
        "PERSIST a",
        // GETEX without options, GET and a DEL of nothing: not logged.
        "SADD t x y z",
        "MULTI",
        &format!("SREM t {}", cmds[11][2]),
        &format!("SREM t {}", cmds[12][2]),
        "EXEC",
        "RPUSH l a b c",
        "RPOP l 2",
        "ZADD z 1 a 2 b 3 c",
        "ZPOPMAX z 2",
        "LPOP l",
        "FLUSHDB",
        "FLUSHALL",
        "FLUSHALL",
    ];
    assert_eq!(rest, expected);
}

#[test]
fn select_and_transactions() {
    let srv = server(4);
    let tmp = start_file(&srv, "multi", settings(Policy::No));
    let mut c = client(1);
    for line in [
        "SELECT 1",
        "SET x 1",
        "MULTI",
        "SET a 1",
        "SELECT 2",
        "SET b 2",
        "EXEC",
        "MULTI",
        "SET one 1",
        "EXEC",
        "MULTI",
        "GET one",
        "EXEC",
        "SELECT 0",
        "MULTI",
        "INCR m1",
        "INCR m2",
        "EXEC",
    ] {
        assert!(!reply(run(&srv, &mut c, line)).is_error(), "{line}");
    }
    srv.aof.close().unwrap();
    assert_eq!(
        lines(&tmp.read()),
        [
            "SELECT 1",
            "SET x 1",
            "MULTI",
            "SET a 1",
            "SELECT 2",
            "SET b 2",
            "EXEC",
            // One write: no MULTI/EXEC; a read-only transaction: nothing.
            "SET one 1",
            "SELECT 0",
            "MULTI",
            "INCR m1",
            "INCR m2",
            "EXEC",
        ]
    );
}

#[test]
fn expired_keys_are_logged_before_the_command_and_outside_multi() {
    let srv = server(2);
    let tmp = start_file(&srv, "expired", settings(Policy::Everysec));
    let mut c = client(1);
    for line in ["SET k v PX 1", "SET k2 v PX 1", "SET k3 v PX 1"] {
        reply(run(&srv, &mut c, line));
    }
    std::thread::sleep(Duration::from_millis(10));
    reply(run(&srv, &mut c, "INCR k"));
    srv.aof.apply(Settings { unlink_expired: true, ..settings(Policy::Everysec) });
    reply(run(&srv, &mut c, "GET k2"));
    for line in ["MULTI", "SET x 1", "GET k3", "SET y 2", "EXEC"] {
        reply(run(&srv, &mut c, line));
    }
    super::feed_expired(&srv, 0, &[Box::from(&b"active"[..])]);
    srv.aof.close().unwrap();
    let got: Vec<String> = lines(&tmp.read()).into_iter().filter(|l| !l.starts_with("SET k")).collect();
    assert_eq!(
        got,
        [
            "SELECT 0",
            "DEL k",
            "INCR k",
            "UNLINK k2",
            "UNLINK k3",
            "MULTI",
            "SET x 1",
            "SET y 2",
            "EXEC",
            "UNLINK active"
        ]
    );
}

#[test]
fn timestamps_precede_select() {
    let srv = server(1);
    let tmp = start_file(&srv, "ts", Settings { timestamps: true, ..settings(Policy::Everysec) });
    let mut c = client(1);
    let before = crate::server::unix_ms() / 1000;
    reply(run(&srv, &mut c, "SET a 1"));
    reply(run(&srv, &mut c, "SET b 1"));
    srv.aof.close().unwrap();
    let l = lines(&tmp.read());
    let ts: i64 = l[0].strip_prefix("#TS:").expect("annotation first").parse().unwrap();
    assert!(ts >= before && ts <= before + 2, "{ts} vs {before}");
    assert_eq!(l[1..3], ["SELECT 0", "SET a 1"]);
    assert!(l.len() == 4 || l[3].starts_with("#TS:"), "{l:?}");
}

#[test]
fn blocked_clients_served_later_are_logged_after_the_push() {
    let srv = server(4);
    let tmp = start_file(&srv, "blocked", settings(Policy::Everysec));
    let (mut a, mut b, mut w) = (client(1), client(2), client(3));
    let Next::Block(ba) = run(&srv, &mut a, "BLPOP q 0") else { panic!("BLPOP should block") };
    let Next::Block(bb) = run(&srv, &mut b, "BLMOVE q {q}dst LEFT RIGHT 0") else { panic!("BLMOVE should block") };
    reply(run(&srv, &mut w, "RPUSH q x y z"));
    for blocked in [&ba, &bb] {
        crate::blocking::finish(&srv, &a, &blocked.waiter);
    }
    srv.aof.close().unwrap();
    assert_eq!(lines(&tmp.read()), ["SELECT 0", "RPUSH q x y z", "LPOP q", "LMOVE q {q}dst left right"]);
}

#[test]
fn cross_shard_mset_is_one_record_before_later_writes() {
    let srv = server(4);
    let tmp = start_file(&srv, "mset", settings(Policy::No));
    let mut c = client(1);
    let keys: Vec<String> = (0..16).map(|i| format!("key:{i}")).collect();
    let shards: std::collections::BTreeSet<usize> = keys.iter().map(|k| srv.shards.shard_of(k.as_bytes())).collect();
    assert!(shards.len() > 1, "the keys must span shards");
    let mset = format!("MSET {}", keys.iter().map(|k| format!("{k} 1")).collect::<Vec<_>>().join(" "));
    reply(run(&srv, &mut c, &mset));
    reply(run(&srv, &mut c, "INCR key:3"));
    srv.aof.close().unwrap();
    assert_eq!(lines(&tmp.read()), ["SELECT 0", mset.as_str(), "INCR key:3"]);
}

/// Several threads run order-sensitive writes (APPEND, LPUSH, SET, cross-shard MSET and transactions) on
/// shared keys over 4 shards; replaying the log must rebuild exactly the live dataset.
#[test]
fn log_order_matches_execution_order_across_shards() {
    let srv = Arc::new(server(4));
    let tmp = start_file(&srv, "order", settings(Policy::Everysec));
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let srv = srv.clone();
            std::thread::spawn(move || {
                let mut c = client(t + 1);
                let mut rng = fastrand::Rng::with_seed(t);
                for i in 0..1500 {
                    let (k1, k2) = (rng.usize(0..12), rng.usize(0..12));
                    let line = match rng.usize(0..7) {
                        0 => format!("APPEND s{k1} {t}.{i},"),
                        1 => format!("LPUSH l{k1} {t}.{i}"),
                        2 => format!("SET s{k1} {t}.{i}"),
                        3 => format!("MSET s{k1} m{t}.{i} s{k2} n{t}.{i}"),
                        4 => format!("INCR n{k1}"),
                        5 => format!("RPOPLPUSH l{k1} l{k2}"),
                        _ => {
                            for line in ["MULTI".to_string(), format!("APPEND s{k1} x{t}"), format!("LPUSH l{k2} {i}")]
                            {
                                reply(run(&srv, &mut c, &line));
                            }
                            "EXEC".to_string()
                        }
                    };
                    reply(run(&srv, &mut c, &line));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    srv.aof.close().unwrap();
    let replayed = replay(&tmp.read(), srv.shards.databases());
    let replayed = engine::digest::to_hex(&engine::digest::dataset_digest(&replayed));
    assert_eq!(replayed, live_digest(&srv));
}

/// Under `always` a reply waits for the fsync covering its record, and one fsync serves many clients.
#[test]
fn group_commit_under_always() {
    let srv = Arc::new(server(2));
    let file = start_mem(&srv, settings(Policy::Always));
    file.fsync_us.store(1000, Ordering::SeqCst);
    const THREADS: u64 = 8;
    const EACH: u64 = 200;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (srv, file) = (srv.clone(), file.clone());
            std::thread::spawn(move || {
                let mut c = client(t + 1);
                for i in 0..EACH {
                    reply(run(&srv, &mut c, &format!("SET k{t} {i}")));
                    let target = super::take_wait_target();
                    assert!(target > 0, "a write under always must wait");
                    block_on(srv.aof.durable(target)).unwrap();
                    // The stream started at offset 0 of this file: the fsync covered the record.
                    assert!(file.synced.load(Ordering::SeqCst) as u64 >= target);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let fsyncs = file.fsyncs.load(Ordering::SeqCst);
    let commands = THREADS * EACH;
    assert!(fsyncs >= 1 && fsyncs * 2 <= commands, "{fsyncs} fsyncs for {commands} writes");
    // A read has no record of its own, but its reply waits behind everything appended before it.
    let mut c = client(99);
    reply(run(&srv, &mut c, "GET k1"));
    assert_eq!(super::take_wait_target(), 0);
    let appended = file.data.lock().len() as u64;
    assert_eq!(super::read_barrier(&srv), appended);
    srv.aof.apply(settings(Policy::Everysec));
    assert_eq!(super::read_barrier(&srv), 0, "only under always");
}

#[test]
fn everysec_fsyncs_in_the_background_and_no_never_does() {
    let srv = server(1);
    let file = start_mem(&srv, settings(Policy::Everysec));
    let mut c = client(1);
    reply(run(&srv, &mut c, "SET a 1"));
    // The reply waits for the write(2) of its record, not for an fsync.
    let target = super::take_wait_target();
    assert!(target > 0, "a write's reply waits under everysec");
    block_on(srv.aof.durable(target)).unwrap();
    assert!(file.data.lock().len() as u64 >= target, "released before its record reached the file");
    wait_until("the background fsync", || {
        let len = file.data.lock().len();
        len > 0 && file.synced.load(Ordering::SeqCst) == len
    });
    srv.aof.close().unwrap();

    let srv = server(1);
    let file = start_mem(&srv, settings(Policy::No));
    reply(run(&srv, &mut c, "SET a 1"));
    wait_until("the write", || !file.data.lock().is_empty());
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(file.fsyncs.load(Ordering::SeqCst), 0);
    assert_eq!(srv.aof.close(), Ok(file.data.lock().len() as u64));
    assert_eq!(file.fsyncs.load(Ordering::SeqCst), 1, "closing fsyncs");
}

#[test]
fn write_errors_refuse_writes_until_a_write_succeeds() {
    let srv = server(2);
    let file = start_mem(&srv, settings(Policy::Everysec));
    let mut c = client(1);
    reply(run(&srv, &mut c, "SET a 1"));
    wait_until("the first write", || !file.data.lock().is_empty());
    file.fail_write.store(true, Ordering::SeqCst);
    // Accepted (everysec does not wait), but its record cannot be written.
    assert_eq!(reply(run(&srv, &mut c, "SET b 2")), Reply::ok());
    wait_until("the failure", || !srv.persist.aof_last_write_ok.load(Ordering::SeqCst));
    let misconf = Reply::err("MISCONF Errors writing to the AOF file: No space left on device");
    assert_eq!(reply(run(&srv, &mut c, "SET c 3")), misconf);
    assert_eq!(reply(run(&srv, &mut c, "PING")), misconf);
    assert_eq!(reply(run(&srv, &mut c, "GET a")), Reply::bulk("1"), "reads keep working");
    assert_eq!(reply(run(&srv, &mut c, "MULTI")), Reply::ok());
    assert!(reply(run(&srv, &mut c, "INCR a")).is_error());
    assert!(matches!(reply(run(&srv, &mut c, "EXEC")), Reply::Error(e) if e.starts_with("EXECABORT")));
    file.fail_write.store(false, Ordering::SeqCst);
    wait_until("the recovery", || srv.persist.aof_last_write_ok.load(Ordering::SeqCst));
    assert_eq!(reply(run(&srv, &mut c, "SET c 3")), Reply::ok());
    srv.aof.close().unwrap();
    assert_eq!(lines(&file.data.lock()), ["SELECT 0", "SET a 1", "SET b 2", "SET c 3"], "nothing lost");
}

#[test]
fn failed_fsync_under_always_poisons_until_rotation() {
    let srv = server(1);
    let file = start_mem(&srv, settings(Policy::Always));
    let mut c = client(1);
    reply(run(&srv, &mut c, "SELECT 3"));
    reply(run(&srv, &mut c, "SET a 1"));
    settle(&srv).unwrap();
    file.fail_fsync.store(true, Ordering::SeqCst);
    assert_eq!(reply(run(&srv, &mut c, "SET b 2")), Reply::ok(), "the command ran");
    let err = settle(&srv).unwrap_err();
    assert_eq!(err, "MISCONF Errors writing to the AOF file: Input/output error", "its reply must be this error");
    assert!(!srv.persist.aof_last_write_ok.load(Ordering::SeqCst));
    // Never retried, never ignored: the disk "recovers", writes stay refused.
    file.fail_fsync.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(reply(run(&srv, &mut c, "SET c 3")), Reply::err(err.clone()));
    assert_eq!(file.fsyncs.load(Ordering::SeqCst), 2);
    // A rewrite installs a fresh file: writes are accepted again, the new file starts with SELECT.
    let fresh = Arc::new(MemFile::default());
    let old = srv.aof.rotate_to(fresh.clone(), 0).expect("on").wait();
    assert!(matches!(old, Err(ref e) if e.reason == "Input/output error"), "{old:?}");
    // The retired file may miss `SET b 2`: refused until the rewrite's base holds it.
    assert_eq!(reply(run(&srv, &mut c, "SET c 3")), Reply::err(err));
    srv.aof.rewrite_done();
    assert!(srv.persist.aof_last_write_ok.load(Ordering::SeqCst));
    assert_eq!(reply(run(&srv, &mut c, "SET c 3")), Reply::ok());
    settle(&srv).unwrap();
    assert_eq!(lines(&fresh.data.lock()), ["SELECT 3", "SET c 3"]);
    srv.aof.close().unwrap();
}

#[test]
fn write_failure_under_always_fails_the_waiting_replies() {
    let srv = server(1);
    let file = start_mem(&srv, settings(Policy::Always));
    let mut c = client(1);
    file.fail_write.store(true, Ordering::SeqCst);
    reply(run(&srv, &mut c, "SET a 1"));
    assert_eq!(settle(&srv), Err("MISCONF Errors writing to the AOF file: No space left on device".into()));
    file.fail_write.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(250));
    assert!(reply(run(&srv, &mut c, "SET a 2")).is_error(), "poisoned under always: no retry");
    assert!(srv.aof.close().is_err(), "the file misses a record");
}

#[test]
fn rotation_flushes_the_old_file_and_resets_select() {
    let srv = server(2);
    let tmp = start_file(&srv, "rot-old", settings(Policy::Everysec));
    let mut c = client(1);
    reply(run(&srv, &mut c, "SELECT 5"));
    reply(run(&srv, &mut c, "SET x 1"));
    let (tmp2, file2) = TempFile::new("rot-new");
    let rotation = srv.aof.rotate_to(Arc::new(file2), 0).expect("on");
    // Appended after the switch, before the writer carried it out: goes to the new file.
    reply(run(&srv, &mut c, "SET y 2"));
    let size = rotation.wait().unwrap();
    assert_eq!(size, tmp.read().len() as u64);
    assert_eq!(lines(&tmp.read()), ["SELECT 5", "SET x 1"]);
    // Two rotations in a row, the second one finished by close().
    let third = Arc::new(MemFile::default());
    let (r2, r3) = (srv.aof.rotate_to(third.clone(), 0).expect("on"), Arc::new(MemFile::default()));
    reply(run(&srv, &mut c, "SET z 3"));
    let r3w = srv.aof.rotate_to(r3.clone(), 0).expect("on");
    srv.aof.close().unwrap();
    assert_eq!(lines(&tmp2.read()), ["SELECT 5", "SET y 2"]);
    assert_eq!(r2.wait(), Ok(tmp2.read().len() as u64));
    assert_eq!(lines(&third.data.lock()), ["SELECT 5", "SET z 3"]);
    assert_eq!(r3w.wait(), Ok(third.data.lock().len() as u64));
    assert!(r3.data.lock().is_empty());
    assert!(srv.aof.rotate_to(Arc::new(MemFile::default()), 0).is_none(), "off");
    // Off: nothing is logged or waited for.
    super::take_wait_target();
    reply(run(&srv, &mut c, "SET w 4"));
    assert_eq!(super::take_wait_target(), 0);
}

#[test]
fn info_reports_size_and_status() {
    let srv = server(1);
    let file = start_mem(&srv, settings(Policy::Always));
    srv.aof.set_other_files_size(1000);
    let mut c = client(1);
    reply(run(&srv, &mut c, "SET a 1"));
    settle(&srv).unwrap();
    let size = file.data.lock().len() as u64;
    let mut info = String::new();
    srv.persist.render(&srv, true, &mut info);
    assert!(info.contains("aof_last_write_status:ok\r\n"), "{info}");
    assert!(info.contains(&format!("aof_current_size:{}\r\n", 1000 + size)), "{info}");
    assert!(info.contains("aof_buffer_length:0\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\n"), "{info}");
    srv.aof.close().unwrap();
}

/// Everysec with a stuck background fsync: unlike Redis (which postpones writes behind it for up to 2 s),
/// writes go on alongside it, so replies, which wait for their write, are not held by the fsync;
/// `aof_delayed_fsync` stays 0; INFO shows the pending fsync meanwhile.
#[test]
fn everysec_writes_alongside_a_slow_fsync() {
    let srv = server(1);
    let file = start_mem(&srv, settings(Policy::Everysec));
    file.fsync_us.store(3_500_000, Ordering::SeqCst);
    let mut c = client(1);
    reply(run(&srv, &mut c, "SET a 1"));
    wait_until("the background fsync to start", || srv.persist.aof_pending_bio_fsync.load(Ordering::SeqCst) == 1);
    super::take_wait_target();
    let started = Instant::now();
    reply(run(&srv, &mut c, "SET b 2"));
    let target = super::take_wait_target();
    block_on(srv.aof.durable(target)).unwrap();
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(1500), "the reply waited {waited:?} behind the fsync");
    assert!(file.data.lock().ends_with(b"$1\r\nb\r\n$1\r\n2\r\n"));
    assert_eq!(srv.persist.aof_pending_bio_fsync.load(Ordering::SeqCst), 1, "the fsync is still running");
    assert_eq!(srv.persist.aof_delayed_fsync.load(Ordering::SeqCst), 0);
    file.fsync_us.store(0, Ordering::SeqCst);
    srv.aof.close().unwrap();
}
