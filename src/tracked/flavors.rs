//! Flavors for the flavor fit (`crate::accounting::fit`): given with `--flavor NAME=DISK_GB[,SWAP_MB,EPH_GB]`,
//! read from the compute API's flavor list when the nova source is on, and read from nova's
//! metadata in the domains defined on this host when the libvirt source is on
//! ([`crate::tracked::libvirt`], no configuration needed).
//!
//! The list is `GET /flavors/detail?is_public=None` through the nova source's Keystone session:
//! as admin, `is_public=None` lists public and private flavors alike (nova's
//! `_parse_is_public`; a non-admin would see only public ones and those shared with its
//! project). Pages follow nova's `flavors_links` (at most [`super::compute::MAX_PAGES`]). Disabled flavors
//! (`OS-FLV-DISABLED:disabled`) are left out: nothing can be built from them. Every flavor is
//! image-backed here (its `disk` is the root LV); a flavor booted from a volume has no root on
//! this host, which `--flavor NAME=0,...` describes.
//!
//! [`FlavorCatalog`] caches the list: refreshed at most once per the nova source's refresh
//! interval (with its jitter, in the background), dropped when older than its max age. A failure
//! is reported (the `flavors` collector) and never fails the scrape: the configured flavors keep
//! their fit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::{BoxFuture, FutureExt, Shared};
use serde_json::Value;

use super::cached::next_refresh_delay;
use super::compute::{flavor_sizes, ComputeClient};
use super::{Flavor, NOVA_MAX_INT};

/// Where a flavor of the fit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlavorOrigin {
    /// `--flavor` (or `flavor` in the configuration file).
    Configured,
    /// The compute API's flavor list.
    Nova,
    /// nova's metadata (`<nova:flavor name=...>`) in a domain defined on this host.
    Libvirt,
}

impl FlavorOrigin {
    /// `configured`, `nova` or `libvirt`, as `report` and the status page name it.
    pub fn as_str(self) -> &'static str {
        match self {
            FlavorOrigin::Configured => "configured",
            FlavorOrigin::Nova => "nova",
            FlavorOrigin::Libvirt => "libvirt",
        }
    }
}

/// A flavor's name and disk sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedFlavor {
    /// The flavor's name (nova's `name`), the `flavor` label.
    pub name: String,
    /// Its disk sizes.
    pub flavor: Flavor,
    /// Where it came from.
    pub origin: FlavorOrigin,
}

/// Parses one `--flavor` value, `NAME=DISK_GB[,SWAP_MB,EPH_GB]` (an empty SWAP_MB or EPH_GB is
/// 0). The error names the part at fault. `DISK_GB` 0 is a flavor without a root disk on this
/// host (booted from volume, or a root the image sizes).
pub fn parse_flavor_flag(text: &str) -> Result<NamedFlavor, String> {
    let expected = "expected NAME=DISK_GB[,SWAP_MB,EPH_GB] like m1.large=80 or m1.db=40,2048,8";
    let (name, sizes) = text
        .split_once('=')
        .ok_or_else(|| format!("{expected}: no '=' in {text:?}"))?;
    if name.trim().is_empty() {
        return Err(format!("{expected}: the NAME before '=' is empty"));
    }
    if name.len() > 255 || name.chars().any(char::is_control) {
        return Err(format!(
            "{expected}: NAME must be at most 255 characters without control characters (nova's rule), got {name:?}"
        ));
    }
    let parts: Vec<&str> = sizes.split(',').collect();
    if parts.len() > 3 {
        return Err(format!(
            "{expected}: {} comma-separated sizes after '=' in {text:?}, at most 3",
            parts.len()
        ));
    }
    let size = |index: usize, what: &str| -> Result<u64, String> {
        let Some(part) = parts.get(index).map(|p| p.trim()) else {
            return Ok(0);
        };
        if part.is_empty() && index > 0 {
            return Ok(0);
        }
        let value: u64 = part.parse().map_err(|_| {
            format!("{expected}: {what} {part:?} of flavor {name:?} is not a whole number")
        })?;
        if value > NOVA_MAX_INT {
            return Err(format!(
                "{expected}: {what} {value} of flavor {name:?} is above {NOVA_MAX_INT}, the largest nova accepts"
            ));
        }
        Ok(value)
    };
    Ok(NamedFlavor {
        name: name.to_string(),
        flavor: Flavor {
            root_gb: size(0, "DISK_GB")?,
            swap_mb: size(1, "SWAP_MB")?,
            ephemeral_gb: size(2, "EPH_GB")?,
            boot_from_volume: false,
        },
        origin: FlavorOrigin::Configured,
    })
}

