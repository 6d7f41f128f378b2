//! The attribute tree: named attributes in a tree, identified by dense quarks.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::Quark;

/// The hidden root of the tree (Trace Compass `ROOT_ATTRIBUTE`).
pub const ROOT_QUARK: Quark = -1;
/// Returned by optional look-ups that find nothing (Trace Compass `INVALID_ATTRIBUTE`).
pub const INVALID_QUARK: Quark = -2;
/// Wildcard element of [`AttributeTree::quarks`] patterns.
pub const WILDCARD: &str = "*";
/// Parent element of [`AttributeTree::quarks`] patterns.
pub const PARENT: &str = "..";

/// Hashes names 8 bytes at a time with a folded 64x64->128 multiply (each step
/// mixes into both halves, so every bit of the result depends on every byte).
/// Names are short and indexes are built on every file open and on every new
/// attribute: SipHash's DoS resistance buys nothing.
#[derive(Default, Clone, Copy)]
struct NameHasher(u64);

const NAME_HASH_K: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline(always)]
fn fold_mix(h: u64, w: u64) -> u64 {
    let p = u128::from(h ^ w) * u128::from(NAME_HASH_K);
    (p as u64) ^ ((p >> 64) as u64)
}

impl std::hash::Hasher for NameHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // The length first, so that the zero-free tail encoding below is unambiguous.
        let mut h = fold_mix(self.0, bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            h = fold_mix(h, u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let r = chunks.remainder();
        let n = r.len();
        if n >= 4 {
            // Two overlapping 4-byte reads cover 4..=7 bytes without a copy.
            let lo = u32::from_le_bytes(r[..4].try_into().unwrap_or_default());
            let hi = u32::from_le_bytes(r[n - 4..].try_into().unwrap_or_default());
            h = fold_mix(h, u64::from(lo) | (u64::from(hi) << 32));
        } else if n > 0 {
            let w = u64::from(r[0]) | (u64::from(r[n / 2]) << 8) | (u64::from(r[n - 1]) << 16);
            h = fold_mix(h, w);
        }
        self.0 = h;
    }
    #[inline]
    fn write_u8(&mut self, b: u8) {
        // `str`'s terminator: a constant, after `write` already mixed in the length.
        self.0 ^= u64::from(b);
    }
}

/// The hash of a name, as [`NameHasher`] hashes its bytes.
#[inline]
fn name_hash(name: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = NameHasher::default();
    h.write(name);
    h.finish()
}

/// A cheap hash of a name's length and first and last 8 bytes: enough to pick a
/// slot of the recent-name cache (a collision only stores a name twice).
#[inline]
fn quick_hash(b: &[u8]) -> u64 {
    let n = b.len();
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
    let w = if n >= 8 {
        word(0) ^ word(n - 8).rotate_left(29)
    } else {
        b.iter().fold(0u64, |w, &c| (w << 8) | u64::from(c))
    };
    fold_mix(w, n as u64)
}

/// Child lists up to this length live in the shared block arena and are scanned;
/// longer ones get a vector of their own and a hash index. A power of two: short
/// lists live in blocks of 1, 2, 4 or 8 quarks.
const SMALL_CHILDREN: usize = 8;
/// Size classes of child blocks (1, 2, 4, ..., `SMALL_CHILDREN` quarks).
const BLOCK_CLASSES: usize = SMALL_CHILDREN.trailing_zeros() as usize + 1;

/// Where a node's children are: `len <= SMALL_CHILDREN`: `blocks[at..at + len]`
/// (in a block of `len.next_power_of_two()` quarks); longer: `big[at]`.
#[derive(Debug, Clone, Copy, Default)]
struct ChildRef {
    at: u32,
    len: u32,
}

