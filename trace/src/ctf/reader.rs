//! One CTF trace: metadata compiled into layouts, and a cursor per data stream file
//! that walks packets and events over the memory-mapped file.

use super::decode::{
    header_kind, read_bits, reg, update_clock, CompileError, Compiler, HeaderKind, Machine, Node,
    Program, Slot, SlotInfo, StaticField,
};
use super::index;
use super::metadata;
use super::types::*;
use crate::error::TraceError;
use memmap2::Mmap;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

const PACKET_MAGIC: u64 = 0xC1FC_1FC1;

/// What the experiment tells consumers about one trace.
#[derive(Debug, Clone)]
pub struct TraceMeta {
    pub name: String,
    pub path: PathBuf,
    /// `kernel`, `ust` or empty (env `domain`).
    pub domain: String,
    /// Environment of the metadata, values as text.
    pub env: BTreeMap<String, String>,
    /// Dense id of the trace's host (same `hostname` -> same id) in the experiment.
    pub host_id: u32,
}

/// Cycles -> ns of one clock class.
#[derive(Debug, Clone, Copy)]
pub struct ClockConv {
    pub freq: u64,
    pub offset_s: i64,
    pub offset: i64,
}

impl ClockConv {
    pub fn identity() -> Self {
        ClockConv {
            freq: 1_000_000_000,
            offset_s: 0,
            offset: 0,
        }
    }

    /// ns since the epoch (Babeltrace's integer arithmetic; exact when freq is 1 GHz).
    #[inline]
    pub fn to_ns(&self, cycles: u64) -> i64 {
        if self.freq == 1_000_000_000 {
            return self
                .offset_s
                .wrapping_mul(1_000_000_000)
                .wrapping_add(self.offset)
                .wrapping_add(cycles as i64);
        }
        let c = self.offset as i128 + cycles as i128;
        let ns = (self.offset_s as i128) * 1_000_000_000
            + (c * 1_000_000_000).div_euclid(self.freq as i128);
        ns as i64
    }

    /// Cycles -> duration in ns (no offset).
    pub fn duration_ns(&self, cycles: u64) -> i64 {
        if self.freq == 1_000_000_000 {
            cycles as i64
        } else {
            ((cycles as i128 * 1_000_000_000) / self.freq as i128) as i64
        }
    }
}

/// Compiled layouts of a stream class.
#[derive(Debug)]
pub struct StreamLayout {
    pub id: u64,
    pub packet_context: Program,
    pub event_header: Program,
    pub event_context: Program,
    /// Event class id -> index into `CtfTrace::classes`.
    pub by_id: IdMap,
    pub clock: ClockConv,
    /// Mask of the `events_discarded` counter width (32-bit on 32-bit targets).
    pub discarded_mask: u64,
    pub stream_context_tree: Node,
    pub header_kind: HeaderKind,
}

/// Event class id lookup: dense table for small ids, map for the others.
#[derive(Debug, Default)]
pub struct IdMap {
    pub(crate) dense: Vec<u32>,
    sparse: HashMap<u64, u32>,
    /// The only class, when there is exactly one (ids may then be absent).
    single: Option<u32>,
}

impl IdMap {
    #[inline]
    pub fn get(&self, id: u64) -> Option<u32> {
        if let Some(&c) = self.dense.get(id as usize) {
            if c != u32::MAX {
                return Some(c);
            }
            return None;
        }
        self.sparse.get(&id).copied()
    }
    fn insert(&mut self, id: u64, class: u32) {
        if id < 1 << 16 {
            if self.dense.len() <= id as usize {
                self.dense.resize(id as usize + 1, u32::MAX);
            }
            self.dense[id as usize] = class;
        } else {
            self.sparse.insert(id, class);
        }
    }
}

/// Compiled layouts of an event class.
#[derive(Debug)]
pub struct ClassLayout {
    pub name: String,
    pub id: u64,
    pub stream: usize,
    pub context: Program,
    pub payload: Program,
    /// Every slot this class's events may fill (packet, header, contexts, payload).
    pub slots: Vec<SlotInfo>,
    pub context_tree: Node,
    pub payload_tree: Node,
    /// Per slot: (scope index 0..3 into `Cursor::scope_start`, field) when the slot's
    /// scope has a fixed layout and is decoded on access.
    pub static_slots: Vec<Option<(u8, StaticField)>>,
    /// When the stream event context, event context and payload all have fixed layouts
    /// of whole bytes: their offsets from the first byte boundary after the header, and
    /// their total size in bits (the event is then skipped in one step).
    pub fixed_body: Option<([u64; 3], u64)>,
}

/// One data stream file of a trace.
#[derive(Debug, Clone)]
pub struct StreamFile {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
}

/// An opened CTF trace (metadata compiled, stream files listed).
#[derive(Debug)]
pub struct CtfTrace {
    pub dir: PathBuf,
    pub metadata_path: PathBuf,
    pub metadata: Metadata,
    pub packet_header: Program,
    pub streams: Vec<StreamLayout>,
    pub classes: Vec<ClassLayout>,
    pub nslots: usize,
    /// Data stream files sorted by name (Trace Compass's tie-break order).
    pub files: Vec<StreamFile>,
}

impl CtfTrace {
    /// Opens a trace directory (holding `metadata`).
    pub fn open(dir: &Path) -> Result<CtfTrace, TraceError> {
        let metadata_path = dir.join("metadata");
        if !metadata_path.is_file() {
            return Err(TraceError::NoTrace {
                path: dir.to_path_buf(),
            });
        }
        let metadata = metadata::load(&metadata_path)?;
        let mut t = Self::from_metadata(dir, &metadata_path, metadata)?;
        t.files = list_stream_files(dir)?;
        Ok(t)
    }

