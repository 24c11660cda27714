//! Hostile inputs against the release paths of `report` and `check` (issue 12, the parser and
//! accounting classes): deeply nested XML, an LV named like the old overflow series, sums that
//! wrap, sizes beyond 2^63, and control characters in names and errors. Each must fail only
//! its own collector, with an error naming the file and the figures, and print safely.
//! No root, LVM or network needed: LVM's report is replayed from a file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed-incident");

/// nova's `db.MAX_INT`, the largest `root_gb`, `ephemeral_gb` and `swap` of a flavor.
const NOVA_MAX_INT: u64 = 2_147_483_647;

/// Runs the exporter with `args` (the replayed LVM report and nova.conf are added).
fn exporter(args: &[&str], replay: &Path, nova_conf: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .args(args)
        .arg(format!("--collector.lvm.replay-file={}", replay.display()))
        .arg(format!("--nova.config-file={}", nova_conf.display()))
        .output()
        .unwrap()
}

fn example(name: &str) -> PathBuf {
    Path::new(EXAMPLE).join(name)
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A replayed LVM report: VG `vms-group` of `size` bytes with `free` free, and `lvs` as
/// (name, bytes) linear LVs.
fn replay_file(dir: &Path, size: &str, free: &str, lvs: &[(&str, u64)]) -> PathBuf {
    let rows: Vec<String> = lvs
        .iter()
        .map(|(name, bytes)| {
            format!(
                r#"{{"vg_name":"vms-group","lv_name":{},"lv_size":"{bytes}","lv_attr":"-wi-a-----","segtype":"linear"}}"#,
                serde_json::to_string(name).unwrap()
            )
        })
        .collect();
    let text = format!(
        r#"{{"report":[{{"vg":[{{"vg_name":"vms-group","vg_size":"{size}","vg_free":"{free}","vg_extent_size":"4194304"}}],"lv":[{}]}}]}}"#,
        rows.join(",")
    );
    let path = dir.join("lvm-report.json");
    std::fs::write(&path, text).unwrap();
    path
}

/// The line of `report`'s collector table for `collector`.
fn collector_line<'a>(text: &'a str, collector: &str) -> &'a str {
    text.lines()
        .find(|line| line.trim_start().starts_with(&format!("{collector} ")))
        .unwrap_or_else(|| panic!("no {collector} line in {text}"))
}

/// The issue's reproduction: 5,000 nested elements in a domain XML aborted the process
/// (exit 134). Now the libvirt collector fails alone, naming the file; LVM's figures remain.
#[test]
fn deeply_nested_domain_xml_fails_the_libvirt_collector_only() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("q");
    std::fs::create_dir(&q).unwrap();
    let deep = q.join("b.xml");
    std::fs::write(
        &deep,
        format!(
            r#"<domain type="kvm"><uuid>0f6b2d84-93a1-4e57-8c2f-6a1d9e3b7c40</uuid>{}{}</domain>"#,
            "<a>".repeat(5000),
            "</a>".repeat(5000)
        ),
    )
    .unwrap();
    let xml_dir = format!("--collector.libvirt.xml-dir={}", q.display());
    let output = exporter(
        &["report", &xml_dir],
        &example("lvm-report.json"),
        &example("nova.conf"),
    );
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let libvirt = collector_line(&text, "libvirt");
    assert!(libvirt.contains("FAILED"), "{libvirt}");
    assert!(
        libvirt.contains(&format!(
            "{}: elements nested more than 256 deep (at line 1)",
            deep.display()
        )),
        "{libvirt}"
    );
    assert!(collector_line(&text, "lvm").contains(" ok "), "{text}");
    assert!(text.contains("VG vms-group"), "{text}");

    // `check`: UNKNOWN (the figures need the primary source), one line, no abort.
    let output = exporter(
        &["check", &xml_dir],
        &example("lvm-report.json"),
        &example("nova.conf"),
    );
    let line = stdout(&output);
    assert_eq!(output.status.code(), Some(3), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("nested more than 256 deep"), "{line}");
}

