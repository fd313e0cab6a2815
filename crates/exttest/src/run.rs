//! The process boundary of extension testing: venv, pip, the import check, pytest (under
//! valgrind where the cell asks for it).

use std::{
    collections::BTreeMap,
    fs,
    os::unix::process::ExitStatusExt as _,
    process::Command,
    sync::atomic::AtomicBool,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use camino::{Utf8Path, Utf8PathBuf};
use process::{RunError, run_logged};
use serde::{Deserialize, Serialize};

use crate::{
    Detectors, Finding, FindingKind, Source, Suite,
    events::{self, Counts, Exit},
    layout::{self, Installed},
    sanitizer, valgrind,
};

/// What a suite run needs to know about its cell.
#[derive(Debug, Clone)]
pub struct CellEnv<'a> {
    /// `3.13.5+debug`.
    pub cell: String,
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
    /// Set by Ctrl-C.
    pub cancel: &'a AtomicBool,
}

/// The outcome of one suite on one cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteResult {
    /// The cell.
    pub cell: String,
    /// The suite.
    pub suite: String,
    /// Test counts.
    pub counts: Counts,
    /// Problems found.
    pub findings: Vec<Finding>,
    /// The compiled modules that were imported, with their files.
    pub modules: BTreeMap<String, String>,
    /// Which detectors ran ([`Detectors::names`]).
    pub detectors: Vec<String>,
    /// The test run's log.
    pub log: Utf8PathBuf,
    /// Wall-clock seconds for set-up, build and tests.
    pub seconds: u64,
    /// Free-threaded cells: whether the GIL was on while the tests ran (`sys._is_gil_enabled()`
    /// read by the plugin); `None` on other cells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gil_enabled: Option<bool>,
    /// The node ids of the tests that ran (for [`crate::expect::apply`]; not recorded).
    #[serde(skip)]
    pub ran: std::collections::BTreeSet<String>,
}

impl SuiteResult {
    /// Whether nothing unexpected was found.
    pub fn clean(&self) -> bool {
        self.unexpected().next().is_none()
    }

    /// The findings that are problems: not accepted by an `[[expected]]` entry, not notes.
    pub fn unexpected(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.expected.is_none() && !f.kind.is_note())
    }
}

