//! The layout of the work directory (`--work-dir`, `DEBUG_MATRIX_DIR`, default
//! `target/debug-matrix`). Every path the tool writes is named here, so that "where does X
//! live" has one answer. Pure: nothing here touches the file system.
//!
//! ```text
//! <work>/cache/sha256/<digest>/<archive>   verified archives (+ .asc), content-addressed
//! <work>/src/<version>-<digest12>/         one extracted source tree per release, shared by variants
//! <work>/build/<cell>/                     out-of-tree build directory per cell
//! <work>/prefix/<cell>/                    `make install` prefix per cell
//! <work>/logs/<cell>/<phase>.log           one log per cell and phase
//! <work>/report/                           the run's results document and renderings
//! ```

use camino::{Utf8Path, Utf8PathBuf};
use matrix::{Cell, Release};

/// The work directory and every path under it.
#[derive(Debug, Clone)]
pub struct Layout {
    root: Utf8PathBuf,
}

impl Layout {
    /// A layout rooted at `root`.
    pub fn new(root: Utf8PathBuf) -> Layout {
        Layout { root }
    }

    /// The work directory itself.
    pub fn root(&self) -> &Utf8Path {
        &self.root
    }

    /// Root of the content-addressed archive cache.
    pub fn cache_dir(&self) -> Utf8PathBuf {
        self.root.join("cache")
    }

    /// The extracted source tree of `release`; its existence means extraction completed
    /// (it is renamed into place only when whole).
    pub fn source_dir(&self, release: &Release) -> Utf8PathBuf {
        let short = release.sha256.get(..12).unwrap_or(&release.sha256);
        self.root.join("src").join(format!("{}-{short}", release.version))
    }

    /// The out-of-tree build directory of `cell`.
    pub fn build_dir(&self, cell: &Cell<'_>) -> Utf8PathBuf {
        self.root.join("build").join(cell.name())
    }

    /// The installation prefix of `cell`.
    pub fn prefix(&self, cell: &Cell<'_>) -> Utf8PathBuf {
        self.root.join("prefix").join(cell.name())
    }

    /// The log of `phase` (configure, make, install, check, …) for `cell`.
    pub fn log(&self, cell: &Cell<'_>, phase: &str) -> Utf8PathBuf {
        self.root.join("logs").join(cell.name()).join(format!("{phase}.log"))
    }

    /// Where the run's results document and its renderings go.
    pub fn report_dir(&self) -> Utf8PathBuf {
        self.root.join("report")
    }
}

#[cfg(test)]
mod tests {
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
            l.build_dir(&cell),
            l.prefix(&cell),
            l.log(&cell, "configure"),
            l.report_dir(),
        ];
        expect![[r#"
            /w/cache
            /w/src/3.13.5-93e583f24345
            /w/build/3.13.5+debug
            /w/prefix/3.13.5+debug
            /w/logs/3.13.5+debug/configure.log
            /w/report"#]]
        .assert_eq(&paths.map(|p| p.to_string()).join("\n"));
        Ok(())
    }
}
