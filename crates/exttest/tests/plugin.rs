//! The pytest plugin's own tests (`python/plugin-tests/`, pytester-based) run under the
//! machine's release `python3`, in a venv under `target/` with `requirements.txt` installed
//! from PyPI (made once, rebuilt when the requirements or the interpreter change). A missing
//! `python3`, `venv` or pip fails the test. `DEBUG_MATRIX_DEBUG_PYTHON` (a debug CPython's
//! `python3`) is passed through: without it the debug-interpreter half is skipped, and this
//! test says so on stderr.

mod plugin_harness;

use camino::Utf8Path;

#[test]
fn plugin_pytester_tests_pass() {
    let repo = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let debug = std::env::var(plugin_harness::DEBUG_ENV).ok();
    plugin_harness::run_plugin_tests(&repo, debug.as_deref().map(Utf8Path::new));
}
