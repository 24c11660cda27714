//! The placement tracked source: what the scheduler believes, read from the Placement API.
//!
//! **One GET per refresh in steady state.** The first refresh negotiates the microversion (`/`,
//! once per process), finds the provider (`/resource_providers?name=<host>`, or
//! `/resource_providers/<uuid>` when its UUID is known) and reads its `/inventories` (DISK_GB
//! `total`, `reserved`, `allocation_ratio`) and `/allocations` (the consumers on this host and
//! their DISK_GB). From then on:
//! - The provider's UUID is remembered; it is looked up again only when one of its
//!   sub-resources answers 404 (the provider was deleted, e.g. the compute node re-registered),
//!   and that refresh then reads everything again for the provider found.
//! - Placement's `/usages` is not read: DISK_GB used is by definition the sum of the provider's
//!   DISK_GB allocations, which `/allocations` lists, so the exported "used" is that sum.
//! - Every refresh makes exactly one GET: normally `/allocations`. Each answer carries the
//!   provider's generation, which placement bumps on every inventory change; when it equals
//!   the generation the inventory was read at, the inventory is proven unchanged and current as
//!   of this read, for free. When it differs (an instance was created or resized on this host,
//!   or the inventory changed), the inventory keeps the time it was last known current, and the
//!   refresh nearest to the moment it turns `--collector.placement.inventory-max-age` old reads
//!   `/inventories` instead, reusing the allocations of the previous refresh ([`plan`]).
//!   Allocations cannot be proven current the same way (placement deletes allocations without
//!   bumping the generation), so they are always as old as their last read.
//! - The value is as old as its oldest part ([`TrackedUsage::data_age`]): the cache dates it
//!   back, exports that time as the collector's last success and drops it at `max-age`. An
//!   idle provider is always current to its last refresh; one whose allocations change between
//!   every two refreshes is read alternately (allocations, inventory) and its data is up to
//!   about two intervals (or `inventory-max-age`, if larger) old.
//!
//! Without a UUID and without `--collector.placement.hostname`, the provider is looked up by
//! every name nova-compute may have given it, in nova's order ([`nova_provider_names`]): one
//! resolver call (off the runtime, on a [`BlockingLane`], bounded by [`RESOLVER_TIMEOUT`]) and
//! one GET per name, only on the refreshes that look the provider up.
//!
//! Every consumer becomes a [`TrackedInstance`] with `tracked_bytes = allocated_bytes = DISK_GB
//! GiB`, so the owner classes (instance vs orphan) work with this source too.
//!
//! Reading providers, inventories and allocations needs the `admin` or `service` role
//! (placement's `admin_or_service_api` policies); a `reader` gets 403, which the error says.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::cached::DEFAULT_REFRESH_INTERVAL;
use super::host::{
    canonical_name, nova_provider_names, system_hostname, NameCandidate, ProviderName,
};
use super::{
    canonical_uuid, NovaConfDisk, SourceKind, TrackedError, TrackedInstance, TrackedSource,
    TrackedUsage,
};
use crate::input::BlockingLane;
use crate::openstack::client::{AboveNewest, Service, ServiceClient, VersionPolicy};
use crate::openstack::keystone::Session;
pub use crate::openstack::microversion::Microversion;
use crate::openstack::ApiError;
use crate::text::percent_encode;
use crate::units::GIB;

/// The newest microversion the exporter knows (openstack-placement 16.0.0's maximum). Every call
/// it makes exists since 1.0; newer versions are used when offered so that responses carry the
/// fields placement documents today.
pub const PREFERRED_MICROVERSION: Microversion = Microversion(1, 39);
/// How long a lookup of the provider waits for the resolver's canonical name of the system
/// hostname before trying the other names without it.
pub const RESOLVER_TIMEOUT: Duration = Duration::from_secs(5);
/// The oldest microversion the exporter can work with.
pub const MINIMUM_MICROVERSION: Microversion = Microversion(1, 0);

