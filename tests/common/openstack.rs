//! A real Keystone and Placement for the integration tests (`scripts/openstack-test-env`), and
//! seeding of providers, inventories and allocations exactly as nova-compute and the scheduler
//! write them.
//!
//! One environment per test module that needs one (its static), on ports chosen per run in
//! 19000-19999, in a temporary state directory; the venvs are cached across runs. The servers exit with the test binary (the wsgi
//! runner watches its pid), and are stopped explicitly at exit. Without python3 + venv the tests
//! skip loudly; under `CI=true` they fail instead.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nova_lvm_exporter::lvm::Lv;
use serde_json::{json, Value};

/// Bytes in one GiB.
pub const GIB: u64 = 1024 * 1024 * 1024;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when python3 with venv is there to run Keystone and Placement. Otherwise prints why and
/// returns false, or panics under `CI=true`.
pub fn openstack_available(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let reason =
        "python3 with venv/ensurepip is not available (Debian: apt-get install python3-venv)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: needs a real Keystone and Placement but {reason}; under CI=true a skip is a failure");
    }
    eprintln!("\n!!! SKIPPING {test}: needs a real Keystone and Placement, but {reason} !!!\n");
    false
}

/// A free port in 19000-19999 (bound and released; the race is harmless in tests).
pub fn free_port_in_range() -> u16 {
    static NEXT: Mutex<u16> = Mutex::new(0);
    let mut next = NEXT.lock().unwrap();
    if *next == 0 {
        *next = 19000 + (std::process::id() % 900) as u16;
    }
    for _ in 0..1000 {
        let port = *next;
        *next = if *next >= 19999 { 19000 } else { *next + 1 };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 19000-19999");
}

/// What the environment should look like.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Also run a second Placement in RegionTwo whose token cache is off.
    pub placement2: bool,
    /// Token lifetime in seconds (default 3600).
    pub token_expiration: Option<u64>,
}

/// A running Keystone + Placement.
pub struct OpenStack {
    /// The state directory (databases, logs, env file).
    pub state: PathBuf,
    /// The env file's values.
    pub env: BTreeMap<String, String>,
    options: Options,
    _dir: tempfile::TempDir,
}

static STOP_STATE: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();

extern "C" fn stop_all_at_exit() {
    if let Some(states) = STOP_STATE.get() {
        for state in states.lock().map(|s| s.clone()).unwrap_or_default() {
            let _ = Command::new(repo().join("scripts/openstack-test-env"))
                .arg("stop")
                .env("OPENSTACK_TEST_STATE", &state)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(&state);
        }
    }
}

impl OpenStack {
    /// Starts an environment (installing the venvs on first use, which takes a few minutes).
    /// A start that fails (e.g. a port taken between the check and the bind) is tried once more
    /// on other ports.
    pub fn start(options: Options) -> OpenStack {
        match std::panic::catch_unwind(|| Self::start_once(options)) {
            Ok(os) => os,
            Err(_) => {
                eprintln!(
                    "openstack-test-env: first start failed; trying once more on other ports"
                );
                Self::start_once(options)
            }
        }
    }

    fn start_once(options: Options) -> OpenStack {
        let dir = tempfile::Builder::new()
            .prefix("nle-openstack-")
            .tempdir()
            .expect("tempdir");
        let state = dir.path().to_path_buf();
        let keystone = free_port_in_range();
        let placement = free_port_in_range();
        let placement2 = if options.placement2 {
            free_port_in_range().to_string()
        } else {
            String::new()
        };
        let os = OpenStack {
            state: state.clone(),
            env: BTreeMap::new(),
            options,
            _dir: dir,
        };
        let first = STOP_STATE.get().is_none();
        STOP_STATE
            .get_or_init(|| Mutex::new(Vec::new()))
            .lock()
            .unwrap()
            .push(state.clone());
        if first {
            // SAFETY: registering a plain extern "C" function with no captured state.
            unsafe {
                libc::atexit(stop_all_at_exit);
            }
        }
        let mut command = os.script("start");
        command
            .env("KEYSTONE_PORT", keystone.to_string())
            .env("PLACEMENT_PORT", placement.to_string())
            .env("PLACEMENT2_PORT", &placement2)
            .env(
                "KEYSTONE_TOKEN_EXPIRATION",
                options.token_expiration.unwrap_or(3600).to_string(),
            );
        let output = command.output().expect("run scripts/openstack-test-env");
        assert!(
            output.status.success(),
            "scripts/openstack-test-env start failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut os = os;
        os.env = parse_env_file(&state.join("env"));
        os
    }

    fn script(&self, action: &str) -> Command {
        let mut command = Command::new(repo().join("scripts/openstack-test-env"));
        command
            .arg(action)
            .env("OPENSTACK_TEST_STATE", &self.state)
            .env("EXIT_WITH_PID", std::process::id().to_string())
            .stdin(Stdio::null());
        command
    }

    /// One value of the env file.
    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from the env file"))
    }

