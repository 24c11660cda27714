//! `nova-lvm-exporter check`: one collection judged against thresholds, in the form of a
//! Nagios/Icinga plugin (exit code 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, one status line and
//! performance data), for operators without Prometheus.
//!
//! The figures are those of the alerting rules, so that `check` and the alerts agree:
//! *untracked* is foreign + orphan + cinder + unbooked_instance + rescue + unbooked_root +
//! unexplained (the rounding causes, swap_remainder and extent_rounding, are expected and left
//! out) and *over-estimate* is the phantom space the scheduler can actually
//! hand out, max(over-estimate + min(corrected free, 0), 0). The default thresholds are the
//! rules' ([`rule_thresholds`]), combined as the rules combine them: untracked consumption
//! warns at the absolute *or* the relative threshold, whichever the VG reaches first.

use std::fmt::Write as _;

use crate::output::report::Report;
use crate::text::escape_control;
use crate::units::gib;
use crate::units::{GIB, MIB};

/// A Nagios plugin status, in order of severity (UNKNOWN is reported when the figures are
/// missing, not as a degree of badness).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Exit 0.
    Ok,
    /// Exit 1.
    Warning,
    /// Exit 2.
    Critical,
    /// Exit 3: the figures could not be computed (a needed collector failed).
    Unknown,
}

impl Status {
    /// The plugin's exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    /// The word of the status line.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// The one definition of the alerting thresholds: the defaults of `check` are made of these,
/// and tests/stack/alerts.rs holds the `nova-lvm-thresholds` group of alerts/nova-lvm.rules.yml to
/// them (a rule file and a command line cannot share a constant, so a test keeps them equal).
pub mod defaults {
    use crate::units::GIB;

    /// `nova_lvm:alert_threshold:untracked_bytes`: untracked consumption at or above this warns.
    pub const UNTRACKED_BYTES: i64 = 20 * GIB as i64;
    /// `nova_lvm:alert_threshold:untracked_ratio`: untracked consumption at or above this
    /// fraction of the VG warns too (either threshold suffices).
    pub const UNTRACKED_RATIO: f64 = 0.05;
    /// `nova_lvm:alert_threshold:phantom_warning_bytes`: phantom space at or above this warns.
    pub const PHANTOM_WARNING_BYTES: i64 = 10 * GIB as i64;
    /// `nova_lvm:alert_threshold:typical_flavor_bytes`: phantom space at or above one typical
    /// flavor's disk is critical.
    pub const TYPICAL_FLAVOR_BYTES: i64 = 40 * GIB as i64;
    /// `nova_lvm:alert_threshold:corrected_free_low_bytes`: corrected free space below this warns.
    pub const CORRECTED_FREE_LOW_BYTES: i64 = -(GIB as i64);
}

/// The rules' threshold series (`nova_lvm:alert_threshold:*`) that `check` mirrors, with their
/// values: what tests/stack/alerts.rs compares the rule file with.
pub fn rule_thresholds() -> [(&'static str, f64); 5] {
    [
        (
            "nova_lvm:alert_threshold:untracked_bytes",
            defaults::UNTRACKED_BYTES as f64,
        ),
        (
            "nova_lvm:alert_threshold:untracked_ratio",
            defaults::UNTRACKED_RATIO,
        ),
        (
            "nova_lvm:alert_threshold:phantom_warning_bytes",
            defaults::PHANTOM_WARNING_BYTES as f64,
        ),
        (
            "nova_lvm:alert_threshold:typical_flavor_bytes",
            defaults::TYPICAL_FLAVOR_BYTES as f64,
        ),
        (
            "nova_lvm:alert_threshold:corrected_free_low_bytes",
            defaults::CORRECTED_FREE_LOW_BYTES as f64,
        ),
    ]
}

/// A threshold: a size, a percentage of the VG size, or off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// Never trips.
    Off,
    /// Bytes (may be negative, for corrected free space).
    Bytes(i64),
    /// Percent of the VG size.
    PercentOfVg(f64),
}

impl Threshold {
    /// The threshold in bytes for a VG of `vg_size_bytes`, or `None` when off.
    pub fn bytes(self, vg_size_bytes: u64) -> Option<i64> {
        match self {
            Threshold::Off => None,
            Threshold::Bytes(bytes) => Some(bytes),
            // Rounded up: an integer reaches x exactly when it reaches ceil(x), as the rule's
            // ratio comparison does.
            Threshold::PercentOfVg(percent) => {
                Some((vg_size_bytes as f64 * percent / 100.0).ceil() as i64)
            }
        }
    }
}

/// Prints a threshold the way [`parse_threshold`] reads it (`20GiB`, `-1GiB`, `5%`, `off`): the
/// defaults shown by `--help` and `--config.check`.
impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Threshold::Off => f.write_str("off"),
            Threshold::PercentOfVg(percent) => write!(f, "{percent}%"),
            Threshold::Bytes(bytes) if bytes != 0 && bytes % GIB as i64 == 0 => {
                write!(f, "{}GiB", bytes / GIB as i64)
            }
            Threshold::Bytes(bytes) if bytes != 0 && bytes % MIB as i64 == 0 => {
                write!(f, "{}MiB", bytes / MIB as i64)
            }
            Threshold::Bytes(bytes) => write!(f, "{bytes}B"),
        }
    }
}

