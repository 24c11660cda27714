//! One client for a microversioned OpenStack service (compute, placement) over the Keystone
//! [`Session`]: what the nova and placement sources share, so that they keep only their domain
//! logic.
//!
//! - **Microversioned GET** ([`ServiceClient::get`]): every request carries the negotiated
//!   microversion in `OpenStack-API-Version: <service type> <major.minor>` (and, for a service
//!   that still reads one, its older header with the bare version, e.g. nova's
//!   `X-OpenStack-Nova-API-Version`), the token, and `Accept: application/json`. A 401
//!   invalidates the token and the request is retried once with a new one.
//! - **Version negotiation** ([`version_range`], [`negotiate`]): the service's version document
//!   (`GET /`, once per process while it succeeds) gives the server's range; the source's
//!   [`VersionPolicy`] says which entry to read and which version to pick from that range.
//! - **Redirects** ([`super::redirect`]): followed only to the same origin (scheme, host,
//!   port) as the endpoint, at most three times; any other target, and an https to http
//!   downgrade, is an [`ApiError::Redirected`] naming the target and the endpoint override or
//!   catalog entry to fix. The token never leaves the endpoint's origin.
//! - **Limits**: the body is read up to the session's size limit and no further; each request is
//!   bounded by the client's own timeout when it has one, else by the session's.
//! - **Errors**: every HTTP or transport failure becomes one [`ApiError`]: unreachable, 401 after
//!   re-authenticating, 403 with the role the service needs and the roles the token has, any
//!   other status, a body too large, or a body that is not the JSON expected. What the server
//!   said enters a message only through [`crate::redact::upstream_text`], and the message is
//!   displayed through the redactor.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::keystone::{
    error_chain, error_message, looks_like_json, read_body, snippet, Session, Token, BODY_LIMIT,
};
use super::microversion::Microversion;
use super::redirect::{self, RequestKind};
use super::ApiError;
use crate::redact;

/// What the client needs to know about one microversioned service.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// The service type, in the catalog and in the `OpenStack-API-Version` header (`compute`).
    pub service_type: &'static str,
    /// How the log names the service (`compute (nova)`).
    pub display_name: &'static str,
    /// The service's older header that takes the bare version, sent as well when set
    /// (`X-OpenStack-Nova-API-Version`).
    pub legacy_header: Option<&'static str>,
    /// What a 403 means for this service: the role it needs.
    pub forbidden_hint: &'static str,
    /// How to read the version document and pick a microversion.
    pub versions: VersionPolicy,
}

/// How a source reads its service's version document and picks a microversion from the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionPolicy {
    /// The API entry of a `versions` list: the one whose `id` starts with this (`v2.1`, `v1`).
    pub api_id: &'static str,
    /// The field holding the server's maximum (`version` for nova, `max_version` for placement).
    pub max_field: &'static str,
    /// What an empty version field stands for (nova's v2.1 API without microversions: 2.1);
    /// `None`: an empty field is an error.
    pub unversioned: Option<Microversion>,
    /// The oldest microversion the source works with.
    pub oldest: Microversion,
    /// The newest microversion the source asks for.
    pub newest: Microversion,
    /// What to do when the server's minimum is above `newest`.
    pub above_newest: AboveNewest,
}

/// What a source does with a server whose oldest microversion is above the newest it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AboveNewest {
    /// Use the server's minimum (nova: it then answers without fields the source explains).
    ServerMinimum,
    /// Refuse the server.
    Refuse,
}

/// The microversions a server supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    /// `min_version`.
    pub min: Microversion,
    /// The maximum (`version` or `max_version`).
    pub max: Microversion,
}

impl std::fmt::Display for VersionRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} to {}", self.min, self.max)
    }
}

/// The microversion in use and the server's range it was picked from (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The microversion every request asks for.
    pub microversion: Microversion,
    /// What the server offered.
    pub server: VersionRange,
}

