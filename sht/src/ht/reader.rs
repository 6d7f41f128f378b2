//! `HistoryTreeReader`: opens a finished `.ht` file (ours or Trace Compass's),
//! memory-mapped, decoding nodes lazily into a bounded cache.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use memmap2::{Mmap, UncheckedAdvice};

use super::attributes::decode_attribute_tree;
use super::format::{self, header as hf, node as nf};
use super::node::{self, Node, RawInterval};
use super::packed::PackedNode;
use super::query::{self, NodeSource};
use crate::attribute::AttributeTree;
use crate::condition::{QuarkSet, TimeCondition};
use crate::error::{Error, Result};
use crate::value::Interval;
use crate::Quark;

/// Bytes of decoded nodes a reader keeps by default. A packed node costs about 29
/// bytes per interval, so this holds the whole tree of a 5-million-interval history
/// (Trace Compass needs about 3 GB to build and query the same one).
pub const DEFAULT_NODE_CACHE_BYTES: usize = 192 << 20;

/// The file header of a history file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HtHeader {
    pub magic: i32,
    pub file_version: i32,
    pub provider_version: i32,
    pub block_size: i32,
    pub max_children: i32,
    pub node_count: i32,
    pub root_seq: i32,
    pub start: i64,
}

/// Least-recently-used cache of packed nodes, bounded in bytes, keyed by
/// (reader, node): readers opened with [`HistoryTreeReader::open`] share one, so
/// the decoded nodes of all the histories a process holds stay within one budget.
struct NodeCache {
    budget: usize,
    used: usize,
    clock: u64,
    entries: HashMap<(u64, i32), (Arc<PackedNode>, u64)>,
    /// tick → key, least recently used first.
    order: BTreeMap<u64, (u64, i32)>,
}

impl NodeCache {
    fn new(budget: usize) -> Self {
        NodeCache {
            budget,
            used: 0,
            clock: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    fn get(&mut self, key: (u64, i32)) -> Option<Arc<PackedNode>> {
        self.clock += 1;
        let clock = self.clock;
        let (n, used) = self.entries.get_mut(&key)?;
        self.order.remove(used);
        *used = clock;
        self.order.insert(clock, key);
        Some(n.clone())
    }

    fn put(&mut self, key: (u64, i32), node: Arc<PackedNode>) {
        let size = node.heap_size();
        if let Some((old, tick)) = self.entries.remove(&key) {
            self.order.remove(&tick);
            self.used -= old.heap_size();
        }
        while self.used + size > self.budget {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            if let Some((n, _)) = self.entries.remove(&victim) {
                self.used -= n.heap_size();
            }
        }
        self.clock += 1;
        self.order.insert(self.clock, key);
        self.entries.insert(key, (node, self.clock));
        self.used += size;
    }

    /// Forgets a reader's nodes (they hold its file mapping).
    fn remove_reader(&mut self, reader: u64) {
        let NodeCache {
            entries,
            order,
            used,
            ..
        } = self;
        entries.retain(|k, (n, tick)| {
            let keep = k.0 != reader;
            if !keep {
                order.remove(tick);
                *used -= n.heap_size();
            }
            keep
        });
    }
}

/// The node cache shared by readers opened with the default budget.
fn shared_cache() -> &'static Arc<Mutex<NodeCache>> {
    static SHARED: OnceLock<Arc<Mutex<NodeCache>>> = OnceLock::new();
    SHARED.get_or_init(|| Arc::new(Mutex::new(NodeCache::new(DEFAULT_NODE_CACHE_BYTES))))
}

/// Bytes of blocks a reader decodes between two releases of its mapped pages:
/// decoded nodes live in the cache, so the pages they came from need not stay
/// resident (they are read again from the page cache if a value needs them).
const RELEASE_MAPPED_EVERY: u64 = 64 << 20;

/// A finished history file opened for queries.
pub struct HistoryTreeReader {
    path: PathBuf,
    map: Arc<Mmap>,
    header: HtHeader,
    end: i64,
    attributes: Arc<AttributeTree>,
    cache: Arc<Mutex<NodeCache>>,
    /// This reader's key in the cache.
    uid: u64,
    /// Bytes of blocks decoded since the mapped pages were last released.
    decoded: AtomicU64,
}

impl Drop for HistoryTreeReader {
    fn drop(&mut self) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove_reader(self.uid);
    }
}

