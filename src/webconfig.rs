//! `--web.config.file`: TLS, basic auth and response headers, in the YAML format of Prometheus'
//! exporter-toolkit, so that operators reuse the files they already have for node_exporter.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt            # relative paths are relative to this file
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: clients-ca.crt
//!   min_version: TLS12
//! http_server_config:
//!   headers:
//!     X-Content-Type-Options: nosniff
//! basic_auth_users:
//!   prometheus: $2y$10$...           # bcrypt hash (htpasswd -nBC 10 prometheus)
//! ```
//!
//! Parsing ([`parse`]) is pure and strict like the toolkit's (unknown keys are errors, naming the
//! line); [`TlsSettings::server_config`] reads the certificate files and builds the rustls
//! configuration. What rustls cannot do is refused with a clear error instead of being ignored:
//! TLS 1.0/1.1, CBC cipher suites, the curve P-521, client certificates accepted without
//! verification (`RequestClientCert`, `RequireAnyClientCert`) and `client_allowed_sans`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use tokio_rustls::rustls;

/// A web configuration file that cannot be used. The message names the file, and the line when
/// the YAML is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WebConfigError(pub String);

/// The parsed and validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    /// TLS settings; `None` serves plain HTTP.
    pub tls: Option<TlsSettings>,
    /// Users allowed in with HTTP basic auth and their bcrypt hashes; empty means no auth.
    pub basic_auth_users: BTreeMap<String, String>,
    /// Response headers added to every answer.
    pub headers: Vec<(String, String)>,
}

/// Who must present a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is requested.
    None,
    /// A client certificate is optional, but verified against the client CA when given.
    VerifyIfGiven,
    /// A client certificate verified against the client CA is required.
    RequireAndVerify,
}

/// The TLS part of the configuration, with paths resolved against the file's directory.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// Client certificate policy.
    pub client_auth: ClientAuth,
    /// PEM CA bundle for client certificates.
    pub client_ca_file: Option<PathBuf>,
    /// Oldest protocol version accepted (1.2 or 1.3).
    pub min_version: TlsVersion,
    /// Newest protocol version accepted.
    pub max_version: TlsVersion,
    /// TLS 1.2 cipher suites, by their Go names; empty means rustls' defaults.
    pub cipher_suites: Vec<String>,
    /// Key exchange groups, by their Go names; empty means rustls' defaults.
    pub curve_preferences: Vec<String>,
}

/// A TLS protocol version rustls supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<String>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

/// The response headers exporter-toolkit lets operators set, with the values it accepts
/// (`None`: any value).
const ALLOWED_HEADERS: [(&str, Option<&[&str]>); 5] = [
    ("Content-Security-Policy", None),
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
];

/// Reads and validates a web configuration file (the certificate files are read too, so that a
/// broken key is found at start-up, not at the first connection).
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let text = crate::input::read_text(path)
        .map_err(|e| WebConfigError(format!("--web.config.file: {e}")))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let config = parse(&text, &path.display().to_string(), base)?;
    if let Some(tls) = &config.tls {
        tls.server_config()?;
    }
    Ok(config)
}

