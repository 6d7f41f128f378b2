//! Nova service-task view ("OpenstackServiceView", spec §2.2): what each Nova
//! service (logger) is doing, per-request operation intervals (extension), and
//! the VM states seen by `nova.compute.manager`.
//!
//! Tree: `SERVICEs/<logger>/{Action (int), Request_id (string)}`,
//! `VMs/<vmname>/Action` (int, VM state code), and
//! `Requests/<request_id>/{VM (string), Ops/<operation> (int)}`.

use crate::openstack::service_message;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use sht::{Quark, StateSystemBuilder, StateValue};

use super::{
    phase, text, vm_state_code, Malformed, NameHasher, Phase, ServiceQuarks, R_UNKNOWN_TYPE,
};
use crate::{EventFields, StateProvider};

pub const ID: &str = "org.eclipse.tracecompass.analysis.os.linux.core.openstack.service.id";
pub const VERSION: i32 = 1;

const R_MISSING_KEYS: &str = "without event_type, vmname or request_id";
const R_NO_REQUEST_ID: &str = "with an empty request_id (no Requests entry)";
const R_UNKNOWN_STATE: &str = "with an unknown vm_state (VM row unchanged)";

/// Operation codes of `<op>.start` events (the `.end` event resets).
pub fn operation_code(op: &str) -> Option<i32> {
    Some(match op {
        "compute.instance.create" => 10,
        "compute.instance.pause" => 11,
        "compute.instance.delete" => 12,
        "compute.instance.shutdown" => 13,
        "compute.instance.live_migration.pre" => 14,
        "compute.instance.live_migration.post.dest" => 15,
        "compute.instance.live_migration._post" => 16,
        "compute.instance.reboot" => 17,
        "compute.instance.power_off" => 18,
        "scheduler.select_destinations" => 20,
        "scheduler.select_destinations.chance" => 21,
        "conductor.live_migration" => 30,
        "conductor.build_instance" => 31,
        "conductor.rebuild_instance" => 32,
        "conductor.provider_fw_rule" => 33,
        "conductor.object_action" => 34,
        "compute.allocate.network.instance" => 40,
        "compute.network.lease_fixed_ip.instance" => 41,
        "compute.deallocate.network.instance" => 42,
        "libvirt.live_migration.operation" => 50,
        "libvirt.find.migration.min.data" => 51,
        "libvirt.can_live_migrate_source" => 52,
        "libvirt.can_live_migrate_destination" => 53,
        "libvirt.live_migration_monitor" => 54,
        _ => return None,
    })
}

/// Quarks of one request's rows, kept for the request's next events (its 2 to 6
/// events come close together): the attribute tree is then not searched again
/// from the root with the 40-byte request id, which was most of this view's time.
#[derive(Clone, Copy, PartialEq)]
struct RequestRows {
    /// `Requests/<request_id>`.
    base: Quark,
    /// `Requests/<request_id>/VM`, -1 until created.
    vm: Quark,
    /// `Requests/<request_id>/Ops`, -1 until created.
    ops_parent: Quark,
    /// `(operation code, Requests/<request_id>/Ops/<operation>)`; code 0: free.
    ops: [(i32, Quark); 4],
}

impl RequestRows {
    fn op(&self, code: i32) -> Option<Quark> {
        self.ops.iter().find(|(c, _)| *c == code).map(|&(_, q)| q)
    }
}

/// Slots of the request cache (a power of two): the requests in progress at once
/// (a few in the thesis traces, one in the Nova-like bench) fit many times over,
/// and the cache stays within the first-level data cache.
const REQUEST_CACHE: usize = 256;
/// Longest request id the cache keeps (Nova's are 40 bytes); longer ones are
/// looked up in the attribute tree.
const REQUEST_ID_MAX: usize = 48;

/// One request's slot: its id in place (no pointer to follow) and its rows.
#[derive(Clone, Copy)]
struct RequestSlot {
    len: u8,
    id: [u8; REQUEST_ID_MAX],
    rows: RequestRows,
}

/// [`RequestRows`] of recent requests, direct-mapped by a hash of the request id:
/// a new request takes its slot from whichever request had it. Nothing is
/// allocated per request (a map of owned keys emptied when full freed thousands
/// of keys at once), and a lookup reads one slot. A request not found is looked
/// up in the attribute tree, the record.
struct RequestCache {
    slots: Box<[RequestSlot]>,
}

