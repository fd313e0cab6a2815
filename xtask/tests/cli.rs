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
            cell                        rebuild  build
            3.11.2+release              no       (defaults)
            3.11.2+debug                no       --with-pydebug
            3.11.2+ref-debug            yes      EXTRA_CFLAGS=-DPy_REF_DEBUG
            3.11.2+trace-refs           yes      --with-pydebug --with-trace-refs
            3.11.2+valgrind             no       --with-pydebug --without-pymalloc --with-valgrind
            3.11.2+pymalloc-debug       no       run:PYTHONMALLOC=pymalloc_debug
            3.11.2+asan                 no       --with-address-sanitizer run:ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:symbolize=1
            3.11.2+ubsan                no       --with-undefined-behavior-sanitizer run:UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
            3.13.5+release              no       (defaults)
            3.13.5+debug                no       --with-pydebug
            3.13.5+ref-debug            yes      EXTRA_CFLAGS=-DPy_REF_DEBUG
            3.13.5+trace-refs           no       --with-pydebug --with-trace-refs
            3.13.5+valgrind             no       --with-pydebug --without-pymalloc --with-valgrind
            3.13.5+pymalloc-debug       no       run:PYTHONMALLOC=pymalloc_debug
            3.13.5+asan                 no       --with-address-sanitizer run:ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:symbolize=1
            3.13.5+freethreaded         yes      --disable-gil
            3.13.5+freethreaded-debug   yes      --disable-gil --with-pydebug
            3.13.5+tsan                 yes      --disable-gil --with-thread-sanitizer make:COMPILEALL_OPTS=-j0 -l run:TSAN_OPTIONS=halt_on_error=0:handle_segv=0:second_deadlock_stack=1
            3.13.5+ubsan                no       --with-undefined-behavior-sanitizer run:UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
            3.13.15+release             no       (defaults)
            3.13.15+debug               no       --with-pydebug
            3.13.15+ref-debug           yes      EXTRA_CFLAGS=-DPy_REF_DEBUG
            3.13.15+trace-refs          no       --with-pydebug --with-trace-refs
            3.13.15+valgrind            no       --with-pydebug --without-pymalloc --with-valgrind
            3.13.15+pymalloc-debug      no       run:PYTHONMALLOC=pymalloc_debug
            3.13.15+asan                no       --with-address-sanitizer run:ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:symbolize=1
            3.13.15+freethreaded        yes      --disable-gil
            3.13.15+freethreaded-debug  yes      --disable-gil --with-pydebug
            3.13.15+tsan                yes      --disable-gil --with-thread-sanitizer make:COMPILEALL_OPTS=-j0 -l run:TSAN_OPTIONS=halt_on_error=0:handle_segv=0:second_deadlock_stack=1
            3.13.15+ubsan               no       --with-undefined-behavior-sanitizer run:UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
            3.14.10: not built here (its archive is not in ../shared/cpython-sources and python.org is not reachable here); select it with --version 3.14.10
            3.15.2: not built here (its archive is not in ../shared/cpython-sources and python.org is not reachable here); select it with --version 3.15.2
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
            3.11.2: fetched from mirror $SHARED, sha256 verified, no .sigstore bundle available, sha256 pin checked; extracted in $TMP/work/src/3.11.2-2411c74bda5b
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
            3.11.2: $TMP/work/cache/sha256/2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849/Python-3.11.2.tgz: size and sha256 match the pin, no .sigstore bundle available, sha256 pin checked
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
                (pinned in matrix/versions.toml); the bytes were not kept
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
              - mirror $TMP/mirror: Python-3.11.2.tgz from mirror $TMP/mirror has the wrong size: expected 26437858 bytes, got 13218929 bytes (pinned in matrix/versions.toml); the bytes were not kept
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
                (pinned in matrix/versions.toml); the bytes were not kept
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
              - mirror $SHARED: Python-3.11.2.tgz from mirror $SHARED has the wrong size: expected 26437859 bytes, got 26437858 bytes (pinned in matrix/versions.toml); the bytes were not kept
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
            error: unknown version `3.12`: the matrix has 3.11.2, 3.13.5, 3.13.15, 3.14.10, 3.15.2 (see matrix/versions.toml)
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
            error: unknown cell set `nope`: matrix/cells.toml defines ci, corpus, sanitizers, shapes
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
        3.11.2: fetched from mirror $SHARED, sha256 verified, no .sigstore bundle available, sha256 pin checked; extracted in $TMP/work/src/3.11.2-2411c74bda5b
    "#]].assert_eq(&run.stdout);
    // The archive is retried; the Sigstore bundle (3.11's signer is pinned) is looked for
    // there once, then elsewhere.
    let retry = format!("fetch: mirror {unreachable}: {unreachable}/Python-3.11.2.tgz: ");
    let bundle = format!(
        "fetch: mirror {unreachable}: {unreachable}/Python-3.11.2.tgz.sigstore: io: Connection refused (os error 111); looking for the Sigstore bundle elsewhere"
    );
    assert!(
        !run.stderr.is_empty() && run.stderr.lines().all(|l| l.starts_with(&retry) || l == bundle),
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
            3.11.2: fetched from mirror $SHARED, sha256 verified, no .sigstore bundle available, sha256 pin checked; extracted in $TMP/work/src/3.11.2-2411c74bda5b
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
            3.11.2: FAILED: cached archive of 3.11.2 is corrupt and was removed; run `cargo xtask fetch` to fetch it again: $TMP/work/cache/sha256/2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849/Python-3.11.2.tgz does not match its pin:
              expected sha256 2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849
              actual   sha256 4821d21264087b388766ec2b8dbfebf63b629301cd5d6f0985b02697c9c6dc82
            (pinned in matrix/versions.toml)
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
            3.11.2: fetched from mirror $TMP/mirror, sha256 verified, no .sigstore bundle available, sha256 pin checked; extracted in $TMP/work/src/3.11.2-$SHA12
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
                (pinned in matrix/versions.toml); the bytes were not kept
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

/// `fetch` of 3.13 only (its release manager's key is pinned), from `mirrors` in order.
fn fetch_3_13<'a>(mirrors: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["fetch", "--no-upstream", "--version", "3.13.5"];
    for mirror in mirrors {
        args.extend(["--mirror", mirror]);
    }
    args
}

/// The cached file of `case` whose name is `name`, as a full path.
fn cached(case: &Case, name: &str) -> camino::Utf8PathBuf {
    let files = case.cached_files();
    let rel = files
        .iter()
        .find(|f| f.ends_with(&format!("/{name}")))
        .unwrap_or_else(|| panic!("{name} is not in the cache: {files:?}"));
    case.work.join("cache").join(rel)
}

