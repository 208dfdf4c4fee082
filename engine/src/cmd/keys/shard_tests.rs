//! The keys family on a store split over three shards (a test-only [`Store`] that routes keys by a hash),
//! to show that the commands visiting every shard and the two-key commands work when keys live apart; and
//! a property test of random key operations against a `HashMap` model, on one shard and on three.

use crate::cmd::testkit::{bulk, err, Kit};
use crate::cmd::{execute, Ctx};
use crate::config::EngineConfig;
use crate::keyspace::{Db, Keyspace, Store};
use crate::resp::Reply;
use bytes::Bytes;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

const SHARDS: usize = 3;

/// Three keyspaces; a key lives on shard `fnv1a(key) % 3` in every database.
struct ThreeShards {
    shards: Vec<Keyspace>,
}

impl ThreeShards {
    fn new(databases: usize) -> Self {
        ThreeShards { shards: (0..SHARDS).map(|_| Keyspace::new(databases)).collect() }
    }
}

fn shard_of(key: &[u8]) -> usize {
    let h = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (h % SHARDS as u64) as usize
}

impl Store for ThreeShards {
    fn num_dbs(&self) -> usize {
        self.shards[0].dbs.len()
    }
    fn db_for(&mut self, db: usize, key: &[u8]) -> &mut Db {
        &mut self.shards[shard_of(key)].dbs[db]
    }
    fn db_for_ref(&self, db: usize, key: &[u8]) -> &Db {
        &self.shards[shard_of(key)].dbs[db]
    }
    fn shard_count(&self) -> usize {
        SHARDS
    }
    fn shard_db(&mut self, shard: usize, db: usize) -> &mut Db {
        &mut self.shards[shard].dbs[db]
    }
    fn shard_db_ref(&self, shard: usize, db: usize) -> &Db {
        &self.shards[shard].dbs[db]
    }
    fn swap_dbs(&mut self, a: usize, b: usize) {
        for s in &mut self.shards {
            s.dbs.swap(a, b);
        }
    }
}

/// [`Kit`] for the three-shard store.
struct ShardKit {
    store: ThreeShards,
    cfg: EngineConfig,
    now: i64,
    db: usize,
}

impl ShardKit {
    fn new() -> Self {
        let cfg = EngineConfig::default();
        ShardKit { store: ThreeShards::new(cfg.databases), cfg, now: 1_700_000_000_000, db: 0 }
    }

    fn run(&mut self, line: &str) -> Reply {
        let argv: Vec<Bytes> = line.split_whitespace().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
        let mut ctx = Ctx::new(&mut self.store, &self.cfg, self.now);
        ctx.db = self.db;
        let r = execute(&mut ctx, &argv);
        self.db = ctx.db;
        r
    }

    /// Number of keys of database `db` on each shard.
    fn sizes(&self, db: usize) -> Vec<usize> {
        self.store.shards.iter().map(|s| s.dbs[db].len()).collect()
    }
}

/// A key name that routes to `shard`, starting the search at `prefix:0`.
fn key_on(shard: usize, prefix: &str) -> String {
    (0..).map(|i| format!("{prefix}:{i}")).find(|k| shard_of(k.as_bytes()) == shard).unwrap()
}

