//! The exporter's metadata source (`lvm::metadata::source::read_vg`) on real PVs whose metadata
//! LVM refuses: each is a `malformed` fallback, never figures, and the exec path's report parser
//! refuses what LVM itself reads but the exporter must not print. The reader against LVM itself
//! (every VG shape, the device reads, the differential strictness test) is the `lvm-metadata`
//! crate's own test, `crates/lvm-metadata/tests/against_lvm/`.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{lvm_available, remove_loop_vg, run};
use lvm_metadata::crc::{calc_crc, INITIAL_CRC};
use lvm_metadata::device::read_pv;
use nova_lvm_exporter::lvm::metadata::source::{read_vg, Reason, VgCache};
use nova_lvm_exporter::lvm::report::{parse, PvRow};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Two PVs of one VG whose metadata the test rewrites at will: the same text, with a correct
/// header and checksum, into every metadata area of both PVs, so that LVM and the reader both
/// see it as the VG's only copy.
struct TwoPvVg {
    devices: [String; 2],
    uuids: [String; 2],
    vg: String,
    _dir: tempfile::TempDir,
}

impl TwoPvVg {
    fn new(size_mib: u64, pvcreate_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let devices = [0, 1].map(|i| {
            let image = dir.path().join(format!("pv{i}.img"));
            std::fs::File::create(&image)
                .and_then(|f| f.set_len(size_mib << 20))
                .expect("sparse image");
            run("losetup", &["-f", "--show", image.to_str().unwrap()])
                .trim()
                .to_string()
        });
        let vg = format!(
            "nle-diff-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut this = TwoPvVg {
            devices,
            uuids: [String::new(), String::new()],
            vg,
            _dir: dir,
        };
        let mut args = vec!["-q"];
        args.extend_from_slice(pvcreate_args);
        args.extend([this.devices[0].as_str(), this.devices[1].as_str()]);
        run("pvcreate", &args);
        run(
            "vgcreate",
            &["-q", &this.vg, &this.devices[0], &this.devices[1]],
        );
        this.uuids = [0, 1].map(|i| {
            read_pv(Path::new(&this.devices[i]))
                .expect("a PV")
                .contents
                .label
                .pv_uuid
        });
        this
    }

    fn lvm(&self, command: &str, extra: &[&str]) {
        let mut args = vec!["-q", "--config", "global{activation=0}"];
        args.extend_from_slice(extra);
        run(command, &args);
    }

    /// The text LVM wrote last (both PVs hold the same).
    fn text(&self) -> String {
        read_pv(Path::new(&self.devices[0]))
            .expect("a PV")
            .contents
            .newest()
            .expect("a metadata text")
            .text
            .to_string()
    }

    /// Writes `text` (plus LVM's terminating NUL) as the committed metadata of every metadata
    /// area of both PVs: the text right after the area header, `raw_locn[0]` pointing at it
    /// with its checksum, the other locations cleared, the header's checksum redone.
    fn write_text(&self, text: &[u8]) {
        use std::os::unix::fs::FileExt;
        let mut body = text.to_vec();
        body.push(0);
        for device in &self.devices {
            let label = read_pv(Path::new(device)).expect("a PV").contents.label;
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(device)
                .expect("open the PV for writing");
            for area in &label.metadata_areas {
                assert!(
                    (body.len() as u64) + 512 <= area.size,
                    "a {}-byte text fits the metadata area",
                    body.len()
                );
                let mut header = vec![0u8; 512];
                file.read_exact_at(&mut header, area.offset)
                    .expect("header");
                header[40..].fill(0);
                header[40..48].copy_from_slice(&512u64.to_le_bytes());
                header[48..56].copy_from_slice(&(body.len() as u64).to_le_bytes());
                header[56..60].copy_from_slice(&calc_crc(INITIAL_CRC, &body).to_le_bytes());
                let crc = calc_crc(INITIAL_CRC, &header[4..]);
                header[0..4].copy_from_slice(&crc.to_le_bytes());
                file.write_all_at(&body, area.offset + 512).expect("text");
                file.write_all_at(&header, area.offset).expect("header");
            }
            file.sync_all().expect("sync the PV");
        }
    }
}

impl Drop for TwoPvVg {
    fn drop(&mut self) {
        remove_loop_vg(&self.vg, &self.devices[0]);
        remove_loop_vg(&self.vg, &self.devices[1]);
    }
}

