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

/// Children lists longer than this get a hash index; shorter ones are scanned.
const CHILD_INDEX_THRESHOLD: usize = 8;

/// Hashes names 8 bytes at a time with a folded 64x64->128 multiply (each step
/// mixes into both halves, so hashbrown's low index bits and high tag bits both
/// depend on every byte). Names are short and these maps are built on every
/// file open and on every new attribute: SipHash's DoS resistance buys nothing.
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

type NameMap = HashMap<Arc<str>, Quark, std::hash::BuildHasherDefault<NameHasher>>;

/// How many child quarks a node keeps without an allocation.
const INLINE_CHILDREN: usize = 4;

/// Child quarks in creation order. Most attributes have no or few children
/// (`Requests/<id>/{Ops,VM}`): the first ones are kept inline, so creating
/// them allocates nothing more than the name.
#[derive(Debug, Clone)]
enum ChildList {
    Inline(u8, [Quark; INLINE_CHILDREN]),
    Heap(Vec<Quark>),
}

impl Default for ChildList {
    fn default() -> Self {
        ChildList::Inline(0, [0; INLINE_CHILDREN])
    }
}

impl ChildList {
    #[inline]
    fn as_slice(&self) -> &[Quark] {
        match self {
            ChildList::Inline(len, items) => &items[..*len as usize],
            ChildList::Heap(v) => v,
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn push(&mut self, quark: Quark) {
        match self {
            ChildList::Inline(len, items) if (*len as usize) < INLINE_CHILDREN => {
                items[*len as usize] = quark;
                *len += 1;
            }
            ChildList::Inline(_, items) => {
                let mut v = Vec::with_capacity(2 * INLINE_CHILDREN);
                v.extend_from_slice(items);
                v.push(quark);
                *self = ChildList::Heap(v);
            }
            ChildList::Heap(v) => v.push(quark),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Children {
    /// In creation order (used by removal and sub-attribute listings).
    list: ChildList,
    /// Boxed: most attributes never get one, and a smaller node keeps the node
    /// array (touched on every look-up) denser in cache.
    index: Option<Box<NameMap>>,
}

#[derive(Debug, Clone)]
struct AttributeNode {
    name: Arc<str>,
    parent: Quark,
    children: Children,
}

/// Attributes are created on demand by path and never deleted. Quarks are assigned
/// 0, 1, 2, ... in creation order, so a parent's quark is smaller than its children's.
#[derive(Debug, Clone, Default)]
pub struct AttributeTree {
    nodes: Vec<AttributeNode>,
    root_children: Children,
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

    fn children(&self, quark: Quark) -> Option<&Children> {
        if quark == ROOT_QUARK {
            Some(&self.root_children)
        } else {
            self.nodes
                .get(usize::try_from(quark).ok()?)
                .map(|n| &n.children)
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

    fn children_mut(&mut self, quark: Quark) -> &mut Children {
        if quark == ROOT_QUARK {
            &mut self.root_children
        } else {
            &mut self.nodes[quark as usize].children
        }
    }

    fn find_child(&self, parent: Quark, name: &str) -> Option<Quark> {
        let children = self.children(parent)?;
        match &children.index {
            Some(index) => index.get(name).copied(),
            None => children
                .list
                .as_slice()
                .iter()
                .copied()
                .find(|&q| &*self.nodes[q as usize].name == name),
        }
    }

    fn add_child(&mut self, parent: Quark, name: &str) -> Result<Quark> {
        self.add_child_arc(parent, Arc::from(name))
    }

    fn add_child_arc(&mut self, parent: Quark, name: Arc<str>) -> Result<Quark> {
        let quark = Quark::try_from(self.nodes.len())
            .map_err(|_| Error::Config("more than 2^31 attributes".into()))?;
        self.nodes.push(AttributeNode {
            name: name.clone(),
            parent,
            children: Children::default(),
        });
        let needs_index = {
            let children = self.children_mut(parent);
            children.list.push(quark);
            match &mut children.index {
                Some(index) => {
                    index.insert(name, quark);
                    false
                }
                None => children.list.len() > CHILD_INDEX_THRESHOLD,
            }
        };
        if needs_index {
            let index = self
                .children_of(parent)
                .iter()
                .map(|&q| (self.nodes[q as usize].name.clone(), q))
                .collect();
            self.children_mut(parent).index = Some(Box::new(index));
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
            current = match self.find_child(current, name) {
                Some(q) => q,
                None => self.add_child(current, name)?,
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
        self.add_child_arc(parent, Arc::clone(name))
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
        if let Some(children) = self.children(quark) {
            for &child in children.list.as_slice() {
                out.push(child);
                if recursive {
                    self.collect_children(child, true, out);
                }
            }
        }
    }

    /// Direct children of `quark` in creation order, without allocating.
    pub fn children_of(&self, quark: Quark) -> &[Quark] {
        self.children(quark).map_or(&[], |c| c.list.as_slice())
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
            &self.nodes[quark as usize].name
        })
    }

    pub(crate) fn name_arc(&self, quark: Quark) -> &Arc<str> {
        &self.nodes[quark as usize].name
    }

    /// Names from the top-level attribute down to `quark`.
    pub fn path(&self, quark: Quark) -> Result<Vec<&str>> {
        self.check(quark)?;
        let mut path = Vec::new();
        let mut q = quark;
        while q != ROOT_QUARK {
            let node = &self.nodes[q as usize];
            path.push(&*node.name);
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
        let names: Vec<String> = (0..INLINE_CHILDREN + CHILD_INDEX_THRESHOLD + 2)
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
