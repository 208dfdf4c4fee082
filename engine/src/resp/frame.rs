//! Generic RESP2/RESP3 frame decoding, for the client side of the protocol:
//! reading replies in tests and commands from AOF files.
//!
//! Unlike [`super::RequestParser`] this is strict (every line must end in
//! CRLF) and stateless: an incomplete frame is parsed again from its start
//! on the next call, which is fine for replies and for files read in large
//! chunks. Nesting is limited to [`MAX_DEPTH`] so hostile input cannot
//! overflow the stack, and no allocation is sized by a claimed length
//! beyond the bytes actually present.

use bytes::Bytes;

/// Deepest nesting of aggregates accepted.
pub const MAX_DEPTH: usize = 128;

/// One decoded RESP value.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Simple(Bytes),
    /// `-...` and RESP3 blob errors `!len`.
    Error(Bytes),
    Int(i64),
    /// `None` for `$-1`.
    Bulk(Option<Bytes>),
    /// `None` for `*-1`.
    Array(Option<Vec<Frame>>),
    /// RESP3 `_`.
    Null,
    Double(f64),
    Bool(bool),
    BigNumber(Bytes),
    /// Format (e.g. `txt`) and data.
    Verbatim(Bytes, Bytes),
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Push(Vec<Frame>),
    /// RESP3 `|n`: returned as a frame of its own; the value it describes is
    /// the next frame.
    Attribute(Vec<(Frame, Frame)>),
}

