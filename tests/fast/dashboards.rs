//! The Grafana dashboards of `dashboards/`, checked by structure (no Grafana here): importable
//! (`__inputs`, current schema), unique uids and panel ids, panels on the grid without overlap,
//! every datasource reference resolving to the declared input/variable, every `$variable`
//! defined, every selected series exported or recorded, and `dashboards/README.md` showing every panel's
//! PromQL. That each query parses and returns data is checked against a real Prometheus in
//! `tests/stack/e2e_alerting.rs`.

use crate::common;

use std::collections::BTreeSet;

use common::grafana::{dashboards, nova_lvm_names, variable_references, BUILTIN_VARIABLES};
use serde_json::Value as Json;

const DS: &str = "${DS_PROMETHEUS}";

#[test]
fn there_are_a_fleet_a_host_and_a_health_dashboard() {
    let uids: Vec<String> = dashboards()
        .iter()
        .map(|d| d.json["uid"].as_str().unwrap_or("").to_string())
        .collect();
    for uid in [
        "nova-lvm-fleet",
        "nova-lvm-host",
        "nova-lvm-exporter-health",
    ] {
        assert!(uids.contains(&uid.to_string()), "{uid} missing: {uids:?}");
    }
    let unique: BTreeSet<_> = uids.iter().collect();
    assert_eq!(unique.len(), uids.len(), "dashboard uids must be unique");
}

