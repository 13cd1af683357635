"""agent states, agent events, login failures

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 17:40:00
"""
from alembic import op
import sqlalchemy as sa
import cati.models.base


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agent_states',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('offline', 'ready', 'paused', 'dialing', 'talking', 'wrapup', name='agentstatus', native_enum=False, length=16), nullable=False),
    sa.Column('pause_reason', sa.String(length=32), nullable=True),
    sa.Column('since_at', cati.models.base.UTCDateTime(), nullable=False),
    sa.Column('shift_started_at', cati.models.base.UTCDateTime(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('call_id', sa.String(length=36), nullable=True),
    sa.Column('dial_mode', sa.String(length=16), nullable=False),
    sa.Column('updated_at', cati.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_agent_states_case_id_cases')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_agent_states_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_agent_states'))
    )
    op.create_table('agent_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('offline', 'ready', 'paused', 'dialing', 'talking', 'wrapup', name='agentstatus', native_enum=False, length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('at', cati.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_agent_events_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_events'))
    )
    op.create_index('ix_agent_events_user_at', 'agent_events', ['user_id', 'at'], unique=False)
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('at', cati.models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index('ix_login_failures_key', 'login_failures', ['username', 'address', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_login_failures_key', table_name='login_failures')
    op.drop_table('login_failures')
    op.drop_index('ix_agent_events_user_at', table_name='agent_events')
    op.drop_table('agent_events')
    op.drop_table('agent_states')
