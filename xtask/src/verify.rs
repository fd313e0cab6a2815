//! `cargo xtask verify`.

use pipeline::{Session, commands};

impl crate::flags::Verify {
    pub(crate) fn run(self, session: &Session) -> anyhow::Result<()> {
        commands::verify(session, &self.cells.cells)
    }
}
