//! `timeGraphView` and `xyView` definitions, compiled into descriptions a server
//! can serve. Views are compiled with an empty context: no definedValue
//! substitution, locations or mapping groups (as in Trace Compass).

use std::path::Path;

use crate::dom::Element;
use crate::XmlError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewKind {
    TimeGraph,
    Xy,
}

/// One element of a `display`/`name`/`id`/`parent` path, relative to the entry.
#[derive(Clone, Debug, PartialEq)]
pub enum ViewAttr {
    Constant(String),
    /// Absolute path whose current value names the next level.
    Query(Vec<ViewAttr>),
    SelfAttr,
    /// `location` and other kinds do not work in views: the element resolves to nothing.
    Unresolvable,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EntryDef {
    /// Regex per level, `*` replaced by `(.*)`.
    pub path: Vec<String>,
    pub analysis_id: Option<String>,
    pub display: Option<Vec<ViewAttr>>,
    pub id: Option<Vec<ViewAttr>>,
    pub parent: Option<Vec<ViewAttr>>,
    pub name: Option<Vec<ViewAttr>>,
    pub display_text: bool,
    /// XY: `delta` (case-insensitive) vs anything else = absolute.
    pub delta: bool,
    pub children: Vec<EntryDef>,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ViewDef {
    pub id: String,
    pub kind: ViewKind,
    pub label: String,
    /// Analyses feeding the view; empty = every analysis of the trace.
    pub analyses: Vec<String>,
    /// (display name, value, colour) from `definedValue`.
    pub styles: Vec<(String, String, Option<String>)>,
    pub entries: Vec<EntryDef>,
    pub line: u32,
}

fn view_path(el: &Element) -> Vec<ViewAttr> {
    el.children_named("stateAttribute")
        .map(|a| match a.attr("type").unwrap_or("") {
            "constant" => ViewAttr::Constant(a.attr("value").unwrap_or("").to_string()),
            "query" => ViewAttr::Query(view_path(a)),
            "self" => ViewAttr::SelfAttr,
            _ => ViewAttr::Unresolvable,
        })
        .collect()
}

/// `display`, `name`... hold one viewStateAttribute: a `type` on the element itself.
fn view_element(el: &Element) -> Vec<ViewAttr> {
    match el.attr("type").unwrap_or("") {
        "constant" => vec![ViewAttr::Constant(
            el.attr("value").unwrap_or("").to_string(),
        )],
        "query" => vec![ViewAttr::Query(view_path(el))],
        "self" => vec![ViewAttr::SelfAttr],
        _ => vec![ViewAttr::Unresolvable],
    }
}

fn entry(el: &Element) -> EntryDef {
    let path = el.attr("path").unwrap_or("");
    let path = if path.is_empty() { "*" } else { path };
    EntryDef {
        path: path.split('/').map(|p| p.replace('*', "(.*)")).collect(),
        analysis_id: el.attr("analysisId").map(str::to_string),
        display: el.child("display").map(view_element),
        id: el.child("id").map(view_element),
        parent: el.child("parent").map(view_element),
        name: el.child("name").map(view_element),
        display_text: el
            .attr("displayText")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        delta: el
            .attr("displayType")
            .is_some_and(|v| v.eq_ignore_ascii_case("delta")),
        children: el.children_named("entry").map(entry).collect(),
        line: el.line,
    }
}

/// The views Trace Compass lists for a document: every `timeGraphView`, then every
/// `xyView` (each in document order); the listing stops altogether at the first
/// view without exactly one `head` (Trace Compass returns there).
pub fn compile_views(root: &Element, _file: &Path) -> Result<Vec<ViewDef>, XmlError> {
    let mut out = Vec::new();
    for (tag, kind) in [
        ("timeGraphView", ViewKind::TimeGraph),
        ("xyView", ViewKind::Xy),
    ] {
        let mut found = Vec::new();
        root.descendants_named(tag, &mut found);
        for el in found {
            if el.children_named("head").count() != 1 {
                return Ok(out);
            }
            out.push(view(el, kind));
        }
    }
    Ok(out)
}

fn view(el: &Element, kind: ViewKind) -> ViewDef {
    let id = el.attr("id").unwrap_or("").to_string();
    let head = el.child("head");
    // The first label's value (empty if it has none); the id without a label.
    let label = match head.and_then(|h| h.child("label")) {
        Some(l) => l.attr("value").unwrap_or("").to_string(),
        None => id.clone(),
    };
    let analyses = head
        .map(|h| {
            h.children_named("analysis")
                .filter_map(|a| a.attr("id").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let styles = el
        .children_named("definedValue")
        .map(|d| {
            (
                d.attr("name").unwrap_or("").to_string(),
                d.attr("value").unwrap_or("").to_string(),
                d.attr("color").map(str::to_string),
            )
        })
        .collect();
    ViewDef {
        id,
        kind,
        label,
        analyses,
        styles,
        entries: el.children_named("entry").map(entry).collect(),
        line: el.line,
    }
}

// ----- data: what the time-graph and XY data providers return -----

use regex::Regex;
use sht::{Quark, StateSystemQuerier, StateValue, ROOT_QUARK};

/// One entry of a view's tree. Ids are allocated in creation order (depth-first).
#[derive(Clone, Debug, PartialEq)]
pub struct TreeEntry {
    pub id: usize,
    pub parent: Option<usize>,
    pub name: String,
    pub start: i64,
    pub end: i64,
    /// Attribute whose intervals are drawn (none for the root and data-less entries).
    pub display: Option<Quark>,
    /// XY: `delta` series.
    pub delta: bool,
}

/// A time-graph state: (start, duration, value, label), as Trace Compass's data provider.
pub type RowState = (i64, i64, i32, Option<String>);

fn lookup(ss: &dyn StateSystemQuerier, base: Quark, path: &[ViewAttr]) -> Option<Quark> {
    let mut q = base;
    for a in path {
        match a {
            ViewAttr::Constant(c) => {
                let c = ss.attributes().opt_quark(q, &[c.as_str()]);
                if c < 0 {
                    return None;
                }
                q = c;
            }
            ViewAttr::Query(p) => {
                let target = lookup(ss, ROOT_QUARK, p)?;
                let t = ss.current_end_time();
                let v = ss.query_single(t, target).ok()?.value;
                if v.is_null() {
                    return None;
                }
                let name = crate::runtime::java_string(&v);
                let c = ss.attributes().opt_quark(q, &[name.as_str()]);
                if c < 0 {
                    return None;
                }
                q = c;
            }
            ViewAttr::SelfAttr => {}
            ViewAttr::Unresolvable => return None,
        }
    }
    Some(q)
}

/// First non-null value of `q`, as a string.
fn first_value(ss: &dyn StateSystemQuerier, q: Quark) -> Option<String> {
    let mut t = ss.start_time();
    while t <= ss.current_end_time() {
        let i = ss.query_single(t, q).ok()?;
        if !i.value.is_null() {
            return Some(crate::runtime::java_string(&i.value));
        }
        t = i.end.checked_add(1)?;
    }
    None
}

/// Entry range: without a leading and a trailing null interval of its own attribute.
fn entry_range(ss: &dyn StateSystemQuerier, q: Quark) -> (i64, i64) {
    let (s, e) = (ss.start_time(), ss.current_end_time());
    if q == ROOT_QUARK {
        return (s, e);
    }
    let (mut start, mut end) = (s, e);
    if let Ok(i) = ss.query_single(s, q) {
        if i.value.is_null() && i.end < e {
            start = i.end + 1;
        }
    }
    if let Ok(i) = ss.query_single(e, q) {
        if i.value.is_null() && i.start > s {
            end = i.start;
        }
    }
    (start, end)
}

struct TreeBuilder<'a> {
    ss: &'a dyn StateSystemQuerier,
    out: Vec<TreeEntry>,
}

impl TreeBuilder<'_> {
    fn expand(&mut self, def: &EntryDef, base: Quark, parent: usize) {
        let mut level = vec![base];
        for seg in &def.path {
            let Ok(re) = Regex::new(&format!("^(?:{seg})$")) else {
                return;
            };
            level = level
                .iter()
                .flat_map(|&q| self.ss.attributes().children_of(q).to_vec())
                .filter(|&c| self.ss.attributes().name(c).is_ok_and(|n| re.is_match(n)))
                .collect();
        }
        // (entry index, id, parent id) of this level, for `parent` links below.
        let mut links: Vec<(usize, String, Option<String>)> = Vec::new();
        for q in level {
            let display = match &def.display {
                Some(d) => match lookup(self.ss, q, d) {
                    Some(dq) => Some(dq),
                    None => continue, // a display that does not resolve hides the subtree
                },
                None => None,
            };
            let name = def
                .name
                .as_ref()
                .and_then(|n| lookup(self.ss, q, n))
                .and_then(|nq| first_value(self.ss, nq))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| self.ss.attributes().name(q).unwrap_or("").to_string());
            let (start, end) = entry_range(self.ss, q);
            let value_of = |p: &Option<Vec<ViewAttr>>| {
                p.as_ref()
                    .and_then(|p| lookup(self.ss, q, p))
                    .and_then(|pq| first_value(self.ss, pq))
                    .filter(|v| !v.is_empty())
            };
            links.push((
                self.out.len(),
                value_of(&def.id).unwrap_or_else(|| name.clone()),
                value_of(&def.parent),
            ));
            let id = self.out.len();
            self.out.push(TreeEntry {
                id,
                parent: Some(parent),
                name,
                start,
                end,
                display,
                delta: def.delta,
            });
            for c in &def.children {
                self.expand(c, q, id);
            }
        }
        // An entry whose `parent` names the `id` of an entry of the same level, with
        // overlapping time ranges, goes under it.
        for (index, _, parent) in &links {
            let Some(parent) = parent else { continue };
            let me = &self.out[*index];
            let found = links.iter().find(|(other, id, _)| {
                let o = &self.out[*other];
                other != index && id == parent && o.start <= me.end && me.start <= o.end
            });
            if let Some((other, _, _)) = found {
                let other = *other;
                self.out[*index].parent = Some(other);
            }
        }
    }
}

/// The tree of a view over one state system: the trace-name root, then the entries.
pub fn tree(view: &ViewDef, ss: &dyn StateSystemQuerier, trace_name: &str) -> Vec<TreeEntry> {
    let mut b = TreeBuilder {
        ss,
        out: vec![TreeEntry {
            id: 0,
            parent: None,
            name: trace_name.to_string(),
            start: ss.start_time(),
            end: ss.current_end_time(),
            display: None,
            delta: false,
        }],
    };
    for e in &view.entries {
        b.expand(e, ROOT_QUARK, 0);
    }
    b.out
}

/// Time-graph states of an entry's display attribute over `[from, to]`.
pub fn row(ss: &dyn StateSystemQuerier, display: Quark, from: i64, to: i64) -> Vec<RowState> {
    let end = ss.current_end_time();
    let mut out = Vec::new();
    let mut t = from.max(ss.start_time());
    while t <= to.min(end) {
        let Ok(i) = ss.query_single(t, display) else {
            break;
        };
        let duration = end.min(i.end.saturating_add(1)) - i.start;
        let (value, label) = match &i.value {
            StateValue::Int(v) => (*v, Some(v.to_string())),
            StateValue::Long(v) => (*v as i32, Some(format!("0x{v:x}"))),
            StateValue::Double(d) => (*d as i32, None),
            StateValue::String(s) => (i32::MIN, Some(s.to_string())),
            _ => (i32::MIN, None),
        };
        out.push((i.start, duration, value, label));
        let Some(next) = i.end.checked_add(1) else {
            break;
        };
        t = next;
    }
    out
}

/// XY values of an entry at `times` (0 where null or after the history end).
pub fn series(ss: &dyn StateSystemQuerier, entry: &TreeEntry, times: &[i64]) -> Vec<f64> {
    let Some(q) = entry.display else {
        return vec![0.0; times.len()];
    };
    let mut y: Vec<f64> = Vec::with_capacity(times.len());
    for &t in times {
        if t > ss.current_end_time() {
            break;
        }
        let v = if t < ss.start_time() {
            0.0
        } else {
            match ss.query_single(t, q).map(|i| i.value) {
                Ok(StateValue::Int(v)) => f64::from(v),
                Ok(StateValue::Long(v)) => v as f64,
                Ok(StateValue::Double(v)) => v,
                Ok(StateValue::String(s)) => s.trim().parse().unwrap_or(0.0),
                _ => 0.0,
            }
        };
        y.push(v);
    }
    y.resize(times.len(), 0.0);
    if entry.delta && y.len() > 1 {
        let abs = y.clone();
        for i in 1..y.len() {
            y[i] = abs[i] - abs[i - 1];
        }
        y[0] = y[1];
    }
    y
}
