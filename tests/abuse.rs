//! Hostile clients against the running server: requests nested inside arrays, a lowered proto-max-bulk-len,
//! the unauthenticated limits, many connections each announcing a 512 MiB argument, an inline line that never
//! ends, a client that pipelines large replies and never reads them, and 5,000 idle connections (with the
//! server raising its own descriptor limit from maxclients + 32, as Redis does). In every case the server
//! keeps serving the other clients with bounded memory; error texts are compared with redis-server's where
//! Redis defines them. (Single malformed requests are in `protocol.rs`.)

use moon_tests::resp::encode;
use moon_tests::{have_redis_tools, RawConn, Server, ServerOptions, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Everything a server wrote back to `input` on a fresh connection, and whether it closed the connection.
fn exchange(port: u16, input: &[u8]) -> (String, bool) {
    let e = crate::protocol::exchange(port, input, Duration::from_millis(500));
    (e.reply, e.closed)
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS line");
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().expect("VmRSS value") * 1024
}

/// A PING on a fresh connection answers within `limit`.
fn answers_quickly(server: &Server, limit: Duration) {
    let started = Instant::now();
    let mut c = server.conn();
    assert_eq!(c.cmd(&["PING"]), Value::simple("PONG"));
    assert!(started.elapsed() < limit, "PING took {:?} while the server was under abuse", started.elapsed());
}

const EXPECTED_DOLLAR_STAR: &str = "-ERR Protocol error: expected '$', got '*'\r\n";

/// Inputs compared byte for byte with redis-server; the ones Redis defines an error for are also checked
/// against the expected text when redis-server is missing.
fn nested_cases() -> Vec<(&'static str, Vec<u8>, Option<&'static str>)> {
    let deep = b"*1\r\n".repeat(100_000);
    let mut deep_then_ping = deep.clone();
    deep_then_ping.extend_from_slice(b"$4\r\nPING\r\n");
    vec![
        ("array in array", b"*1\r\n*1\r\n$4\r\nPING\r\n".to_vec(), Some(EXPECTED_DOLLAR_STAR)),
        ("100000 nested arrays", deep, Some(EXPECTED_DOLLAR_STAR)),
        ("nested arrays then a bulk", deep_then_ping, Some(EXPECTED_DOLLAR_STAR)),
        ("second argument is an array", b"*2\r\n$4\r\nECHO\r\n*1\r\n$1\r\nx\r\n".to_vec(), Some(EXPECTED_DOLLAR_STAR)),
        (
            "RESP3 map as argument",
            b"*1\r\n%1\r\n+a\r\n+b\r\n".to_vec(),
            Some("-ERR Protocol error: expected '$', got '%'\r\n"),
        ),
        (
            "RESP3 set as argument",
            b"*2\r\n$4\r\nECHO\r\n~1\r\n".to_vec(),
            Some("-ERR Protocol error: expected '$', got '~'\r\n"),
        ),
        ("RESP3 attribute", b"|1\r\n+a\r\n+b\r\n*1\r\n$4\r\nPING\r\n".to_vec(), None),
        ("RESP3 map at top level", b"%1\r\n$1\r\na\r\n$1\r\nb\r\n".to_vec(), None),
        ("after HELLO 3", [encode(&["HELLO", "3"]), b"*1\r\n*1\r\n".to_vec()].concat(), None),
    ]
}

#[test]
fn nested_requests_are_refused_like_redis() {
    let moon = Server::moon(2);
    let redis =
        have_redis_tools("abuse::nested_requests_are_refused_like_redis", &["redis-server"]).then(Server::redis);
    let mut other = moon.conn();
    let mut diffs = Vec::new();
    for (name, input, want) in nested_cases() {
        let got = exchange(moon.port(), &input);
        if let Some(want) = want {
            assert_eq!(got, (want.to_string(), true), "{name}");
        }
        if let Some(redis) = &redis {
            let strip = |s: &str| s.split("id\r\n").next().unwrap_or("").to_string();
            let r = exchange(redis.port(), &input);
            if (strip(&r.0), r.1) != (strip(&got.0), got.1) {
                diffs.push(format!("{name}:\n  redis: {r:?}\n  moon:  {got:?}"));
            }
        }
        assert_eq!(other.cmd(&["PING"]), Value::simple("PONG"), "another client was disturbed by {name}");
    }
    assert!(diffs.is_empty(), "differences from redis-server:\n{}", diffs.join("\n"));
}

/// CONFIG SET proto-max-bulk-len applies to the next request; with requirepass, a client that has not
/// authenticated may announce at most 10 arguments of at most 16 KiB (Redis's texts).
#[test]
fn configured_and_unauthenticated_limits_match_redis() {
    let mut servers = vec![("moon", ServerOptions::moon(2).arg("requirepass", "pw").start())];
    if have_redis_tools("abuse::configured_and_unauthenticated_limits_match_redis", &["redis-server"]) {
        servers.push(("redis", ServerOptions::redis().arg("requirepass", "pw").start()));
    }
    let mut seen = Vec::new();
    for (kind, server) in &servers {
        let port = server.port();
        let mut admin = server.conn();
        assert_eq!(admin.cmd(&["AUTH", "pw"]), Value::simple("OK"));
        let mut got = vec![
            exchange(port, b"*11\r\n"),
            exchange(port, b"*10\r\n$16385\r\n"),
            exchange(port, b"*1\r\n$16384\r\n"),
            exchange(port, [encode(&["AUTH", "pw"]), b"*100\r\n$100000\r\n".to_vec()].concat().as_slice()),
        ];
        let mut open_before = server.conn();
        assert_eq!(open_before.cmd(&["AUTH", "pw"]), Value::simple("OK"));
        assert_eq!(admin.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]), Value::simple("OK"));
        // The new limit applies to connections already open.
        open_before.send(b"*1\r\n$1048577\r\n");
        assert_eq!(open_before.read(), Value::Error("ERR Protocol error: invalid bulk length".into()), "{kind}");
        let authed = |tail: &[u8]| [encode(&["AUTH", "pw"]), tail.to_vec()].concat();
        got.push(exchange(port, &authed(b"*1\r\n$1048577\r\n")));
        got.push(exchange(port, &authed(b"*1\r\n$1048576\r\n")));
        assert_eq!(admin.cmd(&["PING"]), Value::simple("PONG"), "{kind}");
        seen.push(got);
    }
    let want = |s: &str, closed| (s.to_string(), closed);
    assert_eq!(
        seen[0],
        vec![
            want("-ERR Protocol error: unauthenticated multibulk length\r\n", true),
            want("-ERR Protocol error: unauthenticated bulk length\r\n", true),
            want("", false),
            want("+OK\r\n", false),
            want("+OK\r\n-ERR Protocol error: invalid bulk length\r\n", true),
            want("+OK\r\n", false),
        ]
    );
    if let Some(redis) = seen.get(1) {
        assert_eq!(&seen[0], redis, "moon vs redis-server");
    }
}

