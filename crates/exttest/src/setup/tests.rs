use std::{
    os::unix::fs::{PermissionsExt as _, symlink},
    sync::atomic::{AtomicBool, Ordering},
};

use expect_test::expect;

use super::*;

fn temp() -> (tempfile::TempDir, Utf8PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).expect("a UTF-8 path");
    let path = path.canonicalize_utf8().expect("canonical");
    (dir, path)
}

fn write(path: &Utf8Path, text: &str) {
    fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

/// A broken cached venv is made again, never failed on every run: one whose marker is not
/// this build's, whose `bin/python` is missing or a directory, or cannot import pytest.
#[test]
fn a_broken_venv_is_rebuilt() {
    let (_t, venv) = temp();
    let py = venv.join("bin/python");
    let marker = venv.join(".debug-matrix");
    let show = |why: Option<String>| {
        why.map_or("usable".to_owned(), |w| w.replace(venv.as_str(), "$VENV"))
    };
    expect!["new"].assert_eq(&show(venv_unusable(&py, &marker, "key", &[])));
    write(&marker, "another key");
    expect!["made for another build or other test dependencies"].assert_eq(&show(venv_unusable(
        &py,
        &marker,
        "key",
        &[],
    )));
    write(&marker, "key");
    expect!["$VENV/bin/python is missing or not a file"].assert_eq(&show(venv_unusable(
        &py,
        &marker,
        "key",
        &[],
    )));
    fs::create_dir_all(&py).expect("a directory where bin/python was");
    expect!["$VENV/bin/python is missing or not a file"].assert_eq(&show(venv_unusable(
        &py,
        &marker,
        "key",
        &[],
    )));
    fs::remove_dir(&py).expect("rmdir");
    // An interpreter without pytest (a script answering like one).
    write(&py, "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'pytest'\" >&2\nexit 1\n");
    fs::set_permissions(&py, fs::Permissions::from_mode(0o755)).expect("chmod");
    expect![[r#"`$VENV/bin/python -c 'import pytest'` failed (exit status: 1): ModuleNotFoundError: No module named 'pytest'"#]]
        .assert_eq(&show(venv_unusable(&py, &marker, "key", &[])));
    // One that has it, with the variables it is given.
    write(&py, "#!/bin/sh\n[ \"$1 $2\" = \"-c import pytest\" ] && [ \"$CHECK\" = 1 ]\n");
    let vars = [("CHECK".to_owned(), "1".to_owned())];
    expect!["usable"].assert_eq(&show(venv_unusable(&py, &marker, "key", &vars)));
}

/// `overlay.txt` lists files an earlier run added beside the installed package; the next run
/// removes them, but only inside the suite's directory: a path written into the list that
/// points elsewhere (absolute, through `..`, through a symbolic link) is left, and said.
#[test]
fn overlay_txt_removes_nothing_outside_the_suite_directory() {
    let (_t, root) = temp();
    let (_o, elsewhere) = temp();
    let dir = root.join("ext/pkg");
    let added = dir.join("venv/lib/python3.13/site-packages/pkg/tests/test_data.txt");
    write(&added, "laid by an earlier run");
    let victim = elsewhere.join("precious.txt");
    write(&victim, "not ours");
    let sibling = root.join("ext/other/file.txt");
    write(&sibling, "another suite's");
    symlink(&elsewhere, dir.join("link")).expect("symlink");
    let list = dir.join("overlay.txt");
    let log = dir.join("setup.log");
    let lines = [
        added.to_string(),
        victim.to_string(),
        format!("{dir}/../other/file.txt"),
        format!("{dir}/link/precious.txt"),
        "relative.txt".to_owned(),
        format!("{dir}/venv/gone/file.txt"),
    ];
    write(&list, &lines.join("\n"));
    remove_overlaid(&dir, &list, &log);
    assert!(!added.exists(), "the overlaid file is removed");
    assert!(victim.exists() && sibling.exists(), "nothing outside the suite's directory");
    assert!(!list.exists(), "the list is consumed");
    let said = fs::read_to_string(&log)
        .expect("the set-up log")
        .replace(elsewhere.as_str(), "$ELSEWHERE")
        .replace(root.as_str(), "$ROOT");
    expect![[r#"
        $ROOT/ext/pkg/overlay.txt: not removing $ELSEWHERE/precious.txt: outside the suite's directory $ROOT/ext/pkg
        $ROOT/ext/pkg/overlay.txt: not removing $ROOT/ext/pkg/../other/file.txt: it has `..` in it
        $ROOT/ext/pkg/overlay.txt: not removing $ROOT/ext/pkg/link/precious.txt: outside the suite's directory $ROOT/ext/pkg
        $ROOT/ext/pkg/overlay.txt: not removing relative.txt: not an absolute path
    "#]]
    .assert_eq(&said);
}

/// A work directory inside an `--ext` project copied itself endlessly: the project copy
/// leaves out the work directory, its own destination, `target/` and `.git`, and stops when
/// the run is cancelled.
#[test]
fn a_project_copy_leaves_out_the_work_dir_and_stops_when_cancelled() {
    let (_t, project) = temp();
    write(&project.join("pyproject.toml"), "[project]\nname = 'p'\n");
    write(&project.join("src/p/_p.c"), "/* C */");
    write(&project.join("src/p/target/kept.txt"), "a package's own target/ below the root");
    write(&project.join("target/debug/huge"), "cargo's");
    write(&project.join(".git/HEAD"), "ref");
    let work = project.join("work");
    write(&work.join("cache/archive.tgz"), "cached");
    let to = work.join("cells/3.13.5+debug/ext/p/src");
    let cancel = AtomicBool::new(false);
    layout::copy_tree(
        &project,
        &to,
        Utf8Path::new(""),
        &[],
        std::slice::from_ref(&work),
        Some(&cancel),
    )
    .expect("copied");
    let mut copied = Vec::new();
    let mut stack = vec![to.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read").flatten() {
            let p = Utf8PathBuf::from_path_buf(e.path()).expect("utf-8");
            if p.is_dir() {
                stack.push(p);
            } else {
                copied.push(p.strip_prefix(&to).expect("inside").to_string());
            }
        }
    }
    copied.sort();
    expect![[r#"["pyproject.toml", "src/p/_p.c", "src/p/target/kept.txt"]"#]]
        .assert_eq(&format!("{copied:?}"));
    // The destination alone is enough to never copy into itself.
    let again = project.join("inside/copy");
    layout::copy_tree(&project, &again, Utf8Path::new(""), &[], std::slice::from_ref(&work), None)
        .expect("copied without recursing into itself");
    assert!(!again.join("inside/copy").exists());
    cancel.store(true, Ordering::Relaxed);
    let err = layout::copy_tree(&project, &to, Utf8Path::new(""), &[], &[], Some(&cancel))
        .expect_err("cancelled");
    assert!(format!("{err:#}").ends_with("interrupted"), "{err:#}");
}
