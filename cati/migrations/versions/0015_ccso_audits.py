"""CCSO audits in the web app (issue 17): audits, their auditors and centre users, evidence files per requirement,
judgements per requirement and pass (document / on-site; append-only, one client id each) and non-conformities.
The two new roles (auditor, centre) need no schema change: ``users.role`` is a plain string column.

Revision ID: 0015
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

import cati.models.base

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ccso_audits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('centre_name', sa.String(length=200), nullable=False),
    sa.Column('enterprise_external_id', sa.String(length=64), nullable=True),
    sa.Column('checklist_id', sa.String(length=64), nullable=False),
    sa.Column('checklist_version', sa.Integer(), nullable=False),
    sa.Column('checklist', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('documents', 'onsite', 'closed', name='auditstatus', native_enum=False, length=16), nullable=False),
    sa.Column('created_at', cati.models.base.UTCDateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_ccso_audits_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ccso_audits'))
    )
    op.create_table('ccso_audit_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audit_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('auditor', 'centre', name='memberkind', native_enum=False, length=16), nullable=False),
    sa.ForeignKeyConstraint(['audit_id'], ['ccso_audits.id'], name=op.f('fk_ccso_audit_members_audit_id_ccso_audits')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_ccso_audit_members_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ccso_audit_members')),
    sa.UniqueConstraint('audit_id', 'user_id', name=op.f('uq_ccso_audit_members_audit_id'))
    )
    op.create_index(op.f('ix_ccso_audit_members_audit_id'), 'ccso_audit_members', ['audit_id'], unique=False)
    op.create_index(op.f('ix_ccso_audit_members_user_id'), 'ccso_audit_members', ['user_id'], unique=False)
    op.create_table('ccso_evidence_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audit_id', sa.Integer(), nullable=False),
    sa.Column('requirement_code', sa.String(length=32), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', cati.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['audit_id'], ['ccso_audits.id'], name=op.f('fk_ccso_evidence_files_audit_id_ccso_audits')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_ccso_evidence_files_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ccso_evidence_files')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_ccso_evidence_files_stored_name'))
    )
    op.create_index(op.f('ix_ccso_evidence_files_audit_id'), 'ccso_evidence_files', ['audit_id'], unique=False)
    op.create_table('ccso_judgements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('audit_id', sa.Integer(), nullable=False),
    sa.Column('review', sa.Enum('document', 'onsite', name='auditpass', native_enum=False, length=16), nullable=False),
    sa.Column('requirement_code', sa.String(length=32), nullable=False),
    sa.Column('verdict', sa.Enum('yes', 'no', 'na', name='verdict', native_enum=False, length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('evidence_seen', sa.Text(), nullable=True),
    sa.Column('auditor_id', sa.Integer(), nullable=True),
    sa.Column('judged_at', cati.models.base.UTCDateTime(), nullable=False),
    sa.Column('recorded_at', cati.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['audit_id'], ['ccso_audits.id'], name=op.f('fk_ccso_judgements_audit_id_ccso_audits')),
    sa.ForeignKeyConstraint(['auditor_id'], ['users.id'], name=op.f('fk_ccso_judgements_auditor_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ccso_judgements')),
    sa.UniqueConstraint('client_id', name=op.f('uq_ccso_judgements_client_id'))
    )
    op.create_index('ix_ccso_judgements_current', 'ccso_judgements', ['audit_id', 'review', 'requirement_code'], unique=False)
    op.create_table('ccso_nonconformities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audit_id', sa.Integer(), nullable=False),
    sa.Column('requirement_code', sa.String(length=32), nullable=False),
    sa.Column('judgement_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('raised_by_id', sa.Integer(), nullable=True),
    sa.Column('raised_at', cati.models.base.UTCDateTime(), nullable=False),
    sa.Column('closed_at', cati.models.base.UTCDateTime(), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('closing_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['audit_id'], ['ccso_audits.id'], name=op.f('fk_ccso_nonconformities_audit_id_ccso_audits')),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_ccso_nonconformities_closed_by_id_users')),
    sa.ForeignKeyConstraint(['judgement_id'], ['ccso_judgements.id'], name=op.f('fk_ccso_nonconformities_judgement_id_ccso_judgements')),
    sa.ForeignKeyConstraint(['raised_by_id'], ['users.id'], name=op.f('fk_ccso_nonconformities_raised_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ccso_nonconformities')),
    sa.UniqueConstraint('audit_id', 'requirement_code', name=op.f('uq_ccso_nonconformities_audit_id'))
    )
    op.create_index(op.f('ix_ccso_nonconformities_audit_id'), 'ccso_nonconformities', ['audit_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ccso_nonconformities_audit_id'), table_name='ccso_nonconformities')
    op.drop_table('ccso_nonconformities')
    op.drop_index('ix_ccso_judgements_current', table_name='ccso_judgements')
    op.drop_table('ccso_judgements')
    op.drop_index(op.f('ix_ccso_evidence_files_audit_id'), table_name='ccso_evidence_files')
    op.drop_table('ccso_evidence_files')
    op.drop_index(op.f('ix_ccso_audit_members_user_id'), table_name='ccso_audit_members')
    op.drop_index(op.f('ix_ccso_audit_members_audit_id'), table_name='ccso_audit_members')
    op.drop_table('ccso_audit_members')
    op.drop_table('ccso_audits')