/// Clients announcing the largest bulk allowed (512 MiB) and sending almost nothing: the server reserves
/// the room as Redis does, but untouched memory is not resident, and others are served.
#[test]
fn many_huge_bulk_announcements_stay_bounded() {
    let moon = Server::moon(2);
    let base = rss(moon.pid());
    let mut hogs = Vec::new();
    for _ in 0..16 {
        let mut c = moon.conn();
        let mut req = b"*2\r\n$3\r\nSET\r\n$536870912\r\n".to_vec();
        req.extend_from_slice(&[b'x'; 100_000]);
        c.send(&req);
        hogs.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    answers_quickly(&moon, Duration::from_secs(2));
    let grown = rss(moon.pid()).saturating_sub(base);
    assert!(grown < 96 << 20, "RSS grew by {} MiB for 16 announced 512 MiB bulks", grown >> 20);
    drop(hogs);
    answers_quickly(&moon, Duration::from_secs(2));
}

/// An inline request that never ends: closed with Redis's error once it passes 64 KiB, having buffered
/// little more than that.
#[test]
fn endless_inline_line_is_cut() {
    let moon = Server::moon(2);
    let mut s = TcpStream::connect(("127.0.0.1", moon.port())).expect("connect");
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let chunk = [b'a'; 8192];
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(20);
    // Keep writing until the server hangs up; bound what a broken server could make us send.
    while sent < 64 << 20 && Instant::now() < deadline {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(sent < 64 << 20, "the server accepted {} MiB of one inline line", sent >> 20);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert_eq!(String::from_utf8_lossy(&reply), "-ERR Protocol error: too big inline request\r\n");
    answers_quickly(&moon, Duration::from_secs(2));
}

/// A client pipelines thousands of GETs of a 1 MiB value and never reads: Moon stops reading its input
/// while its replies cannot be written (Redis, with no limit for normal clients, would buffer them all), so
/// memory stays bounded and the other clients are served.
#[test]
fn client_that_never_reads_is_held_back() {
    let moon = Server::moon(2);
    let mut admin = moon.conn();
    let big = "v".repeat(1 << 20);
    assert_eq!(admin.cmd(&["SET", "big", &big]), Value::simple("OK"));
    let base = rss(moon.pid());
    let mut slow = TcpStream::connect(("127.0.0.1", moon.port())).expect("connect");
    slow.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let one = encode(&["GET", "big"]);
    let mut sent = 0usize;
    // 3,000 GETs ask for about 3 GiB of replies; the writes stop once the server stops reading.
    for _ in 0..3000 {
        if slow.write_all(&one).is_err() {
            break;
        }
        sent += 1;
    }
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..20 {
        let started = Instant::now();
        assert_eq!(admin.cmd(&["SET", &format!("k{i}"), "v"]), Value::simple("OK"));
        assert_eq!(admin.cmd(&["STRLEN", "big"]), Value::Int(1 << 20));
        assert!(started.elapsed() < Duration::from_secs(1), "a normal client waited {:?}", started.elapsed());
    }
    answers_quickly(&moon, Duration::from_secs(2));
    let grown = rss(moon.pid()).saturating_sub(base);
    assert!(grown < 64 << 20, "RSS grew by {} MiB for a client that never reads ({sent} GETs sent)", grown >> 20);
    // The held-back client still gets every reply, in order, once it reads.
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = vec![0u8; 16];
    slow.read_exact(&mut head).expect("the slow client's replies are still there");
    assert!(head.starts_with(b"$1048576\r\nvvvvvv"), "{head:?}");
    drop(slow);
    answers_quickly(&moon, Duration::from_secs(2));
}

/// Soft and hard `RLIMIT_NOFILE` of this process.
fn nofile() -> (u64, u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    (lim.rlim_cur, lim.rlim_max)
}

/// The server's limits as /proc shows them: (soft, hard).
fn proc_nofile(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc/<pid>/limits");
    let line = text.lines().find(|l| l.starts_with("Max open files")).expect("open files line");
    let nums: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (nums[0], nums[1])
}

/// Raises this process's soft descriptor limit to at least `want` if the hard limit allows.
fn raise_own_limit(want: u64) -> bool {
    let (soft, hard) = nofile();
    if soft >= want {
        return true;
    }
    let lim = libc::rlimit { rlim_cur: want.min(hard), rlim_max: hard };
    // SAFETY: setrlimit reads the struct we own; raising the soft limit up to the hard one is always allowed.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 && want <= hard }
}

/// Like Redis, the server raises its descriptor limit to maxclients + 32 at start-up, and lowers maxclients
/// when the system refuses.
#[test]
fn server_raises_its_descriptor_limit() {
    // The same raise as the 5,000-connection test makes, so the limit the server inherits cannot change
    // between reading it here and starting the server, whichever test runs first.
    raise_own_limit(IDLE_CONNECTIONS as u64 + 200);
    let (soft, hard) = nofile();
    // A maxclients the inherited soft limit cannot hold, so the server must act.
    let maxclients = soft;
    let moon = ServerOptions::moon(1).arg("maxclients", &maxclients.to_string()).start();
    let (srv_soft, _) = proc_nofile(moon.pid());
    let mut c = moon.conn();
    let got = c.cmd(&["CONFIG", "GET", "maxclients"]);
    let effective: u64 = got.array()[1].text().parse().expect("number");
    if srv_soft >= maxclients + 32 {
        assert_eq!(srv_soft, maxclients + 32, "soft limit of the server (inherited {soft})");
        assert_eq!(effective, maxclients);
        assert!(moon.log_text().contains("Increased maximum number of open files"), "{}", moon.log_text());
    } else {
        // Only a hard limit below what is needed (without the privilege to raise it) excuses this.
        assert!(hard < maxclients + 32, "the server kept {srv_soft} descriptors although the hard limit is {hard}");
        assert_eq!(effective, srv_soft - 32, "maxclients lowered to fit the limit");
        assert!(moon.log_text().contains("maxclients has been reduced to"), "{}", moon.log_text());
    }
}

const IDLE_CONNECTIONS: usize = 5000;

/// 5,000 idle connections: all accepted (the server raised its own limit), the server keeps answering.
#[test]
fn five_thousand_idle_connections() {
    const N: usize = IDLE_CONNECTIONS;
    if !raise_own_limit(N as u64 + 200) {
        eprintln!(
            "abuse::five_thousand_idle_connections: skipped, RLIMIT_NOFILE hard limit {:?} < {}",
            nofile(),
            N + 200
        );
        return;
    }
    let moon = Server::moon(2);
    let mut idle = Vec::with_capacity(N);
    for i in 0..N {
        match TcpStream::connect(("127.0.0.1", moon.port())) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connection {i} refused: {e}"),
        }
    }
    let mut c = moon.conn();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = c.cmd(&["INFO", "clients"]).text();
        if info.contains(&format!("connected_clients:{}\r\n", N + 1)) {
            break;
        }
        assert!(Instant::now() < deadline, "not every idle client was accepted:\n{info}");
        std::thread::sleep(Duration::from_millis(50));
    }
    answers_quickly(&moon, Duration::from_secs(2));
    // The first and the last idle connections still work.
    for i in [0, N - 1] {
        let s = &mut idle[i];
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"PING\r\n").unwrap();
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"+PONG\r\n");
    }
    drop(idle);
    let mut conn = RawConn::connect(moon.port());
    assert_eq!(conn.cmd(&["PING"]), Value::simple("PONG"));
}

