//! End-to-end tests of `cargo xtask list`, `fetch` and `verify`: each runs the real binary
//! the way a user does, in a fresh scratch directory (`$TMP` in snapshots) with its own
//! `--work-dir`, against the real CPython archives in `../shared/cpython-sources`
//! (`$SHARED`). Fetches pass `--no-upstream`: python.org is never contacted.
//!
//! Each test asserts the exit status and the message through [`check`], a snapshot of
//! `exit N` plus stdout and stderr; `UPDATE_EXPECT=1 cargo test -p xtask --test cli`
//! refreshes the snapshots. Where a message is not stable (network errors, retry delays)
//! the test asserts on its stable parts instead.

mod common;

use std::fs;

use expect_test::{Expect, expect};

use common::{Case, Entry, PIN_3_11_2_SHA256, PIN_3_11_2_SIZE, Run};

/// The one driver: the exit status, stdout and stderr of `run`, as a snapshot.
fn check(run: &Run, expect: Expect) {
    expect.assert_eq(&run.render());
}

/// `fetch` of 3.11 only, from `mirrors` in order, never upstream.
fn fetch_3_11<'a>(mirrors: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["fetch", "--no-upstream", "--version", "3.11"];
    for mirror in mirrors {
        args.extend(["--mirror", mirror]);
    }
    args
}

/// A failed fetch kept nothing: no file in the cache (neither the archive nor a partial
/// download) and no source tree or `.extracting-*` directory in `src/`.
fn assert_nothing_kept(case: &Case) {
    assert_eq!(case.cached_files(), Vec::<String>::new(), "the cache must keep no rejected bytes");
    assert_eq!(
        case.sources(),
        Vec::<String>::new(),
        "src/ must hold no tree and no partial extraction"
    );
}

/// The single source tree in `src/`, which must be 3.11.2's and complete.
fn assert_extracted_3_11_2(case: &Case) {
    let sources = case.sources();
    assert!(
        sources.len() == 1 && sources[0].starts_with("3.11.2-"),
        "src/ should hold just the 3.11.2 tree, found {sources:?}"
    );
    let tree = case.work.join("src").join(&sources[0]);
    assert!(common::is_executable(&tree.join("configure")), "{tree}/configure is not executable");
    assert!(tree.join("Include/Python.h").is_file(), "{tree}/Include/Python.h is missing");
}

