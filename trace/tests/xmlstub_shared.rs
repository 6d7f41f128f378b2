//! XML stub traces: every stub trace of the shared material opens, and agrees with an
//! independent plain-text scan of the file; each class of bad input gives its typed error.

use std::path::{Path, PathBuf};

use sextant_trace::{StubTimeUnit, StubValue, XmlStubError, XmlStubTrace};

/// `.xml` files under `dir` (recursively) whose root element is `<trace>`.
fn stub_traces(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            stub_traces(&p, out);
        } else if p.extension().is_some_and(|e| e == "xml") {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            if root_is_trace(&text) {
                out.push(p);
            }
        }
    }
}

/// First element name after comments and declarations, found without an XML parser.
fn root_is_trace(text: &str) -> bool {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("<!--") {
            match r.find("-->") {
                Some(i) => rest = &r[i + 3..],
                None => return false,
            }
        } else if let Some(r) = rest.strip_prefix("<?") {
            match r.find("?>") {
                Some(i) => rest = &r[i + 2..],
                None => return false,
            }
        } else {
            return rest.starts_with("<trace>") || rest.starts_with("<trace ");
        }
    }
}

/// `(timestamp, name)` of each `<event` tag, scanned as text (attributes in any order).
fn scan_events(text: &str) -> Vec<(i64, String)> {
    let attr = |tag: &str, key: &str| -> String {
        let pat = format!(" {key}=\"");
        let start = tag.find(&pat).expect("attribute present") + pat.len();
        tag[start..][..tag[start..].find('"').unwrap()].to_string()
    };
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("<event ") {
        let tag_end = rest[i..].find('>').unwrap() + i;
        let tag = &rest[i..tag_end];
        out.push((attr(tag, "timestamp").parse().unwrap(), attr(tag, "name")));
        rest = &rest[tag_end..];
    }
    out
}

fn shared_stub_traces() -> Option<Vec<PathBuf>> {
    let shared = sextant_tests::shared_dir()?;
    let mut files = Vec::new();
    for dir in ["traces/xmlstub", "golden", "fixtures"] {
        stub_traces(&shared.join(dir), &mut files);
    }
    files.sort();
    Some(files)
}

#[test]
fn every_shared_stub_trace_opens_and_matches_a_text_scan() {
    let Some(files) = shared_stub_traces() else {
        return;
    };
    let shared = sextant_tests::shared_dir().unwrap();
    for required in [
        "traces/xmlstub/lttng_kernel_analysis.xml",
        "golden/diskio/simple_requests/trace.xml",
        "fixtures/xml/sp-conditions/trace.xml",
    ] {
        let p = shared.join(required);
        assert!(
            files.contains(&p),
            "{} not found as a stub trace",
            p.display()
        );
    }
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let trace = XmlStubTrace::open(path).unwrap_or_else(|e| panic!("{e}"));
        let scanned = scan_events(&text);
        let got: Vec<(i64, String)> = trace
            .events()
            .iter()
            .map(|e| (e.timestamp, e.name.clone()))
            .collect();
        assert_eq!(got, scanned, "{}", path.display());
        assert_eq!(
            trace.name(),
            path.file_name().unwrap().to_str().unwrap(),
            "trace name is the file name"
        );
        assert_eq!(trace.start_time(), scanned.first().map(|s| s.0));
        let mut names: Vec<&str> = scanned.iter().map(|s| s.1.as_str()).collect();
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(*n));
        assert_eq!(trace.event_names(), names, "{}", path.display());
        // The CPU aspect exists only with set_aspects declaring cpu, and mirrors the cpu field.
        for e in trace.events() {
            let cpu_field = e.field("cpu").and_then(StubValue::as_int);
            if trace.has_cpu_aspect() {
                assert_eq!(
                    e.cpu.map(i64::from),
                    cpu_field,
                    "{}:{}",
                    path.display(),
                    e.line
                );
            } else {
                assert_eq!(e.cpu, None);
            }
        }
    }
}

#[test]
fn field_types_follow_the_type_attribute() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    let path = shared.join("traces/xmlstub/lttng_kernel_analysis.xml");
    let text = std::fs::read_to_string(&path).unwrap();
    let trace = XmlStubTrace::open(&path).unwrap();
    assert!(trace.has_cpu_aspect());
    assert_eq!(trace.aspects(), ["cpu".to_string()]);
    // Compare each event's fields with the <field> tags between its <event> and </event>.
    let mut chunks = text.split("<event ").skip(1);
    for event in trace.events() {
        let chunk = chunks.next().unwrap();
        let body = &chunk[..chunk.find("</event>").unwrap_or(chunk.len())];
        let declared: Vec<(String, String, String)> = body
            .split("<field ")
            .skip(1)
            .map(|f| {
                let get = |k: &str| {
                    let s = f.find(&format!("{k}=\"")).unwrap() + k.len() + 2;
                    f[s..][..f[s..].find('"').unwrap()].to_string()
                };
                (get("name"), get("value"), get("type"))
            })
            .collect();
        assert_eq!(event.fields.len(), declared.len());
        for ((name, value), (dname, dvalue, dtype)) in event.fields.iter().zip(&declared) {
            assert_eq!(name, dname);
            match (dtype.as_str(), value) {
                ("int", StubValue::Int(v)) | ("long", StubValue::Long(v)) => {
                    assert_eq!(v.to_string(), *dvalue)
                }
                ("string" | "double", StubValue::Str(s)) => assert_eq!(s, dvalue),
                other => panic!("field {name}: unexpected {other:?}"),
            }
        }
    }
}

fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.xml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn open_err(text: &str) -> XmlStubError {
    let (_dir, path) = write(text);
    let err = XmlStubTrace::open(&path).expect_err("bad input must be rejected");
    assert!(
        err.to_string().contains("bad.xml"),
        "error names the file: {err}"
    );
    err
}

#[test]
fn missing_file_is_an_io_error() {
    let err = XmlStubTrace::open(Path::new("/nonexistent/x.xml")).unwrap_err();
    assert!(matches!(err, XmlStubError::Io { .. }), "{err}");
}

#[test]
fn malformed_xml_names_the_line() {
    let err = open_err("<trace>\n<event timestamp=\"1\" name=\"a\">\n</trace>\n");
    assert!(
        matches!(err, XmlStubError::Malformed { line: 3, .. }),
        "{err}"
    );
    let err = open_err("<trace>\n<event timestamp=\"1\" name=\"a\">\n");
    assert!(matches!(err, XmlStubError::Malformed { .. }), "{err}");
}

#[test]
fn schema_violations_name_the_line_and_element() {
    let cases = [
        ("<events/>", 1, "root element"),
        ("<trace>\n<event timestamp=\"1\"/>\n</trace>", 2, "\"name\""),
        ("<trace>\n<event name=\"a\"/>\n</trace>", 2, "\"timestamp\""),
        (
            "<trace>\n<event timestamp=\"1\" name=\"a\">\n<field name=\"f\" value=\"1\" type=\"float\"/></event></trace>",
            3,
            "float",
        ),
        (
            "<trace>\n<event timestamp=\"1\" name=\"a\" extra=\"x\"/>\n</trace>",
            2,
            "extra",
        ),
        ("<trace>\n<event timestamp=\"1\" name=\"a\"/>\nhello</trace>", 3, "hello"),
        (
            "<trace>\n<event timestamp=\"1\" name=\"a\"/>\n<set_aspects/></trace>",
            3,
            "set_aspects",
        ),
        (
            "<trace>\n<event timestamp=\"1\" name=\"a\"><other/></event></trace>",
            2,
            "other",
        ),
        ("<trace/>\n<trace/>", 2, "after"),
    ];
    for (text, want_line, needle) in cases {
        match open_err(text) {
            XmlStubError::Schema { line, message, .. } => {
                assert_eq!(line, want_line, "{text}: {message}");
                assert!(message.contains(needle), "{text}: {message}");
            }
            other => panic!("{text}: expected a schema error, got {other}"),
        }
    }
}

#[test]
fn bad_timestamp_is_rejected() {
    let err = open_err("<trace>\n\n<event timestamp=\"1.5\" name=\"a\"/></trace>");
    assert!(
        matches!(&err, XmlStubError::BadTimestamp { line: 3, value, .. } if value == "1.5"),
        "{err}"
    );
}

#[test]
fn duplicate_field_is_rejected() {
    let err = open_err(
        "<trace><event timestamp=\"1\" name=\"a\">\n<field name=\"f\" value=\"1\" type=\"int\"/>\
         <field name=\"f\" value=\"2\" type=\"int\"/></event></trace>",
    );
    assert!(
        matches!(&err, XmlStubError::DuplicateField { line: 1, field, .. } if field == "f"),
        "{err}"
    );
}

#[test]
fn decreasing_timestamps_are_rejected() {
    let err = open_err(
        "<trace>\n<event timestamp=\"5\" name=\"a\"/>\n<event timestamp=\"4\" name=\"b\"/></trace>",
    );
    assert!(
        matches!(
            err,
            XmlStubError::OutOfOrder {
                line: 3,
                timestamp: 4,
                previous: 5,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn unparsable_numbers_become_zero_or_empty_as_in_trace_compass() {
    let (_dir, path) = write(
        r#"<trace><event timestamp="2" name="a">
        <field name="i" value="3000000000" type="int"/>
        <field name="l" value="x" type="long"/>
        <field name="la" value="1,2,x" type="longArray"/>
        <field name="ia" value="4,5" type="intArray"/>
        <field name="d" value="1.5" type="double"/>
        </event></trace>"#,
    );
    let trace = XmlStubTrace::open(&path).unwrap();
    let e = &trace.events()[0];
    assert_eq!(e.field("i"), Some(&StubValue::Int(0)));
    assert_eq!(e.field("l"), Some(&StubValue::Long(0)));
    assert_eq!(e.field("la"), Some(&StubValue::LongArray(vec![])));
    assert_eq!(e.field("ia"), Some(&StubValue::IntArray(vec![4, 5])));
    assert_eq!(e.field("d"), Some(&StubValue::Str("1.5".into())));
    assert_eq!(e.cpu, None);
}

#[test]
fn seconds_stub_scales_to_nanoseconds() {
    let (_dir, path) = write(r#"<trace><event timestamp="3" name="a"/></trace>"#);
    let ns = XmlStubTrace::open(&path).unwrap();
    let s = XmlStubTrace::open_with_unit(&path, StubTimeUnit::Seconds).unwrap();
    assert_eq!(
        s.events()[0].timestamp,
        ns.events()[0].timestamp * 1_000_000_000
    );
}
