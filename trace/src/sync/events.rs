//! Which events of an experiment are packet sends and receives, and their match keys
//! (Trace Compass's `TcpEventMatching` and `TcpLttngEventMatching`); and
//! [`synchronize`], matching over a whole experiment in its event order.
//!
//! - lttng-modules "addons" events `inet_sock_local_out` (send) and `inet_sock_local_in`
//!   (receive), fields `seq`, `ack_seq`, `flags`;
//! - mainline kernel events `net_dev_queue` (send) and `netif_receive_skb` (receive;
//!   `net_if_receive_skb` in the LTTng 2.7 layout), TCP header fields under
//!   `network_header.<ipv4|ipv6>.transport_header.tcp.` (LTTng >= 2.9) or
//!   `transport_fields.thtype_tcp.` (earlier layout);
//! - VM/host hypercalls (lttng-modules addons, Trace Compass incubator's
//!   `TwoWayVmEventMatching`): `vmsync_gh_guest` (guest to host, sent) with `vmsync_gh_host`
//!   (received), `vmsync_hg_host` (host to guest, sent) with `vmsync_hg_guest` (received),
//!   keyed by `vm_uid` and `cnt`.
//!
//! An event lacking any key field (a non-TCP packet) is not matched.

use super::algorithm::{SyncResult, Synchronizer};
use super::matching::{Direction, MatchKey, TcpKey};
use crate::ctf::reader::{CtfTrace, Cursor};
use crate::error::TraceError;
use crate::experiment::{ClassId, Event, Experiment, FieldHandle};
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

const ADDONS_SEND: &str = "inet_sock_local_out";
const ADDONS_RECEIVE: &str = "inet_sock_local_in";
const NET_SEND: &[&str] = &["net_dev_queue"];
const NET_RECEIVE: &[&str] = &["netif_receive_skb", "net_if_receive_skb"];
/// Prefixes of the TCP header fields in mainline network events, tried in order. Variant
/// options are named `_ipv4`/`_tcp` in lttng-modules' metadata; Trace Compass strips the
/// underscore (its path is `network_header/<selected>/transport_header/tcp/seq`), the
/// experiment's field names may keep it: both spellings are accepted.
const NET_TCP_PREFIXES: &[&str] = &[
    "network_header.ipv4.transport_header.tcp.",
    "network_header.ipv6.transport_header.tcp.",
    "network_header._ipv4.transport_header._tcp.",
    "network_header._ipv6.transport_header._tcp.",
    "transport_fields.thtype_tcp.",
    "transport_fields._thtype_tcp.",
];

const VMSYNC_SEND: &[&str] = &["vmsync_gh_guest", "vmsync_hg_host"];
const VMSYNC_RECEIVE: &[&str] = &["vmsync_gh_host", "vmsync_hg_guest"];

/// Handles of one key field: alternatives (e.g. IPv4 and IPv6 layouts), first present wins.
#[derive(Debug, Clone, Default)]
struct FieldAlternatives(Vec<FieldHandle>);

impl FieldAlternatives {
    fn read(&self, ev: &Event<'_>) -> Option<u64> {
        self.0.iter().find_map(|&h| ev.int(h)).map(|v| v as u64)
    }
}

#[derive(Debug, Clone)]
enum KeyFields {
    Tcp {
        seq: FieldAlternatives,
        ack_seq: FieldAlternatives,
        flags: FieldAlternatives,
    },
    VmSync {
        vm_uid: FieldHandle,
        cnt: FieldHandle,
    },
}

#[derive(Debug, Clone)]
struct ClassPlan {
    direction: Direction,
    key: KeyFields,
}

/// Per event class of an experiment: whether it is a packet send or receive, and where
/// its key fields are.
#[derive(Debug, Clone)]
pub struct MatchPlan {
    classes: Vec<Option<ClassPlan>>,
}

