//! History-tree nodes: the in-memory form shared by the writer and the reader, and
//! their exact byte encoding (see `format` for the offsets).

use std::path::Path;
use std::sync::Arc;

use super::format::{self, get_varint, interval as iv, node as nf, put_varint, varint_len};
use crate::error::{Error, Result};
use crate::value::{CustomValue, Interval, StateValue};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Core,
    Leaf,
}

/// A core node's record of one child: its time range and the quark range of the
/// child and all its descendants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildEntry {
    pub seq: i32,
    pub start: i64,
    pub end: i64,
    pub min_quark: i32,
    pub max_quark: i32,
}

impl ChildEntry {
    /// Entry as written when a child is linked: its end and quark range are only
    /// known once the child is closed.
    pub(crate) fn linked(seq: i32, start: i64) -> Self {
        ChildEntry {
            seq,
            start,
            end: nf::UNUSED_CHILD_END,
            min_quark: nf::UNUSED_CHILD_MIN,
            max_quark: nf::UNUSED_CHILD_MAX,
        }
    }
}

/// One node of the tree.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    pub seq: i32,
    pub parent_seq: i32,
    pub start: i64,
    pub end: i64,
    /// Quark range of this node's own intervals.
    pub min_quark: i32,
    pub max_quark: i32,
    /// Sorted by (end, start, quark), the on-disk order.
    pub intervals: Vec<Interval>,
    /// Core nodes only, in link order.
    pub children: Vec<ChildEntry>,
}

