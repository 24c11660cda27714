//! The pure step of a collection: one collection's [`Inputs`] (the values its observations
//! gave) accounted into the figures of one snapshot ([`account`]), the orphan verdicts applied
//! ([`orphans`]), and how each collector fared derived once from the observations and the
//! accounting ([`outcomes`]). No I/O, no clock, no state: the same inputs give the same
//! [`Accounting`], which is why [`super::SnapshotCollector`] reuses the previous one when
//! [`Inputs::same_as`] says nothing changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::error::CollectorError;
use super::observe::Observations;
use super::{FLAVORS_COLLECTOR, LVM_COLLECTOR};
use crate::accounting::audit::{audit_collection, nova_lv_bytes, Audit};
use crate::accounting::drift::{
    account_host_with, instances_here, source_figures, with_flavors_from, AccountingError,
    HostAccounting, SourceFigures,
};
use crate::accounting::fit::{flavor_fit, FlavorFitSummary};
use crate::accounting::orphans::{
    doubt_local_sources, is_empty_local, orphan_lvs, LocalSourceDoubt, OrphanReasons,
};
use crate::lvm::VgReport;
use crate::tracked::flavors::{FlavorListing, NamedFlavor};
use crate::tracked::orphans::OrphanVerdict;
use crate::tracked::{SourceKind, TrackedUsage};

/// What the accounting needs besides the observations: the configuration.
#[derive(Debug, Clone)]
pub struct AccountingPlan {
    /// VGs read and accounted, in the configured order.
    pub watched_vgs: Vec<String>,
    /// nova's VG.
    pub nova_vg: String,
    /// The source that drives the derived figures.
    pub primary: Option<SourceKind>,
    /// Per-VG cap of per-LV series.
    pub lv_series_limit: usize,
    /// The flavors whose fit is always computed (`--collector.flavors`).
    pub configured_flavors: Vec<NamedFlavor>,
    /// How many flavors get a fit at most.
    pub flavor_limit: usize,
}

/// The values one collection's observations gave: what the accounting is a function of.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// LVM's report; `None` when the raw source failed.
    pub report: Option<Arc<VgReport>>,
    /// Each tracked source in order, with its usage when it answered.
    pub usages: Vec<(SourceKind, Option<Arc<TrackedUsage>>)>,
    /// The compute API's flavor list, when it was read.
    pub listing: Option<Arc<FlavorListing>>,
}

impl Inputs {
    /// The values of `observed`.
    pub fn of(observed: &Observations) -> Self {
        Self {
            report: observed.raw.report.result.as_ref().ok().cloned(),
            usages: observed
                .tracked
                .iter()
                .map(|(kind, observation)| (*kind, observation.result.as_ref().ok().cloned()))
                .collect(),
            listing: observed
                .flavors
                .as_ref()
                .and_then(|observation| observation.result.as_ref().ok().cloned()),
        }
    }

    /// Nothing the accounting reads changed: the very same report (the raw source hands an
    /// unchanged VG's report on as one shared value; a new one is taken as changed), equal
    /// usages and flavor lists.
    pub fn same_as(&self, other: &Inputs) -> bool {
        let same_report = match (&self.report, &other.report) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same_report
            && self.usages.len() == other.usages.len()
            && self
                .usages
                .iter()
                .zip(&other.usages)
                .all(|((kind_a, a), (kind_b, b))| kind_a == kind_b && same(a, b))
            && same(&self.listing, &other.listing)
    }
}

/// Both absent, or the same value (shared, or equal).
fn same<T: PartialEq>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
        (None, None) => true,
        _ => false,
    }
}

/// What the accounting made of one collection's [`Inputs`]. The heavy parts are shared
/// ([`Arc`]): a snapshot built from a reused accounting copies pointers.
#[derive(Debug, Clone, PartialEq)]
pub struct Accounting {
    /// Each tracked source in order: `None` when it did not answer, else its figures or why
    /// they do not fit the accounting (on their own, or, for the primary, with LVM's figures).
    pub figures: Vec<Option<Result<SourceFigures, AccountingError>>>,
    /// LVM's accounting of the watched VGs, or why its figures do not fit; `None` without a
    /// report.
    pub host: Option<Result<Arc<HostAccounting>, AccountingError>>,
    /// The figures of each tracked source that answered with figures that fit.
    pub sources: Vec<(SourceKind, SourceFigures)>,
    /// Placement compared with the local source and LVM.
    pub audit: Option<Arc<Audit>>,
    /// How many more instances of each flavor fit.
    pub flavor_fit: Option<Arc<FlavorFitSummary>>,
    /// The orphans of nova's VG as the accounting classified them, each `unknown` until a
    /// verdict is applied ([`orphans`]); `None` when no tracked source told instances from
    /// orphans.
    pub orphan_candidates: Option<Arc<OrphanReasons>>,
    /// The local sources that list no instance beside instance disks in nova's VG.
    pub local_source_doubts: Option<Vec<LocalSourceDoubt>>,
}

