//! The AOF end to end against the real `moon-server`: start-up from hand-built directories (Redis's
//! `aof.tcl` and `aof-multi-part.tcl` scenarios, FORMATS.md §6), torn tails, the legacy upgrade, -LOADING,
//! SHUTDOWN and kill -9, and interop with Debian's redis-server / redis-check-aof (`interop`).
//!
//! Hand-built directories are made the way Redis's tests make them (`create_aof` + `create_aof_manifest`):
//! files written into `<dir>/appendonlydir`, then a server started with `appendonly yes` on `<dir>`.

mod interop;
mod runtime;

use moon_tests::{bin_path, run_with_timeout, RawConn, Server, ServerOptions, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One RESP command, as an AOF holds it.
pub fn resp(args: &[&str]) -> Vec<u8> {
    moon_tests::resp::encode(args)
}

/// Several commands, concatenated.
pub fn resp_all(cmds: &[&[&str]]) -> Vec<u8> {
    cmds.iter().flat_map(|c| resp(c)).collect()
}

/// A working directory (`--dir`) that outlives the servers started on it.
pub struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        Work { dir: tempfile::Builder::new().prefix("moon-aof-e2e-").tempdir().expect("tempdir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn aof_dir(&self) -> PathBuf {
        self.path().join("appendonlydir")
    }

    pub fn aof_path(&self, name: &str) -> PathBuf {
        self.aof_dir().join(name)
    }

    /// Writes a file of the AOF directory (created if missing).
    pub fn write_aof(&self, name: &str, bytes: &[u8]) {
        std::fs::create_dir_all(self.aof_dir()).unwrap();
        std::fs::write(self.aof_path(name), bytes).unwrap();
    }

    pub fn write_manifest(&self, text: &str) {
        self.write_aof("appendonly.aof.manifest", text.as_bytes());
    }

    pub fn manifest(&self) -> String {
        std::fs::read_to_string(self.aof_path("appendonly.aof.manifest")).unwrap_or_default()
    }

    /// The manifest's lines without comments, sorted the way Redis writes them.
    pub fn manifest_lines(&self) -> Vec<String> {
        self.manifest().lines().map(str::to_string).collect()
    }

    /// The usual hand-built set: one incr file `appendonly.aof.1.incr.aof` holding `bytes`.
    pub fn single_incr(&self, bytes: &[u8]) {
        self.write_aof("appendonly.aof.1.incr.aof", bytes);
        self.write_manifest("file appendonly.aof.1.incr.aof seq 1 type i\n");
    }

    /// Moon with `appendonly yes` on this directory (waits until loaded).
    pub fn moon(&self, shards: usize, extra: &[(&str, &str)]) -> Server {
        let mut o = ServerOptions::moon(shards).arg("appendonly", "yes").arg("dir", &self.path().display().to_string());
        for (k, v) in extra {
            o = o.arg(k, v);
        }
        o.start()
    }

    /// redis-server with `appendonly yes` on this directory.
    pub fn redis(&self, extra: &[(&str, &str)]) -> Server {
        let mut o = ServerOptions::redis().arg("appendonly", "yes").arg("dir", &self.path().display().to_string());
        for (k, v) in extra {
            o = o.arg(k, v);
        }
        o.start()
    }

    /// Starts Moon on this directory expecting it to refuse: returns everything it printed.
    pub fn moon_fails(&self, shards: usize, extra: &[(&str, &str)]) -> String {
        let mut cmd = std::process::Command::new(bin_path("moon-server"));
        cmd.args(["--port", "0", "--bind", "127.0.0.1", "--shards", &shards.to_string()]);
        cmd.args(["--appendonly", "yes", "--save", "", "--logfile", "", "--dir"]).arg(self.path());
        for (k, v) in extra {
            cmd.arg(format!("--{k}")).arg(v);
        }
        let out = run_with_timeout(cmd, None, Duration::from_secs(30));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "moon-server should have refused to start:\n{text}");
        assert_eq!(out.status.code(), Some(1), "{text}");
        text
    }
}

