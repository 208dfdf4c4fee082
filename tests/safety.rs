//! Access control and process safety: requirepass, maxclients, idle timeout, SIGTERM, bad start-up config.

use moon_tests::{bin_path, run_with_timeout, RawConn, ServerOptions, Value};
use std::process::Command;
use std::time::{Duration, Instant};

fn requirepass(shards: usize) {
    let moon = ServerOptions::moon(shards).arg("requirepass", "s3cret").start();
    let mut c = moon.conn();
    assert_eq!(c.cmd(&["GET", "a"]), Value::Error("NOAUTH Authentication required.".into()));
    assert_eq!(c.cmd(&["SET", "a", "b"]), Value::Error("NOAUTH Authentication required.".into()));
    assert_eq!(
        c.cmd(&["AUTH", "wrong"]),
        Value::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
    );
    assert_eq!(
        c.cmd(&["AUTH", "default", "wrong"]),
        Value::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
    );
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), Value::simple("OK"));
    assert_eq!(c.cmd(&["SET", "a", "b"]), Value::simple("OK"));
    assert_eq!(c.cmd(&["GET", "a"]), Value::bulk("b"));
    // Another connection starts unauthenticated; AUTH with the user name works too; HELLO can authenticate.
    let mut d = moon.conn();
    assert_eq!(d.cmd(&["GET", "a"]), Value::Error("NOAUTH Authentication required.".into()));
    assert_eq!(d.cmd(&["AUTH", "default", "s3cret"]), Value::simple("OK"));
    assert_eq!(d.cmd(&["GET", "a"]), Value::bulk("b"));
    let mut e = moon.conn();
    let hello = e.cmd(&["HELLO", "2", "AUTH", "default", "s3cret"]);
    assert!(!hello.is_error(), "{hello:?}");
    assert_eq!(e.cmd(&["GET", "a"]), Value::bulk("b"));
    // A MULTI from an unauthenticated client is refused too.
    let mut f = moon.conn();
    assert_eq!(f.cmd(&["MULTI"]), Value::Error("NOAUTH Authentication required.".into()));
}

fn wait_clients(c: &mut RawConn, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = c.cmd(&["INFO", "clients"]).text();
        if info.contains(&format!("connected_clients:{want}\r\n")) {
            return;
        }
        assert!(Instant::now() < deadline, "connected_clients never reached {want}:\n{info}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn maxclients(shards: usize) {
    let moon = ServerOptions::moon(shards).arg("maxclients", "2").start();
    let mut a = moon.conn();
    wait_clients(&mut a, 1); // the start-up PING connection has gone
    let mut b = moon.conn();
    assert_eq!(b.cmd(&["PING"]), Value::simple("PONG"));
    let mut c = moon.conn();
    assert_eq!(c.try_read().ok(), Some(Value::Error("ERR max number of clients reached".into())));
    c.is_closed().expect("third client must be disconnected");
    // The first two still work, and a slot frees up when one leaves.
    assert_eq!(a.cmd(&["PING"]), Value::simple("PONG"));
    drop(b);
    wait_clients(&mut a, 1);
    let mut d = moon.conn();
    assert_eq!(d.cmd(&["PING"]), Value::simple("PONG"));
}

fn idle_timeout(shards: usize) {
    let moon = ServerOptions::moon(shards).arg("timeout", "1").start();
    let mut idle = moon.conn();
    assert_eq!(idle.cmd(&["PING"]), Value::simple("PONG"));
    let mut busy = moon.conn();
    let started = Instant::now();
    idle.set_read_timeout(Duration::from_millis(200));
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(8) {
        assert_eq!(busy.cmd(&["PING"]), Value::simple("PONG"), "an active client was disconnected");
        match idle.is_closed() {
            Ok(()) => {
                closed = true;
                break;
            }
            Err(e) if e.contains("timed out") => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(closed, "idle client still connected after {:?} with timeout 1", started.elapsed());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "closed after only {waited:?}");
    // Clients that are blocked or in MULTI are not exempt in Redis either, but one that keeps talking stays.
    assert_eq!(busy.cmd(&["PING"]), Value::simple("PONG"));
}

fn sigterm(shards: usize) {
    let mut moon = ServerOptions::moon(shards).start();
    let mut c = moon.conn();
    for i in 0..100 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    let started = Instant::now();
    let status = moon.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status:?}\n{}", moon.log_text());
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown took {:?}", started.elapsed());
    assert!(moon.log_text().contains("ready to exit"), "{}", moon.log_text());
}

fn bad_config(shards: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(bin_path("moon-server"));
    cmd.args(["--shards", &shards.to_string(), "--dir"]).arg(dir.path()).args(["--port", "abc"]);
    let o = run_with_timeout(cmd, None, Duration::from_secs(20));
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!o.status.success(), "moon-server --port abc started: {text}");
    assert!(text.contains("*** FATAL CONFIG FILE ERROR"), "{text}");
    assert!(text.contains("port") && text.contains("abc"), "{text}");

    let mut cmd = Command::new(bin_path("moon-server"));
    cmd.args(["--shards", &shards.to_string(), "--no-such-directive", "1"]);
    let o = run_with_timeout(cmd, None, Duration::from_secs(20));
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!o.status.success());
    assert!(
        text.contains("FATAL CONFIG FILE ERROR") && text.contains("Bad directive or wrong number of arguments"),
        "{text}"
    );
}

shard_tests!(requirepass, maxclients, idle_timeout, sigterm, bad_config);
