"""The answer prefix in each server's shape, and the completions route for base models."""

from __future__ import annotations

from typing import Any

import pytest

from evals.client import ModelClient
from evals.domain import Endpoint

MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "Find the number."}]


def body(base_url: str = "http://127.0.0.1:9", **kw: Any) -> dict[str, Any]:
    client = ModelClient(Endpoint(name="e", base_url=base_url, model="m", **kw))
    return client.chat_body(MESSAGES, answer_prefix=" Answer:")


@pytest.mark.parametrize(("mode", "last", "extra"), [
    ("assistant", {"role": "assistant", "content": " Answer:"}, {}),
    ("continue_final_message", {"role": "assistant", "content": " Answer:"},
     {"continue_final_message": True, "add_generation_prompt": False}),
    ("deepseek", {"role": "assistant", "content": " Answer:", "prefix": True}, {}),
])
def test_prefill_shapes(mode: str, last: dict[str, Any], extra: dict[str, Any]) -> None:
    b = body(prefill=mode)
    assert b["messages"] == [*MESSAGES, last]
    for k, v in extra.items():
        assert b[k] == v
    if mode != "continue_final_message":
        assert "continue_final_message" not in b


def test_user_mode_appends_to_the_user_turn_and_auto_picks_by_server() -> None:
    assert body(prefill="user")["messages"] == [{"role": "user", "content": "Find the number. Answer:"}]
    assert body()["messages"] == body(prefill="user")["messages"]  # auto on an unknown server
    assert body("https://api.deepseek.com/beta")["messages"][-1]["prefix"] is True
    assert MESSAGES == [{"role": "user", "content": "Find the number."}]  # the caller's list is untouched


def test_completions_route_sends_one_raw_prompt() -> None:
    b = body(api="completions")
    assert b["prompt"] == "Find the number. Answer:" and "messages" not in b


def test_no_prefix_changes_nothing() -> None:
    client = ModelClient(Endpoint(name="e", base_url="http://127.0.0.1:9", model="m", prefill="assistant"))
    assert client.chat_body(MESSAGES)["messages"] == MESSAGES


def test_defaults_keep_stored_specs_hash() -> None:
    public = Endpoint(name="e", base_url="http://127.0.0.1:9", model="m").public()
    assert "prefill" not in public and "api" not in public
    assert Endpoint(name="e", base_url="http://127.0.0.1:9", model="m", prefill="assistant").public()["prefill"] \
        == "assistant"
