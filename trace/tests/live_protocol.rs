//! The live client against the in-process fake relay: every event of the served
//! trace arrives in the same order as when the files are read; destroyed sessions,
//! disconnects, silent relays and malformed replies end with a typed error (or a
//! clean end) quickly, never a hang or a panic.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use sextant_trace::gen::{generate, GenConfig, GenLimit};
use sextant_trace::live::fake::{FakeConfig, FakeRelay, Fault};
use sextant_trace::live::{LiveError, LiveOptions, LiveSession, LiveUrl};
use sextant_trace::Experiment;

type Rec = (i64, String, Option<u32>);

/// Generates a kernel trace; returns its packet count.
fn trace(dir: &Path, events: u64, cpus: u32) -> u64 {
    let cfg = GenConfig {
        limit: GenLimit::Events(events),
        cpus,
        threads: 20,
        seed: 7,
        hostname: "live-test".into(),
        ..Default::default()
    };
    generate(dir, &cfg, None).unwrap().packets
}

fn offline(dir: &Path) -> Vec<Rec> {
    let mut exp = Experiment::open(&[dir]).unwrap();
    let mut names = Vec::new();
    for c in 0..exp.class_count() {
        names.push(exp.class_name(sextant_trace::ClassId(c)).to_string());
    }
    let mut out = Vec::new();
    exp.for_each(
        &mut |e| {
            out.push((e.timestamp(), names[e.class().0 as usize].clone(), e.cpu()));
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    out
}

fn cfg(fault: Fault) -> FakeConfig {
    FakeConfig {
        fault,
        hostname: "live-test".into(),
        session: "s1".into(),
        ..Default::default()
    }
}

fn opts() -> LiveOptions {
    LiveOptions {
        io_timeout: Duration::from_millis(500),
        poll_interval: Duration::from_millis(1),
        setup_timeout: Duration::from_secs(2),
    }
}

/// Opens and reads the session; the records received and the outcome.
fn live(relay: &FakeRelay) -> (Vec<Rec>, Result<bool, LiveError>) {
    let url = LiveUrl::parse(&relay.url("live-test", "s1")).unwrap();
    let mut s = match LiveSession::open(&url, opts()) {
        Ok(s) => s,
        Err(e) => return (Vec::new(), Err(e)),
    };
    let mut out = Vec::new();
    let stop = AtomicBool::new(false);
    let mut names = Vec::new();
    for c in 0..s.experiment().class_count() {
        names.push(
            s.experiment()
                .class_name(sextant_trace::ClassId(c))
                .to_string(),
        );
    }
    let r = s.run(
        &mut |e| {
            out.push((e.timestamp(), names[e.class().0 as usize].clone(), e.cpu()));
            ControlFlow::Continue(())
        },
        &stop,
    );
    let finished = s.is_finished();
    (out, r.map(|_| finished))
}

fn sorted(v: &[Rec]) -> bool {
    v.windows(2).all(|w| w[0].0 <= w[1].0)
}

#[test]
fn live_session_delivers_every_event_in_file_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    trace(&dir, 20_000, 4);
    let want = offline(&dir);
    assert!(want.len() >= 20_000);
    for (retry_first, beacons, chunk, pause) in [
        (false, false, 0, false),
        (true, true, 700, false),
        (false, true, 1000, true),
    ] {
        let relay = FakeRelay::start(
            &dir,
            FakeConfig {
                retry_first,
                beacons,
                metadata_chunk: chunk,
                metadata_pause: pause,
                ..cfg(Fault::None)
            },
        )
        .unwrap();
        let (got, r) = live(&relay);
        assert!(r.unwrap(), "session must end as finished");
        assert_eq!(got.len(), want.len());
        assert!(got == want, "live order differs from the offline order");
    }
}

#[test]
fn live_session_destroyed_mid_stream_ends_cleanly_with_a_sorted_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let packets = trace(&dir, 200_000, 4);
    assert!(packets >= 8, "{packets} packets");
    let total = offline(&dir).len();
    let relay =
        FakeRelay::start(&dir, cfg(Fault::DestroyAfterPackets(packets as u32 / 2))).unwrap();
    let (got, r) = live(&relay);
    assert!(r.unwrap(), "a destroyed session is a normal end");
    assert!(
        !got.is_empty() && got.len() < total,
        "{} of {total}",
        got.len()
    );
    assert!(sorted(&got));
}

