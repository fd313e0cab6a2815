//! Gates the slow end-to-end scenario (`tests/matrix.rs`, ~40 minutes: it builds CPython), as
//! rust-analyzer gates its slow tests, but the other way round: `cargo test --workspace` (the
//! README's test command, which CI runs) runs it, and `SKIP_SLOW_TESTS=1` (the contributor's
//! loop) sets the `skip_slow_tests` cfg, under which the scenario is `#[ignore]`d with its
//! reason, so the test output shows `ignored, …` and the summary counts it: a skipped slow test
//! never passes silently. A cfg, not a run-time check, because only an ignored test says so in
//! `cargo test`'s output (what a passing test prints is captured).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(skip_slow_tests)");
    println!("cargo::rerun-if-env-changed=SKIP_SLOW_TESTS");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("SKIP_SLOW_TESTS").is_some_and(|v| !v.is_empty() && v != "0") {
        println!("cargo::rustc-cfg=skip_slow_tests");
    }
}
