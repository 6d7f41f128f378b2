//! The kernel model behind the generator: CPUs, run queues, processes and
//! threads, system calls, interrupts and block requests, advanced by one global
//! clock so that every event is emitted in time order and the per-CPU and
//! per-thread state the events imply stays consistent:
//!
//! - a thread is current on at most one CPU, and only the thread a CPU's last
//!   `sched_switch` switched in is the one leaving it at the next;
//! - every `syscall_exit_X` of a thread follows its `syscall_entry_X` (a forked
//!   child's first event is the `syscall_exit_clone` returning 0, as on Linux;
//!   `exit`/`exit_group` never return);
//! - interrupt handlers and soft IRQs are properly nested on their CPU;
//! - TIDs are never reused; parents, PIDs and thread groups agree everywhere.
//!
//! - in KVM host mode, a vCPU thread is in its guest only while it is current on
//!   a CPU: `kvm_x86_entry` and `kvm_x86_exit` alternate per vCPU thread, and any
//!   host work on that CPU (interrupt, timer, scheduling) follows an exit.
//!
//! Each action is a short burst of events on one CPU, so any prefix of the event
//! sequence is itself consistent: the generator can stop at an exact count.

use std::collections::VecDeque;

use super::classes::{comm, Ev, Payload};
use super::guest::{GuestTrace, EXIT_VMCALL, SYNC_PERIOD_NS};
use super::rng::Rng;
use super::stream::{PacketOut, StreamWriter};
use super::{GenError, GenLimit};

const TASK_RUNNING: i64 = 0;
const TASK_INTERRUPTIBLE: i64 = 1;
const TASK_UNINTERRUPTIBLE: i64 = 2;
const TASK_DEAD: i64 = 64;
/// The initial PID namespace's inode number on Linux.
const NS_INUM: u32 = 4_026_531_836;
/// `MKDEV(8, 0)`, the kernel-internal dev_t of `sda`.
const SDA: u32 = 8 << 20;
const LOCAL_TIMER_VECTOR: i32 = 239;
const TIMER_SOFTIRQ: u32 = 1;
const NET_RX_SOFTIRQ: u32 = 3;
const BLOCK_SOFTIRQ: u32 = 4;
const SCHED_SOFTIRQ: u32 = 7;
const RCU_SOFTIRQ: u32 = 9;
const RWBS_WRITE: u32 = 1;
const RWBS_READ: u32 = 4;
const RWBS_SYNC: u32 = 32;
/// lttng statedump: `LTTNG_WAIT_CPU`, `LTTNG_WAIT`, `LTTNG_MODE_UNKNOWN`.
const STATUS_WAIT_CPU: i32 = 2;
const STATUS_WAIT: i32 = 5;
const MODE_UNKNOWN: i32 = 5;
const CLONE_THREAD_FLAGS: u64 = 0x003d_0f00;
const CLONE_PROCESS_FLAGS: u64 = 0x0120_0011;
const FUTEX_WAIT_PRIVATE: i32 = 128;
const FUTEX_WAKE_PRIVATE: i32 = 129;
/// No fork past this TID (Linux's default `pid_max` on 64-bit is 4194304).
const TID_LIMIT: i32 = 4_000_000;
const MAX_THREADS_PER_PROCESS: usize = 64;
/// `KVM_RUN`, the ioctl in which a vCPU thread runs its guest.
const KVM_RUN: u32 = 0xae80;
/// The file descriptor QEMU holds its vCPU on.
const VCPU_FD: u32 = 12;
/// VMX basic exit reasons.
const EXIT_EXTERNAL_INTERRUPT: u32 = 1;
const EXIT_HLT: u32 = 12;
const EXIT_IO_INSTRUCTION: u32 = 30;
const EXIT_EPT_MISCONFIG: u32 = 49;
/// Exit reasons a vCPU's own work causes, with relative frequencies like those
/// `perf kvm stat` shows for an I/O-doing Linux guest.
const GUEST_EXITS: [(u32, u32); 9] = [
    (32, 26),                 // MSR_WRITE (x2APIC timer, ICR)
    (EXIT_EPT_MISCONFIG, 14), // MMIO (virtio notify): back to QEMU
    (EXIT_HLT, 16),           // idle guest: the vCPU thread blocks
    (48, 10),                 // EPT_VIOLATION
    (EXIT_IO_INSTRUCTION, 6), // port I/O: back to QEMU
    (52, 10),                 // PREEMPTION_TIMER
    (40, 5),                  // PAUSE (spinning guest)
    (10, 3),                  // CPUID
    (EXIT_EXTERNAL_INTERRUPT, 10),
];

const DEVICES: [(i32, &str); 3] = [(1, "i8042"), (27, "ahci"), (28, "eth0")];
const PROGRAMS: [&str; 10] = [
    "/usr/bin/ls",
    "/usr/bin/cat",
    "/usr/bin/grep",
    "/usr/bin/python3",
    "/usr/bin/gcc",
    "/usr/bin/make",
    "/bin/sh",
    "/usr/bin/tar",
    "/usr/bin/git",
    "/usr/sbin/nginx",
];
const FILES: [&str; 8] = [
    "/etc/ld.so.cache",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/proc/self/stat",
    "/var/log/syslog",
    "/home/user/data.bin",
    "/usr/share/zoneinfo/UTC",
    "/tmp/build.o",
    "/dev/urandom",
];
/// Initial user processes: name and how many threads at most.
const PROCESSES: [(&str, u64); 14] = [
    ("systemd-journal", 1),
    ("dbus-daemon", 1),
    ("sshd", 1),
    ("bash", 1),
    ("nginx", 4),
    ("postgres", 6),
    ("java", 24),
    ("python3", 3),
    ("chrome", 16),
    ("Xorg", 2),
    ("pulseaudio", 3),
    ("containerd", 12),
    ("node", 8),
    ("qemu-system-x86", 6),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Run {
    Running(u32),
    Runnable(u32),
    Blocked,
    Dead,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sys {
    Read,
    Futex,
    Poll,
    EpollWait,
    Recvfrom,
    Nanosleep,
    Clone,
}

/// A system call a thread is blocked in (or, for a new child, returning from).
#[derive(Clone, Copy, Debug)]
struct Pending {
    sys: Sys,
    ret: i64,
    arg: u64,
}

struct Thread {
    tid: i32,
    process: u32,
    comm: [u8; 16],
    prio: i32,
    kernel: bool,
    run: Run,
    pending: Option<Pending>,
    last_cpu: u32,
    /// QEMU vCPU threads only.
    vcpu: Option<Vcpu>,
}

/// Where a vCPU thread is: QEMU user space, the host kernel inside `KVM_RUN`, or
/// the guest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum VcpuMode {
    User,
    Kernel,
    Guest,
}

#[derive(Clone, Copy, Debug)]
struct Vcpu {
    /// The VM (QEMU process number, from 0) and the vCPU number in it.
    vm: u32,
    id: u32,
    mode: VcpuMode,
    /// Counter of a `vmsync_hg_host` to record before the next entry (guest traces).
    hg: Option<i32>,
}

struct Process {
    pid: i32,
    ppid: i32,
    threads: Vec<u32>,
    futex_waiters: Vec<u32>,
    /// A forked child that will exec a program when it first gets to run.
    exec_pending: bool,
    /// The tracer's and init's processes never exit.
    immortal: bool,
    /// Base of this process's user-space addresses (futex words, buffers).
    base: u64,
}

struct Cpu {
    current: Option<u32>,
    queue: VecDeque<u32>,
    swapper: [u8; 16],
}

struct Request {
    sector: u64,
    nr_sector: u32,
    rwbs: u32,
    waiter: Option<u32>,
}

struct Zombie {
    tid: i32,
    comm: [u8; 16],
    prio: i32,
}

/// Counters the caller turns into a report.
pub(crate) struct SimTotals {
    pub counts: Vec<u64>,
    pub events: u64,
    pub first_ts: Option<u64>,
    pub last_ts: Option<u64>,
    pub end_ts: u64,
}

pub(crate) struct Sim<'a> {
    rng: Rng,
    now: u64,
    action_gap: u64,
    cpus: Vec<Cpu>,
    threads: Vec<Thread>,
    free_threads: Vec<u32>,
    processes: Vec<Process>,
    free_processes: Vec<u32>,
    next_tid: i32,
    user_threads: u64,
    target_threads: u64,
    sleepers: Vec<u32>,
    net_waiters: Vec<u32>,
    disk: VecDeque<Request>,
    next_sector: u64,
    zombies: Vec<Zombie>,
    streams: Vec<StreamWriter>,
    out: PacketOut,
    p: Payload,
    counts: Vec<u64>,
    events: u64,
    bytes: u64,
    first_ts: Option<u64>,
    last_ts: Option<u64>,
    limit: GenLimit,
    done: bool,
    progress: Option<&'a dyn Fn(u64, u64)>,
    /// KVM host mode: QEMU processes and vCPUs each; events carry pid/tid contexts.
    vms: u32,
    vcpus_per_vm: u32,
    /// Context and payload of one event, in KVM host mode.
    record: Vec<u8>,
    /// Guest traces written along (one per VM), or none.
    guests: Vec<GuestTrace>,
    /// PIDs of the QEMU processes, by VM index.
    qemu_pids: Vec<i32>,
    /// `(vm index, path)`: extra files the state dump lists for QEMU processes.
    pub(crate) qemu_files: Vec<(u32, String)>,
}