pub fn digest(c: &mut RawConn) -> String {
    c.cmd(&["DEBUG", "DIGEST"]).text()
}

pub fn info_field(c: &mut RawConn, section: &str, field: &str) -> String {
    let text = c.cmd(&["INFO", section]).text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{text}"))
        .trim()
        .to_string()
}

/// Polls until `cond` holds, panicking after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SHUTDOWN (the connection closes without a reply) and wait for the process to go.
pub fn shutdown(server: &mut Server, args: &[&str]) {
    let mut c = server.conn();
    let mut cmd = vec!["SHUTDOWN"];
    cmd.extend_from_slice(args);
    c.send(&resp(&cmd));
    assert!(c.try_read().is_err(), "SHUTDOWN replied");
    let deadline = Instant::now() + Duration::from_secs(20);
    while RawConn::try_connect(server.port()).is_ok() {
        assert!(Instant::now() < deadline, "server still up after SHUTDOWN");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(50));
}

/// The commands of an AOF file (annotations skipped), names lower-cased.
pub fn aof_commands(path: &Path) -> Vec<Vec<String>> {
    use engine::aof::stream::{AofReader, Event};
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = AofReader::from_bytes(bytes.into());
    let mut out = Vec::new();
    while let Some(ev) = r.next_event().unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        if let Event::Command(c) = ev {
            let mut argv: Vec<String> = c.argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            argv[0] = argv[0].to_ascii_lowercase();
            out.push(argv);
        }
    }
    out
}

const START_LOG: &str = "Ready to accept connections";

// ---- FORMATS.md §6.1 (aof.tcl): hand-built incr files ----

/// 1: an unfinished MULTI at the end is dropped (aof-load-truncated yes), and the file is cut before it.
fn unfinished_multi_starts(shards: usize) {
    let w = Work::new();
    let good = resp_all(&[&["set", "foo", "hello"], &["set", "{x}a", "1"]]);
    let mut bytes = good.clone();
    bytes.extend(resp_all(&[&["multi"], &["set", "bar", "world"], &["set", "{x}b", "2"]]));
    w.single_incr(&bytes);
    let s = w.moon(shards, &[]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["GET", "foo"]), Value::bulk("hello"));
    assert_eq!(c.cmd(&["EXISTS", "bar", "{x}b"]).int(), 0);
    let log = s.log_text();
    assert!(log.contains("Revert incomplete MULTI/EXEC transaction in AOF file appendonly.aof.1.incr.aof"), "{log}");
    assert!(log.contains(&format!("!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {} !!!", good.len())));
    assert!(log.contains("AOF appendonly.aof.1.incr.aof loaded anyway because aof-load-truncated is enabled"));
    assert!(log.contains("Opening AOF incr file appendonly.aof.1.incr.aof on server start"), "{log}");
}

/// 2: a short read at the end: the 5 complete INCRs load, the torn one is cut, and new writes are appended
/// to the same file and survive a restart.
fn short_read_then_append(shards: usize) {
    let w = Work::new();
    let mut bytes: Vec<u8> = (0..5).flat_map(|_| resp(&["incr", "foo"])).collect();
    let good = bytes.len() as u64;
    bytes.extend_from_slice(b"*2\r\n$4\r\nincr\r\n$3\r\nfo");
    w.single_incr(&bytes);
    let s = w.moon(shards, &[("appendfsync", "always")]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["GET", "foo"]), Value::bulk("5"));
    let log = s.log_text();
    assert!(log.contains("!!! Warning: short read while loading the AOF file appendonly.aof.1.incr.aof!!!"), "{log}");
    assert!(log.contains(&format!("!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {good} !!!")));
    assert_eq!(std::fs::metadata(w.aof_path("appendonly.aof.1.incr.aof")).unwrap().len(), good);
    assert_eq!(c.cmd(&["INCR", "foo"]).int(), 6);
    s.kill9();
    let s = w.moon(shards, &[]);
    assert_eq!(s.conn().cmd(&["GET", "foo"]), Value::bulk("6"));
    assert!(!s.log_text().contains("Truncating"), "{}", s.log_text());
    assert_eq!(w.manifest_lines(), ["file appendonly.aof.1.incr.aof seq 1 type i"]);
}

