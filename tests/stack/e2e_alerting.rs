//! End to end, with every component real: the built exporter on a real VG on a loop device and a
//! directory of nova domain XMLs, a real Prometheus (Debian package) scraping it every second and
//! loading a test-only rule file generated from `alerts/nova-lvm.rules.yml` (every `for:` and the
//! orphan minimum age 2s, every group evaluated every second, nothing else changed), a real
//! Alertmanager routing to a webhook receiver inside this test.
//!
//! The scenario: a host whose untracked consumption (an orphaned disk and a cinder volume, 2 GiB
//! of 100 GiB) is below the thresholds. Somebody creates a 10 GiB LV in nova's VG:
//! NovaLvmUntrackedConsumption must arrive at the receiver with the right numbers. The libvirt
//! collector then fails for a while (derived metrics absent): the alert must stay firing, not
//! resolve. Every panel query of every dashboard must parse and return data. The LV is removed:
//! the alert must arrive resolved. A second host, replayed from a saved report of an active thin
//! pool, gives the fleet's thin-pool panels their data.
//!
//! A second scenario replays the seed incident on a real 500 GiB loop VG (the four instances,
//! the 200 GiB foreign LV): the scheduler still places three m1.large (80 GiB) while none fits,
//! so NovaLvmFlavorWillFailToBuild must arrive for m1.large and for no flavor that still fits;
//! removing the foreign LV resolves it.
//!
//! A third scenario is the fleet layout of docs/fleet.md: four hosts (a real loop VG and three
//! replayed LVM reports) in two Prometheus shards with `region` and `cell` external labels,
//! remote-writing to VictoriaMetrics; vmalert runs the shipped rules against it and pages
//! through Alertmanager with the host's region and cell; every fleet dashboard query runs against
//! VictoriaMetrics and the per-cell and per-region sums match each host's own `/metrics`, whose
//! number of series matches the budget formula; a global Prometheus federates the aggregates of
//! one shard and nothing per host.
//!
//! Needs root, lvm2, prometheus and prometheus-alertmanager (the fleet scenario also
//! victoria-metrics): skips loudly without them on a laptop, fails under CI=true.

use crate::common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::grafana::{dashboards, substitute};
use common::stack::{fast_rules, stack_binaries, Alertmanager, Prometheus, WebhookReceiver};
use common::*;
use serde_json::Value as Json;

const WEB: &str = "3f5e6c1a-1111-4222-8333-444455556666";
const DB: &str = "9b2d7e40-aaaa-4bbb-8ccc-ddddeeeeffff";
const GONE: &str = "0d1e2f3a-4b5c-4d7e-8f90-a1b2c3d4e5f6";
const VOLUME: &str = "volume-5a6b7c8d-0000-4000-8000-000000000005";
const FOREIGN: &str = "backup_scratch";
const ALERT: &str = "NovaLvmUntrackedConsumption";

/// The binaries of the stack, or `None` (after saying why) when this machine cannot run it.
fn stack_available(test: &str) -> Option<(PathBuf, PathBuf)> {
    if !lvm_available(test) {
        return None;
    }
    match stack_binaries() {
        Ok(binaries) => Some(binaries),
        Err(missing) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: {missing} not installed; under CI=true a skip is a failure (scripts/install-test-deps installs them)")
        }
        Err(missing) => {
            eprintln!(
                "\n!!! SKIPPING {test}: {missing} not installed (scripts/install-test-deps) !!!\n"
            );
            None
        }
    }
}

/// Prometheus (with the test-only rules: every `for:` 2s, every group each second) scraping
/// `targets` every second as job `nova-lvm` with the extra target `labels` (YAML lines), sending
/// to a real Alertmanager that notifies a webhook receiver.
struct Monitoring {
    receiver: WebhookReceiver,
    alertmanager: Alertmanager,
    prometheus: Prometheus,
    /// How many alerting rules the generated rule file has.
    alert_rules: usize,
}

impl Monitoring {
    fn start(
        (prometheus_bin, alertmanager_bin): (&PathBuf, &PathBuf),
        targets: &[String],
        labels: &str,
    ) -> Self {
        let receiver = WebhookReceiver::start();
        let alertmanager = Alertmanager::start(alertmanager_bin, &receiver.url());
        let real_rules = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/alerts/nova-lvm.rules.yml"
        ))
        .unwrap();
        let (rules, alert_rules) = fast_rules(&real_rules, "1s", "2s");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("        labels:\n          {labels}\n")
        };
        let config = format!(
            r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - nova-lvm.fast.rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:{am}']
scrape_configs:
  - job_name: nova-lvm
    static_configs:
      - targets: [{targets}]
{labels}"#,
            am = alertmanager.service.port,
            targets = targets.join(", "),
        );
        let prometheus = Prometheus::start(
            prometheus_bin,
            &config,
            &[("nova-lvm.fast.rules.yml", &rules)],
        );
        Self {
            receiver,
            alertmanager,
            prometheus,
            alert_rules,
        }
    }
}

fn label<'a>(alert: &'a Json, name: &str) -> &'a str {
    alert["labels"][name].as_str().unwrap_or("")
}

fn annotation<'a>(alert: &'a Json, name: &str) -> &'a str {
    alert["annotations"][name].as_str().unwrap_or("")
}

/// Series that exist only when Placement is read beside a local source (the cross-source
/// audit): this test's host has no Placement.
const NEEDS_PLACEMENT: &[&str] = &["nova_lvm_audit_"];

