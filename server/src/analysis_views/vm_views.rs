//! The two VM time graphs whose rows need more than one attribute (or more than
//! one state system), built as the Trace Compass incubator's views build them:
//!
//! - Virtual CPU view (`VirtualMachineView`): per guest (`Guest: <host id>`),
//!   one row per vCPU (virtual resources analysis), and a "Threads" group with
//!   a row per guest thread (`<tid>: <exec name>`) whose states are the guest
//!   kernel analysis' thread statuses, marked where the vCPU running the thread
//!   was in the hypervisor or preempted (`getUpdatedThreadIntervals`). Under
//!   each vCPU a "Guest thread" row (an addition: the incubator has no such row)
//!   shows the guest thread the fused analysis finds running on that vCPU.
//! - Virtual Resources view (`VirtualResourcesView`): physical CPUs with their
//!   IRQs; per virtual machine (nested ones below their parent) the physical
//!   CPUs it used, showing only the times its code (or a nested guest's) ran
//!   there; per container (PID namespace, nested below its parent namespace)
//!   the physical CPUs its threads used, showing only the times one of its
//!   threads ran there. A CPU row's states are the pieces of the intersection
//!   of its `Status`, `Machine_name` and `Current_thread` intervals.
//!
//! Kept from the first version of these views (other tests rely on the
//! labels): physical CPUs are labelled `CPU <n>` (the incubator: `PCPU <n>`),
//! vCPUs `vCPU <n>` (the incubator: `VCPU <n>`), and a virtual machine keeps
//! one `vCPU <n>` row per `Hosts/<vm>/CPUs/<n>` (the host thread running it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::json;
use sextant_providers::kernel::KERNEL_ANALYSIS_ID;
use sextant_providers::pipeline::EventSource;
use sextant_providers::vm::{fused, model, vresources};
use sht::{
    AttributeTree, Interval, Quark, StateSystem, StateSystemQuerier, StateValue, ROOT_QUARK,
};

use super::{fused_style, vcpu_style, FUSED_STYLES, VCPU_STYLES};
use crate::model::{
    GenericResponse, OutputDescriptor, OutputType, StatesModel, Style, StyleModel, TimeGraphRow,
    TimeGraphState, TreeEntry, TreeModel,
};
use crate::query::{DataQuery, TooltipQuery, TreeQuery};
use crate::registry::{
    ExperimentSource, OutputFactory, OutputProvider, ProviderResult, StateSystemHandle,
};
use crate::ssquery::{sampled_complete, sampled_intervals, sorted_children, times_in_range, IdMap};
use crate::state_views::{rgb_hex, StyleDef};
use crate::values::value_text;

/// Trace Compass's Virtual CPU view id.
pub const VCPU_VIEW_ID: &str =
    "org.eclipse.tracecompass.incubator.internal.virtual.machine.analysis.vm.ui.vmview";
/// Trace Compass's Virtual Resources view id.
pub const VRESOURCES_VIEW_ID: &str =
    "org.eclipse.tracecompass.incubator.internal.virtual.machine.analysis.ui.views.virtualresources";

/// The root PID namespace of Linux: containers whose parent it is are the top ones.
const ROOT_NAMESPACE: i64 = 4_026_531_836;
/// vCPU status flags (virtual resources analysis).
const VCPU_FLAGS: i32 = vresources::VCPU_VMM | vresources::VCPU_PREEMPT;
/// Machine type bits of `Hosts/<m>`.
const MACHINE_HOST: i64 = 1;
const MACHINE_GUEST: i64 = 2;
/// The incubator draws a preempted thread with red at this alpha over its state.
const PREEMPT_RGB: (u8, u8, u8) = (255, 0, 0);
const PREEMPT_ALPHA: f64 = 70.0 / 255.0;

const fn st(key: &'static str, label: &'static str, rgb: (u8, u8, u8), height: f64) -> StyleDef {
    StyleDef {
        key,
        label,
        rgb,
        height,
    }
}

/// Guest thread statuses (spec providers.md §1.3, the incubator's thread styles).
const THREAD_STYLES: &[StyleDef] = &[
    st("THREAD_WAIT", "Waiting", (200, 200, 200), 0.5),
    st("THREAD_WAIT_BLOCKED", "Blocked", (200, 200, 0), 0.5),
    st("THREAD_WAIT_FOR_CPU", "Waiting for CPU", (200, 100, 0), 0.5),
    st("THREAD_USERMODE", "Usermode", (0, 200, 0), 1.0),
    st("THREAD_SYSCALL", "System call", (0, 0, 200), 1.0),
    st("THREAD_INTERRUPTED", "Interrupted", (200, 0, 100), 0.75),
];
const THREAD_PREEMPTED: &str = "THREAD_PREEMPTED";

/// Style key of a guest kernel thread status (none for the statuses the
/// incubator does not draw, e.g. wait-fork).
fn thread_key(status: i32) -> Option<&'static str> {
    Some(match status {
        0 | 6 => "THREAD_WAIT",
        1 => "THREAD_WAIT_BLOCKED",
        2 => "THREAD_USERMODE",
        3 => "THREAD_SYSCALL",
        4 => "THREAD_INTERRUPTED",
        5 => "THREAD_WAIT_FOR_CPU",
        _ => return None,
    })
}

fn blend(c: (u8, u8, u8)) -> String {
    let mix = |a: u8, b: u8| (a as f64 * (1.0 - PREEMPT_ALPHA) + b as f64 * PREEMPT_ALPHA).round();
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(c.0, PREEMPT_RGB.0) as u8,
        mix(c.1, PREEMPT_RGB.1) as u8,
        mix(c.2, PREEMPT_RGB.2) as u8
    )
}

fn int(v: &StateValue) -> Option<i64> {
    match v {
        StateValue::Int(i) => Some(i64::from(*i)),
        StateValue::Long(l) => Some(*l),
        _ => None,
    }
}

fn text(v: &StateValue) -> Option<&str> {
    match v {
        StateValue::String(s) => Some(s),
        _ => None,
    }
}

/// Which of the two views.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Which {
    Vcpu,
    Resources,
}

