//! KVM exit analysis: counters of the host's KVM exits, per physical CPU, per
//! vCPU and per exit reason (the Trace Compass incubator's `KvmExitAnalysisModule`
//! and its state provider, which feed its "KVM Exit Rate" XY).
//!
//! Tree (incubator names and types):
//! - `CPUs/<cpu>/kvm_exits` (long): exits on that physical CPU so far;
//! - `CPUs/<cpu>/vcpu` (int): the vCPU of the CPU's last exit;
//! - `CPUs/<cpu>/kvm_state` (string): `exit` from an exit, `entry` from an entry;
//! - `VCPUs/<vcpu>/kvm_exits` (long), `VCPUs/<vcpu>/exit_reasons/<reason>` (long)
//!   and `VCPUs/<vcpu>/on_cpu` (int: the CPU of its last exit).
//!
//! Reasons are named by their VMX basic exit reason constant
//! (`EXIT_REASON_HLT`, ...), `UNKNOWN_EXIT_REASON` for a code without a name.
//! vCPUs are keyed by their number alone, so vCPU 0 of every VM shares one
//! attribute, as in the incubator.
//!
//! Where Sextant differs: the incubator takes the vCPU from the exit event's
//! `vcpu_id` field, which LTTng's `kvm_x86_exit` (lttng-modules 2.8 to 2.13)
//! does not have, so its `VCPUs` subtree stays empty on those traces. When the
//! exit lacks the field, this provider uses the `vcpu_id` of the last
//! `kvm_entry` on the same CPU (a vCPU thread cannot leave its CPU while in
//! guest mode); an exit with neither is counted on its CPU only. It also
//! accepts the older `kvm_exit`/`kvm_entry` names (Trace Compass's default LTTng
//! layout) next to `kvm_x86_*`, and takes the CPU from the event's stream.

use std::collections::{BTreeMap, HashMap};

use sht::{Quark, StateSystemBuilder, StateValue};

use crate::{EventFields, ProviderError, SkippedEvents, StateProvider, Subscription, TraceInfo};

/// The incubator's analysis id (`KvmExitAnalysisModule.ID`).
pub const ID: &str =
    "org.eclipse.tracecompass.incubator.internal.virtual.machine.analysis.core.flow.analysis.state.system.module";
/// The incubator's provider version.
pub const VERSION: i32 = 1;

pub const CPUS: &str = "CPUs";
pub const VCPUS: &str = "VCPUs";
pub const KVM_EXITS: &str = "kvm_exits";
pub const EXIT_REASONS: &str = "exit_reasons";
pub const UNKNOWN_EXIT_REASON: &str = "UNKNOWN_EXIT_REASON";

const EXIT_EVENTS: [&str; 2] = ["kvm_x86_exit", "kvm_exit"];
const ENTRY_EVENTS: [&str; 2] = ["kvm_x86_entry", "kvm_entry"];

const H_EXIT: u32 = 0;
const H_ENTRY: u32 = 1;
// Slots of the exit subscription.
const S_REASON: usize = 0;
const S_VCPU: usize = 1;

