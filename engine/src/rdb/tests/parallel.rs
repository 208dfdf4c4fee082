//! The parallel loader ([`load_sharded`]) against the sequential one: the same keys in the shard each key
//! routes to, the same report, and the same error (kind, offset, phase, key) on every fixture, on every
//! truncation and on damaged files.

use super::super::parallel::load_on_threads;
use super::super::{load, load_sharded, ChecksumStatus, LoadOptions, LoadReport, RdbError, ShardTarget};
use super::{db_summary, digest, expected, fixture, Expect};
use crate::keyspace::Keyspace;
use crate::rdb::LoadTarget;
use crate::table::NO_EXPIRE;
use crate::types::Value;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Routes by the key's bytes (any deterministic rule will do; the server's is the cluster slot).
fn route_for(n: usize) -> impl Fn(&[u8]) -> usize {
    move |key: &[u8]| key.iter().fold(7usize, |h, &b| h.wrapping_mul(31).wrapping_add(usize::from(b))) % n
}

/// Loads `bytes` into `n` shard keyspaces. Odd shard counts share two threads (so that a thread serves
/// several shards whatever the machine), even ones get a thread each.
fn load_n(bytes: &[u8], opts: &LoadOptions, n: usize) -> (Vec<Keyspace>, Result<LoadReport, RdbError>) {
    let mut shards: Vec<Keyspace> = (0..n).map(|_| Keyspace::new(opts.cfg.databases)).collect();
    let mut targets: Vec<&mut dyn ShardTarget> = shards.iter_mut().map(|k| k as &mut dyn ShardTarget).collect();
    let threads = if n % 2 == 1 { 2 } else { n };
    let r = load_on_threads(bytes, opts, &route_for(n), &mut targets, threads, &|_| {});
    (shards, r)
}

/// Every shard's keys in one keyspace (for the digest and the per-db counts).
fn merged(shards: &[Keyspace], databases: usize) -> Keyspace {
    let mut all = Keyspace::new(databases);
    for ks in shards {
        for (db, d) in ks.dbs.iter().enumerate() {
            for e in d.table.iter() {
                let exp = (e.expire_at() != NO_EXPIRE).then_some(e.expire_at());
                assert!(all.dbs[db].insert(e.key(), e.value.clone(), exp).is_none(), "a key in two shards");
            }
        }
    }
    all
}

/// The same error in every detail the loader reports.
fn same_error(a: &RdbError, b: &RdbError, what: &str) {
    assert_eq!(a.to_string(), b.to_string(), "{what}");
    assert_eq!((a.code(), a.offset(), a.doing(), a.key()), (b.code(), b.offset(), b.doing(), b.key()), "{what}");
}

/// The parts of two reports that describe the data.
fn same_report(a: &LoadReport, b: &LoadReport, what: &str) {
    assert_eq!(
        (a.version, a.valkey, a.keys_loaded, a.expires_loaded, a.expired_dropped, a.empty_skipped),
        (b.version, b.valkey, b.keys_loaded, b.expires_loaded, b.expired_dropped, b.empty_skipped),
        "{what}"
    );
    assert_eq!(
        (a.streams_skipped, a.modules_skipped, a.module_aux_skipped),
        (b.streams_skipped, b.modules_skipped, b.module_aux_skipped),
        "{what}"
    );
    assert_eq!(a.dbs, b.dbs, "{what}");
    assert_eq!(a.skipped_samples, b.skipped_samples, "{what}");
    assert_eq!(
        (a.aux.clone(), a.aux_unknown, a.functions.clone()),
        (b.aux.clone(), b.aux_unknown, b.functions.clone()),
        "{what}"
    );
    assert_eq!((a.checksum, a.bytes_consumed), (b.checksum, b.bytes_consumed), "{what}");
}

