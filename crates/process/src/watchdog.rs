//! Children die with the tool, even when it is killed with SIGKILL (issue 18): a `kill -9` of
//! `cargo xtask` left its `make` (or pytest) running, and a rerun raced it in the same build
//! directory.
//!
//! Every process group [`crate::run_logged`] starts gets a watchdog: the tool's own binary run
//! again with [`ENV`] set to the group's id, in a process group of its own (so a signal to
//! the tool's group, Ctrl-C included, does not reach it), its stdin the read end of a pipe
//! whose only write end the tool holds. When the tool ends in any way, the kernel closes that
//! end; the watchdog reads end-of-file, sends SIGKILL to the group and waits until the group
//! is gone. When the group ends first, the tool kills its watchdog.
//!
//! Why not `PR_SET_PDEATHSIG`: it needs `unsafe` (`pre_exec`), which the workspace forbids,
//! it reaches only the group's leader (make's compilers and pytest's children would live on),
//! and it fires when the spawning *thread* ends, not the process. The watchdog is safe code,
//! reaches the whole group and is tied to the process.
//!
//! The binary must opt in by calling [`serve_if_asked`] first thing in `main` (xtask does);
//! without it (the crate's unit tests, whose binary is a test harness) there is no watchdog.
//! A watchdog that cannot be started is said in the command's log; the command runs anyway
//! (Ctrl-C, time limits and early returns still kill its group).

use std::{
    io::Read as _,
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use nix::{
    errno::Errno,
    sys::signal::{Signal, killpg},
    unistd::Pid,
};

/// The variable that makes the binary a watchdog of the process group it names.
pub const ENV: &str = "DEBUG_MATRIX_WATCHDOG_OF_GROUP";

/// The binary to run as a watchdog, once [`serve_if_asked`] enabled it.
static EXE: OnceLock<std::path::PathBuf> = OnceLock::new();

/// Call first in `main`: when the process was started as a watchdog ([`ENV`] set), it serves
/// and exits; otherwise it enables watchdogs for the groups this process starts.
pub fn serve_if_asked() {
    if let Ok(group) = std::env::var(ENV) {
        let code = match group.parse::<i32>() {
            Ok(pgid) if pgid > 1 => serve(Pid::from_raw(pgid)),
            _ => 2,
        };
        std::process::exit(code);
    }
    // `/proc/self/exe` runs this very binary even when a rebuild replaced its file meanwhile.
    let proc_exe = std::path::Path::new("/proc/self/exe");
    if proc_exe.exists() {
        let _ = EXE.set(proc_exe.to_owned());
    } else if let Ok(exe) = std::env::current_exe() {
        let _ = EXE.set(exe);
    }
}

/// Waits for end-of-file on stdin, then kills the group and waits (up to 10 s) until it is
/// gone.
fn serve(group: Pid) -> i32 {
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    // Nothing is ever written: read returns 0 (end-of-file) once the tool's end is closed.
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    let _ = killpg(group, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if killpg(group, None) == Err(Errno::ESRCH) {
            return 0;
        }
        std::thread::sleep(Duration::from_millis(20));
        let _ = killpg(group, Signal::SIGKILL);
    }
    1
}

/// A running watchdog; dropping it (after the group ended or was killed) stops it.
pub(crate) struct Watchdog {
    child: Child,
    // Held only to be closed: its closing is what the watchdog waits for.
    _end: std::io::PipeWriter,
}

/// Starts a watchdog of process group `pgid`, if this binary enabled them.
pub(crate) fn watch(pgid: u32) -> std::io::Result<Option<Watchdog>> {
    let Some(exe) = EXE.get() else { return Ok(None) };
    let (read, write) = std::io::pipe()?;
    let mut cmd = Command::new(exe);
    cmd.env(ENV, pgid.to_string())
        .stdin(Stdio::from(read))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn()?;
    Ok(Some(Watchdog { child, _end: write }))
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // The group is over: the watchdog must not outlive it (its group id could be reused).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
