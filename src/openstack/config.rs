//! Where the credentials come from: a cloud in `clouds.yaml` (merged with `secure.yaml`) chosen
//! with `--os-cloud`/`OS_CLOUD`, or plain `OS_*` environment variables, resolved into one
//! validated [`CloudConfig`].
//!
//! The files are looked up like the OpenStack client does: `OS_CLIENT_CONFIG_FILE` (and
//! `OS_CLIENT_SECURE_FILE`) when set, else the first of `./`, `$XDG_CONFIG_HOME/openstack/`
//! (`~/.config/openstack/`), `/etc/openstack/` that has the file. Errors name the file or
//! variable at fault and never contain a secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::redact::{self, SecretKind, SecretUrl};

/// A password, application credential secret or token. `Debug` and `Display` print
/// `<redacted>`; only [`Secret::expose`] gives the text, for the one place that sends it.
/// Creating one registers it with the process' redactor ([`crate::redact`]), which then
/// removes it from every log line, page and error.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password or application credential secret, registering it.
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        redact::register(&text, SecretKind::Credential);
        Self(text)
    }

    /// Wraps a Keystone token, registering it (the redactor keeps only the latest tokens).
    pub fn token(text: impl Into<String>) -> Self {
        let text = text.into();
        redact::register(&text, SecretKind::Token);
        Self(text)
    }

    /// The secret itself: only for building a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A Keystone object named by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// By id (ids are global).
    Id(String),
    /// By name; users and projects need their domain.
    Name {
        /// The name.
        name: String,
        /// The domain it lives in.
        domain: Domain,
    },
}

/// A Keystone domain, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    /// `*_domain_id`.
    Id(String),
    /// `*_domain_name`.
    Name(String),
}

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// `password` / `v3password`: a user's password, scoped to a project.
    Password {
        /// The user.
        user: Named,
        /// The password.
        password: Secret,
        /// The project the token is scoped to (roles are assigned on projects).
        project: Named,
    },
    /// `v3applicationcredential`: the credential carries its own scope and roles.
    ApplicationCredential {
        /// By id, or by name together with its user.
        credential: AppCredential,
        /// The secret.
        secret: Secret,
    },
}

/// An application credential reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppCredential {
    /// `application_credential_id`.
    Id(String),
    /// `application_credential_name` of a user.
    Name {
        /// The name.
        name: String,
        /// Its owner.
        user: Named,
    },
}

/// Which endpoint of a catalog entry to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// `public`.
    Public,
    /// `internal` (the default: exporters run inside the cloud's network).
    Internal,
    /// `admin`.
    Admin,
}

impl Interface {
    /// The catalog's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text.trim_end_matches("URL") {
            "public" => Some(Interface::Public),
            "internal" => Some(Interface::Internal),
            "admin" => Some(Interface::Admin),
            _ => None,
        }
    }
}

/// Everything needed to talk to one cloud. `Debug` is safe: secrets are [`Secret`]s.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudConfig {
    /// Keystone v3 URL, ending in `/v3`; its user info, if any, never shows.
    pub auth_url: SecretUrl,
    /// How to authenticate.
    pub method: AuthMethod,
    /// Region for endpoint discovery; `None` accepts any region (the catalog must then have
    /// only one endpoint for the interface).
    pub region_name: Option<String>,
    /// Interface for endpoint discovery.
    pub interface: Interface,
    /// A CA bundle (PEM) to trust besides the system's, as read at start-up.
    pub cacert_pem: Option<Vec<u8>>,
    /// The CA bundle's path, for messages.
    pub cacert_path: Option<PathBuf>,
    /// Skip TLS certificate verification (labs only).
    pub insecure: bool,
    /// Endpoints given explicitly (`<service type>_endpoint_override`), by service type.
    pub endpoint_overrides: BTreeMap<String, SecretUrl>,
    /// Where this came from, for the log: `clouds.yaml cloud "x" (path)` or `OS_* variables`.
    pub origin: String,
}

