"""``python -m bench.serve_app DATABASE_URL``: the service (no execution, auth off) on a free loopback
port, printing ``BENCH_APP_PORT=<port>``. A request with the header ``x-bench-cold: 1`` first empties the
in-process caches of report pages and of finished runs' summaries, so a request is measured as its first
view (and every view of a run still going) costs."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from app.main import create_app
from app.settings import Settings
from bench.fakeserver import bind


class ColdReports:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (b"x-bench-cold", b"1") in scope.get("headers", []):
            from app.services import run_views

            run_views.forget_memory()
        await self.app(scope, receive, send)


def main() -> None:
    settings = Settings(database_url=sys.argv[1], execution="none", auth="off", host="127.0.0.1")
    sock = bind()
    print(f"BENCH_APP_PORT={sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(ColdReports(create_app(settings)), log_level="warning", access_log=False,
                            lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
