//! `report` and `check` on real VGs on loop devices, with nova's metadata in libvirt domain XML
//! files: a healthy host, the seed incident's foreign LV, orphaned instance disks, an
//! over-committed host, and failed collectors. Exit codes, the figures to the byte, the text's
//! arithmetic and the JSON document against `docs/report-schema.json`.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

const UUID_A: &str = "3f5e6c1a-1111-2222-3333-444455556666";
const UUID_B: &str = "9b2d7e40-aaaa-bbbb-cccc-ddddeeeeffff";
const UUID_GONE: &str = "0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6";

fn domain<'a>(uuid: &'a str, root_gb: u64, ephemeral_gb: u64) -> Domain<'a> {
    Domain {
        uuid,
        name: "vm",
        root_gb,
        ephemeral_gb,
        swap_mb: 0,
        boot_from_volume: false,
    }
}

/// A compute-node-like host: a VG, nova.conf and the libvirt XML directory.
struct Host {
    vg: LoopVg,
    dir: tempfile::TempDir,
}

impl Host {
    fn new(tag: &str, nova_conf_extra: &str, domains: &[Domain]) -> Self {
        let vg = LoopVg::new(tag, 20);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("nova.conf"),
            format!(
                "[DEFAULT]\nhost = compute-test\nreserved_host_disk_mb = 1024\n{nova_conf_extra}\n[libvirt]\nimages_type = lvm\nimages_volume_group = {}\n",
                vg.name
            ),
        )
        .unwrap();
        write_domains(&dir.path().join("qemu"), &vg.name, domains);
        Host { vg, dir }
    }

    fn xml_dir(&self) -> PathBuf {
        self.dir.path().join("qemu")
    }

    fn args(&self) -> Vec<String> {
        vec![
            format!(
                "--nova.config-file={}",
                self.dir.path().join("nova.conf").display()
            ),
            format!("--collector.libvirt.xml-dir={}", self.xml_dir().display()),
        ]
    }

    fn run(&self, subcommand: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
            .args(subcommand)
            .args(self.args())
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .output()
            .expect("run the exporter")
    }

    /// `report --format json`: the document (validated against the schema) and the exit code.
    fn report_json(&self) -> (Value, i32) {
        let output = self.run(&["report", "--format=json"]);
        let text = String::from_utf8_lossy(&output.stdout);
        let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "report JSON: {e}\n{text}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        let errors = common::schema::report_schema_violations(&json);
        assert!(errors.is_empty(), "schema violations: {errors:#?}\n{text}");
        (json, output.status.code().unwrap_or(-1))
    }

    fn report_text(&self) -> (String, i32) {
        let output = self.run(&["report"]);
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            output.status.code().unwrap_or(-1),
        )
    }

    fn check(&self, thresholds: &[&str]) -> (String, i32) {
        let mut args = vec!["check"];
        args.extend_from_slice(thresholds);
        let output = self.run(&args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_eq!(stdout.lines().count(), 1, "one status line: {stdout}");
        (
            stdout.trim_end().to_string(),
            output.status.code().unwrap_or(-1),
        )
    }
}

