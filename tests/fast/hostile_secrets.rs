//! Secrets never leave the process (issue 12, defect 3): known, distinct secrets are planted in
//! every input that can carry one (the user info of `OS_AUTH_URL`, of the placement endpoint
//! override and of a catalog URL; `OS_PASSWORD`; a clouds.yaml password and application
//! credential secret; nova.conf's `[placement]` password; the token Keystone issues) while
//! in-test servers echo each request, headers and body, into their error answers. Every output
//! is then searched for every secret: the log at debug level, `/`, `/metrics`, `report`,
//! `report --format json`, `check` and `--config.check`.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{get, Exporter};
use serde_json::json;

/// In `OS_AUTH_URL`'s user info.
const AUTH_URL_PASSWORD: &str = "AuthUrlPw-7c1e9";
/// `OS_PASSWORD`.
const OS_PASSWORD: &str = "OsPassword-3b8d2f";
/// In the user info of `OS_PLACEMENT_ENDPOINT`.
const OVERRIDE_PASSWORD: &str = "OverridePw-6f2a0";
/// In the user info of the compute URL of the catalog Keystone returns.
const CATALOG_PASSWORD: &str = "CatalogPw-0b3d7";
/// The token the fake Keystone issues.
const TOKEN: &str = "gAAAAABtoken-e4d19c-fernet";
/// clouds.yaml's application credential secret.
const APP_CRED_SECRET: &str = "AppCredSecret-91f0a4";
/// secure.yaml's password.
const CLOUDS_PASSWORD: &str = "CloudsYamlPw-55e7c1";
/// nova.conf's `[placement]` password and the user info of its auth_url.
const NOVA_CONF_PASSWORD: &str = "NovaConfPw-2a6b8";
const NOVA_CONF_URL_PASSWORD: &str = "NovaConfUrlPw-1d4c";

/// What a hostile placement puts before its echo: clear screen, set the window title, bell,
/// right-to-left override.
const TERMINAL_ESCAPES: &str = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{202e}";

const PROVIDER: &str = "0f6b2d84-93a1-4e57-8c2f-6a1d9e3b7c40";

/// Every secret, with the Basic credentials a client derives from a URL's user info.
fn secrets() -> Vec<(String, String)> {
    let basic = |user_info: &str| base64::engine::general_purpose::STANDARD.encode(user_info);
    let mut all: Vec<(String, String)> = [
        ("OS_AUTH_URL user info", AUTH_URL_PASSWORD),
        ("OS_PASSWORD", OS_PASSWORD),
        ("endpoint override user info", OVERRIDE_PASSWORD),
        ("catalog URL user info", CATALOG_PASSWORD),
        ("Keystone token", TOKEN),
        ("application credential secret", APP_CRED_SECRET),
        ("clouds.yaml password", CLOUDS_PASSWORD),
        ("nova.conf password", NOVA_CONF_PASSWORD),
        ("nova.conf URL user info", NOVA_CONF_URL_PASSWORD),
    ]
    .iter()
    .map(|(what, secret)| (what.to_string(), secret.to_string()))
    .collect();
    for (what, user_info) in [
        ("Basic of OS_AUTH_URL", format!("admin:{AUTH_URL_PASSWORD}")),
        ("Basic of the override", format!("pl:{OVERRIDE_PASSWORD}")),
        (
            "Basic of the catalog URL",
            format!("cat:{CATALOG_PASSWORD}"),
        ),
    ] {
        all.push((what.to_string(), basic(&user_info)));
    }
    all
}

/// How the fake Keystone answers a token request.
#[derive(Clone, Copy, PartialEq)]
enum Keystone {
    /// 201 with [`TOKEN`] and a catalog; the services then echo requests in 500 and 401s.
    Grant,
    /// 401, the request body echoed as plain text.
    EchoUnauthorized,
    /// 500, the request (body first, then the head) echoed as the message of a Keystone
    /// error document.
    EchoServerError,
}

