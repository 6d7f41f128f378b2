//! Guest traces of a generated KVM host: one CTF trace per VM, one stream per
//! vCPU, written while the host is simulated. A vCPU records guest kernel events
//! only while the host has it inside the guest (between the host's
//! `kvm_x86_entry` and `kvm_x86_exit` of its thread), so the guest's activity
//! fits the host's scheduling. The guest and the host share one clock.
//!
//! Hypercall synchronization (lttng-modules addons): the guest records
//! `vmsync_gh_guest` just before a `VMCALL` exit and the host `vmsync_gh_host`
//! right after it on the same vCPU thread; the host then records `vmsync_hg_host`
//! just before that thread's next entry and the guest `vmsync_hg_guest` first
//! thing after it. Each exchange carries the VM's `vm_uid` and a counter.

use std::path::{Path, PathBuf};

use super::classes::{comm, packetized_metadata, tsdl, Declared, Ev, Payload, TraceEnv};
use super::rng::Rng;
use super::stream::{PacketOut, PacketWriter, StreamWriter};
use super::GenError;

/// Guest threads per vCPU besides the idle task (each stays on its vCPU).
const THREADS_PER_VCPU: usize = 2;
/// The exit reason of a hypercall (VMX basic exit reason `VMCALL`).
pub(crate) const EXIT_VMCALL: u32 = 18;
/// Time between two synchronization exchanges of a VM (simulated ns).
pub(crate) const SYNC_PERIOD_NS: u64 = 20_000_000;
/// Distance of guest kernel events from the host's entry and exit (ns).
const MARGIN_NS: u64 = 1_000;

struct GuestCpu {
    /// Current guest TID (0: idle).
    current: i32,
    threads: [i32; THREADS_PER_VCPU],
    /// Time of the host's entry into this vCPU, while it is in the guest.
    entered: Option<u64>,
    /// Counter of a host-to-guest message to record at the next entry.
    hg_pending: Option<i32>,
    last_ts: u64,
}

/// One VM's trace under construction.
pub(crate) struct GuestTrace {
    pub dir: PathBuf,
    pub hostname: String,
    uuid: [u8; 16],
    clock_uuid: [u8; 16],
    pub vm_uid: i64,
    cnt: i32,
    pub next_sync: u64,
    streams: Vec<StreamWriter>,
    out: PacketOut,
    cpus: Vec<GuestCpu>,
    rng: Rng,
    p: Payload,
    pub counts: Vec<u64>,
    pub events: u64,
    pub stream_bytes: u64,
    pub first_ts: Option<u64>,
    pub last_ts: Option<u64>,
}

/// What was written for one guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestReport {
    pub dir: PathBuf,
    pub hostname: String,
    pub vm_uid: i64,
    pub events: u64,
    pub stream_bytes: u64,
}

