use expect_test::{Expect, expect};

use super::*;

/// Events of a run in which `ended` tests ended and `running` started and never ended.
fn events(ended: &[&str], running: Option<&str>) -> Vec<Event> {
    let mut lines = vec![r#"{"event":"session"}"#.to_owned()];
    for t in ended {
        lines.push(format!(r#"{{"event":"start","test":"{t}"}}"#));
        lines.push(format!(r#"{{"event":"end","test":"{t}","outcome":"passed"}}"#));
    }
    if let Some(t) = running {
        lines.push(format!(r#"{{"event":"start","test":"{t}"}}"#));
    }
    events::parse_events(&lines.join("\n"))
}

fn check(attempt: usize, exit: Exit, evs: &[Event], log: &str, deselect: &[&str], expect: Expect) {
    let deselect: Vec<String> = deselect.iter().map(|s| (*s).to_owned()).collect();
    let next = next_run(attempt, &exit, evs, log, &deselect);
    let shown = match next {
        Next::Done => "done".to_owned(),
        Next::Restart { deselect } => format!("restart without {deselect:?}"),
        Next::GiveUp { deselect, finding } => {
            format!("give up ({:?}: {}), leaving out {deselect:?}", finding.kind, finding.message)
        }
    };
    expect.assert_eq(&shown);
}

#[test]
fn a_crash_restarts_without_the_crashing_test_and_those_that_ended() {
    let evs = events(&["t.py::a", "t.py::b"], Some("t.py::boom"));
    check(
        0,
        Exit::Signal(11),
        &evs,
        "Fatal Python error: Segmentation fault",
        &[],
        expect![[r#"restart without ["t.py::boom", "t.py::a", "t.py::b"]"#]],
    );
    // A later crash keeps what earlier runs left out.
    let evs = events(&["t.py::c"], Some("t.py::boom2"));
    check(
        1,
        Exit::Code(134),
        &evs,
        "",
        &["t.py::boom", "t.py::a"],
        expect![[r#"restart without ["t.py::boom", "t.py::a", "t.py::boom2", "t.py::c"]"#]],
    );
}

#[test]
fn a_hang_restarts_like_a_crash() {
    let evs = events(&["t.py::a"], Some("t.py::slow"));
    // The plugin's per-test timeout: faulthandler dumps and exits with 1.
    check(
        0,
        Exit::Code(1),
        &evs,
        "Timeout (0:02:00)!\nThread 0x1 (most recent call first):",
        &[],
        expect![[r#"restart without ["t.py::slow", "t.py::a"]"#]],
    );
    // The whole run's time limit.
    check(
        0,
        Exit::TimedOut,
        &evs,
        "",
        &[],
        expect![[r#"restart without ["t.py::slow", "t.py::a"]"#]],
    );
}

#[test]
fn a_run_that_ended_by_itself_is_the_last() {
    let finished = events(&["t.py::a"], None);
    check(0, Exit::Code(0), &finished, "", &[], expect!["done"]);
    check(0, Exit::Code(1), &finished, "1 failed", &[], expect!["done"]);
    // Exit 1 with a test unfinished but no timeout traceback: pytest stopped (`-x`), no crash.
    let stopped = events(&[], Some("t.py::a"));
    check(0, Exit::Code(1), &stopped, "", &[], expect!["done"]);
    // A crash before any test started: nothing to leave out, nothing to restart after.
    check(0, Exit::Signal(11), &events(&[], None), "", &[], expect!["done"]);
}

#[test]
fn restarts_stop_after_max_restarts_with_a_setup_finding() {
    let evs = events(&[], Some("t.py::boom"));
    check(
        MAX_RESTARTS - 1,
        Exit::Signal(6),
        &evs,
        "",
        &["t.py::x"],
        expect![[r#"restart without ["t.py::x", "t.py::boom"]"#]],
    );
    check(
        MAX_RESTARTS,
        Exit::Signal(6),
        &evs,
        "",
        &["t.py::x"],
        expect![[
            r#"give up (Setup: the tests crashed or hung 11 times; stopped restarting: the tests after the last crash did not run (see each crash finding)), leaving out ["t.py::x", "t.py::boom"]"#
        ]],
    );
}

#[test]
fn a_finding_is_added_once_per_kind_and_test() {
    let f = |kind, test: &str, message: &str| {
        Finding::new(kind, Some(test.to_owned()), message.to_owned())
    };
    let mut findings = vec![f(FindingKind::Hang, "t.py::slow", "first")];
    add_once(
        &mut findings,
        [
            f(FindingKind::Hang, "t.py::slow", "again, from a repeated traceback"),
            f(FindingKind::Crash, "t.py::slow", "another kind"),
            f(FindingKind::Hang, "t.py::other", "another test"),
        ],
    );
    let shown: Vec<String> =
        findings.iter().map(|f| format!("{} {:?} {}", f.kind, f.test, f.message)).collect();
    expect![[r#"
        [
            "hang Some(\"t.py::slow\") first",
            "crash Some(\"t.py::slow\") another kind",
            "hang Some(\"t.py::other\") another test",
        ]
    "#]]
    .assert_debug_eq(&shown);
}

#[test]
fn a_failure_that_passes_plainly_is_order_dependent() {
    let mut findings = vec![
        Finding::new(FindingKind::TestFailure, Some("t.py::a".to_owned()), "boom".to_owned()),
        Finding::new(FindingKind::TestFailure, Some("t.py::b".to_owned()), "bang".to_owned()),
    ];
    let plain = events::parse_events(concat!(
        r#"{"event":"end","test":"t.py::a","outcome":"passed"}"#,
        "\n",
        r#"{"event":"end","test":"t.py::b","outcome":"failed"}"#,
    ));
    mark_order_dependent(&mut findings, &plain);
    assert_eq!(findings[0].kind, FindingKind::OrderDependent);
    assert!(
        findings[0].message.ends_with("the hunting run said:\nboom"),
        "{}",
        findings[0].message
    );
    assert_eq!(findings[1].kind, FindingKind::TestFailure);
}

#[test]
fn only_tests_that_passed_plainly_are_thread_safety_findings() {
    let plain = events(&["t.py::a", "t.py::b"], None);
    let parallel = events::parse_events(concat!(
        r#"{"event":"session"}"#,
        "\n",
        r#"{"event":"end","test":"t.py::a","outcome":"failed","longrepr":"assert counter == 4000"}"#,
        "\n",
        r#"{"event":"end","test":"t.py::c","outcome":"failed","longrepr":"fails anyway"}"#,
    ));
    let found = thread_safety_findings(&plain, &parallel, &Exit::Code(1), "");
    let shown: Vec<String> =
        found.iter().map(|f| format!("{} {:?}: {}", f.kind, f.test, f.message)).collect();
    expect![[r#"
        [
            "thread-safety Some(\"t.py::a\"): passes alone, fails when 4 threads run it at once (pytest-run-parallel --parallel-threads=4): test-failure: assert counter == 4000",
        ]
    "#]]
    .assert_debug_eq(&shown);
}

/// `modules` in report.json is what the test process loaded (the plugin's `module` events),
/// not what was installed; an installed compiled module no test imported is a note.
#[test]
fn modules_are_what_the_tests_loaded_and_the_rest_are_not_exercised() {
    let compiled: BTreeMap<String, String> = [
        ("pkg._speed", "/venv/site/pkg/_speed.so"),
        ("pkg.sub._used", "/venv/site/pkg/sub/_used.so"),
        ("pkg.sub._unused", "/venv/site/pkg/sub/_unused.so"),
    ]
    .map(|(n, f)| (n.to_owned(), f.to_owned()))
    .into();
    let evs = events::parse_events(concat!(
        r#"{"event":"session"}"#,
        "\n",
        r#"{"event":"module","name":"pkg._speed","file":"/venv/site/pkg/_speed.so"}"#,
        "\n",
        r#"{"event":"module","name":"pkg._pure","file":"/venv/site/pkg/_pure.py"}"#,
        "\n",
        r#"{"event":"module","name":"pkg.sub._used","file":"/elsewhere/_used.so"}"#,
        "\n",
        // A restart reports the module again: the last report is kept.
        r#"{"event":"module","name":"pkg._speed","file":"/venv/site/pkg/_speed.so"}"#,
    ));
    let (loaded, notes) = loaded_modules(&evs, &compiled);
    expect![[r#"
        (
            {
                "pkg._speed": "/venv/site/pkg/_speed.so",
                "pkg.sub._used": "/elsewhere/_used.so",
            },
            [
                "not exercised: pkg.sub._unused (/venv/site/pkg/sub/_unused.so)",
            ],
        )
    "#]]
    .assert_debug_eq(&(loaded, notes));
    // No module events (no test imported anything): every installed module is a note.
    let (loaded, notes) = loaded_modules(&events(&["t.py::a"], None), &compiled);
    assert!(loaded.is_empty());
    assert_eq!(notes.len(), 3);
}