    /// Keystone's v3 URL.
    pub fn auth_url(&self) -> &str {
        self.var("OS_AUTH_URL")
    }

    /// Placement's URL (RegionOne).
    pub fn placement_url(&self) -> &str {
        self.var("PLACEMENT_URL")
    }

    /// Stops one server (`keystone`, `placement`, `placement2`) by its pid.
    pub fn stop_server(&self, name: &str) {
        let pid_file = self.state.join(format!("{name}.pid"));
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");
        // SAFETY: plain kill(2) on the pid of a server this harness started.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        for _ in 0..100 {
            // SAFETY: signal 0 only checks for existence.
            if unsafe { libc::kill(pid, 0) } != 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(pid_file);
    }

    /// Starts whatever is stopped again (the script is idempotent).
    pub fn restart_stopped(&self) {
        let mut command = self.script("start");
        command
            .env("KEYSTONE_PORT", self.var("KEYSTONE_PORT"))
            .env("PLACEMENT_PORT", self.var("PLACEMENT_PORT"))
            .env("PLACEMENT2_PORT", self.var("PLACEMENT2_PORT"))
            .env(
                "KEYSTONE_TOKEN_EXPIRATION",
                self.options.token_expiration.unwrap_or(3600).to_string(),
            );
        let output = command.output().expect("run scripts/openstack-test-env");
        assert!(
            output.status.success(),
            "restart failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The access log of a server: one `ACCESS <method> <path> <status> <unix time>` line per
    /// request.
    pub fn access_log(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.state.join(format!("logs/{name}.err")))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("ACCESS "))
            .map(str::to_string)
            .collect()
    }

    /// How many requests `<method> <path prefix>` a server has logged.
    pub fn count(&self, name: &str, method: &str, path_prefix: &str) -> usize {
        let prefix = format!("ACCESS {method} {path_prefix}");
        self.access_log(name)
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .count()
    }

