"""Deliberately buggy C extension functions, each with a clean twin.

- ``leak_new_ref(obj)`` returns ``[obj]`` and leaks a fresh list every call;
  ``no_leak_new_ref(obj)`` does the same work correctly.
- ``use_after_free()`` sums 16 bytes of a freed buffer and returns the sum;
  ``no_use_after_free()`` reads them before freeing.
"""

from ._refbugs import (
    UAF_READ,
    UAF_SIZE,
    leak_new_ref,
    no_leak_new_ref,
    no_use_after_free,
    use_after_free,
)

__all__ = [
    "UAF_READ",
    "UAF_SIZE",
    "leak_new_ref",
    "no_leak_new_ref",
    "no_use_after_free",
    "use_after_free",
]
