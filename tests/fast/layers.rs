//! The source tree's layers, checked: derives the module graph from the `crate::` and `super::`
//! paths in `src/` (product code; each file's `#[cfg(test)] mod tests` is left out) and fails on
//! an import cycle between modules or on an import from a higher layer. The layer order is
//! written once, here, and `src/lib.rs`'s "Layout" section explains it.
//!
//! Below every layer is the workspace's `lvm-metadata` crate (`crates/lvm-metadata`): Cargo
//! already keeps it from importing the exporter. What Cargo cannot see is checked here: which
//! modules use the crate, that none of its dependencies (transitively, from `Cargo.lock`) is an
//! async runtime, an HTTP or a metrics crate, and that no type name is declared in both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules of `src/`, bottom to top. A module may import from its own layer and
/// the ones below it, never from a higher one.
const LAYERS: &[&[&str]] = &[
    // foundation: sizes, text escaping, bounded input, secret redaction, canonical UUIDs,
    // RFC 3339 timestamps
    &["units", "text", "input", "redact", "ident", "time"],
    &["openstack"],
    // sources: raw (LVM) and tracked (nova's view)
    &["lvm", "tracked"],
    // the pure accounting: drift, audit, fit, orphans
    &["accounting"],
    &["collect"],
    &["output"],
    // the HTTP side: server, routes, auth, web configuration and its reload
    &["web"],
    &["config"],
    &["app"],
];

/// The workspace crate below every layer (`crates/lvm-metadata`), as its paths name it.
const METADATA_CRATE: &str = "lvm_metadata";

/// The top-level modules that may use [`METADATA_CRATE`] directly: the raw source, and the fuzz
/// entry points. Every other layer sees LVM through `crate::lvm`.
const METADATA_CRATE_USERS: &[&str] = &["lvm", "fuzzing"];

/// Crates the metadata crate must not depend on, even indirectly (its dev-dependencies too:
/// `Cargo.lock` does not tell them apart): it is the synchronous reader, usable without the
/// exporter's runtime, server, metrics or HTTP client.
const METADATA_CRATE_FORBIDDEN: &[&str] = &[
    "tokio",
    "axum",
    "hyper",
    "hyper-util",
    "prometheus",
    "reqwest",
    "async-trait",
    "futures",
];

/// Modules outside the layers: fuzz entry points may reach any layer (they are built only with
/// the `fuzzing` feature, never in a release).
const UNLAYERED: &[&str] = &["fuzzing"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn metadata_crate_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/lvm-metadata/src")
}

/// `src/lvm/exec.rs` -> `lvm::exec`; `src/lvm/mod.rs` -> `lvm`; `lib.rs` and `main.rs` -> None.
fn module_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src()).ok()?;
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        return None;
    }
    Some(parts.join("::"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's product code: everything before its unit tests.
fn product_code(text: &str) -> String {
    let mut kept = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines.peek().is_some_and(|next| {
                let next = next.trim_start();
                next.strip_prefix("pub(crate) ")
                    .unwrap_or(next)
                    .starts_with("mod tests")
            })
        {
            break;
        }
        // Doc and line comments may name paths without importing them.
        if line.trim_start().starts_with("//") {
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// Expands a use tree starting right after `crate::` (or a resolved `super::`): `a::{b, c::d}`
/// -> `a::b`, `a::c::d`. Stops at the first character that cannot continue a path.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) -> usize {
    let bytes = tree.as_bytes();
    let mut i = 0;
    let mut path = prefix.to_string();
    loop {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i > start {
            if !path.is_empty() {
                path.push_str("::");
            }
            path.push_str(&tree[start..i]);
        }
        if tree[i..].starts_with("::{") {
            i += 3;
            loop {
                while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'}' {
                    i += 1;
                    break;
                }
                i += expand(&tree[i..], &path, out);
            }
            return i;
        }
        if tree[i..].starts_with("::") {
            i += 2;
            continue;
        }
        out.push(path);
        return i;
    }
}

/// Every `crate::...` path in `code`, and every `super::...` path resolved against `module`.
fn paths_used(code: &str, module: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let parent: Vec<&str> = {
        let mut parts: Vec<&str> = module.split("::").collect();
        parts.pop();
        parts
    };
    for (marker, prefix) in [("crate::", String::new()), ("super::", parent.join("::"))] {
        let mut rest = code;
        while let Some(at) = rest.find(marker) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + marker.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(tree) = rest.strip_prefix('{') {
                let mut i = 0;
                let bytes = tree.as_bytes();
                loop {
                    while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
                        i += 1;
                    }
                    if i >= bytes.len() || bytes[i] == b'}' {
                        break;
                    }
                    i += expand(&tree[i..], &prefix, &mut paths);
                }
            } else {
                expand(rest, &prefix, &mut paths);
            }
        }
    }
    paths
}

/// The module graph: module -> the modules it imports (the longest module prefix of each path).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeMap<String, PathBuf> = files
        .iter()
        .filter_map(|f| module_of(f).map(|m| (m, f.clone())))
        .collect();
    let mut graph = BTreeMap::new();
    for (module, file) in &modules {
        let code = product_code(&std::fs::read_to_string(file).unwrap());
        let mut targets = BTreeSet::new();
        for path in paths_used(&code, module) {
            let parts: Vec<&str> = path.split("::").collect();
            let target = (1..=parts.len())
                .rev()
                .map(|n| parts[..n].join("::"))
                .find(|candidate| modules.contains_key(candidate));
            if let Some(target) = target {
                // A module naming its own submodules or itself is structure, not a dependency.
                if target != *module && !target.starts_with(&format!("{module}::")) {
                    targets.insert(target);
                }
            }
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap()
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&top(module)))
}