impl Frame {
    /// The arguments of a command frame (an array of non-null bulk strings),
    /// as found in AOF files.
    pub fn into_command(self) -> Option<Vec<Bytes>> {
        match self {
            Frame::Array(Some(items)) => items
                .into_iter()
                .map(|f| match f {
                    Frame::Bulk(Some(b)) => Some(b),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }
}

/// Malformed input, at byte `offset` of the slice given to [`parse_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid RESP at byte {offset}: {kind}")]
pub struct FrameError {
    pub offset: usize,
    pub kind: FrameErrorKind,
}

/// What was wrong with the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameErrorKind {
    #[error("unknown type byte {0:#04x}")]
    UnknownType(u8),
    #[error("line not terminated by CRLF")]
    MissingCrlf,
    #[error("invalid integer")]
    InvalidInteger,
    #[error("invalid length")]
    InvalidLength,
    #[error("invalid double")]
    InvalidDouble,
    #[error("invalid boolean")]
    InvalidBool,
    #[error("invalid big number")]
    InvalidBigNumber,
    #[error("invalid verbatim string")]
    InvalidVerbatim,
    #[error("null with a payload")]
    InvalidNull,
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("streamed aggregates are not supported")]
    Streamed,
}

/// Parses one complete frame from the front of `input`, copying its strings.
///
/// `Ok(Some((frame, consumed)))`, `Ok(None)` when `input` holds only part of
/// a frame, `Err` when it is malformed.
pub fn parse_frame(input: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    Decoder { input, shared: None }.frame(0, 0)
}

/// Like [`parse_frame`], but strings are slices of `input` (no copy).
pub fn parse_frame_bytes(input: &Bytes) -> Result<Option<(Frame, usize)>, FrameError> {
    Decoder { input, shared: Some(input) }.frame(0, 0)
}

type Step<T> = Result<Option<T>, FrameError>;

/// Returns `Ok(None)` from the enclosing function when the input ran out.
macro_rules! need {
    ($e:expr) => {
        match $e? {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

struct Decoder<'a> {
    input: &'a [u8],
    shared: Option<&'a Bytes>,
}

impl Decoder<'_> {
    fn bytes(&self, start: usize, end: usize) -> Bytes {
        match self.shared {
            Some(b) => b.slice(start..end),
            None => Bytes::copy_from_slice(&self.input[start..end]),
        }
    }

    fn err<T>(offset: usize, kind: FrameErrorKind) -> Result<T, FrameError> {
        Err(FrameError { offset, kind })
    }

    /// The line starting at `pos`: (end of its text, start of what follows).
    fn line(&self, pos: usize) -> Step<(usize, usize)> {
        let Some(i) = self.input[pos..].iter().position(|&c| c == b'\r') else {
            return Ok(None);
        };
        let cr = pos + i;
        match self.input.get(cr + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some((cr, cr + 2))),
            Some(_) => Self::err(cr, FrameErrorKind::MissingCrlf),
        }
    }

    fn int(&self, start: usize, end: usize) -> Result<i64, FrameError> {
        std::str::from_utf8(&self.input[start..end])
            .ok()
            .filter(|s| !s.starts_with('+'))
            .and_then(|s| s.parse().ok())
            .map_or_else(|| Self::err(start, FrameErrorKind::InvalidInteger), Ok)
    }

    /// A length or count: `Ok(None)` for -1 when `nullable`.
    fn length(&self, start: usize, end: usize, nullable: bool) -> Result<Option<usize>, FrameError> {
        match self.int(start, end) {
            Ok(-1) if nullable => Ok(None),
            Ok(n) => match usize::try_from(n) {
                Ok(n) => Ok(Some(n)),
                Err(_) => Self::err(start, FrameErrorKind::InvalidLength),
            },
            Err(_) => Self::err(start, FrameErrorKind::InvalidLength),
        }
    }

    /// `len` bytes at `start` followed by CRLF: returns the position after.
    fn blob(&self, start: usize, len: usize) -> Step<usize> {
        let Some(end) = start.checked_add(len) else {
            return Self::err(start, FrameErrorKind::InvalidLength);
        };
        if self.input.len() < end.saturating_add(2) {
            return Ok(None);
        }
        if &self.input[end..end + 2] != b"\r\n" {
            return Self::err(end, FrameErrorKind::MissingCrlf);
        }
        Ok(Some(end + 2))
    }

    /// Frame at `pos`; returns it and the position after it.
    fn frame(&self, pos: usize, depth: usize) -> Step<(Frame, usize)> {
        let Some(&kind) = self.input.get(pos) else {
            return Ok(None);
        };
        if self.input.get(pos + 1) == Some(&b'?') && b"$*%~>|=!".contains(&kind) {
            return Self::err(pos, FrameErrorKind::Streamed);
        }
        let (text_end, next) = need!(self.line(pos + 1));
        let text = pos + 1;
        let frame = match kind {
            b'+' => Frame::Simple(self.bytes(text, text_end)),
            b'-' => Frame::Error(self.bytes(text, text_end)),
            b':' => Frame::Int(self.int(text, text_end)?),
            b'_' if text == text_end => Frame::Null,
            b'_' => return Self::err(text, FrameErrorKind::InvalidNull),
            b'#' => match &self.input[text..text_end] {
                b"t" => Frame::Bool(true),
                b"f" => Frame::Bool(false),
                _ => return Self::err(text, FrameErrorKind::InvalidBool),
            },
            b',' => Frame::Double(self.double(text, text_end)?),
            b'(' => {
                let digits = &self.input[text..text_end];
                let digits = digits.strip_prefix(b"-").unwrap_or(digits);
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return Self::err(text, FrameErrorKind::InvalidBigNumber);
                }
                Frame::BigNumber(self.bytes(text, text_end))
            }
            b'$' | b'!' | b'=' => {
                let Some(len) = self.length(text, text_end, kind == b'$')? else {
                    return Ok(Some((Frame::Bulk(None), next)));
                };
                let after = need!(self.blob(next, len));
                let end = next + len;
                let frame = match kind {
                    b'$' => Frame::Bulk(Some(self.bytes(next, end))),
                    b'!' => Frame::Error(self.bytes(next, end)),
                    _ => {
                        if len < 4 || self.input[next + 3] != b':' {
                            return Self::err(next, FrameErrorKind::InvalidVerbatim);
                        }
                        Frame::Verbatim(self.bytes(next, next + 3), self.bytes(next + 4, end))
                    }
                };
                // A blob ends after its payload, not after its header line.
                return Ok(Some((frame, after)));
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                if depth >= MAX_DEPTH {
                    return Self::err(pos, FrameErrorKind::TooDeep);
                }
                let Some(count) = self.length(text, text_end, kind == b'*')? else {
                    return Ok(Some((Frame::Array(None), next)));
                };
                let pairs = matches!(kind, b'%' | b'|');
                // Every element takes at least 3 bytes ("_\r\n"), so this
                // bounds the allocation by the input actually present.
                let room = (self.input.len() - next) / if pairs { 6 } else { 3 };
                let mut at = next;
                if pairs {
                    let mut items = Vec::with_capacity(count.min(room));
                    for _ in 0..count {
                        let (k, after_k) = need!(self.frame(at, depth + 1));
                        let (v, after_v) = need!(self.frame(after_k, depth + 1));
                        items.push((k, v));
                        at = after_v;
                    }
                    let frame = if kind == b'%' { Frame::Map(items) } else { Frame::Attribute(items) };
                    return Ok(Some((frame, at)));
                }
                let mut items = Vec::with_capacity(count.min(room));
                for _ in 0..count {
                    let (item, after) = need!(self.frame(at, depth + 1));
                    items.push(item);
                    at = after;
                }
                let frame = match kind {
                    b'*' => Frame::Array(Some(items)),
                    b'~' => Frame::Set(items),
                    _ => Frame::Push(items),
                };
                return Ok(Some((frame, at)));
            }
            other => return Self::err(pos, FrameErrorKind::UnknownType(other)),
        };
        Ok(Some((frame, next)))
    }

