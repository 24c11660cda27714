//! The flavor fit in `report` (JSON and text; the status page renders it too): per flavor, its disk
//! sizes, what one instance takes in the VG and asks of placement, and how many more fit by
//! corrected free space and by the scheduler's rule (`crate::accounting::fit`).

use std::fmt::Write as _;

use serde::Serialize;

use crate::accounting::fit::{Fit, FlavorFitSummary};
use crate::text::escape_control;
use crate::units::{gib_number, GIB};

/// The flavor fit of nova's VG (JSON: `flavor_fit`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlavorFitReport {
    /// nova's VG.
    pub vg: String,
    /// Its extent size, which every LV is rounded up to.
    pub extent_bytes: u64,
    /// Corrected free space, which the corrected fit divides.
    pub corrected_free_bytes: i64,
    /// The scheduler's free space, which the scheduler fit divides.
    pub scheduler_free_bytes: i64,
    /// Placement's DISK_GB total (the largest single allocation), when known.
    pub scheduler_total_bytes: Option<u64>,
    /// Flavors of the compute API and of the domains defined here left out by
    /// `--flavor-limit`.
    pub omitted_flavors: usize,
    /// One entry per flavor.
    pub flavors: Vec<FlavorFitEntry>,
}

/// One flavor's fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlavorFitEntry {
    /// The flavor's name.
    pub name: String,
    /// `configured` (`--flavor`), `nova` (the compute API) or `libvirt` (the metadata of a
    /// domain defined here).
    pub origin: String,
    /// `root_gb`.
    pub root_gb: u64,
    /// `swap`, MiB.
    pub swap_mb: u64,
    /// `ephemeral_gb`.
    pub ephemeral_gb: u64,
    /// VG bytes one instance takes (its LVs rounded up to whole extents).
    pub instance_lv_bytes: u64,
    /// DISK_GB one instance asks placement for, in bytes.
    pub placement_bytes: u64,
    /// How many more fit by corrected free space; `null` when the flavor needs no disk.
    pub corrected: Option<u64>,
    /// How many more the scheduler would place; `null` when the flavor needs no disk.
    pub scheduler: Option<u64>,
    /// The scheduler places at least one more but none fits: the next build fails.
    pub next_build_fails: bool,
}

fn count(fit: Fit) -> Option<u64> {
    match fit {
        Fit::Instances(count) => Some(count),
        Fit::Unbounded => None,
    }
}

impl FlavorFitReport {
    /// The report's form of a collection's flavor fit.
    pub fn new(summary: &FlavorFitSummary) -> Self {
        Self {
            vg: summary.vg.clone(),
            extent_bytes: summary.extent_bytes,
            corrected_free_bytes: summary.corrected_free_bytes,
            scheduler_free_bytes: summary.scheduler.free_bytes,
            scheduler_total_bytes: summary.scheduler.total_bytes,
            omitted_flavors: summary.omitted,
            flavors: summary
                .flavors
                .iter()
                .map(|f| FlavorFitEntry {
                    name: f.name.clone(),
                    origin: f.origin.as_str().to_string(),
                    root_gb: f.flavor.root_gb,
                    swap_mb: f.flavor.swap_mb,
                    ephemeral_gb: f.flavor.ephemeral_gb,
                    instance_lv_bytes: f.instance_lv_bytes,
                    placement_bytes: f.placement_bytes,
                    corrected: count(f.corrected),
                    scheduler: count(f.scheduler),
                    next_build_fails: f.next_build_fails(),
                })
                .collect(),
        }
    }
}

/// A count as the text report and the status page show it: `unbounded` for `None`.
pub fn shown(count: Option<u64>) -> String {
    count.map_or_else(|| "unbounded".to_string(), |c| c.to_string())
}