/// What `prepare` leaves for the test run.
struct Prepared {
    /// The suite's directory on the cell (`venv/` is in it).
    dir: Utf8PathBuf,
    /// The fresh copy of the project (C sources for valgrind's stacks, `{src}`).
    src: Utf8PathBuf,
    /// Where pytest runs: the project without its installed packages.
    run_tree: Utf8PathBuf,
    /// What the distribution installed.
    installed: Installed,
    /// pytest options for the project's configuration and rootdir.
    pytest_options: Vec<String>,
    /// The test paths pytest is given.
    test_paths: Vec<String>,
    /// What node ids are relative to: site-packages for tests inside the package, else the
    /// run tree.
    node_root: Utf8PathBuf,
    /// The plugin's `--dm-modules` file.
    modules_file: Utf8PathBuf,
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

/// Sets up, builds and tests `suite` on the cell. Set-up failures are findings of kind
/// [`FindingKind::Setup`], not errors: the matrix goes on.
pub fn run_suite(env: &CellEnv<'_>, suite: &Suite, detectors: &Detectors) -> SuiteResult {
    let started = Instant::now();
    let dir = env.cell_dirs.suite(&suite.name).root;
    let mut result = SuiteResult {
        cell: env.cell.clone(),
        suite: suite.name.clone(),
        counts: Counts::default(),
        findings: Vec::new(),
        modules: BTreeMap::new(),
        detectors: detectors.names(),
        log: dir.join("test.log"),
        seconds: 0,
        gil_enabled: None,
        ran: Default::default(),
    };
    match prepare(env, suite, detectors, &dir) {
        Ok(prepared) => {
            result.modules = prepared.installed.compiled.clone();
            let outcome = test(env, suite, detectors, &dir, &prepared);
            result.counts = outcome.counts;
            result.findings = outcome.findings;
            result.ran = outcome.ran;
            result.detectors.extend(outcome.notes);
            result.gil_enabled = outcome.gil_enabled;
        }
        Err(err) => {
            result.findings.push(Finding::new(FindingKind::Setup, None, format!("{err:#}")))
        }
    }
    result.seconds = started.elapsed().as_secs();
    result
}

/// Runs one set-up command; a failure is an error naming the log.
fn step(
    env: &CellEnv<'_>,
    what: &str,
    mut cmd: Command,
    log: &Utf8Path,
    extra_env: &[(String, String)],
) -> anyhow::Result<()> {
    process::scrub_python_env(&mut cmd)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_CACHE_DIR", &env.pip_cache)
        .envs(extra_env.iter().map(|(k, v)| (k, v)));
    match run_logged(cmd, log, env.cancel, Some(Duration::from_secs(900))) {
        Ok(()) => Ok(()),
        Err(RunError::Cancelled) => bail!("{what}: interrupted"),
        Err(e) => bail!("{what} failed ({e:?}); log: {log}\n{}", process::tail_of_file(log, 20)),
    }
}

fn prepare(
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
    let identity = format!("{}\n{}", env.key, deps.join(" "));
    if fs::read_to_string(&marker).ok().as_deref() != Some(identity.as_str()) {
        let mut cmd = Command::new(&env.python);
        cmd.args(["-m", "venv", "--clear"]).arg(&venv);
        step(env, "creating the venv", cmd, &log, &setup_env)?;
        let mut cmd = Command::new(&py);
        cmd.args(["-m", "pip", "install", "-q"]).args(&deps);
        step(env, "installing test dependencies", cmd, &log, &setup_env)?;
        fs::write(&marker, &identity).with_context(|| format!("writing {marker}"))?;
    }

    // A fresh copy of the project every time: no build directory is shared between cells.
    let src = dir.join("src");
    if src.exists() {
        fs::remove_dir_all(&src).with_context(|| format!("removing {src}"))?;
    }
    match &suite.source {
        Source::Dir(project) => layout::copy_tree(project, &src, Utf8Path::new(""), &[])
            .with_context(|| format!("copying the project {project}"))?,
        Source::Pypi(spec) => {
            let sdist = download_sdist(env, spec, &py, &log, &setup_env)?;
            extract::extract_source_archive(&sdist, &src)
                .with_context(|| format!("unpacking {sdist}"))?;
        }
    }

    // Test files laid beside the installed package by an earlier run go before pip runs.
    let overlay_list = dir.join("overlay.txt");
    for file in fs::read_to_string(&overlay_list).unwrap_or_default().lines() {
        let _ = fs::remove_file(file);
    }
    let _ = fs::remove_file(&overlay_list);

    // pip's own build isolation brings the build backend the project names (setuptools,
    // meson-python, scikit-build-core, Cython…); a directory's wheel is never cached, and
    // --force-reinstall replaces what an earlier run installed.
    let report_file = dir.join("install-report.json");
    let _ = fs::remove_file(&report_file);
    let mut cmd = Command::new(&py);
    cmd.args(["-m", "pip", "install", "-v", "--no-deps", "--force-reinstall", "--report"])
        .arg(&report_file)
        .arg(&src)
        .envs(&suite.build_env);
    if !detectors.extension_cflags.is_empty() {
        cmd.env("CFLAGS", detectors.extension_cflags.join(" "));
    }
    let build_log = dir.join("build.log");
    let _ = fs::remove_file(&build_log);
    step(env, &format!("building {} for {}", suite.name, env.cell), cmd, &build_log, &setup_env)?;
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
        let mut cmd = Command::new(&py);
        cmd.args(["-m", "pip", "install", "-q"]).args(&requirements);
        step(env, &format!("installing what {} requires", metadata.name), cmd, &log, &setup_env)?;
    }

    let mut inspect = Command::new(&py);
    process::scrub_python_env(&mut inspect);
    let out = inspect
        .arg(crate::plugin_dir().join("debug_matrix_inspect.py"))
        .arg(&metadata.name)
        .current_dir(dir)
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
        test_paths: plan.paths,
        node_root,
        modules_file,
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
                     Set `tests` in matrix/extensions.toml to its test directory",
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
             test/ or <package>/tests); the project has: {}. Set `tests` in matrix/extensions.toml",
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
}

