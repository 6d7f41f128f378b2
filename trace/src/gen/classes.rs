//! Event classes the generator writes, their payload layouts, and the TSDL
//! metadata that declares them the way lttng-modules 2.8 does on x86-64
//! (little-endian, every field byte-aligned, field names prefixed with `_`).
//!
//! The class table is the single source of truth: the metadata text is printed
//! from it, and (in debug builds) every payload written is checked against it.

use std::fmt::Write;

/// Field types used by the kernel events we emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    U16,
    U32,
    I32,
    U64,
    I64,
    /// u32 printed in hexadecimal.
    X32,
    /// u64 printed in hexadecimal.
    X64,
    /// `char[16]` text (task names).
    Comm,
    /// Null-terminated string.
    Str,
    /// `uint8_t __NAME_length; int32_t _NAME[__NAME_length];` (pid-namespace TID lists).
    SeqU8I32,
    /// `uint32_t __NAME_length; uint8_t _NAME[__NAME_length];` in hex (SCSI commands).
    SeqU32X8,
}

pub(crate) struct Field {
    pub name: &'static str,
    pub ty: Ty,
}

pub(crate) struct EventClass {
    pub name: &'static str,
    pub fields: &'static [Field],
}

macro_rules! event_classes {
    ($( $variant:ident $name:literal { $( $fname:ident : $fty:ident ),* } )*) => {
        /// Event class IDs: the position in [`EVENT_CLASSES`]. The first 31 get the
        /// 4-byte compact header, so the most frequent events come first (LTTng
        /// numbers events in the order they are enabled).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        // Some classes are declared only (as LTTng declares every syscall exit).
        #[allow(dead_code)]
        pub(crate) enum Ev { $( $variant ),* }

        pub(crate) static EVENT_CLASSES: &[EventClass] = &[
            $( EventClass { name: $name, fields: &[ $( Field { name: stringify!($fname), ty: Ty::$fty } ),* ] } ),*
        ];
    };
}

