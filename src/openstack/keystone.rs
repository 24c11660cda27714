//! A Keystone v3 session: obtains a token with the configured method, caches it, renews it
//! before it expires, and finds service endpoints in its catalog. Requests to the services go
//! through [`super::client::ServiceClient`], which takes its tokens, endpoints, HTTP client and
//! body size limit from here; the size-bounded body read and the error texts serve both.
//!
//! Token life cycle (all on the local monotonic clock, measured from when the token was requested,
//! so clock skew between this host and Keystone does not matter and the local view of the expiry
//! is never later than Keystone's):
//! - *fresh* until `renewal_margin` before expiry, where the margin is the smaller of 5 minutes
//!   and 10% of the token's lifetime (a one-hour token is renewed at 55 minutes);
//! - *renewing* after that: the next request authenticates again; if Keystone cannot be reached
//!   the current token is still used (with a warning) until it expires;
//! - *expired*: a new token is required; if Keystone cannot give one the request fails with an
//!   error that says when the old one expired and why no new one could be had.
//!
//! A 401 from a service invalidates the token and the request is retried once with a new one; a
//! second 401 is an error. Authentication is serialised: at most one token request is in flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{ACCEPT, LOCATION};
use reqwest::StatusCode;
use serde::Deserialize;

use super::config::{AppCredential, AuthMethod, CloudConfig, Domain, Named, Secret};
use super::redirect::{self, RequestKind};
use super::ApiError;
use crate::redact::{self, SecretUrl};
use crate::time::{format_rfc3339, parse_rfc3339};

/// The precision of Keystone's token timestamps (fernet tokens: whole seconds).
const TIMESTAMP_PRECISION_SECONDS: f64 = 1.0;

/// The largest response body the session reads (16 MiB): a provider's allocations on a big
/// host are a few hundred KiB; anything bigger is not what we asked for.
pub const BODY_LIMIT: u64 = 16 * 1024 * 1024;

/// Never renew earlier than this before expiry.
const MAX_RENEWAL_MARGIN: Duration = Duration::from_secs(300);

/// Where a token is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Use it.
    Fresh,
    /// Still valid, but get a new one if possible.
    Renew,
    /// No longer valid.
    Expired,
}

/// The state of a token of `lifetime` that arrived `age` ago (see the module doc).
pub fn token_state(lifetime: Duration, age: Duration) -> TokenState {
    let margin = MAX_RENEWAL_MARGIN.min(lifetime / 10);
    if age >= lifetime {
        TokenState::Expired
    } else if age + margin >= lifetime {
        TokenState::Renew
    } else {
        TokenState::Fresh
    }
}

/// One endpoint of a catalog entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CatalogEndpoint {
    /// `public`, `internal` or `admin`.
    pub interface: String,
    /// The region id.
    #[serde(default)]
    pub region_id: Option<String>,
    /// The region, as older catalogs spell it (Keystone sends both).
    #[serde(default)]
    pub region: Option<String>,
    /// The URL.
    pub url: String,
}

/// One service of the catalog.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CatalogService {
    /// Service type, e.g. `placement`.
    #[serde(rename = "type")]
    pub service_type: String,
    /// Its endpoints.
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

/// A token with what came with it.
#[derive(Debug)]
pub struct Token {
    pub(super) value: Secret,
    arrived: Instant,
    lifetime: Duration,
    expires_unix: f64,
    catalog: Vec<CatalogService>,
    roles: Vec<String>,
    pub(super) serial: u64,
}

impl CatalogEndpoint {
    /// The endpoint's region, whichever way the catalog spells it.
    pub fn region(&self) -> Option<&str> {
        self.region_id.as_deref().or(self.region.as_deref())
    }
}

impl Token {
    fn state(&self, now: Instant) -> TokenState {
        token_state(self.lifetime, now.saturating_duration_since(self.arrived))
    }

    /// The roles the token carries.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
}

#[derive(Debug, Deserialize)]
struct TokenBody {
    token: TokenFields,
}

#[derive(Debug, Deserialize)]
struct TokenFields {
    expires_at: String,
    #[serde(default)]
    issued_at: Option<String>,
    #[serde(default)]
    catalog: Vec<CatalogService>,
    #[serde(default)]
    roles: Vec<RoleRef>,
}

#[derive(Debug, Deserialize)]
struct RoleRef {
    name: String,
}