/// One attribute: 20 bytes, no allocation of its own. Trees of millions of
/// attributes (one per request or thread) are then mostly a few flat arrays:
/// creating an attribute touches little fresh memory and calls no allocator.
#[derive(Debug, Clone, Copy)]
struct AttributeNode {
    /// Offset of the name in [`AttributeTree::names`] (equal names may share it).
    name_at: u32,
    /// Length of the name, and [`SHARED_NAME`] for a shared name object.
    name_len: u32,
    parent: Quark,
    children: ChildRef,
}

/// Flag of [`AttributeNode::name_len`]: the name is a shared name object
/// ([`AttributeTree::child_and_add_shared`]), whose identity in the `.ht`
/// attribute section is its offset (its bytes are its own); other names are
/// each their attribute's own object, whose identity is the quark.
const SHARED_NAME: u32 = 1 << 31;

/// Slots of the cache of recent names (a power of two): the names repeated
/// under many parents (`Ops`, `VM`, an operation) are then stored once.
const NAME_CACHE: usize = 1024;

/// Open-addressing index of a long child list, by name: slots of (the hash's
/// high 32 bits, quark), `-1` when empty. The hash is kept, so growing it reads
/// no name.
#[derive(Debug, Clone, Default)]
struct NameIndex {
    slots: Vec<(u32, Quark)>,
    len: usize,
}

impl NameIndex {
    #[inline]
    fn tag(hash: u64) -> u32 {
        // The folded multiply mixes best into the high bits.
        (hash >> 32) as u32
    }

    fn find(&self, hash: u64, mut is: impl FnMut(Quark) -> bool) -> Option<Quark> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let tag = Self::tag(hash);
        let mut i = tag as usize & mask;
        loop {
            let (t, q) = self.slots[i];
            if q < 0 {
                return None;
            }
            if t == tag && is(q) {
                return Some(q);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `quark` (not in the index yet) under `hash`.
    fn insert(&mut self, hash: u64, quark: Quark) {
        // At most half full: probes stay short, misses (new names) included.
        if 2 * (self.len + 1) > self.slots.len() {
            let grown = (2 * self.slots.len()).max(4 * SMALL_CHILDREN);
            let old = std::mem::replace(&mut self.slots, vec![(0, -1); grown]);
            for (t, q) in old {
                if q >= 0 {
                    self.place(t, q);
                }
            }
        }
        self.place(Self::tag(hash), quark);
        self.len += 1;
    }

    fn place(&mut self, tag: u32, quark: Quark) {
        let mask = self.slots.len() - 1;
        let mut i = tag as usize & mask;
        while self.slots[i].1 >= 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = (tag, quark);
    }
}

/// A child list longer than [`SMALL_CHILDREN`].
#[derive(Debug, Clone, Default)]
struct BigList {
    list: Vec<Quark>,
    index: NameIndex,
}

/// The address of a shared name object: its identity.
fn shared_key(name: &Arc<str>) -> usize {
    Arc::as_ptr(name) as *const u8 as usize
}

/// Attributes are created on demand by path and never deleted. Quarks are assigned
/// 0, 1, 2, ... in creation order, so a parent's quark is smaller than its children's.
#[derive(Debug, Clone, Default)]
pub struct AttributeTree {
    nodes: Vec<AttributeNode>,
    root_children: ChildRef,
    /// The names' bytes (an empty shared name takes one placeholder byte, so that
    /// its offset is its own).
    names: String,
    /// (offset, length) in `names` of a recent name, by hash: a name equal to
    /// the one in its slot is not stored again. Empty until the first name.
    name_cache: Vec<(u32, u32)>,
    /// Shared name objects already in `names`, by address: where, and the object
    /// (held, so that its address stays its own).
    shared: HashMap<usize, (u32, Arc<str>), std::hash::BuildHasherDefault<NameHasher>>,
    /// Blocks of short child lists (see [`ChildRef`]).
    blocks: Vec<Quark>,
    /// Free blocks (offsets in `blocks`) by size class: a list that grows moves
    /// to a block twice as large, and the next list of that size takes its old one.
    free_blocks: [Vec<u32>; BLOCK_CLASSES],
    /// Long child lists.
    big: Vec<BigList>,
}

fn too_many(what: &str) -> Error {
    Error::Config(format!("attribute tree: more than 2^32 {what}"))
}

impl AttributeTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of attributes (the next quark to be created).
    #[inline]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn child_ref(&self, quark: Quark) -> Option<ChildRef> {
        if quark == ROOT_QUARK {
            Some(self.root_children)
        } else {
            self.nodes
                .get(usize::try_from(quark).ok()?)
                .map(|n| n.children)
        }
    }

