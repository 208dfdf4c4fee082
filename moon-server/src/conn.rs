//! One client connection: read, parse (pipelined commands are handled in one pass), dispatch, and write
//! the replies of a whole batch with one write. Bad protocol input closes this connection only.
//!
//! Output normally goes inline, after each batch. A client that subscribes or starts MONITOR gets an outbox
//! other threads push into (see `outbox`): the socket's write half then moves to a writer task draining it,
//! and every later reply of this connection goes through the outbox too, so replies and pushed messages
//! keep their order. A blocked command (BLPOP ...) keeps reading the socket while it waits, so a disconnect
//! or CLIENT KILL ends the wait at once, and pipelined commands wait in the buffer as in Redis.

use crate::blocking::{self, Blocked};
use crate::client::{Client, Shared};
use crate::dispatch::{dispatch, Next};
use crate::outbox::{self, Pushed};
use crate::server::{unix_ms, Counters, Server};
use crate::stats::ConfigCache;
use bytes::{Bytes, BytesMut};
use engine::resp::{encode, ParserLimits, Reply, RequestParser};
use monoio::buf::{IoBufMut, SliceMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, CancelableAsyncReadRent, Canceller, Splitable};
use monoio::net::tcp::{TcpOwnedReadHalf, TcpOwnedWriteHalf};
use monoio::net::TcpStream;
use monoio::task::JoinHandle;
use parking_lot::Mutex;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// Replies are flushed once this much is pending, even in the middle of a pipeline.
const FLUSH_AT: usize = 64 * 1024;
const READ_CHUNK: usize = 16 * 1024;
/// How long a closing connection in push mode may take to write what it still has queued.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

const PROTECTED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

fn limits(server: &Server, authenticated: bool) -> ParserLimits {
    parser_limits(server.config.read().proto_max_bulk_len as usize, authenticated)
}

fn parser_limits(max_bulk_len: usize, authenticated: bool) -> ParserLimits {
    ParserLimits { max_bulk_len, require_auth: !authenticated, ..ParserLimits::default() }
}

/// The settings a connection checks on every read, copied from the configuration when it changes.
struct ConnSettings {
    max_bulk_len: usize,
    output: OutputLimit,
    query_buffer_limit: usize,
}

impl ConnSettings {
    fn read(server: &Server) -> ConnSettings {
        let cfg = server.config.read();
        ConnSettings {
            max_bulk_len: cfg.proto_max_bulk_len as usize,
            output: cfg
                .compat_value("client-output-buffer-limit")
                .map_or_else(OutputLimit::default, OutputLimit::parse),
            query_buffer_limit: cfg.client_query_buffer_limit as usize,
        }
    }
}

/// Descriptors Redis keeps for itself beyond `maxclients` (`CONFIG_MIN_RESERVED_FDS`): listeners, files,
/// the log, persistence.
const RESERVED_FDS: u64 = 32;

/// Redis's start-up rule for `RLIMIT_NOFILE`: raise the limit to `maxclients + 32`; when the system refuses,
/// keep the highest limit it allows (trying 16 fewer at a time) and lower `maxclients` to fit, with Redis's
/// log lines. Called once, before any client is accepted.
pub fn raise_open_files_limit(server: &Server) {
    let maxclients = u64::from(server.config.read().maxclients);
    let wanted = maxclients + RESERVED_FDS;
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        let err = std::io::Error::last_os_error();
        crate::warning!(
            "Unable to obtain the current NOFILE limit ({err}), assuming 1024 and setting the max clients configuration accordingly."
        );
        server.config.write().maxclients = (1024 - RESERVED_FDS) as u32;
        return;
    }
    let old = lim.rlim_cur;
    if old >= wanted {
        return;
    }
    let mut best = wanted;
    let mut last_err = None;
    while best > old {
        let try_lim = libc::rlimit { rlim_cur: best, rlim_max: best };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &try_lim) } == 0 {
            break;
        }
        last_err = Some(std::io::Error::last_os_error());
        best = best.saturating_sub(16);
    }
    if best < old {
        best = old;
    }
    if best >= wanted {
        crate::notice!("Increased maximum number of open files to {wanted} (it was originally set to {old}).");
        return;
    }
    let reduced = best.saturating_sub(RESERVED_FDS);
    if reduced < 1 {
        crate::warning!(
            "Your current 'ulimit -n' of {old} is not enough for the server to start. Please increase your open file limit to at least {wanted}. Exiting."
        );
        std::process::exit(1);
    }
    // strerror's text, as Redis prints it (without Rust's " (os error N)").
    let err = last_err.map_or_else(String::new, |e| e.to_string());
    let err = err.split(" (os error").next().unwrap_or_default();
    crate::warning!("You requested maxclients of {maxclients} requiring at least {wanted} max file descriptors.");
    crate::warning!("Server can't set maximum open files to {wanted} because of OS error: {err}.");
    crate::warning!(
        "Current maximum open files is {best}. maxclients has been reduced to {reduced} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
    );
    server.config.write().maxclients = u32::try_from(reduced).unwrap_or(u32::MAX);
}

