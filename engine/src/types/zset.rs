//! Sorted set values: `listpack` (a vector sorted by score, then member bytes) while small, `skiplist`
//! (member map plus ordered index) past `zset-max-listpack-entries` / `zset-max-listpack-value`.

use std::collections::{BTreeSet, HashMap};

/// A score with a total order (scores are never NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ZSetValue {
    Listpack(Vec<(Box<[u8]>, f64)>),
    Skiplist {
        dict: HashMap<Box<[u8]>, f64>,
        index: BTreeSet<(Score, Box<[u8]>)>,
    },
}

impl Default for ZSetValue {
    fn default() -> Self {
        ZSetValue::Listpack(Vec::new())
    }
}

impl ZSetValue {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        match self {
            ZSetValue::Listpack(v) => v.len(),
            ZSetValue::Skiplist { dict, .. } => dict.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn encoding_name(&self) -> &'static str {
        match self {
            ZSetValue::Listpack(_) => "listpack",
            ZSetValue::Skiplist { .. } => "skiplist",
        }
    }
    /// Members with scores in ascending (score, member) order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], f64)> + '_> {
        match self {
            ZSetValue::Listpack(v) => Box::new(v.iter().map(|(m, s)| (&m[..], *s))),
            ZSetValue::Skiplist { index, .. } => Box::new(index.iter().map(|(s, m)| (&m[..], s.0))),
        }
    }
    pub fn heap_bytes(&self) -> usize {
        let members: usize = self.iter().map(|(m, _)| m.len()).sum();
        match self {
            ZSetValue::Listpack(v) => members + v.capacity() * 24,
            ZSetValue::Skiplist { dict, index } => 2 * members + dict.capacity() * 32 + index.len() * 40,
        }
    }
}