impl Default for RequestCache {
    fn default() -> Self {
        let vacant = RequestSlot {
            len: 0,
            id: [0; REQUEST_ID_MAX],
            rows: RequestRows {
                base: -1,
                vm: -1,
                ops_parent: -1,
                ops: [(0, -1); 4],
            },
        };
        Self {
            slots: vec![vacant; REQUEST_CACHE].into_boxed_slice(),
        }
    }
}

impl RequestCache {
    fn slot(request_id: &str) -> usize {
        let mut h = NameHasher::default();
        h.write(request_id.as_bytes());
        // The multiplicative hash's high bits are its best mixed.
        (h.finish() >> 56) as usize & (REQUEST_CACHE - 1)
    }

    fn get(&self, request_id: &str) -> Option<&RequestRows> {
        let slot = &self.slots[Self::slot(request_id)];
        // Vacant slots have length 0; request ids here are never empty.
        let kept = &slot.id[..slot.len as usize];
        (!kept.is_empty() && kept == request_id.as_bytes()).then_some(&slot.rows)
    }

    fn put(&mut self, request_id: &str, rows: RequestRows) {
        let id = request_id.as_bytes();
        if id.len() > REQUEST_ID_MAX {
            return;
        }
        let slot = &mut self.slots[Self::slot(request_id)];
        slot.id[..id.len()].copy_from_slice(id);
        slot.len = id.len() as u8;
        slot.rows = rows;
    }
}

/// A VM name as a map key, held in place when short (VM names are): comparing a
/// key then reads the map's own memory, not a separate allocation that is cold
/// by the time a request's first compute record looks its VM up.
#[derive(Clone)]
enum VmKey {
    Short { len: u8, bytes: [u8; 30] },
    Long(Box<str>),
}

impl VmKey {
    fn new(name: &str) -> Self {
        let mut bytes = [0; 30];
        match bytes.get_mut(..name.len()) {
            Some(head) => {
                head.copy_from_slice(name.as_bytes());
                VmKey::Short {
                    len: name.len() as u8,
                    bytes,
                }
            }
            None => VmKey::Long(name.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied from a `&str` whole: always UTF-8.
            VmKey::Short { len, bytes } => {
                std::str::from_utf8(&bytes[..*len as usize]).unwrap_or("")
            }
            VmKey::Long(s) => s,
        }
    }
}

impl std::borrow::Borrow<str> for VmKey {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl std::hash::Hash for VmKey {
    // As the `str` it holds, so that `&str` lookups find it.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialEq for VmKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for VmKey {}

/// What is kept per VM name.
#[derive(Clone, Default)]
struct VmEntry {
    /// The name as a string value, shared by every request's `VM` row (one
    /// allocation per VM instead of one per request, and less memory held).
    value: StateValue,
    /// `VMs/<vmname>/Action`, once created.
    action: Option<Quark>,
}

#[derive(Default)]
pub struct NovaServicesProvider {
    services: ServiceQuarks,
    vms: HashMap<VmKey, VmEntry, BuildHasherDefault<NameHasher>>,
    /// The last VM looked up in `vms` and its entry (a request's records name
    /// the same VM one after the other).
    /// (Null value: none yet.)
    last_vm: (String, VmEntry),
    /// `Requests`, once created.
    requests_root: Option<Quark>,
    /// Rows of recent requests (see [`RequestCache`]).
    requests: RequestCache,
    /// `<request_id>## <vmname>`, rebuilt for each `.start`.
    request_text: String,
    /// The last request text written, shared with the next equal one (a
    /// request's `.start` records repeat it) instead of copied.
    last_request_value: StateValue,
    saw_python_events: bool,
    malformed: Malformed,
}

/// `value` as a shared string, `last` when it is the same text (then no allocation).
fn shared_string(last: &mut StateValue, value: &str) -> StateValue {
    match last {
        StateValue::String(s) if **s == *value => {}
        _ => *last = StateValue::from(value),
    }
    last.clone()
}

impl NovaServicesProvider {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records skipped or partly used, by reason (for tests and reports).
    pub fn malformed(&self) -> &Malformed {
        &self.malformed
    }

