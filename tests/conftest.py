"""Shared fixtures: a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fakes.openai_server import FakeConfig, FakeServer, run_in_thread

# Starlette's TestClient sends "Host: testserver"; the service answers only hosts it knows
os.environ.setdefault("CTXEVAL_ALLOWED_HOSTS", "testserver")


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    """The fake server in a background thread, with a fresh default config for each test."""
    with run_in_thread(FakeConfig()) as server:
        yield server
