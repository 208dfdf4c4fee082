//! The five value types. Each collection type keeps a compact form for small values (what Redis calls
//! listpack/intset) and converts to a large form past the configured thresholds, never back, as Redis 7.0 does.
//! `OBJECT ENCODING` names come from here, and the RDB writer uses them to choose compact encodings.
//!
//! Memory: a value lives inside its keyspace entry (24 bytes of its 48). The compact forms of sets, hashes and zsets
//! are a [`small::SmallBuf`] (inline up to 15 bytes, else one exact allocation); the large forms of sets,
//! hashes and zsets are member tables ([`crate::table::Members`]: key and value only, short keys inline).

pub mod hash;
pub mod list;
pub mod listpack;
pub mod set;
pub mod small;
pub mod string;
pub mod zset;

pub use hash::HashValue;
pub use list::ListValue;
pub use set::SetValue;
pub use string::StrValue;
pub use zset::ZSetValue;

/// A value stored under a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(StrValue),
    List(Box<ListValue>),
    Hash(HashValue),
    Set(SetValue),
    ZSet(ZSetValue),
}

/// Redis's object type numbers (`OBJ_STRING` ...), used by `DEBUG DIGEST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str = 0,
    List = 1,
    Set = 2,
    ZSet = 3,
    Hash = 4,
}

impl Value {
    pub fn kind(&self) -> Kind {
        match self {
            Value::Str(_) => Kind::Str,
            Value::List(_) => Kind::List,
            Value::Hash(_) => Kind::Hash,
            Value::Set(_) => Kind::Set,
            Value::ZSet(_) => Kind::ZSet,
        }
    }

    /// The name `TYPE` replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// The name `OBJECT ENCODING` replies with (Redis 7.0).
    pub fn encoding_name(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding_name(),
            Value::List(l) => l.encoding_name(),
            Value::Hash(h) => h.encoding_name(),
            Value::Set(s) => s.encoding_name(),
            Value::ZSet(z) => z.encoding_name(),
        }
    }

    /// Heap bytes owned by the value (approximate, for `MEMORY USAGE` and `used_memory`).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_bytes(),
            Value::List(l) => std::mem::size_of::<ListValue>() + l.heap_bytes(),
            Value::Hash(h) => std::mem::size_of::<HashValue>() + h.heap_bytes(),
            Value::Set(s) => std::mem::size_of::<SetValue>() + s.heap_bytes(),
            Value::ZSet(z) => std::mem::size_of::<ZSetValue>() + z.heap_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key pays for a `Value` inside its table entry (24 bytes keep the entry in jemalloc's 48-byte
    /// class): the large encodings stay behind a pointer, and the small ones in a 16-byte `SmallBuf`.
    #[test]
    fn values_stay_small() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
        assert_eq!(std::mem::size_of::<HashValue>(), 16);
        assert_eq!(std::mem::size_of::<SetValue>(), 16);
        assert_eq!(std::mem::size_of::<ZSetValue>(), 16);
        assert_eq!(std::mem::size_of::<crate::table::Entry<Value>>(), 48);
    }
}
