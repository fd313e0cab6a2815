//! Extension suites: `matrix/extensions.toml`'s, or a project directory given with `--ext`
//! (its own table is read by [`crate::config`]), or a PyPI sdist given with `--pypi`.

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};
use matrix::MatrixError;
use serde::Deserialize;
use toml::Spanned;

use crate::{
    config::{self, Place, Project, ProjectConfig, Settings, SuiteTable},
    expect::Expected,
};

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
    /// What its file (or files, merged) said, before defaults: compared when a project's own
    /// table meets this one ([`crate::config::merge`]).
    pub settings: Settings,
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
    /// The entries of `expected` for `suite` on `cell`.
    pub fn expected_for(&self, suite: &str, cell: &matrix::Cell<'_>) -> Vec<&Expected> {
        self.expected.iter().filter(|e| e.applies(suite, cell)).collect()
    }

    /// Checks that every version and variant an `[[expected]]` entry names is in `matrix`.
    pub fn check(&self, matrix: &matrix::Matrix) -> Result<(), String> {
        self.expected.iter().try_for_each(|e| e.check(matrix))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    suite: Vec<Spanned<SuiteTable>>,
    #[serde(default)]
    expected: Vec<Expected>,
}

fn default_timeout() -> u64 {
    120
}

impl Suite {
    /// A suite of `name` from `source` with `settings` (defaults where they say nothing).
    pub fn new(name: &str, source: Source, settings: &Settings) -> Suite {
        let s = settings.clone();
        Suite {
            name: name.to_owned(),
            source,
            tests: s.tests.unwrap_or_default(),
            test_deps: s.test_deps.unwrap_or_default(),
            build_env: s.build_env.unwrap_or_default(),
            pytest_args: s.pytest_args.unwrap_or_default(),
            test_command: s.test_command,
            valgrind_select: s.valgrind_select,
            timeout_seconds: s.timeout_seconds.unwrap_or_else(default_timeout),
            sha256: None,
            twin_env: s.twin_env.unwrap_or_default(),
            constraints: s.constraints,
            settings: settings.clone(),
        }
    }
}

impl Suite {
    /// This suite of `matrix/extensions.toml` (`matrix_file`) over its project's own table:
    /// field by field, what the matrix sets wins; the lines say each override.
    pub fn over_project(&self, matrix_file: &str, config: &ProjectConfig) -> (Suite, Vec<String>) {
        let (merged, notes) = config::merge(
            &self.name,
            &self.settings,
            matrix_file,
            &config.settings,
            &config.describe(),
        );
        let suite = Suite::new(&self.name, self.source.clone(), &merged);
        (Suite { sha256: self.sha256.clone(), ..suite }, notes)
    }
}

/// The suite of a project directory (`cargo xtask test --ext DIR`): named after the project,
/// with its own table's settings.
pub fn suite_for_project(project: &Project) -> Suite {
    let settings = project.config.as_ref().map(|c| c.settings.clone()).unwrap_or_default();
    Suite::new(&project.name, Source::Dir(project.dir.clone()), &settings)
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
    let file: File = config::parse(path, text, Place::Matrix)?;
    let mut suites: Vec<Suite> = Vec::new();
    for table in file.suite {
        let table_span = table.span();
        let table = table.into_inner();
        table.check_place(Place::Matrix, path, text)?;
        let Some(name) = &table.name else {
            return Err(MatrixError::at(
                path,
                text,
                table_span,
                "a [[suite]] needs a `name`".to_owned(),
            ));
        };
        let fail = |message: String| Err(MatrixError::at(path, text, name.span(), message));
        let name = name.get_ref().clone();
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return fail(format!("suite name `{name}` must be letters, digits, `-` and `_`"));
        }
        if suites.iter().any(|s| s.name == name) {
            return fail(format!("suite `{name}` is declared twice"));
        }
        let source = match (&table.path, &table.pypi) {
            (Some(dir), None) => Source::Dir(repo_root.join(dir.get_ref())),
            (None, Some(spec)) => match PypiSpec::parse(spec.get_ref()) {
                Ok(spec) => Source::Pypi(spec),
                Err(e) => {
                    return fail(format!("suite `{name}`: pypi = \"{}\": {e}", spec.get_ref()));
                }
            },
            _ => return fail(format!("suite `{name}`: give exactly one of `path` or `pypi`")),
        };
        let sha256 = match table.sha256.as_ref().map(|d| d.get_ref()) {
            Some(_) if !matches!(source, Source::Pypi(_)) => {
                return fail(format!(
                    "suite `{name}`: sha256 pins a `pypi` sdist; a `path` project has none"
                ));
            }
            Some(digest)
                if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                return fail(format!(
                    "suite `{name}`: sha256 = \"{digest}\" is not a sha256 (64 hexadecimal \
                     digits, as PyPI shows it for the sdist)"
                ));
            }
            digest => digest.map(|d| d.to_ascii_lowercase()),
        };
        let settings = table.settings(path, text)?;
        suites.push(Suite { sha256, ..Suite::new(&name, source, &settings) });
    }
    let mut expected = file.expected;
    for e in &mut expected {
        if !suites.iter().any(|s| s.name == e.suite) {
            let needle = format!("\"{}\"", e.suite);
            let start = text.find(&format!("suite = {needle}")).map_or(0, |i| i + 8);
            let message = if e.suite.is_empty() {
                "an [[expected]] entry needs `suite`: the name of a [[suite]]".to_owned()
            } else {
                format!("[[expected]] names suite `{}`, which is not declared", e.suite)
            };
            return Err(MatrixError::at(path, text, start..start + needle.len(), message));
        }
        e.origin = path.to_string();
    }
    Ok(Extensions { suites, expected })
}

/// The normalized name of the project in `dir`, if it has one (for the constraints a suite's
/// own project must not be held back by).
pub(crate) fn project_name(dir: &Utf8Path) -> Option<String> {
    config::read_project(dir, None).ok().map(|p| p.name)
}

/// An ad hoc suite for a PyPI sdist (`cargo xtask test --pypi NAME==VERSION`), named after the
/// project (normalized: `zope.interface` is `zope-interface`); its tests are found as for a
/// suite without `tests`.
pub fn suite_for_pypi(spec: &str) -> Result<Suite, String> {
    let spec = PypiSpec::parse(spec).map_err(|e| {
        format!("--pypi {spec}: {e}; expected NAME==VERSION (a pinned release with an sdist)")
    })?;
    let name = config::normalize(&spec.name)?;
    Ok(Suite::new(&name, Source::Pypi(spec), &Settings::default()))
}

#[cfg(test)]
mod tests;