/// Parses a relative threshold: a fraction of the VG size (`0.05`, as the rule's
/// `untracked_ratio`), a percentage (`5%`), or `off`/`none`.
pub fn parse_ratio(text: &str) -> Result<Threshold, String> {
    let trimmed = text.trim();
    if trimmed.ends_with('%') || matches!(trimmed, "off" | "none") {
        return parse_threshold(trimmed);
    }
    match trimmed.parse::<f64>() {
        Ok(fraction) if (0.0..=1.0).contains(&fraction) => {
            Ok(Threshold::PercentOfVg(fraction * 100.0))
        }
        _ => Err(format!(
            "expected a fraction of the VG like 0.05, a percentage like 5%, or off, got {text:?}"
        )),
    }
}

/// Parses a threshold: `20GiB`, `500MiB`, `1.5TiB`, `20G` (binary, like LVM's `-L 20G`),
/// `20GB` (decimal), `4096B`, `-1GiB`, `5%` (of the VG size), or `off`/`none`. A number without
/// a unit is refused (but `0`): `20` would be 20 bytes where 20 GiB was meant.
pub fn parse_threshold(text: &str) -> Result<Threshold, String> {
    let trimmed = text.trim();
    if matches!(trimmed, "off" | "none") {
        return Ok(Threshold::Off);
    }
    if let Some(percent) = trimmed.strip_suffix('%') {
        return match percent.trim().parse::<f64>() {
            Ok(p) if p.is_finite() && p >= 0.0 => Ok(Threshold::PercentOfVg(p)),
            _ => Err(format!(
                "expected a percentage of the VG like 5%, got {text:?}"
            )),
        };
    }
    let unitless = !trimmed.contains(|c: char| c.is_ascii_alphabetic());
    match parse_size(trimmed) {
        // A bare number is ambiguous (`20` meant 20 bytes, not 20 GiB): only 0 needs no unit.
        Ok(bytes) if unitless && bytes != 0 => Err(format!(
            "a size needs a unit: say {trimmed}GiB (or {trimmed}B for bytes), or a share of the VG like 5%, got {text:?}"
        )),
        parsed => parsed.map(Threshold::Bytes),
    }
}

/// Parses a size in bytes: a number (decimals allowed, `-` allowed) followed by an optional
/// unit: `B`, `K`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB` (binary), `KB`, `MB`, `GB`, `TB`
/// (decimal). Case-insensitive.
pub fn parse_size(text: &str) -> Result<i64, String> {
    let expected = || {
        format!("expected a size like 20GiB, 500MiB, 1.5TiB, a percentage like 5%, or off, got {text:?}")
    };
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().map_err(|_| expected())?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => MIB as f64,
        "g" | "gib" => GIB as f64,
        "t" | "tib" => (GIB * 1024) as f64,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return Err(expected()),
    };
    let bytes = number * factor;
    if !bytes.is_finite() || bytes.abs() > i64::MAX as f64 / 2.0 {
        return Err(expected());
    }
    Ok(bytes.round() as i64)
}

/// Thresholds of `check`: each size, percentage of the VG, or off. The defaults are the
/// alerting rules' ([`defaults`]); the command line's `CheckArgs` (in `config::flags`) takes
/// its defaults from here and converts into this.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// WARNING when untracked consumption reaches this.
    pub warning_untracked: Threshold,
    /// WARNING when untracked consumption reaches this share of the VG (either suffices).
    pub warning_untracked_ratio: Threshold,
    /// CRITICAL when untracked consumption reaches this.
    pub critical_untracked: Threshold,
    /// CRITICAL when untracked consumption reaches this share of the VG (either suffices).
    pub critical_untracked_ratio: Threshold,
    /// WARNING when the scheduler's phantom space reaches this.
    pub warning_overestimate: Threshold,
    /// CRITICAL when the scheduler's phantom space reaches this.
    pub critical_overestimate: Threshold,
    /// WARNING when corrected free space falls below this.
    pub warning_corrected_free: Threshold,
    /// CRITICAL when corrected free space falls below this.
    pub critical_corrected_free: Threshold,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            warning_untracked: Threshold::Bytes(defaults::UNTRACKED_BYTES),
            warning_untracked_ratio: Threshold::PercentOfVg(defaults::UNTRACKED_RATIO * 100.0),
            critical_untracked: Threshold::Off,
            critical_untracked_ratio: Threshold::Off,
            warning_overestimate: Threshold::Bytes(defaults::PHANTOM_WARNING_BYTES),
            critical_overestimate: Threshold::Bytes(defaults::TYPICAL_FLAVOR_BYTES),
            warning_corrected_free: Threshold::Bytes(defaults::CORRECTED_FREE_LOW_BYTES),
            critical_corrected_free: Threshold::Off,
        }
    }
}

