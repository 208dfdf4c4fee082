//! The command stream of one AOF file (a base or an incr): RESP multibulk commands, `#` annotation lines, an
//! optional RDB preamble at the start, with byte offsets, MULTI/EXEC balance, torn tails and format errors.
//!
//! There is one validator, and it accepts exactly what `redis-check-aof` 7.0.15 accepts (FORMATS.md §3.1):
//! `*<n>\r\n`, then `n` times `$<len>\r\n<len bytes>\r\n`, numbers read as C's `strtol` reads them (leading
//! white space, a sign, saturation), each CRLF checked, lines read with its 128-byte (`*`/`$` lines) and
//! 1024-byte (annotations) `fgets` buffers, MULTI/EXEC counted on the first argument. The errors carry
//! its exact texts and the offsets it reports ([`Damage::check_aof_text`]), and the reader keeps its
//! `ok_up_to` (`pos`) and line counter. The checker (`moon-aof-tool check`, [`super::check`]) and the loader
//! ([`super::load`]) both read through [`AofReader`].
//!
//! Where Redis 7.0's *loader* is laxer than redis-check-aof, we follow redis-check-aof and refuse; a file that
//! redis-check-aof passes and redis-server loads therefore always loads here:
//! - the loader does not check the CRLF after a length line or after an argument (`*1\n`, `PINGxx`): we do;
//! - it ignores a nested MULTI or an EXEC without MULTI (error replies to its fake client): we refuse them;
//! - it parses numbers with `atoi`/`strtol` in a 1024-byte buffer rather than 128 bytes: a length line longer
//!   than 127 bytes (only possible with padding) is refused, as redis-check-aof refuses it.
//!
//! One case goes the other way: redis-check-aof accepts `*0\r\n` (or a negative count) as an empty command,
//! while the loader stops with "Bad file format". The reader yields such a command with an empty `argv`;
//! the loader refuses it, and [`super::check::Verdict::empty_command_at`] reports it.
//!
//! Torn tails. A crash leaves a prefix of a valid file. The reader calls damage *torn* ([`Damage::torn`])
//! when the input ended inside an item whose bytes so far are a well-formed prefix (a partial `*`/`$` line
//! made of an optional sign, digits and an optional `\r`; a short argument; EOF inside MULTI). Anything else
//! is a format error, never truncated silently.
//!
//! Memory: the file is read in chunks (whole when it has an RDB preamble, since the RDB loader works on one
//! slice). A length is never trusted for an allocation: the buffer only grows as bytes actually arrive.
//! Arguments are [`Bytes`] slices of the chunk they were read from: no copy per argument.

use crate::rdb::{self, LoadReport, LoadTarget, RdbError};
use bytes::Bytes;
use std::fmt;
use std::io::{self, Read};
use std::path::Path;

/// Bytes read from a file at a time.
const CHUNK: usize = 4 << 20;
/// `readLong`'s `fgets` buffer holds 127 bytes and a NUL.
const NUMBER_LINE_MAX: usize = 127;
/// An annotation is read with `fgets` into `AOF_ANNOTATION_LINE_MAX_LEN` (1024) bytes: at most 1023 per read.
/// A longer `#` line goes on as a new item (which is a format error unless that part starts with `#` or `*`),
/// exactly as redis-check-aof and the loader read it.
pub const ANNOTATION_LINE_MAX: usize = 1023;

/// What a damaged file has at the point where reading stopped. Texts are redis-check-aof's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DamageKind {
    /// The file ended where a `$` line was expected (`fgets` found nothing). redis-check-aof prints no
    /// message for it, only the summary with `diff > 0`.
    Eof,
    /// `Expected prefix '%c', got: '%c'`.
    ExpectedPrefix { expected: u8, got: u8 },
    /// `Expected \r\n, got: %02x%02x` (the bytes found where CRLF should be; 0 past the end of the line).
    ExpectedCrlf { got: [u8; 2] },
    /// `Expected to read %ld bytes, got %ld bytes` (`expected` counts the argument's CRLF).
    ShortRead { expected: i64, got: i64 },
    /// `Expected to read string of %ld bytes, which is not in the suitable range`.
    StringRange { len: i64 },
    /// `AOF <name> format error`: an item starts with a byte other than `*` or `#`.
    FormatError { byte: u8 },
    /// `Unexpected MULTI in AOF <path>` (MULTI inside MULTI).
    UnexpectedMulti,
    /// `Unexpected EXEC in AOF <path>` (EXEC outside MULTI).
    UnexpectedExec,
    /// `Reached EOF before reading EXEC for MULTI`.
    EofInMulti,
}

