//! `cargo xtask`: the debug-matrix command line. Thin by design: it parses flags
//! ([`flags`]) and dispatches to the library crates; see ARCHITECTURE.md.

mod build_cmd;
mod flags;
mod matrix_cmd;
mod run_cmd;
mod sources_cmd;
mod test_cmd;
mod test_cpython_cmd;

use std::process::ExitCode;

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use clap::Parser;
use matrix::{Cell, Matrix, Selection};
use xshell::Shell;

use crate::flags::{Command, Flags};

fn main() -> ExitCode {
    let flags = Flags::parse();
    let result = Shell::new().context("creating a shell").and_then(|sh| run(flags, &sh));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(flags: Flags, sh: &Shell) -> anyhow::Result<()> {
    let ctx = Context::new(&flags.global)?;
    match flags.command {
        Command::List(cmd) => cmd.run(&ctx),
        Command::Fetch(cmd) => cmd.run(&ctx, sh),
        Command::Verify(cmd) => cmd.run(&ctx, sh),
        Command::Matrix(cmd) => cmd.run(&ctx, sh),
        Command::Build(cmd) => cmd.run(&ctx),
        Command::TestCpython(cmd) => cmd.run(&ctx),
        Command::Test(cmd) => cmd.run(&ctx),
        Command::Bench(cmd) => cmd.run(&ctx),
        Command::Report(cmd) => cmd.run(&ctx),
        Command::Run(cmd) => cmd.run(&ctx),
        Command::Shell(cmd) => cmd.run(&ctx),
    }
}

/// What every command needs: the matrix, the work directory, the selection.
pub(crate) struct Context {
    pub(crate) matrix: Matrix,
    pub(crate) layout: workdir::Layout,
    pub(crate) selection: Selection,
    pub(crate) mirrors: Vec<fetch::Mirror>,
    pub(crate) upstream: bool,
    /// What fetching and verifying each release's source did in this run (for report.json).
    source_phases: std::cell::RefCell<std::collections::BTreeMap<String, [report::Phase; 2]>>,
}

impl Context {
    fn new(global: &flags::Global) -> anyhow::Result<Context> {
        let root = project_root();
        let matrix_dir = global.matrix_dir.clone().unwrap_or_else(|| root.join("matrix"));
        let matrix = Matrix::load(&matrix_dir)?;
        let work_dir = match &global.work_dir {
            Some(dir) => dir.clone(),
            None => root.join("target/debug-matrix"),
        };
        let work_dir = absolute(&work_dir)?;
        let mut mirrors = Vec::new();
        for m in &global.mirror {
            mirrors.push(m.parse::<fetch::Mirror>().map_err(anyhow::Error::msg)?);
        }
        if let Ok(env) = std::env::var("DEBUG_MATRIX_MIRROR") {
            for m in env.split_whitespace() {
                let mirror = m
                    .parse::<fetch::Mirror>()
                    .map_err(|e| anyhow::anyhow!("DEBUG_MATRIX_MIRROR: {e}"))?;
                mirrors.push(mirror);
            }
        }
        Ok(Context {
            matrix,
            layout: workdir::Layout::new(work_dir),
            selection: global.selection(),
            mirrors,
            upstream: !global.no_upstream,
            source_phases: Default::default(),
        })
    }

    pub(crate) fn cells(&self) -> anyhow::Result<Vec<Cell<'_>>> {
        Ok(self.matrix.cells(&self.selection)?)
    }

    /// The cells named on the command line, or else the selection's.
    pub(crate) fn named_cells(&self, names: &[String]) -> anyhow::Result<Vec<Cell<'_>>> {
        if names.is_empty() {
            return self.cells();
        }
        let selection = Selection { cells: names.to_vec(), ..self.selection.clone() };
        Ok(self.matrix.cells(&selection)?)
    }

    /// Updates `<work>/report/report.json` with `update`.
    pub(crate) fn update_report(
        &self,
        update: impl FnOnce(&mut report::Document),
    ) -> anyhow::Result<()> {
        let path = self.layout.report_dir().join("report.json");
        // A document that cannot be read is moved aside and the command stops: never replaced.
        let mut doc = report::Document::read(&path).map_err(report::ReadError::set_aside)?;
        update(&mut doc);
        build::write_atomically(&path, &doc)
    }

    /// Records a cell's sources, build and check in `doc`.
    pub(crate) fn record_cell(
        &self,
        doc: &mut report::Document,
        cell: &Cell<'_>,
        outcome: &build::CellOutcome,
    ) {
        match self.source_phases.borrow().get(&cell.release.version.to_string()) {
            Some([fetched, verified]) => {
                doc.record_sources(cell, outcome, fetched.clone(), verified.clone())
            }
            None => doc.record_build(cell, outcome),
        }
    }

    /// Fetches, verifies and extracts the sources of `cells`; returns one build job per cell.
    pub(crate) fn prepare_jobs<'m>(
        &self,
        cells: &[Cell<'m>],
    ) -> anyhow::Result<Vec<build::Job<'m>>> {
        use report::PhaseStatus;
        let fetcher = self.fetcher();
        let mut dirs = std::collections::BTreeMap::new();
        for release in Matrix::releases_of(cells) {
            let started = std::time::Instant::now();
            let prepared = sources::prepare(&fetcher, &self.layout, &self.matrix.dir, release)?;
            // Fetch, verification and extraction are one step (`sources::prepare`): its time
            // is the fetch phase's.
            let seconds = Some(started.elapsed().as_secs());
            let fetched = match &prepared.archive.origin {
                fetch::Origin::Cache => report::Phase::new(PhaseStatus::Cached, seconds, ""),
                origin => report::Phase::new(PhaseStatus::Fetched, seconds, &origin.to_string()),
            };
            let verified = match &prepared.signature {
                None => report::Phase::new(
                    PhaseStatus::Verified,
                    None,
                    "sha256 pin checked when cached",
                ),
                Some(sources::SignatureStatus::Good(info)) => report::Phase::new(
                    PhaseStatus::Verified,
                    None,
                    &format!("sha256 pin; good signature by {}", info.fingerprint),
                ),
                Some(_) => {
                    report::Phase::new(PhaseStatus::Verified, None, "sha256 pin; no signature")
                }
            };
            self.source_phases
                .borrow_mut()
                .insert(release.version.to_string(), [fetched, verified]);
            dirs.insert(release.version, prepared.source_dir);
        }
        Ok(cells
            .iter()
            .filter_map(|cell| {
                let source_dir = dirs.get(&cell.release.version)?.clone();
                Some(build::Job { cell: *cell, source_dir })
            })
            .collect())
    }

    pub(crate) fn fetcher(&self) -> fetch::Fetcher {
        fetch::Fetcher::new(self.layout.cache_dir(), self.mirrors.clone(), self.upstream)
    }
}

/// The repository root: the parent of the `xtask` crate.
pub(crate) fn project_root() -> Utf8PathBuf {
    let manifest = Utf8Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

pub(crate) fn absolute(path: &Utf8Path) -> anyhow::Result<Utf8PathBuf> {
    let abs = std::path::absolute(path).with_context(|| format!("resolving {path}"))?;
    Utf8PathBuf::from_path_buf(abs).map_err(|p| anyhow::anyhow!("{} is not UTF-8", p.display()))
}
