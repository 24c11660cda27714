//! Discovery of the settings nova uses from `nova.conf` (oslo.config INI syntax).
//!
//! The syntax is the one of oslo.config's `iniparser` (what nova-compute itself reads), not
//! Python's `configparser`:
//!
//! - `[section]` headers; a header that does not end with `]`, or `[]`, is an error. Only
//!   `[DEFAULT]` (exactly that spelling) and `[libvirt]` (any case: oslo lower-cases group names
//!   other than `DEFAULT`) are read; other sections are parsed and ignored. A section may appear
//!   several times; its assignments merge.
//! - Lines starting with `#` or `;` (in the first column) are comments. There are no inline
//!   comments: in `reserved_host_disk_mb = 10 # MiB` the value is `10 # MiB`, which nova rejects
//!   too.
//! - `key = value` or `key: value`, split at whichever of `=` and `:` comes first; key and value
//!   are trimmed; one pair of matching surrounding quotes (`"..."` or `'...'`) is removed from the
//!   value.
//! - A line starting with a space or a tab continues the value of the previous assignment (the
//!   parts are joined with `\n`); a blank line ends it. A continuation with no assignment before
//!   it (for example right after a section header or a comment) is an error, as it is for oslo.
//! - An assignment before any section header is an error.
//! - A repeated key: the last value wins (these options are not multi-valued).
//! - oslo's `$option` interpolation is not performed: values are taken literally.
//!
//! Typed options are validated the way oslo validates them for nova (`IntOpt(min=0)`,
//! `FloatOpt(min=0.0)`), and an empty number (`reserved_host_disk_mb =`) counts as unset, as oslo
//! converts it to `None`. String options with an empty value count as unset too.
//!
//! `disk_allocation_ratio`: since Stein (19.0.0) its default is unset and nova uses
//! `initial_disk_allocation_ratio` (default 1.0) when it creates the compute node; before Stein
//! the default was `0.0`, which meant "use 1.0". In every release `0.0` therefore means "not set":
//! [`parse`] reports `0.0` as `None`. [`NovaConf::effective_disk_allocation_ratio`] applies the
//! fallback.

use std::path::Path;

/// The settings the exporter reads from `nova.conf`. `None` means the option is not set (nova's
/// default then applies).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NovaConf {
    /// `[DEFAULT] host`: the name nova-compute registers under.
    pub host: Option<String>,
    /// `[DEFAULT] state_path` (where `compute_id` lives on recent releases).
    pub state_path: Option<String>,
    /// `[DEFAULT] reserved_host_disk_mb`.
    pub reserved_host_disk_mb: Option<u64>,
    /// `[DEFAULT] disk_allocation_ratio`; `0.0` in the file is reported as `None`, because nova
    /// treats it as unset.
    pub disk_allocation_ratio: Option<f64>,
    /// `[DEFAULT] initial_disk_allocation_ratio`: what nova uses when `disk_allocation_ratio` is
    /// unset (Stein and later; default 1.0). `0.0` is reported as `None`.
    pub initial_disk_allocation_ratio: Option<f64>,
    /// `[libvirt] images_type`.
    pub images_type: Option<String>,
    /// `[libvirt] images_volume_group`.
    pub images_volume_group: Option<String>,
    /// `[workarounds] reserve_disk_resource_for_image_cache`: nova then adds the image cache's
    /// size to placement's DISK_GB `reserved` (libvirt driver,
    /// `_get_disk_size_reserved_for_image_cache`).
    pub reserve_disk_resource_for_image_cache: Option<bool>,
}

impl NovaConf {
    /// The DISK_GB allocation ratio nova applies according to this file: `disk_allocation_ratio`
    /// when set, else `initial_disk_allocation_ratio` when set, else `None` (nova's default, 1.0).
    ///
    /// `initial_disk_allocation_ratio` is only applied when nova creates the compute node
    /// record, so a value changed since then is not what nova uses; the placement source knows
    /// better.
    pub fn effective_disk_allocation_ratio(&self) -> Option<f64> {
        self.disk_allocation_ratio
            .or(self.initial_disk_allocation_ratio)
    }
}

