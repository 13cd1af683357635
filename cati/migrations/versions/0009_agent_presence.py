"""agent_states.last_seen_at and paused_by_id: presence (the open console's heartbeat; a console silent for the
presence timeout is offline and its case goes back to the queue) and who paused the interviewer (a supervisor's
pause reaches the console and survives a new sign-in).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa

import cati.models.base
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agent_states") as batch:
        batch.add_column(sa.Column("last_seen_at", cati.models.base.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("paused_by_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agent_states") as batch:
        batch.drop_column("paused_by_id")
        batch.drop_column("last_seen_at")
