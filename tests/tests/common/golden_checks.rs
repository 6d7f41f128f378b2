//! Evaluates the checks of `expected.json` golden files (`providers-golden/1` and
//! `kernel-golden/1`, see `shared/spec/providers.md` §0.3 and
//! `shared/spec/kernel-analysis.md` §9) against a built state system.

use serde_json::Value;
use sht::{Quark, StateSystem, StateSystemQuerier, StateValue};

/// A typed golden value.
pub fn value_of(v: &Value) -> StateValue {
    let num = || v["v"].as_i64().unwrap_or_else(|| panic!("bad value {v}"));
    match v["type"].as_str() {
        Some("null") => StateValue::Null,
        Some("int") => StateValue::Int(num() as i32),
        Some("long") => StateValue::Long(num()),
        Some("double") => StateValue::Double(v["v"].as_f64().expect("double")),
        Some("string") => StateValue::from(v["v"].as_str().expect("string")),
        _ => panic!("unknown golden value {v}"),
    }
}

fn path_of(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("bad path {v}"))
        .iter()
        .map(|p| p.as_str().expect("path element").to_string())
        .collect()
}

fn quark(ss: &StateSystem, path: &[String]) -> Result<Quark, String> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    ss.quark(&p)
        .map_err(|e| format!("no attribute {path:?}: {e}"))
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// Every interval of `q` meeting [t1, t2], sorted by start.
fn intervals(ss: &StateSystem, q: Quark, t1: i64, t2: i64) -> Result<Vec<sht::Interval>, String> {
    let mut out = ss.query_2d(&[q], t1, t2).map_err(|e| e.to_string())?;
    out.sort_by_key(|i| i.start);
    Ok(out)
}

fn expect_intervals(got: &[sht::Interval], want: &Value) -> Result<(), String> {
    let want: Vec<(i64, i64, StateValue)> = want
        .as_array()
        .expect("intervals")
        .iter()
        .map(|i| (int(&i[0]), int(&i[1]), value_of(&i[2])))
        .collect();
    let got: Vec<(i64, i64, StateValue)> = got
        .iter()
        .map(|i| (i.start, i.end, i.value.clone()))
        .collect();
    if got == want {
        Ok(())
    } else {
        Err(format!("intervals {got:?}, want {want:?}"))
    }
}

/// `StateSystemUtils.queryHistoryRange` (kernel-analysis.md §7).
fn range_query(
    ss: &StateSystem,
    q: Quark,
    t1: i64,
    t2: i64,
    resolution: Option<i64>,
) -> Result<Vec<sht::Interval>, String> {
    let (start, end) = (ss.start_time(), ss.current_end_time());
    let t1 = t1.max(start);
    let t2 = t2.min(end);
    let single = |t: i64| ss.query_single(t, q).map_err(|e| e.to_string());
    let mut out: Vec<sht::Interval> = Vec::new();
    match resolution {
        None => out = intervals(ss, q, t1, t2)?,
        Some(r) => {
            let mut t = t1;
            while t <= t2 {
                let i = single(t)?;
                t += ((i.end - t) / r + 1) * r;
                out.push(i);
            }
            if out.last().is_some_and(|i| i.end < t2) {
                out.push(single(t2)?);
            }
        }
    }
    Ok(out)
}

fn thread_names(ss: &StateSystem) -> Vec<(i64, Quark)> {
    let Ok(threads) = ss.quark(&["Threads"]) else {
        return Vec::new();
    };
    ss.attributes()
        .children_of(threads)
        .iter()
        .filter_map(|&q| {
            let name = ss.attributes().name(q).ok()?;
            if name.starts_with("0_") {
                return None;
            }
            Some((name.parse().ok()?, q))
        })
        .collect()
}

