//! The placement source against a real Keystone 30.0.0 and Placement 16.0.0 (PyPI, sqlite),
//! seeded the way nova-compute and the scheduler write them. The LVM side is a saved JSON report
//! (`--collector.lvm.replay-file`) so that these tests need no loop device.
//!
//! All tests share one environment (started on first use) and use their own resource provider,
//! so they can run in parallel; none of them stops a server (that is `placement_faults.rs`).

use crate::common;
use crate::openstack;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{get, write_nova_conf, Exporter, Exposition, MIB};
use nova_lvm_exporter::lvm::build::linear_lv;
use openstack::*;

const VG: &str = "vms-group";
/// `vgcreate` on a 100 GiB device: 25599 extents of 4 MiB.
const VG_BYTES: u64 = 25_599 * 4 * MIB;
const RESERVED_HOST_DISK_MB: u64 = 1500;

fn environment() -> Option<&'static OpenStack> {
    static ENV: OnceLock<Option<OpenStack>> = OnceLock::new();
    ENV.get_or_init(|| {
        openstack_available("placement integration tests")
            .then(|| OpenStack::start(Options::default()))
    })
    .as_ref()
}

/// A host: its provider in placement, its LVM report and nova.conf, in `dir`.
struct Host {
    name: String,
    uuid: String,
    consumers: Vec<Consumer>,
    dir: tempfile::TempDir,
}

fn uuid(prefix: u32, n: u32) -> String {
    format!(
        "{prefix:08x}-{n:04x}-4000-8000-{:012x}",
        u64::from(prefix) * 1000 + u64::from(n)
    )
}

/// Seeds provider `name` with consumers A (20 GiB), B (40 GiB) and D (boot from volume, no
/// DISK_GB), and writes an LVM report with A's and B's disks, a disk of C (not a consumer here:
/// an orphan) and a foreign LV.
fn seed_host(os: &OpenStack, name: &str, tag: u32) -> Host {
    let host = Host {
        name: name.to_string(),
        uuid: uuid(0xc0de_0000 + tag, 0),
        consumers: vec![
            Consumer {
                uuid: uuid(0xa000_0000 + tag, 1),
                disk_gb: 20,
                vcpus: 1,
                memory_mb: 2048,
            },
            Consumer {
                uuid: uuid(0xb000_0000 + tag, 2),
                disk_gb: 40,
                vcpus: 2,
                memory_mb: 4096,
            },
            Consumer {
                uuid: uuid(0xd000_0000 + tag, 4),
                disk_gb: 0,
                vcpus: 1,
                memory_mb: 1024,
            },
        ],
        dir: tempfile::tempdir().unwrap(),
    };
    let placement = os.placement();
    placement.register_compute_node(&ComputeNode {
        name: host.name.clone(),
        uuid: host.uuid.clone(),
        vg_bytes: VG_BYTES,
        reserved_host_disk_mb: RESERVED_HOST_DISK_MB,
        disk_allocation_ratio: 1.0,
    });
    for consumer in &host.consumers {
        placement.allocate(&host.uuid, consumer);
    }
    let orphan = uuid(0xcccc_0000 + tag, 3);
    let a_disk = format!("{}_disk", host.consumers[0].uuid);
    let b_disk = format!("{}_disk", host.consumers[1].uuid);
    let c_disk = format!("{orphan}_disk");
    write_lvm_report(
        &host.dir.path().join("lvm-report.json"),
        VG,
        VG_BYTES,
        &[
            linear_lv(VG, &a_disk, 20 * GIB),
            linear_lv(VG, &b_disk, 40 * GIB),
            linear_lv(VG, &c_disk, 10 * GIB),
            linear_lv(VG, "scratch", 5 * GIB),
        ],
    );
    write_nova_conf(
        &host.dir.path().join("nova.conf"),
        VG,
        RESERVED_HOST_DISK_MB,
    );
    host
}

