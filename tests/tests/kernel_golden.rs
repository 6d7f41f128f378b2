//! The Linux kernel analysis against Trace Compass: the whole histories Trace
//! Compass's own kernel analysis wrote (`shared/golden/kernel-ht/`, compared as a
//! canonical dump and byte for byte) and the checks of `shared/golden/kernel/`.

#[path = "common/golden_checks.rs"]
mod golden_checks;

use std::io::Read;
use std::path::{Path, PathBuf};

use sextant_providers::kernel::{KernelStateProvider, KERNEL_PROVIDER_VERSION};
use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};
use sextant_providers::sources;
use sextant_tests::{first_difference, first_line_difference, shared_dir};
use sht::{HistoryTreeReader, StateSystem};

/// The trace a golden case was made from.
fn trace_of(shared: &Path, case: &str) -> PathBuf {
    if case == "lttng_kernel_analysis" {
        shared.join("traces/xmlstub/lttng_kernel_analysis.xml")
    } else {
        shared.join("traces/ctf").join(case).join("ctf")
    }
}

fn unxz(path: &Path) -> Vec<u8> {
    let mut input = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut input))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    lzma_rs::xz_decompress(&mut input.as_slice(), &mut out)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    out
}

/// Runs the kernel analysis on `trace` into `out`.
fn build_kernel(trace: &Path, output: Output) -> StateSystem {
    let mut source = sources::open(&[trace.to_path_buf()])
        .unwrap_or_else(|e| panic!("{}: {e}", trace.display()));
    let analyses = vec![Analysis {
        provider: Box::new(KernelStateProvider::new()),
        output,
    }];
    let (_, mut systems) = build(&mut *source, analyses, &BuildOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", trace.display()));
    systems.remove(0)
}

/// Builds the case's history and compares it with Trace Compass's: the canonical
/// dump (attributes in quark order, every interval, the range) and the bytes.
fn kernel_ht_case(case: &str) {
    let Some(shared) = shared_dir() else { return };
    let dir = shared.join("golden/kernel-ht").join(case);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("kernel.ht");
    build_kernel(&trace_of(&shared, case), Output::file(&out));

    let reader = HistoryTreeReader::open(&out, Some(KERNEL_PROVIDER_VERSION)).unwrap();
    let got_dump = sht::dump::dump(&reader).unwrap();
    let want_dump = String::from_utf8(unxz(&dir.join("expected.dump.xz"))).unwrap();
    if let Some(diff) = first_line_difference(&got_dump, &want_dump) {
        panic!("{case}: dump differs from Trace Compass's: {diff}");
    }
    let got = std::fs::read(&out).unwrap();
    let want = unxz(&dir.join("expected.ht.xz"));
    if let Some(at) = first_difference(&got, &want) {
        panic!(
            "{case}: .ht differs from Trace Compass's at byte {at} (sizes {} / {})",
            got.len(),
            want.len()
        );
    }
    // The sampled checks of golden/kernel/<case>, on the same history (opened).
    if shared.join("golden/kernel").join(case).is_dir() {
        let ss = StateSystem::open(&out, Some(KERNEL_PROVIDER_VERSION)).unwrap();
        kernel_checks(&shared, case, &ss);
    }
}

#[test]
fn kernel_ht_lttng_kernel_analysis_xml_stub() {
    kernel_ht_case("lttng_kernel_analysis");
}

#[test]
fn kernel_ht_bug446190_lttng_2_5() {
    kernel_ht_case("bug446190");
}

#[test]
fn kernel_ht_flipping_endianness_big_endian() {
    kernel_ht_case("flipping-endianness");
}

#[test]
fn kernel_ht_scp_src_lttng_2_1() {
    kernel_ht_case("scp_src");
}

#[test]
fn kernel_ht_scp_dest_lttng_2_1() {
    kernel_ht_case("scp_dest");
}

#[test]
fn kernel_ht_many_threads_lttng_2_8() {
    kernel_ht_case("many-threads");
}

#[test]
fn every_kernel_ht_case_has_a_test() {
    let Some(shared) = shared_dir() else { return };
    let cases: Vec<String> = sextant_tests::case_dirs(&shared, "golden/kernel-ht")
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let tested = [
        "bug446190",
        "flipping-endianness",
        "lttng_kernel_analysis",
        "many-threads",
        "scp_dest",
        "scp_src",
    ];
    assert_eq!(cases, tested, "a kernel-ht case without a test");
}

/// The checks of `golden/kernel/<case>/expected.json`.
fn kernel_checks(shared: &Path, case: &str, ss: &StateSystem) {
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            shared
                .join("golden/kernel")
                .join(case)
                .join("expected.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(golden["provider_version"], KERNEL_PROVIDER_VERSION);
    let failures = golden_checks::run_checks(ss, &golden);
    assert!(
        failures.is_empty(),
        "{case}: {} failed checks:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every `golden/kernel` case is run by one of the tests above (with its history).
#[test]
fn every_kernel_checks_case_is_covered() {
    let Some(shared) = shared_dir() else { return };
    for dir in sextant_tests::case_dirs(&shared, "golden/kernel") {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let with_history = shared.join("golden/kernel-ht").join(&case).is_dir();
        assert!(
            with_history || case == "trace2",
            "golden/kernel/{case} is not tested"
        );
    }
}

/// `trace2`'s data files are not available (shared/traces/README.md): its checks
/// run only if someone puts the trace at `traces/ctf/trace2/ctf`.
#[test]
fn kernel_checks_trace2_when_the_trace_is_present() {
    let Some(shared) = shared_dir() else { return };
    if !trace_of(&shared, "trace2").join("metadata").is_file() {
        eprintln!("note: skipping trace2: its CTF data is not in shared/traces");
        return;
    }
    let ss = build_kernel(&trace_of(&shared, "trace2"), Output::InMemory);
    kernel_checks(&shared, "trace2", &ss);
}

/// A user-space trace is refused with a message naming the analysis and why.
#[test]
fn kernel_analysis_refuses_a_user_space_trace() {
    let Some(shared) = shared_dir() else { return };
    let trace = shared.join("traces/ctf/hello-lost/ctf");
    let mut source = sources::open(&[trace]).unwrap();
    let analyses = vec![Analysis {
        provider: Box::new(KernelStateProvider::new()),
        output: Output::Null,
    }];
    let err = build(&mut *source, analyses, &BuildOptions::default())
        .err()
        .expect("a UST trace has no kernel analysis");
    let text = err.to_string();
    assert!(
        text.contains("org.eclipse.tracecompass.analysis.os.linux.kernel")
            && text.contains("\"ust\""),
        "{text}"
    );
}
