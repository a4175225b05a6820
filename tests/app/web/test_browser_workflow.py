"""The team workflow in a real browser (Debian's chromium through Playwright), on ``ctxeval serve``
with auth on and the fake OpenAI server.

The API docs render with every request answered by this service (any other is blocked and fails the
test); the run's self-contained report file loads with one request and draws its charts; an endpoint entered OpenAI-style with ``/v1`` is probed, the window it found is applied, then
the endpoint is edited with its key left alone; a team's own documents and questions CSV are imported
and browsed; a run is started, edited and re-run with another ``k``; the two runs are compared with a
baseline; a run is renamed, tagged and deleted after a confirmation. Console and page errors fail it;
screenshots go to ``artifacts/screenshots/`` (``workflow-*``).
"""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.app.web.test_browser import CHROMIUM, KEY, LAUNCH_ARGS, Browser, _need_chromium, fake, service
from tests.evals.test_importers import minimal_pdf

pytestmark = pytest.mark.browser
__all__ = ["fake", "service"]  # the fixtures, shared with the dashboard flow

QUESTIONS = ("id,question,answers,evidence\n"
             "q1,What is the harbour code of Alder?,7301,alder.txt\n"
             "q2,What is the harbour code of Birch?,7302,birch.md\n"
             "q3,What is the harbour code of Cedar?,7303,cedar.html\n"
             "q4,What is the harbour code of Dunmore?,7304,dunmore.pdf\n")
FILLER = "Gulls argued about bread crumbs while the ferry waited. "


def _team_files(folder: Path) -> tuple[Path, list[Path]]:
    folder.mkdir()
    docs = {"alder.txt": (FILLER * 20 + "The harbour code of Alder is: 7301. " + FILLER * 10).encode(),
            "birch.md": ("# Birch\n\n" + FILLER * 15 + "The harbour code of Birch is: 7302.\n").encode(),
            "cedar.html": (f"<html><head><title>Cedar</title></head><body><p>{FILLER * 12}</p>"
                           "<p>The harbour code of Cedar is: 7303.</p></body></html>").encode(),
            "dunmore.pdf": minimal_pdf(["Dunmore harbour log", "The harbour code of Dunmore is: 7304."])}
    paths = []
    for name, data in docs.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    (folder / "questions.csv").write_text(QUESTIONS)
    return folder / "questions.csv", paths


