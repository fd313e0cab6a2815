"""Functional tests for refbugs: every one passes on a release build.

The bugs are only visible to the tools debug-matrix runs around these tests:
the leak to the debug_matrix_pytest plugin's --dm-leaks (total refcount,
allocated blocks, trace-refs type census), the use-after-free to valgrind or
a debug allocator.
"""

import refbugs


def test_leak_new_ref():
    obj = object()
    assert refbugs.leak_new_ref(obj) == [obj]


def test_no_leak_new_ref():
    obj = object()
    assert refbugs.no_leak_new_ref(obj) == [obj]


def test_use_after_free():
    # Reads freed memory: the value depends on the allocator (136 when the
    # freed block is untouched, 16 * 0xDD = 3536 under a debug allocator).
    assert isinstance(refbugs.use_after_free(), int)


def test_no_use_after_free():
    # 1 + 2 + ... + 16
    assert refbugs.no_use_after_free() == sum(range(1, refbugs.UAF_READ + 1))