fn nova_vg(json: &Value) -> &Value {
    json["vgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|vg| vg["nova"] == true)
        .expect("nova's VG in the report")
}

fn gib(n: u64) -> u64 {
    n * GIB
}

/// A 20 GiB loop device's VG floors to 19 GiB in placement; 1024 MiB are reserved.
const RESERVED: u64 = GIB;

#[test]
fn a_healthy_host_is_ok_with_no_drift() {
    if !lvm_available("report healthy") {
        return;
    }
    let host = Host::new("rep-ok", "", &[domain(UUID_A, 5, 0), domain(UUID_B, 3, 2)]);
    host.vg.create_lv(&format!("{UUID_A}_disk"), "5G");
    host.vg.create_lv(&format!("{UUID_B}_disk"), "3G");
    host.vg.create_lv(&format!("{UUID_B}_disk.local"), "2G");

    let (json, code) = host.report_json();
    assert_eq!(code, 0);
    assert_eq!(json["schema_version"], 2);
    assert_eq!(json["complete"], true);
    // Titled with nova's name for the host (nova.conf [DEFAULT] host), not the kernel's.
    assert_eq!(json["hostname"], "compute-test");
    assert_eq!(json["primary_source"], "libvirt");
    let vg = nova_vg(&json);
    let a = &vg["accounting"];
    assert_eq!(vg["size_bytes"], VG_20G_BYTES);
    assert_eq!(vg["used_bytes"], gib(10));
    assert_eq!(a["tracked_used_bytes"], gib(10));
    assert_eq!(a["instances"], 2);
    assert_eq!(a["drift_bytes"], 0);
    assert_eq!(a["untracked"]["total_bytes"], 0);
    assert_eq!(a["reserved_bytes"], RESERVED);
    assert_eq!(a["corrected_free_bytes"], VG_20G_BYTES - gib(10) - RESERVED);
    // (19 - 1) x 1.0 - 10 GiB
    assert_eq!(a["scheduler_free_bytes"], gib(8));
    assert_eq!(a["phantom_bytes"], 0);
    assert_eq!(a["recommended_reserved_host_disk_mb"], 1024);
    assert_eq!(vg["top_untracked_lvs"].as_array().unwrap().len(), 0);
    let sources = json["sources"].as_array().unwrap();
    assert_eq!(sources[0]["source"], "libvirt");
    assert!(sources[0]["reads"]
        .as_str()
        .unwrap()
        .contains(host.xml_dir().to_str().unwrap()));

    let (text, code) = host.report_text();
    assert_eq!(code, 0, "{text}");
    for needle in [
        "size - max(raw used, tracked used) - reserved",
        "= 20.00 - max(10.00, 10.00) - 1.00",
        "= (19 - 1) x 1.0 - 10.00",
        "No untracked LVs.",
        "reserved_host_disk_mb = 1024 is enough",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }

    let (line, code) = host.check(&[]);
    assert_eq!(code, 0, "{line}");
    assert!(line.starts_with("NOVA-LVM OK - "), "{line}");
    // The warning limit in force: 5% of the VG, which this small VG reaches before 20 GiB.
    let five_percent = (VG_20G_BYTES as f64 * 0.05).ceil() as u64;
    assert!(
        line.contains(&format!("| untracked=0B;{five_percent};;0;")),
        "{line}"
    );
}

#[test]
fn the_seed_incidents_foreign_lv_is_untracked_phantom_space() {
    if !lvm_available("report foreign") {
        return;
    }
    let host = Host::new("rep-foreign", "", &[domain(UUID_A, 10, 0)]);
    host.vg.create_lv(&format!("{UUID_A}_disk"), "10G");
    host.vg.create_lv("someone_elses_lv", "8G");

    let (json, code) = host.report_json();
    assert_eq!(code, 0);
    let vg = nova_vg(&json);
    let a = &vg["accounting"];
    assert_eq!(a["drift_bytes"], gib(8));
    assert_eq!(a["untracked"]["foreign_bytes"], gib(8));
    assert_eq!(a["untracked"]["total_bytes"], gib(8));
    let corrected = VG_20G_BYTES - gib(18) - RESERVED;
    assert_eq!(a["corrected_free_bytes"], corrected);
    // (19 - 1) - 10 = 8 GiB believed free, 0.996 GiB really free.
    assert_eq!(a["scheduler_free_bytes"], gib(8));
    assert_eq!(a["overestimate_bytes"], gib(8) - corrected);
    assert_eq!(a["phantom_bytes"], gib(8) - corrected);
    // (19 - R) - 10 <= 0.996  =>  R = 9 GiB
    assert_eq!(a["recommended_reserved_host_disk_mb"], 9 * 1024);
    assert_eq!(vg["top_untracked_lvs"][0]["name"], "someone_elses_lv");
    assert_eq!(vg["top_untracked_lvs"][0]["owner"], "foreign");

    let (text, _) = host.report_text();
    assert!(text.contains("foreign  someone_elses_lv"), "{text}");
    assert!(
        text.contains("set [DEFAULT] reserved_host_disk_mb = 9216 (today 1024)"),
        "{text}"
    );

    // Defaults, as the alert: 8 GiB untracked is below 20 GiB but above 5% of the VG; 7 GiB
    // phantom < 10 GiB. Without the relative threshold, 8 GiB < 20 GiB is OK.
    let (line, code) = host.check(&[]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("untracked 8.00 GiB >= 1.00 GiB (warning)"),
        "{line}"
    );
    let (line, code) = host.check(&["--warning.untracked-ratio=off"]);
    assert_eq!(code, 0, "{line}");
    let (line, code) = host.check(&["--warning.untracked=5%"]);
    assert_eq!(code, 1, "{line}");
    assert!(line.starts_with("NOVA-LVM WARNING - "), "{line}");
    assert!(
        line.contains("largest untracked LV someone_elses_lv (foreign, 8.00 GiB)"),
        "{line}"
    );
    let (line, code) = host.check(&["--warning.untracked=5%", "--critical.overestimate=5GiB"]);
    assert_eq!(code, 2, "{line}");
    assert!(line.starts_with("NOVA-LVM CRITICAL - "), "{line}");
    assert!(
        line.contains("scheduler over-estimate 7.00 GiB >= 5.00 GiB (critical)"),
        "{line}"
    );
    assert!(line.contains(&format!("untracked={}B;", gib(8))), "{line}");
}

#[test]
fn orphaned_instance_disks_are_listed_and_critical() {
    if !lvm_available("report orphans") {
        return;
    }
    let host = Host::new("rep-orphan", "", &[domain(UUID_A, 5, 0)]);
    host.vg.create_lv(&format!("{UUID_A}_disk"), "5G");
    host.vg.create_lv(&format!("{UUID_GONE}_disk"), "4G");
    host.vg.create_lv(&format!("{UUID_GONE}_disk.local"), "1G");

    let (json, code) = host.report_json();
    assert_eq!(code, 0);
    let vg = nova_vg(&json);
    let a = &vg["accounting"];
    assert_eq!(a["untracked"]["orphan_bytes"], gib(5));
    assert_eq!(a["untracked"]["foreign_bytes"], 0);
    assert_eq!(vg["untracked_lv_count"], 2);
    let lvs = vg["top_untracked_lvs"].as_array().unwrap();
    assert_eq!(lvs[0]["name"], format!("{UUID_GONE}_disk"));
    assert_eq!(lvs[0]["owner"], "orphan");
    assert_eq!(lvs[1]["bytes"], gib(1));
    let owners = vg["owners"].as_array().unwrap();
    assert!(owners
        .iter()
        .any(|o| o["owner"] == "orphan" && o["lvs"] == 2 && o["bytes"] == gib(5)));

    let (line, code) = host.check(&["--critical.untracked=4GiB"]);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.contains("untracked 5.00 GiB >= 4.00 GiB (critical)"),
        "{line}"
    );
    assert!(
        line.contains(&format!("{UUID_GONE}_disk (orphan")),
        "{line}"
    );
}

