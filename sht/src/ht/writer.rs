//! `HistoryTreeWriter`: grows a history tree exactly as Trace Compass does
//! (`docs/ht-format.md`, "How the tree grows") and writes each node once, when it
//! closes. Only the latest branch (root to current leaf) is kept in memory.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::attributes::encode_attribute_tree;
use super::format::{self, header as hf, node as nf};
use super::node::{self, ChildEntry, Node, NodeKind};
use super::query::NodeSource;
use crate::attribute::AttributeTree;
use crate::error::{Error, Result};
use crate::value::Interval;

/// Shape of a history tree file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HtConfig {
    pub block_size: i32,
    pub max_children: i32,
    pub provider_version: i32,
    /// History start time (the root node's start).
    pub start: i64,
}

impl HtConfig {
    /// Trace Compass's defaults: 64 KiB blocks, 50 children.
    pub fn new(start: i64, provider_version: i32) -> Self {
        HtConfig {
            block_size: format::DEFAULT_BLOCK_SIZE,
            max_children: format::DEFAULT_MAX_CHILDREN,
            provider_version,
            start,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.block_size < format::MIN_BLOCK_SIZE {
            return Err(Error::Config(format!(
                "block size {} is below the minimum of {}",
                self.block_size,
                format::MIN_BLOCK_SIZE
            )));
        }
        if self.max_children < 2 {
            return Err(Error::Config(format!(
                "max children {} must be at least 2",
                self.max_children
            )));
        }
        // An empty core node must leave room for at least one large interval.
        let m = self.max_children as usize;
        let core_max = format::core_fixed_header_size(m) + 18 * m;
        if core_max + 64 > self.block_size as usize {
            return Err(Error::Config(format!(
                "max children {} needs core nodes of {} bytes, more than the block size {}",
                self.max_children, core_max, self.block_size
            )));
        }
        Ok(())
    }
}

/// A node of the latest branch, with the space accounting of Trace Compass.
struct OpenNode {
    node: Node,
    header_size: usize,
    data_size: usize,
}

impl OpenNode {
    fn new(kind: NodeKind, seq: i32, parent_seq: i32, start: i64, max_children: usize) -> Self {
        let node = Node::new(kind, seq, parent_seq, start);
        let header_size = node::header_size(kind, &node.children, max_children);
        OpenNode {
            node,
            header_size,
            data_size: 0,
        }
    }

    fn free(&self, block_size: usize) -> usize {
        block_size.saturating_sub(self.header_size + self.data_size)
    }
}

/// Writes a new `.ht` file. Nodes go to a temporary file beside the target, which
/// is renamed to the target only by [`HistoryTreeWriter::finish`]: an interrupted
/// build never leaves a file that opens as complete.
pub struct HistoryTreeWriter {
    config: HtConfig,
    block_size: usize,
    max_children: usize,
    path: PathBuf,
    tmp_path: PathBuf,
    file: Option<File>,
    branch: Vec<OpenNode>,
    node_count: i32,
    tree_end: i64,
    encode_buf: Vec<u8>,
    /// Interval vectors of written nodes, reused by new ones (no regrowth per node).
    spare_intervals: Vec<Vec<Interval>>,
}

impl HistoryTreeWriter {
    /// Starts a history that will be saved at `path`.
    pub fn create(path: impl AsRef<Path>, config: HtConfig) -> Result<Self> {
        config.validate()?;
        let path = path.as_ref().to_path_buf();
        let tmp_path = temporary_path(&path);
        // Read access too: queries while building read the closed nodes back.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)
            .map_err(|e| Error::io(&tmp_path, e))?;
        let max_children = config.max_children as usize;
        let root = OpenNode::new(NodeKind::Leaf, 0, -1, config.start, max_children);
        Ok(HistoryTreeWriter {
            config,
            block_size: config.block_size as usize,
            max_children,
            path,
            tmp_path,
            file: Some(file),
            branch: vec![root],
            node_count: 1,
            tree_end: config.start,
            encode_buf: Vec::with_capacity(config.block_size as usize),
            spare_intervals: Vec::new(),
        })
    }

