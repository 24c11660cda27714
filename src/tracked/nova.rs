//! The nova tracked source: what nova's resource tracker books for this host, read from the
//! compute API (`os-hypervisors`) through the Keystone session, and the servers on the host.
//!
//! One refresh is (the version document only on the first refresh):
//!
//! 1. `GET /` of the compute endpoint: the microversion range. The exporter asks for 2.87, the
//!    newest microversion whose `os-hypervisors` detail still has the disk fields (2.88 removed
//!    `local_gb`, `local_gb_used`, `free_disk_gb` and `disk_available_least`), or the server's
//!    maximum when that is lower. Every nova since Liberty accepts 2.1 to 2.87.
//! 2. The hypervisor. From 2.53: `GET /os-hypervisors/detail?hypervisor_hostname_pattern=<short
//!    name>` (ids are UUIDs); before: `GET /os-hypervisors/<short name>/search` and then
//!    `GET /os-hypervisors/<id>`. Both match substrings, so both the FQDN and the short name come
//!    back; the exporter picks the exact name, else the one whose short name equals the configured
//!    short name (libvirt reports the FQDN on some hosts and the short name on others), and logs
//!    which one and why.
//! 3. The servers on the host: `GET /servers/detail?all_tenants=1&host=<service host>` (paged by
//!    nova's `servers_links`), keeping those on this hypervisor. From 2.47 each server embeds its
//!    flavor's disk sizes; before, each flavor is read once with `GET /flavors/<id>` (flavors are
//!    immutable, so they are cached for the life of the process).
//!
//! The usage follows nova's resource tracker exactly, including its rounding (the one rule,
//! [`Flavor::resource_tracker_bytes`], that the local sources use too): the `ComputeNode`
//! fields are integers and every `+=` truncates, so `local_gb_used` is
//! `int(reserved_host_disk_mb / 1024) + sum(root_gb (0 when booted from volume) + ephemeral_gb +
//! int(swap_mb / 1024))`, plus the claims of migrations in flight. The API does not return the
//! reserve, so it comes from nova.conf or `--nova.reserved-host-disk-mb` and must match nova's.
//!
//! Reading `os-hypervisors` and all projects' servers needs the `admin` role (nova's default
//! policy); a 403 says so.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::compute::{
    flavor_sizes, id_text, is_boot_from_volume, ComputeClient, Hypervisor, HypervisorEntry, Server,
    DISK_FIELDS_REMOVED, EMBEDDED_FLAVOR, PATTERN_QUERY, PREFERRED_MICROVERSION,
};
use super::host::{match_hostname, short_name, ProviderName};
use super::{
    canonical_uuid, Flavor, HostDiskSettings, SourceKind, TrackedError, TrackedInstance,
    TrackedSource, TrackedUsage, GIB, MIB,
};
use crate::openstack::microversion::Microversion;
use crate::openstack::ApiError;

/// Reads this host's figures from nova's compute API.
pub struct NovaSource {
    compute: Arc<ComputeClient>,
    host: ProviderName,
    settings: HostDiskSettings,
    flavors: Mutex<HashMap<String, Flavor>>,
    warned_flavors: Mutex<HashSet<String>>,
    last_match: Mutex<Option<String>>,
}