event_classes! {
    SchedSwitch "sched_switch" { prev_comm: Comm, prev_tid: I32, prev_prio: I32, prev_state: I64, next_comm: Comm, next_tid: I32, next_prio: I32 }
    SchedWaking "sched_waking" { comm: Comm, tid: I32, prio: I32, target_cpu: I32 }
    SchedWakeup "sched_wakeup" { comm: Comm, tid: I32, prio: I32, target_cpu: I32 }
    EntryRead "syscall_entry_read" { fd: U32, count: U64 }
    ExitRead "syscall_exit_read" { ret: I64, buf: U64 }
    EntryWrite "syscall_entry_write" { fd: U32, buf: U64, count: U64 }
    ExitWrite "syscall_exit_write" { ret: I64 }
    EntryFutex "syscall_entry_futex" { uaddr: U64, op: I32, val: U32, utime: U64, uaddr2: U64, val3: U32 }
    ExitFutex "syscall_exit_futex" { ret: I64, uaddr: U64, uaddr2: U64 }
    EntryClose "syscall_entry_close" { fd: U32 }
    ExitClose "syscall_exit_close" { ret: I64 }
    EntryOpenat "syscall_entry_openat" { dfd: I32, filename: Str, flags: I32, mode: U16 }
    ExitOpenat "syscall_exit_openat" { ret: I64 }
    IrqHandlerEntry "irq_handler_entry" { irq: I32, name: Str }
    IrqHandlerExit "irq_handler_exit" { irq: I32, ret: I32 }
    SoftirqRaise "irq_softirq_raise" { vec: U32 }
    SoftirqEntry "irq_softirq_entry" { vec: U32 }
    SoftirqExit "irq_softirq_exit" { vec: U32 }
    TimerEntry "x86_irq_vectors_local_timer_entry" { vector: I32 }
    TimerExit "x86_irq_vectors_local_timer_exit" { vector: I32 }
    EntryPoll "syscall_entry_poll" { ufds: U64, nfds: U32, timeout_msecs: I32 }
    ExitPoll "syscall_exit_poll" { ret: I64, ufds: U64 }
    EntryEpollWait "syscall_entry_epoll_wait" { epfd: I32, maxevents: I32, timeout: I32 }
    ExitEpollWait "syscall_exit_epoll_wait" { ret: I64, events: U64 }
    EntryRecvfrom "syscall_entry_recvfrom" { fd: I32, size: U64, flags: U32, addr_len: U64 }
    ExitRecvfrom "syscall_exit_recvfrom" { ret: I64, ubuf: U64, addr: U64, addr_len: U64 }
    EntrySendto "syscall_entry_sendto" { fd: I32, buff: U64, len: U64, flags: U32, addr: U64, addr_len: I32 }
    ExitSendto "syscall_exit_sendto" { ret: I64 }
    EntryNewfstat "syscall_entry_newfstat" { fd: U32 }
    ExitNewfstat "syscall_exit_newfstat" { ret: I64, statbuf: U64 }
    EntryMmap "syscall_entry_mmap" { addr: X64, len: U64, prot: I32, flags: I32, fd: I32, offset: I64 }
    ExitMmap "syscall_exit_mmap" { ret: I64 }
    EntryMunmap "syscall_entry_munmap" { addr: U64, len: U64 }
    ExitMunmap "syscall_exit_munmap" { ret: I64 }
    EntryBrk "syscall_entry_brk" { brk: U64 }
    ExitBrk "syscall_exit_brk" { ret: I64 }
    EntryLseek "syscall_entry_lseek" { fd: U32, offset: I64, whence: U32 }
    ExitLseek "syscall_exit_lseek" { ret: I64 }
    EntryIoctl "syscall_entry_ioctl" { fd: U32, cmd: U32, arg: U64 }
    ExitIoctl "syscall_exit_ioctl" { ret: I64, arg: U64 }
    EntryGetpid "syscall_entry_getpid" { }
    ExitGetpid "syscall_exit_getpid" { ret: I64 }
    EntryNanosleep "syscall_entry_nanosleep" { rqtp: U64 }
    ExitNanosleep "syscall_exit_nanosleep" { ret: I64, rmtp: U64 }
    EntryClone "syscall_entry_clone" { clone_flags: X64, newsp: X64, parent_tid: X64, child_tid: X64 }
    ExitClone "syscall_exit_clone" { ret: I64 }
    EntryExecve "syscall_entry_execve" { filename: Str, argv: X64, envp: X64 }
    ExitExecve "syscall_exit_execve" { ret: I64 }
    EntryExit "syscall_entry_exit" { error_code: I32 }
    ExitExit "syscall_exit_exit" { ret: I64 }
    EntryExitGroup "syscall_entry_exit_group" { error_code: I32 }
    ExitExitGroup "syscall_exit_exit_group" { ret: I64 }
    SchedWakeupNew "sched_wakeup_new" { comm: Comm, tid: I32, prio: I32, target_cpu: I32 }
    SchedProcessFork "sched_process_fork" { parent_comm: Comm, parent_tid: I32, parent_pid: I32, parent_ns_inum: U32, child_comm: Comm, child_tid: I32, vtids: SeqU8I32, child_pid: I32, child_ns_inum: U32 }
    SchedProcessExec "sched_process_exec" { filename: Str, tid: I32, old_tid: I32 }
    SchedProcessExit "sched_process_exit" { comm: Comm, tid: I32, prio: I32 }
    SchedProcessFree "sched_process_free" { comm: Comm, tid: I32, prio: I32 }
    BlockRqInsert "block_rq_insert" { dev: U32, sector: U64, nr_sector: U32, bytes: U32, rwbs: U32, tid: I32, comm: Comm, cmd: SeqU32X8 }
    BlockRqIssue "block_rq_issue" { dev: U32, sector: U64, nr_sector: U32, bytes: U32, rwbs: U32, tid: I32, comm: Comm, cmd: SeqU32X8 }
    BlockRqComplete "block_rq_complete" { dev: U32, sector: U64, nr_sector: U32, errors: I32, rwbs: U32, cmd: SeqU32X8 }
    StatedumpStart "lttng_statedump_start" { }
    StatedumpEnd "lttng_statedump_end" { }
    StatedumpProcessState "lttng_statedump_process_state" { tid: I32, vtid: I32, pid: I32, vpid: I32, ppid: I32, vppid: I32, name: Comm, type: I32, mode: I32, submode: I32, status: I32, ns_level: I32, ns_inum: U32 }
    StatedumpFileDescriptor "lttng_statedump_file_descriptor" { pid: I32, fd: I32, flags: X32, fmode: X32, filename: Str }
    StatedumpInterrupt "lttng_statedump_interrupt" { irq: U32, name: Str, action: Str }
    StatedumpBlockDevice "lttng_statedump_block_device" { dev: U32, diskname: Str }
    // KVM host mode only (declared only then, so that other traces keep their bytes);
    // lttng-modules 2.8 names and fields (`arch/x86/kvm/trace.h`, MAP to `kvm_x86_*`).
    KvmEntry "kvm_x86_entry" { vcpu_id: U32 }
    KvmExit "kvm_x86_exit" { exit_reason: U32, guest_rip: U64, isa: U32, info1: U64, info2: U64 }
    // Host and guest traces of an experiment only: the lttng-modules addons'
    // hypercall synchronization events (`cnt`, `vm_uid`).
    VmsyncGhHost "vmsync_gh_host" { cnt: I32, vm_uid: I64 }
    VmsyncHgHost "vmsync_hg_host" { cnt: I32, vm_uid: I64 }
    VmsyncGhGuest "vmsync_gh_guest" { cnt: I32, vm_uid: I64 }
    VmsyncHgGuest "vmsync_hg_guest" { cnt: I32, vm_uid: I64 }
}

