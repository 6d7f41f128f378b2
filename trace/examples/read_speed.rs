//! Rough decoding speed: `cargo run --release --example read_speed -- TRACE [touch]`.
//! (Figures for reports come from the criterion bench benches/benches/ctf_read.rs.)
use sextant_trace::{Access, ClassId, Experiment, FieldHandle};
use std::ops::ControlFlow;
use std::sync::atomic::AtomicU64;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let touch = a.get(2).is_some_and(|s| s == "touch");
    if a.get(2).is_some_and(|s| s == "open") {
        let t0 = std::time::Instant::now();
        for _ in 0..20 {
            let e = Experiment::open(&[&a[1]]).unwrap();
            std::hint::black_box(e.class_count());
        }
        println!(
            "open: {:.2} ms wall each",
            t0.elapsed().as_secs_f64() * 1e3 / 20.0
        );
        return;
    }
    let t0 = std::time::Instant::now();
    let mut exp = Experiment::open(&[&a[1]]).unwrap();
    println!("open: {:.1} ms wall", t0.elapsed().as_secs_f64() * 1e3);
    let handles: Vec<Vec<(FieldHandle, Access)>> = (0..exp.class_count())
        .map(|c| {
            let c = ClassId(c);
            exp.field_names(c)
                .iter()
                .filter_map(|n| exp.field_handle(c, n))
                .map(|h| (h, exp.field_access(h)))
                .collect()
        })
        .collect();
    // CPU time of this thread (ns on CPU), robust to other processes sharing the cores.
    let cpu = || {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    let runs = if std::env::var_os("ONCE").is_some() {
        1
    } else {
        3
    };
    for _ in 0..runs {
        let t = std::time::Instant::now();
        let c0 = cpu();
        let mut n = 0u64;
        let mut acc = 0i64;
        exp.for_each(
            &mut |ev| {
                n += 1;
                if touch {
                    for (h, a) in &handles[ev.class().0 as usize] {
                        acc = acc.wrapping_add(match a {
                            Access::Int => ev.int(*h).unwrap_or(0),
                            Access::Text => ev.string(*h).map_or(0, |s| s.len() as i64),
                            Access::Other => match ev.array_len(*h) {
                                Some(n) => (0..n).map(|k| ev.array_int(*h, k).unwrap_or(0)).sum(),
                                None => ev.value(*h).is_some() as i64,
                            },
                        });
                    }
                }
                ControlFlow::Continue(())
            },
            &AtomicU64::new(0),
        )
        .unwrap();
        let s = t.elapsed().as_secs_f64();
        let c = (cpu() - c0) as f64 / 1e9;
        println!(
            "{n} events: wall {s:.3} s = {:.2} M ev/s; cpu {c:.3} s = {:.2} M ev/s (acc {acc})",
            n as f64 / s / 1e6,
            n as f64 / c / 1e6
        );
    }
}