impl<'a> Sim<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        rng: Rng,
        start: u64,
        cpus: u32,
        threads: u64,
        streams: Vec<StreamWriter>,
        out: PacketOut,
        limit: GenLimit,
        progress: Option<&'a dyn Fn(u64, u64)>,
        (vms, vcpus_per_vm): (u32, u32),
        guests: Vec<GuestTrace>,
    ) -> Self {
        let mut sim = Sim {
            rng,
            now: start,
            // About one action per CPU every 4 µs, whatever the CPU count.
            action_gap: (8000 / cpus as u64).max(2),
            cpus: (0..cpus)
                .map(|c| Cpu {
                    current: None,
                    queue: VecDeque::new(),
                    swapper: comm(&format!("swapper/{c}")),
                })
                .collect(),
            threads: Vec::new(),
            free_threads: Vec::new(),
            processes: Vec::new(),
            free_processes: Vec::new(),
            next_tid: 2,
            user_threads: 0,
            target_threads: threads,
            sleepers: Vec::new(),
            net_waiters: Vec::new(),
            disk: VecDeque::new(),
            next_sector: 2048,
            zombies: Vec::new(),
            streams,
            out,
            p: Payload::new(),
            counts: vec![0; super::classes::EVENT_CLASSES.len()],
            events: 0,
            bytes: 0,
            first_ts: None,
            last_ts: None,
            limit,
            done: false,
            progress,
            vms,
            vcpus_per_vm,
            record: Vec::new(),
            guests,
            qemu_pids: Vec::new(),
            qemu_files: Vec::new(),
        };
        sim.populate();
        sim
    }

    // ---- the world at the start of the trace ------------------------------------

    fn new_process(&mut self, pid: i32, ppid: i32) -> u32 {
        let base = 0x5500_0000_0000 + self.rng.below(0x10_0000) * 0x1000;
        let process = Process {
            pid,
            ppid,
            threads: Vec::new(),
            futex_waiters: Vec::new(),
            exec_pending: false,
            immortal: false,
            base,
        };
        if let Some(i) = self.free_processes.pop() {
            self.processes[i as usize] = process;
            i
        } else {
            self.processes.push(process);
            (self.processes.len() - 1) as u32
        }
    }

    fn new_thread(&mut self, tid: i32, process: u32, name: [u8; 16], kernel: bool) -> u32 {
        let thread = Thread {
            tid,
            process,
            comm: name,
            prio: 20,
            kernel,
            run: Run::Blocked,
            pending: None,
            last_cpu: 0,
            vcpu: None,
        };
        let slot = if let Some(i) = self.free_threads.pop() {
            self.threads[i as usize] = thread;
            i
        } else {
            self.threads.push(thread);
            (self.threads.len() - 1) as u32
        };
        self.processes[process as usize].threads.push(slot);
        if !kernel {
            self.user_threads += 1;
        }
        slot
    }

    fn populate(&mut self) {
        // init (user), then the kernel threads, then user processes.
        let init = self.new_process(1, 0);
        self.processes[init as usize].immortal = true;
        self.new_thread(1, init, comm("systemd"), false);
        let kthreadd = self.new_process(2, 0);
        let kt = self.new_thread(2, kthreadd, comm("kthreadd"), true);
        self.sleepers.push(kt);
        self.next_tid = 3;
        let ncpu = self.cpus.len();
        let mut kernel_names: Vec<String> = Vec::new();
        for c in 0..ncpu {
            kernel_names.push(format!("ksoftirqd/{c}"));
            kernel_names.push(format!("kworker/{c}:0"));
            kernel_names.push(format!("migration/{c}"));
        }
        kernel_names.extend(["rcu_sched".into(), "kswapd0".into(), "jbd2/sda1-8".into()]);
        for name in kernel_names {
            let tid = self.next_tid;
            self.next_tid += 1;
            let p = self.new_process(tid, 2);
            let t = self.new_thread(tid, p, comm(&name), true);
            self.sleepers.push(t);
        }
        // User space starts at TID 300; the tracer's session daemon comes first.
        self.next_tid = 300;
        let sessiond_tid = self.next_tid;
        self.next_tid += 1;
        let sessiond = self.new_process(sessiond_tid, 1);
        self.processes[sessiond as usize].immortal = true;
        let sessiond_thread =
            self.new_thread(sessiond_tid, sessiond, comm("lttng-sessiond"), false);
        let mut k = 0;
        while self.user_threads < self.target_threads {
            let (name, max_threads) = PROCESSES[k % PROCESSES.len()];
            k += 1;
            self.next_tid += self.rng.below(8) as i32;
            let pid = self.next_tid;
            let process = self.new_process(pid, 1);
            let n = self
                .rng
                .range(1, max_threads)
                .min(self.target_threads - self.user_threads);
            for _ in 0..n {
                let tid = self.next_tid;
                self.next_tid += 1;
                let t = self.new_thread(tid, process, comm(name), false);
                self.sleepers.push(t);
            }
        }
        // KVM host mode: QEMU processes, a main thread and vCPU threads each, in
        // QEMU at the start (about to call KVM_RUN). They never exit.
        for vm in 0..self.vms {
            let pid = self.next_tid;
            self.next_tid += 1;
            let process = self.new_process(pid, 1);
            self.processes[process as usize].immortal = true;
            self.qemu_pids.push(pid);
            let main = self.new_thread(pid, process, comm("qemu-system-x86"), false);
            self.sleepers.push(main);
            for id in 0..self.vcpus_per_vm {
                let tid = self.next_tid;
                self.next_tid += 1;
                let t = self.new_thread(tid, process, comm(&format!("CPU {id}/KVM")), false);
                self.threads[t as usize].vcpu = Some(Vcpu {
                    vm,
                    id,
                    mode: VcpuMode::User,
                    hg: None,
                });
                self.sleepers.push(t);
            }
        }
        // CPU 0 runs the session daemon (it triggers the state dump); the other
        // CPUs run a sleeping user thread or idle.
        self.set_running(0, sessiond_thread);
        for c in 1..ncpu as u32 {
            if self.rng.chance(3, 4) && !self.sleepers.is_empty() {
                let i = self.rng.below(self.sleepers.len() as u64) as usize;
                let t = self.sleepers.swap_remove(i);
                self.set_running(c, t);
            }
        }
    }

    fn set_running(&mut self, c: u32, t: u32) {
        self.cpus[c as usize].current = Some(t);
        let th = &mut self.threads[t as usize];
        th.run = Run::Running(c);
        th.last_cpu = c;
    }

    // ---- emitting ---------------------------------------------------------------

    /// Writes the payload built in `self.p` as event `ev` on CPU `c`, at the
    /// current time, then moves the clock forward.
    fn emit(&mut self, c: u32, ev: Ev) -> Result<(), GenError> {
        self.p.finish();
        if self.done {
            return Ok(());
        }
        let ts = self.now;
        self.now += 1 + self.rng.below(400);
        let stream = &mut self.streams[c as usize];
        let before = stream.bytes();
        let closed = if self.vms > 0 {
            // The pid and tid contexts: the task current on the CPU (0 when idle).
            let (pid, tid) = match self.cpus[c as usize].current {
                Some(t) => {
                    let th = &self.threads[t as usize];
                    (self.processes[th.process as usize].pid, th.tid)
                }
                None => (0, 0),
            };
            self.record.clear();
            self.record.extend_from_slice(&pid.to_le_bytes());
            self.record.extend_from_slice(&tid.to_le_bytes());
            self.record.extend_from_slice(&self.p.buf);
            stream.emit(ev.id(), ts, &self.record, &self.out)?
        } else {
            stream.emit(ev.id(), ts, &self.p.buf, &self.out)?
        };
        self.bytes += stream.bytes() - before;
        self.counts[ev as usize] += 1;
        self.events += 1;
        self.first_ts.get_or_insert(ts);
        self.last_ts = Some(ts);
        let (done, total) = match self.limit {
            GenLimit::Events(n) => (self.events, n),
            GenLimit::Bytes(n) => (self.bytes, n),
        };
        if done >= total {
            self.done = true;
        }
        if closed {
            if let Some(progress) = self.progress {
                progress(done.min(total), total);
            }
        }
        Ok(())
    }

    fn thread_ident(&self, t: Option<u32>, c: u32) -> ([u8; 16], i32, i32) {
        match t {
            Some(t) => {
                let th = &self.threads[t as usize];
                (th.comm, th.tid, th.prio)
            }
            None => (self.cpus[c as usize].swapper, 0, 20),
        }
    }

    // ---- the main loop ----------------------------------------------------------

    #[allow(clippy::type_complexity)]
    pub(crate) fn run(
        mut self,
    ) -> Result<(SimTotals, Vec<StreamWriter>, PacketOut, Vec<GuestTrace>), GenError> {
        self.statedump(0)?;
        while !self.done {
            self.step()?;
        }
        let end = self.now;
        let totals = SimTotals {
            counts: self.counts,
            events: self.events,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            end_ts: end,
        };
        Ok((totals, self.streams, self.out, self.guests))
    }

    fn step(&mut self) -> Result<(), GenError> {
        self.now += self.rng.below(self.action_gap);
        let c = self.rng.below(self.cpus.len() as u64) as u32;
        match self.cpus[c as usize].current {
            None => {
                if !self.cpus[c as usize].queue.is_empty() {
                    self.switch_out(c, TASK_RUNNING)
                } else if self.rng.chance(1, 8) {
                    self.device_irq(c)
                } else if self.rng.chance(1, 4) {
                    self.timer_tick(c)
                } else {
                    Ok(())
                }
            }
            Some(t) => {
                if self.threads[t as usize].pending.is_some() {
                    return self.finish_syscall(c, t);
                }
                let r = self.rng.below(1000);
                if r < 60 && self.in_guest(t) {
                    // The interrupt arrives while the guest runs: it exits first.
                    self.kvm_exit(c, t, EXIT_EXTERNAL_INTERRUPT)?;
                }
                if r < 25 {
                    self.device_irq(c)
                } else if r < 60 {
                    self.timer_tick(c)
                } else if self.threads[t as usize].kernel {
                    self.kernel_work(c, t)
                } else {
                    self.user_work(c, t)
                }
            }
        }
    }

    // ---- scheduling ----------------------------------------------------------------

    /// The current task of CPU `c` leaves it in `prev_state` (running → back on
    /// the run queue; blocked → the caller files it with what it waits for; dead),
    /// and the first queued thread, or the idle task, comes in.
    fn switch_out(&mut self, c: u32, prev_state: i64) -> Result<(), GenError> {
        let prev = self.cpus[c as usize].current;
        debug_assert!(
            !prev.is_some_and(|t| self.in_guest(t)),
            "a vCPU thread leaves CPU {c} while in its guest"
        );
        let next = self.cpus[c as usize].queue.pop_front();
        let (pc, ptid, pprio) = self.thread_ident(prev, c);
        let (nc, ntid, nprio) = self.thread_ident(next, c);
        self.p.start(Ev::SchedSwitch);
        self.p
            .comm(&pc)
            .i32(ptid)
            .i32(pprio)
            .i64(prev_state)
            .comm(&nc)
            .i32(ntid)
            .i32(nprio);
        self.emit(c, Ev::SchedSwitch)?;
        if let Some(t) = prev {
            self.threads[t as usize].run = match prev_state {
                TASK_RUNNING => {
                    self.cpus[c as usize].queue.push_back(t);
                    Run::Runnable(c)
                }
                TASK_DEAD => Run::Dead,
                _ => Run::Blocked,
            };
        }
        self.cpus[c as usize].current = None;
        if let Some(t) = next {
            self.set_running(c, t);
        }
        Ok(())
    }

    /// An idle CPU with nothing queued if one is handy, else the thread's last CPU.
    fn pick_target(&mut self, t: u32) -> u32 {
        let idle = |cpu: &Cpu| cpu.current.is_none() && cpu.queue.is_empty();
        let last = self.threads[t as usize].last_cpu;
        if idle(&self.cpus[last as usize]) {
            return last;
        }
        for _ in 0..2 {
            let c = self.rng.below(self.cpus.len() as u64) as u32;
            if idle(&self.cpus[c as usize]) {
                return c;
            }
        }
        last
    }

    /// CPU `c` wakes blocked thread `t` (`sched_waking` then `sched_wakeup`).
    fn wake(&mut self, c: u32, t: u32, ret: i64) -> Result<(), GenError> {
        debug_assert_eq!(self.threads[t as usize].run, Run::Blocked);
        let target = self.pick_target(t);
        let th = &mut self.threads[t as usize];
        if let Some(p) = th.pending.as_mut() {
            p.ret = ret;
        }
        let (name, tid, prio) = (th.comm, th.tid, th.prio);
        for ev in [Ev::SchedWaking, Ev::SchedWakeup] {
            self.p.start(ev);
            self.p.comm(&name).i32(tid).i32(prio).i32(target as i32);
            self.emit(c, ev)?;
        }
        self.threads[t as usize].run = Run::Runnable(target);
        self.cpus[target as usize].queue.push_back(t);
        Ok(())
    }

    fn wake_from_pool(&mut self, c: u32, net: bool, ret: i64) -> Result<(), GenError> {
        let pool = if net {
            &mut self.net_waiters
        } else {
            &mut self.sleepers
        };
        if pool.is_empty() {
            return Ok(());
        }
        let i = self.rng.below(pool.len() as u64) as usize;
        let t = pool.swap_remove(i);
        self.wake(c, t, ret)
    }

    // ---- interrupts -------------------------------------------------------------------

    fn device_irq(&mut self, c: u32) -> Result<(), GenError> {
        let (irq, name) = if !self.disk.is_empty() && self.rng.chance(2, 3) {
            DEVICES[1]
        } else if self.rng.chance(1, 12) {
            DEVICES[0]
        } else {
            DEVICES[2]
        };
        self.p.start(Ev::IrqHandlerEntry);
        self.p.i32(irq).str(name);
        self.emit(c, Ev::IrqHandlerEntry)?;
        let vec = match irq {
            27 => Some(BLOCK_SOFTIRQ),
            28 => Some(NET_RX_SOFTIRQ),
            _ => None,
        };
        if let Some(v) = vec {
            self.raise(c, v)?;
        }
        self.p.start(Ev::IrqHandlerExit);
        self.p.i32(irq).i32(1);
        self.emit(c, Ev::IrqHandlerExit)?;
        if let Some(v) = vec {
            self.softirq(c, v)?;
        }
        Ok(())
    }

    fn raise(&mut self, c: u32, vec: u32) -> Result<(), GenError> {
        self.p.start(Ev::SoftirqRaise);
        self.p.u32(vec);
        self.emit(c, Ev::SoftirqRaise)
    }

    fn softirq(&mut self, c: u32, vec: u32) -> Result<(), GenError> {
        self.p.start(Ev::SoftirqEntry);
        self.p.u32(vec);
        self.emit(c, Ev::SoftirqEntry)?;
        match vec {
            NET_RX_SOFTIRQ => {
                for _ in 0..self.rng.range(0, 2) {
                    let bytes = self.rng.range(40, 1500) as i64;
                    self.wake_from_pool(c, true, bytes)?;
                }
                if self.rng.chance(1, 16) {
                    // A device interrupt arriving while the soft IRQ runs nests inside it.
                    let (irq, name) = DEVICES[0];
                    self.p.start(Ev::IrqHandlerEntry);
                    self.p.i32(irq).str(name);
                    self.emit(c, Ev::IrqHandlerEntry)?;
                    self.p.start(Ev::IrqHandlerExit);
                    self.p.i32(irq).i32(1);
                    self.emit(c, Ev::IrqHandlerExit)?;
                }
            }
            BLOCK_SOFTIRQ => {
                if let Some(rq) = self.disk.pop_front() {
                    self.p.start(Ev::BlockRqComplete);
                    self.p
                        .u32(SDA)
                        .u64(rq.sector)
                        .u32(rq.nr_sector)
                        .i32(0)
                        .u32(rq.rwbs)
                        .seq_u32_x8(&[]);
                    self.emit(c, Ev::BlockRqComplete)?;
                    if let Some(t) = rq.waiter {
                        self.wake(c, t, rq.nr_sector as i64 * 512)?;
                    }
                }
            }
            TIMER_SOFTIRQ => {
                for _ in 0..self.rng.range(0, 2) {
                    self.wake_from_pool(c, false, 0)?;
                }
                if self.rng.chance(1, 6) {
                    // A poll/epoll/recvfrom timeout.
                    self.wake_from_pool(c, true, 0)?;
                }
            }
            RCU_SOFTIRQ => {
                // Task structures of exited threads are freed after an RCU grace period.
                for _ in 0..self.zombies.len().min(4) {
                    let z = self.zombies.swap_remove(0);
                    self.p.start(Ev::SchedProcessFree);
                    self.p.comm(&z.comm).i32(z.tid).i32(z.prio);
                    self.emit(c, Ev::SchedProcessFree)?;
                }
            }
            _ => {}
        }
        self.p.start(Ev::SoftirqExit);
        self.p.u32(vec);
        self.emit(c, Ev::SoftirqExit)
    }

    /// The local APIC timer: soft IRQs, then maybe preemption of the current task.
    fn timer_tick(&mut self, c: u32) -> Result<(), GenError> {
        self.p.start(Ev::TimerEntry);
        self.p.i32(LOCAL_TIMER_VECTOR);
        self.emit(c, Ev::TimerEntry)?;
        self.raise(c, TIMER_SOFTIRQ)?;
        let rcu = (!self.zombies.is_empty() && self.rng.chance(1, 2)) || self.rng.chance(1, 10);
        if rcu {
            self.raise(c, RCU_SOFTIRQ)?;
        }
        let sched = self.rng.chance(1, 8);
        if sched {
            self.raise(c, SCHED_SOFTIRQ)?;
        }
        self.p.start(Ev::TimerExit);
        self.p.i32(LOCAL_TIMER_VECTOR);
        self.emit(c, Ev::TimerExit)?;
        self.softirq(c, TIMER_SOFTIRQ)?;
        if rcu {
            self.softirq(c, RCU_SOFTIRQ)?;
        }
        if sched {
            self.softirq(c, SCHED_SOFTIRQ)?;
        }
        let cpu = &self.cpus[c as usize];
        if cpu.current.is_some() && !cpu.queue.is_empty() && self.rng.chance(1, 2) {
            self.switch_out(c, TASK_RUNNING)?;
        }
        Ok(())
    }

    // ---- block I/O ---------------------------------------------------------------------

    /// Queues a request and hands it to the driver (insert, then issue), on
    /// behalf of the thread running on CPU `c`.
    fn submit_io(
        &mut self,
        c: u32,
        t: u32,
        rwbs: u32,
        waiter: Option<u32>,
    ) -> Result<(), GenError> {
        let nr_sector = 8 * self.rng.range(1, 32) as u32;
        let sector = self.next_sector;
        self.next_sector += nr_sector as u64 + 8 * self.rng.below(1024);
        let (name, tid) = (self.threads[t as usize].comm, self.threads[t as usize].tid);
        for ev in [Ev::BlockRqInsert, Ev::BlockRqIssue] {
            self.p.start(ev);
            self.p
                .u32(SDA)
                .u64(sector)
                .u32(nr_sector)
                .u32(nr_sector * 512)
                .u32(rwbs)
                .i32(tid)
                .comm(&name)
                .seq_u32_x8(&[]);
            self.emit(c, ev)?;
        }
        self.disk.push_back(Request {
            sector,
            nr_sector,
            rwbs,
            waiter,
        });
        Ok(())
    }

    // ---- kernel threads ----------------------------------------------------------------

    fn kernel_work(&mut self, c: u32, t: u32) -> Result<(), GenError> {
        let name = self.threads[t as usize].comm;
        if name.starts_with(b"kworker") && self.rng.chance(1, 3) {
            // Writeback of dirty pages.
            self.submit_io(c, t, RWBS_WRITE, None)?;
        } else if name.starts_with(b"ksoftirqd") {
            self.softirq(c, RCU_SOFTIRQ)?;
        }
        if self.rng.chance(1, 4) {
            self.wake_from_pool(c, false, 0)?;
        }
        self.switch_out(c, TASK_INTERRUPTIBLE)?;
        self.sleepers.push(t);
        Ok(())
    }

    // ---- user threads --------------------------------------------------------------------

    fn user_work(&mut self, c: u32, t: u32) -> Result<(), GenError> {
        if self.threads[t as usize].vcpu.is_some() {
            return self.vcpu_work(c, t);
        }
        let process = self.threads[t as usize].process as usize;
        if self.processes[process].exec_pending {
            return self.exec(c, t);
        }
        if self.rng.chance(1, 300) {
            if self.user_threads <= self.target_threads {
                if self.next_tid < TID_LIMIT {
                    return self.fork(c, t);
                }
            } else if self.can_exit(t) {
                return self.exit(c, t);
            }
        }
        // Relative frequencies of what a user thread does next.
        const WEIGHTS: [u32; 19] = [16, 14, 5, 6, 4, 2, 3, 2, 2, 2, 3, 6, 6, 5, 5, 4, 4, 3, 2];
        match self.rng.weighted(&WEIGHTS) {
            0 => self.sys_read(c, t),
            1 => self.sys_write(c, t),
            2 => self.sys_openat(c, t),
            3 => self.simple(c, Ev::EntryClose, Ev::ExitClose, |s, p| {
                let fd = s.rng.range(3, 40) as u32;
                p.u32(fd);
            }),
            4 => {
                let fd = self.rng.range(0, 40) as u32;
                let statbuf = self.user_addr(t);
                self.p.start(Ev::EntryNewfstat);
                self.p.u32(fd);
                self.emit(c, Ev::EntryNewfstat)?;
                self.p.start(Ev::ExitNewfstat);
                self.p.i64(0).u64(statbuf);
                self.emit(c, Ev::ExitNewfstat)
            }
            5 => {
                let (fd, off) = (self.rng.range(3, 40) as u32, self.rng.below(1 << 20) as i64);
                self.p.start(Ev::EntryLseek);
                self.p.u32(fd).i64(off).u32(0);
                self.emit(c, Ev::EntryLseek)?;
                self.p.start(Ev::ExitLseek);
                self.p.i64(off);
                self.emit(c, Ev::ExitLseek)
            }
            6 => {
                let len = 4096 * self.rng.range(1, 256);
                let addr = 0x7f00_0000_0000 + self.rng.below(1 << 28) * 4096;
                self.p.start(Ev::EntryMmap);
                self.p.x64(0).u64(len).i32(3).i32(0x22).i32(-1).i64(0);
                self.emit(c, Ev::EntryMmap)?;
                self.p.start(Ev::ExitMmap);
                self.p.i64(addr as i64);
                self.emit(c, Ev::ExitMmap)
            }
            7 => {
                let len = 4096 * self.rng.range(1, 256);
                let addr = 0x7f00_0000_0000 + self.rng.below(1 << 28) * 4096;
                self.p.start(Ev::EntryMunmap);
                self.p.u64(addr).u64(len);
                self.emit(c, Ev::EntryMunmap)?;
                self.p.start(Ev::ExitMunmap);
                self.p.i64(0);
                self.emit(c, Ev::ExitMunmap)
            }
            8 => {
                let brk = self.processes[process].base + 0x100_0000 + self.rng.below(4096) * 4096;
                self.p.start(Ev::EntryBrk);
                self.p.u64(brk);
                self.emit(c, Ev::EntryBrk)?;
                self.p.start(Ev::ExitBrk);
                self.p.i64(brk as i64);
                self.emit(c, Ev::ExitBrk)
            }
            9 => {
                let pid = self.processes[process].pid as i64;
                self.p.start(Ev::EntryGetpid);
                self.emit(c, Ev::EntryGetpid)?;
                self.p.start(Ev::ExitGetpid);
                self.p.i64(pid);
                self.emit(c, Ev::ExitGetpid)
            }
            10 => {
                let (fd, arg) = (self.rng.range(0, 20) as u32, self.user_addr(t));
                self.p.start(Ev::EntryIoctl);
                self.p.u32(fd).u32(0x5401).u64(arg);
                self.emit(c, Ev::EntryIoctl)?;
                self.p.start(Ev::ExitIoctl);
                self.p.i64(0).u64(arg);
                self.emit(c, Ev::ExitIoctl)
            }
            11 => self.futex_wake(c, t),
            12 => self.futex_wait(c, t),
            13 => self.net_wait(c, t, Sys::Poll),
            14 => self.net_wait(c, t, Sys::EpollWait),
            15 => self.net_wait(c, t, Sys::Recvfrom),
            16 => {
                let (fd, buf, len) = (
                    self.rng.range(3, 40) as i32,
                    self.user_addr(t),
                    self.rng.range(1, 1460),
                );
                self.p.start(Ev::EntrySendto);
                self.p.i32(fd).u64(buf).u64(len).u32(0x40).u64(0).i32(0);
                self.emit(c, Ev::EntrySendto)?;
                self.p.start(Ev::ExitSendto);
                self.p.i64(len as i64);
                self.emit(c, Ev::ExitSendto)
            }
            17 => {
                let rqtp = self.user_addr(t);
                self.p.start(Ev::EntryNanosleep);
                self.p.u64(rqtp);
                self.emit(c, Ev::EntryNanosleep)?;
                self.block(c, t, Sys::Nanosleep, rqtp, TASK_INTERRUPTIBLE)?;
                self.sleepers.push(t);
                Ok(())
            }
            _ => {
                // Preempted in user space by a woken thread.
                if self.cpus[c as usize].queue.is_empty() {
                    Ok(())
                } else {
                    self.switch_out(c, TASK_RUNNING)
                }
            }
        }
    }

    // ---- KVM: vCPU threads ------------------------------------------------------------

    fn in_guest(&self, t: u32) -> bool {
        matches!(
            self.threads[t as usize].vcpu,
            Some(Vcpu {
                mode: VcpuMode::Guest,
                ..
            })
        )
    }

    fn set_vcpu_mode(&mut self, t: u32, mode: VcpuMode) {
        if let Some(v) = self.threads[t as usize].vcpu.as_mut() {
            v.mode = mode;
        }
    }

    fn kvm_entry(&mut self, c: u32, t: u32) -> Result<(), GenError> {
        let Some(vcpu) = self.threads[t as usize].vcpu else {
            return Ok(());
        };
        let hg = if self.guests.is_empty() {
            None
        } else {
            vcpu.hg
        };
        if let Some(cnt) = hg {
            // The host's message to the guest, just before it runs again.
            let vm_uid = self.guests[vcpu.vm as usize].vm_uid;
            self.p.start(Ev::VmsyncHgHost);
            self.p.i32(cnt).i64(vm_uid);
            self.emit(c, Ev::VmsyncHgHost)?;
            if let Some(v) = self.threads[t as usize].vcpu.as_mut() {
                v.hg = None;
            }
        }
        let ts = self.now;
        self.p.start(Ev::KvmEntry);
        self.p.u32(vcpu.id);
        self.emit(c, Ev::KvmEntry)?;
        self.set_vcpu_mode(t, VcpuMode::Guest);
        if !self.guests.is_empty() && !self.done {
            self.guests[vcpu.vm as usize].entered(vcpu.id, ts, hg);
        }
        Ok(())
    }

    fn kvm_exit(&mut self, c: u32, t: u32, reason: u32) -> Result<(), GenError> {
        let vcpu = self.threads[t as usize].vcpu;
        let mut reason = reason;
        let mut gh = None;
        if let (Some(v), false) = (vcpu, self.guests.is_empty()) {
            let g = &mut self.guests[v.vm as usize];
            // A hypercall instead of an exit after which the vCPU goes on as usual.
            let plain = !matches!(reason, EXIT_HLT | EXIT_IO_INSTRUCTION | EXIT_EPT_MISCONFIG);
            if plain && self.now >= g.next_sync {
                g.next_sync = self.now + SYNC_PERIOD_NS;
                gh = Some(g.next_cnt());
                reason = EXIT_VMCALL;
            }
        }
        let ts = self.now;
        // Guest kernel text addresses; exit qualification for EPT and I/O exits.
        let rip = 0xffff_ffff_8100_0000 + self.rng.below(0x80_0000);
        let (info1, info2) = match reason {
            48 | EXIT_EPT_MISCONFIG => (0x181, 0xfebf_0000 + self.rng.below(0x1000) * 4),
            EXIT_IO_INSTRUCTION => (0x0cf8_0008, 0),
            _ => (0, 0),
        };
        self.p.start(Ev::KvmExit);
        self.p.u32(reason).u64(rip).u32(1).u64(info1).u64(info2);
        self.emit(c, Ev::KvmExit)?;
        self.set_vcpu_mode(t, VcpuMode::Kernel);
        if let (Some(v), false) = (vcpu, self.guests.is_empty() || self.done) {
            self.guests[v.vm as usize].exited(v.id, ts, gh)?;
            if let Some(cnt) = gh {
                // The host side of the hypercall, on the vCPU thread that made it.
                let vm_uid = self.guests[v.vm as usize].vm_uid;
                self.p.start(Ev::VmsyncGhHost);
                self.p.i32(cnt).i64(vm_uid);
                self.emit(c, Ev::VmsyncGhHost)?;
                if let Some(v) = self.threads[t as usize].vcpu.as_mut() {
                    v.hg = Some(cnt);
                }
            }
        }
        Ok(())
    }

    /// What a vCPU thread current on CPU `c` does next: run its guest until an
    /// exit, handle the exit in the kernel (most re-enter at once), go back to QEMU
    /// for device emulation (`KVM_RUN` returns), or block on a halted guest.
    fn vcpu_work(&mut self, c: u32, t: u32) -> Result<(), GenError> {
        let Some(vcpu) = self.threads[t as usize].vcpu else {
            return Ok(());
        };
        match vcpu.mode {
            VcpuMode::User => {
                self.p.start(Ev::EntryIoctl);
                self.p.u32(VCPU_FD).u32(KVM_RUN).u64(0);
                self.emit(c, Ev::EntryIoctl)?;
                self.kvm_entry(c, t)
            }
            VcpuMode::Kernel => self.kvm_entry(c, t),
            VcpuMode::Guest => {
                let weights = GUEST_EXITS.map(|(_, w)| w);
                let reason = GUEST_EXITS[self.rng.weighted(&weights)].0;
                self.kvm_exit(c, t, reason)?;
                match reason {
                    EXIT_HLT => {
                        // kvm_vcpu_block: sleeps until an interrupt for the guest.
                        self.sleepers.push(t);
                        self.switch_out(c, TASK_INTERRUPTIBLE)
                    }
                    EXIT_IO_INSTRUCTION | EXIT_EPT_MISCONFIG => {
                        self.p.start(Ev::ExitIoctl);
                        self.p.i64(0).u64(0);
                        self.emit(c, Ev::ExitIoctl)?;
                        self.set_vcpu_mode(t, VcpuMode::User);
                        Ok(())
                    }
                    _ if self.rng.chance(7, 8) => self.kvm_entry(c, t),
                    _ => Ok(()),
                }
            }
        }
    }

    /// An address inside the thread's process (buffers, futex words).
    fn user_addr(&mut self, t: u32) -> u64 {
        let process = self.threads[t as usize].process as usize;
        self.processes[process].base + self.rng.below(1 << 20) * 8
    }

    /// A system call that returns at once; `args` writes the entry payload, the
    /// exit carries `ret = 0`.
    fn simple(
        &mut self,
        c: u32,
        entry: Ev,
        exit: Ev,
        args: impl FnOnce(&mut Self, &mut Payload),
    ) -> Result<(), GenError> {
        let mut p = std::mem::replace(&mut self.p, Payload::new());
        p.start(entry);
        args(self, &mut p);
        self.p = p;
        self.emit(c, entry)?;
        self.p.start(exit);
        self.p.i64(0);
        self.emit(c, exit)
    }

    /// The thread enters a blocking wait inside system call `sys` and leaves its CPU.
    fn block(&mut self, c: u32, t: u32, sys: Sys, arg: u64, state: i64) -> Result<(), GenError> {
        self.threads[t as usize].pending = Some(Pending { sys, ret: 0, arg });
        self.switch_out(c, state)
    }

    fn finish_syscall(&mut self, c: u32, t: u32) -> Result<(), GenError> {
        let Some(pending) = self.threads[t as usize].pending.take() else {
            return Ok(());
        };
        let ev = match pending.sys {
            Sys::Read => Ev::ExitRead,
            Sys::Futex => Ev::ExitFutex,
            Sys::Poll => Ev::ExitPoll,
            Sys::EpollWait => Ev::ExitEpollWait,
            Sys::Recvfrom => Ev::ExitRecvfrom,
            Sys::Nanosleep => Ev::ExitNanosleep,
            Sys::Clone => Ev::ExitClone,
        };
        self.p.start(ev);
        self.p.i64(pending.ret);
        match pending.sys {
            Sys::Read | Sys::Poll | Sys::EpollWait => {
                self.p.u64(pending.arg);
            }
            Sys::Futex => {
                self.p.u64(pending.arg).u64(0);
            }
            Sys::Recvfrom => {
                self.p.u64(pending.arg).u64(0).u64(0);
            }
            Sys::Nanosleep => {
                self.p.u64(0);
            }
            Sys::Clone => {}
        }
        self.emit(c, ev)
    }

    fn sys_read(&mut self, c: u32, t: u32) -> Result<(), GenError> {
        let fd = self.rng.range(0, 40) as u32;
        let count = 512 * self.rng.range(1, 128);
        let buf = self.user_addr(t);
        self.p.start(Ev::EntryRead);
        self.p.u32(fd).u64(count);
        self.emit(c, Ev::EntryRead)?;
        if self.rng.chance(1, 10) {
            // Not in the page cache: wait for the disk.
            self.submit_io(c, t, RWBS_READ, Some(t))?;
            return self.block(c, t, Sys::Read, buf, TASK_UNINTERRUPTIBLE);
        }
        if self.rng.chance(1, 20) {
            self.device_irq(c)?;
        }
        self.p.start(Ev::ExitRead);
        self.p.i64(count as i64).u64(buf);
        self.emit(c, Ev::ExitRead)
    }

    fn sys_write(&mut self, c: u32, t: u32) -> Result<(), GenError> {
        let fd = self.rng.range(1, 40) as u32;
        let count = self.rng.range(1, 65536);
        let buf = self.user_addr(t);
        self.p.start(Ev::EntryWrite);
        self.p.u32(fd).u64(buf).u64(count);
        self.emit(c, Ev::EntryWrite)?;
        if self.rng.chance(1, 12) {
            // A synchronous write goes to the disk; the caller does not wait here.
            self.submit_io(c, t, RWBS_WRITE | RWBS_SYNC, None)?;
        }
        self.p.start(Ev::ExitWrite);
        self.p.i64(count as i64);
        self.emit(c, Ev::ExitWrite)
    }

    fn sys_openat(&mut self, c: u32, _t: u32) -> Result<(), GenError> {
        let file = FILES[self.rng.below(FILES.len() as u64) as usize];
        let ok = self.rng.chance(7, 8);
        self.p.start(Ev::EntryOpenat);
        self.p.i32(-100).str(file).i32(0x80000).u16(0);
        self.emit(c, Ev::EntryOpenat)?;
        let ret = if ok { self.rng.range(3, 40) as i64 } else { -2 };
        self.p.start(Ev::ExitOpenat);
        self.p.i64(ret);
        self.emit(c, Ev::ExitOpenat)
    }

    fn futex_wait(&mut self, c: u32, t: u32) -> Result<(), GenError> {
        let process = self.threads[t as usize].process as usize;
        let uaddr = self.processes[process].base + 0x1000;
        // Never let every thread of a process wait: someone must be left to wake them.
        let pr = &self.processes[process];
        let wait = pr.futex_waiters.len() + 2 < pr.threads.len();
        self.p.start(Ev::EntryFutex);
        self.p
            .u64(uaddr)
            .i32(FUTEX_WAIT_PRIVATE)
            .u32(if wait { 2 } else { 0 })
            .u64(0)
            .u64(0)
            .u32(0);
        self.emit(c, Ev::EntryFutex)?;
        if wait {
            self.processes[process].futex_waiters.push(t);
            return self.block(c, t, Sys::Futex, uaddr, TASK_INTERRUPTIBLE);
        }
        // The word changed already: EAGAIN.
        self.p.start(Ev::ExitFutex);
        self.p.i64(-11).u64(uaddr).u64(0);
        self.emit(c, Ev::ExitFutex)
    }

    fn futex_wake(&mut self, c: u32, t: u32) -> Result<(), GenError> {
        let process = self.threads[t as usize].process as usize;
        let uaddr = self.processes[process].base + 0x1000;
        self.p.start(Ev::EntryFutex);
        self.p
            .u64(uaddr)
            .i32(FUTEX_WAKE_PRIVATE)
            .u32(1)
            .u64(0)
            .u64(0)
            .u32(0);
        self.emit(c, Ev::EntryFutex)?;
        let waiters = &mut self.processes[process].futex_waiters;
        let woken = if waiters.is_empty() {
            0
        } else {
            let i = self.rng.below(waiters.len() as u64) as usize;
            let w = waiters.swap_remove(i);
            self.wake(c, w, 0)?;
            1
        };
        self.p.start(Ev::ExitFutex);
        self.p.i64(woken).u64(uaddr).u64(0);
        self.emit(c, Ev::ExitFutex)
    }

    /// poll, epoll_wait or recvfrom: data may be there already, else wait for the network.
    fn net_wait(&mut self, c: u32, t: u32, sys: Sys) -> Result<(), GenError> {
        let addr = self.user_addr(t);
        let entry = match sys {
            Sys::Poll => {
                self.p.start(Ev::EntryPoll);
                self.p.u64(addr).u32(self.rng.range(1, 8) as u32).i32(-1);
                Ev::EntryPoll
            }
            Sys::EpollWait => {
                self.p.start(Ev::EntryEpollWait);
                self.p.i32(self.rng.range(3, 20) as i32).i32(64).i32(-1);
                Ev::EntryEpollWait
            }
            _ => {
                self.p.start(Ev::EntryRecvfrom);
                self.p
                    .i32(self.rng.range(3, 40) as i32)
                    .u64(65536)
                    .u32(0)
                    .u64(0);
                Ev::EntryRecvfrom
            }
        };
        self.emit(c, entry)?;
        if self.rng.chance(2, 3) {
            self.block(c, t, sys, addr, TASK_INTERRUPTIBLE)?;
            self.net_waiters.push(t);
            return Ok(());
        }
        let ret = self.rng.range(1, 1460) as i64;
        self.threads[t as usize].pending = Some(Pending {
            sys,
            ret,
            arg: addr,
        });
        self.finish_syscall(c, t)
    }

    // ---- process life cycle --------------------------------------------------------------

    fn fork(&mut self, c: u32, t: u32) -> Result<(), GenError> {
        let process = self.threads[t as usize].process;
        let as_thread = self.processes[process as usize].threads.len() < MAX_THREADS_PER_PROCESS
            && self.rng.chance(1, 2);
        let flags = if as_thread {
            CLONE_THREAD_FLAGS
        } else {
            CLONE_PROCESS_FLAGS
        };
        let newsp = if as_thread { self.user_addr(t) } else { 0 };
        let tid_addr = self.user_addr(t);
        self.p.start(Ev::EntryClone);
        self.p.x64(flags).x64(newsp).x64(tid_addr).x64(tid_addr);
        self.emit(c, Ev::EntryClone)?;
        self.next_tid += 1 + self.rng.below(3) as i32;
        let child_tid = self.next_tid;
        let parent = &self.threads[t as usize];
        let (parent_comm, parent_tid, prio) = (parent.comm, parent.tid, parent.prio);
        let parent_pid = self.processes[process as usize].pid;
        let child_process = if as_thread {
            process
        } else {
            let p = self.new_process(child_tid, parent_pid);
            self.processes[p as usize].exec_pending = self.rng.chance(1, 2);
            p
        };
        let child = self.new_thread(child_tid, child_process, parent_comm, false);
        self.threads[child as usize].prio = prio;
        self.threads[child as usize].last_cpu = c;
        let child_pid = self.processes[child_process as usize].pid;
        self.p.start(Ev::SchedProcessFork);
        self.p
            .comm(&parent_comm)
            .i32(parent_tid)
            .i32(parent_pid)
            .u32(NS_INUM)
            .comm(&parent_comm)
            .i32(child_tid)
            .seq_u8_i32(&[child_tid])
            .i32(child_pid)
            .u32(NS_INUM);
        self.emit(c, Ev::SchedProcessFork)?;
        // The child returns from clone() with 0 when it first runs.
        self.threads[child as usize].pending = Some(Pending {
            sys: Sys::Clone,
            ret: 0,
            arg: 0,
        });
        let target = self.pick_target(child);
        self.p.start(Ev::SchedWakeupNew);
        self.p
            .comm(&parent_comm)
            .i32(child_tid)
            .i32(prio)
            .i32(target as i32);
        self.emit(c, Ev::SchedWakeupNew)?;
        self.threads[child as usize].run = Run::Runnable(target);
        self.cpus[target as usize].queue.push_back(child);
        self.p.start(Ev::ExitClone);
        self.p.i64(child_tid as i64);
        self.emit(c, Ev::ExitClone)
    }

    fn exec(&mut self, c: u32, t: u32) -> Result<(), GenError> {
        let program = PROGRAMS[self.rng.below(PROGRAMS.len() as u64) as usize];
        let (argv, envp) = (self.user_addr(t), self.user_addr(t));
        let tid = self.threads[t as usize].tid;
        self.p.start(Ev::EntryExecve);
        self.p.str(program).x64(argv).x64(envp);
        self.emit(c, Ev::EntryExecve)?;
        self.p.start(Ev::SchedProcessExec);
        self.p.str(program).i32(tid).i32(tid);
        self.emit(c, Ev::SchedProcessExec)?;
        let base = program.rsplit('/').next().unwrap_or(program);
        self.threads[t as usize].comm = comm(base);
        let process = self.threads[t as usize].process as usize;
        self.processes[process].exec_pending = false;
        self.p.start(Ev::ExitExecve);
        self.p.i64(0);
        self.emit(c, Ev::ExitExecve)
    }

    /// A thread may exit if its process survives it or it is alone, and if the
    /// threads left are not all waiting on the process's futex.
    fn can_exit(&self, t: u32) -> bool {
        let th = &self.threads[t as usize];
        let pr = &self.processes[th.process as usize];
        if pr.immortal {
            return false;
        }
        if th.tid == pr.pid {
            pr.threads.len() == 1
        } else {
            pr.futex_waiters.len() + 2 < pr.threads.len()
        }
    }

    fn exit(&mut self, c: u32, t: u32) -> Result<(), GenError> {
        let process = self.threads[t as usize].process as usize;
        let th = &self.threads[t as usize];
        let (name, tid, prio) = (th.comm, th.tid, th.prio);
        let whole_group = tid == self.processes[process].pid;
        let ev = if whole_group {
            Ev::EntryExitGroup
        } else {
            Ev::EntryExit
        };
        self.p.start(ev);
        self.p.i32(0);
        self.emit(c, ev)?;
        self.p.start(Ev::SchedProcessExit);
        self.p.comm(&name).i32(tid).i32(prio);
        self.emit(c, Ev::SchedProcessExit)?;
        self.switch_out(c, TASK_DEAD)?;
        let pr = &mut self.processes[process];
        pr.threads.retain(|&x| x != t);
        if pr.threads.is_empty() {
            self.free_processes.push(process as u32);
        }
        self.free_threads.push(t);
        self.user_threads -= 1;
        self.zombies.push(Zombie {
            tid,
            comm: name,
            prio,
        });
        Ok(())
    }

    // ---- the state dump ----------------------------------------------------------------------

    /// LTTng's state dump, requested by the session daemon (running on CPU `c`)
    /// through an ioctl when tracing starts.
    fn statedump(&mut self, c: u32) -> Result<(), GenError> {
        const LTTNG_KERNEL_SESSION_STATEDUMP: u32 = 0xF65C;
        self.p.start(Ev::EntryIoctl);
        self.p.u32(3).u32(LTTNG_KERNEL_SESSION_STATEDUMP).u64(0);
        self.emit(c, Ev::EntryIoctl)?;
        self.p.start(Ev::StatedumpStart);
        self.emit(c, Ev::StatedumpStart)?;
        for pi in 0..self.processes.len() {
            let (pid, ppid) = (self.processes[pi].pid, self.processes[pi].ppid);
            for k in 0..self.processes[pi].threads.len() {
                let t = self.processes[pi].threads[k] as usize;
                let th = &self.threads[t];
                let status = if th.run == Run::Blocked {
                    STATUS_WAIT
                } else {
                    STATUS_WAIT_CPU
                };
                let (tid, name, kernel) = (th.tid, th.comm, th.kernel);
                self.p.start(Ev::StatedumpProcessState);
                self.p
                    .i32(tid)
                    .i32(tid)
                    .i32(pid)
                    .i32(pid)
                    .i32(ppid)
                    .i32(ppid)
                    .comm(&name)
                    .i32(kernel as i32)
                    .i32(MODE_UNKNOWN)
                    .i32(0)
                    .i32(status)
                    .i32(0)
                    .u32(NS_INUM);
                self.emit(c, Ev::StatedumpProcessState)?;
            }
        }
        for pi in 0..self.processes.len() {
            let pr = &self.processes[pi];
            let kernel = pr
                .threads
                .first()
                .is_some_and(|&t| self.threads[t as usize].kernel);
            if kernel {
                continue;
            }
            let pid = pr.pid;
            for (fd, file) in ["/dev/null", "/dev/pts/0", "/dev/pts/0"].iter().enumerate() {
                self.p.start(Ev::StatedumpFileDescriptor);
                self.p
                    .i32(pid)
                    .i32(fd as i32)
                    .x32(0x8002)
                    .x32(0x1f)
                    .str(file);
                self.emit(c, Ev::StatedumpFileDescriptor)?;
            }
            let vm = self.qemu_pids.iter().position(|&p| p == pid);
            let files: Vec<String> = self
                .qemu_files
                .iter()
                .filter(|(i, _)| Some(*i as usize) == vm)
                .map(|(_, f)| f.clone())
                .collect();
            for (k, file) in files.iter().enumerate() {
                // O_RDWR | O_CLOEXEC | O_DIRECT, as QEMU opens a disk image with cache=none.
                self.p.start(Ev::StatedumpFileDescriptor);
                self.p
                    .i32(pid)
                    .i32(3 + k as i32)
                    .x32(0x84002)
                    .x32(0x1f)
                    .str(file);
                self.emit(c, Ev::StatedumpFileDescriptor)?;
            }
        }
        for (irq, name) in DEVICES {
            self.p.start(Ev::StatedumpInterrupt);
            self.p.u32(irq as u32).str(name).str("IO-APIC");
            self.emit(c, Ev::StatedumpInterrupt)?;
        }
        for (dev, name) in [(SDA, "sda"), (SDA + 1, "sda1")] {
            self.p.start(Ev::StatedumpBlockDevice);
            self.p.u32(dev).str(name);
            self.emit(c, Ev::StatedumpBlockDevice)?;
        }
        self.p.start(Ev::StatedumpEnd);
        self.emit(c, Ev::StatedumpEnd)?;
        self.p.start(Ev::ExitIoctl);
        self.p.i64(0).u64(0);
        self.emit(c, Ev::ExitIoctl)
    }
}