fn args(host: &Host, extra: &[&str]) -> Vec<String> {
    let dir = host.dir.path().display();
    let mut args = vec![
        format!("--nova.config-file={dir}/nova.conf"),
        format!("--collector.lvm.replay-file={dir}/lvm-report.json"),
        "--no-collector.libvirt".to_string(),
        "--collector.placement".to_string(),
        format!("--collector.placement.hostname={}", host.name),
        "--collector.timeout=20s".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Scrapes until `ready` holds (the first refresh authenticates, which takes a moment).
fn scrape_until(exporter: &Exporter, ready: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let m = exporter.scrape();
        if ready(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "not ready in time:\n{}\n{}",
            m.text,
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn placement_status(m: &Exposition) -> Option<f64> {
    m.get("nova_lvm_collector_success{collector=\"placement\"}")
}

fn placement_ok(m: &Exposition) -> bool {
    placement_status(m) == Some(1.0)
}

/// The placement collector's current error, from the log.
fn wait_for_log(exporter: &Exporter, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = exporter.scrape();
        let log = exporter.log();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "{needle:?} never logged:\n{log}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn assert_no_secrets(os: &OpenStack, text: &str) {
    for secret in [
        os.var("APP_CRED_SECRET"),
        os.var("EXPORTER_PASSWORD"),
        os.var("READER_PASSWORD"),
        os.var("ADMIN_PASSWORD"),
    ] {
        assert!(!text.contains(secret), "a secret leaked:\n{text}");
    }
    assert!(!text.contains("gAAAAA"), "a fernet token leaked:\n{text}");
}

#[test]
fn application_credential_from_clouds_yaml_every_figure_to_the_byte() {
    let Some(os) = environment() else { return };
    let host = seed_host(os, "cmp-appcred.example", 1);
    let clouds = os.write_clouds_yaml(host.dir.path(), "RegionOne");
    let clouds_env = clouds.display().to_string();
    let secure_env = host.dir.path().join("secure.yaml").display().to_string();
    let exporter = Exporter::start_with_env(
        &args(&host, &["--os-cloud=exporter-appcred"]),
        &[
            ("OS_CLIENT_CONFIG_FILE", &clouds_env),
            ("OS_CLIENT_SECURE_FILE", &secure_env),
        ],
    );
    let m = scrape_until(&exporter, placement_ok);
    let p = |series: &str| m.value(series);
    let v = |name: &str| format!("{name}{{source=\"placement\",vg=\"{VG}\"}}");
    let g = |name: &str| format!("{name}{{vg=\"{VG}\"}}");

    // What placement says, in bytes: 60 GiB allocated to 3 consumers (one boot from volume),
    // reserved ceil(1500/1024) = 2 GiB, DISK_GB total floor(VG) = 99 GiB.
    assert_eq!(p(&v("nova_lvm_tracked_used_bytes")), (60 * GIB) as f64);
    assert_eq!(p(&v("nova_lvm_tracked_allocated_bytes")), (60 * GIB) as f64);
    assert_eq!(p(&v("nova_lvm_tracked_instances")), 3.0);
    assert_eq!(p(&v("nova_lvm_reserved_bytes")), (2 * GIB) as f64);
    assert_eq!(p(&v("nova_lvm_allocation_ratio")), 1.0);
    assert_eq!(
        p(&v("nova_lvm_scheduler_free_bytes")),
        ((99 - 2 - 60) * GIB) as f64
    );

    // Owner classes from placement's consumers.
    let owner = |name: &str, owner: &str| p(&format!("{name}{{owner=\"{owner}\",vg=\"{VG}\"}}"));
    assert_eq!(owner("nova_lvm_lvs", "instance"), 2.0);
    assert_eq!(owner("nova_lvm_lv_bytes", "instance"), (60 * GIB) as f64);
    assert_eq!(owner("nova_lvm_lvs", "orphan"), 1.0);
    assert_eq!(owner("nova_lvm_lv_bytes", "orphan"), (10 * GIB) as f64);
    assert_eq!(owner("nova_lvm_lvs", "foreign"), 1.0);
    assert_eq!(owner("nova_lvm_lv_bytes", "foreign"), (5 * GIB) as f64);
    assert_eq!(owner("nova_lvm_lvs", "cinder"), 0.0);
    let orphan_lv = format!("{}_disk", uuid(0xcccc_0000 + 1, 3));
    assert_eq!(
        p(&format!(
            "nova_lvm_lv_size_bytes{{lv=\"{orphan_lv}\",owner=\"orphan\",vg=\"{VG}\"}}"
        )),
        (10 * GIB) as f64
    );

    // Derived, with placement as the primary source.
    let used = 75 * GIB;
    let corrected = VG_BYTES as i64 - used as i64 - (2 * GIB) as i64;
    assert_eq!(p(&g("nova_lvm_vg_used_bytes")), used as f64);
    assert_eq!(p(&g("nova_lvm_drift_bytes")), (15 * GIB) as f64);
    let cause = |c: &str| {
        p(&format!(
            "nova_lvm_untracked_bytes{{cause=\"{c}\",vg=\"{VG}\"}}"
        ))
    };
    assert_eq!(cause("foreign"), (5 * GIB) as f64);
    assert_eq!(cause("orphan"), (10 * GIB) as f64);
    assert_eq!(cause("cinder"), 0.0);
    for part in [
        "rescue",
        "unbooked_root",
        "swap_remainder",
        "extent_rounding",
    ] {
        assert_eq!(cause(part), 0.0, "{part}");
    }
    assert_eq!(cause("unexplained"), 0.0);
    assert_eq!(p(&g("nova_lvm_tracked_unbacked_bytes")), 0.0);
    assert_eq!(p(&g("nova_lvm_corrected_free_bytes")), corrected as f64);
    assert_eq!(
        p(&g("nova_lvm_scheduler_overestimate_bytes")),
        (37 * GIB as i64 - corrected) as f64
    );
    // (99 - R) * 1 - 60 <= corrected free (22.996 GiB)  =>  R >= 16.004 GiB  =>  17 GiB.
    assert_eq!(
        p(&g("nova_lvm_recommended_reserved_host_disk_bytes")),
        (17 * GIB) as f64
    );

    // The collector's last success is the time the data was read, not of the scrape.
    let data_time = p("nova_lvm_collector_last_success_timestamp_seconds{collector=\"placement\"}");
    std::thread::sleep(Duration::from_millis(1100));
    let again = exporter.scrape();
    assert_eq!(
        again.value("nova_lvm_collector_last_success_timestamp_seconds{collector=\"placement\"}"),
        data_time
    );
    assert!(
        again.value("nova_lvm_collector_last_success_timestamp_seconds{collector=\"lvm\"}")
            > data_time
    );

    // Secrets never in the metrics, the landing page or the log.
    assert_no_secrets(os, &m.text);
    let (_, landing) = get(exporter.port, "/").unwrap();
    assert!(landing.contains("application credential"), "{landing}");
    assert!(landing.contains("cmp-appcred.example"), "{landing}");
    assert_no_secrets(os, &landing);
    assert_no_secrets(os, &exporter.log());
    assert!(exporter
        .log()
        .contains("from=--collector.placement.hostname"));
    let complaints = common::promtool_check_metrics(&m.text);
    assert!(complaints.is_empty(), "promtool: {complaints}");
}

/// The `OS_*` variables of password authentication as the exporter user (internal endpoints of
/// RegionOne).
fn password_env(os: &OpenStack) -> [(&'static str, &str); 8] {
    [
        ("OS_AUTH_URL", os.auth_url()),
        ("OS_USERNAME", "exporter"),
        ("OS_PASSWORD", os.var("EXPORTER_PASSWORD")),
        ("OS_PROJECT_NAME", "service"),
        ("OS_USER_DOMAIN_NAME", "Default"),
        ("OS_PROJECT_DOMAIN_ID", "default"),
        ("OS_REGION_NAME", "RegionOne"),
        ("OS_INTERFACE", "internal"),
    ]
}

#[test]
fn password_auth_from_os_variables() {
    let Some(os) = environment() else { return };
    let host = seed_host(os, "cmp-password", 2);
    let exporter = Exporter::start_with_env(&args(&host, &[]), &password_env(os));
    let m = scrape_until(&exporter, placement_ok);
    assert_eq!(
        m.value(&format!(
            "nova_lvm_tracked_used_bytes{{source=\"placement\",vg=\"{VG}\"}}"
        )),
        (60 * GIB) as f64
    );
    assert_eq!(
        m.value(&format!("nova_lvm_lvs{{owner=\"orphan\",vg=\"{VG}\"}}")),
        1.0
    );
    assert_no_secrets(os, &exporter.log());
    let (_, landing) = get(exporter.port, "/").unwrap();
    assert!(landing.contains("OS_* environment variables"), "{landing}");
    assert_no_secrets(os, &landing);
}

/// A wrong but existing libvirt directory (empty) as the primary source beside placement:
/// placement allocates to two of the three instances whose disks are here, so the exporter says
/// the directory is wrong and these disks are not orphans.
#[test]
fn a_wrong_libvirt_directory_is_told_from_leaked_disks_by_placement() {
    let Some(os) = environment() else { return };
    let host = seed_host(os, "cmp-wrongdir", 12);
    let qemu = host.dir.path().join("qemu");
    std::fs::create_dir(&qemu).unwrap();
    let exporter = Exporter::start_with_env(
        &args(
            &host,
            &[
                "--collector.libvirt",
                &format!("--collector.libvirt.xml-dir={}", qemu.display()),
                "--tracked.primary=libvirt",
            ],
        ),
        &password_env(os),
    );
    let m = scrape_until(&exporter, placement_ok);
    assert_eq!(
        m.value(&format!(
            "nova_lvm_local_source_suspect{{source=\"libvirt\",vg=\"{VG}\"}}"
        )),
        1.0
    );
    // Placement places A and B here: their disks are never orphans, whatever libvirt says;
    // libvirt (primary) books them not, so their 60 GiB are cause unbooked_instance. Only C,
    // which no source places here, is an orphan.
    assert_eq!(
        m.value(&format!("nova_lvm_lvs{{owner=\"orphan\",vg=\"{VG}\"}}")),
        1.0
    );
    assert_eq!(
        m.value(&format!("nova_lvm_lvs{{owner=\"instance\",vg=\"{VG}\"}}")),
        2.0
    );
    let cause = |c: &str| {
        m.value(&format!(
            "nova_lvm_untracked_bytes{{cause=\"{c}\",vg=\"{VG}\"}}"
        ))
    };
    assert_eq!(cause("unbooked_instance"), (60 * GIB) as f64);
    assert_eq!(cause("orphan"), (10 * GIB) as f64);
    let (_, page) = get(exporter.port, "/").unwrap();
    let warning = page
        .split("local-source-warning")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no warning on the page:\n{page}"));
    for needle in [
        qemu.display().to_string(),
        "holds the disks of 3 instances (70.00 GiB)".to_string(),
        "placement places 2 of them on this host, so the libvirt source reads the wrong place: fix it; these disks are not orphans, remove none".to_string(),
    ] {
        assert!(warning.contains(&needle), "{needle:?} not in {warning}");
    }
    assert_no_secrets(os, &page);
}

#[test]
fn a_hundred_scrapes_within_one_refresh_interval_cause_one_refresh() {
    let Some(os) = environment() else { return };
    let host = seed_host(os, "cmp-counting", 3);
    let clouds = os.write_clouds_yaml(host.dir.path(), "RegionOne");
    let clouds_env = clouds.display().to_string();
    let secure_env = host.dir.path().join("secure.yaml").display().to_string();
    let lookups =
        |os: &OpenStack| os.count("placement", "GET", "/resource_providers?name=cmp-counting");
    let allocation_reads = |os: &OpenStack| {
        os.count(
            "placement",
            "GET",
            &format!("/resource_providers/{}/allocations", host.uuid),
        )
    };
    let inventory_reads = |os: &OpenStack| {
        os.count(
            "placement",
            "GET",
            &format!("/resource_providers/{}/inventories", host.uuid),
        )
    };
    // Seeding itself looked the provider up: count from here.
    let before = (lookups(os), allocation_reads(os), inventory_reads(os));
    let exporter = Exporter::start_with_env(
        &args(
            &host,
            &[
                "--os-cloud=exporter-appcred",
                "--collector.placement.refresh-interval=10m",
            ],
        ),
        &[
            ("OS_CLIENT_CONFIG_FILE", &clouds_env),
            ("OS_CLIENT_SECURE_FILE", &secure_env),
        ],
    );
    let started = Instant::now();
    scrape_until(&exporter, placement_ok);
    for _ in 0..100 {
        let m = exporter.scrape();
        assert!(placement_ok(&m));
    }
    assert!(started.elapsed() < Duration::from_secs(540));
    assert_eq!(lookups(os) - before.0, 1, "one provider lookup");
    assert_eq!(allocation_reads(os) - before.1, 1, "one allocations read");
    assert_eq!(inventory_reads(os) - before.2, 1, "one inventories read");
    let usage_reads = os.count(
        "placement",
        "GET",
        &format!("/resource_providers/{}/usages", host.uuid),
    );
    assert_eq!(
        usage_reads, 0,
        "usages are the allocations' sum, never read"
    );
}

/// GETs of `uuid`'s sub-resources and lookups of `name`, by kind, from placement's access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Reads {
    lookups: usize,
    inventories: usize,
    allocations: usize,
    other: usize,
}

fn reads(os: &OpenStack, name: &str, uuids: &[&str]) -> Reads {
    let mut reads = Reads::default();
    let lookup = format!("ACCESS GET /resource_providers?name={name} ");
    for line in os.access_log("placement") {
        if line.starts_with(&lookup) {
            reads.lookups += 1;
            continue;
        }
        for uuid in uuids {
            let base = format!("ACCESS GET /resource_providers/{uuid}/");
            if let Some(rest) = line.strip_prefix(&base) {
                match rest.split(' ').next().unwrap_or("") {
                    "inventories" => reads.inventories += 1,
                    "allocations" => reads.allocations += 1,
                    _ => reads.other += 1,
                }
            }
        }
    }
    reads
}

fn minus(a: Reads, b: Reads) -> Reads {
    Reads {
        lookups: a.lookups - b.lookups,
        inventories: a.inventories - b.inventories,
        allocations: a.allocations - b.allocations,
        other: a.other - b.other,
    }
}

fn start_fast(os: &OpenStack, host: &Host) -> Exporter {
    let clouds = os.write_clouds_yaml(host.dir.path(), "RegionOne");
    let clouds_env = clouds.display().to_string();
    let secure_env = host.dir.path().join("secure.yaml").display().to_string();
    Exporter::start_with_env(
        &args(
            host,
            &[
                "--os-cloud=exporter-appcred",
                "--collector.placement.refresh-interval=1s",
                "--collector.placement.max-age=10s",
                "--collector.placement.inventory-max-age=3s",
            ],
        ),
        &[
            ("OS_CLIENT_CONFIG_FILE", &clouds_env),
            ("OS_CLIENT_SECURE_FILE", &secure_env),
        ],
    )
}

/// Scrapes until placement has answered `allocations` more allocations reads of `uuid` than
/// `since`, then returns the last exposition.
fn scrape_until_reads(
    exporter: &Exporter,
    os: &OpenStack,
    host: &Host,
    uuids: &[&str],
    since: Reads,
    allocations: usize,
) -> Exposition {
    scrape_until(exporter, |_| {
        minus(reads(os, &host.name, uuids), since).allocations >= allocations
    })
}

fn tracked(m: &Exposition, metric: &str) -> f64 {
    m.value(&format!("{metric}{{source=\"placement\",vg=\"{VG}\"}}"))
}

#[test]
fn steady_state_is_one_get_per_refresh_and_an_inventory_change_is_read_when_due() {
    let Some(os) = environment() else { return };
    let host = seed_host(os, "cmp-one-get", 9);
    let uuids = [host.uuid.as_str()];
    let before = reads(os, &host.name, &uuids);
    let exporter = start_fast(os, &host);
    let m = scrape_until_reads(&exporter, os, &host, &uuids, before, 6);
    // Six refreshes or more: one lookup and one inventory read (the first refresh's extras),
    // and otherwise one allocations read per refresh; nothing else (no /usages).
    let seen = minus(reads(os, &host.name, &uuids), before);
    assert_eq!(
        (seen.lookups, seen.inventories, seen.other),
        (1, 1, 0),
        "{seen:?}"
    );
    assert!(placement_ok(&m));
    assert_eq!(
        tracked(&m, "nova_lvm_tracked_used_bytes"),
        (60 * GIB) as f64
    );
    assert_eq!(tracked(&m, "nova_lvm_reserved_bytes"), (2 * GIB) as f64);

    // The operator raises reserved_host_disk_mb to 10000 (nova-compute writes the inventory
    // again: reserved ceil(10000 / 1024) = 10 GiB). The provider generation moves, so a later
    // refresh reads the inventory instead of the allocations, once.
    let placement = os.placement();
    placement.register_compute_node(&ComputeNode {
        name: host.name.clone(),
        uuid: host.uuid.clone(),
        vg_bytes: VG_BYTES,
        reserved_host_disk_mb: 10_000,
        disk_allocation_ratio: 1.0,
    });
    let changed = reads(os, &host.name, &uuids);
    let m = scrape_until(&exporter, |m| {
        placement_ok(m) && tracked(m, "nova_lvm_reserved_bytes") == (10 * GIB) as f64
    });
    assert_eq!(
        tracked(&m, "nova_lvm_tracked_used_bytes"),
        (60 * GIB) as f64
    );
    assert_eq!(
        tracked(&m, "nova_lvm_scheduler_free_bytes"),
        ((99 - 10 - 60) * GIB) as f64
    );
    let m = scrape_until_reads(&exporter, os, &host, &uuids, changed, 5);
    let seen = minus(reads(os, &host.name, &uuids), changed);
    assert_eq!(
        (seen.lookups, seen.inventories, seen.other),
        (0, 1, 0),
        "{seen:?}"
    );
    assert_eq!(tracked(&m, "nova_lvm_reserved_bytes"), (10 * GIB) as f64);

    // A new instance (an allocation of 20 GiB): used comes from the allocations at once.
    let consumer = Consumer {
        uuid: uuid(0xe000_0000 + 9, 5),
        disk_gb: 20,
        vcpus: 1,
        memory_mb: 1024,
    };
    placement.allocate(&host.uuid, &consumer);
    let m = scrape_until(&exporter, |m| {
        placement_ok(m) && tracked(m, "nova_lvm_tracked_used_bytes") == (80 * GIB) as f64
    });
    assert_eq!(tracked(&m, "nova_lvm_tracked_instances"), 4.0);
    assert_eq!(
        tracked(&m, "nova_lvm_scheduler_free_bytes"),
        ((99 - 10 - 80) * GIB) as f64
    );
    // Deleted again (placement does not move the generation on a delete: the allocations
    // read is what sees it).
    placement.delete_allocation(&consumer.uuid);
    let m = scrape_until(&exporter, |m| {
        placement_ok(m) && tracked(m, "nova_lvm_tracked_used_bytes") == (60 * GIB) as f64
    });
    assert_eq!(tracked(&m, "nova_lvm_tracked_instances"), 3.0);
    // Never looked up again (the harness' inventory update looked the name up itself before
    // `changed`), never anything but inventories and allocations.
    let since = minus(reads(os, &host.name, &uuids), changed);
    assert_eq!((since.lookups, since.other), (0, 0), "{since:?}");
}

#[test]
fn a_provider_deleted_and_registered_again_is_looked_up_again() {
    let Some(os) = environment() else { return };
    let host = seed_host(os, "cmp-re-registered", 10);
    let new_uuid = uuid(0xc0de_0000 + 10, 1);
    let uuids = [host.uuid.as_str(), new_uuid.as_str()];
    let before = reads(os, &host.name, &uuids);
    let exporter = start_fast(os, &host);
    scrape_until_reads(&exporter, os, &host, &uuids, before, 3);

    // The compute node is deleted and registers again under a new UUID, with one instance.
    let placement = os.placement();
    for consumer in &host.consumers {
        placement.delete_allocation(&consumer.uuid);
    }
    placement.delete_provider(&host.uuid);
    placement.register_compute_node(&ComputeNode {
        name: host.name.clone(),
        uuid: new_uuid.clone(),
        vg_bytes: VG_BYTES,
        reserved_host_disk_mb: 0,
        disk_allocation_ratio: 1.0,
    });
    placement.allocate(&new_uuid, &host.consumers[0]);
    let m = scrape_until(&exporter, |m| {
        placement_ok(m) && tracked(m, "nova_lvm_tracked_used_bytes") == (20 * GIB) as f64
    });
    assert_eq!(tracked(&m, "nova_lvm_tracked_instances"), 1.0);
    assert_eq!(tracked(&m, "nova_lvm_reserved_bytes"), 0.0);
    assert_eq!(
        tracked(&m, "nova_lvm_scheduler_free_bytes"),
        ((99 - 20) * GIB) as f64
    );
    assert!(exporter.log().contains("the resource provider is gone"));
    // The old UUID answered 404 once and was never asked again; the provider was looked up
    // again after that (more than once if a refresh fell between the deletion and the new
    // registration: then the lookup itself failed), and no more once found.
    let gone = os
        .access_log("placement")
        .iter()
        .filter(|l| l.starts_with(&format!("ACCESS GET /resource_providers/{}/", host.uuid)))
        .filter(|l| l.split(' ').nth(3) == Some("404"))
        .count();
    assert_eq!(gone, 1);
    let found = reads(os, &host.name, &uuids);
    assert!(minus(found, before).lookups >= 2, "{found:?}");
    scrape_until_reads(&exporter, os, &host, &uuids, found, 4);
    let since = minus(reads(os, &host.name, &uuids), found);
    assert_eq!((since.lookups, since.other), (0, 0), "{since:?}");
}

#[test]
fn a_reader_only_user_gets_an_error_that_names_the_role() {
    let Some(os) = environment() else { return };
    let host = seed_host(os, "cmp-reader", 4);
    let clouds = os.write_clouds_yaml(host.dir.path(), "RegionOne");
    let clouds_env = clouds.display().to_string();
    let exporter = Exporter::start_with_env(
        &args(&host, &["--os-cloud=reader"]),
        &[("OS_CLIENT_CONFIG_FILE", &clouds_env)],
    );
    let log = wait_for_log(&exporter, "403 Forbidden");
    let m = exporter.scrape();
    assert_eq!(placement_status(&m), Some(0.0));
    assert!(m.lacks_family("nova_lvm_drift_bytes"), "{}", m.text);
    assert!(log.contains("admin or service role"), "{log}");
    assert!(log.contains("the token has roles: reader"), "{log}");
    assert_no_secrets(os, &log);
}

#[test]
fn a_wrong_password_is_a_clear_error_without_the_password() {
    let Some(os) = environment() else { return };
    let host = seed_host(os, "cmp-wrong-password", 5);
    let exporter = Exporter::start_with_env(
        &args(&host, &[]),
        &[
            ("OS_AUTH_URL", os.auth_url()),
            ("OS_USERNAME", "exporter"),
            ("OS_PASSWORD", "not-the-password-Zq9"),
            ("OS_PROJECT_NAME", "service"),
            ("OS_USER_DOMAIN_ID", "default"),
            ("OS_PROJECT_DOMAIN_ID", "default"),
        ],
    );
    let log = wait_for_log(&exporter, "refused to authenticate");
    assert!(log.contains("user \\\"exporter\\\""), "{log}");
    assert!(log.contains("HTTP 401"), "{log}");
    assert!(!log.contains("not-the-password-Zq9"), "{log}");
    assert_eq!(placement_status(&exporter.scrape()), Some(0.0));
}

#[test]
fn a_missing_provider_names_the_name_tried_and_the_flag() {
    let Some(os) = environment() else { return };
    let host = seed_host(os, "cmp-exists", 6);
    let clouds = os.write_clouds_yaml(host.dir.path(), "RegionOne");
    let clouds_env = clouds.display().to_string();
    let secure_env = host.dir.path().join("secure.yaml").display().to_string();
    let mut args = args(&host, &["--os-cloud=exporter-appcred"]);
    args.retain(|a| !a.starts_with("--collector.placement.hostname"));
    // No flag: the name comes from nova.conf's [DEFAULT] host (compute-test), which has no
    // provider.
    let exporter = Exporter::start_with_env(
        &args,
        &[
            ("OS_CLIENT_CONFIG_FILE", &clouds_env),
            ("OS_CLIENT_SECURE_FILE", &secure_env),
        ],
    );
    let log = wait_for_log(&exporter, "no resource provider named");
    assert!(log.contains("compute-test"), "{log}");
    assert!(log.contains("nova.conf [DEFAULT] host"), "{log}");
    // Every name tried, in nova's order: libvirt's hostname first.
    assert!(log.contains("libvirt\\'s hostname"), "{log}");
    assert!(log.contains("--collector.placement.hostname"), "{log}");
    assert!(log.contains("--collector.placement.provider-uuid"), "{log}");
    assert_eq!(placement_status(&exporter.scrape()), Some(0.0));
}

/// Runs the exporter as nova-compute would run on a host whose kernel hostname is `hostname`
/// and whose resolver knows `hosts_line`: in new UTS and mount namespaces, with `/etc/hosts`
/// replaced (bind mount) by one of ours. None of it leaks out of the namespaces. `None` when
/// this machine cannot make namespaces (not root, no unshare).
fn start_in_host_namespace(
    dir: &std::path::Path,
    hostname: &str,
    hosts_line: &str,
    args: &[String],
    env: &[(&str, &str)],
) -> Option<Exporter> {
    let probe = std::process::Command::new("unshare")
        .args(["--uts", "--mount", "true"])
        .status();
    if !matches!(probe, Ok(status) if status.success()) {
        eprintln!("skipping: cannot make UTS and mount namespaces (needs root and unshare)");
        return None;
    }
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1 localhost\n{hosts_line}\n")).unwrap();
    let exports: String = env
        .iter()
        .map(|(key, value)| format!("{key}='{value}' "))
        .collect();
    let script = format!(
        "mount --bind '{}' /etc/hosts && hostname '{hostname}' && exec env {exports}'{}' \"$@\"",
        hosts.display(),
        env!("CARGO_BIN_EXE_nova-lvm-exporter")
    );
    Some(Exporter::start_command(
        "unshare",
        &["--uts", "--mount", "--", "sh", "-c", &script, "sh"],
        args,
    ))
}

#[test]
fn the_provider_named_by_libvirt_s_fqdn_is_found_when_nova_conf_has_the_short_name() {
    let Some(os) = environment() else { return };
    // nova-compute on a host whose kernel hostname is short: libvirt names the compute node,
    // and so the provider, after the resolver's canonical name; nova.conf's host is short.
    let host = seed_host(os, "cmp-books.example.test", 11);
    let state = host.dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    write_nova_conf_with_state(&host.dir.path().join("nova.conf"), "cmp-books", &state, VG);
    let clouds = os.write_clouds_yaml(host.dir.path(), "RegionOne");
    let clouds_env = clouds.display().to_string();
    let secure_env = host.dir.path().join("secure.yaml").display().to_string();
    let env = [
        ("OS_CLIENT_CONFIG_FILE", clouds_env.as_str()),
        ("OS_CLIENT_SECURE_FILE", secure_env.as_str()),
    ];
    let mut base = args(&host, &["--os-cloud=exporter-appcred"]);
    base.retain(|a| !a.starts_with("--collector.placement.hostname"));
    let Some(exporter) = start_in_host_namespace(
        host.dir.path(),
        "cmp-books",
        "127.0.0.1 cmp-books.example.test cmp-books",
        &base,
        &env,
    ) else {
        return;
    };
    let m = scrape_until(&exporter, placement_ok);
    assert_eq!(
        m.value(&format!(
            "nova_lvm_tracked_used_bytes{{source=\"placement\",vg=\"{VG}\"}}"
        )),
        (60 * GIB) as f64
    );
    let log = exporter.log();
    assert!(log.contains("cmp-books.example.test"), "{log}");
    assert!(log.contains("canonical name"), "{log}");
    drop(exporter);

    // No provider under any of the names: the error lists each, with where it came from.
    let Some(exporter) = start_in_host_namespace(
        host.dir.path(),
        "cmp-nowhere",
        "127.0.0.1 cmp-nowhere.example.test cmp-nowhere",
        &base,
        &env,
    ) else {
        return;
    };
    let log = wait_for_log(&exporter, "no resource provider named");
    for tried in [
        "\\\"cmp-nowhere.example.test\\\" (libvirt\\'s hostname: the resolver\\'s canonical name",
        "\\\"cmp-nowhere\\\" (the system hostname)",
        "\\\"cmp-books\\\" (",
    ] {
        assert!(log.contains(tried), "{tried}: {log}");
    }
    assert!(log.contains("--collector.placement.hostname"), "{log}");
}

#[test]
fn clouds_yaml_problems_are_one_line_errors_naming_the_cloud() {
    // No servers needed: the exporter refuses to start.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("clouds.yaml"),
        "clouds:\n  prod:\n    auth:\n      auth_url: http://127.0.0.1:1/v3\n      application_credential_id: x\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("secure.yaml"), "clouds: {}\n").unwrap();
    write_nova_conf(&dir.path().join("nova.conf"), VG, 0);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .arg(format!(
            "--nova.config-file={}",
            dir.path().join("nova.conf").display()
        ))
        .args(["--collector.placement", "--os-cloud=staging"])
        .env(
            "OS_CLIENT_CONFIG_FILE",
            dir.path().join("clouds.yaml").as_os_str(),
        )
        .env(
            "OS_CLIENT_SECURE_FILE",
            dir.path().join("secure.yaml").as_os_str(),
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--os-cloud=staging: no such cloud"),
        "{stderr}"
    );
    assert!(stderr.contains("(clouds: prod)"), "{stderr}");
}

/// A nova.conf with a `[DEFAULT] host` and `state_path` of our choosing.
fn write_nova_conf_with_state(
    path: &std::path::Path,
    host: &str,
    state: &std::path::Path,
    vg: &str,
) {
    std::fs::write(
        path,
        format!(
            "[DEFAULT]\nhost = {host}\nstate_path = {}\nreserved_host_disk_mb = {RESERVED_HOST_DISK_MB}\n\n[libvirt]\nimages_type = lvm\nimages_volume_group = {vg}\n",
            state.display()
        ),
    )
    .unwrap();
}

#[test]
fn the_provider_is_found_by_the_uuid_in_compute_id_and_a_flag_overrides_it() {
    let Some(os) = environment() else { return };
    // The provider is named after the FQDN libvirt reports; nova.conf's host is the short name,
    // which has no provider: only compute_id finds it.
    let host = seed_host(os, "cmp-compute-id.example.org", 7);
    let state = host.dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(state.join("compute_id"), format!("{}\n", host.uuid)).unwrap();
    write_nova_conf_with_state(
        &host.dir.path().join("nova.conf"),
        "cmp-compute-id",
        &state,
        VG,
    );
    let clouds = os.write_clouds_yaml(host.dir.path(), "RegionOne");
    let clouds_env = clouds.display().to_string();
    let secure_env = host.dir.path().join("secure.yaml").display().to_string();
    let env = [
        ("OS_CLIENT_CONFIG_FILE", clouds_env.as_str()),
        ("OS_CLIENT_SECURE_FILE", secure_env.as_str()),
    ];
    let mut base = args(&host, &["--os-cloud=exporter-appcred"]);
    base.retain(|a| !a.starts_with("--collector.placement.hostname"));

    let exporter = Exporter::start_with_env(&base, &env);
    let m = scrape_until(&exporter, placement_ok);
    assert_eq!(
        m.value(&format!(
            "nova_lvm_tracked_used_bytes{{source=\"placement\",vg=\"{VG}\"}}"
        )),
        (60 * GIB) as f64
    );
    assert_eq!(
        m.value(&format!("nova_lvm_lvs{{owner=\"orphan\",vg=\"{VG}\"}}")),
        1.0
    );
    let log = exporter.log();
    assert!(
        log.contains("looking up this host\\'s resource provider by UUID"),
        "{log}"
    );
    assert!(
        log.contains(&format!("provider_uuid={}", host.uuid)),
        "{log}"
    );
    assert!(
        log.contains("compute_id (nova-compute\\'s compute node UUID)"),
        "{log}"
    );
    let (_, landing) = get(exporter.port, "/").unwrap();
    assert!(landing.contains(&host.uuid), "{landing}");
    drop(exporter);

    // --collector.placement.hostname wins over compute_id (here: the short name, no provider).
    let mut named = base.clone();
    named.push("--collector.placement.hostname=cmp-compute-id".to_string());
    let exporter = Exporter::start_with_env(&named, &env);
    let log = wait_for_log(&exporter, "no resource provider named");
    assert!(log.contains("cmp-compute-id"), "{log}");

    // --collector.placement.provider-uuid wins over both; an unknown UUID is a clear error.
    let mut by_uuid = base.clone();
    by_uuid.push("--collector.placement.provider-uuid=0badc0de-0000-4000-8000-000000000000".into());
    let exporter = Exporter::start_with_env(&by_uuid, &env);
    let log = wait_for_log(&exporter, "no resource provider with UUID");
    assert!(
        log.contains("0badc0de-0000-4000-8000-000000000000"),
        "{log}"
    );
    assert!(log.contains("--collector.placement.provider-uuid"), "{log}");

    // An unusable compute_id is warned about and the name is used.
    std::fs::write(state.join("compute_id"), "garbage\n").unwrap();
    let exporter = Exporter::start_with_env(&base, &env);
    let log = wait_for_log(&exporter, "no resource provider named");
    assert!(log.contains("does not hold a UUID"), "{log}");
}

#[test]
fn a_real_vg_with_placement_consumers_every_figure_to_the_byte() {
    if !common::lvm_available("placement on a real VG") {
        return;
    }
    let Some(os) = environment() else { return };
    let vg = common::LoopVg::new("plc", 100);
    let vg_bytes = vg.report_bytes("vg_size");
    let tag = 8;
    let node = ComputeNode {
        name: "cmp-real-vg".to_string(),
        uuid: uuid(0xc0de_0000 + tag, 0),
        vg_bytes,
        reserved_host_disk_mb: RESERVED_HOST_DISK_MB,
        disk_allocation_ratio: 1.0,
    };
    let consumers = [
        (uuid(0xa000_0000 + tag, 1), 20),
        (uuid(0xb000_0000 + tag, 2), 40),
        // Boot from volume: an instance with no DISK_GB and no LV.
        (uuid(0xd000_0000 + tag, 4), 0),
    ];
    let placement = os.placement();
    placement.register_compute_node(&node);
    for (consumer, disk_gb) in &consumers {
        placement.allocate(
            &node.uuid,
            &Consumer {
                uuid: consumer.clone(),
                disk_gb: *disk_gb,
                vcpus: 1,
                memory_mb: 1024,
            },
        );
    }
    // Nova's LVs of A (root + ephemeral) and B, a leaked disk of C, somebody's LV.
    let orphan = uuid(0xcccc_0000 + tag, 3);
    vg.create_lv(&format!("{}_disk", consumers[0].0), "16g");
    vg.create_lv(&format!("{}_disk.local", consumers[0].0), "4g");
    vg.create_lv(&format!("{}_disk", consumers[1].0), "40g");
    vg.create_lv(&format!("{orphan}_disk"), "10g");
    vg.create_lv("scratch_data", "5g");

    let dir = tempfile::tempdir().unwrap();
    write_nova_conf(
        &dir.path().join("nova.conf"),
        &vg.name,
        RESERVED_HOST_DISK_MB,
    );
    let clouds = os.write_clouds_yaml(dir.path(), "RegionOne");
    let clouds_env = clouds.display().to_string();
    let secure_env = dir.path().join("secure.yaml").display().to_string();
    let exporter = Exporter::start_with_env(
        &[
            format!("--nova.config-file={}/nova.conf", dir.path().display()),
            "--no-collector.libvirt".to_string(),
            "--collector.placement".to_string(),
            "--collector.placement.hostname=cmp-real-vg".to_string(),
            "--os-cloud=exporter-appcred".to_string(),
            "--collector.timeout=20s".to_string(),
        ],
        &[
            ("OS_CLIENT_CONFIG_FILE", &clouds_env),
            ("OS_CLIENT_SECURE_FILE", &secure_env),
        ],
    );
    let m = scrape_until(&exporter, placement_ok);
    let name = vg.name.as_str();
    let p = |series: &str| m.value(series);
    let v = |metric: &str| format!("{metric}{{source=\"placement\",vg=\"{name}\"}}");
    let g = |metric: &str| format!("{metric}{{vg=\"{name}\"}}");
    let owner =
        |metric: &str, owner: &str| p(&format!("{metric}{{owner=\"{owner}\",vg=\"{name}\"}}"));

    assert_eq!(vg_bytes, 25_599 * 4 * MIB, "vgcreate on 100 GiB");
    assert_eq!(p("nova_lvm_collector_success{collector=\"lvm\"}"), 1.0);
    assert_eq!(p(&g("nova_lvm_vg_size_bytes")), vg_bytes as f64);
    let used = 75 * GIB;
    assert_eq!(p(&g("nova_lvm_vg_used_bytes")), used as f64);
    assert_eq!(p(&g("nova_lvm_vg_free_bytes")), (vg_bytes - used) as f64);

    // Placement: 60 GiB for 3 consumers, reserved ceil(1500 / 1024) = 2 GiB, total 99 GiB.
    assert_eq!(p(&v("nova_lvm_tracked_used_bytes")), (60 * GIB) as f64);
    assert_eq!(p(&v("nova_lvm_tracked_allocated_bytes")), (60 * GIB) as f64);
    assert_eq!(p(&v("nova_lvm_tracked_instances")), 3.0);
    assert_eq!(p(&v("nova_lvm_reserved_bytes")), (2 * GIB) as f64);
    assert_eq!(p(&v("nova_lvm_allocation_ratio")), 1.0);
    assert_eq!(
        p(&v("nova_lvm_scheduler_free_bytes")),
        ((99 - 2 - 60) * GIB) as f64
    );

    // Owner classes from placement's consumers, on the real VG.
    assert_eq!(owner("nova_lvm_lvs", "instance"), 3.0);
    assert_eq!(owner("nova_lvm_lv_bytes", "instance"), (60 * GIB) as f64);
    assert_eq!(owner("nova_lvm_lvs", "orphan"), 1.0);
    assert_eq!(owner("nova_lvm_lv_bytes", "orphan"), (10 * GIB) as f64);
    assert_eq!(owner("nova_lvm_lvs", "foreign"), 1.0);
    assert_eq!(owner("nova_lvm_lv_bytes", "foreign"), (5 * GIB) as f64);
    assert_eq!(owner("nova_lvm_lvs", "cinder"), 0.0);
    assert_eq!(
        p(&format!(
            "nova_lvm_lv_size_bytes{{lv=\"{orphan}_disk\",owner=\"orphan\",vg=\"{name}\"}}"
        )),
        (10 * GIB) as f64
    );
    assert_eq!(
        p(&format!(
            "nova_lvm_lv_size_bytes{{lv=\"scratch_data\",owner=\"foreign\",vg=\"{name}\"}}"
        )),
        (5 * GIB) as f64
    );
    let owners_and_free = ["instance", "orphan", "cinder", "foreign"]
        .iter()
        .map(|o| owner("nova_lvm_lv_bytes", o))
        .sum::<f64>()
        + p(&g("nova_lvm_vg_free_bytes"));
    assert_eq!(owners_and_free, vg_bytes as f64);

    // Derived.
    let corrected = vg_bytes as i64 - used as i64 - (2 * GIB) as i64;
    assert_eq!(p(&g("nova_lvm_drift_bytes")), (15 * GIB) as f64);
    let cause = |c: &str| {
        p(&format!(
            "nova_lvm_untracked_bytes{{cause=\"{c}\",vg=\"{name}\"}}"
        ))
    };
    assert_eq!(cause("foreign"), (5 * GIB) as f64);
    assert_eq!(cause("orphan"), (10 * GIB) as f64);
    assert_eq!(cause("cinder"), 0.0);
    for part in [
        "rescue",
        "unbooked_root",
        "swap_remainder",
        "extent_rounding",
    ] {
        assert_eq!(cause(part), 0.0, "{part}");
    }
    assert_eq!(cause("unexplained"), 0.0);
    assert_eq!(p(&g("nova_lvm_tracked_unbacked_bytes")), 0.0);
    assert_eq!(p(&g("nova_lvm_corrected_free_bytes")), corrected as f64);
    assert_eq!(
        p(&g("nova_lvm_scheduler_overestimate_bytes")),
        (37 * GIB as i64 - corrected) as f64
    );
    assert_eq!(
        p(&g("nova_lvm_recommended_reserved_host_disk_bytes")),
        (17 * GIB) as f64
    );
    let complaints = common::promtool_check_metrics(&m.text);
    assert!(complaints.is_empty(), "promtool: {complaints}");
}

/// The cross-source audit with placement and libvirt both enabled, against a real placement:
/// a leaked allocation, an instance without allocation and a mismatch, each to the byte in the
/// metrics and listed by consumer in `report --format json`; an agreeing instance and a
/// boot-from-volume one (no DISK_GB allocated) are not listed.
#[test]
fn the_audit_finds_a_leaked_allocation_an_unallocated_instance_and_a_mismatch() {
    let Some(os) = environment() else { return };
    let tag = 40;
    let name = "cmp-audit.example";
    let provider = uuid(0xc0de_0000 + tag, 0);
    let leaked = uuid(0xa000_0000 + tag, 1);
    let unallocated = uuid(0xb000_0000 + tag, 2);
    let mismatched = uuid(0xc000_0000 + tag, 3);
    let agreeing = uuid(0xd000_0000 + tag, 4);
    let volume_booted = uuid(0xe000_0000 + tag, 5);
    let placement = os.placement();
    placement.register_compute_node(&ComputeNode {
        name: name.to_string(),
        uuid: provider.clone(),
        vg_bytes: VG_BYTES,
        reserved_host_disk_mb: RESERVED_HOST_DISK_MB,
        disk_allocation_ratio: 1.0,
    });
    // Allocations as the scheduler writes them: the leaked consumer's instance is gone, the
    // mismatched one was allocated 20 GiB for a flavor needing 20 + 5 + ceil(512/1024) = 26.
    for (consumer, disk_gb) in [
        (&leaked, 30),
        (&mismatched, 20),
        (&agreeing, 41),
        (&volume_booted, 0),
    ] {
        placement.allocate(
            &provider,
            &Consumer {
                uuid: consumer.clone(),
                disk_gb,
                vcpus: 1,
                memory_mb: 1024,
            },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let domain = |uuid, root_gb, ephemeral_gb, swap_mb, boot_from_volume| common::Domain {
        uuid,
        name: "vm",
        root_gb,
        ephemeral_gb,
        swap_mb,
        boot_from_volume,
    };
    common::write_domains(
        &dir.path().join("qemu"),
        VG,
        &[
            // 10 + ceil(1536/1024) = 12 GiB needed, nothing allocated.
            domain(&unallocated, 10, 0, 1536, false),
            domain(&mismatched, 20, 5, 512, false),
            // 40 + ceil(1/1024) = 41 GiB: agrees.
            domain(&agreeing, 40, 0, 1, false),
            domain(&volume_booted, 80, 0, 0, true),
        ],
    );
    let lv = |uuid: &str, disk: &str| format!("{uuid}_{disk}");
    let (unallocated_disk, unallocated_swap) =
        (lv(&unallocated, "disk"), lv(&unallocated, "disk.swap"));
    let (mismatched_disk, agreeing_disk) = (lv(&mismatched, "disk"), lv(&agreeing, "disk"));
    write_lvm_report(
        &dir.path().join("lvm-report.json"),
        VG,
        VG_BYTES,
        &[
            linear_lv(VG, &unallocated_disk, 10 * GIB),
            linear_lv(VG, &unallocated_swap, 1536 * MIB),
            linear_lv(VG, &mismatched_disk, 20 * GIB),
            linear_lv(VG, &agreeing_disk, 40 * GIB),
        ],
    );
    write_nova_conf(&dir.path().join("nova.conf"), VG, RESERVED_HOST_DISK_MB);
    let d = dir.path().display();
    let args = vec![
        format!("--nova.config-file={d}/nova.conf"),
        format!("--collector.lvm.replay-file={d}/lvm-report.json"),
        format!("--collector.libvirt.xml-dir={d}/qemu"),
        "--collector.placement".to_string(),
        format!("--collector.placement.hostname={name}"),
        "--collector.timeout=20s".to_string(),
    ];
    let clouds = os.write_clouds_yaml(dir.path(), "RegionOne");
    let clouds_env = clouds.display().to_string();
    let secure_env = dir.path().join("secure.yaml").display().to_string();
    let env = [
        ("OS_CLIENT_CONFIG_FILE", clouds_env.as_str()),
        ("OS_CLIENT_SECURE_FILE", secure_env.as_str()),
    ];
    let mut with_cloud = args.clone();
    with_cloud.push("--os-cloud=exporter-appcred".to_string());

    // The metrics: three series per family, no UUID, each to the byte.
    let exporter = Exporter::start_with_env(&with_cloud, &env);
    let m = scrape_until(&exporter, placement_ok);
    let audit = |family: &str, kind: &str| m.value(&format!("{family}{{kind=\"{kind}\"}}"));
    assert_eq!(
        audit("nova_lvm_audit_consumers", "allocation_without_instance"),
        1.0
    );
    assert_eq!(
        audit("nova_lvm_audit_bytes", "allocation_without_instance"),
        32_212_254_720.0
    );
    assert_eq!(
        audit("nova_lvm_audit_consumers", "instance_without_allocation"),
        1.0
    );
    assert_eq!(
        audit("nova_lvm_audit_bytes", "instance_without_allocation"),
        12_884_901_888.0
    );
    assert_eq!(
        audit("nova_lvm_audit_consumers", "allocation_mismatch"),
        1.0
    );
    assert_eq!(
        audit("nova_lvm_audit_bytes", "allocation_mismatch"),
        6_442_450_944.0
    );
    assert!(!m.text.contains(&leaked), "no per-consumer label");

    // The report lists each consumer with its figures.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .args(["report", "--format=json"])
        .args(&with_cloud)
        .envs(env)
        .output()
        .expect("run report");
    let text = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&output.stderr)));
    let violations = common::schema::report_schema_violations(&json);
    assert!(
        violations.is_empty(),
        "schema violations: {violations:#?}\n{text}"
    );
    let report_audit = &json["audit"];
    assert_eq!(report_audit["local_source"], "libvirt", "{text}");
    assert_eq!(
        report_audit["consumers"],
        serde_json::json!([
            {"kind": "allocation_without_instance", "uuid": leaked,
             "allocated_bytes": 30 * GIB, "expected_bytes": null, "lv_bytes": 0, "bytes": 30 * GIB},
            {"kind": "instance_without_allocation", "uuid": unallocated,
             "allocated_bytes": null, "expected_bytes": 12 * GIB,
             "lv_bytes": 10 * GIB + 1536 * MIB, "bytes": 12 * GIB},
            {"kind": "allocation_mismatch", "uuid": mismatched,
             "allocated_bytes": 20 * GIB, "expected_bytes": 26 * GIB,
             "lv_bytes": 20 * GIB, "bytes": 6 * GIB},
        ]),
        "{text}"
    );
    assert_eq!(
        report_audit["totals"][0],
        serde_json::json!({"kind": "allocation_without_instance", "consumers": 1, "bytes": 32_212_254_720u64})
    );

    // Once the leaked allocation is removed (what `nova-manage placement audit --delete` does),
    // its kind drops to zero.
    placement.delete_allocation(&leaked);
    let exporter = Exporter::start_with_env(&with_cloud, &env);
    let m = scrape_until(&exporter, placement_ok);
    assert_eq!(
        m.value("nova_lvm_audit_bytes{kind=\"allocation_without_instance\"}"),
        0.0
    );
    assert_eq!(
        m.value("nova_lvm_audit_bytes{kind=\"allocation_mismatch\"}"),
        6_442_450_944.0
    );
}

/// A host on a real 100 GiB VG with `consumers` (uuid, DISK_GB) allocated in placement and an
/// LV of that size for each, plus `foreign_gib` of somebody else's LV; returns the VG, its size
/// and the compute node.
fn real_vg_host(
    os: &OpenStack,
    tag: u32,
    name: &str,
    consumers: &[(String, u64)],
    foreign_gib: u64,
) -> (common::LoopVg, u64, ComputeNode) {
    let vg = common::LoopVg::new(&format!("r{tag}"), 100);
    let vg_bytes = vg.report_bytes("vg_size");
    let node = ComputeNode {
        name: name.to_string(),
        uuid: uuid(0xc0de_0000 + tag, 0),
        vg_bytes,
        reserved_host_disk_mb: RESERVED_HOST_DISK_MB,
        disk_allocation_ratio: 1.0,
    };
    let placement = os.placement();
    placement.register_compute_node(&node);
    for (consumer, disk_gb) in consumers {
        placement.allocate(
            &node.uuid,
            &Consumer {
                uuid: consumer.clone(),
                disk_gb: *disk_gb,
                vcpus: 1,
                memory_mb: 1024,
            },
        );
        vg.create_lv(&format!("{consumer}_disk"), &format!("{disk_gb}g"));
    }
    vg.create_lv("backup_scratch", &format!("{foreign_gib}g"));
    (vg, vg_bytes, node)
}

/// The exporter's arguments and environment for a real VG and this test env's placement,
/// refreshing every second; `conf_extra` is appended to nova.conf.
fn real_vg_exporter_args(
    os: &OpenStack,
    dir: &std::path::Path,
    vg: &str,
    provider_name: &str,
    conf_extra: &str,
) -> (Vec<String>, Vec<(String, String)>) {
    let conf = dir.join("nova.conf");
    write_nova_conf(&conf, vg, RESERVED_HOST_DISK_MB);
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{text}{conf_extra}")).unwrap();
    let clouds = os.write_clouds_yaml(dir, "RegionOne");
    let args = vec![
        format!("--nova.config-file={}", conf.display()),
        "--no-collector.libvirt".to_string(),
        "--collector.placement".to_string(),
        format!("--collector.placement.hostname={provider_name}"),
        "--os-cloud=exporter-appcred".to_string(),
        "--collector.timeout=20s".to_string(),
        "--collector.placement.refresh-interval=1s".to_string(),
        "--collector.placement.max-age=10s".to_string(),
        "--collector.placement.inventory-max-age=2s".to_string(),
    ];
    let env = vec![
        (
            "OS_CLIENT_CONFIG_FILE".to_string(),
            clouds.display().to_string(),
        ),
        (
            "OS_CLIENT_SECURE_FILE".to_string(),
            dir.join("secure.yaml").display().to_string(),
        ),
    ];
    (args, env)
}

/// `report` (text, or JSON checked against the schema) with these arguments.
fn run_report(args: &[String], env: &[(String, String)], format: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .args(["report", &format!("--format={format}")])
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run report");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    if format == "json" {
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&output.stderr)));
        let violations = common::schema::report_schema_violations(&json);
        assert!(violations.is_empty(), "schema: {violations:#?}\n{text}");
    }
    text
}

