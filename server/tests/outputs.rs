//! The state system explorer and state system XY outputs: exact JSON shapes,
//! the sampling rule of tsp.md §6.1/§7.2, tooltips, golden `.ht` files, and the
//! viewer's opening sequence of §8.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};
use sht::{HtConfig, StateSystem, StateSystemBuilder, StateSystemQuerier, StateValue};

/// `x` = the worked example of tsp.md §7.2; `grp/n` a long; `grp/10`, `grp/9`
/// to check numeric ordering of names.
fn write_worked_example(path: &Path) {
    let mut ss = StateSystem::create_history_tree(path, HtConfig::new(1000, 1)).unwrap();
    let x = ss.quark_and_add(&["x"]).unwrap();
    let n = ss.quark_and_add(&["grp", "n"]).unwrap();
    let ten = ss.quark_and_add(&["grp", "10"]).unwrap();
    let nine = ss.quark_and_add(&["grp", "9"]).unwrap();
    ss.modify(1000, StateValue::string("A"), x).unwrap();
    ss.modify(1000, StateValue::Long(5), n).unwrap();
    ss.modify(1000, StateValue::Int(2), ten).unwrap();
    ss.modify(1000, StateValue::Double(0.5), nine).unwrap();
    ss.modify(1100, StateValue::string("B"), x).unwrap();
    ss.modify(1101, StateValue::Null, x).unwrap();
    ss.modify(1400, StateValue::Long(7), n).unwrap();
    ss.modify(1500, StateValue::string("A"), x).unwrap();
    ss.close(1999).unwrap();
}

fn tree_entries(answer: &Value) -> Vec<Value> {
    answer["model"]["entries"].as_array().unwrap().clone()
}

fn id_of(entries: &[Value], labels0: &str) -> i64 {
    entries
        .iter()
        .find(|e| e["labels"][0] == labels0)
        .unwrap_or_else(|| panic!("no entry {labels0}"))["id"]
        .as_i64()
        .unwrap()
}

fn range_body(start: i64, end: i64, nb: i64, items: &[i64]) -> String {
    json!({"parameters": {"requested_timerange": {"start": start, "end": end, "nbTimes": nb},
                          "requested_items": items}})
    .to_string()
}

