//! Fleet simulation (a benchmark, not a test): what a real Placement receives from 1,000
//! exporters' placement sources.
//!
//! Runs the exporter's own library code: per simulated compute node one [`PlacementSource`]
//! (its own resource provider) behind one [`CachedSource`], all in this process and sharing one
//! Keystone session (one token; a real fleet has one per host, which costs Keystone, not
//! Placement). A simulated Prometheus scrapes every exporter every `FLEET_SCRAPE_SECONDS`, each
//! at its own fixed offset within the scrape interval (as Prometheus spreads its targets). The
//! refresh interval is compressed (`FLEET_REFRESH_SECONDS`, default 20 s instead of 60 s, with
//! 5 s scrapes instead of 15 s, the same 1:4 ratio) so a run takes minutes.
//!
//! Scenarios: `restart` (all exporters start in the same second, a fleet-wide config push) and
//! `random` (start times spread at random over one refresh interval). Placement's own access
//! log (`ACCESS <method> <path> <status> <unix time> <seconds>`) is the measurement; the
//! report is a Markdown table on stdout.
//!
//! Started by `scripts/bench-fleet`, which brings up Keystone and Placement and passes:
//! `PLACEMENT_URL`, `OS_AUTH_URL`, `ADMIN_PASSWORD`, `APP_CRED_ID`, `APP_CRED_SECRET`,
//! `PLACEMENT_LOG` (placement's access log). Tunables: `FLEET_SIZE` (1000),
//! `FLEET_REFRESH_SECONDS` (20), `FLEET_SCRAPE_SECONDS` (5), `FLEET_INTERVALS` (5, the length
//! of each scenario in refresh intervals), `FLEET_SCENARIOS` (`restart,random`),
//! `FLEET_START_SPREAD` (1: each exporter holds its first refresh back by a random delay within
//! the refresh interval, as the exporter does by default; 0: `--no-collector.start-spread`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use nova_lvm_exporter::openstack::config;
use nova_lvm_exporter::openstack::keystone::Session;
use nova_lvm_exporter::tracked::cached::{jittered, CacheSettings, CachedSource, JITTER_FRACTION};
use nova_lvm_exporter::tracked::host::ProviderName;
use nova_lvm_exporter::tracked::placement::{InventoryPolicy, PlacementSource};
use nova_lvm_exporter::tracked::{SourceKind, TrackedError, TrackedSource, TrackedUsage};
use serde_json::{json, Value};

/// GETs per refresh of the exporter before this change (provider lookup, inventories, usages,
/// allocations), for the comparison row.
const OLD_GETS_PER_REFRESH: f64 = 4.0;
/// Consumers per provider.
const CONSUMERS: usize = 3;

fn env(key: &str) -> String {
    std::env::var(key)
        .unwrap_or_else(|_| panic!("fleet bench: {key} is not set (run scripts/bench-fleet)"))
}

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{key}={v}: not a number"))
        })
        .unwrap_or(default)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn provider_name(n: usize) -> String {
    format!("fleet-cmp-{n:04}")
}

fn provider_uuid(n: usize) -> String {
    format!("f1ee7000-0000-4000-8000-{n:012x}")
}

fn consumer_uuid(n: usize, c: usize) -> String {
    format!("f1ee7c00-{c:04x}-4000-8000-{n:012x}")
}

/// An admin client for seeding.
struct Admin {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Admin {
    async fn new(http: reqwest::Client) -> Admin {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": env("ADMIN_PASSWORD")}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
        let response = http
            .post(format!("{}/auth/tokens", env("OS_AUTH_URL")))
            .json(&body)
            .send()
            .await
            .expect("keystone");
        assert_eq!(response.status().as_u16(), 201, "admin token");
        let token = response.headers()["x-subject-token"]
            .to_str()
            .unwrap()
            .to_string();
        Admin {
            http,
            url: env("PLACEMENT_URL"),
            token,
        }
    }

