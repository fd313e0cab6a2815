//! Which detectors a cell brings, from its variant alone. Pure.

use std::collections::BTreeMap;

use matrix::Variant;

/// How a suite is run on one cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detectors {
    /// Hunt refcount leaks per test (the interpreter has `sys.gettotalrefcount`).
    pub leaks: bool,
    /// Name the types of leaked objects (`sys.getobjects`).
    pub leak_types: bool,
    /// Which deltas decide a leak (`refs`, `blocks`); empty: either.
    pub leak_signals: Vec<String>,
    /// Run under valgrind memcheck (the variant is built for it).
    pub valgrind: bool,
    /// AddressSanitizer reports are expected in the output.
    pub asan: bool,
    /// ThreadSanitizer: its reports go to per-run log files (`log_path`), read per test; the
    /// cell's own `Tools/tsan` suppressions apply.
    pub tsan: bool,
    /// UndefinedBehaviorSanitizer: the same, with `UBSAN_OPTIONS`.
    pub ubsan: bool,
    /// The interpreter is free-threaded: the GIL's state is watched, and the suite also runs
    /// its tests concurrently (race hunting).
    pub free_threaded: bool,
    /// Environment of the test run: the variant's runtime env, plus the malloc axis.
    pub env: BTreeMap<String, String>,
    /// Flags the extension must be compiled with to match the interpreter: macros the
    /// interpreter got through `EXTRA_CFLAGS`, which sysconfig does not record.
    pub extension_cflags: Vec<String>,
}

impl Detectors {
    /// The detectors that are on, as the words the report and the console show
    /// (`leaks`, `valgrind`, `tsan`, `PYTHONMALLOC=…`, …); empty: the tests only. On
    /// free-threaded cells the run adds what it saw (the GIL's state, race hunting).
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (on, name) in [
            (self.leaks, "leaks"),
            (self.leak_types, "leak-types"),
            (self.valgrind, "valgrind"),
            (self.asan, "asan"),
            (self.tsan, "tsan"),
            (self.ubsan, "ubsan"),
        ] {
            if on {
                out.push(name.to_owned());
            }
        }
        if let Some(m) = self.env.get("PYTHONMALLOC") {
            out.push(format!("PYTHONMALLOC={m}"));
        }
        out
    }
}

/// The detectors of `variant`; `malloc` (the `--malloc` axis) sets `PYTHONMALLOC` for the run.
pub fn detectors(variant: &Variant, malloc: Option<&str>) -> Detectors {
    let configure = |arg: &str| variant.configure.iter().any(|a| a == arg);
    let mut env = variant.runtime_env.clone();
    // A crash prints the Python traceback of every thread.
    env.insert("PYTHONFAULTHANDLER".to_owned(), "1".to_owned());
    if let Some(malloc) = malloc {
        env.insert("PYTHONMALLOC".to_owned(), malloc.to_owned());
    }
    let valgrind = configure("--with-valgrind") || configure("--without-pymalloc");
    if valgrind {
        // Every allocation through malloc, so memcheck sees it.
        env.entry("PYTHONMALLOC".to_owned()).or_insert_with(|| "malloc".to_owned());
    }
    Detectors {
        // Repeating every test under valgrind would take hours; the other cells hunt leaks.
        leaks: variant.promise.gettotalrefcount == Some(true) && !valgrind,
        leak_types: variant.promise.getobjects == Some(true),
        leak_signals: variant.leak_signals.clone(),
        valgrind,
        asan: configure("--with-address-sanitizer"),
        tsan: configure("--with-thread-sanitizer"),
        ubsan: configure("--with-undefined-behavior-sanitizer"),
        free_threaded: configure("--disable-gil"),
        env,
        extension_cflags: variant.extra_cflags.clone(),
    }
}

#[cfg(test)]
mod tests {
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
}
