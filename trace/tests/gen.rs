//! The synthetic kernel trace generator: determinism, bad settings, and (when
//! `babeltrace2` is installed) decoding by Babeltrace with counts equal to the
//! report and the kernel state the events imply checked for consistency.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use sextant_trace::gen::{generate, GenConfig, GenError, GenLimit, GenReport};

fn config(events: u64, cpus: u32, threads: u64, seed: u64) -> GenConfig {
    GenConfig {
        limit: GenLimit::Events(events),
        cpus,
        threads,
        seed,
        hostname: "gen-test".into(),
        ..Default::default()
    }
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["", "index"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn same_seed_gives_the_same_bytes_and_another_seed_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(60_000, 3, 50, 42);
    let a = generate(&tmp.path().join("a"), &cfg, None).unwrap();
    let b = generate(&tmp.path().join("b"), &cfg, None).unwrap();
    let (fa, fb) = (files(&a.dir), files(&b.dir));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    // metadata, 3 streams, 3 indexes
    assert_eq!(fa.len(), 7, "{:?}", fa.keys());
    for (name, bytes) in &fa {
        assert!(
            bytes == &fb[name],
            "{name} differs between two runs of seed 42"
        );
    }
    assert_eq!(a.counts, b.counts);
    let c = generate(&tmp.path().join("c"), &config(60_000, 3, 50, 43), None).unwrap();
    assert_ne!(files(&c.dir)["channel0_0"], fa["channel0_0"]);
}

#[test]
fn report_totals_agree_with_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let calls = std::cell::Cell::new(0u64);
    let last = std::cell::Cell::new((0u64, 0u64));
    let progress = |done: u64, total: u64| {
        calls.set(calls.get() + 1);
        assert!(done <= total);
        last.set((done, total));
    };
    let r = generate(
        &tmp.path().join("t"),
        &config(150_000, 2, 30, 5),
        Some(&progress),
    )
    .unwrap();
    assert_eq!(r.events, 150_000);
    assert_eq!(r.counts.values().sum::<u64>(), r.events);
    assert!(calls.get() > 1);
    assert_eq!(last.get(), (150_000, 150_000));
    let on_disk: u64 = files(&r.dir).values().map(|b| b.len() as u64).sum();
    assert_eq!(on_disk, r.bytes);
    let streams: u64 = (0..2)
        .map(|c| {
            std::fs::metadata(r.dir.join(format!("channel0_{c}")))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(streams, r.stream_bytes);
    // Index v1.0: 16-byte header, 56-byte entries, one per packet.
    let idx_entries: u64 = (0..2)
        .map(|c| {
            (std::fs::metadata(r.dir.join(format!("index/channel0_{c}.idx")))
                .unwrap()
                .len()
                - 16)
                / 56
        })
        .sum();
    assert_eq!(idx_entries, r.packets);
    assert_eq!(r.first_event_ns, Some(GenConfig::default().start_ns));
}

#[test]
fn size_limit_stops_near_the_size() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = GenConfig {
        limit: GenLimit::Bytes(3 << 20),
        ..config(1, 4, 100, 9)
    };
    let r = generate(&tmp.path().join("t"), &cfg, None).unwrap();
    // The content reaches the size; the last packets round up to 4 KiB pages.
    assert!(r.stream_bytes >= 3 << 20, "{}", r.stream_bytes);
    assert!(r.stream_bytes <= (3 << 20) + 4 * 4096, "{}", r.stream_bytes);
}

#[test]
fn bad_settings_are_rejected_with_the_field_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t");
    let cases: Vec<(GenConfig, &str)> = vec![
        (config(0, 4, 10, 1), "events"),
        (config(10, 0, 10, 1), "cpus"),
        (config(10, 2000, 10, 1), "cpus"),
        (config(10, 4, 1, 1), "threads"),
        (
            GenConfig {
                hostname: "a\"b".into(),
                ..config(10, 4, 10, 1)
            },
            "hostname",
        ),
        (
            GenConfig {
                hostname: String::new(),
                ..config(10, 4, 10, 1)
            },
            "hostname",
        ),
        (
            GenConfig {
                limit: GenLimit::Bytes(10),
                ..config(10, 4, 10, 1)
            },
            "size",
        ),
    ];
    for (cfg, field) in cases {
        match generate(&out, &cfg, None) {
            Err(GenError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected InvalidConfig, got {other:?}"),
        }
        assert!(!out.exists());
    }
}

#[test]
fn existing_output_is_kept_unless_replacing_and_never_if_not_a_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t");
    generate(&out, &config(1000, 2, 10, 1), None).unwrap();
    let before = files(&out);
    match generate(&out, &config(1000, 2, 10, 2), None) {
        Err(GenError::OutputExists { path }) => assert_eq!(path, out),
        other => panic!("expected OutputExists, got {other:?}"),
    }
    assert_eq!(files(&out), before);
    let replace = GenConfig {
        replace_existing: true,
        ..config(1000, 2, 10, 2)
    };
    generate(&out, &replace, None).unwrap();
    assert_ne!(files(&out), before);
    // A directory that is not a trace is never replaced.
    let precious = tmp.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("notes.txt"), "keep me").unwrap();
    match generate(&precious, &replace, None) {
        Err(GenError::NotATrace { path }) => assert_eq!(path, precious),
        other => panic!("expected NotATrace, got {other:?}"),
    }
    assert!(precious.join("notes.txt").exists());
    // An unwritable location: an I/O error naming the path, no leftovers.
    let under_file = precious.join("notes.txt").join("t");
    match generate(&under_file, &config(10, 1, 10, 1), None) {
        Err(GenError::Io { path, .. }) => assert!(path.starts_with(&precious), "{path:?}"),
        other => panic!("expected Io, got {other:?}"),
    }
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

