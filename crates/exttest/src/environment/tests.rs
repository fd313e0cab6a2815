use expect_test::expect;

use super::*;

#[test]
fn names_are_normalised_as_pep_503_says() {
    let names = ["Setuptools_SCM", "zope.interface", "MarkupSafe", "a--b__c", "pytest"];
    let out: Vec<String> = names.iter().map(|n| normalize(n)).collect();
    assert_eq!(out, ["setuptools-scm", "zope-interface", "markupsafe", "a-b-c", "pytest"]);
}

#[test]
fn reports_say_where_each_package_came_from() {
    let report = r#"{"version": "1", "install": [
          {"download_info": {"url": "file:///w/ext/m/src", "dir_info": {}},
           "metadata": {"name": "MarkupSafe", "version": "3.0.2"}},
          {"download_info": {"url": "https://files/pytest-9.2.0-py3-none-any.whl",
                             "archive_info": {"hash": "sha256=00"}},
           "metadata": {"name": "pytest", "version": "9.2.0"}},
          {"download_info": {"url": "https://files/simplejson-3.20.1.tar.gz",
                             "archive_info": {}},
           "metadata": {"name": "simplejson", "version": "3.20.1"}}]}"#;
    let mut sources = BTreeMap::new();
    add_report(&mut sources, report).expect("a report");
    let installed: Vec<(String, String)> =
        [("MarkupSafe", "3.0.2"), ("pip", "25.1.1"), ("pytest", "9.2.0"), ("simplejson", "3.20.1")]
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
    let dir = packages(&installed, &sources, "markupsafe", false);
    let sdist = packages(&installed, &sources, "markupsafe", true);
    let show = |p: &[Package]| p.iter().map(|p| format!("{p:?}\n")).collect::<String>();
    expect![[r#"
            Package { name: "MarkupSafe", version: "3.0.2", source: Local }
            Package { name: "pip", version: "25.1.1", source: Venv }
            Package { name: "pytest", version: "9.2.0", source: Wheel }
            Package { name: "simplejson", version: "3.20.1", source: Sdist }
        "#]]
    .assert_eq(&show(&dir));
    assert_eq!(sdist[0].source, PackageSource::Sdist);
}

/// A real log of `pip install -v` of a project whose backend pulls more than itself.
#[test]
fn build_environments_are_read_from_pips_log() {
    let log = "Processing /w/src\n  Installing build dependencies: started\n  \
                   Collecting setuptools>=70.1\n    Downloading setuptools-84.2.1-py3-none-any.whl (876 kB)\n  \
                   Collecting setuptools_scm\n    Using cached setuptools_scm-10.3.4.tar.gz\n  \
                   Successfully installed packaging-26.4 setuptools-84.2.1 setuptools_scm-10.3.4\n  \
                   Installing backend dependencies: started\n  Successfully installed Cython-3.3.1\n\
                   Successfully installed MarkupSafe-3.0.2\n";
    let out: Vec<String> = build_packages(log)
        .iter()
        .map(|p| format!("{} {} {}", p.name, p.version, p.source))
        .collect();
    expect![[r#"["Cython 3.3.1 wheel", "packaging 26.4 wheel", "setuptools 84.2.1 wheel", "setuptools_scm 10.3.4 sdist"]"#]]
        .assert_eq(&format!("{out:?}"));
}
