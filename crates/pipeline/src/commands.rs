//! Every `cargo xtask` command as a slice of the pipeline: which stages it runs, what it
//! records, what it prints, and when it fails. `matrix` runs every stage once.

use anyhow::{Context as _, bail};
use camino::Utf8PathBuf;
use matrix::Matrix;
use sources::SignatureStatus;

use crate::{
    BuildOptions, Built, RegrtestOptions, Session, Sources, SuiteOptions, cpython, results, suites,
};

/// `list`: the selected (or named) cells as a table, or as JSON for GitHub Actions (with
/// build keys); with `ext`, by default the cells those projects want (`test --ext`'s), and
/// with `project_cells` only those (an error when they name none).
pub fn list(
    session: &Session,
    names: &[String],
    json: bool,
    ext: &[Utf8PathBuf],
    project_cells: bool,
) -> anyhow::Result<()> {
    let names = match ext {
        [] => names.to_vec(),
        _ => {
            let plan =
                SuiteOptions { ext: ext.to_vec(), ..SuiteOptions::default() }.plan(session)?;
            if project_cells && plan.default_cells.is_none() {
                let dirs: Vec<String> = ext.iter().map(|d| d.to_string()).collect();
                bail!(
                    "{}: [tool.debug-matrix] names no default cells: add `cells = \
                     [\"3.13+debug\"]` (patterns) or `set = \"ci\"` to it, or name a set \
                     (the workflow's `set` input, `--set`)",
                    dirs.join(", ")
                );
            }
            cells_to_test(session, names, &plan)
        }
    };
    let names = &names[..];
    let cells = session.cells(names)?;
    if json {
        let toolchain = builder::read_toolchain()?;
        let keys: Vec<String> = cells.iter().map(|c| configure::plan(c, &toolchain).key).collect();
        println!("{}", report::cell_list_json(&cells, &keys));
    } else {
        print!("{}", report::cell_list_text(&cells));
        if names.is_empty() {
            for release in session.matrix.not_built_here(&session.selection) {
                let why = release.not_built_here.as_deref().unwrap_or_default();
                println!(
                    "{}: not built here ({why}); select it with --version {}",
                    release.version, release.version
                );
            }
        }
    }
    Ok(())
}

fn describe_signature(status: &Option<SignatureStatus>) -> String {
    status.as_ref().map_or(String::new(), |status| format!(", {}", status.describe()))
}

/// Stage 1 alone, printed: what was fetched, verified, extracted.
fn print_sources(sources: &Sources) {
    let mut worked = false;
    for (version, source) in &sources.releases {
        let p = &source.prepared;
        worked |= p.did_work();
        let archive = match &p.archive.origin {
            fetch::Origin::Cache => "archive cached".to_owned(),
            origin => format!("fetched from {origin}, sha256 verified"),
        };
        let extracted = if p.extracted { "extracted" } else { "already extracted" };
        println!(
            "{version}: {archive}{}; {extracted} in {}",
            describe_signature(&p.signature),
            p.source_dir
        );
    }
    if !worked {
        println!("nothing to do: every archive is cached and every source is extracted");
    }
}

/// `fetch`: stage 1 for the selected (or named) cells.
pub fn fetch(session: &Session, names: &[String]) -> anyhow::Result<()> {
    let cells = session.cells(names)?;
    print_sources(&Sources::prepare(session, &cells)?);
    Ok(())
}

/// `verify`: the cached archives of the selected (or named) cells re-checked against their
/// pins and signatures.
pub fn verify(session: &Session, names: &[String]) -> anyhow::Result<()> {
    let cells = session.cells(names)?;
    let fetcher = session.fetcher()?;
    let mut failures = Vec::new();
    let mut checked = 0;
    for release in Matrix::releases_of(&cells) {
        match sources::verify_cached(&fetcher, &session.matrix.dir, release) {
            Ok(check) => match &check.path {
                None => println!("{}: not cached (run `cargo xtask fetch`)", release.version),
                Some(path) => {
                    checked += 1;
                    println!(
                        "{}: {path}: size and sha256 match the pin{}",
                        release.version,
                        describe_signature(&check.signature)
                    );
                    let tree = session.layout.source_dir(release);
                    if tree.is_dir()
                        && let Err(why) = extract::check_tree(&tree)
                    {
                        eprintln!(
                            "{}: FAILED: {why}; run `cargo xtask fetch` to extract it again",
                            release.version
                        );
                        failures.push(release.version.to_string());
                    }
                }
            },
            Err(err) => {
                eprintln!("{}: FAILED: {err:#}", release.version);
                failures.push(release.version.to_string());
            }
        }
    }
    if !failures.is_empty() {
        bail!("verification failed for {}", failures.join(", "));
    }
    println!("verified {checked} cached archive(s)");
    Ok(())
}

