"""Streamed exports of a run's cases: CSV (light columns, scores, answer) or JSONL (every field)."""

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

CSV_COLUMNS = ["case_id", "question_id", "endpoint", "strategy", "strategy_name", "outcome", "error_class",
               "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens", "cost_usd",
               "latency_s", "ttft_s", "context_tokens", "depth", "route", "from_cache"]


def _csv_line(values: Sequence[object]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buf.getvalue()


def stream_csv(db: DbEngine, run_id: int, scorers: list[str]) -> Iterator[str]:
    yield _csv_line(CSV_COLUMNS + [f"score_{s}" for s in scorers] + ["answer", "error_message"])
    with session_scope(db) as session:
        for light, detail in crud.iter_cases(session, run_id=run_id, with_detail=True):
            values: list[object] = [getattr(light, c) for c in CSV_COLUMNS]
            values += [light.scores.get(s) for s in scorers]
            values += [detail.answer if detail else "", light.error_message]
            yield _csv_line(values)


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
