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
