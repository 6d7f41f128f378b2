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
//!
//! Kernel layer ([`kernel_layer`], spec §2.6): vmname -> libvirt domain (the
//! domain XML the libvirt driver logs, [`super::domains`]: name, UUID, vCPU count,
//! disk files) -> QEMU PID in the kernel trace of the compute host -> its threads
//! (`Threads/*` of the kernel analysis whose `PID` is that PID) -> their statuses
//! and the CPU of their run queue. QEMU processes are the PIDs of threads named
//! `qemu-*` or `CPU <n>/KVM`; the PID is chosen by the first rule that leaves
//! exactly one, and the rule is reported ([`QemuLink::how`]):
//! 1. `statedump-fd`: the process holds open (kernel state dump,
//!    [`super::qemu_files`]) one of the domain's files or a path naming its UUID;
//! 2. `vcpu-count`: the only process with as many `CPU <n>/KVM` threads as the
//!    domain has vCPUs;
//! 3. `by-elimination`: the only QEMU process of the trace.
//!
//! Otherwise no PID is chosen (`unlinked`) and the candidates are listed.

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
    /// The libvirt domain, from the libvirt driver's log.
    pub libvirt: Option<DomainInfo>,
    /// Kernel layer, when a kernel trace of the host is in the experiment.
    pub kernel: Option<KernelLayer>,
}

/// What the libvirt driver's domain XML says about the VM.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainInfo {
    pub domain: String,
    pub uuid: Option<String>,
    pub vcpus: Option<i32>,
    pub files: Vec<String>,
}

/// How the QEMU process was found (module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct QemuLink {
    pub pid: Option<i64>,
    /// `statedump-fd`, `vcpu-count`, `by-elimination` or `unlinked`.
    pub how: &'static str,
    /// The evidence (the file, the vCPU count) or why no PID was chosen.
    pub detail: String,
    /// QEMU processes of the trace.
    pub candidates: Vec<i64>,
}

/// One interval of a kernel thread's status.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadSpan {
    pub start: i64,
    pub end: i64,
    pub status: &'static str,
    /// CPU of the thread's run queue at the start of the span.
    pub cpu: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct KernelThread {
    pub tid: i64,
    pub name: String,
    pub spans: Vec<ThreadSpan>,
}

impl KernelThread {
    /// Time in each status, ns.
    pub fn time_by_status(&self) -> std::collections::BTreeMap<&'static str, i64> {
        let mut m = std::collections::BTreeMap::new();
        for s in &self.spans {
            *m.entry(s.status).or_insert(0) += s.end + 1 - s.start;
        }
        m
    }

    /// CPUs the thread ran on (statuses running in user mode, system call or
    /// interrupted).
    pub fn cpus_ran_on(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .spans
            .iter()
            .filter(|s| s.status.starts_with("RUN") || s.status == "INTERRUPTED")
            .filter_map(|s| s.cpu)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct KernelLayer {
    pub link: QemuLink,
    pub threads: Vec<KernelThread>,
    /// Last context switch of the kernel trace: thread spans are cut there (the
    /// experiment, hence the history, may go on with other traces' events).
    pub kernel_end: i64,
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
        libvirt: None,
        kernel: None,
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

/// Trace Compass thread status names (`Threads/<tid>` values).
pub fn thread_status_name(code: i32) -> &'static str {
    use crate::kernel::status::*;
    match code {
        WAIT_BLOCKED => "WAIT_BLOCKED",
        RUN_USERMODE => "RUN_USERMODE",
        RUN_SYSCALL => "RUN_SYSCALL",
        INTERRUPTED => "INTERRUPTED",
        WAIT_FOR_CPU => "WAIT_FOR_CPU",
        WAIT_UNKNOWN => "WAIT_UNKNOWN",
        WAIT_FORK => "WAIT_FORK",
        _ => "UNKNOWN",
    }
}

/// The domain of `vm` from the libvirt domains history (last XML logged).
pub fn domain_info(domains: &StateSystem, vm: &str) -> Option<DomainInfo> {
    let end = domains.current_end_time();
    let text = |path: &[&str]| -> Option<StateValue> {
        let q = domains.quark(path).ok()?;
        Some(domains.query_single(end, q).ok()?.value)
    };
    let domain = text(&["Instances", vm, "Domain"])?.as_str()?.to_string();
    let uuid = text(&["Instances", vm, "UUID"]).and_then(|v| v.as_str().map(str::to_string));
    let vcpus = text(&["Instances", vm, "vCPUs"]).and_then(|v| v.as_int());
    let mut files = Vec::new();
    for q in domains
        .quarks(&["Instances", vm, "Files", "*"])
        .unwrap_or_default()
    {
        if let Some(f) = domains
            .query_single(end, q)
            .ok()
            .and_then(|i| i.value.as_str().map(str::to_string))
        {
            files.push(f);
        }
    }
    Some(DomainInfo {
        domain,
        uuid,
        vcpus,
        files,
    })
}

/// The last non-null value of `q`.
fn last_value(ss: &StateSystem, q: sht::Quark) -> Option<StateValue> {
    let mut v = ss
        .query_2d(&[q], ss.start_time(), ss.current_end_time())
        .ok()?;
    v.sort_by_key(|i| i.start);
    v.into_iter()
        .rev()
        .map(|i| i.value)
        .find(|v| *v != StateValue::Null)
}

/// Every non-null value `q` took.
fn values(ss: &StateSystem, q: sht::Quark) -> Vec<StateValue> {
    ss.query_2d(&[q], ss.start_time(), ss.current_end_time())
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.value)
        .filter(|v| *v != StateValue::Null)
        .collect()
}

