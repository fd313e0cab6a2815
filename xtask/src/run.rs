//! `cargo xtask run`.

use pipeline::{Session, commands};

impl crate::flags::Run {
    pub(crate) fn run(self, session: &Session) -> anyhow::Result<()> {
        commands::run_in_cell(session, &self.cell, self.suite.as_deref(), &self.command)
    }
}
