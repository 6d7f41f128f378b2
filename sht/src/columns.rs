//! The column index of a finished history (`NAME.ht.cols`): every attribute's
//! intervals stored together, sorted by start, in small blocks with a directory,
//! so that sampling one attribute at many times decodes only the blocks holding
//! those times instead of every tree node overlapping the window.
//!
//! The byte layout is drawn in `docs/ht-cols-format.md`; its offsets are the
//! constants of [`layout`]. An index names the history it was built from (size
//! and a hash of its header, root node and tail): a stale or damaged index is
//! refused with a typed error ([`ColumnsError`]) and the caller falls back to
//! the history tree. [`build`] writes the index with bounded memory (an external
//! sort: sorted runs of at most `run_budget` bytes, then a k-way merge) to a
//! temporary file renamed into place when complete.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::Mmap;

use crate::ht::format::interval as iv;
use crate::ht::node::{self, ValueRef};
use crate::ht::HistoryTreeReader;
use crate::value::{CustomValue, Interval, StateValue};
use crate::Quark;

/// Offsets and sizes of the column index file (all little-endian).
pub mod layout {
    /// `SXTCOLS` and a 0 byte.
    pub const MAGIC: [u8; 8] = *b"SXTCOLS\0";
    pub const VERSION: u32 = 2;
    /// File header, at offset 0.
    pub const HEADER_SIZE: usize = 128;
    pub const H_MAGIC: usize = 0;
    pub const H_VERSION: usize = 8;
    pub const H_FLAGS: usize = 12;
    pub const H_HISTORY_SIZE: usize = 16;
    pub const H_HISTORY_HASH: usize = 24;
    pub const H_QUARK_COUNT: usize = 32;
    pub const H_BLOCK_INTERVALS: usize = 36;
    pub const H_BLOCKS_OFFSET: usize = 40;
    pub const H_TABLE_OFFSET: usize = 48;
    pub const H_BLOCK_COUNT: usize = 56;
    pub const H_DIR_OFFSET: usize = 64;
    pub const H_INTERVAL_COUNT: usize = 72;
    pub const H_FILE_SIZE: usize = 80;
    /// Hash of the block table and the directory.
    pub const H_META_HASH: usize = 88;
    /// Hash of header bytes `0..H_HEADER_HASH`.
    pub const H_HEADER_HASH: usize = 96;
    /// One block table entry: first start i64, last end i64, offset u64,
    /// length u32, interval count u32, hash u64.
    pub const ENTRY_SIZE: usize = 40;
    pub const E_FIRST_START: usize = 0;
    pub const E_LAST_END: usize = 8;
    pub const E_OFFSET: usize = 16;
    pub const E_LEN: usize = 24;
    pub const E_COUNT: usize = 28;
    pub const E_HASH: usize = 32;
    /// Directory entry: the index (u64) of the attribute's first block; entry
    /// `quark_count` closes the last attribute.
    pub const DIR_ENTRY_SIZE: usize = 8;
    /// Default intervals per block.
    pub const DEFAULT_BLOCK_INTERVALS: u32 = 128;
    /// A block starts with a checkpoint count (u8) and that many checkpoints,
    /// one every `CHECKPOINT_EVERY` intervals from the `CHECKPOINT_EVERY`th:
    /// the interval's start (i64) and its offset (u32) in the interval data.
    pub const CHECKPOINT_EVERY: usize = 16;
    pub const CHECKPOINT_SIZE: usize = 12;
}

use layout as l;

/// Why a column index cannot be used (each names the file; the caller then
/// answers from the history tree).
#[derive(Debug, thiserror::Error)]
pub enum ColumnsError {
    #[error("I/O error on {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: truncated: at offset {len} (end of file), {expected} bytes expected", path.display())]
    Truncated {
        path: PathBuf,
        len: u64,
        expected: u64,
    },
    #[error("{}: at offset 0: not a column index (bad magic)", path.display())]
    BadMagic { path: PathBuf },
    #[error("{}: at offset 8: column index version {found}, only {expected} is supported", path.display())]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{}: stale: built for another history ({why})", path.display())]
    Stale { path: PathBuf, why: String },
    #[error("{}: at offset {offset}: {what}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error(transparent)]
    History(#[from] crate::Error),
}

pub type Result<T> = std::result::Result<T, ColumnsError>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ColumnsError + '_ {
    move |source| ColumnsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The index file beside `history`: `history` + `.cols`.
pub fn index_path(history: &Path) -> PathBuf {
    let mut s = history.as_os_str().to_os_string();
    s.push(".cols");
    PathBuf::from(s)
}

// ---------------------------------------------------------------- hashing

/// A fast 64-bit hash (word-at-a-time, then mixed): detects damaged bytes, not
/// an adversary.
pub fn hash64(bytes: &[u8]) -> u64 {
    let mut h = Hasher64::default();
    h.write(bytes);
    h.finish()
}

#[derive(Clone, Copy)]
struct Hasher64 {
    h: u64,
    len: u64,
    tail: u64,
    tail_len: u32,
}

impl Default for Hasher64 {
    fn default() -> Self {
        Hasher64 {
            h: 0x9e37_79b9_7f4a_7c15,
            len: 0,
            tail: 0,
            tail_len: 0,
        }
    }
}

impl Hasher64 {
    #[inline]
    fn word(&mut self, w: u64) {
        self.h = (self.h.rotate_left(23) ^ w).wrapping_mul(0x5851_f42d_4c95_7f2d);
    }

