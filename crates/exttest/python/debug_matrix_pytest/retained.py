"""Leak hunting's retained check: does what a test's re-runs made stay reachable?

The test runs ``CALLS`` more times between snapshots of the tracked objects
(``gc.get_objects``), of the containers reachable from modules (module globals and the
attributes of the classes a module defines: dicts, lists, sets, deques, and the size of
``functools`` caches) and of the reference counts of tracked objects, types and module
globals.  If the runs made new objects or added entries to a reachable container, and every
reference to each new object and each new entry is accounted for (by a tracked object, or by
a container that grew, tracked or not), the growth is state the test keeps reachable (a
registry, a patched module, a module-level cache).  An orphan (a reference nothing explains:
what a missing ``Py_DECREF`` leaves) keeps the leak, and so does a pre-existing object whose
count grows by more references per call than the new objects explain.  ``judge.py`` asks
this first.
"""

import collections
import functools
import gc
import sys
import types

from .cleanup import SavedState, clear_caches, gc_collect, resync_warnings
from .hunt import RerunFailed, call_once

#: Calls between the retained check's snapshots, and under tracemalloc.
CALLS = 2

#: Modules whose containers are not the test's: the interpreter's import state and the
#: tools running the test.
_NOT_THE_TESTS = ("sys", "builtins", "gc", "tracemalloc", "debug_matrix_pytest", "_pytest",
                  "pytest", "pluggy", "_frozen_importlib", "importlib._bootstrap")
#: Containers larger than this are watched for their size only, not entry by entry.
_ENTRY_LIMIT = 5000
_IMMORTAL = 1 << 29


def _skipped(modname):
    return any(modname == p or modname.startswith(p + ".") for p in _NOT_THE_TESTS)


def _size(value):
    # By the exact type only: an attribute lookup on an arbitrary object runs its code (a
    # proxy forwards it, a chain of proxies recurses).
    tp = type(value)
    if issubclass(tp, (dict, list, set, collections.deque)):
        return len(value)
    if issubclass(tp, functools._lru_cache_wrapper):
        return value.cache_info().currsize
    return None


_INDEX = [None, [], []]


def _module_index():
    """``(globals, containers)``: every module global as ``(name, value)``, and every
    container among them and among the attributes of the classes a module defines. Made
    again when the set of modules changed; a retained check on a suite with a big heap made
    it for every suspect (20,000 attributes on zope.interface's suite)."""
    key = (len(sys.modules), id(next(reversed(sys.modules.values()), None)))
    if _INDEX[0] == key:
        return _INDEX[1], _INDEX[2]
    globals_, containers = [], []
    seen = set()
    for modname, module in list(sys.modules.items()):
        if module is None or _skipped(modname):
            continue
        try:
            namespace = dict(vars(module))
        except TypeError:
            continue
        for attr, value in namespace.items():
            name = "%s.%s" % (modname, attr)
            globals_.append((name, value))
            if _size(value) is not None and id(value) not in seen:
                seen.add(id(value))
                containers.append((name, value))
            if issubclass(type(value), type) and value.__dict__.get("__module__") == modname:
                for cattr, cvalue in list(vars(value).items()):
                    if _size(cvalue) is not None and id(cvalue) not in seen:
                        seen.add(id(cvalue))
                        containers.append(("%s.%s" % (name, cattr), cvalue))
    _INDEX[:] = [key, globals_, containers]
    return globals_, containers


def _containers():
    """``{id: [name, container, size]}`` for the containers reachable from modules."""
    found = {}
    for name, value in _module_index()[1]:
        size = _size(value)
        if size is not None:
            found[id(value)] = [name, value, size]
    return found


def _entries(container):
    """What a container references (a dict's keys and values); empty for caches."""
    tp = type(container)
    if issubclass(tp, dict):
        out = list(dict.keys(container))
        out.extend(dict.values(container))
        return out
    if issubclass(tp, (list, set, collections.deque)):
        return list(container)
    return []


def _candidates():
    """Whose reference counts the retained check follows: every class (found through
    ``object.__subclasses__``, not a walk over the heap) and every module global."""
    objs = []
    seen = set()
    stack = [object]
    while stack:
        cls = stack.pop()
        if id(cls) in seen:
            continue
        seen.add(id(cls))
        objs.append(cls)
        try:
            stack.extend(type.__subclasses__(cls))
        except TypeError:
            continue
    for _, v in _module_index()[0]:
        if id(v) not in seen:
            seen.add(id(v))
            objs.append(v)
    return objs


