//! Files held open by QEMU processes on a compute host, from the LTTng kernel
//! state dump (spec §2.6, **Extension**). The kernel knows a QEMU process only by
//! `comm` (`qemu-system-x86`, `qemu-kvm`) and PID; the state dump also lists every
//! process's open files (`lttng_statedump_file_descriptor`), and a QEMU process
//! holds its domain's disk images open, which names the instance (Nova's paths
//! hold the instance UUID). [`super::vm_report`] uses this to link a libvirt
//! domain to its QEMU PID.
//!
//! Tree: `Processes/<pid>/Files/<fd>` (string: path), for the processes one of
//! whose threads has a QEMU name (`qemu-*`) or a vCPU thread name (`CPU <n>/KVM`),
//! written at the end of the state dump.

use std::collections::{BTreeMap, BTreeSet};

use sht::{StateSystemBuilder, StateValue};

use crate::{EventFields, ProviderError, StateProvider, Subscription, TraceInfo};

pub const ID: &str = "host.qemu.files";
pub const VERSION: i32 = 1;

const H_PROCESS: u32 = 0;
const H_FD: u32 = 1;
const H_END: u32 = 2;

/// A thread name QEMU gives its processes or vCPU threads.
pub fn is_qemu_thread_name(name: &str) -> bool {
    name.starts_with("qemu-")
        || name
            .strip_prefix("CPU ")
            .and_then(|r| r.strip_suffix("/KVM"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[derive(Default)]
pub struct QemuFilesProvider {
    qemu_pids: BTreeSet<i64>,
    files: BTreeMap<(i64, i64), String>,
    saw_statedump: bool,
    flushed: bool,
    last_time: i64,
    bad_records: u64,
}

impl QemuFilesProvider {
    pub fn new() -> Self {
        Self::default()
    }

    fn flush(&mut self, t: i64, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        if self.flushed {
            return Ok(());
        }
        self.flushed = true;
        for ((pid, fd), path) in std::mem::take(&mut self.files) {
            if self.qemu_pids.contains(&pid) {
                let q =
                    ss.quark_and_add(&["Processes", &pid.to_string(), "Files", &fd.to_string()])?;
                ss.modify(t, StateValue::from(path.as_str()), q)?;
            }
        }
        Ok(())
    }
}

impl StateProvider for QemuFilesProvider {
    fn id(&self) -> &'static str {
        ID
    }
    fn version(&self) -> i32 {
        VERSION
    }
    fn check_trace(&mut self, _trace: &TraceInfo) -> Result<(), ProviderError> {
        Ok(())
    }
    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        let (handler, fields) = match event_name {
            "lttng_statedump_process_state" => (H_PROCESS, vec!["pid", "name"]),
            "lttng_statedump_file_descriptor" => (H_FD, vec!["pid", "fd", "filename"]),
            "lttng_statedump_end" => (H_END, vec![]),
            _ => return None,
        };
        self.saw_statedump = true;
        Some(Subscription { handler, fields })
    }
    fn check_subscriptions(
        &self,
        _missing: &[(String, &'static str)],
    ) -> Result<(), ProviderError> {
        if self.saw_statedump {
            Ok(())
        } else {
            Err(ProviderError::Unsupported {
                analysis: ID.into(),
                what: "the trace has no LTTng kernel state dump events".into(),
            })
        }
    }

    fn handle(
        &mut self,
        handler: u32,
        event: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        self.last_time = event.timestamp();
        match handler {
            H_PROCESS => match (event.int(0), event.string(1)) {
                (Some(pid), Some(name)) => {
                    if is_qemu_thread_name(name) {
                        self.qemu_pids.insert(pid);
                    }
                }
                _ => self.bad_records += 1,
            },
            H_FD => match (event.int(0), event.int(1), event.string(2)) {
                (Some(pid), Some(fd), Some(path)) if !path.is_empty() => {
                    self.files.insert((pid, fd), path.to_string());
                }
                _ => self.bad_records += 1,
            },
            _ => self.flush(event.timestamp(), ss)?,
        }
        Ok(())
    }

    fn finish(&mut self, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        // A state dump cut short (no end event): what was listed still counts.
        self.flush(self.last_time, ss)
    }

    fn warnings(&self) -> Vec<String> {
        if self.bad_records == 0 {
            return Vec::new();
        }
        vec![format!(
            "{ID}: {} state dump record(s) without pid, fd, name or filename (skipped)",
            self.bad_records
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_names() {
        for n in ["qemu-system-x86", "qemu-kvm", "CPU 0/KVM", "CPU 12/KVM"] {
            assert!(is_qemu_thread_name(n), "{n}");
        }
        for n in [
            "CPU /KVM",
            "CPU x/KVM",
            "kvm-pit/1234",
            "bash",
            "IO mon_iothread",
        ] {
            assert!(!is_qemu_thread_name(n), "{n}");
        }
    }
}
