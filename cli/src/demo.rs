//! `sextant demo`: the main job end to end on data Sextant makes itself.
//!
//! It generates a small LTTng kernel trace (CTF 1.8, 4 CPUs), runs the Linux kernel
//! analysis over it into a Trace Compass `.ht` file, and queries that file: the
//! path a user's own trace takes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use sextant_providers::pipeline::{self, Analysis, BuildOptions, Output};
use sextant_trace::gen::{self, GenConfig, GenLimit};
use sht::{StateSystem, StateSystemQuerier, StateValue};

use crate::format;

#[derive(Args)]
pub struct DemoArgs {
    /// Where to write the sample files (default: a `sextant-demo` directory in the
    /// system's temporary directory)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// How many events the generated trace holds
    #[arg(long, default_value_t = 200_000)]
    events: u64,
}

/// The CPU status the kernel analysis stores as the value of `CPUs/<n>` itself
/// (Trace Compass's bit values).
fn cpu_status(v: &StateValue) -> &'static str {
    match v.as_int() {
        Some(0) => "idle",
        Some(2) => "user mode",
        Some(4) => "system call",
        Some(8) => "soft IRQ",
        Some(16) => "IRQ",
        Some(_) => "other",
        None => "unknown",
    }
}

pub fn run(args: DemoArgs) -> Result<()> {
    let dir = args
        .dir
        .unwrap_or_else(|| std::env::temp_dir().join("sextant-demo"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let trace = dir.join("kernel-trace");
    let ht = dir.join("kernel.ht");

    let config = GenConfig {
        limit: GenLimit::Events(args.events),
        cpus: 4,
        threads: 60,
        seed: 7,
        hostname: "demo-host".into(),
        replace_existing: true,
        ..GenConfig::default()
    };
    let generated = gen::generate(&trace, &config, None)
        .with_context(|| format!("generating a sample trace in {}", trace.display()))?;
    println!(
        "1. trace    {} ({}): {} events of an LTTng kernel trace on 4 CPUs",
        trace.display(),
        format::bytes(generated.bytes),
        generated.events
    );

    let mut source = sextant_providers::sources::open(std::slice::from_ref(&trace))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("opening {}", trace.display()))?;
    let kernel = sextant_providers::native_registry()
        .create("kernel")
        .context("the kernel analysis is not registered")?;
    let analyses = vec![Analysis {
        provider: kernel,
        output: Output::file(&ht),
    }];
    let (report, _) = pipeline::build(&mut *source, analyses, &BuildOptions::default())?;
    let built = &report.analyses[0];
    println!(
        "2. build    {} ({}): kernel analysis, {} attributes, {} intervals in {} ({})",
        ht.display(),
        format::bytes(built.file_size.unwrap_or(0)),
        built.attributes,
        built.intervals,
        format::duration(report.elapsed),
        format::rate(report.events, report.elapsed)
    );

    let ss = StateSystem::open(&ht, Some(built.version))?;
    let middle = report.start + (report.end - report.start) / 2;
    println!("3. query    the CPUs at t = {middle} (the middle of the trace):");
    for cpu in ss.quarks(&["CPUs", "*"])? {
        let name = ss.attributes().name(cpu)?;
        // A CPU the trace never showed busy has no Status yet: null, as in Trace Compass.
        let get = |attr: &str| -> StateValue {
            ss.attributes()
                .quark(cpu, &[attr])
                .and_then(|q| ss.query_single(middle, q))
                .map_or(StateValue::Null, |i| i.value)
        };
        let thread = get("Current_thread");
        let status = ss
            .query_single(middle, cpu)
            .map_or(StateValue::Null, |i| i.value);
        let exec = match thread.as_int() {
            Some(tid) if tid != 0 => ss
                .quark(&["Threads", &tid.to_string(), "Exec_name"])
                .and_then(|q| ss.query_single(middle, q))
                .map(|i| i.value.as_str().unwrap_or("?").to_string())
                .unwrap_or_else(|_| "?".into()),
            _ => "swapper".into(),
        };
        println!(
            "             CPU {name}: thread {} ({exec}), {}",
            thread.as_int().map_or("-".into(), |t| t.to_string()),
            cpu_status(&status)
        );
    }
    let cpu0 = ss.quark(&["CPUs", "0", "Current_thread"])?;
    let window = (report.end - report.start) / 100;
    let switches = ss.query_2d(&[cpu0], middle, middle + window)?;
    println!(
        "             CPU 0 ran {} threads in the next {} (2D query)",
        switches.len(),
        format::duration(std::time::Duration::from_nanos(window as u64))
    );
    println!(
        "Try: sextant info {0} | sextant query {0} --at {middle} --path 'Threads/*/Exec_name' | sextant dump {0}",
        ht.display()
    );
    Ok(())
}
