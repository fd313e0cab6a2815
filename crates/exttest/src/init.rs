//! `cargo xtask init DIR`: a starter `[tool.debug-matrix]` for a project, from what the project
//! shows (its name, its tests' directory, its test extra or dependency group), appended to its
//! `pyproject.toml` (the rest of the file kept byte for byte) or written as `debug-matrix.toml`
//! where it has none, and a caller workflow (`.github/workflows/debug-matrix.yml`) from the one
//! template, [`CALLER_TEMPLATE`]. An existing table or workflow is replaced only when forced.

use anyhow::{Context as _, bail};
use camino::{Utf8Path, Utf8PathBuf};

use crate::config::{Place, read_project};

/// The caller workflow a project's repository gets: `@@TOOL_REPOSITORY@@`, `@@TOOL_REF@@` and
/// `@@PATH@@` are filled in. The one copy of the caller: change it here when
/// `.github/workflows/extension.yml`'s inputs change.
pub const CALLER_TEMPLATE: &str = include_str!("../templates/debug-matrix.yml");

/// What `init` is told.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Replace an existing table and workflow.
    pub force: bool,
    /// `owner/name` of debug-matrix's repository, for the workflow's `uses:`.
    pub tool_repository: String,
    /// The commit (or tag) of it the workflow runs.
    pub tool_ref: String,
}

/// One file `init` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The file.
    pub path: Utf8PathBuf,
    /// What was written into it (the whole file, or the appended table).
    pub text: String,
}

/// The caller workflow for the project at `path` (relative to its repository's root).
pub fn caller_workflow(tool_repository: &str, tool_ref: &str, path: &str) -> String {
    CALLER_TEMPLATE
        .replace("@@TOOL_REPOSITORY@@", tool_repository)
        .replace("@@TOOL_REF@@", tool_ref)
        .replace("@@PATH@@", path)
}

/// Looks at the project in `dir` and writes its starter table and its caller workflow.
/// Nothing is written when either would replace something and `options.force` is not set.
pub fn init(dir: &Utf8Path, options: &InitOptions) -> anyhow::Result<Vec<Written>> {
    let pyproject_path = dir.join("pyproject.toml");
    let own_path = dir.join("debug-matrix.toml");
    anyhow::ensure!(
        pyproject_path.is_file() || dir.join("setup.py").is_file(),
        "{dir}: no pyproject.toml or setup.py: not a Python project"
    );
    let pyproject = if pyproject_path.is_file() {
        Some(
            std::fs::read_to_string(&pyproject_path)
                .with_context(|| format!("reading {pyproject_path}"))?,
        )
    } else {
        None
    };
    let doc: Option<toml_edit::DocumentMut> = match &pyproject {
        Some(text) => Some(text.parse().with_context(|| format!("parsing {pyproject_path}"))?),
        None => None,
    };
    let has_table =
        doc.as_ref().is_some_and(|d| d.get("tool").and_then(|t| t.get("debug-matrix")).is_some());
    let mut refusals = Vec::new();
    if has_table && !options.force {
        refusals.push(format!("{pyproject_path} already has [tool.debug-matrix]"));
    }
    if own_path.is_file() && !options.force {
        refusals.push(format!("{own_path} exists"));
    }
    let root = repository_root(dir);
    let workflow = root.join(".github/workflows/debug-matrix.yml");
    if workflow.is_file() && !options.force {
        refusals.push(format!("{workflow} exists"));
    }
    if !refusals.is_empty() {
        bail!("{}: nothing written; `--force` replaces them", refusals.join(", "));
    }

    let seen = Seen::look(dir, doc.as_ref());
    let mut written = Vec::new();
    match (pyproject, doc) {
        (Some(text), Some(mut doc)) => {
            let base = if has_table {
                if let Some(tool) = doc.get_mut("tool").and_then(|t| t.as_table_like_mut()) {
                    tool.remove("debug-matrix");
                }
                doc.to_string()
            } else {
                text
            };
            if own_path.is_file() {
                std::fs::remove_file(&own_path).with_context(|| format!("removing {own_path}"))?;
            }
            let table = seen.table(Place::Pyproject);
            let sep = if base.is_empty() || base.ends_with("\n\n") {
                ""
            } else if base.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            process::write_atomically(&pyproject_path, format!("{base}{sep}{table}").as_bytes())?;
            written.push(Written { path: pyproject_path.clone(), text: table });
        }
        _ => {
            let table = seen.table(Place::DebugMatrixToml);
            process::write_atomically(&own_path, table.as_bytes())?;
            written.push(Written { path: own_path.clone(), text: table });
        }
    }
    // What was written must read back as the tool reads it.
    read_project(dir, None).context("the table `init` wrote does not read back; please report")?;

    let path = dir
        .canonicalize_utf8()
        .ok()
        .zip(root.canonicalize_utf8().ok())
        .and_then(|(d, r)| d.strip_prefix(&r).ok().map(|p| p.to_string()))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".to_owned());
    let text = caller_workflow(&options.tool_repository, &options.tool_ref, &path);
    let parent = workflow.parent().context("a workflow directory")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {parent}"))?;
    process::write_atomically(&workflow, text.as_bytes())?;
    written.push(Written { path: workflow, text });
    Ok(written)
}

