//! `test`: C-extension suites on every selected cell, each with its variant's detector.

use std::sync::atomic::Ordering;

use anyhow::{Context as _, bail};
use exttest::{CellEnv, Suite, SuiteResult};

use crate::{
    Context,
    build_cmd::{build_cells, cancel_flag},
    flags::Test,
};

impl Test {
    pub(crate) fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let (suites, extensions) = self.suites(ctx)?;
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
                println!(
                    "{name:26} not tested: the build or its promise check failed (see `cargo xtask build {name}`)"
                );
                broken.push(name);
                continue;
            }
            let env = cell_env(ctx, job, outcome, &cancel);
            let detectors = exttest::detectors(job.cell.variant, self.malloc.as_deref());
            let _ = &builder;
            for suite in &suites {
                eprintln!("{name}: {} [{}] …", suite.name, exttest_detectors(&detectors));
                let mut result = exttest::run_suite(&env, suite, &detectors);
                let expected = extensions.expected_for(
                    &suite.name,
                    &job.cell.release.version.to_string(),
                    &job.cell.variant.name,
                );
                exttest::expect::apply(&mut result.findings, &expected, &result.ran);
                for f in &mut result.findings {
                    f.repro = self.repro(&name, suite, f.test.as_deref());
                }
                print_result(&result);
                results.push(result);
            }
        }
        ctx.update_report(|doc| {
            for (job, outcome) in jobs.iter().zip(&outcomes) {
                let suites: Vec<SuiteResult> =
                    results.iter().filter(|r| r.cell == outcome.cell).cloned().collect();
                ctx.record_cell(doc, &job.cell, outcome);
                doc.record_suites(&job.cell, outcome, suites);
            }
        })?;
        println!("results: {}", ctx.layout.report_dir().join("report.json"));
        let dirty: Vec<String> = results
            .iter()
            .filter(|r| !r.clean())
            .map(|r| format!("{} {}", r.cell, r.suite))
            .collect();
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

    /// The command that reruns just `test` of `suite` on `cell`.
    fn repro(&self, cell: &str, suite: &Suite, test: Option<&str>) -> String {
        let mut line = format!("cargo xtask test {cell}");
        match &suite.source {
            exttest::Source::Dir(dir) if !self.ext.is_empty() => {
                line.push_str(&format!(" --ext {dir}"))
            }
            exttest::Source::Pypi(spec) if !self.pypi.is_empty() => {
                line.push_str(&format!(" --pypi {spec}"))
            }
            _ => line.push_str(&format!(" --suite {}", suite.name)),
        }
        if let Some(m) = &self.malloc {
            line.push_str(&format!(" --malloc {m}"));
        }
        if let Some(test) = test {
            let name = test.rsplit("::").next().unwrap_or(test);
            line.push_str(&format!(" -k {name}"));
        }
        line
    }

    fn suites(&self, ctx: &Context) -> anyhow::Result<(Vec<Suite>, exttest::Extensions)> {
        let path = ctx.matrix.dir.join("extensions.toml");
        let extensions = exttest::load_suites(&path, &crate::project_root())?;
        let variants: Vec<&str> = ctx.matrix.variants.iter().map(|v| v.name.as_str()).collect();
        extensions.check_variants(&variants).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        let mut suites = self.configured_suites(ctx, &extensions)?;
        for suite in &mut suites {
            if let Some(t) = self.timeout {
                suite.timeout_seconds = t;
            }
            if let Some(k) = &self.select {
                suite.pytest_args.extend(["-k".to_owned(), k.clone()]);
            }
        }
        Ok((suites, extensions))
    }

    fn configured_suites(
        &self,
        ctx: &Context,
        extensions: &exttest::Extensions,
    ) -> anyhow::Result<Vec<Suite>> {
        if !self.ext.is_empty() || !self.pypi.is_empty() {
            let mut suites = self
                .ext
                .iter()
                .map(|dir| {
                    let abs = crate::absolute(dir)?;
                    anyhow::ensure!(abs.is_dir(), "--ext {dir}: not a directory");
                    anyhow::ensure!(
                        ["pyproject.toml", "setup.py"].iter().any(|f| abs.join(f).is_file()),
                        "--ext {dir}: no pyproject.toml or setup.py: not a Python project"
                    );
                    Ok(exttest::suite_for_dir(&abs))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            for spec in &self.pypi {
                suites.push(exttest::suite_for_pypi(spec).map_err(anyhow::Error::msg)?);
            }
            return Ok(suites);
        }
        let all = &extensions.suites;
        let names: Vec<String> = if !self.suite.is_empty() {
            self.suite.clone()
        } else {
            let rules = match &ctx.selection.set {
                Some(set) => ctx.matrix.sets.get(set),
                None => Some(&ctx.matrix.default_rules),
            };
            match rules.and_then(|r| r.suites.clone()) {
                Some(names) => names,
                None => return Ok(all.clone()),
            }
        };
        names
            .iter()
            .map(|name| {
                all.iter().find(|s| &s.name == name).cloned().ok_or_else(|| {
                    let known: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
                    anyhow::anyhow!(
                        "unknown suite `{name}`: matrix/extensions.toml has {}",
                        known.join(", ")
                    )
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
    let unexpected = r.unexpected().count();
    let expected = r.findings.iter().filter(|f| f.expected.is_some()).count();
    let notes = r.findings.iter().filter(|f| f.expected.is_none() && f.kind.is_note()).count();
    let mut verdict =
        if unexpected == 0 { "clean".to_owned() } else { format!("{unexpected} finding(s)") };
    for (n, what) in [(expected, "expected"), (notes, "note(s)")] {
        if n > 0 {
            verdict.push_str(&format!(" ({n} {what})"));
        }
    }
    let hunted = if c.leak_judged + c.leak_not_judged > 0 {
        format!("; leak-checked {}, not judged {}", c.leak_judged, c.leak_not_judged)
    } else {
        String::new()
    };
    println!(
        "{:26} {:12} {} passed, {} failed, {} skipped{hunted}: {verdict} in {}s",
        r.cell, r.suite, c.passed, c.failed, c.skipped, r.seconds
    );
    for f in &r.findings {
        let test = f.test.as_deref().unwrap_or("-");
        let mut lines = f.message.lines();
        let first = lines.next().unwrap_or("");
        match &f.expected {
            Some(reason) => println!("    expected {:?} in {test}: {first} [{reason}]", f.kind),
            None if f.kind.is_note() => println!("    note: {:?} in {test}: {first}", f.kind),
            None => println!("    {:?} in {test}: {first}", f.kind),
        }
        // The whole message of a new finding: pytest's text, a traceback, a valgrind stack.
        if f.expected.is_none() && !f.kind.is_note() {
            for line in lines {
                println!("      {line}");
            }
        }
    }
}

/// What a suite run needs to know of a built cell.
fn cell_env<'a>(
    ctx: &Context,
    job: &build::Job<'_>,
    outcome: &build::CellOutcome,
    cancel: &'a std::sync::atomic::AtomicBool,
) -> CellEnv<'a> {
    CellEnv {
        cell: job.cell.name(),
        key: outcome.key.clone(),
        python: outcome.dirs.python(),
        cpython_source: job.source_dir.clone(),
        cell_dir: ctx.layout.cell_dir(&job.cell),
        shared_dir: ctx.layout.root().join("shared"),
        cancel,
    }
}

/// `cargo xtask bench --leaks SUITE --cell CELL`: the leak-hunting cost on a real suite.
pub(crate) fn bench_leaks(
    ctx: &Context,
    cell: &str,
    suite: &str,
    rounds: usize,
) -> anyhow::Result<()> {
    let path = ctx.matrix.dir.join("extensions.toml");
    let extensions = exttest::load_suites(&path, &crate::project_root())?;
    let suite = extensions
        .suites
        .iter()
        .find(|s| s.name == suite)
        .ok_or_else(|| anyhow::anyhow!("unknown suite `{suite}` in {path}"))?;
    let cells = ctx.named_cells(&[cell.to_owned()])?;
    let cancel = cancel_flag()?;
    let (_, jobs, outcomes) = build_cells(ctx, &cells, None, 1, &cancel)?;
    let (job, outcome) = jobs.iter().zip(&outcomes).next().context("one cell")?;
    anyhow::ensure!(outcome.ok(), "{cell} did not build or keep its promise");
    let env = cell_env(ctx, job, outcome, &cancel);
    let detectors = exttest::detectors(job.cell.variant, None);
    eprintln!("timing {} on {cell}: {rounds} rounds of three runs", suite.name);
    let bench = exttest::bench_leaks(&env, suite, &detectors, rounds.max(1))?;
    print!("{}", bench.render());
    Ok(())
}
