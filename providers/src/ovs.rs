//! Open vSwitch datapath views (spec §4) from the LTTng kernel addons of
//! `yvesjunior/ovs-tracing`: `addons_lttng_ovs_{vport_receive, upcall_start,
//! upcall_end, vport_send}`, each carrying the packet id the addon appended to
//! the skb (0 when it could not tag the packet).
//!
//! - [`OvsPathProvider`] (`ovs.path`, Java "OVS path"): two global rows
//!   `OVS/IN_OUT/State` and `OVS/PACKET_PROCESSING/State`.
//! - [`OvsPacketsProvider`] (`ovs.packets`, extension): one pooled slot per packet
//!   in flight under `OVS/Packets/<slot>` (state, `Id`, `Path`), counters
//!   `OVS/Switched_fast`, `OVS/Switched_slow`, `OVS/Untagged`, and a switching
//!   latency series ([`OvsSummary`]) at each packet's first send.
//!
//! Untagged events (id 0) cannot be correlated: both providers skip them, count
//! them per event name and report them in `warnings()`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};

use sht::{Quark, StateSystemBuilder, StateValue};

use crate::{EventFields, ProviderError, StateProvider, Subscription, TraceInfo};

pub const PATH_ID: &str = "org.eclipse.tracecompass.analysis.os.linux.ovs.core.module";
pub const PACKETS_ID: &str = "ovs.packets";
pub const VERSION: i32 = 1;

pub const RECEIVE_EVENT: &str = "addons_lttng_ovs_vport_receive";
pub const UPCALL_START_EVENT: &str = "addons_lttng_ovs_upcall_start";
pub const UPCALL_END_EVENT: &str = "addons_lttng_ovs_upcall_end";
pub const SEND_EVENT: &str = "addons_lttng_ovs_vport_send";

/// State codes of the rows.
pub const IN_OUT: i32 = 1;
pub const RECEIVE: i32 = 2;
pub const UPCALL: i32 = 3;
pub const SEND: i32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Receive = 0,
    UpcallStart = 1,
    UpcallEnd = 2,
    Send = 3,
}

const KINDS: [(Kind, &str); 4] = [
    (Kind::Receive, RECEIVE_EVENT),
    (Kind::UpcallStart, UPCALL_START_EVENT),
    (Kind::UpcallEnd, UPCALL_END_EVENT),
    (Kind::Send, SEND_EVENT),
];

const SLOT_ID: usize = 0;
const SLOT_PROTOCOL: usize = 1;

fn ovs_subscription(event_name: &str) -> Option<Subscription> {
    KINDS
        .iter()
        .find(|(_, n)| *n == event_name)
        .map(|(k, _)| Subscription {
            handler: *k as u32,
            fields: vec!["id", "protocol"],
        })
}

fn kind_of(handler: u32) -> Kind {
    KINDS[handler as usize % KINDS.len()].0
}

/// Untagged (id 0) and id-less events, by event name.
#[derive(Debug, Default, Clone)]
struct Untagged {
    by_event: BTreeMap<&'static str, u64>,
    without_id: u64,
}

impl Untagged {
    fn warnings(&self, analysis: &str) -> Vec<String> {
        let mut w = Vec::new();
        let total: u64 = self.by_event.values().sum();
        if total > 0 {
            let detail: Vec<String> = self
                .by_event
                .iter()
                .map(|(e, n)| format!("{e}: {n}"))
                .collect();
            w.push(format!(
                "{analysis}: {total} untagged event(s) (packet id 0) ignored ({})",
                detail.join(", ")
            ));
        }
        if self.without_id > 0 {
            w.push(format!(
                "{analysis}: {} event(s) without an `id` field ignored",
                self.without_id
            ));
        }
        w
    }
}

