//! The container image, built and run as `docs/deployment.md` says, without a registry: the Dockerfile
//! linted with hadolint, its runtime stage built with buildah from a debootstrapped Debian base
//! around the exporter under test (scripts/container-image), then run with podman (runc,
//! cgroupfs, vfs; privileged, host network, /dev, /run/lvm and the LVM, nova and libvirt
//! configuration mounted) against a real loop VG of the host, scraped, and asked for a report.
//! Then the least-privilege run of docs/deployment.md: not privileged, no capability, no new
//! privileges, a read-only root file system, only the PV's loop device (read-only) and the nova
//! and libvirt configuration; the PV found with `--collector.lvm.devices` and read with the
//! metadata method, the figures right, and no LVM process run (the image's `lvm` replaced by one
//! that counts its runs). And the Debian package of `scripts/package-deb`, installed with
//! `apt-get` in a fresh Debian container made from the same base, checked, removed and purged
//! (`tests/fixtures/package/check-deb.sh`).
//!
//! Needs root, lvm2, buildah, podman, runc and debootstrap. Measured on the 2-core test
//! machines: about three minutes on a fresh machine (hadolint install, debootstrap and import
//! of the base, about two minutes of it), 30-50 s afterwards (the base tarball and image, the
//! hadolint venv and the lvm2 layer are cached; vfs storage copies every layer, which is most
//! of what is left).

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const TAG: &str = "localhost/nova-lvm-exporter:test";
const UUID: &str = "3f5e6c1a-1111-2222-3333-444455556666";

/// podman with the settings that work here: runc (crun fails on hybrid cgroups), cgroupfs, vfs
/// storage, and a containers.conf without default ulimits.
fn podman(conf: &Path) -> Command {
    let mut command = Command::new("podman");
    command
        .env("CONTAINERS_CONF", conf)
        .args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"])
        .args(["--storage-driver", "vfs"]);
    command
}

