//! Serving: binding the listen address, and the accept loop that hands connections to hyper
//! with the limits an exporter on every compute node needs, TLS when the web configuration has
//! it, and a bounded graceful shutdown. What a request gets is [`super::routes`]' business.
//!
//! Limits: connections are bounded ([`ServerLimits::max_connections`]; beyond it the kernel's
//! backlog holds new ones), request headers must arrive within
//! [`ServerLimits::header_read_timeout`] and fit in [`ServerLimits::max_header_bytes`] (slowloris),
//! the TLS handshake has its own timeout, every request is answered within
//! [`ServerLimits::request_timeout`], at most [`ServerLimits::max_concurrent_scrapes`] scrapes
//! render at once (the others wait), and only `GET`/`HEAD` on the known paths are served.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::auth::ClientKey;
use super::reload::WebConfigSource;

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
    let tls = web.as_ref().is_some_and(|web| web.tls());
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

    /// Sends one keep-alive request on `stream` and reads its response head, or times out.
    async fn ask(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<String> {
        ask_with(stream, "", wait).await
    }

    /// [`ask`] with `headers` (each line ending in CRLF) after the `Host` header.
    async fn ask_with(
        stream: &mut tokio::net::TcpStream,
        headers: &str,
        wait: Duration,
    ) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(format!("GET / HTTP/1.1\r\nHost: x\r\n{headers}\r\n").as_bytes())
            .await
            .ok()?;
        let mut buffer = [0u8; 256];
        let read = tokio::time::timeout(wait, stream.read(&mut buffer))
            .await
            .ok()?
            .ok()?;
        Some(String::from_utf8_lossy(&buffer[..read]).into_owned())
    }

    /// A server with `limits` answering `ok` on `/`; stops when the sender is dropped or used.
    async fn start(
        limits: ServerLimits,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, None, limits, async {
            let _ = stopped.await;
        }));
        (address, stop, server)
    }

    #[tokio::test]
    async fn request_headers_beyond_the_limit_are_refused() {
        let (address, stop, server) = start(ServerLimits::default()).await;
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let fits = format!("X-Padding: {}\r\n", "a".repeat(8 * 1024));
        let answer = ask_with(&mut stream, &fits, Duration::from_secs(5)).await;
        assert!(answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")));
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let too_big = format!("X-Padding: {}\r\n", "a".repeat(20 * 1024));
        let answer = ask_with(&mut stream, &too_big, Duration::from_secs(5)).await;
        assert!(
            answer
                .as_deref()
                .is_some_and(|a| a.starts_with("HTTP/1.1 431")),
            "{answer:?}"
        );
        let _ = stop.send(());
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_tls_client_that_never_completes_its_handshake_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let made = std::process::Command::new("openssl")
            .current_dir(dir.path())
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.crt",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
            ])
            .output()
            .expect("openssl");
        assert!(made.status.success(), "{made:?}");
        let config = dir.path().join("web.yml");
        std::fs::write(
            &config,
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
        )
        .unwrap();
        let web = Arc::new(WebConfigSource::load(&config).unwrap());
        let listener = bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let limits = ServerLimits {
            max_connections: 1,
            tls_handshake_timeout: Duration::from_millis(300),
            ..ServerLimits::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, Some(web), limits, async {
            let _ = stopped.await;
        }));
        // Connected, then silent: the server closes the connection and frees its place.
        let mut silent = tokio::net::TcpStream::connect(address).await.unwrap();
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut silent, &mut buffer),
        )
        .await
        .expect("closed by the server within the handshake timeout");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        let _ = stop.send(());
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_connection_beyond_the_limit_waits_until_another_closes() {
        let (address, stop, server) = start(ServerLimits {
            max_connections: 1,
            ..ServerLimits::default()
        })
        .await;
        let mut first = tokio::net::TcpStream::connect(address).await.unwrap();
        let answer = ask(&mut first, Duration::from_secs(5)).await;
        assert!(answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")));
        // The first connection stays open (keep-alive): the second is not served meanwhile.
        let mut second = tokio::net::TcpStream::connect(address).await.unwrap();
        assert_eq!(ask(&mut second, Duration::from_millis(300)).await, None);
        drop(first);
        let mut buffer = [0u8; 256];
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut second, &mut buffer),
        )
        .await
        .expect("served once the first connection closed")
        .unwrap();
        assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"));
        let _ = stop.send(());
        server.await.unwrap();
    }
}
