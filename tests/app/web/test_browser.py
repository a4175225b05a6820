"""The dashboard in a real browser: Debian's chromium driven by Playwright.

One flow, as a person would use it, with auth on: sign in with a token, add an endpoint pointing at the
fake OpenAI server, probe it, upload a suite, start a run from the form, watch its progress bar reach
100%, read the report (every chart drawn), open a case and compare two strategies. Suite text and the
model's answers carry hostile markup that must show as text and never run. Any JavaScript console error
or page error fails the test. Screenshots of every page go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.app.execution.processes import free_port, serving
from tests.fakes.openai_server import FakeConfig, FakeServer, run_in_thread

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[3]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
KEY = "sk-browser-SECRET-4d1e"
XSS_ANSWER = "<script>window.__pwned = 'answer'</script>"
XSS_TEXT = "<img src=x onerror=\"window.__pwned = 'suite'\">"
FILLER = ("Grey clouds drifted over the harbour while the ferry waited. Gulls argued about bread crumbs. "
          "A bell rang twice in the old tower and nobody looked up. ")


def _need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _suite_file(folder: Path) -> Path:
    """Needles at three depths in contexts of two lengths, plus one whose answer is hostile markup."""
    docs, questions = [], []
    n = 0
    for repeat in (6, 24):
        for depth in (0, 50, 100):
            city = f"city{n}"
            needle = f"The harbour code of {city} is: {4100 + n}."
            before = int(repeat * depth / 100)
            text = FILLER * before + needle + " " + FILLER * (repeat - before)
            docs.append({"id": f"doc{n}", "title": f"Harbour log {n}", "text": text})
            questions.append({"id": f"q{n}", "question": f"What is the harbour code of {city}?",
                              "answers": [str(4100 + n)], "doc_ids": [f"doc{n}"], "metadata": {"depth": depth},
                              "evidence": [{"doc_id": f"doc{n}", "start": text.index(needle),
                                            "end": text.index(needle) + len(needle)}]})
            n += 1
    needle = f"The launch phrase of tower{n} is: {XSS_ANSWER}."
    text = FILLER * 3 + needle + " " + FILLER * 3
    docs.append({"id": f"doc{n}", "title": "Tower notes", "text": text})
    questions.append({"id": "hostile", "question": f"What is the launch phrase of tower{n}?",
                      "answers": [XSS_ANSWER], "doc_ids": [f"doc{n}"], "metadata": {"depth": 50, "note": XSS_TEXT},
                      "evidence": [{"doc_id": f"doc{n}", "start": text.index(needle),
                                    "end": text.index(needle) + len(needle)}]})
    path = folder / "harbour.json"
    path.write_text(json.dumps({"name": "harbour-needles", "description": f"Needles in harbour logs {XSS_TEXT}",
                                "documents": docs, "questions": questions, "default_scorers": ["exact_match"]}))
    return path


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    # slow enough that the run is still going when the pages first show it
    with run_in_thread(FakeConfig(api_key=KEY, first_token_latency_s=0.15, token_latency_s=0.002)) as server:
        yield server


@pytest.fixture
def service(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """``ctxeval serve`` in a subprocess on a fresh SQLite database, auth on, executing in-process."""
    db = f"sqlite:///{tmp_path / 'ctxeval.db'}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    token = subprocess.run([sys.executable, "-m", "app.cli", "token", "create", "browser", "--database-url", db],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True).stdout.strip()
    port = free_port()
    with serving(db, port, tmp_path / "serve.log", "--auth", "on", "--execution", "inprocess",
                 env={"CTXEVAL_QUEUE_POLLING_INTERVAL_S": "0.2"}):
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "tmp": tmp_path}


class Browser:
    """A page that records console errors and page errors, and saves numbered screenshots."""

    def __init__(self, page: Any, base: str, shots: Iterator[int] | None = None) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        self.shots = shots or itertools.count(1)
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def go(self, path: str) -> None:
        response = self.page.goto(self.base + path)
        # a page the service failed to render says so here, not as a missing element 30 s later
        # (None: Playwright saw no new response, e.g. the same document again)
        assert response is None or response.ok, f"GET {path}: {response.status}"
        self.page.wait_for_load_state("networkidle")

    def keep_failure(self, name: str) -> None:
        """The page as it was when a flow failed: a screenshot and its HTML, beside the others."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        try:
            self.page.screenshot(path=str(SHOTS / f"failed-{name}.png"), full_page=True)
            (SHOTS / f"failed-{name}.html").write_text(self.page.content(), encoding="utf-8")
        except Exception:  # the browser itself may be what failed
            pass

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.screenshot(path=str(SHOTS / f"{next(self.shots):02d}-{name}.png"), full_page=True)

    def assert_clean(self) -> None:
        assert not self.errors, "\n".join(self.errors)
        assert self.page.evaluate("window.__pwned === undefined"), "hostile markup ran"
        assert KEY not in self.page.content()


def test_dashboard_flow(service: dict[str, Any], fake: FakeServer) -> None:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(30_000)
            b = Browser(context.new_page(), service["url"])
            try:
                _flow(b, service, fake)
            except BaseException:
                b.keep_failure("dashboard")
                raise
        finally:
            browser.close()


