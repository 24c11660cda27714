//! The HTTP side: `/metrics` (or the configured path), `/healthz` and the status page at `/`
//! served by hyper with the limits an exporter on every compute node needs, and TLS, basic auth
//! and response headers from an exporter-toolkit web configuration file.
//!
//! Limits: connections are bounded ([`ServerLimits::max_connections`]; beyond it the kernel's
//! backlog holds new ones), request headers must arrive within
//! [`ServerLimits::header_read_timeout`] and fit in [`ServerLimits::max_header_bytes`] (slowloris),
//! the TLS handshake has its own timeout, every request is answered within
//! [`ServerLimits::request_timeout`], at most [`ServerLimits::max_concurrent_scrapes`] scrapes
//! render at once (the others wait), and only `GET`/`HEAD` on the known paths are served.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::rustls;

use crate::collect::{SingleFlight, Snapshot};
use crate::metrics;
use crate::report::{Report, ReportContext};
use crate::status;
use crate::webconfig::{self, WebConfig, WebConfigError};

/// The limits the server enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Open connections at most; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// A request's headers must be complete within this.
    pub header_read_timeout: Duration,
    /// Request line and headers fit in this many bytes (hyper's read buffer; 8 KiB at least).
    pub max_header_bytes: usize,
    /// The TLS handshake must be complete within this.
    pub tls_handshake_timeout: Duration,
    /// Every request is answered within this (503 past it).
    pub request_timeout: Duration,
    /// Scrapes rendered at once; the others wait (within the request timeout).
    pub max_concurrent_scrapes: usize,
    /// How long in-flight requests may take to finish after SIGTERM. With the runtime's own
    /// shutdown bound (see `main`) the process ends within 6 s of SIGTERM, whatever is stuck.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            tls_handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_concurrent_scrapes: 64,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// What the handlers share.
pub struct AppState {
    /// The collection shared by concurrent scrapes.
    pub collections: SingleFlight,
    /// The metrics path, for the landing page link.
    pub telemetry_path: String,
    /// A short description of what this exporter watches, for the landing page.
    pub summary: Vec<(String, String)>,
    /// Where the figures come from, for the status page.
    pub report_context: ReportContext,
    /// The web configuration file, when one is used.
    pub web: Option<Arc<WebConfigSource>>,
    /// Bounds the scrapes rendered at once.
    pub scrape_slots: Semaphore,
    /// Every request is answered within this.
    pub request_timeout: Duration,
    /// The last rendered exposition and the snapshot it was rendered from: concurrent scrapes
    /// that share a collection share its rendering too.
    rendered: Mutex<Option<(Arc<Snapshot>, Arc<String>)>>,
}

impl AppState {
    /// State for the given collections and settings.
    pub fn new(
        collections: SingleFlight,
        telemetry_path: String,
        summary: Vec<(String, String)>,
        report_context: ReportContext,
        web: Option<Arc<WebConfigSource>>,
        limits: &ServerLimits,
    ) -> Self {
        Self {
            collections,
            telemetry_path,
            summary,
            report_context,
            web,
            scrape_slots: Semaphore::new(limits.max_concurrent_scrapes.max(1)),
            request_timeout: limits.request_timeout,
            rendered: Mutex::new(None),
        }
    }

    /// The exposition of `snapshot`, rendered once however many scrapes share it.
    async fn render(&self, snapshot: Arc<Snapshot>) -> Result<Arc<String>, String> {
        if let Some((last, text)) = &*self.rendered.lock().unwrap_or_else(|e| e.into_inner()) {
            if Arc::ptr_eq(last, &snapshot) {
                return Ok(Arc::clone(text));
            }
        }
        let for_render = Arc::clone(&snapshot);
        let text = tokio::task::spawn_blocking(move || metrics::render(&for_render))
            .await
            .map(Arc::new)
            .map_err(|e| format!("rendering failed: {e}"))?;
        *self.rendered.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((snapshot, Arc::clone(&text)));
        Ok(text)
    }
}