/// Name of a VMX exit reason code (the `exit_reason` field, read as 32 bits).
pub fn exit_reason_name(code: u32) -> &'static str {
    match code {
        0 => "EXIT_REASON_EXCEPTION_NMI",
        1 => "EXIT_REASON_EXTERNAL_INTERRUPT",
        2 => "EXIT_REASON_TRIPLE_FAULT",
        3 => "EXIT_REASON_INIT_SIGNAL",
        4 => "EXIT_REASON_SIPI_SIGNAL",
        7 => "EXIT_REASON_INTERRUPT_WINDOW",
        8 => "EXIT_REASON_NMI_WINDOW",
        9 => "EXIT_REASON_TASK_SWITCH",
        10 => "EXIT_REASON_CPUID",
        12 => "EXIT_REASON_HLT",
        13 => "EXIT_REASON_INVD",
        14 => "EXIT_REASON_INVLPG",
        15 => "EXIT_REASON_RDPMC",
        16 => "EXIT_REASON_RDTSC",
        18 => "EXIT_REASON_VMCALL",
        19 => "EXIT_REASON_VMCLEAR",
        20 => "EXIT_REASON_VMLAUNCH",
        21 => "EXIT_REASON_VMPTRLD",
        22 => "EXIT_REASON_VMPTRST",
        23 => "EXIT_REASON_VMREAD",
        24 => "EXIT_REASON_VMRESUME",
        25 => "EXIT_REASON_VMWRITE",
        26 => "EXIT_REASON_VMOFF",
        27 => "EXIT_REASON_VMON",
        28 => "EXIT_REASON_CR_ACCESS",
        29 => "EXIT_REASON_DR_ACCESS",
        30 => "EXIT_REASON_IO_INSTRUCTION",
        31 => "EXIT_REASON_MSR_READ",
        32 => "EXIT_REASON_MSR_WRITE",
        33 => "EXIT_REASON_INVALID_STATE",
        34 => "EXIT_REASON_MSR_LOAD_FAIL",
        36 => "EXIT_REASON_MWAIT_INSTRUCTION",
        37 => "EXIT_REASON_MONITOR_TRAP_FLAG",
        39 => "EXIT_REASON_MONITOR_INSTRUCTION",
        40 => "EXIT_REASON_PAUSE_INSTRUCTION",
        41 => "EXIT_REASON_MCE_DURING_VMENTRY",
        43 => "EXIT_REASON_TPR_BELOW_THRESHOLD",
        44 => "EXIT_REASON_APIC_ACCESS",
        45 => "EXIT_REASON_EOI_INDUCED",
        46 => "EXIT_REASON_GDTR_IDTR",
        47 => "EXIT_REASON_LDTR_TR",
        48 => "EXIT_REASON_EPT_VIOLATION",
        49 => "EXIT_REASON_EPT_MISCONFIG",
        50 => "EXIT_REASON_INVEPT",
        51 => "EXIT_REASON_RDTSCP",
        52 => "EXIT_REASON_PREEMPTION_TIMER",
        53 => "EXIT_REASON_INVVPID",
        54 => "EXIT_REASON_WBINVD",
        55 => "EXIT_REASON_XSETBV",
        56 => "EXIT_REASON_APIC_WRITE",
        57 => "EXIT_REASON_RDRAND",
        58 => "EXIT_REASON_INVPCID",
        59 => "EXIT_REASON_VMFUNC",
        60 => "EXIT_REASON_ENCLS",
        61 => "EXIT_REASON_RDSEED",
        62 => "EXIT_REASON_PML_FULL",
        63 => "EXIT_REASON_XSAVES",
        64 => "EXIT_REASON_XRSTORS",
        67 => "EXIT_REASON_UMWAIT",
        68 => "EXIT_REASON_TPAUSE",
        74 => "EXIT_REASON_BUS_LOCK",
        75 => "EXIT_REASON_NOTIFY",
        // Flag values the incubator names too (a code with a flag and a basic
        // reason is unknown there, and here).
        0x0800_0000 => "VMX_EXIT_REASONS_SGX_ENCLAVE_MODE",
        0x8000_0000 => "VMX_EXIT_REASONS_FAILED_VMENTRY",
        _ => UNKNOWN_EXIT_REASON,
    }
}

/// Quark of `path`, created on first use and then cached under `key`.
fn cached<K: std::hash::Hash + Eq>(
    cache: &mut HashMap<K, Quark>,
    key: K,
    ss: &mut dyn StateSystemBuilder,
    path: &[&str],
) -> sht::Result<Quark> {
    if let Some(&q) = cache.get(&key) {
        return Ok(q);
    }
    let q = ss.quark_and_add(path)?;
    cache.insert(key, q);
    Ok(q)
}

// Leaf kinds of the quark caches.
const CPU_EXITS: u8 = 0;
const CPU_VCPU: u8 = 1;
const CPU_STATE: u8 = 2;
const VCPU_EXITS: u8 = 0;
const VCPU_ON_CPU: u8 = 1;

/// The KVM exit counters (see the module doc).
#[derive(Default)]
pub struct KvmExitProvider {
    cpu_quarks: HashMap<(u32, u8), Quark>,
    vcpu_quarks: HashMap<(i32, u8), Quark>,
    reason_quarks: HashMap<(i32, u32), Quark>,
    /// vCPU of the last entry on each CPU not yet followed by an exit.
    entered: HashMap<u32, i32>,
    saw_exit_class: bool,
    exits: u64,
    without_cpu: u64,
    without_vcpu: u64,
    bad_vcpu: Option<(u64, i64)>,
    unknown_reasons: BTreeMap<u32, u64>,
    skipped: SkippedEvents,
}

