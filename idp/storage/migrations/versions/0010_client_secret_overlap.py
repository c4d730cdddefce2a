"""a client's previous secret, accepted during the overlap of a rotation

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

``clients rotate-secret`` keeps the replaced secret's SHA-256 valid until a chosen time (7 days by
default), so an agency can deploy its new secret without an outage; ``--now`` skips the overlap.
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_secret_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('previous_secret_expires_at')
        batch_op.drop_column('previous_secret_hash')
