//! LTTng index files (`index/<stream>.idx`, §8): one entry per packet, big-endian.

use crate::error::TraceError;
use std::path::Path;

const INDEX_MAGIC: u32 = 0xC1F1_DCC1;
const HEADER_LEN: usize = 16;
/// The seven u64 fields of index 1.0.
const MIN_ENTRY_LEN: usize = 56;

/// One packet as the index describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub offset: u64,
    pub packet_bits: u64,
    pub content_bits: u64,
    pub ts_begin: u64,
    pub ts_end: u64,
    pub discarded: u64,
    pub stream_id: u64,
    /// Index 1.1 only.
    pub stream_instance_id: Option<u64>,
    pub packet_seq_num: Option<u64>,
}

/// Parses an index file's bytes. `stream_size` bounds the packet offsets.
pub fn parse(path: &Path, bytes: &[u8], stream_size: u64) -> Result<Vec<IndexEntry>, TraceError> {
    let err = |reason: String| TraceError::Index {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < HEADER_LEN {
        return Err(err(format!("truncated header ({} bytes)", bytes.len())));
    }
    let u32_at = |o: usize| u32::from_be_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
    if u32_at(0) != INDEX_MAGIC {
        return Err(err(format!("bad magic 0x{:08x}", u32_at(0))));
    }
    let major = u32_at(4);
    let minor = u32_at(8);
    let entry_len = u32_at(12) as usize;
    if major != 1 {
        return Err(err(format!("unsupported index version {major}.{minor}")));
    }
    if entry_len < MIN_ENTRY_LEN {
        return Err(err(format!("entry length {entry_len} < {MIN_ENTRY_LEN}")));
    }
    let body = &bytes[HEADER_LEN..];
    if !body.len().is_multiple_of(entry_len) {
        return Err(err(format!(
            "{} bytes of entries is not a multiple of the entry length {entry_len}",
            body.len()
        )));
    }
    let mut out = Vec::with_capacity(body.len() / entry_len);
    let mut expected_offset = 0u64;
    for (i, e) in body.chunks_exact(entry_len).enumerate() {
        let f = |k: usize| u64::from_be_bytes(e[k * 8..k * 8 + 8].try_into().expect("8 bytes"));
        let entry = IndexEntry {
            offset: f(0),
            packet_bits: f(1),
            content_bits: f(2),
            ts_begin: f(3),
            ts_end: f(4),
            discarded: f(5),
            stream_id: f(6),
            stream_instance_id: (entry_len >= 64).then(|| f(7)),
            packet_seq_num: (entry_len >= 72).then(|| f(8)),
        };
        if entry.offset != expected_offset
            || entry.packet_bits == 0
            || !entry.packet_bits.is_multiple_of(8)
            || entry.content_bits > entry.packet_bits
            || entry
                .offset
                .checked_add(entry.packet_bits / 8)
                .is_none_or(|end| end > stream_size)
        {
            return Err(err(format!(
                "entry {i} (packet at byte {}) does not match the stream file",
                entry.offset
            )));
        }
        expected_offset = entry.offset + entry.packet_bits / 8;
        out.push(entry);
    }
    if expected_offset != stream_size {
        return Err(err(format!(
            "entries cover {expected_offset} bytes of a {stream_size}-byte stream"
        )));
    }
    Ok(out)
}

/// Loads `dir/index/<name>.idx` if present and consistent with the stream size.
/// A missing, truncated or stale index is ignored (the reader scans packets instead).
pub fn load_for(dir: &Path, name: &str, stream_size: u64) -> Option<Vec<IndexEntry>> {
    let path = dir.join("index").join(format!("{name}.idx"));
    let bytes = std::fs::read(&path).ok()?;
    parse(&path, &bytes, stream_size).ok()
}