/// One cycle in `graph`, if there is any, as the list of modules around it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|m| m == next).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(next, graph, state, stack) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(node, graph, &mut state, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

#[test]
fn every_top_level_module_has_a_layer() {
    let unplaced: BTreeSet<String> = graph()
        .keys()
        .map(|m| top(m).to_string())
        .filter(|m| layer_of(m).is_none() && !UNLAYERED.contains(&m.as_str()))
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules in no layer (add them to LAYERS in tests/fast/layers.rs and to the Layout in src/lib.rs): {unplaced:?}"
    );
}

#[test]
fn no_module_imports_from_a_higher_layer() {
    let mut violations = Vec::new();
    for (module, targets) in graph() {
        let Some(own) = layer_of(&module) else {
            continue;
        };
        for target in targets {
            if let Some(theirs) = layer_of(&target) {
                if theirs > own {
                    violations.push(format!(
                        "{module} (layer {own}) imports {target} (layer {theirs})"
                    ));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph();
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
    // Between top-level modules too: a -> b::x and b -> a::y is a cycle of layers.
    let mut tops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, targets) in &graph {
        let entry = tops.entry(top(module).to_string()).or_default();
        for target in targets {
            if top(target) != top(module) {
                entry.insert(top(target).to_string());
            }
        }
    }
    if let Some(cycle) = find_cycle(&tops) {
        panic!(
            "import cycle between top-level modules: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_path_scanner_reads_grouped_and_relative_imports() {
    let code = "use crate::{lvm::{self, report}, tracked};\nuse super::owner::Owner;\nlet x = crate::accounting::f();\nmy_crate::nothing();";
    let mut paths = paths_used(code, "lvm::exec");
    paths.sort();
    assert_eq!(
        paths,
        [
            "accounting::f",
            "lvm::owner::Owner",
            "lvm::report",
            "lvm::self",
            "tracked"
        ]
    );
}

#[test]
fn unit_tests_are_left_out_whatever_their_visibility() {
    for tests in ["mod tests {", "pub(crate) mod tests {"] {
        let code =
            format!("use crate::units::GIB;\n#[cfg(test)]\n{tests}\n    use crate::app;\n}}\n");
        assert_eq!(product_code(&code), "use crate::units::GIB;\n");
    }
}

/// The name a top-level item declaration gives a type (`pub struct Foo<T>` -> `Foo`), if the
/// line declares one; indented lines (associated types, local items) are not top-level.
fn declared_type(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("pub ")
        .or_else(|| line.strip_prefix("pub(crate) "))
        .unwrap_or(line);
    let name = ["struct ", "enum ", "trait ", "type "]
        .iter()
        .find_map(|keyword| rest.strip_prefix(keyword))?;
    let end = name
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(name.len());
    Some(&name[..end])
}

/// `crates/lvm-metadata/src/vg.rs` -> `lvm_metadata::vg`; its `lib.rs` -> `lvm_metadata`.
fn metadata_crate_module_of(path: &Path) -> String {
    let relative = path
        .strip_prefix(metadata_crate_src())
        .unwrap()
        .with_extension("");
    match relative.to_string_lossy().as_ref() {
        "lib" => METADATA_CRATE.to_string(),
        module => format!("{METADATA_CRATE}::{}", module.replace('/', "::")),
    }
}

#[test]
fn no_two_modules_declare_a_type_of_the_same_name() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut crate_files = Vec::new();
    rust_files(&metadata_crate_src(), &mut crate_files);
    let mut declared: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let modules = files
        .iter()
        .filter_map(|file| Some((module_of(file)?, file)))
        .chain(
            crate_files
                .iter()
                .map(|file| (metadata_crate_module_of(file), file)),
        );
    for (module, file) in modules {
        for line in product_code(&std::fs::read_to_string(file).unwrap()).lines() {
            if let Some(name) = declared_type(line) {
                declared
                    .entry(name.to_string())
                    .or_default()
                    .push(module.clone());
            }
        }
    }
    let shared: Vec<String> = declared
        .iter()
        .filter(|(_, modules)| modules.len() > 1)
        .map(|(name, modules)| format!("{name}: {}", modules.join(", ")))
        .collect();
    assert!(
        shared.is_empty(),
        "type names declared twice:\n{}",
        shared.join("\n")
    );
    assert_eq!(declared_type("pub(crate) enum Status {"), Some("Status"));
    assert_eq!(declared_type("    type Value = Vec<Entry>;"), None);
}

/// Whether `code` names a path of the crate called `name` (`name::...`, not `my_name::...`).
fn names_crate(code: &str, name: &str) -> bool {
    let marker = format!("{name}::");
    code.match_indices(&marker).any(|(at, _)| {
        !code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    })
}

#[test]
fn only_the_raw_source_uses_the_metadata_crate() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut users: BTreeSet<String> = BTreeSet::new();
    for file in &files {
        let code = product_code(&std::fs::read_to_string(file).unwrap());
        if names_crate(&code, METADATA_CRATE) {
            users.insert(module_of(file).unwrap_or_else(|| "lib".into()));
        }
    }
    let others: Vec<&String> = users
        .iter()
        .filter(|module| !METADATA_CRATE_USERS.contains(&top(module)))
        .collect();
    assert!(
        others.is_empty(),
        "modules that use {METADATA_CRATE} directly instead of through crate::lvm: {others:?}"
    );
    assert!(
        users.iter().any(|module| top(module) == "lvm"),
        "no module of lvm uses {METADATA_CRATE}: is the path scan broken? {users:?}"
    );
    assert!(names_crate("use lvm_metadata::text;", METADATA_CRATE));
    assert!(!names_crate("use my_lvm_metadata::text;", METADATA_CRATE));
}

/// The dependencies of each package in `Cargo.lock`, by name (Cargo writes the file one key or
/// list item per line: `name = "x"`, then `dependencies = [`, ` "a",`, ` "b 1.0.2",`, `]`).
fn locked_dependencies() -> BTreeMap<String, Vec<String>> {
    let lock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap();
    let mut dependencies: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut package, mut in_list) = (String::new(), false);
    for line in lock.lines() {
        if let Some(name) = line.strip_prefix("name = ") {
            package = name.trim_matches('"').to_string();
            dependencies.entry(package.clone()).or_default();
        } else if line == "dependencies = [" {
            in_list = true;
        } else if line == "]" {
            in_list = false;
        } else if in_list {
            // "name" or "name version" when two versions are locked.
            let item = line.trim().trim_end_matches(',').trim_matches('"');
            let name = item.split(' ').next().unwrap().to_string();
            dependencies.get_mut(&package).unwrap().push(name);
        }
    }
    dependencies
}

#[test]
fn the_metadata_crate_depends_on_no_runtime_http_or_metrics_crate() {
    let dependencies = locked_dependencies();
    let mut reached = BTreeSet::new();
    let mut pending = vec!["lvm-metadata".to_string()];
    while let Some(package) = pending.pop() {
        let of = dependencies
            .get(&package)
            .unwrap_or_else(|| panic!("{package} is not in Cargo.lock"));
        for dependency in of {
            if reached.insert(dependency.clone()) {
                pending.push(dependency.clone());
            }
        }
    }
    let forbidden: Vec<&String> = reached
        .iter()
        .filter(|name| METADATA_CRATE_FORBIDDEN.contains(&name.as_str()))
        .collect();
    assert!(
        forbidden.is_empty(),
        "lvm-metadata depends on {forbidden:?} (all its dependencies: {reached:?})"
    );
    assert!(
        !reached.contains("nova-lvm-exporter"),
        "lvm-metadata depends on the exporter"
    );
    assert!(
        dependencies["nova-lvm-exporter"].contains(&"lvm-metadata".to_string()),
        "the exporter no longer uses lvm-metadata: is Cargo.lock read right?"
    );
}
