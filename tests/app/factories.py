"""Small valid inputs for the service tests."""

from __future__ import annotations

from typing import Any

FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "


def suite_body(name: str = "mini", n_questions: int = 3, *, salt: str = "") -> dict[str, Any]:
    docs = [{"id": f"d{i}", "title": f"Doc {i}", "text": FILLER * 5 + f"The magic number of city{i} is: {1000 + i}."
             + salt} for i in range(n_questions)]
    questions = [{"id": f"q{i}", "question": f"What is the magic number of city{i}?", "answers": [str(1000 + i)],
                  "evidence": [{"doc_id": f"d{i}"}]} for i in range(n_questions)]
    return {"name": name, "documents": docs, "questions": questions, "default_scorers": ["exact_match"]}


def endpoint_body(name: str = "fake", base_url: str = "http://127.0.0.1:9/v1", **kw: Any) -> dict[str, Any]:
    body = {"name": name, "base_url": base_url, "model": "fake-model", "api_key": "sk-secret-abc123",
            "concurrency": 2, "max_output_tokens": 16, "price_input": 1.0, "price_output": 2.0}
    body.update(kw)
    return body
