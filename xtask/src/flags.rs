//! Command-line flags (clap derive). One `///` line per command is its `--help`. Flags that
//! several commands share are one struct each, flattened where used.

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand};

/// Build the matrix of CPython debug variants and test C extensions against every cell.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
pub(crate) struct Flags {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Work directory for caches, sources, builds and reports [default: target/debug-matrix]
    #[arg(long, global = true, env = "DEBUG_MATRIX_DIR")]
    pub(crate) work_dir: Option<Utf8PathBuf>,
    /// Directory holding versions.toml, variants.toml, cells.toml [default: matrix/]
    #[arg(long, global = true)]
    pub(crate) matrix_dir: Option<Utf8PathBuf>,
    /// Select cells of this version (prefix: 3.13 matches 3.13.5); repeatable
    #[arg(long = "version", global = true, value_name = "VERSION")]
    pub(crate) versions: Vec<String>,
    /// Select cells of this variant; repeatable
    #[arg(long = "variant", global = true, value_name = "VARIANT")]
    pub(crate) variants: Vec<String>,
    /// Use a named cell set from matrix/cells.toml (e.g. ci)
    #[arg(long, global = true)]
    pub(crate) set: Option<String>,
    /// Archive mirror: a directory, file:// or https:// base URL; repeatable, tried in order
    /// (also DEBUG_MATRIX_MIRROR, whitespace-separated)
    #[arg(long, global = true, value_name = "DIR|URL")]
    pub(crate) mirror: Vec<String>,
    /// Never download from python.org; only the cache and mirrors
    #[arg(long, global = true)]
    pub(crate) no_upstream: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the selected cells (version × variant)
    List(List),
    /// Fetch, verify and extract the source of every selected cell's version
    Fetch(Fetch),
    /// Re-check every cached archive against its pin and its release manager's signature
    Verify(Verify),
    /// The whole pipeline: fetch, verify, build and check, CPython's smoke tests, extension suites
    Matrix(Matrix),
    /// Build every selected cell out of tree and check each interpreter against its promise
    Build(Build),
    /// Run CPython's own test suite (regrtest) on every selected cell, building it first
    TestCpython(TestCpython),
    /// Build C-extension suites on every selected cell and run their tests with the cell's detector
    Test(Test),
    /// Measure a cold cell against the bare configure/make/install recipe, and the warm rerun
    Bench(Bench),
    /// Re-render report.md, junit.xml and report.html from the stored report.json
    Report(Report),
    /// Run one command inside a cell: its interpreter (and extension venv) first on PATH
    Run(Run),
    /// Open an interactive shell inside a cell (like `run CELL -- $SHELL`)
    Shell(Shell),
    /// Start testing an extension: a starter [tool.debug-matrix] and a GitHub caller workflow
    Init(Init),
}

/// Cells by name; without names, the selection flags decide.
#[derive(Debug, Args)]
pub(crate) struct Cells {
    /// Cells by name (3.13.5+debug); default: the selection flags
    pub(crate) cells: Vec<String>,
}

/// How the cells a command needs are built.
#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// `make -j` of each build [default: the number of CPUs]
    #[arg(long)]
    pub(crate) make_jobs: Option<usize>,
    /// Longest any one build phase may take, in minutes
    #[arg(long, value_parser = at_least_one, default_value_t = pipeline::BuildOptions::default().phase_timeout.as_secs() / 60)]
    pub(crate) phase_timeout: u64,
}

/// Which regrtest run.
#[derive(Debug, Args)]
pub(crate) struct RegrtestArgs {
    /// A profile of matrix/cpython-tests.toml: smoke (a fixed list of modules) or full
    /// (everything `make test` runs)
    #[arg(long, default_value = "smoke")]
    pub(crate) profile: String,
    /// Whose known failures (matrix/cpython-tests.toml) apply: local, sandbox, …
    #[arg(long, env = "DEBUG_MATRIX_ENVIRONMENT", default_value = "local")]
    pub(crate) environment: String,
}

