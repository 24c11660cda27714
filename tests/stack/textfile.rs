//! `nova-lvm-exporter textfile FILE` with a real node_exporter (Debian's
//! `prometheus-node-exporter`, only its textfile collector enabled) and a real Prometheus that
//! scrapes node_exporter as job `nova-lvm` with the test-only rules (every `for:` 2s, every
//! group evaluated each second): a real VG on a loop device with an instance, a foreign LV and
//! an orphaned disk. node_exporter must serve every sample of the file unchanged,
//! `promtool check metrics` must be clean, the alerts must fire from it and every dashboard
//! panel query must return data. A failed collector still writes the file (its success metric 0)
//! and exits 1; a bad FILE fails clearly and writes nothing.
//!
//! Needs root, lvm2, prometheus (and promtool) and prometheus-node-exporter.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::stack::{fast_rules, loopback_port, which, Prometheus};
use common::*;

const WEB: &str = "3f5e6c1a-1111-4222-8333-444455556666";
const GONE: &str = "0d1e2f3a-4b5c-4d7e-8f90-a1b2c3d4e5f6";
const FOREIGN: &str = "backup_scratch";
/// Debian's name of node_exporter.
const NODE_EXPORTER: &str = "prometheus-node-exporter";

/// Series that exist only when Placement is read beside a local source (the cross-source
/// audit): this host has no Placement.
const NEEDS_PLACEMENT: &[&str] = &["nova_lvm_audit_"];

/// Fleet forecasts that exist only where corrected free space shrinks (more than 1 MiB a day,
/// alerts/nova-lvm.rules.yml): the file here is rewritten with the same figures. The end-to-end
/// fleet test (tests/stack/e2e_alerting.rs) checks them with a shrinking VG.
const NEEDS_TREND: &[&str] = &["nova_lvm_days_until_full:"];

