//! KVM exit rate per vCPU, as an XY.
//!
//! The incubator plots this ("KVM Exit Rate", `KvmExitRateDataProvider`) from
//! the counters of its single-trace KVM exit analysis (`VCPUs/<n>/kvm_exits`,
//! per exit reason too), which Sextant does not build. This output derives the
//! exits from the virtual resources analysis instead: a kvm exit sets the VMM
//! flag (128) of the vCPU's status and the next entry clears it, so each
//! interval where the flag turns on is one exit. Hence: per guest and vCPU
//! (the incubator merges the vCPUs of every VM by number), no per-reason
//! series, and exits of host threads no vCPU is known for are not counted.
//! The rate at each sample time is the incubator's: exits in the window
//! centred on it (half a sample step each side, clamped to the history) per
//! second, the first window starting half a step before the first time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::json;
use sextant_providers::vm::vresources;
use sht::{Quark, StateSystem, StateSystemQuerier, StateValue, ROOT_QUARK};

use crate::model::{
    finite, AxisDescription, GenericResponse, Header, OutputDescriptor, OutputType, Style,
    TreeEntry, TreeModel, XyModel, XySeries,
};
use crate::query::{DataQuery, TreeQuery};
use crate::registry::{
    ExperimentSource, OutputFactory, OutputProvider, ProviderResult, StateSystemHandle,
};
use crate::ssquery::{sampled_complete, sorted_children, IdMap};

/// Id of this output (not the incubator's: its tree and series differ).
pub const KVM_EXIT_RATE_ID: &str = "org.sextant.server.KvmExitRate";

/// Makes the output for experiments with vCPU statuses.
pub struct KvmExitRateFactory;

impl OutputFactory for KvmExitRateFactory {
    fn create(&self, experiment: &ExperimentSource) -> Vec<Arc<dyn OutputProvider>> {
        let applies = experiment.traces.iter().enumerate().any(|(i, t)| {
            experiment.trace_state_systems(i).iter().any(|s| {
                s.id == vresources::ID && {
                    let ss = s.read();
                    let vms = ss.attributes().opt_quark(ROOT_QUARK, &["Virtual Machines"]);
                    ss.is_building() || (vms >= 0 && !ss.attributes().children_of(vms).is_empty())
                }
            }) || (t.is_analysing()
                && t.properties
                    .get("domain")
                    .is_none_or(|d| d.is_empty() || d == "kernel"))
        });
        if !applies {
            return Vec::new();
        }
        vec![Arc::new(KvmExitRate {
            descriptor: OutputDescriptor {
                id: KVM_EXIT_RATE_ID.into(),
                name: "KVM exit rate".into(),
                description:
                    "KVM exits per second of each vCPU of each guest (from the vCPU statuses)"
                        .into(),
                output_type: OutputType::TreeTimeXy,
            },
            source: experiment.clone(),
            ids: IdMap::default(),
            series: Mutex::new(HashMap::new()),
        })]
    }
}

/// A series: (trace, vCPU `Status` quarks summed, series name).
type Series = (usize, Vec<Quark>, String);

struct KvmExitRate {
    descriptor: OutputDescriptor,
    source: ExperimentSource,
    ids: IdMap<(usize, String)>,
    series: Mutex<HashMap<i64, Series>>,
}

impl KvmExitRate {
    fn handle(&self, trace: usize) -> Option<StateSystemHandle> {
        self.source
            .trace_state_systems(trace)
            .into_iter()
            .find(|s| s.id == vresources::ID)
    }

    fn build_tree(&self) -> (Vec<TreeEntry>, bool) {
        let mut entries = Vec::new();
        let mut series = HashMap::new();
        let mut building = false;
        for (ti, trace) in self.source.traces.iter().enumerate() {
            building |= trace.is_analysing();
            let Some(h) = self.handle(ti) else { continue };
            let ss = h.read();
            building |= ss.is_building();
            let tree = ss.attributes();
            let vms = tree.opt_quark(ROOT_QUARK, &["Virtual Machines"]);
            if vms < 0 {
                continue;
            }
            let span = (ss.start_time(), ss.current_end_time());
            let root = self.ids.id(&(ti, String::new()));
            entries.push(TreeEntry::new(root, -1, vec![trace.name.clone()]).span(span.0, span.1));
            let mut all = Vec::new();
            for g in sorted_children(tree, vms) {
                let guest = tree.name(g).unwrap_or("").to_string();
                let gid = self.ids.id(&(ti, format!("/{guest}")));
                entries.push(TreeEntry::new(gid, root, vec![guest.clone()]).span(span.0, span.1));
                for v in sorted_children(tree, g) {
                    let status = tree.opt_quark(v, &["Status"]);
                    if status < 0 {
                        continue;
                    }
                    let label = format!("vCPU {}", tree.name(v).unwrap_or(""));
                    let id = self.ids.id(&(ti, format!("/{guest}/{label}")));
                    let mut e = TreeEntry::new(id, gid, vec![label.clone()]).span(span.0, span.1);
                    e.has_data = true;
                    e.is_default = Some(true);
                    entries.push(e);
                    series.insert(
                        id,
                        (ti, vec![status], format!("{}/{guest}/{label}", trace.name)),
                    );
                    all.push(status);
                }
            }
            if !all.is_empty() {
                let label = "All vCPUs";
                let id = self.ids.id(&(ti, format!("//{label}")));
                let mut e = TreeEntry::new(id, root, vec![label.into()]).span(span.0, span.1);
                e.has_data = true;
                e.is_default = Some(false);
                entries.push(e);
                series.insert(id, (ti, all, format!("{}/{label}", trace.name)));
            }
        }
        *self.series.lock().unwrap_or_else(|e| e.into_inner()) = series;
        (entries, building)
    }
}

