//! Tests for the keyspace table: basics against a `HashMap` model, bounded incremental rehash, SCAN across
//! growth and shrink, and point-in-time snapshots under concurrent writes.

use super::*;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

fn key(i: usize) -> Box<[u8]> {
    format!("key:{i}").into_bytes().into()
}

fn b(s: &str) -> Box<[u8]> {
    s.as_bytes().into()
}

type Model = HashMap<Vec<u8>, (u64, i64)>;

fn contents(t: &Table<u64>) -> Model {
    t.iter().map(|e| (e.key.to_vec(), (e.value, e.expire_at()))).collect()
}

/// What a test sink collected: (key, value, expire). Sinks are `Send`: a table moves to its shard's thread.
type Seen = Arc<Mutex<Vec<(Vec<u8>, u64, i64)>>>;

/// Collects what a snapshot emits.
struct Collect(Seen);

impl SnapshotSink<u64> for Collect {
    fn emit(&mut self, e: &Entry<u64>) {
        self.0.lock().unwrap().push((e.key.to_vec(), e.value, e.expire_at()));
    }
}

/// Asserts the sink got exactly `expected`, each key once.
fn assert_snapshot(seen: &Seen, expected: &Model) {
    let seen = seen.lock().unwrap();
    let got: Model = seen.iter().map(|(k, v, x)| (k.clone(), (*v, *x))).collect();
    assert_eq!(got.len(), seen.len(), "a key was emitted twice");
    assert_eq!(&got, expected);
}

#[test]
fn basics() {
    let mut t: Table<u64> = Table::new();
    assert!(t.is_empty());
    assert!(t.get(b"a").is_none());
    assert!(t.remove(b"a").is_none());
    assert!(t.get_mut(b"a").is_none());
    assert_eq!(t.insert(b("a"), 1u64, NO_EXPIRE), None);
    assert_eq!(t.insert(b("b"), 2, 500), None);
    assert_eq!(t.insert(b(""), 3, NO_EXPIRE), None);
    assert_eq!(t.len(), 3);
    assert_eq!(t.get(b"a").map(|e| e.value), Some(1));
    assert!(t.get(b"b").is_some_and(|e| e.has_expire() && e.key() == b"b"));
    assert!(!t.get(b"a").is_some_and(|e| e.has_expire()));
    assert_eq!(t.get(b"").map(|e| e.value), Some(3));
    assert_eq!(t.insert(b("a"), 10, 77), Some((1, NO_EXPIRE)));
    assert_eq!(t.len(), 3);
    if let Some(e) = t.get_mut(b"b") {
        e.value += 5;
    }
    assert_eq!(t.get(b"b").map(|e| e.value), Some(7));
    let e = t.remove(b"a").map(Entry::into_parts);
    assert_eq!(e.map(|(k, v, x)| (k[..].to_vec(), v, x)), Some((b"a".to_vec(), 10, 77)));
    assert!(t.get(b"a").is_none());
    assert_eq!(t.len(), 2);
    t.clear();
    assert!(t.is_empty() && t.get(b"b").is_none());
    assert_eq!(t.insert(b("b"), 1, NO_EXPIRE), None);
    assert_eq!(t.len(), 1);
}

#[test]
fn key_lengths_through_every_hash_path() {
    let mut t: Table<u64> = Table::new();
    let keys: Vec<Box<[u8]>> = (0..200).map(|n| (0..n).map(|i| (i * 7 + n) as u8).collect()).collect();
    for (i, k) in keys.iter().enumerate() {
        t.insert(k.clone(), i as u64, NO_EXPIRE);
    }
    assert_eq!(t.len(), keys.len());
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(t.get(k).map(|e| e.value), Some(i as u64), "key length {}", k.len());
    }
    // Keys differing only in their last byte (or only in a middle byte) still hash apart.
    let mut spread = HashSet::new();
    for n in [3usize, 9, 17, 60] {
        for last in 0..=255u8 {
            let mut k = vec![b'x'; n];
            k[n - 1] = last;
            spread.insert(hash_key(1, &k) & 0xffff);
            k[n - 1] = b'x';
            k[n / 2] = last;
            spread.insert(hash_key(1, &k) & 0xffff);
        }
    }
    assert!(spread.len() > 1800, "{}", spread.len());
}