#[test]
fn live_disconnect_is_a_typed_error_with_sorted_partial_events() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let packets = trace(&dir, 100_000, 2);
    // Commands: connect, create, list, attach, metadata x2, then indexes and packets.
    for at in [0, 2, 3, 5, 6 + packets as u32] {
        let relay = FakeRelay::start(&dir, cfg(Fault::CloseAt(at))).unwrap();
        let (got, r) = live(&relay);
        assert!(
            matches!(r, Err(LiveError::Closed { .. })),
            "close at command {at}: {r:?}"
        );
        assert!(sorted(&got));
    }
}

#[test]
fn live_silent_relay_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    trace(&dir, 2_000, 2);
    for at in [1, 6] {
        let relay = FakeRelay::start(&dir, cfg(Fault::SilentAt(at))).unwrap();
        let t0 = Instant::now();
        let (_, r) = live(&relay);
        assert!(matches!(r, Err(LiveError::Timeout { .. })), "{r:?}");
        assert!(t0.elapsed() < Duration::from_secs(20));
    }
}

#[test]
fn live_malformed_replies_are_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    trace(&dir, 2_000, 2);
    // 1 create session, 3 attach, 4 metadata, 6.. indexes and packets.
    for at in [1, 3, 4, 6, 7, 8] {
        let relay = FakeRelay::start(&dir, cfg(Fault::BadStatusAt(at))).unwrap();
        let (_, r) = live(&relay);
        assert!(
            matches!(r, Err(LiveError::Malformed { .. })),
            "bad status at {at}: {r:?}"
        );
    }
    let relay = FakeRelay::start(&dir, cfg(Fault::UnterminatedName)).unwrap();
    let (_, r) = live(&relay);
    match r {
        Err(LiveError::Malformed { reason, .. }) => assert!(reason.contains("NUL"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn live_unknown_session_and_bad_urls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    trace(&dir, 1_000, 1);
    let relay = FakeRelay::start(&dir, cfg(Fault::None)).unwrap();
    let url = LiveUrl::parse(&relay.url("live-test", "nope")).unwrap();
    match LiveSession::open(&url, opts()) {
        Err(LiveError::NoSession { available, .. }) => assert!(available.contains("live-test/s1")),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("attached to a missing session"),
    }
    for bad in [
        "file:///x",
        "net://",
        "net://h:99999/host/a/b",
        "net://h/host/a",
        "net://h/session/a/b",
        "net://h/host/a/b/c",
    ] {
        assert!(
            matches!(LiveUrl::parse(bad), Err(LiveError::Url { .. })),
            "{bad}"
        );
    }
    let u = LiveUrl::parse("net://relay.example:6000/host/h1/my-session").unwrap();
    assert_eq!(
        (u.port, u.hostname.as_str(), u.session.as_str()),
        (6000, "h1", "my-session")
    );
    assert_eq!(LiveUrl::parse("net://relay/host/h/s").unwrap().port, 5344);
    // Nobody listening: a connection error, not a hang.
    let port = relay.port;
    drop(relay);
    let url = LiveUrl::parse(&format!("net://127.0.0.1:{port}/host/h/s")).unwrap();
    assert!(matches!(
        LiveSession::open(&url, opts()),
        Err(LiveError::Connect { .. } | LiveError::Closed { .. })
    ));
}

#[test]
fn live_streams_announced_later_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    trace(&dir, 50_000, 4);
    let want = offline(&dir);
    let relay = FakeRelay::start(
        &dir,
        FakeConfig {
            late_streams: true,
            ..cfg(Fault::None)
        },
    )
    .unwrap();
    let (got, r) = live(&relay);
    assert!(r.unwrap());
    // The relay announces a stream before serving any packet that ends after the
    // stream's first packet starts: nothing is late, the order is the files' order.
    assert_eq!(got.len(), want.len());
    assert!(got == want);
}

/// (timestamp, class name, cpu, every field with its value).
type FullRec = (i64, String, Option<u32>, String);

/// Every event of a live session until it ends: (time, class, CPU, trace, fields).
fn read_all(s: &mut LiveSession) -> Vec<(i64, u32, Option<u32>, usize, String)> {
    let mut got = Vec::new();
    s.run(
        &mut |e| {
            got.push((
                e.timestamp(),
                e.class().0,
                e.cpu(),
                e.trace_index(),
                fields_text(e),
            ));
            ControlFlow::Continue(())
        },
        &AtomicBool::new(false),
    )
    .unwrap();
    got
}

fn fields_text(e: &sextant_trace::Event<'_>) -> String {
    let (a, b, c) = e.babeltrace_fields();
    let mut s = String::new();
    for (n, v) in a.iter().chain(&b).chain(&c) {
        s.push_str(&format!("{n}={} ", v.to_json()));
    }
    s
}

#[test]
fn live_event_classes_added_after_attaching_are_decoded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    trace(&dir, 20_000, 2);
    let late = "sched_process_fork";
    // Offline reference: every event with all its fields.
    let mut exp = Experiment::open(&[&dir]).unwrap();
    let names: Vec<String> = (0..exp.class_count())
        .map(|c| exp.class_name(sextant_trace::ClassId(c)).to_string())
        .collect();
    let mut want: Vec<FullRec> = Vec::new();
    exp.for_each(
        &mut |e| {
            let name = names[e.class().0 as usize].clone();
            want.push((e.timestamp(), name, e.cpu(), fields_text(e)));
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    let n_late = want.iter().filter(|r| r.1 == late).count();
    assert!(n_late > 0, "the generated trace has {late} events");

    let relay = FakeRelay::start(
        &dir,
        FakeConfig {
            late_class: Some(late.into()),
            ..cfg(Fault::None)
        },
    )
    .unwrap();
    let url = LiveUrl::parse(&relay.url("live-test", "s1")).unwrap();
    let mut s = LiveSession::open(&url, opts()).unwrap();
    let before = s.experiment().class_count();
    let known: Vec<String> = (0..before)
        .map(|c| {
            s.experiment()
                .class_name(sextant_trace::ClassId(c))
                .to_string()
        })
        .collect();
    assert!(!known.iter().any(|n| n == late), "withheld at attach");
    let mut got: Vec<(i64, u32, Option<u32>, String)> = Vec::new();
    s.run(
        &mut |e| {
            got.push((e.timestamp(), e.class().0, e.cpu(), fields_text(e)));
            ControlFlow::Continue(())
        },
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(s.is_finished());
    assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    // Known classes keep their ids; the new one comes after them.
    let added = s.take_new_classes();
    assert_eq!(added.len(), 1);
    assert!(added[0].0 >= before);
    assert_eq!(s.experiment().class_name(added[0]), late);
    for (c, n) in known.iter().enumerate() {
        assert_eq!(
            s.experiment().class_name(sextant_trace::ClassId(c as u32)),
            n
        );
    }
    assert!(s.experiment().field_handle(added[0], "child_tid").is_some());
    let got: Vec<FullRec> = got
        .into_iter()
        .map(|(t, c, cpu, f)| {
            let name = s.experiment().class_name(sextant_trace::ClassId(c));
            (t, name.to_string(), cpu, f)
        })
        .collect();
    assert_eq!(got.iter().filter(|r| r.1 == late).count(), n_late);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "same events, fields and order as the files");
}

/// Metadata that changes or drops a known class is refused, and changes nothing.
#[test]
fn grown_metadata_must_keep_known_classes() {
    use sextant_trace::ctf::{metadata, reader::CtfTrace};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    trace(&dir, 2_000, 1);
    let t = CtfTrace::open(&dir).unwrap();
    let path = t.metadata_path.clone();
    let text =
        String::from_utf8(metadata::unwrap_packets(&path, &std::fs::read(&path).unwrap()).unwrap())
            .unwrap();
    let compile = |text: &str| {
        let md = metadata::parse_bytes(&path, text.as_bytes()).unwrap();
        CtfTrace::from_metadata(&dir, &path, md).unwrap()
    };
    let mut exp = Experiment::from_memory(vec![t]).unwrap();
    let n = exp.class_count();
    let first = exp.class_name(sextant_trace::ClassId(0)).to_string();
    // The same metadata again: nothing new.
    assert!(exp.grow_trace(0, compile(&text)).unwrap().is_empty());
    let renamed = text.replacen(&format!("name = \"{first}\";"), "name = \"renamed\";", 1);
    let e = exp
        .grow_trace(0, compile(&renamed))
        .unwrap_err()
        .to_string();
    assert!(e.contains("renamed") && e.contains(&first), "{e}");
    let start = text.find("event {").unwrap();
    let end = start + text[start..].find("\n};\n").unwrap() + 4;
    let dropped = format!("{}{}", &text[..start], &text[end..]);
    let e = exp
        .grow_trace(0, compile(&dropped))
        .unwrap_err()
        .to_string();
    assert!(e.contains("disappeared"), "{e}");
    assert_eq!(exp.class_count(), n);
    assert_eq!(exp.class_name(sextant_trace::ClassId(0)), first);
}

/// Generates a kernel trace of `events` events starting at `start_ns`.
fn trace_at(dir: &Path, events: u64, cpus: u32, seed: u64, start_ns: u64) -> (u64, u64) {
    let cfg = GenConfig {
        limit: GenLimit::Events(events),
        cpus,
        threads: 20,
        seed,
        hostname: "live-test".into(),
        start_ns,
        ..Default::default()
    };
    let r = generate(dir, &cfg, None).unwrap();
    (r.first_event_ns.unwrap(), r.last_event_ns.unwrap())
}

/// (timestamp, class name, cpu, trace index, fields) of every event of `dirs`
/// read from files as one experiment.
fn offline_full(dirs: &[&Path]) -> Vec<(i64, String, Option<u32>, usize, String)> {
    let mut exp = Experiment::open(dirs).unwrap();
    let names: Vec<String> = (0..exp.class_count())
        .map(|c| exp.class_name(sextant_trace::ClassId(c)).to_string())
        .collect();
    let mut out = Vec::new();
    exp.for_each(
        &mut |e| {
            let name = names[e.class().0 as usize].clone();
            out.push((
                e.timestamp(),
                name,
                e.cpu(),
                e.trace_index(),
                fields_text(e),
            ));
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    out
}

/// Two traces whose events interleave in time (per-UID or per-PID buffers); the
/// second one, with its own metadata, appears `at` (a fraction) into the first.
fn two_traces(tmp: &Path, events: u64, at: f64) -> (std::path::PathBuf, std::path::PathBuf) {
    let (a, b) = (tmp.join("uid-1000"), tmp.join("uid-65534"));
    let (first, last) = trace_at(&a, events, 2, 7, 1_700_000_000_000_000_000);
    trace_at(
        &b,
        20_000,
        3,
        9,
        first + ((last - first) as f64 * at) as u64,
    );
    (a, b)
}

#[test]
fn live_trace_appearing_mid_session_is_merged_in_time_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_traces(tmp.path(), 30_000, 0.33);
    let want = offline_full(&[&a, &b]);
    let b_first = want.iter().position(|r| r.3 == 1).unwrap();
    assert!(
        b_first > 1000,
        "the second trace starts mid-way ({b_first})"
    );
    assert!(
        want[b_first..].iter().filter(|r| r.3 == 0).count() > 1000,
        "the traces interleave"
    );
    for (beacons, retry_first, chunk) in [(false, false, 0), (true, true, 900)] {
        let relay = FakeRelay::start(
            &a,
            FakeConfig {
                late_traces: vec![b.clone()],
                beacons,
                retry_first,
                metadata_chunk: chunk,
                ..cfg(Fault::None)
            },
        )
        .unwrap();
        let url = LiveUrl::parse(&relay.url("live-test", "s1")).unwrap();
        let mut s = LiveSession::open(&url, opts()).unwrap();
        assert_eq!(s.experiment().traces().len(), 1, "one trace at attach");
        let classes_at_attach = s.experiment().class_count();
        let got = read_all(&mut s);
        assert!(s.is_finished());
        assert!(s.warnings().is_empty(), "{:?}", s.warnings());
        assert_eq!(s.stats.traces_added, 1);
        assert_eq!(s.stats.late_events, 0);
        // The new trace's classes come after the first one's, which keep their ids.
        let added = s.take_new_classes();
        let exp = s.experiment();
        assert_eq!(exp.traces().len(), 2);
        assert_eq!(added.first().map(|c| c.0), Some(classes_at_attach));
        assert_eq!(added.len() as u32, exp.class_count() - classes_at_attach);
        let got: Vec<_> = got
            .into_iter()
            .map(|(t, c, cpu, ti, f)| {
                let name = exp.class_name(sextant_trace::ClassId(c)).to_string();
                (t, name, cpu, ti, f)
            })
            .collect();
        assert_eq!(got.len(), want.len(), "beacons {beacons}");
        assert!(
            got == want,
            "same events, fields and order as the two traces' files"
        );
    }
}

#[test]
fn live_trace_appearing_with_bad_metadata_is_a_clear_error_after_a_sorted_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_traces(tmp.path(), 200_000, 0.66);
    let want = offline(&a);
    let relay = FakeRelay::start(
        &a,
        FakeConfig {
            late_traces: vec![b],
            bad_late_metadata: true,
            ..cfg(Fault::None)
        },
    )
    .unwrap();
    let t0 = Instant::now();
    let (got, r) = live(&relay);
    match r {
        Err(LiveError::Session { reason, .. }) => {
            assert!(
                reason.contains("trace 2") && reason.contains("metadata"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert!(
        !got.is_empty() && got.len() < want.len(),
        "{} of {}",
        got.len(),
        want.len()
    );
    assert!(sorted(&got));
    let diff = got.iter().zip(&want).position(|(g, w)| g != w);
    assert_eq!(
        diff,
        None,
        "a prefix of the first trace ({} events)",
        got.len()
    );
}

/// The class filter set before a live session's metadata grows still selects the
/// classes it named (by their stable ids) and lets the class added later through,
/// and it applies to a trace added later too: the events are exactly those of the
/// named classes plus the new ones, as read from the files.
#[test]
fn live_class_filter_stays_correct_after_metadata_growth_and_new_traces() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_traces(tmp.path(), 30_000, 0.33);
    let late = "sched_process_fork";
    let keep = ["sched_switch", "irq_handler_entry"];
    let all = offline_full(&[&a, &b]);
    // Trace 0: the named classes and the class added by its grown metadata; trace 1
    // (added after the filter was set): everything.
    let want: Vec<_> = all
        .iter()
        .filter(|r| r.3 == 1 || keep.contains(&r.1.as_str()) || r.1 == late)
        .cloned()
        .collect();
    assert!(all.iter().any(|r| r.3 == 0 && r.1 == late));
    assert!(want.len() < all.len());
    let relay = FakeRelay::start(
        &a,
        FakeConfig {
            late_class: Some(late.into()),
            late_traces: vec![b],
            ..cfg(Fault::None)
        },
    )
    .unwrap();
    let url = LiveUrl::parse(&relay.url("live-test", "s1")).unwrap();
    let mut s = LiveSession::open(&url, opts()).unwrap();
    let ids: Vec<sextant_trace::ClassId> = (0..s.experiment().class_count())
        .map(sextant_trace::ClassId)
        .filter(|&c| keep.contains(&s.experiment().class_name(c)))
        .collect();
    assert_eq!(ids.len(), keep.len());
    s.set_class_filter(Some(&ids));
    let got = read_all(&mut s);
    assert!(s.is_finished());
    let exp = s.experiment();
    let got: Vec<_> = got
        .into_iter()
        .map(|(t, c, cpu, ti, f)| {
            let name = exp.class_name(sextant_trace::ClassId(c)).to_string();
            (t, name, cpu, ti, f)
        })
        .collect();
    assert_eq!(
        got.iter().filter(|r| r.1 == late).count(),
        want.iter().filter(|r| r.1 == late).count()
    );
    assert_eq!(got.len(), want.len());
    assert!(got == want);
}
