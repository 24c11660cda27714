//! The metadata reader as the raw source, on real VGs on loop devices: the same metrics as
//! `lvm fullreport`, no LVM process in the steady state, each fallback exported with its reason,
//! scrapes that stay consistent while LVM rewrites the metadata, and the background check that
//! sends a VG back to exec when LVM disagrees.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{lvm_available, remove_loop_vg, run, Exporter, LoopVg};
use lvm_metadata::crc::{calc_crc, INITIAL_CRC};
use lvm_metadata::device::read_pv;
use nova_lvm_exporter::collect::{CollectorSettings, SnapshotCollector};
use nova_lvm_exporter::lvm::exec::{IoMode, LvmCommand};
use nova_lvm_exporter::lvm::metadata::source::{read_vg, MetadataSource, VgCache};
use nova_lvm_exporter::lvm::report::PvRow;
use nova_lvm_exporter::lvm::{RawMethod, RawSource};
use nova_lvm_exporter::output::metrics::render;

const LVM: &str = "/usr/sbin/lvm";

/// A wrapper script usable as `--collector.lvm.lvm-path`: logs one line per run to `log`, then
/// runs the real lvm, its JSON passed through `sed_expr` (when not empty) until
/// [`Wrapper::stop_doctoring`].
struct Wrapper {
    dir: tempfile::TempDir,
}

impl Wrapper {
    fn new(sed_expr: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("lvm");
        let log = dir.path().join("runs.log");
        let doctor = dir.path().join("doctor");
        let body = if sed_expr.is_empty() {
            format!("exec {LVM} \"$@\"")
        } else {
            std::fs::write(&doctor, "").unwrap();
            format!(
                "if [ -e {} ]; then {LVM} \"$@\" | sed -e '{sed_expr}'; else exec {LVM} \"$@\"; fi",
                doctor.display()
            )
        };
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho run >> {}\n{body}\n", log.display()),
        )
        .unwrap();
        run("chmod", &["755", script.to_str().unwrap()]);
        Wrapper { dir }
    }

    /// From now on the real lvm's output passes unchanged.
    fn stop_doctoring(&self) {
        std::fs::remove_file(self.dir.path().join("doctor")).unwrap();
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("lvm")
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("runs.log"))
            .map(|log| log.lines().count())
            .unwrap_or(0)
    }
}

fn command(lvm: &Path, prefix: &[&str]) -> LvmCommand {
    LvmCommand::new(
        lvm.to_path_buf(),
        prefix.iter().map(|s| s.to_string()).collect(),
        Duration::from_secs(10),
        IoMode::Sync,
    )
}

