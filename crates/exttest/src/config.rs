//! A suite's settings, wherever they are written: a `[[suite]]` of `matrix/extensions.toml`,
//! the `[tool.debug-matrix]` table of the project's own `pyproject.toml`, or the top level of
//! a `debug-matrix.toml` beside it (for a project without a pyproject.toml, or one that would
//! rather not touch it). One serde type, [`SuiteTable`], reads all three, so their keys cannot
//! drift; which keys a place admits is [`Place::keys`].
//!
//! A project's file also says which findings it expects (`[[tool.debug-matrix.expected]]`)
//! and which cells it wants by default (`cells`, or a `set` of `matrix/cells.toml`); its
//! suite is named after `[project].name`, normalized as PyPA does ([`normalize`]), never
//! after a directory. Where `matrix/extensions.toml` and the project both set a field, the
//! matrix wins, field by field, and each override is said ([`merge`]); expected entries are
//! the union of both. Errors name the file, line, column and key.
//!
//! Pure but for [`read_project`], which reads the project's files.

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};
use matrix::{MatrixError, Pattern};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::expect::Expected;

mod project;

pub use project::{DefaultCells, Project, ProjectConfig, read_project};

/// The table that describes a suite, in every place one is written. Keys a place does not
/// admit are refused after parsing, naming the line ([`Place::keys`]).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct SuiteTable {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) path: Option<Spanned<Utf8PathBuf>>,
    pub(crate) pypi: Option<Spanned<String>>,
    pub(crate) sha256: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "spanned_patterns")]
    pub(crate) cells: Option<Spanned<Vec<Pattern>>>,
    pub(crate) set: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) expected: Vec<Spanned<Expected>>,
    tests: Option<Spanned<Paths>>,
    test_deps: Option<Vec<String>>,
    build_env: Option<BTreeMap<String, String>>,
    pytest_args: Option<Vec<String>>,
    test_command: Option<Vec<String>>,
    valgrind_select: Option<String>,
    timeout_seconds: Option<u64>,
    twin_env: Option<Spanned<BTreeMap<String, String>>>,
    constraints: Option<Utf8PathBuf>,
}

/// The settings every place may give (`tests`, `test-deps`, …), in file order.
pub const SETTINGS: &[&str] = &[
    "tests",
    "test-deps",
    "build-env",
    "pytest-args",
    "test-command",
    "valgrind-select",
    "timeout-seconds",
    "twin-env",
    "constraints",
];

/// Where a [`SuiteTable`] is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A `[[suite]]` of `matrix/extensions.toml`.
    Matrix,
    /// `[tool.debug-matrix]` in a project's `pyproject.toml`.
    Pyproject,
    /// The top level of a project's `debug-matrix.toml`.
    DebugMatrixToml,
}

impl Place {
    /// The keys this place admits: the [`SETTINGS`] and its own.
    pub fn keys(self) -> Vec<&'static str> {
        let own: &[&str] = match self {
            Place::Matrix => &["name", "path", "pypi", "sha256"],
            Place::Pyproject | Place::DebugMatrixToml => &["name", "cells", "set", "expected"],
        };
        own.iter().chain(SETTINGS).copied().collect()
    }

    /// How the table is named in messages.
    pub fn table(self) -> &'static str {
        match self {
            Place::Matrix => "[[suite]]",
            Place::Pyproject => "[tool.debug-matrix]",
            Place::DebugMatrixToml => "debug-matrix.toml",
        }
    }
}

/// A suite's settings as one place gives them: `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `tests`: test paths inside the project.
    pub tests: Option<Vec<String>>,
    /// `test-deps`.
    pub test_deps: Option<Vec<String>>,
    /// `build-env`.
    pub build_env: Option<BTreeMap<String, String>>,
    /// `pytest-args`.
    pub pytest_args: Option<Vec<String>>,
    /// `test-command`.
    pub test_command: Option<Vec<String>>,
    /// `valgrind-select`.
    pub valgrind_select: Option<String>,
    /// `timeout-seconds`.
    pub timeout_seconds: Option<u64>,
    /// `twin-env`.
    pub twin_env: Option<BTreeMap<String, String>>,
    /// `constraints`: the suite's own constraints file, resolved against the directory of the
    /// file that names it.
    pub constraints: Option<Utf8PathBuf>,
}

