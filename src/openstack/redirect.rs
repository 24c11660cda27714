//! Redirects never carry a credential to another origin.
//!
//! The session's one HTTP client ([`super::keystone::Session`]) is built with redirects off, so
//! that no request is ever re-sent by the HTTP library on its own; every 3xx answer reaches
//! the code that sent the request, which asks [`judge`] what to do:
//!
//! - **Token requests** (`POST /auth/tokens`, carrying a password or an application credential
//!   secret) follow **no** redirect: the answer is an error naming the target and the Keystone
//!   URL to fix. A Keystone that moved is configured by its new URL, never found by following.
//! - **Service GETs** (placement; compute: hypervisors, servers, flavors, orphan lookups) carry
//!   the token (`X-Auth-Token`, and Basic auth when the endpoint URL has user info) and follow a
//!   redirect **only to the same origin** (scheme, host and port) as the URL they were sent to,
//!   which is the configured endpoint or the one the catalog lists, at most
//!   [`MAX_SAME_ORIGIN_HOPS`] times. The token then goes only where it was already going: a
//!   proxy that adds a trailing slash or moves a path keeps working, and no other host, port
//!   or scheme ever sees the token. Any other target is refused with an error naming the target
//!   and the endpoint override or catalog entry to fix.
//! - An `https` to `http` downgrade is a change of origin and always refused, named as such.
//!
//! Targets in messages pass [`crate::redact::upstream_url`]: no user info, query or fragment.

use reqwest::Url;

use crate::redact;

/// The most same-origin redirects a service GET follows before giving up.
pub const MAX_SAME_ORIGIN_HOPS: usize = 3;

/// What kind of request met the redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// A Keystone token request: follows nothing.
    Token,
    /// A service GET with the token: follows the same origin only.
    ServiceGet,
}

/// Why a redirect is not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A token request: credentials are never re-sent anywhere.
    TokenRequest,
    /// The answer has no usable `Location`.
    NoLocation,
    /// `https` to `http`: the credential would travel in clear.
    Downgrade,
    /// Another scheme, host or port than the request's.
    OtherOrigin,
    /// More than [`MAX_SAME_ORIGIN_HOPS`] same-origin redirects in a row.
    TooManyHops,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Refusal::TokenRequest => {
                "a token request follows no redirect (it carries the password or application credential secret)"
            }
            Refusal::NoLocation => "the answer has no usable Location header",
            Refusal::Downgrade => {
                "it is a downgrade from https to http, which would send the token in clear"
            }
            Refusal::OtherOrigin => {
                "it leads to another origin (scheme, host or port), which must never receive the token"
            }
            Refusal::TooManyHops => {
                return write!(f, "more than {MAX_SAME_ORIGIN_HOPS} redirects in a row");
            }
        };
        f.write_str(text)
    }
}

/// The scheme, host and port of `url` (the port made explicit from the scheme's default).
pub fn origin(url: &Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_ascii_lowercase(),
        url.host_str().map(str::to_ascii_lowercase),
        url.port_or_known_default(),
    )
}

/// Whether a `kind` request to `from` that was answered with a redirect to `location` (as the
/// server wrote it, relative or absolute), after `hops` redirects already followed, may follow
/// it: the URL to request next, or why not.
pub fn judge(
    kind: RequestKind,
    from: &Url,
    location: Option<&str>,
    hops: usize,
) -> Result<Url, Refusal> {
    if kind == RequestKind::Token {
        return Err(Refusal::TokenRequest);
    }
    let target = location
        .and_then(|text| from.join(text.trim()).ok())
        .ok_or(Refusal::NoLocation)?;
    if from.scheme() == "https" && target.scheme() == "http" {
        return Err(Refusal::Downgrade);
    }
    if origin(&target) != origin(from) {
        return Err(Refusal::OtherOrigin);
    }
    if hops >= MAX_SAME_ORIGIN_HOPS {
        return Err(Refusal::TooManyHops);
    }
    Ok(target)
}

