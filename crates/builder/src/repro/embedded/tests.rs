//! Unit tests of `repro/embedded.rs`.

use super::*;

#[test]
fn compiled_files_never_name_the_directories_and_the_listed_text_files_may() {
    let tmp = tempfile::tempdir().expect("test fixture");
    let root = Utf8Path::from_path(tmp.path()).expect("test fixture");
    let (src, build, prefix) =
        (root.join("src/3.11.2"), root.join("builds/k/build"), root.join("builds/k/prefix"));
    let lib = prefix.join("lib/python3.11");
    fs::create_dir_all(lib.join("__pycache__")).expect("test fixture");
    fs::create_dir_all(lib.join("lib-dynload")).expect("test fixture");
    fs::create_dir_all(prefix.join("lib/pkgconfig")).expect("test fixture");
    let sysconfig = lib.join("_sysconfigdata_d_linux_x86_64-linux-gnu.py");
    fs::write(&sysconfig, format!("'abs_srcdir': '{src}', 'abs_builddir': '{build}'"))
        .expect("test fixture");
    fs::write(
        lib.join("lib-dynload/_gdbm.cpython-311d-x86_64-linux-gnu.so"),
        format!("\x7fELF\0\0{build}/Modules/_gdbmmodule.o\0"),
    )
    .expect("test fixture");
    // The prefix is named by design and is not what is scanned for.
    fs::write(prefix.join("lib/pkgconfig/python-3.11.pc"), format!("prefix={prefix}\n"))
        .expect("test fixture");
    fs::write(lib.join("notes.txt"), format!("see {src}/README\n")).expect("test fixture");

    let found = scan(&prefix, &src, &build).expect("test fixture");
    let lines: Vec<String> = found
        .iter()
        .map(|e| {
            format!(
                "{} {:?} compiled={} {}",
                e.path,
                e.names,
                e.compiled,
                if e.allowed.is_some() { "allowed" } else { "DEFECT" }
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "lib/python3.11/_sysconfigdata_d_linux_x86_64-linux-gnu.py [\"source\", \"build\"] compiled=false allowed",
            "lib/python3.11/lib-dynload/_gdbm.cpython-311d-x86_64-linux-gnu.so [\"build\"] compiled=true DEFECT",
            "lib/python3.11/notes.txt [\"source\"] compiled=false DEFECT",
        ]
    );
}

#[test]
fn patterns_match_within_one_component() {
    assert!(matches(
        "lib/python3.*/config-3.*/Makefile",
        "lib/python3.11/config-3.11d-x86_64-linux-gnu/Makefile"
    ));
    assert!(!matches("lib/python3.*/Makefile", "lib/python3.11/config-3.11d/Makefile"));
    assert!(!matches("lib/python3.*/_sysconfigdata_*.py", "lib/python3.11/_sysconfigdata_d.pyc"));
}
