//! The Trace Compass XML analysis interpreter ("data-driven analyses").
//!
//! [`load_file`] reads an XML file into a [`dom::Element`] tree, checks it
//! against the rules of Trace Compass's schemas ([`validate`]), and compiles every
//! `stateProvider` and `pattern` into a [`Program`] (event-name dispatch,
//! field names resolved to ids, paths and values pre-built) plus view
//! descriptions ([`view::ViewDef`]). A [`Runtime`] then executes a program event by
//! event on an `sht` state system: data flows trace events -> [`EventAccess`] ->
//! [`Runtime`] -> `StateSystemBuilder` -> history backend, and patterns also emit
//! [`Segment`]s. [`build_in_memory`] and [`build_history_tree`] run an analysis
//! over an XML stub trace; [`provider::XmlProvider`] runs it inside the
//! `sextant_providers` pipeline (CTF traces, `sextant build --xml`).

pub mod compile;
pub mod dom;
pub mod js;
pub mod program;
pub mod provider;
pub mod runtime;
pub mod validate;
pub mod view;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sextant_trace::{StubEvent, StubValue, XmlStubTrace};
use sht::{HtConfig, StateSystem, StateSystemBuilder, StateValue};

pub use program::{AnalysisKind, Program};
pub use runtime::{EventAccess, RunError, Runtime, Segment};

/// Why an XML analysis file cannot be used. Every variant names the file; content
/// errors name the line and the element.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("{}: cannot read: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: malformed XML: {message}", file.display())]
    Malformed {
        file: PathBuf,
        line: u32,
        message: String,
    },
    /// The file does not validate against Trace Compass's schema (it would be ignored there).
    #[error("{}:{line}: <{element}>: invalid: {message}", file.display())]
    Schema {
        file: PathBuf,
        line: u32,
        element: String,
        message: String,
    },
    /// Valid, but Trace Compass's compiler rejects it (the analysis is unavailable).
    #[error("{}:{line}: <{element}>: {message}", file.display())]
    Compile {
        file: PathBuf,
        line: u32,
        element: String,
        message: String,
    },
}

/// One loaded file: its analyses (last definition of an id wins) and views.
#[derive(Debug)]
pub struct XmlFile {
    pub path: PathBuf,
    pub analyses: Vec<Arc<Program>>,
    pub views: Vec<view::ViewDef>,
    /// Analyses the compiler rejected (Trace Compass makes them unavailable; the
    /// rest of the file stays usable).
    pub rejected: Vec<XmlError>,
}

impl XmlFile {
    pub fn analysis(&self, id: &str) -> Option<&Arc<Program>> {
        self.analyses.iter().find(|a| a.id == id)
    }
}

/// Reads, validates and compiles one file.
pub fn load_file(path: &Path) -> Result<XmlFile, XmlError> {
    let bytes = std::fs::read(path).map_err(|source| XmlError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    load_bytes(&bytes, path)
}

/// Same as [`load_file`] on bytes already in memory (`path` names them in errors).
pub fn load_bytes(bytes: &[u8], path: &Path) -> Result<XmlFile, XmlError> {
    let root = dom::parse(bytes, path)?;
    validate::validate(&root, path)?;
    compile_document(&root, path)
}

/// Compiles a validated document.
pub fn compile_document(root: &dom::Element, path: &Path) -> Result<XmlFile, XmlError> {
    let mut elements = Vec::new();
    root.descendants_named("stateProvider", &mut elements);
    root.descendants_named("pattern", &mut elements);
    elements.sort_by_key(|e| e.line);
    let mut analyses: Vec<Arc<Program>> = Vec::new();
    let mut rejected = Vec::new();
    for el in elements {
        let prog = match compile::compile_analysis(el, path) {
            Ok(p) => p,
            Err(e) => {
                rejected.push(e);
                continue;
            }
        };
        // Duplicate ids: the last element in document order wins.
        analyses.retain(|a| a.id != prog.id);
        analyses.push(Arc::new(prog));
    }
    let views = view::compile_views(root, path)?;
    Ok(XmlFile {
        path: path.to_path_buf(),
        analyses,
        views,
        rejected,
    })
}

/// Loads several files; an analysis id defined in several files: the last file wins.
pub fn load_files<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<XmlFile>, XmlError> {
    paths.iter().map(|p| load_file(p.as_ref())).collect()
}

/// A state system built by an analysis, with the pattern segments (sorted by
/// start, end, name, content).
pub struct AnalysisOutput {
    pub state_system: StateSystem,
    pub segments: Vec<Segment>,
}

/// A stub event seen through [`EventAccess`].
pub struct StubEventAccess<'a> {
    pub event: &'a StubEvent,
}

