//! A project's own configuration: `[tool.debug-matrix]` in its `pyproject.toml`, or the same
//! keys at the top of a `debug-matrix.toml` beside it (`[[expected]]` there is
//! `[[tool.debug-matrix.expected]]` in a pyproject), and its name.

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use matrix::{MatrixError, Pattern};
use serde::Deserialize;
use toml::Spanned;

use super::{Place, Settings, SuiteTable, normalize, parse};
use crate::expect::Expected;

/// A project directory: its suite's name and what its own file says.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory.
    pub dir: Utf8PathBuf,
    /// Its name, normalized ([`normalize`]): the suite's name.
    pub name: String,
    /// Its `[tool.debug-matrix]` (or `debug-matrix.toml`), if it has one.
    pub config: Option<ProjectConfig>,
}

/// What a project's own table says.
#[derive(Debug, Clone)]
pub struct ProjectConfig {
    /// The file it is in.
    pub file: Utf8PathBuf,
    /// Which kind of file.
    pub place: Place,
    /// Its suite settings.
    pub settings: Settings,
    /// The cells it wants when none are named.
    pub cells: Option<DefaultCells>,
    /// Its expected findings, `suite` set to the project's name and `origin` to the file.
    pub expected: Vec<Expected>,
}

impl ProjectConfig {
    /// `DIR/pyproject.toml [tool.debug-matrix]` or `DIR/debug-matrix.toml`, for messages.
    pub fn describe(&self) -> String {
        match self.place {
            Place::Pyproject => format!("{} [tool.debug-matrix]", self.file),
            _ => self.file.to_string(),
        }
    }
}

/// The cells a project wants by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultCells {
    /// `cells = ["3.13+debug", …]`.
    Patterns(Vec<Pattern>),
    /// `set = "ci"`: a set of `matrix/cells.toml`.
    Set(String),
}

#[derive(Deserialize)]
struct Pyproject {
    project: Option<Meta>,
    tool: Option<Tools>,
}

#[derive(Deserialize)]
struct Meta {
    name: Option<Spanned<String>>,
}

#[derive(Deserialize)]
struct Tools {
    #[serde(rename = "debug-matrix")]
    debug_matrix: Option<SuiteTable>,
}

