//! `cargo xtask list`.

use pipeline::{Session, commands};

impl crate::flags::List {
    pub(crate) fn run(self, session: &Session) -> anyhow::Result<()> {
        commands::list(session, &self.cells.cells, self.json, &self.ext, self.project_cells)
    }
}