/// Which extension suites, and how they run.
#[derive(Debug, Args)]
pub(crate) struct SuiteArgs {
    /// A project directory to test instead of matrix/extensions.toml's suites; repeatable
    #[arg(long, value_name = "DIR")]
    pub(crate) ext: Vec<Utf8PathBuf>,
    /// A PyPI sdist to test instead, NAME==VERSION (its tests are found); repeatable
    #[arg(long, value_name = "NAME==VERSION")]
    pub(crate) pypi: Vec<String>,
    /// Only these suites of matrix/extensions.toml; repeatable (default: the set's `suites`,
    /// or all)
    #[arg(long)]
    pub(crate) suite: Vec<String>,
    /// Run with PYTHONMALLOC set to this allocator (pymalloc_debug, malloc_debug, …) on every cell
    #[arg(long)]
    pub(crate) malloc: Option<String>,
    /// Per-test timeout in seconds, replacing the suite's (a hung test is killed and reported)
    #[arg(long, value_parser = at_least_one)]
    pub(crate) timeout: Option<u64>,
    /// Only tests matching this pytest -k expression
    #[arg(short = 'k', value_name = "EXPR")]
    pub(crate) select: Option<String>,
    /// On leak-hunting cells, also run each judged test N more times alone and print its
    /// reference and block deltas per call (the repro of a ref-leak finding)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub(crate) leak_loop: Option<u32>,
    /// Run the suites unpinned (only their own constraints files apply) and write
    /// matrix/constraints.txt from the packages they installed
    #[arg(long)]
    pub(crate) update_constraints: bool,
}

