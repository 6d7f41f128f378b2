//! Synthetic LTTng kernel traces: [`generate`] writes a CTF 1.8 trace laid out as
//! lttng-modules 2.8 writes one (packetized metadata declaring compact event
//! headers, one `channel0_<cpu>` stream file per CPU in 256 KiB packets with
//! `packet_seq_num`, index files v1.0), filled with the activity of a simulated
//! kernel driven by a seeded PRNG: state dump, scheduling, system calls,
//! interrupts, soft IRQs and block I/O, consistent across CPUs and threads.
//! With `vms > 0` it is a KVM host: QEMU processes whose vCPU threads enter and
//! leave their guest (`kvm_x86_entry` / `kvm_x86_exit`) while they run, and every
//! event carries the `pid` and `tid` contexts the VM analyses need.
//!
//! [`generate_with_guests`] also writes one guest trace per VM (see `guest.rs`):
//! with the host trace, an experiment the VM analyses can follow across machines.
//!
//! The same [`GenConfig`] always produces the same bytes. The trace is written
//! into a temporary sibling directory and renamed into place when complete.

mod classes;
mod guest;
mod rng;
mod sim;
mod stream;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use classes::{packetized_metadata, tsdl, Declared, TraceEnv, EVENT_CLASSES};
pub use guest::GuestReport;
use guest::GuestTrace;
use rng::Rng;
use sim::Sim;
use stream::{PacketOut, PacketWriter, StreamWriter};

/// When to stop generating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenLimit {
    /// Exactly this many events.
    Events(u64),
    /// Stop at the first event that brings the stream files to this many bytes.
    Bytes(u64),
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    pub limit: GenLimit,
    /// CPUs, hence stream files (1..=1024).
    pub cpus: u32,
    /// User-space threads alive at any time (2..=1,000,000); forks and exits keep
    /// the count near this. Kernel threads (3 per CPU, plus a few) come on top.
    pub threads: u64,
    pub seed: u64,
    /// The `hostname` of the trace environment (printable ASCII, no `"` or `\`).
    pub hostname: String,
    /// Time of the first event, in ns since the Unix epoch.
    pub start_ns: u64,
    /// Replace `dir` if it exists and is an empty directory or a CTF trace
    /// (holds a `metadata` file). Anything else is never replaced.
    pub replace_existing: bool,
    /// KVM host mode: QEMU processes (virtual machines), 0..=256; 0 writes a plain
    /// kernel trace (the same bytes as before the mode existed).
    pub vms: u32,
    /// vCPU threads per QEMU process (1..=64), used when `vms > 0`.
    pub vcpus_per_vm: u32,
    /// Files held open by QEMU processes, listed by the state dump (fds from 3 on),
    /// as `(vm index, path)`: e.g. the disk images libvirt gives QEMU, which link
    /// a QEMU PID to its domain. Empty: the same bytes as without the option.
    pub qemu_files: Vec<(u32, String)>,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            limit: GenLimit::Events(1_000_000),
            cpus: 4,
            threads: 200,
            seed: 1,
            hostname: "sextant-gen".into(),
            start_ns: 1_700_000_000_000_000_000,
            replace_existing: false,
            vms: 0,
            vcpus_per_vm: 2,
            qemu_files: Vec::new(),
        }
    }
}

