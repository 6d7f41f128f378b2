//! Declarative views over one analysis' state system: a time graph whose rows
//! come from attribute path patterns (values → style keys through a table), and
//! an XY whose series come from the same patterns (y = the attribute's value at
//! each sample time, its rate, or a computed figure). The concrete views
//! (Disk I/O, VMs, OpenStack, QEMU, OvS) are tables in [`crate::analysis_views`].
//!
//! Like the kernel views, a view finds its state system by analysis id at each
//! request, so it answers (RUNNING, from what is built) while the analysis runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::json;
use sht::{AttributeTree, Quark, StateSystem, StateSystemQuerier, StateValue, ROOT_QUARK};

use crate::model::{
    finite, AxisDescription, GenericResponse, OutputDescriptor, OutputType, StatesModel, Style,
    StyleModel, TimeGraphRow, TreeEntry, TreeModel, XyModel, XySeries,
};
use crate::query::{DataQuery, TooltipQuery, TreeQuery};
use crate::registry::{
    ExperimentSource, OutputFactory, OutputProvider, ProviderError, ProviderResult,
    StateSystemHandle,
};
use crate::ssquery::{
    interval_state, sampled_complete, sampled_intervals, sampled_rows, sorted_children, IdMap,
};
use crate::states_cache::{
    next_view_id, states_model, states_rows, RowAssembly, RowCache, RowOut, StatesAnswer,
};
use crate::values::{numeric, value_text};

