"""Suite generation by kind and a stored suite's summary (the same functions as the dashboard's)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import IdPath, SessionDep
from app.schemas import ERROR_RESPONSES, SuitePublic
from app.services import suite_views

router = APIRouter(tags=["suites"], responses=ERROR_RESPONSES)


class GenerateSuite(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "passkey", "params": {"lengths": [1000, 4000], "depths": [0, 50, 100]}}]})

    kind: str = Field(description="one of GET /api/generators")
    params: dict[str, Any] = Field(default_factory=dict, description="the generator's parameters")


class GeneratorsPublic(BaseModel):
    kinds: list[str]


@router.get("/generators", response_model=GeneratorsPublic, summary="Suite kinds that can be generated")
def list_generators() -> GeneratorsPublic:
    return GeneratorsPublic(kinds=suite_views.generator_kinds())


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
