//! Hostile or careless upstream servers (issue 20), against the exporter's own sources in
//! process, with loopback stubs where a real server will not misbehave on demand.
//!
//! **Credentials never follow a redirect to another origin**: a "home" server plays Keystone,
//! placement and the compute API and answers one kind of request with a redirect (301, 302,
//! 303, 307, 308) to an "other" server on another port, to itself, or from https down to http;
//! the other server records every request it gets. The tests drive the Keystone session, the
//! placement source, the nova source's hypervisor search, the flavor list and the orphan lookup,
//! and check that no password, application credential secret, token or Basic credential reaches
//! the other origin (it gets no request at all), that a same-origin redirect of a service GET is
//! followed with the token, and that the error names the redacted target and what to fix.
//!
//! **Identity and sizes from upstream**: a servers list naming one server many times counts it
//! once; a hypervisor's `local_gb_used` of `i64::MIN` is refused, not wrapped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nova_lvm_exporter::openstack::config::{
    AppCredential, AuthMethod, CloudConfig, Domain, Interface, Named, Secret,
};
use nova_lvm_exporter::openstack::keystone::Session;
use nova_lvm_exporter::redact::SecretUrl;
use nova_lvm_exporter::tracked::compute::ComputeClient;
use nova_lvm_exporter::tracked::flavors::fetch_flavor_list;
use nova_lvm_exporter::tracked::host::ProviderName;
use nova_lvm_exporter::tracked::nova::NovaSource;
use nova_lvm_exporter::tracked::orphans::{OrphanLookup, Whereabouts};
use nova_lvm_exporter::tracked::placement::PlacementSource;
use nova_lvm_exporter::tracked::{HostDiskSettings, TrackedSource};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const PASSWORD: &str = "RedirectPw-5e1a7c";
const APP_CRED_SECRET: &str = "RedirectAppCred-0d93b2";
const TOKEN: &str = "gAAAAABredirect-token-7f3c";
/// In the user info of the catalog's compute URL: sent as Basic auth.
const CATALOG_PASSWORD: &str = "RedirectCatPw-81c4";
/// The Basic credential a client derives from `cat:CATALOG_PASSWORD`.
const CATALOG_BASIC: &str = "Y2F0OlJlZGlyZWN0Q2F0UHctODFjNA==";
const PROVIDER: &str = "0f6b2d84-93a1-4e57-8c2f-6a1d9e3b7c40";
const SERVER: &str = "d0000000-0000-4000-8000-000000000004";
const STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// Where the home server's redirect points.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// The other server, same path.
    Other,
    /// Itself, the path under `/moved`.
    SameOrigin,
}

/// What the home server's compute API holds besides the defaults.
#[derive(Clone, Copy)]
struct Scenario {
    /// How many times the host's servers list names [`SERVER`].
    servers_repeated: usize,
    /// The hypervisor's `local_gb_used`.
    local_gb_used: i64,
    /// The `uuid` placement gives for [`PROVIDER`].
    provider_uuid: &'static str,
}

const NORMAL: Scenario = Scenario {
    servers_repeated: 1,
    local_gb_used: 20,
    provider_uuid: PROVIDER,
};

/// Which requests the home server redirects: those whose path (and query) starts with `trap`.
#[derive(Clone)]
struct Rule {
    trap: &'static str,
    status: u16,
    target: Target,
}

