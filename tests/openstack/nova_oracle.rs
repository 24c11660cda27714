//! nova's own resource tracker as the oracle for [`Flavor::resource_tracker_bytes`] and
//! [`resource_tracker_local_gb_used`]: the same instances are fed to nova's
//! `ResourceTracker._get_usage_dict` and `_update_usage` on a `ComputeNode` object
//! (tests/openstack/nova_resource_tracker.py, in a venv with nova pinned, built by
//! scripts/nova-oracle-env), and every figure must be equal. Skipped, saying so, when the venv
//! cannot be built (no python3 venv or no package index).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nova_lvm_exporter::tracked::{resource_tracker_local_gb_used, Flavor, HostDiskSettings};
use nova_lvm_exporter::units::GIB;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's python, or `None` (skip) when it cannot be built.
fn oracle_python() -> Option<String> {
    let output = Command::new(repo().join("scripts/nova-oracle-env"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/nova-oracle-env");
    if !output.status.success() {
        assert!(
            std::env::var("CI").map_or(true, |ci| ci != "true"),
            "scripts/nova-oracle-env failed ({}); under CI=true a skip is a failure",
            output.status
        );
        eprintln!(
            "skipping: scripts/nova-oracle-env failed ({})",
            output.status
        );
        return None;
    }
    Some(String::from_utf8(output.stdout).ok()?.trim().to_string())
}

/// nova's `local_gb_used` and what it added per instance, in GiB.
fn nova_books(python: &str, reserved_host_disk_mb: u64, flavors: &[Flavor]) -> (u64, Vec<u64>) {
    let request = serde_json::json!({
        "reserved_host_disk_mb": reserved_host_disk_mb,
        "instances": flavors,
    });
    let mut child = Command::new(python)
        .arg(repo().join("tests/openstack/nova_resource_tracker.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the oracle");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let per_instance = answer["per_instance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|gib| gib.as_u64().unwrap())
        .collect();
    (answer["local_gb_used"].as_u64().unwrap(), per_instance)
}

#[test]
fn the_exporter_books_every_instance_and_reserve_as_nova_does() {
    let Some(python) = oracle_python() else {
        return;
    };
    let mut flavors = Vec::new();
    for swap_mb in [0, 1, 512, 1000, 1023, 1024, 1025, 1536, 2047, 2048, 4096] {
        for (root_gb, ephemeral_gb, boot_from_volume) in
            [(10, 0, false), (20, 5, false), (40, 0, true), (0, 3, true)]
        {
            flavors.push(Flavor {
                root_gb,
                ephemeral_gb,
                swap_mb,
                boot_from_volume,
            });
        }
    }
    for reserved_host_disk_mb in [0, 1, 1000, 1023, 1024, 1500, 2048, 3071, 10240] {
        let (local_gb_used, per_instance) = nova_books(&python, reserved_host_disk_mb, &flavors);
        let settings = HostDiskSettings {
            reserved_host_disk_mb,
            disk_allocation_ratio: 1.0,
        };
        assert_eq!(
            resource_tracker_local_gb_used(&settings, &flavors),
            local_gb_used,
            "reserved_host_disk_mb = {reserved_host_disk_mb}"
        );
        assert_eq!(
            local_gb_used - settings.resource_tracker_reserved_gib(),
            per_instance.iter().sum::<u64>()
        );
        for (flavor, nova_gib) in flavors.iter().zip(&per_instance) {
            assert_eq!(
                flavor.resource_tracker_bytes(),
                nova_gib * GIB,
                "{flavor:?}"
            );
        }
    }
}
