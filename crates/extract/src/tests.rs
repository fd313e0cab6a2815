//! End-to-end tests of [`crate::extract_source_archive`] on archives built in
//! each test, plus the real CPython tarballs from `../shared/cpython-sources` (required).
//!
//! Malicious entries are written with raw header names, because the tar
//! crate's `set_path` refuses `..` and absolute paths.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::UNIX_EPOCH;

use camino::{Utf8Path, Utf8PathBuf};
use expect_test::{Expect, expect};
use tar::{EntryType, Header};

use crate::{ExtractError, extract_source_archive};

/// The mtime of sources in the test archives.
const OLD: u64 = 1_600_000_000;
/// The mtime of generated files, newer than their sources.
const NEW: u64 = 1_700_000_000;

/// One archive entry, written with a raw (unchecked) name.
#[derive(Clone, Copy)]
struct Entry<'a> {
    name: &'a str,
    kind: EntryType,
    link: &'a str,
    data: &'a [u8],
    mode: u32,
    mtime: u64,
}

fn dir(name: &str) -> Entry<'_> {
    Entry { name, kind: EntryType::Directory, link: "", data: b"", mode: 0o755, mtime: OLD }
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Entry<'a> {
    Entry { name, kind: EntryType::Regular, link: "", data, mode: 0o644, mtime: OLD }
}

fn link<'a>(kind: EntryType, name: &'a str, target: &'a str) -> Entry<'a> {
    Entry { name, kind, link: target, data: b"", mode: 0o777, mtime: OLD }
}

fn special(kind: EntryType, name: &str) -> Entry<'_> {
    Entry { name, kind, link: "", data: b"", mode: 0o644, mtime: OLD }
}

fn append_raw(builder: &mut tar::Builder<Vec<u8>>, entry: &Entry<'_>) {
    let mut header = Header::new_gnu();
    let old = header.as_old_mut();
    old.name[..entry.name.len()].copy_from_slice(entry.name.as_bytes());
    old.linkname[..entry.link.len()].copy_from_slice(entry.link.as_bytes());
    header.set_entry_type(entry.kind);
    header.set_mode(entry.mode);
    header.set_mtime(entry.mtime);
    header.set_size(entry.data.len() as u64);
    header.set_cksum();
    builder.append(&header, entry.data).expect("appending to a Vec cannot fail");
}

/// A pax header carrying `records`: `XHeader` for the entry that follows,
/// `XGlobalHeader` for all of them.
fn append_pax(builder: &mut tar::Builder<Vec<u8>>, kind: EntryType, records: &[(&str, &str)]) {
    let mut data = Vec::new();
    for (key, value) in records {
        // "<len> <key>=<value>\n", where <len> counts itself.
        let rest = format!(" {key}={value}\n").len();
        let mut len = rest + 1;
        while len.to_string().len() + rest != len {
            len = len.to_string().len() + rest;
        }
        data.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
    }
    let mut header = Header::new_ustar();
    header.set_path("PaxHeaders/entry").expect("short pax header name");
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, &data[..]).expect("appending to a Vec cannot fail");
}

fn tar_of(entries: &[Entry<'_>]) -> tar::Builder<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        append_raw(&mut builder, entry);
    }
    builder
}

fn finish(builder: tar::Builder<Vec<u8>>) -> Vec<u8> {
    builder.into_inner().expect("finishing a Vec archive")
}

fn gzip(tar: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(tar).expect("gzip into a Vec");
    encoder.finish().expect("gzip into a Vec")
}

fn xz(tar: &[u8]) -> Vec<u8> {
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
    encoder.write_all(tar).expect("xz into a Vec");
    encoder.finish().expect("xz into a Vec")
}