/// Reads the packet id; `None` (counted) when absent or 0.
fn tagged_id(kind: Kind, event: &dyn EventFields, untagged: &mut Untagged) -> Option<i64> {
    match event.int(SLOT_ID) {
        Some(0) => {
            *untagged.by_event.entry(KINDS[kind as usize].1).or_default() += 1;
            None
        }
        Some(id) => Some(id),
        None => {
            untagged.without_id += 1;
            None
        }
    }
}

/// The `StateProvider` items both OvS providers share (id, version, any trace
/// accepted, the four addon events subscribed with `id` and `protocol`, refusal
/// of a trace without them). The provider needs a `seen: bool` field.
macro_rules! ovs_event_provider {
    ($id:expr) => {
        fn id(&self) -> &'static str {
            $id
        }
        fn version(&self) -> i32 {
            VERSION
        }
        fn check_trace(&mut self, _trace: &TraceInfo) -> Result<(), ProviderError> {
            Ok(())
        }
        fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
            let s = ovs_subscription(event_name);
            self.seen |= s.is_some();
            s
        }
        fn check_subscriptions(
            &self,
            _missing: &[(String, &'static str)],
        ) -> Result<(), ProviderError> {
            ovs_check(self.seen, $id)
        }
    };
}

fn ovs_check(seen: bool, analysis: &str) -> Result<(), ProviderError> {
    if seen {
        Ok(())
    } else {
        Err(ProviderError::Unsupported {
            analysis: analysis.to_string(),
            what: "the trace has no `addons_lttng_ovs_*` events (OvS tracing addon)".into(),
        })
    }
}

/// Java-compatible global rows (spec §4.2).
#[derive(Default)]
pub struct OvsPathProvider {
    quarks: Option<(Quark, Quark)>,
    seen: bool,
    untagged: Untagged,
}

impl OvsPathProvider {
    pub fn new() -> Self {
        Self::default()
    }
}

impl StateProvider for OvsPathProvider {
    ovs_event_provider!(PATH_ID);

    fn handle(
        &mut self,
        handler: u32,
        event: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let kind = kind_of(handler);
        if tagged_id(kind, event, &mut self.untagged).is_none() {
            return Ok(());
        }
        let (in_out, processing) = match self.quarks {
            Some(q) => q,
            None => {
                let q = (
                    ss.quark_and_add(&["OVS", "IN_OUT", "State"])?,
                    ss.quark_and_add(&["OVS", "PACKET_PROCESSING", "State"])?,
                );
                self.quarks = Some(q);
                q
            }
        };
        let t = event.timestamp();
        match kind {
            Kind::Receive => {
                ss.modify(t, StateValue::Int(IN_OUT), in_out)?;
                ss.modify(t, StateValue::Int(RECEIVE), processing)?;
            }
            // Null then the value at the same time: a boundary even when unchanged (§0.1).
            Kind::UpcallStart => {
                ss.modify(t, StateValue::Null, processing)?;
                ss.modify(t, StateValue::Int(UPCALL), processing)?;
            }
            Kind::UpcallEnd => {
                ss.modify(t, StateValue::Null, processing)?;
                ss.modify(t, StateValue::Int(SEND), processing)?;
            }
            Kind::Send => {
                ss.modify(t, StateValue::Null, in_out)?;
                ss.modify(t, StateValue::Null, processing)?;
            }
        }
        Ok(())
    }

    fn warnings(&self) -> Vec<String> {
        self.untagged.warnings("ovs-path")
    }
}

/// Fast path (kernel flow hit) or slow path (upcall to ovs-vswitchd).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchPath {
    Fast,
    Slow,
}

impl SwitchPath {
    pub fn name(self) -> &'static str {
        match self {
            SwitchPath::Fast => "fast",
            SwitchPath::Slow => "slow",
        }
    }
}

/// One point of the switching-latency series: a packet's first send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyPoint {
    pub send_time: i64,
    pub id: i64,
    /// First send minus receive, ns.
    pub latency: i64,
    pub path: SwitchPath,
    /// Ethertype seen at reception (2048 IPv4, 2054 ARP, 34525 IPv6).
    pub protocol: Option<i64>,
}

