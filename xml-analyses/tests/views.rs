//! View entry paths with `$n` references to the ancestors' wildcard captures, and
//! entries taken from another analysis (`analysisId`), as Trace Compass's
//! data-driven output entries build them.

use std::path::Path;

use sextant_trace::{StubTimeUnit, XmlStubTrace};
use sextant_xml::view::{entry_state_system, row, tree, tree_with_analyses, TreeEntry};
use sextant_xml::{build_in_memory, load_bytes, AnalysisOutput, XmlFile};
use sht::StateSystemQuerier;

/// `a` sets `<p>/<c>`, `d` sets `<p>/<c>/<c>`, `e` sets `<p>/<c>/z`, and `b` (other
/// analysis) sets `Res/<p>/<c>`, each to the event's time.
const PROVIDERS: &str = r#"<tmfxml>
<stateProvider id="main" version="1">
<eventHandler eventName="a"><stateChange><stateAttribute type="eventField" value="p"/>
<stateAttribute type="eventField" value="c"/><stateValue type="eventField" value="v"/></stateChange></eventHandler>
<eventHandler eventName="d"><stateChange><stateAttribute type="eventField" value="p"/>
<stateAttribute type="eventField" value="c"/><stateAttribute type="eventField" value="c"/>
<stateValue type="eventField" value="v"/></stateChange></eventHandler>
<eventHandler eventName="e"><stateChange><stateAttribute type="eventField" value="p"/>
<stateAttribute type="eventField" value="c"/><stateAttribute type="constant" value="z"/>
<stateValue type="eventField" value="v"/></stateChange></eventHandler>
</stateProvider>
<stateProvider id="other" version="1">
<eventHandler eventName="b"><stateChange><stateAttribute type="constant" value="Res"/>
<stateAttribute type="eventField" value="p"/><stateAttribute type="eventField" value="c"/>
<stateValue type="eventField" value="v"/></stateChange></eventHandler>
</stateProvider>
VIEWS
</tmfxml>"#;

fn trace(events: &[(i64, &str, &str, &str)]) -> XmlStubTrace {
    let mut s = String::from("<trace>");
    for (t, name, p, c) in events {
        s += &format!(
            "<event timestamp=\"{t}\" name=\"{name}\"><field name=\"p\" value=\"{p}\" type=\"string\"/>\
             <field name=\"c\" value=\"{c}\" type=\"string\"/><field name=\"v\" value=\"{t}\" type=\"long\"/></event>"
        );
    }
    s += "</trace>";
    XmlStubTrace::parse(
        s.as_bytes(),
        Path::new("t.xml"),
        "t.xml".into(),
        StubTimeUnit::Nanoseconds,
    )
    .unwrap()
}