/// A small source tree with what CPython tarballs use: an executable
/// `configure`, generated files newer than their sources, GNU and pax long
/// names, a symlink and a hard link inside the tree, a pax global header.
fn source_tree() -> Vec<u8> {
    let long_dir = format!("Python-x/Lib/{}", "d".repeat(90));
    let gnu_long = format!("{long_dir}/gnu_long_name.py");
    let pax_long = format!("{long_dir}/pax_long_name.py");

    let mut builder = tar::Builder::new(Vec::new());
    append_pax(&mut builder, EntryType::XGlobalHeader, &[("comment", "global")]);
    for entry in [
        dir("Python-x/"),
        Entry { mode: 0o755, ..file("Python-x/configure", b"#!/bin/sh\necho configured\n") },
        dir("Python-x/Include/"),
        file("Python-x/Include/Python.h", b"#define PY 1\n"),
        dir("Python-x/Python/"),
        file("Python-x/Python/ceval.c", b"int x;\n"),
        Entry { mtime: NEW, ..file("Python-x/Python/generated_cases.c.h", b"/* generated */\n") },
        dir("Python-x/Lib/"),
        link(EntryType::Symlink, "Python-x/Lib/link.h", "../Include/Python.h"),
        link(EntryType::Link, "Python-x/Lib/hard.c", "Python-x/Python/ceval.c"),
    ] {
        append_raw(&mut builder, &entry);
    }
    for (kind, path, data) in
        [(EntryType::Directory, &long_dir, &b""[..]), (EntryType::Regular, &gnu_long, &b"gnu"[..])]
    {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        header.set_mtime(OLD);
        header.set_size(data.len() as u64);
        builder.append_data(&mut header, path, data).expect("gnu long name");
    }
    append_pax(
        &mut builder,
        EntryType::XHeader,
        &[("path", &pax_long), ("mtime", "1700000000.25")],
    );
    append_raw(&mut builder, &file("Python-x/pax_short_name", b"pax"));
    finish(builder)
}

