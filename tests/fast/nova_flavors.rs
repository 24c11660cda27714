//! The compute API's flavor list in the flavor fit, against an in-test compute API whose answers
//! have the shape of nova's `flavors-detail-resp.json` API sample (a real nova-api does not run
//! here: see tests/openstack/nova.rs). The host is the seed incident (examples/seed-incident, replayed, the
//! file source primary), so every fit is known by hand: corrected free 71.0 GiB, the scheduler's
//! 270 GiB of 499.
//!
//! Checked: the list is read as admin with `is_public=None` (private flavors too), page by page
//! along nova's `flavors_links`; disabled flavors are left out; a configured flavor wins over an
//! API flavor of the same name; the list is read once per refresh interval however often the
//! exporter is scraped; a failing list is reported as `collector="flavors"` and never fails the
//! scrape, and the configured flavors keep their fit.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Exporter, Exposition};
use serde_json::{json, Value};

/// A fake Keystone token endpoint and compute API on one loopback port.
struct FakeCompute {
    port: u16,
    /// The path of every compute request.
    requests: Arc<Mutex<Vec<String>>>,
}

fn flavor(id: &str, name: &str, disk: u64, eph: u64, swap: Value, disabled: bool) -> Value {
    json!({
        "OS-FLV-DISABLED:disabled": disabled,
        "disk": disk,
        "OS-FLV-EXT-DATA:ephemeral": eph,
        "os-flavor-access:is_public": !name.starts_with("private"),
        "id": id,
        "links": [{"href": format!("http://compute.example.org/v2.1/flavors/{id}"), "rel": "self"}],
        "name": name,
        "ram": 2048,
        "swap": swap,
        "vcpus": 2,
        "rxtx_factor": 1.0
    })
}

fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn serve(mut stream: TcpStream, port: u16, fail: bool, log: &Mutex<Vec<String>>) {
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
    let _ = std::io::Read::read_exact(&mut reader, &mut body);
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    if path == "/v3/auth/tokens" {
        let token = json!({"token": {
            "issued_at": "2020-01-01T00:00:00.000000Z", "expires_at": "2999-01-01T00:00:00.000000Z",
            "roles": [{"name": "admin"}],
            "catalog": [{"type": "compute", "endpoints": [
                {"interface": "internal", "region_id": "RegionOne",
                 "url": format!("http://127.0.0.1:{port}/compute/v2.1")}]}]}});
        return respond(
            &mut stream,
            "201 Created",
            "X-Subject-Token: fake-token\r\n",
            &token.to_string(),
        );
    }
    let Some(rest) = path.strip_prefix("/compute/v2.1") else {
        return respond(&mut stream, "404 Not Found", "", "{}");
    };
    log.lock().unwrap().push(rest.to_string());
    let not_found =
        || json!({"itemNotFound": {"code": 404, "message": "not in this test"}}).to_string();
    match rest {
        "" | "/" => respond(
            &mut stream,
            "200 OK",
            "",
            &json!({"version": {"id": "v2.1", "status": "CURRENT", "version": "2.96", "min_version": "2.1", "links": []}}).to_string(),
        ),
        _ if rest.starts_with("/flavors/detail") && fail => respond(
            &mut stream,
            "500 Internal Server Error",
            "",
            &json!({"computeFault": {"code": 500, "message": "the flavor database is down"}})
                .to_string(),
        ),
        "/flavors/detail?is_public=None" => {
            let page = json!({
                "flavors": [
                    flavor("1", "m1.small", 20, 0, json!(0), false),
                    flavor("2", "mine", 160, 0, json!(0), false),
                    flavor("3", "m1.retired", 40, 0, json!(0), true),
                ],
                "flavors_links": [{"rel": "next", "href": format!(
                    "http://127.0.0.1:{port}/compute/v2.1/flavors/detail?is_public=None&limit=3&marker=3"
                )}]
            });
            respond(&mut stream, "200 OK", "", &page.to_string())
        }
        "/flavors/detail?is_public=None&limit=3&marker=3" => {
            let page = json!({"flavors": [
                flavor("4", "private.db", 40, 8, json!(1024), false),
                flavor("5", "m1.large", 80, 0, json!(""), false),
            ]});
            respond(&mut stream, "200 OK", "", &page.to_string())
        }
        _ => respond(&mut stream, "404 Not Found", "", &not_found()),
    }
}

