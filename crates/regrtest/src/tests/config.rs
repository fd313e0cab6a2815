//! `cpython-tests.toml`: the repository's file loads; mistakes are reported at file:line:col.

use camino::Utf8Path;
use expect_test::{Expect, expect};

use crate::{Invocation, TestsFile};

/// Parses `text` and renders the profiles and known failures, or the error.
fn check(text: &str, expect: Expect) {
    let actual = match TestsFile::parse(Utf8Path::new("matrix/cpython-tests.toml"), text) {
        Err(e) => format!("error: {e}"),
        Ok(file) => {
            let mut out = String::new();
            for p in file.profiles.values() {
                let inv =
                    Invocation { jobs: 2, junit: "/c/t.xml".into(), tempdir: "/tmp/x".into() };
                out.push_str(&format!(
                    "{}: {}\n",
                    p.name,
                    p.command_line("/p/bin/python3".into(), &inv).join(" ")
                ));
                out.push_str(&format!("  run timeout {} min\n", p.run_timeout_minutes));
            }
            for env in ["sandbox", "local"] {
                let known: Vec<_> =
                    file.known_failures_in(env, "debug").into_iter().map(|k| k.test).collect();
                out.push_str(&format!("known in {env}: {}\n", known.join(" ")));
            }
            out
        }
    };
    expect.assert_eq(&actual);
}

const PROFILE: &str = r#"
[profile.smoke]
description = "d"
tests = ["test_sys", "test_int"]
args = ["-w"]
timeout-seconds = 60
run-timeout-minutes = 5
"#;

#[test]
fn the_repository_file_loads() {
    let path = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix/cpython-tests.toml");
    let file = TestsFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
    assert_eq!(names, ["full", "smoke"]);
    assert!(file.profiles["full"].tests.is_empty(), "full runs regrtest's default selection");
}

#[test]
fn profiles_and_known_failures() {
    check(
        &format!(
            "{PROFILE}
[profile.full]
description = \"everything\"
python-args = [\"-u\", \"-bb\"]
timeout-seconds = 600
run-timeout-minutes = 60

[[known-failure]]
test = \"test_socket\"
environments = [\"sandbox\", \"ci-arm\"]
reason = \"no network\"
"
        ),
        expect![[r#"
            full: /p/bin/python3 -u -bb -m test -j2 --timeout 600 --junit-xml /c/t.xml --tempdir /tmp/x
              run timeout 60 min
            smoke: /p/bin/python3 -m test -j2 --timeout 60 --junit-xml /c/t.xml --tempdir /tmp/x -w test_sys test_int
              run timeout 5 min
            known in sandbox: test_socket
            known in local: 
        "#]],
    );
}

#[test]
fn mistakes() {
    check(
        &PROFILE.replace("\"-w\"", "\"-w\", \"-j4\""),
        expect![[r#"
            error: matrix/cpython-tests.toml:5:15: `-j` is set by the tool (--timeout from `timeout-seconds`, -j from `cargo xtask test-cpython --jobs`, the paths from the cell directory)
                 5 | args = ["-w", "-j4"]
                   |               ^"#]],
    );
    check(
        &PROFILE.replace("\"-w\"", "\"--fast-ci\""),
        expect![[r#"
            error: matrix/cpython-tests.toml:5:9: `--fast-ci` re-executes the interpreter with -E, which drops the variant's runtime-env; spell out its options instead (see the comment at the top)
                 5 | args = ["--fast-ci"]
                   |         ^"#]],
    );
    check(
        &format!("{PROFILE}python-args = [\"-E\"]\n"),
        expect![[r#"
            error: matrix/cpython-tests.toml:8:16: `-E` ignores PYTHON* variables and so the variant's runtime-env
                 8 | python-args = ["-E"]
                   |                ^"#]],
    );
    check(
        &PROFILE.replace("\"test_int\"", "\"test_sys\""),
        expect![[r#"
            error: matrix/cpython-tests.toml:4:22: `test_sys` is listed twice
                 4 | tests = ["test_sys", "test_sys"]
                   |                      ^"#]],
    );
    check(
        &PROFILE.replace("\"test_int\"", "\"test int\""),
        expect![[r#"
            error: matrix/cpython-tests.toml:4:22: `test int` is not a test module name (e.g. test_sys)
                 4 | tests = ["test_sys", "test int"]
                   |                      ^"#]],
    );
    check(
        &PROFILE.replace("timeout-seconds = 60", "timeout-seconds = 0"),
        expect![[r#"
            error: matrix/cpython-tests.toml:6:19: a timeout must be positive
                 6 | timeout-seconds = 0
                   |                   ^"#]],
    );
    check(
        &PROFILE.replace("timeout-seconds = 60", "timeout = 60"),
        expect![[r#"
            error: matrix/cpython-tests.toml:6:1: unknown field `timeout`, expected one of `description`, `tests`, `python-args`, `args`, `timeout-seconds`, `run-timeout-minutes`
                 6 | timeout = 60
                   | ^"#]],
    );
    check(
        "[[known-failure]]\ntest = \"test_socket\"\nenvironments = [\"Sandbox\"]\nreason = \"x\"\n",
        expect![[r#"
            error: matrix/cpython-tests.toml:1:1: environment `Sandbox` must be lowercase letters, digits and `-`
                 1 | [[known-failure]]
                   | ^"#]],
    );
    check(
        "[[known-failure]]\ntest = \"test_socket\"\nenvironments = [\"sandbox\"]\nreason = \"x\"\n\
         [[known-failure]]\ntest = \"test_socket\"\nenvironments = [\"sandbox\"]\nreason = \"y\"\n",
        expect![[r#"
            error: matrix/cpython-tests.toml:5:1: `test_socket` is already a known failure in `sandbox`
                 5 | [[known-failure]]
                   | ^"#]],
    );
}

#[test]
fn unknown_profile() {
    let file = TestsFile::parse(Utf8Path::new("m.toml"), PROFILE).unwrap_or_else(|e| panic!("{e}"));
    let actual = match file.profile("nightly") {
        Ok(p) => format!("found {}", p.name),
        Err(e) => e.to_string(),
    };
    expect!["unknown test profile `nightly`: m.toml defines `smoke`"].assert_eq(&actual);
}

#[test]
fn a_known_failure_on_an_unknown_variant_is_refused() {
    let text = format!(
        "{PROFILE}\n[[known-failure]]\ntest = \"test_x\"\nvariants = [\"debgu\"]\nreason = \"r\"\n"
    );
    let file = TestsFile::parse(Utf8Path::new("m.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    file.check_variants(&["debgu"]).expect("a known variant");
    let err = file.check_variants(&["release", "debug"]).expect_err("a typo");
    expect!["m.toml: known failure `test_x` names variant `debgu`, which matrix/variants.toml does not define (it has release, debug); fix the name"].assert_eq(&err.to_string());
}