/// The router with all routes and middleware (request timeout, basic auth, headers).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(&state.telemetry_path.clone(), get(metrics_handler))
        .route("/healthz", get(|| async { "OK\n" }))
        .route("/", get(landing_page))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not Found\n") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard,
        ))
        .with_state(state)
}

/// Applies the web configuration (basic auth, headers) and the request timeout to a request.
async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let loaded = match &state.web {
        None => None,
        Some(web) => match web.current() {
            Ok(loaded) => Some(loaded),
            Err(error) => {
                tracing::error!(error = %error, "web configuration unusable, refusing requests");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "web configuration unusable, see the exporter's log\n",
                )
                    .into_response();
            }
        },
    };
    if let Some(loaded) = &loaded {
        if !loaded.auth.is_open() {
            let credentials = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_basic_auth);
            let allowed = match credentials {
                Some((user, password)) => loaded.auth.verify(&user, &password).await,
                None => false,
            };
            if !allowed {
                let mut response = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"nova-lvm-exporter\""),
                );
                return with_headers(response, loaded);
            }
        }
    }
    let response = match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "request not answered within {} s\n",
                state.request_timeout.as_secs()
            ),
        )
            .into_response(),
    };
    match &loaded {
        Some(loaded) => with_headers(response, loaded),
        None => response,
    }
}

fn with_headers(mut response: Response, loaded: &LoadedWebConfig) -> Response {
    for (name, value) in &loaded.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// `Basic <base64(user:password)>` -> (user, password).
fn parse_basic_auth(value: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

async fn metrics_handler(State(state): State<Arc<AppState>>) -> Response {
    let Ok(_slot) = state.scrape_slots.acquire().await else {
        return internal_error("the server is shutting down".to_string());
    };
    let snapshot = match state.collections.snapshot().await {
        Ok(snapshot) => snapshot,
        Err(error) => return internal_error(error),
    };
    match state.render(snapshot).await {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body.as_str().to_owned(),
        )
            .into_response(),
        Err(error) => internal_error(error),
    }
}

fn internal_error(message: String) -> Response {
    tracing::error!(error = %message, "scrape failed");
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{message}\n")).into_response()
}

/// A status page view reuses a collection that finished less than this ago (typically the
/// last scrape's) instead of running LVM again.
pub const STATUS_PAGE_REUSE: Duration = Duration::from_secs(10);

/// How many untracked LVs the status page lists per VG.
const STATUS_PAGE_TOP_LVS: usize = 10;

async fn landing_page(State(state): State<Arc<AppState>>) -> Response {
    let Ok(_slot) = state.scrape_slots.acquire().await else {
        return internal_error("the server is shutting down".to_string());
    };
    let snapshot = match state.collections.recent(STATUS_PAGE_REUSE).await {
        Ok(snapshot) => snapshot,
        Err(error) => return internal_error(error),
    };
    let report = Report::new(&snapshot, &state.report_context, STATUS_PAGE_TOP_LVS);
    Html(status::render(
        &report,
        &state.telemetry_path,
        &state.summary,
    ))
    .into_response()
}

/// Binds the listen address: `[HOST]:PORT`, where an empty host means all interfaces
/// (IPv6 and IPv4 when the kernel allows, IPv4 otherwise).
pub async fn bind(listen_address: &str) -> Result<TcpListener, String> {
    let fail =
        |e: std::io::Error| format!("--web.listen-address={listen_address}: cannot listen: {e}");
    if let Some(port) = listen_address.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| {
            format!(
                "--web.listen-address={listen_address}: expected [HOST]:PORT with a port number"
            )
        })?;
        let any_v6 = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
        return match TcpListener::bind(any_v6).await {
            Ok(listener) => Ok(listener),
            Err(_) => TcpListener::bind(SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port)))
                .await
                .map_err(fail),
        };
    }
    TcpListener::bind(listen_address).await.map_err(fail)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests finish
