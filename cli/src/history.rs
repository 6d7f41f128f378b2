//! Commands over state histories: replay, dump, query, info.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use sht::changelog::ChangeLogReader;
use sht::{HistoryTreeReader, Interval, Quark, StateSystem, StateSystemQuerier, StateValue};

use crate::format;

#[derive(Args)]
pub struct ReplayArgs {
    /// State-change log (JSON lines; see shared/spec/state-change-log.md)
    log: PathBuf,
    /// Output .ht file
    #[arg(short, long)]
    output: PathBuf,
    /// Print a machine-readable summary
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct DumpArgs {
    /// The .ht file
    file: PathBuf,
}

#[derive(Args)]
pub struct InfoArgs {
    /// The .ht file
    file: PathBuf,
    /// Print machine-readable JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("when").required(true).args(["at", "from"])))]
pub struct QueryArgs {
    /// The .ht file
    file: PathBuf,
    /// State of the attributes at this time (ns, or `start` / `end`)
    #[arg(long, value_name = "T")]
    at: Option<String>,
    /// Intervals from this time... (ns, or `start` / `end`)
    #[arg(long, value_name = "T1", requires = "to")]
    from: Option<String>,
    /// ...to this time
    #[arg(long, value_name = "T2", requires = "from")]
    to: Option<String>,
    /// Attributes to show: a path pattern such as `CPUs/*/Status` (`*` matches any
    /// name, `..` is the parent), or a JSON array of names; default: all
    #[arg(long, value_name = "PATTERN")]
    path: Option<String>,
    /// Print machine-readable JSON
    #[arg(long)]
    json: bool,
}

pub fn replay(args: ReplayArgs) -> Result<()> {
    let began = Instant::now();
    let mut log = ChangeLogReader::open(&args.log)?;
    let mut ss = StateSystem::create_history_tree(&args.output, log.header().ht_config())
        .with_context(|| format!("creating {}", args.output.display()))?;
    let ops = log.replay(&mut ss)?;
    let elapsed = began.elapsed();
    let reader = HistoryTreeReader::open(&args.output, None)?;
    let info = sht::dump::file_info(&reader)?;
    if args.json {
        println!(
            "{}",
            json!({
                "log": args.log, "output": args.output, "operations": ops,
                "attributes": info.attributes, "nodes": info.header.node_count,
                "start": info.header.start, "end": info.end,
                "file_size": info.file_size, "seconds": elapsed.as_secs_f64(),
            })
        );
    } else {
        println!(
            "{}: {ops} operations, {} attributes, {} nodes, {} in {} ({})",
            args.output.display(),
            info.attributes,
            info.header.node_count,
            format::bytes(info.file_size),
            format::duration(elapsed),
            format::rate(ops, elapsed),
        );
    }
    Ok(())
}

pub fn dump(args: DumpArgs) -> Result<()> {
    let reader = HistoryTreeReader::open(&args.file, None)?;
    let text = sht::dump::dump(&reader)?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

pub fn info(args: InfoArgs) -> Result<()> {
    let reader = HistoryTreeReader::open(&args.file, None)?;
    let info = sht::dump::file_info(&reader)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    println!("file          {}", args.file.display());
    println!(
        "format        history tree v{}, provider version {}",
        info.header.file_version, info.header.provider_version
    );
    println!(
        "time range    {} .. {} ({} ns)",
        info.header.start,
        info.end,
        info.end as i128 - info.header.start as i128
    );
    println!("attributes    {}", info.attributes);
    println!(
        "nodes         {} of {} (max {} children, depth {}, root {})",
        info.header.node_count,
        format::bytes(info.header.block_size as u64),
        info.header.max_children,
        info.depth,
        info.header.root_seq
    );
    println!(
        "size          {} ({} bytes)",
        format::bytes(info.file_size),
        info.file_size
    );
    Ok(())
}

/// A time argument: nanoseconds, or `start` / `end` of the history.
fn parse_time(arg: &str, ss: &StateSystem) -> Result<i64> {
    match arg {
        "start" => Ok(ss.start_time()),
        "end" => Ok(ss.current_end_time()),
        _ => arg.parse().with_context(|| {
            format!("invalid time {arg:?}: expected nanoseconds, `start` or `end`")
        }),
    }
}

/// Splits a pattern: a JSON array of names, or names separated by `/`.
fn parse_pattern(pattern: &str) -> Result<Vec<String>> {
    if pattern.trim_start().starts_with('[') {
        return serde_json::from_str(pattern)
            .with_context(|| format!("invalid JSON path pattern {pattern:?}"));
    }
    Ok(pattern.split('/').map(str::to_owned).collect())
}

fn value_json(v: &StateValue) -> serde_json::Value {
    match v {
        StateValue::Null => json!({"type": "null"}),
        StateValue::Int(i) => json!({"type": "int", "value": i}),
        StateValue::Long(i) => json!({"type": "long", "value": i}),
        StateValue::Double(d) if d.is_finite() => json!({"type": "double", "value": d}),
        StateValue::Double(d) => json!({"type": "double", "value": d.to_string()}),
        StateValue::String(s) => json!({"type": "string", "value": &**s}),
        StateValue::Custom(c) => json!({"type": "custom", "id": c.type_id, "bytes": &*c.bytes}),
    }
}

pub fn query(args: QueryArgs) -> Result<()> {
    let ss = StateSystem::open(&args.file, None)?;
    let attrs = ss.attributes();
    let quarks: Vec<Quark> = match &args.path {
        Some(p) => {
            let pattern = parse_pattern(p)?;
            let names: Vec<&str> = pattern.iter().map(String::as_str).collect();
            let q = ss.quarks(&names)?;
            if q.is_empty() {
                bail!("no attribute matches {p:?} in {}", args.file.display());
            }
            q.into_iter().filter(|&q| q >= 0).collect()
        }
        None => (0..ss.attribute_count() as Quark).collect(),
    };
    let intervals: Vec<Interval> = if let Some(at) = &args.at {
        let t = parse_time(at, &ss)?;
        if args.path.is_none() {
            ss.query_full(t)?
        } else {
            quarks
                .iter()
                .map(|&q| ss.query_single(t, q))
                .collect::<sht::Result<_>>()?
        }
    } else {
        let t1 = parse_time(args.from.as_deref().unwrap_or("start"), &ss)?;
        let t2 = parse_time(args.to.as_deref().unwrap_or("end"), &ss)?;
        let mut v = ss.query_2d(&quarks, t1, t2)?;
        v.sort_by_key(|i| (i.quark, i.start));
        v
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let rows: Vec<serde_json::Value> = intervals
            .iter()
            .map(|i| {
                json!({
                    "quark": i.quark,
                    "path": attrs.path(i.quark).unwrap_or_default(),
                    "start": i.start, "end": i.end,
                    "value": value_json(&i.value),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
    } else {
        for i in &intervals {
            let path = sht::attribute::format_path(attrs.path(i.quark)?);
            writeln!(out, "{path} [{}, {}] {}", i.start, i.end, i.value)?;
        }
    }
    Ok(())
}
