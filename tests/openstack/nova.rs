//! The nova source against an in-test compute API built from nova's published API samples
//! (`tests/fixtures/nova/`, verbatim; only hostnames, ids and numbers are changed, in
//! [`FakeNova`]). A real nova-api does not run here (it needs a message queue, a cell database
//! and conductor services; on sqlite it does not come up in reasonable time), so the answers are
//! nova's own samples, served at the microversion the exporter asks for, the way nova-api
//! versions them (2.1 search/show, 2.53 UUID ids and the hostname pattern, 2.47 embedded
//! flavors, 2.88 without the disk fields).
//!
//! Most tests put a fake token endpoint in front of it (the real-Keystone auth is covered by the
//! placement tests); `through_the_real_keystone_*` register the fake compute API in a real
//! Keystone's catalog and validate every token with that Keystone, as nova's keystonemiddleware
//! does.

use crate::common;
use crate::openstack;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{get, Exporter, Exposition, GIB, MIB};
use nova_lvm_exporter::lvm::build::linear_lv;
use nova_lvm_exporter::lvm::Lv;
use openstack::{openstack_available, write_lvm_report, OpenStack, Options};
use serde_json::{json, Value};

const VG: &str = "vms-group";
/// `vgcreate` on a 100 GiB device: 25599 extents of 4 MiB.
const VG_BYTES: u64 = 25_599 * 4 * MIB;
const RESERVED_HOST_DISK_MB: u64 = 1500;
const A: &str = "a0000000-0000-4000-8000-000000000001";
const B: &str = "b0000000-0000-4000-8000-000000000002";
/// Booted from volume: no LV, root not counted.
const C: &str = "c0000000-0000-4000-8000-000000000003";
/// An LV with nova's naming whose instance is not on this host.
const ORPHAN: &str = "d0000000-0000-4000-8000-000000000004";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/nova/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn mv(text: &str) -> (u32, u32) {
    let (major, minor) = text.split_once('.').unwrap();
    (major.parse().unwrap(), minor.parse().unwrap())
}

/// One compute node as nova's database holds it.
#[derive(Debug, Clone)]
struct Hyp {
    id: u64,
    uuid: String,
    name: String,
    service_host: String,
    local_gb: i64,
    local_gb_used: i64,
    free_disk_gb: i64,
    disk_available_least: i64,
}

/// One server.
#[derive(Debug, Clone)]
struct Srv {
    uuid: &'static str,
    host: String,
    node: String,
    flavor_id: &'static str,
    root_gb: u64,
    ephemeral_gb: u64,
    swap_mb: u64,
    bfv: bool,
    /// nova's status: ACTIVE, DELETED, SOFT_DELETED (hidden from lists without
    /// `changes-since` or `deleted`, as nova hides them).
    status: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// /servers/detail answers after 10 s.
    Stall,
    /// /servers/detail answers 500.
    ServerError,
    /// /servers/detail answers 200 with a body that is not JSON.
    Garbage,
    /// Every hypervisor answer is the 2.88 shape, whatever was asked (a broken proxy).
    IgnoreMicroversion,
    /// Lookups of one server (`changes-since` and `uuid`) answer 500.
    LookupError,
    /// Lookups of one server answer after 10 s.
    LookupStall,
}

type Roles = Arc<dyn Fn(&str) -> Option<Vec<String>> + Send + Sync>;

struct Config {
    min: &'static str,
    max: &'static str,
    hypervisors: Vec<Hyp>,
    servers: Vec<Srv>,
    fault: Fault,
    /// Roles of a token (`None`: invalid token).
    roles: Roles,
    /// Roles the fake token endpoint puts into its tokens.
    token_roles: Vec<&'static str>,
}

/// The fake compute API (and token endpoint) on a loopback port.
struct FakeNova {
    port: u16,
    /// `<microversion> <path>` of every compute request.
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeNova {
    fn start(config: Config) -> FakeNova {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let config = Arc::new(config);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, log) = (Arc::clone(&config), Arc::clone(&log));
                std::thread::spawn(move || serve(stream, port, &config, &log));
            }
        });
        FakeNova { port, requests }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/compute/v2.1", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Flavor lookups (`/flavors/<id>`), not the flavor fit's list (`/flavors/detail`).
    fn flavor_lookups(&self) -> usize {
        self.count("/flavors/") - self.count("/flavors/detail")
    }

    fn count(&self, needle: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.contains(needle))
            .count()
    }
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn nova_error(stream: &mut TcpStream, status: &str, kind: &str, code: u16, message: &str) {
    respond(
        stream,
        status,
        &json!({kind: {"code": code, "message": message}}).to_string(),
    );
}

fn query(path: &str, key: &str) -> Option<String> {
    path.split_once('?')?
        .1
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{key}=")).map(str::to_string))
}