/// The fit as `report` prints it.
pub fn render_fit_text(out: &mut String, fit: &FlavorFitReport) {
    let _ = writeln!(
        out,
        "\nFlavor fit in VG {}: how many more instances fit",
        escape_control(&fit.vg)
    );
    let _ = writeln!(
        out,
        "  corrected: corrected free {} GiB / the instance's LVs (each rounded up to {} MiB extents)",
        gib_number(fit.corrected_free_bytes),
        fit.extent_bytes / (1024 * 1024)
    );
    let _ = writeln!(
        out,
        "  scheduler: scheduler free {} GiB / the flavor's DISK_GB{}",
        gib_number(fit.scheduler_free_bytes),
        match fit.scheduler_total_bytes {
            Some(total) => format!(", none above the total of {} GiB", total / GIB),
            None => String::new(),
        }
    );
    let _ = writeln!(
        out,
        "  {:<24} {:<10} {:>16} {:>12} {:>10} {:>10}",
        "flavor (disk,swap,eph)", "from", "LVs GiB", "DISK_GB", "corrected", "scheduler"
    );
    for f in &fit.flavors {
        let _ = writeln!(
            out,
            "  {:<24} {:<10} {:>16} {:>12} {:>10} {:>10}{}",
            format!(
                "{} ({},{},{})",
                escape_control(&f.name),
                f.root_gb,
                f.swap_mb,
                f.ephemeral_gb
            ),
            f.origin,
            gib_number(f.instance_lv_bytes as i64),
            f.placement_bytes / GIB,
            shown(f.corrected),
            shown(f.scheduler),
            if f.next_build_fails {
                "  <- the next build here fails"
            } else {
                ""
            }
        );
    }
    if fit.omitted_flavors > 0 {
        let _ = writeln!(
            out,
            "  {} more flavors of the compute API or of the domains here left out by --flavor-limit (the smallest)",
            fit.omitted_flavors
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::accounting::fit::{fit_flavors, SchedulerView};
    use crate::tracked::flavors::{FlavorOrigin, NamedFlavor};
    use crate::tracked::Flavor;
    use crate::units::MIB;

    pub(crate) fn seed_fit() -> FlavorFitReport {
        let named = |name: &str, root_gb, swap_mb, ephemeral_gb| NamedFlavor {
            name: name.into(),
            flavor: Flavor {
                root_gb,
                ephemeral_gb,
                swap_mb,
                boot_from_volume: false,
            },
            origin: FlavorOrigin::Configured,
        };
        let scheduler = SchedulerView {
            free_bytes: 270 * GIB as i64,
            total_bytes: Some(499 * GIB),
        };
        let flavors = [
            named("m1.large", 80, 0, 0),
            named("db", 40, 1024, 8),
            named("<b>\u{1b}[31m", 0, 0, 0),
        ];
        let mut flavors = flavors;
        flavors[1].origin = FlavorOrigin::Libvirt;
        FlavorFitReport::new(&FlavorFitSummary {
            vg: "vms-group".into(),
            extent_bytes: 4 * MIB,
            corrected_free_bytes: 76_231_475_200,
            scheduler,
            flavors: fit_flavors(&flavors, 76_231_475_200, 4 * MIB, &scheduler),
            omitted: 2,
        })
    }

    #[test]
    fn json_gives_counts_and_null_for_unbounded() {
        let json = serde_json::to_value(seed_fit()).unwrap();
        let large = &json["flavors"][0];
        assert_eq!(large["corrected"], 0);
        assert_eq!(large["scheduler"], 3);
        assert_eq!(large["next_build_fails"], true);
        assert_eq!(large["instance_lv_bytes"], 80 * GIB);
        assert_eq!(json["flavors"][1]["instance_lv_bytes"], 49 * GIB);
        assert_eq!(json["flavors"][1]["placement_bytes"], 49 * GIB);
        assert_eq!(json["flavors"][2]["corrected"], serde_json::Value::Null);
        assert_eq!(json["omitted_flavors"], 2);
        assert_eq!(json["scheduler_total_bytes"], 499 * GIB);
    }

    #[test]
    fn text_lists_each_flavor_escaped_and_marks_the_failing_build() {
        let fit = seed_fit();
        let mut text = String::new();
        render_fit_text(&mut text, &fit);
        let large = text.lines().find(|l| l.contains("m1.large")).unwrap();
        assert!(large.contains("80.00"), "{text}");
        assert!(large.ends_with("<- the next build here fails"), "{text}");
        let db = text.lines().find(|l| l.contains("db (40,1024,8)")).unwrap();
        assert!(db.contains("49.00") && !db.contains("fails"), "{text}");
        // Where each flavor came from: --flavor, or a domain defined here.
        assert!(large.contains(" configured "), "{text}");
        assert!(db.contains(" libvirt "), "{text}");
        assert!(text.contains("unbounded"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("2 more flavors"), "{text}");
    }
}
