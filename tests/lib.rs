//! Helpers shared by Moon's end-to-end tests: locating the built binaries, starting a real `moon-server` or
//! Debian's `redis-server` on a free loopback port in a fresh temporary directory (killed and removed on drop,
//! even when the test panics), running the Redis command-line tools with a time limit, and a small raw RESP
//! client ([`resp`]) for byte-level tests.
//!
//! Every wait here is bounded: sockets carry read/write timeouts, child processes are polled against a deadline
//! and killed when it passes, so no test can hang.

#[path = "support/resp.rs"]
pub mod resp;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub use resp::{RawConn, Value};

/// How long a server may take to answer its first PING (a debug build on a busy 2-core machine is slow).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of a binary built by this workspace (`moon-server`, `moon-aof-tool`), next to the test executable.
pub fn bin_path(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("current_exe");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// Full path of a Redis tool (`redis-server`, `redis-cli`, `redis-benchmark`), if installed.
pub fn redis_tool(name: &str) -> Option<PathBuf> {
    let fixed = Path::new("/usr/bin").join(name);
    if fixed.is_file() {
        return Some(fixed);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Whether the Redis tools a test needs are installed. When one is missing the test should return early:
/// with `MOON_REQUIRE_REDIS` set this panics instead, so CI cannot silently skip the interop tests.
pub fn have_redis_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| redis_tool(t).is_none()).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("MOON_REQUIRE_REDIS").is_some() {
        panic!("{test}: {} not installed and MOON_REQUIRE_REDIS is set", missing.join(", "));
    }
    eprintln!("{test}: skipped, {} not installed (apt-get install redis-server redis-tools)", missing.join(", "));
    false
}

/// Returns early from the calling test when a Redis tool is missing (see [`have_redis_tools`]).
#[macro_export]
macro_rules! require_redis {
    ($($tool:expr),+) => {
        if !$crate::have_redis_tools(module_path!(), &[$($tool),+]) {
            return;
        }
    };
}

/// A loopback port that was free a moment ago (the OS picks it; a race with another process is handled by the
/// caller retrying).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Which server binary a [`Server`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Moon,
    Redis,
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub kind: Kind,
    /// `--shards N` (Moon only).
    pub shards: usize,
    /// When false (the default until persistence lands) the server runs with `--appendonly no --save ''`.
    pub persistence: bool,
    /// More `--directive value` arguments, appended last (so they win).
    pub args: Vec<String>,
    /// Extra environment variables of the server process.
    pub env: Vec<(String, String)>,
    /// This port instead of a free one (a restart where the last server listened).
    pub port: Option<u16>,
}

impl ServerOptions {
    pub fn moon(shards: usize) -> ServerOptions {
        ServerOptions { kind: Kind::Moon, shards, persistence: false, args: Vec::new(), env: Vec::new(), port: None }
    }

    pub fn redis() -> ServerOptions {
        ServerOptions {
            kind: Kind::Redis,
            shards: 1,
            persistence: false,
            args: Vec::new(),
            env: Vec::new(),
            port: None,
        }
    }

    /// Adds `--name value`.
    pub fn arg(mut self, name: &str, value: &str) -> ServerOptions {
        self.args.push(format!("--{name}"));
        self.args.push(value.to_string());
        self
    }

    /// Listens on `port` (no retry on another port if it is taken).
    pub fn port(mut self, port: u16) -> ServerOptions {
        self.port = Some(port);
        self
    }

    /// Sets the environment variable `name` of the server process.
    pub fn env(mut self, name: &str, value: &str) -> ServerOptions {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    pub fn start(self) -> Server {
        Server::start(self)
    }
}

/// A running server on 127.0.0.1 with its own temporary `--dir`. Dropping it kills the process and removes the
/// directory; if the test is panicking the tail of the server's log is printed first.
pub struct Server {
    child: Option<Child>,
    port: u16,
    kind: Kind,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Server {
    /// A Moon server with `--shards n`.
    pub fn moon(shards: usize) -> Server {
        ServerOptions::moon(shards).start()
    }

    /// Debian's redis-server (callers check [`have_redis_tools`] first).
    pub fn redis() -> Server {
        ServerOptions::redis().start()
    }

    /// Starts a server and waits until it answers PING. A port taken between choosing and binding it is
    /// retried on another port; any other start-up failure panics with the server's output.
    pub fn start(opts: ServerOptions) -> Server {
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let dir = tempfile::Builder::new().prefix("moon-e2e-").tempdir().expect("tempdir");
            let port = opts.port.unwrap_or_else(free_port);
            let log = dir.path().join("server.log");
            let child = spawn_server(&opts, port, dir.path(), &log);
            let mut server = Server { child: Some(child), port, kind: opts.kind, log, dir };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(text) => {
                    server.kill();
                    last_log = text;
                    if !last_log.contains("in use") || opts.port.is_some() {
                        break;
                    }
                }
            }
        }
        panic!("{:?} server failed to start:\n{last_log}", opts.kind);
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("exited with {status} before answering PING:\n{}", self.log_text()));
            }
            if ping(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("no PONG within {START_TIMEOUT:?}:\n{}", self.log_text()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// `redis://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server already stopped").id()
    }

    /// A raw RESP connection with read and write timeouts.
    pub fn conn(&self) -> RawConn {
        RawConn::connect(self.port)
    }

    /// What the server printed so far (stdout and stderr).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; panics if it does not.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("server already stopped");
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        let status = wait_deadline(child, limit);
        self.child = None;
        status.unwrap_or_else(|| panic!("server did not exit within {limit:?} of SIGTERM:\n{}", self.log_text()))
    }

    /// Waits up to `limit` for the process to exit by itself (after SHUTDOWN); panics if it does not.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("server already stopped");
        let status = wait_deadline(child, limit);
        self.child = None;
        status.unwrap_or_else(|| panic!("server did not exit within {limit:?}:\n{}", self.log_text()))
    }

    /// Sends SIGKILL (a crash: no shutdown work runs) and waits until the process is dead, its files and
    /// sockets closed, so a restart on the same directory can begin. The process stays a zombie until drop.
    pub fn kill9(&self) {
        let pid = self.pid();
        // SAFETY: plain kill(2) on our own child's pid (not yet reaped, so the pid is still ours).
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0, "kill(SIGKILL) failed");
        let stat = format!("/proc/{pid}/stat");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // The state is the field after the parenthesised command name: `Z` once the main thread is gone;
            // the files close with the last thread, so wait until no other thread is listed either. Without
            // /proc, fall back to a pause.
            let Ok(text) = std::fs::read_to_string(&stat) else {
                std::thread::sleep(Duration::from_millis(100));
                return;
            };
            let state = text.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
            let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
            if matches!(state, Some("Z" | "X")) && threads <= 1 {
                return;
            }
            assert!(Instant::now() < deadline, "pid {pid} still alive 20 s after SIGKILL: {text}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let text = self.log_text();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!("--- last lines of {:?} server log (port {}) ---\n{}", self.kind, self.port, tail.join("\n"));
        }
    }
}