/// Keystone, placement and compute on one loopback port, recording every request.
struct Upstream {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    fn start(keystone: Keystone) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve(stream, port, keystone, &log));
            }
        });
        Upstream { port, requests }
    }

    fn received(&self, needle: &str) -> bool {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains(needle))
    }
}

fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn serve(mut stream: TcpStream, port: u16, keystone: Keystone, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
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
    let _ = reader.read_exact(&mut body);
    let body = String::from_utf8_lossy(&body).into_owned();
    let head = request.clone();
    request.push_str(&body);
    log.lock().unwrap().push(request.clone());
    let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
    let json_type = "Content-Type: application/json\r\n";
    if path.ends_with("/auth/tokens") {
        match keystone {
            Keystone::Grant => {
                let token = json!({"token": {
                "expires_at": "2099-01-01T00:00:00.000000Z",
                "roles": [{"name": "admin"}],
                "catalog": [
                    {"type": "compute", "endpoints": [{"interface": "internal", "region_id": "RegionOne",
                      "url": format!("http://cat:{CATALOG_PASSWORD}@127.0.0.1:{port}/compute")}]},
                    {"type": "placement", "endpoints": [{"interface": "internal", "region_id": "RegionOne",
                      "url": format!("http://127.0.0.1:{port}/placement")}]}
                ]}});
                respond(
                    &mut stream,
                    "201 Created",
                    &format!("{json_type}X-Subject-Token: {TOKEN}\r\n"),
                    &token.to_string(),
                );
            }
            Keystone::EchoUnauthorized => respond(
                &mut stream,
                "401 Unauthorized",
                "Content-Type: text/plain\r\n",
                &body,
            ),
            Keystone::EchoServerError => respond(
                &mut stream,
                "500 Internal Server Error",
                json_type,
                &json!({"error": {"code": 500, "message": format!("{body}\n{head}")}}).to_string(),
            ),
        }
    } else if path.starts_with("/compute") {
        // Plain text, as a proxy in front of nova would answer.
        respond(
            &mut stream,
            "401 Unauthorized",
            "Content-Type: text/plain\r\n",
            &request,
        );
    } else {
        // With terminal escapes and a right-to-left override in front.
        let detail = format!("{TERMINAL_ESCAPES}{request}");
        let body = json!({"errors": [{"status": 500, "title": "Internal Server Error", "detail": detail}]});
        respond(
            &mut stream,
            "500 Internal Server Error",
            json_type,
            &body.to_string(),
        );
    }
}

