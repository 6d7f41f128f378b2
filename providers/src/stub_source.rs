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
    /// Keys of the fields each class's events carry.
    class_fields: Vec<std::collections::BTreeSet<FieldKey>>,
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
        let mut class_fields: Vec<std::collections::BTreeSet<FieldKey>> = Vec::new();
        for trace in &traces {
            for ev in trace.events() {
                let class = *class_of.entry(ev.name.clone()).or_insert_with(|| {
                    class_names.push(ev.name.clone());
                    class_fields.push(Default::default());
                    class_names.len() as u32 - 1
                });
                for (name, _) in &ev.fields {
                    let key = *field_of.entry(name.clone()).or_insert_with(|| {
                        field_names.push(name.clone());
                        field_names.len() as FieldKey - 1
                    });
                    class_fields[class as usize].insert(key);
                }
            }
        }
        StubSource {
            traces,
            class_names,
            class_of,
            field_names,
            field_of,
            class_fields,
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
    /// Only fields some event of the class carries, so that providers can tell a
    /// trace lacking a field they need.
    fn resolve(&self, class: u32, field: &str) -> Option<FieldKey> {
        let fields = self.class_fields.get(class as usize)?;
        let key = self.field_of.get(field).copied()?;
        fields.contains(&key).then_some(key)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    const ASPECTS: &str = r#"<set_aspects><field name="cpu" value="0" type="int"/></set_aspects>"#;

    fn event(t: i64, name: &str, cpu: u32, extra: &str) -> String {
        format!(
            r#"<event timestamp="{t}" name="{name}"><field name="cpu" value="{cpu}" type="int"/>{extra}</event>"#
        )
    }

    #[test]
    fn merges_traces_by_time_with_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a.xml",
            &format!(
                "<trace>{ASPECTS}{}{}</trace>",
                event(1, "x", 0, r#"<field name="v" value="1" type="long"/>"#),
                event(
                    5,
                    "y",
                    1,
                    r#"<field name="ids" value="4,5" type="longArray"/>"#
                )
            ),
        );
        let b = write(
            dir.path(),
            "b.xml",
            &format!(
                "<trace>{ASPECTS}{}{}</trace>",
                event(1, "y", 2, r#"<field name="s" value="hi" type="string"/>"#),
                event(3, "x", 0, r#"<field name="v" value="7" type="int"/>"#)
            ),
        );
        let mut src = StubSource::open(&[a, b]).unwrap();
        let info = src.info();
        assert_eq!(info.hosts, ["a.xml", "b.xml"]);
        assert_eq!(src.class_names(), ["x", "y"]);
        let v = src.resolve(0, "v").unwrap();
        let ids = src.resolve(1, "ids").unwrap();
        let s = src.resolve(1, "s").unwrap();
        assert_eq!(src.resolve(0, "nope"), None);
        let mut seen = Vec::new();
        src.run(
            &mut |e| {
                seen.push((
                    e.timestamp(),
                    e.trace_index(),
                    e.class(),
                    e.cpu(),
                    e.int(v),
                    e.string(ids).map(str::to_string),
                    e.string(s).map(str::to_string),
                ));
                ControlFlow::Continue(())
            },
            &AtomicU64::new(0),
        )
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (1, 0, 0, Some(0), Some(1), None, None),
                // Same time: the earlier trace of the experiment first.
                (1, 1, 1, Some(2), None, None, Some("hi".into())),
                (3, 1, 0, Some(0), Some(7), None, None),
                (5, 0, 1, Some(1), None, Some("4,5".into()), None),
            ]
        );
    }

    #[test]
    fn bad_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.xml");
        let err = StubSource::open(std::slice::from_ref(&missing))
            .err()
            .expect("missing file");
        assert!(err.to_string().contains("missing.xml"), "{err}");
        let bad = write(
            dir.path(),
            "bad.xml",
            "<trace><event timestamp=\"x\" name=\"a\"/></trace>",
        );
        let err = StubSource::open(&[bad]).err().expect("bad timestamp");
        assert!(err.to_string().contains("bad.xml"), "{err}");
    }
}