#[tokio::test]
async fn explorer_tree_states_tooltip_on_the_worked_example() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.ht");
    write_worked_example(&path);
    let app = app();
    let (_t, exp) = open(&app, &path, "example").await;

    let outputs = get(&app, &format!("/experiments/{exp}/outputs")).await;
    let outputs = outputs.ok().as_array().unwrap().clone();
    assert!(outputs.contains(&json!({
        "id": EXPLORER, "name": "State System Explorer",
        "description": "Displays the states of state system attributes over time",
        "type": "TIME_GRAPH"})));
    assert!(outputs
        .iter()
        .any(|o| o["id"] == SS_XY && o["type"] == "TREE_TIME_XY"));
    let one = get(&app, &out(&exp, EXPLORER)).await;
    assert_eq!(one.ok()["name"], "State System Explorer");

    let tree = post(
        &app,
        &out(&exp, &format!("timeGraph/{EXPLORER}/tree")),
        r#"{"parameters":{}}"#,
    )
    .await;
    let model = &tree.ok()["model"];
    assert_eq!(tree.json["status"], "COMPLETED");
    assert_eq!(tree.json["statusMessage"], "Completed");
    assert_eq!(
        model["headers"],
        json!([{"name":"State System / Attribute","tooltip":"","dataType":"STRING"},
               {"name":"Quark","tooltip":"","dataType":"STRING"}])
    );
    assert_eq!(model["autoExpandLevel"], 1);
    let entries = tree_entries(&tree.json);
    // trace, module, state system, then attributes depth first, names sorted
    // (numerically for numbers: 9 before 10).
    let labels: Vec<Value> = entries.iter().map(|e| e["labels"].clone()).collect();
    assert_eq!(
        labels,
        vec![
            json!(["example"]),
            json!(["example"]),
            json!(["example"]),
            json!(["grp", "1"]),
            json!(["9", "4"]),
            json!(["10", "3"]),
            json!(["n", "2"]),
            json!(["x", "0"]),
        ]
    );
    assert_eq!(
        entries[0],
        json!({"id": entries[0]["id"], "parentId": -1, "labels": ["example"], "start": 1000, "end": 1999})
    );
    for (e, parent) in entries.iter().skip(1).zip([0usize, 1, 2, 3, 3, 3, 2]) {
        assert_eq!(e["parentId"], entries[parent]["id"]);
        assert_eq!(e["hasData"], true);
        assert_eq!(
            (e["start"].as_i64(), e["end"].as_i64()),
            (Some(1000), Some(1999))
        );
    }
    // Ids are stable across calls.
    let again = post(
        &app,
        &out(&exp, &format!("timeGraph/{EXPLORER}/tree")),
        r#"{"parameters":{}}"#,
    )
    .await;
    assert_eq!(tree_entries(&again.json), entries);

    // The worked example: exactly three states, end = min(end + 1, current end).
    let x = entries[7]["id"].as_i64().unwrap();
    let ss_entry = entries[2]["id"].as_i64().unwrap();
    let states = post(
        &app,
        &out(&exp, &format!("timeGraph/{EXPLORER}/states")),
        &range_body(1000, 2000, 5, &[x, ss_entry]),
    )
    .await;
    let a_key = (sextant_server::values::java_string_hash("A").rem_euclid(9)).to_string();
    assert_eq!(
        states.ok(),
        &json!({"model": {"rows": [
            {"entryId": x, "states": [
                {"start": 1000, "end": 1100, "label": "A", "style": {"parentKey": a_key, "values": {}}},
                {"start": 1101, "end": 1500, "style": {"parentKey": "Unknown", "values": {}}},
                {"start": 1500, "end": 1999, "label": "A", "style": {"parentKey": a_key, "values": {}}}]},
            {"entryId": ss_entry, "states": [
                {"start": 1000, "end": 1999, "style": {"parentKey": "Transparent", "values": {}}}]}]},
            "status": "COMPLETED", "statusMessage": "Completed"})
    );
    // A sample on the 1-ns interval brings it back.
    let fine = post(
        &app,
        &out(&exp, &format!("timeGraph/{EXPLORER}/states")),
        &json!({"parameters": {"requested_times": [1050, 1100, 1200], "requested_items": [x]}})
            .to_string(),
    )
    .await;
    let labels: Vec<Value> = fine.ok()["model"]["rows"][0]["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.get("label").cloned().unwrap_or(Value::Null))
        .collect();
    assert_eq!(labels, vec![json!("A"), json!("B"), Value::Null]);
    // Labels of ints, longs and doubles.
    let (ten, n, nine) = (
        entries[5]["id"].as_i64().unwrap(),
        entries[6]["id"].as_i64().unwrap(),
        entries[4]["id"].as_i64().unwrap(),
    );
    let s = post(
        &app,
        &out(&exp, &format!("timeGraph/{EXPLORER}/states")),
        &range_body(1000, 1999, 2, &[ten, n, nine]),
    )
    .await;
    let rows = s.ok()["model"]["rows"].as_array().unwrap();
    assert_eq!(rows[0]["states"][0]["label"], "2");
    assert_eq!(rows[1]["states"][0]["label"], "0x5");
    assert_eq!(rows[1]["states"][1]["label"], "0x7");
    assert!(rows[2]["states"][0].get("label").is_none());

    // Every style key used is in the style map.
    let style = post(
        &app,
        &out(&exp, &format!("{EXPLORER}/style")),
        r#"{"parameters":{}}"#,
    )
    .await;
    let styles = style.ok()["model"]["styles"].as_object().unwrap().clone();
    for key in ["0", "8", "Unknown", "Transparent", a_key.as_str()] {
        assert!(styles.contains_key(key), "{key}");
    }
    assert_eq!(
        styles["Unknown"],
        json!({"values": {"background-color": "#c0c0c0"}})
    );

    // Tooltip: the value at requested_times[0].
    let tip = |t: i64, item: i64| {
        json!({"parameters": {"requested_times": [t], "requested_items": [item],
                              "requested_element": {"elementType": "state", "time": t, "duration": 1}}})
        .to_string()
    };
    let path_tip = out(&exp, &format!("timeGraph/{EXPLORER}/tooltip"));
    let a = post(&app, &path_tip, &tip(1100, x)).await;
    assert_eq!(
        a.ok()["model"],
        json!({"Quark": "0", "Full attribute path": "x", "Value": "B"})
    );
    let a = post(&app, &path_tip, &tip(1200, x)).await;
    assert_eq!(a.ok()["model"]["Value"], "null");
    let a = post(&app, &path_tip, &tip(1000, nine)).await;
    assert_eq!(
        a.ok()["model"],
        json!({"Quark": "4", "Full attribute path": "grp/9", "Value": "0.5"})
    );
    let a = post(&app, &path_tip, &tip(1000, ss_entry)).await;
    assert_eq!(a.ok()["model"], json!({}));

    // Arrows: none; annotations: empty but present.
    let arrows = post(
        &app,
        &out(&exp, &format!("timeGraph/{EXPLORER}/arrows")),
        &range_body(1000, 2000, 5, &[]),
    )
    .await;
    assert_eq!(arrows.ok()["model"], json!([]));
    let cats = get(
        &app,
        &out(&exp, &format!("{EXPLORER}/annotations?markerSetId=")),
    )
    .await;
    assert_eq!(cats.ok()["model"], json!({"annotationCategories": []}));
    let ann = post(
        &app,
        &out(&exp, &format!("{EXPLORER}/annotations")),
        &range_body(1000, 2000, 5, &[x]),
    )
    .await;
    assert_eq!(ann.ok()["model"], json!({"annotations": {}}));

    // A reversed interval: FAILED with an empty model (not null) for states.
    let bad = post(
        &app,
        &out(&exp, &format!("timeGraph/{EXPLORER}/states")),
        &range_body(2000, 1000, 5, &[x]),
    )
    .await;
    assert_eq!(
        bad.ok(),
        &json!({"model": {"rows": []}, "status": "FAILED",
                "statusMessage": "Incorrect query interval. Start time must be smaller than end time"})
    );
    // Unknown ids are simply absent.
    let s = post(
        &app,
        &out(&exp, &format!("timeGraph/{EXPLORER}/states")),
        &range_body(1000, 2000, 5, &[999_999, -1]),
    )
    .await;
    assert_eq!(s.ok()["model"], json!({"rows": []}));
}