/// `client-output-buffer-limit normal <hard> ...`, when configured, closes a client whose pending replies
/// pass the hard limit, without sending them, as Redis does (one 2 MiB reply against a 1 MiB limit).
#[test]
fn normal_output_buffer_limit_matches_redis() {
    let mut servers = vec![Server::moon(2)];
    if have_redis_tools("abuse::normal_output_buffer_limit_matches_redis", &["redis-server"]) {
        servers.push(Server::redis());
    }
    let mut seen = Vec::new();
    for server in &servers {
        let mut admin = server.conn();
        assert_eq!(admin.cmd(&["SET", "big", &"v".repeat(2 << 20)]), Value::simple("OK"));
        let set = admin.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0"]);
        assert_eq!(set, Value::simple("OK"));
        let small = exchange(server.port(), &encode(&["GETRANGE", "big", "0", "2"]));
        let (reply, closed) = exchange(server.port(), &encode(&["GET", "big"]));
        // Replies of the same batch still pending are dropped with it (Redis writes nothing to a client it
        // is closing).
        let mixed = exchange(server.port(), &[encode(&["PING"]), encode(&["GET", "big"])].concat());
        assert_eq!(admin.cmd(&["PING"]), Value::simple("PONG"), "the admin connection is unaffected");
        seen.push((small, reply.len(), closed, mixed));
    }
    assert_eq!(seen[0], (("$3\r\nvvv\r\n".to_string(), false), 0, true, (String::new(), true)));
    if let Some(redis) = seen.get(1) {
        assert_eq!(&seen[0], redis, "moon vs redis-server");
    }
}