fn serve(mut stream: TcpStream, port: u16, config: &Config, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut headers = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            content_length = value.trim().parse().unwrap_or(0);
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let mut body = vec![0; content_length];
    let _ = reader.read_exact(&mut body);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();

    if path == "/v3/auth/tokens" {
        let roles: Vec<Value> = config
            .token_roles
            .iter()
            .map(|r| json!({"name": r}))
            .collect();
        let token = json!({"token": {
            "issued_at": "2020-01-01T00:00:00.000000Z", "expires_at": "2999-01-01T00:00:00.000000Z",
            "roles": roles,
            "catalog": [{"type": "compute", "endpoints": [
                {"interface": "internal", "region_id": "RegionOne",
                 "url": format!("http://127.0.0.1:{port}/compute/v2.1")}]}]}});
        let text = token.to_string();
        let _ = write!(
            stream,
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Subject-Token: fake-token-{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            config.token_roles.join("-"),
            text.len()
        );
        return;
    }
    let Some(rest) = path.strip_prefix("/compute/v2.1") else {
        return respond(&mut stream, "404 Not Found", "{}");
    };
    let token = header("x-auth-token").unwrap_or_default();
    let Some(roles) = (config.roles)(&token) else {
        return nova_error(
            &mut stream,
            "401 Unauthorized",
            "unauthorized",
            401,
            "The request you have made requires authentication.",
        );
    };
    let asked = header("openstack-api-version")
        .and_then(|v| v.strip_prefix("compute ").map(str::to_string))
        .unwrap_or_else(|| "2.1".to_string());
    log.lock().unwrap().push(format!("{asked} {rest}"));
    let version = mv(&asked);
    if rest.is_empty() || rest == "/" {
        let mut doc = fixture("versions-v21-get.json");
        doc["version"]["version"] = json!(config.max);
        doc["version"]["min_version"] = json!(config.min);
        return respond(&mut stream, "200 OK", &doc.to_string());
    }
    if version < mv(config.min) || version > mv(config.max) {
        return nova_error(
            &mut stream,
            "406 Not Acceptable",
            "notAcceptable",
            406,
            &format!("Version {asked} is not supported by the API."),
        );
    }
    let admin = roles.iter().any(|r| r == "admin");
    if !admin && (rest.starts_with("/os-hypervisors") || rest.starts_with("/servers")) {
        return nova_error(
            &mut stream,
            "403 Forbidden",
            "forbidden",
            403,
            "Policy doesn't allow os_compute_api:os-hypervisors:list-detail to be performed.",
        );
    }
    let removed = version >= (2, 88) || config.fault == Fault::IgnoreMicroversion;
    let detail = |h: &Hyp| -> Value {
        if removed {
            let mut entry = fixture("v2.88-hypervisors-detail-resp.json")["hypervisors"][0].clone();
            entry["id"] = json!(h.uuid);
            entry["hypervisor_hostname"] = json!(h.name);
            entry["service"]["host"] = json!(h.service_host);
            return entry;
        }
        let mut entry = if version >= (2, 53) {
            let mut e = fixture("v2.53-hypervisors-detail-resp.json")["hypervisors"][0].clone();
            e["id"] = json!(h.uuid);
            e
        } else {
            let mut e = fixture("v2.1-hypervisors-show-resp.json")["hypervisor"].clone();
            e["id"] = json!(h.id);
            e
        };
        entry["hypervisor_hostname"] = json!(h.name);
        entry["service"]["host"] = json!(h.service_host);
        entry["local_gb"] = json!(h.local_gb);
        entry["local_gb_used"] = json!(h.local_gb_used);
        entry["free_disk_gb"] = json!(h.free_disk_gb);
        entry["disk_available_least"] = json!(h.disk_available_least);
        entry
    };
    let no_match = |stream: &mut TcpStream, pattern: &str| {
        nova_error(
            stream,
            "404 Not Found",
            "itemNotFound",
            404,
            &format!("No hypervisor matching '{pattern}' could be found."),
        )
    };

    if let Some(pattern) = rest
        .strip_prefix("/os-hypervisors/detail?")
        .and_then(|_| query(rest, "hypervisor_hostname_pattern"))
    {
        assert!(version >= (2, 53), "pattern query at {asked}");
        let matching: Vec<Value> = config
            .hypervisors
            .iter()
            .filter(|h| h.name.contains(&pattern))
            .map(detail)
            .collect();
        if matching.is_empty() {
            return no_match(&mut stream, &pattern);
        }
        return respond(
            &mut stream,
            "200 OK",
            &json!({ "hypervisors": matching }).to_string(),
        );
    }
    if let Some(pattern) = rest
        .strip_prefix("/os-hypervisors/")
        .and_then(|p| p.strip_suffix("/search"))
    {
        let template = fixture("v2.1-hypervisors-search-resp.json")["hypervisors"][0].clone();
        let matching: Vec<Value> = config
            .hypervisors
            .iter()
            .filter(|h| h.name.contains(pattern))
            .map(|h| {
                let mut e = template.clone();
                e["id"] = json!(h.id);
                e["hypervisor_hostname"] = json!(h.name);
                e
            })
            .collect();
        if matching.is_empty() || version >= (2, 53) {
            return no_match(&mut stream, pattern);
        }
        return respond(
            &mut stream,
            "200 OK",
            &json!({ "hypervisors": matching }).to_string(),
        );
    }
    if let Some(id) = rest.strip_prefix("/os-hypervisors/") {
        return match config.hypervisors.iter().find(|h| h.id.to_string() == id) {
            Some(h) => respond(
                &mut stream,
                "200 OK",
                &json!({ "hypervisor": detail(h) }).to_string(),
            ),
            None => no_match(&mut stream, id),
        };
    }
    if rest.starts_with("/servers/detail?") && query(rest, "changes-since").is_some() {
        return lookup(&mut stream, config, rest, version);
    }
    if rest.starts_with("/servers/detail?") {
        match config.fault {
            Fault::Stall => std::thread::sleep(Duration::from_secs(10)),
            Fault::ServerError => {
                return nova_error(
                    &mut stream,
                    "500 Internal Server Error",
                    "computeFault",
                    500,
                    "Unexpected API Error. The cell database exploded.",
                )
            }
            Fault::Garbage => {
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 27\r\nConnection: close\r\n\r\n<html>502 Bad Gateway</html"
                );
                return;
            }
            Fault::None | Fault::IgnoreMicroversion | Fault::LookupError | Fault::LookupStall => {}
        }
        assert_eq!(query(rest, "all_tenants").as_deref(), Some("1"), "{rest}");
        let host = query(rest, "host").expect("host filter");
        let on_host: Vec<&Srv> = config
            .servers
            .iter()
            .filter(|s| s.host == host && s.status != "DELETED" && s.status != "SOFT_DELETED")
            .collect();
        // nova pages by [api] max_limit; 2 here, so that paging is exercised.
        let start = query(rest, "marker")
            .and_then(|m| on_host.iter().position(|s| s.uuid == m).map(|i| i + 1))
            .unwrap_or(0);
        let page: Vec<Value> = on_host
            .iter()
            .skip(start)
            .take(2)
            .map(|s| server_json(s, version))
            .collect();
        let mut body = json!({ "servers": page });
        if start + 2 < on_host.len() {
            body["servers_links"] = json!([{"rel": "next", "href": format!(
                "http://openstack.example.com/v2.1/servers/detail?all_tenants=1&host={host}&limit=2&marker={}",
                on_host[start + 1].uuid)}]);
        }
        return respond(&mut stream, "200 OK", &body.to_string());
    }
    if let Some(id) = rest.strip_prefix("/flavors/") {
        let Some(s) = config.servers.iter().find(|s| s.flavor_id == id) else {
            return nova_error(
                &mut stream,
                "404 Not Found",
                "itemNotFound",
                404,
                &format!("Flavor {id} could not be found."),
            );
        };
        let mut flavor = fixture("v2.1-flavor-get-resp.json");
        flavor["flavor"]["id"] = json!(id);
        flavor["flavor"]["disk"] = json!(s.root_gb);
        flavor["flavor"]["OS-FLV-EXT-DATA:ephemeral"] = json!(s.ephemeral_gb);
        flavor["flavor"]["swap"] = if s.swap_mb == 0 {
            json!("")
        } else {
            json!(s.swap_mb)
        };
        return respond(&mut stream, "200 OK", &flavor.to_string());
    }
    respond(&mut stream, "404 Not Found", "{}")
}

