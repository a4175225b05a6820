"""Suite files: YAML / JSON / JSONL round trips, the published schema, and errors that say where."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest
import yaml

from evals.domain import Document, Evidence, Question, Suite
from evals.errors import UserInputError
from evals.suites.io import (
    SCHEMA_PATH,
    dump_suite,
    dumps_suite,
    load_suite,
    parse_suite,
    suite_json_schema,
    suite_json_schema_text,
)


def _suite() -> Suite:
    return Suite(
        name="handbook",
        description="Two documents, two questions",
        documents=[
            Document(id="travel.md", title="Travel", text="Hotels up to $180 a night.\nTrains: second class."),
            Document(id="leave.txt", text="Everyone gets 25 days of leave. Ünïcödé stays intact.",
                     metadata={"lang": "en"}),
        ],
        questions=[
            Question(id="q1", question="What is the hotel limit?", answers=["$180", "180"],
                     evidence=[Evidence(doc_id="travel.md", start=0, end=26)]),
            Question(id="q2", question="How many days of leave?", answers=["25"],
                     evidence=[Evidence(doc_id="leave.txt")], doc_ids=["leave.txt", "travel.md"],
                     metadata={"qtype": "single_hop"}),
        ],
        default_scorers=["exact_match"],
        metadata={"owner": "people team"},
    )


@pytest.mark.parametrize("ext", [".yaml", ".yml", ".json", ".jsonl"])
def test_round_trip_in_every_format(tmp_path: Path, ext: str) -> None:
    suite = _suite()
    path = tmp_path / f"suite{ext}"
    dump_suite(suite, path)
    loaded = load_suite(path)
    assert loaded == suite
    assert loaded.content_hash == suite.content_hash
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_hand_written_yaml_and_jsonl_load(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "name: mini\n"
        "documents:\n"
        "  - id: a\n"
        "    text: |\n"
        "      The launch is on 3 May.\n"
        "questions:\n"
        "  - id: q\n"
        "    question: When is the launch?\n"
        "    answers: [3 May]\n"
        "    evidence: [{doc_id: a}]\n"
        "  - id: 7\n"
        "    question: Which day?\n"
        "    answers: [3, 3.0]\n", encoding="utf-8")
    suite = load_suite(tmp_path / "s.yaml")
    assert suite.documents[0].text == "The launch is on 3 May.\n"
    assert suite.questions[0].evidence[0].doc_id == "a"
    assert (suite.questions[1].id, suite.questions[1].answers) == ("7", ["3", "3.0"])  # numbers read as text

    lines = [{"type": "document", "id": "a", "text": "x"},
             {"type": "question", "id": "q", "question": "?", "answers": ["x"]}]
    (tmp_path / "mini.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n\n", encoding="utf-8")
    suite = load_suite(tmp_path / "mini.jsonl")
    assert suite.name == "mini"  # no suite record: the file's stem
    assert [d.id for d in suite.documents] == ["a"]


def test_yaml_output_keeps_multiline_text_readable() -> None:
    text = dumps_suite(_suite(), "yaml")
    assert "text: |-\n    Hotels up to $180 a night.\n    Trains: second class." in text
    assert yaml.safe_load(text)["documents"][0]["text"] == "Hotels up to $180 a night.\nTrains: second class."


def test_jsonl_layout_is_one_record_per_line() -> None:
    lines = dumps_suite(_suite(), "jsonl").splitlines()
    types = [json.loads(line)["type"] for line in lines]
    assert types == ["suite", "document", "document", "question", "question"]


def test_published_schema_is_up_to_date_and_accepts_a_suite() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == suite_json_schema_text(), \
        "regenerate evals/schemas/suite.schema.json with `ctxeval suite schema --out ...`"
    validator = jsonschema_rs.validator_for(suite_json_schema())
    assert validator.is_valid(_suite().model_dump(mode="json"))
    assert not validator.is_valid({"name": "x", "questions": [{"id": "q"}]})
    assert not validator.is_valid({"name": "x", "questions": [{"id": "q", "question": "?"}], "extra": 1})


# --------------------------------------------------------------------------------------- bad files
_DOC = '{"type": "document", "id": "d1", "text": "hello"}'
_Q = '{"type": "question", "id": "q1", "question": "what?", "answers": ["hello"]}'

BAD_FILES = [
    # (file name, content, substrings the message must contain)
    ("bad_line.jsonl", f"{_DOC}\n{_Q}\n{{\"type\": \"question\", \"id\": \"q2\",\n",
     ["bad_line.jsonl", "line 3", "not valid JSON"]),
    ("missing.yaml", "name: s\nquestions:\n  - id: q1\n    answers: [a]\n",
     ["missing.yaml", "line 3", "field 'questions[0].question'", "required field is missing"]),
    ("wrong_type.yaml", "name: s\nquestions:\n  - id: q1\n    question: what?\n    answers: hello\n",
     ["line 5", "field 'questions[0].answers'", "valid list", '"hello"']),
    ("wrong_type.jsonl", f'{_DOC}\n{{"type": "question", "id": "q", "question": "?", "answers": 4}}\n',
     ["wrong_type.jsonl", "line 2", "field 'answers'", "valid list"]),
    ("dup_doc.yaml", "name: s\ndocuments:\n  - id: a\n    text: x\n  - id: a\n    text: y\n"
                     "questions:\n  - id: q\n    question: '?'\n",
     ["line 5", "field 'documents[1].id'", "duplicate document id 'a' (first at documents[0])"]),
    ("dup_question.jsonl", f"{_DOC}\n{_Q}\n{_Q}\n",
     ["line 3", "field 'id'", "duplicate question id 'q1' (first at line 2)"]),
    ("unknown_evidence.json",
     '{"name": "s",\n "documents": [{"id": "travel.md", "text": "x"}],\n "questions": [\n'
     '  {"id": "q", "question": "?",\n   "evidence": [{"doc_id": "travel.txt"}]}]}\n',
     ["line 5", "field 'questions[0].evidence[0].doc_id'", "unknown document 'travel.txt'",
      "did you mean 'travel.md'"]),
    ("unknown_doc_ids.jsonl", f'{_DOC}\n{{"type": "question", "id": "q", "question": "?", "doc_ids": ["d1", "d2"]}}\n',
     ["line 2", "field 'doc_ids[1]'", "unknown document 'd2'"]),
    ("extra.jsonl", '{"type": "document", "id": "a", "txt": "x"}\n',
     ["line 1", "field 'txt'", "unknown field 'txt' (allowed: id, title, text, metadata)"]),
    ("span.yaml", "name: s\ndocuments: [{id: a, text: x}]\nquestions:\n  - id: q\n    question: '?'\n"
                  "    evidence:\n      - {doc_id: a, start: 5, end: 2}\n",
     ["line 7", "field 'questions[0].evidence[0]'", "'end' is before 'start'"]),
    ("syntax.yaml", "name: s\nquestions: [\n  - id: q\n", ["syntax.yaml", "not valid YAML", "line"]),
    ("syntax.json", '{"name": "s",\n "questions": [}\n', ["line 2", "not valid JSON"]),
    ("list.yaml", "- a\n- b\n", ["top level must be a mapping"]),
    ("type.jsonl", '{"type": "doc", "id": "a", "text": "x"}\n',
     ["line 1", "field 'type'", "'suite', 'document' or 'question'"]),
    ("two_headers.jsonl", '{"type": "suite", "name": "a"}\n{"type": "suite", "name": "b"}\n',
     ["line 2", "a second 'suite' record"]),
    ("no_questions.yaml", "name: s\ndocuments: []\nquestions: []\n",
     ["field 'questions'", "at least 1 item"]),
    ("suite.txt", "name: s\n", ["unknown suite file extension '.txt'"]),
]


@pytest.mark.parametrize(("name", "content", "expected"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_name_file_line_and_field(tmp_path: Path, name: str, content: str, expected: list[str]) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserInputError) as err:
        load_suite(path)
    for part in expected:
        assert part in str(err.value), f"{part!r} not in {str(err.value)!r}"


def test_non_utf8_bytes_are_reported_with_their_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: s\nquestions:\n  - id: q\n    question: caf" + b"\xe9?\n")
    with pytest.raises(UserInputError) as err:
        load_suite(path)
    message = str(err.value)
    assert "not valid UTF-8" in message and "byte 0xe9 at byte offset 46" in message and "line 4" in message
    with pytest.raises(UserInputError, match="byte offset 0"):
        parse_suite(b"\xff\xfe", "json", source="upload.json")


def test_limits_carry_the_limit_in_the_message(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    dump_suite(_suite(), path)
    size = path.stat().st_size
    with pytest.raises(UserInputError, match=f"file is {size:,} bytes, over the limit of 100 bytes"):
        load_suite(path, max_bytes=100)
    with pytest.raises(UserInputError, match="2 documents, over the limit of 1"):
        load_suite(path, max_documents=1)
    jsonl = tmp_path / "s.jsonl"
    dump_suite(_suite(), jsonl)
    with pytest.raises(UserInputError, match="line 5: more than 1 questions, over the limit"):
        load_suite(jsonl, max_questions=1)


def test_missing_file_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="file not found"):
        load_suite(tmp_path / "nope.yaml")
    with pytest.raises(UserInputError, match="folder to write into does not exist"):
        dump_suite(_suite(), tmp_path / "no" / "such" / "s.yaml")
