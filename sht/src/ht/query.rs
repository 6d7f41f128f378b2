//! Tree traversals for single, full-state and 2D queries, shared by the reader and
//! by the writer (which answers queries while it builds).

use super::node::{ChildEntry, Node};
use super::packed::PackedNode;
use crate::condition::{QuarkSet, TimeCondition};
use crate::error::{Error, Result};
use crate::value::Interval;
use crate::Quark;

/// What a traversal needs from a node, whatever its in-memory form.
pub(crate) trait NodeData {
    fn seq(&self) -> i32;
    fn parent_seq(&self) -> i32;
    fn quark_range(&self) -> (i32, i32);
    fn children(&self) -> &[ChildEntry];
    fn len(&self) -> usize;
    fn start(&self, i: usize) -> i64;
    fn end(&self, i: usize) -> i64;
    fn quark(&self, i: usize) -> i32;
    fn interval(&self, i: usize) -> Interval;
    fn first_ending_at_or_after(&self, t: i64) -> usize;
    fn find(&self, from: usize, quark: i32, t: i64) -> Option<usize> {
        (from..self.len()).find(|&i| self.quark(i) == quark && self.start(i) <= t)
    }
    /// Calls `f(i)` for every interval containing `t`.
    fn for_each_containing(&self, t: i64, mut f: impl FnMut(usize)) {
        for i in self.first_ending_at_or_after(t)..self.len() {
            if self.start(i) <= t {
                f(i);
            }
        }
    }
}

impl NodeData for Node {
    fn seq(&self) -> i32 {
        self.seq
    }
    fn parent_seq(&self) -> i32 {
        self.parent_seq
    }
    fn quark_range(&self) -> (i32, i32) {
        (self.min_quark, self.max_quark)
    }
    fn children(&self) -> &[ChildEntry] {
        &self.children
    }
    fn len(&self) -> usize {
        self.intervals.len()
    }
    fn start(&self, i: usize) -> i64 {
        self.intervals[i].start
    }
    fn end(&self, i: usize) -> i64 {
        self.intervals[i].end
    }
    fn quark(&self, i: usize) -> i32 {
        self.intervals[i].quark
    }
    fn interval(&self, i: usize) -> Interval {
        self.intervals[i].clone()
    }
    fn first_ending_at_or_after(&self, t: i64) -> usize {
        Node::first_ending_at_or_after(self, t)
    }
}

impl NodeData for PackedNode {
    fn seq(&self) -> i32 {
        self.header.seq
    }
    fn parent_seq(&self) -> i32 {
        self.header.parent_seq
    }
    fn quark_range(&self) -> (i32, i32) {
        (self.header.min_quark, self.header.max_quark)
    }
    fn children(&self) -> &[ChildEntry] {
        &self.children
    }
    fn len(&self) -> usize {
        PackedNode::len(self)
    }
    fn start(&self, i: usize) -> i64 {
        PackedNode::start(self, i)
    }
    fn end(&self, i: usize) -> i64 {
        PackedNode::end(self, i)
    }
    fn quark(&self, i: usize) -> i32 {
        PackedNode::quark(self, i)
    }
    fn interval(&self, i: usize) -> Interval {
        PackedNode::interval(self, i)
    }
    fn first_ending_at_or_after(&self, t: i64) -> usize {
        PackedNode::first_ending_at_or_after(self, t)
    }
    fn find(&self, from: usize, quark: i32, t: i64) -> Option<usize> {
        PackedNode::find(self, from, quark, t)
    }
    fn for_each_containing(&self, t: i64, f: impl FnMut(usize)) {
        PackedNode::for_each_containing(self, t, f)
    }
}

/// Gives access to nodes by sequence number.
pub(crate) trait NodeSource {
    type Node: NodeData;
    fn root_seq(&self) -> i32;
    fn with_node<R>(&self, seq: i32, f: impl FnOnce(&Self::Node) -> R) -> Result<R>;
    /// Error for a child entry that does not lead back to its parent.
    fn broken_link(&self, parent: i32, child: i32) -> Error;
}

/// Checks the node is the expected child of `parent`: a corrupt file cannot make
/// a traversal loop (each node names one parent, and the root none).
fn check_parent<S: NodeSource>(src: &S, node: &S::Node, parent: i32) -> Result<()> {
    if node.parent_seq() != parent {
        return Err(src.broken_link(parent, node.seq()));
    }
    Ok(())
}

