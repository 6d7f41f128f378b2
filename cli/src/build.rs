//! `sextant build`: trace in, Trace Compass-compatible state histories out.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sextant_providers::pipeline::{self, Analysis, BuildOptions, Output, Progress};
use sextant_providers::stub_source::StubSource;
use sextant_providers::StateProvider;
use sextant_trace::custom_xml::CustomXmlDefinition;
use sextant_trace::sync::{SyncApplied, SyncMode, SyncOrigin, SAVED_SYNC_FILE};
use sextant_xml::provider::XmlProvider;

use crate::format;

#[derive(Args)]
pub struct BuildArgs {
    /// Trace directories or files: a CTF trace, an LTTng session directory (its traces
    /// are read as one experiment), or a Trace Compass XML stub trace (.xml). Several
    /// paths are read together as one experiment.
    #[arg(required_unless_present = "list", value_name = "TRACE")]
    traces: Vec<PathBuf>,
    /// Analyses to run in one pass, by short name or Trace Compass id (repeat or
    /// separate with commas). `sextant build --list` shows them.
    #[arg(
        short,
        long = "analysis",
        value_delimiter = ',',
        required_unless_present_any = ["list", "xml"]
    )]
    analyses: Vec<String>,
    /// Trace Compass XML analysis files: every state provider and pattern they
    /// define runs in the same pass (output files named after their ids).
    #[arg(long, value_name = "FILE")]
    xml: Vec<PathBuf>,
    /// The traces are logs read with this Trace Compass custom XML parser
    /// definition (a `CustomXMLTraceDefinitionList` file), e.g. the RabbitMQ traces
    /// of the OpenStack XML analyses; several logs form one experiment.
    #[arg(long, value_name = "FILE")]
    parser: Option<PathBuf>,
    /// Clock synchronization of traces from several hosts: `auto` (match network
    /// packets, computed once and saved beside the histories as sextant-sync.json),
    /// `off`, or a file written by `sextant sync -o`.
    #[arg(long, value_name = "auto|off|FILE", default_value = "auto")]
    sync: SyncMode,
    /// Which definition of the --parser file (its name; needed when it holds several).
    #[arg(long, value_name = "NAME", requires = "parser")]
    parser_name: Option<String>,
    /// Output: a .ht file for one analysis, a directory for several (files named
    /// `<analysis id>.ht`). Default: `<trace>.<analysis>.ht` in the current directory.
    #[arg(short, long, value_name = "PATH", conflicts_with = "workspace")]
    output: Option<PathBuf>,
    /// Write where Trace Compass looks for the analysis results of this trace
    /// (`<DIR>/<project>/.tracing/<trace name>/<analysis id>.ht`), so that it reuses
    /// them instead of rebuilding.
    #[arg(
        long = "tracecompass-workspace",
        value_name = "DIR",
        requires = "project"
    )]
    workspace: Option<PathBuf>,
    /// Trace Compass project name (with --tracecompass-workspace).
    #[arg(long, value_name = "NAME")]
    project: Option<String>,
    /// Trace name as Trace Compass shows it under Traces (default: the trace directory's
    /// name; a trace in a sub-folder is `folder/name`); with several traces, the
    /// experiment's name.
    #[arg(long, value_name = "NAME")]
    trace_name: Option<String>,
    /// History-tree block size in bytes (Trace Compass: 65536).
    #[arg(long, value_name = "BYTES")]
    block_size: Option<i32>,
    /// Maximum children per history-tree node (Trace Compass: 50).
    #[arg(long, value_name = "N")]
    max_children: Option<i32>,
    /// Print a machine-readable summary.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
    /// List the available analyses and exit.
    #[arg(long)]
    list: bool,
}

fn trace_name(args: &BuildArgs) -> String {
    if let Some(n) = &args.trace_name {
        return n.clone();
    }
    let first = args.traces[0]
        .canonicalize()
        .unwrap_or_else(|_| args.traces[0].clone());
    let name_of = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    match name_of(&first) {
        // `x/ctf` (the layout of our sample traces) is better named after `x`.
        Some(n) if n == "ctf" => first.parent().and_then(name_of).unwrap_or(n),
        Some(n) => n,
        None => "trace".into(),
    }
}