/// Where and how a file is damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub kind: DamageKind,
    /// The offset redis-check-aof prints (its `epos`): the start of the line or argument being read, the
    /// start of the item for a format error.
    pub offset: u64,
    /// Start of the item (command or annotation) in which the damage was found.
    pub item_offset: u64,
    /// The input ended inside a well-formed prefix: what a crash during an append leaves.
    pub torn: bool,
}

impl Damage {
    /// redis-check-aof's error line for this damage, byte for byte: `0x%16llx: <msg>`, or the bare
    /// `AOF <name> format error`, or `None` where it prints nothing (a torn `$` line). `name` is the file name
    /// it was given, `path` the path it opened (the same for a single file; `<dir>/<name>` in a directory).
    pub fn check_aof_text(&self, name: &str, path: &str) -> Option<Vec<u8>> {
        let msg: Vec<u8> = match &self.kind {
            DamageKind::Eof => return None,
            DamageKind::FormatError { .. } => return Some(format!("AOF {name} format error").into_bytes()),
            DamageKind::ExpectedPrefix { expected, got } => {
                let mut m = b"Expected prefix '".to_vec();
                m.push(*expected);
                m.extend_from_slice(b"', got: '");
                // The message goes through a `%s`: a NUL byte ends it.
                if *got != 0 {
                    m.push(*got);
                    m.push(b'\'');
                }
                m
            }
            DamageKind::ExpectedCrlf { got } => {
                format!("Expected \\r\\n, got: {}{}", c_char_hex(got[0]), c_char_hex(got[1])).into_bytes()
            }
            DamageKind::ShortRead { expected, got } => {
                format!("Expected to read {expected} bytes, got {got} bytes").into_bytes()
            }
            DamageKind::StringRange { len } => {
                format!("Expected to read string of {len} bytes, which is not in the suitable range").into_bytes()
            }
            DamageKind::UnexpectedMulti => format!("Unexpected MULTI in AOF {path}").into_bytes(),
            DamageKind::UnexpectedExec => format!("Unexpected EXEC in AOF {path}").into_bytes(),
            DamageKind::EofInMulti => b"Reached EOF before reading EXEC for MULTI".to_vec(),
        };
        let mut out = format!("0x{:16x}: ", self.offset).into_bytes();
        out.extend_from_slice(&msg);
        Some(out)
    }

    /// A stable machine name for tests and `--json`.
    pub fn code(&self) -> &'static str {
        match self.kind {
            DamageKind::Eof => "eof",
            DamageKind::ExpectedPrefix { .. } => "expected-prefix",
            DamageKind::ExpectedCrlf { .. } => "expected-crlf",
            DamageKind::ShortRead { .. } => "short-read",
            DamageKind::StringRange { .. } => "string-range",
            DamageKind::FormatError { .. } => "format-error",
            DamageKind::UnexpectedMulti => "unexpected-multi",
            DamageKind::UnexpectedExec => "unexpected-exec",
            DamageKind::EofInMulti => "eof-in-multi",
        }
    }
}

/// `%02x` of a C `char` (signed on x86-64 and in Debian's build): bytes from 0x80 print sign-extended.
fn c_char_hex(b: u8) -> String {
    if b >= 0x80 {
        format!("ffffff{b:02x}")
    } else {
        format!("{b:02x}")
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            DamageKind::Eof => "unexpected end of file".to_string(),
            DamageKind::FormatError { byte } => format!("format error: an item starts with byte {byte:#04x}"),
            DamageKind::UnexpectedMulti => "Unexpected MULTI".to_string(),
            DamageKind::UnexpectedExec => "Unexpected EXEC".to_string(),
            _ => {
                let t = self.check_aof_text("", "").unwrap_or_default();
                // Drop the `0x...: ` prefix: the offset is printed below.
                let msg = t.get(20..).unwrap_or_default();
                String::from_utf8_lossy(msg).into_owned()
            }
        };
        let torn = if self.torn { ", torn tail" } else { "" };
        write!(f, "{what} at offset {} (item at offset {}{torn})", self.offset, self.item_offset)
    }
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The RDB preamble is damaged (always fatal: it is never truncated).
    #[error("RDB preamble: {0}")]
    Rdb(#[from] RdbError),
    #[error("{0}")]
    Damage(Damage),
}

