//! Server-side request parsing: turns the bytes a client sends into argument
//! vectors, streaming, with Redis 7.0's limits, quirks and error texts
//! (`processMultibulkBuffer` / `processInlineBuffer` in `networking.c`).
//!
//! The parser keeps its position between calls, so a command that arrives in
//! many reads is scanned once, not once per read. Arguments are `Bytes` slices
//! of the caller's buffer: no copy for multibulk requests.

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

use super::Reply;

/// Redis's `PROTO_MBULK_BIG_ARG`: bulks at least this long get their whole
/// size reserved in the buffer at once.
const BIG_ARG: usize = 32 * 1024;

/// Argument slots allocated up front for a multibulk, whatever count the
/// client claims (Redis does the same, so `*2147483647` costs nothing).
const MAX_PREALLOC_ARGS: usize = 1024;

/// Redis's limits for clients that have not authenticated yet.
const UNAUTH_MAX_MULTIBULK: i64 = 10;
const UNAUTH_MAX_BULK: usize = 16384;

/// Size limits enforced by [`RequestParser`]; all checked before allocating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParserLimits {
    /// Largest bulk argument (`proto-max-bulk-len`, default 512 MiB).
    pub max_bulk_len: usize,
    /// Largest multibulk count (default `i32::MAX`, Redis's hard limit).
    pub max_multibulk_len: usize,
    /// Longest inline line, and longest `*`/`$` count line, without a
    /// terminator (Redis's `PROTO_INLINE_MAX_SIZE`, 64 KiB).
    pub max_inline_len: usize,
    /// Apply Redis's limits for unauthenticated connections (multibulk count
    /// at most 10, bulk length at most 16384), with Redis's error texts.
    /// The server sets it while `requirepass` is set and AUTH has not passed.
    pub require_auth: bool,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as usize,
            max_inline_len: 64 * 1024,
            require_auth: false,
        }
    }
}

/// A malformed request. The server replies `-ERR <Display text>` and closes
/// the connection, as Redis does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// The byte found where a `$` was expected.
    #[error("Protocol error: expected '$', got '{}'", printable(*.0))]
    ExpectedDollar(u8),
    #[error("Protocol error: too big inline request")]
    TooBigInlineRequest,
    #[error("Protocol error: too big mbulk count string")]
    TooBigMbulkCountString,
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCountString,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
}

impl ProtocolError {
    /// The error reply Redis sends before closing: `-ERR Protocol error: ...`.
    pub fn to_reply(&self) -> Reply {
        Reply::Error(format!("ERR {self}"))
    }
}

/// Redis formats the byte with `%c` and then turns CR/LF into spaces. Bytes
/// above 0x7f come out as the Latin-1 character (Redis sends the raw byte).
fn printable(b: u8) -> char {
    match b {
        b'\r' | b'\n' => ' ',
        _ => char::from(b),
    }
}

/// Streaming parser for client requests. One per connection.
///
/// Between calls that return `Ok(None)` the caller may only append to the
/// buffer (never consume or replace it); call [`RequestParser::reset`] if it
/// must. Offsets are kept relative to the start of the buffer.
#[derive(Debug)]
pub struct RequestParser {
    limits: ParserLimits,
    /// Offset where the next unparsed piece of the current command starts.
    pos: usize,
    /// Offset up to which the current line was searched for its terminator.
    scanned: usize,
    /// Bulk arguments still expected; 0 when no multibulk is under way.
    bulks_left: usize,
    /// Length of the bulk whose data starts at `pos`, once its `$` line is read.
    bulk_len: Option<usize>,
    /// Ranges of the arguments read so far.
    args: Vec<Range<usize>>,
    /// Bytes still missing for the bulk being read, for [`Self::wanted`].
    wanted: usize,
}

impl RequestParser {
    pub fn new(limits: ParserLimits) -> Self {
        RequestParser { limits, pos: 0, scanned: 0, bulks_left: 0, bulk_len: None, args: Vec::new(), wanted: 0 }
    }

