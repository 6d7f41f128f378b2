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
    /// Only the first data stream is announced at attach; the others come with the
    /// "new streams" flag once its first packet was served.
    pub late_streams: bool,
    /// After this many packets, indexes answer "retry" (no new data, as a quiet
    /// session) until [`FakeRelay::release`]; with every packet, the session
    /// stays open until then.
    pub hold_after_packets: Option<u32>,
    /// The declaration of this event class is left out of the metadata first served
    /// and appended to it (as TSDL text) when the index of the first packet holding
    /// its events is served, with the "new metadata" flag: as when a traced
    /// application enables an event after the viewer attached.
    pub late_class: Option<String>,
    pub hostname: String,
    pub session: String,
}

struct Packet {
    bytes: Vec<u8>,
    content_bits: u64,
    ts_begin: u64,
    ts_end: u64,
    stream_class: u64,
    /// Holds events of [`FakeConfig::late_class`].
    late: bool,
}

struct Stream {
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
        let trace = CtfTrace::open(dir)?;
        let mut metadata = std::fs::read(&trace.metadata_path)
            .map_err(|e| TraceError::io(&trace.metadata_path, e))?;
        let mut late_metadata = Vec::new();
        let mut late_packets = std::collections::HashSet::new();
        if let Some(name) = &cfg.late_class {
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
        let mut streams = Vec::new();
        for f in &trace.files {
            let mut c = Cursor::open(&trace, f)?;
            let data = std::fs::read(&f.path).map_err(|e| TraceError::io(&f.path, e))?;
            let packets = c
                .scan_packets(&trace)?
                .into_iter()
                .map(|p| Packet {
                    bytes: data[p.offset as usize..(p.offset + p.packet_bits / 8) as usize]
                        .to_vec(),
                    content_bits: p.content_bits,
                    ts_begin: p.ts_begin.unwrap_or(0),
                    ts_end: p.ts_end.unwrap_or(0),
                    stream_class: p.stream_id,
                    late: late_packets.contains(&(f.name.clone(), p.offset)),
                })
                .collect();
            streams.push(Stream {
                name: f.name.clone(),
                packets,
                next: 0,
                beacon_sent: false,
                retried: false,
            });
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
            metadata,
            late_metadata,
            metadata_sent: 0,
            metadata_paused: false,
            announced: 0,
            streams,
            commands: 0,
            packets_served: 0,
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
    metadata: Vec<u8>,
    /// Appended to `metadata` when first needed (see [`FakeConfig::late_class`]).
    late_metadata: Vec<u8>,
    metadata_sent: usize,
    metadata_paused: bool,
    /// Data streams announced so far.
    announced: usize,
    streams: Vec<Stream>,
    commands: u32,
    packets_served: u32,
}

const METADATA_STREAM: u64 = 1000;

fn text(out: &mut Vec<u8>, s: &str, len: usize, terminate: bool) {
    let mut f = vec![if terminate { 0u8 } else { b'x' }; len];
    let n = s.len().min(len - 1);
    f[..n].copy_from_slice(&s.as_bytes()[..n]);
    out.extend_from_slice(&f);
}

fn stream_entry(out: &mut Vec<u8>, id: u64, metadata: bool, channel: &str) {
    let start = out.len();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&1u64.to_be_bytes());
    out.extend_from_slice(&(metadata as u32).to_be_bytes());
    text(out, "fake/64-bit", 4096, true);
    text(out, channel, 255, true);
    debug_assert_eq!(out.len() - start, STREAM_LEN);
}

impl State {
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
                    out.extend_from_slice(&(self.streams.len() as u32 + 1).to_be_bytes());
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
                    self.announced = if self.cfg.late_streams {
                        1.min(self.streams.len())
                    } else {
                        self.streams.len()
                    };
                    let n = if ok { self.announced as u32 + 1 } else { 0 };
                    out.extend_from_slice(&n.to_be_bytes());
                    if ok {
                        stream_entry(&mut out, METADATA_STREAM, true, "metadata");
                        for (i, st) in self.streams[..self.announced].iter().enumerate() {
                            stream_entry(&mut out, i as u64, false, &st.name);
                        }
                    }
                }
                6 => {
                    let left = &self.metadata[self.metadata_sent..];
                    let mut take = match self.cfg.metadata_chunk {
                        0 => left.len(),
                        c => c.min(left.len()),
                    };
                    if self.cfg.metadata_pause && self.metadata_sent > 0 && !self.metadata_paused {
                        self.metadata_paused = true;
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
                        self.metadata_sent += take;
                    }
                }
                7 => {
                    let destroyed = matches!(self.cfg.fault, Fault::DestroyAfterPackets(k) if self.packets_served >= k);
                    let late = self.streams.len() - self.announced;
                    if destroyed {
                        out.extend_from_slice(&4u32.to_be_bytes());
                        out.extend_from_slice(&0u32.to_be_bytes());
                    } else if late > 0 && self.packets_served > 0 {
                        out.extend_from_slice(&1u32.to_be_bytes());
                        out.extend_from_slice(&(late as u32).to_be_bytes());
                        for i in self.announced..self.streams.len() {
                            stream_entry(&mut out, i as u64, false, &self.streams[i].name);
                        }
                        self.announced = self.streams.len();
                    } else {
                        out.extend_from_slice(&2u32.to_be_bytes());
                        out.extend_from_slice(&0u32.to_be_bytes());
                    }
                }
                4 => {
                    let id = arg(0) as usize;
                    let destroyed = matches!(self.cfg.fault, Fault::DestroyAfterPackets(k) if self.packets_served >= k);
                    let held = self
                        .cfg
                        .hold_after_packets
                        .is_some_and(|k| self.packets_served >= k)
                        && !self.released.load(Ordering::Relaxed);
                    let mut idx = [0u64; 7];
                    let mut grew = false;
                    let status: u32 = match self.streams.get_mut(id) {
                        None => 4,
                        Some(_) if bad => 13,
                        Some(_) if destroyed => 3,
                        Some(_) if held => 2,
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
                                if pk.late && !self.late_metadata.is_empty() {
                                    self.metadata.append(&mut self.late_metadata);
                                    grew = true;
                                }
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
                    for v in idx {
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                    let mut flags =
                        if self.announced < self.streams.len() && self.packets_served > 0 {
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
