//! Behaviour the shared corpus does not assert (xml-corpus.md §4), checked on small
//! hand-written analyses against values derived by hand from xml-analysis.md.

use std::path::Path;

use sextant_trace::{StubTimeUnit, XmlStubTrace};
use sextant_xml::{build_in_memory, load_bytes, AnalysisOutput};
use sht::{StateSystemQuerier, StateValue};

fn run(analysis: &str, trace: &str) -> AnalysisOutput {
    let file =
        load_bytes(analysis.as_bytes(), Path::new("a.xml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(file.rejected.is_empty(), "{:?}", file.rejected);
    let trace = XmlStubTrace::parse(
        trace.as_bytes(),
        Path::new("t.xml"),
        "t.xml".into(),
        StubTimeUnit::Nanoseconds,
    )
    .unwrap();
    build_in_memory(&file.analyses[0], &trace).unwrap_or_else(|e| panic!("{e}"))
}

fn events(list: &[(i64, &str)]) -> String {
    let mut s = String::from("<trace>");
    for (t, n) in list {
        s += &format!("<event timestamp=\"{t}\" name=\"{n}\"><field name=\"v\" value=\"{t}\" type=\"long\"/></event>");
    }
    s + "</trace>"
}

fn value(out: &AnalysisOutput, path: &[&str], t: i64) -> StateValue {
    let ss = &out.state_system;
    ss.query_single(t, ss.quark(path).unwrap()).unwrap().value
}

#[test]
fn pop_all_empties_the_stack() {
    let a = r#"<tmfxml><stateProvider id="s" version="1">
<eventHandler eventName="push"><stateChange><stateAttribute type="constant" value="st"/>
<stateValue type="eventField" value="v" stack="push"/></stateChange></eventHandler>
<eventHandler eventName="clear"><stateChange><stateAttribute type="constant" value="st"/>
<stateValue type="null" stack="popAll"/></stateChange></eventHandler>
</stateProvider></tmfxml>"#;
    let out = run(
        a,
        &events(&[
            (1, "push"),
            (2, "push"),
            (3, "push"),
            (5, "clear"),
            (6, "push"),
        ]),
    );
    assert_eq!(value(&out, &["st"], 3), StateValue::Int(3));
    assert_eq!(value(&out, &["st", "3"], 4), StateValue::Long(3));
    // Depth then each child is nulled at 5.
    assert_eq!(value(&out, &["st", "1"], 5), StateValue::Null);
    assert_eq!(value(&out, &["st", "3"], 5), StateValue::Null);
    assert_eq!(value(&out, &["st"], 5), StateValue::Null);
    assert_eq!(value(&out, &["st", "1"], 6), StateValue::Long(6));
}

#[test]
fn time_conditions_and_segment_times() {
    // Scenario: "a" starts it; "b" ends it only if less than 5 ns passed in state "wait"
    // and the event is inside [0, 100]; the segment spans begin=v of the event, duration 2.
    let a = r#"<tmfxml><pattern id="p" version="1"><patternHandler>
<test id="quick"><if><condition><elapsedTime unit="ns"><less since="wait" value="5"/></elapsedTime></condition></if></test>
<test id="early"><if><condition><timerange unit="ns"><in begin="0" end="100"/></timerange></condition></if></test>
<action id="seg"><segment><segType segName="s"/><segTime><begin type="eventField" value="v"/><duration type="long" value="2"/></segTime></segment></action>
<action id="mark"><stateChange><stateAttribute type="constant" value="entered"/><stateValue type="eventField" value="v"/></stateChange></action>
<fsm id="f" initial="idle">
  <state id="idle"><transition event="a" target="wait"/></state>
  <state id="wait"><onentry action="mark"/><transition event="b" cond="quick:early" target="done" action="seg"/></state>
  <final id="done"/>
</fsm></patternHandler></pattern></tmfxml>"#;
    let out = run(
        a,
        &events(&[
            (1, "x"),
            (2, "a"),
            (4, "b"),
            (10, "a"),
            (20, "b"),
            (200, "a"),
            (202, "b"),
            (203, "x"),
        ]),
    );
    // Only the b at 4 completes (2 ns after entering wait); b at 20 is too late, b at 202 out of range.
    assert_eq!(out.segments.len(), 1);
    assert_eq!((out.segments[0].start, out.segments[0].end), (4, 6));
    // onentry of wait ran when entering it at 2.
    assert_eq!(value(&out, &["entered"], 2), StateValue::Long(2));
    assert_eq!(value(&out, &["entered"], 10), StateValue::Long(10));
}

#[test]
fn delta_xy_series_differences() {
    use sextant_xml::view::{series, tree};
    let a = r#"<tmfxml><stateProvider id="s" version="1">
<eventHandler eventName="*"><stateChange><stateAttribute type="constant" value="c"/><stateAttribute type="constant" value="n"/>
<stateValue type="long" value="3" increment="true"/></stateChange></eventHandler></stateProvider>
<xyView id="v"><head><analysis id="s"/></head><entry path="c/*" displayType="delta"><display type="self"/></entry></xyView>
</tmfxml>"#;
    let file = load_bytes(a.as_bytes(), Path::new("a.xml")).unwrap();
    let out = run(a, &events(&[(1, "e"), (2, "e"), (4, "e")]));
    let entries = tree(&file.views[0], &out.state_system, "t.xml");
    let n = entries.iter().find(|e| e.name == "n").unwrap();
    // Absolute values at 1..4: 3, 6, 6, 9 -> deltas 3, 0, 3, with y[0] = y[1].
    assert_eq!(
        series(&out.state_system, n, &[1, 2, 3, 4]),
        vec![3.0, 3.0, 0.0, 3.0]
    );
}

#[test]
fn view_entries_link_to_their_parent_by_id() {
    use sextant_xml::view::tree;
    let a = r#"<tmfxml><stateProvider id="s" version="1">
<eventHandler eventName="proc"><stateChange><stateAttribute type="constant" value="Procs"/>
<stateAttribute type="eventField" value="tid"/><stateAttribute type="constant" value="ppid"/>
<stateValue type="eventField" value="ppid"/></stateChange></eventHandler></stateProvider>
<timeGraphView id="v"><head><analysis id="s"/></head>
<entry path="Procs/*"><display type="constant" value="ppid"/><parent type="constant" value="ppid"/></entry>
</timeGraphView></tmfxml>"#;
    let file = load_bytes(a.as_bytes(), Path::new("a.xml")).unwrap();
    let t = "<trace><event timestamp=\"1\" name=\"proc\"><field name=\"tid\" value=\"1\" type=\"long\"/><field name=\"ppid\" value=\"0\" type=\"long\"/></event>\
<event timestamp=\"2\" name=\"proc\"><field name=\"tid\" value=\"2\" type=\"long\"/><field name=\"ppid\" value=\"1\" type=\"long\"/></event></trace>";
    let out = run(a, t);
    let entries = tree(&file.views[0], &out.state_system, "t.xml");
    let names: Vec<(&str, Option<&str>)> = entries
        .iter()
        .map(|e| (e.name.as_str(), e.parent.map(|p| entries[p].name.as_str())))
        .collect();
    // Thread 2's parent value (1) is the id (default: the name) of thread 1's entry.
    assert_eq!(
        names,
        vec![("t.xml", None), ("1", Some("t.xml")), ("2", Some("1"))]
    );
}
