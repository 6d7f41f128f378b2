//! Synchronization applied by the experiment: events merged by synchronized time, every
//! timestamp of a synchronized trace mapped by its formula, causality restored for matched
//! packets; and experiments with nothing to match.

use sextant_trace::sync::{
    host_ids, synchronize, EventMatcher, MatchPlan, SyncQuality, TraceSyncStatus,
};
use sextant_trace::Experiment;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("SEXTANT_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but the shared directory {} is missing (set SEXTANT_SHARED)",
        dir.display()
    );
    eprintln!(
        "note: skipping: shared directory {} not found (set SEXTANT_SHARED)",
        dir.display()
    );
    None
}

/// The scp pair and a fresh working folder `sextant-sync-TAG-PID` with the path of
/// a transforms file in it (not created); None when ../shared is absent.
fn scp_pair_and_folder(tag: &str) -> Option<([PathBuf; 2], PathBuf, PathBuf)> {
    let ctf = shared_dir()?.join("traces/ctf");
    let dir = std::env::temp_dir().join(format!("sextant-sync-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("sextant-sync.json");
    Some(([ctf.join("scp_src"), ctf.join("scp_dest")], dir, saved))
}

/// (trace index, timestamp) of every event, in visiting order.
fn visit(exp: &mut Experiment) -> Vec<(usize, i64)> {
    let mut out = Vec::new();
    exp.for_each(
        &mut |ev| {
            out.push((ev.trace_index(), ev.timestamp()));
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    out
}

#[test]
fn synchronized_experiment_maps_every_timestamp_and_merges_by_synchronized_time() {
    let Some(shared) = shared_dir() else { return };
    let ctf = shared.join("traces/ctf");
    let mut exp = Experiment::open(&[ctf.join("scp_src"), ctf.join("scp_dest")]).unwrap();
    let raw = visit(&mut exp);
    let result = synchronize(&mut exp, &AtomicU64::new(0)).unwrap();
    assert_eq!(result.quality_between(0, 1), SyncQuality::Accurate);
    let transforms = result.transforms();
    exp.set_time_transforms(&transforms);
    let synced = visit(&mut exp);
    assert_eq!(raw.len(), synced.len());

    // merged by synchronized time
    assert!(synced.windows(2).all(|w| w[0].1 <= w[1].1));
    // per trace, the same events in the same order, each mapped by its trace's formula
    for (trace, formula) in transforms.iter().enumerate() {
        let r: Vec<i64> = raw.iter().filter(|e| e.0 == trace).map(|e| e.1).collect();
        let s: Vec<i64> = synced
            .iter()
            .filter(|e| e.0 == trace)
            .map(|e| e.1)
            .collect();
        assert_eq!(r.len(), s.len());
        for (a, b) in r.iter().zip(&s) {
            assert_eq!(formula.apply(*a), *b);
        }
    }
    assert!(transforms[1].is_identity());
    // the raw order interleaved differently: the formula moved scp_src by far more than an
    // event's duration
    assert_ne!(raw, synced);

    // Causality: with an accurate hull, no matched packet arrives before it left.
    let plan = MatchPlan::new(&exp);
    let mut matcher = EventMatcher::new(vec![0, 1]);
    let mut deps = Vec::new();
    exp.for_each(
        &mut |ev| {
            if let Some((dir, key)) = plan.key_of(ev) {
                deps.extend(matcher.process(ev.trace_index(), ev.timestamp(), dir, key));
            }
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    assert_eq!(deps.len() as u64, result.matches);
    for d in &deps {
        assert!(
            d.destination.timestamp >= d.source.timestamp,
            "packet received before being sent: {d:?}"
        );
    }

    // Removing the formulas restores the original timeline; synchronizing again (formulas
    // set) gives the same result.
    let again = synchronize(&mut exp, &AtomicU64::new(0)).unwrap();
    assert_eq!(again.transforms(), transforms);
    exp.set_time_transforms(&[]);
    assert_eq!(visit(&mut exp), raw);
}

#[test]
fn host_ids_are_clock_uuids_and_the_reference_sorts_first() {
    let Some(shared) = shared_dir() else { return };
    let ctf = shared.join("traces/ctf");
    let exp = Experiment::open(&[ctf.join("scp_src"), ctf.join("scp_dest")]).unwrap();
    let hosts = host_ids(&exp);
    assert_eq!(hosts.len(), 2);
    for h in &hosts {
        assert_eq!(h.len(), 36, "{h}");
    }
    let mut exp = exp;
    let result = synchronize(&mut exp, &AtomicU64::new(0)).unwrap();
    let reference = result.reference_host.clone().unwrap();
    assert_eq!(&reference, hosts.iter().min().unwrap());
    assert_eq!(result.traces[1].status, TraceSyncStatus::Reference);
}

#[test]
fn experiments_without_packets_open_and_are_not_synchronized() {
    let Some(shared) = shared_dir() else { return };
    let ctf = shared.join("traces/ctf");
    let mut exp = Experiment::open(&[ctf.join("many-threads"), ctf.join("bug446190")]).unwrap();
    // bug446190 has net_dev_queue / netif_receive_skb, but from lttng-modules 2.5: no TCP
    // header fields, so nothing to match on (as in Trace Compass).
    let net_classes = (0..exp.class_count())
        .filter(|&c| {
            let n = exp.class_name(sextant_trace::ClassId(c));
            n == "net_dev_queue" || n == "netif_receive_skb"
        })
        .count();
    assert!(net_classes >= 2);
    assert!(MatchPlan::new(&exp).is_empty());
    let result = synchronize(&mut exp, &AtomicU64::new(0)).unwrap();
    assert_eq!(result.matches, 0);
    assert_eq!(result.reference_host, None);
    assert!(!result.is_synchronized());
    for t in &result.traces {
        assert_eq!(t.status, TraceSyncStatus::NotSynchronized);
    }
    // applying the (identity) formulas changes nothing
    let before = visit(&mut exp);
    exp.set_time_transforms(&result.transforms());
    assert_eq!(visit(&mut exp), before);

    // a single trace with network events but no peer
    let mut single = Experiment::open(&[ctf.join("scp_src")]).unwrap();
    let r = synchronize(&mut single, &AtomicU64::new(0)).unwrap();
    assert_eq!(r.matches, 0);
    assert_eq!(r.traces[0].status, TraceSyncStatus::NotSynchronized);
}

#[test]
fn formulas_are_computed_once_then_reused_and_files_are_checked() {
    use sextant_trace::sync::{apply, SyncError, SyncMode, SyncOrigin};
    let Some((paths, dir, saved)) = scp_pair_and_folder("apply") else {
        return;
    };
    let progress = AtomicU64::new(0);

    let mut exp = Experiment::open(&paths).unwrap();
    let first = apply(&mut exp, &SyncMode::Auto, Some(&saved), &progress).unwrap();
    assert_eq!(first.origin, SyncOrigin::Computed);
    assert_eq!(first.result.as_ref().unwrap().matches, 46);
    assert!(saved.is_file());
    let synced = visit(&mut exp);

    // a fresh experiment reuses the saved formulas: same timeline, no matching pass
    let mut exp2 = Experiment::open(&paths).unwrap();
    let second = apply(&mut exp2, &SyncMode::Auto, Some(&saved), &progress).unwrap();
    assert_eq!(second.origin, SyncOrigin::Loaded(saved.clone()));
    assert_eq!(second.transforms, first.transforms);
    assert_eq!(visit(&mut exp2), synced);

    // --sync FILE
    let mut exp3 = Experiment::open(&paths).unwrap();
    let third = apply(&mut exp3, &SyncMode::File(saved.clone()), None, &progress).unwrap();
    assert_eq!(third.transforms, first.transforms);
    // --sync off
    apply(&mut exp3, &SyncMode::Off, None, &progress).unwrap();
    assert!(exp3.time_transforms().is_empty());

    // a corrupt saved file is recomputed over in auto mode, an error when named explicitly
    std::fs::write(&saved, "{ not json").unwrap();
    let again = apply(&mut exp3, &SyncMode::Auto, Some(&saved), &progress).unwrap();
    assert_eq!(again.origin, SyncOrigin::Computed);
    // (the file is not flushed to disk: what a crash may leave, an empty file, is computed over)
    std::fs::write(&saved, "").unwrap();
    let again = apply(&mut exp3, &SyncMode::Auto, Some(&saved), &progress).unwrap();
    assert_eq!(again.origin, SyncOrigin::Computed);
    assert_eq!(again.transforms, first.transforms);
    std::fs::write(&saved, "{ not json").unwrap();
    assert!(matches!(
        apply(&mut exp3, &SyncMode::File(saved.clone()), None, &progress),
        Err(SyncError::Json { .. })
    ));
    assert!(matches!(
        apply(
            &mut exp3,
            &SyncMode::File(dir.join("missing.json")),
            None,
            &progress
        ),
        Err(SyncError::Io { .. })
    ));
    // a saved file for other traces is not reused
    let mut other =
        Experiment::open(&[paths[0].clone(), paths[0].with_file_name("many-threads")]).unwrap();
    std::fs::remove_file(&saved).unwrap();
    apply(&mut exp3, &SyncMode::Auto, Some(&saved), &progress).unwrap();
    let o = apply(&mut other, &SyncMode::Auto, Some(&saved), &progress).unwrap();
    assert_eq!(o.origin, SyncOrigin::Computed);
    let reloaded = apply(&mut other, &SyncMode::File(saved.clone()), None, &progress).unwrap();
    assert_eq!(reloaded.transforms, o.transforms);
    // one trace: nothing to do
    let mut single = Experiment::open(&paths[..1]).unwrap();
    let s = apply(&mut single, &SyncMode::Auto, None, &progress).unwrap();
    assert_eq!(s.origin, SyncOrigin::SingleHost);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn formulas_saved_later_are_in_force_at_once_and_the_file_arrives_whole() {
    use sextant_trace::sync::{apply, apply_saving_later, SyncError, SyncMode, SyncOrigin};
    let Some((paths, dir, saved)) = scp_pair_and_folder("later") else {
        return;
    };
    let progress = AtomicU64::new(0);

    let mut exp = Experiment::open(&paths).unwrap();
    let later = apply_saving_later(&mut exp, &SyncMode::Auto, Some(&saved), &progress).unwrap();
    assert_eq!(later.origin, SyncOrigin::Computed);
    assert_eq!(later.result.as_ref().unwrap().matches, 46);
    // the formulas apply before the file is written
    assert!(!exp.time_transforms().is_empty());
    let saving = later.saving.clone().expect("a save to make");
    // nothing is written before the caller says (then on a thread of its own here)
    assert!(!saved.exists());
    let elsewhere = saving.clone();
    std::thread::spawn(move || elsewhere.wait())
        .join()
        .unwrap()
        .unwrap();
    saving.wait().unwrap(); // a second wait has nothing left to do
                            // the same file as a synchronous save, and no temporary file left beside it
    let text = std::fs::read_to_string(&saved).unwrap();
    std::fs::remove_file(&saved).unwrap();
    let mut exp2 = Experiment::open(&paths).unwrap();
    let now = apply(&mut exp2, &SyncMode::Auto, Some(&saved), &progress).unwrap();
    assert!(now.saving.is_none());
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), text);
    assert_eq!(now.transforms, later.transforms);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["sextant-sync.json"]);
    // reused from the file: nothing to save
    let mut exp3 = Experiment::open(&paths).unwrap();
    let reused = apply_saving_later(&mut exp3, &SyncMode::Auto, Some(&saved), &progress).unwrap();
    assert_eq!(reused.origin, SyncOrigin::Loaded(saved.clone()));
    assert!(reused.saving.is_none());

    // a folder that cannot be made: the error comes from the wait, naming the file
    let blocked = dir.join("a-file");
    std::fs::write(&blocked, "x").unwrap();
    let inside = blocked.join("sextant-sync.json");
    let mut exp4 = Experiment::open(&paths).unwrap();
    let failing = apply_saving_later(&mut exp4, &SyncMode::Auto, Some(&inside), &progress).unwrap();
    match failing.saving.unwrap().wait() {
        Err(SyncError::Io { path, .. }) => assert_eq!(path, inside),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stream_by_stream_reading_gives_the_one_pass_result() {
    use sextant_trace::sync::{synchronize_in_one_pass, Synchronizer};
    let Some(shared) = shared_dir() else { return };
    let ctf = shared.join("traces/ctf");
    // the pair plus a trace without packets (not read by the stream-by-stream path)
    let mut exp = Experiment::open(&[
        ctf.join("scp_src"),
        ctf.join("many-threads"),
        ctf.join("scp_dest"),
    ])
    .unwrap();
    let fast = synchronize(&mut exp, &AtomicU64::new(0)).unwrap();
    let plan = MatchPlan::new(&exp);
    let sync = Synchronizer::new(&host_ids(&exp));
    let reference = synchronize_in_one_pass(&mut exp, &plan, sync, &AtomicU64::new(0)).unwrap();
    assert_eq!(fast.matches, 46);
    assert_eq!(fast.matches, reference.matches);
    assert_eq!(fast.transforms(), reference.transforms());
    assert_eq!(fast.peak_waiting, reference.peak_waiting);
    assert_eq!(fast.pairs.len(), reference.pairs.len());
    for (a, b) in fast.pairs.iter().zip(&reference.pairs) {
        assert_eq!(a.stats.accurate_matches, b.stats.accurate_matches);
        assert_eq!(a.stats.alpha, b.stats.alpha);
        assert_eq!(a.stats.beta, b.stats.beta);
    }
    assert_eq!(fast.traces[1].status, TraceSyncStatus::NotSynchronized);
}

#[test]
fn a_chosen_reference_trace_keeps_its_timestamps() {
    use sextant_trace::sync::synchronize_with_reference;
    let Some(shared) = shared_dir() else { return };
    let ctf = shared.join("traces/ctf");
    let mut exp = Experiment::open(&[ctf.join("scp_src"), ctf.join("scp_dest")]).unwrap();
    let default = synchronize(&mut exp, &AtomicU64::new(0)).unwrap();
    let src_host = host_ids(&exp)[0].clone();
    let chosen =
        synchronize_with_reference(&mut exp, Some(src_host.clone()), &AtomicU64::new(0)).unwrap();
    assert_eq!(chosen.reference_host, Some(src_host));
    assert_eq!(chosen.traces[0].status, TraceSyncStatus::Reference);
    assert!(chosen.traces[0].transform.is_identity());
    assert_eq!(chosen.traces[1].status, TraceSyncStatus::Synchronized);
    // the two choices are exact inverses of each other
    let round_trip = chosen.traces[1]
        .transform
        .compose(&default.traces[0].transform);
    assert!(round_trip.is_identity(), "{round_trip:?}");
}

/// (timestamp, class) of every event.
fn events(exp: &mut Experiment) -> Vec<(i64, u32)> {
    let mut out = Vec::new();
    exp.for_each(
        &mut |ev| {
            out.push((ev.timestamp(), ev.class().0));
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    out
}

#[test]
fn splitting_by_host_keeps_names_formulas_and_events() {
    use sextant_trace::sync::{apply, SyncMode};
    let Some(shared) = shared_dir() else { return };
    let ctf = shared.join("traces/ctf");
    let (src, dest) = (ctf.join("scp_src"), ctf.join("scp_dest"));
    let mut exp = Experiment::open(&[&src, &dest]).unwrap();
    let applied = apply(&mut exp, &SyncMode::Auto, None, &AtomicU64::new(0)).unwrap();
    let names: Vec<String> = exp.traces().iter().map(|t| t.name.clone()).collect();
    let mut parts = exp.split(&[vec![1], vec![0]]).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].traces()[0].name, names[1]);
    assert_eq!(parts[1].traces()[0].name, names[0]);
    // scp_src alone, through its formula, event for event.
    let mut alone = Experiment::open(&[&src]).unwrap();
    alone.set_time_transforms(&applied.transforms[..1]);
    assert_eq!(events(&mut parts[1]), events(&mut alone));
    let mut dest_alone = Experiment::open(&[&dest]).unwrap();
    assert_eq!(events(&mut parts[0]), events(&mut dest_alone));
    // A trace split twice, or not there, is an error (not a panic).
    let exp = Experiment::open(&[&src, &dest]).unwrap();
    assert!(exp.split(&[vec![0], vec![0]]).is_err());
    let exp = Experiment::open(&[&src]).unwrap();
    assert!(exp.split(&[vec![3]]).is_err());
}
