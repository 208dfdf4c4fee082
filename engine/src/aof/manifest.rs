//! The AOF manifest (`<appendfilename>.manifest`): types, parser and writer, and the file-name rules.
//! FORMATS.md §1.1-§1.2; the grammar is written down in `engine/FORMAT.md` ("AOF").
//!
//! The parser is Redis 7.0's `aofLoadManifestFromFile` rule for rule (checked against redis-server and
//! redis-check-aof 7.0.15, see the tests): `fgets` chunks of at most 1024 bytes, `#` comments, trimming,
//! `sdssplitargs` tokens ([`crate::resp::split_args`]), key/value pairs with unknown keys ignored, `atoll`
//! sequence numbers, and the same error texts. Two deliberate differences, both about manifests Redis never
//! writes: a negative `seq` is rejected (Redis accepts it for `b`/`h` lines), and the writer quotes names
//! containing `'` (Redis writes them bare and then cannot read its own manifest back).

use crate::resp::split_args;
use crate::util::eq_ic;
use std::borrow::Cow;
use std::fmt;

/// Redis's `MANIFEST_MAX_LINE`: a line is read into a buffer of this many bytes plus the terminator, so a
/// line may hold at most 1023 bytes before its `\n`.
pub const MANIFEST_MAX_LINE: usize = 1024;

/// The role of a file listed in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AofKind {
    /// `type b`: the base (RDB or RESP), loaded first.
    Base,
    /// `type h`: a former base or incr waiting to be deleted; never loaded.
    History,
    /// `type i`: an incremental file, replayed in order after the base.
    Incr,
}

impl AofKind {
    /// The manifest's type character.
    pub fn as_byte(self) -> u8 {
        match self {
            AofKind::Base => b'b',
            AofKind::History => b'h',
            AofKind::Incr => b'i',
        }
    }

    /// The kind named by a manifest type character (Redis looks at the first byte of the value only).
    pub fn from_byte(c: u8) -> Option<AofKind> {
        match c {
            b'b' => Some(AofKind::Base),
            b'h' => Some(AofKind::History),
            b'i' => Some(AofKind::Incr),
            _ => None,
        }
    }
}

/// One `file <name> seq <seq> type <t>` line. Names are bytes: a manifest may quote any byte with `\xHH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofInfo {
    pub name: Vec<u8>,
    pub seq: u64,
    pub kind: AofKind,
}

impl AofInfo {
    pub fn new(name: impl Into<Vec<u8>>, seq: u64, kind: AofKind) -> AofInfo {
        AofInfo { name: name.into(), seq, kind }
    }

    /// The name for logs and messages (invalid UTF-8 replaced).
    pub fn name_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }
}

/// A parsed manifest. `history` keeps the order it is written in (newest first); `incrs` are in ascending seq.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofInfo>,
    pub history: Vec<AofInfo>,
    pub incrs: Vec<AofInfo>,
}

impl Manifest {
    /// Parses a manifest file's bytes exactly as Redis 7.0 does.
    pub fn parse(data: &[u8]) -> Result<Manifest, ManifestError> {
        let mut m = Manifest::default();
        let mut line_number = 0usize;
        let mut pos = 0usize;
        while pos < data.len() {
            // One `fgets(buf, 1025, fp)`: up to 1024 bytes, ending after the first `\n`.
            let limit = data.len().min(pos + MANIFEST_MAX_LINE);
            let end = match data[pos..limit].iter().position(|&b| b == b'\n') {
                Some(i) => pos + i + 1,
                None => limit,
            };
            let chunk = &data[pos..end];
            pos = end;
            line_number += 1;
            if chunk[0] == b'#' {
                continue;
            }
            // From here on the C code sees a NUL-terminated string.
            let chunk = until_nul(chunk);
            if !chunk.contains(&b'\n') {
                return Err(ManifestError { kind: ManifestErrorKind::LineTooLong, line: None });
            }
            let line = trim(chunk);
            let fail =
                |kind| ManifestError { kind, line: Some(ManifestLine { number: line_number, text: line.to_vec() }) };
            let info = parse_line(line).map_err(fail)?;
            match info.kind {
                AofKind::Base => {
                    if m.base.is_some() {
                        return Err(fail(ManifestErrorKind::DuplicateBase));
                    }
                    m.base = Some(info);
                }
                AofKind::History => m.history.push(info),
                AofKind::Incr => {
                    if info.seq <= m.curr_incr_seq() {
                        return Err(fail(ManifestErrorKind::NonMonotonicSeq));
                    }
                    m.incrs.push(info);
                }
            }
        }
        if line_number == 0 {
            return Err(ManifestError { kind: ManifestErrorKind::Empty, line: None });
        }
        Ok(m)
    }

