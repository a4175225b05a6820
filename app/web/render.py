"""Templates (autoescaped everywhere), display filters, and HTML error pages."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.responses import HTMLResponse

WEB_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

# Scripts only from this site: model output that slipped past escaping still could not run.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def num(v: Any, digits: int = 0) -> str:
    if _missing(v):
        return "–"
    return f"{v:,.{digits}f}"


def compact(v: Any) -> str:
    """12,345 → 12.3K; 4,500,000 → 4.5M."""
    if _missing(v):
        return "–"
    v = float(v)
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= size:
            return f"{v / size:.1f}{unit}"
    return f"{v:,.0f}"


def usd(v: Any) -> str:
    if _missing(v):
        return "–"
    if v == 0:
        return "$0"
    if abs(v) >= 100:
        return f"${v:,.0f}"
    if abs(v) >= 1:
        return f"${v:,.2f}"
    if abs(v) < 0.001:
        return "$" + f"{v:.7f}".rstrip("0")
    return f"${v:.4f}"


def secs(v: Any) -> str:
    if _missing(v):
        return "–"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def duration(v: Any) -> str:
    if _missing(v):
        return "–"
    s = int(round(v))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def pct(v: Any, digits: int = 0) -> str:
    return "–" if _missing(v) else f"{v * 100:.{digits}f}%"


def score(v: Any) -> str:
    return "–" if _missing(v) else f"{v:.3f}"


def breakable(v: Any) -> Markup:
    """A strategy key that may wrap after its commas: ``rag[k=2,<wbr>chunk_tokens=64]`` (escaped)."""
    return Markup(",<wbr>").join(str(v).split(","))


def when(v: datetime | None) -> str:
    return "–" if v is None else v.strftime("%Y-%m-%d %H:%M UTC")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=num, compact=compact, usd=usd, secs=secs, duration=duration, pct=pct, score=score,
                       when=when, breakable=breakable)
    return env


templates = Jinja2Templates(env=_env())


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    settings = request.app.state.settings
    context.setdefault("notice", request.query_params.get("notice"))
    context.setdefault("nav", "")
    context.setdefault("bare", False)  # True: no navigation (the login page)
    response = templates.TemplateResponse(request, name, {"auth_required": settings.auth_required, **context},
                                          status_code=status_code)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def error_page(request: Request, status_code: int, message: str, *, field: str | None = None) -> HTMLResponse:
    titles = {400: "Bad request", 403: "Forbidden", 404: "Not found", 409: "Conflict", 413: "Too large",
              422: "Invalid input", 503: "Unavailable"}
    return page(request, "error.html", status_code=status_code, title=titles.get(status_code, "Error"),
                message=message, field=field)