/// Classes declared without the KVM host mode: all but the KVM ones at the end.
pub(crate) const BASE_CLASSES: usize = Ev::KvmEntry as usize;

/// Which classes a trace declares, beyond the base kernel ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Declared {
    Kernel,
    /// KVM host: kvm entry/exit.
    KvmHost,
    /// KVM host with guest traces: kvm entry/exit and the host vmsync events.
    KvmHostSync,
    /// Guest: the guest vmsync events.
    Guest,
}

impl Declared {
    pub(crate) fn declares(self, id: usize) -> bool {
        let kvm = (Ev::KvmEntry as usize..=Ev::KvmExit as usize).contains(&id);
        let host_sync = (Ev::VmsyncGhHost as usize..=Ev::VmsyncHgHost as usize).contains(&id);
        let guest_sync = (Ev::VmsyncGhGuest as usize..=Ev::VmsyncHgGuest as usize).contains(&id);
        match self {
            Declared::Kernel => id < BASE_CLASSES,
            Declared::KvmHost => id < BASE_CLASSES || kvm,
            Declared::KvmHostSync => id < BASE_CLASSES || kvm || host_sync,
            Declared::Guest => id < BASE_CLASSES || guest_sync,
        }
    }
}

impl Ev {
    pub(crate) fn id(self) -> u32 {
        self as u32
    }
    #[cfg(any(debug_assertions, test))]
    pub(crate) fn class(self) -> &'static EventClass {
        &EVENT_CLASSES[self as usize]
    }
}

/// What the `env` block declares.
pub(crate) struct TraceEnv<'a> {
    pub hostname: &'a str,
    pub uuid: [u8; 16],
    pub clock_uuid: [u8; 16],
    pub clock_offset: u64,
    /// KVM host mode: every event carries the `pid` and `tid` contexts
    /// (`lttng add-context -k -t pid -t tid`).
    pub kvm: bool,
    pub declared: Declared,
}