/// An authenticated session with one cloud.
pub struct Session {
    client: reqwest::Client,
    cloud: CloudConfig,
    token: tokio::sync::Mutex<Option<Arc<Token>>>,
    serial: AtomicU64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("auth_url", &self.cloud.auth_url)
            .field("who", &self.cloud.who())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for `cloud`; every HTTP request (auth included) is bounded by `timeout`.
    pub fn new(cloud: CloudConfig, timeout: Duration) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("nova-lvm-exporter/", env!("CARGO_PKG_VERSION")))
            // Never re-send a request by itself: every redirect reaches the caller, which
            // follows it only as `super::redirect` allows.
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(cloud.insecure);
        if let Some(pem) = &cloud.cacert_pem {
            let path = cloud
                .cacert_path
                .as_ref()
                .map_or(String::new(), |p| p.display().to_string());
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("CA bundle {path}: {e}"))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Self {
            client,
            cloud,
            token: tokio::sync::Mutex::new(None),
            serial: AtomicU64::new(0),
        })
    }

    /// The cloud this session talks to.
    pub fn cloud(&self) -> &CloudConfig {
        &self.cloud
    }

    /// The HTTP client every request of this session goes through (its timeouts and CA bundle).
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.client
    }

    /// A valid token: the cached one, a renewed one, or a new one.
    pub async fn token(&self) -> Result<Arc<Token>, ApiError> {
        let mut slot = self.token.lock().await;
        let now = Instant::now();
        let previous = slot.clone();
        if let Some(token) = &previous {
            match token.state(now) {
                TokenState::Fresh => return Ok(Arc::clone(token)),
                TokenState::Renew => {
                    return match self.authenticate().await {
                        Ok(new) => {
                            *slot = Some(Arc::clone(&new));
                            Ok(new)
                        }
                        Err(error) => {
                            tracing::warn!(
                                error = %error,
                                expires_at = %format_rfc3339(token.expires_unix),
                                "cannot renew the Keystone token; using the current one until it expires"
                            );
                            Ok(Arc::clone(token))
                        }
                    };
                }
                TokenState::Expired => {}
            }
        }
        match self.authenticate().await {
            Ok(new) => {
                *slot = Some(Arc::clone(&new));
                Ok(new)
            }
            Err(error) => match previous {
                Some(old) => Err(ApiError::TokenExpired {
                    expired_at: format_rfc3339(old.expires_unix),
                    cause: Box::new(error),
                }),
                None => Err(error),
            },
        }
    }

    /// Forgets the token `serial` (after a 401), unless it was already replaced.
    pub(super) async fn invalidate(&self, serial: u64) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| t.serial == serial) {
            *slot = None;
        }
    }

    fn auth_body(&self) -> serde_json::Value {
        use serde_json::json;
        fn domain(d: &Domain) -> serde_json::Value {
            match d {
                Domain::Id(id) => json!({ "id": id }),
                Domain::Name(name) => json!({ "name": name }),
            }
        }
        fn named(n: &Named) -> serde_json::Value {
            match n {
                Named::Id(id) => json!({ "id": id }),
                Named::Name { name, domain: d } => json!({ "name": name, "domain": domain(d) }),
            }
        }
        match &self.cloud.method {
            AuthMethod::Password {
                user,
                password,
                project,
            } => {
                let mut user = named(user);
                user["password"] = json!(password.expose());
                json!({ "auth": {
                    "identity": { "methods": ["password"], "password": { "user": user } },
                    "scope": { "project": named(project) }
                }})
            }
            AuthMethod::ApplicationCredential { credential, secret } => {
                let mut cred = match credential {
                    AppCredential::Id(id) => json!({ "id": id }),
                    AppCredential::Name { name, user } => {
                        json!({ "name": name, "user": named(user) })
                    }
                };
                cred["secret"] = json!(secret.expose());
                json!({ "auth": { "identity": {
                    "methods": ["application_credential"],
                    "application_credential": cred
                }}})
            }
        }
    }

    async fn authenticate(&self) -> Result<Arc<Token>, ApiError> {
        let url = format!("{}/auth/tokens", self.cloud.auth_url.expose());
        let unreachable = |e: reqwest::Error| ApiError::Unreachable {
            service: "keystone".into(),
            url: url.clone(),
            message: error_chain(&e),
        };
        // The token's life is measured from when it was requested: it was issued after that, so
        // the local view of its expiry is never later than Keystone's.
        let requested = Instant::now();
        let response = self
            .client
            .post(&url)
            .header(ACCEPT, "application/json")
            .json(&self.auth_body())
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok());
            let from = response.url().clone();
            let refusal = redirect::judge(RequestKind::Token, &from, location, 0)
                .err()
                .unwrap_or(redirect::Refusal::TokenRequest);
            return Err(ApiError::Redirected {
                service: "keystone".into(),
                url,
                status: status.as_u16(),
                target: redirect::shown_target(&from, location),
                reason: refusal.to_string(),
                fix: format!(
                    "set the Keystone URL (auth_url, OS_AUTH_URL; from {}) to the URL Keystone answers at itself, without a redirect",
                    self.cloud.origin
                ),
            });
        }
        // Registered with the redactor before anything (the body, an error) can show it.
        let subject = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(Secret::token);
        let body = read_body(response, BODY_LIMIT, "keystone", &url).await?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(ApiError::AuthRejected {
                url,
                who: self.cloud.who(),
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
        if !status.is_success() {
            return Err(ApiError::Status {
                service: "keystone".into(),
                url,
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
        let invalid = |message: String| ApiError::InvalidBody {
            service: "keystone".into(),
            url: url.clone(),
            message,
        };
        let value = subject.ok_or_else(|| invalid("no X-Subject-Token header".into()))?;
        let parsed: TokenBody =
            serde_json::from_slice(&body).map_err(|e| invalid(format!("{e}")))?;
        let expires_unix = parse_rfc3339(&parsed.token.expires_at).ok_or_else(|| {
            invalid(format!(
                "token.expires_at {:?} is not a timestamp",
                redact::upstream_text(&parsed.token.expires_at)
            ))
        })?;
        let issued_unix = parsed
            .token
            .issued_at
            .as_deref()
            .and_then(parse_rfc3339)
            .unwrap_or_else(unix_now);
        // Keystone's fernet tokens carry whole-second timestamps: take a second off so that the
        // local view of the expiry is never later than Keystone's.
        let lifetime = Duration::try_from_secs_f64(
            (expires_unix - issued_unix - TIMESTAMP_PRECISION_SECONDS).max(0.0),
        )
        .unwrap_or(Duration::ZERO);
        // A catalog URL with user info: registered, so that it never shows.
        for endpoint in parsed.token.catalog.iter().flat_map(|s| &s.endpoints) {
            SecretUrl::new(endpoint.url.as_str());
        }
        let serial = self.serial.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(
            auth_url = %self.cloud.auth_url,
            who = %self.cloud.who(),
            expires_at = %parsed.token.expires_at,
            "obtained a Keystone token"
        );
        Ok(Arc::new(Token {
            value,
            arrived: requested,
            lifetime,
            expires_unix,
            catalog: parsed.token.catalog,
            roles: parsed.token.roles.into_iter().map(|r| r.name).collect(),
            serial,
        }))
    }

    /// The endpoint of `service_type` for the configured interface and region: the override
    /// when one is configured, else from the token's catalog.
    pub fn endpoint(&self, token: &Token, service_type: &str) -> Result<String, ApiError> {
        if let Some(url) = self.cloud.endpoint_overrides.get(service_type) {
            return Ok(url.expose().to_string());
        }
        select_endpoint(
            &token.catalog,
            service_type,
            self.cloud.interface.as_str(),
            self.cloud.region_name.as_deref(),
        )
    }

    /// Where the endpoint of `service_type` is configured, for a message that asks to fix it:
    /// the override and where it was set, or the catalog entry (interface and region).
    pub fn endpoint_fix(&self, service_type: &str) -> String {
        if self.cloud.endpoint_overrides.contains_key(service_type) {
            return format!(
                "fix {service_type}_endpoint_override (OS_{}_ENDPOINT; from {}) to the URL {service_type} answers at itself",
                service_type.to_ascii_uppercase(),
                self.cloud.origin
            );
        }
        format!(
            "fix the {service_type} endpoint for interface {}{} in Keystone's service catalog (openstack endpoint list --service {service_type}) to the URL {service_type} answers at itself",
            self.cloud.interface.as_str(),
            self.cloud
                .region_name
                .as_deref()
                .map_or(String::new(), |r| format!(" in region {r}"))
        )
    }
}

/// Picks the endpoint of `service_type` for `interface` in `region` (any region when `None`,
/// as long as only one offers it).
pub fn select_endpoint(
    catalog: &[CatalogService],
    service_type: &str,
    interface: &str,
    region: Option<&str>,
) -> Result<String, ApiError> {
    let offered: Vec<&CatalogEndpoint> = catalog
        .iter()
        .filter(|s| s.service_type == service_type)
        .flat_map(|s| &s.endpoints)
        .collect();
    let matching: Vec<&CatalogEndpoint> = offered
        .iter()
        .copied()
        .filter(|e| e.interface == interface)
        .filter(|e| region.is_none_or(|r| e.region() == Some(r)))
        .collect();
    let describe = |endpoints: &[&CatalogEndpoint]| {
        endpoints
            .iter()
            .map(|e| format!("{} in {}", e.interface, e.region().unwrap_or("no region")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let wanted = format!(
        "interface {interface}{}",
        region.map_or(String::new(), |r| format!(" in region {r}"))
    );
    match matching.as_slice() {
        [] if offered.is_empty() => Err(ApiError::NoEndpoint(format!(
            "the service catalog has no {service_type} service (the exporter's token may lack a project scope, or {service_type} is not registered)"
        ))),
        [] => Err(ApiError::NoEndpoint(format!(
            "the service catalog has no {service_type} endpoint for {wanted} (it has: {}); set interface/OS_INTERFACE or region_name/OS_REGION_NAME",
            describe(&offered)
        ))),
        [one] => Ok(one.url.trim_end_matches('/').to_string()),
        several => {
            let first = several[0].url.trim_end_matches('/');
            if several.iter().all(|e| e.url.trim_end_matches('/') == first) {
                Ok(first.to_string())
            } else {
                Err(ApiError::NoEndpoint(format!(
                    "the service catalog has several {service_type} endpoints for {wanted} ({}); set region_name/OS_REGION_NAME",
                    describe(several)
                )))
            }
        }
    }
}

/// Reads a response body, stopping as soon as it exceeds `limit`.
pub(super) async fn read_body(
    mut response: reqwest::Response,
    limit: u64,
    service: &str,
    url: &str,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::BodyTooLarge {
        service: service.into(),
        url: url.into(),
        limit,
    };
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => {
                return Err(ApiError::Unreachable {
                    service: service.into(),
                    url: url.into(),
                    message: format!("timed out reading the response body: {}", error_chain(&e)),
                })
            }
            Err(e) => {
                return Err(ApiError::InvalidBody {
                    service: service.into(),
                    url: url.into(),
                    message: format!(
                        "the body ended early after {} bytes: {}",
                        body.len(),
                        error_chain(&e)
                    ),
                })
            }
        }
    }
}

/// Whether a body that did not say it is JSON starts like JSON anyway.
pub(super) fn looks_like_json(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| matches!(b, b'{' | b'['))
}

/// The error message of an OpenStack error body (placement's `errors[0].detail`, keystone's
/// `error.message`), or the start of the body; either way through
/// [`redact::upstream_text`]: redacted, without control characters, cut short.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let candidates = [
            value.pointer("/errors/0/detail"),
            value.pointer("/errors/0/title"),
            value.pointer("/error/message"),
            value.pointer("/message"),
        ];
        if let Some(text) = candidates.into_iter().flatten().find_map(|v| v.as_str()) {
            return redact::upstream_text(text);
        }
        // nova: {"forbidden": {"code": 403, "message": "..."}}, {"itemNotFound": {...}}, ...
        if let Some(text) = value.as_object().and_then(|object| {
            object
                .values()
                .find_map(|inner| inner.get("message").and_then(|m| m.as_str()))
        }) {
            return redact::upstream_text(text);
        }
    }
    snippet(body)
}