#[tokio::test]
async fn state_system_xy_on_the_worked_example() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.ht");
    write_worked_example(&path);
    let app = app();
    let (_t, exp) = open(&app, &path, "example").await;
    let tree = post(
        &app,
        &out(&exp, &format!("XY/{SS_XY}/tree")),
        r#"{"parameters":{}}"#,
    )
    .await;
    let entries = tree_entries(tree.ok());
    // Only numeric attributes and their ancestors; `x` (strings) is left out.
    let labels: Vec<&str> = entries
        .iter()
        .map(|e| e["labels"][0].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["example", "example", "grp", "9", "10", "n"]);
    let defaults: Vec<&str> = entries
        .iter()
        .filter(|e| e["isDefault"] == true)
        .map(|e| e["labels"][0].as_str().unwrap())
        .collect();
    assert_eq!(defaults, ["9"]);
    assert!(entries.iter().all(|e| e["isDefault"].is_boolean()));
    let n = id_of(&entries, "n");
    let nine = id_of(&entries, "9");
    let xy = post(
        &app,
        &out(&exp, &format!("XY/{SS_XY}/xy")),
        &range_body(1000, 2000, 5, &[n, nine]),
    )
    .await;
    let model = &xy.ok()["model"];
    assert_eq!(model["title"], "State System XY");
    let s = &model["series"][0];
    assert_eq!(s["seriesId"], n);
    assert_eq!(s["seriesName"], "example/grp/n");
    assert_eq!(s["xValues"], json!([1000, 1250, 1500, 1750, 2000]));
    // 2000 is past the end of the state system: 0.
    assert_eq!(s["yValues"], json!([5.0, 5.0, 7.0, 7.0, 0.0]));
    assert!(
        xy.text.contains(r#""yValues":[5.0,5.0,7.0,7.0,0.0]"#),
        "{}",
        xy.text
    );
    assert_eq!(
        model["series"][1]["yValues"],
        json!([0.5, 0.5, 0.5, 0.5, 0.0])
    );
    assert_eq!(s["style"], json!({"values": {"series-type": "line"}}));
    assert_eq!(s["xValuesDescription"]["dataType"], "TIMESTAMP");
    // The states endpoint does not serve an XY output, the data tree does.
    let data = post(
        &app,
        &out(&exp, &format!("data/{SS_XY}/tree")),
        r#"{"parameters":{}}"#,
    )
    .await;
    assert_eq!(tree_entries(data.ok()), entries);
}

