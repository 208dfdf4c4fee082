//! Set values: `intset` (sorted i64s) while every member is an integer and the count is within
//! `set-max-intset-entries`, `hashtable` otherwise (Redis 7.0 has no listpack sets). A set only converts
//! back when a command builds a new one (SPOP's rebuild, the *STORE commands), as in Redis.
//!
//! A member belongs in an intset when it is the canonical decimal form of an i64 ([`parse_i64`]): "12" does,
//! "012", "+12" and "-0" do not. The large form is a [`Table`], so SSCAN gets the table's cursor guarantee.

use crate::config::EngineConfig;
use crate::table::{Table, NO_EXPIRE};
use crate::util::parse_i64;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// The members of one set.
pub enum SetValue {
    /// Sorted, distinct integers (Redis's intset encoding).
    Intset(Vec<i64>),
    /// Members as keys of a table (Redis's hashtable encoding).
    /// Boxed so that the common intset form keeps the enum small (a `Table` is ~150 bytes).
    Table(Box<Table<()>>),
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue::Intset(Vec::new())
    }
}

impl Clone for SetValue {
    fn clone(&self) -> Self {
        match self {
            SetValue::Intset(v) => SetValue::Intset(v.clone()),
            SetValue::Table(t) => {
                let mut copy = Table::with_capacity(t.len());
                for e in t.iter() {
                    copy.insert(e.key.clone(), (), NO_EXPIRE);
                }
                SetValue::Table(Box::new(copy))
            }
        }
    }
}

/// Equal when both use the same encoding and hold the same members.
impl PartialEq for SetValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SetValue::Intset(a), SetValue::Intset(b)) => a == b,
            (SetValue::Table(a), SetValue::Table(b)) => a.len() == b.len() && a.iter().all(|e| b.contains_key(&e.key)),
            _ => false,
        }
    }
}

impl fmt::Debug for SetValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let members: Vec<_> = self.iter().map(|m| String::from_utf8_lossy(&m).into_owned()).collect();
        f.debug_struct("SetValue").field("encoding", &self.encoding_name()).field("members", &members).finish()
    }
}

/// The decimal form of an intset member.
fn int_bytes(i: i64) -> Cow<'static, [u8]> {
    Cow::Owned(i.to_string().into_bytes())
}

impl SetValue {
    pub fn new() -> Self {
        Self::default()
    }

