//! Custom text parser traces: multi-line records, cardinalities, event types,
//! extra fields and time stamps as Trace Compass reads them, and bad input.

use std::path::{Path, PathBuf};

use sextant_trace::custom_time::TimestampFormat;
use sextant_trace::custom_txt::{CustomTxtDefinition, CustomTxtError, CustomTxtTrace, INF};
use sextant_trace::custom_xml::CustomEvent;

fn definitions(body: &str) -> Vec<CustomTxtDefinition> {
    let text = format!("<CustomTxtTraceDefinitionList>\n{body}\n</CustomTxtTraceDefinitionList>");
    CustomTxtDefinition::parse_all(&text, Path::new("defs.xml")).unwrap()
}

fn events(def: &CustomTxtDefinition, log: &str) -> Vec<CustomEvent> {
    CustomTxtTrace::from_text(def, Path::new("log.txt"), log.to_string())
        .unwrap()
        .read_all()
        .unwrap()
}

/// A syslog-like format: a dated first line, then any number of continuation
/// lines appended to the message.
const MULTI_LINE: &str = r#"<Definition name="multi">
<TimeStampOutputFormat>yyyy-MM-dd HH:mm:ss.SSS</TimeStampOutputFormat>
<InputLine>
<Cardinality max="2147483647" min="0"/>
<RegEx>(\S+ \S+) \[(\w+)\] (.*\S)</RegEx>
<InputData action="0" format="dd/MM/yyyy HH:mm:ss:SSS" name="Timestamp" tag="TIMESTAMP"/>
<InputData action="0" name="level"/>
<InputData action="0" name="Message" tag="MESSAGE"/>
<InputLine>
<Cardinality max="2147483647" min="0"/>
<RegEx>\s+(.*\S)</RegEx>
<InputData action="2" tag="MESSAGE"/>
</InputLine>
</InputLine>
<OutputColumn name="Timestamp" tag="TIMESTAMP"/>
<OutputColumn name="level"/>
<OutputColumn name="Message" tag="MESSAGE"/>
</Definition>"#;

#[test]
fn multi_line_records_round_trip() {
    let defs = definitions(MULTI_LINE);
    let def = &defs[0];
    assert_eq!(def.trace_type_id(), "custom.txt.trace:Custom Text:multi");
    assert_eq!(def.inputs[0].cardinality.max, INF);
    // (day, ms of day, level, message lines)
    let records: [(u32, u64, &str, &[&str]); 3] = [
        (3, 45_296_789, "INFO", &["started", "pid 42"]),
        (3, 45_297_001, "WARN", &["disk almost full"]),
        (4, 1, "ERROR", &["crash", "  at main", "  at start"]),
    ];
    let mut log = String::from("garbage before the first record\n");
    let mut first_lines = Vec::new();
    for (day, ms, level, lines) in records {
        let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        first_lines.push(log.lines().count() + 1);
        log += &format!(
            "{day:02}/05/2021 {h:02}:{m:02}:{s:02}:{milli:03} [{level}] {}\n",
            lines[0]
        );
        for l in &lines[1..] {
            log += &format!("    {l}\n");
        }
    }
    let got = events(def, &log);
    assert_eq!(got.len(), records.len());
    let out = TimestampFormat::new("yyyy-MM-dd HH:mm:ss.SSS").unwrap();
    let day0 = out.parse("2021-05-01 00:00:00.000").unwrap();
    for (((day, ms, level, lines), e), line) in records.iter().zip(&got).zip(&first_lines) {
        let want_ns = day0 + (*day as i64 - 1) * 86_400_000_000_000 + *ms as i64 * 1_000_000;
        assert_eq!(e.timestamp_ns, want_ns);
        assert_eq!(e.field("Timestamp"), Some(out.format(want_ns).as_str()));
        assert_eq!(e.field("level"), Some(*level));
        let message: Vec<&str> = lines.iter().map(|l| l.trim()).collect();
        assert_eq!(e.field("Message"), Some(message.join(" | ").as_str()));
        assert_eq!(e.event_type, "multi");
        assert_eq!(e.line, *line);
        assert_eq!(e.fields.len(), 3);
    }
}

const MANDATORY: &str = r#"<Definition name="pairs">
<InputLine>
<Cardinality max="1" min="1"/>
<RegEx>START (\d+)</RegEx>
<InputData action="0" format="T" name="Timestamp" tag="TIMESTAMP"/>
<InputLine>
<Cardinality max="1" min="1"/>
<RegEx>DATA (\w+)</RegEx>
<InputData action="0" name="data"/>
</InputLine>
</InputLine>
<OutputColumn name="data"/>
</Definition>"#;

