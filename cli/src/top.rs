//! `sextant top net://...`: a live terminal summary of an LTTng live session, in the
//! spirit of lttngtop: events per second, delivery lag, per CPU the running thread
//! (from `sched_switch`) and event rate, and the busiest event classes. A reader
//! thread follows the session; the main thread draws one frame per interval.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Args;
use sextant_trace::live::{LiveOptions, LiveSession, LiveUrl};
use sextant_trace::ClassId;

#[derive(Args)]
pub struct TopArgs {
    /// Live session: net://HOST[:PORT]/host/HOSTNAME/SESSION (lttng-relayd, port 5344 by default).
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
}

pub fn run(args: TopArgs) -> Result<()> {
    let url = LiveUrl::parse(&args.url)?;
    let mut session = LiveSession::open(&url, LiveOptions::default())
        .with_context(|| format!("attaching to {url}"))?;
    let exp = session.experiment();
    let names: Vec<String> = (0..exp.class_count())
        .map(|c| exp.class_name(ClassId(c)).to_string())
        .collect();
    // sched_switch's next thread, per class (kernel traces).
    let switch: Vec<Option<_>> = (0..exp.class_count())
        .map(|c| {
            let c = ClassId(c);
            (exp.class_name(c) == "sched_switch").then(|| {
                (
                    exp.field_handle(c, "next_comm"),
                    exp.field_handle(c, "next_tid"),
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
    let reader = {
        let (frame, stop) = (frame.clone(), stop.clone());
        std::thread::spawn(move || {
            let r = session.run(
                &mut |ev| {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as i64);
                    let mut f = frame.lock().expect("frame lock");
                    f.total += 1;
                    f.interval_events += 1;
                    f.lag_ns = Some(now - ev.timestamp());
                    *f.by_class.entry(ev.class().0).or_default() += 1;
                    if let Some(cpu) = ev.cpu() {
                        let running = switch[ev.class().0 as usize].map(|(comm, tid)| {
                            format!(
                                "{} [{}]",
                                comm.and_then(|h| ev.string(h)).unwrap_or("?"),
                                tid.and_then(|h| ev.int(h)).unwrap_or(-1)
                            )
                        });
                        let c = f.cpus.entry(cpu).or_default();
                        c.events += 1;
                        if running.is_some() {
                            c.running = running;
                        }
                    }
                    ControlFlow::Continue(())
                },
                &stop,
            );
            frame.lock().expect("frame lock").done = Some(r.map_err(|e| e.to_string()));
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
            out.push_str(&format!("{n:>8}  {}\n", names[c as usize]));
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