// ---- Babeltrace cross-check ---------------------------------------------------------

struct Event {
    ns: u64,
    name: String,
    cpu: u32,
    /// The payload text between the last `{ … }`.
    fields: String,
    /// The event context (`{ pid = …, tid = … }` in KVM host mode), else empty.
    context: String,
}

impl Event {
    fn get(&self, key: &str) -> &str {
        for prefix in ["{ ", ", "] {
            let pat = format!("{prefix}{key} = ");
            if let Some(i) = self.fields.find(&pat) {
                let rest = &self.fields[i + pat.len()..];
                let end = rest.find([',', '}']).unwrap_or(rest.len());
                return rest[..end].trim().trim_matches('"');
            }
        }
        panic!(
            "{} at {}: no field {key} in {}",
            self.name, self.ns, self.fields
        )
    }
    fn int(&self, key: &str) -> i64 {
        self.get(key)
            .parse()
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    }
}

/// `[1700000000.000000356] (+0.000000356) host name: { cpu_id = 0 }, { … }`
fn parse_line(line: &str) -> Event {
    let close = line.find(']').unwrap();
    let (s, ns) = line[1..close].split_once('.').unwrap();
    let ns = s.parse::<u64>().unwrap() * 1_000_000_000 + ns.parse::<u64>().unwrap();
    let rest = &line[close + 1..];
    let after_delta = &rest[rest.find(") ").unwrap() + 2..];
    let colon = after_delta.find(": ").unwrap();
    let name = after_delta[..colon].rsplit(' ').next().unwrap().to_string();
    let body = &after_delta[colon + 2..];
    let cpu_pat = "{ cpu_id = ";
    let c = body.find(cpu_pat).unwrap() + cpu_pat.len();
    let cpu = body[c..body[c..].find(' ').unwrap() + c].parse().unwrap();
    let mut fields = body[body.find("}, ").unwrap() + 3..].to_string();
    let mut context = String::new();
    // A context group comes before the payload (a payload may itself start with pid).
    if let Some(end) = fields
        .starts_with("{ pid = ")
        .then(|| fields.find("}, {"))
        .flatten()
    {
        context = fields[..end + 1].to_string();
        fields = fields[end + 3..].to_string();
    }
    Event {
        ns,
        name,
        cpu,
        fields,
        context,
    }
}

