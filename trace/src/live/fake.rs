//! An in-process relay daemon serving a CTF trace directory over the live
//! protocol, with scripted faults: for tests of live readers (no LTTng needed).
//! It serves one viewer connection at a time, on a loopback port it picks.

use super::proto::{INDEX_LEN, SESSION_LEN, STREAM_LEN};
use crate::ctf::metadata;
use crate::ctf::reader::{CtfTrace, Cursor};
use crate::error::TraceError;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the fake relay does wrong, counted in viewer commands received (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Closes the connection instead of answering command `n`.
    CloseAt(u32),
    /// Answers command `n` with a reply whose status is unknown.
    BadStatusAt(u32),
    /// Never answers command `n` (the connection stays open).
    SilentAt(u32),
    /// The session is destroyed after `n` packets were served: indexes hang up.
    DestroyAfterPackets(u32),
    /// Session names in the session list are not NUL-terminated.
    UnterminatedName,
}

/// How the fake relay behaves.
#[derive(Debug, Clone, Default)]
pub struct FakeConfig {
    pub fault: Fault,
    /// Answer "retry" once before each packet (data not flushed yet).
    pub retry_first: bool,
    /// Send an inactivity beacon (up to the stream's first packet start) before the
    /// first packet of each stream.
    pub beacons: bool,
    /// The metadata is sent in chunks of this many bytes (0: in one reply).
    pub metadata_chunk: usize,
    /// After the first metadata chunk, answer "no new metadata" once (the tracer has
    /// not written the rest yet).
    pub metadata_pause: bool,
    /// Only the first data stream is announced at attach; each other one comes with
    /// the "new streams" flag once a packet ending at or after its first packet's
    /// start was served (the stream was created then).
    pub late_streams: bool,
    /// After this many packets, no more data comes (a quiet session) until
    /// [`FakeRelay::release`]: indexes answer with inactivity beacons (the live
    /// timer's) up to the relay's present, the end of the latest packet served; with
    /// every packet, the session stays open until then.
    pub hold_after_packets: Option<u32>,
    /// The declaration of this event class is left out of the metadata first served
    /// and appended to it (as TSDL text) when the index of the first packet holding
    /// its events is served, with the "new metadata" flag: as when a traced
    /// application enables an event after the viewer attached.
    pub late_class: Option<String>,
    /// More trace directories served as traces of the same session (each with its
    /// own metadata stream), as per-UID or per-PID buffers give: each one appears
    /// (its streams announced with the "new streams" flag) when the relay first
    /// serves the index of a packet ending at or after the trace's first packet
    /// start, as when a process registers with the session daemon at that time.
    pub late_traces: Vec<std::path::PathBuf>,
    /// The metadata of [`FakeConfig::late_traces`] is replaced by text that does not
    /// compile.
    pub bad_late_metadata: bool,
    pub hostname: String,
    pub session: String,
}

struct Packet {
    bytes: Vec<u8>,
    content_bits: u64,
    ts_begin: u64,
    ts_end: u64,
    /// `ts_begin` and `ts_end` in ns.
    begin_ns: i64,
    end_ns: i64,
    stream_class: u64,
    /// Holds events of [`FakeConfig::late_class`].
    late: bool,
}

struct Stream {
    /// Index of its trace in `State::traces`.
    trace: usize,
    announced: bool,
    /// When the stream appears (ns), for [`FakeConfig::late_streams`].
    appears_at: Option<i64>,
    appeared: bool,
    /// Its clock and stream class (from its first packet), for beacons.
    clock: Option<(crate::ctf::reader::ClockConv, u64)>,
    name: String,
    packets: Vec<Packet>,
    next: usize,
    beacon_sent: bool,
    retried: bool,
}

