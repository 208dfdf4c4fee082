//! Sorted set values, ordered by score and then by member bytes (memcmp), as Redis orders them.
//!
//! Two encodings, as Redis 7.0 (`OBJECT ENCODING`):
//! - `listpack`: (member, score) entries kept sorted in a Redis listpack ([`PackedEntries`], format in
//!   `zset/packed.rs`), while the set has at most `zset-max-listpack-entries` members and none is longer
//!   than `zset-max-listpack-value` bytes. Lookups by member are linear, as in Redis. Scores are stored the
//!   way Redis stores them in a listpack (an integer or text), so a negative zero reads back as `0`.
//! - `skiplist`: a member -> score [`Table`] of [`Members`] (so ZSCAN gets the SCAN cursor guarantee) plus an
//!   order-statistic B+tree (`OrderTree`) that gives rank, select-by-rank and range starts in O(log n). The
//!   name is Redis's; the structure is a counted B+tree because it packs entries densely (32 bytes each,
//!   members of up to 22 bytes inline, leaves at least half full) and walks ranges leaf by leaf. With the
//!   dict's 48-byte member entry that is about 100 bytes per member for short members, against about 110 in
//!   Redis 7.0.
//!
//! A value converts from listpack to skiplist when an insert would break a limit, and never back; values
//! built in one go (ZUNIONSTORE, ZRANGESTORE ...) take the small form when the result fits, as Redis does.

use crate::config::EngineConfig;
use crate::table::{Members, Table, NO_EXPIRE};
use crate::types::listpack;
use std::cmp::Ordering;
use std::fmt;
use std::mem;

mod packed;

pub(crate) use packed::put_score;
pub use packed::PackedEntries;
use packed::{read_entry, read_entry_before};

/// A score with a total order (scores are never NaN). Like Redis, `-0` and `0` compare equal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
    }
}

/// The sorted-set order: score, then member bytes.
pub fn compare(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> Ordering {
    Score(a_score).cmp(&Score(b_score)).then_with(|| a_member.cmp(b_member))
}

/// The listpack thresholds (`zset-max-listpack-entries`, `zset-max-listpack-value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub entries: usize,
    pub value: usize,
}

impl Limits {
    pub fn from_config(cfg: &EngineConfig) -> Self {
        Limits { entries: cfg.zset_max_listpack_entries, value: cfg.zset_max_listpack_value }
    }
}

pub enum ZSetValue {
    /// Sorted by (score, member), packed in one buffer.
    Listpack(PackedEntries),
    Skiplist(Box<SkipList>),
}

/// The large form: member -> score, and the ordered index.
pub struct SkipList {
    dict: Table<f64, Members>,
    tree: OrderTree,
    /// Bytes of the members the tree holds (its own copies), for `heap_bytes`.
    member_bytes: usize,
}

impl SkipList {
    fn from_sorted(items: Vec<(Box<[u8]>, f64)>) -> Self {
        Self::from_sorted_distinct(items).expect("distinct members")
    }

    /// [`SkipList::from_sorted`] of entries whose members may repeat (a damaged file): None when one does.
    fn from_sorted_distinct(items: Vec<(Box<[u8]>, f64)>) -> Option<Self> {
        let tree = OrderTree::from_sorted(items.iter().map(|(m, s)| (*s, Member::new(m))).collect());
        let member_bytes = tree_bytes_of(items.iter().map(|(m, _)| m.len()));
        let mut dict = Table::with_capacity(items.len());
        for (m, s) in items {
            if dict.insert(m, s, NO_EXPIRE).is_some() {
                return None;
            }
        }
        Some(SkipList { dict, tree, member_bytes })
    }

    fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        if let Some(e) = self.dict.get_mut(member) {
            let old = e.value;
            if old != score {
                e.value = score;
                let m = self.tree.remove(old, member).expect("dict and tree agree");
                self.tree.insert(score, m);
            }
            return Some(old);
        }
        self.dict.insert_ref(member, score, NO_EXPIRE);
        self.tree.insert(score, Member::new(member));
        self.member_bytes += tree_bytes_of([member.len()]);
        None
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.dict.remove(member)?.value;
        self.tree.remove(score, member).expect("dict and tree agree");
        self.member_bytes -= tree_bytes_of([member.len()]);
        Some(score)
    }
}

impl Default for ZSetValue {
    fn default() -> Self {
        ZSetValue::Listpack(PackedEntries::default())
    }
}

impl Clone for ZSetValue {
    fn clone(&self) -> Self {
        match self {
            ZSetValue::Listpack(v) => ZSetValue::Listpack(v.clone()),
            ZSetValue::Skiplist(_) => {
                let items = self.iter().map(|(m, s)| (Box::from(m), s)).collect();
                ZSetValue::Skiplist(Box::new(SkipList::from_sorted(items)))
            }
        }
    }
}

/// Equal when the encodings and the (member, score) sequences are equal.
impl PartialEq for ZSetValue {
    fn eq(&self, other: &Self) -> bool {
        self.encoding_name() == other.encoding_name() && self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for ZSetValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.encoding_name())?;
        let mut l = f.debug_map();
        for (m, s) in self.iter() {
            l.entry(&String::from_utf8_lossy(m), &s);
        }
        l.finish()
    }
}

