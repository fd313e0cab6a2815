//! `cargo xtask init`.

use pipeline::commands;

impl crate::flags::Init {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        let options = pipeline::InitOptions {
            force: self.force,
            tool_repository: self.tool_repository,
            tool_ref: self.tool_ref,
        };
        commands::init(&self.dir, &options)
    }
}
