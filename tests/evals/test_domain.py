"""Suite lookups: the document map is built once per documents list and never changes equality."""

from __future__ import annotations

from evals.domain import Suite


def make() -> Suite:
    return Suite(name="s", documents=[{"id": "d1", "text": "one"}, {"id": "d2", "text": "two"}],
                 questions=[{"id": "q", "question": "?", "doc_ids": ["d2", "d1"]}])


def test_document_map_is_built_once_and_follows_a_new_documents_list() -> None:
    suite = make()
    first = suite.document_map()
    assert suite.document_map() is first
    assert [d.id for d in suite.context_documents(suite.questions[0])] == ["d2", "d1"]
    suite.documents.append(suite.documents[0].model_copy(update={"id": "d3"}))
    assert "d3" in suite.document_map()
    smaller = suite.model_copy(update={"documents": suite.documents[:1]})
    assert set(smaller.document_map()) == {"d1"} and "d3" in suite.document_map()


def test_equality_ignores_the_lookup_cache() -> None:
    a, b = make(), make()
    a.document_map()
    assert a == b
    assert a != make().model_copy(update={"name": "other"})