/// How a MULTI/EXEC-relevant command was classified (first argument, case-insensitively, as redis-check-aof
/// compares it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Plain,
    Multi,
    Exec,
}

/// One command as stored.
#[derive(Debug, Clone)]
pub struct Command {
    /// Offset of its `*`.
    pub offset: u64,
    /// Offset just past its last CRLF.
    pub end: u64,
    /// The count as written (`*0` or a negative count give an empty `argv`).
    pub argc: i64,
    /// The arguments; only the first when the reader was built with `keep_args(false)`.
    pub argv: Vec<Bytes>,
    pub kind: CommandKind,
}

impl Command {
    /// The command name (first argument), if any.
    pub fn name(&self) -> Option<&[u8]> {
        self.argv.first().map(|b| &b[..])
    }
}

/// What a `#` line says about time, judged as `redis-check-aof --truncate-to-timestamp` judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    /// Not a `#TS:` line.
    None,
    /// `#TS:<secs>` followed by `\r`.
    Valid(i64),
    /// A `#TS:` line that redis-check-aof calls an "Invalid timestamp annotation" (no `\r` after the
    /// number, out of range).
    Invalid,
}

/// One `#` line (or its first 1023 bytes).
#[derive(Debug, Clone)]
pub struct Annotation {
    pub offset: u64,
    /// The bytes read, `#` first, with the line end if it was within the read.
    pub line: Bytes,
}

impl Annotation {
    pub fn timestamp(&self) -> Timestamp {
        let Some(rest) = self.line.strip_prefix(b"#TS:") else {
            return Timestamp::None;
        };
        let n = strtol(rest);
        match rest.get(n.end) {
            Some(b'\r') if !n.overflow => Timestamp::Valid(n.value),
            _ => Timestamp::Invalid,
        }
    }
}

/// One item of the stream.
#[derive(Debug, Clone)]
pub enum Event {
    Command(Command),
    Annotation(Annotation),
}

/// One item of the stream, borrowed from the reader ([`AofReader::next_raw`]): a command's arguments are
/// slices of the read buffer, with no per-argument reference count or vector.
#[derive(Debug)]
pub enum RawEvent<'a> {
    Command(RawCommand<'a>),
    Annotation(Annotation),
}

/// [`Command`], borrowed.
#[derive(Debug)]
pub struct RawCommand<'a> {
    pub offset: u64,
    pub end: u64,
    pub argc: i64,
    pub args: RawArgs<'a>,
    pub kind: CommandKind,
}

/// A command's arguments as ranges of a buffer (only the first when the reader was built with
/// `keep_args(false)`).
#[derive(Debug, Clone, Copy)]
pub struct RawArgs<'a> {
    buf: &'a Bytes,
    base: usize,
    ranges: &'a [(usize, usize)],
}

impl<'a> RawArgs<'a> {
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Argument `i` (panics when out of range, like slice indexing).
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (s, e) = self.ranges[i];
        &self.buf[self.base + s..self.base + e]
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let (buf, base) = (self.buf, self.base);
        self.ranges.iter().map(move |&(s, e)| &buf[base + s..base + e])
    }

    /// The arguments as [`Bytes`] sharing the read buffer.
    pub fn to_bytes(&self) -> Vec<Bytes> {
        self.ranges.iter().map(|&(s, e)| self.buf.slice(self.base + s..self.base + e)).collect()
    }
}

/// Whether to look for an RDB preamble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdbSniff {
    /// A file that starts with `REDIS` (or `VALKEY`) is an RDB, then RESP follows: what Redis's loader does
    /// for every file, and redis-check-aof for a base or a legacy file (`REDIS` and at least 8 bytes).
    Auto,
    /// Always RESP: what redis-check-aof does for incr files (an RDB there is a format error at offset 0).
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preamble {
    Unknown,
    Absent,
    /// Sniffed; the whole file is in `buf`; not loaded yet.
    Pending,
    /// Loaded or validated; RESP starts here.
    Done(u64),
}