fn test_plan(suite: &Suite, src: &Utf8Path, installed: &Installed) -> anyhow::Result<TestPlan> {
    let mut plan =
        TestPlan { paths: Vec::new(), in_package: false, config: None, overlaid: Vec::new() };
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

fn download_sdist(
    env: &CellEnv<'_>,
    spec: &str,
    py: &Utf8Path,
    log: &Utf8Path,
    setup_env: &[(String, String)],
) -> anyhow::Result<Utf8PathBuf> {
    let sdists = env.sdists.join(spec.replace("==", "-"));
    if let Some(s) = find_sdist(&sdists) {
        return Ok(s);
    }
    // `--no-binary NAME`, not `:all:`: the latter would also build the project's build
    // dependencies (ninja, cmake, …) from source to prepare its metadata.
    let name = spec.split_once("==").map_or(spec, |(n, _)| n);
    let mut cmd = Command::new(py);
    cmd.args(["-m", "pip", "download", "-q", "--no-deps", "--no-binary", name, "-d"])
        .arg(&sdists)
        .arg(spec);
    step(env, &format!("downloading {spec}"), cmd, log, setup_env)?;
    find_sdist(&sdists).with_context(|| format!("pip download {spec} left no .tar.gz in {sdists}"))
}

fn find_sdist(dir: &Utf8Path) -> Option<Utf8PathBuf> {
    let entries = fs::read_dir(dir).ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Utf8PathBuf::from_path_buf(e.path()).ok())
        .find(|p| p.as_str().ends_with(".tar.gz"))
}

/// The plugin that runs each test concurrently in several threads (race hunting on
/// free-threaded cells), pinned.
const RUN_PARALLEL: &str = "pytest-run-parallel==0.10.0";

/// How many threads run each test at once in the race-hunting run.
const PARALLEL_THREADS: usize = 4;

/// The most crashes (or hangs) a suite run survives: each restart goes on after the tests
/// that already ended, without the one that crashed.
const MAX_RESTARTS: usize = 10;

/// What the test runs of a suite found.
struct TestOutcome {
    counts: Counts,
    findings: Vec<Finding>,
    ran: std::collections::BTreeSet<String>,
    /// How the detectors adapted or what they saw beside the findings.
    notes: Vec<String>,
    gil_enabled: Option<bool>,
}