/// A running fake relay; stops when dropped.
pub struct FakeRelay {
    pub port: u16,
    stop: Arc<AtomicBool>,
    released: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeRelay {
    /// Serves the trace in `dir` (a CTF trace directory) as session `cfg.session` of
    /// host `cfg.hostname`.
    pub fn start(dir: &Path, cfg: FakeConfig) -> Result<FakeRelay, TraceError> {
        let mut traces = Vec::new();
        let mut streams = Vec::new();
        let dirs = std::iter::once(dir).chain(cfg.late_traces.iter().map(|d| d.as_path()));
        for (ti, d) in dirs.enumerate() {
            let late_class = if ti == 0 {
                cfg.late_class.as_deref()
            } else {
                None
            };
            let (mut t, mut s) = load_trace(d, ti, late_class)?;
            if ti > 0 {
                t.appears_at = s
                    .iter()
                    .filter_map(|s| s.packets.first().map(|p| p.begin_ns))
                    .min();
                t.appeared = t.appears_at.is_none();
                if cfg.bad_late_metadata {
                    t.metadata = b"/* CTF 1.8 */\ntrace { major = 1; minor = 8; ;;; }}\n".to_vec();
                }
            }
            if ti == 0 && cfg.late_streams {
                for st in s.iter_mut().skip(1) {
                    st.appears_at = st.packets.first().map(|p| p.begin_ns);
                    st.appeared = st.appears_at.is_none();
                }
            }
            traces.push(t);
            streams.append(&mut s);
        }
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| TraceError::io(dir, e))?;
        let port = listener
            .local_addr()
            .map_err(|e| TraceError::io(dir, e))?
            .port();
        listener
            .set_nonblocking(true)
            .map_err(|e| TraceError::io(dir, e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let released = Arc::new(AtomicBool::new(false));
        let mut state = State {
            released: released.clone(),
            cfg,
            traces,
            streams,
            commands: 0,
            packets_served: 0,
            now_ns: i64::MIN,
        };
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
                        state.serve(s, &stop2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(FakeRelay {
            port,
            stop,
            released,
            thread: Some(thread),
        })
    }

    /// Ends the hold of [`FakeConfig::hold_after_packets`]: the rest is served.
    pub fn release(&self) {
        self.released.store(true, Ordering::Relaxed);
    }

    pub fn url(&self, hostname: &str, session: &str) -> String {
        format!("net://127.0.0.1:{}/host/{hostname}/{session}", self.port)
    }
}

impl Drop for FakeRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct State {
    cfg: FakeConfig,
    released: Arc<AtomicBool>,
    traces: Vec<FakeTrace>,
    /// Data streams of every trace; a stream's relay id is its index here.
    streams: Vec<Stream>,
    commands: u32,
    packets_served: u32,
    /// The relay's present: end (ns) of the latest packet whose index was served.
    now_ns: i64,
}

/// Cycles of `clock` at `ns` (the inverse of `ClockConv::to_ns`).
fn cycles_at(clock: &crate::ctf::reader::ClockConv, ns: i64) -> u64 {
    let since = ns as i128 - clock.offset_s as i128 * 1_000_000_000;
    let c = since * clock.freq as i128 / 1_000_000_000 - clock.offset as i128;
    c.max(0) as u64
}

/// One CTF trace of the session.
struct FakeTrace {
    metadata: Vec<u8>,
    /// Appended to `metadata` when first needed (see [`FakeConfig::late_class`]).
    late_metadata: Vec<u8>,
    metadata_sent: usize,
    metadata_paused: bool,
    /// When the trace appears (ns), for [`FakeConfig::late_traces`].
    appears_at: Option<i64>,
    appeared: bool,
    /// Its metadata stream was sent to the viewer.
    metadata_announced: bool,
}

/// Relay id of trace `ti`'s metadata stream (data streams are numbered from 0).
const METADATA_STREAM: u64 = 1000;

/// Reads trace `dir` (number `ti` of the session) into packets, withholding the
/// declaration of `late_class` (see [`FakeConfig::late_class`]).
fn load_trace(
    dir: &Path,
    ti: usize,
    late_class: Option<&str>,
) -> Result<(FakeTrace, Vec<Stream>), TraceError> {
    let trace = CtfTrace::open(dir)?;
    let mut metadata =
        std::fs::read(&trace.metadata_path).map_err(|e| TraceError::io(&trace.metadata_path, e))?;
    let mut late_metadata = Vec::new();
    let mut late_packets = std::collections::HashSet::new();
    if let Some(name) = late_class {
        let path = &trace.metadata_path;
        let text =
            String::from_utf8_lossy(&metadata::unwrap_packets(path, &metadata)?).into_owned();
        let bad = |reason: String| TraceError::Metadata {
            path: path.clone(),
            reason,
        };
        let start = text
            .find(&format!("event {{\n\tname = \"{name}\";"))
            .ok_or_else(|| bad(format!("no event class {name:?} to withhold")))?;
        let end = text[start..]
            .find("\n};\n")
            .map(|e| start + e + 4)
            .ok_or_else(|| bad(format!("unterminated event class {name:?}")))?;
        late_metadata = text.as_bytes()[start..end].to_vec();
        metadata = format!("{}{}", &text[..start], &text[end..]).into_bytes();
        let mut exp = crate::Experiment::open(&[dir])?;
        let ids: Vec<u32> = (0..exp.class_count())
            .filter(|&c| exp.class_name(crate::ClassId(c)) == name)
            .collect();
        exp.for_each(
            &mut |e| {
                if ids.contains(&e.class().0) {
                    late_packets.insert((e.stream_name().to_string(), e.packet_offset()));
                }
                std::ops::ControlFlow::Continue(())
            },
            &std::sync::atomic::AtomicU64::new(0),
        )?;
    }
    let ns = |class: u64, cycles: u64| {
        let layout = trace.streams.iter().find(|s| s.id == class);
        layout.map_or(cycles as i64, |l| l.clock.to_ns(cycles))
    };
    let mut streams = Vec::new();
    for f in &trace.files {
        let mut c = Cursor::open(&trace, f)?;
        let data = std::fs::read(&f.path).map_err(|e| TraceError::io(&f.path, e))?;
        let packets: Vec<Packet> = c
            .scan_packets(&trace)?
            .into_iter()
            .map(|p| Packet {
                bytes: data[p.offset as usize..(p.offset + p.packet_bits / 8) as usize].to_vec(),
                content_bits: p.content_bits,
                ts_begin: p.ts_begin.unwrap_or(0),
                ts_end: p.ts_end.unwrap_or(0),
                begin_ns: ns(p.stream_id, p.ts_begin.unwrap_or(0)),
                end_ns: ns(p.stream_id, p.ts_end.unwrap_or(0)),
                stream_class: p.stream_id,
                late: late_packets.contains(&(f.name.clone(), p.offset)),
            })
            .collect();
        streams.push(Stream {
            trace: ti,
            announced: false,
            appears_at: None,
            appeared: true,
            clock: packets.first().and_then(|p: &Packet| {
                let l = trace.streams.iter().find(|s| s.id == p.stream_class)?;
                Some((l.clock, p.stream_class))
            }),
            name: f.name.clone(),
            packets,
            next: 0,
            beacon_sent: false,
            retried: false,
        });
    }
    let t = FakeTrace {
        metadata,
        late_metadata,
        metadata_sent: 0,
        metadata_paused: false,
        appears_at: None,
        appeared: true,
        metadata_announced: false,
    };
    Ok((t, streams))
}

fn text(out: &mut Vec<u8>, s: &str, len: usize, terminate: bool) {
    let mut f = vec![if terminate { 0u8 } else { b'x' }; len];
    let n = s.len().min(len - 1);
    f[..n].copy_from_slice(&s.as_bytes()[..n]);
    out.extend_from_slice(&f);
}

fn stream_entry(out: &mut Vec<u8>, id: u64, trace: usize, metadata: bool, channel: &str) {
    let start = out.len();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(trace as u64 + 1).to_be_bytes());
    out.extend_from_slice(&(metadata as u32).to_be_bytes());
    text(out, &format!("fake/trace{trace}/64-bit"), 4096, true);
    text(out, channel, 255, true);
    debug_assert_eq!(out.len() - start, STREAM_LEN);
}

impl State {
    /// Whether stream `i` exists for the viewer.
    fn visible(&self, i: usize) -> bool {
        let st = &self.streams[i];
        self.traces[st.trace].appeared && st.appeared
    }

    /// Streams (metadata streams first) that exist and were not sent to the viewer.
    fn unannounced(&self) -> (Vec<usize>, Vec<usize>) {
        let traces = (0..self.traces.len())
            .filter(|&t| self.traces[t].appeared && !self.traces[t].metadata_announced)
            .collect();
        let streams = (0..self.streams.len())
            .filter(|&i| !self.streams[i].announced && self.visible(i))
            .collect();
        (traces, streams)
    }

    /// Sends the entries of the unannounced streams; returns how many.
    fn announce(&mut self, out: &mut Vec<u8>) -> u32 {
        let (traces, streams) = self.unannounced();
        for &t in &traces {
            stream_entry(out, METADATA_STREAM + t as u64, t, true, "metadata");
            self.traces[t].metadata_announced = true;
        }
        for &i in &streams {
            let st = &mut self.streams[i];
            stream_entry(out, i as u64, st.trace, false, &st.name);
            st.announced = true;
        }
        (traces.len() + streams.len()) as u32
    }

    fn destroyed(&self) -> bool {
        matches!(self.cfg.fault, Fault::DestroyAfterPackets(k) if self.packets_served >= k)
    }

    fn serve(&mut self, mut s: TcpStream, stop: &AtomicBool) {
        loop {
            let mut h = [0u8; 16];
            if !read_full(&mut s, &mut h, stop) {
                return;
            }
            let size = u64::from_be_bytes(h[..8].try_into().expect("8")) as usize;
            let cmd = u32::from_be_bytes(h[8..12].try_into().expect("4"));
            if size > 1 << 16 {
                return;
            }
            let mut p = vec![0u8; size];
            if !read_full(&mut s, &mut p, stop) {
                return;
            }
            let n = self.commands;
            self.commands += 1;
            match self.cfg.fault {
                Fault::CloseAt(k) if k == n => return,
                Fault::SilentAt(k) if k == n => {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    return;
                }
                _ => {}
            }
            let bad = self.cfg.fault == Fault::BadStatusAt(n);
            let arg = |i: usize| u64::from_be_bytes(p[i..i + 8].try_into().expect("8"));
            let mut out = Vec::new();
            match cmd {
                1 => {
                    out.extend_from_slice(&7u64.to_be_bytes());
                    out.extend_from_slice(&2u32.to_be_bytes());
                    out.extend_from_slice(&15u32.to_be_bytes());
                    out.extend_from_slice(&1u32.to_be_bytes());
                }
                8 => out.extend_from_slice(&(if bad { 9u32 } else { 1 }).to_be_bytes()),
                2 => {
                    out.extend_from_slice(&1u32.to_be_bytes());
                    out.extend_from_slice(&42u64.to_be_bytes());
                    out.extend_from_slice(&1_000_000u32.to_be_bytes());
                    out.extend_from_slice(&0u32.to_be_bytes());
                    let n = self.streams.len() + self.traces.len();
                    out.extend_from_slice(&(n as u32).to_be_bytes());
                    let term = self.cfg.fault != Fault::UnterminatedName;
                    text(&mut out, &self.cfg.hostname, 64, term);
                    text(&mut out, &self.cfg.session, 255, term);
                    debug_assert_eq!(out.len(), 4 + SESSION_LEN);
                }
                3 => {
                    let ok = arg(0) == 42;
                    out.extend_from_slice(
                        &(if bad {
                            77
                        } else if ok {
                            1u32
                        } else {
                            3
                        })
                        .to_be_bytes(),
                    );
                    let at = out.len();
                    out.extend_from_slice(&0u32.to_be_bytes());
                    if ok {
                        let n = self.announce(&mut out);
                        out[at..at + 4].copy_from_slice(&n.to_be_bytes());
                    }
                }
                6 => {
                    let t = arg(0).checked_sub(METADATA_STREAM).map(|t| t as usize);
                    let Some(tr) = t.and_then(|t| self.traces.get_mut(t)) else {
                        out.extend_from_slice(&0u64.to_be_bytes());
                        out.extend_from_slice(&3u32.to_be_bytes());
                        let _ = s.write_all(&out);
                        continue;
                    };
                    let left = &tr.metadata[tr.metadata_sent..];
                    let mut take = match self.cfg.metadata_chunk {
                        0 => left.len(),
                        c => c.min(left.len()),
                    };
                    if self.cfg.metadata_pause && tr.metadata_sent > 0 && !tr.metadata_paused {
                        tr.metadata_paused = true;
                        take = 0;
                    }
                    let status: u32 = if bad {
                        99
                    } else if take == 0 {
                        2
                    } else {
                        1
                    };
                    out.extend_from_slice(&(take as u64).to_be_bytes());
                    out.extend_from_slice(&status.to_be_bytes());
                    if status == 1 {
                        out.extend_from_slice(&left[..take]);
                        tr.metadata_sent += take;
                    }
                }
                7 => {
                    let (t, st) = self.unannounced();
                    let exhausted = self
                        .streams
                        .iter()
                        .all(|st| st.announced && st.next >= st.packets.len());
                    if self.destroyed() {
                        out.extend_from_slice(&4u32.to_be_bytes());
                        out.extend_from_slice(&0u32.to_be_bytes());
                    } else if !t.is_empty() || !st.is_empty() {
                        out.extend_from_slice(&1u32.to_be_bytes());
                        let at = out.len();
                        out.extend_from_slice(&0u32.to_be_bytes());
                        let n = self.announce(&mut out);
                        out[at..at + 4].copy_from_slice(&n.to_be_bytes());
                    } else if exhausted
                        && self.traces.iter().all(|t| t.appeared)
                        && self.streams.iter().all(|s| s.appeared)
                    {
                        // Everything was served: the session was destroyed.
                        out.extend_from_slice(&4u32.to_be_bytes());
                        out.extend_from_slice(&0u32.to_be_bytes());
                    } else {
                        if self
                            .streams
                            .iter()
                            .all(|st| !st.announced || st.next >= st.packets.len())
                        {
                            // What was announced is all served: time passes, the
                            // traces still to come appear.
                            for t in &mut self.traces {
                                t.appeared = true;
                            }
                            for st in &mut self.streams {
                                st.appeared = true;
                            }
                        }
                        out.extend_from_slice(&2u32.to_be_bytes());
                        out.extend_from_slice(&0u32.to_be_bytes());
                    }
                }
                4 => {
                    let id = arg(0) as usize;
                    let destroyed = self.destroyed();
                    let held = self
                        .cfg
                        .hold_after_packets
                        .is_some_and(|k| self.packets_served >= k)
                        && !self.released.load(Ordering::Relaxed);
                    let mut idx = [0u64; 7];
                    let mut grew = false;
                    let mut served_end = None;
                    let trace = self.streams.get(id).map(|st| st.trace);
                    let now = self.now_ns;
                    let status: u32 = match self.streams.get_mut(id) {
                        None => 4,
                        Some(_) if bad => 13,
                        Some(_) if destroyed => 3,
                        Some(st) if held => match st.clock {
                            // Nothing in this stream until now (nor before its next packet).
                            Some((clock, class)) if now > i64::MIN => {
                                let next = st.packets.get(st.next).map_or(now, |p| p.begin_ns);
                                idx[4] = cycles_at(&clock, now.min(next));
                                idx[6] = class;
                                5
                            }
                            _ => 2,
                        },
                        Some(st) => match st.packets.get(st.next) {
                            None => 3,
                            Some(pk) if self.cfg.beacons && !st.beacon_sent => {
                                st.beacon_sent = true;
                                idx[4] = pk.ts_begin;
                                idx[6] = pk.stream_class;
                                5
                            }
                            Some(_) if self.cfg.retry_first && !st.retried => {
                                st.retried = true;
                                2
                            }
                            Some(pk) => {
                                st.retried = false;
                                served_end = Some(pk.end_ns);
                                grew = pk.late;
                                let off: u64 = st.packets[..st.next]
                                    .iter()
                                    .map(|p| p.bytes.len() as u64)
                                    .sum();
                                idx = [
                                    off,
                                    pk.bytes.len() as u64 * 8,
                                    pk.content_bits,
                                    pk.ts_begin,
                                    pk.ts_end,
                                    0,
                                    pk.stream_class,
                                ];
                                st.next += 1;
                                1
                            }
                        },
                    };
                    if let Some(t) = trace.filter(|_| grew) {
                        let tr = &mut self.traces[t];
                        grew = !tr.late_metadata.is_empty();
                        tr.metadata.append(&mut tr.late_metadata);
                    }
                    if let Some(end) = served_end {
                        self.now_ns = self.now_ns.max(end);
                        // Traces whose first packet starts by this packet's end exist now.
                        for t in &mut self.traces {
                            if t.appears_at.is_some_and(|a| a <= end) {
                                t.appeared = true;
                            }
                        }
                        for st in &mut self.streams {
                            if st.appears_at.is_some_and(|a| a <= end) {
                                st.appeared = true;
                            }
                        }
                    }
                    for v in idx {
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                    let (t, st) = self.unannounced();
                    let mut flags = if !t.is_empty() || !st.is_empty() {
                        2u32
                    } else {
                        0
                    };
                    if grew {
                        flags |= 1;
                    }
                    out.extend_from_slice(&status.to_be_bytes());
                    out.extend_from_slice(&flags.to_be_bytes());
                    debug_assert_eq!(out.len(), INDEX_LEN);
                }
                5 => {
                    let (id, off) = (arg(0) as usize, arg(8));
                    let found = self.streams.get(id).and_then(|st| {
                        let mut at = 0u64;
                        st.packets.iter().find(|p| {
                            let hit = at == off;
                            at += p.bytes.len() as u64;
                            hit
                        })
                    });
                    match found {
                        Some(pk) if !bad => {
                            self.packets_served += 1;
                            out.extend_from_slice(&1u32.to_be_bytes());
                            out.extend_from_slice(&(pk.bytes.len() as u32).to_be_bytes());
                            out.extend_from_slice(&0u32.to_be_bytes());
                            out.extend_from_slice(&pk.bytes);
                        }
                        _ => {
                            out.extend_from_slice(&(if bad { 55u32 } else { 3 }).to_be_bytes());
                            out.extend_from_slice(&[0u8; 8]);
                        }
                    }
                }
                _ => return,
            }
            if s.write_all(&out).is_err() {
                return;
            }
        }
    }
}

/// Reads exactly `b.len()` bytes; false on end of connection or stop.
fn read_full(s: &mut TcpStream, b: &mut [u8], stop: &AtomicBool) -> bool {
    let mut at = 0;
    while at < b.len() {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        match s.read(&mut b[at..]) {
            Ok(0) => return false,
            Ok(n) => at += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return false,
        }
    }
    true
}