/// A reader over the items of one AOF file.
pub struct AofReader {
    src: Option<Box<dyn Read + Send>>,
    /// Length of the file when known (only used to size reads).
    len_hint: Option<u64>,
    buf: Bytes,
    /// File offset of `buf[0]`.
    buf_off: u64,
    pos: usize,
    eof: bool,
    keep_args: bool,
    sniff: RdbSniff,
    preamble: Preamble,
    finished: bool,
    multi: bool,
    /// redis-check-aof's line counter, less its initial 1.
    lines: u64,
    /// redis-check-aof's `epos`.
    epos: u64,
    /// redis-check-aof's `pos`.
    ok_up_to: u64,
    /// The loader's `valid_up_to` (end of the last complete command) and `valid_before_multi`.
    last_cmd_end: u64,
    before_multi: u64,
    ranges: Vec<(usize, usize)>,
    chunk: usize,
    /// redis-check-aof reads every `*` line into the same stack buffer; when a cut line leaves `strtol` at
    /// its end, the byte it prints after the NUL is left over from the previous `*` line. Kept so the
    /// message of the most common torn tail (a lone `*`) is the same byte for byte.
    star_buf: [u8; NUMBER_LINE_MAX + 1],
}

impl AofReader {
    /// Reads the file at `path` in chunks.
    pub fn open(path: &Path) -> io::Result<AofReader> {
        let f = std::fs::File::open(path)?;
        let len = f.metadata()?.len();
        Ok(AofReader::from_reader(f, Some(len)))
    }

    /// Reads from any source; `len_hint` (the file size, if known) only sizes the reads.
    pub fn from_reader(r: impl Read + Send + 'static, len_hint: Option<u64>) -> AofReader {
        let mut a = AofReader::from_bytes(Bytes::new());
        a.src = Some(Box::new(r));
        a.eof = false;
        a.len_hint = len_hint;
        a
    }

    /// Reads a file already in memory.
    pub fn from_bytes(b: Bytes) -> AofReader {
        AofReader {
            src: None,
            len_hint: Some(b.len() as u64),
            buf: b,
            buf_off: 0,
            pos: 0,
            eof: true,
            keep_args: true,
            sniff: RdbSniff::Auto,
            preamble: Preamble::Unknown,
            finished: false,
            multi: false,
            lines: 0,
            epos: 0,
            ok_up_to: 0,
            last_cmd_end: 0,
            before_multi: 0,
            ranges: Vec::new(),
            chunk: CHUNK,
            star_buf: [0; NUMBER_LINE_MAX + 1],
        }
    }

    /// Bytes read from the source at a time (default 4 MiB; tests use tiny chunks to cut items anywhere).
    pub fn chunk_size(mut self, n: usize) -> AofReader {
        self.chunk = n.max(1);
        self
    }

    /// With `false`, commands carry only their first argument (a checker needs no more; faster).
    pub fn keep_args(mut self, keep: bool) -> AofReader {
        self.keep_args = keep;
        self
    }

    /// Whether to sniff an RDB preamble (default [`RdbSniff::Auto`]).
    pub fn sniff_rdb(mut self, sniff: RdbSniff) -> AofReader {
        self.sniff = sniff;
        self
    }

    /// Whether the file starts with an RDB (reads the whole file into memory when it does).
    pub fn has_rdb_preamble(&mut self) -> io::Result<bool> {
        if self.preamble == Preamble::Unknown {
            self.preamble = Preamble::Absent;
            if self.sniff == RdbSniff::Auto {
                self.fill(6)?;
                let head = &self.buf[..];
                if head.starts_with(b"REDIS") || head.starts_with(b"VALKEY") {
                    self.fill(usize::MAX)?;
                    self.preamble = Preamble::Pending;
                }
            }
        }
        Ok(matches!(self.preamble, Preamble::Pending | Preamble::Done(_)))
    }

