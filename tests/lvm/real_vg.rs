//! The built exporter against a real volume group on a loop device and a directory of nova
//! libvirt domain XMLs: every exported value checked to the byte against hand-computed figures.

use crate::common;

use common::*;

const A: &str = "3f5e6c1a-1111-4222-8333-444455556666";
const B_BFV: &str = "9b2d7e40-aaaa-4bbb-8ccc-ddddeeeeffff";
const C: &str = "c0ffee00-1234-4567-89ab-cdef01234567";
const D_BUILDING: &str = "d00d0000-0000-4000-8000-00000000000d";
const GONE: &str = "0d1e2f3a-4b5c-4d7e-8f90-a1b2c3d4e5f6";
const VOLUME: &str = "volume-5a6b7c8d-0000-4000-8000-000000000005";

/// The host of the tests below: four instances nova tracks (one booted from volume, one still
/// building with no LV yet), an orphaned disk, a cinder volume and somebody else's LV.
struct Host {
    vg: LoopVg,
    dir: tempfile::TempDir,
    /// Unix seconds before the first and after the last lvcreate.
    created: (u64, u64),
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Host {
    fn new(tag: &str) -> Self {
        let vg = LoopVg::new(tag, 20);
        let before = now_unix();
        // A: root 2 GiB, ephemeral 1 GiB, swap 512 MiB.
        vg.create_lv(&format!("{A}_disk"), "2G");
        vg.create_lv(&format!("{A}_disk.local"), "1G");
        vg.create_lv(&format!("{A}_disk.swap"), "512M");
        // B: boot from volume (root disk in cinder), swap 512 MiB local.
        vg.create_lv(&format!("{B_BFV}_disk.swap"), "512M");
        // C: root 3 GiB, swap 1001 MiB, which LVM rounds up to 1004 MiB (251 extents).
        vg.create_lv(&format!("{C}_disk"), "3G");
        vg.create_lv(&format!("{C}_disk.swap"), "1001M");
        // D is building: nova counts it, its LV does not exist yet.
        vg.create_lv(&format!("{GONE}_disk"), "1G");
        vg.create_lv(VOLUME, "1G");
        vg.create_lv("someone_elses_lv", "2G");
        let created = (before, now_unix());

        let dir = tempfile::tempdir().expect("tempdir");
        write_domains(
            &dir.path().join("qemu"),
            &vg.name,
            &[
                Domain {
                    uuid: A,
                    name: "web-01",
                    root_gb: 2,
                    ephemeral_gb: 1,
                    swap_mb: 512,
                    boot_from_volume: false,
                },
                Domain {
                    uuid: B_BFV,
                    name: "db-bfv",
                    root_gb: 10,
                    ephemeral_gb: 0,
                    swap_mb: 512,
                    boot_from_volume: true,
                },
                Domain {
                    uuid: C,
                    name: "build-01",
                    root_gb: 3,
                    ephemeral_gb: 0,
                    swap_mb: 1001,
                    boot_from_volume: false,
                },
                Domain {
                    uuid: D_BUILDING,
                    name: "new-01",
                    root_gb: 1,
                    ephemeral_gb: 0,
                    swap_mb: 0,
                    boot_from_volume: false,
                },
            ],
        );
        write_nova_conf(&dir.path().join("nova.conf"), &vg.name, 1500);
        Host { vg, dir, created }
    }

    fn args(&self) -> Vec<String> {
        vec![
            format!(
                "--nova.config-file={}",
                self.dir.path().join("nova.conf").display()
            ),
            format!(
                "--collector.libvirt.xml-dir={}",
                self.dir.path().join("qemu").display()
            ),
        ]
    }
}

fn vg_series(name: &str, vg: &str) -> String {
    format!("{name}{{vg=\"{vg}\"}}")
}

#[test]
fn every_value_matches_the_hand_computed_accounting() {
    if !lvm_available("every_value_matches_the_hand_computed_accounting") {
        return;
    }
    let host = Host::new("exact");
    let vg = host.vg.name.as_str();
    let exporter = Exporter::start(&host.args());
    let m = exporter.scrape();

    // Raw: 5119 extents of 4 MiB = 20476 MiB; allocated 2048+1024+512 + 512 + 3072+1004 + 1024
    // + 1024 + 2048 = 12268 MiB.
    assert_eq!(
        m.value(&vg_series("nova_lvm_vg_size_bytes", vg)),
        VG_20G_BYTES as f64
    );
    assert_eq!(
        m.value(&vg_series("nova_lvm_vg_used_bytes", vg)),
        (12268 * MIB) as f64
    );
    assert_eq!(
        m.value(&vg_series("nova_lvm_vg_free_bytes", vg)),
        (8208 * MIB) as f64
    );

    let owner =
        |name: &str, owner: &str| m.value(&format!("{name}{{owner=\"{owner}\",vg=\"{vg}\"}}"));
    assert_eq!(owner("nova_lvm_lvs", "instance"), 6.0);
    assert_eq!(owner("nova_lvm_lv_bytes", "instance"), (8172 * MIB) as f64);
    assert_eq!(owner("nova_lvm_lvs", "orphan"), 1.0);
    assert_eq!(owner("nova_lvm_lv_bytes", "orphan"), GIB as f64);
    assert_eq!(owner("nova_lvm_lvs", "cinder"), 1.0);
    assert_eq!(owner("nova_lvm_lv_bytes", "cinder"), GIB as f64);
    assert_eq!(owner("nova_lvm_lvs", "foreign"), 1.0);
    assert_eq!(owner("nova_lvm_lv_bytes", "foreign"), (2 * GIB) as f64);
    // The invariant: bytes over owners + free = size.
    let owned: f64 = ["instance", "orphan", "cinder", "foreign"]
        .iter()
        .map(|o| owner("nova_lvm_lv_bytes", o))
        .sum();
    assert_eq!(owned + (8208 * MIB) as f64, VG_20G_BYTES as f64);

    let lv = |lv: &str, owner: &str| {
        m.value(&format!(
            "nova_lvm_lv_size_bytes{{lv=\"{lv}\",owner=\"{owner}\",vg=\"{vg}\"}}"
        ))
    };
    assert_eq!(lv("someone_elses_lv", "foreign"), (2 * GIB) as f64);
    assert_eq!(lv(&format!("{GONE}_disk"), "orphan"), GIB as f64);
    assert_eq!(lv(VOLUME, "cinder"), GIB as f64);
    assert_eq!(
        m.samples
            .keys()
            .filter(|s| s.starts_with("nova_lvm_lv_size_bytes{"))
            .count(),
        3,
        "instance disks get no per-LV series"
    );

    // Creation times from LVM, for exactly the LVs with a size series: made by lvcreate during
    // this test.
    let created: Vec<(&String, &f64)> = m
        .samples
        .iter()
        .filter(|(s, _)| s.starts_with("nova_lvm_lv_creation_timestamp_seconds{"))
        .collect();
    assert_eq!(created.len(), 3, "{created:?}");
    for (lv_name, owner_class) in [
        ("someone_elses_lv", "foreign"),
        (&format!("{GONE}_disk") as &str, "orphan"),
        (VOLUME, "cinder"),
    ] {
        let at = m.value(&format!(
            "nova_lvm_lv_creation_timestamp_seconds{{lv=\"{lv_name}\",owner=\"{owner_class}\",vg=\"{vg}\"}}"
        ));
        assert!(
            (host.created.0 as f64..=host.created.1 as f64).contains(&at),
            "{lv_name} created at {at}, not during {:?}",
            host.created
        );
    }

    // Tracked, nova's resource tracker rules (swap truncated to whole GiB): A 2+1+int(0.5) = 3,
    // B int(0.5) = 0 (boot from volume: no root), C 3+int(0.98) = 3, D 1 = 7 GiB.
    let source = |name: &str| m.value(&format!("{name}{{source=\"libvirt\",vg=\"{vg}\"}}"));
    assert_eq!(source("nova_lvm_tracked_used_bytes"), (7 * GIB) as f64);
    assert_eq!(source("nova_lvm_tracked_instances"), 4.0);
    // Placement rules: A 2+1+ceil(0.5) = 4, B ceil(0.5) = 1, C 3+ceil(0.98) = 4, D 1 = 10 GiB.
    assert_eq!(
        source("nova_lvm_tracked_allocated_bytes"),
        (10 * GIB) as f64
    );
    assert_eq!(source("nova_lvm_reserved_bytes"), (1500 * MIB) as f64);
    assert_eq!(source("nova_lvm_allocation_ratio"), 1.0);
    // (floor(20476 MiB) = 19 GiB - ceil(1500 MiB) = 2 GiB) * 1.0 - 10 GiB = 7 GiB.
    assert_eq!(source("nova_lvm_scheduler_free_bytes"), (7 * GIB) as f64);

    // Derived.
    assert_eq!(
        m.value(&vg_series("nova_lvm_drift_bytes", vg)),
        (5100 * MIB) as f64
    );
    let cause = |c: &str| {
        m.value(&format!(
            "nova_lvm_untracked_bytes{{cause=\"{c}\",vg=\"{vg}\"}}"
        ))
    };
    assert_eq!(cause("foreign"), (2048 * MIB) as f64);
    assert_eq!(cause("orphan"), (1024 * MIB) as f64);
    assert_eq!(cause("cinder"), (1024 * MIB) as f64);
    // The swap nova's resource tracker does not book: A's 512, B's 512 and C's 1001 MiB; LVM
    // rounded C's 1001 MiB up to 1004 (whole extents of 4 MiB).
    assert_eq!(cause("swap_remainder"), ((512 + 512 + 1001) * MIB) as f64);
    assert_eq!(cause("extent_rounding"), (3 * MIB) as f64);
    assert_eq!(cause("rescue"), 0.0);
    assert_eq!(cause("unbooked_root"), 0.0);
    assert!(m
        .get(&format!(
            "nova_lvm_untracked_bytes{{cause=\"overhead\",vg=\"{vg}\"}}"
        ))
        .is_none());
    assert_eq!(cause("unexplained"), 0.0);
    assert_eq!(
        m.value(&vg_series("nova_lvm_tracked_unbacked_bytes", vg)),
        GIB as f64
    );
    // 20476 - max(12268, 7168) - 1500 = 6708 MiB.
    assert_eq!(
        m.value(&vg_series("nova_lvm_corrected_free_bytes", vg)),
        (6708 * MIB) as f64
    );
    // 7168 - 6708 MiB of phantom space.
    assert_eq!(
        m.value(&vg_series("nova_lvm_scheduler_overestimate_bytes", vg)),
        (460 * MIB) as f64
    );
    // (19 - R) - 10 <= 6708 / 1024  =>  R >= 2.45  =>  3 GiB.
    assert_eq!(
        m.value(&vg_series(
            "nova_lvm_recommended_reserved_host_disk_bytes",
            vg
        )),
        (3 * GIB) as f64
    );

    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
        1.0
    );
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"libvirt\"}"),
        1.0
    );
    assert!(
        m.value("nova_lvm_collector_last_success_timestamp_seconds{collector=\"lvm\"}") > 1.7e9
    );
    assert!(m.text.contains("nova_lvm_build_info{"));

    let complaints = promtool_check_metrics(&m.text);
    assert!(
        complaints.is_empty(),
        "promtool check metrics: {complaints}"
    );
}