#[test]
fn remove_from_head_middle_and_tail_of_a_chain() {
    let mut t: Table<u64> = Table::with_capacity(4);
    let seed = process_seed();
    let bucket = |k: &[u8]| hash_key(seed, k) & 3;
    let same: Vec<Box<[u8]>> = (0..).map(key).filter(|k| bucket(k) == 1).take(3).collect();
    for (i, k) in same.iter().enumerate() {
        t.insert(k.clone(), i as u64, NO_EXPIRE);
    }
    assert_eq!(t.buckets(), 4);
    let chain = std::iter::successors(t.ht[0].slots[1].as_deref(), |e| e.next.as_deref());
    assert_eq!(chain.count(), 3);
    // Insertion pushes at the head, so the chain is same[2], same[1], same[0].
    assert_eq!(t.remove(&same[1]).map(|e| e.value), Some(1));
    assert_eq!(t.get(&same[0]).map(|e| e.value), Some(0));
    assert_eq!(t.get(&same[2]).map(|e| e.value), Some(2));
    assert!(t.get(&same[1]).is_none());
    assert_eq!(t.remove(&same[0]).map(|e| e.value), Some(0));
    assert_eq!(t.get(&same[2]).map(|e| e.value), Some(2));
    assert_eq!(t.remove(&same[2]).map(|e| e.value), Some(2));
    assert!(t.is_empty());
}

#[test]
fn random_operations_match_a_hash_map() {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut t: Table<u64> = Table::new();
    let mut model = Model::new();
    for round in 0..300_000u64 {
        // A quarter of the keys too long to sit inside their entry.
        let n = rng.usize(0..100_000);
        let k: Box<[u8]> =
            if n.is_multiple_of(4) { format!("a-key-longer-than-15:{n}").into_bytes().into() } else { key(n) };
        match rng.u32(0..10) {
            0..=5 => {
                let exp = if rng.bool() { NO_EXPIRE } else { round as i64 };
                assert_eq!(t.insert(k.clone(), round, exp), model.insert(k.to_vec(), (round, exp)));
            }
            6 => {
                // A new value, and a new TTL, none, or the same (a key moves between its inline and heap
                // forms while it sits in the table).
                let exp = match rng.u32(0..3) {
                    0 => NO_EXPIRE,
                    1 => round as i64 + 1,
                    _ => model.get(&*k).map_or(NO_EXPIRE, |m| m.1),
                };
                if let Some(e) = t.get_mut(&k) {
                    e.value += 1;
                    e.set_expire_at(exp);
                }
                if let Some(m) = model.get_mut(&*k) {
                    *m = (m.0 + 1, exp);
                }
            }
            7 => assert_eq!(t.get(&k).map(|e| (e.value, e.expire_at())), model.get(&*k).copied()),
            _ => assert_eq!(t.remove(&k).map(|e| (e.value, e.expire_at())), model.remove(&*k)),
        }
        assert_eq!(t.len(), model.len());
    }
    assert_eq!(t.iter().len(), model.len());
    assert_eq!(contents(&t), model);
    // Keys of up to 15 bytes sit inside their entry; only longer ones own heap bytes.
    let key_bytes: usize = model.keys().map(|k| if k.len() > 15 { k.len() } else { 0 }).sum();
    assert_eq!(t.key_bytes, key_bytes);
    for k in model.keys() {
        assert!(t.remove(k).is_some());
    }
    assert!(t.is_empty() && t.iter().next().is_none());
    assert_eq!(t.key_bytes, 0);
}

#[test]
fn growth_and_shrink_move_a_bounded_number_of_buckets_per_operation() {
    let mut t: Table<u64> = Table::new();
    let check = |t: &Table<u64>| {
        let (moved, visited) = t.last_rehash;
        assert!(moved <= 1 && visited <= 1 + EMPTY_VISITS, "one step did {moved} moves / {visited} visits");
    };
    let mut rehashing_inserts = 0;
    for i in 0..200_000 {
        t.insert(key(i), i as u64, NO_EXPIRE);
        check(&t);
        rehashing_inserts += usize::from(t.is_rehashing());
    }
    // Each doubling rehashes across as many inserts as the old array had buckets.
    assert!(rehashing_inserts > 50_000, "{rehashing_inserts}");
    assert_eq!(t.len(), 200_000);
    assert!(t.buckets() >= 200_000);

    let mut rehashing_removes = 0;
    let mut largest = t.buckets();
    for i in 1000..200_000 {
        assert!(t.remove(&key(i)).is_some());
        check(&t);
        rehashing_removes += usize::from(t.is_rehashing());
        largest = largest.max(t.buckets());
    }
    assert!(rehashing_removes > 1000, "{rehashing_removes}");
    while t.rehash_step(100) {}
    assert!(t.buckets() <= 10 * t.len() && largest >= 262_144, "{} buckets", t.buckets());
    assert_eq!(contents(&t).len(), 1000);
    for i in 0..1000 {
        assert_eq!(t.get(&key(i)).map(|e| e.value), Some(i as u64));
    }
}