/// Lines of `text` holding `key = <integer>`, as (line index, value).
fn int_lines(lines: &[&str], key: &str) -> Vec<(usize, i64)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| {
            let rest = line
                .trim_start()
                .strip_prefix(key)?
                .trim_start()
                .strip_prefix('=')?;
            let value = rest.split('#').next()?.trim().parse().ok()?;
            Some((i, value))
        })
        .collect()
}

/// Raises the VG's `seqno` line (the first one) to `seqno`.
fn with_seqno(text: &str, seqno: u64) -> String {
    let mut done = false;
    text.lines()
        .map(|line| {
            if !done && line.trim_start().starts_with("seqno = ") {
                done = true;
                format!("\tseqno = {seqno}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Issue 20's findings, each read as `method="metadata",reason="ok"` before: metadata LVM
/// refuses (`pe_count = 4294967296` on a small PV: a 16 PiB VG), NUL bytes in names and values,
/// names LVM forbids, and a 1 MB LV name (LVM reads that one, so the report parser refuses it
/// too: it made /metrics 2 MB). Now each is `malformed`: no figures. (LVM's verdict on each, and
/// the crate reader's, are `lvm-metadata`'s `issue_20_findings_are_refused`.)
#[test]
fn metadata_lvm_refuses_is_never_read_as_figures() {
    if !lvm_available("metadata_lvm_refuses_is_never_read_as_figures") {
        return;
    }
    let vg = TwoPvVg::new(64, &["--metadatasize", "4m"]);
    vg.lvm(
        "lvcreate",
        &["-an", "-Zn", "-L", "8m", "-n", "disk", &vg.vg],
    );
    let base = vg.text();
    let lines: Vec<&str> = base.lines().collect();
    let mut seqno = int_lines(&lines, "seqno")[0].1 as u64;
    let pe_count = int_lines(&lines, "pe_count")[0].1;
    // The LV's (the VG section comes first in a metadata area; the top-level one follows it).
    let host_line = lines
        .iter()
        .find(|l| l.trim_start().starts_with("creation_host = "))
        .expect("the LV's creation_host")
        .to_string();
    let huge = "n".repeat(1024 * 1024);
    let cases = [
        (
            "pe_count 2^32",
            base.replacen(
                &format!("pe_count = {pe_count}"),
                "pe_count = 4294967296",
                1,
            ),
        ),
        (
            "NUL in an LV name",
            base.replacen("\ndisk {", "\ndi\0sk {", 1),
        ),
        (
            "NUL in a value",
            base.replacen(&host_line, "creation_host = \"h\0st\"", 1),
        ),
        (
            "an LV name LVM forbids",
            base.replacen("\ndisk {", "\nd/isk {", 1),
        ),
        (
            "a 1 MB LV name",
            base.replacen("\ndisk {", &format!("\n{huge} {{"), 1),
        ),
    ];
    let rows: Vec<PvRow> = (0..2)
        .map(|i| PvRow {
            vg: vg.vg.clone(),
            device: vg.devices[i].clone(),
            uuid: vg.uuids[i].clone(),
        })
        .collect();
    for (what, text) in cases {
        assert_ne!(text, base, "{what}: the edit applies");
        seqno += 1;
        vg.write_text(with_seqno(&text, seqno).as_bytes());
        match read_vg(&vg.vg, &rows, &VgCache::default()) {
            Err(fallback) => assert_eq!(
                fallback.reason,
                Reason::Malformed,
                "{what}: {}",
                fallback.message
            ),
            Ok(read) => panic!("{what}: read as figures: {:?}", read.metadata.vg),
        }
        if what == "a 1 MB LV name" {
            // LVM reads it: the exec path's report parser refuses the name instead.
            let output = Command::new("lvs")
                .args([
                    "--devices",
                    &format!("{},{}", vg.devices[0], vg.devices[1]),
                    "--reportformat",
                    "json",
                    "--units",
                    "b",
                    "--nosuffix",
                    "-o",
                    "vg_name,lv_name,lv_size",
                    &vg.vg,
                ])
                .env("LVM_SUPPRESS_FD_WARNINGS", "1")
                .env("LC_ALL", "C")
                .stdin(Stdio::null())
                .output()
                .expect("run lvs");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(stdout.contains(&huge), "lvs prints the 1 MB name");
            let error = parse(&stdout, "lvs").expect_err("the name is refused");
            let message = error.to_string();
            assert!(
                message.contains("lv_name is 1048576 bytes long"),
                "{}",
                message.chars().take(300).collect::<String>()
            );
            assert!(message.len() < 1000, "the error stays small");
        }
    }
    vg.write_text(with_seqno(&base, seqno + 1).as_bytes());
}
