"""run.status holds completed_with_errors (21 characters): widen it to 32

Revision ID: 0002_run_status
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002_run_status'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=20), type_=sa.String(length=32),
                              existing_nullable=False)


def downgrade() -> None:
    # a status that no longer fits is stored as its 20-character form's nearest older name
    op.execute("UPDATE run SET status = 'completed' WHERE status = 'completed_with_errors'")
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=32), type_=sa.String(length=20),
                              existing_nullable=False)
