//! `test`: C-extension suites on every selected cell, each with its variant's detector.

use std::sync::atomic::Ordering;

use anyhow::bail;
use exttest::{CellEnv, Suite, SuiteResult};

use crate::{Context, build_cmd::{build_cells, cancel_flag}, flags::Test};

impl Test {
    pub(crate) fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let suites = self.suites(ctx)?;
        let cells = ctx.named_cells(&self.cells)?;
        let cancel = cancel_flag()?;
        let (builder, jobs, outcomes) = build_cells(ctx, &cells, None, 1, &cancel)?;
        let mut results: Vec<SuiteResult> = Vec::new();
        let mut broken = Vec::new();
        for (job, outcome) in jobs.iter().zip(&outcomes) {
            if cancel.load(Ordering::SeqCst) {
                break;
            }
            let name = job.cell.name();
            if !outcome.ok() {
                println!("{name:26} not tested: the build or its promise check failed (see `cargo xtask build {name}`)");
                broken.push(name);
                continue;
            }
            let env = CellEnv {
                cell: name.clone(),
                key: outcome.key.clone(),
                python: outcome.dirs.python(),
                cpython_source: job.source_dir.clone(),
                cell_dir: ctx.layout.cell_dir(&job.cell),
                shared_dir: ctx.layout.root().join("shared"),
                cancel: &cancel,
            };
            let detectors = exttest::detectors(job.cell.variant, self.malloc.as_deref());
            let _ = &builder;
            for suite in &suites {
                eprintln!("{name}: {} [{}] …", suite.name, exttest_detectors(&detectors));
                let result = exttest::run_suite(&env, suite, &detectors);
                print_result(&result);
                results.push(result);
            }
        }
        let report = ctx.layout.report_dir().join("extensions.json");
        build::write_atomically(&report, &results)?;
        println!("results: {report}");
        let dirty: Vec<String> =
            results.iter().filter(|r| !r.clean()).map(|r| format!("{} {}", r.cell, r.suite)).collect();
        if cancel.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        if !dirty.is_empty() || !broken.is_empty() {
            let mut problems = dirty;
            problems.extend(broken.into_iter().map(|c| format!("{c} (not built)")));
            bail!("findings on {}", problems.join(", "));
        }
        Ok(())
    }

    fn suites(&self, ctx: &Context) -> anyhow::Result<Vec<Suite>> {
        let mut suites = self.configured_suites(ctx)?;
        if let Some(t) = self.timeout {
            suites.iter_mut().for_each(|s| s.timeout_seconds = t);
        }
        Ok(suites)
    }

    fn configured_suites(&self, ctx: &Context) -> anyhow::Result<Vec<Suite>> {
        if !self.ext.is_empty() {
            return self
                .ext
                .iter()
                .map(|dir| {
                    let abs = crate::absolute(dir)?;
                    anyhow::ensure!(abs.is_dir(), "--ext {dir}: not a directory");
                    Ok(exttest::suite_for_dir(&abs))
                })
                .collect();
        }
        let all = exttest::load_suites(&ctx.matrix.dir.join("extensions.toml"), &crate::project_root())?;
        if self.suite.is_empty() {
            return Ok(all);
        }
        self.suite
            .iter()
            .map(|name| {
                all.iter().find(|s| &s.name == name).cloned().ok_or_else(|| {
                    let known: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
                    anyhow::anyhow!("unknown suite `{name}`: matrix/extensions.toml has {}", known.join(", "))
                })
            })
            .collect()
    }
}

fn exttest_detectors(d: &exttest::Detectors) -> String {
    let mut parts = Vec::new();
    if d.leaks {
        parts.push("leaks");
    }
    if d.leak_types {
        parts.push("leak types");
    }
    if d.valgrind {
        parts.push("valgrind");
    }
    if d.asan {
        parts.push("asan");
    }
    if parts.is_empty() { "tests only".to_owned() } else { parts.join(", ") }
}

fn print_result(r: &SuiteResult) {
    let c = &r.counts;
    let verdict = if r.clean() { "clean".to_owned() } else { format!("{} finding(s)", r.findings.len()) };
    println!(
        "{:26} {:12} {} passed, {} failed, {} skipped: {verdict} in {}s",
        r.cell, r.suite, c.passed, c.failed, c.skipped, r.seconds
    );
    for f in &r.findings {
        let test = f.test.as_deref().unwrap_or("-");
        let first = f.message.lines().next().unwrap_or("");
        println!("    {:?} in {test}: {first}", f.kind);
    }
}
