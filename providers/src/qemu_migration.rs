//! QEMU live migration view (spec §3, thesis §4.9) from QEMU's UST tracepoints
//! (`qemu:migration_bitmap_sync_end`, `qemu:savevm_state_complete_precopy`, ...),
//! keyed by the QEMU process (`context._procname`).
//!
//! Tree: `QEMUs/<proc>/MIG_STATUS` (low-level activity) and
//! `QEMU_COPY/<proc>/{MIG_COPY (stage: 50 precopy, 100+k iteration k, 60
//! stop-and-copy), Round, Dirty_pages, Throttle, Downtime, Result}`. The
//! dirty-page series of thesis Algorithm 1 (pages per sync, and pages/s) is
//! published through [`MigrationSeries`]. Per-process counters are kept per
//! process (the Java provider kept them global).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use sht::{Quark, StateSystemBuilder, StateValue};

use crate::{EventFields, ProviderError, StateProvider, Subscription, TraceInfo};

pub const ID: &str = "org.eclipse.tracecompass.analysis.os.linux.core.qemu.module";
pub const VERSION: i32 = 1;

pub const BITMAP_SYNC: i32 = 1;
pub const SAVE_VMSTATE_SECTION: i32 = 2;
pub const PENDING: i32 = 3;
pub const TRANSFERRED: i32 = 41;
pub const PRECOPY: i32 = 50;
pub const STOP_COPY: i32 = 60;
/// Iteration k is drawn as `ITERATION_BASE + k`.
pub const ITERATION_BASE: i32 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    SyncStart,
    SyncEnd,
    SectionStart,
    SectionEnd,
    Transferred,
    Pending,
    WakeupRequest,
    CompletePrecopy,
    Throttle,
    AfterLoop,
    SetState,
    FdCancel,
    Failure,
    DowntimeCheckpoint,
}

const EVENTS: [(&str, Ev); 16] = [
    ("qemu:migration_bitmap_sync_start", Ev::SyncStart),
    ("qemu:migration_bitmap_sync_end", Ev::SyncEnd),
    ("qemu:savevm_section_start", Ev::SectionStart),
    ("qemu:savevm_section_end", Ev::SectionEnd),
    ("qemu:migrate_transferred", Ev::Transferred),
    ("qemu:migrate_pending", Ev::Pending),
    ("qemu:system_wakeup_request", Ev::WakeupRequest),
    ("qemu:savevm_state_complete_precopy", Ev::CompletePrecopy),
    ("qemu:migration_throttle", Ev::Throttle),
    ("qemu:migration_thread_after_loop", Ev::AfterLoop),
    ("qemu:migrate_set_state", Ev::SetState),
    ("qemu:migrate_fd_cancel", Ev::FdCancel),
    ("qemu:migrate_fd_error", Ev::Failure),
    ("qemu:migration_thread_file_err", Ev::Failure),
    ("qemu:migration_completion_file_err", Ev::Failure),
    ("qemu:vmstate_downtime_checkpoint", Ev::DowntimeCheckpoint),
];

const SLOT_PROCNAME: usize = 0;
const SLOT_DIRTY: usize = 1;
const SLOT_NEW_STATE: usize = 2;
const SLOT_CHECKPOINT: usize = 3;

/// One point of the dirty-page series: a bitmap sync.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DirtyPoint {
    pub time: i64,
    pub dirty_pages: i64,
    /// Pages per second since the previous sync (none for the first).
    pub rate: Option<f64>,
}

/// Dirty-page series by QEMU process.
#[derive(Clone, Debug, Default)]
pub struct MigrationSeries {
    pub dirty_pages: BTreeMap<String, Vec<DirtyPoint>>,
}

struct Process {
    status: Quark,
    copy: Quark,
    round: Quark,
    dirty: Quark,
    throttle: Quark,
    downtime: Quark,
    result: Quark,
    syncs: i32,
    stop_copy: bool,
    last_section_end: Option<i64>,
    ended: bool,
    series: Vec<DirtyPoint>,
}

#[derive(Default)]
pub struct QemuMigrationProvider {
    handlers: Vec<Ev>,
    procs: HashMap<Box<str>, Process>,
    without_procname: u64,
    sink: Option<Arc<Mutex<MigrationSeries>>>,
}

impl QemuMigrationProvider {
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider that publishes its dirty-page series into `sink` when the build ends.
    pub fn with_series(sink: Arc<Mutex<MigrationSeries>>) -> Self {
        QemuMigrationProvider {
            sink: Some(sink),
            ..Self::default()
        }
    }

