"""Tests for the bugs only a sanitizer or concurrency sees: a data race, undefined
behaviour, and a test that is not thread-safe.

Each runs only where its detector is: the race needs threads running at once
(a free-threaded interpreter; with the GIL the increments never overlap), and
the result of an over-wide shift is undefined, so nothing about it can be asserted
except where UBSan is there to report it.
"""

import sysconfig
import threading

import pytest

import refbugs

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
UBSAN = "-fsanitize=undefined" in (sysconfig.get_config_var("PY_CFLAGS") or "").split()

free_threaded = pytest.mark.skipif(
    not FREE_THREADED, reason="a race needs a free-threaded interpreter"
)
ubsan = pytest.mark.skipif(
    not UBSAN, reason="an over-wide shift's result is undefined: only UBSan can judge it"
)

THREADS = 4
CALLS = 20000


def run_in_threads(func):
    barrier = threading.Barrier(THREADS)

    def worker():
        barrier.wait()  # start together, so the loops overlap
        func(CALLS)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@free_threaded
@pytest.mark.thread_unsafe  # it starts its own threads
def test_racy_count():
    before = refbugs.racy_count(0)
    run_in_threads(refbugs.racy_count)
    # Updates may be lost: the count is at most what was asked for.
    assert before < refbugs.racy_count(0) <= before + THREADS * CALLS


@free_threaded
@pytest.mark.thread_unsafe  # it starts its own threads
def test_atomic_count():
    before = refbugs.atomic_count(0)
    run_in_threads(refbugs.atomic_count)
    assert refbugs.atomic_count(0) == before + THREADS * CALLS


@free_threaded
def test_counter_adds_n():
    # BUG in the test, not the C code: it assumes nobody else counts meanwhile. Alone it
    # passes; run by several threads at once (race hunting) it fails.
    before = refbugs.atomic_count(0)
    for _ in range(1000):
        refbugs.atomic_count(1000)
    assert refbugs.atomic_count(0) == before + 1000 * 1000


@ubsan
def test_shift_too_far():
    assert isinstance(refbugs.shift_left(1, 64), int)


@ubsan
def test_checked_shift_left():
    assert refbugs.checked_shift_left(1, 63) == 2**63
    with pytest.raises(ValueError):
        refbugs.checked_shift_left(1, 64)
