//! The verdict the status page opens with: how many problems this collection shows, the largest,
//! and what to do about it. A problem is what an alert of `alerts/nova-lvm.rules.yml` would
//! fire on with the shipped thresholds (those of `check`, [`crate::output::check::defaults`]):
//! a failed collector, nova's VG missing, untracked consumption, phantom space the scheduler can
//! hand out, corrected free space below the floor, orphaned instance disks. Failed collectors
//! come first (the figures they feed are unknown), then the rest by size, largest first.

use std::fmt::Write as _;

use crate::output::check::defaults;
use crate::output::report::{Report, UntrackedReport, VgAccount};
use crate::text::escape_html;
use crate::units::gib;

/// One problem: what is wrong, how many bytes it concerns (none for a failure), what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong, in a sentence.
    pub what: String,
    /// The bytes it concerns, to rank it; `None` for a failure, which ranks first.
    pub bytes: Option<u64>,
    /// What to do about it, in a sentence.
    pub action: String,
}

/// The problems of a report, failures first, then largest first.
pub fn problems(report: &Report) -> Vec<Problem> {
    let mut found: Vec<Problem> = report
        .failures()
        .map(|c| Problem {
            what: format!(
                "The {} collector failed: {}",
                c.name,
                c.error.as_deref().unwrap_or("no error given")
            ),
            bytes: None,
            action: format!(
                "Fix the cause the Collectors table shows (the exporter's log has it too); until then the figures that need {} are missing.",
                c.name
            ),
        })
        .collect();
    let lvm_ok = report
        .collectors
        .iter()
        .any(|c| c.name == "lvm" && c.success);
    match report.nova_vg() {
        None if lvm_ok => found.push(Problem {
            what: format!("LVM did not report nova's VG {}", report.nova_vg),
            bytes: None,
            action: format!(
                "Check images_volume_group in nova.conf (or --nova.images-volume-group); nova's VG came from {}.",
                report.nova_vg_origin
            ),
        }),
        None => {}
        Some(vg) => found.extend(vg_problems(vg, !report.local_source_warnings.is_empty())),
    }
    // A local source that lists no instance beside instance disks: its word makes the orphans,
    // so the doubt ranks with the failures, before any figure.
    for warning in &report.local_source_warnings {
        found.push(Problem {
            what: warning.message.clone(),
            bytes: None,
            action: format!(
                "Check what the {} source reads ({}); remove no orphaned disk until it lists this host's instances.",
                warning.source, warning.reads
            ),
        });
    }
    found.sort_by_key(|p| p.bytes.map_or(0, |b| u64::MAX - b));
    found
}

/// The problems of nova's VG with its figures, at the alerting rules' thresholds.
/// `local_source_doubted`: a local source lists no instance beside instance disks, so the
/// orphans are not to be removed on its word.
fn vg_problems(vg: &VgAccount, local_source_doubted: bool) -> Vec<Problem> {
    let mut found = Vec::new();
    let orphans = vg.owners.iter().find(|o| o.owner == "orphan" && o.lvs > 0);
    if let Some(orphans) = orphans {
        found.push(Problem {
            what: format!(
                "{} orphaned instance disk LV(s) in VG {} hold {}",
                orphans.lvs,
                vg.name,
                gib(orphans.bytes as i64)
            ),
            bytes: Some(orphans.bytes),
            action: if local_source_doubted {
                "Remove none: the local source that makes them orphans lists no instance (the warning above); fix it first.".into()
            } else {
                "Check that nothing uses them (the orphaned disks and untracked LVs below; the runbook's NovaLvmOrphanedInstanceDisks), then remove them with lvremove.".into()
            },
        });
    }
    let Some(a) = &vg.accounting else {
        return found;
    };
    let ratio_limit = (defaults::UNTRACKED_RATIO * vg.size_bytes as f64).ceil() as i64;
    let untracked_limit = defaults::UNTRACKED_BYTES.min(ratio_limit);
    if a.untracked.total_bytes >= untracked_limit && a.untracked.total_bytes > 0 {
        let largest = vg
            .top_untracked_lvs
            .first()
            .map(|lv| {
                format!(
                    "; the largest is {} ({}, {})",
                    lv.name,
                    lv.owner,
                    gib(lv.bytes as i64)
                )
            })
            .unwrap_or_default();
        found.push(Problem {
            what: format!(
                "{} of VG {} is allocated to LVs nova does not count{largest}",
                gib(a.untracked.total_bytes),
                vg.name
            ),
            bytes: Some(a.untracked.total_bytes as u64),
            action: format!(
                "Remove or move what does not belong in nova's VG (the untracked LVs below), or set reserved_host_disk_mb = {} in nova.conf so that the scheduler leaves room for it.{}",
                a.recommended_reserved_host_disk_mb,
                instance_causes_action(&a.untracked)
            ),
        });
    }
    if a.phantom_bytes as i64 >= defaults::PHANTOM_WARNING_BYTES {
        found.push(Problem {
            what: format!(
                "The scheduler can place {} in VG {} that it does not have: builds sent there fail",
                gib(a.phantom_bytes as i64),
                vg.name
            ),
            bytes: Some(a.phantom_bytes),
            action: match &a.allocation_ratio_remedy {
                Some(remedy) => format!(
                    "Without restarting nova: {} (undo: {}); or set reserved_host_disk_mb = {} in nova.conf (today {}) and restart nova-compute; or free the untracked space.",
                    remedy.command,
                    remedy.undo_command,
                    a.recommended_reserved_host_disk_mb,
                    a.current_reserved_host_disk_mb
                ),
                None => format!(
                    "Set reserved_host_disk_mb = {} in nova.conf (today {}) and restart nova-compute, or free the untracked space.",
                    a.recommended_reserved_host_disk_mb, a.current_reserved_host_disk_mb
                ),
            },
        });
    }
    if a.corrected_free_bytes < defaults::CORRECTED_FREE_LOW_BYTES {
        found.push(Problem {
            what: format!(
                "Corrected free space of VG {} is {}: the host is over-committed in reality",
                vg.name,
                gib(a.corrected_free_bytes)
            ),
            bytes: Some(a.corrected_free_bytes.unsigned_abs()),
            action: "Free space in the VG (the untracked LVs below) or move instances away; new disks, resizes and rescues can fail until then.".into(),
        });
    }
    found
}

