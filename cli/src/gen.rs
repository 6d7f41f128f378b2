//! `sextant gen-trace`: write a synthetic LTTng kernel trace (CTF 1.8) of a
//! chosen size, for benchmarks and for trying the readers at scale.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sextant_trace::gen::{generate_with_guests, GenConfig, GenLimit};

use crate::format;

#[derive(Args)]
pub struct GenTraceArgs {
    /// Directory to write the trace into (must not exist, unless --force)
    out: PathBuf,
    /// Number of events to write [default: 1000000]
    #[arg(long, conflicts_with = "size")]
    events: Option<u64>,
    /// Size of the stream files to reach instead, e.g. 512MiB, 1GiB, 2GB, 100M
    #[arg(long, value_parser = parse_size)]
    size: Option<u64>,
    /// CPUs (one stream file each)
    #[arg(long, default_value_t = 4)]
    cpus: u32,
    /// User-space threads alive at a time (forks and exits keep it near this)
    #[arg(long, default_value_t = 200)]
    threads: u64,
    /// Seed of the pseudo-random generator: the same seed gives the same bytes
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Host name recorded in the trace environment
    #[arg(long, default_value = "sextant-gen")]
    hostname: String,
    /// Time of the first event, in ns since the Unix epoch
    #[arg(long)]
    start_ns: Option<u64>,
    /// KVM host mode: this many QEMU processes whose vCPU threads enter and leave
    /// their guests (kvm_x86_entry/kvm_x86_exit; events get pid/tid contexts)
    #[arg(long, default_value_t = 0)]
    vms: u32,
    /// vCPU threads per VM (with --vms)
    #[arg(long, default_value_t = 2)]
    vcpus: u32,
    /// Also write one guest trace per VM into DIR/guest1, DIR/guest2, ... (with
    /// --vms): guest kernel events while the host runs each vCPU, and the vmsync
    /// hypercall events in guests and host, for `sextant build OUT DIR/guest* -a vm-fused`
    #[arg(long, value_name = "DIR", requires = "vms")]
    guests: Option<PathBuf>,
    /// A file the QEMU process of VM INDEX (0-based) holds open, listed by the
    /// state dump: `INDEX:PATH` (repeatable; e.g. its disk image)
    #[arg(long, value_name = "INDEX:PATH", value_parser = parse_qemu_file)]
    qemu_file: Vec<(u32, String)>,
    /// Replace OUT if it is an existing trace directory (or empty)
    #[arg(long)]
    force: bool,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

/// Parses `INDEX:PATH` of `--qemu-file`.
fn parse_qemu_file(text: &str) -> Result<(u32, String), String> {
    let (i, path) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: expected INDEX:PATH"))?;
    let i = i
        .parse()
        .map_err(|_| format!("{text:?}: {i:?} is not a VM index"))?;
    Ok((i, path.to_string()))
}

/// Parses `1024`, `64KiB`, `1.5GiB`, `2G` (binary) or `500MB`, `1GB` (decimal).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{text:?}: expected a number with an optional unit (e.g. 1GiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        u => {
            return Err(format!(
                "{text:?}: unknown unit {u:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ))
        }
    };
    let bytes = value * mult as f64;
    if !(1.0..=(1u64 << 50) as f64).contains(&bytes) {
        return Err(format!("{text:?}: size out of range"));
    }
    Ok(bytes as u64)
}

pub fn run(a: GenTraceArgs) -> Result<()> {
    let limit = match (a.events, a.size) {
        (_, Some(bytes)) => GenLimit::Bytes(bytes),
        (Some(n), None) => GenLimit::Events(n),
        (None, None) => GenLimit::Events(1_000_000),
    };
    let defaults = GenConfig::default();
    let cfg = GenConfig {
        limit,
        cpus: a.cpus,
        threads: a.threads,
        seed: a.seed,
        hostname: a.hostname,
        start_ns: a.start_ns.unwrap_or(defaults.start_ns),
        replace_existing: a.force,
        vms: a.vms,
        vcpus_per_vm: a.vcpus,
        qemu_files: a.qemu_file,
    };
    if a.out.exists() && !a.force {
        bail!(
            "{} already exists (use --force to replace it)",
            a.out.display()
        );
    }
    let (total, bytes_unit) = match limit {
        GenLimit::Events(n) => (n, false),
        GenLimit::Bytes(n) => (n, true),
    };
    let bar = ProgressBar::new(total);
    let template = if bytes_unit {
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
    } else {
        "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events ({per_sec}, {eta})"
    };
    bar.set_style(ProgressStyle::with_template(template).context("progress bar template")?);
    if a.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let progress = |done: u64, _total: u64| bar.set_position(done);
    let started = Instant::now();
    if a.guests.is_some() && a.vms == 0 {
        bail!("--guests needs --vms N (N > 0)");
    }
    let (report, guests) = generate_with_guests(&a.out, &cfg, a.guests.as_deref(), Some(&progress))
        .with_context(|| format!("generating {}", a.out.display()))?;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    if a.json {
        let v = serde_json::json!({
            "dir": report.dir,
            "events": report.events,
            "bytes": report.bytes,
            "stream_bytes": report.stream_bytes,
            "streams": report.streams,
            "packets": report.packets,
            "first_event_ns": report.first_event_ns,
            "last_event_ns": report.last_event_ns,
            "counts": report.counts,
            "seed": cfg.seed,
            "vms": cfg.vms,
            "vcpus_per_vm": cfg.vcpus_per_vm,
            "guests": guests.iter().map(|g| serde_json::json!({
                "dir": g.dir,
                "hostname": g.hostname,
                "vm_uid": g.vm_uid,
                "events": g.events,
                "stream_bytes": g.stream_bytes,
            })).collect::<Vec<_>>(),
            "elapsed_s": elapsed.as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "wrote {}: {} events, {} in {} streams ({} packets) in {} ({}/s, {} events)",
        report.dir.display(),
        report.events,
        format::bytes(report.bytes),
        report.streams,
        report.packets,
        format::duration(elapsed),
        format::bytes((report.stream_bytes as f64 / secs) as u64),
        format::rate(report.events, elapsed),
    );
    if let (Some(first), Some(last)) = (report.first_event_ns, report.last_event_ns) {
        println!(
            "time range: {first} .. {last} ns ({} of kernel activity)",
            format::duration(std::time::Duration::from_nanos(last - first))
        );
    }
    for g in &guests {
        println!(
            "guest {} ({}, vm_uid {}): {} events, {}",
            g.dir.display(),
            g.hostname,
            g.vm_uid,
            g.events,
            format::bytes(g.stream_bytes)
        );
    }
    let mut top: Vec<(&String, &u64)> = report.counts.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!("{} event names; most frequent:", top.len());
    for (name, n) in top.iter().take(8) {
        println!("  {n:>12}  {name}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1.5 MiB"), Ok(3 << 19));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("0").is_err());
    }
}
