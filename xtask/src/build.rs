//! `cargo xtask build`.

use pipeline::{Session, commands};

impl crate::flags::Build {
    pub(crate) fn run(self, session: &Session) -> anyhow::Result<()> {
        commands::build(session, &self.cells.cells, &self.build.options(self.jobs))
    }
}