impl Which {
    fn analysis(self) -> &'static str {
        match self {
            Which::Vcpu => vresources::ID,
            Which::Resources => fused::ID,
        }
    }

    fn styles(self) -> &'static [&'static [StyleDef]] {
        match self {
            Which::Vcpu => &[VCPU_STYLES, THREAD_STYLES, FUSED_STYLES],
            Which::Resources => &[FUSED_STYLES],
        }
    }

    /// Whether the analysis' state system has something to show.
    fn has_rows(self, tree: &AttributeTree) -> bool {
        match self {
            Which::Vcpu => {
                let vms = tree.opt_quark(ROOT_QUARK, &["Virtual Machines"]);
                vms >= 0 && !tree.children_of(vms).is_empty()
            }
            // Every event of a host creates `CPUs/<p>/Status`.
            Which::Resources => {
                let cpus = tree.opt_quark(ROOT_QUARK, &["CPUs"]);
                cpus >= 0
                    && tree
                        .children_of(cpus)
                        .iter()
                        .any(|&c| tree.opt_quark(c, &["Status"]) >= 0)
            }
        }
    }
}

/// What a physical CPU row keeps of the CPU's pieces.
#[derive(Clone, Debug)]
enum CpuFilter {
    All,
    /// Code of one of these machines (a VM and its nested guests) runs.
    Machines(Vec<String>),
    /// One of these threads (host-level TIDs) of `machine` runs.
    Container {
        machine: String,
        threads: HashSet<i64>,
    },
}

/// How one attribute's values are styled.
#[derive(Clone, Copy, Debug)]
enum AttrStyle {
    Vcpu,
    Irq,
    SoftIrq,
    /// `Hosts/<vm>/CPUs/<n>`: the host thread running the vCPU.
    InVm,
}

#[derive(Clone, Debug)]
enum Kind {
    Attr(Quark, AttrStyle),
    Cpu(Quark, CpuFilter),
    /// The guest thread on vCPU `vcpu` of `guest` (fused analysis, same trace),
    /// looked for on the physical CPUs `pcpus` (`CPUs/<p>` quarks).
    VcpuThread {
        guest: String,
        vcpu: i64,
        pcpus: Vec<Quark>,
    },
    /// Thread `tid` of `guest`, from the guest kernel analysis of trace `kernel`.
    GuestThread {
        guest: String,
        tid: i64,
        kernel: usize,
    },
}

#[derive(Clone, Debug)]
struct Row {
    trace: usize,
    kind: Kind,
}

/// Makes the two views for the experiments that have their analyses.
pub struct VmViewsFactory;

impl OutputFactory for VmViewsFactory {
    fn create(&self, experiment: &ExperimentSource) -> Vec<Arc<dyn OutputProvider>> {
        [Which::Vcpu, Which::Resources]
            .into_iter()
            .filter(|w| may_have(experiment, *w))
            .map(|w| Arc::new(VmView::new(w, experiment.clone())) as Arc<dyn OutputProvider>)
            .collect()
    }
}

/// Same rule as the declarative views: some trace has the analysis with rows
/// (or is building it), or is still analysing a kernel trace.
fn may_have(source: &ExperimentSource, which: Which) -> bool {
    source.traces.iter().enumerate().any(|(i, t)| {
        source.trace_state_systems(i).iter().any(|s| {
            s.id == which.analysis() && {
                let ss = s.read();
                ss.is_building() || which.has_rows(ss.attributes())
            }
        }) || (t.is_analysing()
            && t.properties
                .get("domain")
                .is_none_or(|d| d.is_empty() || d == "kernel"))
    })
}

pub struct VmView {
    which: Which,
    descriptor: OutputDescriptor,
    source: ExperimentSource,
    ids: IdMap<(usize, String)>,
    rows: Mutex<HashMap<i64, Row>>,
    /// Host ids of member traces, by trace index (see `host_ids`).
    hosts: Mutex<HashMap<usize, Vec<String>>>,
}

/// Adds entries of one trace's run.
struct Builder<'a> {
    ids: &'a IdMap<(usize, String)>,
    trace: usize,
    span: (i64, i64),
    entries: &'a mut Vec<TreeEntry>,
    seen: &'a mut HashSet<i64>,
    rows: &'a mut HashMap<i64, Row>,
}

impl Builder<'_> {
    /// Entry `label` below `parent` (id, key path); a data row if `kind`.
    fn add(&mut self, parent: &(i64, String), label: String, kind: Option<Kind>) -> (i64, String) {
        let path = format!("{}/{label}", parent.1);
        let id = self.ids.id(&(self.trace, path.clone()));
        if self.seen.insert(id) {
            let mut e = TreeEntry::new(id, parent.0, vec![label]).span(self.span.0, self.span.1);
            e.has_data = kind.is_some();
            self.entries.push(e);
        }
        if let Some(kind) = kind {
            self.rows.insert(
                id,
                Row {
                    trace: self.trace,
                    kind,
                },
            );
        }
        (id, path)
    }
}

fn value_at(ss: &StateSystem, t: i64, q: Quark) -> StateValue {
    if q < 0 || t < ss.start_time() || t > ss.current_end_time() {
        return StateValue::Null;
    }
    ss.query_single(t, q)
        .map(|i| i.value)
        .unwrap_or(StateValue::Null)
}

fn string_at_end(ss: &StateSystem, q: Quark) -> Option<String> {
    text(&value_at(ss, ss.current_end_time(), q)).map(String::from)
}

/// A value written once "at the start" (machine type, parent): read at the
/// start, else at the end.
fn first_or_last(ss: &StateSystem, q: Quark) -> StateValue {
    match value_at(ss, ss.start_time(), q) {
        StateValue::Null => value_at(ss, ss.current_end_time(), q),
        v => v,
    }
}

fn name(tree: &AttributeTree, q: Quark) -> String {
    tree.name(q).unwrap_or("").to_string()
}

