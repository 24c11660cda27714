//! The built binary's command line: a bad flag or configuration is one line on stderr naming
//! what is wrong, with exit code 2; `--version` and `--help` answer on stdout with 0.

use std::process::{Command, Output};

fn exporter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .args(args)
        .output()
        .expect("run the exporter")
}

fn assert_usage_error(args: &[&str], expected: &[&str]) {
    let output = exporter(args);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: one line expected:\n{stderr}"
    );
    for needle in expected {
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr:?}"
        );
    }
    assert!(output.stdout.is_empty());
}

#[test]
fn bad_flag_values_are_one_line_naming_the_flag_with_exit_2() {
    let vg = "--nova.images-volume-group=vms-group";
    assert_usage_error(
        &[vg, "--collector.lvm.timeout=soon"],
        &["--collector.lvm.timeout", "expected a duration"],
    );
    assert_usage_error(
        &[vg, "--nova.disk-allocation-ratio=-1"],
        &["--nova.disk-allocation-ratio", "positive number"],
    );
    assert_usage_error(&[vg, "--log.format=xml"], &["--log.format", "xml"]);
    assert_usage_error(
        &["--nova.images-volume-group=vg/../etc"],
        &["--nova.images-volume-group", "volume group name"],
    );
    assert_usage_error(&[vg, "--collector.nosuch"], &["--collector.nosuch"]);
    assert_usage_error(
        &[vg, "--web.listen-address=:notaport"],
        &["--web.listen-address"],
    );
}

#[test]
fn a_malformed_nova_conf_is_one_line_naming_file_line_and_option() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nova.conf");
    std::fs::write(
        &conf,
        "[DEFAULT]\nhost = compute-07\nreserved_host_disk_mb = lots\n",
    )
    .unwrap();
    let flag = format!("--nova.config-file={}", conf.display());
    assert_usage_error(
        &[&flag, "--nova.images-volume-group=vms-group"],
        &[&format!("{}:3", conf.display()), "reserved_host_disk_mb"],
    );
    assert_usage_error(
        &["--nova.config-file=/nonexistent/nova.conf"],
        &["--nova.config-file", "does not exist"],
    );
}

#[test]
fn version_and_help_answer_on_stdout() {
    let output = exporter(&["--version"]);
    assert!(output.status.success());
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(version.starts_with("nova-lvm-exporter 0."), "{version}");
    assert!(version.contains("revision"), "{version}");

    let output = exporter(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--web.listen-address",
        "--collector.lvm.vg",
        "--log.format",
        "10061",
    ] {
        assert!(help.contains(flag), "{flag} not in --help");
    }
}

