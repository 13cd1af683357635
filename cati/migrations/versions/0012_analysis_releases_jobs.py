"""analysis_releases (named, dated frozen snapshots of a study's scored results with their parameters) and
analysis_jobs (report and export jobs asked for in the web app, run by the job queue's worker).

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa

import cati.models.base
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("created_at", cati.models.base.UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("study_version", sa.Integer(), nullable=False),
        sa.Column("n_completes", sa.Integer(), nullable=False),
        sa.Column("n_enterprises", sa.Integer(), nullable=False),
        sa.Column("n_boot", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("overall", sa.JSON(), nullable=False),
        sa.Column("responses", sa.LargeBinary(), nullable=False),
        sa.Column("scored", sa.LargeBinary(), nullable=False),
        sa.Column("previous_label", sa.String(length=200), nullable=True),
        sa.Column("previous", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"],
                                name=op.f("fk_analysis_releases_created_by_id_users")),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name=op.f("fk_analysis_releases_study_id_studies"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_releases")),
        sa.UniqueConstraint("study_id", "name", name=op.f("uq_analysis_releases_study_id")),
    )
    op.create_index(op.f("ix_analysis_releases_study_id"), "analysis_releases", ["study_id"])
    op.create_table(
        "analysis_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=True),
        sa.Column("product", sa.String(length=32), nullable=False),
        sa.Column("formats", sa.JSON(), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("enterprise_ids", sa.JSON(), nullable=True),
        sa.Column("include_phone", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Enum("queued", "running", "done", "failed", name="jobstatus", native_enum=False,
                                    length=16), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("files", sa.JSON(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", cati.models.base.UTCDateTime(), nullable=False),
        sa.Column("started_at", cati.models.base.UTCDateTime(), nullable=True),
        sa.Column("finished_at", cati.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_analysis_jobs_created_by_id_users")),
        sa.ForeignKeyConstraint(["release_id"], ["analysis_releases.id"],
                                name=op.f("fk_analysis_jobs_release_id_analysis_releases"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name=op.f("fk_analysis_jobs_study_id_studies"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_jobs")),
    )
    op.create_index("ix_analysis_jobs_study", "analysis_jobs", ["study_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_analysis_jobs_study", table_name="analysis_jobs")
    op.drop_table("analysis_jobs")
    op.drop_index(op.f("ix_analysis_releases_study_id"), table_name="analysis_releases")
    op.drop_table("analysis_releases")