#[test]
fn with_capacity_does_not_resize_up_to_capacity() {
    let mut t: Table<u64> = Table::with_capacity(1000);
    let buckets = t.buckets();
    for i in 0..1000 {
        t.insert(key(i), 0u64, NO_EXPIRE);
        assert!(!t.is_rehashing());
    }
    for i in 1000..buckets {
        t.insert(key(i), 0u64, NO_EXPIRE);
    }
    assert_eq!(t.buckets(), buckets);
    assert!(!t.is_rehashing());
    t.insert(key(buckets), 0, NO_EXPIRE);
    assert!(t.is_rehashing());
    // The owner may finish a resize in one call if it wants to.
    assert!(!t.rehash_step(usize::MAX));
    assert_eq!(t.buckets(), 2 * buckets);
}

/// Runs a whole SCAN, calling `churn` between steps; returns every key seen and how many steps found the
/// table mid-resize.
fn scan_with(t: &mut Table<u64>, mut churn: impl FnMut(&mut Table<u64>, usize)) -> (HashSet<Vec<u8>>, usize) {
    let (mut seen, mut cursor, mut step, mut rehashing) = (HashSet::new(), 0, 0, 0);
    loop {
        rehashing += usize::from(t.is_rehashing());
        cursor = t.scan(cursor, |e| {
            seen.insert(e.key.to_vec());
        });
        if cursor == 0 {
            return (seen, rehashing);
        }
        churn(t, step);
        step += 1;
        assert!(step < 10_000_000, "the scan does not end");
    }
}

#[test]
fn scan_without_changes_returns_each_key_once() {
    let mut t: Table<u64> = Table::new();
    for i in 0..10_000 {
        t.insert(key(i), 0u64, NO_EXPIRE);
    }
    while t.rehash_step(10) {}
    let (mut cursor, mut count) = (0, 0);
    loop {
        cursor = t.scan(cursor, |_| count += 1);
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(count, 10_000);
    assert_eq!(Table::<u64>::new().scan(0, |_| panic!("empty table")), 0);
}

#[test]
fn scan_returns_every_stable_key_while_the_table_grows() {
    let mut t: Table<u64> = Table::new();
    for i in 0..1000 {
        t.insert(key(i), 0u64, NO_EXPIRE);
    }
    let start = t.buckets();
    let mut next = 1_000_000;
    let (seen, rehashing) = scan_with(&mut t, |t, _| {
        if next < 1_040_000 {
            for _ in 0..40 {
                t.insert(key(next), 0, NO_EXPIRE);
                next += 1;
            }
            // Remove keys that were not there when the scan started.
            t.remove(&key(next - 7));
            t.remove(&key(next - 21));
        }
    });
    assert!(t.buckets() >= 32 * start, "{start} -> {}", t.buckets());
    assert!(rehashing > 10, "{rehashing}");
    for i in 0..1000 {
        assert!(seen.contains(&*key(i)), "key {i} missed");
    }
}

#[test]
fn scan_returns_every_stable_key_while_the_table_shrinks() {
    let mut t: Table<u64> = Table::new();
    for i in 0..60_000 {
        t.insert(key(i), 0u64, NO_EXPIRE);
    }
    let start = t.buckets();
    let mut doomed = 500..60_000;
    let (seen, rehashing) = scan_with(&mut t, |t, _| {
        for i in doomed.by_ref().take(300) {
            t.remove(&key(i));
        }
        t.rehash_step(20);
    });
    assert!(t.buckets() * 16 <= start, "{start} -> {}", t.buckets());
    assert!(rehashing > 10, "{rehashing}");
    for i in 0..500 {
        assert!(seen.contains(&*key(i)), "key {i} missed");
    }
}

#[test]
fn scan_returns_every_stable_key_under_random_churn() {
    for seed in 0..6 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut t: Table<u64> = Table::new();
        let stable = rng.usize(1..3000);
        for i in 0..stable {
            t.insert(key(i), 0u64, NO_EXPIRE);
        }
        let mut live: Vec<usize> = Vec::new();
        let mut next = 1_000_000;
        let (seen, _) = scan_with(&mut t, |t, step| {
            // Grow in bursts, then shrink in bursts, a few times over.
            let grow = (step / 200) % 2 == 0 && step < 2000;
            for _ in 0..rng.usize(0..40) {
                if grow || live.is_empty() {
                    t.insert(key(next), 0, NO_EXPIRE);
                    live.push(next);
                    next += 1;
                } else {
                    let i = live.swap_remove(rng.usize(0..live.len()));
                    t.remove(&key(i));
                }
            }
            if rng.u32(0..4) == 0 {
                t.rehash_step(rng.usize(1..50));
            }
        });
        for i in 0..stable {
            assert!(seen.contains(&*key(i)), "seed {seed}: key {i} missed");
        }
    }
}

