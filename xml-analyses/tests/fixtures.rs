//! Runs every case of `shared/fixtures/xml` and evaluates its `expected.json` checks
//! (translations of Trace Compass's own Java test assertions).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;
use sextant_trace::XmlStubTrace;
use sextant_xml::view::{row, series, tree, TreeEntry};
use sextant_xml::{build_in_memory, load_file, AnalysisOutput, Program};
use sht::{StateSystemQuerier, StateValue, ROOT_QUARK};

fn json_value(j: &Json) -> StateValue {
    let v = &j["v"];
    match j["type"].as_str().unwrap() {
        "null" => StateValue::Null,
        "int" => StateValue::Int(v.as_i64().unwrap() as i32),
        "long" => StateValue::Long(v.as_i64().unwrap()),
        "double" => StateValue::Double(v.as_f64().unwrap()),
        "string" => StateValue::string(v.as_str().unwrap()),
        other => panic!("unknown value type {other}"),
    }
}

fn path_of(j: &Json) -> Vec<String> {
    j.as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

fn quark(ss: &dyn StateSystemQuerier, path: &[String]) -> Result<i32, String> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    if p.is_empty() {
        return Ok(ROOT_QUARK);
    }
    ss.quark(&p).map_err(|e| format!("{path:?}: {e}"))
}

fn as_number(v: &StateValue) -> f64 {
    match v {
        StateValue::Int(i) => f64::from(*i),
        StateValue::Long(l) => *l as f64,
        StateValue::Double(d) => *d,
        other => panic!("not a number: {other:?}"),
    }
}

