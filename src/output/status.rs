//! The status page at `/`: the account of [`crate::output::report`] as one self-contained HTML page
//! (inline CSS and SVG, no JavaScript), with a bar chart of raw used, tracked used, corrected
//! free and scheduler free against the VG size, the time of the collection and every
//! collector error. All text from outside (LV names, error messages, paths) is HTML-escaped.
//!
//! Every figure is also in a `data-figure`/`data-bytes` pair, so that tests (and scrapers of
//! the page, though the JSON of `report` is the better interface) read exact bytes.

use std::fmt::Write as _;

use crate::output::report::{
    drift_causes, AccountingReport, AuditReport, OrphansReport, Report, VgAccount, LISTED_ROWS,
};
use crate::text::escape_html;
use crate::units::{format_ratio, gib, GIB};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:62em;padding:0 1em;color:#1d232a}\
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccd}\
h3{font-size:1em;margin-bottom:.3em}table{border-collapse:collapse;margin:.4em 0}\
th,td{text-align:left;padding:.15em .8em .15em 0;vertical-align:top}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.muted{color:#667}.ok{color:#1a7f37}.failed{color:#b42318;font-weight:bold}.error{color:#b42318;font-family:monospace;white-space:pre-wrap}\
code,.formula{font-family:monospace;font-size:.92em}nav a{margin-right:1em}\
.bar-raw{fill:#4c78a8}.bar-tracked{fill:#9ecae9}.bar-corrected{fill:#54a24b}.bar-scheduler{fill:#e45756}\
.axis{stroke:#333;stroke-width:1}.size{stroke:#333;stroke-dasharray:4 3}svg text{font-size:12px;font-family:system-ui,sans-serif}";

/// The page for one report. `telemetry_path` is linked; `summary` is the configuration summary
/// (key, value) shown at the bottom.
pub fn render(report: &Report, telemetry_path: &str, summary: &[(String, String)]) -> String {
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>nova-lvm-exporter: {host}</title><style>{STYLE}</style></head><body>\
         <h1>nova-lvm-exporter on {host}</h1>\
         <p class=\"muted\">Measures the LVM disk space that OpenStack nova does not see.</p>\
         <nav><a href=\"{path}\">Metrics</a><a href=\"/healthz\">Health</a></nav>",
        host = escape_html(&report.hostname),
        path = escape_html(telemetry_path),
    );
    let _ = write!(
        html,
        "<p>Last collection: <time id=\"collected-at\" datetime=\"{at}\">{at}</time> \
         (refresh the page for a new one; concurrent scrapes and page views share one collection).</p>",
        at = escape_html(&report.collected_at),
    );
    for warning in &report.local_source_warnings {
        let _ = write!(
            html,
            "<p class=\"failed local-source-warning\" data-source=\"{}\">Warning: {}</p>",
            escape_html(&warning.source),
            escape_html(&warning.message)
        );
    }
    crate::output::verdict::render_verdict(&mut html, report);
    render_collectors(&mut html, report);
    render_raw_methods(&mut html, report);
    for vg in &report.vgs {
        render_vg(&mut html, report, vg);
    }
    for missing in &report.missing_vgs {
        let _ = write!(
            html,
            "<h2>VG {}</h2><p class=\"failed\">Not found by LVM.</p>",
            escape_html(missing)
        );
    }
    if report.vgs.is_empty() && report.missing_vgs.is_empty() {
        html.push_str(
            "<h2>No LVM figures</h2><p class=\"failed\">The lvm collector failed: see above.</p>",
        );
    }
    if let Some(audit) = &report.audit {
        render_audit(&mut html, audit);
    }
    if let Some(fit) = &report.flavor_fit {
        render_fit_html(&mut html, fit);
    }
    if let Some(orphans) = &report.orphans {
        render_orphans(&mut html, report, orphans);
    }
    html.push_str("<h2>Configuration</h2><table id=\"configuration\">");
    let _ = write!(
        html,
        "<tr><th>primary tracked source</th><td>{} (chosen by {})</td></tr>",
        escape_html(report.primary_source.as_deref().unwrap_or("none")),
        escape_html(&report.primary_source_origin)
    );
    for source in &report.sources {
        let _ = write!(
            html,
            "<tr><th>{} source reads</th><td>{} ({})</td></tr>",
            escape_html(&source.source),
            escape_html(&source.reads),
            escape_html(&source.origin)
        );
    }
    // A summary row that only repeats a source's row above (the libvirt directory, the file
    // path) is left out; rows with more to say (placement's refresh timing) stay.
    let repeated = |key: &str, value: &str| {
        report
            .sources
            .iter()
            .any(|s| key == format!("{} source", s.source) && s.reads.contains(value))
    };
    for (key, value) in summary
        .iter()
        .filter(|(key, value)| key != "primary tracked source" && !repeated(key, value))
    {
        let _ = write!(
            html,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape_html(key),
            escape_html(value)
        );
    }
    let _ = writeln!(
        html,
        "</table><p class=\"muted\">The same account as text: <code>nova-lvm-exporter report</code>; \
         as JSON: <code>nova-lvm-exporter report --format json</code>. Version {} (revision {}).</p></body></html>",
        escape_html(&report.exporter.version),
        escape_html(&report.exporter.revision)
    );
    html
}

fn render_collectors(html: &mut String, report: &Report) {
    html.push_str("<h2>Collectors</h2><table id=\"collectors\"><tr><th>collector</th><th>status</th><th>took</th><th>error</th></tr>");
    for c in &report.collectors {
        let primary = if report.primary_source.as_deref() == Some(c.name.as_str()) {
            " <span class=\"muted\">(primary)</span>"
        } else {
            ""
        };
        let _ = write!(
            html,
            "<tr data-collector=\"{name}\"><td>{name}{primary}</td><td class=\"{class}\">{status}</td>\
             <td class=\"num\">{ms:.0} ms</td><td class=\"error\">{error}</td></tr>",
            name = escape_html(&c.name),
            class = if c.success { "ok" } else { "failed" },
            status = if c.success { "ok" } else { "FAILED" },
            ms = c.duration_seconds * 1000.0,
            error = escape_html(c.error.as_deref().unwrap_or("")),
        );
    }
    html.push_str("</table>");
}

/// A row of the account: figure name, formula, GiB and exact bytes (with `data-` attributes).
fn figure_row(html: &mut String, id: &str, label: &str, formula: &str, bytes: i64) {
    let _ = write!(
        html,
        "<tr><th>{label}</th><td class=\"formula\">{formula}</td>\
         <td class=\"num\" data-figure=\"{id}\" data-bytes=\"{bytes}\">{gib}</td><td class=\"num muted\">{bytes}</td></tr>",
        label = escape_html(label),
        formula = escape_html(formula),
        gib = escape_html(&gib(bytes)),
    );
}

/// How LVM was read, per watched VG: method and reason (`nova_lvm_raw_source_info`).
fn render_raw_methods(html: &mut String, report: &Report) {
    if report.raw_methods.is_empty() {
        return;
    }
    html.push_str("<h2>How LVM was read</h2><table id=\"raw-methods\"><tr><th>VG</th><th>method</th><th>reason</th></tr>");
    for method in &report.raw_methods {
        let class = match (method.method.as_str(), method.reason.as_str()) {
            ("metadata", _) => "ok",
            ("none", _) => "failed",
            _ => "muted",
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
            escape_html(&method.vg),
            escape_html(&method.method),
            escape_html(&method.reason)
        );
    }
    html.push_str("</table>");
}

fn render_vg(html: &mut String, report: &Report, vg: &VgAccount) {
    let _ = write!(
        html,
        "<h2 id=\"vg-{id}\">VG {name}{role}</h2>",
        id = escape_html(&vg.name),
        name = escape_html(&vg.name),
        role = if vg.nova {
            format!(
                " <span class=\"muted\">(nova's VG, from {})</span>",
                escape_html(&report.nova_vg_origin)
            )
        } else {
            String::new()
        }
    );
    html.push_str(&chart(vg));
    html.push_str("<table class=\"account\"><tr><th>figure</th><th>arithmetic</th><th>GiB</th><th>bytes</th></tr>");
    figure_row(html, "size", "size", "vg_size", vg.size_bytes as i64);
    figure_row(html, "free", "free", "vg_free", vg.free_bytes as i64);
    figure_row(
        html,
        "raw-used",
        "raw used",
        "size - free",
        vg.used_bytes as i64,
    );
    let Some(a) = &vg.accounting else {
        let _ = write!(
            html,
            "</table><p class=\"failed\">No derived figures: {}</p>",
            escape_html(vg.accounting_absent_reason.as_deref().unwrap_or("unknown"))
        );
        render_lvs(html, vg);
        return;
    };
    render_account(html, vg, a);
    render_lvs(html, vg);
    html.push_str("<h3>Recommendation</h3>");
    if a.recommended_reserved_host_disk_mb > a.current_reserved_host_disk_mb {
        let _ = write!(
            html,
            "<p id=\"recommendation\">Set <code>[DEFAULT] reserved_host_disk_mb = <span data-figure=\"recommended-reserved-mb\">{}</span></code> \
             (today {}) so that the scheduler sees no more free space than there is, or remove the untracked LVs above. Advice only.</p>",
            a.recommended_reserved_host_disk_mb, a.current_reserved_host_disk_mb
        );
    } else {
        let _ = write!(
            html,
            "<p id=\"recommendation\"><code>reserved_host_disk_mb = <span data-figure=\"recommended-reserved-mb\">{}</span></code> is enough: \
             the scheduler does not see more free space than there is.</p>",
            a.current_reserved_host_disk_mb
        );
    }
}

fn render_account(html: &mut String, vg: &VgAccount, a: &AccountingReport) {
    figure_row(
        html,
        "tracked-used",
        "tracked used",
        &format!(
            "{} instance{} ({}): root + ephemeral + swap",
            a.instances,
            if a.instances == 1 { "" } else { "s" },
            a.source
        ),
        a.tracked_used_bytes as i64,
    );
    figure_row(
        html,
        "reserved",
        "reserved",
        &format!(
            "reserved_host_disk_mb = {}",
            a.current_reserved_host_disk_mb
        ),
        a.reserved_bytes as i64,
    );
    figure_row(
        html,
        "drift",
        "drift",
        "raw used - tracked used",
        a.drift_bytes,
    );
    figure_row(
        html,
        "corrected-free",
        "corrected free",
        &format!(
            "size - max(raw used, tracked used) - reserved = {:.2} - max({:.2}, {:.2}) - {:.2}",
            vg.size_bytes as f64 / GIB_F,
            vg.used_bytes as f64 / GIB_F,
            a.tracked_used_bytes as f64 / GIB_F,
            a.reserved_bytes as f64 / GIB_F
        ),
        a.corrected_free_bytes,
    );
    let scheduler_formula = match (a.scheduler_total_bytes, a.scheduler_used_bytes) {
        (Some(total), Some(used)) => format!(
            "(DISK_GB total - reserved) x ratio - used = ({} - {}) x {} - {:.2} (whole GiB)",
            total / GIB,
            a.reserved_bytes.div_ceil(GIB),
            format_ratio(a.allocation_ratio),
            used as f64 / GIB_F
        ),
        _ => "(DISK_GB total - reserved) x ratio - used".to_string(),
    };
    figure_row(
        html,
        "scheduler-free",
        "scheduler free",
        &scheduler_formula,
        a.scheduler_free_bytes,
    );
    figure_row(
        html,
        "overestimate",
        "over-estimate",
        "scheduler free - corrected free",
        a.overestimate_bytes,
    );
    figure_row(
        html,
        "phantom",
        "phantom space",
        "max(over-estimate + min(corrected free, 0), 0)",
        a.phantom_bytes as i64,
    );
    html.push_str("</table><h3>Drift by cause</h3><table class=\"causes\">");
    for (cause, bytes, meaning) in drift_causes(a) {
        let _ = write!(
            html,
            "<tr><th>{cause}</th><td class=\"num\" data-figure=\"cause-{cause}\" data-bytes=\"{bytes}\">{}</td><td class=\"muted\">{meaning}</td></tr>",
            escape_html(&gib(bytes))
        );
    }
    let _ = write!(
        html,
        "<tr><th>= drift</th><td class=\"num\">{}</td><td class=\"muted\">untracked consumption without rounding: \
         <span data-figure=\"untracked\" data-bytes=\"{}\">{}</span></td></tr></table>",
        escape_html(&gib(a.drift_bytes)),
        a.untracked.total_bytes,
        escape_html(&gib(a.untracked.total_bytes))
    );
}

const GIB_F: f64 = GIB as f64;

fn render_lvs(html: &mut String, vg: &VgAccount) {
    if vg.top_untracked_lvs.is_empty() {
        html.push_str("<h3>Untracked LVs</h3><p>None.</p>");
        return;
    }
    let _ = write!(
        html,
        "<h3>Untracked LVs, largest first ({} shown of {})</h3><table class=\"lvs\"><tr><th>LV</th><th>owner</th><th>GiB</th><th>bytes</th><th>created</th></tr>",
        vg.untracked_lvs_shown(),
        vg.untracked_lv_count
    );
    for lv in &vg.top_untracked_lvs {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num muted\">{}</td><td class=\"age\">{}</td></tr>",
            escape_html(&lv.name),
            escape_html(&lv.owner),
            escape_html(&gib(lv.bytes as i64)),
            lv.bytes,
            // As `report` says it; for the LVs summed beyond the series limit, the oldest.
            match (lv.age_seconds, lv.overflow) {
                (None, _) => String::new(),
                (Some(age), false) => crate::output::report_text::age_text(age),
                (Some(age), true) => format!("the oldest {}", crate::output::report_text::age_text(age)),
            }
        );
    }
    html.push_str("</table>");
    if let Some(note) = crate::output::report_text::cinder_pool_note(vg) {
        let _ = write!(html, "<p class=\"cinder-pool\">{}</p>", escape_html(&note));
    }
}

/// The fit as the status page shows it.
fn render_fit_html(html: &mut String, fit: &crate::output::fit::FlavorFitReport) {
    let _ = write!(
        html,
        "<h2 id=\"flavor-fit\">Flavor fit in VG {}</h2><p>How many more instances of each flavor fit: by corrected free space ({} GiB) over the LVs one instance takes, and as the scheduler would place them ({} GiB free over the flavor's DISK_GB).</p><table id=\"flavor-fit-table\"><tr><th>flavor</th><th>origin</th><th>disk, swap, ephemeral</th><th>LVs (GiB)</th><th>DISK_GB</th><th>corrected</th><th>scheduler</th></tr>",
        escape_html(&fit.vg),
        crate::units::gib_number(fit.corrected_free_bytes),
        crate::units::gib_number(fit.scheduler_free_bytes)
    );
    for f in &fit.flavors {
        let _ = write!(
            html,
            "<tr{}><th>{}</th><td>{}</td><td>{} GiB, {} MiB, {} GiB</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\" data-fit=\"corrected\">{}</td><td class=\"num\" data-fit=\"scheduler\">{}</td></tr>",
            if f.next_build_fails { " class=\"failed\"" } else { "" },
            escape_html(&f.name),
            f.origin,
            f.root_gb,
            f.swap_mb,
            f.ephemeral_gb,
            crate::units::gib_number(f.instance_lv_bytes as i64),
            f.placement_bytes / GIB,
            crate::output::fit::shown(f.corrected),
            crate::output::fit::shown(f.scheduler)
        );
    }
    html.push_str("</table>");
    if fit.omitted_flavors > 0 {
        let _ = write!(
            html,
            "<p class=\"muted\">{} more flavors of the compute API or of the domains here left out by --flavor-limit.</p>",
            fit.omitted_flavors
        );
    }
}

/// A totals table (`<prefix>-totals`): one row per label with its count and bytes, the GiB
/// cell tagged `data-figure="<prefix>-<label>"` for tests and scripts.
fn render_totals<'a>(
    html: &mut String,
    (prefix, label_header, count_header): (&str, &str, &str),
    rows: impl Iterator<Item = (&'a str, u64, u64)>,
) {
    let _ = write!(
        html,
        "<table id=\"{prefix}-totals\"><tr><th>{label_header}</th><th>{count_header}</th><th>GiB</th><th>bytes</th></tr>"
    );
    for (label, count, bytes) in rows {
        let _ = write!(
            html,
            "<tr><th>{label}</th><td class=\"num\">{count}</td><td class=\"num\" data-figure=\"{prefix}-{label}\" data-bytes=\"{bytes}\">{}</td><td class=\"num muted\">{bytes}</td></tr>",
            escape_html(&gib(bytes as i64)),
            label = escape_html(label),
        );
    }
    html.push_str("</table>");
}

/// The audit: totals per kind, then every consumer that disagrees (each figure with its bytes).
fn render_audit(html: &mut String, audit: &AuditReport) {
    let _ = write!(
        html,
        "<h2 id=\"audit\">Audit: placement against {}</h2>",
        escape_html(&audit.local_source)
    );
    render_totals(
        html,
        ("audit", "kind", "consumers"),
        audit
            .totals
            .iter()
            .map(|total| (total.kind.as_str(), total.consumers, total.bytes)),
    );
    if audit.consumers.is_empty() {
        html.push_str("<p>Every consumer agrees.</p>");
        return;
    }
    html.push_str("<table id=\"audit-consumers\"><tr><th>consumer</th><th>kind</th><th>allocated</th><th>flavor needs</th><th>LVs</th><th>counts (bytes)</th></tr>");
    let figure = |bytes: Option<u64>| bytes.map_or("none".to_string(), |b| gib(b as i64));
    for consumer in audit.consumers.iter().take(LISTED_ROWS) {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape_html(&consumer.uuid),
            escape_html(&consumer.kind),
            escape_html(&figure(consumer.allocated_bytes)),
            escape_html(&figure(consumer.expected_bytes)),
            escape_html(&gib(consumer.lv_bytes as i64)),
            consumer.bytes,
        );
    }
    html.push_str("</table>");
    more_rows(html, audit.consumers.len(), "consumers");
}