    /// Compiles layouts for already-parsed metadata (no stream files listed).
    pub fn from_metadata(
        dir: &Path,
        metadata_path: &Path,
        metadata: Metadata,
    ) -> Result<CtfTrace, TraceError> {
        let merr = |e: CompileError| TraceError::Metadata {
            path: metadata_path.to_path_buf(),
            reason: e.0,
        };
        let mut c0 = Compiler::new(metadata.byte_order, metadata.ctf2, &metadata.clocks);
        let packet_header = c0
            .compile(Scope::PacketHeader, metadata.packet_header.as_ref())
            .map_err(merr)?;
        let mut stream_classes = metadata.streams.clone();
        if stream_classes.is_empty() {
            // A trace with events but no `stream {}` block: one implicit stream class.
            stream_classes.push(StreamClass::default());
        }
        let mut streams = Vec::new();
        let mut classes = Vec::new();
        let mut nslots = c0.slots.len();
        for (si, sc) in stream_classes.iter().enumerate() {
            let mut c1 = c0.child();
            let prog_err = |what: &str, e: CompileError| TraceError::Metadata {
                path: metadata_path.to_path_buf(),
                reason: format!("stream class {}: {what}: {}", sc.id, e.0),
            };
            let packet_context = c1
                .compile(Scope::PacketContext, sc.packet_context.as_ref())
                .map_err(|e| prog_err("packet.context", e))?;
            let event_header = c1
                .compile(Scope::EventHeader, sc.event_header.as_ref())
                .map_err(|e| prog_err("event.header", e))?;
            let mut event_context = c1
                .compile(Scope::StreamEventContext, sc.event_context.as_ref())
                .map_err(|e| prog_err("event.context", e))?;
            let stream_context_tree = Node::clone(&c1.scopes.last().expect("scope").1);
            let clock_name = sc.clock.clone().or_else(|| c1.clock.clone());
            let clock = match clock_name
                .as_ref()
                .and_then(|n| metadata.clocks.iter().find(|c| &c.name == n))
                .or(if metadata.clocks.len() == 1 {
                    metadata.clocks.first()
                } else {
                    None
                }) {
                Some(c) => ClockConv {
                    freq: c.freq,
                    offset_s: c.offset_s,
                    offset: c.offset,
                },
                None => ClockConv::identity(),
            };
            let discarded_mask = packet_context
                .ops
                .iter()
                .find_map(|op| match op {
                    super::decode::Op::Int { size, reg: r, .. } if *r == reg::DISCARDED => {
                        Some(if *size >= 64 {
                            u64::MAX
                        } else {
                            (1u64 << size) - 1
                        })
                    }
                    _ => None,
                })
                .unwrap_or(u64::MAX);
            let mut by_id = IdMap::default();
            let single_stream = stream_classes.len() == 1;
            let members: Vec<&EventClass> = metadata
                .events
                .iter()
                .filter(|e| e.stream_id == sc.id || single_stream)
                .collect();
            for ec in &members {
                let mut c2 = c1.child();
                let cerr = |what: &str, e: CompileError| TraceError::Metadata {
                    path: metadata_path.to_path_buf(),
                    reason: format!("event `{}` (id {}): {what}: {}", ec.name, ec.id, e.0),
                };
                let context = c2
                    .compile(Scope::EventContext, ec.context.as_ref())
                    .map_err(|e| cerr("context", e))?;
                let context_tree = Node::clone(&c2.scopes.last().expect("scope").1);
                let payload = c2
                    .compile(Scope::EventPayload, ec.fields.as_ref())
                    .map_err(|e| cerr("fields", e))?;
                let payload_tree = Node::clone(&c2.scopes.last().expect("scope").1);
                // Fields other scopes refer to (lengths, selectors) must be decoded
                // eagerly: their scope loses its fixed (on-access) layout.
                let mut context = context;
                let refs: Vec<u32> = referenced_slots(&context)
                    .chain(referenced_slots(&payload))
                    .collect();
                for p in [&mut event_context, &mut context] {
                    if p.fixed
                        .as_ref()
                        .is_some_and(|fx| fx.fields.iter().any(|(slot, _)| refs.contains(slot)))
                    {
                        p.fixed = None;
                    }
                }
                nslots = nslots.max(c2.slots.len());
                let idx = classes.len() as u32;
                if by_id.get(ec.id).is_some() {
                    return Err(TraceError::Metadata {
                        path: metadata_path.to_path_buf(),
                        reason: format!(
                            "two event classes with id {} in stream class {}",
                            ec.id, sc.id
                        ),
                    });
                }
                by_id.insert(ec.id, idx);
                classes.push(ClassLayout {
                    fixed_body: None,
                    static_slots: Vec::new(),
                    name: ec.name.clone(),
                    id: ec.id,
                    stream: si,
                    context,
                    payload,
                    slots: c2.slots,
                    context_tree,
                    payload_tree,
                });
            }
            if members.len() == 1 {
                by_id.single = Some(classes.len() as u32 - 1);
            }
            for cl in classes.iter_mut().filter(|c| c.stream == si) {
                let mut static_slots = vec![None; cl.slots.len()];
                for (i, p) in [&event_context, &cl.context, &cl.payload]
                    .into_iter()
                    .enumerate()
                {
                    if let Some(fx) = &p.fixed {
                        for (slot, f) in &fx.fields {
                            static_slots[*slot as usize] = Some((i as u8, *f));
                        }
                    }
                }
                cl.static_slots = static_slots;
                cl.fixed_body = fixed_body([&event_context, &cl.context, &cl.payload]);
            }
            nslots = nslots.max(c1.slots.len());
            streams.push(StreamLayout {
                header_kind: header_kind(&event_header),
                id: sc.id,
                packet_context,
                event_header,
                event_context,
                by_id,
                clock,
                discarded_mask,
                stream_context_tree,
            });
        }
        Ok(CtfTrace {
            dir: dir.to_path_buf(),
            metadata_path: metadata_path.to_path_buf(),
            metadata,
            packet_header,
            streams,
            classes,
            nslots,
            files: Vec::new(),
        })
    }

    fn stream_by_id(&self, id: u64) -> Option<usize> {
        if self.streams.len() == 1 && self.metadata.streams.len() <= 1 {
            // DPDK and other producers omit ids when there is one stream class.
            return Some(0);
        }
        self.streams.iter().position(|s| s.id == id)
    }
}

/// Offsets and total size of three fixed scopes of whole bytes (see `fixed_body`).
fn fixed_body(progs: [&Program; 3]) -> Option<([u64; 3], u64)> {
    let mut offs = [0u64; 3];
    let mut total = 0u64;
    for (i, p) in progs.into_iter().enumerate() {
        let fx = p.fixed.as_ref()?;
        if fx.bits % 8 != 0 {
            return None;
        }
        offs[i] = total;
        total += fx.bits;
    }
    // Empty scopes do not align; a body of empty scopes only must not align either.
    if total == 0 {
        return None;
    }
    Some((offs, total))
}