#[derive(Default)]
struct Checker {
    current: HashMap<u32, i64>,
    /// Syscall entries seen on a CPU before its first switch named the thread.
    unattributed: HashMap<u32, String>,
    pending: HashMap<i64, String>,
    running_on: HashMap<i64, u32>,
    nesting: HashMap<u32, Vec<(String, i64)>>,
    known: HashSet<i64>,
    forked: HashSet<i64>,
    dead: HashSet<i64>,
    freed: HashSet<i64>,
}

impl Checker {
    fn syscall(&mut self, e: &Event) {
        let (kind, sys) = if let Some(s) = e.name.strip_prefix("syscall_entry_") {
            ("entry", s)
        } else {
            ("exit", e.name.strip_prefix("syscall_exit_").unwrap())
        };
        assert!(
            self.nesting[&e.cpu].is_empty(),
            "{} at {} inside an interrupt",
            e.name,
            e.ns
        );
        let slot = match self.current.get(&e.cpu) {
            Some(&tid) => {
                assert_ne!(tid, 0, "{} at {} by the idle task", e.name, e.ns);
                self.pending.remove(&tid)
            }
            None => self.unattributed.remove(&e.cpu),
        };
        let new = if kind == "entry" {
            assert!(
                slot.is_none(),
                "{} at {}: already in {slot:?}",
                e.name,
                e.ns
            );
            // exit and exit_group never return.
            (sys != "exit" && sys != "exit_group").then(|| sys.to_string())
        } else {
            match slot {
                Some(s) => assert_eq!(s, sys, "{} at {} closes {s}", e.name, e.ns),
                None => {
                    // Only a new child's return from clone has no entry.
                    let tid = self.current.get(&e.cpu).copied();
                    assert!(
                        sys == "clone" && tid.is_some_and(|t| self.forked.remove(&t)),
                        "{} at {} without an entry",
                        e.name,
                        e.ns
                    );
                }
            }
            None
        };
        if let Some(s) = new {
            match self.current.get(&e.cpu) {
                Some(&tid) => {
                    self.pending.insert(tid, s);
                }
                None => {
                    self.unattributed.insert(e.cpu, s);
                }
            }
        }
    }

