//! The monitoring stack of the end-to-end tests: a real Prometheus and a real Alertmanager
//! (Debian packages) as child processes on loopback ports 19000-19999, a webhook receiver that
//! records what Alertmanager posts, and the test-only rule file generated from the real one; for
//! the fleet layout, a single-node VictoriaMetrics and vmalert (Debian's `victoria-metrics`).
//! Every process is killed by its own handle on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// The binaries a stack needs: prometheus, promtool and Alertmanager (`prometheus-alertmanager`
/// in Debian, `alertmanager` upstream). The error lists what is missing.
pub fn stack_binaries() -> Result<(PathBuf, PathBuf), String> {
    let prometheus = which("prometheus");
    let alertmanager = which("prometheus-alertmanager").or_else(|| which("alertmanager"));
    match (prometheus, alertmanager, which("promtool")) {
        (Some(p), Some(a), Some(_)) => Ok((p, a)),
        (p, a, t) => Err([
            p.is_none().then_some("prometheus"),
            a.is_none().then_some("prometheus-alertmanager"),
            t.is_none().then_some("promtool"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")),
    }
}

/// Looks a program up in PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

static PORT_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A loopback port in 19000-19999 that is free right now (bound and released). The scan starts
/// at an offset derived from the pid, so parallel test processes rarely meet.
pub fn loopback_port() -> u16 {
    let start =
        (std::process::id() as usize * 7 + PORT_COUNTER.fetch_add(1, Ordering::SeqCst) * 13) % 1000;
    (0..1000)
        .map(|i| 19000 + ((start + i) % 1000) as u16)
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free loopback port in 19000-19999")
}

/// A long-running child process with its log; killed on drop.
pub struct Service {
    name: &'static str,
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    log: PathBuf,
}

impl Service {
    fn spawn(name: &'static str, program: &Path, args: &[String], port: u16, dir: &Path) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", program.display()));
        let mut service = Service {
            name,
            child,
            port,
            log,
        };
        service.wait_ready();
        service
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}:\n{}", self.name, self.log());
            }
            if super::get(self.port, "/-/ready").is_ok_and(|(status, _)| status == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready after 30 s:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Prometheus with its own config, rule files and TSDB in a temporary directory.
pub struct Prometheus {
    /// The process.
    pub service: Service,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Writes `config` (prometheus.yml) and the rule files next to it, starts Prometheus on a
    /// loopback port and waits until it is ready. Alerts are re-sent to Alertmanager every
    /// second so that a short test sees them promptly.
    pub fn start(binary: &Path, config: &str, rule_files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write config");
        for (name, text) in rule_files {
            std::fs::write(dir.path().join(name), text).expect("write rule file");
        }
        let port = loopback_port();
        let args = [
            "--config.file=prometheus.yml".to_string(),
            "--storage.tsdb.path=data".to_string(),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--rules.alert.resend-delay=1s".to_string(),
            "--log.level=warn".to_string(),
        ];
        let service = Service::spawn("prometheus", binary, &args, port, dir.path());
        Prometheus { service, _dir: dir }
    }

    /// An instant query through `/api/v1/query`: the result vector, or the error Prometheus
    /// gave (parse errors included).
    pub fn query(&self, promql: &str) -> Result<Vec<Json>, String> {
        instant_query(self.service.port, promql)
    }

    /// The value of a query that must return exactly one sample, if it does.
    pub fn scalar(&self, promql: &str) -> Option<f64> {
        single_value(self.query(promql))
    }

    /// Runs every query of every shipped dashboard with `values` substituted, waiting up to 20 s
    /// in all for series that need a scrape or two (rate() needs two samples). A query whose
    /// PromQL contains one of `may_be_empty` must parse but may return nothing.
    pub fn check_panel_queries(
        &self,
        values: &[(&str, &str)],
        may_be_empty: &[&str],
    ) -> PanelCheck {
        let mut check = PanelCheck::default();
        let deadline = Instant::now() + Duration::from_secs(20);
        for d in super::grafana::dashboards() {
            for q in d.queries() {
                let promql = super::grafana::substitute(&q.expr, values);
                let who = format!("{} / {} [{}]: {promql}", q.file, q.panel, q.ref_id);
                check.ran += 1;
                loop {
                    match self.query(&promql) {
                        Err(e) => check.errors.push(format!("{who}\n    {e}")),
                        Ok(result) if !result.is_empty() => {}
                        Ok(_) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(500));
                            continue;
                        }
                        Ok(_) if may_be_empty.iter().any(|name| promql.contains(name)) => {}
                        Ok(_) => check.empty.push(who),
                    }
                    break;
                }
            }
        }
        check
    }

    /// `GET path` on the API, parsed.
    pub fn api(&self, path: &str) -> Json {
        let (status, body) = super::get(self.service.port, path).expect("Prometheus API");
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("API answers JSON")
    }
}

/// An instant query through the Prometheus API `/api/v1/query` on `port` (Prometheus or
/// VictoriaMetrics): the result vector, or the error the server gave (parse errors included).
pub fn instant_query(port: u16, promql: &str) -> Result<Vec<Json>, String> {
    let path = format!("/api/v1/query?query={}", url_encode(promql));
    let (status, body) = super::get(port, &path).map_err(|e| format!("HTTP: {e}"))?;
    let json: Json = serde_json::from_str(&body)
        .map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))?;
    if json["status"] != "success" {
        return Err(format!(
            "{}: {}",
            json["errorType"].as_str().unwrap_or("?"),
            json["error"].as_str().unwrap_or(&body)
        ));
    }
    match json["data"]["resultType"].as_str() {
        Some("vector") | Some("matrix") => Ok(json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()),
        // A scalar or string result is one value.
        _ => Ok(vec![json["data"]["result"].clone()]),
    }
}