fn int_value(v: &StateValue) -> Option<i64> {
    v.as_int().map(i64::from).or_else(|| v.as_long())
}

/// A kernel thread: tid, process id, every name it had.
struct HostThread {
    quark: sht::Quark,
    tid: i64,
    pid: Option<i64>,
    names: Vec<String>,
}

fn host_threads(kernel: &StateSystem) -> Vec<HostThread> {
    let mut out = Vec::new();
    for q in kernel.quarks(&["Threads", "*"]).unwrap_or_default() {
        // Idle threads are `0_<cpu>`: not a process.
        let Ok(tid) = name(kernel, q).parse::<i64>() else {
            continue;
        };
        let pid = kernel
            .quark(&["Threads", &tid.to_string(), "PID"])
            .ok()
            .and_then(|p| last_value(kernel, p))
            .and_then(|v| int_value(&v));
        let names = kernel
            .quark(&["Threads", &tid.to_string(), "Exec_name"])
            .map(|e| values(kernel, e))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        out.push(HostThread {
            quark: q,
            tid,
            pid,
            names,
        });
    }
    out
}

/// Chooses the QEMU process of `domain` (rules in the module doc).
fn link_qemu(
    threads: &[HostThread],
    files: Option<&StateSystem>,
    domain: Option<&DomainInfo>,
) -> QemuLink {
    use super::qemu_files::is_qemu_thread_name;
    let mut candidates: Vec<i64> = threads
        .iter()
        .filter(|t| t.names.iter().any(|n| is_qemu_thread_name(n)))
        .map(|t| t.pid.unwrap_or(t.tid))
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    let link = |pid: i64, how, detail: String| QemuLink {
        pid: Some(pid),
        how,
        detail,
        candidates: candidates.clone(),
    };
    if let (Some(d), Some(fs)) = (domain, files) {
        let mut hits: Vec<(i64, String)> = Vec::new();
        for &pid in &candidates {
            for q in fs
                .quarks(&["Processes", &pid.to_string(), "Files", "*"])
                .unwrap_or_default()
            {
                for v in values(fs, q) {
                    let Some(path) = v.as_str() else { continue };
                    let names_it = d.files.iter().any(|f| f == path)
                        || d.uuid
                            .as_deref()
                            .is_some_and(|u| !u.is_empty() && path.contains(u));
                    if names_it && !hits.iter().any(|h| h.0 == pid) {
                        hits.push((pid, path.to_string()));
                    }
                }
            }
        }
        if hits.len() == 1 {
            let (pid, path) = hits.remove(0);
            return link(pid, "statedump-fd", format!("holds {path} open"));
        }
        if hits.len() > 1 {
            return QemuLink {
                pid: None,
                how: "unlinked",
                detail: format!(
                    "{} QEMU processes hold files of {} open",
                    hits.len(),
                    d.domain
                ),
                candidates,
            };
        }
    }
    if let Some(n) = domain.and_then(|d| d.vcpus) {
        let with_n: Vec<i64> = candidates
            .iter()
            .copied()
            .filter(|&pid| {
                threads
                    .iter()
                    .filter(|t| t.pid == Some(pid))
                    .filter(|t| t.names.last().is_some_and(|n| n.starts_with("CPU ")))
                    .count()
                    == n as usize
            })
            .collect();
        if with_n.len() == 1 {
            return link(
                with_n[0],
                "vcpu-count",
                format!("the only one with {n} vCPU thread(s)"),
            );
        }
    }
    if candidates.len() == 1 {
        return link(
            candidates[0],
            "by-elimination",
            "the only QEMU process".into(),
        );
    }
    QemuLink {
        pid: None,
        how: "unlinked",
        detail: format!(
            "{} QEMU processes and no rule singles one out",
            candidates.len()
        ),
        candidates,
    }
}