fn collector_of(raw: Box<dyn RawSource>, vg: &str) -> SnapshotCollector {
    SnapshotCollector::new(
        raw,
        Vec::new(),
        CollectorSettings {
            raw_timeout: Duration::from_secs(15),
            tracked_timeout: Duration::from_secs(5),
            primary: None,
            watched_vgs: vec![vg.to_string()],
            nova_vg: vg.to_string(),
            lv_series_limit: 100,
        },
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The exposition without what differs between two collections of the same state: durations,
/// timestamps, process figures, and the raw source's own info series.
fn comparable(text: &str) -> String {
    text.lines()
        .filter(|line| {
            ![
                "duration_seconds",
                "timestamp_seconds",
                "process_",
                "raw_source_info",
                "verify_mismatches",
            ]
            .iter()
            .any(|skip| line.contains(skip))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn method_of(methods: &[RawMethod], vg: &str) -> (String, String) {
    let method = methods
        .iter()
        .find(|m| m.vg == vg)
        .unwrap_or_else(|| panic!("no method for {vg}: {methods:?}"));
    (method.method.to_string(), method.reason.to_string())
}

/// A thin pool (inactive: written with vgcfgrestore) with a hidden thin LV's pool, nova LVs and
/// a foreign LV.
fn shaped_vg(tag: &str) -> LoopVg {
    let vg = LoopVg::new(tag, 20);
    vg.restore_with_extra_lvs(
        r#"
pool {
id = "000000-0000-0000-0000-0000-0000-000001"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 50
type = "thin-pool"
metadata = "pool_tmeta"
pool = "pool_tdata"
transaction_id = 0
chunk_size = 128
discards = "passdown"
zero_new_blocks = 1
}
}
pool_tmeta {
id = "000000-0000-0000-0000-0000-0000-000002"
status = ["READ", "WRITE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 1
type = "striped"
stripe_count = 1
stripes = ["{pv}", 0]
}
}
pool_tdata {
id = "000000-0000-0000-0000-0000-0000-000003"
status = ["READ", "WRITE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 50
type = "striped"
stripe_count = 1
stripes = ["{pv}", 1]
}
}
"#,
    );
    vg.create_lv("11111111-2222-3333-4444-555555555555_disk", "1G");
    vg.create_lv("66666666-7777-8888-9999-000000000000_disk", "2G");
    vg.create_lv("backup", "512M");
    vg
}

#[test]
fn metrics_equal_exec_and_the_steady_state_runs_no_lvm() {
    if !lvm_available("metrics_equal_exec_and_the_steady_state_runs_no_lvm") {
        return;
    }
    let vg = shaped_vg("mds-eq");
    let rt = runtime();
    let exec = collector_of(Box::new(command(Path::new(LVM), &[])), &vg.name);
    let wrapper = Wrapper::new("");
    let source = Arc::new(MetadataSource::new(command(&wrapper.path(), &[])));
    let metadata = collector_of(Box::new(Arc::clone(&source)), &vg.name);

    let first = rt.block_on(metadata.collect());
    assert_eq!(wrapper.runs(), 1, "the first collection finds the PVs");
    assert_eq!(
        method_of(&first.raw_methods, &vg.name),
        ("metadata".into(), "ok".into())
    );
    for _ in 0..3 {
        let snapshot = rt.block_on(metadata.collect());
        assert!(snapshot.collectors[0].success, "{:?}", snapshot.collectors);
        let expected = comparable(&render(&rt.block_on(exec.collect())));
        assert_eq!(comparable(&render(&snapshot)), expected);
        assert!(expected.contains("nova_lvm_lv_size_bytes"), "{expected}");
    }
    assert_eq!(wrapper.runs(), 1, "the steady state runs no LVM");
    let text = render(&rt.block_on(metadata.collect()));
    assert!(
        text.contains(&format!(
            "nova_lvm_raw_source_info{{method=\"metadata\",reason=\"ok\",vg=\"{}\"}} 1",
            vg.name
        )),
        "{text}"
    );

    // A change is read from the PVs, still without LVM.
    vg.create_lv("later", "1G");
    let after = rt.block_on(metadata.collect());
    assert_eq!(wrapper.runs(), 1);
    assert_eq!(
        comparable(&render(&after)),
        comparable(&render(&rt.block_on(exec.collect())))
    );
    assert!(render(&after).contains("lv=\"later\""));
}

#[test]
fn each_fallback_is_exported_with_its_reason() {
    if !lvm_available("each_fallback_is_exported_with_its_reason") {
        return;
    }
    let vg = LoopVg::new("mds-fb", 2);
    vg.create_lv("a", "100M");
    let rt = runtime();
    let reason = |source: MetadataSource| {
        let collector = collector_of(Box::new(source), &vg.name);
        let mut last = None;
        for _ in 0..2 {
            let snapshot = rt.block_on(collector.collect());
            assert!(snapshot.collectors[0].success, "{:?}", snapshot.collectors);
            last = Some(method_of(&snapshot.raw_methods, &vg.name));
        }
        last.unwrap()
    };

    // A command prefix: LVM runs with other privileges than the exporter.
    assert_eq!(
        reason(MetadataSource::new(command(Path::new(LVM), &["env"]))),
        ("exec".into(), "command_prefix".into())
    );
    // --collector.lvm.method=exec.
    assert_eq!(
        reason(MetadataSource::exec_only(command(Path::new(LVM), &[]))),
        ("exec".into(), "method_exec".into())
    );

    // The device LVM names cannot be opened.
    let gone = Wrapper::new(r#"s|"pv_name":"[^"]*"|"pv_name":"/nonexistent/pv"|g"#);
    assert_eq!(
        reason(MetadataSource::new(command(&gone.path(), &[]))),
        ("exec".into(), "unreadable_device".into())
    );

    // A copy of the PV whose metadata text has one byte flipped.
    let pv = run(
        "pvs",
        &[
            "--noheadings",
            "-o",
            "pv_name",
            "-S",
            &format!("vg_name={}", vg.name),
        ],
    )
    .trim()
    .to_string();
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("pv.img");
    run(
        "dd",
        &[
            &format!("if={pv}"),
            &format!("of={}", copy.display()),
            "bs=1M",
            "count=1",
            "status=none",
        ],
    );
    let mut image = std::fs::read(&copy).unwrap();
    let at = last_occurrence(&image, vg.name.as_bytes()).expect("the VG name in the metadata text");
    image[at] ^= 0x20;
    std::fs::write(&copy, &image).unwrap();
    let corrupt = Wrapper::new(&format!(
        r#"s|"pv_name":"[^"]*"|"pv_name":"{}"|g"#,
        copy.display()
    ));
    assert_eq!(
        reason(MetadataSource::new(command(&corrupt.path(), &[]))),
        ("exec".into(), "checksum".into())
    );

    // Something the reader does not implement: an exported VG (status flag EXPORTED), which
    // lvm fullreport still reports.
    run("vgexport", &["-q", &vg.name]);
    let unsupported = reason(MetadataSource::new(command(Path::new(LVM), &[])));
    run("vgimport", &["-q", &vg.name]);
    assert_eq!(unsupported, ("exec".into(), "unsupported".into()));
}

/// The last place of `needle` past the label area: in the newest metadata text, which LVM
/// writes after the older ones in the circular buffer (this small VG never wraps it).
fn last_occurrence(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    (4096..haystack.len().saturating_sub(needle.len()))
        .rev()
        .find(|&at| &haystack[at..at + needle.len()] == needle)
}

#[test]
fn collections_of_an_unchanged_vg_share_one_report_and_a_change_makes_a_new_one() {
    if !lvm_available(
        "collections_of_an_unchanged_vg_share_one_report_and_a_change_makes_a_new_one",
    ) {
        return;
    }
    let vg = LoopVg::new("mds-share", 4);
    vg.create_lv("base", "100M");
    let rt = runtime();
    let source = MetadataSource::new(command(Path::new(LVM), &[]));
    let names = vec![vg.name.clone()];
    let collect = || {
        let collection = rt.block_on(source.collect_with_methods(&names));
        assert_eq!(
            method_of(&collection.methods, &vg.name),
            ("metadata".into(), "ok".into())
        );
        collection.report.expect("a report")
    };
    // The first collection finds the PVs with LVM; the next ones read them.
    collect();
    let first = collect();
    let second = collect();
    assert!(
        Arc::ptr_eq(&first, &second),
        "the unchanged VG's LVs are shared, not copied"
    );
    vg.create_lv("later", "100M");
    let changed = collect();
    assert!(!Arc::ptr_eq(&first, &changed), "a change is a new report");
    let names_of = |report: &nova_lvm_exporter::lvm::VgReport| -> Vec<String> {
        report.lvs_of(&vg.name).map(|lv| lv.name.clone()).collect()
    };
    assert_eq!(names_of(&first), ["base"]);
    assert_eq!(names_of(&changed), ["base", "later"]);
    assert!(Arc::ptr_eq(&changed, &collect()));
}

#[test]
fn scrapes_stay_consistent_while_lvm_rewrites_the_metadata() {
    if !lvm_available("scrapes_stay_consistent_while_lvm_rewrites_the_metadata") {
        return;
    }
    let vg = LoopVg::new("mds-race", 4);
    vg.create_lv("base", "100M");
    let rt = runtime();
    let source = MetadataSource::new(command(Path::new(LVM), &[]));
    let collector = collector_of(Box::new(source), &vg.name);
    rt.block_on(collector.collect());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let name = vg.name.clone();
        std::thread::spawn(move || {
            let mut cycles = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let lv = format!("{name}/churn");
                run(
                    "lvcreate",
                    &[
                        "-q",
                        "--config",
                        "global{activation=0}",
                        "-Zn",
                        "-an",
                        "-L",
                        "100M",
                        "-n",
                        "churn",
                        &name,
                    ],
                );
                run(
                    "lvremove",
                    &["-q", "-f", "--config", "global{activation=0}", &lv],
                );
                cycles += 1;
            }
            cycles
        })
    };
    let mut scrapes = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        let snapshot = rt.block_on(collector.collect());
        assert!(snapshot.collectors[0].success, "{:?}", snapshot.collectors);
        let host = snapshot.host.as_ref().expect("accounted");
        let figures = &host.vgs[0];
        // The old state has one LV of 100 MiB, the new one two; the LV rows agree with it.
        let lvs_bytes: u64 = figures.owners.values().map(|totals| totals.bytes).sum();
        assert!(
            (figures.used_bytes == 100 << 20 || figures.used_bytes == 200 << 20)
                && lvs_bytes == figures.used_bytes,
            "used {} bytes, LVs {lvs_bytes} bytes: neither the old nor the new state",
            figures.used_bytes
        );
        scrapes += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let cycles = writer.join().unwrap();
    assert!(
        cycles > 0 && scrapes > 0,
        "{cycles} cycles, {scrapes} scrapes"
    );
}

#[test]
fn a_verify_mismatch_is_counted_and_sends_the_vg_to_exec() {
    if !lvm_available("a_verify_mismatch_is_counted_and_sends_the_vg_to_exec") {
        return;
    }
    let vg = LoopVg::new("mds-verify", 2);
    vg.create_lv("a", "100M");
    let rt = runtime();
    let source = Arc::new(MetadataSource::new(command(Path::new(LVM), &[])));
    let collector = collector_of(Box::new(Arc::clone(&source)), &vg.name);
    rt.block_on(collector.collect());
    rt.block_on(collector.collect());
    let vgs = vec![vg.name.clone()];
    // LVM agrees: nothing counted.
    rt.block_on(source.verify(&vgs));
    let snapshot = rt.block_on(collector.collect());
    assert_eq!(
        method_of(&snapshot.raw_methods, &vg.name),
        ("metadata".into(), "ok".into())
    );

    // The same source, whose verifier asks a doctored lvm: the LV's size differs.
    let doctored = Wrapper::new(r#"s|"lv_size":"104857600"|"lv_size":"209715200"|g"#);
    let lying = Arc::new(MetadataSource::new(command(&doctored.path(), &[])));
    let lying_collector = collector_of(Box::new(Arc::clone(&lying)), &vg.name);
    // First collection: the doctored discovery; the second reads the PVs.
    rt.block_on(lying_collector.collect());
    rt.block_on(lying_collector.collect());
    rt.block_on(lying.verify(&vgs));
    let snapshot = rt.block_on(lying_collector.collect());
    assert_eq!(
        method_of(&snapshot.raw_methods, &vg.name),
        ("exec".into(), "verify_mismatch".into())
    );
    let text = render(&snapshot);
    assert!(
        text.contains(&format!(
            "nova_lvm_metadata_verify_mismatches_total{{vg=\"{}\"}} 1",
            vg.name
        )),
        "{text}"
    );
    // Still wrong on the next check: counted again, still exec.
    rt.block_on(lying.verify(&vgs));
    let snapshot = rt.block_on(lying_collector.collect());
    assert_eq!(snapshot.raw_methods[0].verify_mismatches, 2);
    assert_eq!(snapshot.raw_methods[0].method, "exec");
    // LVM agrees again: back to the metadata, the count kept.
    doctored.stop_doctoring();
    rt.block_on(lying.verify(&vgs));
    let snapshot = rt.block_on(lying_collector.collect());
    assert_eq!(
        method_of(&snapshot.raw_methods, &vg.name),
        ("metadata".into(), "ok".into())
    );
    assert_eq!(snapshot.raw_methods[0].verify_mismatches, 2);
}

#[test]
fn the_exporter_and_report_say_how_each_vg_is_read() {
    if !lvm_available("the_exporter_and_report_say_how_each_vg_is_read") {
        return;
    }
    let vg = LoopVg::new("mds-e2e", 2);
    vg.create_lv("a", "100M");
    let dir = tempfile::tempdir().unwrap();
    let nova_conf = dir.path().join("nova.conf");
    std::fs::write(
        &nova_conf,
        format!(
            "[DEFAULT]\nhost = compute-test\n[libvirt]\nimages_type = lvm\nimages_volume_group = {}\n",
            vg.name
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("qemu")).unwrap();
    let args = vec![
        format!("--nova.config-file={}", nova_conf.display()),
        format!(
            "--collector.libvirt.xml-dir={}",
            dir.path().join("qemu").display()
        ),
        "--collector.lvm.method=metadata".to_string(),
    ];
    let exporter = Exporter::start(&args);
    let metrics = exporter.scrape();
    let info = format!(
        "nova_lvm_raw_source_info{{method=\"metadata\",reason=\"ok\",vg=\"{}\"}}",
        vg.name
    );
    assert_eq!(metrics.get(&info), Some(1.0));
    assert_eq!(
        metrics.get(&format!(
            "nova_lvm_metadata_verify_mismatches_total{{vg=\"{}\"}}",
            vg.name
        )),
        Some(0.0)
    );
    assert_eq!(
        metrics.get(&format!("nova_lvm_vg_used_bytes{{vg=\"{}\"}}", vg.name)),
        Some((100 << 20) as f64)
    );
    let report = std::process::Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .arg("report")
        .args(&args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.contains(&format!("vg {} read by metadata (ok)", vg.name)),
        "{text}"
    );
}

#[test]
fn of_two_copies_the_highest_seqno_wins_and_the_disagreement_is_reported() {
    if !lvm_available("of_two_copies_the_highest_seqno_wins_and_the_disagreement_is_reported") {
        return;
    }
    let vg = LoopVg::new("mds-copies", 2);
    vg.create_lv("a", "100M");
    let pv = run(
        "pvs",
        &[
            "--noheadings",
            "-o",
            "pv_name",
            "-S",
            &format!("vg_name={}", vg.name),
        ],
    )
    .trim()
    .to_string();
    let uuid = run("pvs", &["--noheadings", "-o", "pv_uuid", &pv])
        .trim()
        .replace('-', "");
    // A stale copy of the PV, taken before the VG changed.
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.img");
    run(
        "dd",
        &[
            &format!("if={pv}"),
            &format!("of={}", stale.display()),
            "bs=1M",
            "count=1",
            "status=none",
        ],
    );
    vg.create_lv("b", "100M");
    let row = |device: String| PvRow {
        vg: vg.name.clone(),
        device,
        uuid: uuid.clone(),
    };
    let rows = [row(stale.display().to_string()), row(pv.clone())];
    let read = read_vg(&vg.name, &rows, &VgCache::default()).expect("read");
    let names: Vec<&str> = read
        .metadata
        .lvs
        .iter()
        .map(|lv| lv.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b"], "the newer copy wins");
    let copies = read.disagreement.expect("the copies disagree");
    assert_eq!(copies.len(), 2);
    assert!(copies[0].1 < copies[1].1, "{copies:?}");
    assert!(read.parsed);
    // The same state again: nothing parsed, the VG reused.
    let again = read_vg(&vg.name, &rows, &read.cache).expect("read again");
    assert!(!again.parsed);
    assert_eq!(again.metadata, read.metadata);
}

/// A VG on two loop devices, the second PV without a metadata area (`--metadatacopies 0`: only
/// the first PV's metadata lists it), an LV spanning both, and a third loop device with no LVM
/// label at all.
struct TwoPvVg {
    name: String,
    pvs: Vec<String>,
    blank: String,
    _dir: tempfile::TempDir,
}

impl TwoPvVg {
    fn new(tag: &str) -> Self {
        Self::with_copies(tag, "0")
    }

    /// Like [`TwoPvVg::new`], the second PV with `metadatacopies` metadata areas.
    fn with_copies(tag: &str, metadatacopies: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let attach = |file: &str| {
            let image = dir.path().join(file);
            std::fs::File::create(&image)
                .unwrap()
                .set_len(1 << 30)
                .unwrap();
            run("losetup", &["-f", "--show", image.to_str().unwrap()])
                .trim()
                .to_string()
        };
        let pvs = vec![attach("pv0.img"), attach("pv1.img")];
        let blank = attach("blank.img");
        let vg = TwoPvVg {
            name: format!("nle-{tag}-{}", std::process::id()),
            pvs,
            blank,
            _dir: dir,
        };
        run("pvcreate", &["-q", &vg.pvs[0]]);
        run(
            "pvcreate",
            &["-q", "--metadatacopies", metadatacopies, &vg.pvs[1]],
        );
        run("vgcreate", &["-q", &vg.name, &vg.pvs[0], &vg.pvs[1]]);
        run(
            "lvcreate",
            &[
                "-q",
                "--config",
                "global{activation=0}",
                "-an",
                "-Zn",
                "-L",
                "1500M",
                "-n",
                "spanning",
                &vg.name,
            ],
        );
        vg
    }
}

impl Drop for TwoPvVg {
    fn drop(&mut self) {
        for device in self.pvs.iter().chain([&self.blank]) {
            remove_loop_vg(&self.name, device);
        }
    }
}

#[test]
fn the_pvs_are_found_by_their_labels_where_lvm_cannot_run() {
    if !lvm_available("the_pvs_are_found_by_their_labels_where_lvm_cannot_run") {
        return;
    }
    let vg = TwoPvVg::new("mds-scan");
    let rt = runtime();
    let exec = collector_of(Box::new(command(Path::new(LVM), &[])), &vg.name);
    let expected = comparable(&render(&rt.block_on(exec.collect())));
    assert!(expected.contains("lv=\"spanning\""), "{expected}");
    let no_lvm = Path::new("/nonexistent/sbin/lvm");
    let listed = |devices: &[&String]| {
        let source = MetadataSource::new(command(no_lvm, &[]))
            .with_devices(devices.iter().map(PathBuf::from).collect());
        collector_of(Box::new(source), &vg.name)
    };

    // Every PV listed (the one without metadata too), and a device that is no PV.
    let all = listed(&[&vg.blank, &vg.pvs[1], &vg.pvs[0]]);
    for _ in 0..2 {
        let snapshot = rt.block_on(all.collect());
        assert!(snapshot.collectors[0].success, "{:?}", snapshot.collectors);
        assert_eq!(
            method_of(&snapshot.raw_methods, &vg.name),
            ("metadata".into(), "ok".into())
        );
        assert_eq!(comparable(&render(&snapshot)), expected);
    }

    // One PV missing: the VG is refused with the missing PV's UUID, never shown partly.
    let missing = run("pvs", &["--noheadings", "-o", "pv_uuid", &vg.pvs[1]])
        .trim()
        .replace('-', "");
    let partial = listed(&[&vg.pvs[0], &vg.blank]);
    for _ in 0..2 {
        let snapshot = rt.block_on(partial.collect());
        let lvm = &snapshot.collectors[0];
        assert!(!lvm.success);
        let error = lvm.error_text().unwrap_or_default();
        assert!(
            error.contains(&missing) && error.contains("missing_pv"),
            "{error}"
        );
        assert_eq!(
            method_of(&snapshot.raw_methods, &vg.name),
            ("none".into(), "missing_pv".into())
        );
        let text = render(&snapshot);
        assert!(
            text.contains(&format!(
                "nova_lvm_raw_source_info{{method=\"none\",reason=\"missing_pv\",vg=\"{}\"}} 1",
                vg.name
            )),
            "{text}"
        );
        assert!(!text.contains("nova_lvm_vg_size_bytes{"), "{text}");
    }

    // No list and no lvm: the block devices the kernel lists are scanned.
    let scanning = collector_of(
        Box::new(MetadataSource::new(command(no_lvm, &[]))),
        &vg.name,
    );
    for _ in 0..2 {
        let snapshot = rt.block_on(scanning.collect());
        assert!(snapshot.collectors[0].success, "{:?}", snapshot.collectors);
        assert_eq!(
            method_of(&snapshot.raw_methods, &vg.name),
            ("metadata".into(), "ok".into())
        );
        assert_eq!(comparable(&render(&snapshot)), expected);
    }

    // The flags, through the binary: report's JSON says how the VG was (not) read.
    let dir = tempfile::tempdir().unwrap();
    let nova_conf = dir.path().join("nova.conf");
    std::fs::write(
        &nova_conf,
        format!(
            "[DEFAULT]\nhost = compute-test\n[libvirt]\nimages_type = lvm\nimages_volume_group = {}\n",
            vg.name
        ),
    )
    .unwrap();
    let report = |devices: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
            .args([
                "report",
                "--format",
                "json",
                "--no-collector.libvirt",
                &format!("--nova.config-file={}", nova_conf.display()),
                &format!("--collector.lvm.lvm-path={}", no_lvm.display()),
                &format!("--collector.lvm.devices={devices}"),
            ])
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
        json
    };
    let complete = report(&format!("{},{}", vg.pvs[0], vg.pvs[1]));
    assert_eq!(complete["complete"], true, "{complete}");
    assert_eq!(complete["raw_methods"][0]["method"], "metadata");
    assert_eq!(
        complete["raw_source"],
        format!(
            "the LVM labels and metadata of {}, {} (no LVM run); vg {} read by metadata (ok)",
            vg.pvs[0], vg.pvs[1], vg.name
        )
    );
    assert_eq!(complete["vgs"][0]["used_bytes"], 1500u64 << 20);
    let incomplete = report(&format!("{},{}", vg.pvs[0], vg.blank));
    assert_eq!(incomplete["complete"], false, "{incomplete}");
    assert_eq!(
        incomplete["raw_methods"][0],
        serde_json::json!({"vg": vg.name, "method": "none", "reason": "missing_pv"})
    );

    // A listed device joins the VG: the next collection sees the metadata list a PV it did not
    // know, scans again and reads the grown VG at once.
    run("pvcreate", &["-q", &vg.blank]);
    run("vgextend", &["-q", &vg.name, &vg.blank]);
    let grown = rt.block_on(all.collect());
    assert!(grown.collectors[0].success, "{:?}", grown.collectors);
    assert_eq!(
        comparable(&render(&grown)),
        comparable(&render(&rt.block_on(exec.collect())))
    );
    assert_ne!(comparable(&render(&grown)), expected, "the VG grew");
}

/// The device of `vg`'s only (or first) PV, as `pvs` names it (asked again for a few seconds
/// while `pvs` does not list it yet).
fn pv_of(vg: &str) -> String {
    for _ in 0..50 {
        let listed = run(
            "pvs",
            &[
                "--noheadings",
                "-o",
                "pv_name",
                "-S",
                &format!("vg_name={vg}"),
            ],
        );
        // LVM prints "Retrying metadata scan." among the rows while another test's VG is corrupt.
        let device = listed
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with('/'))
            .unwrap_or_default()
            .to_string();
        if !device.is_empty() {
            return device;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("pvs lists no PV of {vg}");
}

/// The row LVM's PV list gives for `device` of `vg`.
fn row_of(vg: &str, device: &str) -> PvRow {
    PvRow {
        vg: vg.to_string(),
        device: device.to_string(),
        uuid: run("pvs", &["--noheadings", "-o", "pv_uuid", device])
            .lines()
            .map(str::trim)
            .rfind(|line| line.len() == 38)
            .unwrap_or_default()
            .replace('-', ""),
    }
}

/// The committed metadata text of the first metadata area of `device` (a PV or a PV image).
fn committed_text(device: &Path) -> String {
    let read = read_pv(device).expect("a PV");
    read.contents.mdas[0]
        .result
        .as_ref()
        .expect("a readable text")
        .text
        .to_string()
}

/// Writes `text` as the committed metadata text of the first metadata area of `device` as LVM
/// commits: the text first, after the current one in the area, then the header sector pointing
/// at it, both checksums sealed (an LVM scanning meanwhile sees the old text or the new one,
/// whole); `edit_header` may change the header sector before it is sealed.
fn write_committed_text(device: &Path, text: &str, edit_header: impl Fn(&mut [u8])) {
    use std::os::unix::fs::FileExt;
    let area = read_pv(device).expect("a PV").contents.label.metadata_areas[0];
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .unwrap();
    let mut header = vec![0u8; 512];
    file.read_exact_at(&mut header, area.offset).unwrap();
    let field = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap());
    let (old_offset, old_size) = (field(40), field(48));
    let offset = (old_offset + old_size).next_multiple_of(512);
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    assert!(
        offset + bytes.len() as u64 <= area.size,
        "the test's texts fit in the area without wrapping"
    );
    file.write_all_at(&bytes, area.offset + offset).unwrap();
    file.sync_all().unwrap();
    header[40..48].copy_from_slice(&offset.to_le_bytes());
    header[48..56].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    header[56..60].copy_from_slice(&calc_crc(INITIAL_CRC, &bytes).to_le_bytes());
    edit_header(&mut header);
    let sealed = calc_crc(INITIAL_CRC, &header[4..]);
    header[..4].copy_from_slice(&sealed.to_le_bytes());
    file.write_all_at(&header, area.offset).unwrap();
    file.sync_all().unwrap();
}

/// Writes `text` over the committed metadata text of `device`'s first metadata area, in place,
/// the header untouched (a text of the same size and CRC, as [`same_crc`] makes).
fn overwrite_text_in_place(device: &Path, text: &str) {
    use std::os::unix::fs::FileExt;
    let area = read_pv(device).expect("a PV").contents.label.metadata_areas[0];
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .unwrap();
    let mut offset = [0u8; 8];
    file.read_exact_at(&mut offset, area.offset + 40).unwrap();
    file.write_all_at(text.as_bytes(), area.offset + u64::from_le_bytes(offset))
        .unwrap();
    file.sync_all().unwrap();
}

/// `edited` with four bytes of a comment (after the `# ` of `creation_host`) chosen so that
/// its LVM checksum (with the terminating NUL) is `original`'s: other bytes under the same CRC,
/// as a forger would write them. Comments are ignored by LVM and the reader alike.
fn same_crc(original: &str, edited: &str) -> String {
    let crc = |bytes: &[u8]| {
        let mut with_nul = bytes.to_vec();
        with_nul.push(0);
        calc_crc(INITIAL_CRC, &with_nul)
    };
    let target = crc(original.as_bytes());
    let comment = edited.find("creation_host").unwrap()
        + edited[edited.find("creation_host").unwrap()..]
            .find("# ")
            .expect("a comment after creation_host")
        + 2;
    // Each bit of the four bytes flips the CRC by a fixed vector, whatever the other bytes (the
    // CRC is affine): solve once for the bits that flip each CRC bit (Gauss-Jordan over GF(2)).
    let base = crc(edited.as_bytes());
    let mut rows: Vec<(u32, u32)> = (0..32)
        .map(|bit| {
            let mut flipped = edited.as_bytes().to_vec();
            flipped[comment + bit / 8] ^= 1 << (bit % 8);
            (crc(&flipped) ^ base, 1u32 << bit)
        })
        .collect();
    for pivot in 0..32 {
        let at = (pivot..32)
            .find(|&i| rows[i].0 & (1 << pivot) != 0)
            .expect("32 bits in a row reach every CRC bit");
        rows.swap(pivot, at);
        for i in 0..32 {
            if i != pivot && rows[i].0 & (1 << pivot) != 0 {
                rows[i].0 ^= rows[pivot].0;
                rows[i].1 ^= rows[pivot].1;
            }
        }
    }
    for attempt in 0..10_000u32 {
        let mut bytes = edited.as_bytes().to_vec();
        // Two more bytes vary between attempts until the four solved for are printable.
        bytes[comment + 4] = b'a' + (attempt % 26) as u8;
        bytes[comment + 5] = b'a' + (attempt / 26 % 26) as u8;
        let want = crc(&bytes) ^ target;
        let choice = rows
            .iter()
            .enumerate()
            .filter(|(pivot, _)| want & (1 << pivot) != 0)
            .fold(0u32, |choice, (_, row)| choice ^ row.1);
        for bit in 0..32 {
            if choice & (1 << bit) != 0 {
                bytes[comment + bit / 8] ^= 1 << (bit % 8);
            }
        }
        let printable = bytes[comment..comment + 4]
            .iter()
            .all(|b| (0x20..0x7f).contains(b));
        if printable && crc(&bytes) == target {
            return String::from_utf8(bytes).unwrap();
        }
    }
    panic!("no printable comment gives the same CRC");
}

#[test]
fn the_newest_copy_is_chosen_by_the_seqno_of_the_parsed_vg_section() {
    if !lvm_available("the_newest_copy_is_chosen_by_the_seqno_of_the_parsed_vg_section") {
        return;
    }
    let vg = LoopVg::new("mds-seqno", 2);
    vg.create_lv("a", "100M");
    let pv = pv_of(&vg.name);
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.img");
    run(
        "dd",
        &[
            &format!("if={pv}"),
            &format!("of={}", stale.display()),
            "bs=1M",
            "count=1",
            "status=none",
        ],
    );
    vg.create_lv("b", "100M");
    // The stale copy gains a string holding a line that looks like a far higher seqno.
    let old = committed_text(&stale);
    write_committed_text(
        &stale,
        &format!("comment = \"x\nseqno = 99999\n\"\n{old}"),
        |_| {},
    );
    let row = row_of(&vg.name, &pv);
    let rows = [
        PvRow {
            device: stale.display().to_string(),
            ..row.clone()
        },
        row.clone(),
    ];
    let read = read_vg(&vg.name, &rows, &VgCache::default()).expect("read");
    let names: Vec<&str> = read
        .metadata
        .lvs
        .iter()
        .map(|lv| lv.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["a", "b"],
        "the copy with the higher real seqno wins"
    );

    // A key that merely starts with "seqno" is another key, for LVM and the reader.
    let text = committed_text(Path::new(&pv));
    let id_line = text.find("\nseqno = ").expect("the VG's seqno line");
    let with_key = format!("{}\nseqnox = 1{}", &text[..id_line], &text[id_line..]);
    write_committed_text(Path::new(&pv), &with_key, |_| {});
    run("vgs", &[&vg.name]);
    let read = read_vg(&vg.name, &[row], &VgCache::default()).expect("a key seqnox is no seqno");
    assert_eq!(read.metadata.lvs.len(), 2);
}

#[test]
fn a_cached_parse_is_reused_only_for_the_same_bytes() {
    if !lvm_available("a_cached_parse_is_reused_only_for_the_same_bytes") {
        return;
    }
    let vg = LoopVg::new("mds-cache", 2);
    vg.create_lv("a", "100M");
    let pv = pv_of(&vg.name);
    let rows = [row_of(&vg.name, &pv)];
    let first = read_vg(&vg.name, &rows, &VgCache::default()).expect("read");
    assert_eq!(first.metadata.lvs[0].size_bytes, 100 << 20);

    // Other bytes under the same offset, size and CRC: the LV is 26 extents now.
    let text = committed_text(Path::new(&pv));
    assert_eq!(text.matches("extent_count = 25").count(), 1, "{text}");
    let forged = same_crc(
        &text,
        &text.replace("extent_count = 25", "extent_count = 26"),
    );
    assert_ne!(forged, text);
    overwrite_text_in_place(Path::new(&pv), &forged);
    let lvm_size = run(
        "lvs",
        &[
            "--noheadings",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            "lv_size",
            &format!("{}/a", vg.name),
        ],
    );
    assert_eq!(lvm_size.trim(), (104u64 << 20).to_string());
    let again = read_vg(&vg.name, &rows, &first.cache).expect("read again");
    assert!(again.parsed, "other bytes are parsed again");
    assert_eq!(again.metadata.lvs[0].size_bytes, 104 << 20);

    // The header's area shrinks below the text (in a copy of the PV: LVM scanning a broken
    // header would disturb the other tests): refused on the next read, cache or not.
    let dir = tempfile::tempdir().unwrap();
    let copy = copy_of_pv(&pv, dir.path());
    let copied = [PvRow {
        device: copy.display().to_string(),
        ..rows[0].clone()
    }];
    let same = read_vg(&vg.name, &copied, &again.cache).expect("unchanged");
    assert!(!same.parsed, "the same bytes are reused");
    write_committed_text(&copy, &committed_text(&copy), |header| {
        header[32..40].copy_from_slice(&1024u64.to_le_bytes())
    });
    let refused = read_vg(&vg.name, &copied, &same.cache).unwrap_err();
    assert_eq!(refused.reason.token(), "malformed", "{}", refused.message);
}

/// A copy of the first MiB of `pv` (its label and metadata area) in `dir`.
fn copy_of_pv(pv: &str, dir: &Path) -> PathBuf {
    let copy = dir.join("copy.img");
    run(
        "dd",
        &[
            &format!("if={pv}"),
            &format!("of={}", copy.display()),
            "bs=1M",
            "count=1",
            "status=none",
        ],
    );
    copy
}

#[test]
fn a_missing_pv_is_never_opened_by_a_name_from_lvm_or_the_metadata() {
    if !lvm_available("a_missing_pv_is_never_opened_by_a_name_from_lvm_or_the_metadata") {
        return;
    }
    let vg = TwoPvVg::new("mds-missing");
    let image = vg._dir.path().join("pv1.img");
    // The working directory holds a file called `[unknown]`: the missing PV's own label.
    let cwd = tempfile::tempdir().unwrap();
    run(
        "dd",
        &[
            &format!("if={}", image.display()),
            &format!("of={}", cwd.path().join("[unknown]").display()),
            "bs=1M",
            "count=1",
            "status=none",
        ],
    );
    run("losetup", &["-d", &vg.pvs[1]]);
    let nova_conf = cwd.path().join("nova.conf");
    std::fs::write(
        &nova_conf,
        format!(
            "[DEFAULT]\nhost = compute-test\n[libvirt]\nimages_type = lvm\nimages_volume_group = {}\n",
            vg.name
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .current_dir(cwd.path())
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .args([
            "report",
            "--format",
            "json",
            "--no-collector.libvirt",
            &format!("--nova.config-file={}", nova_conf.display()),
        ])
        .output()
        .unwrap();
    // Attached again for the clean-up.
    run("losetup", &[&vg.pvs[1], image.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(
        json["raw_methods"][0],
        serde_json::json!({"vg": vg.name, "method": "exec", "reason": "missing_pv"}),
        "{json}"
    );
}

/// Flips one byte of the newest metadata text on `device` (its checksum then fails), returning
/// a closure that flips it back.
fn flip_text_byte(device: &Path, vg: &str) -> impl Fn() {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .unwrap_or_else(|e| panic!("{device:?}: {e}"));
    let mut head = vec![0u8; 1 << 20];
    file.read_exact_at(&mut head, 0).unwrap();
    let at = last_occurrence(&head, vg.as_bytes()).expect("the VG name in the metadata text");
    let flip = move || {
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, at as u64).unwrap();
        file.write_all_at(&[byte[0] ^ 0x20], at as u64).unwrap();
        file.sync_all().unwrap();
    };
    flip();
    flip
}

#[test]
fn when_the_fallback_fails_the_same_collection_says_so() {
    if !lvm_available("when_the_fallback_fails_the_same_collection_says_so") {
        return;
    }
    let vg = LoopVg::new("mds-execfail", 2);
    vg.create_lv("a", "100M");
    let rt = runtime();
    // An lvm that names a copy of the PV (corrupted below without disturbing LVM's own scans)
    // and that prints no JSON while `broken` exists.
    let dir = tempfile::tempdir().unwrap();
    let copy = copy_of_pv(&pv_of(&vg.name), dir.path());
    let broken = dir.path().join("broken");
    let script = dir.path().join("lvm");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ -e {} ]; then echo garbage; exit 0; fi\n{LVM} \"$@\" | sed -e 's|\"pv_name\":\"[^\"]*\"|\"pv_name\":\"{}\"|g'\n",
            broken.display(),
            copy.display()
        ),
    )
    .unwrap();
    run("chmod", &["755", script.to_str().unwrap()]);
    let collector = collector_of(
        Box::new(MetadataSource::new(command(&script, &[]))),
        &vg.name,
    );
    let first = rt.block_on(collector.collect());
    assert_eq!(
        method_of(&first.raw_methods, &vg.name),
        ("metadata".into(), "ok".into()),
        "{:?}",
        first.collectors
    );
    // The text's checksum fails, the VG falls back, and the fallback fails too.
    let flip_back = flip_text_byte(&copy, &vg.name);
    std::fs::write(&broken, "").unwrap();
    let failed = rt.block_on(collector.collect());
    assert!(!failed.collectors[0].success, "{:?}", failed.collectors);
    assert_eq!(
        method_of(&failed.raw_methods, &vg.name),
        ("none".into(), "exec_failed".into())
    );
    let text = render(&failed);
    assert!(
        text.contains(&format!(
            "nova_lvm_raw_source_info{{method=\"none\",reason=\"exec_failed\",vg=\"{}\"}} 1",
            vg.name
        )) && !text.contains("method=\"metadata\""),
        "{text}"
    );
    // Both healthy again: read from the metadata, said by the same collection.
    flip_back();
    std::fs::remove_file(&broken).unwrap();
    let healthy = rt.block_on(collector.collect());
    assert!(healthy.collectors[0].success, "{:?}", healthy.collectors);
    assert_eq!(
        method_of(&healthy.raw_methods, &vg.name),
        ("metadata".into(), "ok".into())
    );
}

#[test]
fn label_scan_vgs_say_their_true_reason_on_every_collection() {
    if !lvm_available("label_scan_vgs_say_their_true_reason_on_every_collection") {
        return;
    }
    let vg = LoopVg::new("mds-scanwhy", 2);
    vg.create_lv("a", "100M");
    let pv = pv_of(&vg.name);
    // Copies of the PV are corrupted (LVM's own scans of the loop devices stay undisturbed).
    let dir = tempfile::tempdir().unwrap();
    let copy = copy_of_pv(&pv, dir.path());
    let rt = runtime();
    let no_lvm = Path::new("/nonexistent/sbin/lvm");
    let scanning = |devices: &[&Path]| {
        let source = MetadataSource::new(command(no_lvm, &[]))
            .with_devices(devices.iter().map(PathBuf::from).collect());
        collector_of(Box::new(source), &vg.name)
    };
    let reasons = |collector: &SnapshotCollector| -> Vec<(String, String)> {
        (0..2)
            .map(|_| method_of(&rt.block_on(collector.collect()).raw_methods, &vg.name))
            .collect()
    };
    let none = |reason: &str| vec![("none".to_string(), reason.to_string()); 2];

    let flip_back = flip_text_byte(&copy, &vg.name);
    assert_eq!(reasons(&scanning(&[&copy])), none("checksum"));
    flip_back();
    assert_eq!(
        reasons(&scanning(&[&copy])),
        vec![("metadata".to_string(), "ok".to_string()); 2]
    );

    // A text with a good checksum that does not parse.
    let text = committed_text(&copy);
    write_committed_text(&copy, &text.replacen(" {\n", " {{\n", 1), |_| {});
    assert_eq!(reasons(&scanning(&[&copy])), none("malformed"));
    write_committed_text(&copy, &text, |_| {});

    // The PV twice: its device and a copy.
    assert_eq!(
        reasons(&scanning(&[Path::new(&pv), &copy])),
        none("duplicate_pv")
    );
}

/// The exporter's flags for `vg` as nova's VG (no libvirt), plus `extra`; the nova.conf in `dir`.
fn exporter_args(vg: &str, dir: &Path, extra: &[String]) -> Vec<String> {
    let nova_conf = dir.join("nova.conf");
    std::fs::write(
        &nova_conf,
        format!(
            "[DEFAULT]\nhost = compute-test\n[libvirt]\nimages_type = lvm\nimages_volume_group = {vg}\n"
        ),
    )
    .unwrap();
    let mut args = vec![
        "--no-collector.libvirt".to_string(),
        format!("--nova.config-file={}", nova_conf.display()),
    ];
    args.extend(extra.iter().cloned());
    args
}

#[test]
fn each_new_reason_is_logged_once_and_commits_in_flight_not_at_all() {
    if !lvm_available("each_new_reason_is_logged_once_and_commits_in_flight_not_at_all") {
        return;
    }
    // A malformed text where LVM cannot run: logged as malformed, once.
    let vg = LoopVg::new("mds-logonce", 2);
    vg.create_lv("a", "100M");
    let dir = tempfile::tempdir().unwrap();
    let copy = copy_of_pv(&pv_of(&vg.name), dir.path());
    let text = committed_text(&copy);
    write_committed_text(&copy, &text.replacen(" {\n", " {{\n", 1), |_| {});
    let exporter = Exporter::start(&exporter_args(
        &vg.name,
        dir.path(),
        &[
            "--collector.lvm.lvm-path=/nonexistent/sbin/lvm".to_string(),
            format!("--collector.lvm.devices={}", copy.display()),
        ],
    ));
    for _ in 0..3 {
        let (status, body) = common::get(exporter.port, "/metrics").unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("reason=\"malformed\""), "{body}");
    }
    let log = exporter.log();
    let logged: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("reason=malformed") && line.contains(&vg.name))
        .collect();
    assert_eq!(logged.len(), 1, "{log}");
    drop(exporter);

    // Normal commits on a VG with a metadata copy on each of two PVs, scraped all along: the
    // copies disagree only while a commit is in flight, which is no problem to log.
    let two = TwoPvVg::with_copies("mds-inflight", "1");
    let exporter = Exporter::start(&exporter_args(&two.name, dir.path(), &[]));
    let port = exporter.port;
    let done = std::sync::atomic::AtomicBool::new(false);
    let scrapes = std::thread::scope(|scope| {
        let scraper = scope.spawn(|| {
            let mut scrapes = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, body) = common::get(port, "/metrics").unwrap();
                assert_eq!(status, 200, "{body}");
                scrapes += 1;
            }
            scrapes
        });
        for i in 0..15 {
            let lv = format!("l{i}");
            run(
                "lvcreate",
                &[
                    "-q",
                    "--config",
                    "global{activation=0}",
                    "-an",
                    "-Zn",
                    "-L",
                    "8M",
                    "-n",
                    &lv,
                    &two.name,
                ],
            );
            run(
                "lvremove",
                &[
                    "-q",
                    "-f",
                    "--config",
                    "global{activation=0}",
                    &format!("{}/{lv}", two.name),
                ],
            );
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        scraper.join().unwrap()
    });
    assert!(scrapes > 10, "{scrapes} scrapes");
    let log = exporter.log();
    assert!(!log.contains("disagree"), "{scrapes} scrapes:\n{log}");
}
