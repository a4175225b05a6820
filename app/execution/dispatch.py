"""Hands runs to DBOS through a client of its system database.

The API process never needs to execute anything to start, cancel or resume a run: it writes to the
DBOS system database, and whichever process executes (this one with ``--execution inprocess``, or
``ctxeval worker`` processes) picks the work up from the queues.

Names: a run is the workflow ``ctxeval-run-<id>-a<attempt>`` on the queue ``ctxeval-runs`` (a service
that executes in-process starts it on its own executor at once, under the same id, instead); its cases
are executed in chunks, each chunk a child workflow ``ctxeval-run-<id>-a<attempt>-c<n>`` on the one
queue ``ctxeval-chunks``. That queue is partitioned: an endpoint of concurrency C has ``slots``
partitions ``<endpoint name>#<k>``, each running one chunk at a time across every process, and a
chunk runs at most ``lanes`` requests at a time, with ``slots × lanes ≤ C`` (:func:`queue_shape`): the
endpoint never sees more than C requests from all workers together. Both queues exist before any
run needs them (an executor registers them before DBOS's first look at the queue table), so a run on
a just-created endpoint starts at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from dbos import DBOS, DBOSClient

from evals import ENGINE_VERSION

log = logging.getLogger("ctxeval.dispatch")

APP_NAME = "ctxeval"
APP_VERSION = f"ctxeval-{ENGINE_VERSION}"
RUNS_QUEUE = "ctxeval-runs"
CHUNKS_QUEUE = "ctxeval-chunks"
RUN_WORKFLOW = "ctxeval.run"
CHUNK_WORKFLOW = "ctxeval.chunk"
LANES_PER_SLOT = 16  # requests one chunk keeps in flight, at most
MAX_CHUNK_LANES = 8  # a chunk holds at most this many lanes' worth of cases: what a dead worker strands
RUNS_QUEUE_POLLING_S = 0.5  # a run the API process does not start itself is picked up within this
# chunks are claimed when enqueued and as each one ends (workflows._claim_chunks): the chunk queue's poll is
# the fallback, and how the other workers join a run (a poll costs DBOS 3-5 ms of CPU)
CHUNKS_QUEUE_POLLING_S = 0.5


def slot_key(endpoint: str, slot: int) -> str:
    """The chunk queue's partition of one slot of an endpoint."""
    return f"{endpoint}#{slot}"


def queue_shape(concurrency: int) -> tuple[int, int]:
    """``(slots, lanes)`` of an endpoint of ``concurrency``: slots × lanes ≤ concurrency."""
    c = max(1, int(concurrency))
    slots = math.ceil(c / LANES_PER_SLOT)
    return slots, max(1, c // slots)


def chunk_size(concurrency: int, n_cases: int) -> int:
    """Enough chunks to fill every slot, none longer than ``MAX_CHUNK_LANES`` lanes of cases."""
    slots, lanes = queue_shape(concurrency)
    return max(lanes, min(MAX_CHUNK_LANES * lanes, math.ceil(n_cases / slots)))


def run_workflow_id(run_id: int, attempt: int) -> str:
    return f"ctxeval-run-{run_id}-a{attempt}"


def chunk_workflow_id(run_id: int, attempt: int, index: int) -> str:
    return f"{run_workflow_id(run_id, attempt)}-c{index}"


def migrate_system_database(url: str) -> None:
    """Create or upgrade DBOS's tables (the same call DBOS makes at launch)."""
    DBOS.migrate(url)


def register_queues(client: Any, *, polling_interval_s: float) -> None:
    """The runs queue and the chunk queue, created or updated (``client``: a DBOSClient)."""
    client.register_queue(RUNS_QUEUE, polling_interval_sec=min(polling_interval_s, RUNS_QUEUE_POLLING_S),
                          on_conflict="always_update", application_name=APP_NAME)
    client.register_queue(CHUNKS_QUEUE, partition_concurrency=1,
                          polling_interval_sec=min(polling_interval_s, CHUNKS_QUEUE_POLLING_S),
                          on_conflict="always_update", application_name=APP_NAME)


class Dispatcher:
    """Connects on first use, so a service starts even before its system database is reachable."""

    def __init__(self, system_database_url: str, *, polling_interval_s: float = 0.5,
                 start_here: Callable[[int, int], str] | None = None, queues_ready: bool = False) -> None:
        """``start_here``: where this process also executes (``--execution inprocess``), a run is started
        on its executor at once instead of waiting for the runs queue's next poll. ``queues_ready``: the
        queues are registered already (by this process's executor, before it launched), so the first
        run does not wait for this client to connect and register them again."""
        self._client = DBOSClient(system_database_url=system_database_url, application_name=APP_NAME, lazy=True)
        self._polling = polling_interval_s
        self._queues_ready = queues_ready
        self._start_here = start_here

    def close(self) -> None:
        self._client.destroy()

    def _ensure_queues(self) -> None:
        if not self._queues_ready:
            register_queues(self._client, polling_interval_s=self._polling)
            self._queues_ready = True

    def register_endpoint_queue(self, name: str, concurrency: int) -> None:
        """Make sure the queues an endpoint's chunks go to exist. Its slots are partitions of the chunk
        queue, sized from its concurrency when a run is planned, so a changed concurrency applies to
        the runs started after the change."""
        self._ensure_queues()

    def start_run(self, run_id: int, attempt: int, queues: dict[str, int]) -> str:
        """Enqueue the run's workflow (``queues``: endpoint name → concurrency, kept for callers; the
        concurrency is read again when the run is planned)."""
        self._ensure_queues()
        if self._start_here is not None:
            try:
                return self._start_here(run_id, attempt)
            except Exception as e:  # this process cannot take it now: the queue hands it to an executor
                log.warning("run %s: not started here (%s); queued instead", run_id, e)
        options: Any = {"workflow_name": RUN_WORKFLOW, "queue_name": RUNS_QUEUE,
                        "workflow_id": run_workflow_id(run_id, attempt), "app_version": APP_VERSION}
        return self._client.enqueue(options, run_id, attempt).get_workflow_id()

    def cancel_run(self, run_id: int, attempt: int) -> None:
        """Cancel the attempt's workflow and its chunk workflows (queued ones never start)."""
        self._client.cancel_workflow(run_workflow_id(run_id, attempt), cancel_children=True)
