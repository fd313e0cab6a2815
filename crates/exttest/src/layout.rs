//! Where a project keeps its tests, and how pytest must be pointed at them so that they test
//! the installed build, never the source copy.
//!
//! Two shapes, decided from the suite's test paths and the top-level names the project's
//! distribution installed ([`Installed::top_level`]):
//!
//! - **inside the package** (`src/pkg/tests`, `pkg/tests`): run from site-packages, like
//!   `pytest --pyargs pkg.tests` or numpy's runner. Test files the wheel left out are laid
//!   beside the installed package ([`overlay`]); the project's pytest configuration is passed
//!   with `-c`, and the rootdir is site-packages, so node ids read `pkg/tests/test_x.py::…`.
//! - **beside the package** (`tests/`, `test/`, with or without `__init__.py`): run in the
//!   *run tree*, a copy of the project without the packages it installs ([`run_tree`]), with
//!   pytest's default import mode: the tests' directory (or the rootdir) goes first on
//!   `sys.path`, so helper modules and `__import__("test_module")` work, and `import pkg`
//!   can only find the venv's copy.
//!
//! Deciding is pure ([`locate`], [`default_tests`], [`pytest_config`] take what they read
//! as arguments or read only the project copy); copying is the only I/O here.

use std::{collections::BTreeMap, fs};

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;

/// What the project's distribution installed, as `debug_matrix_inspect.py` reports it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Installed {
    /// The distribution's name.
    pub dist: String,
    /// Its version.
    pub version: String,
    /// The site-packages directory it is in.
    pub site: Utf8PathBuf,
    /// The cell's `EXT_SUFFIX`.
    pub suffix: String,
    /// Importable top-level names it installed.
    pub top_level: Vec<String>,
    /// Its extension modules: dotted name → installed file.
    pub compiled: BTreeMap<String, String>,
    /// Pure-Python fallbacks of its extension modules, by the compiled module's name.
    pub twins: BTreeMap<String, Vec<String>>,
    /// What is wrong with its compiled modules (built for another interpreter, not loadable,
    /// loaded from elsewhere).
    pub errors: Vec<String>,
}

/// Directories under which a project keeps its importable packages (`src/` layout & co).
const SOURCE_ROOTS: &[&str] = &["", "src", "lib", "python"];

/// Where one test path of the project is run from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestPath {
    /// Inside an installed package: `site_rel` is the path under site-packages.
    InPackage {
        /// The path in the project (`src/pkg/tests`).
        project: Utf8PathBuf,
        /// The same directory under site-packages (`pkg/tests`).
        site_rel: Utf8PathBuf,
    },
    /// Beside the packages: run in the run tree at the same relative path.
    Beside {
        /// The path in the project (`tests`).
        project: Utf8PathBuf,
    },
}

/// Where the project path `tests` lives: inside one of the installed top-level packages
/// (optionally under `src/`, `lib/` or `python/`), or beside them.
pub fn locate(tests: &Utf8Path, top_level: &[String]) -> TestPath {
    let parts: Vec<&str> = tests.iter().collect();
    for (i, part) in parts.iter().enumerate() {
        let prefix = parts[..i].join("/");
        if SOURCE_ROOTS.contains(&prefix.as_str()) && top_level.iter().any(|t| t == part) {
            return TestPath::InPackage {
                project: tests.to_owned(),
                site_rel: parts[i..].iter().collect(),
            };
        }
    }
    TestPath::Beside { project: tests.to_owned() }
}