/// A loopback server recording every request (head and body).
struct Stub {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Stub {
    fn received(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Whether any request it got carried `needle`.
    fn saw(&self, needle: &str) -> bool {
        self.received().iter().any(|r| r.contains(needle))
    }
}

/// Reads one request: the head, then a body of Content-Length bytes.
async fn read_request<S: AsyncRead + Unpin>(reader: &mut BufReader<S>) -> Option<String> {
    let mut request = String::new();
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
        request.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).await.ok()?;
    request.push_str(&String::from_utf8_lossy(&body));
    Some(request)
}

async fn respond<S: AsyncWrite + Unpin>(stream: &mut S, status: u16, headers: &str, body: &str) {
    let text = format!(
        "HTTP/1.1 {status} X\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// What the home server answers to `path` when it does not redirect: Keystone's token (with a
/// catalog pointing back at `base`), both version documents, the provider, its inventories and
/// allocations, a flavor page, a servers page holding [`SERVER`].
fn normal_answer(
    base: &str,
    method: &str,
    path: &str,
    scenario: Scenario,
) -> (u16, String, String) {
    if method == "POST" && path.ends_with("/auth/tokens") {
        let (scheme, host) = base.split_once("://").unwrap();
        let body = json!({"token": {
        "expires_at": "2099-01-01T00:00:00.000000Z",
        "roles": [{"name": "admin"}],
        "catalog": [
            {"type": "compute", "endpoints": [{"interface": "internal", "region_id": "RegionOne",
              "url": format!("{scheme}://cat:{CATALOG_PASSWORD}@{host}/compute")}]},
            {"type": "placement", "endpoints": [{"interface": "internal", "region_id": "RegionOne",
              "url": format!("{base}/placement")}]}
        ]}});
        return (
            201,
            format!("X-Subject-Token: {TOKEN}\r\n"),
            body.to_string(),
        );
    }
    let body = match path.split('?').next().unwrap_or("") {
        "/placement/" => json!({"versions": [
            {"id": "v1.0", "max_version": "1.39", "min_version": "1.0", "status": "CURRENT"}]}),
        "/compute/" => json!({"version": {
            "id": "v2.1", "version": "2.96", "min_version": "2.1", "status": "CURRENT"}}),
        p if p == format!("/placement/resource_providers/{PROVIDER}") => {
            json!({"uuid": scenario.provider_uuid, "name": "host1", "generation": 1})
        }
        p if p.ends_with("/inventories") => json!({
            "inventories": {"DISK_GB": {"total": 100, "reserved": 0, "allocation_ratio": 1.0,
                "min_unit": 1, "max_unit": 100, "step_size": 1}},
            "resource_provider_generation": 1}),
        p if p.ends_with("/allocations") => json!({
            "allocations": {}, "resource_provider_generation": 1}),
        "/compute/flavors/detail" => json!({"flavors": [{
            "id": "1", "name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20,
            "OS-FLV-EXT-DATA:ephemeral": 0, "swap": 0, "OS-FLV-DISABLED:disabled": false}]}),
        "/compute/os-hypervisors/detail" => json!({"hypervisors": [{
            "id": "5e3f8a52-6c1d-4b7e-9a0f-1d2c3b4a5e6f", "hypervisor_hostname": "host1",
            "local_gb": 100, "local_gb_used": scenario.local_gb_used, "free_disk_gb": 80,
            "disk_available_least": 80, "service": {"host": "host1"}}]}),
        "/compute/servers/detail" if path.contains("&host=") => {
            let server = json!({
                "id": SERVER.to_ascii_uppercase(), "status": "ACTIVE",
                "OS-EXT-SRV-ATTR:hypervisor_hostname": "host1",
                "image": {"id": "70a599e0-31e7-49b7-b260-868f441e862b"},
                "flavor": {"disk": 20, "ephemeral": 0, "swap": 0, "original_name": "m1.small"}});
            json!({"servers": vec![server; scenario.servers_repeated]})
        }
        "/compute/servers/detail" => json!({"servers": [{
            "id": SERVER, "status": "ACTIVE", "OS-EXT-SRV-ATTR:host": "host1",
            "OS-EXT-SRV-ATTR:hypervisor_hostname": "host1", "OS-EXT-STS:vm_state": "active"}]}),
        _ => {
            return (
                404,
                String::new(),
                json!({"error": "no such path"}).to_string(),
            )
        }
    };
    (200, String::new(), body.to_string())
}

/// Serves one connection: records the request, then redirects it by `rule` or answers it.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    base: String,
    other: String,
    rule: Option<Rule>,
    scenario: Scenario,
    log: Arc<Mutex<Vec<String>>>,
) {
    let mut reader = BufReader::new(stream);
    let Some(request) = read_request(&mut reader).await else {
        return;
    };
    log.lock().unwrap().push(request.clone());
    let mut words = request.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let raw_path = words.next().unwrap_or("").to_string();
    let stream = reader.get_mut();
    let (moved, path) = match raw_path.strip_prefix("/moved") {
        Some(rest) => (true, rest.to_string()),
        None => (false, raw_path.clone()),
    };
    if let Some(rule) = rule.filter(|r| !moved && path.starts_with(r.trap)) {
        let location = match rule.target {
            Target::Other => format!("{other}{path}"),
            Target::SameOrigin => format!("/moved{path}"),
        };
        let headers = format!("Location: {location}\r\n");
        respond(stream, rule.status, &headers, "{}").await;
        return;
    }
    let (status, headers, body) = normal_answer(&base, &method, &path, scenario);
    respond(stream, status, &headers, &body).await;
}

/// A plain-HTTP server; `rule` makes it the home server (redirecting to `other`), `None` the
/// other server (answering normally, recording all).
async fn start_plain(rule: Option<Rule>, other: &str) -> Stub {
    start_plain_with(rule, other, NORMAL).await
}

/// [`start_plain`] with a compute API holding `scenario`.
async fn start_plain_with(rule: Option<Rule>, other: &str, scenario: Scenario) -> Stub {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (log, served_base, other) = (Arc::clone(&requests), base.clone(), other.to_string());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let args = (served_base.clone(), other.clone(), rule.clone());
            tokio::spawn(serve(
                stream,
                args.0,
                args.1,
                args.2,
                scenario,
                Arc::clone(&log),
            ));
        }
    });
    Stub { base, requests }
}

