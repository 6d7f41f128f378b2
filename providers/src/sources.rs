//! Event sources for the pipeline: adapters from the `trace` crate's readers to
//! [`EventSource`]. [`open`] picks the reader by path: a single `.xml` file is an
//! XML stub trace (Trace Compass's test format), directories are CTF traces (or
//! LTTng sessions) read as one [`Experiment`].

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use sextant_trace::sync::{self, SyncApplied, SyncMode};
use sextant_trace::{ClassId, Event, Experiment, FieldHandle};

use crate::pipeline::{EventSource, FieldKey, SourceError, SourceEvent};
use crate::stub_source::StubSource;
use crate::TraceInfo;

/// Why the given paths cannot be opened as one source.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no trace given")]
    NoPath,
    #[error("{0}: XML stub traces are read with other XML stub traces only, not with CTF traces")]
    XmlWithOthers(PathBuf),
    #[error("{0}: not a directory (CTF trace or LTTng session) nor an .xml stub trace")]
    NotATrace(PathBuf),
}

/// Opens `paths` as one event source: one `.xml` file, or CTF trace directories.
/// Traces of several hosts keep their own clocks; [`open_synchronized`] aligns them.
pub fn open(paths: &[PathBuf]) -> Result<Box<dyn EventSource>, SourceError> {
    open_synchronized(paths, &SyncMode::Off, None).map(|(source, _)| source)
}

/// Like [`open`], and CTF traces of several hosts are synchronized as `mode` says
/// (packet matching, computed once and saved at `saved` when given). The second value
/// says what was done (`None` for XML stub traces).
pub fn open_synchronized(
    paths: &[PathBuf],
    mode: &SyncMode,
    saved: Option<&Path>,
) -> Result<(Box<dyn EventSource>, Option<SyncApplied>), SourceError> {
    if paths.is_empty() {
        return Err(OpenError::NoPath.into());
    }
    let live = |p: &PathBuf| p.to_str().is_some_and(crate::live_source::is_live_url);
    if paths.iter().any(|p| is_xml(p) || live(p)) {
        return open_unsynchronized(paths).map(|s| (s, None));
    }
    if let Some(p) = paths.iter().find(|p| !p.is_dir()) {
        return Err(OpenError::NotATrace(p.clone()).into());
    }
    let mut source = CtfSource::open(paths)?;
    let applied = if *mode == SyncMode::Off {
        None
    } else {
        Some(sync::apply(
            &mut source.experiment,
            mode,
            saved,
            &AtomicU64::new(0),
        )?)
    };
    Ok((Box::new(source), applied))
}

fn open_unsynchronized(paths: &[PathBuf]) -> Result<Box<dyn EventSource>, SourceError> {
    let Some(first) = paths.first() else {
        return Err(OpenError::NoPath.into());
    };
    if let Some(url) = first
        .to_str()
        .filter(|s| crate::live_source::is_live_url(s))
    {
        // A live session (LTTng relay daemon), read alone.
        let opts = sextant_trace::live::LiveOptions::default();
        return Ok(Box::new(crate::live_source::LiveSource::open(url, opts)?));
    }
    if let Some(xml) = paths.iter().find(|p| is_xml(p)) {
        // Several stub traces form an experiment (a host and its guests); they do
        // not mix with CTF traces.
        if let Some(other) = paths.iter().find(|p| !is_xml(p)) {
            return Err(OpenError::XmlWithOthers(if other == first {
                xml.clone()
            } else {
                other.clone()
            })
            .into());
        }
        return Ok(Box::new(StubSource::open(paths)?));
    }
    if let Some(p) = paths.iter().find(|p| !p.is_dir()) {
        return Err(OpenError::NotATrace(p.clone()).into());
    }
    Ok(Box::new(CtfSource::open(paths)?))
}

fn is_xml(p: &Path) -> bool {
    p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml"))
}

/// CTF traces read as one time-ordered experiment.
pub struct CtfSource {
    experiment: Experiment,
    name: String,
}

impl CtfSource {
    pub fn open(paths: &[PathBuf]) -> Result<CtfSource, SourceError> {
        let experiment = Experiment::open(paths)?;
        let name = paths
            .iter()
            .map(|p| {
                p.file_name()
                    .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
            })
            .collect::<Vec<_>>()
            .join("+");
        Ok(CtfSource { experiment, name })
    }

    pub fn experiment(&self) -> &Experiment {
        &self.experiment
    }
}

struct CtfEvent<'a, 'b>(&'a Event<'b>);

