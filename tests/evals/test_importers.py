"""Imports: questions (CSV / JSONL) over a folder or zip of documents, and LongBench-style JSONL."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pytest

from evals.errors import UserInputError
from evals.suites.importers import html_to_text, import_longbench, import_questions, load_documents
from evals.suites.io import dump_suite, load_suite


def minimal_pdf(lines: list[str], title: str | None = None) -> bytes:
    """A one-page PDF with a text line per entry, written by hand (objects, xref, trailer)."""
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops += [f"({escaped}) Tj", "T*"]
    stream = "\n".join([*ops, "ET"]).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    if title:
        objects.append(f"<< /Title ({title}) >>".encode("latin-1"))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    info = f" /Info {len(objects)} 0 R" if title else ""
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


HTML = """<!doctype html><html><head><title>Office  guide</title>
<style>body { color: red }</style><script>var secret = "do not index";</script></head>
<body><h1>Lisbon office</h1><p>Opened in 2011 &amp; seats 120 people.</p>
<ul><li>Badge at reception</li><li>Bikes in the yard</li></ul><noscript>enable js</noscript></body></html>"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "handbook").mkdir(parents=True)
    (root / "handbook" / "travel.md").write_text("# Travel policy\n\nHotels up to $180 a night.\n", encoding="utf-8")
    (root / "leave.txt").write_text("Everyone gets 25 days of leave.\n", encoding="utf-8")
    (root / "office.html").write_text(HTML, encoding="utf-8")
    (root / "report.pdf").write_bytes(minimal_pdf(["Quarterly report", "Revenue grew by 14 percent."],
                                                  title="Q3 report"))
    (root / "notes.docx").write_bytes(b"ignored: not a supported type")
    (root / ".hidden.txt").write_text("ignored: hidden", encoding="utf-8")
    return root


def test_documents_from_a_folder(corpus: Path) -> None:
    docs = {d.id: d for d in load_documents(corpus)}
    assert sorted(docs) == ["handbook/travel.md", "leave.txt", "office.html", "report.pdf"]
    assert docs["handbook/travel.md"].title == "Travel policy"
    assert "Hotels up to $180 a night." in docs["handbook/travel.md"].text
    assert docs["leave.txt"].title == "leave"
    html = docs["office.html"]
    assert html.title == "Office guide"
    assert html.text.splitlines() == ["Lisbon office", "Opened in 2011 & seats 120 people.",
                                      "Badge at reception", "Bikes in the yard"]
    assert "secret" not in html.text and "color" not in html.text and "enable js" not in html.text
    pdf = docs["report.pdf"]
    assert pdf.title == "Q3 report"
    assert "Quarterly report" in pdf.text and "Revenue grew by 14 percent." in pdf.text


def test_zip_gives_the_same_documents_as_the_folder(corpus: Path, tmp_path: Path) -> None:
    archive = tmp_path / "docs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(corpus.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(corpus).as_posix())
        zf.writestr("__MACOSX/._leave.txt", b"\x00\x05resource fork")
    assert load_documents(archive) == load_documents(corpus)


def test_html_to_text_drops_scripts_and_styles() -> None:
    title, text = html_to_text("<p>a<script>x()</script>b</p><style>p{}</style><div>c &lt; d</div>")
    assert (title, text) == ("", "ab\nc < d")


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_questions_csv_against_a_folder(corpus: Path, tmp_path: Path) -> None:
    qfile = tmp_path / "questions.csv"
    _write_csv(qfile, [
        {"id": "hotel", "question": "What is the hotel limit?", "answers": '["$180", "180 dollars"]',
         "evidence": "handbook/travel.md", "topic": "travel"},
        {"id": "", "question": "How many days of leave?", "answers": "25|twenty-five",
         "evidence": "leave.txt|handbook/travel.md", "topic": ""},
        {"id": "growth", "question": "How much did revenue grow?", "answers": "14 percent",
         "evidence": '["report.pdf"]', "topic": "finance"},
    ])
    suite = import_questions(qfile, corpus)
    assert suite.name == "questions"
    q = {x.id: x for x in suite.questions}
    assert list(q) == ["hotel", "q2", "growth"]
    assert q["hotel"].answers == ["$180", "180 dollars"]
    assert q["hotel"].metadata == {"topic": "travel"}
    assert q["q2"].answers == ["25", "twenty-five"]
    assert [e.doc_id for e in q["q2"].evidence] == ["leave.txt", "handbook/travel.md"]
    assert q["growth"].doc_ids is None  # the whole corpus is the context
    dump_suite(suite, tmp_path / "out.yaml")
    assert load_suite(tmp_path / "out.yaml") == suite