impl KvmExitProvider {
    pub fn new() -> Self {
        Self::default()
    }

    fn vcpu_id(&mut self, raw: i64) -> Option<i32> {
        match i32::try_from(raw) {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                let (n, _) = self.bad_vcpu.get_or_insert((0, raw));
                *n += 1;
                None
            }
        }
    }

    fn exit(&mut self, ev: &dyn EventFields, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        let t = ev.timestamp();
        let Some(cpu) = ev.cpu() else {
            self.without_cpu += 1;
            return Ok(());
        };
        self.exits += 1;
        let c = cpu.to_string();
        // Attributes are created in the incubator's order, so that quarks match.
        let q = cached(
            &mut self.cpu_quarks,
            (cpu, CPU_EXITS),
            ss,
            &[CPUS, &c, KVM_EXITS],
        )?;
        ss.increment(t, StateValue::Long(1), q)?;
        let from_entry = self.entered.remove(&cpu);
        let vcpu = match ev.int(S_VCPU) {
            Some(raw) => self.vcpu_id(raw),
            None => from_entry,
        };
        match vcpu {
            Some(v) => {
                let q = cached(
                    &mut self.cpu_quarks,
                    (cpu, CPU_VCPU),
                    ss,
                    &[CPUS, &c, "vcpu"],
                )?;
                ss.modify(t, StateValue::Int(v), q)?;
                let vs = v.to_string();
                let q = cached(
                    &mut self.vcpu_quarks,
                    (v, VCPU_EXITS),
                    ss,
                    &[VCPUS, &vs, KVM_EXITS],
                )?;
                ss.increment(t, StateValue::Long(1), q)?;
                if let Some(raw) = ev.int(S_REASON) {
                    // A 32-bit field: its sign or width does not change the code.
                    let code = raw as u32;
                    let name = exit_reason_name(code);
                    if name == UNKNOWN_EXIT_REASON {
                        *self.unknown_reasons.entry(code).or_default() += 1;
                    }
                    let q = cached(
                        &mut self.reason_quarks,
                        (v, code),
                        ss,
                        &[VCPUS, &vs, EXIT_REASONS, name],
                    )?;
                    ss.increment(t, StateValue::Long(1), q)?;
                }
                let q = cached(
                    &mut self.vcpu_quarks,
                    (v, VCPU_ON_CPU),
                    ss,
                    &[VCPUS, &vs, "on_cpu"],
                )?;
                ss.modify(t, StateValue::Int(cpu as i32), q)?;
            }
            None => self.without_vcpu += 1,
        }
        let q = cached(
            &mut self.cpu_quarks,
            (cpu, CPU_STATE),
            ss,
            &[CPUS, &c, "kvm_state"],
        )?;
        ss.modify(t, StateValue::from("exit"), q)
    }

    fn entry(&mut self, ev: &dyn EventFields, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        let Some(cpu) = ev.cpu() else {
            return Ok(());
        };
        match ev.int(0).and_then(|raw| self.vcpu_id(raw)) {
            Some(v) => self.entered.insert(cpu, v),
            None => self.entered.remove(&cpu),
        };
        let c = cpu.to_string();
        let q = cached(
            &mut self.cpu_quarks,
            (cpu, CPU_STATE),
            ss,
            &[CPUS, &c, "kvm_state"],
        )?;
        ss.modify(ev.timestamp(), StateValue::from("entry"), q)
    }
}

