//! Tests for member tables ([`Members`]): entry and header sizes, inline and heap keys, the one-bucket
//! small form and its growth and shrink, and SCAN and random sampling against a model under churn.

use super::*;
use std::collections::{HashMap, HashSet};
use std::mem::size_of;

type Set = Table<(), Members>;

/// A member of `len` bytes, distinct for each `i`.
fn member(i: usize, len: usize) -> Vec<u8> {
    let mut m = format!("m{i}-").into_bytes();
    m.resize(len.max(m.len()), b'x');
    m
}

#[test]
fn members_are_small() {
    // A set member fits jemalloc's 32-byte class, with its key inline.
    assert_eq!(size_of::<Member<()>>(), 32);
    assert_eq!(size_of::<MemberKey>(), 24);
    assert_eq!(size_of::<Member<f64>>(), 40);
    // Headers, less the test build's rehash counters: 64 bytes for a member table, 80 for the keyspace's.
    let counters = size_of::<(usize, usize)>();
    assert_eq!(size_of::<Set>() - counters, 64);
    assert_eq!(size_of::<Table<u64>>() - counters, 80);
}

#[test]
fn short_keys_are_inline_long_ones_on_the_heap() {
    let mut t = Set::new();
    let short = member(1, INLINE_KEY);
    let long = member(2, INLINE_KEY + 1);
    assert!(t.insert_ref(&short, (), NO_EXPIRE).is_none());
    assert!(t.insert(Box::<[u8]>::from(&long[..]), (), NO_EXPIRE).is_none());
    assert_eq!(t.insert_ref(&long, (), NO_EXPIRE), Some(((), NO_EXPIRE)));
    assert_eq!(t.len(), 2);
    assert_eq!(t.key_bytes, long.len());
    assert_eq!(t.heap_bytes(), size_of::<Link<Member<()>>>() + 2 * size_of::<Member<()>>() + long.len());
    assert_eq!(t.get(&short).map(|e| e.key.heap_bytes()), Some(0));
    assert_eq!(t.get(&long).map(|e| e.key.heap_bytes()), Some(long.len()));
    let e = t.remove(&long).expect("present");
    assert_eq!(e.key.into_boxed().to_vec(), long);
    assert_eq!(t.key_bytes, 0);
    assert!(t.contains_key(&short) && !t.contains_key(&long) && !t.contains_key(b""));
    assert!(t.insert_ref(b"", (), NO_EXPIRE).is_none() && t.contains_key(b""));
}

#[test]
fn small_sets_use_one_bucket_and_grow_past_it() {
    let mut t = Set::with_capacity(3);
    assert_eq!(t.buckets(), 1);
    for i in 0..Members::SMALL_MAX {
        t.insert_ref(&member(i, 5), (), NO_EXPIRE);
        assert_eq!(t.buckets(), 1);
    }
    // A one-bucket table returns everything in one SCAN step, as Redis does for a small set.
    let mut seen = 0;
    assert_eq!(t.scan(0, |_| seen += 1), 0);
    assert_eq!(seen, Members::SMALL_MAX);
    t.insert_ref(&member(99, 5), (), NO_EXPIRE);
    while t.rehash_step(100) {}
    assert_eq!(t.buckets(), 16);
    for i in 0..Members::SMALL_MAX {
        assert!(t.remove(&member(i, 5)).is_some());
    }
    while t.rehash_step(100) {}
    assert_eq!((t.len(), t.buckets()), (1, 1));
    assert!(t.contains_key(&member(99, 5)));
    assert_eq!(Set::with_capacity(9).buckets(), 16);
    assert_eq!(Table::<u64>::with_capacity(3).buckets(), 4);
}

#[test]
fn random_churn_matches_a_model_and_scans_return_stable_members() {
    let mut rng = fastrand::Rng::with_seed(5);
    let mut t: Table<u64, Members> = Table::new();
    let mut model: HashMap<Vec<u8>, u64> = HashMap::new();
    for round in 0..100_000u64 {
        let k = member(rng.usize(0..3_000), rng.usize(0..40));
        match rng.u32(0..8) {
            0..=3 => assert_eq!(t.insert_ref(&k, round, NO_EXPIRE).map(|p| p.0), model.insert(k, round)),
            4 => {
                if let Some(e) = t.get_mut(&k) {
                    e.value += 1;
                }
                if let Some(v) = model.get_mut(&k) {
                    *v += 1;
                }
            }
            5 => assert_eq!(t.get(&k).map(|e| e.value), model.get(&k).copied()),
            _ => assert_eq!(t.remove(&k).map(|e| e.value), model.remove(&k)),
        }
        assert_eq!(t.len(), model.len());
    }
    let got: HashMap<Vec<u8>, u64> = t.iter().map(|e| (e.key.to_vec(), e.value)).collect();
    assert_eq!(got, model);
    let heap_keys: usize = model.keys().filter(|k| k.len() > INLINE_KEY).map(Vec::len).sum();
    assert_eq!(t.key_bytes, heap_keys);

    // A scan that runs while members come and go returns every member present throughout.
    let stable: HashSet<Vec<u8>> = model.keys().take(500).cloned().collect();
    let (mut seen, mut cursor, mut steps) = (HashSet::new(), 0, 0);
    loop {
        cursor = t.scan(cursor, |e| {
            seen.insert(e.key.to_vec());
        });
        if cursor == 0 {
            break;
        }
        for _ in 0..20 {
            let k = member(10_000 + rng.usize(0..50_000), rng.usize(0..40));
            if rng.bool() {
                t.insert_ref(&k, 0, NO_EXPIRE);
            } else if !stable.contains(&k) {
                t.remove(&k);
            }
        }
        steps += 1;
        assert!(steps < 1_000_000, "the scan does not end");
    }
    assert!(stable.is_subset(&seen));

    // Random sampling reaches every member of a small set.
    let mut small = Set::new();
    for i in 0..5 {
        small.insert_ref(&member(i, 3), (), NO_EXPIRE);
    }
    let mut hits = HashSet::new();
    for _ in 0..1_000 {
        hits.insert(small.random_entry().map(|e| e.key.to_vec()));
    }
    assert_eq!(hits.len(), 5);
    small.clear();
    assert!(small.is_empty() && small.random_entry().is_none() && small.key_bytes == 0);
}
