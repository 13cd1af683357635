"""quota_cells and case_quota_cells: quotas per industry and per sample variable

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_cells",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("variable", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("completes", sa.Integer(), nullable=False),
        sa.Column("in_progress", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name="fk_quota_cells_study_id_studies"),
        sa.PrimaryKeyConstraint("id", name="pk_quota_cells"),
        sa.UniqueConstraint("study_id", "variable", "scope", "value", name="uq_quota_cells_study_id"),
    )
    op.create_index("ix_quota_cells_study_id", "quota_cells", ["study_id"])
    op.create_table(
        "case_quota_cells",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("cell_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_quota_cells_case_id_cases"),
        sa.ForeignKeyConstraint(["cell_id"], ["quota_cells.id"], name="fk_case_quota_cells_cell_id_quota_cells"),
        sa.PrimaryKeyConstraint("case_id", "cell_id", name="pk_case_quota_cells"),
    )
    op.create_index("ix_case_quota_cells_cell", "case_quota_cells", ["cell_id"])


def downgrade() -> None:
    op.drop_index("ix_case_quota_cells_cell", table_name="case_quota_cells")
    op.drop_table("case_quota_cells")
    op.drop_index("ix_quota_cells_study_id", table_name="quota_cells")
    op.drop_table("quota_cells")