/// Loads `bytes` both ways with `n` shards and checks they agree: data (each key in its routed shard, with
/// the same value, encoding and expiry), report, or error.
fn agree(bytes: &[u8], opts: &LoadOptions, n: usize, what: &str) {
    let mut seq = Keyspace::new(opts.cfg.databases);
    let want = load(bytes, opts, &mut seq);
    let (shards, got) = load_n(bytes, opts, n);
    match (&want, &got) {
        (Ok(w), Ok(g)) => {
            same_report(w, g, what);
            let route = route_for(n);
            for (db, d) in seq.dbs.iter().enumerate() {
                let held: usize = shards.iter().map(|s| s.dbs[db].len()).sum();
                assert_eq!(held, d.len(), "{what}: keys in db {db}");
                for e in d.table.iter() {
                    let found = shards[route(e.key())].dbs[db].get(e.key());
                    let found = found.unwrap_or_else(|| panic!("{what}: {:?} not in its shard", e.key()));
                    assert_eq!(found.value, e.value, "{what}: {:?}", e.key());
                    assert_eq!(found.value.encoding_name(), e.value.encoding_name(), "{what}: {:?}", e.key());
                    assert_eq!(found.expire_at(), e.expire_at(), "{what}: {:?}", e.key());
                }
            }
        }
        (Err(w), Err(g)) => same_error(w, g, what),
        _ => panic!("{what}: sequential {:?}, parallel {:?}", want.as_ref().err(), got.as_ref().err()),
    }
}

#[test]
fn every_fixture_gives_redis_digest_or_the_same_error() {
    for (file, want) in expected() {
        let bytes = fixture(&file);
        for n in [1, 2, 3, 5] {
            let what = format!("{file} on {n} shards");
            agree(&bytes, &LoadOptions::default(), n, &what);
            if let Expect::Ok { digest: d, dbs } = &want {
                let (shards, r) = load_n(&bytes, &LoadOptions::default(), n);
                r.unwrap_or_else(|e| panic!("{what}: {e}"));
                let all = merged(&shards, 16);
                assert_eq!(&digest(&all), d, "{what}: digest");
                assert_eq!(&db_summary(&all), dbs, "{what}: keys/expires per db");
            }
        }
    }
}

#[test]
fn expiry_and_thresholds_apply_as_in_a_sequential_load() {
    let bytes = fixture("all-types.rdb");
    let opts = LoadOptions { drop_expired_before_ms: Some(1_900_000_000_001), ..LoadOptions::default() };
    agree(&bytes, &opts, 2, "expired keys dropped");
    let (_, r) = load_n(&bytes, &opts, 2);
    assert_eq!(r.unwrap().expired_dropped, 2);
    let cfg = crate::config::EngineConfig {
        hash_max_listpack_entries: 2,
        zset_max_listpack_entries: 2,
        set_max_intset_entries: 2,
        ..Default::default()
    };
    agree(&fixture("small-limits.rdb"), &LoadOptions { cfg, ..LoadOptions::default() }, 3, "small limits");
}

/// Small files covering every opcode and most encodings (as in `corrupt.rs`).
const SMALL: &[&str] = &[
    "lru.rdb",
    "functions.rdb",
    "nocompress.rdb",
    "legacy-v3.rdb",
    "legacy-v9-misc.rdb",
    "legacy-v7-quicklist.rdb",
    "hand-v10-empty-keys.rdb",
    "v11-set-listpack.rdb",
    "valkey080.rdb",
    "small-limits.rdb",
];

/// Big files, damaged at this many spread positions each (every position would take minutes in debug).
const BIG: &[&str] = &["all-types.rdb", "hand-v10-listpacks.rdb", "legacy-v6-ziplist.rdb", "streams.rdb"];
const BIG_SAMPLES: usize = 150;

fn positions(len: usize, name: &str, samples: usize) -> Vec<usize> {
    if BIG.contains(&name) {
        (0..samples).map(|i| i * len / samples + i % 7).filter(|&p| p < len).collect()
    } else {
        (0..len).collect()
    }
}