impl StateProvider for KvmExitProvider {
    fn id(&self) -> &'static str {
        ID
    }

    fn version(&self) -> i32 {
        VERSION
    }

    fn check_trace(&mut self, trace: &TraceInfo) -> Result<(), ProviderError> {
        *self = Self::default();
        if trace.domain == "ust" {
            return Err(ProviderError::Unsupported {
                analysis: ID.into(),
                what: format!(
                    "{}: a user-space trace has no kvm_exit events (a KVM host's kernel trace has)",
                    trace.name
                ),
            });
        }
        Ok(())
    }

    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        if EXIT_EVENTS.contains(&event_name) {
            self.saw_exit_class = true;
            Some(Subscription {
                handler: H_EXIT,
                fields: vec!["exit_reason", "vcpu_id"],
            })
        } else if ENTRY_EVENTS.contains(&event_name) {
            Some(Subscription {
                handler: H_ENTRY,
                fields: vec!["vcpu_id"],
            })
        } else {
            None
        }
    }

    fn handle(
        &mut self,
        handler: u32,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let result = match handler {
            H_EXIT => self.exit(ev, ss),
            H_ENTRY => self.entry(ev, ss),
            _ => Ok(()),
        };
        self.skipped.absorb(result, ev.timestamp())
    }

    fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.saw_exit_class {
            out.push(
                "no kvm_x86_exit or kvm_exit event class in the trace: enable the kvm \
                 tracepoints on the KVM host"
                    .to_string(),
            );
        }
        if self.without_cpu > 0 {
            out.push(format!(
                "{} kvm exit(s) without a CPU were not counted",
                self.without_cpu
            ));
        }
        if self.without_vcpu > 0 {
            out.push(format!(
                "{} of {} kvm exit(s) counted on their CPU only: no vcpu_id field and no \
                 kvm entry before them on that CPU",
                self.without_vcpu, self.exits
            ));
        }
        if let Some((n, first)) = self.bad_vcpu {
            out.push(format!(
                "{n} event(s) with a vcpu_id out of range (first {first}): no vCPU attributed"
            ));
        }
        if !self.unknown_reasons.is_empty() {
            let codes: Vec<String> = self
                .unknown_reasons
                .iter()
                .take(8)
                .map(|(c, n)| format!("{c:#x} x{n}"))
                .collect();
            out.push(format!(
                "exit reason codes without a name, counted as {UNKNOWN_EXIT_REASON}: {}",
                codes.join(", ")
            ));
        }
        out.extend(self.skipped.warnings());
        out
    }
}

#[cfg(test)]
mod tests {
    //! Counters against the raw kvm exit events, counted here from the trace
    //! files (the stubs' XML text, the generated CTF trace's events read with
    //! the `trace` crate), with the vCPU of an exit taken from the `vcpu_id` of
    //! the last entry on its CPU.

    use std::collections::BTreeMap;
    use std::ops::ControlFlow;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::AtomicU64;

    use sht::{StateSystem, StateSystemQuerier, StateValue};

    use super::*;
    use crate::pipeline::{build, Analysis, BuildOptions, Output};

    fn shared_dir() -> Option<PathBuf> {
        let dir = std::env::var_os("SEXTANT_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
        if dir.join("golden/vm").is_dir() {
            return Some(dir);
        }
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "shared data {} is missing (CI=true)",
            dir.display()
        );
        eprintln!("notice: {} not found; skipping", dir.display());
        None
    }

    fn run(paths: &[PathBuf]) -> (StateSystem, Vec<String>) {
        let mut source = crate::sources::open(paths).unwrap();
        let provider = crate::native_registry().create("kvm-exits").unwrap();
        let (report, mut systems) = build(
            &mut *source,
            vec![Analysis {
                provider,
                output: Output::InMemory,
            }],
            &BuildOptions::default(),
        )
        .unwrap();
        (systems.remove(0), report.warnings)
    }

    /// Expected counts: per CPU, per vCPU, per (vCPU, reason name).
    #[derive(Debug, Default, PartialEq)]
    struct Counts {
        cpu: BTreeMap<String, i64>,
        vcpu: BTreeMap<String, i64>,
        reason: BTreeMap<(String, String), i64>,
    }

    /// Raw events in time order: (cpu, is_exit, vcpu_id, exit_reason).
    type Raw = (Option<u32>, bool, Option<i64>, Option<i64>);

