//! `--config.file`: a TOML file holding any of the top-level flags, and the command-line parse
//! that merges it (a flag on the command line wins over the file, the file wins over nova.conf
//! and the defaults).
//!
//! The keys are the flags themselves, split at their last dot into a table and a key, so that
//! the file can never drift from the flags: `--web.listen-address` is `listen-address` in
//! `[web]`, `--collector.lvm.timeout` is `timeout` in `[collector.lvm]`, `--os-cloud` is the
//! top-level `os-cloud`. A switch with a `--no-` twin is `enabled = true|false` in its own
//! table (`[collector.libvirt] enabled = false`). A repeatable flag takes an array. Every value
//! is checked with the flag's own parser; an unknown key, a wrong type or a bad value is an
//! error naming the file, the line and the key.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, FromArgMatches};
use toml::de::{DeTable, DeValue};

use crate::config::flags::Cli;

/// Flags that never go in the file.
const NOT_IN_FILE: &[&str] = &["help", "version", "config.file", "config.check"];

/// Switches (with a `--no-` twin) that are on when neither is given (their tables).
/// tests/fast/config_file.rs proves this list against what the configuration enables.
const ENABLED_BY_DEFAULT: &[&str] = &[
    "collector.libvirt",
    "collector.lvm.sync-io",
    "collector.start-spread",
];

/// Parts of a key that mark a secret: its value is never printed.
const SECRET_MARKERS: &[&str] = &["password", "secret", "token", "credential"];

/// Where an effective setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Given on the command line.
    CommandLine,
    /// From an environment variable (e.g. `OS_CLOUD`).
    Environment,
    /// From the configuration file, at this line.
    ConfigFile(usize),
    /// The flag's default.
    Default,
}

/// The command line with the configuration file merged in.
#[derive(Debug)]
pub struct Parsed {
    /// The flags as the exporter uses them.
    pub cli: Cli,
    /// The configuration file, when one was given.
    pub config_file: Option<PathBuf>,
    /// Every setting that has a value, as `(key, value, origin)` in the file's notation.
    pub settings: Vec<Setting>,
}

/// One effective setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The TOML table (`web`, `collector.lvm`; empty for top-level keys).
    pub table: String,
    /// The key in that table.
    pub key: String,
    /// Its value, TOML-formatted (secrets redacted).
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

/// Why the command line or the file could not be parsed.
#[derive(Debug)]
pub enum ParseError {
    /// A usage error of the command line itself (or `--help`/`--version`, which clap prints).
    Clap(clap::Error),
    /// A problem in the configuration file: one line naming the file, line and key.
    File(String),
}

/// Where a flag lives in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileKey {
    table: String,
    key: String,
    /// The `--no-` half of a switch pair: `enabled = false` selects it.
    negated: bool,
}

impl FileKey {
    fn dotted(&self) -> String {
        if self.table.is_empty() {
            self.key.clone()
        } else {
            format!("{}.{}", self.table, self.key)
        }
    }
}

fn is_switch(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue)
}

/// The file key of every flag that may appear in the file, with the flag.
fn file_keys(command: &clap::Command) -> Vec<(FileKey, Arg)> {
    let longs: Vec<&str> = command.get_arguments().filter_map(Arg::get_long).collect();
    command
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            if NOT_IN_FILE.contains(&long) {
                return None;
            }
            let (base, negated) = match long.strip_prefix("no-") {
                Some(base) if longs.contains(&base) => (base, true),
                _ => (long, false),
            };
            let paired = negated || longs.contains(&format!("no-{long}").as_str());
            let key = if is_switch(arg) && paired {
                FileKey {
                    table: base.to_string(),
                    key: "enabled".to_string(),
                    negated,
                }
            } else {
                let (table, key) = base.rsplit_once('.').unwrap_or(("", base));
                FileKey {
                    table: table.to_string(),
                    key: key.to_string(),
                    negated: false,
                }
            };
            Some((key, arg.clone()))
        })
        .collect()
}

/// The line (1-based) of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// One value of the file, flattened to its dotted key.
struct FileValue<'a> {
    dotted: String,
    line: usize,
    value: &'a DeValue<'a>,
}