impl CloudConfig {
    /// Who authenticates, without any secret: for the log and error messages.
    pub fn who(&self) -> String {
        fn named(n: &Named) -> String {
            match n {
                Named::Id(id) => format!("id {id}"),
                Named::Name { name, domain } => match domain {
                    Domain::Id(d) => format!("{name:?} (domain id {d})"),
                    Domain::Name(d) => format!("{name:?} (domain {d:?})"),
                },
            }
        }
        match &self.method {
            AuthMethod::Password { user, project, .. } => {
                format!(
                    "user {} with a password, project {}",
                    named(user),
                    named(project)
                )
            }
            AuthMethod::ApplicationCredential { credential, .. } => match credential {
                AppCredential::Id(id) => format!("application credential {id}"),
                AppCredential::Name { name, user } => {
                    format!("application credential {name:?} of user {}", named(user))
                }
            },
        }
    }
}

/// Reads the environment: a function so that tests need not touch the process' environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Resolves the credentials: the cloud `cloud` from clouds.yaml when given, else the `OS_*`
/// variables. `cwd` is where `./clouds.yaml` is looked for. The error passes the redactor:
/// the secrets read so far (and any URL's user info) never show in it.
pub fn load(cloud: Option<&str>, env: Env, cwd: &Path) -> Result<CloudConfig, String> {
    resolve(cloud, env, cwd).map_err(|error| redact::redact(&error))
}

fn resolve(cloud: Option<&str>, env: Env, cwd: &Path) -> Result<CloudConfig, String> {
    match cloud {
        Some(name) => from_clouds_yaml(name, env, cwd),
        None if env("OS_AUTH_URL").is_some_and(|v| !v.is_empty()) => from_env(env),
        None => Err(
            "no OpenStack credentials: set --os-cloud (or OS_CLOUD) to a cloud in clouds.yaml, or OS_AUTH_URL and the other OS_* variables"
                .to_string(),
        ),
    }
}

/// The raw settings before validation, by their clouds.yaml key.
#[derive(Debug, Default)]
struct Raw {
    values: BTreeMap<&'static str, String>,
    secrets: BTreeMap<&'static str, Secret>,
}

/// clouds.yaml key (under `auth:` when it starts with `auth.`) and environment variable.
const FIELDS: &[(&str, &str)] = &[
    ("auth_type", "OS_AUTH_TYPE"),
    ("auth.auth_url", "OS_AUTH_URL"),
    ("auth.username", "OS_USERNAME"),
    ("auth.user_id", "OS_USER_ID"),
    ("auth.project_name", "OS_PROJECT_NAME"),
    ("auth.project_id", "OS_PROJECT_ID"),
    ("auth.user_domain_name", "OS_USER_DOMAIN_NAME"),
    ("auth.user_domain_id", "OS_USER_DOMAIN_ID"),
    ("auth.project_domain_name", "OS_PROJECT_DOMAIN_NAME"),
    ("auth.project_domain_id", "OS_PROJECT_DOMAIN_ID"),
    ("auth.domain_name", "OS_DOMAIN_NAME"),
    ("auth.domain_id", "OS_DOMAIN_ID"),
    (
        "auth.application_credential_id",
        "OS_APPLICATION_CREDENTIAL_ID",
    ),
    (
        "auth.application_credential_name",
        "OS_APPLICATION_CREDENTIAL_NAME",
    ),
    ("region_name", "OS_REGION_NAME"),
    ("interface", "OS_INTERFACE"),
    ("cacert", "OS_CACERT"),
    ("insecure", "OS_INSECURE"),
    ("placement_endpoint_override", "OS_PLACEMENT_ENDPOINT"),
];

/// The secret fields, same shape as [`FIELDS`].
const SECRET_FIELDS: &[(&str, &str)] = &[
    ("auth.password", "OS_PASSWORD"),
    (
        "auth.application_credential_secret",
        "OS_APPLICATION_CREDENTIAL_SECRET",
    ),
];

fn from_env(env: Env) -> Result<CloudConfig, String> {
    let mut raw = Raw::default();
    for (key, var) in FIELDS {
        if let Some(value) = env(var).filter(|v| !v.is_empty()) {
            raw.values.insert(key, value);
        }
    }
    // Older spellings some openrc files still use.
    for (key, var) in [
        ("auth.project_name", "OS_TENANT_NAME"),
        ("auth.project_id", "OS_TENANT_ID"),
        ("interface", "OS_ENDPOINT_TYPE"),
    ] {
        if !raw.values.contains_key(key) {
            if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                raw.values.insert(key, value);
            }
        }
    }
    for (key, var) in SECRET_FIELDS {
        if let Some(value) = env(var).filter(|v| !v.is_empty()) {
            raw.secrets.insert(key, Secret::new(value));
        }
    }
    let name = |key: &str| {
        FIELDS
            .iter()
            .chain(SECRET_FIELDS)
            .find(|(k, _)| *k == key)
            .map_or(key.to_string(), |(_, var)| (*var).to_string())
    };
    validate(raw, &name, "OS_* environment variables".to_string())
}