#[test]
fn a_foreign_lv_pages_through_alertmanager_every_panel_has_data_and_removal_resolves() {
    let test = "a_foreign_lv_pages_through_alertmanager_every_panel_has_data_and_removal_resolves";
    let Some((prometheus_bin, alertmanager_bin)) = stack_available(test) else {
        return;
    };
    let started = Instant::now();

    // The host: two instances, an orphaned disk of a deleted instance, a cinder volume.
    let vg = LoopVg::new("e2e", 100);
    vg.create_lv(&format!("{WEB}_disk"), "20G");
    vg.create_lv(&format!("{DB}_disk"), "10G");
    vg.create_lv(&format!("{DB}_disk.local"), "5G");
    vg.create_lv(&format!("{DB}_disk.swap"), "512M");
    vg.create_lv(&format!("{GONE}_disk"), "1G");
    // Its instance was deleted long ago: LVM made the LV a week before (the orphan alert leaves
    // out orphans younger than an hour).
    let week_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 7 * 86_400;
    vg.set_lv_creation_time(&format!("{GONE}_disk"), week_ago);
    vg.create_lv(VOLUME, "1G");
    let dir = tempfile::tempdir().unwrap();
    write_domains(
        &dir.path().join("qemu"),
        &vg.name,
        &[
            Domain {
                uuid: WEB,
                name: "web-01",
                root_gb: 20,
                ephemeral_gb: 0,
                swap_mb: 0,
                boot_from_volume: false,
            },
            Domain {
                uuid: DB,
                name: "db-01",
                root_gb: 10,
                ephemeral_gb: 5,
                swap_mb: 512,
                boot_from_volume: false,
            },
        ],
    );
    write_nova_conf(&dir.path().join("nova.conf"), &vg.name, 1024);
    let exporter = Exporter::start(&[
        format!(
            "--nova.config-file={}",
            dir.path().join("nova.conf").display()
        ),
        format!(
            "--collector.libvirt.xml-dir={}",
            dir.path().join("qemu").display()
        ),
        // Fits both views all along (no flavor alert), for the dashboards' flavor panels.
        "--flavor=m1.small=10".to_string(),
    ]);
    let instance = format!("127.0.0.1:{}", exporter.port);
    // A second host, replayed from a saved report of an active thin pool (this kernel cannot
    // activate one): the fleet's thin-pool panels need a pool that reports its usage.
    let thin_host = Exporter::start(&[
        "--nova.config-file=/dev/null".to_string(),
        "--nova.images-volume-group=fixture-vms".to_string(),
        "--collector.lvm.replay-file=tests/fixtures/lvm/thin-active.json".to_string(),
        "--no-collector.libvirt".to_string(),
    ]);

    // The monitoring stack.
    let targets = [instance.clone(), format!("127.0.0.1:{}", thin_host.port)];
    let Monitoring {
        receiver,
        alertmanager,
        prometheus,
        alert_rules,
    } = Monitoring::start(
        (&prometheus_bin, &alertmanager_bin),
        &targets,
        "availability_zone: az-e2e\n          aggregate: lvm-e2e\n          region: region-e2e\n          cell: cell-e2e",
    );
    let logs = || {
        format!(
            "--- notifications:\n{:#?}\n--- prometheus (pid {}):\n{}\n--- alertmanager (pid {}):\n{}\n--- exporter:\n{}",
            receiver.notifications(),
            prometheus.service.pid(),
            prometheus.service.log(),
            alertmanager.service.pid(),
            alertmanager.service.log(),
            exporter.log()
        )
    };

    // Prometheus runs the generated rules: every alert with for 2s, every group every second.
    let loaded = prometheus.api("/api/v1/rules");
    let groups = loaded["data"]["groups"].as_array().unwrap();
    let loaded_alerts: Vec<&Json> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter(|r| r["type"] == "alerting")
        .collect();
    assert_eq!(loaded_alerts.len(), alert_rules, "{loaded:#}");
    assert!(
        loaded_alerts.iter().all(|r| r["duration"] == 2.0),
        "{loaded:#}"
    );
    assert!(groups.iter().all(|g| g["interval"] == 1.0), "{loaded:#}");

    // Baseline: 2 GiB of untracked consumption (orphan + cinder) in a 100 GiB VG, below both
    // thresholds. The orphaned disk's own alert arriving proves the pipeline runs and that the
    // untracked alert had every chance to fire by then.
    let untracked = format!(
        "instance_vg:nova_lvm_untracked_consumption_bytes:sum{{job=\"nova-lvm\",instance=\"{instance}\",vg=\"{}\"}}",
        vg.name
    );
    wait_until(
        Duration::from_secs(30),
        "the baseline's 2 GiB untracked",
        logs,
        || (prometheus.scalar(&untracked) == Some((2 * GIB) as f64)).then_some(()),
    );
    receiver
        .wait_for(Duration::from_secs(30), |a| {
            label(a, "alertname") == "NovaLvmOrphanedInstanceDisks" && a["status"] == "firing"
        })
        .unwrap_or_else(|| panic!("the orphaned disk's alert never arrived\n{}", logs()));
    assert!(
        receiver
            .wait_for(Duration::ZERO, |a| label(a, "alertname") == ALERT)
            .is_none(),
        "{ALERT} fired below its thresholds\n{}",
        logs()
    );
    assert_eq!(
        prometheus.query(&format!("ALERTS{{alertname=\"{ALERT}\"}}")),
        Ok(vec![]),
        "{ALERT} is not even pending below its thresholds"
    );
    let baseline = started.elapsed();

    // Somebody creates a 10 GiB LV in nova's VG: 12 GiB untracked, 12 % of the VG.
    vg.create_lv(FOREIGN, "10G");
    let created = Instant::now();
    let firing = receiver
        .wait_for(Duration::from_secs(60), |a| {
            label(a, "alertname") == ALERT && a["status"] == "firing"
        })
        .unwrap_or_else(|| panic!("{ALERT} never arrived at the receiver\n{}", logs()));
    let to_firing = created.elapsed();
    assert_eq!(label(&firing, "severity"), "warning");
    assert_eq!(label(&firing, "instance"), instance);
    assert_eq!(label(&firing, "vg"), vg.name);
    assert_eq!(label(&firing, "job"), "nova-lvm");
    assert_eq!(label(&firing, "availability_zone"), "az-e2e");
    assert_eq!(
        annotation(&firing, "summary"),
        format!(
            "12GiB of VG {} on {instance} is allocated to LVs nova does not count",
            vg.name
        )
    );
    // The 100 GiB loop device gives 25599 extents of 4 MiB: 12 GiB is 12.0005 % of it.
    let description = annotation(&firing, "description");
    assert!(
        description.starts_with(&format!(
            "12GiB (12% of the VG) of volume group {} on {instance} is allocated",
            vg.name
        )),
        "{description}"
    );
    assert!(
        description.ends_with("By cause: cinder 1GiB, foreign 10GiB, orphan 1GiB."),
        "{description}"
    );
    assert!(annotation(&firing, "runbook_url")
        .ends_with("/docs/runbook.md#novalvmuntrackedconsumption"));

    // The libvirt collector fails (a half-written domain XML): drift and untracked consumption
    // are absent, and the alert must neither resolve nor leave the firing state.
    let broken = dir.path().join("qemu/instance-000000ff.xml");
    std::fs::write(
        &broken,
        "<domain type='kvm'><name>instance-000000ff</name><uuid>",
    )
    .unwrap();
    let libvirt_ok = format!(
        "nova_lvm_collector_success{{job=\"nova-lvm\",instance=\"{instance}\",collector=\"libvirt\"}}"
    );
    let drift = format!("nova_lvm_drift_bytes{{instance=\"{instance}\"}}");
    wait_until(
        Duration::from_secs(30),
        "the libvirt collector to fail",
        logs,
        || {
            (prometheus.scalar(&libvirt_ok) == Some(0.0)
                && prometheus.query(&drift).is_ok_and(|r| r.is_empty()))
            .then_some(())
        },
    );
    // Longer than for: plus a few evaluations and Alertmanager's group interval.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        receiver
            .wait_for(Duration::ZERO, |a| {
                label(a, "alertname") == ALERT && a["status"] == "resolved"
            })
            .is_none(),
        "{ALERT} resolved because a collector failed\n{}",
        logs()
    );
    assert_eq!(
        prometheus
            .query(&format!(
                "ALERTS{{alertname=\"{ALERT}\",alertstate=\"firing\"}}"
            ))
            .map(|r| r.len()),
        Ok(1),
        "{ALERT} left the firing state during the collector outage"
    );
    std::fs::remove_file(&broken).unwrap();
    wait_until(
        Duration::from_secs(30),
        "the libvirt collector to recover",
        logs,
        || {
            (prometheus.scalar(&libvirt_ok) == Some(1.0)
                && prometheus.query(&drift).is_ok_and(|r| !r.is_empty()))
            .then_some(())
        },
    );

    // Every dashboard panel's PromQL against this Prometheus: each must parse and return data.
    let values = [
        ("job", "nova-lvm"),
        ("instance", instance.as_str()),
        ("vg", vg.name.as_str()),
        ("region", ".*"),
        ("cell", ".*"),
        ("availability_zone", ".*"),
        ("__rate_interval", "1m"),
        ("__interval", "1s"),
        ("__range", "1h"),
    ];
    // The audit needs Placement beside the local source; this host has none, so its panels
    // must parse but cannot have data here (tests/openstack/placement.rs checks those series against a
    // real Placement).
    let check = prometheus.check_panel_queries(&values, NEEDS_PLACEMENT);
    let ran = check.ran;
    let failed = check.errors;
    let mut empty = check.empty;
    for d in dashboards() {
        // Template variables: label_values(selector, label) must find values.
        for (name, var) in d.variables() {
            let Some(definition) = var["definition"].as_str() else {
                continue;
            };
            let Some(inner) = definition
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
            else {
                continue;
            };
            let (selector, label_name) = inner.rsplit_once(',').unwrap();
            let selector = substitute(selector.trim(), &values);
            let found = prometheus.query(&selector).map(|r| {
                r.iter()
                    .any(|s| s["metric"][label_name.trim()].as_str().is_some())
            });
            if found != Ok(true) {
                empty.push(format!(
                    "{}: variable ${name}: {definition} ({found:?})",
                    d.file
                ));
            }
        }
    }
    assert!(ran >= 40, "only {ran} panel queries found");
    assert!(
        failed.is_empty() && empty.is_empty(),
        "dashboard queries that failed:\n{}\ndashboard queries that returned nothing:\n{}",
        failed.join("\n"),
        empty.join("\n")
    );

    // The LV is removed: the alert resolves at the receiver.
    vg.remove_lv(FOREIGN);
    let removed = Instant::now();
    let resolved = receiver
        .wait_for(Duration::from_secs(60), |a| {
            label(a, "alertname") == ALERT && a["status"] == "resolved"
        })
        .unwrap_or_else(|| panic!("{ALERT} never arrived resolved\n{}", logs()));
    assert_eq!(label(&resolved, "instance"), instance);
    assert_eq!(label(&resolved, "vg"), vg.name);
    eprintln!(
        "e2e: baseline {:.1?}, LV created -> firing at the receiver {:.1?}, collector outage survived, {ran} dashboard queries, LV removed -> resolved {:.1?}, total {:.1?}",
        baseline,
        to_firing,
        removed.elapsed(),
        started.elapsed()
    );
}

