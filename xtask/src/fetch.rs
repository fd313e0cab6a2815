//! `cargo xtask fetch`.

use pipeline::{Session, commands};

impl crate::flags::Fetch {
    pub(crate) fn run(self, session: &Session) -> anyhow::Result<()> {
        commands::fetch(session, &self.cells.cells)
    }
}