/// Runs the tests, restarting after a crash where it stopped: without the crashing test and
/// the tests that already ended (their results are kept).
fn test(
    env: &CellEnv<'_>,
    suite: &Suite,
    detectors: &Detectors,
    dir: &Utf8Path,
    prepared: &Prepared,
) -> TestOutcome {
    let mut all_events = Vec::new();
    let mut counts = Counts::default();
    let mut ran = std::collections::BTreeSet::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut deselect: Vec<String> = Vec::new();
    let log = dir.join("test.log");
    let _ = fs::remove_file(&log);
    let mut needles: Vec<String> = prepared
        .installed
        .compiled
        .values()
        .filter_map(|f| Utf8Path::new(f).file_name().map(str::to_owned))
        .collect();
    // Sanitizer stacks name the module file (`_x.cpython-313t-….so+0x…`) and source paths.
    let mut sanitizer_needles: Vec<String> = needles.clone();
    sanitizer_needles
        .extend(c_sources(&prepared.src).iter().map(|n| format!("/{}", n.trim_start_matches('('))));
    let mut sanitizer_outside = sanitizer::Outside::default();
    let mut notes_before: Vec<String> = Vec::new();
    needles.extend(c_sources(&prepared.src));
    let _ = fs::remove_dir_all(dir.join("sanitizer"));
    if detectors.tsan || detectors.ubsan {
        // The runtimes do not make log_path's directory.
        let _ = fs::create_dir_all(dir.join("sanitizer"));
    }
    for attempt in 0..=MAX_RESTARTS {
        let results = dir.join(format!("events-{attempt}.jsonl"));
        let attempt_log = dir.join(format!("test-{attempt}.log"));
        let _ = fs::remove_file(&results);
        let _ = fs::remove_file(&attempt_log);
        let cmd = test_command(env, suite, detectors, prepared, &results, &deselect, None);
        let limit = Duration::from_secs(if detectors.valgrind { 3600 } else { 1200 });
        let exit = match exit_of(run_logged(cmd, &attempt_log, env.cancel, Some(limit))) {
            Ok(exit) => exit,
            Err(RunError::Cancelled) => {
                findings.push(Finding::new(FindingKind::Setup, None, "interrupted".to_owned()));
                break;
            }
            Err(e) => {
                findings.push(Finding::new(
                    FindingKind::Setup,
                    None,
                    format!("could not run the tests: {e}"),
                ));
                break;
            }
        };
        let text = fs::read_to_string(&attempt_log).unwrap_or_default();
        append(&log, &text);
        let evs = events::parse_events(&fs::read_to_string(&results).unwrap_or_default());
        let mut found = events::evaluate(&evs, &exit, &text);
        if detectors.valgrind {
            found.extend(valgrind::findings(&text, &needles));
        }
        if detectors.tsan || detectors.ubsan {
            let (reported, outside) = sanitizer_findings(&results, &evs, &sanitizer_needles);
            sanitizer_outside.add(outside);
            // A sanitizer that halts the process makes it exit mid-test: the report is the
            // finding, not the exit.
            found.retain(|c| {
                !(c.kind == FindingKind::Crash && reported.iter().any(|r| r.test == c.test))
            });
            found.extend(reported);
        }
        // Report a finding once (a hang's traceback may repeat in the log).
        for f in found {
            if !findings.iter().any(|g| g.kind == f.kind && g.test == f.test) {
                findings.push(f);
            }
        }
        let crashed =
            matches!(exit, Exit::Signal(_) | Exit::TimedOut) || !matches!(exit, Exit::Code(0..=5));
        let unfinished = events::unfinished_test(&evs);
        counts.add(&events::count(&evs));
        let ended: Vec<String> = evs
            .iter()
            .filter_map(|e| match e {
                events::Event::End { test, .. } => Some(test.clone()),
                _ => None,
            })
            .collect();
        all_events.extend(evs);
        ran.extend(ended.iter().cloned());
        match unfinished {
            Some(test) if crashed || exit == Exit::Code(1) && text.contains("Timeout (0:") => {
                deselect.push(test);
                deselect.extend(ended);
                if attempt == MAX_RESTARTS {
                    findings.push(Finding::new(
                        FindingKind::Setup,
                        None,
                        format!(
                            "the tests crashed or hung {} times; stopped restarting: the tests \
                             after the last crash did not run (see each crash finding)",
                            MAX_RESTARTS + 1
                        ),
                    ));
                }
            }
            _ => break,
        }
    }
    if detectors.leaks && suite.test_command.is_none() {
        confirm_failures(env, suite, detectors, dir, prepared, &mut findings);
    }
    if suite.test_command.is_none() {
        // Only pytest runs carry the plugin's module events.
        findings.extend(events::module_findings(
            &all_events,
            &prepared.installed.compiled,
            &prepared.installed.twins,
        ));
    }
    if hunts_races(detectors, suite) {
        let (found, note) = hunt_races(
            env,
            suite,
            detectors,
            dir,
            prepared,
            &all_events,
            &deselect,
            &sanitizer_needles,
        );
        for f in found {
            if !findings.iter().any(|g| g.kind == f.kind && g.test == f.test) {
                findings.push(f);
            }
        }
        notes_before.push(note);
    }
    let (gil_enabled, gil_finding) = events::gil(&all_events);
    findings.extend(gil_finding);
    // How the detectors adapted during the run, once each.
    let mut notes: Vec<String> = notes_before;
    match gil_enabled {
        Some(true) => notes.push("GIL on while the tests ran".to_owned()),
        Some(false) => notes.push("GIL off (free-threaded)".to_owned()),
        None => {}
    }
    notes.extend(sanitizer_outside.note(&dir.join("sanitizer")));
    for e in &all_events {
        if let events::Event::Signals { signals, reason } = e {
            let note = format!("leak-signals={} ({reason})", signals.join(","));
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    TestOutcome { counts, findings, ran, notes, gil_enabled }
}

/// How a test run ended, from what `run_logged` returned; an error only where the run did not
/// end by itself or by its time limit (cancelled, could not be started).
fn exit_of(result: Result<(), RunError>) -> Result<Exit, RunError> {
    match result {
        Ok(()) => Ok(Exit::Code(0)),
        Err(RunError::Failed(status)) => Ok(match (status.code(), status.signal()) {
            (_, Some(sig)) => Exit::Signal(sig),
            (Some(code), None) => Exit::Code(code),
            (None, None) => Exit::Code(-1),
        }),
        Err(RunError::TimedOut(_)) => Ok(Exit::TimedOut),
        Err(e) => Err(e),
    }
}

/// The sanitizer reports of one test run (`results`: its events file, beside which its
/// `log_path` files are): those the plugin gave to tests, then what the logs hold past them
/// (given to the test that was running when the process ended), sorted into the extension's
/// findings and the rest.
fn sanitizer_findings(
    results: &Utf8Path,
    evs: &[events::Event],
    needles: &[String],
) -> (Vec<Finding>, sanitizer::Outside) {
    let files = sanitizer_logs(&sanitizer_prefix(results));
    let mut reports = sanitizer::from_events(evs);
    reports.extend(sanitizer::leftovers(evs, &files, events::unfinished_test(evs).as_deref()));
    sanitizer::findings(&reports, needles)
}

/// Whether the suite gets a race-hunting run: on free-threaded cells, when pytest is ours to
/// run (a suite's own test command is run as it is). Decides pytest-run-parallel's install too.
fn hunts_races(detectors: &Detectors, suite: &Suite) -> bool {
    detectors.free_threaded && suite.test_command.is_none()
}

/// Race hunting on a free-threaded cell: the suite once more with every test run by
/// [`PARALLEL_THREADS`] threads at once (pytest-run-parallel), without the tests that crashed
/// in the plain run. A test that passed plainly but fails (or crashes, or hangs) here is a
/// [`FindingKind::ThreadSafety`] finding; sanitizer reports of this run are findings as in
/// the plain one. Returns the findings and a note for the suite's detectors.
#[allow(clippy::too_many_arguments)]
fn hunt_races(
    env: &CellEnv<'_>,
    suite: &Suite,
    detectors: &Detectors,
    dir: &Utf8Path,
    prepared: &Prepared,
    plain_events: &[events::Event],
    deselect: &[String],
    sanitizer_needles: &[String],
) -> (Vec<Finding>, String) {
    let passed: std::collections::BTreeSet<&str> = plain_events
        .iter()
        .filter_map(|e| match e {
            events::Event::End { test, outcome, .. } if outcome == "passed" => Some(test.as_str()),
            _ => None,
        })
        .collect();
    let results = dir.join("events-parallel.jsonl");
    let log = dir.join("test-parallel.log");
    let _ = fs::remove_file(&results);
    let _ = fs::remove_file(&log);
    let mut parallel = suite.clone();
    parallel.pytest_args.push(format!("--parallel-threads={PARALLEL_THREADS}"));
    // The plugin reports the GIL itself (gil events); run-parallel would fail the run on it.
    parallel.pytest_args.push("--ignore-gil-enabled".to_owned());
    let plain = Detectors { leaks: false, ..detectors.clone() };
    let cmd = test_command(env, &parallel, &plain, prepared, &results, deselect, None);
    let limit = Duration::from_secs(1200);
    let exit = match exit_of(run_logged(cmd, &log, env.cancel, Some(limit))) {
        Ok(exit) => exit,
        Err(e) => {
            return (Vec::new(), format!("race hunting did not run: {e:?}"));
        }
    };
    let text = fs::read_to_string(&log).unwrap_or_default();
    append(&dir.join("test.log"), &text);
    let evs = events::parse_events(&fs::read_to_string(&results).unwrap_or_default());
    let mut out = Vec::new();
    for f in events::evaluate(&evs, &exit, &text) {
        let only_here = f.test.as_deref().is_some_and(|t| passed.contains(t));
        if only_here
            && matches!(f.kind, FindingKind::TestFailure | FindingKind::Crash | FindingKind::Hang)
        {
            out.push(Finding::new(
                FindingKind::ThreadSafety,
                f.test.clone(),
                format!(
                    "passes alone, fails when {PARALLEL_THREADS} threads run it at once (pytest-run-parallel --parallel-threads={PARALLEL_THREADS}): {}: {}",
                    f.kind, f.message
                ),
            ));
        }
    }
    let mut sanitizer_outside = sanitizer::Outside::default();
    if detectors.tsan || detectors.ubsan {
        let (found, outside) = sanitizer_findings(&results, &evs, sanitizer_needles);
        out.extend(found);
        sanitizer_outside = outside;
    }
    let ran = events::count(&evs);
    let mut note = format!(
        "race hunting: {} test(s) run by {PARALLEL_THREADS} threads at once ({} passed, {} failed)",
        ran.passed + ran.failed + ran.skipped,
        ran.passed,
        ran.failed
    );
    if let Some(outside) = sanitizer_outside.note(&dir.join("sanitizer")) {
        note.push_str(&format!("; {outside}"));
    }
    (out, note)
}

/// The `log_path` prefix of the sanitizers for the run whose events go to `results`: the
/// runtime writes `<prefix>.<pid>`.
fn sanitizer_prefix(results: &Utf8Path) -> Utf8PathBuf {
    let name = results.file_stem().unwrap_or("run");
    results.parent().unwrap_or(Utf8Path::new(".")).join("sanitizer").join(name)
}

/// Every `<prefix>.<pid>` file and its text.
fn sanitizer_logs(prefix: &Utf8Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let (Some(dir), Some(name)) = (prefix.parent(), prefix.file_name()) else { return out };
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(path) = Utf8PathBuf::from_path_buf(entry.path()) else { continue };
        if path.file_name().is_some_and(|f| f.starts_with(&format!("{name}.")))
            && let Ok(text) = fs::read(&path)
        {
            out.insert(path.into_string(), String::from_utf8_lossy(&text).into_owned());
        }
    }
    out
}

/// The environment of the set-up steps (venv, pip, the extension's build, the inspection) on
/// sanitizer cells: reports go to `<suite>/sanitizer/setup.<pid>` and do not fail a step (the
/// tool runs pip there, not the suite; TSan would exit 66 on CPython's own races unless its
/// suppressions apply), and pip does not byte-compile what it installs (under TSan that is
/// most of its time; modules are compiled when imported).
fn setup_sanitizer_env(
    env: &CellEnv<'_>,
    detectors: &Detectors,
    dir: &Utf8Path,
) -> Vec<(String, String)> {
    if !(detectors.tsan || detectors.ubsan) {
        return Vec::new();
    }
    let prefix = dir.join("sanitizer/setup");
    let _ = fs::create_dir_all(dir.join("sanitizer"));
    let mut out = vec![("PIP_NO_COMPILE".to_owned(), "1".to_owned())];
    if detectors.tsan {
        out.push((
            "TSAN_OPTIONS".to_owned(),
            format!(
                "suppressions={}:log_path={prefix}:exitcode=0",
                env.cpython_source.join(tsan_suppressions(detectors))
            ),
        ));
    }
    if detectors.ubsan {
        out.push(("UBSAN_OPTIONS".to_owned(), format!("halt_on_error=0:log_path={prefix}")));
    }
    out
}

/// The cell's own ThreadSanitizer suppressions, relative to its source tree.
fn tsan_suppressions(detectors: &Detectors) -> &'static str {
    if detectors.free_threaded {
        "Tools/tsan/suppressions_free_threading.txt"
    } else {
        "Tools/tsan/suppressions.txt"
    }
}