def test_questions_jsonl_against_a_zip(corpus: Path, tmp_path: Path) -> None:
    archive = tmp_path / "docs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in corpus.rglob("*.txt"):
            zf.write(p, p.relative_to(corpus).as_posix())
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(json.dumps({"id": "a", "question": "Leave?", "answers": ["25"],
                                 "evidence": [{"doc_id": "leave.txt", "start": 14, "end": 16}],
                                 "metadata": {"level": 1}, "source": "hr"}) + "\n", encoding="utf-8")
    suite = import_questions(qfile, archive, name="hr")
    q = suite.questions[0]
    assert (suite.name, q.evidence[0].start, q.evidence[0].end) == ("hr", 14, 16)
    assert q.metadata == {"level": 1, "source": "hr"}
    assert suite.documents[0].text[14:16] == "25"


@pytest.mark.parametrize(("rows", "expected"), [
    ([{"id": "a", "question": "q", "answers": "x", "evidence": "handbook/travel.txt"}],
     ["questions.csv", "line 2", "field 'evidence[0]'", "unknown document 'handbook/travel.txt'",
      "did you mean 'handbook/travel.md'"]),
    ([{"id": "a", "question": "q", "answers": "[1, 2", "evidence": ""}],
     ["line 2", "field 'answers'", "not valid JSON"]),
    ([{"id": "a", "question": "q", "answers": "", "evidence": ""},
      {"id": "a", "question": "q2", "answers": "", "evidence": ""}],
     ["line 3", "field 'id'", "duplicate question id 'a' (first at line 2)"]),
    ([{"id": "a", "question": "", "answers": "x", "evidence": ""}], ["line 2", "field 'question'"]),
    ([{"id": "a", "prompt": "q"}], ["line 1", "needs a 'question' column (found: id, prompt)"]),
])
def test_bad_question_files(corpus: Path, tmp_path: Path, rows: list[dict[str, str]],
                            expected: list[str]) -> None:
    qfile = tmp_path / "questions.csv"
    _write_csv(qfile, rows)
    with pytest.raises(UserInputError) as err:
        import_questions(qfile, corpus)
    for part in expected:
        assert part in str(err.value), f"{part!r} not in {str(err.value)!r}"