def _refcounts(objs):
    """``{id: reference count}`` of ``objs`` (the ``_candidates``, held alike in every
    snapshot)."""
    getrefcount = sys.getrefcount
    return {id(o): getrefcount(o) for o in objs}


def _global_names():
    names = {}
    for name, value in _module_index()[0]:
        names.setdefault(id(value), name)
    return names


def describe(obj, names):
    """A short name for an object: ``type pkg.Cls``, ``function pkg.f``, ``pkg.NAME (dict)``."""
    tp = type(obj)
    if issubclass(tp, type):
        return "type %s.%s" % (obj.__module__, obj.__qualname__)
    if issubclass(tp, types.ModuleType):
        return "module %s" % (obj.__name__,)
    if tp in (types.FunctionType, types.BuiltinFunctionType, types.MethodType):
        return "function %s.%s" % (obj.__module__, obj.__qualname__)
    name = names.get(id(obj))
    kind = tp.__qualname__
    if name is not None:
        return "%s (%s)" % (name, kind)
    if tp in (str, bytes, int, float):
        text = repr(obj)
        return "%s %s" % (kind, text if len(text) <= 40 else text[:37] + "...")
    return "a %s object" % (kind,)


def _references_to(objs, skip=(), only=None):
    """``{id: n}``: how many references the tracked objects (outside ``skip``; only those in
    ``only`` when given) hold to each of ``objs``. One walk over the heap for all of them
    (``gc.get_referrers`` of every object at once), then each referrer's referents: a
    reference held twice counts twice, as in the reference count."""
    counts = {id(o): 0 for o in objs}
    if not counts:
        return counts
    referrers = gc.get_referrers(*objs)
    try:
        for r in referrers:
            rid = id(r)
            if rid in skip or (only is not None and rid not in only):
                continue
            for x in gc.get_referents(r):
                xid = id(x)
                if xid in counts:
                    counts[xid] += 1
    finally:
        del referrers
    return counts