fn has_vmm(v: &StateValue) -> bool {
    matches!(v, StateValue::Int(i) if i & vresources::VCPU_VMM != 0)
}

/// Times of the exits of the vCPU statuses `quarks` in `(lo, hi]`: starts of
/// intervals with the VMM flag whose previous interval lacks it.
fn exits(ss: &StateSystem, quarks: &[Quark], lo: i64, hi: i64) -> sht::Result<Vec<i64>> {
    let mut out = Vec::new();
    if hi <= lo {
        return Ok(out);
    }
    let mut by_quark: BTreeMap<Quark, Vec<sht::Interval>> = BTreeMap::new();
    for i in ss.query_2d(quarks, lo, hi)? {
        by_quark.entry(i.quark).or_default().push(i);
    }
    for list in by_quark.values_mut() {
        list.sort_by_key(|i| i.start);
        for k in 0..list.len() {
            let i = &list[k];
            if i.start <= lo || i.start > hi || !has_vmm(&i.value) {
                continue;
            }
            let before = if k > 0 && list[k - 1].end + 1 == i.start {
                has_vmm(&list[k - 1].value)
            } else {
                has_vmm(&ss.query_single(i.start - 1, i.quark)?.value)
            };
            if !before {
                out.push(i.start);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Exits per second in the window around each of `times` (see the module doc).
fn exit_rate(ss: &StateSystem, quarks: &[Quark], times: &[i64]) -> sht::Result<Vec<f64>> {
    let n = times.len();
    let mut y = vec![0.0; n];
    if n < 2 {
        return Ok(y);
    }
    let (start, end) = (ss.start_time(), ss.current_end_time());
    let half = times[1].saturating_sub(times[0]) / 2;
    let first = times[0].saturating_sub(half).max(start);
    let mut bounds: Vec<i64> = (1..n).map(|i| times[i].saturating_sub(half)).collect();
    bounds.push(times[n - 1].saturating_add(half).min(end));
    let last = bounds.iter().copied().max().unwrap_or(first);
    let list = exits(ss, quarks, first, last)?;
    let mut prev = first;
    for (k, &b) in bounds.iter().enumerate() {
        if b > prev {
            let count = list.partition_point(|&t| t <= b) - list.partition_point(|&t| t <= prev);
            if count > 0 {
                y[k] = count as f64 / ((b - prev) as f64 * 1e-9);
            }
        }
        prev = prev.max(b);
    }
    Ok(y)
}

impl OutputProvider for KvmExitRate {
    fn descriptor(&self) -> &OutputDescriptor {
        &self.descriptor
    }

    fn tree(&self, _query: &TreeQuery) -> ProviderResult<TreeModel> {
        let (entries, building) = self.build_tree();
        Ok(GenericResponse::with_progress(
            TreeModel {
                headers: vec![Header::string("Name")],
                entries,
                auto_expand_level: -1,
            },
            building,
        ))
    }

    fn xy(&self, query: &DataQuery) -> ProviderResult<XyModel> {
        if self
            .series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
        {
            self.build_tree();
        }
        let wanted: Vec<(i64, Series)> = {
            let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
            query
                .items
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .filter_map(|id| series.get(id).map(|s| (*id, s.clone())))
                .collect()
        };
        let mut out = Vec::new();
        let mut complete = true;
        for (id, (trace, quarks, name)) in wanted {
            let Some(h) = self.handle(trace) else {
                continue;
            };
            let ss = h.read();
            complete &= sampled_complete(&ss, &query.times);
            let y = exit_rate(&ss, &quarks, &query.times)?;
            out.push(XySeries {
                series_id: id,
                series_name: name,
                x_values: query.times.clone(),
                y_values: y.into_iter().map(finite).collect(),
                style: Style::values([("series-type", json!("line"))]),
                x_values_description: AxisDescription {
                    label: "Time".into(),
                    unit: "ns".into(),
                    data_type: "TIMESTAMP".into(),
                },
                y_values_description: AxisDescription {
                    label: "KVM Exits per Second".into(),
                    unit: "exits/s".into(),
                    data_type: "NUMBER".into(),
                },
            });
        }
        Ok(GenericResponse::with_progress(
            XyModel {
                title: "KVM Exit Rate".into(),
                series: out,
            },
            !complete,
        ))
    }
}
