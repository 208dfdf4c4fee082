//! The verdict on one AOF file, in the terms `redis-check-aof` 7.0.15 reports (FORMATS.md §3.1): size,
//! `ok_up_to`, `ok_up_to_line`, `diff`, the first error with its offset, plus what Moon adds: whether the
//! damage is only a torn tail, where the loader would cut, and for `--truncate-to-timestamp T` the offset
//! of the first `#TS:` annotation later than `T`. `moon-aof-tool check` prints it; the loader reads files
//! through the same [`AofReader`], so the two agree on every byte.
//!
//! What the tool decides, not this module: the line counter of redis-check-aof is global across the files
//! of a directory (add [`Verdict::lines`] of the earlier files to reproduce it), the prompts, the backups
//! and the truncation itself ([`super::load::truncate_file`]).

use super::stream::{AofReader, Damage, Event, RdbSniff, ReadError, Timestamp};
use crate::rdb::{self, LoadReport, RdbError};
use std::io;
use std::path::Path;

/// How to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// [`RdbSniff::Auto`] for a base or a legacy file, [`RdbSniff::Never`] for an incr file to match
    /// redis-check-aof (Redis's loader sniffs every file).
    pub sniff: RdbSniff,
    /// `--truncate-to-timestamp T`: stop at the first `#TS:` annotation later than `T`.
    pub truncate_to_timestamp: Option<i64>,
    /// How the RDB preamble is validated (checksum on by default).
    pub rdb: rdb::LoadOptions,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { sniff: RdbSniff::Auto, truncate_to_timestamp: None, rdb: rdb::LoadOptions::default() }
    }
}

/// What `--truncate-to-timestamp` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampCut {
    /// No annotation later than `T` before the scan ended ("Truncate nothing" when the file is valid).
    Nothing,
    /// The first `#TS:` later than `T` starts here: truncate to this offset (0 means "has nothing before
    /// timestamp", which redis-check-aof refuses).
    At(u64),
    /// A `#TS:` line before that is malformed ("Invalid timestamp annotation"); its offset.
    Invalid(u64),
}

/// The result of checking one file.
#[derive(Debug)]
#[non_exhaustive]
pub struct Verdict {
    pub size: u64,
    /// redis-check-aof's `ok_up_to`: everything before this offset is valid.
    pub ok_up_to: u64,
    /// Lines consumed, for `ok_up_to_line` (see [`Verdict::ok_up_to_line`]).
    pub lines: u64,
    /// The first damage (the scan stops there).
    pub damage: Option<Damage>,
    /// The RDB preamble's report and where it ended, if the file has one and it is sound.
    pub rdb: Option<(LoadReport, u64)>,
    /// A damaged RDB preamble ("RDB preamble of AOF file is not sane, aborting."): nothing after it was read.
    pub rdb_error: Option<RdbError>,
    pub commands: u64,
    pub transactions: u64,
    pub annotations: u64,
    pub first_timestamp: Option<i64>,
    pub last_timestamp: Option<i64>,
    /// Where Redis's loader (and Moon's, under `TruncateTornTail`) would cut a torn tail.
    pub loader_valid_up_to: u64,
    /// Offset of the first `*0`/negative-count command: redis-check-aof passes it, redis-server refuses the
    /// file ("Bad file format"), and so does Moon's loader.
    pub empty_command_at: Option<u64>,
    /// Set when [`CheckOptions::truncate_to_timestamp`] was given.
    pub timestamp: Option<TimestampCut>,
}

impl Verdict {
    /// redis-check-aof's `ok_up_to_line` for this file alone (its counter starts at 1).
    pub fn ok_up_to_line(&self) -> u64 {
        self.lines + 1
    }

    pub fn diff(&self) -> u64 {
        self.size.saturating_sub(self.ok_up_to)
    }

    /// What redis-check-aof calls valid: a sound preamble and nothing after `ok_up_to`.
    pub fn is_valid(&self) -> bool {
        self.rdb_error.is_none() && self.diff() == 0
    }

