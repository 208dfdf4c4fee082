//! Set values: `intset` (sorted i64s) while every member is an integer and the count is within
//! `set-max-intset-entries`, `hashtable` otherwise (Redis 7.0 has no listpack sets).

use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq)]
pub enum SetValue {
    Intset(Vec<i64>),
    Table(HashSet<Box<[u8]>>),
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue::Intset(Vec::new())
    }
}

impl SetValue {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.len(),
            SetValue::Table(s) => s.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn encoding_name(&self) -> &'static str {
        match self {
            SetValue::Intset(_) => "intset",
            SetValue::Table(_) => "hashtable",
        }
    }
    /// Calls `f` with each member's bytes (integers in decimal).
    pub fn for_each(&self, mut f: impl FnMut(&[u8])) {
        match self {
            SetValue::Intset(v) => {
                for i in v {
                    f(i.to_string().as_bytes());
                }
            }
            SetValue::Table(s) => {
                for m in s {
                    f(m);
                }
            }
        }
    }
    pub fn heap_bytes(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.capacity() * 8,
            SetValue::Table(s) => s.capacity() * 24 + s.iter().map(|m| m.len()).sum::<usize>(),
        }
    }
}
