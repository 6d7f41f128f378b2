//! Loading, schema validation, compile errors, run errors, history-tree output and
//! the pipeline provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;
use sextant_trace::{StubTimeUnit, XmlStubTrace};
use sextant_xml::{
    build_history_tree, build_in_memory, dom, load_bytes, load_file, validate, XmlError,
};
use sht::{StateSystemQuerier, StateValue};

/// Names of the elements an extension schema adds to the `extra` substitution group.
fn extra_elements(xsd: &Path) -> Vec<String> {
    let root = dom::parse(&std::fs::read(xsd).unwrap(), xsd).unwrap();
    let mut els = Vec::new();
    root.descendants_named("xs:element", &mut els);
    els.iter()
        .filter(|e| e.attr("substitutionGroup") == Some("extra"))
        .filter_map(|e| e.attr("name").map(str::to_string))
        .collect()
}

#[test]
fn xsd_validation_cases_match_trace_compass() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures/xml/xsd-validation");
    let exp: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut checked = 0;
    for c in exp["checks"].as_array().unwrap() {
        let file = dir.join(c["file"].as_str().unwrap());
        let extra = c["extra_xsd"]
            .as_str()
            .map(|x| extra_elements(&dir.join(x)))
            .unwrap_or_default();
        let root = dom::parse(&std::fs::read(&file).unwrap(), &file).unwrap();
        let got = validate::validate_with_extra(&root, &file, &extra);
        let want = c["valid"].as_bool().unwrap();
        assert_eq!(got.is_ok(), want, "{}: {got:?}", file.display());
        if !want {
            let e = got.unwrap_err();
            assert!(
                matches!(e, XmlError::Schema { line, .. } if line > 1),
                "{e}"
            );
        }
        if !extra.is_empty() {
            assert!(
                validate::validate(&root, &file).is_err(),
                "needs the extension schema"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, exp["checks"].as_array().unwrap().len());
}

#[test]
fn every_shared_analysis_file_loads_and_compiles() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for d in [
        "fixtures/xml-real",
        "fixtures/openstack-rabbitmq/nova",
        "fixtures/openstack-rabbitmq/new_xperiment",
    ] {
        for e in std::fs::read_dir(shared.join(d)).unwrap().flatten() {
            let p = e.path();
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            if p.extension().is_some_and(|x| x == "xml") && text.contains("<tmfxml") {
                files.push(p);
            }
        }
    }
    for c in sextant_tests::case_dirs(&shared, "fixtures/xml") {
        for f in ["analysis.xml", "view.xml"] {
            if c.join(f).is_file() {
                files.push(c.join(f));
            }
        }
    }
    assert!(files.len() > 10);
    for f in files {
        let file = load_file(&f).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            file.rejected.is_empty(),
            "{}: {:?}",
            f.display(),
            file.rejected
        );
        assert!(
            !file.analyses.is_empty() || !file.views.is_empty(),
            "{}",
            f.display()
        );
    }
}

fn load_err(text: &str) -> XmlError {
    match load_bytes(text.as_bytes(), Path::new("bad.xml")) {
        Err(e) => {
            assert!(e.to_string().starts_with("bad.xml:"), "names the file: {e}");
            e
        }
        Ok(f) => {
            assert_eq!(f.rejected.len(), 1, "expected one rejected analysis");
            f.rejected.into_iter().next().unwrap()
        }
    }
}

fn sp(body: &str) -> String {
    format!("<tmfxml>\n<stateProvider id=\"t\" version=\"1\">\n{body}\n</stateProvider>\n</tmfxml>")
}

const CHANGE: &str = "<eventHandler eventName=\"e\"><stateChange>\
<stateAttribute type=\"constant\" value=\"a\"/><stateValue type=\"int\" value=\"1\"/>\
</stateChange></eventHandler>";

#[test]
fn malformed_xml_names_file_and_line() {
    let e = load_err("<tmfxml>\n<stateProvider id=\"t\" version=\"1\">\n</tmfxml>");
    assert!(matches!(e, XmlError::Malformed { line: 3, .. }), "{e}");
    let e = load_err("<tmfxml>");
    assert!(matches!(e, XmlError::Malformed { .. }), "{e}");
    let deep = "<a>".repeat(10_000);
    let e = load_err(&deep);
    assert!(matches!(e, XmlError::Malformed { .. }), "{e}");
}