impl MatchPlan {
    pub fn new(exp: &Experiment) -> MatchPlan {
        let classes = (0..exp.class_count())
            .map(|c| {
                let class = ClassId(c);
                let name = exp.class_name(class);
                let handles = |prefixes: &[&str], field: &str| {
                    FieldAlternatives(
                        prefixes
                            .iter()
                            .filter_map(|p| exp.field_handle(class, &format!("{p}{field}")))
                            .collect(),
                    )
                };
                let vmsync = |direction| {
                    Some(ClassPlan {
                        direction,
                        key: KeyFields::VmSync {
                            vm_uid: exp.field_handle(class, "vm_uid")?,
                            cnt: exp.field_handle(class, "cnt")?,
                        },
                    })
                };
                if VMSYNC_SEND.contains(&name) {
                    return vmsync(Direction::Send);
                }
                if VMSYNC_RECEIVE.contains(&name) {
                    return vmsync(Direction::Receive);
                }
                let (direction, prefixes): (Direction, &[&str]) = if name == ADDONS_SEND {
                    (Direction::Send, &[""])
                } else if name == ADDONS_RECEIVE {
                    (Direction::Receive, &[""])
                } else if NET_SEND.contains(&name) {
                    (Direction::Send, NET_TCP_PREFIXES)
                } else if NET_RECEIVE.contains(&name) {
                    (Direction::Receive, NET_TCP_PREFIXES)
                } else {
                    return None;
                };
                let (seq, ack_seq, flags) = (
                    handles(prefixes, "seq"),
                    handles(prefixes, "ack_seq"),
                    handles(prefixes, "flags"),
                );
                let complete = !seq.0.is_empty() && !ack_seq.0.is_empty() && !flags.0.is_empty();
                complete.then_some(ClassPlan {
                    direction,
                    key: KeyFields::Tcp {
                        seq,
                        ack_seq,
                        flags,
                    },
                })
            })
            .collect();
        MatchPlan { classes }
    }

    /// Whether no class of the experiment can be matched.
    pub fn is_empty(&self) -> bool {
        self.classes.iter().all(Option::is_none)
    }

    /// How many event classes are matched on (sends and receives, all traces).
    pub fn class_count(&self) -> usize {
        self.classes.iter().filter(|c| c.is_some()).count()
    }

    /// The event's direction and key, if it is a TCP packet send or receive.
    #[inline]
    pub fn key_of(&self, ev: &Event<'_>) -> Option<(Direction, MatchKey)> {
        let plan = self.classes.get(ev.class().0 as usize)?.as_ref()?;
        let key = match &plan.key {
            KeyFields::Tcp {
                seq,
                ack_seq,
                flags,
            } => MatchKey::Tcp(TcpKey {
                seq: seq.read(ev)?,
                ack_seq: ack_seq.read(ev)?,
                flags: flags.read(ev)?,
            }),
            KeyFields::VmSync { vm_uid, cnt } => MatchKey::VmSync {
                vm_uid: ev.int(*vm_uid)? as u64,
                cnt: ev.int(*cnt)? as u64,
            },
        };
        Some((plan.direction, key))
    }
}

/// Host id of each trace, as Trace Compass's `CtfTmfTrace.getHostId`: the `uuid` of the
/// trace's clock when it has exactly one clock and that clock has one (LTTng writes the
/// machine's boot id there, so kernel and user-space traces of one machine share it), else
/// the trace name (the path when several traces share a name). Trace Compass reads no clock
/// uuid from CTF 2 metadata, so CTF 2 traces always get their name.
pub fn host_ids(exp: &Experiment) -> Vec<String> {
    host_ids_of(&[exp])
}

/// [`host_ids`] of the traces of `exps` taken as one experiment (in order).
pub fn host_ids_of(exps: &[&Experiment]) -> Vec<String> {
    let metas: Vec<_> = exps.iter().flat_map(|e| e.traces()).collect();
    exps.iter()
        .flat_map(|e| e.ctf_traces())
        .zip(metas.iter().copied())
        .map(|(t, m)| {
            if let Some(id) = clock_host_id(t) {
                return id;
            }
            if metas.iter().filter(|o| o.name == m.name).count() > 1 {
                m.path.display().to_string()
            } else {
                m.name.clone()
            }
        })
        .collect()
}