/// A `nova.conf` that exists but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NovaConfError {
    /// The file exists but could not be read.
    #[error(transparent)]
    Read(crate::input::InputError),
    /// The file is not valid oslo.config INI, or an option has a bad value.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads `path`. A file that does not exist is `Ok(None)`.
pub fn load(path: &Path) -> Result<Option<NovaConf>, NovaConfError> {
    let origin = path.display().to_string();
    let bytes = match crate::input::read_file(path) {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(error) => return Err(NovaConfError::Read(error)),
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
            return Err(NovaConfError::Invalid {
                path: origin,
                line,
                message: "not valid UTF-8".to_string(),
            });
        }
    };
    parse(&text, &origin).map(Some)
}

/// One complete assignment, as oslo's parser hands it over.
struct Assignment<'a> {
    /// Line of the key.
    line: usize,
    key: &'a str,
    /// The value's lines (first line already unquoted), to be joined with `\n`.
    parts: Vec<&'a str>,
}

/// The sections whose options we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Default,
    Libvirt,
    Workarounds,
    Other,
}

/// Parses the text of a `nova.conf`; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<NovaConf, NovaConfError> {
    let invalid = |line: usize, message: String| NovaConfError::Invalid {
        path: origin.to_string(),
        line,
        message,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut conf = NovaConf::default();
    let mut section: Option<Section> = None;
    let mut pending: Option<Assignment<'_>> = None;

    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim_end();
        if line.is_empty() {
            if let Some(done) = pending.take() {
                assign(&mut conf, section, done, origin)?;
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match pending.as_mut() {
                Some(assignment) => assignment.parts.push(line.trim_start()),
                None => {
                    return Err(invalid(
                        number,
                        format!(
                            "unexpected continuation line (an indented line continues the value of the assignment above it, and there is none): {line:?}"
                        ),
                    ))
                }
            }
            continue;
        }
        if let Some(done) = pending.take() {
            assign(&mut conf, section, done, origin)?;
        }
        if line.starts_with('[') {
            if !line.ends_with(']') {
                return Err(invalid(
                    number,
                    format!("section header does not end with \"]\": {line:?}"),
                ));
            }
            let name = &line[1..line.len() - 1];
            if name.is_empty() {
                return Err(invalid(number, "empty section name: \"[]\"".to_string()));
            }
            section = Some(if name == "DEFAULT" {
                Section::Default
            } else if name.eq_ignore_ascii_case("libvirt") {
                Section::Libvirt
            } else if name.eq_ignore_ascii_case("workarounds") {
                Section::Workarounds
            } else {
                Section::Other
            });
        } else if line.starts_with(['#', ';']) {
            continue;
        } else {
            let split = match (line.find('='), line.find(':')) {
                (Some(equal), Some(colon)) => equal.min(colon),
                (Some(at), None) | (None, Some(at)) => at,
                (None, None) => {
                    return Err(invalid(
                        number,
                        format!("expected \"key = value\" (no \"=\" or \":\" found): {line:?}"),
                    ))
                }
            };
            let key = line[..split].trim();
            if key.is_empty() {
                return Err(invalid(number, format!("empty option name: {line:?}")));
            }
            let value = unquote(line[split + 1..].trim());
            pending = Some(Assignment {
                line: number,
                key,
                parts: vec![value],
            });
        }
    }
    if let Some(done) = pending.take() {
        assign(&mut conf, section, done, origin)?;
    }
    Ok(conf)
}

/// Removes one pair of matching surrounding quotes, as oslo does (`"x"` and `'x'`; a lone `"`
/// becomes empty, as in oslo).
fn unquote(value: &str) -> &str {
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(&quote @ (b'"' | b'\'')) if bytes[bytes.len() - 1] == quote => {
            if value.len() == 1 {
                ""
            } else {
                &value[1..value.len() - 1]
            }
        }
        _ => value,
    }
}

