"""endpoint_key.base_url: the base URL a key was stored with

A key is handed to requests only while the endpoint's base_url is the one it was stored with.
Existing keys are bound to their endpoint's current base_url.

Revision ID: 0006_endpoint_key_url
Revises: 0005_prompt_blobs
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_endpoint_key_url'
down_revision: str | None = '0005_prompt_blobs'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('endpoint_key') as batch:
        batch.add_column(sa.Column('base_url', sa.String(), nullable=True))
    op.execute('UPDATE endpoint_key SET base_url = '
               '(SELECT endpoint.base_url FROM endpoint WHERE endpoint.id = endpoint_key.endpoint_id)')


def downgrade() -> None:
    with op.batch_alter_table('endpoint_key') as batch:
        batch.drop_column('base_url')
