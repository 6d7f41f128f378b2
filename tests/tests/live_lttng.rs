//! Live analysis end to end: the kernel analysis built from a live session equals
//! the one built from the same trace's files, and queries during the run see a
//! prefix of the final state, first against the in-process fake relay (always),
//! then with the real LTTng tools (skipped with a notice when `lttng`,
//! `lttng-sessiond`, `lttng-relayd`, `babeltrace2` or the Python agent are
//! missing).

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use sextant_providers::kernel::KernelStateProvider;
use sextant_providers::pipeline::{
    build, build_shared, Analysis, BuildOptions, Output, PipelineError, SharedStateSystem,
};
use sextant_providers::sources;
use sextant_trace::gen::{generate, GenConfig, GenLimit};
use sextant_trace::live::fake::{FakeConfig, FakeRelay};
use sht::{Interval, StateSystem, StateSystemQuerier};

/// What queries saw while the history was being built.
struct Snapshot {
    end: i64,
    paths: Vec<Vec<String>>,
    /// The full state at times spread over [start, end].
    states: Vec<(i64, Vec<Interval>)>,
}

fn snapshot(ss: &SharedStateSystem, samples: i64) -> Snapshot {
    let ss = ss.read().unwrap();
    assert!(ss.is_building());
    let (start, end) = (ss.start_time(), ss.current_end_time());
    assert!(start < end, "nothing built yet");
    let paths = (0..ss.attribute_count() as i32)
        .map(|q| {
            let p = ss.attributes().path(q).unwrap();
            p.iter().map(|s| s.to_string()).collect()
        })
        .collect();
    let states = (0..=samples)
        .map(|k| start + ((end - start) as i128 * k as i128 / samples as i128) as i64)
        .map(|t| (t, ss.query_full(t).unwrap()))
        .collect();
    Snapshot { end, paths, states }
}

/// Every attribute of the snapshot is the same attribute in `fin`, with the same
/// value (from the same start) at every time queried; what had ended is final.
fn assert_prefix(snap: &Snapshot, fin: &StateSystem) {
    assert!(
        fin.current_end_time() > snap.end,
        "the history grew after the query"
    );
    for (q, path) in snap.paths.iter().enumerate() {
        let p = fin.attributes().path(q as i32).unwrap();
        assert_eq!(&p, path, "quark {q}");
    }
    for (t, row) in &snap.states {
        let now = fin.query_full(*t).unwrap();
        for (q, i) in row.iter().enumerate() {
            let f = &now[q];
            assert_eq!(
                (f.start, &f.value),
                (i.start, &i.value),
                "{:?} at {t}",
                snap.paths[q]
            );
            if i.end < snap.end {
                assert_eq!(f.end, i.end, "{:?} at {t}", snap.paths[q]);
            }
        }
    }
}

/// Runs `build_shared` on a thread; the shared state systems come through `tx`.
fn spawn_build(
    url: String,
    analyses: Vec<Analysis>,
    options: BuildOptions,
) -> (
    mpsc::Receiver<SharedStateSystem>,
    std::thread::JoinHandle<Result<u64, PipelineError>>,
) {
    let (tx, rx) = mpsc::channel();
    let builder = std::thread::spawn(move || {
        let tx = std::sync::Mutex::new(tx);
        let share = |_: usize, _: &'static str, ss: SharedStateSystem| {
            let _ = tx.lock().unwrap().send(ss);
        };
        let mut source = sources::open(&[PathBuf::from(&url)]).unwrap();
        build_shared(&mut *source, analyses, &options, Some(&share)).map(|(r, _)| r.events)
    });
    (rx, builder)
}

/// Waits until the end time stops moving (the relay holds back the rest).
fn wait_until_still(ss: &SharedStateSystem) {
    let began = Instant::now();
    let mut last = i64::MIN;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let end = ss.read().unwrap().current_end_time();
        if end == last {
            return;
        }
        last = end;
        assert!(began.elapsed() < Duration::from_secs(60), "still moving");
    }
}

fn kernel_to(out: &Path) -> Vec<Analysis> {
    vec![Analysis {
        provider: Box::new(KernelStateProvider::new()),
        output: Output::file(out),
    }]
}

