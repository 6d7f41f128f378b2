//! Pattern segment stores: in memory, or spilled to a file when large.
//!
//! Trace Compass keeps a pattern's segments in a segment store (in memory, or a
//! history-tree-based `.dat` file) and its views ask it for all segments in start
//! order, for the segments intersecting a time or a time range, and for its size.
//! [`SegmentStore`] offers the same queries over either a sorted `Vec` or a
//! [`SegmentFile`]; the file is our own layout (below), not Trace Compass's.
//!
//! File layout (all integers little-endian):
//! ```text
//! header (48 bytes):
//!   magic     8  b"SXSEGS\0\x01"
//!   count     u64  number of segments
//!   blocks    u64  number of blocks
//!   index_at  u64  offset of the block index
//!   file_len  u64  total file length (detects truncation)
//!   reserved  u64  0
//! blocks: each holds up to BLOCK_SEGMENTS segments, sorted by (start, end, name):
//!   segment: start i64, end i64, name str, n_fields u32, n_fields x (name str, value)
//!   str: u32 length + UTF-8 bytes
//!   value: tag u8 (0 null, 1 int i32, 2 long i64, 3 double f64, 4 string str,
//!          5 custom: type i8 + u32 length + bytes)
//! index (at index_at): blocks x (offset u64, length u64, count u64,
//!   first_start i64, last_start i64, max_end i64)
//! ```
//! A range query reads only the index (kept in memory) and the blocks whose start
//! range and maximum end can intersect the query.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sht::value::CustomValue;
use sht::StateValue;

use crate::runtime::Segment;

const MAGIC: &[u8; 8] = b"SXSEGS\0\x01";
const HEADER_LEN: u64 = 48;
const INDEX_ENTRY_LEN: u64 = 48;
/// Segments per block: small enough that a point query reads little, large enough
/// that the index stays a small fraction of the file.
pub const BLOCK_SEGMENTS: usize = 256;
/// Default number of segments above which a history-tree build spills its store.
pub const DEFAULT_SPILL_THRESHOLD: usize = 100_000;

/// Why a segment file cannot be written or read. Every variant names the file;
/// content errors also give the byte offset.
#[derive(Debug, thiserror::Error)]
pub enum SegmentStoreError {
    #[error("{}: segment file: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: segment file: at offset {offset}: {message}", file.display())]
    Corrupt {
        file: PathBuf,
        offset: u64,
        message: String,
    },
}

/// Canonical segment order: start, end, name, then content (for ties).
pub fn sort_segments(s: &mut [Segment]) {
    s.sort_by(segment_order);
}

/// A pattern's segments, sorted by start; in memory or in a [`SegmentFile`].
#[derive(Debug)]
pub enum SegmentStore {
    Memory(Vec<Segment>),
    File(SegmentFile),
}

impl Default for SegmentStore {
    fn default() -> Self {
        SegmentStore::Memory(Vec::new())
    }
}