def _wait_finished(base: str, token: str, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = httpx.get(f"{base}/api/runs/{run_id}", headers={"Authorization": f"Bearer {token}"}).json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not finish")


def test_team_workflow(service: dict[str, Any], fake: Any) -> None:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(30_000)
            outside: list[str] = []
            requested: list[str] = []

            def only_this_service(route: Any) -> None:
                host = urlsplit(route.request.url).hostname
                if host == "127.0.0.1":
                    route.continue_()
                else:  # nothing may leave the machine: record it and refuse it
                    outside.append(route.request.url)
                    route.abort()

            context.route("**/*", only_this_service)
            context.on("request", lambda r: requested.append(r.url))
            page = context.new_page()
            b = Browser(page, service["url"], shots=itertools.count(1))
            try:
                _flow(b, service, fake, outside, requested)
            except BaseException:
                b.keep_failure("workflow")
                raise
            assert outside == [], outside
        finally:
            browser.close()


def _shot(b: Browser, name: str) -> None:
    b.shot(f"workflow-{name}")


def _flow(b: Browser, service: dict[str, Any], fake: Any, outside: list[str], requested: list[str]) -> None:
    page = b.page
    base, token = service["url"], service["token"]
    b.go("/login")
    page.fill("#token", token)
    page.click("#login button[type=submit]")
    page.wait_for_url(re.compile(r"/runs$"))

    # --- API docs from the installed package: Swagger UI and ReDoc draw the schema offline
    b.go("/docs")
    page.locator(".swagger-ui .information-container .title").wait_for()
    assert "ctxeval" in page.locator(".swagger-ui .information-container .title").inner_text()
    assert page.locator(".swagger-ui .opblock").count() > 20
    page.get_by_text("/api/compare", exact=True).first.wait_for()
    _shot(b, "api-docs")
    b.go("/redoc")
    page.locator("redoc h1, .api-info h1").first.wait_for()
    page.get_by_text("Two or more runs against a baseline run", exact=False).first.wait_for(state="attached")
    _shot(b, "redoc")
    assert outside == [], f"requests to other sites: {outside}"
    b.assert_clean()

    # --- an endpoint given OpenAI-style (…/v1) with no window: the probe finds and applies it
    b.go("/endpoints")
    assert page.get_attribute("#ep-base_url", "placeholder") == "http://127.0.0.1:8001"
    page.fill("#ep-name", "fake-local")
    page.fill("#ep-base_url", fake.base_url + "/v1")
    page.fill("#ep-model", "fake-model")
    page.fill("#ep-api_key", KEY)
    page.fill("#ep-concurrency", "2")
    page.click("#add-endpoint button[type=submit]")
    page.wait_for_url(re.compile(r"/endpoints/\d+"))
    endpoint_path = urlsplit(page.url).path
    main = page.inner_text("main")
    assert f"at {fake.base_url}\n" in main + "\n" or fake.base_url + "/v1" not in main
    assert re.search(r"context window\s+unknown", main), main
    page.click("#probe button[type=submit]")
    page.wait_for_load_state("networkidle")
    settings = page.inner_text(".card:has(h2:text('Settings'))")
    assert re.search(r"context window\s+32,768\s+from probe", settings), settings
    assert page.locator("#probe-unreachable").count() == 0
    _shot(b, "endpoint-probed")
    # edit: a new concurrency, the key field left empty keeps the key
    page.click("#edit")
    page.wait_for_url(re.compile(r"/edit$"))
    assert page.input_value("#ep-api_key") == "" and page.input_value("#ep-context_window") == "32768"
    page.fill("#ep-concurrency", "3")
    _shot(b, "endpoint-edit")
    page.click("#edit-endpoint button[type=submit]")
    page.wait_for_url(re.compile(re.escape(endpoint_path) + r"(\?|$)"))
    main = page.inner_text("main")
    assert "a key is set" in main and re.search(r"concurrency\s+3", main), main
    b.assert_clean()

    # --- the team's own documents (four formats) and questions CSV, then browsing them
    questions, docs = _team_files(service["tmp"] / "team")
    b.go("/suites")
    page.click("#import-suite button[type=submit]")  # nothing chosen: the browser asks for the name
    assert page.evaluate("document.querySelector('#import-name').validity.valueMissing")
    page.fill("#import-name", "harbour-team")
    page.set_input_files("#import-questions", str(questions))
    page.set_input_files("#import-documents", [str(p) for p in docs])
    _shot(b, "import-form")
    page.click("#import-suite button[type=submit]")
    page.wait_for_url(re.compile(r"/suites/\d+"))
    assert "4 documents, 4 questions" in page.inner_text(".notice, main")
    suite_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    page.fill("#browse-search", "dunmore")
    page.click("#suite-search button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("#browse-questions tbody tr").count() == 1
    page.select_option("#what", "documents")
    page.fill("#search", "")
    page.click("#browse-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("#browse-documents tbody tr").count() == 4
    _shot(b, "suite-documents")
    b.assert_clean()

    # --- a run, then Edit and re-run with another k
    b.go(f"/runs/new?suite_id={suite_id}")
    page.fill("input[name='s.rag.k']", "2")
    page.fill("input[name='s.rag.chunk_tokens']", "64")
    page.fill("input[name='s.rag.overlap_tokens']", "8")
    page.check("input[name=scorers][value=exact_match]")
    page.click("#start-run")
    page.wait_for_url(re.compile(r"/runs/\d+(\?|$)"))
    first = urlsplit(page.url).path.rsplit("/", 1)[1]
    _wait_finished(base, token, first)
    b.go(f"/runs/{first}")
    page.click("#edit-rerun")
    page.wait_for_url(re.compile(r"/runs/new\?from=\d+"))
    assert page.input_value("input[name='s.rag.k']") == "2"
    assert page.is_checked("input[name='s.long_context.on']") and page.is_checked("input[name=scorers][value=exact_match]")
    assert page.input_value("#suite_id") == suite_id
    page.fill("input[name='s.rag.k']", "1")
    _shot(b, "edit-rerun-form")
    page.click("#start-run")
    page.wait_for_url(re.compile(r"/runs/\d+(\?|$)"))
    second = urlsplit(page.url).path.rsplit("/", 1)[1]
    assert second != first
    run = _wait_finished(base, token, second)
    assert [s["params"].get("k") for s in run["spec"]["strategies"] if s["name"] == "rag"] == [1]

    # --- runs list: headline scores; tick both and compare with the first as the baseline
    b.go("/runs")
    for rid in (first, second):
        row = page.locator(f"[data-run-row='{rid}']")
        assert row.count() == 1, f"run {rid} is not on the runs list: {page.inner_text('body')[:800]}"
        assert re.search(r"\d\.\d{3}", row.locator("[data-field=headline]").inner_text())
        row.locator("[data-field=status]").filter(has_text="completed").wait_for()
    page.check(f"[data-select-run='{first}']")
    page.check(f"[data-select-run='{second}']")
    _shot(b, "runs-selected")
    page.click("#compare-selected")
    page.wait_for_url(re.compile(r"/compare\?"))
    page.select_option("#baseline", first)
    page.click("#compare-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    card = page.locator(f"[data-run-comparison='{second}']")
    assert f"against baseline #{first}" in card.inner_text()
    rows = card.locator("[data-pair]")
    assert rows.count() == 2  # long_context with itself, rag[k=2] with rag[k=1] (matched by name)
    assert "matched by name" in card.inner_text()
    assert re.search(r"[+−-]?\d\.\d{3}", card.locator("[data-field=paired]").first.inner_text())
    links = card.locator("details.changed a")
    if links.count():
        href = links.first.get_attribute("href") or ""
        assert re.match(r"/runs/\d+/questions/q\d", href)
    _shot(b, "compare")
    b.assert_clean()

    # --- the run's report as one self-contained file: one request, every chart drawn from inline plotly
    requested.clear()
    b.go(f"/runs/{first}/report.html")
    assert requested == [f"{base}/runs/{first}/report.html"], requested
    plots = page.locator("[data-figure]")
    assert plots.count() >= 5
    for i in range(plots.count()):
        plots.nth(i).locator(".main-svg").first.wait_for(state="attached")
    _shot(b, "report-file")
    b.assert_clean()

    # --- rename, tag and annotate the baseline; delete the other after confirming
    b.go(f"/runs/{first}")
    page.click("details.labels summary")
    page.fill("#run-name", "rag k=2 baseline")
    page.fill("#run-tags", "baseline, harbour")
    page.fill("#run-notes", "before trying k=1")
    page.click("#run-labels button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "rag k=2 baseline" in page.inner_text("h1")
    _shot(b, "run-labelled")
    b.go("/runs?tag=baseline")
    assert page.locator("[data-run-row]").count() == 1
    assert "harbour" in page.locator(f"[data-run-row='{first}']").inner_text()
    _shot(b, "runs-tagged")
    b.go(f"/runs/{second}")
    page.click("details.labels summary")
    dialogs: list[str] = []
    page.once("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    page.click("#delete-run button[type=submit]")
    page.wait_for_url(re.compile(r"/runs(\?|$)"))
    assert dialogs and "cannot be undone" in dialogs[0]
    assert page.locator(f"[data-run-row='{second}']").count() == 0
    r = httpx.get(f"{base}/api/runs/{second}/cases", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404
    b.assert_clean()
