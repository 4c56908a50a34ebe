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

DOC = "search_messagesearchdocument"
FTS = "search_message_fts"
FTS_COLUMNS = ("subject", "addresses", "body", "attachments")
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
    columns = ", ".join(FTS_COLUMNS)
    new = ", ".join(f"new.{c}" for c in FTS_COLUMNS)
    old = ", ".join(f"old.{c}" for c in FTS_COLUMNS)
    delete_old = f"INSERT INTO {FTS}({FTS}, rowid, {columns}) VALUES ('delete', old.message_id, {old});"
    insert_new = f"INSERT INTO {FTS}(rowid, {columns}) VALUES (new.message_id, {new});"
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"CREATE VIRTUAL TABLE {FTS} USING fts5({columns}, content='{DOC}', content_rowid='message_id', "
            "tokenize='unicode61 remove_diacritics 2')"
        )
        cursor.execute(f"CREATE TRIGGER search_doc_ai AFTER INSERT ON {DOC} BEGIN {insert_new} END")
        cursor.execute(f"CREATE TRIGGER search_doc_ad AFTER DELETE ON {DOC} BEGIN {delete_old} END")
        cursor.execute(f"CREATE TRIGGER search_doc_au AFTER UPDATE ON {DOC} BEGIN {delete_old} {insert_new} END")


def _sqlite_backward(schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        for trigger in ("search_doc_ai", "search_doc_ad", "search_doc_au"):
            cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        cursor.execute(f"DROP TABLE IF EXISTS {FTS}")


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