/// One step of an attribute path pattern.
#[derive(Clone, Copy, Debug)]
pub enum Seg {
    /// Go to this child; no entry.
    Lit(&'static str),
    /// Go to this child and make it an entry with this label.
    Group(&'static str, &'static str),
    /// Every child, each an entry labelled prefix + attribute name.
    Each(&'static str),
    /// Every child, labelled prefix + its string value at the end (else its name).
    EachValue(&'static str),
    /// Every child, grouped by the text of its name before the first `.` (an
    /// entry per group), each an entry labelled with the rest of its name.
    EachByPrefix,
    /// (XY only, last) a series entry with this label for the attribute reached.
    Series(&'static str),
}

/// Rows (or series) of a view: the attribute reached by the whole pattern is
/// the data of the last entry the pattern made. `class` tells the style
/// function (or the XY computation) which pattern a row came from.
#[derive(Clone, Copy, Debug)]
pub struct RowPattern {
    pub segs: &'static [Seg],
    pub class: u8,
}

/// A state style: key, label, RGB colour, height factor.
#[derive(Clone, Copy, Debug)]
pub struct StyleDef {
    pub key: &'static str,
    pub label: &'static str,
    pub rgb: (u8, u8, u8),
    pub height: f64,
}

/// What a view is: descriptor, analysis, rows.
pub struct ViewDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// Analysis (state system) id.
    pub analysis: &'static str,
    /// Trace domains the analysis may run on (to list the view while a trace's
    /// analyses are still running): `kernel`, `ust`; traces with no domain
    /// (XML stubs) match every view.
    pub domains: &'static [&'static str],
    pub rows: &'static [RowPattern],
    /// A pattern some attribute must match for the view to apply (when the
    /// rows alone would match attributes an analysis writes for any trace);
    /// empty: any row pattern.
    pub required: &'static [Seg],
    pub kind: ViewKind,
}

/// y values of one series (class, state system, attribute) at `times`.
pub type SeriesFn = fn(u8, &StateSystem, Quark, &[i64]) -> sht::Result<Vec<f64>>;

/// Time graph or XY specifics.
pub enum ViewKind {
    TimeGraph {
        /// Style tables (a view may combine several, e.g. services and VM states).
        styles: &'static [&'static [StyleDef]],
        /// Style key of a row's value (None: no state drawn, e.g. null).
        style_of: fn(class: u8, &StateValue) -> Option<&'static str>,
        /// Whether states carry their style's label.
        labels: bool,
        /// Attributes relative to a row's entry shown in its tooltip: (name, key).
        tooltip: &'static [(&'static str, &'static str)],
    },
    Xy {
        y_label: &'static str,
        y_unit: &'static str,
        /// y values of one series at `times` (same length).
        compute: SeriesFn,
    },
}

/// Makes the outputs of a list of views, each for experiments that have (or
/// may get) its analysis' state system.
pub struct StateViewsFactory {
    pub views: &'static [ViewDef],
}

/// Whether some attribute matches the whole pattern below `quark`.
fn matches(tree: &AttributeTree, quark: Quark, segs: &[Seg]) -> bool {
    let Some((seg, rest)) = segs.split_first() else {
        return true;
    };
    match seg {
        Seg::Lit(name) | Seg::Group(name, _) => {
            let q = tree.opt_quark(quark, &[*name]);
            q >= 0 && matches(tree, q, rest)
        }
        Seg::Each(_) | Seg::EachValue(_) | Seg::EachByPrefix => tree
            .children_of(quark)
            .iter()
            .any(|&c| matches(tree, c, rest)),
        Seg::Series(_) => matches(tree, quark, rest),
    }
}

/// Whether the view applies: some trace has the analysis' state system with a
/// row to show (an analysis that found nothing to model, e.g. the VM analyses
/// on a trace without VMs, gives no view), or is still building it, or is
/// still analysing and of a domain the analysis runs on.
fn may_have(source: &ExperimentSource, view: &ViewDef) -> bool {
    source.traces.iter().enumerate().any(|(i, t)| {
        source.trace_state_systems(i).iter().any(|s| {
            s.id == view.analysis && {
                let ss = s.read();
                ss.is_building()
                    || if view.required.is_empty() {
                        view.rows
                            .iter()
                            .any(|r| matches(ss.attributes(), ROOT_QUARK, r.segs))
                    } else {
                        matches(ss.attributes(), ROOT_QUARK, view.required)
                    }
            }
        }) || (t.is_analysing()
            && match t.properties.get("domain") {
                None => true,
                Some(d) => d.is_empty() || view.domains.contains(&d.as_str()),
            })
    })
}

impl OutputFactory for StateViewsFactory {
    fn create(&self, experiment: &ExperimentSource) -> Vec<Arc<dyn OutputProvider>> {
        self.views
            .iter()
            .filter(|v| may_have(experiment, v))
            .map(|v| Arc::new(StateView::new(v, experiment.clone())) as Arc<dyn OutputProvider>)
            .collect()
    }
}

/// Entry key: (trace, attribute, pattern index for series entries / u16::MAX).
type Key = (usize, Quark, u16);
const SHARED: u16 = u16::MAX;
/// A prefix group of [`Seg::EachByPrefix`], keyed by its first member.
const PREFIX_GROUP: u16 = u16::MAX - 1;

/// What a data entry reads: (trace, attribute, class, entry attribute, name).
#[derive(Clone, Debug)]
struct Row {
    trace: usize,
    display: Quark,
    class: u8,
    entry: Quark,
    /// Labels from the trace down to the entry, `/`-joined (series names).
    name: String,
}

pub struct StateView {
    def: &'static ViewDef,
    descriptor: OutputDescriptor,
    source: ExperimentSource,
    ids: IdMap<Key>,
    rows: Mutex<HashMap<i64, Row>>,
    /// This view's key in the shared row cache.
    uid: u64,
}

fn string_at_end(ss: &StateSystem, q: Quark) -> Option<String> {
    match ss.query_single(ss.current_end_time(), q).ok()?.value {
        StateValue::String(s) => Some(s.to_string()),
        _ => None,
    }
}

/// Walks one pattern from `quark`, adding entries below `parent`.
struct Walk<'a> {
    view: &'a StateView,
    ss: &'a StateSystem,
    trace: usize,
    pattern: u16,
    class: u8,
    span: (i64, i64),
    entries: &'a mut Vec<TreeEntry>,
    seen: &'a mut HashSet<i64>,
    rows: &'a mut HashMap<i64, Row>,
}