/// Stages 1 and 2 for `names` (or the selection), recorded; the errors of stage 2 are in the
/// result, not returned.
fn sources_and_builds<'s>(
    session: &'s Session,
    names: &[String],
    options: &BuildOptions,
) -> anyhow::Result<(Sources, Built<'s>)> {
    session.check_buildable()?;
    let cells = session.cells(names)?;
    let sources = Sources::prepare(session, &cells)?;
    let built = Built::build(session, &sources, &cells, options)?;
    results::update(session, |doc| results::record_built(doc, &sources, &built))?;
    Ok((sources, built))
}

fn print_built(built: &Built<'_>) {
    use builder::{BuildStatus, CheckStatus};
    for c in &built.cells {
        let o = &c.outcome;
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
        println!("{:26} {build}; {check}; key {}", o.cell, o.key.get(..16).unwrap_or(&o.key));
    }
}

/// The cells of `built` that are not usable, or an interruption, as an error.
fn build_failures(session: &Session, built: &Built<'_>) -> anyhow::Result<()> {
    if session.cancelled() {
        bail!("interrupted; rerun the same command to resume");
    }
    let failed: Vec<String> =
        built.cells.iter().filter(|c| !c.usable()).map(|c| c.cell.name()).collect();
    if !failed.is_empty() {
        bail!("{} of {} cells failed: {}", failed.len(), built.cells.len(), failed.join(", "));
    }
    Ok(())
}

/// `build`: stages 1 and 2.
pub fn build(session: &Session, names: &[String], options: &BuildOptions) -> anyhow::Result<()> {
    let result = sources_and_builds(session, names, options).and_then(|(_, built)| {
        print_built(&built);
        build_failures(session, &built)
    });
    finish(session, result)
}

/// A command that records results ends by showing them (the HTML's path, the grid, the new
/// findings), whether it failed or not, then returns its result.
fn finish(session: &Session, result: anyhow::Result<()>) -> anyhow::Result<()> {
    if let Err(err) = results::show(session) {
        eprintln!("warning: the results could not be shown: {err:#}");
    }
    result
}

/// `build --check`: each selected cell, already built, is built again from scratch under
/// varied conditions and the two installed trees compared (`builder::repro`); recorded as the
/// phase `reproducible`. Fails on any difference, and on cells not built yet (the check
/// proves a build, it does not make the first one).
pub fn build_check(
    session: &Session,
    names: &[String],
    options: &BuildOptions,
) -> anyhow::Result<()> {
    let cells = session.cells(names)?;
    let toolchain = builder::read_toolchain()?;
    let unbuilt: Vec<String> = cells
        .iter()
        .filter(|c| !session.layout.build(&configure::plan(c, &toolchain).key).manifest.is_file())
        .map(|c| c.name())
        .collect();
    if !unbuilt.is_empty() {
        bail!(
            "not built yet: {}; `build --check` rebuilds a build to compare it, run `cargo xtask \
             build {}` first",
            unbuilt.join(", "),
            unbuilt.join(" ")
        );
    }
    let result = sources_and_builds(session, names, options)
        .and_then(|(_, built)| check_built(session, &built, toolchain, options));
    finish(session, result)
}

/// The rebuilds and comparisons of `build --check`, recorded; fails on any difference.
fn check_built(
    session: &Session,
    built: &Built<'_>,
    toolchain: configure::Toolchain,
    options: &BuildOptions,
) -> anyhow::Result<()> {
    let cpython = builder::Builder::new(
        &session.layout,
        toolchain,
        builder::Options {
            make_jobs: options.make_jobs.unwrap_or_else(|| session.cpus()),
            parallel_builds: 1,
            phase_timeout: options.phase_timeout,
            share_config_cache: true,
        },
        session.cancel_flag().clone(),
    );
    let jobs: Vec<builder::Job<'_>> = built
        .cells
        .iter()
        .map(|c| builder::Job { cell: c.cell, source_dir: c.source_dir.clone() })
        .collect();
    let checks = {
        let _polling = crate::Polling::start();
        cpython.check_reproducible(&jobs)
    };
    for check in &checks {
        print!("{}", check.render());
    }
    results::update(session, |doc| results::record_reproducibility(doc, built, &checks))?;
    if session.cancelled() {
        bail!("interrupted; the first builds were restored; rerun the same command to check");
    }
    let failed: Vec<String> =
        checks.iter().filter(|c| !c.ok()).map(|c| c.cells.join(", ")).collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} builds are not proven reproducible: {}",
            failed.len(),
            checks.len(),
            failed.join("; ")
        );
    }
    Ok(())
}

