"""The dashboard's pages through FastAPI's TestClient: every page with data and empty, escaping of hostile
suite text, answers and strategy labels (also inside chart JSON), the endpoint key never shown, forms,
actions, and sign-in with auth on."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlmodel import col, select

from app.db import session_scope
from app.models import RunViewRecord, as_utc, utcnow
from app.services import cases as case_service
from app.web.render import CSP
from tests.app.web.conftest import make_client
from tests.app.web.data import HOSTILE, SECRET, stored_run

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
LABEL = "</script><script>alert(2)</script>"  # a strategy label that would end a script element


def seed(db: Any, **kw: Any) -> int:
    with session_scope(db) as s:
        return stored_run(s, **kw).id or 0


def pages_of(run_id: int) -> list[str]:
    return ["/runs", f"/runs/{run_id}", f"/runs/{run_id}/cases", f"/runs/{run_id}/questions/q1",
            f"/runs/{run_id}/questions/q0", f"/runs/{run_id}/compare?a=long_context&b=rag%5Bk%3D2%5D",
            "/runs/new", "/suites", "/suites/1", "/endpoints", "/endpoints/1"]


def assert_safe(html: str) -> None:
    assert HOSTILE not in html and "alert(2)</script>" not in html
    assert SECRET not in html
    assert len(re.findall(r"<script\b", html)) == html.count('<script src="/') + html.count(
        '<script type="application/json"')


# ------------------------------------------------------------------------------------------ rendering
def test_every_page_renders_empty(client: Any) -> None:
    for path, text in [("/runs", "No runs yet"), ("/runs/new", "A run needs"), ("/suites", "No suites yet"),
                       ("/endpoints", "No endpoints yet")]:
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
        assert text in r.text
        assert r.headers["content-security-policy"] == CSP
    assert client.get("/").headers["location"] == "/runs"


def test_every_page_renders_with_data_and_escapes_hostile_text(client: Any, db: Any) -> None:
    run_id = seed(db)
    for path in pages_of(run_id):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:2000])
        assert_safe(r.text)
    report = client.get(f"/runs/{run_id}").text
    assert ESCAPED in report  # the run's name
    question = client.get(f"/runs/{run_id}/questions/q1").text
    assert f"not sure {ESCAPED}" in question  # a hostile answer, shown as text
    assert ESCAPED in client.get("/suites/1").text  # hostile suite name, description and questions


def test_report_shows_summary_and_every_chart_with_its_n(client: Any, db: Any) -> None:
    run_id = seed(db)
    html = client.get(f"/runs/{run_id}").text
    assert 'id="summary"' in html and "n = 18 cases" in html
    figures = dict(re.findall(r'<script type="application/json" id="([\w-]+)-data">(.*?)</script>', html, re.S))
    assert {"chart-length", "chart-cost", "chart-latency_s", "chart-ttft_s", "chart-recall"} <= set(figures)
    assert {k for k in figures if k.startswith("chart-depth-")} == {"chart-depth-0", "chart-depth-1"}
    for key, raw in figures.items():
        fig = json.loads(raw)
        assert fig["data"], key
    titles = re.findall(r"<h3>(.*?)</h3>", html)
    assert all(re.search(r"\(n = \d+ cases\)", t) for t in titles), titles
    # long context (9 cases) scores 6/9; rag[k=2] scores 5/9; both buckets of the length chart have points
    length = json.loads(figures["chart-length"])
    means = {t["name"]: t["y"] for t in length["data"]}
    assert means["long_context"] == [pytest.approx(2 / 3)] * 3
    assert "disagree on" in html and 'data-comparison' in html


def test_report_splits_wrong_retrieval_answers_and_shows_judge_agreement(client: Any, db: Any) -> None:
    run_id = seed(db)
    html = client.get(f"/runs/{run_id}").text
    # rag[k=2] answers 4 of 9 wrong, each without its evidence retrieved; no judge, no agreement table
    row = re.search(r'<tr data-attribution="rag\[k=2\]">(.*?)</tr>', html, re.S)
    assert row is not None
    assert [c.strip() for c in re.findall(r'<td class="num">([^<]*)', row.group(1))] == ["9", "4", "4", "0"]
    assert 'id="judge-agreement"' not in html

    judged = seed(db, judge=True, strategies=("long_context", "rag"))
    html = client.get(f"/runs/{judged}").text
    # 18 cases, the judge differs from exact match on two of them (question 0 of each strategy)
    row = re.search(r'<tr data-agreement="llm_judge:correctness\|exact_match">(.*?)</tr>', html, re.S)
    assert row is not None
    assert re.findall(r'<td class="num">([^<]*)', row.group(1))[:1] == ["18"]
    assert "89%" in row.group(1)
    api = client.get(f"/api/runs/{judged}/summary").json()
    (agreement,) = [a for a in api["judge_agreement"] if a["versus"] == "exact_match"]
    assert (agreement["n"], agreement["judge_only"] + agreement["metric_only"]) == (18, 2)


def test_chart_json_escapes_a_label_that_would_close_the_script(client: Any, db: Any) -> None:
    run_id = seed(db, strategies=("long_context", LABEL))
    html = client.get(f"/runs/{run_id}").text
    assert_safe(html)
    raw = re.search(r'id="chart-cost-data">(.*?)</script>', html, re.S)
    assert raw is not None and "\\u003c/script\\u003e" in raw.group(1)
    names = [t["name"] for t in json.loads(raw.group(1))["data"]]
    assert LABEL in names  # the label survives the round trip as data


def test_charts_without_data_say_why(client: Any, db: Any) -> None:
    run_id = seed(db, strategies=("long_context", "no_context"), depth=False)
    html = client.get(f"/runs/{run_id}").text
    notes = dict(re.findall(r'data-nodata="([\w-]+)">(.*?)</div>', html, re.S))
    assert "records where its evidence sits" in notes["chart-depth"]
    assert "no retrieval strategy" in notes["chart-recall"]
    assert "chart-length" not in notes and "chart-cost" not in notes


def test_run_without_cases_shows_progress_only(client: Any, db: Any) -> None:
    run_id = seed(db, status="running", with_cases=False)
    html = client.get(f"/runs/{run_id}").text
    assert "No case has finished yet" in html and "data-reload-on-finish" in html
    assert 'data-status="running"' in html and "/assets/plotly.min.js" not in html


def test_question_page_marks_the_evidence_inside_retrieved_chunks(client: Any, db: Any) -> None:
    run_id = seed(db)
    html = client.get(f"/runs/{run_id}/questions/q0").text
    assert "<mark>The magic number of city0 is: 1000.</mark>" in html
    assert "data-gold" in html and "Exact prompt (2 messages)" in html
    assert "Evidence sits at <b>0.0%</b>" in html
    r = client.get(f"/runs/{run_id}/questions/nope")
    assert r.status_code == 404 and "not found" in r.text and "<html" in r.text


def test_missing_pages_are_html_while_the_api_stays_json(client: Any) -> None:
    page = client.get("/runs/999")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "run 999 not found" in page.text
    api = client.get("/api/runs/999")
    assert api.status_code == 404 and api.json()["error"]["message"] == "run 999 not found"
    assert client.get("/nowhere").status_code == 404


def test_plotly_js_is_served_from_the_installed_package(client: Any) -> None:
    from pathlib import Path

    import plotly

    r = client.get("/assets/plotly.min.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert r.content == (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/app.js").status_code == 200


# -------------------------------------------------------------------------------------------- forms
def test_add_endpoint_never_renders_the_key_back(client: Any) -> None:
    bad = {"name": "x y", "base_url": "ftp://nowhere", "model": "m", "api_key": SECRET}
    r = client.post("/endpoints", data=bad)
    assert r.status_code == 422 and "error-box" in r.text
    assert SECRET not in r.text and 'name="api_key" value=""' in r.text
    assert 'value="ftp://nowhere"' in r.text  # other fields are kept for correction
    r = client.post("/endpoints", data={"name": "good", "base_url": "http://127.0.0.1:9/v1", "model": "m",
                                        "api_key": SECRET, "price_input": "0.5"})
    assert r.status_code == 303 and r.headers["location"].startswith("/endpoints/1")
    for path in ("/endpoints", "/endpoints/1", "/runs/new"):
        html = client.get(path).text
        assert SECRET not in html
    assert "a key is set (never shown)" in client.get("/endpoints/1").text


def test_new_run_form_estimates_then_starts_a_run(client: Any, db: Any) -> None:
    seed(db, with_cases=False)
    form = {"_submitted": "1", "suite_id": "1", "endpoint_ids": "1", "s.long_context.on": "on",
            "s.rag.on": "on", "s.rag.k": "2, 4", "s.rag.chunk_tokens": "256", "scorers": "exact_match"}
    r = client.post("/runs/new", data={**form, "action": "estimate"})
    assert r.status_code == 200, r.text
    assert re.search(r'data-est="cases">27<', r.text)  # 9 questions × (long_context, rag[k=2], rag[k=4])
    fragment = client.post("/runs/new/estimate", data=form)
    assert 'data-est="cases">27<' in fragment.text and "<html" not in fragment.text
    r = client.post("/runs/new", data={**form, "action": "start"})
    assert r.status_code == 303, r.text
    new_id = int(r.headers["location"].split("/")[2].split("?")[0])
    run = client.get(f"/api/runs/{new_id}").json()
    assert [(s["name"], s["params"]) for s in run["spec"]["strategies"]] == [
        ("long_context", {}), ("rag", {"k": 2}), ("rag", {"k": 4})]
    assert run["total_cases"] == 27 and run["spec"]["scorers"][0] == "exact_match"


def test_new_run_form_names_the_field_to_fix(client: Any, db: Any) -> None:
    seed(db, with_cases=False)
    base = {"_submitted": "1", "suite_id": "1", "endpoint_ids": "1", "s.rag.on": "on"}
    r = client.post("/runs/new", data={**base, "s.rag.k": "five", "action": "start"})
    assert r.status_code == 422 and "s.rag.k" in r.text and "five" in r.text
    r = client.post("/runs/new", data={"_submitted": "1", "suite_id": "1", "endpoint_ids": "1", "action": "start"})
    assert r.status_code == 422 and "tick at least one strategy" in r.text
    r = client.post("/runs/new", data={**base, "s.rag.overlap_tokens": "500", "action": "start"})
    assert r.status_code == 422 and "overlap_tokens must be smaller than chunk_tokens" in r.text
    fragment = client.post("/runs/new/estimate", data={**base, "s.rag.k": "0"})
    assert fragment.status_code == 200 and "greater than or equal to 1" in fragment.text


def test_cancel_and_resume_buttons(client: Any, db: Any) -> None:
    run_id = seed(db, status="running", with_cases=False)
    listed = client.get("/runs").text
    assert f'action="/runs/{run_id}/cancel"' in listed
    r = client.post(f"/runs/{run_id}/cancel")
    assert r.status_code == 303 and client.get(f"/api/runs/{run_id}").json()["status"] == "cancelled"
    assert f'action="/runs/{run_id}/resume"' in client.get(f"/runs/{run_id}").text
    r = client.post(f"/runs/{run_id}/resume")
    assert r.status_code == 303
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "queued"
    conflict = client.post(f"/runs/{run_id}/resume")
    assert conflict.status_code == 409 and "queued" in conflict.text and "<html" in conflict.text


def test_runs_filters(client: Any, db: Any) -> None:
    done = seed(db)
    running = seed(db, status="running", with_cases=False)
    html = client.get("/runs", params={"status": "running"}).text
    assert f'data-run-row="{running}"' in html and f'data-run-row="{done}"' not in html
    assert client.get("/runs", params={"suite_id": "42"}).text.count("data-run-row") == 0


def test_upload_a_suite_file(client: Any) -> None:
    from tests.app.web.data import suite

    body = suite(3).model_dump_json().encode()
    r = client.post("/suites/upload", files={"file": ("mine.json", body, "application/json")})
    assert r.status_code == 303, r.text
    html = client.get(r.headers["location"]).text
    assert ESCAPED in html and HOSTILE not in html
    assert re.search(r'<div class="v">3</div><div class="k">questions</div>', html)
    again = client.post("/suites/upload", files={"file": ("mine.json", body, "application/json")})
    assert "Already%20stored" in again.headers["location"]
    r = client.post("/suites/upload", files={"file": ("broken.json", b'{"name": "x",\n "questions": [}',
                                                        "application/json")})
    assert r.status_code == 422 and "broken.json" in r.text and "line 2" in r.text


def test_generate_a_suite_from_the_form(client: Any) -> None:
    html = client.get("/suites").text
    assert '<option value="passkey"' in html and '<option value="niah"' in html
    r = client.post("/suites/generate", data={"kind": "passkey", "lengths": "256,512", "depths": "0, 100",
                                              "seed": "3"})
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"]).text
    assert re.search(r'<div class="v">4</div><div class="k">questions</div>', page)
    depths = re.search(r"Evidence depths</h3>\s*<p[^>]*>(.*?)</p>", page, re.S)
    assert depths is not None and depths.group(1).startswith('<span class="tag">0%</span>')  # measured depths
    assert depths.group(1).count('class="tag"') >= 2


@pytest.mark.parametrize(("form", "needle"), [
    ({"kind": "passkey", "lengths": "many"}, "&#39;many&#39; is not a number of tokens"),
    ({"kind": "nope"}, "unknown suite kind &#39;nope&#39;"),
    ({"kind": "passkey", "seed": "1", "params": "seed: 2"}, "&#39;seed&#39; is given both"),
    ({"kind": "passkey", "params": "[1, 2]"}, "must be a mapping"),
    ({"kind": "passkey", "params": "depths: [150]"}, "between 0 and 100"),
])
def test_generate_names_what_to_fix(client: Any, form: dict[str, str], needle: str) -> None:
    r = client.post("/suites/generate", data=form)
    assert r.status_code == 422 and needle in r.text, r.text[-3000:]
    assert f'value="{form.get("lengths", "")}"' in r.text  # the form keeps what was typed


# --------------------------------------------------------------------------------------------- auth
@pytest.fixture
def auth_client(database_url: str) -> Any:
    with make_client(database_url, auth="on") as c:
        yield c


def _token(db: Any) -> str:
    from app import crud

    with session_scope(db) as s:
        return crud.create_token(s, name="pages")[1]


def test_auth_on_sends_pages_to_login_and_the_cookie_opens_them(auth_client: Any, db: Any) -> None:
    run_id = seed(db)
    token = _token(db)
    r = auth_client.get(f"/runs/{run_id}")
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=%2Fruns%2F{run_id}"
    assert auth_client.get("/api/runs").status_code == 401
    bad = auth_client.post("/login", data={"token": "nope", "next": "/runs"})
    assert bad.status_code == 401 and "not valid" in bad.text and "ctxeval_token" not in bad.headers.get("set-cookie", "")
    ok = auth_client.post("/login", data={"token": token, "next": f"/runs/{run_id}"})
    assert ok.status_code == 303 and ok.headers["location"] == f"/runs/{run_id}"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    for path in pages_of(run_id):
        page = auth_client.get(path)
        assert page.status_code == 200, path
        assert token not in page.text
    assert auth_client.get(f"/api/runs/{run_id}").json()["progress"]["done"] == 18  # the pages' own polling
    out = auth_client.post("/logout")
    assert out.status_code == 303 and 'ctxeval_token=""' in out.headers["set-cookie"]
    auth_client.cookies.clear()
    assert auth_client.get("/runs").status_code == 303


def test_login_never_redirects_off_site(auth_client: Any, db: Any) -> None:
    token = _token(db)
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example"):
        r = auth_client.post("/login", data={"token": token, "next": target})
        assert r.headers["location"] == "/runs", target


def test_cross_site_posts_are_refused(auth_client: Any, db: Any) -> None:
    run_id = seed(db, status="running", with_cases=False)
    auth_client.post("/login", data={"token": _token(db), "next": "/runs"})
    evil = {"Origin": "https://evil.example"}
    r = auth_client.post(f"/runs/{run_id}/cancel", headers=evil)
    assert r.status_code == 403
    r = auth_client.post(f"/api/runs/{run_id}/cancel", headers=evil)
    assert r.status_code == 403
    assert auth_client.get(f"/api/runs/{run_id}").json()["status"] == "running"
    same = auth_client.post(f"/runs/{run_id}/cancel", headers={"Origin": "http://testserver"})
    assert same.status_code == 303


def test_auth_off_needs_no_login(client: Any) -> None:
    assert client.get("/runs").status_code == 200
    assert client.get("/login").headers["location"] == "/runs"


# ----------------------------------------------------------------------------- the shared JSON API
def test_generate_and_summary_over_the_api_match_the_pages(client: Any) -> None:
    kinds = client.get("/api/generators").json()["kinds"]
    assert "passkey" in kinds and "niah" in kinds
    body = {"kind": "passkey", "params": {"lengths": [256], "depths": [0, 100]}}
    r = client.post("/api/suites/generate", json=body)
    assert r.status_code == 201, r.text
    suite_id = r.json()["id"]
    assert client.post("/api/suites/generate", json=body).status_code == 200  # same content, same version
    info = client.get(f"/api/suites/{suite_id}/summary").json()
    assert info["questions"] == 2 and info["depths"][0] == 0.0 and len(info["first_questions"]) == 2
    from app.web.render import compact

    page = client.get(f"/suites/{suite_id}").text
    assert f'<div class="v">{compact(info["corpus_tokens"])}</div><div class="k">corpus tokens' in page
    bad = client.post("/api/suites/generate", json={"kind": "passkey", "params": {"depths": [150]}})
    assert bad.status_code == 422 and bad.json()["error"]["field"]


def test_report_follows_new_cases(client: Any, db: Any) -> None:
    from tests.app.web.data import case, suite

    run_id = seed(db, status="running", with_cases=False)
    assert "No case has finished yet" in client.get(f"/runs/{run_id}").text
    with session_scope(db) as s:
        for i in range(3):
            case_service.store(s, run_id=run_id, position=i, result=case(suite(9), i, "long_context"))
    html = client.get(f"/runs/{run_id}").text
    assert 'id="summary"' in html and "n = 3 cases" in html


def test_new_run_form_takes_more_scorers_a_judge_and_embeddings(client: Any, db: Any) -> None:
    seed(db, with_cases=False, endpoints=("fake", "judge"))
    form = {"_submitted": "1", "suite_id": "1", "endpoint_ids": "1", "s.rag.on": "on", "s.rag.retriever": "hybrid",
            "scorers": "exact_match", "more_scorers": "recall_at_k:3, llm_judge", "judge_endpoint_id": "2",
            "embeddings_source": "local", "action": "start"}
    r = client.post("/runs/new", data=form)
    assert r.status_code == 303, r.text[-2000:]
    spec = client.get(f"/api/runs/{r.headers['location'].split('/')[2].split('?')[0]}").json()["spec"]
    assert spec["scorers"][:3] == ["exact_match", "recall_at_k:3", "llm_judge"]
    assert spec["strategies"] == [{"name": "rag", "params": {"retriever": "hybrid"}, "label": None}]
    assert spec["judge"]["name"] == "judge" and spec["embeddings"]["source"] == "local"
    r = client.post("/runs/new", data={**form, "more_scorers": "nonsense"})
    assert r.status_code == 422 and "unknown scorer" in r.text


def test_a_finished_runs_summary_is_computed_once_and_an_active_runs_per_stored_case(client: Any, db: Any,
                                                                                   monkeypatch: Any) -> None:
    from app.services import run_views, statistics
    from tests.app.web.data import case, suite

    calls: list[int] = []
    real = statistics.summarize

    def counting(rows: Any, **kw: Any) -> Any:
        calls.append(len(rows))
        return real(rows, **kw)

    monkeypatch.setattr(statistics, "summarize", counting)
    done = seed(db)
    first = client.get(f"/api/runs/{done}/summary").json()
    assert client.get(f"/api/runs/{done}/summary").json() == first
    client.get(f"/runs/{done}")  # the page shares the stored summary
    assert calls == [18]
    run_views.forget_memory()  # another process, or a restart: the stored summary is read, not computed
    assert client.get(f"/api/runs/{done}/summary").json() == first
    assert calls == [18]
    assert client.get(f"/api/runs/{done}/summary", params={"primary": "retrieval_recall"}).json()["primary"] \
        == "retrieval_recall"
    assert len(calls) == 2
    active = seed(db, status="running")
    a1 = client.get(f"/api/runs/{active}/summary").json()
    assert client.get(f"/api/runs/{active}/summary").json() == a1  # nothing new stored: not computed again
    assert len(calls) == 3
    with session_scope(db) as s:
        case_service.store(s, run_id=active, position=99, result=case(suite(9), 8, "rag[k=2]", "fake2"))
    assert client.get(f"/api/runs/{active}/summary").json()["n"] == a1["n"] + 1
    assert len(calls) == 4
    with session_scope(db) as s:  # an active run's views are never stored
        assert s.execute(select(RunViewRecord).where(col(RunViewRecord.run_id) == active)).first() is None
    # a slow computation (a run of 100k cases) is not repeated for every new case: here every one counts as slow
    monkeypatch.setattr(run_views, "SLOW_S", 0.0)
    monkeypatch.setattr(run_views, "COST_FACTOR", 1e9)
    with session_scope(db) as s:
        case_service.store(s, run_id=active, position=100, result=case(suite(9), 7, "rag[k=2]", "fake2"))
    assert client.get(f"/api/runs/{active}/summary").json()["n"] == a1["n"] + 1  # served again: a stale view
    assert len(calls) == 4
    monkeypatch.setattr(run_views, "COST_FACTOR", 0.0)
    assert client.get(f"/api/runs/{active}/summary").json()["n"] == a1["n"] + 2
    assert len(calls) == 5


def test_a_finished_runs_views_are_stored_when_it_finishes_and_dropped_when_it_resumes(
        client: Any, db: Any, monkeypatch: Any) -> None:
    from app.models import RunRecord
    from app.services import run_views, statistics
    from app.services import runs as run_service

    run_id = seed(db, status="running")
    with session_scope(db) as s:
        record = s.get(RunRecord, run_id)
        record.status, record.finished_at = "failed", utcnow()
        s.add(record)
    run_views.warm(db, run_id)  # what the execution does once it has marked the run finished
    with session_scope(db) as s:
        kinds = s.execute(select(RunViewRecord.key).where(col(RunViewRecord.run_id) == run_id)).scalars().all()
    assert len(kinds) == 4  # the progress, the headline scores, the summary and the report page's data
    run_views.forget_memory()
    monkeypatch.setattr(statistics, "summarize", lambda *a, **k: pytest.fail("a stored view was computed again"))
    stored = client.get(f"/api/runs/{run_id}/summary").json()
    assert stored["n"] == 18
    assert 'id="summary"' in client.get(f"/runs/{run_id}").text
    monkeypatch.undo()

    class NoDispatch:
        def start_run(self, *a: Any) -> None: ...
        def cancel_run(self, *a: Any) -> None: ...

    with session_scope(db) as s:
        run_service.resume(s, NoDispatch(), run_id)  # type: ignore[arg-type]
        assert s.execute(select(RunViewRecord).where(col(RunViewRecord.run_id) == run_id)).first() is None
        from tests.app.web.data import case, suite

        case_service.store(s, run_id=run_id, position=99, result=case(suite(9), 8, "rag[k=2]", "fake2"))
        record = s.get(RunRecord, run_id)
        record.status, record.finished_at = "completed", utcnow()
        s.add(record)
    now = client.get(f"/api/runs/{run_id}").json()["progress"]["done"]
    assert now != 18  # resuming dropped the cases whose identity left the plan, and stored one more
    assert client.get(f"/api/runs/{run_id}/summary").json()["n"] == now  # not the view stored before


def test_a_finished_runs_progress_is_aggregated_once(client: Any, db: Any, monkeypatch: Any) -> None:
    from app import crud

    done, active = seed(db), seed(db, status="running")
    first = {r["id"]: r["progress"] for r in client.get("/api/runs").json()["data"]}
    assert first[done]["done"] == first[active]["done"] == 18
    asked: list[list[int]] = []
    real = crud.progress_rows

    def counting(session: Any, *, run_ids: Any) -> Any:
        asked.append(list(run_ids))
        return real(session, run_ids=run_ids)

    monkeypatch.setattr(crud, "progress_rows", counting)
    again = {r["id"]: r["progress"] for r in client.get("/api/runs").json()["data"]}
    assert client.get(f"/api/runs/{done}").json()["progress"] == first[done]
    assert again == first
    assert asked == [[active], [active]] or asked == [[active]]  # the finished run's are stored
    assert 'id="summary"' in client.get(f"/runs/{done}").text and all(done not in ids for ids in asked)


def test_a_stored_view_of_an_earlier_state_is_not_served(client: Any, db: Any) -> None:
    """A view carries the run's attempt, status and finish time; one stored for another state is stale."""
    from app.models import RunRecord

    run_id = seed(db)
    with session_scope(db) as s:
        s.add(RunViewRecord(run_id=run_id, key=run_views_key(s, run_id), state="0|completed|", body='{"n": -1}'))
    assert client.get(f"/api/runs/{run_id}/summary").json()["n"] == 18
    with session_scope(db) as s:
        record = s.get(RunRecord, run_id)
        assert record is not None
        states = s.execute(select(RunViewRecord.state).where(col(RunViewRecord.run_id) == run_id)).scalars().all()
    assert states == [f"1|completed|{as_utc(record.finished_at).isoformat() if record.finished_at else ''}"]


