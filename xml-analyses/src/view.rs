//! `timeGraphView` and `xyView` definitions, compiled into descriptions a server
//! can serve. Views are compiled with an empty context: no definedValue
//! substitution, locations or mapping groups (as in Trace Compass).
//!
//! [`tree`] / [`tree_with_analyses`] expand the entry definitions over state
//! systems as Trace Compass's data-driven output entries do: `$n` in an entry path
//! is resolved from the ancestors' wildcard captures on the parent attribute's
//! path, and `analysisId` switches an entry and its sub-entries to another
//! analysis' state system (from its root). [`row`] and [`series`] give the data.

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
    /// The `path` attribute as written (empty = `*`): `$1`-style references in it
    /// are replaced when the tree is built, from the ancestors' matches.
    pub raw_path: String,
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
        raw_path: path.to_string(),
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
    /// The analysis whose state system holds `display` (an `analysisId` on this entry
    /// or an ancestor); `None` = the state system the tree was built on.
    pub analysis_id: Option<String>,
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

/// Entry range, as Trace Compass's data-driven entries compute it: without a
/// display attribute, the whole state system; with one, from the start of its
/// first non-null interval to one past the end of its last non-null interval
/// (searched back from `current end - 1`), capped at the current end.
fn entry_range(ss: &dyn StateSystemQuerier, display: Option<Quark>) -> (i64, i64) {
    let (s, e) = (ss.start_time(), ss.current_end_time());
    let Some(q) = display else {
        return (s, e);
    };
    let mut start = s;
    if let Ok(mut i) = ss.query_single(s, q) {
        while i.value.is_null() {
            let t = i.end.saturating_add(1);
            match ss.query_single(t, q) {
                Ok(next) if t <= e => i = next,
                _ => break,
            }
        }
        start = i.start;
    }
    let mut end = e;
    if let Ok(mut i) = ss.query_single(e.saturating_sub(1).max(s), q) {
        while i.value.is_null() {
            let t = i.start.saturating_sub(1);
            match ss.query_single(t, q) {
                Ok(prev) if t >= s => i = prev,
                _ => break,
            }
        }
        end = e.min(i.end.saturating_add(1));
    }
    (start, end)
}

/// Java `Matcher.find` then `replaceFirst` (the path as written if there is no
/// match): the first match of `re` in `text` is replaced by
/// `template`, where `$n` is group n (empty if it did not take part) and `\x` is a
/// literal x; `None` where Java throws (a reference to a group the regex lacks, a
/// `$` not followed by a digit, a trailing `\`).
fn java_replace_first(re: &Regex, text: &str, template: &str) -> Option<String> {
    let Some(caps) = re.captures(text) else {
        // No match: Trace Compass keeps the path as written.
        return Some(template.to_string());
    };
    let whole = caps.get(0)?;
    let mut out = String::from(&text[..whole.start()]);
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '$' => {
                let mut group = chars.next()?.to_digit(10)? as usize;
                if group >= caps.len() {
                    return None;
                }
                // Java takes further digits while the number stays a valid group.
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    let longer = group * 10 + d as usize;
                    if longer >= caps.len() {
                        break;
                    }
                    group = longer;
                    chars.next();
                }
                out.push_str(caps.get(group).map_or("", |m| m.as_str()));
            }
            c => out.push(c),
        }
    }
    out.push_str(&text[whole.end()..]);
    Some(out)
}

/// Full attribute path of `q` (`a/b/c`), as Trace Compass's `getFullAttributePath`.
fn full_path(ss: &dyn StateSystemQuerier, mut q: Quark) -> String {
    let mut parts = Vec::new();
    while q != ROOT_QUARK && q >= 0 {
        parts.push(ss.attributes().name(q).unwrap_or("").to_string());
        q = ss.attributes().parent(q).unwrap_or(ROOT_QUARK);
    }
    parts.reverse();
    parts.join("/")
}

/// State systems of other analyses, by analysis id, for entries with `analysisId`.
pub type AnalysisLookup<'a> = dyn Fn(&str) -> Option<&'a dyn StateSystemQuerier> + 'a;

struct TreeBuilder<'a> {
    lookup_analysis: &'a AnalysisLookup<'a>,
    out: Vec<TreeEntry>,
}

/// Where an entry definition is expanded: the state system, the parent entry's
/// attribute there, the ancestors' concatenated path regex, and which analysis.
#[derive(Clone)]
struct Scope<'a> {
    ss: &'a dyn StateSystemQuerier,
    base: Quark,
    prev_regex: String,
    analysis_id: Option<String>,
}

