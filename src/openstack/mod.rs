//! OpenStack API access: Keystone v3 authentication with the conventions operators already use
//! (`clouds.yaml` + `secure.yaml`, or `OS_*` environment variables), endpoint discovery from the
//! service catalog, and authenticated, size-bounded JSON requests.
//!
//! - [`config`]: where credentials come from, resolved into one [`config::CloudConfig`];
//!   secrets are wrapped in [`config::Secret`], whose `Debug` and `Display` never show them.
//! - [`keystone`]: a [`keystone::Session`] that caches the token, renews it before it expires
//!   and finds endpoints in the catalog.
//! - [`client`]: a [`client::ServiceClient`] for one microversioned service over the session:
//!   version negotiation, the microversioned GET (re-authenticating once on a 401), the body
//!   size limit, the request timeout, and every failure mapped into an [`ApiError`].
//! - [`microversion`]: the `major.minor` versions both services speak.
//! - [`redirect`]: the redirect policy: the client follows no redirect by itself; token
//!   requests follow none, service GETs only to the same origin (scheme, host, port), so no
//!   credential ever reaches an origin other than the configured or catalogued one.
//!
//! Error messages name URLs, users and roles, never a password, secret or token: an
//! [`ApiError`] is displayed through the process' redactor ([`crate::redact`]), and what an
//! upstream server said enters it only through [`crate::redact::upstream_text`] (redacted,
//! without control characters, at most 512 bytes).

pub mod client;
pub mod config;
pub mod keystone;
pub mod microversion;
pub mod redirect;

/// Why an OpenStack API call failed. Every message is meant for an operator and never contains a
/// secret or a token: `Display` and `Debug` pass the redactor whoever built the error, so a
/// URL's user info, a token or a password in any field is removed.
#[derive(Clone, PartialEq)]
pub enum ApiError {
    /// The server could not be reached at all (connection refused, DNS, TLS, timeout).
    Unreachable {
        /// `keystone`, `placement`, ...
        service: String,
        /// The URL of the request.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Keystone refused the credentials.
    AuthRejected {
        /// The token URL.
        url: String,
        /// The user or application credential, without any secret.
        who: String,
        /// HTTP status.
        status: u16,
        /// Keystone's message.
        message: String,
    },
    /// The cached token expired and no new one could be obtained.
    TokenExpired {
        /// When the token expired (RFC 3339, UTC).
        expired_at: String,
        /// Why renewing failed.
        cause: Box<ApiError>,
    },
    /// The catalog has no usable endpoint for the service.
    NoEndpoint(String),
    /// The service answered 401 even with a freshly obtained token.
    Unauthorized {
        /// The service.
        service: String,
        /// The URL of the request.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The service answered 403: the credentials lack a role.
    Forbidden {
        /// The service.
        service: String,
        /// The URL of the request.
        url: String,
        /// The server's message.
        message: String,
        /// What role is needed and which roles the token has (may be empty).
        hint: String,
    },
    /// Any other unexpected HTTP status (5xx, 404, ...).
    Status {
        /// The service.
        service: String,
        /// The URL of the request.
        url: String,
        /// HTTP status.
        status: u16,
        /// The server's message (shortened).
        message: String,
    },
    /// The body exceeded the size limit; reading stopped there.
    BodyTooLarge {
        /// The service.
        service: String,
        /// The URL of the request.
        url: String,
        /// The limit, bytes.
        limit: u64,
    },
    /// The body was not the JSON we expected (truncated, HTML, wrong shape).
    InvalidBody {
        /// The service.
        service: String,
        /// The URL of the request.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// A redirect that was not followed (see [`redirect`]): to another origin, a downgrade, or
    /// any redirect of a token request.
    Redirected {
        /// The service.
        service: String,
        /// The URL of the request.
        url: String,
        /// HTTP status.
        status: u16,
        /// Where it pointed, shown without user info, query or fragment.
        target: String,
        /// Why it was not followed.
        reason: String,
        /// What to fix: the Keystone URL, the endpoint override or the catalog entry.
        fix: String,
    },
    /// The service's microversions and the ones the exporter works with do not meet.
    NoCommonMicroversion {
        /// The service.
        service: String,
        /// The URL of the version document.
        url: String,
        /// Both ranges.
        message: String,
    },
}

impl ApiError {
    /// The message before redaction.
    fn unredacted(&self) -> String {
        match self {
            ApiError::Unreachable {
                service,
                url,
                message,
            } => format!("cannot reach {service} at {url}: {message}"),
            ApiError::AuthRejected {
                url,
                who,
                status,
                message,
            } => format!(
                "Keystone at {url} refused to authenticate {who} (HTTP {status}): {message}"
            ),
            ApiError::TokenExpired { expired_at, cause } => format!(
                "the Keystone token expired at {expired_at} and no new one could be obtained: {cause}"
            ),
            ApiError::NoEndpoint(message) => message.clone(),
            ApiError::Unauthorized {
                service,
                url,
                message,
            } => format!(
                "{service} at {url} answered 401 Unauthorized even after re-authenticating with Keystone: {message}"
            ),
            ApiError::Forbidden {
                service,
                url,
                message,
                hint,
            } => format!("{service} at {url} answered 403 Forbidden: {message}{hint}"),
            ApiError::Status {
                service,
                url,
                status,
                message,
            } => format!("{service} at {url} answered HTTP {status}: {message}"),
            ApiError::BodyTooLarge {
                service,
                url,
                limit,
            } => format!(
                "{service} at {url}: response body larger than {limit} bytes; stopped reading it"
            ),
            ApiError::InvalidBody {
                service,
                url,
                message,
            } => format!("{service} at {url}: invalid response body: {message}"),
            ApiError::Redirected {
                service,
                url,
                status,
                target,
                reason,
                fix,
            } => format!(
                "{service} at {url} answered HTTP {status} redirecting to {target}; not followed: {reason}; {fix}"
            ),
            ApiError::NoCommonMicroversion {
                service,
                url,
                message,
            } => format!("{service} at {url}: no microversion in common: {message}"),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::redact::clean_line(&self.unredacted()))
    }
}

impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ApiError").field(&self.to_string()).finish()
    }
}

impl std::error::Error for ApiError {}