impl Node {
    #[cfg(test)]
    pub(crate) fn new(kind: NodeKind, seq: i32, parent_seq: i32, start: i64) -> Self {
        Node {
            kind,
            seq,
            parent_seq,
            start,
            end: start,
            min_quark: nf::EMPTY_MIN_QUARK,
            max_quark: nf::EMPTY_MAX_QUARK,
            intervals: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Quark range of this node and all its descendants (what the parent records).
    pub fn subtree_quark_range(&self) -> (i32, i32) {
        self.children
            .iter()
            .fold((self.min_quark, self.max_quark), |(lo, hi), c| {
                (lo.min(c.min_quark), hi.max(c.max_quark))
            })
    }

    /// Index of the first interval whose end is `>= t` (intervals are sorted by end).
    #[inline]
    pub fn first_ending_at_or_after(&self, t: i64) -> usize {
        self.intervals.partition_point(|i| i.end < t)
    }

    /// Adds an interval in (end, start, quark) order.
    #[cfg(test)]
    pub(crate) fn add_sorted(&mut self, interval: Interval) {
        let key = (interval.end, interval.start, interval.quark);
        let before = |l: &Interval| (l.end, l.start, l.quark) <= key;
        // Intervals arrive nearly in end order: one that does not fit at the end
        // usually belongs a few places back, so step back before searching.
        let mut pos = self.intervals.len();
        for _ in 0..8 {
            match self.intervals[..pos].last() {
                Some(l) if !before(l) => pos -= 1,
                _ => {
                    self.intervals.insert(pos, interval);
                    return;
                }
            }
        }
        pos = self.intervals[..pos].partition_point(before);
        self.intervals.insert(pos, interval);
    }
}

/// Size of a value's payload on disk (after the type byte).
#[inline]
pub fn payload_size(value: &StateValue) -> usize {
    match value {
        StateValue::Null => 0,
        StateValue::Int(_) => 4,
        StateValue::Long(_) | StateValue::Double(_) => 8,
        StateValue::String(s) => s.len() + 3,
        StateValue::Custom(c) => c.bytes.len() + 3,
    }
}

/// Size of `interval` when stored in a node starting at `node_start`.
#[inline]
pub fn interval_size(interval: &Interval, node_start: i64) -> usize {
    varint_len(interval.start.wrapping_sub(node_start))
        + varint_len(interval.end.wrapping_sub(interval.start))
        + iv::FIXED_SIZE
        + payload_size(&interval.value)
}

/// Size of the varint child start/end arrays of a core node.
pub fn child_times_size(children: &[ChildEntry], max_children: usize) -> usize {
    let used: usize = children
        .iter()
        .map(|c| varint_len(c.start) + varint_len(c.end))
        .sum();
    let unused = max_children.saturating_sub(children.len())
        * (varint_len(nf::UNUSED_CHILD_START) + varint_len(nf::UNUSED_CHILD_END));
    used + unused
}

/// Header size of a node with the given children.
pub fn header_size(kind: NodeKind, children: &[ChildEntry], max_children: usize) -> usize {
    match kind {
        NodeKind::Leaf => nf::COMMON_HEADER_SIZE,
        NodeKind::Core => {
            format::core_fixed_header_size(max_children) + child_times_size(children, max_children)
        }
    }
}

fn put_value(out: &mut Vec<u8>, value: &StateValue) {
    match value {
        StateValue::Null => out.push(iv::TYPE_NULL as u8),
        StateValue::Int(v) => {
            out.push(iv::TYPE_INT as u8);
            out.extend_from_slice(&v.to_le_bytes());
        }
        StateValue::Long(v) => {
            out.push(iv::TYPE_LONG as u8);
            out.extend_from_slice(&v.to_le_bytes());
        }
        StateValue::Double(v) => {
            out.push(iv::TYPE_DOUBLE as u8);
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        StateValue::String(s) => {
            out.push(iv::TYPE_STRING as u8);
            // Length checked when the value entered the state system.
            out.extend_from_slice(&(s.len() as i16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        StateValue::Custom(c) => {
            out.push(iv::TYPE_CUSTOM as u8);
            out.extend_from_slice(&((c.bytes.len() + 1) as i16).to_le_bytes());
            out.push(c.type_id as u8);
            out.extend_from_slice(&c.bytes);
        }
    }
}

/// Encodes `node` into exactly `block_size` bytes (appended to `out`).
pub fn encode(node: &Node, block_size: usize, max_children: usize, out: &mut Vec<u8>) {
    let base = out.len();
    out.push(match node.kind {
        NodeKind::Core => nf::TYPE_CORE,
        NodeKind::Leaf => nf::TYPE_LEAF,
    });
    out.extend_from_slice(&node.start.to_le_bytes());
    out.extend_from_slice(&node.end.to_le_bytes());
    out.extend_from_slice(&node.min_quark.to_le_bytes());
    out.extend_from_slice(&node.max_quark.to_le_bytes());
    out.extend_from_slice(&node.seq.to_le_bytes());
    out.extend_from_slice(&node.parent_seq.to_le_bytes());
    out.extend_from_slice(&(node.intervals.len() as i32).to_le_bytes());
    if node.kind == NodeKind::Core {
        let c = &node.children;
        let unused = max_children - c.len();
        out.extend_from_slice(&(c.len() as i32).to_le_bytes());
        for e in c {
            out.extend_from_slice(&e.seq.to_le_bytes());
        }
        for _ in 0..unused {
            out.extend_from_slice(&nf::UNUSED_CHILD_SEQ.to_le_bytes());
        }
        for e in c {
            put_varint(out, e.start);
        }
        for _ in 0..unused {
            put_varint(out, nf::UNUSED_CHILD_START);
        }
        for e in c {
            put_varint(out, e.end);
        }
        for _ in 0..unused {
            put_varint(out, nf::UNUSED_CHILD_END);
        }
        for e in c {
            out.extend_from_slice(&e.min_quark.to_le_bytes());
        }
        for _ in 0..unused {
            out.extend_from_slice(&nf::UNUSED_CHILD_MIN.to_le_bytes());
        }
        for e in c {
            out.extend_from_slice(&e.max_quark.to_le_bytes());
        }
        for _ in 0..unused {
            out.extend_from_slice(&nf::UNUSED_CHILD_MAX.to_le_bytes());
        }
    }
    for i in &node.intervals {
        put_varint(out, i.start.wrapping_sub(node.start));
        put_varint(out, i.end.wrapping_sub(i.start));
        out.extend_from_slice(&i.quark.to_le_bytes());
        put_value(out, &i.value);
    }
    debug_assert!(out.len() - base <= block_size, "node overflows its block");
    out.resize(base + block_size, 0);
}

/// Little-endian cursor over one node's bytes that reports errors with the file offset.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn err(&self, what: impl Into<String>) -> Error {
        Error::corrupt(self.path, self.base + self.pos as u64, what)
    }

    fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err(format!("{what} runs past the end of the node"))),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.bytes(1, what)?[0])
    }

    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.bytes(4, what)?.try_into().unwrap()))
    }

    fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.bytes(8, what)?.try_into().unwrap()))
    }

    fn varint(&mut self, what: &str) -> Result<i64> {
        get_varint(self.buf, &mut self.pos)
            .ok_or_else(|| self.err(format!("invalid varint ({what})")))
    }
}

