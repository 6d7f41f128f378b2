//! Custom XML parser traces: the OpenStack RabbitMQ thesis traces with their own
//! parser definition (`shared/fixtures/openstack-rabbitmq`), Trace Compass's
//! custom-parser semantics on small definitions, and bad input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sextant_trace::custom_time::TimestampFormat;
use sextant_trace::custom_xml::{CustomXmlDefinition, CustomXmlError, CustomXmlTrace, Tag};

fn rabbitmq() -> Option<(PathBuf, CustomXmlDefinition)> {
    let base = sextant_tests::shared_dir()?.join("fixtures/openstack-rabbitmq");
    let defs = CustomXmlDefinition::load_all(&base.join("nova/xml_parser.xml")).unwrap();
    assert_eq!(defs.len(), 1);
    Some((
        base.join("trace/amq.rabbitmq.trace"),
        defs.into_iter().next().unwrap(),
    ))
}

/// Trimmed text of the first `<name>` element in `fragment` (an independent,
/// naive extraction to compare the parser with).
fn raw_text<'a>(fragment: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = fragment.find(&open)? + open.len();
    let end = start + fragment[start..].find(&format!("</{name}>"))?;
    Some(fragment[start..end].trim())
}

#[test]
fn rabbitmq_parser_definition_reads_as_the_readme_describes_it() {
    let Some((_, def)) = rabbitmq() else { return };
    // README: definition `essai`, category `Custom XML`, trace type id
    // `custom.xml.trace:Custom XML:essai`, record element `event`, 78 output
    // columns one of which is the time stamp, format `yyyy-MM-dd HH:mm:ss.SSSSSS`,
    // `event/payload/hostname` → `vm_name`.
    assert_eq!(
        (def.category.as_str(), def.name.as_str()),
        ("Custom XML", "essai")
    );
    assert_eq!(def.trace_type_id(), "custom.xml.trace:Custom XML:essai");
    assert_eq!(def.record_element().unwrap().name, "event");
    assert_eq!(def.outputs.len(), 78);
    assert_eq!(
        def.outputs
            .iter()
            .filter(|c| c.tag == Tag::Timestamp)
            .count(),
        1
    );
    let record = def.record_element().unwrap();
    let ts = record
        .children
        .iter()
        .find(|c| c.name == "timestamp")
        .unwrap();
    assert_eq!(
        ts.data.as_ref().unwrap().format,
        "yyyy-MM-dd HH:mm:ss.SSSSSS"
    );
    let payload = record
        .children
        .iter()
        .find(|c| c.name == "payload")
        .unwrap();
    let hostname = payload
        .children
        .iter()
        .find(|c| c.name == "hostname")
        .unwrap();
    assert_eq!(hostname.data.as_ref().unwrap().name, "vm_name");
    // Other logentry flags below the record element are ignored.
    assert!(record.children.iter().all(|c| c.log_entry));
}