/// The server's range from a version document: `{"version": {...}}` (a versioned endpoint) or
/// `{"versions": [...]}` (the API root, read at the entry `policy.api_id` names).
pub fn version_range(
    document: &Value,
    service_type: &str,
    policy: &VersionPolicy,
) -> Result<VersionRange, String> {
    let entry = match (document.get("version"), document.get("versions")) {
        (Some(entry), _) => entry,
        (None, Some(Value::Array(list))) => list
            .iter()
            .find(|v| {
                v.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.starts_with(policy.api_id))
            })
            .ok_or_else(|| {
                format!(
                    "the {service_type} version document lists no {} API",
                    policy.api_id
                )
            })?,
        _ => {
            return Err(format!(
                "the {service_type} version document has no \"version\" or \"versions\""
            ))
        }
    };
    let parse = |name: &str| -> Result<Microversion, String> {
        let text = entry.get(name).and_then(Value::as_str).unwrap_or("");
        match policy.unversioned {
            Some(unversioned) if text.is_empty() => Ok(unversioned),
            _ => Microversion::parse(text).ok_or_else(|| {
                format!(
                    "the {service_type} version document has {name} {:?}, not a microversion",
                    redact::upstream_text(text)
                )
            }),
        }
    };
    let (min, max) = (parse("min_version")?, parse(policy.max_field)?);
    if min > max {
        return Err(format!(
            "the {service_type} version document has min_version {min} above {} {max}",
            policy.max_field
        ));
    }
    Ok(VersionRange { min, max })
}

/// Picks the microversion from the server's range: the policy's newest when offered, else the
/// server's maximum; when the server's minimum is above the newest, its minimum or a refusal,
/// as the policy says. A server whose range misses the policy's is refused.
pub fn negotiate(server: VersionRange, policy: &VersionPolicy) -> Result<Microversion, String> {
    let chosen = server.max.min(policy.newest);
    if chosen >= server.min && chosen >= policy.oldest {
        return Ok(chosen);
    }
    if policy.above_newest == AboveNewest::ServerMinimum && server.min > policy.newest {
        return Ok(server.min);
    }
    Err(format!(
        "the server supports microversions {server}; the exporter works with {} to {}",
        policy.oldest, policy.newest
    ))
}

/// A client of one microversioned service (see the module doc).
pub struct ServiceClient {
    session: Arc<Session>,
    service: Service,
    timeout: Option<Duration>,
    /// Set once a negotiation succeeded; concurrent first callers share one negotiation.
    negotiated: tokio::sync::OnceCell<Negotiated>,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("service", &self.service.service_type)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// One try of a request.
enum Attempt {
    /// The body and the URL it came from.
    Done(Vec<u8>, String),
    /// 401: the URL and the server's message.
    Unauthorized(String, String),
}

impl ServiceClient {
    /// A client of `service` through `session`, bounded by the session's timeout.
    pub fn new(session: Arc<Session>, service: Service) -> Self {
        Self {
            session,
            service,
            timeout: None,
            negotiated: tokio::sync::OnceCell::new(),
        }
    }

    /// Bounds each request by `timeout` instead of the session's own (a session shared with
    /// another source); `None` keeps the session's.
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The microversion in use: negotiated from the version document on the first call (one
    /// GET), remembered once that succeeded.
    pub async fn negotiated(&self) -> Result<Negotiated, ApiError> {
        // One negotiation at a time: the users of a shared client (the nova source, the flavor
        // list, the orphan lookups) start together on the first scrape, and read the version
        // document once; a failed negotiation is tried again by the next call.
        self.negotiated
            .get_or_try_init(|| self.negotiate())
            .await
            .copied()
    }

    /// Reads the version document and negotiates the microversion.
    async fn negotiate(&self) -> Result<Negotiated, ApiError> {
        let (document, url) = self.request::<Value>("/", None).await?;
        let policy = &self.service.versions;
        let service_type = self.service.service_type;
        let server = version_range(&document, service_type, policy).map_err(|message| {
            ApiError::InvalidBody {
                service: service_type.into(),
                url: url.clone(),
                message,
            }
        })?;
        let microversion =
            negotiate(server, policy).map_err(|message| ApiError::NoCommonMicroversion {
                service: service_type.into(),
                url,
                message,
            })?;
        tracing::info!(
            microversion = %microversion,
            server = %server,
            "negotiated the {} microversion",
            self.service.display_name
        );
        Ok(Negotiated {
            microversion,
            server,
        })
    }

    /// GETs `path` (below the service's endpoint, starting with `/`) at the negotiated
    /// microversion and parses the JSON body.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let microversion = self.negotiated().await?.microversion;
        Ok(self.request(path, Some(microversion)).await?.0)
    }

