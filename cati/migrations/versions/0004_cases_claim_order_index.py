"""cases: claim-order index (enterprise, status, attempts, next call) replaces (enterprise, status)

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_claim_order", "cases", ["enterprise_id", "status", "attempts", "next_call_at"])
    op.drop_index("ix_cases_enterprise_status", table_name="cases")


def downgrade() -> None:
    op.create_index("ix_cases_enterprise_status", "cases", ["enterprise_id", "status"])
    op.drop_index("ix_cases_claim_order", table_name="cases")
