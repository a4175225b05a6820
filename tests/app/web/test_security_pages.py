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
