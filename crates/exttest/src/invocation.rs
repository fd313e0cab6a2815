//! The one builder of the processes extension testing spawns (cargo's `ProcessBuilder` is the
//! model): an [`Invocation`] holds the argument vector, the environment (set after the
//! inherited `PYTHON*` variables are scrubbed), the working directory and the time limit.
//! [`TestRuns::invocation`] builds every test run of a suite from its [`RunKind`] (the plain
//! run and its restarts, the plain confirmation of leak-hunting failures, race hunting, the
//! leak benchmark); [`sanitizer_env`] is the one place that spells `TSAN_OPTIONS` and
//! `UBSAN_OPTIONS`. Building is pure; [`Invocation::run`] and [`Invocation::output`] spawn.

use std::{
    process::{Command, Output},
    sync::atomic::AtomicBool,
    time::Duration,
};

use camino::{Utf8Path, Utf8PathBuf};
use process::RunError;

use crate::{detect::Detectors, prepared::Prepared, suite::Suite};

/// The time limit of one set-up step (creating the venv, a pip install, the extension's
/// build, the sdist's download).
pub(crate) const SETUP_LIMIT: Duration = Duration::from_secs(900);

/// The time limit of one test run (each restart has its own), of the plain confirmation of
/// failures and of the race-hunting run.
pub(crate) const RUN_LIMIT: Duration = Duration::from_secs(1200);

/// The time limit of one test run under valgrind (about 40 times slower).
pub(crate) const VALGRIND_RUN_LIMIT: Duration = Duration::from_secs(3600);

/// The time limit of one timed run of `cargo xtask bench --leaks`.
pub(crate) const BENCH_LIMIT: Duration = Duration::from_secs(3600);

/// How much longer a test may take under valgrind than its suite's `timeout-seconds`.
const VALGRIND_TEST_TIMEOUT_FACTOR: u64 = 20;

/// How many threads run each test at once in the race-hunting run.
pub(crate) const PARALLEL_THREADS: usize = 4;

/// The directory holding the pytest plugin, for `PYTHONPATH`.
pub fn plugin_dir() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// One process to spawn: what `Command` gets, in one value that tests can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Variables set, in order (a later one wins), after the scrub of inherited `PYTHON*`
    /// and venv variables ([`process::scrub_python_env`]).
    pub env: Vec<(String, String)>,
    /// The working directory; `None`: the tool's.
    pub cwd: Option<Utf8PathBuf>,
    /// The time limit (the whole process group is killed past it).
    pub limit: Duration,
}

impl Invocation {
    /// `program` with no arguments, no environment of its own and the set-up step's limit.
    pub fn new(program: impl AsRef<str>) -> Self {
        Invocation {
            argv: vec![program.as_ref().to_owned()],
            env: Vec::new(),
            cwd: None,
            limit: SETUP_LIMIT,
        }
    }

    /// Appends an argument.
    pub fn arg(mut self, arg: impl AsRef<str>) -> Self {
        self.argv.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.argv.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets a variable.
    pub fn env(mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.env.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Sets variables, in order.
    pub fn envs<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())));
        self
    }

    /// Runs in `dir`.
    pub fn cwd(mut self, dir: impl Into<Utf8PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets the time limit.
    pub fn limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// The value of `key` as the process sees it (the last one set), if this invocation sets it.
    #[cfg(test)]
    pub fn var(&self, key: &str) -> Option<&str> {
        self.env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The `Command`: inherited `PYTHON*` and venv variables scrubbed, then ours set.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        process::scrub_python_env(&mut cmd);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs it with its output appended to `log`, in its own process group, under its time
    /// limit and `cancel` ([`process::run_logged`]).
    pub fn run(&self, log: &Utf8Path, cancel: &AtomicBool) -> Result<(), RunError> {
        process::run_logged(self.command(), log, cancel, Some(self.limit))
    }

    /// Runs a short process to its end and collects its output (no log, no limit).
    pub fn output(&self) -> std::io::Result<Output> {
        self.command().output()
    }
}

/// What a sanitizer's options are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SanitizerUse {
    /// The set-up steps (venv, pip, the extension's build, the inspection): the tool runs
    /// pip there, not the suite. Reports do not fail a step, the variant's own options are
    /// left out (`halt_on_error=0` for UBSan), and pip does not byte-compile what it
    /// installs (under TSan that is most of its time; modules are compiled when imported).
    Setup,
    /// A test run: the variant's options, plus where reports go.
    Run,
}

