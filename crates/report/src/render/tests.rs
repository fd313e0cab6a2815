//! Snapshot tests of the renderings on a hand-made document with one cell in each state.

use expect_test::{expect, expect_file};

use crate::{
    BuildStatus, BuildStep, CellBuild, CellResults, CheckStatus, Counts, Document, Finding,
    FindingKind, NotJudged, SuiteResult, render,
};

/// A cell's identity from its name.
pub(crate) fn id(name: &str) -> matrix::CellId {
    name.parse().expect("a cell name")
}

/// The project's order of variants (`matrix/variants.toml`).
pub(crate) fn order() -> render::Order {
    let dir = camino::Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix");
    render::Order::new(matrix::Matrix::load(&dir).expect("matrix").variant_order())
}

pub(crate) fn suite(cell: &str, name: &str, findings: Vec<Finding>) -> SuiteResult {
    SuiteResult {
        cell: id(cell),
        suite: name.to_owned(),
        counts: Counts { passed: 4, failed: 0, skipped: 0, ..Default::default() },
        findings,
        modules: [("refbugs._refbugs".to_owned(), "/v/_refbugs.so".to_owned())].into(),
        detectors: vec!["leaks".to_owned()],
        log: format!("/w/cells/{cell}/ext/{name}/test.log").into(),
        seconds: 12,
        gil_enabled: None,
        grew_not_judged: Vec::new(),
        leak_loops: Vec::new(),
        environment: None,
    }
}

fn cell(
    name: &str,
    build: BuildStatus,
    check: CheckStatus,
    suites: Vec<SuiteResult>,
) -> CellResults {
    let (version, variant) = name.split_once('+').expect("cell name");
    CellResults {
        cell: id(name),
        version: version.to_owned(),
        variant: variant.to_owned(),
        key: "8a2d3dc7f0386987aaaa".to_owned(),
        source_sha256: "93e583f2".to_owned(),
        build,
        check,
        suites,
        phases: Default::default(),
        reproducibility: None,
        extra: Default::default(),
    }
}

pub(crate) fn finding(kind: FindingKind, test: &str, message: &str, repro: &str) -> Finding {
    Finding {
        repro: repro.to_owned(),
        ..Finding::new(kind, Some(test.to_owned()), message.to_owned())
    }
}

pub(crate) fn document() -> Document {
    let leak = finding(
        FindingKind::RefLeak,
        "tests/test_refbugs.py::test_leak_new_ref",
        "leaks: refs deltas [2, 2, 2], blocks deltas [3, 3, 3]\n  over 504 more calls: refs linear, blocks linear (refs/blocks per call by batch: 2/3 → 2/3)\n  new tracked objects per call: list +1",
        "cargo xtask test 3.13.5+debug --suite refbugs -k test_leak_new_ref",
    );
    let uaf = finding(
        FindingKind::InvalidMemory,
        "tests/test_refbugs.py::test_use_after_free",
        "Invalid read of size 1\n   at 0x48: use_after_free (_refbugs.c:121)",
        "cargo xtask test 3.13.5+valgrind --suite refbugs -k test_use_after_free",
    );
    let expected_leak = Finding {
        expected: Some("the example leaks on purpose".to_owned()),
        ..finding(
            FindingKind::RefLeak,
            "tests/test_refbugs.py::test_leak_new_ref",
            "leaks: refs deltas [2, 2, 2], blocks deltas [3, 3, 3]",
            "cargo xtask test 3.11.2+debug --suite refbugs -k test_leak_new_ref",
        )
    };
    let mut doc = Document {
        schema_version: crate::SCHEMA_VERSION,
        extra: Default::default(),
        cells: vec![
            cell(
                "3.11.2+debug",
                BuildStatus::Cached,
                CheckStatus::Passed,
                vec![
                    suite("3.11.2+debug", "markupsafe", vec![]),
                    suite("3.11.2+debug", "refbugs", vec![expected_leak]),
                ],
            ),
            cell(
                "3.13.5+debug",
                BuildStatus::Built { seconds: 90 },
                CheckStatus::Passed,
                vec![SuiteResult {
                    grew_not_judged: vec![NotJudged {
                        test: "tests/test_refbugs.py::test_cache".to_owned(),
                        reason: "not re-runnable: its growth stops over 504 more calls (per call \
                                 by batch: refs 2→2→2→2→0.5→0): a bounded cache filling up, not a \
                                 lost reference"
                            .to_owned(),
                    }],
                    environment: Some(crate::Environment {
                        pip: "25.1.1".to_owned(),
                        pytest: Some("9.2.0".to_owned()),
                        project: "refbugs".to_owned(),
                        constraints: vec!["matrix/constraints.txt".into()],
                        packages: vec![
                            crate::Package {
                                name: "pytest".to_owned(),
                                version: "9.2.0".to_owned(),
                                source: crate::PackageSource::Wheel,
                            },
                            crate::Package {
                                name: "refbugs".to_owned(),
                                version: "0.1".to_owned(),
                                source: crate::PackageSource::Local,
                            },
                        ],
                        build: vec![crate::Package {
                            name: "setuptools".to_owned(),
                            version: "84.2.1".to_owned(),
                            source: crate::PackageSource::Wheel,
                        }],
                    }),
                    ..suite("3.13.5+debug", "refbugs", vec![leak])
                }],
            ),
            cell(
                "3.13.5+valgrind",
                BuildStatus::Cached,
                CheckStatus::Passed,
                vec![suite("3.13.5+valgrind", "refbugs", vec![uaf])],
            ),
            cell(
                "3.13.5+broken",
                BuildStatus::Failed {
                    phase: BuildStep::Configure,
                    message: "exited with exit status: 77".to_owned(),
                    log: "/w/builds/x/logs/configure.log".into(),
                    tail: "configure: error: C compiler cannot create executables".to_owned(),
                },
                CheckStatus::NotRun,
                vec![],
            ),
            cell(
                "3.13.5+trace-refs",
                BuildStatus::Cached,
                CheckStatus::Mismatch { diff: "abiflags: promised \"d\", got \"\"".to_owned() },
                vec![],
            ),
        ],
    };
    // As every document is: by version, then by variant name.
    doc.cells.sort_by(|a, b| a.cell.cmp(&b.cell));
    doc
}

