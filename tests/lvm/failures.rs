//! Failure behaviour of the built exporter: each broken input fails only its own collector,
//! the scrape still answers 200 within the timeout, derived metrics that need the broken input
//! are absent (never zero, never stale), and the log says what happened.
//!
//! LVM failures are injected with small scripts standing in for `lvm`; the tracked side uses
//! the example host's saved report, so most of these tests need neither root nor lvm2.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed-incident");

const DERIVED: [&str; 7] = [
    "nova_lvm_drift_bytes",
    "nova_lvm_untracked_bytes",
    "nova_lvm_corrected_free_bytes",
    "nova_lvm_scheduler_overestimate_bytes",
    "nova_lvm_recommended_reserved_host_disk_bytes",
    "nova_lvm_tracked_unbacked_bytes",
    "nova_lvm_recommended_disk_allocation_ratio",
];

fn example_args() -> Vec<String> {
    vec![
        format!("--nova.config-file={EXAMPLE}/nova.conf"),
        format!("--collector.file.path={EXAMPLE}/instances.json"),
        "--no-collector.libvirt".to_string(),
    ]
}

/// Writes an executable script standing in for `lvm`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn assert_lvm_failed_and_the_rest_answers(m: &Exposition) {
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
        0.0
    );
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"file\"}"),
        1.0
    );
    assert!(m.lacks_family("nova_lvm_vg_size_bytes"), "{}", m.text);
    for family in DERIVED {
        assert!(
            m.lacks_family(family),
            "{family} must be absent:\n{}",
            m.text
        );
    }
    // The tracked source's own figures are still there; its scheduler view needs the VG size.
    assert_eq!(
        m.value("nova_lvm_tracked_used_bytes{source=\"file\",vg=\"vms-group\"}"),
        (229 * GIB) as f64
    );
    assert!(m.lacks_family("nova_lvm_scheduler_free_bytes"));
    assert!(m
        .get("nova_lvm_collector_last_success_timestamp_seconds{collector=\"lvm\"}")
        .is_none());
}

/// The LVM process's failures: `--collector.lvm.method=exec` pinned (the default, auto, would
/// find the PVs by their labels once `lvm` cannot be started).
fn exec_args(lvm: &Path) -> Vec<String> {
    let mut args = example_args();
    args.push(format!("--collector.lvm.lvm-path={}", lvm.display()));
    args.push("--collector.lvm.method=exec".to_string());
    args
}

#[test]
fn a_missing_lvm_binary_fails_the_lvm_collector_only() {
    let exporter = Exporter::start(&exec_args(Path::new("/nonexistent/sbin/lvm")));
    let m = exporter.scrape();
    assert_lvm_failed_and_the_rest_answers(&m);
    let log = exporter.log();
    assert!(
        log.contains("cannot run") && log.contains("/nonexistent/sbin/lvm"),
        "{log}"
    );
}

#[test]
fn lvm_exiting_non_zero_is_reported_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let lvm = script(
        dir.path(),
        "lvm",
        "echo '  /dev/mapper/control: open failed: No such device' >&2\necho '  Locking failed: metadata is corrupt' >&2\nexit 5",
    );
    let exporter = Exporter::start(&exec_args(&lvm));
    let m = exporter.scrape();
    assert_lvm_failed_and_the_rest_answers(&m);
    let log = exporter.log();
    assert!(log.contains("Locking failed: metadata is corrupt"), "{log}");
}

#[test]
fn a_hanging_lvm_is_killed_at_the_timeout_and_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("lvm.pid");
    let lvm = script(
        dir.path(),
        "lvm",
        &format!(
            "echo $$ > {}\nsleep 60 &\necho $! >> {}\nwait",
            pid_file.display(),
            pid_file.display()
        ),
    );
    let mut args = exec_args(&lvm);
    args.push("--collector.lvm.timeout=1s".to_string());
    let exporter = Exporter::start(&args);
    let started = Instant::now();
    let m = exporter.scrape();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "the scrape waited {took:?}");
    assert_lvm_failed_and_the_rest_answers(&m);
    let log = exporter.log();
    assert!(log.contains("killed"), "{log}");

    // The script and its grandchild (same process group) were killed: neither runs any more.
    // The grandchild is re-parented to init when its parent dies; an init that does not reap
    // (as in some containers) leaves it a zombie, which is init's, not the exporter's.
    std::thread::sleep(Duration::from_millis(200));
    let pids = std::fs::read_to_string(&pid_file).unwrap();
    for pid in pids.split_whitespace() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let zombie = status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'));
        assert!(
            status.is_empty() || zombie,
            "process {pid} still runs:\n{status}"
        );
    }
    let zombies = children_in_state(exporter.pid(), 'Z');
    assert!(zombies.is_empty(), "zombie children: {zombies:?}");
}