/// The host id a trace's clock gives (see [`host_ids`]); `None` when the trace is known by
/// its name.
fn clock_host_id(t: &CtfTrace) -> Option<String> {
    let clocks = &t.metadata.clocks;
    if clocks.len() == 1 && !t.metadata.ctf2 {
        return clocks[0].uuid.map(|u| format_uuid(&u));
    }
    None
}

fn format_uuid(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Matches packets over the whole experiment and computes each trace's formula, in the
/// experiment's event order (timestamp, then trace, then stream) as Trace Compass does.
/// Matching reads original timestamps, whatever formulas the experiment has, over the whole
/// traces (as Trace Compass matches over all time, whatever time range is set).
///
/// Only the traces holding packet event classes are read, stream by stream on all cores and
/// without merging, and only packet events are decoded (see [`Experiment::scan_classes`]); the packet events kept are sorted by
/// (timestamp, stream, rank in the stream), which is exactly their order in the experiment,
/// so the result equals [`synchronize_in_one_pass`]'s.
pub fn synchronize(exp: &mut Experiment, progress: &AtomicU64) -> Result<SyncResult, TraceError> {
    synchronize_with_reference(exp, None, progress)
}

/// [`synchronize`] with the reference host chosen (a host id from [`host_ids`]; Trace
/// Compass's "reference trace" of its synchronization dialog). `None`: the host id that sorts
/// first.
pub fn synchronize_with_reference(
    exp: &mut Experiment,
    reference_host: Option<String>,
    progress: &AtomicU64,
) -> Result<SyncResult, TraceError> {
    crate::timing::mark(|| "sync: start".into());
    let scan = read_packets(exp, progress);
    Ok(match_scanned(exp, scan, reference_host))
}

/// The packet events [`synchronize`] matches, read from `exp`'s streams on all cores.
pub fn read_packets(exp: &Experiment, progress: &AtomicU64) -> PacketScan {
    let plan = MatchPlan::new(exp);
    if plan.is_empty() {
        return PacketScan::default();
    }
    scan_packets(exp, &plan, progress)
}

/// Packet events read from an experiment's streams, before matching: per stream that has
/// any packet class (in the experiment's merge order), the (timestamp, trace, direction,
/// key) of its packet events in file order; and the errors that cut streams short.
#[derive(Default)]
pub struct PacketScan {
    streams: Vec<Vec<Packet>>,
    errors: Vec<TraceError>,
    /// Bytes of the packets read.
    bytes: u64,
    /// Cursors that read parts of streams, still mapped: unmapping them costs, and can wait
    /// until the work that uses the result is under way (see [`PacketScan::take_retired`]).
    retired: Vec<Cursor>,
}

impl std::fmt::Debug for PacketScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketScan")
            .field("streams", &self.streams.len())
            .field("packets", &self.streams.iter().map(Vec::len).sum::<usize>())
            .field("errors", &self.errors)
            .finish()
    }
}

impl PacketScan {
    /// The packet events kept per stream read (merge order), each as (timestamp, trace,
    /// direction, key), in file order.
    pub fn streams(&self) -> &[Vec<(i64, usize, Direction, MatchKey)>] {
        &self.streams
    }

    /// The errors that cut streams short, in merge order.
    pub fn errors(&self) -> &[TraceError] {
        &self.errors
    }

    /// What must be dropped some time (mappings of the cursors that read parts of streams);
    /// dropping it costs a few tens of microseconds per stream.
    pub fn take_retired(&mut self) -> impl Send + 'static {
        std::mem::take(&mut self.retired)
    }
}

type Packet = (i64, usize, Direction, MatchKey);

/// Keeps the packet events of a stream.
fn keep_packet(plan: &MatchPlan, trace: usize, kept: &mut Vec<Packet>, ev: &Event<'_>) {
    if let Some((dir, key)) = plan.key_of(ev) {
        kept.push((ev.timestamp(), trace, dir, key));
    }
}

