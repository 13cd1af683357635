"""supervisor_messages, message_receipts, login_sessions and qc_reviews: messages from supervisors to interviewers
(one or all) with read receipts, each user's sign-in history, and QC reviews of interviews (listening scores,
back-check results).

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa

import cati.models.base
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "supervisor_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sender_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("recipient_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("body", sa.String(1000), nullable=False),
        sa.Column("sent_at", cati.models.base.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_supervisor_messages_recipient", "supervisor_messages", ["recipient_id", "sent_at"])
    op.create_index("ix_supervisor_messages_sent_at", "supervisor_messages", ["sent_at"])
    op.create_table(
        "message_receipts",
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("supervisor_messages.id"), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("shown_at", cati.models.base.UTCDateTime(), nullable=False),
        sa.Column("read_at", cati.models.base.UTCDateTime(), nullable=True),
    )
    op.create_table(
        "login_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("login_at", cati.models.base.UTCDateTime(), nullable=False),
        sa.Column("logout_at", cati.models.base.UTCDateTime(), nullable=True),
        sa.Column("ended_by", sa.String(16), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
    )
    op.create_index("ix_login_sessions_user", "login_sessions", ["user_id", "login_at"])
    op.create_table(
        "qc_reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("interview_id", sa.Integer(), sa.ForeignKey("interviews.id"), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("score", sa.Double(), nullable=True),
        sa.Column("backcheck", sa.String(16), nullable=True),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.Column("at", cati.models.base.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_qc_reviews_interview_id", "qc_reviews", ["interview_id"])


def downgrade() -> None:
    op.drop_index("ix_qc_reviews_interview_id", table_name="qc_reviews")
    op.drop_table("qc_reviews")
    op.drop_index("ix_login_sessions_user", table_name="login_sessions")
    op.drop_table("login_sessions")
    op.drop_table("message_receipts")
    op.drop_index("ix_supervisor_messages_sent_at", table_name="supervisor_messages")
    op.drop_index("ix_supervisor_messages_recipient", table_name="supervisor_messages")
    op.drop_table("supervisor_messages")
