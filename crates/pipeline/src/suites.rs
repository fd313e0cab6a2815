//! Stage 4: extension suites on every usable cell, each with its variant's detectors, and the
//! command that reproduces each finding.

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use exttest::{CellEnv, Extensions, Suite, SuiteResult};

use crate::{Built, BuiltCell, Session};

/// Which suites, and how they run.
#[derive(Debug, Clone, Default)]
pub struct SuiteOptions {
    /// Project directories to test instead of `matrix/extensions.toml`'s suites (`--ext`).
    pub ext: Vec<Utf8PathBuf>,
    /// PyPI sdists to test instead, `NAME==VERSION` (`--pypi`).
    pub pypi: Vec<String>,
    /// Only these suites of `matrix/extensions.toml` (default: the set's `suites`, or all).
    pub suite: Vec<String>,
    /// `PYTHONMALLOC` for every cell (`--malloc`).
    pub malloc: Option<String>,
    /// Per-test timeout in seconds, replacing the suite's.
    pub timeout: Option<u64>,
    /// Only tests matching this pytest `-k` expression.
    pub select: Option<String>,
    /// Run each judged test this many more times alone and report its deltas per call
    /// (`--leak-loop`).
    pub leak_loop: Option<u32>,
    /// Run unpinned (only suites' own constraints files apply) and write
    /// `matrix/constraints.txt` from what the suites installed (`--update-constraints`).
    pub update_constraints: bool,
}

/// The suites to run and the expected findings that apply to them.
pub struct Plan {
    /// The suites, with the options applied.
    pub suites: Vec<Suite>,
    /// `matrix/extensions.toml`, its `[[expected]]` entries joined by the projects' own.
    pub extensions: Extensions,
    /// The cells the `--ext` projects want when the command names none (their `cells` or
    /// `set`: each project's cells in matrix order, the projects' in the order given), and
    /// the files that said so.
    pub default_cells: Option<(Vec<String>, Vec<String>)>,
}

impl SuiteOptions {
    /// Resolves the suites: `--ext`/`--pypi` projects, else `--suite` names, else the set's
    /// `suites`, else every suite of `matrix/extensions.toml`. Errors name the file and the
    /// bad value.
    pub fn plan(&self, session: &Session) -> anyhow::Result<Plan> {
        let path = session.matrix.dir.join("extensions.toml");
        let mut extensions = exttest::load_suites(&path, &session.project_root)?;
        let mut suites = self.configured_suites(session, &extensions)?;
        let mut defaults: Vec<(Vec<String>, String)> = Vec::new();
        for suite in &mut suites {
            let exttest::Source::Dir(dir) = &suite.source else { continue };
            // Checked before any cell is built: a wrong path is a minute's fix, not an hour's.
            anyhow::ensure!(
                ["pyproject.toml", "setup.py"].iter().any(|f| dir.join(f).is_file()),
                "{path}: suite `{}`: {dir} is not a Python project (no pyproject.toml or \
                 setup.py there); fix its `path`",
                suite.name
            );
            // A suite of extensions.toml (`path`, or an `--ext` naming its directory) keeps
            // its name; an `--ext` project's suite is named after the project.
            let of_matrix = extensions.suites.iter().any(|s| same_source(&s.source, &suite.source));
            let project = exttest::read_project(dir, of_matrix.then_some(suite.name.as_str()))?;
            let Some(config) = project.config else { continue };
            if of_matrix {
                let (merged, notes) = suite.over_project(path.as_str(), &config);
                for note in notes {
                    eprintln!("{note}");
                }
                *suite = merged;
            }
            extensions.expected.extend(config.expected.iter().cloned());
            // A project's default cells are for `--ext`; the matrix's suites run on the
            // cells the command or set selects.
            if (!of_matrix || !self.ext.is_empty())
                && let Some(cells) = &config.cells
            {
                defaults.push((default_cells(session, cells, &config)?, config.describe()));
            }
        }
        extensions.check(&session.matrix).map_err(anyhow::Error::msg)?;
        // Constraints files are read before any cell is built too: a bad line costs nothing.
        let global = constraints_file(session);
        if global.is_file() {
            read_pins(&global, "the matrix's constraints")?;
        }
        for suite in &suites {
            if let Some(own) = &suite.constraints {
                read_pins(own, &format!("{path}: suite `{}`: its `constraints`", suite.name))?;
            }
        }
        for suite in &mut suites {
            if let Some(t) = self.timeout {
                suite.timeout_seconds = t;
            }
            if let Some(k) = &self.select {
                suite.pytest_args.extend(["-k".to_owned(), k.clone()]);
            }
            if let Some(n) = self.leak_loop {
                suite.pytest_args.push(format!("--dm-leak-loop={n}"));
            }
        }
        let default_cells = (!defaults.is_empty()).then(|| {
            let mut names: Vec<String> = Vec::new();
            let mut files = Vec::new();
            for (cells, file) in defaults {
                names.extend(cells.into_iter().filter(|c| !names.contains(c)).collect::<Vec<_>>());
                files.push(file);
            }
            (names, files)
        });
        Ok(Plan { suites, extensions, default_cells })
    }

