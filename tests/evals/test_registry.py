"""The component registry: one decorator per kind, parameters declared once, one build function."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import BaseModel, ConfigDict, Field

from evals import registry
from evals.domain import StrategySpec
from evals.errors import UserInputError
from evals.runner import make_spec
from evals.scorers import Scorer, get_scorer, score_case
from evals.strategies import CaseContext, Strategy, StrategyOutput, build_strategy
from tests.retrieval_suite import endpoint, make_suite


class ToyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    words: int = Field(default=3, ge=1, le=50, description="words of the question echoed back")
    retriever: registry.component_name("retriever") = "bm25"  # type: ignore[valid-type]


@pytest.fixture
def toy() -> Iterator[type[Strategy]]:
    @registry.strategy(order=50, label="Toy echo")
    class Toy(Strategy):
        """Echoes the first words of the question."""

        name = "toy_echo"
        Params = ToyParams

        async def answer(self, ctx: CaseContext) -> StrategyOutput:
            return StrategyOutput(answer=" ".join(ctx.question.question.split()[: self.params.words]))

    yield Toy
    registry.unregister("strategy", "toy_echo")


def test_a_registered_strategy_is_listed_built_and_validated(toy):
    comp = registry.get("strategy", "toy_echo")
    assert comp.label == "Toy echo" and comp.description == "Echoes the first words of the question."
    assert "toy_echo" in registry.names("strategy")
    assert isinstance(build_strategy(StrategySpec(name="toy_echo", params={"words": 2})), toy)
    with pytest.raises(UserInputError) as e:
        build_strategy(StrategySpec(name="toy_echo", params={"words": 0}), index=1)
    assert e.value.field == "strategies[1].params.words"
    with pytest.raises(UserInputError, match="retriever: unknown retriever 'faiss'"):
        build_strategy(StrategySpec(name="toy_echo", params={"retriever": "faiss"}))
    spec = make_spec(make_suite(), [endpoint()], [StrategySpec(name="toy_echo")])
    assert [s.name for s in spec.strategies] == ["toy_echo"]


def test_unknown_names_list_what_is_registered(toy):
    with pytest.raises(UserInputError, match="unknown strategy 'nope'; known: no_context, long_context") as e:
        build_strategy(StrategySpec(name="nope"), index=0)
    assert "toy_echo" in str(e.value) and e.value.field == "strategies[0].name"


def test_catalogue_gives_parameters_as_json_schema(toy):
    entry = next(c for c in registry.catalogue("strategy") if c["name"] == "toy_echo")
    props = entry["params"]["properties"]
    assert props["words"]["minimum"] == 1 and props["words"]["default"] == 3
    assert props["retriever"]["enum"] == registry.names("retriever")  # choices from the registry
    assert entry["needs_retrieval"] is False and entry["label"] == "Toy echo"
    rag = next(c for c in registry.catalogue("strategy") if c["name"] == "rag")
    assert rag["needs_retrieval"] is True
    assert rag["params"]["properties"]["chunking"]["enum"] == ["sentence", "paragraph", "tokens", "words"]


def test_every_kind_has_built_ins():
    assert {"long_context", "rag", "self_route", "agentic", "no_context"} <= set(registry.names("strategy"))
    assert {"bm25", "dense", "hybrid"} <= set(registry.names("retriever"))
    assert registry.names("chunker") == ["sentence", "paragraph", "tokens", "words"]
    assert {"niah", "multihop", "passkey"} <= set(registry.names("generator"))
    assert "ruler" in registry.names("preset")
    judge = registry.get("scorer", "llm_judge")
    assert judge.needs_model and judge.arg == "rubric"


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        registry.register("retriever", "bm25", object)
    with pytest.raises(ValueError, match="invalid"):
        registry.register("retriever", "a:b", object)


def test_a_registered_scorer_is_used_by_name_and_arg():
    class WordsParams(BaseModel):
        model_config = ConfigDict(extra="forbid")
        n: int = 1

    @registry.scorer(arg="n", description="answer has at least n words")
    class MinWords(Scorer):
        name = "min_words"
        Params = WordsParams

        def score(self, case, question):
            return float(len(case.answer.split()) >= self.params.n)

    try:
        from tests.evals.test_scorers import _case, _question

        case = _case("two words")
        assert score_case(case, _question(), ["min_words:2", "min_words:3"]) == {"min_words:2": 1.0,
                                                                                "min_words:3": 0.0}
        assert get_scorer("min_words:2").params.n == 2
        with pytest.raises(UserInputError, match="min_words"):
            get_scorer("min_words:x")
    finally:
        registry.unregister("scorer", "min_words")