/// 3: a format error in the middle is fatal even with aof-load-truncated yes; nothing is truncated.
#[test]
fn bad_format_is_fatal() {
    let w = Work::new();
    let mut bytes = resp(&["set", "foo", "hello"]);
    bytes.extend_from_slice(b"!!!");
    bytes.extend(resp(&["set", "foo", "hello"]));
    w.single_incr(&bytes);
    let text = w.moon_fails(1, &[]);
    assert!(text.contains("Bad file format reading the append only file appendonly.aof.1.incr.aof"), "{text}");
    assert!(text.contains("moon-aof-tool check --fix"), "{text}");
    assert_eq!(std::fs::read(w.aof_path("appendonly.aof.1.incr.aof")).unwrap(), bytes);
}

/// 4 and 5: with aof-load-truncated no, an unfinished MULTI and a short read are fatal, files untouched.
#[test]
fn torn_tail_is_fatal_when_not_tolerated() {
    let multi = resp_all(&[&["set", "foo", "hello"], &["multi"], &["set", "bar", "world"]]);
    let mut short = resp(&["set", "foo", "hello"]);
    short.extend_from_slice(b"*3\r\n$3\r\nset\r\n$3\r\nbar\r\n$5\r\nwor");
    for bytes in [multi, short] {
        let w = Work::new();
        w.single_incr(&bytes);
        let text = w.moon_fails(1, &[("aof-load-truncated", "no")]);
        assert!(text.contains("Unexpected end of file reading the append only file appendonly.aof.1.incr.aof"));
        assert!(text.contains("aof-load-truncated yes"), "{text}");
        assert_eq!(std::fs::read(w.aof_path("appendonly.aof.1.incr.aof")).unwrap(), bytes);
    }
}

/// A torn file that is not the last one is fatal whatever the policy, and (unlike Redis) left untouched.
#[test]
fn torn_middle_file_is_fatal() {
    let w = Work::new();
    let mut first = resp(&["set", "a", "1"]);
    first.extend_from_slice(b"*3\r\n$3\r\nset\r\n");
    w.write_aof("appendonly.aof.1.incr.aof", &first);
    w.write_aof("appendonly.aof.2.incr.aof", &resp(&["set", "b", "2"]));
    w.write_manifest("file appendonly.aof.1.incr.aof seq 1 type i\nfile appendonly.aof.2.incr.aof seq 2 type i\n");
    let text = w.moon_fails(1, &[]);
    assert!(text.contains("the truncated file is not the last file: appendonly.aof.1.incr.aof"), "{text}");
    assert_eq!(std::fs::read(w.aof_path("appendonly.aof.1.incr.aof")).unwrap(), first);
}

/// A power loss during a rotation: the manifest names a new, empty incr while the previous one's tail never
/// reached the disk. The torn incr counts as the last file (only empty files follow): its tail is cut with
/// Redis's log lines (Redis itself refuses to start here).
#[test]
fn torn_incr_before_an_empty_one_is_truncated() {
    let w = Work::new();
    let good = resp(&["set", "a", "1"]);
    let first = [good.clone(), b"*3\r\n$3\r\nset\r\n".to_vec()].concat();
    w.write_aof("appendonly.aof.1.incr.aof", &first);
    w.write_aof("appendonly.aof.2.incr.aof", b"");
    w.write_manifest("file appendonly.aof.1.incr.aof seq 1 type i\nfile appendonly.aof.2.incr.aof seq 2 type i\n");
    let s = w.moon(2, &[]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["GET", "a"]), Value::Bulk(b"1".to_vec()));
    let line = format!("!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {} !!!", good.len());
    assert!(s.log_text().contains(&line), "{}", s.log_text());
    assert_eq!(std::fs::read(w.aof_path("appendonly.aof.1.incr.aof")).unwrap(), good);
    // Writes go on in the last incr.
    assert_eq!(c.cmd(&["SET", "b", "2"]), Value::simple("OK"));
    assert!(!std::fs::read(w.aof_path("appendonly.aof.2.incr.aof")).unwrap().is_empty());
}

