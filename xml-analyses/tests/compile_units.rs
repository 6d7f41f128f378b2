//! `fixtures/xml/compile-units`: single elements compiled in an empty context
//! (Trace Compass's `*CuTest` assertions), compared through a normalised description.

use std::path::Path;

use serde_json::{json, Value as Json};
use sextant_xml::compile::Compiler;
use sextant_xml::dom;
use sextant_xml::program::{AttrElem, Forced, Fsm, SegmentAction, Value, ValueKind};
use sht::StateValue;

fn sv(v: &StateValue) -> Json {
    match v {
        StateValue::Null => json!({"type": "null"}),
        StateValue::Int(i) => json!({"type": "int", "v": i}),
        StateValue::Long(l) => json!({"type": "long", "v": l}),
        StateValue::Double(d) => json!({"type": "double", "v": d}),
        StateValue::String(s) => json!({"type": "string", "v": s.to_string()}),
        StateValue::Custom(_) => json!({"type": "custom"}),
    }
}

fn forced(f: Forced) -> &'static str {
    match f {
        Forced::Int => "int",
        Forced::Long => "long",
        Forced::Double => "double",
        Forced::String => "string",
    }
}

fn attr(a: &AttrElem, fields: &[String]) -> Json {
    match a {
        AttrElem::Constant(c) => json!({"kind": "constant", "value": {"type": "string", "v": c}}),
        AttrElem::CurrentScenario => json!({"kind": "current_scenario"}),
        AttrElem::EventField(id) => json!({"kind": "event_field", "field": fields[*id]}),
        AttrElem::EventName => json!({"kind": "event_name"}),
        AttrElem::Query(p) => {
            json!({"kind": "query", "path": p.iter().map(|x| attr(x, fields)).collect::<Vec<_>>()})
        }
        AttrElem::SelfAttr => json!({"kind": "self"}),
        AttrElem::Pool => json!({"kind": "pool"}),
        AttrElem::Null => json!({"kind": "constant", "value": {"type": "null"}}),
    }
}

fn value(v: &Value, fields: &[String]) -> Json {
    let mut j = match &v.kind {
        ValueKind::Const(c) => json!({"kind": "constant", "value": sv(c)}),
        ValueKind::EventField(id) => json!({"kind": "event_field", "field": fields[*id]}),
        ValueKind::EventName => json!({"kind": "event_name"}),
        ValueKind::Query(p) => {
            json!({"kind": "query", "path": p.iter().map(|x| attr(x, fields)).collect::<Vec<_>>()})
        }
        ValueKind::Peek(p) => {
            json!({"kind": "peek", "path": p.iter().map(|x| attr(x, fields)).collect::<Vec<_>>()})
        }
        ValueKind::Script { source, vars, .. } => {
            let children: serde_json::Map<String, Json> = vars
                .iter()
                .map(|(id, v)| (id.clone(), value(v, fields)))
                .collect();
            // Sextant has one engine; Trace Compass's default (and fallback) is rhino.
            json!({"kind": "script", "script": source, "engine": "rhino", "children": children})
        }
    };
    if let Some(f) = v.forced {
        j["forced_type"] = json!(forced(f));
    }
    j
}

fn segment(s: &SegmentAction, fields: &[String]) -> Json {
    let wrapped = |v: &Option<Value>| match v {
        Some(v) => {
            let mut j = value(v, fields);
            j["wrapped_as"] = json!("long");
            j
        }
        None => Json::Null,
    };
    let content: serde_json::Map<String, Json> = s
        .fields
        .iter()
        .map(|(n, _, v)| {
            (
                n.clone(),
                v.as_ref().map_or(Json::Null, |v| value(v, fields)),
            )
        })
        .collect();
    json!({"kind": "segment", "name": value(&s.name, fields), "begin": wrapped(&s.begin),
           "end": wrapped(&s.end), "duration": wrapped(&s.duration), "fields": content})
}

