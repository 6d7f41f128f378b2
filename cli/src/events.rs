//! `sextant events` (print events, close to babeltrace2's text) and `sextant stats`
//! (events per name, total, lost, streams, packets, time range).

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use sextant_trace::{ClassId, Event, Experiment, Value};

#[derive(Args)]
pub struct EventsArgs {
    /// CTF trace directories or LTTng session directories (read as one experiment)
    #[arg(required = true)]
    traces: Vec<PathBuf>,
    /// First time to show (ns since the epoch)
    #[arg(long, value_name = "NS")]
    begin: Option<i64>,
    /// Last time to show (ns since the epoch)
    #[arg(long, value_name = "NS")]
    end: Option<i64>,
    /// Stop after this many events
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// One JSON object per line instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct StatsArgs {
    /// CTF trace directories or LTTng session directories (read as one experiment)
    #[arg(required = true)]
    traces: Vec<PathBuf>,
    /// Print machine-readable JSON
    #[arg(long)]
    json: bool,
}

fn open(paths: &[PathBuf]) -> Result<Experiment> {
    Experiment::open(paths).with_context(|| {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        format!("cannot open {}", shown.join(" "))
    })
}

/// Tells on stderr what could not be read.
fn report_skipped(exp: &Experiment) {
    for w in exp.warnings() {
        eprintln!("warning: {w}");
    }
}

pub fn events(a: EventsArgs) -> Result<()> {
    let mut exp = open(&a.traces)?;
    exp.set_time_range(a.begin, a.end);
    let names: Vec<String> = (0..exp.class_count())
        .map(|c| exp.class_name(ClassId(c)).to_string())
        .collect();
    let hosts: Vec<String> = exp
        .traces()
        .iter()
        .map(|t| t.env.get("hostname").cloned().unwrap_or_default())
        .collect();
    let trace_names: Vec<String> = exp.traces().iter().map(|t| t.name.clone()).collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut shown = 0u64;
    let mut prev: Option<i64> = None;
    let mut io_err: Option<std::io::Error> = None;
    let mut line = String::new();
    exp.for_each(
        &mut |ev| {
            if a.limit.is_some_and(|l| shown >= l) {
                return ControlFlow::Break(());
            }
            line.clear();
            let name = &names[ev.class().0 as usize];
            if a.json {
                line.push_str(&event_json(ev, name, &trace_names).to_string());
            } else {
                text_line(&mut line, ev, name, &hosts[ev.trace_index()], prev);
            }
            line.push('\n');
            prev = Some(ev.timestamp());
            shown += 1;
            match out.write_all(line.as_bytes()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    io_err = Some(e);
                    ControlFlow::Break(())
                }
            }
        },
        &AtomicU64::new(0),
    )?;
    if let Some(e) = io_err {
        return Err(e.into());
    }
    out.flush()?;
    report_skipped(&exp);
    Ok(())
}

fn event_json(ev: &Event<'_>, name: &str, trace_names: &[String]) -> serde_json::Value {
    let obj = |v: Vec<(String, Value<'_>)>| {
        serde_json::Value::Object(v.into_iter().map(|(k, v)| (k, v.to_json())).collect())
    };
    let (sc, ec, fields) = ev.babeltrace_fields();
    let mut o = json!({
        "name": name,
        "ns": ev.timestamp(),
        "cycles": ev.cycles(),
        "trace": trace_names[ev.trace_index()],
        "stream": ev.stream_name(),
        "cpu_id": ev.cpu(),
    });
    if let Some((count, duration)) = ev.lost() {
        o["fields"] = json!({"Lost events": count, "duration": duration});
        return o;
    }
    if !sc.is_empty() {
        o["stream_context"] = obj(sc);
    }
    if !ec.is_empty() {
        o["event_context"] = obj(ec);
    }
    o["fields"] = obj(fields);
    o
}

/// `[HH:MM:SS.nnnnnnnnn] (+s.nnnnnnnnn) host name: { cpu_id = N }, { ... }` (UTC).
fn text_line(line: &mut String, ev: &Event<'_>, name: &str, host: &str, prev: Option<i64>) {
    use std::fmt::Write as _;
    let ns = ev.timestamp();
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let _ = write!(
        line,
        "[{:02}:{:02}:{:02}.{:09}] ",
        secs.rem_euclid(86_400) / 3600,
        secs.rem_euclid(3600) / 60,
        secs.rem_euclid(60),
        frac
    );
    match prev {
        Some(p) => {
            let d = ns - p;
            let _ = write!(
                line,
                "(+{}.{:09}) ",
                d.div_euclid(1_000_000_000),
                d.rem_euclid(1_000_000_000)
            );
        }
        None => line.push_str("(+?.?????????) "),
    }
    if !host.is_empty() {
        let _ = write!(line, "{host} ");
    }
    let _ = write!(line, "{name}: ");
    if let Some(cpu) = ev.cpu() {
        let _ = write!(line, "{{ cpu_id = {cpu} }}, ");
    }
    if let Some((count, duration)) = ev.lost() {
        let _ = write!(line, "{{ Lost events = {count}, duration = {duration} }}");
        return;
    }
    let (sc, ec, fields) = ev.babeltrace_fields();
    for group in [sc, ec] {
        if !group.is_empty() {
            write_struct(line, &group);
            line.push_str(", ");
        }
    }
    write_struct(line, &fields);
}