/// One server looked up by UUID the way the exporter asks: nova's servers list with
/// `changes-since` (no `deleted` filter: deleted and soft-deleted servers too) and `uuid` (an
/// exact filter), all tenants.
fn lookup(stream: &mut TcpStream, config: &Config, rest: &str, version: (u32, u32)) {
    match config.fault {
        Fault::LookupError => {
            return nova_error(
                stream,
                "500 Internal Server Error",
                "computeFault",
                500,
                "Unexpected API Error. The cell database exploded.",
            )
        }
        Fault::LookupStall => std::thread::sleep(Duration::from_secs(10)),
        _ => {}
    }
    assert_eq!(query(rest, "all_tenants").as_deref(), Some("1"), "{rest}");
    assert_eq!(
        query(rest, "changes-since").as_deref(),
        Some("1970-01-01T00%3A00%3A00Z"),
        "{rest}"
    );
    let uuid = query(rest, "uuid").expect("uuid filter");
    let found: Vec<Value> = config
        .servers
        .iter()
        .filter(|s| s.uuid == uuid)
        .map(|s| server_json(s, version))
        .collect();
    respond(stream, "200 OK", &json!({ "servers": found }).to_string());
}

fn server_json(s: &Srv, version: (u32, u32)) -> Value {
    let mut server = if version >= (2, 47) {
        let mut v = fixture("v2.47-servers-details-resp.json")["servers"][0].clone();
        v["flavor"]["disk"] = json!(s.root_gb);
        v["flavor"]["ephemeral"] = json!(s.ephemeral_gb);
        v["flavor"]["swap"] = json!(s.swap_mb);
        v
    } else {
        let mut v = fixture("v2.1-servers-details-resp.json")["servers"][0].clone();
        v["flavor"]["id"] = json!(s.flavor_id);
        v
    };
    server["id"] = json!(s.uuid);
    server["OS-EXT-SRV-ATTR:host"] = json!(s.host);
    server["OS-EXT-SRV-ATTR:hypervisor_hostname"] = json!(s.node);
    server["status"] = json!(s.status);
    server["OS-EXT-STS:vm_state"] = json!(match s.status {
        "DELETED" => "deleted",
        "SOFT_DELETED" => "soft-delete",
        _ => "active",
    });
    if s.bfv {
        server["image"] = json!("");
    }
    server
}

/// The host of most tests: nova.conf says `cmp-7`, libvirt (and so nova) says
/// `cmp-7.example.org`; a decoy `cmp-70` shares the prefix.
fn hypervisors() -> Vec<Hyp> {
    // local_gb = floor(VG / GiB) = 99; local_gb_used = int(1500 / 1024) = 1 + A 20 + B (40 + 5 +
    // int(1536 / 1024) = 1) + C (boot from volume: 0 + int(512 / 1024) = 0) = 67.
    vec![
        Hyp {
            id: 7,
            uuid: "e1a7e1a7-0000-4000-8000-000000000007".into(),
            name: "cmp-7.example.org".into(),
            service_host: "cmp-7".into(),
            local_gb: 99,
            local_gb_used: 67,
            free_disk_gb: 32,
            disk_available_least: (VG_BYTES - used_bytes()) as i64 / GIB as i64,
        },
        Hyp {
            id: 70,
            uuid: "e1a7e1a7-0000-4000-8000-000000000070".into(),
            name: "cmp-70.example.org".into(),
            service_host: "cmp-70".into(),
            local_gb: 500,
            local_gb_used: 1,
            free_disk_gb: 499,
            disk_available_least: 499,
        },
    ]
}

fn servers() -> Vec<Srv> {
    let srv = |uuid, flavor_id, root_gb, ephemeral_gb, swap_mb, bfv| Srv {
        uuid,
        host: "cmp-7".into(),
        node: "cmp-7.example.org".into(),
        flavor_id,
        root_gb,
        ephemeral_gb,
        swap_mb,
        bfv,
        status: "ACTIVE",
    };
    vec![
        srv(A, "1", 20, 0, 0, false),
        srv(B, "2", 40, 5, 1536, false),
        srv(C, "3", 10, 0, 512, true),
        Srv {
            host: "cmp-70".into(),
            node: "cmp-70.example.org".into(),
            ..srv("e0000000-0000-4000-8000-000000000005", "1", 20, 0, 0, false)
        },
    ]
}

fn lvs() -> Vec<(String, u64)> {
    vec![
        (format!("{A}_disk"), 20 * GIB),
        (format!("{B}_disk"), 40 * GIB),
        (format!("{B}_disk.local"), 5 * GIB),
        (format!("{B}_disk.swap"), 1536 * MIB),
        (format!("{ORPHAN}_disk"), 10 * GIB),
        ("scratch".to_string(), 5 * GIB),
    ]
}

fn used_bytes() -> u64 {
    lvs().iter().map(|(_, b)| b).sum()
}

fn config(min: &'static str, max: &'static str, fault: Fault) -> Config {
    Config {
        min,
        max,
        hypervisors: hypervisors(),
        servers: servers(),
        fault,
        roles: Arc::new(|token: &str| {
            token
                .strip_prefix("fake-token-")
                .map(|r| r.split('-').map(str::to_string).collect())
        }),
        token_roles: vec!["admin"],
    }
}

