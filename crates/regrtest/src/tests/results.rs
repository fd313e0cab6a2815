//! Verdicts drawn from real regrtest runs recorded in `fixtures/` (see `fixtures/regen.sh`):
//! the log's summary, the JUnit XML, and the two combined with known failures.

use expect_test::{Expect, expect};

use crate::{KnownFailure, TestsFile, judge, junit, summary};

/// Evaluates the recorded run `fixture` with `known` as the environment's known failures
/// and renders the summary, the per-module results and the verdict.
fn check(fixture: &str, requested: &[&str], known: &[&str], expect: Expect) {
    let dir = camino::Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(fixture);
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("reading {dir}/{name}: {e}"))
    };
    let known: Vec<KnownFailure> = known
        .iter()
        .map(|t| KnownFailure {
            test: t.to_string(),
            environments: vec!["sandbox".into()],
            variants: Vec::new(),
            reason: format!("{t} reason"),
        })
        .collect();
    let requested: Vec<String> = requested.iter().map(|s| s.to_string()).collect();
    let eval = match judge(&read("regrtest.log"), &read("junit.xml"), &requested, &known) {
        Ok(e) => e,
        Err(e) => return expect.assert_eq(&format!("error: {e}")),
    };

    let mut out = format!("state: {}\n", eval.state);
    for m in &eval.modules {
        let c = &m.cases;
        out.push_str(&format!(
            "{:14} {:16} {}/{}/{} passed/failed/skipped",
            m.module,
            format!("{:?}", m.status),
            c.passed,
            c.failed,
            c.skipped
        ));
        if let Some(reason) = &m.known_failure {
            out.push_str(&format!(" KNOWN: {reason}"));
        }
        if let Some(note) = &m.note {
            out.push_str(&format!(" NOTE: {note}"));
        }
        out.push('\n');
        for f in &c.failing {
            out.push_str(&format!("    failing {f}\n"));
        }
        for f in &c.flaky {
            out.push_str(&format!("    flaky {f}\n"));
        }
    }
    if !eval.known_but_passed.is_empty() {
        out.push_str(&format!("known but passed: {}\n", eval.known_but_passed.join(" ")));
    }
    out.push_str(&format!("ok: {}\n{}\n", eval.ok(), eval.line()));
    expect.assert_eq(&out);
}