/// The fixed part of a node header, readable without decoding the intervals.
#[derive(Clone, Copy, Debug)]
pub struct NodeHeader {
    pub kind: NodeKind,
    pub start: i64,
    pub end: i64,
    pub min_quark: i32,
    pub max_quark: i32,
    pub seq: i32,
    pub parent_seq: i32,
    pub interval_count: i32,
}

fn decode_header(c: &mut Cursor<'_>) -> Result<NodeHeader> {
    let kind = match c.u8("node type")? {
        nf::TYPE_CORE => NodeKind::Core,
        nf::TYPE_LEAF => NodeKind::Leaf,
        other => {
            c.pos -= 1;
            return Err(c.err(format!("unknown node type {other} (expected 1 or 2)")));
        }
    };
    Ok(NodeHeader {
        kind,
        start: c.i64("node start")?,
        end: c.i64("node end")?,
        min_quark: c.i32("min quark")?,
        max_quark: c.i32("max quark")?,
        seq: c.i32("sequence number")?,
        parent_seq: c.i32("parent sequence number")?,
        interval_count: c.i32("interval count")?,
    })
}

/// A value as stored, borrowing string and custom bytes from the block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Int(i32),
    Long(i64),
    Double(f64),
    /// UTF-8 bytes (Trace Compass decodes invalid sequences with replacement).
    Str(&'a [u8]),
    Custom(i8, &'a [u8]),
}

impl ValueRef<'_> {
    /// The owned value.
    pub fn to_value(&self) -> StateValue {
        match *self {
            ValueRef::Null => StateValue::Null,
            ValueRef::Int(v) => StateValue::Int(v),
            ValueRef::Long(v) => StateValue::Long(v),
            ValueRef::Double(v) => StateValue::Double(v),
            ValueRef::Str(b) => StateValue::String(Arc::from(String::from_utf8_lossy(b))),
            ValueRef::Custom(type_id, b) => StateValue::Custom(CustomValue {
                type_id,
                bytes: Arc::from(b),
            }),
        }
    }
}

/// One interval as stored in a block, without allocation.
#[derive(Clone, Copy, Debug)]
pub struct RawInterval<'a> {
    pub start: i64,
    pub end: i64,
    pub quark: i32,
    pub value: ValueRef<'a>,
    /// Offset of the value's type byte in the block.
    pub value_at: usize,
}

/// Reads a varint at `pos` in `buf`, with an 8-byte load when the block has room.
#[inline(always)]
fn fast_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let p = *pos;
    let n = *buf.get(p)? as usize;
    if n > 8 {
        return None;
    }
    let raw = if let Some(word) = buf.get(p + 1..p + 9) {
        let w = u64::from_le_bytes(word.try_into().unwrap());
        if n == 8 {
            w
        } else {
            w & ((1u64 << (8 * n)) - 1)
        }
    } else {
        let bytes = buf.get(p + 1..p + 1 + n)?;
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(bytes);
        u64::from_le_bytes(b)
    };
    *pos = p + 1 + n;
    Some((raw as i64).wrapping_sub(3))
}

#[inline(always)]
fn read_array<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at + N).map(|b| b.try_into().unwrap())
}