#[test]
fn the_web_server_flags_stay_out_of_the_help_of_report_and_check() {
    let help = |args: &[&str]| {
        let output = exporter(args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    for subcommand in ["report", "check"] {
        let text = help(&[subcommand, "--help"]);
        assert!(!text.contains("--web."), "{subcommand} --help:\n{text}");
        assert!(
            text.contains("--collector.lvm.vg"),
            "{subcommand} --help keeps the collection flags:\n{text}"
        );
    }
    for args in [&["serve", "--help"][..], &["--help"]] {
        let text = help(args);
        assert!(text.contains("--web.listen-address"), "{args:?}:\n{text}");
    }
    // Still accepted where they were (after serve, and before any subcommand).
    let output = exporter(&[
        "serve",
        "--web.listen-address=:notaport",
        "--nova.images-volume-group=vg",
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--web.listen-address"));
    let output = exporter(&[
        "--web.listen-address=127.0.0.1:1",
        "--nova.config-file=/dev/null",
        "--nova.images-volume-group=vg",
        "check",
        "--config.check",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn errors_say_how_to_fix_them() {
    let vg = "--nova.images-volume-group=vms-group";
    // Enum flags list their values.
    assert_usage_error(
        &[vg, "--collector.lvm.method=fast"],
        &[
            "--collector.lvm.method",
            "'fast'",
            "expected one of: auto, metadata, exec",
        ],
    );
    assert_usage_error(
        &[vg, "--log.level=verbose"],
        &["--log.level", "expected one of: debug, info, warn, error"],
    );
    // A size where MiB are expected says what is expected, converted.
    assert_usage_error(
        &[vg, "--nova.reserved-host-disk-mb=2G"],
        &[
            "whole number of MiB",
            "give --nova.reserved-host-disk-mb=2048",
        ],
    );
    assert_usage_error(
        &[vg, "--nova.reserved-host-disk-mb=lots"],
        &["whole number of MiB like 2048", "\"lots\""],
    );
    // A switch given a value points at its --no- form, or at giving it alone.
    assert_usage_error(
        &[vg, "--collector.libvirt=false"],
        &["use --no-collector.libvirt to turn it off"],
    );
    assert_usage_error(
        &[vg, "--no-collector.libvirt=yes"],
        &["--no-collector.libvirt is a switch and takes no value: give it alone"],
    );

    // A unitless check threshold is refused (it meant 20 bytes): UNKNOWN, saying what to write.
    let output = exporter(&["check", vg, "--warning.untracked=20"]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("NOVA-LVM UNKNOWN - "), "{stdout}");
    for needle in ["--warning.untracked", "say 20GiB", "5%"] {
        assert!(stdout.contains(needle), "{needle:?} not in {stdout:?}");
    }
    // 0 needs no unit, and the thresholds with units still work.
    let output = exporter(&[
        "check",
        vg,
        "--nova.config-file=/dev/null",
        "--critical.corrected-free=0",
        "--warning.untracked=20GiB",
        "--warning.overestimate=4096B",
        "--config.check",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

/// True when running as root (needed to drop to another user); otherwise says why and returns
/// false, or panics under `CI=true`.
fn root(test: &str) -> bool {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        });
    if uid.as_deref() == Some("0") {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: needs root to run the exporter as another user; under CI=true a skip is a failure");
    }
    eprintln!("\n!!! SKIPPING {test}: needs root to run the exporter as another user !!!\n");
    false
}

/// Runs the exporter as `nobody` with no supplementary group.
fn exporter_as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            env!("CARGO_BIN_EXE_nova-lvm-exporter"),
        ])
        .args(args)
        .output()
        .expect("run the exporter through setpriv")
}

#[test]
fn permission_denied_names_the_group_or_drop_in_that_fixes_it() {
    use std::os::unix::fs::PermissionsExt;
    if !root("permission denied hints") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // nova.conf as packaged: root:<group> 0640 (gid 1 here, `daemon` on Debian).
    let conf = dir.path().join("nova.conf");
    std::fs::write(&conf, "[DEFAULT]\nhost = compute-07\n").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&conf, Some(0), Some(1)).unwrap();
    let group = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find(|l| l.split(':').nth(2) == Some("1"))
        .and_then(|l| l.split(':').next().map(str::to_string))
        .expect("a group with gid 1");
    let output = exporter_as_nobody(&[&format!("--nova.config-file={}", conf.display())]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        format!("cannot read {}", conf.display()),
        "Permission denied".to_string(),
        format!("usermod -a -G {group} nova-lvm-exporter"),
        "packaging/systemd/root.conf".to_string(),
    ] {
        assert!(stderr.contains(&needle), "{needle:?} not in {stderr:?}");
    }

    // The libvirt directory as libvirt leaves it: root only.
    let qemu = dir.path().join("qemu");
    std::fs::create_dir(&qemu).unwrap();
    std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o700)).unwrap();
    let output = exporter_as_nobody(&[
        "report",
        "--nova.images-volume-group=vms-group",
        &format!("--collector.libvirt.xml-dir={}", qemu.display()),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("libvirt ") && l.contains("FAILED"))
        .unwrap_or_else(|| panic!("the libvirt collector fails:\n{stdout}"));
    for needle in [
        qemu.display().to_string().as_str(),
        "Permission denied",
        "packaging/systemd/root.conf",
        "--no-collector.libvirt",
    ] {
        assert!(line.contains(needle), "{needle:?} not in {line:?}");
    }

    // As libvirt leaves the files in a listable directory: each domain file root only.
    std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).unwrap();
    let domain = qemu.join("instance-00000001.xml");
    std::fs::write(&domain, "<domain/>").unwrap();
    std::fs::set_permissions(&domain, std::fs::Permissions::from_mode(0o600)).unwrap();
    let output = exporter_as_nobody(&[
        "report",
        "--nova.images-volume-group=vms-group",
        &format!("--collector.libvirt.xml-dir={}", qemu.display()),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("libvirt ") && l.contains("FAILED"))
        .unwrap_or_else(|| panic!("the libvirt collector fails:\n{stdout}"));
    for needle in [
        domain.display().to_string().as_str(),
        "Permission denied",
        "packaging/systemd/root.conf",
    ] {
        assert!(line.contains(needle), "{needle:?} not in {line:?}");
    }
}
