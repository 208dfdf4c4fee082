//! Damage of every kind fails cleanly: truncation at every offset, flipped bytes, random rewrites, and
//! hostile lengths that would make a naive loader allocate the machine away.

use super::super::{load, Discard, LoadOptions, LoadTarget, RdbError};
use super::{fixture, load_into};
use crate::keyspace::Keyspace;
use crate::types::Value;

/// Small files covering every opcode and most encodings.
const SMALL: &[&str] = &[
    "lru.rdb",
    "lfu.rdb",
    "functions.rdb",
    "nocompress.rdb",
    "legacy-v3.rdb",
    "legacy-v9-misc.rdb",
    "legacy-v7-quicklist.rdb",
    "hand-v10-empty-keys.rdb",
    "v11-set-listpack.rdb",
    "v12-slot-info.rdb",
    "valkey080.rdb",
    "small-limits.rdb",
];

#[test]
fn every_truncation_fails_with_unexpected_eof() {
    for name in SMALL {
        let bytes = fixture(name);
        for cut in 0..bytes.len() {
            let (_, r) = load_into(&bytes[..cut], &LoadOptions::default());
            let e = r.err().unwrap_or_else(|| panic!("{name} cut at {cut} loaded"));
            assert_eq!(e.code(), "unexpected-eof", "{name} cut at {cut}: {e}");
            assert!(e.offset() <= cut as u64, "{name} cut at {cut}: {e}");
        }
    }
}

/// With the checksum verified, any single changed byte is caught; without it, decoding the damaged
/// structure must still never panic.
#[test]
fn flipped_bytes_never_panic_and_are_caught_by_the_crc() {
    let unchecked = LoadOptions { verify_checksum: false, ..LoadOptions::default() };
    for name in SMALL {
        let bytes = fixture(name);
        let crc_protected = !matches!(*name, "nocompress.rdb" | "legacy-v3.rdb");
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x40, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= mask;
                let _ = load(&bad, &unchecked, &mut Discard);
                let _ = load_into(&bad, &unchecked);
                // A changed version digit may turn the file into a pre-checksum (< 5) one.
                if crc_protected && !(5..9).contains(&i) {
                    let r = load(&bad, &LoadOptions::default(), &mut Discard);
                    assert!(r.is_err(), "{name}: byte {i} ^ {mask:#x} went unnoticed");
                }
            }
        }
    }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_rewrites_of_big_files_never_panic() {
    let unchecked = LoadOptions { verify_checksum: false, ..LoadOptions::default() };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for name in ["all-types.rdb", "legacy-v6-ziplist.rdb", "hand-v10-listpacks.rdb", "streams.rdb"] {
        let bytes = fixture(name);
        for _ in 0..150 {
            let mut bad = bytes.clone();
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(bad.len());
                bad[i] = rng.next() as u8;
            }
            if rng.below(4) == 0 {
                bad.truncate(rng.below(bad.len()));
            }
            let _ = load(&bad, &unchecked, &mut Discard);
        }
    }
}

/// A target that records the RESIZEDB hints it gets.
#[derive(Default)]
struct Hints(Vec<(u64, u64)>);

impl LoadTarget for Hints {
    fn resize(&mut self, _db: usize, keys: u64, expires: u64) {
        self.0.push((keys, expires));
    }
    fn insert(&mut self, _: usize, _: &[u8], _: Value, _: Option<i64>) -> Result<(), RdbError> {
        Ok(())
    }
}

fn file(body: &[u8]) -> Vec<u8> {
    let mut f = b"REDIS0010\xfe\x00".to_vec();
    f.extend_from_slice(body);
    f.extend_from_slice(b"\xff\0\0\0\0\0\0\0\0");
    f
}

