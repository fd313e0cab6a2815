//! `cargo xtask build`.

use pipeline::{Session, commands};

impl crate::flags::Build {
    pub(crate) fn run(self, session: &Session) -> anyhow::Result<()> {
        let options = self.build.options(self.jobs);
        if self.check {
            return commands::build_check(session, &self.cells.cells, &options);
        }
        commands::build(session, &self.cells.cells, &options)
    }
}
