//! The exporter keeps glibc's allocator to one arena (`one_malloc_arena` in src/main.rs: RSS
//! high-water 15 MB instead of 20 MB at 2,000 LVs, docs/performance.md), and an operator's
//! `MALLOC_ARENA_MAX` wins over it. glibc makes each arena beyond the main one a heap of its own:
//! a 64 MiB anonymous reservation, mostly inaccessible (`---p`), which `/proc/PID/maps` shows.

use crate::common;

use std::sync::Arc;

use common::*;

/// Scrapes from 8 threads at once, so that the runtime's workers and the blocking threads all
/// allocate, then counts the heaps of arenas other than the main one: anonymous inaccessible
/// mappings of 16 MiB or more (a thread stack's guard is one page).
fn arena_heaps_after_concurrent_scrapes(env: &[(&str, &str)]) -> usize {
    let exporter = Arc::new(Exporter::start_with_env(&example_host_args(&[]), env));
    let scrapers: Vec<_> = (0..8)
        .map(|_| {
            let exporter = Arc::clone(&exporter);
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let (status, _) = get(exporter.port, "/metrics").expect("scrape");
                    assert_eq!(status, 200);
                    let (status, _) = get(exporter.port, "/").expect("status page");
                    assert_eq!(status, 200);
                }
            })
        })
        .collect();
    for scraper in scrapers {
        scraper.join().expect("scraper");
    }
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", exporter.pid())).expect("maps");
    maps.lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some((start, end)) = fields[0].split_once('-') else {
                return false;
            };
            let size =
                u64::from_str_radix(end, 16).unwrap() - u64::from_str_radix(start, 16).unwrap();
            fields[1] == "---p" && fields.len() == 5 && size >= 16 << 20
        })
        .count()
}

#[test]
fn the_exporter_allocates_from_one_malloc_arena() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        eprintln!("SKIP the_exporter_allocates_from_one_malloc_arena: glibc only");
        return;
    }
    assert_eq!(arena_heaps_after_concurrent_scrapes(&[]), 0);
}

#[test]
fn an_operators_malloc_arena_max_wins() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        eprintln!("SKIP an_operators_malloc_arena_max_wins: glibc only");
        return;
    }
    // With more arenas allowed, the threads that allocate get heaps of their own: which also
    // shows that the count above can see them.
    assert!(arena_heaps_after_concurrent_scrapes(&[("MALLOC_ARENA_MAX", "8")]) >= 1);
}