#[test]
fn every_truncation_fails_as_in_a_sequential_load() {
    for name in SMALL.iter().chain(BIG) {
        let bytes = fixture(name);
        for cut in positions(bytes.len(), name, 4 * BIG_SAMPLES) {
            agree(&bytes[..cut], &LoadOptions::default(), 2, &format!("{name} cut at {cut}"));
        }
    }
}

#[test]
fn damaged_bytes_fail_as_in_a_sequential_load() {
    let unchecked = LoadOptions { verify_checksum: false, ..LoadOptions::default() };
    for name in SMALL.iter().chain(BIG) {
        let bytes = fixture(name);
        for i in positions(bytes.len(), name, BIG_SAMPLES) {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= mask;
                agree(&bad, &unchecked, 3, &format!("{name} byte {i} ^ {mask:#x}"));
            }
        }
    }
}

/// A synthetic RDB: `REDIS0010`, SELECTDB 0, then `body`, EOF and the CRC.
fn rdb(body: &[u8]) -> Vec<u8> {
    let mut f = b"REDIS0010\xfe\x00".to_vec();
    f.extend_from_slice(body);
    f.push(0xff);
    let crc = super::super::crc64::crc64(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    f
}

/// A string key with a string value (names and values under 64 bytes).
fn string_key(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    out.push(0);
    out.push(key.len() as u8);
    out.extend_from_slice(key);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

/// Many keys, so that errors happen after several batches went to every shard.
fn many_keys(out: &mut Vec<u8>, from: usize, to: usize) {
    for i in from..to {
        string_key(out, format!("key:{i}").as_bytes(), format!("v{i}").as_bytes());
    }
}

#[test]
fn the_first_error_in_the_file_wins_whichever_shard_meets_it() {
    let n = 2;
    let route = route_for(n);
    // Two keys on different shards, for damage in each.
    let mut on = [None, None];
    for i in 0.. {
        let k = format!("x{i}");
        let s = route(k.as_bytes());
        on[s].get_or_insert(k);
        if on.iter().all(Option::is_some) {
            break;
        }
    }
    let [a, b] = on.map(Option::unwrap);
    // An intset blob that is not an intset: the scan passes it by its length, the shard thread refuses it.
    let bad_value = |out: &mut Vec<u8>, key: &str| {
        out.push(11);
        out.push(key.len() as u8);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&[3, 1, 2, 3]);
    };
    let dup = |out: &mut Vec<u8>| string_key(out, b"key:10", b"again");
    // Damage on shard 0 then shard 1, and the other way round, with a duplicate key after both, and a
    // truncation (the scan's own error) after everything.
    for (first, second) in [(&a, &b), (&b, &a)] {
        let mut body = Vec::new();
        many_keys(&mut body, 0, 3000);
        bad_value(&mut body, first);
        many_keys(&mut body, 3000, 3500);
        bad_value(&mut body, second);
        many_keys(&mut body, 3500, 6000);
        dup(&mut body);
        many_keys(&mut body, 6000, 9000);
        let file = rdb(&body);
        agree(&file, &LoadOptions::default(), n, "damage in both shards");
        let (_, r) = load_n(&file, &LoadOptions::default(), n);
        let e = r.unwrap_err();
        assert_eq!((e.code(), e.key()), ("bad-blob", Some(first.as_bytes())), "{e}");
        // Without the damage the duplicate is the first error; cut short, the truncation comes after it.
        let mut body = Vec::new();
        many_keys(&mut body, 0, 6000);
        dup(&mut body);
        many_keys(&mut body, 6000, 9000);
        let file = rdb(&body);
        agree(&file, &LoadOptions::default(), n, "duplicate");
        let e = load_n(&file, &LoadOptions::default(), n).1.unwrap_err();
        assert_eq!((e.code(), e.key()), ("duplicate-key", Some(&b"key:10"[..])), "{e}");
        agree(&file[..file.len() - 100], &LoadOptions::default(), n, "duplicate then truncation");
    }
    // A damaged CRC only counts when every key loaded.
    let mut body = Vec::new();
    many_keys(&mut body, 0, 5000);
    let mut file = rdb(&body);
    let last = file.len() - 1;
    file[last] ^= 1;
    agree(&file, &LoadOptions::default(), n, "bad crc");
    assert_eq!(load_n(&file, &LoadOptions::default(), n).1.unwrap_err().code(), "checksum");
}

#[test]
fn many_keys_spread_over_the_shards_with_presizing() {
    // RESIZEDB 16000 0 (0x3e80 as a 14-bit length), then the keys.
    let mut body = vec![0xfb, 0x40 | 0x3e, 0x80, 0x00];
    many_keys(&mut body, 0, 16_000);
    let file = rdb(&body);
    for n in [1, 2, 4] {
        agree(&file, &LoadOptions::default(), n, &format!("{n} shards"));
        let (shards, r) = load_n(&file, &LoadOptions::default(), n);
        let r = r.unwrap();
        assert_eq!(r.keys_loaded, 16_000);
        assert_eq!(r.dbs[&0].resize_hint, Some((16_000, 0)));
        for ks in &shards {
            // Every shard got its share, and the hint sized its table for a share, not for the whole db.
            assert!(ks.dbs[0].len() > 16_000 / n / 2, "{n} shards: {}", ks.dbs[0].len());
            if n > 1 {
                assert!(ks.dbs[0].table.buckets() < 16_384, "{n} shards: {}", ks.dbs[0].table.buckets());
            }
        }
    }
}

#[test]
fn no_targets_only_validates() {
    let bytes = fixture("all-types.rdb");
    let none: &mut [&mut dyn ShardTarget] = &mut [];
    let r = load_sharded(&bytes, &LoadOptions::default(), &|_| 0, none, &|_| {}).unwrap();
    assert_eq!(r.keys_loaded, 47);
    let e = load_sharded(&bytes[..100], &LoadOptions::default(), &|_| 0, none, &|_| {}).unwrap_err();
    assert_eq!(e.code(), "unexpected-eof");
}

/// A shard that stalls on its first batch, so that its queue fills up and the scan decodes values itself.
struct Slow {
    ks: Keyspace,
    stalled: bool,
}

impl ShardTarget for Slow {
    fn batch(&mut self, f: &mut dyn FnMut(&mut dyn crate::rdb::LoadTarget)) {
        if !self.stalled {
            self.stalled = true;
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        f(&mut self.ks)
    }
}

#[test]
fn values_decoded_by_the_scan_while_a_shard_is_behind_load_the_same() {
    let load_slow = |file: &[u8]| {
        let mut shards: Vec<Slow> = (0..2).map(|_| Slow { ks: Keyspace::new(16), stalled: false }).collect();
        let mut targets: Vec<&mut dyn ShardTarget> = shards.iter_mut().map(|k| k as &mut dyn ShardTarget).collect();
        let r = load_on_threads(file, &LoadOptions::default(), &route_for(2), &mut targets, 2, &|_| {});
        (shards, r)
    };
    let bad_intset = |out: &mut Vec<u8>| out.extend_from_slice(b"\x0b\x03bad\x03\x01\x02\x03");
    let mut body = Vec::new();
    many_keys(&mut body, 0, 40_000);
    let file = rdb(&body);
    let (shards, r) = load_slow(&file);
    let r = r.unwrap();
    assert_eq!(r.keys_loaded, 40_000);
    let mut seq = Keyspace::new(16);
    load(&file, &LoadOptions::default(), &mut seq).unwrap();
    let all = merged(&shards.into_iter().map(|s| s.ks).collect::<Vec<_>>(), 16);
    assert_eq!(digest(&all), digest(&seq));
    // A damaged value met by the scan while decoding for a stalled shard, with and without an earlier
    // duplicate (met by a shard thread): each time the error of a sequential load.
    for dup in [false, true] {
        let mut body = Vec::new();
        many_keys(&mut body, 0, 30_000);
        if dup {
            string_key(&mut body, b"key:5", b"again");
        }
        many_keys(&mut body, 30_000, 35_000);
        bad_intset(&mut body);
        many_keys(&mut body, 35_000, 40_000);
        let file = rdb(&body);
        let want = load(&file, &LoadOptions::default(), &mut Keyspace::new(16)).unwrap_err();
        let got = load_slow(&file).1.unwrap_err();
        same_error(&want, &got, "stalled shard");
        assert_eq!(got.code(), if dup { "duplicate-key" } else { "bad-blob" });
    }
}

/// Entries the scan builds for a stalled shard keep their expiry, drop expired keys and count both exactly
/// as a sequential load does.
#[test]
fn entries_built_by_the_scan_keep_expiry_and_counts() {
    let mut body = Vec::new();
    for i in 0..30_000u64 {
        if i % 3 != 0 {
            // Every third key has no TTL; of the others, half expired long ago.
            let at: i64 = if i % 2 == 0 { 1_000 + i as i64 } else { 4_102_444_800_000 + i as i64 };
            body.push(0xfc);
            body.extend_from_slice(&at.to_le_bytes());
        }
        string_key(&mut body, format!("key:{i}").as_bytes(), format!("v{i}").as_bytes());
    }
    let file = rdb(&body);
    let opts = LoadOptions { drop_expired_before_ms: Some(1_700_000_000_000), ..LoadOptions::default() };
    let mut seq = Keyspace::new(16);
    let want = load(&file, &opts, &mut seq).unwrap();
    let mut shards: Vec<Slow> = (0..2).map(|_| Slow { ks: Keyspace::new(16), stalled: false }).collect();
    let mut targets: Vec<&mut dyn ShardTarget> = shards.iter_mut().map(|k| k as &mut dyn ShardTarget).collect();
    let got = load_on_threads(&file, &opts, &route_for(2), &mut targets, 2, &|_| {}).unwrap();
    same_report(&want, &got, "stalled shards with expiry");
    assert!(want.expired_dropped > 0 && want.expires_loaded > 0);
    let shards: Vec<Keyspace> = shards.into_iter().map(|s| s.ks).collect();
    assert_eq!(shards.iter().map(|s| s.dbs[0].expires_count()).sum::<usize>(), seq.dbs[0].expires_count());
    for e in seq.dbs[0].table.iter() {
        let found = shards[route_for(2)(e.key())].dbs[0].get(e.key()).expect("key in its shard");
        assert_eq!((found.expire_at(), &found.value), (e.expire_at(), &e.value));
    }
}

#[test]
fn a_file_of_several_crc_steps_verifies_and_any_changed_byte_fails_as_in_a_sequential_load() {
    // About 1.2 MB: the scan folds the CRC in every 256 KB, and finishes it after EOF.
    let mut body = Vec::new();
    for i in 0..20_000 {
        string_key(&mut body, format!("key:{i}").as_bytes(), format!("{i:0>50}").as_bytes());
    }
    let file = rdb(&body);
    let opts = LoadOptions::default();
    for n in [1, 2] {
        agree(&file, &opts, n, &format!("{n} shards"));
        let (_, r) = load_n(&file, &opts, n);
        assert!(matches!(r.map(|r| r.checksum), Ok(ChecksumStatus::Verified(_))));
    }
    // A digit of a value changed before, inside and after the steps' boundaries: the file still parses, so
    // only the CRC finds it, with the same error (expected and stored CRCs, offset) as a sequential load.
    for at in [20, 256 * 1024 - 1, 256 * 1024, 700_001, file.len() - 40] {
        let mut bad = file.clone();
        let digit = (at..).find(|&i| bad[i].is_ascii_digit() && bad[i - 1].is_ascii_digit()).expect("a digit");
        bad[digit] = if bad[digit] == b'7' { b'8' } else { b'7' };
        for n in [1, 2] {
            agree(&bad, &opts, n, &format!("digit at {digit}, {n} shards"));
            let (_, r) = load_n(&bad, &opts, n);
            let e = r.expect_err("a changed byte must fail the checksum");
            assert!(e.to_string().contains("checksum") || e.to_string().contains("CRC"), "{e}");
        }
    }
}

/// A shard that checks that no key it inserts lies in the part of the file the loader said it was done with.
struct Watch<'a> {
    ks: Keyspace,
    file: &'a [u8],
    released: &'a AtomicUsize,
    late_reads: &'a AtomicUsize,
}

impl LoadTarget for Watch<'_> {
    fn resize(&mut self, db: usize, keys: u64, expires: u64) {
        self.ks.resize(db, keys, expires);
    }

    fn insert(&mut self, db: usize, key: &[u8], value: Value, expire_at: Option<i64>) -> Result<(), RdbError> {
        // Keys borrowed from the file (the scan's own entries carry copies, which say nothing).
        let at = (key.as_ptr() as usize).wrapping_sub(self.file.as_ptr() as usize);
        if at < self.file.len() && at < self.released.load(Ordering::SeqCst) {
            self.late_reads.fetch_add(1, Ordering::SeqCst);
        }
        self.ks.insert(db, key, value, expire_at)
    }
}

