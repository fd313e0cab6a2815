mod protocol;

use expect_test::{Expect, expect};

use super::*;

fn check(events: &str, exit: Exit, log: &str, expect: Expect) {
    let mut out = String::new();
    for f in evaluate(&parse_events(events), &exit, log) {
        out.push_str(&format!("{:?} {:?}: {}\n", f.kind, f.test, f.message));
    }
    expect.assert_eq(&out);
}

#[test]
fn a_leak_shows_which_signal_decided() {
    let evs = parse_events(concat!(
        r#"{"event":"leak","test":"t.py::a","refs":[287,287,287],"blocks":[3,3,3],"signals":["blocks"]}"#,
        "\n",
        r#"{"event":"leak","test":"t.py::b","refs":[2,2,2],"blocks":[3,3,3],"signals":["blocks","refs"]}"#,
    ));
    let messages: Vec<String> =
        evaluate(&evs, &Exit::Code(0), "").into_iter().map(|f| f.message).collect();
    expect![[r#"
        leaks: blocks deltas [3, 3, 3] (refs deltas [287, 287, 287] are not a signal on this cell: blocks decide)
        leaks: refs deltas [2, 2, 2], blocks deltas [3, 3, 3]"#]]
    .assert_eq(&messages.join("\n"));
}

#[test]
fn leaks_failures_crashes_hangs() {
    check(
        r#"{"event":"session","gettotalrefcount":true}
{"event":"start","test":"t.py::a"}
{"event":"end","test":"t.py::a","outcome":"passed"}
{"event":"leak","test":"t.py::a","refs":[1,1,1],"blocks":[1,1,1],"types":{"list":3}}
{"event":"start","test":"t.py::b"}
{"event":"end","test":"t.py::b","outcome":"failed","longrepr":"assert 1 == 2"}
{"event":"start","test":"t.py::c"}
{"event":"end","test":"t.py::c","outcome":"skipped"}
{"event":"finish","exitstatus":1,"leaks":1}
"#,
        Exit::Code(1),
        "",
        expect![[r#"
            RefLeak Some("t.py::a"): leaks: refs deltas [1, 1, 1], blocks deltas [1, 1, 1]; leaked objects: list +3
            TestFailure Some("t.py::b"): assert 1 == 2
        "#]],
    );
    check(
        "{\"event\":\"start\",\"test\":\"t.py::boom\"}\n{\"event\":\"end\",\"test\":\"t.py::bo",
        Exit::Signal(11),
        "Fatal Python error: Segmentation fault\n\nCurrent thread 0x1 (most recent call first):\n  File \"t.py\", line 3 in boom",
        expect![[r#"
            Crash Some("t.py::boom"): killed by signal 11 (SIGSEGV); output:
            Fatal Python error: Segmentation fault

            Current thread 0x1 (most recent call first):
              File "t.py", line 3 in boom
        "#]],
    );
    check(
        "{\"event\":\"start\",\"test\":\"t.py::slow\"}\n",
        Exit::Code(1),
        "Timeout (0:00:05)!\nThread 0x1 (most recent call first):\n  File \"t.py\", line 9 in slow",
        expect![[r#"
            Hang Some("t.py::slow"): the test exceeded its timeout (exit 1); traceback:
            Timeout (0:00:05)!
            Thread 0x1 (most recent call first):
              File "t.py", line 9 in slow
        "#]],
    );
    check(
        "{\"event\":\"start\",\"test\":\"t.py::slow\"}\n",
        Exit::TimedOut,
        "...",
        expect![[r#"
            Hang Some("t.py::slow"): the run exceeded its time limit; last output:
            ...
        "#]],
    );
}

/// Issue 18, silent defect 7: a suite of three tests whose second calls `os._exit(0)` read
/// as "1 passed, clean". A session that started and never finished is a finding, naming the
/// test that was running, whatever the exit code.
#[test]
fn a_process_that_exits_before_its_session_ends_is_a_finding() {
    let events = r#"{"event":"session","gettotalrefcount":true}
{"event":"start","test":"t.py::a"}
{"event":"end","test":"t.py::a","outcome":"passed"}
{"event":"start","test":"t.py::exits"}
"#;
    check(
        events,
        Exit::Code(0),
        ".",
        expect![[r#"
            Crash Some("t.py::exits"): the test process exited with 0 before its session ended, during t.py::exits: the tests collected after it never ran; last output:
            .
        "#]],
    );
    // Between tests (a fixture's teardown), with exit 1.
    let between = r#"{"event":"session"}
{"event":"start","test":"t.py::a"}
{"event":"end","test":"t.py::a","outcome":"passed"}
"#;
    check(
        between,
        Exit::Code(1),
        "",
        expect![[r#"
            Crash None: the test process exited with 1 before its session ended: the tests collected after it never ran; last output:

        "#]],
    );
    // A session that finished is judged by its tests alone.
    check(
        &format!("{between}{{\"event\":\"finish\",\"exitstatus\":0,\"leaks\":0}}\n"),
        Exit::Code(0),
        "",
        expect![""],
    );
}

#[test]
fn pytest_errors_are_findings_with_their_text() {
    check(
        concat!(
            r#"{"event":"collect_error","node":"tests/test_a.py","longrepr":"ImportError while importing test module 'tests/test_a.py'.\nE   ModuleNotFoundError: No module named 'pkg._speed'"}"#,
            "\n"
        ),
        Exit::Code(2),
        "",
        expect![[r#"
            CollectionError Some("tests/test_a.py"): ImportError while importing test module 'tests/test_a.py'.
            E   ModuleNotFoundError: No module named 'pkg._speed'
        "#]],
    );
    check(
        "",
        Exit::Code(4),
        "some noise\nERROR: usage: pytest [options] [file_or_dir]\npytest: error: unrecognized arguments: --bogus\n  inifile: /p/pyproject.toml\n",
        expect![[r#"
            Setup None: pytest refused its command line (exit 4):
            ERROR: usage: pytest [options] [file_or_dir]
            pytest: error: unrecognized arguments: --bogus
              inifile: /p/pyproject.toml
        "#]],
    );
}

#[test]
fn a_run_that_never_started_is_not_clean() {
    check(
        "",
        Exit::Code(1),
        "Traceback (most recent call last):\nModuleNotFoundError: No module named 'Cython'\n",
        expect![[r#"
            Setup None: pytest stopped before any test ran (exit 1); its output:
            Traceback (most recent call last):
            ModuleNotFoundError: No module named 'Cython'
        "#]],
    );
}

#[test]
fn leak_hunting_counts_what_it_judged() {
    let events = parse_events(concat!(
        r#"{"event":"end","test":"a","outcome":"passed","leak_check":{"refs":[0,0,0]}}"#,
        "\n",
        r#"{"event":"end","test":"b","outcome":"skipped","not_judged":"skipped"}"#,
        "\n",
        r#"{"event":"end","test":"c","outcome":"passed","not_judged":"not re-runnable: run 1 of 5 raised KeyError"}"#,
        "\n",
        r#"{"event":"end","test":"d","outcome":"skipped","xfail":true,"not_judged":"xfailed"}"#,
        "\n",
    ));
    expect![[r#"Counts { passed: 2, failed: 0, skipped: 2, leak_judged: 1, leak_not_judged: 3, not_rerunnable: 1 }"#]]
        .assert_eq(&format!("{:?}", count(&events)));
}

#[test]
fn compiled_modules_must_come_from_the_venv() {
    let compiled: BTreeMap<String, String> = [
        ("pkg._speed".to_owned(), "/venv/site/pkg/_speed.so".to_owned()),
        ("pkg._other".to_owned(), "/venv/site/pkg/_other.so".to_owned()),
        ("pkg._unused".to_owned(), "/venv/site/pkg/_unused.so".to_owned()),
    ]
    .into();
    let twins: BTreeMap<String, Vec<String>> = [
        ("pkg._speed".to_owned(), vec!["pkg._pure".to_owned()]),
        ("pkg._unused".to_owned(), vec!["pkg.unused".to_owned()]),
    ]
    .into();
    let events = parse_events(concat!(
        r#"{"event":"module","name":"pkg._pure","file":"/venv/site/pkg/_pure.py"}"#,
        "\n",
        r#"{"event":"module","name":"pkg._other","file":"/src/pkg/_other.so"}"#,
        "\n",
    ));
    let found = module_findings(&events, &compiled, &twins);
    let text: Vec<&str> = found.iter().map(|f| f.message.as_str()).collect();
    expect![[r#"
        [
            "the tests loaded pkg._other from /src/pkg/_other.so, not from the venv's /venv/site/pkg/_other.so: they did not test this cell's build",
            "the tests never loaded the compiled pkg._speed (/venv/site/pkg/_speed.so) but loaded its pure-Python twin pkg._pure (/venv/site/pkg/_pure.py): they tested the fallback, not the C code",
        ]"#]]
    .assert_eq(&format!("{text:#?}"));
    // Loaded from the venv, or neither it nor a twin loaded: nothing to say.
    let events =
        parse_events(r#"{"event":"module","name":"pkg._speed","file":"/venv/site/pkg/_speed.so"}"#);
    let twins_only: BTreeMap<String, String> =
        [("pkg._speed".to_owned(), "/venv/site/pkg/_speed.so".to_owned())].into();
    assert!(module_findings(&events, &twins_only, &twins).is_empty());
    // Tests ran, and not one compiled module was imported.
    let events = parse_events(r#"{"event":"end","test":"t.py::a","outcome":"passed"}"#);
    let found = module_findings(&events, &twins_only, &twins);
    expect![[r#"["the tests ran without ever importing the suite's compiled modules (pkg._speed): they did not test the C code"]"#]]
        .assert_eq(&format!("{:?}", found.iter().map(|f| &f.message).collect::<Vec<_>>()));
}

#[test]
fn the_gil_turned_on_is_a_finding_and_recorded() {
    let show = |lines: &str| {
        let (state, finding) = gil(&parse_events(lines));
        format!("{state:?} {:?}", finding.map(|f| (f.kind, f.test, f.message)))
    };
    let off = r#"{"event":"gil","enabled":false,"test":null,"modules":[]}"#;
    let on = r#"{"event":"gil","enabled":true,"test":null,"modules":["gilful._gilful"]}"#;
    expect!["None None"].assert_eq(&show(""));
    expect!["Some(false) None"].assert_eq(&show(off));
    expect![[r#"Some(true) Some((GilEnabled, None, "the GIL was turned on while the tests were collected, after importing gilful._gilful: an extension module that does not declare Py_mod_gil (Py_MOD_GIL_NOT_USED, or PyUnstable_Module_SetGIL for single-phase init) re-enables it for the whole process, so the tests after it ran with the GIL and tested nothing free-threaded"))"#]].assert_eq(&show(&format!("{off}\n{on}")));
}

#[test]
fn items_sharing_a_node_id_are_all_counted() {
    let events = parse_events(concat!(
        r#"{"event":"end","test":"t.py::t.py","outcome":"passed"}"#,
        "\n",
        r#"{"event":"end","test":"t.py::t.py","outcome":"passed"}"#,
        "\n",
    ));
    assert_eq!(count(&events).passed, 2);
}

#[test]
fn deferred_evidence_comes_from_the_run_of_the_leaks_alone() {
    let first = parse_events(concat!(
        r#"{"event":"leak","test":"t.py::leaks","refs":[1,1,1],"blocks":[1,1,1],"evidence":{"calls":2,"seconds":0.1,"deferred":true}}"#,
        "\n",
        r#"{"event":"leak","test":"t.py::cache","refs":[3,3,3],"blocks":[2,2,2],"evidence":{"calls":2,"seconds":0.1,"deferred":true}}"#,
        "\n",
    ));
    let mut findings = evaluate(&first, &Exit::Code(0), "");
    let mut counts = Counts { leak_judged: 2, ..Counts::default() };
    let alone = parse_events(concat!(
        r#"{"event":"leak","test":"t.py::leaks","refs":[1,1,1],"blocks":[1,1,1],"evidence":{"calls":2,"seconds":0.1,"persistence":{"calls":24,"seconds":0.1,"batches":[[8,8,8],[16,16,16]],"refs":"linear","blocks":"linear"}}}"#,
        "\n",
        r#"{"event":"end","test":"t.py::cache","outcome":"passed","duration":1,"not_judged":"own state: its growth stops","leak_check_details":{"refs":[3,3,3],"blocks":[2,2,2],"leaked":false,"seconds":1}}"#,
        "\n",
    ));
    let dismissed = apply_evidence(&mut findings, &mut counts, &alone);
    let shown: Vec<String> = findings.iter().map(|f| f.message.clone()).collect();
    expect![[r#"
        leaks: refs deltas [1, 1, 1], blocks deltas [1, 1, 1]
          over 24 more calls: refs linear, blocks linear (refs/blocks per call by batch: 1/1 → 1/1)
        t.py::cache: own state: its growth stops (in a run of its own, the pure-Python twin having not grown); first seen as: leaks: refs deltas [3, 3, 3], blocks deltas [2, 2, 2]
        judged 1, not judged 1"#]]
    .assert_eq(&format!(
        "{}\n{}\njudged {}, not judged {}",
        shown.join("\n"),
        dismissed.iter().map(|n| format!("{}: {}", n.test, n.reason)).collect::<Vec<_>>().join("\n"),
        counts.leak_judged,
        counts.leak_not_judged
    ));
    assert!(!findings[0].evidence.as_ref().is_some_and(|e| e.deferred));
}
