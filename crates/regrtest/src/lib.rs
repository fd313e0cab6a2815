//! CPython's own test suite (regrtest, `python -m test`) on a cell's installed interpreter,
//! the way `make test` runs it, and what its results mean for the cell.
//!
//! - [`config`]: `matrix/cpython-tests.toml`: profiles (`smoke`: a fixed list of modules;
//!   `full`: regrtest's default selection) and known failures per environment.
//! - [`summary`]: the summary block at the end of regrtest's log: module states (failed,
//!   env changed, skipped, re-run, …). The authority on modules: it sees crashes.
//! - [`junit`]: the `--junit-xml` file: test case counts per module, flaky cases.
//! - [`mod@evaluate`]: the two combined with the environment's known failures: per-module
//!   results and the cell's verdict.
//! - [`run`]: **the process boundary**, the only code here that spawns a process: runs
//!   regrtest (via `process::run_logged`: own process group, log, overall timeout, Ctrl-C)
//!   and writes `<work>/cells/<cell>/test-cpython-<profile>.{log,xml,json}` ([`Files`],
//!   [`TestRun`]).
//!
//! Everything but [`run`] and [`TestsFile::load`] is pure (text in, values out) and tested
//! on fixtures recorded from real regrtest runs (`fixtures/regen.sh`).

pub mod config;
pub mod evaluate;
pub mod junit;
mod run;
pub mod summary;

pub use crate::config::{ConfigError, Invocation, KnownFailure, Profile, TestsFile};
pub use crate::evaluate::{Evaluation, ModuleResult, ModuleStatus, evaluate, judge};
pub use crate::run::{Files, Outcome, Request, TestRun, run};

#[cfg(test)]
mod tests;
