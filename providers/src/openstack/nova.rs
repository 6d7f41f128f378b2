//! Nova VM state view ("OpenstackVMStateView", spec §2.3): the state and compute
//! host of every VM, per project.
//!
//! Tree: `PROJECTs/<project_id>/VMs/<vmname>/{Status (int), Host (string)}` and
//! the per-host extension `Hosts/<host>/VMs/<vmname>` (int: Status while the VM
//! is on that host, null once it left).

use sht::{Quark, StateSystemBuilder, StateValue};

use super::{
    text, thesis_fields, vm_state_code, Malformed, NameMap, R_NOT_A_DICT, R_UNPARSABLE, SLOT_MSG,
};
use crate::pydict::Scanned;
use crate::{EventFields, StateProvider};

pub const ID: &str = "org.eclipse.tracecompass.openstack.analyse.VM.state";
pub const VERSION: i32 = 1;
/// Status of a state the table does not know (Java NOTSET).
pub const NOTSET: i32 = 7;

const R_MISSING_KEYS: &str = "without vmname, vm_state, project_id or host";
const R_EMPTY_VM: &str = "with an empty vmname (scheduler records, skipped)";
const R_EMPTY_PROJECT: &str = "with an empty project_id (skipped)";
const R_UNKNOWN_STATE: &str = "with an unknown vm_state (Status NOTSET 7)";

struct VmRow {
    status: Quark,
    host: Quark,
    /// The value last written to `host` (shared, not allocated again while it holds).
    host_value: StateValue,
    /// `Hosts/<host>/VMs/<vm>` the VM is currently drawn on.
    on_host: Option<(Box<str>, Quark)>,
}

#[derive(Default)]
pub struct NovaVmStateProvider {
    /// By project, then VM name: looked up with the event's borrowed text.
    rows: NameMap<NameMap<VmRow>>,
    saw_python_events: bool,
    malformed: Malformed,
}

impl NovaVmStateProvider {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn malformed(&self) -> &Malformed {
        &self.malformed
    }
}

/// A host name that says "not scheduled yet".
fn is_placeholder_host(host: &str) -> bool {
    host.is_empty() || host == "None"
}

impl StateProvider for NovaVmStateProvider {
    python_event_provider!(ID, VERSION);

    fn handle(
        &mut self,
        _handler: u32,
        event: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let t = event.timestamp();
        let Some(payload) = event.string(SLOT_MSG).and_then(|msg| {
            thesis_fields(
                msg,
                ["vmname", "vm_state", "project_id", "host", "event_type"],
            )
        }) else {
            return Ok(());
        };
        let fields = match payload {
            Ok(Scanned::Dict(fields)) => fields,
            Ok(Scanned::NotADict) => {
                self.malformed.note(R_NOT_A_DICT, t, String::new);
                return Ok(());
            }
            Err(e) => {
                self.malformed.note(R_UNPARSABLE, t, || e.to_string());
                return Ok(());
            }
        };
        let [vmname_f, state_f, project_f, host_f, event_type_f] = &fields;
        let (Some(vmname), Some(state), Some(project), Some(host)) =
            (text(vmname_f), text(state_f), text(project_f), text(host_f))
        else {
            // Neutron and Cinder records carry other keys: only Nova-shaped ones count.
            if vmname_f.is_some() || state_f.is_some() {
                self.malformed.note(R_MISSING_KEYS, t, String::new);
            }
            return Ok(());
        };
        if vmname.is_empty() {
            self.malformed.note(R_EMPTY_VM, t, || {
                text(event_type_f).unwrap_or_default().into_owned()
            });
            return Ok(());
        }
        if project.is_empty() {
            self.malformed
                .note(R_EMPTY_PROJECT, t, || vmname.to_string());
            return Ok(());
        }
        let code = vm_state_code(&state).unwrap_or_else(|| {
            self.malformed
                .note(R_UNKNOWN_STATE, t, || state.to_string());
            NOTSET
        });
        let known = self
            .rows
            .get(project.as_ref())
            .is_some_and(|vms| vms.contains_key(vmname.as_ref()));
        if !known {
            let base = ss.quark_and_add(&["PROJECTs", &project, "VMs", &vmname])?;
            let status = ss.quark_relative_and_add(base, &["Status"])?;
            let host_q = ss.quark_relative_and_add(base, &["Host"])?;
            self.rows
                .entry(project.as_ref().into())
                .or_default()
                .insert(
                    vmname.as_ref().into(),
                    VmRow {
                        status,
                        host: host_q,
                        host_value: StateValue::Null,
                        on_host: None,
                    },
                );
        }
        let row = self
            .rows
            .get_mut(project.as_ref())
            .and_then(|vms| vms.get_mut(vmname.as_ref()))
            .expect("inserted above");
        ss.modify(t, StateValue::Int(code), row.status)?;
        if !matches!(&row.host_value, StateValue::String(h) if **h == *host) {
            row.host_value = StateValue::from(host.as_ref());
        }
        ss.modify(t, row.host_value.clone(), row.host)?;
        // Per-host extension: the VM leaves its old host row when Host changes.
        let moved = match &row.on_host {
            Some((h, _)) => h.as_ref() != host.as_ref(),
            None => true,
        };
        if moved {
            if let Some((_, old)) = row.on_host.take() {
                ss.modify(t, StateValue::Null, old)?;
            }
            if !is_placeholder_host(&host) {
                let q = ss.quark_and_add(&["Hosts", &host, "VMs", &vmname])?;
                row.on_host = Some((host.as_ref().into(), q));
            }
        }
        if let Some((_, q)) = &row.on_host {
            ss.modify(t, StateValue::Int(code), *q)?;
        }
        Ok(())
    }

    fn warnings(&self) -> Vec<String> {
        self.malformed.warnings("nova")
    }
}