/// The sanitizer environment on sanitizer cells (empty elsewhere): reports go to
/// `<prefix>.<pid>` (`log_path`, out of reach of pytest's capture), ThreadSanitizer gets the
/// cell's own suppressions and an exit status that is the process's, not the sanitizer's.
pub(crate) fn sanitizer_env(
    detectors: &Detectors,
    cpython_source: &Utf8Path,
    prefix: &Utf8Path,
    purpose: SanitizerUse,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if purpose == SanitizerUse::Setup && (detectors.tsan || detectors.ubsan) {
        out.push(("PIP_NO_COMPILE".to_owned(), "1".to_owned()));
    }
    // A test run adds to the variant's options; a set-up step has only ours.
    let with = |var: &str, extra: String| {
        let base = match purpose {
            SanitizerUse::Run => detectors.env.get(var).map(String::as_str).unwrap_or(""),
            SanitizerUse::Setup => "",
        };
        let joined = if base.is_empty() { extra } else { format!("{base}:{extra}") };
        (var.to_owned(), joined)
    };
    if detectors.tsan {
        // exitcode=0: a race is a finding only where it touches the extension; TSan's own
        // exit status (66) would fail every run on CPython's unsuppressed reports.
        out.push(with(
            "TSAN_OPTIONS",
            format!(
                "suppressions={}:log_path={prefix}:exitcode=0",
                cpython_source.join(tsan_suppressions(detectors))
            ),
        ));
    }
    if detectors.ubsan {
        let extra = match purpose {
            SanitizerUse::Setup => format!("halt_on_error=0:log_path={prefix}"),
            SanitizerUse::Run => format!("log_path={prefix}"),
        };
        out.push(with("UBSAN_OPTIONS", extra));
    }
    out
}

/// The cell's own ThreadSanitizer suppressions, relative to its source tree.
fn tsan_suppressions(detectors: &Detectors) -> &'static str {
    if detectors.free_threaded {
        "Tools/tsan/suppressions_free_threading.txt"
    } else {
        "Tools/tsan/suppressions.txt"
    }
}

/// The `log_path` prefix of the sanitizers for the run whose events go to `results`: the
/// runtime writes `<prefix>.<pid>`.
pub(crate) fn sanitizer_prefix(results: &Utf8Path) -> Utf8PathBuf {
    let name = results.file_stem().unwrap_or("run");
    results.parent().unwrap_or(Utf8Path::new(".")).join("sanitizer").join(name)
}

/// Which of a suite's test runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RunKind<'a> {
    /// The suite's tests with every detector of the cell: the first run, and each restart
    /// after a crash or a hang without the tests in `deselect`.
    Tests {
        /// Node ids left out.
        deselect: &'a [String],
    },
    /// The tests that failed in the leak-hunting run, again, plainly (no leak hunting).
    Confirm {
        /// Their node ids.
        targets: &'a [String],
    },
    /// Race hunting on free-threaded cells: every test run by [`PARALLEL_THREADS`] threads at
    /// once (pytest-run-parallel), no leak hunting, without the tests in `deselect`.
    Races {
        /// Node ids left out (those that crashed or hung in the plain run, and those before).
        deselect: &'a [String],
    },
    /// The `ref-leak` findings' tests again with leak hunting, on the project's pure-Python
    /// implementation ([`crate::twin`]).
    Twin {
        /// Their node ids.
        targets: &'a [String],
        /// The switch to the pure-Python implementation.
        switch: &'a [(String, String)],
    },
    /// The `ref-leak` findings the twin did not explain, again with leak hunting and the
    /// whole judgement (persistence, allocations): their evidence.
    Evidence {
        /// Their node ids.
        targets: &'a [String],
    },
    /// One of `cargo xtask bench --leaks`'s timed runs.
    Bench(BenchMode),
}

