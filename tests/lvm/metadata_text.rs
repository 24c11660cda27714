//! The exporter's `lvm fullreport` command line against LVM's configuration: whatever lvm.conf's
//! `report/time_format` says, it prints `lv_time` as seconds, which `lvm::report` reads as the
//! metadata's `creation_time`. The metadata text reader against LVM itself (every VG shape) is
//! the `lvm-metadata` crate's own test, `crates/lvm-metadata/tests/against_lvm/`.
//!
//! Needs root, lvm2 and loop devices; skips loudly otherwise (fails under `CI=true`).

use crate::common;

use std::process::{Command, Stdio};

use common::{lvm_available, LoopVg};
use nova_lvm_exporter::lvm::exec::LvmCommand;
use nova_lvm_exporter::lvm::report;

/// An LV `written` whose metadata says it was created at 1234567890 (2009-02-13 23:31:30 UTC).
const WRITTEN_LV: &str = r#"written {
id = "000000-0000-0000-0000-0000-0000-000001"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
creation_time = 1234567890
creation_host = "cmp-7"
segment_count = 1
segment1 {
start_extent = 0
extent_count = 1
type = "striped"
stripe_count = 1
stripes = ["pv0", 0]
}
}
"#;

#[test]
fn creation_times_print_as_seconds_whatever_lvm_conf_says() {
    if !lvm_available("creation_times_print_as_seconds_whatever_lvm_conf_says") {
        return;
    }
    let vg = LoopVg::new("mdt-time", 20);
    vg.restore_with_extra_lvs(WRITTEN_LV);
    let lvm_conf = tempfile::tempdir().unwrap();
    std::fs::write(
        lvm_conf.path().join("lvm.conf"),
        "report {\n\ttime_format = \"%d.%m.%Y %H:%M\"\n}\n",
    )
    .unwrap();
    let output = Command::new("lvm")
        .args(LvmCommand::fullreport_args(std::slice::from_ref(&vg.name)))
        .env("LVM_SYSTEM_DIR", lvm_conf.path())
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run lvm");
    let text = String::from_utf8_lossy(&output.stdout);
    let report = report::parse(&text, "lvm fullreport").expect("fullreport parses");
    let written = report.lvs.iter().find(|lv| lv.name == "written").unwrap();
    assert_eq!(written.creation_unix, Some(1_234_567_890), "{text}");
    // The same lvm.conf does change what plain lvs prints (the override is what holds).
    let plain = Command::new("lvs")
        .args([
            "--noheadings",
            "-o",
            "lv_time",
            &format!("{}/written", vg.name),
        ])
        .env("LVM_SYSTEM_DIR", lvm_conf.path())
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .env("TZ", "UTC")
        .output()
        .expect("run lvs");
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout).trim(),
        "13.02.2009 23:31"
    );
}
