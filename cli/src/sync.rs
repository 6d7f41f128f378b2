//! `sextant sync TRACE...`: synchronizes the traces of an experiment by matching network
//! packets (Trace Compass's fully incremental convex hull) and prints each trace's formula,
//! the quality per host pair and the match counts.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use sextant_trace::sync::{self, report::DECIMAL_DIGITS, SyncResult};
use sextant_trace::{Experiment, XmlStubTrace};

#[derive(Args)]
pub struct SyncArgs {
    /// Trace directories (or session directories holding several traces), or Trace Compass
    /// XML stub trace files (`.xml`)
    #[arg(required = true)]
    traces: Vec<PathBuf>,
    /// Print machine-readable JSON
    #[arg(long)]
    json: bool,
    /// Also save the result as JSON (loadable as formulas for the experiment)
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Reference trace (its name or path as given) or host id, whose timestamps stay
    /// unchanged; default: the host id that sorts first, as Trace Compass picks it
    #[arg(long, value_name = "TRACE|HOST")]
    reference: Option<String>,
}

/// Labels for the traces: their names, or their paths where names repeat.
fn trace_labels(exp: &Experiment) -> Vec<String> {
    let metas = exp.traces();
    metas
        .iter()
        .map(|m| {
            if metas.iter().filter(|o| o.name == m.name).count() > 1 {
                m.path.display().to_string()
            } else {
                m.name.clone()
            }
        })
        .collect()
}

/// Host id named by `--reference`: a host id, a trace label, or a path given on the command
/// line (the first trace below it).
fn reference_host(
    r: &str,
    exp: &Experiment,
    labels: &[String],
    hosts: &[String],
    args: &[PathBuf],
) -> Result<String> {
    if hosts.iter().any(|h| h == r) {
        return Ok(r.to_string());
    }
    if let Some(i) = labels.iter().position(|l| l == r) {
        return Ok(hosts[i].clone());
    }
    let wanted = std::path::Path::new(r);
    if args.iter().any(|a| a == wanted) {
        let wanted = wanted
            .canonicalize()
            .unwrap_or_else(|_| wanted.to_path_buf());
        for (i, m) in exp.traces().iter().enumerate() {
            let p = m.path.canonicalize().unwrap_or_else(|_| m.path.clone());
            if p.starts_with(&wanted) {
                return Ok(hosts[i].clone());
            }
        }
    }
    bail!(
        "--reference {r}: neither a trace of the experiment nor one of its host ids ({})",
        hosts.join(", ")
    )
}

fn is_xml(p: &std::path::Path) -> bool {
    p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml"))
}

pub fn run(args: SyncArgs) -> Result<()> {
    let started = Instant::now();
    let mut warnings = Vec::new();
    let (result, labels) = if args.traces.iter().all(|p| is_xml(p)) {
        let mut stubs = Vec::new();
        for p in &args.traces {
            stubs.push(XmlStubTrace::open(p).with_context(|| format!("opening {}", p.display()))?);
        }
        let refs: Vec<&XmlStubTrace> = stubs.iter().collect();
        let labels: Vec<String> = stubs.iter().map(|t| t.name().to_string()).collect();
        if args.reference.is_some() {
            bail!("--reference applies to CTF traces");
        }
        (sync::synchronize_stubs(&refs), labels)
    } else {
        let mut exp = Experiment::open(&args.traces).context("opening the traces")?;
        let labels = trace_labels(&exp);
        let hosts = sync::host_ids(&exp);
        let reference = match &args.reference {
            None => None,
            Some(r) => Some(reference_host(r, &exp, &labels, &hosts, &args.traces)?),
        };
        let result = sync::synchronize_with_reference(&mut exp, reference, &AtomicU64::new(0))
            .context("matching packets")?;
        warnings.extend(exp.warnings());
        (result, labels)
    };
    let elapsed = started.elapsed();
    let value = result.to_json(&labels);
    if let Some(path) = &args.output {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&value)? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        print_text(&mut out, &result, &labels, elapsed.as_secs_f64())?;
    }
    for w in warnings.iter().chain(&result.warnings) {
        eprintln!("warning: {w}");
    }
    Ok(())
}

fn print_text(out: &mut impl Write, r: &SyncResult, labels: &[String], secs: f64) -> Result<()> {
    match &r.reference_host {
        Some(h) => writeln!(
            out,
            "{} traces, {} matches; reference host {h}",
            r.traces.len(),
            r.matches
        )?,
        None => writeln!(
            out,
            "{} traces, {} matches: not synchronized (no host pair exchanged messages both ways)",
            r.traces.len(),
            r.matches
        )?,
    }
    let width = labels.iter().map(String::len).max().unwrap_or(0);
    for (t, label) in r.traces.iter().zip(labels) {
        let formula = if t.transform.is_identity() {
            "timestamps unchanged".to_string()
        } else {
            let offset = t.transform.offset();
            format!(
                "t' = {} * t {} {}",
                t.transform.slope().to_decimal(DECIMAL_DIGITS),
                if offset.is_negative() { '-' } else { '+' },
                offset.abs().to_decimal(DECIMAL_DIGITS)
            )
        };
        writeln!(
            out,
            "  {label:width$}  {:16}  {formula}  [host {}]",
            t.status.as_str(),
            t.host
        )?;
    }
    if !r.pairs.is_empty() {
        writeln!(out, "host pairs:")?;
    }
    for p in &r.pairs {
        let s = &p.stats;
        writeln!(
            out,
            "  {} <-> {}: {}, {} matches ({} moved the hull), hull points {} upper / {} lower, slope bracket {}",
            p.reference_host,
            p.other_host,
            s.quality.as_str(),
            s.matches,
            s.accurate_matches,
            s.upper_hull_points,
            s.lower_hull_points,
            s.accuracy.to_decimal(3)
        )?;
    }
    writeln!(
        out,
        "matching: {secs:.3} s, at most {} events waiting for their match",
        r.peak_waiting
    )?;
    Ok(())
}
