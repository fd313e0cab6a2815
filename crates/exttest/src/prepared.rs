//! [`Prepared`]: what a suite's set-up (`setup::prepare`) leaves for its test runs, the one
//! thing `setup` hands to `invocation` and `runs` (so that the invocation builder depends on
//! what set-up made, not on set-up itself).

use camino::Utf8PathBuf;

use crate::{environment::Environment, layout::Installed};

/// What `prepare` leaves for the test run.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// The suite's directory on the cell (`venv/` is in it).
    pub(crate) dir: Utf8PathBuf,
    /// The fresh copy of the project (C sources for valgrind's stacks, `{src}`).
    pub(crate) src: Utf8PathBuf,
    /// Where pytest runs: the project without its installed packages.
    pub(crate) run_tree: Utf8PathBuf,
    /// What the distribution installed.
    pub(crate) installed: Installed,
    /// pytest options for the project's configuration and rootdir.
    pub(crate) pytest_options: Vec<String>,
    /// The suite's `pytest-args`, acting as in a plain run from the project's root
    /// ([`crate::layout::translate_args`]).
    pub(crate) suite_args: Vec<String>,
    /// The test paths pytest is given.
    pub(crate) test_paths: Vec<String>,
    /// What node ids are relative to: site-packages for tests inside the package, else the
    /// run tree.
    pub(crate) node_root: Utf8PathBuf,
    /// The plugin's `--dm-modules` file.
    pub(crate) modules_file: Utf8PathBuf,
    /// What the venv and the project's build environment hold.
    pub(crate) environment: Environment,
}
