//! DUMP and RESTORE: a value serialized in RDB form (`<type><value><u16 LE RDB version><u64 LE CRC-64>`,
//! see [`crate::rdb::dump_payload`]), byte-identical to Redis 7.0's payloads, so keys move between Moon
//! and Redis with `DUMP`/`RESTORE` (and MIGRATE-style tools).
//!
//! RESTORE follows Redis 7.0 (`restoreCommand`): options are parsed first (REPLACE, ABSTTL, IDLETIME s,
//! FREQ f; IDLETIME and FREQ exclude each other), then BUSYKEY, then the TTL, then the payload's version
//! (at most 10) and CRC, then the value ("Bad data format"). A relative TTL is logged as an absolute one
//! (`RESTORE key <unix ms> payload ... ABSTTL`); a TTL already in the past restores nothing (and logs a DEL
//! when REPLACE removed an old value). Moon keeps no LRU/LFU clock, so IDLETIME and FREQ are validated and
//! otherwise ignored.

use super::args;
use super::ctx::Ctx;
use super::errors::SYNTAX;
use super::spec::{flags::*, spec, CommandSpec, Handler::Engine};
use super::CmdResult;
use crate::rdb::{self, types::STREAM_LISTPACKS_2, WriteOptions};
use crate::resp::Reply;
use crate::util::eq_ic;
use bytes::Bytes;

// One command per line reads as a table.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("dump", 2, READONLY, 1, 1, 1, &["keyspace", "read", "slow"], Engine(dump)),
    spec("restore", -4, WRITE | DENYOOM, 1, 1, 1, &["keyspace", "write", "slow", "dangerous"], Engine(restore)),
];

const BUSYKEY: &str = "BUSYKEY Target key name already exists.";
const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
const BAD_DATA: &str = "ERR Bad data format";

fn run(f: impl FnOnce() -> CmdResult) -> Reply {
    f().unwrap_or_else(|e| e)
}