    fn list(&self, r: ChildRef) -> &[Quark] {
        let (at, len) = (r.at as usize, r.len as usize);
        if len <= SMALL_CHILDREN {
            self.blocks.get(at..at + len).unwrap_or_default()
        } else {
            self.big.get(at).map_or(&[], |b| &b.list)
        }
    }

    fn check(&self, quark: Quark) -> Result<()> {
        if quark == ROOT_QUARK || (quark >= 0 && (quark as usize) < self.nodes.len()) {
            Ok(())
        } else {
            Err(Error::InvalidQuark {
                quark,
                count: self.nodes.len(),
            })
        }
    }

    /// The name of a node.
    #[inline]
    fn node_name(&self, node: &AttributeNode) -> &str {
        let at = node.name_at as usize;
        self.names
            .get(at..at + (node.name_len & !SHARED_NAME) as usize)
            .unwrap_or_default()
    }

    #[inline]
    fn is_named(&self, quark: Quark, name: &str) -> bool {
        let node = &self.nodes[quark as usize];
        (node.name_len & !SHARED_NAME) as usize == name.len() && self.node_name(node) == name
    }

    fn find_child(&self, parent: Quark, name: &str) -> Option<Quark> {
        self.find_child_hashed(parent, name, &mut None)
    }

    /// As [`Self::find_child`]; `hash` receives the name's hash if it was computed.
    #[inline]
    fn find_child_hashed(
        &self,
        parent: Quark,
        name: &str,
        hash: &mut Option<u64>,
    ) -> Option<Quark> {
        let r = self.child_ref(parent)?;
        if r.len as usize <= SMALL_CHILDREN {
            self.list(r)
                .iter()
                .copied()
                .find(|&q| self.is_named(q, name))
        } else {
            let big = self.big.get(r.at as usize)?;
            let h = *hash.get_or_insert_with(|| name_hash(name.as_bytes()));
            big.index.find(h, |q| self.is_named(q, name))
        }
    }

    /// Appends `name` to `names`; returns its offset.
    fn append_name(&mut self, name: &str) -> Result<u32> {
        let at = self.names.len();
        let end = at + name.len().max(1);
        if u32::try_from(end).is_err() || name.len() as u32 >= SHARED_NAME {
            return Err(too_many("bytes of attribute names"));
        }
        self.names.push_str(name);
        Ok(at as u32)
    }

    /// Offset of the bytes of `name`, stored once for equal names that come back
    /// while their cache slot keeps them; `hash`: the name's, if known.
    fn intern_name(&mut self, name: &str, hash: Option<u64>) -> Result<u32> {
        if self.name_cache.is_empty() {
            self.name_cache = vec![(0, 0); NAME_CACHE];
        }
        let slot = hash.unwrap_or_else(|| quick_hash(name.as_bytes())) as usize & (NAME_CACHE - 1);
        let (at, len) = self.name_cache[slot];
        if len as usize == name.len() {
            let kept = self.names.get(at as usize..(at + len) as usize);
            if kept == Some(name) {
                return Ok(at);
            }
        }
        let at = self.append_name(name)?;
        self.name_cache[slot] = (at, name.len() as u32);
        Ok(at)
    }