#[test]
fn recording_phases_and_a_rebuild() {
    let dir = camino::Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix");
    let m = matrix::Matrix::load(&dir).expect("matrix");
    let cell = m.cell("3.13.5+debug").expect("cell");
    let outcome = |key: &str, build: BuildStatus| CellBuild {
        key: key.to_owned(),
        build,
        check: CheckStatus::Passed,
    };
    let mut doc = Document::default();
    doc.record_suites(
        &cell,
        &outcome("k1", BuildStatus::Built { seconds: 90 }),
        vec![suite("3.13.5+debug", "refbugs", vec![])],
    );
    let phases = |doc: &Document| {
        let c = &doc.cells[0];
        let mut s: Vec<String> =
            c.phases.iter().map(|(k, p)| format!("{k}={}/{:?}", p.status, p.seconds)).collect();
        s.push(format!("suites={}", c.suites.len()));
        s.join(" ")
    };
    expect!["build=built/Some(90) check=passed/None extension-suites=clean/Some(12) suites=1"]
        .assert_eq(&phases(&doc));
    doc.record_build(&cell, &outcome("k1", BuildStatus::Cached));
    expect!["build=cached/Some(0) check=passed/None extension-suites=clean/Some(12) suites=1"]
        .assert_eq(&phases(&doc));
    doc.record_build(&cell, &outcome("k2", BuildStatus::Built { seconds: 80 }));
    expect!["build=built/Some(80) check=passed/None suites=0"].assert_eq(&phases(&doc));
}