/// The value of a query result that holds exactly one sample, if it does.
fn single_value(result: Result<Vec<Json>, String>) -> Option<f64> {
    match result.ok()?.as_slice() {
        [sample] => sample["value"][1].as_str()?.parse().ok(),
        _ => None,
    }
}

/// The binaries of the fleet layout: `victoria-metrics` and `vmalert` (Debian's
/// `victoria-metrics` package). The error lists what is missing.
pub fn fleet_binaries() -> Result<(PathBuf, PathBuf), String> {
    match (which("victoria-metrics"), which("vmalert")) {
        (Some(vm), Some(vmalert)) => Ok((vm, vmalert)),
        (vm, vmalert) => Err([
            vm.is_none().then_some("victoria-metrics"),
            vmalert.is_none().then_some("vmalert"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")),
    }
}

/// A real single-node VictoriaMetrics: takes Prometheus remote write on `/api/v1/write` and
/// answers the Prometheus query API. New samples are searchable at once and nothing is cached,
/// so that a test sees what was just written.
pub struct VictoriaMetrics {
    /// The process.
    pub service: Service,
    _dir: tempfile::TempDir,
}

impl VictoriaMetrics {
    /// Starts it on a loopback port with its data in a temporary directory.
    pub fn start(binary: &Path) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = loopback_port();
        let args = [
            format!("-httpListenAddr=127.0.0.1:{port}"),
            "-storageDataPath=data".to_string(),
            "-search.latencyOffset=0s".to_string(),
            "-search.disableCache".to_string(),
            "-loggerLevel=WARN".to_string(),
        ];
        let service = Service::spawn("victoria-metrics", binary, &args, port, dir.path());
        VictoriaMetrics { service, _dir: dir }
    }

    /// Its remote-write URL.
    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.service.port)
    }

    /// An instant query through its Prometheus API.
    pub fn query(&self, promql: &str) -> Result<Vec<Json>, String> {
        instant_query(self.service.port, promql)
    }

    /// The value of a query that must return exactly one sample, if it does.
    pub fn scalar(&self, promql: &str) -> Option<f64> {
        single_value(self.query(promql))
    }
}

/// A real vmalert: evaluates a rule file against VictoriaMetrics every second, writes recorded
/// series and alert states back to it, and sends alerts to an Alertmanager.
pub struct Vmalert {
    /// The process.
    pub service: Service,
    _dir: tempfile::TempDir,
}

impl Vmalert {
    /// Starts vmalert with `rules` (YAML) reading from and writing to `vm`, notifying the
    /// Alertmanager on `alertmanager_port`.
    pub fn start(binary: &Path, rules: &str, vm: &VictoriaMetrics, alertmanager_port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("rules.yml"), rules).expect("write rule file");
        let port = loopback_port();
        let vm_url = format!("http://127.0.0.1:{}", vm.service.port);
        let args = [
            format!("-httpListenAddr=127.0.0.1:{port}"),
            "-rule=rules.yml".to_string(),
            format!("-datasource.url={vm_url}"),
            format!("-remoteWrite.url={vm_url}"),
            format!("-remoteRead.url={vm_url}"),
            "-remoteWrite.flushInterval=1s".to_string(),
            format!("-notifier.url=http://127.0.0.1:{alertmanager_port}"),
            "-evaluationInterval=1s".to_string(),
            "-rule.resendDelay=1s".to_string(),
            "-loggerLevel=WARN".to_string(),
        ];
        let service = Service::spawn("vmalert", binary, &args, port, dir.path());
        Vmalert { service, _dir: dir }
    }
}

