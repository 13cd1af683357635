"""call_attempts: parts of the day already tried, the case's previous outcome and the local weekday when
dialed (the contact model learns from them); cases: claim-order index leads with the tried-parts mask;
(study, time zone) and (study, status, mask) indexes

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_attempts") as batch:
        batch.add_column(sa.Column("tried_parts_before", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("local_weekday", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("prior_outcome", sa.String(8), nullable=True))
    op.create_index("ix_cases_claim_mask", "cases",
                    ["enterprise_id", "status", "tried_day_parts", "attempts", "next_call_at"])
    op.drop_index("ix_cases_claim_order", table_name="cases")
    # A study's time zones and the tried-parts masks of its open cases, by index probes instead of scans.
    op.create_index("ix_cases_study_timezone", "cases", ["study_id", "timezone"])
    op.create_index("ix_cases_study_mask", "cases", ["study_id", "status", "tried_day_parts"])


def downgrade() -> None:
    op.drop_index("ix_cases_study_mask", table_name="cases")
    op.drop_index("ix_cases_study_timezone", table_name="cases")
    op.create_index("ix_cases_claim_order", "cases", ["enterprise_id", "status", "attempts", "next_call_at"])
    op.drop_index("ix_cases_claim_mask", table_name="cases")
    with op.batch_alter_table("call_attempts") as batch:
        batch.drop_column("prior_outcome")
        batch.drop_column("local_weekday")
        batch.drop_column("tried_parts_before")
