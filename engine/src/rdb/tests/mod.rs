//! Tests of the RDB loader and writer: files written by redis-server 7.0.15 and hand-built legacy, newer and
//! corrupt files (fixtures/rdb/, see make-fixtures.sh there), round trips, damage, and, when it is
//! installed, the real redis-server loading what Moon writes.

mod corrupt;
mod fixtures;
mod parallel;
mod redis;
mod roundtrip;

use super::{load, LoadOptions, LoadReport, RdbError};
use crate::digest::{dataset_digest, to_hex};
use crate::keyspace::Keyspace;
use std::path::PathBuf;

pub(super) fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/rdb").join(name)
}

pub(super) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Loads `bytes` into a fresh 16-database keyspace.
pub(super) fn load_into(bytes: &[u8], opts: &LoadOptions) -> (Keyspace, Result<LoadReport, RdbError>) {
    let mut ks = Keyspace::new(opts.cfg.databases);
    let r = load(bytes, opts, &mut ks);
    (ks, r)
}

pub(super) fn digest(ks: &Keyspace) -> String {
    to_hex(&dataset_digest(ks))
}

/// `<db>:<keys>/<expires>` for every non-empty database, as expected.txt records them.
pub(super) fn db_summary(ks: &Keyspace) -> String {
    let parts: Vec<String> = ks
        .dbs
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.is_empty())
        .map(|(i, d)| format!("{i}:{}/{}", d.len(), d.expires_count()))
        .collect();
    parts.join(" ")
}

/// One line of fixtures/rdb/expected.txt.
pub(super) enum Expect {
    Ok { digest: String, dbs: String },
    Err { code: String },
}

pub(super) fn expected() -> Vec<(String, Expect)> {
    include_str!("../../../../fixtures/rdb/expected.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let file = parts.next().expect("file").to_string();
            let e = match parts.next() {
                Some("ok") => Expect::Ok {
                    digest: parts.next().expect("digest").to_string(),
                    dbs: parts.collect::<Vec<_>>().join(" "),
                },
                Some("err") => Expect::Err { code: parts.next().expect("kind").to_string() },
                other => panic!("bad expected.txt line {l:?}: {other:?}"),
            };
            (file, e)
        })
        .collect()
}