/// Evaluates one check; `Err` describes the mismatch.
fn check(out: &AnalysisOutput, c: &Json) -> Result<(), String> {
    let ss: &dyn StateSystemQuerier = &out.state_system;
    match c["kind"].as_str().unwrap() {
        "intervals" | "stack_intervals" => {
            let path = path_of(&c["path"]);
            let q = quark(ss, &path)?;
            let stack = c["kind"] == "stack_intervals";
            for want in c["intervals"].as_array().unwrap() {
                let (s, e) = (want[0].as_i64().unwrap(), want[1].as_i64().unwrap());
                let got = ss
                    .query_single(s, q)
                    .map_err(|e| format!("{path:?} at {s}: {e}"))?;
                let mut value = got.value.clone();
                if stack {
                    value = match got.value.as_int() {
                        Some(d) if d > 0 => {
                            let top = ss
                                .attributes()
                                .quark(q, &[d.to_string()])
                                .map_err(|e| e.to_string())?;
                            ss.query_single(s, top).map_err(|e| e.to_string())?.value
                        }
                        _ => StateValue::Null,
                    };
                }
                let want_v = json_value(&want[2]);
                if got.start != s || got.end != e || value != want_v {
                    return Err(format!(
                        "{path:?}: want [{s}, {e}] {want_v:?}, got [{}, {}] {value:?}",
                        got.start, got.end
                    ));
                }
            }
            Ok(())
        }
        "value_at" => {
            let path = path_of(&c["path"]);
            let q = quark(ss, &path)?;
            let t = c["time"].as_i64().unwrap();
            let got = ss.query_single(t, q).map_err(|e| e.to_string())?.value;
            let want = json_value(&c["value"]);
            (got == want)
                .then_some(())
                .ok_or_else(|| format!("{path:?} at {t}: want {want:?}, got {got:?}"))
        }
        "children" | "child_count" => {
            let path = path_of(&c["path"]);
            let q = quark(ss, &path)?;
            let mut names: Vec<String> = ss
                .attributes()
                .children_of(q)
                .iter()
                .map(|&c| ss.attributes().name(c).unwrap().to_string())
                .collect();
            names.sort();
            if c["kind"] == "child_count" {
                let want = c["count"].as_u64().unwrap() as usize;
                return (names.len() == want)
                    .then_some(())
                    .ok_or_else(|| format!("{path:?}: want {want} children, got {names:?}"));
            }
            let mut want = path_of(&c["names"]);
            want.sort();
            (names == want)
                .then_some(())
                .ok_or_else(|| format!("{path:?}: want children {want:?}, got {names:?}"))
        }
        "attribute_absent" => {
            let path = path_of(&c["path"]);
            match quark(ss, &path) {
                Err(_) => Ok(()),
                Ok(_) => Err(format!("{path:?} exists")),
            }
        }
        "compare" => {
            let side = |j: &Json| -> Result<f64, String> {
                if let Some(v) = j.get("value") {
                    return Ok(as_number(&json_value(v)));
                }
                let q = quark(ss, &path_of(&j["path"]))?;
                let t = j["time"].as_i64().unwrap();
                Ok(as_number(
                    &ss.query_single(t, q).map_err(|e| e.to_string())?.value,
                ))
            };
            let (l, r) = (side(&c["left"])?, side(&c["right"])?);
            let ok = match c["op"].as_str().unwrap() {
                "eq" => l == r,
                "ne" => l != r,
                "gt" => l > r,
                "ge" => l >= r,
                "lt" => l < r,
                "le" => l <= r,
                o => panic!("op {o}"),
            };
            ok.then_some(())
                .ok_or_else(|| format!("compare {l} {} {r} is false", c["op"]))
        }
        "segment_count" => {
            let segments = out.segments.all().map_err(|e| e.to_string())?;
            let want = c["count"].as_u64().unwrap() as usize;
            (segments.len() == want)
                .then_some(())
                .ok_or_else(|| format!("want {want} segments, got {segments:?}"))
        }
        "segments" => {
            let segments = out.segments.all().map_err(|e| e.to_string())?;
            let want = c["segments"].as_array().unwrap();
            if want.len() != segments.len() {
                return Err(format!("want {} segments, got {segments:?}", want.len(),));
            }
            for (w, g) in want.iter().zip(&segments) {
                let mismatch = || format!("want {w}, got {g:?}");
                if w.get("start").is_some_and(|s| s.as_i64() != Some(g.start))
                    || w.get("end").is_some_and(|s| s.as_i64() != Some(g.end))
                    || w.get("name")
                        .is_some_and(|s| s.as_str() != Some(g.name.as_str()))
                {
                    return Err(mismatch());
                }
                if let Some(content) = w.get("content").and_then(Json::as_object) {
                    if content.len() != g.content.len() {
                        return Err(mismatch());
                    }
                    for (k, v) in content {
                        let got = g.content.iter().find(|(n, _)| n == k).map(|(_, v)| v);
                        if got != Some(&json_value(v)) {
                            return Err(mismatch());
                        }
                    }
                }
            }
            Ok(())
        }
        "segments_intersecting" => {
            let t = c["time"].as_i64().unwrap();
            let at = out.segments.at(t).map_err(|e| e.to_string())?;
            let first = at.first().ok_or_else(|| format!("no segment at {t}"))?;
            let w = &c["first"];
            (Some(first.start) == w["start"].as_i64()
                && Some(first.end - first.start) == w["length"].as_i64())
            .then_some(())
            .ok_or_else(|| format!("want {w}, got {first:?}"))
        }
        "segments_first" => {
            let all = out.segments.all().map_err(|e| e.to_string())?;
            let first = all.first().ok_or("no segment")?;
            (Some(first.end - first.start) == c["first"]["length"].as_i64())
                .then_some(())
                .ok_or_else(|| format!("want {}, got {first:?}", c["first"]))
        }
        other => Err(format!(
            "check kind {other} is not evaluated by this harness"
        )),
    }
}

