//! The state system explorer (TIME_GRAPH, tsp.md §7.3): every attribute of every
//! state system of the experiment's traces as a row, every value as states.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use sht::{Quark, StateSystemQuerier, ROOT_QUARK};

use crate::model::{
    GenericResponse, Header, OutputDescriptor, OutputType, StatesModel, Style, StyleModel,
    TimeGraphRow, TimeGraphState, TreeEntry, TreeModel,
};
use crate::query::{DataQuery, TooltipQuery, TreeQuery};
use crate::registry::{
    merge_ranges, ExperimentSource, OutputFactory, OutputProvider, ProviderResult,
    StateSystemHandle,
};
use crate::ssquery::{
    interval_state, path_string, sampled_complete, sampled_intervals, sorted_children, IdMap,
};
use crate::values::{
    explorer_style_key, hsb_color, state_label, value_text, EXPLORER_PALETTE_SIZE,
};

/// Output id (Trace Compass's, so clients configured for it find it).
pub const EXPLORER_ID: &str =
    "org.eclipse.tracecompass.internal.tmf.core.statesystem.provider.StateSystemDataProvider";

/// What an explorer entry stands for.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Key {
    Trace(usize),
    Module(usize, String),
    StateSystem(usize, String),
    Attribute(usize, String, Quark),
}

/// Makes one explorer per experiment (always applies).
pub struct ExplorerFactory;

impl OutputFactory for ExplorerFactory {
    fn create(&self, experiment: &ExperimentSource) -> Vec<Arc<dyn OutputProvider>> {
        vec![Arc::new(Explorer::new(experiment.clone()))]
    }
}

/// The state system explorer of one experiment.
pub struct Explorer {
    descriptor: OutputDescriptor,
    source: ExperimentSource,
    ids: IdMap<Key>,
}

