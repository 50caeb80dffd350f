"""patients' reports of concern about a practitioner or a clinic

One row per report; a site admin marks it handled in the moderation queue.

Revision ID: 0007
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "concern_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practitioner_id", sa.Integer(), nullable=True),
        sa.Column("clinic_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("handled_by", sa.String(length=254), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinics.id"],
            name=op.f("fk_concern_reports_clinic_id_clinics"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioners.id"],
            name=op.f("fk_concern_reports_practitioner_id_practitioners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_concern_reports")),
    )
    with op.batch_alter_table("concern_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_concern_reports_clinic_id"), ["clinic_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_concern_reports_practitioner_id"), ["practitioner_id"], unique=False
        )
        batch_op.create_index("ix_concern_reports_open", ["handled_at", "id"], unique=False)


def downgrade():
    with op.batch_alter_table("concern_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_concern_reports_open")
        batch_op.drop_index(batch_op.f("ix_concern_reports_practitioner_id"))
        batch_op.drop_index(batch_op.f("ix_concern_reports_clinic_id"))
    op.drop_table("concern_reports")
