//! Turns cells into installed interpreters that keep their promise.
//!
//! For each distinct build (cells whose [`configure::BuildPlan`] has the same key share one),
//! [`Builder::build`] runs, in `<work>/builds/<key16>/build/`:
//!
//! 1. `<source>/configure --prefix=… <args>`, skipped when `configure.done` says it finished;
//! 2. `make -jN <make args>` (incremental, so an interrupted build resumes);
//! 3. `make install` into a fresh `prefix/`;
//! 4. `manifest.json`, written last, with the installed interpreter's path, size and
//!    sha256: only a build whose manifest parses and whose interpreter is still that file is
//!    complete and skipped ([`prefix::damage`]); a damaged one is built again.
//!
//! Then every cell's interpreter is run with the cell's runtime environment and compared with
//! its variant's promise (the `probe` crate). A failing phase marks its cell failed with the
//! log's tail and path; other cells go on. Cancellation (Ctrl-C, via the shared flag) kills
//! every running process group and marks nothing complete.

pub mod bench;
pub mod detect;
pub mod prefix;
pub mod repro;

use std::{
    collections::BTreeMap,
    fs,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use configure::{BuildPlan, Toolchain};
use matrix::Cell;
use serde::{Deserialize, Serialize};
use workdir::{BuildDirs, Layout};

use process::{RunError, run_logged};

/// The longest one build phase (configure, make, install) may take unless told otherwise.
pub const DEFAULT_PHASE_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// How builds are run.
#[derive(Debug, Clone)]
pub struct Options {
    /// `make -j` of each build.
    pub make_jobs: usize,
    /// How many builds run side by side.
    pub parallel_builds: usize,
    /// Longest any one phase may take.
    pub phase_timeout: Duration,
    /// Seed configure with the `config.cache` of an earlier build of the same group
    /// (see `configure::BuildPlan::config_cache_group`), like CPython's CI `--config-cache`.
    pub share_config_cache: bool,
}

/// A cell to build, with its extracted source tree.
#[derive(Debug, Clone)]
pub struct Job<'m> {
    /// The cell.
    pub cell: Cell<'m>,
    /// Its release's verified, extracted source.
    pub source_dir: Utf8PathBuf,
}

/// A step of a build: the step that failed, and the name of its log and timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildStep {
    /// `./configure` (and what prepares it: the lock, the source tree's check).
    Configure,
    /// `make`.
    Make,
    /// `make install` (and recording the installed interpreter in the manifest).
    Install,
}

impl BuildStep {
    /// `configure`, `make`, `install`.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStep::Configure => "configure",
            BuildStep::Make => "make",
            BuildStep::Install => "install",
        }
    }
}

impl std::fmt::Display for BuildStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a cell's build ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum BuildStatus {
    /// A complete build with the same key already existed.
    Cached,
    /// Built in this run.
    Built {
        /// Wall-clock seconds for configure + make + install.
        seconds: u64,
    },
    /// A phase failed.
    Failed {
        /// The step that failed.
        phase: BuildStep,
        /// Why.
        message: String,
        /// The phase's log.
        log: Utf8PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// The run was interrupted; nothing was marked complete.
    Cancelled,
}

/// Whether a cell's interpreter keeps its promise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum CheckStatus {
    /// Every promised fact holds.
    Passed,
    /// Some do not: the rendered diff.
    Mismatch {
        /// One line per broken promise.
        diff: String,
    },
    /// The interpreter could not be probed.
    Error {
        /// Why.
        message: String,
    },
    /// Not checked because the build did not complete.
    NotRun,
}

/// The outcome of one cell.
#[derive(Debug, Clone)]
pub struct CellOutcome {
    /// `3.13.5+debug`.
    pub cell: matrix::CellId,
    /// The build's cache key.
    pub key: String,
    /// The build's directories.
    pub dirs: BuildDirs,
    /// The build.
    pub build: BuildStatus,
    /// The interpreter check.
    pub check: CheckStatus,
}

impl CellOutcome {
    /// Whether the cell is usable: built and keeping its promise.
    pub fn ok(&self) -> bool {
        matches!(self.build, BuildStatus::Cached | BuildStatus::Built { .. })
            && self.check == CheckStatus::Passed
    }
}