/// Slots a program reads as lengths or selectors.
fn referenced_slots(p: &Program) -> impl Iterator<Item = u32> + '_ {
    use super::decode::{LenSrc, Op};
    p.ops.iter().filter_map(|op| match op {
        Op::Bytes {
            len: LenSrc::Slot(s),
            ..
        }
        | Op::ScalarArray {
            len: LenSrc::Slot(s),
            ..
        }
        | Op::Array {
            len: LenSrc::Slot(s),
            ..
        } => Some(*s),
        Op::Variant { tag, .. } => Some(*tag),
        Op::Optional { sel, .. } => Some(*sel),
        _ => None,
    })
}

/// Every regular file of the directory except `metadata`, dot files and sub-directories.
fn list_stream_files(dir: &Path) -> Result<Vec<StreamFile>, TraceError> {
    let rd = std::fs::read_dir(dir).map_err(|e| TraceError::io(dir, e))?;
    let mut files = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| TraceError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "metadata" || name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let md = std::fs::metadata(&path).map_err(|e| TraceError::io(&path, e))?;
        if !md.is_file() {
            continue;
        }
        files.push(StreamFile {
            name,
            path,
            size: md.len(),
        });
    }
    // Trace Compass compares file names as Java strings (UTF-16 order; equal to byte
    // order for the ASCII names LTTng writes).
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The event a cursor currently stands on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Current {
    /// Index into the trace's classes; `u32::MAX` for a lost-event record.
    pub class: u32,
    pub cycles: u64,
    pub ns: i64,
    /// Lost-event record: count and duration (cycles).
    pub lost: Option<(u64, u64)>,
    /// Bit positions in the stream file: event start, end of its header, event end.
    pub bits: (u64, u64, u64),
}

/// Packet facts (from the packet header/context, or the index).
#[derive(Debug, Clone, Copy, Default)]
pub struct PacketInfo {
    pub offset: u64,
    pub packet_bits: u64,
    pub content_bits: u64,
    pub ts_begin: Option<u64>,
    pub ts_end: Option<u64>,
    pub discarded: Option<u64>,
    pub seq_num: Option<u64>,
    pub cpu: Option<u32>,
    pub stream_id: u64,
    /// Bit position where events start.
    pub events_at: u64,
}

/// Whole packets missing from a stream: a gap in `packet_seq_num` (LTTng >= 2.8)
/// between two consecutive packets of a stream file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketGap {
    /// Packets missing.
    pub count: u64,
    /// End of the packet before the gap (its `timestamp_end`), ns.
    pub begin_ns: Option<i64>,
    /// Start of the packet after the gap (its `timestamp_begin`), ns.
    pub end_ns: Option<i64>,
    /// Byte offset of the packet after the gap in the stream file.
    pub offset: u64,
}

/// At most this many gaps are kept per stream (the count stays exact).
const MAX_GAPS_KEPT: usize = 4096;

/// Header forms of [`skip_run`].
const SKIP_COMPACT_LE: u8 = 0;
const SKIP_COMPACT_BE: u8 = 1;
const SKIP_LARGE_LE: u8 = 2;
const SKIP_LARGE_BE: u8 = 3;

/// Per-cursor table of [`Cursor::skip_unwanted_fixed`], rebuilt when the stream or the
/// class filter changes.
#[derive(Debug, Default)]
struct SkipTable {
    stream: usize,
    filter: Option<std::sync::Arc<[bool]>>,
    bits: Vec<u64>,
}

/// Walks events from bit `pos` while their header (of form `KIND`, short id) names an id
/// whose `skip` entry is a body size, up to `end`; returns the position and clock after
/// the last one passed. Both header forms start on a byte, so one unaligned 8-byte load
/// holds the id and the timestamp bits. `skip` is `u64::MAX` at the escape id (31 or
/// 65535: an extended header follows).
#[inline(always)]
fn skip_run<const KIND: u8>(
    data: &[u8],
    skip: &[u64],
    mut pos: u64,
    end: u64,
    mut clock: u64,
) -> (u64, u64) {
    let hdr_bits = if KIND == SKIP_COMPACT_LE || KIND == SKIP_COMPACT_BE {
        32
    } else {
        48
    };
    while pos < end {
        let p = (pos + 7) & !7;
        let hdr_end = p + hdr_bits;
        let byte = (p >> 3) as usize;
        let Some(w) = data.get(byte..byte + 8) else {
            break;
        };
        let w: [u8; 8] = w.try_into().expect("8 bytes");
        prefetch_ahead(data, byte);
        let (id, low, bits) = match KIND {
            SKIP_COMPACT_LE => {
                let w = u64::from_le_bytes(w);
                (w & 31, (w >> 5) & 0x7ff_ffff, 27)
            }
            SKIP_COMPACT_BE => {
                let w = u64::from_be_bytes(w) >> 32;
                (w >> 27, w & 0x7ff_ffff, 27)
            }
            SKIP_LARGE_LE => {
                let w = u64::from_le_bytes(w);
                (w & 0xffff, (w >> 16) & 0xffff_ffff, 32)
            }
            _ => {
                let w = u64::from_be_bytes(w) >> 16;
                (w >> 32, w & 0xffff_ffff, 32)
            }
        };
        // (Escape ids are `u64::MAX` in the table.) A header past `end` ends past it too;
        // the load above stayed inside the data.
        let Some(&body) = skip.get(id as usize) else {
            break;
        };
        if body == u64::MAX || hdr_end + body > end {
            break;
        }
        update_clock(&mut clock, low, bits);
        pos = hdr_end + body;
    }
    (pos, clock)
}

/// How far ahead of the header being read [`skip_run`] asks for the stream's bytes.
const PREFETCH_DISTANCE: usize = 2048;

/// Asks the processor for the bytes `PREFETCH_DISTANCE` after `byte`: skipping events is a
/// chain of dependent loads (header, then the size it gives), which stalls on every cache
/// line of a stream not read yet unless the line was requested early.
#[inline(always)]
fn prefetch_ahead(data: &[u8], byte: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        // A prefetch never faults, even past the mapping; the address is only computed.
        let p = data.as_ptr().wrapping_add(byte + PREFETCH_DISTANCE);
        // SAFETY: a prefetch is a hint with no effect on memory; SSE is baseline on x86_64.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, byte);
}

