"""the register budget shared by every process and host

One row per register (``hpcsa``) holding the shared request budget: the rate in force, the
pause a Retry-After asked for and the latest starts booked (``importers/politeness/``).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "register_budget",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_register_budget")),
    )


def downgrade():
    op.drop_table("register_budget")
