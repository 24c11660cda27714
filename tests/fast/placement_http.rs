//! What real servers will not do on demand, from a small in-test HTTP server that plays both
//! Keystone and Placement: a 10 s stall, a 500, a truncated body, a non-JSON body and a 50 MB
//! body. Each test checks that the scrape still answers within its timeout, that only the
//! placement collector fails, and that the error says what happened. No python needed.

use crate::common;
use crate::openstack;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{get, write_nova_conf, Exporter, Exposition, GIB};
use nova_lvm_exporter::lvm::build::linear_lv;
use openstack::write_lvm_report;

const PROVIDER: &str = "c0ffee00-0000-4000-8000-000000000001";
const CONSUMER: &str = "a0000000-0000-4000-8000-000000000001";

/// How the allocations endpoint misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    Stall,
    ServerError,
    Truncated,
    NotJson,
    Huge,
}

struct FakeCloud {
    port: u16,
    allocation_requests: Arc<AtomicUsize>,
}

impl FakeCloud {
    fn start(fault: Fault) -> FakeCloud {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let allocation_requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&allocation_requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || serve(stream, port, fault, &counter));
            }
        });
        FakeCloud {
            port,
            allocation_requests,
        }
    }
}

fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(body);
}

fn json(stream: &mut TcpStream, body: &str) {
    respond(
        stream,
        "200 OK",
        "Content-Type: application/json\r\n",
        body.as_bytes(),
    );
}

fn serve(mut stream: TcpStream, port: u16, fault: Fault, allocations: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; content_length];
    let _ = reader.read_exact(&mut body);
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let base = format!("http://127.0.0.1:{port}/placement");
    match path.as_str() {
        "/v3/auth/tokens" => {
            let token = format!(
                r#"{{"token": {{"issued_at": "2020-01-01T00:00:00.000000Z", "expires_at": "2999-01-01T00:00:00.000000Z",
                "roles": [{{"name": "service"}}],
                "catalog": [{{"type": "placement", "endpoints": [{{"interface": "internal", "region_id": "RegionOne", "url": "{base}"}}]}}]}}}}"#
            );
            respond(
                &mut stream,
                "201 Created",
                "Content-Type: application/json\r\nX-Subject-Token: fake-token-0123\r\n",
                token.as_bytes(),
            );
        }
        "/placement/" => json(
            &mut stream,
            r#"{"versions": [{"id": "v1.0", "min_version": "1.0", "max_version": "1.39", "status": "CURRENT"}]}"#,
        ),
        p if p.starts_with("/placement/resource_providers?name=") => json(
            &mut stream,
            &format!(
                r#"{{"resource_providers": [{{"uuid": "{PROVIDER}", "name": "fake-host", "generation": 3}}]}}"#
            ),
        ),
        p if p.ends_with("/inventories") => json(
            &mut stream,
            r#"{"inventories": {"DISK_GB": {"total": 99, "reserved": 0, "allocation_ratio": 1.0, "min_unit": 1, "max_unit": 99, "step_size": 1}}}"#,
        ),
        p if p.ends_with("/usages") => json(&mut stream, r#"{"usages": {"DISK_GB": 20}}"#),
        p if p.ends_with("/allocations") => {
            allocations.fetch_add(1, Ordering::SeqCst);
            let good = format!(
                r#"{{"allocations": {{"{CONSUMER}": {{"resources": {{"DISK_GB": 20}}}}}}}}"#
            );
            match fault {
                Fault::None => json(&mut stream, &good),
                Fault::Stall => {
                    std::thread::sleep(Duration::from_secs(10));
                    json(&mut stream, &good);
                }
                Fault::ServerError => respond(
                    &mut stream,
                    "500 Internal Server Error",
                    "Content-Type: application/json\r\n",
                    br#"{"errors": [{"status": 500, "title": "Internal Server Error", "detail": "database exploded"}]}"#,
                ),
                Fault::Truncated => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{}",
                        &good[..20]
                    );
                }
                Fault::NotJson => respond(
                    &mut stream,
                    "200 OK",
                    "Content-Type: text/html\r\n",
                    b"<html><body>Welcome to nginx!</body></html>",
                ),
                Fault::Huge => {
                    // 50 MB, no Content-Length: the client has to stop reading by itself.
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{{\"allocations\": {{\"x\": \""
                    );
                    let chunk = vec![b'a'; 1 << 20];
                    for _ in 0..50 {
                        if stream.write_all(&chunk).is_err() {
                            return;
                        }
                    }
                    let _ = stream.write_all(b"\"}}");
                }
            }
        }
        _ => respond(&mut stream, "404 Not Found", "", b"not found"),
    }
}

