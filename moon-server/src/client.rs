//! Per-connection state and the registry of connected clients (CLIENT LIST / KILL, maxclients, timeout).

use bytes::Bytes;
use engine::resp::Protocol;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// What other threads may read or change about a client (CLIENT LIST, CLIENT KILL, idle timeout).
pub struct Shared {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub fd: RawFd,
    /// Unix ms of creation and of the last command.
    pub created_ms: i64,
    pub last_cmd_ms: AtomicI64,
    pub name: Mutex<Option<Bytes>>,
    pub db: AtomicU64,
    pub last_cmd: Mutex<&'static str>,
    /// Set by CLIENT KILL; the connection closes at its next step.
    pub killed: AtomicBool,
    /// Pub/sub channel and pattern counts (for CLIENT LIST).
    pub subs: AtomicU64,
    pub psubs: AtomicU64,
    pub flags: Mutex<String>,
}

impl Shared {
    /// A client with no socket, for in-process tests.
    #[cfg(test)]
    pub fn for_test(id: u64) -> Arc<Shared> {
        Arc::new(Shared {
            id,
            addr: "127.0.0.1:1".parse().unwrap(),
            laddr: "127.0.0.1:2".parse().unwrap(),
            fd: -1,
            created_ms: 0,
            last_cmd_ms: AtomicI64::new(0),
            name: Mutex::new(None),
            db: AtomicU64::new(0),
            last_cmd: Mutex::new(""),
            killed: AtomicBool::new(false),
            subs: AtomicU64::new(0),
            psubs: AtomicU64::new(0),
            flags: Mutex::new("N".into()),
        })
    }

    /// Closes the socket from any thread: a read pending on it returns at once.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        // SAFETY: shutdown(2) on a descriptor we registered; if it was already closed the call fails harmlessly
        // (descriptors are only reused after the connection unregisters itself).
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }
}

/// How many pipelined commands may share one reading of the wall clock.
pub const CLOCK_EVERY: u32 = 64;

/// Connection-local state.
pub struct Client {
    pub shared: Arc<Shared>,
    /// The current command's "now" (unix ms). Reading the wall clock costs ~30 ns here, a tenth of a
    /// pipelined SET, so it is read once per [`CLOCK_EVERY`] commands of a batch (see [`Client::tick_clock`]).
    pub now_ms: i64,
    /// Commands left before `now_ms` is read again; 0 = read it for the next command.
    pub clock_budget: u32,
    pub db: usize,
    pub proto: Protocol,
    pub authenticated: bool,
    /// Commands queued after MULTI; `None` outside a transaction.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A queued command was refused (EXECABORT at EXEC).
    pub multi_failed: bool,
    /// WATCHed keys and the flag any toucher sets.
    pub watched: Vec<(usize, Bytes)>,
    pub watch_dirty: Arc<AtomicBool>,
    /// CLIENT REPLY OFF/SKIP.
    pub reply_off: bool,
    pub reply_skip: bool,
    /// The output queue other threads push into (pub/sub messages, MONITOR lines); created by the first
    /// SUBSCRIBE / PSUBSCRIBE / MONITOR, after which every reply goes through it (see `outbox`).
    pub outbox: Option<Arc<crate::outbox::Outbox>>,
    /// Channels and patterns this client is subscribed to.
    pub subscriptions: crate::pubsub::Subscriptions,
    /// In MONITOR mode.
    pub monitor: bool,
    /// MONITOR lines for this client's own commands, written after the command's reply (as Redis orders them).
    pub monitor_echo: Vec<Bytes>,
    /// Keys written by the last command that have blocked clients waiting (served after the command).
    pub ready_keys: Vec<(usize, Bytes)>,
    /// When the previous command of the current batch ended: the next command's start, so a command costs
    /// one clock reading instead of two. Cleared whenever the connection waits (see [`Client::clock_gap`]).
    pub chain: std::cell::Cell<Option<std::time::Instant>>,
    /// The table entry of the last command: a pipeline repeating a command skips the name lookup.
    pub last_spec: engine::cmd::LastLookup,
    /// What `shared.last_cmd` holds (only this connection writes it): a repeated command skips its lock.
    pub last_cmd: &'static str,
    /// The engine's settings as of the last command (no lock per command).
    pub engine_cfg: crate::stats::ConfigCache<engine::config::EngineConfig>,
}

impl Client {
    pub fn new(shared: Arc<Shared>, authenticated: bool) -> Self {
        Client {
            shared,
            now_ms: 0,
            clock_budget: 0,
            db: 0,
            proto: Protocol::Resp2,
            authenticated,
            multi: None,
            multi_failed: false,
            watched: Vec::new(),
            watch_dirty: Arc::new(AtomicBool::new(false)),
            reply_off: false,
            reply_skip: false,
            outbox: None,
            subscriptions: Default::default(),
            monitor: false,
            monitor_echo: Vec::new(),
            ready_keys: Vec::new(),
            chain: std::cell::Cell::new(None),
            last_spec: engine::cmd::LastLookup::default(),
            last_cmd: "",
            engine_cfg: crate::stats::ConfigCache::stale(Default::default()),
        }
    }

    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The connection is about to wait (write, read, block): the next command's duration must not start at
    /// the end of the previous one.
    pub fn clock_gap(&self) {
        self.chain.set(None);
    }

    /// Advances the command clock: reads the wall clock when the budget is spent. The connection resets
    /// the budget whenever it waits (reads, writes, blocks), so `now_ms` is never older than the batch of
    /// commands that arrived together, and at most [`CLOCK_EVERY`] commands old.
    pub fn tick_clock(&mut self) {
        if self.clock_budget == 0 {
            self.now_ms = crate::server::unix_ms();
            self.clock_budget = CLOCK_EVERY;
        }
        self.clock_budget -= 1;
    }
}

/// Every connected client, by id.
#[derive(Default)]
pub struct Registry {
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<Shared>>>,
}

impl Registry {
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn add(&self, c: Arc<Shared>) {
        self.clients.lock().insert(c.id, c);
    }

    pub fn remove(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn snapshot(&self) -> Vec<Arc<Shared>> {
        self.clients.lock().values().cloned().collect()
    }
}
