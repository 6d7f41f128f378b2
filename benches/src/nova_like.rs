//! A large Nova-like LTTng-UST stream built in memory, for the OpenStack provider
//! benches (criterion `openstack_providers` and `sextant bench openstack`): every
//! record is an `lttng_python:event` with `msg` and `logger_name`, like the thesis
//! traces; about a third carry an `lttng_trace:{...}` dict (VM create/delete
//! requests through scheduler and compute), the rest are ordinary log lines.

use std::ops::ControlFlow;
use std::sync::atomic::AtomicU64;

use sextant_providers::pipeline::{EventSource, FieldKey, SourceError, SourceEvent};
use sextant_providers::TraceInfo;

use crate::Rng;

const LOGGERS: [&str; 6] = [
    "nova.compute.manager",
    "nova.scheduler.manager",
    "keystone.middleware.core",
    "oslo_messaging._drivers.amqpdriver",
    "nova.compute.resource_tracker",
    "oslo_service.periodic_task",
];

struct Record {
    t: i64,
    cpu: u32,
    logger: u8,
    msg: String,
}

pub struct NovaLike {
    records: Vec<Record>,
}

/// `n` records: requests for VMs `vm-<k>` (scheduler select, compute create,
/// later delete with shutdown), interleaved with ordinary log lines.
pub fn nova_like(n: usize) -> NovaLike {
    let mut rng = Rng::new(0x5e47a47);
    let mut records = Vec::with_capacity(n);
    let mut t = 1_470_668_620_000_000_000i64;
    let project = "bf5939a428aa40c3883316e057051611";
    let mut vm = 0u64;
    while records.len() < n {
        t += 1_000 + rng.below(20_000) as i64;
        let cpu = rng.below(4) as u32;
        if rng.below(3) != 0 {
            let logger = 2 + rng.below(4) as u8;
            records.push(Record {
                t,
                cpu,
                logger,
                msg: format!(
                    "GET http://10.0.0.100:5000/v2.0/ request {}",
                    rng.below(1 << 20)
                ),
            });
            continue;
        }
        vm += 1;
        let req = format!("req-{:08x}-e7a3-4284-a44b-5dd843edf212", vm);
        let name = format!("vm-{}", vm % 5000);
        let steps: [(u8, String); 6] = [
            (1, format!("lttng_trace:{{'event_type':scheduler.select_destinations.start,'vmname':'','vm_state':'','host':'','project_id':'','vm_task':'','request_id':'{req}','msg':''}}")),
            (1, format!("lttng_trace:{{'event_type':scheduler.select_destinations.end,'vmname':'','vm_state':'','host':'','project_id':'','vm_task':'','request_id':'{req}','msg':''}}")),
            (0, format!("lttng_trace:{{'event_type':'compute.instance.create.start','vmname':'{name}','vm_state':'building','host':'None','project_id':'{project}','vm_task':'None','request_id':'{req}','msg':''}}")),
            (0, format!("lttng_trace:{{'event_type':'compute.instance.create.end','vmname':'{name}','vm_state':'active','host':'compute-{}','project_id':'{project}','vm_task':'None','request_id':'{req}','msg':''}}", vm % 8)),
            (0, format!("lttng_trace:{{'event_type':'compute.instance.delete.start','vmname':'{name}','vm_state':'active','host':'compute-{}','project_id':'{project}','vm_task':'deleting','request_id':'{req}','msg':''}}", vm % 8)),
            (0, format!("lttng_trace:{{'event_type':'compute.instance.delete.end','vmname':'{name}','vm_state':'deleted','host':'compute-{}','project_id':'{project}','vm_task':'None','request_id':'{req}','msg':''}}", vm % 8)),
        ];
        for (logger, msg) in steps {
            t += 500 + rng.below(5_000) as i64;
            records.push(Record {
                t,
                cpu,
                logger,
                msg,
            });
        }
    }
    records.truncate(n);
    NovaLike { records }
}

struct View<'a>(&'a Record);

impl SourceEvent for View<'_> {
    fn class(&self) -> u32 {
        0
    }
    fn timestamp(&self) -> i64 {
        self.0.t
    }
    fn cpu(&self) -> Option<u32> {
        Some(self.0.cpu)
    }
    fn int(&self, _key: FieldKey) -> Option<i64> {
        None
    }
    fn string(&self, key: FieldKey) -> Option<&str> {
        match key {
            0 => Some(&self.0.msg),
            1 => Some(LOGGERS[self.0.logger as usize]),
            _ => None,
        }
    }
}

impl NovaLike {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when there is no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl EventSource for NovaLike {
    fn info(&self) -> TraceInfo {
        TraceInfo {
            name: "nova-like".into(),
            domain: "ust".into(),
            ..Default::default()
        }
    }
    fn class_names(&self) -> Vec<String> {
        vec!["lttng_python:event".into()]
    }
    fn resolve(&self, _class: u32, field: &str) -> Option<FieldKey> {
        match field {
            "msg" => Some(0),
            "logger_name" => Some(1),
            _ => None,
        }
    }
    fn run(
        &mut self,
        visit: &mut dyn FnMut(&dyn SourceEvent) -> ControlFlow<()>,
        _work: &AtomicU64,
    ) -> Result<(), SourceError> {
        for r in &self.records {
            if visit(&View(r)).is_break() {
                break;
            }
        }
        Ok(())
    }
}