/// nova.conf, the LVM report and an instances file of a host named `host` in `dir`.
fn write_host(dir: &std::path::Path, host: &str) {
    std::fs::write(
        dir.join("nova.conf"),
        format!("[DEFAULT]\nhost = {host}\nreserved_host_disk_mb = {RESERVED_HOST_DISK_MB}\n\n[libvirt]\nimages_type = lvm\nimages_volume_group = {VG}\n"),
    )
    .unwrap();
    let lvs = lvs();
    let report: Vec<Lv> = lvs
        .iter()
        .map(|(name, bytes)| linear_lv(VG, name, *bytes))
        .collect();
    write_lvm_report(&dir.join("lvm-report.json"), VG, VG_BYTES, &report);
    std::fs::write(
        dir.join("instances.json"),
        format!(r#"{{"instances": [{{"uuid": "{A}", "root_gb": 20}}]}}"#),
    )
    .unwrap();
}

fn args(dir: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let dir = dir.display();
    let mut args = vec![
        format!("--nova.config-file={dir}/nova.conf"),
        format!("--collector.lvm.replay-file={dir}/lvm-report.json"),
        "--no-collector.libvirt".to_string(),
        "--collector.nova".to_string(),
    ];
    if !extra.iter().any(|a| a.starts_with("--collector.timeout")) {
        args.push("--collector.timeout=3s".to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn start(nova: &FakeNova, dir: &std::path::Path, extra: &[&str]) -> Exporter {
    let auth_url = format!("http://127.0.0.1:{}/v3", nova.port);
    Exporter::start_with_env(
        &args(dir, extra),
        &[
            ("OS_AUTH_URL", &auth_url),
            ("OS_APPLICATION_CREDENTIAL_ID", "fake-id"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "fake-secret-4711"),
        ],
    )
}

fn nova_success(m: &Exposition) -> Option<f64> {
    m.get("nova_lvm_collector_success{collector=\"nova\"}")
}

fn scrape_until(exporter: &Exporter, ready: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = Instant::now() + Duration::from_secs(60);
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

fn wait_for_log(exporter: &Exporter, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = exporter.scrape();
        let log = exporter.log();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "{needle:?} never logged:\n{log}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn series(name: &str) -> String {
    format!("{name}{{source=\"nova\",vg=\"{VG}\"}}")
}

/// Every figure of the nova source and the derived metrics it drives, to the byte.
fn assert_every_figure(m: &Exposition) {
    let p = |s: &str| m.value(s);
    // tracked used = (local_gb_used 67 - int(1500 / 1024) 1) GiB = A 20 + B 46 + C 0.
    assert_eq!(p(&series("nova_lvm_tracked_used_bytes")), (66 * GIB) as f64);
    // placement's rules on the same flavors: B's swap rounds up, C's swap is 1 GiB.
    assert_eq!(
        p(&series("nova_lvm_tracked_allocated_bytes")),
        ((20 + 47 + 1) * GIB) as f64
    );
    assert_eq!(p(&series("nova_lvm_tracked_instances")), 3.0);
    assert_eq!(
        p(&series("nova_lvm_reserved_bytes")),
        (RESERVED_HOST_DISK_MB * MIB) as f64
    );
    assert_eq!(p(&series("nova_lvm_allocation_ratio")), 1.0);
    assert_eq!(
        p(&series("nova_lvm_scheduler_free_bytes")),
        (32 * GIB) as f64
    );
    let least = (VG_BYTES - used_bytes()) / GIB;
    assert_eq!(least, 18);
    assert_eq!(
        p(&series("nova_lvm_disk_available_least_bytes")),
        (least * GIB) as f64
    );

    // Owner classes from nova's servers.
    let owner = |name: &str, owner: &str| p(&format!("{name}{{owner=\"{owner}\",vg=\"{VG}\"}}"));
    assert_eq!(owner("nova_lvm_lvs", "instance"), 4.0);
    assert_eq!(
        owner("nova_lvm_lv_bytes", "instance"),
        (66 * GIB + GIB / 2) as f64
    );
    assert_eq!(owner("nova_lvm_lvs", "orphan"), 1.0);
    assert_eq!(owner("nova_lvm_lv_bytes", "orphan"), (10 * GIB) as f64);
    assert_eq!(owner("nova_lvm_lvs", "foreign"), 1.0);
    assert_eq!(owner("nova_lvm_lv_bytes", "foreign"), (5 * GIB) as f64);

    // Derived, nova primary: used 81.5 GiB, tracked 66 GiB.
    let g = |name: &str| p(&format!("{name}{{vg=\"{VG}\"}}"));
    let used = used_bytes() as i64;
    assert_eq!(used, (81 * GIB + GIB / 2) as i64);
    assert_eq!(g("nova_lvm_drift_bytes"), (used - (66 * GIB) as i64) as f64);
    let cause = |c: &str| {
        p(&format!(
            "nova_lvm_untracked_bytes{{cause=\"{c}\",vg=\"{VG}\"}}"
        ))
    };
    assert_eq!(cause("foreign"), (5 * GIB) as f64);
    assert_eq!(cause("orphan"), (10 * GIB) as f64);
    // B's swap LV is 1.5 GiB where nova counts int(1536 / 1024) = 1 GiB: the swap remainder.
    assert_eq!(cause("swap_remainder"), (GIB / 2) as f64);
    assert_eq!(cause("extent_rounding"), 0.0);
    // The orphan by why: nova has never heard of its instance (or not looked up yet).
    for (reason, bytes) in [
        ("deleted", 0),
        ("elsewhere", 0),
        ("here", 0),
        ("unknown", 10 * GIB),
    ] {
        assert_eq!(
            p(&format!(
                "nova_lvm_orphan_bytes{{reason=\"{reason}\",vg=\"{VG}\"}}"
            )),
            bytes as f64
        );
    }
    assert_eq!(cause("unexplained"), 0.0);
    assert_eq!(g("nova_lvm_tracked_unbacked_bytes"), 0.0);
    let corrected = VG_BYTES as i64 - used - (RESERVED_HOST_DISK_MB * MIB) as i64;
    assert_eq!(g("nova_lvm_corrected_free_bytes"), corrected as f64);
    assert_eq!(
        g("nova_lvm_scheduler_overestimate_bytes"),
        ((32 * GIB) as i64 - corrected) as f64
    );
    // 99 - R - 66 <= corrected (17.03 GiB)  =>  R >= 15.97  =>  16 GiB.
    assert_eq!(
        g("nova_lvm_recommended_reserved_host_disk_bytes"),
        (16 * GIB) as f64
    );
}

#[test]
fn every_nova_figure_to_the_byte_at_2_87_and_the_fqdn_found_by_short_name() {
    let nova = FakeNova::start(config("2.1", "2.96", Fault::None));
    let dir = tempfile::tempdir().unwrap();
    write_host(dir.path(), "cmp-7");
    let exporter = start(&nova, dir.path(), &[]);
    let m = scrape_until(&exporter, |m| nova_success(m) == Some(1.0));
    assert_every_figure(&m);
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
        1.0
    );
    let complaints = common::promtool_check_metrics(&m.text);
    assert!(complaints.is_empty(), "promtool: {complaints}");

    // 2.87 on a server offering 2.96; the hostname pattern (2.53+), both servers pages.
    let requests = nova.requests();
    assert!(requests.contains(&"2.1 /".to_string()), "{requests:?}");
    assert!(
        requests
            .contains(&"2.87 /os-hypervisors/detail?hypervisor_hostname_pattern=cmp-7".to_string()),
        "{requests:?}"
    );
    assert_eq!(
        nova.count("/servers/detail?all_tenants=1&host="),
        2,
        "{requests:?}"
    );
    // The one orphan's instance looked up once: nova has no such server.
    assert_eq!(nova.count(&format!("&uuid={ORPHAN}")), 1, "{requests:?}");
    assert_eq!(nova.flavor_lookups(), 0, "embedded flavors at 2.47+");

    let log = exporter.log();
    assert!(
        log.contains("negotiated the compute (nova) microversion"),
        "{log}"
    );
    assert!(log.contains("microversion=2.87"), "{log}");
    assert!(
        log.contains("no hypervisor is named exactly \\\"cmp-7\\\""),
        "{log}"
    );
    assert!(log.contains("same short name \\\"cmp-7\\\""), "{log}");
    assert!(log.contains("hypervisor=cmp-7.example.org"), "{log}");
    assert!(!log.contains("fake-secret-4711"), "{log}");
    let (_, landing) = get(exporter.port, "/").unwrap();
    assert!(landing.contains("nova source"), "{landing}");
}

#[test]
fn older_microversions_use_search_and_flavor_lookups_with_the_same_figures() {
    for (max, expected, hypervisor_path, flavor_lookups) in [
        ("2.52", "2.52", "2.52 /os-hypervisors/cmp-7/search", 0),
        ("2.46", "2.46", "2.46 /os-hypervisors/cmp-7/search", 3),
        ("2.1", "2.1", "2.1 /os-hypervisors/cmp-7/search", 3),
    ] {
        let nova = FakeNova::start(config("2.1", max, Fault::None));
        let dir = tempfile::tempdir().unwrap();
        write_host(dir.path(), "cmp-7");
        let exporter = start(&nova, dir.path(), &[]);
        let m = scrape_until(&exporter, |m| nova_success(m) == Some(1.0));
        assert_every_figure(&m);
        let requests = nova.requests();
        assert!(
            requests.contains(&hypervisor_path.to_string()),
            "{max}: {requests:?}"
        );
        assert!(
            requests.contains(&format!("{expected} /os-hypervisors/7")),
            "{max}: {requests:?}"
        );
        assert_eq!(nova.flavor_lookups(), flavor_lookups, "{requests:?}");
        assert!(
            requests
                .iter()
                .all(|r| r == "2.1 /" || r.starts_with(expected)),
            "{max}: {requests:?}"
        );
    }
}

#[test]
fn without_the_disk_fields_the_collector_fails_says_so_once_and_exports_no_zeros() {
    // A nova whose minimum is above 2.87 (the exporter must ask for 2.90).
    let nova = FakeNova::start(config("2.90", "2.96", Fault::None));
    let dir = tempfile::tempdir().unwrap();
    write_host(dir.path(), "cmp-7");
    let exporter = start(
        &nova,
        dir.path(),
        &[
            "--collector.nova.refresh-interval=500ms",
            &format!(
                "--collector.file.path={}/instances.json",
                dir.path().display()
            ),
        ],
    );
    let needle = "has no local_gb, local_gb_used, free_disk_gb and disk_available_least";
    wait_for_log(&exporter, needle);
    // Several refreshes later, still said once.
    let deadline = Instant::now() + Duration::from_secs(20);
    while nova.count("/os-hypervisors/detail") < 4 {
        assert!(Instant::now() < deadline, "{:?}", nova.requests());
        let m = exporter.scrape();
        assert_eq!(nova_success(&m), Some(0.0));
        std::thread::sleep(Duration::from_millis(300));
    }
    let m = exporter.scrape();
    assert_eq!(nova_success(&m), Some(0.0));
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"file\"}"),
        1.0
    );
    assert!(
        !m.text.contains("source=\"nova\""),
        "no series of the nova source, zeros least of all:\n{}",
        m.text
    );
    let log = exporter.log();
    assert_eq!(log.matches(needle).count(), 1, "{log}");
    assert!(log.contains("had to ask for 2.90"), "{log}");
    assert!(log.contains("2.88 removed them"), "{log}");
    assert!(log.contains("use the placement source"), "{log}");
    assert!(nova.count("2.90 /os-hypervisors/detail?") >= 4);

    // A proxy answering the 2.88 shape although 2.87 was asked for: the same, with the reason.
    let nova = FakeNova::start(config("2.1", "2.96", Fault::IgnoreMicroversion));
    let exporter = start(&nova, dir.path(), &[]);
    let log = wait_for_log(&exporter, needle);
    assert!(
        log.contains("although the exporter asked for microversion 2.87"),
        "{log}"
    );
    let m = exporter.scrape();
    assert_eq!(nova_success(&m), Some(0.0));
    assert!(!m.text.contains("source=\"nova\""), "{}", m.text);
}

#[test]
fn a_token_without_the_admin_role_gets_an_error_that_names_it() {
    let mut cfg = config("2.1", "2.96", Fault::None);
    cfg.token_roles = vec!["reader", "member"];
    let nova = FakeNova::start(cfg);
    let dir = tempfile::tempdir().unwrap();
    write_host(dir.path(), "cmp-7");
    let exporter = start(&nova, dir.path(), &[]);
    let log = wait_for_log(&exporter, "403 Forbidden");
    assert!(log.contains("needs the admin role"), "{log}");
    assert!(log.contains("the token has roles: reader, member"), "{log}");
    assert!(
        log.contains("allow os_compute_api:os-hypervisors:list-detail to be performed"),
        "{log}"
    );
    assert_eq!(nova_success(&exporter.scrape()), Some(0.0));
}

#[test]
fn the_exact_name_wins_and_an_fqdn_finds_a_short_name() {
    let dir = tempfile::tempdir().unwrap();
    // nova has both "cmp-7" (say, a stale record) and "cmp-7.example.org": exact wins.
    let mut cfg = config("2.1", "2.96", Fault::None);
    let mut short = cfg.hypervisors[0].clone();
    short.name = "cmp-7".into();
    short.uuid = "e1a7e1a7-0000-4000-8000-0000000000a7".into();
    short.local_gb_used = 1;
    short.free_disk_gb = 98;
    cfg.hypervisors.push(short);
    let nova = FakeNova::start(cfg);
    write_host(dir.path(), "cmp-7");
    let exporter = start(&nova, dir.path(), &[]);
    let m = scrape_until(&exporter, |m| nova_success(m) == Some(1.0));
    assert_eq!(
        m.value(&series("nova_lvm_scheduler_free_bytes")),
        (98 * GIB) as f64
    );
    assert!(
        exporter.log().contains("\\\"cmp-7\\\" (from ")
            && exporter.log().contains("is exactly nova"),
        "{}",
        exporter.log()
    );

    // The flag gives the FQDN, libvirt reported the short name.
    let mut cfg = config("2.1", "2.96", Fault::None);
    cfg.hypervisors[0].name = "cmp-7".into();
    for server in &mut cfg.servers {
        if server.host == "cmp-7" {
            server.node = "cmp-7".into();
        }
    }
    let nova = FakeNova::start(cfg);
    let exporter = start(
        &nova,
        dir.path(),
        &["--collector.nova.hostname=cmp-7.example.org"],
    );
    let m = scrape_until(&exporter, |m| nova_success(m) == Some(1.0));
    assert_every_figure(&m);
    let log = exporter.log();
    assert!(log.contains("from --collector.nova.hostname"), "{log}");
    assert!(
        log.contains("\\\"cmp-7\\\" has the same short name"),
        "{log}"
    );

    // No such hypervisor: a 404 from the pattern search becomes an error naming the flag.
    let nova = FakeNova::start(config("2.1", "2.96", Fault::None));
    let exporter = start(&nova, dir.path(), &["--collector.nova.hostname=cmp-9"]);
    let log = wait_for_log(&exporter, "no hypervisor whose name contains");
    assert!(log.contains("--collector.nova.hostname"), "{log}");
}

fn fault_test(fault: Fault, expected: &str) -> String {
    let nova = FakeNova::start(config("2.1", "2.96", fault));
    let dir = tempfile::tempdir().unwrap();
    write_host(dir.path(), "cmp-7");
    let exporter = start(
        &nova,
        dir.path(),
        &[&format!(
            "--collector.file.path={}/instances.json",
            dir.path().display()
        )],
    );
    let started = Instant::now();
    let m = exporter.scrape();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(nova_success(&m), Some(0.0));
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
        1.0
    );
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"file\"}"),
        1.0
    );
    assert!(!m.text.contains("source=\"nova\""), "{}", m.text);
    assert!(
        m.get(&format!(
            "nova_lvm_tracked_used_bytes{{source=\"file\",vg=\"{VG}\"}}"
        ))
        .is_some(),
        "{}",
        m.text
    );
    wait_for_log(&exporter, expected)
}