/// The test paths of a project that names none: its pytest configuration's `testpaths`
/// where they exist, else the first of `tests`, `test`, `testing`, then `<pkg>/tests` and
/// `<pkg>/test` (also under `src/`, …) for each installed top-level package, else the
/// shallowest package below one of them that has such a directory (a namespace package's
/// `src/zope/interface`, whose `tests` and `common/tests` pytest then collects).
/// `exists` answers for a project-relative path, `subdirs` lists a directory's directories.
pub fn default_tests(
    testpaths: &[String],
    top_level: &[String],
    exists: impl Fn(&Utf8Path) -> bool,
    subdirs: impl Fn(&Utf8Path) -> Vec<String>,
) -> Vec<Utf8PathBuf> {
    let configured: Vec<Utf8PathBuf> = testpaths
        .iter()
        .map(|p| Utf8PathBuf::from(p.trim_end_matches('/')))
        .filter(|p| !p.as_str().contains('*') && exists(p))
        .collect();
    if !configured.is_empty() {
        return configured;
    }
    let mut candidates: Vec<Utf8PathBuf> =
        ["tests", "test", "testing"].iter().map(Utf8PathBuf::from).collect();
    for root in SOURCE_ROOTS {
        for top in top_level {
            for dir in ["tests", "test"] {
                candidates.push(Utf8Path::new(root).join(top).join(dir));
            }
        }
    }
    if let Some(found) = candidates.into_iter().find(|p| exists(p)) {
        return vec![found];
    }
    // Breadth first, three levels below each installed package.
    let mut level: Vec<Utf8PathBuf> = SOURCE_ROOTS
        .iter()
        .flat_map(|root| top_level.iter().map(move |top| Utf8Path::new(root).join(top)))
        .filter(|p| exists(p))
        .collect();
    for _ in 0..3 {
        let mut next = Vec::new();
        for dir in &level {
            let children = subdirs(dir);
            if children.iter().any(|c| c == "tests" || c == "test") {
                return vec![dir.clone()];
            }
            next.extend(children.iter().map(|c| dir.join(c)));
        }
        level = next;
    }
    Vec::new()
}

/// The pytest configuration file pytest would pick for tests in `tests` (project-relative),
/// searching from there up to the project root: per directory `pytest.ini`, `.pytest.ini`,
/// `pyproject.toml` with `[tool.pytest.ini_options]` or `[tool.pytest]`, `tox.ini` with
/// `[pytest]`, `setup.cfg` with `[tool:pytest]`. Returns the project-relative path and its
/// `testpaths`.
pub fn pytest_config(
    tests: &Utf8Path,
    read: impl Fn(&Utf8Path) -> Option<String>,
) -> Option<(Utf8PathBuf, Vec<String>)> {
    let mut dir = Some(tests);
    while let Some(d) = dir {
        for name in ["pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"] {
            let path = d.join(name);
            let Some(text) = read(&path) else { continue };
            if let Some(testpaths) = config_testpaths(name, &text) {
                return Some((path, testpaths));
            }
        }
        dir = d.parent();
    }
    None
}

/// `Some(testpaths)` if `text` (a file called `name`) configures pytest.
fn config_testpaths(name: &str, text: &str) -> Option<Vec<String>> {
    if name == "pyproject.toml" {
        let doc: toml::Table = toml::from_str(text).ok()?;
        let pytest = doc.get("tool")?.get("pytest")?;
        let table = pytest.get("ini_options").unwrap_or(pytest);
        let paths = match table.get("testpaths") {
            Some(toml::Value::Array(a)) => {
                a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
            }
            Some(toml::Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        return Some(paths);
    }
    let section = match name {
        "tox.ini" => "pytest",
        "setup.cfg" => "tool:pytest",
        _ => "pytest",
    };
    let mut in_section = false;
    let mut found = false;
    let mut paths = Vec::new();
    let mut in_testpaths = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_section = trimmed == format!("[{section}]");
            found |= in_section;
            in_testpaths = false;
            continue;
        }
        if !in_section || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let continuation = line.starts_with([' ', '\t']);
        if let Some((key, value)) = trimmed.split_once('=').filter(|_| !continuation) {
            in_testpaths = key.trim() == "testpaths";
            if in_testpaths {
                paths.extend(value.split_whitespace().map(str::to_owned));
            }
        } else if in_testpaths && continuation {
            paths.extend(trimmed.split_whitespace().map(str::to_owned));
        }
    }
    // pytest.ini and .pytest.ini configure pytest whatever they contain.
    (found || name.ends_with("pytest.ini")).then_some(paths)
}

/// Makes `to` a copy of the project `from` without the packages and modules its
/// distribution installed (`top_level`, at the root or under `src/`, `lib/`, `python/`),
/// build output, VCS data, virtual environments and compiled modules: nothing in it can
/// shadow the venv's copy.
pub fn run_tree(from: &Utf8Path, to: &Utf8Path, top_level: &[String]) -> anyhow::Result<()> {
    if to.exists() {
        fs::remove_dir_all(to).with_context(|| format!("removing {to}"))?;
    }
    let mut hidden: Vec<Utf8PathBuf> = Vec::new();
    for root in SOURCE_ROOTS {
        for top in top_level {
            hidden.push(Utf8Path::new(root).join(top));
            hidden.push(Utf8Path::new(root).join(format!("{top}.py")));
        }
    }
    copy_tree(from, to, Utf8Path::new(""), &hidden, &[], None)
}