impl Walk<'_> {
    fn entry(&mut self, key: Key, parent: i64, label: String) -> i64 {
        let id = self.view.ids.id(&key);
        if self.seen.insert(id) {
            self.entries
                .push(TreeEntry::new(id, parent, vec![label]).span(self.span.0, self.span.1));
        }
        id
    }

    fn go(
        &mut self,
        tree: &AttributeTree,
        quark: Quark,
        segs: &[Seg],
        parent: (i64, Quark),
        name: &str,
    ) {
        let Some((seg, rest)) = segs.split_first() else {
            if parent.1 != ROOT_QUARK || quark != ROOT_QUARK {
                self.rows.insert(
                    parent.0,
                    Row {
                        trace: self.trace,
                        display: quark,
                        class: self.class,
                        entry: parent.1,
                        name: name.to_string(),
                    },
                );
            }
            return;
        };
        match *seg {
            Seg::Lit(lit) => {
                let q = tree.opt_quark(quark, &[lit]);
                if q >= 0 {
                    self.go(tree, q, rest, parent, name);
                }
            }
            Seg::Group(lit, label) => {
                let q = tree.opt_quark(quark, &[lit]);
                if q >= 0 {
                    let id = self.entry((self.trace, q, SHARED), parent.0, label.into());
                    self.go(tree, q, rest, (id, q), &format!("{name}/{label}"));
                }
            }
            Seg::Each(prefix) | Seg::EachValue(prefix) => {
                for c in sorted_children(tree, quark) {
                    let attr = tree.name(c).unwrap_or("");
                    let shown = match seg {
                        Seg::EachValue(_) => {
                            string_at_end(self.ss, c).unwrap_or_else(|| attr.to_string())
                        }
                        _ => attr.to_string(),
                    };
                    let label = format!("{prefix}{shown}");
                    let id = self.entry((self.trace, c, SHARED), parent.0, label.clone());
                    self.go(tree, c, rest, (id, c), &format!("{name}/{label}"));
                }
            }
            Seg::EachByPrefix => {
                let mut groups: Vec<(String, Vec<(Quark, String)>)> = Vec::new();
                for c in sorted_children(tree, quark) {
                    let attr = tree.name(c).unwrap_or("");
                    let (group, rest) = attr.split_once('.').unwrap_or((attr, attr));
                    match groups.iter_mut().find(|(g, _)| g == group) {
                        Some((_, members)) => members.push((c, rest.to_string())),
                        None => groups.push((group.to_string(), vec![(c, rest.to_string())])),
                    }
                }
                for (group, members) in groups {
                    let key = (self.trace, members[0].0, PREFIX_GROUP);
                    let gid = self.entry(key, parent.0, group.clone());
                    for (c, label) in members {
                        let id = self.entry((self.trace, c, SHARED), gid, label.clone());
                        self.go(tree, c, rest, (id, c), &format!("{name}/{group}/{label}"));
                    }
                }
            }
            Seg::Series(label) => {
                let id = self.entry((self.trace, quark, self.pattern), parent.0, label.into());
                self.go(tree, quark, rest, (id, quark), &format!("{name}/{label}"));
            }
        }
    }
}

impl StateView {
    fn new(def: &'static ViewDef, source: ExperimentSource) -> Self {
        let output_type = match def.kind {
            ViewKind::TimeGraph { .. } => OutputType::TimeGraph,
            ViewKind::Xy { .. } => OutputType::TreeTimeXy,
        };
        StateView {
            def,
            descriptor: OutputDescriptor {
                id: def.id.into(),
                name: def.name.into(),
                description: def.description.into(),
                output_type,
            },
            source,
            ids: IdMap::default(),
            rows: Mutex::new(HashMap::new()),
            uid: next_view_id(),
        }
    }

    fn handle(&self, trace: usize) -> Option<StateSystemHandle> {
        // A trace's own run of an experiment analysis is hidden when the
        // experiment runs it over all its traces (Trace Compass runs those per
        // experiment only).
        self.source
            .trace_state_systems(trace)
            .into_iter()
            .find(|s| s.id == self.def.analysis)
    }