fn spawn_server(opts: &ServerOptions, port: u16, dir: &Path, log: &Path) -> Child {
    let out = File::create(log).expect("create server log");
    let err = out.try_clone().expect("clone log handle");
    let (program, mut args): (PathBuf, Vec<String>) = match opts.kind {
        Kind::Moon => {
            let bin = bin_path("moon-server");
            assert!(bin.is_file(), "{} is missing: run `cargo build --workspace --bins` first", bin.display());
            (bin, vec!["--shards".to_string(), opts.shards.to_string()])
        }
        Kind::Redis => {
            (redis_tool("redis-server").expect("redis-server installed"), vec!["--daemonize".into(), "no".into()])
        }
    };
    for (k, v) in [
        ("--port", port.to_string()),
        ("--bind", "127.0.0.1".to_string()),
        ("--dir", dir.display().to_string()),
        ("--enable-debug-command", "yes".to_string()),
        ("--protected-mode", "no".to_string()),
        ("--logfile", String::new()),
    ] {
        args.push(k.to_string());
        args.push(v);
    }
    if !opts.persistence {
        args.extend(["--appendonly", "no", "--save", ""].map(String::from));
    }
    args.extend(opts.args.iter().cloned());
    Command::new(&program)
        .args(&args)
        .envs(opts.env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()))
}

/// One PING over a fresh connection; true on +PONG or -NOAUTH (the server is up but wants a password).
fn ping(port: u16) -> bool {
    let addr = ([127, 0, 0, 1], port).into();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"),
        _ => false,
    }
}

/// Waits for a child up to `limit`; None when it is still running.
pub fn wait_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs a command with `stdin` fed from memory and stdout/stderr captured; kills it and panics after `limit`.
pub fn run_with_timeout(mut cmd: Command, stdin: Option<Vec<u8>>, limit: Duration) -> Output {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let shown = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let readers = [child.stdout.take().map(reader_thread), child.stderr.take().map(reader_thread)];
    let status = wait_deadline(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(w) = writer {
        let _ = w.join();
    }
    let [out, err] = readers.map(|r| r.map(|h| h.join().unwrap_or_default()).unwrap_or_default());
    match status {
        Some(status) => Output { status, stdout: out, stderr: err },
        None => panic!(
            "{shown} did not finish within {limit:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        ),
    }
}

fn reader_thread<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Redis Cluster's key slot (CRC16/XMODEM of the key or its `{hash tag}`, modulo 16384). Moon routes a key
/// to shard `slot % shards`, so tests use this to pick keys that land on different shards.
pub fn key_slot(key: &[u8]) -> u16 {
    let mut k = key;
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                k = &key[open + 1..open + 1 + len];
            }
        }
    }
    let mut crc: u16 = 0;
    for &b in k {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

/// `count` keys named `prefix:<n>` whose slots differ modulo 4, so that with 2 or 4 shards as many of them
/// as possible sit on different shards (and with 4 shards the first four are on four different shards).
pub fn keys_on_distinct_shards(prefix: &str, count: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut n = 0u32;
    while out.len() < count {
        let key = format!("{prefix}:{n}");
        n += 1;
        let shard = key_slot(key.as_bytes()) % 4;
        let used = out.iter().filter(|k| key_slot(k.as_bytes()) % 4 == shard).count();
        // Fill residues round-robin: each residue gets its i-th key before any gets its (i+1)-th.
        if used == out.len() / 4 {
            out.push(key);
        }
    }
    out
}