#[test]
fn each_scrape_reads_lvm_afresh() {
    if !lvm_available("each_scrape_reads_lvm_afresh") {
        return;
    }
    let host = Host::new("fresh");
    let vg = host.vg.name.as_str();
    let exporter = Exporter::start(&host.args());
    let drift = vg_series("nova_lvm_drift_bytes", vg);
    assert_eq!(exporter.scrape().value(&drift), (5100 * MIB) as f64);

    host.vg.remove_lv("someone_elses_lv");
    let m = exporter.scrape();
    assert_eq!(m.value(&drift), (3052 * MIB) as f64);
    assert_eq!(
        m.value(&format!("nova_lvm_lvs{{owner=\"foreign\",vg=\"{vg}\"}}")),
        0.0
    );
    assert!(m
        .get(&format!(
            "nova_lvm_lv_size_bytes{{lv=\"someone_elses_lv\",owner=\"foreign\",vg=\"{vg}\"}}"
        ))
        .is_none());

    host.vg.create_lv("backup_2026", "3G");
    let m = exporter.scrape();
    assert_eq!(m.value(&drift), ((3052 + 3072) * MIB) as f64);
    assert_eq!(
        m.value(&format!(
            "nova_lvm_untracked_bytes{{cause=\"foreign\",vg=\"{vg}\"}}"
        )),
        (3 * GIB) as f64
    );
}