/// The flavor series of `flavor` in `view` from a scrape.
fn fit_series(flavor: &str, vg: &str, view: &str) -> String {
    format!("nova_lvm_flavor_fit_instances{{flavor=\"{flavor}\",vg=\"{vg}\",view=\"{view}\"}}")
}

#[test]
fn the_seed_incident_on_a_real_vg_pages_that_the_next_m1_large_fails_and_removal_resolves() {
    let test =
        "the_seed_incident_on_a_real_vg_pages_that_the_next_m1_large_fails_and_removal_resolves";
    let Some((prometheus_bin, alertmanager_bin)) = stack_available(test) else {
        return;
    };
    const FLAVOR_ALERT: &str = "NovaLvmFlavorWillFailToBuild";
    let started = Instant::now();

    // examples/seed-incident, on a real VG: a 500 GiB device gives the seed's 536,866,717,696
    // bytes; the instances' LVs and the 200 GiB LV somebody made for another purpose.
    let vg = LoopVg::new("seed", 500);
    // Each domain names its flavor: m1.large and db are also given with --flavor (which wins),
    // m1.small only by its domain (the fit's flavors without configuration); it still fits.
    let seed = [
        (
            "6c1f0d3e-5b8a-4e52-9d3c-2f7a1b9e4c01",
            "web-01",
            80,
            0,
            0,
            "m1.large",
        ),
        (
            "8a2e4b7c-1d9f-4a63-b5e8-7c3d2e1f0a92",
            "web-02",
            80,
            0,
            0,
            "m1.large",
        ),
        (
            "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63",
            "db-01",
            40,
            8,
            1024,
            "db",
        ),
        (
            "f19c3a5d-7e2b-4d84-a6f1-9b8e0c2d4a74",
            "build-01",
            20,
            0,
            0,
            "m1.small",
        ),
    ];
    for (uuid, _, root_gb, ephemeral_gb, swap_mb, _) in seed {
        vg.create_lv(&format!("{uuid}_disk"), &format!("{root_gb}G"));
        if ephemeral_gb > 0 {
            vg.create_lv(&format!("{uuid}_disk.local"), &format!("{ephemeral_gb}G"));
        }
        if swap_mb > 0 {
            vg.create_lv(&format!("{uuid}_disk.swap"), &format!("{swap_mb}M"));
        }
    }
    vg.create_lv("scratch_data", "200G");
    let dir = tempfile::tempdir().unwrap();
    let domains: Vec<(Domain, &str)> = seed
        .iter()
        .map(|&(uuid, name, root_gb, ephemeral_gb, swap_mb, flavor)| {
            (
                Domain {
                    uuid,
                    name,
                    root_gb,
                    ephemeral_gb,
                    swap_mb,
                    boot_from_volume: false,
                },
                flavor,
            )
        })
        .collect();
    write_domains_of_flavors(&dir.path().join("qemu"), &vg.name, &domains);
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
        "--flavor=m1.large=80".to_string(),
        "--flavor=m1.medium=40".to_string(),
        "--flavor=db=40,1024,8".to_string(),
        "--flavor=diskless=0".to_string(),
    ];
    let exporter = Exporter::start(&args);
    let instance = format!("127.0.0.1:{}", exporter.port);

    // The exporter's figures first: the seed's, to the byte, and the fit worked by hand in
    // src/accounting/fit.rs (corrected free 71.0 GiB, the scheduler's 270 GiB of 499).
    let m = exporter.scrape();
    let named = |family: &str| format!("{family}{{vg=\"{}\"}}", vg.name);
    assert_eq!(m.value(&named("nova_lvm_vg_size_bytes")), 536_866_717_696.0);
    assert_eq!(
        m.value(&named("nova_lvm_corrected_free_bytes")),
        76_231_475_200.0
    );
    let fits = |m: &common::Exposition, flavor: &str| {
        (
            m.value(&fit_series(flavor, &vg.name, "corrected")),
            m.value(&fit_series(flavor, &vg.name, "scheduler")),
        )
    };
    assert_eq!(
        fits(&m, "m1.large"),
        (0.0, 3.0),
        "the scheduler says 3 fit, none does"
    );
    assert_eq!(fits(&m, "m1.medium"), (1.0, 6.0));
    assert_eq!(fits(&m, "db"), (1.0, 5.0));
    assert_eq!(fits(&m, "diskless"), (f64::INFINITY, f64::INFINITY));
    // From build-01's domain alone: 71.0 / 20 -> 3; 270 / 20 -> 13.
    assert_eq!(fits(&m, "m1.small"), (3.0, 13.0));
    // report --format json lists the same fit.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .arg("report")
        .arg("--format=json")
        .args(&args)
        .output()
        .unwrap();
    let report: Json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("report: {e}\n{}", String::from_utf8_lossy(&output.stderr)));
    let violations = common::schema::report_schema_violations(&report);
    assert!(
        violations.is_empty(),
        "docs/report-schema.json: {violations:#?}"
    );
    let flavors = report["flavor_fit"]["flavors"].as_array().unwrap();
    let large = flavors.iter().find(|f| f["name"] == "m1.large").unwrap();
    assert_eq!(large["corrected"], 0);
    assert_eq!(large["scheduler"], 3);
    assert_eq!(large["next_build_fails"], true);
    assert_eq!(large["instance_lv_bytes"], 80 * GIB);
    let diskless = flavors.iter().find(|f| f["name"] == "diskless").unwrap();
    assert_eq!(diskless["corrected"], Json::Null);
    // --flavor wins over the domains' m1.large; m1.small came from build-01's domain.
    assert_eq!(large["origin"], "configured");
    let small = flavors.iter().find(|f| f["name"] == "m1.small").unwrap();
    assert_eq!(small["origin"], "libvirt");

    // The monitoring stack, with the test-only rules (every for: 2s).
    let Monitoring {
        receiver,
        alertmanager,
        prometheus,
        ..
    } = Monitoring::start(
        (&prometheus_bin, &alertmanager_bin),
        std::slice::from_ref(&instance),
        "",
    );
    let logs = || {
        format!(
            "--- notifications:\n{:#?}\n--- prometheus:\n{}\n--- alertmanager:\n{}\n--- exporter:\n{}",
            receiver.notifications(),
            prometheus.service.log(),
            alertmanager.service.log(),
            exporter.log()
        )
    };
    let flavor_alert = |status: &'static str| {
        move |a: &Json| {
            label(a, "alertname") == FLAVOR_ALERT
                && label(a, "flavor") == "m1.large"
                && a["status"] == status
        }
    };
    let firing = receiver
        .wait_for(Duration::from_secs(60), flavor_alert("firing"))
        .unwrap_or_else(|| panic!("{FLAVOR_ALERT} never arrived for m1.large\n{}", logs()));
    let to_firing = started.elapsed();
    assert_eq!(label(&firing, "instance"), instance);
    assert_eq!(label(&firing, "vg"), vg.name);
    assert_eq!(label(&firing, "severity"), "warning");
    assert_eq!(
        label(&firing, "view"),
        "",
        "the view label is aggregated away"
    );
    assert_eq!(
        annotation(&firing, "summary"),
        format!("The next build of flavor m1.large on {instance} fails")
    );
    let description = annotation(&firing, "description");
    assert!(
        description.starts_with(&format!(
            "The scheduler would still place 3 more instance(s) of flavor m1.large on {instance}, but not one fits in volume group {}: corrected free space is 71GiB.",
            vg.name
        )),
        "{description}"
    );
    assert!(annotation(&firing, "runbook_url").ends_with("#novalvmflavorwillfailtobuild"));
    // Flavors that still fit (or need no disk) never alert, not even pending.
    let others = prometheus
        .query(&format!("ALERTS{{alertname=\"{FLAVOR_ALERT}\"}}"))
        .unwrap();
    assert!(
        others.iter().all(|s| s["metric"]["flavor"] == "m1.large"),
        "{others:#?}"
    );

    // The foreign LV is removed: 3 m1.large fit by both views, the alert resolves.
    vg.remove_lv("scratch_data");
    let removed = Instant::now();
    receiver
        .wait_for(Duration::from_secs(60), flavor_alert("resolved"))
        .unwrap_or_else(|| panic!("{FLAVOR_ALERT} never arrived resolved\n{}", logs()));
    assert_eq!(fits(&exporter.scrape(), "m1.large"), (3.0, 3.0));
    eprintln!(
        "e2e seed: {FLAVOR_ALERT} firing at the receiver {:.1?} after start, resolved {:.1?} after the LV's removal, total {:.1?}",
        to_firing,
        removed.elapsed(),
        started.elapsed()
    );
}