/// Pieces of the intersection of the intervals of `quarks` (an invalid quark
/// reads as null everywhere) that contain each sample time, in time order:
/// (start, inclusive end, values).
fn sampled_pieces(
    ss: &StateSystem,
    quarks: &[Quark],
    times: &[i64],
) -> sht::Result<Vec<(i64, i64, Vec<StateValue>)>> {
    let valid: Vec<Quark> = quarks.iter().copied().filter(|&q| q >= 0).collect();
    let by_quark = sampled_intervals(ss, &valid, times)?;
    let empty = Vec::new();
    let lists: Vec<&Vec<Interval>> = quarks
        .iter()
        .map(|q| by_quark.get(q).unwrap_or(&empty))
        .collect();
    let mut next = vec![0usize; quarks.len()];
    let mut out: Vec<(i64, i64, Vec<StateValue>)> = Vec::new();
    let (lo, hi) = (ss.start_time(), ss.current_end_time());
    'times: for t in times_in_range(ss, times) {
        let (mut start, mut end) = (lo, hi);
        let mut values = Vec::with_capacity(quarks.len());
        for (k, &q) in quarks.iter().enumerate() {
            if q < 0 {
                values.push(StateValue::Null);
                continue;
            }
            let list = lists[k];
            while next[k] < list.len() && list[next[k]].end < t {
                next[k] += 1;
            }
            match list.get(next[k]).filter(|i| i.contains(t)) {
                Some(i) => {
                    start = start.max(i.start);
                    end = end.min(i.end);
                    values.push(i.value.clone());
                }
                None => continue 'times,
            }
        }
        if out.last().is_some_and(|p| p.0 == start) {
            continue;
        }
        out.push((start, end, values));
    }
    Ok(out)
}

fn state(start: i64, end: i64, current_end: i64, style: Style) -> TimeGraphState {
    TimeGraphState {
        start,
        end: end.saturating_add(1).min(current_end).max(start),
        label: None,
        style: Some(style),
    }
}