/// The I/O runtime of a shard thread (call it on that thread).
///
/// The ring runs its completion work only when the thread asks for events (`DEFER_TASKRUN`, with the
/// `SINGLE_ISSUER` it requires), instead of interrupting whatever system call the thread makes next. Without
/// it, a socket's receive ran inside the return of the AOF write(2) right after the peer's packet arrived,
/// and spun on the socket lock the sending CPU still held (a quarter of the CPU at pipeline 1). Kernels
/// older than 6.1 refuse the flags: the default ring is used then.
pub fn runtime() -> std::io::Result<Runtime> {
    let mut urb = io_uring::IoUring::builder();
    urb.setup_single_issuer().setup_defer_taskrun();
    match monoio::RuntimeBuilder::<monoio::FusionDriver>::new().enable_timer().uring_builder(urb).build() {
        Ok(rt) => Ok(rt),
        Err(_) => monoio::RuntimeBuilder::<monoio::FusionDriver>::new().enable_timer().build(),
    }
}

/// What [`runtime`] builds.
pub type Runtime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

/// Serves one accepted connection until it closes.
pub async fn serve(server: Arc<Server>, mut stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let laddr = stream.local_addr().unwrap_or(addr);
    Counters::add(&server.stats.total_connections_received, 1);
    let (maxclients, protected, needs_auth) = {
        let cfg = server.config.read();
        (cfg.maxclients as usize, cfg.protected_mode && cfg.requirepass.is_none(), cfg.requirepass.is_some())
    };
    if protected && !addr.ip().is_loopback() {
        let _ = stream.write_all(PROTECTED.as_bytes().to_vec()).await;
        return;
    }
    if server.clients.len() >= maxclients {
        Counters::add(&server.stats.rejected_connections, 1);
        let _ = stream.write_all(b"-ERR max number of clients reached\r\n".to_vec()).await;
        return;
    }
    let now = unix_ms();
    let shared = Arc::new(Shared {
        id: server.clients.next_id(),
        addr,
        laddr,
        fd: stream.as_raw_fd(),
        created_ms: now,
        last_cmd_ms: AtomicI64::new(now),
        name: Mutex::new(None),
        db: AtomicU64::new(0),
        last_cmd: Mutex::new("NULL"),
        killed: AtomicBool::new(false),
        subs: AtomicU64::new(0),
        psubs: AtomicU64::new(0),
        flags: Mutex::new("N".into()),
    });
    server.clients.add(shared.clone());
    let mut client = Client::new(shared.clone(), !needs_auth);
    let (rd, wr) = stream.into_split();
    let mut conn = Conn {
        server: server.clone(),
        rd,
        wr: Some(wr),
        writer: None,
        out: Vec::with_capacity(READ_CHUNK),
        aof_marks: Vec::new(),
        aof_barrier: 0,
    };
    let end = conn.run(&mut client).await;
    // Leave every shared structure before the client is unregistered: nothing may push to it any more.
    crate::pubsub::clear(&server, &mut client);
    crate::monitor::stop(&server, &mut client);
    crate::dispatch::unwatch(&server, &mut client);
    server.clients.remove(shared.id);
    conn.finish(&client, end).await;
}