#[test]
fn live_query_during_the_run_sees_a_prefix_of_the_final_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let cfg = GenConfig {
        limit: GenLimit::Events(100_000),
        cpus: 4,
        threads: 30,
        seed: 11,
        hostname: "live-host".into(),
        ..Default::default()
    };
    let gen = generate(&dir, &cfg, None).unwrap();
    assert!(gen.packets >= 8, "{} packets", gen.packets);
    let relay = FakeRelay::start(
        &dir,
        FakeConfig {
            hold_after_packets: Some(gen.packets as u32 / 2),
            hostname: "live-host".into(),
            session: "s".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let out = tmp.path().join("live.ht");
    let (shared, builder) = spawn_build(
        relay.url("live-host", "s"),
        kernel_to(&out),
        BuildOptions::default(),
    );
    let ss = shared.recv_timeout(Duration::from_secs(60)).unwrap();
    wait_until_still(&ss);
    let snap = snapshot(&ss, 200);
    relay.release();
    let events = builder.join().unwrap().unwrap();
    assert_eq!(events, gen.events);
    assert!(!ss.read().unwrap().is_building());
    assert_prefix(&snap, &StateSystem::open(&out, None).unwrap());
}

/// Ctrl-C (the pipeline's cancel flag) ends a build waiting for a quiet relay,
/// before any event arrived or after some.
#[test]
fn live_cancel_ends_a_build_waiting_for_the_relay() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let cfg = GenConfig {
        limit: GenLimit::Events(20_000),
        cpus: 2,
        seed: 12,
        hostname: "live-host".into(),
        ..Default::default()
    };
    generate(&dir, &cfg, None).unwrap();
    // One packet per stream (2 CPUs) lets events through; none leaves the build
    // without any.
    for hold in [0, 2] {
        let relay = FakeRelay::start(
            &dir,
            FakeConfig {
                hold_after_packets: Some(hold),
                hostname: "live-host".into(),
                session: "s".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let out = tmp.path().join("live.ht");
        let options = BuildOptions::default();
        let cancel = options.cancel.clone();
        let (shared, builder) = spawn_build(relay.url("live-host", "s"), kernel_to(&out), options);
        let ss = if hold > 0 {
            let ss = shared.recv_timeout(Duration::from_secs(60)).unwrap();
            wait_until_still(&ss);
            Some(ss)
        } else {
            std::thread::sleep(Duration::from_millis(500));
            None
        };
        let began = Instant::now();
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        let err = builder.join().unwrap().expect_err("cancelled");
        assert!(matches!(err, PipelineError::Cancelled), "{err}");
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{:?}",
            began.elapsed()
        );
        drop(ss);
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["k"], "partial files left (hold {hold})");
    }
}

fn build_kernel(trace: &str, out: &Path) -> u64 {
    let mut source =
        sources::open(&[PathBuf::from(trace)]).unwrap_or_else(|e| panic!("{trace}: {e}"));
    let analyses = vec![Analysis {
        provider: Box::new(KernelStateProvider::new()),
        output: Output::file(out),
    }];
    let (report, _) = build(&mut *source, analyses, &BuildOptions::default())
        .unwrap_or_else(|e| panic!("{trace}: {e}"));
    report.events
}