fn flatten<'a>(table: &'a DeTable<'a>, prefix: &str, text: &str, out: &mut Vec<FileValue<'a>>) {
    for (key, value) in table.iter() {
        let dotted = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        match value.get_ref() {
            DeValue::Table(inner) => flatten(inner, &dotted, text, out),
            other => out.push(FileValue {
                dotted,
                line: line_of(text, key.span().start),
                value: other,
            }),
        }
    }
}

/// A scalar as the text a flag would get.
fn scalar_text(value: &DeValue) -> Option<String> {
    match value {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) if i.radix() == 10 => Some(i.as_str().replace('_', "")),
        DeValue::Float(f) => Some(f.as_str().replace('_', "")),
        DeValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads the file and turns it into command-line arguments, each checked with its flag's parser.
/// Flags in `given` (on the command line or from the environment) are left out.
fn file_args(
    path: &Path,
    command: &clap::Command,
    given: &dyn Fn(&str) -> bool,
) -> Result<(Vec<OsString>, BTreeMap<String, usize>), String> {
    let name = path.display().to_string();
    let text = crate::input::read_text(path).map_err(|e| match e.io_error() {
        Some(io) => format!("--config.file={name}: {io}"),
        None => format!("--config.file: {e}"),
    })?;
    let document = DeTable::parse(&text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_of(&text, span.start));
        format!(
            "{name}:{line}: not valid TOML: {}",
            e.message().lines().next().unwrap_or("parse error")
        )
    })?;
    let mut values = Vec::new();
    flatten(document.get_ref(), "", &text, &mut values);

    let keys = file_keys(command);
    let mut args = Vec::new();
    let mut lines = BTreeMap::new();
    for FileValue {
        dotted,
        line,
        value,
    } in values
    {
        let at = |message: String| format!("{name}:{line}: {dotted}: {message}");
        let candidates: Vec<&(FileKey, Arg)> =
            keys.iter().filter(|(k, _)| k.dotted() == dotted).collect();
        let Some((_, arg)) = candidates.first() else {
            return Err(format!(
                "{name}:{line}: unknown key {dotted:?} (keys are the flags: --web.listen-address is listen-address in [web]; see docs/configuration.md)"
            ));
        };
        let long = arg.get_long().unwrap_or_default();
        let pair_given = candidates.iter().any(|(_, a)| given(a.get_id().as_str()));
        if is_switch(arg) {
            let DeValue::Boolean(on) = value else {
                return Err(at(format!(
                    "expected true or false, got a {}",
                    value.type_str()
                )));
            };
            lines.insert(dotted.clone(), line);
            if pair_given {
                continue;
            }
            // A pair: pick the positive or the negative flag; a lone switch: set it or not.
            let chosen = candidates
                .iter()
                .find(|(k, _)| k.negated != *on)
                .map(|(_, a)| a);
            if let Some(flag) = chosen.and_then(|a| a.get_long()) {
                args.push(OsString::from(format!("--{flag}")));
            }
            continue;
        }
        let texts: Vec<String> = match value {
            DeValue::Array(items) => {
                if !matches!(arg.get_action(), ArgAction::Append) {
                    return Err(at(format!(
                        "expected one value, got an array (--{long} is not repeatable)"
                    )));
                }
                items
                    .iter()
                    .map(|item| {
                        scalar_text(item.get_ref()).ok_or_else(|| {
                            at(format!(
                                "expected an array of strings, got a {} in it",
                                item.get_ref().type_str()
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            other => vec![scalar_text(other).ok_or_else(|| {
                at(format!(
                    "expected a string or number, got a {}",
                    other.type_str()
                ))
            })?],
        };
        for text in &texts {
            // The flag's own parser, alone: its error names what was expected.
            command
                .clone()
                .try_get_matches_from([OsString::from("nova-lvm-exporter"), flag_arg(long, text)])
                .map_err(|e| at(clap_message(&e)))?;
        }
        lines.insert(dotted.clone(), line);
        if pair_given || given(arg.get_id().as_str()) {
            continue;
        }
        for text in texts {
            args.push(flag_arg(long, &text));
        }
    }
    Ok((args, lines))
}

fn flag_arg(long: &str, value: &str) -> OsString {
    OsString::from(format!("--{long}={value}"))
}

/// The first line of a clap error, without its `error: ` prefix.
///
/// The line says how to fix it where clap knows more than its first line shows: an enum flag
/// lists its values, and a switch given a value (`--collector.libvirt=false`) points at its
/// `--no-` form or at giving the switch alone.
pub fn clap_message(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let rendered = error.to_string();
    let mut message = rendered
        .lines()
        .next()
        .unwrap_or("invalid value")
        .trim_start_matches("error: ")
        .to_string();
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        _ => None,
    };
    match error.kind() {
        ErrorKind::InvalidValue => {
            if let Some(ContextValue::Strings(values)) = error.get(ContextKind::ValidValue) {
                message.push_str(&format!("; expected one of: {}", values.join(", ")));
            }
        }
        ErrorKind::TooManyValues | ErrorKind::UnknownArgument => {
            if let (Some(arg), Some(value)) = (
                context(ContextKind::InvalidArg),
                context(ContextKind::InvalidValue),
            ) {
                if let Some(hint) = switch_hint(&arg, &value) {
                    message.push_str(&format!("; {hint}"));
                }
            }
        }
        _ => {}
    }
    message
}

/// How to say what `--SWITCH=VALUE` meant: the switch alone for a true value, its `--no-` form
/// (when it has one) for a false one.
fn switch_hint(arg: &str, value: &str) -> Option<String> {
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    let command = crate::config::flags::command();
    let has = |name: &str| command.get_arguments().any(|a| a.get_long() == Some(name));
    if !has(long) {
        return None;
    }
    let negated = match long.strip_prefix("no-") {
        Some(positive) => positive.to_string(),
        None => format!("no-{long}"),
    };
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(format!(
            "{arg} is a switch and takes no value: give it alone"
        )),
        "false" | "no" | "off" | "0" if has(&negated) => Some(format!(
            "{arg} is a switch and takes no value: use --{negated} to turn it off"
        )),
        _ => Some(format!("{arg} is a switch and takes no value")),
    }
}

/// True when the value came from the command line or the environment.
fn explicit(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine) | Some(ValueSource::EnvVariable)
    )
}

/// The top-level matches of a parse, with the values of global flags given after a subcommand
/// included (clap propagates them).
fn parse_matches(command: &clap::Command, args: &[OsString]) -> Result<ArgMatches, clap::Error> {
    command.clone().try_get_matches_from(args)
}

/// Parses the command line (`args[0]` is the program name), merging `--config.file` when given.
pub fn parse_args(args: Vec<OsString>) -> Result<Parsed, ParseError> {
    let command = crate::config::flags::command();
    let first = parse_matches(&command, &args).map_err(ParseError::Clap)?;
    let config_file = first.get_one::<PathBuf>("config_file").cloned();
    let (matches, lines) = match &config_file {
        None => (first.clone(), BTreeMap::new()),
        Some(path) => {
            let (file_args, lines) =
                file_args(path, &command, &|id| explicit(&first, id)).map_err(ParseError::File)?;
            let mut merged = vec![args.first().cloned().unwrap_or_default()];
            merged.extend(file_args);
            merged.extend(args.iter().skip(1).cloned());
            let matches = parse_matches(&command, &merged).map_err(|e| {
                ParseError::File(format!("{}: {}", path.display(), clap_message(&e)))
            })?;
            (matches, lines)
        }
    };
    let cli = Cli::from_arg_matches(&matches).map_err(ParseError::Clap)?;
    let settings = effective_settings(&command, &first, &matches, &lines);
    Ok(Parsed {
        cli,
        config_file,
        settings,
    })
}

/// A value as TOML.
fn toml_value(text: &str, arg: &Arg) -> String {
    let numeric = text.parse::<f64>().is_ok() && !text.is_empty();
    let typed_as_number = arg.get_value_names().is_some_and(|names| {
        names
            .iter()
            .any(|n| matches!(n.as_str(), "N" | "MIB" | "RATIO"))
    });
    if numeric && typed_as_number {
        text.to_string()
    } else {
        format!("{text:?}")
    }
}

fn redact(key: &FileKey, value: String) -> String {
    let lower = key.dotted().to_ascii_lowercase();
    if SECRET_MARKERS.iter().any(|m| lower.contains(m)) {
        "\"<redacted>\"".to_string()
    } else {
        value
    }
}

fn effective_settings(
    command: &clap::Command,
    original: &ArgMatches,
    matches: &ArgMatches,
    lines: &BTreeMap<String, usize>,
) -> Vec<Setting> {
    // Origins come from the original command line: file values were merged only for flags it
    // lacked, so anything it did not set and the file has is the file's.
    let origin_of = |key: &FileKey, ids: &[&str]| -> Origin {
        let sources: Vec<ValueSource> = ids
            .iter()
            .filter_map(|id| original.value_source(id))
            .collect();
        if sources.contains(&ValueSource::CommandLine) {
            Origin::CommandLine
        } else if sources.contains(&ValueSource::EnvVariable) {
            Origin::Environment
        } else if let Some(&line) = lines.get(&key.dotted()) {
            Origin::ConfigFile(line)
        } else {
            Origin::Default
        }
    };
    let mut settings = Vec::new();
    let keys = file_keys(command);
    let mut seen = Vec::new();
    for (key, arg) in &keys {
        let dotted = key.dotted();
        if seen.contains(&dotted) {
            continue;
        }
        seen.push(dotted.clone());
        let ids: Vec<&str> = keys
            .iter()
            .filter(|(k, _)| k.dotted() == dotted)
            .map(|(_, a)| a.get_id().as_str())
            .collect();
        if is_switch(arg) {
            let set = |negated: bool| {
                keys.iter()
                    .filter(|(k, _)| k.dotted() == dotted && k.negated == negated)
                    .any(|(_, a)| matches.get_flag(a.get_id().as_str()))
            };
            let on = if set(true) {
                false
            } else if set(false) {
                true
            } else {
                ids.len() > 1 && ENABLED_BY_DEFAULT.contains(&key.table.as_str())
            };
            settings.push(Setting {
                table: key.table.clone(),
                key: key.key.clone(),
                value: on.to_string(),
                origin: origin_of(key, &ids),
            });
            continue;
        }
        let Some(raw) = matches.get_raw(arg.get_id().as_str()) else {
            continue;
        };
        let values: Vec<String> = raw.map(|v| toml_value(&v.to_string_lossy(), arg)).collect();
        let value = if matches!(arg.get_action(), ArgAction::Append) {
            format!("[{}]", values.join(", "))
        } else {
            values.join(", ")
        };
        settings.push(Setting {
            table: key.table.clone(),
            key: key.key.clone(),
            value: redact(key, value),
            origin: origin_of(key, &ids),
        });
    }
    settings
}

/// The effective settings as a TOML document with each value's origin, for `--config.check`.
pub fn render_settings(settings: &[Setting], config_file: Option<&Path>) -> String {
    let mut out = String::new();
    let mut tables: BTreeMap<&str, Vec<&Setting>> = BTreeMap::new();
    for setting in settings {
        tables
            .entry(setting.table.as_str())
            .or_default()
            .push(setting);
    }
    let file = config_file
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    for (table, settings) in tables {
        if !table.is_empty() {
            out.push_str(&format!("\n[{table}]\n"));
        }
        for setting in settings {
            let origin = match setting.origin {
                Origin::CommandLine => "command line".to_string(),
                Origin::Environment => "environment".to_string(),
                Origin::ConfigFile(line) => format!("{file}:{line}"),
                Origin::Default => "default".to_string(),
            };
            let line = format!("{} = {}", setting.key, setting.value);
            out.push_str(&format!("{line:<50} # {origin}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(long: &str) -> String {
        let command = crate::config::flags::command();
        file_keys(&command)
            .into_iter()
            .find(|(_, arg)| arg.get_long() == Some(long))
            .map(|(key, _)| format!("{}|{}|{}", key.table, key.key, key.negated))
            .unwrap_or_else(|| panic!("--{long} has no file key"))
    }

    /// `file_args` on a file holding `text`, on a thread with a 2 MiB stack (an overflow
    /// aborts the test binary).
    fn file_args_on_a_2mib_stack(text: String) -> Result<Vec<OsString>, String> {
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let file = tempfile::NamedTempFile::new().unwrap();
                std::fs::write(file.path(), text).unwrap();
                let command = crate::config::flags::command();
                file_args(file.path(), &command, &|_| false)
                    .map(|(args, _)| args)
                    .map_err(|e| e.replace(&file.path().display().to_string(), "FILE"))
            })
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn deep_toml_is_an_error_not_a_stack_overflow() {
        // The toml crate bounds its recursion (80 levels): arrays and inline tables in its
        // parser, dotted keys and table headers when it builds the tables. Within the bound,
        // flattening the tables recurses at most as deep.
        let levels = 100_000;
        let dotted = vec!["a"; levels].join(".");
        let cases = [
            (
                format!(
                    "[web]\nlisten-address = {}1{}",
                    "[".repeat(levels),
                    "]".repeat(levels)
                ),
                "FILE:2: not valid TOML: cannot recurse further; max recursion depth met",
            ),
            (
                format!("web = {}1{}", "{ a = ".repeat(levels), "}".repeat(levels)),
                "FILE:1: not valid TOML: cannot recurse further; max recursion depth met",
            ),
            (
                format!("{dotted} = 1"),
                "FILE:1: not valid TOML: recursion limit",
            ),
            (
                format!("[{dotted}]\nb = 1"),
                "FILE:1: not valid TOML: recursion limit",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(file_args_on_a_2mib_stack(text).unwrap_err(), expected);
        }
        let within = format!("{} = 1", vec!["a"; 79].join("."));
        let error = file_args_on_a_2mib_stack(within).unwrap_err();
        assert!(error.starts_with("FILE:1: unknown key \"a.a.a"), "{error}");
    }

    #[test]
    fn keys_are_the_flags_split_at_their_last_dot() {
        assert_eq!(key_of("web.listen-address"), "web|listen-address|false");
        assert_eq!(key_of("web.config.file"), "web.config|file|false");
        assert_eq!(key_of("collector.lvm.vg"), "collector.lvm|vg|false");
        assert_eq!(key_of("collector.timeout"), "collector|timeout|false");
        assert_eq!(key_of("os-cloud"), "|os-cloud|false");
        assert_eq!(
            key_of("collector.libvirt"),
            "collector.libvirt|enabled|false"
        );
        assert_eq!(
            key_of("no-collector.libvirt"),
            "collector.libvirt|enabled|true"
        );
        assert_eq!(
            key_of("collector.placement"),
            "collector.placement|enabled|false"
        );
    }

    #[test]
    fn every_key_belongs_to_one_flag_or_one_switch_pair() {
        let command = crate::config::flags::command();
        let keys = file_keys(&command);
        for (key, arg) in &keys {
            let same: Vec<&(FileKey, Arg)> = keys
                .iter()
                .filter(|(k, _)| k.dotted() == key.dotted())
                .collect();
            match same.len() {
                1 => {}
                2 => assert!(
                    same.iter().all(|(_, a)| is_switch(a))
                        && same[0].0.negated != same[1].0.negated,
                    "{} is shared by two flags that are not a switch pair",
                    key.dotted()
                ),
                _ => panic!(
                    "{} is shared by {} flags (--{:?})",
                    key.dotted(),
                    same.len(),
                    arg.get_long()
                ),
            }
        }
        assert!(!keys
            .iter()
            .any(|(_, a)| a.get_long() == Some("config.file")));
    }

    #[test]
    fn the_switches_enabled_by_default_are_the_ones_the_configuration_enables() {
        let args = [
            "nova-lvm-exporter",
            "--nova.images-volume-group=vg",
            "--nova.config-file=/dev/null",
        ];
        let parsed = parse_args(args.iter().map(OsString::from).collect()).unwrap();
        let config = parsed.cli.resolve().unwrap();
        assert!(config.libvirt_xml_dir.is_some());
        assert!(ENABLED_BY_DEFAULT.contains(&"collector.libvirt"));
        assert!(config.placement.is_none());
        assert!(!ENABLED_BY_DEFAULT.contains(&"collector.placement"));
    }
}
