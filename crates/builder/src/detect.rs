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
mod tests;