    /// Loads the RDB preamble into `target` (call after [`AofReader::has_rdb_preamble`] says there is one;
    /// `Ok(None)` otherwise). RESP reading then continues after the RDB's checksum. If the caller reads
    /// events without loading it, the preamble is validated into [`rdb::Discard`] first.
    pub fn load_rdb_preamble(
        &mut self,
        opts: &rdb::LoadOptions,
        target: &mut dyn LoadTarget,
    ) -> Result<Option<LoadReport>, ReadError> {
        if !self.has_rdb_preamble()? || self.preamble != Preamble::Pending {
            return Ok(None);
        }
        let report = rdb::load(&self.buf[..], opts, target)?;
        self.pos = report.bytes_consumed;
        let end = self.buf_off + self.pos as u64;
        self.preamble = Preamble::Done(end);
        self.ok_up_to = end;
        self.last_cmd_end = end;
        Ok(Some(report))
    }

    /// Where the RDB preamble ended, once loaded.
    pub fn rdb_end(&self) -> Option<u64> {
        match self.preamble {
            Preamble::Done(end) => Some(end),
            _ => None,
        }
    }

    /// redis-check-aof's `ok_up_to`: the start of the item being read, or of the open MULTI.
    pub fn ok_up_to(&self) -> u64 {
        self.ok_up_to
    }

    /// CRLF-terminated `*`/`$` lines and arguments consumed so far, including those of a failed item
    /// (redis-check-aof's `ok_up_to_line` is 1 + this, summed over files in a directory: its counter is
    /// never reset).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Where Redis's loader would truncate a torn file: after the last complete command, or before the
    /// open MULTI. Annotations after that command are dropped with the tail, as Redis does.
    pub fn loader_valid_up_to(&self) -> u64 {
        if self.multi {
            self.before_multi
        } else {
            self.last_cmd_end
        }
    }

    /// Whether a MULTI is open.
    pub fn in_multi(&self) -> bool {
        self.multi
    }

