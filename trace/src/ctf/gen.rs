//! Generator of large LTTng-like CTF traces for benchmarks: replays the events of a
//! real trace (its metadata copied as is, each event's context and payload bytes
//! copied verbatim) `copies` times, shifted in time, with fresh LTTng compact
//! headers, packet headers/contexts and index files. The result has the real
//! trace's event mix and field values (sched_switch, syscalls, irqs, wakeups,
//! forks, ... over all its CPUs) at any size.
//!
//! Supported sources: little-endian traces whose packet header/context are made of
//! byte-aligned integers and 8-bit arrays and whose stream uses the LTTng compact
//! event header (lttng-modules on x86-64, such as `many-threads`).

use super::decode::{reg, Op};
use super::reader::{CtfTrace, Cursor};
use super::types::{ByteOrder, Length, Type};
use crate::error::TraceError;
use std::io::Write;
use std::path::Path;

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenSummary {
    pub events: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// One source event: class id, timestamp (cycles) and the bytes after its header.
struct SrcEvent {
    id: u64,
    ts: u64,
    body: std::ops::Range<usize>,
}

fn unsupported(src: &Path, why: &str) -> TraceError {
    TraceError::Metadata {
        path: src.join("metadata"),
        reason: format!("cannot generate from this trace: {why}"),
    }
}

/// Writes `out` (created if needed): `copies` replays of the trace at `src`, packets of
/// `packet_bytes` bytes (LTTng kernel default: 256 KiB).
pub fn replicate(
    src: &Path,
    out: &Path,
    copies: u32,
    packet_bytes: u64,
) -> Result<GenSummary, TraceError> {
    let trace = CtfTrace::open(src)?;
    if trace.metadata.byte_order != ByteOrder::Little || trace.streams.len() != 1 {
        return Err(unsupported(src, "needs one little-endian stream class"));
    }
    let hdr = &trace.streams[0].event_header;
    let compact = matches!(
        hdr.ops.iter().find(|op| !matches!(op, Op::Align(_))),
        Some(Op::Int { size: 5, reg: r, .. }) if *r == reg::EVENT_ID
    );
    if !compact {
        return Err(unsupported(
            src,
            "the event header is not LTTng's compact header",
        ));
    }
    let header_ty = trace.metadata.packet_header.clone();
    let context_ty = trace.metadata.streams[0].packet_context.clone();
    for t in [&header_ty, &context_ty].into_iter().flatten() {
        check_simple(t).map_err(|w| unsupported(src, w))?;
    }
    std::fs::create_dir_all(out.join("index")).map_err(|e| TraceError::io(out, e))?;
    std::fs::copy(src.join("metadata"), out.join("metadata"))
        .map_err(|e| TraceError::io(out.join("metadata"), e))?;

    // The whole source is small: read every stream's events first.
    let mut streams = Vec::new();
    let (mut first, mut last) = (u64::MAX, 0u64);
    for f in &trace.files {
        let mut c = Cursor::open(&trace, f)?;
        let mut evs = Vec::new();
        let mut cpu = 0;
        let mut instance = 0;
        while c.advance(&trace)? {
            if c.cur.lost.is_some() {
                continue;
            }
            let (_, after, end) = c.cur.bits;
            let id = trace.classes[c.cur.class as usize].id;
            evs.push(SrcEvent {
                id,
                ts: c.cur.cycles,
                body: (after / 8) as usize..(end / 8) as usize,
            });
            cpu = c.packet.cpu.unwrap_or(0);
            instance = c.m.regs[reg::STREAM_INSTANCE as usize];
            first = first.min(c.cur.cycles);
            last = last.max(c.cur.cycles);
        }
        let data = std::fs::read(&f.path).map_err(|e| TraceError::io(&f.path, e))?;
        streams.push((f.name.clone(), evs, data, cpu, instance));
    }
    if first > last {
        return Err(unsupported(src, "no events"));
    }
    // Replays follow each other with a 1 ms gap.
    let span = last - first + 1_000_000;
    let uuid = trace.metadata.uuid.unwrap_or([0; 16]);
    let mut sum = GenSummary::default();
    for (name, evs, data, cpu, instance) in &streams {
        let mut w = PacketWriter {
            header_ty: header_ty.as_ref(),
            context_ty: context_ty.as_ref(),
            packet_bytes,
            uuid,
            cpu: *cpu as u64,
            instance: *instance,
            buf: Vec::with_capacity(packet_bytes as usize),
            file: Vec::new(),
            index: Vec::new(),
            seq: 0,
            ts_begin: 0,
            ts_last: 0,
            header_len: 0,
        };
        for k in 0..copies as u64 {
            for e in evs {
                w.event(e.id, e.ts + k * span, &data[e.body.clone()]);
                sum.events += 1;
            }
        }
        w.finish_packet();
        sum.packets += w.seq;
        sum.bytes += w.file.len() as u64;
        write_atomic(&out.join(name), &w.file)?;
        let mut idx = Vec::with_capacity(16 + w.index.len() * 56);
        idx.extend_from_slice(&0xC1F1_DCC1u32.to_be_bytes());
        idx.extend_from_slice(&1u32.to_be_bytes());
        idx.extend_from_slice(&0u32.to_be_bytes());
        idx.extend_from_slice(&56u32.to_be_bytes());
        for e in &w.index {
            for v in e {
                idx.extend_from_slice(&v.to_be_bytes());
            }
        }
        write_atomic(&out.join("index").join(format!("{name}.idx")), &idx)?;
    }
    Ok(sum)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TraceError> {
    let tmp = path.with_extension("tmp-gen");
    let mut f = std::fs::File::create(&tmp).map_err(|e| TraceError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| TraceError::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| TraceError::io(path, e))
}

/// Packet header/context types the writer can encode: byte-aligned integers and
/// fixed arrays of 8-bit integers.
fn check_simple(t: &Type) -> Result<(), &'static str> {
    let Type::Struct(s) = t else {
        return Err("packet header/context is not a structure");
    };
    for (_, f) in &s.fields {
        match f {
            Type::Int(i) if i.size % 8 == 0 && i.align <= 8 => {}
            Type::Array {
                elem,
                len: Length::Fixed(_),
                ..
            } if matches!(&**elem, Type::Int(i) if i.size == 8) => {}
            _ => return Err("packet header/context fields are not byte-aligned integers"),
        }
    }
    Ok(())
}

struct PacketWriter<'a> {
    header_ty: Option<&'a Type>,
    context_ty: Option<&'a Type>,
    packet_bytes: u64,
    uuid: [u8; 16],
    cpu: u64,
    instance: u64,
    buf: Vec<u8>,
    file: Vec<u8>,
    /// v1.0 index entries: offset, packet_size, content_size, begin, end, discarded, stream_id.
    index: Vec<[u64; 7]>,
    seq: u64,
    ts_begin: u64,
    ts_last: u64,
    header_len: usize,
}