#[test]
fn every_rabbitmq_queue_file_reads_completely() {
    let Some((dir, def)) = rabbitmq() else { return };
    // Record counts stated in the fixture README.
    let readme: BTreeMap<&str, usize> = [
        ("conductor.xml", 74),
        ("reply_626e61e1d2ab41488f1682d68b84996a.xml", 2),
        ("reply_68b8b43fd0844271ae6c01d5a5cb4c8f.xml", 58),
        ("reply_a8490637876045f5998af8df7daede90.xml", 92),
        ("network.xml", 1),
        ("network.yves-G771JM.xml", 2),
        ("scheduler.xml", 1),
        ("compute.yves-G771JM.xml", 1),
        ("_unnamed_queue.xml", 3),
        ("notifications.info.xml", 11),
    ]
    .into_iter()
    .collect();
    let outputs: Vec<&str> = def.outputs.iter().map(|c| c.name.as_str()).collect();
    for (file, want) in readme {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        // Each record opens on its own line with `<event>`.
        assert_eq!(
            text.lines().filter(|l| l.starts_with("<event>")).count(),
            want,
            "{file}"
        );
        assert_eq!(
            CustomXmlTrace::confidence(&def, &path).unwrap(),
            100,
            "{file}"
        );
        let trace = CustomXmlTrace::open(&def, &path).unwrap();
        let events = trace.read_all().unwrap();
        assert_eq!(events.len(), want, "{file}");
        let has_ts = file == "notifications.info.xml";
        for e in &events {
            assert_eq!(e.event_type, "essai");
            // Every column is a field ("" when absent), but the time stamp
            // column only when the record has a time stamp.
            let names: Vec<&str> = e.fields.iter().map(|(n, _)| n.as_str()).collect();
            let expected: Vec<&str> = outputs
                .iter()
                .map(|&n| if n == "Time Stamp" { "Timestamp" } else { n })
                .filter(|&n| has_ts || n != "Timestamp")
                .collect();
            assert_eq!(names, expected, "{file} line {}", e.line);
            if !has_ts {
                assert_eq!(e.timestamp_ns, 0);
            }
            // The record's event_type and method elements agree with the raw text.
            let fragment = &text[e.offset..];
            let fragment = &fragment[..fragment.find("\n<event>").unwrap_or(fragment.len())];
            assert_eq!(
                e.field("event_type").unwrap(),
                raw_text(fragment, "event_type").unwrap_or("")
            );
            assert!(text[e.offset..].starts_with("<event>"));
        }
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    // Howard Hinnant's algorithm, independent of the reader's.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// ns of `yyyy-MM-dd HH:mm:ss.ffffff` in UTC, computed here.
fn utc_ns(s: &str) -> i64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let days = days_from_civil(n(0, 4), n(5, 7), n(8, 10));
    ((days * 24 + n(11, 13)) * 60 + n(14, 16)) * 60 * 1_000_000_000
        + n(17, 19) * 1_000_000_000
        + n(20, 26) * 1000
}

#[test]
fn notifications_follow_the_instance_boot() {
    let Some((dir, def)) = rabbitmq() else { return };
    let path = dir.join("notifications.info.xml");
    let text = std::fs::read_to_string(&path).unwrap();
    let events = CustomXmlTrace::open(&def, &path)
        .unwrap()
        .read_all()
        .unwrap();
    // README: 11 notifications of one instance boot (vm-13960 on host
    // yves-G771JM), 2015-09-16 15:24:28.627866 → 15:24:31.975550:
    // compute.instance.update ×7, scheduler.select_destinations.start/.end,
    // compute.instance.create.start (15:24:29.061258), .create.end (15:24:31.975550);
    // state goes building → active.
    assert_eq!(events.len(), 11);
    let mut types: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &events {
        *types.entry(e.field("event_type").unwrap()).or_default() += 1;
    }
    assert_eq!(types["compute.instance.update"], 7);
    for t in [
        "scheduler.select_destinations.start",
        "scheduler.select_destinations.end",
        "compute.instance.create.start",
        "compute.instance.create.end",
    ] {
        assert_eq!(types[t], 1, "{t}");
    }
    assert_eq!(events[0].timestamp_ns, utc_ns("2015-09-16 15:24:28.627866"));
    let at = |t: &str| {
        events
            .iter()
            .find(|e| e.field("event_type") == Some(t))
            .unwrap()
    };
    assert_eq!(
        at("compute.instance.create.start").timestamp_ns,
        utc_ns("2015-09-16 15:24:29.061258")
    );
    let last = events.last().unwrap();
    assert_eq!(
        last.field("event_type"),
        Some("compute.instance.create.end")
    );
    assert_eq!(last.timestamp_ns, utc_ns("2015-09-16 15:24:31.975550"));
    assert!(events
        .windows(2)
        .all(|w| w[0].timestamp_ns <= w[1].timestamp_ns));
    let out = TimestampFormat::new(&def.timestamp_output_format).unwrap();
    for e in &events {
        // The time stamp column prints the record's own <timestamp> text.
        let fragment = &text[e.offset..];
        assert_eq!(e.field("Timestamp"), raw_text(fragment, "timestamp"));
        assert_eq!(out.format(e.timestamp_ns), e.field("Timestamp").unwrap());
    }
    let instance: Vec<&_> = events
        .iter()
        .filter(|e| e.field("vm_name") != Some(""))
        .collect();
    assert!(instance
        .iter()
        .all(|e| e.field("vm_name") == Some("vm-13960")));
    assert_eq!(instance.first().unwrap().field("state"), Some("building"));
    assert_eq!(instance.last().unwrap().field("state"), Some("active"));
    assert_eq!(last.field("host"), Some("yves-G771JM"));
}

// ---- semantics on small definitions --------------------------------------------------

fn definition(body: &str) -> CustomXmlDefinition {
    let text = format!("<CustomXMLTraceDefinitionList>{body}</CustomXMLTraceDefinitionList>");
    let mut defs = CustomXmlDefinition::parse_all(&text, Path::new("def.xml")).unwrap();
    assert_eq!(defs.len(), 1, "{body}");
    defs.remove(0)
}

fn read(
    def: &CustomXmlDefinition,
    log: &str,
) -> Vec<Result<sextant_trace::custom_xml::CustomEvent, CustomXmlError>> {
    let trace = CustomXmlTrace::from_text(def, Path::new("log.xml"), log.to_string()).unwrap();
    trace.events().collect()
}

const LOG_DEF: &str = r#"<Definition name="log">
  <TimeStampOutputFormat>HH:mm:ss.SSS</TimeStampOutputFormat>
  <InputElement name="log">
    <InputElement logentry="true" name="rec">
      <InputData action="0" format="" name="Ignore"/>
      <Attribute name="t"><InputData action="0" format="Tm" name="Time Stamp"/></Attribute>
      <Attribute name="kind"><InputData action="0" format="" tag="EVENT_TYPE" name=""/></Attribute>
      <InputElement name="msg"><InputData action="2" format="" name="Message"/></InputElement>
      <InputElement name="part"><InputData action="1" format="" name="joined"/></InputElement>
      <InputElement name="k"><InputData action="0" format="" tag="EXTRA_FIELD_NAME" name=""/></InputElement>
      <InputElement name="v"><InputData action="0" format="" tag="EXTRA_FIELD_VALUE" name=""/></InputElement>
      <InputElement name="blob"><InputData action="0" format="" name="blob"/></InputElement>
    </InputElement>
  </InputElement>
  <OutputColumn name="Time Stamp"/>
  <OutputColumn name="Message"/>
  <OutputColumn name="joined"/>
  <OutputColumn name="blob"/>
</Definition>"#;

#[test]
fn actions_attributes_types_and_extra_fields_follow_trace_compass() {
    let def = definition(LOG_DEF);
    let log = "<log>\n<rec t=\"1500\" kind=\"boot\"><msg>a</msg><msg> b </msg><part>x</part><part>y</part>\
               <k>cpu</k><v>3</v><blob><p>1</p><q/></blob></rec>\n\
               <rec><msg>only</msg></rec><rec t=\"oops\"/>\n<record t=\"9\"/>\n</log>\n";
    let events: Vec<_> = read(&def, log).into_iter().map(Result::unwrap).collect();
    assert_eq!(events.len(), 3, "{events:?}");
    let e = &events[0];
    assert_eq!(e.timestamp_ns, 1_500_000_000);
    assert_eq!(e.event_type, "boot");
    assert_eq!(
        e.fields,
        [
            ("Timestamp", "00:00:01.500"),
            ("Message", "a | b"),
            ("joined", "xy"),
            ("blob", "p:1 | q"),
            ("cpu", "3"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(e.line, 2);
    // No time stamp: time 0, no time stamp field, the definition's name as type,
    // empty strings for the columns without data.
    let e = &events[1];
    assert_eq!((e.timestamp_ns, e.event_type.as_str()), (0, "log"));
    assert_eq!(e.field("Timestamp"), None);
    assert_eq!(
        (e.field("Message"), e.field("joined")),
        (Some("only"), Some(""))
    );
    // An unreadable time stamp is time 0 too; `<record` is not a `<rec`.
    assert_eq!(
        (events[2].timestamp_ns, events[2].field("Timestamp")),
        (0, None)
    );
}

#[test]
fn records_without_a_root_and_several_per_line_are_read() {
    let def = definition(LOG_DEF);
    let log = "<rec t=\"1\"/><rec t=\"2\"/>\n  <rec t=\"3\"><msg>m</msg></rec>";
    let ts: Vec<i64> = read(&def, log)
        .into_iter()
        .map(|e| e.unwrap().timestamp_ns)
        .collect();
    assert_eq!(ts, [1_000_000, 2_000_000, 3_000_000]);
}

#[test]
fn a_malformed_record_is_an_error_with_its_line_and_reading_goes_on() {
    let def = definition(LOG_DEF);
    let log = "<rec t=\"1\"/>\n<rec t=\"2\"><msg>x</part></rec>\n<rec t=\"3\"/>\n<rec t=\"4\"><msg>&bogus;</msg></rec>\n";
    let events = read(&def, log);
    assert_eq!(events.len(), 4);
    assert!(events[0].is_ok() && events[2].is_ok());
    for (i, line) in [(1, 2), (3, 4)] {
        match &events[i] {
            Err(CustomXmlError::MalformedRecord {
                line: l,
                element,
                path,
                ..
            }) => {
                assert_eq!(
                    (*l, element.as_str(), path.as_path()),
                    (line, "rec", Path::new("log.xml"))
                );
            }
            other => panic!("record {i}: expected MalformedRecord, got {other:?}"),
        }
    }
    let trace = CustomXmlTrace::from_text(&def, Path::new("log.xml"), log.to_string()).unwrap();
    assert!(matches!(
        trace.read_all(),
        Err(CustomXmlError::MalformedRecord { line: 2, .. })
    ));
}

// ---- bad definitions and files ---------------------------------------------------------

fn parse_err(text: &str) -> CustomXmlError {
    CustomXmlDefinition::parse_all(text, Path::new("def.xml")).unwrap_err()
}

#[test]
fn bad_definition_files_give_typed_errors_with_lines() {
    match parse_err("<CustomXMLTraceDefinitionList>\n<Definition name=\"a\">\n</Oops>") {
        CustomXmlError::Xml { line, path, .. } => {
            assert_eq!((line, path), (3, PathBuf::from("def.xml")))
        }
        e => panic!("{e:?}"),
    }
    match parse_err("<CustomTxtTraceDefinitionList/>") {
        CustomXmlError::NotADefinitionList { root, .. } => {
            assert_eq!(root, "CustomTxtTraceDefinitionList")
        }
        e => panic!("{e:?}"),
    }
    let bad_action = "<CustomXMLTraceDefinitionList>\n<Definition name=\"a\">\n<InputElement name=\"r\" logentry=\"true\">\n\
                      <InputData action=\"set\" name=\"x\"/>\n</InputElement></Definition></CustomXMLTraceDefinitionList>";
    match parse_err(bad_action) {
        CustomXmlError::InvalidDefinition { line, reason, .. } => {
            assert_eq!(line, 4);
            assert!(reason.contains("\"set\""), "{reason}");
        }
        e => panic!("{e:?}"),
    }
    match parse_err(
        "<CustomXMLTraceDefinitionList>\n\n<Definition name=\"a\"/></CustomXMLTraceDefinitionList>",
    ) {
        CustomXmlError::InvalidDefinition { line, .. } => assert_eq!(line, 3),
        e => panic!("{e:?}"),
    }
    // Like Trace Compass: unnamed definitions and ones with two roots are dropped.
    let dropped = "<CustomXMLTraceDefinitionList><Definition><InputElement name=\"r\"/></Definition>\
                   <Definition name=\"two\"><InputElement name=\"r\"/><InputElement name=\"s\"/></Definition>\
                   </CustomXMLTraceDefinitionList>";
    assert!(CustomXmlDefinition::parse_all(dropped, Path::new("d"))
        .unwrap()
        .is_empty());
}

#[test]
fn unusable_definitions_and_unreadable_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("none.xml");
    assert!(
        matches!(CustomXmlDefinition::load_all(&missing), Err(CustomXmlError::Io { path, .. }) if path == missing)
    );
    let binary = tmp.path().join("bin.xml");
    std::fs::write(&binary, b"<a>\0</a>").unwrap();
    assert!(matches!(
        CustomXmlDefinition::load_all(&binary),
        Err(CustomXmlError::NotText { offset: 3, .. })
    ));
    let def_file = tmp.path().join("def.xml");
    std::fs::write(
        &def_file,
        format!("<CustomXMLTraceDefinitionList>{LOG_DEF}</CustomXMLTraceDefinitionList>"),
    )
    .unwrap();
    assert!(CustomXmlDefinition::load(&def_file, "Custom XML", "log").is_ok());
    assert!(matches!(
        CustomXmlDefinition::load(&def_file, "Custom XML", "nope"),
        Err(CustomXmlError::DefinitionNotFound { .. })
    ));
    let def = definition(LOG_DEF);
    assert!(matches!(
        CustomXmlTrace::open(&def, &missing),
        Err(CustomXmlError::Io { .. })
    ));
    let no_record = definition("<Definition name=\"n\"><InputElement name=\"r\"/></Definition>");
    assert!(matches!(
        CustomXmlTrace::from_text(&no_record, Path::new("l"), String::new()),
        Err(CustomXmlError::NoRecordElement { .. })
    ));
    let bad_format = definition(
        "<Definition name=\"f\"><InputElement name=\"r\" logentry=\"true\">\
         <InputData action=\"0\" format=\"yyyy 'open\" name=\"Time Stamp\"/></InputElement></Definition>",
    );
    assert!(matches!(
        CustomXmlTrace::from_text(&bad_format, Path::new("l"), String::new()),
        Err(CustomXmlError::BadPattern { .. })
    ));
    // An empty log has no records.
    let trace = CustomXmlTrace::from_text(&def, Path::new("l"), String::new()).unwrap();
    assert_eq!(trace.events().count(), 0);
}

mod no_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Arbitrary logs and definitions give events or errors, never a panic.
        #[test]
        fn arbitrary_logs(log in "(<rec( t=\"[0-9a-z]{0,4}\")?>|</rec>|<msg>|</msg>|<!--|-->|[a-z \"'&;<>/\n]|é){0,40}") {
            let def = definition(LOG_DEF);
            for e in read(&def, &log) {
                let _ = e;
            }
        }

        #[test]
        fn arbitrary_definitions(body in "(<Definition name=\"d\">|</Definition>|<InputElement name=\"r\" logentry=\"true\">|</InputElement>|<InputData action=\"[0-9x]\" name=\"Time Stamp\" format=\"[yMdHms:.S' T]{0,8}\"/>|<OutputColumn name=\"[a-z]\"/>|[<>/ a-z\"=]){0,20}") {
            let text = format!("<CustomXMLTraceDefinitionList>{body}</CustomXMLTraceDefinitionList>");
            if let Ok(defs) = CustomXmlDefinition::parse_all(&text, Path::new("d")) {
                for d in defs {
                    if let Ok(t) = CustomXmlTrace::from_text(&d, Path::new("l"), "<r t=\"1\">x</r>\n<r/>".into()) {
                        let _ = t.read_all();
                    }
                }
            }
        }

        #[test]
        fn arbitrary_timestamps(pattern in "[yMdHhmsaSTCNnuEZX:.' /-]{0,12}", text in "[0-9A-Za-z:. /+-]{0,20}") {
            if let Ok(f) = TimestampFormat::new(&pattern) {
                if let Ok(ns) = f.parse(&text) {
                    let _ = f.format(ns);
                }
                let _ = f.format(i64::MIN + 1);
                let _ = f.format(i64::MAX);
            }
        }
    }
}

#[test]
fn confidence_rates_files_as_trace_compass_does() {
    let tmp = tempfile::tempdir().unwrap();
    let def = definition(LOG_DEF);
    let write = |name: &str, content: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    let good = write("good.xml", b"<log>\n<rec t=\"1\"/>\n</log>\n");
    assert_eq!(CustomXmlTrace::confidence(&def, &good).unwrap(), 100);
    // A broken record, then a good one on the same line: still recognised.
    let later = write("later.xml", b"<rec t=\"1\"><a></b></rec><rec/>\n");
    assert_eq!(CustomXmlTrace::confidence(&def, &later).unwrap(), 100);
    let other = write("other.xml", b"<log><entry/></log>\n");
    assert_eq!(CustomXmlTrace::confidence(&def, &other).unwrap(), 0);
    let mut far = "\n".repeat(150);
    far.push_str("<rec/>\n");
    let far = write("far.xml", far.as_bytes());
    assert_eq!(CustomXmlTrace::confidence(&def, &far).unwrap(), 0);
    let binary = write("bin.xml", b"<rec/>\0");
    assert_eq!(CustomXmlTrace::confidence(&def, &binary).unwrap(), 0);
    assert!(matches!(
        CustomXmlTrace::confidence(&def, &tmp.path().join("missing")),
        Err(CustomXmlError::Io { .. })
    ));
}
