//! The loader's main loop (`rdbLoadRioWithLoadingCtx`): header, then opcodes and keys until EOF, then the
//! checksum. Values are decoded by [`super::decode`]; this file owns the file-level rules: AUX fields,
//! SELECTDB limits, RESIZEDB pre-sizing, expiry handling, skipped and empty keys, the CRC.
//!
//! The opcode loop ([`walk`]) hands each key to a [`Sink`]: [`load`]'s sink decodes the value at once and
//! inserts it; the parallel loader's sink (`super::parallel`) only finds the value's extent and sends it to
//! the thread of the key's shard, which decodes and inserts it with [`store`]. Both paths share every rule
//! here, so they accept the same files and fail with the same errors.

use super::crc64_clmul;
use super::decode::{self, Decoded};
use super::error::{err, Doing, ErrorKind, RdbError, Result};
use super::input::Input;
use super::opcodes::*;
use super::{skip, ChecksumStatus, LoadOptions, LoadReport, LoadTarget, SkippedKey, KNOWN_AUX, SKIPPED_SAMPLES};
use super::{MAX_REDIS_VERSION, VALKEY_VERSIONS};
use crate::table::Entry;
use crate::types::Value;
use std::borrow::Cow;

/// Smallest encoding of one key: type byte, key length, value (at least one byte). Bounds RESIZEDB hints.
const MIN_KEY_BYTES: u64 = 3;

/// A key as the opcode loop found it: where its record starts, its type, database, expiry and name.
pub(crate) struct KeyHead<'a> {
    /// Offset of the record's type byte (where errors about the key as a whole point).
    pub at: usize,
    pub ty: u8,
    pub db: usize,
    pub expire_at: Option<i64>,
    pub key: Cow<'a, [u8]>,
}

/// Where the opcode loop sends RESIZEDB hints and keys.
pub(crate) trait Sink<'a> {
    /// A RESIZEDB hint, already capped to what the rest of the file can hold.
    fn resize(&mut self, db: usize, keys: u64, expires: u64);
    /// The key `head`, whose value starts at the cursor: the sink consumes the value.
    fn key_value(&mut self, inp: &mut Input<'a>, head: KeyHead<'a>, report: &mut LoadReport) -> Result<()>;
}

/// The sequential sink: decode, then insert into one target.
struct Direct<'t, 'o> {
    target: &'t mut dyn LoadTarget,
    opts: &'o LoadOptions,
}

impl<'a> Sink<'a> for Direct<'_, '_> {
    fn resize(&mut self, db: usize, keys: u64, expires: u64) {
        self.target.resize(db, keys, expires);
    }

    fn key_value(&mut self, inp: &mut Input<'a>, head: KeyHead<'a>, report: &mut LoadReport) -> Result<()> {
        let value = decode_at(inp, &head, self.opts, report.valkey)?;
        store(value, head, None, self.opts, self.target, report)
    }
}

/// Decodes the value of `head` at the cursor, with the error context the loader reports.
pub(crate) fn decode_at(inp: &mut Input, head: &KeyHead, opts: &LoadOptions, valkey: bool) -> Result<Decoded> {
    decode::read_object(inp, head.ty, &opts.cfg, valkey)
        .map_err(|e| e.with_doing(Doing::ReadObjectValue).with_key(&head.key))
}

/// Loads an RDB from `bytes` into `target`. Bytes after the checksum are left alone (see
/// [`LoadReport::bytes_consumed`]).
pub fn load(
    bytes: &[u8],
    opts: &LoadOptions,
    target: &mut dyn LoadTarget,
) -> std::result::Result<LoadReport, RdbError> {
    let (mut report, eof_end) = walk(bytes, opts, &mut Direct { target, opts })?;
    checksum(bytes, eof_end, opts, &mut report)?;
    Ok(report)
}

