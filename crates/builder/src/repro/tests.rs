//! Unit tests of `repro/mod.rs`.

use super::*;

fn write(path: &Utf8Path, text: &str) {
    fs::create_dir_all(path.parent().expect("a parent")).expect("test fixture");
    fs::write(path, text).expect("test fixture");
}

fn read(path: &Utf8Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("{path}: {e}"))
}

/// An interrupted check (the first build aside, a partial rebuild in its place) is undone:
/// the first build's trees are back, the rebuild's are gone; a differing rebuild is kept.
#[test]
fn the_first_build_always_comes_back() {
    let tmp = tempfile::tempdir().expect("test fixture");
    let root = Utf8Path::from_path(tmp.path()).expect("test fixture");
    let dirs = workdir::Layout::new(root.to_owned()).build("0123456789abcdef0123");
    write(&dirs.prefix.join("bin/python3.11"), "first");
    write(&dirs.build.join("Makefile"), "first");
    write(&dirs.logs.join("make.log"), "first");
    let aside = Aside::of(&dirs);
    aside.move_first(&dirs).expect("moved aside");
    assert!(!dirs.prefix.exists() && !dirs.build.exists());
    write(&dirs.prefix.join("bin/python3.11"), "partial rebuild");
    write(&dirs.build.join("Makefile"), "partial rebuild");

    aside.restore(&dirs).expect("restored");
    assert_eq!(read(&dirs.prefix.join("bin/python3.11")), "first");
    assert_eq!(read(&dirs.build.join("Makefile")), "first");
    assert_eq!(read(&dirs.logs.join("make.log")), "first");
    assert!(!aside.first_prefix.exists());

    aside.move_first(&dirs).expect("moved aside");
    write(&dirs.prefix.join("bin/python3.11"), "rebuild");
    write(&dirs.logs.join("make.log"), "rebuild");
    aside.keep_rebuild(&dirs, true).expect("kept");
    aside.restore(&dirs).expect("restored");
    assert_eq!(read(&dirs.prefix.join("bin/python3.11")), "first");
    assert_eq!(read(&aside.rebuild_prefix.join("bin/python3.11")), "rebuild");
    assert_eq!(read(&aside.rebuild_logs.join("make.log")), "rebuild");
    assert_eq!(read(&dirs.logs.join("make.log")), "first");
}

#[test]
fn the_umask_wraps_the_command_as_arguments() {
    assert_eq!(
        under_umask("0022", vec!["make".into(), "-j2".into()]),
        ["/bin/sh", "-c", "umask 0022 && exec \"$0\" \"$@\"", "make", "-j2"]
    );
    let out = std::process::Command::new("/bin/sh")
        .args(&under_umask("0027", vec!["/bin/sh".into(), "-c".into(), "umask".into()])[1..])
        .output()
        .expect("sh runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0027");
}
