//! An XML analysis as a `sextant_providers` [`StateProvider`], so the build
//! pipeline (CTF traces, experiments, `sextant build --xml`) can run it next to
//! native providers.
//!
//! The pipeline hands integer fields as `i64` without Java's Integer/Long
//! distinction; they become Long values, which is what Trace Compass gives for
//! CTF integer fields. (On XML stub traces use [`crate::build_in_memory`], which
//! keeps `int` fields as Integer.)
//!
//! A pattern's segments are kept only when [`XmlProvider::with_segment_file`] names
//! a file: they are then written there (spilling during the run above a threshold),
//! to be read back with [`crate::segstore::SegmentFile::open`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sextant_providers::{EventFields, ProviderError, StateProvider, Subscription, TraceInfo};
use sht::{StateSystemBuilder, StateValue};

use crate::program::{AnalysisKind, FieldId, Program};
use crate::runtime::{EventAccess, RunError, Runtime};
use crate::XmlError;

/// A compiled XML analysis running in the pipeline.
pub struct XmlProvider {
    program: Arc<Program>,
    id: &'static str,
    fields: Vec<&'static str>,
    runtime: Option<Runtime>,
    /// Event class names and their matching handlers, by handler number.
    classes: Vec<(String, Arc<[usize]>)>,
    /// Segment file and in-memory limit; `None` = segments are discarded.
    segment_file: Option<(PathBuf, usize)>,
}

impl XmlProvider {
    pub fn new(program: Arc<Program>) -> Self {
        // The pipeline's contract wants 'static names; one small leak per analysis run.
        let id: &'static str = Box::leak(program.id.clone().into_boxed_str());
        let fields = program
            .fields
            .iter()
            .map(|f| &*Box::leak(f.clone().into_boxed_str()))
            .collect();
        XmlProvider {
            program,
            id,
            fields,
            runtime: None,
            classes: Vec::new(),
            segment_file: None,
        }
    }

    /// Writes the pattern's segments to `path` when the build finishes (via a
    /// temporary file), holding at most `threshold` of them in memory meanwhile.
    pub fn with_segment_file(mut self, path: &Path, threshold: usize) -> Self {
        self.segment_file = Some((path.to_path_buf(), threshold));
        self
    }

    fn new_runtime(&self, host_id: &str) -> Runtime {
        let mut rt = Runtime::new(Arc::clone(&self.program), host_id);
        if let Some((path, threshold)) = &self.segment_file {
            rt.spill_segments_to(path, *threshold);
        }
        rt
    }
}

/// Every analysis of the given files as providers (all files are loaded and checked first).
pub fn providers_from_files<P: AsRef<Path>>(
    paths: &[P],
) -> Result<Vec<Box<dyn StateProvider>>, XmlError> {
    let files = crate::load_files(paths)?;
    Ok(files
        .into_iter()
        .flat_map(|f| f.analyses)
        .map(|p| Box::new(XmlProvider::new(p)) as Box<dyn StateProvider>)
        .collect())
}

/// Trace Compass's LTTng trace types and the generic CTF type they extend.
const KERNEL_TYPE: &str = "org.eclipse.linuxtools.lttng2.kernel.tracetype";
const UST_TYPE: &str = "org.eclipse.linuxtools.lttng2.ust.tracetype";
const CTF_TYPE: &str = "org.eclipse.linuxtools.tmf.ctf.core.tracetype";

/// Whether an analysis declaring `trace_types` applies to a trace of this CTF
/// `domain`: no declared type means every trace; a type applies to its own trace
/// class and subclasses (LTTng kernel and UST traces are CTF traces). Traces of
/// other kinds (stub, custom parsers: empty domain) are not checked.
pub fn applies_to(trace_types: &[String], domain: &str) -> bool {
    let own = match domain {
        "kernel" => KERNEL_TYPE,
        "ust" => UST_TYPE,
        _ => return true,
    };
    trace_types.is_empty() || trace_types.iter().any(|t| t == own || t == CTF_TYPE)
}

struct PipelineEvent<'a> {
    name: &'a str,
    fields: &'a dyn EventFields,
}

impl EventAccess for PipelineEvent<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn timestamp(&self) -> i64 {
        self.fields.timestamp()
    }
    fn field(&self, id: FieldId, _name: &str) -> Option<StateValue> {
        if let Some(v) = self.fields.int(id) {
            return Some(StateValue::Long(v));
        }
        self.fields.string(id).map(StateValue::string)
    }
    fn cpu(&self) -> Option<u32> {
        self.fields.cpu()
    }
}

fn to_sht(e: RunError) -> sht::Error {
    match e {
        RunError::State { source, .. } => source,
        // sht has no variant for interpreter failures; Config carries the message.
        other @ (RunError::Value { .. } | RunError::Segments { .. }) => {
            sht::Error::Config(other.to_string())
        }
    }
}

impl StateProvider for XmlProvider {
    fn id(&self) -> &'static str {
        self.id
    }

    fn version(&self) -> i32 {
        self.program.version
    }

    fn check_trace(&mut self, trace: &TraceInfo) -> Result<(), ProviderError> {
        if !applies_to(&self.program.trace_types, &trace.domain) {
            return Err(ProviderError::Unsupported {
                analysis: self.program.id.clone(),
                what: format!(
                    "written for trace type(s) {}, not for this {} trace",
                    self.program.trace_types.join(", "),
                    trace.domain
                ),
            });
        }
        // Host id: the trace name, as for Trace Compass's simple traces.
        self.runtime = Some(self.new_runtime(&trace.name));
        Ok(())
    }

    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        // Patterns see every event (scenarios are created on any event); state
        // providers only the names one of their handlers matches.
        let wanted = self.program.kind == AnalysisKind::Pattern
            || self
                .program
                .handlers
                .iter()
                .any(|h| h.event.matches(event_name));
        if !wanted {
            return None;
        }
        let handlers = Runtime::new(Arc::clone(&self.program), "").handlers_for(event_name);
        self.classes.push((event_name.to_string(), handlers));
        Some(Subscription {
            handler: (self.classes.len() - 1) as u32,
            fields: self.fields.clone(),
        })
    }

    fn handle(
        &mut self,
        handler: u32,
        event: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        if self.runtime.is_none() {
            self.runtime = Some(self.new_runtime(""));
        }
        let rt = self.runtime.as_mut().expect("created above");
        let (name, handlers) = &self.classes[handler as usize];
        let ev = PipelineEvent {
            name,
            fields: event,
        };
        rt.handle_dispatched(&ev, handlers, ss).map_err(to_sht)
    }

    fn finish(&mut self, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        let Some(rt) = self.runtime.as_mut() else {
            return Ok(());
        };
        rt.finish(ss).map_err(to_sht)?;
        let Some((path, _)) = &self.segment_file else {
            // Nobody can read them: do not keep them alive with the provider.
            drop(rt.take_segments());
            return Ok(());
        };
        // A store that stayed under the threshold is in memory: write it too.
        match rt.finish_segments().map_err(to_sht)? {
            crate::segstore::SegmentStore::Memory(v) => {
                crate::segstore::write_segment_file(&v, path).map_err(|source| {
                    to_sht(RunError::Segments {
                        analysis: self.program.id.clone(),
                        source,
                    })
                })
            }
            crate::segstore::SegmentStore::File(_) => Ok(()),
        }
    }
}
