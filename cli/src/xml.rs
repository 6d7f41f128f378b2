//! `sextant xml check FILE...`: validate XML analysis files and list what they define.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use sextant_xml::AnalysisKind;

#[derive(Args)]
pub struct XmlArgs {
    #[command(subcommand)]
    command: XmlCommand,
}

#[derive(Subcommand)]
enum XmlCommand {
    /// Validate and compile XML analysis files; list their analyses, views and handled events.
    Check {
        /// XML analysis files (Trace Compass `tmfxml` documents).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(args: XmlArgs) -> Result<()> {
    let XmlCommand::Check { files } = args.command;
    let mut failed = 0;
    for path in &files {
        match sextant_xml::load_file(path) {
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
            Ok(file) => {
                if file.rejected.is_empty() {
                    println!("{}: ok", path.display());
                } else {
                    failed += 1;
                    println!(
                        "{}: valid, but some analyses do not compile",
                        path.display()
                    );
                    for e in &file.rejected {
                        eprintln!("error: {e}");
                    }
                }
                for a in &file.analyses {
                    let kind = match a.kind {
                        AnalysisKind::StateProvider => "state provider",
                        AnalysisKind::Pattern => "pattern",
                    };
                    println!("  {kind} {} (version {}, \"{}\")", a.id, a.version, a.label);
                    if !a.trace_types.is_empty() {
                        println!("    trace types: {}", a.trace_types.join(", "));
                    }
                    let mut events: Vec<&str> = Vec::new();
                    for h in &a.handlers {
                        if !events.contains(&h.event.source.as_str()) {
                            events.push(&h.event.source);
                        }
                    }
                    if !events.is_empty() {
                        println!("    handles: {}", events.join(", "));
                    }
                    if let Some(p) = &a.pattern {
                        for f in &p.fsms {
                            let mut ev: Vec<&str> = f
                                .states
                                .iter()
                                .flat_map(|s| &s.transitions)
                                .map(|t| t.event.as_ref().map_or("*", |m| m.source.as_str()))
                                .collect();
                            ev.sort_unstable();
                            ev.dedup();
                            println!(
                                "    fsm {} ({} states; events: {})",
                                f.id,
                                f.states.len(),
                                ev.join(", ")
                            );
                        }
                    }
                    if !a.fields.is_empty() {
                        println!("    reads fields: {}", a.fields.join(", "));
                    }
                    if a.uses_script {
                        println!("    uses scripts (JavaScript expression subset)");
                    }
                }
                for v in &file.views {
                    println!(
                        "  {:?} view {} (\"{}\"; analyses: {}; {} top entries)",
                        v.kind,
                        v.id,
                        v.label,
                        if v.analyses.is_empty() {
                            "all".to_string()
                        } else {
                            v.analyses.join(", ")
                        },
                        v.entries.len()
                    );
                }
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} file(s) rejected", files.len());
    }
    Ok(())
}