impl SourceEvent for CtfEvent<'_, '_> {
    fn class(&self) -> u32 {
        self.0.class().0
    }
    fn timestamp(&self) -> i64 {
        self.0.timestamp()
    }
    fn cpu(&self) -> Option<u32> {
        self.0.cpu()
    }
    fn int(&self, key: FieldKey) -> Option<i64> {
        self.0.int(FieldHandle(key as u32))
    }
    fn string(&self, key: FieldKey) -> Option<&str> {
        self.0.string(FieldHandle(key as u32))
    }
    fn trace_index(&self) -> usize {
        self.0.trace_index()
    }
}

impl EventSource for CtfSource {
    /// The first trace's domain and environment (the traces of one LTTng session
    /// share them); the name joins the given paths' names.
    fn info(&self) -> TraceInfo {
        let first = self.experiment.traces().first();
        TraceInfo {
            name: self.name.clone(),
            domain: first.map(|t| t.domain.clone()).unwrap_or_default(),
            env: first.map(|t| t.env.clone()).unwrap_or_default(),
            // Trace Compass's host ids (clock UUID, else trace name).
            hosts: sync::host_ids(&self.experiment),
        }
    }

    fn class_names(&self) -> Vec<String> {
        (0..self.experiment.class_count())
            .map(|c| self.experiment.class_name(ClassId(c)).to_string())
            .collect()
    }

    fn resolve(&self, class: u32, field: &str) -> Option<FieldKey> {
        self.experiment
            .field_handle(ClassId(class), field)
            .map(|h| h.0 as FieldKey)
    }

    fn total_work(&self) -> Option<u64> {
        Some(self.experiment.total_bytes())
    }

    fn run(
        &mut self,
        visit: &mut dyn FnMut(&dyn SourceEvent) -> ControlFlow<()>,
        work_done: &AtomicU64,
    ) -> Result<(), SourceError> {
        self.experiment
            .for_each(&mut |ev| visit(&CtfEvent(ev)), work_done)
            .map_err(Into::into)
    }

    fn warnings(&self) -> Vec<String> {
        self.experiment.warnings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_err(paths: &[PathBuf]) -> String {
        match open(paths) {
            Ok(_) => panic!("{paths:?} should not open"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_paths_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(open_err(&[]), "no trace given");
        assert!(open_err(&[dir.path().join("missing")]).contains("missing"));

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "hello").unwrap();
        assert!(open_err(&[text]).contains("notes.txt"));
        let xml = dir.path().join("t.xml");
        std::fs::write(&xml, "<trace><event name=\"a\"/></trace>").unwrap();
        assert!(
            open_err(std::slice::from_ref(&xml)).contains("t.xml"),
            "invalid stub trace"
        );
        assert!(open_err(&[xml, dir.path().to_path_buf()]).contains("not with CTF traces"));
        // A directory without any CTF metadata.
        assert!(open_err(&[dir.path().to_path_buf()]).contains("no CTF trace"));
    }

    #[test]
    fn an_xml_stub_trace_gives_fields_by_class_and_the_cpu() {
        let dir = tempfile::tempdir().unwrap();
        let xml = dir.path().join("t.xml");
        std::fs::write(
            &xml,
            r#"<trace><set_aspects><field name="cpu" value="0" type="int"/></set_aspects>
<event timestamp="5" name="a"><field name="cpu" value="1" type="int"/><field name="x" value="7" type="long"/></event>
<event timestamp="6" name="b"><field name="cpu" value="0" type="int"/><field name="s" value="hi" type="string"/></event>
</trace>"#,
        )
        .unwrap();
        let mut src = open(&[xml]).unwrap();
        assert_eq!(src.class_names(), ["a", "b"]);
        assert_eq!(src.info().name, "t.xml");
        let x = src.resolve(0, "x").expect("a has x");
        assert_eq!(src.resolve(1, "x"), None, "b has no x");
        let s = src.resolve(1, "s").expect("b has s");
        let mut seen = Vec::new();
        src.run(
            &mut |ev| {
                seen.push((
                    ev.class(),
                    ev.timestamp(),
                    ev.cpu(),
                    ev.int(x),
                    ev.string(s).map(str::to_string),
                ));
                ControlFlow::Continue(())
            },
            &AtomicU64::new(0),
        )
        .unwrap();
        assert_eq!(
            seen,
            [
                (0, 5, Some(1), Some(7), None),
                (1, 6, Some(0), None, Some("hi".to_string()))
            ]
        );
    }
}