/// Removes every source tree from `src/`, as a user would to force a new extraction.
fn remove_sources(case: &Case) {
    for name in case.sources() {
        let path = case.work.join("src").join(&name);
        fs::remove_dir_all(&path).unwrap_or_else(|e| panic!("removing {path}: {e}"));
    }
}

/// A damaged cached archive of a signed release is re-hashed before its signature is
/// checked: it is removed, said so, and fetched again; the good `.asc` is never blamed nor
/// removed. When no mirror has good bytes, the run fails naming them, the bad archive is gone
/// and the `.asc` kept, and the next run with a good mirror succeeds.
#[test]
fn fetch_replaces_a_corrupted_cached_archive_of_a_signed_release() {
    let case = Case::new();
    let first = case.xtask(&fetch_3_13(&[case.shared.as_str()]));
    assert_eq!(first.code, Some(0), "{}", first.render());
    let archive = cached(&case, "Python-3.13.5.tar.xz");
    let asc = cached(&case, "Python-3.13.5.tar.xz.asc");
    let good_asc = fs::read(&asc).expect("reading the cached .asc");

    common::flip_middle_byte(&archive);
    remove_sources(&case);
    check(
        &case.xtask(&fetch_3_13(&[case.shared.as_str()])),
        expect![[r#"
            exit 0
            --- stdout
            3.13.5: fetched from mirror $SHARED, sha256 verified, good signature by Thomas Wouters <thomas@python.org> (7169605F62C751356D054A26A821E680E5FA6305), no .sigstore bundle available; extracted in $TMP/work/src/3.13.5-93e583f24345
            --- stderr
            3.13.5: the cached archive $TMP/work/cache/sha256/93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640/Python-3.13.5.tar.xz no longer matched its pin (sha256 66864c38972b96e96804c337c239405e320bfe2d08bf68dd226b26a9f15b8fc5 instead of the pinned one); removed it and fetching it again
        "#]],
    );
    assert!(common::is_executable(&case.work.join("src/3.13.5-93e583f24345/configure")));

    // Again, with only a mirror that has the same damaged bytes (and the good .asc).
    common::flip_middle_byte(&archive);
    remove_sources(&case);
    let mirror = case.dir("mirror");
    fs::copy(&archive, mirror.join("Python-3.13.5.tar.xz")).expect("copying the bad archive");
    fs::copy(case.shared.join("Python-3.13.5.tar.xz.asc"), mirror.join("Python-3.13.5.tar.xz.asc"))
        .expect("copying the .asc");
    check(
        &case.xtask(&fetch_3_13(&[mirror.as_str()])),
        expect![[r#"
        exit 1
        --- stderr
        3.13.5: the cached archive $TMP/work/cache/sha256/93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640/Python-3.13.5.tar.xz no longer matched its pin (sha256 66864c38972b96e96804c337c239405e320bfe2d08bf68dd226b26a9f15b8fc5 instead of the pinned one); removed it and fetching it again
        error: fetching CPython 3.13.5: could not fetch Python-3.13.5.tar.xz: no source delivered the pinned bytes
          - mirror $TMP/mirror: Python-3.13.5.tar.xz from mirror $TMP/mirror does not match its pin:
              expected sha256 93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
              actual   sha256 66864c38972b96e96804c337c239405e320bfe2d08bf68dd226b26a9f15b8fc5
            (pinned in matrix/versions.toml); the bytes were not kept
    "#]],
    );
    assert!(!archive.exists(), "the damaged archive must not stay in the cache");
    assert_eq!(fs::read(&asc).expect("the .asc is kept"), good_asc, "the good .asc is kept");
    assert_eq!(case.sources(), Vec::<String>::new(), "nothing extracted");

    check(
        &case.xtask(&fetch_3_13(&[case.shared.as_str()])),
        expect![[r#"
            exit 0
            --- stdout
            3.13.5: fetched from mirror $SHARED, sha256 verified, good signature by Thomas Wouters <thomas@python.org> (7169605F62C751356D054A26A821E680E5FA6305), no .sigstore bundle available; extracted in $TMP/work/src/3.13.5-93e583f24345
        "#]],
    );
}

/// `verify` says whether a corrupt archive was really removed: in a directory where it
/// cannot be, it says so and what to do, and the file is still there; once the directory is
/// writable again, the next `verify` removes it.
#[test]
fn verify_says_when_a_corrupt_archive_could_not_be_removed() {
    let mut case = Case::new();
    let fetch = case.xtask(&fetch_3_11(&[case.shared.as_str()]));
    assert_eq!(fetch.code, Some(0), "{}", fetch.render());
    let archive = cached(&case, "Python-3.11.2.tgz");
    common::flip_middle_byte(&archive);
    case.scrub("Permission denied (os error 13)", "$DENIED");
    case.scrub("Operation not permitted (os error 1)", "$DENIED");
    let dir = archive.parent().expect("the archive's directory");
    let guard = common::ReadOnlyDir::new(dir);
    check(
        &case.xtask(&["verify", "--version", "3.11"]),
        expect![[r#"
        exit 1
        --- stderr
        3.11.2: FAILED: cached archive of 3.11.2 is corrupt and could not be removed ($DENIED); delete it by hand (make its directory writable), then run `cargo xtask fetch`: $TMP/work/cache/sha256/2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849/Python-3.11.2.tgz does not match its pin:
          expected sha256 2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849
          actual   sha256 4821d21264087b388766ec2b8dbfebf63b629301cd5d6f0985b02697c9c6dc82
        (pinned in matrix/versions.toml)
        error: verification failed for 3.11.2
    "#]],
    );
    assert!(archive.exists(), "the removal failed, so the file is still there");
    drop(guard);
    let run = case.xtask(&["verify", "--version", "3.11"]);
    assert!(run.stderr.contains("is corrupt and was removed"), "{}", run.render());
    assert!(!archive.exists());
}

#[test]
fn fetch_refuses_an_archive_with_a_hard_link_to_a_symlink() {
    // `a/b/up -> ../..` stays inside the tree; the same link at the top would not.
    check_refused_archive(
        &[
            Entry::Dir("Python-3.11.2/"),
            Entry::File("Python-3.11.2/configure", b"#!/bin/sh\n"),
            Entry::Dir("Python-3.11.2/a/"),
            Entry::Dir("Python-3.11.2/a/b/"),
            Entry::Symlink("Python-3.11.2/a/b/up", "../.."),
            Entry::HardLink("Python-3.11.2/esc", "Python-3.11.2/a/b/up"),
            Entry::File("Python-3.11.2/esc/escaped", b"pwned\n"),
        ],
        &["esc", "escaped"],
        expect![[r#"
            exit 1
            --- stderr
            error: extracting $TMP/work/cache/sha256/$SHA/Python-3.11.2.tgz into $TMP/work/src/3.11.2-$SHA12: refusing to extract $TMP/work/cache/sha256/$SHA/Python-3.11.2.tgz: entry `Python-3.11.2/esc` is a hard link to `Python-3.11.2/a/b/up`, which is a symlink; its target was checked only where it was extracted; a cpython source archive never has such entries, download it again from python.org
        "#]],
    );
}

#[test]
fn fetch_refuses_an_archive_with_a_dangling_hard_link() {
    check_refused_archive(
        &[
            Entry::Dir("Python-3.11.2/"),
            Entry::File("Python-3.11.2/configure", b"#!/bin/sh\n"),
            Entry::HardLink("Python-3.11.2/x", "Python-3.11.2/missing.c"),
        ],
        &["x"],
        expect![[r#"
            exit 1
            --- stderr
            error: extracting $TMP/work/cache/sha256/$SHA/Python-3.11.2.tgz into $TMP/work/src/3.11.2-$SHA12: refusing to extract $TMP/work/cache/sha256/$SHA/Python-3.11.2.tgz: entry `Python-3.11.2/x` is a hard link to `Python-3.11.2/missing.c`, which is not a file extracted earlier from the archive; a cpython source archive never has such entries, download it again from python.org
        "#]],
    );
}

/// A mirror whose file never ends (a symlink to /dev/zero) is read up to the pinned size
/// plus one byte, then refused: the disk is not filled and nothing is kept.
#[test]
fn fetch_cuts_an_endless_mirror_file_at_the_pinned_size() {
    let case = Case::new();
    let mirror = case.dir("mirror");
    std::os::unix::fs::symlink("/dev/zero", mirror.join("Python-3.11.2.tgz")).expect("symlink");
    check(
        &case.xtask(&fetch_3_11(&[mirror.as_str()])),
        expect![[r#"
        exit 1
        --- stderr
        error: fetching CPython 3.11.2: could not fetch Python-3.11.2.tgz: no source delivered the pinned bytes
          - mirror $TMP/mirror: Python-3.11.2.tgz from mirror $TMP/mirror is larger than its pinned size of 26437858 bytes (pinned in matrix/versions.toml): reading stopped after 26437859 bytes and the bytes were not kept
    "#]],
    );
    assert_nothing_kept(&case);
}

/// A write that fails (here: a file size limit, as a full disk would) is reported as writing,
/// naming the temporary file and the fix, not as reading the mirror; no other source is tried
/// and nothing is kept.
#[test]
fn fetch_reports_a_failed_write_as_writing() {
    let case = Case::new();
    let run = case.xtask_with_file_size_limit(1024, &fetch_3_11(&[case.shared.as_str()]));
    let mut run = run;
    run.stderr = scrub_temp_names(&run.stderr);
    check(
        &run,
        expect![[r#"
        exit 1
        --- stderr
        error: fetching CPython 3.11.2: cannot write $TMP/work/cache/sha256/2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849/.download-* while fetching Python-3.11.2.tgz from mirror $SHARED; nothing was kept: check that the file system of the work directory has free space and is writable: File too large (os error 27)
    "#]],
    );
    assert_nothing_kept(&case);
}

/// Replaces the random part of `.download-XXXXXX` names with `*`.
fn scrub_temp_names(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(".download-") {
        let (head, tail) = rest.split_at(at + ".download-".len());
        out.push_str(head);
        out.push('*');
        rest = tail.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    }
    out.push_str(rest);
    out
}

/// A mirror file that cannot be read is named once with its OS error, and the next mirror
/// is tried.
#[test]
fn fetch_names_an_unreadable_mirror_file_once() {
    let case = Case::new();
    let mirror = case.dir("mirror");
    // A directory where the archive should be: unreadable even for root.
    fs::create_dir(mirror.join("Python-3.11.2.tgz")).expect("mkdir");
    check(
        &case.xtask(&fetch_3_11(&[mirror.as_str()])),
        expect![[r#"
        exit 1
        --- stderr
        error: fetching CPython 3.11.2: could not fetch Python-3.11.2.tgz: no source delivered the pinned bytes
          - mirror $TMP/mirror: reading $TMP/mirror/Python-3.11.2.tgz: Is a directory (os error 21)
    "#]],
    );
    assert_nothing_kept(&case);
}

/// The work directory's cache cannot be created (a file is in the way): the OS error is
/// printed once, with what to check.
#[test]
fn fetch_names_an_unwritable_cache_once() {
    let case = Case::new();
    fs::create_dir_all(&case.work).expect("mkdir work");
    fs::write(case.work.join("cache"), b"in the way").expect("a file where the cache goes");
    check(
        &case.xtask(&fetch_3_11(&[case.shared.as_str()])),
        expect![[r#"
        exit 1
        --- stderr
        error: fetching CPython 3.11.2: cannot write the cache $TMP/work/cache/sha256/2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849; check that the work directory is writable and its file system has free space: Not a directory (os error 20)
    "#]],
    );
}

/// A mirror that has the archive and a `.asc` too large to be a signature fails the fetch,
/// as a small `.asc` that is not a signature does: neither is ignored. The pinned archive is
/// kept (it was verified), no bad `.asc` is cached, nothing is extracted; a good mirror then
/// completes the run.
#[test]
fn fetch_refuses_an_oversized_or_garbage_signature_file_alike() {
    let case = Case::new();
    let mirror = case.dir("mirror");
    std::os::unix::fs::symlink(
        case.shared.join("Python-3.13.5.tar.xz"),
        mirror.join("Python-3.13.5.tar.xz"),
    )
    .expect("symlink");
    let asc = mirror.join("Python-3.13.5.tar.xz.asc");
    fs::write(&asc, vec![b'x'; 2 << 20]).expect("writing a 2 MiB .asc");
    check(
        &case.xtask(&fetch_3_13(&[mirror.as_str()])),
        expect![[r#"
            exit 1
            --- stderr
            error: fetching the signature of Python-3.13.5.tar.xz: $TMP/mirror/Python-3.13.5.tar.xz.asc: is larger than 1048576 bytes, so it is not a detached signature (those are a few hundred bytes); fix or remove it at the source, then run again
        "#]],
    );
    assert_eq!(case.sources(), Vec::<String>::new());
    fs::write(&asc, b"not a signature\n").expect("writing a small garbage .asc");
    check(
        &case.xtask(&fetch_3_13(&[mirror.as_str()])),
        expect![[r#"
        exit 1
        --- stderr
        error: checking the signature of Python-3.13.5.tar.xz (the archive matches its pin; $TMP/work/cache/sha256/93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640/Python-3.13.5.tar.xz.asc was removed from the cache; the next run fetches it again from the mirrors, so replace it there with the release's .asc from python.org): signature $TMP/work/cache/sha256/93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640/Python-3.13.5.tar.xz.asc does not verify $TMP/work/cache/sha256/93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640/Python-3.13.5.tar.xz: it is not an armored OpenPGP signature (not enough bytes in buffer: armor header); re-download the archive and its .asc
    "#]],
    );
    assert_eq!(case.sources(), Vec::<String>::new());
    let files = case.cached_files();
    assert!(files.len() == 1 && files[0].ends_with("/Python-3.13.5.tar.xz"), "{files:?}");
    let run = case.xtask(&fetch_3_13(&[case.shared.as_str()]));
    assert_eq!(run.code, Some(0), "{}", run.render());
}

/// Waits until `dir` holds an entry whose name starts with `prefix`, for up to a minute.
fn wait_for_entry(dir: &camino::Utf8Path, prefix: &str) -> bool {
    for _ in 0..6000 {
        let found = dir
            .read_dir_utf8()
            .is_ok_and(|entries| entries.flatten().any(|e| e.file_name().starts_with(prefix)));
        if found {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// A fetch killed (SIGKILL) while downloading leaves a `.download-*`; the next fetch removes
/// it, fetches whole, and keeps nothing else.
#[test]
fn a_download_killed_midway_is_cleaned_up_by_the_next_fetch() {
    let case = Case::new();
    let mirror = case.dir("mirror");
    let fifo = mirror.join("Python-3.11.2.tgz");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("running mkfifo");
    assert!(made.success(), "mkfifo {fifo}");
    let mut child = case.spawn_xtask(&fetch_3_11(&[mirror.as_str()]));
    // The fetch opens the fifo for reading; open it for writing and send the first bytes.
    let mut writer = fs::OpenOptions::new().write(true).open(&fifo).expect("opening the fifo");
    let head = fs::read(case.shared.join("Python-3.11.2.tgz")).expect("reading the archive");
    std::io::Write::write_all(&mut writer, &head[..1 << 16]).expect("writing into the fifo");
    let dir = case.work.join("cache/sha256").join(PIN_3_11_2_SHA256);
    assert!(wait_for_entry(&dir, ".download-"), "no .download-* appeared in {dir}");
    child.kill().expect("killing the fetch");
    child.wait().expect("reaping the fetch");
    drop(writer);
    assert!(
        case.cached_files().iter().any(|f| f.contains("/.download-")),
        "the killed fetch left its temporary: {:?}",
        case.cached_files()
    );
    let run = case.xtask(&fetch_3_11(&[case.shared.as_str()]));
    assert_eq!(run.code, Some(0), "{}", run.render());
    assert_eq!(case.cached_files(), [format!("sha256/{PIN_3_11_2_SHA256}/Python-3.11.2.tgz")]);
    assert_extracted_3_11_2(&case);
}

/// A fetch killed (SIGKILL) while extracting leaves a `.extracting-*` directory and no tree;
/// the next fetch removes it and extracts whole.
#[test]
fn an_extraction_killed_midway_is_cleaned_up_by_the_next_fetch() {
    let case = Case::new();
    let mut child = case.spawn_xtask(&fetch_3_11(&[case.shared.as_str()]));
    let src = case.work.join("src");
    assert!(wait_for_entry(&src, ".extracting-"), "no .extracting-* appeared in {src}");
    child.kill().expect("killing the fetch");
    child.wait().expect("reaping the fetch");
    let left = case.sources();
    assert!(
        left.len() == 1 && left[0].starts_with(".extracting-"),
        "the killed run should leave its temporary and no tree: {left:?}"
    );
    let run = case.xtask(&fetch_3_11(&[case.shared.as_str()]));
    assert_eq!(run.code, Some(0), "{}", run.render());
    assert_extracted_3_11_2(&case);
}

/// Ctrl-C (SIGINT) during a download ends `fetch` at once (exit 130, saying so), although
/// nothing in a download polls for it; the next fetch removes the temporary and completes.
#[test]
fn ctrl_c_during_a_download_ends_fetch_at_once() {
    let case = Case::new();
    let mirror = case.dir("mirror");
    let fifo = mirror.join("Python-3.11.2.tgz");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("running mkfifo");
    assert!(made.success(), "mkfifo {fifo}");
    let child = case.spawn_xtask(&fetch_3_11(&[mirror.as_str()]));
    let mut writer = fs::OpenOptions::new().write(true).open(&fifo).expect("opening the fifo");
    let head = fs::read(case.shared.join("Python-3.11.2.tgz")).expect("reading the archive");
    std::io::Write::write_all(&mut writer, &head[..1 << 16]).expect("writing into the fifo");
    let dir = case.work.join("cache/sha256").join(PIN_3_11_2_SHA256);
    assert!(wait_for_entry(&dir, ".download-"), "no .download-* appeared in {dir}");
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    // The writer stays open: the fetch would wait for more bytes forever if it ignored SIGINT.
    let started = std::time::Instant::now();
    let mut child = child;
    while child.try_wait().expect("polling the fetch").is_none() {
        if started.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            panic!("fetch ignored SIGINT for 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("the fetch ends");
    drop(writer);
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("interrupted: nothing is marked complete; rerun to resume"),
        "{stderr}"
    );
    let run = case.xtask(&fetch_3_11(&[case.shared.as_str()]));
    assert_eq!(run.code, Some(0), "{}", run.render());
    assert_eq!(case.cached_files(), [format!("sha256/{PIN_3_11_2_SHA256}/Python-3.11.2.tgz")]);
    assert_extracted_3_11_2(&case);
}

/// From 3.14 on python.org signs releases with Sigstore only. A crafted 3.14.0 archive under
/// its real pin, from a mirror: without a bundle it is refused (the archive stays cached, it
/// matched its pin, but nothing is extracted); with a real Sigstore bundle that signs another
/// file (`crates/verify`'s test data, signed on the public-good instance) it is refused
/// naming both digests and the bundle is not kept; with `trusted-by-pin` it is taken on its
/// pin, and `fetch` and `verify` say so.
#[test]
fn a_release_from_3_14_on_needs_a_good_sigstore_bundle_or_a_reason() {
    let archive = common::tgz(&[
        Entry::Dir("Python-3.14.0/"),
        Entry::File("Python-3.14.0/configure", b"#!/bin/sh\n"),
        Entry::Dir("Python-3.14.0/Include/"),
        Entry::File("Python-3.14.0/Include/Python.h", b"/* crafted */\n"),
    ]);
    let sha = common::sha256_hex(&archive);
    let mut case = Case::new();
    let mirror = case.dir("mirror");
    fs::write(mirror.join("Python-3.14.0.tgz"), &archive).expect("writing the crafted archive");
    let matrix = case.copy_matrix();
    let versions = matrix.join("versions.toml");
    let mut text = fs::read_to_string(&versions).expect("versions.toml");
    text.push_str(&format!(
        "\n[[version]]\nversion = \"3.14.0\"\nurl = \"https://www.python.org/ftp/python/3.14.0/Python-3.14.0.tgz\"\nsha256 = \"{sha}\"\nsize = {}\n",
        archive.len()
    ));
    fs::write(&versions, &text).expect("writing versions.toml");
    case.scrub(&sha, "$SHA");
    case.scrub(&sha[..12], "$SHA12");
    let fetch = ["fetch", "--no-upstream", "--version", "3.14.0", "--mirror", mirror.as_str()];
    let matrix_arg = ["--matrix-dir", matrix.as_str()];
    let fetch: Vec<&str> = fetch.iter().chain(&matrix_arg).copied().collect();
    check(
        &case.xtask(&fetch),
        expect![[r#"
        exit 1
        --- stderr
        error: 3.14.0: no source has Python-3.14.0.tgz.sigstore, and from 3.14 on python.org signs releases with Sigstore only, so nothing but the sha256 pin would vouch for the archive; put the release's .sigstore bundle from python.org beside the archive in the mirror, or say in matrix/versions.toml why the pin alone is trusted (trusted-by-pin = "...")
    "#]],
    );
    assert_eq!(case.sources(), Vec::<String>::new());

    let bundle = camino::Utf8Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/verify/tests/data/sigstore/cosign-v3-blob.sigstore.json");
    fs::copy(&bundle, mirror.join("Python-3.14.0.tgz.sigstore")).expect("copying a bundle");
    check(
        &case.xtask(&fetch),
        expect![[r#"
        exit 1
        --- stderr
        error: checking the Sigstore bundle of Python-3.14.0.tgz (the archive matches its pin; $TMP/work/cache/sha256/$SHA/Python-3.14.0.tgz.sigstore was removed from the cache; the next run fetches it again from the mirrors, so replace it there with the release's .sigstore from python.org): the Sigstore signer of 3.14 is pinned in matrix/versions.toml as hugo@python.org (https://github.com/login/oauth): sigstore bundle $TMP/work/cache/sha256/$SHA/Python-3.14.0.tgz.sigstore does not verify $TMP/work/cache/sha256/$SHA/Python-3.14.0.tgz: the bundle signs sha256 e194b99df6639501325c5f44da79fe3a8efae6f239bd79443a19787e06fb1764, but the file has sha256 $SHA: this is not the file that was signed
    "#]],
    );
    assert_eq!(case.sources(), Vec::<String>::new());
    let files = case.cached_files();
    assert!(files.len() == 1 && files[0].ends_with("/Python-3.14.0.tgz"), "{files:?}");
    fs::remove_file(mirror.join("Python-3.14.0.tgz.sigstore")).expect("removing the bundle");

    text.push_str("trusted-by-pin = \"crafted by this test\"\n");
    fs::write(&versions, &text).expect("writing versions.toml");
    check(
        &case.xtask(&fetch),
        expect![[r#"
        exit 0
        --- stdout
        3.14.0: archive cached, no .sigstore bundle available, trusted on its sha256 pin: crafted by this test; extracted in $TMP/work/src/3.14.0-$SHA12
    "#]],
    );
    let verify: Vec<&str> =
        ["verify", "--version", "3.14.0"].iter().chain(&matrix_arg).copied().collect();
    check(
        &case.xtask(&verify),
        expect![[r#"
        exit 0
        --- stdout
        3.14.0: $TMP/work/cache/sha256/$SHA/Python-3.14.0.tgz: size and sha256 match the pin, no .sigstore bundle available, trusted on its sha256 pin: crafted by this test
        verified 1 cached archive(s)
    "#]],
    );
}

/// Issue 18, silent defect 2: with `Lib/os.py` removed and `configure` replaced in the
/// extracted tree, `fetch` said "nothing to do" and `verify` passed. Now `verify` fails naming
/// the tree and what changed, and `fetch` removes the tree and extracts it again.
#[test]
fn a_source_tree_changed_since_extraction_is_extracted_again() {
    let case = Case::new();
    let fetch = fetch_3_11(&[case.shared.as_str()]);
    let first = case.xtask(&fetch);
    assert_eq!(first.code, Some(0), "{}", first.render());
    let tree = case.work.join("src/3.11.2-2411c74bda5b");
    let configure = fs::read(tree.join("configure")).expect("configure");
    fs::remove_file(tree.join("Lib/os.py")).expect("rm");
    fs::write(tree.join("configure"), "#!/bin/sh\necho planted\n").expect("write");
    check(
        &case.xtask(&["verify", "--version", "3.11"]),
        expect![[r#"
            exit 1
            --- stdout
            3.11.2: $TMP/work/cache/sha256/2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849/Python-3.11.2.tgz: size and sha256 match the pin, no .sigstore bundle available, sha256 pin checked
            --- stderr
            3.11.2: FAILED: $TMP/work/src/3.11.2-2411c74bda5b changed since it was extracted: removed Lib/os.py, changed configure; run `cargo xtask fetch` to extract it again
            error: verification failed for 3.11.2
        "#]],
    );
    check(
        &case.xtask(&fetch),
        expect![[r#"
            exit 0
            --- stdout
            3.11.2: archive cached, no .sigstore bundle available, sha256 pin checked; extracted in $TMP/work/src/3.11.2-2411c74bda5b
            --- stderr
            3.11.2: $TMP/work/src/3.11.2-2411c74bda5b changed since it was extracted: removed Lib/os.py, changed configure; removed it and extracting it again
        "#]],
    );
    assert_eq!(fs::read(tree.join("configure")).expect("configure"), configure);
    assert!(tree.join("Lib/os.py").is_file());
    // A tree without its record (extracted by an older version) is not trusted either.
    fs::remove_file(tree.join(".debug-matrix-files")).expect("rm");
    let again = case.xtask(&fetch);
    assert!(
        again.stderr.contains("has no record of its extraction (.debug-matrix-files); removed it and extracting it again"),
        "{}",
        again.render()
    );
    assert!(tree.join(".debug-matrix-files").is_file());
}

/// Issue 18: with its source tree extracted, a damaged cached archive was "archive cached".
/// Every fetch re-hashes a cached archive: the damaged one is removed, said so, and fetched
/// again; "archive cached" is said only of bytes that match their pin.
#[test]
fn fetch_never_calls_a_damaged_cached_archive_cached() {
    let case = Case::new();
    let fetch = fetch_3_11(&[case.shared.as_str()]);
    let first = case.xtask(&fetch);
    assert_eq!(first.code, Some(0), "{}", first.render());
    common::flip_middle_byte(&cached(&case, "Python-3.11.2.tgz"));
    let run = case.xtask(&fetch);
    check(
        &run,
        expect![[r#"
            exit 0
            --- stdout
            3.11.2: fetched from mirror $SHARED, sha256 verified, no .sigstore bundle available, sha256 pin checked; already extracted in $TMP/work/src/3.11.2-2411c74bda5b
            --- stderr
            3.11.2: the cached archive $TMP/work/cache/sha256/2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849/Python-3.11.2.tgz no longer matched its pin (sha256 4821d21264087b388766ec2b8dbfebf63b629301cd5d6f0985b02697c9c6dc82 instead of the pinned one); removed it and fetching it again
        "#]],
    );
}

/// A project directory at `$TMP/NAME` with `files` (path, contents).
fn project(case: &Case, name: &str, files: &[(&str, &str)]) -> camino::Utf8PathBuf {
    let dir = case.dir(name);
    for (path, text) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs::write(&path, text).expect("write");
    }
    dir
}

/// Issue 19: an extension's own `[tool.debug-matrix]` is read by `test --ext`: an unknown key
/// or a wrong type is an error naming the file, the line and the key, before anything is
/// fetched or built.
#[test]
fn a_projects_own_table_is_checked_naming_file_line_and_key() {
    let case = Case::new();
    let table = |body: &str| {
        format!("[project]\nname = \"mine\"\nversion = \"1\"\n\n[tool.debug-matrix]\n{body}")
    };
    project(&case, "a", &[("pyproject.toml", &table("timeout = 30\n"))]);
    project(
        &case,
        "b",
        &[("pyproject.toml", &table("tests = \"qa\"\ntest-deps = \"hypothesis\"\n"))],
    );
    project(
        &case,
        "c",
        &[("setup.py", ""), ("debug-matrix.toml", "name = \"c\"\ncells = [\"3.13+nope\"]\n")],
    );
    let mut out = String::new();
    for dir in ["a", "b", "c"] {
        out.push_str(&case.xtask(&["test", "--ext", dir]).render());
    }
    expect![[r#"
        exit 1
        --- stderr
        error: $TMP/a/pyproject.toml:6:1: unknown key `timeout` in [tool.debug-matrix]: it takes `name`, `cells`, `set`, `expected`, `tests`, `test-deps`, `build-env`, `pytest-args`, `test-command`, `valgrind-select`, `timeout-seconds`, `twin-env`, `constraints`
             6 | timeout = 30
               | ^
        exit 1
        --- stderr
        error: $TMP/b/pyproject.toml:7:13: `test-deps`: invalid type: string "hypothesis", expected a sequence
             7 | test-deps = "hypothesis"
               |             ^
        exit 1
        --- stderr
        error: the default cells of $TMP/c/debug-matrix.toml: unknown variant `nope`: the matrix has release, debug, ref-debug, trace-refs, valgrind, pymalloc-debug, asan, freethreaded, freethreaded-debug, tsan, ubsan (see matrix/variants.toml)
    "#]].assert_eq(&out);
}

/// Issue 19: a suite of `matrix/extensions.toml` whose project has its own table: the matrix
/// wins field by field and says so; the project's expected entries join the matrix's; and
/// `[[expected]]` cells are parsed by the one pattern grammar (a bad one names its line).
#[test]
fn the_matrix_wins_field_by_field_over_a_projects_table_and_says_so() {
    let case = Case::new();
    let own = project(
        &case,
        "own",
        &[(
            "pyproject.toml",
            "[project]\nname = \"own-project\"\n\n[tool.debug-matrix]\ntests = \"qa\"\n\
             timeout-seconds = 60\npytest-args = [\"-x\"]\n",
        )],
    );
    let matrix = case.copy_matrix();
    let extensions = matrix.join("extensions.toml");
    let text = fs::read_to_string(&extensions).expect("read");
    fs::write(
        &extensions,
        format!("{text}\n[[suite]]\nname = \"own\"\npath = \"{own}\"\ntimeout-seconds = 300\npytest-args = [\"-x\"]\n"),
    )
    .expect("write");
    // Stops at the fetch (no mirror, no upstream): the plan, with its notes, came first.
    let run = case.xtask(&[
        "--matrix-dir",
        matrix.as_str(),
        "--no-upstream",
        "test",
        "3.13.5+debug",
        "--suite",
        "own",
    ]);
    check(
        &run,
        expect![[r#"
        exit 1
        --- stderr
        suite `own`: `timeout-seconds` = 300 from $TMP/matrix/extensions.toml overrides 60 from $TMP/own/pyproject.toml [tool.debug-matrix]
        error: fetching CPython 3.13.5: could not fetch Python-3.13.5.tar.xz: no source delivered the pinned bytes
          no source to try: pass --mirror DIR (or set DEBUG_MATRIX_MIRROR), or allow upstream
    "#]],
    );
    let bad = case.copy_matrix();
    fs::write(
        bad.join("extensions.toml"),
        "[[suite]]\nname = \"m\"\npath = \"x\"\n\n[[expected]]\nsuite = \"m\"\ntest = \"t\"\n\
         kind = \"crash\"\ncells = [\"3.x+valgrind\"]\nreason = \"r\"\n",
    )
    .expect("write");
    check(
        &case.xtask(&["--matrix-dir", bad.as_str(), "test", "3.13.5+debug", "--suite", "refbugs"]),
        expect![[r#"
            exit 1
            --- stderr
            error: $TMP/matrix/extensions.toml:9:9: `cells`: `3.x+valgrind` is not a cell pattern (`3.x` is not a version such as 3.13 or 3.13.5): write VERSION+VARIANT (3.13+debug, 3.13.5+debug), a variant (debug) or a version (3.13)
                 9 | cells = ["3.x+valgrind"]
                   |         ^
        "#]],
    );
}

/// Issue 19: `cargo xtask init DIR` looks at the project (its name, its tests' directory, its
/// test dependency group) and appends a starter table, keeping the file byte for byte before
/// it; writes the caller workflow at the repository's root; the table reads back (its
/// default cells are what `test --ext` then runs on); a second run refuses to replace them.
#[test]
fn init_writes_a_starter_table_and_a_caller_and_refuses_to_overwrite() {
    let case = Case::new();
    let original = "[build-system]\nrequires = [\"setuptools\"]\n\n[project]\nname = \"Sample_Ext\"\n\
                    version = \"1\"\n\n[dependency-groups]\ntest = [\"pytest\", \"hypothesis>=6\"]\n\
                    \n[tool.ruff]\nline-length = 99 # kept as written";
    case.dir("repo/.git");
    let ext = project(
        &case,
        "repo/sample",
        &[("pyproject.toml", original), ("src/sample/tests/test_x.py", ""), ("setup.py", "")],
    );
    check(
        &case.xtask(&[
            "init",
            ext.as_str(),
            "--tool-repository",
            "me/debug-matrix",
            "--tool-ref",
            "0123abc",
        ]),
        expect![[r#"
            exit 0
            --- stdout
            wrote $TMP/repo/sample/pyproject.toml:

                [tool.debug-matrix]
                # debug-matrix: this project's tests on CPython's debug builds (`cargo xtask test --ext DIR`,
                # or its reusable workflow). Written by `cargo xtask init`; every key is in debug-matrix's
                # docs/configuration.md.
                # The suite is `sample-ext`, after [project].name.
                tests = "src/sample/tests"  # found
                # The dependency group `test` (PEP 735), which pip does not install:
                test-deps = ["pytest", "hypothesis>=6"]
                # The cells `cargo xtask test --ext DIR` runs on when none are named (patterns such as
                # "3.13+debug", "valgrind"), or a set of debug-matrix's matrix/cells.toml: set = "ci".
                cells = ["3.13+debug"]
                # timeout-seconds = 120  # per test

                # A finding you know of, accepted on the cells named; strict: once it no longer appears,
                # the run fails (`expected-missing`) until the entry is removed.
                # [[tool.debug-matrix.expected]]
                # test = "test_name"
                # kind = "ref-leak"
                # cells = ["debug"]
                # reason = "why it is accepted"

            wrote $TMP/repo/.github/workflows/debug-matrix.yml:

                # Runs this project's tests on CPython's debug builds with debug-matrix's detectors (leaks,
                # valgrind, sanitizers), on the cells [tool.debug-matrix] (or debug-matrix.toml) names with
                # `cells` or `set`, as `cargo xtask test --ext` does; it also says what is tested and which
                # findings are expected. Written by `cargo xtask init`. debug-matrix
                # runs at the commit of the `uses:` line: change that line to move to another.
                name: debug-matrix
                on: [push, pull_request]
                permissions: {}
                jobs:
                  debug-matrix:
                    permissions:
                      contents: read
                    uses: me/debug-matrix/.github/workflows/extension.yml@0123abc
                    with:
                      path: sample

            try it: cargo xtask test --ext $TMP/repo/sample (the cells it names); the workflow's `conclusion` job is the check to require
        "#]],
    );
    let written = fs::read_to_string(ext.join("pyproject.toml")).expect("read");
    assert!(written.starts_with(original), "the file is kept byte for byte before the table");
    let workflow = case.root.join("repo/.github/workflows/debug-matrix.yml");
    assert!(fs::read_to_string(&workflow).expect("the workflow").contains("path: sample"));
    // The table reads back: its default cells are what `test --ext` runs on, and `list --ext`
    // (the reusable workflow's cell list) lists them.
    check(
        &case.xtask(&["list", "--ext", ext.as_str()]),
        expect![[r#"
        exit 0
        --- stdout
        cell           rebuild  build
        3.13.5+debug   no       --with-pydebug
        3.13.15+debug  no       --with-pydebug
        --- stderr
        cells 3.13.5+debug, 3.13.15+debug (the default of $TMP/repo/sample/pyproject.toml [tool.debug-matrix])
    "#]],
    );
    // The workflow's default: only the cells the project names, an error when it names none.
    let listed = case.xtask(&["list", "--ext", ext.as_str(), "--project-cells"]);
    assert_eq!(listed.code, Some(0), "{}", listed.render());
    assert!(listed.stdout.contains("3.13.15+debug"), "{}", listed.render());
    let bare = case.root.join("repo/bare");
    fs::create_dir_all(&bare).expect("mkdir");
    fs::write(
        bare.join("pyproject.toml"),
        "[project]\nname = \"bare\"\nversion = \"1\"\n\n[tool.debug-matrix]\ntests = [\"tests\"]\n",
    )
    .expect("write");
    check(
        &case.xtask(&["list", "--json", "--ext", bare.as_str(), "--project-cells"]),
        expect![[r#"
            exit 1
            --- stderr
            error: $TMP/repo/bare: [tool.debug-matrix] names no default cells: add `cells = ["3.13+debug"]` (patterns) or `set = "ci"` to it, or name a set (the workflow's `set` input, `--set`)
        "#]],
    );
    check(
        &case.xtask(&["init", ext.as_str()]),
        expect![[r#"
        exit 1
        --- stderr
        error: $TMP/repo/sample/pyproject.toml already has [tool.debug-matrix], $TMP/repo/.github/workflows/debug-matrix.yml exists: nothing written; `--force` replaces them
    "#]],
    );
    assert!(fs::read_to_string(ext.join("pyproject.toml")).expect("read") == written, "unchanged");
}

/// Issue 19: every command that records results renders report.md, junit.xml and
/// report.html beside report.json, prints the HTML's path and ends with the version ×
/// variant grid and what is new (here a build whose interpreter fails its promise check: a
/// fake `Makefile` installs a shell script, so no CPython is built). Plain text, since the
/// output is not a terminal (and `NO_COLOR` is set).
#[test]
fn a_command_that_records_results_renders_them_and_prints_the_html_path() {
    let case = Case::new();
    let shared = case.shared.to_string();
    let fetched = case.xtask(&["fetch", "--no-upstream", "--mirror", &shared, "3.11.2+debug"]);
    assert_eq!(fetched.code, Some(0), "{}", fetched.render());
    let list = case.xtask(&["list", "--json", "3.11.2+debug"]);
    let cells: serde_json::Value = serde_json::from_str(&list.stdout).expect("stdout is JSON");
    let key = cells["include"][0]["key"].as_str().expect("a key").to_owned();
    let root = case.work.join("builds").join(&key[..16]);
    fs::create_dir_all(root.join("build")).expect("mkdir");
    fs::write(root.join("configure.done"), &key).expect("write");
    let prefix = root.join("prefix");
    fs::write(
        root.join("build/Makefile"),
        format!(
            "all:\n\ttrue\ninstall:\n\tmkdir -p {prefix}/bin\n\t\
             printf '#!/bin/sh\\nexit 3\\n' > {prefix}/bin/python3.11\n\t\
             chmod +x {prefix}/bin/python3.11\n\tln -sf python3.11 {prefix}/bin/python3\n"
        ),
    )
    .expect("write");
    let report = case.work.join("report");
    assert!(!report.join("report.html").exists());
    let run = case.xtask(&["build", "--no-upstream", "--mirror", &shared, "3.11.2+debug"]);
    assert_eq!(run.code, Some(1), "{}", run.render());
    for name in ["report.json", "report.md", "junit.xml", "report.html"] {
        assert!(report.join(name).is_file(), "{name} is missing: {}", run.render());
    }
    let html = fs::read_to_string(report.join("report.html")).expect("read");
    assert!(html.contains("<details id=\"3-11-2-debug\" open>"), "{html}");
    let tail = run.stdout.split("\nreport: ").nth(1).expect("the HTML's path is printed");
    let tail = tail.replace(&key[..16], "$KEY");
    expect![[r#"
        $TMP/work/report/report.html
        version  debug
        3.11.2   broken-promise

        new findings and failed phases (1):
          3.11.2+debug check: check error: $TMP/work/builds/$KEY/prefix/bin/python3 failed while probing (exit status: 3); its stderr ends with:
            repro: cargo xtask build 3.11.2+debug
    "#]]
    .assert_eq(&tail);
    assert!(!run.stdout.contains('\u{1b}'), "no colour when stdout is not a terminal");
}

/// The crafted 3.11.2 release of the `build --check` test: `configure` writes a Makefile
/// whose install writes `lib/buildinfo.txt`, with the time in it when `DM_STAMP` is set (a
/// deliberately non-reproducible build), and a shell script as the interpreter.
const STAMPING_CONFIGURE: &[u8] = b"#!/bin/sh\n\
for a; do case $a in --prefix=*) prefix=${a#--prefix=};; esac; done\n\
cat > Makefile <<EOF\n\
all:\n\
\ttrue\n\
install:\n\
\tinstall -d -m 755 $prefix/bin $prefix/lib\n\
\tprintf '#!/bin/sh\\\\necho fake\\\\n' > $prefix/bin/python3.11 && chmod 755 $prefix/bin/python3.11\n\
\tln -sf python3.11 $prefix/bin/python3\n\
\tif [ -n \"\\$\\$DM_STAMP\" ]; then echo \"built at \\$\\$(date +%s%N)\"; else echo built; fi > $prefix/lib/buildinfo.txt\n\
\tchmod 644 $prefix/lib/buildinfo.txt\n\
EOF\n";

/// Issue 21: `build --check` rebuilds an already built cell from scratch under varied
/// conditions and compares the installed trees: the same build is "reproducible: N files
/// identical" (exit 0); a build that writes the time into an installed file exits 1 naming
/// that file and its differing line, restores the first build, keeps the rebuild to look at,
/// and records both in report.json.
#[test]
fn build_check_proves_a_build_reproducible_and_names_a_file_a_timestamp_changed() {
    let mut case = Case::new();
    let archive = common::tgz(&[
        Entry::Dir("Python-3.11.2/"),
        Entry::File("Python-3.11.2/configure", STAMPING_CONFIGURE),
    ]);
    let sha = common::sha256_hex(&archive);
    let fetched = fetch_crafted(&mut case, &archive, &sha);
    assert_eq!(fetched.code, Some(0), "{}", fetched.render());
    let mirror = case.root.join("mirror");
    let matrix = case.root.join("matrix");
    let args = |more: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = ["build", "--no-upstream", "--mirror", mirror.as_str()]
            .iter()
            .chain(["--matrix-dir", matrix.as_str()].iter())
            .map(|s| (*s).to_owned())
            .collect();
        v.extend(more.iter().map(|s| (*s).to_owned()));
        v.push("3.11.2+debug".to_owned());
        v
    };
    let run = |case: &Case, more: &[&'static str]| {
        let a = args(more);
        case.xtask(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let not_yet = run(&case, &["--check"]);
    assert_eq!(not_yet.code, Some(1), "{}", not_yet.render());
    assert!(not_yet.stderr.contains("not built yet: 3.11.2+debug"), "{}", not_yet.render());

    // The fake interpreter breaks the promise; the build itself is complete.
    let built = run(&case, &[]);
    assert!(built.stdout.contains("built in"), "{}", built.render());

    let same = run(&case, &["--check"]);
    assert_eq!(same.code, Some(0), "{}", same.render());
    assert!(
        same.stdout.contains("3.11.2+debug: reproducible: 3 files identical"),
        "{}",
        same.render()
    );
    assert!(same.stdout.contains("umask 0002"), "{}", same.render());

    case.env("DM_STAMP", "1");
    let stamped = run(&case, &["--check"]);
    assert_eq!(stamped.code, Some(1), "{}", stamped.render());
    assert!(
        stamped.stdout.contains("3.11.2+debug: NOT reproducible: 1 of 3 files differ"),
        "{}",
        stamped.render()
    );
    assert!(
        stamped.stdout.contains("  lib/buildinfo.txt: text, line 1: `built`, then `built at "),
        "{}",
        stamped.render()
    );
    assert!(
        stamped.stderr.contains("not proven reproducible: 3.11.2+debug"),
        "{}",
        stamped.render()
    );

    let build_root = fs::read_dir(case.work.join("builds"))
        .expect("builds/")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("manifest.json").is_file())
        .expect("the build");
    let first = fs::read_to_string(build_root.join("prefix/lib/buildinfo.txt")).expect("restored");
    assert_eq!(first, "built\n", "the first build is restored");
    let kept = fs::read_to_string(build_root.join("check/rebuild-prefix/lib/buildinfo.txt"))
        .expect("the differing rebuild is kept");
    assert!(kept.starts_with("built at "), "{kept}");

    let report: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(case.work.join("report/report.json")).expect("report.json"),
    )
    .expect("JSON");
    let cell = &report["cells"][0];
    assert_eq!(cell["phases"]["reproducible"]["status"], "failed", "{cell}");
    assert_eq!(cell["reproducibility"]["identical"], 2, "{cell}");
    assert_eq!(cell["reproducibility"]["differing"][0]["path"], "lib/buildinfo.txt", "{cell}");
}

/// Issue 21: what configure would find is part of the build key. A library's header that
/// appears on the compiler's include path (here through `CPATH`, which configure's compiler
/// honours as `cc -E -v` does) makes another key, so a build made without it is never
/// reused silently; hidden again, the key is the first one again.
#[test]
fn a_library_header_on_the_include_path_changes_the_build_key() {
    let key = |case: &Case| {
        let run = case.xtask(&["list", "--json", "3.11.2+debug"]);
        assert_eq!(run.code, Some(0), "{}", run.render());
        let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is JSON");
        doc["include"][0]["key"].as_str().expect("a key").to_owned()
    };
    let mut case = Case::new();
    let without = key(&case);
    let include = case.dir("gdbm-include");
    fs::write(include.join("gdbm.h"), "/* a library configure would find */\n").expect("write");
    case.env("CPATH", include.as_str());
    let with = key(&case);
    assert_ne!(with, without, "one key for two machines that build different interpreters");
    case.env("CPATH", "");
    assert_eq!(key(&case), without, "hidden again: the first key");
}