#[test]
fn a_stalled_servers_list_fails_only_the_nova_collector_within_the_timeout() {
    let log = fault_test(Fault::Stall, "timed out after 3000 ms");
    assert!(!log.contains("fake-secret-4711"), "{log}");
}

#[test]
fn a_500_fails_only_the_nova_collector_with_novas_message() {
    let log = fault_test(Fault::ServerError, "answered HTTP 500");
    assert!(log.contains("The cell database exploded"), "{log}");
}

#[test]
fn a_garbage_body_fails_only_the_nova_collector() {
    let log = fault_test(Fault::Garbage, "not JSON");
    assert!(log.contains("502 Bad Gateway"), "{log}");
}

/// One real Keystone for this module, with the fake compute API registered in its catalog.
fn real_keystone() -> Option<&'static (OpenStack, FakeNova)> {
    static ENV: OnceLock<Option<(OpenStack, FakeNova)>> = OnceLock::new();
    ENV.get_or_init(|| {
        if !openstack_available("nova source through the real Keystone") {
            return None;
        }
        let os = OpenStack::start(Options::default());
        let admin = os.admin_token();
        let keystone = os.auth_url().to_string();
        let mut cfg = config("2.1", "2.96", Fault::None);
        // Validate every token with Keystone, as keystonemiddleware in nova-api does.
        let checker = OpenStackTokens { keystone, admin };
        cfg.roles = Arc::new(move |token: &str| checker.roles(token));
        let nova = FakeNova::start(cfg);
        os.register_service("compute", &nova.url());
        Some((os, nova))
    })
    .as_ref()
}

