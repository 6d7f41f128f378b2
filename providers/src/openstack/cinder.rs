//! Cinder view (spec §2.5): what each Cinder service does, and the life of each
//! volume (extension).
//!
//! Tree: `SERVICEs/<logger>/Action` (int) and
//! `Volumes/<volume>/{Action (int), Instance (string: instance_id while
//! attached), Host (string), Deleted (int 1 after delete.end)}`.

use sht::{StateSystemBuilder, StateValue};

use super::{
    action_message, phase, text, ActionMessage, Malformed, Phase, ServiceQuarks, R_UNKNOWN_TYPE,
};
use crate::{EventFields, StateProvider};

pub const ID: &str = "org.eclipse.tracecompass.analysis.os.linux.core.cinder.module1";
pub const VERSION: i32 = 1;

const R_NO_VOLUME: &str = "without a volume id (no Volumes entry)";
const R_NO_INSTANCE: &str = "attaching without an instance_id";

/// Operation codes (`.start` sets, `.end` resets).
pub fn operation_code(op: &str) -> Option<i32> {
    Some(match op {
        "volume.create" => 1,
        "volume.delete" => 2,
        "volume.attach" => 3,
        "volume.detach" => 4,
        "volume.migrate" => 5,
        "volume.resize" => 6,
        "snapshot.create" => 7,
        "snapshot.delete" => 8,
        "volume.update" => 9,
        _ => return None,
    })
}

#[derive(Default)]
pub struct CinderProvider {
    services: ServiceQuarks,
    saw_python_events: bool,
    malformed: Malformed,
}

impl CinderProvider {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn malformed(&self) -> &Malformed {
        &self.malformed
    }
}

impl StateProvider for CinderProvider {
    python_event_provider!(ID, VERSION);

    fn handle(
        &mut self,
        _handler: u32,
        event: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let t = event.timestamp();
        let Some(ActionMessage {
            action: action_q,
            fields: [_, volume, instance_id, hostname],
            event_type,
            ..
        }) = action_message(
            event,
            &mut self.services,
            ["event_type", "volume", "instance_id", "hostname"],
            &mut self.malformed,
            ss,
        )?
        else {
            return Ok(());
        };
        let (op, start) = match phase(&event_type) {
            Phase::Start(op) if operation_code(op).is_some() => (op, true),
            Phase::End(op) if operation_code(op).is_some() => (op, false),
            _ => {
                if volume.is_some() {
                    self.malformed
                        .note(R_UNKNOWN_TYPE, t, || event_type.to_string());
                }
                return ss.modify(t, StateValue::Null, action_q);
            }
        };
        let value = if start {
            operation_code(op).map_or(StateValue::Null, StateValue::Int)
        } else {
            StateValue::Null
        };
        ss.modify(t, value.clone(), action_q)?;
        let Some(volume) = text(&volume).filter(|v| !v.is_empty()) else {
            self.malformed
                .note(R_NO_VOLUME, t, || event_type.to_string());
            return Ok(());
        };
        let base = ss.quark_and_add(&["Volumes", &volume])?;
        let action = ss.quark_relative_and_add(base, &["Action"])?;
        ss.modify(t, value, action)?;
        match (op, start) {
            ("volume.attach", true) => {
                match text(&instance_id).filter(|i| !i.is_empty()) {
                    Some(instance) => {
                        let q = ss.quark_relative_and_add(base, &["Instance"])?;
                        ss.modify(t, StateValue::from(instance.as_ref()), q)?;
                    }
                    None => self.malformed.note(R_NO_INSTANCE, t, || volume.to_string()),
                }
                if let Some(host) = text(&hostname) {
                    let q = ss.quark_relative_and_add(base, &["Host"])?;
                    ss.modify(t, StateValue::from(host.as_ref()), q)?;
                }
            }
            ("volume.detach", false) => {
                let q = ss.quark_relative_and_add(base, &["Instance"])?;
                ss.modify(t, StateValue::Null, q)?;
            }
            ("volume.migrate", true) => {
                if let Some(host) = text(&hostname) {
                    let q = ss.quark_relative_and_add(base, &["Host"])?;
                    ss.modify(t, StateValue::from(host.as_ref()), q)?;
                }
            }
            ("volume.delete", false) => {
                let q = ss.quark_relative_and_add(base, &["Deleted"])?;
                ss.modify(t, StateValue::Int(1), q)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn warnings(&self) -> Vec<String> {
        self.malformed.warnings("cinder")
    }
}