/// Reads the packet events of `exp`'s streams, each stream on its own, on all cores.
fn scan_packets(exp: &Experiment, plan: &MatchPlan, progress: &AtomicU64) -> PacketScan {
    let classes: Vec<ClassId> = (0..exp.class_count())
        .map(ClassId)
        .filter(|c| plan.classes[c.0 as usize].is_some())
        .collect();
    let cores = crate::available_cores();
    crate::timing::mark(|| "sync: planned".into());
    // Only packet events are decoded; the others are passed over from their header.
    let (streams, errors) = exp.scan_classes(
        &classes,
        cores,
        &Vec::new,
        &|kept: &mut Vec<Packet>, ev| keep_packet(plan, ev.trace_index(), kept, ev),
        progress,
    );
    PacketScan {
        streams,
        errors,
        bytes: 0,
        retired: Vec::new(),
    }
}

/// Matches the packets of `scan` (read from `exp`'s streams) in the experiment's event order
/// and computes each trace's formula.
fn match_scanned(exp: &Experiment, scan: PacketScan, reference_host: Option<String>) -> SyncResult {
    match_packets(&host_ids(exp), scan, reference_host)
}

/// [`match_scanned`] with the experiment's host ids only.
fn match_packets(hosts: &[String], scan: PacketScan, reference_host: Option<String>) -> SyncResult {
    let mut sync = Synchronizer::new(hosts);
    sync.set_reference_host(reference_host);
    // (timestamp, stream, rank in the stream): the experiment's order.
    let mut packets: Vec<(i64, usize, usize, usize, Direction, MatchKey)> = scan
        .streams
        .into_iter()
        .enumerate()
        .flat_map(|(stream, kept)| {
            kept.into_iter()
                .enumerate()
                .map(move |(rank, (ts, trace, dir, key))| (ts, stream, rank, trace, dir, key))
        })
        .collect();
    crate::timing::mark(|| "sync: scan joined".into());
    packets.sort_unstable_by_key(|p| (p.0, p.1, p.2));
    for (ts, _, _, trace, dir, key) in packets {
        sync.process(trace, ts, dir, key);
    }
    let mut result = sync.result();
    crate::timing::mark(|| "sync: formulas".into());
    result.warnings = scan
        .errors
        .iter()
        .map(|e| format!("{e}; the rest of this stream is skipped"))
        .collect();
    result
}

/// [`synchronize`] with a scan made beforehand (by [`open_scanning_packets`]) of this very
/// experiment.
pub fn synchronize_scanned(exp: &Experiment, scan: PacketScan) -> SyncResult {
    match_scanned(exp, scan, None)
}

/// [`synchronize_scanned`] for an experiment whose traces have these host ids (see
/// [`host_ids`]), without the experiment: its reference host is the host id that sorts
/// first, and that host's formulas are identities whatever the matches (a host that matched
/// nothing keeps its clock).
pub fn synchronize_hosts(hosts: &[String], scan: PacketScan) -> SyncResult {
    match_packets(hosts, scan, None)
}

/// Opens `paths` as [`Experiment::open`] does while reading, as soon as each trace's metadata
/// is parsed, its packet events on other threads: the scan that [`synchronize`] makes, done
/// while later traces' metadata is parsed instead of after, on `threads` threads (this one
/// included). `None` instead of a scan when
/// there is nothing to synchronize (fewer than two traces, or all of one host: the reading
/// stops at the next packet).
pub fn open_scanning_packets<P: AsRef<Path>>(
    paths: &[P],
    threads: usize,
    progress: &AtomicU64,
) -> Result<(Experiment, Option<PacketScan>), TraceError> {
    let (exp, scan) = start_scanning_packets(paths, threads)?.finish_joined()?;
    if let Some(s) = &scan {
        progress.fetch_add(s.bytes, Ordering::Relaxed);
    }
    Ok((exp, scan))
}