    /// One call at microversion 1.39; sqlite's "database is locked" is retried.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        for _ in 0..50 {
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.url))
                .header("X-Auth-Token", &self.token)
                .header("OpenStack-API-Version", "placement 1.39");
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.expect("placement");
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if status.is_success() {
                return serde_json::from_str(&text).unwrap_or(Value::Null);
            }
            assert!(
                text.contains("database is locked") || status.as_u16() == 409,
                "{method} {path} -> {status}: {text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{method} {path}: placement stayed busy");
    }

    /// Provider `n` with a DISK_GB inventory (a 1 TiB VG, 10 GiB reserved).
    async fn register(&self, n: usize) {
        self.call(
            reqwest::Method::POST,
            "/resource_providers",
            Some(json!({"name": provider_name(n), "uuid": provider_uuid(n)})),
        )
        .await;
        self.call(
            reqwest::Method::PUT,
            &format!("/resource_providers/{}/inventories", provider_uuid(n)),
            Some(json!({"resource_provider_generation": 0, "inventories": {
                "DISK_GB": {"total": 1024, "reserved": 10, "min_unit": 1, "max_unit": 1024,
                            "step_size": 1, "allocation_ratio": 1.0}}})),
        )
        .await;
    }
}

/// Creates the fleet's providers and their consumers, unless a previous run did.
async fn seed(fleet: usize) {
    let http = reqwest::Client::new();
    let admin = Arc::new(Admin::new(http).await);
    let last = admin
        .call(
            reqwest::Method::GET,
            &format!("/resource_providers?name={}", provider_name(fleet - 1)),
            None,
        )
        .await;
    if !last["resource_providers"].as_array().unwrap().is_empty() {
        eprintln!("fleet bench: {fleet} providers already seeded");
        return;
    }
    let started = Instant::now();
    let next = Arc::new(Mutex::new(0usize));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let admin = Arc::clone(&admin);
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                loop {
                    let n = {
                        let mut next = next.lock().unwrap();
                        *next += 1;
                        *next - 1
                    };
                    if n >= fleet {
                        break;
                    }
                    admin.register(n).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    // Consumers in batches: POST /allocations takes many consumers at once.
    let consumers: Vec<(usize, usize)> = (0..fleet)
        .flat_map(|n| (0..CONSUMERS).map(move |c| (n, c)))
        .collect();
    for batch in consumers.chunks(200) {
        let body: serde_json::Map<String, Value> = batch
            .iter()
            .map(|&(n, c)| {
                (
                    consumer_uuid(n, c),
                    json!({
                        "allocations": {provider_uuid(n): {"resources": {"DISK_GB": 20 * (c + 1)}}},
                        "project_id": "6f70656e737461636b20726f636b7321",
                        "user_id": "8a1b5c2d3e4f40718293a4b5c6d7e8f9",
                        "consumer_generation": null,
                        "consumer_type": "INSTANCE",
                    }),
                )
            })
            .collect();
        admin
            .call(
                reqwest::Method::POST,
                "/allocations",
                Some(Value::Object(body)),
            )
            .await;
    }
    eprintln!(
        "fleet bench: seeded {fleet} providers with {} consumers in {:.0} s",
        fleet * CONSUMERS,
        started.elapsed().as_secs_f64()
    );
}

/// Times every refresh of the source it wraps (the client's view of Placement's latency).
struct Timed {
    inner: PlacementSource,
    refresh_seconds: Arc<Mutex<Vec<f64>>>,
    failures: Arc<Mutex<u64>>,
}

#[async_trait]
impl TrackedSource for Timed {
    fn kind(&self) -> SourceKind {
        SourceKind::Placement
    }

    async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
        let started = Instant::now();
        let result = self.inner.collect().await;
        self.refresh_seconds
            .lock()
            .unwrap()
            .push(started.elapsed().as_secs_f64());
        if result.is_err() {
            *self.failures.lock().unwrap() += 1;
        }
        result
    }
}