    /// Offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.buf_off + self.pos as u64
    }

    /// The file's size: what was read when at the end, else the length given at open, else what is left
    /// is read (and dropped) to count it.
    pub fn total_size(&mut self) -> io::Result<u64> {
        if !self.eof {
            if let Some(n) = self.len_hint {
                return Ok(n);
            }
            if let Some(src) = self.src.as_mut() {
                let rest = io::copy(src, &mut io::sink())?;
                let total = self.buf_off + self.buf.len() as u64 + rest;
                self.src = None;
                self.finished = true;
                self.len_hint = Some(total);
                return Ok(total);
            }
        }
        Ok(self.buf_off + self.buf.len() as u64)
    }

    /// The next item. `Ok(None)` at the end; after an error the reader is finished.
    pub fn next_event(&mut self) -> Result<Option<Event>, ReadError> {
        Ok(self.next_raw()?.map(|e| match e {
            RawEvent::Annotation(a) => Event::Annotation(a),
            RawEvent::Command(c) => Event::Command(Command {
                offset: c.offset,
                end: c.end,
                argc: c.argc,
                argv: c.args.to_bytes(),
                kind: c.kind,
            }),
        }))
    }

    /// [`AofReader::next_event`] without copies: the command's arguments borrow the reader until the next
    /// call (what a replay that copies or parses the arguments anyway wants).
    pub fn next_raw(&mut self) -> Result<Option<RawEvent<'_>>, ReadError> {
        if self.finished {
            return Ok(None);
        }
        if self.preamble == Preamble::Unknown {
            self.has_rdb_preamble()?;
        }
        if self.preamble == Preamble::Pending {
            if let Err(e) = self.load_rdb_preamble(&rdb::LoadOptions::default(), &mut rdb::Discard) {
                self.finished = true;
                return Err(e);
            }
        }
        loop {
            let at = self.offset();
            if !self.multi {
                self.ok_up_to = at;
            }
            if self.pos == self.buf.len() {
                if !self.eof {
                    self.fill(1)?;
                    continue;
                }
                self.finished = true;
                if self.multi {
                    let d = Damage { kind: DamageKind::EofInMulti, offset: self.epos, item_offset: at, torn: true };
                    return Err(ReadError::Damage(d));
                }
                return Ok(None);
            }
            let item = &self.buf[self.pos..];
            let mut p = Parser {
                buf: item,
                pos: 0,
                eof: self.eof,
                lines: 0,
                epos: 0,
                multi: self.multi,
                star_buf: &self.star_buf,
                star_line: None,
            };
            let res = match item[0] {
                b'#' => p.annotation().map(Parsed::Annotation),
                b'*' => p.command(self.keep_args, &mut self.ranges).map(|(argc, kind)| Parsed::Command { argc, kind }),
                byte => Err(Stop::Fail(Fail { kind: DamageKind::FormatError { byte }, torn: false })),
            };
            let (lines, epos, len, multi_now, star_line) = (p.lines, p.epos as u64, p.pos, p.multi, p.star_line);
            if !matches!(res, Err(Stop::More(_))) {
                if let Some((s, n)) = star_line {
                    self.star_buf[..n].copy_from_slice(&item[s..s + n]);
                    self.star_buf[n] = 0;
                }
            }
            match res {
                Err(Stop::More(n)) => {
                    self.fill(n)?;
                    continue;
                }
                Err(Stop::Fail(mut f)) => {
                    self.lines += lines;
                    self.finished = true;
                    let offset = if let DamageKind::FormatError { .. } = f.kind {
                        at
                    } else {
                        self.epos = at + epos;
                        self.epos
                    };
                    // redis-check-aof counts MULTI/EXEC as soon as it has read the first argument: a silent
                    // EOF after that, inside a transaction, is reported as the unclosed MULTI.
                    if f.kind == DamageKind::Eof && multi_now {
                        f.kind = DamageKind::EofInMulti;
                    }
                    return Err(ReadError::Damage(Damage { kind: f.kind, offset, item_offset: at, torn: f.torn }));
                }
                Ok(parsed) => {
                    self.lines += lines;
                    self.epos = at + epos;
                    let start = self.pos;
                    self.pos += len;
                    let end = self.offset();
                    return Ok(Some(match parsed {
                        Parsed::Annotation(n) => {
                            RawEvent::Annotation(Annotation { offset: at, line: self.buf.slice(start..start + n) })
                        }
                        Parsed::Command { argc, kind } => {
                            match kind {
                                CommandKind::Multi => {
                                    self.multi = true;
                                    self.before_multi = self.last_cmd_end;
                                }
                                CommandKind::Exec => self.multi = false,
                                CommandKind::Plain => {}
                            }
                            self.last_cmd_end = end;
                            let args = RawArgs { buf: &self.buf, base: start, ranges: &self.ranges };
                            RawEvent::Command(RawCommand { offset: at, end, argc, args, kind })
                        }
                    }));
                }
            }
        }
    }

    /// Makes at least `want` bytes available from `pos`, or as many as the file has (then `eof` is set).
    /// Unread bytes move to a new buffer that grows only as data arrives, so a huge length read from a
    /// damaged file never allocates more than the file holds.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        let have = self.buf.len() - self.pos;
        if have >= want || self.eof {
            return Ok(());
        }
        // No source and not at the end: the rest was drained by `total_size` (the reader is finished).
        let Some(src) = self.src.as_mut() else {
            return Ok(());
        };
        // Read at least a chunk and at least double what is pending, so a long item is parsed
        // O(log n) times rather than once per chunk.
        let target = want.max(have.saturating_add(self.chunk)).max(have.saturating_mul(2));
        let left_in_file = self.len_hint.map(|n| n.saturating_sub(self.buf_off + self.buf.len() as u64));
        let reserve = match left_in_file {
            Some(left) => have.saturating_add(usize::try_from(left).unwrap_or(usize::MAX)).min(target),
            None => have.saturating_add(self.chunk).min(target),
        };
        let mut next = Vec::with_capacity(reserve.saturating_add(1));
        next.extend_from_slice(&self.buf[self.pos..]);
        let limit = (target - have) as u64;
        let got = src.by_ref().take(limit).read_to_end(&mut next)?;
        if (got as u64) < limit {
            self.eof = true;
            self.src = None;
        }
        self.buf_off += self.pos as u64;
        self.buf = Bytes::from(next);
        self.pos = 0;
        Ok(())
    }
}