/// The binaries of the fleet layout (prometheus, Alertmanager, victoria-metrics, vmalert), or
/// `None` (after saying why) when this machine cannot run it.
#[allow(clippy::type_complexity)]
fn fleet_available(test: &str) -> Option<((PathBuf, PathBuf), (PathBuf, PathBuf))> {
    let stack = stack_available(test)?;
    match common::stack::fleet_binaries() {
        Ok(fleet) => Some((stack, fleet)),
        Err(missing) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: {missing} not installed; under CI=true a skip is a failure (scripts/install-test-deps installs victoria-metrics)")
        }
        Err(missing) => {
            eprintln!(
                "\n!!! SKIPPING {test}: {missing} not installed (scripts/install-test-deps) !!!\n"
            );
            None
        }
    }
}

/// What a host's number of series depends on (docs/fleet.md, "A budget per host").
struct Shape {
    /// Collectors: lvm and each tracked source.
    collectors: u64,
    /// Owner classes with `nova_lvm_lvs` and `nova_lvm_lv_bytes` series in the VG.
    owner_classes: u64,
    /// 1 when the VG was read from LVM (`nova_lvm_raw_source_info`), 0 with a replay file.
    raw_source_info: u64,
    /// 1 when it was read by the metadata method (its verify counter).
    metadata_method: u64,
    /// Tracked sources.
    sources: u64,
    /// Local sources (libvirt, file) among them: each has `nova_lvm_local_source_suspect`.
    local_sources: u64,
    /// 1 when placement is the primary source: nova.conf's reserve beside placement's
    /// (`nova_lvm_nova_conf_reserved_bytes`).
    placement_primary: u64,
    /// Flavors with a fit.
    flavors: u64,
    /// LVs with a series of their own, and whether LVM gave their creation time.
    listed_lvs: u64,
    lv_times: bool,
    /// Thin pools that report their usage (active ones).
    active_thin_pools: u64,
}