/// An https home server with a self-signed certificate (the client skips verification: the
/// test is about where the credential goes, not about certificates).
async fn start_tls(rule: Rule, other: &str, dir: &std::path::Path) -> Stub {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let output = std::process::Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .output()
        .expect("openssl");
    assert!(output.status.success(), "{output:?}");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("cert.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (log, served_base, other) = (Arc::clone(&requests), base.clone(), other.to_string());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, log) = (acceptor.clone(), Arc::clone(&log));
            let args = (served_base.clone(), other.clone(), rule.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve(tls, args.0, args.1, Some(args.2), NORMAL, log).await;
                }
            });
        }
    });
    Stub { base, requests }
}

#[derive(Clone, Copy)]
enum Auth {
    Password,
    AppCredential,
}

fn session(home: &Stub, auth: Auth, placement_override: bool) -> Arc<Session> {
    let method = match auth {
        Auth::Password => AuthMethod::Password {
            user: Named::Name {
                name: "exporter".into(),
                domain: Domain::Name("Default".into()),
            },
            password: Secret::new(PASSWORD),
            project: Named::Name {
                name: "service".into(),
                domain: Domain::Name("Default".into()),
            },
        },
        Auth::AppCredential => AuthMethod::ApplicationCredential {
            credential: AppCredential::Id("ac-1".into()),
            secret: Secret::new(APP_CRED_SECRET),
        },
    };
    let mut endpoint_overrides = std::collections::BTreeMap::new();
    if placement_override {
        endpoint_overrides.insert(
            "placement".to_string(),
            SecretUrl::new(format!("{}/placement", home.base)),
        );
    }
    let cloud = CloudConfig {
        auth_url: SecretUrl::new(format!("{}/v3", home.base)),
        method,
        region_name: None,
        interface: Interface::Internal,
        cacert_pem: None,
        cacert_path: None,
        insecure: home.base.starts_with("https"),
        endpoint_overrides,
        origin: "OS_* variables".into(),
    };
    Arc::new(Session::new(cloud, Duration::from_secs(5)).unwrap())
}

/// Checks that `other` got nothing at all (so no credential), and that the error names the
/// redirect, the redacted target and `fix`.
fn assert_refused(error: &str, other: &Stub, status: u16, fix: &str) {
    let received = other.received();
    assert!(
        received.is_empty(),
        "the other origin got requests after a {status}: {received:#?}"
    );
    for secret in [
        PASSWORD,
        APP_CRED_SECRET,
        TOKEN,
        CATALOG_PASSWORD,
        CATALOG_BASIC,
    ] {
        assert!(!other.saw(secret), "{secret} reached the other origin");
        assert!(!error.contains(secret), "{secret} in {error}");
    }
    assert!(
        error.contains(&format!(
            "answered HTTP {status} redirecting to {}",
            other.base
        )),
        "{error}"
    );
    assert!(error.contains("not followed"), "{error}");
    assert!(error.contains(fix), "{error}");
}

fn provider() -> ProviderName {
    ProviderName {
        name: "host1".into(),
        origin: "the test".into(),
        uuid: Some(PROVIDER.into()),
        in_nova_order: false,
    }
}

/// The home server redirecting `trap` with `status` to `target`, and the other server.
async fn pair(trap: &'static str, status: u16, target: Target) -> (Stub, Stub) {
    let other = start_plain(None, "").await;
    let rule = Rule {
        trap,
        status,
        target,
    };
    let home = start_plain(Some(rule), &other.base).await;
    (home, other)
}

#[tokio::test]
async fn keystone_token_requests_follow_no_redirect_with_a_password_or_an_app_credential() {
    for auth in [Auth::Password, Auth::AppCredential] {
        for status in STATUSES {
            let (home, other) = pair("/v3/auth/tokens", status, Target::Other).await;
            let error = session(&home, auth, false).token().await.unwrap_err();
            assert_refused(&error.to_string(), &other, status, "OS_AUTH_URL");
            assert!(error
                .to_string()
                .contains("a token request follows no redirect"));
            assert_eq!(home.received().len(), 1, "one token request, not re-sent");
            // Not even to the same origin: the credentials go to the configured URL only.
            let (home, other) = pair("/v3/auth/tokens", status, Target::SameOrigin).await;
            let error = session(&home, auth, false).token().await.unwrap_err();
            assert!(
                error.to_string().contains(&format!(
                    "redirecting to {}/moved/v3/auth/tokens",
                    home.base
                )),
                "{error}"
            );
            assert_eq!(home.received().len(), 1, "{:#?}", home.received());
            assert!(other.received().is_empty());
        }
    }
}

