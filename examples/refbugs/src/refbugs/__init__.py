"""Deliberately buggy C extension functions, each with a clean twin.

- ``leak_new_ref(obj)`` returns ``[obj]`` and leaks a fresh list every call;
  ``no_leak_new_ref(obj)`` does the same work correctly.
- ``use_after_free()`` sums 16 bytes of a freed buffer and returns the sum;
  ``no_use_after_free()`` reads them before freeing.
- ``racy_count(n)`` adds 1 to a shared counter n times without synchronisation
  (a data race when threads call it at once on a free-threaded interpreter);
  ``atomic_count(n)`` counts atomically.
- ``add_one(x)`` is ``x + 1`` in C ``long`` arithmetic: signed overflow, undefined
  behaviour, at ``sys.maxsize``; ``checked_add_one(x)`` raises OverflowError.
"""

from ._refbugs import (
    UAF_READ,
    UAF_SIZE,
    add_one,
    atomic_count,
    checked_add_one,
    leak_new_ref,
    no_leak_new_ref,
    no_use_after_free,
    racy_count,
    use_after_free,
)

__all__ = [
    "UAF_READ",
    "UAF_SIZE",
    "add_one",
    "atomic_count",
    "checked_add_one",
    "leak_new_ref",
    "no_leak_new_ref",
    "no_use_after_free",
    "racy_count",
    "use_after_free",
]
