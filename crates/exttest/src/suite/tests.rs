//! Unit tests of `suite.rs`.

use expect_test::{Expect, expect};

use super::*;

fn check(text: &str, expect: Expect) {
    let actual =
        match parse_suites(Utf8Path::new("matrix/extensions.toml"), text, Utf8Path::new("/repo")) {
            Ok(ext) => format!("{:#?}", ext.suites),
            Err(e) => format!("error: {e}"),
        };
    expect.assert_eq(&actual);
}

#[test]
fn the_repository_file_loads() -> Result<(), MatrixError> {
    let root = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ext = load_suites(&root.join("matrix/extensions.toml"), &root)?;
    let names: Vec<&str> = ext.suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(&names[..2], ["refbugs", "markupsafe"]);
    let m = matrix::Matrix::load(&root.join("matrix"))?;
    assert_eq!(ext.check(&m), Ok(()));
    Ok(())
}

#[test]
fn a_suite_with_its_own_test_command() {
    let text = "[[suite]]\nname = \"u\"\npath = \"x\"\ntest-command = [\"python\", \"-m\", \"unittest\"]\n";
    let suites =
        parse_suites(Utf8Path::new("e.toml"), text, Utf8Path::new("/repo")).expect("parses").suites;
    assert_eq!(
        suites[0].test_command.as_deref(),
        Some(&["python".to_owned(), "-m".to_owned(), "unittest".to_owned()][..])
    );
    assert_eq!(suites[0].source, Source::Dir("/repo/x".into()));
}

