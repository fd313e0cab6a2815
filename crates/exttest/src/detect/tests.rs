use camino::Utf8Path;
use expect_test::expect;
use matrix::Matrix;

use super::*;

#[test]
fn each_variant_brings_its_detector() -> Result<(), matrix::MatrixError> {
    let m = Matrix::load(&Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix"))?;
    let mut out = String::new();
    for v in &m.variants {
        let d = detectors(v, None);
        out.push_str(&format!(
            "{:18} [{}] free-threaded={} cflags={:?} env={:?}\n",
            v.name,
            d.names().join(", "),
            d.free_threaded,
            d.extension_cflags,
            d.env
        ));
    }
    expect![[r#"
            release            [] free-threaded=false cflags=[] env={"PYTHONFAULTHANDLER": "1"}
            debug              [leaks] free-threaded=false cflags=[] env={"PYTHONFAULTHANDLER": "1"}
            ref-debug          [leaks] free-threaded=false cflags=["-DPy_REF_DEBUG"] env={"PYTHONFAULTHANDLER": "1"}
            trace-refs         [leaks, leak-types] free-threaded=false cflags=[] env={"PYTHONFAULTHANDLER": "1"}
            valgrind           [valgrind, PYTHONMALLOC=malloc] free-threaded=false cflags=[] env={"PYTHONFAULTHANDLER": "1", "PYTHONMALLOC": "malloc"}
            pymalloc-debug     [PYTHONMALLOC=pymalloc_debug] free-threaded=false cflags=[] env={"PYTHONFAULTHANDLER": "1", "PYTHONMALLOC": "pymalloc_debug"}
            asan               [asan] free-threaded=false cflags=[] env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1:symbolize=1", "PYTHONFAULTHANDLER": "1"}
            freethreaded       [] free-threaded=true cflags=[] env={"PYTHONFAULTHANDLER": "1"}
            freethreaded-debug [leaks] free-threaded=true cflags=[] env={"PYTHONFAULTHANDLER": "1"}
            tsan               [tsan] free-threaded=true cflags=[] env={"PYTHONFAULTHANDLER": "1", "TSAN_OPTIONS": "halt_on_error=0:handle_segv=0:second_deadlock_stack=1"}
            ubsan              [ubsan] free-threaded=false cflags=[] env={"PYTHONFAULTHANDLER": "1", "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
        "#]].assert_eq(&out);
    Ok(())
}