/// The interval of `quark` containing `t`, if the tree has it.
pub(crate) fn single<S: NodeSource>(src: &S, t: i64, quark: Quark) -> Result<Option<Interval>> {
    let mut stack: Vec<(i32, i32)> = vec![(src.root_seq(), -1)];
    while let Some((seq, parent)) = stack.pop() {
        let found = src.with_node(seq, |node| -> Result<Option<Interval>> {
            check_parent(src, node, parent)?;
            let (lo, hi) = node.quark_range();
            if lo <= quark && quark <= hi {
                let from = node.first_ending_at_or_after(t);
                if let Some(i) = node.find(from, quark, t) {
                    return Ok(Some(node.interval(i)));
                }
            }
            for c in node.children().iter().rev() {
                if c.start <= t && t <= c.end && c.min_quark <= quark && quark <= c.max_quark {
                    stack.push((c.seq, node.seq()));
                }
            }
            Ok(None)
        })??;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Fills `out[quark]` with every interval containing `t`.
pub(crate) fn full<S: NodeSource>(src: &S, t: i64, out: &mut [Interval]) -> Result<()> {
    let mut stack: Vec<(i32, i32)> = vec![(src.root_seq(), -1)];
    while let Some((seq, parent)) = stack.pop() {
        src.with_node(seq, |node| -> Result<()> {
            check_parent(src, node, parent)?;
            node.for_each_containing(t, |i| {
                if let Some(slot) = out.get_mut(node.quark(i) as usize) {
                    *slot = node.interval(i);
                }
            });
            for c in node.children() {
                if c.start <= t && t <= c.end {
                    stack.push((c.seq, node.seq()));
                }
            }
            Ok(())
        })??;
    }
    Ok(())
}

/// Membership of a [`QuarkSet`] as one bit per quark of its span: a requested
/// set of rows is spread over the attributes (a thread's quark, then its
/// sub-attributes), too sparse for the set's own table, and this test runs for
/// every stored interval a query looks at.
struct QuarkBits {
    lo: i32,
    bits: Vec<u64>,
}

impl QuarkBits {
    /// `None` when the span is too wide for a table (more than 2^26 quarks).
    fn new(quarks: &QuarkSet) -> Option<Self> {
        let (lo, hi) = (quarks.min(), quarks.max());
        let span = (hi as i64 - lo as i64 + 1) as usize;
        if span > 1 << 26 {
            return None;
        }
        let mut bits = vec![0u64; span.div_ceil(64)];
        for &q in quarks.as_slice() {
            let k = (q - lo) as usize;
            bits[k / 64] |= 1 << (k % 64);
        }
        Some(QuarkBits { lo, bits })
    }

    #[inline]
    fn contains(&self, q: i32) -> bool {
        let k = (q as i64 - self.lo as i64) as u64 as usize;
        self.bits
            .get(k / 64)
            .is_some_and(|w| w & (1 << (k % 64)) != 0)
    }
}

/// Calls `visit` for every stored interval of `quarks` meeting `times`.
///
/// Sample times (the sampled 2D query of the time-graph views): each node is
/// visited once for all the quarks and times, and within a node, whose intervals
/// are sorted by end, the last sample at or before an interval's end is found by
/// a cursor that only moves forward: the interval holds a sample when that
/// sample is not before its start.
pub(crate) fn range<S: NodeSource>(
    src: &S,
    quarks: &QuarkSet,
    times: &TimeCondition,
    visit: &mut dyn FnMut(&Interval),
) -> Result<()> {
    let mut stack: Vec<(i32, i32)> = vec![(src.root_seq(), -1)];
    let lo = times.min();
    let bits = QuarkBits::new(quarks);
    let member = |q: i32| match &bits {
        Some(b) => b.contains(q),
        None => quarks.contains(q),
    };
    while let Some((seq, parent)) = stack.pop() {
        src.with_node(seq, |node| -> Result<()> {
            check_parent(src, node, parent)?;
            let (qlo, qhi) = node.quark_range();
            if quarks.intersects(qlo, qhi) {
                let from = node.first_ending_at_or_after(lo);
                match times {
                    TimeCondition::Instants(samples) => {
                        // Samples at or before the current interval's end.
                        let mut k = 0;
                        for i in from..node.len() {
                            let end = node.end(i);
                            while k < samples.len() && samples[k] <= end {
                                k += 1;
                            }
                            if k > 0 && samples[k - 1] >= node.start(i) && member(node.quark(i)) {
                                visit(&node.interval(i));
                            }
                        }
                    }
                    TimeCondition::Range { .. } => {
                        for i in from..node.len() {
                            if member(node.quark(i)) && times.intersects(node.start(i), node.end(i))
                            {
                                visit(&node.interval(i));
                            }
                        }
                    }
                }
            }
            for c in node.children().iter().rev() {
                if times.intersects(c.start, c.end) && quarks.intersects(c.min_quark, c.max_quark) {
                    stack.push((c.seq, node.seq()));
                }
            }
            Ok(())
        })??;
    }
    Ok(())
}
