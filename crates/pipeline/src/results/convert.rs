//! The one place where the stages' results become report.json's types: `build`'s outcome,
//! `regrtest`'s run and `exttest`'s suite results (findings, evidence, growth not judged)
//! are converted field by field, so a rename in a stage crate is a compile error here,
//! never a silent change of the file users and CI parse. A new field of a stage's result
//! reaches report.json in three steps: the field in `report`'s type (`#[serde(default)]`,
//! so older documents still read), its conversion here, and `UPDATE_EXPECT=1 cargo test -p
//! report`, which regenerates the published schema. Pure.

use report::PhaseStatus;

/// A cell's build and interpreter check.
pub(crate) fn cell_build(outcome: &builder::CellOutcome) -> report::CellBuild {
    report::CellBuild {
        key: outcome.key.clone(),
        build: build_status(&outcome.build),
        check: check_status(&outcome.check),
    }
}

fn build_status(status: &builder::BuildStatus) -> report::BuildStatus {
    match status {
        builder::BuildStatus::Cached => report::BuildStatus::Cached,
        builder::BuildStatus::Built { seconds } => report::BuildStatus::Built { seconds: *seconds },
        builder::BuildStatus::Failed { phase, message, log, tail } => report::BuildStatus::Failed {
            phase: match phase {
                builder::BuildStep::Configure => report::BuildStep::Configure,
                builder::BuildStep::Make => report::BuildStep::Make,
                builder::BuildStep::Install => report::BuildStep::Install,
            },
            message: message.clone(),
            log: log.clone(),
            tail: tail.clone(),
        },
        builder::BuildStatus::Cancelled => report::BuildStatus::Cancelled,
    }
}

fn check_status(status: &builder::CheckStatus) -> report::CheckStatus {
    match status {
        builder::CheckStatus::Passed => report::CheckStatus::Passed,
        builder::CheckStatus::Mismatch { diff } => {
            report::CheckStatus::Mismatch { diff: diff.clone() }
        }
        builder::CheckStatus::Error { message } => {
            report::CheckStatus::Error { message: message.clone() }
        }
        builder::CheckStatus::NotRun => report::CheckStatus::NotRun,
    }
}

/// A run of CPython's tests: `passed` if regrtest's verdict is a pass, `failed` if not,
/// `error` without a verdict, `not-run` if it did not run.
pub(crate) fn cpython_run(run: &regrtest::TestRun) -> report::CpythonRun {
    let status = match &run.outcome {
        regrtest::Outcome::Evaluated(_) if run.ok() => PhaseStatus::Passed,
        regrtest::Outcome::Evaluated(_) => PhaseStatus::Failed,
        regrtest::Outcome::Error { .. } => PhaseStatus::Error,
        regrtest::Outcome::NotRun { .. } => PhaseStatus::NotRun,
    };
    report::CpythonRun {
        profile: run.profile.clone(),
        status,
        seconds: run.seconds,
        line: run.line(),
    }
}

/// A suite's results on a cell (the tests that ran, which only `[[expected]]` needed, are
/// not recorded).
pub(crate) fn suite(result: &exttest::SuiteResult) -> report::SuiteResult {
    let c = &result.counts;
    report::SuiteResult {
        cell: result.cell.clone(),
        suite: result.suite.clone(),
        counts: report::Counts {
            passed: c.passed,
            failed: c.failed,
            skipped: c.skipped,
            leak_judged: c.leak_judged,
            leak_not_judged: c.leak_not_judged,
            not_rerunnable: c.not_rerunnable,
        },
        findings: result.findings.iter().map(finding).collect(),
        modules: result.modules.clone(),
        detectors: result.detectors.clone(),
        log: result.log.clone(),
        seconds: result.seconds,
        gil_enabled: result.gil_enabled,
        grew_not_judged: result
            .grew_not_judged
            .iter()
            .map(|n| report::NotJudged { test: n.test.clone(), reason: n.reason.clone() })
            .collect(),
        leak_loops: result
            .leak_loops
            .iter()
            .map(|l| report::LeakLoop {
                test: l.test.clone(),
                refs: l.refs.clone(),
                blocks: l.blocks.clone(),
            })
            .collect(),
        environment: result.environment.as_ref().map(environment),
    }
}