/// The clouds.yaml (or secure.yaml) to read: the variable's file when set, else the first
/// candidate that exists.
fn find_file(
    override_var: &str,
    file_names: &[&str],
    env: Env,
    cwd: &Path,
) -> Result<Option<PathBuf>, String> {
    if let Some(path) = env(override_var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(format!("{override_var}={}: no such file", path.display()));
        }
        return Ok(Some(path));
    }
    let config_home = env("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".config")));
    let mut dirs = vec![cwd.to_path_buf()];
    if let Some(home) = config_home {
        dirs.push(home.join("openstack"));
    }
    dirs.push(PathBuf::from("/etc/openstack"));
    Ok(dirs
        .iter()
        .flat_map(|dir| file_names.iter().map(move |name| dir.join(name)))
        .find(|path| path.is_file()))
}

fn read_yaml(path: &Path) -> Result<Value, String> {
    let text = crate::input::read_text(path).map_err(|e| e.to_string())?;
    serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: invalid YAML: {e}", path.display()))
}

/// Merges `overlay` into `base`, mapping by mapping (secure.yaml onto clouds.yaml).
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Mapping(base), Value::Mapping(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

fn from_clouds_yaml(cloud: &str, env: Env, cwd: &Path) -> Result<CloudConfig, String> {
    let clouds_path = find_file(
        "OS_CLIENT_CONFIG_FILE",
        &["clouds.yaml", "clouds.yml"],
        env,
        cwd,
    )?
    .ok_or_else(|| {
        format!(
            "--os-cloud={cloud}: no clouds.yaml found (looked in ./, $XDG_CONFIG_HOME/openstack or ~/.config/openstack, /etc/openstack; OS_CLIENT_CONFIG_FILE is not set)"
        )
    })?;
    let mut document = read_yaml(&clouds_path)?;
    let secure_path = find_file(
        "OS_CLIENT_SECURE_FILE",
        &["secure.yaml", "secure.yml"],
        env,
        cwd,
    )?;
    if let Some(path) = &secure_path {
        merge(&mut document, read_yaml(path)?);
    }
    let files = match &secure_path {
        Some(secure) => format!("{} + {}", clouds_path.display(), secure.display()),
        None => clouds_path.display().to_string(),
    };
    let origin = format!("clouds.yaml cloud {cloud:?} ({files})");
    let clouds = document
        .get("clouds")
        .and_then(Value::as_mapping)
        .ok_or_else(|| format!("{files}: no top-level \"clouds:\" mapping"))?;
    let entry = clouds
        .get(cloud)
        .and_then(Value::as_mapping)
        .ok_or_else(|| {
            let mut known: Vec<&str> = clouds.keys().filter_map(Value::as_str).collect();
            known.sort_unstable();
            format!(
                "--os-cloud={cloud}: no such cloud in {files} (clouds: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })?;
    let mut raw = Raw::default();
    let lookup = |mapping: &Mapping, path: &str| -> Result<Option<String>, String> {
        let (first, rest) = match path.split_once('.') {
            Some((section, key)) => (Some(section), key),
            None => (None, path),
        };
        let mapping = match first {
            Some(section) => match mapping.get(section) {
                Some(Value::Mapping(inner)) => inner,
                Some(_) => return Err(format!("{origin}: {section} must be a mapping")),
                None => return Ok(None),
            },
            None => mapping,
        };
        match mapping.get(rest) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(format!("{origin}: {path} must be a string")),
        }
    };
    for (key, _) in FIELDS {
        if let Some(value) = lookup(entry, key)? {
            raw.values.insert(key, value);
        }
    }
    // clouds.yaml spells "skip verification" as verify: false.
    if !raw.values.contains_key("insecure") {
        if let Some(verify) = lookup(entry, "verify")? {
            let verify = parse_bool(&verify)
                .ok_or_else(|| format!("{origin}: verify must be true or false"))?;
            raw.values.insert("insecure", (!verify).to_string());
        }
    }
    for (key, _) in SECRET_FIELDS {
        if let Some(value) = lookup(entry, key)? {
            raw.secrets.insert(key, Secret::new(value));
        }
    }
    validate(raw, &|key: &str| key.to_string(), origin)
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// Checks the raw settings and builds the config. `name` spells a field the way its origin
/// does (`auth.password` or `OS_PASSWORD`).
fn validate(
    raw: Raw,
    name: &dyn Fn(&str) -> String,
    origin: String,
) -> Result<CloudConfig, String> {
    let get = |key: &str| raw.values.get(key).cloned();
    let missing = |what: String| format!("{origin}: {what}");

    // Registers the user info of every URL before anything can name one in an error.
    let placement_override = get("placement_endpoint_override").map(SecretUrl::new);
    let auth_url = get("auth.auth_url")
        .map(SecretUrl::new)
        .ok_or_else(|| missing(format!("{} is not set", name("auth.auth_url"))))?;
    let auth_url = normalize_auth_url(auth_url.expose())
        .map(SecretUrl::new)
        .map_err(|e| format!("{origin}: {}: {e}", name("auth.auth_url")))?;

    let domain = |id_key: &str, name_key: &str| -> Option<Domain> {
        get(id_key)
            .map(Domain::Id)
            .or_else(|| get(name_key).map(Domain::Name))
            .or_else(|| get("auth.domain_id").map(Domain::Id))
            .or_else(|| get("auth.domain_name").map(Domain::Name))
    };
    let user = || -> Result<Named, String> {
        if let Some(id) = get("auth.user_id") {
            return Ok(Named::Id(id));
        }
        let user_name = get("auth.username").ok_or_else(|| {
            missing(format!(
                "{} (or {}) is not set",
                name("auth.username"),
                name("auth.user_id")
            ))
        })?;
        let domain = domain("auth.user_domain_id", "auth.user_domain_name").ok_or_else(|| {
            missing(format!(
                "{} needs {} or {}",
                name("auth.username"),
                name("auth.user_domain_name"),
                name("auth.user_domain_id")
            ))
        })?;
        Ok(Named::Name {
            name: user_name,
            domain,
        })
    };

    let has_app_cred = get("auth.application_credential_id").is_some()
        || get("auth.application_credential_name").is_some()
        || raw
            .secrets
            .contains_key("auth.application_credential_secret");
    let auth_type = get("auth_type").unwrap_or_else(|| {
        if has_app_cred {
            "v3applicationcredential".to_string()
        } else {
            "password".to_string()
        }
    });
    let method = match auth_type.as_str() {
        "password" | "v3password" => {
            let password = raw
                .secrets
                .get("auth.password")
                .cloned()
                .ok_or_else(|| missing(format!("{} is not set", name("auth.password"))))?;
            let project = if let Some(id) = get("auth.project_id") {
                Named::Id(id)
            } else {
                let project_name = get("auth.project_name").ok_or_else(|| {
                    missing(format!(
                        "{} (or {}) is not set: the token must be scoped to the project the exporter's role is assigned on",
                        name("auth.project_name"),
                        name("auth.project_id")
                    ))
                })?;
                let domain = domain("auth.project_domain_id", "auth.project_domain_name")
                    .ok_or_else(|| {
                        missing(format!(
                            "{} needs {} or {}",
                            name("auth.project_name"),
                            name("auth.project_domain_name"),
                            name("auth.project_domain_id")
                        ))
                    })?;
                Named::Name {
                    name: project_name,
                    domain,
                }
            };
            AuthMethod::Password {
                user: user()?,
                password,
                project,
            }
        }
        "v3applicationcredential" | "applicationcredential" | "application_credential" => {
            let secret = raw
                .secrets
                .get("auth.application_credential_secret")
                .cloned()
                .ok_or_else(|| {
                    missing(format!(
                        "{} is not set",
                        name("auth.application_credential_secret")
                    ))
                })?;
            let credential = if let Some(id) = get("auth.application_credential_id") {
                AppCredential::Id(id)
            } else if let Some(cred_name) = get("auth.application_credential_name") {
                AppCredential::Name {
                    name: cred_name,
                    user: user()?,
                }
            } else {
                return Err(missing(format!(
                    "{} (or {} with the user) is not set",
                    name("auth.application_credential_id"),
                    name("auth.application_credential_name")
                )));
            };
            AuthMethod::ApplicationCredential { credential, secret }
        }
        other => {
            return Err(missing(format!(
                "{}={other}: supported are password, v3password and v3applicationcredential",
                name("auth_type")
            )))
        }
    };

    let interface = match get("interface") {
        None => Interface::Internal,
        Some(text) => Interface::parse(&text).ok_or_else(|| {
            missing(format!(
                "{}={text}: expected public, internal or admin",
                name("interface")
            ))
        })?,
    };
    let insecure = match get("insecure") {
        None => false,
        Some(text) => parse_bool(&text).ok_or_else(|| {
            missing(format!(
                "{}={text}: expected true or false",
                name("insecure")
            ))
        })?,
    };
    let (cacert_pem, cacert_path) = match get("cacert") {
        None => (None, None),
        Some(path) => {
            let path = PathBuf::from(path);
            let pem = crate::input::read_file(&path).map_err(|e| {
                missing(match e.io_error() {
                    Some(io) => format!("{}={}: {io}", name("cacert"), path.display()),
                    None => format!("{}: {e}", name("cacert")),
                })
            })?;
            reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|certs| !certs.is_empty())
                .ok_or_else(|| {
                    missing(format!(
                        "{}={}: no PEM certificate in it",
                        name("cacert"),
                        path.display()
                    ))
                })?;
            (Some(pem), Some(path))
        }
    };
    let mut endpoint_overrides = BTreeMap::new();
    if let Some(url) = placement_override {
        let text = url.expose();
        if !(text.starts_with("http://") || text.starts_with("https://")) {
            return Err(missing(format!(
                "{}={url}: expected an http(s) URL",
                name("placement_endpoint_override")
            )));
        }
        endpoint_overrides.insert(
            "placement".to_string(),
            SecretUrl::new(text.trim_end_matches('/')),
        );
    }
    Ok(CloudConfig {
        auth_url,
        method,
        region_name: get("region_name"),
        interface,
        cacert_pem,
        cacert_path,
        insecure,
        endpoint_overrides,
        origin,
    })
}

/// `https://keystone:5000`, `.../v3/` and `.../identity/v3` all become `.../v3`.
fn normalize_auth_url(url: &str) -> Result<String, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("expected an http(s) URL, got {url:?}"));
    }
    let trimmed = url.trim_end_matches('/');
    if trimmed.ends_with("/v2.0") {
        return Err(format!(
            "{url} is Keystone's v2.0 API, which is gone: use the v3 URL"
        ));
    }
    if trimmed.ends_with("/v3") {
        Ok(trimmed.to_string())
    } else {
        Ok(format!("{trimmed}/v3"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key: &str| map.get(key).cloned()
    }

    const PASSWORD_ENV: &[(&str, &str)] = &[
        ("OS_AUTH_URL", "http://keystone.example:5000"),
        ("OS_USERNAME", "exporter"),
        ("OS_PASSWORD", "hunter2-very-secret"),
        ("OS_PROJECT_NAME", "service"),
        ("OS_USER_DOMAIN_NAME", "Default"),
        ("OS_PROJECT_DOMAIN_ID", "default"),
        ("OS_REGION_NAME", "RegionOne"),
    ];

    #[test]
    fn os_variables_give_a_password_config_with_internal_default() {
        let env = env_of(PASSWORD_ENV);
        let config = load(None, &env, Path::new("/nonexistent")).unwrap();
        assert_eq!(config.auth_url.expose(), "http://keystone.example:5000/v3");
        assert_eq!(config.interface, Interface::Internal);
        assert_eq!(config.region_name.as_deref(), Some("RegionOne"));
        assert_eq!(
            config.method,
            AuthMethod::Password {
                user: Named::Name {
                    name: "exporter".into(),
                    domain: Domain::Name("Default".into())
                },
                password: Secret::new("hunter2-very-secret"),
                project: Named::Name {
                    name: "service".into(),
                    domain: Domain::Id("default".into())
                },
            }
        );
        assert_eq!(config.origin, "OS_* environment variables");
        assert!(!config.insecure);
    }

    #[test]
    fn os_variables_for_an_application_credential() {
        let env = env_of(&[
            ("OS_AUTH_URL", "https://keystone.example/identity/v3/"),
            ("OS_AUTH_TYPE", "v3applicationcredential"),
            ("OS_APPLICATION_CREDENTIAL_ID", "abc123"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "s3cr3t-app-cred"),
            ("OS_INTERFACE", "publicURL"),
            ("OS_INSECURE", "true"),
        ]);
        let config = load(None, &env, Path::new("/nonexistent")).unwrap();
        assert_eq!(
            config.auth_url.expose(),
            "https://keystone.example/identity/v3"
        );
        assert_eq!(config.interface, Interface::Public);
        assert!(config.insecure);
        assert_eq!(
            config.method,
            AuthMethod::ApplicationCredential {
                credential: AppCredential::Id("abc123".into()),
                secret: Secret::new("s3cr3t-app-cred"),
            }
        );
    }

    #[test]
    fn missing_or_bad_os_variables_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "no OpenStack credentials"),
            (&[("OS_AUTH_URL", "http://k/v3")], "OS_PASSWORD is not set"),
            (
                &[
                    ("OS_AUTH_URL", "http://k/v3"),
                    ("OS_PASSWORD", "pw-unit-5521"),
                    ("OS_USERNAME", "u"),
                    ("OS_USER_DOMAIN_ID", "default"),
                ],
                "OS_PROJECT_NAME (or OS_PROJECT_ID) is not set",
            ),
            (
                &[
                    ("OS_AUTH_URL", "http://k/v3"),
                    ("OS_PASSWORD", "pw-unit-5521"),
                    ("OS_USERNAME", "u"),
                    ("OS_PROJECT_ID", "p"),
                ],
                "OS_USERNAME needs OS_USER_DOMAIN_NAME or OS_USER_DOMAIN_ID",
            ),
            (
                &[
                    ("OS_AUTH_URL", "http://k/v2.0"),
                    ("OS_PASSWORD", "pw-unit-5521"),
                ],
                "OS_AUTH_URL: http://k/v2.0 is Keystone's v2.0 API",
            ),
            (
                &[("OS_AUTH_URL", "http://k/v3"), ("OS_AUTH_TYPE", "token")],
                "OS_AUTH_TYPE=token: supported are",
            ),
            (
                &[
                    ("OS_AUTH_URL", "http://k/v3"),
                    ("OS_APPLICATION_CREDENTIAL_ID", "a"),
                    ("OS_APPLICATION_CREDENTIAL_SECRET", "acs-unit-7734"),
                    ("OS_INTERFACE", "private"),
                ],
                "OS_INTERFACE=private: expected public, internal or admin",
            ),
            (
                &[
                    ("OS_AUTH_URL", "http://k/v3"),
                    ("OS_APPLICATION_CREDENTIAL_ID", "a"),
                    ("OS_APPLICATION_CREDENTIAL_SECRET", "acs-unit-7734"),
                    ("OS_CACERT", "/nonexistent/ca.pem"),
                ],
                "OS_CACERT=/nonexistent/ca.pem",
            ),
        ];
        for (pairs, expected) in cases {
            let env = env_of(pairs);
            let err = load(None, &env, Path::new("/nonexistent")).unwrap_err();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    const CLOUDS: &str = r#"
clouds:
  prod:
    auth:
      auth_url: https://keystone.prod.example:5000
      application_credential_id: 8e5d00a5dcb9
    auth_type: v3applicationcredential
    region_name: RegionTwo
    interface: internal
  lab:
    auth:
      auth_url: http://lab:5000/v3
      username: exporter
      password: in-clouds-yaml
      project_name: service
      user_domain_name: Default
      project_domain_name: Default
    verify: false
    placement_endpoint_override: http://placement.lab:8778/
"#;
    const SECURE: &str = r#"
clouds:
  prod:
    auth:
      application_credential_secret: from-secure-yaml
  lab:
    auth:
      password: from-secure-yaml-wins
"#;

    #[test]
    fn clouds_yaml_is_merged_with_secure_yaml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("clouds.yaml"), CLOUDS).unwrap();
        std::fs::write(dir.path().join("secure.yaml"), SECURE).unwrap();
        let env = env_of(&[]);
        let prod = load(Some("prod"), &env, dir.path()).unwrap();
        assert_eq!(
            prod.auth_url.expose(),
            "https://keystone.prod.example:5000/v3"
        );
        assert_eq!(prod.region_name.as_deref(), Some("RegionTwo"));
        assert_eq!(
            prod.method,
            AuthMethod::ApplicationCredential {
                credential: AppCredential::Id("8e5d00a5dcb9".into()),
                secret: Secret::new("from-secure-yaml"),
            }
        );
        assert!(prod.origin.contains("clouds.yaml cloud \"prod\""));
        assert!(prod.origin.contains("secure.yaml"));

        let lab = load(Some("lab"), &env, dir.path()).unwrap();
        assert!(lab.insecure);
        match &lab.method {
            AuthMethod::Password { password, .. } => {
                assert_eq!(password.expose(), "from-secure-yaml-wins")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            lab.endpoint_overrides
                .get("placement")
                .map(SecretUrl::expose),
            Some("http://placement.lab:8778")
        );
    }

    #[test]
    fn clouds_yaml_lookup_order_and_override_variable() {
        let cwd = tempfile::tempdir().unwrap();
        let xdg = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(xdg.path().join("openstack")).unwrap();
        std::fs::write(
            xdg.path().join("openstack/clouds.yaml"),
            CLOUDS.replace("RegionTwo", "FromXdg"),
        )
        .unwrap();
        std::fs::write(xdg.path().join("openstack/secure.yaml"), SECURE).unwrap();
        let xdg_str = xdg.path().display().to_string();
        let env = env_of(&[("XDG_CONFIG_HOME", &xdg_str)]);
        let config = load(Some("prod"), &env, cwd.path()).unwrap();
        assert_eq!(config.region_name.as_deref(), Some("FromXdg"));

        // ./clouds.yaml wins over the XDG one.
        std::fs::write(cwd.path().join("clouds.yaml"), CLOUDS).unwrap();
        let config = load(Some("prod"), &env, cwd.path()).unwrap();
        assert_eq!(config.region_name.as_deref(), Some("RegionTwo"));

        // OS_CLIENT_CONFIG_FILE wins over both, and must exist.
        let explicit = cwd.path().join("other.yaml");
        std::fs::write(&explicit, CLOUDS.replace("RegionTwo", "Explicit")).unwrap();
        let explicit_str = explicit.display().to_string();
        let env = env_of(&[
            ("XDG_CONFIG_HOME", &xdg_str),
            ("OS_CLIENT_CONFIG_FILE", &explicit_str),
        ]);
        let config = load(Some("prod"), &env, cwd.path()).unwrap();
        assert_eq!(config.region_name.as_deref(), Some("Explicit"));
        let env = env_of(&[("OS_CLIENT_CONFIG_FILE", "/nonexistent/clouds.yaml")]);
        let err = load(Some("prod"), &env, cwd.path()).unwrap_err();
        assert!(
            err.contains("OS_CLIENT_CONFIG_FILE=/nonexistent/clouds.yaml"),
            "{err}"
        );
    }

    #[test]
    fn clouds_yaml_errors_name_the_cloud_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("clouds.yaml"), CLOUDS).unwrap();
        let env = env_of(&[]);
        let err = load(Some("nope"), &env, dir.path()).unwrap_err();
        assert!(err.contains("--os-cloud=nope: no such cloud"), "{err}");
        assert!(err.contains("lab, prod"), "{err}");
        // Without secure.yaml the prod cloud lacks its secret.
        let err = load(Some("prod"), &env, dir.path()).unwrap_err();
        assert!(
            err.contains("auth.application_credential_secret is not set"),
            "{err}"
        );
        std::fs::write(dir.path().join("clouds.yaml"), "clouds: [").unwrap();
        let err = load(Some("prod"), &env, dir.path()).unwrap_err();
        assert!(err.contains("invalid YAML"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let err = load(Some("prod"), &env, empty.path()).unwrap_err();
        assert!(err.contains("no clouds.yaml found"), "{err}");
    }

    #[test]
    fn secrets_never_show_in_debug_or_display() {
        let env = env_of(PASSWORD_ENV);
        let config = load(None, &env, Path::new("/nonexistent")).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert_eq!(
            format!("{}", Secret::new("unit-display-secret")),
            "<redacted>"
        );
        assert!(!config.who().contains("hunter2"));
        assert_eq!(
            config.who(),
            "user \"exporter\" (domain \"Default\") with a password, project \"service\" (domain id default)"
        );
    }
}
