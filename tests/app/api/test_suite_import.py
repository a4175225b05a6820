"""Own documents and questions uploaded to the service: the CLI's importers, rules and messages."""

from __future__ import annotations

import io
import json
import zipfile

from tests.evals.test_importers import minimal_pdf

QUESTIONS_CSV = ("id,question,answers,evidence,topic\n"
                 "q1,How many leave days?,25,leave.txt,hr\n"
                 "q2,How much did revenue grow?,14 percent,report.pdf,finance\n"
                 "q3,Where is the office?,Oslo,office.html,facilities\n")


def _docs() -> list[tuple[str, bytes]]:
    return [("leave.txt", b"Every employee gets 25 leave days a year."),
            ("report.pdf", minimal_pdf(["Quarterly report", "Revenue grew by 14 percent."])),
            ("office.html", b"<html><head><title>Office</title></head><body><p>The office is in Oslo.</p></body></html>")]


def _files(questions=("questions.csv", QUESTIONS_CSV.encode()), docs=None):
    files = [("questions", (questions[0], questions[1]))]
    files += [("documents", (n, b)) for n, b in (docs if docs is not None else _docs())]
    return files


def test_import_several_document_files_and_a_questions_csv(client):
    r = client.post("/api/suites/import", data={"name": "handbook"}, files=_files())
    assert r.status_code == 201, r.text
    suite = r.json()
    assert suite["name"] == "handbook" and suite["n_documents"] == 3 and suite["n_questions"] == 3
    qs = client.get(f"/api/suites/{suite['id']}/questions").json()["data"]
    assert [q["id"] for q in qs] == ["q1", "q2", "q3"]
    assert qs[1]["evidence"][0]["doc_id"] == "report.pdf"
    assert qs[0]["metadata"]["topic"] == "hr"
    again = client.post("/api/suites/import", data={"name": "handbook"}, files=_files())
    assert again.status_code == 200 and again.json()["id"] == suite["id"]


def test_import_a_zip_of_documents_and_jsonl_questions(client):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, b in _docs():
            zf.writestr(f"handbook/{n}", b)
        zf.writestr("__MACOSX/._leave.txt", b"junk")
    lines = "\n".join(json.dumps({"id": f"q{i}", "question": f"Q{i}?", "answers": ["x"],
                                  "evidence": [f"handbook/{n}"]}) for i, (n, _) in enumerate(_docs()))
    r = client.post("/api/suites/import", data={"name": "zipped"},
                    files=_files(("qs.jsonl", lines.encode()), [("docs.zip", buf.getvalue())]))
    assert r.status_code == 201, r.text
    assert r.json()["n_documents"] == 3


def test_import_errors_name_the_uploaded_file_line_and_field(client):
    bad = QUESTIONS_CSV + "q4,Who?,Ann,missing.txt,hr\n"
    r = client.post("/api/suites/import", data={"name": "h"}, files=_files(("questions.csv", bad.encode())))
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["source"] == "questions.csv" and err["line"] == 5 and err["field"] == "evidence[0]"
    assert "unknown document 'missing.txt'" in err["message"] and "ctxeval-import" not in r.text
    r = client.post("/api/suites/import", data={"name": "h"},
                    files=_files(docs=[("broken.pdf", b"%PDF-1.4\nnot a pdf")]))
    assert r.status_code == 422 and r.json()["error"]["source"] == "broken.pdf", r.text
    r = client.post("/api/suites/import", data={"name": " "}, files=_files())
    assert r.status_code == 422 and r.json()["error"]["field"] == "name"
    r = client.post("/api/suites/import", data={"name": "h"}, files=_files(docs=[]))
    assert r.status_code == 422 and r.json()["error"]["field"] == "documents"
    r = client.post("/api/suites/import", data={"name": "h"}, files=_files(("q.txt", b"x")))
    assert r.status_code == 422 and "must be a .csv or .jsonl" in r.json()["error"]["message"]


def test_import_longbench_jsonl(client):
    recs = [{"_id": "a1", "input": "Who wrote it?", "context": "It was written by Ann.", "answers": ["Ann"]},
            {"_id": "a2", "input": "", "context": "Long text to summarise.", "answers": ["summary"]}]
    body = "\n".join(json.dumps(r) for r in recs).encode()
    r = client.post("/api/suites/import", data={"name": "lb"}, files=[("longbench", ("qasper.jsonl", body))])
    assert r.status_code == 422 and r.json()["error"]["source"] == "qasper.jsonl" and r.json()["error"]["line"] == 2
    r = client.post("/api/suites/import", data={"name": "lb", "default_question": "Summarise."},
                    files=[("longbench", ("qasper.jsonl", body))])
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "lb" and r.json()["n_questions"] == 2


def test_a_csv_sent_to_the_suite_file_upload_points_at_the_import(client):
    r = client.post("/api/suites/upload", files={"file": ("questions.csv", QUESTIONS_CSV.encode())})
    assert r.status_code == 422 and "POST /api/suites/import" in r.json()["error"]["message"]


def test_browse_questions_and_documents_with_search(client):
    sid = client.post("/api/suites/import", data={"name": "handbook"}, files=_files()).json()["id"]
    r = client.get(f"/api/suites/{sid}/questions", params={"search": "REVENUE"})
    assert r.status_code == 200 and [q["id"] for q in r.json()["data"]] == ["q2"] and r.json()["count"] == 1
    assert client.get(f"/api/suites/{sid}/questions", params={"search": "oslo"}).json()["count"] == 1  # an answer
    assert client.get(f"/api/suites/{sid}/questions", params={"search": "100%_"}).json()["count"] == 0
    assert client.get(f"/api/suites/{sid}/questions").json()["count"] == 3
    docs = client.get(f"/api/suites/{sid}/documents", params={"search": "leave days"}).json()
    assert [d["id"] for d in docs["data"]] == ["leave.txt"] and docs["data"][0]["n_chars"] > 20
    assert client.get(f"/api/suites/{sid}/documents").json()["count"] == 3
    page = client.get(f"/suites/{sid}/browse", params={"search": "revenue"}).text
    assert 'data-question="q2"' in page and 'data-question="q1"' not in page
    page = client.get(f"/suites/{sid}/browse", params={"what": "documents", "search": "office"}).text
    assert 'data-document="office.html"' in page and "leave.txt" not in page
