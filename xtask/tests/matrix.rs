//! End-to-end: the CI cells for real, driven through the `xtask` binary as a user runs
//! `cargo xtask …`. One scenario, in order, because every step reuses the builds of the
//! steps before it (a build of CPython takes minutes):
//!
//! 1. an interrupted build leaves no complete cell and no process behind; the rerun resumes;
//! 2. the CI cells build and keep their promises;
//! 3. changing one variant rebuilds only its cells, a broken configure argument fails its cell
//!    with the log's tail and path while the other cells complete;
//! 4. a warm build of the CI cells does no work; `build --check 3.11.2+debug` (the cheapest
//!    cell) rebuilds it under varied conditions and every installed file is identical, and
//!    no compiled file (nor any file README does not list) names the source or build
//!    directory;
//! 5. `test-cpython --profile smoke` passes on every CI cell;
//! 6. a crashing and a hanging extension test are reported and contained;
//! 7. the example extension's bugs are found exactly on the cells that can see them, and are
//!    accepted there by their `[[expected]]` entries (exit 0); an expected finding that does
//!    not appear fails the run;
//! 8. markupsafe's suite passes everywhere with its C speedups loaded, its environment
//!    recorded and pinned by `matrix/constraints.txt`; older pins are what a suite's venv
//!    and build environment get, `--update-constraints` refreshes them from an unpinned run,
//!    and a rerun under the refreshed file installs the same versions;
//! 9. every test layout (tests inside the package and left out of the wheel, top-level tests
//!    relying on rootdir insertion, a unittest-only tests package) tests the installed build,
//!    with the project's pytest configuration, and no skipped or xfailed test is judged;
//!    leak hunting reports a lost reference and nothing a test does to its own state;
//! 10. the corpus of real PyPI extensions (`--set corpus`) is clean on a debug cell with every
//!     suite's compiled modules loaded from the venv;
//! 11. `cargo xtask report` renders report.md, junit.xml and report.html that agree with
//!     report.json;
//! 12. `cargo xtask run CELL -- python …` runs in the cell; the pytest plugin's own tests
//!     pass with their debug-interpreter half on the debug cell; two runs testing the same
//!     cell at once wait for each other and both are recorded; and the README's main
//!     command, `cargo xtask matrix`, is green on a cell;
//! 13. the sanitizer cells (`--set sanitizers`: 3.13.15+tsan, 3.13.15+ubsan) build and keep
//!     their promises (the sanitizer's runtime resolves in the interpreter); the example's data
//!     race is a `data-race` finding with both stacks on tsan, its thread-unsafe test a
//!     `thread-safety` finding of the race-hunting run, its over-wide shift an
//!     `undefined-behavior` finding on ubsan, all expected; an extension without `Py_mod_gil`
//!     is reported re-enabling the GIL; report.html shows them.
//!
//! Needs the real tarballs in `../shared/cpython-sources` (CI has them there). The slow test of
//! the workspace: `SKIP_SLOW_TESTS=1 cargo test --workspace` (the contributor's loop) ignores
//! it, saying so (`xtask/build.rs`).

use std::{
    fs,
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use camino::{Utf8Path, Utf8PathBuf};

#[path = "../../crates/exttest/tests/plugin_harness/mod.rs"]
mod plugin_harness;

fn repo() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_owned()
}

fn mirror() -> Utf8PathBuf {
    let dir = repo().join("../shared/cpython-sources");
    assert!(dir.join("SHA256SUMS").is_file(), "the real tarballs must be in {dir}");
    dir
}

struct Run {
    work: Utf8PathBuf,
}

impl Run {
    fn xtask(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args([
            "--work-dir",
            self.work.as_str(),
            "--mirror",
            mirror().as_str(),
            "--no-upstream",
        ]);
        cmd.args(args);
        cmd.env_remove("DEBUG_MATRIX_MIRROR");
        cmd
    }

    fn run(&self, args: &[&str]) -> (bool, String) {
        let out: Output = self.xtask(args).output().expect("xtask runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("$ cargo xtask {}\n{text}", args.join(" "));
        (out.status.success(), text)
    }

    fn manifests(&self) -> Vec<Utf8PathBuf> {
        let Ok(entries) = fs::read_dir(self.work.join("builds")) else { return Vec::new() };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| Utf8PathBuf::from_path_buf(e.path().join("manifest.json")).ok())
            .filter(|p| p.is_file())
            .collect()
    }
}

/// Processes whose working directory is inside `dir`.
fn processes_in(dir: &Utf8Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cwd) = fs::read_link(entry.path().join("cwd"))
            && cwd.starts_with(dir)
        {
            let cmdline = fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!("{pid}: {}", cmdline.replace('\0', " ")));
        }
    }
    found
}

fn line_of<'a>(text: &'a str, cell: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(&format!("{cell} "))).unwrap_or("")
}

/// The one slow test (`xtask/build.rs` gates it): `SKIP_SLOW_TESTS=1` ignores it, with this
/// reason in the output.
#[test]
#[cfg_attr(
    skip_slow_tests,
    ignore = "SKIP_SLOW_TESTS is set: the end-to-end scenario (~40 min, builds CPython) is \
              skipped; `cargo test --workspace` without it runs it, as CI does"
)]
fn the_ci_matrix() {
    let work = repo().join("target/e2e-matrix");
    let run = Run { work: work.clone() };
    build_scenario(&run);
    the_cheapest_build_is_reproducible(&run);
    cpython_smoke_tests(&run);
    crashes_and_hangs_are_contained(&run);
    example_extension_bugs_are_found_where_visible(&run);
    expected_findings_are_strict(&run);
    a_projects_own_table_is_all_it_needs(&run);
    markupsafe_passes_with_its_speedups(&run);
    constraints_pin_the_test_environment_and_refresh(&run);
    every_layout_tests_the_installed_build(&run);
    leak_hunting_judges_only_lost_references(&run);
    leak_hunting_tells_state_from_leaks_by_persistence_and_the_twin(&run);
    pytest_args_act_as_from_the_project_root(&run);
    the_corpus_is_clean_on_a_debug_cell(&run);
    renderings_agree(&run);
    run_in_a_cell(&run);
    the_plugin_tests_pass_on_the_debug_cell(&run);
    concurrent_runs_wait_for_each_other(&run);
    the_main_command_is_green(&run);
    sanitizer_cells(&run);
}

