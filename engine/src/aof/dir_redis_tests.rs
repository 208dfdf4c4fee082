//! Interop with Redis 7.0.15: a directory managed by [`AofDir`] loads in redis-server and passes
//! redis-check-aof, a directory Redis wrote is read and carried on by [`AofDir`], and both upgrade a legacy
//! file to the same directory. Skipped (with a message) when Redis is not installed, unless
//! `MOON_REQUIRE_REDIS` is set.

use super::*;

fn redis_present() -> bool {
    let ok = |t: &str| std::process::Command::new(t).arg("--version").output().is_ok_and(|o| o.status.success());
    // redis-check-aof 7.0 has no --version: it only has to run.
    let runs = std::process::Command::new("redis-check-aof").output().is_ok();
    let present = ok("redis-server") && ok("redis-cli") && runs;
    if !present {
        assert!(std::env::var_os("MOON_REQUIRE_REDIS").is_none(), "MOON_REQUIRE_REDIS is set but Redis is missing");
        eprintln!("redis-server not found: skipping the AOF directory interop tests");
    }
    present
}

/// A redis-server on `dir` with AOF on; killed on drop.
struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    fn start(dir: &Path) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap().port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--enable-debug-command", "yes", "--dir"])
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let r = Redis { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while r.cli(&["PING"]) != "PONG" {
            let log = fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
            assert!(std::time::Instant::now() < deadline, "redis-server did not start:\n{log}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        r
    }

    fn cli(&self, args: &[&str]) -> String {
        let out =
            std::process::Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn stop(mut self) {
        self.cli(&["SHUTDOWN", "NOSAVE"]);
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::aof::encode_command(&mut out, args);
    out
}

fn check_aof_valid(p: &AofPaths) {
    let out = std::process::Command::new("redis-check-aof").arg(p.manifest_path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("All AOF files and manifest are valid"), "{text}");
}

#[test]
fn redis_loads_a_directory_we_manage_and_we_read_its_directory() {
    if !redis_present() {
        return;
    }
    let t = temp_dir("redis");
    let p = paths_of(&t);
    // Ours: fresh start with a RESP base, commands in incr 1, a rewrite with writes during it.
    let mut d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    let mut incr = d.open_on_start(BaseFormat::Resp, |f| f.write_all(&resp(&["SET", "base", "0"]))).unwrap().incr.file;
    incr.write_all(&[resp(&["SELECT", "0"]), resp(&["INCR", "n"]), resp(&["RPUSH", "l", "a"])].concat()).unwrap();
    let started = d.start_rewrite(7, BaseFormat::Resp).unwrap();
    let mut incr = started.incr.unwrap().file;
    fs::write(
        &started.temp_base,
        [resp(&["SET", "base", "0"]), resp(&["SET", "n", "1"]), resp(&["RPUSH", "l", "a"])].concat(),
    )
    .unwrap();
    incr.write_all(&[resp(&["SELECT", "0"]), resp(&["INCR", "n"])].concat()).unwrap();
    d.rewrite_done().unwrap();
    incr.write_all(&resp(&["RPUSH", "l", "b"])).unwrap();
    drop(incr);
    check_aof_valid(&p);
    let redis = Redis::start(&t.0);
    assert_eq!(redis.cli(&["GET", "n"]), "2");
    assert_eq!(redis.cli(&["LRANGE", "l", "0", "-1"]), "a\nb");
    assert_eq!(redis.cli(&["GET", "base"]), "0");
    // Redis appends to our incr and rewrites our directory.
    redis.cli(&["SET", "k", "v"]);
    redis.cli(&["BGREWRITEAOF"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !manifest_text(&p).contains("seq 3 type b") {
        assert!(std::time::Instant::now() < deadline, "BGREWRITEAOF did not finish");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    redis.cli(&["SET", "after", "1"]);
    redis.stop();
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.3.base.rdb seq 3 type b\nfile appendonly.aof.3.incr.aof seq 3 type i\n"
    );

    // Theirs, read by us: the same files, and our start-up and rewrite keep using them.
    let mut d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    assert!(!d.legacy_upgrade_needed());
    let plan = d.load_plan().unwrap();
    let names: Vec<&[u8]> = plan.files.iter().map(|f| f.info.name.as_slice()).collect();
    assert_eq!(names, [&b"appendonly.aof.3.base.rdb"[..], b"appendonly.aof.3.incr.aof"]);
    assert!(plan.files[1].size > 0 && plan.files[1].is_last);
    let opened = d.open_on_start(BaseFormat::Resp, |_| panic!("not fresh")).unwrap();
    assert!(!opened.incr.created);
    let mut incr = opened.incr.file;
    incr.write_all(&resp(&["SET", "moon", "1"])).unwrap();
    let started = d.start_rewrite(8, BaseFormat::Rdb).unwrap();
    // The snapshot: Redis's RDB base with its incr as a RESP tail (a form Redis loads and checks).
    let snapshot = [fs::read(&plan.files[0].path).unwrap(), fs::read(&plan.files[1].path).unwrap()].concat();
    fs::write(&started.temp_base, snapshot).unwrap();
    drop(incr);
    let mut incr = started.incr.unwrap().file;
    incr.write_all(&[resp(&["SELECT", "0"]), resp(&["SET", "last", "x"])].concat()).unwrap();
    d.rewrite_done().unwrap();
    drop(incr);
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.4.base.rdb seq 4 type b\nfile appendonly.aof.4.incr.aof seq 4 type i\n"
    );
    check_aof_valid(&p);
    let redis = Redis::start(&t.0);
    for (k, v) in [("n", "2"), ("k", "v"), ("after", "1"), ("moon", "1"), ("last", "x"), ("base", "0")] {
        assert_eq!(redis.cli(&["GET", k]), v, "{k}");
    }
    redis.stop();
}

#[test]
fn redis_upgrade_and_ours_agree() {
    if !redis_present() {
        return;
    }
    // The same legacy file upgraded by Redis and by us gives the same directory.
    let legacy = String::from_utf8([resp(&["SELECT", "0"]), resp(&["SET", "a", "1"])].concat()).unwrap();
    let (tr, pr) = legacy_dir("redis-up", &legacy);
    let redis = Redis::start(&tr.0);
    assert_eq!(redis.cli(&["GET", "a"]), "1");
    redis.stop();
    assert!(!pr.legacy_path().exists());
    let (_tm, pm) = legacy_dir("moon-up", &legacy);
    let mut d = AofDir::open(pm.clone(), AofOptions::default()).unwrap();
    d.upgrade_legacy().unwrap();
    d.open_on_start(BaseFormat::Rdb, |_| panic!("not fresh")).unwrap();
    assert_eq!(manifest_text(&pm), manifest_text(&pr));
    assert_eq!(ls(&pm), ls(&pr));
    assert_eq!(fs::read(pm.file_path(b"appendonly.aof")).unwrap(), legacy.as_bytes());
}