    pub fn config(&self) -> &HtConfig {
        &self.config
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Largest end time of the intervals inserted so far.
    pub fn end_time(&self) -> i64 {
        self.tree_end
    }

    pub fn node_count(&self) -> i32 {
        self.node_count
    }

    /// Inserts one interval (Trace Compass `insertPastState`).
    pub fn insert(&mut self, interval: Interval) -> Result<()> {
        if self.file.is_none() {
            return Err(Error::Closed);
        }
        if interval.start < self.config.start {
            return Err(Error::BeforeStart {
                t: interval.start,
                start: self.config.start,
            });
        }
        if interval.start > interval.end {
            return Err(Error::InvalidInterval {
                start: interval.start,
                end: interval.end,
                quark: interval.quark,
            });
        }
        let mut k = self.branch.len() - 1;
        loop {
            let target = &self.branch[k];
            let size = node::interval_size(&interval, target.node.start);
            if size > target.free(self.block_size) {
                // It must fit a fresh leaf starting at its start, or this never ends.
                let fresh = node::interval_size(&interval, interval.start);
                if fresh > self.block_size - nf::COMMON_HEADER_SIZE {
                    return Err(Error::IntervalTooLarge {
                        size: fresh,
                        block_size: self.config.block_size,
                    });
                }
                self.add_sibling(k, interval.start)?;
                k = self.branch.len() - 1;
                continue;
            }
            if interval.start < target.node.start {
                // The root starts at the history start, so k > 0 here.
                k -= 1;
                continue;
            }
            let target = &mut self.branch[k];
            target.data_size += size;
            let n = &mut target.node;
            n.end = n.end.max(interval.end);
            n.min_quark = n.min_quark.min(interval.quark);
            n.max_quark = n.max_quark.max(interval.quark);
            self.tree_end = self.tree_end.max(interval.end);
            n.add_sorted(interval);
            return Ok(());
        }
    }

    fn add_sibling(&mut self, k: usize, new_start: i64) -> Result<()> {
        let split = self.tree_end;
        if k == 0 {
            return self.add_new_root(new_start);
        }
        let parent = &self.branch[k - 1].node;
        if parent.children.len() == self.max_children || parent.start > new_start {
            return self.add_sibling(k - 1, new_start);
        }
        let depth = self.branch.len();
        let kinds: Vec<NodeKind> = self.branch[k..].iter().map(|n| n.node.kind).collect();
        self.close_branch(k, split)?;
        for (i, kind) in (k..depth).zip(kinds) {
            let seq = self.next_seq();
            let parent_seq = self.branch[i - 1].node.seq;
            let new = self.open_node(kind, seq, parent_seq, new_start);
            self.link_child(i - 1, seq, new_start);
            self.branch.push(new);
        }
        Ok(())
    }

    fn add_new_root(&mut self, new_start: i64) -> Result<()> {
        let split = self.tree_end;
        let depth = self.branch.len();
        let root_seq = self.next_seq();
        let mut root = OpenNode::new(
            NodeKind::Core,
            root_seq,
            -1,
            self.config.start,
            self.max_children,
        );
        self.branch[0].node.parent_seq = root_seq;
        let old_root = self
            .close_branch(0, split)?
            .expect("closing a whole branch closes its root");
        root.node.children.push(old_root);
        root.header_size =
            node::header_size(NodeKind::Core, &root.node.children, self.max_children);
        self.branch.push(root);
        for i in 1..=depth {
            let kind = if i == depth {
                NodeKind::Leaf
            } else {
                NodeKind::Core
            };
            let seq = self.next_seq();
            let parent_seq = self.branch[i - 1].node.seq;
            let new = self.open_node(kind, seq, parent_seq, new_start);
            self.link_child(i - 1, seq, new_start);
            self.branch.push(new);
        }
        Ok(())
    }

    fn open_node(&mut self, kind: NodeKind, seq: i32, parent_seq: i32, start: i64) -> OpenNode {
        let mut node = OpenNode::new(kind, seq, parent_seq, start, self.max_children);
        if let Some(spare) = self.spare_intervals.pop() {
            node.node.intervals = spare;
        }
        node
    }

    fn next_seq(&mut self) -> i32 {
        let s = self.node_count;
        self.node_count += 1;
        s
    }

    fn link_child(&mut self, parent_index: usize, seq: i32, start: i64) {
        let parent = &mut self.branch[parent_index];
        parent.node.children.push(ChildEntry::linked(seq, start));
        parent.header_size =
            node::header_size(NodeKind::Core, &parent.node.children, self.max_children);
    }

    /// Closes the branch from the leaf up to index `j` (inclusive) at `end`, writing
    /// each node. Returns the entry of the node at `j` when `j` is the root.
    fn close_branch(&mut self, j: usize, end: i64) -> Result<Option<ChildEntry>> {
        let mut last = None;
        while self.branch.len() > j {
            let mut open = self.branch.pop().expect("non-empty branch");
            open.node.end = end;
            self.write_node(&open.node)?;
            if self.spare_intervals.len() < 16 {
                let mut spare = std::mem::take(&mut open.node.intervals);
                spare.clear();
                self.spare_intervals.push(spare);
            }
            let (min_quark, max_quark) = open.node.subtree_quark_range();
            let entry = ChildEntry {
                seq: open.node.seq,
                start: open.node.start,
                end,
                min_quark,
                max_quark,
            };
            if let Some(parent) = self.branch.last_mut() {
                let slot = parent
                    .node
                    .children
                    .last_mut()
                    .filter(|c| c.seq == entry.seq)
                    .expect("a branch node is its parent's last child");
                *slot = entry;
                parent.header_size =
                    node::header_size(NodeKind::Core, &parent.node.children, self.max_children);
            } else {
                last = Some(entry);
            }
        }
        Ok(last)
    }

    fn write_node(&mut self, n: &Node) -> Result<()> {
        self.encode_buf.clear();
        node::encode(n, self.block_size, self.max_children, &mut self.encode_buf);
        let offset = format::node_offset(n.seq, self.config.block_size);
        let file = self.file.as_ref().ok_or(Error::Closed)?;
        file.write_all_at(&self.encode_buf, offset)
            .map_err(|e| Error::io(&self.tmp_path, e))
    }

    /// Closes the tree at `end`, writes the header and the attribute tree, and
    /// moves the file to its final name. Returns the file size.
    pub fn finish(&mut self, end: i64, attributes: &AttributeTree) -> Result<u64> {
        if self.file.is_none() {
            return Err(Error::Closed);
        }
        let end = end.max(self.tree_end);
        self.tree_end = end;
        let root = self.branch[0].node.seq;
        self.close_branch(0, end)?;
        let mut header = [0u8; hf::USED_SIZE];
        let c = &self.config;
        header[hf::MAGIC..hf::MAGIC + 4].copy_from_slice(&format::HISTORY_FILE_MAGIC.to_le_bytes());
        header[hf::FILE_VERSION..hf::FILE_VERSION + 4]
            .copy_from_slice(&format::FILE_VERSION.to_le_bytes());
        header[hf::PROVIDER_VERSION..hf::PROVIDER_VERSION + 4]
            .copy_from_slice(&c.provider_version.to_le_bytes());
        header[hf::BLOCK_SIZE..hf::BLOCK_SIZE + 4].copy_from_slice(&c.block_size.to_le_bytes());
        header[hf::MAX_CHILDREN..hf::MAX_CHILDREN + 4]
            .copy_from_slice(&c.max_children.to_le_bytes());
        header[hf::NODE_COUNT..hf::NODE_COUNT + 4].copy_from_slice(&self.node_count.to_le_bytes());
        header[hf::ROOT_SEQ..hf::ROOT_SEQ + 4].copy_from_slice(&root.to_le_bytes());
        header[hf::START_TIME..hf::START_TIME + 8].copy_from_slice(&c.start.to_le_bytes());
        let section = encode_attribute_tree(attributes);
        let section_at = format::node_offset(self.node_count, c.block_size);
        let mut file = self.file.take().ok_or(Error::Closed)?;
        let io = |e| Error::io(&self.tmp_path, e);
        file.write_all_at(&header, 0).map_err(io)?;
        file.write_all_at(&section, section_at).map_err(io)?;
        let size = section_at + section.len() as u64;
        file.set_len(size).map_err(io)?;
        file.flush().map_err(io)?;
        file.sync_data().map_err(io)?;
        drop(file);
        std::fs::rename(&self.tmp_path, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(size)
    }

    /// Reads a node, from memory if it is still open, else from the file.
    fn load_node(&self, seq: i32) -> Result<Node> {
        let file = self.file.as_ref().ok_or(Error::Closed)?;
        let mut buf = vec![0u8; self.block_size];
        let offset = format::node_offset(seq, self.config.block_size);
        file.read_exact_at(&mut buf, offset)
            .map_err(|e| Error::io(&self.tmp_path, e))?;
        node::decode(&buf, self.max_children, &self.tmp_path, offset)
    }
}

impl NodeSource for HistoryTreeWriter {
    type Node = Node;

    fn root_seq(&self) -> i32 {
        self.branch[0].node.seq
    }

    fn with_node<R>(&self, seq: i32, f: impl FnOnce(&Node) -> R) -> Result<R> {
        if let Some(open) = self.branch.iter().find(|n| n.node.seq == seq) {
            return Ok(f(&open.node));
        }
        if seq < 0 || seq >= self.node_count {
            return Err(Error::corrupt(&self.tmp_path, 0, format!("no node {seq}")));
        }
        Ok(f(&self.load_node(seq)?))
    }

    fn broken_link(&self, parent: i32, child: i32) -> Error {
        Error::corrupt(
            &self.tmp_path,
            format::node_offset(child, self.config.block_size),
            format!("node {child} is not a child of node {parent}"),
        )
    }
}

impl Drop for HistoryTreeWriter {
    fn drop(&mut self) {
        // Unfinished: the temporary file is useless, remove it.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// `dir/.name.tmp-<pid>`: same directory (so rename is atomic), hidden, unique per process.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "history.ht".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}
