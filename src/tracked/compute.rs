//! The compute API (nova), as the exporter reads it, in one place: the service and its
//! microversions, every request, the paging and the models of the answers. One
//! [`ComputeClient`] (one microversion negotiation, one request timeout, one Keystone session
//! with the other API source) is shared by its three users:
//!
//! | request | user |
//! |---|---|
//! | `GET /` (the version document, once) | all |
//! | `GET /os-hypervisors/detail?hypervisor_hostname_pattern=<name>` (2.53+) | the nova source ([`super::nova`]) |
//! | `GET /os-hypervisors/<name>/search`, then `GET /os-hypervisors/<id>` (before 2.53) | the nova source |
//! | `GET /servers/detail?all_tenants=1&host=<host>` (paged by `servers_links`) | the nova source |
//! | `GET /flavors/<id>` (before 2.47, when servers do not embed their flavor) | the nova source |
//! | `GET /flavors/detail?is_public=None` (paged by `flavors_links`) | the flavor fit's catalog ([`super::flavors`]) |
//! | `GET /servers/detail?all_tenants=1&changes-since=<epoch>&uuid=<uuid>` | the orphan lookups ([`super::orphans`]) |
//!
//! Why each request is made this way (the microversions, the admin-only filters, what nova
//! hides without `changes-since`) is said by its user's module. Every request goes through
//! [`crate::openstack::client::ServiceClient`]: the microversion headers, the redirect policy,
//! the size limit, one re-authentication on a 401 and errors that never carry a secret.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{canonical_uuid, Flavor, SourceKind, TrackedError, NOVA_MAX_INT};
use crate::openstack::client::{AboveNewest, Negotiated, Service, ServiceClient, VersionPolicy};
use crate::openstack::keystone::Session;
use crate::openstack::microversion::Microversion;
use crate::openstack::ApiError;
use crate::text::percent_encode;

/// The newest microversion whose `os-hypervisors` detail has the disk fields.
pub const PREFERRED_MICROVERSION: Microversion = Microversion(2, 87);
/// The first microversion without them.
pub const DISK_FIELDS_REMOVED: Microversion = Microversion(2, 88);
/// Hypervisor ids become UUIDs and `hypervisor_hostname_pattern` replaces `/search`.
pub const PATTERN_QUERY: Microversion = Microversion(2, 53);
/// Servers embed their flavor's sizes.
pub const EMBEDDED_FLAVOR: Microversion = Microversion(2, 47);
/// nova's v2.1 API without microversions (a version document with an empty `version`).
pub const BASE_MICROVERSION: Microversion = Microversion(2, 1);

/// Pages of a list (servers, flavors) read at most (nova pages by `[api] max_limit`, 1000 by
/// default).
pub const MAX_PAGES: usize = 100;

/// The compute API as the exporter speaks it: both microversion headers, the v2.1 API's
/// version document (an empty `version` is v2.1 without microversions), and 2.87 when offered,
/// else the server's maximum; a server whose minimum is above 2.87 gets its minimum (and answers
/// without the disk fields, which the source then explains).
pub const COMPUTE: Service = Service {
    service_type: "compute",
    display_name: "compute (nova)",
    legacy_header: Some("X-OpenStack-Nova-API-Version"),
    forbidden_hint: "reading os-hypervisors and the servers of all projects needs the admin role on the exporter's project (nova's default policy; reader and service are not enough)",
    versions: VersionPolicy {
        api_id: "v2.1",
        max_field: "version",
        unversioned: Some(BASE_MICROVERSION),
        oldest: BASE_MICROVERSION,
        newest: PREFERRED_MICROVERSION,
        above_newest: AboveNewest::ServerMinimum,
    },
};

