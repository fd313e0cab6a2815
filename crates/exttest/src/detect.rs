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
    let promise = &variant.promise;
    let mut env = variant.runtime_env.clone();
    // A crash prints the Python traceback of every thread.
    env.insert("PYTHONFAULTHANDLER".to_owned(), "1".to_owned());
    if let Some(malloc) = malloc {
        env.insert("PYTHONMALLOC".to_owned(), malloc.to_owned());
    }
    let valgrind = promise.valgrind();
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
        asan: promise.has_sanitizer("address"),
        tsan: promise.has_sanitizer("thread"),
        ubsan: promise.has_sanitizer("undefined"),
        free_threaded: promise.free_threaded(),
        env,
        extension_cflags: variant.extra_cflags.clone(),
    }
}

#[cfg(test)]
mod tests;
