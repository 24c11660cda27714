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

use std::collections::{HashMap, HashSet, VecDeque};
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
use crate::input::{BlockingLane, LaneError};
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
/// The password check is inside the timeout: a request whose check cannot finish in time gets a
/// 503, and its queued check is dropped.
async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let loaded = match &state.web {
        None => None,
        Some(web) => match web.current().await {
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
    let credentials = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_basic_auth);
    let client = request
        .extensions()
        .get::<ClientKey>()
        .copied()
        .unwrap_or_else(ClientKey::unknown);
    let answer = async {
        if let Some(loaded) = &loaded {
            if let Some(refusal) = authenticate(&loaded.auth, client, credentials).await {
                return refusal;
            }
        }
        next.run(request).await
    };
    let response = match tokio::time::timeout(state.request_timeout, answer).await {
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

/// The answer to a request that basic auth does not let in, or `None` to let it in.
async fn authenticate(
    auth: &BasicAuth,
    client: ClientKey,
    credentials: Option<(String, String)>,
) -> Option<Response> {
    if auth.is_open() {
        return None;
    }
    let verdict = match credentials {
        Some((user, password)) => auth.verify(client, &user, &password).await,
        None => Verdict::Refused,
    };
    match verdict {
        Verdict::Allowed => None,
        Verdict::Refused => {
            let mut response = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"nova-lvm-exporter\""),
            );
            Some(response)
        }
        Verdict::Busy => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many password checks waiting, retry later\n",
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Some(response)
        }
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
        // Every request carries its client's key, for the password checker's turns.
        let service = TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(ClientKey::of(peer.ip()))),
        );
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
            let current = match web.as_ref() {
                Some(web) => Some(web.current().await),
                None => None,
            };
            let config = match current {
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
    /// Basic auth users and the caches of checked credentials.
    pub auth: BasicAuth,
    /// Response headers to add.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl LoadedWebConfig {
    fn from_config(
        config: &WebConfig,
        checker: &Arc<PasswordChecker>,
        cache: &Arc<CredentialCache>,
    ) -> Result<Self, WebConfigError> {
        let tls = config
            .tls
            .as_ref()
            .map(|tls| tls.server_config())
            .transpose()?;
        Ok(Self {
            tls,
            auth: BasicAuth::new(
                config.basic_auth_users.clone(),
                Arc::clone(checker),
                Arc::clone(cache),
            ),
            headers: response_headers(config)?,
        })
    }
}

/// The configured response headers, ready to insert.
fn response_headers(config: &WebConfig) -> Result<Vec<(HeaderName, HeaderValue)>, WebConfigError> {
    config
        .headers
        .iter()
        .map(|(name, value)| {
            let invalid = || {
                WebConfigError(format!(
                    "http_server_config.headers: {name} is not a valid header"
                ))
            };
            Ok((
                HeaderName::try_from(name.as_str()).map_err(|_| invalid())?,
                HeaderValue::try_from(value.as_str()).map_err(|_| invalid())?,
            ))
        })
        .collect()
}

/// Loads and validates a web configuration file exactly as start-up does (for
/// `--config.check`), and describes it in one line without any secret or user name.
pub fn check_web_config(path: &Path) -> Result<String, WebConfigError> {
    let config = webconfig::load(path)?;
    response_headers(&config)?;
    Ok(describe_web_config(&config))
}