fn filled(n: usize) -> (Table<u64>, Model) {
    let mut t: Table<u64> = Table::new();
    let mut model = Model::new();
    for i in 0..n {
        let exp = if i % 7 == 0 { 1_000 + i as i64 } else { NO_EXPIRE };
        t.insert(key(i), i as u64, exp);
        model.insert(key(i).to_vec(), (i as u64, exp));
    }
    (t, model)
}

fn begin(t: &mut Table<u64>) -> Seen {
    let seen = Arc::default();
    assert!(t.snapshot_begin(Box::new(Collect(Arc::clone(&seen)))).is_ok());
    seen
}

#[test]
fn snapshot_is_the_state_at_begin_under_concurrent_writes() {
    for seed in 0..9u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (mut t, original) = filled(5_000);
        let seen = begin(&mut t);
        assert!(t.snapshot_active());
        assert!(t.snapshot_begin(Box::new(Collect(Arc::default()))).is_err());
        let mut next = 5_000;
        let start_buckets = t.buckets();
        let (mut steps, mut rehashing_steps) = (0, 0);
        while !t.snapshot_step(rng.usize(1..4)) {
            for _ in 0..rng.usize(1..30) {
                let old = key(rng.usize(0..next));
                match rng.u32(0..100) {
                    0..=29 => {
                        t.insert(key(next), 7, NO_EXPIRE);
                        next += 1;
                    }
                    30..=49 => {
                        t.insert(old, rng.u64(..), rng.i64(0..100));
                    }
                    50..=64 => {
                        if let Some(e) = t.get_mut(&old) {
                            e.value += 1_000_000;
                            e.set_expire_at(5);
                        }
                    }
                    65..=84 => {
                        t.remove(&old);
                    }
                    _ => {
                        t.remove(&old);
                        t.insert(old, 99, NO_EXPIRE);
                    }
                }
            }
            if seed % 3 == 0 && steps == 1000 {
                t.clear();
            }
            if rng.u32(0..5) == 0 {
                t.rehash_step(1);
            }
            steps += 1;
            rehashing_steps += usize::from(t.is_rehashing());
            assert!(steps < 1_000_000, "the snapshot does not end");
        }
        assert!(t.snapshot_step(1), "stays finished");
        assert!(t.snapshot_end().is_some() && !t.snapshot_active());
        println!("seed {seed}: {steps} steps, {rehashing_steps} rehashing, {start_buckets} -> {}", t.buckets());
        if seed % 3 != 0 {
            assert!(t.buckets() > start_buckets && rehashing_steps > 100, "seed {seed}: growth not exercised");
        }
        assert_snapshot(&seen, &original);
    }
}

#[test]
fn snapshot_is_the_state_at_begin_while_the_table_shrinks() {
    let mut rng = fastrand::Rng::with_seed(3);
    let (mut t, original) = filled(40_000);
    let start_buckets = t.buckets();
    let seen = begin(&mut t);
    let mut doomed: Vec<usize> = (0..40_000).collect();
    rng.shuffle(&mut doomed);
    while !t.snapshot_step(2) {
        for _ in 0..20 {
            if let Some(i) = doomed.pop() {
                t.remove(&key(i));
            }
        }
        if let Some(e) = t.get_mut(&key(rng.usize(0..40_000))) {
            e.value = 0;
        }
    }
    assert!(t.buckets() * 8 <= start_buckets, "{start_buckets} -> {}", t.buckets());
    assert_snapshot(&seen, &original);
}