/// What was generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenReport {
    pub dir: PathBuf,
    /// Event records written.
    pub events: u64,
    /// Event records per event name (names with no record are left out).
    pub counts: BTreeMap<String, u64>,
    /// Bytes of all files (metadata, streams, indexes).
    pub bytes: u64,
    /// Bytes of the stream files alone.
    pub stream_bytes: u64,
    pub streams: u32,
    pub packets: u64,
    /// First and last event times, ns since the Unix epoch (None without events).
    pub first_event_ns: Option<u64>,
    pub last_event_ns: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("invalid generator setting `{field}`: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    #[error("{path}: already exists (allow replacing it to overwrite)")]
    OutputExists { path: PathBuf },
    #[error("{path}: exists and is neither empty nor a CTF trace directory; not replacing it")]
    NotATrace { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> GenError {
    GenError::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

impl GenConfig {
    pub fn validate(&self) -> Result<(), GenError> {
        match self.limit {
            GenLimit::Events(0) => return Err(invalid("events", "must be at least 1")),
            GenLimit::Bytes(n) if n < stream::PACKET_PREAMBLE as u64 => {
                return Err(invalid("size", "must be at least 84 bytes"))
            }
            _ => {}
        }
        if !(1..=1024).contains(&self.cpus) {
            return Err(invalid("cpus", format!("{} is not in 1..=1024", self.cpus)));
        }
        if !(2..=1_000_000).contains(&self.threads) {
            return Err(invalid(
                "threads",
                format!("{} is not in 2..=1000000", self.threads),
            ));
        }
        let h = &self.hostname;
        if h.is_empty()
            || h.len() > 255
            || !h
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
        {
            return Err(invalid(
                "hostname",
                format!("{h:?}: 1 to 255 printable ASCII characters, without '\"' or '\\'"),
            ));
        }
        if self.vms > 256 {
            return Err(invalid("vms", format!("{} is not in 0..=256", self.vms)));
        }
        if self.vms > 0 && !(1..=64).contains(&self.vcpus_per_vm) {
            return Err(invalid(
                "vcpus_per_vm",
                format!("{} is not in 1..=64", self.vcpus_per_vm),
            ));
        }
        for (vm, path) in &self.qemu_files {
            if *vm >= self.vms {
                return Err(invalid(
                    "qemu_files",
                    format!("VM index {vm} for {path:?}: there are {} VMs", self.vms),
                ));
            }
            if path.is_empty() || path.contains('\0') {
                return Err(invalid("qemu_files", format!("{path:?} is not a path")));
            }
        }
        if self.start_ns > 1 << 62 {
            return Err(invalid("start_ns", "later than year 2116"));
        }
        Ok(())
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> GenError + '_ {
    move |source| GenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// May `dir` be replaced? Only an empty directory or one holding a trace.
fn replaceable(dir: &Path) -> Result<bool, GenError> {
    if !dir.is_dir() {
        return Ok(false);
    }
    if dir.join("metadata").is_file() {
        return Ok(true);
    }
    Ok(std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .next()
        .is_none())
}

/// Writes a synthetic kernel trace into `dir` (which must not exist unless
/// `cfg.replace_existing`). `progress(done, total)` is called as packets fill,
/// in events or bytes according to `cfg.limit`.
pub fn generate(
    dir: &Path,
    cfg: &GenConfig,
    progress: Option<&dyn Fn(u64, u64)>,
) -> Result<GenReport, GenError> {
    generate_with_guests(dir, cfg, None, progress).map(|(r, _)| r)
}

/// Name (and hostname suffix) of the guest trace of VM `vm` (from 0).
pub fn guest_name(vm: u32) -> String {
    format!("guest{}", vm + 1)
}

/// As [`generate`], and with `guests_dir` (KVM host mode only) one guest trace per
/// VM in `guests_dir/guest<N>` (N from 1; hostname `<hostname>-guest<N>`), with
/// the hypercall synchronization events in the guests and the host. The limit
/// counts the host trace only.
pub fn generate_with_guests(
    dir: &Path,
    cfg: &GenConfig,
    guests_dir: Option<&Path>,
    progress: Option<&dyn Fn(u64, u64)>,
) -> Result<(GenReport, Vec<GuestReport>), GenError> {
    cfg.validate()?;
    if guests_dir.is_some() && cfg.vms == 0 {
        return Err(invalid("guests", "guest traces need VMs (vms > 0)"));
    }
    let guest_dirs: Vec<PathBuf> = match guests_dir {
        Some(g) => (0..cfg.vms).map(|vm| g.join(guest_name(vm))).collect(),
        None => Vec::new(),
    };
    for d in &guest_dirs {
        if d.exists() && !(cfg.replace_existing && replaceable(d)?) {
            return Err(if cfg.replace_existing {
                GenError::NotATrace { path: d.clone() }
            } else {
                GenError::OutputExists { path: d.clone() }
            });
        }
    }
    if dir.exists() {
        if !cfg.replace_existing {
            return Err(GenError::OutputExists {
                path: dir.to_path_buf(),
            });
        }
        if !replaceable(dir)? {
            return Err(GenError::NotATrace {
                path: dir.to_path_buf(),
            });
        }
    }
    let name = dir
        .file_name()
        .ok_or_else(|| invalid("dir", format!("{} has no final component", dir.display())))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = parent.join(format!(
        ".{}.gen-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    let guest_tmps: Vec<PathBuf> = guest_dirs
        .iter()
        .map(|d| {
            let name = d.file_name().unwrap_or_default().to_string_lossy();
            d.with_file_name(format!(".{name}.gen-{}.tmp", std::process::id()))
        })
        .collect();
    let result = write_trace(&tmp, cfg, &guest_tmps, progress);
    let (mut report, mut guests) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            for g in &guest_tmps {
                let _ = std::fs::remove_dir_all(g);
            }
            return Err(e);
        }
    };
    for ((g, tmp), report) in guest_dirs.iter().zip(&guest_tmps).zip(&mut guests) {
        if g.exists() {
            std::fs::remove_dir_all(g).map_err(io_err(g))?;
        }
        std::fs::rename(tmp, g).map_err(io_err(g))?;
        report.dir = g.clone();
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io_err(dir))?;
    report.dir = dir.to_path_buf();
    Ok((report, guests))
}

fn write_trace(
    dir: &Path,
    cfg: &GenConfig,
    guest_dirs: &[PathBuf],
    progress: Option<&dyn Fn(u64, u64)>,
) -> Result<(GenReport, Vec<GuestReport>), GenError> {
    let index_dir = dir.join("index");
    std::fs::create_dir_all(&index_dir).map_err(io_err(&index_dir))?;
    let mut rng = Rng::new(cfg.seed);
    let mut uuid = [0u8; 16];
    let mut clock_uuid = [0u8; 16];
    for (i, b) in uuid.iter_mut().chain(clock_uuid.iter_mut()).enumerate() {
        if i % 8 == 0 {
            rng.next_u64();
        }
        *b = rng.next_u64() as u8;
    }
    // Version-4 UUIDs, as LTTng makes.
    for u in [&mut uuid, &mut clock_uuid] {
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
    }
    // The monotonic clock counts from boot; the trace starts a while after it.
    let boot_uptime: u64 = 4_242_000_000_000;
    let start = boot_uptime.min(cfg.start_ns);
    let clock_offset = cfg.start_ns - start;

    let mut streams = Vec::with_capacity(cfg.cpus as usize);
    let mut files = Vec::with_capacity(cfg.cpus as usize);
    for cpu in 0..cfg.cpus {
        let (stream, file) = StreamWriter::create(dir, cpu, start)?;
        streams.push(stream);
        files.push(file);
    }
    let out = PacketOut {
        uuid,
        writer: PacketWriter::start(files)?,
    };
    let mut guests = Vec::new();
    for (vm, g) in guest_dirs.iter().enumerate() {
        if let Some(parent) = g.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        if g.exists() {
            std::fs::remove_dir_all(g).map_err(io_err(g))?;
        }
        let hostname = format!("{}-{}", cfg.hostname, guest_name(vm as u32));
        guests.push(GuestTrace::create(
            g,
            hostname,
            vm as u32,
            cfg.vcpus_per_vm,
            cfg.seed,
            start,
        )?);
    }
    let with_guests = !guests.is_empty();
    let mut sim = Sim::new(
        rng,
        start,
        cfg.cpus,
        cfg.threads,
        streams,
        out,
        cfg.limit,
        progress,
        (cfg.vms, cfg.vcpus_per_vm),
        guests,
    );
    sim.qemu_files.clone_from(&cfg.qemu_files);
    let (totals, streams, out, guests) = sim.run()?;
    let guests = guests
        .into_iter()
        .map(|g| g.finish(totals.end_ts, clock_offset))
        .collect::<Result<Vec<_>, _>>()?;
    let mut stream_bytes = 0;
    let mut index_bytes = 0;
    let mut packets = 0;
    for s in streams {
        let (b, i, p) = s.finish(totals.end_ts, &index_dir, &out)?;
        stream_bytes += b;
        index_bytes += i;
        packets += p;
    }
    out.writer.finish()?;
    let text = tsdl(&TraceEnv {
        hostname: &cfg.hostname,
        uuid,
        clock_uuid,
        clock_offset,
        kvm: cfg.vms > 0,
        declared: match (cfg.vms > 0, with_guests) {
            (false, _) => Declared::Kernel,
            (true, false) => Declared::KvmHost,
            (true, true) => Declared::KvmHostSync,
        },
    });
    let metadata = packetized_metadata(&text, &uuid);
    let meta_path = dir.join("metadata");
    std::fs::write(&meta_path, &metadata).map_err(io_err(&meta_path))?;
    if let Some(progress) = progress {
        let total = match cfg.limit {
            GenLimit::Events(n) => n.min(totals.events),
            GenLimit::Bytes(n) => n.min(stream_bytes),
        };
        progress(total, total);
    }
    let counts = EVENT_CLASSES
        .iter()
        .zip(&totals.counts)
        .filter(|(_, &n)| n > 0)
        .map(|(c, &n)| (c.name.to_string(), n))
        .collect();
    Ok((
        GenReport {
            dir: dir.to_path_buf(),
            events: totals.events,
            counts,
            bytes: stream_bytes + index_bytes + metadata.len() as u64,
            stream_bytes,
            streams: cfg.cpus,
            packets,
            first_event_ns: totals.first_ts.map(|t| t + clock_offset),
            last_event_ns: totals.last_ts.map(|t| t + clock_offset),
        },
        guests,
    ))
}