/// The Placement API as the placement source speaks it: the `v1` entry of the version
/// document, and [`PREFERRED_MICROVERSION`] when offered, else the highest the server offers
/// that is at least [`MINIMUM_MICROVERSION`]; a server above the preferred one is refused.
pub const PLACEMENT: Service = Service {
    service_type: "placement",
    display_name: "placement",
    legacy_header: None,
    forbidden_hint: "reading resource providers, inventories and allocations needs the admin or service role on the exporter's project (reader is not enough)",
    versions: VersionPolicy {
        api_id: "v1",
        max_field: "max_version",
        unversioned: None,
        oldest: MINIMUM_MICROVERSION,
        newest: PREFERRED_MICROVERSION,
        above_newest: AboveNewest::Refuse,
    },
};

#[derive(Debug, Deserialize)]
struct ProvidersBody {
    resource_providers: Vec<ProviderEntry>,
}

#[derive(Debug, Clone, Deserialize)]
struct ProviderEntry {
    uuid: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct InventoriesBody {
    inventories: BTreeMap<String, Inventory>,
    #[serde(default)]
    resource_provider_generation: Option<u64>,
}

/// One resource class' inventory.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
pub struct Inventory {
    /// `total`.
    pub total: u64,
    /// `reserved`.
    #[serde(default)]
    pub reserved: u64,
    /// `allocation_ratio`.
    #[serde(default = "one")]
    pub allocation_ratio: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Deserialize)]
struct AllocationsBody {
    allocations: BTreeMap<String, ConsumerAllocation>,
    #[serde(default)]
    resource_provider_generation: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ConsumerAllocation {
    #[serde(default)]
    resources: BTreeMap<String, u64>,
}

#[derive(Debug, Deserialize)]
struct ProviderShow {
    uuid: String,
    name: String,
}

/// How the inventory is kept current (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InventoryPolicy {
    /// The mean time between refreshes (`--collector.placement.refresh-interval`).
    pub refresh_interval: Duration,
    /// An inventory not proven current for about this long is read again
    /// (`--collector.placement.inventory-max-age`).
    pub inventory_max_age: Duration,
}

/// By default the inventory is re-read when it has not been proven current for this many
/// refresh intervals (`--collector.placement.inventory-max-age`).
pub const INVENTORY_MAX_AGE_INTERVALS: u32 = 2;

impl Default for InventoryPolicy {
    /// The flags' defaults.
    fn default() -> Self {
        Self {
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            inventory_max_age: DEFAULT_REFRESH_INTERVAL * INVENTORY_MAX_AGE_INTERVALS,
        }
    }
}

/// What one refresh reads from the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// `/inventories` and `/allocations`: the first refresh, or the first after a new lookup.
    Both,
    /// `/allocations` only, reusing the inventory (steady state).
    Allocations,
    /// `/inventories` only, reusing the allocations of the previous refresh.
    Inventories,
}

/// What the next refresh reads, from how long ago the inventory and the allocations were last
/// known current (`None`: not known at all). The inventory is read again when the last
/// allocations read did not prove it current (the inventory is older than the allocations) and
/// it turns `inventory_max_age` old nearer to now than to the next refresh; never twice in a
/// row, because reading it makes it newer than the allocations.
pub fn plan(
    inventory_age: Option<Duration>,
    allocations_age: Option<Duration>,
    policy: InventoryPolicy,
) -> Plan {
    let (Some(inventory_age), Some(allocations_age)) = (inventory_age, allocations_age) else {
        return Plan::Both;
    };
    let unproven = inventory_age > allocations_age;
    if unproven && inventory_age + policy.refresh_interval / 2 > policy.inventory_max_age {
        Plan::Inventories
    } else {
        Plan::Allocations
    }
}

/// Consumer UUID -> resource class -> amount, as `/allocations` lists them.
pub type Allocations = BTreeMap<String, BTreeMap<String, u64>>;

/// One part of the provider's data, the provider generation it was read at, and the last time
/// it was known to be current.
#[derive(Debug, Clone)]
struct Part<T> {
    value: T,
    generation: Option<u64>,
    current_at: Instant,
}

/// What the source remembers between refreshes.
#[derive(Debug, Default)]
struct Memory {
    provider: Option<ProviderEntry>,
    inventories: Option<Part<BTreeMap<String, Inventory>>>,
    allocations: Option<Part<Allocations>>,
}

