//! The first two stages: verified, extracted sources per release, then built and checked
//! cells. Their results are the typed input of every later stage.

use std::{collections::BTreeMap, time::Instant};

use builder::{Builder, CellOutcome, Job};
use camino::Utf8PathBuf;
use configure::BuildPlan;
use matrix::{Cell, Matrix};

use crate::Session;

/// What preparing one release's source did in this run.
#[derive(Debug, Clone)]
pub struct PreparedSource {
    /// What `sources::prepare` did: where the archive came from, the signature, extraction.
    pub prepared: sources::Prepared,
    /// Seconds fetching, verifying and extracting took (one step).
    pub seconds: u64,
}

/// Stage 1: the source tree of every release of the selected cells, fetched, verified and
/// extracted in this run (or found complete).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// By version (`3.13.5`).
    pub releases: BTreeMap<String, PreparedSource>,
}

impl Sources {
    /// Fetches, verifies and extracts the sources of `cells`' releases. The first release
    /// that cannot be prepared stops the stage: nothing can be built from it.
    pub fn prepare(session: &Session, cells: &[Cell<'_>]) -> anyhow::Result<Sources> {
        let fetcher = session.fetcher()?;
        let mut releases = BTreeMap::new();
        for release in Matrix::releases_of(cells) {
            let started = Instant::now();
            let _lock = worklock::acquire(
                &session.layout.source_lock(release),
                &format!("the source of {}", release.version),
                session.cancel_flag(),
            )?;
            let prepared =
                sources::prepare(&fetcher, &session.layout, &session.matrix.dir, release)?;
            let seconds = started.elapsed().as_secs();
            releases.insert(release.version.to_string(), PreparedSource { prepared, seconds });
        }
        Ok(Sources { releases })
    }

    /// The prepared source of `cell`'s release.
    pub fn of(&self, cell: &Cell<'_>) -> Option<&PreparedSource> {
        self.releases.get(&cell.release.version.to_string())
    }
}

/// How builds run.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `make -j` [default: the number of CPUs].
    pub make_jobs: Option<usize>,
    /// How many cells build side by side.
    pub parallel_builds: usize,
    /// The longest one phase may take.
    pub phase_timeout: std::time::Duration,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            make_jobs: None,
            parallel_builds: 1,
            phase_timeout: builder::DEFAULT_PHASE_TIMEOUT,
        }
    }
}

/// One cell after stage 2.
#[derive(Debug, Clone)]
pub struct BuiltCell<'m> {
    /// The cell.
    pub cell: Cell<'m>,
    /// Its release's source tree.
    pub source_dir: Utf8PathBuf,
    /// Its build plan (cache key, runtime environment).
    pub plan: BuildPlan,
    /// How its build and its promise check ended.
    pub outcome: CellOutcome,
}

impl BuiltCell<'_> {
    /// Whether later stages can use it: built and keeping its promise.
    pub fn usable(&self) -> bool {
        self.outcome.ok()
    }

    /// Why later stages cannot use it, for people.
    pub fn why_unusable(&self) -> String {
        use builder::{BuildStatus, CheckStatus};
        match (&self.outcome.build, &self.outcome.check) {
            (BuildStatus::Failed { phase, log, .. }, _) => {
                format!("its build failed in {phase}; log: {log}")
            }
            (BuildStatus::Cancelled, _) => "its build was interrupted".to_owned(),
            (_, CheckStatus::Mismatch { .. }) => {
                "its interpreter does not keep its promise".to_owned()
            }
            (_, CheckStatus::Error { message }) => {
                format!("its interpreter could not be checked: {message}")
            }
            _ => "its interpreter was not checked".to_owned(),
        }
    }
}

/// Stage 2: every selected cell built (cells that build alike share one build; a complete
/// build is reused) and its interpreter checked against its promise.
#[derive(Debug, Clone)]
pub struct Built<'m> {
    /// In the order of the selection.
    pub cells: Vec<BuiltCell<'m>>,
}

impl<'m> Built<'m> {
    /// Builds `cells` from `sources`. A failing cell is recorded in its outcome; others go on.
    pub fn build(
        session: &Session,
        sources: &Sources,
        cells: &[Cell<'m>],
        options: &BuildOptions,
    ) -> anyhow::Result<Built<'m>> {
        let jobs: Vec<Job<'m>> = cells
            .iter()
            .filter_map(|cell| {
                let source = sources.of(cell)?;
                Some(Job { cell: *cell, source_dir: source.prepared.source_dir.clone() })
            })
            .collect();
        anyhow::ensure!(
            jobs.len() == cells.len(),
            "internal: a cell's release has no prepared source"
        );
        let build_options = builder::Options {
            make_jobs: options.make_jobs.unwrap_or_else(|| session.cpus()),
            parallel_builds: options.parallel_builds.max(1),
            phase_timeout: options.phase_timeout,
            share_config_cache: true,
        };
        let builder = Builder::new(
            &session.layout,
            builder::read_toolchain()?,
            build_options,
            session.cancel_flag().clone(),
        );
        let outcomes = {
            let _polling = crate::Polling::start();
            builder.build(&jobs)
        };
        let cells = jobs
            .into_iter()
            .zip(outcomes)
            .map(|(job, outcome)| BuiltCell {
                plan: builder.plan(&job.cell),
                cell: job.cell,
                source_dir: job.source_dir,
                outcome,
            })
            .collect();
        Ok(Built { cells })
    }

    /// The cells later stages can use.
    pub fn usable(&self) -> impl Iterator<Item = &BuiltCell<'m>> {
        self.cells.iter().filter(|c| c.usable())
    }
}