/// Accounts one collection's inputs.
///
/// A tracked source whose figures do not fit the accounting fails alone: on their own
/// ([`source_figures`]), or, for the primary, when LVM's accounting fits without them but not
/// with them. LVM's accounting failing leaves no host figures (the lvm collector fails).
pub fn account(plan: &AccountingPlan, inputs: &Inputs) -> Accounting {
    let report = inputs.report.as_deref();
    let nova_vg_size = report
        .and_then(|report| report.vg(&plan.nova_vg))
        .map(|vg| vg.size_bytes);
    let own: Vec<Option<Result<SourceFigures, AccountingError>>> = inputs
        .usages
        .iter()
        .map(|(_, usage)| usage.as_deref().map(|u| source_figures(u, nova_vg_size)))
        .collect();
    let fits = |i: usize| matches!(own[i], Some(Ok(_)));
    let primary_index = plan.primary.and_then(|primary| {
        (0..inputs.usages.len()).find(|&i| inputs.usages[i].0 == primary && fits(i))
    });
    let fitting_usages = || {
        inputs
            .usages
            .iter()
            .enumerate()
            .filter(|(i, _)| fits(*i))
            .filter_map(|(_, (_, usage))| usage.as_deref())
    };
    let (host, primary_misfit) = match report {
        Some(report) => {
            let (host, misfit) = account_host(
                plan,
                report,
                primary_index.and_then(|i| inputs.usages[i].1.as_deref()),
                fitting_usages(),
            );
            (Some(host.map(Arc::new)), misfit)
        }
        None => (None, None),
    };
    let figures: Vec<Option<Result<SourceFigures, AccountingError>>> = own
        .into_iter()
        .enumerate()
        .map(|(i, figures)| match &primary_misfit {
            Some(error) if Some(i) == primary_index => Some(Err(error.clone())),
            _ => figures,
        })
        .collect();
    let answered: Vec<(SourceKind, &TrackedUsage, SourceFigures)> = inputs
        .usages
        .iter()
        .zip(&figures)
        .filter_map(|((kind, usage), figures)| {
            Some((*kind, usage.as_deref()?, *figures.as_ref()?.as_ref().ok()?))
        })
        .collect();
    let usages: Vec<(SourceKind, &TrackedUsage)> = answered
        .iter()
        .map(|(kind, usage, _)| (*kind, *usage))
        .collect();
    let sources: Vec<(SourceKind, SourceFigures)> = answered
        .iter()
        .map(|(kind, _, figures)| (*kind, *figures))
        .collect();
    let accounted = host.as_ref().and_then(|host| host.as_ref().ok());
    let audit = audit_collection(report, &plan.watched_vgs, &usages, plan.primary).map(Arc::new);
    let flavor_fit = fit(
        plan,
        report,
        accounted.map(Arc::as_ref),
        &sources,
        &usages,
        inputs,
    )
    .map(Arc::new);
    let orphan_candidates = accounted
        .and_then(|host| orphan_lvs(host, &plan.nova_vg))
        .map(Arc::new);
    let local_source_doubts = report
        .filter(|report| report.vg(&plan.nova_vg).is_some())
        .map(|report| {
            // The walk over nova's LVs runs only when a local source lists no instance.
            if !usages
                .iter()
                .any(|(kind, usage)| is_empty_local(*kind, usage))
            {
                return Vec::new();
            }
            let lv_bytes = nova_lv_bytes(report, std::slice::from_ref(&plan.nova_vg));
            doubt_local_sources(&plan.nova_vg, &lv_bytes, &usages)
        });
    Accounting {
        figures,
        host,
        sources,
        audit,
        flavor_fit,
        orphan_candidates,
        local_source_doubts,
    }
}

