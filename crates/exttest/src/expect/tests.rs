//! Unit tests of `expect.rs`.

use expect_test::expect;

use super::*;

fn entry(cells: &[&str]) -> Expected {
    Expected {
        suite: "refbugs".to_owned(),
        test: "test_leak".to_owned(),
        kind: FindingKind::RefLeak,
        cells: cells.iter().map(|c| c.parse().expect("a pattern")).collect(),
        reason: "on purpose".to_owned(),
        origin: "matrix/extensions.toml".to_owned(),
    }
}

fn real_matrix() -> Matrix {
    let dir = camino::Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix");
    Matrix::load(&dir).expect("the repository's matrix loads")
}

#[test]
fn which_cells_and_tests() {
    let m = real_matrix();
    let cell = |name: &str| m.cell(name).expect("a cell");
    let e = entry(&["debug", "3.13+trace-refs", "3.11.2+valgrind"]);
    assert!(e.applies("refbugs", &cell("3.13.5+debug")));
    assert!(e.applies("refbugs", &cell("3.13.5+trace-refs")));
    assert!(!e.applies("refbugs", &cell("3.11.2+trace-refs")));
    assert!(e.applies("refbugs", &cell("3.11.2+valgrind")));
    assert!(!e.applies("refbugs", &cell("3.13.5+valgrind")));
    assert!(!e.applies("other", &cell("3.13.5+debug")));
    assert!(entry(&["3.13"]).applies("refbugs", &cell("3.13.15+asan")));
    assert!(entry(&[]).applies("refbugs", &cell("3.13.5+asan")));
    assert!(e.names("tests/test_x.py::test_leak"));
    assert!(e.names("tests/test_x.py::test_leak[a-1]"));
    assert!(e.names("test_leak"));
    assert!(!e.names("tests/test_x.py::test_leak_not"));
    assert_eq!(e.check(&m), Ok(()));
    expect![[r#"Err("matrix/extensions.toml: [[expected]] for suite `refbugs`, test `test_leak`: cells = \"3.13+nope\": unknown variant `nope`: the matrix has release, debug, ref-debug, trace-refs, valgrind, pymalloc-debug, asan, freethreaded, freethreaded-debug, tsan, ubsan (see matrix/variants.toml)")"#]]
        .assert_eq(&format!("{:?}", entry(&["3.13+nope"]).check(&m)));
    expect![[r#"Err("matrix/extensions.toml: [[expected]] for suite `refbugs`, test `test_leak`: cells = \"3.1+debug\": unknown version `3.1`: the matrix has 3.11.2, 3.13.5, 3.13.15, 3.14.10, 3.15.2 (see matrix/versions.toml)")"#]]
        .assert_eq(&format!("{:?}", entry(&["3.1+debug"]).check(&m)));
}

#[test]
fn strict_like_xfail() {
    let e = entry(&[]);
    let leak = Finding::new(FindingKind::RefLeak, Some("t.py::test_leak".into()), "m".into());
    let other = Finding::new(FindingKind::Crash, Some("t.py::test_leak".into()), "c".into());
    let ran: BTreeSet<String> = ["t.py::test_leak".to_owned()].into();

    let mut found = vec![leak.clone(), other];
    apply(&mut found, &[&e], &ran);
    let summary: Vec<String> =
        found.iter().map(|f| format!("{:?} expected={:?}", f.kind, f.expected)).collect();
    expect![[r#"["RefLeak expected=Some(\"on purpose\")", "Crash expected=None"]"#]]
        .assert_eq(&format!("{summary:?}"));

    // The test ran and did not leak: the entry is stale.
    let mut found = Vec::new();
    apply(&mut found, &[&e], &ran);
    expect![[r#"[Finding { kind: ExpectedMissing, test: Some("test_leak"), message: "the expected ref-leak finding did not appear (expected because: on purpose); if it is fixed, remove its [[expected]] entry from matrix/extensions.toml", repro: "", expected: None, evidence: None }]"#]]
        .assert_eq(&format!("{found:?}"));

    // The test did not run (deselected with -k): nothing to say.
    let mut found = Vec::new();
    apply(&mut found, &[&e], &BTreeSet::new());
    assert!(found.is_empty());
}
