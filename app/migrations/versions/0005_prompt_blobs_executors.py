"""prompt blobs (long message texts stored once per run) and executor heartbeats

Existing case details are rewritten: every message text of at least 4096 characters moves into
``prompt_blob`` (by sha256, once per run) and the message keeps ``content_parts`` referring to it.
The downgrade joins them back.

Revision ID: 0005_prompt_blobs
Revises: 0004_run_labels
Create Date: 2026-12-01
"""

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0005_prompt_blobs'
down_revision: str | None = '0004_run_labels'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BLOB_MIN_CHARS = 4096
BATCH = 200

_case = sa.table('case', sa.column('id', sa.Integer), sa.column('run_id', sa.Integer))
_detail = sa.table('case_detail', sa.column('case_pk', sa.Integer), sa.column('prompt', sa.JSON))
_blob = sa.table('prompt_blob', sa.column('run_id', sa.Integer), sa.column('sha256', sa.String),
                 sa.column('text', sa.Text))


def _loads(value: Any) -> Any:  # the JSON column comes back parsed on PostgreSQL, as text on some SQLite paths
    return json.loads(value) if isinstance(value, str) else value


def _rows(conn: sa.Connection) -> Iterator[Any]:
    last = -1
    while True:
        rows = conn.execute(sa.select(_detail.c.case_pk, _detail.c.prompt, _case.c.run_id)
                            .join(_case, _case.c.id == _detail.c.case_pk)
                            .where(_detail.c.case_pk > last).order_by(_detail.c.case_pk).limit(BATCH)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def upgrade() -> None:
    op.create_table('prompt_blob',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['run.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'sha256')
    )
    op.create_table('executor',
    sa.Column('executor_id', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stopped', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('executor_id')
    )
    conn = op.get_bind()
    seen: set[tuple[int, str]] = set()
    for rows in _rows(conn):
        for case_pk, prompt, run_id in rows:
            messages = _loads(prompt) or []
            changed = False
            out = []
            for m in messages:
                content = m.get('content')
                if isinstance(content, str) and len(content) >= BLOB_MIN_CHARS:
                    digest = hashlib.sha256(content.encode('utf-8', 'surrogatepass')).hexdigest()
                    if (run_id, digest) not in seen:
                        exists = conn.execute(sa.select(sa.func.count()).select_from(_blob).where(
                            _blob.c.run_id == run_id, _blob.c.sha256 == digest)).scalar()
                        if not exists:
                            conn.execute(_blob.insert().values(run_id=run_id, sha256=digest, text=content))
                        seen.add((run_id, digest))
                    rest = {k: v for k, v in m.items() if k != 'content'}
                    out.append({**rest, 'content_parts': [{'blob': digest, 'chars': len(content)}]})
                    changed = True
                else:
                    out.append(m)
            if changed:
                conn.execute(_detail.update().where(_detail.c.case_pk == case_pk).values(prompt=out))


def downgrade() -> None:
    conn = op.get_bind()
    for rows in _rows(conn):
        for case_pk, prompt, run_id in rows:
            messages = _loads(prompt) or []
            if not any('content_parts' in m for m in messages):
                continue
            out = []
            for m in messages:
                parts = m.get('content_parts')
                if parts is None:
                    out.append(m)
                    continue
                texts = []
                for p in parts:
                    if 'text' in p:
                        texts.append(p['text'])
                    else:
                        texts.append(conn.execute(sa.select(_blob.c.text).where(
                            _blob.c.run_id == run_id, _blob.c.sha256 == p['blob'])).scalar_one())
                out.append({**{k: v for k, v in m.items() if k != 'content_parts'}, 'content': ''.join(texts)})
            conn.execute(_detail.update().where(_detail.c.case_pk == case_pk).values(prompt=out))
    op.drop_table('executor')
    op.drop_table('prompt_blob')
