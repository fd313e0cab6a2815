use std::sync::{Arc, atomic::AtomicBool};

use camino::Utf8PathBuf;
use nix::{sys::signal::kill, unistd::Pid};

use super::*;

fn log_in(dir: &tempfile::TempDir) -> Utf8PathBuf {
    Utf8PathBuf::try_from(dir.path().join("logs/x.log")).expect("utf-8 temp path")
}

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

/// Whether `pid` still runs: a zombie (killed, waiting for PID 1 to reap it) does not.
fn alive(pid: i32) -> bool {
    let state = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = state.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    kill(Pid::from_raw(pid), None).is_ok() && !zombie
}

fn read_pid(path: &std::path::Path) -> i32 {
    for _ in 0..50 {
        if let Ok(text) = fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("{} was never written", path.display());
}

#[test]
fn output_goes_to_the_log_and_a_failure_carries_its_exit_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = log_in(&dir);
    run_logged(sh("echo hello; echo oops >&2"), &log, &AtomicBool::new(false), None)
        .expect("succeeds");
    let err = run_logged(sh("echo failing; exit 3"), &log, &AtomicBool::new(false), None);
    assert!(matches!(&err, Err(RunError::Failed(s)) if s.code() == Some(3)), "{err:?}");
    let text = fs::read_to_string(&log).expect("log");
    assert!(text.contains("hello\noops\n"), "{text}");
    assert_eq!(tail_of_file(&log, 1), "failing");
}

#[test]
fn a_timeout_kills_the_whole_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = log_in(&dir);
    let pidfile = dir.path().join("grandchild.pid");
    // The grandchild would outlive a plain kill of `sh`.
    let cmd = sh(&format!("sleep 60 & echo $! > {}; wait", pidfile.display()));
    let err = run_logged(cmd, &log, &AtomicBool::new(false), Some(Duration::from_millis(500)));
    assert!(matches!(err, Err(RunError::TimedOut(_))), "{err:?}");
    let pid = read_pid(&pidfile);
    thread::sleep(Duration::from_millis(200));
    assert!(!alive(pid), "grandchild {pid} still alive");
}

#[test]
fn cancellation_kills_a_group_that_ignores_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = log_in(&dir);
    let pidfile = dir.path().join("child.pid");
    let cancel = Arc::new(AtomicBool::new(false));
    let setter = {
        let cancel = cancel.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(500));
            cancel.store(true, Ordering::SeqCst);
        })
    };
    let cmd = sh(&format!("trap '' TERM; sleep 60 & echo $! > {}; wait", pidfile.display()));
    let started = Instant::now();
    let err = run_logged(cmd, &log, &cancel, None);
    setter.join().expect("setter thread");
    assert!(matches!(err, Err(RunError::Cancelled)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    let pid = read_pid(&pidfile);
    thread::sleep(Duration::from_millis(200));
    assert!(!alive(pid), "child {pid} still alive");
    assert!(fs::read_to_string(&log).expect("log").contains("process group killed"));
}

#[test]
fn tails_keep_the_last_lines() {
    assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
    assert_eq!(tail("a\n", 5), "a");
    assert_eq!(tail("", 5), "");
    assert_eq!(tail_of_file(Utf8Path::new("/nonexistent/x.log"), 5), "");
}

#[test]
fn python_variables_are_scrubbed_and_others_kept() {
    for name in ["PYTHONPATH", "PYTHONHOME", "PYTHONMALLOC", "VIRTUAL_ENV", "PIP_USER"] {
        assert!(is_scrubbed_for_python(name), "{name}");
    }
    for name in ["PATH", "HOME", "CC", "PIP_INDEX_URL", "MYPYTHONPATH"] {
        assert!(!is_scrubbed_for_python(name), "{name}");
    }
}

#[test]
fn atomic_writes_replace_whole_files_and_leave_no_temporary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = Utf8PathBuf::try_from(dir.path().join("sub/r.json")).expect("utf-8");
    write_json_atomically(&path, &serde_json::json!({"a": 1})).expect("first write");
    // Concurrent writers: each file seen is one whole value.
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let path = path.clone();
            thread::spawn(move || {
                for _ in 0..20 {
                    write_json_atomically(&path, &serde_json::json!({ "a": i })).expect("write");
                }
            })
        })
        .collect();
    for _ in 0..50 {
        let text = fs::read_to_string(&path).expect("read");
        serde_json::from_str::<serde_json::Value>(&text).expect("always whole JSON");
    }
    for w in writers {
        w.join().expect("writer");
    }
    let names: Vec<String> = fs::read_dir(path.parent().expect("parent"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["r.json"]);
}

/// Issue 18: a test printing a gibibyte made a 4 GB log and a 2 GB tool. The log keeps its
/// head and its tail and says how much was dropped between them.
#[test]
fn a_log_keeps_its_head_and_tail_and_says_what_was_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = log_in(&dir);
    let cap = LogCap { head: 1000, tail: 500 };
    // 2 MB of output: a first line, a flood, a last line.
    let cmd = sh("echo first; head -c 2000000 /dev/zero | tr '\\0' x; echo; echo last >&2");
    run_logged_capped(cmd, &log, &AtomicBool::new(false), None, cap).expect("succeeds");
    let text = fs::read_to_string(&log).expect("log");
    assert!(text.len() < 1700, "the log is capped: {} bytes", text.len());
    let body = text.split_once('\n').expect("the command line first").1;
    assert!(body.starts_with("first\nxxx"), "{body:.40}");
    assert!(text.ends_with("xxx\nlast\n"), "the tail is kept");
    let dropped = 2_000_000 + 6 + 1 + 5 - 1000 - 500;
    assert!(
        text.contains(&format!(
            "[debug-matrix: {dropped} bytes of output dropped here; the log keeps the first 1000 \
             and the last 500 bytes]"
        )),
        "{text}"
    );
    assert_eq!(tail_of_file(&log, 1), "last");
}