impl ZSetValue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a value from entries sorted by [`compare`] with distinct members, in the encoding Redis would
    /// give a result of this size (listpack when it fits the limits).
    pub fn from_sorted(items: Vec<(Box<[u8]>, f64)>, lim: Limits) -> Self {
        debug_assert!(items.windows(2).all(|w| compare(w[0].1, &w[0].0, w[1].1, &w[1].0) == Ordering::Less));
        if Self::fits_listpack(&items, lim) {
            ZSetValue::Listpack(items.into_iter().collect())
        } else {
            ZSetValue::Skiplist(Box::new(SkipList::from_sorted(items)))
        }
    }

    /// Whether a zset of these entries takes the listpack form under `lim`.
    pub fn fits_listpack<M: AsRef<[u8]>>(items: &[(M, f64)], lim: Limits) -> bool {
        let bytes = items.iter().fold(0usize, |sum, (m, _)| sum.saturating_add(packed::pair_bytes(m.as_ref().len())));
        items.len() <= lim.entries
            && items.iter().all(|(m, _)| m.as_ref().len() <= lim.value)
            && bytes <= listpack::MAX_SAFE
    }

    /// The skiplist form of entries sorted by [`compare`] whose members may repeat (a damaged file): None
    /// when one does. The member table finds a repeat as it is built.
    pub fn skiplist_from_sorted(items: Vec<(Box<[u8]>, f64)>) -> Option<Self> {
        SkipList::from_sorted_distinct(items).map(|s| ZSetValue::Skiplist(Box::new(s)))
    }

    pub fn len(&self) -> usize {
        match self {
            ZSetValue::Listpack(v) => v.len(),
            ZSetValue::Skiplist(s) => s.dict.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            ZSetValue::Listpack(_) => "listpack",
            ZSetValue::Skiplist(_) => "skiplist",
        }
    }

    /// Members with scores in ascending (score, member) order.
    pub fn iter(&self) -> Iter<'_> {
        self.range(0, self.len(), false)
    }

    /// `count` entries starting at rank `start` (0 = lowest), ascending, or descending from `start` when
    /// `rev`. The caller keeps the walk inside the set.
    pub fn range(&self, start: usize, count: usize, rev: bool) -> Iter<'_> {
        debug_assert!(
            count == 0 || (start < self.len() && (if rev { count <= start + 1 } else { start + count <= self.len() }))
        );
        let src = match self {
            ZSetValue::Listpack(v) if rev => IterSrc::PackedRev(v.bytes(), v.offset_of(start + 1)),
            ZSetValue::Listpack(v) => IterSrc::Packed(v.bytes(), v.offset_of(start)),
            ZSetValue::Skiplist(s) => {
                let (leaf, pos) = if count == 0 { (NIL, 0) } else { s.tree.locate(start) };
                IterSrc::Tree(&s.tree, leaf, pos)
            }
        };
        Iter { src, remaining: count, rev }
    }

    /// Approximate heap bytes owned by the value.
    pub fn heap_bytes(&self) -> usize {
        match self {
            ZSetValue::Listpack(v) => v.heap_bytes(),
            ZSetValue::Skiplist(s) => {
                mem::size_of::<SkipList>() + s.dict.heap_bytes() + s.member_bytes + s.tree.heap_bytes()
            }
        }
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSetValue::Listpack(v) => v.score(member),
            ZSetValue::Skiplist(s) => s.dict.get(member).map(|e| e.value),
        }
    }

    /// Adds `member` or moves it to `score`; returns the previous score. An unchanged score (`-0` equals `0`)
    /// changes nothing. Converts to skiplist first when a new member would break a listpack limit.
    pub fn insert(&mut self, member: &[u8], score: f64, lim: Limits) -> Option<f64> {
        debug_assert!(!score.is_nan());
        let v = match self {
            ZSetValue::Skiplist(s) => return s.insert(member, score),
            ZSetValue::Listpack(v) => v,
        };
        let too_big = v.len() + 1 > lim.entries
            || member.len() > lim.value
            || v.byte_len() + packed::pair_bytes(member.len()) > listpack::MAX_SAFE;
        if too_big && v.score(member).is_none() {
            self.convert_to_skiplist();
            return self.insert(member, score, lim);
        }
        v.insert(member, score)
    }

    /// Before adding `members` (a ZADD's, which cannot fail once it starts adding): a listpack that would
    /// convert to skiplist during the adds converts now, so the adds go straight to the skiplist instead of
    /// into a listpack that gets rebuilt on every add first. The result is the same: a zset only grows
    /// during the adds and never converts back, so it ends a skiplist exactly when one add breaks a limit.
    pub fn prepare_for<'m>(&mut self, members: impl ExactSizeIterator<Item = &'m [u8]>, lim: Limits) {
        let ZSetValue::Listpack(v) = self else { return };
        let (len, count) = (v.len(), members.len());
        if count < 2 || len + count <= lim.entries {
            return;
        }
        let mut new = std::collections::HashSet::with_capacity(count);
        for m in members {
            if m.len() > lim.value && v.score(m).is_none() {
                return self.convert_to_skiplist();
            }
            new.insert(m);
        }
        new.retain(|m| v.score(m).is_none());
        if len + new.len() > lim.entries {
            self.convert_to_skiplist();
        }
    }

    /// Removes `member`, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            ZSetValue::Listpack(v) => v.remove(member),
            ZSetValue::Skiplist(s) => s.remove(member),
        }
    }

    /// The 0-based ascending rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            ZSetValue::Listpack(v) => v.rank(member),
            ZSetValue::Skiplist(s) => {
                let score = s.dict.get(member)?.value;
                Some(s.tree.lower_bound(|s2, m2| compare(s2, m2, score, member) == Ordering::Less))
            }
        }
    }

    /// The entry at ascending rank `rank`.
    pub fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        if rank >= self.len() {
            return None;
        }
        self.range(rank, 1, false).next()
    }

    /// How many entries come before the first one for which `before` is false. `before` must hold for a
    /// prefix of the order (a score or lex bound); the result is where that bound's range starts.
    pub fn lower_bound(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            ZSetValue::Listpack(v) => v.lower_bound(before),
            ZSetValue::Skiplist(s) => s.tree.lower_bound(before),
        }
    }

    /// Removes and returns the lowest (or highest, `max`) entry.
    pub fn pop(&mut self, max: bool) -> Option<(Box<[u8]>, f64)> {
        match self {
            ZSetValue::Listpack(v) => v.pop(max),
            ZSetValue::Skiplist(s) => {
                let n = s.tree.len;
                if n == 0 {
                    return None;
                }
                let (leaf, pos) = s.tree.locate(if max { n - 1 } else { 0 });
                let (score, member) = &s.tree.leaf(leaf).items[pos];
                let (score, key) = (*score, member.to_vec());
                s.tree.remove(score, &key).expect("entry just located");
                s.dict.remove(&key);
                s.member_bytes -= tree_bytes_of([key.len()]);
                Some((key.into_boxed_slice(), score))
            }
        }
    }

    /// Removes the entries of ascending ranks `start..end`; returns how many.
    pub fn remove_range(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        match self {
            ZSetValue::Listpack(v) => v.remove_range(start, end),
            ZSetValue::Skiplist(_) => {
                let doomed: Vec<Vec<u8>> = self.range(start, end - start, false).map(|(m, _)| m.to_vec()).collect();
                for m in doomed {
                    self.remove(&m);
                }
            }
        }
        end - start
    }

    /// One ZSCAN step over the skiplist form's dict (Redis's cursor guarantee); returns the next cursor. The
    /// listpack form has no cursor space: it visits everything and returns 0, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match self {
            ZSetValue::Listpack(v) => {
                for (m, s) in v.iter() {
                    f(m, s);
                }
                0
            }
            ZSetValue::Skiplist(s) => s.dict.scan(cursor, |e| f(&e.key, e.value)),
        }
    }

    fn convert_to_skiplist(&mut self) {
        if let ZSetValue::Listpack(v) = self {
            let items = v.iter().map(|(m, s)| (Box::from(m), s)).collect();
            *self = ZSetValue::Skiplist(Box::new(SkipList::from_sorted(items)));
        }
    }
}

