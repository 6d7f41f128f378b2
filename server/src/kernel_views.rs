//! The kernel analysis' time graphs: Control Flow (one row per thread, its
//! status over time, under its parent) and Resources (one row per CPU, with its
//! IRQ and soft IRQ rows below). Both read the kernel analysis' state system
//! (`Threads/<tid>`, `CPUs/<n>`, `CPUs/<n>/IRQs/*`, `CPUs/<n>/Soft_IRQs/*`) of
//! each trace of the experiment, found by analysis id when asked, so they work
//! while the analysis is still running (empty and RUNNING until it is there).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::json;
use sextant_providers::kernel::{cpu_status, status, KERNEL_ANALYSIS_ID};
use sht::{Quark, StateSystemQuerier, StateValue, INVALID_QUARK, ROOT_QUARK};

use crate::model::{
    GenericResponse, Header, OutputDescriptor, OutputType, StatesModel, Style, StyleModel,
    TimeGraphRow, TreeEntry, TreeModel,
};
use crate::query::{DataQuery, TooltipQuery, TreeQuery};
use crate::registry::{
    ExperimentSource, OutputFactory, OutputProvider, ProviderError, ProviderResult,
    StateSystemHandle,
};
use crate::ssquery::{interval_state, sampled_complete, sampled_rows, sorted_children, IdMap};
use crate::states_cache::{
    next_view_id, states_model, states_rows, RowAssembly, RowCache, RowOut, StatesAnswer,
};
use crate::values::value_text;

/// Trace Compass's Control Flow data provider id.
pub const CONTROL_FLOW_ID: &str =
    "org.eclipse.tracecompass.internal.analysis.os.linux.core.threadstatus.ThreadStatusDataProvider";
/// Trace Compass's Resources data provider id.
pub const RESOURCES_ID: &str =
    "org.eclipse.tracecompass.internal.analysis.os.linux.core.kernel.ResourcesStatusDataProvider";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    ControlFlow,
    Resources,
}

/// What a row stands for.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Key {
    Trace(usize),
    /// Thread, CPU, IRQ or soft IRQ attribute.
    Row(usize, RowKind, Quark),
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum RowKind {
    Thread,
    Cpu,
    Irq,
    SoftIrq,
}

/// Makes Control Flow and Resources for experiments with a kernel trace (or a
/// trace still analysing, which may turn out to be one).
pub struct KernelViewsFactory;

fn may_have_kernel(source: &ExperimentSource) -> bool {
    source.traces.iter().any(|t| {
        t.properties.get("domain").is_some_and(|d| d == "kernel")
            || t.state_systems().iter().any(|s| s.id == KERNEL_ANALYSIS_ID)
    })
}

impl OutputFactory for KernelViewsFactory {
    fn create(&self, experiment: &ExperimentSource) -> Vec<Arc<dyn OutputProvider>> {
        if !may_have_kernel(experiment) {
            return Vec::new();
        }
        vec![
            Arc::new(KernelView::new(experiment.clone(), View::ControlFlow)),
            Arc::new(KernelView::new(experiment.clone(), View::Resources)),
        ]
    }
}

/// One of the two kernel time graphs over one experiment.
pub struct KernelView {
    view: View,
    descriptor: OutputDescriptor,
    source: ExperimentSource,
    ids: IdMap<Key>,
    /// This view's key in the shared row cache.
    uid: u64,
}

/// (style key, label, colour) of a thread status.
fn thread_style(value: &StateValue) -> Option<(&'static str, &'static str)> {
    let StateValue::Int(v) = value else {
        return None;
    };
    Some(match *v {
        status::WAIT_BLOCKED => ("WAIT_BLOCKED", "Wait blocked"),
        status::RUN_USERMODE => ("USERMODE", "Running (usermode)"),
        status::RUN_SYSCALL => ("SYSCALL", "Running (syscall)"),
        status::INTERRUPTED => ("INTERRUPTED", "Interrupted"),
        status::WAIT_FOR_CPU => ("WAIT_FOR_CPU", "Wait for CPU"),
        status::WAIT_FORK => ("WAIT_FORK", "Wait fork"),
        status::WAIT_UNKNOWN => ("WAIT_UNKNOWN", "Wait unknown"),
        _ => ("UNKNOWN", "Unknown"),
    })
}