#[test]
fn schema_violations_name_line_and_element() {
    let cases = [
        (sp("<bogus/>"), 3, "bogus"),
        (
            sp(&CHANGE.replace("type=\"int\"", "type=\"integer\"")),
            3,
            "stateValue",
        ),
        (
            sp("<eventHandler><stateChange/></eventHandler>"),
            3,
            "eventHandler",
        ),
        (
            sp(&format!("{CHANGE}\n<definedValue name=\"x\" value=\"1\"/>")),
            4,
            "definedValue",
        ),
        (
            sp(&CHANGE.replace("<stateChange>", "<stateChange foo=\"1\">")),
            3,
            "stateChange",
        ),
        (
            "<tmfxml>\n<xyView id=\"v\"/>\n</tmfxml>".to_string(),
            2,
            "xyView",
        ),
        ("<other/>".to_string(), 1, "other"),
    ];
    for (text, line, element) in cases {
        match load_err(&text) {
            XmlError::Schema {
                line: l,
                element: el,
                ..
            } => {
                assert_eq!((l, el.as_str()), (line, element), "{text}")
            }
            other => panic!("{text}: expected a schema error, got {other}"),
        }
    }
}

#[test]
fn compile_errors_name_line_and_element() {
    let cases = [
        (
            CHANGE.replace("value=\"1\"", "value=\"abc\""),
            "stateValue",
            "not a valid int",
        ),
        (
            CHANGE.replace(
                "type=\"constant\" value=\"a\"",
                "type=\"location\" value=\"nowhere\"",
            ),
            "stateAttribute",
            "undefined location",
        ),
        (
            CHANGE.replace(
                "<stateValue type=\"int\" value=\"1\"/>",
                "<stateValue type=\"int\" value=\"1\" mappingGroup=\"g\"/>",
            ),
            "stateValue",
            "undefined mappingGroup",
        ),
        (
            CHANGE.replace(
                "<stateValue type=\"int\" value=\"1\"/>",
                "<stateValue type=\"script\" value=\"var x = 1\"/>",
            ),
            "stateValue",
            "outside the JavaScript subset",
        ),
        (
            CHANGE.replace("value=\"1\"", "value=\"$UNDEFINED\""),
            "stateValue",
            "undefined definedValue",
        ),
    ];
    for (body, element, needle) in cases {
        match load_err(&sp(&body)) {
            XmlError::Compile {
                element: el,
                message,
                line,
                ..
            } => {
                assert_eq!(el, element, "{body}");
                assert_eq!(line, 3);
                assert!(message.contains(needle), "{message}");
            }
            other => panic!("{body}: expected a compile error, got {other}"),
        }
    }
    // A version that is not an int makes the analysis unavailable.
    let text = "<tmfxml><stateProvider id=\"t\" version=\"99999999999\">".to_string()
        + CHANGE
        + "</stateProvider></tmfxml>";
    assert!(matches!(load_err(&text), XmlError::Compile { .. }));
}

fn stub(text: &str) -> XmlStubTrace {
    XmlStubTrace::parse(
        text.as_bytes(),
        Path::new("t.xml"),
        "t.xml".into(),
        StubTimeUnit::Nanoseconds,
    )
    .unwrap()
}

#[test]
fn a_value_of_the_wrong_type_fails_the_analysis_with_its_time() {
    // Integer attribute, then a long increment: Trace Compass fails the analysis.
    let body = "<eventHandler eventName=\"a\"><stateChange>\
<stateAttribute type=\"constant\" value=\"x\"/><stateValue type=\"int\" value=\"1\"/></stateChange></eventHandler>\
<eventHandler eventName=\"b\"><stateChange>\
<stateAttribute type=\"constant\" value=\"x\"/><stateValue type=\"long\" value=\"1\" increment=\"true\"/></stateChange></eventHandler>";
    let file = load_bytes(sp(body).as_bytes(), Path::new("t.xml")).unwrap();
    let trace = stub(
        "<trace><event timestamp=\"1\" name=\"a\"/><event timestamp=\"4\" name=\"b\"/></trace>",
    );
    let err = build_in_memory(&file.analyses[0], &trace)
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("at 4 ns"), "{err}");
    // Same for a forcedType on a malformed string.
    let body = "<eventHandler eventName=\"a\"><stateChange>\
<stateAttribute type=\"constant\" value=\"x\"/><stateValue type=\"string\" value=\"oh!\" forcedType=\"int\"/></stateChange></eventHandler>";
    let file = load_bytes(sp(body).as_bytes(), Path::new("t.xml")).unwrap();
    let err = build_in_memory(&file.analyses[0], &trace)
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("oh!"), "{err}");
}