/// The redirect target for a message: resolved against the request URL when it can be,
/// without user info, query or fragment, bounded.
pub fn shown_target(from: &Url, location: Option<&str>) -> String {
    match location {
        None => "(no Location)".to_string(),
        Some(text) => match from.join(text.trim()) {
            Ok(url) => redact::upstream_url(url.as_str()),
            Err(_) => redact::upstream_url(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn token_requests_follow_nothing_not_even_the_same_origin() {
        let from = url("http://127.0.0.1:5000/v3/auth/tokens");
        for location in [
            Some("/v3/auth/tokens"),
            Some("http://127.0.0.1:5000/identity/v3/auth/tokens"),
            Some("http://127.0.0.1:5001/v3/auth/tokens"),
            None,
        ] {
            assert_eq!(
                judge(RequestKind::Token, &from, location, 0),
                Err(Refusal::TokenRequest),
                "{location:?}"
            );
        }
    }

    #[test]
    fn service_gets_follow_the_same_origin_only() {
        let from = url("http://127.0.0.1:8778/placement/resource_providers?name=h");
        let get = |location: &str| judge(RequestKind::ServiceGet, &from, Some(location), 0);
        assert_eq!(
            get("/placement/resource_providers/?name=h"),
            Ok(url(
                "http://127.0.0.1:8778/placement/resource_providers/?name=h"
            ))
        );
        assert_eq!(
            get("other"),
            Ok(url("http://127.0.0.1:8778/placement/other"))
        );
        // The default port written out, and the host in another case, are the same origin.
        assert_eq!(
            judge(
                RequestKind::ServiceGet,
                &url("https://Placement.Example/x"),
                Some("https://placement.example:443/y"),
                0
            ),
            Ok(url("https://placement.example/y"))
        );
        for other in [
            "http://127.0.0.1:8779/placement/",
            "http://localhost:8778/placement/",
            "http://127.0.0.2:8778/placement/",
            "https://127.0.0.1:8778/placement/",
            "//127.0.0.1:9999/x",
            "http://u:p@127.0.0.1:9999/x",
        ] {
            assert_eq!(get(other), Err(Refusal::OtherOrigin), "{other}");
        }
        assert_eq!(
            judge(RequestKind::ServiceGet, &from, None, 0),
            Err(Refusal::NoLocation)
        );
        assert_eq!(
            judge(RequestKind::ServiceGet, &from, Some("http://[::1"), 0),
            Err(Refusal::NoLocation)
        );
        assert_eq!(
            judge(
                RequestKind::ServiceGet,
                &from,
                Some("/x"),
                MAX_SAME_ORIGIN_HOPS
            ),
            Err(Refusal::TooManyHops)
        );
    }

    #[test]
    fn a_downgrade_is_refused_even_to_the_same_host_and_port() {
        let from = url("https://127.0.0.1:8774/compute/v2.1/flavors/1");
        for location in [
            "http://127.0.0.1:8774/compute/v2.1/flavors/1",
            "http://127.0.0.1/x",
            "http://evil.example/x",
        ] {
            assert_eq!(
                judge(RequestKind::ServiceGet, &from, Some(location), 0),
                Err(Refusal::Downgrade),
                "{location}"
            );
        }
        assert!(Refusal::Downgrade.to_string().contains("https to http"));
    }

    #[test]
    fn targets_are_shown_resolved_without_user_info_or_query() {
        let from = url("http://127.0.0.1:8778/placement/x");
        assert_eq!(
            shown_target(&from, Some("http://u:Secret-91@127.0.0.1:1/p?token=t")),
            "http://<redacted>@127.0.0.1:1/p?<redacted>"
        );
        assert_eq!(
            shown_target(&from, Some("/y?sig=1")),
            "http://127.0.0.1:8778/y?<redacted>"
        );
        assert_eq!(shown_target(&from, None), "(no Location)");
    }
}
