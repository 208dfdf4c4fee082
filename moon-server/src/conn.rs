//! One client connection: read, parse (pipelined commands are handled in one pass), dispatch, and write
//! the replies of a whole batch with one write. Bad protocol input closes this connection only.

use crate::client::{Client, Shared};
use crate::dispatch::{dispatch, Next};
use crate::server::{unix_ms, Counters, Server};
use bytes::BytesMut;
use engine::resp::{encode, ParserLimits, Reply, RequestParser};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Replies are flushed once this much is pending, even in the middle of a pipeline.
const FLUSH_AT: usize = 64 * 1024;
const READ_CHUNK: usize = 16 * 1024;

const PROTECTED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

fn limits(server: &Server, authenticated: bool) -> ParserLimits {
    let cfg = server.config.read();
    ParserLimits {
        max_bulk_len: cfg.proto_max_bulk_len as usize,
        require_auth: !authenticated,
        ..ParserLimits::default()
    }
}

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
        last_cmd: Mutex::new("NULL".into()),
        killed: AtomicBool::new(false),
        subs: AtomicU64::new(0),
        psubs: AtomicU64::new(0),
        flags: Mutex::new("N".into()),
    });
    server.clients.add(shared.clone());
    let mut client = Client::new(shared.clone(), !needs_auth);
    run(&server, &mut client, &mut stream).await;
    crate::dispatch::unwatch(&server, &mut client);
    server.clients.remove(shared.id);
}

async fn run(server: &Server, client: &mut Client, stream: &mut TcpStream) {
    let mut parser = RequestParser::new(limits(server, client.authenticated));
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    loop {
        // Handle every complete command already buffered, then write all their replies at once.
        let mut close = false;
        loop {
            if client.shared.killed.load(Ordering::Acquire) {
                return;
            }
            let was_authenticated = client.authenticated;
            match parser.parse(&mut buf) {
                Ok(Some(args)) => {
                    if args.is_empty() {
                        continue;
                    }
                    let next = dispatch(server, client, args);
                    let (reply, stop) = match next {
                        Next::Reply(r) => (r, false),
                        Next::Close(r) => (r, true),
                    };
                    push_reply(server, client, &reply, &mut out);
                    if stop {
                        close = true;
                        break;
                    }
                    if client.authenticated != was_authenticated {
                        parser.set_limits(limits(server, client.authenticated));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let text = e.to_string();
                    crate::verbose!("Protocol error ({text}) from client: id={} addr={}", client.id(), client.shared.addr);
                    push_reply(server, client, &Reply::err(format!("ERR {text}")), &mut out);
                    close = true;
                    break;
                }
            }
            if out.len() >= FLUSH_AT {
                match flush(server, stream, out).await {
                    Some(o) => out = o,
                    None => return,
                }
            }
        }
        if !out.is_empty() {
            match flush(server, stream, out).await {
                Some(o) => out = o,
                None => return,
            }
        }
        if close {
            return;
        }
        let limit = server.config.read().client_query_buffer_limit as usize;
        if buf.len() > limit {
            crate::warning!("Closing client that reached max query buffer length: id={}", client.id());
            return;
        }
        // Read more, appending after what is buffered (the parser keeps offsets into it).
        let want = parser.wanted().clamp(READ_CHUNK, 1 << 20);
        if buf.capacity() - buf.len() < READ_CHUNK {
            buf.reserve(want);
        }
        let len = buf.len();
        let cap = buf.capacity();
        let (res, slice) = stream.read(buf.slice_mut(len..cap)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) | Err(_) => return,
            Ok(n) => Counters::add(&server.stats.net_input_bytes, n as u64),
        }
    }
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

/// Writes `out` fully; returns the emptied buffer, or None when the peer is gone.
async fn flush(server: &Server, stream: &mut TcpStream, out: Vec<u8>) -> Option<Vec<u8>> {
    let n = out.len() as u64;
    let (res, mut out) = stream.write_all(out).await;
    res.ok()?;
    Counters::add(&server.stats.net_output_bytes, n);
    out.clear();
    Some(out)
}