#[test]
fn errors() {
    check(
        "[[suite]]\nname = \"m\"\npypi = \"markupsafe\"\n",
        expect![[r#"
                error: matrix/extensions.toml:2:8: suite `m`: pypi = "markupsafe": must pin a version: NAME==VERSION
                     2 | name = "m"
                       |        ^"#]],
    );
    check(
        "[[suite]]\nname = \"m\"\n",
        expect![[r#"
            error: matrix/extensions.toml:2:8: suite `m`: give exactly one of `path` or `pypi`
                 2 | name = "m"
                   |        ^"#]],
    );
    check(
        "[[suite]]\nname = \"m\"\npath = \"x\"\ntimeout = 3\n",
        expect![[r#"
                error: matrix/extensions.toml:4:1: unknown key `timeout` in [[suite]]: it takes `name`, `path`, `pypi`, `sha256`, `tests`, `test-deps`, `build-env`, `pytest-args`, `test-command`, `valgrind-select`, `timeout-seconds`, `twin-env`, `constraints`
                     4 | timeout = 3
                       | ^"#]],
    );
    check(
        "[[suite]]\nname = \"m\"\npath = \"x\"\ntests = \"../elsewhere\"\n",
        expect![[r#"
                error: matrix/extensions.toml:4:9: `tests`: "../elsewhere" must be a path inside the project
                     4 | tests = "../elsewhere"
                       |         ^"#]],
    );
    check(
        "[[suite]]\nname = \"m\"\npath = \"x\"\n[[expected]]\nsuite = \"n\"\ntest = \"t\"\nkind = \"ref-leak\"\nreason = \"r\"\n",
        expect![[r#"
                error: matrix/extensions.toml:5:9: [[expected]] names suite `n`, which is not declared
                     5 | suite = "n"
                       |         ^"#]],
    );
    check(
        "[[suite]]\nname = \"m\"\npath = \"x\"\n[[expected]]\nsuite = \"m\"\ntest = \"t\"\nkind = \"leak\"\nreason = \"r\"\n",
        expect![[r#"
                error: matrix/extensions.toml:7:8: `kind`: unknown variant `leak`, expected one of `ref-leak`, `invalid-memory`, `memory-leak`, `fatal-error`, `sanitizer`, `data-race`, `undefined-behavior`, `gil-enabled`, `thread-safety`, `crash`, `hang`, `test-failure`, `collection-error`, `setup`, `expected-missing`, `order-dependent`
                     7 | kind = "leak"
                       |        ^"#]],
    );
}

#[test]
fn tests_and_expected_findings() {
    let text = "[[suite]]\nname = \"m\"\npath = \"x\"\ntests = [\"a\", \"src/m/tests\"]\n\
                    [[expected]]\nsuite = \"m\"\ntest = \"test_leak\"\nkind = \"ref-leak\"\n\
                    cells = [\"debug\", \"3.13+nope\"]\nreason = \"on purpose\"\n";
    let ext = parse_suites(Utf8Path::new("e.toml"), text, Utf8Path::new("/repo")).expect("parses");
    assert_eq!(ext.suites[0].tests, ["a", "src/m/tests"]);
    let root = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let m = matrix::Matrix::load(&root.join("matrix")).expect("the matrix");
    let cell = |name: &str| m.cell(name).expect("a cell");
    assert_eq!(ext.expected_for("m", &cell("3.13.5+debug")).len(), 1);
    assert_eq!(ext.expected_for("m", &cell("3.13.5+valgrind")).len(), 0);
    expect![[r#"Err("e.toml: [[expected]] for suite `m`, test `test_leak`: cells = \"3.13+nope\": unknown variant `nope`: the matrix has release, debug, ref-debug, trace-refs, valgrind, pymalloc-debug, asan, freethreaded, freethreaded-debug, tsan, ubsan (see matrix/variants.toml)")"#]]
            .assert_eq(&format!("{:?}", ext.check(&m)));
}

#[test]
fn ad_hoc_pypi_suites() {
    let s = suite_for_pypi("zope.interface==8.0").expect("a pin");
    assert_eq!(s.name, "zope-interface");
    assert_eq!(s.source, Source::Pypi(PypiSpec::parse("zope.interface==8.0").expect("a pin")));
    assert_eq!(
        s.source,
        Source::Pypi(PypiSpec { name: "zope.interface".into(), version: "8.0".into() })
    );
    for bad in ["ujson", "ujson>=5", "ujson==", "==5", "ujson==5,<6"] {
        assert!(suite_for_pypi(bad).is_err(), "{bad}");
    }
}

/// `--pypi` names and versions become paths (the sdist cache's `NAME-VERSION`): anything
/// that is not a PEP 508 name and a PEP 440 version's characters is refused before any
/// path is made from it.
#[test]
fn pypi_names_and_versions_that_could_leave_a_directory_are_refused() {
    let mut out = String::new();
    for spec in [
        "../../../../../../tmp/x/PYPIESC==1",
        "pkg==../../1",
        "pkg==1/2",
        "pkg==1..2",
        "/abs==1",
        ".hidden==1",
        "pkg-==1",
        "pkg==1.*",
        "pkg==1 ; rm",
        "zope.interface==8.7",
        "Foo_Bar-baz==1!2.0rc1.post3+local.7",
        " PyYAML == 6.0.4 ",
    ] {
        match PypiSpec::parse(spec) {
            Ok(p) => out.push_str(&format!("{spec:?}: ok {p} -> {}\n", p.dir_name())),
            Err(e) => out.push_str(&format!("{spec:?}: {e}\n")),
        }
    }
    expect![[r#"
            "../../../../../../tmp/x/PYPIESC==1": `../../../../../../tmp/x/PYPIESC` is not a project name (letters, digits, `.`, `_`, `-`, starting and ending with a letter or digit: PEP 508)
            "pkg==../../1": `../../1` is not a pinned version (letters, digits, `.`, `+`, `!`, `_`, `-`, starting and ending with a letter or digit: PEP 440)
            "pkg==1/2": `1/2` is not a pinned version (letters, digits, `.`, `+`, `!`, `_`, `-`, starting and ending with a letter or digit: PEP 440)
            "pkg==1..2": `1..2` is not a pinned version (letters, digits, `.`, `+`, `!`, `_`, `-`, starting and ending with a letter or digit: PEP 440)
            "/abs==1": `/abs` is not a project name (letters, digits, `.`, `_`, `-`, starting and ending with a letter or digit: PEP 508)
            ".hidden==1": `.hidden` is not a project name (letters, digits, `.`, `_`, `-`, starting and ending with a letter or digit: PEP 508)
            "pkg-==1": `pkg-` is not a project name (letters, digits, `.`, `_`, `-`, starting and ending with a letter or digit: PEP 508)
            "pkg==1.*": `1.*` is not a pinned version (letters, digits, `.`, `+`, `!`, `_`, `-`, starting and ending with a letter or digit: PEP 440)
            "pkg==1 ; rm": `1 ; rm` is not a pinned version (letters, digits, `.`, `+`, `!`, `_`, `-`, starting and ending with a letter or digit: PEP 440)
            "zope.interface==8.7": ok zope.interface==8.7 -> zope.interface-8.7
            "Foo_Bar-baz==1!2.0rc1.post3+local.7": ok Foo_Bar-baz==1!2.0rc1.post3+local.7 -> Foo_Bar-baz-1!2.0rc1.post3+local.7
            " PyYAML == 6.0.4 ": ok PyYAML==6.0.4 -> PyYAML-6.0.4
        "#]].assert_eq(&out);
    check(
        "[[suite]]\nname = \"m\"\npypi = \"../m==1\"\n",
        expect![[r#"
            error: matrix/extensions.toml:2:8: suite `m`: pypi = "../m==1": `../m` is not a project name (letters, digits, `.`, `_`, `-`, starting and ending with a letter or digit: PEP 508)
                 2 | name = "m"
                   |        ^"#]],
    );
}

#[test]
fn a_pypi_suite_may_pin_its_sdists_sha256() {
    let digest = "AB".repeat(32);
    let text = format!("[[suite]]\nname = \"m\"\npypi = \"m==1\"\nsha256 = \"{digest}\"\n");
    let ext = parse_suites(Utf8Path::new("e.toml"), &text, Utf8Path::new("/repo")).expect("parses");
    assert_eq!(ext.suites[0].sha256, Some("ab".repeat(32)));
    check(
        "[[suite]]\nname = \"m\"\npypi = \"m==1\"\nsha256 = \"abc\"\n",
        expect![[r#"
            error: matrix/extensions.toml:2:8: suite `m`: sha256 = "abc" is not a sha256 (64 hexadecimal digits, as PyPI shows it for the sdist)
                 2 | name = "m"
                   |        ^"#]],
    );
    check(
        &format!("[[suite]]\nname = \"m\"\npath = \"x\"\nsha256 = \"{digest}\"\n"),
        expect![[r#"
                error: matrix/extensions.toml:2:8: suite `m`: sha256 pins a `pypi` sdist; a `path` project has none
                     2 | name = "m"
                       |        ^"#]],
    );
}