#[test]
fn clear_during_a_snapshot_emits_what_is_pending() {
    let (mut t, original) = filled(3_000);
    let seen = begin(&mut t);
    for _ in 0..10 {
        t.snapshot_step(5);
    }
    let emitted = seen.lock().unwrap().len();
    assert!(emitted > 0 && emitted < 3_000);
    t.clear();
    assert_eq!(seen.lock().unwrap().len(), 3_000);
    t.insert(key(1), 5, NO_EXPIRE);
    while !t.snapshot_step(10) {}
    assert_snapshot(&seen, &original);
}

#[test]
fn snapshot_edge_cases() {
    // An empty table finishes at once.
    let mut t = Table::<u64>::new();
    let seen = begin(&mut t);
    assert!(t.snapshot_step(1));
    assert!(seen.lock().unwrap().is_empty());
    assert!(t.snapshot_end().is_some());
    assert!(t.snapshot_end().is_none() && t.snapshot_step(1));

    // An abandoned snapshot leaves nothing behind: the next one sees everything again.
    let (mut t, mut model) = filled(2_000);
    let first = begin(&mut t);
    t.snapshot_step(100);
    t.insert(key(5), 55, NO_EXPIRE);
    model.insert(key(5).to_vec(), (55, NO_EXPIRE));
    assert!(!first.lock().unwrap().is_empty());
    assert!(t.snapshot_end().is_some());
    let second = begin(&mut t);
    while !t.snapshot_step(7) {}
    assert_snapshot(&second, &model);
    t.snapshot_end();

    // The 2-bit epoch wraps every 4 snapshots, and runs of abandoned ones (each leaving the entries it did
    // not reach in an older epoch) are followed by exact snapshots: up to 5 abandoned in a row, each
    // reaching a different share of the table, with writes (new keys, new values, new and removed TTLs)
    // between them.
    for run in 0..6usize {
        for round in 0..run {
            let _abandoned = begin(&mut t);
            t.snapshot_step(50 * (round + 1));
            let k = key(100 + run * 10 + round);
            t.insert(k.clone(), round as u64, NO_EXPIRE);
            model.insert(k.to_vec(), (round as u64, NO_EXPIRE));
            let k = key(round * 3);
            t.insert(k.clone(), 7, 1_000 + round as i64);
            model.insert(k.to_vec(), (7, 1_000 + round as i64));
            assert!(t.snapshot_end().is_some());
        }
        let k = key(run * 3 + 1);
        t.insert(k.clone(), 8, NO_EXPIRE);
        model.insert(k.to_vec(), (8, NO_EXPIRE));
        let seen = begin(&mut t);
        t.insert(key(7), 1, 1);
        while !t.snapshot_step(3) {}
        t.snapshot_end();
        assert_snapshot(&seen, &model);
        model.insert(key(7).to_vec(), (1, 1));
        assert_eq!(t.state.mixed, 0);
    }
}

#[test]
fn random_entry_reaches_every_key() {
    let mut t: Table<u64> = Table::new();
    assert!(t.random_entry().is_none());
    for i in 0..200 {
        t.insert(key(i), i as u64, NO_EXPIRE);
    }
    let mut seen = HashSet::new();
    for _ in 0..20_000 {
        seen.insert(t.random_entry().map(|e| e.value));
    }
    assert_eq!(seen.len(), 200);

    // A huge, nearly empty array mid-shrink still finds the last keys.
    let mut t: Table<u64> = Table::new();
    for i in 0..200_000 {
        t.insert(key(i), i as u64, NO_EXPIRE);
    }
    while t.rehash_step(1000) {}
    for i in 3..200_000 {
        t.remove(&key(i));
    }
    assert!(t.buckets() > 1000 * t.len());
    for _ in 0..100 {
        assert!(t.random_entry().is_some_and(|e| e.value < 3));
    }
}

#[test]
fn iter_covers_both_arrays_while_rehashing() {
    let mut t: Table<u64> = Table::new();
    let mut model = Model::new();
    for i in 0..5_000 {
        t.insert(key(i), i as u64, NO_EXPIRE);
        model.insert(key(i).to_vec(), (i as u64, NO_EXPIRE));
        if t.is_rehashing() && i % 97 == 0 {
            assert_eq!(contents(&t), model);
        }
    }
    assert_eq!(t.iter().len(), 5_000);
}

