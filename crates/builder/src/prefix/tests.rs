//! Unit tests of `prefix.rs`.

use std::collections::BTreeMap;

use super::*;

/// A complete fake build: a prefix with `bin/python3 -> python3.11` and its manifest.
fn fake_build(root: &Utf8Path) -> BuildDirs {
    let dirs = workdir::Layout::new(root.to_owned()).build("0123456789abcdef0123");
    fs::create_dir_all(dirs.prefix.join("bin")).expect("mkdir");
    fs::write(dirs.prefix.join("bin/python3.11"), "#!/bin/sh\n").expect("write");
    std::os::unix::fs::symlink("python3.11", dirs.python()).expect("link");
    let manifest = Manifest {
        key: "0123456789abcdef0123".to_owned(),
        cells: vec!["3.11.2+debug".to_owned()],
        configure: Vec::new(),
        make: Vec::new(),
        env: BTreeMap::new(),
        compiler: String::new(),
        target: String::new(),
        detected: Vec::new(),
        seconds: 0,
        phases: BTreeMap::new(),
        interpreter: Some(record(&dirs).expect("record")),
    };
    fs::write(&dirs.manifest, serde_json::to_string(&manifest).expect("json")).expect("write");
    dirs
}

fn scrub(text: Option<String>, root: &Utf8Path) -> String {
    text.unwrap_or_else(|| "whole".to_owned()).replace(root.as_str(), "$TMP")
}

#[test]
fn a_damaged_prefix_or_manifest_is_never_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Utf8Path::from_path(dir.path()).expect("utf-8");
    let key = "0123456789abcdef0123";
    let dirs = fake_build(root);
    let recorded = record(&dirs).expect("record");
    assert_eq!(recorded.path, "bin/python3.11");
    assert_eq!(scrub(damage(&dirs, key), root), "whole");
    assert!(damage(&dirs, "another key").is_some_and(|d| d.contains("records the key")));

    // The interpreter replaced (same size, other bytes), then moved away.
    let python = dirs.prefix.join("bin/python3.11");
    fs::write(&python, "#!/bin/bash\n").expect("write");
    let changed = scrub(damage(&dirs, key), root);
    assert!(changed.contains("changed since it was installed"), "{changed}");
    fs::rename(&python, root.join("moved")).expect("mv");
    assert_eq!(
        scrub(damage(&dirs, key), root).split(" (").next().unwrap_or_default(),
        "the interpreter $TMP/builds/0123456789abcdef/prefix/bin/python3.11 is missing"
    );
    // A directory in its place.
    fs::create_dir(&python).expect("mkdir");
    assert!(scrub(damage(&dirs, key), root).ends_with("is not a file"));
    fs::remove_dir(&python).expect("rmdir");
    fs::rename(root.join("moved"), &python).expect("mv back");
    fs::write(&python, "#!/bin/sh\n").expect("write");
    assert_eq!(scrub(damage(&dirs, key), root), "whole");

    // bin/python3 led elsewhere.
    fs::write(dirs.prefix.join("bin/other"), "#!/bin/sh\n").expect("write");
    fs::remove_file(dirs.python()).expect("rm");
    std::os::unix::fs::symlink("other", dirs.python()).expect("link");
    assert!(scrub(damage(&dirs, key), root).ends_with(
        "no longer leads to the interpreter $TMP/builds/0123456789abcdef/prefix/bin/python3.11"
    ));

    // An empty manifest, and one an older version wrote (no interpreter).
    fs::write(&dirs.manifest, "").expect("write");
    assert!(scrub(damage(&dirs, key), root).contains("is not a build manifest"));
    fs::write(
        &dirs.manifest,
        r#"{"key":"0123456789abcdef0123","cells":[],"configure":[],"make":[],"env":{},
               "compiler":"","target":"","seconds":0,"phases":{}}"#,
    )
    .expect("write");
    assert!(scrub(damage(&dirs, key), root).contains("records no interpreter"));
}
