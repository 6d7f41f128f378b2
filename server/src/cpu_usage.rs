//! CPU usage (TREE_TIME_XY) from the kernel analysis: who ran on the CPUs
//! (`CPUs/<n>/Current_thread`, tid 0 = idle), as a percentage of all CPUs' time
//! between consecutive sample times. Series: `Total` and one per thread that ran
//! in the requested range. (Trace Compass computes this from a separate CPU
//! usage analysis; the figures are the same quantity, time on CPU.)

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::json;
use sextant_providers::kernel::KERNEL_ANALYSIS_ID;
use sht::{
    Quark, StateSystem, StateSystemQuerier, StateValue, TimeCondition, INVALID_QUARK, ROOT_QUARK,
};

use crate::model::{
    AxisDescription, GenericResponse, Header, OutputDescriptor, OutputType, Style, TreeEntry,
    TreeModel, XyModel, XySeries,
};
use crate::query::{DataQuery, TreeQuery};
use crate::registry::{ExperimentSource, OutputFactory, OutputProvider, ProviderResult};
use crate::ssquery::{sampled_complete, IdMap};
use crate::values::value_text;

/// Trace Compass's CPU usage data provider id.
pub const CPU_USAGE_ID: &str =
    "org.eclipse.tracecompass.analysis.os.linux.core.cpuusage.CpuUsageDataProvider";

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Key {
    Trace(usize),
    Total(usize),
    Thread(usize, i64),
}

pub struct CpuUsageFactory;

impl OutputFactory for CpuUsageFactory {
    fn create(&self, experiment: &ExperimentSource) -> Vec<Arc<dyn OutputProvider>> {
        let kernel = experiment.traces.iter().any(|t| {
            t.properties.get("domain").is_some_and(|d| d == "kernel")
                || t.state_systems().iter().any(|s| s.id == KERNEL_ANALYSIS_ID)
        });
        if !kernel {
            return Vec::new();
        }
        vec![Arc::new(CpuUsage {
            descriptor: OutputDescriptor {
                id: CPU_USAGE_ID.into(),
                name: "CPU Usage".into(),
                description: "Share of the CPUs' time used, in total and per thread".into(),
                output_type: OutputType::TreeTimeXy,
            },
            source: experiment.clone(),
            ids: IdMap::default(),
        })]
    }
}

pub struct CpuUsage {
    descriptor: OutputDescriptor,
    source: ExperimentSource,
    ids: IdMap<Key>,
}

fn current_thread_quarks(ss: &StateSystem) -> Vec<Quark> {
    let tree = ss.attributes();
    let cpus = tree.opt_quark(ROOT_QUARK, &["CPUs"]);
    if cpus == INVALID_QUARK {
        return Vec::new();
    }
    tree.children_of(cpus)
        .iter()
        .map(|&c| tree.opt_quark(c, &["Current_thread"]))
        .filter(|&q| q != INVALID_QUARK)
        .collect()
}

fn tid(value: &StateValue) -> Option<i64> {
    match value {
        StateValue::Int(v) if *v > 0 => Some(i64::from(*v)),
        StateValue::Long(v) if *v > 0 => Some(*v),
        _ => None,
    }
}

/// Time on CPU per thread within [from, to].
fn time_per_thread(ss: &StateSystem, from: i64, to: i64) -> sht::Result<HashMap<i64, i64>> {
    let mut out: HashMap<i64, i64> = HashMap::new();
    let (from, to) = (from.max(ss.start_time()), to.min(ss.current_end_time()));
    if from > to {
        return Ok(out);
    }
    ss.query_2d_visit(
        &current_thread_quarks(ss),
        &TimeCondition::range(from, to),
        &mut |i| {
            if let Some(t) = tid(&i.value) {
                *out.entry(t).or_default() += i.end.min(to) - i.start.max(from);
            }
        },
    )?;
    Ok(out)
}

impl CpuUsage {
    fn kernel(&self, trace: usize) -> Option<crate::registry::StateSystemHandle> {
        self.source
            .traces
            .get(trace)?
            .state_systems()
            .into_iter()
            .find(|s| s.id == KERNEL_ANALYSIS_ID)
    }
}

impl OutputProvider for CpuUsage {
    fn descriptor(&self) -> &OutputDescriptor {
        &self.descriptor
    }