/// Pids of `parent`'s children in the given state letter.
fn children_in_state(parent: u32, state: char) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.trim().to_string()) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let st = fields.next().and_then(|s| s.chars().next());
        let ppid: Option<u32> = fields.next().and_then(|p| p.parse().ok());
        if ppid == Some(parent) && st == Some(state) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn garbage_from_lvm_is_a_parse_error() {
    let dir = tempfile::tempdir().unwrap();
    let lvm = script(
        dir.path(),
        "lvm",
        "echo '  vms-group   1   7   0 wz--n- <500.00g <71.00g'",
    );
    let exporter = Exporter::start(&exec_args(&lvm));
    let m = exporter.scrape();
    assert_lvm_failed_and_the_rest_answers(&m);
    let log = exporter.log();
    assert!(log.contains("cannot parse LVM report"), "{log}");
}

#[test]
fn an_unreadable_xml_directory_fails_the_libvirt_collector_only() {
    let exporter = Exporter::start(&[
        format!("--nova.config-file={EXAMPLE}/nova.conf"),
        format!("--collector.lvm.replay-file={EXAMPLE}/lvm-report.json"),
        "--collector.libvirt.xml-dir=/nonexistent/libvirt/qemu".to_string(),
    ]);
    let m = exporter.scrape();
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
        1.0
    );
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"libvirt\"}"),
        0.0
    );
    assert_eq!(
        m.value("nova_lvm_vg_used_bytes{vg=\"vms-group\"}"),
        (429 * GIB) as f64
    );
    assert_eq!(
        m.value("nova_lvm_lvs{owner=\"foreign\",vg=\"vms-group\"}"),
        1.0
    );
    // Without a tracked source, nova's LVs cannot be told apart: no instance/orphan series.
    assert!(m
        .get("nova_lvm_lvs{owner=\"instance\",vg=\"vms-group\"}")
        .is_none());
    for family in DERIVED {
        assert!(
            m.lacks_family(family),
            "{family} must be absent:\n{}",
            m.text
        );
    }
    assert!(m.lacks_family("nova_lvm_tracked_used_bytes"));
    let log = exporter.log();
    assert!(log.contains("/nonexistent/libvirt/qemu"), "{log}");
}

#[test]
fn one_malformed_domain_xml_among_good_ones_fails_the_libvirt_collector() {
    let dir = tempfile::tempdir().unwrap();
    let qemu = dir.path().join("qemu");
    write_domains(
        &qemu,
        "vms-group",
        &[Domain {
            uuid: "6c1f0d3e-5b8a-4e52-9d3c-2f7a1b9e4c01",
            name: "web-01",
            root_gb: 80,
            ephemeral_gb: 0,
            swap_mb: 0,
            boot_from_volume: false,
        }],
    );
    std::fs::write(
        qemu.join("instance-000000ff.xml"),
        "<domain type='kvm'><name>instance-000000ff</name><uuid>",
    )
    .unwrap();
    let exporter = Exporter::start(&[
        format!("--nova.config-file={EXAMPLE}/nova.conf"),
        format!("--collector.lvm.replay-file={EXAMPLE}/lvm-report.json"),
        format!("--collector.libvirt.xml-dir={}", qemu.display()),
    ]);
    let m = exporter.scrape();
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"libvirt\"}"),
        0.0
    );
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
        1.0
    );
    for family in DERIVED {
        assert!(
            m.lacks_family(family),
            "{family} must be absent:\n{}",
            m.text
        );
    }
    let log = exporter.log();
    assert!(log.contains("instance-000000ff.xml"), "{log}");
}

#[test]
fn a_volume_group_that_does_not_exist_fails_the_lvm_collector() {
    if !lvm_available("a_volume_group_that_does_not_exist_fails_the_lvm_collector") {
        return;
    }
    let vg = LoopVg::new("present", 20);
    vg.create_lv("someone_elses_lv", "1G");
    let absent = format!("{}-absent", vg.name);
    let mut args = example_args();
    args.push(format!("--nova.images-volume-group={absent}"));
    args.push(format!("--collector.lvm.vg={absent}"));
    args.push(format!("--collector.lvm.vg={}", vg.name));
    let exporter = Exporter::start(&args);
    let m = exporter.scrape();
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
        0.0
    );
    // The VG that exists is still reported; nova's is missing, so nothing is derived.
    assert_eq!(
        m.value(&format!("nova_lvm_vg_used_bytes{{vg=\"{}\"}}", vg.name)),
        GIB as f64
    );
    assert!(m
        .get(&format!("nova_lvm_vg_size_bytes{{vg=\"{absent}\"}}"))
        .is_none());
    for family in DERIVED {
        assert!(
            m.lacks_family(family),
            "{family} must be absent:\n{}",
            m.text
        );
    }
    let log = exporter.log();
    assert!(
        log.contains(&format!("volume group not found: {absent}")),
        "{log}"
    );
}
