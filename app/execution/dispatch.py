"""Hands runs to DBOS through a client of its system database.

The API process never needs to execute anything to start, cancel or resume a run: it writes to the
DBOS system database, and whichever process executes (this one with ``--execution inprocess``, or
``ctxeval worker`` processes) picks the work up from the queues.

Names: a run is the workflow ``ctxeval-run-<id>-a<attempt>``; each case is a child workflow
``ctxeval-run-<id>-a<attempt>-<case_id>`` on the queue ``ctxeval-endpoint-<endpoint name>``, whose
global concurrency is the endpoint's ``concurrency``.
"""

from __future__ import annotations

from typing import Any

from dbos import DBOS, DBOSClient

from evals import ENGINE_VERSION

APP_NAME = "ctxeval"
APP_VERSION = f"ctxeval-{ENGINE_VERSION}"
RUNS_QUEUE = "ctxeval-runs"
RUN_WORKFLOW = "ctxeval.run"
CASE_WORKFLOW = "ctxeval.case"


def endpoint_queue(name: str) -> str:
    return f"ctxeval-endpoint-{name}"


def run_workflow_id(run_id: int, attempt: int) -> str:
    return f"ctxeval-run-{run_id}-a{attempt}"


def case_workflow_id(run_id: int, attempt: int, case_id: str) -> str:
    return f"{run_workflow_id(run_id, attempt)}-{case_id}"


def migrate_system_database(url: str) -> None:
    """Create or upgrade DBOS's tables (the same call DBOS makes at launch)."""
    DBOS.migrate(url)


class Dispatcher:
    """Connects on first use, so a service starts even before its system database is reachable."""

    def __init__(self, system_database_url: str, *, polling_interval_s: float = 0.5) -> None:
        self._client = DBOSClient(system_database_url=system_database_url, application_name=APP_NAME, lazy=True)
        self._polling = polling_interval_s
        self._runs_queue_ready = False

    def close(self) -> None:
        self._client.destroy()

    def _ensure_runs_queue(self) -> None:
        if not self._runs_queue_ready:
            self._client.register_queue(RUNS_QUEUE, polling_interval_sec=self._polling,
                                        on_conflict="always_update", application_name=APP_NAME)
            self._runs_queue_ready = True

    def register_endpoint_queue(self, name: str, concurrency: int) -> None:
        self._client.register_queue(endpoint_queue(name), global_concurrency=concurrency,
                                    polling_interval_sec=self._polling, on_conflict="always_update",
                                    application_name=APP_NAME)

    def start_run(self, run_id: int, attempt: int, queues: dict[str, int]) -> str:
        """Register each endpoint's queue (name → concurrency), then enqueue the run's workflow."""
        self._ensure_runs_queue()
        for name, concurrency in queues.items():
            self.register_endpoint_queue(name, concurrency)
        options: Any = {"workflow_name": RUN_WORKFLOW, "queue_name": RUNS_QUEUE,
                        "workflow_id": run_workflow_id(run_id, attempt), "app_version": APP_VERSION}
        return self._client.enqueue(options, run_id, attempt).get_workflow_id()

    def cancel_run(self, run_id: int, attempt: int) -> None:
        """Cancel the attempt's workflow and its case workflows (queued ones never start)."""
        self._client.cancel_workflow(run_workflow_id(run_id, attempt), cancel_children=True)