/// How a connection ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// Write what is still queued (QUIT, protocol error), then close.
    Flush,
    /// The peer is gone or the client was killed: drop queued output.
    Drop,
}

/// What ended a blocked command's wait.
enum Wake {
    Served(Reply),
    Timeout,
    Read(std::io::Result<usize>, SliceMut<BytesMut>),
}

struct Conn {
    server: Arc<Server>,
    rd: TcpOwnedReadHalf,
    /// The write half while replies are written inline; it moves into the writer task in push mode.
    wr: Option<TcpOwnedWriteHalf>,
    /// Push mode: the task draining the client's outbox into the socket.
    writer: Option<JoinHandle<()>>,
    /// Encoded replies not yet written (or queued).
    out: Vec<u8>,
    /// `appendfsync always`: (start, end) of each write's reply in `out` and the stream offset its AOF
    /// records end at. `out` is sent only once the largest offset is durable; replies whose records never
    /// become durable are replaced by the error.
    aof_marks: Vec<(usize, usize, u64)>,
    /// `appendfsync always`: what every reply in `out` waits for (reads included): all records appended
    /// before their commands ran. Only the marked writes' replies become errors if it fails.
    aof_barrier: u64,
}

impl Conn {
    async fn run(&mut self, client: &mut Client) -> End {
        let server = self.server.clone();
        let mut parser = RequestParser::new(limits(&server, client.authenticated));
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        // When this client's pending output first went over the soft limit (None while under it).
        let mut over_soft_since: Option<std::time::Instant> = None;
        let mut settings = ConfigCache::new(&server, ConnSettings::read);
        loop {
            let conf = settings.get(&server, ConnSettings::read);
            // CONFIG SET proto-max-bulk-len applies to connections already open, as in Redis.
            let current = parser_limits(conf.max_bulk_len, client.authenticated);
            if parser.limits() != &current {
                parser.set_limits(current);
            }
            let obuf = conf.output;
            let query_limit = conf.query_buffer_limit;
            // Handle every complete command already buffered, then write all their replies at once.
            client.clock_budget = 0;
            client.clock_gap();
            loop {
                if client.shared.killed.load(Ordering::Acquire) {
                    return End::Drop;
                }
                let was_authenticated = client.authenticated;
                match parser.parse(&mut buf) {
                    Ok(Some(args)) => {
                        if args.is_empty() {
                            continue;
                        }
                        // CLIENT PAUSE: hold this command (earlier replies go out first) until the pause ends.
                        while let Some(end) = crate::shutdown::pause_until(&server, client, &args) {
                            if !self.flush(client).await {
                                return End::Drop;
                            }
                            let wait = end.saturating_duration_since(std::time::Instant::now());
                            monoio::time::sleep(wait.min(crate::shutdown::PAUSE_POLL)).await;
                            client.clock_budget = 0;
                        }
                        let mut close = false;
                        // Where this command's reply starts, and (always) what a served blocked client waits for.
                        let mut mark = self.out.len();
                        let mut served = 0;
                        match dispatch(&server, client, args) {
                            Next::Reply(r) => push_reply(&server, client, &r, &mut self.out),
                            Next::Close(r) => {
                                push_reply(&server, client, &r, &mut self.out);
                                close = true;
                            }
                            Next::Replies(rs) => rs.iter().for_each(|r| push_reply(&server, client, r, &mut self.out)),
                            Next::Block(b) => {
                                // Replies to earlier commands go out before the client waits.
                                if !self.flush(client).await {
                                    blocking::abandon(&server, client, &b);
                                    return End::Drop;
                                }
                                mark = 0;
                                let woke = self.wait_blocked(client, &mut buf, &b).await;
                                client.clock_budget = 0;
                                match woke {
                                    Some(r) => {
                                        served = crate::aof::read_barrier(&server);
                                        push_reply(&server, client, &r, &mut self.out);
                                    }
                                    None => return End::Drop,
                                }
                            }
                        }
                        if self.writer.is_none() && obuf.exceeded(self.out.len(), &mut over_soft_since) {
                            crate::warning!(
                                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                                client.id(),
                                client.shared.addr
                            );
                            return End::Drop;
                        }
                        let target = crate::aof::take_wait_target().max(served);
                        if target > 0 {
                            self.aof_marks.push((mark, self.out.len(), target));
                        }
                        self.aof_barrier = self.aof_barrier.max(crate::aof::read_barrier(&server));
                        for line in client.monitor_echo.drain(..) {
                            self.out.extend_from_slice(&line);
                        }
                        if !self.after_command(client).await {
                            return End::Drop;
                        }
                        if close {
                            return if self.flush(client).await { End::Flush } else { End::Drop };
                        }
                        if client.authenticated != was_authenticated {
                            parser.set_limits(limits(&server, client.authenticated));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let text = e.to_string();
                        crate::verbose!(
                            "Protocol error ({text}) from client: id={} addr={}",
                            client.id(),
                            client.shared.addr
                        );
                        push_reply(&server, client, &Reply::err(format!("ERR {text}")), &mut self.out);
                        return if self.flush(client).await { End::Flush } else { End::Drop };
                    }
                }
                if self.out.len() >= FLUSH_AT {
                    if !self.flush(client).await {
                        return End::Drop;
                    }
                    client.clock_budget = 0;
                }
            }
            if !self.flush(client).await {
                return End::Drop;
            }
            if query_buffer_too_big(query_limit, client, &buf) {
                return End::Drop;
            }
            // Read more, appending after what is buffered (the parser keeps offsets into it).
            let want = parser.wanted().clamp(READ_CHUNK, 1 << 20);
            if buf.capacity() - buf.len() < READ_CHUNK {
                buf.reserve(want);
            }
            let len = buf.len();
            let cap = buf.capacity();
            let (res, slice) = self.rd.read(buf.slice_mut(len..cap)).await;
            buf = slice.into_inner();
            match res {
                Ok(0) | Err(_) => return End::Drop,
                Ok(n) => Counters::add(&server.stats.net_input_bytes, n as u64),
            }
        }
    }

    /// Writes (inline) or queues (push mode) the pending replies, once the AOF records they depend on are
    /// durable (`appendfsync always`). False when the client is gone.
    async fn flush(&mut self, client: &Client) -> bool {
        client.clock_gap();
        if !self.aof_marks.is_empty() || self.aof_barrier > 0 {
            self.wait_durable(client).await;
        }
        if self.out.is_empty() {
            return true;
        }
        if self.writer.is_some() {
            let Some(ob) = client.outbox.as_ref() else { return false };
            return ob.push(Bytes::from(std::mem::take(&mut self.out))) == Pushed::Queued;
        }
        let Some(wr) = self.wr.as_mut() else { return false };
        let n = self.out.len() as u64;
        let (res, mut out) = wr.write_all(std::mem::take(&mut self.out)).await;
        if res.is_err() {
            return false;
        }
        Counters::add(&self.server.stats.net_output_bytes, n);
        out.clear();
        self.out = out;
        true
    }

    /// Group commit: waits (without blocking the thread) for the fsync covering every record the replies in
    /// `out` depend on; one wait per batch. A reply whose record never became durable becomes the error.
    async fn wait_durable(&mut self, client: &Client) {
        let server = self.server.clone();
        let target = self.aof_marks.iter().map(|m| m.2).fold(std::mem::take(&mut self.aof_barrier), u64::max);
        if server.aof.outcome_pending(target) {
            // Group commit on this thread: let the other ready connections run their batches first, so one
            // write(2) covers them all (as Redis writes once per event-loop turn).
            YieldOnce(false).await;
            server.aof.write_inline(target);
        }
        if server.aof.durable(target).await.is_err() && !self.aof_marks.is_empty() {
            self.out = replace_failed(&self.out, &self.aof_marks, client.proto, |t| server.aof.outcome(t));
        }
        self.aof_marks.clear();
    }

    /// After each command: a client that just got an outbox switches to push mode (what was answered so far
    /// is written inline first, then the writer task takes the socket); in push mode the command's reply is
    /// queued at once, behind anything the command itself queued.
    async fn after_command(&mut self, client: &Client) -> bool {
        let Some(ob) = client.outbox.clone() else { return true };
        if self.writer.is_some() {
            ob.set_proto(client.proto);
            return self.flush(client).await;
        }
        if !self.flush(client).await {
            return false;
        }
        let Some(wr) = self.wr.take() else { return false };
        self.writer = Some(monoio::spawn(outbox::write_loop(self.server.clone(), ob, wr)));
        true
    }

    /// Waits for a blocked command's reply, its deadline, or the peer going away (None), reading whatever
    /// the client sends meanwhile into `buf`.
    async fn wait_blocked(&mut self, client: &Client, buf: &mut BytesMut, b: &Blocked) -> Option<Reply> {
        client.clock_gap();
        let server = self.server.clone();
        let mut sleep = b.deadline.map(|d| Box::pin(monoio::time::sleep_until(d.into())));
        loop {
            if buf.capacity() - buf.len() < READ_CHUNK {
                buf.reserve(READ_CHUNK);
            }
            let (len, cap) = (buf.len(), buf.capacity());
            let canceller = Canceller::new();
            let read = self.rd.cancelable_read(std::mem::take(buf).slice_mut(len..cap), canceller.handle());
            let mut read = std::pin::pin!(read);
            let wake = poll_fn(|cx| {
                if let Poll::Ready(r) = b.waiter.poll_reply(cx) {
                    return Poll::Ready(Wake::Served(r));
                }
                if let Some(s) = sleep.as_mut() {
                    if s.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Wake::Timeout);
                    }
                }
                read.as_mut().poll(cx).map(|(res, slice)| Wake::Read(res, slice))
            })
            .await;
            let reply = match wake {
                Wake::Read(res, slice) => {
                    *buf = slice.into_inner();
                    match res {
                        Ok(n) if n > 0 => Counters::add(&server.stats.net_input_bytes, n as u64),
                        _ => {
                            blocking::abandon(&server, client, b);
                            return None;
                        }
                    }
                    let limit = server.config.read().client_query_buffer_limit as usize;
                    if query_buffer_too_big(limit, client, buf) {
                        blocking::abandon(&server, client, b);
                        return None;
                    }
                    continue;
                }
                Wake::Served(r) => {
                    blocking::finish(&server, client, &b.waiter);
                    r
                }
                Wake::Timeout => blocking::timed_out(&server, client, b),
            };
            // Stop the pending read and keep whatever it got.
            let _ = canceller.cancel();
            let (res, slice) = read.await;
            *buf = slice.into_inner();
            if let Ok(n) = res {
                Counters::add(&server.stats.net_input_bytes, n as u64);
            }
            return Some(reply);
        }
    }

    /// Ends a connection in push mode: the writer finishes (or drops) what is queued.
    async fn finish(mut self, client: &Client, end: End) {
        let (Some(mut writer), Some(ob)) = (self.writer.take(), client.outbox.as_ref()) else { return };
        match end {
            End::Flush => ob.close(),
            End::Drop => ob.abort(),
        }
        if monoio::time::timeout(CLOSE_GRACE, &mut writer).await.is_err() {
            ob.abort();
            // SAFETY: the writer task still owns the socket, so the descriptor is open and is this client's.
            unsafe {
                libc::shutdown(client.shared.fd, libc::SHUT_RDWR);
            }
            writer.await;
        }
    }
}

