"""Leak hunting's judgement: is a test's growth a lost reference, and what grew.

A test whose every measured run grew (``hunt.py``'s protocol) is judged here, by the
discriminators a maintainer applies by hand, in order:

1. **The retained check** (``retained.py``): if every reference to what the re-runs made
   is accounted for by something reachable, the growth is state the test keeps (a registry,
   a patched module, a module-level cache): *not judged*, with the types and containers
   that grew.  An orphan (a reference nothing explains) keeps the leak.
2. **Persistence.**  The test is repeated in batches of 8, 16, 32, … calls, for up to
   ``BUDGET`` seconds and ``MAX_CALLS`` calls, and the growth per call of each signal that
   met the rule is read batch by batch (``shape``): a lost reference grows the same on every
   call (``linear``); a bounded cache stops once it is full (``stops``); an amortised
   structure's growth per call falls (``flattens``).  Only linear growth stays a leak.
3. **Evidence** for a leak that stays: the objects whose reference count grew per call, the
   new tracked objects by type, and, where blocks grew, the Python lines that allocated the
   blocks that stayed (a ``tracemalloc`` snapshot diff over ``CALLS`` more calls).

What is not decided here: the pure-Python twin (a second process with the project's switch
to its pure-Python implementation; ``cargo xtask test`` runs it and compares).
"""

import os
import time

from .cleanup import SavedState, clear_caches, gc_collect
from .hunt import RerunFailed, call_once, noop
from .retained import CALLS, retained_check

#: Seconds the persistence check may take per test (it cuts its last batch short when out of
#: time), and its most calls (8 + 16 + … + 512).
BUDGET = 1.5
MAX_CALLS = 1016


def shape(batches, signal):
    """How a signal grew over ``hunt.Hunter.extend``'s batches (``[calls, refs, blocks]``):
    ``linear`` (the last batch grew at least half a unit per call and at least 3/4 of the
    first batch's rate), ``stops`` (the last batch grew less than 0.1 per call), else
    ``flattens``; ``unknown`` with fewer than two batches."""
    if len(batches) < 2:
        return "unknown"
    k = 1 if signal == "refs" else 2
    first = batches[0][k] / batches[0][0]
    last = batches[-1][k] / batches[-1][0]
    if last >= 0.5 and last >= 0.75 * first:
        return "linear"
    if last < 0.1:
        return "stops"
    return "flattens"


def allocations(run, before_each, record_warnings, root, calls=1, limit=5):
    """The Python lines that allocated the blocks that stayed after ``calls`` more calls
    (``tracemalloc``, innermost frame; one call by default: tracing makes every allocation
    several times slower, and a leak's blocks stay on every call), after one untraced call
    that refills the caches cleared before it: ``[{where,
    blocks_per_call, bytes_per_call}]``, or None when tracemalloc is already in use."""
    import tracemalloc

    if tracemalloc.is_tracing():
        return None
    here = os.path.dirname(os.path.abspath(__file__))
    filters = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, os.path.join(here, "*")),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    ]
    saved = SavedState()
    saved.restore()
    clear_caches()
    # One call untraced first: what it fills (the caches cleared above) is not the leak.
    error = call_once(run, before_each, record_warnings, 0, calls + 1)
    if error is not None:
        saved.restore()
        raise RerunFailed(error)
    saved.restore()
    gc_collect()
    tracemalloc.start(1)
    try:
        first = tracemalloc.take_snapshot()
        for i in range(calls):
            error = call_once(run, before_each, record_warnings, i + 1, calls + 1)
            if error is not None:
                raise RerunFailed(error)
            saved.restore()
        gc_collect()
        second = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
        saved.restore()
    # Filtered once tracing stopped: the filters' own pattern caches are not the test's.
    first, second = first.filter_traces(filters), second.filter_traces(filters)
    out = []
    for stat in second.compare_to(first, "lineno"):
        if stat.count_diff < calls:
            continue
        frame = stat.traceback[0]
        where = frame.filename
        if root and where.startswith(root + os.sep):
            where = where[len(root) + 1:]
        out.append(
            {
                "where": "%s:%d" % (where, frame.lineno),
                "blocks_per_call": round(stat.count_diff / calls, 2),
                "bytes_per_call": int(stat.size_diff / calls),
            }
        )
    out.sort(key=lambda a: (-a["blocks_per_call"], a["where"]))
    return out[:limit]


_OVERHEAD = []


def _extend_overhead(hunter):
    """What ``Hunter.extend``'s own bookkeeping adds per batch (a no-op put through it, once
    per session): subtracted from every test's batches."""
    if not _OVERHEAD:
        batches, _ = hunter.extend(noop, None, True, 60.0, MAX_CALLS)
        _OVERHEAD.extend(batches)
    return _OVERHEAD