/// The result of a check: status, the status line (with performance data) and the exit code.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// The overall status.
    pub status: Status,
    /// `NOVA-LVM <STATUS> - <summary> | <perfdata>`, one line.
    pub line: String,
}

/// Makes text safe for a plugin's status line: one line with every control character escaped
/// (CR and LF included), no `|` (it starts the perfdata).
fn plugin_text(text: &str) -> String {
    escape_control(text).replace('|', "/")
}

/// How a measured value trips: at or above the threshold, or below it.
#[derive(Clone, Copy)]
enum Direction {
    AtOrAbove,
    Below,
}

impl Direction {
    /// The limit in bytes of thresholds of which any one trips: the lowest of "at or above"
    /// limits, the highest of "below" ones; `None` when all are off.
    fn limit(self, thresholds: &[Threshold], vg_size_bytes: u64) -> Option<i64> {
        let limits = thresholds.iter().filter_map(|t| t.bytes(vg_size_bytes));
        match self {
            Direction::AtOrAbove => limits.min(),
            Direction::Below => limits.max(),
        }
    }
}

/// Judges a report against the thresholds.
pub fn evaluate(report: &Report, args: &Thresholds) -> CheckResult {
    let unknown = |why: String| CheckResult {
        status: Status::Unknown,
        line: format!("NOVA-LVM UNKNOWN - {}", plugin_text(&why)),
    };
    let Some(vg) = report.nova_vg() else {
        let why = match report.collectors.iter().find(|c| c.name == "lvm") {
            Some(lvm) if !lvm.success => format!(
                "the lvm collector failed: {}",
                lvm.error.as_deref().unwrap_or("no error given")
            ),
            _ => format!("LVM did not report nova's VG {}", report.nova_vg),
        };
        return unknown(why);
    };
    let Some(a) = &vg.accounting else {
        return unknown(format!(
            "{}: {}",
            vg.name,
            vg.accounting_absent_reason
                .as_deref()
                .unwrap_or("no figures")
        ));
    };
    let size = vg.size_bytes;
    let checks = [
        (
            "untracked",
            a.untracked.total_bytes,
            Direction::AtOrAbove.limit(
                &[args.warning_untracked, args.warning_untracked_ratio],
                size,
            ),
            Direction::AtOrAbove.limit(
                &[args.critical_untracked, args.critical_untracked_ratio],
                size,
            ),
            Direction::AtOrAbove,
        ),
        (
            "scheduler over-estimate",
            a.phantom_bytes as i64,
            Direction::AtOrAbove.limit(&[args.warning_overestimate], size),
            Direction::AtOrAbove.limit(&[args.critical_overestimate], size),
            Direction::AtOrAbove,
        ),
        (
            "corrected free",
            a.corrected_free_bytes,
            Direction::Below.limit(&[args.warning_corrected_free], size),
            Direction::Below.limit(&[args.critical_corrected_free], size),
            Direction::Below,
        ),
    ];
    let mut status = Status::Ok;
    let mut problems = Vec::new();
    let mut figures = Vec::new();
    for &(name, value, warning, critical, direction) in &checks {
        let trips = |limit: Option<i64>| {
            limit.filter(|&limit| match direction {
                Direction::AtOrAbove => value >= limit,
                Direction::Below => value < limit,
            })
        };
        let relation = match direction {
            Direction::AtOrAbove => ">=",
            Direction::Below => "<",
        };
        if let Some(limit) = trips(critical) {
            status = status.max(Status::Critical);
            problems.push(format!(
                "{name} {} {relation} {} (critical)",
                gib(value),
                gib(limit)
            ));
        } else if let Some(limit) = trips(warning) {
            status = status.max(Status::Warning);
            problems.push(format!(
                "{name} {} {relation} {} (warning)",
                gib(value),
                gib(limit)
            ));
        } else {
            figures.push(format!("{name} {}", gib(value)));
        }
    }
    // A local source that lists no instance beside instance disks makes every disk an orphan
    // and every figure above doubtful: said first, naming what it reads.
    let mut summary = String::new();
    for warning in &report.local_source_warnings {
        status = status.max(Status::Warning);
        let _ = write!(summary, "{} (warning); ", warning.message);
    }
    let _ = write!(summary, "{}: ", vg.name);
    summary.push_str(
        &problems
            .iter()
            .chain(&figures)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    );
    if problems.iter().any(|p| p.starts_with("untracked")) {
        if let Some(lv) = vg.top_untracked_lvs.first() {
            let _ = write!(
                summary,
                "; largest untracked LV {} ({}, {})",
                lv.name,
                lv.owner,
                gib(lv.bytes as i64)
            );
        }
    }
    if a.recommended_reserved_host_disk_mb > a.current_reserved_host_disk_mb {
        let _ = write!(
            summary,
            "; recommended reserved_host_disk_mb {}",
            a.recommended_reserved_host_disk_mb
        );
    }
    let failed: Vec<String> = report
        .failures()
        .map(|c| format!("{} collector failed", c.name))
        .collect();
    if !failed.is_empty() {
        let _ = write!(summary, "; {}", failed.join(", "));
    }

    // Plugin ranges: "N" trips above N, "N:" trips below N.
    let above = |limit: Option<i64>| limit.map_or(String::new(), |b| b.to_string());
    let below = |limit: Option<i64>| limit.map_or(String::new(), |b| format!("{b}:"));
    let [untracked, overestimate, corrected_free] = checks;
    let perf = [
        format!(
            "untracked={}B;{};{};0;{size}",
            a.untracked.total_bytes,
            above(untracked.2),
            above(untracked.3)
        ),
        format!(
            "overestimate={}B;{};{};0;",
            a.phantom_bytes,
            above(overestimate.2),
            above(overestimate.3)
        ),
        format!(
            "corrected_free={}B;{};{};;{size}",
            a.corrected_free_bytes,
            below(corrected_free.2),
            below(corrected_free.3)
        ),
        format!("drift={}B;;;;", a.drift_bytes),
        format!("raw_used={}B;;;0;{size}", vg.used_bytes),
        format!("tracked_used={}B;;;0;", a.tracked_used_bytes),
        format!("scheduler_free={}B;;;;", a.scheduler_free_bytes),
        format!("vg_size={size}B;;;0;"),
    ];
    CheckResult {
        status,
        line: format!(
            "NOVA-LVM {} - {} | {}",
            status.as_str(),
            plugin_text(&summary),
            perf.join(" ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_and_decimal_units_and_percentages() {
        assert_eq!(parse_size("20GiB"), Ok(20 * GIB as i64));
        assert_eq!(parse_size("20G"), Ok(20 * GIB as i64));
        assert_eq!(parse_size("20g"), Ok(20 * GIB as i64));
        assert_eq!(parse_size("500MiB"), Ok(500 * MIB as i64));
        assert_eq!(parse_size("1.5TiB"), Ok(1536 * GIB as i64));
        assert_eq!(parse_size("20GB"), Ok(20_000_000_000));
        assert_eq!(parse_size("-1GiB"), Ok(-(GIB as i64)));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_threshold("4096B"), Ok(Threshold::Bytes(4096)));
        assert_eq!(parse_threshold("0"), Ok(Threshold::Bytes(0)));
        let unitless = parse_threshold("20").unwrap_err();
        assert!(
            unitless.contains("say 20GiB") && unitless.contains("5%"),
            "{unitless}"
        );
        assert!(parse_threshold("-1").is_err());
        assert_eq!(
            parse_threshold(&Threshold::Bytes(4097).to_string()),
            Ok(Threshold::Bytes(4097))
        );
        assert_eq!(parse_threshold("5%"), Ok(Threshold::PercentOfVg(5.0)));
        assert_eq!(parse_threshold("off"), Ok(Threshold::Off));
        for bad in ["", "GiB", "20 parsecs", "5%%", "-5%", "1e400", "twenty"] {
            assert!(parse_threshold(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn percentages_are_of_the_vg_size() {
        assert_eq!(
            Threshold::PercentOfVg(5.0).bytes(100 * GIB),
            Some(5 * GIB as i64)
        );
        assert_eq!(Threshold::Off.bytes(100 * GIB), None);
    }

    #[test]
    fn names_and_errors_from_outside_cannot_break_the_plugin_line() {
        use crate::output::report::tests::{report_with, HOSTILE};
        // The largest untracked LV is named in a WARNING; a failed source's error in UNKNOWN.
        let args = Thresholds {
            warning_untracked: Threshold::Bytes(GIB as i64),
            ..Thresholds::default()
        };
        let warning = evaluate(&report_with(&[HOSTILE, "b"], 100, None), &args);
        let unknown = evaluate(
            &report_with(&["a"], 100, Some("/q/x.xml:\r\nNOVA-LVM OK | y=1")),
            &Thresholds::default(),
        );
        assert_eq!(warning.status, Status::Warning);
        assert_eq!(unknown.status, Status::Unknown);
        for result in [&warning, &unknown] {
            let line = &result.line;
            assert!(!line.chars().any(char::is_control), "{line:?}");
            assert!(!line.contains('\u{202e}'), "{line:?}");
            assert!(line.matches('|').count() <= 1, "{line:?}");
        }
        assert_eq!(
            warning.line.matches('|').count(),
            1,
            "the perfdata separator"
        );
        assert!(
            warning.line.contains(r"largest untracked LV evil\u{1b}[2J\u{1b}]0;title\u{7}\r\nNOVA-LVM OK - fine / x=1\u{202e} (foreign, 2.00 GiB)"),
            "{}",
            warning.line
        );
        assert!(
            unknown.line.ends_with(r"/q/x.xml:\r\nNOVA-LVM OK / y=1"),
            "{}",
            unknown.line
        );
        // The perfdata labels are the exporter's own.
        let labels: Vec<&str> = warning
            .line
            .split(" | ")
            .nth(1)
            .unwrap()
            .split(' ')
            .map(|p| p.split('=').next().unwrap())
            .collect();
        assert_eq!(
            labels,
            [
                "untracked",
                "overestimate",
                "corrected_free",
                "drift",
                "raw_used",
                "tracked_used",
                "scheduler_free",
                "vg_size"
            ]
        );
    }

    #[test]
    fn defaults_print_as_parse_reads_them_and_ratios_take_fractions_or_percentages() {
        for threshold in [
            Threshold::Bytes(defaults::UNTRACKED_BYTES),
            Threshold::Bytes(defaults::CORRECTED_FREE_LOW_BYTES),
            Threshold::Bytes(500 * MIB as i64),
            Threshold::Bytes(4097),
            Threshold::Bytes(0),
            Threshold::PercentOfVg(defaults::UNTRACKED_RATIO * 100.0),
            Threshold::PercentOfVg(2.5),
            Threshold::Off,
        ] {
            assert_eq!(parse_threshold(&threshold.to_string()), Ok(threshold));
        }
        assert_eq!(Threshold::Bytes(-(GIB as i64)).to_string(), "-1GiB");
        assert_eq!(parse_ratio("0.05"), Ok(Threshold::PercentOfVg(5.0)));
        assert_eq!(parse_ratio("5%"), Ok(Threshold::PercentOfVg(5.0)));
        assert_eq!(parse_ratio("off"), Ok(Threshold::Off));
        for bad in ["5", "1.5", "-0.1", "5GiB", "x"] {
            assert!(parse_ratio(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn either_untracked_threshold_trips_as_in_the_rule() {
        // The issue's host: a 20 GiB VG, where 5% (1 GiB) comes long before 20 GiB.
        let args = Thresholds::default();
        let vg = 20 * GIB;
        let warning =
            Direction::AtOrAbove.limit(&[args.warning_untracked, args.warning_untracked_ratio], vg);
        assert_eq!(warning, Some(GIB as i64));
        // A 1 TiB VG: 20 GiB comes before 5% (51.2 GiB).
        let warning = Direction::AtOrAbove.limit(
            &[args.warning_untracked, args.warning_untracked_ratio],
            1024 * GIB,
        );
        assert_eq!(warning, Some(defaults::UNTRACKED_BYTES));
        assert_eq!(
            Direction::AtOrAbove.limit(&[Threshold::Off, Threshold::Off], vg),
            None
        );
        assert_eq!(
            Direction::Below.limit(&[Threshold::Bytes(-5), Threshold::Bytes(3)], vg),
            Some(3)
        );
        // 5% of an odd size is reached at the next whole byte, not before.
        assert_eq!(Threshold::PercentOfVg(5.0).bytes(30), Some(2));
    }

    #[test]
    fn status_text_cannot_break_the_plugin_line() {
        assert_eq!(plugin_text("a|b\nc\r\u{1b}[31m"), "a/b\\nc\\r\\u{1b}[31m");
        assert!(Status::Critical > Status::Warning);
        assert_eq!(Status::Unknown.exit_code(), 3);
    }
}
