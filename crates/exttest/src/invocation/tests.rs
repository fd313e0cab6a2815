use std::collections::BTreeMap;

use expect_test::{Expect, expect};

use super::*;
use crate::{layout::Installed, suite::Source};

fn suite() -> Suite {
    Suite {
        name: "pkg".to_owned(),
        source: Source::Dir("/p".into()),
        tests: Vec::new(),
        test_deps: Vec::new(),
        build_env: BTreeMap::new(),
        pytest_args: vec!["-x".to_owned()],
        test_command: None,
        valgrind_select: Some("not slow".to_owned()),
        timeout_seconds: 120,
        sha256: None,
        twin_env: BTreeMap::new(),
        settings: Default::default(),
        constraints: None,
    }
}

fn detectors() -> Detectors {
    Detectors {
        leaks: false,
        leak_types: false,
        leak_signals: Vec::new(),
        valgrind: false,
        asan: false,
        tsan: false,
        ubsan: false,
        free_threaded: false,
        env: [("PYTHONFAULTHANDLER".to_owned(), "1".to_owned())].into(),
        extension_cflags: Vec::new(),
    }
}

fn prepared() -> Prepared {
    Prepared {
        dir: "/w/ext/pkg".into(),
        src: "/w/ext/pkg/src".into(),
        run_tree: "/w/ext/pkg/run".into(),
        installed: Installed {
            dist: "pkg".to_owned(),
            version: "1.0".to_owned(),
            site: "/w/ext/pkg/venv/lib/python3.13/site-packages".into(),
            suffix: ".cpython-313d-x86_64-linux-gnu.so".to_owned(),
            top_level: vec!["pkg".to_owned()],
            compiled: BTreeMap::new(),
            twins: BTreeMap::new(),
            errors: Vec::new(),
        },
        pytest_options: vec!["--rootdir=/site".to_owned()],
        suite_args: vec!["-x".to_owned()],
        test_paths: vec!["tests".to_owned()],
        node_root: "/w/ext/pkg/run".into(),
        modules_file: "/w/ext/pkg/modules.json".into(),
        environment: crate::Environment {
            pip: "25.1.1".to_owned(),
            pytest: Some("9.2.0".to_owned()),
            project: "pkg".to_owned(),
            constraints: Vec::new(),
            packages: Vec::new(),
            build: Vec::new(),
        },
    }
}

/// The invocation as a reader checks it: the limit, the directory, the variables this run
/// sets (the plugin's directory shortened), one argument per line.
fn show(inv: &Invocation) -> String {
    let mut out = format!(
        "limit {}s in {}\n",
        inv.limit.as_secs(),
        inv.cwd.as_deref().expect("a test run has a directory")
    );
    for (k, v) in &inv.env {
        let v = if k == "PYTHONPATH" { "<plugin dir>" } else { v };
        out.push_str(&format!("{k}={v}\n"));
    }
    for a in &inv.argv {
        out.push_str(&format!("  {a}\n"));
    }
    out
}

fn check(suite: &Suite, detectors: &Detectors, kind: RunKind<'_>, expect: Expect) {
    let prepared = prepared();
    let runs = TestRuns {
        cpython_source: Utf8Path::new("/cpython"),
        suite,
        detectors,
        prepared: &prepared,
        twin: &[],
    };
    let inv = runs.invocation(kind, Utf8Path::new("/w/ext/pkg/events-0.jsonl"));
    assert_eq!(inv.var("PYTHONPATH"), Some(plugin_dir().as_str()));
    expect.assert_eq(&show(&inv));
}