/// The flavors of one page of `GET /flavors/detail` (disabled ones left out) and the query of
/// the next page, if nova links one. Names pass [`crate::redact::upstream_text`] (redacted,
/// without control characters, on one line); a name over nova's 255 bytes fails the page.
/// Pure, for the tests.
pub fn flavors_of_page(page: &Value) -> Result<(Vec<NamedFlavor>, Option<String>), String> {
    let list = page
        .get("flavors")
        .and_then(Value::as_array)
        .ok_or("the answer has no \"flavors\" list")?;
    let mut flavors = Vec::with_capacity(list.len());
    for entry in list {
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a flavor without a name")?;
        if name.len() > 255 {
            return Err(format!(
                "a flavor name of {} bytes, longer than nova's 255",
                name.len()
            ));
        }
        if entry
            .get("OS-FLV-DISABLED:disabled")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            continue;
        }
        // The name becomes the `flavor` label and a line of the report and the status page:
        // upstream text, so redacted, without control characters, one line, bounded.
        let name = crate::redact::upstream_text(name);
        let flavor = flavor_sizes(entry, "disk", "OS-FLV-EXT-DATA:ephemeral")
            .map_err(|e| format!("flavor {name:?}: {e}"))?;
        flavors.push(NamedFlavor {
            name,
            flavor,
            origin: FlavorOrigin::Nova,
        });
    }
    let next = page
        .get("flavors_links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|link| link.get("rel").and_then(Value::as_str) == Some("next"))
        .and_then(|link| link.get("href").and_then(Value::as_str))
        .and_then(|href| href.split_once('?').map(|(_, query)| query.to_string()));
    let next = next.filter(|_| !list.is_empty());
    Ok((flavors, next))
}

/// Every enabled flavor of the compute API, public and private, page by page.
pub async fn fetch_flavor_list(compute: &ComputeClient) -> Result<Vec<NamedFlavor>, String> {
    compute.flavors(flavors_of_page).await
}

/// A flavor list as read at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct FlavorListing {
    /// The flavors.
    pub flavors: Vec<NamedFlavor>,
    /// Unix time they were read.
    pub fetched_unix: f64,
}

struct CachedListing {
    listing: FlavorListing,
    at: Instant,
}

#[derive(Default)]
struct CatalogState {
    value: Option<CachedListing>,
    last_error: Option<String>,
    next_refresh: Option<Instant>,
    refreshes: u64,
    in_flight: Option<Shared<BoxFuture<'static, ()>>>,
}

/// The compute API's flavor list, refreshed in the background at most once per interval.
pub struct FlavorCatalog {
    compute: Arc<ComputeClient>,
    interval: Duration,
    max_age: Duration,
    state: Arc<Mutex<CatalogState>>,
}