/// The remedy without a restart, round trip against the real Placement: on a real VG with 25 GiB
/// of foreign consumption the scheduler sees ~24 GiB that do not exist; the exporter's
/// recommended DISK_GB allocation ratio, applied through placement's API as
/// `openstack resource provider inventory set --amend` does, brings the scheduler's view within
/// the whole-GiB rounding of corrected free, and placement then refuses (409) an allocation that
/// would not fit on disk while accepting one that fits. Undoing it restores placement's view.
#[test]
fn the_recommended_allocation_ratio_applied_in_placement_refuses_what_does_not_fit_on_disk() {
    if !common::lvm_available("allocation ratio round trip on a real VG") {
        return;
    }
    let Some(os) = environment() else { return };
    let tag = 60;
    let name = "cmp-ratio.example";
    let consumers = [
        (uuid(0xa000_0000 + tag, 1), 20),
        (uuid(0xb000_0000 + tag, 2), 30),
    ];
    let (vg, vg_bytes, node) = real_vg_host(os, tag, name, &consumers, 25);
    let dir = tempfile::tempdir().unwrap();
    let (args, env) = real_vg_exporter_args(os, dir.path(), &vg.name, name, "");
    let exporter = Exporter::start_with_env(
        &args,
        &env.iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    );
    let g = |metric: &str| format!("{metric}{{vg=\"{}\"}}", vg.name);
    let v = |metric: &str| format!("{metric}{{source=\"placement\",vg=\"{}\"}}", vg.name);
    let m = scrape_until(&exporter, placement_ok);

    // Placement: total floor(vg) = 99 GiB, reserved ceil(1500 / 1024) = 2, 50 GiB allocated.
    let used = 75 * GIB;
    let corrected = vg_bytes as i64 - used as i64 - (2 * GIB) as i64;
    assert_eq!(
        m.value(&g("nova_lvm_corrected_free_bytes")),
        corrected as f64
    );
    assert_eq!(
        m.value(&v("nova_lvm_scheduler_free_bytes")),
        (47 * GIB) as f64
    );
    // (99 - 2) x R = corrected free + 50 GiB, rounded down to 4 decimals.
    let capacity = (corrected as u128) + u128::from(50 * GIB);
    let expected = (capacity * 10_000 / u128::from(97 * GIB)) as f64 / 10_000.0;
    assert_eq!(expected, 0.7525, "(22.996 + 50) / 97");
    let ratio = m.value(&g("nova_lvm_recommended_disk_allocation_ratio"));
    assert_eq!(ratio, expected);
    let complaints = common::promtool_check_metrics(&m.text);
    assert!(complaints.is_empty(), "promtool: {complaints}");

    // The report gives the exact command with this provider and R, and how to undo it.
    let report = run_report(&args, &env, "text");
    let command = format!(
        "openstack resource provider inventory set {} --amend --resource DISK_GB:allocation_ratio=0.7525",
        node.uuid
    );
    assert!(report.contains(&command), "{report}");
    assert!(
        report.contains(&format!(
            "undo: openstack resource provider inventory set {} --amend --resource DISK_GB:allocation_ratio=1.0",
            node.uuid
        )),
        "{report}"
    );
    assert!(
        report.contains("it holds while [DEFAULT] disk_allocation_ratio stays unset"),
        "{report}"
    );
    let json: serde_json::Value = serde_json::from_str(&run_report(&args, &env, "json")).unwrap();
    let remedy = &json["vgs"][0]["accounting"]["allocation_ratio_remedy"];
    assert_eq!(remedy["ratio"], 0.7525);
    assert_eq!(remedy["provider_uuid"], node.uuid.as_str());
    assert_eq!(remedy["command"], command.as_str());
    assert_eq!(
        remedy["overwritten_by_nova_conf_ratio"],
        serde_json::Value::Null
    );

    // Apply R the way the command does: the ratio parsed from the command, the rest kept.
    let applied: f64 = command.rsplit('=').next().unwrap().parse().unwrap();
    let placement = os.placement();
    placement.amend_disk_gb(&node.uuid, "allocation_ratio", serde_json::json!(applied));
    let inventory = placement.disk_gb_inventory(&node.uuid);
    assert_eq!(inventory["allocation_ratio"], serde_json::json!(0.7525));
    assert_eq!(
        (inventory["total"].as_u64(), inventory["reserved"].as_u64()),
        (Some(99), Some(2))
    );
    let m = scrape_until(&exporter, |m| {
        m.get(&v("nova_lvm_allocation_ratio")) == Some(applied)
    });
    let scheduler_free = m.value(&v("nova_lvm_scheduler_free_bytes"));
    let corrected_now = m.value(&g("nova_lvm_corrected_free_bytes"));
    assert_eq!(corrected_now, corrected as f64);
    assert!(
        scheduler_free <= corrected_now && corrected_now - scheduler_free < GIB as f64,
        "scheduler free {scheduler_free} vs corrected free {corrected_now}"
    );
    assert!(m.value(&g("nova_lvm_scheduler_overestimate_bytes")) <= 0.0);

    // Placement's capacity is now int(97 x 0.7525) = 72 GiB, 50 used: 23 GiB would not fit on
    // disk (corrected free 22.996 GiB) and is refused, 22 GiB fits and is accepted.
    let too_big = uuid(0xe000_0000 + tag, 5);
    let refusal = placement
        .try_allocate_disk(&node.uuid, &too_big, 23)
        .expect_err("23 GiB does not fit on disk");
    assert!(refusal.contains("409"), "{refusal}");
    let fits = uuid(0xe000_0000 + tag, 6);
    placement
        .try_allocate_disk(&node.uuid, &fits, 22)
        .expect("22 GiB fits on disk");
    placement.delete_allocation(&fits);

    // Undo: the ratio back to 1.0, and placement hands out the phantom space again.
    placement.amend_disk_gb(&node.uuid, "allocation_ratio", serde_json::json!(1.0));
    placement
        .try_allocate_disk(&node.uuid, &too_big, 23)
        .expect("with ratio 1.0 placement accepts what the disk lacks");
    placement.delete_allocation(&too_big);
}

