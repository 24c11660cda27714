//! Faults of the real servers: Placement stopped mid-run, Keystone stopped (the cached token is
//! used until it expires, then a clear error), a revoked token (401 -> exactly one re-auth).
//!
//! The environment has 40 s tokens (so expiry is testable) and a second Placement in RegionTwo
//! whose token cache is off (so a revocation is seen at once). The tests stop and start servers,
//! so they run one at a time.

use crate::common;
use crate::openstack;

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use common::{write_nova_conf, Exporter, Exposition, MIB};
use nova_lvm_exporter::lvm::build::linear_lv;
use openstack::*;

const VG: &str = "vms-group";
const VG_BYTES: u64 = 25_599 * 4 * MIB;
const TOKEN_SECONDS: u64 = 40;

fn environment() -> Option<(&'static OpenStack, MutexGuard<'static, ()>)> {
    static ENV: OnceLock<Option<OpenStack>> = OnceLock::new();
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let os = ENV
        .get_or_init(|| {
            openstack_available("placement fault tests").then(|| {
                OpenStack::start(Options {
                    placement2: true,
                    token_expiration: Some(TOKEN_SECONDS),
                })
            })
        })
        .as_ref()?;
    Some((os, guard))
}

/// A server stopped for a test and started again when the test ends, even when it fails, so
/// that a failing test does not take the servers away from the next one.
struct Stopped<'a>(&'a OpenStack);

impl<'a> Stopped<'a> {
    fn server(os: &'a OpenStack, name: &str) -> Self {
        os.stop_server(name);
        Stopped(os)
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.restart_stopped();
    }
}

struct Host {
    name: String,
    dir: tempfile::TempDir,
}