/// Every path below `root` with its type, mode and mtime, sorted.
fn listing(root: &Utf8Path) -> String {
    fn walk(root: &Utf8Path, dir: &Utf8Path, out: &mut Vec<String>) {
        for entry in dir.read_dir_utf8().expect("listing the extracted tree") {
            let path = entry.expect("listing the extracted tree").into_path();
            let meta = fs::symlink_metadata(&path).expect("stat of an extracted path");
            let rel = path.strip_prefix(root).expect("below the root");
            let mtime = meta.modified().expect("mtime").duration_since(UNIX_EPOCH);
            let mtime = mtime.expect("after the epoch");
            let mut line = if meta.is_symlink() {
                let target = fs::read_link(&path).expect("reading a symlink");
                format!("{rel} -> {}", target.display())
            } else {
                let mode = meta.permissions().mode() & 0o7777;
                let secs = mtime.as_secs();
                let nanos = mtime.subsec_nanos();
                let time = if nanos == 0 { secs.to_string() } else { format!("{secs}.{nanos:09}") };
                format!("{rel} {mode:o} {time}")
            };
            if meta.is_file() && meta.nlink() > 1 {
                line.push_str(&format!(" links={}", meta.nlink()));
            }
            out.push(line);
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let meta = fs::metadata(root).expect("stat of the root");
    let mtime = meta.modified().expect("mtime").duration_since(UNIX_EPOCH);
    let mode = meta.permissions().mode() & 0o7777;
    let mut out = vec![format!(". {mode:o} {}", mtime.expect("after the epoch").as_secs())];
    walk(root, root, &mut out);
    out.sort();
    out.join("\n")
}

/// A scratch directory holding `archive` and an empty `out/` to extract into.
struct Scratch {
    _dir: tempfile::TempDir,
    root: Utf8PathBuf,
}

impl Scratch {
    fn new(archive: &[u8]) -> Scratch {
        let dir = tempfile::tempdir().expect("creating a scratch directory");
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).expect("utf-8 temp dir");
        fs::write(root.join("archive"), archive).expect("writing the test archive");
        fs::create_dir(root.join("out")).expect("creating out/");
        Scratch { _dir: dir, root }
    }

    fn archive(&self) -> Utf8PathBuf {
        self.root.join("archive")
    }

    fn dest(&self) -> Utf8PathBuf {
        self.root.join("out/Python-x")
    }

    fn extract(&self) -> Result<crate::Extracted, ExtractError> {
        extract_source_archive(&self.archive(), &self.dest())
    }

    /// The names left in `out/` (a failed extraction must leave none).
    fn leftovers(&self) -> Vec<String> {
        let mut names = fs::read_dir(self.root.join("out"))
            .expect("listing out/")
            .map(|entry| {
                let entry = entry.expect("listing out/");
                entry.file_name().to_string_lossy().into_owned()
            })
            .collect::<Vec<_>>();
        names.sort();
        names
    }

    /// The error and its sources, like anyhow's `{:#}`, with paths shortened.
    fn render(&self, err: &ExtractError) -> String {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text.replace(self.root.as_str(), "$TMP")
    }
}

/// Extracts `archive` (gzip-compressed here), expects it to fail with the
/// message `expect`, and checks that nothing is left behind.
fn check_refused(archive: &[u8], expect: Expect) {
    let scratch = Scratch::new(archive);
    let err = match scratch.extract() {
        Ok(extracted) => panic!("extraction succeeded: {extracted:?}"),
        Err(err) => err,
    };
    expect.assert_eq(&scratch.render(&err));
    assert_eq!(scratch.leftovers(), Vec::<String>::new(), "out/ must stay empty");
}

/// A gzip archive of `entries`, preceded by a few good ones so that
/// extraction has written files before it meets the bad entry.
fn after_good(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut all = vec![
        dir("Python-x/"),
        file("Python-x/configure", b"#!/bin/sh\n"),
        dir("Python-x/Include/"),
        file("Python-x/Include/Python.h", b"\n"),
    ];
    all.extend_from_slice(entries);
    gzip(&finish(tar_of(&all)))
}

fn check_good(archive: &[u8], expect_listing: Expect) {
    let scratch = Scratch::new(archive);
    let extracted = scratch.extract().expect("extracting a good archive");
    assert_eq!(scratch.leftovers(), ["Python-x"], "only dest remains in out/");
    let dest = scratch.dest();
    assert!(
        dest.join("configure").metadata().expect("configure").permissions().mode() & 0o111 != 0,
        "configure must be executable"
    );
    // The record of the extraction is in the tree, and the tree matches it.
    crate::check_tree(&dest).expect("a fresh tree matches its record");
    let mtime = fs::metadata(&dest).and_then(|m| m.modified()).expect("mtime");
    fs::remove_file(dest.join(crate::RECORD_NAME)).expect("the tree holds its record");
    fs::File::open(&dest).and_then(|f| f.set_modified(mtime)).expect("set mtime");
    let listing = format!("{extracted:?}\n{}", listing(&dest));
    expect_listing.assert_eq(&listing);
}

/// Issue 18: a tree changed since extraction (a file removed, replaced, added; its record
/// gone) is found; `__pycache__` (written by an out-of-tree build) is not a change.
#[test]
fn a_tree_changed_since_extraction_is_found() {
    let scratch = Scratch::new(&gzip(&source_tree()));
    scratch.extract().expect("extracting a good archive");
    let dest = scratch.dest();
    let check = || match crate::check_tree(&dest) {
        Ok(()) => "whole".to_owned(),
        Err(e) => e.to_string().replace(dest.as_str(), "$DEST"),
    };
    fs::create_dir_all(dest.join("Lib/__pycache__")).expect("mkdir");
    fs::write(dest.join("Lib/__pycache__/x.pyc"), "pyc").expect("write");
    assert_eq!(check(), "whole");
    fs::remove_file(dest.join("Include/Python.h")).expect("rm");
    fs::write(dest.join("configure"), "#!/bin/sh\necho replaced\n").expect("write");
    fs::write(dest.join("Lib/sitecustomize.py"), "").expect("write");
    expect![[r#"$DEST changed since it was extracted: removed Include/Python.h, changed configure, added Lib/sitecustomize.py"#]]
        .assert_eq(&check());
    fs::remove_file(dest.join(crate::RECORD_NAME)).expect("rm");
    expect![[r#"$DEST has no record of its extraction (.debug-matrix-files)"#]].assert_eq(&check());
}

#[test]
fn good_gzip_archive() {
    check_good(
        &gzip(&source_tree()),
        expect![[r#"
            Extracted { files: 7, bytes: 68 }
            . 755 1600000000
            Include 755 1600000000
            Include/Python.h 644 1600000000
            Lib 755 1600000000
            Lib/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd 755 1600000000
            Lib/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/gnu_long_name.py 644 1600000000
            Lib/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/pax_long_name.py 644 1700000000.250000000
            Lib/hard.c 644 1600000000 links=2
            Lib/link.h -> ../Include/Python.h
            Python 755 1600000000
            Python/ceval.c 644 1600000000 links=2
            Python/generated_cases.c.h 644 1700000000
            configure 755 1600000000"#]],
    );
}

#[test]
fn good_xz_archive() {
    check_good(
        &xz(&source_tree()),
        expect![[r#"
            Extracted { files: 7, bytes: 68 }
            . 755 1600000000
            Include 755 1600000000
            Include/Python.h 644 1600000000
            Lib 755 1600000000
            Lib/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd 755 1600000000
            Lib/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/gnu_long_name.py 644 1600000000
            Lib/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/pax_long_name.py 644 1700000000.250000000
            Lib/hard.c 644 1600000000 links=2
            Lib/link.h -> ../Include/Python.h
            Python 755 1600000000
            Python/ceval.c 644 1600000000 links=2
            Python/generated_cases.c.h 644 1700000000
            configure 755 1600000000"#]],
    );
}

#[test]
fn parent_dir_traversal() {
    check_refused(
        &after_good(&[file("../escape", b"pwned")]),
        expect![
            "refusing to extract $TMP/archive: entry `../escape` has a `..` component; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
    check_refused(
        &after_good(&[file("Python-x/Lib/../../../escape", b"pwned")]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/Lib/../../../escape` has a `..` component; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
}

#[test]
fn absolute_path() {
    check_refused(
        &after_good(&[file("/abs/path", b"pwned")]),
        expect![
            "refusing to extract $TMP/archive: entry `/abs/path` has an absolute path; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
}

#[test]
fn symlink_outside() {
    check_refused(
        &after_good(&[link(EntryType::Symlink, "Python-x/link", "../../outside")]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/link` is a symlink to `../../outside`, which points outside the source tree; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
    check_refused(
        &after_good(&[link(EntryType::Symlink, "Python-x/Include/up", "../..")]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/Include/up` is a symlink to `../..`, which points outside the source tree; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
}

#[test]
fn symlink_absolute() {
    check_refused(
        &after_good(&[link(EntryType::Symlink, "Python-x/link", "/etc/passwd")]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/link` is a symlink to the absolute path `/etc/passwd`; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
}

#[test]
fn symlink_chain() {
    // `Include/..` is `.` lexically, but were `Include` a symlink to a deeper
    // directory, the kernel would follow it before applying `..`.
    check_refused(
        &after_good(&[link(EntryType::Symlink, "Python-x/link", "Include/../..")]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/link` is a symlink to `Include/../..`, which has `..` after a name and could leave the source tree through another symlink; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
}

#[test]
fn write_through_symlink() {
    check_refused(
        &after_good(&[
            link(EntryType::Symlink, "Python-x/inc", "Include"),
            file("Python-x/inc/evil.h", b"pwned"),
        ]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/inc/evil.h` lies below a symlink extracted earlier; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
}

#[test]
fn hard_link_outside() {
    check_refused(
        &after_good(&[link(EntryType::Link, "Python-x/passwd", "/etc/passwd")]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/passwd` is a hard link to `/etc/passwd`, which is outside the source tree; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
    check_refused(
        &after_good(&[link(EntryType::Link, "Python-x/x", "Other/configure")]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/x` is a hard link to `Other/configure`, which is outside the source tree; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
}

/// A hard link may only name a regular file extracted earlier. The escape it closes: a
/// symlink that is inside the tree where it stands (`a/b/up -> ../..`), hard-linked to a
/// place nearer the top, where the same target leaves the tree.
#[test]
fn hard_link_to_a_symlink() {
    check_refused(
        &after_good(&[
            dir("Python-x/a/"),
            dir("Python-x/a/b/"),
            link(EntryType::Symlink, "Python-x/a/b/up", "../.."),
            link(EntryType::Link, "Python-x/esc", "Python-x/a/b/up"),
        ]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/esc` is a hard link to `Python-x/a/b/up`, which is a symlink; its target was checked only where it was extracted; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
    // Deeper nesting reaches `/`; the link placed one level down, and parents created
    // implicitly (no directory entries).
    check_refused(
        &after_good(&[
            link(EntryType::Symlink, "Python-x/a/b/c/d/e/f/up", "../../../../../.."),
            link(EntryType::Link, "Python-x/Include/esc", "Python-x/a/b/c/d/e/f/up"),
        ]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/Include/esc` is a hard link to `Python-x/a/b/c/d/e/f/up`, which is a symlink; its target was checked only where it was extracted; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
    // A hard link to a hard link of a symlink never exists: the first one is refused. A
    // symlink that would stay inside at its new place is refused all the same (one rule).
    check_refused(
        &after_good(&[
            link(EntryType::Symlink, "Python-x/Include/same.h", "Python.h"),
            link(EntryType::Link, "Python-x/Include/same2.h", "Python-x/Include/same.h"),
        ]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/Include/same2.h` is a hard link to `Python-x/Include/same.h`, which is a symlink; its target was checked only where it was extracted; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
}

#[test]
fn hard_link_to_nothing_or_to_a_directory() {
    // Not a write failure: no "free space" hint.
    check_refused(
        &after_good(&[link(EntryType::Link, "Python-x/x", "Python-x/missing.c")]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/x` is a hard link to `Python-x/missing.c`, which is not a file extracted earlier from the archive; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
    check_refused(
        &after_good(&[link(EntryType::Link, "Python-x/x", "Python-x/Include")]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/x` is a hard link to `Python-x/Include`, which is a directory; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
}

/// A `.extracting-*` directory left by a killed run (nobody holds its lock) is removed by
/// the next extraction; one that a live run holds locked is left alone until it is released.
#[test]
fn stale_temporaries_are_removed_and_live_ones_kept() {
    let scratch = Scratch::new(&gzip(&source_tree()));
    let out = scratch.root.join("out");
    let killed = out.join(".extracting-Python-x-killed");
    fs::create_dir_all(killed.join("Lib")).expect("creating a stale temporary");
    fs::write(killed.join("Lib/partial.py"), "half").expect("writing into it");
    let live = out.join(".extracting-Python-y-live");
    fs::create_dir(&live).expect("creating a live temporary");
    let lock = fs::File::open(&live).expect("opening it");
    lock.lock().expect("locking it as a live run does");

    scratch.extract().expect("extracting beside the temporaries");
    assert_eq!(scratch.leftovers(), [".extracting-Python-y-live", "Python-x"]);

    drop(lock);
    let removed = crate::remove_stale_temporaries(&out).expect("cleaning up");
    assert_eq!(removed, [live]);
    assert_eq!(scratch.leftovers(), ["Python-x"]);
}

#[test]
fn devices_and_fifos() {
    check_refused(
        &after_good(&[special(EntryType::Char, "Python-x/null")]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/null` is a character device; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
    check_refused(
        &after_good(&[special(EntryType::Block, "Python-x/sda")]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/sda` is a block device; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
    check_refused(
        &after_good(&[special(EntryType::Fifo, "Python-x/pipe")]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/pipe` is a fifo; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
}

#[test]
fn duplicate_entry() {
    // A second `configure` must not replace (or write through) the first.
    check_refused(
        &after_good(&[file("Python-x/configure", b"#!/bin/sh\nrm -rf ~\n")]),
        expect![
            "refusing to extract $TMP/archive: entry `Python-x/configure` replaces an entry extracted earlier; a cpython source archive never has such entries, download it again from python.org"
        ],
    );
}

#[test]
fn not_a_single_top_dir() {
    check_refused(
        &after_good(&[file("Other/README", b"")]),
        expect![
            "$TMP/archive does not hold a single top-level directory: entry `Other/README` is outside `Python-x/`; expected every entry under one directory such as `Python-3.13.5/`"
        ],
    );
    check_refused(
        &gzip(&finish(tar_of(&[file("README", b"")]))),
        expect![
            "$TMP/archive does not hold a single top-level directory: entry `README` is not a directory; expected every entry under one directory such as `Python-3.13.5/`"
        ],
    );
    check_refused(
        &gzip(&finish(tar_of(&[]))),
        expect![
            "$TMP/archive does not hold a single top-level directory: the archive has no entries; expected every entry under one directory such as `Python-3.13.5/`"
        ],
    );
}

#[test]
fn truncated_archive() {
    // Incompressible content, so the cut falls inside the file data.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise = (0..256 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect::<Vec<u8>>();
    let whole = after_good(&[file("Python-x/noise.bin", &noise)]);
    check_refused(
        &whole[..whole.len() / 2],
        expect![
            "$TMP/archive is truncated or corrupt; delete it and download it again: incomplete deflate stream"
        ],
    );
    // Only the gzip trailer (crc and size) missing.
    check_refused(
        &whole[..whole.len() - 4],
        expect![
            "$TMP/archive is truncated or corrupt; delete it and download it again: unexpected end of file"
        ],
    );
    let whole = xz(&finish(tar_of(&[dir("Python-x/"), file("Python-x/noise.bin", &noise)])));
    check_refused(
        &whole[..whole.len() / 2],
        expect![
            "$TMP/archive is truncated or corrupt; delete it and download it again: premature eof"
        ],
    );
    let mut flipped = whole.clone();
    flipped[whole.len() / 2] ^= 0xff;
    check_refused(
        &flipped,
        expect![
            "$TMP/archive is truncated or corrupt; delete it and download it again: lzma data error"
        ],
    );
}

#[test]
fn unknown_format() {
    check_refused(
        &finish(tar_of(&[dir("Python-x/")])),
        expect![
            "$TMP/archive is neither gzip nor xz compressed (unknown magic bytes); expected a cpython .tgz or .tar.xz source archive"
        ],
    );
    check_refused(
        b"",
        expect![
            "$TMP/archive is neither gzip nor xz compressed (unknown magic bytes); expected a cpython .tgz or .tar.xz source archive"
        ],
    );
}

#[test]
fn dest_already_exists() {
    let scratch = Scratch::new(&gzip(&source_tree()));
    fs::create_dir(scratch.dest()).expect("creating dest");
    fs::write(scratch.dest().join("keep"), "mine").expect("writing into dest");
    let err = scratch.extract().expect_err("dest exists");
    expect!["destination $TMP/out/Python-x already exists; remove it or extract somewhere else"]
        .assert_eq(&scratch.render(&err));
    assert_eq!(scratch.leftovers(), ["Python-x"]);
    assert_eq!(listing(&scratch.dest()).lines().count(), 2, "dest untouched");
}

#[test]
fn dest_parent_missing() {
    let scratch = Scratch::new(&gzip(&source_tree()));
    let dest = scratch.root.join("out/missing/Python-x");
    let err = extract_source_archive(&scratch.archive(), &dest).expect_err("no parent");
    expect!["cannot write $TMP/out/missing while extracting $TMP/archive; check that the destination's parent directory exists, is writable and has free space: No such file or directory (os error 2)"].assert_eq(&scratch.render(&err));
    assert_eq!(scratch.leftovers(), Vec::<String>::new());
}

/// The real CPython tarballs (gzip and xz) from `../shared/cpython-sources` beside the
/// repository extract whole, with an executable `configure`. A missing tarball fails the test.
#[test]
fn real_cpython_archives_extract_whole() {
    let sources = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cpython-sources");
    for name in ["Python-3.11.2.tgz", "Python-3.13.5.tar.xz"] {
        let archive = sources.join(name);
        assert!(
            archive.is_file(),
            "{archive} is missing: this test needs the real CPython tarballs in \
             ../shared/cpython-sources beside the repository (CI has them there); put {name} \
             from https://www.python.org/ftp/python/ in that directory"
        );
        let dir = tempfile::tempdir().expect("creating a scratch directory");
        let dest = Utf8PathBuf::from_path_buf(dir.path().join("src")).expect("utf-8 temp dir");
        let extracted = extract_source_archive(&archive, &dest)
            .unwrap_or_else(|err| panic!("extracting {name}: {err}"));
        let configure = dest.join("configure").metadata().expect("configure exists");
        assert!(
            configure.permissions().mode() & 0o111 != 0,
            "{name}: configure must be executable"
        );
        assert!(dest.join("Include/Python.h").is_file(), "{name}: Include/Python.h exists");
        assert!(extracted.files > 4000, "{name}: {extracted:?}");
    }
}
