//! Setting a suite up on a cell, before any test runs: the venv (kept while the cell's build
//! key and the dependencies hold), the project copied or its sdist unpacked afresh, pip's
//! build and `--report`, the inspection (`python/debug_matrix_inspect.py`: what the
//! distribution installed, and that its compiled modules are this cell's), and the test plan
//! (where pytest runs and what it is given, from [`crate::layout`]'s decisions). Every step is
//! an [`Invocation`] with [`invocation::SETUP_LIMIT`]; a failure is an error naming its log.

use std::{fs, sync::atomic::AtomicBool};

use anyhow::{Context as _, bail};
use camino::{Utf8Path, Utf8PathBuf};
use process::RunError;
use serde::Deserialize;

use self::pinning::{environment, pin, record_sources};
use crate::{
    constraints,
    detect::Detectors,
    environment::Environment,
    invocation::{self, Invocation, SanitizerUse},
    layout::{self, Installed},
    prepared::Prepared,
    sdist,
    suite::{PypiSpec, Source, Suite},
};

/// What a suite run needs to know about its cell.
#[derive(Debug, Clone)]
pub struct CellEnv<'a> {
    /// `3.13.5+debug`.
    pub cell: matrix::CellId,
    /// The build's cache key: a venv is kept only while it holds.
    pub key: String,
    /// The cell's installed interpreter.
    pub python: Utf8PathBuf,
    /// The cell's CPython source tree (for `Misc/valgrind-python.supp`).
    pub cpython_source: Utf8PathBuf,
    /// The cell's results directory: each suite works in its [`workdir::SuiteDirs`].
    pub cell_dirs: workdir::CellDirs,
    /// pip's download cache, shared by all cells.
    pub pip_cache: Utf8PathBuf,
    /// Where `--pypi` sdists are kept, one directory per `NAME==VERSION`, shared by all cells.
    pub sdists: Utf8PathBuf,
    /// The work directory: never part of a project's copy (it may be inside an `--ext`
    /// project).
    pub work_dir: Utf8PathBuf,
    /// `matrix/constraints.txt`, pinning every suite's installs (`None`: nothing pinned
    /// but what a suite's own constraints file pins, as `--update-constraints` runs).
    pub constraints: Option<Utf8PathBuf>,
    /// Set by Ctrl-C.
    pub cancel: &'a AtomicBool,
}

/// The parts of `pip install --report` read here.
#[derive(Deserialize)]
struct PipReport {
    install: Vec<PipInstall>,
}

#[derive(Deserialize)]
struct PipInstall {
    metadata: PipMetadata,
}

#[derive(Deserialize)]
struct PipMetadata {
    name: String,
    #[serde(default)]
    requires_dist: Vec<String>,
}

/// Runs one set-up command; a failure is an error naming the log.
fn step(
    env: &CellEnv<'_>,
    what: &str,
    cmd: Invocation,
    log: &Utf8Path,
    extra_env: &[(String, String)],
) -> anyhow::Result<()> {
    let cmd = cmd
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_CACHE_DIR", &env.pip_cache)
        .envs(extra_env.iter().map(|(k, v)| (k, v)));
    match cmd.run(log, env.cancel) {
        Ok(()) => Ok(()),
        Err(RunError::Cancelled) => bail!("{what}: interrupted"),
        Err(e) => {
            // Under constraints, say which pin pip could not satisfy and what to do.
            let pinned = extra_env.iter().find(|(k, _)| k == "PIP_CONSTRAINT");
            let hint = pinned
                .and_then(|(_, file)| {
                    constraints::explain(
                        &fs::read_to_string(log).unwrap_or_default(),
                        &fs::read_to_string(file).unwrap_or_default(),
                    )
                })
                .map(|h| format!("\n{h}"))
                .unwrap_or_default();
            bail!("{what} failed ({e:?}); log: {log}\n{}{hint}", process::tail_of_file(log, 20))
        }
    }
}

