"""authenticators.hardware_attested: high only for proven hardware

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Whether a verified attestation chain proved a WebAuthn credential to be a device-bound key. Only
such a credential reaches ``urn:hawiya:loa:high``. Every existing row is false: those credentials
were registered with ``attestation: none`` (or a staff chain checked before this rule existed), so
nothing proves their hardware; they stay usable, at ``substantial``.
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite has it for a NOT NULL column with a constant default): batch mode
    # would reflect, and on SQLite copy, the table and the accounts table its foreign key names.
    op.add_column('authenticators', sa.Column('hardware_attested', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('authenticators', schema=None) as batch_op:
        batch_op.drop_column('hardware_attested')
