//! Every fixture loads to what redis-server 7.0.15 reported (DEBUG DIGEST, per-db counts) or fails with the
//! expected kind; load details (AUX, functions, skipped values, encodings chosen, expiry) on specific files.

use super::super::{
    decode_value, dump_payload, load, load_file, verify_dump_payload, ChecksumStatus, LoadOptions, WriteOptions,
    RDB_VERSION,
};
use super::{db_summary, digest, expected, fixture, load_into, Expect};
use crate::config::EngineConfig;
use crate::keyspace::Keyspace;

#[test]
fn every_fixture_loads_as_redis_did_or_fails_as_expected() {
    let all = expected();
    assert!(all.len() > 50, "expected.txt looks truncated");
    for (file, want) in all {
        let bytes = fixture(&file);
        let (ks, r) = load_into(&bytes, &LoadOptions::default());
        match want {
            Expect::Ok { digest: d, dbs } => {
                let report = r.unwrap_or_else(|e| panic!("{file}: {e}"));
                assert_eq!(digest(&ks), d, "{file}: digest");
                assert_eq!(db_summary(&ks), dbs, "{file}: keys/expires per db");
                assert_eq!(report.bytes_consumed, bytes.len(), "{file}: consumed");
            }
            Expect::Err { code } => {
                let e = r.err().unwrap_or_else(|| panic!("{file}: loaded, expected {code}"));
                assert_eq!(e.code(), code, "{file}: {e}");
                assert!(e.to_string().contains(" at offset "), "{e}");
            }
        }
    }
}

fn encoding(ks: &Keyspace, db: usize, key: &str) -> &'static str {
    ks.dbs[db].get(key.as_bytes()).unwrap_or_else(|| panic!("{key} missing")).value.encoding_name()
}

#[test]
fn all_types_details() {
    let (ks, r) = load_into(&fixture("all-types.rdb"), &LoadOptions::default());
    let r = r.unwrap();
    assert_eq!(r.version, 10);
    assert!(!r.valkey);
    assert_eq!(r.aux("redis-ver"), Some(&b"7.0.15"[..]));
    assert_eq!(r.aux("redis-bits"), Some(&b"64"[..]));
    assert!(!r.is_aof_base());
    assert!(matches!(r.checksum, ChecksumStatus::Verified(_)));
    assert_eq!(r.keys_loaded, 47);
    assert_eq!(r.expires_loaded, 7);
    assert_eq!(r.dbs[&0].resize_hint, Some((42, 6)));
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    for (key, enc) in [
        ("s:int16", "int"),
        ("s:small", "embstr"),
        ("s:big", "raw"),
        ("s:lzf", "raw"),
        ("s:noncanon", "embstr"),
        ("l:big", "quicklist"),
        ("set:i16", "intset"),
        ("set:i64", "intset"),
        ("set:str", "hashtable"),
        ("set:manyints", "hashtable"),
        ("h:small", "listpack"),
        ("h:big", "hashtable"),
        ("h:longval", "hashtable"),
        ("z:small", "listpack"),
        ("z:big", "skiplist"),
        ("z:longmember", "skiplist"),
    ] {
        assert_eq!(encoding(&ks, 0, key), enc, "{key}");
    }
    assert_eq!(ks.dbs[0].expire_of(b"s:ttl"), Some(4_102_444_800_000));
}

#[test]
fn expired_keys_dropped_only_when_asked() {
    let bytes = fixture("all-types.rdb");
    // After 2030-03-17 (the "near" TTLs) and before 2100 (the others).
    let opts = LoadOptions { drop_expired_before_ms: Some(1_900_000_000_001), ..LoadOptions::default() };
    let (ks, r) = load_into(&bytes, &opts);
    let r = r.unwrap();
    assert_eq!(r.expired_dropped, 2);
    assert_eq!(r.keys_loaded, 45);
    assert!(ks.dbs[0].get(b"s:ttl-near").is_none() && ks.dbs[0].get(b"set:ttl").is_none());
    assert!(ks.dbs[0].get(b"s:ttl").is_some());
    // Exactly at the deadline the key is kept (Redis drops only `expire < now`).
    let opts = LoadOptions { drop_expired_before_ms: Some(1_900_000_000_000), ..LoadOptions::default() };
    assert_eq!(load_into(&bytes, &opts).1.unwrap().expired_dropped, 0);
}

