//! `sextant volume-report`: the real Cinder trace of 2016-08-15 (volumes
//! 49ebdf72-... and 1b6bf1ad-... created on backend `controller@lvmdriver-1`)
//! joined with a small kernel trace of the storage node written here as an XML
//! stub: qemu-img writes an image into the first volume through its device-mapper
//! path, the iSCSI target reads it, another thread fills the second volume through
//! its LVM path, and unrelated I/O happens on sda and (before the volume existed)
//! on the first volume's device. The expected sectors are the ones written below.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

const VOL1: &str = "49ebdf72-bc39-421a-bfaa-bd2f4636bb26";
const VOL2: &str = "1b6bf1ad-0673-46f5-b0c2-b02914093192";
/// volume.create.start / .end of VOL1 in the Cinder trace.
const VOL1_CREATE: (i64, i64) = (1_471_292_255_328_845_722, 1_471_292_255_401_323_694);
const SDA: i64 = 8 << 20;
const DM0: i64 = 253 << 20;
const DM1: i64 = (253 << 20) | 1;
const S: i64 = 1_000_000_000;
const BASE: i64 = 1_471_292_000 * S;

fn shared() -> PathBuf {
    std::env::var_os("SEXTANT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// Events as (time, XML), sorted by time (stably) when written out.
struct Stub(Vec<(i64, String)>);

impl Stub {
    fn event(&mut self, t: i64, name: &str, cpu: i64, fields: &[(&str, &str, &str)]) {
        let mut x = String::new();
        writeln!(x, "<event timestamp=\"{t}\" name=\"{name}\">").unwrap();
        writeln!(x, "<field name=\"cpu\" value=\"{cpu}\" type=\"int\" />").unwrap();
        for (n, v, ty) in fields {
            writeln!(x, "<field name=\"{n}\" value=\"{v}\" type=\"{ty}\" />").unwrap();
        }
        writeln!(x, "</event>").unwrap();
        self.0.push((t, x));
    }
    fn switch(&mut self, t: i64, cpu: i64, tid: i64) {
        self.event(
            t,
            "sched_switch",
            cpu,
            &[
                ("prev_comm", "x", "string"),
                ("prev_tid", "0", "long"),
                ("prev_prio", "20", "long"),
                ("prev_state", "0", "long"),
                ("next_comm", "x", "string"),
                ("next_tid", &tid.to_string(), "long"),
                ("next_prio", "20", "long"),
            ],
        );
    }
    fn open(&mut self, t: i64, cpu: i64, path: &str) {
        self.event(
            t,
            "syscall_entry_openat",
            cpu,
            &[
                ("dfd", "-100", "long"),
                ("filename", path, "string"),
                ("flags", "16386", "long"),
                ("mode", "0", "long"),
            ],
        );
    }
    /// One request (device, first sector, sectors), inserted at `t`, issued 1 ms later, completed 2 ms later.
    fn request(
        &mut self,
        t: i64,
        cpu: i64,
        tid: i64,
        (dev, sector, n): (i64, i64, i64),
        write: bool,
    ) {
        let rwbs = if write { "1" } else { "8" };
        let (dev, sector, n, tid) = (
            dev.to_string(),
            sector.to_string(),
            n.to_string(),
            tid.to_string(),
        );
        let f = [
            ("dev", dev.as_str(), "long"),
            ("sector", sector.as_str(), "long"),
            ("nr_sector", n.as_str(), "long"),
            ("bytes", "0", "long"),
            ("tid", tid.as_str(), "long"),
            ("rwbs", rwbs, "long"),
        ];
        self.event(t, "block_rq_insert", cpu, &f);
        self.event(t + 1_000_000, "block_rq_issue", cpu, &f);
        let c = [f[0], f[1], f[2], ("errors", "0", "long"), f[5]];
        self.event(t + 2_000_000, "block_rq_complete", cpu, &c);
    }
}

fn storage_trace() -> String {
    let mut s = Stub(Vec::new());
    let t = |sec: i64, ms: i64| BASE + sec * S + ms * 1_000_000;
    for (dev, name) in [(SDA, "sda"), (DM0, "dm-0"), (DM1, "dm-1")] {
        s.event(
            t(250, 0),
            "statedump_block_device",
            0,
            &[
                ("dev", &dev.to_string(), "long"),
                ("diskname", name, "string"),
            ],
        );
    }
    // Before the volume exists: a thread writes 100 sectors to the device that
    // will back it (an older LV on the same dm minor); not the volume's I/O.
    s.switch(t(254, 0), 0, 800);
    s.request(t(254, 1), 0, 800, (DM0, 0, 100), true);
    // qemu-img (tid 601) copies the image into volume 1: three 1 MiB writes.
    s.switch(t(255, 350), 1, 601);
    s.open(
        t(255, 351),
        1,
        &format!(
            "/dev/mapper/stack--volumes--lvmdriver--1-volume--{}",
            VOL1.replace('-', "--")
        ),
    );
    for k in 0..3 {
        s.request(t(255, 360 + 10 * k), 1, 601, (DM0, 2048 * k, 2048), true);
    }
    // Meanwhile on CPU 0: unrelated reads of sda.
    s.switch(t(255, 361), 0, 700);
    s.request(t(255, 362), 0, 700, (SDA, 4096, 8), false);
    // The iSCSI target (tid 650) opens volume 1 by its LVM path and reads 16 sectors.
    s.switch(t(270, 0), 0, 650);
    s.open(
        t(270, 1),
        0,
        &format!("/dev/stack-volumes-lvmdriver-1/volume-{VOL1}"),
    );
    s.request(t(270, 500), 0, 650, (DM0, 0, 16), false);
    // Volume 2: filled by tid 602 through its LVM path.
    s.switch(t(280, 30), 1, 602);
    s.open(
        t(280, 31),
        1,
        &format!("/dev/stack-volumes-lvmdriver-1/volume-{VOL2}"),
    );
    s.request(t(280, 40), 1, 602, (DM1, 0, 1024), true);
    s.request(t(280, 60), 0, 650, (SDA, 8, 8), true);
    s.0.sort_by_key(|e| e.0);
    // The CPU aspect declared, as Trace Compass stub traces do.
    let mut xml = String::from(
        "<trace>\n<set_aspects>\n<field name=\"cpu\" value=\"0\" type=\"int\" />\n</set_aspects>\n",
    );
    for (_, e) in s.0 {
        xml.push_str(&e);
    }
    xml.push_str("</trace>\n");
    xml
}

fn sextant(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sextant {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cinder_volumes_get_the_io_of_their_device_during_their_lifecycle() {
    let cinder = shared().join("traces/openstack/cinder/ctf/ust/uid/1000/64-bit");
    assert!(cinder.is_dir(), "{cinder:?}");
    let dir = tempfile::tempdir().unwrap();
    let stub = dir.path().join("storage-node.xml");
    std::fs::write(&stub, storage_trace()).unwrap();
    let c = cinder.to_str().unwrap();
    let out = sextant(&[
        "volume-report",
        c,
        "--storage-kernel",
        stub.to_str().unwrap(),
        "--json",
    ]);
    let r: Json = serde_json::from_str(&out).unwrap();
    let vols = r["volumes"].as_array().unwrap();
    // The two volumes of the trace (the `volume.update` records' literal `volume`
    // is not one).
    assert_eq!(vols.len(), 2, "{r}");
    let v1 = &vols[0];
    assert_eq!(v1["volume"], VOL1);
    assert_eq!(v1["lv"], format!("volume-{VOL1}"));
    assert_eq!(v1["start"], VOL1_CREATE.0);
    assert_eq!(v1["actions"][0]["action"], "volume.create");
    assert_eq!(v1["actions"][0]["end"], VOL1_CREATE.1 - 1);
    assert_eq!(v1["dev"], DM0);
    assert_eq!(v1["disk"], "dm-0");
    assert_eq!(v1["disk_link"], "opened-then-io");
    // 3 x 2048 written by qemu-img, 16 read by the target; not the 100 sectors
    // written before the volume existed, not sda's.
    assert_eq!(v1["sectors_written"], 6144);
    assert_eq!(v1["sectors_read"], 16);
    assert_eq!(v1["bytes_written"], 6144 * 512);
    let v2 = &vols[1];
    assert_eq!(v2["volume"], VOL2);
    assert_eq!(v2["disk"], "dm-1");
    assert_eq!(v2["sectors_written"], 1024);
    assert_eq!(v2["sectors_read"], 0);

    let text = sextant(&[
        "volume-report",
        c,
        "--storage-kernel",
        stub.to_str().unwrap(),
        "--volume",
        VOL2,
    ]);
    assert!(text.contains(&format!("volume {VOL2}")), "{text}");
    assert!(
        text.contains("(dm-1, link opened-then-io): 0 KiB read, 512 KiB written"),
        "{text}"
    );
    assert!(!text.contains(VOL1), "{text}");

    // Without a storage-node trace: the lifecycle only, and it says so.
    let alone = sextant(&["volume-report", c]);
    assert!(
        alone.contains("no storage-node kernel trace given"),
        "{alone}"
    );
}
