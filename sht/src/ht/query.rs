//! Tree traversals for single, full-state and 2D queries, shared by the reader and
//! by the writer (which answers queries while it builds).

use super::node::Node;
use crate::condition::{QuarkSet, TimeCondition};
use crate::error::{Error, Result};
use crate::value::Interval;
use crate::Quark;

/// Gives access to nodes by sequence number.
pub(crate) trait NodeSource {
    fn root_seq(&self) -> i32;
    fn with_node<R>(&self, seq: i32, f: impl FnOnce(&Node) -> R) -> Result<R>;
    /// Error for a child entry that does not lead back to its parent.
    fn broken_link(&self, parent: i32, child: i32) -> Error;
}

/// Children of `node` worth visiting, after checking the node is the expected child
/// of `parent` (guards against cycles in corrupt files).
fn check_parent<S: NodeSource>(src: &S, node: &Node, parent: i32) -> Result<()> {
    if node.parent_seq != parent {
        return Err(src.broken_link(parent, node.seq));
    }
    Ok(())
}

/// The interval of `quark` containing `t`, if the tree has it.
pub(crate) fn single<S: NodeSource>(src: &S, t: i64, quark: Quark) -> Result<Option<Interval>> {
    let mut stack: Vec<(i32, i32)> = vec![(src.root_seq(), -1)];
    while let Some((seq, parent)) = stack.pop() {
        let found = src.with_node(seq, |node| -> Result<Option<Interval>> {
            check_parent(src, node, parent)?;
            if node.min_quark <= quark && quark <= node.max_quark {
                let from = node.first_ending_at_or_after(t);
                if let Some(i) = node.intervals[from..]
                    .iter()
                    .find(|i| i.quark == quark && i.start <= t)
                {
                    return Ok(Some(i.clone()));
                }
            }
            for c in node.children.iter().rev() {
                if c.start <= t && t <= c.end && c.min_quark <= quark && quark <= c.max_quark {
                    stack.push((c.seq, node.seq));
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
pub(crate) fn full<S: NodeSource>(src: &S, t: i64, out: &mut [Option<Interval>]) -> Result<()> {
    let mut stack: Vec<(i32, i32)> = vec![(src.root_seq(), -1)];
    while let Some((seq, parent)) = stack.pop() {
        src.with_node(seq, |node| -> Result<()> {
            check_parent(src, node, parent)?;
            let from = node.first_ending_at_or_after(t);
            for i in &node.intervals[from..] {
                if i.start <= t {
                    if let Some(slot) = out.get_mut(i.quark as usize) {
                        *slot = Some(i.clone());
                    }
                }
            }
            for c in &node.children {
                if c.start <= t && t <= c.end {
                    stack.push((c.seq, node.seq));
                }
            }
            Ok(())
        })??;
    }
    Ok(())
}

/// Calls `visit` for every stored interval of `quarks` meeting `times`.
pub(crate) fn range<S: NodeSource>(
    src: &S,
    quarks: &QuarkSet,
    times: &TimeCondition,
    visit: &mut dyn FnMut(&Interval),
) -> Result<()> {
    let mut stack: Vec<(i32, i32)> = vec![(src.root_seq(), -1)];
    let lo = times.min();
    while let Some((seq, parent)) = stack.pop() {
        src.with_node(seq, |node| -> Result<()> {
            check_parent(src, node, parent)?;
            if quarks.intersects(node.min_quark, node.max_quark) {
                let from = node.first_ending_at_or_after(lo);
                for i in &node.intervals[from..] {
                    if quarks.contains(i.quark) && times.intersects(i.start, i.end) {
                        visit(i);
                    }
                }
            }
            for c in node.children.iter().rev() {
                if times.intersects(c.start, c.end) && quarks.intersects(c.min_quark, c.max_quark) {
                    stack.push((c.seq, node.seq));
                }
            }
            Ok(())
        })??;
    }
    Ok(())
}
