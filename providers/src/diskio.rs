//! The disk I/O analysis (Trace Compass "Input Output Analysis", provider version 4;
//! `shared/spec/providers.md` §5): block requests through the waiting and driver
//! queues of each disk, sectors read and written, and bytes read and written by
//! threads' `read*`/`write*` system calls.
//!
//! Requests are objects in Trace Compass and handlers mutate the one found in a
//! queue; here they live in an arena (`Request` by index) and queues hold
//! indexes, so the same aliasing (one request in two slots after a front merge
//! moved its sector) gives the same states.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use sht::{Quark, StateSystemBuilder, StateValue, ROOT_QUARK};

use crate::kernel::Layout;
use crate::{EventFields, ProviderError, StateProvider, Subscription, TraceInfo};

/// Analysis id.
pub const DISKIO_ANALYSIS_ID: &str = "org.eclipse.tracecompass.analysis.os.linux.inputoutput";
/// Provider version.
pub const DISKIO_PROVIDER_VERSION: i32 = 4;

/// Request type, stored as its ordinal in the queue slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoType {
    Write = 0,
    Read = 1,
    Flush = 2,
    Other = 3,
}

impl IoType {
    /// From the `rwbs` bits (`IoOperationType.getType`).
    pub fn from_rwbs(rwbs: Option<i64>) -> IoType {
        let Some(rwbs) = rwbs.map(|v| v as i32) else {
            return IoType::Other;
        };
        if rwbs & 1 != 0 {
            IoType::Write
        } else if rwbs & (4 | 8) != 0 {
            IoType::Read
        } else if rwbs & (256 | 1024) != 0 {
            IoType::Flush
        } else {
            IoType::Other
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Request {
    sector: i64,
    nr_sector: i32,
    ty: IoType,
}

impl Request {
    fn includes(&self, other: &Request) -> bool {
        self.ty == other.ty
            && self.sector <= other.sector
            && self.sector + self.nr_sector as i64 >= other.sector + other.nr_sector as i64
    }
}

/// `TmfAttributePool` with a priority queue: the lowest free slot first.
struct Pool {
    base: Quark,
    free: BinaryHeap<Reverse<Quark>>,
    count: u32,
}

struct Disk {
    quark: Quark,
    waiting_pool: Pool,
    driver_pool: Pool,
    /// (request index, slot quark), in insertion order.
    waiting: Vec<(usize, Quark)>,
    driver: Vec<(usize, Quark)>,
}

/// Constant attribute names, one shared object each (as Java's constants).
struct Names {
    disks: Arc<str>,
    waiting_queue: Arc<str>,
    driver_queue: Arc<str>,
    waiting_length: Arc<str>,
    driver_length: Arc<str>,
    current_request: Arc<str>,
    request_size: Arc<str>,
    merged_in: Arc<str>,
    issued_from: Arc<str>,
    sectors_read: Arc<str>,
    sectors_written: Arc<str>,
    system_calls: Arc<str>,
    threads: Arc<str>,
    bytes_read: Arc<str>,
    bytes_written: Arc<str>,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            disks: "Disks".into(),
            waiting_queue: "Waiting_queue".into(),
            driver_queue: "Driver_queue".into(),
            waiting_length: "waitingqueue_length".into(),
            driver_length: "driverqueue_length".into(),
            current_request: "Current_request".into(),
            request_size: "Request_size".into(),
            merged_in: "merged_in".into(),
            issued_from: "issued_from".into(),
            sectors_read: "sectors_read".into(),
            sectors_written: "sectors_written".into(),
            system_calls: "system_calls".into(),
            threads: "Threads".into(),
            bytes_read: "bytes_read".into(),
            bytes_written: "bytes_written".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handler {
    Insert = 0,
    Issue,
    Complete,
    FrontMerge,
    Merge,
    Statedump,
    SysEntry,
    SysExit,
    Switch,
}

const HANDLERS: [Handler; 9] = [
    Handler::Insert,
    Handler::Issue,
    Handler::Complete,
    Handler::FrontMerge,
    Handler::Merge,
    Handler::Statedump,
    Handler::SysEntry,
    Handler::SysExit,
    Handler::Switch,
];

/// Handler numbers from here on are syscall entries, indexing `syscall_names`.
const SYSCALL_BASE: u32 = 1 << 16;

/// The disk I/O state provider.
pub struct DiskIoStateProvider {
    layout: &'static Layout,
    /// Event names of the block-merge and block-device statedump events.
    merge_event: &'static str,
    statedump_events: &'static [&'static str],
    names: Names,
    disks: Vec<Disk>,
    disk_index: HashMap<i32, usize>,
    requests: Vec<Request>,
    /// Queue slots holding each request; requests in none are recycled after the
    /// event (`pending`), so memory follows the queues, not the trace length.
    refs: Vec<u32>,
    pending: Vec<usize>,
    free: Vec<usize>,
    disks_root: Option<Quark>,
    syscall_names: Vec<StateValue>,
    /// Thread running on each CPU (from `sched_switch`), for the syscall handlers'
    /// thread (Trace Compass resolves it with its TID analysis).
    current_tid: HashMap<u32, i32>,
    block_events: usize,
    skipped: crate::SkippedEvents,
    machines_warning: Option<String>,
}

impl Default for DiskIoStateProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl DiskIoStateProvider {
    pub fn new() -> Self {
        DiskIoStateProvider {
            layout: &Layout::LTTNG,
            merge_event: "block_rq_merge",
            statedump_events: &["statedump_block_device"],
            names: Names::default(),
            disks: Vec::new(),
            disk_index: HashMap::new(),
            requests: Vec::new(),
            refs: Vec::new(),
            pending: Vec::new(),
            free: Vec::new(),
            disks_root: None,
            syscall_names: Vec::new(),
            current_tid: HashMap::new(),
            block_events: 0,
            skipped: Default::default(),
            machines_warning: None,
        }
    }

    fn handler_of(&self, name: &str) -> Option<Handler> {
        Some(match name {
            "block_rq_insert" => Handler::Insert,
            "block_rq_issue" => Handler::Issue,
            "block_rq_complete" => Handler::Complete,
            "block_bio_frontmerge" => Handler::FrontMerge,
            n if n == self.merge_event => Handler::Merge,
            n if self.statedump_events.contains(&n) => Handler::Statedump,
            n if n == self.layout.sched_switch => Handler::Switch,
            _ => return None,
        })
    }

    /// `getDisk`: creates the disk's attributes on first use.
    fn disk(&mut self, ss: &mut dyn StateSystemBuilder, dev: i32) -> sht::Result<usize> {
        if let Some(&i) = self.disk_index.get(&dev) {
            return Ok(i);
        }
        let root = match self.disks_root {
            Some(q) => q,
            None => {
                let q = ss.child_and_add_shared(ROOT_QUARK, &self.names.disks)?;
                self.disks_root = Some(q);
                q
            }
        };
        let quark = ss.quark_relative_and_add(root, &[&dev.to_string()])?;
        let wq = ss.child_and_add_shared(quark, &self.names.waiting_queue)?;
        ss.child_and_add_shared(quark, &self.names.waiting_length)?;
        let dq = ss.child_and_add_shared(quark, &self.names.driver_queue)?;
        ss.child_and_add_shared(quark, &self.names.driver_length)?;
        let pool = |base| Pool {
            base,
            free: BinaryHeap::new(),
            count: 0,
        };
        self.disks.push(Disk {
            quark,
            waiting_pool: pool(wq),
            driver_pool: pool(dq),
            waiting: Vec::new(),
            driver: Vec::new(),
        });
        self.disk_index.insert(dev, self.disks.len() - 1);
        Ok(self.disks.len() - 1)
    }

    fn new_request(&mut self, sector: i64, nr_sector: i32, ty: IoType) -> usize {
        let req = Request {
            sector,
            nr_sector,
            ty,
        };
        let r = match self.free.pop() {
            Some(r) => {
                self.requests[r] = req;
                r
            }
            None => {
                self.requests.push(req);
                self.refs.push(0);
                self.requests.len() - 1
            }
        };
        self.pending.push(r);
        r
    }

    fn unref(refs: &mut [u32], pending: &mut Vec<usize>, r: usize) {
        refs[r] -= 1;
        if refs[r] == 0 {
            pending.push(r);
        }
    }

    /// Recycles the requests of this event that no queue holds.
    fn recycle_requests(&mut self) {
        for r in self.pending.drain(..) {
            if self.refs[r] == 0 && !self.free.contains(&r) {
                self.free.push(r);
            }
        }
    }

    /// First waiting request with this sector.
    fn waiting_request(&self, d: usize, sector: i64) -> Option<usize> {
        self.disks[d]
            .waiting
            .iter()
            .map(|&(r, _)| r)
            .find(|&r| self.requests[r].sector == sector)
    }

    fn get_available(ss: &mut dyn StateSystemBuilder, pool: &mut Pool) -> sht::Result<Quark> {
        if let Some(Reverse(q)) = pool.free.pop() {
            return Ok(q);
        }
        let q = ss.quark_relative_and_add(pool.base, &[&pool.count.to_string()])?;
        pool.count += 1;
        Ok(q)
    }

    fn slot_number(ss: &dyn StateSystemBuilder, slot: Quark) -> sht::Result<StateValue> {
        let name = ss.attributes().name(slot)?;
        Ok(name
            .parse()
            .map(StateValue::Int)
            .unwrap_or(StateValue::Null))
    }

    /// `removeWaitingRequest`: the first waiting request with this sector and type,
    /// its slot recycled; returns the slot.
    fn remove_waiting(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        t: i64,
        d: usize,
        sector: i64,
        ty: IoType,
    ) -> sht::Result<Option<Quark>> {
        let requests = &self.requests;
        let disk = &mut self.disks[d];
        let Some(pos) = disk.waiting.iter().position(|&(r, _)| {
            let r = &requests[r];
            r.sector == sector && r.ty == ty
        }) else {
            return Ok(None);
        };
        let (r, slot) = disk.waiting.remove(pos);
        Self::unref(&mut self.refs, &mut self.pending, r);
        ss.remove(t, slot)?;
        disk.waiting_pool.free.push(Reverse(slot));
        Ok(Some(slot))
    }

    fn write_slot(
        &self,
        ss: &mut dyn StateSystemBuilder,
        t: i64,
        slot: Quark,
        req: Request,
        last: (&Arc<str>, StateValue),
    ) -> sht::Result<()> {
        ss.modify(t, StateValue::Int(req.ty as i32), slot)?;
        let q = ss.child_and_add_shared(slot, &self.names.current_request)?;
        ss.modify(t, StateValue::Long(req.sector), q)?;
        let q = ss.child_and_add_shared(slot, &self.names.request_size)?;
        ss.modify(t, StateValue::Int(req.nr_sector), q)?;
        let q = ss.child_and_add_shared(slot, last.0)?;
        ss.modify(t, last.1, q)
    }

    fn add_waiting(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        t: i64,
        d: usize,
        r: usize,
    ) -> sht::Result<Quark> {
        let slot = Self::get_available(ss, &mut self.disks[d].waiting_pool)?;
        let merged_in = Arc::clone(&self.names.merged_in);
        self.write_slot(
            ss,
            t,
            slot,
            self.requests[r],
            (&merged_in, StateValue::Null),
        )?;
        self.disks[d].waiting.push((r, slot));
        self.refs[r] += 1;
        self.update_lengths(ss, t, d)?;
        Ok(slot)
    }

    /// `updateWaitingRequest`: rewrites the *last* waiting slot with the request's
    /// sector, or adds the request if there is none.
    fn update_waiting(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        t: i64,
        d: usize,
        r: usize,
    ) -> sht::Result<Quark> {
        let req = self.requests[r];
        let found = self.disks[d]
            .waiting
            .iter()
            .rev()
            .find(|&&(w, _)| self.requests[w].sector == req.sector)
            .map(|&(_, slot)| slot);
        let Some(slot) = found else {
            return self.add_waiting(ss, t, d, r);
        };
        let q = ss.child_and_add_shared(slot, &self.names.current_request)?;
        ss.modify(t, StateValue::Long(req.sector), q)?;
        let q = ss.child_and_add_shared(slot, &self.names.request_size)?;
        ss.modify(t, StateValue::Int(req.nr_sector), q)?;
        let q = ss.child_and_add_shared(slot, &self.names.merged_in)?;
        ss.modify(t, StateValue::Null, q)?;
        self.update_lengths(ss, t, d)?;
        Ok(slot)
    }

    fn update_lengths(&self, ss: &mut dyn StateSystemBuilder, t: i64, d: usize) -> sht::Result<()> {
        let disk = &self.disks[d];
        let q = ss.child_and_add_shared(disk.quark, &self.names.driver_length)?;
        ss.modify(t, StateValue::Int(disk.driver.len() as i32), q)?;
        let q = ss.child_and_add_shared(disk.quark, &self.names.waiting_length)?;
        ss.modify(t, StateValue::Int(disk.waiting.len() as i32), q)
    }

    fn issue(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        t: i64,
        d: usize,
        r: usize,
    ) -> sht::Result<()> {
        let req = self.requests[r];
        let issued_from = match self.remove_waiting(ss, t, d, req.sector, req.ty)? {
            Some(slot) => Self::slot_number(ss, slot)?,
            None => {
                // Maybe already being processed: then this one is not added.
                let covered = self.disks[d]
                    .driver
                    .iter()
                    .any(|&(o, _)| self.requests[o].includes(&req));
                if covered {
                    return Ok(());
                }
                StateValue::Null
            }
        };
        // Waiting requests entirely covered by this one were merged without an event.
        let requests = &self.requests;
        let disk = &mut self.disks[d];
        let mut dangling = Vec::new();
        disk.waiting.retain(|&(o, slot)| {
            let covered = req.includes(&requests[o]);
            if covered {
                dangling.push((o, slot));
            }
            !covered
        });
        let dangling: Vec<Quark> = dangling
            .into_iter()
            .map(|(o, slot)| {
                Self::unref(&mut self.refs, &mut self.pending, o);
                slot
            })
            .collect();
        for slot in dangling {
            ss.remove(t, slot)?;
            disk.waiting_pool.free.push(Reverse(slot));
        }
        let slot = Self::get_available(ss, &mut self.disks[d].driver_pool)?;
        let issued = Arc::clone(&self.names.issued_from);
        self.write_slot(ss, t, slot, req, (&issued, issued_from))?;
        self.disks[d].driver.push((r, slot));
        self.refs[r] += 1;
        self.update_lengths(ss, t, d)
    }

    fn complete(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        t: i64,
        d: usize,
        req: Request,
    ) -> sht::Result<()> {
        let disk_quark = self.disks[d].quark;
        let counter = match req.ty {
            IoType::Read => Some(&self.names.sectors_read),
            IoType::Write => Some(&self.names.sectors_written),
            _ => None,
        };
        if let Some(name) = counter {
            let q = ss.child_and_add_shared(disk_quark, name)?;
            ss.increment(t, StateValue::Int(req.nr_sector), q)?;
        }
        let requests = &self.requests;
        let disk = &mut self.disks[d];
        if let Some(pos) = disk.driver.iter().position(|&(o, _)| {
            let o = &requests[o];
            o.sector == req.sector && o.ty == req.ty
        }) {
            let (r, slot) = disk.driver.remove(pos);
            Self::unref(&mut self.refs, &mut self.pending, r);
            ss.remove(t, slot)?;
            disk.driver_pool.free.push(Reverse(slot));
        }
        self.update_lengths(ss, t, d)
    }
}

impl StateProvider for DiskIoStateProvider {
    fn id(&self) -> &'static str {
        DISKIO_ANALYSIS_ID
    }

    fn version(&self) -> i32 {
        DISKIO_PROVIDER_VERSION
    }

    fn check_trace(&mut self, trace: &TraceInfo) -> Result<(), ProviderError> {
        self.machines_warning = crate::several_machines_warning(trace);
        if !trace.domain.is_empty() && trace.domain != "kernel" {
            return Err(ProviderError::Unsupported {
                analysis: DISKIO_ANALYSIS_ID.into(),
                what: format!(
                    "trace {:?} is in the {:?} domain; the disk I/O analysis needs a kernel trace",
                    trace.name, trace.domain
                ),
            });
        }
        self.layout = Layout::for_trace(trace);
        if trace.env_str("tracer_name").is_some() {
            // LTTng traces: Trace Compass's LTTng layouts.
            self.merge_event = "addons_elv_merge_requests";
            self.statedump_events = &["lttng_statedump_block_device"];
        } else {
            // Traces without a tracer (XML stub traces): the default layout, with the
            // statedump name of Trace Compass's I/O test layout.
            self.merge_event = "block_rq_merge";
            self.statedump_events = &["statedump_block_device", "lttng_statedump_block_device"];
        }
        Ok(())
    }

    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        if let Some(h) = self.handler_of(event_name) {
            let fields = match h {
                Handler::Insert | Handler::Issue | Handler::Complete | Handler::FrontMerge => {
                    self.block_events += 1;
                    vec!["dev", "sector", "nr_sector", "rwbs"]
                }
                Handler::Merge => vec!["dev", "rq_sector", "nextrq_sector"],
                Handler::Statedump => vec!["dev", "diskname"],
                Handler::Switch => vec![self.layout.field_next_tid],
                Handler::SysEntry | Handler::SysExit => vec![],
            };
            return Some(Subscription {
                handler: h as u32,
                fields,
            });
        }
        let l = self.layout;
        if event_name.starts_with(l.syscall_exit_prefix)
            || event_name.starts_with(l.compat_syscall_exit_prefix)
        {
            return Some(Subscription {
                handler: Handler::SysExit as u32,
                fields: vec!["ret"],
            });
        }
        if event_name.starts_with(l.syscall_entry_prefix)
            || event_name.starts_with(l.compat_syscall_entry_prefix)
        {
            let handler = SYSCALL_BASE + self.syscall_names.len() as u32;
            // The whole event name, prefix included.
            self.syscall_names
                .push(StateValue::String(Arc::from(event_name)));
            return Some(Subscription {
                handler,
                fields: vec![],
            });
        }
        None
    }

    fn check_subscriptions(&self, _: &[(String, &'static str)]) -> Result<(), ProviderError> {
        if self.block_events == 0 {
            return Err(ProviderError::Unsupported {
                analysis: DISKIO_ANALYSIS_ID.into(),
                what: "the trace has no block_rq_insert, block_rq_issue, block_rq_complete or \
                       block_bio_frontmerge event (enable the kernel block events)"
                    .into(),
            });
        }
        Ok(())
    }

    fn handle(
        &mut self,
        handler: u32,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let result = self.handle_event(handler, ev, ss);
        self.recycle_requests();
        self.skipped.absorb(result, ev.timestamp())
    }

    fn warnings(&self) -> Vec<String> {
        let mut w = self.skipped.warnings();
        w.extend(self.machines_warning.clone());
        w
    }
}

impl DiskIoStateProvider {
    fn handle_event(
        &mut self,
        handler: u32,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let t = ev.timestamp();
        if handler >= SYSCALL_BASE {
            let Some(tid) = ev.cpu().and_then(|c| self.current_tid.get(&c).copied()) else {
                return Ok(());
            };
            let name = self.syscall_names[(handler - SYSCALL_BASE) as usize].clone();
            let root = ss.child_and_add_shared(ROOT_QUARK, &self.names.system_calls)?;
            let q = ss.quark_relative_and_add(root, &[&tid.to_string()])?;
            return ss.modify(t, name, q);
        }
        let Some(&h) = HANDLERS.get(handler as usize) else {
            return Ok(());
        };
        match h {
            Handler::Switch => {
                if let (Some(cpu), Some(tid)) = (ev.cpu(), ev.int(0)) {
                    self.current_tid.insert(cpu, tid as i32);
                }
                Ok(())
            }
            Handler::Insert => {
                let (Some(dev), Some(sector), Some(nr)) = (ev.int(0), ev.int(1), ev.int(2)) else {
                    return Ok(());
                };
                let ty = IoType::from_rwbs(ev.int(3));
                let d = self.disk(ss, dev as i32)?;
                if nr as i32 == 0 {
                    return Ok(());
                }
                let r = self.new_request(sector, nr as i32, ty);
                self.add_waiting(ss, t, d, r).map(|_| ())
            }
            Handler::Issue => {
                let (Some(dev), Some(sector), Some(nr)) = (ev.int(0), ev.int(1), ev.int(2)) else {
                    return Ok(());
                };
                let ty = IoType::from_rwbs(ev.int(3));
                let d = self.disk(ss, dev as i32)?;
                let r = match self.waiting_request(d, sector) {
                    Some(r) => r,
                    None => self.new_request(sector, nr as i32, ty),
                };
                self.requests[r].nr_sector = nr as i32;
                self.requests[r].ty = ty;
                self.issue(ss, t, d, r)
            }
            Handler::Complete => {
                let (Some(dev), Some(mut sector), Some(nr)) = (ev.int(0), ev.int(1), ev.int(2))
                else {
                    return Ok(());
                };
                let ty = IoType::from_rwbs(ev.int(3));
                let d = self.disk(ss, dev as i32)?;
                // A flush completes with sector -1 what was issued at sector 0.
                if sector == -1 && ty == IoType::Flush {
                    sector = 0;
                }
                let found = self.disks[d]
                    .driver
                    .iter()
                    .map(|&(r, _)| r)
                    .find(|&r| self.requests[r].sector == sector);
                let req = Request {
                    sector: found.map_or(sector, |r| self.requests[r].sector),
                    nr_sector: nr as i32,
                    ty,
                };
                if let Some(r) = found {
                    self.requests[r].nr_sector = req.nr_sector;
                    self.requests[r].ty = ty;
                }
                self.complete(ss, t, d, req)
            }
            Handler::FrontMerge => {
                let (Some(dev), Some(sector), Some(nr)) = (ev.int(0), ev.int(1), ev.int(2)) else {
                    return Ok(());
                };
                let nr = nr as i32;
                let ty = IoType::from_rwbs(ev.int(3));
                let rq_sector = sector + nr as i64;
                let d = self.disk(ss, dev as i32)?;
                let r = match self.waiting_request(d, rq_sector) {
                    Some(r) => r,
                    None => self.new_request(rq_sector, 1, ty),
                };
                let req = &mut self.requests[r];
                req.nr_sector += nr;
                if sector < req.sector {
                    req.sector = sector;
                }
                self.update_waiting(ss, t, d, r).map(|_| ())
            }
            Handler::Merge => {
                let (Some(dev), Some(base_sector), Some(merged_sector)) =
                    (ev.int(0), ev.int(1), ev.int(2))
                else {
                    return Ok(());
                };
                let d = self.disk(ss, dev as i32)?;
                let base = match self.waiting_request(d, base_sector) {
                    Some(r) => r,
                    None => self.new_request(base_sector, 0, IoType::Other),
                };
                let merged = match self.waiting_request(d, merged_sector) {
                    Some(r) => r,
                    None => self.new_request(merged_sector, 0, IoType::Other),
                };
                let m = self.requests[merged];
                let merged_slot = self.remove_waiting(ss, t, d, m.sector, m.ty)?;
                self.requests[base].nr_sector += self.requests[merged].nr_sector;
                let base_slot = self.update_waiting(ss, t, d, base)?;
                if let Some(slot) = merged_slot {
                    let q = ss.child_and_add_shared(slot, &self.names.merged_in)?;
                    let v = Self::slot_number(ss, base_slot)?;
                    ss.modify(t, v, q)?;
                }
                self.update_lengths(ss, t, d)
            }
            Handler::Statedump => {
                let (Some(dev), Some(name)) = (ev.int(0), ev.string(1)) else {
                    return Ok(());
                };
                let d = self.disk(ss, dev as i32)?;
                let at = ss.current_end_time().max(ss.start_time());
                ss.modify(at, StateValue::String(Arc::from(name)), self.disks[d].quark)
            }
            Handler::SysExit => {
                let Some(tid) = ev.cpu().and_then(|c| self.current_tid.get(&c).copied()) else {
                    return Ok(());
                };
                // Trace Compass creates `system_calls` here too (`getNodeSyscalls`).
                let root = ss.child_and_add_shared(ROOT_QUARK, &self.names.system_calls)?;
                let tid_name = tid.to_string();
                let q = ss.attributes().opt_quark(root, &[&tid_name]);
                if q == sht::INVALID_QUARK {
                    return Ok(());
                }
                let syscall = match ss.query_ongoing(q)? {
                    StateValue::String(s) => s.to_string(),
                    _ => "nullValue".to_string(),
                };
                if let Some(ret) = ev.int(0).map(|r| r as i32).filter(|&r| r >= 0) {
                    let which = if self.is_syscall(&syscall, "read") {
                        Some(0)
                    } else if self.is_syscall(&syscall, "write") {
                        Some(1)
                    } else {
                        None
                    };
                    if let Some(which) = which {
                        let threads = ss.child_and_add_shared(ROOT_QUARK, &self.names.threads)?;
                        let th = ss.quark_relative_and_add(threads, &[&tid_name])?;
                        let read = ss.child_and_add_shared(th, &self.names.bytes_read)?;
                        let written = ss.child_and_add_shared(th, &self.names.bytes_written)?;
                        let q = if which == 0 { read } else { written };
                        ss.increment(t, StateValue::Int(ret), q)?;
                    }
                }
                ss.modify(t, StateValue::Null, q)
            }
            Handler::SysEntry => Ok(()),
        }
    }
}

impl DiskIoStateProvider {
    /// `(<entry prefix>|<compat entry prefix>)[p]?<op>.*`, matched on the whole name.
    fn is_syscall(&self, name: &str, op: &str) -> bool {
        let l = self.layout;
        [l.syscall_entry_prefix, l.compat_syscall_entry_prefix]
            .iter()
            .filter_map(|p| name.strip_prefix(p))
            .any(|rest| {
                rest.starts_with(op) || rest.strip_prefix('p').is_some_and(|r| r.starts_with(op))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{build, Analysis, BuildOptions, Output};
    use crate::testsource::TextSource;
    use sht::StateSystemQuerier;

    fn run(events: &str) -> sht::StateSystem {
        let analyses = vec![Analysis {
            provider: Box::new(DiskIoStateProvider::new()),
            output: Output::InMemory,
        }];
        let mut src = TextSource::new(events);
        let (_, mut systems) = build(&mut src, analyses, &BuildOptions::default()).unwrap();
        systems.remove(0)
    }

    fn at(ss: &sht::StateSystem, path: &[&str], t: i64) -> StateValue {
        let q = ss.quark(path).unwrap_or_else(|_| panic!("{path:?}"));
        ss.query_single(t, q).unwrap().value
    }

    #[test]
    fn rwbs_bits_give_the_request_type() {
        assert_eq!(IoType::from_rwbs(Some(1 | 4)), IoType::Write);
        assert_eq!(IoType::from_rwbs(Some(8)), IoType::Read);
        assert_eq!(IoType::from_rwbs(Some(1024)), IoType::Flush);
        assert_eq!(IoType::from_rwbs(Some(2)), IoType::Other);
        assert_eq!(IoType::from_rwbs(None), IoType::Other);
    }

    #[test]
    fn a_request_goes_through_both_queues() {
        let ss = run("1 statedump_block_device cpu=0 dev=8 diskname=\"sda\"\n\
             5 block_rq_insert cpu=0 dev=8 sector=100 nr_sector=8 rwbs=4\n\
             6 block_rq_insert cpu=0 dev=8 sector=108 nr_sector=8 rwbs=4\n\
             10 block_rq_issue cpu=0 dev=8 sector=100 nr_sector=16 rwbs=4\n\
             20 block_rq_complete cpu=0 dev=8 sector=100 nr_sector=16 rwbs=4");
        assert_eq!(at(&ss, &["Disks", "8"], 1), StateValue::from("sda"));
        assert_eq!(
            at(&ss, &["Disks", "8", "Waiting_queue", "1"], 6),
            StateValue::Int(1)
        );
        assert_eq!(
            at(&ss, &["Disks", "8", "waitingqueue_length"], 6),
            StateValue::Int(2)
        );
        // The issued request covers the second waiting one: both leave the queue.
        assert_eq!(
            at(&ss, &["Disks", "8", "waitingqueue_length"], 10),
            StateValue::Int(0)
        );
        let issued = ["Disks", "8", "Driver_queue", "0", "issued_from"];
        assert_eq!(at(&ss, &issued, 10), StateValue::Int(0));
        assert_eq!(
            at(&ss, &["Disks", "8", "sectors_read"], 20),
            StateValue::Int(16)
        );
        assert_eq!(
            at(&ss, &["Disks", "8", "Driver_queue", "0"], 20),
            StateValue::Null
        );
    }

    struct Block {
        t: i64,
        fields: [Option<i64>; 4],
    }

    impl EventFields for Block {
        fn timestamp(&self) -> i64 {
            self.t
        }
        fn cpu(&self) -> Option<u32> {
            Some(0)
        }
        fn int(&self, slot: usize) -> Option<i64> {
            self.fields.get(slot).copied().flatten()
        }
        fn string(&self, _: usize) -> Option<&str> {
            None
        }
    }

    #[test]
    fn finished_requests_are_recycled() {
        let mut p = DiskIoStateProvider::new();
        p.check_trace(&TraceInfo::default()).unwrap();
        let handler = |p: &mut DiskIoStateProvider, name| p.subscribe(name).unwrap().handler;
        let (ins, iss, com) = (
            handler(&mut p, "block_rq_insert"),
            handler(&mut p, "block_rq_issue"),
            handler(&mut p, "block_rq_complete"),
        );
        let mut ss = sht::StateSystem::null(0);
        for i in 0..1000i64 {
            for (k, h) in [ins, iss, com].into_iter().enumerate() {
                let ev = Block {
                    t: i * 10 + k as i64,
                    fields: [Some(8), Some(i * 8), Some(8), Some(4)],
                };
                p.handle(h, &ev, &mut ss).unwrap();
            }
        }
        assert!(p.requests.len() <= 2, "{} requests kept", p.requests.len());
        let q = ss.quark(&["Disks", "8", "sectors_read"]).unwrap();
        assert_eq!(ss.query_ongoing(q).unwrap(), StateValue::Int(8000));
    }

    #[test]
    fn refuses_traces_without_block_events() {
        let analyses = vec![Analysis {
            provider: Box::new(DiskIoStateProvider::new()),
            output: Output::Null,
        }];
        let mut src = TextSource::new("1 sched_switch cpu=0 next_tid=1");
        let err = build(&mut src, analyses, &BuildOptions::default())
            .err()
            .expect("no block events");
        assert!(err.to_string().contains("block_rq_insert"), "{err}");
    }

    #[test]
    fn read_and_write_syscalls_count_bytes_per_thread() {
        let ss = run("1 sched_switch cpu=0 next_tid=42\n\
             2 block_rq_insert cpu=0 dev=8 sector=1 nr_sector=0 rwbs=4\n\
             3 sys_pread64 cpu=0\n4 exit_syscall cpu=0 ret=100\n\
             5 sys_write cpu=0\n6 exit_syscall cpu=0 ret=7\n\
             7 sys_read cpu=0\n8 exit_syscall cpu=0 ret=-1\n\
             9 sys_open cpu=0\n10 exit_syscall cpu=0 ret=3");
        assert_eq!(
            at(&ss, &["Threads", "42", "bytes_read"], 10),
            StateValue::Int(100)
        );
        assert_eq!(
            at(&ss, &["Threads", "42", "bytes_written"], 10),
            StateValue::Int(7)
        );
        assert_eq!(
            at(&ss, &["system_calls", "42"], 3),
            StateValue::from("sys_pread64")
        );
        assert_eq!(at(&ss, &["system_calls", "42"], 4), StateValue::Null);
        // nr_sector 0: the disk exists but nothing is queued.
        assert_eq!(
            at(&ss, &["Disks", "8", "waitingqueue_length"], 2),
            StateValue::Null
        );
    }
}
