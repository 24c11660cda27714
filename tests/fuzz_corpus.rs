//! Replays the fuzz corpus seeds and every input that ever crashed a target
//! (`fuzz/regressions/<target>/`) through the fuzz entry points, on every run of the test suite:
//! a cheap, deterministic guard that what was fixed stays fixed. The long fuzz runs themselves
//! are `scripts/fuzz`.

use std::path::Path;

use nova_lvm_exporter::fuzzing::TARGETS;

const FUZZ: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz");

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_seed_and_regression_input_runs_without_panicking() {
    let mut replayed = 0;
    for (name, entry) in TARGETS {
        let seeds = inputs(&Path::new(FUZZ).join("corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} has no seed");
        let regressions = inputs(&Path::new(FUZZ).join("regressions").join(name));
        for input in seeds.iter().chain(&regressions) {
            let data = std::fs::read(input).unwrap();
            let outcome = std::panic::catch_unwind(|| entry(&data));
            assert!(outcome.is_ok(), "{name} panicked on {}", input.display());
            replayed += 1;
        }
    }
    assert!(replayed >= TARGETS.len());
}

#[test]
fn every_target_has_a_fuzz_binary() {
    let manifest = std::fs::read_to_string(Path::new(FUZZ).join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} missing from fuzz/Cargo.toml"
        );
        assert!(Path::new(FUZZ)
            .join(format!("fuzz_targets/{name}.rs"))
            .exists());
    }
}
