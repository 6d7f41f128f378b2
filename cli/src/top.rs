//! `sextant top net://...`: a live terminal summary of an LTTng live session, in the
//! spirit of lttngtop: events per second, delivery lag, per CPU the running thread
//! (from `sched_switch`) and event rate, the busiest event classes, and, when the
//! session has Python agent events, how many OpenStack VMs are in each Nova state.
//! A reader thread follows the session (through the build pipeline when the Nova
//! VM state analysis applies); the main thread draws one frame per interval,
//! querying that analysis's state system while it is built.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Args;
use sextant_providers::live_source::LiveSource;
use sextant_providers::openstack::nova::NovaVmStateProvider;
use sextant_providers::openstack::vm_report::vm_state_name;
use sextant_providers::pipeline::{
    build_shared, Analysis, BuildOptions, EventSource, FieldKey, Output, PipelineError,
    SharedStateSystem, SourceError, SourceEvent, IDLE_CLASS,
};
use sextant_providers::TraceInfo;
use sextant_trace::live::{LiveOptions, LiveUrl};
use sht::{StateSystemQuerier, StateValue};

#[derive(Args)]
pub struct TopArgs {
    /// Live session: `net://HOST[:PORT]/host/HOSTNAME/SESSION` (lttng-relayd, port 5344 by default).
    url: String,
    /// Seconds between frames.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Stop after this many frames (default: until the session is destroyed or Ctrl-C).
    #[arg(long)]
    frames: Option<u64>,
    /// Event classes shown.
    #[arg(long, default_value_t = 10)]
    classes: usize,
}

#[derive(Default)]
struct Cpu {
    events: u64,
    running: Option<String>,
}

#[derive(Default)]
struct Frame {
    total: u64,
    interval_events: u64,
    /// Wall clock minus event time of the last event (ns).
    lag_ns: Option<i64>,
    by_class: BTreeMap<u32, u64>,
    cpus: BTreeMap<u32, Cpu>,
    done: Option<Result<(), String>>,
    /// Classes the session added while running (grown metadata, traces that
    /// appeared): name and, for sched_switch, its (next_comm, next_tid) keys.
    added: BTreeMap<u32, (String, SwitchKeys)>,
}

type SwitchKeys = Option<(Option<FieldKey>, Option<FieldKey>)>;

/// The live source, counting what the frame shows on its way to the pipeline.
struct Tap {
    inner: LiveSource,
    frame: Arc<Mutex<Frame>>,
    /// sched_switch's (next_comm, next_tid), per class (kernel traces).
    switch: Vec<SwitchKeys>,
    stop: Arc<AtomicBool>,
}

impl EventSource for Tap {
    fn info(&self) -> TraceInfo {
        self.inner.info()
    }
    fn class_names(&self) -> Vec<String> {
        self.inner.class_names()
    }
    fn resolve(&self, class: u32, field: &str) -> Option<FieldKey> {
        self.inner.resolve(class, field)
    }
    fn warnings(&self) -> Vec<String> {
        self.inner.warnings()
    }
    fn run(
        &mut self,
        visit: &mut dyn FnMut(&dyn SourceEvent) -> ControlFlow<()>,
        work_done: &AtomicU64,
    ) -> Result<(), SourceError> {
        let (frame, switch, stop) = (&self.frame, &self.switch, &self.stop);
        self.inner.run(
            &mut |ev| {
                // Ctrl-C ends the session here: what was read stays consistent.
                if stop.load(Ordering::Relaxed) {
                    return ControlFlow::Break(());
                }
                if ev.class() != IDLE_CLASS {
                    count(&mut frame.lock().expect("frame lock"), switch, ev);
                }
                visit(ev)
            },
            work_done,
        )
    }
}

fn count(f: &mut Frame, switch: &[SwitchKeys], ev: &dyn SourceEvent) {
    let class = ev.class();
    if class as usize >= switch.len() && !f.added.contains_key(&class) {
        let (name, fields) = ev.class_description().unwrap_or_default();
        let key = |n: &str| fields.iter().find(|f| f.0 == n).map(|f| f.1);
        let keys = (name == "sched_switch").then(|| (key("next_comm"), key("next_tid")));
        f.added.insert(class, (name, keys));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    f.total += 1;
    f.interval_events += 1;
    f.lag_ns = Some(now - ev.timestamp());
    *f.by_class.entry(ev.class()).or_default() += 1;
    if let Some(cpu) = ev.cpu() {
        let keys = match switch.get(class as usize) {
            Some(k) => *k,
            None => f.added.get(&class).and_then(|a| a.1),
        };
        let running = keys.map(|(comm, tid)| {
            format!(
                "{} [{}]",
                comm.and_then(|k| ev.string(k)).unwrap_or("?"),
                tid.and_then(|k| ev.int(k)).unwrap_or(-1)
            )
        });
        let c = f.cpus.entry(cpu).or_default();
        c.events += 1;
        if running.is_some() {
            c.running = running;
        }
    }
}

/// How many VMs are in each Nova state now (from the VM state analysis while it
/// is built); empty once the session is over.
fn vm_state_counts(ss: &SharedStateSystem) -> BTreeMap<&'static str, u64> {
    let ss = ss.read().unwrap_or_else(|e| e.into_inner());
    let mut counts = BTreeMap::new();
    for q in ss
        .quarks(&["PROJECTs", "*", "VMs", "*", "Status"])
        .unwrap_or_default()
    {
        if let Ok(StateValue::Int(code)) = ss.query_ongoing(q) {
            *counts.entry(vm_state_name(code)).or_default() += 1;
        }
    }
    counts
}