impl VmView {
    fn new(which: Which, source: ExperimentSource) -> Self {
        let (id, name, description) = match which {
            Which::Vcpu => (
                VCPU_VIEW_ID,
                "Virtual CPU view",
                "Status of each virtual CPU of each guest (running, in hypervisor, preempted, idle), and of the guest threads",
            ),
            Which::Resources => (
                VRESOURCES_VIEW_ID,
                "Virtual Resources view",
                "What runs on each physical CPU across host and guests, per virtual machine and per container (fused VM analysis)",
            ),
        };
        VmView {
            which,
            descriptor: OutputDescriptor {
                id: id.into(),
                name: name.into(),
                description: description.into(),
                output_type: OutputType::TimeGraph,
            },
            source,
            ids: IdMap::default(),
            rows: Mutex::new(HashMap::new()),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// State system `id` of trace `trace`, as this experiment serves it.
    fn handle_of(&self, trace: usize, id: &str) -> Option<StateSystemHandle> {
        self.source
            .trace_state_systems(trace)
            .into_iter()
            .find(|s| s.id == id)
    }

    /// The member trace whose machine is `host` (Trace Compass: the trace of
    /// that host id) and that has a kernel analysis: named so (XML stub traces,
    /// CTF traces without a clock UUID), or named as the VM model analysis of
    /// trace `run` says, or a CTF trace whose host id (its clock UUID, as the
    /// VM analyses compute it) is `host`.
    fn kernel_trace_of(&self, run: usize, host: &str) -> Option<usize> {
        let trace_name = self.handle_of(run, model::ID).and_then(|h| {
            let ss = h.read();
            let q = ss.attributes().opt_quark(ROOT_QUARK, &[host]);
            (q >= 0).then(|| string_at_end(&ss, q)).flatten()
        });
        let candidates: Vec<usize> = (0..self.source.traces.len())
            .filter(|&i| self.handle_of(i, KERNEL_ANALYSIS_ID).is_some())
            .collect();
        let by = |n: &str| {
            candidates
                .iter()
                .copied()
                .find(|&i| self.source.traces[i].name == n)
        };
        by(host)
            .or_else(|| trace_name.as_deref().and_then(by))
            .or_else(|| {
                candidates
                    .iter()
                    .copied()
                    .find(|&i| self.host_ids(i).iter().any(|h| h == host))
            })
    }

    /// Host ids of member trace `i`'s CTF traces (read once from their
    /// metadata; none for other traces).
    fn host_ids(&self, i: usize) -> Vec<String> {
        let mut cache = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(i)
            .or_insert_with(|| {
                let path = &self.source.traces[i].path;
                if !path.is_dir() {
                    return Vec::new();
                }
                sextant_providers::sources::CtfSource::open(std::slice::from_ref(path))
                    .map(|s| s.info().hosts)
                    .unwrap_or_default()
            })
            .clone()
    }

    fn build_tree(&self) -> (Vec<TreeEntry>, bool) {
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        let mut rows = HashMap::new();
        let mut building = false;
        for (ti, trace) in self.source.traces.iter().enumerate() {
            building |= trace.is_analysing();
            let Some(h) = self.handle_of(ti, self.which.analysis()) else {
                continue;
            };
            let ss = h.read();
            building |= ss.is_building();
            let span = (ss.start_time(), ss.current_end_time());
            let root_path = String::new();
            let root = self.ids.id(&(ti, root_path.clone()));
            if seen.insert(root) {
                entries
                    .push(TreeEntry::new(root, -1, vec![trace.name.clone()]).span(span.0, span.1));
            }
            let mut b = Builder {
                ids: &self.ids,
                trace: ti,
                span,
                entries: &mut entries,
                seen: &mut seen,
                rows: &mut rows,
            };
            match self.which {
                Which::Vcpu => self.vcpu_entries(&mut b, &ss, (root, root_path)),
                Which::Resources => resources_entries(&mut b, &ss, (root, root_path)),
            }
        }
        *self.rows.lock().unwrap_or_else(|e| e.into_inner()) = rows;
        (entries, building)
    }

    fn vcpu_entries(&self, b: &mut Builder<'_>, ss: &StateSystem, root: (i64, String)) {
        let tree = ss.attributes();
        let vms = tree.opt_quark(ROOT_QUARK, &["Virtual Machines"]);
        if vms < 0 {
            return;
        }
        let fused = self.handle_of(b.trace, fused::ID);
        for g in sorted_children(tree, vms) {
            let guest = name(tree, g);
            let gentry = b.add(&root, format!("Guest: {guest}"), None);
            // Physical CPUs the guest ran on, for its vCPUs' guest-thread rows.
            let pcpus: Vec<Quark> = fused
                .as_ref()
                .map(|h| {
                    let fss = h.read();
                    let ft = fss.attributes();
                    let list = ft.opt_quark(ROOT_QUARK, &["Hosts", &guest, "pCPUs"]);
                    if list < 0 {
                        return Vec::new();
                    }
                    sorted_children(ft, list)
                        .into_iter()
                        .map(|p| ft.opt_quark(ROOT_QUARK, &["CPUs", ft.name(p).unwrap_or("")]))
                        .filter(|&q| q >= 0)
                        .collect()
                })
                .unwrap_or_default();
            for v in sorted_children(tree, g) {
                let status = tree.opt_quark(v, &["Status"]);
                if status < 0 {
                    continue;
                }
                let n = name(tree, v);
                let ventry = b.add(
                    &gentry,
                    format!("vCPU {n}"),
                    Some(Kind::Attr(status, AttrStyle::Vcpu)),
                );
                if let (false, Ok(vcpu)) = (pcpus.is_empty(), n.parse::<i64>()) {
                    b.add(
                        &ventry,
                        "Guest thread".into(),
                        Some(Kind::VcpuThread {
                            guest: guest.clone(),
                            vcpu,
                            pcpus: pcpus.clone(),
                        }),
                    );
                }
            }
            let Some(kernel) = self.kernel_trace_of(b.trace, &guest) else {
                continue;
            };
            let Some(kh) = self.handle_of(kernel, KERNEL_ANALYSIS_ID) else {
                continue;
            };
            let kss = kh.read();
            let kt = kss.attributes();
            let threads = kt.opt_quark(ROOT_QUARK, &["Threads"]);
            if threads < 0 {
                continue;
            }
            let tentry = b.add(&gentry, "Threads".into(), None);
            for t in sorted_children(kt, threads) {
                // "0_<cpu>" idle threads and "-1" are not guest threads.
                let Ok(tid) = name(kt, t).parse::<i64>() else {
                    continue;
                };
                if tid < 0 {
                    continue;
                }
                let exec = string_at_end(&kss, kt.opt_quark(t, &["Exec_name"]));
                let label = match exec {
                    Some(e) => format!("{tid}: {e}"),
                    None => tid.to_string(),
                };
                b.add(
                    &tentry,
                    label,
                    Some(Kind::GuestThread {
                        guest: guest.clone(),
                        tid,
                        kernel,
                    }),
                );
            }
        }
    }

    fn rows_of(&self, items: &[i64]) -> Vec<(i64, Row)> {
        if self
            .rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
        {
            self.build_tree();
        }
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        items
            .iter()
            .filter_map(|id| rows.get(id).map(|r| (*id, r.clone())))
            .collect()
    }

    /// The states of one row at `times`.
    fn row_states(&self, row: &Row, times: &[i64]) -> sht::Result<(Vec<TimeGraphState>, bool)> {
        let Some(h) = self.handle_of(row.trace, self.which.analysis()) else {
            return Ok((Vec::new(), true));
        };
        let ss = h.read();
        let complete = sampled_complete(&ss, times);
        let end = ss.current_end_time();
        let states = match &row.kind {
            Kind::Attr(q, style) => {
                let by_quark = sampled_intervals(&ss, &[*q], times)?;
                by_quark
                    .get(q)
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .filter_map(|i| {
                        let key = match style {
                            AttrStyle::Vcpu => vcpu_style(0, &i.value),
                            AttrStyle::Irq => fused_style(1, &i.value),
                            AttrStyle::SoftIrq => fused_style(2, &i.value),
                            AttrStyle::InVm => fused_style(3, &i.value),
                        }?;
                        Some(state(i.start, i.end, end, Style::key(key)))
                    })
                    .collect()
            }
            Kind::Cpu(cpu, filter) => cpu_states(&ss, *cpu, filter, times)?,
            Kind::VcpuThread { guest, vcpu, pcpus } => {
                let Some(fh) = self.handle_of(row.trace, fused::ID) else {
                    return Ok((Vec::new(), complete));
                };
                let fss = fh.read();
                vcpu_thread_pieces(&fss, guest, *vcpu, pcpus, times)?
                    .into_iter()
                    .map(|p| {
                        let key = fused_style(0, &p.status).unwrap_or("UNKNOWN");
                        let mut s = state(p.start, p.end, fss.current_end_time(), Style::key(key));
                        s.label = Some(thread_label(&fss, guest, p.tid, p.start).into());
                        s
                    })
                    .collect()
            }
            Kind::GuestThread { guest, tid, kernel } => {
                let Some(kh) = self.handle_of(*kernel, KERNEL_ANALYSIS_ID) else {
                    return Ok((Vec::new(), complete));
                };
                let kss = kh.read();
                guest_thread_states(&ss, &kss, guest, *tid, times)?
            }
        };
        Ok((states, complete))
    }
}

/// Label of a guest thread in the fused analysis: "<tid>: <exec name>".
fn thread_label(ss: &StateSystem, machine: &str, tid: i64, t: i64) -> String {
    let q = ss.attributes().opt_quark(
        ROOT_QUARK,
        &["Threads", machine, &tid.to_string(), "Exec_name"],
    );
    match text(&value_at(ss, t, q)) {
        Some(e) => format!("{tid}: {e}"),
        None => tid.to_string(),
    }
}

fn cpu_quarks(tree: &AttributeTree, cpu: Quark) -> [Quark; 3] {
    [
        tree.opt_quark(cpu, &["Status"]),
        tree.opt_quark(cpu, &["Machine_name"]),
        tree.opt_quark(cpu, &["Current_thread"]),
    ]
}

fn cpu_states(
    ss: &StateSystem,
    cpu: Quark,
    filter: &CpuFilter,
    times: &[i64],
) -> sht::Result<Vec<TimeGraphState>> {
    let quarks = cpu_quarks(ss.attributes(), cpu);
    if quarks[0] < 0 {
        return Ok(Vec::new());
    }
    let end = ss.current_end_time();
    Ok(sampled_pieces(ss, &quarks, times)?
        .into_iter()
        .filter(|(_, _, v)| match filter {
            CpuFilter::All => true,
            CpuFilter::Machines(set) => text(&v[1]).is_some_and(|m| set.iter().any(|s| s == m)),
            CpuFilter::Container { machine, threads } => {
                text(&v[1]) == Some(machine.as_str())
                    && int(&v[2]).is_some_and(|t| threads.contains(&t))
            }
        })
        .filter_map(|(s, e, v)| {
            let key = fused_style(0, &v[0])?;
            Some(state(s, e, end, Style::key(key)))
        })
        .collect())
}

struct Piece {
    start: i64,
    end: i64,
    tid: i64,
    status: StateValue,
}

/// Where the fused analysis shows `guest`'s vCPU `vcpu` running on one of
/// `pcpus`: the guest thread there (`Current_thread`) and the CPU status.
fn vcpu_thread_pieces(
    ss: &StateSystem,
    guest: &str,
    vcpu: i64,
    pcpus: &[Quark],
    times: &[i64],
) -> sht::Result<Vec<Piece>> {
    let tree = ss.attributes();
    let mut out: Vec<Piece> = Vec::new();
    for &p in pcpus {
        let [status, machine, thread] = cpu_quarks(tree, p);
        let virtual_cpu = tree.opt_quark(p, &["Virtual_cpu"]);
        if machine < 0 || thread < 0 || virtual_cpu < 0 {
            continue;
        }
        for (s, e, v) in sampled_pieces(ss, &[status, machine, virtual_cpu, thread], times)? {
            if text(&v[1]) == Some(guest) && int(&v[2]) == Some(vcpu) {
                if let Some(tid) = int(&v[3]) {
                    out.push(Piece {
                        start: s,
                        end: e,
                        tid,
                        status: v[0].clone(),
                    });
                }
            }
        }
    }
    // A vCPU runs on one physical CPU at a time; drop any overlap.
    out.sort_by_key(|p| p.start);
    let mut kept: Vec<Piece> = Vec::with_capacity(out.len());
    for p in out {
        if kept.last().is_none_or(|k| k.end < p.start) {
            kept.push(p);
        }
    }
    Ok(kept)
}

/// Incubator `getUpdatedThreadIntervals`, sampled: the thread's status
/// intervals (guest kernel analysis) and, for each interval of a vCPU status
/// (virtual resources) with the VMM or PREEMPT flag, a "preempted" mark on the
/// thread the guest ran on that vCPU when the interval began (dropped when a
/// status interval of the thread begins at the same time, as the incubator's
/// sorted multimap drops it). States: status pieces, preempted or not, and
/// preempted-only pieces where the thread has no drawn status.
fn guest_thread_states(
    vres: &StateSystem,
    kernel: &StateSystem,
    guest: &str,
    tid: i64,
    times: &[i64],
) -> sht::Result<Vec<TimeGraphState>> {
    let kt = kernel.attributes();
    let status_q = kt.opt_quark(ROOT_QUARK, &["Threads", &tid.to_string()]);
    if status_q < 0 {
        return Ok(Vec::new());
    }
    let statuses: Vec<Interval> = sampled_intervals(kernel, &[status_q], times)?
        .remove(&status_q)
        .unwrap_or_default();

    let mut marks: Vec<(i64, i64)> = Vec::new();
    let vt = vres.attributes();
    let vm = vt.opt_quark(ROOT_QUARK, &["Virtual Machines", guest]);
    if vm >= 0 {
        let mut vcpus: Vec<(Quark, Quark)> = Vec::new();
        for v in sorted_children(vt, vm) {
            let status = vt.opt_quark(v, &["Status"]);
            let current = kt.opt_quark(ROOT_QUARK, &["CPUs", vt.name(v)?, "Current_thread"]);
            if status >= 0 && current >= 0 {
                vcpus.push((status, current));
            }
        }
        let quarks: Vec<Quark> = vcpus.iter().map(|v| v.0).collect();
        let by_quark = sampled_intervals(vres, &quarks, times)?;
        for (status, current) in vcpus {
            for i in by_quark.get(&status).map_or(&[][..], Vec::as_slice) {
                let StateValue::Int(v) = i.value else {
                    continue;
                };
                if v & VCPU_FLAGS == 0
                    || i.start < kernel.start_time()
                    || i.start > kernel.current_end_time()
                {
                    continue;
                }
                if int(&kernel.query_single(i.start, current)?.value) != Some(tid) {
                    continue;
                }
                if kernel.query_single(i.start, status_q)?.start == i.start {
                    continue;
                }
                marks.push((i.start, i.end));
            }
        }
    }
    marks.sort_unstable();

    // Elementary segments between every boundary of the sampled intervals.
    let mut cuts: Vec<i64> = Vec::new();
    for i in &statuses {
        cuts.push(i.start);
        cuts.push(i.end.saturating_add(1));
    }
    for &(s, e) in &marks {
        cuts.push(s);
        cuts.push(e.saturating_add(1));
    }
    cuts.sort_unstable();
    cuts.dedup();
    let end = kernel.current_end_time().max(vres.current_end_time());
    let mut out: Vec<TimeGraphState> = Vec::new();
    // (status interval index or none, preempted) of the last state, to merge.
    let mut last: Option<(Option<usize>, bool, i64)> = None;
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1] - 1);
        let si = statuses.iter().position(|i| i.start <= a && b <= i.end);
        let key = si.and_then(|k| match statuses[k].value {
            StateValue::Int(v) => thread_key(v),
            _ => None,
        });
        let preempted = marks.iter().any(|&(s, e)| s <= a && b <= e);
        if key.is_none() && !preempted {
            last = None;
            continue;
        }
        let si = key.and(si);
        if let (Some((lsi, lp, _)), Some(prev)) = (last, out.last_mut()) {
            if lsi == si && lp == preempted && prev.end == a {
                prev.end = b.saturating_add(1).min(end).max(prev.start);
                continue;
            }
        }
        let style = match key {
            Some(k) if preempted => {
                let rgb = THREAD_STYLES
                    .iter()
                    .find(|s| s.key == k)
                    .map_or((200, 200, 200), |s| s.rgb);
                Style {
                    parent_key: Some(k.into()),
                    values: [("background-color".to_string(), json!(blend(rgb)))]
                        .into_iter()
                        .collect(),
                }
            }
            Some(k) => Style::key(k),
            None => Style::key(THREAD_PREEMPTED),
        };
        out.push(state(a, b, end, style));
        last = Some((si, preempted, a));
    }
    Ok(out)
}

