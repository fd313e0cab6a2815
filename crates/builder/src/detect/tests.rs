//! Unit tests of `detect.rs`.

use super::*;

fn line<'a>(lines: &'a [String], module: &str) -> &'a str {
    lines.iter().find(|l| l.starts_with(&format!("{module}: "))).map_or("", |l| l.as_str())
}

#[test]
fn a_header_present_then_hidden_changes_the_detection_and_the_key() {
    let tmp = tempfile::tempdir().expect("test fixture");
    let root = Utf8Path::from_path(tmp.path()).expect("test fixture");
    let (system, extra) = (root.join("usr-include"), root.join("gdbm-include"));
    std::fs::create_dir_all(system.join("openssl")).expect("test fixture");
    std::fs::write(system.join("openssl/ssl.h"), "").expect("test fixture");
    std::fs::create_dir_all(&extra).expect("test fixture");
    std::fs::write(extra.join("gdbm.h"), "").expect("test fixture");
    std::fs::write(extra.join("gdbm-ndbm.h"), "").expect("test fixture");

    let present = detect(&[system.clone(), extra.clone()]);
    assert_eq!(line(&present, "_gdbm"), format!("_gdbm: gdbm.h in {extra}"));
    assert_eq!(line(&present, "_dbm"), format!("_dbm: gdbm-ndbm.h in {extra}"));
    assert_eq!(line(&present, "_ssl"), format!("_ssl: openssl/ssl.h in {system}"));
    assert_eq!(line(&present, "_sqlite3"), "_sqlite3: missing");

    // The header directory leaves the include path: the library is hidden.
    let hidden = detect(std::slice::from_ref(&system));
    assert_eq!(line(&hidden, "_gdbm"), "_gdbm: missing");
    assert_eq!(line(&hidden, "_dbm"), "_dbm: missing");
    assert_eq!(line(&hidden, "_ssl"), format!("_ssl: openssl/ssl.h in {system}"));

    let m = matrix::Matrix::load(&Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix"))
        .unwrap_or_else(|e| panic!("{e}"));
    let cell = m.cell("3.11.2+debug").unwrap_or_else(|e| panic!("{e}"));
    let toolchain = |detected| configure::Toolchain {
        compiler: "gcc 12".into(),
        target: "x86_64-linux-gnu".into(),
        detected,
    };
    let with = configure::plan(&cell, &toolchain(present.clone())).key;
    let without = configure::plan(&cell, &toolchain(hidden)).key;
    assert_ne!(with, without, "one key for two machines that build different interpreters");
    assert_eq!(with, configure::plan(&cell, &toolchain(present)).key);
}

#[test]
fn an_earlier_build_made_with_other_libraries_is_named() {
    let tmp = tempfile::tempdir().expect("test fixture");
    let builds = Utf8Path::from_path(tmp.path()).expect("test fixture");
    let earlier = builds.join("38b813c317282bff");
    std::fs::create_dir_all(&earlier).expect("test fixture");
    let manifest = serde_json::json!({
        "key": "38b813c317282bff00", "cells": ["3.11.2+debug"], "configure": [], "make": [],
        "env": {}, "compiler": "gcc", "target": "x86_64-linux-gnu", "seconds": 1,
        "phases": {}, "detected": ["_gdbm: missing", "_ssl: openssl/ssl.h in /usr/include"]
    });
    std::fs::write(earlier.join("manifest.json"), manifest.to_string()).expect("test fixture");
    let now = [
        "_gdbm: gdbm.h in /usr/include".to_owned(),
        "_ssl: openssl/ssl.h in /usr/include".to_owned(),
    ];
    assert_eq!(
        changed_since_earlier(builds, "3.11.2+debug", &now),
        Some(format!(
            "the build 38b813c317282bff ({earlier}) was made where configure found \
                 _gdbm: missing; now _gdbm: gdbm.h in /usr/include"
        ))
    );
    assert_eq!(changed_since_earlier(builds, "3.13.5+debug", &now), None, "another cell");
    let same = ["_gdbm: missing".to_owned(), "_ssl: openssl/ssl.h in /usr/include".to_owned()];
    assert_eq!(changed_since_earlier(builds, "3.11.2+debug", &same), None);
}

#[test]
fn include_path_from_gcc_and_clang() {
    let gcc = "ignoring nonexistent directory \"/usr/local/include/x86_64-linux-gnu\"\n\
                   #include \"...\" search starts here:\n\
                   #include <...> search starts here:\n \
                   /usr/lib/gcc/x86_64-linux-gnu/12/include\n \
                   /usr/local/include\n \
                   /usr/include/x86_64-linux-gnu\n \
                   /usr/include\n\
                   End of search list.\n";
    assert_eq!(
        parse_include_path(gcc),
        [
            "/usr/lib/gcc/x86_64-linux-gnu/12/include",
            "/usr/local/include",
            "/usr/include/x86_64-linux-gnu",
            "/usr/include"
        ]
    );
    assert!(parse_include_path("cc: error: no input files\n").is_empty());
}

#[test]
fn the_include_path_is_the_compilers_wherever_a_library_header_is() {
    let out = std::process::Command::new("cc")
        .args(["-xc", "-E", "-v", "/dev/null"])
        .output()
        .expect("cc runs");
    let target = std::process::Command::new("cc").arg("-dumpmachine").output().expect("cc");
    let target = String::from_utf8_lossy(&target.stdout).trim().to_owned();
    let cc = parse_include_path(&String::from_utf8_lossy(&out.stderr));
    assert!(cc.iter().any(|d| d.join("stdio.h").is_file()), "{cc:?}");
    let ours = include_path(&target);
    let holds_a_library = |dir: &Utf8PathBuf| {
        LIBRARY_HEADERS.iter().flat_map(|(_, h)| h.iter()).any(|h| dir.join(h).is_file())
    };
    for dir in cc.iter().filter(|d| holds_a_library(d)) {
        assert!(ours.contains(dir), "cc searches {dir}, which holds a library header: {ours:?}");
    }
    // And in the compiler's order.
    let order: Vec<&Utf8PathBuf> = cc.iter().filter(|d| ours.contains(d)).collect();
    let ours_order: Vec<&Utf8PathBuf> = ours.iter().filter(|d| order.contains(d)).collect();
    assert_eq!(order, ours_order);
}

#[test]
fn cpath_and_c_include_path_come_first() {
    assert_eq!(
        include_path_from(Some("/a::/b"), Some("/c:/usr/include"), "x86_64-linux-gnu"),
        [
            "/a",
            "/b",
            "/c",
            "/usr/include",
            "/usr/local/include/x86_64-linux-gnu",
            "/usr/local/include",
            "/usr/include/x86_64-linux-gnu"
        ]
    );
}