fn names(r: Reply) -> Vec<String> {
    let Reply::Array(items) = r else { panic!("not an array: {r:?}") };
    items
        .into_iter()
        .map(|i| match i {
            Reply::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn scan_step(k: &mut ShardKit, cursor: u64, count: usize) -> (u64, Vec<String>) {
    let Reply::Array(mut parts) = k.run(&format!("SCAN {cursor} COUNT {count}")) else { panic!() };
    let keys = names(parts.pop().unwrap());
    let Some(Reply::Bulk(c)) = parts.pop() else { panic!() };
    (std::str::from_utf8(&c).unwrap().parse().unwrap(), keys)
}

fn loaded(n: usize) -> ShardKit {
    let mut k = ShardKit::new();
    for i in 0..n {
        k.run(&format!("SET key:{i} v"));
    }
    let sizes = k.sizes(0);
    assert!(sizes.iter().all(|&s| s > 0), "every shard holds keys: {sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), n);
    k
}

#[test]
fn keys_and_dbsize_see_every_shard() {
    let mut k = loaded(300);
    assert_eq!(k.run("DBSIZE"), Reply::Int(300));
    let all: HashSet<String> = names(k.run("KEYS *")).into_iter().collect();
    assert_eq!(all, (0..300).map(|i| format!("key:{i}")).collect());
    assert_eq!(names(k.run("KEYS key:1?")).len(), 10);
    k.run("SELECT 1");
    assert_eq!(k.run("DBSIZE"), Reply::Int(0));
}

#[test]
fn scan_visits_every_shard_and_never_misses_a_key() {
    let mut k = loaded(300);
    let (mut cursor, mut seen, mut residues) = (0u64, Vec::new(), HashSet::new());
    let mut round = 0;
    loop {
        let (next, keys) = scan_step(&mut k, cursor, 10);
        seen.extend(keys);
        // Keys are added on every shard between calls; the original ones must all come back.
        for j in 0..15 {
            k.run(&format!("SET new:{round}:{j} v"));
        }
        round += 1;
        residues.insert(next % SHARDS as u64);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let seen: HashSet<String> = seen.into_iter().collect();
    for i in 0..300 {
        assert!(seen.contains(&format!("key:{i}")), "key:{i} missed");
    }
    assert_eq!(residues.len(), SHARDS, "the cursor walked through every shard");

    // A quiet scan returns each key exactly once here (no resize during the scan).
    let mut k = loaded(100);
    let (mut cursor, mut seen) = (0u64, Vec::new());
    loop {
        let (next, keys) = scan_step(&mut k, cursor, 3);
        seen.extend(keys);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    seen.sort();
    let mut want: Vec<String> = (0..100).map(|i| format!("key:{i}")).collect();
    want.sort();
    assert_eq!(seen, want);
}

#[test]
fn scan_moves_on_to_the_next_shard_within_one_call() {
    // Only the last shard holds keys: one call with a large COUNT must get through the two empty shards.
    let mut k = ShardKit::new();
    let key = key_on(2, "only");
    k.run(&format!("SET {key} v"));
    let (cursor, keys) = scan_step(&mut k, 0, 100);
    assert_eq!((cursor, keys), (0, vec![key]));
    // A cursor naming a shard past the middle skips the earlier shards.
    let first = key_on(0, "first");
    k.run(&format!("SET {first} v"));
    assert_eq!(scan_step(&mut k, 2, 100).1, vec![key_on(2, "only")]);
    assert_eq!(scan_step(&mut k, 1, 100).1, vec![key_on(2, "only")]);
    let mut both = scan_step(&mut k, 0, 100).1;
    both.sort();
    let mut want = vec![first, key_on(2, "only")];
    want.sort();
    assert_eq!(both, want);
}

#[test]
fn randomkey_reaches_every_shard_and_skips_expired() {
    let mut k = loaded(30);
    let mut hit = HashSet::new();
    for _ in 0..300 {
        let Reply::Bulk(b) = k.run("RANDOMKEY") else { panic!() };
        hit.insert(shard_of(&b));
    }
    assert_eq!(hit.len(), SHARDS);
    // Every key but one expires: RANDOMKEY must find the survivor on whichever shard it lives.
    let survivor = key_on(1, "survivor");
    for i in 0..30 {
        k.run(&format!("PEXPIRE key:{i} 1"));
    }
    k.run(&format!("SET {survivor} v"));
    k.now += 1;
    assert_eq!(k.run("RANDOMKEY"), bulk(&survivor));
    assert_eq!(k.run("RANDOMKEY"), bulk(&survivor));
    k.run(&format!("DEL {survivor}"));
    assert_eq!(k.run("RANDOMKEY"), Reply::Nil);
}

#[test]
fn two_key_commands_across_shards() {
    let mut k = ShardKit::new();
    let (a, b) = (key_on(0, "a"), key_on(2, "b"));
    k.run(&format!("SET {a} 1"));
    k.run(&format!("PEXPIRE {a} 7000"));
    assert_eq!(k.run(&format!("RENAME {a} {b}")), Reply::ok());
    assert_eq!(k.sizes(0), vec![0, 0, 1]);
    assert_eq!(k.run(&format!("GET {b}")), bulk("1"));
    assert_eq!(k.run(&format!("PTTL {b}")), Reply::Int(7000));
    assert_eq!(k.run(&format!("RENAMENX {a} {b}")), err("ERR no such key"));
    k.run(&format!("SET {a} 2"));
    assert_eq!(k.run(&format!("RENAMENX {a} {b}")), Reply::Int(0));
    assert_eq!(k.run(&format!("RENAMENX {b} {}", key_on(1, "c"))), Reply::Int(1));
    assert_eq!(k.sizes(0), vec![1, 1, 0]);

    assert_eq!(k.run(&format!("COPY {a} {b}")), Reply::Int(1));
    assert_eq!(k.run(&format!("GET {b}")), bulk("2"));
    assert_eq!(k.run(&format!("COPY {a} {b} DB 3")), Reply::Int(1));
    assert_eq!(k.sizes(3), vec![0, 0, 1], "same key, same shard, other database");
    assert_eq!(k.run(&format!("MOVE {a} 3")), Reply::Int(1));
    assert_eq!(k.sizes(3), vec![1, 0, 1]);
    assert_eq!(k.run(&format!("EXISTS {a} {b} {b}")), Reply::Int(2), "{a} moved to db 3");
    assert_eq!(k.run(&format!("DEL {a} {b} {}", key_on(1, "c"))), Reply::Int(2));
    assert_eq!(k.run("DBSIZE"), Reply::Int(0));
}

#[test]
fn flush_and_swapdb_reach_every_shard() {
    let mut k = loaded(60);
    k.run("SWAPDB 0 5");
    assert_eq!(k.run("DBSIZE"), Reply::Int(0));
    k.run("SELECT 5");
    assert_eq!(k.run("DBSIZE"), Reply::Int(60));
    assert_eq!(k.run("FLUSHDB"), Reply::ok());
    assert_eq!(k.sizes(5), vec![0, 0, 0]);
    for i in 0..30 {
        k.run(&format!("SET key:{i} v"));
    }
    k.run("SELECT 0");
    for i in 0..30 {
        k.run(&format!("SET key:{i} v"));
    }
    assert_eq!(k.run("FLUSHALL"), Reply::ok());
    assert_eq!(k.sizes(0).iter().chain(&k.sizes(5)).sum::<usize>(), 0);
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    Set(usize, u8),
    Del(usize),
    Pexpire(usize, i64),
    Expire(usize, i64),
    Persist(usize),
    Rename(usize, usize),
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..6usize;
    prop_oneof![
        (key.clone(), any::<u8>()).prop_map(|(k, v)| Op::Set(k, v)),
        key.clone().prop_map(Op::Del),
        (key.clone(), -50i64..2500).prop_map(|(k, ms)| Op::Pexpire(k, ms)),
        (key.clone(), -1i64..3).prop_map(|(k, s)| Op::Expire(k, s)),
        key.clone().prop_map(Op::Persist),
        (key.clone(), key).prop_map(|(a, b)| Op::Rename(a, b)),
        (0i64..1500).prop_map(Op::Advance),
    ]
}

/// The model: live keys with their value and deadline.
#[derive(Default)]
struct Model {
    keys: HashMap<usize, (u8, Option<i64>)>,
}

impl Model {
    fn reap(&mut self, now: i64) {
        self.keys.retain(|_, (_, at)| match at {
            Some(at) => *at > now,
            None => true,
        });
    }

    fn set_deadline(&mut self, k: usize, at: i64, now: i64) -> Reply {
        match self.keys.get_mut(&k) {
            None => Reply::Int(0),
            Some(_) if at <= now => {
                self.keys.remove(&k);
                Reply::Int(1)
            }
            Some(e) => {
                e.1 = Some(at);
                Reply::Int(1)
            }
        }
    }

    /// Applies `op` and returns the reply Redis would give.
    fn apply(&mut self, op: &Op, now: &mut i64) -> Option<Reply> {
        self.reap(*now);
        Some(match *op {
            Op::Set(k, v) => {
                self.keys.insert(k, (v, None));
                Reply::ok()
            }
            Op::Del(k) => Reply::Int(i64::from(self.keys.remove(&k).is_some())),
            Op::Pexpire(k, ms) => self.set_deadline(k, *now + ms, *now),
            Op::Expire(k, s) => self.set_deadline(k, *now + s * 1000, *now),
            Op::Persist(k) => match self.keys.get_mut(&k) {
                Some(e) if e.1.is_some() => {
                    e.1 = None;
                    Reply::Int(1)
                }
                _ => Reply::Int(0),
            },
            Op::Rename(a, b) => match self.keys.remove(&a) {
                None => err("ERR no such key"),
                Some(e) => {
                    self.keys.insert(b, e);
                    Reply::ok()
                }
            },
            Op::Advance(ms) => {
                *now += ms;
                return None;
            }
        })
    }
}

fn command(op: &Op) -> String {
    match *op {
        Op::Set(k, v) => format!("SET k{k} {v}"),
        Op::Del(k) => format!("DEL k{k}"),
        Op::Pexpire(k, ms) => format!("PEXPIRE k{k} {ms}"),
        Op::Expire(k, s) => format!("EXPIRE k{k} {s}"),
        Op::Persist(k) => format!("PERSIST k{k}"),
        Op::Rename(a, b) => format!("RENAME k{a} k{b}"),
        Op::Advance(_) => String::new(),
    }
}

/// Runs `ops` through `run` (a store with its clock) and the model, comparing every reply and then
/// EXISTS, TTL, PTTL and DBSIZE for all keys.
fn check_against_model(ops: &[Op], now: &mut i64, mut run: impl FnMut(&str, i64) -> Reply) {
    let mut model = Model::default();
    for op in ops {
        if let Some(want) = model.apply(op, now) {
            assert_eq!(run(&command(op), *now), want, "{op:?}");
        }
        model.reap(*now);
        for k in 0..6 {
            let live = model.keys.get(&k);
            assert_eq!(run(&format!("EXISTS k{k}"), *now), Reply::Int(i64::from(live.is_some())), "k{k}");
            let pttl = match live {
                None => -2,
                Some((_, None)) => -1,
                Some((_, Some(at))) => at - *now,
            };
            assert_eq!(run(&format!("PTTL k{k}"), *now), Reply::Int(pttl), "k{k}");
            let ttl = if pttl < 0 { pttl } else { (pttl + 500) / 1000 };
            assert_eq!(run(&format!("TTL k{k}"), *now), Reply::Int(ttl), "k{k}");
            if let Some((v, _)) = live {
                assert_eq!(run(&format!("GET k{k}"), *now), bulk(&v.to_string()));
            }
        }
        // EXISTS above reclaimed every expired key, so DBSIZE now counts live keys only.
        assert_eq!(run("DBSIZE", *now), Reply::Int(model.keys.len() as i64));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn keys_agree_with_a_model_on_one_shard(ops in prop::collection::vec(op(), 1..60)) {
        let mut k = Kit::new();
        let mut now = k.now;
        check_against_model(&ops, &mut now, |line, now| {
            k.now = now;
            k.run(line)
        });
    }

    #[test]
    fn keys_agree_with_a_model_on_three_shards(ops in prop::collection::vec(op(), 1..60)) {
        let mut k = ShardKit::new();
        let mut now = k.now;
        check_against_model(&ops, &mut now, |line, now| {
            k.now = now;
            k.run(line)
        });
    }
}
