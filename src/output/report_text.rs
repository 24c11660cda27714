//! `nova-lvm-exporter report`'s text form: a [`Report`] printed for a terminal, every figure
//! with its arithmetic, every name from outside escaped ([`escape_control`]).

use std::fmt::Write as _;

use crate::output::report::{
    drift_causes, AuditReport, OrphansReport, Report, VgAccount, LISTED_ROWS,
};
use crate::text::escape_control;
use crate::units::{format_ratio, gib, gib_number, GIB};

/// One line of the arithmetic table: figure, formula, GiB and exact bytes.
fn row(out: &mut String, figure: &str, formula: &str, bytes: i64) {
    let _ = writeln!(
        out,
        "  {figure:<16} {formula:<54} {:>12} {bytes:>16}",
        gib_number(bytes)
    );
}

/// The human-readable account (what `report` prints by default).
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "nova-lvm-exporter report for {}, collected {} (exporter {} revision {})",
        escape_control(&report.hostname),
        report.collected_at,
        report.exporter.version,
        report.exporter.revision
    );
    for warning in &report.local_source_warnings {
        let _ = writeln!(out, "\nWARNING: {}", escape_control(&warning.message));
    }
    let _ = writeln!(out, "\nCollectors");
    for c in &report.collectors {
        let role = if report.primary_source.as_deref() == Some(c.name.as_str()) {
            " (primary)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:<10} {:<6} {:>8.0} ms{role}{}",
            c.name,
            if c.success { "ok" } else { "FAILED" },
            c.duration_seconds * 1000.0,
            c.error
                .as_deref()
                .map(|e| format!("  {}", escape_control(e)))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "\nSources");
    let _ = writeln!(out, "  raw (LVM): {}", escape_control(&report.raw_source));
    let _ = writeln!(
        out,
        "  nova's VG: {} (from {})",
        escape_control(&report.nova_vg),
        escape_control(&report.nova_vg_origin)
    );
    match &report.primary_source {
        Some(primary) => {
            let _ = writeln!(
                out,
                "  primary tracked source: {} (chosen by {})",
                escape_control(primary),
                escape_control(&report.primary_source_origin)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  no tracked source is enabled: only raw figures are available"
            );
        }
    }
    for s in &report.sources {
        let _ = writeln!(
            out,
            "  {}: reads {} ({})",
            s.source,
            escape_control(&s.reads),
            escape_control(&s.origin)
        );
        match &s.figures {
            Some(f) => {
                let _ = writeln!(
                    out,
                    "    {} instances, tracked used {}, allocated {}, reserved {}, ratio {}, scheduler free {}",
                    f.instances,
                    gib(f.tracked_used_bytes as i64),
                    gib(f.allocated_bytes as i64),
                    gib(f.reserved_bytes as i64),
                    format_ratio(f.allocation_ratio),
                    f.scheduler_free_bytes.map_or("unknown".to_string(), gib)
                );
            }
            None => {
                let _ = writeln!(out, "    no figures: the source failed");
            }
        }
    }
    for vg in &report.vgs {
        render_vg_text(&mut out, report, vg);
    }
    for missing in &report.missing_vgs {
        let _ = writeln!(out, "\nVG {}: not found by LVM", escape_control(missing));
    }
    if report.vgs.is_empty() && report.missing_vgs.is_empty() {
        let _ = writeln!(out, "\nNo LVM figures: the lvm collector failed.");
    }
    if let Some(audit) = &report.audit {
        render_audit_text(&mut out, audit);
    }
    if let Some(fit) = &report.flavor_fit {
        crate::output::fit::render_fit_text(&mut out, fit);
    }
    if let Some(orphans) = &report.orphans {
        render_orphans_text(&mut out, report, orphans);
    }
    out
}

/// The line that ends a list cut at [`LISTED_ROWS`]: how many rows are left out and where
/// they all are.
fn more_line(out: &mut String, listed: usize, what: &str) {
    if listed > LISTED_ROWS {
        let _ = writeln!(
            out,
            "  ... {} more {what} (report --format json lists them all)",
            listed - LISTED_ROWS
        );
    }
}