#[derive(Debug, Args)]
pub(crate) struct List {
    #[command(flatten)]
    pub(crate) cells: Cells,
    /// Print JSON for GitHub Actions' fromJson: {"include":[{"cell":…}]}
    #[arg(long)]
    pub(crate) json: bool,
    /// Without cells or selection flags: the cells this project's [tool.debug-matrix] wants
    /// (what `test --ext DIR` runs on); repeatable
    #[arg(long, value_name = "DIR")]
    pub(crate) ext: Vec<Utf8PathBuf>,
    /// With --ext: only the cells the projects name (`cells` or `set` in [tool.debug-matrix]);
    /// an error when they name none (the reusable workflow's default)
    #[arg(long, requires = "ext")]
    pub(crate) project_cells: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Fetch {
    #[command(flatten)]
    pub(crate) cells: Cells,
}

#[derive(Debug, Args)]
pub(crate) struct Verify {
    #[command(flatten)]
    pub(crate) cells: Cells,
}

#[derive(Debug, Args)]
pub(crate) struct Matrix {
    #[command(flatten)]
    pub(crate) cells: Cells,
    #[command(flatten)]
    pub(crate) build: BuildArgs,
    #[command(flatten)]
    pub(crate) regrtest: RegrtestArgs,
    #[command(flatten)]
    pub(crate) suites: SuiteArgs,
}

#[derive(Debug, Args)]
pub(crate) struct Build {
    #[command(flatten)]
    pub(crate) cells: Cells,
    /// How many cells to build side by side
    #[arg(long, short = 'j', default_value_t = 1)]
    pub(crate) jobs: usize,
    /// Prove the selected, already built cells reproducible: build each again from scratch
    /// under varied conditions (umask, TZ, locale, environment, make -j) and compare the
    /// installed trees file by file; exits 1 on any difference
    #[arg(long)]
    pub(crate) check: bool,
    #[command(flatten)]
    pub(crate) build: BuildArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TestCpython {
    #[command(flatten)]
    pub(crate) cells: Cells,
    #[command(flatten)]
    pub(crate) regrtest: RegrtestArgs,
    /// regrtest worker processes (regrtest -j) [default: the number of CPUs]
    #[arg(long, short = 'j')]
    pub(crate) jobs: Option<usize>,
    #[command(flatten)]
    pub(crate) build: BuildArgs,
}

#[derive(Debug, Args)]
pub(crate) struct Test {
    #[command(flatten)]
    pub(crate) cells: Cells,
    #[command(flatten)]
    pub(crate) suites: SuiteArgs,
    #[command(flatten)]
    pub(crate) build: BuildArgs,
}

#[derive(Debug, Args)]
pub(crate) struct Bench {
    /// The cell measured cold against the bare recipe
    #[arg(long, default_value = "3.13.5+debug")]
    pub(crate) cell: String,
    /// A second cell of the same release, built cold after it (seeded configure)
    #[arg(long, default_value = "3.13.5+trace-refs")]
    pub(crate) second: String,
    /// `make -j` [default: the number of CPUs]
    #[arg(long)]
    pub(crate) make_jobs: Option<usize>,
    /// Instead: time this suite of matrix/extensions.toml on --cell plainly, with leak
    /// hunting, and with the full protocol for every test
    #[arg(long, value_name = "SUITE")]
    pub(crate) leaks: Option<String>,
    /// Rounds of the --leaks benchmark
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
}

#[derive(Debug, Args)]
pub(crate) struct Report {
    /// Also append the Markdown to this file (e.g. "$GITHUB_STEP_SUMMARY")
    #[arg(long, value_name = "PATH")]
    pub(crate) summary: Option<Utf8PathBuf>,
    /// Print GitHub annotations (::error …::) for every problem
    #[arg(long)]
    pub(crate) annotations: bool,
    /// First merge every report.json found under DIR (e.g. downloaded CI artifacts); repeatable
    #[arg(long, value_name = "DIR")]
    pub(crate) merge: Vec<Utf8PathBuf>,
    /// Exit non-zero if any cell is not ok (build failed, promise broken, findings)
    #[arg(long)]
    pub(crate) check: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Run {
    /// The cell, e.g. 3.13.5+debug
    pub(crate) cell: String,
    /// Use this extension suite's venv (from `cargo xtask test`) instead of the bare interpreter
    #[arg(long)]
    pub(crate) suite: Option<String>,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true)]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct Shell {
    /// The cell, e.g. 3.13.5+debug
    pub(crate) cell: String,
    /// Use this extension suite's venv (from `cargo xtask test`)
    #[arg(long)]
    pub(crate) suite: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct Init {
    /// The extension's project directory (its pyproject.toml or setup.py)
    pub(crate) dir: Utf8PathBuf,
    /// Replace an existing [tool.debug-matrix] (or debug-matrix.toml) and workflow file
    #[arg(long)]
    pub(crate) force: bool,
    /// owner/name of this repository on GitHub, for the workflow's `uses:`
    #[arg(long, default_value = "OWNER/debug-matrix")]
    pub(crate) tool_repository: String,
    /// The commit (or tag) of this repository the workflow runs
    #[arg(long, default_value = "COMMIT")]
    pub(crate) tool_ref: String,
}

impl Global {
    pub(crate) fn session_options(self, project_root: Utf8PathBuf) -> pipeline::SessionOptions {
        pipeline::SessionOptions {
            project_root,
            matrix_dir: self.matrix_dir,
            work_dir: self.work_dir,
            selection: pipeline::Selection {
                set: self.set,
                versions: self.versions,
                variants: self.variants,
                cells: Vec::new(),
                patterns: Vec::new(),
            },
            mirrors: self.mirror,
            upstream: !self.no_upstream,
        }
    }
}

impl BuildArgs {
    pub(crate) fn options(&self, parallel_builds: usize) -> pipeline::BuildOptions {
        pipeline::BuildOptions {
            make_jobs: self.make_jobs,
            parallel_builds,
            phase_timeout: std::time::Duration::from_secs(self.phase_timeout * 60),
        }
    }
}

impl RegrtestArgs {
    pub(crate) fn options(&self, jobs: Option<usize>) -> pipeline::RegrtestOptions {
        pipeline::RegrtestOptions {
            profile: self.profile.clone(),
            environment: self.environment.clone(),
            jobs,
        }
    }
}

impl SuiteArgs {
    pub(crate) fn options(&self) -> pipeline::SuiteOptions {
        pipeline::SuiteOptions {
            ext: self.ext.clone(),
            pypi: self.pypi.clone(),
            suite: self.suite.clone(),
            malloc: self.malloc.clone(),
            timeout: self.timeout,
            select: self.select.clone(),
            leak_loop: self.leak_loop,
            update_constraints: self.update_constraints,
        }
    }
}

/// A time limit: a whole number of at least 1 (0 would mean no limit, which is not offered).
fn at_least_one(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("0 would mean no limit; give at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}")),
    }
}