pub(crate) fn uuid_text(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn int_decl(size: u32, signed: bool, base: u32) -> String {
    format!(
        "integer {{ size = {size}; align = 8; signed = {}; encoding = none; base = {base}; }}",
        signed as u8
    )
}

fn field_decl(out: &mut String, f: &Field) {
    let name = f.name;
    let line = match f.ty {
        Ty::U16 => format!("{} _{name};", int_decl(16, false, 10)),
        Ty::U32 => format!("{} _{name};", int_decl(32, false, 10)),
        Ty::I32 => format!("{} _{name};", int_decl(32, true, 10)),
        Ty::U64 => format!("{} _{name};", int_decl(64, false, 10)),
        Ty::I64 => format!("{} _{name};", int_decl(64, true, 10)),
        Ty::X32 => format!("{} _{name};", int_decl(32, false, 16)),
        Ty::X64 => format!("{} _{name};", int_decl(64, false, 16)),
        Ty::Comm => format!(
            "integer {{ size = 8; align = 8; signed = 0; encoding = UTF8; base = 10; }} _{name}[16];"
        ),
        Ty::Str => format!("string _{name};"),
        Ty::SeqU8I32 => format!(
            "{} __{name}_length;\n\t\t{} _{name}[ __{name}_length ];",
            int_decl(8, false, 10),
            int_decl(32, true, 10)
        ),
        Ty::SeqU32X8 => format!(
            "{} __{name}_length;\n\t\t{} _{name}[ __{name}_length ];",
            int_decl(32, false, 10),
            int_decl(8, false, 16)
        ),
    };
    let _ = writeln!(out, "\t\t{line}");
}

/// The metadata text (TSDL) of a generated trace.
pub(crate) fn tsdl(env: &TraceEnv) -> String {
    let mut s = String::with_capacity(64 * 1024);
    s.push_str("/* CTF 1.8 */\n\n");
    for (size, align, name) in [
        (8, 8, "uint8_t"),
        (16, 8, "uint16_t"),
        (32, 8, "uint32_t"),
        (64, 8, "uint64_t"),
        (64, 8, "unsigned long"),
        (5, 1, "uint5_t"),
        (27, 1, "uint27_t"),
    ] {
        let _ = writeln!(
            s,
            "typealias integer {{ size = {size}; align = {align}; signed = false; }} := {name};"
        );
    }
    let _ = write!(
        s,
        "\ntrace {{\n\tmajor = 1;\n\tminor = 8;\n\tuuid = \"{}\";\n\tbyte_order = le;\n\
         \tpacket.header := struct {{\n\t\tuint32_t magic;\n\t\tuint8_t  uuid[16];\n\
         \t\tuint32_t stream_id;\n\t\tuint64_t stream_instance_id;\n\t}};\n}};\n\n",
        uuid_text(&env.uuid)
    );
    let _ = write!(
        s,
        "env {{\n\thostname = \"{}\";\n\tdomain = \"kernel\";\n\tsysname = \"Linux\";\n\
         \tkernel_release = \"4.4.0-sextant\";\n\tkernel_version = \"#1 SMP Sextant synthetic kernel\";\n\
         \ttracer_name = \"lttng-modules\";\n\ttracer_major = 2;\n\ttracer_minor = 8;\n\
         \ttracer_patchlevel = 0;\n}};\n\n",
        env.hostname
    );
    let _ = write!(
        s,
        "clock {{\n\tname = \"monotonic\";\n\tuuid = \"{}\";\n\tdescription = \"Monotonic Clock\";\n\
         \tfreq = 1000000000; /* Hz */\n\t/* offset from the Epoch, in clock cycles */\n\
         \toffset = {};\n}};\n\n",
        uuid_text(&env.clock_uuid),
        env.clock_offset
    );
    for (size, align) in [(27, 1), (32, 8), (64, 8)] {
        let _ = write!(
            s,
            "typealias integer {{\n\tsize = {size}; align = {align}; signed = false;\n\
             \tmap = clock.monotonic.value;\n}} := uint{size}_clock_monotonic_t;\n\n"
        );
    }
    s.push_str(
        "struct packet_context {\n\tuint64_clock_monotonic_t timestamp_begin;\n\
         \tuint64_clock_monotonic_t timestamp_end;\n\tuint64_t content_size;\n\tuint64_t packet_size;\n\
         \tuint64_t packet_seq_num;\n\tunsigned long events_discarded;\n\tuint32_t cpu_id;\n};\n\n",
    );
    s.push_str(
        "struct event_header_compact {\n\tenum : uint5_t { compact = 0 ... 30, extended = 31 } id;\n\
         \tvariant <id> {\n\t\tstruct {\n\t\t\tuint27_clock_monotonic_t timestamp;\n\t\t} compact;\n\
         \t\tstruct {\n\t\t\tuint32_t id;\n\t\t\tuint64_clock_monotonic_t timestamp;\n\t\t} extended;\n\
         \t} v;\n} align(8);\n\n",
    );
    s.push_str(
        "struct event_header_large {\n\tenum : uint16_t { compact = 0 ... 65534, extended = 65535 } id;\n\
         \tvariant <id> {\n\t\tstruct {\n\t\t\tuint32_clock_monotonic_t timestamp;\n\t\t} compact;\n\
         \t\tstruct {\n\t\t\tuint32_t id;\n\t\t\tuint64_clock_monotonic_t timestamp;\n\t\t} extended;\n\
         \t} v;\n} align(8);\n\n",
    );
    if env.kvm {
        let _ = write!(
            s,
            "stream {{\n\tid = 0;\n\tevent.header := struct event_header_compact;\n\
             \tpacket.context := struct packet_context;\n\tevent.context := struct {{\n\
             \t\t{} _pid;\n\t\t{} _tid;\n\t}};\n}};\n\n",
            int_decl(32, true, 10),
            int_decl(32, true, 10)
        );
    } else {
        s.push_str(
            "stream {\n\tid = 0;\n\tevent.header := struct event_header_compact;\n\
             \tpacket.context := struct packet_context;\n};\n\n",
        );
    }
    for (id, class) in EVENT_CLASSES.iter().enumerate() {
        if !env.declared.declares(id) {
            continue;
        }
        let _ = write!(
            s,
            "event {{\n\tname = \"{}\";\n\tid = {id};\n\tstream_id = 0;\n\tfields := struct {{\n",
            class.name
        );
        for f in class.fields {
            field_decl(&mut s, f);
        }
        s.push_str("\t};\n};\n\n");
    }
    s
}

/// Metadata packet header size (bytes) and the packet size LTTng uses (4 KiB).
const METADATA_HEADER: usize = 37;
const METADATA_PACKET: usize = 4096;

/// The metadata stream in LTTng's packetized form: 4 KiB packets, each a 37-byte
/// header (magic, UUID, sizes in bits, CTF 1.8) followed by TSDL text.
pub(crate) fn packetized_metadata(text: &str, uuid: &[u8; 16]) -> Vec<u8> {
    let room = METADATA_PACKET - METADATA_HEADER;
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len().div_ceil(room) * METADATA_PACKET);
    for chunk in bytes.chunks(room) {
        let start = out.len();
        out.extend_from_slice(&0x75D1_1D57u32.to_le_bytes());
        out.extend_from_slice(uuid);
        out.extend_from_slice(&0u32.to_le_bytes()); // checksum
        out.extend_from_slice(&(((METADATA_HEADER + chunk.len()) * 8) as u32).to_le_bytes());
        out.extend_from_slice(&((METADATA_PACKET * 8) as u32).to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 1, 8]); // compression, encryption, checksum schemes; 1.8
        out.extend_from_slice(chunk);
        out.resize(start + METADATA_PACKET, 0);
    }
    out
}