/// What `manifest.json` records about a complete build.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// The full cache key.
    pub key: String,
    /// The cells that asked for this build first.
    pub cells: Vec<String>,
    /// The configure command line.
    pub configure: Vec<String>,
    /// Extra make arguments.
    pub make: Vec<String>,
    /// The fixed build environment.
    pub env: BTreeMap<String, String>,
    /// The compiler identity.
    pub compiler: String,
    /// The compiler's target.
    pub target: String,
    /// What configure would have found when the build was made ([`detect::detect`]).
    #[serde(default)]
    pub detected: Vec<String>,
    /// Seconds the build took.
    pub seconds: u64,
    /// Seconds per phase run in the final, completing run (configure is absent when a
    /// previous, interrupted run finished it).
    pub phases: BTreeMap<String, u64>,
    /// The installed interpreter (absent in manifests of older versions, which are therefore
    /// built again).
    #[serde(default)]
    pub interpreter: Option<prefix::Interpreter>,
}

/// Reads the machine's toolchain identity (`cc --version`, `cc -dumpmachine`: two short
/// synchronous commands, run with xshell) and what configure would find along its include
/// path ([`detect`]: a few `stat`s).
pub fn read_toolchain() -> anyhow::Result<Toolchain> {
    let sh = xshell::Shell::new().context("creating a shell")?;
    let first_line = |arg: &str| -> anyhow::Result<String> {
        let out = xshell::cmd!(sh, "cc {arg}")
            .quiet()
            .read()
            .with_context(|| format!("running `cc {arg}`: is a C compiler installed?"))?;
        Ok(out.lines().next().unwrap_or("").trim().to_owned())
    };
    let target = first_line("-dumpmachine")?;
    Ok(Toolchain {
        compiler: first_line("--version")?,
        detected: detect::detect(&detect::include_path(&target)),
        target,
    })
}

/// Builds and checks cells.
pub struct Builder<'a> {
    layout: &'a Layout,
    toolchain: Toolchain,
    options: Options,
    cancel: Arc<AtomicBool>,
    progress: indicatif::MultiProgress,
}

impl<'a> Builder<'a> {
    /// A builder writing under `layout`, stopping when `cancel` is set.
    pub fn new(
        layout: &'a Layout,
        toolchain: Toolchain,
        options: Options,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        Builder { layout, toolchain, options, cancel, progress: indicatif::MultiProgress::new() }
    }

    /// The build plan of `cell` on this machine.
    pub fn plan(&self, cell: &Cell<'_>) -> BuildPlan {
        configure::plan(cell, &self.toolchain)
    }

