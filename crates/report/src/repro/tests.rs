//! Unit tests of `repro.rs`.

use expect_test::expect;

use super::*;

#[test]
fn every_repro_line() {
    let cell: CellId = "3.13.5+debug".parse().expect("a cell");
    let one = |suite, malloc, test, leak_loop| {
        TestLine { cell: &cell, suite, malloc, test, leak_loop }.line()
    };
    let lines = [
        build(&cell),
        fetch(cell.version),
        test_cpython(&cell, "smoke"),
        test(&cell),
        one(SuiteArg::Named("refbugs"), None, None, false),
        one(SuiteArg::Ext(Utf8Path::new("../myext")), Some("pymalloc_debug"), None, false),
        one(SuiteArg::Pypi("ujson==5.10.0"), None, Some("tests/t.py::C::test_x[a]"), true),
    ];
    expect![[r#"
            cargo xtask build 3.13.5+debug
            cargo xtask fetch --version 3.13.5
            cargo xtask test-cpython 3.13.5+debug --profile smoke
            cargo xtask test 3.13.5+debug
            cargo xtask test 3.13.5+debug --suite refbugs
            cargo xtask test 3.13.5+debug --ext ../myext --malloc pymalloc_debug
            cargo xtask test 3.13.5+debug --pypi ujson==5.10.0 -k test_x[a] --leak-loop 20"#]]
    .assert_eq(&lines.join("\n"));
}
