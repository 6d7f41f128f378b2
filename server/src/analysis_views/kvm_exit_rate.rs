//! KVM exit rate, as an XY: the incubator's "KVM Exit Rate"
//! (`KvmExitRateDataProvider`) over the counters of the KVM exit analysis
//! (`sextant_providers::kvm_exits`, which every kernel trace runs).
//!
//! Tree, per trace with exits: `VCPU <n>` (the vCPU's `kvm_exits`) with one
//! child per exit reason (`exit_reasons/<reason>`), and `All VCPUs
//! (Aggregated)`, as the incubator; Sextant adds `Physical CPUs/CPU <n>` (the
//! `CPUs/<n>/kvm_exits` counters its analysis keeps but its tree does not
//! show). vCPUs are keyed by number, so vCPU 0 of every VM of the host is one
//! series, as in the incubator.
//!
//! The rate at each sample time is the incubator's (`AbstractRateDataProvider`):
//! the counter's growth between the midpoints around the time (the first
//! window starting half a step before the first time, not before the history;
//! the last ending half a step after the last time, not after it), per second;
//! a window whose end lies outside the history reads 0 and the next window
//! starts where the last one inside ended. The aggregate is the sum of the
//! vCPUs' rates (the incubator means the same, but its builder for it is never
//! fed by the interval loop, so it draws zeros).
//!
//! The series used to be derived from the vCPU statuses of the virtual
//! resources analysis (an exit being a rise of the VMM flag); that fallback is
//! gone: the counters exist wherever kvm exits were traced, count exits whose
//! vCPU the VM model cannot place, and give the per-reason series.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;
use sextant_providers::kvm_exits::{self, CPUS, EXIT_REASONS, KVM_EXITS, VCPUS};
use sht::{Quark, StateSystem, StateSystemQuerier, StateValue, ROOT_QUARK};

use crate::model::{
    finite, AxisDescription, GenericResponse, OutputDescriptor, OutputType, Style, TreeEntry,
    TreeModel, XyModel, XySeries,
};
use crate::query::{DataQuery, TreeQuery};
use crate::registry::{
    ExperimentSource, OutputFactory, OutputProvider, ProviderResult, StateSystemHandle,
};
use crate::ssquery::{sampled_complete, sorted_children, IdMap};

/// Id of this output (not the incubator's: Sextant adds the physical CPU rows).
pub const KVM_EXIT_RATE_ID: &str = "org.sextant.server.KvmExitRate";

const ALL_VCPUS: &str = "All VCPUs (Aggregated)";
const PHYSICAL_CPUS: &str = "Physical CPUs";

/// Whether a KVM exit history holds exits (or may, while it is built).
fn has_exits(ss: &StateSystem) -> bool {
    let cpus = ss.attributes().opt_quark(ROOT_QUARK, &[CPUS]);
    ss.is_building() || (cpus >= 0 && !ss.attributes().children_of(cpus).is_empty())
}

/// Makes the output for experiments whose traces hold KVM exits.
pub struct KvmExitRateFactory;

impl OutputFactory for KvmExitRateFactory {
    fn create(&self, experiment: &ExperimentSource) -> Vec<Arc<dyn OutputProvider>> {
        let applies = experiment.traces.iter().enumerate().any(|(i, t)| {
            experiment
                .trace_state_systems(i)
                .iter()
                .any(|s| s.id == kvm_exits::ID && has_exits(&s.read()))
                || (t.is_analysing()
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
                    "KVM exits per second of each vCPU, exit reason and physical CPU (KVM exit analysis)"
                        .into(),
                output_type: OutputType::TreeTimeXy,
            },
            source: experiment.clone(),
            ids: IdMap::default(),
            series: Mutex::new(HashMap::new()),
        })]
    }
}

