//! Tests of [`super`]: the one table in its three places, errors with file:line:key,
//! precedence, names.

use camino::Utf8Path;
use expect_test::{Expect, expect};

use super::*;

/// A project directory under a temporary root, with `files`.
fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Utf8PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Utf8Path::from_path(tmp.path()).expect("utf-8").join("proj");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write");
    }
    (tmp, dir)
}

/// What `read_project` makes of `files`: the name, the settings, cells and expected entries,
/// or the error, with the temporary root as `$DIR`.
fn check(files: &[(&str, &str)], expect: Expect) {
    let (_tmp, dir) = project(files);
    let actual = match read_project(&dir, None) {
        Ok(p) => {
            let mut out = format!("name: {}\n", p.name);
            if let Some(c) = &p.config {
                out.push_str(&format!("from: {}\n{:#?}\n", c.describe(), c.settings));
                out.push_str(&format!("cells: {:?}\n", c.cells));
                for e in &c.expected {
                    let cells: Vec<String> = e.cells.iter().map(|p| p.to_string()).collect();
                    out.push_str(&format!(
                        "expected: {} {} {} {cells:?} {:?} ({})\n",
                        e.suite,
                        e.test,
                        crate::expect::kind_name(e.kind),
                        e.reason,
                        e.origin
                    ));
                }
            }
            out
        }
        Err(e) => format!("error: {e:#}"),
    };
    expect.assert_eq(&actual.replace(dir.as_str(), "$DIR"));
}

const PYPROJECT: &str = r#"[build-system]
requires = ["setuptools"]

[project]
name = "My_Ext.Core"
version = "1"

[tool.pytest.ini_options]
addopts = "-q"

[tool.debug-matrix]
tests = "checks"
test-deps = ["hypothesis"]
timeout-seconds = 60
cells = ["3.13+debug", "3.13.5+valgrind"]

[[tool.debug-matrix.expected]]
test = "test_leak"
kind = "ref-leak"
cells = ["debug"]
reason = "on purpose"
"#;

