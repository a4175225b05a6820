"""Schemathesis generates requests from the OpenAPI schema and sends them in-process: no 5xx, every
status documented, every response matches its documented schema, and no request passes without a token.

Left out: the checks on undeclared methods (405 and its ``Allow`` header), which FastAPI answers by
route rather than by path; and the two that equate the schema with validation: the API is lenient
where pydantic is (``0`` for ``false``, unknown query parameters ignored) and stricter where the
domain is (a question may only cite documents of its suite), and both are correct.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    unsupported_method,
)

from app import crud
from app.db import make_engine, session_scope
from app.main import create_app
from app.settings import Settings
from tests.app.conftest import migrate_everything
from tests.app.factories import endpoint_body, suite_body

_DB = Path(tempfile.mkdtemp(prefix="ctxeval-fuzz-")) / "ctxeval.db"
APP = create_app(Settings(database_url=f"sqlite:///{_DB}", execution="none", auth="on"))
TOKEN: dict[str, str] = {}
EXCLUDED = [unsupported_method, allow_header_conformance, negative_data_rejection, positive_data_acceptance]
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def running_app() -> Iterator[None]:
    migrate_everything(f"sqlite:///{_DB}")
    engine = make_engine(f"sqlite:///{_DB}")
    with session_scope(engine) as s:
        TOKEN["Authorization"] = "Bearer " + crud.create_token(s, name="fuzz")[1]
    engine.dispose()
    with TestClient(APP, headers=TOKEN) as c:  # runs the lifespan; schemathesis then calls the same app
        c.post("/api/endpoints", json=endpoint_body())
        c.post("/api/suites", json=suite_body())
        yield


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_fails_on_generated_input(case):
    case.call_and_validate(headers=TOKEN, excluded_checks=EXCLUDED)
