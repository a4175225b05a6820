"""The order of a run workflow's first operations: the first chunk is started before the others are
enqueued, so its requests go out while they are (each enqueue is milliseconds of Python on the GIL)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from app.execution import workflows


def chunk(n: int) -> dict[str, Any]:
    return {"endpoint": "ep", "slot": n, "lanes": 16, "positions": [n]}


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], dict[str, Any]]:
    events: list[str] = []
    plan: dict[str, Any] = {}

    async def plan_run(run_id: int, attempt: int) -> dict[str, Any]:
        return plan

    async def enqueue(run_id: int, attempt: int, index: int, c: dict[str, Any]) -> str:
        events.append(f"enqueue {index}")
        return f"chunk {index}"

    async def start(after: str | None = None) -> None:
        events.append("claim")

    async def wait(handle: str, polling_s: float) -> None:
        events.append(f"wait {handle.split()[1]}")

    async def finish(run_id: int, attempt: int) -> str:
        return "completed"

    monkeypatch.setattr(workflows, "plan_run", plan_run)
    monkeypatch.setattr(workflows, "_enqueue_chunk", enqueue)
    monkeypatch.setattr(workflows, "_start_chunks", start)
    monkeypatch.setattr(workflows, "_wait", wait)
    monkeypatch.setattr(workflows, "finish_run", finish)
    monkeypatch.setattr(workflows, "runtime",
                        lambda: SimpleNamespace(settings=SimpleNamespace(queue_polling_interval_s=0.5)))
    return events, plan


def test_the_first_chunk_starts_before_the_others_are_enqueued(recorded):
    events, plan = recorded
    plan.update({"first": [chunk(n) for n in range(4)], "leaders": 0, "later": []})
    assert asyncio.run(workflows._run_attempt(1, 1)) == "completed"
    assert events == ["enqueue 0", "claim", "enqueue 1", "enqueue 2", "enqueue 3", "claim",
                      "wait 0", "wait 1", "wait 2", "wait 3"]


def test_a_run_of_one_chunk_claims_once(recorded):
    events, plan = recorded
    plan.update({"first": [chunk(0)], "leaders": 0, "later": []})
    asyncio.run(workflows._run_attempt(1, 1))
    assert events == ["enqueue 0", "claim", "wait 0"]


def test_followers_are_enqueued_once_their_leaders_are_answered(recorded):
    events, plan = recorded
    plan.update({"first": [chunk(0), chunk(1)], "leaders": 1, "later": [chunk(2)]})
    asyncio.run(workflows._run_attempt(1, 1))
    assert events == ["enqueue 0", "claim", "enqueue 1", "claim", "wait 0", "enqueue 2", "claim",
                      "wait 0", "wait 1", "wait 2"]
