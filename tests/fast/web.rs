//! The HTTP server's security: TLS with a test CA (and client certificates), basic auth with
//! bcrypt hashes, configured headers, the web configuration re-read on change and refused at
//! start-up when malformed, and the server's own limits (methods, paths, slow clients).
//! Clients are the real `curl` and `openssl`; the exporter replays the example host.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A test CA, a server certificate for localhost/127.0.0.1 and a client certificate from a
/// second CA, all EC P-256.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(
            d.join("client.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        for (ca, leaf, ext) in [
            ("ca", "server", "server.ext"),
            ("client-ca", "client", "client.ext"),
        ] {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.crt"),
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN=test {ca}"),
                ],
            );
            openssl(
                d,
                &[
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    &format!("{leaf}.key"),
                    "-out",
                    &format!("{leaf}.csr"),
                    "-subj",
                    &format!("/CN={leaf}"),
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{leaf}.csr"),
                    "-CA",
                    &format!("{ca}.crt"),
                    "-CAkey",
                    &format!("{ca}.key"),
                    "-CAcreateserial",
                    "-out",
                    &format!("{leaf}.crt"),
                    "-days",
                    "2",
                    "-extfile",
                    ext,
                ],
            );
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_config(&self, text: &str) -> PathBuf {
        let path = self.path("web.yml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Runs curl; returns (HTTP status, 0 when no response), the headers and body.
fn curl(args: &[&str]) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (response, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), response.to_string())
}

fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

#[test]
fn tls_with_a_test_ca_serves_the_metrics_and_refuses_plain_http() {
    let pki = Pki::new();
    let config =
        pki.write_config("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let exporter = Exporter::start_listening(&example_host_args(&[format!(
        "--web.config.file={}",
        config.display()
    )]));
    let url = format!("https://localhost:{}/metrics", exporter.port);
    let ca = pki.path("ca.crt");
    let (status, body) = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "--resolve",
        &format!("localhost:{}:127.0.0.1", exporter.port),
        &url,
    ]);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("nova_lvm_drift_bytes{vg=\"vms-group\"} 214748364800"),
        "{body}"
    );
    // A client that does not trust the CA, and plain HTTP, get nothing.
    let (status, _) = curl(&[
        "--resolve",
        &format!("localhost:{}:127.0.0.1", exporter.port),
        &url,
    ]);
    assert_eq!(status, 0);
    let plain = get(exporter.port, "/metrics");
    assert!(plain.map_or(true, |(status, _)| status != 200));
    // TLS 1.2 and 1.3 both work by default.
    for version in ["--tls-max", "1.2"].chunks(2) {
        let (status, _) = curl(&[
            version[0],
            version[1],
            "--cacert",
            ca.to_str().unwrap(),
            "--resolve",
            &format!("localhost:{}:127.0.0.1", exporter.port),
            &url,
        ]);
        assert_eq!(status, 200);
    }
}

#[test]
fn a_client_certificate_can_be_required() {
    let pki = Pki::new();
    let config = pki.write_config(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.crt\n",
    );
    let exporter = Exporter::start_listening(&example_host_args(&[format!(
        "--web.config.file={}",
        config.display()
    )]));
    let url = format!("https://localhost:{}/metrics", exporter.port);
    let resolve = format!("localhost:{}:127.0.0.1", exporter.port);
    let ca = pki.path("ca.crt");
    let (status, _) = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "--resolve",
        &resolve,
        &url,
    ]);
    assert_eq!(status, 0, "no client certificate: no answer");
    // A certificate from the server's CA is not a client certificate of the client CA.
    let (status, _) = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "--resolve",
        &resolve,
        "--cert",
        pki.path("server.crt").to_str().unwrap(),
        "--key",
        pki.path("server.key").to_str().unwrap(),
        &url,
    ]);
    assert_eq!(status, 0, "a certificate of another CA is refused");
    let (status, body) = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "--resolve",
        &resolve,
        "--cert",
        pki.path("client.crt").to_str().unwrap(),
        "--key",
        pki.path("client.key").to_str().unwrap(),
        &url,
    ]);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn basic_auth_right_wrong_and_missing_and_headers_configured() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("web.yml");
    std::fs::write(
        &config,
        format!(
            "basic_auth_users:\n  prometheus: {}\n  other: {}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n",
            hash("s3cret"),
            hash("other-secret")
        ),
    )
    .unwrap();
    let exporter = Exporter::start_listening(&example_host_args(&[format!(
        "--web.config.file={}",
        config.display()
    )]));
    let url = format!("http://127.0.0.1:{}/metrics", exporter.port);

    let (status, response) = curl(&["-u", "prometheus:s3cret", &url]);
    assert_eq!(status, 200);
    assert!(response.contains("nova_lvm_vg_size_bytes"));
    let lower = response.to_ascii_lowercase();
    assert!(lower.contains("x-frame-options: deny"), "{response}");
    assert!(
        lower.contains("x-content-type-options: nosniff"),
        "{response}"
    );

    for credentials in [
        Some("prometheus:wrong"),
        Some("nobody:s3cret"),
        Some("other:s3cret"),
        None,
    ] {
        let mut args = vec![];
        if let Some(c) = credentials {
            args.extend(["-u", c]);
        }
        args.push(&url);
        let (status, response) = curl(&args);
        assert_eq!(status, 401, "{credentials:?}");
        assert!(
            response
                .to_ascii_lowercase()
                .contains("www-authenticate: basic"),
            "{response}"
        );
        assert!(!response.contains("nova_lvm_"), "no metrics without auth");
        assert!(
            response
                .to_ascii_lowercase()
                .contains("x-frame-options: deny"),
            "headers on errors too"
        );
    }
    let (status, _) = curl(&[
        "-u",
        "other:other-secret",
        &format!("http://127.0.0.1:{}/healthz", exporter.port),
    ]);
    assert_eq!(status, 200);

    // Rotating the password takes effect without a restart.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        &config,
        format!("basic_auth_users:\n  prometheus: {}\n", hash("rotated")),
    )
    .unwrap();
    let (status, _) = curl(&["-u", "prometheus:s3cret", &url]);
    assert_eq!(status, 401);
    let (status, _) = curl(&["-u", "prometheus:rotated", &url]);
    assert_eq!(status, 200);

    // A file that becomes invalid fails closed.
    std::fs::write(&config, "basic_auth_users: [\n").unwrap();
    let (status, _) = curl(&["-u", "prometheus:rotated", &url]);
    assert_eq!(status, 500);
    assert!(
        exporter.log().contains("web configuration"),
        "{}",
        exporter.log()
    );
}