/// The sanitizer options of one run: the variant's, plus where reports go (`log_path`, out
/// of reach of pytest's capture), the cell's own suppressions (ThreadSanitizer), and an exit
/// status that is the tests', not the sanitizer's.
fn sanitizer_env(
    env: &CellEnv<'_>,
    detectors: &Detectors,
    results: &Utf8Path,
) -> Vec<(String, String)> {
    let prefix = sanitizer_prefix(results);
    let mut out = Vec::new();
    let with = |var: &str, extra: String| {
        let base = detectors.env.get(var).map(String::as_str).unwrap_or("");
        let joined = if base.is_empty() { extra } else { format!("{base}:{extra}") };
        (var.to_owned(), joined)
    };
    if detectors.tsan {
        let suppressions = tsan_suppressions(detectors);
        // exitcode=0: a race is a finding only where it touches the extension; TSan's own
        // exit status (66) would fail every run on CPython's unsuppressed reports.
        out.push(with(
            "TSAN_OPTIONS",
            format!(
                "suppressions={}:log_path={prefix}:exitcode=0",
                env.cpython_source.join(suppressions)
            ),
        ));
    }
    if detectors.ubsan {
        out.push(with("UBSAN_OPTIONS", format!("log_path={prefix}")));
    }
    out
}

/// Leak hunting repeats tests, and a later test may depend on what an earlier one left
/// (zope.interface counts `gc.get_objects()` around a loop, and the caches the leak hunt
/// cleared refill). A test that failed in the hunting run is run again plainly, alone with
/// the other failures: one that passes there failed only because of the repetitions, and is
/// a note, not a finding.
fn confirm_failures(
    env: &CellEnv<'_>,
    suite: &Suite,
    detectors: &Detectors,
    dir: &Utf8Path,
    prepared: &Prepared,
    findings: &mut [Finding],
) {
    let failed: Vec<String> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::TestFailure)
        .filter_map(|f| f.test.clone())
        .collect();
    if failed.is_empty() {
        return;
    }
    let plain = Detectors { leaks: false, ..detectors.clone() };
    let results = dir.join("events-plain.jsonl");
    let log = dir.join("test-plain.log");
    let _ = fs::remove_file(&results);
    let _ = fs::remove_file(&log);
    let cmd = test_command(env, suite, &plain, prepared, &results, &[], Some(&failed));
    let _ = run_logged(cmd, &log, env.cancel, Some(Duration::from_secs(1200)));
    append(&dir.join("test.log"), &fs::read_to_string(&log).unwrap_or_default());
    let evs = events::parse_events(&fs::read_to_string(&results).unwrap_or_default());
    for e in &evs {
        let events::Event::End { test, outcome, .. } = e else { continue };
        if outcome != "passed" {
            continue;
        }
        for f in findings.iter_mut() {
            if f.kind == FindingKind::TestFailure && f.test.as_deref() == Some(test) {
                f.kind = FindingKind::OrderDependent;
                f.message = format!(
                    "failed only in the leak-hunting run (other tests repeated before it), passed \
                     when run again plainly: a test that depends on what earlier tests left, not \
                     a failure of the build; the hunting run said:\n{}",
                    f.message
                );
            }
        }
    }
}