/// The paragraph that ends a table cut at [`LISTED_ROWS`]: how many rows are left out and
/// where they all are.
fn more_rows(html: &mut String, listed: usize, what: &str) {
    if listed > LISTED_ROWS {
        let _ = write!(
            html,
            "<p class=\"more-rows\" data-more=\"{}\">... {} more {what} (<code>nova-lvm-exporter report --format json</code> lists them all).</p>",
            listed - LISTED_ROWS,
            listed - LISTED_ROWS
        );
    }
}

/// The orphans of nova's VG: totals per reason, then every orphan LV with what nova said.
fn render_orphans(html: &mut String, report: &Report, orphans: &OrphansReport) {
    let _ = write!(
        html,
        "<h2 id=\"orphans\">Orphans in {}: why each is one</h2>\
         <p>Nova-named LVs whose instance the {} source does not place on this host.</p>",
        escape_html(&orphans.vg),
        escape_html(report.primary_source.as_deref().unwrap_or("tracked"))
    );
    // The orphans are the primary source's word: doubted when that source lists no instance.
    if let Some(warning) = report
        .local_source_warnings
        .iter()
        .find(|w| report.primary_source.as_deref() == Some(w.source.as_str()))
    {
        let _ = write!(
            html,
            "<p class=\"failed\">Remove none of them: the {} source lists no instance at all (see the warning at the top).</p>",
            escape_html(&warning.source)
        );
    }
    render_totals(
        html,
        ("orphan", "reason", "LVs"),
        orphans
            .totals
            .iter()
            .map(|total| (total.reason.as_str(), total.lvs, total.bytes)),
    );
    if orphans.lvs.is_empty() {
        html.push_str("<p>No orphan LVs.</p>");
        return;
    }
    html.push_str("<table id=\"orphan-lvs\"><tr><th>LV</th><th>reason</th><th>GiB</th><th>what nova says</th></tr>");
    for lv in orphans.lvs.iter().take(LISTED_ROWS) {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape_html(&lv.name),
            escape_html(&lv.reason),
            escape_html(&gib(lv.bytes as i64)),
            escape_html(&lv.detail),
        );
    }
    html.push_str("</table>");
    more_rows(html, orphans.lvs.len(), "orphan LVs");
}

