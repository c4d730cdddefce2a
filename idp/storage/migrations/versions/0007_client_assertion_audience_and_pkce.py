"""legacy assertion audience and PKCE exemption of clients

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09

Client assertions must name the issuer as their audience; the token endpoint URL stays accepted
only for the private_key_jwt clients registered before that rule (``legacy_assertion_audience``,
set here for them, deprecated: docs/clients.md). PKCE becomes required of confidential
clients too; those that sign people in and existed before keep today's behaviour through an
explicit, audited exemption (``pkce_exempt``) that staff can clear. Clients registered from now
on get neither.
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('legacy_assertion_audience', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column('pkce_exempt', sa.Boolean(), server_default=sa.false(), nullable=False))
    clients = sa.table(
        'clients',
        sa.column('client_id', sa.String()),
        sa.column('token_endpoint_auth_method', sa.String()),
        sa.column('grant_types', sa.JSON()),
        sa.column('legacy_assertion_audience', sa.Boolean()),
        sa.column('pkce_exempt', sa.Boolean()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(clients.c.client_id, clients.c.token_endpoint_auth_method, clients.c.grant_types)
    ).all()
    for client_id, auth_method, grant_types in rows:
        values = {
            'legacy_assertion_audience': auth_method == 'private_key_jwt',
            'pkce_exempt': auth_method != 'none' and 'authorization_code' in (grant_types or []),
        }
        if any(values.values()):
            connection.execute(clients.update().where(clients.c.client_id == client_id).values(**values))


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('pkce_exempt')
        batch_op.drop_column('legacy_assertion_audience')