    fn event(&mut self, e: &Event) {
        let nest = self.nesting.entry(e.cpu).or_default();
        match e.name.as_str() {
            "irq_handler_entry" => nest.push(("irq".into(), e.int("irq"))),
            "irq_softirq_entry" => nest.push(("softirq".into(), e.int("vec"))),
            "x86_irq_vectors_local_timer_entry" => nest.push(("timer".into(), e.int("vector"))),
            "irq_handler_exit" | "irq_softirq_exit" | "x86_irq_vectors_local_timer_exit" => {
                let top = nest
                    .pop()
                    .unwrap_or_else(|| panic!("{} at {}: not in one", e.name, e.ns));
                let want = match e.name.as_str() {
                    "irq_handler_exit" => ("irq".to_string(), e.int("irq")),
                    "irq_softirq_exit" => ("softirq".to_string(), e.int("vec")),
                    _ => ("timer".to_string(), e.int("vector")),
                };
                assert_eq!(top, want, "{} at {}", e.name, e.ns);
            }
            "block_rq_complete" => {
                assert_eq!(
                    nest.last(),
                    Some(&("softirq".to_string(), 4)),
                    "at {}",
                    e.ns
                )
            }
            "sched_switch" => {
                assert!(
                    nest.is_empty(),
                    "sched_switch at {} inside an interrupt",
                    e.ns
                );
                let (prev, next) = (e.int("prev_tid"), e.int("next_tid"));
                match self.current.get(&e.cpu) {
                    Some(&cur) => assert_eq!(prev, cur, "switch at {} on CPU {}", e.ns, e.cpu),
                    None => {
                        if let Some(s) = self.unattributed.remove(&e.cpu) {
                            self.pending.insert(prev, s);
                        }
                    }
                }
                if prev != 0 {
                    self.running_on.remove(&prev);
                }
                if e.int("prev_state") == 64 {
                    assert!(self.dead.contains(&prev), "TASK_DEAD switch of live {prev}");
                }
                if next != 0 {
                    assert!(
                        !self.dead.contains(&next),
                        "dead {next} scheduled at {}",
                        e.ns
                    );
                    if let Some(other) = self.running_on.insert(next, e.cpu) {
                        panic!(
                            "{next} switched in on CPU {} at {} while on CPU {other}",
                            e.cpu, e.ns
                        );
                    }
                }
                self.current.insert(e.cpu, next);
            }
            "sched_waking" | "sched_wakeup" | "sched_wakeup_new" => {
                let tid = e.int("tid");
                assert!(
                    !self.running_on.contains_key(&tid),
                    "{} of running {tid} at {}",
                    e.name,
                    e.ns
                );
                assert!(!self.dead.contains(&tid));
            }
            "sched_process_fork" => {
                let (parent, child) = (e.int("parent_tid"), e.int("child_tid"));
                if let Some(&cur) = self.current.get(&e.cpu) {
                    assert_eq!(cur, parent, "fork at {}", e.ns);
                }
                assert!(self.known.insert(child), "TID {child} reused at {}", e.ns);
                assert!(self.forked.insert(child));
                let pid = e.int("child_pid");
                assert!(
                    pid == child || pid == e.int("parent_pid"),
                    "fork at {}",
                    e.ns
                );
                assert_eq!(e.get("vtids"), format!("[ [0] = {child} ]"));
            }
            "sched_process_exec" => {
                if let Some(&cur) = self.current.get(&e.cpu) {
                    assert_eq!(cur, e.int("tid"));
                }
            }
            "sched_process_exit" => {
                let tid = e.int("tid");
                if let Some(&cur) = self.current.get(&e.cpu) {
                    assert_eq!(cur, tid, "exit at {}", e.ns);
                }
                assert!(self.dead.insert(tid));
            }
            "sched_process_free" => {
                let tid = e.int("tid");
                assert!(self.dead.contains(&tid), "free of live {tid}");
                assert!(self.freed.insert(tid), "{tid} freed twice");
            }
            "lttng_statedump_process_state" => {
                assert!(self.known.insert(e.int("tid")), "TID listed twice");
            }
            _ => {}
        }
        if e.name.starts_with("syscall_") {
            self.syscall(e);
        }
    }
}

fn babeltrace_available() -> bool {
    let ok = Command::new("babeltrace2")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("note: skipping: babeltrace2 is not installed (apt-get install babeltrace2)");
    }
    ok
}

