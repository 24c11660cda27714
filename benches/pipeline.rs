//! The in-process cost of one collection, without LVM itself: parse a saved `vgs` + `lvs -a`
//! JSON report, account it against the tracked instances, pick the orphans (their reasons come
//! from a cache; lookups run in the background), render the exposition. Run with
//! `cargo bench --bench pipeline`; prints one line per VG size with the median and p90 of each
//! step (a bench binary rather than criterion: three numbers per size are all the README needs,
//! and it adds no dependency).

use std::time::{Duration, Instant};

use nova_lvm_exporter::accounting::drift::{account_host, source_figures};
use nova_lvm_exporter::accounting::orphans::orphan_lvs;
use nova_lvm_exporter::collect::{CollectorStatus, Snapshot};
use nova_lvm_exporter::lvm::report;
use nova_lvm_exporter::tracked::{
    Flavor, HostDiskSettings, SourceKind, TrackedInstance, TrackedUsage,
};

const GIB: u64 = 1 << 30;

/// A VG of `lvs` LVs as `vgs` + `lvs -a` print it: 90% instance disks (root + swap for every
/// other instance), 5% orphans, the rest cinder volumes and foreign LVs. Returns the report
/// text and the instances nova tracks.
fn host(lvs: usize) -> (String, Vec<TrackedInstance>) {
    let mut rows = Vec::with_capacity(lvs);
    let mut instances = Vec::new();
    let mut used = 0u64;
    let mut i = 0usize;
    while rows.len() < lvs {
        let uuid = format!("{:08x}-1111-4222-8333-{:012x}", i, i);
        let size = (1 + (i as u64 % 40)) * GIB;
        let kind = i % 20;
        let name = match kind {
            0 => format!("{uuid}_disk"),
            1 => format!("volume-{uuid}"),
            2 => format!("backup_{i}"),
            _ => format!("{uuid}_disk"),
        };
        rows.push(format!(
            r#"{{"vg_name":"vms-group", "lv_name":"{name}", "lv_size":"{size}", "lv_attr":"-wi-ao----", "segtype":"linear", "pool_lv":"", "lv_parent":"", "data_percent":"", "lv_tags":""}}"#
        ));
        used += size;
        if kind >= 3 {
            let swap = i.is_multiple_of(2) && rows.len() < lvs;
            if swap {
                rows.push(format!(
                    r#"{{"vg_name":"vms-group", "lv_name":"{uuid}_disk.swap", "lv_size":"{}", "lv_attr":"-wi-ao----", "segtype":"linear", "pool_lv":"", "lv_parent":"", "data_percent":"", "lv_tags":""}}"#,
                    GIB
                ));
                used += GIB;
            }
            let flavor = Flavor {
                root_gb: size / GIB,
                ephemeral_gb: 0,
                swap_mb: if swap { 1024 } else { 0 },
                boot_from_volume: false,
            };
            instances.push(TrackedInstance::from_flavor(uuid, &flavor));
        }
        i += 1;
    }
    let vg_size = (used / GIB + 100) * GIB;
    let text = format!(
        "{{\"report\": [{{\"vg\": [{{\"vg_name\":\"vms-group\", \"vg_size\":\"{vg_size}\", \"vg_free\":\"{}\", \"vg_extent_size\":\"4194304\"}}]}}]}}\n{{\"report\": [{{\"lv\": [\n{}\n]}}]}}\n",
        vg_size - used,
        rows.join(",\n")
    );
    (text, instances)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    println!(
        "pipeline (median / p90 per step; {} iterations)",
        if quick { "1" } else { "many" }
    );
    println!(
        "{:>7} {:>20} {:>20} {:>20} {:>20} {:>20} {:>10}",
        "LVs", "parse", "account", "orphans", "render", "total", "bytes out"
    );
    for lvs in [10usize, 200, 2_000, 10_000] {
        let (text, instances) = host(lvs);
        let usage = TrackedUsage::from_local(instances, &HostDiskSettings::default());
        let iterations = if quick {
            1
        } else {
            (200_000 / lvs).clamp(20, 2_000)
        };
        let (mut parse, mut account, mut orphans, mut render, mut total) =
            (vec![], vec![], vec![], vec![], vec![]);
        let mut exposition_bytes = 0;
        for _ in 0..iterations {
            let started = Instant::now();
            let parsed = report::parse(&text, "bench").expect("the bench report parses");
            let parsed_at = Instant::now();
            let watched = vec!["vms-group".to_string()];
            let host = account_host(&parsed, &watched, Some("vms-group"), Some(&usage))
                .expect("the bench figures fit");
            let accounted_at = Instant::now();
            let orphan_reasons = orphan_lvs(&host, "vms-group");
            let orphans_at = Instant::now();
            let snapshot = Snapshot {
                collectors: vec![CollectorStatus {
                    name: "lvm",
                    success: true,
                    duration: Duration::from_millis(40),
                    last_success_unix: Some(1.7e9),
                    error: None,
                }],
                sources: vec![(
                    SourceKind::Libvirt,
                    source_figures(&usage, parsed.vgs.first().map(|vg| vg.size_bytes))
                        .expect("the bench figures fit"),
                )],
                host: Some(std::sync::Arc::new(host)),
                nova_vg: "vms-group".into(),
                primary: Some(SourceKind::Libvirt),
                audit: None,
                finished_unix: 1.7e9,
                raw_methods: Vec::new(),
                flavor_fit: None,
                orphans: orphan_reasons.map(std::sync::Arc::new),
                // The libvirt source lists instances: no local source to doubt.
                local_source_doubts: Some(Vec::new()),
                lv_series_limit: 100,
            };
            let out = nova_lvm_exporter::output::metrics::render(&snapshot);
            let rendered_at = Instant::now();
            exposition_bytes = out.len();
            parse.push(parsed_at - started);
            account.push(accounted_at - parsed_at);
            orphans.push(orphans_at - accounted_at);
            render.push(rendered_at - orphans_at);
            total.push(rendered_at - started);
        }
        let cell = |s: &mut Vec<Duration>| {
            format!(
                "{:>8.3} / {:>8.3} ms",
                percentile(s, 0.5).as_secs_f64() * 1e3,
                percentile(s, 0.9).as_secs_f64() * 1e3
            )
        };
        println!(
            "{lvs:>7} {:>20} {:>20} {:>20} {:>20} {:>20} {exposition_bytes:>10}",
            cell(&mut parse),
            cell(&mut account),
            cell(&mut orphans),
            cell(&mut render),
            cell(&mut total)
        );
    }
}