    /// Marks operation `op` (code `code`) of `request_id` and its VM at `t`.
    fn open_request(
        &mut self,
        t: i64,
        request_id: &str,
        op: &str,
        code: i32,
        vmname: &str,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let cached = self.requests.get(request_id).copied();
        let mut rows = match cached {
            Some(rows) => rows,
            None => {
                let root = match self.requests_root {
                    Some(q) => q,
                    None => *self.requests_root.insert(ss.quark_and_add(&["Requests"])?),
                };
                RequestRows {
                    base: ss.quark_relative_and_add(root, &[request_id])?,
                    vm: -1,
                    ops_parent: -1,
                    ops: [(0, -1); 4],
                }
            }
        };
        let op_q = match rows.op(code) {
            Some(q) => q,
            None => {
                if rows.ops_parent < 0 {
                    rows.ops_parent = ss.quark_relative_and_add(rows.base, &["Ops"])?;
                }
                let q = ss.quark_relative_and_add(rows.ops_parent, &[op])?;
                if let Some(free) = rows.ops.iter_mut().find(|(c, _)| *c == 0) {
                    *free = (code, q);
                }
                q
            }
        };
        ss.modify_int(t, code, op_q)?;
        if !vmname.is_empty() {
            if rows.vm < 0 {
                rows.vm = ss.quark_relative_and_add(rows.base, &["VM"])?;
            }
            let value = self.vm_entry(vmname).value.clone();
            ss.modify(t, value, rows.vm)?;
        }
        if cached != Some(rows) {
            self.requests.put(request_id, rows);
        }
        Ok(())
    }

    /// `Requests/<request_id>/Ops/<op>` if a `.start` created it.
    fn opened_op(
        &self,
        request_id: &str,
        op: &str,
        code: i32,
        ss: &dyn StateSystemBuilder,
    ) -> Option<Quark> {
        if let Some(q) = self.requests.get(request_id).and_then(|r| r.op(code)) {
            return Some(q);
        }
        ss.attributes()
            .quark(sht::ROOT_QUARK, &["Requests", request_id, "Ops", op])
            .ok()
    }

    /// The entry of `vmname`, created if new.
    fn vm_entry(&mut self, vmname: &str) -> &mut VmEntry {
        let (name, last) = &mut self.last_vm;
        if name != vmname || last.value.is_null() {
            *last = match self.vms.get(vmname) {
                Some(entry) => entry.clone(),
                None => {
                    let entry = VmEntry {
                        value: StateValue::from(vmname),
                        action: None,
                    };
                    self.vms.insert(VmKey::new(vmname), entry.clone());
                    entry
                }
            };
            name.clear();
            name.push_str(vmname);
        }
        last
    }

    /// `VMs/<vmname>/Action`, created if missing.
    fn vm_quark(&mut self, vmname: &str, ss: &mut dyn StateSystemBuilder) -> sht::Result<Quark> {
        if let Some(q) = self.vm_entry(vmname).action {
            return Ok(q);
        }
        let q = ss.quark_and_add(&["VMs", vmname, "Action"])?;
        self.vm_entry(vmname).action = Some(q);
        if let Some(entry) = self.vms.get_mut(vmname) {
            entry.action = Some(q);
        }
        Ok(q)
    }
}

impl StateProvider for NovaServicesProvider {
    python_event_provider!(ID, VERSION);

    fn handle(
        &mut self,
        _handler: u32,
        event: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let t = event.timestamp();
        let Some((logger, service, [event_type, vmname, request_id, vm_state])) = service_message(
            event,
            &mut self.services,
            &["Action", "Request_id"],
            ["event_type", "vmname", "request_id", "vm_state"],
            &mut self.malformed,
            ss,
        )?
        else {
            return Ok(());
        };
        let [action_q, request_q] = service.quarks;
        let (Some(event_type), Some(vmname), Some(request_id)) =
            (text(&event_type), text(&vmname), text(&request_id))
        else {
            self.malformed
                .note(R_MISSING_KEYS, t, || logger.to_string());
            ss.modify(t, StateValue::Null, action_q)?;
            return ss.modify(t, StateValue::Null, request_q);
        };
        match phase(&event_type) {
            Phase::Start(op) if operation_code(op).is_some() => {
                let code = operation_code(op).unwrap_or_default();
                ss.modify_int(t, code, action_q)?;
                // Built in a kept buffer: the state value is then the only
                // allocation, and none when it repeats the last one.
                self.request_text.clear();
                self.request_text.push_str(&request_id);
                self.request_text.push_str("## ");
                self.request_text.push_str(&vmname);
                let value = shared_string(&mut self.last_request_value, &self.request_text);
                ss.modify(t, value, request_q)?;
                if request_id.is_empty() {
                    self.malformed
                        .note(R_NO_REQUEST_ID, t, || event_type.to_string());
                } else {
                    self.open_request(t, &request_id, op, code, &vmname, ss)?;
                }
            }
            Phase::End(op) if operation_code(op).is_some() => {
                ss.modify(t, StateValue::Null, action_q)?;
                ss.modify(t, StateValue::Null, request_q)?;
                if !request_id.is_empty() {
                    // Only close what a .start opened: an orphan .end adds no row.
                    let code = operation_code(op).unwrap_or_default();
                    if let Some(op_q) = self.opened_op(&request_id, op, code, ss) {
                        ss.modify(t, StateValue::Null, op_q)?;
                    }
                }
            }
            _ => {
                self.malformed
                    .note(R_UNKNOWN_TYPE, t, || event_type.to_string());
                ss.modify_int(t, 0, action_q)?;
                ss.modify(t, StateValue::Null, request_q)?;
            }
        }
        if service.compute_manager && !vmname.is_empty() {
            if let Some(state) = text(&vm_state).filter(|s| !s.is_empty()) {
                match vm_state_code(&state) {
                    Some(code) => {
                        let q = self.vm_quark(&vmname, ss)?;
                        ss.modify_int(t, code, q)?;
                    }
                    None => self
                        .malformed
                        .note(R_UNKNOWN_STATE, t, || state.to_string()),
                }
            }
        }
        Ok(())
    }

