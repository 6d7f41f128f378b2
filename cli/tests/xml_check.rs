//! `sextant xml check`: lists what a valid file defines, rejects bad files with
//! file:line:element and exit code 1.

use std::process::Command;

fn sextant(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(args)
        .output()
        .expect("run sextant");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_lists_analyses_views_and_handled_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.xml");
    std::fs::write(
        &path,
        r#"<tmfxml><stateProvider id="my.sp" version="3"><head><label value="Mine"/></head>
<eventHandler eventName="sched_*"><stateChange><stateAttribute type="constant" value="a"/>
<stateValue type="eventField" value="next_tid"/></stateChange></eventHandler></stateProvider>
<timeGraphView id="my.view"><head><analysis id="my.sp"/></head><entry path="a"><display type="self"/></entry></timeGraphView>
</tmfxml>"#,
    )
    .unwrap();
    let (code, out, err) = sextant(&["xml", "check", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("state provider my.sp (version 3, \"Mine\")"),
        "{out}"
    );
    assert!(out.contains("handles: sched_*"), "{out}");
    assert!(out.contains("reads fields: next_tid"), "{out}");
    assert!(out.contains("view my.view"), "{out}");
}

#[test]
fn check_rejects_invalid_files_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.xml");
    std::fs::write(
        &path,
        "<tmfxml>\n<stateProvider id=\"x\" version=\"1\">\n<oops/>\n</stateProvider>\n</tmfxml>",
    )
    .unwrap();
    let (code, _, err) = sextant(&["xml", "check", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.xml:3: <oops>"), "{err}");
    let (code, _, err) = sextant(&["xml", "check", "/nonexistent.xml"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent.xml"), "{err}");
}