    fn expected(events: &[Raw], names: &dyn Fn(i64) -> String) -> Counts {
        let mut c = Counts::default();
        let mut entered: BTreeMap<u32, i64> = BTreeMap::new();
        for &(cpu, exit, vcpu, reason) in events {
            let Some(cpu) = cpu else { continue };
            if !exit {
                match vcpu {
                    Some(v) => entered.insert(cpu, v),
                    None => entered.remove(&cpu),
                };
                continue;
            }
            *c.cpu.entry(cpu.to_string()).or_default() += 1;
            let from_entry = entered.remove(&cpu);
            if let Some(v) = vcpu.or(from_entry).filter(|v| *v >= 0) {
                *c.vcpu.entry(v.to_string()).or_default() += 1;
                if let Some(r) = reason {
                    *c.reason.entry((v.to_string(), names(r))).or_default() += 1;
                }
            }
        }
        c
    }

    fn last(ss: &StateSystem, q: i32) -> i64 {
        match ss.query_single(ss.current_end_time(), q).unwrap().value {
            StateValue::Long(v) => v,
            other => panic!("counter {q}: {other:?}"),
        }
    }

    fn actual(ss: &StateSystem) -> Counts {
        let mut c = Counts::default();
        let t = ss.attributes();
        for q in ss.quarks(&[CPUS, "*", KVM_EXITS]).unwrap() {
            let cpu = t.name(t.parent(q).unwrap()).unwrap().to_string();
            c.cpu.insert(cpu, last(ss, q));
        }
        for q in ss.quarks(&[VCPUS, "*", KVM_EXITS]).unwrap() {
            let v = t.name(t.parent(q).unwrap()).unwrap().to_string();
            c.vcpu.insert(v.clone(), last(ss, q));
            for r in ss.quarks(&[VCPUS, &v, EXIT_REASONS, "*"]).unwrap() {
                let name = t.name(r).unwrap().to_string();
                c.reason.insert((v.clone(), name), last(ss, r));
            }
        }
        c
    }

    /// An XML stub trace's kvm events, read from its text.
    fn stub_raw(path: &Path) -> Vec<Raw> {
        let text = std::fs::read_to_string(path).unwrap();
        let field = |e: &str, name: &str| -> Option<i64> {
            let key = format!("name=\"{name}\" value=\"");
            let from = e.find(&key)? + key.len();
            e[from..from + e[from..].find('"')?].parse().ok()
        };
        text.split("<event ")
            .skip(1)
            .filter_map(|e| {
                let exit = e.contains("name=\"kvm_exit\"") || e.contains("name=\"kvm_x86_exit\"");
                let entry =
                    e.contains("name=\"kvm_entry\"") || e.contains("name=\"kvm_x86_entry\"");
                (exit || entry).then(|| {
                    let cpu = field(e, "cpu").map(|c| c as u32);
                    (cpu, exit, field(e, "vcpu_id"), field(e, "exit_reason"))
                })
            })
            .collect()
    }

    #[test]
    fn the_vm_golden_stubs_count_every_exit() {
        let Some(shared) = shared_dir() else { return };
        let mut checked = 0;
        let mut dirs: Vec<_> = std::fs::read_dir(shared.join("golden/vm"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        for dir in dirs {
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "xml"))
                .collect();
            files.sort();
            for file in files {
                let raw = stub_raw(&file);
                let (ss, warnings) = run(std::slice::from_ref(&file));
                // The stubs' exits all have reason 32, which Linux's vmx.h
                // names EXIT_REASON_MSR_WRITE.
                let want = expected(&raw, &|r| {
                    assert_eq!(r, 32, "{}", file.display());
                    "EXIT_REASON_MSR_WRITE".to_string()
                });
                assert_eq!(actual(&ss), want, "{}", file.display());
                let exits = raw.iter().filter(|e| e.1).count();
                if exits > 0 {
                    checked += 1;
                    assert_eq!(want.cpu["0"], exits as i64);
                    assert_eq!(want.vcpu["0"], exits as i64, "{}", file.display());
                    assert!(warnings.is_empty(), "{warnings:?}");
                    // The counter steps by one at each exit, and the CPU's
                    // state follows the exits and entries.
                    let q = ss.quark(&[CPUS, "0", KVM_EXITS]).unwrap();
                    let state = ss.quark(&[CPUS, "0", "kvm_state"]).unwrap();
                    let text = std::fs::read_to_string(&file).unwrap();
                    let mut n = 0;
                    for e in text.split("<event ").skip(1) {
                        let ts: i64 = e["timestamp=\"".len()..]
                            .split('"')
                            .next()
                            .unwrap()
                            .parse()
                            .unwrap();
                        let want_state = if e.contains("name=\"kvm_exit\"") {
                            n += 1;
                            assert_eq!(ss.query_single(ts, q).unwrap().value, StateValue::Long(n));
                            "exit"
                        } else if e.contains("name=\"kvm_entry\"") {
                            "entry"
                        } else {
                            continue;
                        };
                        assert_eq!(
                            ss.query_single(ts, state).unwrap().value,
                            StateValue::from(want_state)
                        );
                    }
                    let on_cpu = ss.quark(&[VCPUS, "0", "on_cpu"]).unwrap();
                    assert_eq!(last_value(&ss, on_cpu), StateValue::Int(0));
                } else {
                    assert!(
                        ss.attributes().is_empty() || ss.quarks(&[CPUS, "*"]).unwrap().is_empty()
                    );
                    assert!(
                        warnings.iter().any(|w| w.contains("no kvm_x86_exit")),
                        "{warnings:?}"
                    );
                }
            }
        }
        assert!(checked >= 4, "{checked} stub traces with kvm exits");
    }

