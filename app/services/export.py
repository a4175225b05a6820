"""Streamed exports of a run's cases: CSV (light columns, scores, answer) or JSONL (every field).

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
        for light, detail in crud.iter_cases(session, run_id=run_id, with_detail=True):
            result = case_service.to_result(light, detail)
            yield json.dumps(result.model_dump(mode="json"), ensure_ascii=False) + "\n"
