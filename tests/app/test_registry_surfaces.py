"""A strategy registered once shows up in the new-run form, the API catalogue and validation and the command line,
with no other edit (the registry is the only list of strategies)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData
from typer.testing import CliRunner

from app.cli import cli
from app.web.forms import strategies_from_form, strategy_forms
from evals import registry
from evals.strategies import CaseContext, Strategy, StrategyOutput
from tests.app.factories import endpoint_body, suite_body


class ToyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    words: int = Field(default=3, ge=1, le=50, description="words of the question echoed back")
    retriever: registry.component_name("retriever") = "bm25"  # type: ignore[valid-type]


@pytest.fixture
def toy() -> Iterator[None]:
    @registry.strategy(order=50, label="Toy echo")
    class Toy(Strategy):
        """Echoes the first words of the question."""

        name = "toy_echo"
        Params = ToyParams

        async def answer(self, ctx: CaseContext) -> StrategyOutput:
            return StrategyOutput(answer=" ".join(ctx.question.question.split()[: self.params.words]))

    yield
    registry.unregister("strategy", "toy_echo")


def test_the_form_offers_it_with_its_parameters(toy):
    form = next(f for f in strategy_forms() if f.name == "toy_echo")
    assert form.label == "Toy echo" and form.description == "Echoes the first words of the question."
    fields = {f.name: f for f in form.fields}
    assert fields["words"].kind == "int" and fields["words"].default == 3
    assert fields["retriever"].kind == "choice" and fields["retriever"].choices == registry.names("retriever")
    specs = strategies_from_form(FormData([("s.toy_echo.on", "on"), ("s.toy_echo.words", "2, 4")]))
    assert [(s.name, s.params) for s in specs] == [("toy_echo", {"words": 2}), ("toy_echo", {"words": 4})]


def test_the_command_line_lists_it_with_parameters(toy):
    out = CliRunner().invoke(cli, ["components", "strategies"])
    assert out.exit_code == 0, out.output
    assert "toy_echo" in out.output and "Echoes the first words" in out.output and "words=3" in out.output
    listed = CliRunner().invoke(cli, ["components", "strategies", "--json"])
    entry = next(c for c in json.loads(listed.output) if c["name"] == "toy_echo")
    assert entry["params"]["properties"]["words"]["maximum"] == 50


def test_the_api_catalogue_lists_it_with_its_json_schema(toy, client):
    r = client.get("/api/strategies")
    assert r.status_code == 200, r.text
    entry = next(c for c in r.json()["data"] if c["name"] == "toy_echo")
    assert entry["label"] == "Toy echo" and entry["description"] == "Echoes the first words of the question."
    props = entry["params"]["properties"]
    assert props["words"]["minimum"] == 1 and props["words"]["maximum"] == 50
    assert props["retriever"]["enum"] == registry.names("retriever")


def test_the_api_validates_and_accepts_it(toy, client):
    e = client.post("/api/endpoints", json=endpoint_body()).json()["id"]
    s = client.post("/api/suites", json=suite_body(n_questions=2)).json()["id"]
    body = {"suite_id": s, "endpoint_ids": [e], "strategies": [{"name": "toy_echo", "params": {"words": 0}}]}
    r = client.post("/api/runs", json=body)
    assert r.status_code == 422, r.text
    assert "strategies[0].params.words" in r.text
    body["strategies"] = [{"name": "long_context"}, {"name": "toy_echo", "params": {"words": 2}}]
    r = client.post("/api/runs", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["total_cases"] == 4