/// A series: (trace, counter quarks whose rates are summed, series name).
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
            .find(|s| s.id == kvm_exits::ID)
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
            let cpus = tree.opt_quark(ROOT_QUARK, &[CPUS]);
            if cpus < 0 || tree.children_of(cpus).is_empty() {
                continue;
            }
            let span = (ss.start_time(), ss.current_end_time());
            let root = self.ids.id(&(ti, String::new()));
            entries.push(TreeEntry::new(root, -1, vec![trace.name.clone()]).span(span.0, span.1));
            // A leaf with data; `path` names its series below the trace.
            let mut add = |entries: &mut Vec<TreeEntry>,
                           parent: i64,
                           path: String,
                           label: String,
                           quarks: Vec<Quark>,
                           default: bool| {
                let id = self.ids.id(&(ti, path.clone()));
                let mut e = TreeEntry::new(id, parent, vec![label]).span(span.0, span.1);
                e.has_data = true;
                e.is_default = Some(default);
                entries.push(e);
                series.insert(id, (ti, quarks, format!("{}/{path}", trace.name)));
                id
            };
            let vcpus = tree.opt_quark(ROOT_QUARK, &[VCPUS]);
            let mut all = Vec::new();
            if vcpus >= 0 {
                for v in sorted_children(tree, vcpus) {
                    let name = tree.name(v).unwrap_or("");
                    let exits = tree.opt_quark(v, &[KVM_EXITS]);
                    // The incubator lists numbered vCPUs with a counter only.
                    if name.parse::<i64>().is_err() || exits < 0 {
                        continue;
                    }
                    let label = format!("VCPU {name}");
                    let vid = add(
                        &mut entries,
                        root,
                        label.clone(),
                        label.clone(),
                        vec![exits],
                        true,
                    );
                    all.push(exits);
                    let reasons = tree.opt_quark(v, &[EXIT_REASONS]);
                    if reasons < 0 {
                        continue;
                    }
                    for r in sorted_children(tree, reasons) {
                        let reason = tree.name(r).unwrap_or("").to_string();
                        add(
                            &mut entries,
                            vid,
                            format!("{label}/{reason}"),
                            reason,
                            vec![r],
                            false,
                        );
                    }
                }
            }
            add(
                &mut entries,
                root,
                ALL_VCPUS.into(),
                ALL_VCPUS.into(),
                all,
                false,
            );
            let group = self.ids.id(&(ti, format!("//{PHYSICAL_CPUS}")));
            entries
                .push(TreeEntry::new(group, root, vec![PHYSICAL_CPUS.into()]).span(span.0, span.1));
            for c in sorted_children(tree, cpus) {
                let exits = tree.opt_quark(c, &[KVM_EXITS]);
                if exits < 0 {
                    continue;
                }
                let label = format!("CPU {}", tree.name(c).unwrap_or(""));
                add(
                    &mut entries,
                    group,
                    label.clone(),
                    label,
                    vec![exits],
                    false,
                );
            }
        }
        *self.series.lock().unwrap_or_else(|e| e.into_inner()) = series;
        (entries, building)
    }
}

fn count(v: &StateValue) -> i64 {
    match v {
        StateValue::Int(i) => i64::from(*i),
        StateValue::Long(l) => *l,
        StateValue::Double(d) => *d as i64,
        _ => 0,
    }
}

/// Exits per second around each of `times`, summed over the counters `quarks`
/// (see the module doc).
fn exit_rate(ss: &StateSystem, quarks: &[Quark], times: &[i64]) -> sht::Result<Vec<f64>> {
    let n = times.len();
    let mut y = vec![0.0; n];
    if n < 2 || quarks.is_empty() {
        return Ok(y);
    }
    let (start, end) = (ss.start_time(), ss.current_end_time());
    let half = times[1].saturating_sub(times[0]) / 2;
    let first = times[0].saturating_sub(half).max(start);
    let mut bounds: Vec<i64> = (1..n).map(|i| times[i].saturating_sub(half)).collect();
    bounds.push(times[n - 1].saturating_add(half).min(end));
    let inside = |t: i64| start <= t && t <= end;
    // Counter values at each bound (None outside the history), per quark.
    let mut at: HashMap<Quark, Vec<Option<i64>>> = quarks
        .iter()
        .map(|&q| (q, bounds.iter().map(|&b| inside(b).then_some(0)).collect()))
        .collect();
    let mut sorted: Vec<(i64, usize)> = bounds.iter().copied().zip(0..).collect();
    sorted.sort_unstable();
    let wanted: Vec<i64> = sorted.iter().map(|s| s.0).filter(|&t| inside(t)).collect();
    for i in ss.query_2d_at(quarks, &wanted)? {
        let Some(slots) = at.get_mut(&i.quark) else {
            continue;
        };
        let lo = sorted.partition_point(|s| s.0 < i.start);
        let hi = sorted.partition_point(|s| s.0 <= i.end);
        for &(_, k) in &sorted[lo..hi] {
            slots[k] = Some(count(&i.value));
        }
    }
    for &q in quarks {
        let mut prev = if inside(first) {
            (count(&ss.query_single(first, q)?.value), first)
        } else {
            (0, first)
        };
        for (k, c) in at[&q].iter().enumerate() {
            let Some(c) = *c else { continue };
            let (dc, dt) = (c - prev.0, bounds[k].saturating_sub(prev.1));
            if dc > 0 && dt > 0 {
                y[k] += dc as f64 / (dt as f64 * 1e-9);
            }
            prev = (c, bounds[k]);
        }
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
            TreeModel::named(entries, -1),
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
