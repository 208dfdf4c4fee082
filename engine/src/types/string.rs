//! String values with Redis's three encodings: `int` (fits an i64 and prints back identically), `embstr`
//! (at most 44 bytes, as created by SET), and `raw` (longer, or modified in place by APPEND/SETRANGE).

use crate::util::parse_i64;

/// Longest string Redis stores as `embstr` (OBJ_ENCODING_EMBSTR_SIZE_LIMIT).
pub const EMBSTR_LIMIT: usize = 44;

#[derive(Debug, Clone, PartialEq)]
pub enum StrValue {
    Int(i64),
    Emb(Box<[u8]>),
    Raw(Box<Vec<u8>>),
}

impl StrValue {
    /// Encodes bytes the way `SET` does (Redis `tryObjectEncoding`).
    pub fn from_bytes(b: &[u8]) -> StrValue {
        if b.len() <= 20 {
            if let Some(v) = parse_i64(b) {
                return StrValue::Int(v);
            }
        }
        if b.len() <= EMBSTR_LIMIT {
            StrValue::Emb(b.into())
        } else {
            StrValue::Raw(Box::new(b.to_vec()))
        }
    }

    /// A string built without trying the integer encoding (e.g. INCRBYFLOAT's result).
    pub fn from_bytes_no_int(b: &[u8]) -> StrValue {
        if b.len() <= EMBSTR_LIMIT {
            StrValue::Emb(b.into())
        } else {
            StrValue::Raw(Box::new(b.to_vec()))
        }
    }

    pub fn from_i64(v: i64) -> StrValue {
        StrValue::Int(v)
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Emb(_) => "embstr",
            StrValue::Raw(_) => "raw",
        }
    }

    /// The bytes of the value (integers are printed in decimal).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            StrValue::Int(v) => v.to_string().into_bytes(),
            StrValue::Emb(b) => b.to_vec(),
            StrValue::Raw(b) => b.as_ref().clone(),
        }
    }

    /// Calls `f` with the value's bytes without allocating for the non-integer encodings.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            StrValue::Int(v) => f(v.to_string().as_bytes()),
            StrValue::Emb(b) => f(b),
            StrValue::Raw(b) => f(b),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(v) => {
                let mut n = if *v < 0 { 2 } else { 1 };
                let mut x = v.unsigned_abs();
                while x >= 10 {
                    x /= 10;
                    n += 1;
                }
                n
            }
            StrValue::Emb(b) => b.len(),
            StrValue::Raw(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value as an integer, when it is one in Redis's strict sense.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            StrValue::Int(v) => Some(*v),
            StrValue::Emb(b) => parse_i64(b),
            StrValue::Raw(b) => parse_i64(b),
        }
    }

    /// Turns the value into a growable `raw` buffer (APPEND, SETRANGE) and returns it.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, StrValue::Raw(_)) {
            *self = StrValue::Raw(Box::new(self.to_bytes()));
        }
        match self {
            StrValue::Raw(b) => b,
            _ => unreachable!("just converted to raw"),
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            StrValue::Int(_) => 0,
            StrValue::Emb(b) => b.len(),
            StrValue::Raw(b) => std::mem::size_of::<Vec<u8>>() + b.capacity(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(StrValue::from_bytes(b"12345").encoding_name(), "int");
        assert_eq!(StrValue::from_bytes(b"012").encoding_name(), "embstr");
        assert_eq!(StrValue::from_bytes(&[b'a'; 44]).encoding_name(), "embstr");
        assert_eq!(StrValue::from_bytes(&[b'a'; 45]).encoding_name(), "raw");
        assert_eq!(StrValue::Int(-120).len(), 4);
        assert_eq!(StrValue::Int(0).len(), 1);
    }
}