    /// GETs `path` with `microversion` (none: the service's default), re-authenticating once on
    /// a 401; the parsed body and the URL it came from.
    async fn request<T: DeserializeOwned>(
        &self,
        path: &str,
        microversion: Option<Microversion>,
    ) -> Result<(T, String), ApiError> {
        let service_type = self.service.service_type;
        let headers = self.microversion_headers(microversion);
        let token = self.session.token().await?;
        let (body, url) = match self.get_once(&token, path, &headers).await? {
            Attempt::Done(body, url) => (body, url),
            Attempt::Unauthorized(url, message) => {
                tracing::info!(
                    url = %redact::redact(&url),
                    message = %message,
                    "the token was refused (401); re-authenticating once"
                );
                self.session.invalidate(token.serial).await;
                let token = self.session.token().await?;
                match self.get_once(&token, path, &headers).await? {
                    Attempt::Done(body, url) => (body, url),
                    Attempt::Unauthorized(url, message) => {
                        return Err(ApiError::Unauthorized {
                            service: service_type.into(),
                            url,
                            message,
                        })
                    }
                }
            }
        };
        match serde_json::from_slice(&body) {
            Ok(parsed) => Ok((parsed, url)),
            Err(e) => Err(ApiError::InvalidBody {
                service: service_type.into(),
                url,
                message: format!("not the JSON expected: {e}"),
            }),
        }
    }

    /// The headers that ask for `microversion`.
    fn microversion_headers(&self, microversion: Option<Microversion>) -> Vec<(String, String)> {
        let Some(mv) = microversion else {
            return Vec::new();
        };
        let mut headers = vec![(
            "OpenStack-API-Version".to_string(),
            format!("{} {mv}", self.service.service_type),
        )];
        if let Some(legacy) = self.service.legacy_header {
            headers.push((legacy.to_string(), mv.to_string()));
        }
        headers
    }