    fn last_value(ss: &StateSystem, q: i32) -> StateValue {
        ss.query_single(ss.current_end_time(), q).unwrap().value
    }

    #[test]
    fn a_generated_kvm_host_counts_every_exit_by_cpu_vcpu_and_reason() {
        use sextant_trace::gen::{generate, GenConfig, GenLimit};
        let dir = tempfile::tempdir().unwrap();
        let cfg = GenConfig {
            limit: GenLimit::Events(30_000),
            cpus: 2,
            threads: 20,
            vms: 2,
            vcpus_per_vm: 2,
            seed: 11,
            ..GenConfig::default()
        };
        let report = generate(&dir.path().join("host"), &cfg, None).unwrap();
        assert!(report.counts.get("kvm_x86_exit").copied().unwrap_or(0) > 100);

        // The raw events, with the trace crate's reader.
        let mut exp = sextant_trace::Experiment::open(&[&report.dir]).unwrap();
        let mut kinds = BTreeMap::new();
        for c in 0..exp.class_count() {
            let class = sextant_trace::ClassId(c);
            let exit = match exp.class_name(class) {
                "kvm_x86_exit" => true,
                "kvm_x86_entry" => false,
                _ => continue,
            };
            let vcpu = exp.field_handle(class, "vcpu_id");
            let reason = exp.field_handle(class, "exit_reason");
            kinds.insert(c, (exit, vcpu, reason));
        }
        let mut raw = Vec::new();
        exp.for_each(
            &mut |e| {
                if let Some(&(exit, vcpu, reason)) = kinds.get(&e.class().0) {
                    raw.push((
                        e.cpu(),
                        exit,
                        vcpu.and_then(|f| e.int(f)),
                        reason.and_then(|f| e.int(f)),
                    ));
                }
                ControlFlow::Continue(())
            },
            &AtomicU64::new(0),
        )
        .unwrap();
        assert_eq!(
            raw.iter().filter(|e| e.1).count() as u64,
            report.counts["kvm_x86_exit"]
        );

        let (ss, _) = run(std::slice::from_ref(&report.dir));
        // Names of the reasons the generator writes, from Linux's vmx.h.
        let names = |r: i64| {
            match r {
                1 => "EXIT_REASON_EXTERNAL_INTERRUPT",
                10 => "EXIT_REASON_CPUID",
                12 => "EXIT_REASON_HLT",
                18 => "EXIT_REASON_VMCALL",
                30 => "EXIT_REASON_IO_INSTRUCTION",
                32 => "EXIT_REASON_MSR_WRITE",
                40 => "EXIT_REASON_PAUSE_INSTRUCTION",
                48 => "EXIT_REASON_EPT_VIOLATION",
                49 => "EXIT_REASON_EPT_MISCONFIG",
                52 => "EXIT_REASON_PREEMPTION_TIMER",
                other => panic!("the generator wrote exit reason {other}"),
            }
            .to_string()
        };
        let want = expected(&raw, &names);
        let got = actual(&ss);
        assert_eq!(got, want);
        assert_eq!(want.cpu.len(), 2);
        assert_eq!(want.vcpu.len(), 2, "vCPU numbers 0 and 1 of both VMs");
        assert!(want.reason.len() >= 4, "{:?}", want.reason);
        // Every vCPU's reasons add up to its exits.
        for (v, n) in &want.vcpu {
            let sum: i64 = want
                .reason
                .iter()
                .filter(|((x, _), _)| x == v)
                .map(|(_, n)| n)
                .sum();
            assert_eq!(sum, *n, "vCPU {v}");
        }
    }

