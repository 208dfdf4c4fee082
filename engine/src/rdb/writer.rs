//! Writing `REDIS0010` files (`rdbSaveRio`): header and AUX fields, per database SELECTDB + RESIZEDB, keys
//! with EXPIRETIME_MS, then EOF and the CRC-64. Output is buffered and the CRC is computed as the buffer is
//! flushed, so the writer streams to any `Write` (a file, a socket, a `Vec`).
//!
//! AUX fields are those of a 7.0.15 save, in its order: `redis-ver`, `redis-bits`, `ctime`, `used-mem`,
//! `aof-base`. Numbers go through the string encoder, so they come out int-encoded as in Redis.

use super::crc64;
use super::encode::{encode_value_into, put_len, put_string, WriteOptions};
use super::opcodes::*;
use super::RDB_VERSION;
use crate::keyspace::{Keyspace, Store};
use crate::types::Value;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// Buffered bytes at which the writer hands data to the sink.
const FLUSH_AT: usize = 64 * 1024;

/// Streams an RDB file to `W`.
pub struct RdbWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    crc: u64,
    opts: WriteOptions,
}

impl<W: Write> RdbWriter<W> {
    pub fn new(out: W, opts: WriteOptions) -> Self {
        RdbWriter { out, buf: Vec::with_capacity(FLUSH_AT * 2), crc: 0, opts }
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if self.opts.checksum {
            self.crc = crc64::update(self.crc, &self.buf);
        }
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// `REDIS0010` and the AUX fields; `aof_base` marks a file written as an AOF base.
    pub fn write_header(&mut self, aof_base: bool) -> io::Result<()> {
        self.buf.extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
        let ctime = self
            .opts
            .ctime_secs
            .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64));
        let ver = self.opts.redis_ver.clone();
        self.write_aux(b"redis-ver", ver.as_bytes())?;
        self.write_aux(b"redis-bits", b"64")?;
        self.write_aux(b"ctime", ctime.to_string().as_bytes())?;
        let used = self.opts.used_mem.to_string();
        self.write_aux(b"used-mem", used.as_bytes())?;
        self.write_aux(b"aof-base", if aof_base { b"1" } else { b"0" })
    }

    /// One AUX field.
    pub fn write_aux(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.buf.push(AUX);
        put_string(&mut self.buf, key, self.opts.compression);
        put_string(&mut self.buf, value, self.opts.compression);
        self.maybe_flush()
    }

    /// A function library (FUNCTION2), written before the databases as Redis does.
    pub fn write_function(&mut self, code: &[u8]) -> io::Result<()> {
        self.buf.push(FUNCTION2);
        put_string(&mut self.buf, code, self.opts.compression);
        self.maybe_flush()
    }

    /// Starts database `db`, announcing `keys` keys of which `expires` have a TTL.
    pub fn select_db(&mut self, db: usize, keys: u64, expires: u64) -> io::Result<()> {
        self.buf.push(SELECTDB);
        put_len(&mut self.buf, db as u64);
        self.buf.push(RESIZEDB);
        put_len(&mut self.buf, keys);
        put_len(&mut self.buf, expires);
        Ok(())
    }

    /// One key of the current database.
    pub fn write_entry(&mut self, key: &[u8], value: &Value, expire_at: Option<i64>) -> io::Result<()> {
        if let Some(t) = expire_at {
            self.buf.push(EXPIRETIME_MS);
            self.buf.extend_from_slice(&t.to_le_bytes());
        }
        let type_at = self.buf.len();
        self.buf.push(0);
        put_string(&mut self.buf, key, self.opts.compression);
        self.buf[type_at] = encode_value_into(value, &self.opts, &mut self.buf);
        self.maybe_flush()
    }

    /// EOF and the checksum (0 when `checksum` is off); returns the sink, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.buf.push(EOF);
        self.flush_buf()?;
        let crc = if self.opts.checksum { self.crc } else { 0 };
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
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
                let exp = e.has_expire().then_some(e.expire_at);
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