/// An LV named `_other` (LVM allows it) was merged with the overflow series of
/// `--collector.lvm.lv-series-limit`, and `report` said "(2 shown of 0)".
#[test]
fn an_lv_named_other_is_its_own_and_the_counts_are_true() {
    let dir = tempfile::tempdir().unwrap();
    let gib = 1u64 << 30;
    let lvs = [
        ("_other", 5 * gib),
        ("backup", 4 * gib),
        ("scratch", 3 * gib),
        ("tmp", 2 * gib),
    ];
    let replay = replay_file(
        dir.path(),
        &(100 * gib).to_string(),
        &(86 * gib).to_string(),
        &lvs,
    );
    let output = exporter(
        &[
            "report",
            "--collector.lvm.lv-series-limit=1",
            "--no-collector.libvirt",
        ],
        &replay,
        &example("nova.conf"),
    );
    let text = stdout(&output);
    assert!(
        text.contains("Untracked LVs, largest first (1 shown of 4)"),
        "{text}"
    );
    assert!(text.contains("foreign  _other\n"), "{text}");
    assert!(
        text.contains("foreign  (other) (3 LVs beyond the series limit)"),
        "{text}"
    );

    let output = exporter(
        &[
            "report",
            "--format=json",
            "--collector.lvm.lv-series-limit=1",
            "--no-collector.libvirt",
        ],
        &replay,
        &example("nova.conf"),
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let vg = &json["vgs"][0];
    assert_eq!(vg["untracked_lv_count"], 4);
    assert_eq!(vg["top_untracked_lvs"][0]["name"], "_other");
    assert_eq!(vg["top_untracked_lvs"][0]["bytes"], 5 * gib);
    assert_eq!(vg["top_untracked_lvs"][1]["name"], "(other)");
    assert_eq!(vg["top_untracked_lvs"][1]["lvs"], 3);
    assert_eq!(vg["top_untracked_lvs"][1]["bytes"], 9 * gib);
}

/// A domain XML of a flavor at nova's maxima (root, ephemeral and swap at `db.MAX_INT`).
fn largest_domain(uuid: &str) -> String {
    format!(
        r#"<domain type="kvm"><uuid>{uuid}</uuid><metadata><nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1"><nova:flavor name="max"><nova:disk>{NOVA_MAX_INT}</nova:disk><nova:swap>{NOVA_MAX_INT}</nova:swap><nova:ephemeral>{NOVA_MAX_INT}</nova:ephemeral></nova:flavor><nova:root type="image" uuid="x"/></nova:instance></metadata></domain>"#
    )
}

/// Five instances at nova's largest flavor wrapped `tracked_used`. Now the libvirt collector
/// fails, naming the figures, and LVM's figures remain. Each instance books what nova's resource
/// tracker books: (root + ephemeral + swap MiB / 1024, truncated) GiB = 4297064445 GiB.
#[test]
fn five_instances_at_novas_largest_flavor_fail_the_source_not_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("q");
    std::fs::create_dir(&q).unwrap();
    for i in 1..=5 {
        let uuid = format!("00000000-0000-4000-8000-00000000000{i}");
        std::fs::write(q.join(format!("instance-{i}.xml")), largest_domain(&uuid)).unwrap();
    }
    let xml_dir = format!("--collector.libvirt.xml-dir={}", q.display());
    let output = exporter(
        &["report", &xml_dir],
        &example("lvm-report.json"),
        &example("nova.conf"),
    );
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let libvirt = collector_line(&text, "libvirt");
    assert!(
        libvirt.contains("the tracked disk of the 5 instances: more than 9223372036854775807 bytes, beyond the signed 64-bit range (5 figures, the largest 4613937815019847680 bytes)"),
        "{libvirt}"
    );
    assert!(collector_line(&text, "lvm").contains(" ok "), "{text}");
    assert!(
        !text.contains("tracked used      "),
        "no wrapped figure: {text}"
    );
}

/// Replayed sizes of 2^63 and more became negative VG sizes; a `vg_size` smaller than its
/// LVs was accepted. Now the lvm collector fails, naming the figures.
#[test]
fn impossible_lvm_figures_fail_the_lvm_collector() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "9223372036854775808",
            "0",
            vec![],
            r#"vg "vms-group": vg_size: expected a size in bytes below 2^63, got "9223372036854775808""#,
        ),
        (
            "18446744073709551615",
            "0",
            vec![],
            r#"vg "vms-group": vg_size: expected a size in bytes below 2^63, got "18446744073709551615""#,
        ),
        (
            "1073741824",
            "0",
            vec![("a", 1u64 << 31)],
            r#"vg "vms-group": its LVs hold 2147483648 bytes of extents, more than vg_size 1073741824: an inconsistent report"#,
        ),
        (
            "1073741824",
            "2147483648",
            vec![],
            r#"vg "vms-group": vg_free 2147483648 is larger than vg_size 1073741824: an inconsistent report"#,
        ),
    ];
    for (size, free, lvs, expected) in cases {
        let replay = replay_file(dir.path(), size, free, &lvs);
        let output = exporter(
            &["report", "--no-collector.libvirt"],
            &replay,
            &example("nova.conf"),
        );
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "{text}");
        let lvm = collector_line(&text, "lvm");
        assert!(lvm.contains("FAILED") && lvm.contains(expected), "{lvm}");
        assert!(text.contains("No LVM figures"), "{text}");
        assert!(!text.contains("-8589934592"), "{text}");
    }
}

