//! Least privilege, as shipped in `packaging/`: the systemd units pass `systemd-analyze verify`;
//! an unprivileged user with the shipped sudoers rule reads a real VG through `sudo -n` and can
//! run nothing else; root with an empty capability set (the `root.conf` drop-in) reads it too.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const PACKAGING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging");
const BINARY: &str = env!("CARGO_BIN_EXE_nova-lvm-exporter");
const USER: &str = "nova-lvm-exporter";

/// The shipped unit (and optionally the root drop-in) in a temporary directory, pointing at the
/// built binary (verify checks that ExecStart exists).
fn units(dir: &Path, with_root_dropin: bool) -> PathBuf {
    let unit = dir.join("nova-lvm-exporter.service");
    let text =
        std::fs::read_to_string(format!("{PACKAGING}/systemd/nova-lvm-exporter.service")).unwrap();
    std::fs::write(
        &unit,
        text.replace("/usr/local/bin/nova-lvm-exporter", BINARY),
    )
    .unwrap();
    if with_root_dropin {
        let dropins = dir.join("nova-lvm-exporter.service.d");
        std::fs::create_dir_all(&dropins).unwrap();
        let text = std::fs::read_to_string(format!("{PACKAGING}/systemd/root.conf")).unwrap();
        std::fs::write(
            dropins.join("root.conf"),
            text.replace("/usr/local/bin/nova-lvm-exporter", BINARY),
        )
        .unwrap();
    }
    unit
}

#[test]
fn the_systemd_units_verify_cleanly_and_are_hardened() {
    if !Path::new("/usr/bin/systemd-analyze").exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "systemd-analyze is missing under CI=true"
        );
        eprintln!("\n!!! SKIPPING: systemd-analyze is not installed !!!\n");
        return;
    }
    for with_root_dropin in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let unit = units(dir.path(), with_root_dropin);
        let output = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "verify failed: {stderr}");
        assert!(
            stderr.trim().is_empty(),
            "verify complained (root drop-in: {with_root_dropin}): {stderr}"
        );
    }
    let unit =
        std::fs::read_to_string(format!("{PACKAGING}/systemd/nova-lvm-exporter.service")).unwrap();
    for directive in [
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
        "ReadOnlyPaths=",
        "NoNewPrivileges=",
        "User=nova-lvm-exporter",
    ] {
        assert!(
            unit.contains(directive),
            "{directive} missing from the unit"
        );
    }
    let root = std::fs::read_to_string(format!("{PACKAGING}/systemd/root.conf")).unwrap();
    assert!(root.contains("NoNewPrivileges=yes") && root.contains("CapabilityBoundingSet=\n"));
}

#[test]
fn the_sudoers_snippet_parses() {
    if !Path::new("/usr/sbin/visudo").exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "sudo is missing under CI=true"
        );
        eprintln!("\n!!! SKIPPING: sudo is not installed !!!\n");
        return;
    }
    run(
        "visudo",
        &["-cf", &format!("{PACKAGING}/sudoers/nova-lvm-exporter")],
    );
}

/// The sudoers rule installed for the test, removed on drop.
struct SudoersRule(PathBuf);

impl SudoersRule {
    fn install() -> Self {
        let path = PathBuf::from("/etc/sudoers.d/zz-nova-lvm-exporter-test");
        std::fs::copy(format!("{PACKAGING}/sudoers/nova-lvm-exporter"), &path).unwrap();
        run("chmod", &["0440", path.to_str().unwrap()]);
        run("visudo", &["-cf", path.to_str().unwrap()]);
        SudoersRule(path)
    }
}

impl Drop for SudoersRule {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn ensure_user() {
    let exists = Command::new("id")
        .arg(USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        run(
            "useradd",
            &[
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ],
        );
    }
}

/// A host readable by anyone: nova.conf and one domain XML in a world-readable directory.
fn host_files(vg: &LoopVg) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run("chmod", &["0755", dir.path().to_str().unwrap()]);
    write_nova_conf(&dir.path().join("nova.conf"), &vg.name, 0);
    write_domains(
        &dir.path().join("qemu"),
        &vg.name,
        &[Domain {
            uuid: "3f5e6c1a-1111-4222-8333-444455556666",
            name: "a",
            root_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            boot_from_volume: false,
        }],
    );
    run("chmod", &["-R", "a+rX", dir.path().to_str().unwrap()]);
    dir
}