#[test]
fn loading_applies_the_configured_thresholds() {
    let bytes = fixture("small-limits.rdb");
    // Saved with tiny limits (types 2, 4, 5); the default limits bring them back to the small encodings.
    let (ks, r) = load_into(&bytes, &LoadOptions::default());
    r.unwrap();
    for (key, enc) in [("h", "listpack"), ("z", "listpack"), ("s", "intset"), ("sx", "hashtable")] {
        assert_eq!(encoding(&ks, 0, key), enc, "{key}");
    }
    let cfg = EngineConfig {
        hash_max_listpack_entries: 2,
        zset_max_listpack_entries: 2,
        set_max_intset_entries: 2,
        ..EngineConfig::default()
    };
    let (ks, r) = load_into(&bytes, &LoadOptions { cfg: cfg.clone(), ..LoadOptions::default() });
    r.unwrap();
    for (key, enc) in [("h", "hashtable"), ("z", "skiplist"), ("s", "hashtable")] {
        assert_eq!(encoding(&ks, 0, key), enc, "{key}");
    }
    // Listpack blobs convert by count only, as 7.0 does: a long value keeps a small hash a listpack.
    let cfg = EngineConfig { hash_max_listpack_value: 4, zset_max_listpack_value: 4, ..EngineConfig::default() };
    let (ks, r) = load_into(&fixture("hand-v10-listpacks.rdb"), &LoadOptions { cfg, ..LoadOptions::default() });
    r.unwrap();
    assert_eq!(encoding(&ks, 0, "hlp"), "listpack");
}

#[test]
fn functions_streams_modules_and_empty_keys_are_reported() {
    let (_, r) = load_into(&fixture("functions.rdb"), &LoadOptions::default());
    let r = r.unwrap();
    assert_eq!(r.functions.len(), 2);
    assert!(r.functions.iter().any(|f| f.starts_with(b"#!lua name=mylib\n")));

    let (_, r) = load_into(&fixture("streams.rdb"), &LoadOptions::default());
    let r = r.unwrap();
    assert_eq!(r.streams_skipped, 2);
    assert_eq!(r.skipped_samples.len(), 2);
    assert!(r.warnings()[0].contains("2 stream key(s) skipped"), "{:?}", r.warnings());

    let (_, r) = load_into(&fixture("legacy-v9-misc.rdb"), &LoadOptions::default());
    let r = r.unwrap();
    assert_eq!((r.streams_skipped, r.modules_skipped, r.module_aux_skipped), (1, 1, 2));
    assert!(r.skipped_samples.iter().any(|s| format!("{:?}", s.kind).contains("mymodule1")));

    let (_, r) = load_into(&fixture("hand-v10-empty-keys.rdb"), &LoadOptions::default());
    assert_eq!(r.unwrap().empty_skipped, 11);

    let (_, r) = load_into(&fixture("v11-set-listpack.rdb"), &LoadOptions::default());
    assert_eq!(r.unwrap().streams_skipped, 2);
    let (ks, r) = load_into(&fixture("valkey081.rdb"), &LoadOptions::default());
    let r = r.unwrap();
    assert!(r.valkey && r.version == 81);
    assert_eq!(encoding(&ks, 2, "slp-ints"), "intset");
    assert_eq!(encoding(&ks, 2, "slp-mixed"), "hashtable");
}