/// The orphan LVs of nova's VG by reason, then each with what nova said.
fn render_orphans_text(out: &mut String, report: &Report, orphans: &OrphansReport) {
    let _ = writeln!(
        out,
        "\nOrphans in {}: nova-named LVs whose instance the {} source does not place on this host, by why",
        escape_control(&orphans.vg),
        escape_control(report.primary_source.as_deref().unwrap_or("tracked"))
    );
    // The orphans are the primary source's word: doubted when that source lists no instance.
    if let Some(warning) = report
        .local_source_warnings
        .iter()
        .find(|w| report.primary_source.as_deref() == Some(w.source.as_str()))
    {
        let _ = writeln!(
            out,
            "  remove none of them: the {} source lists no instance at all (see the warning at the top)",
            warning.source
        );
    }
    for total in &orphans.totals {
        let _ = writeln!(
            out,
            "  {:<10} {:>4} LVs {:>12}",
            total.reason,
            total.lvs,
            gib(total.bytes as i64)
        );
    }
    for lv in orphans.lvs.iter().take(LISTED_ROWS) {
        let _ = writeln!(
            out,
            "  {} {} ({} bytes): {}",
            lv.reason,
            escape_control(&lv.name),
            lv.bytes,
            escape_control(&lv.detail)
        );
    }
    more_line(out, orphans.lvs.len(), "orphan LVs");
}

/// Placement against this host, consumer by consumer, with the figures behind each kind.
fn render_audit_text(out: &mut String, audit: &AuditReport) {
    let _ = writeln!(
        out,
        "\nAudit: placement's DISK_GB allocations against {} and nova's LVs",
        audit.local_source
    );
    for total in &audit.totals {
        let _ = writeln!(
            out,
            "  {:<28} {:>4} consumers {:>12}",
            total.kind,
            total.consumers,
            gib(total.bytes as i64)
        );
    }
    let figure = |bytes: Option<u64>| bytes.map_or("none".to_string(), |b| gib(b as i64));
    for consumer in audit.consumers.iter().take(LISTED_ROWS) {
        let _ = writeln!(
            out,
            "  {} {}: allocated {}, flavor needs {}, LVs {}, counts {} ({} bytes)",
            consumer.kind,
            escape_control(&consumer.uuid),
            figure(consumer.allocated_bytes),
            figure(consumer.expected_bytes),
            gib(consumer.lv_bytes as i64),
            gib(consumer.bytes as i64),
            consumer.bytes
        );
    }
    more_line(out, audit.consumers.len(), "consumers");
    if audit.consumers.is_empty() {
        let _ = writeln!(out, "  every consumer agrees");
    }
}

