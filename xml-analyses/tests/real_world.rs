//! Real-world analyses of `fixtures/xml-real` run on real CTF traces through the
//! build pipeline (the way `sextant build --xml` runs them).

use std::sync::Arc;

use sextant_providers::pipeline::{build, Analysis, Output};
use sextant_xml::provider::XmlProvider;
use sht::StateSystemQuerier;

/// Event count of `name` in a trace's `babeltrace2.count` reference file.
fn reference_count(count_file: &std::path::Path, name: &str) -> u64 {
    std::fs::read_to_string(count_file)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .find(|(_, n)| *n == name)
        .map_or(0, |(c, _)| c.trim().parse().unwrap())
}

#[test]
fn irq_pattern_runs_on_kernel_traces() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    let file =
        sextant_xml::load_file(&shared.join("fixtures/xml-real/irq_analysis_lttng.xml")).unwrap();
    let prog = Arc::clone(file.analysis("lttng.analysis.irq").unwrap());
    for trace in ["many-threads", "bug446190"] {
        let dir = shared.join("traces/ctf").join(trace);
        let mut source = sextant_providers::sources::open(&[dir.join("ctf")]).unwrap();
        let analyses = vec![Analysis {
            provider: Box::new(XmlProvider::new(Arc::clone(&prog))),
            output: Output::InMemory,
        }];
        let (report, systems) = build(&mut *source, analyses, &Default::default())
            .unwrap_or_else(|e| panic!("{trace}: {e}"));
        let ss = &systems[0];
        assert_eq!(
            report.analyses[0].events, report.events,
            "a pattern sees every event"
        );
        // The FSMs listed in the file get scenarios; the irq one only if the trace has irqs.
        let irqs = reference_count(&dir.join("babeltrace2.count"), "irq_handler_entry");
        let has_irq_scenarios = ss
            .quark(&["scenarios", "irq_handler", "0", "status"])
            .is_ok();
        assert_eq!(
            has_irq_scenarios,
            irqs > 0,
            "{trace}: {irqs} irq_handler_entry events"
        );
        let switches = reference_count(&dir.join("babeltrace2.count"), "sched_switch");
        assert_eq!(
            ss.quark(&["scenarios", "sched_switch"]).is_ok(),
            switches > 0,
            "{trace}"
        );
    }
}

#[test]
fn a_kernel_analysis_is_refused_on_a_ust_trace() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    let file =
        sextant_xml::load_file(&shared.join("fixtures/xml-real/irq_analysis_lttng.xml")).unwrap();
    let prog = Arc::clone(file.analysis("lttng.analysis.irq").unwrap());
    let dir = shared.join("traces/ctf/glxgears-cyg-profile");
    let mut source = sextant_providers::sources::open(&[dir.join("ctf")]).unwrap();
    let analyses = vec![Analysis {
        provider: Box::new(XmlProvider::new(prog)),
        output: Output::InMemory,
    }];
    let err = build(&mut *source, analyses, &Default::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("lttng.analysis.irq"), "{err}");
    assert!(err.to_string().contains("kernel.tracetype"), "{err}");
}