    /// A free block of class `class` (`1 << class` quarks); returns its offset.
    fn alloc_block(&mut self, class: usize) -> Result<u32> {
        if let Some(at) = self.free_blocks[class].pop() {
            return Ok(at);
        }
        let at = self.blocks.len();
        let at32 = u32::try_from(at + (1 << class)).map_err(|_| too_many("child slots"))?;
        self.blocks.resize(at32 as usize, -1);
        Ok(at as u32)
    }

    /// Appends `quark` (its name's hash: `hash`) to the children of `parent`.
    fn push_child(&mut self, parent: Quark, quark: Quark, hash: Option<u64>) -> Result<()> {
        let r = self.child_ref(parent).unwrap_or_default();
        let len = r.len as usize;
        let at = r.at as usize;
        let new = if len == 0 {
            let at = self.alloc_block(0)?;
            self.blocks[at as usize] = quark;
            ChildRef { at, len: 1 }
        } else if len < SMALL_CHILDREN {
            let cap = len.next_power_of_two();
            if len < cap {
                self.blocks[at + len] = quark;
                ChildRef {
                    at: r.at,
                    len: r.len + 1,
                }
            } else {
                // Full: move to a block twice as large.
                let class = cap.trailing_zeros() as usize;
                let new_at = self.alloc_block(class + 1)?;
                let n = new_at as usize;
                self.blocks.copy_within(at..at + len, n);
                self.blocks[n + len] = quark;
                self.free_blocks[class].push(r.at);
                ChildRef {
                    at: new_at,
                    len: r.len + 1,
                }
            }
        } else if len == SMALL_CHILDREN {
            // Long from now on: a list of its own, and an index.
            let mut list = Vec::with_capacity(4 * SMALL_CHILDREN);
            list.extend_from_slice(&self.blocks[at..at + len]);
            list.push(quark);
            self.free_blocks[BLOCK_CLASSES - 1].push(r.at);
            let mut index = NameIndex::default();
            for &q in &list {
                let node = &self.nodes[q as usize];
                index.insert(name_hash(self.node_name(node).as_bytes()), q);
            }
            let big_at = u32::try_from(self.big.len()).map_err(|_| too_many("long lists"))?;
            self.big.push(BigList { list, index });
            ChildRef {
                at: big_at,
                len: r.len + 1,
            }
        } else {
            let big = &mut self.big[at];
            big.list.push(quark);
            let hash = hash.unwrap_or_else(|| {
                name_hash(self.node_name(&self.nodes[quark as usize]).as_bytes())
            });
            let big = &mut self.big[at];
            big.index.insert(hash, quark);
            ChildRef {
                at: r.at,
                len: r.len + 1,
            }
        };
        if parent == ROOT_QUARK {
            self.root_children = new;
        } else {
            self.nodes[parent as usize].children = new;
        }
        Ok(())
    }

    /// Creates the child `name` of `parent` (not there yet); `name_at`: the offset
    /// of a name already in `names` (a shared name object), else `name` is copied.
    /// `hash`: the name's, if known.
    fn add_child(
        &mut self,
        parent: Quark,
        name: &str,
        shared_at: Option<u32>,
        hash: Option<u64>,
    ) -> Result<Quark> {
        let quark = Quark::try_from(self.nodes.len())
            .map_err(|_| Error::Config("more than 2^31 attributes".into()))?;
        let (name_at, flag) = match shared_at {
            Some(at) => (at, SHARED_NAME),
            None => (self.intern_name(name, hash)?, 0),
        };
        self.nodes.push(AttributeNode {
            name_at,
            // Below 2^31: checked when stored.
            name_len: name.len() as u32 | flag,
            parent,
            children: ChildRef::default(),
        });
        if let Err(e) = self.push_child(parent, quark, hash) {
            // Not listed under its parent: no attribute at all (a quark is its index).
            self.nodes.pop();
            return Err(e);
        }
        Ok(quark)
    }

