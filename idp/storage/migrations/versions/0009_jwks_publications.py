"""jwks_publications: the JWKS max-ages serving processes publish

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-10

Each serving process records the ``Cache-Control: max-age`` it sends with the JWKS (renewed while
it serves). Key rotation waits for the longest one recorded recently, not only for the max-age of
the process that runs it: a CLI configured with a shorter max-age than the servers would otherwise
make a new key sign before relying parties can have fetched it.
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'jwks_publications',
        sa.Column('max_age', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('max_age', name=op.f('pk_jwks_publications')),
    )


def downgrade() -> None:
    op.drop_table('jwks_publications')
