//! The output path other threads can push into: a connection that subscribes to channels or becomes a MONITOR
//! gets an [`Outbox`] and a writer task that drains it. Publishers on any shard thread append already-encoded
//! bytes and wake the writer (monoio's `sync` feature makes cross-thread wake-ups work); the connection's own
//! replies go through the same queue from then on, so everything reaches the socket in the order it was queued.
//!
//! Memory is bounded as Redis bounds pub/sub clients (`client-output-buffer-limit pubsub 32mb 8mb 60`): a
//! client whose queue exceeds the hard limit, or stays above the soft limit for the soft period, is closed.

use crate::client::Shared;
use crate::server::{Counters, Server};
use bytes::Bytes;
use engine::resp::Protocol;
use monoio::io::AsyncWriteRentExt;
use monoio::net::tcp::TcpOwnedWriteHalf;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Redis's default `client-output-buffer-limit pubsub 32mb 8mb 60`.
pub const HARD_LIMIT: usize = 32 * 1024 * 1024;
pub const SOFT_LIMIT: usize = 8 * 1024 * 1024;
pub const SOFT_SECONDS: Duration = Duration::from_secs(60);

/// A connection's queue of encoded output, shared with every thread that may push to it.
pub struct Outbox {
    pub shared: Arc<Shared>,
    resp3: AtomicBool,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    chunks: VecDeque<Bytes>,
    /// Bytes queued or being written (what the limits apply to).
    pending: usize,
    waker: Option<Waker>,
    /// No more output is accepted; the writer ends once the queue is empty.
    closed: bool,
    /// When `pending` first went over the soft limit (None while under it).
    over_soft_since: Option<Instant>,
}

/// What [`Outbox::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The outbox is closed; nothing was queued.
    Closed,
    /// The limit was crossed: the queue was dropped and the client is being closed.
    Overflow,
}

impl Outbox {
    pub fn new(shared: Arc<Shared>, proto: Protocol) -> Arc<Outbox> {
        Arc::new(Outbox {
            shared,
            resp3: AtomicBool::new(proto == Protocol::Resp3),
            queue: Mutex::new(Queue::default()),
        })
    }

    /// The protocol messages pushed to this client must be encoded in.
    pub fn proto(&self) -> Protocol {
        if self.resp3.load(Ordering::Relaxed) {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        }
    }

    pub fn set_proto(&self, proto: Protocol) {
        self.resp3.store(proto == Protocol::Resp3, Ordering::Relaxed);
    }

    /// Queues encoded output and wakes the writer. Enforces the output buffer limits.
    pub fn push(&self, bytes: Bytes) -> Pushed {
        self.push_at(bytes, Instant::now())
    }

    fn push_at(&self, bytes: Bytes, now: Instant) -> Pushed {
        if bytes.is_empty() {
            return Pushed::Queued;
        }
        let mut q = self.queue.lock();
        if q.closed {
            return Pushed::Closed;
        }
        q.pending += bytes.len();
        let over_soft = match q.over_soft_since {
            Some(since) if q.pending > SOFT_LIMIT => now.duration_since(since) >= SOFT_SECONDS,
            Some(_) => {
                q.over_soft_since = None;
                false
            }
            None => {
                if q.pending > SOFT_LIMIT {
                    q.over_soft_since = Some(now);
                }
                false
            }
        };
        if q.pending > HARD_LIMIT || over_soft {
            let pending = q.pending;
            q.closed = true;
            q.chunks.clear();
            let waker = q.waker.take();
            drop(q);
            crate::warning!(
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits ({} bytes pending).",
                self.shared.id,
                self.shared.addr,
                pending
            );
            self.shared.kill();
            if let Some(w) = waker {
                w.wake();
            }
            return Pushed::Overflow;
        }
        q.chunks.push_back(bytes);
        let waker = q.waker.take();
        drop(q);
        if let Some(w) = waker {
            w.wake();
        }
        Pushed::Queued
    }

