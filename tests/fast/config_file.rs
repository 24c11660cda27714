//! `--config.file` and `--config.check` on the built binary: the file is equivalent to the flags,
//! a flag on the command line wins over the file, the file wins over nova.conf; unknown keys and
//! bad values name the file, line and key (exit 2); secrets are never printed. Also the
//! generated shell completions and man page. Runs on the example host's replay files (no root).

use std::path::Path;
use std::process::{Command, Output};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed-incident");

fn exporter(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"));
    for (key, _) in std::env::vars() {
        if key.starts_with("OS_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run the exporter")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The example host as a configuration file, with nova.conf's reserve (0) overridden.
fn example_config(dir: &Path) -> String {
    let nova_conf = write(
        dir,
        "nova.conf",
        "[DEFAULT]\nreserved_host_disk_mb = 1500\n[libvirt]\nimages_type = lvm\nimages_volume_group = vms-group\n",
    );
    write(
        dir,
        "exporter.toml",
        &format!(
            "# the example host\n[nova]\nconfig-file = \"{nova_conf}\"\nreserved-host-disk-mb = 2048\n\n\
             [collector.lvm]\nreplay-file = \"{EXAMPLE}/lvm-report.json\"\nvg = [\"vms-group\"]\ntimeout = \"2s\"\n\n\
             [collector.libvirt]\nenabled = false\n\n[collector.file]\npath = \"{EXAMPLE}/instances.json\"\n\n\
             [log]\nlevel = \"warn\"\n"
        ),
    )
}

/// `report --format json`; exit 0 when every collector succeeded, 1 when one failed.
fn report_json(args: &[&str]) -> serde_json::Value {
    let output = exporter(args, &[]);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_file_is_equivalent_to_the_flags_and_flags_win_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("--config.file={}", example_config(dir.path()));

    // The file wins over nova.conf (1500) ...
    let json = report_json(&["report", "--format=json", &config]);
    assert_eq!(json["settings"]["reserved_host_disk_mb"], 2048);
    assert_eq!(json["primary_source"], "file");
    assert_eq!(
        json["vgs"][0]["accounting"]["untracked"]["foreign_bytes"],
        214748364800u64
    );
    // ... and a flag, before or after the subcommand, wins over the file.
    let json = report_json(&[
        &config,
        "report",
        "--format=json",
        "--nova.reserved-host-disk-mb=100",
    ]);
    assert_eq!(json["settings"]["reserved_host_disk_mb"], 100);
    let json = report_json(&[
        "--nova.reserved-host-disk-mb=100",
        &config,
        "report",
        "--format=json",
    ]);
    assert_eq!(json["settings"]["reserved_host_disk_mb"], 100);
    // A switch on the command line wins over the file's "enabled".
    let json = report_json(&[
        &config,
        "report",
        "--format=json",
        "--collector.libvirt",
        "--collector.libvirt.xml-dir=/nonexistent",
    ]);
    assert_eq!(json["primary_source"], "libvirt");
    assert_eq!(json["complete"], false);
}

#[test]
fn config_check_prints_the_effective_settings_and_their_origins() {
    let dir = tempfile::tempdir().unwrap();
    let file = example_config(dir.path());
    let output = exporter(
        &[
            &format!("--config.file={file}"),
            "--config.check",
            "--web.listen-address=127.0.0.1:19999",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "the configuration is valid",
        "[nova]",
        "reserved-host-disk-mb = 2048",
        &format!("# {file}:4"),
        "listen-address = \"127.0.0.1:19999\"",
        "# command line",
        "[collector.libvirt]\nenabled = false",
        "lv-series-limit = 100",
        "# default",
        "#   nova's VG: vms-group",
        "#   reserved_host_disk_mb: 2048",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}

#[test]
fn config_check_never_prints_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "exporter.toml",
        "[nova]\nimages-volume-group = \"vms-group\"\nconfig-file = \"/dev/null\"\n[collector.placement]\nenabled = true\nhostname = \"cmp-7.example\"\n",
    );
    let output = exporter(
        &[&format!("--config.file={file}"), "--config.check"],
        &[
            ("OS_AUTH_URL", "http://127.0.0.1:1/v3"),
            ("OS_APPLICATION_CREDENTIAL_ID", "ac-id"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "never-shown-secret"),
        ],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("[collector.placement]\nenabled = true"),
        "{text}"
    );
    assert!(text.contains("hostname = \"cmp-7.example\""), "{text}");
    assert!(
        text.contains("resource provider \"cmp-7.example\""),
        "{text}"
    );
    assert!(!text.contains("never-shown-secret"), "{text}");
}

fn assert_file_error(text: &str, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bad.toml", text);
    for extra in [&[][..], &["--config.check"][..]] {
        let mut args = vec![format!("--config.file={file}")];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = exporter(&args, &[]);
        assert_eq!(output.status.code(), Some(2), "{text:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        for needle in expected {
            let needle = needle.replace("FILE", &file);
            assert!(stderr.contains(&needle), "{needle:?} not in {stderr:?}");
        }
    }
}

#[test]
fn unknown_keys_and_bad_values_name_the_file_line_and_key() {
    assert_file_error(
        "[web]\nlisten-address = \":10061\"\n\n[collector.lvm]\ntimout = \"5s\"\n",
        &["FILE:5: unknown key \"collector.lvm.timout\""],
    );
    assert_file_error(
        "colector.timeout = \"5s\"\n",
        &["FILE:1: unknown key \"colector.timeout\""],
    );
    assert_file_error(
        "[collector.lvm]\ntimeout = \"soon\"\n",
        &["FILE:2: collector.lvm.timeout:", "expected a duration"],
    );
    assert_file_error(
        "[collector.libvirt]\nenabled = \"yes\"\n",
        &["FILE:2: collector.libvirt.enabled: expected true or false"],
    );
    assert_file_error(
        "[web]\nlisten-address = [\":1\", \":2\"]\n",
        &["FILE:2: web.listen-address: expected one value, got an array"],
    );
    assert_file_error("[web\n", &["FILE:1: not valid TOML"]);
    assert_file_error("[log]\nlevel = \"loud\"\n", &["FILE:2: log.level:", "loud"]);
    let output = exporter(&["--config.file=/nonexistent/exporter.toml"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("--config.file=/nonexistent/exporter.toml"));
}

#[test]
fn completions_and_the_man_page_are_generated_from_the_flags() {
    for shell in ["bash", "zsh", "fish"] {
        let output = exporter(&["completions", shell], &[]);
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        for needle in ["collector.lvm.vg", "report", "check", "warning.untracked"] {
            assert!(script.contains(needle), "{shell}: {needle} missing");
        }
    }
    let output = exporter(&["man"], &[]);
    assert!(output.status.success());
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(page.contains(".TH nova-lvm-exporter 1"), "{page}");
    for needle in [
        "collector.lvm.vg",
        "config.file",
        "COMMAND: REPORT",
        "COMMAND: CHECK",
        "warning.untracked",
    ] {
        assert!(page.contains(needle), "{needle} missing from the man page");
    }
}

/// The configuration the exporter resolves from these arguments (no `OS_*` variables).
fn resolved(args: &[String], cwd: &Path) -> nova_lvm_exporter::config::resolve::Config {
    let mut argv = vec![std::ffi::OsString::from("nova-lvm-exporter")];
    argv.extend(args.iter().map(std::ffi::OsString::from));
    let parsed = nova_lvm_exporter::config::file::parse_args(argv)
        .unwrap_or_else(|e| panic!("{args:?}: {e:?}"));
    parsed
        .cli
        .resolve_with(&|_: &str| None, cwd)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn config_check_output_loaded_as_the_config_file_gives_the_same_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let nova_conf = write(
        dir.path(),
        "nova.conf",
        "[DEFAULT]\nhost = compute-nw1\n[libvirt]\nimages_type = lvm\nimages_volume_group = vms-group\n",
    );
    let conf_flag = format!("--nova.config-file={nova_conf}");
    let instances = format!("--collector.file.path={EXAMPLE}/instances.json");
    let cases: Vec<Vec<&str>> = vec![
        // Every default (nova.conf only names the VG).
        vec![],
        vec!["--no-collector.lvm.sync-io"],
        vec![
            "--collector.lvm.sync-io",
            "--no-collector.libvirt",
            &instances,
        ],
        vec![
            "--collector.lvm.vg=vms-group",
            "--collector.lvm.vg=other-vg",
            "--collector.lvm.command-prefix=sudo -n",
            "--collector.lvm.timeout=2s",
            "--web.listen-address=127.0.0.1:19999",
            "--web.telemetry-path=/nova-metrics",
            "--nova.disk-allocation-ratio=1.5",
            "--nova.reserved-host-disk-mb=2048",
            "--log.level=debug",
            "--tracked.primary=file",
            &instances,
        ],
    ];
    for (n, case) in cases.iter().enumerate() {
        let mut args = vec![conf_flag.clone()];
        args.extend(case.iter().map(|a| a.to_string()));
        let printed = exporter(
            &args
                .iter()
                .map(String::as_str)
                .chain(["--config.check"])
                .collect::<Vec<_>>(),
            &[],
        );
        assert_eq!(printed.status.code(), Some(0), "{args:?}: {printed:?}");
        let printed = String::from_utf8(printed.stdout).unwrap();
        let file = write(dir.path(), &format!("printed-{n}.toml"), &printed);
        let from_file = resolved(&[format!("--config.file={file}")], dir.path());
        assert_eq!(
            resolved(&args, dir.path()),
            from_file,
            "{args:?}: --config.check printed a configuration that loads differently:\n{printed}"
        );
        // And printing the loaded file again gives the same values.
        let again = exporter(&[&format!("--config.file={file}"), "--config.check"], &[]);
        let values = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split(" # ").next().unwrap().trim_end().to_string())
                .collect()
        };
        assert_eq!(
            values(&printed),
            values(&String::from_utf8(again.stdout).unwrap()),
            "{args:?}"
        );
    }
}