    async fn get_once(
        &self,
        token: &Token,
        path: &str,
        extra_headers: &[(String, String)],
    ) -> Result<Attempt, ApiError> {
        let service = self.service.service_type;
        let endpoint = self.session.endpoint(token, service)?;
        let url = format!("{}{}", endpoint.trim_end_matches('/'), path);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let mut auth =
            HeaderValue::from_str(token.value.expose()).map_err(|_| ApiError::InvalidBody {
                service: "keystone".into(),
                url: format!("{}/auth/tokens", self.session.cloud().auth_url.expose()),
                message: "the token is not a valid header value".into(),
            })?;
        auth.set_sensitive(true);
        headers.insert(HeaderName::from_static("x-auth-token"), auth);
        for (name, value) in extra_headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        let mut url = url;
        let mut hops = 0;
        let response = loop {
            let mut builder = self.session.http().get(&url).headers(headers.clone());
            if let Some(timeout) = self.timeout {
                builder = builder.timeout(timeout);
            }
            let response = builder.send().await.map_err(|e| ApiError::Unreachable {
                service: service.into(),
                url: url.clone(),
                message: error_chain(&e),
            })?;
            if !response.status().is_redirection() {
                break response;
            }
            let from = response.url().clone();
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok());
            match redirect::judge(RequestKind::ServiceGet, &from, location, hops) {
                Ok(next) => {
                    tracing::debug!(
                        url = %redact::redact(&url),
                        target = %redirect::shown_target(&from, location),
                        "following a same-origin redirect"
                    );
                    url = next.to_string();
                    hops += 1;
                }
                Err(refusal) => {
                    return Err(ApiError::Redirected {
                        service: service.into(),
                        url,
                        status: response.status().as_u16(),
                        target: redirect::shown_target(&from, location),
                        reason: refusal.to_string(),
                        fix: self.session.endpoint_fix(service),
                    })
                }
            }
        };
        let status = response.status();
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let body = read_body(response, BODY_LIMIT, service, &url).await?;
        match status {
            s if s.is_success() => {
                if !is_json && !body.is_empty() && !looks_like_json(&body) {
                    return Err(ApiError::InvalidBody {
                        service: service.into(),
                        url,
                        message: format!("not JSON: {}", snippet(&body)),
                    });
                }
                Ok(Attempt::Done(body, url))
            }
            StatusCode::UNAUTHORIZED => Ok(Attempt::Unauthorized(url, error_message(&body))),
            StatusCode::FORBIDDEN => Err(ApiError::Forbidden {
                service: service.into(),
                url,
                message: error_message(&body),
                hint: format!(
                    "; {} (the token has roles: {})",
                    self.service.forbidden_hint,
                    if token.roles().is_empty() {
                        "none".to_string()
                    } else {
                        token.roles().join(", ")
                    }
                ),
            }),
            other => Err(ApiError::Status {
                service: service.into(),
                url,
                status: other.as_u16(),
                message: error_message(&body),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(text: &str) -> Microversion {
        Microversion::parse(text).unwrap()
    }

    /// A policy like nova's: a `version` field, empty meaning 2.1, the server's minimum taken.
    const COMPUTE_LIKE: VersionPolicy = VersionPolicy {
        api_id: "v2.1",
        max_field: "version",
        unversioned: Some(Microversion(2, 1)),
        oldest: Microversion(2, 1),
        newest: Microversion(2, 87),
        above_newest: AboveNewest::ServerMinimum,
    };

    /// A policy like placement's: `max_version`, nothing above the newest.
    const PLACEMENT_LIKE: VersionPolicy = VersionPolicy {
        api_id: "v1",
        max_field: "max_version",
        unversioned: None,
        oldest: Microversion(1, 0),
        newest: Microversion(1, 39),
        above_newest: AboveNewest::Refuse,
    };

    fn range(min: &str, max: &str) -> VersionRange {
        VersionRange {
            min: mv(min),
            max: mv(max),
        }
    }

    #[test]
    fn the_newest_offered_is_picked_and_a_server_above_it_is_taken_or_refused_by_policy() {
        assert_eq!(
            negotiate(range("2.1", "2.104"), &COMPUTE_LIKE),
            Ok(mv("2.87"))
        );
        assert_eq!(
            negotiate(range("2.1", "2.60"), &COMPUTE_LIKE),
            Ok(mv("2.60"))
        );
        assert_eq!(
            negotiate(range("2.90", "2.104"), &COMPUTE_LIKE),
            Ok(mv("2.90"))
        );
        assert_eq!(
            negotiate(range("1.0", "1.42"), &PLACEMENT_LIKE),
            Ok(mv("1.39"))
        );
        assert_eq!(
            negotiate(range("1.0", "1.17"), &PLACEMENT_LIKE),
            Ok(mv("1.17"))
        );
        let err = negotiate(range("1.40", "1.50"), &PLACEMENT_LIKE).unwrap_err();
        assert!(err.contains("1.40 to 1.50"), "{err}");
        assert!(err.contains("works with 1.0 to 1.39"), "{err}");
        // Below the oldest the source works with: refused whatever the policy for newer ones.
        assert!(negotiate(range("0.1", "0.9"), &PLACEMENT_LIKE).is_err());
    }

    #[test]
    fn version_documents_are_read_at_the_policys_entry_and_fields() {
        let placement = serde_json::json!({"versions": [
            {"id": "v1.0", "max_version": "1.39", "min_version": "1.0", "status": "CURRENT"}]});
        assert_eq!(
            version_range(&placement, "placement", &PLACEMENT_LIKE),
            Ok(range("1.0", "1.39"))
        );
        let root = serde_json::json!({"versions": [
            {"id": "v2.0", "version": "", "min_version": "", "status": "DEPRECATED"},
            {"id": "v2.1", "version": "2.96", "min_version": "2.1", "status": "CURRENT"}]});
        assert_eq!(
            version_range(&root, "compute", &COMPUTE_LIKE),
            Ok(range("2.1", "2.96"))
        );
        // An empty field is the unversioned API where the policy says so, an error otherwise.
        let empty =
            serde_json::json!({"version": {"id": "v2.1", "version": "", "min_version": ""}});
        assert_eq!(
            version_range(&empty, "compute", &COMPUTE_LIKE),
            Ok(range("2.1", "2.1"))
        );
        let err = version_range(
            &serde_json::json!({"versions": [{"id": "v1.0", "min_version": "1.0"}]}),
            "placement",
            &PLACEMENT_LIKE,
        )
        .unwrap_err();
        assert!(err.contains("max_version \"\""), "{err}");
        let err = version_range(&root, "placement", &PLACEMENT_LIKE).unwrap_err();
        assert!(err.contains("lists no v1 API"), "{err}");
        assert!(version_range(&serde_json::json!({"x": 1}), "compute", &COMPUTE_LIKE).is_err());
        let bad = serde_json::json!({"version": {"version": "two", "min_version": "2.1"}});
        let err = version_range(&bad, "compute", &COMPUTE_LIKE).unwrap_err();
        assert!(err.contains("\"two\""), "{err}");
        let inverted = serde_json::json!({"version": {"version": "2.1", "min_version": "2.5"}});
        let err = version_range(&inverted, "compute", &COMPUTE_LIKE).unwrap_err();
        assert!(err.contains("min_version 2.5 above version 2.1"), "{err}");
    }

    #[test]
    fn a_version_text_from_the_server_is_bounded_in_the_message() {
        let long = "9".repeat(100_000);
        let doc = serde_json::json!({"version": {"version": long, "min_version": "2.1"}});
        let err = version_range(&doc, "compute", &COMPUTE_LIKE).unwrap_err();
        assert!(err.len() < 1_000, "{} bytes", err.len());
    }
}
