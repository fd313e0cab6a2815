//! Tests of the results document: recording, reading, merging, and the cell status derived
//! from every phase (CPython's tests included) as every rendering shows it.

use camino::{Utf8Path, Utf8PathBuf};
use expect_test::expect;

use crate::{
    Aside, BuildStatus, CellBuild, CellStatus, CheckStatus, CpythonRun, Document, FindingKind,
    Phase, PhaseKey, PhaseStatus, ReadError, SCHEMA_VERSION, render,
    render::tests::{document, finding, order, suite},
};

fn matrix() -> matrix::Matrix {
    let dir = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix");
    matrix::Matrix::load(&dir).expect("the project's matrix loads")
}

fn outcome(_cell: &matrix::Cell<'_>, key: &str) -> CellBuild {
    CellBuild { key: key.to_owned(), build: BuildStatus::Cached, check: CheckStatus::Passed }
}

/// A smoke run of CPython's tests that ended `status`, with its line.
fn test_run(status: PhaseStatus, line: &str) -> CpythonRun {
    CpythonRun { profile: "smoke".to_owned(), status, seconds: 61, line: line.to_owned() }
}

const FAILED_LINE: &str = "smoke: 0 modules, 0 tests passed, 0 skipped modules, 0 failed; \
                           worker bug: test_gc crashed in 61s; junit: /w/cells/x/test-cpython-smoke.xml";

/// `key=status` for every phase of the only cell, then its status and suites.
fn phases(doc: &Document) -> String {
    let c = &doc.cells[0];
    let mut s: Vec<String> = c.phases.iter().map(|(k, p)| format!("{k}={}", p.status)).collect();
    let suites: Vec<&str> = c.suites.iter().map(|s| s.suite.as_str()).collect();
    s.push(format!("=> {} [{}]", c.status(), suites.join(" ")));
    s.join(" ")
}

#[test]
fn documents_written_before_the_phase_types_still_parse() {
    // Every key and status report.json held when they were string literals.
    let json = r#"{"schema_version": 1, "cells": [{
        "cell": "3.13.5+debug", "version": "3.13.5", "variant": "debug", "key": "k",
        "source_sha256": "s", "build": {"status": "cached"}, "check": {"status": "passed"},
        "phases": {
            "fetch": {"status": "fetched", "seconds": 3, "detail": "upstream"},
            "verify": {"status": "verified", "seconds": null, "detail": "sha256 pin"},
            "build": {"status": "cached", "seconds": 0, "detail": ""},
            "check": {"status": "passed", "seconds": null, "detail": ""},
            "test-cpython-smoke": {"status": "failed", "seconds": 61, "detail": "smoke: 1 failed"},
            "test-cpython-full": {"status": "passed", "seconds": 900, "detail": ""},
            "extension-suites": {"status": "clean", "seconds": 12, "detail": "markupsafe"}
        }}]}"#;
    let doc: Document = serde_json::from_str(json).expect("an old document parses");
    expect!["fetch=fetched verify=verified build=cached check=passed test-cpython-full=passed test-cpython-smoke=failed extension-suites=clean => cpython-tests-failed []"]
        .assert_eq(&phases(&doc));
    let back = serde_json::to_value(&doc).expect("serializable");
    assert_eq!(back["cells"][0]["phases"]["test-cpython-smoke"]["status"], "failed");
    assert_eq!(back["cells"][0]["phases"]["extension-suites"]["status"], "clean");
    for status in ["cached", "fetched", "verified", "built", "passed", "failed", "error"]
        .into_iter()
        .chain(["not-run", "cancelled", "clean", "findings"])
    {
        let parsed: PhaseStatus =
            serde_json::from_value(serde_json::json!(status)).expect("a known status");
        assert_eq!(parsed.as_str(), status);
    }
    for key in ["fetch", "verify", "build", "check", "test-cpython-smoke", "extension-suites"] {
        let parsed = PhaseKey::try_from(key.to_owned()).expect("a known key");
        assert_eq!(parsed.to_string(), key);
    }
    assert!(PhaseKey::try_from("test-cpython-".to_owned()).is_err());
    assert!(PhaseKey::try_from("lint".to_owned()).is_err());
}

