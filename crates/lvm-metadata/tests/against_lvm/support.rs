//! Real LVM on loop devices for the tests: the prerequisites check, a command runner, and a VG
//! on a sparse file behind a loop device, removed on drop even when a test fails.
//!
//! Tests that need root and lvm2 skip with a loud reason on a laptop; under `CI=true` they fail
//! instead, so that CI can never pass by skipping.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes in one GiB.
pub const GIB: u64 = 1024 * 1024 * 1024;

/// True when this test can use real LVM on loop devices. Otherwise prints why and returns false,
/// or panics under `CI=true`.
pub fn lvm_available(test: &str) -> bool {
    let reason = if effective_uid() != Some(0) {
        Some("not running as root")
    } else if !Path::new("/usr/sbin/vgs").exists() {
        Some("lvm2 is not installed (/usr/sbin/vgs missing)")
    } else if !Path::new("/dev/loop-control").exists() {
        Some("no /dev/loop-control")
    } else {
        None
    };
    match reason {
        None => true,
        Some(reason) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: needs real LVM on a loop device but {reason}; under CI=true a skip is a failure")
        }
        Some(reason) => {
            eprintln!("\n!!! SKIPPING {test}: needs real LVM on a loop device, but {reason} !!!\n");
            false
        }
    }
}