/// for [`ServerLimits::shutdown_grace`]. TLS is used when the web configuration had TLS at
/// start-up (like exporter-toolkit, switching between HTTP and HTTPS needs a restart).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    web: Option<Arc<WebConfigSource>>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let tls = web.as_ref().is_some_and(|web| web.tls_at_start);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let http = Arc::new(http);
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let http = Arc::clone(&http);
        let watcher = graceful.watcher();
        let web = web.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if !tls {
                let _ = watcher
                    .watch(http.serve_connection(TokioIo::new(stream), service))
                    .await;
                return;
            }
            let config = match web.as_ref().map(|web| web.current()) {
                Some(Ok(loaded)) => match &loaded.tls {
                    Some(config) => Arc::clone(config),
                    None => {
                        tracing::error!(peer = %peer, "the web configuration no longer has TLS settings; restart to serve plain HTTP");
                        return;
                    }
                },
                Some(Err(error)) => {
                    tracing::error!(peer = %peer, error = %error, "web configuration unusable, refusing the connection");
                    return;
                }
                None => return,
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let stream =
                match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(peer = %peer, error = %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %peer, "TLS handshake timed out");
                        return;
                    }
                };
            let _ = watcher
                .watch(http.serve_connection(TokioIo::new(stream), service))
                .await;
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("in-flight requests did not finish within the shutdown grace period");
        }
    }
}

/// The web configuration in force, with what it takes to apply it.
pub struct LoadedWebConfig {
    /// The rustls configuration, when TLS is configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Basic auth users and the cache of verified credentials.
    pub auth: BasicAuth,
    /// Response headers to add.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl LoadedWebConfig {
    fn from_config(config: &WebConfig) -> Result<Self, WebConfigError> {
        let tls = config
            .tls
            .as_ref()
            .map(|tls| tls.server_config())
            .transpose()?;
        let headers = config
            .headers
            .iter()
            .map(|(name, value)| {
                Ok((
                    HeaderName::try_from(name.as_str())
                        .map_err(|e| WebConfigError(format!("header {name}: {e}")))?,
                    HeaderValue::try_from(value.as_str())
                        .map_err(|e| WebConfigError(format!("header {name}: {e}")))?,
                ))
            })
            .collect::<Result<_, WebConfigError>>()?;
        Ok(Self {
            tls,
            auth: BasicAuth::new(config.basic_auth_users.clone()),
            headers,
        })
    }
}

/// The web configuration file, re-read when it changes (checked on every connection and
/// request, like exporter-toolkit re-reads it). A file that becomes unusable fails closed:
/// requests get a 500 and TLS connections are refused until it is fixed.
pub struct WebConfigSource {
    path: PathBuf,
    tls_at_start: bool,
    cached: Mutex<(Option<FileStamp>, LoadResult)>,
}

/// Modification time and size: when either changes, the file is re-read.
type FileStamp = (SystemTime, u64);

/// The configuration loaded from the file, or why it could not be.
type LoadResult = Result<Arc<LoadedWebConfig>, String>;

fn stamp(path: &Path) -> Option<FileStamp> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

impl WebConfigSource {
    /// Loads the file; an unusable file is an error at start-up.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let file_stamp = stamp(path);
        let config = webconfig::load(path)?;
        let loaded = LoadedWebConfig::from_config(&config)?;
        Ok(Self {
            path: path.to_path_buf(),
            tls_at_start: config.tls.is_some(),
            cached: Mutex::new((file_stamp, Ok(Arc::new(loaded)))),
        })
    }

    /// Serves HTTPS (decided at start-up).
    pub fn tls(&self) -> bool {
        self.tls_at_start
    }

    /// The configuration in force, re-read when the file changed.
    pub fn current(&self) -> LoadResult {
        let now = stamp(&self.path);
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if now.is_some() && cached.0 == now {
            return cached.1.clone();
        }
        let reloaded = webconfig::load(&self.path)
            .and_then(|config| LoadedWebConfig::from_config(&config))
            .map(Arc::new)
            .map_err(|e| e.to_string());
        match &reloaded {
            Ok(_) => tracing::info!(path = %self.path.display(), "web configuration reloaded"),
            Err(error) => tracing::error!(error = %error, "web configuration reload failed"),
        }
        *cached = (now, reloaded);
        cached.1.clone()
    }
}