/// A damaged RDB base is fatal whatever aof-load-truncated says (the RDB part is never truncated), with the
/// byte offset; the file is left as it was.
#[test]
fn damaged_rdb_base_is_fatal() {
    let src = Work::new();
    let other = ServerOptions::moon(1).arg("dir", &src.path().display().to_string()).start();
    let mut c = other.conn();
    for i in 0..200 {
        c.cmd(&["SET", &format!("key:{i}"), &"x".repeat(50)]);
    }
    assert_eq!(c.cmd(&["SAVE"]), Value::simple("OK"));
    let rdb = std::fs::read(src.path().join("dump.rdb")).unwrap();
    let w = Work::new();
    let cut = &rdb[..rdb.len() / 2];
    w.write_aof("appendonly.aof.1.base.rdb", cut);
    w.write_aof("appendonly.aof.1.incr.aof", &resp(&["set", "k", "v"]));
    w.write_manifest("file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n");
    let text = w.moon_fails(4, &[]);
    assert!(text.contains("Bad RDB data in the append only file appendonly.aof.1.base.rdb"), "{text}");
    assert!(text.contains("offset"), "{text}");
    assert_eq!(std::fs::read(w.aof_path("appendonly.aof.1.base.rdb")).unwrap(), cut);
}

/// 12: an unknown command is fatal even with aof-load-truncated yes.
#[test]
fn unknown_command_is_fatal() {
    let w = Work::new();
    w.single_incr(&resp_all(&[&["set", "foo", "hello"], &["bla", "foo", "hello"]]));
    let text = w.moon_fails(1, &[]);
    assert!(text.contains("Unknown command 'bla' reading the append only file appendonly.aof.1.incr.aof"), "{text}");
}

/// 7: SPOP (one member, and with a count) replays to the same set size; 8: PEXPIREAT in the past loaded
/// between two RPUSHes leaves the key expired once loaded (nothing expires while loading); 9: EXPIRE -1.
fn spop_expire_replay(shards: usize) {
    for spop in [&["spop", "set"][..], &["spop", "set", "2"][..]] {
        let w = Work::new();
        let mut cmds: Vec<&[&str]> = vec![&["sadd", "set", "foo"], &["sadd", "set", "bar"]];
        if spop.len() == 3 {
            cmds.push(&["sadd", "set", "gah"]);
        }
        cmds.push(spop);
        w.single_incr(&resp_all(&cmds));
        assert_eq!(w.moon(shards, &[]).conn().cmd(&["SCARD", "set"]).int(), 1, "{spop:?}");
    }
    let w = Work::new();
    w.single_incr(&resp_all(&[&["rpush", "list", "foo"], &["pexpireat", "list", "1000"], &["rpush", "list", "bar"]]));
    let s = w.moon(shards, &[]);
    assert_eq!(s.conn().cmd(&["LLEN", "list"]).int(), 0);
    drop(s);

    let w = Work::new();
    let mut s = w.moon(shards, &[("appendfsync", "always")]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["SET", "x", "10"]), Value::simple("OK"));
    assert_eq!(c.cmd(&["EXPIRE", "x", "-1"]).int(), 1);
    assert_eq!(c.cmd(&["EXISTS", "x"]).int(), 0);
    shutdown(&mut s, &[]);
    let cmds = aof_commands(&w.aof_path("appendonly.aof.1.incr.aof"));
    assert_eq!(cmds.last().unwrap(), &["del".to_string(), "x".to_string()], "{cmds:?}");
    assert_eq!(w.moon(shards, &[]).conn().cmd(&["EXISTS", "x"]).int(), 0);
}