#[test]
fn every_change_to_the_domain_files_is_seen_by_the_next_scrape() {
    if !lvm_available("every_change_to_the_domain_files_is_seen_by_the_next_scrape") {
        return;
    }
    let host = Host::new("watch");
    let vg = host.vg.name.as_str();
    let qemu = host.dir.path().join("qemu");
    let file = |index: u32| qemu.join(format!("instance-{index:08x}.xml"));
    let exporter = Exporter::start(&host.args());
    let series = |name: &str| format!("{name}{{source=\"libvirt\",vg=\"{vg}\"}}");
    let used_and_instances = || {
        let m = exporter.scrape();
        (
            m.value(&series("nova_lvm_tracked_used_bytes")) / GIB as f64,
            m.value(&series("nova_lvm_tracked_instances")),
        )
    };
    assert_eq!(used_and_instances(), (7.0, 4.0));
    assert_eq!(used_and_instances(), (7.0, 4.0), "unchanged");

    // A's root disk 2 -> 3 GiB, written in place: same inode, same size, same mtime.
    let a = file(1);
    let text = std::fs::read_to_string(&a).unwrap();
    let mtime = std::fs::metadata(&a).unwrap().modified().unwrap();
    let edited = text.replace("<nova:disk>2</nova:disk>", "<nova:disk>3</nova:disk>");
    assert_ne!(edited, text);
    std::fs::write(&a, edited).unwrap();
    let handle = std::fs::File::options().write(true).open(&a).unwrap();
    handle.set_modified(mtime).unwrap();
    drop(handle);
    assert_eq!(used_and_instances(), (8.0, 4.0), "edited in place");

    // C's root disk 3 -> 5 GiB, the way libvirt rewrites a definition: a new file renamed over.
    let c = file(3);
    let staged = qemu.join("instance-00000003.xml.new");
    let text = std::fs::read_to_string(&c).unwrap();
    std::fs::write(
        &staged,
        text.replace("<nova:disk>3</nova:disk>", "<nova:disk>5</nova:disk>"),
    )
    .unwrap();
    assert_eq!(
        used_and_instances(),
        (8.0, 4.0),
        "a staged file is not a domain"
    );
    std::fs::rename(&staged, &c).unwrap();
    assert_eq!(used_and_instances(), (10.0, 4.0), "replaced");

    // D (1 GiB) undefined, then defined again under another name.
    let d = file(4);
    let text = std::fs::read_to_string(&d).unwrap();
    std::fs::remove_file(&d).unwrap();
    assert_eq!(used_and_instances(), (9.0, 3.0), "removed");
    std::fs::write(file(9), &text).unwrap();
    assert_eq!(used_and_instances(), (10.0, 4.0), "added");

    // Broken in place, then mended: the collector fails, then succeeds, each on the next scrape.
    let success = "nova_lvm_collector_success{collector=\"libvirt\"}";
    std::fs::write(file(9), "<domain").unwrap();
    for _ in 0..2 {
        assert_eq!(exporter.scrape().value(success), 0.0, "broken");
    }
    std::fs::write(file(9), &text).unwrap();
    assert_eq!(exporter.scrape().value(success), 1.0, "mended");
    assert_eq!(used_and_instances(), (10.0, 4.0));
}