def run_views_key(session: Any, run_id: int) -> str:
    from app.services import run_views, statistics

    return run_views.view_key("summary", [statistics.primary_scorer(session, run_id), [], 0.05, 0.02, 0.856])



def test_estimate_box_says_how_many_long_context_cases_will_not_fit(client: Any) -> None:
    from evals.suites.ruler_niah import generate_ruler_niah_single
    from evals.tokens import local_tokenizer

    suite = generate_ruler_niah_single({"lengths": [2000, 8192]}, local_tokenizer("cl100k"))
    assert client.post("/api/suites", json=suite.model_dump(mode="json")).status_code == 201
    r = client.post("/api/endpoints", json={"name": "w4k", "base_url": "http://127.0.0.1:9/v1", "model": "m",
                                            "context_window": 4096})
    assert r.status_code == 201, r.text
    form = {"_submitted": "1", "suite_id": "1", "endpoint_ids": str(r.json()["id"]), "s.long_context.on": "on"}
    fragment = client.post("/runs/new/estimate", data=form)
    assert re.search(r'data-est="over_window"[^>]*>1 long-context case\(s\) will not fit', fragment.text), fragment.text


def test_generate_over_the_api_refuses_a_server_side_haystack_file_and_takes_the_text(client: Any) -> None:
    bad = client.post("/api/suites/generate", json={"kind": "niah", "params": {"haystack_file": "/etc/passwd"}})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "haystack_file"
    text = "The river runs to the sea. The sea is wide and deep. " * 400
    r = client.post("/api/suites/generate", json={"kind": "niah", "params": {
        "lengths": [1200], "depths": [50], "haystack_text": text}})
    assert r.status_code == 201, r.text


