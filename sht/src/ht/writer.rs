//! `HistoryTreeWriter`: grows a history tree exactly as Trace Compass does
//! (`docs/ht-format.md`, "How the tree grows") and writes each node once, when it
//! closes. Only the latest branch (root to current leaf) is kept in memory.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::attributes::encode_attribute_tree;
use super::chunk::{IntervalChunk, PackedInterval};
use super::format::interval as iv;
use super::format::{self, header as hf, node as nf};
use super::node::{self, ChildEntry, Node, NodeKind};
use super::query::{NodeData, NodeSource};
use crate::attribute::AttributeTree;
use crate::error::{Error, Result};
use crate::value::{Interval, StateValue};

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

/// One interval of an open node (see [`PackedInterval`]): half the size of an
/// [`Interval`] and nothing to drop, so keeping the node sorted moves less.
type Rec = PackedInterval;

/// A node of the latest branch, with the space accounting of Trace Compass.
pub(crate) struct OpenNode {
    kind: NodeKind,
    seq: i32,
    parent_seq: i32,
    start: i64,
    end: i64,
    /// Quark range of this node's own intervals.
    min_quark: i32,
    max_quark: i32,
    /// Sorted by (end, start, quark), the on-disk order.
    recs: Vec<Rec>,
    /// String and custom values of `recs`.
    others: Vec<StateValue>,
    /// Core nodes only, in link order.
    children: Vec<ChildEntry>,
    header_size: usize,
    data_size: usize,
}

impl OpenNode {
    fn new(kind: NodeKind, seq: i32, parent_seq: i32, start: i64, max_children: usize) -> Self {
        OpenNode {
            kind,
            seq,
            parent_seq,
            start,
            end: start,
            min_quark: nf::EMPTY_MIN_QUARK,
            max_quark: nf::EMPTY_MAX_QUARK,
            recs: Vec::new(),
            others: Vec::new(),
            children: Vec::new(),
            header_size: node::header_size(kind, &[], max_children),
            data_size: 0,
        }
    }

    /// A closed node read back from the file (for queries while building).
    fn from_node(n: Node, max_children: usize) -> Self {
        let mut open = OpenNode::new(n.kind, n.seq, n.parent_seq, n.start, max_children);
        open.end = n.end;
        open.min_quark = n.min_quark;
        open.max_quark = n.max_quark;
        open.header_size = node::header_size(n.kind, &n.children, max_children);
        open.children = n.children;
        for i in n.intervals {
            open.data_size += node::interval_size(&i, n.start);
            // Stored in order already: pushing keeps it sorted.
            let rec = Rec::pack(i.start, i.end, i.quark, i.value, &mut open.others);
            open.recs.push(rec);
        }
        open
    }

    fn free(&self, block_size: usize) -> usize {
        block_size.saturating_sub(self.header_size + self.data_size)
    }

    /// Quark range of this node and all its descendants (what the parent records).
    fn subtree_quark_range(&self) -> (i32, i32) {
        self.children
            .iter()
            .fold((self.min_quark, self.max_quark), |(lo, hi), c| {
                (lo.min(c.min_quark), hi.max(c.max_quark))
            })
    }

    /// Adds an interval in (end, start, quark) order, after equal keys.
    #[inline(always)]
    fn add_sorted(&mut self, rec: Rec) {
        let key = rec.key();
        self.recs.push(rec);
        let n = self.recs.len();
        if n > 1 && self.recs[n - 2].key() > key {
            self.sink_last(key);
        }
    }

    /// Moves the last interval back to its place. Intervals arrive nearly in end
    /// order (those ending together in any order): usually a few steps back.
    #[inline(never)]
    fn sink_last(&mut self, key: (i64, i64, i32)) {
        let recs = &mut self.recs[..];
        let mut i = recs.len() - 1;
        for _ in 0..8 {
            if i == 0 || recs[i - 1].key() <= key {
                return;
            }
            recs.swap(i - 1, i);
            i -= 1;
        }
        let pos = recs[..i].partition_point(|l| l.key() <= key);
        recs[pos..=i].rotate_right(1);
    }