#[test]
fn the_plain_run_with_deselected_tests() {
    let deselect = ["tests/test_a.py::crashes".to_owned(), "tests/test_a.py::ended".to_owned()];
    check(
        &suite(),
        &detectors(),
        RunKind::Tests { deselect: &deselect },
        expect![[r#"
            limit 1200s in /w/ext/pkg/run
            PYTHONPATH=<plugin dir>
            PYTHONFAULTHANDLER=1
              /w/ext/pkg/venv/bin/python
              -m
              pytest
              -p
              debug_matrix_pytest
              -p
              no:cacheprovider
              -q
              -rfE
              --dm-results=/w/ext/pkg/events-0.jsonl
              --dm-modules=/w/ext/pkg/modules.json
              --dm-timeout=120
              --dm-mark-stderr
              --deselect=tests/test_a.py::crashes
              --deselect=tests/test_a.py::ended
              -x
              --rootdir=/site
              tests
        "#]],
    );
}

#[test]
fn leak_hunting_and_its_plain_confirmation_of_failures() {
    let hunting = Detectors { leaks: true, leak_signals: vec!["blocks".to_owned()], ..detectors() };
    check(
        &suite(),
        &hunting,
        RunKind::Tests { deselect: &[] },
        expect![[r#"
            limit 1200s in /w/ext/pkg/run
            PYTHONPATH=<plugin dir>
            PYTHONFAULTHANDLER=1
              /w/ext/pkg/venv/bin/python
              -m
              pytest
              -p
              debug_matrix_pytest
              -p
              no:cacheprovider
              -q
              -rfE
              --dm-results=/w/ext/pkg/events-0.jsonl
              --dm-modules=/w/ext/pkg/modules.json
              --dm-timeout=120
              --dm-mark-stderr
              --dm-leaks
              --dm-leak-signals=blocks
              -x
              --rootdir=/site
              tests
        "#]],
    );
    // The confirmation runs the failures alone (node ids under the node root), without leak
    // hunting.
    let failed = ["tests/test_a.py::fails".to_owned()];
    check(
        &suite(),
        &hunting,
        RunKind::Confirm { targets: &failed },
        expect![[r#"
            limit 1200s in /w/ext/pkg/run
            PYTHONPATH=<plugin dir>
            PYTHONFAULTHANDLER=1
              /w/ext/pkg/venv/bin/python
              -m
              pytest
              -p
              debug_matrix_pytest
              -p
              no:cacheprovider
              -q
              -rfE
              --dm-results=/w/ext/pkg/events-0.jsonl
              --dm-modules=/w/ext/pkg/modules.json
              --dm-timeout=120
              --dm-mark-stderr
              -x
              --rootdir=/site
              /w/ext/pkg/run/tests/test_a.py::fails
        "#]],
    );
}

#[test]
fn the_twin_runs_the_leaks_again_with_leak_hunting_and_the_switch() {
    let hunting = Detectors { leaks: true, ..detectors() };
    let leaks = ["tests/test_a.py::grows".to_owned()];
    let switch = [("PURE_PYTHON".to_owned(), "1".to_owned())];
    check(
        &suite(),
        &hunting,
        RunKind::Twin { targets: &leaks, switch: &switch },
        expect![[r#"
            limit 1200s in /w/ext/pkg/run
            PYTHONPATH=<plugin dir>
            PYTHONFAULTHANDLER=1
            PURE_PYTHON=1
              /w/ext/pkg/venv/bin/python
              -m
              pytest
              -p
              debug_matrix_pytest
              -p
              no:cacheprovider
              -q
              -rfE
              --dm-results=/w/ext/pkg/events-0.jsonl
              --dm-modules=/w/ext/pkg/modules.json
              --dm-timeout=120
              --dm-mark-stderr
              --dm-leaks
              -x
              --rootdir=/site
              /w/ext/pkg/run/tests/test_a.py::grows
        "#]],
    );
}

#[test]
fn with_a_twin_the_plain_run_defers_a_leaks_evidence_to_the_run_of_the_leaks_alone() {
    let hunting = Detectors { leaks: true, ..detectors() };
    let prepared = prepared();
    let switch = [("PURE_PYTHON".to_owned(), "1".to_owned())];
    let suite = suite();
    let runs = TestRuns {
        cpython_source: Utf8Path::new("/cpython"),
        suite: &suite,
        detectors: &hunting,
        prepared: &prepared,
        twin: &switch,
    };
    let deferred = |kind| {
        runs.invocation(kind, Utf8Path::new("/e.jsonl"))
            .argv
            .contains(&"--dm-leak-evidence=deferred".to_owned())
    };
    let leaks = ["tests/test_a.py::grows".to_owned()];
    assert!(deferred(RunKind::Tests { deselect: &[] }));
    assert!(!deferred(RunKind::Twin { targets: &leaks, switch: &switch }));
    assert!(!deferred(RunKind::Evidence { targets: &leaks }));
    let no_twin = TestRuns { twin: &[], ..runs };
    assert!(
        !no_twin
            .invocation(RunKind::Tests { deselect: &[] }, Utf8Path::new("/e.jsonl"))
            .argv
            .contains(&"--dm-leak-evidence=deferred".to_owned())
    );
}

#[test]
fn valgrind_prefixes_the_run_and_stretches_its_limits() {
    let valgrind = Detectors {
        valgrind: true,
        env: [
            ("PYTHONFAULTHANDLER".to_owned(), "1".to_owned()),
            ("PYTHONMALLOC".to_owned(), "malloc".to_owned()),
        ]
        .into(),
        ..detectors()
    };
    check(
        &suite(),
        &valgrind,
        RunKind::Tests { deselect: &[] },
        expect![[r#"
            limit 3600s in /w/ext/pkg/run
            PYTHONPATH=<plugin dir>
            PYTHONFAULTHANDLER=1
            PYTHONMALLOC=malloc
              valgrind
              --tool=memcheck
              --leak-check=full
              --show-leak-kinds=definite
              --errors-for-leak-kinds=definite
              --num-callers=30
              --child-silent-after-fork=yes
              --suppressions=/cpython/Misc/valgrind-python.supp
              /w/ext/pkg/venv/bin/python
              -m
              pytest
              -p
              debug_matrix_pytest
              -p
              no:cacheprovider
              -q
              -rfE
              --dm-results=/w/ext/pkg/events-0.jsonl
              --dm-modules=/w/ext/pkg/modules.json
              --dm-timeout=2400
              --dm-mark-stderr
              -k
              not slow
              -x
              --rootdir=/site
              tests
        "#]],
    );
}

#[test]
fn sanitizer_runs_log_to_files_with_the_cells_suppressions() {
    let tsan = Detectors {
        tsan: true,
        free_threaded: true,
        env: [("TSAN_OPTIONS".to_owned(), "halt_on_error=0".to_owned())].into(),
        ..detectors()
    };
    check(
        &suite(),
        &tsan,
        RunKind::Tests { deselect: &[] },
        expect![[r#"
            limit 1200s in /w/ext/pkg/run
            PYTHONPATH=<plugin dir>
            TSAN_OPTIONS=halt_on_error=0
            TSAN_OPTIONS=halt_on_error=0:suppressions=/cpython/Tools/tsan/suppressions_free_threading.txt:log_path=/w/ext/pkg/sanitizer/events-0:exitcode=0
              /w/ext/pkg/venv/bin/python
              -m
              pytest
              -p
              debug_matrix_pytest
              -p
              no:cacheprovider
              -q
              -rfE
              --dm-results=/w/ext/pkg/events-0.jsonl
              --dm-modules=/w/ext/pkg/modules.json
              --dm-timeout=120
              --dm-mark-stderr
              -p
              no:run-parallel
              --dm-sanitizer-log=/w/ext/pkg/sanitizer/events-0
              -x
              --rootdir=/site
              tests
        "#]],
    );
    let ubsan = Detectors {
        ubsan: true,
        env: [("UBSAN_OPTIONS".to_owned(), "print_stacktrace=1:halt_on_error=1".to_owned())].into(),
        ..detectors()
    };
    let prefix = Utf8Path::new("/w/ext/pkg/sanitizer/setup");
    let cpython = Utf8Path::new("/cpython");
    // The set-up steps get only ours (they must not halt on CPython's reports) and no
    // byte-compiling; a run adds to the variant's.
    expect![[r#"
        [
            (
                "PIP_NO_COMPILE",
                "1",
            ),
            (
                "UBSAN_OPTIONS",
                "halt_on_error=0:log_path=/w/ext/pkg/sanitizer/setup",
            ),
        ]
    "#]]
    .assert_debug_eq(&sanitizer_env(&ubsan, cpython, prefix, SanitizerUse::Setup));
    expect![[r#"
        [
            (
                "UBSAN_OPTIONS",
                "print_stacktrace=1:halt_on_error=1:log_path=/w/ext/pkg/sanitizer/setup",
            ),
        ]
    "#]]
    .assert_debug_eq(&sanitizer_env(&ubsan, cpython, prefix, SanitizerUse::Run));
    let tsan_gil = Detectors { free_threaded: false, ..tsan.clone() };
    expect![[r#"
        [
            (
                "PIP_NO_COMPILE",
                "1",
            ),
            (
                "TSAN_OPTIONS",
                "suppressions=/cpython/Tools/tsan/suppressions.txt:log_path=/w/ext/pkg/sanitizer/setup:exitcode=0",
            ),
        ]
    "#]]
    .assert_debug_eq(&sanitizer_env(&tsan_gil, cpython, prefix, SanitizerUse::Setup));
    assert!(sanitizer_env(&detectors(), cpython, prefix, SanitizerUse::Setup).is_empty());
}

#[test]
fn race_hunting_runs_every_test_in_threads_without_leak_hunting() {
    let free_threaded = Detectors { leaks: true, free_threaded: true, ..detectors() };
    let deselect = ["tests/test_a.py::crashes".to_owned()];
    check(
        &suite(),
        &free_threaded,
        RunKind::Races { deselect: &deselect },
        expect![[r#"
            limit 1200s in /w/ext/pkg/run
            PYTHONPATH=<plugin dir>
            PYTHONFAULTHANDLER=1
              /w/ext/pkg/venv/bin/python
              -m
              pytest
              -p
              debug_matrix_pytest
              -p
              no:cacheprovider
              -q
              -rfE
              --dm-results=/w/ext/pkg/events-0.jsonl
              --dm-modules=/w/ext/pkg/modules.json
              --dm-timeout=120
              --dm-mark-stderr
              --deselect=tests/test_a.py::crashes
              -x
              --parallel-threads=4
              --ignore-gil-enabled
              --rootdir=/site
              tests
        "#]],
    );
    // The plain run of the same cell leaves pytest-run-parallel out; a suite that asks for
    // threads itself keeps it.
    let first = |suite: &Suite| {
        let prepared = Prepared { suite_args: suite.pytest_args.clone(), ..prepared() };
        let runs = TestRuns {
            cpython_source: Utf8Path::new("/cpython"),
            suite,
            detectors: &free_threaded,
            prepared: &prepared,
            twin: &[],
        };
        runs.invocation(RunKind::Tests { deselect: &[] }, Utf8Path::new("/e.jsonl")).argv
    };
    assert!(first(&suite()).windows(2).any(|w| w == ["-p", "no:run-parallel"]));
    let threaded = Suite { pytest_args: vec!["--parallel-threads=2".to_owned()], ..suite() };
    assert!(!first(&threaded).iter().any(|a| a == "no:run-parallel"));
}

#[test]
fn the_three_timed_runs_of_the_leak_bench() {
    let hunting = Detectors { leaks: true, ..detectors() };
    let prepared = prepared();
    let runs = TestRuns {
        cpython_source: Utf8Path::new("/cpython"),
        suite: &suite(),
        detectors: &hunting,
        prepared: &prepared,
        twin: &[],
    };
    let mut out = String::new();
    for mode in BenchMode::ALL {
        let inv = runs.invocation(RunKind::Bench(mode), Utf8Path::new("/e.jsonl"));
        let dm: Vec<&str> = inv
            .argv
            .iter()
            .map(String::as_str)
            .filter(|a| a.starts_with("--dm-leak") || *a == "-x")
            .collect();
        out.push_str(&format!("{mode:?}: limit {}s {dm:?}\n", inv.limit.as_secs()));
    }
    expect![[r#"
        Plain: limit 3600s ["-x"]
        Hunted: limit 3600s ["--dm-leaks", "-x"]
        Full: limit 3600s ["--dm-leaks", "-x", "--dm-leak-screen=0:0"]
    "#]]
    .assert_eq(&out);
}

#[test]
fn a_suites_own_test_command() {
    let own = Suite {
        test_command: Some(
            ["python", "-m", "unittest", "discover", "-s", "{src}/tests"]
                .map(str::to_owned)
                .to_vec(),
        ),
        ..suite()
    };
    // No plugin options, no deselects (a suite's own runner has no per-test events).
    let deselect = ["t".to_owned()];
    check(
        &own,
        &Detectors { leaks: true, ..detectors() },
        RunKind::Tests { deselect: &deselect },
        expect![[r#"
            limit 1200s in /w/ext/pkg/run
            PYTHONPATH=<plugin dir>
            PYTHONFAULTHANDLER=1
              /w/ext/pkg/venv/bin/python
              -m
              unittest
              discover
              -s
              /w/ext/pkg/src/tests
        "#]],
    );
}

#[test]
fn a_set_up_step_sets_its_variables_after_the_scrub() {
    let inv = Invocation::new("/venv/bin/python")
        .args(["-m", "pip"])
        .arg("install")
        .env("CFLAGS", "-DX")
        .envs([("A", "1")])
        .cwd("/d");
    assert_eq!(inv.limit, SETUP_LIMIT);
    assert_eq!(inv.argv, ["/venv/bin/python", "-m", "pip", "install"]);
    let cmd = inv.command();
    assert_eq!(cmd.get_program(), "/venv/bin/python");
    assert_eq!(cmd.get_current_dir(), Some(std::path::Path::new("/d")));
    let set: Vec<(String, Option<String>)> = cmd
        .get_envs()
        .filter(|(_, v)| v.is_some())
        .map(|(k, v)| {
            (k.to_string_lossy().into_owned(), v.map(|v| v.to_string_lossy().into_owned()))
        })
        .collect();
    assert_eq!(
        set,
        [("A".to_owned(), Some("1".to_owned())), ("CFLAGS".to_owned(), Some("-DX".to_owned()))]
    );
}