/// Copies a project, leaving out build output (`build/`, `dist/`, a Rust `target/` at its
/// root), VCS data, virtual environments, compiled modules, the project-relative paths in
/// `hidden`, the directories in `outside` (the work directory, when it is inside the
/// project) and `to` itself: a copy never copies itself. Stops with an error once `cancel`
/// is set.
pub fn copy_tree(
    from: &Utf8Path,
    to: &Utf8Path,
    rel: &Utf8Path,
    hidden: &[Utf8PathBuf],
    outside: &[Utf8PathBuf],
    cancel: Option<&std::sync::atomic::AtomicBool>,
) -> anyhow::Result<()> {
    const SKIP: &[&str] =
        &[".git", "build", "dist", ".venv", "venv", "__pycache__", ".pytest_cache", ".tox"];
    if cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed)) {
        anyhow::bail!("copying {from}: interrupted");
    }
    let dir = from.join(rel);
    fs::create_dir_all(to.join(rel)).with_context(|| format!("creating {}", to.join(rel)))?;
    let never: Vec<Utf8PathBuf> =
        outside.iter().chain([&to.to_owned()]).filter_map(|d| d.canonicalize_utf8().ok()).collect();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let entry = entry.with_context(|| format!("reading {dir}"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = rel.join(&name);
        if SKIP.contains(&name.as_str())
            || (rel.as_str().is_empty() && name == "target")
            || name.ends_with(".egg-info")
            || name.ends_with(".so")
            || hidden.contains(&child)
        {
            continue;
        }
        let kind = entry.file_type().with_context(|| format!("reading {}", from.join(&child)))?;
        if kind.is_dir() {
            let excluded =
                from.join(&child).canonicalize_utf8().is_ok_and(|source| never.contains(&source));
            if !excluded {
                copy_tree(from, to, &child, hidden, outside, cancel)?;
            }
        } else if kind.is_file() {
            fs::copy(from.join(&child), to.join(&child))
                .with_context(|| format!("copying {}", from.join(&child)))?;
        }
    }
    Ok(())
}

/// Lays the project's test directory `project_tests` beside the installed package at
/// `installed_tests`, copying only files that are not installed (a wheel often leaves tests
/// or their data out); never replaces an installed file. Returns the files it added, so
/// that they can be removed before the next install.
pub fn overlay(
    project_tests: &Utf8Path,
    installed_tests: &Utf8Path,
) -> anyhow::Result<Vec<Utf8PathBuf>> {
    let mut added = Vec::new();
    let mut stack = vec![Utf8PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = project_tests.join(&rel);
        fs::create_dir_all(installed_tests.join(&rel))
            .with_context(|| format!("creating {}", installed_tests.join(&rel)))?;
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
            let entry = entry.with_context(|| format!("reading {dir}"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "__pycache__" || name.ends_with(".so") || name.ends_with(".pyc") {
                continue;
            }
            let child = rel.join(&name);
            let kind = entry.file_type().with_context(|| format!("reading {}", dir.join(&name)))?;
            let target = installed_tests.join(&child);
            if kind.is_dir() {
                stack.push(child);
            } else if kind.is_file() && !target.exists() {
                fs::copy(project_tests.join(&child), &target).with_context(|| {
                    format!("copying {} to {target}", project_tests.join(&child))
                })?;
                added.push(target);
            }
        }
    }
    added.sort();
    Ok(added)
}

/// Where a project directory lives when its tests run from site-packages: `project` (a
/// project-relative directory such as `src/pkg`) is `site` (its installed copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMap {
    /// The directory in the project.
    pub project: Utf8PathBuf,
    /// The same directory installed.
    pub site: Utf8PathBuf,
}

impl PathMap {
    /// The maps of a test path inside the package: the test directory itself and its
    /// top-level package (`src/pkg/tests` → `<site>/pkg/tests`, `src/pkg` → `<site>/pkg`).
    pub fn of(project: &Utf8Path, site_rel: &Utf8Path, site: &Utf8Path) -> Vec<PathMap> {
        let mut out = vec![PathMap { project: project.to_owned(), site: site.join(site_rel) }];
        let depth = site_rel.components().count();
        let mut package = project.to_owned();
        for _ in 1..depth {
            package.pop();
        }
        if let Some(top) = site_rel.components().next() {
            out.push(PathMap { project: package, site: site.join(top.as_str()) });
        }
        out
    }

