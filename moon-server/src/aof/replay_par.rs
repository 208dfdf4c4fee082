//! The start-up replay of an AOF's RESP commands on one worker thread per shard.
//!
//! The loader thread reads and parses the files, as in the sequential replay. A command whose keys all live
//! on one shard goes, in log order, to that shard's worker, which runs it through the dispatcher exactly as
//! the sequential replay does (`dispatch::run_data_command`, its own replay client, set to the DB the
//! command was logged in). Everything else is a barrier: commands on keys of several shards, keyless writes
//! (FLUSHALL, FLUSHDB, SWAPDB), transactions, server-level commands and RDB records. At a barrier the loader
//! waits until every worker has run everything sent before it, then runs the item itself. SELECT (no key,
//! no write) runs on the loader's client without a barrier: it only changes the DB the following commands
//! are tagged with.
//!
//! Why the result is the one the sequential replay gives: each shard sees its commands in log order, and
//! two commands on different shards touch disjoint keys, so they commute; anything that could see or change
//! more than one shard runs alone, after everything logged before it and before everything logged after.
//! The keys land on the shard live traffic uses (`Shards::shard_of`), so a restart with another shard count
//! still rebuilds the same data.
//!
//! Error replies are counted as in the sequential replay; "the first" is the first in log order (each
//! command carries its sequence number).

use crate::client::Client;
use crate::server::Server;
use crate::shards::LockedShards;
use bytes::Bytes;
use engine::aof::stream::RawArgs;
use engine::cmd::spec::flags;
use engine::cmd::{CommandSpec, Handler, KeySpec};
use engine::keyspace::Store;
use engine::resp::Reply;
use engine::table::Prefetch;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

/// Commands a worker receives at a time.
const BATCH: usize = 1024;
/// Batches in flight per worker (bounds the memory the loader can run ahead by).
const QUEUE: usize = 8;

/// Error replies seen while replaying: how many, and the first in log order.
#[derive(Default)]
pub struct Errors {
    pub count: u64,
    pub first: Option<(u64, String)>,
}

impl Errors {
    /// Counts `reply` if it is an error, or an array (EXEC) holding one.
    pub fn note(&mut self, seq: u64, reply: &Reply) {
        let err = match reply {
            Reply::Error(e) => Some(e),
            Reply::Array(items) => items.iter().find_map(|r| match r {
                Reply::Error(e) => Some(e),
                _ => None,
            }),
            _ => None,
        };
        if let Some(e) = err {
            self.count += 1;
            if self.first.as_ref().is_none_or(|(s, _)| seq < *s) {
                self.first = Some((seq, e.to_string()));
            }
        }
    }

    pub fn merge(&mut self, other: Errors) {
        self.count += other.count;
        if let Some((seq, e)) = other.first {
            if self.first.as_ref().is_none_or(|(s, _)| seq < *s) {
                self.first = Some((seq, e));
            }
        }
    }
}

/// One command for a worker; its arguments are `Batch::spans[first..first + argc]`.
struct Job {
    seq: u64,
    db: usize,
    spec: &'static CommandSpec,
    first: usize,
    argc: usize,
    /// The argument holding the command's first key (prefetched ahead of time), if it has one.
    key: Option<usize>,
}

/// Commands for one worker. The arguments are copied into one buffer of the batch's own: slices of the
/// loader's read buffer would make every thread bump and drop one shared reference count per argument.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
    jobs: Vec<Job>,
}

enum Msg {
    Batch(Batch),
    /// Answer once everything sent before has run.
    Sync(SyncSender<()>),
}

/// Where the loader sends a command.
pub enum Route {
    /// To this shard's worker.
    Shard(usize),
    /// Run it on the loader without waiting (SELECT).
    Local,
    /// Wait for every worker, then run it on the loader.
    Barrier,
}

