//! Runs the pytest plugin's own tests (`python/plugin-tests/`) in a venv under `target/`
//! (shared by `crates/exttest/tests/plugin.rs` and the end-to-end test, which passes the
//! debug cell it built).

use std::{
    fs,
    process::{Command, Output},
    time::Instant,
};

use camino::{Utf8Path, Utf8PathBuf};

pub const DEBUG_ENV: &str = "DEBUG_MATRIX_DEBUG_PYTHON";

/// `crates/exttest/python/plugin-tests`, from the repository root.
pub fn tests_dir(repo: &Utf8Path) -> Utf8PathBuf {
    repo.join("crates/exttest/python/plugin-tests")
}

/// Runs `cmd`, failing the test with `what`, the command and its output unless it succeeds.
fn run(cmd: &mut Command, what: &str, hint: &str) -> Output {
    let output =
        cmd.output().unwrap_or_else(|err| panic!("{what}: cannot run {cmd:?}: {err}; {hint}"));
    if !output.status.success() {
        panic!(
            "{what}: {cmd:?} failed ({}); {hint}\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// The venv with the tests' requirements, made by `python3 -m venv` and pip. Its stamp (the
/// interpreter and the requirements) is written last: a venv without a matching stamp is
/// incomplete or stale and is made again.
fn venv(tests_dir: &Utf8Path) -> Utf8PathBuf {
    const HINT: &str = "the pytest plugin's tests need a release python3 with the venv module \
                        and pip on PATH (Debian: apt-get install python3 python3-venv) and \
                        access to PyPI";
    let python = run(
        Command::new("python3")
            .args(["-c", "import sys, venv, ensurepip; print(sys.version); print(sys.executable)"]),
        "python3 with venv and ensurepip",
        HINT,
    );
    let requirements = tests_dir.join("requirements.txt");
    let stamp = format!(
        "{}{}",
        String::from_utf8_lossy(&python.stdout),
        fs::read_to_string(&requirements).unwrap_or_else(|e| panic!("reading {requirements}: {e}"))
    );
    let venv = Utf8Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-tests-venv");
    let stamp_file = venv.join("debug-matrix-stamp");
    if fs::read_to_string(&stamp_file).is_ok_and(|s| s == stamp) {
        return venv;
    }
    if venv.exists() {
        fs::remove_dir_all(&venv).unwrap_or_else(|e| panic!("removing the stale {venv}: {e}"));
    }
    run(Command::new("python3").args(["-m", "venv", venv.as_str()]), "making a venv", HINT);
    run(
        Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "--quiet", "--require-virtualenv", "-r"])
            .arg(&requirements)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        "installing the plugin tests' requirements from PyPI",
        HINT,
    );
    fs::write(&stamp_file, stamp).unwrap_or_else(|e| panic!("writing {stamp_file}: {e}"));
    venv
}

/// Runs the plugin's tests from `repo`; with `debug` (a debug CPython's `python3`), the
/// debug-interpreter half too, which must then not be skipped. Returns pytest's output.
pub fn run_plugin_tests(repo: &Utf8Path, debug: Option<&Utf8Path>) -> String {
    let started = Instant::now();
    let tests_dir = tests_dir(repo);
    let venv = venv(&tests_dir);
    let prepared = started.elapsed();
    let mut pytest = Command::new(venv.join("bin/python"));
    match debug {
        Some(python) => pytest.env(DEBUG_ENV, python),
        None => pytest.env_remove(DEBUG_ENV),
    };
    let output = run(
        pytest
            .args(["-m", "pytest", tests_dir.as_str()])
            .current_dir(&tests_dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTHONPATH")
            .env_remove("PYTEST_ADDOPTS"),
        "the pytest plugin's tests",
        "see pytest's output",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    println!(
        "venv {:.1}s, tests {:.1}s",
        prepared.as_secs_f64(),
        (started.elapsed() - prepared).as_secs_f64()
    );
    if debug.is_none() {
        eprintln!(
            "warning: {DEBUG_ENV} is not set: the plugin's debug-interpreter tests (leak \
             hunting for real) were SKIPPED; only the release half ran"
        );
    }
    assert!(
        debug.is_none() || !stdout.contains("DEBUG-INTERPRETER HALF NOT RUN"),
        "{DEBUG_ENV} is set but the debug half did not run:\n{stdout}"
    );
    stdout.into_owned()
}