/// The header and the opcode loop up to EOF. Returns the report so far and the offset just past the EOF
/// opcode.
pub(crate) fn walk<'a>(bytes: &'a [u8], opts: &LoadOptions, sink: &mut dyn Sink<'a>) -> Result<(LoadReport, usize)> {
    let mut inp = Input::new(bytes);
    let (version, valkey) = header(&mut inp)?;
    let mut report = LoadReport { version, valkey, ..LoadReport::default() };
    let mut db = 0usize;
    let mut expire_at: Option<i64> = None;
    loop {
        let at = inp.pos();
        let ty = inp.u8().map_err(|e| e.with_doing(Doing::ReadType))?;
        match ty {
            EXPIRETIME => {
                let secs = inp.i32_le().map_err(|e| e.with_doing(Doing::ReadExpire))?;
                expire_at = Some(i64::from(secs) * 1000);
            }
            // Little-endian; before RDB 9 it was the machine's order, little-endian on every platform
            // Redis shipped dumps from in practice.
            EXPIRETIME_MS => expire_at = Some(inp.i64_le().map_err(|e| e.with_doing(Doing::ReadExpire))?),
            // LRU idle time and LFU counter: Moon has no eviction clock to restore them into.
            FREQ => {
                inp.u8().map_err(|e| e.with_doing(Doing::ReadType))?;
            }
            IDLE => {
                inp.len().map_err(|e| e.with_doing(Doing::ReadLen))?;
            }
            EOF => break,
            SELECTDB => {
                let n = inp.len().map_err(|e| e.with_doing(Doing::ReadLen))?;
                let databases = opts.cfg.databases;
                if n >= databases as u64 {
                    return Err(RdbError::new(ErrorKind::DbIndex { db: n, databases }, at).with_doing(Doing::ReadLen));
                }
                db = n as usize;
            }
            RESIZEDB => {
                let keys = inp.len().map_err(|e| e.with_doing(Doing::ReadLen))?;
                let expires = inp.len().map_err(|e| e.with_doing(Doing::ReadLen))?;
                report.dbs.entry(db).or_default().resize_hint = Some((keys, expires));
                // A hostile hint must not reserve more than the rest of the file can hold.
                let cap = inp.remaining() as u64 / MIN_KEY_BYTES;
                sink.resize(db, keys.min(cap), expires.min(cap));
            }
            AUX => aux(&mut inp, &mut report).map_err(|e| e.with_doing(Doing::ReadAux))?,
            MODULE_AUX => {
                skip::module_aux(&mut inp).map_err(|e| e.with_doing(Doing::ReadModuleAux))?;
                report.module_aux_skipped += 1;
            }
            FUNCTION_PRE_GA => {
                let e = ErrorKind::Unsupported("Pre-release function format not supported".into());
                return Err(RdbError::new(e, at).with_doing(Doing::ReadFunctions));
            }
            FUNCTION2 => {
                let code = inp.string().map_err(|e| e.with_doing(Doing::ReadFunctions))?;
                report.functions.push(code.into_owned().into_boxed_slice());
            }
            SLOT_INFO => {
                for _ in 0..3 {
                    inp.len().map_err(|e| e.with_doing(Doing::ReadLen))?;
                }
            }
            UPDATE | SLOT_IMPORT if valkey => {
                let e = ErrorKind::Unsupported(format!("Valkey opcode {ty} is not supported"));
                return Err(RdbError::new(e, at).with_doing(Doing::ReadType));
            }
            // Not a value type of any known version: refuse before reading a key.
            8 | 26.. => return Err(RdbError::new(ErrorKind::BadType(ty), at).with_doing(Doing::ReadType)),
            _ => {
                let key = inp.string().map_err(|e| e.with_doing(Doing::ReadKey))?;
                let head = KeyHead { at, ty, db, expire_at: expire_at.take(), key };
                sink.key_value(&mut inp, head, &mut report)?;
            }
        }
    }
    Ok((report, inp.pos()))
}

/// The trailing CRC-64 (RDB 5 and later), which covers every byte before it; then records how many bytes the
/// RDB took.
pub(crate) fn checksum(bytes: &[u8], eof_end: usize, opts: &LoadOptions, report: &mut LoadReport) -> Result<()> {
    checksum_from(bytes, eof_end, opts, report, (0, 0))
}

/// [`checksum`] with the CRC of `bytes[..done.1]` already computed (`done.0`), by a reader that kept it up to
/// date as it went.
pub(crate) fn checksum_from(
    bytes: &[u8],
    eof_end: usize,
    opts: &LoadOptions,
    report: &mut LoadReport,
    done: (u64, usize),
) -> Result<()> {
    let mut inp = Input::at(bytes, eof_end);
    if report.version >= 5 {
        let stored = inp.u64_le().map_err(|e| e.with_doing(Doing::CheckSum))?;
        report.checksum = if stored == 0 {
            ChecksumStatus::Disabled
        } else if !opts.verify_checksum {
            ChecksumStatus::NotChecked(stored)
        } else {
            let (crc, at) = if done.1 <= eof_end { done } else { (0, 0) };
            let expected = crc64_clmul::update(crc, &bytes[at..eof_end]);
            if expected != stored {
                let e = ErrorKind::Checksum { expected, stored };
                return Err(RdbError::new(e, eof_end).with_doing(Doing::CheckSum));
            }
            ChecksumStatus::Verified(stored)
        };
    }
    report.bytes_consumed = inp.pos();
    Ok(())
}