/// LVM's accounting with the primary source's usage (its flavors filled in from the others),
/// and, when it does not fit with the primary's figures, LVM's alone with why the primary's did
/// not fit. Every source that answered (`answered`) vetoes the orphan verdict for the instances
/// it places here, whichever is primary (an instance with no allocation is still running).
fn account_host<'a>(
    plan: &AccountingPlan,
    report: &VgReport,
    primary: Option<&TrackedUsage>,
    answered: impl Iterator<Item = &'a TrackedUsage> + Clone,
) -> (
    Result<HostAccounting, AccountingError>,
    Option<AccountingError>,
) {
    let here = instances_here(answered.clone());
    let account = |usage: Option<&TrackedUsage>| {
        account_host_with(
            report,
            &plan.watched_vgs,
            Some(&plan.nova_vg),
            usage,
            &here,
            plan.lv_series_limit,
        )
    };
    // Placement knows no flavors: the other sources' name a disk = 0 root LV.
    let with_flavors = primary.and_then(|primary| with_flavors_from(primary, answered));
    let primary = with_flavors.as_ref().or(primary);
    match account(primary) {
        // With LVM's figures alone it fits: the primary source's figures are to blame.
        Err(error) if primary.is_some() => (account(None), Some(error)),
        accounted => (accounted, None),
    }
}

/// The flavor fit of nova's VG ([`flavor_fit`]): needs its accounting with a tracked source
/// (corrected free and the scheduler's view) and at least one flavor. A flavor the compute API
/// lists wins over a domain's flavor of the same name (the API's is the flavor as it is now);
/// the domains' flavors come with the sources' usages (libvirt), whichever is primary.
fn fit(
    plan: &AccountingPlan,
    report: Option<&VgReport>,
    host: Option<&HostAccounting>,
    sources: &[(SourceKind, SourceFigures)],
    usages: &[(SourceKind, &TrackedUsage)],
    inputs: &Inputs,
) -> Option<FlavorFitSummary> {
    let mut listed: Vec<NamedFlavor> = inputs
        .listing
        .as_ref()
        .map(|listing| listing.flavors.clone())
        .unwrap_or_default();
    listed.extend(
        usages
            .iter()
            .flat_map(|(_, usage)| usage.flavors.iter().cloned()),
    );
    let primary_figures = sources
        .iter()
        .find(|(kind, _)| Some(*kind) == plan.primary)
        .map(|(_, figures)| figures);
    flavor_fit(
        &plan.configured_flavors,
        &listed,
        plan.flavor_limit,
        &plan.nova_vg,
        report,
        host,
        primary_figures,
    )
}

/// The orphans with their verdicts: the candidates as they are without a lookup (`verdicts`
/// `None`: each `unknown`, saying why), else each with its looked-up verdict.
pub fn orphans(
    candidates: Option<&Arc<OrphanReasons>>,
    verdicts: Option<&HashMap<String, OrphanVerdict>>,
) -> Option<Arc<OrphanReasons>> {
    let candidates = candidates?;
    match verdicts {
        None => Some(Arc::clone(candidates)),
        Some(verdicts) => Some(Arc::new(candidates.with_verdicts(verdicts))),
    }
}

/// How one collector fared on one collection, before it is remembered.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `lvm`, a tracked source's name, or `flavors`.
    pub name: &'static str,
    /// How long its read took.
    pub duration: Duration,
    /// Success, with when its data was read when that is older than this collection (a cached
    /// API source); or why it failed.
    pub result: Result<Option<f64>, CollectorError>,
}

/// Every collector's outcome, `lvm` first, then the tracked sources in order, then the flavor
/// list: each derived once from its observation and the accounting. The lvm collector fails
/// when LVM failed, its figures do not fit the accounting, or a watched VG is missing (in that
/// order of precedence); a tracked source fails when it failed or its figures do not fit.
pub fn outcomes(observed: &Observations, accounting: &Accounting) -> Vec<Outcome> {
    let raw = &observed.raw;
    let lvm = match (&raw.report.result, &accounting.host) {
        (Err(error), _) => Err(error.clone()),
        (Ok(_), Some(Err(error))) => Err(CollectorError::DoesNotFit(error.clone())),
        (Ok(_), _) => raw.missing.clone().map_or(Ok(None), Err),
    };
    let mut outcomes = Vec::with_capacity(2 + observed.tracked.len());
    outcomes.push(Outcome {
        name: LVM_COLLECTOR,
        duration: raw.report.duration,
        result: lvm,
    });
    for ((kind, observation), figures) in observed.tracked.iter().zip(&accounting.figures) {
        let result = match (&observation.result, figures) {
            (Err(error), _) => Err(error.clone()),
            (Ok(_), Some(Err(error))) => Err(CollectorError::DoesNotFit(error.clone())),
            (Ok(usage), _) => Ok(usage.fetched_unix),
        };
        outcomes.push(Outcome {
            name: kind.as_str(),
            duration: observation.duration,
            result,
        });
    }
    if let Some(observation) = &observed.flavors {
        outcomes.push(Outcome {
            name: FLAVORS_COLLECTOR,
            duration: observation.duration,
            result: match &observation.result {
                Ok(listing) => Ok(Some(listing.fetched_unix)),
                Err(error) => Err(error.clone()),
            },
        });
    }
    outcomes
}