/// Reads one value at `pos` (its type byte), advancing `pos`.
#[inline(always)]
fn read_value<'a>(
    buf: &'a [u8],
    pos: &mut usize,
) -> std::result::Result<ValueRef<'a>, &'static str> {
    let p = *pos;
    let t = *buf
        .get(p)
        .ok_or("value type runs past the end of the node")? as i8;
    let (v, next) = match t {
        iv::TYPE_NULL => (ValueRef::Null, p + 1),
        iv::TYPE_INT => (
            ValueRef::Int(i32::from_le_bytes(
                read_array(buf, p + 1).ok_or("int value runs past the end of the node")?,
            )),
            p + 5,
        ),
        iv::TYPE_LONG => (
            ValueRef::Long(i64::from_le_bytes(
                read_array(buf, p + 1).ok_or("long value runs past the end of the node")?,
            )),
            p + 9,
        ),
        iv::TYPE_DOUBLE => (
            ValueRef::Double(f64::from_bits(u64::from_le_bytes(
                read_array(buf, p + 1).ok_or("double value runs past the end of the node")?,
            ))),
            p + 9,
        ),
        iv::TYPE_STRING => {
            let len = i16::from_le_bytes(
                read_array(buf, p + 1).ok_or("string length runs past the end of the node")?,
            );
            if len < 0 {
                return Err("negative string length");
            }
            let s = p + 3;
            let e = s + len as usize;
            let bytes = buf
                .get(s..e)
                .ok_or("string runs past the end of the node")?;
            match buf.get(e) {
                Some(0) => {}
                Some(_) => return Err("string is not followed by its 0 terminator"),
                None => return Err("string terminator runs past the end of the node"),
            }
            (ValueRef::Str(bytes), e + 1)
        }
        iv::TYPE_CUSTOM => {
            let size = i16::from_le_bytes(
                read_array(buf, p + 1).ok_or("custom value size runs past the end of the node")?,
            );
            if size < 1 {
                return Err("invalid custom value size");
            }
            let id = *buf
                .get(p + 3)
                .ok_or("custom type id runs past the end of the node")? as i8;
            let e = p + 4 + (size as usize - 1);
            let bytes = buf
                .get(p + 4..e)
                .ok_or("custom value runs past the end of the node")?;
            (ValueRef::Custom(id, bytes), e)
        }
        _ => return Err("unknown value type"),
    };
    *pos = next;
    Ok(v)
}

/// The owned value whose type byte is at `at` of a block that was already decoded
/// (so the bytes are known valid; a bad offset yields null rather than a panic).
#[inline]
pub fn value_at(buf: &[u8], at: usize) -> StateValue {
    let word = |n: usize| buf.get(at + 1..at + 1 + n);
    match buf.get(at).map(|&t| t as i8) {
        Some(iv::TYPE_INT) => word(4).map_or(StateValue::Null, |b| {
            StateValue::Int(i32::from_le_bytes(b.try_into().unwrap()))
        }),
        Some(iv::TYPE_LONG) => word(8).map_or(StateValue::Null, |b| {
            StateValue::Long(i64::from_le_bytes(b.try_into().unwrap()))
        }),
        Some(iv::TYPE_DOUBLE) => word(8).map_or(StateValue::Null, |b| {
            StateValue::Double(f64::from_bits(u64::from_le_bytes(b.try_into().unwrap())))
        }),
        Some(iv::TYPE_NULL) | None => StateValue::Null,
        Some(_) => {
            let mut pos = at;
            read_value(buf, &mut pos).map_or(StateValue::Null, |v| v.to_value())
        }
    }
}

/// Where a node's intervals start, with its header and child entries.
pub struct Layout {
    pub header: NodeHeader,
    pub children: Vec<ChildEntry>,
    pub intervals_at: usize,
}

/// Decodes a node's header and child entries.
pub fn decode_layout(
    buf: &[u8],
    max_children: usize,
    path: &Path,
    file_offset: u64,
) -> Result<Layout> {
    let mut c = Cursor {
        buf,
        pos: 0,
        base: file_offset,
        path,
    };
    let h = decode_header(&mut c)?;
    let mut children = Vec::new();
    if h.kind == NodeKind::Core {
        let nb = c.i32("child count")?;
        if nb < 0 || nb as usize > max_children {
            c.pos -= 4;
            return Err(c.err(format!("child count {nb} outside 0..={max_children}")));
        }
        let nb = nb as usize;
        let mut seqs = Vec::with_capacity(nb);
        for i in 0..max_children {
            let s = c.i32("child sequence number")?;
            if i < nb {
                seqs.push(s);
            }
        }
        let mut starts = Vec::with_capacity(nb);
        for i in 0..max_children {
            let s = c.varint("child start")?;
            if i < nb {
                starts.push(s);
            }
        }
        let mut ends = Vec::with_capacity(nb);
        for i in 0..max_children {
            let e = c.varint("child end")?;
            if i < nb {
                ends.push(e);
            }
        }
        let mut mins = Vec::with_capacity(nb);
        for i in 0..max_children {
            let m = c.i32("child min quark")?;
            if i < nb {
                mins.push(m);
            }
        }
        for i in 0..max_children {
            let m = c.i32("child max quark")?;
            if i < nb {
                children.push(ChildEntry {
                    seq: seqs[i],
                    start: starts[i],
                    end: ends[i],
                    min_quark: mins[i],
                    max_quark: m,
                });
            }
        }
    }
    // Every interval takes at least 7 bytes: check the count before anyone allocates.
    let count = h.interval_count;
    if count < 0 || count as usize > (buf.len() - c.pos) / 7 {
        return Err(Error::corrupt(
            path,
            file_offset + nf::INTERVAL_COUNT as u64,
            format!("interval count {count} cannot fit in the node"),
        ));
    }
    Ok(Layout {
        header: h,
        children,
        intervals_at: c.pos,
    })
}