impl std::fmt::Debug for FlavorCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlavorCatalog")
            .field("interval", &self.interval)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl FlavorCatalog {
    /// A catalog of the flavors `compute` lists, refreshed every `interval` (plus or minus the
    /// jitter of the API sources), its list dropped when older than `max_age`.
    pub fn new(compute: Arc<ComputeClient>, interval: Duration, max_age: Duration) -> Self {
        Self {
            compute,
            interval,
            max_age,
            state: Arc::new(Mutex::new(CatalogState::default())),
        }
    }

    /// The list, young enough; a refresh is started when one is due. Waits for the refresh only
    /// when there is nothing usable (the caller bounds the wait).
    pub async fn current(&self) -> Result<FlavorListing, String> {
        let in_flight = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            self.maybe_refresh(&mut state, now);
            if let Some(listing) = self.fresh(&state, now) {
                return Ok(listing);
            }
            state.in_flight.clone()
        };
        if let Some(refresh) = in_flight {
            refresh.await;
        }
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        self.fresh(&state, now).ok_or_else(|| {
            let last = state
                .last_error
                .clone()
                .unwrap_or_else(|| "no refresh has finished yet".to_string());
            match &state.value {
                Some(old) => format!(
                    "nova's flavor list is {}s old, older than --collector.nova.max-age={}s; last refresh: {last}",
                    now.saturating_duration_since(old.at).as_secs(),
                    self.max_age.as_secs()
                ),
                None => last,
            }
        })
    }

    fn fresh(&self, state: &CatalogState, now: Instant) -> Option<FlavorListing> {
        state
            .value
            .as_ref()
            .filter(|c| now.saturating_duration_since(c.at) <= self.max_age)
            .map(|c| c.listing.clone())
    }

    fn maybe_refresh(&self, state: &mut CatalogState, now: Instant) {
        let due = state.next_refresh.is_none_or(|at| now >= at);
        if !due || state.in_flight.is_some() {
            return;
        }
        // The phase of the first refresh after the first is random, like the API sources'.
        let u = (SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0) as f64)
            / 1e9;
        state.next_refresh = Some(now + next_refresh_delay(state.refreshes, self.interval, u));
        state.refreshes += 1;
        let compute = Arc::clone(&self.compute);
        let shared_state = Arc::clone(&self.state);
        let task = tokio::spawn(async move {
            let result =
                std::panic::AssertUnwindSafe(async move { fetch_flavor_list(&compute).await })
                    .catch_unwind()
                    .await
                    .unwrap_or_else(
                        |_| Err("the flavor list refresh panicked (a bug)".to_string()),
                    );
            let mut state = shared_state.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(flavors) => {
                    let fetched_unix = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs_f64())
                        .unwrap_or(0.0);
                    state.value = Some(CachedListing {
                        listing: FlavorListing {
                            flavors,
                            fetched_unix,
                        },
                        at: Instant::now(),
                    });
                    state.last_error = None;
                }
                Err(error) => state.last_error = Some(error),
            }
            state.in_flight = None;
        });
        state.in_flight = Some(
            async move {
                let _ = task.await;
            }
            .boxed()
            .shared(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flavor(root_gb: u64, swap_mb: u64, ephemeral_gb: u64) -> Flavor {
        Flavor {
            root_gb,
            ephemeral_gb,
            swap_mb,
            boot_from_volume: false,
        }
    }

    #[test]
    fn flags_give_disk_swap_and_ephemeral_in_that_order() {
        let parsed = parse_flavor_flag("m1.db=40,2048,8").unwrap();
        assert_eq!(parsed.name, "m1.db");
        assert_eq!(parsed.flavor, flavor(40, 2048, 8));
        assert_eq!(parsed.origin, FlavorOrigin::Configured);
        assert_eq!(
            parse_flavor_flag("m1.large=80").unwrap().flavor,
            flavor(80, 0, 0)
        );
        assert_eq!(
            parse_flavor_flag("eph=0,,20").unwrap().flavor,
            flavor(0, 0, 20)
        );
        assert_eq!(
            parse_flavor_flag("big=2147483647,2147483647,2147483647")
                .unwrap()
                .flavor,
            flavor(NOVA_MAX_INT, NOVA_MAX_INT, NOVA_MAX_INT)
        );
        // Names are nova's: anything printable, '=' only as the separator's left side ends.
        assert_eq!(parse_flavor_flag("gpu x=1").unwrap().name, "gpu x");
    }

    #[test]
    fn bad_flags_name_the_part_at_fault() {
        let cases = [
            ("m1.large", "no '='"),
            ("=80", "NAME before '=' is empty"),
            ("m1=", "DISK_GB \"\""),
            (
                "m1=x",
                "DISK_GB \"x\" of flavor \"m1\" is not a whole number",
            ),
            ("m1=-1", "DISK_GB \"-1\""),
            ("m1=80,1.5", "SWAP_MB \"1.5\""),
            ("m1=80,0,y", "EPH_GB \"y\""),
            ("m1=80,0,0,0", "4 comma-separated sizes"),
            (
                "m1=2147483648",
                "DISK_GB 2147483648 of flavor \"m1\" is above 2147483647",
            ),
            ("m1=1,2147483648", "SWAP_MB 2147483648"),
            ("m1=1,0,2147483648", "EPH_GB 2147483648"),
            ("a\nb=1", "control characters"),
        ];
        for (text, needle) in cases {
            let error = parse_flavor_flag(text).unwrap_err();
            assert!(error.contains(needle), "{text:?}: {error}");
            assert!(error.starts_with("expected NAME=DISK_GB"), "{error}");
        }
        assert!(parse_flavor_flag(&format!("{}=1", "n".repeat(256))).is_err());
    }

    /// Shaped like nova's `flavors-detail-resp.json` API sample (before 2.75 `swap` is `""`
    /// when there is none; from 2.75 it is 0).
    fn page(next: Option<&str>) -> Value {
        let entry = |id: &str, name: &str, disk: u64, eph: u64, swap: Value, disabled: bool| {
            json!({
                "OS-FLV-DISABLED:disabled": disabled,
                "disk": disk,
                "OS-FLV-EXT-DATA:ephemeral": eph,
                "os-flavor-access:is_public": true,
                "id": id,
                "links": [{"href": format!("http://compute.example.org/v2.1/flavors/{id}"), "rel": "self"}],
                "name": name,
                "ram": 2048,
                "swap": swap,
                "vcpus": 2,
                "rxtx_factor": 1.0
            })
        };
        let mut value = json!({"flavors": [
            entry("1", "m1.small", 20, 0, json!(""), false),
            entry("2", "m1.db", 40, 8, json!(1024), false),
            entry("3", "m1.retired", 160, 0, json!(0), true),
        ]});
        if let Some(marker) = next {
            value["flavors_links"] = json!([{
                "href": format!("http://compute.example.org/v2.1/flavors/detail?is_public=None&limit=3&marker={marker}"),
                "rel": "next"
            }]);
        }
        value
    }

    #[test]
    fn a_page_gives_its_enabled_flavors_and_the_next_query() {
        let (flavors, next) = flavors_of_page(&page(Some("3"))).unwrap();
        assert_eq!(
            flavors
                .iter()
                .map(|f| (f.name.as_str(), f.flavor))
                .collect::<Vec<_>>(),
            vec![
                ("m1.small", flavor(20, 0, 0)),
                ("m1.db", flavor(40, 1024, 8))
            ]
        );
        assert!(flavors.iter().all(|f| f.origin == FlavorOrigin::Nova));
        assert_eq!(next.as_deref(), Some("is_public=None&limit=3&marker=3"));
        assert_eq!(flavors_of_page(&page(None)).unwrap().1, None);
        // An empty page ends the walk even when it links a next one.
        let empty = json!({"flavors": [], "flavors_links": [{"rel": "next", "href": "http://x/flavors/detail?marker=9"}]});
        assert_eq!(flavors_of_page(&empty).unwrap(), (vec![], None));
    }

    #[test]
    fn flavor_names_are_redacted_and_lose_control_characters() {
        crate::redact::register("FlavorPw-77d1", crate::redact::SecretKind::Credential);
        let page = json!({"flavors": [{
            "name": "m1.FlavorPw-77d1\u{1b}[2J\u{202e}x\ny", "disk": 20,
            "OS-FLV-EXT-DATA:ephemeral": 0, "swap": 0}]});
        let (flavors, _) = flavors_of_page(&page).unwrap();
        assert_eq!(flavors[0].name, "m1.<redacted> [2J x y");
    }

    #[test]
    fn a_malformed_page_is_an_error_naming_the_flavor() {
        assert!(flavors_of_page(&json!({"servers": []}))
            .unwrap_err()
            .contains("no \"flavors\" list"));
        let bad = json!({"flavors": [{"name": "m1.bad", "disk": -1}]});
        let error = flavors_of_page(&bad).unwrap_err();
        assert!(error.contains("\"m1.bad\""), "{error}");
        let huge = json!({"flavors": [{"name": "m1.huge", "disk": 2147483648u64}]});
        assert!(flavors_of_page(&huge).is_err());
        let long = json!({"flavors": [{"name": "n".repeat(256), "disk": 1}]});
        assert!(flavors_of_page(&long)
            .unwrap_err()
            .contains("longer than nova's 255"));
        assert!(flavors_of_page(&json!({"flavors": [{"disk": 1}]}))
            .unwrap_err()
            .contains("without a name"));
    }
}