impl Explorer {
    pub fn new(source: ExperimentSource) -> Self {
        Explorer {
            descriptor: OutputDescriptor {
                id: EXPLORER_ID.into(),
                name: "State System Explorer".into(),
                description: "Displays the states of state system attributes over time".into(),
                output_type: OutputType::TimeGraph,
            },
            source,
            ids: IdMap::default(),
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

    fn module_range(&self, trace: usize, module: &str) -> (i64, i64, bool) {
        let Some(t) = self.source.traces.get(trace) else {
            return (0, 0, false);
        };
        merge_ranges(
            t.state_systems()
                .iter()
                .filter(|s| s.module == module)
                .map(|s| s.range()),
        )
    }

    fn attribute_entries(
        &self,
        out: &mut Vec<TreeEntry>,
        trace: usize,
        handle: &StateSystemHandle,
        ss_entry: i64,
    ) {
        let ss = handle.read();
        let (start, end) = (ss.start_time(), ss.current_end_time());
        let tree = ss.attributes();
        // Depth-first, parents before children, siblings sorted by name.
        let mut stack: Vec<(Quark, i64)> = sorted_children(tree, ROOT_QUARK)
            .into_iter()
            .rev()
            .map(|q| (q, ss_entry))
            .collect();
        while let Some((q, parent)) = stack.pop() {
            let id = self.ids.id(&Key::Attribute(trace, handle.id.clone(), q));
            let name = tree.name(q).unwrap_or("").to_string();
            out.push(
                TreeEntry::new(id, parent, vec![name, q.to_string()])
                    .span(start, end)
                    .has_data(true),
            );
            for c in sorted_children(tree, q).into_iter().rev() {
                stack.push((c, id));
            }
        }
    }
}

/// The explorer's style map: 9 palette keys, `Unknown` and `Transparent`.
pub fn explorer_styles() -> StyleModel {
    let mut m = StyleModel::default();
    for i in 0..EXPLORER_PALETTE_SIZE {
        let hue = i as f64 * 360.0 / EXPLORER_PALETTE_SIZE as f64;
        m.insert(
            i.to_string(),
            &Style::values([("background-color", json!(hsb_color(hue, 0.6, 0.6)))]),
        );
    }
    m.insert(
        "Unknown",
        &Style::values([("background-color", json!("#c0c0c0"))]),
    );
    m.insert("Transparent", &Style::values([("opacity", json!(0.0))]));
    m
}

fn transparent(start: i64, end: i64) -> TimeGraphState {
    TimeGraphState {
        start,
        end,
        label: None,
        style: Some(Style::key("Transparent")),
    }
}

impl OutputProvider for Explorer {
    fn descriptor(&self) -> &OutputDescriptor {
        &self.descriptor
    }

    fn style(&self) -> ProviderResult<StyleModel> {
        Ok(GenericResponse::completed(explorer_styles()))
    }

    fn tree(&self, _query: &TreeQuery) -> ProviderResult<TreeModel> {
        let mut entries = Vec::new();
        let mut building = false;
        for (ti, trace) in self.source.traces.iter().enumerate() {
            let handles = trace.state_systems();
            let (ts, te, tb) = merge_ranges(handles.iter().map(|h| h.range()));
            building |= tb;
            let trace_id = self.ids.id(&Key::Trace(ti));
            entries.push(TreeEntry::new(trace_id, -1, vec![trace.name.clone()]).span(ts, te));
            // Modules in order of first appearance.
            let mut modules: Vec<&str> = Vec::new();
            for h in &handles {
                if !modules.contains(&h.module.as_str()) {
                    modules.push(&h.module);
                }
            }
            for module in modules {
                let (ms, me, _) = self.module_range(ti, module);
                let module_id = self.ids.id(&Key::Module(ti, module.to_string()));
                entries.push(
                    TreeEntry::new(module_id, trace_id, vec![module.to_string()])
                        .span(ms, me)
                        .has_data(true),
                );
                for h in handles.iter().filter(|h| h.module == module) {
                    let (s, e, _) = h.range();
                    let ss_id = self.ids.id(&Key::StateSystem(ti, h.id.clone()));
                    entries.push(
                        TreeEntry::new(ss_id, module_id, vec![h.id.clone()])
                            .span(s, e)
                            .has_data(true),
                    );
                    self.attribute_entries(&mut entries, ti, h, ss_id);
                }
            }
        }
        let model = TreeModel {
            headers: vec![
                Header::string("State System / Attribute"),
                Header::string("Quark"),
            ],
            entries,
            auto_expand_level: 1,
        };
        Ok(GenericResponse::with_progress(model, building))
    }

    fn states(&self, query: &DataQuery) -> ProviderResult<StatesModel> {
        let items = query.items.as_deref().unwrap_or(&[]);
        // Attribute rows grouped by state system, to run one 2-D query each.
        let mut groups: BTreeMap<(usize, String), Vec<(i64, Quark)>> = BTreeMap::new();
        let mut rows: BTreeMap<i64, Vec<TimeGraphState>> = BTreeMap::new();
        let mut complete = true;
        let (first, last) = (query.start(), query.end());
        for &id in items {
            match self.ids.key(id) {
                Some(Key::Attribute(t, ss, q)) => groups.entry((t, ss)).or_default().push((id, q)),
                Some(Key::Module(t, m)) => {
                    let (s, e, _) = self.module_range(t, &m);
                    if s <= last && first <= e {
                        rows.insert(id, vec![transparent(s, e)]);
                    }
                }
                Some(Key::StateSystem(t, ss)) => {
                    if let Some(h) = self.find(t, &ss) {
                        let (s, e, _) = h.range();
                        if s <= last && first <= e {
                            rows.insert(id, vec![transparent(s, e)]);
                        }
                    }
                }
                Some(Key::Trace(_)) | None => {}
            }
        }
        for ((t, ss_id), members) in groups {
            let Some(h) = self.find(t, &ss_id) else {
                continue;
            };
            let ss = h.read();
            complete &= sampled_complete(&ss, &query.times);
            let quarks: Vec<Quark> = members.iter().map(|&(_, q)| q).collect();
            let mut by_quark = sampled_intervals(&ss, &quarks, &query.times)?;
            let end = ss.current_end_time();
            for (id, q) in members {
                let states = by_quark
                    .remove(&q)
                    .unwrap_or_default()
                    .iter()
                    .map(|i| {
                        interval_state(
                            i,
                            end,
                            state_label(&i.value).map(Into::into),
                            Some(Style::key(explorer_style_key(&i.value))),
                        )
                    })
                    .collect();
                rows.insert(id, states);
            }
        }
        // Rows in the order the ids were requested.
        let rows = items
            .iter()
            .filter_map(|id| {
                rows.remove(id).map(|states| TimeGraphRow {
                    entry_id: *id,
                    states,
                })
            })
            .collect();
        Ok(GenericResponse::with_progress(
            StatesModel { rows },
            !complete,
        ))
    }

    fn tooltip(&self, query: &TooltipQuery) -> ProviderResult<BTreeMap<String, String>> {
        let mut map = BTreeMap::new();
        if let Some(Key::Attribute(t, ss_id, q)) =
            query.items.first().and_then(|&id| self.ids.key(id))
        {
            if let Some(h) = self.find(t, &ss_id) {
                let ss = h.read();
                map.insert("Quark".into(), q.to_string());
                map.insert(
                    "Full attribute path".into(),
                    path_string(ss.attributes(), q),
                );
                let value = ss
                    .query_single(query.time, q)
                    .map(|i| value_text(&i.value))
                    .unwrap_or_default();
                map.insert("Value".into(), value);
            }
        }
        Ok(GenericResponse::completed(map))
    }
}
