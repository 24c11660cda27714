//! The status page at `/`, rendered by a real headless Chromium (Debian's `chromium`) against the
//! exporter on a real loop VG: the figures, the bar chart, the collection time and escaped
//! collector errors are in the rendered DOM, a screenshot is taken (and, with
//! `NOVA_LVM_UPDATE_SCREENSHOTS=1`, kept as `docs/status-page.png`), and page views never run LVM
//! beside the scrapes' shared collection.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;

const UUID_A: &str = "3f5e6c1a-1111-2222-3333-444455556666";
const UUID_GONE: &str = "0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6";

/// Runs headless Chromium as the test machines allow (root: no sandbox) with a fresh profile.
fn chromium(args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The text between `<tag ...attrs...>` with `needle` in its attributes and the closing `<`.
fn element_text<'a>(dom: &'a str, needle: &str) -> &'a str {
    let at = dom
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in the rendered page:\n{dom}"));
    let rest = &dom[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap() + start;
    &rest[start..end]
}

/// A command prefix that counts LVM invocations in `log`, then runs the command.
fn counting_prefix(dir: &Path, log: &Path) -> String {
    let script = dir.join("count-lvm");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$1\" >> {}\nexec \"$@\"\n", log.display()),
    )
    .unwrap();
    Command::new("chmod")
        .args(["+x", script.to_str().unwrap()])
        .status()
        .unwrap();
    script.display().to_string()
}