pub fn run(args: TopArgs) -> Result<()> {
    let url = LiveUrl::parse(&args.url)?;
    let source = LiveSource::open(&args.url, LiveOptions::default())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("attaching to {url}"))?;
    let names = source.class_names();
    let switch = names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            (name == "sched_switch").then(|| {
                (
                    source.resolve(c as u32, "next_comm"),
                    source.resolve(c as u32, "next_tid"),
                )
            })
        })
        .collect();
    let frame = Arc::new(Mutex::new(Frame::default()));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    }
    let with_vms = names.iter().any(|n| n == "lttng_python:event");
    let vms: Arc<Mutex<Option<SharedStateSystem>>> = Arc::default();
    let mut tap = Tap {
        inner: source,
        frame: frame.clone(),
        switch,
        stop: stop.clone(),
    };
    let reader = {
        let (frame, vms) = (frame.clone(), vms.clone());
        std::thread::spawn(move || {
            let r = if with_vms {
                let analyses = vec![Analysis {
                    provider: Box::new(NovaVmStateProvider::new()),
                    output: Output::Null,
                }];
                let share = |_: usize, _: &'static str, ss: SharedStateSystem| {
                    *vms.lock().expect("vms lock") = Some(ss);
                };
                match build_shared(&mut tap, analyses, &BuildOptions::default(), Some(&share)) {
                    // Stopped before the first event: nothing to say.
                    Ok(_) | Err(PipelineError::Empty) => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            } else {
                tap.run(&mut |_| ControlFlow::Continue(()), &AtomicU64::new(0))
                    .map_err(|e| e.to_string())
            };
            // A relay failure after some events is a warning of the source.
            let r = r.and_then(|()| {
                match tap
                    .warnings()
                    .into_iter()
                    .find(|w| w.contains("ended early"))
                {
                    Some(w) => Err(w),
                    None => Ok(()),
                }
            });
            frame.lock().expect("frame lock").done = Some(r);
        })
    };
    let interval = Duration::from_secs_f64(args.interval.max(0.05));
    let tty = std::io::stdout().is_terminal();
    let began = Instant::now();
    let mut shown = 0u64;
    let mut last = Instant::now();
    let outcome = loop {
        std::thread::sleep(interval);
        let mut f = frame.lock().expect("frame lock");
        let secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        let mut out = String::new();
        if tty {
            out.push_str("\x1b[H\x1b[2J");
        }
        out.push_str(&format!(
            "{url}  up {:.0} s  events {}  {:.0} ev/s  lag {}\n",
            began.elapsed().as_secs_f64(),
            f.total,
            f.interval_events as f64 / secs,
            f.lag_ns
                .map_or("-".into(), |l| format!("{:.3} s", l as f64 / 1e9))
        ));
        out.push_str("CPU   events  running\n");
        for (cpu, c) in &mut f.cpus {
            out.push_str(&format!(
                "{cpu:>3} {:>8}  {}\n",
                c.events,
                c.running.as_deref().unwrap_or("-")
            ));
            c.events = 0;
        }
        let mut classes: Vec<_> = f.by_class.iter().map(|(c, n)| (*n, *c)).collect();
        classes.sort_unstable_by(|a, b| b.cmp(a));
        out.push_str("events    class\n");
        for (n, c) in classes.into_iter().take(args.classes) {
            let name = match names.get(c as usize) {
                Some(n) => n.as_str(),
                None => f.added.get(&c).map_or("?", |a| a.0.as_str()),
            };
            out.push_str(&format!("{n:>8}  {name}\n"));
        }
        let vm_states = vms.lock().expect("vms lock").as_ref().map(vm_state_counts);
        if let Some(counts) = vm_states.filter(|c| !c.is_empty()) {
            out.push_str("VMs       state\n");
            for (state, n) in counts {
                out.push_str(&format!("{n:>8}  {state}\n"));
            }
        }
        f.interval_events = 0;
        let done = f.done.take();
        drop(f);
        let mut so = std::io::stdout().lock();
        so.write_all(out.as_bytes())?;
        so.flush()?;
        shown += 1;
        if let Some(d) = done {
            break d;
        }
        if args.frames.is_some_and(|n| shown >= n) || stop.load(Ordering::Relaxed) {
            stop.store(true, Ordering::Relaxed);
            break Ok(());
        }
    };
    if reader.is_finished() || stop.load(Ordering::Relaxed) {
        let _ = reader.join();
    }
    outcome.map_err(|e| anyhow::anyhow!("{url}: {e}"))
}
