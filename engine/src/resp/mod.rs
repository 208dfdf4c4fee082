//! RESP codec: the reply values the executor produces and their RESP2/RESP3
//! encodings, the server-side streaming request parser, and a generic frame
//! decoder for reading replies and AOF files.
//!
//! - [`Reply`] / [`encode`] / [`format_double_g17`] (`encode.rs`): what the
//!   server writes. Called by the executor's callers in `moon-server`.
//! - [`RequestParser`] (`parse.rs`): turns the bytes a client sends (multibulk
//!   or inline) into argument vectors, with Redis 7.0's limits and error texts.
//! - [`parse_frame`] (`frame.rs`): decodes any complete RESP2/RESP3 value; used
//!   by the AOF reader and by tests that read replies.

mod encode;
mod frame;
mod parse;

pub use encode::{encode, format_double_g17};
pub use frame::{parse_frame, parse_frame_bytes, Frame, FrameError, FrameErrorKind};
pub use parse::{split_args, ParserLimits, ProtocolError, RequestParser};

use bytes::Bytes;

/// One reply value, as the executor returns it. [`encode`] writes it in the
/// connection's [`Protocol`]; the comment on each variant gives both forms.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK` (CR and LF in the text are written as spaces).
    Simple(String),
    /// `-ERR ...`: the full text without the leading `-`, e.g.
    /// `"ERR unknown command..."` or `"WRONGTYPE ..."` (CR/LF become spaces).
    Error(String),
    /// `:1`
    Int(i64),
    /// `$3\r\nfoo`
    Bulk(Bytes),
    /// RESP2 `$-1`, RESP3 `_`.
    Nil,
    /// RESP2 `*-1`, RESP3 `_`.
    NilArray,
    /// `*n` followed by the elements.
    Array(Vec<Reply>),
    /// RESP2: bulk string of [`format_double_g17`]; RESP3: `,<same text>`.
    Double(f64),
    /// RESP3 `%n`; RESP2 a flat array of 2n elements.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~n`; RESP2 an array.
    Set(Vec<Reply>),
    /// RESP3 `#t` / `#f`; RESP2 `:1` / `:0`.
    Bool(bool),
    /// RESP3 `=len\r\nfmt:data` (format is 3 bytes, e.g. `txt`); RESP2 a bulk
    /// string of the data alone.
    Verbatim(String, Bytes),
    /// RESP3 `>n`; RESP2 an array.
    Push(Vec<Reply>),
    /// RESP3 `(digits`; RESP2 a bulk string.
    BigNumber(String),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple("OK".to_owned())
    }

    /// An error reply; `msg` is the full text, e.g. `"ERR syntax error"`.
    pub fn err(msg: impl Into<String>) -> Reply {
        Reply::Error(msg.into())
    }

    /// A bulk string that takes ownership of `b` (no copy for `Bytes`/`Vec`).
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }

    /// A bulk string copied from a borrowed slice.
    pub fn bulk_from_slice(b: &[u8]) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(b))
    }

    /// True for [`Reply::Error`] (used e.g. for MULTI/EXEC and error stats).
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Encodes into a fresh vector; convenient in tests.
    pub fn to_vec(&self, proto: Protocol) -> Vec<u8> {
        let mut out = Vec::new();
        encode(self, proto, &mut out);
        out
    }
}

/// Protocol version of a connection (`HELLO 2` / `HELLO 3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}
