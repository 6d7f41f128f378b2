//! Event sources for the pipeline: adapters from the `trace` crate's readers to
//! [`EventSource`]. [`open`] picks the reader by path: a single `.xml` file is an
//! XML stub trace (Trace Compass's test format), directories are CTF traces (or
//! LTTng sessions) read as one [`Experiment`].

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex};

use sextant_trace::sync;
/// What front ends pass and get back about synchronization.
pub use sextant_trace::sync::{
    LinearTransform, SyncApplied, SyncMode, SyncOrigin, SAVED_SYNC_FILE,
};
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

/// The traces of one host of a multi-host experiment, with their formulas: Trace Compass
/// builds a trace's own analyses (the kernel analysis, ...) per trace, in the experiment's
/// synchronized time; [`open_host`] opens them as one source.
#[derive(Debug, Clone)]
pub struct HostTraces {
    /// Host id (clock UUID, else trace name), as [`sync::host_ids`].
    pub host: String,
    /// Display name of the host's first trace: the given path's name (`x/ctf` -> `x`), with
    /// `/<sub-folder>` when the path is a session holding several traces.
    pub name: String,
    /// Trace directories, in experiment order.
    pub dirs: Vec<PathBuf>,
    /// One formula per trace of `dirs` (identities, for a host whose source waits for its
    /// formulas: [`open_per_host_deferred`]).
    pub transforms: Vec<LinearTransform>,
    /// Size of the stream files, for progress.
    pub bytes: u64,
}

/// What [`open_per_host`] found.
pub enum Opened {
    /// One host (or XML stub traces, a live session): one source, synchronized if needed.
    One(Box<dyn EventSource>),
    /// CTF traces of several hosts, split by host (in order of first trace), each with its
    /// source in synchronized time.
    PerHost(Vec<(HostTraces, CtfSource)>),
}

/// Like [`open_synchronized`], but traces of several hosts are not read together: the
/// experiment is synchronized as `mode` says, then split by host (the compiled metadata
/// moves, no second parse), each host to be analysed on its own, as Trace Compass does per
/// trace.
pub fn open_per_host(
    paths: &[PathBuf],
    mode: &SyncMode,
    saved: Option<&Path>,
) -> Result<(Opened, Option<SyncApplied>), SourceError> {
    let (opened, mut applied) = open_per_host_saving_later(paths, mode, saved)?;
    if let Some(saving) = applied.as_mut().and_then(|a| a.saving.take()) {
        saving.wait()?;
    }
    Ok((opened, applied))
}

/// [`open_per_host`], with formulas computed now saved by a thread of their own
/// ([`SyncApplied::saving`]: wait for it before exiting).
pub fn open_per_host_saving_later(
    paths: &[PathBuf],
    mode: &SyncMode,
    saved: Option<&Path>,
) -> Result<(Opened, Option<SyncApplied>), SourceError> {
    match open_per_host_deferred(paths, mode, saved)? {
        (opened, Deferred::Done(applied)) => Ok((opened, applied)),
        (mut opened, Deferred::Matching(later)) => {
            let members: Vec<Vec<usize>> = later.waiting.iter().map(|w| w.0.clone()).collect();
            let applied = later.finish();
            // The hosts' formulas, in place of the identities they were handed out with.
            if let Opened::PerHost(hosts) = &mut opened {
                for ((host, _), members) in hosts.iter_mut().zip(&members) {
                    host.transforms = members
                        .iter()
                        .map(|&i| applied.transforms[i].clone())
                        .collect();
                }
            }
            Ok((opened, Some(applied)))
        }
    }
}

/// The synchronization of [`open_per_host_deferred`]: done, or its formulas still to be
/// computed from packets already read.
pub enum Deferred {
    Done(Option<SyncApplied>),
    Matching(SyncLater),
}

/// Packets being read (or read) while the traces were opened, and formulas to compute from
/// them, for the hosts' sources that wait ([`SyncLater::finish`]).
pub struct SyncLater {
    hosts: Vec<String>,
    names: Vec<String>,
    /// The packets read, or still being read (then this thread reads with the others).
    scan: Result<sync::PacketScan, Option<sync::ScanningPackets>>,
    saved: Option<PathBuf>,
    /// Per host (order of [`Opened::PerHost`]): its traces, and what its source waits on.
    waiting: Vec<(Vec<usize>, Option<PendingFormulas>)>,
}