impl<'a> TreeBuilder<'a> {
    fn expand(&mut self, def: &EntryDef, parent_scope: &Scope<'a>, parent: usize) {
        // An `analysisId` switches to that analysis' state system, from its root.
        let mut scope = parent_scope.clone();
        if let Some(id) = &def.analysis_id {
            let Some(other) = (self.lookup_analysis)(id) else {
                return;
            };
            scope.ss = other;
            scope.base = ROOT_QUARK;
            scope.analysis_id = Some(id.clone());
        }
        // `$n` in the path: the ancestors' regex is applied to the parent attribute's
        // full path (in the parent's state system; empty for quark 0 and the root, as
        // Trace Compass tests `quark > 0`) and its first match replaced by this path.
        let Ok(prev) = Regex::new(&parent_scope.prev_regex) else {
            return;
        };
        let parent_path = if parent_scope.base > 0 {
            full_path(parent_scope.ss, parent_scope.base)
        } else {
            String::new()
        };
        let Some(path) = java_replace_first(&prev, &parent_path, &def.raw_path) else {
            // Trace Compass's provider throws here; show nothing for this entry.
            return;
        };
        let regex_name = path.replace('*', "(.*)");
        let child_regex = if parent_scope.prev_regex.is_empty() {
            regex_name.clone()
        } else {
            format!("{}/{regex_name}", parent_scope.prev_regex)
        };
        let ss = scope.ss;
        let mut level = vec![scope.base];
        for seg in regex_name.split('/') {
            let Ok(re) = Regex::new(&format!("^(?:{seg})$")) else {
                return;
            };
            level = level
                .iter()
                .flat_map(|&q| ss.attributes().children_of(q).to_vec())
                .filter(|&c| ss.attributes().name(c).is_ok_and(|n| re.is_match(n)))
                .collect();
        }
        // (entry index, id, parent id) of this level, for `parent` links below.
        let mut links: Vec<(usize, String, Option<String>)> = Vec::new();
        for q in level {
            let display = match &def.display {
                Some(d) => match lookup(ss, q, d) {
                    Some(dq) => Some(dq),
                    None => continue, // a display that does not resolve hides the subtree
                },
                None => None,
            };
            let name = def
                .name
                .as_ref()
                .and_then(|n| lookup(ss, q, n))
                .and_then(|nq| first_value(ss, nq))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| ss.attributes().name(q).unwrap_or("").to_string());
            let (start, end) = entry_range(ss, display);
            let value_of = |p: &Option<Vec<ViewAttr>>| {
                p.as_ref()
                    .and_then(|p| lookup(ss, q, p))
                    .and_then(|pq| first_value(ss, pq))
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
                analysis_id: scope.analysis_id.clone(),
            });
            let child_scope = Scope {
                ss,
                base: q,
                prev_regex: child_regex.clone(),
                analysis_id: scope.analysis_id.clone(),
            };
            for c in &def.children {
                self.expand(c, &child_scope, id);
            }
        }
        // An entry whose `parent` names the `id` of an entry of the same level, with
        // overlapping time ranges, goes under it. Ids are keys of a map in Trace
        // Compass: for a repeated id only the last entry is linked or linked to.
        let last_with_id = |id: &str| links.iter().rev().find(|(_, i, _)| i == id);
        for (index, id, parent) in &links {
            let Some(parent) = parent else { continue };
            if last_with_id(id).map(|l| l.0) != Some(*index) {
                continue;
            }
            let me = &self.out[*index];
            // An entry naming itself as parent is left where it is (no cycles).
            if let Some(&(other, _, _)) = last_with_id(parent) {
                let o = &self.out[other];
                if other != *index && o.start <= me.end && me.start <= o.end {
                    self.out[*index].parent = Some(other);
                }
            }
        }
    }
}

/// The tree of a view over one state system: the trace-name root, then the entries.
/// Entries with an `analysisId` find nothing (see [`tree_with_analyses`]).
pub fn tree(view: &ViewDef, ss: &dyn StateSystemQuerier, trace_name: &str) -> Vec<TreeEntry> {
    tree_with_analyses(view, ss, trace_name, &|_| None)
}

/// [`tree`], where an entry with `analysisId="A"` (and its sub-entries) is built
/// from `analyses("A")`'s state system, from its root; an unknown id yields no entries.
pub fn tree_with_analyses<'a>(
    view: &ViewDef,
    ss: &'a dyn StateSystemQuerier,
    trace_name: &str,
    analyses: &'a AnalysisLookup<'a>,
) -> Vec<TreeEntry> {
    let mut b = TreeBuilder {
        lookup_analysis: analyses,
        out: vec![TreeEntry {
            id: 0,
            parent: None,
            name: trace_name.to_string(),
            start: ss.start_time(),
            end: ss.current_end_time(),
            display: None,
            delta: false,
            analysis_id: None,
        }],
    };
    let scope = Scope {
        ss,
        base: ROOT_QUARK,
        prev_regex: String::new(),
        analysis_id: None,
    };
    for e in &view.entries {
        b.expand(e, &scope, 0);
    }
    b.out
}

/// The state system holding `entry.display`: `main` unless the entry came from
/// another analysis (`analysisId`), then `analyses(id)`.
pub fn entry_state_system<'a>(
    entry: &TreeEntry,
    main: &'a dyn StateSystemQuerier,
    analyses: &AnalysisLookup<'a>,
) -> Option<&'a dyn StateSystemQuerier> {
    match &entry.analysis_id {
        None => Some(main),
        Some(id) => analyses(id),
    }
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
