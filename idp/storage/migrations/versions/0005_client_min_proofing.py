"""a client's minimum proofing level

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

How well a person's identity must have been proven (self_asserted < document_check < counter) for
a client to be given them: enforced at authorization like the minimum acr, which states only how
strongly the person signed in.
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('min_proofing', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('min_proofing')