enum Parsed {
    Annotation(usize),
    Command { argc: i64, kind: CommandKind },
}

struct Fail {
    kind: DamageKind,
    torn: bool,
}

enum Stop {
    /// The item needs at least this many bytes from its start before it can be decided.
    More(usize),
    Fail(Fail),
}

/// Parses one item from the start of `buf` without side effects outside itself, so an item cut by the end
/// of a chunk is simply parsed again once more bytes are in.
struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    eof: bool,
    lines: u64,
    epos: usize,
    /// Inside MULTI, counting the current command's first argument once read.
    multi: bool,
    star_buf: &'a [u8; NUMBER_LINE_MAX + 1],
    /// The `*` line read (to become the next `star_buf`).
    star_line: Option<(usize, usize)>,
}

impl Parser<'_> {
    fn fail<T>(&self, kind: DamageKind, torn: bool) -> Result<T, Stop> {
        Err(Stop::Fail(Fail { kind, torn }))
    }

    /// `fgets` with a buffer of `max + 1` bytes: up to and including `\n`, or `max` bytes. Returns the range
    /// and whether the line was cut by the end of the file; `None` when nothing is left.
    fn read_line(&mut self, max: usize) -> Result<Option<(usize, usize, bool)>, Stop> {
        let start = self.pos;
        let avail = self.buf.len() - start;
        let window = &self.buf[start..start + avail.min(max)];
        if let Some(i) = window.iter().position(|&b| b == b'\n') {
            self.pos = start + i + 1;
            return Ok(Some((start, i + 1, false)));
        }
        if window.len() == max {
            self.pos = start + max;
            return Ok(Some((start, max, false)));
        }
        if !self.eof {
            return Err(Stop::More(start + max));
        }
        if window.is_empty() {
            return Ok(None);
        }
        self.pos = start + window.len();
        Ok(Some((start, window.len(), true)))
    }

    /// redis-check-aof's `readLong`: a line, its prefix byte, `strtol`, then CRLF.
    fn read_long(&mut self, prefix: u8) -> Result<i64, Stop> {
        self.epos = self.pos;
        // The line of every well-formed item, `<prefix><1 to 18 digits>\r\n`, read directly; it gives
        // exactly what the line read and `strtol` below give for it. Anything else takes that path.
        let b = &self.buf[self.pos..];
        if b.first() == Some(&prefix) {
            let digits = b[1..].iter().take(18).take_while(|c| c.is_ascii_digit()).count();
            let n = digits + 3;
            if digits > 0 && b.len() >= n && &b[digits + 1..n] == b"\r\n" {
                let value = b[1..=digits].iter().fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'));
                if prefix == b'*' {
                    self.star_line = Some((self.pos, n));
                }
                self.pos += n;
                self.lines += 1;
                return Ok(value);
            }
        }
        let Some((s, n, cut)) = self.read_line(NUMBER_LINE_MAX)? else {
            return self.fail(DamageKind::Eof, true);
        };
        let line = &self.buf[s..s + n];
        if prefix == b'*' {
            self.star_line = Some((s, n));
        }
        if line[0] != prefix {
            return self.fail(DamageKind::ExpectedPrefix { expected: prefix, got: line[0] }, false);
        }
        let body = &line[1..];
        let num = strtol(body);
        let rest = &body[num.end..];
        if rest.starts_with(b"\r\n") {
            self.lines += 1;
            return Ok(num.value);
        }
        // Past the line C sees the NUL `fgets` wrote, then what was left in its buffer: the previous `*`
        // line for `*` lines; for `$` lines other calls have overwritten it with zeros, in practice.
        let c_byte = |i: usize| match i.cmp(&n) {
            std::cmp::Ordering::Less => line[i],
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater if prefix == b'*' => self.star_buf.get(i).copied().unwrap_or(0),
            std::cmp::Ordering::Greater => 0,
        };
        let at = 1 + num.end;
        let got = [c_byte(at), c_byte(at + 1)];
        self.fail(DamageKind::ExpectedCrlf { got }, cut && is_number_prefix(body))
    }

    /// redis-check-aof's `readString`: a `$` line, then the bytes and their CRLF. Returns the data range.
    fn read_string(&mut self) -> Result<(usize, usize), Stop> {
        let len = self.read_long(b'$')?;
        if !(0..=i64::MAX - 2).contains(&len) {
            return self.fail(DamageKind::StringRange { len }, false);
        }
        let total = len + 2;
        self.epos = self.pos;
        let avail = self.buf.len() - self.pos;
        if (avail as u64) < total as u64 {
            if !self.eof {
                let total = usize::try_from(total).unwrap_or(usize::MAX);
                return Err(Stop::More(self.pos.saturating_add(total)));
            }
            return self.fail(DamageKind::ShortRead { expected: total, got: avail as i64 }, true);
        }
        let start = self.pos;
        let end = start + len as usize;
        self.pos = end + 2;
        let crlf = &self.buf[end..end + 2];
        if crlf != b"\r\n" {
            return self.fail(DamageKind::ExpectedCrlf { got: [crlf[0], crlf[1]] }, false);
        }
        self.lines += 1;
        Ok((start, end))
    }

    /// redis-check-aof's `processRESP`; `ranges` gets the arguments kept.
    fn command(&mut self, keep: bool, ranges: &mut Vec<(usize, usize)>) -> Result<(i64, CommandKind), Stop> {
        ranges.clear();
        let multi = self.multi;
        let argc = self.read_long(b'*')?;
        let mut kind = CommandKind::Plain;
        let mut i = 0i64;
        while i < argc {
            let (s, e) = self.read_string()?;
            if i == 0 {
                // strcasecmp sees the argument up to its first NUL.
                let name = &self.buf[s..e];
                let name = name.iter().position(|&b| b == 0).map_or(name, |z| &name[..z]);
                if name.eq_ignore_ascii_case(b"multi") {
                    if multi {
                        return self.fail(DamageKind::UnexpectedMulti, false);
                    }
                    kind = CommandKind::Multi;
                    self.multi = true;
                } else if name.eq_ignore_ascii_case(b"exec") {
                    if !multi {
                        return self.fail(DamageKind::UnexpectedExec, false);
                    }
                    kind = CommandKind::Exec;
                    self.multi = false;
                }
            }
            if keep || i == 0 {
                ranges.push((s, e));
            }
            i += 1;
        }
        Ok((argc, kind))
    }

    /// A `#` line (at most [`ANNOTATION_LINE_MAX`] bytes); returns its length.
    fn annotation(&mut self) -> Result<usize, Stop> {
        self.epos = self.pos;
        match self.read_line(ANNOTATION_LINE_MAX)? {
            Some((_, n, _)) => Ok(n),
            None => self.fail(DamageKind::Eof, true),
        }
    }
}