/// (style key, label) of a CPU status, an IRQ or a soft IRQ value.
fn resource_style(kind: RowKind, value: &StateValue) -> Option<(&'static str, &'static str)> {
    let StateValue::Int(v) = value else {
        return None;
    };
    Some(match kind {
        RowKind::Irq => ("IRQ", "IRQ"),
        RowKind::SoftIrq if *v == cpu_status::SOFT_IRQ_RAISED => {
            ("SOFT_IRQ_RAISED", "Soft IRQ raised")
        }
        RowKind::SoftIrq => ("SOFT_IRQ", "Soft IRQ"),
        _ if *v == cpu_status::IDLE => ("IDLE", "Idle"),
        _ if *v & cpu_status::IRQ != 0 => ("IRQ", "IRQ"),
        _ if *v & cpu_status::SOFTIRQ != 0 => ("SOFT_IRQ", "Soft IRQ"),
        _ if *v & cpu_status::RUN_SYSCALL != 0 => ("SYSCALL", "Running (syscall)"),
        _ if *v & cpu_status::RUN_USERMODE != 0 => ("USERMODE", "Running (usermode)"),
        _ if *v & cpu_status::SOFT_IRQ_RAISED != 0 => ("SOFT_IRQ_RAISED", "Soft IRQ raised"),
        _ => ("UNKNOWN", "Unknown"),
    })
}

fn styles(view: View) -> StyleModel {
    let entries: &[(&str, &str, &str)] = match view {
        View::ControlFlow => &[
            ("UNKNOWN", "Unknown", "#c0c0c0"),
            ("WAIT_BLOCKED", "Wait blocked", "#c8c800"),
            ("USERMODE", "Running (usermode)", "#00c800"),
            ("SYSCALL", "Running (syscall)", "#0000c8"),
            ("INTERRUPTED", "Interrupted", "#c86400"),
            ("WAIT_FOR_CPU", "Wait for CPU", "#c86400"),
            ("WAIT_FORK", "Wait fork", "#00c8c8"),
            ("WAIT_UNKNOWN", "Wait unknown", "#c8c8c8"),
        ],
        View::Resources => &[
            ("UNKNOWN", "Unknown", "#c0c0c0"),
            ("IDLE", "Idle", "#c8c8c8"),
            ("USERMODE", "Running (usermode)", "#00c800"),
            ("SYSCALL", "Running (syscall)", "#0000c8"),
            ("IRQ", "IRQ", "#c86400"),
            ("SOFT_IRQ", "Soft IRQ", "#c8a064"),
            ("SOFT_IRQ_RAISED", "Soft IRQ raised", "#ffc800"),
        ],
    };
    let mut m = StyleModel::default();
    for (key, name, color) in entries {
        m.insert(
            *key,
            &Style::values([
                ("style-name", json!(name)),
                ("background-color", json!(color)),
                ("height", json!(1.0)),
            ]),
        );
    }
    m
}

/// The integer a thread attribute holds at the state system's end (PPID, PID).
fn int_at_end(ss: &sht::StateSystem, quark: Quark) -> Option<i64> {
    if quark == INVALID_QUARK {
        return None;
    }
    let t = ss.current_end_time();
    match ss.query_single(t, quark).ok()?.value {
        StateValue::Int(v) => Some(v as i64),
        StateValue::Long(v) => Some(v),
        _ => None,
    }
}

fn text_at_end(ss: &sht::StateSystem, quark: Quark) -> Option<String> {
    if quark == INVALID_QUARK {
        return None;
    }
    let t = ss.current_end_time();
    match ss.query_single(t, quark).ok()?.value {
        StateValue::Null => None,
        v => Some(value_text(&v)),
    }
}

/// `<tid>` or `<tid>_<cpu>` (the idle threads) → tid.
fn tid_of(name: &str) -> Option<i64> {
    name.split('_').next()?.parse().ok()
}

impl KernelView {
    fn new(source: ExperimentSource, view: View) -> Self {
        let (id, name, description) = match view {
            View::ControlFlow => (
                CONTROL_FLOW_ID,
                "Thread Status",
                "Shows the status of every thread over time (Control Flow)",
            ),
            View::Resources => (
                RESOURCES_ID,
                "Resources Status",
                "Shows the status of every CPU, IRQ and soft IRQ over time",
            ),
        };
        KernelView {
            view,
            descriptor: OutputDescriptor {
                id: id.into(),
                name: name.into(),
                description: description.into(),
                output_type: OutputType::TimeGraph,
            },
            source,
            ids: IdMap::default(),
            uid: next_view_id(),
        }
    }

    fn kernel(&self, trace: usize) -> Option<StateSystemHandle> {
        self.source
            .traces
            .get(trace)?
            .state_systems()
            .into_iter()
            .find(|s| s.id == KERNEL_ANALYSIS_ID)
    }