    fn configured_suites(
        &self,
        session: &Session,
        extensions: &Extensions,
    ) -> anyhow::Result<Vec<Suite>> {
        if !self.ext.is_empty() || !self.pypi.is_empty() {
            anyhow::ensure!(
                self.suite.is_empty(),
                "--suite {} names a suite of {}, but --ext/--pypi replace that file's suites: \
                 give one or the other",
                self.suite.join(", "),
                session.matrix.dir.join("extensions.toml")
            );
            let mut suites: Vec<Suite> = Vec::new();
            for dir in &self.ext {
                let abs = crate::absolute(dir)?;
                anyhow::ensure!(abs.is_dir(), "--ext {dir}: not a directory");
                anyhow::ensure!(
                    ["pyproject.toml", "setup.py"].iter().any(|f| abs.join(f).is_file()),
                    "--ext {dir}: no pyproject.toml or setup.py: not a Python project"
                );
                let source = exttest::Source::Dir(abs.clone());
                let suite = match extensions.suites.iter().find(|s| same_source(&s.source, &source))
                {
                    // The directory of a suite of extensions.toml: that suite.
                    Some(of_matrix) => exttest::Suite { source, ..of_matrix.clone() },
                    None => exttest::suite_for_project(&exttest::read_project(&abs, None)?),
                };
                push_unique(&mut suites, suite)?;
            }
            for spec in &self.pypi {
                push_unique(
                    &mut suites,
                    exttest::suite_for_pypi(spec).map_err(anyhow::Error::msg)?,
                )?;
            }
            return Ok(suites);
        }
        let all = &extensions.suites;
        let names: Vec<String> = if !self.suite.is_empty() {
            self.suite.clone()
        } else {
            let rules = match session.set() {
                Some(set) => session.matrix.sets.get(set),
                None => Some(&session.matrix.default_rules),
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
                        "unknown suite `{name}`: {} has {}",
                        session.matrix.dir.join("extensions.toml"),
                        known.join(", ")
                    )
                })
            })
            .collect()
    }

    /// The command that reruns just `test` of `suite` on `cell` (`report::repro`), naming
    /// the suite as this run's command line did.
    fn repro(
        &self,
        cell: &matrix::CellId,
        suite: &Suite,
        test: Option<&str>,
        leak: bool,
    ) -> String {
        use report::repro::SuiteArg;
        let pypi;
        let arg = match &suite.source {
            exttest::Source::Dir(dir) if !self.ext.is_empty() => SuiteArg::Ext(dir),
            exttest::Source::Pypi(spec) if !self.pypi.is_empty() => {
                pypi = spec.to_string();
                SuiteArg::Pypi(&pypi)
            }
            _ => SuiteArg::Named(&suite.name),
        };
        report::repro::TestLine {
            cell,
            suite: arg,
            malloc: self.malloc.as_deref(),
            test,
            leak_loop: leak,
        }
        .line()
    }
}

/// Whether two sources are one project: the same sdist, or directories that resolve alike.
fn same_source(a: &exttest::Source, b: &exttest::Source) -> bool {
    match (a, b) {
        (exttest::Source::Dir(a), exttest::Source::Dir(b)) => {
            a == b
                || matches!((a.canonicalize_utf8(), b.canonicalize_utf8()), (Ok(x), Ok(y)) if x == y)
        }
        (a, b) => a == b,
    }
}

/// The names of the cells a project's `cells` or `set` chooses.
fn default_cells(
    session: &Session,
    cells: &exttest::DefaultCells,
    config: &exttest::ProjectConfig,
) -> anyhow::Result<Vec<String>> {
    let selection = match cells {
        exttest::DefaultCells::Patterns(patterns) => {
            crate::Selection { patterns: patterns.clone(), ..crate::Selection::default() }
        }
        exttest::DefaultCells::Set(set) => {
            crate::Selection { set: Some(set.clone()), ..crate::Selection::default() }
        }
    };
    let cells = session
        .matrix
        .cells(&selection)
        .with_context(|| format!("the default cells of {}", config.describe()))?;
    Ok(cells.iter().map(|c| c.name()).collect())
}

