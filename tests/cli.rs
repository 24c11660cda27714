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