/// A uniform number in [0, 1) from `seed` (splitmix64): deterministic offsets and starts.
fn uniform(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

struct Settings {
    fleet: usize,
    refresh: Duration,
    scrape: Duration,
    intervals: u64,
    start_spread: bool,
}

/// What one scenario measured.
struct Outcome {
    started_unix: f64,
    ended_unix: f64,
    refresh_seconds: Vec<f64>,
    failures: u64,
    scrape_failures: u64,
}

/// Runs one scenario: fresh exporters (empty caches), scraped until the end.
async fn run(scenario: &str, settings: &Settings, session: &Arc<Session>) -> Outcome {
    let refresh_seconds = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(0));
    let scrape_failures = Arc::new(Mutex::new(0u64));
    let started = Instant::now();
    let started_unix = unix_now();
    let duration = settings.refresh * settings.intervals as u32;
    let salt = if scenario == "restart" { 1 } else { 2 };
    let mut tasks = Vec::new();
    for n in 0..settings.fleet {
        let source = PlacementSource::new(
            Arc::clone(session),
            ProviderName {
                name: provider_name(n),
                origin: "the fleet bench".to_string(),
                uuid: None,
                in_nova_order: false,
            },
        )
        .with_request_timeout(Duration::from_secs(30))
        .with_inventory_policy(InventoryPolicy {
            refresh_interval: settings.refresh,
            inventory_max_age: settings.refresh * 2,
        });
        let cache = CachedSource::new(
            Arc::new(Timed {
                inner: source,
                refresh_seconds: Arc::clone(&refresh_seconds),
                failures: Arc::clone(&failures),
            }),
            CacheSettings {
                interval: settings.refresh,
                max_age: settings.refresh * 3,
                max_age_flag: "--collector.placement.max-age",
            },
        );
        let cache = if settings.start_spread {
            cache.with_start_spread(settings.refresh)
        } else {
            cache
        };
        // Prometheus scrapes target n at a fixed offset within its scrape interval.
        let offset = settings.scrape.mul_f64(uniform(n as u64 * 7919 + 17));
        let start = if scenario == "restart" {
            Duration::ZERO
        } else {
            settings.refresh.mul_f64(uniform(n as u64 * 104_729 + salt))
        };
        let scrape = settings.scrape;
        let scrape_failures = Arc::clone(&scrape_failures);
        tasks.push(tokio::spawn(async move {
            // The first scrape at or after the exporter's start, on the target's grid.
            let periods = start.saturating_sub(offset).as_secs_f64() / scrape.as_secs_f64();
            let mut at = offset + scrape.mul_f64(periods.ceil());
            while at < duration {
                tokio::time::sleep_until((started + at).into()).await;
                let outcome = tokio::time::timeout(Duration::from_secs(5), cache.collect()).await;
                if !matches!(outcome, Ok(Ok(_))) {
                    *scrape_failures.lock().unwrap() += 1;
                }
                at += scrape;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let refresh_seconds = refresh_seconds.lock().unwrap().clone();
    let failures = *failures.lock().unwrap();
    let scrape_failures = *scrape_failures.lock().unwrap();
    Outcome {
        started_unix,
        ended_unix: unix_now(),
        refresh_seconds,
        failures,
        scrape_failures,
    }
}

/// One line of placement's access log.
struct Access {
    path: String,
    unix: f64,
    seconds: f64,
}

fn read_log(path: &str) -> Vec<Access> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.strip_prefix("ACCESS ")?.split(' ').collect();
            match fields.as_slice() {
                ["GET", path, _status, unix, seconds] => Some(Access {
                    path: (*path).to_string(),
                    unix: unix.parse().ok()?,
                    seconds: seconds.parse().ok()?,
                }),
                _ => None,
            }
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Requests per 1-s bucket of `[from, to)`.
fn buckets(times: &[f64], from: f64, to: f64) -> Vec<f64> {
    let mut counts = vec![0.0; (to - from).floor().max(1.0) as usize];
    for t in times {
        if (from..to).contains(t) {
            let i = ((t - from) as usize).min(counts.len() - 1);
            counts[i] += 1.0;
        }
    }
    counts
}

struct Row {
    label: String,
    total: f64,
    per_exporter_interval: f64,
    steady_per_exporter_interval: f64,
    mean: f64,
    p99: f64,
    max: f64,
    evenness: f64,
}

fn row(label: &str, times: &[f64], from: f64, to: f64, settings: &Settings) -> Row {
    let refresh = settings.refresh.as_secs_f64();
    let all = buckets(times, from, to);
    let total: f64 = all.iter().sum();
    let mut sorted = all.clone();
    sorted.sort_by(f64::total_cmp);
    let later = buckets(times, from + refresh, to);
    let later_mean = later.iter().sum::<f64>() / later.len() as f64;
    let later_max = later.iter().copied().fold(0.0, f64::max);
    Row {
        label: label.to_string(),
        total,
        per_exporter_interval: total / settings.fleet as f64 / ((to - from) / refresh),
        steady_per_exporter_interval: later.iter().sum::<f64>()
            / settings.fleet as f64
            / ((to - from - refresh) / refresh),
        mean: total / all.len() as f64,
        p99: percentile(&sorted, 99.0),
        max: sorted.last().copied().unwrap_or(0.0),
        evenness: later_max / later_mean,
    }
}

/// Refresh start times of the old schedule (first refresh at the first scrape, every later one
/// interval ± 10% after the previous, due at the next scrape), for the comparison rows. Pure
/// arithmetic on the same scrape grid and start times as the measured run.
fn old_schedule(scenario: &str, settings: &Settings, from: f64) -> Vec<f64> {
    let scrape = settings.scrape.as_secs_f64();
    let duration = (settings.refresh * settings.intervals as u32).as_secs_f64();
    let salt = if scenario == "restart" { 1 } else { 2 };
    let mut times = Vec::new();
    for n in 0..settings.fleet {
        let offset = scrape * uniform(n as u64 * 7919 + 17);
        let start = if scenario == "restart" {
            0.0
        } else {
            settings.refresh.as_secs_f64() * uniform(n as u64 * 104_729 + salt)
        };
        let mut at = offset + scrape * ((start - offset).max(0.0) / scrape).ceil();
        let mut k = 0u64;
        while at < duration {
            times.push(from + at);
            let delay = jittered(
                settings.refresh,
                JITTER_FRACTION,
                uniform(n as u64 * 31 + k),
            )
            .as_secs_f64();
            // The next refresh starts at the first scrape at or after it is due.
            let due = at + delay;
            at += scrape * ((due - at) / scrape).ceil();
            k += 1;
        }
    }
    // Each old refresh was 4 GETs (the first also the version document) within a few ms.
    times
        .iter()
        .flat_map(|t| std::iter::repeat_n(*t, OLD_GETS_PER_REFRESH as usize))
        .collect()
}

fn print_table(rows: &[Row]) {
    println!("| scenario | GETs total | GETs per exporter per refresh interval | the same after the first interval | req/s mean | req/s p99 (1-s buckets) | req/s max | max/mean after the first interval |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {:.0} | {:.3} | {:.3} | {:.1} | {:.0} | {:.0} | {:.2} |",
            r.label,
            r.total,
            r.per_exporter_interval,
            r.steady_per_exporter_interval,
            r.mean,
            r.p99,
            r.max,
            r.evenness
        );
    }
}

fn main() {
    // `cargo bench` passes --bench. `cargo test --all-targets` runs bench targets too; this one
    // needs the servers scripts/bench-fleet starts and minutes of wall time, so there it only
    // proves that it builds.
    if !std::env::args().any(|a| a == "--bench") {
        println!("fleet bench: a benchmark, not a test; run scripts/bench-fleet");
        return;
    }
    let settings = Settings {
        fleet: env_number("FLEET_SIZE", 1000) as usize,
        refresh: Duration::from_secs(env_number("FLEET_REFRESH_SECONDS", 20)),
        scrape: Duration::from_secs(env_number("FLEET_SCRAPE_SECONDS", 5)),
        intervals: env_number("FLEET_INTERVALS", 5),
        start_spread: env_number("FLEET_START_SPREAD", 1) == 1,
    };
    let scenarios = std::env::var("FLEET_SCENARIOS").unwrap_or_else(|_| "restart,random".into());
    let log = env("PLACEMENT_LOG");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        seed(settings.fleet).await;
        let vars: BTreeMap<&str, String> = [
            ("OS_AUTH_URL", env("OS_AUTH_URL")),
            ("OS_AUTH_TYPE", "v3applicationcredential".to_string()),
            ("OS_APPLICATION_CREDENTIAL_ID", env("APP_CRED_ID")),
            ("OS_APPLICATION_CREDENTIAL_SECRET", env("APP_CRED_SECRET")),
            ("OS_REGION_NAME", "RegionOne".to_string()),
            ("OS_INTERFACE", "internal".to_string()),
        ]
        .into();
        let lookup = |key: &str| vars.get(key).cloned();
        let cloud = config::load(None, &lookup, std::path::Path::new("/nonexistent"))
            .expect("credentials");
        let session = Arc::new(Session::new(cloud, Duration::from_secs(30)).expect("session"));
        session.token().await.expect("a token");
        // One authenticated read first, so that Placement has validated the shared token (its
        // token cache) before 1,000 requests carrying it arrive at once; this test Placement
        // has no memcached and one process, and would otherwise ask Keystone 1,000 times.
        PlacementSource::new(
            Arc::clone(&session),
            ProviderName {
                name: provider_name(0),
                origin: "the fleet bench's warm-up".to_string(),
                uuid: None,
                in_nova_order: false,
            },
        )
        .collect()
        .await
        .expect("a first read of placement");

        let mut rows = Vec::new();
        let mut latency = Vec::new();
        for scenario in scenarios.split(',').filter(|s| !s.is_empty()) {
            eprintln!(
                "fleet bench: scenario {scenario}: {} exporters, refresh {} s, scrapes every {} s, {} intervals",
                settings.fleet,
                settings.refresh.as_secs(),
                settings.scrape.as_secs(),
                settings.intervals
            );
            let outcome = run(scenario, &settings, &session).await;
            // Let the access log catch up with the last responses.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let accesses: Vec<Access> = read_log(&log)
                .into_iter()
                .filter(|a| (outcome.started_unix..outcome.ended_unix).contains(&a.unix))
                .filter(|a| a.path == "/" || a.path.starts_with("/resource_providers"))
                .collect();
            let times: Vec<f64> = accesses.iter().map(|a| a.unix).collect();
            let from = outcome.started_unix;
            let to = from + (settings.refresh * settings.intervals as u32).as_secs_f64();
            rows.push(row(
                &format!("{scenario}: this branch (measured)"),
                &times,
                from,
                to,
                &settings,
            ));
            rows.push(row(
                &format!("{scenario}: before (4 GETs per refresh, jitter only; computed)"),
                &old_schedule(scenario, &settings, from),
                from,
                to,
                &settings,
            ));
            let mut server: Vec<f64> = accesses.iter().map(|a| a.seconds).collect();
            server.sort_by(f64::total_cmp);
            let mut client = outcome.refresh_seconds.clone();
            client.sort_by(f64::total_cmp);
            latency.push((
                scenario.to_string(),
                percentile(&server, 50.0),
                percentile(&server, 99.0),
                percentile(&client, 50.0),
                percentile(&client, 99.0),
                client.len(),
                outcome.failures,
                outcome.scrape_failures,
            ));
        }
        println!(
            "Fleet of {} exporters against the real Placement 16.0.0 (sqlite, one threaded wsgiref process); refresh interval {} s (compressed from 60 s), scrapes every {} s (from 15 s), {} intervals per scenario; one shared Keystone token; start spread {}.\n",
            settings.fleet,
            settings.refresh.as_secs(),
            settings.scrape.as_secs(),
            settings.intervals,
            if settings.start_spread { "on (the first refresh held back by a random delay within the interval)" } else { "off" }
        );
        print_table(&rows);
        println!();
        println!("| scenario | Placement's time per GET p50 / p99 (ms) | refresh as the exporter sees it p50 / p99 (ms) | refreshes | failed refreshes | failed scrapes |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (scenario, s50, s99, c50, c99, refreshes, failures, scrape_failures) in latency {
            println!(
                "| {scenario} | {:.1} / {:.1} | {:.1} / {:.1} | {refreshes} | {failures} | {scrape_failures} |",
                s50 * 1000.0,
                s99 * 1000.0,
                c50 * 1000.0,
                c99 * 1000.0
            );
        }
    });
}