    /// A set holding `members`, encoded as Redis encodes a set built by adding them one by one to an empty
    /// intset (SINTERSTORE, SUNIONSTORE, SPOP's rebuild ...): intset when possible.
    pub fn from_members<'m>(members: impl IntoIterator<Item = &'m [u8]>, cfg: &EngineConfig) -> Self {
        let mut s = SetValue::new();
        for m in members {
            s.add(m, cfg);
        }
        s
    }

    pub fn len(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.len(),
            SetValue::Table(t) => t.len(),
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
        for m in self.iter() {
            f(&m);
        }
    }

    /// Every member (intset: ascending; table: bucket order).
    pub fn iter(&self) -> Box<dyn Iterator<Item = Cow<'_, [u8]>> + '_> {
        match self {
            SetValue::Intset(v) => Box::new(v.iter().map(|&i| int_bytes(i))),
            SetValue::Table(t) => Box::new(t.iter().map(|e| Cow::Borrowed(&e.key[..]))),
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.capacity() * std::mem::size_of::<i64>(),
            SetValue::Table(t) => t.heap_bytes(),
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => parse_i64(member).is_some_and(|i| v.binary_search(&i).is_ok()),
            SetValue::Table(t) => t.contains_key(member),
        }
    }

    /// Adds `member`; true when it is new. Converts an intset to a table for a non-integer member or when
    /// the count would pass `set-max-intset-entries`.
    pub fn add(&mut self, member: &[u8], cfg: &EngineConfig) -> bool {
        if let SetValue::Intset(v) = self {
            match parse_i64(member) {
                Some(i) => {
                    let Err(at) = v.binary_search(&i) else {
                        return false;
                    };
                    v.insert(at, i);
                    if v.len() > cfg.set_max_intset_entries {
                        self.convert_to_table();
                    }
                    return true;
                }
                None => self.convert_to_table(),
            }
        }
        let SetValue::Table(t) = self else { unreachable!("converted above") };
        if t.contains_key(member) {
            return false;
        }
        t.insert(member.into(), (), NO_EXPIRE);
        true
    }

    /// Removes `member`; true when it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => match parse_i64(member).map(|i| v.binary_search(&i)) {
                Some(Ok(at)) => {
                    v.remove(at);
                    true
                }
                _ => false,
            },
            SetValue::Table(t) => t.remove(member).is_some(),
        }
    }

    /// Switches to the hashtable encoding (no-op when already there).
    pub fn convert_to_table(&mut self) {
        if let SetValue::Intset(v) = self {
            let mut t = Table::with_capacity(v.len());
            for &i in v.iter() {
                t.insert(i.to_string().into_bytes().into(), (), NO_EXPIRE);
            }
            *self = SetValue::Table(Box::new(t));
        }
    }

    /// One SSCAN step; see [`crate::types::HashValue::scan`]: an intset is returned whole with cursor 0.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8])) -> u64 {
        match self {
            SetValue::Intset(_) => {
                self.for_each(f);
                0
            }
            SetValue::Table(t) => {
                let (mut cursor, mut seen, mut budget) = (cursor, 0usize, count.saturating_mul(10));
                loop {
                    cursor = t.scan(cursor, |e| {
                        seen += 1;
                        f(&e.key);
                    });
                    budget = budget.saturating_sub(1);
                    if cursor == 0 || budget == 0 || seen >= count {
                        return cursor;
                    }
                }
            }
        }
    }

    /// A uniformly chosen member.
    pub fn random_member(&self) -> Option<Cow<'_, [u8]>> {
        match self {
            SetValue::Intset(v) if v.is_empty() => None,
            SetValue::Intset(v) => Some(int_bytes(v[fastrand::usize(..v.len())])),
            SetValue::Table(t) => t.random_entry().map(|e| Cow::Borrowed(&e.key[..])),
        }
    }

    /// Removes and returns a random member.
    pub fn pop_random(&mut self) -> Option<Vec<u8>> {
        let m = self.random_member()?.into_owned();
        self.remove(&m);
        Some(m)
    }

    /// `count` random members, possibly repeated (SRANDMEMBER with a negative count).
    pub fn random_members(&self, count: usize) -> Vec<Cow<'_, [u8]>> {
        (0..count).map_while(|_| self.random_member()).collect()
    }

    /// `count` distinct random members; all members (in iteration order) when `count >= len`.
    pub fn random_members_unique(&self, count: usize) -> Vec<Cow<'_, [u8]>> {
        if count >= self.len() {
            return self.iter().collect();
        }
        if count.saturating_mul(3) > self.len() {
            // A large share of the set: drop random members from a full copy (Redis's "case 3").
            let mut all: Vec<_> = self.iter().collect();
            while all.len() > count {
                all.swap_remove(fastrand::usize(..all.len()));
            }
            return all;
        }
        let mut out: Vec<Cow<'_, [u8]>> = Vec::with_capacity(count);
        let mut seen: HashSet<Cow<'_, [u8]>> = HashSet::with_capacity(count);
        while out.len() < count {
            let Some(m) = self.random_member() else { break };
            if seen.insert(m.clone()) {
                out.push(m);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EngineConfig {
        EngineConfig { set_max_intset_entries: 3, ..EngineConfig::default() }
    }

    fn members(s: &SetValue) -> Vec<String> {
        let mut v: Vec<_> = s.iter().map(|m| String::from_utf8_lossy(&m).into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn intset_holds_canonical_integers_only() {
        let c = cfg();
        let mut s = SetValue::new();
        assert!(s.add(b"3", &c) && s.add(b"-1", &c) && !s.add(b"3", &c));
        assert_eq!(s, SetValue::Intset(vec![-1, 3]));
        assert!(!s.contains(b"03") && !s.remove(b"+3") && s.contains(b"3"));
        s.add(b"03", &c);
        assert_eq!(s.encoding_name(), "hashtable");
        assert_eq!(members(&s), ["-1", "03", "3"]);
        assert!(s.remove(b"03"));
        assert_eq!(s.encoding_name(), "hashtable");
    }

    #[test]
    fn intset_converts_past_the_limit() {
        let c = cfg();
        let s = SetValue::from_members([&b"1"[..], b"2", b"3"], &c);
        assert_eq!(s.encoding_name(), "intset");
        let s = SetValue::from_members([&b"1"[..], b"2", b"3", b"4"], &c);
        assert_eq!(s.encoding_name(), "hashtable");
        assert_eq!(members(&s), ["1", "2", "3", "4"]);
        assert_eq!(s.clone(), s);
    }

    #[test]
    fn random_and_pop() {
        let c = EngineConfig::default();
        let names: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        let mut s = SetValue::from_members(names.iter().map(|n| n.as_bytes()), &c);
        for n in [0, 1, 20, 40, 99, 100, 500] {
            let got = s.random_members_unique(n);
            let distinct: HashSet<_> = got.iter().collect();
            assert_eq!((got.len(), distinct.len()), (n.min(100), n.min(100)));
        }
        assert_eq!(s.random_members(250).len(), 250);
        let mut popped = HashSet::new();
        while let Some(m) = s.pop_random() {
            assert!(popped.insert(m));
        }
        assert_eq!(popped.len(), 100);
        assert!(s.random_member().is_none());
    }
}
