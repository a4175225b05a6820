"""Cross-site requests in a real browser (Debian's chromium through Playwright) against the default
embedded service: loopback, auth off, no token anywhere.

A page on another origin (``localhost`` on another port) submits forms and fires ``fetch`` at the
service: a multipart suite upload, a JSON-looking ``text/plain`` suite, a re-run and a cancel. Every
one is refused with 403 and nothing is stored. The dashboard's own forms keep working from the
service's origin.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.execution.processes import free_port, serving
from tests.app.factories import endpoint_body, suite_body
from tests.app.web.test_browser import CHROMIUM, LAUNCH_ARGS, _need_chromium

pytestmark = pytest.mark.browser


@pytest.fixture
def open_service(tmp_path: Path) -> Iterator[str]:
    """``ctxeval serve`` as a user starts it: loopback, auth auto (so off), nothing queued executes."""
    db = f"sqlite:///{tmp_path / 'ctxeval.db'}"
    port = free_port()  # the test's CTXEVAL_* settings (allowed hosts included) stay out of its environment
    with serving(db, port, tmp_path / "serve.log", "--execution", "none"):
        yield f"http://127.0.0.1:{port}"


def _attacker_page(target: str, run_id: int) -> str:
    json_name = '{"name": "csrf-plain", "questions": [{"id": "q", "question": "x"}], "pad": "'
    return f"""<!doctype html><html><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe><iframe name="sink3"></iframe>
<form id="rerun" method="post" action="{target}/api/runs/{run_id}/rerun" target="sink1"></form>
<form id="plain" method="post" action="{target}/api/suites" enctype="text/plain" target="sink2">
  <input type="hidden" name='{json_name}' value='"}}'></form>
<form id="page-rerun" method="post" action="{target}/runs/{run_id}/rerun" target="sink3"></form>
<script>
  document.getElementById("rerun").submit();
  document.getElementById("plain").submit();
  document.getElementById("page-rerun").submit();
  const data = new FormData();
  data.append("file", new Blob([JSON.stringify({{name: "csrf-upload", questions: [{{id: "q", question: "x"}}]}})]),
              "csrf.json");
  fetch("{target}/api/suites/upload", {{method: "POST", mode: "no-cors", body: data}});
  fetch("{target}/api/runs/{run_id}/cancel", {{method: "POST", mode: "no-cors"}});
</script></body></html>"""


@pytest.fixture
def attacker(open_service: str) -> Iterator[tuple[str, int]]:
    """Another origin: ``localhost`` on its own port, serving the attacking page."""
    with httpx.Client(base_url=open_service) as c:  # a script, not a browser: allowed
        eid = c.post("/api/endpoints", json=endpoint_body()).json()["id"]
        sid = c.post("/api/suites", json=suite_body()).json()["id"]
        run_id = c.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                           "strategies": [{"name": "no_context"}]}).json()["id"]
    page = _attacker_page(open_service, run_id).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{httpd.server_address[1]}/", run_id
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_cross_site_page_cannot_write_but_the_dashboard_can(open_service: str,
                                                              attacker: tuple[str, int]) -> None:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    attack_url, run_id = attacker
    refused: list[tuple[str, int]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(30_000)
            page = context.new_page()
            page.on("response", lambda r: refused.append((r.url, r.status)) if r.url.startswith(open_service) else None)
            page.goto(attack_url)
            deadline = time.monotonic() + 20
            while len(refused) < 5 and time.monotonic() < deadline:
                page.wait_for_timeout(100)
            attacked = list(refused)
            # the dashboard's own form, from its own origin, still works with no token
            page.goto(f"{open_service}/runs/{run_id}")
            with httpx.Client(base_url=open_service) as c:
                c.post(f"/api/runs/{run_id}/cancel")  # a finished run shows the Re-run form
            page.reload()
            page.click(f"form[action='/runs/{run_id}/rerun'] button[type=submit]")
            page.wait_for_url(lambda u: u.rstrip("/") != f"{open_service}/runs/{run_id}")
        finally:
            browser.close()
    assert sorted(status for _, status in attacked) == [403] * 5, attacked
    with httpx.Client(base_url=open_service) as c:
        names = {s["name"] for s in c.get("/api/suites").json()["data"]}
        runs = c.get("/api/runs").json()["data"]
    assert names == {"mini"}  # neither cross-site suite was stored
    assert len(runs) == 2 and {r["rerun_of"] for r in runs} == {None, run_id}  # only the dashboard's re-run