    /// Builds every job's cell (each distinct build once) and checks each interpreter.
    pub fn build(&self, jobs: &[Job<'_>]) -> Vec<CellOutcome> {
        // One build per key; cells sharing a key wait for the same build.
        let mut builds: Vec<(BuildPlan, &Job<'_>, Vec<String>)> = Vec::new();
        for job in jobs {
            let plan = self.plan(&job.cell);
            match builds.iter_mut().find(|(p, _, _)| p.key == plan.key) {
                Some((_, _, cells)) => cells.push(job.cell.name()),
                None => builds.push((plan, job, vec![job.cell.name()])),
            }
        }
        let queue = Mutex::new(builds.iter().collect::<Vec<_>>().into_iter());
        let results: Mutex<BTreeMap<String, BuildStatus>> = Mutex::new(BTreeMap::new());
        std::thread::scope(|scope| {
            for _ in 0..self.options.parallel_builds.max(1) {
                scope.spawn(|| {
                    loop {
                        let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                        let Some((plan, job, cells)) = next else { break };
                        let status = self.build_one(plan, job, cells);
                        if let Ok(mut r) = results.lock() {
                            r.insert(plan.key.clone(), status);
                        }
                    }
                });
            }
        });
        let results = results.into_inner().unwrap_or_default();
        jobs.iter()
            .map(|job| {
                let plan = self.plan(&job.cell);
                let dirs = self.layout.build(&plan.key);
                let build = results.get(&plan.key).cloned().unwrap_or(BuildStatus::Cancelled);
                let check = match build {
                    BuildStatus::Cached | BuildStatus::Built { .. } if !self.cancelled() => {
                        self.check(&job.cell, &plan, &dirs)
                    }
                    _ => CheckStatus::NotRun,
                };
                CellOutcome { cell: job.cell.id(), key: plan.key.clone(), dirs, build, check }
            })
            .collect()
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    fn say(&self, line: String) {
        if self.progress.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.progress.println(line);
        }
    }

    fn build_one(&self, plan: &BuildPlan, job: &Job<'_>, cells: &[String]) -> BuildStatus {
        let dirs = self.layout.build(&plan.key);
        let label = cells.join(", ");
        // Another run making the same build is waited for; then its manifest says cached.
        let what = format!("the build {} ({label})", plan.short_key());
        let _lock = match worklock::acquire(&self.layout.build_lock(&plan.key), &what, &self.cancel)
        {
            Ok(held) => held,
            Err(worklock::LockError::Cancelled { .. }) => return BuildStatus::Cancelled,
            Err(e) => return failed(BuildStep::Configure, e.to_string(), &dirs.root),
        };
        if fs::symlink_metadata(&dirs.manifest).is_ok() {
            match prefix::damage(&dirs, &plan.key) {
                None => {
                    self.say(format!("{label}: cached build {} (no work)", plan.short_key()));
                    return BuildStatus::Cached;
                }
                Some(why) => {
                    // Never trusted: without the manifest the build is incomplete, so an
                    // interrupted rebuild is not taken for cached either.
                    self.say(format!(
                        "{label}: the build {} is damaged: {why}; building it again",
                        plan.short_key()
                    ));
                    if let Err(e) = fs::remove_file(&dirs.manifest) {
                        return failed(
                            BuildStep::Install,
                            format!(
                                "the build is damaged ({why}) and {} could not be removed \
                                 ({e}); delete {} and rerun",
                                dirs.manifest, dirs.root
                            ),
                            &dirs.manifest,
                        );
                    }
                }
            }
        }
        if self.cancelled() {
            return BuildStatus::Cancelled;
        }
        if let Some(why) = detect::changed_since_earlier(
            &self.layout.builds_dir(),
            &cells[0],
            &self.toolchain.detected,
        ) {
            self.say(format!("{label}: not reusing an earlier build: {why}; building anew"));
        }
        let users = prefix::users_of(&dirs.build);
        if !users.is_empty() {
            return failed(
                BuildStep::Configure,
                format!(
                    "{} is in use by process {}, left by an earlier run; it is never built into \
                     while in use: wait for it to end or kill it, then rerun",
                    dirs.build,
                    users.join(", ")
                ),
                &dirs.root,
            );
        }
        let bar = self.progress.add(indicatif::ProgressBar::new_spinner());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {prefix:28} {msg:10} {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_prefix(label.clone());
        bar.enable_steady_tick(Duration::from_millis(200));
        let started = Instant::now();
        let result = self.run_phases(plan, job, &dirs, &bar, &label, None);
        bar.finish_and_clear();
        match result {
            Ok(phases) => {
                let seconds = started.elapsed().as_secs();
                let interpreter = match prefix::record(&dirs) {
                    Ok(i) => i,
                    Err(why) => {
                        return failed(
                            BuildStep::Install,
                            why,
                            &dirs.log(BuildStep::Install.as_str()),
                        );
                    }
                };
                let manifest = Manifest {
                    key: plan.key.clone(),
                    cells: cells.to_vec(),
                    configure: plan.configure_line(&job.source_dir, &dirs.prefix),
                    make: plan.make_args.clone(),
                    env: plan.env.clone(),
                    compiler: self.toolchain.compiler.clone(),
                    target: self.toolchain.target.clone(),
                    detected: self.toolchain.detected.clone(),
                    seconds,
                    phases,
                    interpreter: Some(interpreter),
                };
                if let Err(e) = process::write_json_atomically(&dirs.manifest, &manifest) {
                    return failed(
                        BuildStep::Install,
                        format!("writing {}: {e:#}", dirs.manifest),
                        &dirs.manifest,
                    );
                }
                self.say(format!("{label}: built in {seconds}s ({})", dirs.root));
                BuildStatus::Built { seconds }
            }
            Err(status) => {
                if let BuildStatus::Failed { phase, log, tail, .. } = &status {
                    self.say(format!("{label}: {phase} FAILED, log {log}\n{tail}"));
                }
                status
            }
        }
    }

    fn run_phases(
        &self,
        plan: &BuildPlan,
        job: &Job<'_>,
        dirs: &BuildDirs,
        bar: &indicatif::ProgressBar,
        label: &str,
        variation: Option<&repro::Variation>,
    ) -> Result<BTreeMap<String, u64>, BuildStatus> {
        // Never build from a tree changed since it was verified and extracted.
        if let Err(why) = extract::check_tree(&job.source_dir) {
            return Err(failed(
                BuildStep::Configure,
                format!("{why}; run `cargo xtask fetch` to extract it again"),
                &job.source_dir,
            ));
        }
        let timings = Mutex::new(BTreeMap::new());
        let phase = |step: BuildStep, argv: Vec<String>| -> Result<(), BuildStatus> {
            let name = step.as_str();
            let started = Instant::now();
            bar.set_message(name.to_owned());
            if self.progress.is_hidden() {
                eprintln!("{label}: {name}…");
            }
            let log = dirs.log(name);
            // The plan's umask inside; a check's varied one outside it (which it must not
            // reach).
            let program = argv[0].clone();
            let argv = repro::under_umask(configure::UMASK, argv);
            let argv = match variation {
                Some(v) => repro::under_umask(&v.umask, argv),
                None => argv,
            };
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]).current_dir(&dirs.build);
            for var in configure::SCRUBBED_ENV {
                cmd.env_remove(var);
            }
            cmd.envs(&plan.env);
            if let Some(v) = variation {
                cmd.envs(&v.env);
            }
            match run_logged(cmd, &log, &self.cancel, Some(self.options.phase_timeout)) {
                Ok(()) => {
                    if let Ok(mut t) = timings.lock() {
                        t.insert(name.to_owned(), started.elapsed().as_secs());
                    }
                    Ok(())
                }
                Err(RunError::Cancelled) => Err(BuildStatus::Cancelled),
                Err(RunError::Failed(status)) => {
                    Err(failed(step, format!("exited with {status}"), &log))
                }
                Err(RunError::TimedOut(t)) => {
                    Err(failed(step, format!("timed out after {}s", t.as_secs()), &log))
                }
                Err(RunError::Io(e)) => {
                    Err(failed(step, format!("could not run {program}: {e}"), &log))
                }
            }
        };
        let io_fail = |what: String, e: std::io::Error| {
            failed(BuildStep::Configure, format!("{what}: {e}"), &dirs.root)
        };
        let makefile = dirs.build.join("Makefile");
        if !dirs.configure_done.is_file() || !makefile.is_file() {
            // A configure that did not finish leaves nothing worth keeping.
            let _ = fs::remove_dir_all(&dirs.build);
            let _ = fs::remove_dir_all(&dirs.logs);
            fs::create_dir_all(&dirs.build)
                .map_err(|e| io_fail(format!("creating {}", dirs.build), e))?;
            // configure by a relative path: `srcdir` and `VPATH` are then relative (the same
            // in every work directory), and the interpreter, which compiles `VPATH` in
            // (getpath.c), names no directory of the build.
            let source = relative_path(&dirs.build, &job.source_dir);
            let mut line = plan.configure_line(&source, &dirs.prefix);
            let seed = self.config_cache_seed(plan);
            if let Some(seed) = &seed {
                // A rebuild that checks reproducibility has the same configure line but
                // starts from an empty cache, and offers nothing to later builds.
                let cache = dirs.build.join("config.cache");
                if variation.is_none() && fs::copy(seed, &cache).is_ok() {
                    bar.set_message("configure (seeded)");
                }
                // Relative to the build directory, where configure runs (it is recorded in
                // sysconfig's CONFIG_ARGS).
                line.push("--cache-file=config.cache".to_owned());
            }
            let seed = seed.filter(|_| variation.is_none());
            phase(BuildStep::Configure, line)?;
            if !makefile.is_file() {
                // configure can exit 0 without a Makefile (a source path with a space): then
                // nothing is marked done and the next run configures again.
                return Err(failed(
                    BuildStep::Configure,
                    format!("configure exited 0 but wrote no {makefile}"),
                    &dirs.log(BuildStep::Configure.as_str()),
                ));
            }
            if let Some(seed) = &seed {
                // Offer this build's results to the next build of the group (atomically).
                let tmp = Utf8PathBuf::from(format!("{seed}.{}.tmp", std::process::id()));
                let copied = seed
                    .parent()
                    .map(fs::create_dir_all)
                    .transpose()
                    .and_then(|_| fs::copy(dirs.build.join("config.cache"), &tmp))
                    .and_then(|_| fs::rename(&tmp, seed));
                if copied.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
            }
            fs::write(&dirs.configure_done, &plan.key)
                .map_err(|e| io_fail(format!("writing {}", dirs.configure_done), e))?;
        }
        let jobs = variation.map_or(self.options.make_jobs, |v| v.make_jobs);
        let mut make = vec!["make".to_owned(), format!("-j{}", jobs.max(1))];
        make.extend(plan.make_args.iter().cloned());
        let build_dir = dirs.build.canonicalize_utf8().unwrap_or_else(|_| dirs.build.clone());
        make.extend(plan.prefix_map_args(&job.source_dir, &build_dir));
        phase(BuildStep::Make, make)?;
        // Install into a fresh prefix, so no file from an interrupted install survives.
        let _ = fs::remove_dir_all(&dirs.prefix);
        let mut install = vec!["make".to_owned(), "install".to_owned()];
        install.extend(plan.make_args.iter().cloned());
        install.extend(plan.prefix_map_args(&job.source_dir, &build_dir));
        phase(BuildStep::Install, install)?;
        Ok(timings.into_inner().unwrap_or_default())
    }

    fn config_cache_seed(&self, plan: &BuildPlan) -> Option<Utf8PathBuf> {
        let group = plan.config_cache_group.as_ref().filter(|_| self.options.share_config_cache)?;
        Some(self.layout.config_cache(group))
    }

    fn check(&self, cell: &Cell<'_>, plan: &BuildPlan, dirs: &BuildDirs) -> CheckStatus {
        let record = self.layout.cell(cell).check_record();
        // The interpreter's digest too: a rebuilt interpreter is probed again.
        let interpreter = fs::read_to_string(&dirs.manifest)
            .ok()
            .and_then(|text| serde_json::from_str::<Manifest>(&text).ok())
            .and_then(|m| m.interpreter)
            .map(|i| i.sha256)
            .unwrap_or_default();
        let identity =
            format!("{}|{interpreter}|{:?}|{:?}", plan.key, cell.variant.promise, plan.runtime_env);
        #[derive(Serialize, Deserialize)]
        struct Record {
            identity: String,
            status: CheckStatus,
        }
        if let Ok(text) = fs::read_to_string(&record)
            && let Ok(r) = serde_json::from_str::<Record>(&text)
            && r.identity == identity
            && r.status == CheckStatus::Passed
        {
            return r.status;
        }
        let status = match probe::probe(&dirs.python(), &plan.runtime_env) {
            Err(e) => CheckStatus::Error { message: e.to_string() },
            Ok(facts) => {
                let mismatches = probe::compare(&cell.variant.promise, &facts);
                if mismatches.is_empty() {
                    CheckStatus::Passed
                } else {
                    CheckStatus::Mismatch { diff: probe::render_diff(&mismatches) }
                }
            }
        };
        match &status {
            CheckStatus::Passed => {
                let _ = process::write_json_atomically(
                    &record,
                    &Record { identity, status: status.clone() },
                );
            }
            CheckStatus::Mismatch { diff } => {
                self.say(format!(
                    "{}: interpreter does not keep its promise:\n{diff}",
                    cell.name()
                ));
            }
            CheckStatus::Error { message } => {
                self.say(format!("{}: check failed: {message}", cell.name()))
            }
            CheckStatus::NotRun => {}
        }
        status
    }
}

/// `to` as a path relative to the directory `from` (both resolved first, so a symlinked
/// work directory still leads to the right place); `to` itself when either cannot be
/// resolved.
pub fn relative_path(from: &Utf8Path, to: &Utf8Path) -> Utf8PathBuf {
    let (Ok(from), Ok(to)) = (from.canonicalize_utf8(), to.canonicalize_utf8()) else {
        return to.to_owned();
    };
    let (a, b): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = Utf8PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for part in &b[common..] {
        out.push(part.as_str());
    }
    out
}

fn failed(phase: BuildStep, message: String, log: &Utf8Path) -> BuildStatus {
    BuildStatus::Failed {
        phase,
        message,
        log: log.to_owned(),
        tail: process::tail_of_file(log, 25),
    }
}