impl SyncLater {
    /// Matches the packets, hands each waiting source its formulas, and says what was done
    /// (the file still to be saved: [`SyncApplied::saving`]).
    pub fn finish(mut self) -> SyncApplied {
        let mut scan = match std::mem::replace(&mut self.scan, Err(None)) {
            Ok(scan) => scan,
            // (The traces it gives back are the sources' now.)
            Err(Some(scanning)) => scanning.finish().1.unwrap_or_default(),
            Err(None) => unreachable!("finished once"),
        };
        let retired = scan.take_retired();
        let result = sync::synchronize_hosts(&self.hosts, scan);
        // The waiting sources first: the rest is for the caller.
        let transforms = result.transforms();
        for (members, pending) in &self.waiting {
            let formulas = members.iter().map(|&i| transforms[i].clone());
            match pending {
                Some(p) => p.resolve(Ok(formulas.collect())),
                // The host id sorting first keeps its clock (see `synchronize_hosts`).
                None => debug_assert!(formulas.clone().all(|t| t.is_identity())),
            }
        }
        let names = std::mem::take(&mut self.names);
        sync::computed(
            result,
            names,
            self.saved.as_deref(),
            Some(Box::new(retired)),
        )
    }
}

impl Drop for SyncLater {
    fn drop(&mut self) {
        // Not finished (an error on the way): waiting sources stop instead of waiting forever.
        for p in self.waiting.iter().filter_map(|w| w.1.as_ref()) {
            p.resolve(Err("the synchronization was not finished".into()));
        }
    }
}

/// Formulas of one host's traces, still being computed when its source is handed out: its
/// [`EventSource::run`] waits for them before its first event.
#[derive(Clone, Default)]
pub struct PendingFormulas(Arc<(Mutex<Option<FormulasOrWhyNot>>, Condvar)>);

/// A host's formulas (one per trace), or why there are none.
type FormulasOrWhyNot = Result<Vec<LinearTransform>, String>;

