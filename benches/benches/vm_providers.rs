//! Criterion benches of the virtual machine providers against the kernel provider on
//! the same synthetic host + guest experiment (events built in memory: sched_switch,
//! kvm_entry/kvm_exit, vmsync), all writing to a null backend, so the figures compare
//! the providers alone (events per second of the whole pass).

use std::ops::ControlFlow;
use std::sync::atomic::AtomicU64;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_providers::pipeline::{
    build, Analysis, BuildOptions, EventSource, FieldKey, Output, SourceError, SourceEvent,
};
use sextant_providers::TraceInfo;

const FIELDS: [&str; 9] = [
    "prev_tid",
    "prev_state",
    "next_tid",
    "next_prio",
    "next_comm",
    "prev_comm",
    "vcpu_id",
    "exit_reason",
    "vm_uid",
];
const CLASSES: [&str; 5] = [
    "sched_switch",
    "kvm_entry",
    "kvm_exit",
    "vmsync_gh_guest",
    "vmsync_gh_host",
];

#[derive(Clone, Copy)]
struct Ev {
    trace: u8,
    class: u8,
    cpu: u8,
    t: i64,
    a: i64,
    b: i64,
}

struct Synthetic {
    events: Vec<Ev>,
    hosts: Vec<String>,
}

impl Synthetic {
    /// The same events as one machine's trace (the kernel analysis reads one machine).
    fn one_machine(&self) -> Synthetic {
        Synthetic {
            events: self.events.iter().map(|e| Ev { trace: 0, ..*e }).collect(),
            hosts: vec!["host".into()],
        }
    }
}

/// A host with 4 CPUs, each running a vCPU thread of one guest (4 vCPUs) that enters
/// and exits the guest, with host threads preempting it now and then; the guest
/// switches its own threads on its vCPUs.
fn synthetic(n: usize) -> Synthetic {
    let mut events = Vec::with_capacity(n + 16);
    let mut t = 1_000i64;
    for cpu in 0..4u8 {
        events.push(Ev {
            trace: 0,
            class: 0,
            cpu,
            t,
            a: 0,
            b: 1001 + cpu as i64,
        });
        t += 1;
    }
    events.push(Ev {
        trace: 1,
        class: 3,
        cpu: 0,
        t,
        a: 0,
        b: 77,
    });
    t += 1;
    events.push(Ev {
        trace: 0,
        class: 4,
        cpu: 0,
        t,
        a: 0,
        b: 77,
    });
    t += 1;
    let mut step = 0u64;
    while events.len() < n {
        let cpu = (step % 4) as u8;
        let vcpu_tid = 1001 + cpu as i64;
        match (step / 4) % 8 {
            0 => events.push(Ev {
                trace: 0,
                class: 1,
                cpu,
                t,
                a: cpu as i64,
                b: 0,
            }),
            1 => events.push(Ev {
                trace: 1,
                class: 0,
                cpu,
                t,
                a: 100 + cpu as i64,
                b: 200 + cpu as i64,
            }),
            2 => events.push(Ev {
                trace: 0,
                class: 2,
                cpu,
                t,
                a: 32,
                b: 0,
            }),
            3 => events.push(Ev {
                trace: 0,
                class: 1,
                cpu,
                t,
                a: cpu as i64,
                b: 0,
            }),
            4 => events.push(Ev {
                trace: 1,
                class: 0,
                cpu,
                t,
                a: 200 + cpu as i64,
                b: 100 + cpu as i64,
            }),
            5 => events.push(Ev {
                trace: 0,
                class: 2,
                cpu,
                t,
                a: 1,
                b: 0,
            }),
            6 => events.push(Ev {
                trace: 0,
                class: 0,
                cpu,
                t,
                a: vcpu_tid,
                b: 3000 + cpu as i64,
            }),
            _ => events.push(Ev {
                trace: 0,
                class: 0,
                cpu,
                t,
                a: 3000 + cpu as i64,
                b: vcpu_tid,
            }),
        }
        t += 100;
        step += 1;
    }
    Synthetic {
        events,
        hosts: vec!["host".into(), "guest".into()],
    }
}

struct View<'a>(&'a Ev);

impl SourceEvent for View<'_> {
    fn class(&self) -> u32 {
        self.0.class as u32
    }
    fn timestamp(&self) -> i64 {
        self.0.t
    }
    fn cpu(&self) -> Option<u32> {
        Some(self.0.cpu as u32)
    }
    fn int(&self, key: FieldKey) -> Option<i64> {
        let e = self.0;
        match (e.class, key) {
            (0, 0) => Some(e.a),
            (0, 1) => Some(0),
            (0, 2) => Some(e.b),
            (0, 3) => Some(20),
            (1, 6) => Some(e.a),
            (2, 7) => Some(e.a),
            (3 | 4, 8) => Some(e.b),
            _ => None,
        }
    }
    fn string(&self, key: FieldKey) -> Option<&str> {
        (self.0.class == 0 && (key == 4 || key == 5)).then_some("thread")
    }
    fn trace_index(&self) -> usize {
        self.0.trace as usize
    }
}

impl EventSource for Synthetic {
    fn info(&self) -> TraceInfo {
        TraceInfo {
            name: "synthetic".into(),
            domain: "kernel".into(),
            hosts: self.hosts.clone(),
            ..Default::default()
        }
    }
    fn class_names(&self) -> Vec<String> {
        CLASSES.iter().map(|c| c.to_string()).collect()
    }
    fn resolve(&self, _class: u32, field: &str) -> Option<FieldKey> {
        FIELDS
            .iter()
            .position(|f| *f == field)
            .map(|i| i as FieldKey)
    }
    fn run(
        &mut self,
        visit: &mut dyn FnMut(&dyn SourceEvent) -> ControlFlow<()>,
        _work: &AtomicU64,
    ) -> Result<(), SourceError> {
        for e in &self.events {
            if visit(&View(e)).is_break() {
                break;
            }
        }
        Ok(())
    }
}

const EVENTS: usize = 400_000;

fn providers(c: &mut Criterion) {
    let registry = sextant_providers::native_registry();
    let mut experiment = synthetic(EVENTS);
    // The kernel analysis refuses an experiment of several machines: it reads the
    // same events as one machine's trace.
    let mut one_machine = experiment.one_machine();
    let mut g = c.benchmark_group("providers on a host+guest experiment");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(10);
    for name in [
        "kernel",
        "vm-model",
        "vm-vresources",
        "vm-overhead",
        "vm-fused",
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let provider = registry.create(name).unwrap();
                let analyses = vec![Analysis {
                    provider,
                    output: Output::Null,
                }];
                let source = if name == "kernel" {
                    &mut one_machine
                } else {
                    &mut experiment
                };
                build(source, analyses, &BuildOptions::default()).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, providers);
criterion_main!(benches);
