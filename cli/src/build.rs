//! `sextant build`: trace in, Trace Compass-compatible state histories out.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sextant_providers::pipeline::{
    self, Analysis, AnalysisReport, BuildOptions, BuildReport, Output, Progress,
};
use sextant_providers::sources::Deferred;
use sextant_providers::sources::{CtfSource, HostTraces, Opened};
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
    /// paths are read together as one experiment; traces of several hosts get one
    /// history per host (as Trace Compass), built in parallel in synchronized time.
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

/// The folder of the whole build's files, if they have one of their own: the trace's (or
/// experiment's) supplementary folder in a Trace Compass workspace, or the `-o` directory.
/// Saved synchronization formulas go there.
fn build_folder(args: &BuildArgs, ids: usize) -> Result<Option<PathBuf>> {
    if let Some(ws) = &args.workspace {
        let name = trace_name(args);
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
        return Ok(Some(dir));
    }
    match &args.output {
        Some(out) if ids == 1 && !out.is_dir() => Ok(None),
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the output directory {}", dir.display()))?;
            Ok(Some(dir.clone()))
        }
        None => Ok(None),
    }
}

/// Where each analysis writes, for the traces as one source.
fn output_paths(args: &BuildArgs, ids: &[(&'static str, &'static str)]) -> Result<Vec<PathBuf>> {
    let folder = build_folder(args, ids.len())?;
    let name = trace_name(args);
    Ok(match (&folder, &args.output) {
        (Some(dir), _) => ids
            .iter()
            .map(|(_, id)| dir.join(format!("{id}.ht")))
            .collect(),
        (None, Some(out)) => vec![out.clone()],
        (None, None) => ids
            .iter()
            .map(|(short, _)| PathBuf::from(format!("{name}.{short}.ht")))
            .collect(),
    })
}

