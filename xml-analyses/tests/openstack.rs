//! The thesis's OpenStack/RabbitMQ analyses on their RabbitMQ traces, read through
//! the custom XML parser definition (`fixtures/openstack-rabbitmq`).

use std::sync::Arc;

use sextant_trace::custom_xml::{CustomXmlDefinition, CustomXmlTrace};
use sextant_trace::StubValue;
use sextant_trace::XmlStubTrace;
use sextant_xml::{build_in_memory, dom, load_file, stub_trace_from_custom};
use sht::{StateSystemQuerier, StateValue};

fn read(def: &CustomXmlDefinition, path: &std::path::Path) -> XmlStubTrace {
    let trace = CustomXmlTrace::open(def, path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    stub_trace_from_custom(name, path.to_path_buf(), trace.read_all().unwrap())
}

#[test]
fn vm_activity_follows_the_create_notifications() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    let base = shared.join("fixtures/openstack-rabbitmq");
    let analysis_path = base.join("nova/ops_analyse_view.xml");
    let file = load_file(&analysis_path).unwrap();
    let prog = Arc::clone(file.analysis("openstack.sp").unwrap());
    let defs = CustomXmlDefinition::load_all(&base.join("nova/xml_parser.xml")).unwrap();
    // The analysis names the parser's trace type.
    let def = defs
        .iter()
        .find(|d| prog.trace_types.contains(&d.trace_type_id()))
        .expect("the parser the analysis is written for");

    let trace_path = base.join("trace/amq.rabbitmq.trace/notifications.info.xml");
    let trace = read(def, &trace_path);
    let text = std::fs::read_to_string(&trace_path).unwrap();
    assert_eq!(trace.events().len(), text.matches("<event>").count());
    let field = |i: usize, f: &str| match trace.events()[i].field(f) {
        Some(StubValue::Str(s)) => s.clone(),
        other => panic!("{f}: {other:?}"),
    };
    let find = |ty: &str| {
        (0..trace.events().len())
            .find(|&i| field(i, "event_type") == ty)
            .unwrap_or_else(|| panic!("no {ty} event"))
    };
    let (start, end) = (
        find("compute.instance.create.start"),
        find("compute.instance.create.end"),
    );
    let (t_start, t_end) = (
        trace.events()[start].timestamp,
        trace.events()[end].timestamp,
    );
    assert!(
        t_start > 0 && t_end > t_start,
        "timestamps come from <timestamp>"
    );
    let vm = field(start, "vm_name");
    assert!(!vm.is_empty());

    // ACTION_CREATE and ACTION_NONE, read from the analysis's definedValues.
    let root = dom::parse(&std::fs::read(&analysis_path).unwrap(), &analysis_path).unwrap();
    let mut defined = Vec::new();
    root.descendants_named("definedValue", &mut defined);
    let code = |n: &str| -> i32 {
        defined
            .iter()
            .find(|d| d.attr("name") == Some(n))
            .unwrap()
            .attr("value")
            .unwrap()
            .parse()
            .unwrap()
    };

    let out = build_in_memory(&prog, &trace).unwrap();
    let ss = &out.state_system;
    let q = ss.quark(&["host", &vm, "vm_activity"]).unwrap();
    let during = ss.query_single(t_start, q).unwrap();
    assert_eq!((during.start, during.end), (t_start, t_end - 1));
    assert_eq!(during.value, StateValue::Int(code("ACTION_CREATE")));
    let after = ss.query_single(t_end, q).unwrap();
    assert_eq!(after.value, StateValue::Int(code("ACTION_NONE")));
}

#[test]
fn both_analyses_run_on_every_queue_file() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    let base = shared.join("fixtures/openstack-rabbitmq");
    let defs = CustomXmlDefinition::load_all(&base.join("nova/xml_parser.xml")).unwrap();
    for analysis in ["nova/ops_analyse_view.xml", "new_xperiment/ops_view.xml"] {
        let file = load_file(&base.join(analysis)).unwrap();
        let prog = Arc::clone(file.analysis("openstack.sp").unwrap());
        for entry in std::fs::read_dir(base.join("trace/amq.rabbitmq.trace"))
            .unwrap()
            .flatten()
        {
            let trace = read(&defs[0], &entry.path());
            let text = std::fs::read_to_string(entry.path()).unwrap();
            assert_eq!(
                trace.events().len(),
                text.matches("<event>").count(),
                "{}",
                entry.path().display()
            );
            build_in_memory(&prog, &trace)
                .unwrap_or_else(|e| panic!("{analysis} on {}: {e}", entry.path().display()));
        }
    }
}