/// DUMP key
fn dump(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    let opts = WriteOptions::from_config(ctx.cfg);
    match ctx.lookup_read(&a[1]) {
        Some(v) => Reply::bulk(rdb::dump_payload(v, &opts)),
        None => Reply::Nil,
    }
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
fn restore(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let (mut replace, mut absttl, mut idle, mut freq) = (false, false, None, None);
        let mut j = 4;
        while j < a.len() {
            let more = j + 1 < a.len();
            if eq_ic(&a[j], "replace") {
                replace = true;
            } else if eq_ic(&a[j], "absttl") {
                absttl = true;
            } else if eq_ic(&a[j], "idletime") && more && freq.is_none() {
                let v = args::int(&a[j + 1])?;
                if v < 0 {
                    return Err(Reply::err("ERR Invalid IDLETIME value, must be >= 0"));
                }
                idle = Some(v);
                j += 1;
            } else if eq_ic(&a[j], "freq") && more && idle.is_none() {
                let v = args::int(&a[j + 1])?;
                if !(0..=255).contains(&v) {
                    return Err(Reply::err("ERR Invalid FREQ value, must be >= 0 and <= 255"));
                }
                freq = Some(v);
                j += 1;
            } else {
                return Err(Reply::err(SYNTAX));
            }
            j += 1;
        }
        let key = &a[1];
        if !replace && ctx.exists(key) {
            return Err(Reply::err(BUSYKEY));
        }
        let ttl = args::int(&a[2])?;
        if ttl < 0 {
            return Err(Reply::err("ERR Invalid TTL value, must be >= 0"));
        }
        let (ty, body) = rdb::verify_dump_payload(&a[3]).ok_or_else(|| Reply::err(BAD_PAYLOAD))?;
        // 7.0 knows types up to 19 (later ones arrive with RDB 11+ footers anyway).
        if ty > STREAM_LISTPACKS_2 {
            return Err(Reply::err(BAD_DATA));
        }
        let value = match rdb::decode_value(ty, body, ctx.cfg) {
            Ok(Some(v)) => v,
            _ => return Err(Reply::err(BAD_DATA)),
        };
        let deleted = replace && ctx.delete(key);
        // Redis adds in C's wrapping arithmetic: an absurd relative TTL overflows into the past.
        let expire_at = (ttl != 0).then(|| if absttl { ttl } else { ttl.wrapping_add(ctx.now_ms) });
        if let Some(t) = expire_at {
            if t <= ctx.now_ms && !ctx.loading {
                if deleted {
                    ctx.dirty += 1;
                    ctx.also_propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
                }
                return Ok(Reply::ok());
            }
        }
        ctx.set_value(key, value, expire_at);
        ctx.dirty += 1;
        if let (Some(t), false) = (expire_at, absttl) {
            let mut argv: Vec<Bytes> = a.to_vec();
            argv[2] = Bytes::from(t.to_string());
            argv.push(Bytes::from_static(b"ABSTTL"));
            ctx.also_propagate(argv);
        }
        Ok(Reply::ok())
    })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{bulk, err, Kit};
    use crate::resp::Reply;
    use bytes::Bytes;

    fn payload(k: &mut Kit, key: &str) -> Vec<u8> {
        match k.run(&format!("DUMP {key}")) {
            Reply::Bulk(b) => b.to_vec(),
            other => panic!("{other:?}"),
        }
    }

    fn restore(k: &mut Kit, args: &[&[u8]]) -> Reply {
        let mut argv: Vec<&[u8]> = vec![b"RESTORE"];
        argv.extend_from_slice(args);
        k.run_args(&argv)
    }

    #[test]
    fn dump_matches_redis_bytes() {
        let mut k = Kit::new();
        k.run("SET k v");
        // redis-cli DUMP k on 7.0.15: "\x00\x01v\n\x00\x91\b\xce\xb2\x198\x8a\xce"
        assert_eq!(payload(&mut k, "k"), b"\x00\x01v\x0a\x00\x91\x08\xce\xb2\x19\x38\x8a\xce");
        assert_eq!(k.run("DUMP nosuch"), Reply::Nil);
        assert!(k.propagated.is_none() && k.dirty == 0);
    }

    #[test]
    fn restore_round_trips_every_type() {
        let mut k = Kit::new();
        k.run_all(&["SET s 12345", "RPUSH l a b 3", "SADD si 1 2 3", "SADD ss a b", "HSET h f v", "ZADD z 1.5 m 2 n"]);
        for key in ["s", "l", "si", "ss", "h", "z"] {
            let p = payload(&mut k, key);
            let enc = k.run(&format!("OBJECT ENCODING {key}"));
            let new = format!("{key}-copy");
            assert_eq!(restore(&mut k, &[new.as_bytes(), b"0", &p]), Reply::ok());
            if key != "ss" {
                // A hashtable's iteration order depends on its history; its contents are checked below.
                assert_eq!(payload(&mut k, &new), p, "{key}");
            }
            assert_eq!(k.run(&format!("OBJECT ENCODING {new}")), enc, "{key}");
            assert_eq!(k.run(&format!("TTL {new}")), Reply::Int(-1));
        }
        assert_eq!(k.run("LRANGE l-copy 0 -1"), Reply::Array(vec![bulk("a"), bulk("b"), bulk("3")]));
        assert_eq!(k.run("SISMEMBER ss-copy a"), Reply::Int(1));
        assert_eq!(k.run("SCARD ss-copy"), Reply::Int(2));
    }

    #[test]
    fn restore_errors_in_redis_order() {
        let mut k = Kit::new();
        k.run("SET k v");
        let p = payload(&mut k, "k");
        let busy = err("BUSYKEY Target key name already exists.");
        assert_eq!(restore(&mut k, &[b"k", b"0", &p]), busy);
        assert_eq!(restore(&mut k, &[b"k", b"0", b"x"]), busy);
        assert_eq!(restore(&mut k, &[b"k", b"0", b"x", b"badopt"]), err("ERR syntax error"));
        assert_eq!(restore(&mut k, &[b"n", b"-1", b"x"]), err("ERR Invalid TTL value, must be >= 0"));
        assert_eq!(restore(&mut k, &[b"n", b"abc", b"x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(restore(&mut k, &[b"n", b"0", b"x"]), err("ERR DUMP payload version or checksum are wrong"));
        assert_eq!(restore(&mut k, &[b"n", b"0", b"x", b"idletime"]), err("ERR syntax error"));
        assert_eq!(
            restore(&mut k, &[b"n", b"0", b"x", b"idletime", b"-1"]),
            err("ERR Invalid IDLETIME value, must be >= 0")
        );
        assert_eq!(
            restore(&mut k, &[b"n", b"0", b"x", b"idletime", b"z"]),
            err("ERR value is not an integer or out of range")
        );
        let bad_freq = err("ERR Invalid FREQ value, must be >= 0 and <= 255");
        assert_eq!(restore(&mut k, &[b"n", b"0", b"x", b"freq", b"256"]), bad_freq);
        assert_eq!(restore(&mut k, &[b"n", b"0", b"x", b"freq", b"-1"]), bad_freq);
        assert_eq!(restore(&mut k, &[b"n", b"0", b"x", b"idletime", b"1", b"freq", b"1"]), err("ERR syntax error"));
        assert_eq!(restore(&mut k, &[b"n", b"0", b"x", b"freq", b"1", b"idletime", b"1"]), err("ERR syntax error"));
        // Repeated options are fine.
        assert_eq!(
            restore(&mut k, &[b"n", b"0", &p, b"REPLACE", b"replace", b"freq", b"5", b"freq", b"6"]),
            Reply::ok()
        );
        assert_eq!(restore(&mut k, &[b"m", b"0", &p, b"idletime", b"5", b"absttl"]), Reply::ok());
        // A newer RDB version, a wrong CRC, a zero CRC.
        let mut newer = p[..p.len() - 10].to_vec();
        newer.extend_from_slice(&11u16.to_le_bytes());
        let crc = crate::rdb::crc64::crc64(&newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        let wrong = err("ERR DUMP payload version or checksum are wrong");
        assert_eq!(restore(&mut k, &[b"x", b"0", &newer]), wrong);
        let mut zero = p.clone();
        let n = zero.len();
        zero[n - 8..].fill(0);
        assert_eq!(restore(&mut k, &[b"x", b"0", &zero]), wrong);
    }

    fn with_crc(body: &[u8], version: u16) -> Vec<u8> {
        let mut p = body.to_vec();
        p.extend_from_slice(&version.to_le_bytes());
        let crc = crate::rdb::crc64::crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    }

    /// What redis-server 7.0.15 answered for hand-made payloads with valid CRCs.
    #[test]
    fn payload_contents_like_redis() {
        let mut k = Kit::new();
        let bad = err("ERR Bad data format");
        for (body, ok) in [
            (&b"\x00\x05ab"[..], true), // the string runs into the footer, as Redis allows
            (b"\x08\x01a", false),      // unknown type
            (b"\x01\x00", false),       // empty list
            (b"\x02\x00", false),       // empty set
            (b"\x02\x02\x01a\x01a", false),
            (b"\x00\x01agarbage", true),
            (b"\x14\x0b\x0b\x00\x00\x00\x02\x00\x01\x01\x02\x01\xff", false), // 7.2 set listpack
            (b"", false),
        ] {
            k.run("DEL x");
            let want = if ok { Reply::ok() } else { bad.clone() };
            assert_eq!(restore(&mut k, &[b"x", b"0", &with_crc(body, 10)]), want, "{body:?}");
        }
        for v in [0u16, 1, 9] {
            k.run("DEL x");
            assert_eq!(restore(&mut k, &[b"x", b"0", &with_crc(b"\x00\x01a", v)]), Reply::ok());
        }
        // A list in the old ziplist form (type 10) restores.
        let zl = b"\x0a\x10\x10\x00\x00\x00\x0d\x00\x00\x00\x02\x00\x00\x01a\x03\xf2\xff";
        assert_eq!(restore(&mut k, &[b"zl", b"0", &with_crc(zl, 10)]), Reply::ok());
        assert_eq!(k.run("LRANGE zl 0 -1"), Reply::Array(vec![bulk("a"), bulk("1")]));
    }

    #[test]
    fn ttls_and_propagation() {
        let mut k = Kit::new();
        k.run("SET src v");
        let p = payload(&mut k, "src");
        let now = k.now;

        assert_eq!(restore(&mut k, &[b"a", b"5000", &p]), Reply::ok());
        let logged = k.propagated.clone().expect("rewritten");
        assert_eq!(k.run("PTTL a"), Reply::Int(5000));
        let abs = (now + 5000).to_string();
        let want: Vec<Bytes> = vec![
            Bytes::from_static(b"RESTORE"),
            Bytes::from_static(b"a"),
            Bytes::from(abs),
            Bytes::from(p.clone()),
            Bytes::from_static(b"ABSTTL"),
        ];
        assert_eq!(logged, vec![want]);

        assert_eq!(restore(&mut k, &[b"b", b"0", &p]), Reply::ok());
        assert!(k.propagated.is_none() && k.dirty == 1, "logged as sent");

        let at = (now + 10_000).to_string();
        assert_eq!(restore(&mut k, &[b"c", at.as_bytes(), &p, b"ABSTTL"]), Reply::ok());
        assert!(k.propagated.is_none());
        assert_eq!(k.run("PTTL c"), Reply::Int(10_000));

        // Already expired: nothing is created; an old value removed by REPLACE is logged as DEL.
        assert_eq!(restore(&mut k, &[b"d", b"1", &p, b"ABSTTL"]), Reply::ok());
        assert_eq!(k.run("EXISTS d"), Reply::Int(0));
        assert_eq!(k.dirty, 0);
        assert_eq!(restore(&mut k, &[b"b", b"1", &p, b"REPLACE", b"ABSTTL"]), Reply::ok());
        assert_eq!(k.propagated, Some(vec![vec![Bytes::from_static(b"DEL"), Bytes::from_static(b"b")]]));
        assert_eq!(k.run("EXISTS b"), Reply::Int(0));
        // A relative TTL that overflows lands in the past, as in Redis.
        assert_eq!(restore(&mut k, &[b"e", b"9223372036854775807", &p]), Reply::ok());
        assert_eq!(k.run("EXISTS e"), Reply::Int(0));
    }
}