#[test]
fn a_thin_pool_is_attributed_by_extents_not_virtual_sizes() {
    if !lvm_available("a_thin_pool_is_attributed_by_extents_not_virtual_sizes") {
        return;
    }
    let vg = LoopVg::new("thin", 20);
    vg.create_lv(&format!("{A}_disk"), "2G");
    // Cinder's LVM driver (lvm_type = thin) keeps its volumes in the pool `<vg>-pool`: a 1 GiB
    // data LV, a 4 MiB metadata LV and the 4 MiB pool metadata spare hold extents; the thin
    // volumes have a virtual size of 10 and 50 GiB and hold nothing of the VG by themselves.
    vg.restore_with_extra_lvs(&thin_pool_metadata(&format!("{}-pool", vg.name), 512, 256));
    let out = run(
        "lvs",
        &["-a", "--noheadings", "-o", "lv_name,lv_attr", &vg.name],
    );
    assert!(out.contains("twi"), "the pool is a thin pool: {out}");
    assert!(out.contains("[lvol0_pmspare]"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    write_domains(
        &dir.path().join("qemu"),
        &vg.name,
        &[Domain {
            uuid: A,
            name: "a",
            root_gb: 2,
            ephemeral_gb: 0,
            swap_mb: 0,
            boot_from_volume: false,
        }],
    );
    write_nova_conf(&dir.path().join("nova.conf"), &vg.name, 0);
    let exporter = Exporter::start(&[
        format!(
            "--nova.config-file={}",
            dir.path().join("nova.conf").display()
        ),
        format!(
            "--collector.libvirt.xml-dir={}",
            dir.path().join("qemu").display()
        ),
    ]);
    let m = exporter.scrape();
    let name = vg.name.as_str();
    let used = 2048 + 1024 + 4 + 4;
    assert_eq!(
        m.value(&vg_series("nova_lvm_vg_used_bytes", name)),
        (used * MIB) as f64
    );
    assert_eq!(
        m.value(&format!(
            "nova_lvm_lv_bytes{{owner=\"cinder\",vg=\"{name}\"}}"
        )),
        (1032 * MIB) as f64
    );
    // The pool and its two thin volumes.
    assert_eq!(
        m.value(&format!("nova_lvm_lvs{{owner=\"cinder\",vg=\"{name}\"}}")),
        3.0
    );
    assert_eq!(
        m.value(&format!(
            "nova_lvm_untracked_bytes{{cause=\"cinder\",vg=\"{name}\"}}"
        )),
        (1032 * MIB) as f64
    );
    assert_eq!(
        m.value(&format!(
            "nova_lvm_untracked_bytes{{cause=\"unexplained\",vg=\"{name}\"}}"
        )),
        0.0
    );
    assert_eq!(
        m.value(&format!("nova_lvm_drift_bytes{{vg=\"{name}\"}}")),
        (1032 * MIB) as f64
    );
    // An inactive pool (no device-mapper here) has no data_percent nor metadata_percent: no
    // series, not a fake 0. (An active pool's figures are tested with a saved report:
    // tests/fixtures/lvm/thin-active.json.)
    for family in [
        "nova_lvm_thin_pool_data_used_ratio",
        "nova_lvm_thin_pool_metadata_used_ratio",
    ] {
        assert!(m.lacks_family(family), "{family}\n{}", m.text);
    }
    let owned: f64 = ["instance", "orphan", "cinder", "foreign"]
        .iter()
        .map(|o| m.value(&format!("nova_lvm_lv_bytes{{owner=\"{o}\",vg=\"{name}\"}}")))
        .sum();
    assert_eq!(
        owned + m.value(&vg_series("nova_lvm_vg_free_bytes", name)),
        VG_20G_BYTES as f64
    );
}

/// The metadata text of a thin pool `pool` (data `data_extents` extents, 1 extent of metadata,
/// 1 extent of spare) with two thin volumes, placed from extent `data_start` of `pv0` (after
/// the LVs created before it).
fn thin_pool_metadata(pool: &str, data_start: u64, data_extents: u64) -> String {
    let meta_start = data_start + data_extents;
    let spare_start = meta_start + 1;
    let thin = |name: &str, id: u32, gib: u64| {
        format!(
            r#"
		{name} {{
			id = "thinv{id}-aaaa-bbbb-cccc-dddd-eeee-fffff{id}"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1764000000
			creation_host = "compute-test"
			segment_count = 1

			segment1 {{
				start_extent = 0
				extent_count = {extents}
				type = "thin"
				thin_pool = "{pool}"
				transaction_id = {id}
				device_id = {id}
			}}
		}}"#,
            extents = gib * 256
        )
    };
    let linear = |name: &str, id: &str, count: u64, start: u64| {
        format!(
            r#"
		{name} {{
			id = "{id}"
			status = ["READ", "WRITE"]
			flags = []
			creation_time = 1764000000
			creation_host = "compute-test"
			segment_count = 1

			segment1 {{
				start_extent = 0
				extent_count = {count}
				type = "striped"
				stripe_count = 1
				stripes = [
					"{{pv}}", {start}
				]
			}}
		}}"#
        )
    };
    format!(
        r#"
		{pool} {{
			id = "pool00-aaaa-bbbb-cccc-dddd-eeee-ffff00"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1764000000
			creation_host = "compute-test"
			segment_count = 1

			segment1 {{
				start_extent = 0
				extent_count = {data_extents}
				type = "thin-pool"
				metadata = "{pool}_tmeta"
				pool = "{pool}_tdata"
				transaction_id = 2
				chunk_size = 128
				discards = "passdown"
				zero_new_blocks = 1
			}}
		}}
{}
{}
{}
{}
{}"#,
        linear(
            &format!("{pool}_tdata"),
            "tdata0-aaaa-bbbb-cccc-dddd-eeee-ffff00",
            data_extents,
            data_start
        ),
        linear(
            &format!("{pool}_tmeta"),
            "tmeta0-aaaa-bbbb-cccc-dddd-eeee-ffff00",
            1,
            meta_start
        ),
        linear(
            "lvol0_pmspare",
            "spare0-aaaa-bbbb-cccc-dddd-eeee-ffff00",
            1,
            spare_start
        ),
        thin(&format!("volume-{GONE}"), 1, 10),
        thin(&format!("volume-{A}"), 2, 50),
    )
}

/// The sum of every `nova_lvm_untracked_bytes` series of `vg`, whatever its cause.
fn untracked_sum(m: &Exposition, vg: &str) -> f64 {
    let label = format!("vg=\"{vg}\"");
    m.samples
        .iter()
        .filter(|(series, _)| {
            series.starts_with("nova_lvm_untracked_bytes{") && series.contains(&label)
        })
        .map(|(_, value)| *value)
        .sum()
}

fn fit_series(flavor: &str, vg: &str, view: &str) -> String {
    format!("nova_lvm_flavor_fit_instances{{flavor=\"{flavor}\",vg=\"{vg}\",view=\"{view}\"}}")
}

/// Runs `report` (text, or JSON checked against docs/report-schema.json) with `args`.
fn report(args: &[String], json: bool) -> (String, Option<serde_json::Value>) {
    let output = std::process::Command::new(common::exporter_binary())
        .arg("report")
        .args(json.then_some("--format=json"))
        .args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .expect("run report");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    common::capture(if json { "report.json" } else { "report.txt" }, &text);
    let value = json.then(|| {
        let value: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{e}\n{text}\n{}", String::from_utf8_lossy(&output.stderr)));
        let violations = common::schema::report_schema_violations(&value);
        assert!(
            violations.is_empty(),
            "docs/report-schema.json: {violations:#?}"
        );
        value
    });
    (text, value)
}

/// Issue 22, "Flavor fit with zero configuration": the domains defined here name their flavors
/// (`<nova:flavor name=...>`), so a host with the libvirt source and no flavor flag gets the
/// fit of those flavors. 100 GiB device: 25599 extents, 102396 MiB; m1.large (20 GiB) and
/// m1.small (5 GiB) instances and a foreign 60 GiB LV: 87040 MiB used, 25 GiB tracked.
/// Corrected free 15356 MiB: m1.large 0, m1.small 2. Placement's rule: floor(99.996) = 99 GiB,
/// reserved 0, 25 GiB allocated: 74 GiB free, m1.large 3, m1.small 14.
#[test]
fn the_flavors_of_the_domains_defined_here_fit_without_any_flavor_flag() {
    if !lvm_available("the_flavors_of_the_domains_defined_here_fit_without_any_flavor_flag") {
        return;
    }
    let vg = LoopVg::new("fit", 100);
    vg.create_lv(&format!("{A}_disk"), "20G");
    vg.create_lv(&format!("{C}_disk"), "5G");
    vg.create_lv("backup_scratch", "60G");
    let dir = tempfile::tempdir().unwrap();
    let instance = |uuid, name, root_gb| Domain {
        uuid,
        name,
        root_gb,
        ephemeral_gb: 0,
        swap_mb: 0,
        boot_from_volume: false,
    };
    write_domains_of_flavors(
        &dir.path().join("qemu"),
        &vg.name,
        &[
            (instance(A, "web-01", 20), "m1.large"),
            (instance(C, "build-01", 5), "m1.small"),
        ],
    );
    write_nova_conf(&dir.path().join("nova.conf"), &vg.name, 0);
    let args = vec![
        format!(
            "--nova.config-file={}",
            dir.path().join("nova.conf").display()
        ),
        format!(
            "--collector.libvirt.xml-dir={}",
            dir.path().join("qemu").display()
        ),
    ];
    let exporter = Exporter::start(&args);
    let m = exporter.scrape();
    let name = vg.name.as_str();
    assert_eq!(
        m.value(&vg_series("nova_lvm_corrected_free_bytes", name)),
        (15356 * MIB) as f64
    );
    let fit = |flavor: &str| {
        (
            m.value(&fit_series(flavor, name, "corrected")),
            m.value(&fit_series(flavor, name, "scheduler")),
        )
    };
    assert_eq!(
        fit("m1.large"),
        (0.0, 3.0),
        "m1.large: scheduler 3, corrected 0"
    );
    assert_eq!(fit("m1.small"), (2.0, 14.0));
    assert_eq!(
        m.text.matches("nova_lvm_flavor_fit_instances{").count(),
        4,
        "{}",
        m.text
    );
    assert_eq!(
        m.value(&vg_series("nova_lvm_flavor_fit_omitted_flavors", name)),
        0.0
    );

    // report says where each flavor came from, and that the next m1.large fails.
    let (_, json) = report(&args, true);
    let json = json.unwrap();
    let flavors: Vec<(String, String, u64, u64)> = json["flavor_fit"]["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["origin"].as_str().unwrap().to_string(),
                f["corrected"].as_u64().unwrap(),
                f["scheduler"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flavors,
        vec![
            ("m1.large".to_string(), "libvirt".to_string(), 0, 3),
            ("m1.small".to_string(), "libvirt".to_string(), 2, 14),
        ]
    );
    let (text, _) = report(&args, false);
    let large = text
        .lines()
        .find(|l| l.contains("m1.large (20,0,0)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(large.contains(" libvirt "), "{text}");
    assert!(large.ends_with("<- the next build here fails"), "{text}");
    // The start-up summary says where the flavors come from.
    assert!(
        exporter
            .log()
            .contains("the flavors of the domains defined here (libvirt source)"),
        "{}",
        exporter.log()
    );

    // The status page shows the same table, with the origin.
    let (status, page) = get(exporter.port, "/").unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains("<tr class=\"failed\"><th>m1.large</th><td>libvirt</td>"),
        "{page}"
    );
}

/// Issue 22, "Shared VGs with cinder": cinder's LVM driver with `lvm_type = thin` on nova's VG
/// creates its pool `<vg>-pool` with `lvcreate -T -l 100%FREE` (os-brick's
/// `LVM.create_thin_pool`, see docs/sources.md): the VG has no free extent left at once. The
/// pool (data, metadata and spare) is cause `cinder`, corrected free is 0 and the causes still
/// sum to the drift. 20 GiB device: 5119 extents; A's 2 GiB disk takes 512, the pool the other
/// 4607 (4605 data, 1 metadata, 1 spare): 18428 MiB.
#[test]
fn a_cinder_thin_pool_of_all_free_extents_is_cinders_and_leaves_no_corrected_free_space() {
    if !lvm_available(
        "a_cinder_thin_pool_of_all_free_extents_is_cinders_and_leaves_no_corrected_free_space",
    ) {
        return;
    }
    let vg = LoopVg::new("cinder", 20);
    vg.create_lv(&format!("{A}_disk"), "2G");
    let pool = format!("{}-pool", vg.name);
    vg.restore_with_extra_lvs(&thin_pool_metadata(&pool, 512, 4605));
    assert_eq!(
        vg.report_bytes("vg_free"),
        0,
        "100%FREE: no free extent left"
    );

    let dir = tempfile::tempdir().unwrap();
    write_domains_of_flavors(
        &dir.path().join("qemu"),
        &vg.name,
        &[(
            Domain {
                uuid: A,
                name: "web-01",
                root_gb: 2,
                ephemeral_gb: 0,
                swap_mb: 0,
                boot_from_volume: false,
            },
            "m1.small",
        )],
    );
    write_nova_conf(&dir.path().join("nova.conf"), &vg.name, 0);
    let args = [
        format!(
            "--nova.config-file={}",
            dir.path().join("nova.conf").display()
        ),
        format!(
            "--collector.libvirt.xml-dir={}",
            dir.path().join("qemu").display()
        ),
    ];
    let exporter = Exporter::start(&args);
    let m = exporter.scrape();
    let name = vg.name.as_str();
    let pool_bytes = (4607 * 4 * MIB) as f64;
    assert_eq!(m.value(&vg_series("nova_lvm_vg_free_bytes", name)), 0.0);
    assert_eq!(
        m.value(&format!(
            "nova_lvm_lv_size_bytes{{lv=\"{pool}\",owner=\"cinder\",vg=\"{name}\"}}"
        )),
        pool_bytes,
        "the pool is named, with its data, metadata and spare"
    );
    assert_eq!(
        m.value(&format!(
            "nova_lvm_untracked_bytes{{cause=\"cinder\",vg=\"{name}\"}}"
        )),
        pool_bytes
    );
    assert_eq!(
        m.value(&vg_series("nova_lvm_drift_bytes", name)),
        pool_bytes
    );
    assert_eq!(
        untracked_sum(&m, name),
        pool_bytes,
        "the causes sum to the drift"
    );
    assert_eq!(
        m.value(&vg_series("nova_lvm_corrected_free_bytes", name)),
        0.0
    );
    // The scheduler still sees 19 - 2 = 17 GiB: all of it phantom, and no m1.small fits.
    assert_eq!(
        m.value(&vg_series("nova_lvm_scheduler_overestimate_bytes", name)),
        (17 * GIB) as f64
    );
    assert_eq!(
        (
            m.value(&fit_series("m1.small", name, "corrected")),
            m.value(&fit_series("m1.small", name, "scheduler")),
        ),
        (0.0, 8.0)
    );
    // The status page and report name the pool among the untracked LVs and say why it took
    // everything.
    let (status, page) = get(exporter.port, "/").unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!(
            "<p class=\"cinder-pool\">{pool} is cinder&#39;s thin pool (lvm_type = thin)"
        )),
        "{page}"
    );
    let (text, _) = report(&args, false);
    assert!(
        text.lines()
            .any(|l| l.contains(" cinder ") && l.contains(&format!(" {pool} (created"))),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{pool} is cinder's thin pool (lvm_type = thin): cinder-volume creates it with every free extent"
        )),
        "{text}"
    );
}