#[test]
fn dashboards_are_importable_with_a_datasource_input_and_current_schema() {
    for d in dashboards() {
        let j = &d.json;
        let file = &d.file;
        let schema = j["schemaVersion"].as_u64().unwrap_or(0);
        assert!(
            (36..=41).contains(&schema),
            "{file}: schemaVersion {schema}"
        );
        assert!(j["id"].is_null(), "{file}: id must be null for import");
        assert!(
            j["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("nova-lvm / ")),
            "{file}: title"
        );
        assert!(
            j["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "nova-lvm")),
            "{file}: tag nova-lvm (the dashboards link each other by it)"
        );
        let input = j["__inputs"]
            .as_array()
            .and_then(|inputs| inputs.iter().find(|i| i["name"] == "DS_PROMETHEUS"))
            .unwrap_or_else(|| panic!("{file}: __inputs lacks DS_PROMETHEUS"));
        assert_eq!(input["type"], "datasource", "{file}");
        assert_eq!(input["pluginId"], "prometheus", "{file}");
        // Provisioned from files (no import step), the same reference resolves to this variable.
        let vars = d.variables();
        let ds = vars
            .get("DS_PROMETHEUS")
            .unwrap_or_else(|| panic!("{file}: no DS_PROMETHEUS datasource variable"));
        assert_eq!(ds["type"], "datasource", "{file}");
        assert_eq!(ds["query"], "prometheus", "{file}");
        assert!(vars.contains_key("job"), "{file}: variable job");
    }
}

/// Every object under a "datasource" key, with where it was found.
fn datasource_refs<'a>(value: &'a Json, path: String, out: &mut Vec<(String, &'a Json)>) {
    match value {
        Json::Object(map) => {
            for (k, v) in map {
                let here = format!("{path}/{k}");
                if k == "datasource" {
                    out.push((here.clone(), v));
                }
                datasource_refs(v, here, out);
            }
        }
        Json::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                datasource_refs(v, format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_datasource_reference_resolves_to_the_declared_input_and_variable() {
    for d in dashboards() {
        let inputs = d.inputs();
        let vars = d.variables();
        let mut refs = Vec::new();
        datasource_refs(&d.json, String::new(), &mut refs);
        assert!(!refs.is_empty());
        for (path, ds) in refs {
            if ds["type"] == "grafana" && path.starts_with("/annotations/") {
                continue; // Grafana's own annotations
            }
            assert_eq!(ds["type"], "prometheus", "{}{path}: {ds}", d.file);
            let uid = ds["uid"].as_str().unwrap_or("");
            assert_eq!(uid, DS, "{}{path}: datasource {ds}", d.file);
            let name = uid.trim_start_matches("${").trim_end_matches('}');
            assert!(
                inputs.iter().any(|i| i == name)
                    && vars.get(name).is_some_and(|v| v["type"] == "datasource"),
                "{}{path}: {uid} is neither input nor datasource variable",
                d.file
            );
        }
    }
}

#[test]
fn panel_ids_are_unique_and_panels_sit_on_the_grid_without_overlap() {
    for d in dashboards() {
        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(String, u64, u64, u64, u64)> = Vec::new();
        for panel in d.panels() {
            let id = panel["id"].as_u64().expect("numeric panel id");
            let title = panel["title"].as_str().unwrap_or("").to_string();
            assert!(ids.insert(id), "{}: panel id {id} twice", d.file);
            assert!(!title.is_empty(), "{}: panel {id} has no title", d.file);
            let g = &panel["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(w > 0 && h > 0 && x + w <= 24, "{}: {title} {g}", d.file);
            for (other, ox, oy, ow, oh) in &boxes {
                let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
                assert!(!overlap, "{}: {title} overlaps {other}", d.file);
            }
            boxes.push((title.clone(), x, y, w, h));
            if panel["type"] == "row" {
                continue;
            }
            assert!(
                panel["description"].as_str().is_some_and(|s| s.len() > 10),
                "{}: {title} needs a description (what it answers)",
                d.file
            );
            let targets = panel["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{}: {title} has no query", d.file);
            let ref_ids: BTreeSet<_> = targets.iter().map(|t| t["refId"].to_string()).collect();
            assert_eq!(ref_ids.len(), targets.len(), "{}: {title} refIds", d.file);
            for t in targets {
                assert!(
                    t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                    "{}: {title} has an empty query",
                    d.file
                );
            }
        }
    }
}

/// Every string in the JSON, with its path.
fn strings<'a>(value: &'a Json, path: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Json::String(s) => out.push((path, s)),
        Json::Object(map) => {
            for (k, v) in map {
                strings(v, format!("{path}/{k}"), out);
            }
        }
        Json::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                strings(v, format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_variable_used_is_defined_and_defined_before_use() {
    for d in dashboards() {
        let vars = d.variables();
        let inputs = d.inputs();
        let mut all = Vec::new();
        strings(&d.json, String::new(), &mut all);
        for (path, text) in all {
            for name in variable_references(text) {
                assert!(
                    vars.contains_key(&name)
                        || inputs.contains(&name)
                        || BUILTIN_VARIABLES.contains(&name.as_str()),
                    "{}{path}: ${name} is not defined ({text})",
                    d.file
                );
            }
        }
        // A variable's query may only use variables defined before it.
        let order: Vec<String> = d.variables_in_order();
        for (i, name) in order.iter().enumerate() {
            let var = vars[name];
            let query = var["definition"].as_str().unwrap_or("");
            for used in variable_references(query) {
                let at = order.iter().position(|n| *n == used);
                assert!(
                    at.is_some_and(|at| at < i),
                    "{}: variable {name} uses ${used} defined after it",
                    d.file
                );
            }
        }
    }
    // The host dashboard is driven by job, instance and vg.
    let host = dashboards()
        .into_iter()
        .find(|d| d.json["uid"] == "nova-lvm-host")
        .unwrap();
    let vars = host.variables();
    for name in ["job", "instance", "vg"] {
        assert!(vars.contains_key(name), "host dashboard lacks ${name}");
    }
}

trait InOrder {
    fn variables_in_order(&self) -> Vec<String>;
}

impl InOrder for common::grafana::Dashboard {
    fn variables_in_order(&self) -> Vec<String> {
        self.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v["name"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

fn recorded_series() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/alerts/nova-lvm.rules.yml"
    ))
    .unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
        .map(|r| r.trim().to_string())
        .collect()
}

#[test]
fn panels_select_only_exported_metrics_and_recorded_series() {
    let mut known: BTreeSet<String> = nova_lvm_exporter::output::metrics::documented_families()
        .map(|(name, _)| name.to_string())
        .collect();
    known.extend(recorded_series());
    let mut unknown = Vec::new();
    for d in dashboards() {
        let mut texts: Vec<String> = d.queries().into_iter().map(|q| q.expr).collect();
        for var in d.variables().values() {
            texts.push(var["definition"].as_str().unwrap_or("").to_string());
        }
        for text in texts {
            for name in nova_lvm_names(&text) {
                if !known.contains(&name) {
                    unknown.push(format!("{}: {name} in {text}", d.file));
                }
            }
        }
    }
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
}

#[test]
fn the_dashboards_readme_shows_every_panel_with_its_promql() {
    let section =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/README.md"))
            .unwrap();
    let mut missing = Vec::new();
    for d in dashboards() {
        if !section.contains(&format!("`dashboards/{}`", d.file)) {
            missing.push(format!("dashboard file {}", d.file));
        }
        for panel in d.panels() {
            if panel["type"] == "row" {
                continue;
            }
            let title = panel["title"].as_str().unwrap();
            if !section.contains(&format!("**{title}**")) {
                missing.push(format!("{}: panel **{title}**", d.file));
            }
        }
        for q in d.queries() {
            if !section.contains(&format!("`{}`", q.expr)) {
                missing.push(format!("{}: {}: `{}`", d.file, q.panel, q.expr));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "dashboards/README.md lacks:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_readme_counts_each_dashboards_panels_and_its_provisioning_file_is_well_formed() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/README.md"))
            .unwrap();
    for d in dashboards() {
        let panels = d.panels().iter().filter(|p| p["type"] != "row").count();
        let heading = format!("(`dashboards/{}`, {panels} panels)", d.file);
        assert!(
            readme.contains(&heading),
            "dashboards/README.md must say {heading}"
        );
    }
    let yaml = readme
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a provisioning YAML example");
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).expect("valid YAML");
    assert_eq!(doc["apiVersion"].as_u64(), Some(1), "{yaml}");
    let provider = &doc["providers"][0];
    assert_eq!(provider["type"].as_str(), Some("file"), "{yaml}");
    // The directory scripts/package-deb installs the dashboards in.
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/package-deb"))
            .unwrap();
    let path = provider["options"]["path"].as_str().expect("options.path");
    assert!(
        script.contains(&format!("\"$root{path}\" dashboards/*.json")),
        "the package does not install the dashboards in {path}"
    );
}
