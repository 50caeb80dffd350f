"""issued invitation and claim links: single use and revocable

One row per invitation or claim link sent; its random id travels in the signed token and the
link works only while the row has neither ``used_at`` nor ``revoked_at``.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "issued_links",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=10), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinics.id"],
            name=op.f("fk_issued_links_clinic_id_clinics"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issued_links")),
    )
    with op.batch_alter_table("issued_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issued_links_clinic_id"), ["clinic_id"], unique=False)


def downgrade():
    with op.batch_alter_table("issued_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issued_links_clinic_id"))
    op.drop_table("issued_links")
