//! Access control and process safety: requirepass, maxclients, idle timeout, SIGTERM, bad start-up config.

use moon_tests::{bin_path, run_with_timeout, RawConn, Server, ServerOptions, Value};
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

/// Commands pipelined behind a wrong AUTH (MULTI/EXEC included) never reach the keyspace; wrong passwords
/// are counted as Redis 7.0 counts them (`errorstat_WRONGPASS`, `total_error_replies`), compared with
/// redis-server when it is installed.
#[test]
fn nothing_before_auth_reaches_the_keyspace() {
    let mut servers = vec![ServerOptions::moon(2).arg("requirepass", "pw").start()];
    if moon_tests::have_redis_tools("safety::nothing_before_auth_reaches_the_keyspace", &["redis-server"]) {
        servers.push(ServerOptions::redis().arg("requirepass", "pw").start());
    }
    let mut seen = Vec::new();
    for server in &servers {
        let mut c = server.conn();
        let script: [&[&str]; 9] = [
            &["AUTH", "wrong"],
            &["SET", "a", "1"],
            &["MULTI"],
            &["SET", "a", "2"],
            &["EXEC"],
            &["AUTH", "default", "also-wrong"],
            &["FLUSHALL"],
            &["GET", "a"],
            &["HELLO", "2", "AUTH", "default", "nope"],
        ];
        let bytes: Vec<u8> = script.iter().flat_map(|args| moon_tests::resp::encode(args)).collect();
        let replies = c.pipeline(bytes, script.len());
        let mut admin = server.conn();
        assert_eq!(admin.cmd(&["AUTH", "pw"]), Value::simple("OK"));
        assert_eq!(admin.cmd(&["DBSIZE"]), Value::Int(0), "a command before AUTH changed the keyspace");
        let errorstats = admin.cmd(&["INFO", "errorstats"]).text();
        let stats = admin.cmd(&["INFO", "stats"]).text();
        let total = stats.lines().find(|l| l.starts_with("total_error_replies:")).unwrap_or_default().to_string();
        seen.push((replies, errorstats.trim().to_string(), total));
    }
    let (replies, errorstats, total) = &seen[0];
    let noauth = Value::Error("NOAUTH Authentication required.".into());
    let wrongpass = Value::Error("WRONGPASS invalid username-password pair or user is disabled.".into());
    assert_eq!(replies[0], wrongpass);
    assert!(replies[1..4].iter().all(|r| *r == noauth), "{replies:?}");
    // Redis answers a refused EXEC with EXECABORT and the reason.
    assert_eq!(
        replies[4],
        Value::Error("EXECABORT Transaction discarded because of: NOAUTH Authentication required.".into())
    );
    assert_eq!(replies[5], wrongpass);
    assert_eq!(replies[6..8], [noauth.clone(), noauth]);
    assert!(errorstats.contains("errorstat_WRONGPASS:count=3"), "{errorstats}");
    assert_eq!(total, "total_error_replies:10", "the nine above and the start-up probe's PING");
    if let Some(redis) = seen.get(1) {
        assert_eq!(&seen[0], redis, "moon vs redis-server");
    }
}

/// A local address that is not loopback (the source address of a route to a public address; nothing is
/// sent), if the machine has one.
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// protected-mode (no password): clients from a non-loopback address get Redis's DENIED text and are
/// closed; loopback clients are served; with a password, remote clients may authenticate.
#[test]
fn protected_mode_refuses_non_loopback_clients() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("safety::protected_mode_refuses_non_loopback_clients: skipped, no non-loopback address here");
        return;
    };
    let talk = |port: u16| {
        let mut s = std::net::TcpStream::connect((ip, port)).expect("connect to the non-loopback address");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = std::io::Write::write_all(&mut s, b"PING\r\n");
        let mut reply = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut reply);
        String::from_utf8_lossy(&reply).into_owned()
    };
    let mut kinds = vec![ServerOptions::moon(2)];
    if moon_tests::have_redis_tools("safety::protected_mode_refuses_non_loopback_clients", &["redis-server"]) {
        kinds.push(ServerOptions::redis());
    }
    let mut seen = Vec::new();
    for opts in kinds {
        let open = opts.clone().arg("bind", "0.0.0.0").arg("protected-mode", "yes").start();
        let denied = talk(open.port());
        assert_eq!(open.conn().cmd(&["PING"]), Value::simple("PONG"), "loopback clients are served");
        let guarded = opts.arg("bind", "0.0.0.0").arg("protected-mode", "yes").arg("requirepass", "pw").start();
        let mut s = std::net::TcpStream::connect((ip, guarded.port())).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std::io::Write::write_all(&mut s, b"AUTH pw\r\nPING\r\n").unwrap();
        let mut buf = [0u8; 12];
        std::io::Read::read_exact(&mut s, &mut buf).expect("a remote client with a password is served");
        seen.push((denied, String::from_utf8_lossy(&buf).into_owned()));
    }
    let (denied, authed) = &seen[0];
    assert!(denied.starts_with("-DENIED Redis is running in protected mode"), "{denied}");
    assert!(denied.ends_with("\r\n") && denied.matches("\r\n").count() == 1, "one line then close: {denied:?}");
    assert_eq!(authed, "+OK\r\n+PONG\r\n");
    if let Some(redis) = seen.get(1) {
        assert_eq!(&seen[0], redis, "moon vs redis-server");
    }
}

/// A server stopped by SIGKILL, SIGTERM or SHUTDOWN, with clients connected, is followed at once by a new one
/// on the same port: the port is free when the old process is gone (Moon's io_uring used to keep the listening
/// socket open a few milliseconds longer, and the restart failed with "Address already in use").
#[test]
fn a_restart_binds_the_same_port_at_once() {
    for how in ["SIGKILL", "SIGTERM", "SHUTDOWN"] {
        for _ in 0..3 {
            let mut old = Server::moon(2);
            let mut conns: Vec<RawConn> = (0..4).map(|_| old.conn()).collect();
            for (i, c) in conns.iter_mut().enumerate() {
                assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), Value::simple("OK"));
            }
            match how {
                "SIGKILL" => old.kill9(),
                "SIGTERM" => assert!(old.terminate(Duration::from_secs(20)).success()),
                _ => {
                    conns[0].send(b"SHUTDOWN NOSAVE\r\n");
                    assert!(old.wait_exit(Duration::from_secs(20)).success());
                }
            }
            let new = ServerOptions::moon(2).port(old.port()).start();
            assert_eq!(new.conn().cmd(&["PING"]), Value::simple("PONG"), "{how}");
        }
    }
}