fn seed(os: &OpenStack, name: &str, tag: u32) -> Host {
    let provider = format!("c0de{tag:04x}-0000-4000-8000-000000000000");
    let consumer = format!("a0de{tag:04x}-0000-4000-8000-000000000001");
    let placement = os.placement();
    placement.register_compute_node(&ComputeNode {
        name: name.to_string(),
        uuid: provider.clone(),
        vg_bytes: VG_BYTES,
        reserved_host_disk_mb: 0,
        disk_allocation_ratio: 1.0,
    });
    placement.allocate(
        &provider,
        &Consumer {
            uuid: consumer.clone(),
            disk_gb: 20,
            vcpus: 1,
            memory_mb: 1024,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    write_lvm_report(
        &dir.path().join("lvm-report.json"),
        VG,
        VG_BYTES,
        &[linear_lv(VG, &format!("{consumer}_disk"), 20 * GIB)],
    );
    write_nova_conf(&dir.path().join("nova.conf"), VG, 0);
    Host {
        name: name.to_string(),
        dir,
    }
}

fn start(os: &OpenStack, host: &Host, cloud: &str, region: &str, extra: &[&str]) -> Exporter {
    let clouds = os.write_clouds_yaml(host.dir.path(), region);
    let d = host.dir.path().display();
    let mut args = vec![
        format!("--nova.config-file={d}/nova.conf"),
        format!("--collector.lvm.replay-file={d}/lvm-report.json"),
        "--no-collector.libvirt".to_string(),
        "--collector.placement".to_string(),
        format!("--collector.placement.hostname={}", host.name),
        format!("--os-cloud={cloud}"),
        "--collector.timeout=20s".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Exporter::start_with_env(
        &args,
        &[
            ("OS_CLIENT_CONFIG_FILE", &clouds.display().to_string()),
            (
                "OS_CLIENT_SECURE_FILE",
                &host.dir.path().join("secure.yaml").display().to_string(),
            ),
        ],
    )
}

fn placement_success(m: &Exposition) -> f64 {
    m.value("nova_lvm_collector_success{collector=\"placement\"}")
}

fn data_time(m: &Exposition) -> f64 {
    m.value("nova_lvm_collector_last_success_timestamp_seconds{collector=\"placement\"}")
}

/// Scrapes every 300 ms until `done` holds or `within` passes.
fn scrape_until(
    exporter: &Exporter,
    within: Duration,
    what: &str,
    done: impl Fn(&Exposition, &str) -> bool,
) -> Exposition {
    let deadline = Instant::now() + within;
    loop {
        let m = exporter.scrape();
        if done(&m, &exporter.log()) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}:\n{}\n{}",
            m.text,
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn placement_stopped_mid_run_fails_after_max_age_and_recovers() {
    let Some((os, _one_at_a_time)) = environment() else {
        return;
    };
    let host = seed(os, "cmp-placement-stops", 1);
    let exporter = start(
        os,
        &host,
        "exporter-appcred",
        "RegionOne",
        &[
            "--collector.placement.refresh-interval=1s",
            "--collector.placement.max-age=4s",
        ],
    );
    let m = scrape_until(
        &exporter,
        Duration::from_secs(60),
        "first success",
        |m, _| placement_success(m) == 1.0,
    );
    let good_time = data_time(&m);

    let placement_down = Stopped::server(os, "placement");
    let stopped = Instant::now();
    let m = scrape_until(
        &exporter,
        Duration::from_secs(30),
        "placement failure",
        |m, _| placement_success(m) == 0.0,
    );
    // Cached data served until max age, never beyond it.
    assert!(stopped.elapsed() < Duration::from_secs(12));
    assert!(m.lacks_family("nova_lvm_drift_bytes"), "{}", m.text);
    assert!(m.lacks_family("nova_lvm_tracked_used_bytes"), "{}", m.text);
    assert!(data_time(&m) >= good_time);
    let log = exporter.log();
    assert!(log.contains("cannot reach placement"), "{log}");
    assert!(log.contains("--collector.placement.max-age=4s"), "{log}");

    drop(placement_down);
    let m = scrape_until(&exporter, Duration::from_secs(60), "recovery", |m, _| {
        placement_success(m) == 1.0
    });
    assert!(data_time(&m) > good_time);
}

#[test]
fn keystone_stopped_the_cached_token_serves_until_it_expires_then_a_clear_error() {
    let Some((os, _one_at_a_time)) = environment() else {
        return;
    };
    let host = seed(os, "cmp-keystone-stops", 2);
    let exporter = start(
        os,
        &host,
        "exporter-appcred",
        "RegionOne",
        &[
            "--collector.placement.refresh-interval=1s",
            "--collector.placement.max-age=3s",
        ],
    );
    scrape_until(
        &exporter,
        Duration::from_secs(60),
        "first success",
        |m, _| placement_success(m) == 1.0,
    );
    let obtained = Instant::now();
    let stopped = Stopped::server(os, "keystone");

    // Well inside the token's life the exporter keeps reading placement with it (placement
    // validates it from its own cache).
    while obtained.elapsed() < Duration::from_secs(TOKEN_SECONDS / 2) {
        let m = exporter.scrape();
        assert_eq!(placement_success(&m), 1.0, "{}", exporter.log());
        std::thread::sleep(Duration::from_secs(1));
    }
    // Then the token expires and no new one can be had.
    let m = scrape_until(
        &exporter,
        Duration::from_secs(TOKEN_SECONDS + 20),
        "the expiry error",
        |m, log| placement_success(m) == 0.0 && log.contains("token expired at"),
    );
    assert!(m.lacks_family("nova_lvm_drift_bytes"));
    let log = exporter.log();
    assert!(
        log.contains("no new one could be obtained: cannot reach keystone"),
        "{log}"
    );
    assert!(
        log.contains("cannot renew the Keystone token; using the current one until it expires"),
        "{log}"
    );
    drop(stopped);
}

#[test]
fn a_revoked_token_causes_exactly_one_reauthentication() {
    let Some((os, _one_at_a_time)) = environment() else {
        return;
    };
    let host = seed(os, "cmp-revoked", 3);
    // RegionTwo's placement validates every token with Keystone (no cache): it sees a
    // revocation at once.
    let exporter = start(
        os,
        &host,
        "exporter-password",
        "RegionTwo",
        &["--collector.placement.refresh-interval=1s"],
    );
    let m = scrape_until(
        &exporter,
        Duration::from_secs(60),
        "first success",
        |m, _| placement_success(m) == 1.0,
    );
    let before = data_time(&m);
    let obtained = |log: &str| log.matches("obtained a Keystone token").count();
    assert_eq!(obtained(&exporter.log()), 1);

    // Setting the password (to the same value) makes Keystone revoke the user's tokens.
    let admin = os.admin_token();
    let response = reqwest::blocking::Client::new()
        .patch(format!(
            "{}/users/{}",
            os.auth_url(),
            os.var("EXPORTER_USER_ID")
        ))
        .header("X-Auth-Token", admin)
        .json(&serde_json::json!({"user": {"password": os.var("EXPORTER_PASSWORD")}}))
        .send()
        .unwrap();
    assert!(response.status().is_success(), "{:?}", response.text());
    // Fernet timestamps have whole seconds: let the next token be issued a clear second later
    // (no scrape meanwhile, so no refresh).
    std::thread::sleep(Duration::from_secs(2));

    let m = scrape_until(
        &exporter,
        Duration::from_secs(30),
        "a refresh with a new token",
        |m, log| obtained(log) >= 2 && data_time(m) > before && placement_success(m) == 1.0,
    );
    let log = exporter.log();
    assert_eq!(obtained(&log), 2, "exactly one re-authentication:\n{log}");
    assert_eq!(log.matches("re-authenticating once").count(), 1, "{log}");
    assert!(!log.contains("even after re-authenticating"), "{log}");
    assert_eq!(placement_success(&m), 1.0);
}
