//! `cargo xtask test-cpython`.

use pipeline::{Session, commands};

impl crate::flags::TestCpython {
    pub(crate) fn run(self, session: &Session) -> anyhow::Result<()> {
        commands::test_cpython(
            session,
            &self.cells.cells,
            &self.build.options(1),
            &self.regrtest.options(self.jobs),
        )
    }
}
