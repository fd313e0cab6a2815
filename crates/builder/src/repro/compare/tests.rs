//! Unit tests of `repro/compare.rs`.

use std::os::unix::fs::symlink;

use super::*;

fn tree(root: &Utf8Path, stamp: &str) {
    fs::create_dir_all(root.join("bin")).expect("test fixture");
    fs::create_dir_all(root.join("lib/python3.11")).expect("test fixture");
    fs::write(root.join("bin/python3.11"), "#!/bin/sh\necho fake\n").expect("test fixture");
    symlink("python3.11", root.join("bin/python3")).expect("test fixture");
    fs::write(root.join("lib/python3.11/os.py"), "import sys\n").expect("test fixture");
    fs::write(root.join("lib/python3.11/buildinfo.txt"), format!("built\nat {stamp}\n"))
        .expect("test fixture");
}

#[test]
fn identical_trees_and_a_timestamp_named_with_its_line() {
    let tmp = tempfile::tempdir().expect("test fixture");
    let root = Utf8Path::from_path(tmp.path()).expect("test fixture");
    tree(&root.join("a"), "1735689600");
    tree(&root.join("b"), "1735689600");
    let same = compare_trees(&root.join("a"), &root.join("b")).expect("test fixture");
    assert_eq!(same, Comparison { identical: 4, files: 4, differences: vec![] });

    tree(&root.join("c"), "1765000000");
    let differs = compare_trees(&root.join("a"), &root.join("c")).expect("test fixture");
    assert_eq!(differs.identical, 3);
    assert_eq!(
        differs.differences,
        [Difference {
            path: "lib/python3.11/buildinfo.txt".into(),
            what: "text, line 2: `at 1735689600`, then `at 1765000000`".into()
        }]
    );
}

#[test]
fn permissions_links_and_files_present_in_one_tree() {
    let tmp = tempfile::tempdir().expect("test fixture");
    let root = Utf8Path::from_path(tmp.path()).expect("test fixture");
    let (a, b) = (root.join("a"), root.join("b"));
    tree(&a, "0");
    tree(&b, "0");
    fs::set_permissions(b.join("bin/python3.11"), fs::Permissions::from_mode(0o775))
        .expect("test fixture");
    fs::set_permissions(a.join("bin/python3.11"), fs::Permissions::from_mode(0o755))
        .expect("test fixture");
    fs::remove_file(b.join("bin/python3")).expect("test fixture");
    symlink("python3.11d", b.join("bin/python3")).expect("test fixture");
    fs::write(b.join("lib/extra.txt"), "").expect("test fixture");
    let c = compare_trees(&a, &b).expect("test fixture");
    let lines: Vec<String> =
        c.differences.iter().map(|d| format!("{}: {}", d.path, d.what)).collect();
    assert_eq!(
        lines,
        [
            "bin/python3: symlink to python3.11, then to python3.11d",
            "bin/python3.11: permissions 0755, then 0775",
            "lib/extra.txt: only in the rebuild",
        ]
    );
}