/// HTTP basic auth against bcrypt hashes. bcrypt is deliberately slow, so verified credentials
/// are remembered (as a SHA-256 of user, password and hash, never in clear) and unknown users
/// are checked against a dummy hash so that timing does not reveal which users exist.
pub struct BasicAuth {
    users: std::collections::BTreeMap<String, String>,
    verified: Mutex<HashMap<Vec<u8>, ()>>,
}

/// A bcrypt hash (cost 10) of a random password, checked for unknown users so that they cost
/// as much as known ones.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut random = [0u8; 18];
        let _ = getrandom_fill(&mut random);
        bcrypt::hash(random, 10).unwrap_or_default()
    })
}

fn getrandom_fill(buffer: &mut [u8]) -> Result<(), ring::error::Unspecified> {
    use ring::rand::SecureRandom as _;
    ring::rand::SystemRandom::new().fill(buffer)
}

/// Verified credentials remembered at most; the cache is cleared when full.
const VERIFIED_CACHE_LIMIT: usize = 1024;

impl BasicAuth {
    /// Auth for these users (user -> bcrypt hash); no users means no auth.
    pub fn new(users: std::collections::BTreeMap<String, String>) -> Self {
        Self {
            users,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// True when no users are configured: every request is let in.
    pub fn is_open(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks a user and password.
    pub async fn verify(&self, user: &str, password: &str) -> bool {
        let (hash, known) = match self.users.get(user) {
            Some(hash) => (hash.clone(), true),
            None => (dummy_hash().to_string(), false),
        };
        let key = {
            let mut context = ring_digest_context();
            context.update(user.as_bytes());
            context.update(&[0]);
            context.update(password.as_bytes());
            context.update(&[0]);
            context.update(hash.as_bytes());
            context.finish().as_ref().to_vec()
        };
        if known
            && self
                .verified
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&key)
        {
            return true;
        }
        let password = password.to_string();
        let matches =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if matches && known {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= VERIFIED_CACHE_LIMIT {
                verified.clear();
            }
            verified.insert(key, ());
        }
        matches && known
    }
}

fn ring_digest_context() -> ring::digest::Context {
    ring::digest::Context::new(&ring::digest::SHA256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_listen_address_names_the_flag() {
        let err = bind(":notaport").await.unwrap_err();
        assert!(err.starts_with("--web.listen-address=:notaport"), "{err}");
        let err = bind("999.1.1.1:80").await.unwrap_err();
        assert!(err.contains("--web.listen-address"), "{err}");
    }

    #[test]
    fn basic_auth_headers_are_parsed() {
        // "alice:s3cr:et" in base64.
        assert_eq!(
            parse_basic_auth("Basic YWxpY2U6czNjcjpldA=="),
            Some(("alice".to_string(), "s3cr:et".to_string()))
        );
        assert_eq!(
            parse_basic_auth("basic YWxpY2U6czNjcjpldA=="),
            Some(("alice".to_string(), "s3cr:et".to_string()))
        );
        assert_eq!(parse_basic_auth("Bearer abc"), None);
        assert_eq!(parse_basic_auth("Basic !!!"), None);
        assert_eq!(parse_basic_auth("Basic bm9jb2xvbg=="), None);
    }

    #[tokio::test]
    async fn bcrypt_verification_accepts_the_right_password_only() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = BasicAuth::new([("alice".to_string(), hash)].into_iter().collect());
        assert!(!auth.is_open());
        assert!(auth.verify("alice", "s3cret").await);
        // The second time comes from the cache.
        assert!(auth.verify("alice", "s3cret").await);
        assert!(!auth.verify("alice", "wrong").await);
        assert!(!auth.verify("bob", "s3cret").await);
        assert!(!auth.verify("", "").await);
        assert!(BasicAuth::new(Default::default()).is_open());
    }

    #[test]
    fn the_dummy_hash_is_a_valid_bcrypt_hash() {
        assert_eq!(bcrypt::verify("anything", dummy_hash()).ok(), Some(false));
    }
}
