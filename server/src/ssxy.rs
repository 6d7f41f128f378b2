//! State system XY (TREE_TIME_XY, tsp.md §7.5): every numeric attribute of every
//! state system as a series, y = the attribute's value at each sample time
//! (0 where it is null, non-numeric, or outside the state system).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::json;
use sht::{Quark, StateSystemQuerier, TimeCondition, ROOT_QUARK};

use crate::model::{
    finite, AxisDescription, GenericResponse, Header, OutputDescriptor, OutputType, Style,
    TreeEntry, TreeModel, XyModel, XySeries,
};
use crate::query::{DataQuery, TreeQuery};
use crate::registry::{
    ExperimentSource, OutputFactory, OutputProvider, ProviderResult, StateSystemHandle,
};
use crate::ssquery::{path_string, sampled_complete, sampled_intervals, sorted_children, IdMap};
use crate::values::numeric;

/// Output id of the state system XY.
pub const SS_XY_ID: &str = "org.sextant.server.StateSystemXY";

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Key {
    Trace(usize),
    StateSystem(usize, String),
    Attribute(usize, String, Quark),
}

/// Makes one state system XY per experiment.
pub struct StateSystemXyFactory;

impl OutputFactory for StateSystemXyFactory {
    fn create(&self, experiment: &ExperimentSource) -> Vec<Arc<dyn OutputProvider>> {
        vec![Arc::new(StateSystemXy::new(experiment.clone()))]
    }
}

/// Numeric attributes of one state system, as of some end time.
struct NumericSet {
    end: i64,
    quarks: HashSet<Quark>,
}

pub struct StateSystemXy {
    descriptor: OutputDescriptor,
    source: ExperimentSource,
    ids: IdMap<Key>,
    numeric: Mutex<HashMap<(usize, String), Arc<NumericSet>>>,
}

impl StateSystemXy {
    pub fn new(source: ExperimentSource) -> Self {
        StateSystemXy {
            descriptor: OutputDescriptor {
                id: SS_XY_ID.into(),
                name: "State System XY".into(),
                description: "Values of numeric state system attributes over time".into(),
                output_type: OutputType::TreeTimeXy,
            },
            source,
            ids: IdMap::default(),
            numeric: Mutex::new(HashMap::new()),
        }
    }

    fn find(&self, trace: usize, ss_id: &str) -> Option<StateSystemHandle> {
        self.source
            .traces
            .get(trace)?
            .state_systems()
            .into_iter()
            .find(|s| s.id == ss_id)
    }

    /// Attributes that hold an int, long or double at some time: one scan of the
    /// history, cached until the state system grows.
    fn numeric_quarks(&self, trace: usize, h: &StateSystemHandle) -> sht::Result<Arc<NumericSet>> {
        let key = (trace, h.id.clone());
        let ss = h.read();
        let end = ss.current_end_time();
        if let Some(set) = self
            .numeric
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            if set.end == end {
                return Ok(set.clone());
            }
        }
        let all: Vec<Quark> = (0..ss.attribute_count() as Quark).collect();
        let mut quarks = HashSet::new();
        ss.query_2d_visit(
            &all,
            &TimeCondition::range(ss.start_time(), end),
            &mut |i| {
                if numeric(&i.value).is_some() {
                    quarks.insert(i.quark);
                }
            },
        )?;
        let set = Arc::new(NumericSet { end, quarks });
        self.numeric
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, set.clone());
        Ok(set)
    }
}

impl OutputProvider for StateSystemXy {
    fn descriptor(&self) -> &OutputDescriptor {
        &self.descriptor
    }

