//! Why an LV is an orphan: each orphan's instance UUID looked up in nova's compute API.
//!
//! An orphan is an LV with nova's naming (`<instance uuid>_<disk>`) whose instance the tracked
//! source does not place on this host. Nova knows why, and says so to an admin:
//!
//! - `GET /servers/detail?all_tenants=1&changes-since=1970-01-01T00:00:00Z&uuid=<uuid>` finds
//!   the server whatever its state. Without `changes-since` (or `deleted`) nova's list hides
//!   deleted and soft-deleted servers; with it nova does not filter on `deleted` at all, "because
//!   'changes-since' should return recently deleted instances according to the API spec"
//!   (nova/api/openstack/compute/servers.py `_get_servers`, and
//!   nova/db/main/api.py `instance_get_all_by_filters_sort`). `uuid` is an admin-only filter
//!   of the servers list (nova/api/openstack/compute/schemas/servers.py). Every microversion the
//!   nova source speaks (2.1 to 2.87) has these, and the admin-only `OS-EXT-SRV-ATTR:host`,
//!   `OS-EXT-SRV-ATTR:hypervisor_hostname` and `OS-EXT-STS:vm_state` fields. `GET
//!   /servers/<uuid>` would not do: it answers 404 for a deleted server.
//! - The answer becomes an [`OrphanReason`] ([`reason_of`]): `deleted` (status `DELETED`: safe
//!   to remove), `here` (nova places it on this hypervisor: a delete whose `volume_clear` still
//!   wipes the disk, a build in progress, or a soft-deleted server that can still be restored),
//!   `elsewhere` (on another hypervisor, or on none: left behind by an evacuation or a failed
//!   move; remove it once the instance runs there) or `unknown` (nova has no such server any
//!   more: deleted and archived by `nova-manage db archive_deleted_rows`, or never nova's; its
//!   cell is down; the lookup failed or has not run yet; no nova source).
//!
//! The lookups are bounded ([`OrphanResolver`]): a round looks up at most
//! `--collector.nova.orphan-lookups-per-refresh` UUIDs and starts at most once per nova refresh
//! interval, on its own task; a scrape waits for a round no longer than the collector's timeout
//! and the results of a round that finishes later serve the next scrape. Verdicts are cached
//! ([`OrphanCache`]): `deleted` for the life of the process, the others re-checked after one
//! refresh interval and dropped (back to `unknown`) when older than the nova source's max age; a
//! failed lookup is `unknown` and retried in the next round. Only UUIDs of orphan LVs present
//! now are looked up or kept.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::compute::ComputeClient;
pub use super::compute::{ServerState, Whereabouts};
use super::host::{match_hostname, ProviderName};
use async_trait::async_trait;
use futures::future::{BoxFuture, FutureExt};

/// The default of `--collector.nova.orphan-lookups-per-refresh`.
pub const DEFAULT_LOOKUPS_PER_REFRESH: u16 = 10;

/// Why an orphan LV is one (label `reason` of `nova_lvm_orphan_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrphanReason {
    /// Nova deleted the instance: the LV is safe to remove.
    Deleted,
    /// The instance is on another hypervisor (or on none).
    Elsewhere,
    /// Nova places the instance on this hypervisor.
    Here,
    /// Not known: not found in nova, lookup failed or not made yet, or no nova source.
    Unknown,
}

