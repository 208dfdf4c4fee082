//! Hash values: `listpack` (insertion-ordered pairs) while small, `hashtable` past
//! `hash-max-listpack-entries` / `hash-max-listpack-value`.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub enum HashValue {
    Listpack(Vec<(Box<[u8]>, Box<[u8]>)>),
    Table(HashMap<Box<[u8]>, Box<[u8]>>),
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::Listpack(Vec::new())
    }
}

impl HashValue {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        match self {
            HashValue::Listpack(v) => v.len(),
            HashValue::Table(m) => m.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn encoding_name(&self) -> &'static str {
        match self {
            HashValue::Listpack(_) => "listpack",
            HashValue::Table(_) => "hashtable",
        }
    }
    /// Field/value pairs (listpack: insertion order).
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            HashValue::Listpack(v) => Box::new(v.iter().map(|(f, x)| (&f[..], &x[..]))),
            HashValue::Table(m) => Box::new(m.iter().map(|(f, x)| (&f[..], &x[..]))),
        }
    }
    pub fn heap_bytes(&self) -> usize {
        let pairs: usize = self.iter().map(|(f, v)| f.len() + v.len()).sum();
        match self {
            HashValue::Listpack(v) => pairs + v.capacity() * 32,
            HashValue::Table(m) => pairs + m.capacity() * 40,
        }
    }
}