/// `out` with the reply of every write whose AOF record failed (`outcome(offset)` is `Err`) replaced by
/// the error. `marks`: (start, end, record end offset) of those replies in `out`, in order.
fn replace_failed(
    out: &[u8],
    marks: &[(usize, usize, u64)],
    proto: engine::resp::Protocol,
    outcome: impl Fn(u64) -> Result<(), String>,
) -> Vec<u8> {
    let mut patched = Vec::with_capacity(out.len());
    let mut pos = 0;
    for &(start, end, t) in marks {
        if let Err(msg) = outcome(t) {
            if pos <= start && start < end && end <= out.len() {
                patched.extend_from_slice(&out[pos..start]);
                encode(&Reply::err(msg), proto, &mut patched);
                pos = end;
            }
        }
    }
    patched.extend_from_slice(&out[pos..]);
    patched
}

/// `client-output-buffer-limit normal <hard> <soft> <soft-seconds>` (all 0, the default, means no limit).
///
/// Moon writes a batch's replies before reading more of a client's input, so a client that does not read
/// is held back rather than buffered; what the limits see is the output of the current batch not yet
/// written, as Redis sees its reply buffer: a hard limit closes the client as soon as that output passes
/// it (one large reply is enough, as in Redis); a soft limit closes it when output is added while it has
/// stayed over the limit for more than `soft-seconds`. Nothing more is sent to a closed client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct OutputLimit {
    hard: u64,
    soft: u64,
    soft_seconds: u64,
}