/// The suites' results on one cell.
#[derive(Debug, Clone)]
pub struct CellSuites {
    /// Index into [`Built::cells`].
    pub index: usize,
    /// One result per suite that ran.
    pub results: Vec<SuiteResult>,
}

/// Runs every suite of `plan` on every usable cell of `built`; an unusable cell is skipped
/// with a line saying why (its build phase already says it failed).
pub fn run(
    session: &Session,
    built: &Built<'_>,
    options: &SuiteOptions,
    plan: &Plan,
) -> Vec<CellSuites> {
    let _polling = crate::Polling::start();
    let mut out = Vec::new();
    for (index, cell) in built.cells.iter().enumerate() {
        if session.cancelled() {
            break;
        }
        let name = cell.cell.name();
        if !cell.usable() {
            println!(
                "{name:26} not tested: {} (see `{}`)",
                cell.why_unusable(),
                report::repro::build(&cell.cell.id())
            );
            continue;
        }
        let _lock = match session.lock_cell(&cell.cell) {
            Ok(held) => held,
            Err(e) => {
                println!("{name:26} not tested: {e:#}");
                continue;
            }
        };
        let mut env = cell_env(session, cell);
        if options.update_constraints {
            env.constraints = None;
        }
        let detectors = exttest::detectors(cell.cell.variant, options.malloc.as_deref());
        let mut results = Vec::new();
        for suite in &plan.suites {
            if session.cancelled() {
                break;
            }
            eprintln!("{name}: {} [{}] …", suite.name, detectors_text(&detectors));
            let mut result = exttest::run_suite(&env, suite, &detectors);
            if session.cancelled() {
                // An interrupted run is no result: the suite's last complete one is kept.
                eprintln!(
                    "{name}: {}: this run was interrupted and is not recorded; {} keeps the \
                     suite's last complete results",
                    suite.name,
                    session.layout.report_json()
                );
                break;
            }
            let expected = plan.extensions.expected_for(&suite.name, &cell.cell);
            exttest::expect::apply(&mut result.findings, &expected, &result.ran);
            for f in &mut result.findings {
                f.repro = options.repro(
                    &result.cell,
                    suite,
                    f.test.as_deref(),
                    f.kind == exttest::FindingKind::RefLeak,
                );
            }
            print_result(&result);
            results.push(result);
        }
        out.push(CellSuites { index, results });
    }
    out
}

/// What a suite run needs to know of a built cell.
pub(crate) fn cell_env<'s>(session: &'s Session, cell: &BuiltCell<'_>) -> CellEnv<'s> {
    CellEnv {
        cell: cell.cell.id(),
        key: cell.outcome.key.clone(),
        python: cell.outcome.dirs.python(),
        cpython_source: cell.source_dir.clone(),
        cell_dirs: session.layout.cell(&cell.cell),
        pip_cache: session.layout.pip_cache(),
        sdists: session.layout.sdists_dir(),
        work_dir: session.layout.root().to_owned(),
        constraints: Some(constraints_file(session)).filter(|f| f.is_file()),
        cancel: session.cancel_flag(),
    }
}

/// `matrix/constraints.txt`: what every suite's installs are pinned to, where it exists.
pub(crate) fn constraints_file(session: &Session) -> Utf8PathBuf {
    session.matrix.dir.join("constraints.txt")
}

/// The constraints file `path`, parsed; `whose` names it in errors.
fn read_pins(path: &Utf8Path, whose: &str) -> anyhow::Result<exttest::constraints::Pins> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{whose}: reading {path}; create it or fix the path"))?;
    exttest::constraints::Pins::parse(path, &text).map_err(|e| anyhow::anyhow!("{whose}: {e}"))
}