    fn process(
        &mut self,
        name: &str,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<&mut Process> {
        if !self.procs.contains_key(name) {
            let copy_base = ss.quark_and_add(&["QEMU_COPY", name])?;
            let mut leaf = |n: &str| ss.quark_relative_and_add(copy_base, &[n]);
            let (copy, round, dirty, throttle, downtime, result) = (
                leaf("MIG_COPY")?,
                leaf("Round")?,
                leaf("Dirty_pages")?,
                leaf("Throttle")?,
                leaf("Downtime")?,
                leaf("Result")?,
            );
            let status = ss.quark_and_add(&["QEMUs", name, "MIG_STATUS"])?;
            self.procs.insert(
                name.into(),
                Process {
                    status,
                    copy,
                    round,
                    dirty,
                    throttle,
                    downtime,
                    result,
                    syncs: 0,
                    stop_copy: false,
                    last_section_end: None,
                    ended: false,
                    series: Vec::new(),
                },
            );
        }
        Ok(self.procs.get_mut(name).expect("inserted above"))
    }
}

/// Marks the end of the migration once.
fn end_migration(
    p: &mut Process,
    t: i64,
    result: &str,
    ss: &mut dyn StateSystemBuilder,
) -> sht::Result<()> {
    if p.ended {
        return Ok(());
    }
    p.ended = true;
    ss.modify(t, StateValue::from(result), p.result)?;
    ss.modify(t, StateValue::Null, p.downtime)
}

impl StateProvider for QemuMigrationProvider {
    fn id(&self) -> &'static str {
        ID
    }
    fn version(&self) -> i32 {
        VERSION
    }
    fn check_trace(&mut self, _trace: &TraceInfo) -> Result<(), ProviderError> {
        Ok(())
    }
    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        let (_, ev) = EVENTS.iter().find(|(n, _)| *n == event_name)?;
        self.handlers.push(*ev);
        Some(Subscription {
            handler: (self.handlers.len() - 1) as u32,
            fields: vec![
                "context._procname",
                "dirty_pages",
                "new_state",
                "checkpoint",
            ],
        })
    }
    fn check_subscriptions(&self, missing: &[(String, &'static str)]) -> Result<(), ProviderError> {
        if self.handlers.is_empty() {
            return Err(ProviderError::Unsupported {
                analysis: ID.into(),
                what: "the trace has no QEMU migration events (`qemu:migration_*`)".into(),
            });
        }
        // Without the procname context no event can be attributed to a process.
        let all_without_procname = self.handlers.len()
            <= missing
                .iter()
                .filter(|(_, f)| *f == "context._procname")
                .count();
        if all_without_procname {
            return Err(ProviderError::Unsupported {
                analysis: ID.into(),
                what: "the QEMU events lack the `procname` context (record with `-t procname`)"
                    .into(),
            });
        }
        Ok(())
    }

    fn handle(
        &mut self,
        handler: u32,
        event: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let Some(&ev) = self.handlers.get(handler as usize) else {
            return Ok(());
        };
        let t = event.timestamp();
        let Some(name) = event.string(SLOT_PROCNAME).filter(|n| !n.is_empty()) else {
            self.without_procname += 1;
            return Ok(());
        };
        let p = self.process(name, ss)?;
        match ev {
            Ev::SyncStart => ss.modify(t, StateValue::Int(BITMAP_SYNC), p.status)?,
            Ev::SyncEnd => {
                ss.modify(t, StateValue::Null, p.status)?;
                let k = p.syncs;
                p.syncs += 1;
                let stage = match k {
                    0 => PRECOPY,
                    1 => ITERATION_BASE + 1,
                    _ if p.stop_copy => STOP_COPY,
                    _ => ITERATION_BASE + k,
                };
                ss.modify(t, StateValue::Int(stage), p.copy)?;
                ss.modify(t, StateValue::Int(k), p.round)?;
                let dirty = event.int(SLOT_DIRTY).unwrap_or(0);
                ss.modify(t, StateValue::Long(dirty), p.dirty)?;
                let rate = p.series.last().and_then(|prev| {
                    let dt = t - prev.time;
                    (dt > 0).then(|| dirty as f64 * 1e9 / dt as f64)
                });
                p.series.push(DirtyPoint {
                    time: t,
                    dirty_pages: dirty,
                    rate,
                });
            }
            Ev::SectionStart => ss.modify(t, StateValue::Int(SAVE_VMSTATE_SECTION), p.status)?,
            Ev::SectionEnd => {
                ss.modify(t, StateValue::Null, p.status)?;
                p.last_section_end = Some(t);
            }
            Ev::Transferred => {
                // A write in the past (at the last section end) replaces the ongoing
                // null that started there (§0.1), then the row goes idle now.
                if let Some(tse) = p.last_section_end {
                    ss.modify(tse, StateValue::Int(TRANSFERRED), p.status)?;
                }
                ss.modify(t, StateValue::Null, p.status)?;
            }
            Ev::Pending => ss.modify(t, StateValue::Int(PENDING), p.status)?,
            Ev::WakeupRequest => ss.modify(t, StateValue::Null, p.status)?,
            Ev::CompletePrecopy => {
                p.stop_copy = true;
                ss.modify(t, StateValue::Int(STOP_COPY), p.copy)?;
                if !p.ended {
                    ss.modify(t, StateValue::Int(1), p.downtime)?;
                }
            }
            Ev::Throttle => ss.increment(t, StateValue::Int(1), p.throttle)?,
            Ev::AfterLoop => {
                if p.stop_copy {
                    end_migration(p, t, "completed", ss)?;
                }
            }
            Ev::SetState => {
                if let Some(state) = event.string(SLOT_NEW_STATE) {
                    if matches!(state, "completed" | "failed" | "cancelled") {
                        let state = state.to_string();
                        end_migration(p, t, &state, ss)?;
                    }
                }
            }
            Ev::FdCancel => end_migration(p, t, "cancelled", ss)?,
            Ev::Failure => end_migration(p, t, "failed", ss)?,
            Ev::DowntimeCheckpoint => match event.string(SLOT_CHECKPOINT) {
                Some("src-downtime-start") => ss.modify(t, StateValue::Int(1), p.downtime)?,
                Some("src-downtime-end") => ss.modify(t, StateValue::Null, p.downtime)?,
                _ => {}
            },
        }
        Ok(())
    }

    fn finish(&mut self, _ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        if let Some(sink) = &self.sink {
            if let Ok(mut s) = sink.lock() {
                s.dirty_pages = self
                    .procs
                    .iter()
                    .map(|(n, p)| (n.to_string(), p.series.clone()))
                    .collect();
            }
        }
        Ok(())
    }

    fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.without_procname > 0 {
            w.push(format!(
                "qemu-migration: {} event(s) without `context._procname` ignored",
                self.without_procname
            ));
        }
        for (name, p) in &self.procs {
            if p.syncs > 0 && !p.ended {
                w.push(format!(
                    "qemu-migration: {name}: the migration has no end in the trace"
                ));
            }
        }
        w.sort();
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{build, Analysis, BuildOptions, Output};
    use crate::testsource::TextSource;
    use sht::StateSystemQuerier;

    #[test]
    fn events_without_procname_are_counted_and_processes_kept_apart() {
        let mut src = TextSource::new(
            r#"1 qemu:migration_bitmap_sync_end context._procname="a" dirty_pages=0
               2 qemu:migration_bitmap_sync_end dirty_pages=5
               3 qemu:migration_bitmap_sync_end context._procname="b" dirty_pages=0
               4 qemu:migration_bitmap_sync_end context._procname="a" dirty_pages=9
               5 qemu:migrate_set_state context._procname="a" new_state="failed"
               6 qemu:migrate_fd_cancel context._procname="a""#,
        );
        let analyses = vec![Analysis {
            provider: Box::new(QemuMigrationProvider::new()),
            output: Output::InMemory,
        }];
        let (report, systems) = build(&mut src, analyses, &BuildOptions::default()).unwrap();
        let ss = &systems[0];
        let copy = |p: &str| ss.quark(&["QEMU_COPY", p, "MIG_COPY"]).unwrap();
        assert_eq!(
            ss.query_single(4, copy("a")).unwrap().value,
            StateValue::Int(101)
        );
        assert_eq!(
            ss.query_single(4, copy("b")).unwrap().value,
            StateValue::Int(PRECOPY)
        );
        let result = ss.quark(&["QEMU_COPY", "a", "Result"]).unwrap();
        // The first end wins: a later cancel does not overwrite "failed".
        assert_eq!(
            ss.query_single(6, result).unwrap().value,
            StateValue::from("failed")
        );
        let w = report.warnings.join("\n");
        assert!(w.contains("1 event(s) without `context._procname`"), "{w}");
        assert!(w.contains("b: the migration has no end"), "{w}");
    }

    #[test]
    fn traces_without_migration_events_are_refused() {
        let mut src = TextSource::new("1 sched_switch cpu=0 next_tid=1");
        let analyses = vec![Analysis {
            provider: Box::new(QemuMigrationProvider::new()),
            output: Output::InMemory,
        }];
        let err = build(&mut src, analyses, &BuildOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("qemu:migration"), "{err}");
    }
}
