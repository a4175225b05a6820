"""A service that executes runs in-process, against the fake OpenAI server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.app.factories import endpoint_body, suite_body
from tests.fakes.openai_server import FakeConfig, FakeServer, run_in_thread

CHAT = "/v1/chat/completions"


@pytest.fixture
def slow_fake() -> Iterator[FakeServer]:
    """Each answer takes a while, so a run is still going when a test acts on it."""
    with run_in_thread(FakeConfig(first_token_latency_s=0.25)) as server:
        yield server


@pytest.fixture
def executing_client(database_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, execution="inprocess", queue_polling_interval_s=0.1)
    with TestClient(create_app(settings)) as c:
        yield c


def start_run(client: TestClient, fake: FakeServer, *, questions: int = 4, concurrency: int = 2,
              strategies: tuple[str, ...] = ("no_context", "long_context")) -> dict[str, Any]:
    eid = client.post("/api/endpoints", json=endpoint_body(base_url=fake.base_url, concurrency=concurrency)).json()["id"]
    sid = client.post("/api/suites", json=suite_body(n_questions=questions)).json()["id"]
    r = client.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                       "strategies": [{"name": s} for s in strategies]})
    assert r.status_code == 201, r.text
    return r.json()


def wait_for(client: TestClient, run_id: int, done: Callable[[dict[str, Any]], bool],
             timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.get(f"/api/runs/{run_id}").json()
        if done(run):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} did not get there in {timeout_s} s: {run['status']} "
                                 f"{run['progress']}")
        time.sleep(0.05)


def finished(run: dict[str, Any]) -> bool:
    return run["status"] not in ("queued", "running")
