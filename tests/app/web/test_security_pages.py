"""The dashboard's forms under the input limits and the cross-site rule."""

from __future__ import annotations

import textwrap
from typing import Any

from tests.evals.test_security import yaml_bomb


def test_generator_parameters_with_an_alias_bomb_are_a_422_page(client: Any) -> None:
    bomb = textwrap.dedent(yaml_bomb(9).split("metadata:\n", 1)[1])  # the anchors alone, as parameters
    r = client.post("/suites/generate", data={"kind": "passkey", "params": bomb})
    assert r.status_code == 422 and "aliases expand" in r.text
    r = client.post("/suites/generate", data={"kind": "passkey", "params": '{"n": ' + "9" * 5000 + "}"})
    assert r.status_code == 422 and "64-bit" in r.text


def test_a_form_from_another_site_is_refused_and_one_from_the_dashboard_is_not(client: Any) -> None:
    form = {"kind": "passkey", "lengths": "256", "depths": "0"}
    assert client.post("/suites/generate", data=form, headers={"Origin": "http://evil.example"}).status_code == 403
    same = client.post("/suites/generate", data=form, headers={"Origin": "http://testserver",
                                                                "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 303


def test_the_edit_form_says_when_a_new_url_removed_the_key(client: Any) -> None:
    body = {"name": "ep", "base_url": "http://127.0.0.1:9", "model": "m", "api_key": "sk-page-0123456789"}
    eid = client.post("/api/endpoints", json=body).json()["id"]
    form = {"name": "ep", "base_url": "http://127.0.0.1:10", "model": "m", "max_output_tokens": "256",
            "concurrency": "4", "tokenizer": "auto", "price_input": "0", "price_output": "0"}
    r = client.post(f"/endpoints/{eid}/edit", data=form)
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"])
    assert "Its key was removed" in page.text
    assert client.get(f"/api/endpoints/{eid}").json()["has_api_key"] is False