/// Where `argv` (a known command with a valid arity) runs.
pub fn route(server: &Server, spec: &CommandSpec, argv: &[Bytes]) -> Route {
    if !on_a_worker(spec) {
        return Route::Barrier;
    }
    let shards = &server.shards;
    if key_is_argument_1(spec) {
        return Route::Shard(shards.shard_of(&argv[1]));
    }
    let keys = spec.key_indexes(argv);
    let Some(&first) = keys.first() else {
        return if spec.has(flags::WRITE) { Route::Barrier } else { Route::Local };
    };
    let shard = shards.shard_of(&argv[first]);
    if keys[1..].iter().all(|&i| shards.shard_of(&argv[i]) == shard) {
        Route::Shard(shard)
    } else {
        Route::Barrier
    }
}

/// [`route`]'s common case without [`Bytes`]: a command with one key (at argument 1) and a valid arity goes
/// to that key's shard; `None` means "ask `route`".
pub fn route_single_key(server: &Server, spec: &CommandSpec, args: RawArgs<'_>) -> Option<usize> {
    let fits = on_a_worker(spec) && key_is_argument_1(spec) && spec.arity_ok(args.len());
    fits.then(|| server.shards.shard_of(args.get(1)))
}

/// An engine command that does not need every shard: a worker may run it, given its keys' shard.
fn on_a_worker(spec: &CommandSpec) -> bool {
    matches!(spec.handler, Handler::Engine(_)) && !spec.has(flags::ALL_SHARDS)
}

/// The command's only key is argument 1 (most commands of a log).
fn key_is_argument_1(spec: &CommandSpec) -> bool {
    matches!(spec.keys, KeySpec::Range { first: 1, last: 1, .. })
}

/// The loader's side: a queue per worker.
pub struct Pool {
    senders: Vec<SyncSender<Msg>>,
    batches: Vec<Batch>,
    /// Something was sent since the last barrier.
    pending: bool,
}

/// The workers' threads, joined by [`Pool::finish`].
pub type Workers<'scope> = Vec<ScopedJoinHandle<'scope, Errors>>;