#[test]
fn hostile_lengths_are_refused_before_allocating() {
    // RESIZEDB claiming 2^60 keys: the hint is capped by what the file can hold.
    let f = file(b"\xfb\x81\x10\0\0\0\0\0\0\0\x81\x10\0\0\0\0\0\0\0");
    let mut hints = Hints::default();
    load(&f, &LoadOptions::default(), &mut hints).unwrap();
    assert!(hints.0[0].0 < 16 && hints.0[0].1 < 16, "{:?}", hints.0);
    load(&f, &LoadOptions::default(), &mut Keyspace::new(16)).unwrap();

    let cases: &[(&[u8], &str)] = &[
        // A list, set, hash and zset of 2^62 elements.
        (b"\x01\x01k\x81\x40\0\0\0\0\0\0\0", "unexpected-eof"),
        (b"\x02\x01k\x81\x40\0\0\0\0\0\0\0", "unexpected-eof"),
        (b"\x04\x01k\x81\x40\0\0\0\0\0\0\0", "unexpected-eof"),
        (b"\x05\x01k\x81\x40\0\0\0\0\0\0\0", "unexpected-eof"),
        (b"\x12\x01k\x81\x40\0\0\0\0\0\0\0", "unexpected-eof"),
        // A string of 2^62 bytes, and an LZF string claiming to inflate 3 bytes into 2^40.
        (b"\x00\x01k\x81\x40\0\0\0\0\0\0\0", "unexpected-eof"),
        (b"\x00\x01k\xc3\x03\x81\0\0\x01\0\0\0\0\0\x00a\x00", "bad-lzf"),
        // An intset claiming 2^31 members in 8 bytes.
        (b"\x0b\x01k\x08\x02\0\0\0\0\0\0\x80", "bad-blob"),
        // A stream with 2^40 consumer groups.
        (b"\x0f\x01k\x00\x00\x00\x00\x81\0\0\x01\0\0\0\0\0", "unexpected-eof"),
        // A 64-bit key length.
        (b"\x00\x81\xff\xff\xff\xff\xff\xff\xff\xff", "unexpected-eof"),
    ];
    for (body, code) in cases {
        let e = load(&file(body), &LoadOptions::default(), &mut Keyspace::new(16)).unwrap_err();
        assert_eq!(e.code(), *code, "{body:?}: {e}");
    }
}

#[test]
fn errors_name_the_key_and_what_was_read() {
    let f = b"REDIS0010\xfe\x00\x00\x03foo\x05ab";
    let e = load(f, &LoadOptions::default(), &mut Keyspace::new(16)).unwrap_err();
    assert_eq!(e.key(), Some(&b"foo"[..]));
    assert_eq!(e.doing().check_rdb_name(), "read-object-value");
    assert_eq!(e.to_string(), "Unexpected EOF reading RDB file at offset 16 (while reading object value of key 'foo')");

    let e = load(&fixture("corrupt-dup-key.rdb"), &LoadOptions::default(), &mut Keyspace::new(16)).unwrap_err();
    assert_eq!(e.key(), Some(&b"k"[..]));
    assert!(e.to_string().starts_with("Duplicated key found in RDB file at offset "), "{e}");

    let e = load(&fixture("corrupt-future-version.rdb"), &LoadOptions::default(), &mut Discard).unwrap_err();
    assert!(e.to_string().starts_with("Can't handle RDB format version 13 ("), "{e}");
    assert!(e.to_string().contains("REDIS0012"), "names the highest supported: {e}");

    let e = load(&fixture("corrupt-bad-type.rdb"), &LoadOptions::default(), &mut Discard).unwrap_err();
    assert_eq!((e.offset(), e.doing().check_rdb_name()), (11, "read-type"), "{e}");
    assert_eq!(e.to_string(), "Invalid object type: 8 at offset 11 (while reading type)");

    // Fewer configured databases than the file uses.
    let cfg = crate::config::EngineConfig { databases: 4, ..Default::default() };
    let opts = LoadOptions { cfg, ..LoadOptions::default() };
    let e = load(&fixture("all-types.rdb"), &opts, &mut Keyspace::new(4)).unwrap_err();
    assert_eq!(e.code(), "db-index", "{e}");
}