impl std::fmt::Debug for NovaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NovaSource")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl NovaSource {
    /// A source for the hypervisor named `host` through `compute` (shared with the flavor
    /// catalog and the orphan lookups), with nova's reserve and ratio from `settings` (the API
    /// does not return them).
    pub fn new(
        compute: Arc<ComputeClient>,
        host: ProviderName,
        settings: HostDiskSettings,
    ) -> Self {
        Self {
            compute,
            host,
            settings,
            flavors: Mutex::new(HashMap::new()),
            warned_flavors: Mutex::new(HashSet::new()),
            last_match: Mutex::new(None),
        }
    }

    /// Finds this host's hypervisor and says which name matched and why.
    async fn hypervisor(&self, mv: Microversion) -> Result<(Hypervisor, String), TrackedError> {
        let pattern = short_name(&self.host.name);
        if mv >= PATTERN_QUERY {
            let listed = self.compute.hypervisors_like(pattern).await;
            self.pick(listed)
        } else {
            let listed = self.compute.hypervisors_searched(pattern).await;
            let (entry, why) = self.pick(listed)?;
            Ok((self.compute.hypervisor(&entry.id).await?, why))
        }
    }

    /// Picks this host's hypervisor among those whose names contain its short name (`listed`:
    /// a pattern query or a search, both substring matches; [`match_hostname`]): the entry and
    /// why it was picked.
    fn pick<T: HypervisorEntry>(
        &self,
        listed: Result<Vec<T>, ApiError>,
    ) -> Result<(T, String), TrackedError> {
        let wanted = &self.host.name;
        let mut list = listed.map_err(|e| match e {
            ApiError::Status { status: 404, .. } => invalid(&format!(
                "nova has no hypervisor whose name contains {:?} (looked for {wanted:?}, from {}); set --collector.nova.hostname to the hypervisor_hostname `openstack hypervisor list` shows",
                short_name(wanted),
                self.host.origin
            )),
            other => other.into(),
        })?;
        let names: Vec<&str> = list
            .iter()
            .map(HypervisorEntry::hypervisor_hostname)
            .collect();
        let (index, why) =
            match_hostname(wanted, &self.host.origin, &names).map_err(|e| invalid(&e))?;
        Ok((list.swap_remove(index), why))
    }

    /// The disk sizes of a server's flavor: embedded (2.47+) or read from `/flavors/<id>`.
    /// `None` when the flavor was deleted (before 2.47 its sizes cannot be read any more).
    async fn flavor(
        &self,
        server: &Server,
        mv: Microversion,
    ) -> Result<Option<Flavor>, TrackedError> {
        let boot_from_volume = is_boot_from_volume(&server.image);
        if mv >= EMBEDDED_FLAVOR {
            let mut flavor = flavor_sizes(&server.flavor, "disk", "ephemeral")
                .map_err(|e| invalid(&format!("server {}: {e}", server.id)))?;
            flavor.boot_from_volume = boot_from_volume;
            return Ok(Some(flavor));
        }
        let id = server
            .flavor
            .get("id")
            .map(id_text)
            .ok_or_else(|| invalid(&format!("server {}: its flavor has no id", server.id)))?;
        let cached = self
            .flavors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .copied();
        let sizes = match cached {
            Some(sizes) => sizes,
            None => match self.compute.flavor(&id).await {
                Ok(flavor) => {
                    let sizes = flavor_sizes(&flavor, "disk", "OS-FLV-EXT-DATA:ephemeral")
                        .map_err(|e| invalid(&format!("flavor {id}: {e}")))?;
                    self.flavors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id.clone(), sizes);
                    sizes
                }
                Err(ApiError::Status { status: 404, .. }) => {
                    let first = self
                        .warned_flavors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id.clone());
                    if first {
                        tracing::warn!(
                            flavor = %id,
                            server = %server.id,
                            "nova: the flavor of this server was deleted; before microversion 2.47 its disk sizes cannot be read, so the server counts 0 bytes of its own (nova's local_gb_used still counts it)"
                        );
                    }
                    return Ok(None);
                }
                Err(other) => return Err(other.into()),
            },
        };
        Ok(Some(Flavor {
            boot_from_volume,
            ..sizes
        }))
    }
}

