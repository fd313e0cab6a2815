use expect_test::expect;

use super::*;
use crate::environment::Package;

fn cell(name: &str) -> matrix::CellId {
    name.parse().expect("a cell name")
}

fn pins(path: &str, text: &str) -> Pins {
    Pins::parse(Utf8Path::new(path), text).expect("parses")
}

#[test]
fn a_file_is_read_and_bad_lines_are_refused() {
    let p = pins(
        "matrix/constraints.txt",
        "# comment\n\npytest==9.2.0  # why\nSetuptools_SCM==10.3.4\nnumpy==2.3.0; python_version >= \"3.12\"\n",
    );
    let shown: Vec<String> =
        p.pins.iter().map(|p| format!("{}:{} {}", p.line, p.name, p.spec)).collect();
    expect![[r#"["3:pytest pytest==9.2.0", "4:setuptools-scm Setuptools_SCM==10.3.4", "5:numpy numpy==2.3.0; python_version >= \"3.12\""]"#]]
        .assert_eq(&format!("{shown:?}"));
    for bad in [
        "-c other.txt\n",
        "--index-url x\n",
        "==1\n",
        "pytest=9.2\n",
        "pytest==9.2 ; python_versio > \"3\"\n",
    ] {
        let err = Pins::parse(Utf8Path::new("c.txt"), bad).expect_err(bad);
        assert!(err.starts_with("c.txt:1: `"), "{err}");
    }
}

/// The suite's own file wins for what it names; the suite's project is never pinned, so
/// `--pypi markupsafe==3.0.3` builds though the global file pins markupsafe 3.0.2.
#[test]
fn the_suites_own_file_wins_and_its_project_is_free() {
    let global =
        pins("matrix/constraints.txt", "markupsafe==3.0.2\npytest==9.2.0\nsetuptools==84.2.1\n");
    let own = pins("matrix/wrapt-constraints.txt", "pytest==7.4.4\nMarkupSafe==3.0.1\n");
    expect![[r#"
        # written by debug-matrix for this suite: the constraints below, each with its origin
        setuptools==84.2.1  # matrix/constraints.txt:3
        pytest==7.4.4  # matrix/wrapt-constraints.txt:1
    "#]]
    .assert_eq(&effective(Some(&global), Some(&own), &["MarkupSafe"]));
    expect![[r#"
        # written by debug-matrix for this suite: the constraints below, each with its origin
        markupsafe==3.0.2  # matrix/constraints.txt:1
        pytest==9.2.0  # matrix/constraints.txt:2
        setuptools==84.2.1  # matrix/constraints.txt:3
    "#]]
    .assert_eq(&effective(Some(&global), None, &["refbugs"]));
}

/// pip's own words (25.1.1) when a suite's test extra wants `pytest~=7.4` and the
/// constraints pin 9.2.0, and when a build backend needs a newer setuptools.
#[test]
fn pips_failure_under_the_constraints_names_the_pin_and_what_to_do() {
    let eff = effective(
        Some(&pins("matrix/constraints.txt", "pytest==9.2.0\nsetuptools==84.2.1\n")),
        None,
        &[],
    );
    let conflict = "ERROR: Cannot install pytest~=7.4 because these package versions have conflicting dependencies.\n\
                    \nThe conflict is caused by:\n    The user requested pytest~=7.4\n    The user requested (constraint) pytest==9.2.0\n\
                    \nTo fix this you could try to:\n1. loosen the range of package versions you've specified\n\
                    ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts\n";
    expect![[r#"Some("pip cannot satisfy the constraints `pytest==9.2.0` (matrix/constraints.txt:1) together with what the suite's build or tests require. Either pin a version that fits in the suite's own constraints file (`constraints` in matrix/extensions.toml, or [tool.debug-matrix] in its pyproject.toml), or refresh matrix/constraints.txt from an unpinned run: `cargo xtask test … --update-constraints`")"#]]
        .assert_eq(&format!("{:?}", explain(conflict, &eff)));
    let missing = "  ERROR: Could not find a version that satisfies the requirement setuptools>=90 (from versions: none)\n";
    assert!(
        explain(missing, &eff)
            .is_some_and(|m| m.contains("`setuptools==84.2.1` (matrix/constraints.txt:2)"))
    );
    assert_eq!(explain("ERROR: No matching distribution found for nothere", &eff), None);
    assert_eq!(explain(conflict, &effective(None, None, &[])), None);
}

fn env(
    project: &str,
    packages: &[(&str, &str, PackageSource)],
    build: &[(&str, &str)],
) -> Environment {
    let package = |(n, v, s): &(&str, &str, PackageSource)| Package {
        name: (*n).to_owned(),
        version: (*v).to_owned(),
        source: *s,
    };
    Environment {
        pip: "25.1.1".into(),
        pytest: Some("9.2.0".into()),
        project: project.into(),
        constraints: Vec::new(),
        packages: packages.iter().map(package).collect(),
        build: build.iter().map(|(n, v)| package(&(n, v, PackageSource::Wheel))).collect(),
    }
}

#[test]
fn update_pins_what_suites_installed_across_python_versions() {
    use PackageSource::*;
    let markupsafe = env(
        "MarkupSafe",
        &[("MarkupSafe", "3.0.2", Sdist), ("pip", "25.1.1", Venv), ("pytest", "9.2.0", Wheel)],
        &[("setuptools", "84.2.1")],
    );
    let old311 = env(
        "refbugs",
        &[
            ("refbugs", "0.1", Local),
            ("pytest", "9.2.0", Wheel),
            ("setuptools", "65.5.0", Venv),
            ("numpy", "2.2.6", Wheel),
        ],
        &[("setuptools", "84.2.1")],
    );
    let new313 = env("refbugs", &[("numpy", "2.3.5", Wheel), ("pytest", "7.4.4", Wheel)], &[]);
    let old = pins("matrix/constraints.txt", "pytest==8.0.0\nujson==5.0\n");
    let ran = [
        Ran {
            cell: &cell("3.13.5+debug"),
            suite: "markupsafe",
            environment: &markupsafe,
            own: BTreeSet::new(),
        },
        Ran {
            cell: &cell("3.11.2+debug"),
            suite: "refbugs",
            environment: &old311,
            own: BTreeSet::new(),
        },
        Ran {
            cell: &cell("3.13.5+debug"),
            suite: "refbugs",
            environment: &new313,
            own: ["pytest".to_owned()].into(),
        },
    ];
    let up = update(Some(&old), &ran).expect("agrees per Python version");
    expect![[r#"
        numpy==2.2.6; python_version == "3.11"
        numpy==2.3.5; python_version == "3.13"
        pytest==9.2.0
        setuptools==84.2.1
        ujson==5.0
        added numpy==2.2.6; python_version == "3.11", numpy==2.3.5; python_version == "3.13"
        changed pytest==8.0.0 -> pytest==9.2.0
        added setuptools==84.2.1
        kept ujson==5.0 (no suite of this run installed it)
    "#]]
    .assert_eq(&format!(
        "{}{}\n",
        up.text.strip_prefix(HEADER).expect("the header"),
        up.changes.join("\n")
    ));

    // Two suites on one Python version disagree: nothing is written, and the error says why.
    let ran = [
        Ran {
            cell: &cell("3.13.5+debug"),
            suite: "markupsafe",
            environment: &markupsafe,
            own: BTreeSet::new(),
        },
        Ran {
            cell: &cell("3.13.5+valgrind"),
            suite: "refbugs",
            environment: &new313,
            own: BTreeSet::new(),
        },
    ];
    expect![[r#"
        suites installed different versions of one package, and one constraints file cannot pin both:
          pytest on Python 3.13: 7.4.4 by refbugs on 3.13.5+valgrind; 9.2.0 by markupsafe on 3.13.5+debug
        pin the version a suite needs in its own constraints file (`constraints = "…"` in matrix/extensions.toml, relative to it) and run again; the global file was not changed"#]]
    .assert_eq(&update(None, &ran).expect_err("disagrees"));
}
