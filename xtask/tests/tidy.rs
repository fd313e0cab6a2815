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
    // ... with the slow test: it unsets the variable that skips it.
    let (before, _) = ci.split_once(command).unwrap_or_default();
    assert!(
        before.contains("unset SKIP_SLOW_TESTS"),
        ".ci/run: `unset SKIP_SLOW_TESTS` before the test command, so that CI runs the slow test"
    );
}

/// The contributor's loop (everything but the slow end-to-end scenario) is one command, named
/// in README.md's and ARCHITECTURE.md's test sections, and the scenario is the slow test it
/// skips: `xtask/build.rs`'s cfg ignores it, with its reason, under `SKIP_SLOW_TESTS`.
#[test]
fn the_contributors_loop_is_documented_and_skips_only_the_slow_test() {
    const LOOP: &str = "SKIP_SLOW_TESTS=1 cargo test --workspace";
    let root = repo();
    for doc in ["README.md", "ARCHITECTURE.md"] {
        let text = fs::read_to_string(root.join(doc)).expect(doc);
        assert!(text.contains(LOOP), "{doc}:1: name the contributor's loop, `{LOOP}`");
    }
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("xtask"), &mut files);
    let gated: Vec<&Utf8PathBuf> = files
        .iter()
        .filter(|p| {
            let text = fs::read_to_string(p).unwrap_or_default();
            text.match_indices("cfg_attr(")
                .any(|(at, m)| text[at + m.len()..].trim_start().starts_with("skip_slow_tests"))
        })
        .collect();
    assert_eq!(
        gated,
        [&root.join("xtask/tests/matrix.rs")],
        "only the end-to-end scenario is a slow test; a new one says so in ARCHITECTURE.md"
    );
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

/// A test's file: under a `tests` directory, or a unit-test module's own file (`tests.rs`,
/// `tests_*.rs`, `*_tests.rs`).
fn is_test_file(path: &Utf8Path) -> bool {
    let stem = path.file_stem().unwrap_or("");
    path.components().any(|c| c.as_str() == "tests")
        || stem == "tests"
        || stem.starts_with("tests_")
        || stem.ends_with("_tests")
}

/// STYLE.md's size limits: no Rust source file outside tests over 700 lines, no module of
/// the pytest plugin over 500. A file that grows past them is split by job.
#[test]
fn files_stay_small() {
    const RUST_LIMIT: usize = 700;
    const PLUGIN_LIMIT: usize = 500;
    let root = repo();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("xtask"), &mut files);
    let mut long = Vec::new();
    for path in files.iter().filter_map(|p| p.strip_prefix(&root).ok()) {
        if is_test_file(path) {
            continue;
        }
        let lines = fs::read_to_string(root.join(path)).unwrap_or_default().lines().count();
        if lines > RUST_LIMIT {
            long.push(format!(
                "{path}:{lines}: {lines} lines, over {RUST_LIMIT}: split it by job (its unit \
                 tests go to its `tests.rs`, see ARCHITECTURE.md)"
            ));
        }
    }
    let plugin = plugin_modules();
    assert!(plugin.len() > 1, "no plugin modules found; this check would look at nothing");
    for (path, text) in &plugin {
        let lines = text.lines().count();
        if lines > PLUGIN_LIMIT {
            long.push(format!(
                "{path}:{lines}: {lines} lines, over {PLUGIN_LIMIT}: split the module by job \
                 (and list the new one in the package docstring and ARCHITECTURE.md)"
            ));
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
}

/// The plugin package's own files: (path relative to the repository, text) of every `*.py`.
fn plugin_modules() -> Vec<(Utf8PathBuf, String)> {
    let dir = Utf8Path::new("crates/exttest/python/debug_matrix_pytest");
    let mut out: Vec<(Utf8PathBuf, String)> = fs::read_dir(repo().join(dir))
        .expect("the plugin package")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.ends_with(".py"))
        .map(|name| {
            let path = dir.join(name);
            let text = fs::read_to_string(repo().join(&path))
                .unwrap_or_else(|e| panic!("reading {path}: {e}"));
            (path, text)
        })
        .collect();
    out.sort();
    out
}