    fn apply(&self, path: &str) -> Option<Utf8PathBuf> {
        let path = Utf8Path::new(path.trim_start_matches("./"));
        if path.is_absolute() {
            return None;
        }
        let rest = path.strip_prefix(&self.project).ok()?;
        Some(if rest.as_str().is_empty() { self.site.clone() } else { self.site.join(rest) })
    }
}

/// pytest options whose value is the next argument (so it is not a test path).
const TAKES_VALUE: &[&str] = &[
    "-k",
    "-m",
    "-p",
    "-o",
    "-c",
    "-W",
    "-r",
    "--tb",
    "--maxfail",
    "--rootdir",
    "--confcutdir",
    "--basetemp",
    "--durations",
    "--junitxml",
    "--log-level",
    "--import-mode",
    "--override-ini",
    "--config-file",
    "--pyargs",
    "--capture",
    "-n",
    "--dist",
    "--timeout",
];

/// A suite's `pytest-args` as they would act in a plain run from the project's root, for
/// tests that run from site-packages (`maps`; pytest's rootdir is `site`): pytest resolves
/// `--ignore`, `--ignore-glob` and test paths against the directory it runs in and node ids
/// of `--deselect` against its rootdir, so a project-relative path into an installed package
/// is given as its installed copy too, a relative glob is also anchored at site-packages,
/// and a test path or node id into the package names the installed file. Other arguments are
/// kept as they are.
pub fn translate_args(args: &[String], maps: &[PathMap], site: &Utf8Path) -> Vec<String> {
    if maps.is_empty() {
        return args.to_vec();
    }
    let map = |p: &str| maps.iter().find_map(|m| m.apply(p));
    let node = |id: &str| -> Option<String> {
        let (path, rest) = id.split_once("::").map_or((id, None), |(p, r)| (p, Some(r)));
        let mapped = map(path)?;
        let rel = mapped.strip_prefix(site).ok()?.to_owned();
        Some(match rest {
            Some(r) => format!("{rel}::{r}"),
            None => rel.into_string(),
        })
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let (option, value, joined) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_owned()), true),
            _ if arg.starts_with('-') => match args.get(i + 1) {
                Some(v) if ["--ignore", "--ignore-glob", "--deselect"].contains(&arg.as_str()) => {
                    i += 1;
                    (arg.as_str(), Some(v.clone()), false)
                }
                _ => (arg.as_str(), None, false),
            },
            _ => ("", Some(arg.clone()), false),
        };
        let again = |out: &mut Vec<String>, option: &str, value: &str| {
            if joined || option.is_empty() {
                out.push(if option.is_empty() {
                    value.to_owned()
                } else {
                    format!("{option}={value}")
                });
            } else {
                out.push(option.to_owned());
                out.push(value.to_owned());
            }
        };
        match (option, value) {
            ("--ignore", Some(v)) => {
                again(&mut out, option, &v);
                if let Some(m) = map(&v) {
                    again(&mut out, option, m.as_str());
                }
            }
            ("--ignore-glob", Some(v)) => {
                again(&mut out, option, &v);
                if !Utf8Path::new(&v).is_absolute() {
                    let anchored = map(&v).unwrap_or_else(|| site.join(v.trim_start_matches("./")));
                    again(&mut out, option, anchored.as_str());
                }
            }
            ("--deselect", Some(v)) => {
                again(&mut out, option, &v);
                if let Some(id) = node(&v) {
                    again(&mut out, option, &id);
                }
            }
            ("", Some(v)) => {
                let (path, rest) =
                    v.split_once("::").map_or((v.as_str(), None), |(p, r)| (p, Some(r)));
                match map(path) {
                    Some(m) => out.push(match rest {
                        Some(r) => format!("{m}::{r}"),
                        None => m.into_string(),
                    }),
                    None => out.push(v.clone()),
                }
            }
            (_, Some(v)) => again(&mut out, option, &v),
            (_, None) => {
                out.push(arg.clone());
                if TAKES_VALUE.contains(&arg.as_str())
                    && let Some(v) = args.get(i + 1)
                {
                    out.push(v.clone());
                    i += 1;
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests;
