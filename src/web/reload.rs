//! The web configuration in force while serving: the file loaded at start-up, turned into what
//! requests need (the rustls configuration, [`BasicAuth`] on the shared password checker and
//! credential cache, header values), and re-read when it changes, looked at on a thread of its
//! own within [`WEB_CONFIG_CHECK_TIMEOUT`] so that a hung mount never holds a request.
//!
//! Apart from [`super::config`] because that module is the file format alone (pure parsing and
//! validation, no runtime state), while this one holds runtime state (the password checker
//! thread, the credential cache, the last load and the file's stamp) and does I/O on every
//! request.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::{HeaderName, HeaderValue};
use tokio_rustls::rustls;

use super::auth::{
    BasicAuth, CredentialCache, PasswordChecker, AUTH_QUEUE, AUTH_QUEUE_PER_CLIENT, AUTH_THREADS,
};
use super::config::{self, WebConfig, WebConfigError};
use crate::input::{BlockingLane, LaneError};

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
    let config = config::load(path)?;
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
                config::ClientAuth::None => "no client certificates",
                config::ClientAuth::VerifyIfGiven => "client certificates verified if given",
                config::ClientAuth::RequireAndVerify => "client certificates required",
            };
            format!("TLS ({clients})")
        }
    };
    let costs: std::collections::BTreeSet<u32> = config
        .basic_auth_users
        .values()
        .filter_map(|hash| config::bcrypt_cost(hash))
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
        let config = config::load(path)?;
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
            let reloaded = config::load(&path)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::auth::{ClientKey, Verdict};

    /// Requests from loopback.
    fn local() -> ClientKey {
        ClientKey::of(std::net::Ipv4Addr::LOCALHOST.into())
    }

    #[test]
    fn the_web_config_summary_names_no_user_and_no_hash() {
        let hash = bcrypt::hash("x", 4).unwrap();
        let config = config::parse(
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

    async fn lets_in(loaded: &LoadResult, password: &str) -> bool {
        let auth = &loaded.as_ref().expect("a usable config").auth;
        auth.verify(local(), "alice", password).await == Verdict::Allowed
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