/// Stage 3 on `built`, recorded; fails if any cell failed CPython's tests.
fn regrtest_stage(
    session: &Session,
    tests: &regrtest::TestsFile,
    sources: &Sources,
    built: &Built<'_>,
    options: &RegrtestOptions,
) -> anyhow::Result<()> {
    let runs = cpython::run(session, tests, built, options)?;
    results::update(session, |doc| {
        for r in &runs {
            results::record_regrtest(doc, sources, &built.cells[r.index], &r.run);
        }
    })?;
    if session.cancelled() {
        bail!("interrupted; rerun the same command to test again");
    }
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| !r.run.ok())
        .map(|r| {
            let name = built.cells[r.index].cell.name();
            match r.run.failing_modules() {
                m if m.is_empty() => name,
                m => format!("{name} ({})", m.join(", ")),
            }
        })
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} cells failed CPython's tests (profile {}, environment {}): {}",
            failed.len(),
            runs.len(),
            options.profile,
            options.environment,
            failed.join(", ")
        );
    }
    Ok(())
}

/// `test-cpython`: stages 1–3.
pub fn test_cpython(
    session: &Session,
    names: &[String],
    build_options: &BuildOptions,
    options: &RegrtestOptions,
) -> anyhow::Result<()> {
    // Checked before anything is built: a bad profile name costs nothing.
    let tests = session.cpython_tests()?;
    tests.profile(&options.profile)?;
    let result = sources_and_builds(session, names, build_options)
        .and_then(|(sources, built)| regrtest_stage(session, &tests, &sources, &built, options));
    finish(session, result)
}

/// Stage 4 on `built`, recorded; fails on findings or cells that could not be tested.
fn suites_stage(
    session: &Session,
    sources: &Sources,
    built: &Built<'_>,
    options: &SuiteOptions,
    plan: &suites::Plan,
) -> anyhow::Result<()> {
    let ran = suites::run(session, built, options, plan);
    results::update(session, |doc| {
        for cell in &ran {
            results::record_suites(doc, sources, &built.cells[cell.index], &cell.results);
        }
    })?;
    println!("results: {}", session.layout.report_json());
    if session.cancelled() {
        bail!("interrupted");
    }
    if options.update_constraints {
        suites::update_constraints(session, plan, &ran)?;
    }
    let mut problems: Vec<String> = ran
        .iter()
        .flat_map(|c| &c.results)
        .filter(|r| !r.clean())
        .map(|r| format!("{} {}", r.cell, r.suite))
        .collect();
    problems.extend(
        built
            .cells
            .iter()
            .filter(|c| !c.usable())
            .map(|c| format!("{} (not built)", c.cell.name())),
    );
    if !problems.is_empty() {
        bail!("findings on {}", problems.join(", "));
    }
    Ok(())
}

/// The cells named, else those the `--ext` projects want when no selection flag is given
/// either (said, with the files that want them).
fn cells_to_test(session: &Session, names: &[String], plan: &suites::Plan) -> Vec<String> {
    match &plan.default_cells {
        Some((cells, files)) if names.is_empty() && !session.selects() => {
            eprintln!("cells {} (the default of {})", cells.join(", "), files.join(", "));
            cells.clone()
        }
        _ => names.to_vec(),
    }
}

/// `test`: stages 1, 2 and 4.
pub fn test(
    session: &Session,
    names: &[String],
    build_options: &BuildOptions,
    options: &SuiteOptions,
) -> anyhow::Result<()> {
    // Resolved before anything is built: a bad suite name or `--ext` costs nothing.
    let plan = options.plan(session)?;
    let names = cells_to_test(session, names, &plan);
    let result = sources_and_builds(session, &names, build_options)
        .and_then(|(sources, built)| suites_stage(session, &sources, &built, options, &plan));
    finish(session, result)
}

/// `matrix`: every stage once. Without sources nothing can run, so a failing stage 1 stops
/// it; a failing later stage is reported and the stages after it still run on the usable
/// cells. The exit status says whether anything failed.
pub fn matrix(
    session: &Session,
    names: &[String],
    build_options: &BuildOptions,
    regrtest_options: &RegrtestOptions,
    suite_options: &SuiteOptions,
) -> anyhow::Result<()> {
    let tests = session.cpython_tests()?;
    tests.profile(&regrtest_options.profile)?;
    let plan = suite_options.plan(session)?;
    let names = cells_to_test(session, names, &plan);
    let result =
        every_stage(session, &names, build_options, regrtest_options, suite_options, &tests, &plan);
    finish(session, result)
}