impl OrphanReason {
    /// Every reason, in label order.
    pub const ALL: [OrphanReason; 4] = [
        OrphanReason::Deleted,
        OrphanReason::Elsewhere,
        OrphanReason::Here,
        OrphanReason::Unknown,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            OrphanReason::Deleted => "deleted",
            OrphanReason::Elsewhere => "elsewhere",
            OrphanReason::Here => "here",
            OrphanReason::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for OrphanReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reason and the sentence behind it (for `report` and the status page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanVerdict {
    /// The reason.
    pub reason: OrphanReason,
    /// What nova said, or why the reason is unknown.
    pub detail: String,
}

impl OrphanVerdict {
    /// An `unknown` verdict saying why.
    pub fn unknown(detail: impl Into<String>) -> Self {
        Self {
            reason: OrphanReason::Unknown,
            detail: detail.into(),
        }
    }
}

/// The reason nova's answer gives, with `this_host` the hypervisor the nova source reads (the
/// exact name or, as nova's libvirt driver may report either, the same short name). The detail
/// quotes nova's fields as upstream text (redacted, one line, cut short).
pub fn reason_of(whereabouts: &Whereabouts, this_host: &ProviderName) -> OrphanVerdict {
    let verdict = judge(whereabouts, this_host);
    OrphanVerdict {
        detail: crate::redact::upstream_text(&verdict.detail),
        ..verdict
    }
}

fn judge(whereabouts: &Whereabouts, this_host: &ProviderName) -> OrphanVerdict {
    let server = match whereabouts {
        Whereabouts::NotFound => {
            return OrphanVerdict::unknown(
                "nova has no server with this UUID (deleted and archived, or not nova's)",
            )
        }
        Whereabouts::Server(server) => server,
    };
    let state = describe(server);
    if server.status == "DELETED" || server.vm_state.as_deref() == Some("deleted") {
        return OrphanVerdict {
            reason: OrphanReason::Deleted,
            detail: format!("nova deleted the instance ({state})"),
        };
    }
    if server.status == "UNKNOWN" {
        return OrphanVerdict::unknown(format!(
            "nova cannot tell: the server's cell is down ({state})"
        ));
    }
    let node = server
        .hypervisor_hostname
        .as_deref()
        .or(server.host.as_deref())
        .filter(|n| !n.is_empty());
    match node {
        Some(node) if match_hostname(&this_host.name, &this_host.origin, &[node]).is_ok() => {
            OrphanVerdict {
                reason: OrphanReason::Here,
                detail: format!("nova places the instance on this host ({state})"),
            }
        }
        Some(node) => OrphanVerdict {
            reason: OrphanReason::Elsewhere,
            detail: format!("the instance is on {node} ({state})"),
        },
        None => OrphanVerdict {
            reason: OrphanReason::Elsewhere,
            detail: format!("the instance is on no host ({state})"),
        },
    }
}

fn describe(server: &ServerState) -> String {
    let mut text = format!("status {}", empty_as_none(&server.status));
    if let Some(vm_state) = &server.vm_state {
        text.push_str(&format!(", vm_state {vm_state}"));
    }
    if let Some(task) = &server.task_state {
        text.push_str(&format!(", task_state {task}"));
    }
    text
}

fn empty_as_none(text: &str) -> &str {
    if text.is_empty() {
        "none"
    } else {
        text
    }
}

/// Looks up one instance UUID in nova (the I/O at the edge of the orphan reasons).
#[async_trait]
pub trait OrphanLookup: Send + Sync {
    /// What nova says about `uuid` (canonical, lower case); an error is a failed lookup.
    async fn look_up(&self, uuid: &str) -> Result<Whereabouts, String>;
}

/// [`OrphanLookup`] with the compute API: one servers-list request per UUID
/// ([`ComputeClient::whereabouts`]).
#[async_trait]
impl OrphanLookup for ComputeClient {
    async fn look_up(&self, uuid: &str) -> Result<Whereabouts, String> {
        self.whereabouts(uuid).await.map_err(|e| e.to_string())
    }
}

/// How many lookups and how long verdicts last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LookupPolicy {
    /// At most this many lookups per round.
    pub per_round: usize,
    /// A round starts at most this often; `here`, `elsewhere` and not-found verdicts are
    /// re-checked after this long.
    pub interval: Duration,
    /// A verdict older than this (other than `deleted`) is no longer served.
    pub max_age: Duration,
}

#[derive(Debug, Clone)]
struct CachedVerdict {
    verdict: OrphanVerdict,
    checked: Instant,
    failed: bool,
}

/// The verdicts of past lookups and the policy that decides what to look up next (pure).
#[derive(Debug, Clone)]
pub struct OrphanCache {
    policy: LookupPolicy,
    entries: HashMap<String, CachedVerdict>,
}

impl OrphanCache {
    /// An empty cache.
    pub fn new(policy: LookupPolicy) -> Self {
        Self {
            policy,
            entries: HashMap::new(),
        }
    }

    /// How many UUIDs have a cached verdict.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets the UUIDs that are no longer orphans (so the cache holds at most the orphans
    /// present) and picks the ones to look up this round, at most the policy's number: never
    /// looked up first, then failed lookups, then the verdicts due for a re-check, oldest
    /// first; the most bytes first among equals. `deleted` is final and never picked.
    /// `orphans` holds each UUID once, with the bytes of its LVs.
    pub fn due(&mut self, orphans: &[(String, u64)], now: Instant) -> Vec<String> {
        let present: HashSet<&str> = orphans.iter().map(|(u, _)| u.as_str()).collect();
        self.entries
            .retain(|uuid, _| present.contains(uuid.as_str()));
        let mut candidates: Vec<(u8, Option<Instant>, std::cmp::Reverse<u64>, &str)> = orphans
            .iter()
            .filter_map(|(uuid, bytes)| {
                let rank = match self.entries.get(uuid) {
                    None => (0, None),
                    Some(e) if e.failed => (1, Some(e.checked)),
                    Some(e) if e.verdict.reason == OrphanReason::Deleted => return None,
                    Some(e) if now.saturating_duration_since(e.checked) >= self.policy.interval => {
                        (2, Some(e.checked))
                    }
                    Some(_) => return None,
                };
                Some((rank.0, rank.1, std::cmp::Reverse(*bytes), uuid.as_str()))
            })
            .collect();
        candidates.sort();
        candidates
            .into_iter()
            .take(self.policy.per_round)
            .map(|(_, _, _, uuid)| uuid.to_string())
            .collect()
    }

    /// Records the outcome of a lookup of `uuid` made at `now`.
    pub fn record(&mut self, uuid: &str, outcome: Result<OrphanVerdict, String>, now: Instant) {
        let (verdict, failed) = match outcome {
            Ok(verdict) => (verdict, false),
            Err(error) => (
                OrphanVerdict::unknown(format!("the lookup in nova failed: {error}")),
                true,
            ),
        };
        self.entries.insert(
            uuid.to_string(),
            CachedVerdict {
                verdict,
                checked: now,
                failed,
            },
        );
    }

    /// The verdict to show for `uuid` at `now`.
    pub fn verdict(&self, uuid: &str, now: Instant) -> OrphanVerdict {
        match self.entries.get(uuid) {
            None => OrphanVerdict::unknown("not looked up in nova yet"),
            Some(e) if e.verdict.reason == OrphanReason::Deleted => e.verdict.clone(),
            Some(e) if now.saturating_duration_since(e.checked) > self.policy.max_age => {
                OrphanVerdict::unknown(format!(
                    "nova's answer is older than {}s and not re-checked yet",
                    self.policy.max_age.as_secs()
                ))
            }
            Some(e) => e.verdict.clone(),
        }
    }
}

type Round = BoxFuture<'static, ()>;

struct ResolverState {
    cache: OrphanCache,
    next_round: Option<Instant>,
    /// A round is running.
    running: bool,
}

/// Runs the bounded lookup rounds over an [`OrphanLookup`] and serves the cached verdicts.
pub struct OrphanResolver {
    lookup: Arc<dyn OrphanLookup>,
    this_host: ProviderName,
    interval: Duration,
    state: Arc<Mutex<ResolverState>>,
}

impl std::fmt::Debug for OrphanResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrphanResolver")
            .field("this_host", &self.this_host.name)
            .finish_non_exhaustive()
    }
}