/// `tests = "t"` or `tests = ["a", "b"]`.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Paths {
    One(String),
    Many(Vec<String>),
}

fn spanned_patterns<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Spanned<Vec<Pattern>>>, D::Error> {
    #[derive(Deserialize)]
    struct Patterns(#[serde(deserialize_with = "crate::expect::patterns")] Vec<Pattern>);
    let list = Spanned::<Patterns>::deserialize(d)?;
    let span = list.span();
    Ok(Some(Spanned::new(span, list.into_inner().0)))
}

impl SuiteTable {
    /// Refuses keys `place` does not admit, at their line.
    pub(crate) fn check_place(
        &self,
        place: Place,
        path: &Utf8Path,
        text: &str,
    ) -> Result<(), MatrixError> {
        let keys = place.keys();
        let present: [(&str, Option<std::ops::Range<usize>>); 7] = [
            ("name", self.name.as_ref().map(Spanned::span)),
            ("path", self.path.as_ref().map(Spanned::span)),
            ("pypi", self.pypi.as_ref().map(Spanned::span)),
            ("sha256", self.sha256.as_ref().map(Spanned::span)),
            ("cells", self.cells.as_ref().map(Spanned::span)),
            ("set", self.set.as_ref().map(Spanned::span)),
            ("expected", self.expected.first().map(Spanned::span)),
        ];
        for (key, span) in present {
            if let Some(span) = span
                && !keys.contains(&key)
            {
                let why = match place {
                    Place::Matrix => "a suite of matrix/extensions.toml runs on the cells \
                                      its command or set selects, and its expected findings \
                                      are the file's [[expected]] entries"
                        .to_owned(),
                    _ => "a project's table describes the project it is in: its suite is \
                          named after [project].name and tested from its own directory"
                        .to_owned(),
                };
                return Err(MatrixError::at(
                    path,
                    text,
                    span,
                    format!("`{key}` does not belong in {}: {why}", place.table()),
                ));
            }
        }
        if let (Some(_), Some(set)) = (&self.cells, &self.set) {
            return Err(MatrixError::at(
                path,
                text,
                set.span(),
                "give `cells` (patterns) or `set` (a set of matrix/cells.toml), not both".into(),
            ));
        }
        Ok(())
    }

    /// The settings, checked: test paths inside the project, environment variable names.
    pub(crate) fn settings(&self, path: &Utf8Path, text: &str) -> Result<Settings, MatrixError> {
        let tests = self.tests.as_ref().map(|t| match t.get_ref() {
            Paths::One(p) => vec![p.clone()],
            Paths::Many(v) => v.clone(),
        });
        if let (Some(list), Some(at)) = (&tests, &self.tests)
            && let Some(bad) = list.iter().find(|t| {
                let p = Utf8Path::new(t);
                p.is_absolute() || p.components().any(|c| c.as_str() == "..")
            })
        {
            return Err(MatrixError::at(
                path,
                text,
                at.span(),
                format!("`tests`: \"{bad}\" must be a path inside the project"),
            ));
        }
        if let Some(env) = &self.twin_env
            && let Some(bad) = env.get_ref().keys().find(|k| {
                k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
        {
            return Err(MatrixError::at(
                path,
                text,
                env.span(),
                format!(
                    "`twin-env` names `{bad}`, not an environment variable (letters, digits \
                     and `_`)"
                ),
            ));
        }
        Ok(Settings {
            tests,
            test_deps: self.test_deps.clone(),
            build_env: self.build_env.clone(),
            pytest_args: self.pytest_args.clone(),
            test_command: self.test_command.clone(),
            valgrind_select: self.valgrind_select.clone(),
            timeout_seconds: self.timeout_seconds,
            twin_env: self.twin_env.as_ref().map(|e| e.get_ref().clone()),
            constraints: self
                .constraints
                .as_ref()
                .map(|c| path.parent().unwrap_or(Utf8Path::new("")).join(c)),
        })
    }
}

/// `over` (this repository's matrix) over `under` (the project's table), field by field: a
/// field `over` sets wins, and each field both set to different values is said in a line
/// naming both files (`over_file`, `under_file`) and both values.
pub fn merge(
    suite: &str,
    over: &Settings,
    over_file: &str,
    under: &Settings,
    under_file: &str,
) -> (Settings, Vec<String>) {
    let mut notes = Vec::new();
    let mut pick = |key: &str, a: Option<serde_json::Value>, b: Option<serde_json::Value>| {
        if let (Some(a), Some(b)) = (a, b)
            && a != b
        {
            notes.push(format!(
                "suite `{suite}`: `{key}` = {a} from {over_file} overrides {b} from {under_file}"
            ));
        }
    };
    macro_rules! field {
        ($f:ident, $key:literal) => {{
            pick(
                $key,
                over.$f.as_ref().map(|v| serde_json::json!(v)),
                under.$f.as_ref().map(|v| serde_json::json!(v)),
            );
            over.$f.clone().or_else(|| under.$f.clone())
        }};
    }
    let merged = Settings {
        tests: field!(tests, "tests"),
        test_deps: field!(test_deps, "test-deps"),
        build_env: field!(build_env, "build-env"),
        pytest_args: field!(pytest_args, "pytest-args"),
        test_command: field!(test_command, "test-command"),
        valgrind_select: field!(valgrind_select, "valgrind-select"),
        timeout_seconds: field!(timeout_seconds, "timeout-seconds"),
        twin_env: field!(twin_env, "twin-env"),
        constraints: field!(constraints, "constraints"),
    };
    (merged, notes)
}

/// A project name normalized as PyPA does (PEP 503: lowercase, runs of `-`, `_` and `.` become
/// one `-`): `Zope.Interface` and `zope_interface` are the suite `zope-interface`. The name
/// must be a PEP 508 name (letters, digits, `.`, `_`, `-`, starting and ending with a letter
/// or digit); the error says what is wrong. `pep508_rs` (uv's) does both.
pub fn normalize(name: &str) -> Result<String, String> {
    pep508_rs::PackageName::new(name.to_owned()).map(|n| n.to_string()).map_err(|_| {
        format!(
            "`{name}` is not a project name (letters, digits, `.`, `_`, `-`, starting and \
             ending with a letter or digit: PEP 508)"
        )
    })
}

/// Parses `text`, the contents of `path`, into `T`, like [`matrix::parse_toml`], with the key
/// named in every error (toml names the line; a wrong type's message does not say whose), and
/// an unknown key of a suite's table listed with the keys `place` admits.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    path: &Utf8Path,
    text: &str,
    place: Place,
) -> Result<T, MatrixError> {
    toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let mut message = e.message().trim_end().to_owned();
        if let Some(rest) = message.strip_prefix("unknown field `")
            && let Some((key, list)) = rest.split_once('`')
            && SETTINGS.iter().all(|s| list.contains(&format!("`{s}`")))
        {
            message = format!(
                "unknown key `{key}` in {}: it takes {}",
                place.table(),
                place.keys().iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            );
        } else if let Some(key) = key_at(text, span.start)
            && !message.contains(&format!("`{key}`"))
        {
            message = format!("`{key}`: {message}");
        }
        MatrixError::at(path, text, span, message)
    })
}

/// The key whose value is at byte `at`: the key of its line, or of the nearest line above
/// that has one (a value of a multi-line array); a table's header names the table, and no key
/// above a header is looked at.
fn key_at(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    for (i, line) in text[..line_end].lines().rev().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            return (i == 0).then(|| line.trim_matches(|c| c == '[' || c == ']').to_owned());
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '"');
            if !key.is_empty() && key.chars().all(plain) {
                return Some(key.trim_matches('"').to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
