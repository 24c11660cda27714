//! Reading the Grafana dashboards of `dashboards/`: every panel (rows' nested panels included),
//! every query with its panel, the template variables, and the substitution of variables by the
//! values of a test scenario.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value as Json;

/// Variables Grafana itself defines.
pub const BUILTIN_VARIABLES: &[&str] = &[
    "__interval",
    "__interval_ms",
    "__rate_interval",
    "__range",
    "__range_s",
    "__range_ms",
    "__dashboard",
    "__org",
    "__user",
    "__from",
    "__to",
    "__timeFilter",
    "__name",
    "__data",
    "__field",
    "__series",
    "__value",
    "__url_time_range",
    "__all_variables",
];

/// One dashboard file.
pub struct Dashboard {
    /// File name under `dashboards/`.
    pub file: String,
    /// The parsed JSON.
    pub json: Json,
}

/// One query of one panel.
pub struct PanelQuery {
    /// Dashboard file.
    pub file: String,
    /// Panel id.
    pub panel_id: u64,
    /// Panel title.
    pub panel: String,
    /// The target's refId.
    pub ref_id: String,
    /// The PromQL as written in the JSON, variables unsubstituted.
    pub expr: String,
}

/// Every `dashboards/*.json`, sorted by name.
pub fn dashboards() -> Vec<Dashboard> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dashboards/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read dashboard");
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            Dashboard {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                json,
            }
        })
        .collect()
}

impl Dashboard {
    /// Every panel, rows included, nested panels of collapsed rows included.
    pub fn panels(&self) -> Vec<&Json> {
        fn walk<'a>(panels: &'a Json, out: &mut Vec<&'a Json>) {
            for panel in panels.as_array().into_iter().flatten() {
                out.push(panel);
                walk(&panel["panels"], out);
            }
        }
        let mut out = Vec::new();
        walk(&self.json["panels"], &mut out);
        out
    }

    /// Every query of every panel.
    pub fn queries(&self) -> Vec<PanelQuery> {
        self.panels()
            .into_iter()
            .flat_map(|panel| {
                panel["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |target| PanelQuery {
                        file: self.file.clone(),
                        panel_id: panel["id"].as_u64().unwrap_or(0),
                        panel: panel["title"].as_str().unwrap_or("").to_string(),
                        ref_id: target["refId"].as_str().unwrap_or("").to_string(),
                        expr: target["expr"].as_str().unwrap_or("").to_string(),
                    })
            })
            .collect()
    }

    /// The template variables, by name.
    pub fn variables(&self) -> BTreeMap<String, &Json> {
        self.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| (v["name"].as_str().unwrap_or("").to_string(), v))
            .collect()
    }

    /// The names of the `__inputs` (import-time placeholders such as DS_PROMETHEUS).
    pub fn inputs(&self) -> Vec<String> {
        self.json["__inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["name"].as_str().map(str::to_string))
            .collect()
    }
}

/// The variable names a text refers to: `$name`, `${name}`, `${name:format}`, `${name.field}`,
/// `[[name]]`.
pub fn variable_references(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            if bytes.get(i + 1) == Some(&b'{') {
                let end = text[i..].find('}').map(|e| i + e).unwrap_or(bytes.len());
                let inner = &text[i + 2..end];
                let name = inner.split([':', '.']).next().unwrap_or("");
                names.push(name.to_string());
                i = end;
            } else {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && ident(bytes[end]) {
                    end += 1;
                }
                if end > start {
                    names.push(text[start..end].to_string());
                }
                i = end;
            }
        } else if text[i..].starts_with("[[") {
            let end = text[i..].find("]]").map(|e| i + e).unwrap_or(bytes.len());
            names.push(text[i + 2..end].split(':').next().unwrap_or("").to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    names
}

/// Replaces every `$name` / `${name}` of `values` in `expr` (longest names first, so that
/// `$instance` never eats `$instances`).
pub fn substitute(expr: &str, values: &[(&str, &str)]) -> String {
    let mut sorted: Vec<_> = values.to_vec();
    sorted.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut out = expr.to_string();
    for (name, value) in sorted {
        out = out.replace(&format!("${{{name}}}"), value);
        out = out.replace(&format!("${name}"), value);
    }
    out
}

/// The metric names a PromQL expression selects (tokens containing `nova_lvm`, recording-rule
/// names included), label values left out.
pub fn nova_lvm_names(promql: &str) -> Vec<String> {
    // Drop quoted strings: label values and printf formats are not metric names.
    let mut unquoted = String::new();
    let mut quote: Option<char> = None;
    for c in promql.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None => unquoted.push(c),
        }
    }
    unquoted
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.contains("nova_lvm"))
        .map(str::to_string)
        .collect()
}