    /// A token for `user` (password auth, project `project`, domain default).
    pub fn token(&self, user: &str, password: &str, project: &str) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let response = http()
            .post(format!("{}/auth/tokens", self.auth_url()))
            .json(&body)
            .send()
            .expect("keystone");
        assert_eq!(response.status().as_u16(), 201, "{:?}", response.text());
        response.headers()["x-subject-token"]
            .to_str()
            .unwrap()
            .to_string()
    }

    /// The admin's token.
    pub fn admin_token(&self) -> String {
        self.token("admin", self.var("ADMIN_PASSWORD"), "admin")
    }

    /// Revokes a token (as admin).
    pub fn revoke(&self, token: &str) {
        let response = http()
            .delete(format!("{}/auth/tokens", self.auth_url()))
            .header("X-Auth-Token", self.admin_token())
            .header("X-Subject-Token", token)
            .send()
            .expect("keystone");
        assert_eq!(response.status().as_u16(), 204, "{:?}", response.text());
    }

    /// Registers a service of `service_type` in the catalog with internal and public endpoints
    /// at `url` in RegionOne (as admin), the way a deployment tool registers nova's `compute`.
    /// Tokens issued afterwards carry it in their catalog.
    pub fn register_service(&self, service_type: &str, url: &str) {
        let admin = self.admin_token();
        let call = |method: reqwest::Method, path: &str, body: Option<Value>| -> Value {
            let mut request = http()
                .request(method.clone(), format!("{}{path}", self.auth_url()))
                .header("X-Auth-Token", &admin);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().expect("keystone");
            let status = response.status();
            let text = response.text().unwrap_or_default();
            assert!(status.is_success(), "{method} {path} -> {status}: {text}");
            serde_json::from_str(&text).unwrap()
        };
        let service = call(
            reqwest::Method::POST,
            "/services",
            Some(json!({"service": {"type": service_type, "name": service_type}})),
        )["service"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        for interface in ["internal", "public"] {
            call(
                reqwest::Method::POST,
                "/endpoints",
                Some(
                    json!({"endpoint": {"service_id": service, "interface": interface,
                                         "region_id": "RegionOne", "url": url}}),
                ),
            );
        }
    }

    /// A Placement admin client on RegionOne's placement.
    pub fn placement(&self) -> Placement {
        Placement {
            url: self.placement_url().to_string(),
            token: self.admin_token(),
        }
    }

    /// Writes a clouds.yaml (with the application credential's secret in a secure.yaml next to
    /// it) into `dir` and returns the clouds.yaml path. Cloud `exporter-appcred` uses the
    /// application credential, `exporter-password` the password, `reader` the reader-only user.
    pub fn write_clouds_yaml(&self, dir: &Path, region: &str) -> PathBuf {
        let clouds = format!(
            r#"clouds:
  exporter-appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: {auth_url}
      application_credential_id: {app_cred}
    region_name: {region}
    interface: internal
  exporter-password:
    auth:
      auth_url: {auth_url}
      username: exporter
      project_name: service
      user_domain_name: Default
      project_domain_id: default
    region_name: {region}
  reader:
    auth:
      auth_url: {auth_url}
      username: reader-user
      password: {reader_password}
      project_name: service
      user_domain_id: default
      project_domain_id: default
    region_name: {region}
"#,
            auth_url = self.auth_url(),
            app_cred = self.var("APP_CRED_ID"),
            reader_password = self.var("READER_PASSWORD"),
        );
        let secure = format!(
            "clouds:\n  exporter-appcred:\n    auth:\n      application_credential_secret: {}\n  exporter-password:\n    auth:\n      password: {}\n",
            self.var("APP_CRED_SECRET"),
            self.var("EXPORTER_PASSWORD"),
        );
        std::fs::write(dir.join("clouds.yaml"), clouds).unwrap();
        std::fs::write(dir.join("secure.yaml"), secure).unwrap();
        dir.join("clouds.yaml")
    }
}

impl Drop for OpenStack {
    fn drop(&mut self) {
        let _ = self
            .script("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn parse_env_file(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).expect("env file");
    let mut values = BTreeMap::new();
    for line in text.lines() {
        for pair in line.trim_start_matches("export ").split_whitespace() {
            if let Some((key, value)) = pair.split_once('=') {
                values.insert(key.to_string(), value.trim_matches('"').to_string());
            }
        }
    }
    values
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The microversion nova-compute and the scheduler use against placement 16.0.0.
pub const MICROVERSION: &str = "placement 1.39";

/// A consumer's allocation on one provider, as the scheduler claims it.
#[derive(Debug, Clone)]
pub struct Consumer {
    /// Instance UUID.
    pub uuid: String,
    /// DISK_GB: root_gb (0 when booted from volume) + ephemeral_gb + ceil(swap_mb / 1024).
    pub disk_gb: u64,
    /// VCPU.
    pub vcpus: u64,
    /// MEMORY_MB.
    pub memory_mb: u64,
}

/// What nova-compute reports for a host.
#[derive(Debug, Clone)]
pub struct ComputeNode {
    /// The provider name (the hypervisor hostname).
    pub name: String,
    /// The provider UUID (the compute node's UUID).
    pub uuid: String,
    /// VG size in bytes (`vgs vg_size`).
    pub vg_bytes: u64,
    /// `[DEFAULT] reserved_host_disk_mb`.
    pub reserved_host_disk_mb: u64,
    /// `[DEFAULT] disk_allocation_ratio`.
    pub disk_allocation_ratio: f64,
}

/// An admin client of Placement that writes what nova writes.
pub struct Placement {
    /// Placement's URL.
    pub url: String,
    token: String,
}

impl Placement {
    /// One call; sqlite answers "database is locked" to concurrent writers now and then, so a
    /// 500 saying so is retried (seeding is also serialised across the tests of a binary).
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.call_or_refusal(method, path, body)
            .unwrap_or_else(|text| panic!("{text}"))
    }

    /// [`Self::call`], but placement's refusal (any status but a locked database) is returned as
    /// `Err("<METHOD> <path> -> <status>: <body>")` instead of panicking.
    pub fn call_or_refusal(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        static SEEDING: Mutex<()> = Mutex::new(());
        let _serialised = SEEDING.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..20 {
            match self.try_call(method.clone(), path, body.clone()) {
                Ok(value) => return Ok(value),
                Err(text) if text.contains("database is locked") => {
                    std::thread::sleep(Duration::from_millis(250))
                }
                Err(text) => return Err(text),
            }
        }
        panic!("{method} {path}: placement's database stayed locked");
    }

    fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = http()
            .request(method.clone(), format!("{}{path}", self.url))
            .header("X-Auth-Token", &self.token)
            .header("OpenStack-API-Version", MICROVERSION)
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().expect("placement");
        let status = response.status();
        let text = response.text().unwrap_or_default();
        if !status.is_success() {
            return Err(format!("{method} {path} -> {status}: {text}"));
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        })
    }