    /// Quark of `path` below `start` (or [`ROOT_QUARK`]), creating every missing
    /// attribute from the top down (Trace Compass `getQuarkRelativeAndAdd`).
    pub fn quark_and_add<S: AsRef<str>>(&mut self, start: Quark, path: &[S]) -> Result<Quark> {
        self.check(start)?;
        for element in path {
            validate_name(element.as_ref())?;
        }
        self.add_path_unchecked(start, path)
    }

    /// As [`Self::quark_and_add`] without name validation: for attribute trees read
    /// from files, whose names are whatever their writer accepted.
    pub(crate) fn add_path_unchecked<S: AsRef<str>>(
        &mut self,
        start: Quark,
        path: &[S],
    ) -> Result<Quark> {
        let mut current = start;
        for element in path {
            let name = element.as_ref();
            let mut hash = None;
            current = match self.find_child_hashed(current, name, &mut hash) {
                Some(q) => q,
                None => self.add_child(current, name, None, hash)?,
            };
        }
        Ok(current)
    }

    /// Quark of the child `name` of `parent`, created if missing with `name` itself
    /// as its name object. Trace Compass stores the `String` a provider passes, and
    /// its `.ht` writer back-references a string object written before: providers
    /// that name many attributes with one constant (`"Exec_name"`) pass one shared
    /// `Arc` here so the file gets the same back-references (see the writer).
    pub fn child_and_add_shared(&mut self, parent: Quark, name: &Arc<str>) -> Result<Quark> {
        self.check(parent)?;
        if let Some(q) = self.find_child(parent, name) {
            return Ok(q);
        }
        validate_name(name)?;
        let key = shared_key(name);
        let name_at = match self.shared.get(&key) {
            Some(&(at, _)) => at,
            None => {
                // Its own bytes (its offset is its identity), one at least.
                let at = self.append_name(name)?;
                if name.is_empty() {
                    self.names.push('\0');
                }
                self.shared.insert(key, (at, Arc::clone(name)));
                at
            }
        };
        self.add_child(parent, name, Some(name_at), None)
    }

    /// Quark of an absolute path, creating it if needed.
    pub fn quark_absolute_and_add<S: AsRef<str>>(&mut self, path: &[S]) -> Result<Quark> {
        self.quark_and_add(ROOT_QUARK, path)
    }

    /// Quark of `path` below `start`, or [`INVALID_QUARK`] (Trace Compass `optQuarkRelative`).
    pub fn opt_quark<S: AsRef<str>>(&self, start: Quark, path: &[S]) -> Quark {
        if self.check(start).is_err() {
            return INVALID_QUARK;
        }
        let mut current = start;
        for element in path {
            match self.find_child(current, element.as_ref()) {
                Some(q) => current = q,
                None => return INVALID_QUARK,
            }
        }
        current
    }

    /// Quark of `path` below `start`, or an error naming the path.
    pub fn quark<S: AsRef<str>>(&self, start: Quark, path: &[S]) -> Result<Quark> {
        match self.opt_quark(start, path) {
            INVALID_QUARK => Err(Error::AttributeNotFound(format_path(
                path.iter().map(|s| s.as_ref()),
            ))),
            q => Ok(q),
        }
    }

    /// Direct children (or all descendants, depth first in creation order) of `quark`.
    pub fn sub_attributes(&self, quark: Quark, recursive: bool) -> Result<Vec<Quark>> {
        self.check(quark)?;
        let mut out = Vec::new();
        self.collect_children(quark, recursive, &mut out);
        Ok(out)
    }

    fn collect_children(&self, quark: Quark, recursive: bool, out: &mut Vec<Quark>) {
        if let Some(r) = self.child_ref(quark) {
            for &child in self.list(r) {
                out.push(child);
                if recursive {
                    self.collect_children(child, true, out);
                }
            }
        }
    }

    /// Direct children of `quark` in creation order, without allocating.
    pub fn children_of(&self, quark: Quark) -> &[Quark] {
        self.child_ref(quark).map_or(&[], |r| self.list(r))
    }

