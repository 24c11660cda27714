//! Replays the fuzz corpus seeds and every input that ever crashed a target
//! (`fuzz/regressions/<target>/`) through the fuzz entry points, on every run of the test suite:
//! a cheap, deterministic guard that what was fixed stays fixed. Then a short mutation smoke run
//! (a few thousand seeded mutations of the seeds per target, on stable Rust, no sanitizer). The
//! long coverage-guided runs are `scripts/fuzz`.

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

/// A small deterministic PRNG (xorshift64*): the smoke run is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the formats under test.
const INTERESTING: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\x",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"<",
    b">",
    b"</",
    b"&amp;",
    b"=",
    b"\n  ",
    b"[DEFAULT]",
    b"18446744073709551615",
    b"-1",
    b"99999999999999999999",
    b"\xff\xfe",
    b"_disk",
    b"volume-",
    b"[",
    b"nova:",
    b"xmlns:nova=",
    b"$2y$",
    // LVM's label, metadata area header and text format.
    b"LABELONE",
    b"LVM2 001",
    b" LVM2 x[5A%r0N*>",
    b"\xff\xff\xff\xff\xff\xff\xff\x7f",
    b"\x00\x00\x00\x00",
    b"#",
    b"'",
    b"0777",
    b"1.5e308",
    b"-9223372036854775808",
    b" = ",
    b"segment_count = 2",
    b"type = \"thin-pool\"",
    b"stripes = [\"pv0\", 0]",
    b"status = [\"READ\", \"WRITE\"]",
];

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let token = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(at..at, token.iter().copied());
            }
            2 if at < data.len() => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                data.drain(at..end);
            }
            3 => data.truncate(at),
            4 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(64)).min(other.len());
                data.splice(at..at, other[from..end].iter().copied());
            }
            _ => {
                let len = data.len();
                if len > 1 {
                    let (a, b) = (rng.below(len), rng.below(len));
                    data.swap(a, b);
                }
            }
        }
    }
    data
}

#[test]
fn a_mutation_smoke_run_finds_no_panic() {
    let iterations: usize = std::env::var("NOVA_LVM_FUZZ_SMOKE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    // Each target's run stops early after this long (a slow debug build on a busy CI runner):
    // the same mutations in the same order, only fewer of them.
    let budget = std::time::Duration::from_secs(3);
    for (index, (name, entry)) in TARGETS.into_iter().enumerate() {
        // A generator per target: a run cut short leaves the next target's mutations as they were.
        let mut rng =
            Rng(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1).wrapping_mul(0x0100_0000_01b3));
        let started = std::time::Instant::now();
        let seeds: Vec<Vec<u8>> = inputs(&Path::new(FUZZ).join("corpus").join(name))
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        for i in 0..iterations {
            if started.elapsed() > budget && i >= 100 {
                break;
            }
            let seed = &seeds[rng.below(seeds.len())];
            let other = &seeds[rng.below(seeds.len())];
            let data = mutate(&mut rng, seed, other);
            let outcome = std::panic::catch_unwind(|| entry(&data));
            assert!(
                outcome.is_ok(),
                "{name} panicked on mutation {i}: {:?}",
                String::from_utf8_lossy(&data)
            );
        }
    }
}