fn start_exporter(cloud: &FakeCloud, dir: &std::path::Path) -> Exporter {
    write_nova_conf(&dir.join("nova.conf"), "vms-group", 0);
    write_lvm_report(
        &dir.join("lvm-report.json"),
        "vms-group",
        100 * GIB,
        &[linear_lv(
            "vms-group",
            &format!("{CONSUMER}_disk"),
            20 * GIB,
        )],
    );
    let auth_url = format!("http://127.0.0.1:{}/v3", cloud.port);
    Exporter::start_with_env(
        &[
            format!("--nova.config-file={}/nova.conf", dir.display()),
            format!(
                "--collector.lvm.replay-file={}/lvm-report.json",
                dir.display()
            ),
            "--no-collector.libvirt".to_string(),
            "--collector.placement".to_string(),
            "--collector.placement.hostname=fake-host".to_string(),
            "--collector.timeout=2s".to_string(),
        ],
        &[
            ("OS_AUTH_URL", &auth_url),
            ("OS_APPLICATION_CREDENTIAL_ID", "fake-id"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "fake-secret-4711"),
        ],
    )
}

/// Scrapes once, asserting the scrape answers within `limit`.
fn timed_scrape(exporter: &Exporter, limit: Duration) -> Exposition {
    let started = Instant::now();
    let (status, body) = get(exporter.port, "/metrics").unwrap();
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(took < limit, "the scrape took {took:?}");
    Exposition::parse(&body)
}

fn assert_placement_failed_alone(m: &Exposition) {
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"placement\"}"),
        0.0
    );
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
        1.0
    );
    assert!(m.lacks_family("nova_lvm_drift_bytes"), "{}", m.text);
    assert!(m.lacks_family("nova_lvm_tracked_used_bytes"), "{}", m.text);
    assert_eq!(
        m.value("nova_lvm_vg_size_bytes{vg=\"vms-group\"}"),
        (100 * GIB) as f64
    );
}

fn fault_test(fault: Fault, expected: &str) -> String {
    let cloud = FakeCloud::start(fault);
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_exporter(&cloud, dir.path());
    let m = timed_scrape(&exporter, Duration::from_secs(5));
    assert_placement_failed_alone(&m);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !exporter.log().contains(expected) {
        assert!(
            Instant::now() < deadline,
            "{expected:?} not in:\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = exporter.log();
    assert!(!log.contains("fake-secret-4711"), "{log}");
    assert!(!log.contains("fake-token-0123"), "{log}");
    log
}

#[test]
fn the_fake_cloud_works_when_nothing_is_wrong() {
    let cloud = FakeCloud::start(Fault::None);
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_exporter(&cloud, dir.path());
    let m = timed_scrape(&exporter, Duration::from_secs(5));
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"placement\"}"),
        1.0,
        "{}",
        exporter.log()
    );
    assert_eq!(
        m.value("nova_lvm_tracked_used_bytes{source=\"placement\",vg=\"vms-group\"}"),
        (20 * GIB) as f64
    );
    assert_eq!(
        m.value("nova_lvm_scheduler_free_bytes{source=\"placement\",vg=\"vms-group\"}"),
        (79 * GIB) as f64
    );
}

#[test]
fn a_ten_second_stall_does_not_hold_the_scrape() {
    let cloud = FakeCloud::start(Fault::Stall);
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_exporter(&cloud, dir.path());
    let m = timed_scrape(&exporter, Duration::from_secs(4));
    assert_placement_failed_alone(&m);
    assert!(
        exporter.log().contains("timed out after 2000 ms"),
        "{}",
        exporter.log()
    );
    // The stalled refresh is still in flight: more scrapes do not start another request.
    for _ in 0..3 {
        timed_scrape(&exporter, Duration::from_secs(4));
    }
    assert_eq!(cloud.allocation_requests.load(Ordering::SeqCst), 1);
}

#[test]
fn a_500_is_reported_with_the_servers_message() {
    let log = fault_test(Fault::ServerError, "answered HTTP 500");
    assert!(log.contains("database exploded"), "{log}");
}

#[test]
fn a_truncated_body_is_reported() {
    fault_test(Fault::Truncated, "the body ended early");
}

#[test]
fn a_non_json_body_is_reported() {
    let log = fault_test(Fault::NotJson, "not JSON");
    assert!(log.contains("Welcome to nginx"), "{log}");
}

#[test]
fn a_fifty_megabyte_body_is_cut_off_at_the_limit() {
    fault_test(Fault::Huge, "response body larger than 16777216 bytes");
}
