"""Exports: a run's cases streamed as CSV (light columns, scores, answer) or JSONL (every field), and
its summary table as CSV or Markdown.

CSV is spreadsheet-safe by default: a text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return (which Excel, LibreOffice and Google Sheets would read as a formula) gets a
leading ``'``, the OWASP recommendation for CSV injection. Numbers are never touched. ``raw=True``
writes every cell as stored, for programs that read the file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence

from sqlalchemy.engine import Engine as DbEngine

from app import crud
from app.db import session_scope
from app.services import cases as case_service
from app.services import prompt_store
from evals import RunSummary, verdict_markdown

CSV_COLUMNS = ["case_id", "question_id", "endpoint", "strategy", "strategy_name", "outcome", "error_class",
               "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens", "cost_usd",
               "latency_s", "ttft_s", "context_tokens", "depth", "route", "from_cache"]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, prefixed with ``'``; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_line(values: Sequence[object], *, raw: bool = False) -> str:
    buf = io.StringIO()
    cells = ["" if v is None else v for v in values]
    csv.writer(buf, lineterminator="\n").writerow(cells if raw else [spreadsheet_safe(v) for v in cells])
    return buf.getvalue()


def stream_csv(db: DbEngine, run_id: int, scorers: list[str], *, raw: bool = False) -> Iterator[str]:
    yield _csv_line(CSV_COLUMNS + [f"score_{s}" for s in scorers] + ["answer", "error_message"], raw=raw)
    with session_scope(db) as session:
        for light, detail in crud.iter_cases(session, run_id=run_id, with_detail=True):
            values: list[object] = [getattr(light, c) for c in CSV_COLUMNS]
            values += [light.scores.get(s) for s in scorers]
            values += [detail.answer if detail else "", light.error_message]
            yield _csv_line(values, raw=raw)


def stream_jsonl(db: DbEngine, run_id: int) -> Iterator[str]:
    with session_scope(db) as session:
        blobs: dict[str, str] = {}
        for light, detail in crud.iter_cases(session, run_id=run_id, with_detail=True):
            if detail is not None and not prompt_store.blob_hashes(detail.prompt) <= blobs.keys():
                if len(blobs) > 16:  # blobs shared by many cases stay; a run of distinct ones is not held
                    blobs.clear()
                blobs.update(case_service.prompt_blobs_for(session, run_id=run_id, details=[detail]))
            result = case_service.to_result(light, detail, blobs)
            yield json.dumps(result.model_dump(mode="json"), ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------------ summary table
def summary_table(summary: RunSummary) -> tuple[list[str], list[list[object]]]:
    """The run report's summary table as a header and rows (one per endpoint × strategy): every
    scorer's mean, 95% interval and n, outcomes, tokens, cost, token share, latency and TTFT."""
    header = ["endpoint", "strategy", "n"]
    for s in summary.scorers:
        header += [f"{s}_mean", f"{s}_ci_low", f"{s}_ci_high", f"{s}_n"]
    header += ["outcomes", "prompt_tokens_mean", "cached_tokens_mean", "completion_tokens_mean", "cost_usd",
               "cost_usd_per_case", "token_share", "latency_p50_s", "latency_p95_s", "ttft_p50_s", "ttft_p95_s"]
    rows: list[list[object]] = []
    for g in summary.groups:
        row: list[object] = [g.endpoint, g.strategy, g.n]
        for s in summary.scorers:
            e = g.scores.get(s)
            row += [e.mean, e.low, e.high, e.n] if e else [None, None, None, 0]
        row += [" ".join(f"{k}={v}" for k, v in g.outcomes.items() if v), g.prompt_tokens.mean,
                g.cached_tokens.mean, g.completion_tokens.mean, g.cost_usd.sum,
                g.cost_usd.sum / g.n if g.n and g.cost_usd.n else None, g.token_share,
                g.latency_s.p50, g.latency_s.p95, g.ttft_s.p50, g.ttft_s.p95]
        rows.append(row)
    return header, rows


def summary_csv(summary: RunSummary) -> str:
    header, rows = summary_table(summary)
    return _csv_line(header) + "".join(_csv_line(r) for r in rows)


def _md_cell(v: object, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1e6 else f"{v:.3g}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def summary_markdown(title: str, summary: RunSummary) -> str:
    """The summary table as GitHub-flavoured Markdown: one row per endpoint × strategy, each scorer as
    ``mean [low, high]``, then cost per case and latency p50; then the verdict (status, Recommendation,
    crossovers) as :func:`evals.summary.verdict_markdown` writes it."""
    lines = [f"## {_md_cell(title)}", "", f"{summary.n} cases; mean with 95% bootstrap interval.", ""]
    head = ["endpoint", "strategy", "n", *summary.scorers, "outcomes", "cost / case", "latency p50"]
    lines.append("| " + " | ".join(_md_cell(h) for h in head) + " |")
    lines.append("|" + "|".join(["---", "---", "---:", *(["---:"] * len(summary.scorers)), "---", "---:", "---:"])
                 + "|")
    for g in summary.groups:
        cells = [_md_cell(g.endpoint), _md_cell(g.strategy), str(g.n)]
        for s in summary.scorers:
            e = g.scores.get(s)
            cells.append("–" if e is None or e.mean is None else f"{e.mean:.3f} [{e.low:.3f}, {e.high:.3f}]")
        cells.append(_md_cell(", ".join(f"{k} {v}" for k, v in g.outcomes.items() if v)))
        per_case = g.cost_usd.sum / g.n if g.n and g.cost_usd.n else None
        cells.append("–" if per_case is None else f"${per_case:.6f}")
        cells.append("–" if g.latency_s.p50 is None else f"{g.latency_s.p50:.2f} s")
        lines.append("| " + " | ".join(cells) + " |")
    verdict = verdict_markdown(summary).strip()
    if verdict:
        lines += ["", verdict]
    return "\n".join(lines) + "\n"
