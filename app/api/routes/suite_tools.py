"""Suite generation by kind and a stored suite's summary (the same functions as the dashboard's)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import IdPath, SessionDep
from app.schemas import ERROR_RESPONSES, SuitePublic
from app.services import suite_views
from evals import registry

router = APIRouter(tags=["suites"], responses=ERROR_RESPONSES)


class GenerateSuite(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "passkey", "params": {"lengths": [1000, 4000], "depths": [0, 50, 100]}}]})

    kind: str = Field(description="one of GET /api/generators")
    params: dict[str, Any] = Field(default_factory=dict, description="the generator's parameters")


class ComponentPublic(BaseModel):
    """A registered component and its parameters."""

    kind: str = Field(description="strategy, scorer or generator")
    name: str = Field(description="the name a run spec or a generate request uses")
    label: str = Field(description="a display name")
    description: str = Field(description="what it does")
    needs_retrieval: bool = Field(description="strategies: it retrieves chunks; scorers: it scores retrieval")
    needs_model: bool = Field(description="scorers: graded by a judge model")
    arg: str | None = Field(description="the parameter a 'name:value' suffix sets (recall_at_k:10), if any")
    source: str = Field(description="who registered it")
    params: dict[str, Any] = Field(description="its parameters as JSON Schema")


class CatalogPublic(BaseModel):
    data: list[ComponentPublic] = Field(description="every registered component of the kind")
    count: int = Field(description="how many")


class GeneratorsPublic(CatalogPublic):
    kinds: list[str] = Field(description="the generator names (the same as data[].name)")


def _catalogue(kind: Any) -> dict[str, Any]:
    """The registry's catalogue: the same components and parameter models as the engine and the form."""
    data = registry.catalogue(kind)
    return {"data": data, "count": len(data)}


@router.get("/strategies", response_model=CatalogPublic, summary="Strategies and their parameters (JSON Schema)")
def list_strategies() -> Any:
    """The parameters of each are the model the engine validates a strategy spec with."""
    return _catalogue("strategy")


@router.get("/scorers", response_model=CatalogPublic, summary="Scorers and their parameters (JSON Schema)")
def list_scorers() -> Any:
    return _catalogue("scorer")


@router.get("/generators", response_model=GeneratorsPublic,
            summary="Suite kinds that can be generated, with their parameters (JSON Schema)")
def list_generators() -> Any:
    out = _catalogue("generator")
    return {**out, "kinds": [c["name"] for c in out["data"]]}


@router.post("/suites/generate", response_model=SuitePublic, status_code=status.HTTP_201_CREATED,
             responses={200: {"model": SuitePublic, "description": "Identical content was stored before"}},
             summary="Generate a suite of a kind and store it")
def generate_suite(session: SessionDep, body: GenerateSuite, response: Response) -> SuitePublic:
    """Token lengths are counted with cl100k. Bad parameters are named in the error's ``field``."""
    stored = suite_views.generate(session, body.kind, body.params)
    if not stored.created:
        response.status_code = status.HTTP_200_OK
    return stored


@router.get("/suites/{suite_id}/summary", summary="What a suite holds: counts, token lengths, depths")
def suite_summary(session: SessionDep, suite_id: IdPath) -> dict[str, Any]:
    """Counts, cl100k token lengths per power-of-two bucket, question types, evidence depths and the
    first questions."""
    return suite_views.inspect(session, suite_id)