impl OrphanResolver {
    /// A resolver looking up with `lookup`, comparing servers' hypervisors with `this_host`.
    pub fn new(
        lookup: Arc<dyn OrphanLookup>,
        this_host: ProviderName,
        policy: LookupPolicy,
    ) -> Self {
        Self {
            lookup,
            this_host,
            interval: policy.interval,
            state: Arc::new(Mutex::new(ResolverState {
                cache: OrphanCache::new(policy),
                next_round: None,
                running: false,
            })),
        }
    }

    /// The verdict of each orphan UUID (with its bytes, to look up the largest first): starts a
    /// round when one is due and none runs and waits for it at most `wait` (a round started
    /// earlier is not waited for, so that a stuck API slows one scrape, not every one), then
    /// answers from the cache. Never fails: what is not known is `unknown`.
    pub async fn verdicts(
        &self,
        orphans: &[(String, u64)],
        wait: Duration,
    ) -> HashMap<String, OrphanVerdict> {
        let round = self.maybe_start_round(orphans, Instant::now());
        if let Some(round) = round {
            let _ = tokio::time::timeout(wait, round).await;
        }
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        orphans
            .iter()
            .map(|(uuid, _)| (uuid.clone(), state.cache.verdict(uuid, now)))
            .collect()
    }

    /// The round started now, if one was due and none ran.
    fn maybe_start_round(&self, orphans: &[(String, u64)], now: Instant) -> Option<Round> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let due = state.next_round.is_none_or(|at| now >= at);
        if due && !state.running {
            let uuids = state.cache.due(orphans, now);
            if uuids.is_empty() {
                return None;
            }
            state.next_round = Some(now + self.interval);
            let task = tokio::spawn(round(
                Arc::clone(&self.lookup),
                self.this_host.clone(),
                uuids,
                Arc::clone(&self.state),
            ));
            state.running = true;
            return Some(
                async move {
                    let _ = task.await;
                }
                .boxed(),
            );
        }
        None
    }
}

