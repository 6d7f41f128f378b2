//! Cinder volumes joined with the disk I/O of the storage node (issue 6 item 3).
//!
//! What Cinder's records give: the volume UUID (`'volume':'<uuid>'`) and, in the
//! scheduler's log, the backend (`controller@lvmdriver-1#lvmdriver-1`). With the LVM
//! driver the volume is the logical volume `volume-<uuid>` (Cinder's default
//! `volume_name_template`), reached as `/dev/<vg>/volume-<uuid>` or through
//! device-mapper as `/dev/mapper/<vg>-volume--<uuid>` (every `-` of the VG and LV
//! names doubled). The kernel, though, names the device `dm-<n>` (state dump,
//! block events by `dev` number) and never the LV. The link is made where the
//! kernel trace shows it ([`VolumeDevicesProvider`]): a thread opens the LV's path
//! (`syscall_entry_openat`: qemu-img writing an image into a new volume, the
//! iSCSI target serving it, `dd` clearing it) and then submits block requests
//! (`block_rq_insert`, run in the submitter's context) on device `dev`: that
//! device is the volume (`opened-then-io`; the first request after the open
//! decides, later ones of the same thread elsewhere are counted in a warning). A disk whose state-dump name is the
//! LV or device-mapper name itself is linked too (`diskname`).
//!
//! Tree of the link provider: `LVs/<lv name>/{Device (long: dev), Thread (int:
//! the tid that opened it and did I/O)}`.

use std::collections::HashMap;

use sht::{StateSystem, StateSystemBuilder, StateSystemQuerier, StateValue};

use crate::{EventFields, ProviderError, StateProvider, Subscription, TraceInfo};

pub const ID: &str = "openstack.cinder.devices";
pub const VERSION: i32 = 1;

const H_SWITCH: u32 = 0;
const H_OPEN: u32 = 1;
const H_INSERT: u32 = 2;

/// The LVM logical volume a device path names (`/dev/<vg>/volume-<id>` or
/// `/dev/mapper/<vg>-volume--<id>`), if it names a Cinder volume.
pub fn lv_name(path: &str) -> Option<String> {
    let last = path.rsplit('/').next()?;
    if last.starts_with("volume-") && !path.starts_with("/dev/mapper/") {
        return Some(last.to_string());
    }
    // Device-mapper: `<vg>-<lv>` with the dashes inside each name doubled; the
    // single dash separates them.
    let at = last.find("-volume--")?;
    Some(last[at + 1..].replace("--", "-"))
}

/// Links LV paths to block devices (module doc).
#[derive(Default)]
pub struct VolumeDevicesProvider {
    current: HashMap<u32, i64>,
    /// tid -> LV names it opened.
    opened: HashMap<i64, Vec<String>>,
    linked: HashMap<String, i64>,
    conflicts: u64,
    saw_block: bool,
}

impl VolumeDevicesProvider {
    pub fn new() -> Self {
        Self::default()
    }
}