    fn thread_entries(
        &self,
        out: &mut Vec<TreeEntry>,
        ti: usize,
        ss: &sht::StateSystem,
        root: i64,
    ) {
        let tree = ss.attributes();
        let threads = tree.opt_quark(ROOT_QUARK, &["Threads"]);
        if threads == INVALID_QUARK {
            return;
        }
        let (start, end) = (ss.start_time(), ss.current_end_time());
        let quarks = sorted_children(tree, threads);
        // tid → entry id, for the parent links (threads whose parent is known).
        let mut by_tid: HashMap<i64, i64> = HashMap::new();
        let mut rows = Vec::new();
        for q in quarks {
            let name = tree.name(q).unwrap_or("").to_string();
            let Some(tid) = tid_of(&name) else { continue };
            let id = self.ids.id(&Key::Row(ti, RowKind::Thread, q));
            if !name.contains('_') {
                by_tid.insert(tid, id);
            }
            let exec = text_at_end(ss, tree.opt_quark(q, &["Exec_name"])).unwrap_or_default();
            let pid = int_at_end(ss, tree.opt_quark(q, &["PID"])).unwrap_or(tid);
            let ppid = int_at_end(ss, tree.opt_quark(q, &["PPID"])).unwrap_or(-1);
            rows.push((id, tid, pid, ppid, exec));
        }
        for (id, tid, pid, ppid, exec) in rows {
            let parent = by_tid
                .get(&ppid)
                .copied()
                .filter(|&p| p != id)
                .unwrap_or(root);
            out.push(
                TreeEntry::new(
                    id,
                    parent,
                    vec![exec, tid.to_string(), pid.to_string(), ppid.to_string()],
                )
                .span(start, end)
                .has_data(true),
            );
        }
    }

    fn resource_entries(
        &self,
        out: &mut Vec<TreeEntry>,
        ti: usize,
        ss: &sht::StateSystem,
        root: i64,
    ) {
        let tree = ss.attributes();
        let cpus = tree.opt_quark(ROOT_QUARK, &["CPUs"]);
        if cpus == INVALID_QUARK {
            return;
        }
        let (start, end) = (ss.start_time(), ss.current_end_time());
        for cpu in sorted_children(tree, cpus) {
            let n = tree.name(cpu).unwrap_or("").to_string();
            let id = self.ids.id(&Key::Row(ti, RowKind::Cpu, cpu));
            out.push(
                TreeEntry::new(id, root, vec![format!("CPU {n}")])
                    .span(start, end)
                    .has_data(true),
            );
            for (group, kind, prefix) in [
                ("IRQs", RowKind::Irq, "IRQ"),
                ("Soft_IRQs", RowKind::SoftIrq, "Soft IRQ"),
            ] {
                let g = tree.opt_quark(cpu, &[group]);
                if g == INVALID_QUARK {
                    continue;
                }
                for irq in sorted_children(tree, g) {
                    let name = tree.name(irq).unwrap_or("");
                    let irq_id = self.ids.id(&Key::Row(ti, kind, irq));
                    out.push(
                        TreeEntry::new(irq_id, id, vec![format!("{prefix} {name}")])
                            .span(start, end)
                            .has_data(true),
                    );
                }
            }
        }
    }

    fn row_style(&self, kind: RowKind, value: &StateValue) -> Option<(&'static str, &'static str)> {
        match self.view {
            View::ControlFlow => thread_style(value),
            View::Resources => resource_style(kind, value),
        }
    }
}

impl KernelView {
    /// The rows of `query.items` (in that order, unknown ids left out) and
    /// whether the answer is final. With a cache, rows of finished state systems
    /// are looked up first; the others are computed in one 2D query per trace
    /// (each history node visited once for all rows and times) and kept.
    fn rows(
        &self,
        query: &DataQuery,
        cache: Option<&RowCache>,
    ) -> Result<(Vec<RowOut>, bool), ProviderError> {
        let items = query.items.as_deref().unwrap_or(&[]);
        let mut groups: BTreeMap<usize, Vec<(i64, RowKind, Quark)>> = BTreeMap::new();
        for &id in items {
            if let Some(Key::Row(t, kind, q)) = self.ids.key(id) {
                groups.entry(t).or_default().push((id, kind, q));
            }
        }
        let mut assembly = RowAssembly::new(cache, self.uid);
        let mut complete = true;
        for (t, members) in groups {
            let Some(handle) = self.kernel(t) else {
                continue;
            };
            let ss = handle.read();
            complete &= sampled_complete(&ss, &query.times);
            let building = ss.is_building();
            let weak = Arc::downgrade(&handle.ss);
            let members = assembly.take_cached(&weak, building, &query.times, members, |m| m.0);
            if members.is_empty() {
                continue;
            }
            let quarks: Vec<Quark> = members.iter().map(|m| m.2).collect();
            let mut by_quark = sampled_rows(&handle, &ss, &quarks, &query.times)?;
            let end = ss.current_end_time();
            let built = members
                .into_iter()
                .map(|(id, kind, q)| {
                    // Null intervals are gaps (no state), as in Trace Compass.
                    let states = by_quark
                        .remove(&q)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|i| {
                            let (key, _) = self.row_style(kind, &i.value)?;
                            Some(interval_state(i, end, None, Some(Style::key(key))))
                        })
                        .collect();
                    TimeGraphRow {
                        entry_id: id,
                        states,
                    }
                })
                .collect();
            assembly.add_built(&weak, building, &query.times, built);
        }
        Ok((assembly.finish(items), complete))
    }
}