fn args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        format!("--nova.config-file={}", dir.join("nova.conf").display()),
        format!("--collector.libvirt.xml-dir={}", dir.join("qemu").display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn assert_reads(exporter: &Exporter, vg: &LoopVg) {
    let m = exporter.scrape();
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
        1.0,
        "{}",
        exporter.log()
    );
    assert_eq!(
        m.value(&format!("nova_lvm_vg_size_bytes{{vg=\"{}\"}}", vg.name)),
        VG_20G_BYTES as f64
    );
    assert_eq!(
        m.value(&format!("nova_lvm_vg_used_bytes{{vg=\"{}\"}}", vg.name)),
        (1280 * MIB) as f64
    );
    assert_eq!(
        m.value(&format!("nova_lvm_drift_bytes{{vg=\"{}\"}}", vg.name)),
        (256 * MIB) as f64
    );
}

fn loop_vg(tag: &str) -> LoopVg {
    let vg = LoopVg::new(tag, 20);
    vg.create_lv("3f5e6c1a-1111-4222-8333-444455556666_disk", "1G");
    vg.create_lv("someone_elses_lv", "256M");
    vg
}

#[test]
fn an_unprivileged_user_reads_the_vg_through_the_shipped_sudo_rule_and_nothing_else() {
    if !lvm_available(
        "an_unprivileged_user_reads_the_vg_through_the_shipped_sudo_rule_and_nothing_else",
    ) {
        return;
    }
    assert!(
        Path::new("/usr/bin/sudo").exists(),
        "sudo must be installed (scripts/install-test-deps)"
    );
    ensure_user();
    let _rule = SudoersRule::install();
    let vg = loop_vg("sudo");
    let dir = host_files(&vg);
    let exporter = Exporter::start_command(
        "setpriv",
        &[
            &format!("--reuid={USER}"),
            &format!("--regid={USER}"),
            "--init-groups",
            "--",
            BINARY,
        ],
        &args(dir.path(), &["--collector.lvm.command-prefix=sudo -n"]),
    );
    assert_reads(&exporter, &vg);

    // The rule allows the one report and nothing else.
    let as_user = |argv: &[&str]| {
        Command::new("setpriv")
            .args([
                &format!("--reuid={USER}"),
                &format!("--regid={USER}"),
                "--init-groups",
                "--",
                "sudo",
                "-n",
            ])
            .args(argv)
            .output()
            .unwrap()
    };
    let lv = format!("{}/someone_elses_lv", vg.name);
    for forbidden in [
        vec!["/usr/sbin/lvremove", "-f", lv.as_str()],
        vec!["/usr/sbin/lvm", "lvremove", "-f", lv.as_str()],
        vec!["/usr/sbin/lvm"],
        vec!["/usr/sbin/lvm", "fullreport", "--", vg.name.as_str()],
        vec!["/usr/sbin/vgs"],
        vec!["/bin/sh", "-c", "id"],
    ] {
        let output = as_user(&forbidden);
        assert!(!output.status.success(), "sudo allowed {forbidden:?}");
    }
    run("lvs", &[&lv]);
}

#[test]
fn root_without_any_capability_reads_the_vg() {
    if !lvm_available("root_without_any_capability_reads_the_vg") {
        return;
    }
    let vg = loop_vg("nocaps");
    let dir = host_files(&vg);
    let exporter = Exporter::start_command(
        "setpriv",
        &[
            "--bounding-set=-all",
            "--inh-caps=-all",
            "--no-new-privs",
            "--",
            BINARY,
        ],
        &args(dir.path(), &[]),
    );
    assert_reads(&exporter, &vg);
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", exporter.pid())).unwrap_or_default();
    // setpriv execs the exporter in place, so this is the exporter's own status.
    assert!(
        status.lines().any(|l| l == "CapEff:\t0000000000000000"),
        "{status}"
    );
}
