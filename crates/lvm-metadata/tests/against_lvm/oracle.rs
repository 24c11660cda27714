//! The oracle: what LVM itself reports of a VG, `lvm fullreport` as JSON mapped onto this
//! crate's model ([`Vg`], [`Lv`]) by a parser of its own, independent of the crate and of any
//! caller's report parser. It asks for the fields the model holds and nothing else.

use std::path::Path;
use std::process::{Command, Stdio};

use lvm_metadata::{Lv, Vg};
use serde_json::Value;

/// Turns off LVM's command log section (LVM 2.03.16 prints it as invalid JSON) and the check of
/// LVM's metadata backup file; prints `lv_time` as seconds since the epoch.
pub const REPORT_CONFIG: &str = "log{report_command_log=0}backup{backup=0}report{time_format=%s}";

/// The arguments of `lvm` for a fullreport of `vg` with the model's fields; every LV, hidden
/// ones included (`-a`).
pub fn fullreport_args(vg: &str) -> Vec<String> {
    [
        "fullreport",
        "-a",
        "--config",
        REPORT_CONFIG,
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "--configreport",
        "vg",
        "-o",
        "vg_name,vg_size,vg_free,vg_extent_size",
        "--configreport",
        "lv",
        "-o",
        "lv_name,lv_size,lv_attr,pool_lv,lv_parent,data_percent,metadata_percent,lv_time,lv_tags,lv_uuid",
        "--configreport",
        "seg",
        "-o",
        "lv_uuid,segtype",
        "--configreport",
        "pv",
        "-o",
        "pv_uuid",
        "--configreport",
        "pvseg",
        "-o",
        "pvseg_start",
        "--",
        vg,
    ]
    .map(str::to_string)
    .to_vec()
}

/// What `lvm fullreport` says of `vg`: the VG and its LVs, sorted by name. `lvm_system_dir`,
/// when given, is the directory of the `lvm.conf` LVM reads.
pub fn lvm_reports(vg: &str, lvm_system_dir: Option<&Path>) -> (Vg, Vec<Lv>) {
    let mut command = Command::new("lvm");
    command
        .args(fullreport_args(vg))
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    if let Some(dir) = lvm_system_dir {
        command.env("LVM_SYSTEM_DIR", dir);
    }
    let output = command.output().expect("run lvm");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "lvm fullreport failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    parse_fullreport(&stdout, vg)
}

/// The text of LVM's JSON output without the notices LVM prints among its JSON lines
/// ("Retrying metadata scan." when the metadata changed while it was read, for one): LVM puts
/// every JSON token that starts a line at the line's start (a fullreport's `,` between
/// sub-reports too).
pub fn json_lines(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|line| {
            line.trim_start()
                .starts_with(['{', '}', '[', ']', '"', ','])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A report field as a string ("" when absent).
pub fn field<'a>(row: &'a Value, name: &str) -> &'a str {
    row[name].as_str().unwrap_or("")
}

/// A report field in bytes.
fn bytes(row: &Value, name: &str) -> u64 {
    field(row, name)
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {:?}: {e}", field(row, name)))
}

/// `[pool_tdata]` -> (`pool_tdata`, true): LVM brackets the names of hidden LVs.
fn without_brackets(name: &str) -> (&str, bool) {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(inner) => (inner, true),
        None => (name, false),
    }
}

/// A percentage field as a ratio; `None` when LVM leaves it empty.
fn ratio(row: &Value, name: &str) -> Option<f64> {
    let raw = field(row, name);
    (!raw.is_empty()).then(|| {
        raw.parse::<f64>()
            .unwrap_or_else(|e| panic!("{name}: {raw:?}: {e}"))
            / 100.0
    })
}

/// Parses a fullreport of the one VG `vg` into the model.
pub fn parse_fullreport(stdout: &str, vg: &str) -> (Vg, Vec<Lv>) {
    let json: Value = serde_json::from_str(&json_lines(stdout))
        .unwrap_or_else(|e| panic!("fullreport is JSON ({e}): {stdout}"));
    let elements = json["report"].as_array().expect("a report array");
    assert_eq!(elements.len(), 1, "one report element for one VG");
    let element = &elements[0];
    let vg_rows = element["vg"].as_array().expect("a vg section");
    assert_eq!(vg_rows.len(), 1, "one vg row");
    let vg_row = &vg_rows[0];
    assert_eq!(field(vg_row, "vg_name"), vg);
    let figures = Vg {
        name: vg.to_string(),
        size_bytes: bytes(vg_row, "vg_size"),
        free_bytes: bytes(vg_row, "vg_free"),
        extent_size_bytes: bytes(vg_row, "vg_extent_size"),
    };
    let segments = element["seg"].as_array().cloned().unwrap_or_default();
    let mut lvs: Vec<Lv> = element["lv"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|row| {
            let (name, hidden) = without_brackets(field(row, "lv_name"));
            let uuid = field(row, "lv_uuid");
            // An LV's segment type is in its first `seg` row.
            let segtype = segments
                .iter()
                .find(|seg| field(seg, "lv_uuid") == uuid)
                .map(|seg| field(seg, "segtype"))
                .unwrap_or("");
            let time = field(row, "lv_time");
            Lv {
                vg: vg.to_string(),
                name: name.to_string(),
                hidden,
                size_bytes: bytes(row, "lv_size"),
                attr: field(row, "lv_attr").to_string(),
                segtype: segtype.to_string(),
                pool_lv: without_brackets(field(row, "pool_lv")).0.to_string(),
                parent: without_brackets(field(row, "lv_parent")).0.to_string(),
                data_used_ratio: ratio(row, "data_percent"),
                metadata_used_ratio: ratio(row, "metadata_percent"),
                creation_unix: (!time.is_empty()).then(|| {
                    time.parse()
                        .unwrap_or_else(|e| panic!("lv_time {time:?}: {e}"))
                }),
                tags: field(row, "lv_tags")
                    .split(',')
                    .filter(|tag| !tag.is_empty())
                    .map(str::to_string)
                    .collect(),
            }
        })
        .collect();
    lvs.sort_by(|a, b| a.name.cmp(&b.name));
    (figures, lvs)
}