struct OpenStackTokens {
    keystone: String,
    admin: String,
}

impl OpenStackTokens {
    fn roles(&self, token: &str) -> Option<Vec<String>> {
        let response = reqwest::blocking::Client::new()
            .get(format!("{}/auth/tokens", self.keystone))
            .header("X-Auth-Token", &self.admin)
            .header("X-Subject-Token", token)
            .timeout(Duration::from_secs(30))
            .send()
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body: Value = response.json().ok()?;
        Some(
            body["token"]["roles"]
                .as_array()?
                .iter()
                .filter_map(|r| r["name"].as_str().map(str::to_string))
                .collect(),
        )
    }
}

#[test]
fn through_the_real_keystone_an_admin_reads_every_figure() {
    let Some((os, _nova)) = real_keystone() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_host(dir.path(), "cmp-7");
    let exporter = Exporter::start_with_env(
        &args(dir.path(), &["--collector.timeout=20s"]),
        &[
            ("OS_AUTH_URL", os.auth_url()),
            ("OS_USERNAME", "admin"),
            ("OS_PASSWORD", os.var("ADMIN_PASSWORD")),
            ("OS_PROJECT_NAME", "admin"),
            ("OS_USER_DOMAIN_ID", "default"),
            ("OS_PROJECT_DOMAIN_ID", "default"),
            ("OS_REGION_NAME", "RegionOne"),
            ("OS_INTERFACE", "internal"),
        ],
    );
    let m = scrape_until(&exporter, |m| nova_success(m) == Some(1.0));
    assert_every_figure(&m);
    let log = exporter.log();
    assert!(log.contains("obtained a Keystone token"), "{log}");
    assert!(!log.contains(os.var("ADMIN_PASSWORD")), "{log}");
}

#[test]
fn through_the_real_keystone_the_service_role_is_not_enough() {
    let Some((os, _nova)) = real_keystone() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_host(dir.path(), "cmp-7");
    let clouds = os.write_clouds_yaml(dir.path(), "RegionOne");
    let clouds_env = clouds.display().to_string();
    let secure_env = dir.path().join("secure.yaml").display().to_string();
    let exporter = Exporter::start_with_env(
        &args(
            dir.path(),
            &["--os-cloud=exporter-appcred", "--collector.timeout=20s"],
        ),
        &[
            ("OS_CLIENT_CONFIG_FILE", &clouds_env),
            ("OS_CLIENT_SECURE_FILE", &secure_env),
        ],
    );
    let log = wait_for_log(&exporter, "403 Forbidden");
    assert!(log.contains("needs the admin role"), "{log}");
    assert!(log.contains("the token has roles: service"), "{log}");
    assert!(!log.contains(os.var("APP_CRED_SECRET")), "{log}");
    assert_eq!(nova_success(&exporter.scrape()), Some(0.0));
}

