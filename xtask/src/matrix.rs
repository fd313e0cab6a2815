//! `cargo xtask matrix`.

use pipeline::{Session, commands};

impl crate::flags::Matrix {
    pub(crate) fn run(self, session: &Session) -> anyhow::Result<()> {
        commands::matrix(
            session,
            &self.cells.cells,
            &self.build.options(1),
            &self.regrtest.options(None),
            &self.suites.options(),
        )
    }
}