/// Sets `suite` up on the cell in its directory `dir`.
pub(crate) fn prepare(
    env: &CellEnv<'_>,
    suite: &Suite,
    detectors: &Detectors,
    dir: &Utf8Path,
) -> anyhow::Result<Prepared> {
    fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
    let log = dir.join("setup.log");
    let _ = fs::remove_file(&log);
    let setup_env = setup_sanitizer_env(env, detectors, dir);
    let venv = env.cell_dirs.suite(&suite.name).venv;
    let py = venv.join("bin/python");
    let mut deps = vec!["setuptools".to_owned(), "wheel".to_owned(), "pytest".to_owned()];
    deps.extend(suite.test_deps.iter().cloned());
    if hunts_races(detectors, suite) {
        deps.push(RUN_PARALLEL.to_owned());
    }
    let marker = venv.join(".debug-matrix");
    // The constraints pin every pip install below, and pip's build environments through the
    // environment (PIP_CONSTRAINT; PIP_BUILD_CONSTRAINT from pip 25.3 on): `-c` would not
    // reach them.
    let pinned = pin(env, suite, dir)?;
    let pin_env: Vec<(String, String)> = match &pinned {
        Some(file) => ["PIP_CONSTRAINT", "PIP_BUILD_CONSTRAINT"]
            .iter()
            .map(|k| ((*k).to_owned(), file.to_string()))
            .collect(),
        None => Vec::new(),
    };
    let pip_env: Vec<(String, String)> = setup_env.iter().chain(&pin_env).cloned().collect();
    let pinned_text = pinned.as_ref().and_then(|f| fs::read_to_string(f).ok()).unwrap_or_default();
    let identity = format!("{}\n{}\n{pinned_text}", env.key, deps.join(" "));
    let sources_file = venv.join(".debug-matrix-sources.json");
    // The interpreter's environment as the inspection has it: the variant's, then ours.
    let check_env: Vec<(String, String)> =
        detectors.env.clone().into_iter().chain(setup_env.iter().cloned()).collect();
    if let Some(why) = venv_unusable(&py, &marker, &identity, &check_env) {
        append(&log, &format!("making the venv {venv}: {why}\n"));
        if venv.is_dir() {
            // `venv --clear` does not survive everything a broken venv may hold.
            fs::remove_dir_all(&venv)
                .with_context(|| format!("removing the venv {venv} to make it again"))?;
        }
        let cmd = Invocation::new(&env.python).args(["-m", "venv", "--clear"]).arg(&venv);
        step(env, "creating the venv", cmd, &log, &setup_env)?;
        let cmd = pip_install(&py, &dir.join("deps-report.json")).args(&deps);
        step(env, "installing test dependencies", cmd, &log, &pip_env)?;
        record_sources(&sources_file, &dir.join("deps-report.json"))?;
        fs::write(&marker, &identity).with_context(|| format!("writing {marker}"))?;
    }

    // A fresh copy of the project every time: no build directory is shared between cells.
    let src = dir.join("src");
    if src.exists() {
        fs::remove_dir_all(&src).with_context(|| format!("removing {src}"))?;
    }
    match &suite.source {
        Source::Dir(project) => {
            let outside = [env.work_dir.clone()];
            layout::copy_tree(project, &src, Utf8Path::new(""), &[], &outside, Some(env.cancel))
                .with_context(|| format!("copying the project {project}"))?
        }
        Source::Pypi(spec) => {
            let sdist = download_sdist(env, suite, spec, &py, &log, &pip_env)?;
            extract::extract_source_archive(&sdist, &src)
                .with_context(|| format!("unpacking {sdist}"))?;
        }
    }

    // Test files laid beside the installed package by an earlier run go before pip runs.
    let overlay_list = dir.join("overlay.txt");
    remove_overlaid(dir, &overlay_list, &log);

    // pip's own build isolation brings the build backend the project names (setuptools,
    // meson-python, scikit-build-core, Cython…); a directory's wheel is never cached, and
    // --force-reinstall replaces what an earlier run installed.
    let report_file = dir.join("install-report.json");
    let _ = fs::remove_file(&report_file);
    let mut cmd = Invocation::new(&py)
        .args(["-m", "pip", "install", "-v", "--no-deps", "--force-reinstall", "--report"])
        .arg(&report_file)
        .arg(&src)
        .envs(&suite.build_env);
    if !detectors.extension_cflags.is_empty() {
        cmd = cmd.env("CFLAGS", detectors.extension_cflags.join(" "));
    }
    let build_log = dir.join("build.log");
    let _ = fs::remove_file(&build_log);
    step(env, &format!("building {} for {}", suite.name, env.cell), cmd, &build_log, &pip_env)?;
    record_sources(&sources_file, &report_file)?;
    let report: PipReport = serde_json::from_str(
        &fs::read_to_string(&report_file).with_context(|| format!("reading {report_file}"))?,
    )
    .with_context(|| format!("reading pip's report {report_file}"))?;
    let metadata = report
        .install
        .into_iter()
        .next()
        .map(|i| i.metadata)
        .with_context(|| format!("pip installed nothing from {src}; see {build_log}"))?;

    // The project's own requirements and its test extras (not forced: what is there stays).
    let requirements = runtime_requirements(&metadata.requires_dist);
    if !requirements.is_empty() {
        let report = dir.join("requires-report.json");
        let cmd = pip_install(&py, &report).args(&requirements);
        step(env, &format!("installing what {} requires", metadata.name), cmd, &log, &pip_env)?;
        record_sources(&sources_file, &report)?;
    }

    let out = Invocation::new(&py)
        .arg(invocation::plugin_dir().join("debug_matrix_inspect.py"))
        .arg(&metadata.name)
        .cwd(dir)
        .envs(&detectors.env)
        .envs(setup_env.iter().map(|(k, v)| (k, v)))
        .output()
        .with_context(|| format!("running {py}"))?;
    let installed: Installed = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "inspecting the installed {} failed:\n{}",
            metadata.name,
            String::from_utf8_lossy(&out.stderr).trim_end()
        )
    })?;
    if !installed.errors.is_empty() {
        bail!(
            "the compiled modules of {} {} are not what this cell imports:\n  {}",
            installed.dist,
            installed.version,
            installed.errors.join("\n  ")
        );
    }
    if installed.compiled.is_empty() {
        bail!(
            "{} {} installed no compiled module for {}: a silent pure-Python fallback? see {build_log}",
            installed.dist,
            installed.version,
            env.cell,
        );
    }

    let environment = environment(&out.stdout, &sources_file, &build_log, &installed, suite)
        .with_context(|| format!("recording what the venv {venv} holds"))?;
    let used = [&env.constraints, &suite.constraints].into_iter().flatten().cloned().collect();
    let environment = Environment { constraints: used, ..environment };

    let plan = test_plan(suite, &src, &installed)?;
    let listing: String = plan.overlaid.iter().map(|p| format!("{p}\n")).collect();
    fs::write(&overlay_list, listing).with_context(|| format!("writing {overlay_list}"))?;
    let run_tree = dir.join("run");
    layout::run_tree(&src, &run_tree, &installed.top_level)
        .with_context(|| format!("making the run tree {run_tree}"))?;
    let config = match plan.config {
        Some(project_relative) => run_tree.join(project_relative),
        None => {
            // No configuration of the project's own: stop pytest's search at the project's
            // root, as in a checkout, instead of finding one in a directory above.
            let ini = run_tree.join("pytest.ini");
            fs::write(
                &ini,
                "[pytest]\n# written by debug-matrix: the project has no pytest configuration\n",
            )
            .with_context(|| format!("writing {ini}"))?;
            ini
        }
    };
    let mut pytest_options = Vec::new();
    if plan.in_package {
        // Node ids relative to site-packages read like the project's paths; namespace
        // packages (zope.*) import under their full names; the configuration is the
        // project's, which pytest would not find from site-packages.
        pytest_options.push(format!("--rootdir={}", installed.site));
        pytest_options.extend(["-o".to_owned(), "consider_namespace_packages=true".to_owned()]);
        pytest_options.extend(["-c".to_owned(), config.into_string()]);
    }
    let node_root = if plan.in_package { installed.site.clone() } else { run_tree.clone() };
    let suite_args = layout::translate_args(&suite.pytest_args, &plan.maps, &installed.site);
    let modules_file = dir.join("modules.json");
    let watch = serde_json::json!({ "compiled": installed.compiled, "twins": installed.twins });
    fs::write(&modules_file, watch.to_string())
        .with_context(|| format!("writing {modules_file}"))?;
    Ok(Prepared {
        dir: dir.to_owned(),
        src,
        run_tree,
        installed,
        pytest_options,
        suite_args,
        test_paths: plan.paths,
        node_root,
        modules_file,
        environment,
    })
}