    fn generation(&self, uuid: &str) -> u64 {
        self.call(
            reqwest::Method::GET,
            &format!("/resource_providers/{uuid}"),
            None,
        )["generation"]
            .as_u64()
            .unwrap()
    }

    /// Registers the compute node the way nova-compute's resource tracker does on start-up:
    /// the provider, its inventories (libvirt driver's `update_provider_tree`: DISK_GB total =
    /// floor(VG bytes / GiB), reserved = ceil(reserved_host_disk_mb / 1024), min_unit 1,
    /// max_unit total, step_size 1) and the COMPUTE_NODE trait.
    pub fn register_compute_node(&self, node: &ComputeNode) {
        let existing = self.call(
            reqwest::Method::GET,
            &format!("/resource_providers?name={}", node.name),
            None,
        );
        if existing["resource_providers"]
            .as_array()
            .unwrap()
            .is_empty()
        {
            self.call(
                reqwest::Method::POST,
                "/resource_providers",
                Some(json!({"name": node.name, "uuid": node.uuid})),
            );
        }
        let disk_total = node.vg_bytes / GIB;
        let disk_reserved = node.reserved_host_disk_mb.div_ceil(1024);
        let generation = self.generation(&node.uuid);
        self.call(
            reqwest::Method::PUT,
            &format!("/resource_providers/{}/inventories", node.uuid),
            Some(json!({
                "resource_provider_generation": generation,
                "inventories": {
                    "VCPU": {"total": 16, "reserved": 0, "min_unit": 1, "max_unit": 16,
                             "step_size": 1, "allocation_ratio": 4.0},
                    "MEMORY_MB": {"total": 64000, "reserved": 512, "min_unit": 1,
                                  "max_unit": 64000, "step_size": 1, "allocation_ratio": 1.0},
                    "DISK_GB": {"total": disk_total, "reserved": disk_reserved, "min_unit": 1,
                                "max_unit": disk_total, "step_size": 1,
                                "allocation_ratio": node.disk_allocation_ratio},
                }
            })),
        );
        let generation = self.generation(&node.uuid);
        self.call(
            reqwest::Method::PUT,
            &format!("/resource_providers/{}/traits", node.uuid),
            Some(json!({
                "resource_provider_generation": generation,
                "traits": ["COMPUTE_NODE", "COMPUTE_VOLUME_EXTEND"],
            })),
        );
    }

    /// Claims a consumer's resources on a provider the way the scheduler does at 1.39
    /// (`consumer_generation` null for a new consumer, the current one otherwise;
    /// `consumer_type` INSTANCE). A zero DISK_GB (boot from volume) is left out, as nova does.
    pub fn allocate(&self, provider_uuid: &str, consumer: &Consumer) {
        let current = self.call(
            reqwest::Method::GET,
            &format!("/allocations/{}", consumer.uuid),
            None,
        );
        let mut resources = json!({"VCPU": consumer.vcpus, "MEMORY_MB": consumer.memory_mb});
        if consumer.disk_gb > 0 {
            resources["DISK_GB"] = json!(consumer.disk_gb);
        }
        self.call(
            reqwest::Method::PUT,
            &format!("/allocations/{}", consumer.uuid),
            Some(json!({
                "allocations": {provider_uuid: {"resources": resources}},
                "project_id": "6f70656e737461636b20726f636b7321",
                "user_id": "8a1b5c2d3e4f40718293a4b5c6d7e8f9",
                "consumer_generation": current.get("consumer_generation").cloned().unwrap_or(Value::Null),
                "consumer_type": "INSTANCE",
            })),
        );
    }

