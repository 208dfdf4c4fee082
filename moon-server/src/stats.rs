//! Per-command accounting: `INFO commandstats`, `errorstats`, `latencystats`, the instantaneous rates of
//! `INFO stats`, and the feed of SLOWLOG and the latency monitor. [`record`] runs after every command, so
//! the hot path is a few relaxed atomic adds on the command's own cache line: no lock unless the command
//! failed with a new kind of error or was slow enough for the slow log or the latency monitor.
//!
//! Counting follows Redis 7.0: `calls`/`usec` per (sub)command that ran; `failed_calls` when it replied with
//! an error; `rejected_calls` when it was refused before running (arity, NOAUTH: see [`rejected`]); an
//! unknown subcommand counts for no command. `errorstat_<CODE>` counts every error reply by its first word.

use crate::client::Client;
use crate::config::Config;
use crate::dispatch::Next;
use crate::latency::{self, Histogram};
use crate::server::{Counters, Server};
use crate::slowlog::SlowLog;
use bytes::Bytes;
use engine::cmd::spec::flags;
use engine::cmd::CommandSpec;
use engine::resp::Reply;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Redis 7.0's container commands and their subcommands: their stats are kept per subcommand
/// (`cmdstat_config|get`). Containers Moon does not have are skipped when the table is built.
const CONTAINERS: &[(&str, &[&str])] = &[
    (
        "client",
        &[
            "caching",
            "getname",
            "getredir",
            "help",
            "id",
            "info",
            "kill",
            "list",
            "no-evict",
            "pause",
            "reply",
            "setname",
            "tracking",
            "trackinginfo",
            "unblock",
            "unpause",
        ],
    ),
    ("command", &["count", "docs", "getkeys", "getkeysandflags", "help", "info", "list"]),
    ("config", &["get", "help", "resetstat", "rewrite", "set"]),
    ("latency", &["doctor", "graph", "help", "histogram", "history", "latest", "reset"]),
    ("memory", &["doctor", "help", "malloc-stats", "purge", "stats", "usage"]),
    ("object", &["encoding", "freq", "help", "idletime", "refcount"]),
    ("pubsub", &["channels", "help", "numpat", "numsub", "shardchannels", "shardnumsub"]),
    ("slowlog", &["get", "help", "len", "reset"]),
    ("xinfo", &["consumers", "groups", "help", "stream"]),
    ("script", &["debug", "exists", "flush", "help", "kill", "load"]),
    ("function", &["delete", "dump", "flush", "help", "kill", "list", "load", "restore", "stats"]),
];

/// Error kinds tracked by `INFO errorstats` (Redis's limit); later new kinds are not counted.
const MAX_ERROR_KINDS: usize = 128;
/// Rate samples averaged by `instantaneous_*` (Redis's `STATS_METRIC_SAMPLES`), one per 100 ms.
const RATE_SAMPLES: usize = 16;
const RATE_PERIOD: Duration = Duration::from_millis(100);

/// Hashes a spec's address: the table's keys are distinct static pointers.
#[derive(Default)]
struct PtrHasher(u64);