#[test]
fn markdown() {
    expect![[r##"
        # debug-matrix results

        | version | debug | trace-refs | valgrind | broken |
        |---|---|---|---|---|
        | 3.11.2 | ok |   |   |   |
        | 3.13.5 | findings: 1 | broken-promise | findings: 1 | build-failed |

        ## 3.11.2+debug

        - expected ref-leak in refbugs `tests/test_refbugs.py::test_leak_new_ref` (the example leaks on purpose)

        ## 3.13.5+debug

        - **ref-leak** in refbugs `tests/test_refbugs.py::test_leak_new_ref`: leaks: refs deltas [2, 2, 2], blocks deltas [3, 3, 3] — repro `cargo xtask test 3.13.5+debug --suite refbugs -k test_leak_new_ref`

          ```
          leaks: refs deltas [2, 2, 2], blocks deltas [3, 3, 3]
            over 504 more calls: refs linear, blocks linear (refs/blocks per call by batch: 2/3 → 2/3)
            new tracked objects per call: list +1
          ```
        - grew, not judged in refbugs `tests/test_refbugs.py::test_cache`: not re-runnable: its growth stops over 504 more calls (per call by batch: refs 2→2→2→2→0.5→0): a bounded cache filling up, not a lost reference
        - environment of refbugs: pip 25.1.1, pytest 9.2.0, 2 packages (1 built here), 1 in the build environment, pinned by matrix/constraints.txt

        ## 3.13.5+trace-refs

        - promise broken: abiflags: promised "d", got "" (repro `cargo xtask build 3.13.5+trace-refs`)

        ## 3.13.5+valgrind

        - **invalid-memory** in refbugs `tests/test_refbugs.py::test_use_after_free`: Invalid read of size 1 — repro `cargo xtask test 3.13.5+valgrind --suite refbugs -k test_use_after_free`

          ```
          Invalid read of size 1
             at 0x48: use_after_free (_refbugs.c:121)
          ```

        ## 3.13.5+broken

        - configure failed: exited with exit status: 77 (log `/w/builds/x/logs/configure.log`; repro `cargo xtask build 3.13.5+broken`)
    "##]].assert_eq(&render::markdown(&document(), &order()));
}

#[test]
fn annotations() {
    expect![[r#"
        ::error file=tests/test_refbugs.py,title=3.13.5+debug ref-leak::tests/test_refbugs.py::test_leak_new_ref: leaks: refs deltas [2, 2, 2], blocks deltas [3, 3, 3]%0A  over 504 more calls: refs linear, blocks linear (refs/blocks per call by batch: 2/3 → 2/3)%0A  new tracked objects per call: list +1%0Arepro: cargo xtask test 3.13.5+debug --suite refbugs -k test_leak_new_ref
        ::error title=3.13.5+trace-refs check::promise broken: abiflags: promised "d", got "" (repro `cargo xtask build 3.13.5+trace-refs`)
        ::error file=tests/test_refbugs.py,title=3.13.5+valgrind invalid-memory::tests/test_refbugs.py::test_use_after_free: Invalid read of size 1%0A   at 0x48: use_after_free (_refbugs.c:121)%0Arepro: cargo xtask test 3.13.5+valgrind --suite refbugs -k test_use_after_free
        ::error title=3.13.5+broken build::configure failed: exited with exit status: 77 (log `/w/builds/x/logs/configure.log`; repro `cargo xtask build 3.13.5+broken`)%0Aconfigure: error: C compiler cannot create executables
    "#]].assert_eq(&render::annotations(&document(), &order()));
}

#[test]
fn stored_document() {
    // Also the input of the screenshot test (xtask/tests/report_page.rs).
    let json = serde_json::to_string_pretty(&document()).expect("serializable");
    expect_file!["../../test_data/report.json"].assert_eq(&json);
    let back: Document = serde_json::from_str(&json).expect("round trip");
    assert_eq!(render::markdown(&back, &order()), render::markdown(&document(), &order()));
}

#[test]
fn junit_and_html() {
    expect_file!["../../test_data/junit.xml"]
        .assert_eq(&render::junit(&document(), &order()).expect("junit"));
    expect_file!["../../test_data/report.html"]
        .assert_eq(&render::html(&document(), &order()).expect("html"));
}

#[test]
fn renderings_agree_on_the_findings() {
    let doc = document();
    let (md, junit, html) = (
        render::markdown(&doc, &order()),
        render::junit(&doc, &order()).expect("junit"),
        render::html(&doc, &order()).expect("html"),
    );
    let annotations = render::annotations(&doc, &order());
    let mut expected = 0;
    for c in &doc.cells {
        for f in c.suites.iter().flat_map(|s| &s.findings) {
            assert!(html.contains(&f.repro), "html lacks {}", f.repro);
            if let Some(reason) = &f.expected {
                // Accepted: shown, but not a problem anywhere.
                expected += 1;
                assert!(md.contains(reason) && html.contains(reason), "{reason}");
                assert!(!annotations.contains(&f.repro) && !junit.contains(&f.repro));
                continue;
            }
            assert!(md.contains(&f.repro), "markdown lacks {}", f.repro);
            assert!(junit.contains(&f.repro), "junit lacks {}", f.repro);
            assert!(annotations.contains(&f.repro), "annotations lack {}", f.repro);
            // A multi-line message is whole in every rendering.
            for line in f.message.lines() {
                assert!(md.contains(line), "markdown lacks {line:?}");
                assert!(junit.contains(&line.replace('<', "&lt;")), "junit lacks {line:?}");
                assert!(html.contains(&line.replace('<', "&lt;")), "html lacks {line:?}");
                assert!(annotations.contains(line), "annotations lack {line:?}");
            }
        }
    }
    assert_eq!(expected, 1);
    assert!(doc.problems().iter().all(|p| !p.starts_with("3.11.2+debug")), "expected only: ok");
}

#[test]
fn versions_in_version_order_and_variants_in_the_order_of_variants_toml() {
    let dir = camino::Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix");
    let m = matrix::Matrix::load(&dir).expect("matrix");
    let built =
        CellBuild { key: "k".to_owned(), build: BuildStatus::Cached, check: CheckStatus::Passed };
    let mut doc = Document::default();
    // Recorded in no order; as strings, 3.13.15 sorts before 3.13.5 and asan before debug.
    for name in ["3.13.15+tsan", "3.13.5+debug", "3.13.15+asan", "3.13.5+tsan", "3.13.15+debug"] {
        doc.record_build(&m.cell(name).expect("cell"), &built);
    }
    doc.merge(Document {
        cells: vec![cell("3.13.5+asan", BuildStatus::Cached, CheckStatus::Passed, vec![])],
        ..Document::default()
    });
    let names = |cells: Vec<&CellResults>| -> Vec<String> {
        cells.iter().map(|c| c.cell.to_string()).collect()
    };
    // The document: by version as versions, then by variant name.
    expect![[r#"
        [
            "3.13.5+asan",
            "3.13.5+debug",
            "3.13.5+tsan",
            "3.13.15+asan",
            "3.13.15+debug",
            "3.13.15+tsan",
        ]
    "#]]
    .assert_debug_eq(&names(doc.cells.iter().collect()));
    // Every rendering: variants as variants.toml lists them (debug, asan, tsan).
    let order = order();
    let in_order = names(order.cells(&doc));
    expect![[r#"
        [
            "3.13.5+debug",
            "3.13.5+asan",
            "3.13.5+tsan",
            "3.13.15+debug",
            "3.13.15+asan",
            "3.13.15+tsan",
        ]
    "#]]
    .assert_debug_eq(&in_order);
    let md = render::markdown(&doc, &order);
    expect![[r#"
        # debug-matrix results

        | version | debug | asan | tsan |
        |---|---|---|---|
        | 3.13.5 | not-tested | not-tested | not-tested |
        | 3.13.15 | not-tested | not-tested | not-tested |
    "#]]
    .assert_eq(&md);
    let junit = render::junit(&doc, &order).expect("junit");
    let xml = roxmltree::Document::parse(&junit).expect("XML");
    let suites: Vec<&str> = xml
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert_eq!(suites, in_order);
    let html = render::html(&doc, &order).expect("html");
    let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} in {html}"));
    assert!(at("<th>debug</th>") < at("<th>asan</th>"), "{html}");
    assert!(at("<th>asan</th>") < at("<th>tsan</th>"), "{html}");
    let details: Vec<usize> =
        in_order.iter().map(|c| at(&format!("<details id=\"{}\"", super_anchor(c)))).collect();
    assert!(details.is_sorted(), "{html}");
    let rows = [at("<th>3.13.5</th>"), at("<th>3.13.15</th>")];
    assert!(rows.is_sorted(), "{html}");
}

fn super_anchor(cell: &str) -> String {
    cell.replace(['+', '.'], "-")
}

#[test]
fn console_grid_and_new_findings() {
    let doc = document();
    expect![[r#"
        version  debug        trace-refs      valgrind     broken
        3.11.2   ok           -               -            -
        3.13.5   findings: 1  broken-promise  findings: 1  build-failed

        new findings and failed phases (4):
          3.13.5+debug refbugs ref-leak tests/test_refbugs.py::test_leak_new_ref: leaks: refs deltas [2, 2, 2], blocks deltas [3, 3, 3]
            repro: cargo xtask test 3.13.5+debug --suite refbugs -k test_leak_new_ref
          3.13.5+trace-refs check: promise broken: abiflags: promised "d", got ""
            repro: cargo xtask build 3.13.5+trace-refs
          3.13.5+valgrind refbugs invalid-memory tests/test_refbugs.py::test_use_after_free: Invalid read of size 1
            repro: cargo xtask test 3.13.5+valgrind --suite refbugs -k test_use_after_free
          3.13.5+broken build: configure failed: exited with exit status: 77
            repro: cargo xtask build 3.13.5+broken
    "#]]
    .assert_eq(&render::console(&doc, &order(), false));
    // In colour: each cell's status in report.html's colour, the rest as it is.
    let coloured = render::console(&doc, &order(), true);
    assert!(coloured.contains("\x1b[32mok         \x1b[0m"), "{coloured}");
    assert!(coloured.contains("\x1b[33mfindings: 1\x1b[0m"), "{coloured}");
    assert!(coloured.contains("\x1b[31mbuild-failed\x1b[0m"), "{coloured}");
    assert!(coloured.contains("\n  3.13.5+debug refbugs ref-leak"), "{coloured}");
    let plain = render::console(&doc, &order(), false);
    assert!(!plain.contains('\x1b'), "{plain}");
    let clean = Document { cells: vec![doc.cells[0].clone()], ..Document::default() };
    expect![[r#"
        version  debug
        3.11.2   ok

        no new findings, no failed phase
    "#]]
    .assert_eq(&render::console(&clean, &order(), false));
}
