//! `DEBUG DIGEST` and `DEBUG DIGEST-VALUE`, computing exactly Redis 7.0's values (`debug.c`): per key a SHA1
//! chain mixing the key, the type, the value's elements (ordered types mixed, unordered types XORed) and an
//! expiry marker; keys XORed together per database, so the result does not depend on iteration order or on
//! how keys are spread over shards. Logically expired keys still in memory count, as in Redis.

use crate::keyspace::Store;
use crate::resp::format_double_g17;
use crate::table::Entry;
use crate::types::{StrValue, Value};
use sha1_smol::Sha1;

/// A 20-byte digest.
pub type Digest = [u8; 20];

fn sha1(data: &[u8]) -> Digest {
    Sha1::from(data).digest().bytes()
}

/// XORs SHA1(data) into `d` (order independent).
fn xor_digest(d: &mut Digest, data: &[u8]) {
    for (a, b) in d.iter_mut().zip(sha1(data)) {
        *a ^= b;
    }
}

/// XORs SHA1(data) into `d`, then replaces `d` by SHA1(d) (order dependent).
fn mix_digest(d: &mut Digest, data: &[u8]) {
    xor_digest(d, data);
    *d = sha1(&d[..]);
}

/// Mixes a value (and its expiry marker) into `d`, as Redis's `xorObjectDigest`.
fn mix_value(d: &mut Digest, value: &Value, has_expire: bool) {
    mix_digest(d, &(value.kind() as u32).to_be_bytes());
    match value {
        Value::Str(s) => mix_str(d, s),
        Value::List(l) => {
            for item in l.iter() {
                mix_digest(d, item);
            }
        }
        Value::Set(s) => s.for_each(|m| xor_digest(d, m)),
        Value::ZSet(z) => {
            for (member, score) in z.iter() {
                let mut e = [0u8; 20];
                mix_digest(&mut e, member);
                mix_digest(&mut e, format_double_g17(score).as_bytes());
                xor_digest(d, &e);
            }
        }
        Value::Hash(h) => {
            for (field, val) in h.iter() {
                let mut e = [0u8; 20];
                mix_digest(&mut e, field);
                mix_digest(&mut e, val);
                xor_digest(d, &e);
            }
        }
    }
    if has_expire {
        xor_digest(d, b"!!expire!!");
    }
}

fn mix_str(d: &mut Digest, s: &StrValue) {
    s.with_bytes(|b| mix_digest(d, b));
}

/// `DEBUG DIGEST-VALUE` for one entry (no key mixed in); all zeros for a missing key.
pub fn value_digest(entry: Option<&Entry<Value>>) -> Digest {
    let mut d = [0u8; 20];
    if let Some(e) = entry {
        mix_value(&mut d, &e.value, e.has_expire());
    }
    d
}

/// `DEBUG DIGEST` over every database of every shard in the store.
pub fn dataset_digest(store: &dyn Store) -> Digest {
    let shards = store.shard_count();
    fold_databases((0..store.num_dbs()).map(|db| {
        let mut keys = None;
        for s in 0..shards {
            for e in store.shard_db_ref(s, db).table.iter() {
                xor_into(keys.get_or_insert([0u8; 20]), &key_share(e.key(), &e.value, e.has_expire()));
            }
        }
        keys
    }))
}

/// One key's share of [`dataset_digest`]: the shares of a database's keys are XORed together, in any order
/// and over any split of the keys, then [`fold_databases`] combines the databases. For callers that digest
/// a dataset in parallel or as it streams by (moon-aof-tool).
pub fn key_share(key: &[u8], value: &Value, has_expire: bool) -> Digest {
    let mut d = [0u8; 20];
    mix_digest(&mut d, key);
    mix_value(&mut d, value, has_expire);
    // Redis XORs the SHA1 of each key's digest, not the digest itself.
    sha1(&d)
}

/// `acc ^= share`.
pub fn xor_into(acc: &mut Digest, share: &Digest) {
    for (a, b) in acc.iter_mut().zip(share) {
        *a ^= b;
    }
}

/// The dataset digest from each database's XOR of [`key_share`]s, in database order (`None`: no keys).
pub fn fold_databases(dbs: impl IntoIterator<Item = Option<Digest>>) -> Digest {
    let mut fin = [0u8; 20];
    for (db, keys) in dbs.into_iter().enumerate() {
        if let Some(keys) = keys {
            mix_digest(&mut fin, &(db as u32).to_be_bytes());
            xor_into(&mut fin, &keys);
        }
    }
    fin
}

/// Lower-case hex, as Redis prints digests.
pub fn to_hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testkit::Kit;

    /// Replays `fixtures/digest/mixed.txt` and compares with what redis-server 7.0.15 answered
    /// (`fixtures/digest/expected.txt`, see the README there for the commands).
    #[test]
    fn matches_redis_on_mixed_dataset() {
        let mut k = Kit::new();
        for line in include_str!("../../fixtures/digest/mixed.txt").lines() {
            let r = k.run(line);
            assert!(!r.is_error(), "{line}: {r:?}");
        }
        for line in include_str!("../../fixtures/digest/expected.txt").lines() {
            let (name, want) = line.split_once(' ').expect("name digest");
            let got = if name == "digest" {
                to_hex(&dataset_digest(&k.ks))
            } else {
                to_hex(&value_digest(k.ks.dbs[0].get(name.as_bytes())))
            };
            assert_eq!(got, want, "digest of {name}");
        }
    }

    #[test]
    fn empty_dataset_is_zero() {
        let k = Kit::new();
        assert_eq!(to_hex(&dataset_digest(&k.ks)), "0".repeat(40));
    }
}