/// 11: GETEX without options writes nothing to the AOF.
#[test]
fn getex_without_options_is_not_logged() {
    let w = Work::new();
    let s = w.moon(1, &[("appendfsync", "always")]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["SET", "foo", "bar"]), Value::simple("OK"));
    let path = w.aof_path("appendonly.aof.1.incr.aof");
    let before = std::fs::metadata(&path).unwrap().len();
    assert_eq!(c.cmd(&["GETEX", "foo"]), Value::bulk("bar"));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), before);
    assert!(c.cmd(&["GETEX", "foo", "EX", "100"]) == Value::bulk("bar"));
    assert!(std::fs::metadata(&path).unwrap().len() > before);
}

/// 13: LMPOP/BLMPOP and ZMPOP/BZMPOP (including a blocked client released by a push) replay to the same
/// keys and lengths after a restart.
fn mpop_replay(shards: usize) {
    let w = Work::new();
    // `always`: every record is in the file when its reply arrives, so kill -9 loses nothing.
    let s = w.moon(shards, &[("appendfsync", "always")]);
    let mut c = s.conn();
    let mut blocked = s.conn();
    c.cmd(&["LPUSH", "mylist", "a", "b", "c"]);
    assert!(!c.cmd(&["BLMPOP", "0", "1", "mylist", "LEFT", "COUNT", "10"]).is_error());
    c.cmd(&["LPUSH", "mylist2", "1", "2", "3"]);
    assert!(!c.cmd(&["LMPOP", "2", "mylist2{t}", "mylist2", "LEFT", "COUNT", "10"]).is_error());
    blocked.send(&resp(&["BLMPOP", "0", "2", "mylist3", "mylist3{t}", "RIGHT", "COUNT", "10"]));
    std::thread::sleep(Duration::from_millis(100));
    c.cmd(&["LPUSH", "mylist3", "d", "e", "f"]);
    assert!(!blocked.read().is_error());
    c.cmd(&["LPUSH", "mylist4", "1", "2", "3"]);
    c.cmd(&["BLMPOP", "0", "1", "mylist4", "RIGHT", "COUNT", "2"]);
    c.cmd(&["ZADD", "myzset", "1", "a", "2", "b", "3", "c"]);
    c.cmd(&["BZMPOP", "0", "1", "myzset", "MIN", "COUNT", "10"]);
    c.cmd(&["ZADD", "myzset2", "4", "d", "5", "e", "6", "f"]);
    c.cmd(&["ZMPOP", "2", "myzset2{t}", "myzset2", "MAX", "COUNT", "10"]);
    blocked.send(&resp(&["BZMPOP", "0", "2", "myzset3", "myzset3{t}", "MIN", "COUNT", "10"]));
    std::thread::sleep(Duration::from_millis(100));
    c.cmd(&["ZADD", "myzset3", "1", "g", "2", "h"]);
    assert!(!blocked.read().is_error());
    c.cmd(&["ZADD", "myzset4", "1", "a", "2", "b", "3", "c"]);
    c.cmd(&["BZMPOP", "0", "1", "myzset4", "MAX", "COUNT", "2"]);
    let expected = digest(&mut c);
    s.kill9();
    let s = w.moon(5 - shards.min(4), &[]);
    let mut c = s.conn();
    let keys = ["mylist", "mylist2", "mylist3", "myzset", "myzset2", "myzset3"];
    let mut exists = vec!["EXISTS"];
    exists.extend(keys);
    assert_eq!(c.cmd(&exists).int(), 0, "{:?}", c.cmd(&["KEYS", "*"]));
    assert_eq!(c.cmd(&["LRANGE", "mylist4", "0", "-1"]), Value::Array(vec![Value::bulk("3")]));
    assert_eq!(c.cmd(&["ZCARD", "myzset4"]).int(), 1);
    assert_eq!(digest(&mut c), expected);
}

