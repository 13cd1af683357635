"""Web self-completion (CAWI): interviews.mode (cati | cawi), invitations (open link per enterprise, personal
tokens), the web side of a response (device and resume keys, time on the questions, QC flags) and the time on
each question.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa

import cati.models.base
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interviews") as batch:
        batch.add_column(sa.Column("mode", sa.String(length=8), nullable=False, server_default="cati"))
    op.create_table(
        "cawi_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Enum("open", "personal", name="invitationkind", native_enum=False, length=16),
                  nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("created_at", cati.models.base.UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("used_at", cati.models.base.UTCDateTime(), nullable=True),
        sa.Column("interview_id", sa.Integer(), nullable=True),
        sa.Column("duplicates_blocked", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name=op.f("fk_cawi_invitations_study_id_studies")),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"],
                                name=op.f("fk_cawi_invitations_enterprise_id_enterprises")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_cawi_invitations_created_by_id_users")),
        sa.ForeignKeyConstraint(["interview_id"], ["interviews.id"],
                                name=op.f("fk_cawi_invitations_interview_id_interviews")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cawi_invitations")),
        sa.UniqueConstraint("token", name=op.f("uq_cawi_invitations_token")),
    )
    op.create_index(op.f("ix_cawi_invitations_study_id"), "cawi_invitations", ["study_id"])
    op.create_index(op.f("ix_cawi_invitations_enterprise_id"), "cawi_invitations", ["enterprise_id"])
    op.create_table(
        "cawi_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interview_id", sa.Integer(), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=False),
        sa.Column("device_key", sa.String(length=64), nullable=False),
        sa.Column("resume_key", sa.String(length=64), nullable=False),
        sa.Column("page_code", sa.String(length=32), nullable=True),
        sa.Column("page_shown_at", cati.models.base.UTCDateTime(), nullable=True),
        sa.Column("total_seconds", sa.Double(), nullable=False),
        sa.Column("speeder", sa.Boolean(), nullable=False),
        sa.Column("straightliner", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["interview_id"], ["interviews.id"],
                                name=op.f("fk_cawi_responses_interview_id_interviews")),
        sa.ForeignKeyConstraint(["invitation_id"], ["cawi_invitations.id"],
                                name=op.f("fk_cawi_responses_invitation_id_cawi_invitations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cawi_responses")),
        sa.UniqueConstraint("interview_id", name=op.f("uq_cawi_responses_interview_id")),
        sa.UniqueConstraint("resume_key", name=op.f("uq_cawi_responses_resume_key")),
    )
    op.create_index("ix_cawi_responses_invitation_device", "cawi_responses", ["invitation_id", "device_key"])
    op.create_table(
        "cawi_question_times",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interview_id", sa.Integer(), nullable=False),
        sa.Column("question_code", sa.String(length=32), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["interview_id"], ["interviews.id"],
                                name=op.f("fk_cawi_question_times_interview_id_interviews")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cawi_question_times")),
        sa.UniqueConstraint("interview_id", "question_code", name=op.f("uq_cawi_question_times_interview_id")),
    )


def downgrade() -> None:
    op.drop_table("cawi_question_times")
    op.drop_index("ix_cawi_responses_invitation_device", table_name="cawi_responses")
    op.drop_table("cawi_responses")
    op.drop_index(op.f("ix_cawi_invitations_enterprise_id"), table_name="cawi_invitations")
    op.drop_index(op.f("ix_cawi_invitations_study_id"), table_name="cawi_invitations")
    op.drop_table("cawi_invitations")
    with op.batch_alter_table("interviews") as batch:
        batch.drop_column("mode")