def test_generate_form_takes_a_haystack_file_read_only_as_far_as_needed(client: Any, db: Any) -> None:
    from app import crud
    from app.services import suites as suite_service
    from app.web.pages_library import HAYSTACK_BYTES_PER_TOKEN

    html = client.get("/suites").text
    assert 'enctype="multipart/form-data"' in html and 'name="haystack"' in html
    prose = ("The lighthouse keeper climbed the stairs at dusk. The lamp was cleaned and lit. " * 20_000).encode()
    assert len(prose) > HAYSTACK_BYTES_PER_TOKEN * (1200 + 64)  # more than the 1,200-token suite reads
    r = client.post("/suites/generate", data={"kind": "niah", "lengths": "1200", "depths": "50"},
                    files={"haystack": ("keeper.txt", prose, "text/plain")})
    assert r.status_code == 303, r.text
    suite_id = int(r.headers["location"].split("/")[2].split("?")[0])
    with session_scope(db) as session:
        suite = crud.load_suite(session, record=suite_service.get_record(session, suite_id))
    assert "The lighthouse keeper climbed the stairs at dusk." in suite.documents[0].text
    bad = client.post("/suites/generate", data={"kind": "niah", "lengths": "1200"},
                      files={"haystack": ("bin.txt", b"\xff\xfe\x00\x01" * 10, "text/plain")})
    assert bad.status_code == 422 and "not UTF-8 text" in bad.text