/// 14: `aof-timestamp-enabled yes` puts `#TS:` first in the incr file and, with the preamble off, in the
/// base (the fresh start's and a rewrite's).
#[test]
fn timestamp_annotations_are_written() {
    let w = Work::new();
    let s = w.moon(1, &[("aof-timestamp-enabled", "yes"), ("aof-use-rdb-preamble", "no"), ("appendfsync", "always")]);
    let mut c = s.conn();
    c.cmd(&["SET", "foo", "bar"]);
    let starts_ts = |name: &str| std::fs::read(w.aof_path(name)).unwrap().starts_with(b"#TS:");
    assert!(starts_ts("appendonly.aof.1.base.aof"));
    assert!(starts_ts("appendonly.aof.1.incr.aof"));
    assert!(!c.cmd(&["BGREWRITEAOF"]).is_error());
    wait_until(Duration::from_secs(20), "the rewrite", || {
        info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
            && w.aof_path("appendonly.aof.2.base.aof").exists()
    });
    assert!(starts_ts("appendonly.aof.2.base.aof"));
}

/// 15: `#TS:` annotations anywhere (consecutive ones, one at the very end) are skipped while loading.
fn timestamp_annotations_load(shards: usize) {
    let w = Work::new();
    let mut bytes = b"#TS:1628217470\r\n".to_vec();
    bytes.extend(resp(&["set", "foo1", "bar1"]));
    bytes.extend_from_slice(b"#TS:1628217471\r\n");
    bytes.extend(resp(&["set", "foo2", "bar2"]));
    bytes.extend_from_slice(b"#TS:1628217472\r\n#TS:1628217472\r\n");
    bytes.extend(resp(&["set", "foo3", "bar3"]));
    bytes.extend_from_slice(b"#TS:1628217473\r\n");
    w.single_incr(&bytes);
    let s = w.moon(shards, &[]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["DBSIZE"]).int(), 3);
    assert_eq!(c.cmd(&["GET", "foo3"]), Value::bulk("bar3"));
    assert!(!s.log_text().contains("Truncating"));
}