/// Calls `f` for each of the node's intervals, in stored order, without allocating.
pub fn for_each_interval<'a>(
    buf: &'a [u8],
    layout: &Layout,
    path: &Path,
    file_offset: u64,
    mut f: impl FnMut(RawInterval<'a>),
) -> Result<()> {
    let node_start = layout.header.start;
    let mut pos = layout.intervals_at;
    for _ in 0..layout.header.interval_count {
        let at = pos;
        let fail = |what: &str, pos: usize| {
            Error::corrupt(
                path,
                file_offset + pos as u64,
                format!("invalid interval data: {what}"),
            )
        };
        let start = node_start
            .wrapping_add(fast_varint(buf, &mut pos).ok_or_else(|| fail("bad start varint", at))?);
        let end = start.wrapping_add(
            fast_varint(buf, &mut pos).ok_or_else(|| fail("bad duration varint", at))?,
        );
        let quark = i32::from_le_bytes(
            read_array(buf, pos).ok_or_else(|| fail("quark runs past the end of the node", pos))?,
        );
        pos += 4;
        let value_at = pos;
        let value = read_value(buf, &mut pos).map_err(|what| fail(what, value_at))?;
        f(RawInterval {
            start,
            end,
            quark,
            value,
            value_at,
        });
    }
    Ok(())
}

/// Decodes a whole node from its block. `file_offset` is the block's offset in
/// `path`, used in error messages.
pub fn decode(buf: &[u8], max_children: usize, path: &Path, file_offset: u64) -> Result<Node> {
    let layout = decode_layout(buf, max_children, path, file_offset)?;
    let mut intervals = Vec::with_capacity(layout.header.interval_count as usize);
    for_each_interval(buf, &layout, path, file_offset, |r| {
        intervals.push(Interval {
            start: r.start,
            end: r.end,
            quark: r.quark,
            value: r.value.to_value(),
        })
    })?;
    let h = layout.header;
    Ok(Node {
        kind: h.kind,
        seq: h.seq,
        parent_seq: h.parent_seq,
        start: h.start,
        end: h.end,
        min_quark: h.min_quark,
        max_quark: h.max_quark,
        intervals,
        children: layout.children,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_round_trip_and_golden_bytes() {
        // Golden 02-one-attribute, node 0 (spec section 4.4).
        let mut n = Node::new(NodeKind::Leaf, 0, -1, 0);
        for (s, e, v) in [
            (0, 99, StateValue::Null),
            (100, 299, StateValue::Int(1)),
            (300, 399, StateValue::Int(2)),
            (400, 499, StateValue::Null),
            (500, 1000, StateValue::Int(3)),
        ] {
            n.add_sorted(Interval::new(s, e, 0, v));
        }
        n.end = 1000;
        n.min_quark = 0;
        n.max_quark = 0;
        let mut out = Vec::new();
        encode(&n, 4096, 3, &mut out);
        assert_eq!(out.len(), 4096);
        assert_eq!(&out[37..46], &[0x01, 0x03, 0x01, 0x66, 0, 0, 0, 0, 0xff]);
        assert!(out[98..].iter().all(|&b| b == 0));
        let back = decode(&out, 3, Path::new("x"), 0).unwrap();
        assert_eq!(back.intervals, n.intervals);
        assert_eq!(back.end, 1000);
    }

    #[test]
    fn corrupt_nodes_are_errors() {
        let n = Node::new(NodeKind::Core, 0, -1, 0);
        let mut out = Vec::new();
        encode(&n, 4096, 3, &mut out);
        let mut bad = out.clone();
        bad[0] = 7;
        assert!(decode(&bad, 3, Path::new("x"), 0).is_err());
        let mut bad = out.clone();
        bad[37] = 200; // child count
        assert!(decode(&bad, 3, Path::new("x"), 0).is_err());
        let mut bad = out.clone();
        bad[33..37].copy_from_slice(&i32::MAX.to_le_bytes());
        assert!(decode(&bad, 3, Path::new("x"), 0).is_err());
        assert!(decode(&out[..20], 3, Path::new("x"), 0).is_err());
    }
}