fn babeltrace_events(report: &GenReport) -> Vec<Event> {
    let out = Command::new("babeltrace2")
        .arg("--clock-seconds")
        .arg(&report.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "babeltrace2 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "babeltrace2 warned: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(parse_line)
        .collect()
}

fn check_with_babeltrace(cfg: &GenConfig) {
    if !babeltrace_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let report = generate(&tmp.path().join("trace"), cfg, None).unwrap();
    let events = babeltrace_events(&report);
    assert_eq!(events.len() as u64, report.events);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for e in &events {
        *counts.entry(e.name.clone()).or_default() += 1;
    }
    assert_eq!(counts, report.counts);
    assert_eq!(events.first().map(|e| e.ns), report.first_event_ns);
    assert_eq!(events.last().map(|e| e.ns), report.last_event_ns);
    for want in [
        "lttng_statedump_start",
        "lttng_statedump_process_state",
        "sched_switch",
        "sched_waking",
        "sched_wakeup",
        "sched_process_fork",
        "sched_process_exec",
        "sched_process_exit",
        "sched_process_free",
        "syscall_entry_read",
        "syscall_exit_futex",
        "irq_handler_entry",
        "irq_softirq_raise",
        "block_rq_insert",
        "block_rq_issue",
        "block_rq_complete",
    ] {
        assert!(counts.contains_key(want), "no {want} in {counts:?}");
    }
    let mut checker = Checker::default();
    let mut last_ns = 0;
    for e in &events {
        assert!(e.ns > last_ns || last_ns == 0, "time goes back at {}", e.ns);
        last_ns = e.ns;
        assert!(e.cpu < cfg.cpus);
        checker.event(e);
    }
}

#[test]
fn babeltrace_decodes_it_with_the_reported_counts_and_consistent_state() {
    check_with_babeltrace(&config(400_000, 4, 120, 11));
}

#[test]
fn babeltrace_decodes_one_cpu_and_many_cpus() {
    check_with_babeltrace(&config(80_000, 1, 5, 3));
    check_with_babeltrace(&config(150_000, 16, 2000, 4));
}

// ---- the project's own CTF reader ------------------------------------------------------

/// Babeltrace's text for a value, so the checker reads both sources alike.
fn value_text(v: &sextant_trace::Value<'_>) -> String {
    use sextant_trace::Value;
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Hex(u) => format!("0x{u:X}"),
        Value::Float(f) => f.to_string(),
        Value::Str(s) => format!("\"{s}\""),
        Value::Enum(i, _, _) => i.to_string(),
        Value::Array(items) if items.is_empty() => "[ ]".into(),
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(i, x)| format!("[{i}] = {}", value_text(x)))
                .collect();
            format!("[ {} ]", parts.join(", "))
        }
        Value::Struct(_) | Value::Bytes(_) | Value::Variant(..) => "?".into(),
    }
}

fn reader_events(report: &GenReport) -> Vec<Event> {
    use std::ops::ControlFlow;
    let mut exp = sextant_trace::Experiment::open(&[&report.dir]).unwrap();
    let mut out = Vec::new();
    let progress = std::sync::atomic::AtomicU64::new(0);
    let names: Vec<String> = (0..exp.class_count())
        .map(|c| exp.class_name(sextant_trace::ClassId(c)).to_string())
        .collect();
    exp.for_each(
        &mut |e| {
            let (context, _, payload) = e.babeltrace_fields();
            let fields: Vec<String> = payload
                .iter()
                .map(|(n, v)| format!("{n} = {}", value_text(v)))
                .collect();
            let context: Vec<String> = context
                .iter()
                .map(|(n, v)| format!("{n} = {}", value_text(v)))
                .collect();
            out.push(Event {
                ns: e.timestamp() as u64,
                name: names[e.class().0 as usize].clone(),
                cpu: e.cpu().expect("every packet has cpu_id"),
                fields: format!("{{ {} }}", fields.join(", ")),
                context: if context.is_empty() {
                    String::new()
                } else {
                    format!("{{ {} }}", context.join(", "))
                },
            });
            ControlFlow::Continue(())
        },
        &progress,
    )
    .unwrap();
    assert!(exp.warnings().is_empty(), "{:?}", exp.warnings());
    assert!(exp.errors().is_empty(), "{:?}", exp.errors());
    out
}

