//! Errors of the RDB loader: what went wrong, at which byte offset, while doing what, and for which key.
//!
//! The wording follows `redis-check-rdb` (FORMATS.md §3.2) so that operators see familiar messages:
//! `Unexpected EOF reading RDB file at offset 1234 (while reading object value of key 'foo')`.
//! [`RdbError::code`] gives a stable machine name for each kind (used by the fixtures' expected.txt).

use std::fmt;
use std::path::PathBuf;

/// What the loader was doing when it failed (`[additional info] While doing: ...` in redis-check-rdb).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Doing {
    Start,
    ReadType,
    ReadExpire,
    ReadKey,
    ReadObjectValue,
    CheckSum,
    ReadLen,
    ReadAux,
    ReadModuleAux,
    ReadFunctions,
}

impl Doing {
    /// The name redis-check-rdb prints (`read-object-value` ...).
    pub fn check_rdb_name(self) -> &'static str {
        match self {
            Doing::Start => "start",
            Doing::ReadType => "read-type",
            Doing::ReadExpire => "read-expire",
            Doing::ReadKey => "read-key",
            Doing::ReadObjectValue => "read-object-value",
            Doing::CheckSum => "check-sum",
            Doing::ReadLen => "read-len",
            Doing::ReadAux => "read-aux",
            Doing::ReadModuleAux => "read-module-aux",
            Doing::ReadFunctions => "read-functions",
        }
    }

    fn phrase(self) -> &'static str {
        match self {
            Doing::Start => "reading the header",
            Doing::ReadType => "reading type",
            Doing::ReadExpire => "reading expire time",
            Doing::ReadKey => "reading key",
            Doing::ReadObjectValue => "reading object value",
            Doing::CheckSum => "checking the checksum",
            Doing::ReadLen => "reading length",
            Doing::ReadAux => "reading AUX field",
            Doing::ReadModuleAux => "reading module AUX data",
            Doing::ReadFunctions => "reading functions",
        }
    }
}

/// The kinds of failure. Messages reuse Redis's texts where Redis has one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("Unexpected EOF reading RDB file")]
    UnexpectedEof,
    #[error("Wrong signature trying to load DB from file")]
    BadMagic,
    #[error(
        "Can't handle RDB format version {version} (this build reads REDIS0001..REDIS0012 and VALKEY080..VALKEY081)"
    )]
    UnsupportedVersion { version: u32, valkey: bool },
    #[error("Invalid object type: {0}")]
    BadType(u8),
    #[error("Unknown length encoding {0:#04x} in rdbLoadLen()")]
    BadLength(u8),
    #[error("Unknown RDB string encoding type {0}")]
    BadStringEncoding(u8),
    #[error("Invalid LZF compressed string")]
    BadLzf,
    /// An embedded listpack, ziplist, intset, zipmap or quicklist node is malformed.
    #[error("{0} integrity check failed")]
    BadBlob(&'static str),
    /// The structure is readable but the value is not (duplicates, NaN scores, bad numbers ...).
    #[error("{0}")]
    BadValue(String),
    #[error("Wrong RDB checksum expected: ({expected:x}) but got ({stored:x})")]
    Checksum { expected: u64, stored: u64 },
    #[error("Duplicated key found in RDB file")]
    DuplicateKey,
    #[error("Data file uses DB index {db}, but only {databases} databases are configured")]
    DbIndex { db: u64, databases: usize },
    /// Valid for some Redis or Valkey version, but not something Moon can load.
    #[error("{0}")]
    Unsupported(String),
    #[error("I/O error reading {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl ErrorKind {
    /// A stable name for tests and tools.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::UnexpectedEof => "unexpected-eof",
            ErrorKind::BadMagic => "bad-magic",
            ErrorKind::UnsupportedVersion { .. } => "unsupported-version",
            ErrorKind::BadType(_) => "bad-type",
            ErrorKind::BadLength(_) => "bad-length",
            ErrorKind::BadStringEncoding(_) => "bad-string-encoding",
            ErrorKind::BadLzf => "bad-lzf",
            ErrorKind::BadBlob(_) => "bad-blob",
            ErrorKind::BadValue(_) => "bad-value",
            ErrorKind::Checksum { .. } => "checksum",
            ErrorKind::DuplicateKey => "duplicate-key",
            ErrorKind::DbIndex { .. } => "db-index",
            ErrorKind::Unsupported(_) => "unsupported",
            ErrorKind::Io { .. } => "io",
        }
    }
}

