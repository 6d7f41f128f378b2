//! Event statistics of an experiment: events per name, total, lost events, streams,
//! packets and time range (what `sextant stats` prints, and what `babeltrace2.count`
//! files record).

use crate::error::TraceError;
use crate::experiment::{ClassId, Experiment};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::AtomicU64;

/// Totals over one pass of an experiment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Real events per event class name (lost-event records excluded).
    pub per_name: BTreeMap<String, u64>,
    pub total: u64,
    /// Events the tracer discarded (sum of the lost-event records' counts).
    pub lost_events: u64,
    /// Lost-event records (one per packet reporting losses).
    pub lost_records: u64,
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// Whole packets missing (gaps in `packet_seq_num`; not in `lost_events`).
    pub lost_packets: u64,
    /// The gaps: (stream file name, gap), first ones.
    pub packet_gaps: Vec<(String, crate::ctf::reader::PacketGap)>,
    /// Data stream files holding at least one packet.
    pub streams: u64,
    pub packets: u64,
    /// What could not be read (streams cut short).
    pub warnings: Vec<String>,
}

/// Reads the whole experiment once and counts.
pub fn compute(exp: &mut Experiment, progress: &AtomicU64) -> Result<Stats, TraceError> {
    let n = exp.class_count();
    let names: Vec<String> = (0..n)
        .map(|c| exp.class_name(ClassId(c)).to_string())
        .collect();
    let lost_h: Vec<_> = (0..n)
        .map(|c| {
            let c = ClassId(c);
            (exp.class_name(c) == crate::experiment::LOST_EVENT_NAME)
                .then(|| exp.field_handle(c, crate::experiment::LOST_EVENTS_FIELD))
                .flatten()
        })
        .collect();
    let mut per_class = vec![0u64; n as usize];
    let mut s = Stats::default();
    exp.for_each(
        &mut |ev| {
            let c = ev.class().0 as usize;
            match lost_h[c] {
                Some(h) => {
                    s.lost_records += 1;
                    s.lost_events += ev.int(h).unwrap_or(0) as u64;
                }
                None => {
                    per_class[c] += 1;
                    s.first_ns.get_or_insert(ev.timestamp());
                    s.last_ns = Some(ev.timestamp());
                }
            }
            ControlFlow::Continue(())
        },
        progress,
    )?;
    for (c, k) in per_class.into_iter().enumerate() {
        if k > 0 {
            *s.per_name.entry(names[c].clone()).or_default() += k;
        }
    }
    s.total = s.per_name.values().sum();
    for (_, _, packets, _) in exp.stream_totals() {
        s.packets += packets;
        s.streams += u64::from(packets > 0);
    }
    s.lost_packets = exp.lost_packets();
    s.packet_gaps = exp
        .packet_gaps()
        .into_iter()
        .map(|(_, name, g)| (name, g))
        .collect();
    s.warnings = exp.warnings();
    Ok(s)
}

/// What one stream contributes to [`Stats`] (see [`compute_parallel`]).
#[derive(Default)]
struct StreamCounts {
    per_class: Vec<u64>,
    lost_events: u64,
    lost_records: u64,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
    /// Timestamps never went back: the merge then keeps the stream's order, so the
    /// merged first/last events are the streams' extremes.
    sorted: bool,
    prev_ns: i64,
    packets: u64,
    lost_packets: u64,
    gaps: Vec<(String, crate::ctf::reader::PacketGap)>,
}