impl StateProvider for VolumeDevicesProvider {
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
            "sched_switch" => (H_SWITCH, vec!["next_tid"]),
            "syscall_entry_openat" | "syscall_entry_open" => (H_OPEN, vec!["filename"]),
            "block_rq_insert" => (H_INSERT, vec!["dev"]),
            _ => return None,
        };
        self.saw_block |= handler == H_INSERT;
        Some(Subscription { handler, fields })
    }
    fn check_subscriptions(
        &self,
        _missing: &[(String, &'static str)],
    ) -> Result<(), ProviderError> {
        if self.saw_block {
            Ok(())
        } else {
            Err(ProviderError::Unsupported {
                analysis: ID.into(),
                what: "the trace has no block_rq_insert events".into(),
            })
        }
    }

    fn handle(
        &mut self,
        handler: u32,
        event: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let Some(cpu) = event.cpu() else {
            return Ok(());
        };
        match handler {
            H_SWITCH => {
                if let Some(tid) = event.int(0) {
                    self.current.insert(cpu, tid);
                }
            }
            H_OPEN => {
                if let (Some(&tid), Some(lv)) =
                    (self.current.get(&cpu), event.string(0).and_then(lv_name))
                {
                    let v = self.opened.entry(tid).or_default();
                    if !v.contains(&lv) {
                        v.push(lv);
                    }
                }
            }
            _ => {
                let (Some(&tid), Some(dev)) = (self.current.get(&cpu), event.int(0)) else {
                    return Ok(());
                };
                let Some(lvs) = self.opened.get(&tid) else {
                    return Ok(());
                };
                // A thread that opened several volumes does not say which one
                // this request is for: link only unambiguous openers.
                if lvs.len() != 1 {
                    return Ok(());
                }
                // The first request after the open links; the same thread's later
                // requests on other devices (a target serving several disks, its
                // own logging) do not move the link but are counted.
                if let Some(&linked) = self.linked.get(&lvs[0]) {
                    if linked != dev {
                        self.conflicts += 1;
                    }
                    return Ok(());
                }
                let lv = &lvs[0];
                self.linked.insert(lv.clone(), dev);
                let t = event.timestamp();
                let q = ss.quark_and_add(&["LVs", lv, "Device"])?;
                ss.modify(t, StateValue::Long(dev), q)?;
                let q = ss.quark_and_add(&["LVs", lv, "Thread"])?;
                ss.modify(t, StateValue::Int(tid as i32), q)?;
            }
        }
        Ok(())
    }

    fn warnings(&self) -> Vec<String> {
        if self.conflicts == 0 {
            return Vec::new();
        }
        vec![format!(
            "{ID}: {} block request(s) by a thread that opened a volume went to another \
             device than the one linked to it (first request after the open)",
            self.conflicts
        )]
    }
}

/// One Cinder volume with the I/O of its device.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeIo {
    pub volume: String,
    /// First and last time Cinder knew the volume (delete.end, else the end of
    /// the Cinder history).
    pub start: i64,
    pub end: i64,
    /// Operations (`volume.create`, ...) with their intervals.
    pub actions: Vec<(i64, i64, String)>,
    pub lv: String,
    /// `dev` number, disk name, link rule (`opened-then-io`, `diskname`).
    pub device: Option<(i64, String, &'static str)>,
    /// Sectors read and written on the device during the lifecycle.
    pub sectors_read: i64,
    pub sectors_written: i64,
}

fn cinder_action_name(code: i32) -> String {
    match code {
        1 => "volume.create",
        2 => "volume.delete",
        3 => "volume.attach",
        4 => "volume.detach",
        5 => "volume.migrate",
        6 => "volume.resize",
        7 => "snapshot.create",
        8 => "snapshot.delete",
        9 => "volume.update",
        _ => return format!("code {code}"),
    }
    .to_string()
}

fn counter_at(ss: &StateSystem, path: &[&str], t: i64) -> i64 {
    let Ok(q) = ss.quark(path) else { return 0 };
    let t = t.clamp(ss.start_time(), ss.current_end_time());
    ss.query_single(t, q)
        .ok()
        .and_then(|i| i.value.as_long().or(i.value.as_int().map(i64::from)))
        .unwrap_or(0)
}

/// Volumes of the Cinder history, each with its device in the storage node's
/// kernel trace (link history `links`, disk I/O history `diskio`) and the
/// sectors moved while the volume existed.
pub fn volume_report(
    cinder: &StateSystem,
    links: Option<&StateSystem>,
    diskio: Option<&StateSystem>,
) -> Vec<VolumeIo> {
    let mut out = Vec::new();
    for vq in cinder.quarks(&["Volumes", "*"]).unwrap_or_default() {
        let volume = cinder.attributes().name(vq).unwrap_or_default().to_string();
        // `volume.update` records name the literal `volume` (spec §2.5): no volume.
        if volume == "volume" {
            continue;
        }
        let Ok(aq) = cinder.quark(&["Volumes", &volume, "Action"]) else {
            continue;
        };
        let mut ivs = cinder
            .query_2d(&[aq], cinder.start_time(), cinder.current_end_time())
            .unwrap_or_default();
        ivs.sort_by_key(|i| i.start);
        let actions: Vec<(i64, i64, String)> = ivs
            .iter()
            .filter_map(|i| Some((i.start, i.end, cinder_action_name(i.value.as_int()?))))
            .collect();
        let Some(start) = actions.first().map(|a| a.0) else {
            continue;
        };
        let end = cinder
            .quark(&["Volumes", &volume, "Deleted"])
            .ok()
            .and_then(|q| {
                let mut v = cinder
                    .query_2d(&[q], start, cinder.current_end_time())
                    .ok()?;
                v.sort_by_key(|i| i.start);
                v.into_iter()
                    .find(|i| i.value != StateValue::Null)
                    .map(|i| i.start)
            })
            .unwrap_or(cinder.current_end_time());
        let lv = format!("volume-{volume}");
        let mut device = None;
        if let Some(ls) = links {
            if let Ok(q) = ls.quark(&["LVs", &lv, "Device"]) {
                let dev = ls
                    .query_single(ls.current_end_time(), q)
                    .ok()
                    .and_then(|i| i.value.as_long());
                if let Some(dev) = dev {
                    device = Some((dev, String::new(), "opened-then-io"));
                }
            }
        }
        if let Some(d) = diskio {
            let dm_tail = format!("-{}", lv.replace('-', "--"));
            for q in d.quarks(&["Disks", "*"]).unwrap_or_default() {
                let dev: i64 = d
                    .attributes()
                    .name(q)
                    .unwrap_or_default()
                    .parse()
                    .unwrap_or(-1);
                let name = d
                    .query_single(d.current_end_time(), q)
                    .ok()
                    .and_then(|i| i.value.as_str().map(str::to_string))
                    .unwrap_or_default();
                match &mut device {
                    Some((dv, n, _)) if *dv == dev => *n = name,
                    None if name == lv || name.ends_with(&dm_tail) => {
                        device = Some((dev, name, "diskname"))
                    }
                    _ => {}
                }
            }
        }
        let (mut sectors_read, mut sectors_written) = (0, 0);
        if let (Some((dev, _, _)), Some(d)) = (&device, diskio) {
            let dev = dev.to_string();
            let delta = |leaf: &str| {
                counter_at(d, &["Disks", &dev, leaf], end)
                    - counter_at(d, &["Disks", &dev, leaf], start)
            };
            sectors_read = delta("sectors_read");
            sectors_written = delta("sectors_written");
        }
        out.push(VolumeIo {
            volume,
            start,
            end,
            actions,
            lv,
            device,
            sectors_read,
            sectors_written,
        });
    }
    out.sort_by_key(|v| v.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lv_names_from_both_device_paths() {
        let id = "49ebdf72-bc39-421a-bfaa-bd2f4636bb26";
        assert_eq!(
            lv_name(&format!("/dev/stack-volumes-lvmdriver-1/volume-{id}")),
            Some(format!("volume-{id}"))
        );
        assert_eq!(
            lv_name(&format!(
                "/dev/mapper/stack--volumes--lvmdriver--1-volume--{}",
                id.replace('-', "--")
            )),
            Some(format!("volume-{id}"))
        );
        assert_eq!(lv_name("/etc/passwd"), None);
        assert_eq!(lv_name(""), None);
        assert_eq!(lv_name("/dev/mapper/"), None);
    }
}
