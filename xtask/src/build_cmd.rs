//! `build`: every selected cell built, installed and checked against its promise.

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use anyhow::{Context as _, bail};
use build::{BuildStatus, Builder, CellOutcome, CheckStatus, Job, Options};
use matrix::Cell;

use crate::{Context, flags::Build};

/// A flag set by Ctrl-C (SIGINT) or SIGTERM; builds poll it and kill their process groups.
/// The handler is installed once per process; every caller shares the flag.
pub(crate) fn cancel_flag() -> anyhow::Result<Arc<AtomicBool>> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    if let Some(flag) = FLAG.get() {
        return Ok(flag.clone());
    }
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    ctrlc::set_handler(move || {
        handler_flag.store(true, std::sync::atomic::Ordering::SeqCst);
        eprintln!("interrupted: stopping every build; no cell is marked complete");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(FLAG.get_or_init(|| flag).clone())
}

/// Prepares sources and builds `cells` (cheap when cached), checking every interpreter.
pub(crate) fn build_cells<'c, 'm>(
    ctx: &'c Context,
    cells: &[Cell<'m>],
    make_jobs: Option<usize>,
    parallel_builds: usize,
    cancel: &Arc<AtomicBool>,
) -> anyhow::Result<(Builder<'c>, Vec<Job<'m>>, Vec<CellOutcome>)> {
    build_cells_with_timeout(
        ctx,
        cells,
        make_jobs,
        parallel_builds,
        Duration::from_secs(3600),
        cancel,
    )
}

fn build_cells_with_timeout<'c, 'm>(
    ctx: &'c Context,
    cells: &[Cell<'m>],
    make_jobs: Option<usize>,
    parallel_builds: usize,
    phase_timeout: Duration,
    cancel: &Arc<AtomicBool>,
) -> anyhow::Result<(Builder<'c>, Vec<Job<'m>>, Vec<CellOutcome>)> {
    let jobs = ctx.prepare_jobs(cells)?;
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let options = Options {
        make_jobs: make_jobs.unwrap_or(cpus),
        parallel_builds,
        phase_timeout,
        share_config_cache: true,
    };
    let builder = Builder::new(&ctx.layout, build::read_toolchain()?, options, cancel.clone());
    let outcomes = builder.build(&jobs);
    Ok((builder, jobs, outcomes))
}

impl Build {
    pub(crate) fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let cells = ctx.named_cells(&self.cells)?;
        let cancel = cancel_flag()?;
        let timeout = Duration::from_secs(self.phase_timeout * 60);
        let (_, jobs, outcomes) =
            build_cells_with_timeout(ctx, &cells, self.make_jobs, self.jobs, timeout, &cancel)?;
        ctx.update_report(|doc| {
            for (job, outcome) in jobs.iter().zip(&outcomes) {
                ctx.record_cell(doc, &job.cell, outcome);
            }
        })?;
        let mut failed = Vec::new();
        for o in &outcomes {
            let build = match &o.build {
                BuildStatus::Cached => "cached".to_owned(),
                BuildStatus::Built { seconds } => format!("built in {seconds}s"),
                BuildStatus::Failed { phase, message, log, .. } => {
                    format!("{phase} failed ({message}); log: {log}")
                }
                BuildStatus::Cancelled => "cancelled".to_owned(),
            };
            let check = match &o.check {
                CheckStatus::Passed => "promise kept".to_owned(),
                CheckStatus::Mismatch { diff } => format!("promise BROKEN:\n{diff}"),
                CheckStatus::Error { message } => format!("check error: {message}"),
                CheckStatus::NotRun => "not checked".to_owned(),
            };
            println!("{:26} {build}; {check}; key {}", o.cell, &o.key[..16]);
            if !o.ok() {
                failed.push(o.cell.clone());
            }
        }
        if cancel.load(std::sync::atomic::Ordering::SeqCst) {
            bail!("interrupted; rerun the same command to resume");
        }
        if !failed.is_empty() {
            bail!("{} of {} cells failed: {}", failed.len(), outcomes.len(), failed.join(", "));
        }
        Ok(())
    }
}

impl crate::flags::Bench {
    pub(crate) fn run(self, ctx: &Context) -> anyhow::Result<()> {
        if let Some(suite) = &self.leaks {
            return crate::test_cmd::bench_leaks(ctx, &self.cell, suite, self.rounds);
        }
        let cells = ctx.named_cells(&[self.cell.clone(), self.second.clone()])?;
        anyhow::ensure!(
            cells[0].release.version == cells[1].release.version,
            "--cell and --second must be cells of the same release"
        );
        let jobs = ctx.prepare_jobs(&cells)?;
        let [a, b] =
            <[Job<'_>; 2]>::try_from(jobs).map_err(|_| anyhow::anyhow!("two cells expected"))?;
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let dir = ctx.layout.root().join("bench");
        eprintln!(
            "benchmark in {dir}: bare recipe, then the tool cold, seeded and warm (several minutes)"
        );
        let report = build::bench::bench(
            &dir,
            &[a, b],
            build::read_toolchain()?,
            self.make_jobs.unwrap_or(cpus),
            cancel_flag()?,
        )?;
        print!("{}", report.render());
        Ok(())
    }
}