/// What the per-packet provider computed besides the state system.
#[derive(Clone, Debug, Default)]
pub struct OvsSummary {
    pub latencies: Vec<LatencyPoint>,
    /// Untagged events (id 0) by event name.
    pub untagged: BTreeMap<&'static str, u64>,
}

struct InFlight {
    slot: usize,
    received: i64,
    protocol: Option<i64>,
    path: SwitchPath,
}

struct SlotQuarks {
    state: Quark,
    id: Quark,
    path: Quark,
}

/// Per-packet slots (spec §4.3).
#[derive(Default)]
pub struct OvsPacketsProvider {
    seen: bool,
    untagged: Untagged,
    slots: Vec<SlotQuarks>,
    free: BinaryHeap<Reverse<usize>>,
    in_flight: HashMap<i64, InFlight>,
    counters: Option<(Quark, Quark, Quark)>,
    latencies: Vec<LatencyPoint>,
    sink: Option<Arc<Mutex<OvsSummary>>>,
}

impl OvsPacketsProvider {
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider that publishes its [`OvsSummary`] into `sink` when the build ends.
    pub fn with_summary(sink: Arc<Mutex<OvsSummary>>) -> Self {
        OvsPacketsProvider {
            sink: Some(sink),
            ..Self::default()
        }
    }

    fn counters(&mut self, ss: &mut dyn StateSystemBuilder) -> sht::Result<(Quark, Quark, Quark)> {
        if let Some(c) = self.counters {
            return Ok(c);
        }
        let c = (
            ss.quark_and_add(&["OVS", "Switched_fast"])?,
            ss.quark_and_add(&["OVS", "Switched_slow"])?,
            ss.quark_and_add(&["OVS", "Untagged"])?,
        );
        self.counters = Some(c);
        Ok(c)
    }

    fn take_slot(&mut self, ss: &mut dyn StateSystemBuilder) -> sht::Result<usize> {
        if let Some(Reverse(s)) = self.free.pop() {
            return Ok(s);
        }
        let n = self.slots.len();
        let base = ss.quark_and_add(&["OVS", "Packets", &n.to_string()])?;
        self.slots.push(SlotQuarks {
            state: base,
            id: ss.quark_relative_and_add(base, &["Id"])?,
            path: ss.quark_relative_and_add(base, &["Path"])?,
        });
        Ok(n)
    }

    fn release(&mut self, t: i64, slot: usize, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        ss.remove(t, self.slots[slot].state)?;
        self.free.push(Reverse(slot));
        Ok(())
    }
}

fn path_code(p: SwitchPath) -> StateValue {
    StateValue::Int(match p {
        SwitchPath::Fast => 0,
        SwitchPath::Slow => 1,
    })
}

impl StateProvider for OvsPacketsProvider {
    ovs_event_provider!(PACKETS_ID);

