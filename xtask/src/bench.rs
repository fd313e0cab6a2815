//! `cargo xtask bench`.

use pipeline::{Session, commands};

impl crate::flags::Bench {
    pub(crate) fn run(self, session: &Session) -> anyhow::Result<()> {
        commands::bench(
            session,
            &self.cell,
            &self.second,
            self.make_jobs,
            self.leaks.as_deref(),
            self.rounds,
        )
    }
}