/// The Virtual Resources tree of one fused state system.
fn resources_entries(b: &mut Builder<'_>, ss: &StateSystem, root: (i64, String)) {
    let tree = ss.attributes();
    let cpus = tree.opt_quark(ROOT_QUARK, &["CPUs"]);
    if cpus >= 0 {
        let group = b.add(&root, "Physical Cpus".into(), None);
        for p in sorted_children(tree, cpus) {
            if tree.opt_quark(p, &["Status"]) < 0 {
                continue;
            }
            let cpu = b.add(
                &group,
                format!("CPU {}", name(tree, p)),
                Some(Kind::Cpu(p, CpuFilter::All)),
            );
            for (sub, prefix, style) in [
                ("IRQs", "IRQ ", AttrStyle::Irq),
                ("Soft_IRQs", "Soft IRQ ", AttrStyle::SoftIrq),
            ] {
                let list = tree.opt_quark(p, &[sub]);
                if list < 0 {
                    continue;
                }
                for i in sorted_children(tree, list) {
                    b.add(
                        &cpu,
                        format!("{prefix}{}", name(tree, i)),
                        Some(Kind::Attr(i, style)),
                    );
                }
            }
        }
    }
    let machines = Machines::read(ss);
    let top: Vec<&Machine> = machines
        .list
        .iter()
        .filter(|m| m.is_guest() && !machines.parent_is_guest(m))
        .collect();
    if !top.is_empty() {
        let group = b.add(&root, "Virtual Machines".into(), None);
        for m in top {
            machine_entries(b, ss, &machines, m, &group);
        }
    }
    // The containers of the pure hosts.
    let hosts: Vec<&Machine> = machines
        .list
        .iter()
        .filter(|m| m.kind == MACHINE_HOST)
        .collect();
    let mut group: Option<(i64, String)> = None;
    for h in hosts {
        for c in top_containers(ss, &h.id) {
            let g = group.get_or_insert_with(|| b.add(&root, "Containers".into(), None));
            let g = g.clone();
            container_entries(b, ss, &h.id, c, &g);
        }
    }
}