/// Control characters in replayed LV names and in error texts reached the terminal and the
/// Nagios line raw. Since issue 20 such a name is refused where the report is parsed (LVM's
/// name rules): the lvm collector fails, its error shows the name sanitised, and file names in
/// errors are still escaped.
#[test]
fn control_characters_are_escaped_in_report_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let gib = 1u64 << 30;
    let hostile = "x\u{1b}]0;pwned\u{7}\u{1b}[2J\r\nNOVA-LVM OK - all fine | a=1";
    let replay = replay_file(
        dir.path(),
        &(100 * gib).to_string(),
        &(70 * gib).to_string(),
        &[(hostile, 30 * gib)],
    );
    // A domain file whose name carries an escape sequence, and is broken: its error names it.
    let q = dir.path().join("q");
    std::fs::create_dir(&q).unwrap();
    std::fs::write(q.join("evil\u{1b}[31m\r\n.xml"), "<domain").unwrap();
    let xml_dir = format!("--collector.libvirt.xml-dir={}", q.display());
    for args in [
        vec!["report", "--no-collector.libvirt"],
        vec!["report", xml_dir.as_str()],
    ] {
        let output = exporter(&args, &replay, &example("nova.conf"));
        let text = stdout(&output);
        assert!(
            !text.contains(['\u{1b}', '\r', '\u{7}']),
            "{args:?}: {text:?}"
        );
        assert!(
            text.lines().all(|line| !line.starts_with("NOVA-LVM")),
            "{text}"
        );
    }
    let output = exporter(
        &["report", "--no-collector.libvirt"],
        &replay,
        &example("nova.conf"),
    );
    let lvm = collector_line(&stdout(&output), "lvm").to_string();
    assert!(
        lvm.contains("FAILED")
            && lvm.contains(r#"lv "x?]0;pwned??[2J??NOVA-LVM OK - all fine | a=1""#)
            && lvm.contains("lv_name holds byte 0x1b"),
        "{lvm}"
    );
    let output = exporter(&["report", &xml_dir], &replay, &example("nova.conf"));
    assert!(
        stdout(&output).contains(r"evil\u{1b}[31m\r\n.xml: not well-formed XML"),
        "{}",
        stdout(&output)
    );

    // check: one line, whatever the names and errors hold: UNKNOWN (the LVM figures are
    // refused), naming the refused name sanitised or the broken file escaped.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let empty_dir = format!("--collector.libvirt.xml-dir={}", empty.display());
    // The broken domain file beside a valid report, so that its error is the one named.
    let clean_dir = dir.path().join("clean");
    std::fs::create_dir(&clean_dir).unwrap();
    let clean = replay_file(
        &clean_dir,
        &(100 * gib).to_string(),
        &(70 * gib).to_string(),
        &[("plain", 30 * gib)],
    );
    let mut lines = Vec::new();
    for (args, replay) in [
        (
            vec!["check", empty_dir.as_str(), "--warning.untracked=1GiB"],
            &replay,
        ),
        (vec!["check", xml_dir.as_str()], &clean),
    ] {
        let output = exporter(&args, replay, &example("nova.conf"));
        let line = stdout(&output);
        assert_eq!(line.lines().count(), 1, "{args:?}: {line:?}");
        assert!(
            !line.trim_end_matches('\n').chars().any(char::is_control),
            "{args:?}: {line:?}"
        );
        lines.push((output.status.code(), line));
    }
    assert_eq!(lines[0].0, Some(3), "UNKNOWN: {}", lines[0].1);
    assert!(
        lines[0].1.contains("lv_name holds byte 0x1b"),
        "{}",
        lines[0].1
    );
    assert_eq!(lines[1].0, Some(3), "UNKNOWN: {}", lines[1].1);
    assert!(
        lines[1]
            .1
            .contains(r"evil\u{1b}[31m\r\n.xml: not well-formed XML"),
        "{}",
        lines[1].1
    );

    // JSON: no raw control character, and the refused name is no LV of the report.
    let output = exporter(
        &["report", "--format=json", "--no-collector.libvirt"],
        &replay,
        &example("nova.conf"),
    );
    let raw = stdout(&output);
    assert!(!raw.contains(['\u{1b}', '\r', '\u{7}']), "{raw:?}");
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert!(!raw.contains(hostile), "{raw:?}");
    assert_eq!(json["vgs"].as_array().map_or(0, Vec::len), 0, "{raw}");
}

/// The web configuration is YAML, whose depth is checked before libyaml sees it (libyaml does
/// not recurse, but its time grows with the square of the depth: 200,000 levels took seconds).
/// 100,000 nested flow sequences or mappings are an error naming the file, the line and column
/// where the bound was crossed, at once and on a 2 MiB stack.
#[test]
fn deep_yaml_in_the_web_config_is_an_error_not_a_stack_overflow() {
    let levels = 100_000;
    for (text, expected) in [
        (
            format!(
                "basic_auth_users: {}1{}",
                "[".repeat(levels),
                "]".repeat(levels)
            ),
            "web.yml: line 1, column 34: nested more than 16 levels deep",
        ),
        (
            format!(
                "tls_server_config: {}1{}",
                "{a: ".repeat(levels),
                "}".repeat(levels)
            ),
            "web.yml: line 1, column 80: nested more than 16 levels deep",
        ),
    ] {
        let message = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                nova_lvm_exporter::web::config::parse(&text, "web.yml", Path::new("/nonexistent"))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .unwrap()
            .join()
            .unwrap()
            .unwrap_err();
        assert!(message.starts_with(expected), "{message}");
    }
}
