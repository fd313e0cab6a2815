//! Runs a C extension's test suite on one cell, with the detector the cell's variant exists
//! for, and turns what happened into findings.
//!
//! Per cell and suite ([`run_suite`]), under `<work>/cells/<cell>/ext/<suite>/`:
//!
//! 1. a venv made by the cell's own interpreter (kept while the cell's build key holds), with
//!    pytest and the suite's test dependencies from a pip cache shared by all cells, every
//!    install pinned by `matrix/constraints.txt` and the suite's own ([`constraints`]), and
//!    what the venv ends up holding recorded ([`environment`]);
//! 2. the project copied (or its sdist, downloaded once, unpacked) afresh, and built for
//!    this cell with `pip install --force-reinstall` (pip's build isolation; a directory's
//!    wheel is never cached): a wheel is never reused across cells;
//! 3. a check that every compiled module in the venv ends with the cell's `EXT_SUFFIX` and is
//!    what `import` loads (no silent pure-Python fallback);
//! 4. pytest, from outside the source tree, with our plugin (the package `python/debug_matrix_pytest/`):
//!    leak hunting on `Py_REF_DEBUG` cells, valgrind memcheck on valgrind cells, the cell's
//!    runtime environment (`PYTHONMALLOC`, `ASAN_OPTIONS`), a per-test timeout. A crash is
//!    reported and the run continues without the crashing test.
//!
//! The pure parts — suites ([`suite`]), their settings ([`config`]: `matrix/extensions.toml`,
//! a project's `[tool.debug-matrix]`), detectors ([`detect`]), findings ([`finding`]),
//! events ([`events`]), valgrind output ([`valgrind`]), ThreadSanitizer and UBSan reports
//! ([`sanitizer`]), expected findings ([`expect`]), constraints files ([`constraints`]),
//! installed packages ([`environment`]) — have no I/O. The process boundary is
//! `setup.rs` (venv, pip, inspection), `runs.rs` (the test runs, restarts, race hunting) and
//! `bench.rs`, and every process they spawn is built by `invocation.rs`.

mod bench;
pub mod config;
pub mod constraints;
pub mod detect;
pub mod environment;
pub mod events;
pub mod evidence;
pub mod expect;
pub mod finding;
pub mod init;
mod invocation;
pub mod layout;
mod prepared;
mod result;
mod runs;
pub mod sanitizer;
mod sdist;
mod setup;
pub mod suite;
pub mod twin;
pub mod valgrind;

pub use crate::{
    bench::{LeakBench, bench_leaks},
    config::{DefaultCells, Project, ProjectConfig, read_project},
    detect::{Detectors, detectors},
    environment::{Environment, Package, PackageSource},
    expect::Expected,
    finding::{Finding, FindingKind},
    invocation::plugin_dir,
    result::{Counts, LeakLoop, NotJudged, SuiteResult},
    runs::run_suite,
    setup::CellEnv,
    suite::{Extensions, PypiSpec, Source, Suite, load_suites, suite_for_project, suite_for_pypi},
};