/// The details of an [`RdbError`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Details {
    pub kind: ErrorKind,
    /// Byte offset in the input where the failing item starts (for blobs: where the blob's string starts).
    pub offset: u64,
    pub doing: Doing,
    /// The key being read, when known.
    pub key: Option<Box<[u8]>>,
}

/// A failed load. Boxed so that `Result<T, RdbError>` stays one word wide on the decoder's hot paths.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
#[non_exhaustive]
pub struct RdbError(Box<Details>);

impl RdbError {
    pub fn new(kind: ErrorKind, offset: usize) -> Self {
        RdbError(Box::new(Details { kind, offset: offset as u64, doing: Doing::Start, key: None }))
    }

    /// What a [`super::LoadTarget`] returns for a key it already holds; the loader fills in the position.
    pub fn duplicate_key(key: &[u8]) -> Self {
        RdbError::new(ErrorKind::DuplicateKey, 0).with_key(key)
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    pub fn code(&self) -> &'static str {
        self.0.kind.code()
    }

    pub fn offset(&self) -> u64 {
        self.0.offset
    }

    pub fn doing(&self) -> Doing {
        self.0.doing
    }

    pub fn key(&self) -> Option<&[u8]> {
        self.0.key.as_deref()
    }

    pub fn details(&self) -> &Details {
        &self.0
    }

    pub(crate) fn with_doing(mut self, doing: Doing) -> Self {
        self.0.doing = doing;
        self
    }

    pub(crate) fn with_key(mut self, key: &[u8]) -> Self {
        if self.0.key.is_none() {
            self.0.key = Some(key.into());
        }
        self
    }

    pub(crate) fn with_offset(mut self, offset: usize) -> Self {
        self.0.offset = offset as u64;
        self
    }
}

/// Longest part of a key shown in a message.
const KEY_SHOWN: usize = 128;

impl fmt::Display for Details {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ErrorKind::Io { .. } = self.kind {
            return write!(f, "{}", self.kind);
        }
        write!(f, "{} at offset {} (while {}", self.kind, self.offset, self.doing.phrase())?;
        if let Some(k) = &self.key {
            let shown = &k[..k.len().min(KEY_SHOWN)];
            let more = if k.len() > KEY_SHOWN { "..." } else { "" };
            write!(f, " of key '{}{more}'", shown.escape_ascii())?;
        }
        write!(f, ")")
    }
}

pub(crate) type Result<T> = std::result::Result<T, RdbError>;

/// Shorthand for an error of `kind` at `offset`.
pub(crate) fn err<T>(kind: ErrorKind, offset: usize) -> Result<T> {
    Err(RdbError::new(kind, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_like_redis_check_rdb() {
        let e = RdbError::new(ErrorKind::UnexpectedEof, 1234).with_doing(Doing::ReadObjectValue).with_key(b"foo");
        assert_eq!(
            e.to_string(),
            "Unexpected EOF reading RDB file at offset 1234 (while reading object value of key 'foo')"
        );
        assert_eq!(e.doing().check_rdb_name(), "read-object-value");
        let e = RdbError::new(ErrorKind::BadType(8), 12).with_doing(Doing::ReadType);
        assert_eq!(e.to_string(), "Invalid object type: 8 at offset 12 (while reading type)");
        assert_eq!(e.code(), "bad-type");
        let e = RdbError::new(ErrorKind::UnexpectedEof, 0).with_key(b"a\x00\xffb");
        assert!(e.to_string().ends_with("of key 'a\\x00\\xffb')"), "{e}");
        assert_eq!(std::mem::size_of::<Result<()>>(), std::mem::size_of::<usize>());
    }
}
