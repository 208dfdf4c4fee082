//! Writing `REDIS0010` files (`rdbSaveRio`): header and AUX fields, per database SELECTDB + RESIZEDB, keys
//! with EXPIRETIME_MS, then EOF and the CRC-64.
//!
//! Two layers, so that a fork-less snapshot can serialise entries on any thread into a shared buffer and
//! leave the I/O to one background thread:
//! - [`RdbEncoder`] appends records to a caller's `Vec<u8>` and does no I/O;
//! - [`RdbStream`] is the file side: a `Write` adapter that keeps the running CRC-64 of every byte it passes
//!   on, and ends the file with EOF and the checksum.
//!
//! [`RdbWriter`] joins the two for a writer that owns the whole file (SAVE, DEBUG RELOAD, tests).
//!
//! AUX fields are those of a 7.0.15 save, in its order: `redis-ver`, `redis-bits`, `ctime`, `used-mem`,
//! `aof-base`. Numbers go through the string encoder, so they come out int-encoded as in Redis.
//!
//! SELECTDB may appear anywhere and any number of times: Redis's loader and `redis-check-rdb` (and ours)
//! only switch the current database, so a snapshot may emit keys of several databases interleaved, with a
//! SELECTDB whenever the database changes and RESIZEDB once per database.

use super::crc64;
use super::encode::{encode_value_into, put_len, put_string, WriteOptions};
use super::opcodes::*;
use super::RDB_VERSION;
use crate::keyspace::{Keyspace, Store};
use crate::types::Value;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// Buffered bytes at which [`RdbWriter`] hands data to its sink.
const FLUSH_AT: usize = 64 * 1024;

/// Appends RDB records to a buffer. Stateless apart from the options: the caller decides the order.
#[derive(Debug, Clone)]
pub struct RdbEncoder {
    opts: WriteOptions,
}

impl RdbEncoder {
    pub fn new(opts: WriteOptions) -> Self {
        RdbEncoder { opts }
    }

    pub fn opts(&self) -> &WriteOptions {
        &self.opts
    }

    /// `REDIS0010` and the AUX fields; `aof_base` marks a file written as an AOF base.
    pub fn header(&self, out: &mut Vec<u8>, aof_base: bool) {
        out.extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
        let ctime = self
            .opts
            .ctime_secs
            .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64));
        self.aux(out, b"redis-ver", self.opts.redis_ver.as_bytes());
        self.aux(out, b"redis-bits", b"64");
        self.aux(out, b"ctime", ctime.to_string().as_bytes());
        self.aux(out, b"used-mem", self.opts.used_mem.to_string().as_bytes());
        self.aux(out, b"aof-base", if aof_base { b"1" } else { b"0" });
    }

    /// One AUX field.
    pub fn aux(&self, out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
        out.push(AUX);
        put_string(out, key, self.opts.compression);
        put_string(out, value, self.opts.compression);
    }

    /// A function library (FUNCTION2), written before the databases as Redis does.
    pub fn function(&self, out: &mut Vec<u8>, code: &[u8]) {
        out.push(FUNCTION2);
        put_string(out, code, self.opts.compression);
    }

    /// SELECTDB: the keys that follow belong to `db`.
    pub fn select_db(&self, out: &mut Vec<u8>, db: usize) {
        out.push(SELECTDB);
        put_len(out, db as u64);
    }

    /// RESIZEDB: the current database holds `keys` keys of which `expires` have a TTL (a sizing hint).
    pub fn resize_db(&self, out: &mut Vec<u8>, keys: u64, expires: u64) {
        out.push(RESIZEDB);
        put_len(out, keys);
        put_len(out, expires);
    }

    /// One key of the current database.
    pub fn entry(&self, out: &mut Vec<u8>, key: &[u8], value: &Value, expire_at: Option<i64>) {
        if let Some(t) = expire_at {
            out.push(EXPIRETIME_MS);
            out.extend_from_slice(&t.to_le_bytes());
        }
        let type_at = out.len();
        out.push(0);
        put_string(out, key, self.opts.compression);
        out[type_at] = encode_value_into(value, &self.opts, out);
    }
}

/// The file side of an RDB: passes bytes on to `W` while keeping their CRC-64, and [`RdbStream::finish`]
/// appends EOF and the checksum (0 when `checksum` is off, as `rdbchecksum no` writes).
#[derive(Debug)]
pub struct RdbStream<W: Write> {
    out: W,
    crc: u64,
    checksum: bool,
    written: u64,
}

impl<W: Write> RdbStream<W> {
    pub fn new(out: W, checksum: bool) -> Self {
        RdbStream { out, crc: 0, checksum, written: 0 }
    }