/// The hypervisor detail fields the exporter reads. Disk fields are `None` when absent (2.88+).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Hypervisor {
    /// Integer before 2.53, UUID string after.
    pub id: Value,
    /// The name libvirt reports (FQDN or short).
    pub hypervisor_hostname: String,
    /// `local_gb`: floor(VG size / GiB) for LVM.
    #[serde(default)]
    pub local_gb: Option<i64>,
    /// `local_gb_used`: the reserve plus the instances, in the resource tracker's arithmetic.
    #[serde(default)]
    pub local_gb_used: Option<i64>,
    /// `free_disk_gb`: `local_gb - local_gb_used` (may be negative).
    #[serde(default)]
    pub free_disk_gb: Option<i64>,
    /// `disk_available_least`: the driver's measured free disk less over-commit.
    #[serde(default)]
    pub disk_available_least: Option<i64>,
    /// The compute service (its `host` is what `/servers?host=` filters on).
    #[serde(default)]
    pub service: Option<HypervisorService>,
}

/// `service` of a hypervisor detail.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct HypervisorService {
    /// nova-compute's `[DEFAULT] host`.
    pub host: String,
}

/// A list of hypervisors: details (2.53+ pattern query) or search entries (before).
#[derive(Debug, Deserialize)]
pub struct HypervisorList<T = Hypervisor> {
    /// The hypervisors.
    pub hypervisors: Vec<T>,
}

/// An entry of a hypervisor list, named as nova names the hypervisor.
pub trait HypervisorEntry {
    /// `hypervisor_hostname`.
    fn hypervisor_hostname(&self) -> &str;
}

impl HypervisorEntry for Hypervisor {
    fn hypervisor_hostname(&self) -> &str {
        &self.hypervisor_hostname
    }
}

impl HypervisorEntry for SearchEntry {
    fn hypervisor_hostname(&self) -> &str {
        &self.hypervisor_hostname
    }
}

/// An entry of `GET /os-hypervisors/<name>/search` (before 2.53).
#[derive(Debug, Deserialize)]
pub struct SearchEntry {
    /// Its id, for `GET /os-hypervisors/<id>`.
    pub id: Value,
    /// The name libvirt reports.
    pub hypervisor_hostname: String,
}

/// `GET /os-hypervisors/<id>`.
#[derive(Debug, Deserialize)]
pub struct HypervisorShow {
    /// The hypervisor.
    pub hypervisor: Hypervisor,
}

#[derive(Debug, Deserialize)]
struct Link {
    #[serde(default)]
    href: String,
    #[serde(default)]
    rel: String,
}

/// One page of `GET /servers/detail`.
#[derive(Debug, Deserialize)]
pub struct ServerPage {
    /// The servers.
    pub servers: Vec<Server>,
    #[serde(default)]
    servers_links: Vec<Link>,
}

/// The parts of a server detail the exporter reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    /// Instance UUID.
    pub id: String,
    /// `{"disk", "ephemeral", "swap", ...}` from 2.47, `{"id", "links"}` before.
    #[serde(default)]
    pub flavor: Value,
    /// `""` when booted from volume, else `{"id", "links"}`.
    #[serde(default)]
    pub image: Value,
    /// The node the server is on (admin only).
    #[serde(rename = "OS-EXT-SRV-ATTR:hypervisor_hostname", default)]
    pub hypervisor_hostname: Option<String>,
}

/// `GET /flavors/<id>`.
#[derive(Debug, Deserialize)]
pub struct FlavorShow {
    /// The flavor object.
    pub flavor: Value,
}
/// What nova's servers list says about one UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whereabouts {
    /// No server with this UUID (archived, or never nova's).
    NotFound,
    /// The server as nova shows it to an admin.
    Server(ServerState),
}