/// Time-graph and XY checks: the view's tree, rows and series over the built state system.
fn view_check(dir: &Path, exp: &Json, out: &AnalysisOutput, c: &Json) -> Result<(), String> {
    let view_id = c["view_id"].as_str().unwrap();
    let mut view = None;
    for f in exp["analysis_files"].as_array().unwrap() {
        let file = load_file(&dir.join(f.as_str().unwrap())).unwrap();
        if let Some(v) = file.views.into_iter().find(|v| v.id == view_id) {
            view = Some(v);
        }
    }
    let view = view.ok_or_else(|| format!("view {view_id} not found"))?;
    let ss: &dyn StateSystemQuerier = &out.state_system;
    let entries = tree(&view, ss, exp["trace_name"].as_str().unwrap());
    let parent_name = |e: &TreeEntry| e.parent.map(|p| entries[p].name.clone());
    let by_name = |n: &str| entries.iter().find(|e| e.name == n);
    match c["kind"].as_str().unwrap() {
        "timegraph_tree" | "xy_tree" => {
            let want = c["entries"].as_array().unwrap();
            if want.len() != entries.len() {
                return Err(format!("want {} entries, got {entries:?}", want.len()));
            }
            for (w, g) in want.iter().zip(&entries) {
                let ok = w["name"].as_str() == Some(g.name.as_str())
                    && w["parent"].as_str().map(str::to_string) == parent_name(g)
                    && w.get("start").is_none_or(|s| s.as_i64() == Some(g.start))
                    && w.get("end").is_none_or(|s| s.as_i64() == Some(g.end));
                if !ok {
                    return Err(format!("want {w}, got {g:?}"));
                }
            }
            Ok(())
        }
        "timegraph_rows" => {
            let (from, to) = (
                c["query"]["start"].as_i64().unwrap(),
                c["query"]["end"].as_i64().unwrap(),
            );
            let with_rows: Vec<&TreeEntry> =
                entries.iter().filter(|e| e.display.is_some()).collect();
            let want = c["rows"].as_array().unwrap();
            if want.len() != with_rows.len() {
                return Err(format!(
                    "want {} rows, got entries {with_rows:?}",
                    want.len()
                ));
            }
            for (w, e) in want.iter().zip(with_rows) {
                let got = row(ss, e.display.unwrap(), from, to);
                let want_states: Vec<(i64, i64, i32, Option<String>)> = w["states"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        (
                            s[0].as_i64().unwrap(),
                            s[1].as_i64().unwrap(),
                            s[2].as_i64().unwrap() as i32,
                            s[3].as_str().map(str::to_string),
                        )
                    })
                    .collect();
                if w["entry"].as_str() != Some(e.name.as_str()) || got != want_states {
                    return Err(format!(
                        "row {}: want {want_states:?}, got {} {got:?}",
                        w["entry"], e.name
                    ));
                }
            }
            Ok(())
        }
        "xy_series" => {
            let x: Vec<i64> = c["x"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            let tol = c["tolerance"].as_f64().unwrap_or(0.0);
            for s in c["series"].as_array().unwrap() {
                let name = s["entry"].as_str().unwrap();
                let e = by_name(name).ok_or_else(|| format!("no entry {name}"))?;
                let y = series(ss, e, &x);
                let want: Vec<f64> = s["y"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                if want.len() != y.len() || want.iter().zip(&y).any(|(a, b)| (a - b).abs() > tol) {
                    return Err(format!("series {name}: want {want:?}, got {y:?}"));
                }
            }
            Ok(())
        }
        other => Err(format!("unknown view check {other}")),
    }
}

fn load_analysis(dir: &Path, exp: &Json) -> Arc<Program> {
    let id = exp["analysis_id"].as_str().unwrap();
    let mut found = None;
    for f in exp["analysis_files"].as_array().unwrap() {
        let file = load_file(&dir.join(f.as_str().unwrap())).unwrap_or_else(|e| panic!("{e}"));
        if let Some(a) = file.analysis(id) {
            found = Some(Arc::clone(a));
        }
    }
    found.unwrap_or_else(|| panic!("{}: analysis {id} not found", dir.display()))
}

fn run_case(dir: &Path) -> Vec<String> {
    let exp: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let program = load_analysis(dir, &exp);
    let trace = XmlStubTrace::open(&dir.join(exp["trace_file"].as_str().unwrap())).unwrap();
    // Trace Compass names the trace after its original file (host id, root entry).
    let trace = XmlStubTrace::parse(
        &std::fs::read(trace.path()).unwrap(),
        trace.path(),
        exp["trace_name"].as_str().unwrap().to_string(),
        Default::default(),
    )
    .unwrap();
    let out =
        build_in_memory(&program, &trace).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut failures = Vec::new();
    let mut evaluated = 0;
    for c in exp["checks"].as_array().unwrap() {
        evaluated += 1;
        let result = if c.get("view_id").is_some() {
            view_check(dir, &exp, &out, c)
        } else {
            check(&out, c)
        };
        if let Err(e) = result {
            failures.push(format!("{}: {}: {e}", dir.display(), c["kind"]));
        }
    }
    eprintln!("{}: {evaluated} checks evaluated", dir.display());
    assert!(
        evaluated > 0
            || exp["checks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["kind"].as_str().unwrap().starts_with(['t', 'x']))
    );
    failures
}

fn cases() -> Option<Vec<PathBuf>> {
    let shared = sextant_tests::shared_dir()?;
    Some(
        sextant_tests::case_dirs(&shared, "fixtures/xml")
            .into_iter()
            .filter(|d| d.join("trace.xml").is_file())
            .collect(),
    )
}

#[test]
fn every_fixture_case_with_a_trace_passes_its_checks() {
    let Some(cases) = cases() else { return };
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for dir in &cases {
        failures.extend(run_case(dir));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