fn build_scenario(run: &Run) {
    let work = run.work.clone();
    let _ = fs::remove_dir_all(&work);

    // 1. Interrupt a build while make runs.
    let mut child = run
        .xtask(&["build", "3.13.5+debug"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xtask starts");
    let started = Instant::now();
    let make_log = loop {
        let logs: Vec<Utf8PathBuf> = fs::read_dir(work.join("builds"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Utf8PathBuf::from_path_buf(e.path().join("logs/make.log")).ok())
            .filter(|p| fs::read_to_string(p).is_ok_and(|t| t.lines().count() > 20))
            .collect();
        if let Some(log) = logs.into_iter().next() {
            break log;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "make never started");
        assert!(child.try_wait().expect("wait").is_none(), "xtask ended before make started");
        thread::sleep(Duration::from_millis(250));
    };
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    assert!(status.is_ok_and(|s| s.success()), "sending SIGINT");
    let out = child.wait_with_output().expect("xtask ends");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("interrupted run:\n{stderr}");
    assert!(!out.status.success(), "an interrupted build must fail");
    assert!(stderr.contains("interrupted"), "says it was interrupted: {stderr}");
    assert!(run.manifests().is_empty(), "no build may be marked complete: {:?}", run.manifests());
    thread::sleep(Duration::from_millis(500));
    let left = processes_in(&work);
    assert!(left.is_empty(), "processes left behind: {left:#?}");

    // ...and the rerun resumes: configure is not run again, make picks up where it stopped.
    let (ok, text) = run.run(&["build", "3.13.5+debug"]);
    assert!(ok, "the rerun completes");
    assert!(line_of(&text, "3.13.5+debug").contains("built in"), "{text}");
    assert!(line_of(&text, "3.13.5+debug").contains("promise kept"), "{text}");
    let configure_log = make_log.parent().expect("logs").join("configure.log");
    let configure_runs =
        fs::read_to_string(&configure_log).expect("configure log").matches("\n$ ").count()
            + usize::from(fs::read_to_string(&configure_log).expect("log").starts_with("$ "));
    assert_eq!(configure_runs, 1, "configure ran once across the interrupted run and the rerun");
    assert_eq!(run.manifests().len(), 1);

    // 2. The CI cells.
    let (ok, text) = run.run(&["build", "--set", "ci"]);
    assert!(ok, "every CI cell builds and keeps its promise:\n{text}");
    assert!(line_of(&text, "3.13.5+debug").contains("cached"), "{text}");
    for cell in [
        "3.13.5+release",
        "3.13.5+ref-debug",
        "3.13.5+trace-refs",
        "3.13.5+valgrind",
        "3.11.2+debug",
    ] {
        let line = line_of(&text, cell);
        assert!(line.contains("built in") && line.contains("promise kept"), "{cell}: {line}");
    }

    // 3. Change one variant and break another, in a copy of the matrix.
    let matrix = work.join("matrix-changed");
    fs::create_dir_all(matrix.join("keys")).expect("mkdir");
    for name in ["versions.toml", "cells.toml"] {
        fs::copy(repo().join("matrix").join(name), matrix.join(name)).expect("copy");
    }
    for key in fs::read_dir(repo().join("matrix/keys")).expect("keys").flatten() {
        fs::copy(key.path(), matrix.join("keys").as_std_path().join(key.file_name()))
            .expect("copy key");
    }
    let variants = fs::read_to_string(repo().join("matrix/variants.toml")).expect("variants");
    let changed = variants.replace(
        "extra-cflags = [\"-DPy_REF_DEBUG\"]",
        "extra-cflags = [\"-DPy_REF_DEBUG\", \"-DDEBUG_MATRIX_E2E=1\"]",
    );
    assert_ne!(changed, variants, "the ref-debug variant was changed");
    let broken = "\n[[variant]]\nname = \"broken\"\npurpose = \"a configure argument the compiler rejects\"\n\
                  configure = []\ncflags = [\"-fno-such-flag-debug-matrix\"]\nrebuild-extensions = false\n";
    fs::write(matrix.join("variants.toml"), format!("{changed}{broken}")).expect("write");
    let (ok, text) = run.run(&[
        "--matrix-dir",
        matrix.as_str(),
        "build",
        "3.13.5+broken",
        "3.13.5+ref-debug",
        "3.13.5+release",
        "3.13.5+debug",
    ]);
    assert!(!ok, "a broken cell fails the run");
    let broken_line = line_of(&text, "3.13.5+broken");
    assert!(
        broken_line.contains("configure failed") && broken_line.contains("configure.log"),
        "{text}"
    );
    assert!(
        text.contains("C compiler cannot create executables"),
        "the log tail is shown:\n{text}"
    );
    assert!(
        line_of(&text, "3.13.5+ref-debug").contains("built in"),
        "the changed variant rebuilt:\n{text}"
    );
    assert!(line_of(&text, "3.13.5+ref-debug").contains("promise kept"), "{text}");
    assert!(line_of(&text, "3.13.5+release").contains("cached"), "unchanged: {text}");
    assert!(line_of(&text, "3.13.5+debug").contains("cached"), "unchanged: {text}");
    assert!(text.contains("1 of 4 cells failed: 3.13.5+broken"), "{text}");

    // 4. Warm: nothing to do.
    let started = Instant::now();
    let (ok, text) = run.run(&["build", "--set", "ci"]);
    assert!(ok, "{text}");
    assert_eq!(text.matches(" cached; promise kept").count(), 6, "{text}");
    eprintln!("warm build of the CI cells: {:?}", started.elapsed());
}

/// 4, continued (issue 21): the rebuild adds about one build of 3.11.2+debug (3 to 4
/// minutes on a CI runner) and its comparison (seconds).
fn the_cheapest_build_is_reproducible(run: &Run) {
    let started = Instant::now();
    let (ok, text) = run.run(&["build", "--check", "3.11.2+debug"]);
    assert!(ok, "3.11.2+debug is reproducible:\n{text}");
    let line = text.lines().find(|l| l.starts_with("3.11.2+debug: reproducible: ")).unwrap_or("");
    assert!(line.contains(" files identical"), "{text}");
    assert!(
        text.contains("installed files name the source or build directory, each as README lists"),
        "{text}"
    );
    assert!(
        !text.contains("must not"),
        "no compiled or unlisted file names a build directory:\n{text}"
    );
    let (ok, text) = run.run(&["build", "3.11.2+debug"]);
    assert!(
        ok && line_of(&text, "3.11.2+debug").contains("cached"),
        "the first build is back: {text}"
    );
    eprintln!("build --check 3.11.2+debug: {:?}", started.elapsed());
}

fn cpython_smoke_tests(run: &Run) {
    let (ok, text) = run.run(&["test-cpython", "--set", "ci", "--profile", "smoke"]);
    assert!(ok, "regrtest's smoke profile passes on every CI cell:\n{text}");
}

/// The results of `suite` in the document `cargo xtask test` writes, one per cell.
fn extension_results(run: &Run, suite: &str) -> serde_json::Value {
    let path = run.work.join("report/report.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(doc["schema_version"], 1, "{path}");
    let mut results = Vec::new();
    for cell in doc["cells"].as_array().expect("cells") {
        for r in cell["suites"].as_array().expect("suites") {
            if r["suite"] == suite {
                results.push(r.clone());
            }
        }
    }
    serde_json::Value::Array(results)
}

/// One line per finding: `cell suite kind test`; every finding carries its repro command.
fn finding_lines(results: &serde_json::Value) -> Vec<String> {
    let mut lines = Vec::new();
    for r in results.as_array().expect("an array of suite results") {
        for f in r["findings"].as_array().expect("findings") {
            let repro = f["repro"].as_str().unwrap_or("");
            assert!(repro.starts_with("cargo xtask test "), "a repro command: {f}");
        }
        for f in r["findings"].as_array().expect("findings") {
            let test = f["test"].as_str().unwrap_or("-");
            let test = test.rsplit("::").next().unwrap_or(test);
            lines.push(format!(
                "{} {} {} {test}",
                r["cell"].as_str().unwrap_or("?"),
                r["suite"].as_str().unwrap_or("?"),
                f["kind"].as_str().unwrap_or("?")
            ));
        }
    }
    lines.sort();
    lines
}

fn crashes_and_hangs_are_contained(run: &Run) {
    let crashy = repo().join("xtask/tests/fixtures/crashy");
    let started = Instant::now();
    let (ok, text) =
        run.run(&["test", "3.13.5+debug", "--ext", crashy.as_str(), "--timeout", "20"]);
    assert!(!ok, "findings fail the run:\n{text}");
    let results = extension_results(run, "crashy");
    assert_eq!(
        finding_lines(&results),
        ["3.13.5+debug crashy crash test_segfault", "3.13.5+debug crashy hang test_hang"],
        "{text}"
    );
    let counts = &results[0]["counts"];
    assert_eq!(
        counts["passed"], 2,
        "the tests before and after the crash and the hang ran: {text}"
    );
    let crash = &results[0]["findings"][0]["message"];
    assert!(crash.as_str().is_some_and(|m| m.contains("SIGSEGV")), "the signal is named: {crash}");
    assert!(started.elapsed() < Duration::from_secs(600), "the hang was cut short");
    let left = processes_in(&run.work);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
}

fn example_extension_bugs_are_found_where_visible(run: &Run) {
    let refbugs = repo().join("examples/refbugs");
    let (ok, text) = run.run(&["test", "--set", "ci", "--ext", refbugs.as_str()]);
    assert!(ok, "the example's findings are all expected (matrix/extensions.toml):\n{text}");
    let results = extension_results(run, "refbugs");
    assert_eq!(
        finding_lines(&results),
        [
            "3.11.2+debug refbugs ref-leak test_leak_new_ref",
            "3.13.5+debug refbugs ref-leak test_leak_new_ref",
            "3.13.5+ref-debug refbugs ref-leak test_leak_new_ref",
            "3.13.5+trace-refs refbugs ref-leak test_leak_new_ref",
            "3.13.5+valgrind refbugs invalid-memory test_use_after_free",
        ],
        "the leak on every refcount-debug cell, the use-after-free under valgrind, nothing else:\n{text}"
    );
    for r in results.as_array().expect("array") {
        for f in r["findings"].as_array().expect("findings") {
            assert!(f["expected"].is_string(), "each finding is an expected one: {f}");
        }
        assert_eq!(r["counts"]["passed"], 4, "every test passes functionally: {r}");
        if r["cell"] == "3.13.5+trace-refs" {
            let message = r["findings"][0]["message"].as_str().unwrap_or("");
            assert!(
                message.contains("leaked objects:") && message.contains("list"),
                "types named: {message}"
            );
        }
    }
}

/// A copy of the repository's `matrix/` under the work directory, to change.
fn matrix_copy(run: &Run, name: &str) -> Utf8PathBuf {
    let matrix = run.work.join(name);
    let _ = fs::remove_dir_all(&matrix);
    fs::create_dir_all(matrix.join("keys")).expect("mkdir");
    for entry in fs::read_dir(repo().join("matrix")).expect("matrix").flatten() {
        if entry.path().is_file() {
            fs::copy(entry.path(), matrix.as_std_path().join(entry.file_name())).expect("copy");
        }
    }
    for key in fs::read_dir(repo().join("matrix/keys")).expect("keys").flatten() {
        fs::copy(key.path(), matrix.join("keys").as_std_path().join(key.file_name()))
            .expect("copy key");
    }
    matrix
}

/// Strict like xfail: an expected finding that does not appear, on a cell where its test
/// ran, fails the run.
fn expected_findings_are_strict(run: &Run) {
    let matrix = matrix_copy(run, "matrix-expected");
    let extensions = fs::read_to_string(matrix.join("extensions.toml")).expect("read");
    let stale = "\n[[expected]]\nsuite = \"refbugs\"\ntest = \"test_no_leak_new_ref\"\n\
                 kind = \"ref-leak\"\ncells = [\"debug\"]\nreason = \"a leak that was fixed\"\n";
    fs::write(matrix.join("extensions.toml"), format!("{extensions}{stale}")).expect("write");
    let refbugs = repo().join("examples/refbugs");
    let (ok, text) = run.run(&[
        "--matrix-dir",
        matrix.as_str(),
        "test",
        "3.13.5+debug",
        "--ext",
        refbugs.as_str(),
    ]);
    assert!(!ok, "a stale expected finding fails the run:\n{text}");
    assert!(text.contains("expected-missing in test_no_leak_new_ref"), "{text}");
    assert!(text.contains("a leak that was fixed"), "{text}");
}

/// Issue 19: a project configured only by its own `[tool.debug-matrix]` (tests in `qa/`,
/// where no default looks; a deliberate leak declared expected; default cells), unknown to
/// `matrix/extensions.toml`: its suite is named after the project, the leak is expected and
/// the run is green; without the entry the same leak is a `ref-leak` and the run is red.
fn a_projects_own_table_is_all_it_needs(run: &Run) {
    let fixture = repo().join("xtask/tests/fixtures/owntable");
    let (ok, text) = run.run(&["test", "3.13.5+debug", "--ext", fixture.as_str()]);
    assert!(ok, "the project's own expected entry accepts its leak:\n{text}");
    assert!(
        text.contains("expected ref-leak in qa/test_owntable.py::test_leak"),
        "found in qa/, shown as expected:\n{text}"
    );
    let results = extension_results(run, "dm-own-table");
    assert_eq!(finding_lines(&results), ["3.13.5+debug dm-own-table ref-leak test_leak"], "{text}");
    assert!(results[0]["findings"][0]["expected"].is_string(), "{results}");
    assert_eq!(results[0]["counts"]["passed"], 2, "{results}");

    let copy = run.work.join("owntable-unexpected");
    let _ = fs::remove_dir_all(&copy);
    copy_dir(&fixture, &copy);
    let pyproject = copy.join("pyproject.toml");
    let text = fs::read_to_string(&pyproject).expect("read");
    let cut = text.find("[[tool.debug-matrix.expected]]").expect("the fixture's expected entry");
    fs::write(&pyproject, &text[..cut]).expect("write");
    // No cell named: the project's `cells` decide.
    let (ok, text) = run.run(&["test", "--ext", copy.as_str()]);
    assert!(!ok, "an undeclared leak fails the run:\n{text}");
    assert!(text.contains("cells 3.13.5+debug (the default of"), "{text}");
    let results = extension_results(run, "dm-own-table");
    assert_eq!(finding_lines(&results), ["3.13.5+debug dm-own-table ref-leak test_leak"], "{text}");
    assert!(results[0]["findings"][0]["expected"].is_null(), "{results}");
}

fn copy_dir(from: &Utf8Path, to: &Utf8Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.as_std_path().join(entry.file_name());
        if entry.path().is_dir() {
            let target = Utf8PathBuf::from_path_buf(target).expect("utf-8");
            let source = Utf8PathBuf::from_path_buf(entry.path()).expect("utf-8");
            copy_dir(&source, &target);
        } else {
            fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn markupsafe_passes_with_its_speedups(run: &Run) {
    let (ok, text) = run.run(&["test", "--set", "ci", "--suite", "markupsafe"]);
    assert!(ok, "markupsafe is clean on every CI cell:\n{text}");
    let results = extension_results(run, "markupsafe");
    let results = results.as_array().expect("array");
    assert_eq!(results.len(), 6, "one result per CI cell");
    for r in results {
        let modules = r["modules"].as_object().expect("modules");
        assert!(modules.contains_key("markupsafe._speedups"), "the C speedups were loaded: {r}");
        assert!(r["counts"]["passed"].as_u64().is_some_and(|n| n > 50), "{r}");
        // Pinned by the repository's constraints, on every cell (3.11's pip too).
        let pinned = pin_in(&repo().join("matrix/constraints.txt"), "pytest");
        assert_eq!(r["environment"]["pytest"].as_str(), pinned.as_deref(), "{r}");
    }
}

/// The version `file` pins `name` to (`name==VERSION`), if it does.
fn pin_in(file: &Utf8Path, name: &str) -> Option<String> {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.lines().find_map(|l| l.strip_prefix(&format!("{name}==")).map(str::to_owned))
}

/// `name`'s version in a suite result's `environment` (its venv, or with `build` its build
/// environment).
fn installed(r: &serde_json::Value, part: &str, name: &str) -> String {
    let list = r["environment"][part].as_array().unwrap_or_else(|| panic!("{part}: {r}"));
    let found =
        list.iter().find(|p| p["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)));
    found
        .and_then(|p| p["version"].as_str())
        .unwrap_or_else(|| panic!("no {name} in {part}: {r}"))
        .to_owned()
}

/// Pins older than today's newest are what a suite gets, in its venv and in its project's
/// isolated build environment (so an unpinned run would install something else); an
/// update rewrites the file from an unpinned run; a rerun installs what it pins.
fn constraints_pin_the_test_environment_and_refresh(run: &Run) {
    let matrix = matrix_copy(run, "matrix-pins");
    let file = matrix.join("constraints.txt");
    fs::write(&file, "pytest==8.3.5\npluggy==1.5.0\nsetuptools==80.9.0\n").expect("write");
    let refbugs = |extra: &[&str]| {
        let mut args =
            vec!["--matrix-dir", matrix.as_str(), "test", "3.13.5+debug", "--suite", "refbugs"];
        args.extend(extra);
        let (ok, text) = run.run(&args);
        assert!(ok, "refbugs is clean (its findings expected):\n{text}");
        let results = extension_results(run, "refbugs");
        let r = results
            .as_array()
            .expect("array")
            .iter()
            .find(|r| r["cell"] == "3.13.5+debug")
            .cloned();
        (r.unwrap_or_else(|| panic!("no refbugs result on 3.13.5+debug: {results}")), text)
    };
    let (old, _) = refbugs(&[]);
    assert_eq!(installed(&old, "packages", "pytest"), "8.3.5", "{old}");
    assert_eq!(installed(&old, "packages", "pluggy"), "1.5.0", "{old}");
    assert_eq!(
        installed(&old, "build", "setuptools"),
        "80.9.0",
        "the build environment is pinned too: {old}"
    );
    assert_eq!(old["environment"]["constraints"][0].as_str(), Some(file.as_str()), "{old}");

    let (fresh, text) = refbugs(&["--update-constraints"]);
    assert!(text.contains(&format!("{file}: written from 1 suite run(s)")), "{text}");
    let pytest = installed(&fresh, "packages", "pytest");
    assert_ne!(pytest, "8.3.5", "an unpinned run installs today's pytest: {fresh}");
    assert_eq!(pin_in(&file, "pytest").as_deref(), Some(pytest.as_str()), "the file pins what ran");
    assert_eq!(pin_in(&file, "setuptools"), Some(installed(&fresh, "build", "setuptools")));
    assert!(
        pin_in(&file, "refbugs").is_none() && pin_in(&file, "pip").is_none(),
        "the suite's project and pip are never pinned"
    );

    let (again, _) = refbugs(&[]);
    assert_eq!(
        again["environment"]["packages"], fresh["environment"]["packages"],
        "a pinned rerun installs the same versions"
    );
    assert_eq!(again["environment"]["build"], fresh["environment"]["build"]);
}

/// The suite's compiled modules were loaded from the cell's venv.
fn assert_loaded_from_venv(r: &serde_json::Value, module: &str) {
    let modules = r["modules"].as_object().expect("modules");
    let file = modules.get(module).and_then(|f| f.as_str()).unwrap_or("");
    assert!(
        file.contains("/venv/lib/") && file.contains("d-x86_64"),
        "{module} from the venv: {r}"
    );
}

fn every_layout_tests_the_installed_build(run: &Run) {
    let fixtures = repo().join("xtask/tests/fixtures");
    let (inpkg, beside, unit) = (
        fixtures.join("layout-inpkg"),
        fixtures.join("layout-beside"),
        fixtures.join("layout-unittest"),
    );
    let (ok, text) = run.run(&[
        "test",
        "3.13.5+debug",
        "--ext",
        inpkg.as_str(),
        "--ext",
        beside.as_str(),
        "--ext",
        unit.as_str(),
    ]);
    assert!(ok, "every layout passes and is clean:\n{text}");
    let one = |suite: &str| extension_results(run, suite)[0].clone();

    // Tests inside the package run from the venv's copy (node ids under site-packages read
    // like the project's paths), with the project's pytest configuration (test_config_applies
    // and test_declared_marker depend on it); skips and xfails are counted, never judged.
    let r = one("dm-layout-inpkg");
    assert_loaded_from_venv(&r, "inpkg._speed");
    assert_eq!(r["counts"]["passed"], 6, "{r}");
    assert_eq!(r["counts"]["skipped"], 4, "two skips in the body, two xfails: {r}");
    assert_eq!(r["counts"]["leak_judged"], 6, "{r}");
    assert_eq!(r["counts"]["leak_not_judged"], 4, "{r}");
    assert_eq!(r["findings"], serde_json::json!([]), "{r}");
    let log = fs::read_to_string(r["log"].as_str().expect("log")).expect("test log");
    assert!(log.contains("inpkg/tests/test_add.py::"), "node ids relative to site-packages");
    assert!(log.contains("site-packages/inpkg/tests"), "run from the installed copy: {log}");

    // Top-level tests: sibling helpers and dynamic imports work (tests/ is on sys.path), and
    // the root conftest.py cannot put the source copy of the package first.
    let r = one("dm-layout-beside");
    assert_loaded_from_venv(&r, "beside._cbeside");
    assert_eq!(r["counts"]["passed"], 2, "{r}");
    assert_eq!(r["findings"], serde_json::json!([]), "{r}");

    // unittest only, in a tests package with a relative import.
    let r = one("dm-layout-unittest");
    assert_loaded_from_venv(&r, "unitpkg._unit");
    assert_eq!(r["counts"]["passed"], 1, "{r}");
    assert_eq!(r["counts"]["skipped"], 3, "{r}");
    assert_eq!(r["counts"]["leak_not_judged"], 3, "{r}");
    assert_eq!(r["findings"], serde_json::json!([]), "{r}");
}

/// Leak hunting judges a lost reference, and nothing a test does to itself: state it keeps
/// reachable, subtests, skips; a test that fails only after others were repeated is a note.
fn leak_hunting_judges_only_lost_references(run: &Run) {
    let judged = repo().join("xtask/tests/fixtures/judged");
    let (ok, text) = run.run(&["test", "3.13.5+debug", "--ext", judged.as_str()]);
    assert!(!ok, "the lost reference is a finding:\n{text}");
    let results = extension_results(run, "dm-judged");
    assert_eq!(
        finding_lines(&results),
        [
            "3.13.5+debug dm-judged order-dependent test_b_depends_on_a",
            "3.13.5+debug dm-judged ref-leak test_lost_reference",
        ],
        "{text}"
    );
    let r = &results[0];
    assert_eq!(r["counts"]["leak_judged"], 2, "test_lost_reference and test_no_leak: {r}");
    assert_eq!(r["counts"]["not_rerunnable"], 1, "subtests: {r}");
    // The registry and the list the test appends to grow: the test's own state, said so.
    let grew: Vec<&str> = r["grew_not_judged"]
        .as_array()
        .expect("grew_not_judged")
        .iter()
        .filter_map(|n| n["test"].as_str())
        .collect();
    assert_eq!(
        grew,
        ["tests/test_judged.py::test_registry_grows", "tests/test_judged.py::test_a_appends"],
        "{r}"
    );
    let log = fs::read_to_string(r["log"].as_str().expect("log")).expect("test log");
    assert!(log.contains("leaked: refs [1, 1, 1]"), "one list per call: {log}");
    // The finding carries what grew: linear over the longer run, a new list per call, the
    // line that allocated it.
    let leak = r["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["kind"] == "ref-leak"))
        .expect("the ref-leak finding");
    let evidence = &leak["evidence"];
    assert_eq!(evidence["persistence"]["refs"], "linear", "{leak}");
    assert_eq!(evidence["new_objects"]["list"], 1.0, "{leak}");
    assert!(
        evidence["allocations"][0]["where"].as_str().is_some_and(|w| w.contains("test_judged.py:")),
        "{leak}"
    );
    assert!(leak["message"].as_str().is_some_and(|m| m.contains("refs linear")), "{leak}");
}

/// The test's own growing state that gc cannot see is not a leak: a bounded cache of
/// untracked C objects stops growing over the longer run; a function wrapped again on every
/// call grows the same on the project's pure-Python twin. The real leak beside them stays,
/// and says that its twin does not grow.
fn leak_hunting_tells_state_from_leaks_by_persistence_and_the_twin(run: &Run) {
    let (ok, text) = run.run(&["test", "3.13.5+debug", "--suite", "statekeep"]);
    assert!(ok, "the real leak is expected, the rest is not judged:\n{text}");
    let r = &extension_results(run, "statekeep")[0];
    assert_eq!(
        finding_lines(&extension_results(run, "statekeep")),
        ["3.13.5+debug statekeep ref-leak test_leak"],
        "{text}"
    );
    let leak = &r["findings"][0];
    assert!(leak["expected"].is_string(), "{leak}");
    assert_eq!(leak["evidence"]["twin"]["grows"], false, "{leak}");
    assert_eq!(leak["evidence"]["twin"]["env"], "STATEKEEP_PURE_PYTHON=1", "{leak}");
    let dismissed = r["grew_not_judged"].as_array().expect("grew_not_judged");
    let reason = |test: &str| {
        dismissed
            .iter()
            .find(|n| n["test"].as_str().is_some_and(|t| t.ends_with(test)))
            .and_then(|n| n["reason"].as_str())
            .unwrap_or_else(|| panic!("{test} grew and was not judged: {r}"))
            .to_owned()
    };
    assert!(reason("test_compile_caches_patterns").contains("growth stops"), "{r}");
    assert!(reason("test_rewrap").contains("grows the same with the pure-Python twin"), "{r}");
    assert_eq!(r["counts"]["leak_judged"], 1, "{r}");
    assert!(text.contains("grew, not judged: tests/test_statekeep.py::test_rewrap"), "{text}");
    // A ref-leak's repro line runs its test alone in a loop and prints the deltas per call.
    let repro = leak["repro"].as_str().expect("repro");
    assert!(repro.ends_with("-k test_leak --leak-loop 20"), "{repro}");
    let (ok, text) = run.run(&[
        "test",
        "3.13.5+debug",
        "--suite",
        "statekeep",
        "-k",
        "test_leak",
        "--leak-loop",
        "5",
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains(
            "leak loop over 5 calls of tests/test_statekeep.py::test_leak: refs per call \
             [1, 1, 1, 1, 1], blocks per call [1, 1, 1, 1, 1]"
        ),
        "{text}"
    );
}

/// A suite's pytest-args act as in a plain run from the project's root, for tests inside
/// the package (run from site-packages) and beside it: a relative --ignore-glob, an --ignore
/// and a --deselect by project path.
fn pytest_args_act_as_from_the_project_root(run: &Run) {
    let matrix = matrix_copy(run, "matrix-args");
    let fixtures = repo().join("xtask/tests/fixtures");
    let extensions = fs::read_to_string(matrix.join("extensions.toml")).expect("read");
    let suites = format!(
        "\n[[suite]]\nname = \"inpkg-args\"\npath = \"{}\"\npytest-args = [\
         \"--ignore-glob=*test_free_threading.py\", \"--ignore=src/argpkg/tests/test_slow.py\", \
         \"--deselect=src/argpkg/tests/test_twice.py::test_left_out_by_deselect\"]\n\
         \n[[suite]]\nname = \"beside-args\"\npath = \"{}\"\n\
         pytest-args = [\"--deselect=tests/test_beside.py::test_add\"]\n",
        fixtures.join("inpkg-args"),
        fixtures.join("layout-beside"),
    );
    fs::write(matrix.join("extensions.toml"), format!("{extensions}{suites}")).expect("write");
    let (ok, text) = run.run(&[
        "--matrix-dir",
        matrix.as_str(),
        "test",
        "3.13.5+debug",
        "--suite",
        "inpkg-args",
        "--suite",
        "beside-args",
    ]);
    assert!(ok, "the left-out tests do not run:\n{text}");
    let r = &extension_results(run, "inpkg-args")[0];
    assert_eq!(r["counts"]["passed"], 1, "only test_twice runs: {r}");
    assert_eq!(r["counts"]["failed"], 0, "{r}");
    assert_eq!(r["findings"], serde_json::json!([]), "no collection error: {r}");
    let r = &extension_results(run, "beside-args")[0];
    assert_eq!(r["counts"]["passed"], 1, "test_add deselected: {r}");
}

fn the_corpus_is_clean_on_a_debug_cell(run: &Run) {
    let (ok, text) = run.run(&["test", "--set", "corpus"]);
    assert!(ok, "the real extensions are clean on 3.13.5+debug:\n{text}");
    let corpus = corpus_suites();
    for suite in &corpus {
        let results = extension_results(run, suite);
        let r = &results[0];
        assert_eq!(r["cell"], "3.13.5+debug", "{r}");
        assert!(r["counts"]["passed"].as_u64().is_some_and(|n| n >= 10), "{suite} ran: {r}");
        assert!(
            r["counts"]["leak_judged"].as_u64().is_some_and(|n| n >= 10),
            "{suite} hunted: {r}"
        );
        let modules = r["modules"].as_object().expect("modules");
        assert!(!modules.is_empty(), "{suite} has compiled modules: {r}");
        for module in modules.keys() {
            assert_loaded_from_venv(r, module);
        }
    }
}

/// The suites of `[set.corpus]` in matrix/cells.toml.
fn corpus_suites() -> Vec<String> {
    let text = fs::read_to_string(repo().join("matrix/cells.toml")).expect("cells.toml");
    let doc: toml::Table = toml::from_str(&text).expect("cells.toml parses");
    let suites = doc["set"]["corpus"]["suites"].as_array().expect("corpus suites");
    let names: Vec<String> = suites.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect();
    assert!(names.len() >= 6, "at least six real extensions: {names:?}");
    names
}

fn renderings_agree(run: &Run) {
    // A new finding (and a note) on debug, an expected one on valgrind, next to markupsafe's
    // clean results elsewhere.
    let judged = repo().join("xtask/tests/fixtures/judged");
    let (ok, text) = run.run(&["test", "3.13.5+debug", "--ext", judged.as_str()]);
    assert!(!ok, "{text}");
    let refbugs = repo().join("examples/refbugs");
    let (ok, text) = run.run(&["test", "3.13.5+valgrind", "--ext", refbugs.as_str()]);
    assert!(ok, "{text}");
    let (ok, text) = run.run(&["report"]);
    assert!(ok, "{text}");
    let dir = run.work.join("report");
    let read =
        |name: &str| fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (json, md, junit, html) =
        (read("report.json"), read("report.md"), read("junit.xml"), read("report.html"));
    let doc: serde_json::Value = serde_json::from_str(&json).expect("report.json");
    let cells = doc["cells"].as_array().expect("cells");
    let names: Vec<&str> = cells.iter().filter_map(|c| c["cell"].as_str()).collect();
    // The CI cells, and the broken cell of step 3 (every command records what it did).
    assert_eq!(
        names,
        [
            "3.11.2+debug",
            "3.13.5+broken",
            "3.13.5+debug",
            "3.13.5+ref-debug",
            "3.13.5+release",
            "3.13.5+trace-refs",
            "3.13.5+valgrind"
        ],
        "{json}"
    );
    let broken = &cells[1];
    assert_eq!(broken["phases"]["build"]["status"], "failed", "{broken}");
    assert!(md.contains("3.13.5+broken") && md.contains("configure failed"), "{md}");
    for cell in cells.iter().filter(|c| c["cell"] != "3.13.5+broken") {
        for phase in ["fetch", "verify", "build", "check", "test-cpython-smoke", "extension-suites"]
        {
            assert!(
                cell["phases"][phase]["status"].is_string(),
                "{} has phase {phase}: {cell}",
                cell["cell"]
            );
        }
    }
    for cell in cells {
        let name = cell["cell"].as_str().expect("name");
        assert!(junit.contains(&format!("<testsuite name=\"{name}\"")), "junit has {name}");
        assert!(html.contains(name), "html has {name}");
        for suite in cell["suites"].as_array().expect("suites") {
            for f in suite["findings"].as_array().expect("findings") {
                let repro = f["repro"].as_str().expect("repro");
                let test = f["test"].as_str().unwrap_or("-");
                assert!(html.contains(repro), "report.html lacks the finding {repro}");
                if f["expected"].is_string() || f["kind"] == "order-dependent" {
                    // Shown, but not a problem: not a failing JUnit case.
                    assert!(md.contains(test), "report.md lacks {test}");
                    continue;
                }
                for (what, text) in [("report.md", &md), ("junit.xml", &junit)] {
                    assert!(text.contains(repro), "{what} lacks the finding {repro}");
                }
            }
        }
    }
    // The grid counts the findings no `[[expected]]` entry accepts, notes aside, per cell.
    assert!(md.contains("| 3.13.5 |"), "{md}");
    let mut with_findings = 0;
    for cell in cells {
        let unexpected = cell["suites"]
            .as_array()
            .expect("suites")
            .iter()
            .flat_map(|s| s["findings"].as_array().expect("findings"))
            .filter(|f| !f["expected"].is_string() && f["kind"] != "order-dependent")
            .count();
        if unexpected > 0 {
            let shown = format!("findings: {unexpected}");
            assert!(md.contains(&shown), "report.md shows {shown} for {}: {md}", cell["cell"]);
            with_findings += 1;
        }
    }
    assert!(with_findings > 0, "the run has cells with findings (refbugs' crash): {md}");
}

fn run_in_a_cell(run: &Run) {
    let (ok, text) = run.run(&[
        "run",
        "3.13.5+debug",
        "--",
        "python",
        "-c",
        "import sys; print(sys.gettotalrefcount() > 0, sys.abiflags)",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("True d"), "{text}");
}

/// The pytest plugin's own tests, with their debug-interpreter half (real lost references
/// found, and what must not be judged) on the debug cell built above.
fn the_plugin_tests_pass_on_the_debug_cell(run: &Run) {
    let (ok, text) = run.run(&[
        "run",
        "3.13.5+debug",
        "--",
        "python",
        "-c",
        "import sys; print(sys.executable)",
    ]);
    assert!(ok, "{text}");
    let python = text.lines().rev().find(|l| l.starts_with('/')).expect("the cell's python");
    let out = plugin_harness::run_plugin_tests(&repo(), Some(Utf8Path::new(python.trim())));
    assert!(out.contains("passed"), "{out}");
}

/// Two runs testing the same cell at once: the second waits for the first (saying for what
/// and for whom) instead of deleting its venv, and the results document keeps both.
fn concurrent_runs_wait_for_each_other(run: &Run) {
    let args = ["test", "3.13.5+debug", "--suite", "refbugs"];
    let children: Vec<_> = (0..2)
        .map(|_| {
            run.xtask(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("xtask starts")
        })
        .collect();
    let outputs: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("xtask ends");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "a concurrent run failed:\n{text}");
            text
        })
        .collect();
    let waited = outputs
        .iter()
        .filter(|t| t.contains("waiting for the tests of 3.13.5+debug") && t.contains("held by"))
        .count();
    assert_eq!(waited, 1, "exactly one run waited:\n{}", outputs.join("\n-----\n"));
    let doc: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(run.work.join("report/report.json")).expect("report.json"),
    )
    .expect("report.json is whole JSON");
    let cell = doc["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .find(|c| c["cell"] == "3.13.5+debug")
        .expect("the cell is recorded");
    let suites: Vec<&str> = cell["suites"]
        .as_array()
        .expect("suites")
        .iter()
        .filter_map(|s| s["suite"].as_str())
        .collect();
    assert!(suites.contains(&"refbugs") && suites.len() > 1, "earlier suites kept: {suites:?}");
}

/// The README's main command, on one warm cell: every stage runs, and the example's findings
/// are expected ones.
fn the_main_command_is_green(run: &Run) {
    let (ok, text) = run.run(&["matrix", "3.13.5+debug", "--suite", "refbugs"]);
    assert!(ok, "cargo xtask matrix is green:\n{text}");
    // Issue 19: it renders its results and ends with the HTML's path, the grid and what is new.
    let html = run.work.join("report/report.html");
    assert!(html.is_file(), "{html} is rendered");
    assert!(text.contains("\nreport: ") && text.contains("/report/report.html\n"), "{text}");
    assert!(text.contains("version ") && text.contains("3.13.5  "), "the grid:\n{text}");
}

/// The sanitizer cells, smoke profile: the two builds and the example extension (plus a
/// four-line extension without `Py_mod_gil`), nothing of CPython's own tests (regrtest under
/// TSan is hours).
fn sanitizer_cells(run: &Run) {
    let started = Instant::now();
    let (ok, text) = run.run(&["build", "--set", "sanitizers"]);
    assert!(ok, "the sanitizer cells build and keep their promises:\n{text}");
    let built = started.elapsed();

    let started = Instant::now();
    let (ok, text) = run.run(&["test", "--set", "sanitizers"]);
    assert!(ok, "the example's sanitizer findings are all expected:\n{text}");
    let gilful = repo().join("xtask/tests/fixtures/gil-unaware");
    let (gil_ok, gil_text) = run.run(&["test", "3.13.15+tsan", "--ext", gilful.as_str()]);
    let tested = started.elapsed();
    let results = extension_results(run, "refbugs");
    let lines: Vec<String> = finding_lines(&results)
        .into_iter()
        .filter(|l| l.starts_with("3.13.15+tsan ") || l.starts_with("3.13.15+ubsan "))
        .collect();
    assert_eq!(
        lines,
        [
            "3.13.15+tsan refbugs data-race test_racy_count",
            "3.13.15+tsan refbugs thread-safety test_counter_adds_n",
            "3.13.15+ubsan refbugs undefined-behavior test_shift_too_far",
        ],
        "the race with TSan, the thread-unsafe test under concurrency, the over-wide shift with UBSan, \
         nothing else:\n{text}"
    );
    for r in results.as_array().expect("array") {
        let cell = r["cell"].as_str().unwrap_or("");
        if cell != "3.13.15+tsan" && cell != "3.13.15+ubsan" {
            continue;
        }
        for f in r["findings"].as_array().expect("findings") {
            assert!(f["expected"].is_string(), "each finding is an expected one: {f}");
            let message = f["message"].as_str().unwrap_or("");
            match f["kind"].as_str() {
                Some("data-race") => assert!(
                    message.matches("_refbugs.c:").count() >= 2 && message.contains("Previous"),
                    "both stacks, in the extension's source: {message}"
                ),
                Some("undefined-behavior") => assert!(
                    message.contains("shift exponent") && message.contains("_refbugs.c:"),
                    "UBSan's report at the extension's line: {message}"
                ),
                _ => {}
            }
        }
        if cell == "3.13.15+tsan" {
            assert_eq!(r["gil_enabled"], false, "refbugs keeps the interpreter free-threaded: {r}");
        }
    }

    assert!(!gil_ok, "re-enabling the GIL is a finding:\n{gil_text}");
    let results = extension_results(run, "gilful");
    assert_eq!(finding_lines(&results), ["3.13.15+tsan gilful gil-enabled -"], "{gil_text}");
    assert_eq!(results[0]["gil_enabled"], true, "{}", results[0]);
    let message = results[0]["findings"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("gilful._gilful"), "the module is named: {message}");

    let (ok, text) = run.run(&["report"]);
    assert!(ok, "{text}");
    let html = fs::read_to_string(run.work.join("report/report.html")).expect("report.html");
    for kind in ["data-race", "thread-safety", "undefined-behavior", "gil-enabled"] {
        assert!(html.contains(kind), "report.html shows {kind}");
    }
    eprintln!(
        "sanitizer cells: built in {:.0}s, refbugs and gil-unaware tested in {:.0}s",
        built.as_secs_f64(),
        tested.as_secs_f64()
    );
}
