//! Golden checks of the virtual machine analyses: every case of
//! `shared/golden/vm/*/expected.json` (schema `providers-golden/1`) is built through
//! the pipeline over its XML stub traces (one experiment, host id = file name), then
//! every `value_at`, `intervals` and `children` expectation is queried.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};
use sextant_providers::stub_source::StubSource;
use sextant_providers::Registry;
use sht::{StateSystem, StateSystemQuerier, StateValue};

fn registry() -> Registry {
    let mut r = Registry::new();
    sextant_providers::register_vm(&mut r);
    r
}

/// The golden's typed value as a state value.
fn expected_value(v: &Value) -> StateValue {
    let ty = v["type"].as_str().expect("value type");
    match ty {
        "null" => StateValue::Null,
        "int" => StateValue::Int(v["v"].as_i64().expect("int") as i32),
        "long" => StateValue::Long(v["v"].as_i64().expect("long")),
        "double" => StateValue::Double(v["v"].as_f64().expect("double")),
        "string" => StateValue::String(v["v"].as_str().expect("string").into()),
        other => panic!("unknown value type {other}"),
    }
}

fn trace_files(case: &Path, golden: &Value) -> Vec<PathBuf> {
    golden["traces"]
        .as_array()
        .expect("traces")
        .iter()
        .map(|t| {
            let file = t
                .as_str()
                .or_else(|| t["file"].as_str())
                .expect("trace file");
            case.join(file)
        })
        .collect()
}

/// Builds the case's analysis; `file` writes a `.ht` and reopens it.
fn build_case(case: &Path, golden: &Value, file: Option<&Path>) -> StateSystem {
    let analysis = golden["analysis"].as_str().expect("analysis id");
    let provider = registry()
        .create(analysis)
        .unwrap_or_else(|| panic!("{}: no provider {analysis}", case.display()));
    let paths = trace_files(case, golden);
    // The golden names each trace's host id: our stub source uses the file name.
    for (t, p) in golden["traces"].as_array().unwrap().iter().zip(&paths) {
        if let Some(host) = t["host_id"].as_str() {
            assert_eq!(host, p.file_name().unwrap().to_str().unwrap());
        }
    }
    let mut source = StubSource::open(&paths).expect("stub traces");
    let output = match file {
        Some(f) => Output::file(f),
        None => Output::InMemory,
    };
    let (report, mut systems) = build(
        &mut source,
        vec![Analysis { provider, output }],
        &BuildOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{}: build failed: {e}", case.display()));
    assert_eq!(report.start, golden["start"].as_i64().unwrap(), "start");
    assert_eq!(report.end, golden["end"].as_i64().unwrap(), "end");
    match file {
        Some(f) => StateSystem::open(f, None).expect("reopen .ht"),
        None => systems.remove(0),
    }
}

/// Runs every check; returns the failures as text.
fn check_case(case: &Path, golden: &Value, ss: &StateSystem) -> Vec<String> {
    let mut failures = Vec::new();
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    for check in golden["checks"].as_array().expect("checks") {
        let path: Vec<&str> = check["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        let shown = path.join("/");
        let Ok(quark) = ss.quark(&path) else {
            failures.push(format!("{name}: {shown}: attribute missing"));
            continue;
        };
        match check["kind"].as_str().unwrap() {
            "value_at" => {
                let t = check["time"].as_i64().unwrap();
                let want = expected_value(&check["value"]);
                let full = ss.query_full(t).expect("full query");
                let got = full[quark as usize].value.clone();
                if got != want {
                    failures.push(format!(
                        "{name}: {shown} at {t}: got {got:?}, want {want:?}"
                    ));
                }
            }
            "intervals" => {
                let want: Vec<(i64, i64, StateValue)> = check["intervals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| {
                        (
                            i[0].as_i64().unwrap(),
                            i[1].as_i64().unwrap(),
                            expected_value(&i[2]),
                        )
                    })
                    .collect();
                let mut got = Vec::new();
                let mut t = ss.start_time();
                while t <= ss.current_end_time() {
                    let i = ss.query_single(t, quark).expect("single query");
                    got.push((i.start, i.end, i.value.clone()));
                    t = i.end + 1;
                }
                if got != want {
                    failures.push(format!("{name}: {shown}:\n  got  {got:?}\n  want {want:?}"));
                }
            }
            other => panic!("unknown check kind {other}"),
        }
    }
    if let Some(children) = golden["children"].as_object() {
        for (parent, want) in children {
            let path: Vec<&str> = parent.split('/').collect();
            let Ok(q) = ss.quark(&path) else {
                failures.push(format!("{name}: {parent}: attribute missing"));
                continue;
            };
            let got: Vec<String> = ss
                .attributes()
                .children_of(q)
                .iter()
                .map(|c| ss.attributes().name(*c).unwrap().to_string())
                .collect();
            let want: Vec<String> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap().to_string())
                .collect();
            if got != want {
                failures.push(format!(
                    "{name}: children of {parent}: got {got:?}, want {want:?}"
                ));
            }
        }
    }
    failures
}