def retained_check(run, before_each, record_warnings, calls=CALLS):
    """Run the test ``calls`` more times between snapshots; return a dict:

    ``state`` (bool: every new object and entry is accounted for, and something was made),
    ``new_objects`` ({type: per call}), ``containers`` ([{name, type, per_call}]),
    ``orphans`` (how many new objects or entries have a reference nothing explains),
    ``refcounts`` ([{object, per_call, unexplained}]: pre-existing objects whose count grew
    the same in every call).  Raises RerunFailed if a run raises.
    """
    saved = SavedState()
    saved.restore()
    clear_caches()
    gc_collect()
    holders = _containers()
    old_entries = {
        cid: set(map(id, _entries(h[1]))) for cid, h in holders.items() if h[2] <= _ENTRY_LIMIT
    }
    candidates = _candidates()
    snapshots = [_refcounts(candidates)]
    # The heap found before the calls is frozen while they run: the collections after each
    # call walk only what the calls made (a full one takes a quarter of a second with numpy
    # loaded), and what gc still tracks outside the frozen heap afterwards is exactly what
    # the calls made and kept.
    gc.freeze()
    try:
        for i in range(calls):
            error = call_once(run, before_each, record_warnings, i, calls)
            if error is not None:
                saved.restore()
                raise RerunFailed(error)
            saved.restore()
            resync_warnings()
            clear_caches()
            gc_collect()
            snapshots.append(_refcounts(candidates))
        mine = {id(holders), id(old_entries), id(snapshots), id(candidates)}
        mine.update(id(s) for s in snapshots)
        mine.add(id(mine))
        new = [o for o in gc.get_objects() if id(o) not in mine]
    finally:
        gc.unfreeze()
    new = [o for o in new if type(o).__name__ != "frame"]
    grown = []
    for cid, (name, container, size) in holders.items():
        now = _size(container)
        if now is not None and now > size:
            grown.append((name, container, now - size, old_entries.get(cid)))
    new_types = _count_types(new)
    new_ids = set(map(id, new))
    grown_refs = {}
    # ``new`` becomes the list of what is checked: each object in it is held by it once,
    # like the control appended last.
    entries_start = len(new)
    for _, container, growth, old in grown:
        for e in _entries(container):
            grown_refs[id(e)] = grown_refs.get(id(e), 0) + 1
            # A tracked entry outside ``new`` existed before the calls.
            if old is None or id(e) in old or id(e) in new_ids or gc.is_tracked(e):
                continue
            if sys.getrefcount(e) >= _IMMORTAL:
                continue
            new_ids.add(id(e))
            new.append(e)
        e = None
    grown_ids = {id(g[1]) for g in grown}
    # New entries gc cannot see into (untracked, no referents: a C object without
    # tp_traverse, like a compiled pattern in a module-level cache): what they hold looks
    # like an orphan, though the container that grew holds them.
    invisible = _count_types(e for e in new[entries_start:] if _invisible(e))
    new.append([None])  # the control: held by ``new`` alone
    held = _references_to(new, skip=grown_ids)

    def unaccounted(obj):
        # References nothing tracked (outside the grown containers) nor a grown container
        # explains, plus the caller's constant (measured on the control).
        return sys.getrefcount(obj) - held[id(obj)] - grown_refs.get(id(obj), 0)

    offset = unaccounted(new[-1])
    orphans = sum(1 for i in range(len(new) - 1) if unaccounted(new[i]) > offset)
    del new[-1]
    held = None
    result = {
        "new_objects": _per_call(new_types, calls),
        "containers": [
            {"name": name, "type": type(c).__name__, "per_call": round(g / calls, 2)}
            for name, c, g, _ in sorted(grown, key=lambda x: (-x[2], x[0]))[:5]
        ],
        "orphans": orphans,
    }
    result["refcounts"] = _grown_refcounts(
        snapshots, calls, new_ids, grown_refs, grown_ids, candidates
    )
    lost = any(r["unexplained"] >= 1 for r in result["refcounts"])
    if invisible:
        result["invisible_entries"] = _per_call(invisible, calls)
    # Orphans are explained when the containers that grew gained entries gc cannot see
    # into: those entries hold them.
    result["state"] = bool(new or grown) and (not orphans or bool(invisible)) and not lost
    del new[:]
    return result


_ATOMIC = (str, bytes, int, float, complex, bool, type(None))


def _invisible(obj):
    """An object gc cannot see into: not tracked, not atomic, no referents (a C type
    without ``tp_traverse``)."""
    return (
        not gc.is_tracked(obj)
        and not issubclass(type(obj), _ATOMIC)
        and not gc.get_referents(obj)
    )


def _count_types(objs):
    counts = {}
    for o in objs:
        name = type(o).__name__
        counts[name] = counts.get(name, 0) + 1
    return counts


def _per_call(counts, calls):
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    return {name: round(n / calls, 2) for name, n in top}


def _grown_refcounts(snapshots, calls, new_ids, grown_refs, grown_ids, candidates, limit=5):
    """Pre-existing objects whose reference count grew by the same amount in every call,
    with how much of it no new object or new entry explains."""
    first, last = snapshots[0], snapshots[-1]
    steady = []
    for oid, count in first.items():
        growth = last.get(oid, count) - count
        if growth < calls:
            continue
        steps = [s.get(oid, 0) - p.get(oid, 0) for p, s in zip(snapshots, snapshots[1:])]
        if len(set(steps)) == 1:
            steady.append((growth, oid))
    if not steady:
        return []
    steady.sort(reverse=True)
    wanted = {oid for _, oid in steady[: limit * 4]}
    objects = {id(o): o for o in candidates if id(o) in wanted}
    names = _global_names()
    from_new = _references_to(list(objects.values()), skip=grown_ids, only=new_ids)
    out = []
    for growth, oid in steady[: limit * 4]:
        obj = objects.get(oid)
        if obj is None:
            continue
        explained = from_new[oid] + min(grown_refs.get(oid, 0), growth)
        out.append(
            {
                "object": describe(obj, names),
                "per_call": round(growth / calls, 2),
                "unexplained": round(max(growth - explained, 0) / calls, 2),
            }
        )
        if len(out) == limit:
            break
    return out
