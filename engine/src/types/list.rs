//! List values. Redis 7.0 always reports `quicklist` for lists; we keep a deque of owned elements.

use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListValue {
    items: VecDeque<Box<[u8]>>,
}

impl ListValue {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn encoding_name(&self) -> &'static str {
        "quicklist"
    }
    /// Elements from head to tail.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(|b| &b[..])
    }
    pub fn push_back(&mut self, v: &[u8]) {
        self.items.push_back(v.into());
    }
    pub fn push_front(&mut self, v: &[u8]) {
        self.items.push_front(v.into());
    }
    pub fn heap_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.items.iter().map(|b| b.len()).sum::<usize>()
    }
}