    fn tree(&self, _query: &TreeQuery) -> ProviderResult<TreeModel> {
        let mut entries = Vec::new();
        let mut building = false;
        for (ti, trace) in self.source.traces.iter().enumerate() {
            let trace_id = self.ids.id(&Key::Trace(ti));
            let mut e = TreeEntry::new(trace_id, -1, vec![trace.name.clone()]);
            e.is_default = Some(false);
            entries.push(e);
            for h in trace.state_systems() {
                let numeric = self.numeric_quarks(ti, &h)?;
                let ss = h.read();
                building |= ss.is_building();
                let tree = ss.attributes();
                // Keep attributes that are numeric or have numeric descendants.
                let mut keep = vec![false; tree.len()];
                for &q in &numeric.quarks {
                    let mut p = q;
                    while p != ROOT_QUARK && !keep[p as usize] {
                        keep[p as usize] = true;
                        p = tree.parent(p).unwrap_or(ROOT_QUARK);
                    }
                }
                if numeric.quarks.is_empty() {
                    continue;
                }
                let ss_id = self.ids.id(&Key::StateSystem(ti, h.id.clone()));
                let mut e = TreeEntry::new(ss_id, trace_id, vec![h.id.clone()]);
                e.is_default = Some(false);
                entries.push(e);
                // The first numeric attribute of each state system is shown by default.
                let mut default_given = false;
                let mut stack: Vec<(Quark, i64)> = sorted_children(tree, ROOT_QUARK)
                    .into_iter()
                    .rev()
                    .map(|q| (q, ss_id))
                    .collect();
                while let Some((q, parent)) = stack.pop() {
                    if !keep[q as usize] {
                        continue;
                    }
                    let id = self.ids.id(&Key::Attribute(ti, h.id.clone(), q));
                    let has_data = numeric.quarks.contains(&q);
                    let mut e = TreeEntry::new(id, parent, vec![tree.name(q).unwrap_or("").into()])
                        .has_data(has_data);
                    e.is_default = Some(has_data && !default_given);
                    default_given |= has_data;
                    entries.push(e);
                    for c in sorted_children(tree, q).into_iter().rev() {
                        stack.push((c, id));
                    }
                }
            }
        }
        let model = TreeModel {
            headers: vec![Header::string("Attribute")],
            entries,
            auto_expand_level: -1,
        };
        Ok(GenericResponse::with_progress(model, building))
    }

    fn xy(&self, query: &DataQuery) -> ProviderResult<XyModel> {
        let items = query.items.as_deref().unwrap_or(&[]);
        let mut groups: BTreeMap<(usize, String), Vec<(i64, Quark)>> = BTreeMap::new();
        for &id in items {
            if let Some(Key::Attribute(t, ss, q)) = self.ids.key(id) {
                groups.entry((t, ss)).or_default().push((id, q));
            }
        }
        let mut series: BTreeMap<i64, XySeries> = BTreeMap::new();
        let mut complete = true;
        for ((t, ss_id), members) in groups {
            let Some(h) = self.find(t, &ss_id) else {
                continue;
            };
            let numeric_set = self.numeric_quarks(t, &h)?;
            let ss = h.read();
            complete &= sampled_complete(&ss, &query.times);
            let quarks: Vec<Quark> = members
                .iter()
                .map(|&(_, q)| q)
                .filter(|q| numeric_set.quarks.contains(q))
                .collect();
            let by_quark = sampled_intervals(&ss, &quarks, &query.times)?;
            let trace_name = &self.source.traces[t].name;
            for (id, q) in members {
                if !numeric_set.quarks.contains(&q) {
                    continue;
                }
                // No interval: no sample time falls in the state system (y = 0).
                let intervals = by_quark.get(&q).map_or(&[][..], Vec::as_slice);
                // Walk the sorted sample times and intervals together.
                let mut y = Vec::with_capacity(query.times.len());
                let mut k = 0;
                for &time in &query.times {
                    while k < intervals.len() && intervals[k].end < time {
                        k += 1;
                    }
                    let v = intervals
                        .get(k)
                        .filter(|i| i.contains(time))
                        .and_then(|i| numeric(&i.value))
                        .unwrap_or(0.0);
                    y.push(finite(v));
                }
                series.insert(
                    id,
                    XySeries {
                        series_id: id,
                        series_name: format!("{trace_name}/{}", path_string(ss.attributes(), q)),
                        x_values: query.times.clone(),
                        y_values: y,
                        style: Style::values([("series-type", json!("line"))]),
                        x_values_description: AxisDescription {
                            label: "Time".into(),
                            unit: "ns".into(),
                            data_type: "TIMESTAMP".into(),
                        },
                        y_values_description: AxisDescription {
                            label: "Value".into(),
                            unit: String::new(),
                            data_type: "NUMBER".into(),
                        },
                    },
                );
            }
        }
        let series = items.iter().filter_map(|id| series.remove(id)).collect();
        Ok(GenericResponse::with_progress(
            XyModel {
                title: self.descriptor.name.clone(),
                series,
            },
            !complete,
        ))
    }
}