/// Placement's DISK_GB reserved differs from nova.conf's reserved_host_disk_mb: both are
/// exported, the scheduler's view uses placement's, and `report` names the knob: the image
/// cache workaround when nova.conf sets it (the recommended reserve then leaves out what nova
/// adds itself), otherwise an inventory set by hand or by another nova.conf. With
/// `disk_allocation_ratio` set in nova.conf, the report says the ratio remedy would not hold.
#[test]
fn placement_s_reserve_beyond_nova_conf_is_explained_by_its_knob() {
    if !common::lvm_available("placement's reserve on a real VG") {
        return;
    }
    let Some(os) = environment() else { return };
    let tag = 61;
    let name = "cmp-reserve.example";
    let consumers = [(uuid(0xa000_0000 + tag, 1), 20)];
    let (vg, vg_bytes, node) = real_vg_host(os, tag, name, &consumers, 10);
    // What nova-compute sends with a 3 GiB image cache under the workaround: 2 + 3 GiB.
    os.placement()
        .amend_disk_gb(&node.uuid, "reserved", serde_json::json!(5));
    let dir = tempfile::tempdir().unwrap();
    let (args, env) = real_vg_exporter_args(
        os,
        dir.path(),
        &vg.name,
        name,
        "\n[workarounds]\nreserve_disk_resource_for_image_cache = True\n",
    );
    let exporter = Exporter::start_with_env(
        &args,
        &env.iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    );
    let g = |metric: &str| format!("{metric}{{vg=\"{}\"}}", vg.name);
    let v = |metric: &str| format!("{metric}{{source=\"placement\",vg=\"{}\"}}", vg.name);
    let m = scrape_until(&exporter, placement_ok);
    assert_eq!(m.value(&v("nova_lvm_reserved_bytes")), (5 * GIB) as f64);
    assert_eq!(
        m.value(&g("nova_lvm_nova_conf_reserved_bytes")),
        (RESERVED_HOST_DISK_MB * MIB) as f64
    );
    // The scheduler's view: (99 - 5) x 1 - 20 = 74 GiB, placement's reserve.
    assert_eq!(
        m.value(&v("nova_lvm_scheduler_free_bytes")),
        (74 * GIB) as f64
    );
    // corrected free = vg - 30 GiB - 5 GiB; placement needs ceil(99 - (20 + corrected)) GiB
    // reserved = ceil(99 - 20 - 64.996) = 15 GiB, of which nova adds the 3 GiB of image cache
    // itself: reserved_host_disk_mb = 12 GiB.
    let corrected = vg_bytes as i64 - (35 * GIB) as i64;
    assert_eq!(
        m.value(&g("nova_lvm_corrected_free_bytes")),
        corrected as f64
    );
    assert_eq!(
        m.value(&g("nova_lvm_recommended_reserved_host_disk_bytes")),
        (12 * GIB) as f64
    );
    let report = run_report(&args, &env, "text");
    assert!(
        report.contains("placement reserves 5 GiB, nova.conf's reserved_host_disk_mb = 1500 gives 2: [workarounds] reserve_disk_resource_for_image_cache adds the image cache's 3 GiB, which lives on instances_path, not in the VG"),
        "{report}"
    );
    assert!(
        report.contains("set [DEFAULT] reserved_host_disk_mb = 12288 (today 1500)"),
        "{report}"
    );
    let json: serde_json::Value = serde_json::from_str(&run_report(&args, &env, "json")).unwrap();
    let accounting = &json["vgs"][0]["accounting"];
    assert_eq!(accounting["reserved_difference"]["knob"], "image_cache");
    assert_eq!(accounting["reserved_difference"]["image_cache_gib"], 3);
    assert_eq!(accounting["recommended_reserved_host_disk_mb"], 12 * 1024);

    // The same placement with a nova.conf without the workaround but pinning the ratio.
    let (args, env) = real_vg_exporter_args(
        os,
        dir.path(),
        &vg.name,
        name,
        "\n[DEFAULT]\ndisk_allocation_ratio = 1.0\n",
    );
    let report = run_report(&args, &env, "text");
    assert!(
        report.contains("placement reserves 5 GiB, nova.conf's reserved_host_disk_mb = 1500 gives 2: placement's inventory was set by hand or by another nova.conf"),
        "{report}"
    );
    // Placement's reserve is then what reserved_host_disk_mb must give: 15 GiB.
    assert!(
        report.contains("set [DEFAULT] reserved_host_disk_mb = 15360 (today 5120)"),
        "{report}"
    );
    assert!(
        report.contains("it will NOT hold: nova.conf sets [DEFAULT] disk_allocation_ratio = 1.0"),
        "{report}"
    );
}