/// Parses the YAML text of a web configuration file. `origin` names it in errors; relative
/// paths are resolved against `base_dir`.
pub fn parse(text: &str, origin: &str, base_dir: &Path) -> Result<WebConfig, WebConfigError> {
    let fail = |message: String| WebConfigError(format!("{origin}: {message}"));
    let raw: Option<RawFile> = serde_yaml_ng::from_str(text).map_err(|e| {
        let place = e
            .location()
            .map(|l| format!("line {}, column {}: ", l.line(), l.column()))
            .unwrap_or_default();
        fail(format!("{place}{e}"))
    })?;
    let Some(raw) = raw else {
        return Ok(WebConfig {
            tls: None,
            basic_auth_users: BTreeMap::new(),
            headers: Vec::new(),
        });
    };

    let tls = raw
        .tls_server_config
        .map(|tls| parse_tls(tls, base_dir).map_err(fail))
        .transpose()?
        .flatten();

    let mut headers = Vec::new();
    if let Some(http) = raw.http_server_config {
        // HTTP/2 is not served (only HTTP/1.1, which is what scrapes need); the key is accepted
        // so that node_exporter's files load unchanged.
        let _ = http.http2;
        for (name, value) in http.headers.unwrap_or_default() {
            let Some((canonical, allowed)) = ALLOWED_HEADERS
                .iter()
                .find(|(allowed, _)| allowed.eq_ignore_ascii_case(&name))
            else {
                return Err(fail(format!(
                    "http_server_config.headers: the header {name:?} cannot be set (allowed: {})",
                    ALLOWED_HEADERS.map(|(n, _)| n).join(", ")
                )));
            };
            if let Some(values) = allowed {
                if !values.iter().any(|v| v.eq_ignore_ascii_case(&value)) {
                    return Err(fail(format!(
                        "http_server_config.headers: {canonical} must be one of {}, got {value:?}",
                        values.join(", ")
                    )));
                }
            }
            if value.chars().any(char::is_control) {
                return Err(fail(format!(
                    "http_server_config.headers: {canonical} has a control character"
                )));
            }
            headers.push((canonical.to_string(), value));
        }
    }

    let basic_auth_users = raw.basic_auth_users.unwrap_or_default();
    for (user, hash) in &basic_auth_users {
        if user.is_empty() || user.contains(':') {
            return Err(fail(format!(
                "basic_auth_users: {user:?} is not a valid user name (non-empty, no ':')"
            )));
        }
        if bcrypt_cost(hash).is_none() {
            return Err(fail(format!(
                "basic_auth_users: the password of {user:?} is not a bcrypt hash ($2a$/$2b$/$2y$...; make one with htpasswd -nBC 10 {user})"
            )));
        }
    }

    Ok(WebConfig {
        tls,
        basic_auth_users,
        headers,
    })
}

/// The cost of a bcrypt hash (`$2y$10$<53 characters>`), or `None` when it is not one.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    let rest = hash
        .strip_prefix("$2a$")
        .or_else(|| hash.strip_prefix("$2b$"))
        .or_else(|| hash.strip_prefix("$2y$"))
        .or_else(|| hash.strip_prefix("$2x$"))?;
    let (cost, salt_and_hash) = rest.split_once('$')?;
    let cost: u32 = cost.parse().ok()?;
    ((4..=31).contains(&cost) && salt_and_hash.len() == 53).then_some(cost)
}

fn parse_tls(raw: RawTls, base_dir: &Path) -> Result<Option<TlsSettings>, String> {
    let resolve = |p: &str| {
        let path = Path::new(p);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            base_dir.join(path)
        }
    };
    if raw.cert_file.is_none() && raw.key_file.is_none() && raw.client_ca_file.is_none() {
        // An empty tls_server_config (as some deployment tools write) means plain HTTP.
        return Ok(None);
    }
    let cert_file = raw
        .cert_file
        .as_deref()
        .map(resolve)
        .ok_or("tls_server_config: cert_file is missing")?;
    let key_file = raw
        .key_file
        .as_deref()
        .map(resolve)
        .ok_or("tls_server_config: key_file is missing")?;
    let client_auth = match raw.client_auth_type.as_deref().unwrap_or("NoClientCert") {
        "NoClientCert" | "" => ClientAuth::None,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerify,
        unverified @ ("RequestClientCert" | "RequireAnyClientCert") => {
            return Err(format!(
                "tls_server_config.client_auth_type: {unverified} accepts client certificates without verifying them, which this exporter does not do; use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file"
            ))
        }
        other => {
            return Err(format!(
                "tls_server_config.client_auth_type: expected NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert, got {other:?}"
            ))
        }
    };
    let client_ca_file = raw.client_ca_file.as_deref().map(resolve);
    match (client_auth, &client_ca_file) {
        (ClientAuth::None, Some(_)) => {
            return Err("tls_server_config: client_ca_file is set but client_auth_type is NoClientCert (set client_auth_type: RequireAndVerifyClientCert)".into())
        }
        (ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify, None) => {
            return Err("tls_server_config: client_auth_type needs client_ca_file to verify client certificates".into())
        }
        _ => {}
    }
    let version = |field: &str, value: Option<&str>, default: TlsVersion| match value {
        None | Some("") => Ok(default),
        Some("TLS12") => Ok(TlsVersion::Tls12),
        Some("TLS13") => Ok(TlsVersion::Tls13),
        Some(old @ ("TLS10" | "TLS11")) => Err(format!(
            "tls_server_config.{field}: {old} is insecure and not supported; use TLS12 or TLS13"
        )),
        Some(other) => Err(format!(
            "tls_server_config.{field}: expected TLS12 or TLS13, got {other:?}"
        )),
    };
    let min_version = version("min_version", raw.min_version.as_deref(), TlsVersion::Tls12)?;
    let max_version = version("max_version", raw.max_version.as_deref(), TlsVersion::Tls13)?;
    if min_version > max_version {
        return Err("tls_server_config: min_version is above max_version".into());
    }
    let cipher_suites = raw.cipher_suites.unwrap_or_default();
    for suite in &cipher_suites {
        if tls12_suite(suite).is_none() {
            return Err(format!(
                "tls_server_config.cipher_suites: {suite:?} is not supported (supported: the ECDHE AES-GCM and CHACHA20-POLY1305 suites, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
            ));
        }
    }
    let curve_preferences = raw.curve_preferences.unwrap_or_default();
    for curve in &curve_preferences {
        if kx_group(curve).is_none() {
            return Err(format!(
                "tls_server_config.curve_preferences: {curve:?} is not supported (supported: X25519, CurveP256, CurveP384)"
            ));
        }
    }
    let _ = raw.prefer_server_cipher_suites;
    if raw.client_allowed_sans.is_some_and(|sans| !sans.is_empty()) {
        return Err(
            "tls_server_config.client_allowed_sans is not supported; issue client certificates from a dedicated client_ca_file instead"
                .into(),
        );
    }
    Ok(Some(TlsSettings {
        cert_file,
        key_file,
        client_auth,
        client_ca_file,
        min_version,
        max_version,
        cipher_suites,
        curve_preferences,
    }))
}

