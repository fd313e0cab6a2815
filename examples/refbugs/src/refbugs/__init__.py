"""Deliberately buggy C extension functions, each with a clean twin.

- ``leak_new_ref(obj)`` returns ``[obj]`` and leaks a fresh list every call;
  ``no_leak_new_ref(obj)`` does the same work correctly.
- ``use_after_free()`` sums 16 bytes of a freed buffer and returns the sum;
  ``no_use_after_free()`` reads them before freeing.
- ``racy_count(n)`` adds 1 to a shared counter n times without synchronisation
  (a data race when threads call it at once on a free-threaded interpreter);
  ``atomic_count(n)`` counts atomically.
- ``shift_left(x, n)`` is ``x << n`` in C with no range check: undefined behaviour
  for ``n >= 64``; ``checked_shift_left(x, n)`` raises ValueError.
"""

from ._refbugs import (
    UAF_READ,
    UAF_SIZE,
    atomic_count,
    checked_shift_left,
    leak_new_ref,
    no_leak_new_ref,
    no_use_after_free,
    racy_count,
    shift_left,
    use_after_free,
)

__all__ = [
    "UAF_READ",
    "UAF_SIZE",
    "atomic_count",
    "checked_shift_left",
    "leak_new_ref",
    "no_leak_new_ref",
    "no_use_after_free",
    "racy_count",
    "shift_left",
    "use_after_free",
]