/// Issue 22, "encrypted disks": with `[ephemeral_storage_encryption] enabled`, nova's `Lvm`
/// image backend still creates `<uuid>_<disk>` in the VG and opens a plain dm-crypt mapping
/// `/dev/mapper/<uuid>_<disk>-dmcrypt` on top of it (`dmcrypt.volume_name`), which the domain
/// uses. The mapping is no LV (LVM's metadata and `lvs` never list it) and the exporter reads
/// nothing under /dev/mapper: each LV counts once, and nothing is foreign. (This kernel has no
/// device-mapper, so the mapping itself cannot exist here; the domain names it as nova does.)
#[test]
fn an_encrypted_instance_disk_counts_once_beside_its_dmcrypt_mapping() {
    if !lvm_available("an_encrypted_instance_disk_counts_once_beside_its_dmcrypt_mapping") {
        return;
    }
    let vg = LoopVg::new("crypt", 20);
    vg.create_lv(&format!("{A}_disk"), "2G");
    vg.create_lv(&format!("{A}_disk.local"), "1G");
    let dir = tempfile::tempdir().unwrap();
    let xml_dir = dir.path().join("qemu");
    std::fs::create_dir_all(&xml_dir).unwrap();
    let domain = Domain {
        uuid: A,
        name: "secret-01",
        root_gb: 2,
        ephemeral_gb: 1,
        swap_mb: 0,
        boot_from_volume: false,
    };
    let plain_root = format!("<source dev='/dev/{}/{A}_disk'/>", vg.name);
    let xml = nova_domain_xml_of_flavor(&domain, "m1.secret", &vg.name, 1);
    assert!(xml.contains(&plain_root));
    let encrypted = xml.replace(
        &plain_root,
        &format!("<source dev='/dev/mapper/{A}_disk-dmcrypt'/>"),
    );
    let encrypted = encrypted.replace(
        "    <interface type='bridge'>",
        &format!("    <disk type='block' device='disk'>\n      <driver name='qemu' type='raw' cache='none' io='native'/>\n      <source dev='/dev/mapper/{A}_disk.local-dmcrypt'/>\n      <target dev='vdb' bus='virtio'/>\n    </disk>\n    <interface type='bridge'>"),
    );
    std::fs::write(xml_dir.join("instance-00000001.xml"), encrypted).unwrap();
    write_nova_conf(&dir.path().join("nova.conf"), &vg.name, 0);
    let lvs = run("lvs", &["-a", "--noheadings", "-o", "lv_name", &vg.name]);
    assert!(!lvs.contains("dmcrypt"), "LVM lists no mapping: {lvs}");

    // Both ways of reading LVM: the PVs' metadata (auto) and `lvm fullreport`.
    for method in ["auto", "exec"] {
        let exporter = Exporter::start(&[
            format!(
                "--nova.config-file={}",
                dir.path().join("nova.conf").display()
            ),
            format!("--collector.libvirt.xml-dir={}", xml_dir.display()),
            format!("--collector.lvm.method={method}"),
        ]);
        let m = exporter.scrape();
        let name = vg.name.as_str();
        let owner = |family: &str, owner: &str| {
            m.get(&format!("{family}{{owner=\"{owner}\",vg=\"{name}\"}}"))
                .unwrap_or(0.0)
        };
        assert_eq!(owner("nova_lvm_lvs", "instance"), 2.0, "{method}");
        assert_eq!(
            owner("nova_lvm_lv_bytes", "instance"),
            (3 * GIB) as f64,
            "{method}"
        );
        for other in ["foreign", "orphan", "cinder"] {
            assert_eq!(owner("nova_lvm_lv_bytes", other), 0.0, "{method} {other}");
        }
        assert_eq!(
            m.value(&vg_series("nova_lvm_vg_used_bytes", name)),
            (3 * GIB) as f64
        );
        assert_eq!(
            m.value(&vg_series("nova_lvm_drift_bytes", name)),
            0.0,
            "{method}"
        );
        assert_eq!(untracked_sum(&m, name), 0.0, "{method}");
    }
}