/// The suite's test paths in the project: as configured, or found ([`layout::default_tests`]).
fn suite_tests(
    suite: &Suite,
    src: &Utf8Path,
    installed: &Installed,
) -> anyhow::Result<Vec<Utf8PathBuf>> {
    if !suite.tests.is_empty() {
        for t in &suite.tests {
            if !src.join(t).exists() {
                bail!(
                    "suite `{}`: tests = \"{t}\" is not in the project; it has: {}. \
                     Set `tests` to its test directory in the project's [tool.debug-matrix] (or its suite in matrix/extensions.toml)",
                    suite.name,
                    listing(src)
                );
            }
        }
        return Ok(suite.tests.iter().map(Utf8PathBuf::from).collect());
    }
    let testpaths =
        layout::pytest_config(Utf8Path::new(""), |p| fs::read_to_string(src.join(p)).ok())
            .map(|(_, paths)| paths)
            .unwrap_or_default();
    let found = layout::default_tests(
        &testpaths,
        &installed.top_level,
        |p| src.join(p).exists(),
        |d| {
            let mut dirs: Vec<String> = fs::read_dir(src.join(d))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            dirs.sort();
            dirs
        },
    );
    if found.is_empty() {
        bail!(
            "suite `{}`: found no tests (no `testpaths` in its pytest configuration, no tests/, \
             test/ or <package>/tests); the project has: {}. Set `tests` in the project's [tool.debug-matrix] (or its suite in matrix/extensions.toml)",
            suite.name,
            listing(src)
        );
    }
    Ok(found)
}