#[test]
fn memory_per_entry_for_a_million_short_keys() {
    assert!(mem::size_of::<Entry<u64>>() <= 48);
    let mut t: Table<u64> = Table::new();
    for i in 0..1_000_000 {
        t.insert(format!("key:{i:06}").as_bytes(), i as u64, NO_EXPIRE);
    }
    while t.rehash_step(1000) {}
    let per_entry = t.heap_bytes() as f64 / t.len() as f64;
    println!("heap bytes per entry (10-byte keys, u64 values): {per_entry:.1}");
    assert!(per_entry < 80.0, "{per_entry}");
}

#[test]
fn detached_entries_link_in_and_duplicates_come_back() {
    let mut t: Table<u64> = Table::with_capacity(100);
    for i in 0..100u64 {
        let key = format!("k{i}").into_bytes().into_boxed_slice();
        let h = hash_of(&key);
        assert!(t.insert_entry(h, Entry::detached(h, &key, i, 1_000 + i as i64)).is_ok());
    }
    // A key already present: the table is unchanged and the entry is handed back whole.
    let h = hash_of(b"k7");
    let back = t.insert_entry(h, Entry::detached(h, &b"k7"[..], 99, NO_EXPIRE)).unwrap_err();
    let (k, v, x) = back.into_parts();
    assert_eq!((&k[..], v, x), (&b"k7"[..], 99, NO_EXPIRE));
    assert_eq!(t.len(), 100);
    for i in 0..100u64 {
        let e = t.get(format!("k{i}").as_bytes()).expect("linked");
        assert_eq!((e.value, e.expire_at()), (i, 1_000 + i as i64));
    }
    // Linked entries take part in growth like inserted ones.
    for i in 100..1000u64 {
        t.insert(format!("k{i}").as_bytes(), i, NO_EXPIRE);
    }
    assert!((0..1000u64).all(|i| t.get(format!("k{i}").as_bytes()).map(|e| e.value) == Some(i)));
}

#[test]
fn absent_entries_link_in_through_growth_and_snapshots() {
    let mut t: Table<u64> = Table::with_capacity(4);
    let seen = Seen::default();
    t.insert(b("old"), 7, NO_EXPIRE);
    assert!(t.snapshot_begin(Box::new(Collect(Arc::clone(&seen)))).is_ok());
    // More keys than the capacity: the table grows (and rehashes) while entries are linked without a search.
    for i in 0..500u64 {
        let key = format!("k{i}").into_bytes().into_boxed_slice();
        let h = hash_of(&key);
        t.insert_entry_absent(h, Entry::detached(h, &key, i, NO_EXPIRE));
    }
    assert_eq!(t.len(), 501);
    assert!((0..500u64).all(|i| t.get(format!("k{i}").as_bytes()).map(|e| e.value) == Some(i)));
    // Linked after the snapshot began: not part of it.
    while !t.snapshot_step(64) {}
    t.snapshot_end();
    assert_snapshot(&seen, &Model::from([(b"old".to_vec(), (7, NO_EXPIRE))]));
    // Growth finishes with every key in place, and a later duplicate is still found.
    while t.rehash_step(100) {}
    let h = hash_of(b"k9");
    assert!(t.insert_entry(h, Entry::detached(h, &b"k9"[..], 1, NO_EXPIRE)).is_err());
}

#[test]
fn keys_of_up_to_15_bytes_live_inside_the_entry() {
    let mut t: Table<u64> = Table::new();
    let (short, long) = (b"fifteen-bytes!!", b"sixteen-bytes!!!");
    t.insert(&short[..], 1, NO_EXPIRE);
    t.insert(&long[..], 2, NO_EXPIRE);
    assert!(t.get(short).is_some_and(|e| e.key.heap_bytes() == 0 && e.key() == short));
    assert!(t.get(long).is_some_and(|e| e.key.heap_bytes() == 16 && e.key() == long));
    // Only the long key owns heap bytes: its 16 bytes.
    assert_eq!(t.key_bytes, 16);
    assert_eq!(std::mem::size_of::<Entry<crate::types::Value>>(), 48);
    assert_eq!(t.remove(long).map(|e| e.value), Some(2));
    assert_eq!(t.key_bytes, 0);
}