    /// Parent quark ([`ROOT_QUARK`] for top-level attributes and for the root itself).
    pub fn parent(&self, quark: Quark) -> Result<Quark> {
        self.check(quark)?;
        Ok(if quark == ROOT_QUARK {
            ROOT_QUARK
        } else {
            self.nodes[quark as usize].parent
        })
    }

    /// The attribute's own name (empty for the root).
    pub fn name(&self, quark: Quark) -> Result<&str> {
        self.check(quark)?;
        Ok(if quark == ROOT_QUARK {
            ""
        } else {
            self.node_name(&self.nodes[quark as usize])
        })
    }

    /// The name of an existing attribute, and the identity of its name object in
    /// the `.ht` attribute section (equal only for attributes created with one
    /// shared name, see [`Self::child_and_add_shared`]).
    pub(crate) fn name_and_id(&self, quark: Quark) -> (&str, u64) {
        let node = &self.nodes[quark as usize];
        let id = if node.name_len & SHARED_NAME != 0 {
            (1 << 32) | u64::from(node.name_at)
        } else {
            quark as u64
        };
        (self.node_name(node), id)
    }

    /// Names from the top-level attribute down to `quark`.
    pub fn path(&self, quark: Quark) -> Result<Vec<&str>> {
        self.check(quark)?;
        let mut path = Vec::new();
        let mut q = quark;
        while q != ROOT_QUARK {
            let node = &self.nodes[q as usize];
            path.push(self.node_name(node));
            q = node.parent;
        }
        path.reverse();
        Ok(path)
    }

    /// Quarks of the full path of `quark`, top-level attribute first.
    pub(crate) fn path_quarks(&self, quark: Quark, out: &mut Vec<Quark>) {
        out.clear();
        let mut q = quark;
        while q != ROOT_QUARK {
            out.push(q);
            q = self.nodes[q as usize].parent;
        }
        out.reverse();
    }

    /// Path pattern look-up (Trace Compass `getQuarks`): `*` matches every child,
    /// `..` goes to the parent, other elements are names. Results are unique, in
    /// discovery order. An empty pattern returns `start` itself.
    pub fn quarks<S: AsRef<str>>(&self, start: Quark, pattern: &[S]) -> Result<Vec<Quark>> {
        self.check(start)?;
        let mut out = Vec::new();
        if pattern.is_empty() {
            out.push(start);
        } else {
            self.match_pattern(start, pattern, &mut out);
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|q| seen.insert(*q));
        Ok(out)
    }

    fn match_pattern<S: AsRef<str>>(&self, quark: Quark, pattern: &[S], out: &mut Vec<Quark>) {
        let element = pattern[0].as_ref();
        let rest = &pattern[1..];
        let next = |q: Quark, out: &mut Vec<Quark>| {
            if rest.is_empty() {
                out.push(q);
            } else {
                self.match_pattern(q, rest, out);
            }
        };
        match element {
            WILDCARD => {
                for &child in self.children_of(quark) {
                    next(child, out);
                }
            }
            PARENT => {
                let parent = if quark == ROOT_QUARK {
                    ROOT_QUARK
                } else {
                    self.nodes[quark as usize].parent
                };
                next(parent, out);
            }
            name => {
                if let Some(child) = self.find_child(quark, name) {
                    next(child, out);
                }
            }
        }
    }
}

/// Names that cannot be stored faithfully in a `.ht` attribute section.
fn validate_name(name: &str) -> Result<()> {
    if name == WILDCARD {
        // The file format uses "*" for "same as the previous path's element".
        return Err(Error::InvalidAttributeName {
            name: name.into(),
            why: "\"*\" is reserved (path compression and query wildcard)",
        });
    }
    Ok(())
}