impl FakeCompute {
    fn start(fail: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve(stream, port, fail, &log));
            }
        });
        FakeCompute { port, requests }
    }

    fn flavor_requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.starts_with("/flavors"))
            .cloned()
            .collect()
    }

    /// The seed host with the nova source on (its hypervisor is not in this API, so the nova
    /// collector fails alone) and the file source primary.
    fn exporter(&self) -> Exporter {
        let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed-incident");
        let auth_url = format!("http://127.0.0.1:{}/v3", self.port);
        Exporter::start_with_env(
            &[
                format!("--nova.config-file={seed}/nova.conf"),
                format!("--collector.lvm.replay-file={seed}/lvm-report.json"),
                format!("--collector.file.path={seed}/instances.json"),
                "--no-collector.libvirt".to_string(),
                "--collector.nova".to_string(),
                "--tracked.primary=file".to_string(),
                "--collector.nova.refresh-interval=1h".to_string(),
                "--collector.timeout=3s".to_string(),
                "--flavor=mine=80".to_string(),
            ],
            &[
                ("OS_AUTH_URL", &auth_url),
                ("OS_APPLICATION_CREDENTIAL_ID", "fake-id"),
                ("OS_APPLICATION_CREDENTIAL_SECRET", "fake-secret-4711"),
            ],
        )
    }
}

fn fit(m: &Exposition, flavor: &str, view: &str) -> Option<f64> {
    m.get(&format!(
        "nova_lvm_flavor_fit_instances{{flavor=\"{flavor}\",vg=\"vms-group\",view=\"{view}\"}}"
    ))
}

fn scrape_until(exporter: &Exporter, ready: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = exporter.scrape();
        if ready(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "not ready in time:\n{}\n{}",
            m.text,
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_enabled_flavor_public_and_private_is_read_page_by_page_once_per_refresh() {
    let compute = FakeCompute::start(false);
    let exporter = compute.exporter();
    let m = scrape_until(&exporter, |m| {
        m.get("nova_lvm_collector_success{collector=\"flavors\"}") == Some(1.0)
    });
    // (corrected, scheduler), by hand from the seed's 71.0 GiB and 270 GiB.
    assert_eq!(fit(&m, "m1.small", "corrected"), Some(3.0));
    assert_eq!(fit(&m, "m1.small", "scheduler"), Some(13.0));
    assert_eq!(fit(&m, "m1.large", "corrected"), Some(0.0));
    assert_eq!(fit(&m, "m1.large", "scheduler"), Some(3.0));
    // The private flavor of the second page: LVs 40 + 8 GiB + 1024 MiB, DISK_GB 49.
    assert_eq!(fit(&m, "private.db", "corrected"), Some(1.0));
    assert_eq!(fit(&m, "private.db", "scheduler"), Some(5.0));
    // The configured "mine" (80 GiB) wins over the API's (160 GiB).
    assert_eq!(fit(&m, "mine", "scheduler"), Some(3.0));
    // Disabled flavors are left out.
    assert_eq!(fit(&m, "m1.retired", "corrected"), None);
    assert_eq!(
        m.text.matches("nova_lvm_flavor_fit_instances{").count(),
        8,
        "{}",
        m.text
    );
    assert_eq!(
        m.get("nova_lvm_flavor_fit_omitted_flavors{vg=\"vms-group\"}"),
        Some(0.0)
    );
    // The scrape itself is whole: LVM and the primary source succeeded; nova fails alone.
    assert_eq!(
        m.get("nova_lvm_collector_success{collector=\"lvm\"}"),
        Some(1.0)
    );
    assert_eq!(
        m.get("nova_lvm_collector_success{collector=\"file\"}"),
        Some(1.0)
    );
    for _ in 0..5 {
        let again = exporter.scrape();
        assert_eq!(fit(&again, "private.db", "scheduler"), Some(5.0));
    }
    assert_eq!(
        compute.flavor_requests(),
        vec![
            "/flavors/detail?is_public=None".to_string(),
            "/flavors/detail?is_public=None&limit=3&marker=3".to_string(),
        ],
        "the list is read once, both pages, within a refresh interval"
    );
}

#[test]
fn a_failing_flavor_list_is_reported_and_the_configured_flavors_keep_their_fit() {
    let compute = FakeCompute::start(true);
    let exporter = compute.exporter();
    let m = scrape_until(&exporter, |m| {
        m.get("nova_lvm_collector_success{collector=\"flavors\"}") == Some(0.0)
    });
    assert_eq!(fit(&m, "mine", "corrected"), Some(0.0));
    assert_eq!(fit(&m, "mine", "scheduler"), Some(3.0));
    assert_eq!(fit(&m, "m1.small", "corrected"), None);
    assert_eq!(
        m.get("nova_lvm_collector_success{collector=\"lvm\"}"),
        Some(1.0)
    );
    assert_eq!(
        m.get("nova_lvm_collector_success{collector=\"file\"}"),
        Some(1.0)
    );
    let (status, page) = common::get(exporter.port, "/").unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("the flavor database is down"), "{page}");
    assert!(page.contains("flavor-fit-table"), "{page}");
}
