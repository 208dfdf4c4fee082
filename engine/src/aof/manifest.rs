//! The AOF manifest (`<appendfilename>.manifest`): types, parser and writer. FORMATS.md §1.1-§1.2.

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

/// One `file <name> seq <seq> type <t>` line. Names are bytes: a manifest may quote any byte with `\xHH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofInfo {
    pub name: Vec<u8>,
    pub seq: u64,
    pub kind: AofKind,
}

/// A parsed manifest. `history` keeps the order it is written in (newest first); `incrs` are in ascending seq.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofInfo>,
    pub history: Vec<AofInfo>,
    pub incrs: Vec<AofInfo>,
}