/// The fields of a server that say where it is and whether it still exists.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct ServerState {
    /// Instance UUID.
    pub id: String,
    /// `ACTIVE`, `BUILD`, `DELETED`, `SOFT_DELETED`, `SHELVED_OFFLOADED`, `UNKNOWN` (a down
    /// cell, 2.69+), ...
    #[serde(default)]
    pub status: String,
    /// nova-compute's `[DEFAULT] host` the server is on (`None` when on none).
    #[serde(rename = "OS-EXT-SRV-ATTR:host", default)]
    pub host: Option<String>,
    /// The hypervisor (compute node) the server is on.
    #[serde(rename = "OS-EXT-SRV-ATTR:hypervisor_hostname", default)]
    pub hypervisor_hostname: Option<String>,
    /// `active`, `building`, `deleted`, `soft-delete`, ...
    #[serde(rename = "OS-EXT-STS:vm_state", default)]
    pub vm_state: Option<String>,
    /// `deleting`, `spawning`, `migrating`, ... (`None` when idle).
    #[serde(rename = "OS-EXT-STS:task_state", default)]
    pub task_state: Option<String>,
}

/// `changes-since` far enough back that nova returns every server, deleted ones included.
pub const CHANGES_SINCE_EPOCH: &str = "1970-01-01T00:00:00Z";

#[derive(Debug, Deserialize)]
struct LookupPage {
    servers: Vec<ServerState>,
}

/// The compute API's client, shared by the nova source, the flavor catalog and the orphan
/// lookups (module doc).
pub struct ComputeClient {
    client: ServiceClient,
}

impl std::fmt::Debug for ComputeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeClient").finish_non_exhaustive()
    }
}

impl ComputeClient {
    /// A client through `session`, each request bounded by `timeout` when given (else the
    /// session's).
    pub fn new(session: Arc<Session>, timeout: Option<Duration>) -> Self {
        Self {
            client: ServiceClient::new(session, COMPUTE).with_request_timeout(timeout),
        }
    }

    /// The microversion in use, negotiated on the first call and remembered for every user.
    pub async fn negotiated(&self) -> Result<Negotiated, ApiError> {
        self.client.negotiated().await
    }

    /// The hypervisors whose names contain `name` (2.53+, details included).
    pub async fn hypervisors_like(&self, name: &str) -> Result<Vec<Hypervisor>, ApiError> {
        let path = format!(
            "/os-hypervisors/detail?hypervisor_hostname_pattern={}",
            percent_encode(name)
        );
        Ok(self.client.get::<HypervisorList>(&path).await?.hypervisors)
    }

    /// The hypervisors whose names contain `name`, without details (before 2.53).
    pub async fn hypervisors_searched(&self, name: &str) -> Result<Vec<SearchEntry>, ApiError> {
        let path = format!("/os-hypervisors/{}/search", percent_encode(name));
        Ok(self
            .client
            .get::<HypervisorList<SearchEntry>>(&path)
            .await?
            .hypervisors)
    }

    /// One hypervisor's details, by the id a search gave.
    pub async fn hypervisor(&self, id: &Value) -> Result<Hypervisor, ApiError> {
        let path = format!("/os-hypervisors/{}", percent_encode(&id_text(id)));
        Ok(self.client.get::<HypervisorShow>(&path).await?.hypervisor)
    }

    /// Every server of the service host `host` on hypervisor `node`, page by page (at most
    /// [`MAX_PAGES`]).
    pub async fn servers_on(&self, host: &str, node: &str) -> Result<Vec<Server>, TrackedError> {
        let mut servers = Vec::new();
        let mut path = format!(
            "/servers/detail?all_tenants=1&host={}",
            percent_encode(host)
        );
        for _ in 0..MAX_PAGES {
            let page: ServerPage = self.client.get(&path).await?;
            let empty = page.servers.is_empty();
            servers.extend(page.servers);
            let next = page
                .servers_links
                .iter()
                .find(|l| l.rel == "next")
                .and_then(|l| l.href.split_once('?').map(|(_, q)| q.to_string()));
            match next {
                Some(query) if !empty => path = format!("/servers/detail?{query}"),
                _ => {
                    servers.retain(|s| s.hypervisor_hostname.as_deref().is_none_or(|n| n == node));
                    return Ok(servers);
                }
            }
        }
        Err(TrackedError::invalid_answer(
            SourceKind::Nova,
            &format!(
                "more than {MAX_PAGES} pages of servers on host {host:?}; refusing to read further"
            ),
        ))
    }

