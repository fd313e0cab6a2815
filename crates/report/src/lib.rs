//! The results document and what the tool shows of it, for people and machines.
//!
//! - [`cell_list_text`]: the table `cargo xtask list` prints.
//! - [`cell_list_json`]: the same cells as JSON for GitHub Actions' `fromJson`
//!   (`{"include": [{"cell": …, "version": …, "variant": …}]}`).
//! - [`Document`]: the run's results document, `<work>/report/report.json`, with typed
//!   phases ([`PhaseKey`], [`PhaseStatus`]) and a cell status derived from every phase
//!   ([`CellStatus`]); `Document::record_*` is how commands write it.
//! - [`Document::read`] and [`Document::merge_file`] are the crate's only file system
//!   access: they read a document, and [`ReadError::set_aside`] moves a broken one aside.
//!   Writing is the caller's. Everything else is pure: text in memory, no processes.
//! - [`render`]: Markdown, JUnit XML, GitHub annotations, the console's grid and HTML from
//!   a [`Document`].
//! - [`repro`]: every command line that does again what the document records.
//! - report.json's types are this crate's own ([`CellBuild`], [`BuildStatus`],
//!   [`CheckStatus`], [`CpythonRun`], [`SuiteResult`], [`Finding`], [`LeakEvidence`], …): no
//!   stage crate is a dependency; `pipeline::results` converts the stages' results to them.
//!   [`schema`] is their JSON Schema, published as `crates/report/report.schema.json`.

mod document;
mod evidence;
mod file;
mod outcome;
mod phase;
pub mod render;
pub mod repro;
mod reproducibility;
pub mod schema;
mod suite;

use matrix::Cell;
use serde::Serialize;

pub use crate::{
    document::{CellResults, Document, PhaseFailure, SCHEMA_VERSION},
    evidence::{
        Allocation, GrownContainer, GrownRefcount, LeakEvidence, Persistence, Shape, TwinResult,
    },
    file::{Aside, ReadError},
    outcome::{BuildStatus, BuildStep, CellBuild, CheckStatus, CpythonRun},
    phase::{CellStatus, Phase, PhaseKey, PhaseStatus},
    reproducibility::{DifferingFile, Reproducibility},
    suite::{
        Counts, Environment, Finding, FindingKind, LeakLoop, NotJudged, Package, PackageSource,
        SuiteResult,
    },
};

/// One cell as GitHub Actions sees it.
#[derive(Debug, Serialize)]
pub struct CellEntry {
    /// `3.13.5+debug`.
    pub cell: matrix::CellId,
    /// `3.13.5`.
    pub version: String,
    /// `debug`.
    pub variant: String,
    /// Whether extensions built for the release build must be rebuilt here.
    pub rebuild_extensions: bool,
    /// The build's cache key (for `actions/cache`); cells that build alike share it.
    pub key: String,
}

impl CellEntry {
    /// The entry of `cell`, whose build has cache key `key`.
    pub fn of(cell: &Cell<'_>, key: &str) -> CellEntry {
        CellEntry {
            cell: cell.id(),
            version: cell.release.version.to_string(),
            variant: cell.variant.name.clone(),
            rebuild_extensions: cell.variant.needs_extension_rebuild(cell.release.version),
            key: key.to_owned(),
        }
    }
}

/// A table of cells: name, whether extensions need a rebuild, the configure line, purpose.
pub fn cell_list_text(cells: &[Cell<'_>]) -> String {
    let width = cells.iter().map(|c| c.name().len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:width$}  {:7}  {}\n", "cell", "rebuild", "build");
    for cell in cells {
        let v = cell.variant;
        let mut build: Vec<String> = v.configure.clone();
        build.extend(v.cflags.iter().map(|f| format!("CFLAGS={f}")));
        build.extend(v.extra_cflags.iter().map(|f| format!("EXTRA_CFLAGS={f}")));
        build.extend(v.make_vars.iter().map(|m| format!("make:{m}")));
        build.extend(v.runtime_env.iter().map(|(k, val)| format!("run:{k}={val}")));
        let build = if build.is_empty() { "(defaults)".to_owned() } else { build.join(" ") };
        let rebuild = if v.needs_extension_rebuild(cell.release.version) { "yes" } else { "no" };
        out.push_str(&format!("{:width$}  {rebuild:7}  {build}\n", cell.name()));
    }
    out
}

/// The cells as one line of JSON, `{"include":[…]}`, for `$GITHUB_OUTPUT` and `fromJson`;
/// `keys[i]` is the build cache key of `cells[i]`.
pub fn cell_list_json(cells: &[Cell<'_>], keys: &[String]) -> String {
    #[derive(Serialize)]
    struct Include {
        include: Vec<CellEntry>,
    }
    let doc =
        Include { include: cells.iter().zip(keys).map(|(c, k)| CellEntry::of(c, k)).collect() };
    serde_json::to_string(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests;
