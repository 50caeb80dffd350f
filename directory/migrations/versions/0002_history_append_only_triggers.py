"""history tables refuse updates and deletes in the database itself

The ORM already refuses to rewrite or delete ``verification_checks`` and ``status_events``
rows; these triggers make the database refuse it too, for raw SQL, other programs and the
cascade from deleting a practitioner. A frozen copy of ``append_only_ddl`` in
``directory/registry/models.py`` (which installs the same triggers on ``create_all``).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("verification_checks", "status_events")


def _statements(dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_never_rewritten BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} rows are never rewritten'); END",
            f"CREATE TRIGGER {table}_never_deleted BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} rows are never deleted'); END",
        ]
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION history_is_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME "
            "|| ' rows are never ' || CASE TG_OP WHEN 'UPDATE' THEN 'rewritten' "
            "ELSE 'deleted' END; END $$",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION history_is_append_only()",
        ]
    return []


def upgrade():
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        for statement in _statements(dialect, table):
            op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_never_rewritten")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_never_deleted")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS history_is_append_only()")