struct Machine {
    id: String,
    label: String,
    kind: i64,
    parent: Option<String>,
}

impl Machine {
    fn is_guest(&self) -> bool {
        self.kind & MACHINE_GUEST != 0
    }
}

/// The machines of `Hosts/*`: type, parent, name.
struct Machines {
    list: Vec<Machine>,
}

impl Machines {
    fn read(ss: &StateSystem) -> Self {
        let tree = ss.attributes();
        let hosts = tree.opt_quark(ROOT_QUARK, &["Hosts"]);
        let mut list = Vec::new();
        if hosts >= 0 {
            for h in sorted_children(tree, hosts) {
                let id = name(tree, h);
                let label =
                    string_at_end(ss, tree.opt_quark(h, &["Machine_name"])).unwrap_or(id.clone());
                let kind = int(&first_or_last(ss, h)).unwrap_or(0);
                let parent_q = tree.opt_quark(h, &["Parent"]);
                let parent = if parent_q >= 0 {
                    text(&first_or_last(ss, parent_q)).map(String::from)
                } else {
                    None
                };
                list.push(Machine {
                    id,
                    label,
                    kind,
                    parent,
                });
            }
        }
        list.sort_by(|a, b| a.label.cmp(&b.label));
        Machines { list }
    }

    fn parent_is_guest(&self, m: &Machine) -> bool {
        m.parent
            .as_deref()
            .and_then(|p| self.list.iter().find(|o| o.id == p))
            .is_some_and(|p| p.is_guest() && p.id != m.id)
    }

    fn children<'a>(&'a self, m: &'a Machine) -> impl Iterator<Item = &'a Machine> + 'a {
        self.list
            .iter()
            .filter(move |o| o.is_guest() && o.id != m.id && o.parent.as_deref() == Some(&m.id))
    }

    /// `m` and every guest nested in it (host ids).
    fn subtree(&self, m: &Machine) -> Vec<String> {
        let mut out = vec![m.id.clone()];
        let mut k = 0;
        while k < out.len() && out.len() <= self.list.len() {
            let id = out[k].clone();
            if let Some(m) = self.list.iter().find(|o| o.id == id) {
                for c in self.children(m) {
                    if !out.contains(&c.id) {
                        out.push(c.id.clone());
                    }
                }
            }
            k += 1;
        }
        out
    }
}

/// A virtual machine's entry: its physical CPUs (filtered to its code), the
/// host threads running its vCPUs, its nested VMs and its containers.
fn machine_entries(
    b: &mut Builder<'_>,
    ss: &StateSystem,
    machines: &Machines,
    m: &Machine,
    parent: &(i64, String),
) {
    let tree = ss.attributes();
    let entry = b.add(parent, m.label.clone(), None);
    let pcpus = tree.opt_quark(ROOT_QUARK, &["Hosts", &m.id, "pCPUs"]);
    if pcpus >= 0 && !tree.children_of(pcpus).is_empty() {
        let group = b.add(&entry, "Physical Cpus".into(), None);
        let inside = machines.subtree(m);
        for p in sorted_children(tree, pcpus) {
            let n = name(tree, p);
            let cpu = tree.opt_quark(ROOT_QUARK, &["CPUs", &n]);
            if cpu >= 0 {
                b.add(
                    &group,
                    format!("CPU {n}"),
                    Some(Kind::Cpu(cpu, CpuFilter::Machines(inside.clone()))),
                );
            }
        }
    }
    let vcpus = tree.opt_quark(ROOT_QUARK, &["Hosts", &m.id, "CPUs"]);
    if vcpus >= 0 {
        for v in sorted_children(tree, vcpus) {
            b.add(
                &entry,
                format!("vCPU {}", name(tree, v)),
                Some(Kind::Attr(v, AttrStyle::InVm)),
            );
        }
    }
    let nested: Vec<&Machine> = machines.children(m).collect();
    if !nested.is_empty() {
        let group = b.add(&entry, "Virtual Machines".into(), None);
        for n in nested {
            machine_entries(b, ss, machines, n, &group);
        }
    }
    let containers = top_containers(ss, &m.id);
    if !containers.is_empty() {
        let group = b.add(&entry, "Containers".into(), None);
        for c in containers {
            container_entries(b, ss, &m.id, c, &group);
        }
    }
}

/// Parent namespace of a container (`Parent`, -1 when unknown).
fn container_parent(ss: &StateSystem, c: Quark) -> i64 {
    let q = ss.attributes().opt_quark(c, &["Parent"]);
    if q < 0 {
        return -1;
    }
    int(&first_or_last(ss, q)).unwrap_or(-1)
}