/// One round: the UUIDs looked up one after the other (gentle on the API), each verdict
/// recorded as soon as it is known.
async fn round(
    lookup: Arc<dyn OrphanLookup>,
    this_host: ProviderName,
    uuids: Vec<String>,
    state: Arc<Mutex<ResolverState>>,
) {
    for uuid in &uuids {
        let outcome = std::panic::AssertUnwindSafe(lookup.look_up(uuid))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err("internal error (a bug) in the lookup".to_string()))
            .map(|whereabouts| reason_of(&whereabouts, &this_host));
        if let Err(error) = &outcome {
            tracing::debug!(instance = %uuid, error = %error, "nova: looking up an orphan's instance failed");
        }
        state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cache
            .record(uuid, outcome, Instant::now());
    }
    state.lock().unwrap_or_else(|e| e.into_inner()).running = false;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn host() -> ProviderName {
        ProviderName {
            name: "cmp-7".into(),
            origin: "nova.conf [DEFAULT] host".into(),
            uuid: None,
            in_nova_order: false,
        }
    }

    fn server(status: &str, node: Option<&str>) -> Whereabouts {
        Whereabouts::Server(ServerState {
            id: "d0000000-0000-4000-8000-000000000004".into(),
            status: status.into(),
            host: node.map(|n| n.split('.').next().unwrap().to_string()),
            hypervisor_hostname: node.map(str::to_string),
            vm_state: Some(status.to_ascii_lowercase()),
            task_state: None,
        })
    }

    #[test]
    fn nova_says_deleted_here_elsewhere_or_nothing() {
        let reason = |w: &Whereabouts| reason_of(w, &host()).reason;
        assert_eq!(
            reason(&server("DELETED", Some("cmp-3"))),
            OrphanReason::Deleted
        );
        let here = reason_of(&server("ACTIVE", Some("cmp-7.example.org")), &host());
        assert_eq!(here.reason, OrphanReason::Here);
        assert!(here.detail.contains("status ACTIVE"), "{here:?}");
        // A soft-deleted server can still be restored: its disks are not garbage.
        assert_eq!(
            reason(&server("SOFT_DELETED", Some("cmp-7"))),
            OrphanReason::Here
        );
        let there = reason_of(&server("ACTIVE", Some("cmp-70.example.org")), &host());
        assert_eq!(there.reason, OrphanReason::Elsewhere);
        assert!(there.detail.contains("cmp-70.example.org"), "{there:?}");
        assert_eq!(
            reason(&server("SHELVED_OFFLOADED", None)),
            OrphanReason::Elsewhere
        );
        assert_eq!(reason(&server("UNKNOWN", None)), OrphanReason::Unknown);
        assert_eq!(reason(&Whereabouts::NotFound), OrphanReason::Unknown);
        // What nova said is quoted on one line, cut short.
        let hostile = reason_of(
            &server("ACTIVE", Some(&format!("evil\n{}", "x".repeat(5000)))),
            &host(),
        );
        assert!(!hostile.detail.contains('\n'), "{hostile:?}");
        assert!(hostile.detail.len() < 1024, "{}", hostile.detail.len());
    }

    fn policy(per_round: usize) -> LookupPolicy {
        LookupPolicy {
            per_round,
            interval: Duration::from_secs(60),
            max_age: Duration::from_secs(180),
        }
    }

    fn verdict(reason: OrphanReason) -> Result<OrphanVerdict, String> {
        Ok(OrphanVerdict {
            reason,
            detail: String::new(),
        })
    }

    #[test]
    fn the_cache_bounds_lookups_keeps_deleted_and_rechecks_the_rest() {
        let t0 = Instant::now();
        let mut cache = OrphanCache::new(policy(2));
        let orphans = vec![
            ("a".to_string(), 1),
            ("b".to_string(), 30),
            ("c".to_string(), 20),
        ];
        // Largest first, two per round.
        assert_eq!(cache.due(&orphans, t0), ["b", "c"]);
        cache.record("b", verdict(OrphanReason::Deleted), t0);
        cache.record("c", Err("500".into()), t0);
        assert_eq!(cache.verdict("a", t0).detail, "not looked up in nova yet");
        assert_eq!(cache.verdict("c", t0).reason, OrphanReason::Unknown);
        assert!(cache.verdict("c", t0).detail.contains("500"));
        // Never looked up before failed; deleted is final.
        assert_eq!(cache.due(&orphans, t0), ["a", "c"]);
        cache.record("a", verdict(OrphanReason::Here), t0);
        cache.record("c", verdict(OrphanReason::Elsewhere), t0);
        assert!(cache.due(&orphans, t0 + Duration::from_secs(59)).is_empty());
        let later = t0 + Duration::from_secs(60);
        assert_eq!(cache.due(&orphans, later), ["c", "a"]);
        // Served until max age, then unknown; deleted forever.
        assert_eq!(cache.verdict("a", later).reason, OrphanReason::Here);
        let old = t0 + Duration::from_secs(181);
        assert_eq!(cache.verdict("a", old).reason, OrphanReason::Unknown);
        assert_eq!(cache.verdict("b", old).reason, OrphanReason::Deleted);
        // An orphan that is gone is forgotten.
        assert!(cache.due(&orphans[..1], later).len() == 1);
        assert_eq!(cache.len(), 1);
    }

    struct CountingLookup {
        calls: AtomicUsize,
        delay: Duration,
    }

    #[async_trait]
    impl OrphanLookup for CountingLookup {
        async fn look_up(&self, uuid: &str) -> Result<Whereabouts, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            match uuid {
                "gone" => Ok(server("DELETED", Some("cmp-7"))),
                "broken" => Err("HTTP 500".into()),
                _ => Ok(Whereabouts::NotFound),
            }
        }
    }

    #[tokio::test]
    async fn rounds_are_bounded_spaced_and_never_hold_a_scrape_longer_than_asked() {
        let lookup = Arc::new(CountingLookup {
            calls: AtomicUsize::new(0),
            delay: Duration::from_millis(300),
        });
        let resolver = OrphanResolver::new(
            Arc::clone(&lookup) as Arc<dyn OrphanLookup>,
            host(),
            policy(1),
        );
        let orphans = vec![("gone".to_string(), 2), ("broken".to_string(), 1)];
        let started = Instant::now();
        let first = resolver.verdicts(&orphans, Duration::from_millis(50)).await;
        assert!(started.elapsed() < Duration::from_millis(250));
        assert_eq!(first["gone"].reason, OrphanReason::Unknown);
        // The round carries on and serves the next call; the next round is one interval away.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let second = resolver.verdicts(&orphans, Duration::from_secs(5)).await;
        assert_eq!(second["gone"].reason, OrphanReason::Deleted);
        assert_eq!(second["broken"].detail, "not looked up in nova yet");
        assert_eq!(lookup.calls.load(Ordering::SeqCst), 1);
    }
}