fn load(views: &str) -> XmlFile {
    let text = PROVIDERS.replace("VIEWS", views);
    let file = load_bytes(text.as_bytes(), Path::new("v.xml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(file.rejected.is_empty(), "{:?}", file.rejected);
    file
}

fn build(file: &XmlFile, id: &str, t: &XmlStubTrace) -> AnalysisOutput {
    build_in_memory(file.analysis(id).unwrap(), t).unwrap()
}

/// (name, parent name) of every entry, in id order.
fn shape(entries: &[TreeEntry]) -> Vec<(String, Option<String>)> {
    entries
        .iter()
        .map(|e| (e.name.clone(), e.parent.map(|p| entries[p].name.clone())))
        .collect()
}

fn owned(v: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    v.iter()
        .map(|(n, p)| (n.to_string(), p.map(str::to_string)))
        .collect()
}

#[test]
fn dollar_reference_takes_the_ancestor_capture() {
    let file = load(
        r#"<timeGraphView id="v"><head><analysis id="main"/></head>
<entry path="*"><entry path="$1"><display type="self"/></entry></entry></timeGraphView>"#,
    );
    let t = trace(&[
        (1, "a", "10", "10"),
        (2, "a", "10", "11"),
        (3, "a", "20", "21"),
        (4, "a", "20", "20"),
    ]);
    let out = build(&file, "main", &t);
    let entries = tree(&file.views[0], &out.state_system, "t.xml");
    // Quark 0 is "10": Trace Compass uses an empty parent path for quark 0 (it tests
    // `quark > 0`), so "$1" captures "" and matches no child; "20" (a later quark) gets
    // its "20" child ("10"'s own "10" child is not shown).
    assert_eq!(
        shape(&entries),
        owned(&[
            ("t.xml", None),
            ("10", Some("t.xml")),
            ("20", Some("t.xml")),
            ("20", Some("20")),
        ])
    );
    let child = &entries[3];
    let ss: &dyn StateSystemQuerier = &out.state_system;
    assert_eq!(child.display, Some(ss.quark(&["20", "20"]).unwrap()));
}

#[test]
fn dollar_reference_in_a_deeper_path_and_a_group_that_does_not_exist() {
    let file = load(
        r#"<timeGraphView id="v"><head><analysis id="main"/></head>
<entry path="P*/*"><entry path="$2"><display type="self"/></entry><entry path="$9"/></entry>
</timeGraphView>"#,
    );
    let t = trace(&[
        (1, "d", "Pa", "k"),
        (2, "e", "Pa", "k"),
        (3, "d", "Pb", "m"),
        (4, "e", "Pb", "q"),
    ]);
    let out = build(&file, "main", &t);
    let entries = tree(&file.views[0], &out.state_system, "t.xml");
    // "$2" is the second wildcard of "P*/*" on the parent's path: Pa/k -> "k" (its
    // child k, not z), Pb/q -> "q" (no such child). "$9" names a group the regex
    // lacks (Trace Compass's provider throws): no entry, no panic.
    assert_eq!(
        shape(&entries),
        owned(&[
            ("t.xml", None),
            ("k", Some("t.xml")),
            ("k", Some("k")),
            ("m", Some("t.xml")),
            ("m", Some("m")),
            ("q", Some("t.xml")),
        ])
    );
    let ss: &dyn StateSystemQuerier = &out.state_system;
    assert_eq!(
        entries[2].display,
        Some(ss.quark(&["Pa", "k", "k"]).unwrap())
    );
}

#[test]
fn analysis_id_entries_come_from_the_other_state_system() {
    let file = load(
        r#"<timeGraphView id="v"><head><analysis id="main"/></head>
<entry path="*"><display type="self"/></entry>
<entry path="Res/*" analysisId="other"><entry path="*"><display type="self"/></entry></entry>
<entry path="*" analysisId="missing"/></timeGraphView>"#,
    );
    let t = trace(&[
        (1, "a", "m", "x"),
        (2, "b", "r1", "c1"),
        (3, "b", "r2", "c2"),
    ]);
    let main = build(&file, "main", &t);
    let other = build(&file, "other", &t);
    let other_ss: &dyn StateSystemQuerier = &other.state_system;
    let lookup = |id: &str| (id == "other").then_some(other_ss);
    let entries = tree_with_analyses(&file.views[0], &main.state_system, "t.xml", &lookup);
    assert_eq!(
        shape(&entries),
        owned(&[
            ("t.xml", None),
            ("m", Some("t.xml")),
            ("r1", Some("t.xml")),
            ("c1", Some("r1")),
            ("r2", Some("t.xml")),
            ("c2", Some("r2")),
        ])
    );
    assert_eq!(entries[1].analysis_id, None);
    for e in &entries[2..] {
        assert_eq!(e.analysis_id.as_deref(), Some("other"));
    }
    // The sub-entry's display is a quark of the other state system; its row is there.
    let c1 = entries[3].display.unwrap();
    assert_eq!(c1, other_ss.quark(&["Res", "r1", "c1"]).unwrap());
    let ss_of_c1 =
        entry_state_system(&entries[3], &main.state_system, &lookup).expect("other is known");
    assert!(std::ptr::addr_eq(ss_of_c1, other_ss));
    let states = row(ss_of_c1, c1, 0, 3);
    assert!(states
        .iter()
        .any(|s| s.0 == 2 && s.3.as_deref() == Some("0x2")));

    // Without a way to reach other analyses, those entries are absent.
    let alone = tree(&file.views[0], &main.state_system, "t.xml");
    assert_eq!(
        shape(&alone),
        owned(&[("t.xml", None), ("m", Some("t.xml"))])
    );
}

#[test]
fn entry_range_follows_the_display_attribute() {
    // Trace Compass's data-driven entries span the display attribute's non-null
    // values (the entry attribute "A" itself is never set here).
    let file = load(
        r#"<timeGraphView id="v"><head><analysis id="main"/></head>
<entry path="*"><display type="constant" value="x"/></entry></timeGraphView>"#,
    );
    let t = trace(&[(1, "a", "A", "y"), (5, "a", "A", "x"), (9, "a", "B", "y")]);
    let out = build(&file, "main", &t);
    let entries = tree(&file.views[0], &out.state_system, "t.xml");
    let ss: &dyn StateSystemQuerier = &out.state_system;
    let a = entries.iter().find(|e| e.name == "A").unwrap();
    // The value set at 5 lasts to the end of the history.
    assert_eq!((a.start, a.end), (5, ss.current_end_time()));
    // B has no "x": its display does not resolve, so it has no entry.
    assert!(entries.iter().all(|e| e.name != "B"));
}