impl PendingFormulas {
    /// Gives the formulas (or why there are none); only the first call counts.
    fn resolve(&self, r: FormulasOrWhyNot) {
        let mut slot = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(r);
            self.0 .1.notify_all();
        }
    }

    fn wait(&self) -> FormulasOrWhyNot {
        let mut slot = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = slot.as_ref() {
                return r.clone();
            }
            slot = self.0 .1.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// [`open_per_host_saving_later`], handing out the hosts' sources before the formulas are
/// computed when packets are matched now; the caller runs [`SyncLater::finish`] once their
/// builds are under way (their threads and outputs are set up meanwhile). When each host has
/// one trace, the sources are handed out as soon as the traces' metadata is parsed: each
/// waits for its trace's packets to be read (this thread reads with the others in `finish`)
/// and for its formulas. Otherwise the packets are read first, and only the hosts other than
/// the reference (the host id sorting first, whose formulas are identities) wait.
pub fn open_per_host_deferred(
    paths: &[PathBuf],
    mode: &SyncMode,
    saved: Option<&Path>,
) -> Result<(Opened, Deferred), SourceError> {
    let live = |p: &PathBuf| p.to_str().is_some_and(crate::live_source::is_live_url);
    if paths.is_empty() || paths.iter().any(|p| is_xml(p) || live(p)) {
        return open_unsynchronized(paths).map(|s| (Opened::One(s), Deferred::Done(None)));
    }
    if let Some(p) = paths.iter().find(|p| !p.is_dir()) {
        return Err(OpenError::NotATrace(p.clone()).into());
    }
    // Packets will be matched unless formulas are given or saved: then they are read while
    // the traces are opened (stopping if the traces turn out to be of one host).
    let matching = *mode == SyncMode::Auto && !saved.is_some_and(Path::is_file);
    let (mut source, prescan) = if matching {
        let scanning = sync::start_scanning_packets(paths, sextant_trace::available_cores())?;
        let traces = scanning.traces();
        let exps: Vec<&Experiment> = traces.iter().map(|t| t.experiment()).collect();
        let hosts = sync::host_ids_of(&exps);
        let one_trace_each = (1..hosts.len()).all(|i| !hosts[..i].contains(&hosts[i]));
        if !scanning.one_host() && one_trace_each {
            // Each host's source is its trace, read once its packets are (its formulas
            // computed meanwhile, by `SyncLater::finish`).
            let names = exps
                .iter()
                .map(|e| e.traces()[0].path.display().to_string())
                .collect();
            let mut per_host: Vec<(HostTraces, CtfSource)> = Vec::new();
            let mut waiting = Vec::new();
            for (i, t) in traces.into_iter().enumerate() {
                let (meta, ctf) = (&t.experiment().traces()[0], &t.experiment().ctf_traces()[0]);
                let host = HostTraces {
                    host: hosts[i].clone(),
                    name: display_name(paths, &meta.path),
                    dirs: vec![meta.path.clone()],
                    transforms: vec![LinearTransform::identity()],
                    bytes: ctf.files.iter().map(|f| f.size).sum(),
                };
                let pending = PendingFormulas::default();
                let source = CtfSource {
                    experiment: Experiment::default(),
                    opening: Some(t),
                    name: String::new(),
                    pending: Some(pending.clone()),
                };
                per_host.push((host, source));
                waiting.push((vec![i], Some(pending)));
            }
            unique_names(per_host.iter_mut().map(|(h, _)| &mut h.name));
            for (h, s) in &mut per_host {
                s.name = h.name.clone();
            }
            let later = SyncLater {
                hosts,
                names,
                scan: Err(Some(scanning)),
                saved: saved.map(Path::to_path_buf),
                waiting,
            };
            sextant_trace::timing::mark(|| "sources handed out".into());
            return Ok((Opened::PerHost(per_host), Deferred::Matching(later)));
        }
        drop(exps);
        drop(traces);
        let (experiment, scan) = scanning.finish_joined()?;
        (CtfSource::new(experiment, paths), scan)
    } else {
        (CtfSource::open(paths)?, None)
    };
    sextant_trace::timing::mark(|| "opened (metadata parsed)".into());
    if let Some(scan) = prescan {
        // Several hosts (else no scan): split now, formulas later.
        let hosts = sync::host_ids(&source.experiment);
        let names = sync::trace_names(&source.experiment);
        let reference = hosts.iter().min().cloned();
        let (opened, members) = split_per_host(source, paths, &hosts)?;
        let Opened::PerHost(mut per_host) = opened else {
            unreachable!("traces of several hosts")
        };
        let mut waiting = Vec::new();
        for ((host, source), members) in per_host.iter_mut().zip(members) {
            let pending = (Some(&host.host) != reference.as_ref()).then(PendingFormulas::default);
            source.pending = pending.clone();
            waiting.push((members, pending));
        }
        let later = SyncLater {
            hosts,
            names,
            scan: Ok(scan),
            saved: saved.map(Path::to_path_buf),
            waiting,
        };
        return Ok((Opened::PerHost(per_host), Deferred::Matching(later)));
    }
    let applied = if *mode == SyncMode::Off {
        None
    } else {
        Some(sync::apply_prescanned(
            &mut source.experiment,
            mode,
            saved,
            None,
            &AtomicU64::new(0),
        )?)
    };
    let hosts = sync::host_ids(&source.experiment);
    if hosts.iter().all(|h| h == &hosts[0]) {
        return Ok((Opened::One(Box::new(source)), Deferred::Done(applied)));
    }
    let (opened, _) = split_per_host(source, paths, &hosts)?;
    Ok((opened, Deferred::Done(applied)))
}

/// The experiment of `source` split by host (`hosts`: each trace's), each host's traces
/// keeping their formulas; with each host's trace indices.
fn split_per_host(
    source: CtfSource,
    paths: &[PathBuf],
    hosts: &[String],
) -> Result<(Opened, Vec<Vec<usize>>), SourceError> {
    let exp = &source.experiment;
    let transforms: Vec<LinearTransform> = (0..hosts.len())
        .map(|i| exp.time_transforms().get(i))
        .collect();
    let mut groups: Vec<HostTraces> = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (i, meta) in exp.traces().iter().enumerate() {
        let bytes: u64 = exp.ctf_traces()[i].files.iter().map(|f| f.size).sum();
        match groups.iter().position(|g| g.host == hosts[i]) {
            Some(k) => {
                let g = &mut groups[k];
                members[k].push(i);
                g.dirs.push(meta.path.clone());
                g.transforms.push(transforms[i].clone());
                g.bytes += bytes;
            }
            None => {
                members.push(vec![i]);
                groups.push(HostTraces {
                    host: hosts[i].clone(),
                    name: display_name(paths, &meta.path),
                    dirs: vec![meta.path.clone()],
                    transforms: vec![transforms[i].clone()],
                    bytes,
                })
            }
        }
    }
    unique_names(groups.iter_mut().map(|g| &mut g.name));
    let parts = source.experiment.split(&members)?;
    sextant_trace::timing::mark(|| "split per host".into());
    let per_host = groups
        .into_iter()
        .zip(parts)
        .map(|(host, experiment)| {
            let name = host.name.clone();
            let source = CtfSource {
                experiment,
                opening: None,
                name,
                pending: None,
            };
            (host, source)
        })
        .collect();
    Ok((Opened::PerHost(per_host), members))
}

/// Makes host names tell the hosts apart (they name output files): `x`, `x-2`, ...
fn unique_names<'a>(names: impl Iterator<Item = &'a mut String>) {
    let mut seen: Vec<String> = Vec::new();
    for name in names {
        let base = name.clone();
        let mut n = 2;
        while seen.contains(name) {
            *name = format!("{base}-{n}");
            n += 1;
        }
        seen.push(name.clone());
    }
}