#[test]
fn list_prints_every_cell() {
    let case = Case::new();
    check(
        &case.xtask(&["list"]),
        expect![[r#"
            exit 0
            --- stdout
            cell                       rebuild  build
            3.11.2+release             no       (defaults)
            3.11.2+debug               no       --with-pydebug
            3.11.2+ref-debug           yes      EXTRA_CFLAGS=-DPy_REF_DEBUG
            3.11.2+trace-refs          yes      --with-pydebug --with-trace-refs
            3.11.2+valgrind            no       --with-pydebug --without-pymalloc --with-valgrind
            3.11.2+pymalloc-debug      no       run:PYTHONMALLOC=pymalloc_debug
            3.11.2+asan                no       --with-address-sanitizer run:ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:symbolize=1
            3.11.2+ubsan               no       --with-undefined-behavior-sanitizer run:UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
            3.13.5+release             no       (defaults)
            3.13.5+debug               no       --with-pydebug
            3.13.5+ref-debug           yes      EXTRA_CFLAGS=-DPy_REF_DEBUG
            3.13.5+trace-refs          no       --with-pydebug --with-trace-refs
            3.13.5+valgrind            no       --with-pydebug --without-pymalloc --with-valgrind
            3.13.5+pymalloc-debug      no       run:PYTHONMALLOC=pymalloc_debug
            3.13.5+asan                no       --with-address-sanitizer run:ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:symbolize=1
            3.13.5+freethreaded        yes      --disable-gil
            3.13.5+freethreaded-debug  yes      --disable-gil --with-pydebug
            3.13.5+tsan                yes      --disable-gil --with-thread-sanitizer make:COMPILEALL_OPTS=-j0 -l run:TSAN_OPTIONS=halt_on_error=0:handle_segv=0:second_deadlock_stack=1
            3.13.5+ubsan               no       --with-undefined-behavior-sanitizer run:UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
        "#]],
    );
}

#[test]
fn list_json_of_the_ci_set_is_the_ci_cells() {
    let case = Case::new();
    let run = case.xtask(&["list", "--json", "--set", "ci"]);
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""), "{}", run.render());
    assert_eq!(run.stdout.lines().count(), 1, "one line, for $GITHUB_OUTPUT: {}", run.stdout);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is JSON");
    let object = doc.as_object().expect("a JSON object");
    assert_eq!(object.keys().collect::<Vec<_>>(), ["include"], "{doc}");
    let include = object["include"].as_array().expect("`include` is an array");
    let mut cells = Vec::new();
    for entry in include {
        let field =
            |name: &str| entry[name].as_str().unwrap_or_else(|| panic!("{entry}: no {name}"));
        let (cell, version, variant) = (field("cell"), field("version"), field("variant"));
        assert_eq!(cell, format!("{version}+{variant}"), "{entry}");
        assert!(entry["rebuild_extensions"].is_boolean(), "{entry}");
        cells.push(cell);
    }
    // Exactly `[set.ci]` of matrix/cells.toml, in version-then-variant file order.
    expect![[r#"
        3.11.2+debug
        3.13.5+release
        3.13.5+debug
        3.13.5+ref-debug
        3.13.5+trace-refs
        3.13.5+valgrind"#]]
    .assert_eq(&cells.join("\n"));
}

#[test]
fn fetch_extracts_then_does_nothing_then_verify_passes() {
    let case = Case::new();
    let fetch = fetch_3_11(&[case.shared.as_str()]);
    check(
        &case.xtask(&fetch),
        expect![[r#"
            exit 0
            --- stdout
            3.11.2: fetched from mirror $SHARED, sha256 verified, no signing key pinned; extracted in $TMP/work/src/3.11.2-2411c74bda5b
        "#]],
    );
    assert_extracted_3_11_2(&case);
    check(
        &case.xtask(&fetch),
        expect![[r#"
            exit 0
            --- stdout
            3.11.2: archive cached; already extracted in $TMP/work/src/3.11.2-2411c74bda5b
            nothing to do: every archive is cached and every source is extracted
        "#]],
    );
    check(
        &case.xtask(&["verify", "--version", "3.11"]),
        expect![[r#"
            exit 0
            --- stdout
            3.11.2: $TMP/work/cache/sha256/2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849/Python-3.11.2.tgz: size and sha256 match the pin, no signing key pinned
            verified 1 cached archive(s)
        "#]],
    );
}

#[test]
fn fetch_refuses_an_archive_with_one_corrupted_byte() {
    let case = Case::new();
    let mirror = case.dir("mirror");
    let archive = mirror.join("Python-3.11.2.tgz");
    fs::copy(case.shared.join("Python-3.11.2.tgz"), &archive).expect("copying the archive");
    common::flip_middle_byte(&archive);
    check(
        &case.xtask(&fetch_3_11(&[mirror.as_str()])),
        expect![[r#"
            exit 1
            --- stderr
            error: fetching CPython 3.11.2: could not fetch Python-3.11.2.tgz: no source delivered the pinned bytes
              - mirror $TMP/mirror: Python-3.11.2.tgz from mirror $TMP/mirror does not match its pin:
                  expected sha256 2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849
                  actual   sha256 4821d21264087b388766ec2b8dbfebf63b629301cd5d6f0985b02697c9c6dc82
                (pinned in matrix/versions.toml; the file was not kept)
        "#]],
    );
    assert_nothing_kept(&case);
}

#[test]
fn fetch_refuses_a_truncated_archive() {
    let case = Case::new();
    let mirror = case.dir("mirror");
    let bytes = fs::read(case.shared.join("Python-3.11.2.tgz")).expect("reading the archive");
    fs::write(mirror.join("Python-3.11.2.tgz"), &bytes[..bytes.len() / 2]).expect("writing half");
    check(
        &case.xtask(&fetch_3_11(&[mirror.as_str()])),
        expect![[r#"
            exit 1
            --- stderr
            error: fetching CPython 3.11.2: could not fetch Python-3.11.2.tgz: no source delivered the pinned bytes
              - mirror $TMP/mirror: Python-3.11.2.tgz from mirror $TMP/mirror has the wrong size: expected 26437858 bytes, got 13218929 bytes (pinned in matrix/versions.toml)
        "#]],
    );
    assert_nothing_kept(&case);
}

#[test]
fn fetch_refuses_the_real_archive_under_a_wrong_sha256_pin() {
    let case = Case::new();
    let fake = "0123456789abcdef".repeat(4);
    let matrix = case.matrix_with("versions.toml", PIN_3_11_2_SHA256, &fake);
    let mut args = fetch_3_11(&[case.shared.as_str()]);
    args.extend(["--matrix-dir", matrix.as_str()]);
    check(
        &case.xtask(&args),
        expect![[r#"
            exit 1
            --- stderr
            error: fetching CPython 3.11.2: could not fetch Python-3.11.2.tgz: no source delivered the pinned bytes
              - mirror $SHARED: Python-3.11.2.tgz from mirror $SHARED does not match its pin:
                  expected sha256 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
                  actual   sha256 2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849
                (pinned in matrix/versions.toml; the file was not kept)
        "#]],
    );
    assert_nothing_kept(&case);
}

#[test]
fn fetch_refuses_the_real_archive_under_a_wrong_size_pin() {
    let case = Case::new();
    let size = |n: u64| format!("size = {n}");
    let matrix =
        case.matrix_with("versions.toml", &size(PIN_3_11_2_SIZE), &size(PIN_3_11_2_SIZE + 1));
    let mut args = fetch_3_11(&[case.shared.as_str()]);
    args.extend(["--matrix-dir", matrix.as_str()]);
    check(
        &case.xtask(&args),
        expect![[r#"
            exit 1
            --- stderr
            error: fetching CPython 3.11.2: could not fetch Python-3.11.2.tgz: no source delivered the pinned bytes
              - mirror $SHARED: Python-3.11.2.tgz from mirror $SHARED has the wrong size: expected 26437859 bytes, got 26437858 bytes (pinned in matrix/versions.toml)
        "#]],
    );
    assert_nothing_kept(&case);
}

#[test]
fn malformed_matrix_toml_names_file_line_and_column() {
    let mut case = Case::new();
    let matrix = case.copy_matrix();
    let variants = matrix.join("variants.toml");
    let text = fs::read_to_string(&variants).expect("reading variants.toml");
    let line = 1 + text
        .lines()
        .position(|l| l == r#"name = "debug""#)
        .expect(r#"variants.toml declares name = "debug""#);
    // An unterminated string; the line number is scrubbed so edits above it keep the snapshot.
    common::edit(&variants, "name = \"debug\"\n", "name = \"debug\n");
    case.scrub(&format!("variants.toml:{line}:"), "variants.toml:LINE:");
    case.scrub(&format!("{line:>4} | "), "LINE | ");
    check(
        &case.xtask(&["list", "--matrix-dir", matrix.as_str()]),
        expect![[r#"
            exit 1
            --- stderr
            error: $TMP/matrix/variants.toml:LINE:14: invalid basic string, expected `"`
              LINE | name = "debug
                   |              ^
        "#]],
    );
}

#[test]
fn unknown_selections_name_what_the_matrix_has() {
    let case = Case::new();
    check(
        &case.xtask(&["list", "--version", "3.12"]),
        expect![[r#"
            exit 1
            --- stderr
            error: unknown version `3.12`: the matrix has 3.11.2, 3.13.5 (see matrix/versions.toml)
        "#]],
    );
    check(
        &case.xtask(&["fetch", "--no-upstream", "--variant", "nope"]),
        expect![[r#"
            exit 1
            --- stderr
            error: unknown variant `nope`: the matrix has release, debug, ref-debug, trace-refs, valgrind, pymalloc-debug, asan, freethreaded, freethreaded-debug, tsan, ubsan (see matrix/variants.toml)
        "#]],
    );
    check(
        &case.xtask(&["list", "--version", "3.11", "--variant", "freethreaded"]),
        expect![[r#"
            exit 1
            --- stderr
            error: variant `freethreaded` is not valid for 3.11.2: it is valid for 3.13+ (see matrix/variants.toml)
        "#]],
    );
    check(
        &case.xtask(&["list", "--set", "nope"]),
        expect![[r#"
            exit 1
            --- stderr
            error: unknown cell set `nope`: matrix/cells.toml defines ci, corpus, sanitizers
        "#]],
    );
    assert!(!case.work.exists(), "a selection error must not touch the work directory");
}

#[test]
fn fetch_falls_through_an_unreachable_mirror() {
    let case = Case::new();
    // Nothing listens on the discard port: connection refused, retried with backoff.
    let unreachable = "https://127.0.0.1:9";
    let run = case.xtask(&fetch_3_11(&[unreachable, case.shared.as_str()]));
    assert_eq!(run.code, Some(0), "{}", run.render());
    expect![[r#"
        3.11.2: fetched from mirror $SHARED, sha256 verified, no signing key pinned; extracted in $TMP/work/src/3.11.2-2411c74bda5b
    "#]].assert_eq(&run.stdout);
    let retry = format!("fetch: mirror {unreachable}: {unreachable}/Python-3.11.2.tgz: ");
    assert!(
        !run.stderr.is_empty() && run.stderr.lines().all(|l| l.starts_with(&retry)),
        "stderr should only report retries of the unreachable mirror:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("; retrying in "), "{}", run.stderr);
    assert_extracted_3_11_2(&case);
}

#[test]
fn fetch_falls_through_a_mirror_directory_without_the_archive() {
    let mut case = Case::new();
    let empty = case.dir("empty-mirror");
    // The second mirror comes from the environment, as a file:// URL.
    case.env("DEBUG_MATRIX_MIRROR", &format!("file://{}", case.shared));
    check(
        &case.xtask(&fetch_3_11(&[empty.as_str()])),
        expect![[r#"
            exit 0
            --- stdout
            3.11.2: fetched from mirror $SHARED, sha256 verified, no signing key pinned; extracted in $TMP/work/src/3.11.2-2411c74bda5b
        "#]],
    );
    assert_extracted_3_11_2(&case);
}

/// Fetches 3.11 from a mirror holding `archive` as `Python-3.11.2.tgz`, under a copied matrix
/// that pins `sha` (scrubbed to `$SHA`, its first 12 digits to `$SHA12`) and the archive's
/// size.
fn fetch_crafted(case: &mut Case, archive: &[u8], sha: &str) -> Run {
    let mirror = case.dir("mirror");
    fs::write(mirror.join("Python-3.11.2.tgz"), archive).expect("writing the crafted archive");
    let matrix = case.matrix_with("versions.toml", PIN_3_11_2_SHA256, sha);
    let size = |n: usize| format!("size = {n}");
    common::edit(
        &matrix.join("versions.toml"),
        &size(PIN_3_11_2_SIZE as usize),
        &size(archive.len()),
    );
    case.scrub(sha, "$SHA");
    case.scrub(&sha[..12], "$SHA12");
    let mut args = fetch_3_11(&[mirror.as_str()]);
    args.extend(["--matrix-dir", matrix.as_str()]);
    case.xtask(&args)
}

/// Fetches 3.11 from a mirror holding `entries` as `Python-3.11.2.tgz`, under a copied
/// matrix that pins that archive's real size and sha256 (`$SHA`): verification passes,
/// extraction must refuse. Nothing may be kept in `src/` and nothing named like an
/// escaping entry may appear anywhere in `$TMP`.
fn check_refused_archive(entries: &[Entry<'_>], escapes: &[&str], expect: Expect) {
    let mut case = Case::new();
    let archive = common::tgz(entries);
    let sha = common::sha256_hex(&archive);
    check(&fetch_crafted(&mut case, &archive, &sha), expect);
    assert_eq!(case.sources(), Vec::<String>::new(), "src/ must hold no tree and no .extracting-*");
    assert_eq!(case.find_named(escapes), Vec::<String>::new(), "an entry escaped into $TMP");
}

#[test]
fn fetch_refuses_an_archive_with_a_parent_dir_entry() {
    check_refused_archive(
        &[
            Entry::Dir("Python-3.11.2/"),
            Entry::File("Python-3.11.2/configure", b"#!/bin/sh\n"),
            Entry::File("Python-3.11.2/../../evil", b"pwned\n"),
        ],
        &["evil"],
        expect![[r#"
            exit 1
            --- stderr
            error: extracting $TMP/work/cache/sha256/$SHA/Python-3.11.2.tgz into $TMP/work/src/3.11.2-$SHA12: refusing to extract $TMP/work/cache/sha256/$SHA/Python-3.11.2.tgz: entry `Python-3.11.2/../../evil` has a `..` component; a cpython source archive never has such entries, download it again from python.org
        "#]],
    );
}

#[test]
fn fetch_refuses_an_archive_with_a_symlink_out_of_the_tree() {
    check_refused_archive(
        &[
            Entry::Dir("Python-3.11.2/"),
            Entry::File("Python-3.11.2/configure", b"#!/bin/sh\n"),
            Entry::Symlink("Python-3.11.2/link", "../../outside"),
            Entry::File("Python-3.11.2/link/escaped", b"pwned\n"),
        ],
        &["link", "outside", "escaped"],
        expect![[r#"
            exit 1
            --- stderr
            error: extracting $TMP/work/cache/sha256/$SHA/Python-3.11.2.tgz into $TMP/work/src/3.11.2-$SHA12: refusing to extract $TMP/work/cache/sha256/$SHA/Python-3.11.2.tgz: entry `Python-3.11.2/link` is a symlink to `../../outside`, which points outside the source tree; a cpython source archive never has such entries, download it again from python.org
        "#]],
    );
}

#[test]
fn verify_detects_and_removes_a_corrupted_cached_archive() {
    let case = Case::new();
    let fetch = case.xtask(&fetch_3_11(&[case.shared.as_str()]));
    assert_eq!(fetch.code, Some(0), "{}", fetch.render());
    let cached = case.cached_files();
    assert!(
        cached.len() == 1 && cached[0].ends_with("/Python-3.11.2.tgz"),
        "the cache should hold the archive alone: {cached:?}"
    );
    let cached = case.work.join("cache").join(&cached[0]);
    common::flip_middle_byte(&cached);
    check(
        &case.xtask(&["verify", "--version", "3.11"]),
        expect![[r#"
            exit 1
            --- stderr
            3.11.2: FAILED: cached archive of 3.11.2 is corrupt and was removed; run `cargo xtask fetch`: $TMP/work/cache/sha256/2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849/Python-3.11.2.tgz does not match its pin:
              expected sha256 2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849
              actual   sha256 4821d21264087b388766ec2b8dbfebf63b629301cd5d6f0985b02697c9c6dc82
            (pinned in matrix/versions.toml; the file was not kept)
            error: verification failed for 3.11.2
        "#]],
    );
    assert!(!cached.exists(), "the corrupt archive must be removed from the cache");
    check(
        &case.xtask(&["verify", "--version", "3.11"]),
        expect![[r#"
            exit 0
            --- stdout
            3.11.2: not cached (run `cargo xtask fetch`)
            verified 0 cached archive(s)
        "#]],
    );
}

/// The crafted archives above are pinned by their SHA-256 as the tests compute it
/// (`common::sha256_hex`), and the tool holds them to it: a harmless crafted tree passes
/// verification under its pin and is extracted; the same bytes under a pin one hex digit off
/// are refused before extraction, and nothing is kept.
#[test]
fn crafted_archives_are_pinned_by_sha256() {
    let archive = common::tgz(&[
        Entry::Dir("Python-3.11.2/"),
        Entry::File("Python-3.11.2/configure", b"#!/bin/sh\n"),
        Entry::Dir("Python-3.11.2/Include/"),
        Entry::File("Python-3.11.2/Include/Python.h", b"/* crafted */\n"),
    ]);
    let sha = common::sha256_hex(&archive);
    let mut case = Case::new();
    check(
        &fetch_crafted(&mut case, &archive, &sha),
        expect![[r#"
            exit 0
            --- stdout
            3.11.2: fetched from mirror $TMP/mirror, sha256 verified, no signing key pinned; extracted in $TMP/work/src/3.11.2-$SHA12
        "#]],
    );
    assert_extracted_3_11_2(&case);

    let flipped = if sha.starts_with('0') { '1' } else { '0' };
    let wrong = format!("{flipped}{}", &sha[1..]);
    let mut case = Case::new();
    case.scrub(&sha, "$ACTUAL");
    check(
        &fetch_crafted(&mut case, &archive, &wrong),
        expect![[r#"
        exit 1
        --- stderr
        error: fetching CPython 3.11.2: could not fetch Python-3.11.2.tgz: no source delivered the pinned bytes
          - mirror $TMP/mirror: Python-3.11.2.tgz from mirror $TMP/mirror does not match its pin:
              expected sha256 $SHA
              actual   sha256 $ACTUAL
            (pinned in matrix/versions.toml; the file was not kept)
    "#]],
    );
    assert_nothing_kept(&case);
}

/// `common::sha256_hex`, which pins the crafted archives, is SHA-256: the FIPS 180-2 test
/// vectors.
#[test]
fn sha256_helper_matches_the_fips_180_2_vectors() {
    let vectors: [(&[u8], &str); 3] = [
        (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        ),
    ];
    for (input, digest) in vectors {
        assert_eq!(
            common::sha256_hex(input),
            digest,
            "sha256 of {:?}",
            String::from_utf8_lossy(input)
        );
    }
}
