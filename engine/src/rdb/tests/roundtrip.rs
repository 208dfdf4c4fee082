//! Moon -> bytes -> Moon keeps the dataset: for every fixture, for a dataset built by commands, for every
//! writer option, and for a large generated dataset (the timing-free stand-in for a load benchmark).

use super::super::{load, save_keyspace, ChecksumStatus, LoadOptions, RdbWriter, WriteOptions};
use super::{db_summary, digest, expected, fixture, load_into, Expect};
use crate::cmd::testkit::Kit;
use crate::config::EngineConfig;
use crate::keyspace::Keyspace;
use crate::types::{HashValue, ListValue, SetValue, StrValue, Value, ZSetValue};

fn save(ks: &Keyspace, opts: &WriteOptions) -> Vec<u8> {
    save_keyspace(ks, Vec::new(), opts, false).expect("write to a Vec")
}

/// Saves `ks`, loads the bytes back, and checks nothing changed.
fn roundtrip(ks: &Keyspace, opts: &WriteOptions) -> Vec<u8> {
    let bytes = save(ks, opts);
    let (back, r) = load_into(&bytes, &LoadOptions::default());
    let r = r.unwrap_or_else(|e| panic!("reloading Moon's file: {e}"));
    assert_eq!(digest(&back), digest(ks));
    assert_eq!(db_summary(&back), db_summary(ks));
    assert_eq!(r.bytes_consumed, bytes.len());
    assert_eq!(r.version, 10);
    bytes
}

#[test]
fn every_valid_fixture_survives_a_round_trip() {
    for (file, want) in expected() {
        if let Expect::Ok { .. } = want {
            let (ks, r) = load_into(&fixture(&file), &LoadOptions::default());
            r.unwrap();
            roundtrip(&ks, &WriteOptions::default());
        }
    }
}

#[test]
fn writer_options() {
    let (ks, r) = load_into(&fixture("all-types.rdb"), &LoadOptions::default());
    r.unwrap();
    let plain = WriteOptions { compression: false, checksum: false, ..WriteOptions::default() };
    let bytes = roundtrip(&ks, &plain);
    assert_eq!(&bytes[bytes.len() - 8..], &[0; 8]);
    let (_, r) = load_into(&bytes, &LoadOptions::default());
    assert_eq!(r.unwrap().checksum, ChecksumStatus::Disabled);
    let compressed = roundtrip(&ks, &WriteOptions::default());
    assert!(compressed.len() < bytes.len());
    // Other list node sizes change the layout, not the data.
    for fill in [-1, -5, 1, 100] {
        roundtrip(&ks, &WriteOptions { list_max_listpack_size: fill, ..WriteOptions::default() });
    }
}

/// The header is 7.0.15's (FORMATS.md §4.7) and output is deterministic for a fixed ctime.
#[test]
fn header_bytes_and_determinism() {
    let opts = WriteOptions { ctime_secs: Some(1_795_506_831), ..WriteOptions::default() };
    let ks = Keyspace::new(16);
    let empty = save(&ks, &opts);
    let mut want = b"REDIS0010".to_vec();
    want.extend_from_slice(b"\xfa\x09redis-ver\x067.0.15\xfa\x0aredis-bits\xc0\x40");
    want.extend_from_slice(b"\xfa\x05ctime\xc2");
    want.extend_from_slice(&1_795_506_831i32.to_le_bytes());
    want.extend_from_slice(b"\xfa\x08used-mem\xc0\x00\xfa\x08aof-base\xc0\x00\xff");
    assert_eq!(&empty[..empty.len() - 8], &want[..]);
    let crc = super::super::crc64::crc64(&want);
    assert_eq!(&empty[empty.len() - 8..], &crc.to_le_bytes());

    let mut w = RdbWriter::new(Vec::new(), opts.clone());
    w.write_header(true).unwrap();
    w.write_function(b"#!lua name=f\nredis.register_function('f', function() return 1 end)").unwrap();
    w.select_db(3, 1, 1).unwrap();
    w.write_entry(b"k", &Value::Str(StrValue::from_bytes(b"v")), Some(4_102_444_800_000)).unwrap();
    let bytes = w.finish().unwrap();
    let mut ks = Keyspace::new(16);
    let r = load(&bytes, &LoadOptions::default(), &mut ks).unwrap();
    assert!(r.is_aof_base());
    assert_eq!(r.functions.len(), 1);
    assert_eq!(ks.dbs[3].expire_of(b"k"), Some(4_102_444_800_000));

    let (all, r) = load_into(&fixture("all-types.rdb"), &LoadOptions::default());
    r.unwrap();
    assert_eq!(save(&all, &opts), save(&all, &opts));
}