    /// The entries (and data rows, remembered for later requests).
    fn build_tree(&self) -> (Vec<TreeEntry>, bool) {
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        let mut rows = HashMap::new();
        let mut building = false;
        for (ti, trace) in self.source.traces.iter().enumerate() {
            building |= trace.is_analysing();
            let Some(h) = self.handle(ti) else { continue };
            let ss = h.read();
            building |= ss.is_building();
            let span = (ss.start_time(), ss.current_end_time());
            let root = self.ids.id(&(ti, ROOT_QUARK, SHARED));
            seen.insert(root);
            entries.push(TreeEntry::new(root, -1, vec![trace.name.clone()]).span(span.0, span.1));
            for (pi, pattern) in self.def.rows.iter().enumerate() {
                let mut walk = Walk {
                    view: self,
                    ss: &ss,
                    trace: ti,
                    pattern: pi as u16,
                    class: pattern.class,
                    span,
                    entries: &mut entries,
                    seen: &mut seen,
                    rows: &mut rows,
                };
                walk.go(
                    ss.attributes(),
                    ROOT_QUARK,
                    pattern.segs,
                    (root, ROOT_QUARK),
                    &trace.name,
                );
            }
        }
        for e in &mut entries {
            e.has_data = rows.contains_key(&e.id);
            if matches!(self.def.kind, ViewKind::Xy { .. }) {
                e.is_default = Some(e.has_data);
            }
        }
        *self.rows.lock().unwrap_or_else(|e| e.into_inner()) = rows;
        (entries, building)
    }

    /// The data rows of `items` (building the tree first if never asked).
    fn rows_of(&self, items: &[i64]) -> Vec<(i64, Row)> {
        let empty = self
            .rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if empty {
            self.build_tree();
        }
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        items
            .iter()
            .filter_map(|id| rows.get(id).map(|r| (*id, r.clone())))
            .collect()
    }
}

pub(crate) fn rgb_hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