/// The three modes `cargo xtask bench --leaks` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BenchMode {
    /// No leak hunting.
    Plain,
    /// Leak hunting as it runs by default (screen, then the full protocol for suspects).
    Hunted,
    /// The full protocol for every test (`--dm-leak-screen=0:0`, regrtest's `-R 3:3`).
    Full,
}

impl BenchMode {
    /// The modes in the order of [`crate::bench::LeakBench::rounds`].
    pub const ALL: [BenchMode; 3] = [BenchMode::Plain, BenchMode::Hunted, BenchMode::Full];
}

/// What every test run of a suite on a cell shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TestRuns<'a> {
    /// The cell's CPython source tree (valgrind's and TSan's suppressions).
    pub cpython_source: &'a Utf8Path,
    /// The suite.
    pub suite: &'a Suite,
    /// The cell's detectors.
    pub detectors: &'a Detectors,
    /// What the set-up left: the venv, the project copy, the run tree, pytest's paths.
    pub prepared: &'a Prepared,
    /// The project's switch to its pure-Python implementation ([`crate::twin::switch`]):
    /// where there is one, the plain run leaves a leak's costly evidence for
    /// [`RunKind::Evidence`], after the twin has had its say.
    pub twin: &'a [(String, String)],
}

impl TestRuns<'_> {
    /// The test run `kind`, its events going to `results`: the suite's own command, or pytest
    /// with our plugin pointed at the tests (see [`crate::layout`]), under valgrind on
    /// valgrind cells; run in the run tree with the plugin importable and the cell's
    /// environment.
    pub fn invocation(&self, kind: RunKind<'_>, results: &Utf8Path) -> Invocation {
        let prepared = self.prepared;
        let suite = self.suite;
        let all_detectors = self.detectors;
        let plain = Detectors { leaks: false, ..all_detectors.clone() };
        let (detectors, deselect, targets, extra, limit): (_, &[String], _, Vec<String>, _) =
            match kind {
                RunKind::Tests { deselect } => {
                    let limit = if all_detectors.valgrind { VALGRIND_RUN_LIMIT } else { RUN_LIMIT };
                    (all_detectors, deselect, None, Vec::new(), limit)
                }
                RunKind::Confirm { targets } => (&plain, &[], Some(targets), Vec::new(), RUN_LIMIT),
                RunKind::Twin { targets, .. } | RunKind::Evidence { targets } => {
                    (all_detectors, &[], Some(targets), Vec::new(), RUN_LIMIT)
                }
                RunKind::Races { deselect } => (
                    &plain,
                    deselect,
                    None,
                    vec![
                        format!("--parallel-threads={PARALLEL_THREADS}"),
                        // The plugin reports the GIL itself (gil events); run-parallel would
                        // fail the run on it.
                        "--ignore-gil-enabled".to_owned(),
                    ],
                    RUN_LIMIT,
                ),
                RunKind::Bench(BenchMode::Plain) => (&plain, &[], None, Vec::new(), BENCH_LIMIT),
                RunKind::Bench(BenchMode::Hunted) => {
                    (all_detectors, &[], None, Vec::new(), BENCH_LIMIT)
                }
                RunKind::Bench(BenchMode::Full) => {
                    (all_detectors, &[], None, vec!["--dm-leak-screen=0:0".to_owned()], BENCH_LIMIT)
                }
            };
        let pytest_args: Vec<&String> = prepared.suite_args.iter().chain(&extra).collect();
        let py = prepared.dir.join("venv/bin/python");
        let mut argv: Vec<String> = Vec::new();
        if detectors.valgrind {
            argv.extend(
                [
                    "valgrind",
                    "--tool=memcheck",
                    "--leak-check=full",
                    "--show-leak-kinds=definite",
                    "--errors-for-leak-kinds=definite",
                    "--num-callers=30",
                    "--child-silent-after-fork=yes",
                ]
                .map(str::to_owned),
            );
            argv.push(format!(
                "--suppressions={}",
                self.cpython_source.join("Misc/valgrind-python.supp")
            ));
        }
        if let Some(command) = &suite.test_command {
            // A suite's own test runner: `python` is the venv's, `{src}` the project copy. No
            // per-test events: findings come from the exit, the output and valgrind.
            for (i, word) in command.iter().enumerate() {
                if i == 0 && word == "python" {
                    argv.push(py.to_string());
                } else {
                    argv.push(word.replace("{src}", prepared.src.as_str()));
                }
            }
        } else {
            argv.push(py.into_string());
            argv.extend(
                ["-m", "pytest", "-p", "debug_matrix_pytest", "-p", "no:cacheprovider"]
                    .map(str::to_owned),
            );
            argv.extend(["-q", "-rfE"].map(str::to_owned));
            argv.push(format!("--dm-results={results}"));
            argv.push(format!("--dm-modules={}", prepared.modules_file));
            let factor = if detectors.valgrind { VALGRIND_TEST_TIMEOUT_FACTOR } else { 1 };
            argv.push(format!("--dm-timeout={}", suite.timeout_seconds * factor));
            argv.push("--dm-mark-stderr".to_owned());
            if detectors.free_threaded
                && !pytest_args.iter().any(|a| a.starts_with("--parallel-threads"))
            {
                // Installed for race hunting; the other runs go without it.
                argv.extend(["-p".to_owned(), "no:run-parallel".to_owned()]);
            }
            if detectors.tsan || detectors.ubsan {
                argv.push(format!("--dm-sanitizer-log={}", sanitizer_prefix(results)));
            }
            if detectors.leaks {
                argv.push("--dm-leaks".to_owned());
                if matches!(kind, RunKind::Tests { .. } | RunKind::Bench(BenchMode::Hunted))
                    && !self.twin.is_empty()
                {
                    argv.push("--dm-leak-evidence=deferred".to_owned());
                }
                if !detectors.leak_signals.is_empty() {
                    argv.push(format!("--dm-leak-signals={}", detectors.leak_signals.join(",")));
                }
            }
            if detectors.valgrind
                && let Some(k) = &suite.valgrind_select
            {
                argv.extend(["-k".to_owned(), k.clone()]);
            }
            for test in deselect {
                argv.push(format!("--deselect={test}"));
            }
            argv.extend(pytest_args.into_iter().cloned());
            argv.extend(prepared.pytest_options.iter().cloned());
            match targets {
                Some(node_ids) => {
                    argv.extend(node_ids.iter().map(|id| prepared.node_root.join(id).into_string()))
                }
                None => argv.extend(prepared.test_paths.iter().cloned()),
            }
        }
        let sanitizers = sanitizer_env(
            detectors,
            self.cpython_source,
            &sanitizer_prefix(results),
            SanitizerUse::Run,
        );
        let switch: &[(String, String)] = match kind {
            RunKind::Twin { switch, .. } => switch,
            _ => &[],
        };
        Invocation::new(&argv[0])
            .args(&argv[1..])
            .cwd(&prepared.run_tree)
            .env("PYTHONPATH", plugin_dir())
            .envs(&detectors.env)
            .envs(sanitizers)
            .envs(switch.iter().map(|(k, v)| (k, v)))
            .limit(limit)
    }
}

#[cfg(test)]
mod tests;
