//! `sextant vm-report`: one VM across layers (Nova states, requests across
//! services, QEMU migration stages) from an OpenStack trace or experiment.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use sextant_providers::openstack::{nova, nova_services, vm_report};
use sextant_providers::pipeline::{self, Analysis, BuildOptions, Output};
use sextant_providers::{qemu_migration, sources};

#[derive(Args)]
pub struct VmReportArgs {
    /// Trace directories or files read as one experiment (the OpenStack UST
    /// session, plus QEMU UST traces if any).
    #[arg(required = true, value_name = "TRACE")]
    traces: Vec<PathBuf>,
    /// The VM's name (Nova `vmname`, the instance hostname).
    #[arg(long, value_name = "NAME")]
    vm: String,
    /// The VM's libvirt domain name (`instance-0000002a`), to find its QEMU process.
    #[arg(long, value_name = "NAME")]
    domain: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: VmReportArgs) -> Result<()> {
    let mut source = sources::open(&args.traces)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("opening {:?}", args.traces))?;
    let has_qemu = source.class_names().iter().any(|c| c.starts_with("qemu:"));
    let mut analyses = vec![
        Analysis {
            provider: Box::new(nova::NovaVmStateProvider::new()),
            output: Output::InMemory,
        },
        Analysis {
            provider: Box::new(nova_services::NovaServicesProvider::new()),
            output: Output::InMemory,
        },
    ];
    if has_qemu {
        analyses.push(Analysis {
            provider: Box::new(qemu_migration::QemuMigrationProvider::new()),
            output: Output::InMemory,
        });
    }
    let (report, systems) = pipeline::build(&mut *source, analyses, &BuildOptions::default())
        .context("building the Nova and QEMU histories")?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let Some(r) = vm_report::vm_report(
        &systems[0],
        Some(&systems[1]),
        systems.get(2),
        &args.vm,
        args.domain.as_deref(),
    ) else {
        bail!("no VM named {:?} in the trace", args.vm);
    };
    if args.json {
        let rows: Vec<_> = r
            .timeline()
            .into_iter()
            .map(|(s, e, layer, what)| json!({"start": s, "end": e, "layer": layer, "what": what}))
            .collect();
        let out = json!({
            "vm": r.vm,
            "project": r.project,
            "qemu_process": r.qemu.as_ref().map(|q| &q.process),
            "qemu_by_elimination": r.qemu.as_ref().map(|q| q.by_elimination),
            "migration_result": r.qemu.as_ref().and_then(|q| q.result.clone()),
            "timeline": rows,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "VM {} (project {})",
        r.vm,
        r.project.as_deref().unwrap_or("unknown")
    );
    if let Some(q) = &r.qemu {
        println!(
            "QEMU process {}{}",
            q.process,
            if q.by_elimination {
                " (the only QEMU process in the trace)"
            } else {
                ""
            }
        );
    }
    for (start, end, layer, what) in r.timeline() {
        let ms = (end + 1 - start) as f64 / 1e6;
        println!("{start} {end} {ms:>12.3} ms  {layer:<14} {what}");
    }
    Ok(())
}