impl Pool {
    /// Starts one worker per shard in `scope`.
    pub fn start<'scope, 'env>(scope: &'scope Scope<'scope, 'env>, server: &'env Server) -> (Pool, Workers<'scope>) {
        let n = server.shards.count();
        let mut senders = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = sync_channel(QUEUE);
            senders.push(tx);
            let handle = std::thread::Builder::new()
                .name(format!("moon-aof-replay-{i}"))
                .spawn_scoped(scope, move || work(server, i, rx))
                .expect("spawning an AOF replay thread");
            handles.push(handle);
        }
        (Pool { senders, batches: (0..n).map(|_| Batch::default()).collect(), pending: false }, handles)
    }

    /// Queues `argv` (command number `seq`, logged in `db`) for `shard`'s worker.
    pub fn push<'a>(
        &mut self,
        shard: usize,
        seq: u64,
        db: usize,
        spec: &'static CommandSpec,
        argv: impl Iterator<Item = &'a [u8]>,
    ) {
        let batch = &mut self.batches[shard];
        let first = batch.spans.len();
        for a in argv {
            batch.spans.push((batch.bytes.len(), a.len()));
            batch.bytes.extend_from_slice(a);
        }
        let argc = batch.spans.len() - first;
        let key = match spec.keys {
            KeySpec::Range { first, .. } if first > 0 && (first as usize) < argc => Some(first as usize),
            _ => None,
        };
        batch.jobs.push(Job { seq, db, spec, first, argc, key });
        if batch.jobs.len() == BATCH {
            self.send(shard);
        }
    }

    fn send(&mut self, shard: usize) {
        let batch = std::mem::take(&mut self.batches[shard]);
        self.pending = true;
        // A worker only stops when its channel closes, so a send cannot fail while the pool lives; if the
        // worker died (a panic), the scope re-raises it when the load ends.
        let _ = self.senders[shard].send(Msg::Batch(batch));
    }

    /// Returns once every worker has run everything queued so far.
    pub fn barrier(&mut self) {
        for shard in 0..self.batches.len() {
            if !self.batches[shard].jobs.is_empty() {
                self.send(shard);
            }
        }
        if !std::mem::take(&mut self.pending) {
            return;
        }
        let acks: Vec<_> = self
            .senders
            .iter()
            .map(|tx| {
                let (ack_tx, ack_rx) = sync_channel(1);
                let _ = tx.send(Msg::Sync(ack_tx));
                ack_rx
            })
            .collect();
        for ack in acks {
            let _ = ack.recv();
        }
    }

    /// Runs what is queued, stops the workers and returns the errors they saw.
    pub fn finish(mut self, workers: Workers<'_>) -> Errors {
        for shard in 0..self.batches.len() {
            if !self.batches[shard].jobs.is_empty() {
                self.send(shard);
            }
        }
        drop(self.senders);
        let mut errors = Errors::default();
        for w in workers {
            match w.join() {
                Ok(e) => errors.merge(e),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        errors
    }
}

/// How far ahead of the command it runs a worker warms the cache for a later command's key, per step of
/// [`Prefetch`]: the bucket slot 12 commands ahead, its first entry 8 ahead, the rest of the chain 4 ahead.
/// A replay inserts keys at random places of a table much larger than the caches: without this, each
/// command waits for two to four memory misses in turn.
const PREFETCH: [(usize, Prefetch); 3] = [(12, Prefetch::Slot), (8, Prefetch::Entry), (4, Prefetch::Key)];

/// A worker: runs its shard's commands in the order received, holding the shard for a batch at a time.
fn work(server: &Server, shard: usize, rx: Receiver<Msg>) -> Errors {
    let mut client: Client = super::replay::replay_client();
    let mut errors = Errors::default();
    let mut argv: Vec<Bytes> = Vec::new();
    let mut hashes: Vec<u64> = Vec::new();
    for msg in rx {
        match msg {
            Msg::Batch(batch) => {
                let bytes = Bytes::from(batch.bytes);
                let key_of = |job: &Job| {
                    let at = job.key?;
                    let (start, len) = batch.spans[job.first + at];
                    Some(&bytes[start..start + len])
                };
                hashes.clear();
                hashes.extend(batch.jobs.iter().map(|job| key_of(job).map_or(0, engine::table::hash_of)));
                // Every command of the batch has its keys on this shard (`route`), so one lock covers them;
                // the dispatcher runs each exactly as `run_data_command` would.
                let mut view = server.shards.lock_single(shard);
                for (i, job) in batch.jobs.iter().enumerate() {
                    for (ahead, step) in PREFETCH {
                        if let Some(next) = batch.jobs.get(i + ahead) {
                            if next.key.is_some() {
                                view.shard_db_ref(0, next.db).table.prefetch_hashed(hashes[i + ahead], step);
                            }
                        }
                    }
                    argv.clear();
                    argv.extend(
                        batch.spans[job.first..job.first + job.argc].iter().map(|&(at, len)| bytes.slice(at..at + len)),
                    );
                    client.tick_clock();
                    client.db = job.db;
                    let reply = crate::dispatch::exec_in_view(server, &mut client, &mut view, job.spec, &argv);
                    errors.note(job.seq, &reply);
                }
                finish_resizes(&mut view);
            }
            Msg::Sync(ack) => {
                let _ = ack.send(());
            }
        }
    }
    errors
}

/// Completes the resizes a batch started. Live traffic moves one bucket per write so that no request waits for
/// a whole table, but nobody waits while the dataset loads: one pass here, whose prefetches run well ahead of
/// the entries it moves, costs a fraction of what a bucket per insert (a cache miss each) does.
fn finish_resizes(view: &mut LockedShards<'_>) {
    for db in 0..view.num_dbs() {
        let table = &mut view.shard_db(0, db).table;
        if table.is_rehashing() {
            table.rehash_step(usize::MAX);
        }
    }
}