fn kernel_like() -> Option<PathBuf> {
    golden("09-kernel-like")
}

/// Brute force reference: every interval of `quark` containing an in-range sample.
fn reference_states(
    ss: &StateSystem,
    quark: i32,
    times: &[i64],
) -> Vec<(i64, i64, Option<String>)> {
    let (lo, hi) = (ss.start_time(), ss.current_end_time());
    let mut v: Vec<_> = ss
        .query_2d(&[quark], lo, hi)
        .unwrap()
        .into_iter()
        .filter(|i| {
            times
                .iter()
                .any(|&t| lo <= t && t <= hi && i.start <= t && t <= i.end)
        })
        .map(|i| {
            (
                i.start,
                (i.end + 1).min(hi),
                sextant_server::values::state_label(&i.value),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn golden_kernel_like_sampling_and_exact_timestamps() {
    let Some(path) = kernel_like() else { return };
    let app = app();
    let (_t, exp) = open(&app, &path, "kernel-like").await;
    let e = get(&app, &format!("/experiments/{exp}")).await;
    assert!(
        e.text.contains(r#""end":1700000000025765430"#),
        "{}",
        e.text
    );
    assert!(e.text.contains(r#""start":1700000000000000000"#));
    let tree = post(&app, &out(&exp, &format!("timeGraph/{EXPLORER}/tree")), r#"{"parameters":{"requested_timerange":{"start":1700000000000000000,"end":1700000000025765430}}}"#).await;
    assert!(tree.text.contains(r#""end":1700000000025765430"#));
    let entries = tree_entries(tree.ok());
    assert_eq!(entries.len(), 3 + 1224);
    // Ids small, unique, parents present.
    let ids: BTreeSet<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), entries.len());
    assert!(ids.iter().all(|&i| (0..(1 << 53)).contains(&i)));
    for e in &entries {
        let p = e["parentId"].as_i64().unwrap();
        assert!(p == -1 || ids.contains(&p));
    }
    // CPUs before Threads, CPU 0..3 in numeric order.
    let cpus = id_of(&entries, "CPUs");
    let cpu_children: Vec<&str> = entries
        .iter()
        .filter(|e| e["parentId"] == cpus)
        .map(|e| e["labels"][0].as_str().unwrap())
        .collect();
    assert_eq!(cpu_children, ["0", "1", "2", "3"]);

    // States of every attribute at several resolutions vs. the brute-force rule.
    let ss = StateSystem::open(&path, None).unwrap();
    let quark_of: HashMap<i64, i32> = entries
        .iter()
        .filter(|e| e["labels"].as_array().unwrap().len() == 2)
        .map(|e| {
            (
                e["id"].as_i64().unwrap(),
                e["labels"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let items: Vec<i64> = quark_of.keys().copied().collect();
    let (start, end) = (1_700_000_000_000_000_000i64, 1_700_000_000_025_765_430i64);
    for (s, e, nb) in [
        (start, end, 200),
        (start + 5_000_000, start + 7_000_000, 1501),
        (start - 1000, end + 1000, 37),
    ] {
        let times = sextant_server::query::sample_times(s, e, Some(nb));
        let a = post(
            &app,
            &out(&exp, &format!("timeGraph/{EXPLORER}/states")),
            &range_body(s, e, nb, &items),
        )
        .await;
        let rows = a.ok()["model"]["rows"].as_array().unwrap().clone();
        assert_eq!(rows.len(), items.len());
        let mut total = 0;
        for row in &rows {
            let q = quark_of[&row["entryId"].as_i64().unwrap()];
            let got: Vec<(i64, i64, Option<String>)> = row["states"]
                .as_array()
                .unwrap()
                .iter()
                .map(|st| {
                    (
                        st["start"].as_i64().unwrap(),
                        st["end"].as_i64().unwrap(),
                        st.get("label").and_then(|l| l.as_str()).map(str::to_string),
                    )
                })
                .collect();
            assert!(got.len() <= times.len());
            assert_eq!(
                got,
                reference_states(&ss, q, &times),
                "quark {q}, range {s}..{e}/{nb}"
            );
            total += got.len();
        }
        assert!(total > 0);
    }
}

#[tokio::test]
async fn directory_trace_has_one_state_system_per_ht_file() {
    let Some(shared) = shared_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        shared.join("golden/ht/09-kernel-like/expected.ht"),
        dir.path().join("kernel.ht"),
    )
    .unwrap();
    std::fs::copy(
        shared.join("golden/ht/10-counters-ongoing/expected.ht"),
        dir.path().join("counters.ht"),
    )
    .unwrap();
    std::fs::write(dir.path().join("README"), "ignored").unwrap();
    let app = app();
    let (_t, exp) = open(&app, dir.path(), "both").await;
    let e = get(&app, &format!("/experiments/{exp}")).await;
    let e = e.ok();
    // Range = union of both state systems.
    assert_eq!(e["start"], 0);
    assert_eq!(e["end"].as_i64(), Some(1_700_000_000_025_765_430));
    let tree = post(
        &app,
        &out(&exp, &format!("timeGraph/{EXPLORER}/tree")),
        r#"{"parameters":{}}"#,
    )
    .await;
    let entries = tree_entries(tree.ok());
    let top: Vec<&str> = entries
        .iter()
        .filter(|en| en["parentId"] == entries[0]["id"])
        .map(|en| en["labels"][0].as_str().unwrap())
        .collect();
    assert_eq!(top, ["counters", "kernel"]);
    assert_eq!(entries.len(), 1 + 2 * 2 + 6 + 1224);
    // XY: counters has numeric attributes, each series answered for its own range.
    let xy_tree = post(
        &app,
        &out(&exp, &format!("XY/{SS_XY}/tree")),
        r#"{"parameters":{}}"#,
    )
    .await;
    let xy_entries = tree_entries(xy_tree.ok());
    let long = xy_entries
        .iter()
        .find(|en| en["labels"][0] == "long")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let xy = post(
        &app,
        &out(&exp, &format!("XY/{SS_XY}/xy")),
        &range_body(0, 100, 11, &[long]),
    )
    .await;
    assert_eq!(
        xy.ok()["model"]["series"][0]["yValues"],
        json!([0.0, 5.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0])
    );
}

/// The requests of tsp.md §8, in order, as a viewer sends them.
#[tokio::test]
async fn viewer_opening_sequence() {
    let Some(path) = kernel_like() else { return };
    let app = app();
    // 1.
    assert_eq!(get(&app, "/health").await.ok()["status"], "UP");
    assert_eq!(get(&app, "/experiments").await.ok(), &json!([]));
    // 2. POST /traces with the base name, 3. POST /experiments.
    let t = post(
        &app,
        "/traces",
        &json!({"parameters": {"name": "expected.ht", "uri": path}}).to_string(),
    )
    .await;
    let trace = t.ok()["UUID"].as_str().unwrap().to_string();
    let e = post(
        &app,
        "/experiments",
        &json!({"parameters": {"name": "expected.ht", "traces": [trace]}}).to_string(),
    )
    .await;
    let exp = e.ok()["UUID"].as_str().unwrap().to_string();
    // 4.
    let ms = get(&app, &out(&exp, "markerSets")).await;
    assert_eq!(
        ms.ok(),
        &json!({"model": [], "status": "COMPLETED", "statusMessage": "Completed"})
    );
    // 5. Poll until COMPLETED; start < end.
    let e = wait_completed(&app, &format!("/experiments/{exp}"))
        .await
        .json;
    let (start, end) = (e["start"].as_i64().unwrap(), e["end"].as_i64().unwrap());
    assert!(start < end);
    // 6.
    let outputs = get(&app, &format!("/experiments/{exp}/outputs")).await;
    let outputs = outputs.ok().as_array().unwrap().clone();
    for o in &outputs {
        let id = o["id"].as_str().unwrap();
        assert!(id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".:_".contains(c)));
    }
    let tg = outputs.iter().find(|o| o["type"] == "TIME_GRAPH").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let xy = outputs
        .iter()
        .find(|o| o["type"] == "TREE_TIME_XY")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // 8. Time graph: categories, style, tree (polled while RUNNING), states + annotations, arrows, tooltip.
    get(&app, &out(&exp, &format!("{tg}/annotations")))
        .await
        .ok();
    let styles = post(
        &app,
        &out(&exp, &format!("{tg}/style")),
        r#"{"parameters":{}}"#,
    )
    .await;
    let styles = styles.ok()["model"]["styles"].as_object().unwrap().clone();
    let range =
        json!({"parameters": {"requested_timerange": {"start": start, "end": end}}}).to_string();
    let tree = loop {
        let tree = post(&app, &out(&exp, &format!("timeGraph/{tg}/tree")), &range).await;
        if tree.ok()["status"] != "RUNNING" {
            break tree.json;
        }
    };
    assert_eq!(tree["status"], "COMPLETED");
    let ids: Vec<i64> = tree["model"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let visible = &ids[..ids.len().min(60)];
    let body = range_body(start, end, 1001, visible);
    let states = post(&app, &out(&exp, &format!("timeGraph/{tg}/states")), &body).await;
    let rows = states.ok()["model"]["rows"].as_array().unwrap().clone();
    assert!(!rows.is_empty());
    for row in &rows {
        assert!(visible.contains(&row["entryId"].as_i64().unwrap()));
        let mut previous_end = None;
        for st in row["states"].as_array().unwrap() {
            let (s, e) = (st["start"].as_i64().unwrap(), st["end"].as_i64().unwrap());
            assert!(s <= e && start <= s && e <= end);
            if let Some(pe) = previous_end {
                assert!(s >= pe, "states overlap");
            }
            previous_end = Some(e);
            let key = st["style"]["parentKey"].as_str().unwrap();
            assert!(
                styles.contains_key(key),
                "style key {key} missing from /style"
            );
        }
    }
    let ann = post(&app, &out(&exp, &format!("{tg}/annotations")), &body).await;
    assert_eq!(ann.ok()["model"]["annotations"], json!({}));
    let arrows = post(
        &app,
        &out(&exp, &format!("timeGraph/{tg}/arrows")),
        &range_body(start, end, 1001, &[]),
    )
    .await;
    assert!(arrows.ok()["model"].is_array());
    let row = rows
        .iter()
        .find(|r| r["states"].as_array().unwrap().len() > 1)
        .unwrap();
    let st = &row["states"][0];
    let tip = json!({"parameters": {"requested_times": [st["start"]], "requested_items": [row["entryId"]],
        "requested_element": {"elementType": "state", "time": st["start"], "duration": 10}}});
    let tip = post(
        &app,
        &out(&exp, &format!("timeGraph/{tg}/tooltip")),
        &tip.to_string(),
    )
    .await;
    let model = tip.ok()["model"].as_object().unwrap().clone();
    assert!(model["Full attribute path"].as_str().unwrap().contains('/'));
    // 9. XY: tree, then xy for the isDefault entries with nbTimes = chart width.
    let xy_tree = post(&app, &out(&exp, &format!("XY/{xy}/tree")), &range).await;
    let defaults: Vec<i64> = tree_entries(xy_tree.ok())
        .iter()
        .filter(|e| e["isDefault"] == true)
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(!defaults.is_empty());
    let data = post(
        &app,
        &out(&exp, &format!("XY/{xy}/xy")),
        &range_body(start, end, 800, &defaults),
    )
    .await;
    let series = data.ok()["model"]["series"].as_array().unwrap().clone();
    assert_eq!(series.len(), defaults.len());
    let expected_x = sextant_server::query::sample_times(start, end, Some(800));
    for s in &series {
        let x: Vec<i64> = s["xValues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(x, expected_x);
        assert_eq!(s["yValues"].as_array().unwrap().len(), x.len());
    }
    assert!(data.text.contains("1700000000025765430"));
    // Close: experiment, then trace.
    delete(&app, &format!("/experiments/{exp}")).await.ok();
    delete(&app, &format!("/traces/{trace}")).await.ok();
    assert_eq!(get(&app, "/traces").await.ok(), &json!([]));
}