/// State value of a stub field with Trace Compass's Java type.
pub fn stub_value(v: &StubValue) -> StateValue {
    match v {
        StubValue::Int(i) => StateValue::Int(*i as i32),
        StubValue::Long(l) => StateValue::Long(*l),
        StubValue::Str(s) => StateValue::string(s),
        StubValue::Float(d) => StateValue::Double(*d),
        // Arrays have no state-value form; their text is what String.valueOf would not
        // reproduce anyway (Java prints an identity hash), so use a readable list.
        StubValue::IntArray(a) | StubValue::LongArray(a) => StateValue::string(&format!("{a:?}")),
    }
}

impl EventAccess for StubEventAccess<'_> {
    fn name(&self) -> &str {
        &self.event.name
    }
    fn timestamp(&self) -> i64 {
        self.event.timestamp
    }
    fn field(&self, _id: program::FieldId, name: &str) -> Option<StateValue> {
        self.event.field(name).map(stub_value)
    }
    fn cpu(&self) -> Option<u32> {
        self.event.cpu
    }
}

/// Events of a custom-parser trace (`sextant_trace::custom_xml`, `custom_txt`) as a
/// stub trace: every field is a string, as Trace Compass's custom events.
pub fn stub_trace_from_custom(
    name: String,
    path: PathBuf,
    events: Vec<sextant_trace::custom_xml::CustomEvent>,
) -> XmlStubTrace {
    let events = events
        .into_iter()
        .map(|e| StubEvent {
            timestamp: e.timestamp_ns,
            name: e.event_type,
            cpu: None,
            fields: e
                .fields
                .into_iter()
                .map(|(n, v)| (n, StubValue::Str(v)))
                .collect(),
            line: u32::try_from(e.line).unwrap_or(u32::MAX),
        })
        .collect();
    XmlStubTrace::from_events(name, path, Vec::new(), events)
}

/// Runs `program` over `trace` into `ss` (already created at the trace start) and closes it.
pub fn run_on_stub(
    program: &Arc<Program>,
    trace: &XmlStubTrace,
    ss: &mut dyn StateSystemBuilder,
) -> Result<Vec<Segment>, RunError> {
    let mut rt = Runtime::new(Arc::clone(program), trace.name());
    for e in trace.events() {
        rt.handle_event(&StubEventAccess { event: e }, ss)?;
    }
    rt.finish(ss)?;
    let end = trace.end_time().unwrap_or(0);
    ss.close(end).map_err(|source| RunError::State {
        analysis: program.id.clone(),
        timestamp: end,
        source,
    })?;
    Ok(rt.take_segments())
}

/// Runs an analysis over a stub trace into an in-memory state system.
pub fn build_in_memory(
    program: &Arc<Program>,
    trace: &XmlStubTrace,
) -> Result<AnalysisOutput, RunError> {
    let mut ss = StateSystem::in_memory(trace.start_time().unwrap_or(0));
    let segments = run_on_stub(program, trace, &mut ss)?;
    Ok(AnalysisOutput {
        state_system: ss,
        segments,
    })
}

/// Why a history-tree build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: sht::Error,
    },
}

/// Runs an analysis over a stub trace into a `.ht` file at `path` (written under a
/// temporary name and renamed when complete), with the program's version as the
/// provider version. Returns the state system opened on the finished file.
pub fn build_history_tree(
    program: &Arc<Program>,
    trace: &XmlStubTrace,
    path: &Path,
) -> Result<AnalysisOutput, BuildError> {
    let file_err = |source| BuildError::File {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("ht.tmp");
    let config = HtConfig::new(trace.start_time().unwrap_or(0), program.version);
    let mut ss = StateSystem::create_history_tree(&tmp, config).map_err(file_err)?;
    let segments = match run_on_stub(program, trace, &mut ss) {
        Ok(s) => s,
        Err(e) => {
            drop(ss);
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
    };
    drop(ss);
    std::fs::rename(&tmp, path).map_err(|source| {
        file_err(sht::Error::Io {
            path: path.to_path_buf(),
            source,
        })
    })?;
    let state_system = StateSystem::open(path, Some(program.version)).map_err(file_err)?;
    Ok(AnalysisOutput {
        state_system,
        segments,
    })
}
