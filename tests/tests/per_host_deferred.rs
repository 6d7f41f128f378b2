//! `open_per_host_deferred`: the hosts' sources handed out before their formulas are computed
//! read, once `SyncLater::finish` has run, the events that sources opened with the same
//! formulas given up front read; a synchronization left unfinished stops the waiting sources
//! instead of hanging them.

use sextant_providers::pipeline::EventSource;
use sextant_providers::sources::{
    open_per_host_deferred, open_per_host_saving_later, CtfSource, Deferred, HostTraces, Opened,
    SyncMode,
};
use sextant_tests::shared_dir;
use std::ops::ControlFlow;
use std::sync::atomic::AtomicU64;

/// (class, timestamp) of every event the source visits, or the error that stopped it.
fn read(source: &mut CtfSource) -> Result<Vec<(u32, i64)>, String> {
    let mut out = Vec::new();
    source
        .run(
            &mut |ev| {
                out.push((ev.class(), ev.timestamp()));
                ControlFlow::Continue(())
            },
            &AtomicU64::new(0),
        )
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn per_host(opened: Opened) -> Vec<(HostTraces, CtfSource)> {
    match opened {
        Opened::PerHost(h) => h,
        Opened::One(_) => panic!("the scp pair is two hosts"),
    }
}

#[test]
fn deferred_sources_read_as_sources_with_their_formulas_given() {
    let Some(shared) = shared_dir() else { return };
    let ctf = shared.join("traces/ctf");
    let pair = [ctf.join("scp_src"), ctf.join("scp_dest")];
    let dir = std::env::temp_dir().join(format!("sextant-deferred-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("sextant-sync.json");

    // The same formulas, computed and saved, then given up front (`--sync FILE`).
    let (_, applied) = open_per_host_saving_later(&pair, &SyncMode::Auto, Some(&saved)).unwrap();
    applied.unwrap().saving.unwrap().wait().unwrap();
    let (given, _) =
        open_per_host_saving_later(&pair, &SyncMode::File(saved.clone()), None).unwrap();
    let given = per_host(given);
    let given_transforms: Vec<_> = given.iter().map(|(h, _)| h.transforms.clone()).collect();
    let want: Vec<_> = given
        .into_iter()
        .map(|(h, mut s)| (h.host, read(&mut s).unwrap()))
        .collect();
    // Computed now (no saved file), the hosts handed out say their formulas too (the server
    // opens each host again with them).
    let (computed, _) = open_per_host_saving_later(&pair, &SyncMode::Auto, None).unwrap();
    let computed: Vec<_> = per_host(computed)
        .into_iter()
        .map(|(h, _)| h.transforms)
        .collect();
    assert_eq!(computed, given_transforms);
    assert!(
        computed.iter().any(|t| !t[0].is_identity()),
        "scp_src has a formula"
    );

    let (opened, deferred) = open_per_host_deferred(&pair, &SyncMode::Auto, None).unwrap();
    let Deferred::Matching(later) = deferred else {
        panic!("no saved formulas: packets are matched")
    };
    // Each source waits until its trace's packets are read and its formulas computed, given
    // by `finish` on this thread; the sources are read on others.
    let readers: Vec<_> = per_host(opened)
        .into_iter()
        .map(|(host, mut source)| (host, std::thread::spawn(move || read(&mut source))))
        .collect();
    let applied = later.finish();
    assert_eq!(applied.result.as_ref().unwrap().matches, 46);
    for (host, reader) in readers {
        let events = reader.join().unwrap().unwrap();
        assert_eq!(want.iter().find(|w| w.0 == host.host).unwrap().1, events);
    }
    assert!(applied.saving.is_none(), "no file was asked for");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unfinished_synchronization_stops_the_waiting_sources() {
    let Some(shared) = shared_dir() else { return };
    let ctf = shared.join("traces/ctf");
    let pair = [ctf.join("scp_src"), ctf.join("scp_dest")];
    let (opened, deferred) = open_per_host_deferred(&pair, &SyncMode::Auto, None).unwrap();
    drop(deferred);
    for (_, mut source) in per_host(opened) {
        let e = read(&mut source).unwrap_err();
        assert!(e.contains("not finished"), "{e}");
    }
}
