//! One per-CPU data stream file (`channel0_<cpu>`) and its index
//! (`index/channel0_<cpu>.idx`), written packet by packet as LTTng's consumer
//! daemon does: 256 KiB packets, the last one trimmed to whole 4 KiB pages.
//! Closed packets go to a [`PacketWriter`] thread, so that the file system's
//! work overlaps with generating the next packets.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

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

/// A closed packet: stream number, buffer, bytes to write.
type Job = (usize, Vec<u8>, usize);

/// The background thread writing closed packets to the stream files, in the
/// order they were closed. Buffers come back through a pool for reuse.
pub(crate) struct PacketWriter {
    tx: Option<SyncSender<Job>>,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
    failed: Arc<AtomicBool>,
    error: Arc<Mutex<Option<GenError>>>,
    handle: Option<JoinHandle<()>>,
}

impl PacketWriter {
    pub(crate) fn start(files: Vec<(PathBuf, File)>) -> Result<Self, GenError> {
        // A few packets in flight: enough to ride out slow writes, little memory.
        let (tx, rx) = sync_channel::<Job>(8);
        let pool = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None));
        let (pool2, failed2, error2) = (pool.clone(), failed.clone(), error.clone());
        let first = files.first().map(|(p, _)| p.clone()).unwrap_or_default();
        let spawned = std::thread::Builder::new()
            .name("gen-writer".into())
            .spawn(move || {
                let mut files = files;
                for (stream, buf, len) in rx {
                    if !failed2.load(Ordering::Relaxed) {
                        let (path, file) = &mut files[stream];
                        if let Err(source) = file.write_all(&buf[..len]) {
                            *error2.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(GenError::Io {
                                    path: path.clone(),
                                    source,
                                });
                            failed2.store(true, Ordering::Relaxed);
                        }
                    }
                    pool2.lock().unwrap_or_else(|p| p.into_inner()).push(buf);
                }
            });
        let handle = spawned.map_err(|source| GenError::Io {
            path: first,
            source,
        })?;
        Ok(PacketWriter {
            tx: Some(tx),
            pool,
            failed,
            error,
            handle: Some(handle),
        })
    }

    /// A packet buffer (contents arbitrary: every byte is written before use).
    fn buffer(&self) -> Vec<u8> {
        let reused = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        reused.unwrap_or_else(|| vec![0; PACKET_BYTES])
    }

    fn take_error(&self) -> GenError {
        self.error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| GenError::Io {
                path: PathBuf::from("<packet writer>"),
                source: std::io::Error::other("the packet writer thread stopped"),
            })
    }

    fn send(&self, job: Job) -> Result<(), GenError> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if !sent || self.failed.load(Ordering::Relaxed) {
            return Err(self.take_error());
        }
        Ok(())
    }

    /// Waits for every packet to be written.
    pub(crate) fn finish(mut self) -> Result<(), GenError> {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        if self.failed.load(Ordering::Relaxed) {
            return Err(self.take_error());
        }
        Ok(())
    }
}

impl Drop for PacketWriter {
    /// On an early return, stop the thread before the caller removes the files.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What closing a packet needs besides the stream: the trace UUID and the writer.
pub(crate) struct PacketOut {
    pub uuid: [u8; 16],
    pub writer: PacketWriter,
}

pub(crate) struct StreamWriter {
    cpu: u32,
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
    /// The stream of `cpu` and its (empty) file, to hand to the [`PacketWriter`].
    pub(crate) fn create(
        dir: &Path,
        cpu: u32,
        begin: u64,
    ) -> Result<(Self, (PathBuf, File)), GenError> {
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
        let stream = StreamWriter {
            cpu,
            packet: vec![0; PACKET_BYTES],
            pos: PACKET_PREAMBLE,
            last_ts: begin,
            packet_begin: begin,
            seq: 0,
            file_offset: 0,
            index,
        };
        Ok((stream, (path, file)))
    }

    /// Appends one event record. Returns true when a packet was closed (written)
    /// to make room for it.
    #[inline]
    pub(crate) fn emit(
        &mut self,
        id: u32,
        ts: u64,
        payload: &[u8],
        out: &PacketOut,
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
            self.close_packet(ts, false, out)?;
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
    fn close_packet(&mut self, end: u64, last: bool, out: &PacketOut) -> Result<(), GenError> {
        let content = self.pos;
        let size = if last {
            content.div_ceil(PAGE) * PAGE
        } else {
            PACKET_BYTES
        };
        let h = &mut self.packet;
        h[0..4].copy_from_slice(&0xC1FC_1FC1u32.to_le_bytes());
        h[4..20].copy_from_slice(&out.uuid);
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
        let full = std::mem::replace(&mut self.packet, out.writer.buffer());
        out.writer.send((self.cpu as usize, full, size))?;
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
        out: &PacketOut,
    ) -> Result<(u64, u64, u64), GenError> {
        self.close_packet(end, true, out)?;
        let path = index_dir.join(format!("channel0_{}.idx", self.cpu));
        std::fs::write(&path, &self.index).map_err(|source| GenError::Io { path, source })?;
        Ok((self.file_offset, self.index.len() as u64, self.seq))
    }

    /// Bytes this stream holds so far (closed packets plus the open one's content).
    #[inline]
    pub(crate) fn bytes(&self) -> u64 {
        self.file_offset + self.pos as u64
    }
}
