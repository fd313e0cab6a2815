//! The HTML report in a real browser: `cargo xtask report` renders a stored results document,
//! headless Chromium (Debian's `chromium`) takes a screenshot, and the screenshot must show
//! the version × variant grid in its three status colours.

use std::{fs, process::Command};

use camino::{Utf8Path, Utf8PathBuf};

fn repo() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_owned()
}

/// Pixels of each colour in an RGB(A) PNG.
fn count_colours(png_path: &Utf8Path, colours: &[[u8; 3]]) -> Vec<usize> {
    let decoder = png::Decoder::new(fs::File::open(png_path).expect("screenshot exists"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    assert!(channels >= 3, "an RGB screenshot, got {:?}", info.color_type);
    let mut counts = vec![0; colours.len()];
    for px in buf[..info.buffer_size()].chunks(channels) {
        for (i, c) in colours.iter().enumerate() {
            if px[..3] == c[..] {
                counts[i] += 1;
            }
        }
    }
    counts
}

#[test]
fn the_grid_shows_in_a_browser() {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("headless Chromium is needed: apt-get install chromium (.ci/run does)");
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = Utf8PathBuf::try_from(tmp.path().to_path_buf()).expect("utf-8");
    // As the CI conclusion job has them: one downloaded artifact per cell job.
    let artifacts = work.join("artifacts/cell-3.13.5-debug/report");
    fs::create_dir_all(&artifacts).expect("mkdir");
    fs::copy(repo().join("crates/report/test_data/report.json"), artifacts.join("report.json"))
        .expect("copy the stored document");

    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--work-dir", work.as_str(), "report", "--merge"])
        .arg(work.join("artifacts"))
        .arg("--summary")
        .arg(work.join("summary.md"))
        .arg("--annotations")
        .output()
        .expect("xtask runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("::error file=tests/test_refbugs.py,title=3.13.5+debug ref-leak::"),
        "{stdout}"
    );
    assert!(stdout.contains("merged 1 report.json file(s)"), "{stdout}");
    let check = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--work-dir", work.as_str(), "report", "--check"])
        .output()
        .expect("xtask runs");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success(), "--check fails on a document with problems");
    assert!(
        stderr.contains(
            "4 of 5 cells are not ok: 3.13.5+broken (build-failed), 3.13.5+debug (findings)"
        ),
        "{stderr}"
    );
    let page = work.join("report/report.html");
    let summary = fs::read_to_string(work.join("summary.md")).expect("step summary");
    let junit = fs::read_to_string(work.join("report/junit.xml")).expect("junit.xml");
    for needle in ["3.13.5+valgrind", "test_use_after_free"] {
        assert!(summary.contains(needle) && junit.contains(needle), "{needle} in every rendering");
    }

    let shot = work.join("grid.png");
    let out = Command::new(chromium)
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
            "--window-size=1000,700",
        ])
        .arg(format!("--user-data-dir={}", work.join("profile")))
        .arg(format!("--screenshot={shot}"))
        .arg(format!("file://{page}"))
        .output()
        .expect("chromium runs");
    assert!(shot.is_file(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    // The stylesheet's colours: ok, findings, failed (build failed / promise broken).
    let [ok, findings, failed] = [[0xc8, 0xf0, 0xc8], [0xff, 0xe0, 0x8a], [0xf4, 0xa6, 0xa6]];
    let counts = count_colours(&shot, &[ok, findings, failed]);
    // One ok cell, two with findings, two failed: each at least a cell's area (~100×35 px).
    assert!(counts[0] > 2_000, "the ok cell is green: {counts:?}");
    assert!(counts[1] > 2 * 2_000, "two cells with findings are yellow: {counts:?}");
    assert!(counts[2] > 2 * 2_000, "two failed cells are red: {counts:?}");
}
