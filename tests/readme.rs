//! The README is part of the interface: its first command must work exactly as written, the
//! output it shows must be what the exporter prints, and its tables must list every metric and
//! every flag.

mod common;

use clap::CommandFactory;
use common::*;

const README: &str = include_str!("../README.md");

/// The first fenced block of the README: the two set-up commands.
fn setup_commands() -> Vec<&'static str> {
    let block = README
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README opens with a ```sh block");
    block.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn the_readme_opens_with_exactly_two_commands_run_and_test() {
    let commands = setup_commands();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(
        commands[0].starts_with("cargo run --release -- "),
        "{}",
        commands[0]
    );
    assert_eq!(commands[1], "scripts/test");
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(
        ci.contains("\nscripts/test"),
        ".ci/run must run the README's test command"
    );
}

#[test]
fn the_first_command_serves_what_the_readme_shows() {
    let args: Vec<String> = setup_commands()[0]
        .trim_start_matches("cargo run --release -- ")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    // The README's command runs from the repository root, like every exporter the tests start.
    let exporter = Exporter::start(&args);
    let m = exporter.scrape();

    let shown = README
        .split("```console\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README shows the example's output");
    let mut checked = 0;
    for line in shown.lines().filter(|l| l.starts_with("nova_lvm_")) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert_eq!(m.value(series), value.parse::<f64>().unwrap(), "{series}");
        checked += 1;
    }
    assert!(checked >= 8, "the README shows the drift figures");
    assert_eq!(
        m.value("nova_lvm_drift_bytes{vg=\"vms-group\"}"),
        (200 * GIB) as f64
    );
    let complaints = promtool_check_metrics(&m.text);
    assert!(
        complaints.is_empty(),
        "promtool check metrics: {complaints}"
    );
}

#[test]
fn every_metric_family_is_in_the_readme_table() {
    for (name, _) in nova_lvm_exporter::metrics::documented_families() {
        assert!(
            README.contains(&format!("| `{name}` |")),
            "{name} is missing from the README's metric table"
        );
    }
}

#[test]
fn every_flag_is_in_the_readme() {
    let command = nova_lvm_exporter::cli::Cli::command();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        assert!(
            README.contains(&format!("`--{long}`")),
            "--{long} is missing from the README's flag table"
        );
    }
    for sub in command.get_subcommands() {
        assert!(
            README.contains(&format!("| `{}", sub.get_name())),
            "subcommand {} is missing from the README's subcommand table",
            sub.get_name()
        );
        for arg in sub.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            assert!(
                README.contains(&format!("`--{long}`")),
                "--{long} of {} is missing from the README's subcommand table",
                sub.get_name()
            );
        }
    }
}

#[test]
fn the_readme_configuration_file_example_is_valid() {
    let section = README
        .split("## Configuration file\n")
        .nth(1)
        .expect("a Configuration file section");
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a TOML example");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, example).unwrap();
    let parsed = nova_lvm_exporter::config_file::parse_args(vec![
        "nova-lvm-exporter".into(),
        format!("--config.file={}", path.display()).into(),
    ])
    .unwrap_or_else(|e| panic!("the README's example: {e:?}"));
    assert_eq!(parsed.cli.lvm_vgs, vec!["vms-group", "cinder-volumes"]);
    assert_eq!(parsed.cli.lvm_command_prefix, "sudo -n");
    assert_eq!(
        parsed.cli.web_config_file.as_deref(),
        Some(std::path::Path::new("/etc/nova-lvm-exporter/web.yml"))
    );
    assert!(!parsed.cli.no_libvirt && !parsed.cli.placement);
}