    fn warnings(&self) -> Vec<String> {
        self.malformed.warnings("nova-services")
    }
}

#[cfg(test)]
mod tests {
    use sht::{StateSystemQuerier, StateValue};

    use crate::pipeline::{build, Analysis, BuildOptions, Output};
    use crate::testsource::TextSource;

    /// More requests in progress at once than the request cache has slots, and ids
    /// and VM names too long to be held in place: every row is still found again
    /// (from the attribute tree when the cache lost it) and closed by its `.end`.
    #[test]
    fn requests_beyond_the_cache_and_long_names_keep_their_rows() {
        let n = 3 * super::REQUEST_CACHE;
        let id = |k: usize| {
            if k.is_multiple_of(7) {
                format!("req-{k:08x}-{}", "x".repeat(60))
            } else {
                format!("req-{k:08x}-e7a3-4284-a44b-5dd843edf212")
            }
        };
        let vm = |k: usize| {
            if k.is_multiple_of(5) {
                format!("vm-with-a-name-longer-than-thirty-bytes-{k}")
            } else {
                format!("vm-{k}")
            }
        };
        let line = |t: usize, k: usize, ty: &str, state: &str| {
            format!(
                "{t} lttng_python:event logger_name=\"nova.compute.manager\" msg=\"lttng_trace:{{'event_type':'compute.instance.create.{ty}','vmname':'{}','vm_state':'{state}','host':'h','project_id':'p','request_id':'{}'}}\"\n",
                vm(k),
                id(k)
            )
        };
        let mut text = String::new();
        for k in 0..n {
            text.push_str(&line(1 + k, k, "start", "building"));
        }
        // Ends in another order than the starts.
        for (i, k) in (0..n).rev().enumerate() {
            text.push_str(&line(1 + n + i, k, "end", "active"));
        }
        let mut src = TextSource::new(&text);
        let analyses = vec![Analysis {
            provider: Box::new(super::NovaServicesProvider::new()),
            output: Output::InMemory,
        }];
        let (report, mut systems) = build(&mut src, analyses, &BuildOptions::default()).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let ss = systems.remove(0);
        let value = |path: &[&str], t: usize| {
            let q = ss.quark(path).unwrap_or_else(|_| panic!("{path:?}"));
            ss.query_single(t as i64, q).unwrap().value
        };
        for k in 0..n {
            let (id, vm) = (id(k), vm(k));
            let op = ["Requests", &id, "Ops", "compute.instance.create"];
            let ended = 1 + n + (n - 1 - k);
            assert_eq!(value(&op, 1 + k), StateValue::Int(10), "{id}");
            assert_eq!(value(&op, ended - 1), StateValue::Int(10), "{id}");
            assert_eq!(value(&op, ended), StateValue::Null, "{id}");
            assert_eq!(
                value(&["Requests", &id, "VM"], 1 + k),
                StateValue::from(vm.as_str())
            );
            assert_eq!(value(&["VMs", &vm, "Action"], 1 + k), StateValue::Int(0));
            assert_eq!(value(&["VMs", &vm, "Action"], ended), StateValue::Int(1));
        }
        // One Ops row per request: nothing was created twice under another name.
        let requests = ss.quark(&["Requests"]).unwrap();
        assert_eq!(ss.attributes().children_of(requests).len(), n);
    }
}