#[test]
fn the_status_page_shows_the_account_and_the_chart_in_chromium() {
    if !lvm_available("status page") || !programs_available("status page", &["chromium"]) {
        return;
    }
    let vg = LoopVg::new("web", 20);
    vg.create_lv(&format!("{UUID_A}_disk"), "6G");
    vg.create_lv("someone_elses_lv", "8G");
    vg.create_lv(&format!("{UUID_GONE}_disk"), "2G");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nova.conf");
    write_nova_conf(&conf, &vg.name, 1024);
    let xml = dir.path().join("qemu");
    write_domains(
        &xml,
        &vg.name,
        &[Domain {
            uuid: UUID_A,
            name: "web-01",
            root_gb: 6,
            ephemeral_gb: 0,
            swap_mb: 0,
            boot_from_volume: false,
        }],
    );
    let calls = dir.path().join("lvm-calls.log");
    let exporter = Exporter::start(&[
        format!("--nova.config-file={}", conf.display()),
        format!("--collector.libvirt.xml-dir={}", xml.display()),
        format!(
            "--collector.lvm.command-prefix={}",
            counting_prefix(dir.path(), &calls)
        ),
    ]);
    let url = format!("http://127.0.0.1:{}/", exporter.port);

    // A scrape, then page views: they show the scrape's collection instead of running LVM.
    let m = exporter.scrape();
    let runs = || {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let after_scrape = runs();
    assert_eq!(after_scrape, 1, "one collection is one lvm fullreport");
    let dom = chromium(&["--dump-dom", &url]);
    for _ in 0..3 {
        let (status, _) = get(exporter.port, "/").unwrap();
        assert_eq!(status, 200);
    }
    assert_eq!(runs(), after_scrape, "page views ran LVM beside the scrape");

    let vg_label = format!("vg=\"{}\"", vg.name);
    let figure = |name: &str| -> i64 {
        let needle = format!("data-figure=\"{name}\" data-bytes=\"");
        let at = dom
            .find(&needle)
            .unwrap_or_else(|| panic!("{name} not on the page:\n{dom}"));
        let rest = &dom[at + needle.len()..];
        rest[..rest.find('"').unwrap()].parse().unwrap()
    };
    // The page and the metrics come from the same collection: they agree to the byte.
    assert_eq!(figure("size"), VG_20G_BYTES as i64);
    assert_eq!(figure("raw-used"), (16 * GIB) as i64);
    assert_eq!(
        figure("drift") as f64,
        m.value(&format!("nova_lvm_drift_bytes{{{vg_label}}}"))
    );
    assert_eq!(figure("drift"), (10 * GIB) as i64);
    assert_eq!(figure("cause-foreign"), (8 * GIB) as i64);
    assert_eq!(figure("cause-orphan"), (2 * GIB) as i64);
    assert_eq!(
        figure("corrected-free") as f64,
        m.value(&format!("nova_lvm_corrected_free_bytes{{{vg_label}}}"))
    );
    assert_eq!(
        figure("scheduler-free") as f64,
        m.value(&format!(
            "nova_lvm_scheduler_free_bytes{{source=\"libvirt\",{vg_label}}}"
        ))
    );
    assert_eq!(element_text(&dom, "data-figure=\"drift\""), "10.00 GiB");
    assert_eq!(
        element_text(&dom, "data-figure=\"cause-foreign\""),
        "8.00 GiB"
    );
    assert_eq!(
        element_text(&dom, "data-figure=\"recommended-reserved-mb\""),
        m.value(&format!(
            "nova_lvm_recommended_reserved_host_disk_bytes{{{vg_label}}}"
        ))
        .div_euclid(1048576.0)
        .to_string()
    );
    assert!(dom.contains("<code>someone_elses_lv</code>"), "{dom}");
    // The page opens with the verdict: the untracked 10 GiB (8 foreign, 2 orphan) of this
    // 20 GiB VG, its largest LV, the orphan, and what to do; then the collectors.
    let verdict_at = dom
        .find("<section id=\"verdict\"")
        .expect("a verdict section");
    assert!(verdict_at < dom.find("id=\"collectors\"").unwrap(), "{dom}");
    let verdict = &dom[verdict_at..verdict_at + dom[verdict_at..].find("</section>").unwrap()];
    assert!(!verdict.contains("data-problems=\"0\""), "{verdict}");
    assert!(
        verdict.contains("the largest is someone_elses_lv (foreign, 8.00 GiB)"),
        "{verdict}"
    );
    assert!(
        verdict.contains("1 orphaned instance disk LV(s)"),
        "{verdict}"
    );
    assert!(verdict.contains("What to do:"), "{verdict}");
    // LV ages, as report gives them.
    assert!(
        dom.contains("<td class=\"age\">less than a minute ago</td>")
            || dom.contains("<td class=\"age\">1 minute ago</td>"),
        "{dom}"
    );
    // How LVM was read: behind a command prefix, by exec.
    assert!(
        dom.contains(&format!(
            "<tr><td>{}</td><td class=\"muted\">exec</td><td>command_prefix</td></tr>",
            vg.name
        )),
        "{dom}"
    );
    // The chart: four bars with the figures, and the VG size line.
    assert!(
        dom.contains(&format!("<svg id=\"chart-{}\"", vg.name)),
        "{dom}"
    );
    for (class, bytes) in [
        ("bar-raw", 16 * GIB as i64),
        ("bar-tracked", 6 * GIB as i64),
        ("bar-corrected", figure("corrected-free")),
        ("bar-scheduler", figure("scheduler-free")),
    ] {
        assert!(
            dom.contains(&format!("<rect class=\"{class}\" data-bytes=\"{bytes}\"")),
            "{class} bar with {bytes} missing:\n{dom}"
        );
    }
    assert!(dom.contains("class=\"size\""), "{dom}");
    let collected = element_text(&dom, "id=\"collected-at\"");
    assert!(
        collected.starts_with("20") && collected.ends_with('Z'),
        "{collected}"
    );
    assert!(dom.contains("href=\"/metrics\""), "{dom}");

    let shot_dir = tempfile::tempdir().unwrap();
    let shot = shot_dir.path().join("status-page.png");
    chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1100,1500",
        &url,
    ]);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot"
    );
    if std::env::var("NOVA_LVM_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/docs/status-page.png"),
            &png,
        )
        .unwrap();
    }

    // A collector error is shown, escaped: a file name that is HTML must stay text.
    std::fs::write(xml.join("<img src=x onerror=alert(1)>.xml"), "<domain>").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(10_500));
    let dom = chromium(&["--dump-dom", &url]);
    assert!(
        !dom.contains("<img"),
        "unescaped HTML from an error:\n{dom}"
    );
    assert!(
        dom.contains("&lt;img src=x onerror=alert(1)&gt;.xml"),
        "{dom}"
    );
    assert!(dom.contains("<td class=\"failed\">FAILED</td>"), "{dom}");
    assert!(
        dom.contains("1 problem. It is: The libvirt collector failed: ")
            || dom.contains("problems. The first: The libvirt collector failed: "),
        "the verdict puts the failure first:\n{dom}"
    );
    assert!(
        dom.contains("No derived figures: the primary tracked source libvirt failed"),
        "{dom}"
    );
}