    /// A flavor object by id (`GET /flavors/<id>`).
    pub async fn flavor(&self, id: &str) -> Result<Value, ApiError> {
        let path = format!("/flavors/{}", percent_encode(id));
        Ok(self.client.get::<FlavorShow>(&path).await?.flavor)
    }

    /// Every flavor, public and private (`GET /flavors/detail?is_public=None`), each page read
    /// by `page` into its items and the query of the next page, at most [`MAX_PAGES`] pages.
    /// Errors are text for an operator, naming the flavor list.
    pub async fn flavors<T>(
        &self,
        page: impl Fn(&Value) -> Result<(Vec<T>, Option<String>), String>,
    ) -> Result<Vec<T>, String> {
        let mut items = Vec::new();
        let mut path = "/flavors/detail?is_public=None".to_string();
        for _ in 0..MAX_PAGES {
            let body: Value = self.client.get(&path).await.map_err(|e| e.to_string())?;
            let (found, next) = page(&body).map_err(|e| format!("nova's flavor list: {e}"))?;
            items.extend(found);
            match next {
                Some(query) => path = format!("/flavors/detail?{query}"),
                None => return Ok(items),
            }
        }
        Err(format!(
            "nova's flavor list: more than {MAX_PAGES} pages; refusing to read further"
        ))
    }

    /// What nova says about the server `uuid` (canonical, lower case), whatever its state: one
    /// servers-list request ([`lookup_path`]).
    pub async fn whereabouts(&self, uuid: &str) -> Result<Whereabouts, ApiError> {
        let page: LookupPage = self.client.get(&lookup_path(uuid)).await?;
        // nova filters `uuid` exactly; an answer about another server is not this one's.
        Ok(page
            .servers
            .into_iter()
            .find(|s| canonical_uuid(&s.id).as_deref() == Some(uuid))
            .map_or(Whereabouts::NotFound, Whereabouts::Server))
    }
}

/// The servers-list path that finds `uuid` whatever the server's state.
pub fn lookup_path(uuid: &str) -> String {
    format!(
        "/servers/detail?all_tenants=1&changes-since={}&uuid={}",
        percent_encode(CHANGES_SINCE_EPOCH),
        percent_encode(uuid)
    )
}

/// A server booted from a volume has `image: ""` (or no image) in the API, as nova's
/// `is_volume_backed_instance` sees an empty `image_ref`.
pub fn is_boot_from_volume(image: &Value) -> bool {
    match image {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Object(map) => map
            .get("id")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty),
        _ => false,
    }
}

/// Reads `disk`, the ephemeral field and `swap` (MiB; `""` means none in the flavors API before
/// 2.75) from a flavor object.
pub fn flavor_sizes(flavor: &Value, disk: &str, ephemeral: &str) -> Result<Flavor, String> {
    let number = |name: &str, required: bool| -> Result<u64, String> {
        match flavor.get(name) {
            Some(Value::Number(n)) => n
                .as_u64()
                .filter(|v| *v <= NOVA_MAX_INT)
                .ok_or_else(|| format!("flavor {name} {n} is not a size nova accepts")),
            Some(Value::String(s)) if s.is_empty() => Ok(0),
            None | Some(Value::Null) if !required => Ok(0),
            other => Err(format!("flavor {name} is {other:?}, not a number")),
        }
    };
    Ok(Flavor {
        root_gb: number(disk, true)?,
        ephemeral_gb: number(ephemeral, false)?,
        swap_mb: number("swap", false)?,
        boot_from_volume: false,
    })
}