    fn double(&self, start: usize, end: usize) -> Result<f64, FrameError> {
        let parsed = std::str::from_utf8(&self.input[start..end])
            .ok()
            .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
            .and_then(|s| s.parse::<f64>().ok());
        parsed.map_or_else(|| Self::err(start, FrameErrorKind::InvalidDouble), Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{encode, Protocol, Reply};
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(Some(b(s)))
    }

    /// Parses `input` as exactly one frame, checking that every proper
    /// prefix is reported incomplete and that both entry points agree.
    fn one(input: &[u8]) -> Frame {
        for cut in 0..input.len() {
            assert_eq!(parse_frame(&input[..cut]), Ok(None), "prefix {cut} of {input:?}");
        }
        let (frame, used) = parse_frame(input).unwrap().unwrap();
        assert_eq!(used, input.len());
        let shared = Bytes::copy_from_slice(input);
        assert_eq!(parse_frame_bytes(&shared), Ok(Some((frame.clone(), used))));
        frame
    }

    fn err(input: &[u8]) -> FrameErrorKind {
        parse_frame(input).expect_err("expected an error").kind
    }

    #[test]
    fn decodes_encoded_replies() {
        let reply = Reply::Array(vec![
            Reply::ok(),
            Reply::err("ERR x"),
            Reply::Int(-3),
            Reply::bulk("v"),
            Reply::Nil,
            Reply::NilArray,
            Reply::Double(0.5),
            Reply::Map(vec![(Reply::bulk("k"), Reply::Bool(true))]),
            Reply::Set(vec![Reply::Int(1)]),
            Reply::Verbatim("txt".into(), b("hi")),
            Reply::Push(vec![]),
            Reply::BigNumber("-12345678901234567890".into()),
        ]);
        let mut resp2 = Vec::new();
        encode(&reply, Protocol::Resp2, &mut resp2);
        assert_eq!(
            one(&resp2),
            Frame::Array(Some(vec![
                Frame::Simple(b("OK")),
                Frame::Error(b("ERR x")),
                Frame::Int(-3),
                bulk("v"),
                Frame::Bulk(None),
                Frame::Array(None),
                bulk("0.5"),
                Frame::Array(Some(vec![bulk("k"), Frame::Int(1)])),
                Frame::Array(Some(vec![Frame::Int(1)])),
                bulk("hi"),
                Frame::Array(Some(vec![])),
                bulk("-12345678901234567890"),
            ]))
        );
        let mut resp3 = Vec::new();
        encode(&reply, Protocol::Resp3, &mut resp3);
        assert_eq!(
            one(&resp3),
            Frame::Array(Some(vec![
                Frame::Simple(b("OK")),
                Frame::Error(b("ERR x")),
                Frame::Int(-3),
                bulk("v"),
                Frame::Null,
                Frame::Null,
                Frame::Double(0.5),
                Frame::Map(vec![(bulk("k"), Frame::Bool(true))]),
                Frame::Set(vec![Frame::Int(1)]),
                Frame::Verbatim(b("txt"), b("hi")),
                Frame::Push(vec![]),
                Frame::BigNumber(b("-12345678901234567890")),
            ]))
        );
    }

    #[test]
    fn other_resp3_forms() {
        assert_eq!(one(b"!5\r\nERR x\r\n"), Frame::Error(b("ERR x")));
        assert_eq!(one(b",inf\r\n"), Frame::Double(f64::INFINITY));
        assert_eq!(one(b",-inf\r\n"), Frame::Double(f64::NEG_INFINITY));
        assert_eq!(one(b",1.5e3\r\n"), Frame::Double(1500.0));
        let nan = parse_frame(b",nan\r\n").unwrap().unwrap();
        assert!(matches!(nan, (Frame::Double(d), 6) if d.is_nan()));
        assert_eq!(one(b"#f\r\n"), Frame::Bool(false));
        assert_eq!(one(b"|1\r\n+ttl\r\n:3\r\n"), Frame::Attribute(vec![(Frame::Simple(b("ttl")), Frame::Int(3))]));
        assert_eq!(one(b"$0\r\n\r\n"), bulk(""));
        assert_eq!(one(b"$2\r\n\r\n\r\n"), bulk("\r\n"));
        assert_eq!(one(b"+\r\n"), Frame::Simple(b("")));
    }

    #[test]
    fn pipelined_frames_report_their_length() {
        let input = b"+OK\r\n:1\r\n";
        let (first, used) = parse_frame(input).unwrap().unwrap();
        assert_eq!((first, used), (Frame::Simple(b("OK")), 5));
        assert_eq!(parse_frame(&input[used..]), Ok(Some((Frame::Int(1), 4))));
    }

    #[test]
    fn shared_parse_does_not_copy() {
        let input = Bytes::from_static(b"*1\r\n$3\r\nabc\r\n");
        let (frame, _) = parse_frame_bytes(&input).unwrap().unwrap();
        let args = frame.into_command().unwrap();
        assert_eq!(args, vec![b("abc")]);
        assert_eq!(args[0].as_ptr(), input[8..].as_ptr());
    }

    #[test]
    fn into_command_needs_array_of_bulks() {
        assert_eq!(Frame::Array(Some(vec![bulk("a")])).into_command(), Some(vec![b("a")]));
        assert_eq!(Frame::Array(Some(vec![Frame::Int(1)])).into_command(), None);
        assert_eq!(Frame::Array(Some(vec![Frame::Bulk(None)])).into_command(), None);
        assert_eq!(Frame::Array(None).into_command(), None);
        assert_eq!(bulk("a").into_command(), None);
    }

    #[test]
    fn malformed_input() {
        use FrameErrorKind::*;
        let cases: &[(&[u8], FrameErrorKind)] = &[
            (b"x\r\n", UnknownType(b'x')),
            (b"+OK\rX", MissingCrlf),
            (b"$3\r\nfooXY", MissingCrlf),
            (b":abc\r\n", InvalidInteger),
            (b":+1\r\n", InvalidInteger),
            (b":\r\n", InvalidInteger),
            (b":99999999999999999999\r\n", InvalidInteger),
            (b"$-2\r\n", InvalidLength),
            (b"$18446744073709551615\r\n", InvalidLength),
            (b"*-2\r\n", InvalidLength),
            (b"%-1\r\n", InvalidLength),
            (b"!-1\r\n", InvalidLength),
            (b",\r\n", InvalidDouble),
            (b", 1\r\n", InvalidDouble),
            (b",1x\r\n", InvalidDouble),
            (b"#x\r\n", InvalidBool),
            (b"(12a\r\n", InvalidBigNumber),
            (b"(\r\n", InvalidBigNumber),
            (b"=3\r\ntxt\r\n", InvalidVerbatim),
            (b"=5\r\ntxt-a\r\n", InvalidVerbatim),
            (b"_x\r\n", InvalidNull),
            (b"$?\r\n", Streamed),
            (b"*?\r\n", Streamed),
            (b"*2\r\n:1\r\n?\r\n", UnknownType(b'?')),
        ];
        for (input, want) in cases {
            assert_eq!(err(input), *want, "{:?}", String::from_utf8_lossy(input));
        }
        let e = parse_frame(b"*2\r\n:1\r\n:x\r\n").unwrap_err();
        assert_eq!(e.offset, 9);
        assert_eq!(e.to_string(), "invalid RESP at byte 9: invalid integer");
    }

    #[test]
    fn nesting_is_limited() {
        let nested = |levels: usize| {
            let mut v = b"*1\r\n".repeat(levels);
            v.extend_from_slice(b":1\r\n");
            v
        };
        assert!(parse_frame(&nested(MAX_DEPTH)).unwrap().is_some());
        assert_eq!(err(&nested(MAX_DEPTH + 1)), FrameErrorKind::TooDeep);
        // Hostile depth is refused before the input is complete.
        assert_eq!(err(&b"*1\r\n".repeat(100_000)), FrameErrorKind::TooDeep);
        assert_eq!(err(&b"%1\r\n".repeat(1000)), FrameErrorKind::TooDeep);
    }

    #[test]
    fn huge_claims_are_incomplete_not_allocated() {
        for input in [
            &b"$9223372036854775807\r\n"[..],
            b"*9223372036854775807\r\n",
            b"%9223372036854775807\r\n:1\r\n",
            b"=9223372036854775807\r\ntxt:",
            b"*3\r\n$1000000000\r\nab",
        ] {
            assert_eq!(parse_frame(input), Ok(None), "{input:?}");
        }
    }
}