    /// Bytes passed on so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// EOF and the checksum; returns the sink, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_all(&[EOF])?;
        let crc = if self.checksum { self.crc } else { 0 };
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for RdbStream<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        if self.checksum {
            self.crc = crc64::update(self.crc, &buf[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Streams a whole RDB file to `W` ([`RdbEncoder`] into a buffer, flushed through an [`RdbStream`]).
pub struct RdbWriter<W: Write> {
    out: RdbStream<W>,
    buf: Vec<u8>,
    enc: RdbEncoder,
}

impl<W: Write> RdbWriter<W> {
    pub fn new(out: W, opts: WriteOptions) -> Self {
        let checksum = opts.checksum;
        RdbWriter {
            out: RdbStream::new(out, checksum),
            buf: Vec::with_capacity(FLUSH_AT * 2),
            enc: RdbEncoder::new(opts),
        }
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// `REDIS0010` and the AUX fields; `aof_base` marks a file written as an AOF base.
    pub fn write_header(&mut self, aof_base: bool) -> io::Result<()> {
        self.enc.header(&mut self.buf, aof_base);
        self.maybe_flush()
    }

    /// One AUX field.
    pub fn write_aux(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.enc.aux(&mut self.buf, key, value);
        self.maybe_flush()
    }

    /// A function library (FUNCTION2), written before the databases as Redis does.
    pub fn write_function(&mut self, code: &[u8]) -> io::Result<()> {
        self.enc.function(&mut self.buf, code);
        self.maybe_flush()
    }

    /// Starts database `db`, announcing `keys` keys of which `expires` have a TTL.
    pub fn select_db(&mut self, db: usize, keys: u64, expires: u64) -> io::Result<()> {
        self.enc.select_db(&mut self.buf, db);
        self.enc.resize_db(&mut self.buf, keys, expires);
        Ok(())
    }

    /// One key of the current database.
    pub fn write_entry(&mut self, key: &[u8], value: &Value, expire_at: Option<i64>) -> io::Result<()> {
        self.enc.entry(&mut self.buf, key, value, expire_at);
        self.maybe_flush()
    }

    /// EOF and the checksum (0 when `checksum` is off); returns the sink, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.finish()
    }
}

/// Saves every database of `store` (all shards) as one RDB file.
pub fn save_store<W: Write>(store: &dyn Store, out: W, opts: &WriteOptions, aof_base: bool) -> io::Result<W> {
    let mut w = RdbWriter::new(out, opts.clone());
    w.write_header(aof_base)?;
    let shards = store.shard_count();
    for db in 0..store.num_dbs() {
        let parts: Vec<_> = (0..shards).map(|s| store.shard_db_ref(s, db)).collect();
        let keys: usize = parts.iter().map(|d| d.len()).sum();
        if keys == 0 {
            continue;
        }
        let expires: usize = parts.iter().map(|d| d.expires_count()).sum();
        w.select_db(db, keys as u64, expires as u64)?;
        for part in parts {
            for e in part.table.iter() {
                let exp = e.has_expire().then_some(e.expire_at());
                w.write_entry(&e.key, &e.value, exp)?;
            }
        }
    }
    w.finish()
}

/// Saves one shard's keyspace.
pub fn save_keyspace<W: Write>(ks: &Keyspace, out: W, opts: &WriteOptions, aof_base: bool) -> io::Result<W> {
    save_store(ks, out, opts, aof_base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::{load, LoadOptions};
    use crate::types::StrValue;

    fn s(v: &str) -> Value {
        Value::Str(StrValue::from_bytes(v.as_bytes()))
    }

    /// Keys of several databases interleaved, each switch a SELECTDB, RESIZEDB once per database: the
    /// layout a snapshot writes. It loads with every key in its database and the CRC verified.
    #[test]
    fn interleaved_databases_load() {
        let enc = RdbEncoder::new(WriteOptions::default());
        let mut out = RdbStream::new(Vec::new(), true);
        let mut buf = Vec::new();
        enc.header(&mut buf, false);
        for (i, db) in [0usize, 3, 0, 3, 5, 0].into_iter().enumerate() {
            enc.select_db(&mut buf, db);
            if i < 2 || db == 5 {
                enc.resize_db(&mut buf, 2, 0);
            }
            enc.entry(&mut buf, format!("k{i}").as_bytes(), &s(&format!("v{i}")), None);
            out.write_all(&buf).unwrap();
            buf.clear();
        }
        let bytes = out.finish().unwrap();
        let mut ks = Keyspace::new(16);
        let r = load(&bytes, &LoadOptions::default(), &mut ks).unwrap();
        assert!(matches!(r.checksum, crate::rdb::ChecksumStatus::Verified(_)));
        assert_eq!(r.keys_loaded, 6);
        let dbs: Vec<usize> =
            (0..6).map(|i| (0..16).find(|&d| ks.dbs[d].get(format!("k{i}").as_bytes()).is_some()).unwrap()).collect();
        assert_eq!(dbs, [0, 3, 0, 3, 5, 0]);
    }

    /// The two layers produce the same bytes as the writer that owns the file.
    #[test]
    fn stream_and_writer_agree() {
        let opts = WriteOptions { ctime_secs: Some(1_700_000_000), ..WriteOptions::default() };
        let mut w = RdbWriter::new(Vec::new(), opts.clone());
        w.write_header(false).unwrap();
        w.select_db(2, 1, 1).unwrap();
        w.write_entry(b"key", &s("value"), Some(4_102_444_800_000)).unwrap();
        let a = w.finish().unwrap();

        let enc = RdbEncoder::new(opts);
        let mut buf = Vec::new();
        enc.header(&mut buf, false);
        enc.select_db(&mut buf, 2);
        enc.resize_db(&mut buf, 1, 1);
        enc.entry(&mut buf, b"key", &s("value"), Some(4_102_444_800_000));
        let mut st = RdbStream::new(Vec::new(), true);
        st.write_all(&buf).unwrap();
        assert_eq!(st.written(), buf.len() as u64);
        assert_eq!(st.finish().unwrap(), a);
    }
}