/// Where each analysis writes.
fn output_paths(args: &BuildArgs, ids: &[(&'static str, &'static str)]) -> Result<Vec<PathBuf>> {
    let name = trace_name(args);
    if let Some(ws) = &args.workspace {
        let project = args.project.as_deref().unwrap_or_default();
        // Trace Compass keeps an experiment's results in `<experiment name>_exp`.
        let folder = if args.traces.len() > 1 {
            if args.trace_name.is_none() {
                bail!("several traces form an experiment: name it with --trace-name (as in Trace Compass's Experiments folder)");
            }
            format!("{name}_exp")
        } else {
            name
        };
        let dir = ws.join(project).join(".tracing").join(folder);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the supplementary folder {}", dir.display()))?;
        return Ok(ids
            .iter()
            .map(|(_, id)| dir.join(format!("{id}.ht")))
            .collect());
    }
    match &args.output {
        Some(out) if ids.len() == 1 && !out.is_dir() => Ok(vec![out.clone()]),
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the output directory {}", dir.display()))?;
            Ok(ids
                .iter()
                .map(|(_, id)| dir.join(format!("{id}.ht")))
                .collect())
        }
        None => Ok(ids
            .iter()
            .map(|(short, _)| PathBuf::from(format!("{name}.{short}.ht")))
            .collect()),
    }
}

/// Pattern segments kept in memory before they spill to the segment file.
const SEGMENTS_IN_MEMORY: usize = 1 << 20;

fn describe_sync(a: &SyncApplied) -> String {
    match &a.origin {
        SyncOrigin::Off => "off".into(),
        SyncOrigin::SingleHost => "one host".into(),
        SyncOrigin::Loaded(p) => format!("formulas read from {}", p.display()),
        SyncOrigin::Computed => match &a.result {
            Some(r) if r.is_synchronized() => {
                format!("computed by packet matching ({} matches)", r.matches)
            }
            Some(r) => format!(
                "not synchronized: no usable packet matches ({} matches)",
                r.matches
            ),
            None => "computed".into(),
        },
    }
}