    /// Accepts no more output; the writer finishes what is queued and ends.
    pub fn close(&self) {
        let waker = {
            let mut q = self.queue.lock();
            q.closed = true;
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Drops whatever is queued and ends the writer (the peer is gone).
    pub fn abort(&self) {
        let waker = {
            let mut q = self.queue.lock();
            q.closed = true;
            q.chunks.clear();
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Bytes queued or being written.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.queue.lock().pending
    }

    /// Moves everything queued into `buf`. Ready(true) with data, Ready(false) once closed and drained.
    fn poll_take(&self, cx: &mut Context<'_>, buf: &mut Vec<u8>) -> Poll<bool> {
        let mut q = self.queue.lock();
        if !q.chunks.is_empty() {
            for c in q.chunks.drain(..) {
                buf.extend_from_slice(&c);
            }
            return Poll::Ready(true);
        }
        if q.closed {
            return Poll::Ready(false);
        }
        if !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            q.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Everything queued, as the writer would take it.
    #[cfg(test)]
    pub fn take_all(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut cx = Context::from_waker(Waker::noop());
        let _ = self.poll_take(&mut cx, &mut buf);
        self.written(buf.len());
        buf
    }

    fn written(&self, n: usize) {
        let mut q = self.queue.lock();
        q.pending = q.pending.saturating_sub(n);
        if q.pending <= SOFT_LIMIT {
            q.over_soft_since = None;
        }
    }
}

/// The writer task of a connection in push mode: writes whatever is queued, in order, until the outbox is
/// closed and drained or the socket fails.
pub async fn write_loop(server: Arc<Server>, outbox: Arc<Outbox>, mut w: TcpOwnedWriteHalf) {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        let more = poll_fn(|cx| outbox.poll_take(cx, &mut buf)).await;
        if !more {
            return;
        }
        let n = buf.len();
        let (res, b) = w.write_all(buf).await;
        buf = b;
        if res.is_err() {
            outbox.abort();
            outbox.shared.kill();
            return;
        }
        Counters::add(&server.stats.net_output_bytes, n as u64);
        outbox.written(n);
        buf.clear();
        if buf.capacity() > 1 << 20 {
            buf = Vec::with_capacity(16 * 1024);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Shared> {
        Shared::for_test(1)
    }

    #[test]
    fn keeps_order_and_counts_bytes() {
        let o = Outbox::new(shared(), Protocol::Resp2);
        assert_eq!(o.push(Bytes::from_static(b"+a\r\n")), Pushed::Queued);
        assert_eq!(o.push(Bytes::from_static(b"+b\r\n")), Pushed::Queued);
        assert_eq!(o.pending(), 8);
        assert_eq!(o.take_all(), b"+a\r\n+b\r\n");
        assert_eq!(o.pending(), 0);
        o.close();
        assert_eq!(o.push(Bytes::from_static(b"+c\r\n")), Pushed::Closed);
    }

    #[test]
    fn hard_limit_kills() {
        let o = Outbox::new(shared(), Protocol::Resp2);
        let mb = Bytes::from(vec![b'x'; 1024 * 1024]);
        for _ in 0..32 {
            assert_eq!(o.push(mb.clone()), Pushed::Queued);
        }
        assert_eq!(o.push(Bytes::from_static(b"x")), Pushed::Overflow);
        assert!(o.shared.killed.load(Ordering::Relaxed));
        assert_eq!(o.push(Bytes::from_static(b"x")), Pushed::Closed);
    }

    #[test]
    fn soft_limit_needs_time() {
        let o = Outbox::new(shared(), Protocol::Resp2);
        let t0 = Instant::now();
        let big = Bytes::from(vec![b'x'; SOFT_LIMIT + 1]);
        assert_eq!(o.push_at(big, t0), Pushed::Queued);
        assert_eq!(o.push_at(Bytes::from_static(b"x"), t0 + Duration::from_secs(30)), Pushed::Queued);
        assert_eq!(o.push_at(Bytes::from_static(b"x"), t0 + SOFT_SECONDS), Pushed::Overflow);
    }
}