/// Structural facts the `result_summary` texts state, per case.
fn check_fsm(name: &str, f: &Fsm, c: &Compiler) {
    let initial = &f.states[f.initial];
    let t = |s: &str| f.states.iter().find(|x| x.id == s).unwrap();
    match name {
        "one_state_final" => {
            assert_eq!(initial.id, "state1");
            assert!(initial.is_final && initial.transitions.is_empty());
            assert!(f.preconditions.is_empty() && f.consuming && f.multiple);
        }
        "one_state_loop" | "multiple_actions_and_tests" | "save_and_clear_fields" => {
            let tr = &t("state1").transitions[0];
            assert_eq!(
                tr.event.as_ref().unwrap().regexes[0].as_str(),
                "^(?:sys.*)$"
            );
            assert!(tr.event.as_ref().unwrap().matches("sys_open"));
            assert_eq!(f.states[tr.target].id, "state1");
            let want_actions = if name == "multiple_actions_and_tests" {
                2
            } else {
                1
            };
            assert_eq!(tr.actions.len(), want_actions);
            assert_eq!(tr.conds.len(), want_actions);
            assert_eq!(tr.actions[0], c.ctx.actions["action1"]);
        }
        "with_precondition" => {
            assert_eq!(f.preconditions.len(), 2);
            assert!(f.preconditions[0].event.as_ref().unwrap().matches("sys_x"));
            assert!(f.preconditions[1].event.as_ref().unwrap().matches("test"));
            assert!(f
                .preconditions
                .iter()
                .all(|p| p.conds == vec![c.ctx.tests["test1"]]));
        }
        "initial state" => {
            assert_eq!(initial.id, "initialState");
            assert_eq!(initial.transitions.len(), 1);
            assert_eq!(
                f.states.iter().filter(|s| s.id == "initialState").count(),
                1
            );
        }
        "initial_element" | "valid_no_initial" => assert_eq!(initial.id, "state1"),
        other => panic!("no structural check for fsm case {other}"),
    }
}

fn run_check(c: &Json) -> Result<(), String> {
    let file = Path::new("snippet.xml");
    let xml = c["xml"].as_str().unwrap();
    let el = dom::parse(xml.as_bytes(), file).map_err(|e| e.to_string())?;
    let mut comp = Compiler::new(file);
    if let Some(ctx) = c["context"].as_str() {
        let wrapper = dom::parse(format!("<ctx>{ctx}</ctx>").as_bytes(), file).unwrap();
        comp.locations(&wrapper).unwrap();
    }
    let want_ok = c["compiles"].as_bool().unwrap();
    let result: Result<Json, _> = match c["element"].as_str().unwrap() {
        "stateValue" => comp.value(&el).map(|v| value(&v, &comp.ctx.fields)),
        "stateAttribute" => {
            let mut out = Vec::new();
            comp.attribute(&el, &mut out).map(|()| {
                let list: Vec<Json> = out.iter().map(|a| attr(a, &comp.ctx.fields)).collect();
                if c.get("result_list").is_some() {
                    Json::Array(list)
                } else {
                    list.into_iter().next().unwrap_or(Json::Null)
                }
            })
        }
        "action" => comp.action(&el).map(|i| match &comp.ctx.action_list[i][0] {
            sextant_xml::program::ActionItem::Segment(s) => segment(s, &comp.ctx.fields),
            _ => Json::Null,
        }),
        "fsm" => {
            let fsm_el = if el.name == "doc" {
                for ch in &el.children {
                    match ch.name.as_str() {
                        "test" => comp.test(ch).unwrap(),
                        "action" => {
                            comp.action(ch).unwrap();
                        }
                        _ => {}
                    }
                }
                el.child("fsm").unwrap().clone()
            } else {
                el.clone()
            };
            comp.fsm(&fsm_el).map(|f| {
                if want_ok {
                    check_fsm(c["name"].as_str().unwrap(), &f, &comp);
                }
                Json::Null
            })
        }
        other => panic!("element {other}"),
    };
    match (result, want_ok) {
        (Ok(got), true) => {
            let want = c.get("result").or(c.get("result_list"));
            match want {
                Some(w) if *w != got => Err(format!("want {w}, got {got}")),
                _ => Ok(()),
            }
        }
        (Err(e), false) => {
            // A rejection names the snippet's element.
            assert!(e.to_string().starts_with("snippet.xml:1: <"), "{e}");
            Ok(())
        }
        (Ok(got), false) => Err(format!("compiled but must not: {got}")),
        (Err(e), true) => Err(format!("must compile: {e}")),
    }
}

#[test]
fn every_compile_unit_matches_trace_compass() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    let text =
        std::fs::read_to_string(shared.join("fixtures/xml/compile-units/expected.json")).unwrap();
    let exp: Json = serde_json::from_str(&text).unwrap();
    let checks = exp["checks"].as_array().unwrap();
    let failures: Vec<String> = checks
        .iter()
        .filter_map(|c| run_check(c).err().map(|e| format!("{}: {e}", c["name"])))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        checks.len(),
        failures.join("\n")
    );
}
