"""A run's planned cases, kept for the last few (spec, suite) pairs of this process.

Planning hashes every case's identity (about 0.1 ms a case); the API plans a run to count its cases when
it is created, and the executor plans it again to execute it. In one process (``--execution inprocess``)
the second is a lookup. The suite must be the very object planned (``services.suites.load_record``
hands out one object per suite version)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from evals import CasePlan, RunSpec, Suite, plan_cases, stable_hash

KEPT = 8
_kept: OrderedDict[tuple[str, int], tuple[Suite, list[CasePlan]]] = OrderedDict()
_lock = threading.Lock()


def planned(spec: RunSpec, suite: Suite, *, strategies: Mapping[str, Any] | None = None) -> list[CasePlan]:
    """``evals.plan_cases(spec, suite)``: a new list of the (immutable) plans."""
    key = (stable_hash(spec.model_dump(mode="json")), id(suite))
    with _lock:
        hit = _kept.get(key)
        if hit is not None and hit[0] is suite:
            _kept.move_to_end(key)
            return list(hit[1])
    plans = plan_cases(spec, suite, strategies=strategies)
    with _lock:
        _kept[key] = (suite, plans)  # the suite is kept with its plans: its id names no other object
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    return list(plans)
