//! Extension suites: `matrix/extensions.toml`, or one project directory given with `--ext`.

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};
use matrix::MatrixError;
use serde::Deserialize;

use crate::expect::Expected;

/// Where a suite's project comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A project directory (absolute).
    Dir(Utf8PathBuf),
    /// A PyPI sdist, `name==version`.
    Pypi(PypiSpec),
}

/// A pinned PyPI release, `NAME==VERSION`, parsed once where it enters (`--pypi`, a suite's
/// `pypi`): both parts become paths (the sdist cache's directory), so the name must be a
/// PEP 508 name and the version a PEP 440 version's characters, nothing that can leave a
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiSpec {
    /// The project's name as given (`zope.interface`).
    pub name: String,
    /// Its version (`8.7`).
    pub version: String,
}

impl PypiSpec {
    /// Parses `NAME==VERSION` (spaces around either part are dropped). The error says what is
    /// wrong, without the value (callers name it).
    pub fn parse(spec: &str) -> Result<PypiSpec, String> {
        let Some((name, version)) = spec.split_once("==") else {
            return Err("must pin a version: NAME==VERSION".to_owned());
        };
        let (name, version) = (name.trim(), version.trim());
        if name.is_empty() || version.is_empty() {
            return Err("must pin a version: NAME==VERSION".to_owned());
        }
        // PEP 508: ^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$, case-insensitive.
        let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            || !alnum(name.chars().next())
            || !alnum(name.chars().last())
        {
            return Err(format!(
                "`{name}` is not a project name (letters, digits, `.`, `_`, `-`, starting and \
                 ending with a letter or digit: PEP 508)"
            ));
        }
        // PEP 440's characters (`1.0`, `2.0rc1`, `1!2.0.post1+local.1`): one pinned release,
        // no `/`, no `..`, no wildcard or range.
        if !version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '!'))
            || !alnum(version.chars().next())
            || !alnum(version.chars().last())
            || version.contains("..")
        {
            return Err(format!(
                "`{version}` is not a pinned version (letters, digits, `.`, `+`, `!`, `_`, `-`, \
                 starting and ending with a letter or digit: PEP 440)"
            ));
        }
        Ok(PypiSpec { name: name.to_owned(), version: version.to_owned() })
    }

    /// The directory name of its sdist in the shared cache: `NAME-VERSION`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

impl std::fmt::Display for PypiSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=={}", self.name, self.version)
    }
}

/// One extension test suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    /// Identity, used in paths and reports.
    pub name: String,
    /// The project.
    pub source: Source,
    /// Test paths inside the project; empty: found ([`crate::layout::default_tests`]).
    pub tests: Vec<String>,
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
    /// The sdist's sha256 (lowercase hex) a `pypi` suite pins: a download or a cached sdist
    /// with another digest is never tested.
    pub sha256: Option<String>,
    /// The environment that switches the project to its pure-Python implementation
    /// (`twin-env = { PURE_PYTHON = "1" }`): a `ref-leak` finding's test is run again with
    /// it ([`crate::twin`]); empty: the switch [`crate::twin::known_switch`] knows, if any.
    pub twin_env: BTreeMap<String, String>,
    /// The suite's own constraints file (pip's format; `constraints` in the configuration,
    /// relative to its file): wins over `matrix/constraints.txt` for the names it pins.
    pub constraints: Option<Utf8PathBuf>,
}

/// Everything `extensions.toml` declares.
#[derive(Debug, Clone, Default)]
pub struct Extensions {
    /// The suites, in file order.
    pub suites: Vec<Suite>,
    /// Findings accepted on named cells.
    pub expected: Vec<Expected>,
}

impl Extensions {
    /// The entries of `expected` for `suite` on the cell `version`+`variant`.
    pub fn expected_for(&self, suite: &str, version: &str, variant: &str) -> Vec<&Expected> {
        self.expected.iter().filter(|e| e.applies(suite, version, variant)).collect()
    }

