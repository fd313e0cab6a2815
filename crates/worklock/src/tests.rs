use std::{
    process::{Command, Stdio},
    sync::{Arc, mpsc},
    time::Instant,
};

use super::*;

fn lock_path(dir: &tempfile::TempDir) -> Utf8PathBuf {
    Utf8PathBuf::try_from(dir.path().join("locks/x.lock")).expect("utf-8 temp path")
}

#[test]
fn a_second_taker_waits_until_the_first_releases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = lock_path(&dir);
    let never = AtomicBool::new(false);
    let first = acquire(&path, "the thing", &never).expect("first");
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let path = path.clone();
        thread::spawn(move || {
            let held = acquire(&path, "the thing", &AtomicBool::new(false)).expect("second");
            tx.send(Instant::now()).expect("send");
            drop(held);
        })
    };
    thread::sleep(Duration::from_millis(600));
    assert!(rx.try_recv().is_err(), "the second taker did not wait");
    let released = Instant::now();
    drop(first);
    let taken = rx.recv_timeout(Duration::from_secs(5)).expect("taken after release");
    assert!(taken >= released);
    waiter.join().expect("waiter");
    let holder = fs::read_to_string(&path).expect("lock file");
    assert!(holder.starts_with(&format!("pid {} (", std::process::id())), "{holder}");
}

#[test]
fn cancelling_ends_the_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = lock_path(&dir);
    let _first = acquire(&path, "the thing", &AtomicBool::new(false)).expect("first");
    let cancel = Arc::new(AtomicBool::new(false));
    let setter = {
        let cancel = cancel.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(400));
            cancel.store(true, Ordering::SeqCst);
        })
    };
    let err = acquire(&path, "the thing", &cancel).expect_err("cancelled");
    setter.join().expect("setter");
    assert!(matches!(err, LockError::Cancelled { .. }), "{err:?}");
    assert!(err.to_string().contains("the thing"), "{err}");
}

#[test]
fn a_lock_left_by_a_killed_process_never_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = lock_path(&dir);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    // Another process takes the lock (flock, as std does on Linux) and is killed holding it.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import fcntl, sys, time\n\
             f = open(sys.argv[1], 'a')\n\
             fcntl.flock(f, fcntl.LOCK_EX)\n\
             print('held', flush=True)\n\
             time.sleep(60)",
            path.as_str(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (apt-get install python3)");
    // Kept open until the end: a closed pipe would kill the holder early (EPIPE).
    let mut said = holder.stdout.take().expect("stdout");
    let mut line = [0u8; 5];
    said.read_exact(&mut line).expect("holder says held");
    assert_eq!(&line, b"held\n");
    let cancel = AtomicBool::new(false);
    thread::scope(|s| {
        let waiter = s.spawn(|| acquire(&path, "the thing", &cancel));
        thread::sleep(Duration::from_millis(500));
        assert!(!waiter.is_finished(), "the lock was not held by the other process");
        holder.kill().expect("kill -9");
        let _ = holder.wait();
        let started = Instant::now();
        let held = waiter.join().expect("waiter").expect("taken once the holder died");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(held);
    });
    drop(said);
}
