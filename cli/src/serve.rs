//! `sextant serve`: the Trace Server Protocol server, in the foreground.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (the trace viewers' default is 8080).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Directory for files the server makes (created if missing).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Only serve traces below this directory; relative trace paths are looked
    /// up here (repeatable).
    #[arg(long = "trace-root", value_name = "DIR")]
    pub trace_roots: Vec<PathBuf>,
    /// Trace Compass XML analysis files: their analyses run on opened traces and
    /// their views are served (repeatable).
    #[arg(long = "xml", value_name = "FILE")]
    pub xml: Vec<PathBuf>,
    /// Let clients open LTTng live sessions (`net://HOST[:PORT]/host/HOSTNAME/SESSION`
    /// as a trace path): their analyses follow the session until it is destroyed.
    #[arg(long)]
    pub live: bool,
    /// Follow this live session from the start, as an experiment named after it
    /// (repeatable; implies --live for it).
    #[arg(long, value_name = "net://...")]
    pub follow: Vec<String>,
    /// Clock synchronization of experiments whose traces come from several hosts:
    /// `auto` (match network packets; formulas saved in the experiment's folder of the
    /// data directory and reused), `off`, or a file written by `sextant sync -o`.
    #[arg(long, value_name = "auto|off|FILE", default_value = "auto")]
    pub sync: sextant_trace::sync::SyncMode,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = sextant_server::ServeConfig {
        host: args.host,
        port: args.port,
        data_dir: args.data_dir,
        trace_roots: args.trace_roots,
        xml_files: args.xml,
        live: args.live,
        follow: args.follow,
        sync: args.sync,
        ..Default::default()
    };
    sextant_server::run(config).context("serve")
}