/// Orphans for every reason nova can give: deleted (with two LVs), evacuated to cmp-70,
/// soft-deleted on this host, and one nova never heard of (archived).
const GONE: &str = "d1000000-0000-4000-8000-000000000011";
const MOVED: &str = "d2000000-0000-4000-8000-000000000012";
const SOFT: &str = "d3000000-0000-4000-8000-000000000013";
const ARCHIVED: &str = "d4000000-0000-4000-8000-000000000014";

/// cmp-7 with instance A (2 GiB root) and the orphans' servers as nova keeps them.
fn orphan_config(fault: Fault) -> Config {
    let srv = |uuid, host: &str, status| Srv {
        uuid,
        host: host.into(),
        node: format!("{host}.example.org"),
        flavor_id: "1",
        root_gb: 2,
        ephemeral_gb: 0,
        swap_mb: 0,
        bfv: false,
        status,
    };
    Config {
        hypervisors: vec![Hyp {
            // local_gb_used = int(1500 / 1024) 1 + A 2.
            local_gb: 19,
            local_gb_used: 3,
            free_disk_gb: 16,
            disk_available_least: 10,
            ..hypervisors()[0].clone()
        }],
        servers: vec![
            srv(A, "cmp-7", "ACTIVE"),
            srv(GONE, "cmp-7", "DELETED"),
            srv(MOVED, "cmp-70", "ACTIVE"),
            srv(SOFT, "cmp-7", "SOFT_DELETED"),
        ],
        ..config("2.1", "2.96", fault)
    }
}

fn orphan_bytes(m: &Exposition, vg: &str, reason: &str) -> Option<f64> {
    m.get(&format!(
        "nova_lvm_orphan_bytes{{reason=\"{reason}\",vg=\"{vg}\"}}"
    ))
}