#[test]
fn checksum_states_and_aof_preamble() {
    let (_, r) = load_into(&fixture("nocompress.rdb"), &LoadOptions::default());
    assert_eq!(r.unwrap().checksum, ChecksumStatus::Disabled);
    let (_, r) = load_into(&fixture("legacy-v3.rdb"), &LoadOptions::default());
    assert_eq!(r.unwrap().checksum, ChecksumStatus::Absent);
    let bad = fixture("corrupt-bad-crc.rdb");
    let (_, r) = load_into(&bad, &LoadOptions { verify_checksum: false, ..LoadOptions::default() });
    assert!(matches!(r.unwrap().checksum, ChecksumStatus::NotChecked(_)));

    // An AOF with an RDB preamble: the loader stops after the CRC and says where the commands start.
    let mut aof = fixture("lru.rdb");
    let rdb_len = aof.len();
    aof.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    let (ks, r) = load_into(&aof, &LoadOptions::default());
    assert_eq!(r.unwrap().bytes_consumed, rdb_len);
    assert_eq!(ks.dbs[0].len(), 2);
}

/// Redis's DUMP of every key of all-types: RESTORE's decoder gives the value loaded from the file, and
/// Moon's DUMP gives the same bytes wherever the encoding is deterministic (everything but hashtable
/// iteration order and lists built by LPUSH, whose node split depends on history).
#[test]
fn dump_payloads_match_redis() {
    let (ks, r) = load_into(&fixture("all-types.rdb"), &LoadOptions::default());
    r.unwrap();
    let cfg = EngineConfig::default();
    let opts = WriteOptions::from_config(&cfg);
    let order_dependent = ["set:str", "set:big", "set:manyints", "set:lzf", "h:big", "h:longval"];
    let (mut exact, mut differ) = (0, Vec::new());
    for line in include_str!("../../../../fixtures/rdb/all-types.dumps").lines() {
        let mut parts = line.split(' ');
        let db: usize = parts.next().unwrap().parse().unwrap();
        let key = parts.next().unwrap();
        let payload = hex(parts.next().unwrap());
        let (ty, body) = verify_dump_payload(&payload).expect("valid redis payload");
        let decoded = decode_value(ty, body, &cfg).unwrap().expect("not empty");
        let loaded = &ks.dbs[db].get(key.as_bytes()).expect("key").value;
        assert_eq!(&decoded, loaded, "{key}");
        let ours = dump_payload(loaded, &opts);
        if key == "l:lpush" {
            continue;
        } else if order_dependent.contains(&key) {
            assert_eq!(ours.len(), payload.len(), "{key}: same size at least");
        } else if ours == payload {
            exact += 1;
        } else {
            differ.push(format!("{key}:\n ours {}\nredis {}", to_hex(&ours), to_hex(&payload)));
        }
    }
    assert!(differ.is_empty(), "DUMP differs from Redis's for\n{}", differ.join("\n"));
    assert!(exact >= 40, "{exact}");
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn load_file_reads_and_reports_io_errors() {
    let mut ks = Keyspace::new(16);
    let r = load_file(&super::fixture_path("lru.rdb"), &LoadOptions::default(), &mut ks).unwrap();
    assert_eq!(r.keys_loaded, 2);
    let missing = super::fixture_path("no-such-file.rdb");
    let e = load_file(&missing, &LoadOptions::default(), &mut ks).unwrap_err();
    assert_eq!(e.code(), "io");
    assert!(e.to_string().contains("no-such-file.rdb"), "{e}");
}

#[test]
fn dump_payload_footer_rules() {
    let v = crate::types::Value::Str(crate::types::StrValue::from_bytes(b"hello"));
    let p = dump_payload(&v, &WriteOptions::default());
    assert_eq!(&p[p.len() - 10..p.len() - 8], &(RDB_VERSION as u16).to_le_bytes());
    assert!(verify_dump_payload(&p).is_some());
    let mut bad = p.clone();
    bad[1] ^= 1;
    assert!(verify_dump_payload(&bad).is_none());
    assert!(verify_dump_payload(&p[..9]).is_none());
    // A payload from a newer RDB version is refused even with a matching CRC.
    let mut newer = p[..p.len() - 10].to_vec();
    newer.extend_from_slice(&11u16.to_le_bytes());
    let crc = super::super::crc64::crc64(&newer);
    newer.extend_from_slice(&crc.to_le_bytes());
    assert!(verify_dump_payload(&newer).is_none());
    // An empty file is not an RDB.
    assert_eq!(load(b"", &LoadOptions::default(), &mut Keyspace::new(16)).unwrap_err().code(), "unexpected-eof");
}