/// 20: every FLUSHDB / FLUSHALL is logged, even on empty databases.
#[test]
fn flushdb_flushall_are_logged() {
    let w = Work::new();
    let s = w.moon(1, &[("appendfsync", "always")]);
    let mut c = s.conn();
    for cmd in [&["SET", "key", "value"][..], &["FLUSHDB"], &["SET", "key", "value2"], &["FLUSHDB"]] {
        assert!(!c.cmd(cmd).is_error());
    }
    for cmd in [&["FLUSHDB"][..], &["FLUSHDB"], &["FLUSHALL"], &["FLUSHALL"]] {
        assert_eq!(c.cmd(cmd), Value::simple("OK"));
    }
    let got = aof_commands(&w.aof_path("appendonly.aof.1.incr.aof"));
    let expected: Vec<Vec<String>> = [
        &["select", "0"][..],
        &["set", "key", "value"],
        &["flushdb"],
        &["set", "key", "value2"],
        &["flushdb"],
        &["flushdb"],
        &["flushdb"],
        &["flushall"],
        &["flushall"],
    ]
    .iter()
    .map(|c| c.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(got, expected);
}

// ---- FORMATS.md §6.2 part 1 (aof-multi-part.tcl): hand-built manifests ----

/// Every manifest Redis refuses stops start-up with exit code 1 and Redis's message.
#[test]
fn bad_manifests_stop_start_up() {
    let long = format!("file {} seq 1 type i\n", "a".repeat(1030));
    let cases: [(&str, &str); 9] = [
        ("file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n", "appendonly.aof.1.incr.aof length. stat: No such file or directory"),
        ("file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.3.incr.aof seq 3 type i\nfile appendonly.aof.2.incr.aof seq 2 type i\n", "Found a non-monotonic sequence number"),
        ("file appendonly.aof.1.base.aof seq 1 type b\n\nfile appendonly.aof.1.incr.aof seq 1 type i\n", "Invalid AOF manifest file format"),
        ("file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.2.base.aof seq 2 type b\n", "Found duplicate base file information"),
        ("file appendonly.aof.1.base.aof seq 1 type x\n", "Unknown AOF file type"),
        ("file appendonly.aof.1.base.aof seq 1 type\n", "Invalid AOF manifest file format"),
        ("file appendonly.aof.1.incr.aof type i\n", "Invalid AOF manifest file format"),
        (&long, "The AOF manifest file contains too long line"),
        ("file appendonly.aof.1.incr.aof seq 1 type i newkey\n", "Invalid AOF manifest file format"),
    ];
    for (manifest, message) in cases {
        let w = Work::new();
        w.write_aof("appendonly.aof.1.base.aof", &resp(&["set", "k1", "v1"]));
        w.write_aof("appendonly.aof.2.base.aof", &resp(&["set", "k2", "v2"]));
        w.write_aof("appendonly.aof.2.incr.aof", &resp(&["set", "k3", "v3"]));
        w.write_aof("appendonly.aof.3.incr.aof", &resp(&["set", "k4", "v4"]));
        w.write_manifest(manifest);
        let text = w.moon_fails(1, &[]);
        assert!(text.contains(message), "{manifest:?}: expected {message:?} in:\n{text}");
        if !message.contains("stat") {
            assert!(text.contains("*** FATAL AOF MANIFEST FILE ERROR ***"), "{text}");
        }
        assert_eq!(w.manifest(), manifest, "the manifest must be left alone");
    }
    let w = Work::new();
    w.write_manifest("");
    assert!(w.moon_fails(1, &[]).contains("Found an empty AOF manifest"));
}

/// The start cases: nothing at all, an empty AOF dir, a gap in incr seqs, unknown manifest keys, empty
/// files; then the fresh-start file sets for both base formats.
fn manifest_start_cases(shards: usize) {
    for setup in [0, 1] {
        let w = Work::new();
        if setup == 1 {
            std::fs::create_dir(w.aof_dir()).unwrap();
        }
        let s = w.moon(shards, &[]);
        assert_eq!(s.conn().cmd(&["DBSIZE"]).int(), 0);
        assert_eq!(
            w.manifest_lines(),
            ["file appendonly.aof.1.base.rdb seq 1 type b", "file appendonly.aof.1.incr.aof seq 1 type i"]
        );
        let base = std::fs::read(w.aof_path("appendonly.aof.1.base.rdb")).unwrap();
        assert!(base.starts_with(b"REDIS0010"), "{base:?}");
        assert!(base.windows(8).any(|x| x == b"aof-base"));
        assert_eq!(std::fs::metadata(w.aof_path("appendonly.aof.1.incr.aof")).unwrap().len(), 0);
        let log = s.log_text();
        assert!(log.contains("Creating AOF base file appendonly.aof.1.base.rdb on server start"), "{log}");
        assert!(log.contains("Creating AOF incr file appendonly.aof.1.incr.aof on server start"), "{log}");
    }

    let w = Work::new();
    w.write_aof("appendonly.aof.1.base.aof", &resp(&["set", "k1", "v1"]));
    w.write_aof("appendonly.aof.1.incr.aof", &resp(&["set", "k2", "v2"]));
    w.write_aof("appendonly.aof.3.incr.aof", &resp(&["set", "k3", "v3"]));
    w.write_aof("appendonly.aof.4.incr.aof", b"");
    w.write_manifest(
        "file appendonly.aof.1.base.aof seq 1 type b newkey newvalue\nfile appendonly.aof.1.incr.aof seq 1 type i\n\
         file appendonly.aof.3.incr.aof seq 3 type i\nfile appendonly.aof.4.incr.aof seq 4 type i\n",
    );
    let s = w.moon(shards, &[]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["DBSIZE"]).int(), 3);
    assert_eq!(c.cmd(&["GET", "k3"]), Value::bulk("v3"));
    assert!(s.log_text().contains("Opening AOF incr file appendonly.aof.4.incr.aof on server start"));
    drop(s);

    let w = Work::new();
    w.write_aof("appendonly.aof.1.base.aof", b"");
    w.write_aof("appendonly.aof.1.incr.aof", b"");
    w.write_manifest("file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n");
    let s = w.moon(shards, &[]);
    assert_eq!(s.conn().cmd(&["DBSIZE"]).int(), 0);
    assert!(s.log_text().contains("DB loaded from append only file"));
    drop(s);

    let w = Work::new();
    let s = w.moon(shards, &[("aof-use-rdb-preamble", "no")]);
    assert_eq!(
        w.manifest_lines(),
        ["file appendonly.aof.1.base.aof seq 1 type b", "file appendonly.aof.1.incr.aof seq 1 type i"]
    );
    assert_eq!(std::fs::metadata(w.aof_path("appendonly.aof.1.base.aof")).unwrap().len(), 0);
    drop(s);
}

