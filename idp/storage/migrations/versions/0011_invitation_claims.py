"""an invitation claimed by an account that is not the invited address's

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

An invitation link opened by an account whose verified email is not the invited address grants
nothing: the account *claims* the invitation (first claim wins) and the person who sent it confirms
or declines that named account. The inviter's page lists their pending claims, hence the index.
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_invitations_invited_by'), ['invited_by'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitations_invited_by'))
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('claimed_by')
