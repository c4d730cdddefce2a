"""where an activation code was mailed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

The address an activation code was mailed to (NULL for a code handed over at a counter): redeeming
a mailed code proves the person reads that address, so the account's email becomes verified.
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('activation_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mailed_to', sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('activation_codes', schema=None) as batch_op:
        batch_op.drop_column('mailed_to')