/// nova.conf with a `[placement]` section carrying credentials, the seed LVM report, and the
/// clouds.yaml + secure.yaml of `port`'s Keystone, in `dir`.
fn write_inputs(dir: &Path, port: u16) {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seed-incident");
    let nova_conf = std::fs::read_to_string(seed.join("nova.conf")).unwrap();
    std::fs::write(
        dir.join("nova.conf"),
        format!(
            "{nova_conf}\n[placement]\nauth_type = password\nauth_url = http://nova:{NOVA_CONF_URL_PASSWORD}@127.0.0.1:{port}/v3\nusername = placement\npassword = {NOVA_CONF_PASSWORD}\n"
        ),
    )
    .unwrap();
    std::fs::copy(seed.join("lvm-report.json"), dir.join("lvm-report.json")).unwrap();
    std::fs::write(
        dir.join("clouds.yaml"),
        format!(
            "clouds:\n  appcred:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: http://admin:{AUTH_URL_PASSWORD}@127.0.0.1:{port}/v3\n      application_credential_id: ac-1\n      application_credential_secret: {APP_CRED_SECRET}\n  password:\n    auth:\n      auth_url: http://127.0.0.1:{port}/v3\n      username: exporter\n      user_domain_name: Default\n      project_name: service\n      project_domain_name: Default\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("secure.yaml"),
        format!("clouds:\n  password:\n    auth:\n      password: {CLOUDS_PASSWORD}\n"),
    )
    .unwrap();
}

/// The flags every run shares: both API sources, the seed report, nova.conf of `dir`.
fn flags(dir: &Path) -> Vec<String> {
    let dir = dir.display();
    [
        format!("--nova.config-file={dir}/nova.conf"),
        format!("--collector.lvm.replay-file={dir}/lvm-report.json"),
        "--no-collector.libvirt".to_string(),
        "--collector.placement".to_string(),
        "--collector.nova".to_string(),
        format!("--collector.placement.provider-uuid={PROVIDER}"),
        "--collector.timeout=3s".to_string(),
        "--log.level=debug".to_string(),
    ]
    .to_vec()
}

/// The environment of a scenario: `OS_*` variables, or `--os-cloud` with the files of `dir`.
fn environment(dir: &Path, port: u16, cloud: Option<&str>) -> Vec<(String, String)> {
    match cloud {
        Some(name) => vec![
            ("OS_CLOUD".into(), name.into()),
            (
                "OS_CLIENT_CONFIG_FILE".into(),
                dir.join("clouds.yaml").display().to_string(),
            ),
            (
                "OS_CLIENT_SECURE_FILE".into(),
                dir.join("secure.yaml").display().to_string(),
            ),
        ],
        None => vec![
            (
                "OS_AUTH_URL".into(),
                format!("http://admin:{AUTH_URL_PASSWORD}@127.0.0.1:{port}/v3"),
            ),
            ("OS_USERNAME".into(), "exporter".into()),
            ("OS_PASSWORD".into(), OS_PASSWORD.into()),
            ("OS_USER_DOMAIN_NAME".into(), "Default".into()),
            ("OS_PROJECT_NAME".into(), "service".into()),
            ("OS_PROJECT_DOMAIN_NAME".into(), "Default".into()),
            (
                "OS_PLACEMENT_ENDPOINT".into(),
                format!("http://pl:{OVERRIDE_PASSWORD}@127.0.0.1:{port}/placement"),
            ),
        ],
    }
}

/// Stdout and stderr of one command-line run.
fn run(args: &[String], env: &[(String, String)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"));
    for (key, _) in std::env::vars() {
        if key.starts_with("OS_") {
            command.env_remove(key);
        }
    }
    let output = command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .expect("run the exporter");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every output of the exporter for one scenario, by name, once the API collectors have
/// failed with `marker` on the status page.
fn outputs(
    keystone: Keystone,
    cloud: Option<&str>,
    marker: &str,
) -> (Vec<(String, String)>, Upstream) {
    let upstream = Upstream::start(keystone);
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), upstream.port);
    let env = environment(dir.path(), upstream.port, cloud);
    let flags = flags(dir.path());
    let mut outputs = Vec::new();

    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let exporter = Exporter::start_with_env(&flags, &env_refs);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status_page = loop {
        let _ = get(exporter.port, "/metrics");
        let (_, page) = get(exporter.port, "/").unwrap();
        if page.contains(marker) {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "{marker:?} never on the status page:\n{page}\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    outputs.push(("/".to_string(), status_page));
    outputs.push((
        "/metrics".to_string(),
        get(exporter.port, "/metrics").unwrap().1,
    ));
    outputs.push(("the log (debug)".to_string(), exporter.log()));
    drop(exporter);

    let with = |extra: &[&str]| {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend(flags.iter().cloned());
        args
    };
    for (name, extra) in [
        ("report", &["report"][..]),
        ("report --format json", &["report", "--format", "json"][..]),
        ("check", &["check"][..]),
        ("--config.check", &["--config.check"][..]),
    ] {
        outputs.push((name.to_string(), run(&with(extra), &env)));
    }
    (outputs, upstream)
}

fn assert_no_secret(outputs: &[(String, String)]) {
    let mut leaks = Vec::new();
    for (output, text) in outputs {
        for (what, secret) in secrets() {
            if text.contains(&secret) {
                leaks.push(format!("{what} in {output}"));
            }
        }
    }
    let all: String = outputs
        .iter()
        .map(|(name, text)| format!("==== {name}\n{text}\n"))
        .collect();
    assert!(leaks.is_empty(), "leaked: {leaks:?}\n{all}");
}

fn text_of<'a>(outputs: &'a [(String, String)], name: &str) -> &'a str {
    &outputs.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn echoing_services_after_a_granted_token_leak_no_secret_anywhere() {
    let (outputs, upstream) = outputs(Keystone::Grant, None, "answered HTTP 500");
    // The servers did see the secrets, so an echo would have carried them.
    assert!(upstream.received(TOKEN));
    assert!(upstream.received(OS_PASSWORD));
    assert_no_secret(&outputs);
    // Errors still say what happened, with the secrets replaced.
    let page = text_of(&outputs, "/");
    assert!(page.contains("&lt;redacted&gt;"), "{page}");
    assert!(
        text_of(&outputs, "the log (debug)").contains("<redacted>@127.0.0.1"),
        "the auth URL is shown without its user info"
    );
    let config_check = text_of(&outputs, "--config.check");
    assert!(
        config_check.contains("keystone: http://<redacted>@127.0.0.1"),
        "{config_check}"
    );
    let report = text_of(&outputs, "report");
    assert!(report.contains("answered HTTP 500"), "{report}");
    assert!(report.contains("401 Unauthorized"), "{report}");
}

#[test]
fn a_keystone_echoing_the_application_credential_into_a_401_leaks_nothing() {
    let (outputs, upstream) = outputs(
        Keystone::EchoUnauthorized,
        Some("appcred"),
        "refused to authenticate",
    );
    assert!(upstream.received(APP_CRED_SECRET));
    assert_no_secret(&outputs);
    assert!(text_of(&outputs, "report").contains("refused to authenticate"));
}

#[test]
fn a_keystone_echoing_the_clouds_yaml_password_into_a_500_leaks_nothing() {
    let (outputs, upstream) = outputs(
        Keystone::EchoServerError,
        Some("password"),
        "answered HTTP 500",
    );
    assert!(upstream.received(CLOUDS_PASSWORD));
    assert_no_secret(&outputs);
}

#[test]
fn upstream_control_characters_never_reach_an_output() {
    let (outputs, _) = outputs(Keystone::Grant, None, "answered HTTP 500");
    for (name, text) in &outputs {
        for unsafe_char in ['\u{1b}', '\u{7}', '\u{202e}', '\r'] {
            assert!(
                !text.contains(unsafe_char),
                "{unsafe_char:?} in {name}:\n{text:?}"
            );
        }
    }
    let report = text_of(&outputs, "report");
    assert!(
        report.contains("answered HTTP 500: [2J ]0;owned GET /placement/ HTTP/1.1"),
        "{report}"
    );
}

#[test]
fn a_keystone_echoing_os_password_into_a_401_leaks_nothing() {
    let (outputs, upstream) = outputs(Keystone::EchoUnauthorized, None, "refused to authenticate");
    assert!(upstream.received(OS_PASSWORD));
    assert_no_secret(&outputs);
}

#[test]
fn a_rejected_auth_url_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), 1);
    for url in [
        format!("ftp://admin:{AUTH_URL_PASSWORD}@127.0.0.1/v3"),
        format!("http://admin:{AUTH_URL_PASSWORD}@127.0.0.1/v2.0"),
    ] {
        let mut env = environment(dir.path(), 1, None);
        env[0].1 = url;
        for command in ["--config.check", "report", "check"] {
            let mut args = vec![command.to_string()];
            args.extend(flags(dir.path()));
            let output = run(&args, &env);
            assert!(output.contains("OS_AUTH_URL"), "{output}");
            assert!(output.contains("<redacted>@127.0.0.1"), "{output}");
            assert!(!output.contains(AUTH_URL_PASSWORD), "{command}: {output}");
        }
    }
}