/// A path as a JSON array of strings without spaces, e.g. `["CPUs","0","Status"]`.
pub fn format_path<'a>(path: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = path.into_iter().collect();
    serde_json::to_string(&names).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarks_are_dense_and_parents_come_first() {
        let mut t = AttributeTree::new();
        assert_eq!(
            t.quark_absolute_and_add(&["CPUs", "0", "Status"]).unwrap(),
            2
        );
        assert_eq!(t.quark_absolute_and_add(&["Threads"]).unwrap(), 3);
        assert_eq!(t.quark_absolute_and_add(&["CPUs", "0"]).unwrap(), 1);
        assert_eq!(t.path(2).unwrap(), ["CPUs", "0", "Status"]);
        assert_eq!(t.opt_quark(ROOT_QUARK, &["CPUs", "1"]), INVALID_QUARK);
        assert_eq!(t.quark(0, &["0", "Status"]).unwrap(), 2);
        assert!(t.quark(0, &["nope"]).is_err());
        assert_eq!(t.parent(0).unwrap(), ROOT_QUARK);
    }

    #[test]
    fn many_children_use_the_index() {
        let mut t = AttributeTree::new();
        for i in 0..100 {
            assert_eq!(
                t.quark_absolute_and_add(&["T", &i.to_string()]).unwrap(),
                i + 1
            );
        }
        for i in 0..100 {
            assert_eq!(t.opt_quark(0, &[i.to_string()]), i + 1);
        }
        assert_eq!(t.sub_attributes(0, false).unwrap().len(), 100);
    }

    #[test]
    fn patterns_follow_get_quarks() {
        let mut t = AttributeTree::new();
        for cpu in ["0", "1"] {
            t.quark_absolute_and_add(&["CPUs", cpu, "Status"]).unwrap();
            t.quark_absolute_and_add(&["CPUs", cpu, "Current_thread"])
                .unwrap();
        }
        let status = t.quarks(ROOT_QUARK, &["CPUs", "*", "Status"]).unwrap();
        assert_eq!(status, vec![2, 5]);
        let back = t
            .quarks(ROOT_QUARK, &["CPUs", "*", "Status", "..", ".."])
            .unwrap();
        assert_eq!(back, vec![0]);
        assert_eq!(t.quarks(3, &[] as &[&str]).unwrap(), vec![3]);
        assert!(t.quarks(ROOT_QUARK, &["nope", "*"]).unwrap().is_empty());
        assert_eq!(t.sub_attributes(0, true).unwrap(), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn child_lists_keep_creation_order_past_the_inline_ones() {
        let mut t = AttributeTree::new();
        let parent = t.quark_absolute_and_add(&["P"]).unwrap();
        let names: Vec<String> = (0..3 * SMALL_CHILDREN + 2)
            .map(|i| format!("c{i}"))
            .collect();
        let mut expected = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let q = (i + 1) as Quark;
            assert_eq!(t.quark_and_add(parent, &[name]).unwrap(), q);
            expected.push(q);
            assert_eq!(t.children_of(parent), &expected[..]);
        }
        for (name, &q) in names.iter().zip(&expected) {
            assert_eq!(t.opt_quark(parent, &[name]), q);
        }
    }

    /// Child lists of many parents growing in turns (blocks move, are freed and
    /// taken by other lists, long ones get an index) against a plain model.
    #[test]
    fn interleaved_child_lists_match_a_plain_model() {
        let mut t = AttributeTree::new();
        let parents: Vec<Quark> = (0..7)
            .map(|p| t.quark_absolute_and_add(&[format!("p{p}")]).unwrap())
            .collect();
        let mut model: Vec<Vec<(String, Quark)>> = vec![Vec::new(); parents.len()];
        let mut x = 12345u32;
        for step in 0..1500 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let p = (x >> 16) as usize % parents.len();
            // Parent p gets up to 20 * (p + 1) children; some names repeat.
            let name = format!("n{}", (x >> 8) % (20 * (p as u32 + 1)));
            let q = t.quark_and_add(parents[p], &[&name]).unwrap();
            match model[p].iter().find(|(n, _)| *n == name) {
                Some(&(_, known)) => assert_eq!(q, known, "step {step}"),
                None => {
                    assert_eq!(q as usize, t.len() - 1, "step {step}: a new quark");
                    model[p].push((name, q));
                }
            }
        }
        for (p, children) in model.iter().enumerate() {
            let quarks: Vec<Quark> = children.iter().map(|&(_, q)| q).collect();
            assert_eq!(t.children_of(parents[p]), &quarks[..]);
            for (name, q) in children {
                assert_eq!(t.opt_quark(parents[p], &[name]), *q);
                assert_eq!(t.name(*q).unwrap(), name);
                assert_eq!(t.parent(*q).unwrap(), parents[p]);
            }
            assert_eq!(t.opt_quark(parents[p], &["absent"]), INVALID_QUARK);
        }
        assert_eq!(t.children_of(ROOT_QUARK), &parents[..]);
    }

    /// A name shared by several attributes keeps one identity; equal names added
    /// apart, and empty names, get their own.
    #[test]
    fn name_identities() {
        let mut t = AttributeTree::new();
        let shared: Arc<str> = "Exec_name".into();
        let a = t.quark_absolute_and_add(&["a"]).unwrap();
        let b = t.quark_absolute_and_add(&["b"]).unwrap();
        let sa = t.child_and_add_shared(a, &shared).unwrap();
        let sb = t.child_and_add_shared(b, &shared).unwrap();
        let other: Arc<str> = "Exec_name".into();
        let c = t.quark_absolute_and_add(&["c"]).unwrap();
        let so = t.child_and_add_shared(c, &other).unwrap();
        let plain = t.quark_and_add(a, &["Exec_name2"]).unwrap();
        let e1 = t.quark_and_add(b, &[""]).unwrap();
        let e2 = t.quark_and_add(c, &[""]).unwrap();
        let after = t.quark_and_add(c, &["x"]).unwrap();
        assert_eq!(t.name_and_id(sa), t.name_and_id(sb));
        assert_ne!(t.name_and_id(sa).1, t.name_and_id(so).1);
        assert_eq!(t.name_and_id(so).0, "Exec_name");
        assert_eq!(t.name(plain).unwrap(), "Exec_name2");
        let ids: Vec<u64> = [e1, e2, after, a, b, c]
            .iter()
            .map(|&q| t.name_and_id(q).1)
            .collect();
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        assert_eq!(t.path(e2).unwrap(), ["c", ""]);
        assert_eq!(t.path(after).unwrap(), ["c", "x"]);
        // Equal plain names: their bytes stored once, each its own object.
        let before = t.names.len();
        let pa = t.quark_and_add(a, &["Prio"]).unwrap();
        let pb = t.quark_and_add(b, &["Prio"]).unwrap();
        assert_eq!(t.names.len(), before + "Prio".len());
        assert_ne!(t.name_and_id(pa).1, t.name_and_id(pb).1);
        assert_eq!(t.name(pb).unwrap(), "Prio");
        // A shared name's bytes are its own even when equal to a plain name's.
        let prio: Arc<str> = "Prio".into();
        let sc = t.child_and_add_shared(c, &prio).unwrap();
        assert_ne!(t.name_and_id(sc).1, t.name_and_id(pa).1);
        assert_eq!(t.name(sc).unwrap(), "Prio");
    }

    #[test]
    fn name_hash_separates_lengths_and_tails() {
        use std::hash::{Hash, Hasher};
        let hash = |s: &str| {
            let mut h = NameHasher::default();
            s.hash(&mut h);
            h.finish()
        };
        let names = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "abcdefgh",
            "abcdefghi",
            "ba",
        ];
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                assert_ne!(hash(a), hash(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn wildcard_names_are_refused() {
        let mut t = AttributeTree::new();
        assert!(t.quark_absolute_and_add(&["a", "*"]).is_err());
    }
}
