//! Snapshot tests of [`compare`] on hand-written facts checked against the real promises in
//! `matrix/variants.toml`, and tests that run the probe with the machine's own `python3`.

use std::collections::BTreeMap;

use camino::Utf8Path;
use expect_test::{Expect, expect};
use matrix::{Matrix, Promise};

use crate::{
    ConfigValue, Facts, FailedImport, ProbeError, RefcountCheck, compare, parse_facts, probe,
    render_diff,
};

fn promise(variant: &str) -> Promise {
    let dir = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix");
    let matrix = match Matrix::load(&dir) {
        Ok(m) => m,
        Err(e) => panic!("the repository's matrix must load: {e}"),
    };
    match matrix.variant(variant) {
        Some(v) => v.promise.clone(),
        None => panic!("matrix/variants.toml has no variant {variant}"),
    }
}

/// Compares `facts` with the real promise of `variant` and checks the rendered diff.
fn check(variant: &str, facts: &Facts, expect: Expect) {
    expect.assert_eq(&render_diff(&compare(&promise(variant), facts)));
}

fn facts(json: &str) -> Facts {
    match parse_facts(json) {
        Ok(f) => f,
        Err(e) => panic!("hand-written facts must parse: {e}"),
    }
}

/// What a 3.13.5 `--with-pydebug` build reports.
fn debug_facts() -> Facts {
    facts(
        r#"{
        "version": "3.13.5", "abiflags": "d",
        "ext_suffix": ".cpython-313d-x86_64-linux-gnu.so",
        "config_vars": {
            "Py_DEBUG": {"sysconfig": 1, "pyconfig_h": 1},
            "Py_TRACE_REFS": {"sysconfig": 0, "pyconfig_h": 0},
            "Py_REF_DEBUG": {"sysconfig": null, "pyconfig_h": null},
            "WITH_PYMALLOC": {"sysconfig": 1, "pyconfig_h": 1},
            "WITH_VALGRIND": {"sysconfig": 0, "pyconfig_h": 0},
            "Py_GIL_DISABLED": {"sysconfig": 0, "pyconfig_h": 0},
            "Py_ENABLE_SHARED": {"sysconfig": 0, "pyconfig_h": null}
        },
        "pyconfig_h": "/prefix/include/python3.13d/pyconfig.h", "pyconfig_h_error": null,
        "config_args": "'--prefix=/prefix' '--with-pydebug'", "cc": "gcc",
        "has_gettotalrefcount": true, "has_getobjects": false, "gil_enabled": true,
        "allocator": "pymalloc_debug", "allocator_error": null, "pythonmalloc": null,
        "failed_imports": [
            {"module": "_gdbm", "required": false, "error": "ModuleNotFoundError: No module named '_gdbm'"}
        ],
        "refcount_check": {"delta": 1, "error": null},
        "getobjects_check": null
    }"#,
    )
}

/// What a 3.13.5 release build reports.
fn release_facts() -> Facts {
    facts(
        r#"{
        "version": "3.13.5", "abiflags": "",
        "ext_suffix": ".cpython-313-x86_64-linux-gnu.so",
        "config_vars": {
            "Py_DEBUG": {"sysconfig": 0, "pyconfig_h": 0},
            "Py_TRACE_REFS": {"sysconfig": 0, "pyconfig_h": 0},
            "Py_REF_DEBUG": {"sysconfig": null, "pyconfig_h": null},
            "WITH_PYMALLOC": {"sysconfig": 1, "pyconfig_h": 1},
            "WITH_VALGRIND": {"sysconfig": 0, "pyconfig_h": 0},
            "Py_GIL_DISABLED": {"sysconfig": 0, "pyconfig_h": 0},
            "Py_ENABLE_SHARED": {"sysconfig": 0, "pyconfig_h": null}
        },
        "pyconfig_h": "/prefix/include/python3.13/pyconfig.h", "pyconfig_h_error": null,
        "config_args": "'--prefix=/prefix'", "cc": "gcc",
        "has_gettotalrefcount": false, "has_getobjects": false, "gil_enabled": true,
        "allocator": "pymalloc", "allocator_error": null, "pythonmalloc": null,
        "failed_imports": [], "refcount_check": null, "getobjects_check": null
    }"#,
    )
}

