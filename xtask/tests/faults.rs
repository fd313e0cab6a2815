//! End-to-end: bad input that must be refused before anything is built or written, and
//! results files that must never be silently replaced. Each case runs the real binary in a
//! fresh scratch directory (`$TMP`) and asserts the exit, the message (naming the file or
//! cell and what to do) and that nothing was made or lost. See `docs/faults.md`.

mod common;

use std::fs;

use expect_test::{Expect, expect};

use common::{Case, Run};

fn check(run: &Run, expect: Expect) {
    expect.assert_eq(&run.render());
}

/// Nothing under the work directory but what a refused command may leave: no source tree,
/// no build, no cell.
fn assert_nothing_built(case: &Case) {
    for dir in ["src", "builds", "cells"] {
        let path = case.work.join(dir);
        let entries = fs::read_dir(&path).map(|d| d.count()).unwrap_or(0);
        assert_eq!(entries, 0, "{path} has entries after a refused command");
    }
}

#[test]
fn a_junk_mirror_variable_breaks_only_commands_that_fetch() {
    let mut case = Case::new();
    case.env("DEBUG_MATRIX_MIRROR", "file:junk");
    let listed = case.xtask(&["list", "3.13.5+debug"]);
    assert_eq!(listed.code, Some(0), "{}", listed.render());
    check(
        &case.xtask(&["fetch", "3.13.5+debug"]),
        expect![[r#"
            exit 1
            --- stderr
            error: DEBUG_MATRIX_MIRROR: mirror `file:junk`: a file URL is file:///absolute/path (or give the directory itself)
        "#]],
    );
    assert_nothing_built(&case);
}

#[test]
fn list_fetch_and_verify_take_cell_names() {
    let case = Case::new();
    check(
        &case.xtask(&["list", "3.11.2+debug", "3.13.5+asan"]),
        expect![[r#"
            exit 0
            --- stdout
            cell          rebuild  build
            3.11.2+debug  no       --with-pydebug
            3.13.5+asan   no       --with-address-sanitizer run:ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:symbolize=1
        "#]],
    );
    let shared = case.shared.to_string();
    let fetched = case.xtask(&["fetch", "--no-upstream", "--mirror", &shared, "3.11.2+debug"]);
    assert_eq!(fetched.code, Some(0), "{}", fetched.render());
    assert_eq!(case.sources().len(), 1, "only 3.11.2 fetched: {:?}", case.sources());
    check(
        &case.xtask(&["verify", "3.11.2+debug"]),
        expect![[r#"
            exit 0
            --- stdout
            3.11.2: $TMP/work/cache/sha256/2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849/Python-3.11.2.tgz: size and sha256 match the pin, no .sigstore bundle available, sha256 pin checked
            verified 1 cached archive(s)
        "#]],
    );
}

#[test]
fn an_ext_directory_that_is_not_a_project_is_refused_before_any_build() {
    let case = Case::new();
    let empty = case.dir("not-a-project");
    check(
        &case.xtask(&["test", "3.13.5+debug", "--ext", empty.as_str()]),
        expect![[r#"
        exit 1
        --- stderr
        error: --ext $TMP/not-a-project: no pyproject.toml or setup.py: not a Python project
    "#]],
    );
    assert_nothing_built(&case);
}

#[test]
fn a_suite_path_that_does_not_exist_is_refused_before_any_build() {
    let mut case = Case::new();
    let repo = camino::Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let repo = repo.canonicalize_utf8().expect("the repository");
    case.scrub(repo.as_str(), "$REPO");
    let matrix = case.matrix_with(
        "extensions.toml",
        "path = \"examples/refbugs\"",
        "path = \"examples/nowhere\"",
    );
    check(
        &case.xtask(&[
            "--matrix-dir",
            matrix.as_str(),
            "test",
            "3.13.5+debug",
            "--suite",
            "refbugs",
        ]),
        expect![[r#"
            exit 1
            --- stderr
            error: $TMP/matrix/extensions.toml: suite `refbugs`: $REPO/examples/nowhere is not a Python project (no pyproject.toml or setup.py there); fix its `path`
        "#]],
    );
    assert_nothing_built(&case);
}

#[test]
fn configure_arguments_the_tool_sets_itself_are_refused() {
    let case = Case::new();
    let matrix = case.matrix_with(
        "variants.toml",
        "configure = [\"--with-pydebug\"]",
        "configure = [\"--with-pydebug\", \"--cache-file=/tmp/c\"]",
    );
    check(
        &case.xtask(&["--matrix-dir", matrix.as_str(), "list"]),
        expect![[r#"
            exit 1
            --- stderr
            error: $TMP/matrix/variants.toml:47:8: variant `debug`: configure argument `--cache-file=/tmp/c` is the tool's own (it sets --prefix per build and the configure cache itself); remove it
                47 | name = "debug"
                   |        ^
        "#]],
    );
}

#[test]
fn a_known_failure_on_a_misspelt_variant_is_refused_before_any_build() {
    let case = Case::new();
    let matrix = case.matrix_with(
        "cpython-tests.toml",
        "variants = [\"ref-debug\"]",
        "variants = [\"refdebug\"]",
    );
    check(
        &case.xtask(&["--matrix-dir", matrix.as_str(), "test-cpython", "3.13.5+debug"]),
        expect![[r#"
            exit 1
            --- stderr
            error: $TMP/matrix/cpython-tests.toml: known failure `test_zlib` names variant `refdebug`, which matrix/variants.toml does not define (it has release, debug, ref-debug, trace-refs, valgrind, pymalloc-debug, asan, freethreaded, freethreaded-debug, tsan, ubsan); fix the name
        "#]],
    );
    assert_nothing_built(&case);
}

/// A results document that cannot be read: `report` stops naming it and leaves it in place
/// (byte for byte); `report --merge` refuses a broken input instead of skipping it.
#[test]
fn a_broken_results_document_is_never_replaced() {
    let case = Case::new();
    let report = case.work.join("report");
    fs::create_dir_all(&report).expect("mkdir");
    let broken = "{\"schema_version\": 1, \"cells\": [";
    fs::write(report.join("report.json"), broken).expect("write");
    check(
        &case.xtask(&["report"]),
        expect![[r#"
        exit 1
        --- stderr
        error: $TMP/work/report/report.json is not a results document (EOF while parsing a list at line 1 column 32); it was left as it is: repair or remove it, then rerun
    "#]],
    );
    assert_eq!(fs::read_to_string(report.join("report.json")).expect("kept"), broken);

    fs::write(report.join("report.json"), "{\"schema_version\": 99, \"cells\": []}")
        .expect("write");
    check(
        &case.xtask(&["report"]),
        expect![[r#"
        exit 1
        --- stderr
        error: $TMP/work/report/report.json has schema version 99; this tool reads version 1; it was left as it is: repair or remove it, then rerun
    "#]],
    );

    fs::remove_file(report.join("report.json")).expect("rm");
    let artifacts = case.dir("artifacts/cell-a");
    fs::write(artifacts.join("report.json"), "not json").expect("write");
    check(
        &case.xtask(&["report", "--merge", case.root.join("artifacts").as_str()]),
        expect![[r#"
            exit 1
            --- stderr
            error: $TMP/artifacts/cell-a/report.json is not a results document (expected ident at line 1 column 2); it was left as it is: repair or remove it, then rerun
        "#]],
    );
    assert!(!report.join("report.json").exists(), "nothing written from a refused merge");
}

/// 3.13.15 has no `.asc` reachable here: the archive is taken on its sha256 pin alone, and the
/// output says no signature was checked (never "good signature").
#[test]
fn a_release_without_a_reachable_signature_is_taken_on_its_pin_and_says_so() {
    let case = Case::new();
    let shared = case.shared.to_string();
    let run = case.xtask(&["fetch", "--no-upstream", "--mirror", &shared, "3.13.15+debug"]);
    assert_eq!(run.code, Some(0), "{}", run.render());
    assert!(
        run.stdout.contains("3.13.15: fetched from mirror $SHARED, sha256 verified, no .asc signature available, no .sigstore bundle available, sha256 pin checked"),
        "{}",
        run.render()
    );
    assert_eq!(case.sources(), ["3.13.15-1e66a7945a48"]);
}

/// Issue 18 (4): `--pypi` names and versions became paths under the sdist cache; one with
/// `../` built a tarball planted outside the work directory. Refused before anything is made.
#[test]
fn a_pypi_name_or_version_that_is_a_path_is_refused_before_any_build() {
    let case = Case::new();
    check(
        &case.xtask(&["test", "3.13.5+debug", "--pypi", "../../../../../../tmp/x/PYPIESC==1"]),
        expect![[r#"
            exit 1
            --- stderr
            error: --pypi ../../../../../../tmp/x/PYPIESC==1: `../../../../../../tmp/x/PYPIESC` is not a project name (letters, digits, `.`, `_`, `-`, starting and ending with a letter or digit: PEP 508); expected NAME==VERSION (a pinned release with an sdist)
        "#]],
    );
    check(
        &case.xtask(&["test", "3.13.5+debug", "--pypi", "markupsafe==../../3"]),
        expect![[r#"
            exit 1
            --- stderr
            error: --pypi markupsafe==../../3: `../../3` is not a pinned version (letters, digits, `.`, `+`, `!`, `_`, `-`, starting and ending with a letter or digit: PEP 440); expected NAME==VERSION (a pinned release with an sdist)
        "#]],
    );
    assert_nothing_built(&case);
    assert!(!case.work.join("sdists").exists(), "no sdist directory made");
}

/// The build key of `cell` on this machine, from `list --json`.
fn build_key(case: &Case, cell: &str) -> String {
    let run = case.xtask(&["list", "--json", cell]);
    assert_eq!(run.code, Some(0), "{}", run.render());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is JSON");
    doc["include"][0]["key"].as_str().expect("a key").to_owned()
}

/// A build of `cell` made by a fake `Makefile` (configure marked done, so no real configure
/// runs): `make` appends a line to `made.log`, `make install` writes a shell script as
/// `prefix/bin/python3.11`. Returns the build's directory. The probe of that "interpreter"
/// fails, so the cell is never usable; what is tested is whether the build is trusted.
fn fake_build(case: &Case, cell: &str) -> camino::Utf8PathBuf {
    let key = build_key(case, cell);
    let root = case.work.join("builds").join(&key[..16]);
    let build = root.join("build");
    fs::create_dir_all(&build).expect("mkdir");
    fs::write(root.join("configure.done"), &key).expect("write");
    let prefix = root.join("prefix");
    fs::write(
        build.join("Makefile"),
        format!(
            "all:\n\techo make >> {root}/made.log\ninstall:\n\tmkdir -p {prefix}/bin\n\t\
             printf '#!/bin/sh\\necho fake\\n' > {prefix}/bin/python3.11\n\t\
             chmod +x {prefix}/bin/python3.11\n\tln -sf python3.11 {prefix}/bin/python3\n"
        ),
    )
    .expect("write");
    root
}

fn made(root: &camino::Utf8Path) -> usize {
    fs::read_to_string(root.join("made.log")).map(|t| t.lines().count()).unwrap_or(0)
}

/// Issue 18, silent defect 1: a built cell whose interpreter was moved away, replaced, or
/// whose `manifest.json` is empty was "cached; promise kept". Now the manifest records the
/// interpreter (path, size, sha256) and a build that no longer matches it is built again.
#[test]
fn a_damaged_prefix_or_manifest_is_built_again_never_cached() {
    let case = Case::new();
    let shared = case.shared.to_string();
    let fetched = case.xtask(&["fetch", "--no-upstream", "--mirror", &shared, "3.11.2+debug"]);
    assert_eq!(fetched.code, Some(0), "{}", fetched.render());
    let root = fake_build(&case, "3.11.2+debug");
    let build = || case.xtask(&["build", "--no-upstream", "--mirror", &shared, "3.11.2+debug"]);
    let first = build();
    assert!(first.stdout.contains("3.11.2+debug               built in"), "{}", first.render());
    assert_eq!(made(&root), 1);
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["interpreter"]["path"], "bin/python3.11", "{manifest}");
    assert_eq!(manifest["interpreter"]["size"], 20, "{manifest}");

    let second = build();
    assert!(second.stderr.contains("cached build"), "{}", second.render());
    assert_eq!(made(&root), 1, "a whole build is not built again");

    let python = root.join("prefix/bin/python3.11");
    for (damage, why) in [
        ("moved", "is missing"),
        ("replaced", "changed since it was installed"),
        ("empty manifest", "is not a build manifest"),
    ] {
        match damage {
            "moved" => fs::rename(&python, case.root.join("python3.11")).expect("mv"),
            "replaced" => fs::write(&python, "#!/bin/sh\nexec python3 \"$@\"\n").expect("write"),
            _ => fs::write(root.join("manifest.json"), "").expect("write"),
        }
        let before = made(&root);
        let run = build();
        assert!(!run.stderr.contains("cached build"), "{damage}: {}", run.render());
        assert!(
            run.stderr.contains("3.11.2+debug: the build ")
                && run.stderr.contains("is damaged: ")
                && run.stderr.contains(why)
                && run.stderr.contains("; building it again"),
            "{damage}: {}",
            run.render()
        );
        assert_eq!(made(&root), before + 1, "{damage}: make ran again");
        assert_eq!(
            fs::read_to_string(&python).expect("installed again"),
            "#!/bin/sh\necho fake\n",
            "{damage}"
        );
    }
}

/// A whole results document of this version (the report crate's snapshot).
const DOCUMENT: &str = include_str!("../../crates/report/test_data/report.json");

/// Issue 18, silent defect 6: `report` rewrote report.json without the results lock (a
/// `build` finishing meanwhile was lost) and dropped fields it did not know. Now it waits for
/// the lock, keeps unknown top-level and per-cell fields, and refuses deeper ones untouched.
#[test]
fn report_takes_the_results_lock_and_never_drops_unknown_fields() {
    let case = Case::new();
    let report = case.work.join("report");
    fs::create_dir_all(&report).expect("mkdir");
    let mut doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("json");
    doc["generator"] = serde_json::json!("debug-matrix 9");
    doc["cells"][0]["runner"] = serde_json::json!("ubuntu-24.04");
    fs::write(report.join("report.json"), doc.to_string()).expect("write");

    // Another run holds the results document's lock: `report` waits for it.
    let locks = case.work.join("locks");
    fs::create_dir_all(&locks).expect("mkdir");
    let lock = fs::File::create(locks.join("report.lock")).expect("lock file");
    lock.lock().expect("lock");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--work-dir", case.work.as_str(), "report"])
        .env_remove("DEBUG_MATRIX_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(!report.join("report.md").exists(), "report wrote while another run held the lock");
    lock.unlock().expect("unlock");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("waiting for the results document"), "{stderr}");
    let written: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(report.join("report.json")).expect("read"))
            .expect("json");
    assert_eq!(written["generator"], "debug-matrix 9");
    assert_eq!(written["cells"][0]["runner"], "ubuntu-24.04");

    // An unknown field where this version's types would drop it: refused, left as it is.
    doc["cells"][0]["suites"][0]["flaky_reruns"] = serde_json::json!(3);
    let text = doc.to_string();
    fs::write(report.join("report.json"), &text).expect("write");
    check(
        &case.xtask(&["report"]),
        expect![[r#"
            exit 1
            --- stderr
            error: $TMP/work/report/report.json has fields this version does not know (cells[0].suites[0].flaky_reruns): a newer version wrote it, and rewriting it here would drop them; it was left as it is: use the newer version, or remove those fields, then rerun
        "#]],
    );
    assert_eq!(fs::read_to_string(report.join("report.json")).expect("kept"), text);
}

/// Issue 18, silent defect 6: `report --merge DIR` followed a link to DIR itself ("merged 41
/// files" from one). Links are not followed into directories, and a `report.json` that
/// leads out of DIR is refused.
#[test]
fn merge_follows_no_link_out_of_its_directory_and_never_loops() {
    let case = Case::new();
    let artifacts = case.dir("artifacts");
    fs::create_dir_all(artifacts.join("a")).expect("mkdir");
    fs::write(artifacts.join("a/report.json"), DOCUMENT).expect("write");
    std::os::unix::fs::symlink(&artifacts, artifacts.join("loop")).expect("link");
    std::os::unix::fs::symlink("report.json", artifacts.join("a/again")).expect("link");
    let outside = case.dir("outside");
    fs::write(outside.join("report.json"), DOCUMENT).expect("write");
    fs::create_dir_all(artifacts.join("b")).expect("mkdir");
    std::os::unix::fs::symlink(outside.join("report.json"), artifacts.join("b/report.json"))
        .expect("link");
    let refused = case.xtask(&["report", "--merge", artifacts.as_str()]);
    check(
        &refused,
        expect![[r#"
            exit 1
            --- stderr
            --merge $TMP/artifacts: not following the link $TMP/artifacts/loop
            error: --merge $TMP/artifacts: $TMP/artifacts/b/report.json leads to $TMP/outside/report.json, outside $TMP/artifacts; refusing to merge it: copy the file into $TMP/artifacts instead
        "#]],
    );
    assert!(!case.work.join("report/report.json").exists(), "nothing written");
    fs::remove_file(artifacts.join("b/report.json")).expect("rm");
    let merged = case.xtask(&["report", "--merge", artifacts.as_str()]);
    assert_eq!(merged.code, Some(0), "{}", merged.render());
    assert!(
        merged.stdout.contains("merged 1 report.json file(s) from $TMP/artifacts"),
        "{}",
        merged.render()
    );
}

/// Issue 18, silent defect 8: `--ext a/proj --ext b/proj` were both suite `proj`, sharing a
/// venv and a results slot. A suite is named after its project (`[project].name`), never its
/// directory (issue 19: a project without a name is refused, saying where to give one); two
/// suites of one name are refused before any build, naming both; `--suite` beside `--ext`
/// is refused rather than ignored.
#[test]
fn two_ext_suites_of_one_name_are_refused_naming_both() {
    let mut case = Case::new();
    let repo = camino::Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    case.scrub(repo.canonicalize_utf8().expect("the repository").as_str(), "$REPO");
    for dir in ["a/proj", "b/proj"] {
        let dir = case.dir(dir);
        fs::write(dir.join("setup.py"), "").expect("write");
    }
    check(
        &case.xtask(&["test", "3.13.5+debug", "--ext", "a/proj", "--ext", "b/proj"]),
        expect![[r#"
            exit 1
            --- stderr
            error: $TMP/a/proj: the project has no name: no [project].name in pyproject.toml nor [metadata] name in setup.cfg, and a suite is named after its project, never its directory; give one, or write a debug-matrix.toml beside setup.py with `name = "…"` (`cargo xtask init $TMP/a/proj` starts one)
        "#]],
    );
    fs::write(case.root.join("a/proj/pyproject.toml"), "[project]\nname = \"Proj\"\n")
        .expect("write");
    fs::write(case.root.join("b/proj/pyproject.toml"), "[project]\nname = \"proj\"\n")
        .expect("write");
    let run = case.xtask(&["test", "3.13.5+debug", "--ext", "a/proj", "--ext", "b/proj"]);
    assert!(run.stderr.contains("two suites are named `proj`"), "{}", run.render());
    check(
        &case.xtask(&["test", "3.13.5+debug", "--ext", "b/proj", "--suite", "refbugs"]),
        expect![[r#"
            exit 1
            --- stderr
            error: --suite refbugs names a suite of $REPO/matrix/extensions.toml, but --ext/--pypi replace that file's suites: give one or the other
        "#]],
    );
    // An unknown suite is named with the extensions.toml that was read (`--matrix-dir`).
    let matrix = case.copy_matrix();
    let run =
        case.xtask(&["--matrix-dir", matrix.as_str(), "test", "3.13.5+debug", "--suite", "nope"]);
    assert_eq!(run.code, Some(1), "{}", run.render());
    assert!(
        run.stderr
            .starts_with("error: unknown suite `nope`: $TMP/matrix/extensions.toml has refbugs, "),
        "{}",
        run.render()
    );
    assert_nothing_built(&case);
}

/// `cargo xtask ARGS` from `$TMP` without the `--work-dir` [`Case::xtask`] adds, with `env`.
fn xtask_raw(case: &Case, args: &[&str], env: &[(&str, &str)]) -> common::Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(&case.root)
        .env_remove("DEBUG_MATRIX_DIR")
        .env_remove("DEBUG_MATRIX_MIRROR")
        .envs(env.iter().copied())
        .output()
        .expect("running the xtask binary");
    let scrub = |b: &[u8]| String::from_utf8_lossy(b).replace(case.root.as_str(), "$TMP");
    common::Run { code: out.status.code(), stdout: scrub(&out.stdout), stderr: scrub(&out.stderr) }
}

/// Issue 18's badly handled flags and selections, each refused with its reason before
/// anything is fetched or built: `--timeout 0` (was: no timeout), `--version` beside a cell
/// name (was: ignored), `include = []` (was: every cell), an empty `DEBUG_MATRIX_DIR` (was:
/// "cannot make an empty path absolute"), a work directory with a space (was: configure
/// failed inside, exited 0, and every make failed after); a cell named twice is one cell.
#[test]
fn flags_and_selections_that_would_be_ignored_or_misread_are_refused() {
    let case = Case::new();
    check(
        &case.xtask(&["test", "3.13.5+debug", "--timeout", "0"]),
        expect![[r#"
            exit 2
            --- stderr
            error: invalid value '0' for '--timeout <TIMEOUT>': 0 would mean no limit; give at least 1

            For more information, try '--help'.
        "#]],
    );
    check(
        &case.xtask(&["build", "3.13.5+debug", "--version", "3.11"]),
        expect![[r#"
            exit 1
            --- stderr
            error: --version 3.11 beside cell names (3.13.5+debug): a cell name says its version and variant; give cell names or --version/--variant, not both
        "#]],
    );
    check(
        &case.xtask(&["list", "3.11.2+debug", "3.11.2+debug"]),
        expect![[r#"
            exit 0
            --- stdout
            cell          rebuild  build
            3.11.2+debug  no       --with-pydebug
        "#]],
    );
    let matrix =
        case.matrix_with("cells.toml", "[default]\nexclude = []", "[default]\ninclude = []");
    check(
        &case.xtask(&["--matrix-dir", matrix.as_str(), "list"]),
        expect![[r#"
            exit 1
            --- stderr
            error: $TMP/matrix/cells.toml:10:11: `include = []` would select no cell; remove the key to include every cell, or list patterns
                10 | include = []
                   |           ^
        "#]],
    );
    check(
        &xtask_raw(&case, &["list"], &[("DEBUG_MATRIX_DIR", "")]),
        expect![[r#"
            exit 1
            --- stderr
            error: the work directory is empty (--work-dir "" or DEBUG_MATRIX_DIR set to ""): give a directory, or unset DEBUG_MATRIX_DIR for the default target/debug-matrix
        "#]],
    );
    check(
        &xtask_raw(&case, &["--work-dir", "my work", "build", "3.11.2+debug"], &[]),
        expect![[r#"
            exit 1
            --- stderr
            error: the work directory $TMP/my work has ' ' in its path, and CPython's configure and Makefile cannot build in such a path; choose another (--work-dir or DEBUG_MATRIX_DIR)
        "#]],
    );
    assert!(!case.root.join("my work").exists(), "nothing made in the refused work directory");
    assert_nothing_built(&case);
}

/// Issue 18: `run` on a cell that is not built started a build without a word; it says so
/// first.
#[test]
fn run_on_an_unbuilt_cell_says_it_builds_it_first() {
    let case = Case::new();
    let empty = case.dir("empty-mirror");
    let run = case.xtask(&[
        "run",
        "--no-upstream",
        "--mirror",
        empty.as_str(),
        "3.11.2+debug",
        "--",
        "python",
        "-V",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.render());
    assert!(
        run.stderr.starts_with(
            "3.11.2+debug is not built yet: building it first (several minutes; `cargo xtask \
             build 3.11.2+debug` does the same), then running the command\n"
        ),
        "{}",
        run.render()
    );
}

/// Whether process `pid` still runs (a zombie waiting to be reaped does not).
fn alive(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
    }
}

/// Issue 18: `kill -9` of `cargo xtask` left its `make` running, and a rerun raced it in the
/// same build directory. Every process group the tool starts has a watchdog: within 5 s of
/// the kill, nothing the build started is left (make, the shell of its recipe, a job in the
/// background).
#[test]
fn kill_9_of_the_tool_leaves_no_process_it_started() {
    let case = Case::new();
    let shared = case.shared.to_string();
    let fetched = case.xtask(&["fetch", "--no-upstream", "--mirror", &shared, "3.11.2+debug"]);
    assert_eq!(fetched.code, Some(0), "{}", fetched.render());
    let root = fake_build(&case, "3.11.2+debug");
    let pids = root.join("pids");
    fs::write(
        root.join("build/Makefile"),
        format!("all:\n\techo $$$$ >> {pids}; sleep 300 & echo $$! >> {pids}; wait\n"),
    )
    .expect("write");
    let mut tool =
        case.spawn_xtask(&["build", "--no-upstream", "--mirror", &shared, "3.11.2+debug"]);
    let started = std::time::Instant::now();
    let running = loop {
        let text = fs::read_to_string(&pids).unwrap_or_default();
        if text.lines().count() == 2 {
            break text;
        }
        assert!(started.elapsed().as_secs() < 60, "the fake make never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    tool.kill().expect("SIGKILL");
    tool.wait().expect("reaped");
    let killed = std::time::Instant::now();
    let pids: Vec<&str> = running.lines().collect();
    while pids.iter().any(|p| alive(p)) {
        assert!(
            killed.elapsed().as_secs() < 5,
            "5 s after kill -9 of the tool, its processes {pids:?} still run"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Issue 18: a rerun raced a leftover `make` in the same build directory ("Text file busy").
/// A build directory some process still works in is never built into: the cell fails naming
/// the process.
#[test]
fn a_build_directory_in_use_by_a_leftover_process_is_never_built_into() {
    let case = Case::new();
    let shared = case.shared.to_string();
    let fetched = case.xtask(&["fetch", "--no-upstream", "--mirror", &shared, "3.11.2+debug"]);
    assert_eq!(fetched.code, Some(0), "{}", fetched.render());
    let root = fake_build(&case, "3.11.2+debug");
    let mut leftover = std::process::Command::new("sleep")
        .arg("300")
        .current_dir(root.join("build"))
        .spawn()
        .expect("spawn");
    let run = case.xtask(&["build", "--no-upstream", "--mirror", &shared, "3.11.2+debug"]);
    let _ = leftover.kill();
    let _ = leftover.wait();
    assert_eq!(run.code, Some(1), "{}", run.render());
    let expected = format!(
        "$TMP/work/builds/{}/build is in use by process {} (sleep 300), left by an earlier run",
        root.file_name().expect("key"),
        leftover.id()
    );
    assert!(run.stdout.contains(&expected), "{}", run.render());
    assert_eq!(made(&root), 0, "nothing was built into it");
    let again = case.xtask(&["build", "--no-upstream", "--mirror", &shared, "3.11.2+debug"]);
    assert_eq!(made(&root), 1, "built once it is free: {}", again.render());
}

/// A usable cell without building CPython: `3.11.2+release` "built" by a fake Makefile that
/// installs a copy of the machine's Python 3.11, which keeps the release variant's promise
/// (the promise says nothing of the patch version).
fn fake_release_cell(case: &Case) {
    let host = camino::Utf8Path::new("/usr/bin/python3.11");
    assert!(
        host.is_file() && camino::Utf8Path::new("/usr/include/python3.11/Python.h").is_file(),
        "this test needs the machine's Python 3.11 with its headers ({host}, python3.11-dev)"
    );
    let shared = case.shared.to_string();
    let fetched = case.xtask(&["fetch", "--no-upstream", "--mirror", &shared, "3.11.2+release"]);
    assert_eq!(fetched.code, Some(0), "{}", fetched.render());
    let root = fake_build(case, "3.11.2+release");
    let prefix = root.join("prefix");
    fs::write(
        root.join("build/Makefile"),
        format!(
            "all:\n\ttrue\ninstall:\n\tmkdir -p {prefix}/bin\n\tcp {host} {prefix}/bin/python3.11\n\t\
             ln -sf python3.11 {prefix}/bin/python3\n"
        ),
    )
    .expect("write");
    let built = case.xtask(&["build", "--no-upstream", "--mirror", &shared, "3.11.2+release"]);
    assert!(built.stdout.contains("promise kept"), "{}", built.render());
}

/// Issue 18: Ctrl-C during `test` replaced the suite's last complete results with an
/// "interrupted" finding. The interrupted run is not recorded: report.json keeps the last
/// complete results, and the run says so.
#[test]
fn ctrl_c_during_test_keeps_the_suites_last_complete_results() {
    let mut case = Case::new();
    fake_release_cell(&case);
    // The layout-beside fixture and a test that waits while a marker file exists.
    let marker = case.root.join("marker");
    let project = beside_project(
        &case,
        "beside",
        "test_wait.py",
        "import os, pathlib, time\n\n\ndef test_waits_when_asked():\n    marker = \
         pathlib.Path(os.environ['DM_MARKER'])\n    if marker.exists():\n        \
         pathlib.Path(str(marker) + '.started').write_text('')\n        time.sleep(120)\n",
    );
    let args = ["test", "3.11.2+release", "--ext", project.as_str()];
    case.env("DM_MARKER", marker.as_str());
    let first = case.xtask(&args);
    assert!(first.stdout.contains("dm-layout-beside 3 passed"), "{}", first.render());
    let report = case.work.join("report/report.json");
    let suite = |text: &str| {
        let doc: serde_json::Value = serde_json::from_str(text).expect("json");
        let mut suite = doc["cells"][0]["suites"][0].clone();
        suite["seconds"] = serde_json::Value::Null;
        suite
    };
    let complete = suite(&fs::read_to_string(&report).expect("report"));
    assert_eq!(complete["counts"]["passed"], 3, "{complete}");

    fs::write(&marker, "").expect("write");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--work-dir")
        .arg(&case.work)
        .args(args)
        .env("DM_MARKER", &marker)
        .env_remove("DEBUG_MATRIX_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let started = std::time::Instant::now();
    while !case.root.join("marker.started").exists() {
        assert!(started.elapsed().as_secs() < 120, "the waiting test never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr).replace(case.root.as_str(), "$TMP");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "3.11.2+release: dm-layout-beside: this run was interrupted and is not recorded; \
             $TMP/work/report/report.json keeps the suite's last complete results"
        ),
        "{stderr}"
    );
    assert_eq!(suite(&fs::read_to_string(&report).expect("report")), complete);
}

/// A copy of the layout-beside fixture at `$TMP/<name>` with `tests/<file>` holding `test`.
fn beside_project(case: &Case, name: &str, file: &str, test: &str) -> camino::Utf8PathBuf {
    let project = case.dir(name);
    let fixture =
        camino::Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layout-beside");
    let copied = std::process::Command::new("cp")
        .args(["-r", &format!("{fixture}/."), project.as_str()])
        .status()
        .expect("cp");
    assert!(copied.success());
    fs::write(project.join("tests").join(file), test).expect("write");
    project
}

/// Issue 18, silent defect 7, end to end: a suite whose test calls `os._exit(0)` read as
/// clean (exit 0). It is a crash finding naming the test, and the run fails.
#[test]
fn a_test_process_that_exits_early_is_a_finding_not_clean() {
    let case = Case::new();
    fake_release_cell(&case);
    let project = beside_project(
        &case,
        "exits",
        "test_exits.py",
        "import os\n\n\ndef test_a():\n    pass\n\n\ndef test_b_exits():\n    os._exit(0)\n\n\n\
         def test_c():\n    pass\n",
    );
    let run = case.xtask(&["test", "3.11.2+release", "--ext", project.as_str()]);
    assert_eq!(run.code, Some(1), "{}", run.render());
    assert!(
        run.stdout.contains(
            "crash in tests/test_exits.py::test_b_exits: the test process exited with 0 before \
             its session ended, during tests/test_exits.py::test_b_exits"
        ),
        "{}",
        run.render()
    );
}

/// Issue 18, silent defect 1, end to end: with the cell's interpreter moved away, `run CELL
/// -- python` printed the host's Python. The build is found damaged and installed again, and
/// `python` is the cell's interpreter by absolute path.
#[test]
fn run_uses_the_cells_own_interpreter_never_the_hosts() {
    let case = Case::new();
    fake_release_cell(&case);
    let key = build_key(&case, "3.11.2+release");
    let prefix = case.work.join("builds").join(&key[..16]).join("prefix");
    fs::rename(prefix.join("bin/python3.11"), case.root.join("moved")).expect("mv");
    let run = case.xtask(&[
        "run",
        "3.11.2+release",
        "--",
        "python",
        "-c",
        "import sys; print(sys.executable)",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.render());
    assert!(run.stderr.contains("is damaged: the interpreter"), "{}", run.render());
    assert_eq!(
        run.stdout.lines().last(),
        Some(format!("{prefix}/bin/python3").replace(case.root.as_str(), "$TMP").as_str()),
        "{}",
        run.render()
    );
}

/// Issue 18: `kill -9` of `cargo xtask` during a test run left pytest sleeping on. Within
/// 5 s of the kill, the test process and what it started are gone.
#[test]
fn kill_9_during_a_test_run_leaves_no_pytest_behind() {
    let case = Case::new();
    fake_release_cell(&case);
    let pids = case.root.join("pids");
    let project = beside_project(
        &case,
        "sleeper",
        "test_sleeps.py",
        &format!(
            "import os, subprocess, time\n\n\ndef test_sleeps():\n    child = \
             subprocess.Popen(['sleep', '300'])\n    with open('{pids}', 'w') as f:\n        \
             f.write(f'{{os.getpid()}}\\n{{child.pid}}\\n')\n    time.sleep(300)\n"
        ),
    );
    let mut tool = case.spawn_xtask(&["test", "3.11.2+release", "--ext", project.as_str()]);
    let started = std::time::Instant::now();
    let running = loop {
        let text = fs::read_to_string(&pids).unwrap_or_default();
        if text.lines().count() == 2 {
            break text;
        }
        assert!(started.elapsed().as_secs() < 120, "the sleeping test never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    tool.kill().expect("SIGKILL");
    tool.wait().expect("reaped");
    let killed = std::time::Instant::now();
    let pids: Vec<&str> = running.lines().collect();
    while pids.iter().any(|p| alive(p)) {
        assert!(
            killed.elapsed().as_secs() < 5,
            "5 s after kill -9 of the tool, pytest and its child {pids:?} still run"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A constraints file that pip would misread (an option) or that is not there is refused
/// before any cell is built, naming the file and the line.
#[test]
fn bad_constraints_files_are_refused_before_any_build() {
    let mut case = Case::new();
    let matrix = case.copy_matrix();
    let repo = camino::Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    case.scrub(repo.canonicalize_utf8().expect("the repository").as_str(), "$REPO");
    fs::write(matrix.join("constraints.txt"), "pytest==9.2.0\n-c elsewhere.txt\n")
        .expect("writing constraints.txt");
    let test = ["--matrix-dir", matrix.as_str(), "test", "3.13.5+debug", "--suite", "refbugs"];
    check(
        &case.xtask(&test),
        expect![[r#"
            exit 1
            --- stderr
            error: the matrix's constraints: $TMP/matrix/constraints.txt:2: `-c elsewhere.txt` is not a constraint (NAME==VERSION, optionally with `; marker`): options and includes are not read here
        "#]],
    );
    fs::write(matrix.join("constraints.txt"), "pytest==9.2.0\n").expect("writing constraints.txt");
    common::edit(
        &matrix.join("extensions.toml"),
        "path = \"examples/refbugs\"",
        "path = \"examples/refbugs\"\nconstraints = \"refbugs-pins.txt\"",
    );
    check(
        &case.xtask(&test),
        expect![[r#"
            exit 1
            --- stderr
            error: $TMP/matrix/extensions.toml: suite `refbugs`: its `constraints`: reading $TMP/matrix/refbugs-pins.txt; create it or fix the path: No such file or directory (os error 2)
        "#]],
    );
    assert_nothing_built(&case);
}
