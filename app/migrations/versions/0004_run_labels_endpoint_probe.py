"""run labels (tags, notes) and an endpoint's last probe

Revision ID: 0004_run_labels
Revises: 0003_run_checks
Create Date: 2026-12-01

``run.tags`` (a JSON list of strings) and ``run.notes`` (free text) let a team label and annotate runs;
``endpoint.probe`` keeps the last probe's findings and which endpoint fields it filled in.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004_run_labels'
down_revision: str | None = '0003_run_checks'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('run') as batch:
        batch.add_column(sa.Column('tags', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('notes', sa.Text(), nullable=True))
    with op.batch_alter_table('endpoint') as batch:
        batch.add_column(sa.Column('probe', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('endpoint') as batch:
        batch.drop_column('probe')
    with op.batch_alter_table('run') as batch:
        batch.drop_column('notes')
        batch.drop_column('tags')
