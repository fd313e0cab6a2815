//! The command lines that do again what report.json records (a build, a fetch, CPython's
//! tests, a suite, one test of a suite), spelled in this one place: the document's failed
//! phases, the findings' repro lines (`pipeline::suites`) and the hints of `run`/`shell`
//! (`pipeline::enter`) all take them from here. Pure.

use camino::Utf8Path;
use matrix::{CellId, PyVersion};

/// `cargo xtask build CELL`: builds the cell again and checks its promise.
pub fn build(cell: &CellId) -> String {
    format!("cargo xtask build {cell}")
}

/// `cargo xtask build --check CELL`: builds the cell again and compares (reproducibility).
pub fn build_check(cell: &CellId) -> String {
    format!("cargo xtask build --check {cell}")
}

/// `cargo xtask fetch --version VERSION`: fetches and verifies the release's sources.
pub fn fetch(version: PyVersion) -> String {
    format!("cargo xtask fetch --version {version}")
}

/// `cargo xtask test-cpython CELL --profile PROFILE`: CPython's tests on the cell.
pub fn test_cpython(cell: &CellId, profile: &str) -> String {
    format!("cargo xtask test-cpython {cell} --profile {profile}")
}

/// `cargo xtask test CELL`: the default extension suites on the cell.
pub fn test(cell: &CellId) -> String {
    format!("cargo xtask test {cell}")
}

/// How a suite was named on the command line, so that its repro line names it alike.
#[derive(Debug, Clone, Copy)]
pub enum SuiteArg<'a> {
    /// `--suite NAME` (a suite of `matrix/extensions.toml`).
    Named(&'a str),
    /// `--ext DIR`.
    Ext(&'a Utf8Path),
    /// `--pypi NAME==VERSION`.
    Pypi(&'a str),
}

/// `cargo xtask test` of one suite on one cell, optionally one test of it.
#[derive(Debug, Clone, Copy)]
pub struct TestLine<'a> {
    /// The cell.
    pub cell: &'a CellId,
    /// The suite, as it was named.
    pub suite: SuiteArg<'a>,
    /// `--malloc`, if the run had it.
    pub malloc: Option<&'a str>,
    /// The test (a pytest node id; `-k` takes its last part).
    pub test: Option<&'a str>,
    /// Adds `--leak-loop 20`: the test alone in a loop, its deltas per call printed.
    pub leak_loop: bool,
}

impl TestLine<'_> {
    /// The command line.
    pub fn line(&self) -> String {
        let mut line = test(self.cell);
        match self.suite {
            SuiteArg::Named(name) => line.push_str(&format!(" --suite {name}")),
            SuiteArg::Ext(dir) => line.push_str(&format!(" --ext {dir}")),
            SuiteArg::Pypi(spec) => line.push_str(&format!(" --pypi {spec}")),
        }
        if let Some(m) = self.malloc {
            line.push_str(&format!(" --malloc {m}"));
        }
        if let Some(test) = self.test {
            let name = test.rsplit("::").next().unwrap_or(test);
            line.push_str(&format!(" -k {name}"));
        }
        if self.leak_loop {
            line.push_str(" --leak-loop 20");
        }
        line
    }
}

#[cfg(test)]
mod tests;