#[test]
fn an_over_committed_host_has_negative_corrected_free_and_is_critical() {
    if !lvm_available("report over-committed") {
        return;
    }
    // B (15 GiB) is counted by nova but has no LV yet (building); with a ratio of 2 the
    // scheduler still sees room on a VG that cannot even hold what nova counts.
    let host = Host::new(
        "rep-over",
        "disk_allocation_ratio = 2.0",
        &[domain(UUID_A, 10, 0), domain(UUID_B, 15, 0)],
    );
    host.vg.create_lv(&format!("{UUID_A}_disk"), "10G");
    host.vg.create_lv("someone_elses_lv", "6G");

    let (json, code) = host.report_json();
    assert_eq!(code, 0);
    let a = &nova_vg(&json)["accounting"];
    let tracked = gib(25);
    assert_eq!(a["tracked_used_bytes"], tracked);
    assert_eq!(a["unbacked_bytes"], gib(15));
    assert_eq!(a["drift_bytes"], gib(16) as i64 - tracked as i64);
    let corrected = VG_20G_BYTES as i64 - tracked as i64 - RESERVED as i64;
    assert!(corrected < 0);
    assert_eq!(a["corrected_free_bytes"], corrected);
    // (19 - 1) x 2.0 - 25 = 11 GiB believed free.
    assert_eq!(a["scheduler_free_bytes"], gib(11));
    assert_eq!(a["allocation_ratio"], 2.0);
    assert_eq!(a["phantom_bytes"], gib(11));

    let (text, _) = host.report_text();
    assert!(text.contains("= (19 - 1) x 2.0 - 25.00"), "{text}");
    assert!(
        text.contains("-15.00 GiB  tracked disk with no LV"),
        "{text}"
    );

    let (line, code) = host.check(&[]);
    assert_eq!(code, 1, "{line}");
    // As NovaLvmCorrectedFreeSpaceLow: below the rule's -1 GiB.
    assert!(
        line.contains("corrected free -6.00 GiB < -1.00 GiB (warning)"),
        "{line}"
    );
    let (line, code) = host.check(&["--critical.corrected-free=0"]);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.contains("corrected free -6.00 GiB < 0.00 GiB (critical)"),
        "{line}"
    );
    assert!(
        line.contains(&format!("corrected_free={corrected}B;-1073741824:;0:;")),
        "{line}"
    );
}