/// Logs read with a custom XML parser definition, as one experiment.
fn custom_xml_source(
    parser: &Path,
    name: Option<&str>,
    traces: &[PathBuf],
) -> Result<Box<dyn pipeline::EventSource>> {
    let defs = CustomXmlDefinition::load_all(parser)?;
    let names = || {
        defs.iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let def = match name {
        Some(n) => defs
            .iter()
            .find(|d| d.name == n || d.trace_type_id() == n)
            .with_context(|| {
                format!(
                    "{}: no parser named `{n}` (it has: {})",
                    parser.display(),
                    names()
                )
            })?,
        None if defs.len() == 1 => &defs[0],
        None => bail!(
            "{} defines several parsers ({}): choose one with --parser-name",
            parser.display(),
            names()
        ),
    };
    let traces = traces
        .iter()
        .map(|t| def.read(t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Box::new(StubSource::new(traces)))
}

pub fn run(args: BuildArgs) -> Result<()> {
    let registry = sextant_providers::native_registry();
    if args.list {
        for (short, id) in registry.names() {
            println!("{short:<14} {id}");
        }
        return Ok(());
    }
    let mut ids = Vec::new();
    for a in &args.analyses {
        match registry.names().find(|(s, id)| s == a || id == a) {
            Some(pair) if !ids.contains(&pair) => ids.push(pair),
            Some(_) => {}
            None => {
                let known: Vec<_> = registry.names().map(|(s, _)| s).collect();
                bail!("unknown analysis `{a}` (available: {})", known.join(", "));
            }
        }
    }
    let mut providers: Vec<_> = ids
        .iter()
        .map(|(short, _)| registry.create(short).expect("listed by the registry"))
        .collect();
    let native = providers.len();
    let xml: Vec<XmlProvider> = sextant_xml::load_files(&args.xml)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .flat_map(|f| f.analyses)
        .map(XmlProvider::new)
        .collect();
    ids.extend(xml.iter().map(|p| (p.id(), p.id())));
    let paths = output_paths(&args, &ids)?;
    for (provider, path) in xml.into_iter().zip(&paths[native..]) {
        // Pattern segments go to `<id>.dat` beside the history (spilled when many).
        let provider = provider.with_segment_file(&path.with_extension("dat"), SEGMENTS_IN_MEMORY);
        providers.push(Box::new(provider));
    }
    let analyses = providers
        .into_iter()
        .zip(&paths)
        .map(|(provider, path)| Analysis {
            provider,
            output: Output::HistoryTree {
                path: path.clone(),
                block_size: args.block_size,
                max_children: args.max_children,
            },
        })
        .collect();

    let mut source = match &args.parser {
        Some(parser) => custom_xml_source(parser, args.parser_name.as_deref(), &args.traces)?,
        None => {
            // Saved formulas live with the histories when they have a folder of their own.
            let saved = paths[0]
                .parent()
                .filter(|_| {
                    args.workspace.is_some() || args.output.as_ref().is_some_and(|o| o.is_dir())
                })
                .map(|dir| dir.join(SAVED_SYNC_FILE));
            let (source, applied) = sextant_providers::sources::open_synchronized(
                &args.traces,
                &args.sync,
                saved.as_deref(),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("opening the trace")?;
            if let Some(a) = applied.filter(|a| !args.json && a.origin != SyncOrigin::SingleHost) {
                eprintln!("synchronization: {}", describe_sync(&a));
            }
            source
        }
    };

    let options = BuildOptions::default();
    let cancel = Arc::clone(&options.cancel);
    // Ctrl-C stops cleanly: partial histories are removed, nothing half-written stays.
    let _ = ctrlc::set_handler(move || cancel.store(true, Ordering::Relaxed));
    let bar = (!args.quiet && !args.json && std::io::stderr().is_terminal()).then(|| {
        let total = source.total_work().unwrap_or(0);
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} ETA {eta}",
            )
            .expect("valid template"),
        );
        bar
    });
    let options = BuildOptions {
        progress: bar.clone().map(|bar| {
            let began = std::time::Instant::now();
            Arc::new(move |p: Progress| {
                bar.set_position(p.work_done);
                bar.set_message(format!(
                    "{} events, {}",
                    p.events,
                    format::rate(p.events, began.elapsed())
                ));
            }) as Arc<dyn Fn(Progress) + Send + Sync>
        }),
        ..options
    };
    let result = pipeline::build(&mut *source, analyses, &options);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let (report, _) = result?;

    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if args.json {
        let analyses: Vec<_> = report
            .analyses
            .iter()
            .map(|a| {
                json!({
                    "id": a.id, "provider_version": a.version, "events": a.events,
                    "intervals": a.intervals, "attributes": a.attributes,
                    "output": a.path, "file_size": a.file_size,
                })
            })
            .collect();
        println!(
            "{}",
            json!({
                "traces": args.traces, "events": report.events,
                "start": report.start, "end": report.end,
                "seconds": report.elapsed.as_secs_f64(),
                "events_per_second": report.events as f64 / report.elapsed.as_secs_f64().max(1e-9),
                "analyses": analyses, "warnings": report.warnings,
            })
        );
    } else {
        println!(
            "{} events in {} ({}), time range {} .. {}",
            report.events,
            format::duration(report.elapsed),
            format::rate(report.events, report.elapsed),
            report.start,
            report.end
        );
        for a in &report.analyses {
            println!(
                "  {}: {} attributes, {} intervals -> {} ({})",
                a.id,
                a.attributes,
                a.intervals,
                a.path
                    .as_deref()
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                a.file_size.map(format::bytes).unwrap_or_default()
            );
        }
    }
    Ok(())
}
