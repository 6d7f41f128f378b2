//! `sextant`: thin command-line wiring over the Sextant crates.
//!
//! Every command is a function in its own module; this file only parses
//! arguments and maps errors to exit codes (0 success, 1 failure, 2 usage).

mod bench;
mod bench_suites;
mod bench_trace;
mod build;
mod demo;
mod events;
mod format;
mod gen;
mod history;
mod serve;
mod sync;
mod top;
mod vm_report;
mod volume_report;
mod xml;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sextant",
    version,
    about = "Trace Compass-compatible state histories, built fast",
    long_about = "Sextant builds and queries state histories in Trace Compass's own .ht format.\n\
                  Run `sextant demo` for a first look."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a sample, build its history, and query it (a first look).
    Demo(demo::DemoArgs),
    /// Replay a state-change log (changes.jsonl) into a .ht file.
    Replay(history::ReplayArgs),
    /// Print every attribute and interval of a .ht file (canonical dump format).
    Dump(history::DumpArgs),
    /// Query a .ht file at a time (--at) or over a range (--from/--to).
    Query(history::QueryArgs),
    /// Show a .ht file's header, time range, node and attribute counts.
    Info(history::InfoArgs),
    /// Run analyses over a trace and write their state histories (.ht).
    Build(build::BuildArgs),
    /// Measure each stage on generated inputs (median, spread, throughput, memory).
    Bench(bench::BenchArgs),
    /// Serve state histories to trace viewers over the Trace Server Protocol.
    Serve(serve::ServeArgs),
    /// Check Trace Compass XML analysis files (`sextant xml check FILE...`).
    Xml(xml::XmlArgs),
    /// Synchronize multi-host traces by matching network packets; print the formulas.
    Sync(sync::SyncArgs),
    /// Write a synthetic LTTng kernel trace (CTF 1.8) of a chosen size.
    GenTrace(gen::GenTraceArgs),
    /// Print the events of CTF traces in time order (text close to babeltrace2's, or JSON).
    Events(events::EventsArgs),
    /// Count the events of CTF traces per name, with lost events, streams, packets, time range.
    Stats(events::StatsArgs),
    /// Follow an LTTng live session (`net://HOST[:PORT]/host/HOSTNAME/SESSION`): a live summary.
    Top(top::TopArgs),
    /// One VM across layers: Nova states, requests across services, QEMU migration,
    /// kernel threads of its QEMU process.
    VmReport(vm_report::VmReportArgs),
    /// Cinder volumes with the disk I/O of their device on the storage node.
    VolumeReport(volume_report::VolumeReportArgs),
}

/// Output piped into a program that stops reading (`sextant events t | head`) ends
/// the process quietly, as for other Unix tools, instead of a panic in `println!`.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    restore_default_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Replay(a) => history::replay(a),
        Command::Dump(a) => history::dump(a),
        Command::Query(a) => history::query(a),
        Command::Info(a) => history::info(a),
        Command::Build(a) => build::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Xml(a) => xml::run(a),
        Command::Sync(a) => sync::run(a),
        Command::GenTrace(a) => gen::run(a),
        Command::Events(a) => events::events(a),
        Command::Stats(a) => events::stats(a),
        Command::Top(a) => top::run(a),
        Command::VmReport(a) => vm_report::run(a),
        Command::VolumeReport(a) => volume_report::run(a),
    };
    if let Err(e) = result {
        // A closed pipe (`sextant dump x.ht | head`) is not an error.
        if e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        }) {
            std::process::exit(0);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