impl OutputLimit {
    /// The `normal` class of the CONFIG GET form (`normal 0 0 0 slave ... pubsub ...`).
    fn parse(value: &str) -> OutputLimit {
        let words: Vec<&str> = value.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "normal") else { return OutputLimit::default() };
        let num = |i: usize| words.get(at + i).and_then(|w| w.parse().ok()).unwrap_or(0);
        OutputLimit { hard: num(1), soft: num(2), soft_seconds: num(3) }
    }

    /// Whether a client with `pending` bytes of output must be closed; keeps the soft-limit clock.
    fn exceeded(&self, pending: usize, over_soft_since: &mut Option<std::time::Instant>) -> bool {
        let pending = pending as u64;
        if self.hard > 0 && pending > self.hard {
            return true;
        }
        if self.soft == 0 || pending <= self.soft {
            *over_soft_since = None;
            return false;
        }
        match over_soft_since {
            None => {
                *over_soft_since = Some(std::time::Instant::now());
                false
            }
            Some(since) => since.elapsed().as_secs() > self.soft_seconds,
        }
    }
}

fn query_buffer_too_big(limit: usize, client: &Client, buf: &BytesMut) -> bool {
    if buf.len() > limit {
        crate::warning!("Closing client that reached max query buffer length: id={}", client.id());
        return true;
    }
    false
}