impl SegmentStore {
    /// Sorts `segments`; if there are more than `threshold`, writes them to `path`
    /// (under a temporary name, renamed when complete) and returns the file store.
    /// Otherwise removes any stale file at `path` and keeps them in memory.
    pub fn spill_if_large(
        mut segments: Vec<Segment>,
        threshold: usize,
        path: &Path,
    ) -> Result<SegmentStore, SegmentStoreError> {
        sort_segments(&mut segments);
        if segments.len() <= threshold {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(SegmentStoreError::Io {
                        file: path.to_path_buf(),
                        source,
                    })
                }
            }
            return Ok(SegmentStore::Memory(segments));
        }
        write_segment_file(&segments, path)?;
        drop(segments);
        Ok(SegmentStore::File(SegmentFile::open(path)?))
    }

    pub fn len(&self) -> usize {
        match self {
            SegmentStore::Memory(v) => v.len(),
            SegmentStore::File(f) => f.count as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file backing this store, if it spilled.
    pub fn file_path(&self) -> Option<&Path> {
        match self {
            SegmentStore::Memory(_) => None,
            SegmentStore::File(f) => Some(&f.path),
        }
    }

    /// Every segment, in start order.
    pub fn all(&self) -> Result<Vec<Segment>, SegmentStoreError> {
        match self {
            SegmentStore::Memory(v) => Ok(v.clone()),
            SegmentStore::File(f) => f.all(),
        }
    }

    /// Segments with `start <= to && end >= from`, in start order (Trace Compass
    /// `getIntersectingElements(start, end)`).
    pub fn intersecting(&self, from: i64, to: i64) -> Result<Vec<Segment>, SegmentStoreError> {
        match self {
            SegmentStore::Memory(v) => {
                // Sorted by start: nothing after the first start > to can intersect.
                let stop = v.partition_point(|s| s.start <= to);
                Ok(v[..stop]
                    .iter()
                    .filter(|s| s.end >= from)
                    .cloned()
                    .collect())
            }
            SegmentStore::File(f) => f.intersecting(from, to),
        }
    }

    /// [`SegmentStore::intersecting`] in another order (Trace Compass's
    /// `getIntersectingElements(start, end, comparator)`, e.g. by end or duration).
    pub fn intersecting_sorted_by(
        &self,
        from: i64,
        to: i64,
        order: impl FnMut(&Segment, &Segment) -> std::cmp::Ordering,
    ) -> Result<Vec<Segment>, SegmentStoreError> {
        let mut v = self.intersecting(from, to)?;
        v.sort_by(order);
        Ok(v)
    }

    /// Whether the store holds a segment equal to `s`; reads only the blocks that
    /// can hold segments starting at `s.start`.
    pub fn contains(&self, s: &Segment) -> Result<bool, SegmentStoreError> {
        Ok(self.at(s.start)?.iter().any(|x| x == s))
    }

    /// Segments containing time `t` (Trace Compass `getIntersectingElements(position)`).
    pub fn at(&self, t: i64) -> Result<Vec<Segment>, SegmentStoreError> {
        self.intersecting(t, t)
    }
}

#[derive(Clone, Copy, Debug)]
struct BlockIndex {
    offset: u64,
    length: u64,
    count: u64,
    first_start: i64,
    last_start: i64,
    max_end: i64,
}

/// An open segment file: header and block index in memory, blocks read on demand.
#[derive(Debug)]
pub struct SegmentFile {
    path: PathBuf,
    file: File,
    count: u64,
    index: Vec<BlockIndex>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &StateValue) {
    match v {
        StateValue::Null => out.push(0),
        StateValue::Int(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
        }
        StateValue::Long(l) => {
            out.push(2);
            out.extend_from_slice(&l.to_le_bytes());
        }
        StateValue::Double(d) => {
            out.push(3);
            out.extend_from_slice(&d.to_le_bytes());
        }
        StateValue::String(s) => {
            out.push(4);
            put_str(out, s);
        }
        StateValue::Custom(c) => {
            out.push(5);
            out.push(c.type_id as u8);
            out.extend_from_slice(&(c.bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(&c.bytes);
        }
    }
}

fn encode_segment(out: &mut Vec<u8>, s: &Segment) {
    out.extend_from_slice(&s.start.to_le_bytes());
    out.extend_from_slice(&s.end.to_le_bytes());
    put_str(out, &s.name);
    out.extend_from_slice(&(s.content.len() as u32).to_le_bytes());
    for (n, v) in &s.content {
        put_str(out, n);
        put_value(out, v);
    }
}

/// Compares segments in the canonical order of [`sort_segments`].
pub fn segment_order(a: &Segment, b: &Segment) -> std::cmp::Ordering {
    (a.start, a.end, &a.name)
        .cmp(&(b.start, b.end, &b.name))
        .then_with(|| format!("{:?}", a.content).cmp(&format!("{:?}", b.content)))
}

/// Writes a segment file one segment at a time (segments must come in start
/// order), under `path.tmp`, renamed to `path` by [`SegmentWriter::finish`].
pub struct SegmentWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    at: u64,
    count: u64,
    index: Vec<BlockIndex>,
    block: Vec<u8>,
    block_count: u64,
    block_first: i64,
    block_last: i64,
    block_max_end: i64,
}

impl SegmentWriter {
    pub fn create(path: &Path) -> Result<SegmentWriter, SegmentStoreError> {
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let file = File::create(&tmp).map_err(|source| SegmentStoreError::Io {
            file: tmp.clone(),
            source,
        })?;
        let mut w = SegmentWriter {
            path: path.to_path_buf(),
            tmp,
            out: BufWriter::new(file),
            at: HEADER_LEN,
            count: 0,
            index: Vec::new(),
            block: Vec::new(),
            block_count: 0,
            block_first: 0,
            block_last: 0,
            block_max_end: i64::MIN,
        };
        // The header is written last, when the counts are known.
        w.write(&[0u8; HEADER_LEN as usize])?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), SegmentStoreError> {
        self.out
            .write_all(bytes)
            .map_err(|source| SegmentStoreError::Io {
                file: self.tmp.clone(),
                source,
            })
    }

    pub fn push(&mut self, s: &Segment) -> Result<(), SegmentStoreError> {
        if self.count > 0 && s.start < self.block_last {
            return Err(SegmentStoreError::Corrupt {
                file: self.tmp.clone(),
                offset: self.at + self.block.len() as u64,
                message: format!(
                    "segment starting at {} written after one starting at {}",
                    s.start, self.block_last
                ),
            });
        }
        if self.block_count == 0 {
            self.block_first = s.start;
            self.block_max_end = s.end;
        }
        encode_segment(&mut self.block, s);
        self.block_count += 1;
        self.block_last = s.start;
        self.block_max_end = self.block_max_end.max(s.end);
        self.count += 1;
        if self.block_count as usize == BLOCK_SEGMENTS {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), SegmentStoreError> {
        if self.block_count == 0 {
            return Ok(());
        }
        let block = std::mem::take(&mut self.block);
        self.write(&block)?;
        self.index.push(BlockIndex {
            offset: self.at,
            length: block.len() as u64,
            count: self.block_count,
            first_start: self.block_first,
            last_start: self.block_last,
            max_end: self.block_max_end,
        });
        self.at += block.len() as u64;
        self.block = block;
        self.block.clear();
        self.block_count = 0;
        Ok(())
    }

    /// Writes the index and header, and renames the file into place.
    pub fn finish(mut self) -> Result<(), SegmentStoreError> {
        self.flush_block()?;
        let index_at = self.at;
        let mut raw = Vec::with_capacity(self.index.len() * INDEX_ENTRY_LEN as usize);
        for b in &self.index {
            for v in [
                b.offset,
                b.length,
                b.count,
                b.first_start as u64,
                b.last_start as u64,
                b.max_end as u64,
            ] {
                raw.extend_from_slice(&v.to_le_bytes());
            }
        }
        self.write(&raw)?;
        let file_len = index_at + raw.len() as u64;
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        for v in [self.count, self.index.len() as u64, index_at, file_len, 0] {
            header.extend_from_slice(&v.to_le_bytes());
        }
        let tmp = self.tmp.clone();
        let io = |source| SegmentStoreError::Io {
            file: tmp.clone(),
            source,
        };
        let file = self.out.into_inner().map_err(|e| io(e.into_error()))?;
        file.write_all_at(&header, 0).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|source| SegmentStoreError::Io {
            file: self.path.clone(),
            source,
        })
    }
}

/// Writes `segments` (already in canonical order) to `path` via `path.tmp` + rename.
pub fn write_segment_file(segments: &[Segment], path: &Path) -> Result<(), SegmentStoreError> {
    let mut w = SegmentWriter::create(path)?;
    for s in segments {
        w.push(s)?;
    }
    w.finish()
}

/// Collects segments as a pattern emits them (in end order, not start order),
/// keeping at most `threshold` in memory: each full batch is sorted and written
/// to a run file beside `path`; [`SegmentSpiller::finish`] merges the runs into
/// the segment file at `path`. A store that never exceeds the threshold stays in
/// memory.
pub struct SegmentSpiller {
    path: PathBuf,
    threshold: usize,
    pending: Vec<Segment>,
    runs: Vec<PathBuf>,
}

impl SegmentSpiller {
    pub fn new(path: &Path, threshold: usize) -> SegmentSpiller {
        SegmentSpiller {
            path: path.to_path_buf(),
            threshold: threshold.max(1),
            pending: Vec::new(),
            runs: Vec::new(),
        }
    }

    pub fn push(&mut self, s: Segment) -> Result<(), SegmentStoreError> {
        self.pending.push(s);
        if self.pending.len() > self.threshold {
            self.write_run()?;
        }
        Ok(())
    }

    fn write_run(&mut self) -> Result<(), SegmentStoreError> {
        let mut run = std::mem::take(&mut self.pending);
        sort_segments(&mut run);
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".run{}", self.runs.len()));
        let path = PathBuf::from(name);
        write_segment_file(&run, &path)?;
        self.runs.push(path);
        Ok(())
    }

    /// The finished store: in memory if no run was written, else the merged file.
    pub fn finish(mut self) -> Result<SegmentStore, SegmentStoreError> {
        if self.runs.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            return SegmentStore::spill_if_large(pending, self.threshold, &self.path);
        }
        if !self.pending.is_empty() {
            self.write_run()?;
        }
        // The run files are removed when `self` drops.
        self.merge_runs()?;
        Ok(SegmentStore::File(SegmentFile::open(&self.path)?))
    }

    /// Number of run files written so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// K-way merge of the sorted runs, holding one block per run in memory.
    fn merge_runs(&self) -> Result<(), SegmentStoreError> {
        let files = self
            .runs
            .iter()
            .map(|r| SegmentFile::open(r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cursors: Vec<(usize, std::collections::VecDeque<Segment>)> =
            files.iter().map(|_| (0, Default::default())).collect();
        let mut out = SegmentWriter::create(&self.path)?;
        loop {
            // Refill empty cursors from their next block.
            for (f, (next_block, buf)) in files.iter().zip(cursors.iter_mut()) {
                if buf.is_empty() && *next_block < f.index.len() {
                    let mut v = Vec::new();
                    f.read_block(&f.index[*next_block], &mut v)?;
                    *next_block += 1;
                    buf.extend(v);
                }
            }
            let best = cursors
                .iter()
                .enumerate()
                .filter_map(|(i, (_, buf))| buf.front().map(|s| (i, s)))
                .min_by(|a, b| segment_order(a.1, b.1))
                .map(|(i, _)| i);
            let Some(i) = best else { break };
            let s = cursors[i].1.pop_front().expect("non-empty");
            out.push(&s)?;
        }
        out.finish()
    }
}

impl Drop for SegmentSpiller {
    fn drop(&mut self) {
        for r in &self.runs {
            let _ = std::fs::remove_file(r);
        }
    }
}

/// A cursor over bytes read from `base` in the file, with offset-naming errors.
struct Reader<'a> {
    path: &'a Path,
    base: u64,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, message: impl Into<String>) -> SegmentStoreError {
        SegmentStoreError::Corrupt {
            file: self.path.to_path_buf(),
            offset: self.base + self.pos as u64,
            message: message.into(),
        }
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], SegmentStoreError> {
        if self.bytes.len() - self.pos < n {
            return Err(self.err(format!("{what}: needs {n} bytes, block ends")));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, SegmentStoreError> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &str) -> Result<u32, SegmentStoreError> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> Result<u64, SegmentStoreError> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    fn i64(&mut self, what: &str) -> Result<i64, SegmentStoreError> {
        Ok(self.u64(what)? as i64)
    }
    fn string(&mut self, what: &str) -> Result<String, SegmentStoreError> {
        let at = self.pos;
        let n = self.u32(what)? as usize;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| {
            self.pos = at;
            self.err(format!("{what}: not UTF-8"))
        })
    }
    fn value(&mut self) -> Result<StateValue, SegmentStoreError> {
        let at = self.pos;
        Ok(match self.u8("value tag")? {
            0 => StateValue::Null,
            1 => StateValue::Int(i32::from_le_bytes(
                self.take(4, "int value")?.try_into().unwrap(),
            )),
            2 => StateValue::Long(self.i64("long value")?),
            3 => StateValue::Double(f64::from_le_bytes(
                self.take(8, "double value")?.try_into().unwrap(),
            )),
            4 => StateValue::string(&self.string("string value")?),
            5 => {
                let type_id = self.u8("custom type")? as i8;
                let n = self.u32("custom length")? as usize;
                let bytes: Arc<[u8]> = self.take(n, "custom bytes")?.into();
                StateValue::Custom(CustomValue { type_id, bytes })
            }
            t => {
                self.pos = at;
                return Err(self.err(format!("unknown value tag {t}")));
            }
        })
    }
    fn segment(&mut self) -> Result<Segment, SegmentStoreError> {
        let start = self.i64("segment start")?;
        let at = self.pos;
        let end = self.i64("segment end")?;
        if end < start {
            self.pos = at;
            return Err(self.err(format!("segment end {end} before start {start}")));
        }
        let name = self.string("segment name")?;
        let n = self.u32("field count")?;
        let mut content = Vec::new();
        for _ in 0..n {
            let fname = self.string("field name")?;
            content.push((fname, self.value()?));
        }
        Ok(Segment {
            start,
            end,
            name,
            content,
        })
    }
}