/// Placement primary with the libvirt source beside it, on a real VG: an instance defined here
/// with no allocation is running, so its LVs are instance disks, never orphans. Their bytes are
/// cause `unbooked_instance` (placement does not book them), the causes sum to the drift, and the
/// audit still says `instance_without_allocation`. A disk no source places here stays an orphan.
#[test]
fn an_instance_without_allocation_is_not_an_orphan_but_unbooked() {
    if !common::lvm_available("unbooked instance on a real VG") {
        return;
    }
    let Some(os) = environment() else { return };
    let vg = common::LoopVg::new("unb", 40);
    let vg_bytes = vg.report_bytes("vg_size");
    let tag = 50;
    let name = "cmp-unbooked.example";
    let node = ComputeNode {
        name: name.to_string(),
        uuid: uuid(0xc0de_0000 + tag, 0),
        vg_bytes,
        reserved_host_disk_mb: RESERVED_HOST_DISK_MB,
        disk_allocation_ratio: 1.0,
    };
    let allocated = uuid(0xa000_0000 + tag, 1);
    let unallocated = uuid(0xb000_0000 + tag, 2);
    let orphan = uuid(0xcccc_0000 + tag, 3);
    let placement = os.placement();
    placement.register_compute_node(&node);
    placement.allocate(
        &node.uuid,
        &Consumer {
            uuid: allocated.clone(),
            disk_gb: 20,
            vcpus: 1,
            memory_mb: 1024,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let domain = |uuid, root_gb, swap_mb| common::Domain {
        uuid,
        name: "vm",
        root_gb,
        ephemeral_gb: 0,
        swap_mb,
        boot_from_volume: false,
    };
    common::write_domains(
        &dir.path().join("qemu"),
        &vg.name,
        &[domain(&allocated, 20, 0), domain(&unallocated, 10, 1536)],
    );
    vg.create_lv(&format!("{allocated}_disk"), "20g");
    vg.create_lv(&format!("{unallocated}_disk"), "10g");
    vg.create_lv(&format!("{unallocated}_disk.swap"), "1536m");
    vg.create_lv(&format!("{orphan}_disk"), "5g");
    write_nova_conf(
        &dir.path().join("nova.conf"),
        &vg.name,
        RESERVED_HOST_DISK_MB,
    );
    let clouds = os.write_clouds_yaml(dir.path(), "RegionOne");
    let clouds_env = clouds.display().to_string();
    let secure_env = dir.path().join("secure.yaml").display().to_string();
    let env = [
        ("OS_CLIENT_CONFIG_FILE", clouds_env.as_str()),
        ("OS_CLIENT_SECURE_FILE", secure_env.as_str()),
    ];
    let d = dir.path().display();
    let args = vec![
        format!("--nova.config-file={d}/nova.conf"),
        format!("--collector.libvirt.xml-dir={d}/qemu"),
        "--collector.placement".to_string(),
        format!("--collector.placement.hostname={name}"),
        "--tracked.primary=placement".to_string(),
        "--os-cloud=exporter-appcred".to_string(),
        "--collector.timeout=20s".to_string(),
    ];
    let exporter = Exporter::start_with_env(&args, &env);
    let m = scrape_until(&exporter, placement_ok);
    let vg_name = vg.name.as_str();
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
        1.0
    );
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"libvirt\"}"),
        1.0
    );
    let owner = |metric: &str, owner: &str| {
        m.value(&format!("{metric}{{owner=\"{owner}\",vg=\"{vg_name}\"}}"))
    };
    // Only the disk no source places here is an orphan.
    assert_eq!(owner("nova_lvm_lvs", "orphan"), 1.0, "{}", m.text);
    assert_eq!(owner("nova_lvm_lv_bytes", "orphan"), (5 * GIB) as f64);
    assert_eq!(owner("nova_lvm_lvs", "instance"), 3.0);
    assert_eq!(
        owner("nova_lvm_lv_bytes", "instance"),
        (31 * GIB + 512 * MIB) as f64
    );
    assert!(
        !m.text.contains(&format!("lv=\"{unallocated}_disk")),
        "no per-LV untracked series for a running instance's disk:\n{}",
        m.text
    );
    let cause = |c: &str| {
        m.value(&format!(
            "nova_lvm_untracked_bytes{{cause=\"{c}\",vg=\"{vg_name}\"}}"
        ))
    };
    // Raw used 36.5 GiB, placement books 20 GiB: the drift is the orphan's 5 GiB and the
    // unallocated instance's 11.5 GiB, to the byte.
    let drift = m.value(&format!("nova_lvm_drift_bytes{{vg=\"{vg_name}\"}}"));
    assert_eq!(drift, (16 * GIB + 512 * MIB) as f64);
    assert_eq!(cause("orphan"), (5 * GIB) as f64);
    assert_eq!(cause("unbooked_instance"), (11 * GIB + 512 * MIB) as f64);
    let unbacked = m.value(&format!(
        "nova_lvm_tracked_unbacked_bytes{{vg=\"{vg_name}\"}}"
    ));
    let causes: f64 = [
        "foreign",
        "orphan",
        "cinder",
        "unbooked_instance",
        "rescue",
        "unbooked_root",
        "swap_remainder",
        "extent_rounding",
        "unexplained",
    ]
    .iter()
    .map(|c| cause(c))
    .sum();
    assert_eq!(causes - unbacked, drift, "the causes sum to the drift");
    // The audit still names the missing allocation (10 + ceil(1536 / 1024) = 12 GiB), beside
    // the orphan's LVs (5 GiB), as before.
    assert_eq!(
        m.value("nova_lvm_audit_consumers{kind=\"instance_without_allocation\"}"),
        2.0
    );
    assert_eq!(
        m.value("nova_lvm_audit_bytes{kind=\"instance_without_allocation\"}"),
        (17 * GIB) as f64
    );
    let complaints = common::promtool_check_metrics(&m.text);
    assert!(complaints.is_empty(), "promtool: {complaints}");

    // The status page names the cause.
    let (_, page) = get(exporter.port, "/").unwrap();
    assert!(
        page.contains(&format!(
            "data-figure=\"cause-unbooked_instance\" data-bytes=\"{}\"",
            11 * GIB + 512 * MIB
        )),
        "{page}"
    );

    // The report: only the orphan's LV listed as one, the cause in the JSON and the text.
    let report = |format: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
            .args(["report", &format!("--format={format}")])
            .args(&args)
            .envs(env)
            .output()
            .expect("run report");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let text = report("json");
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let violations = common::schema::report_schema_violations(&json);
    assert!(
        violations.is_empty(),
        "schema violations: {violations:#?}\n{text}"
    );
    let orphan_lvs: Vec<&str> = json["orphans"]["lvs"]
        .as_array()
        .unwrap_or_else(|| panic!("no orphans in {text}"))
        .iter()
        .map(|lv| lv["name"].as_str().unwrap())
        .collect();
    assert_eq!(orphan_lvs, [format!("{orphan}_disk")], "{text}");
    let vg_json = json["vgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == vg_name)
        .unwrap_or_else(|| panic!("no {vg_name} in {text}"));
    let untracked = &vg_json["accounting"]["untracked"];
    assert_eq!(
        untracked["unbooked_instance_bytes"],
        11 * GIB + 512 * MIB,
        "{text}"
    );
    assert_eq!(untracked["orphan_bytes"], 5 * GIB, "{text}");
    let unallocated_finding = json["audit"]["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["uuid"] == unallocated.as_str())
        .unwrap_or_else(|| panic!("{unallocated} not in the audit: {text}"));
    assert_eq!(
        unallocated_finding,
        &serde_json::json!({"kind": "instance_without_allocation", "uuid": unallocated,
            "allocated_bytes": null, "expected_bytes": 12 * GIB,
            "lv_bytes": 11 * GIB + 512 * MIB, "bytes": 12 * GIB}),
        "{text}"
    );
    let text = report("text");
    assert!(
        text.contains("unbooked_instance      11.50 GiB  instance on this host, not booked"),
        "{text}"
    );
}