/// "Multi Part AOF can handle appendfilename contains whitespaces": the manifest quotes the names.
#[test]
fn appendfilename_with_whitespace() {
    let w = Work::new();
    let name = " file seq .aof ";
    let mut s = w.moon(1, &[("appendfilename", name), ("appendfsync", "always")]);
    s.conn().cmd(&["SET", "k", "v"]);
    let manifest = std::fs::read_to_string(w.aof_path(&format!("{name}.manifest"))).unwrap();
    assert_eq!(manifest, format!("file \"{name}.1.base.rdb\" seq 1 type b\nfile \"{name}.1.incr.aof\" seq 1 type i\n"),);
    shutdown(&mut s, &["NOSAVE"]);
    let s = w.moon(1, &[("appendfilename", name)]);
    assert_eq!(s.conn().cmd(&["GET", "k"]), Value::bulk("v"));
}

/// While the AOF loads, clients get -LOADING and INFO shows growing progress; `dump.rdb` is ignored.
fn loading_replies(shards: usize) {
    let w = Work::new();
    let n = 1500;
    let bytes: Vec<u8> = (0..n).flat_map(|i| resp(&["set", &format!("k:{i}"), &format!("v{i}")])).collect();
    w.single_incr(&bytes);
    // A dump.rdb with other data: with AOF on it must not be read.
    {
        let other = ServerOptions::moon(1).arg("dir", &w.path().display().to_string()).start();
        let mut c = other.conn();
        c.cmd(&["SET", "from-rdb", "1"]);
        assert_eq!(c.cmd(&["SAVE"]), Value::simple("OK"));
    }
    let port = moon_tests::free_port();
    let log = w.path().join("loading.log");
    let child = std::process::Command::new(bin_path("moon-server"))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--shards", &shards.to_string()])
        .args(["--appendonly", "yes", "--save", "", "--key-load-delay", "1000", "--dir"])
        .arg(w.path())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn moon-server");
    let _guard = runtime::Raw(child);
    let mut conn = None;
    wait_until(Duration::from_secs(30), "the listener", || {
        conn = RawConn::try_connect(port).ok();
        conn.is_some()
    });
    let mut c = conn.unwrap();
    let loading = Value::Error("LOADING Redis is loading the dataset in memory".into());
    assert_eq!(c.cmd(&["GET", "k:1"]), loading);
    assert_eq!(c.cmd(&["SET", "new", "1"]), loading);
    assert_eq!(info_field(&mut c, "persistence", "loading"), "1");
    assert_eq!(info_field(&mut c, "persistence", "aof_enabled"), "1");
    let total: u64 = info_field(&mut c, "persistence", "loading_total_bytes").parse().unwrap();
    assert_eq!(total, bytes.len() as u64);
    let first: u64 = info_field(&mut c, "persistence", "loading_loaded_bytes").parse().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let later: u64 = info_field(&mut c, "persistence", "loading_loaded_bytes").parse().unwrap();
    assert!(later > first && later < total, "progress {first} -> {later} of {total}");
    wait_until(Duration::from_secs(30), "the load", || c.cmd(&["PING"]) == Value::simple("PONG"));
    assert_eq!(info_field(&mut c, "persistence", "loading"), "0");
    assert_eq!(c.cmd(&["DBSIZE"]).int(), n);
    assert_eq!(c.cmd(&["EXISTS", "from-rdb"]).int(), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let loaded = text.find("DB loaded from append only file").expect("load logged");
    assert!(loaded < text.find(START_LOG).expect("ready logged"), "{text}");
}

shard_tests!(
    unfinished_multi_starts,
    short_read_then_append,
    spop_expire_replay,
    mpop_replay,
    timestamp_annotations_load,
    manifest_start_cases,
    loading_replies
);