fn tls12_suite(name: &str) -> Option<rustls::SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite as suite;
    Some(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}

fn kx_group(name: &str) -> Option<&'static dyn rustls::crypto::SupportedKxGroup> {
    use rustls::crypto::ring::kx_group;
    Some(match name {
        "X25519" => kx_group::X25519,
        "CurveP256" => kx_group::SECP256R1,
        "CurveP384" => kx_group::SECP384R1,
        _ => return None,
    })
}

impl TlsSettings {
    /// Reads the certificate, key and client CA files and builds the rustls server
    /// configuration (HTTP/1.1 over ALPN).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, WebConfigError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let fail = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
            WebConfigError(format!("--web.config.file: {what} {}: {e}", path.display()))
        };
        let read = |what: &str, path: &Path| {
            crate::input::read_file(path).map_err(|e| match e.io_error() {
                Some(io) => fail(what, path, io),
                None => WebConfigError(format!("--web.config.file: {e}")),
            })
        };
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&read("cannot read the certificate", &self.cert_file)?)
                .collect::<Result<_, _>>()
                .map_err(|e| fail("cannot read the certificate", &self.cert_file, &e))?;
        if certs.is_empty() {
            return Err(fail(
                "no certificate in",
                &self.cert_file,
                &"expected PEM CERTIFICATE blocks",
            ));
        }
        let key =
            PrivateKeyDer::from_pem_slice(&read("cannot read the private key", &self.key_file)?)
                .map_err(|e| fail("cannot read the private key", &self.key_file, &e))?;

        let mut provider = rustls::crypto::ring::default_provider();
        if !self.cipher_suites.is_empty() {
            let tls12: Vec<_> = self
                .cipher_suites
                .iter()
                .filter_map(|s| tls12_suite(s))
                .collect();
            provider.cipher_suites.retain(|suite| {
                suite.version() == &rustls::version::TLS13 || tls12.contains(suite)
            });
        }
        if !self.curve_preferences.is_empty() {
            provider.kx_groups = self
                .curve_preferences
                .iter()
                .filter_map(|c| kx_group(c))
                .collect();
        }
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
            (TlsVersion::Tls12, &rustls::version::TLS12),
            (TlsVersion::Tls13, &rustls::version::TLS13),
        ]
        .into_iter()
        .filter(|(v, _)| (self.min_version..=self.max_version).contains(v))
        .map(|(_, version)| version)
        .collect();
        let provider = Arc::new(provider);
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|e| WebConfigError(format!("--web.config.file: TLS settings: {e}")))?;

        let builder = match (&self.client_ca_file, self.client_auth) {
            (Some(ca_file), ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify) => {
                let mut roots = rustls::RootCertStore::empty();
                let cas =
                    CertificateDer::pem_slice_iter(&read("cannot read the client CA", ca_file)?)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| fail("cannot read the client CA", ca_file, &e))?;
                for ca in cas {
                    roots
                        .add(ca)
                        .map_err(|e| fail("bad client CA certificate in", ca_file, &e))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                );
                let verifier = if self.client_auth == ClientAuth::VerifyIfGiven {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| fail("unusable client CA", ca_file, &e))?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| fail("the key does not fit the certificate", &self.key_file, &e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2y$10$TTrBBMZVSVcOYPkIgXA2rOEDsAdYPhtoxhZn6.KaQJfpCNnBUjxsa";

    fn parse_text(text: &str) -> Result<WebConfig, WebConfigError> {
        parse(text, "web.yml", Path::new("/etc/nova-lvm-exporter"))
    }

    #[test]
    fn an_empty_file_serves_plain_http_without_auth() {
        let config = parse_text("").unwrap();
        assert_eq!(config.tls, None);
        assert!(config.basic_auth_users.is_empty());
        let config = parse_text("tls_server_config: {}\n").unwrap();
        assert_eq!(config.tls, None);
    }

    #[test]
    fn node_exporters_file_is_understood_with_paths_relative_to_it() {
        let config = parse_text(&format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: /abs/server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS13\n  prefer_server_cipher_suites: true\nhttp_server_config:\n  http2: false\n  headers:\n    x-frame-options: deny\n    Content-Security-Policy: \"default-src 'none'\"\nbasic_auth_users:\n  prometheus: {HASH}\n"
        ))
        .unwrap();
        let tls = config.tls.unwrap();
        assert_eq!(
            tls.cert_file,
            PathBuf::from("/etc/nova-lvm-exporter/server.crt")
        );
        assert_eq!(tls.key_file, PathBuf::from("/abs/server.key"));
        assert_eq!(tls.client_auth, ClientAuth::RequireAndVerify);
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert_eq!(tls.max_version, TlsVersion::Tls13);
        assert_eq!(config.basic_auth_users["prometheus"], HASH);
        assert_eq!(
            config.headers,
            vec![
                (
                    "Content-Security-Policy".to_string(),
                    "default-src 'none'".to_string()
                ),
                ("X-Frame-Options".to_string(), "deny".to_string())
            ]
        );
    }

    #[test]
    fn errors_name_the_file_and_the_line_at_fault() {
        let err = parse_text("basic_auth_users:\n  alice: x\ntls_server_config:\n  cert_fil: a\n")
            .unwrap_err()
            .0;
        assert!(err.starts_with("web.yml: line 4"), "{err}");
        assert!(err.contains("cert_fil"), "{err}");
        let err = parse_text("basic_auth_users: [\n").unwrap_err().0;
        assert!(err.starts_with("web.yml: line "), "{err}");
    }

    #[test]
    fn what_rustls_cannot_do_is_refused_not_ignored() {
        for (text, needle) in [
            ("tls_server_config:\n  cert_file: a\n", "key_file is missing"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n", "insecure"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n", "min_version is above"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n", "without verifying"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n", "needs client_ca_file"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n", "NoClientCert"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n", "not supported"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [CurveP521]\n", "not supported"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_allowed_sans: [x]\n", "client_allowed_sans"),
            ("http_server_config:\n  headers:\n    Server: nginx\n", "cannot be set"),
            ("http_server_config:\n  headers:\n    X-Frame-Options: allow-from x\n", "must be one of"),
            ("basic_auth_users:\n  alice: plaintext\n", "not a bcrypt hash"),
            ("basic_auth_users:\n  \"a:b\": x\n", "not a valid user name"),
        ] {
            let err = parse_text(text).unwrap_err().0;
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(err.starts_with("web.yml: "), "{err}");
        }
    }

    #[test]
    fn bcrypt_hashes_are_recognised_by_shape() {
        assert_eq!(bcrypt_cost(HASH), Some(10));
        assert_eq!(bcrypt_cost(&HASH.replace("$2y$", "$2b$")), Some(10));
        assert_eq!(bcrypt_cost("$2y$10$short"), None);
        assert_eq!(
            bcrypt_cost("$2y$99$TTrBBMZVSVcOYPkIgXA2rOEDsAdYPhtoxhZn6.KaQJfpCNnBUjxsa"),
            None
        );
        assert_eq!(bcrypt_cost("$1$abc"), None);
    }

    #[test]
    fn missing_certificate_files_are_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(
            &path,
            "tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n",
        )
        .unwrap();
        let err = load(&path).unwrap_err().0;
        assert!(err.contains("cannot read the certificate"), "{err}");
        assert!(err.contains("nope.crt"), "{err}");
    }
}