fn append(log: &Utf8Path, text: &str) {
    use std::io::Write;
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = f.write_all(text.as_bytes());
    }
}

/// C source file names of the project, to recognise the extension in valgrind stacks.
fn c_sources(src: &Utf8Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(path) = Utf8PathBuf::from_path_buf(entry.path()) else { continue };
            if path.is_dir() {
                stack.push(path);
            } else if matches!(path.extension(), Some("c" | "cc" | "cpp" | "h"))
                && let Some(name) = path.file_name()
            {
                out.push(format!("({name}:"));
            }
        }
    }
    out
}

/// The test run: the suite's own command, or pytest with our plugin pointed at the tests
/// (see [`layout`]), under valgrind on valgrind cells; run in the run tree.
fn test_command(
    env: &CellEnv<'_>,
    suite: &Suite,
    detectors: &Detectors,
    prepared: &Prepared,
    results: &Utf8Path,
    deselect: &[String],
    targets: Option<&[String]>,
) -> Command {
    let py = prepared.dir.join("venv/bin/python");
    let mut argv: Vec<String> = Vec::new();
    if detectors.valgrind {
        argv.extend(
            [
                "valgrind",
                "--tool=memcheck",
                "--leak-check=full",
                "--show-leak-kinds=definite",
                "--errors-for-leak-kinds=definite",
                "--num-callers=30",
                "--child-silent-after-fork=yes",
            ]
            .map(str::to_owned),
        );
        argv.push(format!(
            "--suppressions={}",
            env.cpython_source.join("Misc/valgrind-python.supp")
        ));
    }
    if let Some(command) = &suite.test_command {
        // A suite's own test runner: `python` is the venv's, `{src}` the project copy. No
        // per-test events: findings come from the exit, the output and valgrind.
        for (i, word) in command.iter().enumerate() {
            if i == 0 && word == "python" {
                argv.push(py.to_string());
            } else {
                argv.push(word.replace("{src}", prepared.src.as_str()));
            }
        }
        let mut cmd = finish_command(argv, &prepared.run_tree, detectors);
        cmd.envs(sanitizer_env(env, detectors, results));
        return cmd;
    }
    argv.push(py.into_string());
    argv.extend(
        ["-m", "pytest", "-p", "debug_matrix_pytest", "-p", "no:cacheprovider"].map(str::to_owned),
    );
    argv.extend(["-q", "-rfE"].map(str::to_owned));
    argv.push(format!("--dm-results={results}"));
    argv.push(format!("--dm-modules={}", prepared.modules_file));
    argv.push(format!(
        "--dm-timeout={}",
        suite.timeout_seconds * if detectors.valgrind { 20 } else { 1 }
    ));
    argv.push("--dm-mark-stderr".to_owned());
    if detectors.free_threaded
        && !suite.pytest_args.iter().any(|a| a.starts_with("--parallel-threads"))
    {
        // Installed for race hunting; the plain run goes without it.
        argv.extend(["-p".to_owned(), "no:run-parallel".to_owned()]);
    }
    if detectors.tsan || detectors.ubsan {
        argv.push(format!("--dm-sanitizer-log={}", sanitizer_prefix(results)));
    }
    if detectors.leaks {
        argv.push("--dm-leaks".to_owned());
        if !detectors.leak_signals.is_empty() {
            argv.push(format!("--dm-leak-signals={}", detectors.leak_signals.join(",")));
        }
    }
    if detectors.valgrind
        && let Some(k) = &suite.valgrind_select
    {
        argv.extend(["-k".to_owned(), k.clone()]);
    }
    for test in deselect {
        argv.push(format!("--deselect={test}"));
    }
    argv.extend(suite.pytest_args.iter().cloned());
    argv.extend(prepared.pytest_options.iter().cloned());
    match targets {
        Some(node_ids) => {
            argv.extend(node_ids.iter().map(|id| prepared.node_root.join(id).into_string()))
        }
        None => argv.extend(prepared.test_paths.iter().cloned()),
    }
    let mut cmd = finish_command(argv, &prepared.run_tree, detectors);
    cmd.envs(sanitizer_env(env, detectors, results));
    cmd
}