/// Applies one assignment to `conf` if it is an option we read.
fn assign(
    conf: &mut NovaConf,
    section: Option<Section>,
    assignment: Assignment<'_>,
    origin: &str,
) -> Result<(), NovaConfError> {
    let Assignment { line, key, parts } = assignment;
    let invalid = |message: String| NovaConfError::Invalid {
        path: origin.to_string(),
        line,
        message,
    };
    let Some(section) = section else {
        return Err(invalid(format!(
            "{key}: an option before any [section] header"
        )));
    };
    let value = parts.join("\n");
    match (section, key) {
        (Section::Default, "reserved_host_disk_mb") => {
            conf.reserved_host_disk_mb =
                parse_mib(&value).map_err(|e| invalid(format!("{key}: {e}")))?;
        }
        (Section::Default, "disk_allocation_ratio") => {
            conf.disk_allocation_ratio =
                parse_ratio(&value).map_err(|e| invalid(format!("{key}: {e}")))?;
        }
        (Section::Default, "initial_disk_allocation_ratio") => {
            conf.initial_disk_allocation_ratio =
                parse_ratio(&value).map_err(|e| invalid(format!("{key}: {e}")))?;
        }
        (Section::Default, "host") => conf.host = non_empty(value),
        (Section::Default, "state_path") => conf.state_path = non_empty(value),
        (Section::Libvirt, "images_type") => conf.images_type = non_empty(value),
        (Section::Libvirt, "images_volume_group") => conf.images_volume_group = non_empty(value),
        (Section::Workarounds, "reserve_disk_resource_for_image_cache") => {
            conf.reserve_disk_resource_for_image_cache =
                parse_bool(&value).map_err(|e| invalid(format!("{key}: {e}")))?;
        }
        _ => {}
    }
    Ok(())
}

fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// Removes the `_` digit separators Python's `int()` and `float()` accept (`1_000`), only
/// where one sits between two ASCII digits; `None` when an `_` sits anywhere else.
fn without_digit_separators(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if c == '_' {
            let before = i.checked_sub(1).map(|j| bytes[j]);
            let after = bytes.get(i + 1).copied();
            if !(before.is_some_and(|b| b.is_ascii_digit())
                && after.is_some_and(|b| b.is_ascii_digit()))
            {
                return None;
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `reserved_host_disk_mb`: an integer >= 0 (oslo `IntOpt(min=0)`), `None` when empty.
fn parse_mib(value: &str) -> Result<Option<u64>, String> {
    let text = value.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let expected = || format!("expected a whole number of MiB, got {value:?}");
    let cleaned = without_digit_separators(text).ok_or_else(expected)?;
    let (negative, digits) = match cleaned.as_bytes().first() {
        Some(b'-') => (true, &cleaned[1..]),
        Some(b'+') => (false, &cleaned[1..]),
        _ => (false, cleaned.as_str()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    if negative && digits.bytes().any(|b| b != b'0') {
        return Err(format!("must be 0 or more (MiB), got {value:?}"));
    }
    match digits.parse::<u64>() {
        Ok(mib) if mib <= MAX_RESERVED_HOST_DISK_MB => Ok(Some(mib)),
        _ => Err(format!(
            "{value:?} is too large a number of MiB (at most {MAX_RESERVED_HOST_DISK_MB}, 8 EiB)"
        )),
    }
}

/// The largest `reserved_host_disk_mb` read: its bytes must fit a signed 64-bit figure.
pub const MAX_RESERVED_HOST_DISK_MB: u64 = i64::MAX as u64 / (1024 * 1024);

/// An allocation ratio: a finite float >= 0 (oslo `FloatOpt(min=0.0)`); `None` when empty or
/// `0.0` (nova's "unset").
fn parse_ratio(value: &str) -> Result<Option<f64>, String> {
    let text = value.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let expected = || format!("expected a number like 1.0, got {value:?}");
    let cleaned = without_digit_separators(text).ok_or_else(expected)?;
    let ratio: f64 = cleaned.parse().map_err(|_| expected())?;
    if !ratio.is_finite() {
        return Err(format!("expected a finite number like 1.0, got {value:?}"));
    }
    if ratio < 0.0 {
        return Err(format!("must be 0.0 or more, got {value:?}"));
    }
    Ok((ratio > 0.0).then_some(ratio))
}

/// An oslo `BoolOpt`: true/yes/on/1 or false/no/off/0, any case; `None` when empty.
fn parse_bool(value: &str) -> Result<Option<bool>, String> {
    let text = value.trim().to_ascii_lowercase();
    match text.as_str() {
        "" => Ok(None),
        "true" | "yes" | "on" | "1" => Ok(Some(true)),
        "false" | "no" | "off" | "0" => Ok(Some(false)),
        _ => Err(format!("expected True or False, got {value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "/etc/nova/nova.conf";

    fn ok(text: &str) -> NovaConf {
        parse(text, ORIGIN).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    /// The error message and its line for a text that must be rejected.
    fn err(text: &str) -> (usize, String) {
        match parse(text, ORIGIN) {
            Err(NovaConfError::Invalid {
                path,
                line,
                message,
            }) => {
                assert_eq!(path, ORIGIN);
                (line, message)
            }
            other => panic!("{text:?}: expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn nesting_characters_do_not_recurse() {
        // The INI parser is line by line, without recursion: 100,000 brackets in a section
        // header, in a value and in continuation lines are just text.
        let deep = "[".repeat(100_000);
        let text = format!("[DEFAULT]\nhost = {deep}\n  {deep}\n[{deep}]\nx = {{{deep}\n");
        let conf = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || parse(&text, ORIGIN).map(|conf| conf.host))
            .unwrap()
            .join()
            .unwrap();
        let host = conf.unwrap_or_else(|e| panic!("{e}")).unwrap();
        assert_eq!(host.len(), 200_001, "two lines of brackets");
    }

    #[test]
    fn the_seed_incident_conf_is_read() {
        let text = include_str!("../../examples/seed-incident/nova.conf");
        let conf = ok(text);
        assert_eq!(
            conf,
            NovaConf {
                host: Some("compute-07".into()),
                state_path: None,
                reserved_host_disk_mb: Some(0),
                disk_allocation_ratio: Some(1.0),
                initial_disk_allocation_ratio: None,
                images_type: Some("lvm".into()),
                images_volume_group: Some("vms-group".into()),
                reserve_disk_resource_for_image_cache: None,
            }
        );
    }

    #[test]
    fn an_empty_file_sets_nothing() {
        assert_eq!(ok(""), NovaConf::default());
        assert_eq!(
            ok("\n\n# only comments\n; and these\n"),
            NovaConf::default()
        );
    }

    #[test]
    fn both_separators_are_accepted_and_the_first_one_splits() {
        let conf = ok("[DEFAULT]\nhost: compute-07\nstate_path=/var/lib/nova\n[libvirt]\nimages_volume_group :vms-group\n");
        assert_eq!(conf.host.as_deref(), Some("compute-07"));
        assert_eq!(conf.state_path.as_deref(), Some("/var/lib/nova"));
        assert_eq!(conf.images_volume_group.as_deref(), Some("vms-group"));
        // The value keeps a later separator: "=" comes first here.
        let conf = ok("[DEFAULT]\nhost = a:b\nstate_path: /x=y\n");
        assert_eq!(conf.host.as_deref(), Some("a:b"));
        assert_eq!(conf.state_path.as_deref(), Some("/x=y"));
    }

    #[test]
    fn comments_are_whole_lines_only() {
        let conf = ok("# header\n[DEFAULT]\n; reserved_host_disk_mb = 5\n#reserved_host_disk_mb = 6\nreserved_host_disk_mb = 7\n");
        assert_eq!(conf.reserved_host_disk_mb, Some(7));
        // No inline comments: the value includes the comment, as in oslo.
        let (line, message) = err("[DEFAULT]\nreserved_host_disk_mb = 10 # MiB\n");
        assert_eq!(line, 2);
        assert!(message.contains("\"10 # MiB\""), "{message}");
        let conf = ok("[DEFAULT]\nhost = compute-07 ; the name\n");
        assert_eq!(conf.host.as_deref(), Some("compute-07 ; the name"));
    }

    #[test]
    fn repeated_keys_and_sections_last_one_wins() {
        let conf = ok("[DEFAULT]\nreserved_host_disk_mb = 1\nreserved_host_disk_mb = 2\n[libvirt]\nimages_type = qcow2\n[DEFAULT]\nreserved_host_disk_mb = 3\n[libvirt]\nimages_type = lvm\n");
        assert_eq!(conf.reserved_host_disk_mb, Some(3));
        assert_eq!(conf.images_type.as_deref(), Some("lvm"));
    }

    #[test]
    fn options_are_read_from_their_own_section_only() {
        let conf = ok("[DEFAULT]\nimages_volume_group = wrong\n[libvirt]\nreserved_host_disk_mb = lots\nhost = wrong\n[placement]\nhost = wrong\n[workarounds]\ndisk_allocation_ratio = bad\n");
        assert_eq!(conf, NovaConf::default());
    }

    #[test]
    fn section_names_follow_oslo_normalisation() {
        // Groups other than DEFAULT are case-insensitive; "default" is not DEFAULT.
        let conf = ok("[LIBVIRT]\nimages_volume_group = vms-group\n[default]\nhost = ignored\n");
        assert_eq!(conf.images_volume_group.as_deref(), Some("vms-group"));
        assert_eq!(conf.host, None);
    }

    #[test]
    fn quotes_around_values_are_removed_once() {
        let conf = ok("[DEFAULT]\nhost = \"compute-07\"\nstate_path = '/var/lib/nova'\ndisk_allocation_ratio = \"1.5\"\n[libvirt]\nimages_volume_group = \"'vms-group'\"\nimages_type = \"lvm'\n");
        assert_eq!(conf.host.as_deref(), Some("compute-07"));
        assert_eq!(conf.state_path.as_deref(), Some("/var/lib/nova"));
        assert_eq!(conf.disk_allocation_ratio, Some(1.5));
        assert_eq!(conf.images_volume_group.as_deref(), Some("'vms-group'"));
        // Unmatched quotes stay.
        assert_eq!(conf.images_type.as_deref(), Some("\"lvm'"));
        // A lone quote, and an empty quoted value, are empty: unset.
        let conf = ok("[DEFAULT]\nhost = \"\nstate_path = ''\n");
        assert_eq!(conf.host, None);
        assert_eq!(conf.state_path, None);
    }

    #[test]
    fn continuation_lines_extend_the_previous_value() {
        let conf = ok("[DEFAULT]\nreserved_host_disk_mb =\n    2048\nhost = compute-07\n");
        assert_eq!(conf.reserved_host_disk_mb, Some(2048));
        assert_eq!(conf.host.as_deref(), Some("compute-07"));
        let conf = ok("[DEFAULT]\nstate_path = /var\n\t/lib/nova\n");
        assert_eq!(conf.state_path.as_deref(), Some("/var\n/lib/nova"));
        // An indented line is a continuation even if it looks like a comment or an assignment.
        let (line, message) = err("[DEFAULT]\nreserved_host_disk_mb = 10\n  # ten\n");
        assert_eq!(line, 2);
        assert!(message.starts_with("reserved_host_disk_mb: "), "{message}");
        // A blank line ends the value: the indented line after it has nothing to continue.
        let (line, message) = err("[DEFAULT]\nhost = a\n\n  b\n");
        assert_eq!(line, 4);
        assert!(message.contains("continuation"), "{message}");
    }

    #[test]
    fn a_continuation_needs_an_assignment_before_it() {
        let (line, message) = err("[DEFAULT]\n  host = compute-07\n");
        assert_eq!(line, 2);
        assert!(
            message.contains("unexpected continuation line"),
            "{message}"
        );
        let (line, _) = err("[DEFAULT]\n# comment\n\tmore\n");
        assert_eq!(line, 3);
        let (line, _) = err("  leading\n[DEFAULT]\n");
        assert_eq!(line, 1);
    }

    #[test]
    fn an_option_outside_any_section_is_an_error() {
        let (line, message) = err("# nova.conf\n\nreserved_host_disk_mb = 10\n[DEFAULT]\n");
        assert_eq!(line, 3);
        assert!(message.contains("reserved_host_disk_mb"), "{message}");
        assert!(message.contains("before any [section]"), "{message}");
    }

    #[test]
    fn malformed_lines_are_errors_with_their_line_number() {
        let (line, message) = err("[DEFAULT]\nhost compute-07\n");
        assert_eq!(line, 2);
        assert!(message.contains("no \"=\" or \":\""), "{message}");
        let (line, message) = err("[DEFAULT]\n\n[libvirt\nimages_type = lvm\n");
        assert_eq!(line, 3);
        assert!(message.contains("does not end with"), "{message}");
        let (line, message) = err("[]\n");
        assert_eq!(line, 1);
        assert!(message.contains("empty section name"), "{message}");
        let (line, message) = err("[DEFAULT]\n= 5\n");
        assert_eq!(line, 2);
        assert!(message.contains("empty option name"), "{message}");
    }

    #[test]
    fn the_image_cache_workaround_is_read_from_workarounds_only() {
        let read = |text: &str| ok(text).reserve_disk_resource_for_image_cache;
        assert_eq!(read("[DEFAULT]\nhost = a\n"), None);
        for (value, expected) in [("True", true), ("yes", true), ("1", true), ("ON", true)]
            .into_iter()
            .chain([
                ("False", false),
                ("no", false),
                ("0", false),
                ("off", false),
            ])
        {
            let text = format!("[workarounds]\nreserve_disk_resource_for_image_cache = {value}\n");
            assert_eq!(read(&text), Some(expected), "{value}");
        }
        assert_eq!(
            read("[workarounds]\nreserve_disk_resource_for_image_cache =\n"),
            None
        );
        assert_eq!(
            read("[DEFAULT]\nreserve_disk_resource_for_image_cache = True\n"),
            None
        );
        let (line, message) = err("[workarounds]\nreserve_disk_resource_for_image_cache = maybe\n");
        assert_eq!(line, 2);
        assert_eq!(
            message,
            "reserve_disk_resource_for_image_cache: expected True or False, got \"maybe\""
        );
    }

    #[test]
    fn reserved_host_disk_mb_is_a_non_negative_integer() {
        let value = |v: &str| {
            ok(&format!("[DEFAULT]\nreserved_host_disk_mb = {v}\n")).reserved_host_disk_mb
        };
        assert_eq!(value("0"), Some(0));
        assert_eq!(value("204800"), Some(204800));
        assert_eq!(value("+10"), Some(10));
        assert_eq!(value("-0"), Some(0));
        assert_eq!(value("1_024"), Some(1024));
        assert_eq!(value("\"512\""), Some(512));
        assert_eq!(value(""), None);
        assert_eq!(
            value("8796093022207"),
            Some(MAX_RESERVED_HOST_DISK_MB),
            "8 EiB"
        );
        for too_large in [
            "8796093022208",
            "18446744073709551615",
            "18446744073709551616",
        ] {
            let (_, message) = err(&format!("[DEFAULT]\nreserved_host_disk_mb = {too_large}\n"));
            assert_eq!(
                message,
                format!("reserved_host_disk_mb: \"{too_large}\" is too large a number of MiB (at most 8796093022207, 8 EiB)")
            );
        }

        let text = "[DEFAULT]\nhost = compute-07\nreserved_host_disk_mb = lots\n";
        let error = parse(text, ORIGIN).unwrap_err().to_string();
        assert_eq!(
            error,
            "/etc/nova/nova.conf:3: reserved_host_disk_mb: expected a whole number of MiB, got \"lots\""
        );
        for bad in ["1.5", "1e3", "0x10", "10MB", "_1", "1__0", "1_", "-", "+"] {
            let (line, message) = err(&format!("[DEFAULT]\nreserved_host_disk_mb = {bad}\n"));
            assert_eq!(line, 2);
            assert!(
                message.starts_with("reserved_host_disk_mb: expected a whole number"),
                "{bad}: {message}"
            );
        }
        let (_, message) = err("[DEFAULT]\nreserved_host_disk_mb = -1\n");
        assert_eq!(
            message,
            "reserved_host_disk_mb: must be 0 or more (MiB), got \"-1\""
        );
        let (_, message) = err("[DEFAULT]\nreserved_host_disk_mb = 18446744073709551616\n");
        assert!(message.contains("too large"), "{message}");
    }

    #[test]
    fn disk_allocation_ratio_zero_and_empty_mean_unset() {
        let conf = |v: &str| {
            ok(&format!(
                "[DEFAULT]\ndisk_allocation_ratio = {v}\ninitial_disk_allocation_ratio = {v}\n"
            ))
        };
        assert_eq!(conf("1.0").disk_allocation_ratio, Some(1.0));
        assert_eq!(conf("2").disk_allocation_ratio, Some(2.0));
        assert_eq!(conf("0.9").initial_disk_allocation_ratio, Some(0.9));
        assert_eq!(conf("1e0").disk_allocation_ratio, Some(1.0));
        assert_eq!(conf("0.0").disk_allocation_ratio, None);
        assert_eq!(conf("0").initial_disk_allocation_ratio, None);
        assert_eq!(conf("").disk_allocation_ratio, None);
        for bad in ["-1.0", "nan", "inf", "-inf", "one", "1,5"] {
            let (line, message) = err(&format!("[DEFAULT]\n\ndisk_allocation_ratio = {bad}\n"));
            assert_eq!(line, 3);
            assert!(
                message.starts_with("disk_allocation_ratio: "),
                "{bad}: {message}"
            );
        }
    }

    #[test]
    fn the_effective_ratio_falls_back_to_the_initial_one() {
        let conf = ok("[DEFAULT]\ninitial_disk_allocation_ratio = 1.5\n");
        assert_eq!(conf.effective_disk_allocation_ratio(), Some(1.5));
        let conf =
            ok("[DEFAULT]\ndisk_allocation_ratio = 0.0\ninitial_disk_allocation_ratio = 1.5\n");
        assert_eq!(conf.effective_disk_allocation_ratio(), Some(1.5));
        let conf =
            ok("[DEFAULT]\ndisk_allocation_ratio = 1.0\ninitial_disk_allocation_ratio = 1.5\n");
        assert_eq!(conf.effective_disk_allocation_ratio(), Some(1.0));
        assert_eq!(ok("").effective_disk_allocation_ratio(), None);
    }

    #[test]
    fn crlf_line_ends_and_a_bom_are_tolerated() {
        let conf = ok("\u{feff}[DEFAULT]\r\nreserved_host_disk_mb = 100\r\n[libvirt]\r\nimages_type = lvm\r\n");
        assert_eq!(conf.reserved_host_disk_mb, Some(100));
        assert_eq!(conf.images_type.as_deref(), Some("lvm"));
    }

    #[test]
    fn load_returns_none_for_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join("nova.conf")).unwrap().is_none());
    }

    #[test]
    fn load_reads_and_names_the_file_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nova.conf");
        std::fs::write(&path, "[libvirt]\nimages_volume_group = vms-group\n").unwrap();
        let conf = load(&path).unwrap().unwrap();
        assert_eq!(conf.images_volume_group.as_deref(), Some("vms-group"));

        std::fs::write(&path, "[DEFAULT]\n\ndisk_allocation_ratio = -2\n").unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "{}:3: disk_allocation_ratio: must be 0.0 or more, got \"-2\"",
                path.display()
            )
        );

        std::fs::write(&path, b"[DEFAULT]\nhost = caf\xe9\n").unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert_eq!(error, format!("{}:2: not valid UTF-8", path.display()));
    }

    #[test]
    fn load_of_an_unreadable_path_is_a_read_error() {
        // A directory exists but cannot be read as a file (works even as root).
        let dir = tempfile::tempdir().unwrap();
        match load(dir.path()) {
            Err(NovaConfError::Read(error)) => assert_eq!(
                error.to_string(),
                format!(
                    "{}: is a directory, not a regular file; refusing to read it",
                    dir.path().display()
                )
            ),
            other => panic!("expected Read, got {other:?}"),
        }
    }
}