/// A payload under construction. Debug builds check each value against the
/// event class's declared field, so payload and metadata cannot drift apart.
pub(crate) struct Payload {
    pub buf: Vec<u8>,
    #[cfg(debug_assertions)]
    check: (&'static [Field], usize),
}

impl Payload {
    pub(crate) fn new() -> Self {
        Payload {
            buf: Vec::with_capacity(1024),
            #[cfg(debug_assertions)]
            check: (&[], 0),
        }
    }

    #[inline]
    pub(crate) fn start(&mut self, _ev: Ev) {
        self.buf.clear();
        #[cfg(debug_assertions)]
        {
            self.check = (_ev.class().fields, 0);
        }
    }

    #[inline]
    fn expect(&mut self, _ty: Ty) {
        #[cfg(debug_assertions)]
        {
            let (fields, i) = self.check;
            assert!(i < fields.len(), "payload has more fields than declared");
            assert_eq!(
                fields[i].ty, _ty,
                "field {} has the wrong type",
                fields[i].name
            );
            self.check.1 += 1;
        }
    }

    /// Debug check that every declared field was written.
    #[inline]
    pub(crate) fn finish(&self) {
        #[cfg(debug_assertions)]
        assert_eq!(self.check.1, self.check.0.len(), "payload misses fields");
    }