/// [`compute`] with the streams read on `threads` threads and no merge (counting does
/// not need the time order). Gives the same [`Stats`] as [`compute`]; falls back to
/// the merged pass when it could not: a time range, synchronization formulas, trace
/// offsets or a class filter are set, a stream's timestamps go back, or several
/// streams are cut short (the merged pass orders their warnings by time). After it,
/// `exp.warnings()` tells what could not be read, but `exp`'s per-stream totals
/// ([`Experiment::stream_totals`]) are not updated.
pub fn compute_parallel(
    exp: &mut Experiment,
    threads: usize,
    progress: &AtomicU64,
) -> Result<Stats, TraceError> {
    if threads <= 1 || !exp.streams_read_plainly() {
        return compute(exp, progress);
    }
    let n = exp.class_count() as usize;
    let lost_h: Vec<_> = (0..n as u32)
        .map(|c| {
            let c = ClassId(c);
            (exp.class_name(c) == crate::experiment::LOST_EVENT_NAME)
                .then(|| exp.field_handle(c, crate::experiment::LOST_EVENTS_FIELD))
                .flatten()
        })
        .collect();
    let init = || StreamCounts {
        per_class: vec![0; n],
        sorted: true,
        prev_ns: i64::MIN,
        ..Default::default()
    };
    let visit = |s: &mut StreamCounts, ev: &crate::experiment::Event<'_>| {
        let c = ev.class().0 as usize;
        let ns = ev.timestamp();
        s.sorted &= ns >= s.prev_ns;
        s.prev_ns = ns;
        match lost_h[c] {
            Some(h) => {
                s.lost_records += 1;
                s.lost_events += ev.int(h).unwrap_or(0) as u64;
            }
            None => {
                s.per_class[c] += 1;
                s.first_ns.get_or_insert(ns);
                s.last_ns = Some(ns);
            }
        }
    };
    let finish = |s: &mut StreamCounts, c: &crate::ctf::reader::Cursor| {
        s.packets = c.packets_read;
        s.lost_packets = c.lost_packets;
        s.gaps = c
            .packet_gaps
            .iter()
            .map(|g| (c.file.name.clone(), *g))
            .collect();
    };
    let scan_progress = AtomicU64::new(0);
    let (streams, errors) =
        exp.scan_streams_with(&|_| true, threads, &init, &visit, &finish, &scan_progress);
    if errors.len() > 1 || streams.iter().any(|s| !s.sorted) {
        return compute(exp, progress);
    }
    progress.fetch_add(
        scan_progress.load(std::sync::atomic::Ordering::Relaxed),
        std::sync::atomic::Ordering::Relaxed,
    );
    let mut per_class = vec![0u64; n];
    let mut s = Stats::default();
    for st in streams {
        for (total, k) in per_class.iter_mut().zip(&st.per_class) {
            *total += k;
        }
        s.lost_events += st.lost_events;
        s.lost_records += st.lost_records;
        s.first_ns = match (s.first_ns, st.first_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        s.last_ns = s.last_ns.max(st.last_ns);
        s.packets += st.packets;
        s.streams += u64::from(st.packets > 0);
        s.lost_packets += st.lost_packets;
        s.packet_gaps.extend(st.gaps);
    }
    for (c, k) in per_class.into_iter().enumerate() {
        if k > 0 {
            *s.per_name
                .entry(exp.class_name(ClassId(c as u32)).to_string())
                .or_default() += k;
        }
    }
    s.total = s.per_name.values().sum();
    exp.record_errors(errors);
    s.warnings = exp.warnings();
    Ok(s)
}

/// Reads every event of `exp` once; with `all_fields`, also every field through its
/// typed accessor (integers, text, array elements). Returns the events read and a
/// checksum of the values (so that the decoding cannot be optimized away). This is
/// the "decode everything" workload of the benchmarks.
pub fn read_all_fields(
    exp: &mut Experiment,
    all_fields: bool,
    progress: &AtomicU64,
) -> Result<(u64, i64), TraceError> {
    use crate::experiment::{Access, FieldHandle};
    let handles: Vec<Vec<(FieldHandle, Access)>> = (0..exp.class_count())
        .map(|c| {
            let c = ClassId(c);
            exp.field_names(c)
                .iter()
                .filter_map(|n| exp.field_handle(c, n))
                .map(|h| (h, exp.field_access(h)))
                .collect()
        })
        .collect();
    let (mut events, mut acc) = (0u64, 0i64);
    exp.for_each(
        &mut |ev| {
            events += 1;
            if all_fields {
                for (h, a) in &handles[ev.class().0 as usize] {
                    acc = acc.wrapping_add(match a {
                        Access::Int => ev.int(*h).unwrap_or(0),
                        Access::Text => ev.string(*h).map_or(0, |s| s.len() as i64),
                        Access::Other => match ev.array_len(*h) {
                            Some(n) => (0..n).map(|k| ev.array_int(*h, k).unwrap_or(0)).sum(),
                            None => i64::from(ev.value(*h).is_some()),
                        },
                    });
                }
            }
            ControlFlow::Continue(())
        },
        progress,
    )?;
    Ok((events, acc))
}