/// A real node_exporter with only its textfile collector, reading `dir`; killed on drop.
struct NodeExporter {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl NodeExporter {
    fn start(dir: &Path, log_dir: &Path) -> Self {
        let port = loopback_port();
        let log = log_dir.join("node_exporter.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(which(NODE_EXPORTER).expect("node_exporter"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start node_exporter");
        let mut node = NodeExporter { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !get(port, "/metrics").is_ok_and(|(status, _)| status == 200) {
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("node_exporter exited with {status}:\n{}", node.log());
            }
            assert!(
                Instant::now() < deadline,
                "node_exporter not ready: {}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        node
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn scrape(&self) -> String {
        let (status, body) = get(self.port, "/metrics").expect("scrape node_exporter");
        assert_eq!(status, 200, "{body}");
        body
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when this machine can run the test (else skipped, or failed under CI).
fn tools_available(test: &str) -> bool {
    lvm_available(test) && programs_available(test, &[NODE_EXPORTER, "prometheus", "promtool"])
}

/// Runs `nova-lvm-exporter textfile FILE` with `args`.
fn textfile(file: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .arg("textfile")
        .arg(file)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run textfile")
}

/// The samples of an exposition, each series keyed by its name and its labels sorted (the two
/// encoders may order labels differently), with its value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    Exposition::parse(text)
        .samples
        .into_iter()
        .map(|(series, value)| {
            let key = match series.split_once('{') {
                None => series,
                Some((name, labels)) => {
                    let mut pairs: Vec<String> = labels
                        .trim_end_matches('}')
                        .split("\",")
                        .map(|p| format!("{}\"", p.trim_end_matches('"')))
                        .collect();
                    pairs.sort_unstable();
                    format!("{name}{{{}}}", pairs.join(","))
                }
            };
            (key, value)
        })
        .collect()
}

#[test]
fn node_exporter_serves_the_file_unchanged_and_the_alerts_and_dashboards_work_from_it() {
    let test = "node_exporter_serves_the_file_unchanged_and_the_alerts_and_dashboards_work_from_it";
    if !tools_available(test) {
        return;
    }
    // The host: an instance, a foreign LV (10 % of the VG: above the untracked thresholds) and
    // the disk of an instance deleted a week ago (past the orphan alert's minimum age).
    let vg = LoopVg::new("textfile", 100);
    vg.create_lv(&format!("{WEB}_disk"), "20G");
    vg.create_lv(FOREIGN, "10G");
    vg.create_lv(&format!("{GONE}_disk"), "1G");
    let week_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 7 * 86_400;
    vg.set_lv_creation_time(&format!("{GONE}_disk"), week_ago);
    let work = tempfile::tempdir().unwrap();
    write_domains(
        &work.path().join("qemu"),
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
    write_nova_conf(&work.path().join("nova.conf"), &vg.name, 1024);
    let textfile_dir = work.path().join("textfile");
    std::fs::create_dir(&textfile_dir).unwrap();
    let file = textfile_dir.join("nova-lvm.prom");
    let args = vec![
        format!(
            "--nova.config-file={}",
            work.path().join("nova.conf").display()
        ),
        format!(
            "--collector.libvirt.xml-dir={}",
            work.path().join("qemu").display()
        ),
        "--flavor=m1.small=10".to_string(),
    ];

    // One run: exit 0, the file 0644, no temporary file left, promtool clean, no process_*.
    let run = textfile(&file, &args);
    assert!(
        run.status.success(),
        "{:?}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "{mode:o}");
    let names: Vec<_> = std::fs::read_dir(&textfile_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["nova-lvm.prom"]);
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(promtool_check_metrics(&written), "", "{written}");
    let exposition = Exposition::parse(&written);
    assert!(
        exposition.lacks_family("process_cpu_seconds_total"),
        "{written}"
    );
    assert_eq!(
        exposition.value(&format!(
            "nova_lvm_lvs{{owner=\"orphan\",vg=\"{}\"}}",
            vg.name
        )),
        1.0
    );

    // node_exporter serves every sample of the file with the same labels and value, and every
    // family's help text as written.
    let node = NodeExporter::start(&textfile_dir, work.path());
    let served = node.scrape();
    let served_samples = samples(&served);
    let written_samples = samples(&written);
    assert!(written_samples.len() > 40, "{written}");
    let mut differing = Vec::new();
    for (series, value) in &written_samples {
        match served_samples.get(series) {
            Some(served) if served.to_bits() == value.to_bits() => {}
            other => differing.push(format!("{series}: wrote {value}, served {other:?}")),
        }
    }
    assert!(
        differing.is_empty(),
        "node_exporter changed the file:\n{}\n--- served:\n{served}\n--- log:\n{}",
        differing.join("\n"),
        node.log()
    );
    for help in written.lines().filter(|l| l.starts_with("# HELP ")) {
        assert!(served.contains(help), "{help} not served as written");
    }
    assert_eq!(
        samples(&served).get("node_textfile_scrape_error"),
        Some(&0.0),
        "{served}\n{}",
        node.log()
    );

    // A second host, its textfile from a saved report of an active thin pool (this kernel cannot
    // activate one), for the fleet's thin-pool panels.
    let thin_dir = work.path().join("thin");
    std::fs::create_dir(&thin_dir).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("textfile")
        .arg(thin_dir.join("nova-lvm.prom"))
        .args([
            "--nova.config-file=/dev/null",
            "--nova.images-volume-group=fixture-vms",
            "--collector.lvm.replay-file=tests/fixtures/lvm/thin-active.json",
            "--no-collector.libvirt",
        ])
        .output()
        .unwrap();
    assert!(run.status.code().is_some(), "{run:?}");
    let thin_node = NodeExporter::start(&thin_dir, &thin_dir);

    // Prometheus scrapes both node_exporters as job nova-lvm, with the real rules made fast.
    let real_rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/alerts/nova-lvm.rules.yml"
    ))
    .unwrap();
    let (rules, _) = fast_rules(&real_rules, "1s", "2s");
    let instance = format!("127.0.0.1:{}", node.port);
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - nova-lvm.fast.rules.yml\n\
         scrape_configs:\n  - job_name: nova-lvm\n    static_configs:\n      - targets: ['{instance}', '127.0.0.1:{thin}']\n\
         \x20       labels:\n          availability_zone: az-textfile\n          aggregate: lvm-textfile\n          region: region-textfile\n          cell: cell-textfile\n",
        thin = thin_node.port
    );
    let prometheus = Prometheus::start(
        &which("prometheus").unwrap(),
        &config,
        &[("nova-lvm.fast.rules.yml", &rules)],
    );
    let logs = || {
        format!(
            "--- prometheus:\n{}\n--- node_exporter:\n{}",
            prometheus.service.log(),
            node.log()
        )
    };
    for alert in [
        "NovaLvmUntrackedConsumption",
        "NovaLvmOrphanedInstanceDisks",
    ] {
        let query = format!(
            "ALERTS{{alertname=\"{alert}\",alertstate=\"firing\",job=\"nova-lvm\",instance=\"{instance}\",vg=\"{}\"}}",
            vg.name
        );
        wait_until(
            Duration::from_secs(60),
            &format!("{alert} firing"),
            logs,
            || {
                prometheus
                    .query(&query)
                    .ok()
                    .filter(|r| r.len() == 1)
                    .map(|_| ())
            },
        );
    }

    // Every dashboard panel's PromQL: each must parse and return data.
    let values = [
        ("job", "nova-lvm"),
        ("instance", instance.as_str()),
        ("vg", vg.name.as_str()),
        // The fleet dashboard's region, cell and availability-zone views: the target carries
        // the labels a sharded fleet gives it (docs/fleet.md).
        ("region", ".*"),
        ("cell", ".*"),
        ("availability_zone", ".*"),
        ("__rate_interval", "1m"),
        ("__interval", "1s"),
        ("__range", "1h"),
    ];
    let exempt: Vec<&str> = NEEDS_PLACEMENT.iter().chain(NEEDS_TREND).copied().collect();
    let check = prometheus.check_panel_queries(&values, &exempt);
    let ran = check.ran;
    let mut failed = check.errors;
    failed.extend(check.empty.iter().map(|who| format!("{who}\n    no data")));
    assert!(ran >= 40, "only {ran} panel queries found");
    assert!(failed.is_empty(), "{}\n{}", failed.join("\n"), logs());

    // The libvirt collector fails: the file is still written, says so, and the exit is 1.
    std::fs::rename(work.path().join("qemu"), work.path().join("qemu.gone")).unwrap();
    let run = textfile(&file, &args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("wrote {}", file.display())) && stderr.contains("libvirt: "),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(promtool_check_metrics(&written), "", "{written}");
    let exposition = Exposition::parse(&written);
    assert_eq!(
        exposition.value("nova_lvm_collector_success{collector=\"libvirt\"}"),
        0.0
    );
    let served = node.scrape();
    assert_eq!(
        samples(&served).get("nova_lvm_collector_success{collector=\"libvirt\"}"),
        Some(&0.0),
        "{served}\n{}",
        node.log()
    );
    // Prometheus sees it (NovaLvmCollectorFailing then fires once most of 10 minutes failed).
    wait_until(
        Duration::from_secs(30),
        "the libvirt collector failing in Prometheus",
        logs,
        || {
            (prometheus.scalar(
                "job_collector:nova_lvm_collector_failing:sum{job=\"nova-lvm\",collector=\"libvirt\"}",
            ) == Some(1.0))
            .then_some(())
        },
    );
}

#[test]
fn a_bad_file_fails_naming_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let replay = [
        "--nova.config-file=examples/seed-incident/nova.conf".to_string(),
        "--collector.lvm.replay-file=examples/seed-incident/lvm-report.json".to_string(),
        "--collector.file.path=examples/seed-incident/instances.json".to_string(),
        "--no-collector.libvirt".to_string(),
    ];
    let in_repo = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("textfile")
            .arg(file)
            .args(&replay)
            .output()
            .unwrap()
    };

    // A name node_exporter would never read: a usage error before any collection.
    let run = in_repo(&dir.path().join("nova-lvm.txt"));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not end in .prom"), "{stderr}");

    // A directory that does not exist: exit 1 naming the path, nothing created.
    let missing = dir.path().join("absent/nova-lvm.prom");
    let run = in_repo(&missing);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}/absent/.nova-lvm.prom.", dir.path().display())),
        "{stderr}"
    );
    assert!(!dir.path().join("absent").exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // The seed incident replayed: complete, so exit 0, and the file is the metrics.
    let good = dir.path().join("nova-lvm.prom");
    let run = in_repo(&good);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let written = Exposition::parse(&std::fs::read_to_string(&good).unwrap());
    assert_eq!(
        written.value("nova_lvm_collector_success{collector=\"file\"}"),
        1.0
    );
}