    #[inline]
    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.expect(Ty::U16);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    #[inline]
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.expect(Ty::U32);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    #[inline]
    pub(crate) fn x32(&mut self, v: u32) -> &mut Self {
        self.expect(Ty::X32);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    #[inline]
    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        self.expect(Ty::I32);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    #[inline]
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.expect(Ty::U64);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    #[inline]
    pub(crate) fn x64(&mut self, v: u64) -> &mut Self {
        self.expect(Ty::X64);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    #[inline]
    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.expect(Ty::I64);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    #[inline]
    pub(crate) fn comm(&mut self, v: &[u8; 16]) -> &mut Self {
        self.expect(Ty::Comm);
        self.buf.extend_from_slice(v);
        self
    }
    /// A string; callers pass text without NUL bytes.
    #[inline]
    pub(crate) fn str(&mut self, v: &str) -> &mut Self {
        self.expect(Ty::Str);
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(0);
        self
    }
    #[inline]
    pub(crate) fn seq_u8_i32(&mut self, v: &[i32]) -> &mut Self {
        self.expect(Ty::SeqU8I32);
        self.buf.push(v.len() as u8);
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
        self
    }
    #[inline]
    pub(crate) fn seq_u32_x8(&mut self, v: &[u8]) -> &mut Self {
        self.expect(Ty::SeqU32X8);
        self.buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(v);
        self
    }
}

/// A task name as the kernel stores it: at most 15 bytes, NUL-padded to 16.
pub(crate) fn comm(name: &str) -> [u8; 16] {
    let mut c = [0u8; 16];
    let b = name.as_bytes();
    let n = b.len().min(15);
    c[..n].copy_from_slice(&b[..n]);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_ids_go_to_the_frequent_events_and_names_are_unique() {
        assert!(Ev::SchedSwitch.id() < 31 && Ev::ExitRead.id() < 31);
        assert_eq!(
            Ev::StatedumpBlockDevice.class().name,
            "lttng_statedump_block_device"
        );
        let mut names: Vec<&str> = EVENT_CLASSES.iter().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), EVENT_CLASSES.len());
    }

    #[test]
    fn metadata_packets_reassemble_to_the_text() {
        let env = TraceEnv {
            hostname: "h",
            uuid: [7; 16],
            clock_uuid: [8; 16],
            clock_offset: 42,
            kvm: false,
            declared: Declared::Kernel,
        };
        let text = tsdl(&env);
        let packed = packetized_metadata(&text, &env.uuid);
        assert_eq!(packed.len() % 4096, 0);
        let mut back = Vec::new();
        for p in packed.chunks(4096) {
            assert_eq!(&p[..4], &[0x57, 0x1D, 0xD1, 0x75]);
            let content = u32::from_le_bytes(p[24..28].try_into().unwrap()) as usize / 8;
            back.extend_from_slice(&p[37..content]);
        }
        assert_eq!(back, text.as_bytes());
        assert!(text.contains("tracer_minor = 8;") && text.contains("offset = 42;"));
    }
}
