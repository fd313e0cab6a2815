//! Extension suites: `matrix/extensions.toml`, or one project directory given with `--ext`.

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};
use matrix::MatrixError;
use serde::Deserialize;

/// Where a suite's project comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A project directory (absolute).
    Dir(Utf8PathBuf),
    /// A PyPI sdist, `name==version`.
    Pypi(String),
}

/// One extension test suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    /// Identity, used in paths and reports.
    pub name: String,
    /// The project.
    pub source: Source,
    /// Test directory inside the project.
    pub tests: String,
    /// Extra packages for the test run.
    pub test_deps: Vec<String>,
    /// Environment for the extension's build.
    pub build_env: BTreeMap<String, String>,
    /// Extra pytest arguments.
    pub pytest_args: Vec<String>,
    /// The suite's own test command instead of pytest (`python` is the venv's interpreter,
    /// `{src}` the project copy); runs without per-test leak hunting.
    pub test_command: Option<Vec<String>>,
    /// `-k` expression for the tests run under valgrind.
    pub valgrind_select: Option<String>,
    /// Per-test timeout.
    pub timeout_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    suite: Vec<RawSuite>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSuite {
    name: String,
    path: Option<Utf8PathBuf>,
    pypi: Option<String>,
    #[serde(default = "default_tests")]
    tests: String,
    #[serde(default)]
    test_deps: Vec<String>,
    #[serde(default)]
    build_env: BTreeMap<String, String>,
    #[serde(default)]
    pytest_args: Vec<String>,
    test_command: Option<Vec<String>>,
    valgrind_select: Option<String>,
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
}

fn default_tests() -> String {
    "tests".to_owned()
}

fn default_timeout() -> u64 {
    120
}

/// Reads `extensions.toml`; relative `path`s are resolved against `repo_root`.
pub fn load_suites(path: &Utf8Path, repo_root: &Utf8Path) -> Result<Vec<Suite>, MatrixError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| MatrixError::Read { path: path.to_owned(), source })?;
    parse_suites(path, &text, repo_root)
}

/// Parses the contents of an `extensions.toml`.
pub fn parse_suites(
    path: &Utf8Path,
    text: &str,
    repo_root: &Utf8Path,
) -> Result<Vec<Suite>, MatrixError> {
    let file: File = matrix::parse_toml(path, text)?;
    let locate = |name: &str| {
        let needle = format!("\"{name}\"");
        let start = text.find(&needle).unwrap_or(0);
        start..start + needle.len()
    };
    let mut suites: Vec<Suite> = Vec::new();
    for raw in file.suite {
        let fail = |message: String| Err(MatrixError::at(path, text, locate(&raw.name), message));
        if raw.name.is_empty()
            || !raw.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return fail(format!("suite name `{}` must be letters, digits, `-` and `_`", raw.name));
        }
        if suites.iter().any(|s| s.name == raw.name) {
            return fail(format!("suite `{}` is declared twice", raw.name));
        }
        let source = match (raw.path, raw.pypi) {
            (Some(dir), None) => Source::Dir(repo_root.join(dir)),
            (None, Some(spec))
                if spec.split_once("==").is_some_and(|(n, v)| !n.is_empty() && !v.is_empty()) =>
            {
                Source::Pypi(spec)
            }
            (None, Some(spec)) => {
                return fail(format!(
                    "suite `{}`: pypi = \"{spec}\" must pin a version: \"name==version\"",
                    raw.name
                ));
            }
            _ => {
                return fail(format!("suite `{}`: give exactly one of `path` or `pypi`", raw.name));
            }
        };
        suites.push(Suite {
            name: raw.name,
            source,
            tests: raw.tests,
            test_deps: raw.test_deps,
            build_env: raw.build_env,
            pytest_args: raw.pytest_args,
            test_command: raw.test_command,
            valgrind_select: raw.valgrind_select,
            timeout_seconds: raw.timeout_seconds,
        });
    }
    Ok(suites)
}

/// An ad hoc suite for the project directory `dir` (`cargo xtask test --ext DIR`).
pub fn suite_for_dir(dir: &Utf8Path) -> Suite {
    let name = dir
        .file_name()
        .unwrap_or("ext")
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    Suite {
        name,
        source: Source::Dir(dir.to_owned()),
        tests: default_tests(),
        test_deps: Vec::new(),
        build_env: BTreeMap::new(),
        pytest_args: Vec::new(),
        test_command: None,
        valgrind_select: None,
        timeout_seconds: default_timeout(),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(text: &str, expect: Expect) {
        let actual = match parse_suites(
            Utf8Path::new("matrix/extensions.toml"),
            text,
            Utf8Path::new("/repo"),
        ) {
            Ok(suites) => format!("{suites:#?}"),
            Err(e) => format!("error: {e}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn the_repository_file_loads() -> Result<(), MatrixError> {
        let root = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let suites = load_suites(&root.join("matrix/extensions.toml"), &root)?;
        let names: Vec<&str> = suites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["refbugs", "markupsafe"]);
        Ok(())
    }

    #[test]
    fn a_suite_with_its_own_test_command() {
        let text = "[[suite]]\nname = \"u\"\npath = \"x\"\ntest-command = [\"python\", \"-m\", \"unittest\"]\n";
        let suites =
            parse_suites(Utf8Path::new("e.toml"), text, Utf8Path::new("/repo")).expect("parses");
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
                error: matrix/extensions.toml:2:8: suite `m`: pypi = "markupsafe" must pin a version: "name==version"
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
                error: matrix/extensions.toml:4:1: unknown field `timeout`, expected one of `name`, `path`, `pypi`, `tests`, `test-deps`, `build-env`, `pytest-args`, `test-command`, `valgrind-select`, `timeout-seconds`
                     4 | timeout = 3
                       | ^"#]],
        );
    }
}