fn check_one(ss: &StateSystem, c: &Value) -> Result<(), String> {
    let kind = c["kind"].as_str().expect("kind");
    match kind {
        "value_at" => {
            let q = quark(ss, &path_of(&c["path"]))?;
            let t = int(&c["time"]);
            let full = ss.query_full(t).map_err(|e| e.to_string())?;
            let got = &full[q as usize].value;
            let want = value_of(&c["value"]);
            (*got == want)
                .then_some(())
                .ok_or(format!("value {got:?}, want {want:?}"))
        }
        "interval_at" => {
            let q = quark(ss, &path_of(&c["path"]))?;
            let i = ss
                .query_single(int(&c["time"]), q)
                .map_err(|e| e.to_string())?;
            let want = (int(&c["start"]), value_of(&c["value"]));
            ((i.start, i.value.clone()) == want)
                .then_some(())
                .ok_or(format!("interval {i:?}, want start/value {want:?}"))
        }
        "intervals" | "intervals_prefix" => {
            let q = quark(ss, &path_of(&c["path"]))?;
            let mut got = intervals(ss, q, ss.start_time(), ss.current_end_time())?;
            if kind == "intervals_prefix" {
                got.truncate(c["intervals"].as_array().map_or(0, Vec::len));
            }
            expect_intervals(&got, &c["intervals"])
        }
        "range" | "range_count" => {
            let q = quark(ss, &path_of(&c["path"]))?;
            let got = range_query(
                ss,
                q,
                int(&c["t1"]),
                int(&c["t2"]),
                c["resolution"].as_i64(),
            )?;
            if kind == "range_count" {
                if got.len() as i64 != int(&c["count"]) {
                    return Err(format!("{} intervals, want {}", got.len(), c["count"]));
                }
                for a in c["at"].as_array().into_iter().flatten() {
                    let i = &got[int(&a["index"]) as usize];
                    if let Some(v) = a.get("value") {
                        if i.value != value_of(v) {
                            return Err(format!("interval {i:?} at {a}"));
                        }
                    }
                    if let Some(e) = a.get("end") {
                        if i.end != int(e) {
                            return Err(format!("interval {i:?} at {a}"));
                        }
                    }
                }
                return Ok(());
            }
            if c.get("intervals").is_some() {
                return expect_intervals(&got, &c["intervals"]);
            }
            let got: Vec<StateValue> = got.into_iter().map(|i| i.value).collect();
            let want: Vec<StateValue> = c["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(value_of)
                .collect();
            (got == want)
                .then_some(())
                .ok_or(format!("values {got:?}, want {want:?}"))
        }
        "absent" => {
            let p = path_of(&c["path"]);
            match quark(ss, &p) {
                Err(_) => Ok(()),
                Ok(q) => Err(format!("attribute {p:?} exists (quark {q})")),
            }
        }
        "query_error" => {
            let t = int(&c["time"]);
            let result = match c["path"].is_null() {
                true => ss.query_full(t).map(|_| ()),
                false => ss
                    .query_single(t, quark(ss, &path_of(&c["path"]))?)
                    .map(|_| ()),
            };
            match result {
                Err(sht::Error::TimeRange { .. } | sht::Error::BeforeStart { .. }) => Ok(()),
                other => Err(format!("expected a time-range error, got {other:?}")),
            }
        }
        "value_type" => {
            let q = quark(ss, &path_of(&c["path"]))?;
            let v = ss
                .query_single(int(&c["time"]), q)
                .map_err(|e| e.to_string())?
                .value;
            let got = v.value_type().map(|t| t.to_string().to_lowercase());
            (got.as_deref() == c["type"].as_str())
                .then_some(())
                .ok_or(format!("type {got:?}, want {}", c["type"]))
        }
        "quark_count" => {
            let pattern = path_of(&c["pattern"]);
            let p: Vec<&str> = pattern.iter().map(String::as_str).collect();
            let n = ss.quarks(&p).map_err(|e| e.to_string())?.len() as i64;
            (n == int(&c["count"]))
                .then_some(())
                .ok_or(format!("{n} quarks, want {}", c["count"]))
        }
        "children" => {
            let q = quark(ss, &path_of(&c["path"]))?;
            let mut got: Vec<String> = ss
                .attributes()
                .children_of(q)
                .iter()
                .map(|&k| ss.attributes().name(k).unwrap().to_string())
                .collect();
            let mut want = path_of(&c["names"]);
            got.sort();
            want.sort();
            (got == want)
                .then_some(())
                .ok_or(format!("children {got:?}, want {want:?}"))
        }
        "attribute_count" => {
            let n = ss.attribute_count() as i64;
            (n == int(&c["count"]))
                .then_some(())
                .ok_or(format!("{n} attributes, want {}", c["count"]))
        }
        "active_threads" | "threads_on_cpus" => {
            let (start, end) = (ss.start_time(), ss.current_end_time());
            let (t1, t2) = (int(&c["t1"]).max(start), int(&c["t2"]).min(end));
            let mut got = Vec::new();
            if t1 <= t2 {
                for (tid, q) in thread_names(ss) {
                    let hit = if kind == "active_threads" {
                        intervals(ss, q, t1, t2)?.iter().any(|i| {
                            !matches!(i.value, StateValue::Null | StateValue::Int(0 | 1 | 6))
                        })
                    } else {
                        let cpus: Vec<StateValue> = c["cpus"]
                            .as_array()
                            .expect("cpus")
                            .iter()
                            .map(|v| StateValue::Int(int(v) as i32))
                            .collect();
                        let rq = ss.attributes().opt_quark(q, &["Current_cpu_rq"]);
                        rq >= 0
                            && intervals(ss, rq, t1, t2)?
                                .iter()
                                .any(|i| cpus.contains(&i.value))
                    };
                    if hit {
                        got.push(tid);
                    }
                }
            }
            got.sort_unstable();
            let mut want: Vec<i64> = c["tids"]
                .as_array()
                .expect("tids")
                .iter()
                .map(int)
                .collect();
            want.sort_unstable();
            (got == want)
                .then_some(())
                .ok_or(format!("threads {got:?}, want {want:?}"))
        }
        other => Err(format!("unknown check kind {other:?}")),
    }
}

/// Runs every check (and the `start`/`end` of the file); returns the failures.
pub fn run_checks(ss: &StateSystem, golden: &Value) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(s) = golden["start"].as_i64() {
        if ss.start_time() != s {
            failures.push(format!("start {} != {s}", ss.start_time()));
        }
    }
    if let Some(e) = golden["end"].as_i64() {
        if ss.current_end_time() != e {
            failures.push(format!("end {} != {e}", ss.current_end_time()));
        }
    }
    let checks = golden["checks"].as_array().expect("checks");
    assert!(!checks.is_empty(), "a golden file without checks");
    for (i, c) in checks.iter().enumerate() {
        if let Err(e) = check_one(ss, c) {
            failures.push(format!("check {i} ({}): {e}", json_brief(c)));
        }
    }
    failures
}

fn json_brief(c: &Value) -> String {
    let mut c = c.clone();
    if let Some(o) = c.as_object_mut() {
        for k in [
            "source",
            "origin",
            "verified",
            "note",
            "intervals",
            "values",
        ] {
            o.remove(k);
        }
    }
    c.to_string()
}
