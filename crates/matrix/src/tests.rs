use camino::Utf8Path;
use expect_test::{Expect, expect};

use crate::{Matrix, Pattern, Selection};

fn real_matrix() -> Matrix {
    let dir = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix");
    match Matrix::load(&dir) {
        Ok(m) => m,
        Err(e) => panic!("the repository's matrix must load: {e}"),
    }
}

fn check_cells(selection: Selection, expect: Expect) {
    let matrix = real_matrix();
    let actual = match matrix.cells(&selection) {
        Ok(cells) => cells.iter().map(|c| c.name()).collect::<Vec<_>>().join("\n"),
        Err(e) => format!("error: {e}"),
    };
    expect.assert_eq(&actual);
}

fn sel(versions: &[&str], variants: &[&str]) -> Selection {
    Selection {
        versions: versions.iter().map(|s| s.to_string()).collect(),
        variants: variants.iter().map(|s| s.to_string()).collect(),
        ..Selection::default()
    }
}

#[test]
fn default_cells() {
    check_cells(
        Selection::default(),
        expect![[r#"
            3.11.2+release
            3.11.2+debug
            3.11.2+ref-debug
            3.11.2+trace-refs
            3.11.2+valgrind
            3.11.2+pymalloc-debug
            3.11.2+asan
            3.11.2+ubsan
            3.13.5+release
            3.13.5+debug
            3.13.5+ref-debug
            3.13.5+trace-refs
            3.13.5+valgrind
            3.13.5+pymalloc-debug
            3.13.5+asan
            3.13.5+freethreaded
            3.13.5+freethreaded-debug
            3.13.5+tsan
            3.13.5+ubsan
            3.13.15+release
            3.13.15+debug
            3.13.15+ref-debug
            3.13.15+trace-refs
            3.13.15+valgrind
            3.13.15+pymalloc-debug
            3.13.15+asan
            3.13.15+freethreaded
            3.13.15+freethreaded-debug
            3.13.15+tsan
            3.13.15+ubsan"#]],
    );
}

#[test]
fn selections() {
    check_cells(
        sel(&["3.13"], &["debug"]),
        expect![[r#"
        3.13.5+debug
        3.13.15+debug"#]],
    );
    check_cells(
        sel(&[], &["freethreaded"]),
        expect![[r#"
        3.13.5+freethreaded
        3.13.15+freethreaded"#]],
    );
    check_cells(
        Selection { set: Some("ci".into()), ..Selection::default() },
        expect![[r#"
            3.11.2+debug
            3.13.5+release
            3.13.5+debug
            3.13.5+ref-debug
            3.13.5+trace-refs
            3.13.5+valgrind"#]],
    );
    check_cells(
        Selection { cells: vec!["3.11.2+asan".into()], ..Selection::default() },
        expect!["3.11.2+asan"],
    );
}

#[test]
fn selection_errors() {
    check_cells(
        sel(&["3.12"], &[]),
        expect![
            "error: unknown version `3.12`: the matrix has 3.11.2, 3.13.5, 3.13.15, 3.14.10, 3.15.2 (see matrix/versions.toml)"
        ],
    );
    check_cells(
        sel(&[], &["debugg"]),
        expect![
            "error: unknown variant `debugg`: the matrix has release, debug, ref-debug, trace-refs, valgrind, pymalloc-debug, asan, freethreaded, freethreaded-debug, tsan, ubsan (see matrix/variants.toml)"
        ],
    );
    check_cells(
        sel(&["3.11"], &["freethreaded"]),
        expect![
            "error: variant `freethreaded` is not valid for 3.11.2: it is valid for 3.13+ (see matrix/variants.toml)"
        ],
    );
    check_cells(
        Selection { cells: vec!["3.11.2+freethreaded-debug".into()], ..Selection::default() },
        expect![
            "error: variant `freethreaded-debug` is not valid for 3.11.2: it is valid for 3.13+ (see matrix/variants.toml)"
        ],
    );
    check_cells(
        Selection { cells: vec!["3.13.5-debug".into()], ..Selection::default() },
        expect![
            "error: `3.13.5-debug` is not a cell name: expected VERSION+VARIANT, e.g. 3.13.5+debug (see `cargo xtask list`)"
        ],
    );
    check_cells(
        Selection { set: Some("nightly".into()), ..Selection::default() },
        expect![
            "error: unknown cell set `nightly`: matrix/cells.toml defines ci, corpus, sanitizers, shapes"
        ],
    );
}

#[test]
fn abi_rebuild_depends_on_version() {
    let m = real_matrix();
    let facts: Vec<String> = m
        .versions
        .iter()
        .flat_map(|r| {
            m.variants.iter().filter(|v| v.is_valid_for(r.version)).map(move |v| {
                format!(
                    "{}+{}: rebuild={}",
                    r.version,
                    v.name,
                    v.needs_extension_rebuild(r.version)
                )
            })
        })
        .filter(|s| s.contains("trace-refs") || s.contains("+debug"))
        .collect();
    expect![[r#"
        3.11.2+debug: rebuild=false
        3.11.2+trace-refs: rebuild=true
        3.13.5+debug: rebuild=false
        3.13.5+trace-refs: rebuild=false
        3.13.15+debug: rebuild=false
        3.13.15+trace-refs: rebuild=false
        3.14.10+debug: rebuild=false
        3.14.10+trace-refs: rebuild=false
        3.15.2+debug: rebuild=false
        3.15.2+trace-refs: rebuild=false"#]]
    .assert_eq(&facts.join("\n"));
}

const VERSIONS: &str = r#"
[[version]]
version = "3.13.5"
url = "https://www.python.org/ftp/python/3.13.5/Python-3.13.5.tar.xz"
sha256 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
size = 22856016
"#;

const VARIANTS: &str = r#"
[[variant]]
name = "debug"
purpose = "p"
configure = ["--with-pydebug"]
rebuild-extensions = false
"#;

fn check_load(versions: &str, variants: &str, cells: &str, expect: Expect) {
    let actual = match Matrix::from_strs(versions, variants, cells) {
        Ok(m) => format!("ok: {} versions, {} variants", m.versions.len(), m.variants.len()),
        Err(e) => format!("error: {e}"),
    };
    expect.assert_eq(&actual);
}

#[test]
fn load_errors_name_file_line_and_column() {
    check_load(VERSIONS, VARIANTS, "", expect!["ok: 1 versions, 1 variants"]);
    check_load(
        VERSIONS,
        &VARIANTS.replace("rebuild-extensions", "make-vars = [\"DESTDIR=/x\"]\nrebuild-extensions"),
        "",
        expect![[r#"
            error: matrix/variants.toml:3:8: variant `debug`: make-vars must not set DESTDIR: use extra-cflags (EXTRA_CFLAGS) or leave the install location to the tool
                 3 | name = "debug"
                   |        ^"#]],
    );
    check_load(
        VERSIONS,
        &VARIANTS.replace("rebuild-extensions", "make-vars = [\"prefix=/x\"]\nrebuild-extensions"),
        "",
        expect![[r#"
            error: matrix/variants.toml:3:8: variant `debug`: make-vars must not set prefix: use extra-cflags (EXTRA_CFLAGS) or leave the install location to the tool
                 3 | name = "debug"
                   |        ^"#]],
    );
    check_load(
        VERSIONS,
        &VARIANTS.replace("--with-pydebug", "--with-thread-sanitizer"),
        "",
        expect![[r#"
            error: matrix/variants.toml:3:8: variant `debug`: --with-thread-sanitizer must be proven in the interpreter; add "thread" to the promise's sanitizers
                 3 | name = "debug"
                   |        ^"#]],
    );
    check_load(
        VERSIONS,
        &VARIANTS.replace("--with-pydebug", "--with-valgrind"),
        "",
        expect![[r#"
            error: matrix/variants.toml:3:8: variant `debug`: --with-valgrind and the promise's config-vars WITH_VALGRIND = 1 go together (the tests' detectors follow the promise); add WITH_VALGRIND = 1
                 3 | name = "debug"
                   |        ^"#]],
    );
    check_load(
        VERSIONS,
        &VARIANTS.replace(
            "rebuild-extensions = false",
            "rebuild-extensions = false\n[variant.promise]\nconfig-vars = { Py_GIL_DISABLED = 1 }",
        ),
        "",
        expect![[r#"
            error: matrix/variants.toml:3:8: variant `debug`: --disable-gil and the promise's config-vars Py_GIL_DISABLED = 1 go together (the tests' detectors follow the promise); add --disable-gil or drop Py_GIL_DISABLED
                 3 | name = "debug"
                   |        ^"#]],
    );
    check_load(
        "[[version]]\nversion = \"3.13.5\nurl = 1\n",
        VARIANTS,
        "",
        expect![[r#"
            error: matrix/versions.toml:2:18: invalid basic string, expected `"`
                 2 | version = "3.13.5
                   |                  ^"#]],
    );
    check_load(
        &VERSIONS.replace("3.13.5\"", "3.13.x\""),
        VARIANTS,
        "",
        expect![[r#"
            error: matrix/versions.toml:3:11: `3.13.x` is not a CPython version: expected MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 3.13 or 3.13.5
                 3 | version = "3.13.x"
                   |           ^"#]],
    );
    check_load(
        &VERSIONS.replace("93e583", "93E583"),
        VARIANTS,
        "",
        expect![[r#"
            error: matrix/versions.toml:5:10: sha256 must be 64 lowercase hex digits
                 5 | sha256 = "93E583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
                   |          ^"#]],
    );
    check_load(
        VERSIONS,
        &VARIANTS.replace("purpose", "porpose"),
        "",
        expect![[r#"
            error: matrix/variants.toml:4:1: unknown field `porpose`, expected one of `name`, `purpose`, `configure`, `cflags`, `extra-cflags`, `make-vars`, `runtime-env`, `since`, `until`, `rebuild-extensions`, `abi-compatible-since`, `leak-signals`, `promise`
                 4 | porpose = "p"
                   | ^"#]],
    );
    check_load(
        VERSIONS,
        &VARIANTS.replace("[\"--with-pydebug\"]", "[\"--disable-gil\", \"--with-trace-refs\"]"),
        "",
        expect![[r#"
            error: matrix/variants.toml:3:8: variant `debug`: configure rejects --disable-gil with --with-trace-refs
                 3 | name = "debug"
                   |        ^"#]],
    );
    check_load(
        VERSIONS,
        &VARIANTS.replace("configure", "extra-cflags = [\"-DPYMALLOC_DEBUG\"]\nconfigure"),
        "",
        expect![[r#"
            error: matrix/variants.toml:3:8: variant `debug`: PYMALLOC_DEBUG is not a build macro since 3.10; use runtime-env = { PYTHONMALLOC = "pymalloc_debug" } instead, or until = "3.10"
                 3 | name = "debug"
                   |        ^"#]],
    );
    check_load(
        VERSIONS,
        &VARIANTS.replace("[\"--with-pydebug\"]", "[\"--with-pydebug\", \"--prefix=/usr\"]"),
        "",
        expect![[r#"
            error: matrix/variants.toml:3:8: variant `debug`: configure argument `--prefix=/usr` is the tool's own (it sets --prefix per build and the configure cache itself); remove it
                 3 | name = "debug"
                   |        ^"#]],
    );
    check_load(
        &VERSIONS.replace("Python-3.13.5.tar.xz", ""),
        VARIANTS,
        "",
        expect![[r#"
            error: matrix/versions.toml:2:1: url `https://www.python.org/ftp/python/3.13.5/` must end in the archive's file name (Python-X.Y.Z.tar.xz or .tgz): mirrors and the cache are looked up by it
                 2 | [[version]]
                   | ^"#]],
    );
    check_load(
        VERSIONS,
        VARIANTS,
        "[default]\nexclude = [{ variant = \"asan\" }]\n",
        expect![[r#"
            error: matrix/cells.toml:2:12: unknown variant `asan`: the matrix has debug (see matrix/variants.toml)
                 2 | exclude = [{ variant = "asan" }]
                   |            ^"#]],
    );
}

const V314: &str = r#"
[[version]]
version = "3.14.2"
url = "https://www.python.org/ftp/python/3.14.2/Python-3.14.2.tar.xz"
sha256 = "ce543ab854bc256b61b71e9b27f831ffd1bfd60a479d639f8be7f9757cf573e9"
size = 23566248
"#;

const SIGNER_314: &str = r#"
[[sigstore]]
line = "3.14"
email = "hugo@python.org"
issuer = "https://github.com/login/oauth"
"#;

/// The Sigstore signers per release line, and what 3.14 and later need: a signer for the
/// line, and `trusted-by-pin` only there.
#[test]
fn sigstore_signers_and_the_rule_from_3_14_on() {
    let both = format!("{VERSIONS}{V314}{SIGNER_314}");
    check_load(&both, VARIANTS, "", expect!["ok: 2 versions, 1 variants"]);
    let m = Matrix::from_strs(&both, VARIANTS, "").expect("loads");
    let signers: Vec<String> =
        m.versions.iter().map(|r| format!("{}: {:?}", r.version, r.sigstore)).collect();
    expect![[r#"
        3.13.5: None
        3.14.2: Some(SigstoreSigner { line: PyVersion { major: 3, minor: 14, patch: None }, email: "hugo@python.org", issuer: "https://github.com/login/oauth" })"#]]
    .assert_eq(&signers.join("\n"));
    check_load(
        &format!("{VERSIONS}{V314}"),
        VARIANTS,
        "",
        expect![[r#"
        error: matrix/versions.toml:8:1: 3.14.2 is signed with Sigstore only (python.org publishes no .asc from 3.14 on): add a [[sigstore]] entry with line = "3.14" and its release manager's email and OIDC issuer
             8 | [[version]]
               | ^"#]],
    );
    check_load(
        &format!("{VERSIONS}{SIGNER_314}").replace("\"3.14\"", "\"3.14.1\""),
        VARIANTS,
        "",
        expect![[r#"
            error: matrix/versions.toml:9:8: a Sigstore signer is pinned per release line: line = "3.14", not 3.14.1
                 9 | line = "3.14.1"
                   |        ^"#]],
    );
    check_load(
        &format!("{VERSIONS}{SIGNER_314}{SIGNER_314}"),
        VARIANTS,
        "",
        expect![[r#"
            error: matrix/versions.toml:14:8: the Sigstore signer of 3.14 is declared twice
                14 | line = "3.14"
                   |        ^"#]],
    );
    check_load(
        &format!("{VERSIONS}{SIGNER_314}").replace("hugo@python.org", "Hugo van Kemenade"),
        VARIANTS,
        "",
        expect![[r#"
            error: matrix/versions.toml:10:9: email `Hugo van Kemenade` is not an email address: python.org's release managers sign with their email identity (e.g. hugo@python.org)
                10 | email = "Hugo van Kemenade"
                   |         ^"#]],
    );
    check_load(
        &format!("{VERSIONS}{SIGNER_314}").replace("https://github", "http://github"),
        VARIANTS,
        "",
        expect![[r#"
            error: matrix/versions.toml:11:10: issuer `http://github.com/login/oauth` must be the https:// URL of the OpenID Connect issuer (e.g. https://github.com/login/oauth)
                11 | issuer = "http://github.com/login/oauth"
                   |          ^"#]],
    );
    check_load(
        &format!("{VERSIONS}trusted-by-pin = \"python.org's page\"\n"),
        VARIANTS,
        "",
        expect![[r#"
            error: matrix/versions.toml:7:18: trusted-by-pin is for releases from 3.14 on, which must otherwise have a Sigstore bundle; 3.13.5 is trusted on its pin alone when it has no signature, so remove it
                 7 | trusted-by-pin = "python.org's page"
                   |                  ^"#]],
    );
    check_load(
        &format!("{V314}trusted-by-pin = \" \"\n{SIGNER_314}"),
        VARIANTS,
        "",
        expect![[r#"
            error: matrix/versions.toml:7:18: trusted-by-pin must say why (it is printed wherever the release is skipped or trusted)
                 7 | trusted-by-pin = " "
                   |                  ^"#]],
    );
    check_load(
        &format!("{V314}not-built-here = \"\"\n{SIGNER_314}"),
        VARIANTS,
        "",
        expect![[r#"
            error: matrix/versions.toml:7:18: not-built-here must say why (it is printed wherever the release is skipped or trusted)
                 7 | not-built-here = ""
                   |                  ^"#]],
    );
}

/// A release marked `not-built-here` is chosen only when `--version` (or a cell name) names
/// it, and `list` gets the reason for the others.
#[test]
fn a_release_not_built_here_is_chosen_only_by_name() {
    let versions = format!("{VERSIONS}{V314}not-built-here = \"no archive here\"\n{SIGNER_314}");
    let m = Matrix::from_strs(&versions, VARIANTS, "").expect("loads");
    let show = |selection: &Selection| {
        let cells = match m.cells(selection) {
            Ok(cells) => cells.iter().map(|c| c.name()).collect::<Vec<_>>().join(" "),
            Err(e) => format!("error: {e}"),
        };
        let skipped: Vec<String> = m
            .not_built_here(selection)
            .iter()
            .map(|r| format!("{} ({})", r.version, r.not_built_here.as_deref().unwrap_or("")))
            .collect();
        let skipped = if skipped.is_empty() { "-".to_owned() } else { skipped.join(", ") };
        format!("cells: {cells}; not built here: {skipped}")
    };
    let outcomes = [
        show(&Selection::default()),
        show(&sel(&["3.14"], &[])),
        show(&sel(&["3.14.2"], &["debug"])),
        show(&Selection { cells: vec!["3.14.2+debug".into()], ..Selection::default() }),
        show(&sel(&[], &["debug"])),
    ];
    expect![[r#"
        cells: 3.13.5+debug; not built here: 3.14.2 (no archive here)
        cells: 3.14.2+debug; not built here: -
        cells: 3.14.2+debug; not built here: -
        cells: 3.14.2+debug; not built here: -
        cells: 3.13.5+debug; not built here: 3.14.2 (no archive here)"#]]
    .assert_eq(&outcomes.join("\n"));
}

/// One grammar for every list of cells a user writes: `[[expected]]` cells and a project's
/// default cells are parsed by `Pattern`'s `FromStr`, and select with `Selection::patterns`.
#[test]
fn cell_patterns_are_one_grammar() {
    let mut out = String::new();
    for text in
        ["3.13.5+debug", "3.13+debug", "debug", "3.13", "3.x+debug", "+debug", "3.13+", "de bug"]
    {
        match text.parse::<Pattern>() {
            Ok(p) => out.push_str(&format!("{text}: {p} {p:?}\n")),
            Err(e) => out.push_str(&format!("{text}: {e}\n")),
        }
    }
    expect![[r#"
        3.13.5+debug: 3.13.5+debug Pattern { version: Some(PyVersion { major: 3, minor: 13, patch: Some(5) }), variant: Some("debug") }
        3.13+debug: 3.13+debug Pattern { version: Some(PyVersion { major: 3, minor: 13, patch: None }), variant: Some("debug") }
        debug: debug Pattern { version: None, variant: Some("debug") }
        3.13: 3.13 Pattern { version: Some(PyVersion { major: 3, minor: 13, patch: None }), variant: None }
        3.x+debug: `3.x+debug` is not a cell pattern (`3.x` is not a version such as 3.13 or 3.13.5): write VERSION+VARIANT (3.13+debug, 3.13.5+debug), a variant (debug) or a version (3.13)
        +debug: `+debug` is not a cell pattern (`` is not a version such as 3.13 or 3.13.5): write VERSION+VARIANT (3.13+debug, 3.13.5+debug), a variant (debug) or a version (3.13)
        3.13+: `3.13+` is not a cell pattern (`` is not a variant name): write VERSION+VARIANT (3.13+debug, 3.13.5+debug), a variant (debug) or a version (3.13)
        de bug: `de bug` is not a cell pattern (`de bug` is not a variant name): write VERSION+VARIANT (3.13+debug, 3.13.5+debug), a variant (debug) or a version (3.13)
    "#]].assert_eq(&out);
    let patterns = |list: &[&str]| Selection {
        patterns: list.iter().map(|p| p.parse().expect("a pattern")).collect(),
        ..Selection::default()
    };
    check_cells(
        patterns(&["3.13+debug", "3.11.2+valgrind"]),
        expect![[r#"
        3.11.2+valgrind
        3.13.5+debug
        3.13.15+debug"#]],
    );
    check_cells(
        patterns(&["3.13+nope"]),
        expect![
            "error: unknown variant `nope`: the matrix has release, debug, ref-debug, trace-refs, valgrind, pymalloc-debug, asan, freethreaded, freethreaded-debug, tsan, ubsan (see matrix/variants.toml)"
        ],
    );
    check_cells(
        patterns(&["3.9+debug"]),
        expect![
            "error: unknown version `3.9`: the matrix has 3.11.2, 3.13.5, 3.13.15, 3.14.10, 3.15.2 (see matrix/versions.toml)"
        ],
    );
}
