//! The container image, built and run as `docs/deployment.md` says, without a registry: the Dockerfile
//! linted with hadolint, its runtime stage built with buildah from a debootstrapped Debian base
//! around the exporter under test (scripts/container-image), then run with podman (runc,
//! cgroupfs, vfs; privileged, host network, /dev, /run/lvm and the LVM, nova and libvirt
//! configuration mounted) against a real loop VG of the host, scraped, and asked for a report.
//!
//! Needs root, lvm2, buildah, podman, runc and debootstrap. Measured on the 2-core test
//! machines: about three minutes on a fresh machine (hadolint install, debootstrap and import
//! of the base, about two minutes of it), 30-50 s afterwards (the base tarball and image, the
//! hadolint venv and the lvm2 layer are cached; vfs storage copies every layer, which is most
//! of what is left).

mod common;

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

#[test]
fn the_image_serves_the_hosts_vg_and_reports_it() {
    if !lvm_available("container")
        || !programs_available(
            "container",
            &["buildah", "podman", "runc", "debootstrap", "python3"],
        )
    {
        return;
    }
    let started = Instant::now();
    let status = Command::new("scripts/container-image")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([env!("CARGO_BIN_EXE_nova-lvm-exporter"), TAG])
        .status()
        .expect("scripts/container-image");
    assert!(status.success(), "building the image failed: {status}");
    let built = started.elapsed();

    let vg = LoopVg::new("ctr", 20);
    vg.create_lv(&format!("{UUID}_disk"), "5G");
    vg.create_lv("someone_elses_lv", "3G");
    let dir = tempfile::tempdir().unwrap();
    let nova = dir.path().join("nova");
    let qemu = dir.path().join("qemu");
    std::fs::create_dir_all(&nova).unwrap();
    write_nova_conf(&nova.join("nova.conf"), &vg.name, 1024);
    write_domains(
        &qemu,
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
    let conf = dir.path().join("containers.conf");
    std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n").unwrap();

    let port = free_port();
    let name = format!("nle-test-{}", std::process::id());
    let mount = |host: &Path, guest: &str| format!("{}:{guest}:ro", host.display());
    let run_started = Instant::now();
    output(podman(&conf).args([
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
        "-v",
        &mount(&nova, "/etc/nova"),
        "-v",
        &mount(&qemu, "/etc/libvirt/qemu"),
        TAG,
        &format!("--web.listen-address=127.0.0.1:{port}"),
    ]));
    let container = Container {
        name: name.clone(),
        conf: conf.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !get(port, "/healthz").is_ok_and(|(status, _)| status == 200) {
        assert!(
            Instant::now() < deadline,
            "the container did not answer:\n{}",
            output(podman(&conf).args(["logs", &name]))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let answered = run_started.elapsed();

    let m = {
        let (status, body) = get(port, "/metrics").expect("scrape the container");
        assert_eq!(status, 200, "{body}");
        Exposition::parse(&body)
    };
    let vg_label = format!("vg=\"{}\"", vg.name);
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
        m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
        1.0
    );
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"libvirt\"}"),
        1.0
    );
    assert_eq!(
        m.value(&format!("nova_lvm_drift_bytes{{{vg_label}}}")),
        (3 * GIB) as f64
    );

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