#[async_trait]
impl TrackedSource for NovaSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Nova
    }

    async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
        let negotiated = self.compute.negotiated().await?;
        let mv = negotiated.microversion;
        let (hypervisor, why) = self.hypervisor(mv).await?;
        {
            let mut last = self.last_match.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_deref() != Some(why.as_str()) {
                tracing::info!(hypervisor = %hypervisor.hypervisor_hostname, why = %why, "nova: using this hypervisor");
                *last = Some(why.clone());
            }
        }
        let disk = match DiskFields::of(&hypervisor).map_err(|e| invalid(&e))? {
            Some(disk) => disk,
            None => {
                // The collector logs this once (a repeated failure is not logged again) and
                // reports it on every scrape; nothing is exported for the source.
                return Err(TrackedError::Api(no_disk_fields_message(
                    mv,
                    &negotiated.server.to_string(),
                    &crate::redact::upstream_text(&hypervisor.hypervisor_hostname),
                )));
            }
        };
        let service_host = hypervisor
            .service
            .as_ref()
            .map(|s| s.host.clone())
            .unwrap_or_else(|| hypervisor.hypervisor_hostname.clone());
        let servers = self
            .compute
            .servers_on(&service_host, &hypervisor.hypervisor_hostname)
            .await?;
        let mut instances = Vec::with_capacity(servers.len());
        let mut seen = HashSet::with_capacity(servers.len());
        let mut repeated = 0usize;
        for server in &servers {
            let uuid = canonical_uuid(&server.id).ok_or_else(|| {
                invalid(&format!(
                    "server id {:?} is not a UUID; nova's server ids are UUIDs, so the servers list is not trusted",
                    crate::redact::upstream_text(&server.id)
                ))
            })?;
            // One server listed twice (pages that overlap, a hostile answer) is one instance.
            if !seen.insert(uuid.clone()) {
                repeated += 1;
                continue;
            }
            instances.push(match self.flavor(server, mv).await? {
                Some(flavor) => instance(uuid, &flavor),
                None => TrackedInstance {
                    uuid,
                    tracked_bytes: 0,
                    allocated_bytes: 0,
                    flavor: None,
                },
            });
        }
        if repeated > 0 {
            tracing::warn!(
                repeated,
                hypervisor = %hypervisor.hypervisor_hostname,
                "nova: the servers list named some servers more than once; each counts once"
            );
        }
        usage_from(
            &hypervisor.hypervisor_hostname,
            &disk,
            instances,
            &self.settings,
        )
        .map_err(|e| invalid(&e))
    }
}

/// The four disk fields of a hypervisor detail (present before 2.88).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskFields {
    /// `local_gb`.
    pub local_gb: i64,
    /// `local_gb_used`.
    pub local_gb_used: i64,
    /// `free_disk_gb` (nova computes `local_gb - local_gb_used` when it is null).
    pub free_disk_gb: i64,
    /// `disk_available_least` (nullable in nova).
    pub disk_available_least: Option<i64>,
}

impl DiskFields {
    /// The fields, `Ok(None)` when the answer has no `local_gb`/`local_gb_used` (2.88+). Figures
    /// nova cannot have computed are refused, naming them: a negative `local_gb` or
    /// `local_gb_used` (sizes and sums of flavor sizes), or a `free_disk_gb` to be derived as
    /// `local_gb - local_gb_used` that does not fit 64 bits.
    pub fn of(hypervisor: &Hypervisor) -> Result<Option<Self>, String> {
        let (Some(local_gb), Some(local_gb_used)) = (hypervisor.local_gb, hypervisor.local_gb_used)
        else {
            return Ok(None);
        };
        let name = &hypervisor.hypervisor_hostname;
        for (what, value) in [("local_gb", local_gb), ("local_gb_used", local_gb_used)] {
            if value < 0 {
                return Err(format!(
                    "hypervisor {name:?}: {what} is {value} GiB; nova never reports a negative size"
                ));
            }
        }
        let free_disk_gb = match hypervisor.free_disk_gb {
            Some(free) => free,
            None => local_gb.checked_sub(local_gb_used).ok_or_else(|| {
                format!(
                    "hypervisor {name:?}: free_disk_gb is null and local_gb {local_gb} - local_gb_used {local_gb_used} is out of range"
                )
            })?,
        };
        Ok(Some(Self {
            local_gb,
            local_gb_used,
            free_disk_gb,
            disk_available_least: hypervisor.disk_available_least,
        }))
    }
}

/// The collector error (and the one warning) when the disk fields are absent.
pub fn no_disk_fields_message(mv: Microversion, range: &str, hypervisor: &str) -> String {
    let why = if mv >= DISK_FIELDS_REMOVED {
        format!(
            "nova's minimum microversion is above {PREFERRED_MICROVERSION}, so the exporter had to ask for {mv}, and microversion {DISK_FIELDS_REMOVED} removed them"
        )
    } else {
        format!("although the exporter asked for microversion {mv}")
    };
    format!(
        "nova's os-hypervisors answer for {hypervisor:?} has no local_gb, local_gb_used, free_disk_gb and disk_available_least ({why}; server supports {range}): nothing is exported for source=\"nova\"; use the placement source (--collector.placement) on this cloud"
    )
}

fn instance(uuid: String, flavor: &Flavor) -> TrackedInstance {
    TrackedInstance {
        uuid,
        tracked_bytes: flavor.resource_tracker_bytes(),
        allocated_bytes: flavor.placement_allocation_bytes(),
        flavor: Some(*flavor),
    }
}