    /// Encodes the node into `block` (at least `block_size + SLACK` bytes), which
    /// then holds exactly the node's block in its first `block_size` bytes.
    fn encode(&self, block: &mut [u8], block_size: usize, max_children: usize) {
        let mut w = BlockWriter { buf: block, pos: 0 };
        w.u8(match self.kind {
            NodeKind::Core => nf::TYPE_CORE,
            NodeKind::Leaf => nf::TYPE_LEAF,
        });
        w.u64(self.start as u64);
        w.u64(self.end as u64);
        w.u32(self.min_quark as u32);
        w.u32(self.max_quark as u32);
        w.u32(self.seq as u32);
        w.u32(self.parent_seq as u32);
        w.u32(self.recs.len() as u32);
        if self.kind == NodeKind::Core {
            let c = &self.children;
            let unused = max_children - c.len();
            w.u32(c.len() as u32);
            for e in c {
                w.u32(e.seq as u32);
            }
            for _ in 0..unused {
                w.u32(nf::UNUSED_CHILD_SEQ as u32);
            }
            for e in c {
                w.varint(e.start);
            }
            for _ in 0..unused {
                w.varint(nf::UNUSED_CHILD_START);
            }
            for e in c {
                w.varint(e.end);
            }
            for _ in 0..unused {
                w.varint(nf::UNUSED_CHILD_END);
            }
            for e in c {
                w.u32(e.min_quark as u32);
            }
            for _ in 0..unused {
                w.u32(nf::UNUSED_CHILD_MIN as u32);
            }
            for e in c {
                w.u32(e.max_quark as u32);
            }
            for _ in 0..unused {
                w.u32(nf::UNUSED_CHILD_MAX as u32);
            }
        }
        for r in &self.recs {
            w.varint(r.start.wrapping_sub(self.start));
            w.varint(r.end.wrapping_sub(r.start));
            w.u32(r.quark as u32);
            w.u8(r.kind as u8);
            match r.kind {
                iv::TYPE_INT => w.low(r.bits, 4),
                iv::TYPE_LONG | iv::TYPE_DOUBLE => w.low(r.bits, 8),
                iv::TYPE_STRING | iv::TYPE_CUSTOM => match &self.others[r.bits as usize] {
                    StateValue::String(s) => {
                        // Length checked when the value entered the state system.
                        w.bytes(&(s.len() as i16).to_le_bytes());
                        w.bytes(s.as_bytes());
                        w.u8(0);
                    }
                    StateValue::Custom(c) => {
                        w.bytes(&((c.bytes.len() + 1) as i16).to_le_bytes());
                        w.u8(c.type_id as u8);
                        w.bytes(&c.bytes);
                    }
                    _ => unreachable!("only strings and custom values are kept aside"),
                },
                _ => {}
            }
        }
        let end = w.pos;
        assert!(end <= block_size, "node {} overflows its block", self.seq);
        // Word stores run a few bytes past `pos`; the rest of the block is zeros.
        block[end..block_size].fill(0);
    }
}

/// Bytes an encoder may write past the end of a block (8-byte stores of shorter fields).
const SLACK: usize = 16;

/// Little-endian stores into a block; fixed-size fields are written as whole words
/// (no call to `memcpy` for a 3-byte varint), `pos` advancing by the real length.
struct BlockWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl BlockWriter<'_> {
    #[inline(always)]
    fn u8(&mut self, v: u8) {
        self.buf[self.pos] = v;
        self.pos += 1;
    }

    #[inline(always)]
    fn word(&mut self, v: u64, len: usize) {
        self.buf[self.pos..self.pos + 8].copy_from_slice(&v.to_le_bytes());
        self.pos += len;
    }

    #[inline(always)]
    fn u32(&mut self, v: u32) {
        self.word(v as u64, 4);
    }

    #[inline(always)]
    fn u64(&mut self, v: u64) {
        self.word(v, 8);
    }

    /// The low `len` bytes of `bits`.
    #[inline(always)]
    fn low(&mut self, bits: u64, len: usize) {
        self.word(bits, len);
    }

    /// An HTVarInt (see [`format::put_varint`]).
    #[inline(always)]
    fn varint(&mut self, v: i64) {
        let n = format::varint_len(v) - 1;
        self.buf[self.pos] = n as u8;
        self.pos += 1;
        self.word(v.wrapping_add(3) as u64, n);
    }

    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
}