    /// Sets one field of the provider's DISK_GB inventory and keeps the rest, as
    /// `openstack resource provider inventory set <uuid> --amend --resource DISK_GB:<field>=<value>`
    /// does (osc-placement reads every inventory, changes the one field, and PUTs them all back
    /// with the provider's generation).
    pub fn amend_disk_gb(&self, provider_uuid: &str, field: &str, value: Value) {
        let path = format!("/resource_providers/{provider_uuid}/inventories");
        let mut body = self.call(reqwest::Method::GET, &path, None);
        body["inventories"]["DISK_GB"][field] = value;
        self.call(reqwest::Method::PUT, &path, Some(body));
    }

    /// The provider's DISK_GB inventory as placement holds it.
    pub fn disk_gb_inventory(&self, provider_uuid: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/resource_providers/{provider_uuid}/inventories"),
            None,
        )["inventories"]["DISK_GB"]
            .clone()
    }

    /// Claims `disk_gb` for a new consumer on the provider as the scheduler does; placement's
    /// refusal (409 when it does not fit) comes back as `Err` naming the status.
    pub fn try_allocate_disk(
        &self,
        provider_uuid: &str,
        consumer_uuid: &str,
        disk_gb: u64,
    ) -> Result<(), String> {
        self.call_or_refusal(
            reqwest::Method::PUT,
            &format!("/allocations/{consumer_uuid}"),
            Some(json!({
                "allocations": {provider_uuid: {"resources": {"DISK_GB": disk_gb, "VCPU": 1, "MEMORY_MB": 512}}},
                "project_id": "6f70656e737461636b20726f636b7321",
                "user_id": "8a1b5c2d3e4f40718293a4b5c6d7e8f9",
                "consumer_generation": Value::Null,
                "consumer_type": "INSTANCE",
            })),
        )
        .map(|_| ())
    }

    /// Deletes a resource provider (its allocations must be gone), as happens when a compute
    /// node's service is deleted before the node registers again.
    pub fn delete_provider(&self, uuid: &str) {
        self.call(
            reqwest::Method::DELETE,
            &format!("/resource_providers/{uuid}"),
            None,
        );
    }

    /// Removes a consumer's allocations (instance deleted).
    pub fn delete_allocation(&self, consumer_uuid: &str) {
        self.call(
            reqwest::Method::DELETE,
            &format!("/allocations/{consumer_uuid}"),
            None,
        );
    }
}

/// Writes an LVM JSON report (what `vgs` + `lvs -a --reportformat json --units b --nosuffix`
/// print) of VG `vg` with 4 MiB extents; `vg_free` = size - the LVs. Each LV is the exporter's
/// model, made with `nova_lvm_exporter::lvm::build::linear_lv` (sizes a multiple of the extent
/// size), and is written with the fields such a report has: name, size, attributes, segment type,
/// pool, parent, data percent and tags.
pub fn write_lvm_report(path: &Path, vg: &str, vg_bytes: u64, lvs: &[Lv]) {
    let used: u64 = lvs.iter().map(|lv| lv.size_bytes).sum();
    let vgs = json!({"report": [{"vg": [{
        "vg_name": vg, "vg_size": vg_bytes.to_string(), "vg_free": (vg_bytes - used).to_string(),
        "vg_extent_size": (4u64 << 20).to_string()}]}]});
    let lv_rows: Vec<Value> = lvs
        .iter()
        .map(|lv| {
            assert_eq!(lv.vg, vg, "an LV of another VG in the report of {vg}");
            let data_percent = lv
                .data_used_ratio
                .map(|ratio| format!("{:.2}", ratio * 100.0))
                .unwrap_or_default();
            json!({"vg_name": lv.vg, "lv_name": lv.name, "lv_size": lv.size_bytes.to_string(),
                   "lv_attr": lv.attr, "segtype": lv.segtype, "pool_lv": lv.pool_lv,
                   "lv_parent": lv.parent, "data_percent": data_percent,
                   "lv_tags": lv.tags.join(",")})
        })
        .collect();
    let lvs = json!({"report": [{"lv": lv_rows}]});
    std::fs::write(
        path,
        format!(
            "{}\n{}\n",
            serde_json::to_string_pretty(&vgs).unwrap(),
            serde_json::to_string_pretty(&lvs).unwrap()
        ),
    )
    .unwrap();
}
