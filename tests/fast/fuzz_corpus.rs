//! Replays the fuzz corpus seeds and every input that ever crashed a target
//! (`fuzz/regressions/<target>/`) through the fuzz entry points, on every run of the test suite:
//! a cheap, deterministic guard that what was fixed stays fixed. Then a short mutation smoke run
//! with proptest (a few thousand mutations of the seeds per target, on stable Rust, no
//! sanitizer; a panic is shrunk and its seed kept). The long coverage-guided runs are
//! `scripts/fuzz`.

use std::cell::Cell;
use std::path::Path;

use nova_lvm_exporter::fuzzing::TARGETS;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{TestCaseError, TestRunner};

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

/// One edit of an input. Positions are [`Index`]es, resolved against the input's length when
/// the edit is applied (an edit that needs bytes an empty input lacks leaves it as it is).
#[derive(Debug, Clone)]
enum Edit {
    /// Flips bit `bit` of one byte.
    FlipBit { byte: Index, bit: u8 },
    /// Inserts a token of [`INTERESTING`].
    Insert { at: Index, token: &'static [u8] },
    /// Removes 1 to 16 bytes.
    Remove { at: Index, len: usize },
    /// Cuts the input.
    Truncate { at: Index },
    /// Inserts 1 to 64 bytes of the other seed.
    Splice { at: Index, from: Index, len: usize },
    /// Swaps two bytes.
    Swap { a: Index, b: Index },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(byte, bit)| Edit::FlipBit { byte, bit }),
        (any::<Index>(), select(INTERESTING)).prop_map(|(at, token)| Edit::Insert { at, token }),
        (any::<Index>(), 1..=16usize).prop_map(|(at, len)| Edit::Remove { at, len }),
        any::<Index>().prop_map(|at| Edit::Truncate { at }),
        (any::<Index>(), any::<Index>(), 1..=64usize).prop_map(|(at, from, len)| Edit::Splice {
            at,
            from,
            len
        }),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Swap { a, b }),
    ]
}

/// A mutation: which seed, which other seed to splice from, and 1 to 4 edits.
fn mutation() -> impl Strategy<Value = (Index, Index, Vec<Edit>)> {
    (any::<Index>(), any::<Index>(), vec(edit(), 1..=4))
}

fn mutate(seed: &[u8], other: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for edit in edits {
        let len = data.len();
        match *edit {
            Edit::FlipBit { byte, bit } if len > 0 => data[byte.index(len)] ^= 1 << bit,
            Edit::Insert { at, token } => {
                let at = at.index(len + 1);
                data.splice(at..at, token.iter().copied());
            }
            Edit::Remove { at, len: count } if len > 0 => {
                let at = at.index(len);
                data.drain(at..(at + count).min(len));
            }
            Edit::Truncate { at } => data.truncate(at.index(len + 1)),
            Edit::Splice {
                at,
                from,
                len: count,
            } if !other.is_empty() => {
                let at = at.index(len + 1);
                let from = from.index(other.len());
                let end = (from + count).min(other.len());
                data.splice(at..at, other[from..end].iter().copied());
            }
            Edit::Swap { a, b } if len > 1 => data.swap(a.index(len), b.index(len)),
            _ => {}
        }
    }
    data
}

/// A mutation smoke run with proptest: per target, `NOVA_LVM_FUZZ_SMOKE_ITERATIONS` mutations
/// (default 3,000) of its seeds, each 1 to 4 edits (bit flips, [`INTERESTING`] tokens, cuts,
/// splices of another seed, swaps). A panic is shrunk to the fewest and smallest edits, and its
/// seed is saved under `proptest-regressions/` and replayed first on the next run
/// (`PROPTEST_RNG_SEED` fixes the generator for a repeatable run).
#[test]
fn a_mutation_smoke_run_finds_no_panic() {
    // Seconds of one core at full load, each target within a time budget: not beside the
    // tier's timing tests.
    let _cpu = crate::common::cpu_heavy();
    let iterations: u32 = std::env::var("NOVA_LVM_FUZZ_SMOKE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    // Each target's run stops early after this long (a slow debug build on a busy CI runner):
    // the remaining cases pass at once, unless a failure is being shrunk.
    let budget = std::time::Duration::from_secs(3);
    for (name, entry) in TARGETS {
        let seeds: Vec<Vec<u8>> = inputs(&Path::new(FUZZ).join("corpus").join(name))
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        let config = ProptestConfig {
            cases: iterations,
            source_file: Some(file!()),
            ..ProptestConfig::default()
        };
        let mut runner = TestRunner::new(config);
        let started = std::time::Instant::now();
        let (run, failed) = (Cell::new(0u32), Cell::new(false));
        let result = runner.run(&mutation(), |(seed, other, edits)| {
            if !failed.get() && started.elapsed() > budget && run.get() >= 100 {
                return Ok(());
            }
            run.set(run.get() + 1);
            let data = mutate(
                &seeds[seed.index(seeds.len())],
                &seeds[other.index(seeds.len())],
                &edits,
            );
            let outcome = std::panic::catch_unwind(|| entry(&data));
            if outcome.is_err() {
                failed.set(true);
                return Err(TestCaseError::fail(format!(
                    "{name} panicked on {:?}",
                    String::from_utf8_lossy(&data)
                )));
            }
            Ok(())
        });
        if let Err(failure) = result {
            panic!("{name}: {failure}");
        }
    }
}