/// [`open_scanning_packets`] in two steps: this one returns once every trace's metadata is
/// parsed, its packets being read by other threads; [`ScanningPackets::finish`] reads with
/// them and collects what was read. Meanwhile each trace can be looked at
/// ([`ScanningPackets::traces`]).
pub fn start_scanning_packets<P: AsRef<Path>>(
    paths: &[P],
    threads: usize,
) -> Result<ScanningPackets, TraceError> {
    let threads = threads.max(1);
    let dirs = Experiment::find_trace_dirs(paths)?;
    let shared = Arc::new(ScanShared {
        parts: dirs.iter().map(|_| OnceLock::new()).collect(),
        queue: StreamQueue::default(),
        go_on: AtomicBool::new(true),
        progress: AtomicU64::new(0),
    });
    let (results_tx, results) = std::sync::mpsc::channel::<Vec<Scanned>>();
    let mut helpers = 0;
    let mut opened = Ok(());
    let mut streams = 0;
    for (pi, (root, dir)) in dirs.iter().enumerate() {
        let mut exp = match Experiment::open_one(root, dir) {
            Ok(e) => e,
            Err(e) => {
                opened = Err(e);
                break;
            }
        };
        let plan = MatchPlan::new(&exp);
        let classes: Vec<ClassId> = (0..exp.class_count())
            .map(ClassId)
            .filter(|c| plan.classes[c.0 as usize].is_some())
            .collect();
        let filter = exp.class_filter(0, &classes);
        let n = if dirs.len() > 1 && filter.is_some() {
            exp.stream_count()
        } else {
            0
        };
        streams += n;
        // Nothing follows the last trace's streams: when they are fewer than the threads,
        // each is read in two halves at once.
        let halves = pi + 1 == dirs.len() && n < threads;
        let mut items = Vec::new();
        for si in 0..n {
            let whole = ScanItem {
                part: pi,
                stream: si,
                packets: None,
                piece: 0,
            };
            let starts = if halves { exp.packet_starts(si) } else { None };
            match starts.as_deref().and_then(middle_packet) {
                Some(mid) => {
                    items.push(ScanItem {
                        packets: Some((0, mid)),
                        ..whole
                    });
                    items.push(ScanItem {
                        packets: Some((mid, u64::MAX)),
                        piece: 1,
                        ..whole
                    });
                }
                None => items.push(whole),
            }
        }
        let part = ScanPart {
            exp,
            plan,
            filter,
            scanned: Mutex::new(Vec::new()),
        };
        let _ = shared.parts[pi].set(Arc::new(part));
        // Started once there is something to read: allocation is cheaper in a process
        // with one thread, and the first trace's metadata is the longest to parse.
        if !items.is_empty() && helpers == 0 {
            for _ in 1..threads {
                let (shared, tx) = (Arc::clone(&shared), results_tx.clone());
                // What it read is sent, not returned: the reader need not wait for the thread
                // to end, only for its share of the traces to be released (before sending).
                std::thread::spawn(move || {
                    let out = shared.scan_next();
                    drop(shared);
                    let _ = tx.send(out);
                });
                helpers += 1;
            }
        }
        shared.queue.push(items);
    }
    let one_host = opened.is_ok() && {
        let ids: Vec<Option<String>> = shared
            .parts
            .iter()
            .map(|p| clock_host_id(&p.get().expect("all parsed").exp.ctf_traces()[0]))
            .collect();
        dirs.len() < 2 || (ids[0].is_some() && ids.iter().all(|id| id == &ids[0]))
    };
    let scans = opened.is_ok() && !one_host && streams > 0;
    if !scans {
        shared.go_on.store(false, Ordering::Relaxed);
    }
    let scanning = ScanningPackets {
        shared,
        helpers,
        results,
        scans,
        one_host,
    };
    match opened {
        Ok(()) => Ok(scanning),
        // (Dropping it stops and joins the threads.)
        Err(e) => Err(e),
    }
}

/// Traces opened by [`start_scanning_packets`], their packets being read.
pub struct ScanningPackets {
    shared: Arc<ScanShared>,
    /// Threads reading, and what they read (one message each).
    helpers: usize,
    results: std::sync::mpsc::Receiver<Vec<Scanned>>,
    /// Whether packets are read (else the threads stop at once).
    scans: bool,
    one_host: bool,
}

/// One trace of [`ScanningPackets`]: its experiment, to look at while its packets are read,
/// and to read once they are ([`TraceOpened::into_experiment`]).
#[derive(Clone)]
pub struct TraceOpened(Arc<ScanPart>);