#[tokio::test]
async fn placement_follows_a_redirect_to_its_own_origin_only() {
    for status in STATUSES {
        for placement_override in [false, true] {
            let (home, other) = pair("/placement/resource_providers", status, Target::Other).await;
            let source = PlacementSource::new(
                session(&home, Auth::Password, placement_override),
                provider(),
            );
            let error = source.collect().await.unwrap_err().to_string();
            let fix = if placement_override {
                "fix placement_endpoint_override (OS_PLACEMENT_ENDPOINT; from OS_* variables)"
            } else {
                "fix the placement endpoint for interface internal in Keystone's service catalog"
            };
            assert_refused(&error, &other, status, fix);
        }
        let (home, other) = pair("/placement/resource_providers", status, Target::SameOrigin).await;
        let source = PlacementSource::new(session(&home, Auth::Password, false), provider());
        let usage = source.collect().await.unwrap();
        assert_eq!(usage.instances.len(), 0);
        let moved: Vec<String> = home
            .received()
            .into_iter()
            .filter(|r| r.starts_with("GET /moved/placement/resource_providers"))
            .collect();
        assert_eq!(moved.len(), 3, "provider, inventories, allocations");
        assert!(moved.iter().all(|r| r
            .to_ascii_lowercase()
            .contains(&format!("x-auth-token: {TOKEN}").to_ascii_lowercase())));
        assert!(other.received().is_empty());
    }
}

#[tokio::test]
async fn the_compute_api_hypervisor_search_never_follows_to_another_origin() {
    for status in STATUSES {
        let (home, other) = pair("/compute/os-hypervisors", status, Target::Other).await;
        let source = NovaSource::new(
            compute(session(&home, Auth::Password, false)),
            provider(),
            HostDiskSettings::default(),
        );
        let error = source.collect().await.unwrap_err().to_string();
        assert_refused(
            &error,
            &other,
            status,
            "fix the compute endpoint for interface internal in Keystone's service catalog",
        );
    }
}

#[tokio::test]
async fn the_flavor_list_follows_a_redirect_to_its_own_origin_only() {
    for status in STATUSES {
        let (home, other) = pair("/compute/flavors", status, Target::Other).await;
        let error = fetch_flavor_list(&compute(session(&home, Auth::Password, false)))
            .await
            .unwrap_err();
        assert_refused(&error, &other, status, "compute endpoint");

        let (home, other) = pair("/compute/flavors", status, Target::SameOrigin).await;
        let flavors = fetch_flavor_list(&compute(session(&home, Auth::Password, false)))
            .await
            .unwrap();
        assert_eq!(flavors.len(), 1);
        assert_eq!(flavors[0].name, "m1.small");
        let moved = home
            .received()
            .into_iter()
            .find(|r| r.starts_with("GET /moved/compute/flavors/detail"))
            .expect("the same-origin redirect was followed");
        assert!(moved.contains(TOKEN), "{moved}");
        assert!(other.received().is_empty());
    }
}

#[tokio::test]
async fn orphan_lookups_follow_a_redirect_to_their_own_origin_only() {
    for status in STATUSES {
        let (home, other) = pair("/compute/servers/detail", status, Target::Other).await;
        let error = compute(session(&home, Auth::AppCredential, false))
            .look_up(SERVER)
            .await
            .unwrap_err();
        assert_refused(&error, &other, status, "compute endpoint");

        let (home, other) = pair("/compute/servers/detail", status, Target::SameOrigin).await;
        let found = compute(session(&home, Auth::AppCredential, false))
            .look_up(SERVER)
            .await
            .unwrap();
        assert!(
            matches!(&found, Whereabouts::Server(s) if s.id == SERVER),
            "{found:?}"
        );
        assert!(home
            .received()
            .iter()
            .any(|r| r.starts_with("GET /moved/compute/servers/detail") && r.contains(TOKEN)));
        assert!(other.received().is_empty());
    }
}