/// Name of trace directory `dir` found below one of `roots`.
fn display_name(roots: &[PathBuf], dir: &Path) -> String {
    let name_of = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let Some((root, rel)) = roots
        .iter()
        .find_map(|r| dir.strip_prefix(r).ok().map(|rel| (r, rel)))
    else {
        return name_of(dir).unwrap_or_else(|| dir.display().to_string());
    };
    let canonical = root.canonicalize().unwrap_or_else(|_| root.clone());
    let base = name_of(&canonical).unwrap_or_else(|| "trace".into());
    // `x/ctf` (the layout of the sample traces) is better named after `x`.
    let base = if base == "ctf" {
        canonical.parent().and_then(name_of).unwrap_or(base)
    } else {
        base
    };
    if rel.as_os_str().is_empty() || rel == Path::new("ctf") {
        base
    } else {
        format!("{base}/{}", rel.display())
    }
}

/// Opens again traces of an experiment (e.g. one host's, from [`open_per_host`]) as a source
/// in the experiment's synchronized time.
pub fn open_host(host: &HostTraces) -> Result<CtfSource, SourceError> {
    let mut source = CtfSource::open(&host.dirs)?;
    source.experiment.set_time_transforms(&host.transforms);
    source.name = host.name.clone();
    Ok(source)
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
    /// (Empty while `opening`.)
    experiment: Experiment,
    /// The trace, its packets still being read for its formulas (see `pending`).
    opening: Option<sync::TraceOpened>,
    name: String,
    /// Formulas to wait for before the first event (see [`open_per_host_deferred`]).
    pending: Option<PendingFormulas>,
}

impl CtfSource {
    pub fn open(paths: &[PathBuf]) -> Result<CtfSource, SourceError> {
        Ok(Self::new(Experiment::open(paths)?, paths))
    }

    /// A source over `experiment`, opened from `paths` (which name it).
    fn new(experiment: Experiment, paths: &[PathBuf]) -> CtfSource {
        let name = paths
            .iter()
            .map(|p| {
                p.file_name()
                    .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
            })
            .collect::<Vec<_>>()
            .join("+");
        CtfSource {
            experiment,
            opening: None,
            name,
            pending: None,
        }
    }

    pub fn experiment(&self) -> &Experiment {
        self.opening
            .as_ref()
            .map_or(&self.experiment, |t| t.experiment())
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
        let first = self.experiment().traces().first();
        TraceInfo {
            name: self.name.clone(),
            domain: first.map(|t| t.domain.clone()).unwrap_or_default(),
            env: first.map(|t| t.env.clone()).unwrap_or_default(),
            // Trace Compass's host ids (clock UUID, else trace name).
            hosts: sync::host_ids(self.experiment()),
        }
    }

    fn class_names(&self) -> Vec<String> {
        let exp = self.experiment();
        (0..exp.class_count())
            .map(|c| exp.class_name(ClassId(c)).to_string())
            .collect()
    }

    fn resolve(&self, class: u32, field: &str) -> Option<FieldKey> {
        self.experiment()
            .field_handle(ClassId(class), field)
            .map(|h| h.0 as FieldKey)
    }

    fn total_work(&self) -> Option<u64> {
        Some(self.experiment().total_bytes())
    }

    fn run(
        &mut self,
        visit: &mut dyn FnMut(&dyn SourceEvent) -> ControlFlow<()>,
        work_done: &AtomicU64,
    ) -> Result<(), SourceError> {
        if let Some(pending) = self.pending.take() {
            let transforms = pending.wait()?;
            if let Some(t) = self.opening.take() {
                let dir = t.experiment().traces()[0].path.display().to_string();
                self.experiment = t
                    .into_experiment()
                    .ok_or_else(|| format!("{dir}: still being read for synchronization"))?;
            }
            self.experiment.set_time_transforms(&transforms);
        }
        sextant_trace::timing::mark(|| format!("read start {}", self.name));
        let r = self
            .experiment
            .for_each(&mut |ev| visit(&CtfEvent(ev)), work_done)
            .map_err(Into::into);
        sextant_trace::timing::mark(|| format!("read end {}", self.name));
        r
    }

    fn warnings(&self) -> Vec<String> {
        self.experiment().warnings()
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
    fn per_host_names_follow_the_given_paths() {
        let dir = tempfile::tempdir().unwrap();
        let session = dir.path().join("session");
        let x = dir.path().join("x");
        std::fs::create_dir_all(session.join("host1/kernel")).unwrap();
        std::fs::create_dir_all(x.join("ctf")).unwrap();
        let roots = [session.clone(), x.clone()];
        // A session holding several traces: `<session>/<sub-folder>`.
        assert_eq!(
            display_name(&roots, &session.join("host1/kernel")),
            "session/host1/kernel"
        );
        // `x/ctf`, given as `x` or as `x/ctf`, is `x`.
        assert_eq!(display_name(&roots, &x.join("ctf")), "x");
        assert_eq!(display_name(&[x.join("ctf")], &x.join("ctf")), "x");
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