    /// The only damage is a torn tail (a cut command, or an unclosed MULTI at the end).
    pub fn torn_only(&self) -> bool {
        self.rdb_error.is_none() && self.damage.as_ref().is_some_and(|d| d.torn)
    }

    /// Valid, and redis-server's loader accepts the framing too (command names are not checked here).
    pub fn loads_in_redis(&self) -> bool {
        self.is_valid() && self.empty_command_at.is_none()
    }

    /// `AOF analyzed: filename=<name>, size=<n>, ok_up_to=<pos>, ok_up_to_line=<line>, diff=<d>`; pass the
    /// line number to print (this file's, or the running total for redis-check-aof's global counter).
    pub fn summary_line(&self, name: &str, ok_up_to_line: u64) -> String {
        format!(
            "AOF analyzed: filename={name}, size={}, ok_up_to={}, ok_up_to_line={ok_up_to_line}, diff={}",
            self.size,
            self.ok_up_to,
            self.diff()
        )
    }
}

/// Checks the file at `path`.
pub fn check_file(path: &Path, opts: &CheckOptions) -> io::Result<Verdict> {
    check_reader(AofReader::open(path)?, opts)
}

/// Checks what `reader` reads (its argument-keeping and sniffing settings are replaced by `opts`).
pub fn check_reader(reader: AofReader, opts: &CheckOptions) -> io::Result<Verdict> {
    let mut r = reader.keep_args(false).sniff_rdb(opts.sniff);
    let mut v = Verdict {
        size: 0,
        ok_up_to: 0,
        lines: 0,
        damage: None,
        rdb: None,
        rdb_error: None,
        commands: 0,
        transactions: 0,
        annotations: 0,
        first_timestamp: None,
        last_timestamp: None,
        loader_valid_up_to: 0,
        empty_command_at: None,
        timestamp: opts.truncate_to_timestamp.map(|_| TimestampCut::Nothing),
    };
    if r.has_rdb_preamble()? {
        match r.load_rdb_preamble(&opts.rdb, &mut rdb::Discard) {
            Ok(Some(report)) => v.rdb = Some((report, r.offset())),
            Ok(None) => {}
            Err(ReadError::Rdb(e)) => v.rdb_error = Some(e),
            Err(ReadError::Io(e)) => return Err(e),
            Err(ReadError::Damage(d)) => v.damage = Some(d),
        }
    }
    if v.rdb_error.is_none() {
        loop {
            match r.next_event() {
                Ok(None) => break,
                Ok(Some(Event::Command(c))) => {
                    v.commands += 1;
                    if c.argv.is_empty() && v.empty_command_at.is_none() {
                        v.empty_command_at = Some(c.offset);
                    }
                    if c.kind == super::stream::CommandKind::Exec {
                        v.transactions += 1;
                    }
                }
                Ok(Some(Event::Annotation(a))) => {
                    v.annotations += 1;
                    let ts = a.timestamp();
                    if let Timestamp::Valid(t) = ts {
                        v.first_timestamp.get_or_insert(t);
                        v.last_timestamp = Some(t);
                    }
                    if let Some(limit) = opts.truncate_to_timestamp {
                        match ts {
                            Timestamp::Invalid => {
                                v.timestamp = Some(TimestampCut::Invalid(a.offset));
                                break;
                            }
                            Timestamp::Valid(t) if t > limit => {
                                v.timestamp = Some(TimestampCut::At(a.offset));
                                break;
                            }
                            _ => {}
                        }
                    }
                }
                Err(ReadError::Damage(d)) => {
                    v.damage = Some(d);
                    break;
                }
                Err(ReadError::Io(e)) => return Err(e),
                Err(ReadError::Rdb(e)) => {
                    v.rdb_error = Some(e);
                    break;
                }
            }
        }
    }
    v.ok_up_to = r.ok_up_to();
    v.lines = r.lines();
    v.loader_valid_up_to = r.loader_valid_up_to();
    v.size = r.total_size()?;
    Ok(v)
}