    /// The manifest's bytes as Redis writes them: the base line, then the history lines, then the incr lines,
    /// each `file <name> seq <seq> type <t>\n`, names quoted as `sdscatrepr` does when they need it.
    /// Fails (without writing anything) if a line would exceed what [`Manifest::parse`] accepts.
    pub fn encode(&self) -> Result<Vec<u8>, ManifestError> {
        let mut out = Vec::new();
        for (i, info) in self.files().enumerate() {
            let start = out.len();
            out.extend_from_slice(b"file ");
            push_name(&mut out, &info.name);
            out.extend_from_slice(b" seq ");
            out.extend_from_slice(info.seq.to_string().as_bytes());
            out.extend_from_slice(b" type ");
            out.push(info.kind.as_byte());
            if out.len() - start >= MANIFEST_MAX_LINE {
                let text = out[start..].to_vec();
                return Err(ManifestError {
                    kind: ManifestErrorKind::LineTooLong,
                    line: Some(ManifestLine { number: i + 1, text }),
                });
            }
            out.push(b'\n');
        }
        Ok(out)
    }

    /// Every listed file in written order: base, history, incrs.
    pub fn files(&self) -> impl Iterator<Item = &AofInfo> {
        self.base.iter().chain(self.history.iter()).chain(self.incrs.iter())
    }

    /// The files a load reads, in order: the base, then every incr. History files are never loaded.
    pub fn files_to_load(&self) -> impl Iterator<Item = &AofInfo> {
        self.base.iter().chain(self.incrs.iter())
    }

    /// No base and no incr (history does not count): what Redis treats as "no AOF yet", leading to the
    /// legacy upgrade or a fresh start.
    pub fn is_empty(&self) -> bool {
        self.base.is_none() && self.incrs.is_empty()
    }

    /// Redis's `curr_base_file_seq` as recomputed on load: the base line's seq, or 0.
    pub fn curr_base_seq(&self) -> u64 {
        self.base.as_ref().map_or(0, |b| b.seq)
    }

    /// Redis's `curr_incr_file_seq` as recomputed on load: the seq of the last incr line, or 0.
    pub fn curr_incr_seq(&self) -> u64 {
        self.incrs.last().map_or(0, |i| i.seq)
    }

    /// The incr file being appended to while AOF is on.
    pub fn last_incr(&self) -> Option<&AofInfo> {
        self.incrs.last()
    }

    /// Whether any line (of any type) names `name`.
    pub fn mentions(&self, name: &[u8]) -> bool {
        self.files().any(|f| f.name == name)
    }
}

/// A manifest line an error refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestLine {
    /// 1-based, counting `fgets` chunks as Redis does (a comment longer than 1024 bytes counts twice).
    pub number: usize,
    /// The line after trimming, as Redis prints it after `>>>`.
    pub text: Vec<u8>,
}

/// What is wrong with a manifest; `Display` is Redis's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestErrorKind {
    /// A 0-byte manifest.
    Empty,
    /// A line of 1024 bytes or more, a last line without `\n`, or a NUL byte before the `\n`.
    LineTooLong,
    /// A blank line, unbalanced quotes, fewer than 6 or an odd number of tokens, or a missing/zero
    /// `file`, `seq` or `type`.
    InvalidFormat,
    /// A `file` value containing `/` or `\`.
    NotBaseName,
    /// A second `type b` line.
    DuplicateBase,
    /// A `type i` line whose seq is not greater than the previous one's.
    NonMonotonicSeq,
    /// A `type` whose first byte is not `b`, `h` or `i`.
    UnknownType,
}