/// `--update-constraints`: writes `matrix/constraints.txt` from the environments the suites
/// of this run recorded (merged by [`exttest::constraints::update`]), and prints what
/// changed. A suite whose set-up failed recorded none: said, and its packages are not pinned.
pub fn update_constraints(
    session: &Session,
    plan: &Plan,
    ran: &[CellSuites],
) -> anyhow::Result<()> {
    use exttest::constraints;
    let file = constraints_file(session);
    let old = if file.exists() { Some(read_pins(&file, "--update-constraints")?) } else { None };
    let mut recorded = Vec::new();
    for r in ran.iter().flat_map(|c| &c.results) {
        let Some(environment) = &r.environment else {
            eprintln!(
                "{file}: {} on {} recorded no environment (its set-up failed): its packages are                  not pinned by this update",
                r.suite, r.cell
            );
            continue;
        };
        let own = match plan
            .suites
            .iter()
            .find(|s| s.name == r.suite)
            .and_then(|s| s.constraints.as_ref())
        {
            Some(path) => read_pins(path, &format!("suite `{}`'s constraints", r.suite))?.names(),
            None => Default::default(),
        };
        recorded.push(constraints::Ran { cell: &r.cell, suite: &r.suite, environment, own });
    }
    anyhow::ensure!(
        !recorded.is_empty(),
        "--update-constraints: no suite recorded its environment, so {file} was not changed"
    );
    let update = constraints::update(old.as_ref(), &recorded)
        .map_err(|e| anyhow::anyhow!("--update-constraints: {e}"))?;
    process::write_atomically(&file, update.text.as_bytes())
        .with_context(|| format!("writing {file}"))?;
    println!(
        "{file}: written from {} suite run(s){}",
        recorded.len(),
        if update.changes.is_empty() { ", unchanged".to_owned() } else { String::new() }
    );
    for change in &update.changes {
        println!("    {change}");
    }
    Ok(())
}

/// `cargo xtask bench --leaks SUITE --cell CELL`: the leak-hunting cost on a real suite.
pub(crate) fn bench_leaks(
    session: &Session,
    cell: &BuiltCell<'_>,
    suite: &str,
    rounds: usize,
) -> anyhow::Result<String> {
    let plan =
        SuiteOptions { suite: vec![suite.to_owned()], ..SuiteOptions::default() }.plan(session)?;
    let suite = plan.suites.first().context("one suite")?;
    let name = cell.cell.name();
    anyhow::ensure!(cell.usable(), "{name} is not usable: {}", cell.why_unusable());
    let env = cell_env(session, cell);
    let detectors = exttest::detectors(cell.cell.variant, None);
    eprintln!("timing {} on {name}: {rounds} rounds of three runs", suite.name);
    let _polling = crate::Polling::start();
    let bench = exttest::bench_leaks(&env, suite, &detectors, rounds.max(1))?;
    Ok(bench.render())
}

/// The detectors of a run for the console: their names, or "tests only".
fn detectors_text(d: &exttest::Detectors) -> String {
    let names = d.names();
    if names.is_empty() { "tests only".to_owned() } else { names.join(", ") }
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
            Some(reason) => println!("    expected {} in {test}: {first} [{reason}]", f.kind),
            None if f.kind.is_note() => println!("    note: {} in {test}: {first}", f.kind),
            None => println!("    {} in {test}: {first}", f.kind),
        }
        // The whole message of a new finding: pytest's text, a traceback, a valgrind stack.
        if f.expected.is_none() && !f.kind.is_note() {
            for line in lines {
                println!("      {line}");
            }
        }
    }
    for n in &r.grew_not_judged {
        println!("    grew, not judged: {}: {}", n.test, n.reason);
    }
    for l in &r.leak_loops {
        println!(
            "    leak loop over {} calls of {}: refs per call {:?}, blocks per call {:?}",
            l.refs.len(),
            l.test,
            l.refs,
            l.blocks
        );
    }
}

/// Adds an ad hoc suite unless one with its name is there: the same source given twice is
/// one suite; two sources with one name would share a venv and a results slot, so they are
/// refused, naming both.
fn push_unique(suites: &mut Vec<Suite>, suite: Suite) -> anyhow::Result<()> {
    match suites.iter().find(|s| s.name == suite.name) {
        None => suites.push(suite),
        Some(other) if other.source == suite.source => {}
        Some(other) => anyhow::bail!(
            "two suites are named `{}`: {} and {}; a suite's name decides its venv and its \
             results, so test them in separate runs (or give one project another name)",
            suite.name,
            describe(&other.source),
            describe(&suite.source)
        ),
    }
    Ok(())
}

fn describe(source: &exttest::Source) -> String {
    match source {
        exttest::Source::Dir(dir) => format!("--ext {dir}"),
        exttest::Source::Pypi(spec) => format!("--pypi {spec}"),
    }
}
