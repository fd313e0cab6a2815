//! `cargo xtask shell`.

use pipeline::{Session, commands};

impl crate::flags::Shell {
    pub(crate) fn run(self, session: &Session) -> anyhow::Result<()> {
        commands::shell_in_cell(session, &self.cell, self.suite.as_deref())
    }
}