#[test]
fn a_malformed_web_config_is_refused_at_start_up_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("web.yml");
    std::fs::write(&config, "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_auth: RequireAndVerifyClientCert\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .args(example_host_args(&[
            format!("--web.config.file={}", config.display()),
            "--web.listen-address=127.0.0.1:0".into(),
        ]))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(stderr.contains("client_auth"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    std::fs::write(
        &config,
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .args(example_host_args(&[format!(
            "--web.config.file={}",
            config.display()
        )]))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.crt"));
}

#[test]
fn the_exposition_is_the_text_format_0_0_4_with_its_length() {
    let exporter = Exporter::start(&example_host_args(&[]));
    let url = format!("http://127.0.0.1:{}/metrics", exporter.port);
    let (status, response) = curl(&[&url]);
    assert_eq!(status, 200);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("headers, then the body");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\ncontent-length: {}", body.len())),
        "{head}"
    );
    assert!(body.contains("nova_lvm_vg_size_bytes"), "{body}");
}

#[test]
fn only_get_and_head_on_known_paths_are_served() {
    let exporter = Exporter::start(&example_host_args(&[]));
    let base = format!("http://127.0.0.1:{}", exporter.port);
    assert_eq!(curl(&["-X", "POST", &format!("{base}/metrics")]).0, 405);
    assert_eq!(curl(&["-X", "DELETE", &format!("{base}/")]).0, 405);
    assert_eq!(curl(&[&format!("{base}/nope")]).0, 404);
    assert_eq!(curl(&[&format!("{base}/metrics/../etc/passwd")]).0, 404);
    let (status, response) = curl(&["-I", &format!("{base}/metrics")]);
    assert_eq!(status, 200);
    assert!(!response.contains("nova_lvm_"), "HEAD has no body");
    // Ten thousand requests to unknown paths change nothing.
    for i in 0..10_000 {
        let (status, _) = get(exporter.port, &format!("/probe-{i}")).unwrap();
        assert_eq!(status, 404);
    }
    assert_eq!(
        exporter
            .scrape()
            .value("nova_lvm_collector_success{collector=\"lvm\"}"),
        1.0
    );
}

#[test]
fn slow_clients_are_cut_off_and_scrapes_keep_being_answered() {
    let exporter = Exporter::start(&example_host_args(&[
        "--web.read-header-timeout=1s".to_string()
    ]));
    // Ten slowloris connections: a partial request line, then silence.
    let mut slow: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", exporter.port)).unwrap();
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            stream
        })
        .collect();
    // Scrapes are answered meanwhile.
    assert_eq!(
        exporter
            .scrape()
            .value("nova_lvm_collector_success{collector=\"lvm\"}"),
        1.0
    );
    // The slow connections are closed by the server after the header timeout.
    let started = Instant::now();
    for stream in &mut slow {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buffer = Vec::new();
        let _ = stream.read_to_end(&mut buffer);
    }
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(4),
        "slow connections held for {waited:?}"
    );
    assert_eq!(
        exporter
            .scrape()
            .value("nova_lvm_collector_success{collector=\"lvm\"}"),
        1.0
    );
}
