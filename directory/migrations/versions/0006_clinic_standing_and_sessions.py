"""a clinic's standing on its own row (suspended, claimed) and server-side sessions

- ``clinics.suspended_at``: the fact that a clinic is suspended moves from the accounts
  table ``clinic_suspensions`` (which keeps the set-aside listings) to the clinic, so that
  ``directory.listings`` reads it without importing accounts; filled from that table.
- ``clinics.claimed_at``: the clinic has an admin of its own and keeps its own record (a bulk
  import no longer overwrites it); filled from the first clinic admin's ``created_at``.
- ``user_sessions``: one row per signed-in session; signing out deletes it, so a copied
  session cookie stops working.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clinics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suspended_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
    op.execute(
        "UPDATE clinics SET suspended_at = (SELECT s.suspended_at FROM clinic_suspensions s "
        "WHERE s.clinic_id = clinics.id)"
    )
    op.execute(
        "UPDATE clinics SET claimed_at = (SELECT MIN(u.created_at) FROM users u "
        "WHERE u.clinic_id = clinics.id AND u.role = 'clinic_admin')"
    )
    op.create_table(
        "user_sessions",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_user_sessions")),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_sessions_user_id"), ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_sessions_user_id"))
    op.drop_table("user_sessions")
    # clinic_suspensions still holds a row for every suspended clinic (written with it)
    with op.batch_alter_table("clinics", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("suspended_at")