def test_bad_documents(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    with pytest.raises(UserInputError, match="no documents found"):
        load_documents(root)
    (root / "old.txt").write_bytes(b"caf\xe9 au lait")
    with pytest.raises(UserInputError, match=r"old\.txt, line 1: not valid UTF-8: byte 0xe9 at byte offset 3"):
        load_documents(root)
    (root / "old.txt").unlink()
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf")
    with pytest.raises(UserInputError, match=r"broken\.pdf: cannot read the PDF"):
        load_documents(root)
    (root / "broken.pdf").write_bytes(minimal_pdf([]))
    with pytest.raises(UserInputError, match="no extractable text"):
        load_documents(root)
    (root / "broken.pdf").unlink()
    (root / "big.txt").write_text("x" * 500, encoding="utf-8")
    with pytest.raises(UserInputError, match="more than the limit of 100 bytes"):
        load_documents(root, max_bytes=100)
    (tmp_path / "bad.zip").write_bytes(b"PK not really")
    with pytest.raises(UserInputError, match="not a valid zip file"):
        load_documents(tmp_path / "bad.zip")
    with pytest.raises(UserInputError, match="folder or .zip not found"):
        load_documents(tmp_path / "missing")


# ---------------------------------------------------------------------------------------- LongBench
def _jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_longbench_records_become_questions_with_their_own_context(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "hotpotqa.jsonl", [
        {"_id": "lb1", "input": "Who wrote it?", "context": "Passage 1: Ada wrote it.", "answers": ["Ada"],
         "length": 5, "dataset": "hotpotqa", "language": "en", "all_classes": None},
        {"_id": "lb2", "input": "Which class?", "context": "Passage 2: a cat.", "answers": ["animal"],
         "length": 4, "dataset": "trec", "language": "en", "all_classes": ["animal", "place"]},
        {"_id": "lb3", "input": "What else did Ada write?", "context": "Passage 1: Ada wrote it.",
         "answers": ["nothing"], "length": 5, "dataset": "hotpotqa", "language": "en", "all_classes": None},
    ])
    suite = import_longbench(path)
    assert suite.name == "hotpotqa"
    assert len(suite.documents) == 2  # the shared context is stored once
    q = {x.id: x for x in suite.questions}
    assert q["lb1"].doc_ids == q["lb3"].doc_ids != q["lb2"].doc_ids
    assert q["lb1"].evidence[0].doc_id == q["lb1"].doc_ids[0]
    assert suite.context_documents(q["lb2"])[0].text == "Passage 2: a cat."
    assert q["lb2"].metadata == {"length": 4, "dataset": "trec", "language": "en",
                                 "all_classes": ["animal", "place"], "task": "trec",
                                 "template_vars": {"input": "Which class?"}}
    assert suite.metadata["preset"] == "longbench" and suite.default_scorers == ["longbench"]
    dump_suite(suite, tmp_path / "s.jsonl")
    assert load_suite(tmp_path / "s.jsonl") == suite


def test_infinitebench_and_longbench_v2_records(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "ib.jsonl", [
        {"id": 0, "context": "Book text.", "input": "Who is the hero?", "answer": "Mia",
         "options": []},
        {"id": 1, "context": "Book text.", "input": "Pick one.", "answer": ["B"], "options": ["x", "y"]},
    ])
    q = {x.id: x for x in import_longbench(path).questions}
    assert q["0"].answers == ["Mia"]
    assert q["1"].question == "Pick one.\n(A) x\n(B) y"
    v2 = import_longbench(_jsonl(tmp_path / "v2.jsonl", [
        {"_id": "v2", "domain": "Single-Document QA", "question": "Which?", "choice_A": "one",
         "choice_B": "two", "choice_C": "three", "choice_D": "four", "answer": "C", "context": "Long doc.",
         "difficulty": "hard", "length": "short"}]))
    q2 = v2.questions[0]
    assert q2.question == "Which?\n(A) one\n(B) two\n(C) three\n(D) four"
    assert q2.answers == ["C"]
    assert q2.metadata["difficulty"] == "hard" and "choice_A" not in q2.metadata
    assert q2.metadata["template_vars"] == {"question": "Which?", "choice_A": "one", "choice_B": "two",
                                            "choice_C": "three", "choice_D": "four"}
    assert v2.metadata["preset"] == "longbench_v2" and v2.default_scorers == ["choice"]


def test_infinitebench_file_takes_its_task_from_the_file_name(tmp_path: Path) -> None:
    suite = import_longbench(_jsonl(tmp_path / "longbook_choice_eng.jsonl", [
        {"id": 3, "context": "Book.", "input": "Who did it?", "answer": ["the butler"],
         "options": ["the cook", "the butler", "the maid", "nobody"]}]))
    q = suite.questions[0]
    assert suite.metadata["preset"] == "infinitebench" and suite.default_scorers == ["infinitebench"]
    assert q.metadata["task"] == "longbook_choice_eng"
    assert q.answers == ["the butler", "B"]  # get_answer: [option text, letter]
    assert q.metadata["template_vars"]["OPTION_B"] == "the butler"
    code = import_longbench(_jsonl(tmp_path / "code_run.jsonl", [
        {"id": 0, "context": "def func_1(x): return x", "input": "What is func_1(-3)?", "answer": -3}]))
    assert code.questions[0].metadata["template_vars"]["func_call"] == "func_1(-3)"
    assert code.questions[0].metadata["template_vars"]["func"] == "func_1"


def test_mixed_benchmarks_in_one_file_are_refused(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "mixed.jsonl", [
        {"_id": "a", "input": "q", "context": "c", "answers": ["x"], "dataset": "hotpotqa"},
        {"_id": "b", "question": "Which?", "choice_A": "1", "choice_B": "2", "choice_C": "3", "choice_D": "4",
         "answer": "A", "context": "d"}])
    with pytest.raises(UserInputError, match="line 2: records from different benchmarks"):
        import_longbench(path)


def test_longbench_summaries_need_no_default_question(tmp_path: Path) -> None:
    suite = import_longbench(_jsonl(tmp_path / "gov_report.jsonl", [
        {"_id": "s", "input": "", "context": "A report.", "answers": ["Sum."], "dataset": "gov_report",
         "all_classes": None, "length": 3, "language": "en"}]))
    q = suite.questions[0]
    assert q.question == "Now, write a one-page summary of the report.\n\nSummary:"
    assert q.metadata["template_vars"] == {"input": ""}


def test_longbench_errors(tmp_path: Path) -> None:
    summary = {"_id": "s1", "input": "", "context": "A long report.", "answers": ["short summary"]}
    path = _jsonl(tmp_path / "gov.jsonl", [summary])
    with pytest.raises(UserInputError, match=r"gov\.jsonl, line 1, field 'input': .*--default-question"):
        import_longbench(path)
    suite = import_longbench(path, default_question="Summarise the report in one page.")
    assert suite.questions[0].question == "Summarise the report in one page."

    path.write_text('{"_id": "a", "input": "q", "context": "c", "answers": []}\n{"_id": "b", "input": "q"\n',
                    encoding="utf-8")
    with pytest.raises(UserInputError, match="line 2: not valid JSON"):
        import_longbench(path)
    _jsonl(path, [{"_id": "a", "input": "q", "answers": ["x"]}])
    with pytest.raises(UserInputError, match="line 1, field 'context': missing or empty 'context'"):
        import_longbench(path)
    _jsonl(path, [{"_id": "a", "input": "q", "context": "c"}, {"_id": "a", "input": "r", "context": "d"}])
    with pytest.raises(UserInputError, match="line 2, field '_id': duplicate question id 'a'"):
        import_longbench(path)


def test_infinitebench_tasks_without_a_ported_metric_keep_ctxevals_frame(tmp_path: Path) -> None:
    suite = import_longbench(_jsonl(tmp_path / "longbook_sum_eng.jsonl", [
        {"id": 0, "context": "A book.", "input": "Summarize the book.", "answer": ["A summary."]}]))
    assert "preset" not in suite.metadata and suite.questions[0].metadata["task"] == "longbench"