/// A real Alertmanager routing every alert to one webhook.
pub struct Alertmanager {
    /// The process.
    pub service: Service,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager with one route to `webhook_url`: group waits and intervals of one
    /// second, resolved notifications on, clustering off.
    pub fn start(binary: &Path, webhook_url: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            r#"route:
  receiver: webhook
  group_by: [alertname, instance, vg, severity]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: webhook
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
"#
        );
        std::fs::write(dir.path().join("alertmanager.yml"), config).expect("write config");
        let port = loopback_port();
        let args = [
            "--config.file=alertmanager.yml".to_string(),
            "--storage.path=data".to_string(),
            format!("--web.listen-address=127.0.0.1:{port}"),
            // No gossip: an empty address turns clustering off (it would bind 9094).
            "--cluster.listen-address=".to_string(),
            "--log.level=warn".to_string(),
        ];
        let service = Service::spawn("alertmanager", binary, &args, port, dir.path());
        Alertmanager { service, _dir: dir }
    }
}

/// A tiny HTTP server on loopback that records the JSON body of every POST (Alertmanager's
/// webhook notifications) and answers 200.
pub struct WebhookReceiver {
    /// Its port on 127.0.0.1.
    pub port: u16,
    received: Arc<Mutex<Vec<Json>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookReceiver {
    /// Binds a loopback port and starts serving.
    pub fn start() -> Self {
        let (listener, port) = loop {
            let port = loopback_port();
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
                break (listener, port);
            }
        };
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let received = Arc::clone(&received);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        if let Some(body) = read_post(stream) {
                            if let Ok(json) = serde_json::from_slice(&body) {
                                received.lock().unwrap().push(json);
                            }
                        }
                    }
                }
            })
        };
        WebhookReceiver {
            port,
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Every notification received so far.
    pub fn notifications(&self) -> Vec<Json> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until some alert of a notification satisfies `matches`, and returns it.
    pub fn wait_for(&self, timeout: Duration, matches: impl Fn(&Json) -> bool) -> Option<Json> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.notifications().iter().find_map(|n| {
                n["alerts"]
                    .as_array()
                    .and_then(|alerts| alerts.iter().find(|a| matches(a)).cloned())
            });
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one HTTP request (headers, then a Content-Length body), answers 200 and closes.
fn read_post(stream: TcpStream) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = reader.into_inner();
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    request_line.starts_with("POST").then_some(body)
}

/// Percent-encodes a query parameter.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The test-only rule file: the real one with every group evaluated every `interval`, every
/// alert's `for:` replaced by `for_` (whole seconds, `2s`) and the orphan alert's minimum age
/// set to `for_` too, as `scripts/shorten-for` does. Nothing else changes. Returns the YAML and
/// how many alerts were rewritten.
pub fn fast_rules(real: &str, interval: &str, for_: &str) -> (String, usize) {
    let for_seconds: u64 = for_
        .strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .expect("for_ in whole seconds, like 2s");
    let mut doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(real).expect("the rule file is YAML");
    let mut alerts = 0;
    for group in doc["groups"]
        .as_sequence_mut()
        .expect("groups is a list")
        .iter_mut()
    {
        let group = group.as_mapping_mut().expect("a group is a mapping");
        group.insert("interval".into(), interval.into());
        for rule in group
            .get_mut("rules")
            .and_then(|r| r.as_sequence_mut())
            .expect("a group has rules")
        {
            let rule = rule.as_mapping_mut().expect("a rule is a mapping");
            if rule.get("record").and_then(|r| r.as_str())
                == Some("nova_lvm:alert_threshold:orphan_min_age_seconds")
            {
                rule.insert("expr".into(), format!("vector({for_seconds})").into());
            }
            if rule.contains_key("alert") {
                rule.insert("for".into(), for_.into());
                alerts += 1;
            }
        }
    }
    (serde_yaml_ng::to_string(&doc).expect("YAML"), alerts)
}

/// What [`Prometheus::check_panel_queries`] found.
#[derive(Debug, Default)]
pub struct PanelCheck {
    /// Panel queries run.
    pub ran: usize,
    /// Queries Prometheus refused, each with its error.
    pub errors: Vec<String>,
    /// Queries that returned no data by the deadline.
    pub empty: Vec<String>,
}
