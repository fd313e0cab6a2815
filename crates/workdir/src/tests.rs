use expect_test::expect;
use matrix::Matrix;

use super::*;

#[test]
fn paths() -> Result<(), matrix::MatrixError> {
    let dir = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../matrix");
    let m = Matrix::load(&dir)?;
    let cell = m.cell("3.13.5+debug")?;
    let l = Layout::new("/w".into());
    let paths = [
        l.cache_dir(),
        l.source_dir(cell.release),
        l.build("48ae6e2751d5c72e0123").prefix,
        l.build("48ae6e2751d5c72e0123").log("configure"),
        l.cell_dir(&cell),
        l.cell(&cell).regrtest("smoke").junit,
        l.cell(&cell).suite("markupsafe").venv,
        l.config_cache("3.13"),
        l.report_json(),
        l.build_lock("48ae6e2751d5c72e0123"),
        l.source_lock(cell.release),
        l.cell_lock(&cell),
    ];
    expect![[r#"
            /w/cache
            /w/src/3.13.5-93e583f24345
            /w/builds/48ae6e2751d5c72e/prefix
            /w/builds/48ae6e2751d5c72e/logs/configure.log
            /w/cells/3.13.5+debug
            /w/cells/3.13.5+debug/test-cpython-smoke.xml
            /w/cells/3.13.5+debug/ext/markupsafe/venv
            /w/builds/config-cache/3.13.cache
            /w/report/report.json
            /w/locks/build-48ae6e2751d5c72e.lock
            /w/locks/src-3.13.5-93e583f24345.lock
            /w/locks/cell-3.13.5+debug.lock"#]]
    .assert_eq(&paths.map(|p| p.to_string()).join("\n"));
    Ok(())
}