    fn write(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        while self.tail_len != 0 && !bytes.is_empty() {
            self.tail |= (bytes[0] as u64) << (8 * self.tail_len);
            self.tail_len += 1;
            bytes = &bytes[1..];
            if self.tail_len == 8 {
                let w = self.tail;
                self.word(w);
                self.tail = 0;
                self.tail_len = 0;
            }
        }
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().unwrap()));
        }
        for (i, &b) in chunks.remainder().iter().enumerate() {
            self.tail |= (b as u64) << (8 * i);
        }
        self.tail_len = chunks.remainder().len() as u32;
    }

    fn finish(mut self) -> u64 {
        if self.tail_len != 0 {
            let w = self.tail;
            self.word(w);
        }
        let mut x = self.h ^ self.len;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

// ---------------------------------------------------------------- varints

#[inline]
fn put_uvar(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn put_svar(out: &mut Vec<u8>, v: i64) {
    put_uvar(out, ((v << 1) ^ (v >> 63)) as u64);
}

// Always inlined: the index walk decodes two or three per interval, and as a
// call it was a fifth of a cold states request.
#[inline(always)]
fn get_uvar(buf: &[u8], pos: &mut usize) -> Option<u64> {
    // Most values fit one byte (start deltas, small ints).
    let b0 = *buf.get(*pos)?;
    if b0 < 0x80 {
        *pos += 1;
        return Some(b0 as u64);
    }
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if shift == 63 && b > 1 {
            return None;
        }
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

#[inline]
fn get_svar(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let u = get_uvar(buf, pos)?;
    Some(((u >> 1) as i64) ^ -((u & 1) as i64))
}

// ---------------------------------------------------------------- values

/// Appends a value as blocks store it: the `.ht` type byte, then a compact payload.
fn put_value(out: &mut Vec<u8>, v: &ValueRef<'_>) {
    match *v {
        ValueRef::Null => out.push(iv::TYPE_NULL as u8),
        ValueRef::Int(x) => {
            out.push(iv::TYPE_INT as u8);
            put_svar(out, x as i64);
        }
        ValueRef::Long(x) => {
            out.push(iv::TYPE_LONG as u8);
            put_svar(out, x);
        }
        ValueRef::Double(x) => {
            out.push(iv::TYPE_DOUBLE as u8);
            out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        ValueRef::Str(b) => {
            out.push(iv::TYPE_STRING as u8);
            put_uvar(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        ValueRef::Custom(id, b) => {
            out.push(iv::TYPE_CUSTOM as u8);
            out.push(id as u8);
            put_uvar(out, b.len() as u64);
            out.extend_from_slice(b);
        }
    }
}

/// Reads (or, with `want` false, skips) a value written by [`put_value`].
#[inline]
fn get_value(buf: &[u8], pos: &mut usize, want: bool) -> Option<StateValue> {
    let t = *buf.get(*pos)? as i8;
    *pos += 1;
    Some(match t {
        iv::TYPE_NULL => StateValue::Null,
        iv::TYPE_INT => {
            let v = get_svar(buf, pos)?;
            StateValue::Int(i32::try_from(v).ok()?)
        }
        iv::TYPE_LONG => StateValue::Long(get_svar(buf, pos)?),
        iv::TYPE_DOUBLE => {
            let b = buf.get(*pos..*pos + 8)?;
            *pos += 8;
            StateValue::Double(f64::from_bits(u64::from_le_bytes(b.try_into().unwrap())))
        }
        iv::TYPE_STRING => {
            let n = usize::try_from(get_uvar(buf, pos)?).ok()?;
            let b = buf.get(*pos..pos.checked_add(n)?)?;
            *pos += n;
            if !want {
                return Some(StateValue::Null);
            }
            // As the history reader does: invalid UTF-8 is replaced.
            StateValue::String(Arc::from(String::from_utf8_lossy(b)))
        }
        iv::TYPE_CUSTOM => {
            let id = *buf.get(*pos)? as i8;
            *pos += 1;
            let n = usize::try_from(get_uvar(buf, pos)?).ok()?;
            let b = buf.get(*pos..pos.checked_add(n)?)?;
            *pos += n;
            if !want {
                return Some(StateValue::Null);
            }
            StateValue::Custom(CustomValue {
                type_id: id,
                bytes: Arc::from(b),
            })
        }
        _ => return None,
    })
}

// ---------------------------------------------------------------- provenance

/// (size, hash) of a history file: its header page, its root node's block and
/// its last 64 KiB (end of the last node, attribute section).
pub fn history_fingerprint(history: &Path) -> Result<(u64, u64)> {
    let f = File::open(history).map_err(io_err(history))?;
    let size = f.metadata().map_err(io_err(history))?.len();
    let mut h = Hasher64::default();
    let mut read = |at: u64, len: u64| -> Result<()> {
        let len = len.min(size.saturating_sub(at)) as usize;
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, at).map_err(io_err(history))?;
        h.write(&buf);
        Ok(())
    };
    read(0, 4096)?;
    let hdr = {
        let mut b = [0u8; 28];
        f.read_exact_at(&mut b, 0).map_err(io_err(history))?;
        b
    };
    let block = i32::from_le_bytes(hdr[12..16].try_into().unwrap()).max(0) as u64;
    let root = i32::from_le_bytes(hdr[24..28].try_into().unwrap()).max(0) as u64;
    read(4096 + root * block, block)?;
    read(size.saturating_sub(64 << 10), 64 << 10)?;
    Ok((size, h.finish()))
}

// ---------------------------------------------------------------- reading

/// An opened column index, bound to its history.
pub struct ColumnIndex {
    path: PathBuf,
    map: Mmap,
    quark_count: usize,
    block_count: usize,
    blocks_offset: u64,
    table_offset: u64,
    dir_offset: u64,
    interval_count: u64,
    /// One bit per block: its hash was checked.
    verified: Vec<AtomicU64>,
}

#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[inline]
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    first_start: i64,
    last_end: i64,
    offset: u64,
    len: u32,
    count: u32,
    hash: u64,
}

impl ColumnIndex {
    /// Opens `path` and checks it belongs to the history file `history`.
    pub fn open(path: &Path, history: &Path) -> Result<Self> {
        let fp = history_fingerprint(history)?;
        Self::open_checked(path, fp)
    }

    /// Opens `path`, checking it was built from a history of fingerprint `fp`.
    pub fn open_checked(path: &Path, fp: (u64, u64)) -> Result<Self> {
        let corrupt = |offset: u64, what: String| ColumnsError::Corrupt {
            path: path.to_path_buf(),
            offset,
            what,
        };
        let f = File::open(path).map_err(io_err(path))?;
        let len = f.metadata().map_err(io_err(path))?.len();
        let truncated = |expected: u64| ColumnsError::Truncated {
            path: path.to_path_buf(),
            len,
            expected,
        };
        if len < 8 {
            return Err(truncated(l::HEADER_SIZE as u64));
        }
        // SAFETY: read-only map of a file renamed into place complete and never
        // modified afterwards; every access below is bounds-checked.
        let map = unsafe { Mmap::map(&f) }.map_err(io_err(path))?;
        let b = &map[..];
        if b[l::H_MAGIC..l::H_MAGIC + 8] != l::MAGIC {
            return Err(ColumnsError::BadMagic {
                path: path.to_path_buf(),
            });
        }
        if b.len() < l::HEADER_SIZE {
            return Err(truncated(l::HEADER_SIZE as u64));
        }
        let version = u32_at(b, l::H_VERSION);
        if version != l::VERSION {
            return Err(ColumnsError::Version {
                path: path.to_path_buf(),
                found: version,
                expected: l::VERSION,
            });
        }
        if hash64(&b[..l::H_HEADER_HASH]) != u64_at(b, l::H_HEADER_HASH) {
            return Err(corrupt(
                l::H_HEADER_HASH as u64,
                "header hash does not match the header".into(),
            ));
        }
        let file_size = u64_at(b, l::H_FILE_SIZE);
        if len < file_size {
            return Err(truncated(file_size));
        }
        if len != file_size {
            return Err(corrupt(
                l::H_FILE_SIZE as u64,
                format!("file of {len} bytes, header says {file_size}"),
            ));
        }
        let (hsize, hhash) = (u64_at(b, l::H_HISTORY_SIZE), u64_at(b, l::H_HISTORY_HASH));
        if hsize != fp.0 {
            return Err(ColumnsError::Stale {
                path: path.to_path_buf(),
                why: format!("history of {hsize} bytes, the history now has {}", fp.0),
            });
        }
        if hhash != fp.1 {
            return Err(ColumnsError::Stale {
                path: path.to_path_buf(),
                why: "the history's header, root node or tail changed".into(),
            });
        }
        let quark_count = u32_at(b, l::H_QUARK_COUNT) as usize;
        let blocks_offset = u64_at(b, l::H_BLOCKS_OFFSET);
        let table_offset = u64_at(b, l::H_TABLE_OFFSET);
        let block_count = u64_at(b, l::H_BLOCK_COUNT);
        let dir_offset = u64_at(b, l::H_DIR_OFFSET);
        let table_len = block_count.checked_mul(l::ENTRY_SIZE as u64);
        let dir_len = (quark_count as u64 + 1) * l::DIR_ENTRY_SIZE as u64;
        let sane = blocks_offset == l::HEADER_SIZE as u64
            && blocks_offset <= table_offset
            && table_len.and_then(|t| table_offset.checked_add(t)) == Some(dir_offset)
            && dir_offset.checked_add(dir_len) == Some(len);
        if !sane {
            return Err(corrupt(
                l::H_BLOCKS_OFFSET as u64,
                "section offsets do not fit the file".into(),
            ));
        }
        let meta = &b[table_offset as usize..len as usize];
        if hash64(meta) != u64_at(b, l::H_META_HASH) {
            return Err(corrupt(
                table_offset,
                "block table or directory does not match its hash".into(),
            ));
        }
        let index = ColumnIndex {
            path: path.to_path_buf(),
            quark_count,
            block_count: block_count as usize,
            blocks_offset,
            table_offset,
            dir_offset,
            interval_count: u64_at(b, l::H_INTERVAL_COUNT),
            verified: (0..(block_count as usize).div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            map,
        };
        // The directory must be increasing and within the table.
        let mut prev = 0;
        for q in 0..=quark_count {
            let v = index.dir(q);
            if v < prev || v > block_count {
                return Err(corrupt(
                    dir_offset + (q * l::DIR_ENTRY_SIZE) as u64,
                    format!("directory entry {q} ({v}) out of order or past the table"),
                ));
            }
            prev = v;
        }
        Ok(index)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of the index file.
    pub fn file_size(&self) -> u64 {
        self.map.len() as u64
    }

    pub fn interval_count(&self) -> u64 {
        self.interval_count
    }

    pub fn quark_count(&self) -> usize {
        self.quark_count
    }

    pub fn block_count(&self) -> usize {
        self.block_count
    }

    fn dir(&self, q: usize) -> u64 {
        u64_at(&self.map, self.dir_offset as usize + q * l::DIR_ENTRY_SIZE)
    }

    #[inline]
    fn entry(&self, k: usize) -> Entry {
        let at = self.table_offset as usize + k * l::ENTRY_SIZE;
        let b = &self.map[at..at + l::ENTRY_SIZE];
        Entry {
            first_start: u64_at(b, l::E_FIRST_START) as i64,
            last_end: u64_at(b, l::E_LAST_END) as i64,
            offset: u64_at(b, l::E_OFFSET),
            len: u32_at(b, l::E_LEN),
            count: u32_at(b, l::E_COUNT),
            hash: u64_at(b, l::E_HASH),
        }
    }

    fn corrupt(&self, offset: u64, what: String) -> ColumnsError {
        ColumnsError::Corrupt {
            path: self.path.clone(),
            offset,
            what,
        }
    }

    /// The bytes of block `k`, checked against its hash the first time.
    fn block(&self, k: usize, e: &Entry) -> Result<&[u8]> {
        let entry_at = self.table_offset + (k * l::ENTRY_SIZE) as u64;
        let end = e.offset.checked_add(e.len as u64);
        if e.offset < self.blocks_offset || end.is_none_or(|x| x > self.table_offset) {
            return Err(self.corrupt(
                entry_at,
                format!("block {k} lies outside the block section"),
            ));
        }
        let bytes = &self.map[e.offset as usize..(e.offset + e.len as u64) as usize];
        let (word, bit) = (k / 64, 1u64 << (k % 64));
        if self.verified[word].load(Ordering::Relaxed) & bit == 0 {
            if hash64(bytes) != e.hash {
                return Err(self.corrupt(e.offset, format!("block {k} does not match its hash")));
            }
            self.verified[word].fetch_or(bit, Ordering::Relaxed);
        }
        Ok(bytes)
    }

    /// Appends to `out` the intervals of `quark` containing at least one of
    /// `times` (sorted ascending), in start order, each once: what a 2D query at
    /// those times returns for that attribute. A quark the index does not know
    /// has no intervals.
    pub fn sampled(&self, quark: Quark, times: &[i64], out: &mut Vec<Interval>) -> Result<()> {
        let Ok(q) = usize::try_from(quark) else {
            return Ok(());
        };
        if q >= self.quark_count || times.is_empty() {
            return Ok(());
        }
        let (b0, b1) = (self.dir(q) as usize, self.dir(q + 1) as usize);
        if b0 == b1 {
            return Ok(());
        }
        let mut ti = 0;
        let mut lo = b0;
        while ti < times.len() {
            let t = times[ti];
            // The last block of this attribute starting at or before t.
            let p = partition(lo, b1, |k| self.entry(k).first_start <= t);
            if p == 0 {
                // t precedes every block left: skip to the first block's start.
                let s = self.entry(lo).first_start;
                ti += times[ti..].partition_point(|&x| x < s);
                continue;
            }
            let k = lo + p - 1;
            let e = self.entry(k);
            if e.last_end < t {
                // In a gap after block k.
                if k + 1 >= b1 {
                    break;
                }
                let s = self.entry(k + 1).first_start;
                ti += times[ti..].partition_point(|&x| x < s);
                lo = k + 1;
                continue;
            }
            ti = self.walk_block(k, &e, quark, times, ti, out)?;
            lo = k + 1;
            if lo >= b1 {
                break;
            }
        }
        Ok(())
    }

    /// Emits the intervals of block `k` holding `times[ti..]`; returns the
    /// first time index past the block.
    fn walk_block(
        &self,
        k: usize,
        e: &Entry,
        quark: Quark,
        times: &[i64],
        mut ti: usize,
        out: &mut Vec<Interval>,
    ) -> Result<usize> {
        let block = self.block(k, e)?;
        let bad = |pos: usize, what: &str| {
            self.corrupt(e.offset + pos as u64, format!("block {k}: {what}"))
        };
        let n_cp = *block.first().ok_or_else(|| bad(0, "empty block"))? as usize;
        let data_at = 1 + n_cp * l::CHECKPOINT_SIZE;
        if block.len() < data_at || n_cp * l::CHECKPOINT_EVERY >= (e.count as usize).max(1) {
            return Err(bad(0, "checkpoint table does not fit the block"));
        }
        let checkpoint = |c: usize| {
            let at = 1 + c * l::CHECKPOINT_SIZE;
            (u64_at(block, at) as i64, u32_at(block, at + 8) as usize)
        };
        let buf = &block[data_at..];
        let bad = |pos: usize, what: &str| bad(data_at + pos, what);
        let mut pos = 0;
        let mut prev_end = e.first_start.wrapping_sub(1);
        let mut i = 0;
        let mut next_cp = 0;
        while i < e.count as usize {
            // Jump to the last checkpoint starting at or before the next time
            // wanted: the intervals before it end before it starts.
            let mut forced = None;
            if let Some(&t) = times.get(ti) {
                while next_cp < n_cp && checkpoint(next_cp).0 <= t {
                    if (next_cp + 1) * l::CHECKPOINT_EVERY > i {
                        forced = Some(next_cp);
                    }
                    next_cp += 1;
                }
            }
            if let Some(c) = forced {
                pos = checkpoint(c).1;
                i = (c + 1) * l::CHECKPOINT_EVERY;
            }
            let at = pos;
            let delta = get_svar(buf, &mut pos).ok_or_else(|| bad(at, "bad start"))?;
            let start = match forced {
                Some(c) => checkpoint(c).0,
                None => prev_end.wrapping_add(1).wrapping_add(delta),
            };
            let end = start.wrapping_add(
                get_uvar(buf, &mut pos).ok_or_else(|| bad(at, "bad duration"))? as i64,
            );
            prev_end = end;
            i += 1;
            while ti < times.len() && times[ti] < start {
                ti += 1;
            }
            let hit = ti < times.len() && times[ti] <= end;
            let vat = pos;
            let value = get_value(buf, &mut pos, hit).ok_or_else(|| bad(vat, "bad value"))?;
            if hit {
                out.push(Interval {
                    start,
                    end,
                    quark,
                    value,
                });
                while ti < times.len() && times[ti] <= end {
                    ti += 1;
                }
            }
            if ti >= times.len() || times[ti] > e.last_end {
                return Ok(ti);
            }
        }
        if pos != buf.len() {
            return Err(bad(pos, "interval data does not fill the block"));
        }
        Ok(ti)
    }
}

/// Number of leading indices in `lo..hi` for which `pred` holds (a partition
/// point over a monotone predicate).
fn partition(lo: usize, hi: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut a, mut b) = (lo, hi);
    while a < b {
        let m = a + (b - a) / 2;
        if pred(m) {
            a = m + 1;
        } else {
            b = m;
        }
    }
    a - lo
}

// ---------------------------------------------------------------- building

/// How to build an index.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Intervals per block.
    pub block_intervals: u32,
    /// Bytes of intervals sorted in memory at once (the build's memory bound,
    /// with a few buffers of the merge).
    pub run_budget: usize,
    /// Where sorted runs go (default: beside the index).
    pub temp_dir: Option<PathBuf>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            block_intervals: l::DEFAULT_BLOCK_INTERVALS,
            run_budget: 48 << 20,
            temp_dir: None,
        }
    }
}

/// What [`build`] wrote.
#[derive(Clone, Debug, Default)]
pub struct BuildReport {
    pub intervals: u64,
    pub blocks: u64,
    pub bytes: u64,
    /// Sorted runs written (1 when everything fit in memory at once).
    pub runs: usize,
}

/// One interval held for sorting: its value bytes (block encoding) in an arena.
#[derive(Clone, Copy)]
struct Rec {
    start: i64,
    end: i64,
    /// arena offset << 24 | value length.
    val: u64,
    quark: i32,
}

const REC_COST: usize = std::mem::size_of::<Rec>();

/// A sorted run, in a temp file: per record quark delta (uvar), start (svar,
/// delta from the previous start of the same quark), duration (uvar), value.
struct RunWriter {
    out: BufWriter<File>,
    buf: Vec<u8>,
}

struct RunReader {
    input: BufReader<File>,
    path: PathBuf,
    quark: i64,
    start: i64,
    end: i64,
    value: Vec<u8>,
    first: bool,
}

fn read_uvar_io(r: &mut impl Read) -> std::io::Result<Option<u64>> {
    let mut v = 0u64;
    let mut shift = 0;
    let mut b = [0u8; 1];
    loop {
        if r.read(&mut b)? == 0 {
            return if shift == 0 {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        v |= ((b[0] & 0x7f) as u64) << shift;
        if b[0] < 0x80 {
            return Ok(Some(v));
        }
        shift += 7;
        if shift > 63 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}

impl RunReader {
    /// Reads the next record; false at the end of the run.
    fn next(&mut self) -> Result<bool> {
        let path = self.path.clone();
        let e = |source| ColumnsError::Io {
            path: path.clone(),
            source,
        };
        let Some(dq) = read_uvar_io(&mut self.input).map_err(e)? else {
            return Ok(false);
        };
        let need = |v: Option<u64>| {
            v.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
        };
        let ds = need(read_uvar_io(&mut self.input).map_err(e)?).map_err(e)?;
        let ds = ((ds >> 1) as i64) ^ -((ds & 1) as i64);
        let dur = need(read_uvar_io(&mut self.input).map_err(e)?).map_err(e)?;
        let vlen = need(read_uvar_io(&mut self.input).map_err(e)?).map_err(e)? as usize;
        if dq != 0 || self.first {
            self.quark += dq as i64;
            self.start = ds;
        } else {
            self.start = self.start.wrapping_add(ds);
        }
        self.first = false;
        self.end = self.start.wrapping_add(dur as i64);
        self.value.resize(vlen, 0);
        self.input.read_exact(&mut self.value).map_err(e)?;
        Ok(true)
    }
}

/// Builds the index of the finished history `history` at `path` (written to a
/// temporary file beside it, renamed when complete).
pub fn build(history: &Path, path: &Path, options: &BuildOptions) -> Result<BuildReport> {
    let fp = history_fingerprint(history)?;
    let reader = HistoryTreeReader::open_with_cache(history, None, 1 << 20)?;
    let header = *reader.header();
    let attr_count = reader.attributes().len();
    drop(reader);
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp_dir = options
        .temp_dir
        .clone()
        .unwrap_or_else(|| dir.to_path_buf());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tag = format!("{}-{}", std::process::id(), unique());
    let tmp = dir.join(format!(".{name}.tmp-{tag}"));
    let runs_base = temp_dir.join(format!(".{name}.run-{tag}"));
    let mut cleanup = Cleanup(vec![tmp.clone()]);

    // 1. Sorted runs, reading the history's blocks in order (plain reads: the
    // pages stay in the page cache, not in this process).
    let f = File::open(history).map_err(io_err(history))?;
    let block = header.block_size as usize;
    let m = header.max_children as usize;
    let per_read = (4usize << 20) / block.max(1);
    let mut chunk = vec![0u8; block * per_read.max(1)];
    let budget = options.run_budget.max(1 << 16);
    // Reserved once (no doubling past the budget): at most the budget, and no
    // more than the history could hold.
    let hint = (std::fs::metadata(history).map_or(0, |m| m.len()) / 8) as usize;
    let mut recs: Vec<Rec> = Vec::with_capacity((budget / REC_COST).min(hint).max(16) + 8192);
    let mut arena: Vec<u8> = Vec::new();
    let mut run_paths: Vec<PathBuf> = Vec::new();
    let mut max_quark: i64 = attr_count as i64 - 1;
    let mut total = 0u64;
    let flush_run = |recs: &mut Vec<Rec>,
                     arena: &mut Vec<u8>,
                     run_paths: &mut Vec<PathBuf>,
                     cleanup: &mut Cleanup|
     -> Result<()> {
        recs.sort_unstable_by_key(|r| (r.quark, r.start));
        let p = PathBuf::from(format!("{}-{}", runs_base.display(), run_paths.len()));
        cleanup.0.push(p.clone());
        let file = File::create(&p).map_err(io_err(&p))?;
        let mut w = RunWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            buf: Vec::with_capacity(64),
        };
        let mut prev: Option<(i32, i64)> = None;
        for r in recs.iter() {
            w.buf.clear();
            let (dq, ds) = match prev {
                Some((q, s)) if q == r.quark => (0, r.start.wrapping_sub(s)),
                Some((q, _)) => ((r.quark - q) as u64, r.start),
                None => (r.quark as u64, r.start),
            };
            put_uvar(&mut w.buf, dq);
            put_svar(&mut w.buf, ds);
            put_uvar(&mut w.buf, r.end.wrapping_sub(r.start) as u64);
            let (off, len) = ((r.val >> 24) as usize, (r.val & 0xff_ffff) as usize);
            put_uvar(&mut w.buf, len as u64);
            w.buf.extend_from_slice(&arena[off..off + len]);
            w.out.write_all(&w.buf).map_err(io_err(&p))?;
            prev = Some((r.quark, r.start));
        }
        w.out.flush().map_err(io_err(&p))?;
        run_paths.push(p);
        recs.clear();
        arena.clear();
        Ok(())
    };
    let mut seq = 0i32;
    while seq < header.node_count {
        let n = ((header.node_count - seq) as usize).min(per_read.max(1));
        let at = crate::ht::format::node_offset(seq, header.block_size);
        let buf = &mut chunk[..n * block];
        f.read_exact_at(buf, at).map_err(io_err(history))?;
        for i in 0..n {
            let b = &buf[i * block..(i + 1) * block];
            let off = at + (i * block) as u64;
            let lay = node::decode_layout(b, m, history, off)?;
            let mut bad_quark = None;
            node::for_each_interval(b, &lay, history, off, |r| {
                if r.quark < 0 {
                    bad_quark = Some(r.quark);
                    return;
                }
                max_quark = max_quark.max(r.quark as i64);
                let o = arena.len();
                put_value(&mut arena, &r.value);
                let len = arena.len() - o;
                recs.push(Rec {
                    start: r.start,
                    end: r.end,
                    val: ((o as u64) << 24) | len as u64,
                    quark: r.quark,
                });
            })?;
            if let Some(q) = bad_quark {
                return Err(ColumnsError::History(crate::Error::corrupt(
                    history,
                    off,
                    format!("interval of negative quark {q}"),
                )));
            }
            total += lay.header.interval_count.max(0) as u64;
            if recs.len() * REC_COST + arena.len() >= budget {
                flush_run(&mut recs, &mut arena, &mut run_paths, &mut cleanup)?;
            }
        }
        seq += n as i32;
    }
    drop(chunk);
    if !recs.is_empty() || run_paths.is_empty() {
        flush_run(&mut recs, &mut arena, &mut run_paths, &mut cleanup)?;
    }
    drop((recs, arena));

    // 2. Merge the runs into blocks; the table goes to its own temp file.
    let quark_count = (max_quark + 1).max(0) as usize;
    let mut readers = Vec::new();
    for p in &run_paths {
        let file = File::open(p).map_err(io_err(p))?;
        readers.push(RunReader {
            input: BufReader::with_capacity(256 << 10, file),
            path: p.clone(),
            quark: 0,
            start: 0,
            end: 0,
            value: Vec::new(),
            first: true,
        });
    }
    let out_file = File::create(&tmp).map_err(io_err(&tmp))?;
    let mut out = BufWriter::with_capacity(1 << 20, out_file);
    out.write_all(&[0u8; l::HEADER_SIZE])
        .map_err(io_err(&tmp))?;
    let table_tmp = PathBuf::from(format!("{}-table", runs_base.display()));
    cleanup.0.push(table_tmp.clone());
    let mut table = BufWriter::with_capacity(
        1 << 20,
        File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&table_tmp)
            .map_err(io_err(&table_tmp))?,
    );
    let mut dir_entries: Vec<u64> = Vec::with_capacity(quark_count + 1);
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        if r.next()? {
            heap.push(Reverse((r.quark, r.start, i)));
        }
    }
    let mut w = BlockWriter {
        buf: Vec::with_capacity(8 << 10),
        checkpoints: Vec::new(),
        head: Vec::with_capacity(8 << 10),
        count: 0,
        first_start: 0,
        prev_end: 0,
        last_end: i64::MIN,
        offset: l::HEADER_SIZE as u64,
        blocks: 0,
    };
    let mut cur_quark: i64 = -1;
    // At most 255 checkpoints per block (a u8 count).
    let target = options
        .block_intervals
        .clamp(1, (255 * l::CHECKPOINT_EVERY) as u32);
    let mut written = 0u64;
    while let Some(Reverse((q, _, i))) = heap.pop() {
        let r = &mut readers[i];
        if q != cur_quark {
            w.flush(&mut out, &mut table, &tmp, &table_tmp)?;
            while (dir_entries.len() as i64) <= q {
                dir_entries.push(w.blocks);
            }
            cur_quark = q;
        }
        if w.count >= target {
            w.flush(&mut out, &mut table, &tmp, &table_tmp)?;
        }
        w.add(r.start, r.end, &r.value);
        written += 1;
        if r.next()? {
            heap.push(Reverse((r.quark, r.start, i)));
        }
    }
    w.flush(&mut out, &mut table, &tmp, &table_tmp)?;
    while dir_entries.len() <= quark_count {
        dir_entries.push(w.blocks);
    }
    drop(readers);
    for p in &run_paths {
        let _ = std::fs::remove_file(p);
    }
    if written != total {
        return Err(ColumnsError::Corrupt {
            path: tmp.clone(),
            offset: 0,
            what: format!("merged {written} intervals of {total} read"),
        });
    }

    // 3. Table, directory, header.
    let table_offset = w.offset;
    let mut meta = Hasher64::default();
    let mut tfile = table.into_inner().map_err(|e| ColumnsError::Io {
        path: table_tmp.clone(),
        source: e.into_error(),
    })?;
    tfile.seek(SeekFrom::Start(0)).map_err(io_err(&table_tmp))?;
    let mut tr = BufReader::with_capacity(1 << 20, tfile);
    let mut piece = vec![0u8; 1 << 20];
    loop {
        let n = tr.read(&mut piece).map_err(io_err(&table_tmp))?;
        if n == 0 {
            break;
        }
        meta.write(&piece[..n]);
        out.write_all(&piece[..n]).map_err(io_err(&tmp))?;
    }
    drop(tr);
    let dir_offset = table_offset + w.blocks * l::ENTRY_SIZE as u64;
    let mut dbytes = Vec::with_capacity(dir_entries.len() * 8);
    for d in &dir_entries {
        dbytes.extend_from_slice(&d.to_le_bytes());
    }
    meta.write(&dbytes);
    out.write_all(&dbytes).map_err(io_err(&tmp))?;
    let file_size = dir_offset + dbytes.len() as u64;
    let mut h = [0u8; l::HEADER_SIZE];
    h[l::H_MAGIC..l::H_MAGIC + 8].copy_from_slice(&l::MAGIC);
    h[l::H_VERSION..l::H_VERSION + 4].copy_from_slice(&l::VERSION.to_le_bytes());
    h[l::H_FLAGS..l::H_FLAGS + 4].copy_from_slice(&0u32.to_le_bytes());
    let put = |h: &mut [u8], at: usize, v: u64| h[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut h, l::H_HISTORY_SIZE, fp.0);
    put(&mut h, l::H_HISTORY_HASH, fp.1);
    h[l::H_QUARK_COUNT..l::H_QUARK_COUNT + 4].copy_from_slice(&(quark_count as u32).to_le_bytes());
    h[l::H_BLOCK_INTERVALS..l::H_BLOCK_INTERVALS + 4].copy_from_slice(&target.to_le_bytes());
    put(&mut h, l::H_BLOCKS_OFFSET, l::HEADER_SIZE as u64);
    put(&mut h, l::H_TABLE_OFFSET, table_offset);
    put(&mut h, l::H_BLOCK_COUNT, w.blocks);
    put(&mut h, l::H_DIR_OFFSET, dir_offset);
    put(&mut h, l::H_INTERVAL_COUNT, written);
    put(&mut h, l::H_FILE_SIZE, file_size);
    put(&mut h, l::H_META_HASH, meta.finish());
    let hh = hash64(&h[..l::H_HEADER_HASH]);
    put(&mut h, l::H_HEADER_HASH, hh);
    let file = out.into_inner().map_err(|e| ColumnsError::Io {
        path: tmp.clone(),
        source: e.into_error(),
    })?;
    file.write_all_at(&h, 0).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    cleanup.0.retain(|p| p != &tmp);
    Ok(BuildReport {
        intervals: written,
        blocks: w.blocks,
        bytes: file_size,
        runs: run_paths.len(),
    })
}

fn unique() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Removes the temp files left by a build that did not finish.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

struct BlockWriter {
    buf: Vec<u8>,
    /// (start, offset in `buf`) of every `CHECKPOINT_EVERY`th interval.
    checkpoints: Vec<(i64, u32)>,
    head: Vec<u8>,
    count: u32,
    first_start: i64,
    prev_end: i64,
    last_end: i64,
    /// File offset of the next block.
    offset: u64,
    blocks: u64,
}

impl BlockWriter {
    fn add(&mut self, start: i64, end: i64, value: &[u8]) {
        if self.count == 0 {
            self.first_start = start;
            self.prev_end = start.wrapping_sub(1);
            self.last_end = i64::MIN;
        } else if (self.count as usize).is_multiple_of(l::CHECKPOINT_EVERY) {
            self.checkpoints.push((start, self.buf.len() as u32));
        }
        put_svar(
            &mut self.buf,
            start.wrapping_sub(self.prev_end.wrapping_add(1)),
        );
        put_uvar(&mut self.buf, end.wrapping_sub(start) as u64);
        self.buf.extend_from_slice(value);
        self.prev_end = end;
        self.last_end = self.last_end.max(end);
        self.count += 1;
    }

    fn flush(
        &mut self,
        out: &mut BufWriter<File>,
        table: &mut BufWriter<File>,
        out_path: &Path,
        table_path: &Path,
    ) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        self.head.clear();
        self.head.push(self.checkpoints.len() as u8);
        for (start, at) in self.checkpoints.drain(..) {
            self.head.extend_from_slice(&start.to_le_bytes());
            self.head.extend_from_slice(&at.to_le_bytes());
        }
        self.head.extend_from_slice(&self.buf);
        std::mem::swap(&mut self.head, &mut self.buf);
        out.write_all(&self.buf).map_err(io_err(out_path))?;
        let mut e = [0u8; l::ENTRY_SIZE];
        e[l::E_FIRST_START..l::E_FIRST_START + 8].copy_from_slice(&self.first_start.to_le_bytes());
        e[l::E_LAST_END..l::E_LAST_END + 8].copy_from_slice(&self.last_end.to_le_bytes());
        e[l::E_OFFSET..l::E_OFFSET + 8].copy_from_slice(&self.offset.to_le_bytes());
        e[l::E_LEN..l::E_LEN + 4].copy_from_slice(&(self.buf.len() as u32).to_le_bytes());
        e[l::E_COUNT..l::E_COUNT + 4].copy_from_slice(&self.count.to_le_bytes());
        e[l::E_HASH..l::E_HASH + 8].copy_from_slice(&hash64(&self.buf).to_le_bytes());
        table.write_all(&e).map_err(io_err(table_path))?;
        self.offset += self.buf.len() as u64;
        self.blocks += 1;
        self.buf.clear();
        self.count = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ht::{HistoryTreeWriter, HtConfig};
    use crate::{AttributeTree, StateSystem, StateSystemQuerier};

    const QUARKS: i32 = 30;
    const END: i64 = 30_000;

    fn value(q: i32, t: i64) -> StateValue {
        match (q % 6, (t / 10) % 5) {
            (_, 0) if q % 2 == 1 => StateValue::Null,
            (0, _) => StateValue::Int((t as i32).wrapping_mul(q + 1)),
            (1, _) => StateValue::Long(t * 1_000_000_007 - q as i64),
            (2, _) => StateValue::string(&format!("s{q}-{t}-\u{e9}")),
            (3, _) => StateValue::Double(t as f64 / (q as f64 + 0.5)),
            (4, _) => StateValue::Custom(CustomValue {
                type_id: 42,
                bytes: Arc::from(&[q as u8, t as u8, 7][..]),
            }),
            _ => StateValue::Int(-(t as i32)),
        }
    }

    /// Attribute q changes every 3 + q*7 ns (quark 29 only once), except that
    /// quark 5 has no interval before 10,000 (created late).
    fn history(dir: &Path) -> PathBuf {
        let path = dir.join("h.ht");
        let mut tree = AttributeTree::new();
        for q in 0..QUARKS {
            tree.quark_absolute_and_add(&[format!("a{q}")]).unwrap();
        }
        let config = HtConfig {
            block_size: 4096,
            max_children: 4,
            ..HtConfig::new(0, 1)
        };
        let mut w = HistoryTreeWriter::create(&path, config).unwrap();
        let period = |q: i32| if q == 29 { END + 1 } else { 3 + q as i64 * 7 };
        let first = |q: i32| if q == 5 { 10_000 } else { 0 };
        for t in 0..=END {
            for q in 0..QUARKS {
                let p = period(q);
                let s0 = first(q);
                if t < s0 {
                    continue;
                }
                if (t - s0 + 1) % p == 0 || t == END {
                    let start = s0 + (t - s0) / p * p;
                    w.insert(Interval::new(start, t, q, value(q, start)))
                        .unwrap();
                }
            }
        }
        w.finish(END, &tree).unwrap();
        path
    }

    fn tree_answer(ss: &StateSystem, q: Quark, times: &[i64]) -> Vec<Interval> {
        let mut v = ss.query_2d_at(&[q], times).unwrap();
        v.sort_by_key(|i| i.start);
        v
    }

    #[test]
    fn sampled_answers_equal_the_tree_with_small_runs() {
        // Blocks without checkpoints, with a few, with many.
        for block_intervals in [16, 40, 300] {
            sampled_answers_equal_the_tree(block_intervals);
        }
    }

    fn sampled_answers_equal_the_tree(block_intervals: u32) {
        let dir = tempfile::tempdir().unwrap();
        let h = history(dir.path());
        let cols = index_path(&h);
        let options = BuildOptions {
            block_intervals,
            run_budget: 1, // raised to 64 KiB: several runs
            temp_dir: None,
        };
        let report = build(&h, &cols, &options).unwrap();
        assert!(report.runs > 1, "{report:?}");
        let ss = StateSystem::open(&h, None).unwrap();
        let idx = ColumnIndex::open(&cols, &h).unwrap();
        let mut n = 0u64;
        ss.backend()
            .query_range(
                &crate::QuarkSet::new(0..QUARKS).unwrap(),
                &crate::TimeCondition::range(0, END),
                &mut |_| n += 1,
            )
            .unwrap();
        assert_eq!(idx.interval_count(), n);
        // No temp file left beside the index.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        let windows = [
            (0, END, 1000),
            (0, 500, 1000),
            (29_000, END, 7),
            (12_345, 12_999, 50),
            (9_000, 11_000, 100),
            (0, END, 2),
            (17, 17, 1),
            (3, 29_997, 29_994),
            (100, 4_000, 3_900),
        ];
        for (a, b, nb) in windows {
            let step = ((b - a) / (nb - 1).max(1)).max(1);
            let mut times: Vec<i64> = (0..).map(|i| a + i * step).take_while(|&t| t < b).collect();
            times.push(b);
            for q in 0..QUARKS {
                let mut got = Vec::new();
                idx.sampled(q, &times, &mut got).unwrap();
                assert_eq!(
                    got,
                    tree_answer(&ss, q, &times),
                    "q {q} window {a}..{b}/{nb}"
                );
            }
        }
        let mut none = Vec::new();
        idx.sampled(QUARKS + 3, &[5], &mut none).unwrap();
        idx.sampled(-1, &[5], &mut none).unwrap();
        assert!(none.is_empty());
    }

    fn built(dir: &Path) -> (PathBuf, PathBuf) {
        let h = history(dir);
        let cols = index_path(&h);
        build(&h, &cols, &BuildOptions::default()).unwrap();
        (h, cols)
    }

    #[test]
    fn truncated_bad_magic_stale_and_corrupt_indexes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (h, cols) = built(dir.path());
        let good = std::fs::read(&cols).unwrap();
        let write = |b: &[u8]| std::fs::write(&cols, b).unwrap();
        // Truncated: in the header, and in the directory.
        write(&good[..60]);
        let e = ColumnIndex::open(&cols, &h).err().unwrap();
        assert!(matches!(e, ColumnsError::Truncated { len: 60, .. }), "{e}");
        write(&good[..good.len() - 3]);
        let e = ColumnIndex::open(&cols, &h).err().unwrap();
        assert!(matches!(e, ColumnsError::Truncated { .. }), "{e}");
        assert!(e.to_string().contains("h.ht.cols"), "{e}");
        // Bad magic.
        let mut b = good.clone();
        b[0] = b'X';
        write(&b);
        let e = ColumnIndex::open(&cols, &h).err().unwrap();
        assert!(matches!(e, ColumnsError::BadMagic { .. }), "{e}");
        // Shorter than the magic itself: an error, never a slice past the end.
        for len in [0, 3] {
            write(&good[..len]);
            let e = ColumnIndex::open(&cols, &h).err().unwrap();
            assert!(
                matches!(
                    e,
                    ColumnsError::Truncated { .. } | ColumnsError::BadMagic { .. }
                ),
                "{len}: {e}"
            );
        }
        // Header damage.
        let mut b = good.clone();
        b[l::H_INTERVAL_COUNT] ^= 1;
        write(&b);
        let e = ColumnIndex::open(&cols, &h).err().unwrap();
        assert!(
            matches!(e, ColumnsError::Corrupt { offset, .. } if offset == l::H_HEADER_HASH as u64),
            "{e}"
        );
        // Block table damage.
        let table = u64_at(&good, l::H_TABLE_OFFSET) as usize;
        let mut b = good.clone();
        b[table + 3] ^= 0x40;
        write(&b);
        let e = ColumnIndex::open(&cols, &h).err().unwrap();
        assert!(
            matches!(e, ColumnsError::Corrupt { offset, .. } if offset == table as u64),
            "{e}"
        );
        // A damaged block: the index opens, the query of that block fails
        // naming the block's offset.
        let mut b = good.clone();
        b[l::HEADER_SIZE + 5] ^= 0x10;
        write(&b);
        let idx = ColumnIndex::open(&cols, &h).unwrap();
        let mut out = Vec::new();
        let e = (0..QUARKS)
            .find_map(|q| idx.sampled(q, &[0, 1, 2, 3, 4, 5, 6], &mut out).err())
            .unwrap();
        assert!(
            matches!(e, ColumnsError::Corrupt { offset, .. } if offset == l::HEADER_SIZE as u64),
            "{e}"
        );
        // Stale: the history was rebuilt (here: other values, same size).
        write(&good);
        ColumnIndex::open(&cols, &h).unwrap();
        let mut hb = std::fs::read(&h).unwrap();
        let n = hb.len();
        hb[n - 100] ^= 1;
        std::fs::write(&h, &hb).unwrap();
        let e = ColumnIndex::open(&cols, &h).err().unwrap();
        assert!(matches!(e, ColumnsError::Stale { .. }), "{e}");
        hb.push(0);
        std::fs::write(&h, &hb).unwrap();
        let e = ColumnIndex::open(&cols, &h).err().unwrap();
        assert!(matches!(e, ColumnsError::Stale { .. }), "{e}");
        // Another version.
        let mut b = good.clone();
        b[l::H_VERSION] = 9;
        write(&b);
        let e = ColumnIndex::open_checked(&cols, (0, 0)).err().unwrap();
        assert!(matches!(e, ColumnsError::Version { found: 9, .. }), "{e}");
    }

    #[test]
    fn varints_and_hash() {
        let mut b = Vec::new();
        for v in [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 1 << 40] {
            b.clear();
            put_svar(&mut b, v);
            let mut p = 0;
            assert_eq!(get_svar(&b, &mut p), Some(v));
            assert_eq!(p, b.len());
        }
        assert_ne!(hash64(b"abc"), hash64(b"abd"));
        let mut h = Hasher64::default();
        h.write(b"hello ");
        h.write(b"world, split");
        assert_eq!(h.finish(), hash64(b"hello world, split"));
    }
}