impl ManifestErrorKind {
    /// Redis 7.0's message for this error.
    pub fn message(self) -> &'static str {
        match self {
            ManifestErrorKind::Empty => "Found an empty AOF manifest",
            ManifestErrorKind::LineTooLong => "The AOF manifest file contains too long line",
            ManifestErrorKind::InvalidFormat => "Invalid AOF manifest file format",
            ManifestErrorKind::NotBaseName => "File can't be a path, just a filename",
            ManifestErrorKind::DuplicateBase => "Found duplicate base file information",
            ManifestErrorKind::NonMonotonicSeq => "Found a non-monotonic sequence number",
            ManifestErrorKind::UnknownType => "Unknown AOF file type",
        }
    }
}

impl fmt::Display for ManifestErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A manifest Redis would refuse, with the line it refused (Redis prints no line for an empty manifest or a
/// too long line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub kind: ManifestErrorKind,
    pub line: Option<ManifestLine>,
}

impl ManifestError {
    /// The lines Redis logs before `exit(1)` (each is one `serverLog` call; the first one is empty because
    /// Redis's message starts with a newline):
    /// `""`, `*** FATAL AOF MANIFEST FILE ERROR ***`, `Reading the manifest file, at line N`,
    /// `>>> '<line>'`, `<message>`. The two middle lines only when the error has a line.
    pub fn log_lines(&self) -> Vec<String> {
        let mut lines = vec![String::new(), "*** FATAL AOF MANIFEST FILE ERROR ***".to_string()];
        if let Some(l) = &self.line {
            lines.push(format!("Reading the manifest file, at line {}", l.number));
            lines.push(format!(">>> '{}'", String::from_utf8_lossy(&l.text)));
        }
        lines.push(self.kind.message().to_string());
        lines
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.line {
            Some(l) => write!(f, "{} (at line {}: '{}')", self.kind, l.number, String::from_utf8_lossy(&l.text)),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for ManifestError {}

/// One trimmed, non-comment line. The checks run in Redis's order: token count, then each pair (a bad
/// `file` value fails at once), then presence of name/seq/type, then the type.
fn parse_line(line: &[u8]) -> Result<AofInfo, ManifestErrorKind> {
    if line.is_empty() {
        return Err(ManifestErrorKind::InvalidFormat);
    }
    let args = split_args(line).ok_or(ManifestErrorKind::InvalidFormat)?;
    if args.len() < 6 || args.len() % 2 != 0 {
        return Err(ManifestErrorKind::InvalidFormat);
    }
    let (mut name, mut seq, mut kind_byte) = (None, 0i64, 0u8);
    for pair in args.chunks_exact(2) {
        let (key, value) = (&pair[0][..], &pair[1][..]);
        if eq_ic(key, "file") {
            // `sdsnew(argv[i+1])`: the name ends at a NUL byte.
            let v = until_nul(value);
            if !is_base_name(v) {
                return Err(ManifestErrorKind::NotBaseName);
            }
            name = Some(v.to_vec());
        } else if eq_ic(key, "seq") {
            seq = atoll(value);
        } else if eq_ic(key, "type") {
            kind_byte = value.first().copied().unwrap_or(0);
        }
    }
    let Some(name) = name else { return Err(ManifestErrorKind::InvalidFormat) };
    if seq == 0 || kind_byte == 0 {
        return Err(ManifestErrorKind::InvalidFormat);
    }
    // Redis keeps a negative seq for `b`/`h` lines; no Redis writes one and the next name would be nonsense.
    if seq < 0 {
        return Err(ManifestErrorKind::InvalidFormat);
    }
    let kind = AofKind::from_byte(kind_byte).ok_or(ManifestErrorKind::UnknownType)?;
    Ok(AofInfo { name, seq: seq as u64, kind })
}

/// Redis's `pathIsBaseName`: no `/` and no `\` (up to the first NUL).
pub fn is_base_name(name: &[u8]) -> bool {
    !until_nul(name).iter().any(|&c| c == b'/' || c == b'\\')
}

/// glibc's `atoll` (`strtoll(s, NULL, 10)`): leading white space, an optional sign, then digits up to the
/// first non-digit; 0 when there are none; saturates at the `long long` limits.
fn atoll(s: &[u8]) -> i64 {
    let s = until_nul(s);
    let mut i = s.iter().take_while(|&&c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')).count();
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    for &c in s[i..].iter().take_while(|c| c.is_ascii_digit()) {
        let d = i64::from(c - b'0');
        v = if neg { v.saturating_mul(10).saturating_sub(d) } else { v.saturating_mul(10).saturating_add(d) };
    }
    v
}

fn until_nul(s: &[u8]) -> &[u8] {
    match s.iter().position(|&c| c == 0) {
        Some(i) => &s[..i],
        None => s,
    }
}

/// `sdstrim(line, " \t\r\n")`.
fn trim(s: &[u8]) -> &[u8] {
    let strip = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let start = s.iter().position(|c| !strip(c)).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !strip(c)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// C's `isprint` in the C locale.
fn is_print(c: u8) -> bool {
    (0x20..=0x7e).contains(&c)
}

/// Redis's `sdsneedsrepr`, plus `'` (which `sdssplitargs` would read as an opening quote) and the empty name
/// (which would vanish from the line).
fn needs_repr(name: &[u8]) -> bool {
    name.is_empty()
        || name.iter().any(|&c| {
            matches!(c, b'\\' | b'"' | b'\'' | b'\n' | b'\r' | b'\t' | 0x07 | 0x08 | b' ' | 0x0b | 0x0c) || !is_print(c)
        })
}

/// Appends `name` as the manifest writer does: verbatim, or quoted like `sdscatrepr`.
fn push_name(out: &mut Vec<u8>, name: &[u8]) {
    if !needs_repr(name) {
        out.extend_from_slice(name);
        return;
    }
    out.push(b'"');
    for &c in name {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            c if is_print(c) => out.push(c),
            c => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// The format of a base file, from `aof-use-rdb-preamble` when the base is created. It decides the name's
/// suffix only: loaders sniff the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseFormat {
    /// `aof-use-rdb-preamble yes`: `<appendfilename>.<seq>.base.rdb`.
    Rdb,
    /// `aof-use-rdb-preamble no`: `<appendfilename>.<seq>.base.aof` (RESP commands).
    Resp,
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `<appendfilename>.<seq>.base.rdb` or `<appendfilename>.<seq>.base.aof`.
pub fn base_name(appendfilename: &[u8], seq: u64, format: BaseFormat) -> Vec<u8> {
    let suffix: &[u8] = match format {
        BaseFormat::Rdb => b".base.rdb",
        BaseFormat::Resp => b".base.aof",
    };
    join(&[appendfilename, b".", seq.to_string().as_bytes(), suffix])
}

/// `<appendfilename>.<seq>.incr.aof`.
pub fn incr_name(appendfilename: &[u8], seq: u64) -> Vec<u8> {
    join(&[appendfilename, b".", seq.to_string().as_bytes(), b".incr.aof"])
}

/// `<appendfilename>.manifest`, in the AOF directory.
pub fn manifest_name(appendfilename: &[u8]) -> Vec<u8> {
    join(&[appendfilename, b".manifest"])
}

/// `temp-<appendfilename>.manifest`, in the AOF directory: written, fsynced, renamed over the manifest.
pub fn temp_manifest_name(appendfilename: &[u8]) -> Vec<u8> {
    join(&[b"temp-", appendfilename, b".manifest"])
}

/// `temp-<appendfilename>.incr`, in the AOF directory: where writes go while `CONFIG SET appendonly yes`
/// waits for its first rewrite.
pub fn temp_incr_name(appendfilename: &[u8]) -> Vec<u8> {
    join(&[b"temp-", appendfilename, b".incr"])
}

/// `temp-rewriteaof-bg-<id>.aof`, in the server's working directory (not the AOF directory): the output of a
/// background rewrite before it is renamed to the next base name. Redis uses the child's pid as `id`.
pub fn rewrite_temp_name(id: u32) -> Vec<u8> {
    format!("temp-rewriteaof-bg-{id}.aof").into_bytes()
}

/// `temp-rewriteaof-<pid>.aof`, in the working directory: the output of the synchronous rewrite that creates
/// the first base on a fresh start.
pub fn sync_rewrite_temp_name(pid: u32) -> Vec<u8> {
    format!("temp-rewriteaof-{pid}.aof").into_bytes()
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