/// `REDIS` + 4 digits or `VALKEY` + 3 digits; returns (version, is_valkey).
pub(crate) fn header(inp: &mut Input) -> Result<(u32, bool)> {
    let magic = inp.take(9).map_err(|e| e.with_doing(Doing::Start))?;
    let (valkey, digits) = match magic {
        [b'R', b'E', b'D', b'I', b'S', d @ ..] => (false, d),
        [b'V', b'A', b'L', b'K', b'E', b'Y', d @ ..] => (true, d),
        _ => return err(ErrorKind::BadMagic, 0),
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return err(ErrorKind::BadMagic, 0);
    }
    let version = digits.iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
    let supported =
        if valkey { VALKEY_VERSIONS.contains(&version) } else { (1..=MAX_REDIS_VERSION).contains(&version) };
    if !supported {
        return err(ErrorKind::UnsupportedVersion { version, valkey }, 0);
    }
    Ok((version, valkey))
}

fn aux(inp: &mut Input, report: &mut LoadReport) -> Result<()> {
    let key = inp.string()?;
    let value = inp.string()?;
    if KNOWN_AUX.iter().any(|k| k.as_bytes() == &key[..]) {
        report.aux.push((key.into_owned().into_boxed_slice(), value.into_owned().into_boxed_slice()));
    } else {
        // Includes `lua` (old scripts, ignored by 7.0) and `%...` informational fields.
        report.aux_unknown += 1;
    }
    Ok(())
}

/// What happens to a decoded key: counted when empty or skipped, dropped when expired, else inserted into
/// `target` (with the key's hash when the caller has it) and counted in `report`.
pub(crate) fn store(
    value: Decoded,
    head: KeyHead,
    hash: Option<u64>,
    opts: &LoadOptions,
    target: &mut dyn LoadTarget,
    report: &mut LoadReport,
) -> Result<()> {
    let KeyHead { at, db, expire_at, key, .. } = head;
    match value {
        Decoded::Empty => report.empty_skipped += 1,
        Decoded::Skipped(kind) => {
            match kind {
                decode::SkipKind::Stream => report.streams_skipped += 1,
                decode::SkipKind::Module(_) => report.modules_skipped += 1,
            }
            if report.skipped_samples.len() < SKIPPED_SAMPLES {
                report.skipped_samples.push(SkippedKey { db, key: key.into_owned().into_boxed_slice(), kind });
            }
        }
        Decoded::Value(v) => {
            if expired(expire_at, opts) {
                report.expired_dropped += 1;
                return Ok(());
            }
            let inserted = match hash {
                Some(h) => target.insert_hashed(db, h, &key, v, expire_at),
                None => target.insert(db, &key, v, expire_at),
            };
            counted(inserted, at, db, expire_at, &key, report)?;
        }
    }
    Ok(())
}

/// Whether a key with this expiry is dropped rather than loaded.
pub(crate) fn expired(expire_at: Option<i64>, opts: &LoadOptions) -> bool {
    matches!((expire_at, opts.drop_expired_before_ms), (Some(t), Some(now)) if t < now)
}

/// [`store`] for a value the parallel scan decoded into an entry ([`Entry::detached`], not expired): links it
/// into `target`, with the same errors and counts.
pub(crate) fn store_entry(
    head: KeyHead,
    hash: u64,
    entry: Box<Entry<Value>>,
    target: &mut dyn LoadTarget,
    report: &mut LoadReport,
) -> Result<()> {
    let inserted = target.insert_entry(head.db, hash, entry);
    counted(inserted, head.at, head.db, head.expire_at, &head.key, report)
}

/// Counts a key the target took, or names it in the target's error.
fn counted(
    inserted: Result<()>,
    at: usize,
    db: usize,
    expire_at: Option<i64>,
    key: &[u8],
    report: &mut LoadReport,
) -> Result<()> {
    inserted.map_err(|e| e.with_offset(at).with_doing(Doing::ReadObjectValue).with_key(key))?;
    let stats = report.dbs.entry(db).or_default();
    stats.keys += 1;
    report.keys_loaded += 1;
    if expire_at.is_some() {
        stats.expires += 1;
        report.expires_loaded += 1;
    }
    Ok(())
}