fn listing(dir: &Utf8Path) -> String {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() { format!("{name}/") } else { name }
        })
        .collect();
    names.sort();
    names.join(" ")
}

/// Where pytest is pointed, from [`layout`]'s decisions.
struct TestPlan {
    /// Test paths: under site-packages for tests inside the package, else run-tree relative.
    paths: Vec<String>,
    /// Whether any test path is inside the installed package.
    in_package: bool,
    /// The project's pytest configuration for the tests (project-relative), if it has one.
    config: Option<Utf8PathBuf>,
    /// Files laid beside the installed package.
    overlaid: Vec<Utf8PathBuf>,
    /// Where the project's directories of tests inside the package are installed.
    maps: Vec<layout::PathMap>,
}

fn test_plan(suite: &Suite, src: &Utf8Path, installed: &Installed) -> anyhow::Result<TestPlan> {
    let mut plan = TestPlan {
        paths: Vec::new(),
        in_package: false,
        config: None,
        overlaid: Vec::new(),
        maps: Vec::new(),
    };
    for tests in suite_tests(suite, src, installed)? {
        if plan.config.is_none() {
            plan.config = layout::pytest_config(&tests, |p| fs::read_to_string(src.join(p)).ok())
                .map(|(path, _)| path);
        }
        match layout::locate(&tests, &installed.top_level) {
            layout::TestPath::InPackage { project, site_rel } => {
                let target = installed.site.join(&site_rel);
                plan.overlaid.extend(
                    layout::overlay(&src.join(&project), &target).with_context(|| {
                        format!("laying {project} beside the installed package")
                    })?,
                );
                plan.in_package = true;
                plan.maps.extend(layout::PathMap::of(&project, &site_rel, &installed.site));
                plan.paths.push(target.into_string());
            }
            layout::TestPath::Beside { project } => plan.paths.push(project.into_string()),
        }
    }
    Ok(plan)
}

/// The `Requires-Dist` entries to install: unconditional ones and those of a `test`,
/// `tests` or `testing` extra (marker dropped); other extras are left out.
fn runtime_requirements(requires_dist: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for req in requires_dist {
        match req.split_once(';') {
            None => out.push(req.trim().to_owned()),
            Some((spec, marker)) => {
                let marker = marker.trim();
                if !marker.contains("extra") {
                    out.push(req.trim().to_owned());
                    continue;
                }
                let test_extra = ["test", "tests", "testing"].iter().any(|e| {
                    marker == format!("extra == \"{e}\"") || marker == format!("extra == '{e}'")
                });
                if test_extra {
                    out.push(spec.trim().to_owned());
                }
            }
        }
    }
    out
}

/// Why the venv with interpreter `py` must be made (again), if it must: it was made for
/// another build or other dependencies (`marker` does not hold `identity`), or it is broken
/// (`bin/python` missing, not a file, or unable to import pytest with the variables `vars`).
/// A broken cache is rebuilt, never failed on every run.
pub(crate) fn venv_unusable(
    py: &Utf8Path,
    marker: &Utf8Path,
    identity: &str,
    vars: &[(String, String)],
) -> Option<String> {
    match fs::read_to_string(marker) {
        Err(_) => return Some("new".to_owned()),
        Ok(text) if text != identity => {
            return Some("made for another build or other test dependencies".to_owned());
        }
        Ok(_) => {}
    }
    if !py.is_file() {
        return Some(format!("{py} is missing or not a file"));
    }
    let check = Invocation::new(py).args(["-c", "import pytest"]).envs(vars.iter().cloned());
    match check.output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`{py} -c 'import pytest'` failed ({}): {}",
            out.status,
            process::tail(&String::from_utf8_lossy(&out.stderr), 5)
        )),
        Err(e) => Some(format!("{py} does not run: {e}")),
    }
}