impl PacketWriter<'_> {
    fn event(&mut self, id: u64, ts: u64, body: &[u8]) {
        let compact = id < 31 && !self.buf.is_empty() && ts - self.ts_last < (1 << 27);
        let len = if compact { 4 } else { 13 } + body.len();
        if !self.buf.is_empty() && self.buf.len() + len > self.packet_bytes as usize {
            self.finish_packet();
        }
        if self.buf.is_empty() {
            self.ts_begin = ts;
            self.ts_last = ts;
            self.write_header_context(0, 0); // placeholder, rewritten at the end
            self.header_len = self.buf.len();
        }
        if id < 31 && ts - self.ts_last < (1 << 27) {
            let v = (id as u32) | (((ts & ((1 << 27) - 1)) as u32) << 5);
            self.buf.extend_from_slice(&v.to_le_bytes());
        } else {
            self.buf.push(31);
            self.buf.extend_from_slice(&(id as u32).to_le_bytes());
            self.buf.extend_from_slice(&ts.to_le_bytes());
        }
        self.buf.extend_from_slice(body);
        self.ts_last = ts;
    }

    fn finish_packet(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let content = self.buf.len() as u64;
        // An event bigger than the packet size gets a bigger packet.
        let size = self.packet_bytes.max(content.div_ceil(4096) * 4096);
        let events = std::mem::take(&mut self.buf);
        self.write_header_context(content * 8, size * 8);
        debug_assert_eq!(self.buf.len(), self.header_len);
        let offset = self.file.len() as u64;
        self.file.extend_from_slice(&self.buf);
        self.file.extend_from_slice(&events[self.header_len..]);
        self.file.resize((offset + size) as usize, 0);
        self.index.push([
            offset,
            size * 8,
            content * 8,
            self.ts_begin,
            self.ts_last,
            0,
            0,
        ]);
        self.buf.clear();
        self.seq += 1;
    }

    fn write_header_context(&mut self, content_bits: u64, packet_bits: u64) {
        self.buf.clear();
        for (ty, scope) in [(self.header_ty, 0), (self.context_ty, 1)] {
            let Some(Type::Struct(s)) = ty else { continue };
            for (name, f) in &s.fields {
                match f {
                    Type::Int(i) => {
                        let v = match (scope, name.as_str()) {
                            (0, "magic") => 0xC1FC_1FC1,
                            (0, "stream_instance_id") => self.instance,
                            (1, "timestamp_begin") => self.ts_begin,
                            (1, "timestamp_end") => self.ts_last,
                            (1, "content_size") => content_bits,
                            (1, "packet_size") => packet_bits,
                            (1, "packet_seq_num") => self.seq,
                            (1, "cpu_id") => self.cpu,
                            _ => 0,
                        };
                        self.buf
                            .extend_from_slice(&v.to_le_bytes()[..(i.size / 8) as usize]);
                    }
                    Type::Array {
                        len: Length::Fixed(n),
                        ..
                    } => {
                        for k in 0..*n as usize {
                            self.buf.push(if name == "uuid" {
                                self.uuid.get(k).copied().unwrap_or(0)
                            } else {
                                0
                            });
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