/// A running container, removed on drop.
struct Container {
    name: String,
    conf: std::path::PathBuf,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&self.conf)
            .args(["rm", "-f", "-t", "2", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn output(command: &mut Command) -> String {
    let output = command.output().expect("run podman");
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// True when the tools are there (else skipped, or failed under CI).
fn container_tools_available(test: &str) -> bool {
    lvm_available(test)
        && programs_available(
            test,
            &["buildah", "podman", "runc", "debootstrap", "python3"],
        )
}

/// Builds the image once per test process (the tests run in parallel; scripts/container-image
/// caches across runs) and returns how long the build took.
fn build_image() -> Duration {
    static BUILT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *BUILT.get_or_init(build_image_now)
}

fn build_image_now() -> Duration {
    let started = Instant::now();
    let status = Command::new("scripts/container-image")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([env!("CARGO_BIN_EXE_nova-lvm-exporter"), TAG])
        .status()
        .expect("scripts/container-image");
    assert!(status.success(), "building the image failed: {status}");
    started.elapsed()
}

/// A host: a real VG with a 5 GiB instance disk and a 3 GiB foreign LV, nova.conf (1 GiB
/// reserved) and the instance's domain XML, and a containers.conf for podman.
struct Host {
    vg: LoopVg,
    dir: tempfile::TempDir,
}

impl Host {
    fn new(tag: &str) -> Self {
        let vg = LoopVg::new(tag, 20);
        vg.create_lv(&format!("{UUID}_disk"), "5G");
        vg.create_lv("someone_elses_lv", "3G");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("nova")).unwrap();
        write_nova_conf(&dir.path().join("nova/nova.conf"), &vg.name, 1024);
        write_domains(
            &dir.path().join("qemu"),
            &vg.name,
            &[Domain {
                uuid: UUID,
                name: "web-01",
                root_gb: 5,
                ephemeral_gb: 0,
                swap_mb: 0,
                boot_from_volume: false,
            }],
        );
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = []\n",
        )
        .unwrap();
        Host { vg, dir }
    }

    fn conf(&self) -> std::path::PathBuf {
        self.dir.path().join("containers.conf")
    }

    /// `-v` of the host's nova.conf directory and domain XML directory, read-only, where the
    /// image looks for them.
    fn config_mounts(&self) -> Vec<String> {
        let mount = |host: &str, guest: &str| {
            format!("{}:{guest}:ro", self.dir.path().join(host).display())
        };
        vec![
            "-v".into(),
            mount("nova", "/etc/nova"),
            "-v".into(),
            mount("qemu", "/etc/libvirt/qemu"),
        ]
    }

    /// Waits until the container `name` answers on `port`.
    fn wait_healthy(&self, port: u16, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !get(port, "/healthz").is_ok_and(|(status, _)| status == 200) {
            assert!(
                Instant::now() < deadline,
                "the container did not answer:\n{}",
                output(podman(&self.conf()).args(["logs", name]))
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Checks the VG's figures in a scrape of the container: 20 GiB, 5 GiB of instance disk,
    /// 3 GiB foreign (the drift), both collectors successful.
    fn assert_figures(&self, m: &Exposition) {
        let vg_label = format!("vg=\"{}\"", self.vg.name);
        assert_eq!(
            m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
            1.0,
            "{}",
            m.text
        );
        assert_eq!(
            m.value(&format!("nova_lvm_vg_size_bytes{{{vg_label}}}")),
            VG_20G_BYTES as f64
        );
        assert_eq!(
            m.value(&format!(
                "nova_lvm_untracked_bytes{{cause=\"foreign\",{vg_label}}}"
            )),
            (3 * GIB) as f64
        );
        assert_eq!(
            m.value(&format!(
                "nova_lvm_lv_bytes{{owner=\"instance\",{vg_label}}}"
            )),
            (5 * GIB) as f64
        );
        assert_eq!(
            m.value("nova_lvm_collector_success{collector=\"libvirt\"}"),
            1.0
        );
        assert_eq!(
            m.value(&format!("nova_lvm_drift_bytes{{{vg_label}}}")),
            (3 * GIB) as f64
        );
    }
}

fn scrape(port: u16) -> Exposition {
    let (status, body) = get(port, "/metrics").expect("scrape the container");
    assert_eq!(status, 200, "{body}");
    Exposition::parse(&body)
}

#[test]
fn the_image_serves_the_hosts_vg_and_reports_it() {
    if !container_tools_available("container") {
        return;
    }
    let built = build_image();
    let host = Host::new("ctr");
    let vg = &host.vg;
    let conf = host.conf();
    let port = free_port();
    let name = format!("nle-test-{}", std::process::id());
    let run_started = Instant::now();
    output(
        podman(&conf)
            .args([
                "run",
                "-d",
                "--name",
                &name,
                "--privileged",
                "--network",
                "host",
                "-v",
                "/dev:/dev",
                "-v",
                "/run/lvm:/run/lvm",
                "-v",
                "/etc/lvm:/etc/lvm:ro",
            ])
            .args(host.config_mounts())
            .args([TAG, &format!("--web.listen-address=127.0.0.1:{port}")]),
    );
    let container = Container {
        name: name.clone(),
        conf: conf.clone(),
    };
    host.wait_healthy(port, &name);
    let answered = run_started.elapsed();
    host.assert_figures(&scrape(port));

    // The one-shot report inside the same container reads the same VG.
    let json = output(podman(&conf).args([
        "exec",
        &name,
        "nova-lvm-exporter",
        "report",
        "--format=json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&json).expect("report JSON");
    assert_eq!(report["nova_vg"], vg.name.as_str());
    assert_eq!(
        report["vgs"][0]["accounting"]["untracked"]["foreign_bytes"],
        3 * GIB
    );
    assert_eq!(
        report["vgs"][0]["accounting"]["recommended_reserved_host_disk_mb"]
            .as_u64()
            .unwrap()
            % 1024,
        0
    );
    drop(container);
    eprintln!(
        "container test: image built in {:.1} s, container answered {:.1} s after podman run",
        built.as_secs_f64(),
        answered.as_secs_f64()
    );
}

/// The image's `lvm` replaced (bind-mounted over `/usr/sbin/lvm`) by a script that records each
/// run in the container's own `/tmp` and fails.
const COUNTING_LVM: &str = "#!/bin/sh\necho \"$@\" >> /tmp/lvm-runs\nexit 1\n";

#[test]
fn the_image_runs_unprivileged_with_only_the_pv_read_only_and_runs_no_lvm() {
    if !container_tools_available("container_least_privilege") {
        return;
    }
    build_image();
    let host = Host::new("ctr-lp");
    let conf = host.conf();
    let pv = run(
        "pvs",
        &[
            "--noheadings",
            "-o",
            "pv_name",
            "-S",
            &format!("vg_name={}", host.vg.name),
        ],
    )
    .trim()
    .to_string();
    let lvm = host.dir.path().join("counting-lvm");
    std::fs::write(&lvm, COUNTING_LVM).unwrap();
    run("chmod", &["755", lvm.to_str().unwrap()]);
    let port = free_port();
    let name = format!("nle-test-lp-{}", std::process::id());
    let devices = format!("--collector.lvm.devices={pv}");
    // Not privileged, no capability, no new privileges, a read-only root file system; the one
    // PV read-only, no /dev, no /run/lvm, no /etc/lvm.
    output(
        podman(&conf)
            .args(["run", "-d", "--name", &name, "--network", "host"])
            .args(["--cap-drop", "all", "--security-opt", "no-new-privileges"])
            .args(["--read-only", "--device", &format!("{pv}:{pv}:r")])
            .args(["-v", &format!("{}:/usr/sbin/lvm:ro", lvm.display())])
            .args(host.config_mounts())
            .args([
                TAG,
                &format!("--web.listen-address=127.0.0.1:{port}"),
                &devices,
            ]),
    );
    let _container = Container {
        name: name.clone(),
        conf: conf.clone(),
    };
    host.wait_healthy(port, &name);
    for _ in 0..3 {
        let m = scrape(port);
        host.assert_figures(&m);
        assert_eq!(
            m.get(&format!(
                "nova_lvm_raw_source_info{{method=\"metadata\",reason=\"ok\",vg=\"{}\"}}",
                host.vg.name
            )),
            Some(1.0),
            "{}",
            m.text
        );
    }
    // The one-shot report in the same container reads the PV the same way.
    let report: serde_json::Value = serde_json::from_str(&output(podman(&conf).args([
        "exec",
        &name,
        "nova-lvm-exporter",
        "report",
        "--format=json",
        &devices,
    ])))
    .expect("report JSON");
    assert_eq!(
        report["raw_methods"],
        serde_json::json!([{"vg": host.vg.name, "method": "metadata", "reason": "ok"}])
    );
    assert_eq!(
        report["vgs"][0]["accounting"]["untracked"]["foreign_bytes"],
        3 * GIB
    );
    // The device really is read-only in there, and no LVM ran.
    let write = podman(&conf)
        .args(["exec", &name, "sh", "-c", &format!("echo x > {pv}")])
        .output()
        .unwrap();
    assert!(!write.status.success(), "the PV was writable");
    let runs = output(podman(&conf).args([
        "exec",
        &name,
        "sh",
        "-c",
        "cat /tmp/lvm-runs 2>/dev/null | wc -l",
    ]));
    assert_eq!(runs.trim(), "0", "lvm ran in the container");
}

/// The image the Debian package is tested in: the debootstrapped bookworm base with the
/// package's dependencies (lvm2, passwd, sudo) and systemd (for `systemd-analyze`) installed,
/// a `nova` group (postinst adds the user to it), and the account databases' backup files
/// (`/etc/passwd-`, ...) made once, so that a purge can be compared with the state before the
/// install file by file. Built once per machine with podman and kept.
/// `tests/fixtures/package/check-deb.sh` is what runs in it.
const DEB_TEST_IMAGE: &str = "localhost/nova-lvm-exporter-deb-test:bookworm";

fn deb_test_image(conf: &Path) {
    // The image build makes the debootstrapped base (once per test process, shared with the
    // other tests here: two debootstraps at once would write the same cached tarball).
    build_image();
    let exists = podman(conf)
        .args(["image", "exists", DEB_TEST_IMAGE])
        .status()
        .unwrap();
    if exists.success() {
        return;
    }
    let name = format!("nle-deb-prep-{}", std::process::id());
    let prepare = "set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; \
        apt-get install -y -qq --no-install-recommends lvm2 passwd sudo systemd libgcc-s1 >/dev/null; \
        groupadd --system nova; useradd --system nle-backup-files; userdel nle-backup-files";
    output(podman(conf).args([
        "run",
        "--name",
        &name,
        "--network",
        "host",
        "docker.io/library/debian:bookworm-slim",
        "sh",
        "-c",
        prepare,
    ]));
    output(podman(conf).args(["commit", "-q", &name, DEB_TEST_IMAGE]));
    output(podman(conf).args(["rm", &name]));
}

#[test]
fn the_debian_package_installs_verifies_reports_and_purges_clean_in_a_fresh_debian() {
    let test = "the_debian_package_installs_verifies_reports_and_purges_clean_in_a_fresh_debian";
    if !container_tools_available(test)
        || !programs_available(test, &["dpkg-deb", "strip", "objdump"])
    {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    // The package of the binary under test (the test suite's debug build, debug symbols
    // stripped: the release build's package differs only in the binary's code).
    let started = Instant::now();
    let built = Command::new("scripts/package-deb")
        .current_dir(root)
        .arg(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .output()
        .expect("scripts/package-deb");
    assert!(
        built.status.success(),
        "scripts/package-deb: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = String::from_utf8_lossy(&built.stdout).trim().to_string();
    let deb = Path::new(root).join(deb);
    assert!(
        deb.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("nova-lvm-exporter_{}_", env!("CARGO_PKG_VERSION"))),
        "{}",
        deb.display()
    );
    let packaged = started.elapsed();

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("containers.conf");
    std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n").unwrap();
    deb_test_image(&conf);
    let started = Instant::now();
    let run = podman(&conf)
        .args(["run", "--rm", "--network", "host"])
        .arg("-v")
        .arg(format!("{}:/pkg/nova-lvm-exporter.deb:ro", deb.display()))
        .arg("-v")
        .arg(format!(
            "{root}/tests/fixtures/package/check-deb.sh:/pkg/check-deb.sh:ro"
        ))
        .args([DEB_TEST_IMAGE, "bash", "/pkg/check-deb.sh"])
        .output()
        .expect("podman run");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success() && stdout.contains("== all good"),
        "the package check failed ({}):\n{stdout}\n{stderr}",
        run.status
    );
    eprintln!(
        "packaged in {packaged:?}, installed, checked and purged in {:?}:\n{stdout}",
        started.elapsed()
    );
}
