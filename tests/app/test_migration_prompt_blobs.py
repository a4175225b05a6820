"""The prompt-blob migration rewrites stored case details: long texts move to ``prompt_blob`` once
per run, the case view still shows the exact prompt, and the downgrade puts them back."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import command

from app.db import alembic_config, make_engine, session_scope
from app.services import cases as case_service

LONG = "[Document 1: d0]\n" + "The grass is green and the sky is blue. " * 500


def _prompt(i: int) -> list[dict]:
    return [{"role": "system", "content": "short system"},
            {"role": "user", "content": f"Documents:\n\n{LONG}\n\nQuestion: q{i}?\nAnswer:"},
            {"role": "assistant", "content": LONG}]  # the same long text in every case


def _insert_old_rows(conn) -> None:
    conn.execute(sa.text("INSERT INTO suite (id, name, version, content_hash, description, default_scorers, meta, "
                         "n_documents, n_questions, n_chars, created_at) VALUES (1, 's', 1, 'h', '', '[]', '{}', "
                         "0, 0, 0, CURRENT_TIMESTAMP)"))
    conn.execute(sa.text("INSERT INTO run (id, suite_id, spec, spec_hash, status, attempt, total_cases, created_at) "
                         "VALUES (1, 1, '{}', 'x', 'completed', 1, 3, CURRENT_TIMESTAMP)"))
    for i in range(3):
        conn.execute(sa.text(
            "INSERT INTO \"case\" (id, run_id, case_id, position, question_id, endpoint, strategy, strategy_name, "
            "outcome, scores, n_calls, from_cache, finished_at) VALUES (:i, 1, :c, :i, :q, 'e', 'long_context', "
            "'long_context', 'ok', '{}', 1, false, CURRENT_TIMESTAMP)"), {"i": i + 1, "c": f"c{i}", "q": f"q{i}"})
        conn.execute(sa.text("INSERT INTO case_detail (case_pk, prompt, answer, reasoning, retrieved, calls, extra) "
                             "VALUES (:i, :p, 'a', '', '[]', '[]', '{}')"), {"i": i + 1, "p": json.dumps(_prompt(i))})


def test_existing_rows_are_rewritten_and_read_back_exactly(database_url):
    engine = make_engine(database_url)
    cfg = alembic_config(engine)
    try:
        command.downgrade(cfg, "0004_run_labels")
        with engine.begin() as conn:
            _insert_old_rows(conn)
        command.upgrade(cfg, "0005_prompt_blobs")
        with engine.connect() as conn:
            blobs = conn.execute(sa.text("SELECT run_id, length(text) FROM prompt_blob ORDER BY 2")).all()
            stored = [p if not isinstance(p, str) else json.loads(p)
                      for p in conn.execute(sa.text("SELECT prompt FROM case_detail ORDER BY case_pk")).scalars()]
        assert len(blobs) == 4  # three distinct user messages and the shared assistant text, once
        assert all(len(json.dumps(p)) < 1000 for p in stored)
        assert stored[0][0] == {"role": "system", "content": "short system"}  # short texts stay inline
        with session_scope(engine) as s:
            for i in range(3):
                assert case_service.get_result(s, run_id=1, case_id=f"c{i}").prompt == _prompt(i)
        command.downgrade(cfg, "0004_run_labels")
        with engine.connect() as conn:
            back = [p if not isinstance(p, str) else json.loads(p)
                    for p in conn.execute(sa.text("SELECT prompt FROM case_detail ORDER BY case_pk")).scalars()]
            assert "prompt_blob" not in set(conn.dialect.get_table_names(conn))
        assert back == [_prompt(i) for i in range(3)]
        command.upgrade(cfg, "head")
    finally:
        engine.dispose()