/// Where each analysis of one host writes (several hosts: one history per host, as Trace
/// Compass builds a trace's analyses per trace): the trace's own supplementary folder
/// `<workspace>/<project>/.tracing/<trace name>/`, `<-o DIR>/<trace name>/`, or
/// `<trace name>.<analysis>.ht` here.
fn host_output_paths(
    args: &BuildArgs,
    host: &HostTraces,
    ids: &[(&'static str, &'static str)],
) -> Result<Vec<PathBuf>> {
    let dir = if let Some(ws) = &args.workspace {
        let project = args.project.as_deref().unwrap_or_default();
        ws.join(project).join(".tracing").join(&host.name)
    } else if let Some(out) = &args.output {
        // A path that is not there yet becomes the directory, unless it names a history.
        if out.exists() && !out.is_dir() || out.extension().is_some_and(|e| e == "ht") {
            bail!(
                "{}: the traces come from several hosts, one history each: -o must be a directory",
                out.display()
            );
        }
        out.join(&host.name)
    } else {
        let flat = host.name.replace(['/', '\\'], "_");
        return Ok(ids
            .iter()
            .map(|(short, _)| PathBuf::from(format!("{flat}.{short}.ht")))
            .collect());
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the folder {}", dir.display()))?;
    Ok(ids
        .iter()
        .map(|(_, id)| dir.join(format!("{id}.ht")))
        .collect())
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
    sextant_trace::timing::mark(|| "build: start".into());
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
    let xml_programs: Vec<_> = sextant_xml::load_files(&args.xml)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .flat_map(|f| f.analyses)
        .collect();
    let native = ids.len();
    ids.extend(xml_programs.iter().map(|p| {
        let id = XmlProvider::new(p.clone()).id();
        (id, id)
    }));
    // Fresh providers writing to `paths` (one set per history).
    let analyses = |paths: &[PathBuf]| -> Vec<Analysis> {
        let mut providers: Vec<Box<dyn StateProvider>> = ids[..native]
            .iter()
            .map(|(short, _)| registry.create(short).expect("listed by the registry"))
            .collect();
        for (program, path) in xml_programs.iter().zip(&paths[native..]) {
            // Pattern segments go to `<id>.dat` beside the history (spilled when many).
            let provider = XmlProvider::new(program.clone())
                .with_segment_file(&path.with_extension("dat"), SEGMENTS_IN_MEMORY);
            providers.push(Box::new(provider));
        }
        providers
            .into_iter()
            .zip(paths)
            .map(|(provider, path)| Analysis {
                provider,
                output: Output::HistoryTree {
                    path: path.clone(),
                    block_size: args.block_size,
                    max_children: args.max_children,
                },
            })
            .collect()
    };

    let mut saving = None;
    let mut matching = None;
    let opened = match &args.parser {
        Some(parser) => Opened::One(custom_xml_source(
            parser,
            args.parser_name.as_deref(),
            &args.traces,
        )?),
        None => {
            // Saved formulas live with the histories when they have a folder of their own.
            let saved = match &args.output {
                // Several traces and a path not there yet (not a `.ht`): a folder, if they
                // turn out to come from several hosts (one history each).
                Some(out)
                    if args.workspace.is_none()
                        && args.traces.len() > 1
                        && !out.exists()
                        && out.extension().is_none_or(|e| e != "ht") =>
                {
                    Some(out.join(SAVED_SYNC_FILE))
                }
                _ => build_folder(&args, ids.len())?.map(|dir| dir.join(SAVED_SYNC_FILE)),
            };
            // Formulas computed now are computed once the hosts' builds are under way (only
            // the hosts that need them wait), and saved while the histories are built.
            let (opened, deferred) = sextant_providers::sources::open_per_host_deferred(
                &args.traces,
                &args.sync,
                saved.as_deref(),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("opening the trace")?;
            match deferred {
                Deferred::Done(applied) => {
                    saving = applied.as_ref().and_then(|a| a.saving.clone());
                    report_sync(&args, applied.as_ref());
                }
                Deferred::Matching(later) => matching = Some(later),
            }
            opened
        }
    };
    sextant_trace::timing::mark(|| "build: opened".into());
    // This thread computes the formulas, then writes them to their file, once the hosts'
    // builds are under way (it would only wait for them otherwise).
    let mut saved = Ok(());
    let mut finish = || {
        if let Some(later) = matching.take() {
            let applied = later.finish();
            saving = applied.saving.clone();
            report_sync(&args, Some(&applied));
        }
        if let Some(s) = &saving {
            saved = s.wait();
        }
    };
    let built = build_opened(&args, opened, &ids, &analyses, &mut finish);
    // (A single source never waits for formulas: done by now, or nothing to do.)
    finish();
    sextant_trace::timing::mark(|| "build: histories built".into());
    if let Some(saving) = saving {
        // Not fatal: the histories are there; the next build computes the formulas again.
        if let Err(e) = saved.and_then(|()| saving.wait()) {
            eprintln!("warning: the synchronization formulas were not saved: {e}");
        }
    }
    sextant_trace::timing::mark(|| "build: sync file waited".into());
    let (built, elapsed) = built?;
    print_summary(&args, &built, elapsed);
    sextant_trace::timing::mark(|| "build: end".into());
    Ok(())
}

/// Tells how the traces were synchronized (on stderr, unless `--json` or nothing to do).
fn report_sync(args: &BuildArgs, applied: Option<&SyncApplied>) {
    if let Some(a) = applied.filter(|a| !args.json && a.origin != SyncOrigin::SingleHost) {
        eprintln!("synchronization: {}", describe_sync(a));
    }
}

/// Builds the histories of `opened`: one pipeline, or one per host (then `meanwhile` runs on
/// this thread once they have started).
fn build_opened(
    args: &BuildArgs,
    opened: Opened,
    ids: &[(&'static str, &'static str)],
    analyses: &(dyn Fn(&[PathBuf]) -> Vec<Analysis> + Sync),
    meanwhile: &mut dyn FnMut(),
) -> Result<(Vec<Built>, std::time::Duration)> {
    let options = BuildOptions::default();
    let cancel = Arc::clone(&options.cancel);
    // Ctrl-C stops cleanly: partial histories are removed, nothing half-written stays.
    let _ = ctrlc::set_handler(move || cancel.store(true, Ordering::Relaxed));
    let total = match &opened {
        Opened::One(source) => source.total_work().unwrap_or(0),
        Opened::PerHost(hosts) => hosts.iter().map(|h| h.0.bytes).sum(),
    };
    let bar = (!args.quiet && !args.json && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} ETA {eta}",
            )
            .expect("valid template"),
        );
        bar
    });
    let hosts = match &opened {
        Opened::One(_) => 1,
        Opened::PerHost(h) => h.len(),
    };
    // Per history: (work done, events), summed for the bar.
    let done: Arc<Vec<(AtomicU64, AtomicU64)>> = Arc::new(
        (0..hosts)
            .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
            .collect(),
    );
    let began = std::time::Instant::now();
    let options_for = |k: usize| BuildOptions {
        progress: bar.clone().map(|bar| {
            let done = Arc::clone(&done);
            Arc::new(move |p: Progress| {
                done[k].0.store(p.work_done, Ordering::Relaxed);
                done[k].1.store(p.events, Ordering::Relaxed);
                let work: u64 = done.iter().map(|d| d.0.load(Ordering::Relaxed)).sum();
                let events: u64 = done.iter().map(|d| d.1.load(Ordering::Relaxed)).sum();
                bar.set_position(work);
                bar.set_message(format!(
                    "{} events, {}",
                    events,
                    format::rate(events, began.elapsed())
                ));
            }) as Arc<dyn Fn(Progress) + Send + Sync>
        }),
        ..options.clone()
    };

    let built: Vec<Built> = match opened {
        Opened::One(mut source) => {
            let paths = output_paths(args, ids)?;
            let result = pipeline::build(&mut *source, analyses(&paths), &options_for(0));
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            vec![(None, result?.0)]
        }
        Opened::PerHost(hosts) => {
            let mut jobs = Vec::new();
            for (h, source) in hosts {
                let paths = host_output_paths(args, &h, ids)?;
                jobs.push((h, Mutex::new(Some(source)), paths));
            }
            let results = build_hosts(jobs, analyses, &options_for, meanwhile);
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            results.into_iter().collect::<Result<Vec<_>>>()?
        }
    };
    Ok((built, began.elapsed()))
}