/// The bar chart: raw used, tracked used, corrected free and scheduler free against the VG size
/// (dashed line). Negative values (an over-committed host) extend left of the zero axis.
fn chart(vg: &VgAccount) -> String {
    let mut bars: Vec<(&str, &str, i64)> = vec![("raw used", "bar-raw", vg.used_bytes as i64)];
    if let Some(a) = &vg.accounting {
        bars.push(("tracked used", "bar-tracked", a.tracked_used_bytes as i64));
        bars.push(("corrected free", "bar-corrected", a.corrected_free_bytes));
        bars.push(("scheduler free", "bar-scheduler", a.scheduler_free_bytes));
    }
    let size = vg.size_bytes as i64;
    let max = bars.iter().map(|b| b.2).max().unwrap_or(0).max(size).max(1);
    let min = bars.iter().map(|b| b.2).min().unwrap_or(0).min(0);
    let (label_width, plot_width, value_width) = (110.0, 440.0, 90.0);
    let row_height = 26.0;
    let height = row_height * bars.len() as f64 + 24.0;
    let width = label_width + plot_width + value_width;
    let scale = plot_width / (max - min) as f64;
    let zero = label_width + (-min) as f64 * scale;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"chart-{name}\" class=\"chart\" role=\"img\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title>VG {name}: raw used, tracked used, corrected free and scheduler free against the VG size</title>",
        name = escape_html(&vg.name),
    );
    for (i, (label, class, bytes)) in bars.iter().enumerate() {
        let y = 4.0 + row_height * i as f64;
        let x = if *bytes < 0 {
            zero + *bytes as f64 * scale
        } else {
            zero
        };
        let w = (*bytes as f64 * scale).abs();
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{ty}\">{label}</text>\
             <rect class=\"{class}\" data-bytes=\"{bytes}\" x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bh}\"><title>{label}: {value}</title></rect>\
             <text x=\"{vx}\" y=\"{ty}\">{value}</text>",
            ty = y + 14.0,
            bh = row_height - 8.0,
            vx = label_width + plot_width + 6.0,
            value = escape_html(&gib(*bytes)),
        );
    }
    let size_x = zero + size as f64 * scale;
    let bottom = row_height * bars.len() as f64 + 4.0;
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{zero:.1}\" y1=\"0\" x2=\"{zero:.1}\" y2=\"{bottom}\"/>\
         <line class=\"size\" x1=\"{size_x:.1}\" y1=\"0\" x2=\"{size_x:.1}\" y2=\"{bottom}\"/>\
         <text x=\"{tx:.1}\" y=\"{ly}\" text-anchor=\"end\">VG size {size_text}</text></svg>",
        tx = size_x,
        ly = bottom + 16.0,
        size_text = escape_html(&gib(size)),
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::collect::{CollectorStatus, Snapshot};
    use crate::output::report::ReportContext;
    use std::time::Duration;

    #[test]
    fn a_failed_lvm_collector_renders_its_escaped_error_and_no_figures() {
        let snapshot = Snapshot {
            collectors: vec![CollectorStatus {
                name: "lvm",
                success: false,
                duration: Duration::from_millis(5),
                last_success_unix: None,
                error: Some(crate::collect::CollectorError::Source(
                    crate::collect::SourceError::Text("vgs said <b>\"no\"</b> & left".into()),
                )),
            }],
            host: None,
            sources: vec![],
            nova_vg: "vms-group".into(),
            primary: None,
            audit: None,
            finished_unix: 1_700_000_000.0,
            raw_methods: Vec::new(),
            flavor_fit: None,
            orphans: None,
            local_source_doubts: None,
            lv_series_limit: 100,
        };
        let report = Report::new(&snapshot, &ReportContext::default(), 10);
        let html = render(&report, "/metrics", &[("k<".into(), "v>".into())]);
        assert!(
            html.contains("vgs said &lt;b&gt;&quot;no&quot;&lt;/b&gt; &amp; left"),
            "{html}"
        );
        assert!(!html.contains("<b>"));
        assert!(html.contains("No LVM figures"));
        assert!(html.contains("<th>k&lt;</th><td>v&gt;</td>"));
        assert!(html.contains("2023-11-14T22:13:20Z"));
        let text = crate::output::report_text::render_text(&report);
        assert!(
            text.contains("No LVM figures: the lvm collector failed."),
            "{text}"
        );
    }

    #[test]
    fn each_vg_says_how_it_was_read_also_when_the_lvm_collector_failed() {
        let method = |vg: &str, method: &'static str, reason: &'static str| crate::lvm::RawMethod {
            vg: vg.into(),
            method,
            reason,
            verify_mismatches: 0,
        };
        let snapshot = Snapshot {
            collectors: vec![CollectorStatus {
                name: "lvm",
                success: false,
                duration: Duration::from_millis(5),
                last_success_unix: None,
                error: Some(crate::collect::CollectorError::Source(
                    crate::collect::SourceError::Text("vg <x>: missing".into()),
                )),
            }],
            host: None,
            sources: vec![],
            nova_vg: "<x>".into(),
            primary: None,
            audit: None,
            finished_unix: 1_700_000_000.0,
            raw_methods: vec![
                method("<x>", "none", "missing_pv"),
                method("other", "metadata", "ok"),
            ],
            flavor_fit: None,
            orphans: None,
            local_source_doubts: None,
            lv_series_limit: 100,
        };
        let report = Report::new(&snapshot, &ReportContext::default(), 10);
        let html = render(&report, "/metrics", &[]);
        assert!(html.contains("<table id=\"raw-methods\">"), "{html}");
        assert!(
            html.contains(
                "<tr><td>&lt;x&gt;</td><td class=\"failed\">none</td><td>missing_pv</td></tr>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<tr><td>other</td><td class=\"ok\">metadata</td><td>ok</td></tr>"),
            "{html}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["raw_methods"][0]["reason"], "missing_pv");
        assert_eq!(json["raw_methods"][1]["method"], "metadata");
    }

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            escape_html("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn control_and_bidi_characters_are_shown_escaped_but_line_breaks_kept() {
        assert_eq!(
            escape_html("evil\u{1b}[2J\u{7}\r\u{202e}gpj.exe\nnext\tcolumn"),
            r"evil\u{1b}[2J\u{7}\u{d}\u{202e}gpj.exe".to_string() + "\nnext\tcolumn"
        );
    }

    #[test]
    fn the_audit_lists_each_consumer_in_the_page_and_the_text_report() {
        use crate::tracked::{SourceKind, TrackedInstance};
        use crate::units::GIB;
        let leaked = TrackedInstance {
            uuid: "aaaaaaaa-0000-4000-8000-000000000001".into(),
            tracked_bytes: 40 * GIB,
            allocated_bytes: 40 * GIB,
            flavor: None,
        };
        let snapshot = Snapshot {
            collectors: vec![],
            host: None,
            sources: vec![],
            nova_vg: "vms-group".into(),
            primary: Some(SourceKind::Libvirt),
            audit: Some(std::sync::Arc::new(crate::accounting::audit::audit(
                SourceKind::Libvirt,
                &[leaked],
                &[],
                &Default::default(),
            ))),
            finished_unix: 1_700_000_000.0,
            raw_methods: Vec::new(),
            flavor_fit: None,
            orphans: None,
            local_source_doubts: None,
            lv_series_limit: 100,
        };
        let report = Report::new(&snapshot, &ReportContext::default(), 10);
        let html = render(&report, "/metrics", &[]);
        assert!(html.contains(
            "data-figure=\"audit-allocation_without_instance\" data-bytes=\"42949672960\""
        ));
        assert!(html.contains(
            "<tr><td><code>aaaaaaaa-0000-4000-8000-000000000001</code></td><td>allocation_without_instance</td><td class=\"num\">40.00 GiB</td><td class=\"num\">none</td>"
        ), "{html}");
        let text = crate::output::report_text::render_text(&report);
        assert!(text.contains(
            "  allocation_without_instance aaaaaaaa-0000-4000-8000-000000000001: allocated 40.00 GiB, flavor needs none, LVs 0.00 GiB, counts 40.00 GiB (42949672960 bytes)"
        ), "{text}");
    }

    #[test]
    fn long_consumer_and_orphan_lists_are_cut_with_an_n_more_line() {
        use crate::accounting::orphans::{OrphanLv, OrphanReasons};
        use crate::tracked::orphans::OrphanVerdict;
        use crate::tracked::{SourceKind, TrackedInstance};
        use crate::units::GIB;
        let uuid = |i: usize| format!("{i:08x}-0000-4000-8000-000000000001");
        let leaked: Vec<TrackedInstance> = (0..5_011)
            .map(|i| TrackedInstance {
                uuid: uuid(i),
                tracked_bytes: GIB,
                allocated_bytes: GIB,
                flavor: None,
            })
            .collect();
        let orphans = OrphanReasons {
            vg: "vms-group".into(),
            lvs: (0..5_011)
                .map(|i| OrphanLv {
                    name: format!("{}_disk", uuid(i)),
                    uuid: uuid(i),
                    bytes: GIB,
                    verdict: OrphanVerdict::unknown("not looked up"),
                })
                .collect(),
        };
        let mut snapshot = Snapshot {
            collectors: vec![],
            host: None,
            sources: vec![],
            nova_vg: "vms-group".into(),
            primary: Some(SourceKind::Libvirt),
            audit: Some(std::sync::Arc::new(crate::accounting::audit::audit(
                SourceKind::Libvirt,
                &leaked,
                &[],
                &Default::default(),
            ))),
            finished_unix: 1_700_000_000.0,
            raw_methods: Vec::new(),
            flavor_fit: None,
            orphans: Some(std::sync::Arc::new(orphans)),
            local_source_doubts: None,
            lv_series_limit: 100,
        };
        let report = Report::new(&snapshot, &ReportContext::default(), 10);
        let html = render(&report, "/metrics", &[]);
        assert_eq!(rows_of(&html, "audit-consumers"), LISTED_ROWS);
        assert_eq!(rows_of(&html, "orphan-lvs"), LISTED_ROWS);
        assert!(html.contains("... 4911 more consumers"), "consumers cut");
        assert!(html.contains("... 4911 more orphan LVs"), "orphans cut");
        // Bounded: the page of 5,011 of each stays far below the 1.1 MB it was uncut.
        assert!(html.len() < 100_000, "{} bytes", html.len());
        let text = crate::output::report_text::render_text(&report);
        assert_eq!(
            text.matches("allocation_without_instance 0").count(),
            LISTED_ROWS
        );
        assert_eq!(
            text.matches("_disk (1073741824 bytes)").count(),
            LISTED_ROWS
        );
        assert!(text.contains("  ... 4911 more consumers (report --format json lists them all)"));
        assert!(text.contains("  ... 4911 more orphan LVs (report --format json lists them all)"));
        // The JSON document keeps them all.
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["orphans"]["lvs"].as_array().unwrap().len(), 5_011);
        assert_eq!(json["audit"]["consumers"].as_array().unwrap().len(), 5_011);

        // Exactly at the limit: every row and no "more" line.
        std::sync::Arc::make_mut(snapshot.orphans.as_mut().unwrap())
            .lvs
            .truncate(LISTED_ROWS);
        let report = Report::new(&snapshot, &ReportContext::default(), 10);
        let html = render(&report, "/metrics", &[]);
        assert_eq!(rows_of(&html, "orphan-lvs"), LISTED_ROWS);
        assert!(!html.contains("more orphan LVs"));
        assert!(!crate::output::report_text::render_text(&report).contains("more orphan LVs"));
    }

    fn rows_of(html: &str, table: &str) -> usize {
        let start = html.find(&format!("<table id=\"{table}\">")).unwrap();
        let end = start + html[start..].find("</table>").unwrap();
        html[start..end].matches("<tr><td>").count()
    }

    #[test]
    fn the_flavor_fit_table_marks_the_failing_build_and_escapes_names() {
        let fit = crate::output::fit::tests::seed_fit();
        let mut html = String::new();
        render_fit_html(&mut html, &fit);
        assert!(
            html.contains("<tr class=\"failed\"><th>m1.large</th>"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("data-fit=\"scheduler\">3<"), "{html}");
    }
}