#[test]
fn a_failed_collector_makes_check_unknown_and_report_exit_1() {
    if !lvm_available("report failures") {
        return;
    }
    let host = Host::new("rep-fail", "", &[domain(UUID_A, 5, 0)]);
    host.vg.create_lv(&format!("{UUID_A}_disk"), "5G");
    std::fs::write(host.xml_dir().join("instance-broken.xml"), "<domain><uuid>").unwrap();

    let (json, code) = host.report_json();
    assert_eq!(code, 1);
    assert_eq!(json["complete"], false);
    let vg = nova_vg(&json);
    assert!(vg["accounting"].is_null());
    let reason = vg["accounting_absent_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the primary tracked source libvirt failed: "),
        "{reason}"
    );
    assert!(reason.contains("instance-broken.xml"), "{reason}");
    assert_eq!(vg["size_bytes"], VG_20G_BYTES);

    let (line, code) = host.check(&[]);
    assert_eq!(code, 3, "{line}");
    assert!(line.starts_with("NOVA-LVM UNKNOWN - "), "{line}");
    assert!(line.contains("libvirt failed"), "{line}");

    // A VG LVM does not know: the lvm collector fails, check is UNKNOWN.
    let output = Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .args(["check", "--nova.images-volume-group=nle-no-such-vg"])
        .arg(format!("--nova.config-file={}", empty_conf().display()))
        .arg(format!(
            "--collector.libvirt.xml-dir={}",
            host.xml_dir().display()
        ))
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{line}");
    assert!(line.contains("nle-no-such-vg"), "{line}");
}

fn empty_conf() -> &'static Path {
    static CONF: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CONF.get_or_init(|| {
        let path = std::env::temp_dir().join("nova-lvm-exporter-report-test-empty.conf");
        std::fs::write(&path, "").unwrap();
        path
    })
}

