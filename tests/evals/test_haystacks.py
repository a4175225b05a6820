"""Real prose haystacks: the bundled public-domain text, a user's file read as a stream, and suites
sized in the endpoint's own tokenizer (its /tokenize)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from evals.domain import Endpoint, StrategySpec
from evals.errors import UserInputError
from evals.presets import get_preset, render
from evals.suites.niah import generate_niah
from evals.suites.prose import PROSE_SOURCE, prose_text, read_haystack_file
from evals.suites.ruler_niah import generate_ruler_niah_multikey
from evals.suites.text import essay_text
from evals.tokens import ServerTokenizer, local_tokenizer
from tests.fakes.openai_server import FakeServer

TOK = local_tokenizer("cl100k")


def test_bundled_prose_is_the_packaged_public_domain_text() -> None:
    first = json.loads(resources.files("bible").joinpath("data", "kjv.jsonl").open(encoding="utf-8").readline())
    text = prose_text(1000)
    assert text.startswith(first["text"])  # "In the beginning God created the heaven and the earth."
    assert len(text.split()) >= 1000
    assert prose_text(1000, seed=5) != text  # another seed starts at another chapter
    assert "\n\n" in prose_text(3000)  # chapters are paragraphs


def test_essay_haystacks_default_to_real_prose_not_generated_text() -> None:
    suite = generate_ruler_niah_multikey({"lengths": [1500]}, TOK)
    doc = suite.documents[0].text
    assert "In the beginning God created the heaven and the earth." in doc
    assert essay_text(0, 200)[:80] not in doc
    assert suite.metadata["params"]["haystack_source"] == PROSE_SOURCE
    niah = generate_niah({"lengths": [1500], "depths": [50]}, TOK)
    assert "God" in niah.documents[0].text and niah.metadata["params"]["haystack_source"] == PROSE_SOURCE


def test_haystack_file_is_read_only_as_far_as_needed(tmp_path: Path) -> None:
    path = tmp_path / "essays.txt"
    line = "How to do great work is a question people ask. It has many answers, and most are wrong.\n"
    path.write_text(line * 50_000, encoding="utf-8")  # about 4.5 MB
    text = read_haystack_file(path, 2000)
    assert 2000 <= len(text.split()) < 2100
    suite = generate_niah({"lengths": [2000], "depths": [50], "haystack_file": str(path)}, TOK)
    assert "How to do great work" in suite.documents[0].text
    ruler = generate_ruler_niah_multikey({"lengths": [1500], "haystack_file": str(path)}, TOK)
    assert "most are wrong" in ruler.documents[0].text


def test_haystack_file_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="haystack file not found"):
        generate_niah({"lengths": [2000], "haystack_file": str(tmp_path / "missing.txt")}, TOK)
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(UserInputError, match="not UTF-8"):
        read_haystack_file(tmp_path / "bin.txt", 10)
    with pytest.raises(UserInputError, match="haystack_file is used only with haystack 'essay'"):
        generate_ruler_niah_multikey({"haystack": "noise", "haystack_file": "x.txt"}, TOK)


def test_suite_sized_in_the_servers_tokenizer(fake_server: FakeServer) -> None:
    server_tok = ServerTokenizer(fake_server.base_url, "fake-model")
    try:
        suite = generate_ruler_niah_multikey({"lengths": [3000]}, server_tok)
        q = suite.questions[0]
        task = get_preset("ruler").prompt_for(q)
        assert task is not None
        prompt = server_tok.count(render(task, q, suite.documents[0].text).text())
        budget = prompt + q.metadata["reserved_tokens"]
        assert 0.98 * 3000 <= budget <= 3000
        assert suite.metadata["tokenizer"] == "server"
        assert prompt != TOK.count(render(task, q, suite.documents[0].text).text())  # not cl100k's count
    finally:
        server_tok.close()


async def test_server_sized_suite_fits_that_servers_window(fake_server: FakeServer) -> None:
    from evals.runner import Engine, make_spec, plan_cases, run_all

    server_tok = ServerTokenizer(fake_server.base_url, "fake-model")
    try:
        suite = generate_ruler_niah_multikey({"lengths": [3000]}, server_tok)
    finally:
        server_tok.close()
    fake_server.configure(max_model_len=3000)
    ep = Endpoint(name="fake", base_url=fake_server.base_url, model="fake-model", context_window=3000,
                  tokenizer="server")
    spec = make_spec(suite, [ep], [StrategySpec(name="long_context")])
    async with Engine(suite=suite, endpoints={ep.name: ep}, spec=spec) as engine:
        results = [r async for r in run_all(engine, plan_cases(spec, suite))]
    assert results[0].outcome.value not in ("over_window", "error"), results[0].error_message