impl StateView {
    /// The time-graph rows of `query.items` (in that order) and whether the
    /// answer is final. With a cache, rows of finished state systems are looked
    /// up first; the others come from one 2D query per trace and are kept.
    fn time_graph_rows(
        &self,
        query: &DataQuery,
        cache: Option<&RowCache>,
    ) -> Result<(Vec<RowOut>, bool), ProviderError> {
        let ViewKind::TimeGraph {
            styles,
            style_of,
            labels,
            ..
        } = &self.def.kind
        else {
            return Err(ProviderError::Unsupported);
        };
        let items = query.items.as_deref().unwrap_or(&[]);
        let mut by_trace: BTreeMap<usize, Vec<(i64, Row)>> = BTreeMap::new();
        for (id, row) in self.rows_of(items) {
            by_trace.entry(row.trace).or_default().push((id, row));
        }
        let label_of = |key: &str| -> Option<&'static str> {
            styles
                .iter()
                .copied()
                .flatten()
                .find(|s| s.key == key)
                .map(|s| s.label)
        };
        let mut assembly = RowAssembly::new(cache, self.uid);
        let mut complete = true;
        for (t, members) in by_trace {
            let Some(h) = self.handle(t) else { continue };
            let ss = h.read();
            complete &= sampled_complete(&ss, &query.times);
            let building = ss.is_building();
            let weak = Arc::downgrade(&h.ss);
            let members = assembly.take_cached(&weak, building, &query.times, members, |m| m.0);
            if members.is_empty() {
                continue;
            }
            let quarks: Vec<Quark> = members.iter().map(|(_, r)| r.display).collect();
            let by_quark = sampled_rows(&h, &ss, &quarks, &query.times)?;
            let end = ss.current_end_time();
            let built = members
                .into_iter()
                .map(|(id, row)| {
                    let states = by_quark
                        .get(&row.display)
                        .map_or(&[][..], Vec::as_slice)
                        .iter()
                        .filter_map(|i| {
                            let key = style_of(row.class, &i.value)?;
                            let label = labels.then(|| label_of(key).unwrap_or(key).into());
                            Some(interval_state(i, end, label, Some(Style::key(key))))
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

impl OutputProvider for StateView {
    fn descriptor(&self) -> &OutputDescriptor {
        &self.descriptor
    }

    fn style(&self) -> ProviderResult<StyleModel> {
        let mut m = StyleModel::default();
        if let ViewKind::TimeGraph { styles, .. } = &self.def.kind {
            for s in styles.iter().copied().flatten() {
                m.insert(
                    s.key,
                    &Style::values([
                        ("style-name", json!(s.label)),
                        ("background-color", json!(rgb_hex(s.rgb))),
                        ("height", json!(s.height)),
                    ]),
                );
            }
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
        let (rows, complete) = self.time_graph_rows(query, None)?;
        Ok(states_model(rows, complete))
    }

    fn states_answer(&self, query: &DataQuery) -> ProviderResult<StatesAnswer> {
        let (rows, complete) = self.time_graph_rows(query, Some(RowCache::global()))?;
        Ok(states_rows(rows, complete))
    }

    fn tooltip(&self, query: &TooltipQuery) -> ProviderResult<BTreeMap<String, String>> {
        let mut map = BTreeMap::new();
        let ViewKind::TimeGraph {
            styles,
            style_of,
            tooltip,
            ..
        } = &self.def.kind
        else {
            return Ok(GenericResponse::completed(map));
        };
        let Some((_, row)) = query
            .items
            .first()
            .and_then(|&id| self.rows_of(&[id]).into_iter().next())
        else {
            return Ok(GenericResponse::completed(map));
        };
        let Some(h) = self.handle(row.trace) else {
            return Ok(GenericResponse::completed(map));
        };
        let ss = h.read();
        if let Ok(i) = ss.query_single(query.time, row.display) {
            if let Some(key) = style_of(row.class, &i.value) {
                let label = styles
                    .iter()
                    .copied()
                    .flatten()
                    .find(|s| s.key == key)
                    .map_or(key, |s| s.label);
                map.insert("State".into(), label.into());
                map.insert("Value".into(), value_text(&i.value));
            }
        }
        for (name, key) in *tooltip {
            let q = ss.attributes().opt_quark(row.entry, &[*name]);
            if q < 0 {
                continue;
            }
            if let Ok(i) = ss.query_single(query.time, q) {
                if !i.value.is_null() {
                    map.insert((*key).into(), value_text(&i.value));
                }
            }
        }
        Ok(GenericResponse::completed(map))
    }

    fn xy(&self, query: &DataQuery) -> ProviderResult<XyModel> {
        let ViewKind::Xy {
            y_label,
            y_unit,
            compute,
        } = &self.def.kind
        else {
            return Err(crate::registry::ProviderError::Unsupported);
        };
        let items = query.items.as_deref().unwrap_or(&[]);
        let mut series = Vec::new();
        let mut complete = true;
        for (id, row) in self.rows_of(items) {
            let Some(h) = self.handle(row.trace) else {
                continue;
            };
            let ss = h.read();
            complete &= sampled_complete(&ss, &query.times);
            let y = compute(row.class, &ss, row.display, &query.times)?;
            series.push(XySeries {
                series_id: id,
                series_name: row.name.clone(),
                x_values: query.times.clone(),
                y_values: y.into_iter().map(finite).collect(),
                style: Style::values([("series-type", json!("line"))]),
                x_values_description: AxisDescription {
                    label: "Time".into(),
                    unit: "ns".into(),
                    data_type: "TIMESTAMP".into(),
                },
                y_values_description: AxisDescription {
                    label: (*y_label).into(),
                    unit: (*y_unit).into(),
                    data_type: "NUMBER".into(),
                },
            });
        }
        Ok(GenericResponse::with_progress(
            XyModel {
                title: self.def.name.into(),
                series,
            },
            !complete,
        ))
    }
}

// ---- XY computations shared by views ----

/// The numeric value of `quark` at each time (0 where null or outside).
pub fn values_at(ss: &StateSystem, quark: Quark, times: &[i64]) -> sht::Result<Vec<f64>> {
    let by_quark = sampled_intervals(ss, &[quark], times)?;
    let intervals = by_quark.get(&quark).map_or(&[][..], Vec::as_slice);
    let mut k = 0;
    Ok(times
        .iter()
        .map(|&t| {
            while k < intervals.len() && intervals[k].end < t {
                k += 1;
            }
            intervals
                .get(k)
                .filter(|i| i.contains(t))
                .and_then(|i| numeric(&i.value))
                .unwrap_or(0.0)
        })
        .collect())
}