#[test]
fn a_null_path_element_skips_the_change() {
    let body = "<eventHandler eventName=\"a\"><stateChange>\
<stateAttribute type=\"constant\" value=\"x\"/><stateAttribute type=\"eventField\" value=\"missing\"/>\
<stateValue type=\"int\" value=\"1\"/></stateChange><stateChange>\
<stateAttribute type=\"null\"/><stateValue type=\"int\" value=\"1\"/></stateChange></eventHandler>";
    let file = load_bytes(sp(body).as_bytes(), Path::new("t.xml")).unwrap();
    let trace = stub(
        "<trace><event timestamp=\"1\" name=\"a\"/><event timestamp=\"4\" name=\"a\"/></trace>",
    );
    let out = build_in_memory(&file.analyses[0], &trace).unwrap();
    let ss = &out.state_system;
    let x = ss.quark(&["x"]).unwrap();
    assert!(ss.attributes().children_of(x).is_empty());
    assert_eq!(ss.query_single(4, x).unwrap().value, StateValue::Null);
}

fn case(shared: &Path, name: &str) -> (Arc<sextant_xml::Program>, XmlStubTrace, PathBuf) {
    let dir = shared.join("fixtures/xml").join(name);
    let exp: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let file = load_file(&dir.join("analysis.xml")).unwrap();
    let prog = Arc::clone(file.analysis(exp["analysis_id"].as_str().unwrap()).unwrap());
    let trace_path = dir.join("trace.xml");
    (prog, XmlStubTrace::open(&trace_path).unwrap(), trace_path)
}

fn all_intervals(ss: &dyn StateSystemQuerier) -> Vec<(i32, i64, i64, StateValue)> {
    let quarks: Vec<i32> = (0..ss.attribute_count() as i32).collect();
    let mut v: Vec<_> = ss
        .query_2d(&quarks, ss.start_time(), ss.current_end_time())
        .unwrap()
        .into_iter()
        .map(|i| (i.quark, i.start, i.end, i.value))
        .collect();
    v.sort_by_key(|x| (x.0, x.1));
    v
}

#[test]
fn history_tree_output_equals_the_in_memory_build() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for name in ["sp-conditions", "pattern-attribute-pool"] {
        let (prog, trace, _) = case(&shared, name);
        let mem = build_in_memory(&prog, &trace).unwrap();
        let path = dir.path().join(format!("{name}.ht"));
        let file = build_history_tree(&prog, &trace, &path).unwrap();
        assert_eq!(
            all_intervals(&file.state_system),
            all_intervals(&mem.state_system),
            "{name}"
        );
        assert!(!dir.path().join(format!("{name}.ht.tmp")).exists());
    }
}

#[test]
fn the_pipeline_provider_gives_the_same_state_system() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    // These cases use long values only, so the pipeline's Long fields change nothing.
    for name in ["sp-conditions", "pattern-consuming-mapping"] {
        let (prog, trace, path) = case(&shared, name);
        let mem = build_in_memory(&prog, &trace).unwrap();
        let mut source = sextant_providers::sources::open(&[path]).unwrap();
        let analyses = vec![sextant_providers::pipeline::Analysis {
            provider: Box::new(sextant_xml::provider::XmlProvider::new(Arc::clone(&prog))),
            output: sextant_providers::pipeline::Output::InMemory,
        }];
        let (_, systems) =
            sextant_providers::pipeline::build(&mut *source, analyses, &Default::default())
                .unwrap();
        assert_eq!(
            all_intervals(&systems[0]),
            all_intervals(&mem.state_system),
            "{name}"
        );
    }
}

#[test]
fn state_provider_pools_and_current_scenario_follow_the_dummy_scenario() {
    // Trace Compass runs state providers with one shared dummy scenario: a pool gives
    // the same attribute for the whole analysis, and #CurrentScenario is the root.
    let body = "<eventHandler eventName=\"a\"><stateChange>\
<stateAttribute type=\"constant\" value=\"P\"/><stateAttribute type=\"pool\"/>\
<stateValue type=\"eventField\" value=\"v\"/></stateChange><stateChange>\
<stateAttribute type=\"constant\" value=\"#CurrentScenario\"/><stateAttribute type=\"constant\" value=\"r\"/>\
<stateValue type=\"eventField\" value=\"v\"/></stateChange></eventHandler>";
    let file = load_bytes(sp(body).as_bytes(), Path::new("t.xml")).unwrap();
    let trace = stub(
        "<trace><event timestamp=\"1\" name=\"a\"><field name=\"v\" value=\"1\" type=\"long\"/></event>\
<event timestamp=\"4\" name=\"a\"><field name=\"v\" value=\"2\" type=\"long\"/></event></trace>",
    );
    let out = build_in_memory(&file.analyses[0], &trace).unwrap();
    let ss = &out.state_system;
    let p = ss.quark(&["P"]).unwrap();
    assert_eq!(ss.attributes().children_of(p).len(), 1);
    let p0 = ss.quark(&["P", "0"]).unwrap();
    assert_eq!(ss.query_single(4, p0).unwrap().value, StateValue::Long(2));
    let r = ss.quark(&["r"]).unwrap();
    assert_eq!(ss.query_single(1, r).unwrap().value, StateValue::Long(1));
}