/// Reads the project in `dir`: its name (`[project].name`, else `name` in its table, else
/// `[metadata] name` in setup.cfg; a project without one is refused) and its table, from
/// `pyproject.toml` or `debug-matrix.toml` (both at once is refused: one place says it).
/// `named`: the suite's name where `matrix/extensions.toml` gives it (then the project's own
/// name is not needed, and its expected entries are that suite's).
pub fn read_project(dir: &Utf8Path, named: Option<&str>) -> anyhow::Result<Project> {
    let read = |name: &str| -> anyhow::Result<Option<(Utf8PathBuf, String)>> {
        let path = dir.join(name);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        Ok(Some((path, text)))
    };
    let pyproject = read("pyproject.toml")?;
    let own = read("debug-matrix.toml")?;
    let (meta, tool) = match &pyproject {
        Some((path, text)) => {
            let file: Pyproject = parse(path, text, Place::Pyproject)?;
            (file.project, file.tool.and_then(|t| t.debug_matrix))
        }
        None => (None, None),
    };
    let project_name = meta.and_then(|m| m.name);
    let (table, place, path, text) = match (tool, &own, &pyproject) {
        (Some(_), Some((own_path, _)), Some((py_path, _))) => anyhow::bail!(
            "{py_path} has [tool.debug-matrix] and {own_path} is beside it: keep one of them"
        ),
        (Some(table), None, Some((path, text))) => (Some(table), Place::Pyproject, path, text),
        (None, Some((path, text)), _) => {
            let table: SuiteTable = parse(path, text, Place::DebugMatrixToml)?;
            (Some(table), Place::DebugMatrixToml, path, text)
        }
        _ => {
            let name = match named {
                Some(name) => name.to_owned(),
                None => name_without_table(dir, project_name, pyproject.as_ref())?,
            };
            return Ok(Project { dir: dir.to_owned(), name, config: None });
        }
    };
    let table = table.unwrap_or_default();
    table.check_place(place, path, text)?;
    let name = match (named, &project_name, &table.name) {
        (Some(named), _, _) => named.to_owned(),
        (None, Some(from_project), given) => {
            let (py_path, py_text) = pyproject.as_ref().context("a pyproject.toml")?;
            let name = normalized(py_path, py_text, from_project)?;
            if let Some(given) = given
                && normalize(given.get_ref()).ok().as_ref() != Some(&name)
            {
                return Err(MatrixError::at(
                    path,
                    text,
                    given.span(),
                    format!(
                        "`name` = \"{}\" is not the project's name ([project].name = \"{}\" in \
                         {py_path}): the suite is named after the project; remove `name`",
                        given.get_ref(),
                        from_project.get_ref()
                    ),
                )
                .into());
            }
            name
        }
        (None, None, Some(given)) => normalized(path, text, given)?,
        (None, None, None) => match setup_cfg_name(dir) {
            Some(name) => normalize(&name).map_err(|e| anyhow::anyhow!("{dir}/setup.cfg: {e}"))?,
            None => anyhow::bail!(
                "{path}: the project has no name ([project].name in pyproject.toml, [metadata] \
                 name in setup.cfg): give `name = \"…\"` in {}",
                place.table()
            ),
        },
    };
    let settings = table.settings(path, text)?;
    let config = ProjectConfig {
        file: path.clone(),
        place,
        settings,
        cells: match (table.cells, table.set) {
            (Some(cells), _) => Some(DefaultCells::Patterns(cells.into_inner())),
            (None, Some(set)) => Some(DefaultCells::Set(set.into_inner())),
            (None, None) => None,
        },
        expected: Vec::new(),
    };
    let origin = config.describe();
    let mut expected = Vec::new();
    for entry in table.expected {
        let span = entry.span();
        let mut entry = entry.into_inner();
        if !entry.suite.is_empty() {
            return Err(MatrixError::at(
                path,
                text,
                span,
                format!(
                    "`suite` = \"{}\": a project's expected findings are its own (suite `{name}`); \
                     leave `suite` out",
                    entry.suite
                ),
            )
            .into());
        }
        entry.suite = name.clone();
        entry.origin = origin.clone();
        expected.push(entry);
    }
    Ok(Project { dir: dir.to_owned(), name, config: Some(ProjectConfig { expected, ..config }) })
}

/// A name from a file, normalized; a bad one is an error at its line.
fn normalized(path: &Utf8Path, text: &str, name: &Spanned<String>) -> anyhow::Result<String> {
    normalize(name.get_ref()).map_err(|e| MatrixError::at(path, text, name.span(), e).into())
}

/// The name of a project without a table of ours.
fn name_without_table(
    dir: &Utf8Path,
    from_project: Option<Spanned<String>>,
    pyproject: Option<&(Utf8PathBuf, String)>,
) -> anyhow::Result<String> {
    if let (Some(name), Some((path, text))) = (from_project, pyproject) {
        return normalized(path, text, &name);
    }
    match setup_cfg_name(dir) {
        Some(name) => normalize(&name).map_err(|e| anyhow::anyhow!("{dir}/setup.cfg: {e}")),
        None => anyhow::bail!(
            "{dir}: the project has no name: no [project].name in pyproject.toml nor [metadata] \
             name in setup.cfg, and a suite is named after its project, never its directory; \
             give one, or write a debug-matrix.toml beside setup.py with `name = \"…\"` \
             (`cargo xtask init {dir}` starts one)"
        ),
    }
}

/// `[metadata] name` of the project's setup.cfg.
fn setup_cfg_name(dir: &Utf8Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("setup.cfg")).ok()?;
    let mut in_metadata = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_metadata = line == "[metadata]";
        } else if in_metadata
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
            && !value.trim().is_empty()
        {
            return Some(value.trim().to_owned());
        }
    }
    None
}