#[test]
fn live_kernel_history_equals_offline_through_fake_relay() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let cfg = GenConfig {
        limit: GenLimit::Events(150_000),
        cpus: 4,
        threads: 40,
        seed: 3,
        hostname: "live-host".into(),
        ..Default::default()
    };
    let gen = generate(&dir, &cfg, None).unwrap();
    let relay = FakeRelay::start(
        &dir,
        FakeConfig {
            retry_first: true,
            beacons: true,
            hostname: "live-host".into(),
            session: "s".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let offline = tmp.path().join("offline.ht");
    let live = tmp.path().join("live.ht");
    let n_off = build_kernel(dir.to_str().unwrap(), &offline);
    let n_live = build_kernel(&relay.url("live-host", "s"), &live);
    assert_eq!(n_off, gen.events);
    assert_eq!(n_live, n_off);
    let (a, b) = (
        std::fs::read(&offline).unwrap(),
        std::fs::read(&live).unwrap(),
    );
    assert!(a == b, "live .ht differs from the offline .ht");
}

/// A session whose second trace (its own metadata, as with per-UID or per-PID
/// buffers) appears a third of the way in, with events interleaved in time: the
/// live kernel history equals the one built from both traces' files.
#[test]
fn live_history_with_a_trace_added_mid_session_equals_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let session = tmp.path().join("session");
    let (a, b) = (session.join("uid-0"), session.join("uid-1000"));
    let gen = |dir: &Path, events, seed, start_ns| {
        let cfg = GenConfig {
            limit: GenLimit::Events(events),
            cpus: 2,
            threads: 30,
            seed,
            hostname: "live-host".into(),
            start_ns,
            ..Default::default()
        };
        generate(dir, &cfg, None).unwrap()
    };
    let ga = gen(&a, 80_000, 3, 1_700_000_000_000_000_000);
    let (first, last) = (ga.first_event_ns.unwrap(), ga.last_event_ns.unwrap());
    let gb = gen(&b, 60_000, 4, first + (last - first) / 3);
    let relay = FakeRelay::start(
        &a,
        FakeConfig {
            late_traces: vec![b.clone()],
            beacons: true,
            hostname: "live-host".into(),
            session: "s".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let offline = tmp.path().join("offline.ht");
    let live = tmp.path().join("live.ht");
    let n_off = build_kernel(session.to_str().unwrap(), &offline);
    let n_live = build_kernel(&relay.url("live-host", "s"), &live);
    assert_eq!(n_off, ga.events + gb.events);
    assert_eq!(n_live, n_off);
    let (x, y) = (
        std::fs::read(&offline).unwrap(),
        std::fs::read(&live).unwrap(),
    );
    assert!(
        x == y,
        "live .ht differs from the offline .ht of both traces"
    );
}

// --- With the real LTTng tools ---

use std::ops::ControlFlow;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sextant_providers::pipeline::{EventSource, FieldKey, SourceError, SourceEvent, IDLE_CLASS};

use sextant_providers::{EventFields, ProviderError, StateProvider, Subscription, TraceInfo};
use sht::{StateSystemBuilder, StateValue};

/// Per logger of the Python agent: how many messages, the last one and its level.
struct LoggerProvider;

impl StateProvider for LoggerProvider {
    fn id(&self) -> &'static str {
        "test.python.loggers"
    }
    fn version(&self) -> i32 {
        1
    }
    fn check_trace(&mut self, _trace: &TraceInfo) -> Result<(), ProviderError> {
        Ok(())
    }
    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        match event_name {
            "lttng_python:event" => Some(Subscription {
                handler: 0,
                fields: vec!["logger_name", "msg", "int_loglevel"],
            }),
            // Enabled only after the live build started (a class added mid-run).
            "lttng_ust_statedump:start" => Some(Subscription {
                handler: 1,
                fields: vec![],
            }),
            _ => None,
        }
    }
    fn handle(
        &mut self,
        handler: u32,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let t = ev.timestamp();
        if handler == 1 {
            let q = ss.quark_and_add(&["statedumps"])?;
            return ss.increment(t, StateValue::Long(1), q);
        }
        let logger = ev.string(0).unwrap_or("?").to_string();
        let count = ss.quark_and_add(&["loggers", &logger, "count"])?;
        ss.increment(t, StateValue::Long(1), count)?;
        let last = ss.quark_and_add(&["loggers", &logger, "last"])?;
        let msg: Arc<str> = ev.string(1).unwrap_or("").into();
        ss.modify(t, StateValue::String(msg), last)?;
        let level = ss.quark_and_add(&["loggers", &logger, "level"])?;
        ss.modify(t, StateValue::Long(ev.int(2).unwrap_or(-1)), level)
    }
}

/// Delegates to a source and records, per event, its timestamp and the wall clock
/// at delivery (LTTng clocks are offset to the epoch).
struct Timed(Box<dyn EventSource>, Lags);

/// (event timestamp, wall clock at delivery) per event.
type Lags = Arc<Mutex<Vec<(i64, i64)>>>;

fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl EventSource for Timed {
    fn info(&self) -> TraceInfo {
        self.0.info()
    }
    fn class_names(&self) -> Vec<String> {
        self.0.class_names()
    }
    fn resolve(&self, class: u32, field: &str) -> Option<FieldKey> {
        self.0.resolve(class, field)
    }
    fn run(
        &mut self,
        visit: &mut dyn FnMut(&dyn SourceEvent) -> ControlFlow<()>,
        work_done: &AtomicU64,
    ) -> Result<(), SourceError> {
        let lags = self.1.clone();
        self.0.run(
            &mut |ev| {
                if ev.class() != IDLE_CLASS {
                    lags.lock().unwrap().push((ev.timestamp(), wall_ns()));
                }
                visit(ev)
            },
            work_done,
        )
    }
}

fn build_loggers(
    trace: &str,
    out: &Path,
    lags: Option<Lags>,
    share: Option<mpsc::Sender<SharedStateSystem>>,
) -> Result<u64, String> {
    let mut source = sources::open(&[PathBuf::from(trace)]).map_err(|e| format!("{trace}: {e}"))?;
    if let Some(l) = lags {
        source = Box::new(Timed(source, l));
    }
    let analyses = vec![Analysis {
        provider: Box::new(LoggerProvider),
        output: Output::file(out),
    }];
    let share = share.map(std::sync::Mutex::new);
    let hook = |_: usize, _: &'static str, ss: SharedStateSystem| {
        if let Some(tx) = &share {
            let _ = tx.lock().unwrap().send(ss);
        }
    };
    let (report, _) = build_shared(
        &mut *source,
        analyses,
        &BuildOptions::default(),
        Some(&hook),
    )
    .map_err(|e| format!("{trace}: {e}"))?;
    Ok(report.events)
}