def test_the_report_opens_with_the_recommendation(client: Any, db: Any) -> None:
    run_id = seed(db)
    html = client.get(f"/runs/{run_id}").text
    sentence = re.search(r'<p class="sentence" data-field="recommendation">(.*?)</p>', html, re.S)
    assert sentence is not None and sentence.group(1).startswith(("Use ", "No recommendation"))
    # the verdict comes before the run's details, the summary table and the charts
    assert html.index('id="recommendation"') < html.index('id="summary"') < html.index("chart-length")
    assert "Wilson for 0/1 scores, BCa bootstrap otherwise" in html
    api = client.get(f"/api/runs/{run_id}/summary").json()["recommendation"]["sentence"]
    assert html_unescape(sentence.group(1)) == api


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_new_run_form_overrides_the_prompt_preset(client: Any, db: Any) -> None:
    seed(db, with_cases=False)
    html = client.get("/runs/new").text
    assert re.search(r'<option value="ruler"\s*>ruler</option>', html), html[-4000:]
    assert '<option value="">the suite&#39;s</option>' in html or "<option value=\"\">the suite's</option>" in html
    form = {"_submitted": "1", "suite_id": "1", "endpoint_ids": "1", "s.long_context.on": "on",
            "scorers": "exact_match", "preset": "litm", "action": "start"}
    r = client.post("/runs/new", data=form)
    assert r.status_code == 303, r.text
    new_id = int(r.headers["location"].split("/")[2].split("?")[0])
    assert client.get(f"/api/runs/{new_id}").json()["spec"]["preset"] == "litm"