/// The effective uid, from `/proc/self/status`.
fn effective_uid() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|line| line.starts_with("Uid:"))?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// Runs an LVM (or other) command, panicking with its output when it fails; returns its stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this process and call: `lvmd-<tag>-<pid>-<n>` (tests run in parallel).
pub fn unique_vg_name(tag: &str) -> String {
    format!(
        "lvmd-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A sparse file of `size_bytes` in `dir`, attached to a free loop device; returns the device.
pub fn loop_device(dir: &Path, file_name: &str, size_bytes: u64) -> String {
    let image = dir.join(file_name);
    std::fs::File::create(&image)
        .and_then(|file| file.set_len(size_bytes))
        .expect("sparse image");
    run("losetup", &["-f", "--show", image.to_str().unwrap()])
        .trim()
        .to_string()
}

/// Removes a test VG, its PV label and its loop device, quietly and whatever state they are in
/// (for `Drop`s: a failing test must still clean up).
pub fn remove_loop_vg(vg: &str, device: &str) {
    let quiet = |program: &str, args: &[&str]| {
        let _ = Command::new(program)
            .args(args)
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    // activation=0: a VG with a thin pool written into its metadata cannot be "deactivated"
    // without device-mapper, and vgremove refuses without it.
    quiet(
        "vgremove",
        &["-f", "-q", "--config", "global{activation=0}", vg],
    );
    quiet("pvremove", &["-q", "-ff", "-y", device]);
    quiet("losetup", &["-d", device]);
}

/// A real volume group on a sparse file behind a loop device (`pvcreate`, `vgcreate`).
/// Removed on drop, even when the test fails.
pub struct LoopVg {
    /// The VG name (unique per test and process).
    pub name: String,
    /// The loop device of its first PV.
    pub device: String,
    _dir: tempfile::TempDir,
}

impl LoopVg {
    /// A VG on a sparse file of `size_gib` GiB.
    pub fn new(tag: &str, size_gib: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let device = loop_device(dir.path(), "pv0.img", size_gib * GIB);
        let vg = LoopVg {
            name: unique_vg_name(tag),
            device,
            _dir: dir,
        };
        run("pvcreate", &["-q", &vg.device]);
        run("vgcreate", &["-q", &vg.name, &vg.device]);
        vg
    }

    /// Creates a metadata-only LV (this kernel has no device-mapper: nothing is activated).
    pub fn create_lv(&self, lv: &str, size: &str) {
        self.create_lv_with(lv, size, &[]);
    }

    /// Like [`LoopVg::create_lv`], with `extra` lvcreate arguments (e.g. `--addtag nova`).
    pub fn create_lv_with(&self, lv: &str, size: &str, extra: &[&str]) {
        let mut args = vec![
            "-q",
            "--config",
            "global{activation=0}",
            "-an",
            "-Zn",
            "-L",
            size,
            "-n",
            lv,
        ];
        args.extend_from_slice(extra);
        args.push(&self.name);
        run("lvcreate", &args);
    }

    /// Grows an LV by `size` (e.g. `+60M`); the new extents form a segment of their own when
    /// other LVs follow it.
    pub fn extend_lv(&self, lv: &str, size: &str) {
        run(
            "lvextend",
            &[
                "-q",
                "--config",
                "global{activation=0}",
                "-L",
                size,
                &format!("{}/{lv}", self.name),
            ],
        );
    }

    /// The VG's metadata as `vgcfgbackup` writes it, edited by `edit`, its `seqno` raised, and
    /// written back with `vgcfgrestore`.
    fn restore_edited(&self, edit: impl FnOnce(String) -> String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let backup = dir.path().join("vg.txt");
        let backup = backup.to_str().unwrap();
        run("vgcfgbackup", &["-q", "-f", backup, &self.name]);
        let text = std::fs::read_to_string(backup).expect("read backup");
        let seqno_line = text
            .lines()
            .find(|l| l.trim_start().starts_with("seqno = "))
            .expect("seqno")
            .to_string();
        let seqno: u64 = seqno_line
            .trim()
            .trim_start_matches("seqno = ")
            .parse()
            .unwrap();
        let text = text.replacen(&seqno_line, &format!("\tseqno = {}", seqno + 1), 1);
        std::fs::write(backup, edit(text)).expect("write backup");
        run("vgcfgrestore", &["-q", "--force", "-f", backup, &self.name]);
    }

    /// Sets LV `lv`'s `creation_time` in the VG metadata to `unix`: an LV made now that looks
    /// days old to LVM.
    pub fn set_lv_creation_time(&self, lv: &str, unix: i64) {
        self.restore_edited(|text| {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            let section = lines
                .iter()
                .position(|l| l.trim() == format!("{lv} {{"))
                .unwrap_or_else(|| panic!("lv {lv} in the metadata"));
            let time = section
                + lines[section..]
                    .iter()
                    .position(|l| l.trim_start().starts_with("creation_time = "))
                    .expect("creation_time");
            lines[time] = format!("\t\t\tcreation_time = {unix}");
            lines.join("\n") + "\n"
        });
    }

    /// Writes LVs straight into the VG metadata: the only way to get thin pools, raid, mirrors,
    /// snapshots and cached LVs here, since they cannot be created without device-mapper.
    /// `lvs_text` is inserted into the `logical_volumes` section.
    pub fn restore_with_extra_lvs(&self, lvs_text: &str) {
        self.restore_edited(|text| match text.find("logical_volumes {") {
            Some(at) => {
                let insert = at + "logical_volumes {".len();
                format!("{}\n{lvs_text}\n{}", &text[..insert], &text[insert..])
            }
            None => {
                // No LV yet: add the section before the closing brace of the VG.
                let end = text.rfind("\n}").expect("vg closing brace");
                format!(
                    "{}\n\tlogical_volumes {{\n{lvs_text}\n\t}}\n{}",
                    &text[..end],
                    &text[end..]
                )
            }
        });
    }
}

impl Drop for LoopVg {
    fn drop(&mut self) {
        remove_loop_vg(&self.name, &self.device);
    }
}

/// A second PV for a [`LoopVg`], detached on drop (declare it before the VG: locals drop in
/// reverse order, so the VG is removed first).
pub struct ExtraPv {
    /// Its loop device.
    pub device: String,
    _dir: tempfile::TempDir,
}

impl ExtraPv {
    /// A loop device on a sparse file of `size_gib` GiB, not yet a PV.
    pub fn new(size_gib: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let device = loop_device(dir.path(), "pv1.img", size_gib * GIB);
        ExtraPv { device, _dir: dir }
    }
}

impl Drop for ExtraPv {
    fn drop(&mut self) {
        let _ = Command::new("pvremove")
            .args(["-q", "-ff", "-y", &self.device])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

/// A proptest runner of `cases` cases whose random choices come from ChaCha seeded with `seed`:
/// the same cases on every run, so that CI stays deterministic and the figures a test prints
/// can be compared between runs. A failing case is shrunk and its seed kept under
/// `proptest-regressions/` beside the crate (`source_file` is the test's `file!()`), to be
/// tried first on the next run.
pub fn deterministic_runner(
    cases: u32,
    seed: u64,
    source_file: &'static str,
) -> proptest::test_runner::TestRunner {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut seed_bytes = [0u8; 32];
    for chunk in seed_bytes.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    let config = Config {
        cases,
        source_file: Some(source_file),
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    )
}