#[test]
fn every_kind_of_result_3_11_7() {
    // 3.11.7's regrtest is 3.13's: separate resource-denied and (env changed) lists.
    check(
        "mixed-3.11.7",
        &[],
        &[],
        expect![[r#"
            state: FAILURE then FAILURE
            test_crash     Failed           0/0/0 passed/failed/skipped NOTE: worker non-zero exit code (Exit code -6 (SIGABRT))
            test_envchg    EnvChanged       1/0/0 passed/failed/skipped NOTE: failed (env changed)
            test_fails     Failed           1/3/0 passed/failed/skipped
                failing setUpClass (test_fails.SetupFails)
                failing test_fails.Fails.test_error
                failing test_fails.Fails.test_fail
            test_flaky     Flaky            2/0/0 passed/failed/skipped
                flaky test_flaky.Flaky.test_first_time_fails
            test_ok        Passed           3/0/1 passed/failed/skipped
            test_resource  ResourceDenied   0/0/0 passed/failed/skipped
            test_skipmod   Skipped          0/0/0 passed/failed/skipped
            ok: false
            7 modules, 7 tests passed, 2 skipped modules, 3 failed (test_crash, test_envchg, test_fails), 1 flaky (test_flaky)
        "#]],
    );
}

#[test]
fn every_kind_of_result_3_11_2() {
    // 3.11.2's regrtest re-runs the crashed module in-process with a stale filter: it runs
    // no tests, and regrtest drops it from the failures.
    check(
        "mixed-3.11.2",
        &[],
        &[],
        expect![[r#"
            state: FAILURE then FAILURE
            test_crash     Failed           0/0/0 passed/failed/skipped NOTE: failed, and its re-run ran no tests
            test_envchg    EnvChanged       1/0/0 passed/failed/skipped NOTE: failed (env changed)
            test_fails     Failed           1/3/0 passed/failed/skipped
                failing setUpClass (test_fails.SetupFails)
                failing test_fails.Fails.test_error
                failing test_fails.Fails.test_fail
            test_flaky     Flaky            2/0/0 passed/failed/skipped
                flaky test_flaky.Flaky.test_first_time_fails
            test_ok        Passed           3/0/1 passed/failed/skipped
            test_resource  Skipped          0/0/0 passed/failed/skipped
            test_skipmod   Skipped          0/0/0 passed/failed/skipped
            ok: false
            7 modules, 7 tests passed, 2 skipped modules, 3 failed (test_crash, test_envchg, test_fails), 1 flaky (test_flaky)
        "#]],
    );
}

#[test]
fn known_failures_do_not_fail_the_cell() {
    check(
        "mixed-3.11.7",
        &[],
        &["test_crash", "test_fails", "test_envchg", "test_ok"],
        expect![[r#"
            state: FAILURE then FAILURE
            test_crash     Failed           0/0/0 passed/failed/skipped KNOWN: test_crash reason NOTE: worker non-zero exit code (Exit code -6 (SIGABRT))
            test_envchg    EnvChanged       1/0/0 passed/failed/skipped KNOWN: test_envchg reason NOTE: failed (env changed)
            test_fails     Failed           1/3/0 passed/failed/skipped KNOWN: test_fails reason
                failing setUpClass (test_fails.SetupFails)
                failing test_fails.Fails.test_error
                failing test_fails.Fails.test_fail
            test_flaky     Flaky            2/0/0 passed/failed/skipped
                flaky test_flaky.Flaky.test_first_time_fails
            test_ok        Passed           3/0/1 passed/failed/skipped
            test_resource  ResourceDenied   0/0/0 passed/failed/skipped
            test_skipmod   Skipped          0/0/0 passed/failed/skipped
            known but passed: test_ok
            ok: true
            7 modules, 7 tests passed, 2 skipped modules, 0 failed (known: test_crash, test_envchg, test_fails), 1 flaky (test_flaky)
        "#]],
    );
}

#[test]
fn flaky_modules_do_not_fail_the_cell() {
    check(
        "flaky-3.11.7",
        &["test_ok", "test_flaky", "test_skipmod"],
        &[],
        expect![[r#"
            state: FAILURE then SUCCESS
            test_flaky     Flaky            2/0/0 passed/failed/skipped
                flaky test_flaky.Flaky.test_first_time_fails
            test_ok        Passed           3/0/1 passed/failed/skipped
            test_skipmod   Skipped          0/0/0 passed/failed/skipped
            ok: true
            3 modules, 5 tests passed, 1 skipped modules, 0 failed, 1 flaky (test_flaky)
        "#]],
    );
}

#[test]
fn a_log_without_summary() {
    let log = "0:00:00 load avg: 1.0 Run 3 tests in parallel\n0:00:01 [1/3] test_sys passed\n";
    let actual = match summary::parse(log) {
        Ok(s) => format!("{s:?}"),
        Err(e) => e.to_string(),
    };
    expect!["the log has no `== Tests result: … ==` summary: regrtest did not finish"]
        .assert_eq(&actual);
}

#[test]
fn xml_that_is_not_junit() {
    let actual = |xml: &str| match junit::parse(xml) {
        Ok(m) => format!("{m:?}"),
        Err(e) => e.to_string(),
    };
    expect!["not regrtest JUnit XML: the root element is <html>, not <testsuites>"]
        .assert_eq(&actual("<html/>"));
    expect!["not regrtest JUnit XML: the root node was opened but never closed"]
        .assert_eq(&actual("<testsuites>"));
}

#[test]
fn progress_lines() {
    let log = "0:00:01 load avg: 4.89 [ 5/17/3] test_crash worker non-zero exit code (Exit code -6 (SIGABRT))\n\
               0:01:54 load avg: 7.71 [9/18] test_compileall passed (1 min 7 sec) -- running (1): test_socket (1 min 31 sec)\n\
               test test_crash failed -- Traceback (most recent call last):\n";
    let actual: Vec<String> = ["test_crash", "test_compileall", "test_socket"]
        .iter()
        .map(|m| format!("{m}: {:?}", summary::last_progress(log, m)))
        .collect();
    expect![[r#"
        test_crash: Some("worker non-zero exit code (Exit code -6 (SIGABRT))")
        test_compileall: Some("passed (1 min 7 sec)")
        test_socket: None"#]]
    .assert_eq(&actual.join("\n"));
}

#[test]
fn module_names_of_case_ids() {
    let ids = [
        "test.test_int.IntTestCases.test_basic",
        "test_int.IntTestCases.test_basic",
        "test.test_asyncio.test_tasks.RunCoroutineThreadsafeTests.test_run",
        "setUpClass (test.test_ssl.ThreadedTests)",
        "setUpModule (test.test_socket)",
        "unittest.loader._FailedTest.test_x",
    ];
    let actual: Vec<String> =
        ids.iter().map(|id| format!("{id} -> {:?}", junit::module_of(id))).collect();
    expect![[r#"
        test.test_int.IntTestCases.test_basic -> Some("test_int")
        test_int.IntTestCases.test_basic -> Some("test_int")
        test.test_asyncio.test_tasks.RunCoroutineThreadsafeTests.test_run -> Some("test_asyncio")
        setUpClass (test.test_ssl.ThreadedTests) -> Some("test_ssl")
        setUpModule (test.test_socket) -> Some("test_socket")
        unittest.loader._FailedTest.test_x -> None"#]]
    .assert_eq(&actual.join("\n"));
}

#[test]
fn the_repository_known_failures_have_reasons() {
    let path =
        camino::Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix/cpython-tests.toml");
    let file = TestsFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    for k in &file.known_failures {
        assert!(!k.reason.contains("TODO"), "{path}: known failure {} needs its reason", k.test);
    }
}
