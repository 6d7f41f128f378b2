//! Multi-layer view of one VM (issue 6 item 5, spec §2.6): its states at the
//! application layer (Nova VM state provider: status and compute host), the
//! user requests that touched it across Nova services (Nova services provider,
//! `Requests/*` whose `VM` is this VM, with each operation's interval), and, when
//! the experiment holds QEMU migration events, the virtualization layer
//! (migration stages of the QEMU process linked to the VM).
//!
//! Linking VM -> QEMU process: the thesis equates the VM name with the QEMU
//! process name; we take a process whose name equals or contains the VM name (or
//! its libvirt domain name given by the caller), else, when the trace shows a
//! single QEMU process, that one (marked `by_elimination`).

use sht::{StateSystem, StateSystemQuerier, StateValue};

use super::vm_state_code;

/// One interval of one row.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub start: i64,
    pub end: i64,
    pub label: String,
}

/// One operation of one request.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestOp {
    pub request_id: String,
    pub operation: String,
    pub start: i64,
    pub end: i64,
}

/// The virtualization layer: the QEMU process linked to the VM.
#[derive(Clone, Debug, PartialEq)]
pub struct QemuLayer {
    pub process: String,
    pub by_elimination: bool,
    /// MIG_COPY stages (precopy, iteration k, stop-and-copy).
    pub stages: Vec<Span>,
    pub result: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VmReport {
    pub vm: String,
    pub project: Option<String>,
    /// Application layer: Nova VM state.
    pub status: Vec<Span>,
    pub host: Vec<Span>,
    pub requests: Vec<RequestOp>,
    pub qemu: Option<QemuLayer>,
}

/// Name of a Nova VM state code.
pub fn vm_state_name(code: i32) -> &'static str {
    const NAMES: [&str; 14] = [
        "building",
        "active",
        "suspended",
        "deleted",
        "paused",
        "stopped",
        "migrating",
        "rescued",
        "resized",
        "soft-delete",
        "error",
        "shelved",
        "shelved_offloaded",
        "NOTSET",
    ];
    NAMES
        .iter()
        .find(|n| vm_state_code(n) == Some(code))
        .copied()
        .unwrap_or("NOTSET")
}

fn stage_name(code: i32) -> String {
    match code {
        50 => "precopy".into(),
        60 => "stop-and-copy".into(),
        c if c > 100 => format!("iteration {}", c - 100),
        c => format!("code {c}"),
    }
}

fn spans(ss: &StateSystem, q: sht::Quark, label: impl Fn(&StateValue) -> String) -> Vec<Span> {
    let mut v = ss
        .query_2d(&[q], ss.start_time(), ss.current_end_time())
        .unwrap_or_default();
    v.sort_by_key(|i| i.start);
    v.into_iter()
        .filter(|i| i.value != StateValue::Null)
        .map(|i| Span {
            start: i.start,
            end: i.end,
            label: label(&i.value),
        })
        .collect()
}

fn name(ss: &StateSystem, q: sht::Quark) -> String {
    ss.attributes().name(q).unwrap_or_default().to_string()
}

/// The report of `vm` from the Nova VM state and Nova services histories, and a
/// QEMU migration history if there is one. `None` when no layer knows the VM.
pub fn vm_report(
    vmstate: &StateSystem,
    services: Option<&StateSystem>,
    qemu: Option<&StateSystem>,
    vm: &str,
    domain: Option<&str>,
) -> Option<VmReport> {
    let mut report = VmReport {
        vm: vm.to_string(),
        project: None,
        status: Vec::new(),
        host: Vec::new(),
        requests: Vec::new(),
        qemu: None,
    };
    for project in vmstate.quarks(&["PROJECTs", "*"]).unwrap_or_default() {
        let p = name(vmstate, project);
        let (Ok(status), Ok(host)) = (
            vmstate.quark(&["PROJECTs", &p, "VMs", vm, "Status"]),
            vmstate.quark(&["PROJECTs", &p, "VMs", vm, "Host"]),
        ) else {
            continue;
        };
        report.project = Some(p);
        report.status = spans(vmstate, status, |v| {
            v.as_int().map_or("?", vm_state_name).to_string()
        });
        report.host = spans(vmstate, host, |v| v.as_str().unwrap_or("?").to_string());
        break;
    }
    if let Some(ss) = services {
        for req in ss.quarks(&["Requests", "*"]).unwrap_or_default() {
            let request_id = name(ss, req);
            let Ok(vm_q) = ss.quark(&["Requests", &request_id, "VM"]) else {
                continue;
            };
            let names_vm = spans(ss, vm_q, |v| v.as_str().unwrap_or("").to_string())
                .iter()
                .any(|s| s.label == vm);
            if !names_vm {
                continue;
            }
            for op in ss
                .quarks(&["Requests", &request_id, "Ops", "*"])
                .unwrap_or_default()
            {
                let operation = name(ss, op);
                for s in spans(ss, op, |_| String::new()) {
                    report.requests.push(RequestOp {
                        request_id: request_id.clone(),
                        operation: operation.clone(),
                        start: s.start,
                        end: s.end,
                    });
                }
            }
        }
        report.requests.sort_by_key(|r| (r.start, r.end));
    }
    if let Some(ss) = qemu {
        let procs: Vec<String> = ss
            .quarks(&["QEMU_COPY", "*"])
            .unwrap_or_default()
            .into_iter()
            .map(|q| name(ss, q))
            .collect();
        let matched = procs
            .iter()
            .find(|p| p.contains(vm) || domain.is_some_and(|d| p.contains(d)))
            .map(|p| (p.clone(), false))
            .or_else(|| (procs.len() == 1).then(|| (procs[0].clone(), true)));
        if let Some((process, by_elimination)) = matched {
            let stages = ss
                .quark(&["QEMU_COPY", &process, "MIG_COPY"])
                .map(|q| spans(ss, q, |v| v.as_int().map_or("?".into(), stage_name)))
                .unwrap_or_default();
            let result = ss
                .quark(&["QEMU_COPY", &process, "Result"])
                .ok()
                .and_then(|q| ss.query_single(ss.current_end_time(), q).ok())
                .and_then(|i| i.value.as_str().map(str::to_string));
            report.qemu = Some(QemuLayer {
                process,
                by_elimination,
                stages,
                result,
            });
        }
    }
    let known = report.project.is_some() || !report.requests.is_empty();
    known.then_some(report)
}

impl VmReport {
    /// One line per span, in time order, tagged with its layer.
    pub fn timeline(&self) -> Vec<(i64, i64, &'static str, String)> {
        let mut rows: Vec<(i64, i64, &'static str, String)> = Vec::new();
        for s in &self.status {
            rows.push((s.start, s.end, "application", format!("state {}", s.label)));
        }
        for s in &self.host {
            rows.push((s.start, s.end, "application", format!("host {}", s.label)));
        }
        for r in &self.requests {
            rows.push((
                r.start,
                r.end,
                "request",
                format!("{} {}", r.request_id, r.operation),
            ));
        }
        if let Some(q) = &self.qemu {
            for s in &q.stages {
                rows.push((
                    s.start,
                    s.end,
                    "virtualization",
                    format!("{} {}", q.process, s.label),
                ));
            }
        }
        rows.sort_by_key(|r| (r.0, r.1));
        rows
    }
}
