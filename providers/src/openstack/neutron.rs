//! Neutron view (spec §2.4): what the DHCP and L3 agents do, per logger and per
//! network / router (extension).
//!
//! Tree: `SERVICEs/<logger>/Action` (int), `Agents/<dhcp-agent|l3-agent>/Networks/<uuid>`
//! and `Agents/l3-agent/Routers/<uuid>` (int: operation code between `.start`
//! and `.end`). Deviations from the Java provider, needed on the real traces:
//! the `dhcp-agent.` / `l3-agent.` prefix of `event_type` is stripped,
//! `network.update` is handled and `subnet.delete` matches (no leading space).

use sht::{StateSystemBuilder, StateValue};

use super::{
    action_message, phase, text, ActionMessage, Malformed, Phase, ServiceQuarks, R_UNKNOWN_TYPE,
};
use crate::{EventFields, StateProvider};

pub const ID: &str = "org.eclipse.tracecompass.analysis.os.linux.neutron.core.module1";
pub const VERSION: i32 = 1;

const R_NO_OBJECT: &str = "without the network/router uuid (no Agents entry)";

/// Operation codes (`.start` sets, `.end` resets).
pub fn operation_code(op: &str) -> Option<i32> {
    Some(match op {
        "network.create" => 1,
        "network.update" => 2,
        "network.delete" => 3,
        "subnet.update" => 4,
        "subnet.delete" => 5,
        "port.delete" => 6,
        "router.create" => 7,
        "router.remove" => 8,
        "router.delete" => 9,
        _ => return None,
    })
}

const AGENTS: [&str; 2] = ["dhcp-agent", "l3-agent"];

#[derive(Default)]
pub struct NeutronProvider {
    services: ServiceQuarks,
    saw_python_events: bool,
    malformed: Malformed,
}

impl NeutronProvider {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn malformed(&self) -> &Malformed {
        &self.malformed
    }
}

impl StateProvider for NeutronProvider {
    python_event_provider!(ID, VERSION);

    fn handle(
        &mut self,
        _handler: u32,
        event: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let t = event.timestamp();
        let Some(ActionMessage {
            logger,
            action: action_q,
            fields: [_, network, router],
            event_type,
        }) = action_message(
            event,
            &mut self.services,
            ["event_type", "network", "router"],
            &mut self.malformed,
            ss,
        )?
        else {
            return Ok(());
        };
        let (prefix_agent, bare) = match AGENTS
            .iter()
            .find_map(|a| Some((*a, event_type.strip_prefix(a)?.strip_prefix('.')?)))
        {
            Some((a, rest)) => (Some(a), rest),
            None => (None, event_type.as_ref()),
        };
        let (code, op) = match phase(bare) {
            Phase::Start(op) => (operation_code(op), op),
            Phase::End(op) if operation_code(op).is_some() => (None, op),
            _ => {
                // Nova or Cinder records in the same session are not Neutron's business.
                let neutron_shaped =
                    prefix_agent.is_some() || network.is_some() || router.is_some();
                if neutron_shaped {
                    self.malformed
                        .note(R_UNKNOWN_TYPE, t, || event_type.to_string());
                }
                return ss.modify(t, StateValue::Null, action_q);
            }
        };
        let Some(op_code) = operation_code(op) else {
            if prefix_agent.is_some() || network.is_some() {
                self.malformed
                    .note(R_UNKNOWN_TYPE, t, || event_type.to_string());
            }
            return ss.modify(t, StateValue::Null, action_q);
        };
        let value = code.map_or(StateValue::Null, StateValue::Int);
        ss.modify(t, value.clone(), action_q)?;
        // Extension: the network or router the operation is about.
        let is_router = op.starts_with("router.");
        let agent = prefix_agent.unwrap_or(if is_router || logger.contains(".l3.") {
            "l3-agent"
        } else {
            "dhcp-agent"
        });
        let (object, group) = if is_router {
            (&router, "Routers")
        } else {
            (&network, "Networks")
        };
        match text(object).filter(|u| !u.is_empty()) {
            Some(uuid) => {
                let q = ss.quark_and_add(&["Agents", agent, group, &uuid])?;
                ss.modify(t, value, q)?;
            }
            None => self
                .malformed
                .note(R_NO_OBJECT, t, || format!("{event_type} (code {op_code})")),
        }
        Ok(())
    }

    fn warnings(&self) -> Vec<String> {
        self.malformed.warnings("neutron")
    }
}