/// The dataset of fixtures/digest (every type and encoding, built by commands) round-trips, keeping the
/// digest redis-server gave for it.
#[test]
fn command_built_dataset() {
    let mut k = Kit::new();
    for line in include_str!("../../../../fixtures/digest/mixed.txt").lines() {
        assert!(!k.run(line).is_error(), "{line}");
    }
    let want = include_str!("../../../../fixtures/digest/expected.txt").lines().next().unwrap();
    assert_eq!(format!("digest {}", digest(&k.ks)), want);
    roundtrip(&k.ks, &WriteOptions::default());
}

/// A generated dataset of about 25k keys and 600k elements in every encoding. No timing: a load benchmark
/// belongs in benches; this checks the fast paths at a size where quadratic behaviour would show.
#[test]
fn large_generated_dataset() {
    let ks = big_keyspace(&EngineConfig::default());
    let bytes = roundtrip(&ks, &WriteOptions::default());
    let (_, r) = load_into(&bytes, &LoadOptions::default());
    let r = r.unwrap();
    assert_eq!(r.keys_loaded, ks.dbs.iter().map(|d| d.len() as u64).sum::<u64>());
    assert_eq!(r.dbs[&0].resize_hint, Some((ks.dbs[0].len() as u64, ks.dbs[0].expires_count() as u64)));
}

pub(super) fn big_keyspace(cfg: &EngineConfig) -> Keyspace {
    let mut ks = Keyspace::new(16);
    let db = &mut ks.dbs[0];
    for i in 0..20_000u32 {
        let v = if i % 3 == 0 { i.to_string() } else { format!("value-{i}-{}", "x".repeat((i % 70) as usize)) };
        let exp = (i % 10 == 0).then_some(4_102_444_800_000 + i64::from(i));
        db.insert(format!("str:{i}").as_bytes(), Value::Str(StrValue::from_bytes(v.as_bytes())), exp);
    }
    for i in 0..100u32 {
        let items: Vec<String> = (0..2000u32).map(|j| format!("{i}:{j}")).collect();
        let l: ListValue = items.iter().map(|s| s.as_bytes()).collect();
        db.insert(format!("list:{i}").as_bytes(), Value::List(Box::new(l)), None);
    }
    for i in 0..1000u32 {
        let mut h = HashValue::new();
        for j in 0..(if i % 20 == 0 { 2000 } else { 20 }) {
            h.set(format!("f{j}").as_bytes(), format!("{}", i * j).as_bytes(), cfg);
        }
        db.insert(format!("hash:{i}").as_bytes(), Value::Hash(h), None);
    }
    for i in 0..1000u32 {
        let members: Vec<String> =
            (0..(if i % 20 == 0 { 1000 } else { 10 })).map(|j| (j * 7 + i).to_string()).collect();
        let mut s = SetValue::from_members(members.iter().map(|m| m.as_bytes()), cfg);
        if i % 2 == 0 {
            s.add(b"not-a-number", cfg);
        }
        db.insert(format!("set:{i}").as_bytes(), Value::Set(s), None);
    }
    for i in 0..1000u32 {
        let mut z = ZSetValue::new();
        let lim = crate::types::zset::Limits::from_config(cfg);
        for j in 0..(if i % 20 == 0 { 3000 } else { 30 }) {
            z.insert(format!("m{j}").as_bytes(), f64::from(j) * 0.37 - 100.0, lim);
        }
        db.insert(format!("zset:{i}").as_bytes(), Value::ZSet(z), None);
    }
    ks
}