def _flow(b: Browser, service: dict[str, Any], fake: FakeServer) -> None:
    page = b.page
    # --- sign in: every page sends an unsigned visitor to the login page
    b.go("/runs")
    assert "/login" in page.url
    b.shot("login")
    page.fill("#token", "not-a-token")
    page.click("#login button[type=submit]")
    assert page.locator(".error-box").is_visible()
    # the refused login answers 401, which the browser logs as a failed resource: that and nothing else
    assert all("status of 401" in e for e in b.errors) and len(b.errors) <= 1, b.errors
    b.errors.clear()
    page.fill("#token", service["token"])
    page.click("#login button[type=submit]")
    page.wait_for_url(re.compile(r"/runs$"))
    cookie = next(c for c in page.context.cookies() if c["name"] == "ctxeval_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    b.shot("runs-empty")

    # --- an endpoint on the fake server, then probe it
    b.go("/endpoints")
    page.fill("#ep-name", "fake-local")
    page.fill("#ep-base_url", fake.base_url)
    page.fill("#ep-model", "fake-model")
    page.fill("#ep-api_key", KEY)
    page.fill("#ep-context_window", "32768")
    page.fill("#ep-price_input", "0.5")
    page.fill("#ep-price_output", "1.5")
    page.fill("#ep-concurrency", "2")
    page.click("#add-endpoint button[type=submit]")
    page.wait_for_url(re.compile(r"/endpoints/\d+"))
    assert "a key is set" in page.inner_text("main")
    page.click("#probe button[type=submit]")
    page.wait_for_load_state("networkidle")
    probe = page.inner_text("#probe-result")
    assert re.search(r"chat works\s+yes", probe) and re.search(r"context window\s+32,768", probe), probe
    b.shot("endpoint-probed")
    b.assert_clean()
    b.go("/endpoints")
    b.shot("endpoints")

    # --- a suite uploaded as a file, and one generated from the form
    suite_path = _suite_file(service["tmp"])
    b.go("/suites")
    page.set_input_files("#file", str(suite_path))
    page.click("#upload-suite button[type=submit]")
    page.wait_for_url(re.compile(r"/suites/\d+"))
    assert XSS_TEXT in page.inner_text("main")  # shown as text
    b.shot("suite")
    b.go("/suites")
    page.select_option("#kind", "passkey")
    page.fill("#lengths", "256,512")
    page.fill("#depths", "0,50,100")
    page.click("#generate-suite button[type=submit]")
    page.wait_for_url(re.compile(r"/suites/\d+"))
    assert "passkey" in page.inner_text("h1")
    b.shot("suite-generated")
    b.go("/suites")
    b.shot("suites")
    b.assert_clean()

    # --- a run from the form, with the estimate shown before starting
    b.go("/runs/new")
    page.select_option("#suite_id", page.locator("#suite_id option", has_text="harbour-needles").get_attribute("value"))
    page.check("input[name='s.no_context.on']")
    page.fill("input[name='s.rag.k']", "2")
    page.fill("input[name='s.rag.chunk_tokens']", "64")
    page.fill("input[name='s.rag.overlap_tokens']", "8")
    page.check("input[name=scorers][value=exact_match]")
    page.locator("[data-est=cases]").filter(has_text="21").wait_for()
    b.shot("new-run")
    page.click("#start-run")
    page.wait_for_url(re.compile(r"/runs/\d+(\?|$)"))
    run_path = urlsplit(page.url).path
    b.shot("run-started")

    # --- progress reaches 100% on the runs list and on the report (both poll the JSON API with the
    # cookie); the report then reloads itself with the summary and charts
    other = Browser(page.context.new_page(), b.base, b.shots)
    other.go("/runs")
    row = other.page.locator(f"[data-run-row='{run_path.rsplit('/', 1)[1]}']")
    row.locator("[data-field=pct]").filter(has_text="100%").wait_for(timeout=120_000)
    # the last case is stored a moment before the run itself is marked completed
    row.locator("[data-field=status]").filter(has_text="completed").wait_for(timeout=60_000)
    other.shot("runs")
    other.assert_clean()
    other.page.close()
    page.locator("[data-run-progress] [data-field=pct]").filter(has_text="100%").wait_for(timeout=120_000)
    page.wait_for_load_state("networkidle")
    page.locator("#summary").wait_for(timeout=30_000)
    figures = page.locator("[data-figure]")
    assert figures.count() >= 6
    for i in range(figures.count()):
        div = figures.nth(i)
        div.locator(".main-svg").first.wait_for(state="attached")
        assert "js-plotly-plot" in (div.get_attribute("class") or ""), div.get_attribute("id")
    assert page.locator(".nodata").count() == 0, page.locator(".nodata").all_inner_texts()
    assert page.locator("[data-comparison]").is_visible()
    b.shot("run-report")
    b.assert_clean()

    # --- a case: the hostile answer is text, the prompt is there on demand
    b.go(run_path + "/cases")
    b.shot("cases")
    page.click("#cases a[href*='/questions/hostile']")
    page.wait_for_load_state("networkidle")
    answers = page.locator("[data-case^='long_context'] [data-answer]").inner_text()
    assert XSS_ANSWER in answers
    assert page.locator(".answer script, .answer img").count() == 0
    page.locator("[data-case^='rag'] [data-prompt] summary").click()
    assert "Question:" in page.locator("[data-case^='rag'] [data-prompt]").inner_text()
    assert page.locator("[data-chunk][data-gold] mark").count() >= 1
    b.shot("case")
    b.assert_clean()

    # --- paired comparison and the questions two strategies disagree on
    b.go(run_path + "/compare?a=long_context&b=no_context")
    assert page.locator("#disagreements tbody tr").count() >= 1
    b.shot("compare")
    b.assert_clean()