fn render_vg_text(out: &mut String, report: &Report, vg: &VgAccount) {
    let role = if vg.nova {
        format!("nova's VG, from {}", escape_control(&report.nova_vg_origin))
    } else {
        "also watched".to_string()
    };
    let _ = writeln!(out, "\nVG {} ({role})", escape_control(&vg.name));
    let _ = writeln!(
        out,
        "  {:<16} {:<54} {:>12} {:>16}",
        "figure", "arithmetic", "GiB", "bytes"
    );
    row(out, "size", "vg_size", vg.size_bytes as i64);
    row(out, "free", "vg_free", vg.free_bytes as i64);
    row(out, "raw used", "size - free", vg.used_bytes as i64);
    let Some(a) = &vg.accounting else {
        let _ = writeln!(
            out,
            "  no derived figures: {}",
            escape_control(vg.accounting_absent_reason.as_deref().unwrap_or("unknown"))
        );
        render_lvs_text(out, vg);
        return;
    };
    row(
        out,
        "tracked used",
        &format!(
            "{} instance{} ({}): root + ephemeral + swap",
            a.instances,
            if a.instances == 1 { "" } else { "s" },
            escape_control(&a.source)
        ),
        a.tracked_used_bytes as i64,
    );
    row(
        out,
        "reserved",
        &format!(
            "reserved_host_disk_mb = {}",
            a.current_reserved_host_disk_mb
        ),
        a.reserved_bytes as i64,
    );
    if let Some(d) = &a.reserved_difference {
        let _ = writeln!(out, "  {:<16}   {}", "", escape_control(&d.explanation));
    }
    row(out, "drift", "raw used - tracked used", a.drift_bytes);
    row(
        out,
        "corrected free",
        "size - max(raw used, tracked used) - reserved",
        a.corrected_free_bytes,
    );
    let _ = writeln!(
        out,
        "  {:<16} = {} - max({}, {}) - {}",
        "",
        gib_number(vg.size_bytes as i64),
        gib_number(vg.used_bytes as i64),
        gib_number(a.tracked_used_bytes as i64),
        gib_number(a.reserved_bytes as i64)
    );
    row(
        out,
        "scheduler free",
        "(DISK_GB total - reserved) x ratio - DISK_GB used",
        a.scheduler_free_bytes,
    );
    if let (Some(total), Some(used)) = (a.scheduler_total_bytes, a.scheduler_used_bytes) {
        let _ = writeln!(
            out,
            "  {:<16} = ({} - {}) x {} - {}  (whole GiB, as placement counts)",
            "",
            total / GIB,
            a.reserved_bytes.div_ceil(GIB),
            format_ratio(a.allocation_ratio),
            gib_number(used as i64)
        );
    }
    row(
        out,
        "over-estimate",
        "scheduler free - corrected free",
        a.overestimate_bytes,
    );
    row(
        out,
        "phantom space",
        "max(over-estimate + min(corrected free, 0), 0)",
        a.phantom_bytes as i64,
    );

    let _ = writeln!(out, "\n  Drift by cause");
    for (cause, bytes, meaning) in drift_causes(a) {
        let _ = writeln!(out, "    {cause:<17} {:>14}  {meaning}", gib(bytes));
    }
    let _ = writeln!(
        out,
        "    {:<17} {:>14}  untracked consumption (without rounding): {}",
        "= drift",
        gib(a.drift_bytes),
        gib(a.untracked.total_bytes)
    );
    render_lvs_text(out, vg);

    let _ = writeln!(out, "\n  Recommendation");
    if a.recommended_reserved_host_disk_mb > a.current_reserved_host_disk_mb {
        let _ = writeln!(
            out,
            "    set [DEFAULT] reserved_host_disk_mb = {} (today {}) so that the scheduler's free space is no more than corrected free;",
            a.recommended_reserved_host_disk_mb, a.current_reserved_host_disk_mb
        );
        let _ = writeln!(
            out,
            "    better: remove or account for the untracked LVs above, and the reserve can stay as it is."
        );
    } else {
        let _ = writeln!(
            out,
            "    reserved_host_disk_mb = {} is enough: the scheduler does not see more free space than there is.",
            a.current_reserved_host_disk_mb
        );
    }
    if let Some(d) = &a.reserved_difference {
        if d.knob == "image_cache" {
            let _ = writeln!(
                out,
                "    (nova adds the image cache's {} GiB to reserved_host_disk_mb in placement: the figure above already counts it)",
                d.image_cache_gib.unwrap_or(0)
            );
        }
    }
    if a.overestimate_bytes > 0 {
        if let Some(remedy) = &a.allocation_ratio_remedy {
            render_ratio_remedy(out, remedy);
        }
    }
}