impl Memory {
    fn plan(&self, now: Instant, policy: InventoryPolicy) -> Plan {
        let age = |at: Instant| now.saturating_duration_since(at);
        plan(
            self.inventories.as_ref().map(|p| age(p.current_at)),
            self.allocations.as_ref().map(|p| age(p.current_at)),
            policy,
        )
    }

    fn store_inventories(
        &mut self,
        value: BTreeMap<String, Inventory>,
        generation: Option<u64>,
        at: Instant,
    ) {
        self.inventories = Some(Part {
            value,
            generation,
            current_at: at,
        });
    }

    /// Stores allocations read at `at`; an unchanged provider generation proves the inventory
    /// current as of the same moment.
    fn store_allocations(&mut self, value: Allocations, generation: Option<u64>, at: Instant) {
        if let Some(inventories) = &mut self.inventories {
            if generation.is_some() && inventories.generation == generation {
                inventories.current_at = inventories.current_at.max(at);
            }
        }
        self.allocations = Some(Part {
            value,
            generation,
            current_at: at,
        });
    }

    /// Usage from what is remembered, as old as its oldest part at `now`.
    fn usage(&self, now: Instant) -> Result<TrackedUsage, String> {
        let (Some(provider), Some(inventories), Some(allocations)) =
            (&self.provider, &self.inventories, &self.allocations)
        else {
            return Err("placement: nothing read yet".to_string());
        };
        let mut usage = usage_from(
            &format!("{:?} ({})", provider.name, provider.uuid),
            &inventories.value,
            &allocations.value,
        )?;
        let oldest = inventories.current_at.min(allocations.current_at);
        usage.data_age = Some(now.saturating_duration_since(oldest));
        usage.provider_uuid = Some(provider.uuid.clone());
        Ok(usage)
    }
}

/// Reads this host's DISK_GB figures from placement, one GET per refresh in steady state (see
/// the module doc).
#[derive(Debug)]
pub struct PlacementSource {
    client: ServiceClient,
    provider: ProviderName,
    policy: InventoryPolicy,
    memory: Mutex<Memory>,
    resolver: BlockingLane,
    nova_conf: Option<NovaConfDisk>,
}

/// Why reading a provider's sub-resource failed: the provider is gone (404), or anything else.
enum ReadError {
    ProviderGone(String),
    Other(TrackedError),
}

impl PlacementSource {
    /// A source reading the provider named `provider` through `session`, with the default
    /// [`InventoryPolicy`].
    pub fn new(session: Arc<Session>, provider: ProviderName) -> Self {
        Self {
            client: ServiceClient::new(session, PLACEMENT),
            provider,
            policy: InventoryPolicy::default(),
            memory: Mutex::new(Memory::default()),
            resolver: BlockingLane::new("the resolver's canonical name of the system hostname"),
            nova_conf: None,
        }
    }

    /// Reports what nova.conf says nova sends for DISK_GB beside placement's figures, so that
    /// the accounting can explain placement's `reserved` and the allocation ratio remedy.
    pub fn with_nova_conf(mut self, nova_conf: NovaConfDisk) -> Self {
        self.nova_conf = Some(nova_conf);
        self
    }