#[cold]
fn stream_err(path: &Path, e: super::decode::DecodeError, what: &str) -> TraceError {
    TraceError::Stream {
        path: path.to_path_buf(),
        offset: e.pos / 8,
        reason: format!("{what}: {}", e.reason),
    }
}

/// Reads one data stream file, packet by packet, event by event.
pub struct Cursor {
    /// Set after an error: the rest of the stream is not read (no error repeated).
    pub failed: bool,
    /// Correction added to every timestamp of this stream (Trace Compass's trace offset).
    pub offset_ns: i64,
    /// Bit position where the stream event context, event context and payload of the
    /// current event start (fields of fixed layouts are decoded from there on access).
    /// (The fourth entry is unused: indexing with `& 3` needs no bounds check.)
    pub scope_start: [u64; 4],
    pub file: StreamFile,
    map: Option<Mmap>,
    /// Packets fed in memory (live streams) when there is no mapped file.
    mem: Vec<u8>,
    pub m: Machine,
    pub stream: usize,
    pub packet: PacketInfo,
    next_packet: u64,
    /// Packets from this offset on are not read (see [`Cursor::read_packets`]).
    stop_at: u64,
    in_packet: bool,
    pos: u64,
    content_end: u64,
    last_ts: u64,
    prev_discarded: u64,
    pending_lost: u64,
    pub cur: Current,
    pub packets_read: u64,
    pub lost_total: u64,
    /// Packets missing according to `packet_seq_num` (see [`PacketGap`]).
    pub lost_packets: u64,
    /// The first gaps met (up to `MAX_GAPS_KEPT`).
    pub packet_gaps: Vec<PacketGap>,
    /// Sequence number and end timestamp of the previous packet.
    prev_seq: Option<(u64, Option<u64>)>,
    /// Bytes of packets opened since the last call of `take_progress`.
    progress: u64,
    /// Packet offsets from the index, when one was usable.
    index: Option<Vec<index::IndexEntry>>,
    index_pos: usize,
    /// Bytes of the mapping already handed back to the kernel (see `release_before`).
    released: u64,
    /// Class filter: per local class, whether its events are delivered; the last entry
    /// is for lost-event records. None: everything is delivered.
    pub wanted: Option<std::sync::Arc<[bool]>>,
    /// What `skip_unwanted_fixed` may pass over, per header id (built on first use).
    skip: SkipTable,
}

/// Granularity of `release_before`: large enough that the system call is rare.
const RELEASE_CHUNK: u64 = 4 << 20;

impl Cursor {
    pub fn open(trace: &CtfTrace, file: &StreamFile) -> Result<Cursor, TraceError> {
        let map = if file.size == 0 {
            None
        } else {
            let f = File::open(&file.path).map_err(|e| TraceError::io(&file.path, e))?;
            // SAFETY: the trace files are not modified while they are read (finished traces);
            // a concurrent truncation would raise SIGBUS, as for any mmap-based reader.
            Some(unsafe { Mmap::map(&f) }.map_err(|e| TraceError::io(&file.path, e))?)
        };
        let idx = index::load_for(&trace.dir, &file.name, file.size);
        Ok(Self::at_start(trace, file.clone(), map, idx))
    }

    /// This cursor back at the start of its stream, as [`Cursor::open`] would make it, on
    /// the same mapping: the pages it has touched stay mapped (a second reading does not
    /// fault them in again) and nothing is unmapped now.
    pub(crate) fn restarted(self, trace: &CtfTrace) -> Cursor {
        Self::at_start(trace, self.file, self.map, self.index)
    }

    fn at_start(
        trace: &CtfTrace,
        file: StreamFile,
        map: Option<Mmap>,
        idx: Option<Vec<index::IndexEntry>>,
    ) -> Cursor {
        Cursor {
            failed: false,
            offset_ns: 0,
            scope_start: [0; 4],
            file,
            map,
            mem: Vec::new(),
            m: Machine::new(trace.nslots, trace.metadata.uuid),
            stream: 0,
            packet: PacketInfo::default(),
            next_packet: 0,
            stop_at: u64::MAX,
            in_packet: false,
            pos: 0,
            content_end: 0,
            last_ts: 0,
            prev_discarded: 0,
            pending_lost: 0,
            cur: Current::default(),
            packets_read: 0,
            lost_total: 0,
            lost_packets: 0,
            packet_gaps: Vec::new(),
            prev_seq: None,
            progress: 0,
            index: idx,
            index_pos: 0,
            released: 0,
            wanted: None,
            skip: SkipTable::default(),
        }
    }

    /// Where this stream's packets start, if every packet has a beginning timestamp (so that
    /// reading may start at any of them, see [`Cursor::read_packets`]); `None` otherwise or on
    /// a damaged packet. The packets' headers and contexts are read (not their events) and
    /// the cursor comes back at its start, with its offset and filter.
    pub(crate) fn packet_starts(&mut self, trace: &CtfTrace) -> Option<Vec<u64>> {
        let mut starts = Vec::new();
        let complete = loop {
            match self.open_packet(trace) {
                Ok(true) if self.packet.ts_begin.is_some() => {
                    starts.push(self.packet.offset);
                    self.in_packet = false;
                }
                Ok(true) | Err(_) => break false,
                Ok(false) => break true,
            }
        };
        let (offset_ns, wanted) = (self.offset_ns, self.wanted.take());
        let (file, map, index) = (self.file.clone(), self.map.take(), self.index.take());
        *self = Self::at_start(trace, file, map, index);
        (self.offset_ns, self.wanted) = (offset_ns, wanted);
        complete.then_some(starts)
    }

    /// Reads only the packets that start in `[from, to)` (byte offsets of packet starts, from
    /// [`Cursor::packet_starts`]); call before reading.
    pub(crate) fn read_packets(&mut self, from: u64, to: u64) {
        self.next_packet = from;
        self.stop_at = to;
        // The index is followed from the first packet only.
        self.index = None;
    }

    /// Whether nothing was read yet from a mapped file (the cursor is as [`Cursor::open`]
    /// made it, apart from its offset and filter).
    pub(crate) fn is_unread(&self) -> bool {
        self.map.is_some()
            && !self.failed
            && self.packets_read == 0
            && !self.in_packet
            && self.pos == 0
            && self.next_packet == 0
            && self.stop_at == u64::MAX
            && self.index_pos == 0
            && self.released == 0
    }

