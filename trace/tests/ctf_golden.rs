//! The first events of every trace equal `shared/golden/ctf/<trace>/expected.json`
//! (Babeltrace 2's decoding), and hello-lost's lost-event records sit where Trace
//! Compass puts them.

mod common;

use serde_json::{json, Value as J};
use sextant_trace::{ClassId, Event, Experiment};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

fn trace_path(shared: &Path, rel: &str) -> PathBuf {
    shared.join(rel.strip_prefix("shared/").expect("path under shared/"))
}

fn event_json(exp_names: &[String], ev: &Event<'_>) -> J {
    let (sc, ec, payload) = ev.babeltrace_fields();
    let obj = |v: Vec<(String, sextant_trace::Value<'_>)>| {
        J::Object(v.into_iter().map(|(k, v)| (k, v.to_json())).collect())
    };
    let mut o = json!({
        "name": exp_names[ev.class().0 as usize],
        "ns": ev.timestamp(),
        "cycles": ev.cycles(),
        "stream": ev.stream_name(),
        "cpu_id": ev.cpu(),
        "fields": obj(payload),
    });
    if !sc.is_empty() {
        o["stream_context"] = obj(sc);
    }
    if !ec.is_empty() {
        o["event_context"] = obj(ec);
    }
    o
}

/// Compares the keys the golden event has (numbers numerically).
fn same(got: &J, want: &J) -> bool {
    match (got, want) {
        (J::Number(a), J::Number(b)) => match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => a.as_f64() == b.as_f64(),
        },
        (J::Object(a), J::Object(b)) => {
            a.len() == b.len() && b.iter().all(|(k, v)| a.get(k).is_some_and(|g| same(g, v)))
        }
        (J::Array(a), J::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        _ => got == want,
    }
}

