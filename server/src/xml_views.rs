//! Outputs of the `timeGraphView` and `xyView` elements of the XML analysis files
//! given to the server (`--xml`): each view is one output (id = the view's id)
//! over the state systems of the analyses it names (every state system when it
//! names none). The entry tree is `sextant_xml::view::tree`; states are sampled
//! as tsp.md §6.1 says, like every other time graph of the server.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::json;
use sextant_xml::view::{self, ViewDef, ViewKind};
use sht::{Quark, StateSystemQuerier, StateValue};

use crate::model::{
    AxisDescription, GenericResponse, OutputDescriptor, OutputType, StatesModel, Style, StyleModel,
    TimeGraphRow, TreeEntry, TreeModel, XyModel, XySeries,
};
use crate::query::{DataQuery, TreeQuery};
use crate::registry::{
    ExperimentSource, OutputFactory, OutputProvider, ProviderResult, StateSystemHandle,
};
use crate::ssquery::{interval_state, sampled_complete, sampled_intervals, IdMap};
use crate::values::value_text;

/// Makes one output per view of the XML files, for every experiment.
pub struct XmlViewsFactory {
    views: Vec<Arc<ViewDef>>,
}

impl XmlViewsFactory {
    /// Reads the views of `files` (the server checked the files at start).
    pub fn new(files: &[PathBuf]) -> Result<Self, sextant_xml::XmlError> {
        let views = sextant_xml::load_files(files)?
            .into_iter()
            .flat_map(|f| f.views)
            .map(Arc::new)
            .collect();
        Ok(XmlViewsFactory { views })
    }
}

impl OutputFactory for XmlViewsFactory {
    fn create(&self, experiment: &ExperimentSource) -> Vec<Arc<dyn OutputProvider>> {
        self.views
            .iter()
            .map(|v| {
                Arc::new(XmlView::new(v.clone(), experiment.clone())) as Arc<dyn OutputProvider>
            })
            .collect()
    }
}

/// Entry of the server's tree: (trace, state system id, the view's own entry id).
type Key = (usize, String, usize);

pub struct XmlView {
    view: Arc<ViewDef>,
    descriptor: OutputDescriptor,
    source: ExperimentSource,
    ids: IdMap<Key>,
    /// The last tree of each (trace, state system), to find an entry's attribute.
    trees: Mutex<HashMap<Key2, ViewTree>>,
}

impl XmlView {
    fn new(view: Arc<ViewDef>, source: ExperimentSource) -> Self {
        let output_type = match view.kind {
            ViewKind::TimeGraph => OutputType::TimeGraph,
            ViewKind::Xy => OutputType::TreeTimeXy,
        };
        XmlView {
            descriptor: OutputDescriptor {
                id: view.id.clone(),
                name: view.label.clone(),
                description: format!("XML view {}", view.label),
                output_type,
            },
            view,
            source,
            ids: IdMap::default(),
            trees: Mutex::new(HashMap::new()),
        }
    }

    /// The state systems this view reads, with their trace index.
    fn state_systems(&self) -> Vec<(usize, StateSystemHandle)> {
        self.source
            .state_systems()
            .into_iter()
            .filter(|(_, h)| self.view.analyses.is_empty() || self.view.analyses.contains(&h.id))
            .collect()
    }

    fn tree_of(&self, trace: usize, handle: &StateSystemHandle) -> Arc<Vec<view::TreeEntry>> {
        let key = (trace, handle.id.clone());
        let ss = handle.read();
        let name = &self.source.traces[trace].name;
        let tree = Arc::new(view::tree(&self.view, &*ss, name));
        self.trees
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, tree.clone());
        tree
    }

    fn cached_tree(&self, trace: usize, handle: &StateSystemHandle) -> Arc<Vec<view::TreeEntry>> {
        let cached = self
            .trees
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(trace, handle.id.clone()))
            .cloned();
        cached.unwrap_or_else(|| self.tree_of(trace, handle))
    }

    fn handle(&self, trace: usize, ss_id: &str) -> Option<StateSystemHandle> {
        self.state_systems()
            .into_iter()
            .find(|(t, h)| *t == trace && h.id == ss_id)
            .map(|(_, h)| h)
    }

    /// Requested entries grouped by state system: (trace, ss) → [(server id, entry)].
    fn requested(&self, items: &[i64]) -> BTreeMap<Key2, Vec<(i64, view::TreeEntry)>> {
        let mut groups: BTreeMap<Key2, Vec<(i64, view::TreeEntry)>> = BTreeMap::new();
        for &id in items {
            let Some((t, ss_id, local)) = self.ids.key(id) else {
                continue;
            };
            let Some(h) = self.handle(t, &ss_id) else {
                continue;
            };
            if let Some(e) = self.cached_tree(t, &h).iter().find(|e| e.id == local) {
                groups.entry((t, ss_id)).or_default().push((id, e.clone()));
            }
        }
        groups
    }

    /// Style key of a value: the `definedValue` name whose value it is, else the value.
    fn style_key(&self, value: &StateValue) -> String {
        let text = value_text(value);
        self.view
            .styles
            .iter()
            .find(|(_, v, _)| *v == text)
            .map_or(text, |(name, _, _)| name.clone())
    }
}

