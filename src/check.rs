//! `nova-lvm-exporter check`: one collection judged against thresholds, in the form of a
//! Nagios/Icinga plugin (exit code 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, one status line and
//! performance data), for operators without Prometheus.
//!
//! The figures are those of the alerting rules, so that `check` and the alerts agree:
//! *untracked* is foreign + orphan + cinder + unexplained (the per-LV extent overhead is
//! expected and left out) and *over-estimate* is the phantom space the scheduler can actually
//! hand out, max(over-estimate + min(corrected free, 0), 0).

use std::fmt::Write as _;

use clap::Args;

use crate::report::{escape_control, gib, Report};
use crate::tracked::{GIB, MIB};

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
            Threshold::PercentOfVg(percent) => {
                Some((vg_size_bytes as f64 * percent / 100.0).round() as i64)
            }
        }
    }
}

/// Parses a threshold: `20GiB`, `500MiB`, `1.5TiB`, `20G` (binary, like LVM's `-L 20G`),
/// `20GB` (decimal), plain bytes, `-1GiB`, `5%` (of the VG size), or `off`/`none`.
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
    parse_size(trimmed).map(Threshold::Bytes)
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

/// Thresholds of `check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// WARNING when untracked consumption (foreign + orphan + cinder + unexplained) reaches
    /// this: a size (20GiB, 500MiB) or a percentage of the VG (5%); "off" disables it.
    #[arg(long = "warning.untracked", value_name = "SIZE|PCT", default_value = "20GiB", value_parser = parse_threshold)]
    pub warning_untracked: Threshold,

    /// CRITICAL when untracked consumption reaches this (size, percentage of the VG, or off).
    #[arg(long = "critical.untracked", value_name = "SIZE|PCT", default_value = "off", value_parser = parse_threshold)]
    pub critical_untracked: Threshold,

    /// WARNING when the phantom space the scheduler can hand out (its over-estimate of the free
    /// space) reaches this (size, percentage of the VG, or off).
    #[arg(long = "warning.overestimate", value_name = "SIZE|PCT", default_value = "10GiB", value_parser = parse_threshold)]
    pub warning_overestimate: Threshold,

    /// CRITICAL when the scheduler's phantom space reaches this (default: a typical flavor's disk).
    #[arg(long = "critical.overestimate", value_name = "SIZE|PCT", default_value = "40GiB", value_parser = parse_threshold)]
    pub critical_overestimate: Threshold,

    /// WARNING when corrected free space falls below this (may be negative, e.g. -1GiB; off
    /// by default).
    #[arg(long = "warning.corrected-free", value_name = "SIZE|PCT", default_value = "off", value_parser = parse_threshold, allow_hyphen_values = true)]
    pub warning_corrected_free: Threshold,

    /// CRITICAL when corrected free space falls below this (off by default).
    #[arg(long = "critical.corrected-free", value_name = "SIZE|PCT", default_value = "off", value_parser = parse_threshold, allow_hyphen_values = true)]
    pub critical_corrected_free: Threshold,
}

impl Default for CheckArgs {
    fn default() -> Self {
        Self {
            warning_untracked: Threshold::Bytes(20 * GIB as i64),
            critical_untracked: Threshold::Off,
            warning_overestimate: Threshold::Bytes(10 * GIB as i64),
            critical_overestimate: Threshold::Bytes(40 * GIB as i64),
            warning_corrected_free: Threshold::Off,
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

/// Judges a report against the thresholds.
pub fn evaluate(report: &Report, args: &CheckArgs) -> CheckResult {
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
            args.warning_untracked,
            args.critical_untracked,
            Direction::AtOrAbove,
        ),
        (
            "scheduler over-estimate",
            a.phantom_bytes as i64,
            args.warning_overestimate,
            args.critical_overestimate,
            Direction::AtOrAbove,
        ),
        (
            "corrected free",
            a.corrected_free_bytes,
            args.warning_corrected_free,
            args.critical_corrected_free,
            Direction::Below,
        ),
    ];
    let mut status = Status::Ok;
    let mut problems = Vec::new();
    let mut figures = Vec::new();
    for (name, value, warning, critical, direction) in checks {
        let trips = |threshold: Threshold| {
            threshold.bytes(size).filter(|&limit| match direction {
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
    let mut summary = format!("{}: ", vg.name);
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
    let limit = |t: Threshold| t.bytes(size).map_or(String::new(), |b| b.to_string());
    let below = |t: Threshold| t.bytes(size).map_or(String::new(), |b| format!("{b}:"));
    let perf = [
        format!(
            "untracked={}B;{};{};0;{size}",
            a.untracked.total_bytes,
            limit(args.warning_untracked),
            limit(args.critical_untracked)
        ),
        format!(
            "overestimate={}B;{};{};0;",
            a.phantom_bytes,
            limit(args.warning_overestimate),
            limit(args.critical_overestimate)
        ),
        format!(
            "corrected_free={}B;{};{};;{size}",
            a.corrected_free_bytes,
            below(args.warning_corrected_free),
            below(args.critical_corrected_free)
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
        use crate::report::tests::{report_with, HOSTILE};
        // The largest untracked LV is named in a WARNING; a failed source's error in UNKNOWN.
        let args = CheckArgs {
            warning_untracked: Threshold::Bytes(GIB as i64),
            ..CheckArgs::default()
        };
        let warning = evaluate(&report_with(&[HOSTILE, "b"], 100, None), &args);
        let unknown = evaluate(
            &report_with(&["a"], 100, Some("/q/x.xml:\r\nNOVA-LVM OK | y=1")),
            &CheckArgs::default(),
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
    fn status_text_cannot_break_the_plugin_line() {
        assert_eq!(plugin_text("a|b\nc\r\u{1b}[31m"), "a/b\\nc\\r\\u{1b}[31m");
        assert!(Status::Critical > Status::Warning);
        assert_eq!(Status::Unknown.exit_code(), 3);
    }
}