/// The start of a body that is not an OpenStack error document. The whole body (bounded by the
/// session's body limit) is redacted before it is cut, so no cut leaves part of a secret.
pub(super) fn snippet(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty body)".to_string();
    }
    redact::upstream_text(&String::from_utf8_lossy(body))
}

/// A reqwest error with its causes (reqwest's own Display is terse: "error sending request"),
/// without the URL, which the caller's message already names.
pub(super) fn error_chain(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_string()
    } else {
        let full = error.to_string();
        match error.url() {
            Some(url) => full.replace(&format!(" for url ({url})"), ""),
            None => full,
        }
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_renew_at_the_smaller_of_five_minutes_and_a_tenth_of_their_life() {
        let hour = Duration::from_secs(3600);
        assert_eq!(token_state(hour, Duration::ZERO), TokenState::Fresh);
        assert_eq!(
            token_state(hour, Duration::from_secs(3299)),
            TokenState::Fresh
        );
        assert_eq!(
            token_state(hour, Duration::from_secs(3300)),
            TokenState::Renew
        );
        assert_eq!(
            token_state(hour, Duration::from_secs(3599)),
            TokenState::Renew
        );
        assert_eq!(token_state(hour, hour), TokenState::Expired);
        let short = Duration::from_secs(30);
        assert_eq!(
            token_state(short, Duration::from_secs(26)),
            TokenState::Fresh
        );
        assert_eq!(
            token_state(short, Duration::from_secs(27)),
            TokenState::Renew
        );
        assert_eq!(
            token_state(short, Duration::from_secs(31)),
            TokenState::Expired
        );
        assert_eq!(
            token_state(Duration::ZERO, Duration::ZERO),
            TokenState::Expired
        );
    }

    fn catalog() -> Vec<CatalogService> {
        serde_json::from_str(
            r#"[
              {"type": "identity", "endpoints": [{"interface": "public", "region_id": "RegionOne", "url": "http://k/v3/"}]},
              {"type": "placement", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": "https://placement.example/"},
                {"interface": "internal", "region_id": "RegionOne", "url": "http://10.0.0.5:8778"},
                {"interface": "internal", "region_id": "RegionTwo", "url": "http://10.1.0.5:8778"}
              ]}
            ]"#,
        )
        .unwrap()
    }

    #[test]
    fn endpoints_are_chosen_by_interface_and_region() {
        let catalog = catalog();
        assert_eq!(
            select_endpoint(&catalog, "placement", "internal", Some("RegionOne")).unwrap(),
            "http://10.0.0.5:8778"
        );
        assert_eq!(
            select_endpoint(&catalog, "placement", "internal", Some("RegionTwo")).unwrap(),
            "http://10.1.0.5:8778"
        );
        assert_eq!(
            select_endpoint(&catalog, "placement", "public", None).unwrap(),
            "https://placement.example"
        );
        let err = select_endpoint(&catalog, "placement", "internal", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("several placement endpoints"), "{err}");
        assert!(err.contains("region_name/OS_REGION_NAME"), "{err}");
        let err = select_endpoint(&catalog, "placement", "admin", Some("RegionOne"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no placement endpoint for interface admin in region RegionOne"),
            "{err}"
        );
        assert!(err.contains("internal in RegionTwo"), "{err}");
        let err = select_endpoint(&catalog, "compute", "internal", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no compute service"), "{err}");
    }

    #[test]
    fn error_messages_come_from_openstack_error_bodies() {
        assert_eq!(
            error_message(br#"{"errors": [{"status": 403, "title": "Forbidden", "detail": "Policy does not allow placement:resource_providers:list to be performed."}]}"#),
            "Policy does not allow placement:resource_providers:list to be performed."
        );
        assert_eq!(
            error_message(br#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#),
            "The request you have made requires authentication."
        );
        assert_eq!(
            error_message(b"<html>\n<body>Bad   Gateway</body></html>"),
            "<html> <body>Bad Gateway</body></html>"
        );
        assert_eq!(
            error_message(br#"{"forbidden": {"code": 403, "message": "Policy doesn't allow os_compute_api:os-hypervisors:list-detail to be performed."}}"#),
            "Policy doesn't allow os_compute_api:os-hypervisors:list-detail to be performed."
        );
        assert_eq!(error_message(b""), "(empty body)");
        assert!(error_message(&[b'x'; 5000]).len() <= redact::UPSTREAM_TEXT_LIMIT + 3);
    }

    #[test]
    fn the_auth_body_carries_the_secret_but_debug_does_not() {
        let cloud = crate::openstack::config::CloudConfig {
            auth_url: SecretUrl::new("http://k/v3"),
            method: AuthMethod::ApplicationCredential {
                credential: AppCredential::Id("ac1".into()),
                secret: Secret::new("very-secret-value"),
            },
            region_name: None,
            interface: crate::openstack::config::Interface::Internal,
            cacert_pem: None,
            cacert_path: None,
            insecure: false,
            endpoint_overrides: Default::default(),
            origin: "test".into(),
        };
        let session = Session::new(cloud, Duration::from_secs(1)).unwrap();
        let body = session.auth_body();
        assert_eq!(
            body.pointer("/auth/identity/application_credential/secret")
                .and_then(|v| v.as_str()),
            Some("very-secret-value")
        );
        assert!(!format!("{session:?}").contains("very-secret-value"));
    }
}
