//! Live analysis end to end: the kernel analysis built from a live session equals
//! the one built from the same trace's files, first against the in-process fake
//! relay (always), then with the real LTTng tools (skipped with a notice when
//! `lttng`, `lttng-sessiond`, `lttng-relayd`, `babeltrace2` or the Python agent are
//! missing).

use std::path::{Path, PathBuf};

use sextant_providers::kernel::KernelStateProvider;
use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};
use sextant_providers::sources;
use sextant_trace::gen::{generate, GenConfig, GenLimit};
use sextant_trace::live::fake::{FakeConfig, FakeRelay};

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