fn push_reply(server: &Server, client: &mut Client, reply: &Reply, out: &mut Vec<u8>) {
    if reply.is_error() {
        Counters::add(&server.stats.total_error_replies, 1);
    }
    if client.reply_skip {
        client.reply_skip = false;
        return;
    }
    if client.reply_off {
        return;
    }
    encode(reply, client.proto, out);
}

/// A future that is pending once (after asking to be polled again), so other ready tasks of this thread run
/// first.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_limit_reads_the_normal_class_and_applies_hard_then_soft() {
        let l = OutputLimit::parse("normal 1048576 1000 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60");
        assert_eq!(l, OutputLimit { hard: 1048576, soft: 1000, soft_seconds: 0 });
        assert_eq!(OutputLimit::parse("normal 0 0 0 slave 1 2 3 pubsub 4 5 6"), OutputLimit::default());
        let mut since = None;
        assert!(l.exceeded(1048577, &mut since));
        assert!(!l.exceeded(1000, &mut since) && since.is_none());
        // Over the soft limit: the first time starts the clock, later output after more than 0 s closes.
        assert!(!l.exceeded(2000, &mut since) && since.is_some());
        since = since.map(|t| t - std::time::Duration::from_secs(2));
        assert!(l.exceeded(2000, &mut since));
        let none = OutputLimit::default();
        assert!(!none.exceeded(usize::MAX, &mut None));
    }

    #[test]
    fn failed_writes_get_the_error_instead_of_their_reply() {
        let out = b"+OK\r\n$1\r\nx\r\n:5\r\n+OK\r\n".to_vec();
        // SET (record ends at 10), GET (no record), INCR (20), SET (30, its reply suppressed: empty range).
        let marks = [(0, 5, 10), (12, 16, 20), (21, 21, 30)];
        let outcome =
            |t: u64| if t >= 20 { Err("MISCONF Errors writing to the AOF file: EIO".to_string()) } else { Ok(()) };
        let patched = replace_failed(&out, &marks, engine::resp::Protocol::Resp2, outcome);
        assert_eq!(patched, b"+OK\r\n$1\r\nx\r\n-MISCONF Errors writing to the AOF file: EIO\r\n+OK\r\n");
        assert_eq!(replace_failed(&out, &marks, engine::resp::Protocol::Resp2, |_| Ok(())), out);
    }
}