def judge(
    hunter, run, before_each, record_warnings, leaked, root, call_seconds, defer=False, deltas=None
):
    """Judge a test whose every measured run grew in the signals ``leaked``; one call of it
    took about ``call_seconds``. With ``defer`` (``--dm-leak-evidence=deferred``: the tool
    asks the pure-Python twin first, and only a leak the twin does not explain gets a run of
    its own with the rest), persistence and allocations are left out (``deferred``).

    Returns ``(verdict, evidence)``: ``leak``, ``state`` (accounted for by what the test
    keeps reachable), ``stops`` or ``flattens`` (persistence), with the evidence dict of the
    ``evidence`` definition in ``events.schema.json``.
    """
    started = time.perf_counter()
    evidence = {"calls": CALLS}
    try:
        retained = retained_check(run, before_each, record_warnings)
    except RerunFailed as exc:
        evidence["retained_check"] = str(exc)
        retained = None
    if retained is not None:
        state = retained.pop("state")
        evidence.update(retained)
        if state:
            evidence["seconds"] = round(time.perf_counter() - started, 3)
            return "state", evidence
    if defer:
        evidence["deferred"] = True
        evidence["seconds"] = round(time.perf_counter() - started, 3)
        return "leak", evidence
    batches, seconds = [], 0.0
    overhead = _extend_overhead(hunter)
    if 24 * call_seconds > BUDGET:
        evidence["persistence_note"] = (
            "not repeated: a call takes %.2f s, two batches (8 and 16 calls) would take "
            "more than %g s" % (call_seconds, BUDGET)
        )
    else:
        try:
            batches, seconds = hunter.extend(
                run, before_each, record_warnings, BUDGET, MAX_CALLS
            )
        except RerunFailed as exc:
            evidence["persistence_note"] = "not repeated: %s" % (exc,)
        for batch, (_, refs, blocks) in zip(batches, overhead):
            batch[1] -= refs
            batch[2] -= blocks
    verdict = "leak"
    if not batches and deltas and _unsteady(deltas, leaked):
        # Too slow to repeat further, and its growth varies from call to call: not the steady
        # growth of a lost reference (a test that draws new work on every call).
        verdict = "unsteady"
    if batches:
        shapes = {signal: shape(batches, signal) for signal in leaked}
        evidence["persistence"] = dict(
            shapes, calls=sum(b[0] for b in batches), seconds=seconds, batches=batches
        )
        if "linear" not in shapes.values() and "unknown" not in shapes.values():
            verdict = "stops" if set(shapes.values()) == {"stops"} else "flattens"
    if verdict == "leak" and "blocks" in leaked:
        try:
            found = allocations(run, before_each, record_warnings, root)
        except RerunFailed as exc:
            found = None
            evidence["allocations_error"] = str(exc)
        if found is not None:
            evidence["allocations"] = found
    evidence["seconds"] = round(time.perf_counter() - started, 3)
    return verdict, evidence


def _unsteady(deltas, leaked):
    """Whether every signal that met the rule varied by more than twice from call to call."""
    for signal in leaked:
        values = deltas.get(signal) or []
        if not values or max(values) <= 2 * min(values):
            return False
    return True


def summary(verdict, evidence, deltas=None):
    """One line for a verdict that is not a leak (the ``not_judged`` text)."""
    if verdict == "unsteady":
        return (
            "unsteady: its growth varies from call to call (%s) and %s: not the steady growth "
            "of a lost reference; not judged"
            % (
                ", ".join("%s %s" % kv for kv in sorted((deltas or {}).items())),
                evidence.get("persistence_note", "it could not be repeated further"),
            )
        )
    if verdict == "state":
        what = ["%s +%g entries" % (c["name"], c["per_call"]) for c in evidence["containers"]]
        invisible = evidence.get("invisible_entries", {})
        if invisible:
            what.append(
                "holding %s, which gc cannot see into"
                % ", ".join("%s +%g" % kv for kv in invisible.items())
            )
        what += ["%s +%g" % kv for kv in evidence.get("new_objects", {}).items()][:5]
        return (
            "own state: every run keeps what it made referenced (per call: %s): "
            "state the test accumulates, not a lost reference" % (", ".join(what),)
        )
    p = evidence["persistence"]
    rates = ", ".join(
        "%s %s" % (signal, "→".join("%g" % round(b[k] / b[0], 2) for b in p["batches"]))
        for signal, k in (("refs", 1), ("blocks", 2))
        if signal in p
    )
    if verdict == "stops":
        return (
            "own state: its growth stops over %d more calls (per call by batch: %s): "
            "a bounded cache filling up, not a lost reference" % (p["calls"], rates)
        )
    return (
        "own state: its growth per call falls over %d more calls (per call by batch: "
        "%s): an amortised structure, not a lost reference" % (p["calls"], rates)
    )


def evidence_lines(evidence):
    """The evidence of a leak as short lines (pytest's terminal summary)."""
    out = []
    p = evidence.get("persistence")
    if p is not None:
        shapes = ", ".join("%s %s" % (k, p[k]) for k in ("refs", "blocks") if k in p)
        out.append("over %d more calls: %s" % (p["calls"], shapes))
    elif "persistence_note" in evidence:
        out.append(evidence["persistence_note"])
    for r in evidence.get("refcounts", []):
        out.append("+%g references per call to %s" % (r["per_call"], r["object"]))
    if evidence.get("new_objects"):
        new = ", ".join("%s +%g" % kv for kv in evidence["new_objects"].items())
        out.append("new tracked objects per call: " + new)
    for a in evidence.get("allocations", []):
        out.append("+%g blocks per call allocated at %s" % (a["blocks_per_call"], a["where"]))
    return out
