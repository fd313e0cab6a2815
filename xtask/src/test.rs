//! `cargo xtask test`.

use pipeline::{Session, commands};

impl crate::flags::Test {
    pub(crate) fn run(self, session: &Session) -> anyhow::Result<()> {
        commands::test(session, &self.cells.cells, &self.build.options(1), &self.suites.options())
    }
}