fn write_struct(line: &mut String, fields: &[(String, Value<'_>)]) {
    if fields.is_empty() {
        line.push_str("{ }");
        return;
    }
    line.push_str("{ ");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        line.push_str(k);
        line.push_str(" = ");
        write_value(line, v);
    }
    line.push_str(" }");
}

fn write_value(line: &mut String, v: &Value<'_>) {
    use std::fmt::Write as _;
    let _ = match v {
        Value::Int(i) => write!(line, "{i}"),
        Value::UInt(u) => write!(line, "{u}"),
        Value::Hex(u) => write!(line, "0x{u:X}"),
        Value::Float(f) => write!(line, "{f}"),
        Value::Str(s) => write!(line, "{s:?}"),
        Value::Enum(v, signed, labels) => {
            let shown = if *signed {
                v.to_string()
            } else {
                (*v as u64).to_string()
            };
            match labels.as_slice() {
                [] => write!(line, "( <unknown> : container = {shown} )"),
                [l] => write!(line, "( \"{l}\" : container = {shown} )"),
                ls => write!(
                    line,
                    "( {{ {} }} : container = {shown} )",
                    ls.iter()
                        .map(|l| format!("\"{l}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        Value::Array(items) if items.is_empty() => {
            line.push_str("[ ]");
            Ok(())
        }
        Value::Array(items) => {
            line.push_str("[ ");
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    line.push_str(", ");
                }
                let _ = write!(line, "[{i}] = ");
                write_value(line, it);
            }
            line.push_str(" ]");
            Ok(())
        }
        Value::Struct(f) => {
            write_struct(line, f);
            Ok(())
        }
        // babeltrace2 prints the selected option's value only, braced.
        Value::Variant(_, inner) => {
            line.push_str("{ ");
            write_value(line, inner);
            line.push_str(" }");
            Ok(())
        }
        Value::Bytes(b) => {
            line.push_str("[ ");
            for (i, x) in b.iter().enumerate() {
                if i > 0 {
                    line.push_str(", ");
                }
                let _ = write!(line, "[{i}] = {x}");
            }
            line.push_str(" ]");
            Ok(())
        }
    };
}

pub fn stats(a: StatsArgs) -> Result<()> {
    let mut exp = open(&a.traces)?;
    // Counting needs no time order: every core reads its own streams.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let s = sextant_trace::stats::compute_parallel(&mut exp, threads, &AtomicU64::new(0))?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let traces: Vec<serde_json::Value> = exp
            .traces()
            .iter()
            .map(|t| json!({"name": t.name, "path": t.path, "domain": t.domain, "host_id": t.host_id}))
            .collect();
        let v = json!({
            "traces": traces,
            "events": s.per_name,
            "total": s.total,
            "lost_events": s.lost_events,
            "lost_event_records": s.lost_records,
            "lost_packets": s.lost_packets,
            "packet_gaps": s.packet_gaps.iter().map(|(stream, g)| json!({
                "stream": stream, "packets": g.count, "offset": g.offset,
                "begin_ns": g.begin_ns, "end_ns": g.end_ns,
            })).collect::<Vec<_>>(),
            "streams": s.streams,
            "packets": s.packets,
            "first_event_ns": s.first_ns,
            "last_event_ns": s.last_ns,
            "warnings": s.warnings,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for t in exp.traces() {
            let domain = if t.domain.is_empty() { "-" } else { &t.domain };
            writeln!(out, "# trace: {} ({domain}) {}", t.name, t.path.display())?;
        }
        writeln!(out, "# total_events: {}", s.total)?;
        writeln!(
            out,
            "# lost_events: {} (in {} lost-event records)",
            s.lost_events, s.lost_records
        )?;
        if s.lost_packets > 0 {
            // Not in lost_events: the tracer cannot tell how many events they held.
            writeln!(out, "# lost_packets: {}", s.lost_packets)?;
            let ns = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
            for (stream, g) in &s.packet_gaps {
                writeln!(
                    out,
                    "#   {} packet(s) missing from {stream} between {} and {} ns",
                    g.count,
                    ns(g.begin_ns),
                    ns(g.end_ns)
                )?;
            }
        }
        writeln!(out, "# streams: {}", s.streams)?;
        writeln!(out, "# packets: {}", s.packets)?;
        let ns = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        writeln!(out, "# first_event_ns: {}", ns(s.first_ns))?;
        writeln!(out, "# last_event_ns: {}", ns(s.last_ns))?;
        for (name, n) in &s.per_name {
            writeln!(out, "{n}\t{name}")?;
        }
    }
    report_skipped(&exp);
    Ok(())
}
