use expect_test::{Expect, expect};

/// `input` is `link/path -> target` (symlink, path below the root) or
/// `link/path => target` (hard link, target relative to the archive root,
/// top-level directory `top`).
fn check(input: &str, expect: Expect) {
    let actual = if let Some((link, target)) = input.split_once(" -> ") {
        let parts = super::components(link).expect("test link path is valid");
        let dir = &parts[..parts.len() - 1];
        match super::check_symlink_target(dir, target) {
            Ok(()) => "ok".to_owned(),
            Err(reason) => reason.to_string(),
        }
    } else if let Some((_, target)) = input.split_once(" => ") {
        match super::hard_link_target("top", target) {
            Ok(parts) => format!("ok {}", parts.join("/")),
            Err(reason) => reason.to_string(),
        }
    } else {
        match super::components(input) {
            Ok(parts) => format!("ok {}", parts.join("/")),
            Err(reason) => reason.to_string(),
        }
    };
    expect.assert_eq(&actual);
}

#[test]
fn entry_names() {
    check("Python-3.13.5/configure", expect!["ok Python-3.13.5/configure"]);
    check("./Python-3.13.5/./Include/", expect!["ok Python-3.13.5/Include"]);
    check("/etc/passwd", expect!["has an absolute path"]);
    check("../escape", expect!["has a `..` component"]);
    check("a/b/../c", expect!["has a `..` component"]);
}

#[test]
fn symlink_targets() {
    check("a/b/link -> ../../README", expect!["ok"]);
    check("a/link -> ./b/c", expect!["ok"]);
    check("link -> ..", expect!["is a symlink to `..`, which points outside the source tree"]);
    check(
        "a/link -> ../../outside",
        expect!["is a symlink to `../../outside`, which points outside the source tree"],
    );
    check("a/link -> /etc/passwd", expect!["is a symlink to the absolute path `/etc/passwd`"]);
    check(
        "a/link -> b/../c",
        expect![
            "is a symlink to `b/../c`, which has `..` after a name and could leave the source tree through another symlink"
        ],
    );
    check("a/link -> ", expect!["is a link without a target"]);
}

#[test]
fn hard_link_targets() {
    check("x => top/Lib/os.py", expect!["ok Lib/os.py"]);
    check(
        "x => other/Lib/os.py",
        expect!["is a hard link to `other/Lib/os.py`, which is outside the source tree"],
    );
    check("x => top", expect!["is a hard link to `top`, which is outside the source tree"]);
    check(
        "x => /etc/passwd",
        expect!["is a hard link to `/etc/passwd`, which is outside the source tree"],
    );
    check(
        "x => top/../etc",
        expect!["is a hard link to `top/../etc`, which is outside the source tree"],
    );
}