/// The remedy without restarting nova-compute: the command, when nova would overwrite it, how to
/// undo it.
fn render_ratio_remedy(out: &mut String, remedy: &crate::output::report::AllocationRatioRemedy) {
    let _ = writeln!(
        out,
        "    without restarting nova-compute: set placement's DISK_GB allocation ratio to {} (today {}), so that (total - reserved) x ratio = corrected free + allocated:",
        format_ratio(remedy.ratio),
        format_ratio(remedy.current_ratio)
    );
    let _ = writeln!(out, "      {}", escape_control(&remedy.command));
    if remedy.applied_ratio != remedy.ratio {
        let _ = writeln!(
            out,
            "    ({} rather than 0, which the exporter reads as an invalid inventory: it lets nothing more be scheduled on any provider under 10,000 GiB)",
            format_ratio(remedy.applied_ratio)
        );
    }
    if remedy.provider_uuid.is_none() {
        let _ = writeln!(
            out,
            "    (the primary source is not placement: find the provider's UUID with `openstack resource provider list --name <hypervisor hostname>`)"
        );
    }
    match remedy.overwritten_by_nova_conf_ratio {
        Some(pinned) => {
            let _ = writeln!(
                out,
                "    it will NOT hold: nova.conf sets [DEFAULT] disk_allocation_ratio = {}, which nova-compute writes back on its next inventory update; unset it (a restart) or raise reserved_host_disk_mb instead.",
                format_ratio(pinned)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "    it holds while [DEFAULT] disk_allocation_ratio stays unset in nova.conf (nova applies initial_disk_allocation_ratio only when it creates the inventory); redo it when the drift changes."
            );
        }
    }
    let _ = writeln!(out, "    undo: {}", escape_control(&remedy.undo_command));
}

fn render_lvs_text(out: &mut String, vg: &VgAccount) {
    render_untracked_lvs_text(out, vg);
    for pool in &vg.thin_pools {
        let _ = writeln!(
            out,
            "\n  Thin pool {}: data {:.1} % used, metadata {}",
            escape_control(&pool.name),
            pool.data_used_ratio * 100.0,
            pool.metadata_used_ratio
                .map_or("unknown".to_string(), |ratio| format!(
                    "{:.1} % used",
                    ratio * 100.0
                ))
        );
    }
}

fn render_untracked_lvs_text(out: &mut String, vg: &VgAccount) {
    if vg.top_untracked_lvs.is_empty() {
        let _ = writeln!(out, "\n  No untracked LVs.");
        return;
    }
    let _ = writeln!(
        out,
        "\n  Untracked LVs, largest first ({} shown of {})",
        vg.untracked_lvs_shown(),
        vg.untracked_lv_count
    );
    for lv in &vg.top_untracked_lvs {
        let age = match (lv.age_seconds, lv.overflow) {
            (None, _) => String::new(),
            (Some(age), false) => format!(", created {}", age_text(age)),
            (Some(age), true) => format!(", the oldest created {}", age_text(age)),
        };
        let _ = writeln!(
            out,
            "    {:>14}  {:<8} {}",
            gib(lv.bytes as i64),
            lv.owner,
            if lv.overflow {
                format!("{} ({} LVs beyond the series limit{age})", lv.name, lv.lvs)
            } else if age.is_empty() {
                escape_control(&lv.name).into_owned()
            } else {
                format!("{} ({})", escape_control(&lv.name), &age[2..])
            }
        );
    }
    if let Some(note) = cinder_pool_note(vg) {
        let _ = writeln!(out, "    {}", escape_control(&note));
    }
}

/// What `report` and the status page say when cinder's thin pool `<vg>-pool` is among the
/// untracked LVs: cinder's LVM driver with `lvm_type = thin` creates it with every free extent
/// (os-brick's `create_thin_pool`, `-l 100%FREE`; docs/sources.md).
pub fn cinder_pool_note(vg: &VgAccount) -> Option<String> {
    let cinder_pool = format!("{}-pool", vg.name);
    vg.top_untracked_lvs
        .iter()
        .any(|lv| lv.owner == "cinder" && lv.name == cinder_pool)
        .then(|| {
            format!(
                "{cinder_pool} is cinder's thin pool (lvm_type = thin): cinder-volume creates it with every free extent of the VG (lvcreate -T -l 100%FREE), so builds fail here however small; give cinder its own VG (runbook: NovaLvmUntrackedConsumption, cinder)"
            )
        })
}

