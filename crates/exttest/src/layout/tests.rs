use expect_test::{Expect, expect};

use super::*;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn tests_inside_or_beside_the_package() {
    let check = |tests: &str, top: &[&str], expect: Expect| {
        expect.assert_eq(&format!("{:?}", locate(Utf8Path::new(tests), &names(top))));
    };
    check(
        "src/zope/interface/tests",
        &["zope"],
        expect![[
            r#"InPackage { project: "src/zope/interface/tests", site_rel: "zope/interface/tests" }"#
        ]],
    );
    check(
        "ujson/tests",
        &["ujson"],
        expect![[r#"InPackage { project: "ujson/tests", site_rel: "ujson/tests" }"#]],
    );
    check("tests", &["msgpack"], expect![[r#"Beside { project: "tests" }"#]]);
    // A package called like a directory deeper in the tests is not the tests' package.
    check("tests/unit", &["unit"], expect![[r#"Beside { project: "tests/unit" }"#]]);
    // A distribution that installs its `tests` package: run the installed copy.
    check(
        "tests",
        &["tests", "pkg"],
        expect![[r#"InPackage { project: "tests", site_rel: "tests" }"#]],
    );
}

#[test]
fn default_test_paths() {
    let check = |testpaths: &[&str], top: &[&str], present: &[&str], expect: Expect| {
        let found = default_tests(
            &names(testpaths),
            &names(top),
            |p| present.contains(&p.as_str()),
            |d| {
                let prefix = format!("{d}/");
                present
                    .iter()
                    .filter_map(|p| p.strip_prefix(prefix.as_str()))
                    .filter(|rest| !rest.contains('/'))
                    .map(|c| (*c).to_owned())
                    .collect()
            },
        );
        expect.assert_eq(&format!("{found:?}"));
    };
    check(&["t", "missing"], &[], &["t", "tests"], expect![[r#"["t"]"#]]);
    check(&[], &["pkg"], &["test", "src/pkg/tests"], expect![[r#"["test"]"#]]);
    check(&[], &["pkg"], &["src/pkg/tests"], expect![[r#"["src/pkg/tests"]"#]]);
    check(&[], &["pkg"], &[], expect!["[]"]);
    check(
        &[],
        &["zope"],
        &["src/zope", "src/zope/interface", "src/zope/interface/tests"],
        expect![[r#"["src/zope/interface"]"#]],
    );
}

#[test]
fn the_configuration_pytest_would_use() {
    let files: BTreeMap<&str, &str> = [
        ("pyproject.toml", "[tool.pytest.ini_options]\ntestpaths = [\"tests\"]\n"),
        ("tests/setup.cfg", "[metadata]\nname = x\n"),
        ("tox.ini", "[pytest]\ntestpaths =\n    a\n    b\naddopts = -q\n"),
        ("sub/setup.cfg", "[tool:pytest]\ntestpaths = c d\n"),
        ("other/pyproject.toml", "[tool.black]\n"),
        ("other/pytest.ini", "[pytest]\n"),
    ]
    .into_iter()
    .collect();
    let check = |tests: &str, expect: Expect| {
        let found =
            pytest_config(Utf8Path::new(tests), |p| files.get(p.as_str()).map(|s| (*s).to_owned()));
        expect.assert_eq(&format!("{found:?}"));
    };
    check("tests", expect![[r#"Some(("pyproject.toml", ["tests"]))"#]]);
    check("sub/x", expect![[r#"Some(("sub/setup.cfg", ["c", "d"]))"#]]);
    check("other", expect![[r#"Some(("other/pytest.ini", []))"#]]);
    let tox = config_testpaths("tox.ini", files["tox.ini"]);
    expect![[r#"Some(["a", "b"])"#]].assert_eq(&format!("{tox:?}"));
}

#[test]
fn the_run_tree_hides_the_installed_packages() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = Utf8Path::from_path(tmp.path()).context("utf-8 temp dir")?;
    let project = root.join("p");
    for file in [
        "pkg/__init__.py",
        "pkg/_speed.c",
        "src/other/__init__.py",
        "single.py",
        "tests/__init__.py",
        "tests/helper.py",
        "tests/pkg/data.txt",
        "conftest.py",
        "build/lib/pkg/x.so",
        "pkg2.so",
    ] {
        let path = project.join(file);
        fs::create_dir_all(path.parent().context("parent")?)?;
        fs::write(&path, "")?;
    }
    let tree = root.join("run");
    run_tree(&project, &tree, &names(&["pkg", "other", "single"]))?;
    let mut files = Vec::new();
    let mut stack = vec![tree.clone()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir)? {
            let p = Utf8PathBuf::try_from(e?.path())?;
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p.strip_prefix(&tree)?.to_string());
            }
        }
    }
    files.sort();
    expect![[r#"["conftest.py", "tests/__init__.py", "tests/helper.py", "tests/pkg/data.txt"]"#]]
        .assert_eq(&format!("{files:?}"));

    // The overlay adds what the wheel left out and keeps what it installed.
    let site = root.join("site/pkg/tests");
    fs::create_dir_all(&site)?;
    fs::write(site.join("__init__.py"), "installed")?;
    let added = overlay(&project.join("tests"), &site)?;
    let added: Vec<String> = added
        .iter()
        .map(|p| p.strip_prefix(root).map(|p| p.to_string()))
        .collect::<Result<_, _>>()?;
    expect![[r#"["site/pkg/tests/helper.py", "site/pkg/tests/pkg/data.txt"]"#]]
        .assert_eq(&format!("{added:?}"));
    assert_eq!(fs::read_to_string(site.join("__init__.py"))?, "installed");
    Ok(())
}

#[test]
fn pytest_args_act_as_from_the_project_root() {
    let site = Utf8Path::new("/v/site");
    let maps = PathMap::of(Utf8Path::new("src/pkg/tests"), Utf8Path::new("pkg/tests"), site);
    assert_eq!(
        maps,
        [
            PathMap { project: "src/pkg/tests".into(), site: "/v/site/pkg/tests".into() },
            PathMap { project: "src/pkg".into(), site: "/v/site/pkg".into() },
        ]
    );
    let args: Vec<String> = [
        "--ignore-glob=*test_free_threading.py",
        "--ignore=src/pkg/tests/test_slow.py",
        "--ignore",
        "tests/helpers",
        "--deselect=src/pkg/tests/test_a.py::test_x[1]",
        "-k",
        "not src/pkg/tests",
        "-p",
        "no:randomly",
        "src/pkg/tests/test_b.py::test_y",
        "--ignore-glob=src/pkg/_vendor/*",
        "-x",
    ]
    .map(String::from)
    .into();
    expect![[r#"
            --ignore-glob=*test_free_threading.py
            --ignore-glob=/v/site/*test_free_threading.py
            --ignore=src/pkg/tests/test_slow.py
            --ignore=/v/site/pkg/tests/test_slow.py
            --ignore
            tests/helpers
            --deselect=src/pkg/tests/test_a.py::test_x[1]
            --deselect=pkg/tests/test_a.py::test_x[1]
            -k
            not src/pkg/tests
            -p
            no:randomly
            /v/site/pkg/tests/test_b.py::test_y
            --ignore-glob=src/pkg/_vendor/*
            --ignore-glob=/v/site/pkg/_vendor/*
            -x"#]]
    .assert_eq(&translate_args(&args, &maps, site).join("\n"));
    // Tests beside the package run from the project's copy: nothing to translate.
    assert_eq!(translate_args(&args, &[], site), args);
}
