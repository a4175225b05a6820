"""run checks: the CI checks a run was created with, and the baseline run they compare against

Revision ID: 0003_run_checks
Revises: 0002_run_status
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003_run_checks'
down_revision: str | None = '0002_run_status'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('run', sa.Column('checks', sa.JSON(), nullable=True))
    op.add_column('run', sa.Column('baseline_run_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('run') as batch:
        batch.drop_column('baseline_run_id')
        batch.drop_column('checks')