/// Turns the hypervisor's disk fields and the instances into usage (pure, for the tests).
pub fn usage_from(
    hypervisor: &str,
    disk: &DiskFields,
    instances: Vec<TrackedInstance>,
    settings: &HostDiskSettings,
) -> Result<TrackedUsage, String> {
    // nova starts local_gb_used at the truncated reserve (resource_tracker_reserved_gib).
    let reserved_gib = i64::try_from(settings.resource_tracker_reserved_gib())
        .map_err(|_| "reserved_host_disk_mb is out of range".to_string())?;
    for (what, value) in [
        ("local_gb", disk.local_gb),
        ("local_gb_used", disk.local_gb_used),
    ] {
        if value < 0 {
            return Err(format!(
                "hypervisor {hypervisor:?}: {what} is {value} GiB; nova never reports a negative size"
            ));
        }
    }
    // Both are non-negative here, so the difference cannot overflow; checked all the same.
    let instances_gib = disk
        .local_gb_used
        .checked_sub(reserved_gib)
        .ok_or_else(|| {
            format!(
                "hypervisor {hypervisor:?}: local_gb_used {} less the reserve of {reserved_gib} GiB is out of range",
                disk.local_gb_used
            )
        })?;
    if instances_gib < 0 {
        return Err(format!(
            "hypervisor {hypervisor:?}: local_gb_used is {} GiB, less than the reserve of {reserved_gib} GiB the exporter was given (reserved_host_disk_mb = {}); nova's reserve differs: set --nova.reserved-host-disk-mb to nova-compute's value",
            disk.local_gb_used, settings.reserved_host_disk_mb
        ));
    }
    let bytes = |gib: i64, what: &str| {
        gib.checked_mul(GIB as i64)
            .ok_or_else(|| format!("hypervisor {hypervisor:?}: {what} {gib} GiB is out of range"))
    };
    let local_bytes = bytes(disk.local_gb, "local_gb")?;
    let used_bytes = bytes(instances_gib, "local_gb_used")?;
    Ok(TrackedUsage {
        instances,
        reserved_bytes: settings.reserved_host_disk_mb * MIB,
        allocation_ratio: settings.disk_allocation_ratio,
        scheduler_total_bytes: Some(local_bytes.unsigned_abs()),
        scheduler_used_bytes: Some(used_bytes.unsigned_abs()),
        fetched_unix: None,
        data_age: None,
        tracked_used_bytes: Some(used_bytes.unsigned_abs()),
        scheduler_free_bytes: Some(bytes(disk.free_disk_gb, "free_disk_gb")?),
        disk_available_least_bytes: disk
            .disk_available_least
            .map(|gib| bytes(gib, "disk_available_least"))
            .transpose()?,
        provider_uuid: None,
        nova_conf: None,
        flavors: Vec::new(),
    })
}