    /// Bounds each request by `timeout` instead of the session's own (a session shared with
    /// another source).
    pub fn with_request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.client = self.client.with_request_timeout(Some(timeout));
        self
    }

    /// Keeps the inventory current by `policy` instead of the default.
    pub fn with_inventory_policy(mut self, policy: InventoryPolicy) -> Self {
        self.policy = policy;
        self
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn invalid(message: &str) -> TrackedError {
    TrackedError::invalid_answer(SourceKind::Placement, message)
}

/// Turns placement's answers into usage (pure, for the tests). DISK_GB used is the sum of the
/// consumers' DISK_GB allocations, which is how placement itself defines a provider's usage.
/// Consumers are instances by their canonical UUID ([`canonical_uuid`]): spellings of one UUID
/// count once (the first), and a consumer key that is no UUID fails the whole answer, naming
/// how many there are and the first.
pub fn usage_from(
    provider: &str,
    inventories: &BTreeMap<String, Inventory>,
    allocations: &Allocations,
) -> Result<TrackedUsage, String> {
    let disk = inventories.get("DISK_GB").ok_or_else(|| {
        format!(
            "resource provider {provider} has no DISK_GB inventory (it has: {}); nova-compute reports DISK_GB for local disks, so this provider's instances keep no disk here",
            if inventories.is_empty() {
                "none".to_string()
            } else {
                inventories.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        )
    })?;
    if !(disk.allocation_ratio.is_finite() && disk.allocation_ratio > 0.0) {
        return Err(format!(
            "resource provider {provider}: DISK_GB allocation_ratio {} is not a positive number",
            disk.allocation_ratio
        ));
    }
    let gib = |value: u64, what: &str| {
        value.checked_mul(GIB).ok_or_else(|| {
            format!("resource provider {provider}: {what} {value} GiB is out of range")
        })
    };
    let malformed: Vec<&String> = allocations
        .keys()
        .filter(|consumer| canonical_uuid(consumer).is_none())
        .collect();
    if let Some(first) = malformed.first() {
        return Err(format!(
            "resource provider {provider}: {} allocation consumer(s) are not UUIDs (the first: {:?}); placement only stores UUID consumers, so the allocations are not trusted",
            malformed.len(),
            crate::redact::upstream_text(first)
        ));
    }
    let mut instances = Vec::with_capacity(allocations.len());
    let mut seen = HashSet::with_capacity(allocations.len());
    let mut used_bytes: u64 = 0;
    for (consumer, resources) in allocations {
        let disk_gb = resources.get("DISK_GB").copied().unwrap_or(0);
        let bytes = gib(disk_gb, "a DISK_GB allocation of")?;
        // Placement's usage is the sum of every allocation it holds, spelled as it likes.
        used_bytes = used_bytes.checked_add(bytes).ok_or_else(|| {
            format!(
                "resource provider {provider}: the sum of its DISK_GB allocations is out of range"
            )
        })?;
        // An instance is one consumer however it is spelled: the first spelling counts.
        let uuid = canonical_uuid(consumer).unwrap_or_default();
        if seen.insert(uuid.clone()) {
            instances.push(TrackedInstance::from_allocation(uuid, bytes));
        }
    }
    Ok(TrackedUsage {
        instances,
        reserved_bytes: gib(disk.reserved, "DISK_GB reserved")?,
        allocation_ratio: disk.allocation_ratio,
        scheduler_total_bytes: Some(gib(disk.total, "DISK_GB total")?),
        scheduler_used_bytes: Some(used_bytes),
        fetched_unix: None,
        data_age: None,
        tracked_used_bytes: None,
        provider_uuid: None,
        nova_conf: None,
        flavors: Vec::new(),
        scheduler_free_bytes: None,
        disk_available_least_bytes: None,
    })
}

impl PlacementSource {
    /// Finds the provider by UUID or name (one GET).
    async fn look_up(&self) -> Result<ProviderEntry, TrackedError> {
        match &self.provider.uuid {
            Some(uuid) => {
                let shown: ProviderShow = self
                    .client
                    .get(&format!("/resource_providers/{uuid}"))
                    .await
                    .map_err(|e| match e {
                        ApiError::Status { status: 404, .. } => invalid(&format!(
                            "no resource provider with UUID {uuid} in placement (the UUID came from {}); set --collector.placement.provider-uuid or --collector.placement.hostname",
                            self.provider.origin
                        )),
                        other => other.into(),
                    })?;
                Ok(ProviderEntry {
                    uuid: shown.uuid,
                    name: shown.name,
                })
            }
            None if self.provider.in_nova_order => self.look_up_in_nova_order().await,
            None => {
                let name = &self.provider.name;
                self.look_up_name(name).await?.ok_or_else(|| {
                    invalid(&format!(
                        "no resource provider named {name:?} in placement (the name came from {}); nova-compute names it after the hypervisor hostname, which may be the FQDN or the short name: set --collector.placement.hostname",
                        self.provider.origin
                    ))
                })
            }
        }
    }

    /// The provider named exactly `name`, if any (one GET).
    async fn look_up_name(&self, name: &str) -> Result<Option<ProviderEntry>, TrackedError> {
        let providers: ProvidersBody = self
            .client
            .get(&format!(
                "/resource_providers?name={}",
                percent_encode(name)
            ))
            .await?;
        Ok(providers
            .resource_providers
            .into_iter()
            .find(|p| p.name == name))
    }

    /// Tries the names nova may have given the provider, in nova's order; the error lists them.
    async fn look_up_in_nova_order(&self) -> Result<ProviderEntry, TrackedError> {
        let hostname = system_hostname();
        let (canonical, resolver_note) = self.canonical_hostname(&hostname).await;
        let configured = NameCandidate {
            name: self.provider.name.clone(),
            origin: self.provider.origin.clone(),
        };
        let names = nova_provider_names(&hostname, canonical.as_deref(), &configured);
        for candidate in &names {
            if let Some(found) = self.look_up_name(&candidate.name).await? {
                tracing::info!(
                    provider = %found.name,
                    origin = %candidate.origin,
                    "placement: found this host's resource provider by name"
                );
                return Ok(found);
            }
        }
        let tried = names
            .iter()
            .map(|c| format!("{:?} ({})", c.name, c.origin))
            .collect::<Vec<_>>()
            .join(", ");
        Err(invalid(&format!(
            "no resource provider named {tried} in placement{resolver_note}; set --collector.placement.hostname to the provider's name (openstack resource provider list) or --collector.placement.provider-uuid"
        )))
    }

    /// The resolver's canonical name of `hostname` when libvirt would ask for it (a short name),
    /// and a note for the error when the resolver gave none.
    async fn canonical_hostname(&self, hostname: &str) -> (Option<String>, String) {
        if hostname.contains('.') || hostname.starts_with("localhost") {
            return (None, String::new());
        }
        let host = hostname.to_string();
        let lookup = self.resolver.run(move || canonical_name(&host));
        match tokio::time::timeout(RESOLVER_TIMEOUT, lookup).await {
            Ok(Ok(Ok(name))) => (name, String::new()),
            Ok(Ok(Err(why))) => (None, format!(" ({why})")),
            Ok(Err(lane)) => (None, format!(" ({lane})")),
            Err(_) => (
                None,
                format!(
                    " (the resolver did not give the canonical name of {hostname:?} within {} s)",
                    RESOLVER_TIMEOUT.as_secs()
                ),
            ),
        }
    }

    /// One GET of a sub-resource of `provider`; a 404 means the provider is gone.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        provider: &ProviderEntry,
        what: &str,
    ) -> Result<T, ReadError> {
        let path = format!("/resource_providers/{}/{what}", provider.uuid);
        self.client.get(&path).await.map_err(|e| match e {
            ApiError::Status { status: 404, .. } => ReadError::ProviderGone(e.to_string()),
            other => ReadError::Other(other.into()),
        })
    }

    /// Reads what `plan` says and remembers it.
    async fn read_planned(&self, provider: &ProviderEntry, plan: Plan) -> Result<(), ReadError> {
        if matches!(plan, Plan::Both | Plan::Inventories) {
            let body: InventoriesBody = self.read(provider, "inventories").await?;
            let at = Instant::now();
            self.memory().store_inventories(
                body.inventories,
                body.resource_provider_generation,
                at,
            );
        }
        if matches!(plan, Plan::Both | Plan::Allocations) {
            let body: AllocationsBody = self.read(provider, "allocations").await?;
            let at = Instant::now();
            let allocations = body
                .allocations
                .into_iter()
                .map(|(consumer, a)| (consumer, a.resources))
                .collect();
            self.memory()
                .store_allocations(allocations, body.resource_provider_generation, at);
        }
        Ok(())
    }

    /// Looks the provider up and remembers it, forgetting whatever was read for another one.
    async fn find_provider(&self) -> Result<ProviderEntry, TrackedError> {
        let mut found = self.look_up().await?;
        // The UUID goes into the next requests' paths and the instances' keys: placement's own
        // spelling of a UUID or nothing.
        found.uuid = canonical_uuid(&found.uuid).ok_or_else(|| {
            invalid(&format!(
                "the resource provider's uuid {:?} is not a UUID",
                crate::redact::upstream_text(&found.uuid)
            ))
        })?;
        let mut memory = self.memory();
        if memory.provider.as_ref().map(|p| &p.uuid) != Some(&found.uuid) {
            *memory = Memory::default();
        }
        memory.provider = Some(found.clone());
        Ok(found)
    }
}

#[async_trait]
impl TrackedSource for PlacementSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Placement
    }

    async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
        let (known, plan) = {
            let memory = self.memory();
            (
                memory.provider.clone(),
                memory.plan(Instant::now(), self.policy),
            )
        };
        let provider = match known {
            Some(provider) => provider,
            None => self.find_provider().await?,
        };
        match self.read_planned(&provider, plan).await {
            Ok(()) => {}
            Err(ReadError::Other(error)) => return Err(error),
            Err(ReadError::ProviderGone(why)) => {
                tracing::info!(
                    provider = %provider.name,
                    provider_uuid = %provider.uuid,
                    answer = %why,
                    "placement: the resource provider is gone; looking it up again"
                );
                *self.memory() = Memory::default();
                let provider = self.find_provider().await?;
                self.read_planned(&provider, Plan::Both)
                    .await
                    .map_err(|e| match e {
                        ReadError::ProviderGone(why) => TrackedError::Api(format!(
                            "resource provider {:?} ({}) disappeared while being read: {why}",
                            crate::redact::upstream_text(&provider.name),
                            provider.uuid
                        )),
                        ReadError::Other(error) => error,
                    })?;
            }
        }
        let mut usage = self
            .memory()
            .usage(Instant::now())
            .map_err(|e| invalid(&e))?;
        usage.nova_conf = self.nova_conf;
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_microversion_is_negotiated_from_the_root_document() {
        use crate::openstack::client::{negotiate, version_range, VersionRange};
        let mv = |s| Microversion::parse(s).unwrap();
        let negotiate = |min, max| {
            let server = VersionRange {
                min: mv(min),
                max: mv(max),
            };
            negotiate(server, &PLACEMENT.versions)
        };
        assert_eq!(negotiate("1.0", "1.39"), Ok(mv("1.39")));
        assert_eq!(negotiate("1.0", "1.42"), Ok(mv("1.39")));
        assert_eq!(negotiate("1.0", "1.17"), Ok(mv("1.17")));
        let err = negotiate("1.40", "1.50").unwrap_err();
        assert!(err.contains("1.40 to 1.50"), "{err}");
        let doc: serde_json::Value = serde_json::from_str(
            r#"{"versions": [{"id": "v1.0", "max_version": "1.39", "min_version": "1.0", "status": "CURRENT", "links": [{"rel": "self", "href": ""}]}]}"#,
        )
        .unwrap();
        let range = version_range(&doc, "placement", &PLACEMENT.versions).unwrap();
        assert_eq!((range.min, range.max), (mv("1.0"), mv("1.39")));
    }

    fn inventories(json: &str) -> BTreeMap<String, Inventory> {
        serde_json::from_str::<InventoriesBody>(json)
            .unwrap()
            .inventories
    }

    const INVENTORIES: &str = r#"{"inventories": {
        "DISK_GB": {"allocation_ratio": 1.0, "max_unit": 500, "min_unit": 1, "reserved": 2, "step_size": 1, "total": 500},
        "MEMORY_MB": {"allocation_ratio": 1.0, "max_unit": 64000, "min_unit": 1, "reserved": 512, "step_size": 1, "total": 64000}},
        "resource_provider_generation": 7}"#;

    #[test]
    fn placement_answers_become_usage() {
        let allocations: AllocationsBody = serde_json::from_str(
            r#"{"resource_provider_generation": 7, "allocations": {
                "11111111-1111-4111-8111-111111111111": {"resources": {"DISK_GB": 20, "MEMORY_MB": 2048, "VCPU": 1}},
                "22222222-2222-4222-8222-22222222222A": {"resources": {"DISK_GB": 40, "MEMORY_MB": 4096, "VCPU": 2}},
                "33333333-3333-4333-8333-333333333333": {"resources": {"MEMORY_MB": 512, "VCPU": 1}}}}"#,
        )
        .unwrap();
        let allocations = allocations
            .allocations
            .into_iter()
            .map(|(c, a)| (c, a.resources))
            .collect();
        let usage = usage_from("compute-01", &inventories(INVENTORIES), &allocations).unwrap();
        assert_eq!(usage.reserved_bytes, 2 * GIB);
        assert_eq!(usage.allocation_ratio, 1.0);
        assert_eq!(usage.scheduler_total_bytes, Some(500 * GIB));
        // Used is the sum of the DISK_GB allocations (placement's own definition of usage).
        assert_eq!(usage.scheduler_used_bytes, Some(60 * GIB));
        assert_eq!(usage.instances.len(), 3);
        assert_eq!(
            usage.instances[1],
            TrackedInstance::from_allocation("22222222-2222-4222-8222-22222222222a", 40 * GIB)
        );
        // A boot-from-volume consumer holds no DISK_GB but is still an instance on this host.
        assert_eq!(usage.instances[2].tracked_bytes, 0);
    }

    fn seconds(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[test]
    fn each_refresh_reads_one_resource_and_the_inventory_when_it_comes_due() {
        let policy = InventoryPolicy {
            refresh_interval: Duration::from_secs(60),
            inventory_max_age: Duration::from_secs(120),
        };
        // Nothing known (first refresh, or a provider found again): both.
        assert_eq!(plan(None, None, policy), Plan::Both);
        assert_eq!(plan(seconds(10), None, policy), Plan::Both);
        assert_eq!(plan(None, seconds(10), policy), Plan::Both);
        // Inventory proven current by the last allocations read: allocations, however old.
        assert_eq!(plan(seconds(60), seconds(60), policy), Plan::Allocations);
        assert_eq!(plan(seconds(600), seconds(600), policy), Plan::Allocations);
        // Inventory read after the allocations (the last refresh read it): allocations.
        assert_eq!(plan(seconds(60), seconds(120), policy), Plan::Allocations);
        // Unproven: re-read at the refresh nearest to the inventory turning 120 s old.
        assert_eq!(plan(seconds(66), seconds(60), policy), Plan::Allocations);
        assert_eq!(plan(seconds(89), seconds(60), policy), Plan::Allocations);
        assert_eq!(plan(seconds(91), seconds(60), policy), Plan::Inventories);
        assert_eq!(plan(seconds(108), seconds(54), policy), Plan::Inventories);
    }

    /// Runs `refreshes` refreshes 60 s apart under the default policy; `changed(n)` says
    /// whether the provider's generation moved before refresh `n` (an allocation written).
    /// Returns what each refresh read and the data's age after it.
    fn simulate(refreshes: u32, changed: impl Fn(u32) -> bool) -> Vec<(Plan, Duration)> {
        let start = Instant::now();
        let policy = InventoryPolicy::default();
        let mut memory = Memory {
            provider: Some(ProviderEntry {
                uuid: "c0de0000-0000-4000-8000-000000000000".into(),
                name: "cmp".into(),
            }),
            ..Memory::default()
        };
        let inventory: BTreeMap<String, Inventory> = inventories(INVENTORIES);
        let mut generation = 1;
        let mut out = Vec::new();
        for n in 0..refreshes {
            let now = start + Duration::from_secs(60 * u64::from(n));
            if changed(n) {
                generation += 1;
            }
            let plan = memory.plan(now, policy);
            if matches!(plan, Plan::Both | Plan::Inventories) {
                memory.store_inventories(inventory.clone(), Some(generation), now);
            }
            if matches!(plan, Plan::Both | Plan::Allocations) {
                memory.store_allocations(Allocations::new(), Some(generation), now);
            }
            let age = memory.usage(now).unwrap().data_age.unwrap();
            out.push((plan, age));
        }
        out
    }

    #[test]
    fn an_unchanged_generation_keeps_the_inventory_current_with_one_read_per_refresh() {
        let idle = simulate(10, |_| false);
        assert_eq!(idle[0], (Plan::Both, Duration::ZERO));
        for step in &idle[1..] {
            assert_eq!(*step, (Plan::Allocations, Duration::ZERO));
        }
    }

    #[test]
    fn a_changed_generation_brings_the_inventory_read_in_and_the_age_shows_it() {
        let minute = Duration::from_secs(60);
        // One change before refresh 3: refresh 3 cannot prove the inventory (data one interval
        // old, the inventory's age), refresh 4 reads the inventory (data one interval old, the
        // allocations' age), then it is proven again.
        let once = simulate(8, |n| n == 3);
        let plans: Vec<Plan> = once.iter().map(|(p, _)| *p).collect();
        use Plan::*;
        assert_eq!(
            plans,
            [
                Both,
                Allocations,
                Allocations,
                Allocations,
                Inventories,
                Allocations,
                Allocations,
                Allocations
            ]
        );
        let ages: Vec<u64> = once.iter().map(|(_, a)| a.as_secs()).collect();
        assert_eq!(ages, [0, 0, 0, 60, 60, 0, 0, 0]);
        // A change before every refresh: allocations and inventory alternate, never more than
        // one GET per refresh, and the data is never presented younger than its oldest part.
        let busy = simulate(9, |n| n > 0);
        for (n, (plan, age)) in busy.iter().enumerate().skip(1) {
            let expected = if n % 2 == 0 { Inventories } else { Allocations };
            assert_eq!(*plan, expected, "refresh {n}");
            assert_eq!(*age, minute, "refresh {n}");
        }
    }

    #[test]
    fn allocations_and_inventories_answers_carry_the_generation() {
        let body: AllocationsBody =
            serde_json::from_str(r#"{"resource_provider_generation": 9, "allocations": {}}"#)
                .unwrap();
        assert_eq!(body.resource_provider_generation, Some(9));
        let body: InventoriesBody = serde_json::from_str(INVENTORIES).unwrap();
        assert_eq!(body.resource_provider_generation, Some(7));
        let body: AllocationsBody = serde_json::from_str(r#"{"allocations": {}}"#).unwrap();
        assert_eq!(body.resource_provider_generation, None);
    }

    #[test]
    fn a_provider_without_disk_gb_is_a_clear_error() {
        let only_memory =
            inventories(r#"{"inventories": {"MEMORY_MB": {"total": 100}, "VCPU": {"total": 8}}}"#);
        let err = usage_from("compute-01", &only_memory, &BTreeMap::new()).unwrap_err();
        assert!(err.contains("no DISK_GB inventory"), "{err}");
        assert!(err.contains("MEMORY_MB, VCPU"), "{err}");
        let bad_ratio =
            inventories(r#"{"inventories": {"DISK_GB": {"total": 100, "allocation_ratio": 0.0}}}"#);
        assert!(usage_from("x", &bad_ratio, &BTreeMap::new()).is_err());
        let huge = inventories(r#"{"inventories": {"DISK_GB": {"total": 18446744073709551615}}}"#);
        let err = usage_from("x", &huge, &BTreeMap::new()).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
    }

    #[test]
    fn consumers_are_counted_once_by_canonical_uuid_and_malformed_keys_refused() {
        let disk = |gb: u64| BTreeMap::from([("DISK_GB".to_string(), gb)]);
        let spellings = [
            "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63",
            "D47B9E21-3C6A-4F18-8E2D-5A9B1C7F3E63",
            "d47b9e213c6a4f188e2d5a9b1c7f3e63",
            "D47B9E213C6A4F188E2D5A9B1C7F3E63",
        ];
        let mut allocations: Allocations = spellings
            .iter()
            .map(|uuid| (uuid.to_string(), disk(10)))
            .collect();
        allocations.insert("a0000000-0000-4000-8000-000000000001".into(), disk(5));
        let usage = usage_from("compute-01", &inventories(INVENTORIES), &allocations).unwrap();
        let mut uuids: Vec<&str> = usage.instances.iter().map(|i| i.uuid.as_str()).collect();
        uuids.sort_unstable();
        assert_eq!(
            uuids,
            [
                "a0000000-0000-4000-8000-000000000001",
                "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63"
            ]
        );
        // Placement's own usage is every allocation it holds.
        assert_eq!(usage.scheduler_used_bytes, Some(45 * GIB));

        allocations.insert("not-a-uuid\u{1b}[2J".into(), disk(1));
        allocations.insert("d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63_disk".into(), disk(1));
        let err = usage_from("compute-01", &inventories(INVENTORIES), &allocations).unwrap_err();
        assert!(
            err.contains("2 allocation consumer(s) are not UUIDs"),
            "{err}"
        );
        assert!(!err.contains('\u{1b}'), "{err}");
    }
}