    /// Checks that every variant an `[[expected]]` entry names exists.
    pub fn check_variants(&self, variants: &[&str]) -> Result<(), String> {
        for e in &self.expected {
            for v in e.variants() {
                if !variants.contains(&v) {
                    return Err(format!(
                        "[[expected]] for suite `{}`, test `{}`: unknown variant `{v}` \
                         (matrix/variants.toml has {})",
                        e.suite,
                        e.test,
                        variants.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    suite: Vec<RawSuite>,
    #[serde(default)]
    expected: Vec<Expected>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSuite {
    name: String,
    path: Option<Utf8PathBuf>,
    pypi: Option<String>,
    #[serde(default)]
    tests: Paths,
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
    sha256: Option<String>,
    #[serde(default)]
    twin_env: BTreeMap<String, String>,
    constraints: Option<Utf8PathBuf>,
}

/// `tests = "t"` or `tests = ["a", "b"]`.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Paths {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Paths {
    fn into_vec(self) -> Vec<String> {
        match self {
            Paths::None => Vec::new(),
            Paths::One(p) => vec![p],
            Paths::Many(v) => v,
        }
    }
}

fn default_timeout() -> u64 {
    120
}

/// Reads `extensions.toml`; relative `path`s are resolved against `repo_root`.
pub fn load_suites(path: &Utf8Path, repo_root: &Utf8Path) -> Result<Extensions, MatrixError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| MatrixError::Read { path: path.to_owned(), source })?;
    parse_suites(path, &text, repo_root)
}

/// Parses the contents of an `extensions.toml`.
pub fn parse_suites(
    path: &Utf8Path,
    text: &str,
    repo_root: &Utf8Path,
) -> Result<Extensions, MatrixError> {
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
            (None, Some(spec)) => match PypiSpec::parse(&spec) {
                Ok(spec) => Source::Pypi(spec),
                Err(e) => return fail(format!("suite `{}`: pypi = \"{spec}\": {e}", raw.name)),
            },
            _ => {
                return fail(format!("suite `{}`: give exactly one of `path` or `pypi`", raw.name));
            }
        };
        let sha256 = match raw.sha256 {
            Some(_) if !matches!(source, Source::Pypi(_)) => {
                return fail(format!(
                    "suite `{}`: sha256 pins a `pypi` sdist; a `path` project has none",
                    raw.name
                ));
            }
            Some(digest)
                if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                return fail(format!(
                    "suite `{}`: sha256 = \"{digest}\" is not a sha256 (64 hexadecimal digits, \
                     as PyPI shows it for the sdist)",
                    raw.name
                ));
            }
            digest => digest.map(|d| d.to_ascii_lowercase()),
        };
        if let Some(bad) = raw
            .twin_env
            .keys()
            .find(|k| k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return fail(format!(
                "suite `{}`: twin-env names `{bad}`, not an environment variable \
                 (letters, digits and `_`)",
                raw.name
            ));
        }
        let tests = raw.tests.into_vec();
        if let Some(bad) = tests.iter().find(|t| {
            let p = Utf8Path::new(t);
            p.is_absolute() || p.components().any(|c| c.as_str() == "..")
        }) {
            return fail(format!(
                "suite `{}`: tests = \"{bad}\" must be a path inside the project",
                raw.name
            ));
        }
        suites.push(Suite {
            name: raw.name,
            source,
            tests,
            test_deps: raw.test_deps,
            build_env: raw.build_env,
            pytest_args: raw.pytest_args,
            test_command: raw.test_command,
            valgrind_select: raw.valgrind_select,
            timeout_seconds: raw.timeout_seconds,
            sha256,
            twin_env: raw.twin_env,
            constraints: raw
                .constraints
                .map(|c| path.parent().unwrap_or(Utf8Path::new("")).join(c)),
        });
    }
    for e in &file.expected {
        if !suites.iter().any(|s| s.name == e.suite) {
            let needle = format!("\"{}\"", e.suite);
            let start = text.find(&format!("suite = {needle}")).map_or(0, |i| i + 8);
            return Err(MatrixError::at(
                path,
                text,
                start..start + needle.len(),
                format!("[[expected]] names suite `{}`, which is not declared", e.suite),
            ));
        }
    }
    Ok(Extensions { suites, expected: file.expected })
}

/// An ad hoc suite for the project directory `dir` (`cargo xtask test --ext DIR`), named
/// after the project: `[project].name` in pyproject.toml, else `[metadata] name` in
/// setup.cfg, else the directory's name, which comes with a note saying so (two projects in
/// directories of one name would otherwise share a suite; issue 18).
pub fn suite_for_dir(dir: &Utf8Path) -> (Suite, Option<String>) {
    let (name, note) = match project_name(dir) {
        Some(name) => (name, None),
        None => {
            let name = dir.file_name().unwrap_or("ext").to_owned();
            let note = format!(
                "--ext {dir}: no [project].name in pyproject.toml nor [metadata] name in \
                 setup.cfg; the suite is named `{name}` after its directory"
            );
            (name, Some(note))
        }
    };
    (ad_hoc(&name, Source::Dir(dir.to_owned())), note)
}

/// The project's name from its pyproject.toml (`[project].name`) or setup.cfg (`[metadata]
/// name`), if it states one.
pub(crate) fn project_name(dir: &Utf8Path) -> Option<String> {
    let from_pyproject = std::fs::read_to_string(dir.join("pyproject.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|t| t.get("project")?.get("name")?.as_str().map(str::to_owned));
    let from_setup_cfg = || {
        let text = std::fs::read_to_string(dir.join("setup.cfg")).ok()?;
        let mut in_metadata = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_metadata = line == "[metadata]";
            } else if in_metadata
                && let Some((key, value)) = line.split_once('=')
                && key.trim() == "name"
            {
                return Some(value.trim().to_owned());
            }
        }
        None
    };
    from_pyproject.or_else(from_setup_cfg).filter(|n| !n.trim().is_empty())
}

/// An ad hoc suite for a PyPI sdist (`cargo xtask test --pypi NAME==VERSION`); its tests are
/// found as for a suite without `tests`.
pub fn suite_for_pypi(spec: &str) -> Result<Suite, String> {
    let spec = PypiSpec::parse(spec).map_err(|e| {
        format!("--pypi {spec}: {e}; expected NAME==VERSION (a pinned release with an sdist)")
    })?;
    Ok(ad_hoc(&spec.name.clone(), Source::Pypi(spec)))
}

fn ad_hoc(name: &str, source: Source) -> Suite {
    let name = name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    Suite {
        name,
        source,
        tests: Vec::new(),
        test_deps: Vec::new(),
        build_env: BTreeMap::new(),
        pytest_args: Vec::new(),
        test_command: None,
        valgrind_select: None,
        timeout_seconds: default_timeout(),
        sha256: None,
        twin_env: BTreeMap::new(),
        constraints: None,
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
        let variants: Vec<&str> = m.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(ext.check_variants(&variants), Ok(()));
        Ok(())
    }

    #[test]
    fn a_suite_with_its_own_test_command() {
        let text = "[[suite]]\nname = \"u\"\npath = \"x\"\ntest-command = [\"python\", \"-m\", \"unittest\"]\n";
        let suites = parse_suites(Utf8Path::new("e.toml"), text, Utf8Path::new("/repo"))
            .expect("parses")
            .suites;
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
                error: matrix/extensions.toml:4:1: unknown field `timeout`, expected one of `name`, `path`, `pypi`, `tests`, `test-deps`, `build-env`, `pytest-args`, `test-command`, `valgrind-select`, `timeout-seconds`, `sha256`, `twin-env`, `constraints`
                     4 | timeout = 3
                       | ^"#]],
        );
        check(
            "[[suite]]\nname = \"m\"\npath = \"x\"\ntests = \"../elsewhere\"\n",
            expect![[r#"
                error: matrix/extensions.toml:2:8: suite `m`: tests = "../elsewhere" must be a path inside the project
                     2 | name = "m"
                       |        ^"#]],
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
                error: matrix/extensions.toml:7:8: unknown variant `leak`, expected one of `ref-leak`, `invalid-memory`, `memory-leak`, `fatal-error`, `sanitizer`, `data-race`, `undefined-behavior`, `gil-enabled`, `thread-safety`, `crash`, `hang`, `test-failure`, `collection-error`, `setup`, `expected-missing`, `order-dependent`
                     7 | kind = "leak"
                       |        ^"#]],
        );
    }

    #[test]
    fn tests_and_expected_findings() {
        let text = "[[suite]]\nname = \"m\"\npath = \"x\"\ntests = [\"a\", \"src/m/tests\"]\n\
                    [[expected]]\nsuite = \"m\"\ntest = \"test_leak\"\nkind = \"ref-leak\"\n\
                    cells = [\"debug\", \"3.13+nope\"]\nreason = \"on purpose\"\n";
        let ext =
            parse_suites(Utf8Path::new("e.toml"), text, Utf8Path::new("/repo")).expect("parses");
        assert_eq!(ext.suites[0].tests, ["a", "src/m/tests"]);
        assert_eq!(ext.expected_for("m", "3.13.5", "debug").len(), 1);
        assert_eq!(ext.expected_for("m", "3.13.5", "valgrind").len(), 0);
        expect![[r#"Err("[[expected]] for suite `m`, test `test_leak`: unknown variant `nope` (matrix/variants.toml has debug, valgrind)")"#]]
            .assert_eq(&format!("{:?}", ext.check_variants(&["debug", "valgrind"])));
    }

    /// Issue 18, silent defect 8: `--ext a/proj --ext b/proj` were both suite `proj`. A
    /// suite is named after its project; the directory's name only as a fallback, said.
    #[test]
    fn an_ext_suite_is_named_after_its_project() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = Utf8Path::from_path(tmp.path()).expect("utf-8");
        let project = |dir: &str, file: &str, text: &str| {
            let dir = root.join(dir);
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join(file), text).expect("write");
            dir
        };
        let name = |dir: &Utf8Path| {
            let (suite, note) = suite_for_dir(dir);
            let note = note.map(|n| n.replace(root.as_str(), "$TMP"));
            format!("{} {note:?}", suite.name)
        };
        let a = project("a/proj", "pyproject.toml", "[project]\nname = \"zope.interface\"\n");
        let b = project("b/proj", "setup.cfg", "[options]\nname = no\n[metadata]\nname = ujson\n");
        let c = project("c/proj", "setup.py", "");
        let d = project("d/proj", "pyproject.toml", "[build-system]\nrequires = []\n");
        expect![[r#"
            zope_interface None
            ujson None
            proj Some("--ext $TMP/c/proj: no [project].name in pyproject.toml nor [metadata] name in setup.cfg; the suite is named `proj` after its directory")
            proj Some("--ext $TMP/d/proj: no [project].name in pyproject.toml nor [metadata] name in setup.cfg; the suite is named `proj` after its directory")"#]]
        .assert_eq(&[a, b, c, d].iter().map(|d| name(d)).collect::<Vec<_>>().join("\n"));
    }

    #[test]
    fn ad_hoc_pypi_suites() {
        let s = suite_for_pypi("zope.interface==8.0").expect("a pin");
        assert_eq!(s.name, "zope_interface");
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
        let ext =
            parse_suites(Utf8Path::new("e.toml"), &text, Utf8Path::new("/repo")).expect("parses");
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
}
