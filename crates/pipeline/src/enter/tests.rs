//! Unit tests of `enter.rs`.

use super::{link_python, program_path};

/// Issue 18: `bin/python` replaced by a directory failed the same way on every run
/// ("File exists"); it is named with what to do.
#[test]
fn a_directory_in_place_of_bin_python_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = camino::Utf8Path::from_path(tmp.path()).expect("utf-8");
    let link = root.join("python");
    link_python(&link, camino::Utf8Path::new("/p/bin/python3"), "3.13.5+debug")
        .expect("a new link");
    link_python(&link, camino::Utf8Path::new("/q/bin/python3"), "3.13.5+debug")
        .expect("an old link is replaced");
    assert_eq!(std::fs::read_link(&link).expect("link"), std::path::Path::new("/q/bin/python3"));
    std::fs::remove_file(&link).expect("rm");
    std::fs::create_dir(&link).expect("mkdir");
    let err = link_python(&link, camino::Utf8Path::new("/p/bin/python3"), "3.13.5+debug")
        .expect_err("a directory is refused");
    assert_eq!(
        err.to_string().replace(root.as_str(), "$TMP"),
        "$TMP/python is a directory where the link to 3.13.5+debug's interpreter belongs; \
             delete it (rm -r $TMP/python) and rerun"
    );
}

#[test]
fn python_is_the_cells_interpreter_by_absolute_path() {
    let python = camino::Utf8Path::new("/w/builds/k/prefix/bin/python3");
    for program in ["python", "python3", "python3.11"] {
        assert_eq!(program_path(program, python), python.as_str(), "{program}");
    }
    for program in ["pytest", "python3.", "python2", "./python", "sh"] {
        assert_eq!(program_path(program, python), program);
    }
}