/// Walks a rank range of a [`ZSetValue`]; see [`ZSetValue::range`].
pub struct Iter<'a> {
    src: IterSrc<'a>,
    remaining: usize,
    rev: bool,
}

enum IterSrc<'a> {
    /// The listpack and the byte position of the next entry (forward walks).
    Packed(&'a [u8], usize),
    /// The listpack and the byte position where the next entry ends (backward walks).
    PackedRev(&'a [u8], usize),
    /// Tree, leaf, position in the leaf.
    Tree(&'a OrderTree, u32, usize),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let more = self.remaining > 0;
        match &mut self.src {
            IterSrc::Packed(buf, pos) => {
                let buf: &'a [u8] = buf;
                let (m, s, next) = read_entry(buf, *pos);
                *pos = next;
                Some((m, s))
            }
            IterSrc::PackedRev(buf, end) => {
                let buf: &'a [u8] = buf;
                let (m, s, start) = read_entry_before(buf, *end);
                *end = start;
                Some((m, s))
            }
            IterSrc::Tree(t, leaf, pos) => {
                let t: &'a OrderTree = t;
                let l = t.leaf(*leaf);
                let (s, m) = &l.items[*pos];
                let m: &'a [u8] = m;
                if more {
                    if self.rev {
                        if *pos == 0 {
                            *leaf = l.prev;
                            *pos = t.leaf(l.prev).items.len() - 1;
                        } else {
                            *pos -= 1;
                        }
                    } else if *pos + 1 == l.items.len() {
                        *leaf = l.next;
                        *pos = 0;
                    } else {
                        *pos += 1;
                    }
                }
                Some((m, *s))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

// ---------------------------------------------------------------------------------------------------------
// The order-statistic B+tree.
//
// Nodes live in one vector and refer to each other by index. Leaves hold sorted (score, member) items and
// are linked both ways for range walks. An inner node holds its children, the number of items under each
// child (for ranks), and separators: every item under child i sorts before `seps[i]`, and every item under
// child i+1 sorts at or after it. A separator is a copy of an item and may outlive that item's removal.
// Every node but the root holds at least half its capacity.

const NIL: u32 = u32::MAX;
const LEAF_MAX: usize = 64;
const LEAF_MIN: usize = LEAF_MAX / 2;
const INNER_MAX: usize = 64;
const INNER_MIN: usize = INNER_MAX / 2;
/// Bulk-built nodes are three quarters full, leaving room for inserts.
const FILL: usize = 48;

type Item = (f64, Member);

/// Members up to this length are stored inside the tree's items, saving an allocation each.
const INLINE: usize = 22;

/// The tree's own copy of a member (the dict holds the other): inline when short, which most members are.
/// 24 bytes either way.
#[derive(Clone)]
enum Member {
    Inline(u8, [u8; INLINE]),
    Heap(Box<[u8]>),
}

impl Member {
    const EMPTY: Member = Member::Inline(0, [0; INLINE]);

    fn new(m: &[u8]) -> Self {
        if m.len() <= INLINE {
            Member::Inline(m.len() as u8, crate::util::inline_array(m))
        } else {
            Member::Heap(m.into())
        }
    }
}

impl std::ops::Deref for Member {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Member::Inline(n, b) => &b[..usize::from(*n)],
            Member::Heap(b) => b,
        }
    }
}

/// Heap bytes the tree's copies of members of these lengths take.
fn tree_bytes_of(lens: impl IntoIterator<Item = usize>) -> usize {
    lens.into_iter().filter(|&n| n > INLINE).sum()
}

fn item_cmp(a: &Item, score: f64, member: &[u8]) -> Ordering {
    compare(a.0, &a.1, score, member)
}

#[derive(Clone)]
struct Leaf {
    items: Vec<Item>,
    prev: u32,
    next: u32,
}

#[derive(Clone)]
struct Inner {
    seps: Vec<Item>,
    children: Vec<u32>,
    counts: Vec<usize>,
}

#[derive(Clone)]
enum Node {
    Leaf(Leaf),
    Inner(Inner),
    Free,
}

#[derive(Clone)]
struct OrderTree {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    /// Last leaf (the first is where the root's leftmost path ends).
    tail: u32,
    len: usize,
}

/// Splits `n` things into groups of `min..=max`, about `FILL` each (one group when `n <= max`).
fn group_sizes(n: usize, min: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return vec![n];
    }
    let k = n.div_ceil(FILL).clamp(n.div_ceil(max), n / min);
    (0..k).map(|i| n / k + usize::from(i < n % k)).collect()
}

/// Two distinct nodes mutably at once.
fn pair_mut(nodes: &mut [Node], a: u32, b: u32) -> (&mut Node, &mut Node) {
    let (a, b) = (a as usize, b as usize);
    debug_assert_ne!(a, b);
    if a < b {
        let (x, y) = nodes.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = nodes.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}

impl OrderTree {
    /// Builds the tree from items sorted by (score, member), all nodes about three quarters full.
    fn from_sorted(items: Vec<Item>) -> Self {
        let len = items.len();
        let mut nodes = Vec::new();
        // (node, items under it, its first item) for the level being built.
        let mut level: Vec<(u32, usize, Option<Item>)> = Vec::new();
        let sizes = group_sizes(len, LEAF_MIN, LEAF_MAX);
        let last = sizes.len() - 1;
        let mut it = items.into_iter();
        for (k, size) in sizes.into_iter().enumerate() {
            let chunk: Vec<Item> = it.by_ref().take(size).collect();
            let id = nodes.len() as u32;
            let first = chunk.first().cloned();
            let prev = if k == 0 { NIL } else { id - 1 };
            let next = if k == last { NIL } else { id + 1 };
            nodes.push(Node::Leaf(Leaf { items: chunk, prev, next }));
            level.push((id, size, first));
        }
        let tail = level[last].0;
        while level.len() > 1 {
            let mut up = Vec::new();
            let mut rest = level.into_iter();
            for size in group_sizes(rest.len(), INNER_MIN, INNER_MAX) {
                let group: Vec<_> = rest.by_ref().take(size).collect();
                let total = group.iter().map(|g| g.1).sum();
                let mut seps = Vec::with_capacity(size - 1);
                let mut children = Vec::with_capacity(size);
                let mut counts = Vec::with_capacity(size);
                let mut first = None;
                for (i, (id, count, f)) in group.into_iter().enumerate() {
                    if i == 0 {
                        first = f;
                    } else {
                        seps.push(f.expect("non-empty child"));
                    }
                    children.push(id);
                    counts.push(count);
                }
                nodes.push(Node::Inner(Inner { seps, children, counts }));
                up.push(((nodes.len() - 1) as u32, total, first));
            }
            level = up;
        }
        OrderTree { nodes, free: Vec::new(), root: level[0].0, tail, len }
    }

    fn leaf(&self, id: u32) -> &Leaf {
        match &self.nodes[id as usize] {
            Node::Leaf(l) => l,
            _ => unreachable!("not a leaf"),
        }
    }

    fn leaf_mut(&mut self, id: u32) -> &mut Leaf {
        match &mut self.nodes[id as usize] {
            Node::Leaf(l) => l,
            _ => unreachable!("not a leaf"),
        }
    }

    fn inner_mut(&mut self, id: u32) -> &mut Inner {
        match &mut self.nodes[id as usize] {
            Node::Inner(n) => n,
            _ => unreachable!("not an inner node"),
        }
    }

    fn alloc(&mut self, node: Node) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, id: u32) -> Node {
        self.free.push(id);
        mem::replace(&mut self.nodes[id as usize], Node::Free)
    }

    /// Items under a node.
    fn count(&self, id: u32) -> usize {
        match &self.nodes[id as usize] {
            Node::Leaf(l) => l.items.len(),
            Node::Inner(n) => n.counts.iter().sum(),
            Node::Free => 0,
        }
    }

    /// Entries (items or children) of a node, and the least a non-root node may hold.
    fn fill(&self, id: u32) -> (usize, usize) {
        match &self.nodes[id as usize] {
            Node::Leaf(l) => (l.items.len(), LEAF_MIN),
            Node::Inner(n) => (n.children.len(), INNER_MIN),
            Node::Free => (0, 0),
        }
    }

    fn heap_bytes(&self) -> usize {
        let leaves = self.len.div_ceil(LEAF_MIN.max(1)).max(1);
        self.nodes.capacity() * mem::size_of::<Node>()
            + self.len * mem::size_of::<Item>() * 4 / 3
            + leaves / INNER_MIN * INNER_MAX * (mem::size_of::<Item>() + 12)
    }

    /// The rank of the first item for which `before` is false (`before` holds for a prefix).
    fn lower_bound(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let (mut id, mut rank) = (self.root, 0);
        loop {
            match &self.nodes[id as usize] {
                Node::Inner(n) => {
                    let i = n.seps.partition_point(|s| before(s.0, &s.1));
                    rank += n.counts[..i].iter().sum::<usize>();
                    id = n.children[i];
                }
                Node::Leaf(l) => return rank + l.items.partition_point(|x| before(x.0, &x.1)),
                Node::Free => unreachable!("free node in the tree"),
            }
        }
    }

    /// The leaf and position of the item of rank `rank < len`.
    fn locate(&self, mut rank: usize) -> (u32, usize) {
        debug_assert!(rank < self.len);
        let mut id = self.root;
        loop {
            match &self.nodes[id as usize] {
                Node::Inner(n) => {
                    let mut i = 0;
                    while rank >= n.counts[i] {
                        rank -= n.counts[i];
                        i += 1;
                    }
                    id = n.children[i];
                }
                Node::Leaf(_) => return (id, rank),
                Node::Free => unreachable!("free node in the tree"),
            }
        }
    }

    /// Inserts an item whose member is not in the tree.
    fn insert(&mut self, score: f64, member: Member) {
        if let Some((sep, right)) = self.insert_at(self.root, (score, member)) {
            let left = self.root;
            let counts = vec![self.count(left), self.count(right)];
            self.root = self.alloc(Node::Inner(Inner { seps: vec![sep], children: vec![left, right], counts }));
        }
        self.len += 1;
    }

    /// Inserts under `id`; when `id` splits, returns the separator and the new right sibling.
    fn insert_at(&mut self, id: u32, item: Item) -> Option<(Item, u32)> {
        let (i, child) = match &mut self.nodes[id as usize] {
            Node::Leaf(leaf) => {
                let pos = leaf.items.partition_point(|x| item_cmp(x, item.0, &item.1) == Ordering::Less);
                leaf.items.insert(pos, item);
                if leaf.items.len() <= LEAF_MAX {
                    return None;
                }
                let items = leaf.items.split_off(leaf.items.len() / 2);
                let next = leaf.next;
                let sep = items[0].clone();
                let right = self.alloc(Node::Leaf(Leaf { items, prev: id, next }));
                self.leaf_mut(id).next = right;
                if next == NIL {
                    self.tail = right;
                } else {
                    self.leaf_mut(next).prev = right;
                }
                return Some((sep, right));
            }
            Node::Inner(n) => {
                let i = n.seps.partition_point(|s| item_cmp(s, item.0, &item.1) != Ordering::Greater);
                n.counts[i] += 1;
                (i, n.children[i])
            }
            Node::Free => unreachable!("free node in the tree"),
        };
        let (sep, right) = self.insert_at(child, item)?;
        let right_count = self.count(right);
        let n = self.inner_mut(id);
        n.counts[i] -= right_count;
        n.seps.insert(i, sep);
        n.children.insert(i + 1, right);
        n.counts.insert(i + 1, right_count);
        if n.children.len() <= INNER_MAX {
            return None;
        }
        let mid = n.children.len() / 2;
        let children = n.children.split_off(mid);
        let counts = n.counts.split_off(mid);
        let seps = n.seps.split_off(mid);
        let up = n.seps.pop().expect("a full node has separators");
        Some((up, self.alloc(Node::Inner(Inner { seps, children, counts }))))
    }

    /// Removes the item (score, member); returns the tree's copy of the member.
    fn remove(&mut self, score: f64, member: &[u8]) -> Option<Member> {
        let out = self.remove_at(self.root, score, member)?;
        self.len -= 1;
        if let Node::Inner(n) = &self.nodes[self.root as usize] {
            if n.children.len() == 1 {
                let child = n.children[0];
                self.release(self.root);
                self.root = child;
            }
        }
        Some(out)
    }

    fn remove_at(&mut self, id: u32, score: f64, member: &[u8]) -> Option<Member> {
        let (i, child) = match &mut self.nodes[id as usize] {
            Node::Leaf(leaf) => {
                let pos = leaf.items.binary_search_by(|x| item_cmp(x, score, member)).ok()?;
                return Some(leaf.items.remove(pos).1);
            }
            Node::Inner(n) => {
                let i = n.seps.partition_point(|s| item_cmp(s, score, member) != Ordering::Greater);
                (i, n.children[i])
            }
            Node::Free => unreachable!("free node in the tree"),
        };
        let out = self.remove_at(child, score, member)?;
        self.inner_mut(id).counts[i] -= 1;
        let (have, min) = self.fill(child);
        if have < min {
            self.rebalance(id, i);
        }
        Some(out)
    }

    /// Child `i` of `parent` fell below half: merge it with a sibling, or take one entry from the sibling.
    fn rebalance(&mut self, parent: u32, i: usize) {
        let p = self.inner_mut(parent);
        if p.children.len() < 2 {
            return;
        }
        let l = if i > 0 { i - 1 } else { 0 };
        let (lid, rid) = (p.children[l], p.children[l + 1]);
        let max = if matches!(self.nodes[lid as usize], Node::Leaf(_)) { LEAF_MAX } else { INNER_MAX };
        if self.fill(lid).0 + self.fill(rid).0 <= max {
            self.merge(parent, l);
            return;
        }
        // The parent's separator between the two is replaced below.
        let old_sep = mem::replace(&mut self.inner_mut(parent).seps[l], (0.0, Member::EMPTY));
        let to_left = l == i;
        let (new_sep, moved) = match pair_mut(&mut self.nodes, lid, rid) {
            (Node::Leaf(a), Node::Leaf(b)) => {
                if to_left {
                    a.items.push(b.items.remove(0));
                } else {
                    b.items.insert(0, a.items.pop().expect("sibling above half"));
                }
                (b.items[0].clone(), 1)
            }
            (Node::Inner(a), Node::Inner(b)) => {
                if to_left {
                    let (child, count, sep) = (b.children.remove(0), b.counts.remove(0), b.seps.remove(0));
                    a.children.push(child);
                    a.counts.push(count);
                    a.seps.push(old_sep);
                    (sep, count)
                } else {
                    let (child, count) = (a.children.pop().expect("full"), a.counts.pop().expect("full"));
                    let sep = a.seps.pop().expect("full");
                    b.children.insert(0, child);
                    b.counts.insert(0, count);
                    b.seps.insert(0, old_sep);
                    (sep, count)
                }
            }
            _ => unreachable!("siblings on one level have one kind"),
        };
        let p = self.inner_mut(parent);
        p.seps[l] = new_sep;
        if to_left {
            p.counts[l] += moved;
            p.counts[l + 1] -= moved;
        } else {
            p.counts[l] -= moved;
            p.counts[l + 1] += moved;
        }
    }

    /// Merges child `l + 1` of `parent` into child `l`.
    fn merge(&mut self, parent: u32, l: usize) {
        let p = self.inner_mut(parent);
        let sep = p.seps.remove(l);
        let rid = p.children.remove(l + 1);
        let rc = p.counts.remove(l + 1);
        p.counts[l] += rc;
        let lid = p.children[l];
        match self.release(rid) {
            Node::Leaf(r) => {
                let a = self.leaf_mut(lid);
                a.items.extend(r.items);
                a.next = r.next;
                if r.next == NIL {
                    self.tail = lid;
                } else {
                    self.leaf_mut(r.next).prev = lid;
                }
            }
            Node::Inner(r) => {
                let a = self.inner_mut(lid);
                a.seps.push(sep);
                a.seps.extend(r.seps);
                a.children.extend(r.children);
                a.counts.extend(r.counts);
            }
            Node::Free => unreachable!("free node in the tree"),
        }
    }

    /// Checks every structural invariant (tests).
    #[cfg(test)]
    fn check(&self) {
        fn walk(t: &OrderTree, id: u32, root: bool, leaves: &mut Vec<u32>) -> (usize, usize) {
            match &t.nodes[id as usize] {
                Node::Leaf(l) => {
                    assert!(root || l.items.len() >= LEAF_MIN, "leaf underfull");
                    assert!(l.items.len() <= LEAF_MAX);
                    leaves.push(id);
                    (l.items.len(), 0)
                }
                Node::Inner(n) => {
                    assert!(root || n.children.len() >= INNER_MIN, "inner underfull");
                    assert!(n.children.len() >= 2 && n.children.len() <= INNER_MAX);
                    assert_eq!(n.seps.len() + 1, n.children.len());
                    let mut depth = None;
                    for (k, &c) in n.children.iter().enumerate() {
                        let (count, d) = walk(t, c, false, leaves);
                        assert_eq!(count, n.counts[k], "count");
                        assert!(depth.is_none() || depth == Some(d), "unbalanced");
                        depth = Some(d);
                    }
                    (n.counts.iter().sum(), depth.unwrap_or(0) + 1)
                }
                Node::Free => panic!("free node reachable"),
            }
        }
        let mut leaves = Vec::new();
        let (count, _) = walk(self, self.root, true, &mut leaves);
        assert_eq!(count, self.len);
        assert_eq!(*leaves.last().unwrap(), self.tail);
        for w in leaves.windows(2) {
            assert_eq!(self.leaf(w[0]).next, w[1]);
            assert_eq!(self.leaf(w[1]).prev, w[0]);
        }
        assert_eq!(self.leaf(leaves[0]).prev, NIL);
        assert_eq!(self.leaf(self.tail).next, NIL);
        // Items in order across leaves, and every item between its ancestors' separators.
        let all: Vec<&Item> = leaves.iter().flat_map(|&l| self.leaf(l).items.iter()).collect();
        for w in all.windows(2) {
            assert_eq!(item_cmp(w[0], w[1].0, &w[1].1), Ordering::Less);
        }
        for (rank, item) in all.iter().enumerate() {
            assert_eq!(self.lower_bound(|s, m| compare(s, m, item.0, &item.1) == Ordering::Less), rank);
            let (leaf, pos) = self.locate(rank);
            assert_eq!(item_cmp(&self.leaf(leaf).items[pos], item.0, &item.1), Ordering::Equal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const LIM: Limits = Limits { entries: 128, value: 64 };

    fn tree(z: &ZSetValue) -> &OrderTree {
        match z {
            ZSetValue::Skiplist(s) => &s.tree,
            _ => panic!("listpack"),
        }
    }

    #[test]
    fn compact_items() {
        assert_eq!(mem::size_of::<Member>(), 24);
        assert_eq!(&*Member::new(b"abc"), b"abc");
        assert_eq!(&*Member::new(&[7; 23]), &[7; 23]);
    }

    #[test]
    fn ties_by_member_and_signed_zero() {
        let mut z = ZSetValue::new();
        for (m, s) in [("b", 1.0), ("a", 1.0), ("c", 0.5), ("z", -0.0), ("y", 0.0)] {
            z.insert(m.as_bytes(), s, LIM);
        }
        let got: Vec<(String, f64)> = z.iter().map(|(m, s)| (String::from_utf8_lossy(m).into(), s)).collect();
        assert_eq!(got[0].0, "y");
        assert_eq!(got[1].0, "z");
        assert!(got[1].1.is_sign_positive(), "a listpack stores -0 as 0");
        assert_eq!(got[2..].iter().map(|g| g.0.as_str()).collect::<Vec<_>>(), ["c", "a", "b"]);
        // Moving to an equal score (-0 == 0) is no change.
        assert_eq!(z.insert(b"y", -0.0, LIM), Some(0.0));
        assert_eq!(z.rank(b"y"), Some(0));
    }

    #[test]
    fn small_form_is_one_compact_buffer() {
        let mut z = ZSetValue::new();
        z.insert(b"m123456", 1.0, LIM);
        z.insert(b"x", 2.5, LIM);
        z.insert(b"y", 3.0, LIM);
        assert_eq!(z.encoding_name(), "listpack");
        assert!(z.heap_bytes() < 80, "{} bytes", z.heap_bytes());
        // Long members (two-byte lengths), moves, reverse ranges, rank removal.
        let lim = Limits { entries: 128, value: 1000 };
        let long = vec![b'l'; 300];
        assert_eq!(z.insert(&long, 2.0, lim), None);
        assert_eq!(z.insert(b"x", 0.5, lim), Some(2.5));
        let order: Vec<_> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        let want = [(b"x".to_vec(), 0.5), (b"m123456".to_vec(), 1.0), (long.clone(), 2.0), (b"y".to_vec(), 3.0)];
        assert_eq!(order, want);
        let rev: Vec<_> = z.range(2, 2, true).map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(rev, [want[2].clone(), want[1].clone()]);
        assert_eq!(z.rank(&long), Some(2));
        assert_eq!(z.score(&long), Some(2.0));
        assert_eq!(z.lower_bound(|s, _| s < 2.0), 2);
        assert_eq!(z.remove_range(1, 3), 2);
        assert_eq!(z.len(), 2);
        assert_eq!(z.pop(true), Some((Box::from(&b"y"[..]), 3.0)));
        assert_eq!(z.pop(false), Some((Box::from(&b"x"[..]), 0.5)));
        assert_eq!(z.pop(false), None);
        assert_eq!(z.heap_bytes(), 0);
    }

    #[test]
    fn converts_past_limits_and_never_back() {
        let mut z = ZSetValue::new();
        for i in 0..128 {
            z.insert(format!("m{i:03}").as_bytes(), f64::from(i), LIM);
        }
        assert_eq!(z.encoding_name(), "listpack");
        z.insert(b"m128", 128.0, LIM);
        assert_eq!(z.encoding_name(), "skiplist");
        z.remove(b"m128");
        z.remove(b"m000");
        assert_eq!(z.encoding_name(), "skiplist");
        let mut z = ZSetValue::new();
        z.insert(&[b'x'; 64], 1.0, LIM);
        assert_eq!(z.encoding_name(), "listpack");
        z.insert(&[b'x'; 65], 1.0, LIM);
        assert_eq!(z.encoding_name(), "skiplist");
        assert_eq!(z.len(), 2);
        assert_eq!(z.clone(), z);
    }

    #[test]
    fn large_rank_and_range() {
        let n = 100_000usize;
        let items: Vec<(Box<[u8]>, f64)> =
            (0..n).map(|i| (format!("m{i:06}").into_bytes().into_boxed_slice(), i as f64)).collect();
        let mut z = ZSetValue::from_sorted(items, LIM);
        tree(&z).check();
        assert_eq!(z.rank(b"m054321"), Some(54321));
        assert_eq!(z.get_by_rank(99_999), Some((&b"m099999"[..], 99_999.0)));
        let r: Vec<_> = z.range(50_000, 3, true).map(|(m, _)| m.to_vec()).collect();
        assert_eq!(r, [b"m050000".to_vec(), b"m049999".to_vec(), b"m049998".to_vec()]);
        assert_eq!(z.lower_bound(|s, _| s < 777.5), 778);
        // Removing every other member keeps ranks right.
        for i in (0..n).step_by(2) {
            assert!(z.remove(format!("m{i:06}").as_bytes()).is_some());
        }
        tree(&z).check();
        assert_eq!(z.rank(b"m000001"), Some(0));
        assert_eq!(z.rank(b"m099999"), Some(n / 2 - 1));
        assert_eq!(z.remove_range(10, 20_000), 19_990);
        tree(&z).check();
        assert_eq!(z.len(), n / 2 - 19_990);
        while z.pop(false).is_some() {}
        assert!(z.is_empty());
        tree(&z).check();
    }

    #[test]
    fn deep_tree_random_inserts_and_removes() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut z = ZSetValue::new();
        let mut model: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
        let mut keys: Vec<Vec<u8>> =
            (0..40_000u32).map(|i| format!("k{}", i.wrapping_mul(2_654_435_761)).into_bytes()).collect();
        rng.shuffle(&mut keys);
        for (i, k) in keys.iter().enumerate() {
            let s = f64::from(rng.i32(-50..50));
            assert_eq!(z.insert(k, s, LIM), model.insert(k.clone(), s));
            if i % 10_000 == 9_999 {
                tree(&z).check();
            }
        }
        rng.shuffle(&mut keys);
        for (i, k) in keys.iter().enumerate() {
            if i % 3 == 0 {
                let s = f64::from(rng.i32(-50..50));
                assert_eq!(z.insert(k, s, LIM), model.insert(k.clone(), s));
            }
            assert_eq!(z.remove(k), model.remove(k));
            if i % 5_000 == 4_999 {
                tree(&z).check();
                assert_eq!(z.iter().map(|(m, s)| (s, m.to_vec())).collect::<Vec<_>>(), sorted(&model));
            }
        }
        assert!(z.is_empty());
        tree(&z).check();
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, i8),
        Remove(u16),
        Pop(bool),
        RemoveRange(u16, u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u16..600, any::<i8>()).prop_map(|(m, s)| Op::Insert(m, s)),
            3 => (0u16..600).prop_map(Op::Remove),
            1 => any::<bool>().prop_map(Op::Pop),
            1 => (0u16..300, 0u16..40).prop_map(|(a, b)| Op::RemoveRange(a, b)),
        ]
    }

    fn sorted(model: &BTreeMap<Vec<u8>, f64>) -> Vec<(f64, Vec<u8>)> {
        let mut v: Vec<_> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
        v.sort_by(|x, y| compare(x.0, &x.1, y.0, &y.1));
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn tree_matches_model(ops in proptest::collection::vec(op(), 1..1500)) {
            let lim = Limits { entries: 16, value: 64 };
            let mut z = ZSetValue::new();
            let mut model: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(m, s) => {
                        let m = format!("{m}").into_bytes();
                        let s = f64::from(s) / 4.0;
                        prop_assert_eq!(z.insert(&m, s, lim), model.insert(m, s));
                    }
                    Op::Remove(m) => {
                        let m = format!("{m}").into_bytes();
                        prop_assert_eq!(z.remove(&m), model.remove(&m));
                    }
                    Op::Pop(max) => {
                        let all = sorted(&model);
                        let want = if max { all.last() } else { all.first() };
                        let got = z.pop(max).map(|(m, s)| (s, m.to_vec()));
                        prop_assert_eq!(got.as_ref(), want);
                        if let Some((_, m)) = got {
                            model.remove(&m);
                        }
                    }
                    Op::RemoveRange(a, n) => {
                        let (a, n) = (usize::from(a), usize::from(n));
                        let doomed: Vec<Vec<u8>> = sorted(&model).into_iter().skip(a).take(n).map(|e| e.1).collect();
                        prop_assert_eq!(z.remove_range(a, a + n), doomed.len());
                        for m in doomed {
                            model.remove(&m);
                        }
                    }
                }
            }
            let want = sorted(&model);
            let got: Vec<(f64, Vec<u8>)> = z.iter().map(|(m, s)| (s, m.to_vec())).collect();
            prop_assert_eq!(&got, &want);
            let rev: Vec<(f64, Vec<u8>)> = if z.is_empty() { vec![] } else {
                z.range(z.len() - 1, z.len(), true).map(|(m, s)| (s, m.to_vec())).collect()
            };
            prop_assert_eq!(rev, want.iter().rev().cloned().collect::<Vec<_>>());
            for (rank, (s, m)) in want.iter().enumerate() {
                prop_assert_eq!(z.rank(m), Some(rank));
                prop_assert_eq!(z.score(m), Some(*s));
            }
            if let ZSetValue::Skiplist(_) = &z {
                tree(&z).check();
            }
        }
    }
}