/// A history set and its host (`None`: the traces as one source).
type Built = (Option<HostTraces>, BuildReport);

/// One pipeline per host, `cores` at a time (each pipeline has reader, builder and writer
/// threads of its own); results in host order. `meanwhile` runs on this thread once the
/// pipelines are started.
fn build_hosts(
    jobs: Vec<(HostTraces, Mutex<Option<CtfSource>>, Vec<PathBuf>)>,
    analyses: &(dyn Fn(&[PathBuf]) -> Vec<Analysis> + Sync),
    options_for: &(dyn Fn(usize) -> BuildOptions + Sync),
    meanwhile: &mut dyn FnMut(),
) -> Vec<Result<Built>> {
    let cores = sextant_trace::available_cores();
    let next = AtomicUsize::new(0);
    let run_one = |k: usize| -> Result<Built> {
        let (host, source, paths) = &jobs[k];
        sextant_trace::timing::mark(|| format!("host {} start", host.name));
        let mut source = source
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("each host is built once");
        let (report, _) = pipeline::build(&mut source, analyses(paths), &options_for(k))
            .with_context(|| format!("host {}", host.name))?;
        sextant_trace::timing::mark(|| format!("host {} built", host.name));
        Ok((Some(host.clone()), report))
    };
    let mut results: Vec<(usize, Result<Built>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cores.min(jobs.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= jobs.len() {
                            break out;
                        }
                        out.push((k, run_one(k)));
                    }
                })
            })
            .collect();
        meanwhile();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a build thread panicked"))
            .collect()
    });
    results.sort_by_key(|r| r.0);
    results.into_iter().map(|r| r.1).collect()
}

fn analysis_json(a: &AnalysisReport, host: Option<&HostTraces>) -> serde_json::Value {
    let mut v = json!({
        "id": a.id, "provider_version": a.version, "events": a.events,
        "intervals": a.intervals, "attributes": a.attributes,
        "output": a.path, "file_size": a.file_size,
    });
    if let Some(h) = host {
        v["trace"] = json!(h.name);
        v["host"] = json!(h.host);
    }
    v
}

fn print_summary(args: &BuildArgs, built: &[Built], elapsed: std::time::Duration) {
    for (_, report) in built {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
    }
    let events: u64 = built.iter().map(|b| b.1.events).sum();
    let start = built.iter().map(|b| b.1.start).min().unwrap_or(0);
    let end = built.iter().map(|b| b.1.end).max().unwrap_or(0);
    if args.json {
        let analyses: Vec<_> = built
            .iter()
            .flat_map(|(h, r)| r.analyses.iter().map(move |a| analysis_json(a, h.as_ref())))
            .collect();
        let warnings: Vec<&String> = built.iter().flat_map(|b| &b.1.warnings).collect();
        let mut summary = json!({
            "traces": args.traces, "events": events,
            "start": start, "end": end,
            "seconds": elapsed.as_secs_f64(),
            "events_per_second": events as f64 / elapsed.as_secs_f64().max(1e-9),
            "analyses": analyses, "warnings": warnings,
        });
        if built.iter().any(|b| b.0.is_some()) {
            // One history per host: each host's own figures.
            summary["hosts"] = built
                .iter()
                .filter_map(|(h, r)| {
                    let h = h.as_ref()?;
                    Some(json!({
                        "trace": h.name, "host": h.host, "trace_dirs": h.dirs,
                        "events": r.events, "start": r.start, "end": r.end,
                        "seconds": r.elapsed.as_secs_f64(),
                        "analyses": r.analyses.iter().map(|a| analysis_json(a, None)).collect::<Vec<_>>(),
                    }))
                })
                .collect();
        }
        println!("{summary}");
        return;
    }
    println!(
        "{} events in {} ({}), time range {} .. {}",
        events,
        format::duration(elapsed),
        format::rate(events, elapsed),
        start,
        end
    );
    for (host, report) in built {
        if let Some(h) = host {
            println!(
                " {} (host {}): {} events, time range {} .. {}",
                h.name, h.host, report.events, report.start, report.end
            );
        }
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
}