/// The command for `argv`, run in `run_tree` with the plugin importable and the cell's env.
fn finish_command(argv: Vec<String>, run_tree: &Utf8Path, detectors: &Detectors) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd.current_dir(run_tree);
    process::scrub_python_env(&mut cmd);
    cmd.env("PYTHONPATH", crate::plugin_dir()).envs(&detectors.env);
    cmd
}

/// `cargo xtask bench --leaks SUITE`: the suite's test run on one cell timed plainly (no leak
/// hunting), with leak hunting as it runs by default (screen, then the full protocol for
/// suspects), and with the full protocol for every test (`--dm-leak-screen=0:0`, regrtest's
/// `-R 3:3` per test); the rounds alternate, so noise lands on all three alike.
#[derive(Debug, Clone)]
pub struct LeakBench {
    /// The cell.
    pub cell: String,
    /// The suite.
    pub suite: String,
    /// Tests in the suite's run (passed, failed, skipped).
    pub tests: u64,
    /// Tests judged for leaks in the hunted run.
    pub judged: u64,
    /// Seconds per round: plain, hunted, full protocol.
    pub rounds: Vec<[f64; 3]>,
}

impl LeakBench {
    /// The table `cargo xtask bench --leaks` prints: median of each, ratio to plain.
    pub fn render(&self) -> String {
        let median = |k: usize| {
            let mut v: Vec<f64> = self.rounds.iter().map(|r| r[k]).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        let plain = median(0).max(1e-9);
        let mut out = format!(
            "leak hunting on {} ({} tests, {} judged), median of {} alternating rounds:\n",
            self.suite,
            self.tests,
            self.judged,
            self.rounds.len()
        );
        for (k, what) in [
            "plain run (no leak hunting)",
            "leak hunting (screen 3:2, full 3:3 for suspects)",
            "full protocol for every test (3:3, regrtest -R style)",
        ]
        .iter()
        .enumerate()
        {
            out.push_str(&format!(
                "{what:55} {:8.2}s  {:5.1}x plain\n",
                median(k),
                median(k) / plain
            ));
        }
        out
    }
}

/// Sets the suite up on the cell (as [`run_suite`] does), then times its test run `rounds`
/// times in each of the three modes of [`LeakBench`].
pub fn bench_leaks(
    env: &CellEnv<'_>,
    suite: &Suite,
    detectors: &Detectors,
    rounds: usize,
) -> anyhow::Result<LeakBench> {
    anyhow::ensure!(
        suite.test_command.is_none(),
        "suite `{}` has its own test command: no leak hunting to time",
        suite.name
    );
    anyhow::ensure!(detectors.leaks, "{} has no leak hunting (not a Py_REF_DEBUG cell)", env.cell);
    let dir = env.cell_dirs.suite(&suite.name).root;
    let prepared = prepare(env, suite, detectors, &dir)?;
    let plain = Detectors { leaks: false, ..detectors.clone() };
    let mut full_suite = suite.clone();
    full_suite.pytest_args.push("--dm-leak-screen=0:0".to_owned());
    let bench_dir = dir.join("bench");
    fs::create_dir_all(&bench_dir).with_context(|| format!("creating {bench_dir}"))?;
    let mut result = LeakBench {
        cell: env.cell.clone(),
        suite: suite.name.clone(),
        tests: 0,
        judged: 0,
        rounds: Vec::new(),
    };
    for round in 0..rounds {
        let mut times = [0.0; 3];
        for (k, (suite, detectors)) in
            [(suite, &plain), (suite, detectors), (&full_suite, detectors)].into_iter().enumerate()
        {
            let results = bench_dir.join(format!("events-{round}-{k}.jsonl"));
            let log = bench_dir.join(format!("run-{round}-{k}.log"));
            let _ = fs::remove_file(&results);
            let _ = fs::remove_file(&log);
            let cmd = test_command(env, suite, detectors, &prepared, &results, &[], None);
            let started = Instant::now();
            match run_logged(cmd, &log, env.cancel, Some(Duration::from_secs(3600))) {
                Ok(()) => {}
                Err(RunError::Failed(status)) if status.code() == Some(1) => {}
                Err(e) => bail!("the timed run failed ({e:?}); log: {log}"),
            }
            times[k] = started.elapsed().as_secs_f64();
            if round == 0 && k == 1 {
                let evs = events::parse_events(&fs::read_to_string(&results).unwrap_or_default());
                let counts = events::count(&evs);
                result.tests = counts.passed + counts.failed + counts.skipped;
                result.judged = counts.leak_judged;
            }
        }
        result.rounds.push(times);
    }
    Ok(result)
}