fn le_i32(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

impl HistoryTreeReader {
    /// Opens `path`, checking it as Trace Compass does. With `expected_provider_version`
    /// set, a file of another provider version is refused.
    /// Decoded nodes go to the process-wide cache of [`DEFAULT_NODE_CACHE_BYTES`].
    pub fn open(path: impl AsRef<Path>, expected_provider_version: Option<i32>) -> Result<Self> {
        Self::open_in(path, expected_provider_version, shared_cache().clone())
    }

    /// As [`Self::open`], with a cache of its own of at most `cache_bytes`.
    pub fn open_with_cache(
        path: impl AsRef<Path>,
        expected_provider_version: Option<i32>,
        cache_bytes: usize,
    ) -> Result<Self> {
        let cache = Arc::new(Mutex::new(NodeCache::new(cache_bytes)));
        Self::open_in(path, expected_provider_version, cache)
    }

    fn open_in(
        path: impl AsRef<Path>,
        expected_provider_version: Option<i32>,
        cache: Arc<Mutex<NodeCache>>,
    ) -> Result<Self> {
        static NEXT_UID: AtomicU64 = AtomicU64::new(1);
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        if len == 0 {
            return Err(Error::corrupt(&path, 0, "empty file"));
        }
        // SAFETY: the map is read-only; a history file is not modified once renamed
        // into place. Every read below is bounds-checked against the map's length.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        let b = &map[..];
        if b.len() < 4 || le_i32(b, hf::MAGIC) != format::HISTORY_FILE_MAGIC {
            return Err(Error::corrupt(
                &path,
                0,
                "not a history tree file (wrong magic number)",
            ));
        }
        if (b.len() as u64) < format::TREE_HEADER_SIZE {
            return Err(Error::corrupt(
                &path,
                b.len() as u64,
                format!(
                    "file ends inside its {}-byte header",
                    format::TREE_HEADER_SIZE
                ),
            ));
        }
        let header = HtHeader {
            magic: le_i32(b, hf::MAGIC),
            file_version: le_i32(b, hf::FILE_VERSION),
            provider_version: le_i32(b, hf::PROVIDER_VERSION),
            block_size: le_i32(b, hf::BLOCK_SIZE),
            max_children: le_i32(b, hf::MAX_CHILDREN),
            node_count: le_i32(b, hf::NODE_COUNT),
            root_seq: le_i32(b, hf::ROOT_SEQ),
            start: i64::from_le_bytes(b[hf::START_TIME..hf::START_TIME + 8].try_into().unwrap()),
        };
        let bad = |at: usize, what: String| Error::corrupt(&path, at as u64, what);
        if header.file_version != format::FILE_VERSION {
            return Err(bad(
                hf::FILE_VERSION,
                format!(
                    "file version {} is not supported (only {})",
                    header.file_version,
                    format::FILE_VERSION
                ),
            ));
        }
        if let Some(expected) = expected_provider_version {
            if expected != format::IGNORE_PROVIDER_VERSION && expected != header.provider_version {
                return Err(Error::ProviderVersion {
                    path,
                    found: header.provider_version,
                    expected,
                });
            }
        }
        if header.block_size < format::MIN_BLOCK_SIZE {
            return Err(bad(
                hf::BLOCK_SIZE,
                format!("invalid block size {}", header.block_size),
            ));
        }
        let m = header.max_children;
        if m < 1
            || format::core_fixed_header_size(m as usize) + 18 * m as usize
                > header.block_size as usize
        {
            return Err(bad(hf::MAX_CHILDREN, format!("invalid max children {m}")));
        }
        if header.node_count < 1 {
            return Err(bad(
                hf::NODE_COUNT,
                format!("invalid node count {}", header.node_count),
            ));
        }
        if header.root_seq < 0 || header.root_seq >= header.node_count {
            return Err(bad(
                hf::ROOT_SEQ,
                format!(
                    "root node {} outside 0..{}",
                    header.root_seq, header.node_count
                ),
            ));
        }
        let section_at = format::node_offset(header.node_count, header.block_size);
        if section_at > b.len() as u64 {
            return Err(Error::corrupt(
                &path,
                b.len() as u64,
                format!(
                    "file of {} bytes is too short for {} nodes of {} bytes",
                    b.len(),
                    header.node_count,
                    header.block_size
                ),
            ));
        }
        let attributes = decode_attribute_tree(&b[section_at as usize..], &path, section_at)?;
        let mut reader = HistoryTreeReader {
            path,
            map: Arc::new(map),
            header,
            end: header.start,
            attributes: Arc::new(attributes),
            cache,
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            decoded: AtomicU64::new(0),
        };
        let root = reader.node(header.root_seq)?;
        let root = root.header;
        if root.start != header.start {
            return Err(Error::corrupt(
                &reader.path,
                format::node_offset(header.root_seq, header.block_size) + nf::START as u64,
                format!(
                    "root node starts at {} but the header says {}",
                    root.start, header.start
                ),
            ));
        }
        if root.parent_seq != -1 {
            return Err(reader.broken_link(-1, header.root_seq));
        }
        reader.end = root.end;
        Ok(reader)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &HtHeader {
        &self.header
    }

    pub fn start_time(&self) -> i64 {
        self.header.start
    }

    /// History end time: the root node's end.
    pub fn end_time(&self) -> i64 {
        self.end
    }

    pub fn attributes(&self) -> &AttributeTree {
        &self.attributes
    }

    /// The attribute tree, shared rather than copied.
    pub fn shared_attributes(&self) -> Arc<AttributeTree> {
        self.attributes.clone()
    }

    pub fn file_size(&self) -> u64 {
        self.map.len() as u64
    }

    /// Node `seq` in packed form (cached).
    pub fn node(&self, seq: i32) -> Result<Arc<PackedNode>> {
        if let Some(n) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get((self.uid, seq))
        {
            return Ok(n);
        }
        let at = self.block_at(seq)?;
        let n = PackedNode::decode(
            self.map.clone(),
            at,
            self.header.block_size as usize,
            self.header.max_children as usize,
            &self.path,
        )?;
        self.check_node(seq, at, n.header.seq, &n.children)?;
        let n = Arc::new(n);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put((self.uid, seq), n.clone());
        self.note_decoded();
        Ok(n)
    }

    /// Counts a decoded block; past [`RELEASE_MAPPED_EVERY`], drops the mapped
    /// pages from the process (not from the page cache), so resident memory is
    /// the node cache plus a bounded window of the file rather than all of it.
    fn note_decoded(&self) {
        let block = self.header.block_size as u64;
        let before = self.decoded.fetch_add(block, Ordering::Relaxed);
        if before / RELEASE_MAPPED_EVERY != (before + block) / RELEASE_MAPPED_EVERY {
            // SAFETY: the mapping is read-only and of a file not modified while
            // open: after MADV_DONTNEED a page reads the same bytes again.
            let _ = unsafe { self.map.unchecked_advise(UncheckedAdvice::DontNeed) };
        }
    }

    /// Bytes of decoded nodes held by the cache this reader uses (shared by
    /// default), and its budget.
    pub fn cache_usage(&self) -> (usize, usize) {
        let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        (c.used, c.budget)
    }

    fn block_at(&self, seq: i32) -> Result<usize> {
        if seq < 0 || seq >= self.header.node_count {
            return Err(Error::corrupt(
                &self.path,
                0,
                format!(
                    "reference to node {seq}, the file has {}",
                    self.header.node_count
                ),
            ));
        }
        Ok(format::node_offset(seq, self.header.block_size) as usize)
    }

    fn block(&self, at: usize) -> &[u8] {
        &self.map[at..at + self.header.block_size as usize]
    }

    fn check_node(
        &self,
        seq: i32,
        at: usize,
        found: i32,
        children: &[node::ChildEntry],
    ) -> Result<()> {
        if found != seq {
            return Err(Error::corrupt(
                &self.path,
                (at + nf::SEQ) as u64,
                format!("node at the place of {seq} says it is node {found}"),
            ));
        }
        if children.windows(2).any(|w| w[0].seq >= w[1].seq) {
            return Err(Error::corrupt(
                &self.path,
                (at + nf::CORE_ARRAYS) as u64,
                "child sequence numbers are not increasing",
            ));
        }
        Ok(())
    }

    /// Decodes node `seq` fully, values included, without touching the cache.
    pub fn decode_node(&self, seq: i32) -> Result<Node> {
        let at = self.block_at(seq)?;
        let n = node::decode(
            self.block(at),
            self.header.max_children as usize,
            &self.path,
            at as u64,
        )?;
        self.check_node(seq, at, n.seq, &n.children)?;
        Ok(n)
    }

    /// Every stored interval, node by node in sequence order, values borrowed from
    /// the file: the fastest way to read a whole history.
    pub fn scan_raw<'a>(&'a self, mut visit: impl FnMut(&RawInterval<'a>)) -> Result<u64> {
        let mut n = 0;
        let m = self.header.max_children as usize;
        for seq in 0..self.header.node_count {
            let at = self.block_at(seq)?;
            let block = self.block(at);
            let layout = node::decode_layout(block, m, &self.path, at as u64)?;
            self.check_node(seq, at, layout.header.seq, &layout.children)?;
            node::for_each_interval(block, &layout, &self.path, at as u64, |r| visit(&r))?;
            n += layout.header.interval_count as u64;
        }
        Ok(n)
    }

    /// Every stored interval, node by node, as owned intervals.
    pub fn scan(&self, visit: &mut dyn FnMut(&Interval)) -> Result<u64> {
        self.scan_raw(|r| {
            visit(&Interval {
                start: r.start,
                end: r.end,
                quark: r.quark,
                value: r.value.to_value(),
            })
        })
    }

    /// The interval of `quark` at `t`, `None` if the file has none.
    pub fn query_single(&self, t: i64, quark: Quark) -> Result<Option<Interval>> {
        query::single(self, t, quark)
    }

    pub fn query_full(&self, t: i64, out: &mut [Interval]) -> Result<()> {
        query::full(self, t, out)
    }

    pub fn query_range(
        &self,
        quarks: &QuarkSet,
        times: &TimeCondition,
        visit: &mut dyn FnMut(&Interval),
    ) -> Result<()> {
        query::range(self, quarks, times, visit)
    }
}

impl NodeSource for HistoryTreeReader {
    type Node = PackedNode;

    fn root_seq(&self) -> i32 {
        self.header.root_seq
    }

    fn with_node<R>(&self, seq: i32, f: impl FnOnce(&PackedNode) -> R) -> Result<R> {
        let node = self.node(seq)?;
        Ok(f(&node))
    }

    fn broken_link(&self, parent: i32, child: i32) -> Error {
        Error::corrupt(
            &self.path,
            format::node_offset(child, self.header.block_size) + nf::PARENT_SEQ as u64,
            format!("node {child} is reached from node {parent} but does not name it as parent"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ht::writer::{HistoryTreeWriter, HtConfig};
    use crate::value::StateValue;

    /// 40 attributes, each changing every 10 ns for 20,000 ns, in 4 KiB blocks.
    fn history(dir: &Path) -> (PathBuf, AttributeTree) {
        let path = dir.join("h.ht");
        let mut tree = AttributeTree::new();
        for q in 0..40 {
            tree.quark_absolute_and_add(&[format!("a{q}")]).unwrap();
        }
        let config = HtConfig {
            block_size: 4096,
            max_children: 8,
            ..HtConfig::new(0, 1)
        };
        let mut w = HistoryTreeWriter::create(&path, config).unwrap();
        for t in (0..20_000).step_by(10) {
            for q in 0..40 {
                w.insert(Interval::new(
                    t,
                    t + 9,
                    q,
                    StateValue::Int((t / 10 + q as i64) as i32),
                ))
                .unwrap();
            }
        }
        w.finish(20_000, &tree).unwrap();
        (path, tree)
    }

    #[test]
    fn node_cache_stays_within_its_budget_and_answers_stay_right() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = history(dir.path());
        let budget = 64 << 10;
        let r = HistoryTreeReader::open_with_cache(&path, None, budget).unwrap();
        assert!(r.header().node_count > 100, "{:?}", r.header());
        for t in (5..20_000).step_by(97) {
            for q in [0, 17, 39] {
                let i = r.query_single(t, q).unwrap().unwrap();
                assert_eq!((i.start, i.end), (t / 10 * 10, t / 10 * 10 + 9));
                assert_eq!(i.value, StateValue::Int((t / 10 + q as i64) as i32));
            }
            let (used, cap) = r.cache_usage();
            assert!(used <= cap && cap == budget, "{used} > {cap}");
        }
        // Evicted: the cache holds far fewer nodes than were decoded.
        let held = r.cache.lock().unwrap().entries.len();
        assert!(held < r.header().node_count as usize / 2, "{held}");
        // A reader's nodes leave the shared cache with it.
        let shared = HistoryTreeReader::open(&path, None).unwrap();
        shared.query_single(100, 3).unwrap().unwrap();
        let uid = shared.uid;
        let count = |uid| {
            shared_cache()
                .lock()
                .unwrap()
                .entries
                .keys()
                .filter(|k| k.0 == uid)
                .count()
        };
        assert!(count(uid) > 0);
        drop(shared);
        assert_eq!(count(uid), 0);
    }

    #[test]
    fn releasing_mapped_pages_keeps_answers() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = history(dir.path());
        let r = HistoryTreeReader::open_with_cache(&path, None, 0).unwrap();
        // A zero budget decodes every node at each visit: many releases.
        for _ in 0..3 {
            for t in (0..20_000).step_by(13) {
                let i = r.query_single(t, 21).unwrap().unwrap();
                assert_eq!(i.value, StateValue::Int((t / 10 + 21) as i32));
            }
        }
        assert!(r.decoded.load(Ordering::Relaxed) > RELEASE_MAPPED_EVERY);
    }
}