impl TraceOpened {
    pub fn experiment(&self) -> &Experiment {
        &self.0.exp
    }

    /// The experiment, with the cursor that read each stream from its start made its own
    /// (its pages stay mapped); `None` while another owner (the reading) holds it.
    pub fn into_experiment(self) -> Option<Experiment> {
        let part = Arc::try_unwrap(self.0).ok()?;
        let mut exp = part.exp;
        let scanned = part.scanned.into_inner().unwrap_or_else(|e| e.into_inner());
        for (stream, cursor) in scanned {
            exp.reuse_scanned(stream, cursor);
        }
        Some(exp)
    }
}

impl ScanningPackets {
    /// Each trace, in experiment order.
    pub fn traces(&self) -> Vec<TraceOpened> {
        self.shared
            .parts
            .iter()
            .map(|p| TraceOpened(Arc::clone(p.get().expect("all parsed"))))
            .collect()
    }

    /// Whether the traces are of one host (or fewer than two): nothing is read.
    pub fn one_host(&self) -> bool {
        self.one_host
    }

    /// Reads what is left on this thread too, waits for the other threads, and gives the
    /// traces (no other owner is left once the caller drops its clones from
    /// [`traces`](Self::traces)) and what was read (`None` for traces of one host).
    pub fn finish(mut self) -> (Vec<TraceOpened>, Option<PacketScan>) {
        if !self.scans {
            self.shared.go_on.store(false, Ordering::Relaxed);
        }
        self.shared.queue.close();
        let mut done = self.shared.scan_next();
        crate::timing::mark(|| "scan: own streams done".into());
        for _ in 0..std::mem::take(&mut self.helpers) {
            // (A thread that panicked dropped its sender without sending.)
            done.extend(
                self.results
                    .recv()
                    .expect("a stream-reading thread panicked"),
            );
        }
        crate::timing::mark(|| "scan: helpers joined".into());
        let traces = self.traces();
        if !self.scans {
            let scan = (!self.one_host).then(PacketScan::default);
            return (traces, scan);
        }
        // Merge order: trace, then stream (then its halves, in file order).
        done.sort_unstable_by_key(|d| (d.0.part, d.0.stream, d.0.piece));
        let mut scan = PacketScan {
            bytes: self.shared.progress.load(Ordering::Relaxed),
            ..PacketScan::default()
        };
        let mut cut_short = false;
        for (item, kept, error, cursor) in done {
            // A cursor that read from the first packet becomes the stream's own (its pages
            // stay mapped for the build); the others are unmapped later.
            match cursor {
                Some(c) if item.piece == 0 => traces[item.part]
                    .0
                    .scanned
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((item.stream, c)),
                Some(c) => scan.retired.push(c),
                None => {}
            }
            if item.piece == 0 {
                scan.streams.push(kept);
            } else if !cut_short {
                // The second half follows the first, unless reading stopped in the first.
                scan.streams.last_mut().expect("first half").extend(kept);
            } else {
                continue;
            }
            cut_short = error.is_some();
            scan.errors.extend(error);
        }
        (traces, Some(scan))
    }
}

impl ScanningPackets {
    /// [`finish`](Self::finish), the traces joined into one experiment (nothing else may
    /// hold them: see [`traces`](Self::traces)).
    pub fn finish_joined(self) -> Result<(Experiment, Option<PacketScan>), TraceError> {
        let (traces, scan) = self.finish();
        let mut parts = Vec::with_capacity(traces.len());
        for t in traces {
            let dir = t.experiment().traces()[0].path.clone();
            parts.push(t.into_experiment().ok_or_else(|| TraceError::Metadata {
                path: dir,
                reason: "still in use while the experiment is assembled".into(),
            })?);
        }
        Ok((Experiment::join(parts)?, scan))
    }
}

impl Drop for ScanningPackets {
    fn drop(&mut self) {
        // Not finished (an error on the way): the threads stop at their next packet.
        self.shared.go_on.store(false, Ordering::Relaxed);
        self.shared.queue.close();
    }
}

