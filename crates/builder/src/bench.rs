//! `cargo xtask bench`: the tool against the bare recipe, measured in one run.
//!
//! On one cell, in a fresh directory: (1) the recipe users type by hand, `configure &&
//! make -jN && make install`; (2) the tool's cold build of the cell; (3) a cold build of a
//! second cell of the same release, whose configure is seeded by the first one's results
//! (`config.cache`); (4) the warm rerun of both. Ratios are printed against (1). All runs use
//! the same source tree, compiler and `-j`; the machine's noise hits them alike, and the
//! ratios, not the seconds, are the result.

use std::{
    process::Command,
    sync::{Arc, atomic::AtomicBool},
    time::Instant,
};

use anyhow::{Context as _, bail};
use camino::Utf8Path;
use configure::Toolchain;
use workdir::Layout;

use process::run_logged;

use crate::{Builder, Job, Options};

/// Seconds measured by [`bench`].
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// The bare recipe.
    pub bare: f64,
    /// The tool, cold, first cell.
    pub cold: f64,
    /// The tool, cold, second cell, seeded configure.
    pub seeded: f64,
    /// The tool, warm, both cells.
    pub warm: f64,
    /// The cells, in order.
    pub cells: [String; 2],
}

impl BenchReport {
    /// The report as text, with ratios.
    pub fn render(&self) -> String {
        let r = |x: f64| if self.bare > 0.0 { x / self.bare } else { f64::NAN };
        format!(
            "bare recipe (configure && make -j && make install): {:7.1}s  1.00\n\
             tool, cold ({}):                {:7.1}s  {:.2}x bare\n\
             tool, cold, seeded configure ({}): {:7.1}s  {:.2}x bare\n\
             tool, warm rerun of both cells:               {:7.1}ms  {:.5}x bare\n",
            self.bare,
            self.cells[0],
            self.cold,
            r(self.cold),
            self.cells[1],
            self.seeded,
            r(self.seeded),
            self.warm * 1000.0,
            r(self.warm),
        )
    }
}

/// Runs the benchmark under `dir` (emptied first) on `jobs[0]` and `jobs[1]`, which must be
/// two cells of the same release.
pub fn bench(
    dir: &Utf8Path,
    jobs: &[Job<'_>; 2],
    toolchain: Toolchain,
    make_jobs: usize,
    cancel: Arc<AtomicBool>,
) -> anyhow::Result<BenchReport> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;

    // (1) By hand, exactly as the seed recipe: mkdir debug && cd debug && ../configure … && make.
    let first = &jobs[0];
    let plan = configure::plan(&first.cell, &toolchain);
    let bare_build = dir.join("bare/build");
    let bare_prefix = dir.join("bare/prefix");
    std::fs::create_dir_all(&bare_build).with_context(|| format!("creating {bare_build}"))?;
    let started = Instant::now();
    let mut configure_line =
        vec![first.source_dir.join("configure").into_string(), format!("--prefix={bare_prefix}")];
    configure_line.extend(first.cell.variant.configure.iter().cloned());
    let steps: [Vec<String>; 3] = [
        configure_line,
        [vec!["make".to_owned(), format!("-j{make_jobs}")], plan.make_args.clone()].concat(),
        [vec!["make".to_owned(), "install".to_owned()], plan.make_args.clone()].concat(),
    ];
    for argv in &steps {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).current_dir(&bare_build).envs(&plan.env);
        for var in configure::SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        let log = dir.join("bare/log.txt");
        if let Err(e) = run_logged(cmd, &log, &cancel, Some(crate::DEFAULT_PHASE_TIMEOUT)) {
            bail!("the bare recipe failed at `{}`: {e:?}; log: {log}", argv.join(" "));
        }
    }
    let bare = started.elapsed().as_secs_f64();

    let layout = Layout::new(dir.join("work"));
    let options = Options {
        make_jobs,
        parallel_builds: 1,
        phase_timeout: crate::DEFAULT_PHASE_TIMEOUT,
        share_config_cache: true,
    };
    let builder = Builder::new(&layout, toolchain, options, cancel);
    let timed = |jobs: &[Job<'_>]| -> anyhow::Result<f64> {
        let started = Instant::now();
        let outcomes = builder.build(jobs);
        if let Some(bad) = outcomes.iter().find(|o| !o.ok()) {
            bail!("{} did not build: {:?} {:?}", bad.cell, bad.build, bad.check);
        }
        Ok(started.elapsed().as_secs_f64())
    };
    let cold = timed(&jobs[..1])?;
    let seeded = timed(&jobs[1..])?;
    let warm = timed(&jobs[..])?;
    Ok(BenchReport { bare, cold, seeded, warm, cells: [jobs[0].cell.name(), jobs[1].cell.name()] })
}