/// The git repository `dir` is in (the nearest ancestor with `.git`), else `dir`.
fn repository_root(dir: &Utf8Path) -> Utf8PathBuf {
    let abs = dir.canonicalize_utf8().unwrap_or_else(|_| dir.to_owned());
    abs.ancestors().find(|d| d.join(".git").exists()).map_or(abs.clone(), Utf8Path::to_owned)
}

/// What the project shows.
#[derive(Debug, Default)]
struct Seen {
    /// `[project].name`, if any.
    name: Option<String>,
    /// A name guessed for a project without one (setup.cfg, setup.py, else the directory).
    guessed_name: Option<(String, &'static str)>,
    /// The tests' directory and how it was found.
    tests: Option<(String, &'static str)>,
    /// The test extra pip installs with the project (`test`, `tests`, `testing`).
    extra: Option<String>,
    /// A PEP 735 dependency group for tests, and its requirements.
    group: Option<(String, Vec<String>)>,
}

impl Seen {
    fn look(dir: &Utf8Path, doc: Option<&toml_edit::DocumentMut>) -> Seen {
        let get = |path: &[&str]| -> Option<&toml_edit::Item> {
            let mut item = doc?.as_item();
            for key in path {
                item = item.get(key)?;
            }
            Some(item)
        };
        let name = get(&["project", "name"]).and_then(|n| n.as_str()).map(str::to_owned);
        let guessed_name = match name {
            Some(_) => None,
            None => Some(guess_name(dir)),
        };
        let testpaths = get(&["tool", "pytest", "ini_options", "testpaths"])
            .and_then(|t| t.as_array())
            .and_then(|a| a.iter().find_map(|v| v.as_str().map(str::to_owned)))
            .filter(|p| dir.join(p).is_dir());
        let tests = match testpaths {
            Some(p) => Some((p, "the project's pytest testpaths")),
            None => find_tests(dir).map(|p| (p, "found")),
        };
        let test_key = |key: &str| ["test", "tests", "testing"].contains(&key);
        let extra = get(&["project", "optional-dependencies"])
            .and_then(|t| t.as_table_like())
            .and_then(|t| t.iter().map(|(k, _)| k).find(|k| test_key(k)).map(str::to_owned));
        let group = get(&["dependency-groups"]).and_then(|t| t.as_table_like()).and_then(|t| {
            let (key, value) = t.iter().find(|(k, _)| test_key(k))?;
            let reqs = value.as_array()?.iter().filter_map(|v| v.as_str().map(str::to_owned));
            Some((key.to_owned(), reqs.collect()))
        });
        Seen { name, guessed_name, tests, extra, group }
    }

    /// The starter table for `place`, every line explained.
    fn table(&self, place: Place) -> String {
        let (header, expected) = match place {
            Place::Pyproject => ("[tool.debug-matrix]\n", "[[tool.debug-matrix.expected]]"),
            _ => ("", "[[expected]]"),
        };
        let mut t = String::from(header);
        t.push_str(
            "# debug-matrix: this project's tests on CPython's debug builds (`cargo xtask test \
             --ext DIR`,\n# or its reusable workflow). Written by `cargo xtask init`; every key \
             is in debug-matrix's\n# docs/configuration.md.\n",
        );
        match (&self.name, &self.guessed_name) {
            (Some(name), _) => t.push_str(&format!(
                "# The suite is `{}`, after [project].name.\n",
                crate::config::normalize(name).unwrap_or_else(|_| name.clone())
            )),
            (None, Some((name, how))) => {
                t.push_str(&format!("# The suite's name ({how}): check it.\nname = \"{name}\"\n"))
            }
            (None, None) => {}
        }
        match &self.tests {
            Some((dir, how)) => t.push_str(&format!("tests = \"{dir}\"  # {how}\n")),
            None => t.push_str(
                "# No test directory found (tests/, test/, testing/, <package>/tests): name it.\n\
                 # tests = \"path/to/tests\"\n",
            ),
        }
        match (&self.extra, &self.group) {
            (_, Some((group, reqs))) => {
                let list: Vec<String> = reqs.iter().map(|r| format!("\"{r}\"")).collect();
                t.push_str(&format!(
                    "# The dependency group `{group}` (PEP 735), which pip does not install:\n\
                     test-deps = [{}]\n",
                    list.join(", ")
                ));
            }
            (Some(extra), None) => t.push_str(&format!(
                "# The `{extra}` extra is installed with the project; more for the tests:\n\
                 # test-deps = []\n"
            )),
            (None, None) => t.push_str(
                "# pytest is installed; the packages the tests import besides the project:\n\
                 # test-deps = []\n",
            ),
        }
        t.push_str(
            "# The cells `cargo xtask test --ext DIR` runs on when none are named (patterns such \
             as\n# \"3.13+debug\", \"valgrind\"), or a set of debug-matrix's matrix/cells.toml: \
             set = \"ci\".\ncells = [\"3.13+debug\"]\n",
        );
        t.push_str("# timeout-seconds = 120  # per test\n");
        t.push_str(&format!(
            "\n# A finding you know of, accepted on the cells named; strict: once it no longer \
             appears,\n# the run fails (`expected-missing`) until the entry is removed.\n\
             # {expected}\n# test = \"test_name\"\n# kind = \"ref-leak\"\n# cells = [\"debug\"]\n\
             # reason = \"why it is accepted\"\n"
        ));
        t
    }
}

/// The tests' directory the tool would find (`tests`, `test`, `testing`, a package's `tests`).
fn find_tests(dir: &Utf8Path) -> Option<String> {
    for top in ["tests", "test", "testing"] {
        if dir.join(top).is_dir() {
            return Some(top.to_owned());
        }
    }
    for root in ["src", "."] {
        let Ok(entries) = dir.join(root).read_dir_utf8() else { continue };
        let mut packages: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().is_dir() && !e.file_name().starts_with('.'))
            .map(|e| e.file_name().to_owned())
            .collect();
        packages.sort();
        for package in packages {
            for tests in ["tests", "test"] {
                let rel = Utf8Path::new(root).join(&package).join(tests);
                if dir.join(&rel).is_dir() {
                    return Some(rel.as_str().trim_start_matches("./").to_owned());
                }
            }
        }
    }
    None
}

/// A name for a project without `[project].name`: setup.cfg's, setup.py's `name="…"`, else
/// the directory's, each said.
fn guess_name(dir: &Utf8Path) -> (String, &'static str) {
    if let Ok(text) = std::fs::read_to_string(dir.join("setup.cfg"))
        && let Some(name) = text
            .lines()
            .skip_while(|l| l.trim() != "[metadata]")
            .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == "name"))
            .map(|(_, v)| v.trim().to_owned())
    {
        return (name, "setup.cfg's [metadata] name");
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("setup.py"))
        && let Some(rest) = text.split("name=").nth(1).or_else(|| text.split("name =").nth(1))
        && let Some(quote) = rest.trim_start().chars().next().filter(|c| *c == '"' || *c == '\'')
        && let Some(name) = rest.trim_start()[1..].split(quote).next()
        && crate::config::normalize(name).is_ok()
    {
        return (name.to_owned(), "setup.py's name=");
    }
    let name = dir
        .canonicalize_utf8()
        .ok()
        .and_then(|d| d.file_name().map(str::to_owned))
        .unwrap_or_else(|| "project".to_owned());
    (name, "the directory's name, a guess")
}

#[cfg(test)]
mod tests;
