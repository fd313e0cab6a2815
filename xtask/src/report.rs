//! `cargo xtask report`.

use pipeline::{Session, commands};

impl crate::flags::Report {
    pub(crate) fn run(self, session: &Session) -> anyhow::Result<()> {
        let options = commands::ReportOptions {
            merge: self.merge,
            summary: self.summary,
            annotations: self.annotations,
            check: self.check,
        };
        commands::report(session, &options)
    }
}
