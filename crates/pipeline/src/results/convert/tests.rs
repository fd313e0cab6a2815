//! Unit tests of `results/convert.rs`.

use super::*;

/// Every kind converts to the kind report.json spells the same way.
#[test]
fn finding_kinds_keep_their_names() {
    for k in exttest::FindingKind::ALL {
        assert_eq!(kind(k).name(), k.name(), "{k:?}");
    }
    assert_eq!(exttest::FindingKind::ALL.len(), report::FindingKind::ALL.len());
}

/// A build's outcome is recorded as the build crate serializes it, step by step.
#[test]
fn a_failed_build_keeps_its_step() {
    for step in
        [builder::BuildStep::Configure, builder::BuildStep::Make, builder::BuildStep::Install]
    {
        let status = builder::BuildStatus::Failed {
            phase: step,
            message: "exited with exit status: 2".to_owned(),
            log: format!("/w/logs/{step}.log").into(),
            tail: "Error 2".to_owned(),
        };
        let before = serde_json::to_value(&status).expect("serializable");
        let after = serde_json::to_value(build_status(&status)).expect("serializable");
        assert_eq!(after, before);
        assert_eq!(after["phase"], step.as_str());
    }
}

/// A suite result serializes as it did when report.json stored exttest's type itself:
/// the conversion changes no field of the file.
#[test]
fn a_suite_result_is_recorded_as_exttest_serializes_it() {
    let events = r#"{"calls": 2, "new_objects": {"list": 1.0}, "containers": [{"name": "m.CACHE", "type": "dict", "per_call": 1.0}],
            "orphans": 2, "invisible_entries": {"int": 0.5},
            "refcounts": [{"object": "type m.C", "per_call": 2.0, "unexplained": 1.0}],
            "retained_check": "why not", "persistence_note": "n",
            "persistence": {"calls": 24, "seconds": 0.1, "batches": [[8, 16, 24]], "refs": "linear", "blocks": "stops"},
            "allocations": [{"where": "t.py:1", "blocks_per_call": 3.0, "bytes_per_call": 120}],
            "allocations_error": "e", "seconds": 0.3, "deferred": true,
            "twin": {"env": "PURE=1", "refs": [0], "blocks": [1], "grows": false, "note": "skipped"}}"#;
    let mut result = exttest::SuiteResult::new(
        "3.13.5+debug".parse().expect("a cell"),
        "refbugs".to_owned(),
        vec!["leaks".to_owned()],
        "/w/test.log".into(),
    );
    let mut leak = exttest::Finding::new(
        exttest::FindingKind::RefLeak,
        Some("t.py::test_x".to_owned()),
        "leaks".to_owned(),
    );
    leak.repro = "cargo xtask test 3.13.5+debug --suite refbugs -k test_x".to_owned();
    leak.expected = Some("on purpose".to_owned());
    leak.evidence = Some(Box::new(serde_json::from_str(events).expect("evidence")));
    result.findings.push(leak);
    result.counts.passed = 3;
    result.counts.leak_judged = 2;
    result.gil_enabled = Some(false);
    result.modules.insert("m._c".to_owned(), "/v/_c.so".to_owned());
    result
        .grew_not_judged
        .push(exttest::NotJudged { test: "t.py::test_y".to_owned(), reason: "a cache".to_owned() });
    result.leak_loops.push(exttest::LeakLoop {
        test: "t.py::test_x".to_owned(),
        refs: vec![2, 2],
        blocks: vec![3, 3],
    });
    let package = |name: &str, source| exttest::Package {
        name: name.to_owned(),
        version: "1.0".to_owned(),
        source,
    };
    result.environment = Some(exttest::Environment {
        pip: "25.1.1".to_owned(),
        pytest: Some("9.2.0".to_owned()),
        project: "refbugs".to_owned(),
        constraints: vec!["/m/constraints.txt".into()],
        packages: vec![
            package("a", exttest::PackageSource::Wheel),
            package("b", exttest::PackageSource::Sdist),
            package("c", exttest::PackageSource::Local),
            package("pip", exttest::PackageSource::Venv),
        ],
        build: vec![package("setuptools", exttest::PackageSource::Wheel)],
    });
    let before = serde_json::to_value(&result).expect("serializable");
    let after = serde_json::to_value(suite(&result)).expect("serializable");
    assert_eq!(after, before);
}