/// A [`Watch`] that takes its time over every batch.
struct Slowly<'a>(Watch<'a>);

impl ShardTarget for Slowly<'_> {
    fn batch(&mut self, f: &mut dyn FnMut(&mut dyn LoadTarget)) {
        std::thread::sleep(std::time::Duration::from_micros(300));
        f(&mut self.0)
    }
}

#[test]
fn released_bytes_are_never_read_again() {
    let mut body = Vec::new();
    many_keys(&mut body, 0, 100_000);
    let file = rdb(&body);
    let mut want = Keyspace::new(16);
    load(&file, &LoadOptions::default(), &mut want).unwrap();
    for (shards, threads) in [(1, 1), (2, 1), (2, 2), (3, 2)] {
        let (released, late_reads) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let calls = std::sync::Mutex::new(Vec::new());
        let mut parts: Vec<Slowly> = (0..shards)
            .map(|_| Slowly(Watch { ks: Keyspace::new(16), file: &file, released: &released, late_reads: &late_reads }))
            .collect();
        let mut targets: Vec<&mut dyn ShardTarget> = parts.iter_mut().map(|k| k as &mut dyn ShardTarget).collect();
        let release = |n: usize| {
            calls.lock().unwrap().push(n);
            released.store(n, Ordering::SeqCst);
        };
        let r = load_on_threads(&file, &LoadOptions::default(), &route_for(shards), &mut targets, threads, &release);
        assert_eq!(r.unwrap().keys_loaded, 100_000);
        let what = format!("{shards} shards on {threads} threads");
        assert_eq!(late_reads.load(Ordering::SeqCst), 0, "{what}: keys read after their bytes were released");
        // Released as the scan goes, each time further.
        let calls = calls.into_inner().unwrap();
        assert!(calls.len() > 2 && calls.windows(2).all(|w| w[0] < w[1]), "{what}: {calls:?}");
        // The file goes before the shard threads are done, but for their last batches (up to 8k keys each
        // while the threads are behind: a large share of this small file).
        let n = released.load(Ordering::SeqCst);
        assert!(n > 0 && n < file.len(), "{what}: released {n} of {}", file.len());
        let all = merged(&parts.into_iter().map(|p| p.0.ks).collect::<Vec<_>>(), 16);
        assert_eq!(digest(&all), digest(&want), "{what}");
    }
    // A load that fails at the end has released only what it passed, not the end of the file.
    let last = AtomicUsize::new(0);
    let mut ks = Keyspace::new(16);
    let mut targets: Vec<&mut dyn ShardTarget> = vec![&mut ks];
    let cut = &file[..file.len() - 3];
    let e = load_on_threads(cut, &LoadOptions::default(), &route_for(1), &mut targets, 1, &|n| {
        last.fetch_max(n, Ordering::SeqCst);
    });
    assert!(e.is_err());
    assert!(last.load(Ordering::SeqCst) < cut.len() - 1000);
}