    #[test]
    fn odd_exits_are_counted_without_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd.xml");
        let ev = |t: i64, name: &str, fields: &[(&str, i64)]| {
            let mut s = format!("<event timestamp=\"{t}\" name=\"{name}\">\n");
            for (k, v) in fields {
                s.push_str(&format!(
                    "<field name=\"{k}\" value=\"{v}\" type=\"long\" />\n"
                ));
            }
            s + "</event>\n"
        };
        let mut text = String::from(
            "<trace>\n<set_aspects>\n<field name=\"cpu\" value=\"1\" type=\"int\" />\n</set_aspects>\n",
        );
        // An exit with no entry before it: its CPU only.
        text += &ev(10, "kvm_exit", &[("cpu", 1), ("exit_reason", 12)]);
        // Unknown reasons, one with the failed-entry flag.
        text += &ev(20, "kvm_entry", &[("cpu", 1), ("vcpu_id", 3)]);
        text += &ev(30, "kvm_exit", &[("cpu", 1), ("exit_reason", 999)]);
        text += &ev(40, "kvm_entry", &[("cpu", 1), ("vcpu_id", 3)]);
        text += &ev(50, "kvm_exit", &[("cpu", 1), ("exit_reason", 0x8000_0021)]);
        // Two exits after one entry: the second has no vCPU.
        text += &ev(60, "kvm_entry", &[("cpu", 0), ("vcpu_id", 3)]);
        text += &ev(70, "kvm_exit", &[("cpu", 0), ("exit_reason", 1)]);
        text += &ev(80, "kvm_exit", &[("cpu", 0), ("exit_reason", 1)]);
        // vcpu_id out of range, on the exit itself; an exit with no CPU.
        text += &ev(
            90,
            "kvm_exit",
            &[("cpu", 0), ("vcpu_id", -1), ("exit_reason", 1)],
        );
        text += &ev(95, "kvm_exit", &[("exit_reason", 1)]);
        // An exit with its own vcpu_id and no reason; an entry without vcpu_id.
        text += &ev(100, "kvm_exit", &[("cpu", 0), ("vcpu_id", 5)]);
        text += &ev(110, "kvm_entry", &[("cpu", 0)]);
        text += &ev(120, "kvm_exit", &[("cpu", 0), ("exit_reason", 1)]);
        text += "</trace>\n";
        std::fs::write(&path, text).unwrap();
        let (ss, warnings) = run(&[path]);
        let got = actual(&ss);
        let map = |v: &[(&str, i64)]| v.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        assert_eq!(got.cpu, map(&[("0", 5), ("1", 3)]));
        assert_eq!(got.vcpu, map(&[("3", 3), ("5", 1)]));
        let reasons: BTreeMap<(String, String), i64> = [
            (("3", UNKNOWN_EXIT_REASON), 2),
            (("3", "EXIT_REASON_EXTERNAL_INTERRUPT"), 1),
        ]
        .into_iter()
        .map(|((v, r), n)| ((v.to_string(), r.to_string()), n))
        .collect();
        assert_eq!(got.reason, reasons);
        let all = warnings.join("\n");
        assert!(all.contains("1 kvm exit(s) without a CPU"), "{all}");
        assert!(
            all.contains("4 of 8 kvm exit(s) counted on their CPU only"),
            "{all}"
        );
        assert!(all.contains("vcpu_id out of range (first -1)"), "{all}");
        assert!(
            all.contains("0x3e7 x1") && all.contains("0x80000021 x1"),
            "{all}"
        );
        assert_eq!(
            exit_reason_name(0x8000_0000),
            "VMX_EXIT_REASONS_FAILED_VMENTRY"
        );
    }
}
