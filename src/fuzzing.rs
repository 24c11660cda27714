//! Entry points for the fuzz targets in `fuzz/` and for `tests/fast/fuzz_corpus.rs`, which replays
//! the saved corpus and every crash ever found on each run of the test suite. Each takes
//! arbitrary bytes and must return without panicking whatever they are: parsers report errors.
//!
//! Not part of the exporter's API.

use std::collections::HashSet;
use std::path::Path;

use crate::accounting::drift::account_host;
use crate::collect::{CollectorStatus, Snapshot};
use crate::lvm::owner::{classify_name, LvName};
use crate::tracked::{Flavor, HostDiskSettings, TrackedInstance, TrackedUsage};
pub use lvm_metadata::fuzzing::{lvm_metadata_text, lvm_pv};

/// A fuzz entry point.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, as in `fuzz/fuzz_targets/<name>.rs`.
pub const TARGETS: [(&str, Target); 8] = [
    ("lvm_report", lvm_report),
    ("lvm_pv", lvm_pv),
    ("lvm_metadata_text", lvm_metadata_text),
    ("account", account),
    ("libvirt_domain", libvirt_domain),
    ("nova_conf", nova_conf),
    ("instances_file", instances_file),
    ("web_config", web_config),
];

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// The LVM JSON report parser.
pub fn lvm_report(data: &[u8]) {
    let _ = crate::lvm::report::parse(&text(data), "fuzz");
}

/// The whole pure pipeline on a parsed report: every nova-named LV's instance is tracked with a
/// flavor derived from the input, some are left out (orphans), then the accounting and the
/// rendering of the metrics.
pub fn account(data: &[u8]) {
    let Ok(report) = crate::lvm::report::parse(&text(data), "fuzz") else {
        return;
    };
    let seed = data
        .iter()
        .fold(0u64, |acc, b| acc.rotate_left(5) ^ u64::from(*b));
    let mut seen = HashSet::new();
    let instances: Vec<TrackedInstance> = report
        .lvs
        .iter()
        .filter_map(|lv| match classify_name(&lv.name) {
            LvName::Nova { instance_uuid, .. } => Some((instance_uuid, lv.size_bytes)),
            _ => None,
        })
        .filter(|(uuid, _)| seen.insert(uuid.clone()))
        .enumerate()
        .filter(|(i, _)| (seed >> (i % 64)) & 1 == 0)
        .map(|(i, (uuid, size))| {
            let flavor = Flavor {
                root_gb: size >> 30,
                ephemeral_gb: seed.rotate_left(i as u32) % 4,
                swap_mb: (seed >> 8) % 4096,
                boot_from_volume: (seed >> (i % 64)) & 2 == 2,
            };
            TrackedInstance::from_flavor(uuid, &flavor)
        })
        .collect();
    let settings = HostDiskSettings {
        reserved_host_disk_mb: seed % 1_000_000,
        disk_allocation_ratio: 1.0 + (seed % 3) as f64 / 2.0,
    };
    let usage = TrackedUsage::from_local(instances, &settings);
    let watched: Vec<String> = report.vgs.iter().map(|vg| vg.name.clone()).collect();
    let nova_vg = watched.first().cloned().unwrap_or_default();
    let Ok(host) = account_host(&report, &watched, Some(&nova_vg), Some(&usage)) else {
        return;
    };
    let Ok(figures) = crate::accounting::drift::source_figures(
        &usage,
        report.vgs.first().map(|vg| vg.size_bytes),
    ) else {
        return;
    };
    let snapshot = Snapshot {
        collectors: vec![CollectorStatus {
            name: "lvm",
            success: true,
            duration: std::time::Duration::ZERO,
            last_success_unix: Some(0.0),
            error: None,
        }],
        sources: vec![(crate::tracked::SourceKind::File, figures)],
        host: Some(std::sync::Arc::new(host)),
        nova_vg,
        primary: Some(crate::tracked::SourceKind::File),
        audit: None,
        finished_unix: 0.0,
        raw_methods: Vec::new(),
        flavor_fit: None,
        orphans: None,
        local_source_doubts: None,
        lv_series_limit: 3,
    };
    let _ = crate::output::metrics::render(&snapshot);
}

/// The libvirt domain XML parser.
pub fn libvirt_domain(data: &[u8]) {
    let _ = crate::tracked::libvirt::parse_domain(&text(data), "fuzz.xml");
}

/// The nova.conf parser.
pub fn nova_conf(data: &[u8]) {
    let _ = crate::config::nova_conf::parse(&text(data), "fuzz.conf");
}

/// The instances file parser.
pub fn instances_file(data: &[u8]) {
    let _ = crate::tracked::file::parse_instances(&text(data), "fuzz.json");
}

/// The web configuration parser.
pub fn web_config(data: &[u8]) {
    let _ = crate::web::config::parse(&text(data), "fuzz.yml", Path::new("/nonexistent"));
}
