"""Every field of every public schema in /openapi.json has a description."""

from __future__ import annotations

import pytest

from app.api.openapi import COMMON, SPECIFIC, describe


@pytest.fixture
def spec(client):
    return client.get("/openapi.json").json()


def test_every_property_of_every_schema_is_described(spec):
    missing = [f"{name}.{field}" for name, schema in spec["components"]["schemas"].items()
               for field, prop in (schema.get("properties") or {}).items() if not prop.get("description")]
    assert missing == [], f"add a description (in the model, or in app/api/openapi.py): {missing}"


def test_a_models_own_description_wins_and_the_table_fills_the_rest(spec):
    schemas = spec["components"]["schemas"]
    base_url = schemas["EndpointCreate"]["properties"]["base_url"]["description"]
    assert "/v1 is accepted" in base_url  # from evals.domain.Endpoint, not the table
    assert schemas["EndpointCreate"]["properties"]["concurrency"]["description"] == SPECIFIC["Endpoint"]["concurrency"]
    assert schemas["CasePublic"]["properties"]["endpoint"]["description"] == COMMON["endpoint"]
    assert describe({"components": {"schemas": {"X": {"properties": {"n": {"description": "own"}}}}}}) == {
        "components": {"schemas": {"X": {"properties": {"n": {"description": "own"}}}}}}
