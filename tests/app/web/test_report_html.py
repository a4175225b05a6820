"""The self-contained HTML report: one file with everything inline, drawn by chromium with no network."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from markupsafe import escape

from app.services.report_html import ReportInput, plotly_js, render_report_html
from evals.checks import evaluate_checks, parse_checks
from evals.summary import CaseRow, summarize

CHROMIUM = "/usr/bin/chromium"
HOSTILE = '<img src=x onerror="window.__pwned=1">'


def case_rows() -> list[CaseRow]:
    rows = []
    for i in range(12):
        length, depth = (2000, 8000, 30000)[i % 3], (0.0, 50.0, 100.0)[i // 4 % 3]
        for strategy, name, score in (("long_context", "long_context", 1.0 if length < 30000 else 0.0),
                                      ("rag[k=3]", "rag", 1.0 if i % 4 else 0.0), (HOSTILE, "rag", 0.5)):
            rows.append(CaseRow(
                case_id=f"{i}-{strategy}", question_id=f"q{i}", endpoint="local", strategy=strategy,
                strategy_name=name, scores={"exact_match": score, "retrieval_recall": None if name != "rag" else
                                            float(i % 2)}, prompt_tokens=length if name == "long_context" else 600,
                completion_tokens=8, cost_usd=0.0, latency_s=0.2 + i / 10, ttft_s=0.05 + i / 100,
                context_tokens=length, depth=depth))
    return rows


def render(tmp_path: Path) -> Path:
    rows = case_rows()
    summary = summarize(rows, primary="exact_match", n_boot=200)
    checks = evaluate_checks(parse_checks(["rag[k=3]:exact_match>=0.9"]), rows, summary, n_boot=200)
    html = render_report_html(ReportInput(
        title=f"nightly {HOSTILE}", summary=summary, rows=rows, facts=[("suite", f"handbook {HOSTILE}")],
        status="completed", checks=checks))
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def test_report_is_one_file_with_nothing_external(tmp_path):
    html = render(tmp_path).read_text(encoding="utf-8")
    assert plotly_js() in html  # plotly.js inline, from the installed package
    html = html.replace(plotly_js(), "")  # plotly's own text names its web site; the browser test checks requests
    assert "<link" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", html)
    for chart in ("chart-length", "chart-cost", "chart-latency_s", "chart-ttft_s", "chart-depth-0"):
        assert f'data-figure="{chart}-data"' in html
    summary = summarize(case_rows(), primary="exact_match", n_boot=200)
    assert summary.recommendation is not None
    assert 'data-field="recommendation"' in html and str(escape(summary.recommendation.sentence)) in html
    assert 'data-check="rag[k=3]:exact_match&gt;=0.9"' in html and ">failed<" in html
    assert HOSTILE not in html and "&lt;img src=x" in html  # run text is escaped everywhere


def test_report_without_cases_says_so(tmp_path):
    html = render_report_html(ReportInput(title="empty", summary=summarize([], primary=None), rows=[]))
    assert "No case has finished yet." in html and "data-figure=" not in html


@pytest.mark.browser
def test_report_renders_its_charts_in_chromium_with_the_network_blocked(tmp_path):
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    path = render(tmp_path)
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()

            def block(route):  # every request but the file itself is refused and recorded
                requests.append(route.request.url)
                if route.request.url == path.as_uri():
                    return route.continue_()
                return route.abort()

            page.route("**/*", block)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-charts-drawn]", timeout=20_000)
            drawn = int(page.get_attribute("body", "data-charts-drawn"))
            plots = page.locator("[data-figure]").count()
            svgs = page.locator("[data-figure] .main-svg").count()
            traces = page.evaluate("Array.from(document.querySelectorAll('[data-figure]'))"
                                   ".map(d => (d.data || []).length)")
            pwned = page.evaluate("window.__pwned === undefined")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert requests == [path.as_uri()], requests
    assert errors == []
    assert drawn == plots >= 5 and svgs >= plots
    assert all(n >= 1 for n in traces), traces
    assert pwned