#[test]
fn a_pyproject_table() {
    check(
        &[("pyproject.toml", PYPROJECT)],
        expect![[r#"
            name: my-ext-core
            from: $DIR/pyproject.toml [tool.debug-matrix]
            Settings {
                tests: Some(
                    [
                        "checks",
                    ],
                ),
                test_deps: Some(
                    [
                        "hypothesis",
                    ],
                ),
                build_env: None,
                pytest_args: None,
                test_command: None,
                valgrind_select: None,
                timeout_seconds: Some(
                    60,
                ),
                twin_env: None,
                constraints: None,
            }
            cells: Some(Patterns([Pattern { version: Some(PyVersion { major: 3, minor: 13, patch: None }), variant: Some("debug") }, Pattern { version: Some(PyVersion { major: 3, minor: 13, patch: Some(5) }), variant: Some("valgrind") }]))
            expected: my-ext-core test_leak ref-leak ["debug"] "on purpose" ($DIR/pyproject.toml [tool.debug-matrix])
        "#]],
    );
}

#[test]
fn a_debug_matrix_toml_beside_setup_py() {
    let own = "name = \"legacy\"\nset = \"ci\"\npytest-args = [\"-x\"]\n\n[[expected]]\ntest = \"t\"\nkind = \"crash\"\nreason = \"known\"\n";
    check(
        &[("setup.py", ""), ("debug-matrix.toml", own)],
        expect![[r#"
            name: legacy
            from: $DIR/debug-matrix.toml
            Settings {
                tests: None,
                test_deps: None,
                build_env: None,
                pytest_args: Some(
                    [
                        "-x",
                    ],
                ),
                test_command: None,
                valgrind_select: None,
                timeout_seconds: None,
                twin_env: None,
                constraints: None,
            }
            cells: Some(Set("ci"))
            expected: legacy t crash [] "known" ($DIR/debug-matrix.toml)
        "#]],
    );
    // Beside a pyproject with a name, `name` may be left out, or repeat the project's.
    check(
        &[
            ("pyproject.toml", "[project]\nname = \"a.b\"\n"),
            ("debug-matrix.toml", "name = \"A_B\"\n"),
        ],
        expect![[r#"
            name: a-b
            from: $DIR/debug-matrix.toml
            Settings {
                tests: None,
                test_deps: None,
                build_env: None,
                pytest_args: None,
                test_command: None,
                valgrind_select: None,
                timeout_seconds: None,
                twin_env: None,
                constraints: None,
            }
            cells: None
        "#]],
    );
    check(
        &[
            ("pyproject.toml", "[project]\nname = \"a.b\"\n"),
            ("debug-matrix.toml", "name = \"other\"\n"),
        ],
        expect![[r#"
            error: $DIR/debug-matrix.toml:1:8: `name` = "other" is not the project's name ([project].name = "a.b" in $DIR/pyproject.toml): the suite is named after the project; remove `name`
                 1 | name = "other"
                   |        ^"#]],
    );
}

#[test]
fn names_are_the_projects_never_the_directorys() {
    check(
        &[("pyproject.toml", "[project]\nname = \"zope.interface\"\n")],
        expect![[r#"
        name: zope-interface
    "#]],
    );
    check(
        &[("setup.cfg", "[options]\nname = no\n[metadata]\nname = Py_YAML\n")],
        expect![[r#"
        name: py-yaml
    "#]],
    );
    check(
        &[("setup.py", "")],
        expect![[
            r#"error: $DIR: the project has no name: no [project].name in pyproject.toml nor [metadata] name in setup.cfg, and a suite is named after its project, never its directory; give one, or write a debug-matrix.toml beside setup.py with `name = "…"` (`cargo xtask init $DIR` starts one)"#
        ]],
    );
    check(
        &[("setup.py", ""), ("debug-matrix.toml", "tests = \"t\"\n")],
        expect![[
            r#"error: $DIR/debug-matrix.toml: the project has no name ([project].name in pyproject.toml, [metadata] name in setup.cfg): give `name = "…"` in debug-matrix.toml"#
        ]],
    );
    check(
        &[("pyproject.toml", "[project]\nname = \"-bad\"\n")],
        expect![[r#"
        error: $DIR/pyproject.toml:2:8: `-bad` is not a project name (letters, digits, `.`, `_`, `-`, starting and ending with a letter or digit: PEP 508)
             2 | name = "-bad"
               |        ^"#]],
    );
    for (given, normalized) in
        [("Foo", "foo"), ("zope.interface", "zope-interface"), ("a__b-.c", "a-b-c"), ("X1", "x1")]
    {
        assert_eq!(normalize(given).as_deref(), Ok(normalized));
    }
}

#[test]
fn errors_name_the_file_line_and_key() {
    let table = |body: &str| format!("[project]\nname = \"p\"\n\n[tool.debug-matrix]\n{body}");
    let cases = [
        table("timeout = 3\n"),
        table("timeout-seconds = \"3\"\n"),
        table("test-deps = [\n  \"a\",\n  3,\n]\n"),
        table("path = \"x\"\n"),
        table("cells = [\"3.x+debug\"]\n"),
        table("cells = [\"debug\"]\nset = \"ci\"\n"),
        table("tests = \"../up\"\n"),
        table("twin-env = { \"A-B\" = \"1\" }\n"),
        table(
            "[[tool.debug-matrix.expected]]\nsuite = \"p\"\ntest = \"t\"\nkind = \"crash\"\nreason = \"r\"\n",
        ),
        table("[[tool.debug-matrix.expected]]\ntest = \"t\"\nkind = \"leak\"\nreason = \"r\"\n"),
        table("[[tool.debug-matrix.expected]]\ntest = \"t\"\nkind = \"crash\"\n"),
    ];
    let mut out = String::new();
    for text in &cases {
        let (_tmp, dir) = project(&[("pyproject.toml", text)]);
        let err = read_project(&dir, None).expect_err(text);
        out.push_str(&format!("{err:#}\n").replace(dir.as_str(), "$DIR"));
    }
    let (_tmp, dir) =
        project(&[("pyproject.toml", &table("tests = \"t\"\n")), ("debug-matrix.toml", "")]);
    out.push_str(
        &format!("{:#}\n", read_project(&dir, None).expect_err("two"))
            .replace(dir.as_str(), "$DIR"),
    );
    expect![[r#"
        $DIR/pyproject.toml:5:1: unknown key `timeout` in [tool.debug-matrix]: it takes `name`, `cells`, `set`, `expected`, `tests`, `test-deps`, `build-env`, `pytest-args`, `test-command`, `valgrind-select`, `timeout-seconds`, `twin-env`, `constraints`
             5 | timeout = 3
               | ^
        $DIR/pyproject.toml:5:19: `timeout-seconds`: invalid type: string "3", expected u64
             5 | timeout-seconds = "3"
               |                   ^
        $DIR/pyproject.toml:7:3: `test-deps`: invalid type: integer `3`, expected a string
             7 |   3,
               |   ^
        $DIR/pyproject.toml:5:8: `path` does not belong in [tool.debug-matrix]: a project's table describes the project it is in: its suite is named after [project].name and tested from its own directory
             5 | path = "x"
               |        ^
        $DIR/pyproject.toml:5:9: `cells`: `3.x+debug` is not a cell pattern (`3.x` is not a version such as 3.13 or 3.13.5): write VERSION+VARIANT (3.13+debug, 3.13.5+debug), a variant (debug) or a version (3.13)
             5 | cells = ["3.x+debug"]
               |         ^
        $DIR/pyproject.toml:6:7: give `cells` (patterns) or `set` (a set of matrix/cells.toml), not both
             6 | set = "ci"
               |       ^
        $DIR/pyproject.toml:5:9: `tests`: "../up" must be a path inside the project
             5 | tests = "../up"
               |         ^
        $DIR/pyproject.toml:5:12: `twin-env` names `A-B`, not an environment variable (letters, digits and `_`)
             5 | twin-env = { "A-B" = "1" }
               |            ^
        $DIR/pyproject.toml:5:1: `suite` = "p": a project's expected findings are its own (suite `p`); leave `suite` out
             5 | [[tool.debug-matrix.expected]]
               | ^
        $DIR/pyproject.toml:7:8: `kind`: unknown variant `leak`, expected one of `ref-leak`, `invalid-memory`, `memory-leak`, `fatal-error`, `sanitizer`, `data-race`, `undefined-behavior`, `gil-enabled`, `thread-safety`, `crash`, `hang`, `test-failure`, `collection-error`, `setup`, `expected-missing`, `order-dependent`
             7 | kind = "leak"
               |        ^
        $DIR/pyproject.toml:5:1: `tool.debug-matrix.expected`: missing field `reason`
             5 | [[tool.debug-matrix.expected]]
               | ^
        $DIR/pyproject.toml has [tool.debug-matrix] and $DIR/debug-matrix.toml is beside it: keep one of them
    "#]].assert_eq(&out);
}

/// The matrix wins field by field; each override is said; fields only one sets are kept.
#[test]
fn the_matrix_wins_field_by_field_and_says_so() {
    let matrix = Settings {
        timeout_seconds: Some(300),
        pytest_args: Some(vec!["-x".into()]),
        tests: Some(vec!["checks".into()]),
        ..Settings::default()
    };
    let project = Settings {
        timeout_seconds: Some(60),
        tests: Some(vec!["checks".into()]),
        test_deps: Some(vec!["hypothesis".into()]),
        ..Settings::default()
    };
    let (merged, notes) = merge(
        "refbugs",
        &matrix,
        "matrix/extensions.toml",
        &project,
        "p/pyproject.toml [tool.debug-matrix]",
    );
    expect![[r#"
        Settings {
            tests: Some(
                [
                    "checks",
                ],
            ),
            test_deps: Some(
                [
                    "hypothesis",
                ],
            ),
            build_env: None,
            pytest_args: Some(
                [
                    "-x",
                ],
            ),
            test_command: None,
            valgrind_select: None,
            timeout_seconds: Some(
                300,
            ),
            twin_env: None,
            constraints: None,
        }
        suite `refbugs`: `timeout-seconds` = 300 from matrix/extensions.toml overrides 60 from p/pyproject.toml [tool.debug-matrix]"#]].assert_eq(&format!("{merged:#?}\n{}", notes.join("\n")));
}

/// docs/configuration.md and the comment atop matrix/extensions.toml document every key a
/// place admits: a key added to [`SuiteTable`] without its documentation fails here.
#[test]
fn every_key_is_documented() {
    let root = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/configuration.md")).expect("the doc");
    let extensions =
        std::fs::read_to_string(root.join("matrix/extensions.toml")).expect("extensions.toml");
    let mut missing = Vec::new();
    for place in [Place::Matrix, Place::Pyproject, Place::DebugMatrixToml] {
        for key in place.keys() {
            if !doc.contains(&format!("| `{key}` |")) && !doc.contains(&format!("`{key}`,")) {
                missing.push(format!("docs/configuration.md: `{key}` ({})", place.table()));
            }
        }
    }
    for key in Place::Matrix.keys() {
        if !extensions.lines().any(|l| l.starts_with(&format!("#   {key} "))) {
            missing.push(format!("matrix/extensions.toml's header: `{key}`"));
        }
    }
    assert!(missing.is_empty(), "undocumented keys:\n{}", missing.join("\n"));
}
