"""The collector tuning of an executing process (app.execution.heap), on its own."""

from __future__ import annotations

import gc
import weakref

from app.execution import heap


def test_tune_freezes_after_collecting_and_release_undoes_it_once_the_last_holder_is_done():
    threshold = gc.get_threshold()

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    garbage = Cycle()
    ref = weakref.ref(garbage)
    del garbage  # a cycle: only the collector frees it
    heap.tune()
    try:
        assert gc.get_freeze_count() > 0
        assert ref() is None  # collected by tune, not frozen with the rest
        assert gc.get_threshold()[0] == max(heap.YOUNG_THRESHOLD, threshold[0])
        heap.tune()  # a second holder
        heap.release()
        assert heap.tuned() and gc.get_freeze_count() > 0
    finally:
        heap.release()
    assert not heap.tuned()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == threshold
    heap.release()  # more releases than tunes change nothing
    assert gc.get_threshold() == threshold


def test_release_collects_what_the_frozen_heap_left_behind():

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    kept = Cycle()
    ref = weakref.ref(kept)
    heap.tune()
    try:
        del kept  # garbage now, but frozen: the collector does not see it
        gc.collect()
        assert ref() is not None
    finally:
        heap.release()
    assert ref() is None  # given back and collected at once
