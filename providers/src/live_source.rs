//! An [`EventSource`] over an LTTng live session (`net://HOST[:PORT]/host/HOSTNAME/SESSION`):
//! events are handed to the pipeline as the relay daemon delivers them, and the
//! source ends when the session is destroyed. A relay failure ends the run with
//! the error after every event received so far was handed out.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sextant_trace::live::{LiveOptions, LiveSession, LiveUrl};
use sextant_trace::{ClassId, Event, FieldHandle};

use crate::pipeline::{EventSource, FieldKey, Idle, SourceError, SourceEvent};
use crate::TraceInfo;

/// True when `s` names a live session rather than a path.
pub fn is_live_url(s: &str) -> bool {
    s.starts_with("net://") || s.starts_with("net4://")
}

/// A live session read as an event source.
pub struct LiveSource {
    session: LiveSession,
    stop: Arc<AtomicBool>,
    /// Why the input ended early, if it did.
    ended_early: Option<String>,
}

impl LiveSource {
    /// Connects and attaches (waiting for the session's streams and metadata).
    pub fn open(url: &str, opts: LiveOptions) -> Result<LiveSource, SourceError> {
        let url = LiveUrl::parse(url)?;
        Ok(LiveSource {
            session: LiveSession::open(&url, opts)?,
            stop: Arc::new(AtomicBool::new(false)),
            ended_early: None,
        })
    }

    /// Setting this flag makes [`EventSource::run`] return after the current event.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    pub fn session(&self) -> &LiveSession {
        &self.session
    }
}

struct LiveEvent<'a, 'b>(&'a Event<'b>);

impl SourceEvent for LiveEvent<'_, '_> {
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
    fn class_description(&self) -> Option<(String, Vec<(String, FieldKey)>)> {
        let (name, fields) = self.0.class_description();
        let keys = fields.into_iter().map(|(n, h)| (n, h.0 as FieldKey));
        Some((name, keys.collect()))
    }
}

impl EventSource for LiveSource {
    fn info(&self) -> TraceInfo {
        let exp = self.session.experiment();
        let first = exp.traces().first();
        TraceInfo {
            name: self.session.url().session.clone(),
            domain: first.map(|t| t.domain.clone()).unwrap_or_default(),
            env: first.map(|t| t.env.clone()).unwrap_or_default(),
            hosts: exp
                .traces()
                .iter()
                .map(|t| t.env.get("hostname").unwrap_or(&t.name).clone())
                .collect(),
        }
    }

    fn class_names(&self) -> Vec<String> {
        let exp = self.session.experiment();
        (0..exp.class_count())
            .map(|c| exp.class_name(ClassId(c)).to_string())
            .collect()
    }

    fn resolve(&self, class: u32, field: &str) -> Option<FieldKey> {
        self.session
            .experiment()
            .field_handle(ClassId(class), field)
            .map(|h| h.0 as FieldKey)
    }

    /// Work is counted in events (the total is unknown while the session lives).
    /// While the relay has nothing new, [`Idle`] is visited once per poll interval.
    fn run(
        &mut self,
        visit: &mut dyn FnMut(&dyn SourceEvent) -> ControlFlow<()>,
        work_done: &AtomicU64,
    ) -> Result<(), SourceError> {
        let stop = self.stop.clone();
        let mut delivered = 0u64;
        let mut last_ns = None;
        let r = self.session.run_steps(
            &mut |step| {
                let Some(ev) = step else {
                    return visit(&Idle);
                };
                delivered += 1;
                last_ns = Some(ev.timestamp());
                work_done.fetch_add(1, Ordering::Relaxed);
                visit(&LiveEvent(ev))
            },
            &stop,
        );
        match r {
            Ok(()) => Ok(()),
            Err(e) if delivered > 0 => {
                self.ended_early = Some(format!(
                    "live session ended early: {e}; the history stops after {delivered} events (last at {} ns)",
                    last_ns.unwrap_or_default()
                ));
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn warnings(&self) -> Vec<String> {
        let mut w = self.session.warnings();
        w.extend(self.ended_early.clone());
        w
    }
}