/// A hypervisor or flavor id as text (an integer before 2.53 for hypervisors).
pub fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openstack::client::{self, VersionRange};

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/nova/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn the_microversion_stays_below_2_88_whenever_the_server_allows() {
        let mv = |s| Microversion::parse(s).unwrap();
        let negotiate = |min, max| {
            let server = VersionRange {
                min: mv(min),
                max: mv(max),
            };
            client::negotiate(server, &COMPUTE.versions)
        };
        assert_eq!(negotiate("2.1", "2.104"), Ok(mv("2.87")));
        assert_eq!(negotiate("2.1", "2.87"), Ok(mv("2.87")));
        assert_eq!(negotiate("2.1", "2.60"), Ok(mv("2.60")));
        assert_eq!(negotiate("2.1", "2.1"), Ok(mv("2.1")));
        // A (hypothetical) server that no longer offers 2.87: its minimum, without disk fields.
        assert_eq!(negotiate("2.90", "2.104"), Ok(mv("2.90")));
    }

    #[test]
    fn version_documents_of_the_endpoint_and_the_root_are_read() {
        let range = |doc: &Value| {
            client::version_range(doc, "compute", &COMPUTE.versions).map(|r| (r.min, r.max))
        };
        let doc = fixture("versions-v21-get.json");
        assert_eq!(range(&doc), Ok((Microversion(2, 1), Microversion(2, 104))));
        let root = serde_json::json!({"versions": [
            {"id": "v2.0", "version": "", "min_version": "", "status": "DEPRECATED"},
            {"id": "v2.1", "version": "2.96", "min_version": "2.1", "status": "CURRENT"}]});
        assert_eq!(range(&root), Ok((Microversion(2, 1), Microversion(2, 96))));
        let legacy =
            serde_json::json!({"version": {"id": "v2.1", "version": "", "min_version": ""}});
        assert_eq!(range(&legacy), Ok((BASE_MICROVERSION, BASE_MICROVERSION)));
        assert!(range(&serde_json::json!({"x": 1})).is_err());
        let bad = serde_json::json!({"version": {"version": "two", "min_version": "2.1"}});
        assert!(range(&bad).unwrap_err().contains("\"two\""));
    }

    #[test]
    fn flavors_embedded_and_looked_up_give_the_same_sizes() {
        let page: ServerPage =
            serde_json::from_value(fixture("v2.47-servers-details-resp.json")).unwrap();
        let embedded = flavor_sizes(&page.servers[0].flavor, "disk", "ephemeral").unwrap();
        let show: FlavorShow =
            serde_json::from_value(fixture("v2.1-flavor-get-resp.json")).unwrap();
        let looked_up = flavor_sizes(&show.flavor, "disk", "OS-FLV-EXT-DATA:ephemeral").unwrap();
        assert!(embedded.root_gb > 0 && looked_up.root_gb > 0);
        // The flavors API spells "no swap" as "" before 2.75.
        assert_eq!(show.flavor["swap"], serde_json::json!(""));
        assert_eq!(looked_up.swap_mb, 0);
        assert!(flavor_sizes(&serde_json::json!({"disk": -1}), "disk", "e").is_err());
        assert!(flavor_sizes(&serde_json::json!({"ephemeral": 1}), "disk", "ephemeral").is_err());
    }

    #[test]
    fn boot_from_volume_is_an_empty_image() {
        assert!(is_boot_from_volume(&serde_json::json!("")));
        assert!(is_boot_from_volume(&Value::Null));
        assert!(!is_boot_from_volume(
            &serde_json::json!({"id": "70a599e0-31e7-49b7-b260-868f441e862b", "links": []})
        ));
    }

    #[test]
    fn the_api_samples_fields_are_read() {
        let page: LookupPage =
            serde_json::from_value(fixture("v2.47-servers-details-resp.json")).unwrap();
        let s = &page.servers[0];
        assert_eq!(s.status, "ACTIVE");
        assert!(s.hypervisor_hostname.is_some() && s.host.is_some());
        assert_eq!(s.vm_state.as_deref(), Some("active"));
        assert_eq!(
            lookup_path("d0000000-0000-4000-8000-000000000004"),
            "/servers/detail?all_tenants=1&changes-since=1970-01-01T00%3A00%3A00Z&uuid=d0000000-0000-4000-8000-000000000004"
        );
    }
}