#[test]
fn first_events_equal_golden() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(shared.join("golden/ctf"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty());
    let mut failures = Vec::new();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let golden: J =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        let want = golden["first_events"].as_array().unwrap().clone();
        let path = trace_path(&shared, golden["trace"].as_str().unwrap());
        let mut exp = match Experiment::open(&[&path]) {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let names: Vec<String> = (0..exp.class_count())
            .map(|c| exp.class_name(ClassId(c)).to_string())
            .collect();
        let mut got = Vec::new();
        exp.for_each(
            &mut |ev| {
                if ev.lost().is_none() {
                    got.push(event_json(&names, ev));
                }
                if got.len() == want.len() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
            &AtomicU64::new(0),
        )
        .unwrap();
        for (i, w) in want.iter().enumerate() {
            let mut w = w.clone();
            // Traces without a clock (CTF2-vl-ints) have no timestamp to compare.
            if w["ns"].is_null() {
                let o = w.as_object_mut().unwrap();
                o.remove("ns");
            }
            let g = got.get(i).cloned().unwrap_or(J::Null);
            let ok = match (&g, &w) {
                (J::Object(go), J::Object(wo)) => wo
                    .iter()
                    .all(|(k, v)| go.get(k).is_some_and(|x| same(x, v))),
                _ => false,
            };
            if !ok {
                failures.push(format!("{name}: event {i}:\n  got  {g}\n  want {w}"));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hello_lost_records_where_trace_compass_puts_them() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let golden: J = serde_json::from_str(
        &std::fs::read_to_string(shared.join("golden/ctf/hello-lost/expected.json")).unwrap(),
    )
    .unwrap();
    let tc = &golden["tracecompass_lost_events"];
    let mut exp =
        Experiment::open(&[trace_path(&shared, golden["trace"].as_str().unwrap())]).unwrap();
    let lost_class = (0..exp.class_count())
        .map(ClassId)
        .find(|c| exp.class_name(*c) == "Lost event")
        .unwrap();
    let count_h = exp.field_handle(lost_class, "Lost events").unwrap();
    let dur_h = exp.field_handle(lost_class, "duration").unwrap();
    let mut rank = 0u64;
    let mut records = Vec::new();
    let mut at_rank = std::collections::HashMap::new();
    let (mut real, mut total) = (0u64, 0i64);
    exp.for_each(
        &mut |ev| {
            at_rank.insert(rank, ev.timestamp());
            if ev.class() == lost_class {
                let (n, d) = (ev.int(count_h).unwrap(), ev.int(dur_h).unwrap());
                total += n;
                records.push((rank, ev.timestamp(), d, n));
            } else {
                real += 1;
            }
            rank += 1;
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    assert_eq!(real, tc["real_events"].as_u64().unwrap());
    assert_eq!(
        records.len() as u64,
        tc["lost_event_records"].as_u64().unwrap()
    );
    assert_eq!(total, tc["lost_events_total"].as_i64().unwrap());
    for (i, r) in tc["records"].as_array().unwrap().iter().enumerate() {
        let want = (
            r["rank"].as_u64().unwrap(),
            r["ns"].as_i64().unwrap(),
            r["duration_ns"].as_i64().unwrap(),
            r["count"].as_i64().unwrap(),
        );
        assert_eq!(records[i], want, "lost-event record {i}");
        assert_eq!(want.1 + want.2, r["end_ns"].as_i64().unwrap());
    }
    let n = &tc["normal_event"];
    assert_eq!(
        at_rank[&n["rank"].as_u64().unwrap()],
        n["ns"].as_i64().unwrap()
    );
}

/// The LTTng headers of x86 traces take the fast path (decoded without the interpreter);
/// natural-alignment traces keep the generic one. Both are covered by the golden tests.
#[test]
fn lttng_headers_are_recognised() {
    use sextant_trace::ctf::decode::HeaderKind;
    use sextant_trace::ctf::reader::CtfTrace;
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let kind = |name: &str| {
        let t = CtfTrace::open(&shared.join("traces/ctf").join(name).join("ctf")).unwrap();
        t.streams[0].header_kind
    };
    assert!(matches!(
        kind("many-threads"),
        HeaderKind::Compact { be: false, .. }
    ));
    assert!(matches!(
        kind("hello-lost"),
        HeaderKind::Compact { be: false, .. }
    ));
    assert!(matches!(
        kind("CTF2-7.0-trace-with-index"),
        HeaderKind::Large { be: false, .. }
    ));
    assert_eq!(kind("bug446190"), HeaderKind::Generic);
    assert_eq!(kind("flipping-endianness"), HeaderKind::Generic);
}

/// Arrays and sequences of integers read element by element without allocation equal
/// the golden lists (hello-lost `arrfield1`, `seqfield1`).
#[test]
fn array_elements_read_without_allocation() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let golden: J = serde_json::from_str(
        &std::fs::read_to_string(shared.join("golden/ctf/hello-lost/expected.json")).unwrap(),
    )
    .unwrap();
    let mut exp =
        Experiment::open(&[trace_path(&shared, golden["trace"].as_str().unwrap())]).unwrap();
    let class = (0..exp.class_count())
        .map(ClassId)
        .find(|c| exp.class_name(*c) == "ust_tests_hello:tptest")
        .unwrap();
    let handles: Vec<_> = ["arrfield1", "seqfield1"]
        .iter()
        .map(|n| exp.field_handle(class, n).unwrap())
        .collect();
    let want = golden["first_events"].as_array().unwrap().clone();
    let mut i = 0;
    exp.for_each(
        &mut |ev| {
            if ev.class() != class {
                return ControlFlow::Continue(());
            }
            for (h, name) in handles.iter().zip(["arrfield1", "seqfield1"]) {
                let n = ev.array_len(*h).unwrap();
                let got: Vec<i64> = (0..n).map(|k| ev.array_int(*h, k).unwrap()).collect();
                let w: Vec<i64> = want[i]["fields"][name]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect();
                assert_eq!(got, w, "event {i} {name}");
                assert_eq!(ev.array_int(*h, n), None);
                assert_eq!(ev.value(*h).unwrap().to_json(), want[i]["fields"][name]);
                assert_eq!(ev.int(*h), None);
            }
            i += 1;
            if i == want.len() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    assert_eq!(i, want.len());
}
