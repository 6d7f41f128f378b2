//! [`StubSource`]: an [`EventSource`] over one or several XML stub traces
//! (`sextant_trace::XmlStubTrace`), read as one experiment: events merged by timestamp
//! (ties: the earlier trace of the list first, then file order, as a Trace Compass
//! experiment does), each carrying the index of its trace. A stub trace's host id is
//! its file name (Trace Compass's stub traces), so [`TraceInfo::hosts`] lists the file
//! names.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use sextant_trace::{StubValue, XmlStubError, XmlStubTrace};

use crate::pipeline::{EventSource, FieldKey, SourceError, SourceEvent};
use crate::TraceInfo;

/// Several stub traces as one time-ordered flow.
pub struct StubSource {
    traces: Vec<XmlStubTrace>,
    class_names: Vec<String>,
    class_of: HashMap<String, u32>,
    field_names: Vec<String>,
    field_of: HashMap<String, FieldKey>,
}

impl StubSource {
    /// Opens every path as a stub trace (`.xml` file).
    pub fn open(paths: &[PathBuf]) -> Result<StubSource, XmlStubError> {
        let traces = paths
            .iter()
            .map(|p| XmlStubTrace::open(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(traces))
    }

    /// An experiment of already-read traces, in this order.
    pub fn new(traces: Vec<XmlStubTrace>) -> StubSource {
        let mut class_names = Vec::new();
        let mut class_of = HashMap::new();
        let mut field_names = Vec::new();
        let mut field_of = HashMap::new();
        for trace in &traces {
            for ev in trace.events() {
                if !class_of.contains_key(&ev.name) {
                    class_of.insert(ev.name.clone(), class_names.len() as u32);
                    class_names.push(ev.name.clone());
                }
                for (name, _) in &ev.fields {
                    if !field_of.contains_key(name) {
                        field_of.insert(name.clone(), field_names.len() as FieldKey);
                        field_names.push(name.clone());
                    }
                }
            }
        }
        StubSource {
            traces,
            class_names,
            class_of,
            field_names,
            field_of,
        }
    }

    fn event_count(&self) -> u64 {
        self.traces.iter().map(|t| t.events().len() as u64).sum()
    }
}

/// One stub event with its trace and class.
struct StubView<'a> {
    event: &'a sextant_trace::StubEvent,
    class: u32,
    trace: usize,
    field_names: &'a [String],
    /// Text of array fields, rendered on demand.
    text: std::cell::OnceCell<String>,
}

impl StubView<'_> {
    fn value(&self, key: FieldKey) -> Option<&StubValue> {
        let name = self.field_names.get(key as usize)?;
        self.event.field(name)
    }
}

impl SourceEvent for StubView<'_> {
    fn class(&self) -> u32 {
        self.class
    }
    fn timestamp(&self) -> i64 {
        self.event.timestamp
    }
    fn cpu(&self) -> Option<u32> {
        self.event.cpu
    }
    fn int(&self, key: FieldKey) -> Option<i64> {
        self.value(key)?.as_int()
    }
    fn string(&self, key: FieldKey) -> Option<&str> {
        match self.value(key)? {
            StubValue::Str(s) => Some(s),
            // Arrays read as comma-separated text (Trace Compass's stub format).
            StubValue::IntArray(a) | StubValue::LongArray(a) => Some(
                self.text
                    .get_or_init(|| a.iter().map(i64::to_string).collect::<Vec<_>>().join(",")),
            ),
            _ => None,
        }
    }
    fn trace_index(&self) -> usize {
        self.trace
    }
}

impl EventSource for StubSource {
    fn info(&self) -> TraceInfo {
        let hosts: Vec<String> = self.traces.iter().map(|t| t.name().to_string()).collect();
        TraceInfo {
            name: if hosts.len() == 1 {
                hosts[0].clone()
            } else {
                "experiment".to_string()
            },
            hosts,
            ..Default::default()
        }
    }
    fn class_names(&self) -> Vec<String> {
        self.class_names.clone()
    }
    fn resolve(&self, class: u32, field: &str) -> Option<FieldKey> {
        self.class_names.get(class as usize)?;
        self.field_of.get(field).copied()
    }
    fn total_work(&self) -> Option<u64> {
        Some(self.event_count())
    }
    fn run(
        &mut self,
        visit: &mut dyn FnMut(&dyn SourceEvent) -> ControlFlow<()>,
        work_done: &AtomicU64,
    ) -> Result<(), SourceError> {
        // Stub traces are sorted (the reader checks it): merge them by timestamp.
        let mut order: Vec<(i64, usize, usize)> = Vec::with_capacity(self.event_count() as usize);
        for (t, trace) in self.traces.iter().enumerate() {
            for (i, ev) in trace.events().iter().enumerate() {
                order.push((ev.timestamp, t, i));
            }
        }
        order.sort_unstable();
        for (n, (_, t, i)) in order.into_iter().enumerate() {
            let event = &self.traces[t].events()[i];
            let view = StubView {
                event,
                class: self.class_of[&event.name],
                trace: t,
                field_names: &self.field_names,
                text: std::cell::OnceCell::new(),
            };
            if visit(&view).is_break() {
                break;
            }
            if n % 1024 == 0 {
                work_done.store(n as u64 + 1, Ordering::Relaxed);
            }
        }
        work_done.store(self.event_count(), Ordering::Relaxed);
        Ok(())
    }
}