const RESCUED: &str = "5e5c0e00-1111-4222-8333-000000000001";
const DISK_0: &str = "d15c0000-1111-4222-8333-000000000002";
const ODD_SWAP: &str = "0dd5a900-1111-4222-8333-000000000003";

/// Every byte the instances' LVs hold beyond nova's books, by its cause, on a real VG with
/// 4 MiB extents: a rescued instance (its `disk.rescue` at the rescue image's 1025 MiB, which
/// LVM rounds to 1028), a `disk = 0` flavor (its root LV at the image's 2253 MiB, rounded to
/// 2256), a 1537 MiB swap (nova's resource tracker books 1 GiB of it; LVM rounds the LV to
/// 1540 MiB), and a foreign LV. Hand-computed:
///
/// ```text
/// rescued   disk 2048 + disk.rescue 1028          tracked 2048   rescue          1028
/// disk = 0  disk 2256 + disk.local 1024           tracked 1024   unbooked_root   2256
/// odd swap  disk 1024 + disk.swap 1540            tracked 2048   swap_remainder   513
///                                                                extent_rounding    3
/// foreign   100                                                  foreign          100
/// used 9020 MiB - tracked 5120 MiB = drift 3900 MiB = 1028 + 2256 + 513 + 3 + 100
/// ```
#[test]
fn every_byte_beyond_novas_books_is_named_by_its_cause() {
    if !lvm_available("every_byte_beyond_novas_books_is_named_by_its_cause") {
        return;
    }
    let vg = LoopVg::new("causes", 20);
    assert_eq!(vg.report_bytes("vg_extent_size"), 4 * MIB);
    vg.create_lv(&format!("{RESCUED}_disk"), "2G");
    vg.create_lv(&format!("{RESCUED}_disk.rescue"), "1025M");
    vg.create_lv(&format!("{DISK_0}_disk"), "2253M");
    vg.create_lv(&format!("{DISK_0}_disk.local"), "1G");
    vg.create_lv(&format!("{ODD_SWAP}_disk"), "1G");
    vg.create_lv(&format!("{ODD_SWAP}_disk.swap"), "1537M");
    vg.create_lv("someone_elses_lv", "100M");

    let dir = tempfile::tempdir().expect("tempdir");
    let flavor = |uuid, name, root_gb, ephemeral_gb, swap_mb| Domain {
        uuid,
        name,
        root_gb,
        ephemeral_gb,
        swap_mb,
        boot_from_volume: false,
    };
    write_domains(
        &dir.path().join("qemu"),
        &vg.name,
        &[
            flavor(RESCUED, "rescued-01", 2, 0, 0),
            flavor(DISK_0, "disk0-01", 0, 1, 0),
            flavor(ODD_SWAP, "swap-01", 1, 0, 1537),
        ],
    );
    write_nova_conf(&dir.path().join("nova.conf"), &vg.name, 0);
    let exporter = Exporter::start(&[
        format!(
            "--nova.config-file={}",
            dir.path().join("nova.conf").display()
        ),
        format!(
            "--collector.libvirt.xml-dir={}",
            dir.path().join("qemu").display()
        ),
    ]);
    let m = exporter.scrape();
    let name = vg.name.as_str();

    assert_eq!(
        m.value(&vg_series("nova_lvm_vg_used_bytes", name)),
        (9020 * MIB) as f64
    );
    assert_eq!(
        m.value(&format!(
            "nova_lvm_tracked_used_bytes{{source=\"libvirt\",vg=\"{name}\"}}"
        )),
        (5120 * MIB) as f64
    );
    let drift = m.value(&vg_series("nova_lvm_drift_bytes", name));
    assert_eq!(drift, (3900 * MIB) as f64);
    let cause = |c: &str| {
        m.value(&format!(
            "nova_lvm_untracked_bytes{{cause=\"{c}\",vg=\"{name}\"}}"
        ))
    };
    let expected = [
        ("foreign", 100 * MIB),
        ("orphan", 0),
        ("cinder", 0),
        ("unbooked_instance", 0),
        ("rescue", 1028 * MIB),
        ("unbooked_root", 2256 * MIB),
        ("swap_remainder", 513 * MIB),
        ("extent_rounding", 3 * MIB),
        ("unexplained", 0),
    ];
    for (c, bytes) in expected {
        assert_eq!(cause(c), bytes as f64, "cause {c}");
    }
    // The causes are exactly these, and sum to the drift (nothing is unbacked here).
    let exported: Vec<&String> = m
        .samples
        .keys()
        .filter(|s| s.starts_with("nova_lvm_untracked_bytes{"))
        .collect();
    assert_eq!(exported.len(), expected.len(), "{exported:?}");
    let sum: f64 = expected.iter().map(|(c, _)| cause(c)).sum();
    assert_eq!(
        m.value(&vg_series("nova_lvm_tracked_unbacked_bytes", name)),
        0.0
    );
    assert_eq!(sum, drift);
}