impl Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, v: usize) {
        self.0 = (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

struct SpecSlot {
    index: usize,
    /// (subcommand, slot) for containers.
    subs: Vec<(&'static str, usize)>,
}

/// The stats slots: one per command and one per subcommand of a container, built once from the engine's
/// command table.
pub struct Table {
    names: Vec<String>,
    by_spec: HashMap<usize, SpecSlot, BuildHasherDefault<PtrHasher>>,
    by_name: HashMap<String, usize>,
    /// Slots of each container's subcommands, by the container's slot.
    children: HashMap<usize, Vec<usize>>,
}

/// The process-wide stats table (the command table is static, so this is too).
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(Table::build)
}

impl Table {
    fn build() -> Table {
        let mut t =
            Table { names: Vec::new(), by_spec: HashMap::default(), by_name: HashMap::new(), children: HashMap::new() };
        let mut specs: Vec<&'static CommandSpec> = engine::cmd::spec::all().collect();
        specs.sort_by_key(|s| s.name);
        for spec in specs {
            let index = t.names.len();
            t.names.push(spec.name.to_string());
            t.by_name.insert(spec.name.to_string(), index);
            let mut subs = Vec::new();
            if let Some((_, names)) = CONTAINERS.iter().find(|(c, _)| *c == spec.name) {
                for sub in names.iter() {
                    let i = t.names.len();
                    let full = format!("{}|{sub}", spec.name);
                    t.names.push(full.clone());
                    t.by_name.insert(full, i);
                    subs.push((*sub, i));
                }
                t.children.insert(index, subs.iter().map(|s| s.1).collect());
            }
            t.by_spec.insert(spec as *const CommandSpec as usize, SpecSlot { index, subs });
        }
        t
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// `get`, `config|get`.
    pub fn name(&self, slot: usize) -> &str {
        &self.names[slot]
    }

    /// The slot `args` count against; `None` for an unknown subcommand of a container.
    pub fn slot(&self, spec: &CommandSpec, args: &[Bytes]) -> Option<usize> {
        let s = self.by_spec.get(&(spec as *const CommandSpec as usize))?;
        if s.subs.is_empty() {
            return Some(s.index);
        }
        let sub = args.get(1)?;
        s.subs.iter().find(|(name, _)| sub.eq_ignore_ascii_case(name.as_bytes())).map(|x| x.1)
    }

    /// Slots named by `name` (`LATENCY HISTOGRAM` arguments): a command with all its subcommands, or one
    /// `container|sub`.
    pub fn matching(&self, name: &[u8]) -> Vec<usize> {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        let Some(&i) = self.by_name.get(&lower) else { return Vec::new() };
        let mut v = vec![i];
        if let Some(children) = self.children.get(&i) {
            v.extend(children);
        }
        v
    }
}

/// One slot's counters, alone on its cache line so that threads running different commands never share one.
#[repr(align(64))]
#[derive(Default)]
struct CmdStat {
    calls: AtomicU64,
    usec: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    /// Allocated on the first call (24 KiB), as Redis does.
    hist: OnceLock<Histogram>,
}

/// Rates sampled every 100 ms by [`cron`].
struct Rates {
    last: Instant,
    last_values: [u64; 3],
    samples: [[u64; RATE_SAMPLES]; 3],
    next: usize,
}

impl Rates {
    fn new(values: [u64; 3]) -> Rates {
        Rates { last: Instant::now(), last_values: values, samples: [[0; RATE_SAMPLES]; 3], next: 0 }
    }
}

/// Everything the observability commands keep; one per server.
pub struct Observability {
    cmds: Box<[CmdStat]>,
    errors: RwLock<Vec<(String, AtomicU64)>>,
    rates: Mutex<Rates>,
    pub slowlog: SlowLog,
    pub latency: latency::Monitor,
    /// Cached from the configuration by [`config_changed`], so the hot path reads no lock.
    pub slowlog_threshold_us: AtomicI64,
    pub slowlog_max_len: AtomicU64,
    pub latency_threshold_ms: AtomicU64,
    /// Largest `used_memory` seen (`used_memory_peak`).
    pub peak_memory: AtomicU64,
    /// Changes (with a value no other server in the process uses) whenever the configuration may have
    /// changed: per-connection copies of settings ([`ConfigCache`]) are refreshed when it moves.
    config_gen: AtomicU64,
}

/// Source of [`Observability::config_gen`] values, unique in the process (tests run several servers).
static CONFIG_GEN: AtomicU64 = AtomicU64::new(0);

fn next_config_gen() -> u64 {
    CONFIG_GEN.fetch_add(1, Ordering::Relaxed) + 1
}

impl Observability {
    pub fn new(cfg: &Config) -> Self {
        let cmds = (0..table().len()).map(|_| CmdStat::default()).collect();
        Observability {
            cmds,
            errors: RwLock::new(Vec::new()),
            rates: Mutex::new(Rates::new([0; 3])),
            slowlog: SlowLog::default(),
            latency: latency::Monitor::default(),
            slowlog_threshold_us: AtomicI64::new(cfg.slowlog_log_slower_than),
            slowlog_max_len: AtomicU64::new(cfg.slowlog_max_len),
            latency_threshold_ms: AtomicU64::new(cfg.latency_monitor_threshold),
            peak_memory: AtomicU64::new(0),
            config_gen: AtomicU64::new(next_config_gen()),
        }
    }

    /// The current configuration generation (see [`ConfigCache`]).
    pub fn config_gen(&self) -> u64 {
        self.config_gen.load(Ordering::Acquire)
    }

    pub fn calls(&self, slot: usize) -> u64 {
        self.cmds[slot].calls.load(Ordering::Relaxed)
    }

    pub fn histogram(&self, slot: usize) -> Option<&Histogram> {
        self.cmds[slot].hist.get()
    }

    /// Counts one error reply under its code: the first word when it ends within 32 bytes, else `ERR`.
    pub fn count_error(&self, text: &str) {
        let code = error_code(text);
        {
            let errors = self.errors.read();
            if let Some((_, n)) = errors.iter().find(|(c, _)| c == code) {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut errors = self.errors.write();
        if let Some((_, n)) = errors.iter().find(|(c, _)| c == code) {
            n.fetch_add(1, Ordering::Relaxed);
        } else if errors.len() < MAX_ERROR_KINDS {
            let at = errors.partition_point(|(c, _)| c.as_str() < code);
            errors.insert(at, (code.to_string(), AtomicU64::new(1)));
        }
    }

    /// Updates the notion of peak memory with a fresh `used_memory` and returns the peak.
    pub fn note_memory(&self, used: u64) -> u64 {
        self.peak_memory.fetch_max(used, Ordering::Relaxed).max(used)
    }

    fn record_call(&self, slot: usize, us: u64, failed: bool) {
        let c = &self.cmds[slot];
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.usec.fetch_add(us, Ordering::Relaxed);
        if failed {
            c.failed.fetch_add(1, Ordering::Relaxed);
        }
        // Redis records whole microseconds, in nanoseconds.
        c.hist.get_or_init(Histogram::new).record(us * 1000);
    }
}

/// `ERR` for "ERR syntax error", `WRONGTYPE` for "WRONGTYPE Operation...".
pub fn error_code(text: &str) -> &str {
    let head = &text.as_bytes()[..text.len().min(31)];
    match head.iter().position(|&b| b == b' ') {
        Some(n) if n > 0 => &text[..n],
        _ => "ERR",
    }
}

fn is_arity_error(text: &str) -> bool {
    text.starts_with("ERR wrong number of arguments for '")
}

/// Called once per executed command (not for queued MULTI commands, which are counted at EXEC).
pub fn record(server: &Server, client: &Client, spec: &CommandSpec, args: &[Bytes], took: Duration, next: &Next) {
    let reply = next.reply();
    let obs = &server.obs;
    if spec.name == "exec" {
        // The transaction's own replies are inside EXEC's array: count their errors here.
        if let Reply::Array(items) = reply {
            items.iter().filter_map(error_text).for_each(|e| obs.count_error(e));
        }
    }
    let error = error_text(reply);
    if let Some(e) = error {
        obs.count_error(e);
    }
    let Some(slot) = table().slot(spec, args) else {
        return; // Unknown subcommand: Redis refuses it before any command runs.
    };
    if error.is_some_and(is_arity_error) {
        obs.cmds[slot].rejected.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let us = took.as_micros() as u64;
    obs.record_call(slot, us, error.is_some());
    after_call(server, client, spec, args, us);
}

/// For the commands of a transaction, run inside EXEC (EXEC itself goes through [`record`], which counts
/// the errors of these replies in `errorstats`): calls, failures, latency, slow log.
pub fn record_in_exec(
    server: &Server,
    client: &Client,
    spec: &CommandSpec,
    args: &[Bytes],
    took: Duration,
    reply: &Reply,
) {
    let Some(slot) = table().slot(spec, args) else { return };
    let us = took.as_micros() as u64;
    server.obs.record_call(slot, us, reply.is_error());
    after_call(server, client, spec, args, us);
}

/// For a command refused before it ran (unknown command, wrong arity, NOAUTH, refused in MULTI): counts
/// the error and, when the command is known, its `rejected_calls`.
pub fn rejected(server: &Server, spec: Option<&CommandSpec>, args: &[Bytes], reply: &Reply) {
    if let Some(e) = error_text(reply) {
        server.obs.count_error(e);
    }
    if let Some(slot) = spec.and_then(|s| table().slot(s, args)) {
        server.obs.cmds[slot].rejected.fetch_add(1, Ordering::Relaxed);
    }
}

fn error_text(r: &Reply) -> Option<&str> {
    match r {
        Reply::Error(e) => Some(e),
        _ => None,
    }
}

/// Slow log and latency monitor.
fn after_call(server: &Server, client: &Client, spec: &CommandSpec, args: &[Bytes], us: u64) {
    let obs = &server.obs;
    if !spec.has(flags::SKIP_SLOWLOG) {
        obs.slowlog.push_if_needed(obs, client, spec, args, us);
    }
    let event = if spec.has(flags::FAST) { "fast-command" } else { "command" };
    obs.latency.add_if_needed(server, event, us / 1000);
}

/// CONFIG RESETSTAT: commandstats, errorstats, latencystats, rates and peak memory.
pub fn reset(server: &Server) {
    let obs = &server.obs;
    for c in obs.cmds.iter() {
        for a in [&c.calls, &c.usec, &c.rejected, &c.failed] {
            a.store(0, Ordering::Relaxed);
        }
        if let Some(h) = c.hist.get() {
            h.reset();
        }
    }
    obs.errors.write().clear();
    *obs.rates.lock() = Rates::new(rate_inputs(server));
    obs.peak_memory.store(0, Ordering::Relaxed);
}

/// Refreshes the cached settings after CONFIG SET (or a configuration reload).
pub fn config_changed(server: &Server) {
    let cfg = server.config.read();
    let obs = &server.obs;
    obs.slowlog_threshold_us.store(cfg.slowlog_log_slower_than, Ordering::Relaxed);
    obs.slowlog_max_len.store(cfg.slowlog_max_len, Ordering::Relaxed);
    obs.latency_threshold_ms.store(cfg.latency_monitor_threshold, Ordering::Relaxed);
    // After the new values are in place (`server.engine_cfg` included): a reader that sees the new generation
    // reads them.
    obs.config_gen.store(next_config_gen(), Ordering::Release);
}

/// A connection's copy of settings derived from the configuration, refreshed only when the configuration
/// generation moves: the per-command and per-read paths then take no lock and parse nothing.
pub struct ConfigCache<T> {
    gen: u64,
    value: T,
}

impl<T> ConfigCache<T> {
    /// Builds the value now.
    pub fn new(server: &Server, make: impl FnOnce(&Server) -> T) -> Self {
        let gen = server.obs.config_gen();
        ConfigCache { gen, value: make(server) }
    }

    /// A placeholder rebuilt on first use (generations start at 1).
    pub fn stale(value: T) -> Self {
        ConfigCache { gen: 0, value }
    }

    /// The value, rebuilt first if the configuration changed since it was built.
    #[inline]
    pub fn get(&mut self, server: &Server, make: impl FnOnce(&Server) -> T) -> &T {
        let gen = server.obs.config_gen();
        if gen != self.gen {
            self.value = make(server);
            self.gen = gen;
        }
        &self.value
    }
}

fn rate_inputs(server: &Server) -> [u64; 3] {
    let st = &server.stats;
    [
        Counters::get(&st.total_commands_processed),
        Counters::get(&st.net_input_bytes),
        Counters::get(&st.net_output_bytes),
    ]
}

/// Periodic work (one thread calls it at `hz`): takes a rate sample when 100 ms have passed.
pub fn cron(server: &Server) {
    let Some(mut rates) = server.obs.rates.try_lock() else { return };
    let elapsed = rates.last.elapsed();
    if elapsed < RATE_PERIOD {
        return;
    }
    let now = rate_inputs(server);
    let ms = (elapsed.as_millis() as u64).max(1);
    let slot = rates.next;
    for (i, &value) in now.iter().enumerate() {
        rates.samples[i][slot] = value.saturating_sub(rates.last_values[i]) * 1000 / ms;
    }
    rates.next = (slot + 1) % RATE_SAMPLES;
    rates.last_values = now;
    rates.last = Instant::now();
}

/// (instantaneous_ops_per_sec, input bytes/s, output bytes/s): the mean of the last 16 samples.
pub fn instantaneous(server: &Server) -> (u64, u64, u64) {
    let rates = server.obs.rates.lock();
    let avg = |i: usize| rates.samples[i].iter().sum::<u64>() / RATE_SAMPLES as u64;
    (avg(0), avg(1), avg(2))
}

/// Percentiles `INFO latencystats` shows (Redis's default `latency-tracking-info-percentiles`).
const INFO_PERCENTILES: [f64; 3] = [50.0, 99.0, 99.9];

/// The `# Commandstats` section body.
pub fn commandstats(server: &Server, out: &mut String) {
    let t = table();
    for (i, c) in server.obs.cmds.iter().enumerate() {
        let calls = c.calls.load(Ordering::Relaxed);
        let rejected = c.rejected.load(Ordering::Relaxed);
        let failed = c.failed.load(Ordering::Relaxed);
        if calls == 0 && rejected == 0 && failed == 0 {
            continue;
        }
        let usec = c.usec.load(Ordering::Relaxed);
        let per = if calls == 0 { 0.0 } else { usec as f64 / calls as f64 };
        let _ = write!(
            out,
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
            t.name(i)
        );
    }
}

/// The `# Errorstats` section body, by error code in byte order (as Redis's radix tree gives them).
pub fn errorstats(server: &Server, out: &mut String) {
    for (code, n) in server.obs.errors.read().iter() {
        let _ = write!(out, "errorstat_{code}:count={}\r\n", n.load(Ordering::Relaxed));
    }
}

/// The `# Latencystats` section body.
pub fn latencystats(server: &Server, out: &mut String) {
    let t = table();
    for (i, c) in server.obs.cmds.iter().enumerate() {
        let Some(h) = c.hist.get() else { continue };
        if c.calls.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let values = h.percentiles(&INFO_PERCENTILES);
        let _ = write!(out, "latency_percentiles_usec_{}:", t.name(i));
        for (n, (p, v)) in INFO_PERCENTILES.iter().zip(values).enumerate() {
            let sep = if n == 0 { "" } else { "," };
            let _ = write!(out, "{sep}p{p}={:.3}", v as f64 / 1000.0);
        }
        out.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn error_codes_like_redis() {
        assert_eq!(error_code("ERR syntax error"), "ERR");
        assert_eq!(error_code("WRONGTYPE Operation against a key"), "WRONGTYPE");
        assert_eq!(error_code("NOAUTH Authentication required."), "NOAUTH");
        assert_eq!(error_code("NOSPACEINTHEWHOLEMESSAGE"), "ERR");
        assert_eq!(error_code(&format!("{} x", "A".repeat(40))), "ERR");
        assert_eq!(error_code(" leading space"), "ERR");
    }

    #[test]
    fn slots_split_containers_by_subcommand() {
        let t = table();
        let config = engine::cmd::lookup(b"config").unwrap();
        let get = t.slot(config, &args(&["CONFIG", "GET", "x"])).unwrap();
        assert_eq!(t.name(get), "config|get");
        assert!(t.slot(config, &args(&["config", "nope"])).is_none());
        let set = engine::cmd::lookup(b"SET").unwrap();
        assert_eq!(t.name(t.slot(set, &args(&["set", "k", "v"])).unwrap()), "set");
        let m = t.matching(b"CONFIG");
        assert!(m.len() > 1 && t.name(m[0]) == "config");
        assert_eq!(t.matching(b"config|get"), vec![get]);
        assert!(t.matching(b"nosuch").is_empty());
    }

    #[test]
    fn errorstats_are_sorted_and_capped() {
        let obs = Observability::new(&Config::default());
        obs.count_error("WRONGTYPE x");
        obs.count_error("ERR x");
        obs.count_error("ERR y");
        for i in 0..200 {
            obs.count_error(&format!("E{i} x"));
        }
        let e = obs.errors.read();
        assert_eq!(e.len(), MAX_ERROR_KINDS);
        assert!(e.windows(2).all(|w| w[0].0 < w[1].0));
        let err = e.iter().find(|(c, _)| c == "ERR").unwrap();
        assert_eq!(err.1.load(Ordering::Relaxed), 2);
    }
}