#[test]
fn the_project_reader_decodes_it_with_the_reported_counts_and_consistent_state() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(300_000, 4, 150, 21);
    let report = generate(&tmp.path().join("trace"), &cfg, None).unwrap();
    let events = reader_events(&report);
    assert_eq!(events.len() as u64, report.events);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for e in &events {
        *counts.entry(e.name.clone()).or_default() += 1;
    }
    assert_eq!(counts, report.counts);
    assert_eq!(events.first().map(|e| e.ns), report.first_event_ns);
    assert_eq!(events.last().map(|e| e.ns), report.last_event_ns);
    let mut checker = Checker::default();
    let mut last_ns = 0;
    for e in &events {
        assert!(e.ns > last_ns || last_ns == 0, "time goes back at {}", e.ns);
        last_ns = e.ns;
        checker.event(e);
    }
    // The checker saw what it checks: switches on every CPU, forks and exits.
    assert_eq!(checker.current.len(), cfg.cpus as usize);
    assert!(counts["sched_process_fork"] > 0 && !checker.dead.is_empty());
}

mod random_configs {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Any small configuration gives a trace the project's reader decodes
        /// completely, with consistent kernel state.
        #[test]
        fn small_traces_are_consistent(seed in any::<u64>(), cpus in 1u32..9, threads in 2u64..60, events in 1u64..30_000) {
            let tmp = tempfile::tempdir().unwrap();
            let report = generate(&tmp.path().join("t"), &config(events, cpus, threads, seed), None).unwrap();
            prop_assert_eq!(report.events, events);
            let decoded = reader_events(&report);
            prop_assert_eq!(decoded.len() as u64, events);
            let mut checker = Checker::default();
            for e in &decoded {
                checker.event(e);
            }
        }
    }
}

// ---- KVM host mode ------------------------------------------------------------------

fn kvm_config(events: u64, cpus: u32, vms: u32, vcpus: u32, seed: u64) -> GenConfig {
    GenConfig {
        vms,
        vcpus_per_vm: vcpus,
        ..config(events, cpus, 100, seed)
    }
}

fn context_int(e: &Event, key: &str) -> i64 {
    let pat = format!("{key} = ");
    let i = e
        .context
        .find(&pat)
        .unwrap_or_else(|| panic!("{} at {}: no context {key}", e.name, e.ns));
    let rest = &e.context[i + pat.len()..];
    let end = rest.find([',', ' ', '}']).unwrap_or(rest.len());
    rest[..end].parse().unwrap()
}

/// What a KVM host trace must satisfy, on top of the kernel [`Checker`].
#[derive(Default)]
struct KvmChecker {
    /// Thread current on each CPU and its comm, from `sched_switch`.
    current: HashMap<u32, (i64, String)>,
    /// The vCPU thread in its guest on each CPU.
    in_guest: HashMap<u32, i64>,
    /// vCPU threads currently in their guest.
    guest_threads: HashSet<i64>,
    /// (QEMU pid, vcpu_id) seen entering, and their thread.
    vcpus: HashMap<(i64, i64), i64>,
    entries: u64,
    exits: u64,
    exit_reasons: BTreeMap<i64, u64>,
}

impl KvmChecker {
    fn event(&mut self, e: &Event) {
        let (pid, tid) = (context_int(e, "pid"), context_int(e, "tid"));
        if let Some((cur, _)) = self.current.get(&e.cpu) {
            assert_eq!(
                tid, *cur,
                "{} at {}: tid context is not the current thread",
                e.name, e.ns
            );
        }
        if let Some(&g) = self.in_guest.get(&e.cpu) {
            // While a guest runs on the CPU, the host does nothing there until its exit.
            assert!(
                e.name == "kvm_x86_exit",
                "{} at {} on CPU {} while thread {g} is in its guest",
                e.name,
                e.ns,
                e.cpu
            );
        }
        match e.name.as_str() {
            "sched_switch" => {
                let next = (e.int("next_tid"), e.get("next_comm").to_string());
                self.current.insert(e.cpu, next);
            }
            "kvm_x86_entry" => {
                let (cur, comm) = self.current.get(&e.cpu).cloned().unwrap_or_else(|| {
                    panic!(
                        "kvm_x86_entry at {} before any switch on CPU {}",
                        e.ns, e.cpu
                    )
                });
                let vcpu = e.int("vcpu_id");
                assert_eq!(
                    comm,
                    format!("CPU {vcpu}/KVM"),
                    "entry at {} by {cur}",
                    e.ns
                );
                assert!(self.guest_threads.insert(tid), "double entry at {}", e.ns);
                self.in_guest.insert(e.cpu, tid);
                let prev = self.vcpus.insert((pid, vcpu), tid);
                assert!(
                    prev.is_none_or(|p| p == tid),
                    "vCPU {vcpu} of {pid} moved threads"
                );
                self.entries += 1;
            }
            "kvm_x86_exit" => {
                assert_eq!(
                    self.in_guest.remove(&e.cpu),
                    Some(tid),
                    "exit at {} without entry",
                    e.ns
                );
                assert!(self.guest_threads.remove(&tid));
                *self.exit_reasons.entry(e.int("exit_reason")).or_default() += 1;
                self.exits += 1;
            }
            _ => {}
        }
    }
}