    fn tree(&self, query: &TreeQuery) -> ProviderResult<TreeModel> {
        let mut entries = Vec::new();
        let mut building = self.source.traces.iter().any(|t| t.is_analysing());
        for (ti, trace) in self.source.traces.iter().enumerate() {
            let Some(h) = self.kernel(ti) else { continue };
            let ss = h.read();
            building |= ss.is_building();
            let (start, end) = (ss.start_time(), ss.current_end_time());
            let (from, to) = query.range.unwrap_or((start, end));
            let root = self.ids.id(&Key::Trace(ti));
            entries.push(
                TreeEntry::new(root, -1, vec![trace.name.clone(), String::new()]).span(start, end),
            );
            let mut total = TreeEntry::new(
                self.ids.id(&Key::Total(ti)),
                root,
                vec!["Total".into(), String::new()],
            )
            .span(start, end)
            .has_data(true);
            total.is_default = Some(true);
            entries.push(total);
            let threads = ss.attributes().opt_quark(ROOT_QUARK, &["Threads"]);
            let mut times: Vec<(i64, i64)> = time_per_thread(&ss, from, to)?.into_iter().collect();
            times.sort_unstable();
            for (tid, _) in times {
                let exec = (threads != INVALID_QUARK)
                    .then(|| {
                        ss.attributes()
                            .opt_quark(threads, &[tid.to_string(), "Exec_name".into()])
                    })
                    .filter(|&q| q != INVALID_QUARK)
                    .and_then(|q| ss.query_single(end, q).ok())
                    .map(|i| value_text(&i.value))
                    .unwrap_or_default();
                entries.push(
                    TreeEntry::new(
                        self.ids.id(&Key::Thread(ti, tid)),
                        root,
                        vec![exec, tid.to_string()],
                    )
                    .span(start, end)
                    .has_data(true),
                );
            }
        }
        Ok(GenericResponse::with_progress(
            TreeModel {
                headers: vec![Header::string("Process"), Header::string("TID")],
                entries,
                auto_expand_level: 1,
            },
            building,
        ))
    }

    fn xy(&self, query: &DataQuery) -> ProviderResult<XyModel> {
        let items = query.items.as_deref().unwrap_or(&[]);
        let times = &query.times;
        let mut series: HashMap<i64, XySeries> = HashMap::new();
        let mut by_trace: BTreeMap<usize, Vec<(i64, Key)>> = BTreeMap::new();
        for &id in items {
            if let Some(k @ (Key::Total(t) | Key::Thread(t, _))) = self.ids.key(id) {
                by_trace.entry(t).or_default().push((id, k));
            }
        }
        let mut complete = true;
        for (ti, members) in by_trace {
            let Some(h) = self.kernel(ti) else { continue };
            let ss = h.read();
            complete &= sampled_complete(&ss, times);
            let quarks = current_thread_quarks(&ss);
            let nb_cpus = quarks.len().max(1) as f64;
            let wanted: HashMap<i64, usize> = members
                .iter()
                .enumerate()
                .filter_map(|(i, (_, k))| match k {
                    Key::Thread(_, tid) => Some((*tid, i)),
                    _ => None,
                })
                .collect();
            // Time on CPU per bucket [times[k-1], times[k]], per requested series.
            let mut busy = vec![vec![0i64; times.len()]; members.len()];
            let (lo, hi) = (
                times[0].max(ss.start_time()),
                times[times.len() - 1].min(ss.current_end_time()),
            );
            if lo < hi && times.len() > 1 {
                let total_index = members.iter().position(|(_, k)| matches!(k, Key::Total(_)));
                ss.query_2d_visit(&quarks, &TimeCondition::range(lo, hi), &mut |i| {
                    let Some(t) = tid(&i.value) else { return };
                    let rows: Vec<usize> = total_index
                        .into_iter()
                        .chain(wanted.get(&t).copied())
                        .collect();
                    if rows.is_empty() {
                        return;
                    }
                    // First bucket whose end is after the interval's start.
                    let mut k = times.partition_point(|&x| x <= i.start).max(1);
                    while k < times.len() && times[k - 1] < i.end {
                        let overlap = i.end.min(times[k]) - i.start.max(times[k - 1]);
                        if overlap > 0 {
                            for &r in &rows {
                                busy[r][k] += overlap;
                            }
                        }
                        k += 1;
                    }
                })?;
            }
            for (r, (id, key)) in members.iter().enumerate() {
                let mut y: Vec<f64> = (0..times.len())
                    .map(|k| {
                        if k == 0 {
                            return 0.0;
                        }
                        let span = (times[k] - times[k - 1]) as f64;
                        if span <= 0.0 {
                            0.0
                        } else {
                            100.0 * busy[r][k] as f64 / (span * nb_cpus)
                        }
                    })
                    .collect();
                if y.len() > 1 {
                    y[0] = y[1];
                }
                let name = match key {
                    Key::Total(_) => "Total".to_string(),
                    Key::Thread(_, tid) => tid.to_string(),
                    Key::Trace(_) => String::new(),
                };
                series.insert(
                    *id,
                    XySeries {
                        series_id: *id,
                        series_name: name,
                        x_values: times.clone(),
                        y_values: y,
                        style: Style::values([("series-type", json!("line"))]),
                        x_values_description: AxisDescription {
                            label: "Time".into(),
                            unit: "ns".into(),
                            data_type: "TIMESTAMP".into(),
                        },
                        y_values_description: AxisDescription {
                            label: "CPU usage".into(),
                            unit: "%".into(),
                            data_type: "NUMBER".into(),
                        },
                    },
                );
            }
        }
        let series = items.iter().filter_map(|id| series.remove(id)).collect();
        Ok(GenericResponse::with_progress(
            XyModel {
                title: "CPU Usage".into(),
                series,
            },
            !complete,
        ))
    }
}
