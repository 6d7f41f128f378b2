//! `sextant demo`: the main job end to end on data Sextant makes itself.
//!
//! It writes a small Linux-kernel-like state-change log (CPUs running threads,
//! threads entering system calls), replays it into a Trace Compass `.ht` file,
//! and queries it: the same path a state provider takes, without a trace.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use sextant_benches::Rng;
use sht::changelog::{ChangeLogReader, ChangeLogWriter, LogHeader, Op};
use sht::{HistoryTreeReader, StateSystem, StateSystemQuerier, StateValue};

use crate::format;

#[derive(Args)]
pub struct DemoArgs {
    /// Where to write the sample files (default: a `sextant-demo` directory in the
    /// system's temporary directory)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// How many scheduling events to simulate
    #[arg(long, default_value_t = 20_000)]
    events: u64,
}

/// Status values of the kernel analysis (Trace Compass's numbering).
const CPU_IDLE: i32 = 0;
const CPU_RUN_USERMODE: i32 = 1;
const CPU_RUN_SYSCALL: i32 = 2;

fn path(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

/// A toy scheduler: 4 CPUs, 24 threads, context switches and system calls.
fn write_sample_log(file: &std::path::Path, events: u64) -> Result<(i64, i64)> {
    let start = 1_700_000_000_000_000_000i64;
    let mut rng = Rng::new(7);
    let mut ops = Vec::new();
    let mut t = start;
    let names = [
        "bash",
        "sshd",
        "nova-compute",
        "qemu-kvm",
        "ovs-vswitchd",
        "kworker/0:1",
    ];
    let mut running = [0i64; 4];
    for tid in 1000..1024 {
        let tid_s = tid.to_string();
        ops.push(Op::Modify {
            t,
            path: path(&["Threads", &tid_s, "Exec_name"]),
            value: StateValue::string(names[(tid % 6) as usize]),
        });
        ops.push(Op::Modify {
            t,
            path: path(&["Threads", &tid_s, "PPID"]),
            value: StateValue::Int(1),
        });
    }
    let syscalls = ["read", "write", "epoll_wait", "ioctl", "futex"];
    for _ in 0..events {
        t += 1 + rng.below(50_000) as i64;
        let cpu = rng.below(4) as usize;
        let cpu_s = cpu.to_string();
        if rng.below(3) == 0 {
            // A system call on the running thread, or nothing when idle.
            if running[cpu] != 0 {
                let tid_s = running[cpu].to_string();
                let call = syscalls[rng.below(5) as usize];
                ops.push(Op::Modify {
                    t,
                    path: path(&["Threads", &tid_s, "System_call"]),
                    value: StateValue::string(call),
                });
                ops.push(Op::Modify {
                    t,
                    path: path(&["CPUs", &cpu_s, "Status"]),
                    value: StateValue::Int(CPU_RUN_SYSCALL),
                });
                let end = t + 1 + rng.below(5_000) as i64;
                ops.push(Op::Remove {
                    t: end,
                    path: path(&["Threads", &tid_s, "System_call"]),
                });
                ops.push(Op::Modify {
                    t: end,
                    path: path(&["CPUs", &cpu_s, "Status"]),
                    value: StateValue::Int(CPU_RUN_USERMODE),
                });
                t = end;
            }
            continue;
        }
        // A context switch: idle (0) or one of the threads.
        let next = if rng.below(5) == 0 {
            0
        } else {
            1000 + rng.below(24) as i64
        };
        running[cpu] = next;
        ops.push(Op::Modify {
            t,
            path: path(&["CPUs", &cpu_s, "Current_thread"]),
            value: StateValue::Int(next as i32),
        });
        ops.push(Op::Modify {
            t,
            path: path(&["CPUs", &cpu_s, "Status"]),
            value: StateValue::Int(if next == 0 {
                CPU_IDLE
            } else {
                CPU_RUN_USERMODE
            }),
        });
    }
    let end = t;
    let header = LogHeader {
        start,
        end,
        provider_version: 1,
        block_size: 65536,
        max_children: 50,
    };
    let out =
        std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?;
    let mut w = ChangeLogWriter::new(std::io::BufWriter::new(out), &header)?;
    for op in &ops {
        w.write(op)?;
    }
    w.into_inner().flush()?;
    Ok((start, end))
}

pub fn run(args: DemoArgs) -> Result<()> {
    let dir = args
        .dir
        .unwrap_or_else(|| std::env::temp_dir().join("sextant-demo"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = dir.join("changes.jsonl");
    let ht = dir.join("demo.ht");

    let (start, end) = write_sample_log(&log, args.events)?;
    let log_size = std::fs::metadata(&log)?.len();
    println!(
        "1. sample   {} ({}): a 4-CPU kernel-like state-change log",
        log.display(),
        format::bytes(log_size)
    );

    let began = Instant::now();
    let mut reader = ChangeLogReader::open(&log)?;
    let mut ss = StateSystem::create_history_tree(&ht, reader.header().ht_config())?;
    let ops = reader.replay(&mut ss)?;
    let elapsed = began.elapsed();
    let file = HistoryTreeReader::open(&ht, None)?;
    let info = sht::dump::file_info(&file)?;
    println!(
        "2. build    {} ({}): {ops} changes, {} attributes, {} nodes in {}",
        ht.display(),
        format::bytes(info.file_size),
        info.attributes,
        info.header.node_count,
        format::duration(elapsed)
    );

    let ss = StateSystem::open(&ht, None)?;
    let middle = start + (end - start) / 2;
    println!("3. query    state of the CPUs at t = {middle} (the middle of the history):");
    for cpu in ss.quarks(&["CPUs", "*"])? {
        let name = ss.attributes().name(cpu)?;
        let get = |attr: &str| -> Result<StateValue> {
            let q = ss.attributes().quark(cpu, &[attr])?;
            Ok(ss.query_single(middle, q)?.value)
        };
        let thread = get("Current_thread")?;
        let status = get("Status")?;
        let exec = match thread.as_int() {
            Some(tid) if tid != 0 => ss
                .quark(&["Threads", &tid.to_string(), "Exec_name"])
                .and_then(|q| ss.query_single(middle, q))
                .map(|i| i.value.as_str().unwrap_or("?").to_string())
                .unwrap_or_else(|_| "?".into()),
            _ => "idle".into(),
        };
        println!("             CPU {name}: thread {thread} ({exec}), status {status}");
    }
    let cpu0 = ss.quark(&["CPUs", "0", "Current_thread"])?;
    let window = (end - start) / 1000;
    let switches = ss.query_2d(&[cpu0], middle, middle + window)?;
    println!(
        "             CPU 0 ran {} threads in the next {} ns (2D query)",
        switches.len(),
        window
    );
    println!("Try: sextant info {0} | sextant query {0} --at {middle} --path 'CPUs/*/Status' | sextant dump {0}", ht.display());
    Ok(())
}