#[tokio::test]
async fn an_https_to_http_downgrade_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (trap, auth) in [
        ("/v3/auth/tokens", Auth::Password),
        ("/placement/resource_providers", Auth::AppCredential),
        ("/compute/flavors", Auth::Password),
    ] {
        for status in STATUSES {
            let other = start_plain(None, "").await;
            let rule = Rule {
                trap,
                status,
                target: Target::Other,
            };
            let home = start_tls(rule, &other.base, dir.path()).await;
            let session = session(&home, auth, false);
            let error = match trap {
                "/v3/auth/tokens" => session.token().await.unwrap_err().to_string(),
                "/compute/flavors" => fetch_flavor_list(&compute(session)).await.unwrap_err(),
                _ => PlacementSource::new(session, provider())
                    .collect()
                    .await
                    .unwrap_err()
                    .to_string(),
            };
            let fix = if trap.starts_with("/v3") {
                "OS_AUTH_URL"
            } else {
                "in Keystone's service catalog"
            };
            assert_refused(&error, &other, status, fix);
            if !trap.starts_with("/v3") {
                assert!(error.contains("downgrade from https to http"), "{error}");
            }
        }
    }
}

#[tokio::test]
async fn the_target_is_named_without_its_user_info_or_query() {
    let other = start_plain(None, "").await;
    let port = other.base.rsplit(':').next().unwrap();
    let rule = Rule {
        trap: "/compute/flavors",
        status: 302,
        target: Target::Other,
    };
    // The other base with user info, so that the Location carries it; the path keeps the query.
    let home = start_plain(
        Some(rule),
        &format!("http://thief:LocationPw-33@127.0.0.1:{port}"),
    )
    .await;
    let error = fetch_flavor_list(&compute(session(&home, Auth::Password, false)))
        .await
        .unwrap_err();
    assert!(!error.contains("LocationPw-33"), "{error}");
    let target = error.split("redirecting to").nth(1).unwrap();
    assert!(
        !target.contains("is_public"),
        "the query is not shown: {error}"
    );
    assert!(
        error.contains(&format!(
            "redirecting to http://<redacted>@127.0.0.1:{port}/compute/flavors/detail?<redacted>"
        )),
        "{error}"
    );
    assert!(other.received().is_empty());
}

/// The compute API's client through `session`, bounded by the session's timeout.
fn compute(session: Arc<Session>) -> Arc<ComputeClient> {
    Arc::new(ComputeClient::new(session, None))
}

fn nova_source(home: &Stub) -> NovaSource {
    NovaSource::new(
        compute(session(home, Auth::Password, false)),
        provider(),
        HostDiskSettings::default(),
    )
}

#[tokio::test]
async fn a_server_listed_a_thousand_times_in_another_spelling_is_one_instance() {
    let scenario = Scenario {
        servers_repeated: 1000,
        ..NORMAL
    };
    let home = start_plain_with(None, "", scenario).await;
    let usage = nova_source(&home).collect().await.unwrap();
    assert_eq!(usage.instances.len(), 1, "{:?}", &usage.instances[..2]);
    // Upper case in the answer, nova's canonical lower case here, as the other sources have it.
    assert_eq!(usage.instances[0].uuid, SERVER);
    assert_eq!(usage.instances[0].tracked_bytes, 20 << 30);
}

#[tokio::test]
async fn a_local_gb_used_of_i64_min_is_refused_not_wrapped() {
    let scenario = Scenario {
        local_gb_used: i64::MIN,
        ..NORMAL
    };
    let home = start_plain_with(None, "", scenario).await;
    let settings = HostDiskSettings {
        reserved_host_disk_mb: 1024,
        disk_allocation_ratio: 1.0,
    };
    let source = NovaSource::new(
        compute(session(&home, Auth::Password, false)),
        provider(),
        settings,
    );
    let error = source.collect().await.unwrap_err().to_string();
    assert!(
        error.contains(
            "local_gb_used is -9223372036854775808 GiB; nova never reports a negative size"
        ),
        "{error}"
    );
    assert!(!error.contains("9223372036854775807"), "{error}");
}

#[tokio::test]
async fn a_provider_uuid_that_is_no_uuid_never_becomes_a_request_path() {
    let scenario = Scenario {
        provider_uuid: "../../../v3/auth/tokens?x=",
        ..NORMAL
    };
    let home = start_plain_with(None, "", scenario).await;
    let source = PlacementSource::new(session(&home, Auth::Password, false), provider());
    let error = source.collect().await.unwrap_err().to_string();
    assert!(error.contains("is not a UUID"), "{error}");
    let requests = home.received();
    assert!(
        !requests
            .iter()
            .any(|r| r.contains("/inventories") || r.contains("/allocations")),
        "{requests:#?}"
    );
}