#[test]
fn a_failed_cpython_test_run_alone_makes_the_cell_a_problem_in_every_rendering() {
    let m = matrix();
    let c = m.cell("3.13.5+debug").expect("cell");
    let o = outcome(&c, "k1");
    let mut doc = Document::default();
    doc.record_sources(
        &c,
        &o,
        Phase::new(PhaseStatus::Cached, Some(0), ""),
        Phase::new(PhaseStatus::Verified, None, "sha256 pin"),
    );
    doc.record_suites(&c, &o, vec![suite("3.13.5+debug", "markupsafe", vec![])]);
    doc.record_cpython_tests(&c, &o, &test_run(PhaseStatus::Passed, "smoke: passed"));
    expect!["fetch=cached verify=verified build=cached check=passed test-cpython-smoke=passed extension-suites=clean => ok [markupsafe]"]
        .assert_eq(&phases(&doc));
    assert!(doc.problems().is_empty());

    let run = test_run(PhaseStatus::Failed, FAILED_LINE);
    doc.record_cpython_tests(&c, &o, &run);
    expect!["fetch=cached verify=verified build=cached check=passed test-cpython-smoke=failed extension-suites=clean => cpython-tests-failed [markupsafe]"]
        .assert_eq(&phases(&doc));
    assert_eq!(doc.problems(), ["3.13.5+debug (cpython-tests-failed)"]);

    let detail = &run.line;
    let repro = "cargo xtask test-cpython 3.13.5+debug --profile smoke";
    let md = render::markdown(&doc, &order());
    assert!(md.contains("| 3.13.5 | cpython-tests-failed |"), "{md}");
    assert!(
        md.contains(&format!("- test-cpython-smoke failed: {detail} (repro `{repro}`)")),
        "{md}"
    );

    let junit = render::junit(&doc, &order()).expect("junit");
    let xml = roxmltree::Document::parse(&junit).expect("well-formed XML");
    let case = xml
        .descendants()
        .find(|n| n.attribute("name") == Some("test-cpython-smoke"))
        .expect("a test-cpython-smoke testcase");
    let failure = case.children().find(|n| n.has_tag_name("failure")).expect("a failure");
    assert!(failure.text().unwrap_or("").contains(repro), "{junit}");
    let suite_node = xml.descendants().find(|n| n.has_tag_name("testsuite")).expect("a suite");
    assert_eq!(suite_node.attribute("failures"), Some("1"), "{junit}");

    let annotations = render::annotations(&doc, &order());
    expect![[r#"
        ::error title=3.13.5+debug test-cpython-smoke::test-cpython-smoke failed: smoke: 0 modules, 0 tests passed, 0 skipped modules, 0 failed; worker bug: test_gc crashed in 61s; junit: /w/cells/x/test-cpython-smoke.xml (repro `cargo xtask test-cpython 3.13.5+debug --profile smoke`)
    "#]]
    .assert_eq(&annotations);

    let html = render::html(&doc, &order()).expect("html");
    assert!(html.contains("<td class=\"cpython-tests-failed\">"), "{html}");
    assert!(html.contains(repro), "{html}");
    assert!(html.contains("<details id=\"3-13-5-debug\" open>"), "{html}");
}

/// Issue 21: `build --check` is recorded as the phase `reproducible`; a difference makes
/// the cell `not-reproducible` in every rendering, naming the file and what differs, with
/// the command that checks again. A new build drops the old build's check.
#[test]
fn a_build_that_is_not_reproducible_is_a_problem_naming_the_file() {
    let m = matrix();
    let c = m.cell("3.11.2+debug").expect("cell");
    let o = outcome(&c, "k1");
    let mut doc = Document::default();
    let same = crate::Reproducibility {
        identical: 7667,
        differing: vec![],
        naming_build_dirs: vec![],
        varied: vec!["umask 0002".into()],
        seconds: 200,
    };
    doc.record_reproducibility(&c, &o, same);
    expect!["build=cached check=passed reproducible=passed => not-tested []"]
        .assert_eq(&phases(&doc));
    assert_eq!(doc.cells[0].phases[&PhaseKey::Reproducible].detail, "7667 files identical");

    let differs = crate::Reproducibility {
        identical: 7666,
        differing: vec![crate::DifferingFile {
            path: "lib/python3.11/buildinfo.txt".into(),
            what: "text, line 1: `built`, then `built at 1765000000`".into(),
        }],
        naming_build_dirs: vec!["bin/python3.11".into()],
        varied: vec![],
        seconds: 200,
    };
    doc.record_reproducibility(&c, &o, differs);
    expect!["build=cached check=passed reproducible=failed => not-reproducible []"]
        .assert_eq(&phases(&doc));
    assert_eq!(doc.problems(), ["3.11.2+debug (not-reproducible)"]);
    let md = render::markdown(&doc, &order());
    assert!(md.contains("- reproducible failed: 1 of 7667 files differ"), "{md}");
    assert!(md.contains("cargo xtask build --check 3.11.2+debug"), "{md}");
    let html = render::html(&doc, &order()).expect("html");
    assert!(html.contains("<td class=\"not-reproducible\">"), "{html}");
    assert!(html.contains("td.not-reproducible,"), "coloured as a problem");
    let failure = &doc.cells[0].failed_phases()[0];
    assert!(
        failure.detail.contains(
            "lib/python3.11/buildinfo.txt: text, line 1: `built`, then `built at 1765000000`\n\
             bin/python3.11: names the source or build directory"
        ),
        "{}",
        failure.detail
    );
    let text = serde_json::to_string(&doc).expect("json");
    let back: Document = serde_json::from_str(&text).expect("reads back");
    assert_eq!(back.cells[0].reproducibility, doc.cells[0].reproducibility);

    doc.record_build(&c, &outcome(&c, "k2"));
    assert_eq!(doc.cells[0].reproducibility, None, "another build's check does not hold");
}

#[test]
fn regrtest_without_a_verdict_is_a_failure_and_not_run_is_not_a_test() {
    let m = matrix();
    let c = m.cell("3.13.5+debug").expect("cell");
    let o = outcome(&c, "k1");
    let mut doc = Document::default();
    let not_run = test_run(PhaseStatus::NotRun, "smoke: not tested: interrupted");
    doc.record_cpython_tests(&c, &o, &not_run);
    expect!["build=cached check=passed test-cpython-smoke=not-run => not-tested []"]
        .assert_eq(&phases(&doc));
    assert!(doc.problems().is_empty(), "not tested is not a failure");
    let error = test_run(PhaseStatus::Error, "smoke: ERROR timed out; log: /w/x.log");
    doc.record_cpython_tests(&c, &o, &error);
    expect!["build=cached check=passed test-cpython-smoke=error => cpython-tests-failed []"]
        .assert_eq(&phases(&doc));
}

#[test]
fn a_suite_replaces_only_its_own_results_and_no_suite_is_not_clean() {
    let m = matrix();
    let c = m.cell("3.13.5+debug").expect("cell");
    let o = outcome(&c, "k1");
    let mut doc = Document::default();
    // Built, no test ran: no `extension-suites` phase, and the cell is not ok either.
    doc.record_suites(&c, &o, vec![]);
    expect!["build=cached check=passed => not-tested []"].assert_eq(&phases(&doc));
    let leak = finding(FindingKind::RefLeak, "tests/test_a.py::test_x", "leaks", "repro");
    doc.record_suites(
        &c,
        &o,
        vec![suite("3.13.5+debug", "a", vec![leak]), suite("3.13.5+debug", "b", vec![])],
    );
    expect!["build=cached check=passed extension-suites=findings => findings [a b]"]
        .assert_eq(&phases(&doc));
    // `test --suite a` again: a's new results replace a's, b's stay.
    doc.record_suites(&c, &o, vec![suite("3.13.5+debug", "a", vec![])]);
    expect!["build=cached check=passed extension-suites=clean => ok [a b]"]
        .assert_eq(&phases(&doc));
    assert_eq!(doc.cells[0].phases[&PhaseKey::ExtensionSuites].seconds, Some(24));
    // A run where no suite ran keeps what is recorded.
    doc.record_suites(&c, &o, vec![]);
    expect!["build=cached check=passed extension-suites=clean => ok [a b]"]
        .assert_eq(&phases(&doc));
    // A new build drops the old build's results.
    doc.record_build(&c, &outcome(&c, "k2"));
    expect!["build=cached check=passed => not-tested []"].assert_eq(&phases(&doc));
}

#[test]
fn record_phase_cannot_override_the_build_or_the_check() {
    let m = matrix();
    let c = m.cell("3.13.5+debug").expect("cell");
    let o = outcome(&c, "k1");
    let mut doc = Document::default();
    doc.record_phase(&c, &o, PhaseKey::Build, Phase::new(PhaseStatus::Failed, None, ""));
    let failed = Phase::new(PhaseStatus::Failed, None, "no network");
    doc.record_phase(&c, &o, PhaseKey::Fetch, failed);
    expect!["fetch=failed build=cached check=passed => sources-failed []"].assert_eq(&phases(&doc));
}

#[test]
fn statuses_are_ordered_worst_first() {
    let mut doc = document();
    let statuses: Vec<String> = doc.cells.iter().map(|c| c.status().to_string()).collect();
    expect![[r#"["ok", "build-failed", "findings", "broken-promise", "findings"]"#]]
        .assert_eq(&format!("{statuses:?}"));
    // A cell whose build failed and whose tests failed too is summed up by the worst.
    let broken = doc.cells.iter_mut().find(|c| c.variant == "broken").expect("the broken cell");
    broken.phases.insert(
        PhaseKey::TestCpython { profile: "smoke".to_owned() },
        Phase::new(PhaseStatus::Failed, None, ""),
    );
    assert_eq!(broken.status(), CellStatus::BuildFailed);
    assert!(CellStatus::CpythonTestsFailed.is_problem() && CellStatus::Findings.is_problem());
    assert!(!CellStatus::NotTested.is_problem() && !CellStatus::Ok.is_problem());
}

fn temp() -> (tempfile::TempDir, Utf8PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Utf8PathBuf::try_from(tmp.path().to_path_buf()).expect("utf-8");
    (tmp, dir)
}

/// The error's message with the temporary directory replaced by `$DIR`.
fn message(e: &ReadError, dir: &Utf8Path) -> String {
    e.to_string().replace(dir.as_str(), "$DIR")
}

#[test]
fn a_missing_document_is_empty() {
    let (_tmp, dir) = temp();
    let doc = Document::read(&dir.join("report.json")).expect("missing is empty");
    assert!(doc.cells.is_empty());
    assert_eq!(doc.schema_version, SCHEMA_VERSION);
}

#[test]
fn a_broken_document_is_an_error_and_is_moved_aside_only_when_asked() {
    let (_tmp, dir) = temp();
    let path = dir.join("report.json");
    let good = serde_json::to_string_pretty(&document()).expect("serializable");
    for (what, text) in [
        ("truncated", &good[..good.len() / 2]),
        ("empty", ""),
        ("not json", "<html>"),
        ("wrong shape", r#"{"schema_version": 1, "cells": [{"cell": 3}]}"#),
    ] {
        std::fs::write(&path, text).expect("write");
        let e = Document::read(&path).expect_err(what);
        assert!(matches!(e, ReadError::Unparsable { .. }), "{what}: {e}");
        assert!(e.to_string().contains(path.as_str()), "{what}: the message names the file: {e}");
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), text, "{what}: left in place");
    }

    std::fs::write(&path, r#"{"schema_version": 2, "cells": {"new": "shape"}}"#).expect("write");
    let e = Document::read(&path).expect_err("another schema");
    expect!["$DIR/report.json has schema version 2; this tool reads version 1; it was left as it is: repair or remove it, then rerun"]
        .assert_eq(&message(&e, &dir));
    assert!(matches!(e, ReadError::OtherSchema { found: 2, aside: Aside::Kept, .. }));

    // The caller that would write the document sets the bad one aside and stops.
    let e = e.set_aside();
    let moved = e.moved_to().expect("moved aside").to_owned();
    assert!(!path.exists(), "the next run starts a new document");
    assert_eq!(moved.parent(), Some(dir.as_path()));
    assert!(moved.as_str().starts_with(&format!("{path}.broken-")), "{moved}");
    assert!(std::fs::read_to_string(&moved).expect("kept").contains("\"new\""));
    let text = message(&e, &dir);
    let stamp = moved.as_str().rsplit("broken-").next().expect("a stamp");
    expect!["$DIR/report.json has schema version 2; this tool reads version 1; it was moved aside to $DIR/report.json.broken-STAMP and nothing was recorded: rerun to start a new document, or repair it and move it back"]
        .assert_eq(&text.replace(stamp, "STAMP"));

    // A second broken document within the same second gets a name of its own.
    std::fs::write(&path, "{").expect("write");
    let e = Document::read(&path).expect_err("unparsable").set_aside();
    let second = e.moved_to().expect("moved aside").to_owned();
    assert_ne!(second, moved);
    assert!(moved.exists() && second.exists());
    assert!(message(&e, &dir).starts_with("$DIR/report.json is not a results document (EOF"));
}

#[test]
fn an_unreadable_document_is_an_error_and_stays() {
    let (_tmp, dir) = temp();
    let path = dir.join("report.json");
    std::fs::create_dir(&path).expect("a directory where the file should be");
    let e = Document::read(&path).expect_err("a directory is not a document").set_aside();
    assert!(matches!(e, ReadError::Unreadable { .. }), "{e}");
    assert!(e.moved_to().is_none() && path.is_dir());
    let text = message(&e, &dir);
    assert!(text.starts_with("cannot read the results document $DIR/report.json: "), "{text}");
    assert!(text.ends_with("make it readable (or remove it to start a new document), then rerun"));
}

#[test]
fn merging_refuses_a_broken_or_missing_input() {
    let (_tmp, dir) = temp();
    let good = dir.join("a/report.json");
    let bad = dir.join("b/report.json");
    for p in [&good, &bad] {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    }
    std::fs::write(&good, serde_json::to_string(&document()).expect("json")).expect("write");
    std::fs::write(&bad, "{\"schema_version\": 1, \"cells\": [").expect("write");
    let mut doc = Document::default();
    assert_eq!(doc.merge_file(&good).expect("a good input merges"), 5);
    let e = doc.merge_file(&bad).expect_err("a broken input is refused");
    assert!(e.to_string().starts_with(&format!("{bad} is not a results document")), "{e}");
    assert_eq!(e.path(), bad);
    assert_eq!(doc.cells.len(), 5, "nothing of the broken input was taken");
    assert!(bad.exists(), "an input is never moved");
    let missing = dir.join("c/report.json");
    let e = doc.merge_file(&missing).expect_err("a missing input is refused");
    assert!(matches!(e, ReadError::Unreadable { .. }) && e.to_string().contains(missing.as_str()));
}

#[test]
fn junit_carries_what_xml_cannot_and_cdata_ends() {
    let mut doc = document();
    let c = doc.cells.iter_mut().find(|c| c.cell.to_string() == "3.13.5+debug").expect("cell");
    c.suites[0].findings[0].message =
        "bell \u{7} escape \u{1b}[31mred\u{1b}[0m nul \u{0} end ]]> and <tag> & \"quotes\"".into();
    let junit = render::junit(&doc, &order()).expect("junit");
    let xml = roxmltree::Document::parse(&junit).expect("well-formed XML");
    let failure = xml
        .descendants()
        .find(|n| n.has_tag_name("failure") && n.text().is_some_and(|t| t.contains("bell")))
        .expect("the finding's failure");
    expect![[r#"
        ref-leak: bell  escape red nul  end ]]> and <tag> & "quotes"
        repro: cargo xtask test 3.13.5+debug --suite refbugs -k test_leak_new_ref
    "#]]
    .assert_eq(failure.text().unwrap_or(""));
    assert!(!junit.contains('\u{7}') && !junit.contains('\u{1b}') && !junit.contains('\u{0}'));
}

#[test]
fn html_escapes_what_a_finding_says() {
    let mut doc = document();
    let c = doc.cells.iter_mut().find(|c| c.cell.to_string() == "3.13.5+debug").expect("cell");
    c.suites[0].findings[0].message = "<script>alert('x')</script> & \"q\"".into();
    c.suites[0].findings[0].test = Some("tests/t.py::test_<b>".into());
    let html = render::html(&doc, &order()).expect("html");
    assert!(!html.contains("<script>") && !html.contains("<b>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;q&quot;"),
        "{html}"
    );
    assert!(html.contains("tests/t.py::test_&lt;b&gt;"), "{html}");
    // The grid's cell classes are the status words (the screenshot test's colours).
    for class in ["ok", "findings", "build-failed", "broken-promise"] {
        assert!(html.contains(&format!("<td class=\"{class}\">")), "{class}");
    }
}

/// Issue 18: a document written by a newer version is never trimmed: unknown top-level and
/// per-cell fields are kept through a read, a merge and a write; unknown fields deeper in
/// (where the types of other crates would drop them) are refused, naming where they are.
#[test]
fn fields_this_version_does_not_know_are_kept_or_refused_never_dropped() {
    let (_tmp, dir) = temp();
    let path = dir.join("report.json");
    let mut value = serde_json::to_value(document()).expect("serializable");
    value["generator"] = serde_json::json!({"name": "debug-matrix", "version": "9"});
    value["cells"][0]["runner"] = serde_json::json!("ubuntu-24.04");
    std::fs::write(&path, value.to_string()).expect("write");
    let mut doc = Document::read(&path).expect("unknown top-level and cell fields are kept");
    let other = dir.join("other.json");
    std::fs::write(&other, serde_json::to_string(&document()).expect("json")).expect("write");
    doc.merge_file(&other).expect("merge");
    let written = serde_json::to_value(&doc).expect("serializable");
    assert_eq!(written["generator"], value["generator"]);
    // The merged cell replaced the one that had `runner`: the top level kept `generator`.
    let doc = Document::read(&path).expect("read");
    assert_eq!(serde_json::to_value(&doc).expect("json"), value, "kept whole");

    value["cells"][0]["suites"][0]["flaky_reruns"] = serde_json::json!(3);
    value["cells"][1]["build"]["cpu"] = serde_json::json!("x86-64-v3");
    std::fs::write(&path, value.to_string()).expect("write");
    let e = Document::read(&path).expect_err("deeper unknown fields are refused");
    expect!["$DIR/report.json has fields this version does not know (cells[0].suites[0].flaky_reruns, cells[1].build.cpu): a newer version wrote it, and rewriting it here would drop them; it was left as it is: use the newer version, or remove those fields, then rerun"]
        .assert_eq(&message(&e, &dir));
    let e = e.set_aside();
    assert!(e.moved_to().is_none() && path.is_file(), "never moved aside: it is not broken");
}