/// Removes the files an earlier run laid beside the installed package, listed in
/// `overlay_list`, then the list. The list is a file in the work directory, so each path is
/// removed only if it is inside the suite's directory `dir` (where the venv is) once
/// resolved ([`owned_path`]); any other is left, and the set-up log says so.
fn remove_overlaid(dir: &Utf8Path, overlay_list: &Utf8Path, log: &Utf8Path) {
    let Ok(text) = fs::read_to_string(overlay_list) else { return };
    let root = dir.canonicalize_utf8().unwrap_or_else(|_| dir.to_owned());
    for line in text.lines().filter(|l| !l.is_empty()) {
        match owned_path(&root, Utf8Path::new(line)) {
            Ok(Some(path)) => {
                let _ = fs::remove_file(path);
            }
            Ok(None) => {}
            Err(why) => {
                append(log, &format!("{overlay_list}: not removing {line}: {why}\n"));
            }
        }
    }
    let _ = fs::remove_file(overlay_list);
}

/// `path` as the file to remove if it is one the tool owns: absolute, without `..`, and
/// inside `root` (canonical) once the symbolic links of its directory are resolved. `None`:
/// its directory is gone, so is the file.
pub(crate) fn owned_path(root: &Utf8Path, path: &Utf8Path) -> Result<Option<Utf8PathBuf>, String> {
    if !path.is_absolute() {
        return Err("not an absolute path".to_owned());
    }
    if path.components().any(|c| c.as_str() == "..") {
        return Err("it has `..` in it".to_owned());
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err("not a file".to_owned());
    };
    let Ok(parent) = parent.canonicalize_utf8() else { return Ok(None) };
    if !parent.starts_with(root) {
        return Err(format!("outside the suite's directory {root}"));
    }
    Ok(Some(parent.join(name)))
}

/// The sdist of `spec`, checked, from the shared cache or downloaded by pip ([`sdist`]).
fn download_sdist(
    env: &CellEnv<'_>,
    suite: &Suite,
    spec: &PypiSpec,
    py: &Utf8Path,
    log: &Utf8Path,
    setup_env: &[(String, String)],
) -> anyhow::Result<Utf8PathBuf> {
    sdist::sdist(
        &env.sdists,
        spec,
        suite.sha256.as_deref(),
        |note| append(log, &format!("{note}\n")),
        |into| {
            // `--no-binary NAME`, not `:all:`: the latter would also build the project's
            // build dependencies (ninja, cmake, …) from source to prepare its metadata.
            let cmd = Invocation::new(py)
                .args(["-m", "pip", "download", "-q", "--no-deps", "--no-binary"])
                .arg(&spec.name)
                .arg("-d")
                .arg(into)
                .arg(spec.to_string());
            step(env, &format!("downloading {spec}"), cmd, log, setup_env)
        },
    )
}

/// `pip install -q --report REPORT`.
fn pip_install(py: &Utf8Path, report: &Utf8Path) -> Invocation {
    let _ = fs::remove_file(report);
    Invocation::new(py).args(["-m", "pip", "install", "-q", "--report"]).arg(report)
}

/// Appends `text` to the set-up log.
fn append(log: &Utf8Path, text: &str) {
    use std::io::Write;
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = f.write_all(text.as_bytes());
    }
}

/// The plugin that runs each test concurrently in several threads (race hunting on
/// free-threaded cells), pinned.
const RUN_PARALLEL: &str = "pytest-run-parallel==0.10.0";

/// Whether the suite gets a race-hunting run: on free-threaded cells, when pytest is ours to
/// run (a suite's own test command is run as it is). Decides pytest-run-parallel's install too.
pub(crate) fn hunts_races(detectors: &Detectors, suite: &Suite) -> bool {
    detectors.free_threaded && suite.test_command.is_none()
}

/// The environment of the set-up steps (venv, pip, the extension's build, the inspection) on
/// sanitizer cells ([`SanitizerUse::Setup`]): reports go to `<suite>/sanitizer/setup.<pid>`.
fn setup_sanitizer_env(
    env: &CellEnv<'_>,
    detectors: &Detectors,
    dir: &Utf8Path,
) -> Vec<(String, String)> {
    if detectors.tsan || detectors.ubsan {
        // The runtimes do not make log_path's directory.
        let _ = fs::create_dir_all(dir.join("sanitizer"));
    }
    invocation::sanitizer_env(
        detectors,
        &env.cpython_source,
        &dir.join("sanitizer/setup"),
        SanitizerUse::Setup,
    )
}

mod pinning;
#[cfg(test)]
mod tests;
