//! Unit tests of `lib.rs`.

use camino::Utf8Path;
use expect_test::expect;
use matrix::{Matrix, Selection};

use super::*;

#[test]
fn cell_lists() -> Result<(), matrix::MatrixError> {
    let dir = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix");
    let m = Matrix::load(&dir)?;
    let cells = m.cells(&Selection { versions: vec!["3.13".into()], ..Selection::default() })?;
    expect![[r#"
            cell                        rebuild  build
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
        "#]]
        .assert_eq(&cell_list_text(&cells));
    expect![[r#"{"include":[{"cell":"3.13.5+release","version":"3.13.5","variant":"release","rebuild_extensions":false,"key":"k1"},{"cell":"3.13.5+debug","version":"3.13.5","variant":"debug","rebuild_extensions":false,"key":"k2"}]}"#]]
            .assert_eq(&cell_list_json(&cells[..2], &["k1".to_owned(), "k2".to_owned()]));
    Ok(())
}
