//! One pass of an OpenStack provider through the build pipeline, for instruction
//! counts and history comparisons: `openstack_pass PROVIDER N|TRACE_DIR [HT_PATH]`
//! runs PROVIDER (`nova`, `nova-services`, `neutron`, `cinder`) over N records of
//! the Nova-like stream of `sextant bench openstack` (or over a trace directory)
//! into a null backend, or into the history file HT_PATH when given.
//!
//! Builder-thread instructions per record (the provider, `sht`, the pipeline's
//! builder side), e.g. for N = 200000:
//! `valgrind --tool=callgrind --toggle-collect=sextant_providers::pipeline::run_builder
//! target/release/examples/openstack_pass nova-services 200000` (total / N).

use sextant_benches::nova_like::nova_like;
use sextant_providers::pipeline::{build, Analysis, BuildOptions, EventSource, Output};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: openstack_pass PROVIDER N|TRACE_DIR [HT_PATH]";
    let (Some(name), Some(input)) = (args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let mut source: Box<dyn EventSource> = match input.parse::<usize>() {
        Ok(n) => Box::new(nova_like(n)),
        Err(_) => match sextant_providers::sources::open(&[input.into()]) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("openstack_pass: {input}: {e}");
                std::process::exit(1);
            }
        },
    };
    let Some(provider) = sextant_providers::native_registry().create(name) else {
        eprintln!("openstack_pass: no analysis {name}");
        std::process::exit(2);
    };
    let output = match args.get(3) {
        Some(path) => Output::file(path),
        None => Output::Null,
    };
    let analyses = vec![Analysis { provider, output }];
    match build(&mut *source, analyses, &BuildOptions::default()) {
        Ok((report, _)) => {
            eprintln!("{} events", report.events);
            for w in report.warnings {
                eprintln!("{w}");
            }
        }
        Err(e) => {
            eprintln!("openstack_pass: {e}");
            std::process::exit(1);
        }
    }
}
