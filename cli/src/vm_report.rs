//! `sextant vm-report`: one VM across layers (Nova states, requests across
//! services, QEMU migration stages, and the kernel threads of its QEMU process
//! when a kernel trace of the compute host is in the experiment) from an
//! OpenStack trace or experiment.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use sextant_providers::kernel::KernelStateProvider;
use sextant_providers::openstack::{domains, nova, nova_services, qemu_files, vm_report};
use sextant_providers::pipeline::{self, Analysis, BuildOptions, Output};
use sextant_providers::{
    qemu_migration, sources, EventFields, ProviderError, StateProvider, Subscription, TraceInfo,
};
use sht::StateSystemBuilder;

#[derive(Args)]
pub struct VmReportArgs {
    /// Trace directories or files read as one experiment (the OpenStack UST
    /// session, plus QEMU UST traces and the compute host's kernel trace if any).
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
    let has_kernel = source.class_names().iter().any(|c| c == "sched_switch");
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
    analyses.push(Analysis {
        provider: Box::new(domains::LibvirtDomainProvider::new()),
        output: Output::InMemory,
    });
    if has_qemu {
        analyses.push(Analysis {
            provider: Box::new(qemu_migration::QemuMigrationProvider::new()),
            output: Output::InMemory,
        });
    }
    if has_kernel {
        analyses.push(Analysis {
            provider: Box::new(HostKernel {
                inner: KernelStateProvider::new(),
                info: kernel_trace_info(&args.traces),
            }),
            output: Output::InMemory,
        });
        analyses.push(Analysis {
            provider: Box::new(qemu_files::QemuFilesProvider::new()),
            output: Output::InMemory,
        });
    }
    let (report, systems) = pipeline::build(&mut *source, analyses, &BuildOptions::default())
        .context("building the Nova, QEMU and kernel histories")?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let qemu_ss = has_qemu.then(|| &systems[3]);
    let kernel_at = if has_qemu { 4 } else { 3 };
    let Some(mut r) = vm_report::vm_report(
        &systems[0],
        Some(&systems[1]),
        qemu_ss,
        &args.vm,
        args.domain.as_deref(),
    ) else {
        bail!("no VM named {:?} in the trace", args.vm);
    };
    r.libvirt = vm_report::domain_info(&systems[2], &args.vm);
    if has_kernel {
        let mut dom = r.libvirt.clone();
        // A domain given by hand, without the libvirt driver's XML: no files or UUID.
        if dom.is_none() {
            dom = args.domain.as_ref().map(|d| vm_report::DomainInfo {
                domain: d.clone(),
                uuid: None,
                vcpus: None,
                files: Vec::new(),
            });
        }
        r.kernel = Some(vm_report::kernel_layer(
            &systems[kernel_at],
            systems.get(kernel_at + 1),
            dom.as_ref(),
        ));
    }
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
            "libvirt": r.libvirt.as_ref().map(|d| json!({
                "domain": d.domain, "uuid": d.uuid, "vcpus": d.vcpus, "files": d.files,
            })),
            "kernel": r.kernel.as_ref().map(kernel_json),
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
    if let Some(d) = &r.libvirt {
        println!(
            "libvirt domain {} (uuid {}, {} vCPU(s))",
            d.domain,
            d.uuid.as_deref().unwrap_or("unknown"),
            d.vcpus.map_or("?".to_string(), |n| n.to_string())
        );
    }
    for (start, end, layer, what) in r.timeline() {
        let ms = (end + 1 - start) as f64 / 1e6;
        println!("{start} {end} {ms:>12.3} ms  {layer:<14} {what}");
    }
    if let Some(k) = &r.kernel {
        match k.link.pid {
            Some(pid) => println!(
                "kernel: QEMU process {pid} (link {}: {})",
                k.link.how, k.link.detail
            ),
            None => println!(
                "kernel: no QEMU process linked ({}; candidates {:?})",
                k.link.detail, k.link.candidates
            ),
        }
        for t in &k.threads {
            let (first, last) = (
                t.spans.first().map_or(0, |s| s.start),
                t.spans.last().map_or(0, |s| s.end),
            );
            let times: Vec<String> = t
                .time_by_status()
                .iter()
                .map(|(s, ns)| format!("{s} {:.3} ms", *ns as f64 / 1e6))
                .collect();
            println!(
                "{first} {last} {:>12} spans kernel         thread {} {:?} on CPUs {:?}: {}",
                t.spans.len(),
                t.tid,
                t.name,
                t.cpus_ran_on(),
                times.join(", ")
            );
        }
    }
    Ok(())
}

/// The kernel analysis inside an experiment whose first trace is the UST session:
/// the experiment's description is the first trace's (domain `ust`), so the kernel
/// analysis sees the kernel trace's own description (its layout depends on the
/// tracer version), with the experiment's hosts.
struct HostKernel {
    inner: KernelStateProvider,
    info: Option<TraceInfo>,
}

/// The description of the given trace that is a kernel trace by itself, if
/// exactly one is (with several, the experiment's, whose hosts the kernel
/// analysis warns about).
fn kernel_trace_info(paths: &[PathBuf]) -> Option<TraceInfo> {
    let kernels: Vec<TraceInfo> = paths
        .iter()
        .filter_map(|p| {
            let info = sources::open(std::slice::from_ref(p)).ok()?.info();
            (info.domain == "kernel").then_some(info)
        })
        .collect();
    (kernels.len() == 1).then(|| kernels.into_iter().next().expect("one"))
}

impl StateProvider for HostKernel {
    fn id(&self) -> &'static str {
        self.inner.id()
    }
    fn version(&self) -> i32 {
        self.inner.version()
    }
    fn check_trace(&mut self, trace: &TraceInfo) -> Result<(), ProviderError> {
        // One kernel trace: nothing to mix, whatever hosts the UST traces have.
        let info = self.info.clone().unwrap_or_else(|| TraceInfo {
            domain: "kernel".into(),
            ..trace.clone()
        });
        self.inner.check_trace(&info)
    }
    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        self.inner.subscribe(event_name)
    }
    fn check_subscriptions(&self, missing: &[(String, &'static str)]) -> Result<(), ProviderError> {
        self.inner.check_subscriptions(missing)
    }
    fn handle(
        &mut self,
        handler: u32,
        event: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        self.inner.handle(handler, event, ss)
    }
    fn finish(&mut self, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        self.inner.finish(ss)
    }
    fn warnings(&self) -> Vec<String> {
        self.inner.warnings()
    }
}

fn kernel_json(k: &vm_report::KernelLayer) -> serde_json::Value {
    let threads: Vec<_> = k
        .threads
        .iter()
        .map(|t| {
            json!({
                "tid": t.tid,
                "name": t.name,
                "cpus": t.cpus_ran_on(),
                "time_ns_by_status": t.time_by_status(),
                "spans": t.spans.iter().map(|s| json!({
                    "start": s.start, "end": s.end, "status": s.status, "cpu": s.cpu,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "qemu_pid": k.link.pid,
        "qemu_link": k.link.how,
        "link_detail": k.link.detail,
        "candidates": k.link.candidates,
        "kernel_end": k.kernel_end,
        "threads": threads,
    })
}
