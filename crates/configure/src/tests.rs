//! Unit tests of `lib.rs`.

use camino::Utf8Path;
use expect_test::expect;
use matrix::Matrix;

use super::*;

fn toolchain() -> Toolchain {
    Toolchain {
        compiler: "gcc (Debian 12.2.0-14) 12.2.0".into(),
        target: "x86_64-linux-gnu".into(),
        detected: vec!["_gdbm: gdbm.h in /usr/include".into(), "_sqlite3: missing".into()],
    }
}

fn matrix() -> Matrix {
    let dir = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix");
    Matrix::load(&dir).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn plans() {
    let m = matrix();
    let show = |name: &str| {
        let cell = m.cell(name).unwrap_or_else(|e| panic!("{e}"));
        let p = plan(&cell, &toolchain());
        format!(
            "{name}: key {}\n  configure {}\n  make {:?}\n  run {:?}\n",
            p.short_key(),
            p.configure_line(Utf8Path::new("/src"), Utf8Path::new("/prefix")).join(" "),
            p.make_args,
            p.runtime_env
        )
    };
    let all: String = [
        "3.13.5+release",
        "3.13.5+pymalloc-debug",
        "3.13.5+ref-debug",
        "3.13.5+valgrind",
        "3.11.2+debug",
    ]
    .iter()
    .map(|n| show(n))
    .collect();
    expect![[r#"
            3.13.5+release: key 5afa7275a0992d16
              configure /src/configure --prefix=/prefix --with-ensurepip=no
              make []
              run {}
            3.13.5+pymalloc-debug: key 5afa7275a0992d16
              configure /src/configure --prefix=/prefix --with-ensurepip=no
              make []
              run {"PYTHONMALLOC": "pymalloc_debug"}
            3.13.5+ref-debug: key 1ad3aa718284de06
              configure /src/configure --prefix=/prefix --with-ensurepip=no
              make ["EXTRA_CFLAGS=-DPy_REF_DEBUG"]
              run {}
            3.13.5+valgrind: key 74e62c219e159d95
              configure /src/configure --prefix=/prefix --with-ensurepip=no --with-pydebug --without-pymalloc --with-valgrind
              make []
              run {}
            3.11.2+debug: key 37df0d43dc68517f
              configure /src/configure --prefix=/prefix --with-ensurepip=no --with-pydebug
              make []
              run {}
        "#]].assert_eq(&all);
}

#[test]
fn key_changes_with_every_input() {
    let m = matrix();
    let cell = m.cell("3.13.5+debug").unwrap_or_else(|e| panic!("{e}"));
    let base = plan(&cell, &toolchain()).key;
    let other_cc = Toolchain { compiler: "gcc 13".into(), ..toolchain() };
    assert_ne!(plan(&cell, &other_cc).key, base, "compiler is part of the key");
    let no_gdbm = Toolchain {
        detected: vec!["_gdbm: missing".into(), "_sqlite3: missing".into()],
        ..toolchain()
    };
    assert_ne!(plan(&cell, &no_gdbm).key, base, "what configure finds is part of the key");
    assert_ne!(
        config_cache_group(&cell, &no_gdbm),
        config_cache_group(&cell, &toolchain()),
        "a config.cache that says a library is missing is not offered to a machine that has it"
    );
    let mut variant = cell.variant.clone();
    variant.configure.push("--enable-shared".into());
    let changed = Cell { release: cell.release, variant: &variant };
    assert_ne!(plan(&changed, &toolchain()).key, base, "configure arguments are part of the key");
    let mut release = cell.release.clone();
    release.sha256 = "0".repeat(64);
    let changed = Cell { release: &release, variant: cell.variant };
    assert_ne!(plan(&changed, &toolchain()).key, base, "the archive is part of the key");
    let mut variant = cell.variant.clone();
    variant.runtime_env.insert("PYTHONMALLOC".into(), "malloc".into());
    variant.purpose = "reworded".into();
    let changed = Cell { release: cell.release, variant: &variant };
    assert_eq!(plan(&changed, &toolchain()).key, base, "run-time settings do not rebuild");
}
