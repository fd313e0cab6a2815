//! `cargo xtask bench --leaks`: what leak hunting costs, timed on one cell.

use std::{fs, time::Instant};

use anyhow::{Context as _, bail};
use process::RunError;

use crate::{
    detect::Detectors,
    events::{self, Exit},
    finding::{Finding, FindingKind},
    invocation::{BenchMode, RunKind, TestRuns},
    result::Counts,
    setup::{CellEnv, prepare},
    suite::Suite,
    twin,
};

/// `cargo xtask bench --leaks SUITE`: the suite's test run on one cell timed plainly (no leak
/// hunting), with leak hunting as it runs by default (screen, then the full protocol for
/// suspects), and with the full protocol for every test (`--dm-leak-screen=0:0`, regrtest's
/// `-R 3:3` per test); the rounds alternate, so noise lands on all three alike.
#[derive(Debug, Clone)]
pub struct LeakBench {
    /// The cell.
    pub cell: matrix::CellId,
    /// The suite.
    pub suite: String,
    /// Tests in the suite's run (passed, failed, skipped).
    pub tests: u64,
    /// Tests judged for leaks in the hunted run.
    pub judged: u64,
    /// Seconds per round: plain, hunted, full protocol.
    pub rounds: Vec<[f64; 3]>,
}

impl LeakBench {
    /// The table `cargo xtask bench --leaks` prints: median of each, ratio to plain.
    pub fn render(&self) -> String {
        let median = |k: usize| {
            let mut v: Vec<f64> = self.rounds.iter().map(|r| r[k]).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        let plain = median(0).max(1e-9);
        let mut out = format!(
            "leak hunting on {} ({} tests, {} judged), median of {} alternating rounds:\n",
            self.suite,
            self.tests,
            self.judged,
            self.rounds.len()
        );
        for (k, what) in [
            "plain run (no leak hunting)",
            "leak hunting (screen, protocol, judgement, twin)",
            "full protocol for every test (3:3, regrtest -R style)",
        ]
        .iter()
        .enumerate()
        {
            out.push_str(&format!(
                "{what:55} {:8.2}s  {:5.1}x plain\n",
                median(k),
                median(k) / plain
            ));
        }
        out
    }
}

/// The tests of the `ref-leak` findings.
fn leak_tests(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.kind == FindingKind::RefLeak)
        .filter_map(|f| f.test.clone())
        .collect()
}

/// Sets the suite up on the cell (as [`crate::runs::run_suite`] does), then times its test run `rounds`
/// times in each of the three modes of [`LeakBench`].
pub fn bench_leaks(
    env: &CellEnv<'_>,
    suite: &Suite,
    detectors: &Detectors,
    rounds: usize,
) -> anyhow::Result<LeakBench> {
    anyhow::ensure!(
        suite.test_command.is_none(),
        "suite `{}` has its own test command: no leak hunting to time",
        suite.name
    );
    anyhow::ensure!(detectors.leaks, "{} has no leak hunting (not a Py_REF_DEBUG cell)", env.cell);
    let dir = env.cell_dirs.suite(&suite.name).root;
    let prepared = prepare(env, suite, detectors, &dir)?;
    let switch = twin::switch(suite, &prepared.installed.dist);
    let runs = TestRuns {
        cpython_source: &env.cpython_source,
        suite,
        detectors,
        prepared: &prepared,
        twin: &switch,
    };
    let bench_dir = dir.join("bench");
    fs::create_dir_all(&bench_dir).with_context(|| format!("creating {bench_dir}"))?;
    let mut result = LeakBench {
        cell: env.cell.clone(),
        suite: suite.name.clone(),
        tests: 0,
        judged: 0,
        rounds: Vec::new(),
    };
    for round in 0..rounds {
        let mut times = [0.0; 3];
        for (k, mode) in BenchMode::ALL.into_iter().enumerate() {
            let results = bench_dir.join(format!("events-{round}-{k}.jsonl"));
            let log = bench_dir.join(format!("run-{round}-{k}.log"));
            let _ = fs::remove_file(&results);
            let _ = fs::remove_file(&log);
            let cmd = runs.invocation(RunKind::Bench(mode), &results);
            let started = Instant::now();
            match cmd.run(&log, env.cancel) {
                Ok(()) => {}
                Err(RunError::Failed(status)) if status.code() == Some(1) => {}
                Err(e) => bail!("the timed run failed ({e:?}); log: {log}"),
            }
            let evs = events::parse_events(&fs::read_to_string(&results).unwrap_or_default());
            if mode == BenchMode::Hunted && !switch.is_empty() {
                // As `cargo xtask test` does: the twin of the leaks, then the evidence of
                // those it does not explain, timed with the run.
                let mut findings = events::evaluate(&evs, &Exit::Code(0), "");
                let leaks = leak_tests(&findings);
                if !leaks.is_empty() {
                    let twin_results = bench_dir.join(format!("events-{round}-twin.jsonl"));
                    let cmd = runs.invocation(
                        RunKind::Twin { targets: &leaks, switch: &switch },
                        &twin_results,
                    );
                    let _ = cmd.run(&bench_dir.join(format!("run-{round}-twin.log")), env.cancel);
                    let twin_events = events::parse_events(
                        &fs::read_to_string(&twin_results).unwrap_or_default(),
                    );
                    let signals = ["refs", "blocks"];
                    let found =
                        twin::results(&twin::describe(&switch), &leaks, &twin_events, &signals);
                    twin::apply(&mut findings, &mut Counts::default(), &found);
                    let rest = leak_tests(&findings);
                    if !rest.is_empty() {
                        let evidence = bench_dir.join(format!("events-{round}-evidence.jsonl"));
                        let cmd = runs.invocation(RunKind::Evidence { targets: &rest }, &evidence);
                        let _ = cmd
                            .run(&bench_dir.join(format!("run-{round}-evidence.log")), env.cancel);
                    }
                }
            }
            times[k] = started.elapsed().as_secs_f64();
            if round == 0 && mode == BenchMode::Hunted {
                let counts = events::count(&evs);
                result.tests = counts.passed + counts.failed + counts.skipped;
                result.judged = counts.leak_judged;
            }
        }
        result.rounds.push(times);
    }
    Ok(result)
}