/// An LV's age as a person says it: "5 minutes ago", "3 hours ago", "3 days ago" (whole units,
/// rounded down). An LV's age bounds how long it has been an orphan: LVM records when it was
/// created, not when its instance went away.
pub fn age_text(seconds: i64) -> String {
    let (count, unit) = match seconds {
        i64::MIN..=-1 => return "in the future (clocks disagree)".to_string(),
        0..=59 => return "less than a minute ago".to_string(),
        60..=7_199 => (seconds / 60, "minute"),
        7_200..=172_799 => (seconds / 3_600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    format!("{count} {unit}{} ago", if count == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::report::{
        allocation_ratio_command, AllocationRatioRemedy, PROVIDER_UUID_PLACEHOLDER,
    };

    const PROVIDER: &str = "4e8e5957-649f-477b-9e5b-f1f75b21c03c";

    fn remedy(ratio: f64, provider: Option<&str>, pinned: Option<f64>) -> AllocationRatioRemedy {
        let uuid = provider.unwrap_or(PROVIDER_UUID_PLACEHOLDER);
        let applied_ratio = ratio.max(0.0001);
        AllocationRatioRemedy {
            ratio,
            applied_ratio,
            current_ratio: 1.0,
            provider_uuid: provider.map(str::to_string),
            command: allocation_ratio_command(uuid, applied_ratio),
            undo_command: allocation_ratio_command(uuid, 1.0),
            overwritten_by_nova_conf_ratio: pinned,
        }
    }

    fn rendered(remedy: &AllocationRatioRemedy) -> String {
        let mut out = String::new();
        render_ratio_remedy(&mut out, remedy);
        out
    }

    #[test]
    fn the_remedy_gives_the_command_the_undo_and_that_it_holds() {
        let out = rendered(&remedy(0.7525, Some(PROVIDER), None));
        assert_eq!(
            out,
            format!(
                "    without restarting nova-compute: set placement's DISK_GB allocation ratio to 0.7525 (today 1.0), so that (total - reserved) x ratio = corrected free + allocated:\n      \
                 openstack resource provider inventory set {PROVIDER} --amend --resource DISK_GB:allocation_ratio=0.7525\n    \
                 it holds while [DEFAULT] disk_allocation_ratio stays unset in nova.conf (nova applies initial_disk_allocation_ratio only when it creates the inventory); redo it when the drift changes.\n    \
                 undo: openstack resource provider inventory set {PROVIDER} --amend --resource DISK_GB:allocation_ratio=1.0\n"
            )
        );
    }

    #[test]
    fn the_remedy_says_when_nova_conf_overwrites_it() {
        let out = rendered(&remedy(0.5, Some(PROVIDER), Some(1.5)));
        assert!(
            out.contains("it will NOT hold: nova.conf sets [DEFAULT] disk_allocation_ratio = 1.5, which nova-compute writes back"),
            "{out}"
        );
        assert!(!out.contains("it holds while"), "{out}");
    }

    #[test]
    fn without_placement_the_command_names_where_the_uuid_comes_from() {
        let out = rendered(&remedy(0.9, None, None));
        assert!(
            out.contains(
                "inventory set <provider-uuid> --amend --resource DISK_GB:allocation_ratio=0.9"
            ),
            "{out}"
        );
        assert!(
            out.contains("openstack resource provider list --name <hypervisor hostname>"),
            "{out}"
        );
    }

    #[test]
    fn a_ratio_of_zero_is_applied_as_the_smallest_positive_one() {
        let out = rendered(&remedy(0.0, Some(PROVIDER), None));
        assert!(out.contains("allocation ratio to 0.0 (today 1.0)"), "{out}");
        assert!(out.contains("DISK_GB:allocation_ratio=0.0001\n"), "{out}");
        assert!(out.contains("0.0001 rather than 0"), "{out}");
    }
}
