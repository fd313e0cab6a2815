//! What configure would find on this machine, cheaply: for each optional module whose
//! library configure looks for, the first of its headers on the compiler's include path (or
//! `missing`). The lines become [`configure::Toolchain::detected`] and so part of the build
//! key: a machine that gained `libgdbm-dev` (or a CI cache restored on a newer runner image)
//! gets a new build, never the cached one made without `_gdbm`.
//!
//! The include path is the system compiler's ([`include_path`]: `CPATH` and
//! `C_INCLUDE_PATH`, which the build honours too, then the standard directories; a test holds
//! it to what `cc -E -v` prints), and the check is a few dozen `stat` calls, no process. Only headers are looked for: a Debian `-dev` package brings the header and
//! the library's link together, and configure tests the header first.

use camino::{Utf8Path, Utf8PathBuf};

/// The optional modules configure decides on by the machine's libraries, each with the
/// headers it looks for (any one suffices), across the releases in the matrix.
pub const LIBRARY_HEADERS: &[(&str, &[&str])] = &[
    ("_bz2", &["bzlib.h"]),
    ("_ctypes", &["ffi.h"]),
    ("_curses", &["ncursesw/curses.h", "ncurses/curses.h", "ncurses.h", "curses.h"]),
    ("_curses_panel", &["ncursesw/panel.h", "ncurses/panel.h", "panel.h"]),
    ("_crypt", &["crypt.h"]),
    ("_dbm", &["ndbm.h", "gdbm/ndbm.h", "gdbm-ndbm.h", "db.h"]),
    ("_gdbm", &["gdbm.h"]),
    ("_hashlib", &["openssl/evp.h"]),
    ("_lzma", &["lzma.h"]),
    ("_sqlite3", &["sqlite3.h"]),
    ("_ssl", &["openssl/ssl.h"]),
    ("_tkinter", &["tk.h", "tcl8.6/tk.h", "tcl/tk.h"]),
    ("_uuid", &["uuid/uuid.h", "uuid.h"]),
    ("_zstd", &["zstd.h"]),
    ("nis", &["rpc/rpc.h", "tirpc/rpc/rpc.h"]),
    ("readline", &["readline/readline.h", "editline/readline.h"]),
    ("zlib", &["zlib.h"]),
    ("valgrind", &["valgrind/valgrind.h"]),
];

/// One line per entry of [`LIBRARY_HEADERS`]: `_gdbm: gdbm.h in /usr/include` (the first
/// header found, and the first directory of `include_dirs` that has it: a library installed
/// in another place is another library) or `_gdbm: missing`.
pub fn detect(include_dirs: &[Utf8PathBuf]) -> Vec<String> {
    LIBRARY_HEADERS
        .iter()
        .map(|(module, headers)| {
            let found = headers.iter().find_map(|header| {
                include_dirs.iter().find(|dir| dir.join(header).is_file()).map(|d| (header, d))
            });
            match found {
                Some((header, dir)) => format!("{module}: {header} in {dir}"),
                None => format!("{module}: missing"),
            }
        })
        .collect()
}

/// What differs between `detected` (this machine now) and what an earlier complete build of
/// `cell` under `builds` found (its manifest): `the build 38b813c317282bff (…) was made where
/// configure found _gdbm: missing; now _gdbm: gdbm.h in /usr/include`. Read only when a build
/// is about to be made, so the user learns why a cell builds again.
pub fn changed_since_earlier(builds: &Utf8Path, cell: &str, detected: &[String]) -> Option<String> {
    let mut found = None;
    for entry in builds.read_dir_utf8().ok()?.flatten() {
        let manifest = entry.path().join("manifest.json");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let Ok(m) = serde_json::from_str::<crate::Manifest>(&text) else { continue };
        if !m.cells.iter().any(|c| c == cell) || m.detected.is_empty() || m.detected == detected {
            continue;
        }
        let then: Vec<&str> =
            m.detected.iter().filter(|l| !detected.contains(l)).map(String::as_str).collect();
        let now: Vec<&str> =
            detected.iter().filter(|l| !m.detected.contains(l)).map(String::as_str).collect();
        found = Some(format!(
            "the build {} ({}) was made where configure found {}; now {}",
            m.key.get(..16).unwrap_or(&m.key),
            entry.path(),
            then.join(", "),
            now.join(", ")
        ));
    }
    found
}

/// The directories the system compiler searches for `#include <…>` that can hold a
/// library's headers, in its order: `CPATH`, then `C_INCLUDE_PATH` (both honoured by GCC and
/// Clang, and not scrubbed from builds), then `/usr/local/include/<target>`,
/// `/usr/local/include`, `/usr/include/<target>`, `/usr/include`. Builds always use `cc`
/// (`CC` is scrubbed), whose own directory (`/usr/lib/gcc/…/include`) holds no library's
/// headers. No process: the warm path stays a few `stat`s (asking `cc -E -v` cost 7 ms
/// alone and 50 ms under load); a test holds the list to what `cc -E -v` prints.
pub fn include_path(target: &str) -> Vec<Utf8PathBuf> {
    include_path_from(
        std::env::var("CPATH").ok().as_deref(),
        std::env::var("C_INCLUDE_PATH").ok().as_deref(),
        target,
    )
}

/// [`include_path`] from the two variables' values.
pub fn include_path_from(
    cpath: Option<&str>,
    c_include_path: Option<&str>,
    target: &str,
) -> Vec<Utf8PathBuf> {
    let listed = [cpath, c_include_path].into_iter().flatten().flat_map(|v| v.split(':'));
    let standard = [
        format!("/usr/local/include/{target}"),
        "/usr/local/include".to_owned(),
        format!("/usr/include/{target}"),
        "/usr/include".to_owned(),
    ];
    let mut out: Vec<Utf8PathBuf> = Vec::new();
    for dir in listed.map(str::to_owned).chain(standard) {
        let dir = Utf8PathBuf::from(dir);
        if !dir.as_str().is_empty() && !out.contains(&dir) {
            out.push(dir);
        }
    }
    out
}

/// The directories between `#include <...> search starts here:` and `End of search list.`
/// (GCC and Clang print both).
pub fn parse_include_path(stderr: &str) -> Vec<Utf8PathBuf> {
    stderr
        .lines()
        .skip_while(|l| !l.starts_with("#include <...> search starts here:"))
        .skip(1)
        .take_while(|l| !l.starts_with("End of search list."))
        .map(|l| l.trim().trim_end_matches(" (framework directory)"))
        .filter(|l| !l.is_empty())
        .map(|l| Utf8Path::new(l).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
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

        let m =
            matrix::Matrix::load(&Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix"))
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
            assert!(
                ours.contains(dir),
                "cc searches {dir}, which holds a library header: {ours:?}"
            );
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
}