fn uuid4(rng: &mut Rng) -> [u8; 16] {
    let mut u = [0u8; 16];
    for b in u.iter_mut() {
        *b = rng.next_u64() as u8;
    }
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

impl GuestTrace {
    /// A guest of `vcpus` vCPUs written into `dir` (created), its threads' TIDs
    /// starting at 1000.
    pub(crate) fn create(
        dir: &Path,
        hostname: String,
        vm: u32,
        vcpus: u32,
        seed: u64,
        start: u64,
    ) -> Result<Self, GenError> {
        let index_dir = dir.join("index");
        std::fs::create_dir_all(&index_dir).map_err(|source| GenError::Io {
            path: index_dir.clone(),
            source,
        })?;
        // Its own generator: the host's bytes do not depend on the guests.
        let mut rng = Rng::new(seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(vm as u64 + 1)));
        let uuid = uuid4(&mut rng);
        let clock_uuid = uuid4(&mut rng);
        let mut streams = Vec::new();
        let mut files = Vec::new();
        for cpu in 0..vcpus {
            let (s, f) = StreamWriter::create(dir, cpu, start)?;
            streams.push(s);
            files.push(f);
        }
        let cpus = (0..vcpus as usize)
            .map(|c| GuestCpu {
                current: 0,
                threads: std::array::from_fn(|i| (1000 + c * THREADS_PER_VCPU + i) as i32),
                entered: None,
                hg_pending: None,
                last_ts: start,
            })
            .collect();
        Ok(GuestTrace {
            dir: dir.to_path_buf(),
            hostname,
            uuid,
            clock_uuid,
            vm_uid: 0x5e47_0000 + vm as i64,
            cnt: 0,
            next_sync: start,
            streams,
            out: PacketOut {
                uuid,
                writer: PacketWriter::start(files)?,
            },
            cpus,
            rng,
            p: Payload::new(),
            counts: vec![0; super::classes::EVENT_CLASSES.len()],
            events: 0,
            stream_bytes: 0,
            first_ts: None,
            last_ts: None,
        })
    }

    fn emit(&mut self, vcpu: usize, ev: Ev, ts: u64) -> Result<(), GenError> {
        self.p.finish();
        let ts = ts.max(self.cpus[vcpu].last_ts);
        self.cpus[vcpu].last_ts = ts;
        let stream = &mut self.streams[vcpu];
        let before = stream.bytes();
        stream.emit(ev.id(), ts, &self.p.buf, &self.out)?;
        self.stream_bytes += stream.bytes() - before;
        self.counts[ev as usize] += 1;
        self.events += 1;
        self.first_ts = Some(self.first_ts.map_or(ts, |f| f.min(ts)));
        self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
        Ok(())
    }

    fn sync_event(&mut self, vcpu: usize, ev: Ev, cnt: i32, ts: u64) -> Result<(), GenError> {
        self.p.start(ev);
        self.p.i32(cnt).i64(self.vm_uid);
        self.emit(vcpu, ev, ts)
    }

    /// A new synchronization exchange: its counter.
    pub(crate) fn next_cnt(&mut self) -> i32 {
        self.cnt += 1;
        self.cnt
    }

    /// The host enters vCPU `vcpu` at `ts`; `hg`: a host-to-guest message just sent.
    pub(crate) fn entered(&mut self, vcpu: u32, ts: u64, hg: Option<i32>) {
        if let Some(c) = self.cpus.get_mut(vcpu as usize) {
            c.entered = Some(ts);
            if hg.is_some() {
                c.hg_pending = hg;
            }
        }
    }

    /// The host leaves vCPU `vcpu` at `exit`: the guest's events of the time it ran,
    /// ending with `vmsync_gh_guest` of counter `gh` when the exit is that hypercall.
    pub(crate) fn exited(&mut self, vcpu: u32, exit: u64, gh: Option<i32>) -> Result<(), GenError> {
        let v = vcpu as usize;
        let Some(entry) = self.cpus.get_mut(v).and_then(|c| c.entered.take()) else {
            return Ok(());
        };
        if let Some(cnt) = self.cpus[v].hg_pending.take() {
            self.sync_event(v, Ev::VmsyncHgGuest, cnt, entry + 1)?;
        }
        // Kernel events keep away from the entry and the exit by more than the
        // hypercall latencies, so that synchronizing the clocks (which then
        // differ by a fraction of those) keeps them inside the host's window.
        let mut ts = entry + MARGIN_NS;
        let end = exit.saturating_sub(MARGIN_NS);
        loop {
            ts += 50 + self.rng.below(600);
            if ts >= end {
                break;
            }
            self.guest_action(v, &mut ts, end)?;
        }
        if let Some(cnt) = gh {
            self.sync_event(v, Ev::VmsyncGhGuest, cnt, exit.saturating_sub(1))?;
        }
        Ok(())
    }

    /// One short burst of guest kernel activity on vCPU `v` from `ts` (before `end`).
    fn guest_action(&mut self, v: usize, ts: &mut u64, end: u64) -> Result<(), GenError> {
        let current = self.cpus[v].current;
        let r = self.rng.below(10);
        if current == 0 || r < 3 {
            // Switch to another of the vCPU's tasks (or to idle).
            let threads = self.cpus[v].threads;
            let next = if current != 0 && self.rng.chance(1, 3) {
                0
            } else {
                threads[self.rng.below(THREADS_PER_VCPU as u64) as usize]
            };
            if next == current {
                return Ok(());
            }
            let name = |tid: i32| {
                if tid == 0 {
                    comm(&format!("swapper/{v}"))
                } else {
                    comm(&format!("worker-{tid}"))
                }
            };
            self.p.start(Ev::SchedSwitch);
            self.p
                .comm(&name(current))
                .i32(current)
                .i32(20)
                .i64(if next == 0 { 1 } else { 0 })
                .comm(&name(next))
                .i32(next)
                .i32(20);
            self.emit(v, Ev::SchedSwitch, *ts)?;
            self.cpus[v].current = next;
            return Ok(());
        }
        let exit_ts = *ts + 20 + self.rng.below(200);
        if exit_ts >= end {
            return Ok(());
        }
        if r < 8 {
            // A system call that returns at once.
            self.p.start(Ev::EntryGetpid);
            self.emit(v, Ev::EntryGetpid, *ts)?;
            self.p.start(Ev::ExitGetpid);
            self.p.i64(current as i64);
            self.emit(v, Ev::ExitGetpid, exit_ts)?;
        } else {
            // The virtio interrupt of the guest's network card.
            self.p.start(Ev::IrqHandlerEntry);
            self.p.i32(11).str("virtio0-input.0");
            self.emit(v, Ev::IrqHandlerEntry, *ts)?;
            self.p.start(Ev::IrqHandlerExit);
            self.p.i32(11).i32(1);
            self.emit(v, Ev::IrqHandlerExit, exit_ts)?;
        }
        *ts = exit_ts;
        Ok(())
    }

    /// Closes the streams and writes the indexes and metadata.
    pub(crate) fn finish(self, end: u64, clock_offset: u64) -> Result<GuestReport, GenError> {
        let index_dir = self.dir.join("index");
        for s in self.streams {
            s.finish(end, &index_dir, &self.out)?;
        }
        self.out.writer.finish()?;
        let text = tsdl(&TraceEnv {
            hostname: &self.hostname,
            uuid: self.uuid,
            clock_uuid: self.clock_uuid,
            clock_offset,
            kvm: false,
            declared: Declared::Guest,
        });
        let metadata = packetized_metadata(&text, &self.uuid);
        let meta_path = self.dir.join("metadata");
        std::fs::write(&meta_path, &metadata).map_err(|source| GenError::Io {
            path: meta_path,
            source,
        })?;
        Ok(GuestReport {
            dir: self.dir,
            hostname: self.hostname,
            vm_uid: self.vm_uid,
            events: self.events,
            stream_bytes: self.stream_bytes,
        })
    }
}
