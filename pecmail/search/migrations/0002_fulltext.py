"""The vendor's full-text structure beside MessageSearchDocument.

PostgreSQL: the unaccent extension (when it can be created), two text search configurations
(``pecmail_italian``: unaccent + Italian stemmer, ``pecmail_simple``: unaccent + simple), a
stored generated tsvector column combining both, weighted subject A, addresses B,
attachment names C, body D, and a GIN index on it.

SQLite: an external-content FTS5 table over the document table (tokenizer unicode61 with
diacritics removed), kept in step by triggers, so any insert, update or delete of a document
row, cascades from a deleted message included, reaches the full-text index.

Other vendors get nothing here; pecmail.search.backends refuses them.
"""

from django.db import DatabaseError, migrations, transaction

from pecmail.search import fts5

DOC = fts5.DOC
WORD_TOKENS = "asciiword, asciihword, hword_asciipart, word, hword, hword_part"


def _pg_vector_sql() -> str:
    parts = []
    for column, weight in (("subject", "A"), ("addresses", "B"), ("attachments", "C"), ("body", "D")):
        for config in ("pecmail_italian", "pecmail_simple"):
            parts.append(f"setweight(to_tsvector('{config}'::regconfig, {column}), '{weight}')")
    return " || ".join(parts)


def _pg_forward(schema_editor) -> None:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        try:
            # A savepoint: without the right to create extensions the migration goes on.
            with transaction.atomic(using=connection.alias):
                cursor.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
            has_unaccent = True
        except DatabaseError:
            has_unaccent = False
        for name, base, dictionary in (
            ("pecmail_italian", "italian", "italian_stem"),
            ("pecmail_simple", "simple", "simple"),
        ):
            cursor.execute(f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {name}")
            cursor.execute(f"CREATE TEXT SEARCH CONFIGURATION {name} (COPY = {base})")
            # Without unaccent, pecmail.search.backends folds accents in Python instead.
            chain = f"unaccent, {dictionary}" if has_unaccent else dictionary
            cursor.execute(f"ALTER TEXT SEARCH CONFIGURATION {name} ALTER MAPPING FOR {WORD_TOKENS} WITH {chain}")
        cursor.execute(
            f"ALTER TABLE {DOC} ADD COLUMN vector tsvector GENERATED ALWAYS AS ({_pg_vector_sql()}) STORED"
        )
        cursor.execute(f"CREATE INDEX search_doc_vector ON {DOC} USING gin (vector)")


def _pg_backward(schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS search_doc_vector")
        cursor.execute(f"ALTER TABLE {DOC} DROP COLUMN IF EXISTS vector")
        cursor.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS pecmail_italian")
        cursor.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS pecmail_simple")


def _sqlite_forward(schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(fts5.create_table_sql())
        for statement in fts5.create_triggers_sql():
            cursor.execute(statement)


def _sqlite_backward(schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        for statement in fts5.drop_triggers_sql():
            cursor.execute(statement)
        cursor.execute(f"DROP TABLE IF EXISTS {fts5.FTS}")


def forward(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _pg_forward(schema_editor)
    elif vendor == "sqlite":
        _sqlite_forward(schema_editor)


def backward(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _pg_backward(schema_editor)
    elif vendor == "sqlite":
        _sqlite_backward(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("search", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
