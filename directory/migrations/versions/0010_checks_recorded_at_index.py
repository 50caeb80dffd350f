"""verification_checks.recorded_at indexed: the status pages read bounded windows of checks

The operators' and public status pages (directory/status) aggregate the look-ups of the last
days; with this index they read only that window, not the whole history.

Revision ID: 0010
Revises: 0005
"""

from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_verification_checks_recorded_at", "verification_checks", ["recorded_at"], unique=False
    )


def downgrade():
    op.drop_index("ix_verification_checks_recorded_at", table_name="verification_checks")