    pub fn limits(&self) -> &ParserLimits {
        &self.limits
    }

    /// Changes the limits, e.g. clears `require_auth` after AUTH or applies a
    /// new `proto-max-bulk-len`. Takes effect for the next length read.
    pub fn set_limits(&mut self, limits: ParserLimits) {
        self.limits = limits;
    }

    /// Forgets any partly parsed command.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.scanned = 0;
        self.bulks_left = 0;
        self.bulk_len = None;
        self.args.clear();
        if self.args.capacity() > MAX_PREALLOC_ARGS {
            self.args = Vec::new();
        }
        self.wanted = 0;
    }

    /// Bytes still missing for the bulk argument being received (0 when not
    /// inside a bulk). The buffer already has room reserved for big ones, so
    /// the caller can read this much without reallocating.
    pub fn wanted(&self) -> usize {
        self.wanted
    }

    /// Parses one command from the front of `buf`.
    ///
    /// `Ok(Some(args))` removes the command's bytes from `buf`; `args` is
    /// never empty. `Ok(None)` means more data is needed: the partial command
    /// stays in `buf` (empty inline lines and `*0`/`*-1` headers before it
    /// are dropped, as Redis skips them). `Err` means the connection must be
    /// closed after sending [`ProtocolError::to_reply`].
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if buf.len() < self.pos.max(self.scanned) {
            // The caller consumed bytes under us; start over rather than
            // slice out of bounds.
            self.reset();
        }
        loop {
            if self.bulks_left == 0 {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] != b'*' {
                    match self.parse_inline(buf)? {
                        None => return Ok(None),
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return Ok(Some(args)),
                    }
                }
                match self.parse_multibulk_header(buf)? {
                    None => return Ok(None),
                    Some(0) => {
                        buf.advance(self.pos);
                        self.reset();
                        continue;
                    }
                    Some(count) => {
                        self.bulks_left = count;
                        self.args.reserve(count.min(MAX_PREALLOC_ARGS));
                    }
                }
            }
            while self.bulks_left > 0 {
                let len = match self.bulk_len {
                    Some(len) => len,
                    None => match self.parse_bulk_header(buf)? {
                        Some(len) => len,
                        None => return Ok(None),
                    },
                };
                let available = buf.len() - self.pos;
                // Redis skips the two bytes after the data without checking
                // that they are CRLF; so do we, to stay byte-compatible.
                let needed = len + 2;
                if available < needed {
                    self.wanted = needed - available;
                    return Ok(None);
                }
                self.args.push(self.pos..self.pos + len);
                self.pos += needed;
                self.scanned = self.pos;
                self.bulk_len = None;
                self.bulks_left -= 1;
                self.wanted = 0;
            }
            // Each argument is split off the buffer on its own (headers and CRLFs skipped): one reference
            // count increment per argument, none for the command as a whole.
            let mut args = Vec::with_capacity(self.args.len());
            let mut at = 0;
            for r in &self.args {
                buf.advance(r.start - at);
                args.push(buf.split_to(r.end - r.start).freeze());
                at = r.end;
            }
            buf.advance(self.pos - at);
            self.reset();
            return Ok(Some(args));
        }
    }

    /// Searches `buf[from..]` for `\r` starting where the last call stopped.
    /// `Some(i)` only when the byte after it is buffered too.
    fn find_cr(&mut self, buf: &[u8], from: usize) -> Option<usize> {
        let start = self.scanned.max(from);
        match buf[start..].iter().position(|&c| c == b'\r') {
            Some(i) => {
                let cr = start + i;
                // Keep `scanned` at the CR so the next call finds it at once.
                self.scanned = cr;
                (cr + 1 < buf.len()).then_some(cr)
            }
            None => {
                self.scanned = buf.len();
                None
            }
        }
    }

    /// Reads `*<count>\r\n` at offset 0. `Some(0)` for counts <= 0, which
    /// Redis ignores.
    fn parse_multibulk_header(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let Some(cr) = self.find_cr(buf, 0) else {
            if buf.len() > self.limits.max_inline_len {
                return Err(ProtocolError::TooBigMbulkCountString);
            }
            return Ok(None);
        };
        let count = match crate::util::parse_i64(&buf[1..cr]) {
            Some(n) if n <= i64::try_from(self.limits.max_multibulk_len).unwrap_or(i64::MAX) => n,
            _ => return Err(ProtocolError::InvalidMultibulkLength),
        };
        if self.limits.require_auth && count > UNAUTH_MAX_MULTIBULK {
            return Err(ProtocolError::UnauthenticatedMultibulkLength);
        }
        self.pos = cr + 2;
        self.scanned = self.pos;
        Ok(Some(usize::try_from(count).unwrap_or(0)))
    }

    /// Reads `$<len>\r\n` at `self.pos` and reserves room for big bulks.
    fn parse_bulk_header(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, ProtocolError> {
        let Some(cr) = self.find_cr(buf, self.pos) else {
            if buf.len() - self.pos > self.limits.max_inline_len {
                return Err(ProtocolError::TooBigBulkCountString);
            }
            return Ok(None);
        };
        if buf[self.pos] != b'$' {
            return Err(ProtocolError::ExpectedDollar(buf[self.pos]));
        }
        let len = match crate::util::parse_i64(&buf[self.pos + 1..cr]).map(usize::try_from) {
            Some(Ok(n)) if n <= self.limits.max_bulk_len => n,
            _ => return Err(ProtocolError::InvalidBulkLength),
        };
        if self.limits.require_auth && len > UNAUTH_MAX_BULK {
            return Err(ProtocolError::UnauthenticatedBulkLength);
        }
        self.pos = cr + 2;
        self.scanned = self.pos;
        self.bulk_len = Some(len);
        let available = buf.len() - self.pos;
        if len >= BIG_ARG && available < len + 2 {
            // Bounded by max_bulk_len, which was checked above.
            buf.reserve(len + 2 - available);
        }
        Ok(Some(len))
    }

    /// Reads one inline line. `Some(vec![])` for a blank line, already
    /// consumed.
    fn parse_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let start = self.scanned;
        let Some(i) = buf[start..].iter().position(|&c| c == b'\n') else {
            self.scanned = buf.len();
            if buf.len() > self.limits.max_inline_len {
                return Err(ProtocolError::TooBigInlineRequest);
            }
            return Ok(None);
        };
        let newline = start + i;
        let end = if newline > 0 && buf[newline - 1] == b'\r' { newline - 1 } else { newline };
        let args = split_args(&buf[..end]).ok_or(ProtocolError::UnbalancedQuotes)?;
        buf.advance(newline + 1);
        self.reset();
        Ok(Some(args))
    }
}

/// C's `isspace` in the "C" locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Redis's `sdssplitargs`: whitespace-separated words, `"..."` with C-style
/// and `\xHH` escapes, `'...'` with `\'`. A closing quote must be followed by
/// whitespace or the end. `None` for unbalanced quotes. Like the C code, the
/// line ends at the first NUL byte. Inline commands and the server's
/// configuration reader both use it.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let line = match line.iter().position(|&c| c == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    // Reading past the end yields NUL, like the C string's terminator.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let c = at(p);
            if in_double {
                let escaped_hex = (hex_value(at(p + 2)), hex_value(at(p + 3)));
                if let (b'\\', b'x', (Some(hi), Some(lo))) = (c, at(p + 1), escaped_hex) {
                    current.push(hi * 16 + lo);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    current.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else {
                match c {
                    0 => break,
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        p += 1;
                        break;
                    }
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    _ => current.push(c),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        args.push(Bytes::from(current));
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