/// (trace, state system id).
type Key2 = (usize, String);
/// A view's entries over one state system.
type ViewTree = Arc<Vec<view::TreeEntry>>;

impl OutputProvider for XmlView {
    fn descriptor(&self) -> &OutputDescriptor {
        &self.descriptor
    }

    fn style(&self) -> ProviderResult<StyleModel> {
        let mut m = StyleModel::default();
        for (name, _, color) in &self.view.styles {
            let mut values = vec![("style-name", json!(name))];
            if let Some(c) = color {
                values.push(("background-color", json!(c)));
            }
            m.insert(name.clone(), &Style::values(values));
        }
        Ok(GenericResponse::completed(m))
    }

    fn tree(&self, _query: &TreeQuery) -> ProviderResult<TreeModel> {
        let mut entries = Vec::new();
        let mut building = self.source.traces.iter().any(|t| t.is_analysing());
        for (t, h) in self.state_systems() {
            building |= h.range().2;
            let tree = self.tree_of(t, &h);
            for e in tree.iter() {
                let id = self.ids.id(&(t, h.id.clone(), e.id));
                let parent = e.parent.map_or(-1, |p| self.ids.id(&(t, h.id.clone(), p)));
                let mut entry = TreeEntry::new(id, parent, vec![e.name.clone()])
                    .span(e.start, e.end)
                    .has_data(e.display.is_some());
                if self.view.kind == ViewKind::Xy {
                    entry.is_default = Some(false);
                }
                entries.push(entry);
            }
        }
        Ok(GenericResponse::with_progress(
            TreeModel::named(entries, 1),
            building,
        ))
    }

    fn states(&self, query: &DataQuery) -> ProviderResult<StatesModel> {
        if self.view.kind != ViewKind::TimeGraph {
            return Err(crate::registry::ProviderError::Unsupported);
        }
        let items = query.items.as_deref().unwrap_or(&[]);
        let mut rows: HashMap<i64, TimeGraphRow> = HashMap::new();
        let mut complete = true;
        for ((t, ss_id), members) in self.requested(items) {
            let Some(h) = self.handle(t, &ss_id) else {
                continue;
            };
            let ss = h.read();
            complete &= sampled_complete(&ss, &query.times);
            let quarks: Vec<Quark> = members.iter().filter_map(|(_, e)| e.display).collect();
            let mut by_quark = sampled_intervals(&ss, &quarks, &query.times)?;
            let end = ss.current_end_time();
            for (id, e) in members {
                let states = e
                    .display
                    .and_then(|q| by_quark.remove(&q))
                    .unwrap_or_default()
                    .iter()
                    // Null intervals stay, without label or style (Trace Compass
                    // sends them with its "no value" marker).
                    .map(|i| match i.value {
                        StateValue::Null => interval_state(i, end, None, None),
                        _ => interval_state(
                            i,
                            end,
                            Some(value_text(&i.value).into()),
                            Some(Style::key(self.style_key(&i.value))),
                        ),
                    })
                    .collect();
                rows.insert(
                    id,
                    TimeGraphRow {
                        entry_id: id,
                        states,
                    },
                );
            }
        }
        let rows = items.iter().filter_map(|id| rows.remove(id)).collect();
        Ok(GenericResponse::with_progress(
            StatesModel { rows },
            !complete,
        ))
    }

    fn xy(&self, query: &DataQuery) -> ProviderResult<XyModel> {
        if self.view.kind != ViewKind::Xy {
            return Err(crate::registry::ProviderError::Unsupported);
        }
        let items = query.items.as_deref().unwrap_or(&[]);
        let mut series: HashMap<i64, XySeries> = HashMap::new();
        let mut complete = true;
        for ((t, ss_id), members) in self.requested(items) {
            let Some(h) = self.handle(t, &ss_id) else {
                continue;
            };
            let ss = h.read();
            complete &= sampled_complete(&ss, &query.times);
            for (id, e) in members {
                let y = view::series(&*ss, &e, &query.times);
                series.insert(
                    id,
                    XySeries {
                        series_id: id,
                        series_name: e.name.clone(),
                        x_values: query.times.clone(),
                        y_values: y.into_iter().map(crate::model::finite).collect(),
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
                title: self.view.label.clone(),
                series,
            },
            !complete,
        ))
    }
}