fn containers_of(ss: &StateSystem, machine: &str) -> Vec<Quark> {
    let tree = ss.attributes();
    let q = tree.opt_quark(ROOT_QUARK, &["Hosts", machine, "Containers"]);
    if q < 0 {
        return Vec::new();
    }
    sorted_children(tree, q)
}

/// Containers whose parent is the root PID namespace.
fn top_containers(ss: &StateSystem, machine: &str) -> Vec<Quark> {
    containers_of(ss, machine)
        .into_iter()
        .filter(|&c| container_parent(ss, c) == ROOT_NAMESPACE)
        .collect()
}

/// A container's entry: its physical CPUs (filtered to its threads) and the
/// containers nested in it.
fn container_entries(
    b: &mut Builder<'_>,
    ss: &StateSystem,
    machine: &str,
    c: Quark,
    parent: &(i64, String),
) {
    let tree = ss.attributes();
    let ns = name(tree, c);
    let entry = b.add(parent, ns.clone(), None);
    let threads: HashSet<i64> = {
        let q = tree.opt_quark(c, &["Threads"]);
        if q < 0 {
            HashSet::new()
        } else {
            tree.children_of(q)
                .iter()
                .filter_map(|&t| tree.name(t).ok()?.parse().ok())
                .collect()
        }
    };
    let pcpus = tree.opt_quark(c, &["pCPUs"]);
    if pcpus >= 0 && !tree.children_of(pcpus).is_empty() {
        let group = b.add(&entry, "Physical Cpus".into(), None);
        for p in sorted_children(tree, pcpus) {
            let n = name(tree, p);
            let cpu = tree.opt_quark(ROOT_QUARK, &["CPUs", &n]);
            if cpu >= 0 {
                b.add(
                    &group,
                    format!("CPU {n}"),
                    Some(Kind::Cpu(
                        cpu,
                        CpuFilter::Container {
                            machine: machine.to_string(),
                            threads: threads.clone(),
                        },
                    )),
                );
            }
        }
    }
    // Guard against a namespace listed as its own parent.
    let Ok(me) = ns.parse::<i64>() else { return };
    let nested: Vec<Quark> = containers_of(ss, machine)
        .into_iter()
        .filter(|&o| o != c && container_parent(ss, o) == me)
        .collect();
    if !nested.is_empty() {
        let group = b.add(&entry, "Containers".into(), None);
        for o in nested {
            container_entries(b, ss, machine, o, &group);
        }
    }
}

impl OutputProvider for VmView {
    fn descriptor(&self) -> &OutputDescriptor {
        &self.descriptor
    }

    fn style(&self) -> ProviderResult<StyleModel> {
        let mut m = StyleModel::default();
        for s in self.which.styles().iter().copied().flatten() {
            m.insert(
                s.key,
                &Style::values([
                    ("style-name", json!(s.label)),
                    ("background-color", json!(rgb_hex(s.rgb))),
                    ("height", json!(s.height)),
                ]),
            );
        }
        if self.which == Which::Vcpu {
            m.insert(
                THREAD_PREEMPTED,
                &Style::values([
                    ("style-name", json!("VCPU preempted")),
                    ("background-color", json!(rgb_hex(PREEMPT_RGB))),
                    ("opacity", json!(PREEMPT_ALPHA)),
                    ("height", json!(1.0)),
                ]),
            );
        }
        Ok(GenericResponse::completed(m))
    }

    fn tree(&self, _query: &TreeQuery) -> ProviderResult<TreeModel> {
        let (entries, building) = self.build_tree();
        Ok(GenericResponse::with_progress(
            TreeModel::named(entries, -1),
            building,
        ))
    }

    fn states(&self, query: &DataQuery) -> ProviderResult<StatesModel> {
        let items = query.items.as_deref().unwrap_or(&[]);
        let mut rows = Vec::new();
        let mut complete = true;
        for (id, row) in self.rows_of(items) {
            let (states, done) = self.row_states(&row, &query.times)?;
            complete &= done;
            rows.push(TimeGraphRow {
                entry_id: id,
                states,
            });
        }
        Ok(GenericResponse::with_progress(
            StatesModel { rows },
            !complete,
        ))
    }

    fn tooltip(&self, query: &TooltipQuery) -> ProviderResult<BTreeMap<String, String>> {
        let mut map = BTreeMap::new();
        let Some((_, row)) = query
            .items
            .first()
            .and_then(|&id| self.rows_of(&[id]).into_iter().next())
        else {
            return Ok(GenericResponse::completed(map));
        };
        let t = query.time;
        let label_of = |key: &str| {
            self.which
                .styles()
                .iter()
                .copied()
                .flatten()
                .find(|s| s.key == key)
                .map_or(key.to_string(), |s| s.label.to_string())
        };
        // The drawn state at `t`, whatever the row.
        let (states, _) = self.row_states(&row, &[t])?;
        if let Some(s) = states
            .iter()
            .find(|s| s.start <= t && t < s.end.max(s.start.saturating_add(1)))
        {
            if let Some(key) = s.style.as_ref().and_then(|st| st.parent_key.as_deref()) {
                map.insert("State".into(), label_of(key));
            }
            if let Some(l) = &s.label {
                map.insert("Thread".into(), l.to_string());
            }
        }
        let Some(h) = self.handle_of(row.trace, self.which.analysis()) else {
            return Ok(GenericResponse::completed(map));
        };
        let ss = h.read();
        match &row.kind {
            Kind::Attr(q, style) => {
                let v = value_at(&ss, t, *q);
                if !v.is_null() {
                    map.insert("Value".into(), value_text(&v));
                    if matches!(style, AttrStyle::Irq) {
                        map.insert("CPU".into(), value_text(&v));
                    }
                }
            }
            Kind::Cpu(cpu, _) => cpu_tooltip(&ss, *cpu, t, &mut map),
            Kind::GuestThread { .. } => {
                let preempted = states.iter().any(|s| {
                    s.start <= t
                        && t < s.end.max(s.start.saturating_add(1))
                        && s.style.as_ref().is_some_and(|st| {
                            !st.values.is_empty()
                                || st.parent_key.as_deref() == Some(THREAD_PREEMPTED)
                        })
                });
                map.insert("vCPU preempted".into(), preempted.to_string());
            }
            Kind::VcpuThread { .. } => {}
        }
        Ok(GenericResponse::completed(map))
    }
}

