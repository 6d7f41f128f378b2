//! A tiny in-memory [`EventSource`] for unit tests, written as text, one event per
//! line: `<time> <name> [cpu=<n>] [<field>=<int> | <field>="<text>"]...`.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::pipeline::{EventSource, FieldKey, SourceError, SourceEvent};
use crate::TraceInfo;

#[derive(Clone, Debug)]
enum Value {
    Int(i64),
    Text(String),
}

struct Ev {
    class: u32,
    time: i64,
    cpu: Option<u32>,
    /// Indexed by the class's field list.
    values: Vec<Option<Value>>,
}

pub struct TextSource {
    pub info: TraceInfo,
    classes: Vec<(String, Vec<String>)>,
    events: Vec<Ev>,
}

impl TextSource {
    pub fn new(text: &str) -> TextSource {
        let mut classes: Vec<(String, Vec<String>)> = Vec::new();
        let mut parsed = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (time, rest) = line.split_once(' ').expect("time and name");
            let mut words = split_words(rest);
            let name = words.remove(0);
            let mut cpu = None;
            let mut fields = Vec::new();
            for w in words {
                let (k, v) = w.split_once('=').expect("field=value");
                // Like the XML stub traces: `cpu` is the event's CPU and a field too.
                if k == "cpu" && cpu.is_none() && !v.starts_with('"') {
                    cpu = Some(v.parse().expect("cpu"));
                }
                let v = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                    Some(s) => Value::Text(s.to_string()),
                    None => Value::Int(v.parse().expect("integer field")),
                };
                fields.push((k.to_string(), v));
            }
            let class = match classes.iter().position(|c| c.0 == name) {
                Some(i) => i,
                None => {
                    classes.push((name.clone(), Vec::new()));
                    classes.len() - 1
                }
            };
            for (k, _) in &fields {
                if !classes[class].1.contains(k) {
                    classes[class].1.push(k.clone());
                }
            }
            parsed.push((class as u32, time.parse().expect("time"), cpu, fields));
        }
        let events = parsed
            .into_iter()
            .map(|(class, time, cpu, fields)| {
                let names = &classes[class as usize].1;
                let mut values = vec![None; names.len()];
                for (k, v) in fields {
                    let i = names.iter().position(|n| *n == k).unwrap();
                    values[i] = Some(v);
                }
                Ev {
                    class,
                    time,
                    cpu,
                    values,
                }
            })
            .collect();
        TextSource {
            info: TraceInfo {
                name: "text".into(),
                domain: "kernel".into(),
                ..Default::default()
            },
            classes,
            events,
        }
    }

    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.info.env.insert(key.into(), value.into());
        self
    }
}

/// Words separated by spaces, double-quoted parts kept whole.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

struct EvRef<'a>(&'a Ev);

impl SourceEvent for EvRef<'_> {
    fn class(&self) -> u32 {
        self.0.class
    }
    fn timestamp(&self) -> i64 {
        self.0.time
    }
    fn cpu(&self) -> Option<u32> {
        self.0.cpu
    }
    fn int(&self, key: FieldKey) -> Option<i64> {
        match self.0.values.get(key as usize)? {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        }
    }
    fn string(&self, key: FieldKey) -> Option<&str> {
        match self.0.values.get(key as usize)? {
            Some(Value::Text(s)) => Some(s),
            _ => None,
        }
    }
}

impl EventSource for TextSource {
    fn info(&self) -> TraceInfo {
        self.info.clone()
    }
    fn class_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.0.clone()).collect()
    }
    fn resolve(&self, class: u32, field: &str) -> Option<FieldKey> {
        let fields = &self.classes.get(class as usize)?.1;
        fields
            .iter()
            .position(|f| f == field)
            .map(|i| i as FieldKey)
    }
    fn run(
        &mut self,
        visit: &mut dyn FnMut(&dyn SourceEvent) -> ControlFlow<()>,
        work_done: &AtomicU64,
    ) -> Result<(), SourceError> {
        for (i, e) in self.events.iter().enumerate() {
            work_done.store(i as u64 + 1, Ordering::Relaxed);
            if visit(&EvRef(e)).is_break() {
                break;
            }
        }
        Ok(())
    }
}