/// `matrix`'s stages, in order.
fn every_stage(
    session: &Session,
    names: &[String],
    build_options: &BuildOptions,
    regrtest_options: &RegrtestOptions,
    suite_options: &SuiteOptions,
    tests: &regrtest::TestsFile,
    plan: &suites::Plan,
) -> anyhow::Result<()> {
    session.check_buildable()?;
    let cells = session.cells(names)?;
    let sources = Sources::prepare(session, &cells)?;
    print_sources(&sources);
    let built = Built::build(session, &sources, &cells, build_options)?;
    results::update(session, |doc| results::record_built(doc, &sources, &built))?;
    print_built(&built);
    let mut failed: Vec<&str> = Vec::new();
    let mut stage = |name: &'static str, result: anyhow::Result<()>| {
        if let Err(err) = result {
            eprintln!("error: {name}: {err:#}");
            failed.push(name);
        }
    };
    stage("build", build_failures(session, &built));
    stage("test-cpython", regrtest_stage(session, tests, &sources, &built, regrtest_options));
    stage("test", suites_stage(session, &sources, &built, suite_options, plan));
    if !failed.is_empty() {
        bail!("the matrix failed in: {}", failed.join(", "));
    }
    println!("the matrix is green: {}", session.layout.report_json());
    Ok(())
}

/// How `report` renders.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Merge every `report.json` under these directories first.
    pub merge: Vec<Utf8PathBuf>,
    /// Append the Markdown to this file (`$GITHUB_STEP_SUMMARY`).
    pub summary: Option<Utf8PathBuf>,
    /// Print GitHub annotations.
    pub annotations: bool,
    /// Fail if any cell is not ok.
    pub check: bool,
}

/// `report`: re-renders report.md, junit.xml and report.html from report.json (after merging
/// other documents, e.g. CI artifacts).
pub fn report(session: &Session, options: &ReportOptions) -> anyhow::Result<()> {
    let json = session.layout.report_json();
    // The one locked writer: a `build` finishing meanwhile is never lost.
    let doc = results::rewrite(session, |doc| {
        for root in &options.merge {
            let files = report_files(root)?;
            for path in &files {
                doc.merge_file(path)?;
            }
            println!("merged {} report.json file(s) from {root}", files.len());
        }
        if doc.cells.is_empty() {
            bail!(
                "{json} holds no cell: run `cargo xtask test` or `cargo xtask matrix` first (or --merge DIR)"
            );
        }
        Ok(())
    })?;
    // `rewrite` rendered them, under the lock.
    for path in results::rendered(session) {
        println!("wrote {path}");
    }
    let order = results::order(session);
    let markdown = report::render::markdown(&doc, &order);
    if let Some(summary) = &options.summary {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(summary)
            .with_context(|| format!("opening {summary}"))?;
        file.write_all(markdown.as_bytes()).with_context(|| format!("writing {summary}"))?;
    }
    if options.annotations {
        print!("{}", report::render::annotations(&doc, &order));
    }
    results::print_summary(session, &doc);
    let problems = doc.problems();
    if options.check && !problems.is_empty() {
        bail!(
            "{} of {} cells are not ok: {}",
            problems.len(),
            doc.cells.len(),
            problems.join(", ")
        );
    }
    Ok(())
}