/// The incubator's CPU tooltip: machine, virtual CPU (in a VM), TID, process,
/// system call, and the vTID and container of a thread in a PID namespace.
fn cpu_tooltip(ss: &StateSystem, cpu: Quark, t: i64, map: &mut BTreeMap<String, String>) {
    let tree = ss.attributes();
    let [status, machine_q, thread_q] = cpu_quarks(tree, cpu);
    let status = value_at(ss, t, status);
    if !status.is_null() {
        map.insert("Value".into(), value_text(&status));
    }
    let machine = text(&value_at(ss, t, machine_q)).map(String::from);
    if let Some(m) = &machine {
        map.insert("Virtual Machine".into(), m.clone());
    }
    if int(&value_at(ss, t, tree.opt_quark(cpu, &["Condition"]))) == Some(0) {
        if let Some(v) = int(&value_at(ss, t, tree.opt_quark(cpu, &["Virtual_cpu"]))) {
            map.insert("Virtual CPU".into(), v.to_string());
        }
    }
    let (Some(m), Some(tid)) = (machine, int(&value_at(ss, t, thread_q))) else {
        return;
    };
    map.insert("> TID".into(), tid.to_string());
    let node_name = if tid == 0 {
        format!("0_{}", tree.name(cpu).unwrap_or(""))
    } else {
        tid.to_string()
    };
    let node = tree.opt_quark(ROOT_QUARK, &["Threads", &m, &node_name]);
    if node < 0 {
        return;
    }
    if let Some(e) = text(&value_at(ss, t, tree.opt_quark(node, &["Exec_name"]))) {
        map.insert("> Process".into(), e.to_string());
    }
    if let Some(s) = text(&value_at(ss, t, tree.opt_quark(node, &["System_call"]))) {
        map.insert("> System Call".into(), s.to_string());
    }
    // The deepest namespace level: its vTID and namespace (container).
    let levels = int(&value_at(ss, t, tree.opt_quark(node, &["ns_max_level"]))).unwrap_or(0);
    if levels > 1 {
        let mut q = node;
        for _ in 1..levels {
            let next = tree.opt_quark(q, &["VTID"]);
            if next < 0 {
                break;
            }
            q = next;
        }
        if q != node {
            if let Some(vtid) = int(&value_at(ss, t, q)) {
                map.insert("> vTID".into(), vtid.to_string());
            }
            if let Some(ns) = int(&value_at(ss, t, tree.opt_quark(q, &["ns_inum"]))) {
                map.insert("> Container".into(), ns.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sht::StateSystemBuilder;

    /// Spec providers.md §1.4 tree of a nested setup: host `h` (type 1), L1
    /// hypervisor `l1` (type 3, parent h), L2 guest `l2` (type 2, parent l1),
    /// a second guest `g` (parent h); physical CPU 0 runs h, l1, l2, g in turn.
    fn nested() -> StateSystem {
        let mut ss = StateSystem::in_memory(0);
        for (m, kind, parent) in [
            ("h", 1, None),
            ("l1", 3, Some("h")),
            ("l2", 2, Some("l1")),
            ("g", 2, Some("h")),
        ] {
            let q = ss.quark_and_add(&["Hosts", m]).unwrap();
            ss.modify(0, StateValue::Int(kind), q).unwrap();
            if let Some(p) = parent {
                let q = ss.quark_and_add(&["Hosts", m, "Parent"]).unwrap();
                ss.modify(0, StateValue::string(p), q).unwrap();
                ss.quark_and_add(&["Hosts", m, "pCPUs", "0"]).unwrap();
            }
        }
        let status = ss.quark_and_add(&["CPUs", "0", "Status"]).unwrap();
        let machine = ss.quark_and_add(&["CPUs", "0", "Machine_name"]).unwrap();
        let thread = ss.quark_and_add(&["CPUs", "0", "Current_thread"]).unwrap();
        for (t, m, tid) in [
            (0, "h", 1),
            (10, "l1", 2),
            (20, "l2", 3),
            (30, "g", 4),
            (40, "h", 1),
        ] {
            ss.modify(t, StateValue::Int(2), status).unwrap();
            ss.modify(t, StateValue::string(m), machine).unwrap();
            ss.modify(t, StateValue::Int(tid), thread).unwrap();
        }
        ss.close(49).unwrap();
        ss
    }

    fn shown(ss: &StateSystem, filter: CpuFilter) -> Vec<(i64, i64)> {
        let cpu = ss.attributes().opt_quark(ROOT_QUARK, &["CPUs", "0"]);
        let times: Vec<i64> = (0..50).collect();
        cpu_states(ss, cpu, &filter, &times)
            .unwrap()
            .iter()
            .map(|s| (s.start, s.end))
            .collect()
    }

    #[test]
    fn a_vm_row_shows_its_nested_guests_and_not_its_parent() {
        let ss = nested();
        let machines = Machines::read(&ss);
        let get = |id: &str| machines.list.iter().find(|m| m.id == id).unwrap();
        // Top VMs: the guests whose parent is no guest.
        let top: Vec<&str> = machines
            .list
            .iter()
            .filter(|m| m.is_guest() && !machines.parent_is_guest(m))
            .map(|m| m.id.as_str())
            .collect();
        assert_eq!(top, ["g", "l1"]);
        assert_eq!(machines.subtree(get("l1")), ["l1", "l2"]);
        // The incubator's isInsideVM: l1's row shows l1 and l2, l2's only l2.
        let l1 = shown(&ss, CpuFilter::Machines(machines.subtree(get("l1"))));
        assert_eq!(l1, [(10, 20), (20, 30)]);
        let l2 = shown(&ss, CpuFilter::Machines(machines.subtree(get("l2"))));
        assert_eq!(l2, [(20, 30)]);
        assert_eq!(shown(&ss, CpuFilter::All).len(), 5);
        // A container of h holding thread 1 shows h's pieces only.
        let threads: HashSet<i64> = [1, 3].into_iter().collect();
        let c = shown(
            &ss,
            CpuFilter::Container {
                machine: "h".into(),
                threads,
            },
        );
        assert_eq!(c, [(0, 10), (40, 49)]);
    }
}
