//! One per-CPU data stream file (`channel0_<cpu>`) and its index
//! (`index/channel0_<cpu>.idx`), written packet by packet as LTTng's consumer
//! daemon does: 256 KiB packets, the last one trimmed to whole 4 KiB pages.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::GenError;

pub(crate) const PACKET_BYTES: usize = 256 * 1024;
/// Packet header (magic, uuid, stream_id, stream_instance_id: 32 bytes) plus
/// packet context (7 fields: 52 bytes).
pub(crate) const PACKET_PREAMBLE: usize = 84;
const PAGE: usize = 4096;
/// Largest timestamp delta a compact (27-bit) header can carry.
const COMPACT_TS_LIMIT: u64 = 1 << 27;
const EXTENDED_ID: u32 = 31;
const INDEX_ENTRY_BYTES: u32 = 56;

pub(crate) struct StreamWriter {
    cpu: u32,
    path: PathBuf,
    file: File,
    packet: Vec<u8>,
    /// Bytes used in the current packet (the preamble is filled in on close).
    pos: usize,
    /// The stream's last clock value (the reader's reconstruction state).
    last_ts: u64,
    packet_begin: u64,
    seq: u64,
    file_offset: u64,
    index: Vec<u8>,
}

impl StreamWriter {
    pub(crate) fn create(dir: &Path, cpu: u32, begin: u64) -> Result<Self, GenError> {
        let path = dir.join(format!("channel0_{cpu}"));
        let file = File::create(&path).map_err(|source| GenError::Io {
            path: path.clone(),
            source,
        })?;
        let mut index = Vec::with_capacity(4096);
        index.extend_from_slice(&0xC1F1_DCC1u32.to_be_bytes());
        index.extend_from_slice(&1u32.to_be_bytes());
        index.extend_from_slice(&0u32.to_be_bytes());
        index.extend_from_slice(&INDEX_ENTRY_BYTES.to_be_bytes());
        Ok(StreamWriter {
            cpu,
            path,
            file,
            packet: vec![0; PACKET_BYTES],
            pos: PACKET_PREAMBLE,
            last_ts: begin,
            packet_begin: begin,
            seq: 0,
            file_offset: 0,
            index,
        })
    }

    /// Appends one event record. Returns true when a packet was closed (written)
    /// to make room for it.
    #[inline]
    pub(crate) fn emit(
        &mut self,
        id: u32,
        ts: u64,
        payload: &[u8],
        uuid: &[u8; 16],
    ) -> Result<bool, GenError> {
        debug_assert!(
            ts >= self.last_ts,
            "timestamps go back in stream {}",
            self.cpu
        );
        // LTTng writes the full 64-bit timestamp for the first event of a packet,
        // for IDs ≥ 31, and when the 27 low bits cannot express the delta.
        let mut compact =
            id < EXTENDED_ID && self.pos > PACKET_PREAMBLE && ts - self.last_ts < COMPACT_TS_LIMIT;
        let mut closed = false;
        if self.pos + if compact { 4 } else { 13 } + payload.len() > PACKET_BYTES {
            self.close_packet(ts, false, uuid)?;
            compact = false;
            closed = true;
        }
        let p = self.pos;
        if compact {
            let word = id | ((ts as u32 & (COMPACT_TS_LIMIT as u32 - 1)) << 5);
            self.packet[p..p + 4].copy_from_slice(&word.to_le_bytes());
            self.pos += 4;
        } else {
            self.packet[p] = EXTENDED_ID as u8;
            self.packet[p + 1..p + 5].copy_from_slice(&id.to_le_bytes());
            self.packet[p + 5..p + 13].copy_from_slice(&ts.to_le_bytes());
            self.pos += 13;
        }
        let p = self.pos;
        self.packet[p..p + payload.len()].copy_from_slice(payload);
        self.pos += payload.len();
        self.last_ts = ts;
        Ok(closed)
    }

    /// Writes the current packet. `end` is its `timestamp_end` and the next
    /// packet's `timestamp_begin` (LTTng switches sub-buffers at one instant).
    fn close_packet(&mut self, end: u64, last: bool, uuid: &[u8; 16]) -> Result<(), GenError> {
        let content = self.pos;
        let size = if last {
            content.div_ceil(PAGE) * PAGE
        } else {
            PACKET_BYTES
        };
        let h = &mut self.packet;
        h[0..4].copy_from_slice(&0xC1FC_1FC1u32.to_le_bytes());
        h[4..20].copy_from_slice(uuid);
        h[20..24].copy_from_slice(&0u32.to_le_bytes());
        h[24..32].copy_from_slice(&(self.cpu as u64).to_le_bytes());
        h[32..40].copy_from_slice(&self.packet_begin.to_le_bytes());
        h[40..48].copy_from_slice(&end.to_le_bytes());
        h[48..56].copy_from_slice(&(content as u64 * 8).to_le_bytes());
        h[56..64].copy_from_slice(&(size as u64 * 8).to_le_bytes());
        h[64..72].copy_from_slice(&self.seq.to_le_bytes());
        h[72..80].copy_from_slice(&0u64.to_le_bytes());
        h[80..84].copy_from_slice(&self.cpu.to_le_bytes());
        h[content..size].fill(0);
        self.file
            .write_all(&h[..size])
            .map_err(|source| GenError::Io {
                path: self.path.clone(),
                source,
            })?;
        for v in [
            self.file_offset,
            size as u64 * 8,
            content as u64 * 8,
            self.packet_begin,
            end,
            0,
            0,
        ] {
            self.index.extend_from_slice(&v.to_be_bytes());
        }
        self.file_offset += size as u64;
        self.seq += 1;
        self.packet_begin = end;
        self.last_ts = end;
        self.pos = PACKET_PREAMBLE;
        Ok(())
    }

    /// Closes the last packet at `end`, writes the index, and returns
    /// (bytes of the stream file, bytes of the index file, packets).
    pub(crate) fn finish(
        mut self,
        end: u64,
        index_dir: &Path,
        uuid: &[u8; 16],
    ) -> Result<(u64, u64, u64), GenError> {
        self.close_packet(end, true, uuid)?;
        let path = index_dir.join(format!("channel0_{}.idx", self.cpu));
        std::fs::write(&path, &self.index).map_err(|source| GenError::Io { path, source })?;
        self.file.flush().map_err(|source| GenError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok((self.file_offset, self.index.len() as u64, self.seq))
    }

    /// Bytes this stream holds so far (closed packets plus the open one's content).
    #[inline]
    pub(crate) fn bytes(&self) -> u64 {
        self.file_offset + self.pos as u64
    }
}