#[test]
fn orphans_on_a_real_vg_by_reason_to_the_byte_with_bounded_cached_lookups() {
    if !common::lvm_available("orphan reasons on a real VG") {
        return;
    }
    let vg = common::LoopVg::new("orphans", 20);
    for (lv, size) in [
        (format!("{A}_disk"), "2g"),
        (format!("{GONE}_disk"), "3g"),
        (format!("{GONE}_disk.local"), "1g"),
        (format!("{MOVED}_disk"), "2g"),
        (format!("{SOFT}_disk"), "1g"),
        (format!("{ARCHIVED}_disk"), "512m"),
        ("scratch".to_string(), "1g"),
    ] {
        vg.create_lv(&lv, size);
    }
    let nova = FakeNova::start(orphan_config(Fault::None));
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nova.conf");
    std::fs::write(
        &conf,
        format!("[DEFAULT]\nhost = cmp-7\nreserved_host_disk_mb = {RESERVED_HOST_DISK_MB}\n\n[libvirt]\nimages_type = lvm\nimages_volume_group = {}\n", vg.name),
    )
    .unwrap();
    let auth_url = format!("http://127.0.0.1:{}/v3", nova.port);
    let env = [
        ("OS_AUTH_URL", auth_url.as_str()),
        ("OS_APPLICATION_CREDENTIAL_ID", "fake-id"),
        ("OS_APPLICATION_CREDENTIAL_SECRET", "fake-secret-4711"),
    ];
    let args: Vec<String> = [
        format!("--nova.config-file={}", conf.display()),
        "--no-collector.libvirt".into(),
        "--collector.nova".into(),
        "--collector.timeout=3s".into(),
        "--collector.nova.refresh-interval=2s".into(),
        "--collector.nova.orphan-lookups-per-refresh=2".into(),
    ]
    .into();
    let exporter = Exporter::start_with_env(&args, &env);
    let reason = |m: &Exposition, r: &str| orphan_bytes(m, &vg.name, r);
    let lookups = || nova.count("changes-since=");

    // The first round: the two largest orphans (GONE 4 GiB, MOVED 2 GiB), no more.
    let m = scrape_until(&exporter, |m| nova_success(m) == Some(1.0));
    assert_eq!(lookups(), 2, "{:?}", nova.requests());
    assert_eq!(nova.count(&format!("&uuid={GONE}")), 1);
    assert_eq!(nova.count(&format!("&uuid={MOVED}")), 1);
    // The nova source, the flavor list and the orphan lookups share one compute client: the
    // version document is read once, not once per user.
    let version_documents = nova
        .requests()
        .iter()
        .filter(|r| matches!(r.split_once(' '), Some((_, "" | "/"))))
        .count();
    assert!(nova.count("/flavors/detail") >= 1, "{:?}", nova.requests());
    assert_eq!(version_documents, 1, "{:?}", nova.requests());
    assert_eq!(reason(&m, "deleted"), Some((4 * GIB) as f64), "{}", m.text);
    assert_eq!(reason(&m, "elsewhere"), Some((2 * GIB) as f64));
    assert_eq!(reason(&m, "here"), Some(0.0));
    assert_eq!(reason(&m, "unknown"), Some((GIB + GIB / 2) as f64));
    let lvs = |m: &Exposition, r: &str| {
        m.value(&format!(
            "nova_lvm_orphan_lvs{{reason=\"{r}\",vg=\"{}\"}}",
            vg.name
        ))
    };
    assert_eq!(lvs(&m, "deleted"), 2.0);
    let complaints = common::promtool_check_metrics(&m.text);
    assert!(complaints.is_empty(), "promtool: {complaints}");

    // One refresh interval later the other two: soft-deleted here, archived unknown.
    let m = scrape_until(&exporter, |m| reason(m, "here") == Some(GIB as f64));
    assert_eq!(reason(&m, "deleted"), Some((4 * GIB) as f64));
    assert_eq!(reason(&m, "elsewhere"), Some((2 * GIB) as f64));
    assert_eq!(reason(&m, "unknown"), Some((GIB / 2) as f64));
    // The reasons add up to the orphan owner class.
    assert_eq!(
        m.value(&format!(
            "nova_lvm_lv_bytes{{owner=\"orphan\",vg=\"{}\"}}",
            vg.name
        )),
        (7 * GIB + GIB / 2) as f64
    );

    // Over three more intervals: at most 2 lookups a round, the deleted one never again, the
    // others re-checked.
    let rounds_before = lookups();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(7) {
        let m = exporter.scrape();
        assert_eq!(reason(&m, "deleted"), Some((4 * GIB) as f64));
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        nova.count(&format!("&uuid={GONE}")),
        1,
        "{:?}",
        nova.requests()
    );
    let made = lookups() - rounds_before;
    assert!(
        (2..=8).contains(&made),
        "{made} lookups in 7 s of 2 s rounds"
    );
    assert!(nova.count(&format!("&uuid={MOVED}")) >= 2);

    // The status page and the report say why, per LV.
    let (_, page) = get(exporter.port, "/").unwrap();
    assert!(page.contains("id=\"orphan-lvs\""), "{page}");
    assert!(page.contains(&format!("{GONE}_disk.local")), "{page}");
    assert!(
        page.contains("the instance is on cmp-70.example.org"),
        "{page}"
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .args(&args)
        .args(["report", "--format=json"])
        .envs(env)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    let violations = common::schema::report_schema_violations(&report);
    assert!(violations.is_empty(), "{violations:?}");
    let orphans = &report["orphans"]["lvs"];
    let of = |name: String| {
        orphans
            .as_array()
            .unwrap()
            .iter()
            .find(|lv| lv["name"] == json!(name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {orphans}"))
    };
    // One-shot: one round of 2 lookups, the largest first.
    assert_eq!(of(format!("{GONE}_disk"))["reason"], "deleted");
    assert_eq!(of(format!("{GONE}_disk"))["bytes"], json!(3 * GIB));
    assert_eq!(of(format!("{MOVED}_disk"))["reason"], "elsewhere");
    assert_eq!(of(format!("{SOFT}_disk"))["reason"], "unknown");
    assert_eq!(
        of(format!("{SOFT}_disk"))["detail"],
        "not looked up in nova yet"
    );
    assert_eq!(
        report["orphans"]["totals"][0],
        json!({"reason": "deleted", "lvs": 2, "bytes": 4 * GIB})
    );
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .args(&args)
        .arg("report")
        .envs(env)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("Orphans in {}", vg.name)), "{text}");
    assert!(
        text.contains(&format!(
            "deleted {GONE}_disk ({} bytes): nova deleted the instance (status DELETED, vm_state deleted)",
            3 * GIB
        )),
        "{text}"
    );
}

/// A wrong but existing libvirt directory (empty) as the primary source, with the nova source
/// enabled: nova places instance A on this host, so the warning says the directory is wrong and
/// the disks are not orphans, rather than leaving the operator to remove them.
#[test]
fn a_wrong_libvirt_directory_is_told_from_leaked_disks_by_the_nova_source() {
    if !common::lvm_available("wrong libvirt directory beside nova") {
        return;
    }
    let vg = common::LoopVg::new("nova-wrongdir", 20);
    vg.create_lv(&format!("{A}_disk"), "2g");
    vg.create_lv(&format!("{GONE}_disk"), "3g");
    let nova = FakeNova::start(orphan_config(Fault::None));
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nova.conf");
    std::fs::write(
        &conf,
        format!("[DEFAULT]\nhost = cmp-7\nreserved_host_disk_mb = {RESERVED_HOST_DISK_MB}\n\n[libvirt]\nimages_type = lvm\nimages_volume_group = {}\n", vg.name),
    )
    .unwrap();
    let qemu = dir.path().join("qemu");
    std::fs::create_dir(&qemu).unwrap();
    let auth_url = format!("http://127.0.0.1:{}/v3", nova.port);
    let env = [
        ("OS_AUTH_URL", auth_url.as_str()),
        ("OS_APPLICATION_CREDENTIAL_ID", "fake-id"),
        ("OS_APPLICATION_CREDENTIAL_SECRET", "fake-secret-4711"),
    ];
    let args: Vec<String> = vec![
        format!("--nova.config-file={}", conf.display()),
        format!("--collector.libvirt.xml-dir={}", qemu.display()),
        "--collector.nova".into(),
        "--tracked.primary=libvirt".into(),
        "--collector.timeout=10s".into(),
    ];
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
            .args(extra)
            .args(&args)
            .envs(env)
            .output()
            .unwrap()
    };
    let output = run(&["report", "--format=json"]);
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    let violations = common::schema::report_schema_violations(&report);
    assert!(violations.is_empty(), "{violations:?}");
    let warning = &report["local_source_warnings"][0];
    assert_eq!(warning["source"], "libvirt", "{report:#}");
    assert_eq!(warning["instances"], 2);
    assert_eq!(warning["bytes"], json!(5 * GIB));
    assert_eq!(warning["contradicted"], true);
    assert_eq!(
        warning["others"],
        json!([{"source": "nova", "instances": 1}])
    );

    let output = run(&["check"]);
    let line = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{line}");
    assert!(
        line.starts_with("NOVA-LVM WARNING - the libvirt source (")
            && line.contains(&qemu.display().to_string()),
        "{line}"
    );
    assert!(
        line.contains("nova places 1 of them on this host, so the libvirt source reads the wrong place: fix it; these disks are not orphans, remove none"),
        "{line}"
    );
}

/// An orphan lookup that fails (`fault`) leaves the reason unknown and fails nothing.
fn failing_lookup(fault: Fault, extra: &[&str]) -> (Exposition, Duration) {
    let nova = FakeNova::start(config("2.1", "2.96", fault));
    let dir = tempfile::tempdir().unwrap();
    write_host(dir.path(), "cmp-7");
    let exporter = start(&nova, dir.path(), extra);
    let m = scrape_until(&exporter, |m| nova_success(m) == Some(1.0));
    assert!(
        nova.count(&format!("&uuid={ORPHAN}")) >= 1,
        "{:?}",
        nova.requests()
    );
    // Every later scrape is quick and complete, the reason unknown.
    let started = Instant::now();
    let again = exporter.scrape();
    let took = started.elapsed();
    for m in [&m, &again] {
        assert_eq!(nova_success(m), Some(1.0), "{}", m.text);
        assert_eq!(
            m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
            1.0
        );
        assert_eq!(orphan_bytes(m, VG, "unknown"), Some((10 * GIB) as f64));
        assert_eq!(orphan_bytes(m, VG, "deleted"), Some(0.0));
    }
    assert_every_figure(&again);
    (again, took)
}

#[test]
fn a_failing_orphan_lookup_leaves_the_reason_unknown_and_the_scrape_whole() {
    failing_lookup(Fault::LookupError, &[]);
}

#[test]
fn a_stalled_orphan_lookup_holds_no_scrape_beyond_the_collector_timeout() {
    let (_, took) = failing_lookup(
        Fault::LookupStall,
        &["--collector.nova.request-timeout=20s"],
    );
    // The round that stalls was started by the first scrape; later ones do not wait for it.
    assert!(took < Duration::from_secs(2), "{took:?}");
}