/// The kernel layer of a VM: its QEMU process and that process's threads with
/// their statuses (kernel analysis history `kernel`, state-dump files history
/// `files`, the VM's libvirt domain if known).
pub fn kernel_layer(
    kernel: &StateSystem,
    files: Option<&StateSystem>,
    domain: Option<&DomainInfo>,
) -> KernelLayer {
    let threads = host_threads(kernel);
    let link = link_qemu(&threads, files, domain);
    let end = kernel.current_end_time();
    let kernel_end = kernel
        .quarks(&["CPUs", "*", "Current_thread"])
        .unwrap_or_default()
        .into_iter()
        .filter_map(|q| kernel.query_single(end, q).ok().map(|i| i.start))
        .max()
        .unwrap_or(end);
    let mut out = Vec::new();
    if let Some(pid) = link.pid {
        for t in threads
            .iter()
            .filter(|t| t.pid == Some(pid) || t.tid == pid)
        {
            let mut spans = thread_spans(kernel, t);
            spans.retain(|s| s.start <= kernel_end);
            if let Some(last) = spans.last_mut() {
                last.end = last.end.min(kernel_end);
            }
            out.push(KernelThread {
                tid: t.tid,
                name: t.names.last().cloned().unwrap_or_default(),
                spans,
            });
        }
        out.sort_by_key(|t| t.tid);
    }
    KernelLayer {
        link,
        threads: out,
        kernel_end,
    }
}

fn thread_spans(kernel: &StateSystem, t: &HostThread) -> Vec<ThreadSpan> {
    let (t0, t1) = (kernel.start_time(), kernel.current_end_time());
    let mut status = kernel.query_2d(&[t.quark], t0, t1).unwrap_or_default();
    status.sort_by_key(|i| i.start);
    let mut rq = kernel
        .quark(&["Threads", &t.tid.to_string(), "Current_cpu_rq"])
        .ok()
        .and_then(|q| kernel.query_2d(&[q], t0, t1).ok())
        .unwrap_or_default();
    rq.sort_by_key(|i| i.start);
    // Both lists are sorted and each covers the range once: walk them together.
    let mut k = 0;
    let mut spans = Vec::new();
    for i in status {
        let Some(code) = i.value.as_int() else {
            continue;
        };
        while k < rq.len() && rq[k].end < i.start {
            k += 1;
        }
        let cpu = rq
            .get(k)
            .filter(|r| r.start <= i.start)
            .and_then(|r| int_value(&r.value));
        spans.push(ThreadSpan {
            start: i.start,
            end: i.end,
            status: thread_status_name(code),
            cpu,
        });
    }
    spans
}