impl SegmentFile {
    /// Opens a segment file, checking its header and index against the file length.
    pub fn open(path: &Path) -> Result<SegmentFile, SegmentStoreError> {
        let io = |source| SegmentStoreError::Io {
            file: path.to_path_buf(),
            source,
        };
        let corrupt = |offset: u64, message: String| SegmentStoreError::Corrupt {
            file: path.to_path_buf(),
            offset,
            message,
        };
        let file = File::open(path).map_err(io)?;
        let actual_len = file.metadata().map_err(io)?.len();
        if actual_len < HEADER_LEN {
            return Err(corrupt(
                actual_len,
                format!("file is {actual_len} bytes, shorter than the {HEADER_LEN}-byte header"),
            ));
        }
        let mut header = [0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut header, 0).map_err(io)?;
        let mut r = Reader {
            path,
            base: 0,
            bytes: &header,
            pos: 0,
        };
        if r.take(8, "magic")? != MAGIC {
            return Err(corrupt(0, "bad magic: not a Sextant segment file".into()));
        }
        let count = r.u64("count")?;
        let blocks = r.u64("block count")?;
        let index_at = r.u64("index offset")?;
        let file_len = r.u64("file length")?;
        if file_len != actual_len {
            return Err(corrupt(
                actual_len.min(file_len),
                format!("header says {file_len} bytes, file has {actual_len} (truncated?)"),
            ));
        }
        let index_len = blocks.checked_mul(INDEX_ENTRY_LEN);
        if index_at < HEADER_LEN
            || index_len.and_then(|l| l.checked_add(index_at)) != Some(file_len)
        {
            return Err(corrupt(
                24,
                format!("index of {blocks} blocks at {index_at} does not end the file"),
            ));
        }
        let mut raw = vec![0u8; index_len.unwrap_or(0) as usize];
        file.read_exact_at(&mut raw, index_at).map_err(io)?;
        let mut r = Reader {
            path,
            base: index_at,
            bytes: &raw,
            pos: 0,
        };
        let mut index = Vec::with_capacity(blocks as usize);
        let mut next = HEADER_LEN;
        let mut total = 0u64;
        for _ in 0..blocks {
            let entry_at = index_at + r.pos as u64;
            let b = BlockIndex {
                offset: r.u64("block offset")?,
                length: r.u64("block length")?,
                count: r.u64("block count")?,
                first_start: r.i64("block first start")?,
                last_start: r.i64("block last start")?,
                max_end: r.i64("block max end")?,
            };
            let prev_last = index.last().map(|p: &BlockIndex| p.last_start);
            if b.offset != next
                || b.offset.checked_add(b.length) > Some(index_at)
                || b.count == 0
                // start, end, name length, field count: 24 bytes at least per segment.
                || b.count.checked_mul(24).is_none_or(|min| min > b.length)
                || b.first_start > b.last_start
                || prev_last.is_some_and(|p| p > b.first_start)
            {
                return Err(corrupt(
                    entry_at,
                    format!(
                        "inconsistent index entry (offset {}, length {}, count {})",
                        b.offset, b.length, b.count
                    ),
                ));
            }
            next = b.offset + b.length;
            total = total.saturating_add(b.count);
            index.push(b);
        }
        if next != index_at || total != count {
            return Err(corrupt(
                index_at,
                format!("blocks hold {total} segments up to {next}, header says {count} up to {index_at}"),
            ));
        }
        Ok(SegmentFile {
            path: path.to_path_buf(),
            file,
            count,
            index,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_block(&self, b: &BlockIndex, out: &mut Vec<Segment>) -> Result<(), SegmentStoreError> {
        let mut bytes = vec![0u8; b.length as usize];
        self.file
            .read_exact_at(&mut bytes, b.offset)
            .map_err(|source| SegmentStoreError::Io {
                file: self.path.clone(),
                source,
            })?;
        let mut r = Reader {
            path: &self.path,
            base: b.offset,
            bytes: &bytes,
            pos: 0,
        };
        for _ in 0..b.count {
            let at = r.pos;
            let s = r.segment()?;
            if s.start < b.first_start || s.start > b.last_start || s.end > b.max_end {
                r.pos = at;
                return Err(r.err("segment outside its block's indexed range"));
            }
            out.push(s);
        }
        if r.pos != bytes.len() {
            return Err(r.err("trailing bytes after the block's last segment"));
        }
        Ok(())
    }

    /// Every segment, in start order.
    pub fn all(&self) -> Result<Vec<Segment>, SegmentStoreError> {
        let mut out = Vec::with_capacity(self.count as usize);
        for b in &self.index {
            self.read_block(b, &mut out)?;
        }
        Ok(out)
    }

    /// Segments with `start <= to && end >= from`; reads only blocks that can hold one.
    pub fn intersecting(&self, from: i64, to: i64) -> Result<Vec<Segment>, SegmentStoreError> {
        let stop = self.index.partition_point(|b| b.first_start <= to);
        let mut out = Vec::new();
        let mut block = Vec::new();
        for b in self.index[..stop].iter().filter(|b| b.max_end >= from) {
            block.clear();
            self.read_block(b, &mut block)?;
            out.extend(block.drain(..).filter(|s| s.start <= to && s.end >= from));
        }
        Ok(out)
    }
}