impl NodeData for OpenNode {
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
        self.recs.len()
    }
    fn start(&self, i: usize) -> i64 {
        self.recs[i].start
    }
    fn end(&self, i: usize) -> i64 {
        self.recs[i].end
    }
    fn quark(&self, i: usize) -> i32 {
        self.recs[i].quark
    }
    fn interval(&self, i: usize) -> Interval {
        let r = &self.recs[i];
        Interval::new(r.start, r.end, r.quark, r.value(&self.others))
    }
    fn first_ending_at_or_after(&self, t: i64) -> usize {
        self.recs.partition_point(|r| r.end < t)
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
    /// One block and its slack, reused for every node written.
    block: Vec<u8>,
    /// Interval vectors of written nodes, reused by new ones (no regrowth per node).
    spare_recs: Vec<Vec<Rec>>,
    /// Block writes of a large history, on a thread of their own.
    io: Option<BlockIo>,
    /// Bytes of blocks written on this thread (before `io` starts).
    written: u64,
    /// `written` at which `io` starts ([`IO_THREAD_AFTER`]; tests change it).
    io_after: u64,
    /// Whether the I/O thread may bypass the page cache (tests turn it off).
    direct_io: bool,
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
            block: vec![0; config.block_size as usize + SLACK],
            spare_recs: Vec::new(),
            io: None,
            written: 0,
            io_after: IO_THREAD_AFTER,
            direct_io: true,
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

    /// Inserts `chunk`'s intervals in order, leaving it empty; stops at the first error.
    pub fn insert_chunk(&mut self, chunk: &mut IntervalChunk) -> Result<()> {
        if self.file.is_none() {
            chunk.clear();
            return Err(Error::Closed);
        }
        let mut result = Ok(());
        let history_start = self.config.start;
        let block_size = self.block_size;
        let (recs, aside) = chunk.parts_mut();
        for &rec in recs {
            // Most intervals: an inline value that fits the current leaf, which is
            // where `insert_packed` would put it (its first candidate).
            if !rec.is_aside() && rec.start >= history_start && rec.start <= rec.end {
                let leaf = self.branch.last_mut().expect("the branch has a root");
                if rec.start >= leaf.start {
                    let payload = match rec.kind {
                        iv::TYPE_NULL => 0,
                        iv::TYPE_INT => 4,
                        _ => 8,
                    };
                    let size = format::varint_len(rec.start.wrapping_sub(leaf.start))
                        + format::varint_len(rec.end.wrapping_sub(rec.start))
                        + iv::FIXED_SIZE
                        + payload;
                    if leaf.header_size + leaf.data_size + size <= block_size {
                        leaf.data_size += size;
                        leaf.end = leaf.end.max(rec.end);
                        leaf.min_quark = leaf.min_quark.min(rec.quark);
                        leaf.max_quark = leaf.max_quark.max(rec.quark);
                        self.tree_end = self.tree_end.max(rec.end);
                        leaf.add_sorted(rec);
                        continue;
                    }
                }
            }
            let value = if rec.is_aside() {
                Some(std::mem::take(&mut aside[rec.bits as usize]))
            } else {
                None
            };
            result = self.insert_packed(rec, value);
            if result.is_err() {
                break;
            }
        }
        chunk.clear();
        result
    }

    /// Inserts one interval (Trace Compass `insertPastState`).
    pub fn insert(&mut self, interval: Interval) -> Result<()> {
        let mut aside = Vec::new();
        let rec = Rec::pack(
            interval.start,
            interval.end,
            interval.quark,
            interval.value,
            &mut aside,
        );
        self.insert_packed(rec, aside.pop())
    }

    /// Inserts `rec`, whose value is `aside` when it is not inline.
    #[inline(never)]
    fn insert_packed(&mut self, mut rec: Rec, aside: Option<StateValue>) -> Result<()> {
        if self.file.is_none() {
            return Err(Error::Closed);
        }
        if rec.start < self.config.start {
            return Err(Error::BeforeStart {
                t: rec.start,
                start: self.config.start,
            });
        }
        if rec.start > rec.end {
            return Err(Error::InvalidInterval {
                start: rec.start,
                end: rec.end,
                quark: rec.quark,
            });
        }
        let payload = match &aside {
            None => match rec.kind {
                iv::TYPE_NULL => 0,
                iv::TYPE_INT => 4,
                _ => 8,
            },
            Some(v) => node::payload_size(v),
        };
        let fixed = iv::FIXED_SIZE + payload;
        let duration = format::varint_len(rec.end.wrapping_sub(rec.start));
        let mut k = self.branch.len() - 1;
        loop {
            let target = &self.branch[k];
            let size = format::varint_len(rec.start.wrapping_sub(target.start)) + duration + fixed;
            if size > target.free(self.block_size) {
                // It must fit a fresh leaf starting at its start, or this never ends.
                let fresh = format::varint_len(0) + duration + fixed;
                if fresh > self.block_size - nf::COMMON_HEADER_SIZE {
                    return Err(Error::IntervalTooLarge {
                        size: fresh,
                        block_size: self.config.block_size,
                    });
                }
                self.add_sibling(k, rec.start)?;
                k = self.branch.len() - 1;
                continue;
            }
            if rec.start < target.start {
                // The root starts at the history start, so k > 0 here.
                k -= 1;
                continue;
            }
            let n = &mut self.branch[k];
            n.data_size += size;
            n.end = n.end.max(rec.end);
            n.min_quark = n.min_quark.min(rec.quark);
            n.max_quark = n.max_quark.max(rec.quark);
            self.tree_end = self.tree_end.max(rec.end);
            if let Some(v) = aside {
                n.others.push(v);
                rec.bits = n.others.len() as u64 - 1;
            }
            n.add_sorted(rec);
            return Ok(());
        }
    }

    fn add_sibling(&mut self, k: usize, new_start: i64) -> Result<()> {
        let split = self.tree_end;
        if k == 0 {
            return self.add_new_root(new_start);
        }
        let parent = &self.branch[k - 1];
        if parent.children.len() == self.max_children || parent.start > new_start {
            return self.add_sibling(k - 1, new_start);
        }
        let depth = self.branch.len();
        let kinds: Vec<NodeKind> = self.branch[k..].iter().map(|n| n.kind).collect();
        self.close_branch(k, split)?;
        for (i, kind) in (k..depth).zip(kinds) {
            let seq = self.next_seq();
            let parent_seq = self.branch[i - 1].seq;
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
        self.branch[0].parent_seq = root_seq;
        let old_root = self
            .close_branch(0, split)?
            .expect("closing a whole branch closes its root");
        root.children.push(old_root);
        root.header_size = node::header_size(NodeKind::Core, &root.children, self.max_children);
        self.branch.push(root);
        for i in 1..=depth {
            let kind = if i == depth {
                NodeKind::Leaf
            } else {
                NodeKind::Core
            };
            let seq = self.next_seq();
            let parent_seq = self.branch[i - 1].seq;
            let new = self.open_node(kind, seq, parent_seq, new_start);
            self.link_child(i - 1, seq, new_start);
            self.branch.push(new);
        }
        Ok(())
    }

    fn open_node(&mut self, kind: NodeKind, seq: i32, parent_seq: i32, start: i64) -> OpenNode {
        let mut node = OpenNode::new(kind, seq, parent_seq, start, self.max_children);
        if let Some(spare) = self.spare_recs.pop() {
            node.recs = spare;
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
        parent.children.push(ChildEntry::linked(seq, start));
        parent.header_size = node::header_size(NodeKind::Core, &parent.children, self.max_children);
    }

    /// Closes the branch from the leaf up to index `j` (inclusive) at `end`, writing
    /// each node. Returns the entry of the node at `j` when `j` is the root.
    fn close_branch(&mut self, j: usize, end: i64) -> Result<Option<ChildEntry>> {
        let mut last = None;
        while self.branch.len() > j {
            let mut open = self.branch.pop().expect("non-empty branch");
            open.end = end;
            self.write_node(&open)?;
            if self.spare_recs.len() < 16 {
                let mut spare = std::mem::take(&mut open.recs);
                spare.clear();
                self.spare_recs.push(spare);
            }
            let (min_quark, max_quark) = open.subtree_quark_range();
            let entry = ChildEntry {
                seq: open.seq,
                start: open.start,
                end,
                min_quark,
                max_quark,
            };
            if let Some(parent) = self.branch.last_mut() {
                let slot = parent
                    .children
                    .last_mut()
                    .filter(|c| c.seq == entry.seq)
                    .expect("a branch node is its parent's last child");
                *slot = entry;
                parent.header_size =
                    node::header_size(NodeKind::Core, &parent.children, self.max_children);
            } else {
                last = Some(entry);
            }
        }
        Ok(last)
    }

    fn write_node(&mut self, n: &OpenNode) -> Result<()> {
        let offset = format::node_offset(n.seq, self.config.block_size);
        let file = self.file.as_ref().ok_or(Error::Closed)?;
        if self.io.is_none() && self.written >= self.io_after {
            // Without a thread (none can start), blocks are written here as before.
            let direct = self.direct_io.then_some(self.tmp_path.as_path());
            self.io = BlockIo::start(file, direct, self.block_size).ok();
        }
        if let Some(io) = &self.io {
            let mut block = io.buffer(self.block_size + SLACK);
            n.encode(&mut block, self.block_size, self.max_children);
            return io
                .write(block, offset)
                .map_err(|e| Error::io(&self.tmp_path, e));
        }
        n.encode(&mut self.block, self.block_size, self.max_children);
        file.write_all_at(&self.block[..self.block_size], offset)
            .map_err(|e| Error::io(&self.tmp_path, e))?;
        self.written += self.block_size as u64;
        Ok(())
    }

    /// Closes the tree at `end`, writes the header and the attribute tree, and
    /// moves the file to its final name. Returns the file size.
    pub fn finish(&mut self, end: i64, attributes: &AttributeTree) -> Result<u64> {
        if self.file.is_none() {
            return Err(Error::Closed);
        }
        let end = end.max(self.tree_end);
        self.tree_end = end;
        let root = self.branch[0].seq;
        self.close_branch(0, end)?;
        if let Some(mut io) = self.io.take() {
            io.stop().map_err(|e| Error::io(&self.tmp_path, e))?;
        }
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
    fn load_node(&self, seq: i32) -> Result<OpenNode> {
        let file = self.file.as_ref().ok_or(Error::Closed)?;
        if let Some(io) = &self.io {
            // The node may still be queued for the I/O thread.
            io.flush().map_err(|e| Error::io(&self.tmp_path, e))?;
        }
        let mut buf = vec![0u8; self.block_size];
        let offset = format::node_offset(seq, self.config.block_size);
        file.read_exact_at(&mut buf, offset)
            .map_err(|e| Error::io(&self.tmp_path, e))?;
        let n = node::decode(&buf, self.max_children, &self.tmp_path, offset)?;
        Ok(OpenNode::from_node(n, self.max_children))
    }
}

impl NodeSource for HistoryTreeWriter {
    type Node = OpenNode;

    fn root_seq(&self) -> i32 {
        self.branch[0].seq
    }

    fn with_node<R>(&self, seq: i32, f: impl FnOnce(&OpenNode) -> R) -> Result<R> {
        if let Some(open) = self.branch.iter().find(|n| n.seq == seq) {
            return Ok(f(open));
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
        // Unfinished: the temporary file is useless, remove it (once the I/O
        // thread is done with it).
        drop(self.io.take());
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

/// Bytes of blocks a history writes on its own thread before block writes move to an
/// I/O thread: small histories (tests, one-off files) start no thread.
const IO_THREAD_AFTER: u64 = 16 << 20;
/// Blocks handed to the I/O thread at a time (one wake-up and, when they follow each
/// other in the file, one write per 2 MiB with 64 KiB blocks), and hand-overs queued.
const IO_GROUP: usize = 32;
const IO_QUEUE: usize = 4;
/// Through the page cache, the I/O thread starts write-back every this many bytes,
/// so that the final `sync_data` waits for the last blocks only.
const WRITEBACK_EVERY: u64 = 32 << 20;
/// Alignment of offsets, lengths and buffers for writes that bypass the page cache.
const DIRECT_ALIGN: usize = 4096;

/// A block buffer aligned for direct I/O (a `Vec<u8>` cannot promise alignment).
struct AlignedBlock {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer is owned memory with no interior sharing, like a Vec<u8>.
unsafe impl Send for AlignedBlock {}

impl AlignedBlock {
    fn layout(len: usize) -> std::alloc::Layout {
        let size = len.div_ceil(DIRECT_ALIGN).max(1) * DIRECT_ALIGN;
        std::alloc::Layout::from_size_align(size, DIRECT_ALIGN).expect("block size is validated")
    }

    fn zeroed(len: usize) -> AlignedBlock {
        let layout = Self::layout(len);
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr =
            std::ptr::NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        AlignedBlock { ptr, len }
    }
}

impl std::ops::Deref for AlignedBlock {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` initialised (zeroed) bytes owned by this value.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for AlignedBlock {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBlock {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with the same layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.len)) }
    }
}

/// Block buffers (their first `block_len` bytes are written) and their file offsets.
type Blocks = Vec<(AlignedBlock, u64)>;

enum IoMessage {
    Blocks(Blocks),
    /// Answered once every earlier block is written.
    Flush(SyncSender<()>),
}

/// The first write error of the I/O thread, kept: every later call reports it.
type IoFailure = Arc<Mutex<Option<(std::io::ErrorKind, String)>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Node blocks of a large history written on a thread of their own. A 1 GB kernel
/// trace writes 2 GB of history: through the page cache, copying the blocks and
/// then writing them back (kernel threads, on the same cores) costs as much as
/// packing the nodes, and write-back is slower than the disk. So where the file
/// system allows it, the blocks go straight to the disk (`O_DIRECT`), those that
/// follow each other in one write; else through the page cache as before. Blocks
/// land at the same offsets either way: the file is the same.
struct BlockIo {
    sender: Option<SyncSender<IoMessage>>,
    /// Blocks not handed over yet (a Mutex only to keep the writer Sync).
    group: Mutex<Blocks>,
    /// Written buffers coming back for reuse (a Mutex only to keep the writer Sync).
    spare: Mutex<Receiver<AlignedBlock>>,
    failure: IoFailure,
    worker: Option<JoinHandle<()>>,
}

impl BlockIo {
    /// `direct`: the file's path, to open it once more bypassing the page cache
    /// (if the file system and the block size allow; else the page cache is used).
    fn start(file: &File, direct: Option<&Path>, block_len: usize) -> std::io::Result<BlockIo> {
        let file = file.try_clone()?;
        let direct = direct
            .filter(|_| block_len.is_multiple_of(DIRECT_ALIGN))
            .and_then(open_direct);
        let (sender, receiver) = mpsc::sync_channel(IO_QUEUE);
        let (spare_tx, spare) = mpsc::channel();
        let failure: IoFailure = Arc::new(Mutex::new(None));
        let worker = {
            let failure = Arc::clone(&failure);
            std::thread::Builder::new()
                .name("sht-io".into())
                .spawn(move || {
                    let mut out = BlockOut {
                        file,
                        direct,
                        block_len,
                        since_writeback: 0,
                    };
                    io_loop(&mut out, &receiver, &spare_tx, &failure)
                })?
        };
        Ok(BlockIo {
            sender: Some(sender),
            group: Mutex::new(Vec::with_capacity(IO_GROUP)),
            spare: Mutex::new(spare),
            failure,
            worker: Some(worker),
        })
    }

    /// A buffer of `len` bytes to encode the next block into.
    fn buffer(&self, len: usize) -> AlignedBlock {
        lock(&self.spare)
            .try_recv()
            .unwrap_or_else(|_| AlignedBlock::zeroed(len))
    }
    fn check(&self) -> std::io::Result<()> {
        match &*lock(&self.failure) {
            Some((kind, message)) => Err(std::io::Error::new(*kind, message.clone())),
            None => Ok(()),
        }
    }

    fn stopped() -> std::io::Error {
        std::io::Error::other("the history's I/O thread stopped")
    }

    /// Queues `block` for writing at `offset`; reports an earlier write's error.
    fn write(&self, block: AlignedBlock, offset: u64) -> std::io::Result<()> {
        let full = {
            let mut group = lock(&self.group);
            group.push((block, offset));
            group.len() >= IO_GROUP
        };
        if full {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Sends the blocks not handed over yet; reports an earlier write's error.
    fn hand_over(&self) -> std::io::Result<()> {
        self.check()?;
        let blocks = std::mem::replace(&mut *lock(&self.group), Vec::with_capacity(IO_GROUP));
        if blocks.is_empty() {
            return Ok(());
        }
        let sender = self.sender.as_ref().ok_or_else(Self::stopped)?;
        if sender.send(IoMessage::Blocks(blocks)).is_err() {
            self.check()?;
            return Err(Self::stopped());
        }
        Ok(())
    }

    /// Waits until every block queued so far is written.
    fn flush(&self) -> std::io::Result<()> {
        self.hand_over()?;
        let sender = self.sender.as_ref().ok_or_else(Self::stopped)?;
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        if sender.send(IoMessage::Flush(done_tx)).is_err() || done_rx.recv().is_err() {
            self.check()?;
            return Err(Self::stopped());
        }
        self.check()
    }

    /// Writes what is queued and ends the thread.
    fn stop(&mut self) -> std::io::Result<()> {
        let handed = self.hand_over();
        self.sender = None;
        if let Some(worker) = self.worker.take() {
            if worker.join().is_err() {
                return Err(std::io::Error::other("the history's I/O thread panicked"));
            }
        }
        handed.and_then(|()| self.check())
    }
}

impl Drop for BlockIo {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Where the I/O thread writes.
struct BlockOut {
    /// Through the page cache.
    file: File,
    /// The same file bypassing the page cache, if it could be opened so.
    direct: Option<File>,
    block_len: usize,
    since_writeback: u64,
}

impl BlockOut {
    /// Writes `blocks` (sorted by offset): runs of adjacent blocks in one write.
    fn write(&mut self, blocks: &[(AlignedBlock, u64)]) -> std::io::Result<()> {
        let mut i = 0;
        while i < blocks.len() {
            let mut j = i + 1;
            while j < blocks.len() && blocks[j].1 == blocks[j - 1].1 + self.block_len as u64 {
                j += 1;
            }
            self.write_run(&blocks[i..j])?;
            i = j;
        }
        Ok(())
    }

    fn write_run(&mut self, run: &[(AlignedBlock, u64)]) -> std::io::Result<()> {
        if let Some(direct) = &self.direct {
            let wanted = run.len() * self.block_len;
            match write_vectored_at(direct, run, self.block_len) {
                Ok(n) if n == wanted => return Ok(()),
                // A short write (the rest would be unaligned): the run again, whole,
                // through the page cache (which sees what was written directly).
                Ok(_) => {}
                // The file system refused direct writes after all: the page cache
                // from now on.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.direct = None,
                Err(e) => return Err(e),
            }
        }
        for (block, offset) in run {
            self.file.write_all_at(&block[..self.block_len], *offset)?;
            self.since_writeback += self.block_len as u64;
            if self.since_writeback >= WRITEBACK_EVERY {
                self.since_writeback = 0;
                start_writeback(&self.file);
            }
        }
        Ok(())
    }
}

/// One `pwritev` of the first `block_len` bytes of each block, at the first one's offset.
#[cfg(target_os = "linux")]
fn write_vectored_at(
    file: &File,
    run: &[(AlignedBlock, u64)],
    block_len: usize,
) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let iov: Vec<libc::iovec> = run
        .iter()
        .map(|(b, _)| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: block_len,
        })
        .collect();
    loop {
        // SAFETY: every iovec points into a live buffer of at least `block_len`
        // bytes (blocks are `block_len + SLACK` long); the kernel only reads them.
        let n = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                iov.as_ptr(),
                iov.len() as libc::c_int,
                run[0].1 as libc::off_t,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The file once more, its writes bypassing the page cache; `None` where that is
/// not possible (tmpfs, other systems).
#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

#[cfg(not(target_os = "linux"))]
fn write_vectored_at(_: &File, _: &[(AlignedBlock, u64)], _: usize) -> std::io::Result<usize> {
    Err(std::io::Error::from_raw_os_error(libc::EINVAL))
}

fn io_loop(
    out: &mut BlockOut,
    receiver: &Receiver<IoMessage>,
    spare: &mpsc::Sender<AlignedBlock>,
    failure: &Mutex<Option<(std::io::ErrorKind, String)>>,
) {
    let mut failed = false;
    for message in receiver.iter() {
        match message {
            IoMessage::Blocks(mut blocks) => {
                if !failed {
                    // Nodes close mostly in file order; sorted, most groups are one run.
                    blocks.sort_unstable_by_key(|b| b.1);
                    if let Err(e) = out.write(&blocks) {
                        *lock(failure) = Some((e.kind(), e.to_string()));
                        failed = true;
                    }
                }
                for (block, _) in blocks {
                    let _ = spare.send(block);
                }
            }
            IoMessage::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Starts writing the file's dirty pages to disk without waiting for them.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the call's duration; the call only
    // schedules write-back. Failure is harmless: `sync_data` writes everything.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::AttributeTree;
    use crate::ht::query;

    /// 10,000 intervals over 40 quarks, strings among them: dozens of 4 KiB nodes.
    fn intervals() -> Vec<Interval> {
        let mut out = Vec::new();
        let mut ends = vec![0i64; 40];
        for i in 0..10_000i64 {
            let q = (i * 7 % 40) as usize;
            let start = ends[q];
            let end = start + 1 + (i * 13 % 97);
            ends[q] = end + 1;
            let value = match i % 3 {
                0 => StateValue::Int(i as i32),
                1 => StateValue::String(format!("s{i}").into()),
                _ => StateValue::Null,
            };
            out.push(Interval::new(start, end, q as i32, value));
        }
        out.sort_by_key(|i| i.end);
        out
    }

    fn config() -> HtConfig {
        HtConfig {
            block_size: 4096,
            max_children: 3,
            provider_version: 5,
            start: 0,
        }
    }

    fn write(path: &Path, io_after: u64, query_midway: bool) -> Vec<u8> {
        write_with(path, io_after, query_midway, true)
    }

    fn write_with(path: &Path, io_after: u64, query_midway: bool, direct_io: bool) -> Vec<u8> {
        let mut w = HistoryTreeWriter::create(path, config()).unwrap();
        w.io_after = io_after;
        w.direct_io = direct_io;
        let all = intervals();
        let (first, rest) = all.split_at(all.len() / 2);
        for i in first {
            w.insert(i.clone()).unwrap();
        }
        if query_midway {
            // Closed nodes may still be queued for the I/O thread: queries see them.
            assert!(w.io.is_some(), "the I/O thread runs");
            for probe in first.iter().step_by(97) {
                let found = query::single(&w, probe.start, probe.quark).unwrap();
                assert_eq!(found.as_ref(), Some(probe));
            }
        }
        for i in rest {
            w.insert(i.clone()).unwrap();
        }
        w.finish(all.last().unwrap().end, &AttributeTree::new())
            .unwrap();
        std::fs::read(path).unwrap()
    }

    #[test]
    fn blocks_written_by_the_io_thread_make_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let inline = write(&dir.path().join("inline.ht"), u64::MAX, false);
        assert!(inline.len() > 20 * 4096, "several nodes: {}", inline.len());
        let threaded = write(&dir.path().join("io.ht"), 0, true);
        assert!(inline == threaded, "the files differ");
        // Starting the thread part-way gives the same file too.
        let later = write(&dir.path().join("later.ht"), 8 * 4096, false);
        assert!(inline == later, "the files differ");
        // Through the page cache only (where direct writes are impossible).
        let cached = write_with(&dir.path().join("cached.ht"), 0, true, false);
        assert!(inline == cached, "the files differ");
    }

    /// Blocks of 4 KiB numbered by their content, written out of order in groups,
    /// directly and through the page cache: every block lands at its offset.
    #[test]
    fn block_groups_land_at_their_offsets_direct_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let len = 4096;
        let block = |n: u8| {
            let mut b = AlignedBlock::zeroed(len + SLACK);
            b[..len].fill(n);
            b[len..].fill(0xEE);
            (b, 4096 + u64::from(n) * len as u64)
        };
        for direct in [true, false] {
            let path = dir.path().join(format!("blocks-{direct}"));
            let file = File::create(&path).unwrap();
            let mut out = BlockOut {
                file: file.try_clone().unwrap(),
                direct: if direct { open_direct(&path) } else { None },
                block_len: len,
                since_writeback: 0,
            };
            if direct && out.direct.is_none() {
                eprintln!("no direct I/O on {}: page cache only", dir.path().display());
            }
            // Runs 1-3 and 5, then 0 and 4 (a parent closed late), then 6-7.
            for group in [vec![3, 1, 2, 5], vec![4, 0], vec![7, 6]] {
                let mut blocks: Vec<_> = group.into_iter().map(block).collect();
                blocks.sort_unstable_by_key(|b| b.1);
                out.write(&blocks).unwrap();
            }
            drop(out);
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(bytes.len(), 4096 + 8 * len);
            assert!(
                bytes[..4096].iter().all(|&b| b == 0),
                "header area untouched"
            );
            for n in 0..8u8 {
                let at = 4096 + usize::from(n) * len;
                assert!(
                    bytes[at..at + len].iter().all(|&b| b == n),
                    "block {n} (direct {direct})"
                );
            }
        }
    }

    #[test]
    fn an_unfinished_history_with_an_io_thread_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.ht");
        let mut w = HistoryTreeWriter::create(&path, config()).unwrap();
        w.io_after = 0;
        for i in intervals() {
            w.insert(i).unwrap();
        }
        assert!(w.io.is_some());
        drop(w);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "left: {left:?}");
    }
}