#[test]
fn check_usage_errors_are_unknown_and_report_usage_errors_are_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .args(["check", "--warning.untracked=lots"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("NOVA-LVM UNKNOWN - "), "{stdout}");
    assert!(stdout.contains("--warning.untracked"), "{stdout}");
    let output = Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .args(["report", "--format=yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// Seconds since the epoch now.
fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn each_untracked_lv_says_how_old_it_is() {
    if !lvm_available("report ages") {
        return;
    }
    let host = Host::new("rep-age", "", &[domain(UUID_A, 5, 0)]);
    let before = now_unix();
    host.vg.create_lv(&format!("{UUID_A}_disk"), "5G");
    host.vg.create_lv(&format!("{UUID_GONE}_disk"), "4G");
    host.vg.create_lv("scratch", "1G");
    let after = now_unix();
    // The orphan was created three days (and an hour) ago, as far as LVM knows.
    let three_days_ago = before - 3 * 86_400 - 3_600;
    host.vg
        .set_lv_creation_time(&format!("{UUID_GONE}_disk"), three_days_ago);

    let (json, code) = host.report_json();
    assert_eq!(code, 0);
    let collected = json["collected_at_unix"].as_f64().unwrap() as i64;
    let lvs = nova_vg(&json)["top_untracked_lvs"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(lvs[0]["name"], format!("{UUID_GONE}_disk"));
    assert_eq!(lvs[0]["created_unix"], three_days_ago);
    assert_eq!(lvs[0]["age_seconds"], collected - three_days_ago);
    assert_eq!(lvs[1]["name"], "scratch");
    let scratch = lvs[1]["created_unix"].as_i64().unwrap();
    assert!((before..=after).contains(&scratch), "{scratch}");
    assert_eq!(lvs[1]["age_seconds"], collected - scratch);

    let (text, code) = host.report_text();
    assert_eq!(code, 0);
    assert!(
        text.contains(&format!("orphan   {UUID_GONE}_disk (created 3 days ago)")),
        "{text}"
    );
    assert!(
        text.contains("foreign  scratch (created less than a minute ago)"),
        "{text}"
    );
}

/// A wrong but existing `--collector.libvirt.xml-dir` (here: the configured directory, emptied)
/// lists no instance, so every instance disk in nova's VG classifies as an orphan. `check` must
/// warn naming the directory, `report` and the status page must say so first, the metric must
/// show it, and nothing may call those disks removable.
#[test]
fn a_wrong_libvirt_directory_is_said_first_and_its_orphans_are_not_removable() {
    if !lvm_available("report wrong xml dir") {
        return;
    }
    let host = Host::new(
        "rep-wrongdir",
        "",
        &[domain(UUID_A, 5, 0), domain(UUID_B, 3, 2)],
    );
    host.vg.create_lv(&format!("{UUID_A}_disk"), "5G");
    host.vg.create_lv(&format!("{UUID_B}_disk"), "3G");
    host.vg.create_lv(&format!("{UUID_B}_disk.local"), "2G");
    // The healthy host first: no warning.
    let (json, _) = host.report_json();
    assert_eq!(json["local_source_warnings"], serde_json::json!([]));

    // The configured directory still exists but holds no domain (a typo'd or stale copy).
    let configured = host.xml_dir();
    std::fs::rename(&configured, host.dir.path().join("qemu.real")).unwrap();
    std::fs::create_dir(&configured).unwrap();
    let wrong_dir = configured.display().to_string();

    let (line, code) = host.check(&[]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.starts_with("NOVA-LVM WARNING - the libvirt source ("),
        "{line}"
    );
    assert!(line.contains(&wrong_dir), "names the directory: {line}");
    assert!(line.contains("lists no instance, yet"), "{line}");
    assert!(line.contains("disks of 2 instances (10.00 GiB)"), "{line}");
    assert!(line.contains("none is to be removed"), "{line}");

    let (json, code) = host.report_json();
    assert_eq!(code, 0);
    let warnings = json["local_source_warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{json:#}");
    assert_eq!(warnings[0]["source"], "libvirt");
    assert_eq!(warnings[0]["instances"], 2);
    assert_eq!(warnings[0]["bytes"], gib(10));
    assert_eq!(warnings[0]["contradicted"], false);
    assert!(warnings[0]["reads"].as_str().unwrap().contains(&wrong_dir));
    assert_eq!(
        nova_vg(&json)["accounting"]["untracked"]["orphan_bytes"],
        gib(10)
    );

    let (text, _) = host.report_text();
    let first_section = text.split("\n\n").nth(1).unwrap_or_default();
    assert!(
        first_section.starts_with("WARNING: the libvirt source (")
            && first_section.contains(&wrong_dir),
        "the warning comes first:\n{text}"
    );
    assert!(
        text.contains("remove none of them: the libvirt source lists no instance at all"),
        "{text}"
    );
    assert!(!text.contains("safe to remove"), "{text}");

    let exporter = Exporter::start(&host.args());
    let series = format!(
        "nova_lvm_local_source_suspect{{source=\"libvirt\",vg=\"{}\"}}",
        host.vg.name
    );
    assert_eq!(exporter.scrape().get(&series), Some(1.0), "{series}");
    let (status, page) = get(exporter.port, "/").unwrap();
    assert_eq!(status, 200);
    let body = page.split("<body>").nth(1).unwrap_or_default();
    let warning = body.find("local-source-warning").expect("the page warns");
    let sections = body.find("<h2").expect("the page has sections");
    assert!(warning < sections, "the warning comes before every section");
    assert!(body.contains(&wrong_dir));
    assert!(body.contains("Remove none of them"));
}

/// A VG that LVM does not report: the error lists the VGs LVM sees (a typo shows at once) and,
/// when LVM sees no PV at all (here: real LVM whose filter rejects every device, as in a
/// container without the host's block devices), points at `--collector.lvm.devices`. LVM is
/// given an lvm.conf (`LVM_SYSTEM_DIR`) that accepts only this test's loop device, so other
/// VGs on the machine neither show nor interfere.
#[test]
fn a_vg_not_found_lists_the_vgs_seen_and_the_devices_flag_when_no_pv_is_visible() {
    if !lvm_available("report vg not found") {
        return;
    }
    let vg = LoopVg::new("rep-typo", 20);
    let typo = format!("{}-typo", vg.name);
    let device = run(
        "pvs",
        &[
            "--noheadings",
            "-o",
            "pv_name",
            "--select",
            &format!("vg_name={}", vg.name),
        ],
    )
    .trim()
    .to_string();
    assert!(device.starts_with("/dev/loop"), "{device:?}");
    let lvm_line = |filter: &str| {
        let conf = tempfile::tempdir().unwrap();
        std::fs::write(
            conf.path().join("lvm.conf"),
            format!("devices {{\n global_filter = [ {filter} ]\n use_devicesfile = 0\n}}\n"),
        )
        .unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
            .args([
                "report",
                &format!("--nova.images-volume-group={typo}"),
                "--no-collector.libvirt",
                "--collector.lvm.timeout=60s",
            ])
            .env("LVM_SYSTEM_DIR", conf.path())
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .output()
            .expect("run the exporter");
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.lines()
            .find(|l| l.trim_start().starts_with("lvm ") && l.contains("FAILED"))
            .unwrap_or_else(|| panic!("the lvm collector fails:\n{text}"))
            .to_string()
    };
    let line = lvm_line(&format!("\"a|^{device}$|\", \"r|.*|\""));
    assert!(
        line.ends_with(&format!(
            "volume group not found: {typo}; LVM sees: {}",
            vg.name
        )),
        "{line}"
    );

    let line = lvm_line("\"r|.*|\"");
    assert!(
        line.contains(&format!(
            "volume group not found: {typo}; LVM sees no VG here and no PV at all"
        )),
        "{line}"
    );
    assert!(line.contains("--collector.lvm.devices=/dev/"), "{line}");
}