/// Every `report.json` under `root`, sorted. Symbolic links are not followed into
/// directories (a link to an ancestor would loop); a `report.json` that is a link must lead
/// to a file inside `root`, and a file reached twice is merged once.
fn report_files(root: &camino::Utf8Path) -> anyhow::Result<Vec<Utf8PathBuf>> {
    let inside = root.canonicalize_utf8().with_context(|| format!("reading {root}"))?;
    let mut found = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
            let entry = entry.with_context(|| format!("reading {dir}"))?;
            let Ok(path) = Utf8PathBuf::from_path_buf(entry.path()) else { continue };
            let kind = entry.file_type().with_context(|| format!("reading {path}"))?;
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            if path.file_name() != Some("report.json") {
                if kind.is_symlink() && path.is_dir() {
                    eprintln!("--merge {root}: not following the link {path}");
                }
                continue;
            }
            let real = path.canonicalize_utf8().with_context(|| format!("reading {path}"))?;
            if !real.starts_with(&inside) {
                bail!(
                    "--merge {root}: {path} leads to {real}, outside {root}; refusing to merge \
                     it: copy the file into {root} instead"
                );
            }
            if seen.insert(real) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// `bench`: a cold cell against the bare recipe (and a second cell seeded), or with
/// `leaks`, a suite's leak-hunting cost.
pub fn bench(
    session: &Session,
    cell: &str,
    second: &str,
    make_jobs: Option<usize>,
    leaks: Option<&str>,
    rounds: usize,
) -> anyhow::Result<()> {
    session.check_buildable()?;
    if let Some(suite) = leaks {
        let (_, built) = sources_and_builds(session, &[cell.to_owned()], &BuildOptions::default())?;
        let one = built.cells.first().context("one cell")?;
        print!("{}", suites::bench_leaks(session, one, suite, rounds)?);
        return Ok(());
    }
    let cells = session.cells(&[cell.to_owned(), second.to_owned()])?;
    let [a, b] = <[matrix::Cell<'_>; 2]>::try_from(cells)
        .map_err(|_| anyhow::anyhow!("--cell and --second must name two cells"))?;
    anyhow::ensure!(
        a.release.version == b.release.version,
        "--cell and --second must be cells of the same release"
    );
    let sources = Sources::prepare(session, &[a])?;
    let source_dir = sources.of(&a).context("the release's source")?.prepared.source_dir.clone();
    let jobs = [
        builder::Job { cell: a, source_dir: source_dir.clone() },
        builder::Job { cell: b, source_dir },
    ];
    let dir = session.layout.bench_dir();
    eprintln!(
        "benchmark in {dir}: bare recipe, then the tool cold, seeded and warm (several minutes)"
    );
    let _polling = crate::Polling::start();
    let report = builder::bench::bench(
        &dir,
        &jobs,
        builder::read_toolchain()?,
        make_jobs.unwrap_or_else(|| session.cpus()),
        session.cancel_flag().clone(),
    )?;
    print!("{}", report.render());
    Ok(())
}

/// `run CELL -- COMMAND…`: runs a command inside the cell; fails with its exit status.
pub fn run_in_cell(
    session: &Session,
    cell: &str,
    suite: Option<&str>,
    command: &[String],
) -> anyhow::Result<()> {
    let (program, args) = command.split_first().context("no command given after --")?;
    say_if_unbuilt(session, cell)?;
    let (_, built) = sources_and_builds(session, &[cell.to_owned()], &BuildOptions::default())?;
    let one = built.cells.first().context("one cell")?;
    let mut cmd = crate::enter::command_in_cell(session, one, suite, program)?;
    let status = cmd.args(args).status().with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("`{}` in {cell} exited with {status}", command.join(" "));
    }
    Ok(())
}

/// `shell CELL`: an interactive shell inside the cell.
pub fn shell_in_cell(session: &Session, cell: &str, suite: Option<&str>) -> anyhow::Result<()> {
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".to_owned());
    say_if_unbuilt(session, cell)?;
    let (_, built) = sources_and_builds(session, &[cell.to_owned()], &BuildOptions::default())?;
    let one = built.cells.first().context("one cell")?;
    let mut cmd = crate::enter::command_in_cell(session, one, suite, &shell)?;
    eprintln!("entering {cell}: `python` is the cell's interpreter; exit the shell to leave");
    cmd.status().with_context(|| format!("running {shell}"))?;
    Ok(())
}

/// `run`/`shell` build a cell that is not built yet; they say so first, since the command the
/// user typed starts only after the build (minutes).
fn say_if_unbuilt(session: &Session, cell: &str) -> anyhow::Result<()> {
    let cells = session.cells(&[cell.to_owned()])?;
    let Some(one) = cells.first() else { return Ok(()) };
    let key = configure::plan(one, &builder::read_toolchain()?).key;
    if !session.layout.build(&key).manifest.is_file() {
        eprintln!(
            "{cell} is not built yet: building it first (several minutes; `cargo xtask build \
             {cell}` does the same), then running the command"
        );
    }
    Ok(())
}

/// `init DIR`: a starter `[tool.debug-matrix]` and caller workflow for a project, printed.
pub fn init(dir: &camino::Utf8Path, options: &exttest::init::InitOptions) -> anyhow::Result<()> {
    let written = exttest::init::init(dir, options)?;
    for w in &written {
        println!("wrote {}:\n", w.path);
        for line in w.text.lines() {
            if line.is_empty() { println!() } else { println!("    {line}") }
        }
        println!();
    }
    if options.tool_repository.starts_with("OWNER/") || options.tool_ref == "COMMIT" {
        println!(
            "in the workflow, replace OWNER/debug-matrix and COMMIT with debug-matrix's \
             repository and the commit to run (or give --tool-repository and --tool-ref)"
        );
    }
    println!(
        "try it: cargo xtask test --ext {dir} (the cells it names); the workflow's `conclusion` \
         job is the check to require"
    );
    Ok(())
}