#[test]
fn debug_build_keeps_the_debug_promise() {
    check(
        "debug",
        &debug_facts(),
        expect![[r#"
        no mismatches: the interpreter keeps its promise
    "#]],
    );
}

#[test]
fn release_build_claimed_as_debug() {
    let facts = release_facts();
    check(
        "debug",
        &facts,
        expect![[r#"
        4 mismatches (- promised, + got):
        abiflags
          - "d"
          + ""
        sysconfig Py_DEBUG
          - 1
          + 0
        sys.gettotalrefcount
          - present
          + absent
        allocator
          - "pymalloc_debug"
          + "pymalloc" (PYTHONMALLOC unset)
    "#]],
    );
    let first = compare(&promise("debug"), &facts).first().map(ToString::to_string);
    expect![[r#"Some("abiflags: promised \"d\", got \"\"")"#]].assert_eq(&format!("{first:?}"));
}

#[test]
fn missing_ssl() {
    let mut facts = debug_facts();
    facts.failed_imports.push(FailedImport {
        module: "ssl".to_owned(),
        required: true,
        error: "ModuleNotFoundError: No module named '_ssl'".to_owned(),
    });
    check(
        "debug",
        &facts,
        expect![[r#"
        1 mismatch (- promised, + got):
        import ssl
          - importable (required)
          + ModuleNotFoundError: No module named '_ssl'
    "#]],
    );
}

#[test]
fn failed_refcount_behaviour() {
    let mut facts = debug_facts();
    facts.refcount_check = Some(RefcountCheck { delta: Some(0), error: None });
    check(
        "debug",
        &facts,
        expect![[r#"
        1 mismatch (- promised, + got):
        refcount total
          - Py_IncRef raises sys.gettotalrefcount() by at least 1
          + it rose by 0
    "#]],
    );

    facts.refcount_check = Some(RefcountCheck {
        delta: None,
        error: Some(
            "ctypes unavailable: ModuleNotFoundError: No module named '_ctypes'".to_owned(),
        ),
    });
    check(
        "debug",
        &facts,
        expect![[r#"
        1 mismatch (- promised, + got):
        refcount total
          - Py_IncRef raises sys.gettotalrefcount() by at least 1
          + the check could not run (ctypes unavailable: ModuleNotFoundError: No module named '_ctypes')
    "#]],
    );

    // The release promise says sys.gettotalrefcount is absent: an interpreter that has it is
    // reported for that, not for how the function behaves.
    check(
        "release",
        &facts,
        expect![[r#"
        4 mismatches (- promised, + got):
        abiflags
          - ""
          + "d"
        sysconfig Py_DEBUG
          - 0
          + 1
        sys.gettotalrefcount
          - absent
          + present
        allocator
          - "pymalloc"
          + "pymalloc_debug" (PYTHONMALLOC unset)
    "#]],
    );
}

#[test]
fn pyconfig_h_disagrees_with_sysconfig() {
    let mut facts = debug_facts();
    if let Some(var) = facts.config_vars.get_mut("Py_TRACE_REFS") {
        var.pyconfig_h = Some(ConfigValue::Int(1));
    }
    // Undefined in sysconfig and `/* #undef */` in the header agree.
    if let Some(var) = facts.config_vars.get_mut("WITH_VALGRIND") {
        var.sysconfig = None;
    }
    check(
        "debug",
        &facts,
        expect![[r#"
        1 mismatch (- promised, + got):
        pyconfig.h Py_TRACE_REFS
          - 0 (as sysconfig reports)
          + 1
    "#]],
    );

    facts.pyconfig_h_error =
        Some("FileNotFoundError: [Errno 2] No such file or directory: 'pyconfig.h'".to_owned());
    check(
        "debug",
        &facts,
        expect![[r#"
        1 mismatch (- promised, + got):
        pyconfig.h
          - readable, to cross-check sysconfig
          + FileNotFoundError: [Errno 2] No such file or directory: 'pyconfig.h'
    "#]],
    );
}

#[test]
fn unreadable_allocator_is_a_mismatch() {
    let mut facts = release_facts();
    facts.allocator = None;
    facts.allocator_error = Some(
        "_testinternalcapi: ModuleNotFoundError: No module named '_testinternalcapi'; \
         _testcapi: ModuleNotFoundError: No module named '_testcapi'"
            .to_owned(),
    );
    check(
        "release",
        &facts,
        expect![[r#"
        1 mismatch (- promised, + got):
        allocator
          - "pymalloc"
          + could not read allocator (_testinternalcapi: ModuleNotFoundError: No module named '_testinternalcapi'; _testcapi: ModuleNotFoundError: No module named '_testcapi')
    "#]],
    );
}

#[test]
fn garbage_is_a_parse_error() {
    let err = parse_facts("Traceback (most recent call last):").map(|_| ());
    expect![[r#"Err("the probe's output is not its JSON facts (expected value at line 1 column 1); it begins \"Traceback (most recent call last):\"; are probe.py and probe::Facts out of step?")"#]]
        .assert_eq(&format!("{:?}", err.map_err(|e| e.to_string())));
}

fn host_python() -> &'static Utf8Path {
    Utf8Path::new("python3")
}

#[test]
fn host_python_is_a_release_build() {
    let facts = match probe(host_python(), &BTreeMap::new()) {
        Ok(f) => f,
        Err(e) => panic!("probing the machine's python3 (a release build) must work: {e}"),
    };
    assert_eq!(facts.abiflags, "");
    assert!(!facts.has_gettotalrefcount);
    assert_eq!(facts.refcount_check, None);
    // The host may lack _testcapi or optional modules; everything else must match.
    let mismatches: Vec<String> = compare(&promise("release"), &facts)
        .into_iter()
        .filter(|m| m.what != "allocator" && !m.what.starts_with("import "))
        .map(|m| m.to_string())
        .collect();
    assert_eq!(mismatches, Vec::<String>::new(), "{facts:#?}");
}

#[test]
fn a_plain_build_breaks_every_sanitizer_promise() {
    let facts = match probe(host_python(), &BTreeMap::new()) {
        Ok(f) => f,
        Err(e) => panic!("probing the machine's python3 must work: {e}"),
    };
    let mut out = String::new();
    for variant in ["tsan", "ubsan", "asan"] {
        let sanitizer: Vec<String> = compare(&promise(variant), &facts)
            .into_iter()
            .filter(|m| m.what.starts_with("sanitizer "))
            .map(|m| m.to_string())
            .collect();
        out.push_str(&format!("{variant}: {}\n", sanitizer.join("; ")));
    }
    expect![[r#"
        tsan: sanitizer thread: promised in the interpreter: __tsan_init resolves, -fsanitize=thread in PY_CFLAGS, got __tsan_init does not resolve; PY_CFLAGS lacks it
        ubsan: sanitizer undefined: promised in the interpreter: __ubsan_handle_add_overflow resolves, -fsanitize=undefined in PY_CFLAGS, got __ubsan_handle_add_overflow does not resolve; PY_CFLAGS lacks it
        asan: sanitizer address: promised in the interpreter: __asan_init resolves, -fsanitize=address in PY_CFLAGS, got __asan_init does not resolve; PY_CFLAGS lacks it
    "#]].assert_eq(&out);
}

#[test]
fn the_callers_environment_reaches_the_interpreter() {
    let env = BTreeMap::from([("PYTHONMALLOC".to_owned(), "malloc".to_owned())]);
    let facts = match probe(host_python(), &env) {
        Ok(f) => f,
        Err(e) => panic!("probing the machine's python3 must work: {e}"),
    };
    assert_eq!(facts.pythonmalloc.as_deref(), Some("malloc"));
    if let Some(allocator) = &facts.allocator {
        assert_eq!(allocator, "malloc", "PYTHONMALLOC must not be ignored (as -I would)");
    }
}

#[test]
fn failing_interpreter_reports_its_stderr() {
    let env = BTreeMap::from([("PYTHONHOME".to_owned(), "/nonexistent".to_owned())]);
    match probe(host_python(), &env) {
        Err(ProbeError::Failed { stderr_tail, .. }) => {
            assert!(stderr_tail.contains("Fatal Python error"), "{stderr_tail}");
        }
        other => panic!("a python that cannot start must be ProbeError::Failed, got {other:?}"),
    }
}

#[test]
fn missing_interpreter() {
    let err = probe(Utf8Path::new("/nonexistent/bin/python3"), &BTreeMap::new()).map(|_| ());
    expect![[r#"Err("cannot run /nonexistent/bin/python3: No such file or directory (os error 2); is the cell built and the path right?")"#]]
        .assert_eq(&format!("{:?}", err.map_err(|e| e.to_string())));
}