fn check_kvm(cfg: &GenConfig, report: &GenReport, events: &[Event]) {
    assert_eq!(events.len() as u64, report.events);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for e in events {
        *counts.entry(e.name.clone()).or_default() += 1;
    }
    assert_eq!(counts, report.counts);
    let mut checker = Checker::default();
    let mut kvm = KvmChecker::default();
    for e in events {
        checker.event(e);
        kvm.event(e);
    }
    assert_eq!(kvm.entries, report.counts["kvm_x86_entry"]);
    // Entries and exits alternate: at most one entry per vCPU is still open.
    assert!(kvm.entries - kvm.exits <= kvm.vcpus.len() as u64);
    assert_eq!(
        kvm.vcpus.len() as u32,
        cfg.vms * cfg.vcpus_per_vm,
        "every vCPU of every VM ran: {:?}",
        kvm.vcpus.keys()
    );
    // Several exit reasons, including halts and external interrupts.
    assert!(kvm.exit_reasons.len() >= 5, "{:?}", kvm.exit_reasons);
    assert!(kvm.exit_reasons.contains_key(&12) && kvm.exit_reasons.contains_key(&1));
}

#[test]
fn kvm_mode_is_consistent_in_the_project_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = kvm_config(300_000, 4, 3, 2, 5);
    let report = generate(&tmp.path().join("trace"), &cfg, None).unwrap();
    check_kvm(&cfg, &report, &reader_events(&report));
}

#[test]
fn kvm_mode_is_decoded_by_babeltrace_with_the_reported_counts() {
    if !babeltrace_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for cfg in [
        kvm_config(200_000, 4, 2, 4, 8),
        kvm_config(60_000, 1, 1, 1, 9),
    ] {
        let report = generate(
            &tmp.path().join("trace"),
            &GenConfig {
                replace_existing: true,
                ..cfg.clone()
            },
            None,
        )
        .unwrap();
        check_kvm(&cfg, &report, &babeltrace_events(&report));
    }
}

#[test]
fn kvm_mode_settings_are_checked_and_off_by_default() {
    assert_eq!(GenConfig::default().vms, 0);
    let tmp = tempfile::tempdir().unwrap();
    for (cfg, field) in [
        (kvm_config(10, 4, 1000, 1, 1), "vms"),
        (kvm_config(10, 4, 1, 0, 1), "vcpus_per_vm"),
        (kvm_config(10, 4, 1, 65, 1), "vcpus_per_vm"),
    ] {
        match generate(&tmp.path().join("t"), &cfg, None) {
            Err(GenError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    // Without VMs there is no KVM class in the metadata.
    let r = generate(&tmp.path().join("plain"), &config(1000, 2, 10, 1), None).unwrap();
    let meta = std::fs::read(r.dir.join("metadata")).unwrap();
    assert!(!meta.windows(7).any(|w| w == b"kvm_x86"));
}