fn invalid(message: &str) -> TrackedError {
    TrackedError::invalid_answer(SourceKind::Nova, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracked::compute::{HypervisorList, HypervisorShow};
    use serde_json::Value;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/nova/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn the_2_1_and_2_53_samples_have_the_disk_fields_and_2_88_has_none() {
        let show: HypervisorShow =
            serde_json::from_value(fixture("v2.1-hypervisors-show-resp.json")).unwrap();
        let disk = DiskFields::of(&show.hypervisor).unwrap().unwrap();
        assert_eq!(show.hypervisor.id, serde_json::json!(1));
        assert!(disk.local_gb > 0);
        let list: HypervisorList =
            serde_json::from_value(fixture("v2.53-hypervisors-detail-resp.json")).unwrap();
        assert!(DiskFields::of(&list.hypervisors[0]).unwrap().is_some());
        assert!(list.hypervisors[0].id.is_string());
        let list: HypervisorList =
            serde_json::from_value(fixture("v2.88-hypervisors-detail-resp.json")).unwrap();
        assert_eq!(DiskFields::of(&list.hypervisors[0]), Ok(None));
        let message =
            no_disk_fields_message(Microversion(2, 90), "2.90 to 2.104", "cmp-7.example.org");
        assert!(message.contains("2.88 removed them"), "{message}");
        assert!(message.contains("nothing is exported"), "{message}");
    }

    #[test]
    fn usage_follows_the_resource_trackers_integer_arithmetic() {
        // reserved 1500 MiB -> int(1.46) = 1 GiB in local_gb_used; a 1536 MiB swap -> 1 GiB.
        let flavor = Flavor {
            root_gb: 20,
            ephemeral_gb: 5,
            swap_mb: 1536,
            boot_from_volume: false,
        };
        assert_eq!(flavor.resource_tracker_bytes(), 26 * GIB);
        let bfv = Flavor {
            boot_from_volume: true,
            ..flavor
        };
        assert_eq!(bfv.resource_tracker_bytes(), 6 * GIB);
        let settings = HostDiskSettings {
            reserved_host_disk_mb: 1500,
            disk_allocation_ratio: 1.0,
        };
        let disk = DiskFields {
            local_gb: 99,
            local_gb_used: 1 + 26 + 6,
            free_disk_gb: 99 - 33,
            disk_available_least: Some(40),
        };
        let uuid = "3f5e6c1a-1111-4222-8333-444455556666";
        let usage = usage_from(
            "cmp-7",
            &disk,
            vec![instance(uuid.into(), &flavor)],
            &settings,
        )
        .unwrap();
        assert_eq!(usage.tracked_used_bytes, Some(32 * GIB));
        assert_eq!(usage.reserved_bytes, 1500 * MIB);
        assert_eq!(usage.scheduler_total_bytes, Some(99 * GIB));
        assert_eq!(usage.scheduler_free_bytes, Some(66 * GIB as i64));
        assert_eq!(usage.disk_available_least_bytes, Some(40 * GIB as i64));
        assert_eq!(usage.instances[0].uuid, uuid);
        assert_eq!(usage.instances[0].allocated_bytes, 27 * GIB);
        let err = usage_from(
            "cmp-7",
            &DiskFields {
                local_gb_used: 0,
                ..disk
            },
            vec![],
            &settings,
        )
        .unwrap_err();
        assert!(err.contains("--nova.reserved-host-disk-mb"), "{err}");
    }

    #[test]
    fn extreme_hypervisor_figures_are_refused_not_wrapped() {
        let settings = HostDiskSettings {
            reserved_host_disk_mb: 1500,
            disk_allocation_ratio: 1.0,
        };
        let disk = DiskFields {
            local_gb: 99,
            local_gb_used: i64::MIN,
            free_disk_gb: 0,
            disk_available_least: None,
        };
        let err = usage_from("cmp-7", &disk, vec![], &settings).unwrap_err();
        assert!(
            err.contains("local_gb_used is -9223372036854775808 GiB"),
            "{err}"
        );
        assert!(!err.contains("9223372036854775807"), "{err}");
        for (local_gb, local_gb_used) in [(i64::MIN, 0), (-1, 0), (0, -1)] {
            let disk = DiskFields {
                local_gb,
                local_gb_used,
                ..disk
            };
            let err = usage_from("cmp-7", &disk, vec![], &settings).unwrap_err();
            assert!(err.contains("never reports a negative size"), "{err}");
        }
        let max = DiskFields {
            local_gb: i64::MAX,
            local_gb_used: i64::MAX,
            ..disk
        };
        let err = usage_from("cmp-7", &max, vec![], &settings).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        // free_disk_gb null: derived with checked arithmetic, negative figures refused.
        let hypervisor = |local_gb: i64, local_gb_used: i64| Hypervisor {
            id: serde_json::json!(1),
            hypervisor_hostname: "cmp-7".into(),
            local_gb: Some(local_gb),
            local_gb_used: Some(local_gb_used),
            free_disk_gb: None,
            disk_available_least: None,
            service: None,
        };
        let err = DiskFields::of(&hypervisor(-1, i64::MIN)).unwrap_err();
        assert!(err.contains("local_gb is -1 GiB"), "{err}");
        let err = DiskFields::of(&hypervisor(5, i64::MIN)).unwrap_err();
        assert!(
            err.contains("local_gb_used is -9223372036854775808"),
            "{err}"
        );
        assert_eq!(
            DiskFields::of(&hypervisor(5, 7))
                .unwrap()
                .unwrap()
                .free_disk_gb,
            -2
        );
    }
}