    /// Drops the pages of the packets already read from this process's resident
    /// memory. A mapped file's pages count in the reader's RSS; without this, reading
    /// a 10 GB trace would hold up to 10 GB resident. The data stays in the page cache.
    fn release_before(&mut self, offset: u64) {
        let Some(map) = &self.map else { return };
        let end = offset / RELEASE_CHUNK * RELEASE_CHUNK;
        if end <= self.released {
            return;
        }
        // SAFETY: the mapping is read-only and file-backed: after MADV_DONTNEED, reads
        // of these pages fault them in again from the file, with the same bytes. No
        // event of this cursor refers to bytes before `offset` any more.
        let _ = unsafe {
            map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                self.released as usize,
                (end - self.released) as usize,
            )
        };
        self.released = end;
    }

    #[inline]
    pub fn data(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&self.mem)
    }

    pub fn take_progress(&mut self) -> u64 {
        std::mem::take(&mut self.progress)
    }

    fn err(&self, bit_pos: u64, reason: impl Into<String>) -> TraceError {
        TraceError::Stream {
            path: self.file.path.clone(),
            offset: bit_pos / 8,
            reason: reason.into(),
        }
    }

    /// Moves to the next event (or lost-event record). Ok(false) at the end of the stream.
    #[inline]
    pub fn advance(&mut self, trace: &CtfTrace) -> Result<bool, TraceError> {
        if self.failed {
            return Ok(false);
        }
        let r = self.advance_inner(trace);
        self.failed = r.is_err();
        r
    }

    #[inline]
    fn advance_inner(&mut self, trace: &CtfTrace) -> Result<bool, TraceError> {
        loop {
            if self.in_packet {
                if self.pos < self.content_end {
                    if let Some(w) = self.wanted.take() {
                        self.skip_unwanted_fixed(trace, &w);
                        self.wanted = Some(w);
                        if self.pos >= self.content_end {
                            continue;
                        }
                    }
                    if !self.read_fixed(trace) {
                        self.read_event(trace)?;
                    }
                    // Unwanted events are decoded (their size must be known) but not
                    // returned: they never reach the merge nor the consumer.
                    if let Some(w) = &self.wanted {
                        if !w.get(self.cur.class as usize).copied().unwrap_or(false) {
                            continue;
                        }
                    }
                    return Ok(true);
                }
                self.in_packet = false;
                if self.pending_lost != 0 {
                    let count = std::mem::take(&mut self.pending_lost);
                    if self
                        .wanted
                        .as_ref()
                        .is_some_and(|w| !w.last().copied().unwrap_or(false))
                    {
                        continue;
                    }
                    let end = self.packet.ts_end.unwrap_or(self.last_ts);
                    let layout = &trace.streams[self.stream];
                    self.cur = Current {
                        class: u32::MAX,
                        cycles: self.last_ts,
                        ns: layout
                            .clock
                            .to_ns(self.last_ts)
                            .wrapping_add(self.offset_ns),
                        lost: Some((count, end.wrapping_sub(self.last_ts))),
                        bits: (self.pos, self.pos, self.pos),
                    };
                    return Ok(true);
                }
            }
            if !self.open_packet(trace)? {
                return Ok(false);
            }
        }
    }

    /// The fast path of [`advance`](Self::advance) for merging readers: true when the
    /// next event of the current packet was read by `read_fixed` and is delivered;
    /// false (nothing changed) means: call `advance`.
    #[inline(always)]
    pub fn advance_fast(&mut self, trace: &CtfTrace) -> bool {
        self.in_packet
            && self.pos < self.content_end
            && !self.failed
            && self.wanted.is_none()
            && self.read_fixed(trace)
    }

    /// Reads the most common event without the general machinery: an LTTng compact or
    /// large header (either form) followed by a class whose scopes all have
    /// fixed layouts (`ClassLayout::fixed_body`). Returns false, changing nothing, for
    /// any other event and for anything out of bounds: `read_event` then reads it
    /// (and reports the error, if any). Header slots are not filled: only non-fixed
    /// scopes refer to them.
    #[inline(always)]
    fn read_fixed(&mut self, trace: &CtfTrace) -> bool {
        let layout = &trace.streams[self.stream];
        let data: &[u8] = match &self.map {
            Some(m) => m,
            None => &self.mem,
        };
        let start = self.pos;
        let end = self.content_end;
        let p = (start + 7) & !7;
        // (id, timestamp bits, their width, end of the header); extended forms (ids
        // past the short field) carry a 32-bit id and a full 64-bit timestamp.
        let (id, low, bits, hdr_end) = match layout.header_kind {
            HeaderKind::Compact { be, .. } => {
                if p + 32 > end {
                    return false;
                }
                let w = read_bits(data, p, 32, be);
                let (id, low) = if be {
                    (w >> 27, w & 0x7ff_ffff)
                } else {
                    (w & 31, w >> 5)
                };
                if id < 31 {
                    (id, low, 27, p + 32)
                } else {
                    let q = p + 8;
                    if q + 96 > end {
                        return false;
                    }
                    (
                        read_bits(data, q, 32, be),
                        read_bits(data, q + 32, 64, be),
                        64,
                        q + 96,
                    )
                }
            }
            HeaderKind::Large { be, .. } => {
                if p + 48 > end {
                    return false;
                }
                let id = read_bits(data, p, 16, be);
                if id < 65535 {
                    (id, read_bits(data, p + 16, 32, be), 32, p + 48)
                } else {
                    let q = p + 16;
                    if q + 96 > end {
                        return false;
                    }
                    (
                        read_bits(data, q, 32, be),
                        read_bits(data, q + 32, 64, be),
                        64,
                        q + 96,
                    )
                }
            }
            HeaderKind::Generic => return false,
        };
        let Some(class) = layout.by_id.get(id) else {
            return false;
        };
        let Some(cl) = trace.classes.get(class as usize) else {
            return false;
        };
        let Some((offs, total)) = cl.fixed_body else {
            return false;
        };
        // Both headers end on a byte: the body starts right there.
        let a = hdr_end;
        if a + total > end {
            return false;
        }
        update_clock(&mut self.m.clock, low, bits);
        let ts = self.m.clock;
        self.m.next_gen();
        self.scope_start = [a + offs[0], a + offs[1], a + offs[2], 0];
        self.pos = a + total;
        self.last_ts = ts;
        self.cur = Current {
            class,
            cycles: ts,
            ns: layout.clock.to_ns(ts).wrapping_add(self.offset_ns),
            lost: None,
            bits: (start, hdr_end, a + total),
        };
        true
    }

    /// With a class filter: passes over the coming events of unwanted classes with fixed
    /// layouts from their header alone (id and timestamp; the clock still advances), without
    /// filling the event record or the field slots. Stops, changing nothing more, at the
    /// packet's content end, at a wanted event, or at anything `read_fixed` would not read
    /// (generic headers, variable layouts, ids past the dense table, bounds): the general
    /// path handles those.
    fn skip_unwanted_fixed(&mut self, trace: &CtfTrace, wanted: &std::sync::Arc<[bool]>) {
        let layout = &trace.streams[self.stream];
        let kind = match layout.header_kind {
            HeaderKind::Compact { be: false, .. } => SKIP_COMPACT_LE,
            HeaderKind::Compact { be: true, .. } => SKIP_COMPACT_BE,
            HeaderKind::Large { be: false, .. } => SKIP_LARGE_LE,
            HeaderKind::Large { be: true, .. } => SKIP_LARGE_BE,
            HeaderKind::Generic => return,
        };
        // The table holds its filter alive, so pointer equality means the same filter.
        let current = self.skip.stream == self.stream
            && self
                .skip
                .filter
                .as_ref()
                .is_some_and(|f| std::sync::Arc::ptr_eq(f, wanted));
        if !current {
            // Per header id of this stream: body bits of an unwanted fixed-layout class,
            // or `u64::MAX` (stop: wanted, variable layout, or no such class).
            self.skip.bits = layout
                .by_id
                .dense
                .iter()
                .map(|&c| {
                    let fixed = trace.classes.get(c as usize).and_then(|cl| cl.fixed_body);
                    match fixed {
                        Some((_, total)) if !wanted.get(c as usize).copied().unwrap_or(true) => {
                            total
                        }
                        _ => u64::MAX,
                    }
                })
                .collect();
            // The escape ids of the short forms announce an extended header: general path.
            let escape = if matches!(kind, SKIP_COMPACT_LE | SKIP_COMPACT_BE) {
                31
            } else {
                65535
            };
            if let Some(e) = self.skip.bits.get_mut(escape) {
                *e = u64::MAX;
            }
            self.skip.stream = self.stream;
            self.skip.filter = Some(wanted.clone());
        }
        let data: &[u8] = match &self.map {
            Some(m) => m,
            None => &self.mem,
        };
        let (pos, clock) = match kind {
            SKIP_COMPACT_LE => skip_run::<SKIP_COMPACT_LE>(
                data,
                &self.skip.bits,
                self.pos,
                self.content_end,
                self.m.clock,
            ),
            SKIP_COMPACT_BE => skip_run::<SKIP_COMPACT_BE>(
                data,
                &self.skip.bits,
                self.pos,
                self.content_end,
                self.m.clock,
            ),
            SKIP_LARGE_LE => skip_run::<SKIP_LARGE_LE>(
                data,
                &self.skip.bits,
                self.pos,
                self.content_end,
                self.m.clock,
            ),
            _ => skip_run::<SKIP_LARGE_BE>(
                data,
                &self.skip.bits,
                self.pos,
                self.content_end,
                self.m.clock,
            ),
        };
        if pos != self.pos {
            self.m.clock = clock;
            self.last_ts = clock;
            self.pos = pos;
        }
    }

    fn read_event(&mut self, trace: &CtfTrace) -> Result<(), TraceError> {
        let data = self.map.as_deref().unwrap_or(&self.mem);
        let layout = &trace.streams[self.stream];
        let start = self.pos;
        let end = self.content_end;
        let mut pos = self.pos;
        let m = &mut self.m;
        m.next_gen();
        let gen = m.gen;
        let id = match layout.header_kind {
            HeaderKind::Compact { be, slots } => {
                let p = (pos + 7) & !7;
                if p + 32 > end {
                    return Err(self.err(p, "event header runs past the packet content"));
                }
                let w = read_bits(data, p, 32, be);
                let (id, low) = if be {
                    (w >> 27, w & 0x7ff_ffff)
                } else {
                    (w & 31, w >> 5)
                };
                m.slots[slots.id as usize] = Slot { v: id, len: 0, gen };
                if id < 31 {
                    update_clock(&mut m.clock, low, 27);
                    m.slots[slots.ts as usize] = Slot {
                        v: low,
                        len: 0,
                        gen,
                    };
                    pos = p + 32;
                    Some(id)
                } else {
                    let q = p + 8;
                    if q + 96 > end {
                        return Err(self.err(q, "event header runs past the packet content"));
                    }
                    let xid = read_bits(data, q, 32, be);
                    let ts = read_bits(data, q + 32, 64, be);
                    m.clock = ts;
                    m.slots[slots.ext_id as usize] = Slot {
                        v: xid,
                        len: 0,
                        gen,
                    };
                    m.slots[slots.ext_ts as usize] = Slot { v: ts, len: 0, gen };
                    pos = q + 96;
                    Some(xid)
                }
            }
            HeaderKind::Large { be, slots } => {
                let p = (pos + 7) & !7;
                if p + 48 > end {
                    return Err(self.err(p, "event header runs past the packet content"));
                }
                let id = read_bits(data, p, 16, be);
                m.slots[slots.id as usize] = Slot { v: id, len: 0, gen };
                if id < 65535 {
                    let low = read_bits(data, p + 16, 32, be);
                    update_clock(&mut m.clock, low, 32);
                    m.slots[slots.ts as usize] = Slot {
                        v: low,
                        len: 0,
                        gen,
                    };
                    pos = p + 48;
                    Some(id)
                } else {
                    let q = p + 16;
                    if q + 96 > end {
                        return Err(self.err(q, "event header runs past the packet content"));
                    }
                    let xid = read_bits(data, q, 32, be);
                    let ts = read_bits(data, q + 32, 64, be);
                    m.clock = ts;
                    m.slots[slots.ext_id as usize] = Slot {
                        v: xid,
                        len: 0,
                        gen,
                    };
                    m.slots[slots.ext_ts as usize] = Slot { v: ts, len: 0, gen };
                    pos = q + 96;
                    Some(xid)
                }
            }
            HeaderKind::Generic => {
                m.reg_set &= !(1 << reg::EVENT_ID);
                m.run(&layout.event_header, data, &mut pos, end)
                    .map_err(|e| stream_err(&self.file.path, e, "event header"))?;
                (m.reg_set & (1 << reg::EVENT_ID) != 0).then(|| m.regs[reg::EVENT_ID as usize])
            }
        };
        let after_header = pos;
        let ts = self.m.clock;
        let class = match id {
            Some(id) => match layout.by_id.get(id) {
                Some(c) => c,
                None => return Err(self.err(start, format!("unknown event class id {id}"))),
            },
            None => match layout.by_id.single {
                Some(c) => c,
                None => {
                    return Err(self.err(
                        start,
                        "event header has no id and the stream class has several event classes",
                    ))
                }
            },
        };
        let cl = &trace.classes[class as usize];
        if let Some((offs, total)) = cl.fixed_body {
            // Every non-empty fixed scope starts by aligning to a byte; all sizes are
            // whole bytes, so one alignment places the three scopes.
            let a = (pos + 7) & !7;
            if a + total > end {
                return Err(self.err(
                    a,
                    format!("event `{}` runs past the packet content", cl.name),
                ));
            }
            self.scope_start = [a + offs[0], a + offs[1], a + offs[2], 0];
            self.pos = a + total;
            self.last_ts = ts;
            self.cur = Current {
                class,
                cycles: ts,
                ns: layout.clock.to_ns(ts).wrapping_add(self.offset_ns),
                lost: None,
                bits: (start, after_header, a + total),
            };
            return Ok(());
        }
        for (i, (prog, what)) in [
            (&layout.event_context, "stream event context"),
            (&cl.context, "event context"),
            (&cl.payload, "payload"),
        ]
        .into_iter()
        .enumerate()
        {
            match &prog.fixed {
                Some(fx) => {
                    if !prog.ops.is_empty() {
                        pos = (pos + 7) & !7;
                    }
                    self.scope_start[i] = pos;
                    pos += fx.bits;
                    if pos > end {
                        return Err(self.err(
                            self.scope_start[i],
                            format!("{what} of `{}` runs past the packet content", cl.name),
                        ));
                    }
                }
                None => {
                    self.scope_start[i] = pos;
                    self.m
                        .run(prog, data, &mut pos, end)
                        .map_err(|e| stream_err(&self.file.path, e, what))?;
                }
            }
        }
        if pos == start {
            return Err(self.err(start, "empty event (no bits consumed)"));
        }
        self.pos = pos;
        self.last_ts = ts;
        self.cur = Current {
            class,
            cycles: ts,
            ns: layout.clock.to_ns(ts).wrapping_add(self.offset_ns),
            lost: None,
            bits: (start, after_header, pos),
        };
        Ok(())
    }

    /// Opens the next packet; Ok(false) at the end of the file.
    fn open_packet(&mut self, trace: &CtfTrace) -> Result<bool, TraceError> {
        let size = self.file.size;
        let off = self.next_packet;
        if off >= size || off >= self.stop_at {
            return Ok(false);
        }
        self.release_before(off);
        let data = self.map.as_deref().unwrap_or(&self.mem);
        let file_end = size * 8;
        let m = &mut self.m;
        m.next_gen();
        m.reg_set = 0;
        let mut pos = off * 8;
        let map_err = |e: super::decode::DecodeError, what: &str| TraceError::Stream {
            path: self.file.path.clone(),
            offset: e.pos / 8,
            reason: format!("{what}: {}", e.reason),
        };
        m.run(&trace.packet_header, data, &mut pos, file_end)
            .map_err(|e| map_err(e, "packet header"))?;
        if m.has(reg::MAGIC) && m.regs[reg::MAGIC as usize] != PACKET_MAGIC {
            return Err(self.err(
                off * 8,
                format!(
                    "bad packet magic 0x{:08x} (want 0xc1fc1fc1)",
                    self.m.regs[reg::MAGIC as usize]
                ),
            ));
        }
        let stream_id = if m.has(reg::STREAM_ID) {
            m.regs[reg::STREAM_ID as usize]
        } else {
            0
        };
        let Some(stream) = trace.stream_by_id(stream_id) else {
            return Err(self.err(off * 8, format!("unknown stream class id {stream_id}")));
        };
        self.stream = stream;
        let layout = &trace.streams[stream];
        let m = &mut self.m;
        m.run(&layout.packet_context, data, &mut pos, file_end)
            .map_err(|e| map_err(e, "packet context"))?;
        let g = |r: u8| m.has(r).then(|| m.regs[r as usize]);
        let rest = file_end - off * 8;
        let packet_bits = g(reg::PACKET_SIZE).or(g(reg::CONTENT_SIZE)).unwrap_or(rest);
        let content_bits = g(reg::CONTENT_SIZE).unwrap_or(packet_bits);
        let (ts_begin, ts_end, discarded, seq_num) = (
            g(reg::TS_BEGIN),
            g(reg::TS_END),
            g(reg::DISCARDED),
            g(reg::SEQ_NUM),
        );
        let cpu = g(reg::CPU_ID).map(|c| c as u32);
        if packet_bits == 0 || packet_bits % 8 != 0 {
            return Err(self.err(off * 8, format!("bad packet size {packet_bits} bits")));
        }
        if content_bits > packet_bits {
            return Err(self.err(
                off * 8,
                format!("content size {content_bits} bits exceeds packet size {packet_bits} bits"),
            ));
        }
        if packet_bits > rest {
            return Err(self.err(
                off * 8,
                format!(
                    "packet of {} bytes runs past the end of the file ({} bytes left)",
                    packet_bits / 8,
                    rest / 8
                ),
            ));
        }
        if pos > off * 8 + content_bits {
            return Err(self.err(
                off * 8,
                format!(
                    "packet header and context ({} bits) exceed the content size ({content_bits} bits)",
                    pos - off * 8
                ),
            ));
        }
        self.packet = PacketInfo {
            offset: off,
            packet_bits,
            content_bits,
            ts_begin,
            ts_end,
            discarded,
            seq_num,
            cpu,
            stream_id,
            events_at: pos,
        };
        if let Some(tb) = ts_begin {
            self.m.clock = tb;
            self.last_ts = tb;
        }
        if let Some(seq) = seq_num {
            // Trace Compass ignores the sequence number; babeltrace2 reports a gap as
            // discarded packets between the two packets' end and beginning times.
            if let Some((prev, prev_end)) = self.prev_seq {
                if seq > prev.saturating_add(1) {
                    let count = seq - prev - 1;
                    self.lost_packets = self.lost_packets.saturating_add(count);
                    if self.packet_gaps.len() < MAX_GAPS_KEPT {
                        let ns = |c: u64| layout.clock.to_ns(c).wrapping_add(self.offset_ns);
                        self.packet_gaps.push(PacketGap {
                            count,
                            begin_ns: prev_end.map(ns),
                            end_ns: ts_begin.map(ns),
                            offset: off,
                        });
                    }
                }
            }
            self.prev_seq = Some((seq, ts_end));
        }
        if let Some(d) = discarded {
            let lost = d.wrapping_sub(self.prev_discarded) & layout.discarded_mask;
            self.prev_discarded = d;
            self.pending_lost = lost;
            self.lost_total = self.lost_total.saturating_add(lost);
        }
        self.pos = pos;
        self.content_end = off * 8 + content_bits;
        self.next_packet = off + packet_bits / 8;
        self.in_packet = true;
        self.packets_read += 1;
        self.progress += packet_bits / 8;
        self.check_index_entry(off);
        Ok(true)
    }

    /// Drops the index when it disagrees with the packet just opened (stale index).
    fn check_index_entry(&mut self, off: u64) {
        let Some(idx) = &self.index else { return };
        let p = &self.packet;
        let ok = idx.get(self.index_pos).is_some_and(|e| {
            e.offset == off
                && e.packet_bits == p.packet_bits
                && e.content_bits == p.content_bits
                && p.ts_begin.is_none_or(|t| t == e.ts_begin)
                && p.ts_end.is_none_or(|t| t == e.ts_end)
        });
        if ok {
            self.index_pos += 1;
        } else {
            self.index = None;
        }
    }

    /// True when an LTTng index is in use for this stream.
    pub fn has_index(&self) -> bool {
        self.index.is_some()
    }

    /// Skips the packets that end before `begin_ns`, using the index when there is one
    /// and reading packet headers and contexts only otherwise. Call before reading.
    pub fn skip_packets_before(
        &mut self,
        trace: &CtfTrace,
        begin_ns: i64,
    ) -> Result<(), TraceError> {
        if self.packets_read != 0 || self.failed {
            return Ok(());
        }
        let r = self.skip_inner(trace, begin_ns);
        self.failed = r.is_err();
        r
    }

    fn skip_inner(&mut self, trace: &CtfTrace, begin_ns: i64) -> Result<(), TraceError> {
        let offset_ns = self.offset_ns;
        let conv = |trace: &CtfTrace, stream: usize, cycles: u64| {
            trace.streams[stream]
                .clock
                .to_ns(cycles)
                .wrapping_add(offset_ns)
        };
        if let Some(idx) = &self.index {
            let mut k = 0;
            while k < idx.len() {
                let e = &idx[k];
                let Some(stream) = trace.stream_by_id(e.stream_id) else {
                    break;
                };
                if conv(trace, stream, e.ts_end) >= begin_ns {
                    break;
                }
                k += 1;
            }
            if k > 0 {
                self.prev_discarded = idx[k - 1].discarded;
                self.prev_seq = idx[k - 1]
                    .packet_seq_num
                    .map(|s| (s, Some(idx[k - 1].ts_end)));
                self.next_packet = idx.get(k).map(|e| e.offset).unwrap_or(self.file.size);
                self.progress += self.next_packet;
                self.index_pos = k;
            }
            return Ok(());
        }
        loop {
            let at = self.next_packet;
            let prev = self.prev_discarded;
            let (prev_seq, lost_packets, ngaps) =
                (self.prev_seq, self.lost_packets, self.packet_gaps.len());
            if !self.open_packet(trace)? {
                return Ok(());
            }
            let end = self.packet.ts_end.map(|t| conv(trace, self.stream, t));
            if end.is_none_or(|e| e >= begin_ns) {
                // Re-read this packet normally.
                self.next_packet = at;
                self.prev_discarded = prev;
                self.prev_seq = prev_seq;
                self.lost_packets = lost_packets;
                self.packet_gaps.truncate(ngaps);
                self.lost_total -= self.pending_lost;
                self.pending_lost = 0;
                self.in_packet = false;
                self.packets_read -= 1;
                return Ok(());
            }
            self.in_packet = false;
            self.pending_lost = 0;
        }
    }

    /// Reads every packet's header and context (no events): the packets of the stream.
    pub fn scan_packets(&mut self, trace: &CtfTrace) -> Result<Vec<PacketInfo>, TraceError> {
        let mut out = Vec::new();
        while self.open_packet(trace)? {
            out.push(self.packet);
            self.in_packet = false;
            self.pending_lost = 0;
        }
        Ok(out)
    }

    /// The index entries, when an index file was found and is consistent.
    pub fn index_entries(&self) -> Option<&[index::IndexEntry]> {
        self.index.as_deref()
    }
}

// --- In-memory streams (live sessions, see crate::live) ---
impl Cursor {
    /// A cursor with no file: whole packets are fed with [`Cursor::feed_packet`] as
    /// they arrive, and [`Cursor::advance`] returns `Ok(false)` when they are all read.
    pub fn in_memory(trace: &CtfTrace, name: &str) -> Result<Cursor, TraceError> {
        let file = StreamFile {
            name: name.to_string(),
            path: trace.dir.join(name),
            size: 0,
        };
        let mut c = Cursor::open(trace, &file)?;
        c.index = None;
        Ok(c)
    }

    /// Appends one whole packet (header to padding). Bytes already read are dropped
    /// first, so memory stays at about one packet per stream.
    pub fn feed_packet(&mut self, packet: &[u8]) {
        if !self.in_packet && self.next_packet >= self.file.size {
            self.mem.clear();
            self.next_packet = 0;
        }
        self.mem.extend_from_slice(packet);
        self.file.size = self.mem.len() as u64;
    }
}
