//! The README and the documents it indexes are part of the interface: the README's first command
//! must work exactly as written, the output it shows must be what the exporter prints, its table
//! must list every metric, `docs/configuration.md` must list every flag with the default
//! `--help` prints, and no relative link in the docs may be dead.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

const README: &str = include_str!("../../README.md");
const CONFIGURATION: &str = include_str!("../../docs/configuration.md");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

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
    for (name, _) in nova_lvm_exporter::output::metrics::documented_families() {
        assert!(
            README.contains(&format!("| `{name}` |")),
            "{name} is missing from the README's metric table"
        );
    }
}

/// The long flags of `nova-lvm-exporter [SUBCOMMAND] --help`, each with the default it prints.
fn flags_in_help(subcommand: Option<&str>) -> BTreeMap<String, Option<String>> {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"));
    command.args(subcommand).arg("--help");
    let out = command.output().expect("run nova-lvm-exporter --help");
    assert!(out.status.success(), "{subcommand:?} --help failed");
    let help = String::from_utf8(out.stdout).unwrap();
    let mut flags = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in help.lines() {
        let option = line.trim_start();
        // Options are indented by at most 6 columns, their descriptions by 10.
        let indent = line.len() - option.len();
        let option = option
            .strip_prefix('-')
            .filter(|rest| !rest.starts_with('-'))
            .and_then(|rest| rest.split_once(", "))
            .map_or(option, |(_, long)| long);
        if (1..=6).contains(&indent) && option.starts_with("--") {
            let name: String = option[2..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect();
            flags.insert(name.clone(), None);
            current = Some(name);
        } else if let (Some(name), Some(default)) = (&current, line.split("[default: ").nth(1)) {
            let default = default.split(']').next().unwrap().to_string();
            flags.insert(name.clone(), Some(default));
        }
    }
    assert!(flags.len() > 10 || subcommand.is_some(), "{help}");
    flags
}

/// The rows of the flag table in `docs/configuration.md`: each flag of the first column with the
/// row's default column.
fn flag_table() -> BTreeMap<String, String> {
    let section = CONFIGURATION
        .split("\n## Flags\n")
        .nth(1)
        .expect("docs/configuration.md has a \"## Flags\" section");
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `--")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
        for flag in cells[0].split('`').filter(|c| c.starts_with("--")) {
            rows.insert(flag[2..].to_string(), cells[1].trim().to_string());
        }
    }
    rows
}