    fn handle(
        &mut self,
        handler: u32,
        event: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let kind = kind_of(handler);
        let t = event.timestamp();
        let (fast_q, slow_q, untagged_q) = self.counters(ss)?;
        let Some(id) = tagged_id(kind, event, &mut self.untagged) else {
            if kind == Kind::Receive && event.int(SLOT_ID) == Some(0) {
                ss.increment(t, StateValue::Long(1), untagged_q)?;
            }
            return Ok(());
        };
        match kind {
            Kind::Receive => {
                if let Some(old) = self.in_flight.remove(&id) {
                    self.release(t, old.slot, ss)?;
                }
                let slot = self.take_slot(ss)?;
                let q = &self.slots[slot];
                ss.modify(t, StateValue::Int(RECEIVE), q.state)?;
                ss.modify(t, StateValue::Long(id), q.id)?;
                ss.modify(t, path_code(SwitchPath::Fast), q.path)?;
                self.in_flight.insert(
                    id,
                    InFlight {
                        slot,
                        received: t,
                        protocol: event.int(SLOT_PROTOCOL),
                        path: SwitchPath::Fast,
                    },
                );
            }
            Kind::UpcallStart | Kind::UpcallEnd => {
                if let Some(p) = self.in_flight.get_mut(&id) {
                    let q = &self.slots[p.slot];
                    if kind == Kind::UpcallStart {
                        p.path = SwitchPath::Slow;
                        ss.modify(t, StateValue::Int(UPCALL), q.state)?;
                        ss.modify(t, path_code(SwitchPath::Slow), q.path)?;
                    } else {
                        ss.modify(t, StateValue::Int(SEND), q.state)?;
                    }
                }
            }
            Kind::Send => {
                // Later sends of the same id are extra output copies: no packet in flight.
                if let Some(p) = self.in_flight.remove(&id) {
                    self.release(t, p.slot, ss)?;
                    let counter = match p.path {
                        SwitchPath::Fast => fast_q,
                        SwitchPath::Slow => slow_q,
                    };
                    ss.increment(t, StateValue::Long(1), counter)?;
                    self.latencies.push(LatencyPoint {
                        send_time: t,
                        id,
                        latency: t - p.received,
                        path: p.path,
                        protocol: p.protocol,
                    });
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, _ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        if let Some(sink) = &self.sink {
            if let Ok(mut s) = sink.lock() {
                s.latencies = self.latencies.clone();
                s.untagged = self.untagged.by_event.clone();
            }
        }
        Ok(())
    }

    fn warnings(&self) -> Vec<String> {
        let mut w = self.untagged.warnings("ovs");
        let stuck = self.in_flight.len();
        if stuck > 0 {
            w.push(format!(
                "ovs: {stuck} packet(s) received but never sent (dropped, or sent after the trace end)"
            ));
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{build, Analysis, BuildOptions, Output};
    use crate::testsource::TextSource;
    use sht::StateSystemQuerier;

    #[test]
    fn untagged_and_idless_events_are_counted_not_applied() {
        let sink = Arc::new(Mutex::new(OvsSummary::default()));
        let mut src = TextSource::new(
            "1 addons_lttng_ovs_vport_receive id=0 protocol=2048
             2 addons_lttng_ovs_vport_receive protocol=2048
             3 addons_lttng_ovs_vport_receive id=7 protocol=2048
             4 addons_lttng_ovs_upcall_start id=99 protocol=2048
             5 addons_lttng_ovs_vport_send id=7 protocol=2048
             6 addons_lttng_ovs_vport_send id=7 protocol=2048
             7 addons_lttng_ovs_vport_receive id=8 protocol=2048",
        );
        let analyses = vec![Analysis {
            provider: Box::new(OvsPacketsProvider::with_summary(sink.clone())),
            output: Output::InMemory,
        }];
        let (report, systems) = build(&mut src, analyses, &BuildOptions::default()).unwrap();
        let ss = &systems[0];
        let s = sink.lock().unwrap();
        assert_eq!(s.untagged.get(RECEIVE_EVENT), Some(&1));
        assert_eq!(s.latencies.len(), 1, "the second send is an extra copy");
        assert_eq!(s.latencies[0].latency, 2);
        let fast = ss.quark(&["OVS", "Switched_fast"]).unwrap();
        assert_eq!(ss.query_single(7, fast).unwrap().value, StateValue::Long(1));
        let w = report.warnings.join("\n");
        assert!(
            w.contains("1 untagged") && w.contains("without an `id`"),
            "{w}"
        );
        assert!(w.contains("never sent"), "{w}");
    }

    #[test]
    fn traces_without_ovs_events_are_refused() {
        let mut src = TextSource::new("1 sched_switch cpu=0 next_tid=1");
        let analyses = vec![Analysis {
            provider: Box::new(OvsPathProvider::new()),
            output: Output::InMemory,
        }];
        let err = build(&mut src, analyses, &BuildOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("addons_lttng_ovs"), "{err}");
    }
}