/// `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Whether a `*`/`$` line cut by EOF is a prefix of a well-formed number line: `[+-]?[0-9]*\r?`.
fn is_number_prefix(body: &[u8]) -> bool {
    let b = body.strip_prefix(b"+").or_else(|| body.strip_prefix(b"-")).unwrap_or(body);
    let b = b.strip_suffix(b"\r").unwrap_or(b);
    b.iter().all(u8::is_ascii_digit)
}

struct Strtol {
    value: i64,
    /// Bytes used; 0 when no digits were found (C's `endptr == nptr`).
    end: usize,
    overflow: bool,
}

/// C's `strtol(s, &end, 10)` on a 64-bit `long`: white space, a sign, digits; saturates on overflow.
fn strtol(s: &[u8]) -> Strtol {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if let Some(&c @ (b'+' | b'-')) = s.get(i) {
        neg = c == b'-';
        i += 1;
    }
    let digits = i;
    let mut value = 0i64;
    let mut overflow = false;
    while let Some(&c) = s.get(i).filter(|c| c.is_ascii_digit()) {
        let d = i64::from(c - b'0');
        if !overflow {
            let next = value.checked_mul(10).and_then(|v| if neg { v.checked_sub(d) } else { v.checked_add(d) });
            match next {
                Some(v) => value = v,
                None => overflow = true,
            }
        }
        i += 1;
    }
    if i == digits {
        return Strtol { value: 0, end: 0, overflow: false };
    }
    if overflow {
        value = if neg { i64::MIN } else { i64::MAX };
    }
    Strtol { value, end: i, overflow }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
