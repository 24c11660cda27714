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
/// ([`source_figures`]), or, for the primary, when the host accounting with them fails (LVM's
/// figures are then accounted alone). LVM's own accounting failing leaves no host figures (the
/// lvm collector fails).
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
        account_host_with(report, &plan.watched_vgs, Some(&plan.nova_vg), usage, &here)
    };
    // Placement knows no flavors: the other sources' name a disk = 0 root LV.
    let with_flavors = primary.and_then(|primary| with_flavors_from(primary, answered));
    let primary = with_flavors.as_ref().or(primary);
    match account(primary) {
        // The primary source's figures are blamed, and LVM's accounted alone (when those do
        // not fit either, the lvm collector fails as well).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::observe::{Observation, RawObservation};
    use crate::lvm::{Lv, Vg};
    use crate::tracked::orphans::OrphanReason;
    use crate::tracked::{Flavor, HostDiskSettings, TrackedInstance};
    use crate::units::GIB;

    const HERE: &str = "a0000000-0000-4000-8000-000000000001";
    const GONE: &str = "d0000000-0000-4000-8000-000000000004";

    fn plan() -> AccountingPlan {
        AccountingPlan {
            watched_vgs: vec!["vms".into()],
            nova_vg: "vms".into(),
            primary: Some(SourceKind::File),
            configured_flavors: Vec::new(),
            flavor_limit: crate::accounting::fit::DEFAULT_FLAVOR_LIMIT,
        }
    }

    fn lv(name: &str, bytes: u64) -> Lv {
        Lv {
            vg: "vms".into(),
            name: name.into(),
            hidden: false,
            size_bytes: bytes,
            attr: "-wi-a-----".into(),
            segtype: "linear".into(),
            pool_lv: String::new(),
            parent: String::new(),
            data_used_ratio: None,
            metadata_used_ratio: None,
            creation_unix: None,
            tags: vec![],
        }
    }

    /// A 20 GiB VG with the disk of one instance here (5 GiB) and of one gone (3 GiB).
    fn report(size_bytes: u64, free_bytes: u64) -> Arc<VgReport> {
        Arc::new(VgReport {
            vgs: vec![Vg {
                name: "vms".into(),
                size_bytes,
                free_bytes,
                extent_size_bytes: 4 << 20,
            }],
            lvs: vec![
                lv(&format!("{HERE}_disk"), 5 * GIB),
                lv(&format!("{GONE}_disk"), 3 * GIB),
            ],
        })
    }

    fn usage(instances: &[&str]) -> Arc<TrackedUsage> {
        let flavor = Flavor {
            root_gb: 5,
            ..Flavor::default()
        };
        Arc::new(TrackedUsage::from_local(
            instances
                .iter()
                .map(|uuid| TrackedInstance::from_flavor(*uuid, &flavor))
                .collect(),
            &HostDiskSettings::default(),
        ))
    }

    fn inputs(
        report: Option<Arc<VgReport>>,
        usages: Vec<(SourceKind, Option<Arc<TrackedUsage>>)>,
    ) -> Inputs {
        Inputs {
            report,
            usages,
            listing: None,
        }
    }

    /// The observations that gave `inputs`, each read taking no time, with `missing` as the
    /// raw read's missing VGs.
    fn observed(inputs: &Inputs, missing: Option<CollectorError>) -> Observations {
        let failed = || CollectorError::TimedOut {
            after: Duration::from_millis(200),
        };
        Observations {
            raw: RawObservation {
                report: Observation {
                    result: inputs.report.clone().ok_or_else(failed),
                    duration: Duration::ZERO,
                },
                methods: Vec::new(),
                missing,
            },
            tracked: inputs
                .usages
                .iter()
                .map(|(kind, usage)| {
                    let result = usage.clone().ok_or_else(failed);
                    (
                        *kind,
                        Observation {
                            result,
                            duration: Duration::ZERO,
                        },
                    )
                })
                .collect(),
            flavors: None,
        }
    }

    #[test]
    fn the_primarys_figures_that_do_not_fit_fail_that_source_alone_with_its_typed_error() {
        // Fits on its own, not with LVM's figures: its own free space of 2^63 - 1 against a
        // corrected free space near -2^63 over-estimates beyond 64 bits.
        let mut extreme = (*usage(&[HERE])).clone();
        extreme.tracked_used_bytes = Some(crate::accounting::drift::MAX_ACCOUNTED_BYTES);
        extreme.scheduler_free_bytes = Some(i64::MAX);
        let inputs = inputs(
            Some(report(20 * GIB, 12 * GIB)),
            vec![
                (SourceKind::Libvirt, Some(usage(&[HERE]))),
                (SourceKind::File, Some(Arc::new(extreme))),
            ],
        );
        let accounting = account(&plan(), &inputs);
        assert!(matches!(accounting.figures[0], Some(Ok(_))));
        let Some(Err(misfit)) = &accounting.figures[1] else {
            panic!("{:?}", accounting.figures[1])
        };
        assert!(misfit
            .to_string()
            .starts_with("the over-estimate (scheduler free 9223372036854775807"));
        // LVM's figures remain, accounted without the primary; the other source's figures too.
        let host = accounting.host.clone().unwrap().unwrap();
        assert_eq!(host.vgs[0].used_bytes, 8 * GIB);
        assert!(host.vgs[0].tracked.is_none());
        assert_eq!(accounting.sources.len(), 1);
        assert_eq!(accounting.sources[0].0, SourceKind::Libvirt);
        assert!(accounting.orphan_candidates.is_none());

        let outcomes = outcomes(&observed(&inputs, None), &accounting);
        let names: Vec<&str> = outcomes.iter().map(|o| o.name).collect();
        assert_eq!(names, ["lvm", "libvirt", "file"]);
        assert_eq!(outcomes[0].result, Ok(None));
        assert_eq!(outcomes[1].result, Ok(None));
        assert_eq!(
            outcomes[2].result,
            Err(CollectorError::DoesNotFit(misfit.clone()))
        );
    }

    #[test]
    fn lvm_figures_that_do_not_fit_fail_the_lvm_collector_before_a_missing_vg_does() {
        let misfit = inputs(
            Some(report(GIB, 2 * GIB)),
            vec![(SourceKind::Libvirt, Some(usage(&[HERE])))],
        );
        let accounting = account(&plan(), &misfit);
        let Some(Err(error)) = &accounting.host else {
            panic!("{:?}", accounting.host)
        };
        assert_eq!(
            error.to_string(),
            "VG vms: vg_free 2147483648 is larger than vg_size 1073741824"
        );
        assert!(accounting.orphan_candidates.is_none());
        let missing = CollectorError::VgMissing {
            vgs: vec!["gone-vg".into()],
            message: "volume group not found: gone-vg".into(),
        };
        let failed = outcomes(&observed(&misfit, Some(missing.clone())), &accounting);
        assert_eq!(
            failed[0].result,
            Err(CollectorError::DoesNotFit(error.clone()))
        );
        // A source other than the primary whose own figures fit does not fail with LVM.
        assert_eq!(failed[1].result, Ok(None));

        // Figures that fit: the missing VG is the lvm collector's error.
        let fitting = inputs(Some(report(20 * GIB, 12 * GIB)), Vec::new());
        let accounting = account(&plan(), &fitting);
        let missed = outcomes(&observed(&fitting, Some(missing.clone())), &accounting);
        assert_eq!(missed[0].result, Err(missing));
    }

    #[test]
    fn the_orphan_verdicts_are_an_input_of_the_orphans_not_a_change_to_the_accounting() {
        let inputs = inputs(
            Some(report(20 * GIB, 12 * GIB)),
            vec![(SourceKind::File, Some(usage(&[HERE])))],
        );
        let accounting = account(&plan(), &inputs);
        let candidates = accounting.orphan_candidates.as_ref().expect("classified");
        assert_eq!(candidates.uuids(), [(GONE.to_string(), 3 * GIB)]);
        assert_eq!(candidates.lvs[0].verdict.reason, OrphanReason::Unknown);

        // No lookup: the candidates as they are, shared.
        let unlooked = orphans(Some(candidates), None).unwrap();
        assert!(Arc::ptr_eq(&unlooked, candidates));

        let deleted = OrphanVerdict {
            reason: OrphanReason::Deleted,
            detail: "nova deleted it".into(),
        };
        let verdicts = HashMap::from([(GONE.to_string(), deleted.clone())]);
        let looked_up = orphans(Some(candidates), Some(&verdicts)).unwrap();
        assert_eq!(looked_up.lvs[0].verdict, deleted);
        assert_eq!(looked_up.totals(OrphanReason::Deleted), (1, 3 * GIB));
        // The accounting's candidates are untouched.
        assert_eq!(candidates.lvs[0].verdict.reason, OrphanReason::Unknown);
        assert_eq!(orphans(None, Some(&verdicts)), None);
    }

    #[test]
    fn inputs_are_the_same_only_for_the_same_report_and_equal_usages() {
        let shared = report(20 * GIB, 12 * GIB);
        let with = |report: &Arc<VgReport>, usage: Option<Arc<TrackedUsage>>| {
            inputs(Some(Arc::clone(report)), vec![(SourceKind::File, usage)])
        };
        let first = with(&shared, Some(usage(&[HERE])));
        assert!(first.same_as(&with(&shared, Some(usage(&[HERE])))));
        // An equal report read again is a new value: taken as changed.
        let reread = Arc::new((*shared).clone());
        assert!(!first.same_as(&with(&reread, Some(usage(&[HERE])))));
        assert!(!first.same_as(&with(&shared, Some(usage(&[HERE, GONE])))));
        assert!(!first.same_as(&with(&shared, None)));
        assert!(!first.same_as(&inputs(
            None,
            vec![(SourceKind::File, Some(usage(&[HERE])))]
        )));
        // The same inputs give the same accounting.
        assert_eq!(account(&plan(), &first), account(&plan(), &first));
    }
}