/// The body of the docstring section `title` (a `Title` line over a `-----` line), with the
/// line number of its first line.
fn docstring_section<'a>(text: &'a str, title: &str) -> (usize, Vec<&'a str>) {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .windows(2)
        .position(|w| w[0] == title && !w[1].is_empty() && w[1].chars().all(|c| c == '-'))
        .unwrap_or_else(|| panic!("the plugin's docstring has no `{title}` section"))
        + 2;
    let mut body = Vec::new();
    for (i, line) in lines[start..].iter().enumerate() {
        let next = lines.get(start + i + 1).copied().unwrap_or("");
        let heading = !next.is_empty() && next.chars().all(|c| c == '-');
        if heading || line.starts_with("\"\"\"") {
            break;
        }
        body.push(*line);
    }
    (start + 1, body)
}

/// The names a docstring section defines: its lines that start with ``` ``NAME ``` (the rest
/// of the line is the option's argument or nothing).
fn documented(body: &[&str]) -> Vec<String> {
    body.iter()
        .filter_map(|l| l.strip_prefix("``"))
        .filter_map(|l| l.split("``").next())
        .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

/// What follows each `needle` in `text`, up to the closing `"`.
fn quoted_after(text: &str, needle: &str) -> Vec<String> {
    text.match_indices(needle)
        .filter_map(|(at, _)| {
            let rest = text[at + needle.len()..].trim_start();
            let rest = rest.strip_prefix('"')?;
            Some(rest.split('"').next().unwrap_or("").to_owned())
        })
        .collect()
}

fn differences(what: &str, a: (&str, &[String]), b: (&str, &[String])) -> Vec<String> {
    let mut out = Vec::new();
    for x in a.1.iter().filter(|x| !b.1.contains(x)) {
        out.push(format!("{what} `{x}` is in {} but not in {}", a.0, b.0));
    }
    for x in b.1.iter().filter(|x| !a.1.contains(x)) {
        out.push(format!("{what} `{x}` is in {} but not in {}", b.0, a.0));
    }
    out
}

/// The plugin's docstring (`__init__.py`) documents exactly the options its argument parser
/// declares and exactly the event kinds of `events.schema.json`, which are exactly the kinds
/// its modules write: nothing documented that does not exist, nothing existing undocumented.
#[test]
fn the_plugin_documents_its_options_and_events() {
    let modules = plugin_modules();
    let init = modules
        .iter()
        .find(|(p, _)| p.file_name() == Some("__init__.py"))
        .expect("the plugin's __init__.py");
    let doc_path = format!("{}", init.0);

    let (options_line, options_doc) = docstring_section(&init.1, "Options");
    let documented_options = documented(&options_doc);
    let mut declared_options = Vec::new();
    for (_, text) in &modules {
        declared_options.extend(quoted_after(text, "addoption("));
    }
    assert!(
        declared_options.len() > 5 && declared_options.iter().all(|o| o.starts_with("--dm-")),
        "the plugin's argument parser (`addoption(\"--dm-…\"`) was not found: {declared_options:?}"
    );
    let mut problems = differences(
        "option",
        (&format!("{doc_path}:{options_line} (the Options section)"), &documented_options),
        ("the argument parser (`addoption`)", &declared_options),
    );

    let (events_line, events_doc) = docstring_section(&init.1, "Events");
    let documented_events = documented(&events_doc);
    let schema_path = "crates/exttest/python/events.schema.json";
    let schema: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(repo().join(schema_path))
            .unwrap_or_else(|e| panic!("reading {schema_path}: {e}")),
    )
    .unwrap_or_else(|e| panic!("{schema_path}: {e}"));
    let schema_events: Vec<String> = schema["oneOf"]
        .as_array()
        .expect("the schema's oneOf")
        .iter()
        .filter_map(|r| r["$ref"].as_str()?.strip_prefix("#/$defs/").map(str::to_owned))
        .collect();
    let mut written_events = Vec::new();
    for (_, text) in &modules {
        for kind in quoted_after(text, "\"event\":") {
            if !written_events.contains(&kind) {
                written_events.push(kind);
            }
        }
    }
    assert!(schema_events.len() > 5, "{schema_path}: no event kinds in oneOf");
    problems.extend(differences(
        "event",
        (&format!("{doc_path}:{events_line} (the Events section)"), &documented_events),
        (&format!("{schema_path} (oneOf)"), &schema_events),
    ));
    problems.extend(differences(
        "event",
        (&format!("{schema_path} (oneOf)"), &schema_events),
        ("the plugin's modules (`\"event\": \"…\"`)", &written_events),
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every option of the plugin's argument parser is used by the plugin's own tests
/// (`python/plugin-tests/`), so none is untested.
#[test]
fn the_plugin_tests_use_every_option() {
    let tests_dir = "crates/exttest/python/plugin-tests";
    let mut tests = String::new();
    for entry in fs::read_dir(repo().join(tests_dir)).expect("plugin-tests/").flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "py") {
            tests.push_str(&fs::read_to_string(&path).expect("a plugin test file"));
        }
    }
    let mut declared = Vec::new();
    for (_, text) in plugin_modules() {
        declared.extend(quoted_after(&text, "addoption("));
    }
    assert!(declared.len() > 5, "the plugin's argument parser was not found");
    let unused: Vec<String> = declared
        .iter()
        .filter(|option| {
            !tests.match_indices(option.as_str()).any(|(at, _)| {
                let next = tests[at + option.len()..].chars().next().unwrap_or(' ');
                !(next.is_ascii_alphanumeric() || next == '-' || next == '_')
            })
        })
        .map(|o| format!("{tests_dir}: no test uses the plugin's option `{o}`; add one"))
        .collect();
    assert!(unused.is_empty(), "{}", unused.join("\n"));
}

/// ARCHITECTURE.md's convention for unit tests: a module's are its child module `tests`, in
/// its own file (`src/tests.rs` for the crate root, `src/x/tests.rs` for `src/x.rs`), never
/// inline and never under another name.
#[test]
fn unit_tests_live_in_the_modules_tests_file() {
    // Being reshaped by other work when the convention was applied: convert them, then take
    // them off this list.
    let root = repo();
    let mut files = Vec::new();
    for entry in fs::read_dir(root.join("crates")).expect("crates/").flatten() {
        if let Ok(dir) = Utf8PathBuf::from_path_buf(entry.path().join("src")) {
            rust_files(&dir, &mut files);
        }
    }
    rust_files(&root.join("xtask/src"), &mut files);
    let mut wrong = Vec::new();
    let mut declared = 0;
    for path in &files {
        let rel = path.strip_prefix(&root).unwrap_or(path);
        let text = fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if line.trim() != "#[cfg(test)]" {
                continue;
            }
            let Some(item) = lines[n + 1..].iter().map(|l| l.trim()).find(|l| !l.starts_with("#["))
            else {
                continue;
            };
            let Some(module) = item.strip_prefix("mod ").or_else(|| item.strip_prefix("pub mod "))
            else {
                continue;
            };
            declared += 1;
            if module != "tests;" {
                wrong.push(format!(
                    "{rel}:{}: `mod {module}`: a module's unit tests are `mod tests;`, in its own \
                     file ({}); see ARCHITECTURE.md",
                    n + 1,
                    if rel.file_name() == Some("lib.rs") {
                        "src/tests.rs".to_owned()
                    } else {
                        format!("{}/tests.rs", rel.with_extension(""))
                    }
                ));
            }
        }
    }
    assert!(declared > 10, "found only {declared} test modules; this check looks at nothing");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
