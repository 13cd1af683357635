"""cases.excluded_interviewer_id: an interviewer who must not get the case again (QC rejected their interview of
it; the verification call goes to someone else)

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("excluded_interviewer_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_cases_excluded_interviewer_id_users", "users", ["excluded_interviewer_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_constraint("fk_cases_excluded_interviewer_id_users", type_="foreignkey")
        batch.drop_column("excluded_interviewer_id")