fn cases() -> Option<Vec<(PathBuf, Value)>> {
    let shared = sextant_tests::shared_dir()?;
    let cases = sextant_tests::case_dirs(&shared, "golden/vm")
        .into_iter()
        .map(|dir| {
            let text = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json");
            let golden: Value = serde_json::from_str(&text).expect("json");
            (dir, golden)
        })
        .collect();
    Some(cases)
}

#[test]
fn vm_goldens_in_memory() {
    let Some(cases) = cases() else { return };
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    let mut checks = 0;
    for (dir, golden) in &cases {
        let ss = build_case(dir, golden, None);
        checks += golden["checks"].as_array().unwrap().len();
        failures.extend(check_case(dir, golden, &ss));
    }
    assert!(checks > 100, "only {checks} checks");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn vm_goldens_from_history_files() {
    let Some(cases) = cases() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, (case, golden)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("case{i}.ht"));
        let ss = build_case(case, golden, Some(&file));
        failures.extend(check_case(case, golden, &ss));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `thread_preemption_query`: the guest's kernel thread statuses overlaid with vCPU
/// preemption, compared on `value & mask`.
#[test]
fn vm_thread_preemption_query() {
    let Some(cases) = cases() else { return };
    let mut compared = 0;
    for (dir, golden) in &cases {
        let Some(query) = golden["thread_preemption_query"].as_object() else {
            continue;
        };
        let mask = query["mask"].as_i64().unwrap() as i32;
        let vres = build_case(dir, golden, None);
        // The guest: the trace the vresources tree has under "Virtual Machines".
        let vms = vres.quark(&["Virtual Machines"]).unwrap();
        let guest = vres.attributes().children_of(vms)[0];
        let guest = vres.attributes().name(guest).unwrap().to_string();
        let kernel = {
            let mut source = sextant_providers::sources::open(&[dir.join(&guest)]).unwrap();
            let provider = sextant_providers::native_registry()
                .create("kernel")
                .unwrap();
            let (_, mut systems) = build(
                &mut *source,
                vec![Analysis {
                    provider,
                    output: Output::InMemory,
                }],
                &BuildOptions::default(),
            )
            .unwrap();
            systems.remove(0)
        };
        let got =
            sextant_providers::vm::vresources::thread_preemption_intervals(&vres, &guest, &kernel)
                .unwrap();
        for (tid, want) in query {
            let Ok(tid) = tid.parse::<i32>() else {
                continue;
            };
            let want: Vec<(i64, i64, i32)> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i[0].as_i64().unwrap(),
                        i[1].as_i64().unwrap(),
                        i[2].as_i64().unwrap() as i32 & mask,
                    )
                })
                .collect();
            let got: Vec<(i64, i64, i32)> = got
                .get(&tid)
                .map(|l| l.iter().map(|(s, e, v)| (*s, *e, v & mask)).collect())
                .unwrap_or_default();
            assert_eq!(got, want, "{}: thread {tid}", dir.display());
            compared += 1;
        }
    }
    assert!(compared >= 2, "compared {compared} threads");
}

/// On a real LTTng kernel trace (one machine: a host), the fused analysis runs every
/// event through its handlers without error, and each CPU's `Current_thread` follows
/// the kernel analysis's wherever the latter has a thread.
#[test]
fn fused_on_a_real_kernel_trace_follows_the_kernel_analysis() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    for name in ["scp_src", "many-threads"] {
        let trace = shared.join("traces/ctf").join(name).join("ctf");
        let registry = sextant_providers::native_registry();
        let mut source = sextant_providers::sources::open(std::slice::from_ref(&trace)).unwrap();
        let analyses = [
            "kernel",
            "vm-fused",
            "vm-model",
            "vm-vresources",
            "vm-overhead",
            "nested-vcpu",
        ]
        .iter()
        .map(|a| Analysis {
            provider: registry.create(a).unwrap(),
            output: Output::InMemory,
        })
        .collect();
        let (report, systems) = build(&mut *source, analyses, &BuildOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(report.events > 1000);
        // No kvm events: the host-only analysis says so.
        assert!(
            report.warnings.iter().any(|w| w.contains("no vCPU found")),
            "{:?}",
            report.warnings
        );
        let (kernel, fused) = (&systems[0], &systems[1]);
        let cpus = kernel.quark(&["CPUs"]).unwrap();
        let mut compared = 0;
        let mut differ = 0;
        for &cpu in kernel.attributes().children_of(cpus) {
            let n = kernel.attributes().name(cpu).unwrap().to_string();
            let Ok(kq) = kernel.quark(&["CPUs", &n, "Current_thread"]) else {
                continue;
            };
            let fq = fused.quark(&["CPUs", &n, "Current_thread"]).unwrap();
            // Sample every interval start of the kernel analysis.
            let mut t = kernel.start_time();
            while t <= kernel.current_end_time() {
                let i = kernel.query_single(t, kq).unwrap();
                if !i.value.is_null() {
                    compared += 1;
                    if fused.query_single(i.start, fq).unwrap().value != i.value {
                        differ += 1;
                    }
                }
                t = i.end + 1;
            }
        }
        assert!(compared > 100, "{name}: {compared}");
        assert_eq!(differ, 0, "{name}: {differ} of {compared} differ");
    }
}