/// The series of one host with one VG, no nova source and no audit: the budget formula of
/// docs/fleet.md.
fn series_budget(s: &Shape) -> u64 {
    let fixed = 8;
    let collectors = 3 * s.collectors;
    let vg = 3 + 2 * s.owner_classes + s.raw_source_info + s.metadata_method;
    let sources = 6 * s.sources + s.local_sources;
    // drift, unbacked, corrected free, overestimate, recommended reserve and ratio, 6 causes,
    // 4 + 4 orphan reasons; nova.conf's reserve with placement primary.
    let derived = 23 + s.placement_primary;
    let flavors = if s.flavors > 0 { 2 * s.flavors + 1 } else { 0 };
    let lvs = s.listed_lvs * if s.lv_times { 2 } else { 1 };
    fixed + collectors + vg + sources + derived + flavors + lvs + 2 * s.active_thin_pools
}

/// One scraped host of the fleet: its exporter, where it sits and its shape.
struct FleetHost {
    exporter: Exporter,
    region: &'static str,
    cell: &'static str,
    availability_zone: &'static str,
    shape: Shape,
}

impl FleetHost {
    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.exporter.port)
    }
}

/// A Prometheus shard's configuration: its hosts scraped every second as job `nova-lvm` (with
/// their availability zone and aggregate as target labels), `region` and `cell` as external
/// labels, everything remote-written to `write_url`. A shard that runs `rules` keeps its
/// recorded series to itself (federation) and writes raw series only, so the global ruler's
/// recorded series are the only ones of their name in the global store.
fn shard_config(hosts: &[&FleetHost], write_url: &str, rules: bool) -> String {
    let (region, cell) = (hosts[0].region, hosts[0].cell);
    let targets: String = hosts
        .iter()
        .map(|h| {
            format!(
                "      - targets: ['{}']\n        labels:\n          availability_zone: {}\n          aggregate: lvm-{region}\n",
                h.target(),
                h.availability_zone
            )
        })
        .collect();
    let (rule_files, write_relabel) = if rules {
        (
            "rule_files:\n  - nova-lvm.fast.rules.yml\n",
            "    write_relabel_configs:\n      - source_labels: [__name__]\n        regex: '.+:.+'\n        action: drop\n",
        )
    } else {
        ("", "")
    };
    format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
  external_labels:
    region: {region}
    cell: {cell}
{rule_files}scrape_configs:
  - job_name: nova-lvm
    static_configs:
{targets}remote_write:
  - url: {write_url}
    queue_config:
      batch_send_deadline: 1s
{write_relabel}"#
    )
}

