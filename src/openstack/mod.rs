//! OpenStack API access: Keystone v3 authentication with the conventions operators already use
//! (`clouds.yaml` + `secure.yaml`, or `OS_*` environment variables), endpoint discovery from the
//! service catalog, and authenticated, size-bounded JSON requests.
//!
//! - [`config`]: where credentials come from, resolved into one [`config::CloudConfig`];
//!   secrets are wrapped in [`config::Secret`], whose `Debug` and `Display` never show them.
//! - [`keystone`]: a [`keystone::Session`] that caches the token, renews it before it expires,
//!   re-authenticates once on a 401, and reads JSON bodies with a size limit.
//!
//! Error messages name URLs, users and roles, never a password, secret or token.

pub mod config;
pub mod keystone;
pub mod microversion;
pub mod time;

/// Why an OpenStack API call failed. Every message is meant for an operator and never contains a
/// secret or a token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The server could not be reached at all (connection refused, DNS, TLS, timeout).
    #[error("cannot reach {service} at {url}: {message}")]
    Unreachable {
        /// `keystone`, `placement`, ...
        service: String,
        /// The URL of the request.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Keystone refused the credentials.
    #[error("Keystone at {url} refused to authenticate {who} (HTTP {status}): {message}")]
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
    #[error(
        "the Keystone token expired at {expired_at} and no new one could be obtained: {cause}"
    )]
    TokenExpired {
        /// When the token expired (RFC 3339, UTC).
        expired_at: String,
        /// Why renewing failed.
        cause: Box<ApiError>,
    },
    /// The catalog has no usable endpoint for the service.
    #[error("{0}")]
    NoEndpoint(String),
    /// The service answered 401 even with a freshly obtained token.
    #[error("{service} at {url} answered 401 Unauthorized even after re-authenticating with Keystone: {message}")]
    Unauthorized {
        /// The service.
        service: String,
        /// The URL of the request.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The service answered 403: the credentials lack a role.
    #[error("{service} at {url} answered 403 Forbidden: {message}{hint}")]
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
    #[error("{service} at {url} answered HTTP {status}: {message}")]
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
    #[error("{service} at {url}: response body larger than {limit} bytes; stopped reading it")]
    BodyTooLarge {
        /// The service.
        service: String,
        /// The URL of the request.
        url: String,
        /// The limit, bytes.
        limit: u64,
    },
    /// The body was not the JSON we expected (truncated, HTML, wrong shape).
    #[error("{service} at {url}: invalid response body: {message}")]
    InvalidBody {
        /// The service.
        service: String,
        /// The URL of the request.
        url: String,
        /// What was wrong.
        message: String,
    },
}

/// Percent-encodes a URL path segment or query value: everything but RFC 3986's unreserved
/// characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