/// Daemons started by the test, stopped (SIGTERM, then SIGKILL) by pid on drop.
#[derive(Default)]
struct Daemons(Vec<(&'static str, Child)>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for (_, c) in self.0.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !matches!(c.try_wait(), Ok(Some(_))) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn lttng(home: &Path, args: &[&str]) -> Result<String, String> {
    let o = Command::new("lttng")
        .env("LTTNG_HOME", home)
        .args(args)
        .output()
        .map_err(|e| format!("lttng: {e}"))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(format!(
            "lttng {} ({}): {}{}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

const PYTHON_APP: &str = r#"
import logging, sys, time
import lttngust
n, secs = int(sys.argv[1]), float(sys.argv[2])
tag = sys.argv[3] if len(sys.argv) > 3 else ""
linger = float(sys.argv[4]) if len(sys.argv) > 4 else 0
loggers = [logging.getLogger(n + tag) for n in ("nova.compute.manager", "nova.scheduler.host_manager", "nova.virt.libvirt.driver")]
for l in loggers:
    l.setLevel(logging.DEBUG)
for i in range(n):
    l = loggers[i % len(loggers)]
    l.info("[instance: %08d] Instance spawned successfully on compute-%d", i, i % 7)
    time.sleep(secs / n)
time.sleep(linger)
"#;

/// lttng-relayd and lttng-sessiond (no kernel tracer) on loopback ports of the
/// test's choosing, stopped by pid on drop.
struct Lttng {
    daemons: Daemons,
    /// Daemons started by root share /var/run/lttng: one test at a time.
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
    tmp: PathBuf,
    home: PathBuf,
    relay_out: PathBuf,
    ctrl: u16,
    data: u16,
    live: u16,
    python: &'static str,
}

impl Lttng {
    /// None (with a notice) when the tools or the Python agent are missing.
    fn start(tmp: &Path) -> Option<Lttng> {
        let missing: Vec<&str> = [
            ("lttng", "--version"),
            ("lttng-sessiond", "--version"),
            ("lttng-relayd", "--version"),
            ("babeltrace2", "--version"),
        ]
        .into_iter()
        .filter(|(c, a)| !have(c, a))
        .map(|(c, _)| c)
        .collect();
        // The Debian agent is installed for the system interpreter.
        let python = ["/usr/bin/python3", "python3"].into_iter().find(|py| {
            Command::new(py)
                .args([
                    "-c",
                    "import importlib.util,sys; sys.exit(importlib.util.find_spec('lttngust') is None)",
                ])
                .status()
                .is_ok_and(|s| s.success())
        });
        let agent = python.is_some();
        if !missing.is_empty() || !agent {
            eprintln!(
                "skipping live LTTng test: missing {}{} (apt-get install lttng-tools python3-lttngust babeltrace2)",
                missing.join(", "),
                if agent { "" } else { " python3-lttngust" }
            );
            return None;
        }
        static ONE: Mutex<()> = Mutex::new(());
        let one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        let home = tmp.join("home");
        let relay_out = tmp.join("relay");
        std::fs::create_dir_all(&home).unwrap();
        let (ctrl, data, live, agent_port) = (free_port(), free_port(), free_port(), free_port());
        let mut daemons = Daemons::default();
        let log = |name: &str| std::fs::File::create(tmp.join(name)).unwrap();
        daemons.0.push((
            "lttng-relayd",
            Command::new("lttng-relayd")
                .env("LTTNG_HOME", &home)
                .arg(format!("--control-port=tcp://127.0.0.1:{ctrl}"))
                .arg(format!("--data-port=tcp://127.0.0.1:{data}"))
                .arg(format!("--live-port=tcp://127.0.0.1:{live}"))
                .arg(format!("--output={}", relay_out.display()))
                .stdout(log("relayd.out"))
                .stderr(log("relayd.err"))
                .spawn()
                .unwrap(),
        ));
        daemons.0.push((
            "lttng-sessiond",
            Command::new("lttng-sessiond")
                .env("LTTNG_HOME", &home)
                .args(["--no-kernel", &format!("--agent-tcp-port={agent_port}")])
                .stdout(log("sessiond.out"))
                .stderr(log("sessiond.err"))
                .spawn()
                .unwrap(),
        ));
        let t0 = Instant::now();
        while lttng(&home, &["list"]).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "lttng-sessiond did not come up: {}",
                std::fs::read_to_string(tmp.join("sessiond.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(Lttng {
            daemons,
            _one_at_a_time: one,
            tmp: tmp.to_path_buf(),
            home,
            relay_out,
            ctrl,
            data,
            live,
            python: python.expect("checked above"),
        })
    }

    /// Stops the daemons (by pid): the relay's files are complete.
    fn stop(&mut self) {
        drop(std::mem::take(&mut self.daemons));
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::File::create(self.tmp.join(name)).unwrap()
    }

    /// Runs the Python app logging `n` messages over `secs` seconds; its log files
    /// are named after `log`, which also suffixes its logger names when `tagged`.
    fn app(&self, n: u64, secs: f64, log: &str, tagged: bool) -> Child {
        self.app_lingering(n, secs, log, tagged, 0.0)
    }

    /// [`Lttng::app`], exiting `linger` seconds after its last message.
    fn app_lingering(&self, n: u64, secs: f64, log: &str, tagged: bool, linger: f64) -> Child {
        let tag = if tagged {
            format!(".{log}")
        } else {
            String::new()
        };
        let (n, secs, linger) = (n.to_string(), secs.to_string(), linger.to_string());
        Command::new(self.python)
            .env("LTTNG_HOME", &self.home)
            .args(["-c", PYTHON_APP, &n, &secs, &tag, &linger])
            .stdout(self.log(&format!("{log}.out")))
            .stderr(self.log(&format!("{log}.err")))
            .spawn()
            .unwrap()
    }

    /// Creates `session` in live mode (1 s live timer) streaming to the relay, with
    /// every Python logger enabled, in per-PID buffers when `per_pid` (per-UID,
    /// LTTng's default, otherwise). Not started: callers may add channels first.
    fn create_live(&self, session: &str, per_pid: bool) {
        let url = format!("--set-url=net://127.0.0.1:{}:{}", self.ctrl, self.data);
        lttng(&self.home, &["create", session, "--live=1000000", &url]).unwrap();
        if per_pid {
            // The agent's events go to this channel; made first, it takes the buffer scheme.
            lttng(
                &self.home,
                &[
                    "enable-channel",
                    "-u",
                    "--buffers-pid",
                    "lttng_python_channel",
                    "-s",
                    session,
                ],
            )
            .unwrap();
        }
        // Once in a CI run under load this command failed without a word
        // (not reproduced in 12 idle runs): it is tried again, and the exit
        // status is kept in the error if the last try fails too.
        let mut tries = 0;
        while let Err(e) = lttng(
            &self.home,
            &["enable-event", "--python", "--all", "-s", session],
        ) {
            tries += 1;
            assert!(tries < 3, "{e}");
            eprintln!("{e}; trying again");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Builds the loggers' history of the live session `url` on a thread; its
    /// result (events received) comes through the receiver.
    fn spawn_live_build(
        url: &str,
        live_ht: &Path,
        lags: Option<Lags>,
        share: Option<mpsc::Sender<SharedStateSystem>>,
    ) -> mpsc::Receiver<Result<u64, String>> {
        let (tx, rx) = mpsc::channel();
        let (url, live_ht) = (url.to_string(), live_ht.to_path_buf());
        std::thread::spawn(move || {
            let _ = tx.send(build_loggers(&url, &live_ht, lags, share));
        });
        rx
    }

    /// Destroys `session` (which ends the live build), waits for the build's
    /// result, then stops the daemons so that the relay's files are complete.
    fn end_session(&mut self, session: &str, build: mpsc::Receiver<Result<u64, String>>) -> u64 {
        lttng(&self.home, &["destroy", session]).unwrap();
        let live_events = build
            .recv_timeout(Duration::from_secs(60))
            .expect("the live build ends after the session is destroyed")
            .unwrap();
        self.stop();
        live_events
    }

    /// The live build received as many events as babeltrace2 reads from the
    /// relay's files (`bt`), and its history equals the one built offline from
    /// them. Returns the size of the history file.
    fn assert_live_equals_files(&self, bt: &str, live_events: u64, live_ht: &Path) -> usize {
        let bt_events = bt.lines().count() as u64;
        assert_eq!(live_events, bt_events, "events received live");
        let offline_ht = self.tmp.join("offline.ht");
        let relay_out = self.relay_out.to_str().unwrap();
        let off_events = build_loggers(relay_out, &offline_ht, None, None).unwrap();
        assert_eq!(off_events, bt_events, "events built offline");
        let (a, b) = (
            std::fs::read(&offline_ht).unwrap(),
            std::fs::read(live_ht).unwrap(),
        );
        assert!(a == b, "live .ht differs from the offline .ht");
        a.len()
    }

    /// The live URL of `session` (the relay names it by the traced host's name).
    fn url(&self, session: &str) -> String {
        let addr = format!("127.0.0.1:{}", self.live);
        let mut client =
            sextant_trace::live::proto::Client::connect(&addr, Duration::from_secs(5)).unwrap();
        let hostname = client
            .list_sessions()
            .unwrap()
            .into_iter()
            .find(|s| s.name == session)
            .expect("the relay lists the live session")
            .hostname;
        format!("net://{addr}/host/{hostname}/{session}")
    }

    /// babeltrace2's text of the relay's files.
    fn babeltrace(&self) -> String {
        let bt = Command::new("babeltrace2")
            .arg(&self.relay_out)
            .output()
            .unwrap();
        assert!(
            bt.status.success(),
            "{}",
            String::from_utf8_lossy(&bt.stderr)
        );
        String::from_utf8_lossy(&bt.stdout).into_owned()
    }
}

#[test]
fn live_lttng_python_session_matches_babeltrace_and_offline_build() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut lt) = Lttng::start(tmp.path()) else {
        return;
    };
    let home = lt.home.clone();
    let session = "sextant-live";
    lt.create_live(session, false);
    // A user-space channel without events: one is enabled in it mid-run.
    lttng(&home, &["enable-channel", "-u", "late", "-s", session]).unwrap();
    lttng(&home, &["start", session]).unwrap();

    let events_wanted = 3000;
    let mut app = lt.app(events_wanted, 4.0, "app", false);
    let url = lt.url(session);
    let live_ht = tmp.path().join("live.ht");
    let lags = Arc::new(Mutex::new(Vec::new()));
    let (share_tx, share_rx) = mpsc::channel();
    let build = Lttng::spawn_live_build(&url, &live_ht, Some(lags.clone()), Some(share_tx));
    // Queries while the app logs: the visible end time (wall clock, end) every
    // 20 ms, and one full snapshot half-way, checked against the final history.
    let ss = share_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the live build creates its history at the first event");
    let app_started = Instant::now();
    let mut seen: Vec<(i64, i64)> = Vec::new();
    let mut snap = None;
    let mut app_ended: Option<Instant> = None;
    let mut app_ok = false;
    // Events flushed at the app's end become visible within a live-timer period.
    while app_ended.is_none_or(|t| t.elapsed() < Duration::from_secs(3)) {
        if app_ended.is_none() {
            if let Some(status) = app.try_wait().unwrap() {
                app_ok = status.success();
                app_ended = Some(Instant::now());
            }
        }
        let end = ss.read().unwrap().current_end_time();
        seen.push((wall_ns(), end));
        if snap.is_none() && app_started.elapsed() > Duration::from_secs(2) {
            snap = Some(snapshot(&ss, 100));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = app.wait(); // reaped by try_wait already
                        // An event class enabled after the live build started: the second app's
                        // registration adds its declaration to the session's metadata.
    lttng(
        &home,
        &[
            "enable-event",
            "-u",
            "lttng_ust_statedump:*",
            "-c",
            "late",
            "-s",
            session,
        ],
    )
    .unwrap();
    let late_events = 30;
    app_ok &= lt
        .app(late_events, 0.5, "app2", false)
        .wait()
        .unwrap()
        .success();
    std::thread::sleep(Duration::from_secs(3));
    let live_events = lt.end_session(session, build);
    assert!(
        app_ok,
        "python app failed: {}",
        std::fs::read_to_string(tmp.path().join("app.err")).unwrap_or_default()
    );

    let bt_text = lt.babeltrace();
    let bt_events = bt_text.lines().count() as u64;
    let python_events = bt_text.matches("lttng_python:event").count() as u64;
    assert_eq!(
        python_events,
        events_wanted + late_events,
        "babeltrace2 on the relay's files"
    );
    let statedumps = bt_text.matches("lttng_ust_statedump:start").count() as i64;
    assert!(statedumps > 0, "the late event class was traced");
    let ht_len = lt.assert_live_equals_files(&bt_text, live_events, &live_ht);
    let snap = snap.expect("the app ran for more than 2 s");
    let fin = StateSystem::open(&live_ht, None).unwrap();
    assert_prefix(&snap, &fin);
    let q = fin
        .quark(&["statedumps"])
        .expect("late class reached the analysis");
    assert_eq!(
        fin.query_single(fin.current_end_time(), q).unwrap().value,
        StateValue::Long(statedumps)
    );
    // Delivery lag (event to the pipeline) and query lag (event to a query that
    // sees it), with a 1 s live timer: figures, not tests (see BENCHMARKS.md).
    let events = lags.lock().unwrap().clone();
    let mut delivery: Vec<i64> = events.iter().map(|(ts, at)| at - ts).collect();
    let mut visible: Vec<i64> = events
        .iter()
        .filter_map(|&(ts, _)| {
            let k = seen.partition_point(|&(_, end)| end < ts);
            seen.get(k).map(|&(at, _)| at - ts)
        })
        .collect();
    let pct = |v: &mut Vec<i64>, p: usize| {
        v.sort_unstable();
        v.get((v.len().max(1) - 1) * p / 100)
            .map_or(f64::NAN, |&x| x as f64 / 1e9)
    };
    eprintln!(
        "live LTTng: {live_events} events received live from {url}, babeltrace2 {bt_events}, \
         .ht of {} bytes equal; snapshot at {} of {} attributes is a prefix; \
         delivery lag p50 {:.3} s, p95 {:.3} s, max {:.3} s; \
         query lag ({} events seen by the 20 ms poll) p50 {:.3} s, p95 {:.3} s, max {:.3} s",
        ht_len,
        snap.end,
        snap.paths.len(),
        pct(&mut delivery, 50),
        pct(&mut delivery, 95),
        pct(&mut delivery, 100),
        visible.len(),
        pct(&mut visible, 50),
        pct(&mut visible, 95),
        pct(&mut visible, 100),
    );
}

/// A relay that disconnects or is destroyed mid-stream leaves a closed, readable
/// history of what arrived, shorter than the full one; the failure is a warning.
#[test]
fn live_partial_session_keeps_a_consistent_history() {
    use sextant_trace::live::fake::Fault;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let cfg = GenConfig {
        limit: GenLimit::Events(200_000),
        cpus: 2,
        threads: 40,
        seed: 5,
        hostname: "live-host".into(),
        ..Default::default()
    };
    let gen = generate(&dir, &cfg, None).unwrap();
    assert!(gen.packets >= 6, "{} packets", gen.packets);
    let full = tmp.path().join("full.ht");
    build_kernel(dir.to_str().unwrap(), &full);
    let full_end = sht::HistoryTreeReader::open(&full, None)
        .unwrap()
        .end_time();
    let half = gen.packets as u32 / 2;
    // Commands: connect, create, list, attach, metadata x2, then index/packet pairs.
    for (fault, why) in [
        (Fault::CloseAt(6 + half * 2), "closed the connection"),
        (Fault::DestroyAfterPackets(half), ""),
    ] {
        let relay = FakeRelay::start(
            &dir,
            FakeConfig {
                fault,
                hostname: "live-host".into(),
                session: "s".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let out = tmp.path().join("partial.ht");
        let url = relay.url("live-host", "s");
        let mut source = sources::open(&[PathBuf::from(&url)]).unwrap();
        let analyses = vec![Analysis {
            provider: Box::new(KernelStateProvider::new()),
            output: Output::file(&out),
        }];
        let (report, _) = build(&mut *source, analyses, &BuildOptions::default()).unwrap();
        assert!(report.events > 0 && report.events < gen.events, "{fault:?}");
        let warned = report.warnings.iter().any(|w| w.contains("ended early"));
        assert_eq!(warned, !why.is_empty(), "{fault:?}: {:?}", report.warnings);
        assert!(why.is_empty() || report.warnings.iter().any(|w| w.contains(why)));
        let r = sht::HistoryTreeReader::open(&out, None).unwrap();
        assert!(r.end_time() < full_end, "{fault:?}");
    }
}

/// Per-UID buffers: each user's processes write to a trace of their own, with its
/// own metadata stream (OpenStack services run as different users). A process run
/// as another user (`nobody`) mid-session adds a trace the viewer learns of through
/// the "new streams" flag; it is read and merged in time order: every event
/// arrives (as many as babeltrace2 reads from the relay's files), and the live
/// history equals the one built from those files.
#[test]
fn live_lttng_trace_of_another_user_added_mid_session_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut lt) = Lttng::start(tmp.path()) else {
        return;
    };
    let as_nobody = |args: &[&str]| {
        Command::new("runuser")
            .args(["-u", "nobody", "--", "env", "HOME=/tmp"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !as_nobody(&[lt.python, "-c", "import lttngust"]) {
        eprintln!("skipping: cannot run the Python agent as user nobody (runuser needs root)");
        return;
    }
    let session = "sextant-uid";
    lt.create_live(session, false);
    lttng(&lt.home, &["start", session]).unwrap();
    let url = lt.url(session);
    let counts = [600u64, 400];
    let mut app1 = lt.app(counts[0], 3.0, "app1", false);
    let live_ht = tmp.path().join("live.ht");
    let build = Lttng::spawn_live_build(&url, &live_ht, None, None);
    std::thread::sleep(Duration::from_millis(1500));
    let (n2, python) = (counts[1].to_string(), lt.python);
    let app2 = std::thread::spawn(move || as_nobody(&[python, "-c", PYTHON_APP, &n2, "1.5"]));
    let ok1 = app1.wait().unwrap().success();
    let ok2 = app2.join().unwrap();
    assert!(
        ok1 && ok2,
        "python apps failed: {}",
        std::fs::read_to_string(tmp.path().join("app1.err")).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_secs(3));
    let live_events = lt.end_session(session, build);

    let traces: Vec<String> = walk_metadata(&lt.relay_out);
    assert_eq!(traces.len(), 2, "one trace per user: {traces:?}");
    let bt = lt.babeltrace();
    assert_eq!(
        bt.matches("lttng_python:event").count() as u64,
        counts.iter().sum::<u64>(),
        "babeltrace2 on the relay's files"
    );
    lt.assert_live_equals_files(&bt, live_events, &live_ht);
    eprintln!("per-UID live: {live_events} events live from {traces:?}, as babeltrace2, .ht equal");
}

/// Per-PID buffers (how many Python services are traced): each process writes a
/// trace of its own, which the relay announces when the process registers and hangs
/// up when it exits. A service starts before the viewer attaches and stays idle
/// after logging; three processes start after (overlapping) and exit; a last one
/// comes and goes while only the idle service is traced (the relay then answers
/// its streams with inactivity beacons, which before lttng-tools 2.13.12 never
/// flag new streams). Each process's messages all arrive (as many as babeltrace2
/// reads from the relay's files, per logger), and the live history equals the one
/// built from those files.
///
/// Processes stay 2.5 s after their last message, so that the live timer (1 s)
/// ships it even on a loaded machine: lttng-relayd before 2.14 hangs up the stream
/// of an exited process without serving the packets it received last (see
/// `sextant_trace::live`).
#[test]
fn live_lttng_per_pid_processes_coming_and_going_are_all_read() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut lt) = Lttng::start(tmp.path()) else {
        return;
    };
    let session = "sextant-pid";
    lt.create_live(session, true);
    lttng(&lt.home, &["start", session]).unwrap();
    // (name, messages, seconds, then idle seconds)
    let apps = [
        ("p0", 300, 2.5, 8.0),
        ("p1", 200, 1.0, 2.5),
        ("p2", 150, 0.5, 2.5),
        ("p3", 100, 0.3, 2.5),
        ("p4", 60, 0.2, 2.5),
    ];
    let run = |i: usize| {
        let (name, n, secs, linger) = apps[i];
        lt.app_lingering(n, secs, name, true, linger)
    };
    let mut service = run(0);
    std::thread::sleep(Duration::from_millis(700));
    let url = lt.url(session);
    let live_ht = tmp.path().join("live.ht");
    let build = Lttng::spawn_live_build(&url, &live_ht, None, None);
    let mut others = Vec::new();
    for (i, pause) in [(1, 800), (2, 300), (3, 900)] {
        std::thread::sleep(Duration::from_millis(pause));
        others.push(run(i));
    }
    let mut ok = others.iter_mut().all(|c| c.wait().unwrap().success());
    ok &= run(4).wait().unwrap().success();
    assert!(
        service.try_wait().unwrap().is_none(),
        "p0 ended before p4: make it stay longer"
    );
    ok &= service.wait().unwrap().success();
    assert!(
        ok,
        "python apps failed: {}",
        std::fs::read_to_string(tmp.path().join("p0.err")).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let live_events = lt.end_session(session, build);

    let traces = walk_metadata(&lt.relay_out);
    assert_eq!(
        traces.len(),
        apps.len(),
        "one trace per process: {traces:?}"
    );
    let bt = lt.babeltrace();
    let live = StateSystem::open(&live_ht, None).unwrap();
    let loggers = [
        "nova.compute.manager",
        "nova.scheduler.host_manager",
        "nova.virt.libvirt.driver",
    ];
    let mut per_app = Vec::new();
    for (name, n, _, _) in apps {
        let (mut in_files, mut received) = (0, 0);
        for l in loggers {
            let logger = format!("{l}.{name}");
            in_files += bt.matches(&format!("logger_name = \"{logger}\"")).count() as i64;
            received += live.quark(&["loggers", &logger, "count"]).map_or(0, |q| {
                match live.query_single(live.current_end_time(), q).unwrap().value {
                    StateValue::Long(c) => c,
                    v => panic!("{logger}: count {v:?}"),
                }
            });
        }
        per_app.push((name, n as i64, in_files, received));
    }
    for &(_, n, in_files, received) in &per_app {
        assert_eq!(in_files, n, "babeltrace2 on the relay's files: {per_app:?}");
        assert_eq!(
            received, in_files,
            "messages received live (name, logged, in files, live): {per_app:?}"
        );
    }
    lt.assert_live_equals_files(&bt, live_events, &live_ht);
    eprintln!("per-PID live: {live_events} events live as babeltrace2 ({per_app:?}), .ht equal");
}

/// Directories below `dir` holding a `metadata` file (the traces).
fn walk_metadata(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.join("metadata").is_file() {
                out.push(p.display().to_string());
            }
            out.extend(walk_metadata(&p));
        }
    }
    out.sort();
    out
}