/// Sum of the samples of `family` in an exposition whose series name contains every one of
/// `having` and none of `not_having`.
/// The `cause` labels of `nova_lvm_untracked_bytes` the untracked-consumption rules leave out.
const ROUNDING_CAUSES: &[&str] = &["cause=\"swap_remainder\"", "cause=\"extent_rounding\""];

fn exposition_sum(
    m: &common::Exposition,
    family: &str,
    having: &[&str],
    not_having: &[&str],
) -> f64 {
    m.samples
        .iter()
        .filter(|(series, _)| series.starts_with(&format!("{family}{{")))
        .filter(|(series, _)| having.iter().all(|h| series.contains(h)))
        .filter(|(series, _)| !not_having.iter().any(|n| series.contains(n)))
        .map(|(_, value)| value)
        .sum()
}

/// A query result as `(label values joined by '/', value)`, sorted.
fn by_labels(result: &[Json], labels: &[&str]) -> Vec<(String, f64)> {
    let mut rows: Vec<(String, f64)> = result
        .iter()
        .map(|s| {
            (
                labels
                    .iter()
                    .map(|l| s["metric"][*l].as_str().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("/"),
                s["value"][1]
                    .as_str()
                    .unwrap_or("NaN")
                    .parse()
                    .unwrap_or(f64::NAN),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[test]
fn a_sharded_fleet_pages_with_region_and_cell_through_victoriametrics_and_federates_aggregates() {
    let test = "a_sharded_fleet_pages_with_region_and_cell_through_victoriametrics_and_federates_aggregates";
    let Some(((prometheus_bin, alertmanager_bin), (vm_bin, vmalert_bin))) = fleet_available(test)
    else {
        return;
    };
    let started = Instant::now();

    // Host a1: a real VG with one instance; somebody will create a 30 GiB LV in it.
    let vg = LoopVg::new("fleet", 100);
    vg.create_lv(&format!("{WEB}_disk"), "20G");
    let dir = tempfile::tempdir().unwrap();
    write_domains(
        &dir.path().join("qemu-a1"),
        &vg.name,
        &[Domain {
            uuid: WEB,
            name: "web-01",
            root_gb: 20,
            ephemeral_gb: 0,
            swap_mb: 0,
            boot_from_volume: false,
        }],
    );
    write_nova_conf(&dir.path().join("nova-a1.conf"), &vg.name, 1024);
    let path = |name: &str| dir.path().join(name).display().to_string();
    let a1 = Exporter::start(&[
        format!("--nova.config-file={}", path("nova-a1.conf")),
        format!("--collector.libvirt.xml-dir={}", path("qemu-a1")),
        // Fits once before the 30 GiB LV, not after: the largest flavor stops fitting.
        "--flavor=m1.large=60".to_string(),
    ]);
    // Hosts a2, b1, b2: saved LVM reports of other hosts, replayed; a2 and b1 know the
    // fixture's instance, b2 does not (its disks are orphans there); b1's pool is active.
    write_nova_conf(&dir.path().join("nova-fixture.conf"), "fixture-vms", 0);
    write_domains(
        &dir.path().join("qemu-fixture"),
        "fixture-vms",
        &[Domain {
            uuid: "6c1f0d3e-5b8a-4e52-9d3c-2f7a1b9e4c01",
            name: "fixture-01",
            root_gb: 2,
            ephemeral_gb: 1,
            swap_mb: 512,
            boot_from_volume: false,
        }],
    );
    std::fs::create_dir_all(dir.path().join("qemu-empty")).unwrap();
    let replayed = |report: &str, domains: &str| {
        Exporter::start(&[
            format!("--nova.config-file={}", path("nova-fixture.conf")),
            format!("--collector.lvm.replay-file=tests/fixtures/lvm/{report}"),
            format!("--collector.libvirt.xml-dir={}", path(domains)),
        ])
    };
    let hosts = [
        FleetHost {
            exporter: a1,
            region: "region-a",
            cell: "cell-1",
            availability_zone: "az-a1",
            shape: Shape {
                collectors: 2,
                owner_classes: 4,
                raw_source_info: 1,
                metadata_method: 1,
                sources: 1,
                local_sources: 1,
                placement_primary: 0,
                // m1.large (--flavor) and web-01's m1.custom (its domain).
                flavors: 2,
                listed_lvs: 1,
                lv_times: true,
                active_thin_pools: 0,
            },
        },
        FleetHost {
            exporter: replayed("vgs-lvs.json", "qemu-fixture"),
            region: "region-a",
            cell: "cell-1",
            availability_zone: "az-a2",
            shape: Shape {
                collectors: 2,
                owner_classes: 4,
                raw_source_info: 0,
                metadata_method: 0,
                sources: 1,
                local_sources: 1,
                placement_primary: 0,
                // The fixture instance's m1.custom (its domain).
                flavors: 1,
                listed_lvs: 3,
                lv_times: false,
                active_thin_pools: 0,
            },
        },
        FleetHost {
            exporter: replayed("thin-active.json", "qemu-fixture"),
            region: "region-b",
            cell: "cell-1",
            availability_zone: "az-b1",
            shape: Shape {
                collectors: 2,
                owner_classes: 4,
                raw_source_info: 0,
                metadata_method: 0,
                sources: 1,
                local_sources: 1,
                placement_primary: 0,
                flavors: 1,
                listed_lvs: 3,
                lv_times: false,
                active_thin_pools: 1,
            },
        },
        FleetHost {
            exporter: replayed("vgs-lvs.json", "qemu-empty"),
            region: "region-b",
            cell: "cell-1",
            availability_zone: "az-b1",
            shape: Shape {
                collectors: 2,
                owner_classes: 4,
                raw_source_info: 0,
                metadata_method: 0,
                sources: 1,
                local_sources: 1,
                placement_primary: 0,
                flavors: 0,
                listed_lvs: 6,
                lv_times: false,
                active_thin_pools: 0,
            },
        },
    ];
    let host_a1 = hosts[0].target();
    // Listed LVs: a1 gets its foreign LV below (the instance's is not listed); the fixture
    // lists grow_me, scratch_data and the pool, and on b2 the instance's three LVs as orphans.

    // The global store, its ruler and the alerting path.
    let receiver = WebhookReceiver::start();
    let alertmanager = Alertmanager::start(&alertmanager_bin, &receiver.url());
    let vm = common::stack::VictoriaMetrics::start(&vm_bin);
    let real_rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/alerts/nova-lvm.rules.yml"
    ))
    .unwrap();
    let (rules, _) = fast_rules(&real_rules, "1s", "2s");
    let vmalert =
        common::stack::Vmalert::start(&vmalert_bin, &rules, &vm, alertmanager.service.port);
    // Two shards, one per region and cell; shard b also runs the rules for federation.
    let shard_a = Prometheus::start(
        &prometheus_bin,
        &shard_config(&[&hosts[0], &hosts[1]], &vm.write_url(), false),
        &[],
    );
    let shard_b = Prometheus::start(
        &prometheus_bin,
        &shard_config(&[&hosts[2], &hosts[3]], &vm.write_url(), true),
        &[("nova-lvm.fast.rules.yml", &rules)],
    );
    // A global Prometheus federating the shard's aggregates, and nothing else.
    let global = Prometheus::start(
        &prometheus_bin,
        &format!(
            r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['{{__name__=~"job(_[a-z_]+)?:nova_lvm_.+"}}']
    static_configs:
      - targets: ['127.0.0.1:{}']
"#,
            shard_b.service.port
        ),
        &[],
    );
    let logs = || {
        format!(
            "--- notifications:\n{:#?}\n--- vmalert:\n{}\n--- victoria-metrics:\n{}\n--- shard a:\n{}\n--- shard b:\n{}\n--- alertmanager:\n{}",
            receiver.notifications(),
            vmalert.service.log(),
            vm.service.log(),
            shard_a.service.log(),
            shard_b.service.log(),
            alertmanager.service.log(),
        )
    };

    // Every host arrives in the global store with its region and cell.
    wait_until(
        Duration::from_secs(60),
        "four hosts in VictoriaMetrics",
        logs,
        || {
            let rows = by_labels(
                &vm.query("count by (region, cell) (nova_lvm_build_info{job=\"nova-lvm\"})")
                    .ok()?,
                &["region", "cell"],
            );
            (rows
                == vec![
                    ("region-a/cell-1".to_string(), 2.0),
                    ("region-b/cell-1".to_string(), 2.0),
                ])
            .then_some(())
        },
    );
    // A few seconds of the baseline, so that the trend of corrected free space has a start.
    std::thread::sleep(Duration::from_secs(3));
    let baseline = started.elapsed();

    // Somebody creates a 30 GiB LV in host a1's VG: the alert reaches Alertmanager through
    // vmalert with the host's region and cell.
    vg.create_lv(FOREIGN, "30G");
    let created = Instant::now();
    let firing = receiver
        .wait_for(Duration::from_secs(60), |a| {
            label(a, "alertname") == ALERT && a["status"] == "firing"
        })
        .unwrap_or_else(|| panic!("{ALERT} never arrived at the receiver\n{}", logs()));
    let to_firing = created.elapsed();
    assert_eq!(label(&firing, "instance"), host_a1);
    assert_eq!(label(&firing, "region"), "region-a");
    assert_eq!(label(&firing, "cell"), "cell-1");
    assert_eq!(label(&firing, "availability_zone"), "az-a1");
    assert_eq!(label(&firing, "job"), "nova-lvm");
    assert_eq!(label(&firing, "vg"), vg.name);
    assert_eq!(
        annotation(&firing, "summary"),
        format!(
            "30GiB of VG {} on {host_a1} is allocated to LVs nova does not count",
            vg.name
        )
    );

    // The expected aggregates, from each host's own /metrics: untracked consumption and
    // corrected free space of nova's VG, hosts whose largest flavor fits no more.
    let mut untracked_by_cell: std::collections::BTreeMap<String, f64> = Default::default();
    let mut free_by_region: std::collections::BTreeMap<String, f64> = Default::default();
    let mut unfit_by_cell: std::collections::BTreeMap<String, f64> = Default::default();
    let mut untracked_by_zone: std::collections::BTreeMap<String, f64> = Default::default();
    for host in &hosts {
        let m = host.exporter.scrape();
        // The budget: every series of the host's real /metrics, against the formula.
        let mut families: std::collections::BTreeMap<&str, usize> = Default::default();
        for series in m.samples.keys() {
            *families
                .entry(series.split('{').next().unwrap_or(series))
                .or_default() += 1;
        }
        assert_eq!(
            m.samples.len() as u64,
            series_budget(&host.shape),
            "{}: series per family {families:#?}",
            host.target()
        );
        let cell = format!("{}/{}", host.region, host.cell);
        *untracked_by_cell.entry(cell.clone()).or_default() +=
            exposition_sum(&m, "nova_lvm_untracked_bytes", &[], ROUNDING_CAUSES);
        *untracked_by_zone
            .entry(format!("{}/{}", host.region, host.availability_zone))
            .or_default() += exposition_sum(&m, "nova_lvm_untracked_bytes", &[], ROUNDING_CAUSES);
        *free_by_region.entry(host.region.to_string()).or_default() +=
            exposition_sum(&m, "nova_lvm_corrected_free_bytes", &[], &[]);
        let fits: Vec<f64> = m
            .samples
            .iter()
            .filter(|(s, _)| {
                s.starts_with("nova_lvm_flavor_fit_instances{") && s.contains("view=\"corrected\"")
            })
            .map(|(_, v)| *v)
            .collect();
        if !fits.is_empty() {
            let unfit = fits.iter().copied().fold(f64::INFINITY, f64::min) == 0.0;
            *unfit_by_cell.entry(cell).or_default() += f64::from(u8::from(unfit));
        }
    }
    assert!(untracked_by_cell["region-a/cell-1"] >= (30 * GIB) as f64);
    assert_eq!(unfit_by_cell.get("region-a/cell-1"), Some(&1.0));
    let expect = |map: &std::collections::BTreeMap<String, f64>| -> Vec<(String, f64)> {
        map.iter().map(|(k, v)| (k.clone(), *v)).collect()
    };
    let checks = [
        (
            "job_region_cell:nova_lvm_untracked_consumption_bytes:sum{job=\"nova-lvm\"}",
            vec!["region", "cell"],
            expect(&untracked_by_cell),
        ),
        (
            "job_region_availability_zone:nova_lvm_untracked_consumption_bytes:sum{job=\"nova-lvm\"}",
            vec!["region", "availability_zone"],
            expect(&untracked_by_zone),
        ),
        (
            "sum by (region) (job_region_cell:nova_lvm_corrected_free_bytes:sum{job=\"nova-lvm\"})",
            vec!["region"],
            expect(&free_by_region),
        ),
        (
            "job_region_cell:nova_lvm_hosts_largest_flavor_unfit:sum{job=\"nova-lvm\"}",
            vec!["region", "cell"],
            expect(&unfit_by_cell),
        ),
    ];
    for (promql, labels, expected) in &checks {
        wait_until(
            Duration::from_secs(30),
            &format!("{promql} = {expected:?}"),
            || {
                format!(
                    "got {:?}\n{}",
                    vm.query(promql).map(|r| by_labels(&r, labels)),
                    logs()
                )
            },
            || (by_labels(&vm.query(promql).ok()?, labels) == *expected).then_some(()),
        );
    }
    // Free space shrank in region a: its days until full are forecast, and no other's.
    let days = wait_until(
        Duration::from_secs(30),
        "days until full in region-a/cell-1",
        logs,
        || {
            vm.scalar("job_region_cell:nova_lvm_days_until_full:predict_linear{region=\"region-a\",cell=\"cell-1\"}")
        },
    );
    assert!(days >= 0.0, "{days}");
    assert_eq!(
        vm.query("job_region_cell:nova_lvm_days_until_full:predict_linear{region=\"region-b\"}"),
        Ok(vec![])
    );

    // Every query and variable of the fleet dashboard against VictoriaMetrics' Prometheus API.
    let values = [
        ("job", "nova-lvm"),
        ("region", ".*"),
        ("cell", ".*"),
        ("availability_zone", ".*"),
        ("__rate_interval", "1m"),
        ("__interval", "1s"),
        ("__range", "1h"),
    ];
    let fleet = dashboards()
        .into_iter()
        .find(|d| d.json["uid"] == "nova-lvm-fleet")
        .unwrap();
    let mut failed = Vec::new();
    let mut ran = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    for q in fleet.queries() {
        let promql = substitute(&q.expr, &values);
        ran += 1;
        loop {
            match vm.query(&promql) {
                Ok(result) if !result.is_empty() => break,
                Ok(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(500))
                }
                outcome => {
                    failed.push(format!("{} [{}]: {promql}: {outcome:?}", q.panel, q.ref_id));
                    break;
                }
            }
        }
    }
    for (name, var) in fleet.variables() {
        let Some(inner) = var["definition"]
            .as_str()
            .and_then(|d| d.strip_prefix("label_values("))
            .and_then(|r| r.strip_suffix(')'))
        else {
            continue;
        };
        let (selector, label_name) = inner.rsplit_once(',').unwrap();
        let found = vm.query(&substitute(selector.trim(), &values)).map(|r| {
            r.iter()
                .any(|s| s["metric"][label_name.trim()].as_str().is_some())
        });
        if found != Ok(true) {
            failed.push(format!("variable ${name}: {inner} ({found:?})"));
        }
    }
    assert!(ran >= 25, "only {ran} fleet panel queries found");
    assert!(
        failed.is_empty(),
        "fleet dashboard queries that failed or returned nothing on VictoriaMetrics:\n{}",
        failed.join("\n")
    );
    // The shard's recorded series stayed on the shard: one writer per recorded name.
    assert_eq!(
        vm.scalar("count(job:nova_lvm_hosts:count)"),
        Some(1.0),
        "{:?}",
        vm.query("job:nova_lvm_hosts:count")
    );

    // Federation: the global Prometheus holds the shard's aggregates, with the shard's external
    // labels and the shard's figures, and no per-host series at all.
    let federated = wait_until(
        Duration::from_secs(30),
        "the shard's aggregates federated",
        || global.service.log(),
        || {
            global
                .scalar("job:nova_lvm_hosts:count{job=\"nova-lvm\",region=\"region-b\",cell=\"cell-1\"}")
                .filter(|v| *v == 2.0)
        },
    );
    assert_eq!(federated, 2.0);
    for aggregate in [
        "job:nova_lvm_untracked_consumption_bytes:sum",
        "job:nova_lvm_corrected_free_bytes:sum",
        "job_region_cell:nova_lvm_untracked_consumption_bytes:sum",
    ] {
        let on_shard = shard_b.scalar(aggregate);
        assert!(on_shard.is_some(), "{aggregate} on the shard");
        wait_until(
            Duration::from_secs(10),
            &format!("{aggregate} federated as on the shard ({on_shard:?})"),
            || global.service.log(),
            || {
                (global.scalar(&format!(
                    "{aggregate}{{region=\"region-b\",cell=\"cell-1\"}}"
                )) == on_shard)
                    .then_some(())
            },
        );
    }
    assert_eq!(
        global.query("{__name__=~\"nova_lvm_.+|instance_vg:.+\"}"),
        Ok(vec![]),
        "per-host series reached the global Prometheus"
    );
    eprintln!(
        "fleet: 4 hosts in 2 shards up {:.1?}, LV created -> alert via vmalert {:.1?}, {ran} fleet dashboard queries on VictoriaMetrics, total {:.1?}",
        baseline,
        to_firing,
        started.elapsed()
    );
}