#[test]
fn mandatory_lines_are_waited_for_as_trace_compass_does() {
    let def = &definitions(MANDATORY)[0];
    // START 3 comes while record 2 still waits for its DATA line: Trace Compass
    // skips it; the final START 4 lacks its DATA line and is dropped.
    let log = "START 1\nDATA a\nSTART 2\nSTART 3\nDATA c\nnoise\nSTART 4\n";
    let got: Vec<(i64, String)> = events(def, log)
        .into_iter()
        .map(|e| {
            (
                e.timestamp_ns / 1_000_000_000,
                e.field("data").unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, [(1, "a".to_string()), (2, "c".to_string())]);
}

const TYPES_AND_EXTRAS: &str = r#"<Definition category="Logs" name="kv">
<InputLine>
<Cardinality max="2147483647" min="0"/>
<RegEx>(\d+) net (\w+)=(\w+)</RegEx>
<EventType>network</EventType>
<InputData action="0" format="Tn" name="Timestamp" tag="TIMESTAMP"/>
<InputData action="0" name="Extra field name" tag="EXTRA_FIELD_NAME"/>
<InputData action="2" name="Extra field value" tag="EXTRA_FIELD_VALUE"/>
</InputLine>
<InputLine>
<Cardinality max="2147483647" min="0"/>
<RegEx>(\d+) (\w+) (.*)</RegEx>
<InputData action="0" format="Tn" name="Timestamp" tag="TIMESTAMP"/>
<InputData action="0" name="Event type" tag="EVENT_TYPE"/>
<InputData action="0" name="Message" tag="MESSAGE"/>
</InputLine>
<OutputColumn name="Timestamp" tag="TIMESTAMP"/>
<OutputColumn name="Message" tag="MESSAGE"/>
</Definition>"#;

#[test]
fn event_types_extra_fields_and_first_line_order() {
    let defs = definitions(TYPES_AND_EXTRAS);
    let def = &defs[0];
    assert_eq!(def.trace_type_id(), "custom.txt.trace:Logs:kv");
    let log = "10 net rx=512\n20 disk write 4096 bytes\n30 net tx=64\n40 cpu \n";
    let got = events(def, log);
    assert_eq!(got.len(), 4);
    // The first InputLine that matches wins: "net" lines take the first one.
    assert_eq!(
        (got[0].event_type.as_str(), got[0].timestamp_ns),
        ("network", 10)
    );
    assert_eq!(got[0].field("rx"), Some("512"));
    assert_eq!(got[0].field("Message"), Some(""));
    assert_eq!(got[0].field("Timestamp"), None); // no TimeStampOutputFormat
    assert_eq!(
        (got[1].event_type.as_str(), got[1].field("Message")),
        ("disk", Some("write 4096 bytes"))
    );
    assert_eq!(got[2].field("tx"), Some("64"));
    // A group that captures only blanks is ignored: the message stays empty.
    assert_eq!(
        (got[3].event_type.as_str(), got[3].field("Message")),
        ("cpu", Some(""))
    );
}

// ---- bad input ---------------------------------------------------------------------------

fn parse_err(body: &str) -> CustomTxtError {
    let text = format!("<CustomTxtTraceDefinitionList>\n{body}\n</CustomTxtTraceDefinitionList>");
    CustomTxtDefinition::parse_all(&text, Path::new("defs.xml")).unwrap_err()
}

#[test]
fn bad_definitions_give_typed_errors_with_lines() {
    for (body, line, needle) in [
        ("<Definition name=\"r\">\n<InputLine>\n<RegEx>(unclosed</RegEx>\n</InputLine></Definition>", 4, "unclosed"),
        ("<Definition name=\"r\">\n<InputLine><RegEx>a(?=b)</RegEx></InputLine></Definition>", 3, "(?=b)"),
        ("<Definition name=\"r\">\n<InputLine>\n<RegEx>a</RegEx>\n<InputData action=\"x\" name=\"n\"/>\n</InputLine></Definition>", 5, "\"x\""),
        ("<Definition name=\"r\">\n<InputLine><InputData action=\"0\" name=\"n\"/></InputLine></Definition>", 3, "RegEx"),
    ] {
        match parse_err(body) {
            CustomTxtError::InvalidDefinition { line: l, reason, path } => {
                assert_eq!((l, path), (line, PathBuf::from("defs.xml")), "{body}");
                assert!(reason.contains(needle), "{reason}");
            }
            e => panic!("{body}: {e:?}"),
        }
    }
    assert!(matches!(
        parse_err("<Definition name=\"r\">\n<oops></Definition>"),
        CustomTxtError::Xml { line: 3, .. }
    ));
    let wrong_root =
        CustomTxtDefinition::parse_all("<CustomXMLTraceDefinitionList/>", Path::new("d"));
    assert!(matches!(
        wrong_root,
        Err(CustomTxtError::NotADefinitionList { .. })
    ));
    // Like Trace Compass: a line with an unreadable cardinality is dropped, and
    // an unnamed definition too.
    let defs = definitions(
        "<Definition name=\"c\"><InputLine><Cardinality min=\"one\" max=\"1\"/><RegEx>a</RegEx></InputLine>\
         <InputLine><RegEx>b</RegEx></InputLine></Definition><Definition><InputLine><RegEx>c</RegEx></InputLine></Definition>",
    );
    assert_eq!(defs.len(), 1);
    assert_eq!(
        defs[0]
            .inputs
            .iter()
            .map(|l| l.regex.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
}

#[test]
fn unusable_definitions_and_files_are_refused() {
    let empty = &definitions("<Definition name=\"e\"/>")[0];
    assert!(matches!(
        CustomTxtTrace::from_text(empty, Path::new("l"), String::new()),
        Err(CustomTxtError::NoInputLine { .. })
    ));
    let bad_ts = &definitions(
        "<Definition name=\"t\"><InputLine><RegEx>(.*)</RegEx>\
         <InputData action=\"0\" format=\"HHmmssSSS\" tag=\"TIMESTAMP\"/></InputLine></Definition>",
    )[0];
    assert!(matches!(
        CustomTxtTrace::from_text(bad_ts, Path::new("l"), String::new()),
        Err(CustomTxtError::BadPattern { .. })
    ));
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.txt");
    let def = &definitions(MULTI_LINE)[0];
    assert!(
        matches!(CustomTxtTrace::open(def, &missing), Err(CustomTxtError::Io { path, .. }) if path == missing)
    );
    let binary = tmp.path().join("bin.log");
    std::fs::write(&binary, b"01/01/2020 00:00:00:000 [I] x\n\0\n").unwrap();
    assert!(matches!(
        CustomTxtTrace::open(def, &binary),
        Err(CustomTxtError::NotText { offset: 30, .. })
    ));
    let defs_file = tmp.path().join("defs.xml");
    std::fs::write(
        &defs_file,
        format!("<CustomTxtTraceDefinitionList>{MULTI_LINE}</CustomTxtTraceDefinitionList>"),
    )
    .unwrap();
    assert!(CustomTxtDefinition::load(&defs_file, "Custom Text", "multi").is_ok());
    assert!(matches!(
        CustomTxtDefinition::load(&defs_file, "Custom Text", "other"),
        Err(CustomTxtError::DefinitionNotFound { .. })
    ));
    // A log with no matching line has no records; an unreadable time stamp is 0.
    assert!(events(def, "nothing here\n").is_empty());
    let e = events(def, "99/99/99 xx:yy [I] m\n");
    assert_eq!(
        (e.len(), e[0].timestamp_ns, e[0].field("Timestamp")),
        (1, 0, None)
    );
}

mod no_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Arbitrary logs give records or errors, never a panic or a hang.
        #[test]
        fn arbitrary_logs(log in "(START [0-9]{1,3}\n|DATA [a-z]{1,3}\n|\\s+x\n|[0-9/: \\[\\]A-Za-zé]{0,12}\n){0,30}") {
            for body in [MULTI_LINE, MANDATORY, TYPES_AND_EXTRAS] {
                let def = &definitions(body)[0];
                let trace = CustomTxtTrace::from_text(def, Path::new("l"), log.clone()).unwrap();
                prop_assert!(trace.events().count() <= log.lines().count());
            }
        }
    }
}

#[test]
fn confidence_rates_files_as_trace_compass_does() {
    let tmp = tempfile::tempdir().unwrap();
    let def = &definitions(MANDATORY)[0];
    let write = |name: &str, content: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    // First lines have one group: each counts 1 + 1/2; other lines count 0.
    let all = write("all.log", "START 1\nSTART 2\n");
    assert_eq!(CustomTxtTrace::confidence(def, &all).unwrap(), 150);
    let half = write("half.log", "START 1\nDATA a\nSTART 2\nDATA b\n");
    assert_eq!(CustomTxtTrace::confidence(def, &half).unwrap(), 75);
    let none = write("none.log", "hello\n");
    assert_eq!(CustomTxtTrace::confidence(def, &none).unwrap(), 0);
    assert!(matches!(
        CustomTxtTrace::confidence(def, &tmp.path().join("missing")),
        Err(CustomTxtError::Io { .. })
    ));
}