/// The verdict as the status page's first section (`id="verdict"`, one `data-problems` count).
pub fn render_verdict(html: &mut String, report: &Report) {
    let found = problems(report);
    let _ = write!(
        html,
        "<section id=\"verdict\" data-problems=\"{}\"><h2>Verdict</h2>",
        found.len()
    );
    let Some(largest) = found.first() else {
        html.push_str(
            "<p class=\"ok\">No problems: every collector succeeded and nova's VG is within the alerting thresholds.</p></section>",
        );
        return;
    };
    let _ = write!(
        html,
        "<p class=\"failed\">{count} problem{s}. {first}: {what}.</p><p><strong>What to do:</strong> {action}</p>",
        count = found.len(),
        s = if found.len() == 1 { "" } else { "s" },
        first = if found.len() == 1 { "It is" } else { "The first" },
        what = escape_html(&largest.what),
        action = escape_html(&largest.action),
    );
    if found.len() > 1 {
        html.push_str("<ol class=\"problems\">");
        for problem in &found {
            let _ = write!(
                html,
                "<li>{}. <span class=\"muted\">{}</span></li>",
                escape_html(&problem.what),
                escape_html(&problem.action)
            );
        }
        html.push_str("</ol>");
    }
    html.push_str("</section>");
}

/// What to do about the untracked bytes that instance LVs hold (rescue disks, `disk = 0` roots),
/// which the list of untracked LVs does not show; empty when there are none.
fn instance_causes_action(u: &UntrackedReport) -> String {
    let mut action = String::new();
    if u.rescue_bytes > 0 {
        let _ = write!(
            action,
            " Rescue disks hold {}: they go away at unrescue; a .rescue LV of an instance not in RESCUE is a leak to remove.",
            gib(u.rescue_bytes as i64)
        );
    }
    if u.unbooked_root_bytes > 0 {
        let _ = write!(
            action,
            " Root disks of disk = 0 flavors hold {} that nova books as 0: give those flavors a root disk or boot them from volumes.",
            gib(u.unbooked_root_bytes as i64)
        );
    }
    action
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::collect::{CollectorStatus, Snapshot};
    use crate::output::report::{
        allocation_ratio_command, AccountingReport, AllocationRatioRemedy, LocalSourceWarning,
        LvReport, OwnerReport, ReportContext, UntrackedReport,
    };
    use crate::units::GIB;
    use std::time::Duration;

    fn status(name: &'static str, error: Option<&str>) -> CollectorStatus {
        CollectorStatus {
            name,
            success: error.is_none(),
            duration: Duration::from_millis(5),
            last_success_unix: None,
            error: error.map(|text| {
                crate::collect::CollectorError::Source(crate::collect::SourceError::Text(
                    text.into(),
                ))
            }),
        }
    }

    fn report(collectors: Vec<CollectorStatus>) -> Report {
        let snapshot = Snapshot {
            collectors,
            host: None,
            sources: vec![],
            nova_vg: "vms".into(),
            primary: None,
            audit: None,
            finished_unix: 1_700_000_000.0,
            raw_methods: Vec::new(),
            flavor_fit: None,
            orphans: None,
            local_source_doubts: None,
            lv_series_limit: 100,
        };
        Report::new(&snapshot, &ReportContext::default(), 10)
    }

    fn accounting(untracked: i64, phantom: u64, corrected_free: i64) -> AccountingReport {
        AccountingReport {
            source: "libvirt".into(),
            instances: 1,
            tracked_used_bytes: 0,
            reserved_bytes: 0,
            drift_bytes: untracked,
            untracked: UntrackedReport {
                foreign_bytes: untracked as u64,
                orphan_bytes: 0,
                cinder_bytes: 0,
                unbooked_instance_bytes: 0,
                rescue_bytes: 0,
                unbooked_root_bytes: 0,
                swap_remainder_bytes: 0,
                extent_rounding_bytes: 0,
                unexplained_bytes: 0,
                total_bytes: untracked,
            },
            unbacked_bytes: 0,
            corrected_free_bytes: corrected_free,
            scheduler_free_bytes: 0,
            scheduler_total_bytes: None,
            scheduler_used_bytes: None,
            allocation_ratio: 1.0,
            overestimate_bytes: phantom as i64,
            phantom_bytes: phantom,
            recommended_reserved_host_disk_mb: 13_312,
            current_reserved_host_disk_mb: 1024,
            reserved_difference: None,
            allocation_ratio_remedy: None,
        }
    }

    fn with_vg(mut report: Report, a: AccountingReport, orphans: (u64, u64)) -> Report {
        report.vgs.push(VgAccount {
            name: "vms".into(),
            nova: true,
            size_bytes: 100 * GIB,
            free_bytes: 0,
            used_bytes: 0,
            owners: vec![OwnerReport {
                owner: "orphan".into(),
                lvs: orphans.0,
                bytes: orphans.1,
            }],
            top_untracked_lvs: vec![LvReport {
                name: "backup<1>".into(),
                owner: "foreign".into(),
                bytes: 10 * GIB,
                lvs: 1,
                overflow: false,
                created_unix: None,
                age_seconds: None,
            }],
            untracked_lv_count: 1,
            thin_pools: vec![],
            accounting: Some(a),
            accounting_absent_reason: None,
        });
        report
    }

    #[test]
    fn a_healthy_host_has_no_problem() {
        let r = with_vg(
            report(vec![status("lvm", None)]),
            accounting(GIB as i64, 0, 50 * GIB as i64),
            (0, 0),
        );
        assert_eq!(problems(&r), vec![]);
        let mut html = String::new();
        render_verdict(&mut html, &r);
        assert!(html.contains("data-problems=\"0\""), "{html}");
        assert!(html.contains("No problems"), "{html}");
    }

    #[test]
    fn failures_come_first_then_the_largest_with_what_to_do() {
        let r = with_vg(
            report(vec![
                status("lvm", None),
                status("libvirt", Some("cannot read <dir>")),
            ]),
            // 12 GiB untracked (12 % of 100 GiB), 12 GiB phantom, corrected free -2 GiB, and a
            // 1 GiB orphan.
            accounting(12 * GIB as i64, 12 * GIB, -2 * GIB as i64),
            (1, GIB),
        );
        let found = problems(&r);
        let whats: Vec<&str> = found.iter().map(|p| p.what.as_str()).collect();
        assert_eq!(found.len(), 5, "{whats:#?}");
        assert!(whats[0].starts_with("The libvirt collector failed: cannot read <dir>"));
        assert_eq!(
            found.iter().map(|p| p.bytes).collect::<Vec<_>>(),
            [
                None,
                Some(12 * GIB),
                Some(12 * GIB),
                Some(2 * GIB),
                Some(GIB)
            ]
        );
        assert!(
            whats[1].contains("the largest is backup<1> (foreign, 10.00 GiB)"),
            "{}",
            whats[1]
        );
        assert!(
            found[2].action.contains("reserved_host_disk_mb = 13312"),
            "{:?}",
            found[2]
        );
        let mut html = String::new();
        render_verdict(&mut html, &r);
        assert!(html.contains("data-problems=\"5\""), "{html}");
        assert!(
            html.contains(
                "5 problems. The first: The libvirt collector failed: cannot read &lt;dir&gt;."
            ),
            "{html}"
        );
        assert!(html.contains("backup&lt;1&gt;"), "{html}");
        assert!(!html.contains("<dir>"), "{html}");
    }

    #[test]
    fn rescue_disks_and_disk_0_roots_say_what_to_do_about_them() {
        let mut a = accounting(30 * GIB as i64, 0, 50 * GIB as i64);
        a.untracked.foreign_bytes = 10 * GIB;
        a.untracked.rescue_bytes = 8 * GIB;
        a.untracked.unbooked_root_bytes = 12 * GIB;
        let r = with_vg(report(vec![status("lvm", None)]), a, (0, 0));
        let found = problems(&r);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].bytes, Some(30 * GIB));
        let action = &found[0].action;
        assert!(
            action.contains("Rescue disks hold 8.00 GiB: they go away at unrescue; a .rescue LV of an instance not in RESCUE is a leak to remove."),
            "{action}"
        );
        assert!(
            action.contains("Root disks of disk = 0 flavors hold 12.00 GiB"),
            "{action}"
        );
        // Without either, the action is unchanged.
        let r = with_vg(
            report(vec![status("lvm", None)]),
            accounting(30 * GIB as i64, 0, 50 * GIB as i64),
            (0, 0),
        );
        assert!(problems(&r)[0].action.ends_with("leaves room for it."));
    }

    #[test]
    fn below_the_thresholds_nothing_is_a_problem_and_a_missing_vg_is() {
        // 4 GiB untracked of 100 GiB (under 5 %), 9 GiB phantom, corrected free -1 GiB exactly.
        let r = with_vg(
            report(vec![status("lvm", None)]),
            accounting(4 * GIB as i64, 9 * GIB, -(GIB as i64)),
            (0, 0),
        );
        assert_eq!(problems(&r), vec![]);
        let missing = report(vec![status("lvm", None)]);
        let found = problems(&missing);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].what.contains("did not report nova's VG vms"),
            "{found:?}"
        );
    }

    #[test]
    fn a_doubted_local_source_ranks_first_and_no_orphan_is_to_be_removed() {
        let mut r = with_vg(
            report(vec![status("lvm", None), status("libvirt", None)]),
            accounting(12 * GIB as i64, 0, 50 * GIB as i64),
            (3, 12 * GIB),
        );
        let orphan_action = |r: &Report| {
            problems(r)
                .into_iter()
                .find(|p| p.what.contains("orphaned instance disk"))
                .expect("the orphans are a problem")
                .action
        };
        assert!(orphan_action(&r).contains("lvremove"), "{:?}", problems(&r));
        r.local_source_warnings.push(LocalSourceWarning {
            source: "libvirt".into(),
            reads: "/etc/libvirt/qemu-wrong".into(),
            vg: "vms".into(),
            instances: 3,
            bytes: 12 * GIB,
            contradicted: false,
            others: vec![],
            message: "The libvirt source lists no instance beside 3 instances' disks".into(),
        });
        let found = problems(&r);
        assert_eq!(found[0].what, r.local_source_warnings[0].message);
        assert!(
            found[0].action.contains("/etc/libvirt/qemu-wrong"),
            "{:?}",
            found[0]
        );
        let action = orphan_action(&r);
        assert!(action.starts_with("Remove none"), "{action}");
        assert!(!action.contains("lvremove"), "{action}");
    }

    #[test]
    fn phantom_space_offers_the_allocation_ratio_before_the_restart() {
        let mut a = accounting(12 * GIB as i64, 12 * GIB, 50 * GIB as i64);
        a.allocation_ratio_remedy = Some(AllocationRatioRemedy {
            ratio: 0.8,
            applied_ratio: 0.8,
            current_ratio: 1.0,
            provider_uuid: Some("p-uuid".into()),
            command: allocation_ratio_command("p-uuid", 0.8),
            undo_command: allocation_ratio_command("p-uuid", 1.0),
            overwritten_by_nova_conf_ratio: None,
        });
        let r = with_vg(report(vec![status("lvm", None)]), a, (0, 0));
        let phantom = problems(&r)
            .into_iter()
            .find(|p| p.what.contains("that it does not have"))
            .expect("phantom space is a problem");
        assert!(
            phantom.action.starts_with(
                "Without restarting nova: openstack resource provider inventory set p-uuid --amend --resource DISK_GB:allocation_ratio=0.8 (undo: "
            ),
            "{}",
            phantom.action
        );
        assert!(
            phantom.action.contains("reserved_host_disk_mb = 13312"),
            "{}",
            phantom.action
        );
    }
}