/// What a suite's tests ran with.
fn environment(e: &exttest::Environment) -> report::Environment {
    let package = |p: &exttest::Package| report::Package {
        name: p.name.clone(),
        version: p.version.clone(),
        source: match p.source {
            exttest::PackageSource::Wheel => report::PackageSource::Wheel,
            exttest::PackageSource::Sdist => report::PackageSource::Sdist,
            exttest::PackageSource::Local => report::PackageSource::Local,
            exttest::PackageSource::Venv => report::PackageSource::Venv,
        },
    };
    report::Environment {
        pip: e.pip.clone(),
        pytest: e.pytest.clone(),
        project: e.project.clone(),
        constraints: e.constraints.clone(),
        packages: e.packages.iter().map(package).collect(),
        build: e.build.iter().map(package).collect(),
    }
}

fn finding(f: &exttest::Finding) -> report::Finding {
    report::Finding {
        kind: kind(f.kind),
        test: f.test.clone(),
        message: f.message.clone(),
        repro: f.repro.clone(),
        expected: f.expected.clone(),
        evidence: f.evidence.as_deref().map(|e| Box::new(evidence(e))),
    }
}

fn kind(kind: exttest::FindingKind) -> report::FindingKind {
    use exttest::FindingKind as K;
    use report::FindingKind as R;
    match kind {
        K::RefLeak => R::RefLeak,
        K::InvalidMemory => R::InvalidMemory,
        K::MemoryLeak => R::MemoryLeak,
        K::FatalError => R::FatalError,
        K::Sanitizer => R::Sanitizer,
        K::DataRace => R::DataRace,
        K::UndefinedBehavior => R::UndefinedBehavior,
        K::GilEnabled => R::GilEnabled,
        K::ThreadSafety => R::ThreadSafety,
        K::Crash => R::Crash,
        K::Hang => R::Hang,
        K::TestFailure => R::TestFailure,
        K::CollectionError => R::CollectionError,
        K::Setup => R::Setup,
        K::ExpectedMissing => R::ExpectedMissing,
        K::OrderDependent => R::OrderDependent,
    }
}

fn evidence(e: &exttest::evidence::LeakEvidence) -> report::LeakEvidence {
    use exttest::evidence as x;
    let shape = |s: x::Shape| match s {
        x::Shape::Linear => report::Shape::Linear,
        x::Shape::Stops => report::Shape::Stops,
        x::Shape::Flattens => report::Shape::Flattens,
        x::Shape::Unknown => report::Shape::Unknown,
    };
    report::LeakEvidence {
        calls: e.calls,
        new_objects: e.new_objects.clone(),
        containers: e
            .containers
            .iter()
            .map(|c| report::GrownContainer {
                name: c.name.clone(),
                kind: c.kind.clone(),
                per_call: c.per_call,
            })
            .collect(),
        orphans: e.orphans,
        invisible_entries: e.invisible_entries.clone(),
        refcounts: e
            .refcounts
            .iter()
            .map(|r| report::GrownRefcount {
                object: r.object.clone(),
                per_call: r.per_call,
                unexplained: r.unexplained,
            })
            .collect(),
        retained_check: e.retained_check.clone(),
        persistence: e.persistence.as_ref().map(|p| report::Persistence {
            calls: p.calls,
            seconds: p.seconds,
            batches: p.batches.clone(),
            refs: p.refs.map(shape),
            blocks: p.blocks.map(shape),
        }),
        persistence_note: e.persistence_note.clone(),
        allocations: e
            .allocations
            .iter()
            .map(|a| report::Allocation {
                r#where: a.r#where.clone(),
                blocks_per_call: a.blocks_per_call,
                bytes_per_call: a.bytes_per_call,
            })
            .collect(),
        allocations_error: e.allocations_error.clone(),
        seconds: e.seconds,
        twin: e.twin.as_ref().map(|t| report::TwinResult {
            env: t.env.clone(),
            refs: t.refs.clone(),
            blocks: t.blocks.clone(),
            grows: t.grows,
            note: t.note.clone(),
        }),
        deferred: e.deferred,
    }
}

/// What report.json keeps of a `build --check` that compared its trees; `None` when the
/// check could not run (not built, in use, the rebuild failed, cancelled).
pub(crate) fn reproducibility(
    outcome: &builder::repro::ReproOutcome,
) -> Option<report::Reproducibility> {
    let builder::repro::ReproOutcome::Compared { comparison, embedded, varied, seconds, .. } =
        outcome
    else {
        return None;
    };
    Some(report::Reproducibility {
        identical: comparison.identical,
        differing: comparison
            .differences
            .iter()
            .map(|d| report::DifferingFile { path: d.path.to_string(), what: d.what.clone() })
            .collect(),
        naming_build_dirs: embedded
            .iter()
            .filter(|e| e.allowed.is_none())
            .map(|e| e.path.to_string())
            .collect(),
        varied: varied.clone(),
        seconds: *seconds,
    })
}

#[cfg(test)]
mod tests;
