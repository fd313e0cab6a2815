//! Repository hygiene, as a test (rust-analyzer's `tidy.rs`): formatting, module docs, the
//! docs a newcomer needs, every crate on the map. Failures say `path:line` and the fix.

use std::{fs, process::Command};

use camino::{Utf8Path, Utf8PathBuf};

fn repo() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_owned()
}

fn rust_files(dir: &Utf8Path, out: &mut Vec<Utf8PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(path) = Utf8PathBuf::from_path_buf(entry.path()) else { continue };
        if path.is_dir() {
            if path.file_name() != Some("target") && path.file_name() != Some("fixtures") {
                rust_files(&path, out);
            }
        } else if path.extension() == Some("rs") {
            out.push(path);
        }
    }
}

#[test]
fn formatted() {
    let out = Command::new(env!("CARGO"))
        .args(["fmt", "--all", "--", "--check"])
        .current_dir(repo())
        .output()
        .expect("cargo fmt runs");
    assert!(
        out.status.success(),
        "code is not formatted; run `cargo fmt --all`:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn every_module_has_a_doc_header() {
    let mut files = Vec::new();
    rust_files(&repo().join("crates"), &mut files);
    rust_files(&repo().join("xtask"), &mut files);
    let missing: Vec<String> = files
        .iter()
        .filter(|p| {
            let text = fs::read_to_string(p).unwrap_or_default();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            // Unit-test modules in their own file (`mod tests;`) are exempt.
            !first.starts_with("//!") && p.file_name() != Some("tests.rs")
        })
        .map(|p| format!("{p}:1: add a `//!` line saying what this module is for"))
        .collect();
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn docs_name_every_crate() {
    let root = repo();
    for doc in ["README.md", "ARCHITECTURE.md"] {
        assert!(root.join(doc).is_file(), "{doc} is missing");
    }
    let arch = fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut missing = Vec::new();
    for entry in fs::read_dir(root.join("crates")).expect("crates/").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !arch.contains(&format!("crates/{name}")) {
            missing.push(format!("ARCHITECTURE.md:1: the codemap does not mention crates/{name}"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn ci_runs_the_readme_test_command() {
    let root = repo();
    let readme = fs::read_to_string(root.join("README.md")).expect("README.md");
    let ci = fs::read_to_string(root.join(".ci/run")).expect(".ci/run");
    let command = readme
        .lines()
        .find(|l| l.starts_with("cargo test"))
        .expect("README.md has a line starting with `cargo test`: the test command");
    let command = command.split('#').next().unwrap_or(command).trim();
    assert!(ci.contains(command), ".ci/run must run the README's test command `{command}`");
}

#[test]
fn the_workflow_takes_its_cells_from_the_tool() {
    let root = repo();
    let workflow = fs::read_to_string(root.join(".github/workflows/matrix.yml")).expect("workflow");
    assert!(
        workflow.contains("xtask list --json"),
        ".github/workflows/matrix.yml:1: the cell list must come from `cargo xtask list --json`"
    );
    assert!(
        workflow.contains("fromJson(needs.cells.outputs.cells)"),
        ".github/workflows/matrix.yml:1: the cell job's matrix must be fromJson of the cells job's output"
    );
    // No cell, version or variant may be written into the workflow by hand.
    let text = fs::read_to_string(root.join("matrix/versions.toml")).expect("versions.toml");
    for line in text.lines().filter(|l| l.starts_with("version = ")) {
        let version = line.trim_start_matches("version = ").trim_matches('"');
        for (n, l) in workflow.lines().enumerate() {
            assert!(
                l.trim_start().starts_with('#') || !l.contains(version),
                ".github/workflows/matrix.yml:{}: `{version}` is written by hand; take it from the tool",
                n + 1
            );
        }
    }
    for (n, l) in workflow.lines().enumerate() {
        assert!(
            !l.contains("uses:") || l.split('@').nth(1).is_some_and(|r| r.len() >= 40),
            ".github/workflows/matrix.yml:{}: pin the action by its full commit hash",
            n + 1
        );
        assert!(
            !(l.contains("run:") && l.contains("${{")),
            ".github/workflows/matrix.yml:{}: pass values to scripts through env:, not ${{{{ }}}}",
            n + 1
        );
    }
    assert!(workflow.contains("permissions: {}"), "the workflow starts from no permissions");
}

/// Every test `docs/faults.md` names exists (`file::function`, with `cli`, `faults` and
/// `matrix` for the end-to-end tests), so the catalogue cannot point at nothing; and it has
/// the 50 faults issue 9 asks for.
#[test]
fn the_fault_catalogue_names_real_tests() {
    let text = fs::read_to_string(repo().join("docs/faults.md")).expect("docs/faults.md");
    let mut rows = 0;
    let mut missing = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| #")) {
        rows += 1;
        let tests: Vec<&str> = line.split('`').filter(|part| part.contains("::")).collect();
        assert!(!tests.is_empty(), "docs/faults.md: a row names no test: {line}");
        for test in tests {
            let (file, function) = test.rsplit_once("::").expect("file::function");
            let path = match file {
                "cli" | "faults" | "matrix" => repo().join(format!("xtask/tests/{file}.rs")),
                _ => repo().join(file),
            };
            let source = fs::read_to_string(&path).unwrap_or_default();
            if !source.contains(&format!("fn {function}(")) {
                missing.push(format!("{test} (looked in {path})"));
            }
        }
    }
    // The tests named per invariant (the list after the table) must exist too.
    let heading = "## The invariants of ARCHITECTURE.md and the faults that test them";
    let invariants = text.split_once(heading).map_or("", |(_, after)| after);
    for line in invariants.lines() {
        for test in line.split('`').skip(1).step_by(2).filter(|part| part.contains("::")) {
            let (file, function) = test.rsplit_once("::").expect("file::function");
            let path = match file {
                "cli" | "faults" | "matrix" => repo().join(format!("xtask/tests/{file}.rs")),
                _ => repo().join(file),
            };
            let source = fs::read_to_string(&path).unwrap_or_default();
            if !source.contains(&format!("fn {function}(")) {
                missing.push(format!("{test} (looked in {path})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/faults.md names tests that do not exist:\n{}",
        missing.join("\n")
    );
    // Every invariant of ARCHITECTURE.md is there, by its bold name.
    let arch = fs::read_to_string(repo().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let section = arch.split_once("## Invariants").map_or("", |(_, after)| after);
    let section = section.split("\n## ").next().unwrap_or("");
    for line in section.lines().filter(|l| l.starts_with("- **")) {
        let name = line[4..].split("**").next().unwrap_or("").trim_end_matches('.');
        if !invariants.contains(&format!("- **{name}")) {
            missing.push(format!(
                "docs/faults.md:1: the invariant `{name}` of ARCHITECTURE.md is not listed with \
                 the faults that test it (a `- **{name}**` line)"
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    assert!(
        !invariants.is_empty(),
        "docs/faults.md:1: say per invariant of ARCHITECTURE.md which faults test it"
    );
    assert!(rows >= 50, "docs/faults.md lists {rows} faults; issue 9 asks for at least 50");
}

/// README's caller workflow ("Your extension across the matrix") is the file `cargo xtask init`
/// writes: its one template, `crates/exttest/templates/debug-matrix.yml`, with `OWNER`,
/// `COMMIT` and the path `.` filled in.
#[test]
fn the_readme_quotes_the_caller_workflow_init_writes() {
    let readme = fs::read_to_string(repo().join("README.md")).expect("README.md");
    let begin = "<!-- caller workflow: begin -->\n```yaml\n";
    let start = readme.find(begin).expect("README marks the caller workflow's block") + begin.len();
    let len = readme[start..].find("```\n<!-- caller workflow: end -->").expect("its end");
    let template = repo().join("crates/exttest/templates/debug-matrix.yml");
    let filled = fs::read_to_string(&template)
        .expect("the template")
        .replace("@@TOOL_REPOSITORY@@", "OWNER/debug-matrix")
        .replace("@@TOOL_REF@@", "COMMIT")
        .replace("@@PATH@@", ".");
    assert_eq!(
        &readme[start..start + len],
        filled,
        "README's caller workflow is not {template} (filled in): copy the template into README"
    );
}
