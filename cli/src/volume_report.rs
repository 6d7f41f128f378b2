//! `sextant volume-report`: Cinder volumes (lifecycle from the Cinder UST trace)
//! joined with the disk I/O of their block device in a kernel trace of the
//! storage node (read separately: its own CTF trace or XML stub trace).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use sextant_providers::diskio::DiskIoStateProvider;
use sextant_providers::openstack::{cinder, volume_report};
use sextant_providers::pipeline::{self, Analysis, BuildOptions, Output};
use sextant_providers::sources;
use sht::StateSystem;

#[derive(Args)]
pub struct VolumeReportArgs {
    /// The Cinder LTTng-UST trace(s).
    #[arg(required = true, value_name = "TRACE")]
    traces: Vec<PathBuf>,
    /// Kernel trace(s) of the storage node (CTF directories or one XML stub file).
    #[arg(long, value_name = "TRACE")]
    storage_kernel: Vec<PathBuf>,
    /// Only this volume (UUID).
    #[arg(long, value_name = "UUID")]
    volume: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn build(paths: &[PathBuf], analyses: Vec<Analysis>, what: &str) -> Result<Vec<StateSystem>> {
    let mut source = sources::open(paths)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("opening {paths:?}"))?;
    let (report, systems) = pipeline::build(&mut *source, analyses, &BuildOptions::default())
        .with_context(|| format!("building the {what} histories"))?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    Ok(systems)
}

pub fn run(args: VolumeReportArgs) -> Result<()> {
    let cinder_ss = build(
        &args.traces,
        vec![Analysis {
            provider: Box::new(cinder::CinderProvider::new()),
            output: Output::InMemory,
        }],
        "Cinder",
    )?;
    let storage = if args.storage_kernel.is_empty() {
        Vec::new()
    } else {
        build(
            &args.storage_kernel,
            vec![
                Analysis {
                    provider: Box::new(volume_report::VolumeDevicesProvider::new()),
                    output: Output::InMemory,
                },
                Analysis {
                    provider: Box::new(DiskIoStateProvider::new()),
                    output: Output::InMemory,
                },
            ],
            "storage-node disk I/O",
        )?
    };
    let mut volumes = volume_report::volume_report(&cinder_ss[0], storage.first(), storage.get(1));
    if let Some(v) = &args.volume {
        volumes.retain(|x| &x.volume == v);
        if volumes.is_empty() {
            anyhow::bail!("no volume {v:?} in the Cinder trace");
        }
    }
    if args.json {
        let out: Vec<_> = volumes
            .iter()
            .map(|v| {
                json!({
                    "volume": v.volume,
                    "lv": v.lv,
                    "start": v.start,
                    "end": v.end,
                    "actions": v.actions.iter().map(|(s, e, a)| json!({"start": s, "end": e, "action": a})).collect::<Vec<_>>(),
                    "dev": v.device.as_ref().map(|d| d.0),
                    "disk": v.device.as_ref().map(|d| &d.1),
                    "disk_link": v.device.as_ref().map(|d| d.2),
                    "sectors_read": v.sectors_read,
                    "sectors_written": v.sectors_written,
                    "bytes_read": v.sectors_read * 512,
                    "bytes_written": v.sectors_written * 512,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "volumes": out }))?
        );
        return Ok(());
    }
    for v in &volumes {
        println!("volume {} ({}), {} .. {}", v.volume, v.lv, v.start, v.end);
        for (s, e, a) in &v.actions {
            println!("  {s} {e} {:>12.3} ms  {a}", (e + 1 - s) as f64 / 1e6);
        }
        match &v.device {
            Some((dev, disk, how)) => println!(
                "  device {dev} ({disk}, link {how}): {} KiB read, {} KiB written during its lifecycle",
                v.sectors_read / 2,
                v.sectors_written / 2
            ),
            None if storage.is_empty() => println!("  no storage-node kernel trace given"),
            None => println!("  no device of the storage node's kernel trace is linked to it"),
        }
    }
    Ok(())
}