/// One line about a web configuration: TLS or not, how many users with which bcrypt costs,
/// how many headers.
pub fn describe_web_config(config: &WebConfig) -> String {
    let tls = match &config.tls {
        None => "plain HTTP".to_string(),
        Some(tls) => {
            let clients = match tls.client_auth {
                webconfig::ClientAuth::None => "no client certificates",
                webconfig::ClientAuth::VerifyIfGiven => "client certificates verified if given",
                webconfig::ClientAuth::RequireAndVerify => "client certificates required",
            };
            format!("TLS ({clients})")
        }
    };
    let costs: std::collections::BTreeSet<u32> = config
        .basic_auth_users
        .values()
        .filter_map(|hash| webconfig::bcrypt_cost(hash))
        .collect();
    let auth = match config.basic_auth_users.len() {
        0 => "no basic auth".to_string(),
        users => format!(
            "basic auth for {users} user{} (bcrypt cost {})",
            if users == 1 { "" } else { "s" },
            costs
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("{tls}, {auth}, {} response header(s)", config.headers.len())
}

/// The web configuration file, re-read when it changes (checked on every connection and
/// request, like exporter-toolkit re-reads it). A file that becomes unusable fails closed:
/// requests get a 500 and TLS connections are refused until it is fixed.
pub struct WebConfigSource {
    path: PathBuf,
    tls_at_start: bool,
    checker: Arc<PasswordChecker>,
    credentials: Arc<CredentialCache>,
    cached: Arc<Mutex<(Option<FileStamp>, LoadResult)>>,
    /// Where the file is looked at and re-read: never on the runtime's threads, at most one
    /// look at a time.
    lane: BlockingLane,
    /// When the last warning about a look that did not return was logged (seconds since the
    /// epoch): at most one a minute, not one per request.
    warned_at: std::sync::atomic::AtomicU64,
}

/// How long a request waits for the look at the web configuration file (and its re-read when
/// it changed) before it goes on with the configuration in force.
pub const WEB_CONFIG_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Modification time and size: when either changes, the file is re-read.
type FileStamp = (SystemTime, u64);

/// The configuration loaded from the file, or why it could not be.
type LoadResult = Result<Arc<LoadedWebConfig>, String>;

fn stamp(path: &Path) -> Option<FileStamp> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

impl WebConfigSource {
    /// Loads the file; an unusable file is an error at start-up. Starts the password checker
    /// thread ([`AUTH_THREADS`]).
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let file_stamp = stamp(path);
        let config = webconfig::load(path)?;
        let checker = PasswordChecker::start(AUTH_THREADS, AUTH_QUEUE_PER_CLIENT, AUTH_QUEUE)
            .map_err(|e| {
                WebConfigError(format!("cannot start the password checker thread: {e}"))
            })?;
        let credentials = Arc::new(CredentialCache::new());
        let loaded = LoadedWebConfig::from_config(&config, &checker, &credentials)?;
        Ok(Self {
            path: path.to_path_buf(),
            tls_at_start: config.tls.is_some(),
            checker,
            credentials,
            cached: Arc::new(Mutex::new((file_stamp, Ok(Arc::new(loaded))))),
            lane: BlockingLane::new(path.display().to_string()),
            warned_at: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Serves HTTPS (decided at start-up).
    pub fn tls(&self) -> bool {
        self.tls_at_start
    }

    /// The configuration in force, re-read when the file changed (a file that became invalid
    /// fails closed). Credentials verified before stay verified while their user's hash is
    /// unchanged. The file is looked at on a thread of its own: when that look is still busy
    /// (another request's, or one stuck on a hung mount) or takes longer than
    /// [`WEB_CONFIG_CHECK_TIMEOUT`], the request goes on with the configuration in force.
    pub async fn current(&self) -> LoadResult {
        let path = self.path.clone();
        let checker = Arc::clone(&self.checker);
        let credentials = Arc::clone(&self.credentials);
        let cached = Arc::clone(&self.cached);
        let look = self.lane.run(move || {
            let now = stamp(&path);
            let known = cached.lock().unwrap_or_else(|e| e.into_inner()).0;
            if now.is_some() && known == now {
                return;
            }
            let reloaded = webconfig::load(&path)
                .and_then(|config| LoadedWebConfig::from_config(&config, &checker, &credentials))
                .map(Arc::new)
                .map_err(|e| e.to_string());
            match &reloaded {
                Ok(_) => tracing::info!(path = %path.display(), "web configuration reloaded"),
                Err(error) => tracing::error!(error = %error, "web configuration reload failed"),
            }
            *cached.lock().unwrap_or_else(|e| e.into_inner()) = (now, reloaded);
        });
        let problem = match tokio::time::timeout(WEB_CONFIG_CHECK_TIMEOUT, look).await {
            Ok(Ok(())) => None,
            // Another request's look is running right now: its answer is as good as ours.
            Ok(Err(LaneError::StillStuck { seconds: 0, .. })) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!(
                "looking at {} did not return within {} s",
                self.path.display(),
                WEB_CONFIG_CHECK_TIMEOUT.as_secs()
            )),
        };
        if let Some(problem) = problem {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let last = self.warned_at.load(std::sync::atomic::Ordering::Relaxed);
            if now >= last + 60 {
                self.warned_at
                    .store(now, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(error = %problem, "serving with the web configuration in force (warned at most once a minute)");
            }
        }
        self.cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }
}

/// Threads that check passwords at once: bcrypt runs here, never on the runtime's blocking
/// pool that renders `/metrics`, so a flood of wrong passwords cannot delay a scrape.
pub const AUTH_THREADS: usize = 1;

/// Password checks one client (an IPv4 address, an IPv6 /64) may have waiting; more from it get
/// a 503 at once. The checker serves waiting clients in turn, one check each, so a client
/// flooding wrong passwords delays another client's first check by at most one check per other
/// waiting client, never by its own backlog.
pub const AUTH_QUEUE_PER_CLIENT: usize = 4;

/// Password checks waiting from all clients together; more get a 503 at once.
pub const AUTH_QUEUE: usize = 64;

/// Who sent a request, as the password checker's fairness counts clients: the IPv4 address, or
/// the /64 prefix of an IPv6 address (one host or site usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(std::net::IpAddr);

impl ClientKey {
    /// The key of a peer address.
    pub fn of(address: std::net::IpAddr) -> Self {
        match address {
            std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(std::net::IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(std::net::IpAddr::V6(prefix.into()))
                }
            },
            v4 => Self(v4),
        }
    }

    /// The key for requests whose peer is unknown (all share one turn).
    pub fn unknown() -> Self {
        Self(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }
}

/// The outcome of a basic-auth check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The user and password are right.
    Allowed,
    /// Unknown user or wrong password.
    Refused,
    /// Too many checks waiting: try again later (decided before the user is looked at).
    Busy,
}

/// A password to check against a bcrypt hash, and where the answer goes.
struct CheckJob {
    password: String,
    hash: String,
    answer: tokio::sync::oneshot::Sender<bool>,
}

/// The checks waiting, per client, and the order in which clients take their turns.
#[derive(Default)]
struct FairQueue {
    waiting: HashMap<ClientKey, VecDeque<CheckJob>>,
    turns: VecDeque<ClientKey>,
    total: usize,
}

impl FairQueue {
    /// Adds a check; gives it back when its client or the whole queue is full.
    fn push(
        &mut self,
        client: ClientKey,
        job: CheckJob,
        per_client: usize,
        total: usize,
    ) -> Result<(), CheckJob> {
        let mut queued = self.waiting.get(&client).map_or(0, VecDeque::len);
        if queued >= per_client || self.total >= total {
            // Checks whose requesters went away free their places before anyone is refused.
            self.drop_abandoned();
            queued = self.waiting.get(&client).map_or(0, VecDeque::len);
        }
        if queued >= per_client || self.total >= total {
            return Err(job);
        }
        if queued == 0 {
            self.turns.push_back(client);
        }
        self.waiting.entry(client).or_default().push_back(job);
        self.total += 1;
        Ok(())
    }

    /// Removes the checks nobody waits for any more.
    fn drop_abandoned(&mut self) {
        for jobs in self.waiting.values_mut() {
            jobs.retain(|job| !job.answer.is_closed());
        }
        self.waiting.retain(|_, jobs| !jobs.is_empty());
        let waiting = &self.waiting;
        self.turns.retain(|client| waiting.contains_key(client));
        self.total = self.waiting.values().map(VecDeque::len).sum();
    }

    /// The next check: the oldest of the client whose turn it is; that client goes to the back
    /// of the line if it has more waiting.
    fn pop(&mut self) -> Option<CheckJob> {
        let client = self.turns.pop_front()?;
        let jobs = self.waiting.get_mut(&client)?;
        let job = jobs.pop_front();
        if jobs.is_empty() {
            self.waiting.remove(&client);
        } else {
            self.turns.push_back(client);
        }
        self.total -= usize::from(job.is_some());
        job
    }
}

/// bcrypt checks on dedicated threads, fed from a bounded queue that serves clients in turn. A
/// check whose requester went away (request timeout, closed connection) is skipped instead of
/// computed.
pub struct PasswordChecker {
    queue: Mutex<FairQueue>,
    ready: std::sync::Condvar,
    per_client: usize,
    total: usize,
}

impl PasswordChecker {
    /// Starts `threads` checker threads with room for `per_client` waiting checks per client and
    /// `total` in all.
    pub fn start(threads: usize, per_client: usize, total: usize) -> std::io::Result<Arc<Self>> {
        let checker = Arc::new(Self {
            queue: Mutex::new(FairQueue::default()),
            ready: std::sync::Condvar::new(),
            per_client: per_client.max(1),
            total: total.max(1),
        });
        for index in 0..threads.max(1) {
            // The threads hold only a weak reference: they end when the checker is dropped.
            let weak = Arc::downgrade(&checker);
            std::thread::Builder::new()
                .name(format!("bcrypt-{index}"))
                .spawn(move || check_passwords(&weak))?;
        }
        Ok(checker)
    }

    /// Queues a check for `client`; `None` when that client's share or the queue is full.
    fn submit(
        &self,
        client: ClientKey,
        password: &str,
        hash: &str,
    ) -> Option<tokio::sync::oneshot::Receiver<bool>> {
        let (answer, receiver) = tokio::sync::oneshot::channel();
        let job = CheckJob {
            password: password.to_string(),
            hash: hash.to_string(),
            answer,
        };
        let pushed = self.queue.lock().unwrap_or_else(|e| e.into_inner()).push(
            client,
            job,
            self.per_client,
            self.total,
        );
        pushed.ok()?;
        self.ready.notify_one();
        Some(receiver)
    }

    /// The next check to compute, waiting up to a second for one (`None`: nothing came).
    fn next(&self) -> Option<CheckJob> {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let (mut queue, _) = self
            .ready
            .wait_timeout_while(queue, Duration::from_secs(1), |queue| queue.total == 0)
            .unwrap_or_else(|e| e.into_inner());
        queue.pop()
    }
}

/// A checker thread's loop, at a lower CPU priority than collection and rendering; it ends once
/// the checker is gone.
fn check_passwords(checker: &std::sync::Weak<PasswordChecker>) {
    // SAFETY: setpriority only changes this thread's nice value (a per-thread attribute on
    // Linux); a failure leaves it at the normal priority, which is harmless.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
    loop {
        let Some(live) = checker.upgrade() else {
            return;
        };
        let job = live.next();
        drop(live);
        let Some(job) = job else {
            continue;
        };
        if job.answer.is_closed() {
            continue;
        }
        let matches = bcrypt::verify(&job.password, &job.hash).unwrap_or(false);
        let _ = job.answer.send(matches);
    }
}

/// Credentials already checked, as HMAC-SHA-256 digests of user, password and hash under a key
/// drawn at start-up (never in clear, and useless for guessing without the key). Verified ones
/// let a scrape in without bcrypt; refused ones answer a repeated wrong password without bcrypt,
/// for unknown users (checked against the dummy hash) exactly as for known ones.
pub struct CredentialCache {
    key: ring::hmac::Key,
    verified: Mutex<HashSet<Digest>>,
    refused: Mutex<HashSet<Digest>>,
}

/// An HMAC-SHA-256 tag.
type Digest = [u8; 32];

/// Credentials remembered at most, per kind; a full set is cleared.
const CREDENTIAL_CACHE_LIMIT: usize = 1024;

impl CredentialCache {
    /// An empty cache with a fresh random key.
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        let _ = random_fill(&mut key);
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            verified: Mutex::new(HashSet::new()),
            refused: Mutex::new(HashSet::new()),
        }
    }

    fn digest(&self, user: &str, password: &str, hash: &str) -> Digest {
        let mut context = ring::hmac::Context::with_key(&self.key);
        for part in [user, password, hash] {
            context.update(&(part.len() as u64).to_le_bytes());
            context.update(part.as_bytes());
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(context.sign().as_ref());
        digest
    }

    fn remember(set: &Mutex<HashSet<Digest>>, digest: Digest) {
        let mut set = set.lock().unwrap_or_else(|e| e.into_inner());
        if set.len() >= CREDENTIAL_CACHE_LIMIT {
            set.clear();
        }
        set.insert(digest);
    }

    fn contains(set: &Mutex<HashSet<Digest>>, digest: &Digest) -> bool {
        set.lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(digest)
    }
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self::new()
    }
}

/// HTTP basic auth against bcrypt hashes. Unknown users are checked against a dummy hash of the
/// highest configured cost, so that they take as long as the slowest known user.
pub struct BasicAuth {
    users: std::collections::BTreeMap<String, String>,
    dummy_hash: String,
    checker: Arc<PasswordChecker>,
    credentials: Arc<CredentialCache>,
}

/// A bcrypt hash of `cost` with a random salt and a random digest: checking any password against
/// it costs what checking a real hash of that cost does, and never matches.
fn dummy_hash(cost: u32) -> String {
    use base64::Engine as _;
    let bcrypt_base64 = base64::engine::GeneralPurpose::new(
        &base64::alphabet::BCRYPT,
        base64::engine::general_purpose::NO_PAD,
    );
    let mut random = [0u8; 16 + 23];
    let _ = random_fill(&mut random);
    format!(
        "$2b${cost:02}${}{}",
        bcrypt_base64.encode(&random[..16]),
        bcrypt_base64.encode(&random[16..])
    )
}

fn random_fill(buffer: &mut [u8]) -> Result<(), ring::error::Unspecified> {
    use ring::rand::SecureRandom as _;
    ring::rand::SystemRandom::new().fill(buffer)
}

impl BasicAuth {
    /// Auth for these users (user -> bcrypt hash, validated by [`webconfig::parse`]); no users
    /// means no auth.
    pub fn new(
        users: std::collections::BTreeMap<String, String>,
        checker: Arc<PasswordChecker>,
        credentials: Arc<CredentialCache>,
    ) -> Self {
        let costs: std::collections::BTreeSet<u32> = users
            .values()
            .filter_map(|hash| webconfig::bcrypt_cost(hash))
            .collect();
        if costs.len() > 1 {
            tracing::warn!(
                "basic_auth_users have different bcrypt costs: users with a lower cost than the highest can be told from unknown users by response time; use one cost"
            );
        }
        let highest = costs.last().copied().unwrap_or(10);
        Self {
            users,
            dummy_hash: dummy_hash(highest),
            checker,
            credentials,
        }
    }

    /// True when no users are configured: every request is let in.
    pub fn is_open(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks a user and password: from the caches when these credentials were checked before,
    /// otherwise on the password checker (waiting for it if needed).
    pub async fn verify(&self, client: ClientKey, user: &str, password: &str) -> Verdict {
        let (hash, known) = match self.users.get(user) {
            Some(hash) => (hash.as_str(), true),
            None => (self.dummy_hash.as_str(), false),
        };
        let digest = self.credentials.digest(user, password, hash);
        if CredentialCache::contains(&self.credentials.verified, &digest) {
            return Verdict::Allowed;
        }
        if CredentialCache::contains(&self.credentials.refused, &digest) {
            return Verdict::Refused;
        }
        let Some(answer) = self.checker.submit(client, password, hash) else {
            return Verdict::Busy;
        };
        match answer.await {
            Ok(true) if known => {
                CredentialCache::remember(&self.credentials.verified, digest);
                Verdict::Allowed
            }
            Ok(_) => {
                CredentialCache::remember(&self.credentials.refused, digest);
                Verdict::Refused
            }
            Err(_) => Verdict::Refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: ClientKey = ClientKey(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

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

    fn auth_for(users: &[(&str, &str)], checker: &Arc<PasswordChecker>) -> BasicAuth {
        BasicAuth::new(
            users
                .iter()
                .map(|(user, password)| (user.to_string(), bcrypt::hash(password, 4).unwrap()))
                .collect(),
            Arc::clone(checker),
            Arc::new(CredentialCache::new()),
        )
    }

    #[tokio::test]
    async fn bcrypt_verification_accepts_the_right_password_only() {
        let checker = PasswordChecker::start(1, 8, 64).unwrap();
        let auth = auth_for(&[("alice", "s3cret")], &checker);
        assert!(!auth.is_open());
        assert_eq!(
            auth.verify(LOCAL, "alice", "s3cret").await,
            Verdict::Allowed
        );
        // The second time comes from the cache.
        assert_eq!(
            auth.verify(LOCAL, "alice", "s3cret").await,
            Verdict::Allowed
        );
        assert_eq!(auth.verify(LOCAL, "alice", "wrong").await, Verdict::Refused);
        assert_eq!(auth.verify(LOCAL, "alice", "wrong").await, Verdict::Refused);
        assert_eq!(auth.verify(LOCAL, "bob", "s3cret").await, Verdict::Refused);
        assert_eq!(auth.verify(LOCAL, "", "").await, Verdict::Refused);
        assert!(auth_for(&[], &checker).is_open());
    }

    #[tokio::test]
    async fn repeated_credentials_cost_no_bcrypt_for_known_and_unknown_users_alike() {
        // A checker whose only thread is kept busy: anything that needs bcrypt waits.
        let checker = PasswordChecker::start(1, 8, 64).unwrap();
        let auth = auth_for(&[("alice", "s3cret")], &checker);
        for (user, password, verdict) in [
            ("alice", "s3cret", Verdict::Allowed),
            ("alice", "wrong", Verdict::Refused),
            ("nobody", "wrong", Verdict::Refused),
        ] {
            assert_eq!(auth.verify(LOCAL, user, password).await, verdict);
        }
        let slow = bcrypt::hash("x", 12).unwrap();
        let blocker = checker.submit(LOCAL, "y", &slow).unwrap();
        for (user, password, verdict) in [
            ("alice", "s3cret", Verdict::Allowed),
            ("alice", "wrong", Verdict::Refused),
            ("nobody", "wrong", Verdict::Refused),
        ] {
            let answered = tokio::time::timeout(
                Duration::from_millis(50),
                auth.verify(LOCAL, user, password),
            )
            .await
            .expect("answered from the cache while bcrypt is busy");
            assert_eq!(answered, verdict);
        }
        assert_eq!(blocker.await, Ok(false));
    }

    #[tokio::test]
    async fn a_full_queue_is_busy_at_once_and_abandoned_checks_are_skipped() {
        let checker = PasswordChecker::start(1, 2, 64).unwrap();
        let slow = bcrypt::hash("x", 12).unwrap();
        let running = checker.submit(LOCAL, "a", &slow).unwrap();
        // Let the thread take the first job (it stays busy with it for a cost-12 check), then
        // fill the queue.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let abandoned: Vec<_> = (0..2)
            .map(|_| checker.submit(LOCAL, "b", &slow).unwrap())
            .collect();
        assert!(checker.submit(LOCAL, "c", &slow).is_none(), "queue full");
        // The waiting checks' requesters give up: their places are freed at once, so they are
        // never computed and a new check takes a place while the first is still running.
        drop(abandoned);
        let after = checker
            .submit(LOCAL, "d", &bcrypt::hash("d", 4).unwrap())
            .expect("the abandoned checks freed their places");
        assert_eq!(checker.queue.lock().unwrap().total, 1, "only d waits");
        assert_eq!(running.await, Ok(false));
        assert_eq!(after.await, Ok(true));
    }

    #[test]
    fn the_dummy_hash_has_the_requested_cost_and_never_matches() {
        for cost in [4, 10, 14] {
            let dummy = dummy_hash(cost);
            assert_eq!(webconfig::bcrypt_cost(&dummy), Some(cost), "{dummy}");
            assert_ne!(dummy, dummy_hash(cost), "random each time");
        }
        assert_eq!(bcrypt::verify("anything", &dummy_hash(4)).ok(), Some(false));
    }

    #[test]
    fn unknown_users_are_checked_at_the_highest_configured_cost() {
        let checker = PasswordChecker::start(1, 8, 64).unwrap();
        let auth = BasicAuth::new(
            [
                ("a".to_string(), bcrypt::hash("x", 4).unwrap()),
                ("b".to_string(), bcrypt::hash("x", 6).unwrap()),
            ]
            .into_iter()
            .collect(),
            checker,
            Arc::new(CredentialCache::new()),
        );
        assert_eq!(webconfig::bcrypt_cost(&auth.dummy_hash), Some(6));
    }

    #[test]
    fn the_web_config_summary_names_no_user_and_no_hash() {
        let hash = bcrypt::hash("x", 4).unwrap();
        let config = webconfig::parse(
            &format!("basic_auth_users:\n  alice: {hash}\n  bob: {hash}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"),
            "web.yml",
            Path::new("/"),
        )
        .unwrap();
        let summary = describe_web_config(&config);
        assert_eq!(
            summary,
            "plain HTTP, basic auth for 2 users (bcrypt cost 4), 1 response header(s)"
        );
    }

    #[test]
    fn clients_are_keyed_by_ipv4_address_and_ipv6_64() {
        let key = |text: &str| ClientKey::of(text.parse().unwrap());
        assert_eq!(key("192.0.2.1"), key("::ffff:192.0.2.1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    #[test]
    fn the_queue_serves_clients_in_turn_and_bounds_each_and_all() {
        // The requesters wait (their receivers are kept), so no check is abandoned.
        let requesters = std::cell::RefCell::new(Vec::new());
        let job = |password: &str| {
            let (answer, receiver) = tokio::sync::oneshot::channel();
            requesters.borrow_mut().push(receiver);
            CheckJob {
                password: password.to_string(),
                hash: String::new(),
                answer,
            }
        };
        let flood = ClientKey::of("192.0.2.66".parse().unwrap());
        let scraper = ClientKey::of("192.0.2.10".parse().unwrap());
        let mut queue = FairQueue::default();
        for n in 0..3 {
            assert!(queue.push(flood, job(&format!("f{n}")), 3, 5).is_ok());
        }
        assert!(
            queue.push(flood, job("f3"), 3, 5).is_err(),
            "the flood's share is full"
        );
        assert!(queue.push(scraper, job("s0"), 3, 5).is_ok());
        assert!(queue.push(scraper, job("s1"), 3, 5).is_ok());
        let third = ClientKey::of("192.0.2.20".parse().unwrap());
        assert!(
            queue.push(third, job("t0"), 3, 5).is_err(),
            "the whole queue is full"
        );
        // The scraper's first check comes second, not behind the flood's backlog.
        let order: Vec<String> = std::iter::from_fn(|| queue.pop().map(|j| j.password)).collect();
        assert_eq!(order, ["f0", "s0", "f1", "s1", "f2"]);
        assert_eq!(queue.total, 0);
        assert!(queue.waiting.is_empty() && queue.turns.is_empty());
        // A requester that went away frees its place for the next one.
        assert!(queue.push(flood, job("g0"), 1, 5).is_ok());
        assert!(queue.push(flood, job("g1"), 1, 5).is_err());
        requesters.borrow_mut().clear();
        assert!(queue.push(flood, job("g2"), 1, 5).is_ok());
        assert_eq!(queue.pop().map(|j| j.password).as_deref(), Some("g2"));
    }

    #[tokio::test]
    async fn a_flooding_client_does_not_delay_another_clients_first_check() {
        // One thread; the flood fills its share with slow checks; another client's check is
        // computed right after the one running, not after the flood's backlog.
        let checker = PasswordChecker::start(1, 4, 64).unwrap();
        let slow = bcrypt::hash("x", 11).unwrap();
        let flood = ClientKey::of("192.0.2.66".parse().unwrap());
        // Four wait; one more may be running already.
        let mut backlog: Vec<_> = std::iter::from_fn(|| checker.submit(flood, "y", &slow))
            .take(10)
            .collect();
        assert!((4..=5).contains(&backlog.len()), "{}", backlog.len());
        let fast = bcrypt::hash("right", 4).unwrap();
        let answer = checker
            .submit(LOCAL, "right", &fast)
            .expect("another client gets a place");
        assert_eq!(answer.await, Ok(true));
        // When the other client's answer came, at most the check running when it arrived and
        // the flood's next turn can have been computed, not the flood's whole backlog.
        let flood_answered = backlog
            .iter_mut()
            .map(|receiver| receiver.try_recv())
            .filter(Result::is_ok)
            .count();
        assert!(
            flood_answered <= 2,
            "{flood_answered} flood checks were computed first"
        );
        drop(backlog);
    }

    async fn lets_in(loaded: &LoadResult, password: &str) -> bool {
        let auth = &loaded.as_ref().expect("a usable config").auth;
        auth.verify(LOCAL, "alice", password).await == Verdict::Allowed
    }

    #[tokio::test]
    async fn a_stuck_look_at_the_web_config_leaves_requests_on_the_config_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        let users = |password: &str| {
            format!(
                "basic_auth_users:\n  alice: {}\n",
                bcrypt::hash(password, 4).unwrap()
            )
        };
        std::fs::write(&path, users("first")).unwrap();
        let source = WebConfigSource::load(&path).unwrap();
        assert!(lets_in(&source.current().await, "first").await);

        // A change is picked up by the next request.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, users("second")).unwrap();
        assert!(lets_in(&source.current().await, "second").await);

        // The lane stuck (as on a hung mount): requests go on at once with the config in force.
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let hold = source.lane.run(move || {
            let _ = stuck.recv();
        });
        tokio::pin!(hold);
        tokio::select! {
            biased;
            _ = &mut hold => panic!("the stuck work returned"),
            () = tokio::time::sleep(Duration::from_millis(1100)) => {}
        }
        std::fs::write(&path, users("third")).unwrap();
        let started = std::time::Instant::now();
        let loaded = source.current().await;
        assert!(
            started.elapsed() < WEB_CONFIG_CHECK_TIMEOUT,
            "{:?}",
            started.elapsed()
        );
        assert!(
            lets_in(&loaded, "second").await,
            "the config in force while the look is stuck"
        );
        release.send(()).unwrap();
        assert!(hold.await.is_ok());
        assert!(
            lets_in(&source.current().await, "third").await,
            "picked up once the lane is free"
        );
    }
}