#[test]
fn the_flag_table_matches_help_in_both_directions_with_its_defaults() {
    let help = flags_in_help(None);
    let table = flag_table();
    let mut wrong = Vec::new();
    for (flag, default) in &help {
        if matches!(flag.as_str(), "help" | "version") {
            continue;
        }
        let Some(documented) = table.get(flag) else {
            wrong.push(format!("--{flag} is missing from the flag table"));
            continue;
        };
        match default.as_deref() {
            // An empty default is written "none".
            Some("\"\"") if documented == "none" => {}
            Some(default) if !documented.contains(&format!("`{default}`")) => wrong.push(format!(
                "--{flag}: --help says the default is {default}, the table says {documented}"
            )),
            _ => {}
        }
    }
    for flag in table.keys() {
        if !help.contains_key(flag) {
            wrong.push(format!("--{flag} is in the flag table but not in --help"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_subcommand_and_its_flags_are_in_the_subcommand_table() {
    let global = flags_in_help(None);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let commands = help
        .split("Commands:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("--help lists the subcommands");
    let names: Vec<&str> = commands
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    assert!(names.len() >= 5, "{names:?}");
    let mut wrong = Vec::new();
    for name in names {
        let Some(row) = CONFIGURATION
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}")))
        else {
            wrong.push(format!(
                "subcommand {name} is missing from the subcommand table"
            ));
            continue;
        };
        for (flag, default) in flags_in_help(Some(name)) {
            if global.contains_key(&flag) || flag == "help" {
                continue;
            }
            let shown = match &default {
                Some(default) => format!("`--{flag}` (`{default}`"),
                None => format!("`--{flag}`"),
            };
            if !row.contains(&shown) {
                wrong.push(format!("{name}: the table lacks {shown}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_configuration_file_example_is_valid() {
    let section = CONFIGURATION
        .split("## Configuration file\n")
        .nth(1)
        .expect("docs/configuration.md has a Configuration file section");
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a TOML example");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, example).unwrap();
    let parsed = nova_lvm_exporter::config::file::parse_args(vec![
        "nova-lvm-exporter".into(),
        format!("--config.file={}", path.display()).into(),
    ])
    .unwrap_or_else(|e| panic!("the example of docs/configuration.md: {e:?}"));
    assert_eq!(parsed.cli.lvm_vgs, vec!["vms-group", "cinder-volumes"]);
    assert_eq!(parsed.cli.lvm_command_prefix, "sudo -n");
    assert_eq!(
        parsed.cli.web_config_file.as_deref(),
        Some(std::path::Path::new("/etc/nova-lvm-exporter/web.yml"))
    );
    assert!(!parsed.cli.no_libvirt && !parsed.cli.placement);
}

#[test]
fn the_readme_stays_short_and_indexes_every_document() {
    assert!(
        README.len() <= 15_000,
        "the README is {} bytes: move detail into docs/ (at most 15 KB)",
        README.len()
    );
    let index = README
        .split("\n## Documentation\n")
        .nth(1)
        .expect("the README has a \"## Documentation\" index");
    for document in documents() {
        let relative = document.strip_prefix(root()).unwrap().display().to_string();
        if relative == "README.md" {
            continue;
        }
        assert!(
            index.contains(&format!("]({relative})")),
            "the README's documentation index does not link {relative}"
        );
    }
}

/// The Markdown documents: the README, CONTRIBUTING, docs/, and the READMEs of alerts/ and
/// dashboards/.
fn documents() -> Vec<PathBuf> {
    let mut documents: Vec<PathBuf> = [
        "README.md",
        "CONTRIBUTING.md",
        "alerts/README.md",
        "dashboards/README.md",
    ]
    .iter()
    .map(|p| root().join(p))
    .collect();
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            documents.push(path);
        }
    }
    documents.sort();
    documents
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The lines of a Markdown text outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

fn anchors(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    prose(&text)
        .into_iter()
        .filter(|line| line.starts_with('#'))
        .map(|line| github_anchor(line.trim_start_matches('#')))
        .collect()
}

/// Every `](target)` of a Markdown text outside code blocks.
fn link_targets(text: &str) -> Vec<String> {
    prose(text)
        .into_iter()
        .flat_map(|line| {
            line.match_indices("](")
                .map(|(i, _)| line[i + 2..].split(')').next().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut dead = Vec::new();
    let mut checked = 0;
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        let name = document.strip_prefix(root()).unwrap().display().to_string();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                document.clone()
            } else {
                document.parent().unwrap().join(file)
            };
            checked += 1;
            if !path.exists() {
                dead.push(format!("{name}: ({target}): no such file"));
            } else if let Some(anchor) = anchor {
                if path.extension().is_some_and(|e| e == "md")
                    && !anchors(&path).iter().any(|a| a == anchor)
                {
                    dead.push(format!("{name}: ({target}): no such section"));
                }
            }
        }
    }
    assert!(checked >= 30, "only {checked} links found");
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn the_metric_table_names_every_untracked_cause_and_the_identity_sums_them() {
    let row = README
        .lines()
        .find(|l| l.starts_with("| `nova_lvm_untracked_bytes` |"))
        .expect("the untracked row");
    let identity = README
        .lines()
        .find(|l| l.starts_with("`drift = "))
        .expect("the identity");
    for cause in nova_lvm_exporter::accounting::drift::UNTRACKED_CAUSES {
        assert!(row.contains(&format!("`{cause}`")), "{cause} not in {row}");
        assert!(identity.contains(cause), "{cause} not in {identity}");
    }
}