impl OutputProvider for KernelView {
    fn descriptor(&self) -> &OutputDescriptor {
        &self.descriptor
    }

    fn style(&self) -> ProviderResult<StyleModel> {
        Ok(GenericResponse::completed(styles(self.view)))
    }

    fn tree(&self, _query: &TreeQuery) -> ProviderResult<TreeModel> {
        let mut entries = Vec::new();
        let mut building = false;
        for (ti, trace) in self.source.traces.iter().enumerate() {
            building |= trace.is_analysing();
            let Some(handle) = self.kernel(ti) else {
                continue;
            };
            let ss = handle.read();
            building |= ss.is_building();
            let root = self.ids.id(&Key::Trace(ti));
            entries.push(
                TreeEntry::new(root, -1, vec![trace.name.clone()])
                    .span(ss.start_time(), ss.current_end_time()),
            );
            match self.view {
                View::ControlFlow => self.thread_entries(&mut entries, ti, &ss, root),
                View::Resources => self.resource_entries(&mut entries, ti, &ss, root),
            }
        }
        let headers = match self.view {
            View::ControlFlow => vec![
                Header::string("Process"),
                Header::string("TID"),
                Header::string("PID"),
                Header::string("PTID"),
            ],
            View::Resources => vec![Header::string("Resource")],
        };
        let model = TreeModel {
            headers,
            entries,
            auto_expand_level: 1,
        };
        Ok(GenericResponse::with_progress(model, building))
    }

    fn states(&self, query: &DataQuery) -> ProviderResult<StatesModel> {
        let (rows, complete) = self.rows(query, None)?;
        Ok(states_model(rows, complete))
    }

    fn states_answer(&self, query: &DataQuery) -> ProviderResult<StatesAnswer> {
        let (rows, complete) = self.rows(query, Some(RowCache::global()))?;
        Ok(states_rows(rows, complete))
    }

    fn tooltip(&self, query: &TooltipQuery) -> ProviderResult<BTreeMap<String, String>> {
        let mut map = BTreeMap::new();
        let Some(Key::Row(t, kind, q)) = query.items.first().and_then(|&id| self.ids.key(id))
        else {
            return Ok(GenericResponse::completed(map));
        };
        let Some(handle) = self.kernel(t) else {
            return Ok(GenericResponse::completed(map));
        };
        let ss = handle.read();
        let tree = ss.attributes();
        let name = tree.name(q).unwrap_or("").to_string();
        if let Ok(interval) = ss.query_single(query.time, q) {
            if let Some((_, label)) = self.row_style(kind, &interval.value) {
                map.insert("State".into(), label.into());
            }
        }
        match kind {
            RowKind::Thread => {
                map.insert("TID".into(), tid_of(&name).unwrap_or(-1).to_string());
                let sys = tree.opt_quark(q, &["System_call"]);
                if sys != INVALID_QUARK {
                    if let Ok(i) = ss.query_single(query.time, sys) {
                        if !matches!(i.value, StateValue::Null) {
                            map.insert("System call".into(), value_text(&i.value));
                        }
                    }
                }
                let exec = tree.opt_quark(q, &["Exec_name"]);
                if exec != INVALID_QUARK {
                    if let Ok(i) = ss.query_single(query.time, exec) {
                        if !matches!(i.value, StateValue::Null) {
                            map.insert("Process".into(), value_text(&i.value));
                        }
                    }
                }
            }
            RowKind::Cpu => {
                map.insert("CPU".into(), name);
                let current = tree.opt_quark(q, &["Current_thread"]);
                if current != INVALID_QUARK {
                    if let Ok(i) = ss.query_single(query.time, current) {
                        if !matches!(i.value, StateValue::Null) {
                            map.insert("Current thread".into(), value_text(&i.value));
                        }
                    }
                }
            }
            RowKind::Irq | RowKind::SoftIrq => {
                map.insert("Name".into(), name);
            }
        }
        Ok(GenericResponse::completed(map))
    }
}