/// What the reading threads share.
struct ScanShared {
    parts: Vec<OnceLock<Arc<ScanPart>>>,
    queue: StreamQueue,
    go_on: AtomicBool,
    progress: AtomicU64,
}

/// A part of a stream read: what, the packets kept, the error that stopped it, its cursor.
type Scanned = (ScanItem, Vec<Packet>, Option<TraceError>, Option<Cursor>);

impl ScanShared {
    /// Reads queued parts of streams until the queue is closed and empty.
    fn scan_next(&self) -> Vec<Scanned> {
        let mut out = Vec::new();
        while let Some(item) = self.queue.next() {
            if !self.go_on.load(Ordering::Relaxed) {
                break;
            }
            let part = self.parts[item.part].get().expect("queued once parsed");
            let mut kept = Vec::new();
            let (error, cursor) = part.exp.scan_stream(
                item.stream,
                item.packets,
                part.filter.clone(),
                &mut kept,
                &|kept: &mut Vec<Packet>, ev| keep_packet(&part.plan, item.part, kept, ev),
                &self.progress,
                &self.go_on,
            );
            out.push((item, kept, error, cursor));
        }
        out
    }
}

/// The start of the packet nearest the middle of the stream, if there is one after the first.
fn middle_packet(starts: &[u64]) -> Option<u64> {
    let (first, last) = (*starts.first()?, *starts.last()?);
    let half = first + (last - first) / 2;
    let k = starts.partition_point(|&o| o < half);
    starts.get(k.max(1)).copied()
}

/// Part of a stream to read: the whole stream, or the packets starting in a range of bytes
/// (`piece` 0: from the first packet, 1: the rest).
#[derive(Debug, Clone, Copy)]
struct ScanItem {
    part: usize,
    stream: usize,
    packets: Option<(u64, u64)>,
    piece: u8,
}

/// A trace being opened by [`open_scanning_packets`].
struct ScanPart {
    exp: Experiment,
    plan: MatchPlan,
    filter: Option<Arc<[bool]>>,
    /// (stream, cursor that read it from its start), for the experiment to keep.
    scanned: Mutex<Vec<(usize, Cursor)>>,
}

/// Streams (or halves of streams) to read, handed out in the order they were queued; `next`
/// waits for more until the queue is closed.
#[derive(Default)]
struct StreamQueue {
    state: Mutex<(VecDeque<ScanItem>, bool)>,
    more: Condvar,
}

impl StreamQueue {
    fn push(&self, items: Vec<ScanItem>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0.extend(items);
        drop(st);
        self.more.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.more.notify_all();
    }

    fn next(&self) -> Option<ScanItem> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(item) = st.0.pop_front() {
                return Some(item);
            }
            if st.1 {
                return None;
            }
            st = self.more.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The reference order: one pass over the experiment itself (within its time range, if one
/// is set; [`synchronize`]'s per-trace path always reads whole traces, as Trace Compass
/// matches over all time).
pub fn synchronize_in_one_pass(
    exp: &mut Experiment,
    plan: &MatchPlan,
    mut sync: Synchronizer,
    progress: &AtomicU64,
) -> Result<SyncResult, TraceError> {
    let saved: Vec<_> = (0..exp.traces().len())
        .map(|i| exp.time_transforms().get(i))
        .collect();
    exp.set_time_transforms(&[]);
    let pass = exp.for_each(
        &mut |ev| {
            if let Some((dir, key)) = plan.key_of(ev) {
                sync.process(ev.trace_index(), ev.timestamp(), dir, key);
            }
            ControlFlow::Continue(())
        },
        progress,
    );
    exp.set_time_transforms(&saved);
    pass?;
    Ok(sync.result())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_print_as_in_metadata() {
        let u = [
            0x74, 0x71, 0x56, 0x93, 0x28, 0xc1, 0x4d, 0x0d, 0xbe, 0xe9, 0x24, 0x79, 0x0a, 0x49,
            0x42, 0xb0,
        ];
        assert_eq!(format_uuid(&u), "74715693-28c1-4d0d-bee9-24790a4942b0");
    }
}
