//! The process boundary of extension testing: venv, pip, the import check, pytest (under
//! valgrind where the cell asks for it).

use std::{
    collections::BTreeMap,
    fs,
    process::Command,
    sync::atomic::AtomicBool,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use build::{RunError, run_logged};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::{
    Detectors, Finding, FindingKind, Source, Suite,
    events::{self, Counts, Exit},
    valgrind,
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
    /// `<work>/cells/<cell>/ext/<suite>` is made under this.
    pub cell_dir: Utf8PathBuf,
    /// Caches shared by all cells (pip's download cache, sdists).
    pub shared_dir: Utf8PathBuf,
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
    /// Which detectors ran: `leaks`, `leak-types`, `valgrind`, `asan`, `PYTHONMALLOC=…`.
    pub detectors: Vec<String>,
    /// The test run's log.
    pub log: Utf8PathBuf,
    /// Wall-clock seconds for set-up, build and tests.
    pub seconds: u64,
}

impl SuiteResult {
    /// Whether nothing was found.
    pub fn clean(&self) -> bool {
        self.findings.is_empty()
    }
}

const IMPORT_CHECK: &str = r#"
import importlib, json, os, sys, sysconfig
suffix = sysconfig.get_config_var("EXT_SUFFIX")
site = sysconfig.get_paths()["purelib"]
found, errors = {}, []
for root, dirs, files in os.walk(site):
    for f in files:
        if not f.endswith(".so"):
            continue
        path = os.path.join(root, f)
        if not f.endswith(suffix):
            errors.append(f"{path} is not built for this interpreter (EXT_SUFFIX {suffix})")
            continue
        rel = os.path.relpath(path, site)[: -len(suffix)]
        name = rel.replace(os.sep, ".")
        try:
            module = importlib.import_module(name)
        except Exception as e:
            errors.append(f"import {name} failed: {e!r}")
            continue
        if os.path.realpath(module.__file__) != os.path.realpath(path):
            errors.append(f"import {name} loaded {module.__file__}, not {path}")
        found[name] = module.__file__
print(json.dumps({"suffix": suffix, "modules": found, "errors": errors}))
"#;

#[derive(Deserialize)]
struct ImportCheck {
    modules: BTreeMap<String, String>,
    errors: Vec<String>,
}

/// Sets up, builds and tests `suite` on the cell. Set-up failures are findings of kind
/// [`FindingKind::Setup`], not errors: the matrix goes on.
pub fn run_suite(env: &CellEnv<'_>, suite: &Suite, detectors: &Detectors) -> SuiteResult {
    let started = Instant::now();
    let dir = env.cell_dir.join("ext").join(&suite.name);
    let mut result = SuiteResult {
        cell: env.cell.clone(),
        suite: suite.name.clone(),
        counts: Counts::default(),
        findings: Vec::new(),
        modules: BTreeMap::new(),
        detectors: describe(detectors),
        log: dir.join("test.log"),
        seconds: 0,
    };
    match prepare(env, suite, detectors, &dir) {
        Ok((src, modules)) => {
            result.modules = modules;
            let (counts, findings) = test(env, suite, detectors, &dir, &src, &result.modules);
            result.counts = counts;
            result.findings = findings;
        }
        Err(err) => {
            result.findings.push(Finding::new(FindingKind::Setup, None, format!("{err:#}")))
        }
    }
    result.seconds = started.elapsed().as_secs();
    result
}

fn describe(d: &Detectors) -> Vec<String> {
    let mut out = Vec::new();
    for (on, name) in [
        (d.leaks, "leaks"),
        (d.leak_types, "leak-types"),
        (d.valgrind, "valgrind"),
        (d.asan, "asan"),
    ] {
        if on {
            out.push(name.to_owned());
        }
    }
    if let Some(m) = d.env.get("PYTHONMALLOC") {
        out.push(format!("PYTHONMALLOC={m}"));
    }
    out
}

/// Runs one set-up command; a failure is an error naming the log.
fn step(env: &CellEnv<'_>, what: &str, mut cmd: Command, log: &Utf8Path) -> anyhow::Result<()> {
    for var in [
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONMALLOC",
        "PYTHONSTARTUP",
        "VIRTUAL_ENV",
        "PIP_REQUIRE_VIRTUALENV",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_CACHE_DIR", env.shared_dir.join("pip-cache"));
    match run_logged(cmd, log, env.cancel, Some(Duration::from_secs(900))) {
        Ok(()) => Ok(()),
        Err(RunError::Cancelled) => bail!("{what}: interrupted"),
        Err(e) => bail!("{what} failed ({e:?}); log: {log}\n{}", build::tail(log, 20)),
    }
}

fn prepare(
    env: &CellEnv<'_>,
    suite: &Suite,
    detectors: &Detectors,
    dir: &Utf8Path,
) -> anyhow::Result<(Utf8PathBuf, BTreeMap<String, String>)> {
    fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
    let log = dir.join("setup.log");
    let _ = fs::remove_file(&log);
    let venv = dir.join("venv");
    let py = venv.join("bin/python");
    let mut deps = vec!["setuptools".to_owned(), "wheel".to_owned(), "pytest".to_owned()];
    deps.extend(suite.test_deps.iter().cloned());
    let marker = venv.join(".debug-matrix");
    let identity = format!("{}\n{}", env.key, deps.join(" "));
    if fs::read_to_string(&marker).ok().as_deref() != Some(identity.as_str()) {
        let mut cmd = Command::new(&env.python);
        cmd.args(["-m", "venv", "--clear"]).arg(&venv);
        step(env, "creating the venv", cmd, &log)?;
        let mut cmd = Command::new(&py);
        cmd.args(["-m", "pip", "install", "-q"]).args(&deps);
        step(env, "installing test dependencies", cmd, &log)?;
        fs::write(&marker, &identity).with_context(|| format!("writing {marker}"))?;
    }

    // A fresh copy of the project every time: no build directory is shared between cells.
    let src = dir.join("src");
    let _ = fs::remove_dir_all(&src);
    match &suite.source {
        Source::Dir(project) => copy_project(project, &src)?,
        Source::Pypi(spec) => {
            let sdists = env.shared_dir.join("sdists").join(spec.replace("==", "-"));
            let existing = find_sdist(&sdists);
            let sdist = match existing {
                Some(s) => s,
                None => {
                    let mut cmd = Command::new(&py);
                    cmd.args([
                        "-m",
                        "pip",
                        "download",
                        "-q",
                        "--no-deps",
                        "--no-binary",
                        ":all:",
                        "-d",
                    ])
                    .arg(&sdists)
                    .arg(spec);
                    step(env, &format!("downloading {spec}"), cmd, &log)?;
                    find_sdist(&sdists).with_context(|| {
                        format!("pip download {spec} left no .tar.gz in {sdists}")
                    })?
                }
            };
            extract::extract_source_archive(&sdist, &src)
                .with_context(|| format!("unpacking {sdist}"))?;
        }
    }

    let mut cmd = Command::new(&py);
    cmd.args([
        "-m",
        "pip",
        "install",
        "-v",
        "--no-build-isolation",
        "--no-deps",
        "--no-cache-dir",
        "--force-reinstall",
    ])
    .arg(&src)
    .envs(&suite.build_env);
    if !detectors.extension_cflags.is_empty() {
        cmd.env("CFLAGS", detectors.extension_cflags.join(" "));
    }
    step(env, &format!("building {} for {}", suite.name, env.cell), cmd, &dir.join("build.log"))?;

    let out = Command::new(&py)
        .args(["-c", IMPORT_CHECK])
        .current_dir(dir)
        .envs(&detectors.env)
        .env_remove("PYTHONPATH")
        .output()
        .with_context(|| format!("running {py}"))?;
    let check: ImportCheck = serde_json::from_slice(&out.stdout).with_context(|| {
        format!("the import check failed: {}", String::from_utf8_lossy(&out.stderr))
    })?;
    if !check.errors.is_empty() {
        bail!("compiled modules are not what is imported:\n  {}", check.errors.join("\n  "));
    }
    if check.modules.is_empty() {
        bail!(
            "{} installed no compiled module for {}: a silent pure-Python fallback? see {}",
            suite.name,
            env.cell,
            dir.join("build.log")
        );
    }
    Ok((src, check.modules))
}

fn find_sdist(dir: &Utf8Path) -> Option<Utf8PathBuf> {
    let entries = fs::read_dir(dir).ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Utf8PathBuf::from_path_buf(e.path()).ok())
        .find(|p| p.as_str().ends_with(".tar.gz"))
}

/// Copies a project, leaving out build output, VCS data and virtual environments.
fn copy_project(from: &Utf8Path, to: &Utf8Path) -> anyhow::Result<()> {
    const SKIP: &[&str] =
        &[".git", "build", "dist", ".venv", "venv", "__pycache__", ".pytest_cache", ".tox"];
    fs::create_dir_all(to).with_context(|| format!("creating {to}"))?;
    for entry in fs::read_dir(from)
        .with_context(|| format!("reading {from}: is --ext a project directory?"))?
    {
        let entry = entry.with_context(|| format!("reading {from}"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if SKIP.contains(&name.as_str()) || name.ends_with(".egg-info") || name.ends_with(".so") {
            continue;
        }
        let src = from.join(&name);
        let dst = to.join(&name);
        let kind = entry.file_type().with_context(|| format!("reading {src}"))?;
        if kind.is_dir() {
            copy_project(&src, &dst)?;
        } else if kind.is_file() {
            fs::copy(&src, &dst).with_context(|| format!("copying {src}"))?;
        }
    }
    Ok(())
}

/// Runs the tests, restarting after a crash without the crashing test (at most 3 times).
fn test(
    env: &CellEnv<'_>,
    suite: &Suite,
    detectors: &Detectors,
    dir: &Utf8Path,
    src: &Utf8Path,
    modules: &BTreeMap<String, String>,
) -> (Counts, Vec<Finding>) {
    let mut all_events = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut deselect: Vec<String> = Vec::new();
    let log = dir.join("test.log");
    let _ = fs::remove_file(&log);
    let mut needles: Vec<String> =
        modules.values().filter_map(|f| Utf8Path::new(f).file_name().map(str::to_owned)).collect();
    needles.extend(c_sources(src));
    for attempt in 0..4 {
        let results = dir.join(format!("events-{attempt}.jsonl"));
        let attempt_log = dir.join(format!("test-{attempt}.log"));
        let _ = fs::remove_file(&results);
        let _ = fs::remove_file(&attempt_log);
        let cmd = pytest_command(env, suite, detectors, dir, src, &results, &deselect);
        let limit = Duration::from_secs(if detectors.valgrind { 3600 } else { 1200 });
        let exit = match run_logged(cmd, &attempt_log, env.cancel, Some(limit)) {
            Ok(()) => Exit::Code(0),
            Err(RunError::Failed(status)) => parse_status(&status),
            Err(RunError::TimedOut(_)) => Exit::TimedOut,
            Err(RunError::Cancelled) => {
                findings.push(Finding::new(FindingKind::Setup, None, "interrupted".to_owned()));
                break;
            }
            Err(RunError::Io(e)) => {
                findings.push(Finding::new(
                    FindingKind::Setup,
                    None,
                    format!("could not run pytest: {e}"),
                ));
                break;
            }
        };
        let text = fs::read_to_string(&attempt_log).unwrap_or_default();
        append(&log, &text);
        let evs = events::parse_events(&fs::read_to_string(&results).unwrap_or_default());
        let (_, mut found) = events::evaluate(&evs, &exit, &text);
        if detectors.valgrind {
            found.extend(valgrind::findings(&text, &needles));
        }
        // A restart re-runs the tests before the crash: report their findings once.
        for f in found {
            if !findings.iter().any(|g| g.kind == f.kind && g.test == f.test) {
                findings.push(f);
            }
        }
        let crashed = matches!(exit, Exit::Signal(_) | Exit::TimedOut)
            || (exit != Exit::Code(0) && exit != Exit::Code(1));
        let unfinished = events::unfinished_test(&evs);
        all_events.extend(evs);
        match unfinished {
            Some(test) if crashed || exit == Exit::Code(1) && text.contains("Timeout (0:") => {
                deselect.push(test)
            }
            _ => break,
        }
    }
    (events::count(&all_events), findings)
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

fn parse_status(status: &str) -> Exit {
    // ExitStatus's Display: "exit status: 1" or "signal: 11 (SIGSEGV)".
    let number = |prefix: &str| {
        status
            .strip_prefix(prefix)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    if let Some(sig) = number("signal: ") {
        Exit::Signal(sig)
    } else {
        Exit::Code(number("exit status: ").unwrap_or(-1))
    }
}

fn pytest_command(
    env: &CellEnv<'_>,
    suite: &Suite,
    detectors: &Detectors,
    dir: &Utf8Path,
    src: &Utf8Path,
    results: &Utf8Path,
    deselect: &[String],
) -> Command {
    let py = dir.join("venv/bin/python");
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
                argv.push(word.replace("{src}", src.as_str()));
            }
        }
        return finish_command(argv, dir, detectors);
    }
    argv.push(py.into_string());
    argv.extend(
        ["-m", "pytest", "-p", "debug_matrix_pytest", "-p", "no:cacheprovider"].map(str::to_owned),
    );
    argv.extend(["--import-mode=importlib", "-q", "-rfE"].map(str::to_owned));
    argv.push(format!("--dm-results={results}"));
    argv.push(format!(
        "--dm-timeout={}",
        suite.timeout_seconds * if detectors.valgrind { 20 } else { 1 }
    ));
    argv.push("--dm-mark-stderr".to_owned());
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
    argv.push(src.join(&suite.tests).into_string());
    finish_command(argv, dir, detectors)
}

/// The command for `argv`, run in `<dir>/run` with the plugin importable and the cell's env.
fn finish_command(argv: Vec<String>, dir: &Utf8Path, detectors: &Detectors) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    let run_dir = dir.join("run");
    let _ = fs::create_dir_all(&run_dir);
    cmd.current_dir(&run_dir);
    for var in ["PYTHONHOME", "PYTHONSTARTUP", "PYTHONMALLOC", "VIRTUAL_ENV"] {
        cmd.env_remove(var);
    }
    cmd.env("PYTHONPATH", crate::plugin_dir()).envs(&detectors.env);
    cmd
}
