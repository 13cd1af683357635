"""cases: index (assigned_to_id, status, next_call_at) for next_case's "assigned to this interviewer" step,
which runs on every claim (without it, PostgreSQL filters every due case of the study).

Revision ID: 0010
Revises: 0009
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_assigned", "cases", ["assigned_to_id", "status", "next_call_at"])


def downgrade() -> None:
    op.drop_index("ix_cases_assigned", table_name="cases")
