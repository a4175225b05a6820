"""GET /api/strategies, /api/scorers, /api/generators: every component with its parameters as JSON
Schema, from the models the engine validates with and the dashboard form reads."""

from __future__ import annotations

import jsonschema_rs

from app.web.forms import strategy_forms
from evals import registry


def test_strategies_list_each_ones_parameters_as_json_schema(client):
    r = client.get("/api/strategies")
    assert r.status_code == 200, r.text
    body = r.json()
    names = [c["name"] for c in body["data"]]
    assert names == [sf.name for sf in strategy_forms()] == registry.names("strategy")
    assert body["count"] == len(names)
    for entry in body["data"]:
        schema = entry["params"]
        assert jsonschema_rs.meta.is_valid(schema)
        component = registry.get("strategy", entry["name"])
        assert schema == component.json_schema()  # the model the engine validates a spec with
        assert set(schema.get("properties", {})) == set(component.params.model_fields)
        form = next(sf for sf in strategy_forms() if sf.name == entry["name"])
        assert {f.name for f in form.fields} <= set(schema.get("properties", {}))  # the form's fields
    rag = next(c for c in body["data"] if c["name"] == "rag")
    assert rag["needs_retrieval"] and "k" in rag["params"]["properties"]
    assert jsonschema_rs.is_valid(rag["params"], {"k": 3})
    assert not jsonschema_rs.is_valid(rag["params"], {"k": "three"})


def test_scorers_and_their_name_arguments(client):
    data = {c["name"]: c for c in client.get("/api/scorers").json()["data"]}
    assert {"exact_match", "f1", "retrieval_recall", "recall_at_k", "llm_judge"} <= set(data)
    assert data["recall_at_k"]["arg"] == "k" and data["recall_at_k"]["params"]["properties"]["k"]["default"] == 5
    assert data["llm_judge"]["needs_model"] and "faithfulness" in data["llm_judge"]["params"]["properties"]["rubric"]["enum"]
    assert data["llm_judge"]["arg"] == "rubric"
    assert data["exact_match"]["params"]["properties"] == {} and data["exact_match"]["description"]


def test_generators_with_their_parameters(client):
    body = client.get("/api/generators").json()
    assert body["kinds"] == [c["name"] for c in body["data"]] and "niah" in body["kinds"]
    for entry in body["data"]:
        assert jsonschema_rs.meta.is_valid(entry["params"])
        assert entry["params"].get("properties"), entry["name"]  # every built-in generator has parameters
    niah = next(c for c in body["data"] if c["name"] == "niah")
    assert "lengths" in niah["params"]["properties"] and "depths" in niah["params"]["properties"]
