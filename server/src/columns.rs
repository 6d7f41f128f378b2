//! The column indexes (`<history>.ht.cols`, see `sht::columns`) of the finished
//! histories the server holds: time-graph rows are sampled from them (a binary
//! search and a few small blocks per row) instead of from the history tree
//! (every node overlapping the window, whatever the rows).
//!
//! Each state system handle has a [`Columns`] slot. Once a history is complete
//! (built by an analysis, or reused) [`schedule`] queues it to one background
//! worker, which opens the index left by an earlier run if it still matches the
//! history, or builds it (one build at a time, so the memory it takes is
//! bounded by `sht::columns::BuildOptions::run_budget`). Until the slot is
//! ready, and after any error, the views answer from the tree. Each result is
//! logged on stderr (`sextant serve: column index ...`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use sht::columns::{self, BuildOptions, ColumnIndex, ColumnsError};

/// Where a slot's index stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ColumnStatus {
    /// Not scheduled (a history being built, or not a history file).
    #[default]
    None,
    Queued,
    Building,
    Ready,
    /// Could not be opened nor built, or failed a query: the tree answers.
    Failed(String),
}

/// The column index of one state system, once ready.
#[derive(Default)]
pub struct Columns {
    inner: Mutex<(ColumnStatus, Option<Arc<ColumnIndex>>)>,
}

impl Columns {
    fn lock(&self) -> std::sync::MutexGuard<'_, (ColumnStatus, Option<Arc<ColumnIndex>>)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The index, if ready.
    pub fn get(&self) -> Option<Arc<ColumnIndex>> {
        self.lock().1.clone()
    }

    pub fn status(&self) -> ColumnStatus {
        self.lock().0.clone()
    }

    /// Stops using the index after a query error (logged once).
    pub fn fail(&self, error: &ColumnsError) {
        let mut g = self.lock();
        if g.1.take().is_some() {
            eprintln!("sextant serve: column index no longer used, answering from the history tree: {error}");
        }
        g.0 = ColumnStatus::Failed(error.to_string());
    }

    /// Unloads the index (the tree answers), returning it: for comparisons.
    pub fn unload(&self) -> Option<Arc<ColumnIndex>> {
        let mut g = self.lock();
        g.0 = ColumnStatus::None;
        g.1.take()
    }

    /// Uses `index` from now on.
    pub fn load(&self, index: Arc<ColumnIndex>) {
        *self.lock() = (ColumnStatus::Ready, Some(index));
    }

    fn set(&self, status: ColumnStatus) {
        self.lock().0 = status;
    }
}

/// What the worker did for one history.
#[derive(Clone, Debug)]
pub struct ColumnReport {
    pub history: PathBuf,
    pub index: PathBuf,
    /// Built now (else reused from an earlier run).
    pub built: bool,
    pub bytes: u64,
    pub intervals: u64,
    pub took: Duration,
}

struct Job {
    slot: Weak<Columns>,
    history: PathBuf,
}

static PENDING: AtomicUsize = AtomicUsize::new(0);

fn reports() -> &'static Mutex<Vec<ColumnReport>> {
    static R: OnceLock<Mutex<Vec<ColumnReport>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Histories queued or being indexed now.
pub fn pending() -> usize {
    PENDING.load(Ordering::Acquire)
}

/// Every index opened or built by this process so far.
pub fn done() -> Vec<ColumnReport> {
    reports().lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Whether indexes are used: `SEXTANT_COLUMNS=0` turns them off.
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("SEXTANT_COLUMNS").map_or(true, |v| v.trim() != "0"))
}

fn worker() -> Option<&'static Mutex<Sender<Job>>> {
    static TX: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("column-index".into())
            .spawn(move || {
                for job in rx {
                    if let Some(slot) = job.slot.upgrade() {
                        slot.set(ColumnStatus::Building);
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            prepare(&slot, &job.history)
                        }));
                        if r.is_err() {
                            slot.set(ColumnStatus::Failed("index build panicked".into()));
                        }
                    }
                    PENDING.fetch_sub(1, Ordering::AcqRel);
                }
            })
            .ok()
            .map(|_| Mutex::new(tx))
    })
    .as_ref()
}

/// Whether views read the history of analysis `id` through its index: the
/// kernel history (Control Flow, Resources) and the histories of the
/// time-graph state views. The others (explorer, XML and VM views, XY
/// outputs) query the tree: an index of theirs would cost disk, memory and
/// build time for nothing.
pub fn wanted(id: &str) -> bool {
    use crate::state_views::ViewKind;
    id == sextant_providers::kernel::KERNEL_ANALYSIS_ID
        || crate::analysis_views::VIEWS
            .iter()
            .any(|v| v.analysis == id && matches!(v.kind, ViewKind::TimeGraph { .. }))
}

/// Queues the finished history `history` (the file `<analysis id>.ht` behind
/// the state system of `slot`) for its index, if a view reads it through one
/// ([`wanted`]).
pub fn schedule(slot: &Arc<Columns>, history: &Path) {
    let id = history.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if !enabled() || !wanted(id) {
        return;
    }
    let Some(tx) = worker() else {
        return;
    };
    slot.set(ColumnStatus::Queued);
    PENDING.fetch_add(1, Ordering::AcqRel);
    let job = Job {
        slot: Arc::downgrade(slot),
        history: history.to_path_buf(),
    };
    if tx
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(job)
        .is_err()
    {
        PENDING.fetch_sub(1, Ordering::AcqRel);
        slot.set(ColumnStatus::Failed("no index worker".into()));
    }
}

/// Opens the index of `history` if it matches, else builds it; then loads it.
fn prepare(slot: &Columns, history: &Path) {
    let index = columns::index_path(history);
    let began = Instant::now();
    let mut built = false;
    let opened = match ColumnIndex::open(&index, history) {
        Ok(i) => Ok(i),
        Err(e) => {
            if !matches!(&e, ColumnsError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
            {
                eprintln!("sextant serve: column index not used, rebuilding it: {e}");
            }
            built = true;
            columns::build(history, &index, &BuildOptions::default())
                .and_then(|_| ColumnIndex::open(&index, history))
        }
    };
    match opened {
        Ok(i) => {
            let report = ColumnReport {
                history: history.to_path_buf(),
                index: index.clone(),
                built,
                bytes: i.file_size(),
                intervals: i.interval_count(),
                took: began.elapsed(),
            };
            eprintln!(
                "sextant serve: column index {} {}: {} intervals, {} bytes, in {:.1} s",
                index.display(),
                if built { "built" } else { "reused" },
                report.intervals,
                report.bytes,
                report.took.as_secs_f64()
            );
            reports()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(report);
            slot.load(Arc::new(i));
        }
        Err(e) => {
            eprintln!(
                "sextant serve: no column index for {}: {e}",
                history.display()
            );
            slot.set(ColumnStatus::Failed(e.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_histories_read_through_an_index_are_wanted() {
        assert!(wanted(sextant_providers::kernel::KERNEL_ANALYSIS_ID));
        // A time-graph state view (OpenStack Nova VM states).
        assert!(wanted(sextant_providers::openstack::nova::ID));
        // Disk I/O is an XY view: its history is queried from the tree.
        assert!(!wanted(sextant_providers::diskio::DISKIO_ANALYSIS_ID));
        assert!(!wanted(
            "org.eclipse.tracecompass.incubator.virtual.machine.analysis.core.overhead.analysis"
        ));
        assert!(!wanted(""));
    }
}
